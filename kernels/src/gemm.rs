//! Matrix products: `C = A B` with every element one FMA chain along K.
//!
//! **The definition.** `C[i][j]` starts at +0 and, for `k = 0, 1, …, K-1` in order,
//! becomes `fma(A[i][k], B[k][j], C[i][j])`. Nothing else: no partial sums, no
//! reassociation, no block size in the result. An epilogue may then add a bias
//! (`C[i][j] + bias`, one rounding) and replaces NaNs by the canonical NaN.
//!
//! **The fast implementation** is the Goto/BLIS layering (B packed into panels of `NR`
//! columns, an `MR × NR` register tile, K walked in blocks of [`k_block`] steps),
//! arranged so that none of it can change a bit: SIMD lanes run over N (columns), never
//! over K; a tile's accumulators are written to C at the end of a K block and reloaded
//! at the start of the next, which continues the same chain exactly; tasks (threads) own
//! disjoint parts of C. Wider registers, other block sizes and thread counts therefore
//! compute the chain above, step for step.
#![allow(unsafe_code)]

use crate::{elementwise::canonical, isa::Isa, lanes::Lanes};
use alloc::vec::Vec;
use core::mem::MaybeUninit;

/// The shortest K block: how many steps of the chain a tile runs at least before
/// writing C back. Any value gives the same bits; this one keeps a 64-column block of
/// packed B in L1.
pub const KC: usize = 128;
/// Bytes of one K block of a B panel, at most (see [`k_block`]): L1's size on the CPUs
/// measured.
const PANEL_BLOCK_BYTES: usize = 32 * 1024;
/// How many steps of the chain ahead B is prefetched.
const PREFETCH: usize = 16;
/// How many panels ahead a product whose B is given by its rows ([`gemm_rows`]) asks for
/// each row's values.
const ROWS_PREFETCH_PANELS: usize = 2;
/// How many panels ahead a product storing only some columns ([`gemm_rows_kept`]) asks
/// for the lines of C it will store to. (Measured on AVX2, a 3→32 3×3 stride-2 layer on
/// 224² planes, batch 8: 2.65 → 2.45 ms with it, where storing without it was slower
/// than writing the whole wide output and copying its kept columns after.)
const KEPT_PREFETCH_PANELS: usize = 2;
/// The longest chain (K) whose rows are prefetched (one line per row; a hint only x86
/// acts on): 256 rows, two panels ahead, ask for 32 KiB of lines on AVX2's 16-column
/// panel, as much as L1 holds on the CPUs measured.
const ROWS_PREFETCH_MAX_STEPS: usize = 256;
/// Rows per task (a multiple of every ISA's MR): a transformer's 128 token rows fit one
/// task, so B is streamed from memory once, with the threads splitting its columns.
const MC: usize = 132;
/// Rows per task where B is packed as the product goes ([`gemm_rows`]: each task packs
/// its panels once for all of these rows), and where a packed A has rows for fewer than
/// `MIN_TASKS / 2` tasks of [`MC`] (its panels are then split among the tasks).
const FILLED_ROWS: usize = 4 * MC;
/// Tasks a product whose B is packed as it goes ([`gemm_rows`]) is split into, where it
/// has the panels for them.
const ROWS_TASKS: usize = 32;
/// Column panels per task, at most (B packed before the product).
const PANELS_PER_TASK: usize = 4;
/// Tasks a shared packing of A ([`pack_a_shared`]) is split into at least, where its
/// blocks have the tiles for them: a gathered A (a convolution's patches) costs a third
/// of the product on a 14×14 plane, and five K blocks on two threads left one idle for a
/// fifth of it. (Any split writes the same values.)
const SHARED_PACK_TASKS: usize = 16;
/// Tasks a product is split into at least, where it has the panels for them.
const MIN_TASKS: usize = 8;

/// A read-only matrix view: element `(i, k)` at `data[offset + i * rs + k * cs]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows × cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of this view (no copy).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.rs + (self.cols - 1) * self.cs;
            assert!(last < self.data.len(), "matrix view exceeds its data");
        }
    }

    /// The viewed matrix as a new row-major vector.
    pub fn to_row_major(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for i in 0..self.rows {
            for k in 0..self.cols {
                out.push(self.at(i, k));
            }
        }
        out
    }

    #[inline(always)]
    fn at(&self, i: usize, k: usize) -> f32 {
        self.data[i * self.rs + k * self.cs]
    }
}

/// A convolution's `colsᵀ` (im2col's matrix, transposed), never written out: `M × K`
/// with M = `samples` × the positions per sample, row `i` output position `o = i mod P`
/// of sample `s = i div P`, column `k = channel · taps + tap`, and element `(i, k)`
/// `data[s · sample_stride + positions[o · taps + tap] + channel · channel_stride]`, or
/// +0 where that position is [`PADDING`]. These are the values im2col copies, so
/// a product over them has the bits of the product over the written matrix; packing A
/// gathers them straight from the input.
#[derive(Clone, Copy)]
pub struct Patches<'a> {
    /// The input values, from the first sample's first channel read.
    pub data: &'a [f32],
    /// Per output position of one sample and kernel position: where channel 0's value is
    /// in the sample's values (within a plane: 32 bits, as the depthwise kernels' taps).
    pub positions: &'a [u32],
    /// Kernel positions per channel (at least one).
    pub taps: usize,
    /// Channels (K = channels · taps).
    pub channels: usize,
    /// How far apart one position's values for neighbouring channels are.
    pub channel_stride: usize,
    pub samples: usize,
    /// How far apart neighbouring samples' values are.
    pub sample_stride: usize,
}

impl Patches<'_> {
    /// Output positions per sample.
    fn per_sample(&self) -> usize {
        self.positions.len() / self.taps.max(1)
    }

    pub fn rows(&self) -> usize {
        self.samples * self.per_sample()
    }

    pub fn cols(&self) -> usize {
        self.channels * self.taps
    }

    /// Refuses patches with no kernel position, or any that would read past `data`.
    fn check(&self) {
        assert!(
            self.taps > 0 && self.positions.len().is_multiple_of(self.taps),
            "patches: positions must hold whole rows of kernel positions"
        );
        if self.channels == 0 || self.samples == 0 {
            return;
        }
        // The furthest any position is read from: the last sample's last channel.
        let reach = (self.samples - 1)
            .checked_mul(self.sample_stride)
            .zip((self.channels - 1).checked_mul(self.channel_stride))
            .and_then(|(s, c)| s.checked_add(c));
        assert!(
            reach.is_some_and(|reach| self.positions.iter().all(|&at| at == PADDING
                || (at as usize)
                    .checked_add(reach)
                    .is_some_and(|end| end < self.data.len()))),
            "patches: a position reads past the input"
        );
    }

    /// Row `i`'s values start: its sample's offset and its position's row of taps.
    #[inline(always)]
    fn row(&self, i: usize) -> (usize, usize) {
        let p = self.per_sample();
        (i / p * self.sample_stride, i % p * self.taps)
    }

    /// Element `(i, k)`.
    #[inline(always)]
    fn at(&self, i: usize, k: usize) -> f32 {
        let (channel, tap) = (k / self.taps, k % self.taps);
        let (sample, row) = self.row(i);
        match self.positions[row + tap] {
            PADDING => 0.0,
            at => self.data[sample + at as usize + channel * self.channel_stride],
        }
    }

    /// The matrix as a new row-major vector.
    pub fn to_row_major(&self) -> Vec<f32> {
        let (m, k) = (self.rows(), self.cols());
        let mut out = Vec::with_capacity(m * k);
        for i in 0..m {
            out.extend((0..k).map(|kk| self.at(i, kk)));
        }
        out
    }
}

/// A product's A: a matrix view, or a convolution's patches gathered as they are packed.
#[derive(Clone, Copy)]
pub enum Lhs<'a> {
    Mat(MatRef<'a>),
    Patches(Patches<'a>),
}

impl<'a> From<MatRef<'a>> for Lhs<'a> {
    fn from(a: MatRef<'a>) -> Self {
        Lhs::Mat(a)
    }
}

impl<'a> From<Patches<'a>> for Lhs<'a> {
    fn from(a: Patches<'a>) -> Self {
        Lhs::Patches(a)
    }
}

impl<'a> Lhs<'a> {
    pub fn rows(&self) -> usize {
        match self {
            Lhs::Mat(a) => a.rows,
            Lhs::Patches(a) => a.rows(),
        }
    }

    pub fn cols(&self) -> usize {
        match self {
            Lhs::Mat(a) => a.cols,
            Lhs::Patches(a) => a.cols(),
        }
    }

    fn check(&self) {
        match self {
            Lhs::Mat(a) => a.check(),
            Lhs::Patches(a) => a.check(),
        }
    }

    /// The matrix as a new row-major vector.
    pub fn to_row_major(&self) -> Vec<f32> {
        match self {
            Lhs::Mat(a) => a.to_row_major(),
            Lhs::Patches(a) => a.to_row_major(),
        }
    }

    /// A whose rows are contiguous along K: the tiles read it in place.
    fn in_place(&self) -> Option<&MatRef<'a>> {
        match self {
            Lhs::Mat(a) if a.cs == 1 => Some(a),
            _ => None,
        }
    }
}

/// B (`K × N`) packed for the ISA it was packed for: panel `p` holds columns
/// `p*NR .. p*NR+NR` (zero beyond N), row after row: `data[(p * K + k) * NR + j]`.
#[derive(Clone, Debug)]
pub struct PackedB {
    k: usize,
    n: usize,
    nr: usize,
    data: Vec<f32>,
}

impl PackedB {
    /// Packs `b` for `isa`.
    pub fn pack(isa: Isa, b: MatRef<'_>) -> PackedB {
        b.check();
        let nr = isa.effective().gemm_nr();
        let (k, n) = (b.rows, b.cols);
        let panels = n.div_ceil(nr);
        let mut data = Vec::with_capacity(panels * k * nr);
        let spare = &mut data.spare_capacity_mut()[..panels * k * nr];
        for (p, panel) in spare.chunks_exact_mut((k * nr).max(1)).enumerate() {
            fill_panel(b, p, nr, panel);
        }
        // SAFETY: `fill_panel` wrote every value of every panel.
        unsafe { data.set_len(panels * k * nr) };
        PackedB { k, n, nr, data }
    }

    /// [`PackedB::pack`] with the panels filled by parallel tasks: the same bytes, for a
    /// B packed on every run (a convolution's input columns).
    pub fn pack_with(isa: Isa, b: MatRef<'_>, par: &dyn Parallel) -> PackedB {
        b.check();
        let nr = isa.effective().gemm_nr();
        let (k, n) = (b.rows, b.cols);
        let panels = n.div_ceil(nr);
        let mut data: Vec<f32> = Vec::with_capacity(panels * k * nr);
        let len = k * nr;
        if len > 0 {
            let base = SharedMut(data.as_mut_ptr());
            par.run(panels.div_ceil(PANELS_PER_TASK), &|t| {
                for p in t * PANELS_PER_TASK..panels.min((t + 1) * PANELS_PER_TASK) {
                    // SAFETY: panel p is the capacity's `[p * len..][..len]`, written by
                    // this task only.
                    let panel = unsafe {
                        core::slice::from_raw_parts_mut(
                            base.get().add(p * len) as *mut MaybeUninit<f32>,
                            len,
                        )
                    };
                    fill_panel(b, p, nr, panel);
                }
            });
        }
        // SAFETY: the tasks wrote every value of every panel (`fill_panel`).
        unsafe { data.set_len(panels * len) };
        PackedB { k, n, nr, data }
    }

    /// B packed from its rows (`B[k][j] = rows[k][j]`, `j < n`): the panels [`gemm_rows`]
    /// packs as it goes, all at once.
    pub fn from_rows(isa: Isa, rows: &[&[f32]], n: usize) -> PackedB {
        let mut b = alloc::vec![0f32; rows.len() * n];
        for (dst, row) in b.chunks_exact_mut(n.max(1)).zip(rows) {
            dst.copy_from_slice(&row[..n]);
        }
        PackedB::pack(isa, MatRef::row_major(&b, rows.len(), n))
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// The bytes B's `K × N` values take: what a model's memory cost counts. The same
    /// on every ISA, because a cost is consensus data (a registered model's
    /// `peak_memory_bytes` must be what every executor estimates); the panels' zero
    /// padding (fewer than `NR` columns, `Isa::gemm_nr`) is left out.
    pub fn bytes(&self) -> usize {
        self.k * self.n * 4
    }

    /// B again, row-major `K × N`.
    pub fn unpack(&self) -> Vec<f32> {
        let mut out = alloc::vec![0f32; self.k * self.n];
        for (j0, panel) in (0..self.n)
            .step_by(self.nr)
            .zip(self.data.chunks((self.k * self.nr).max(1)))
        {
            let cols = self.nr.min(self.n - j0);
            for kk in 0..self.k {
                out[kk * self.n + j0..][..cols].copy_from_slice(&panel[kk * self.nr..][..cols]);
            }
        }
        out
    }

    /// Whether it was packed for `isa`'s panel width.
    pub fn fits(&self, isa: Isa) -> bool {
        self.nr == isa.effective().gemm_nr()
    }
}

/// Panel `p` of `b` (columns `p·nr ..`, zero beyond N) into `dst` [K][nr].
/// Writes every value of `dst`: the panel's columns, then zeros to the panel's width.
fn fill_panel(b: MatRef<'_>, p: usize, nr: usize, dst: &mut [MaybeUninit<f32>]) {
    let cols = nr.min(b.cols - p * nr);
    for (kk, row) in dst.chunks_exact_mut(nr).enumerate() {
        if b.cs == 1 {
            copy_run(&b.data[kk * b.rs + p * nr..][..cols], row);
        } else {
            for (j, d) in row[..cols].iter_mut().enumerate() {
                d.write(b.at(kk, p * nr + j));
            }
        }
        for d in &mut row[cols..] {
            d.write(0.0);
        }
    }
}

/// Copies `src` into the start of `dst`: runs of the lengths panels and tiles have
/// (whole 16- and 32-column panels, a tile's 4, 6 or 12 rows) at a length known here,
/// as inline moves rather than a call to memcpy per short run.
#[inline(always)]
fn copy_run(src: &[f32], dst: &mut [MaybeUninit<f32>]) {
    match src.len() {
        32 => copy_fixed::<32>(src, dst),
        16 => copy_fixed::<16>(src, dst),
        12 => copy_fixed::<12>(src, dst),
        6 => copy_fixed::<6>(src, dst),
        4 => copy_fixed::<4>(src, dst),
        _ => {
            for (d, v) in dst.iter_mut().zip(src) {
                d.write(*v);
            }
        }
    }
}

#[inline(always)]
fn copy_fixed<const W: usize>(src: &[f32], dst: &mut [MaybeUninit<f32>]) {
    let (src, dst) = (&src[..W], &mut dst[..W]);
    for (d, v) in dst.iter_mut().zip(src) {
        d.write(*v);
    }
}

/// What the epilogue adds to each finished element.
#[derive(Clone, Copy)]
pub enum Bias<'a> {
    None,
    /// `bias[i]` to every element of row `i` (a convolution's per-channel bias).
    Row(&'a [f32]),
    /// `bias[j]` to every element of column `j` (a linear layer's bias).
    Col(&'a [f32]),
}

/// Runs `tasks` independent closures, in any order and on any threads. The kernel
/// crate has no threads of its own; the engine passes a thread pool.
pub trait Parallel {
    fn run(&self, tasks: usize, task: &(dyn Fn(usize) + Sync));
}

/// One task after the other, on the calling thread.
pub struct Sequential;

impl Parallel for Sequential {
    fn run(&self, tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        (0..tasks).for_each(task)
    }
}

/// C's base pointer, shared by tasks that write disjoint elements.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: tasks write disjoint parts of C: (row block, panel range) rectangles, or with
// kept columns those rectangles' kept columns (`KeptColumns::at` is one to one); see
// `gemm`.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The pointer (a method, so closures capture the whole `Sync` wrapper).
    fn get(&self) -> *mut f32 {
        self.0
    }
}

/// `C = A B (+ bias)` with `A` `M × K` (any strides), `B` packed, `C` row-major `M × N`.
pub fn gemm<'a>(
    isa: Isa,
    a: impl Into<Lhs<'a>>,
    b: &PackedB,
    bias: Bias<'_>,
    c: &mut [f32],
    par: &dyn Parallel,
) {
    gemm_clamped(isa, a, b, bias, None, c, par)
}

/// A value clamped as ONNX's `Clip` does: `x < lo ? lo : x`, then `> hi ? hi : …` (a NaN
/// stays NaN; the bounds are compared, never computed with).
#[inline(always)]
pub fn clamp<V: Lanes>(x: V, (lo, hi): (f32, f32)) -> V {
    let (lo, hi) = (V::splat(lo), V::splat(hi));
    let x = V::select(x.lt(lo), lo, x);
    V::select(hi.lt(x), hi, x)
}

/// [`gemm`], then every element of C [`clamp`]ed to `clamp` when given: the same bits as
/// the two in turn, with the clamp applied in registers as each tile finishes.
pub fn gemm_clamped<'a>(
    isa: Isa,
    a: impl Into<Lhs<'a>>,
    b: &PackedB,
    bias: Bias<'_>,
    clamp: Option<(f32, f32)>,
    c: &mut [f32],
    par: &dyn Parallel,
) {
    // SAFETY: an initialized f32 is a valid MaybeUninit<f32>; `gemm_into` writes only
    // f32 values.
    let c = unsafe { &mut *(c as *mut [f32] as *mut [MaybeUninit<f32>]) };
    gemm_into(isa, a, b, bias, clamp, c, par);
}

/// [`gemm_clamped`] into memory not yet written (a fresh output): every element of C is
/// written before any is read, and the initialized C is returned.
pub fn gemm_into<'a, 'c>(
    isa: Isa,
    a: impl Into<Lhs<'a>>,
    b: &PackedB,
    bias: Bias<'_>,
    clamp: Option<(f32, f32)>,
    c: &'c mut [MaybeUninit<f32>],
    par: &dyn Parallel,
) -> &'c mut [f32] {
    let isa = isa.effective();
    assert!(b.fits(isa), "gemm: B was packed for another ISA");
    let panels = (Panels::Packed(&b.data), b.k, b.nr);
    product(isa, a.into(), panels, b.n, bias, clamp, (c, None), par)
}

/// C = A B for either kind of B: the checks, then the tasks.
#[allow(clippy::too_many_arguments)]
fn product<'c>(
    isa: Isa,
    a: Lhs<'_>,
    b: (Panels<'_>, usize, usize),
    n: usize,
    bias: Bias<'_>,
    clamp: Option<(f32, f32)>,
    (c, keep): (&'c mut [MaybeUninit<f32>], Option<KeptColumns>),
    par: &dyn Parallel,
) -> &'c mut [f32] {
    a.check();
    let (m, k) = (a.rows(), b.1);
    let ldc = keep.map_or(n, |keep| keep.count(n));
    assert_eq!(
        a.cols(),
        k,
        "gemm: A has {} columns, B {} rows",
        a.cols(),
        k
    );
    assert_eq!(c.len(), m * ldc, "gemm: C must be {m} x {ldc}");
    match bias {
        Bias::Row(v) => assert_eq!(v.len(), m, "gemm: row bias length"),
        Bias::Col(v) => assert_eq!(v.len(), n, "gemm: column bias length"),
        Bias::None => {}
    }
    let cptr = SharedMut(c.as_mut_ptr() as *mut f32);
    if m > 0 && n > 0 {
        run_tasks(isa, a, b, bias, clamp, (cptr, keep), n, par);
    }
    // SAFETY: the tasks wrote all of C (their rectangles tile it; `run_task` writes every
    // element of its own, K = 0 included; with `keep`, every kept column of its panels).
    unsafe { core::slice::from_raw_parts_mut(cptr.get(), m * ldc) }
}

/// `c` with every element written +0, as the initialized slice it then is.
pub fn zeroed(c: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    for v in c.iter_mut() {
        v.write(0.0);
    }
    // SAFETY: every element was just written.
    unsafe { &mut *(c as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// [`gemm_into`] with B given by its rows (`B[k][j] = rows[k][j]`, `j < n`; a
/// convolution's input columns, each a run of an input plane), packed as the product
/// goes, one K block of one panel at a time, into a buffer each task keeps in cache: the
/// same chains, so the same bits as [`gemm_into`] with B packed first.
#[allow(clippy::too_many_arguments)]
pub fn gemm_rows<'c>(
    isa: Isa,
    a: MatRef<'_>,
    rows: &[&[f32]],
    n: usize,
    bias: Bias<'_>,
    clamp: Option<(f32, f32)>,
    c: &'c mut [MaybeUninit<f32>],
    par: &dyn Parallel,
) -> &'c mut [f32] {
    let isa = isa.effective();
    assert!(
        rows.iter().all(|r| r.len() >= n),
        "gemm: a row of B is shorter than N"
    );
    let panels = (Panels::Rows(rows), rows.len(), isa.gemm_nr());
    product(isa, a.into(), panels, n, bias, clamp, (c, None), par)
}

/// Which columns of a product's C are kept, and where: C as a convolution's "wide"
/// output, rows of `period` values of which the first `kept` are outputs. Column `j` is
/// kept when `j % period < kept`, stored at `(j / period) · kept + j % period` of its row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeptColumns {
    period: usize,
    kept: usize,
}

impl KeptColumns {
    /// The first `kept` of every `period` columns.
    ///
    /// # Panics
    /// Unless `1 <= kept <= period`.
    pub fn new(period: usize, kept: usize) -> KeptColumns {
        assert!(
            kept >= 1 && kept <= period,
            "KeptColumns: {kept} of every {period} columns kept"
        );
        KeptColumns { period, kept }
    }

    /// How many of `n` columns are kept.
    pub fn count(self, n: usize) -> usize {
        n / self.period * self.kept + (n % self.period).min(self.kept)
    }

    /// Where kept column `j` is stored in its row; `None` for a dropped column.
    fn at(self, j: usize) -> Option<usize> {
        let x = j % self.period;
        (x < self.kept).then_some(j / self.period * self.kept + x)
    }
}

/// [`gemm_rows`] storing only the columns `keep` keeps (C is `M × keep.count(n)`): each
/// task's tiles write a panel into a buffer in its cache, which then goes to C's kept
/// columns, so the dropped ones never reach memory. The same chains, so the same bits
/// as [`gemm_rows`] with the dropped columns left out afterwards.
#[allow(clippy::too_many_arguments)]
pub fn gemm_rows_kept<'c>(
    isa: Isa,
    a: MatRef<'_>,
    rows: &[&[f32]],
    n: usize,
    keep: KeptColumns,
    bias: Bias<'_>,
    clamp: Option<(f32, f32)>,
    c: &'c mut [MaybeUninit<f32>],
    par: &dyn Parallel,
) -> &'c mut [f32] {
    let isa = isa.effective();
    assert!(
        rows.iter().all(|r| r.len() >= n),
        "gemm: a row of B is shorter than N"
    );
    let lhs = Lhs::from(a);
    if rows.is_empty() || lhs.in_place().is_none() {
        // No chain, or an A packed per K block (whose blocks run over every panel
        // before the next): the whole C, then its kept columns.
        let mut whole: Vec<MaybeUninit<f32>> = Vec::with_capacity(a.rows * n);
        whole.resize_with(a.rows * n, MaybeUninit::uninit);
        let whole = gemm_rows(isa, a, rows, n, bias, clamp, &mut whole, par);
        return kept_columns(whole, (a.rows, n), keep, c);
    }
    let panels = (Panels::Rows(rows), rows.len(), isa.gemm_nr());
    product(isa, lhs, panels, n, bias, clamp, (c, Some(keep)), par)
}

/// The columns of `whole` (`m × n`) that `keep` keeps, written into `c`
/// (`m × keep.count(n)`).
pub(crate) fn kept_columns<'c>(
    whole: &[f32],
    (m, n): (usize, usize),
    keep: KeptColumns,
    c: &'c mut [MaybeUninit<f32>],
) -> &'c mut [f32] {
    let width = keep.count(n);
    assert!(
        whole.len() == m * n && c.len() == m * width,
        "gemm_rows_kept: {m} × {n} values, of which C ({} values) must hold {width} a row",
        c.len()
    );
    if width > 0 {
        for (row, out) in whole.chunks_exact(n).zip(c.chunks_exact_mut(width)) {
            for (j, &v) in row.iter().enumerate() {
                if let Some(at) = keep.at(j) {
                    out[at].write(v);
                }
            }
        }
    }
    // SAFETY: c is m rows of width (asserted), and every kept column of every row was
    // written (`at` maps a row's kept columns onto 0..width, one to one, as `new`'s
    // bounds guarantee).
    unsafe { &mut *(c as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// Splits C into tasks and runs them.
#[allow(clippy::too_many_arguments)]
fn run_tasks(
    isa: Isa,
    a: Lhs<'_>,
    (b, k, nr): (Panels<'_>, usize, usize),
    bias: Bias<'_>,
    clamp: Option<(f32, f32)>,
    (cptr, keep): (SharedMut, Option<KeptColumns>),
    n: usize,
    par: &dyn Parallel,
) {
    let m = a.rows();
    let panels = n.div_ceil(nr);
    let mr = isa.gemm_mr();
    // How C is split, (rows a task, panels a task):
    // * B packed as the product goes: each panel is packed once in any split, so tasks
    //   take up to FILLED_ROWS rows, and ROWS_TASKS tasks where there are the panels for
    //   them (a short product is not split into tasks that cost more to hand out than to
    //   run).
    // * A read in place: MC rows, and up to PANELS_PER_TASK panels, fewer where that
    //   would leave under MIN_TASKS tasks to share among the threads.
    // * A packed (a convolution's `colsᵀ`), with rows for MIN_TASKS / 2 tasks of MC: each
    //   task takes every panel, so A is read from memory once and B (the weights, the
    //   smaller) once per task.
    // * A packed, fewer rows: up to FILLED_ROWS rows a task, the panels split as for A in
    //   place.
    let split_panels = |mc: usize| {
        let row_blocks = m.div_ceil(mc);
        (panels * row_blocks / MIN_TASKS).clamp(1, PANELS_PER_TASK)
    };
    let (mc, per_task) = match b {
        Panels::Rows(_) => {
            let mc = FILLED_ROWS.next_multiple_of(mr);
            (mc, (panels * m.div_ceil(mc) / ROWS_TASKS).max(1))
        }
        Panels::Packed(_) if a.in_place().is_some() => (MC, split_panels(MC)),
        Panels::Packed(_) if m.div_ceil(MC) >= MIN_TASKS / 2 => (MC, panels),
        Panels::Packed(_) => {
            let mc = FILLED_ROWS.next_multiple_of(mr);
            (mc, split_panels(mc))
        }
    };
    let mc = mc.next_multiple_of(mr);
    let row_blocks = m.div_ceil(mc);
    let col_blocks = panels.div_ceil(per_task);
    // An A whose rows are not contiguous along K is packed: once for every task where
    // several tasks read the same rows, else by its one task as it goes.
    let apacked = if a.in_place().is_none() && col_blocks > 1 {
        pack_a_shared(a, (mr, mc), (k, k_block(nr)), par)
    } else {
        Vec::new()
    };
    par.run(row_blocks * col_blocks, &|t| {
        let (rb, cb) = (t / col_blocks, t % col_blocks);
        let rows = rb * mc..(m.min((rb + 1) * mc));
        let pans = cb * per_task..panels.min((cb + 1) * per_task);
        let task = Task {
            a,
            apacked: &apacked,
            mr: isa.gemm_mr(),
            k,
            nr,
            b,
            bias,
            clamp,
            c: cptr,
            n,
            keep,
            rows,
            panels: pans,
        };
        // This task's rectangle of C is disjoint from every other task's, and within `c`.
        crate::dispatch::gemm_task(isa, &task)
    });
}

/// The rectangle of C one task computes.
pub(crate) struct Task<'a> {
    a: Lhs<'a>,
    /// A packed ([`pack_a_shared`]) when its rows are not contiguous along K, in tiles of
    /// `mr` rows; else empty.
    apacked: &'a [f32],
    mr: usize,
    /// B's rows (the chain's length) and panel width.
    k: usize,
    nr: usize,
    b: Panels<'a>,
    bias: Bias<'a>,
    clamp: Option<(f32, f32)>,
    c: SharedMut,
    n: usize,
    /// C's kept columns (C is then `M × keep.count(n)`; A is read in place and K > 0),
    /// or all of them.
    keep: Option<KeptColumns>,
    rows: core::ops::Range<usize>,
    panels: core::ops::Range<usize>,
}

/// Where a task reads B's panels.
#[derive(Clone, Copy)]
enum Panels<'a> {
    /// Packed before the product ([`PackedB`]'s values).
    Packed(&'a [f32]),
    /// B's rows, each at least N long ([`gemm_rows`]): copied into the task's own
    /// buffer one K block of one panel at a time, just before the tiles read it.
    Rows(&'a [&'a [f32]]),
}

/// One task with `MR × NV*N` tiles of `V`.
///
/// # Safety
/// The task's rectangle of C must be valid and written by no one else meanwhile.
#[inline(always)]
pub(crate) unsafe fn run_task<V: Lanes, const MR: usize, const NV: usize>(t: &Task<'_>) {
    let nr = NV * V::N;
    debug_assert_eq!(nr, t.nr);
    let (k, n) = (t.k, t.n);
    let c = t.c.0;
    if k == 0 {
        for i in t.rows.clone() {
            for p in t.panels.clone() {
                for j in p * nr..n.min(p * nr + nr) {
                    // SAFETY: (i, j) inside this task's rectangle of C.
                    unsafe { *c.add(i * n + j) = 0.0 };
                }
            }
        }
    }
    // An A whose rows are not contiguous along K (a transposed view, like a
    // convolution's `colsᵀ`) is packed per K block, tile by tile: tile `r`, step `kk`, row
    // `i` at `apack[(r * kc + kk) * MR + i]` (a copy: no bit changes), so the tile reads
    // it as one contiguous stream. A row-major A is read in place: each of a tile's rows
    // is then a sequential stream already.
    let tiles = t.rows.len().div_ceil(MR);
    let packs = t.a.in_place().is_none();
    assert_eq!(t.mr, MR, "gemm: A packed for another tile height");
    assert!(
        t.keep.is_none() || (!packs && k > 0),
        "gemm: kept columns need A in place and a chain"
    );
    // B's K block of one panel, packed from its rows (zeros until first written: a last
    // panel narrower than `nr` leaves the columns past N as they were, never kept).
    let kb = k_block(nr);
    let mut filled = alloc::vec![0f32; if let Panels::Rows(_) = t.b { kb.min(k) * nr } else { 0 }];
    if packs {
        // K blocks outside: each block of packed A is read for all the task's panels. The
        // task's rows start at a multiple of MR: the tiles before them hold k * MR values
        // each.
        let base = t.rows.start / MR * k * MR;
        let shared = !t.apacked.is_empty();
        // Not zeroed: each K block's packing writes all it is read for.
        let own_len = if shared { 0 } else { tiles * kb.min(k) * MR };
        let mut own: Vec<f32> = Vec::with_capacity(own_len);
        let own = &mut own.spare_capacity_mut()[..own_len];
        let mut k0 = 0;
        while k0 < k {
            let kc = kb.min(k - k0);
            let apack = if shared {
                &t.apacked[base + k0 * tiles * MR..][..tiles * kc * MR]
            } else {
                pack_a(&t.a, MR, t.rows.clone(), k0, kc, &mut *own)
            };
            for p in t.panels.clone() {
                let bp = panel_block::<V, NV>(t, p, k0, kc, &mut filled);
                // SAFETY: as `run_task`'s; `bp` holds the block's kc rows of nr values.
                unsafe { block::<V, MR, NV>(t, p, k0, kc, bp, packs, apack, None) };
            }
            k0 += kc;
        }
    } else {
        // Panels outside: each panel of B is read as one sequential stream (A's rows
        // stay in L2, a K block of the panel in L1 across the tiles). With kept columns,
        // the tiles write the panel into `panel_c` (the task's rows, `nr` values each),
        // which then goes to C's kept columns.
        let mut panel_c = alloc::vec![0f32; if t.keep.is_some() { t.rows.len() * nr } else { 0 }];
        for p in t.panels.clone() {
            let mut k0 = 0;
            while k0 < k {
                let kc = kb.min(k - k0);
                let bp = panel_block::<V, NV>(t, p, k0, kc, &mut filled);
                let buffer = t.keep.map(|_| panel_c.as_mut_ptr());
                // SAFETY: as `run_task`'s; `bp` holds the block's kc rows of nr values;
                // `panel_c` holds the task's rows of nr values (a tile at row i writes
                // at most MR rows from row i - rows.start, all inside it).
                unsafe { block::<V, MR, NV>(t, p, k0, kc, bp, packs, &[], buffer) };
                k0 += kc;
            }
            if let Some(keep) = t.keep {
                // SAFETY: as `run_task`'s (the kept columns of this task's panels are
                // its own).
                unsafe { store_kept::<V>(t, keep, p, nr, &panel_c) };
            }
        }
    }
    if k > 0 {
        // The last K block's tiles applied the epilogue in registers.
        return;
    }
    // K = 0: C is +0; the epilogue (bias, canonical NaNs) on it.
    for i in t.rows.clone() {
        for p in t.panels.clone() {
            for j in p * nr..n.min(p * nr + nr) {
                // SAFETY: (i, j) inside this task's rectangle of C.
                let v = unsafe { &mut *c.add(i * n + j) };
                let s = match t.bias {
                    Bias::None => *v,
                    Bias::Row(b) => *v + b[i],
                    Bias::Col(b) => *v + b[j],
                };
                let s = canonical(crate::lanes::Scalar(s));
                *v = match t.clamp {
                    Some(bounds) => clamp(s, bounds).0,
                    None => s.0,
                };
            }
        }
    }
}

/// Steps of the chain in one K block, for panels `nr` columns wide: as many as
/// [`PANEL_BLOCK_BYTES`] of the panel hold, never under [`KC`] (512 on AVX2's and NEON's
/// 16-column panels, 128 on AVX-512's 64-column ones). Each block reloads and stores C's
/// tile, whose rows at a stride that is a multiple of 1 KiB share four L1 sets. On AVX2
/// (Zen 3) 512 steps in place of 128 made BERT-sized products with A read in place ~10%
/// faster, and with A packed (a convolution's `colsᵀ`) ResNet-like batch 8's 3×3 layers
/// on 14² and 7² planes 11–13% faster. A task's packed A block of [`MC`] rows is then
/// 264 KiB, which Zen 3's L2 holds; a product with too few rows for that packs up to
/// [`FILLED_ROWS`] rows a task (1 MiB, past L2), and its 7² layers were faster too. The
/// chain is the same for any length: C holds it exactly between blocks.
fn k_block(nr: usize) -> usize {
    KC.max(PANEL_BLOCK_BYTES / (nr * 4))
}

/// Where the K block `k0 .. k0 + kc` of panel `p` lies: in the packed B, or in `filled`
/// once copied there from B's rows (a copy: no bit changes).
#[inline(always)]
fn panel_block<V: Lanes, const NV: usize>(
    t: &Task<'_>,
    p: usize,
    k0: usize,
    kc: usize,
    filled: &mut [f32],
) -> *const f32 {
    let nr = NV * V::N;
    match t.b {
        Panels::Packed(data) => data[(p * t.k + k0) * nr..][..kc * nr].as_ptr(),
        Panels::Rows(rows) => {
            let (j0, dst) = (p * nr, &mut filled[..kc * nr]);
            let cols = nr.min(t.n - j0);
            // Each row is a stream of its own (a plane, for a 1×1 convolution): more
            // streams than the hardware prefetchers follow. A product with a short chain
            // asks for each row's part of a later panel now (a hint; the address may lie
            // past the row); a long one (a 3×3 convolution's shifted rows, which the
            // hardware follows) would evict the panel block it is filling.
            let ahead = t.k <= ROWS_PREFETCH_MAX_STEPS;
            for (row, d) in rows[k0..k0 + kc].iter().zip(dst.chunks_exact_mut(nr)) {
                let src = &row[j0..j0 + cols];
                if ahead {
                    V::prefetch(src.as_ptr().wrapping_add(ROWS_PREFETCH_PANELS * nr));
                }
                if cols == nr {
                    for v in 0..NV {
                        // SAFETY: `src` and `d` hold nr = NV * N values.
                        unsafe {
                            V::load(src.as_ptr().add(v * V::N)).store(d.as_mut_ptr().add(v * V::N))
                        };
                    }
                } else {
                    d[..cols].copy_from_slice(src);
                }
            }
            dst.as_ptr()
        }
    }
}

/// One K block of one panel: every tile of the task's rows. (A function, not a closure:
/// a closure would not inherit the ISA's target features, and the SIMD operations in it
/// would not be inlined.)
///
/// # Safety
/// As [`run_task`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn block<V: Lanes, const MR: usize, const NV: usize>(
    t: &Task<'_>,
    p: usize,
    k0: usize,
    kc: usize,
    bp: *const f32,
    packs: bool,
    apack: &[f32],
    buffer: Option<*mut f32>,
) {
    let nr = NV * V::N;
    let (k, n) = (t.k, t.n);
    let cols = nr.min(n - p * nr);
    let last = k0 + kc == k;
    // A panel narrower than the tile (the last one) runs on a full-width copy of its
    // rows of C, so that the tile itself only ever moves whole registers (its loops then
    // unroll and its accumulators stay in registers).
    let mut scratch = [MaybeUninit::<f32>::uninit(); 14 * 64];
    let mut col_bias = [0f32; 64];
    if let (true, Bias::Col(b)) = (last, t.bias) {
        col_bias[..cols].copy_from_slice(&b[p * nr..][..cols]);
    }
    for tile in 0..t.rows.len().div_ceil(MR) {
        let i = t.rows.start + tile * MR;
        let rows = MR.min(t.rows.end - i);
        let (ap, rs, cs) = match t.a.in_place() {
            Some(a) if !packs => (a.data[i * a.rs + k0..].as_ptr(), a.rs, 1),
            _ => (apack[tile * kc * MR..].as_ptr(), 1, MR),
        };
        let finish = match (last, t.bias) {
            (false, _) => Finish::Partial,
            (true, Bias::None) => Finish::Last(core::ptr::null(), core::ptr::null(), t.clamp),
            (true, Bias::Row(b)) => Finish::Last(b[i..].as_ptr(), core::ptr::null(), t.clamp),
            (true, Bias::Col(_)) => Finish::Last(core::ptr::null(), col_bias.as_ptr(), t.clamp),
        };
        // SAFETY: C rows i..i+rows, columns p*nr..p*nr+cols are this task's; the packed
        // tile holds kc * MR values, and A rows i..i+rows, columns k0..k0+kc are inside
        // `a` (MatRef::check in `gemm`); `scratch` holds MR (<= 14) rows of nr (<= 64).
        unsafe {
            if let Some(buffer) = buffer {
                // The task's panel buffer: rows of nr values, all of them computed (the
                // columns past N are never stored to C).
                let cp = buffer.add((i - t.rows.start) * nr);
                tile_rows::<V, MR, NV>(rows, (kc, ap, rs, cs, bp, cp, nr, k0 > 0, finish));
                continue;
            }
            let cp = t.c.0.add(i * n + p * nr);
            if cols == nr {
                tile_rows::<V, MR, NV>(rows, (kc, ap, rs, cs, bp, cp, n, k0 > 0, finish));
            } else {
                // Rows < `rows` of the scratch are written (copied in, or by the tile)
                // before anything reads them.
                let sp = scratch.as_mut_ptr() as *mut f32;
                if k0 > 0 {
                    for r in 0..rows {
                        core::ptr::copy_nonoverlapping(cp.add(r * n), sp.add(r * nr), cols);
                        // The columns past N are loaded with the rest: written first
                        // (their values never reach C).
                        core::ptr::write_bytes(sp.add(r * nr + cols), 0, nr - cols);
                    }
                }
                tile_rows::<V, MR, NV>(rows, (kc, ap, rs, cs, bp, sp, nr, k0 > 0, finish));
                for r in 0..rows {
                    core::ptr::copy_nonoverlapping(sp.add(r * nr), cp.add(r * n), cols);
                }
            }
        }
    }
}

/// Panel `p`'s finished values, `panel_c` (the task's rows, `nr` values each), stored to
/// C's kept columns: each run of kept columns of the panel, row by row.
///
/// # Safety
/// As [`run_task`]: the kept columns of the task's rows and panels are its own.
#[inline(always)]
unsafe fn store_kept<V: Lanes>(
    t: &Task<'_>,
    keep: KeptColumns,
    p: usize,
    nr: usize,
    panel_c: &[f32],
) {
    let ldc = keep.count(t.n);
    let (j0, j1) = (p * nr, t.n.min(p * nr + nr));
    let mut j = j0;
    while j < j1 {
        let x = j % keep.period;
        if x >= keep.kept {
            j += keep.period - x;
            continue;
        }
        let len = (keep.kept - x).min(j1 - j);
        let at = j / keep.period * keep.kept + x;
        for (r, i) in t.rows.clone().enumerate() {
            let src = &panel_c[r * nr + j - j0..][..len];
            // SAFETY: row i, columns at..at + len of C are kept columns of this task's
            // panel (at + len <= ldc); whole registers first, then single values.
            unsafe {
                let dst = t.c.0.add(i * ldc + at);
                let mut c = 0;
                while c + V::N <= len {
                    V::load(src.as_ptr().add(c)).store(dst.add(c));
                    c += V::N;
                }
                while c < len {
                    *dst.add(c) = src[c];
                    c += 1;
                }
            }
        }
        j += len;
    }
    // Ask now for the lines panel `p + KEPT_PREFETCH_PANELS` will store to (a hint; the
    // address may lie past C): C is fresh memory whose rows are far apart, more write
    // streams than the hardware prefetchers follow.
    let next = keep.count((p + KEPT_PREFETCH_PANELS) * nr);
    for i in t.rows.clone() {
        let at = t.c.0.wrapping_add(i * ldc + next);
        V::prefetch(at);
        V::prefetch(at.wrapping_add(nr - 1));
    }
}

/// A packed for every task, by blocks of `mc` rows (each a multiple of `mr` rows from
/// the start), then K blocks of `kb`: block (rows `r0..`, `k0..k0 + kc`) is its tiles
/// of `mr` rows at `r0 * k + k0 * tiles * mr`, each `kc` steps of `mr` values
/// ([`pack_a`]). The blocks are copied by parallel tasks: the same bytes in any order.
fn pack_a_shared(
    a: Lhs<'_>,
    (mr, mc): (usize, usize),
    (k, kb): (usize, usize),
    par: &dyn Parallel,
) -> Vec<f32> {
    let m = a.rows();
    let len = m.div_ceil(mr) * mr * k;
    // Not zeroed first: the blocks tile it, and `pack_a` writes every value of each.
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let (row_blocks, k_blocks) = (m.div_ceil(mc), k.div_ceil(kb));
    if len == 0 {
        // No rows or no chain (K = 0): nothing to pack.
        return out;
    }
    // Each block in parts of whole tiles, enough parts for the threads to share evenly.
    let parts = (SHARED_PACK_TASKS / (row_blocks * k_blocks)).clamp(1, mc / mr);
    let base = SharedMut(out.as_mut_ptr());
    par.run(row_blocks * k_blocks * parts, &|t| {
        let (block, part) = (t / parts, t % parts);
        let rb = block / k_blocks;
        let rows = rb * mc..m.min((rb + 1) * mc);
        let (k0, tiles) = (block % k_blocks * kb, rows.len().div_ceil(mr));
        let kc = kb.min(k - k0);
        let per_part = tiles.div_ceil(parts);
        let (t0, t1) = (part * per_part, tiles.min((part + 1) * per_part));
        if t0 >= t1 {
            return;
        }
        let part_rows = rows.start + t0 * mr..rows.end.min(rows.start + t1 * mr);
        // SAFETY: the block of row block `rb` from step `k0` is `out[rows.start * k + k0 *
        // tiles * mr..]`, `tiles * kc * mr` values, and its tiles `t0..t1` are the
        // `(t1 - t0) * kc * mr` values from `t0 * kc * mr` in it, written by this task
        // only; the blocks tile `out`, the parts their block.
        let dst = unsafe {
            core::slice::from_raw_parts_mut(
                base.get()
                    .add(rows.start * k + k0 * tiles * mr + t0 * kc * mr)
                    as *mut MaybeUninit<f32>,
                (t1 - t0) * kc * mr,
            )
        };
        pack_a(&a, mr, part_rows, k0, kc, dst);
    });
    // SAFETY: the tasks wrote all `len` values (the blocks tile them, `pack_a` writes
    // every value of a block).
    unsafe { out.set_len(len) };
    out
}

/// Copies rows `rows` and columns `k0..k0 + kc` of A into the start of `dst`, tile after
/// tile of `mr` rows, interleaved by row; returns that start, every value of it written
/// (rows past the end of the last tile as +0, which no tile reads). `dst` may be fresh,
/// uninitialized storage: nothing zeroes it first.
fn pack_a<'d>(
    a: &Lhs<'_>,
    mr: usize,
    rows: core::ops::Range<usize>,
    k0: usize,
    kc: usize,
    dst: &'d mut [MaybeUninit<f32>],
) -> &'d [f32] {
    let len = rows.len().div_ceil(mr) * kc * mr;
    let dst = &mut dst[..len];
    match a {
        Lhs::Mat(a) => pack_mat(a, mr, rows, k0, kc, dst),
        Lhs::Patches(a) => pack_patches(a, mr, rows, k0, kc, dst),
    }
    // SAFETY: every value of `dst` (its first `len`) was just written.
    unsafe { &*(dst as *const [MaybeUninit<f32>] as *const [f32]) }
}

/// [`pack_a`] from a matrix view: writes every value of `dst`.
fn pack_mat(
    a: &MatRef<'_>,
    mr: usize,
    rows: core::ops::Range<usize>,
    k0: usize,
    kc: usize,
    dst: &mut [MaybeUninit<f32>],
) {
    let (start, n) = (rows.start, rows.len());
    for tile in 0..n.div_ceil(mr) {
        let r_n = mr.min(n - tile * mr);
        let dst = &mut dst[tile * kc * mr..][..kc * mr];
        let first = start + tile * mr;
        for (kk, d) in dst.chunks_exact_mut(mr).enumerate() {
            let (d, past) = d.split_at_mut(r_n);
            if a.rs == 1 {
                // Each step's mr values are contiguous in A: a whole tile's run.
                copy_run(&a.data[(k0 + kk) * a.cs + first..][..r_n], d);
            } else {
                for (r, v) in d.iter_mut().enumerate() {
                    v.write(a.data[(first + r) * a.rs + (k0 + kk) * a.cs]);
                }
            }
            for v in past {
                v.write(0.0);
            }
        }
    }
}

/// [`pack_a`] gathering a convolution's patches from its input: writes every value of
/// `dst`. Kernel position by kernel position, the tile's rows read the same offsets for
/// every channel: where they are one run of consecutive input values (neighbouring output
/// positions of one row, none in the padding) each channel's step copies the run, else
/// each value is read at its offset (+0 in the padding).
fn pack_patches(
    a: &Patches<'_>,
    mr: usize,
    rows: core::ops::Range<usize>,
    k0: usize,
    kc: usize,
    dst: &mut [MaybeUninit<f32>],
) {
    let (start, n, taps) = (rows.start, rows.len(), a.taps);
    let k1 = k0 + kc;
    // Per row of a tile (MR is at most 14): its sample's offset and its position's taps.
    assert!(mr <= 16, "pack_patches: a tile of at most 16 rows");
    let mut tile_rows = [(0usize, 0usize); 16];
    for tile in 0..n.div_ceil(mr) {
        let r_n = mr.min(n - tile * mr);
        let dst = &mut dst[tile * kc * mr..][..kc * mr];
        for (r, row) in tile_rows[..r_n].iter_mut().enumerate() {
            *row = a.row(start + tile * mr + r);
        }
        let rows = &tile_rows[..r_n];
        for tap in 0..taps {
            // The block's steps at this kernel position: channels `lo..hi`.
            let lo = k0.saturating_sub(tap).div_ceil(taps);
            let hi = k1.saturating_sub(tap).div_ceil(taps);
            if lo == hi {
                continue;
            }
            // Where each row reads channel 0 at this kernel position (or `usize::MAX`
            // for the padding).
            let mut reads = [usize::MAX; 16];
            for (read, &(sample, row)) in reads.iter_mut().zip(rows) {
                let at = a.positions[row + tap];
                if at != PADDING {
                    *read = sample + at as usize;
                }
            }
            let reads = &reads[..r_n];
            let first = reads[0];
            let run =
                first != usize::MAX && reads.iter().enumerate().all(|(r, &at)| at == first + r);
            for channel in lo..hi {
                let step = channel * taps + tap - k0;
                let (d, past) = dst[step * mr..][..mr].split_at_mut(r_n);
                let base = channel * a.channel_stride;
                if run {
                    copy_run(&a.data[first + base..][..r_n], d);
                } else {
                    for (v, &at) in d.iter_mut().zip(reads) {
                        v.write(match at {
                            usize::MAX => 0.0,
                            at => a.data[at + base],
                        });
                    }
                }
                for v in past {
                    v.write(0.0);
                }
            }
        }
    }
}

type TileArgs = (
    usize,
    *const f32,
    usize,
    usize,
    *const f32,
    *mut f32,
    usize,
    bool,
    Finish,
);

/// What a tile does with its accumulators after its K block.
#[derive(Clone, Copy)]
enum Finish {
    /// More K blocks follow: store them as they are.
    Partial,
    /// The chain is complete: add the tile's row bias (one value per row, from the
    /// pointer) or column bias (a whole panel's width of values, from the pointer), if
    /// either is non-null, and make NaNs canonical — the definition's epilogue, in
    /// registers; then [`clamp`] to the bounds when given.
    Last(*const f32, *const f32, Option<(f32, f32)>),
}

/// A tile of `rows` (<= MR) rows: picks the instance with that many rows.
#[inline(always)]
unsafe fn tile_rows<V: Lanes, const MR: usize, const NV: usize>(rows: usize, args: TileArgs) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match rows {
            1 => tile::<V, 1, NV>(args),
            2 => tile::<V, 2, NV>(args),
            3 => tile::<V, 3, NV>(args),
            4 => tile::<V, 4, NV>(args),
            5 => tile::<V, 5, NV>(args),
            6 => tile::<V, 6, NV>(args),
            7 => tile::<V, 7, NV>(args),
            8 => tile::<V, 8, NV>(args),
            9 => tile::<V, 9, NV>(args),
            10 => tile::<V, 10, NV>(args),
            11 => tile::<V, 11, NV>(args),
            12 => tile::<V, 12, NV>(args),
            13 => tile::<V, 13, NV>(args),
            14 => tile::<V, 14, NV>(args),
            _ => unreachable!("MR is at most 14"),
        }
    }
}

/// The register tile: `R` rows by `NV` registers of columns (all `NV · N` of them in C),
/// `kc` steps of the chain. Every loop here has a constant trip count and a body of a
/// few instructions, so that it unrolls and the accumulators live in registers.
#[inline(always)]
unsafe fn tile<V: Lanes, const R: usize, const NV: usize>(
    (kc, a, rs_a, cs_a, b, c, ldc, load_c, finish): TileArgs,
) {
    let mut acc = [[V::splat(0.0); NV]; R];
    // SAFETY (whole body): C rows < R at stride ldc, NV registers each, are valid; A
    // rows < R at rs_a and steps < kc at cs_a are valid; B holds kc * NV * N values; a
    // non-null bias pointer holds R (row) or NV * N (column) values.
    unsafe {
        if load_c {
            for (r, row) in acc.iter_mut().enumerate() {
                for (v, reg) in row.iter_mut().enumerate() {
                    *reg = V::load(c.add(r * ldc + v * V::N));
                }
            }
        }
        // Four steps per iteration (fewer loop branches), in order.
        let mut kk = 0;
        while kk + 4 <= kc {
            step::<V, R, NV>(&mut acc, a, rs_a, cs_a, b, kk);
            step::<V, R, NV>(&mut acc, a, rs_a, cs_a, b, kk + 1);
            step::<V, R, NV>(&mut acc, a, rs_a, cs_a, b, kk + 2);
            step::<V, R, NV>(&mut acc, a, rs_a, cs_a, b, kk + 3);
            kk += 4;
        }
        while kk < kc {
            step::<V, R, NV>(&mut acc, a, rs_a, cs_a, b, kk);
            kk += 1;
        }
        if let Finish::Last(row_bias, col_bias, bounds) = finish {
            if !col_bias.is_null() {
                let mut bias = [V::splat(0.0); NV];
                for (v, reg) in bias.iter_mut().enumerate() {
                    *reg = V::load(col_bias.add(v * V::N));
                }
                for row in acc.iter_mut() {
                    for (reg, b) in row.iter_mut().zip(bias.iter()) {
                        *reg = reg.add(*b);
                    }
                }
            } else if !row_bias.is_null() {
                for (r, row) in acc.iter_mut().enumerate() {
                    let b = V::splat(*row_bias.add(r));
                    for reg in row.iter_mut() {
                        *reg = reg.add(b);
                    }
                }
            }
            for row in acc.iter_mut() {
                for reg in row.iter_mut() {
                    *reg = canonical(*reg);
                }
            }
            if let Some(bounds) = bounds {
                for row in acc.iter_mut() {
                    for reg in row.iter_mut() {
                        *reg = clamp(*reg, bounds);
                    }
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, reg) in row.iter().enumerate() {
                reg.store(c.add(r * ldc + v * V::N));
            }
        }
    }
}

/// One step `kk` of the chain for every element of the tile:
/// `acc[r][j] = fma(A[r][kk], B[kk][j], acc[r][j])`.
///
/// # Safety
/// A rows < R at `rs_a` and step `kk` at `cs_a` are readable; B holds row `kk` of the
/// panel (NV * N values).
#[inline(always)]
unsafe fn step<V: Lanes, const R: usize, const NV: usize>(
    acc: &mut [[V; NV]; R],
    a: *const f32,
    rs_a: usize,
    cs_a: usize,
    b: *const f32,
    kk: usize,
) {
    // SAFETY: the caller's promise.
    unsafe {
        let bp = b.add(kk * NV * V::N);
        // B is streamed once from memory: ask for the lines PREFETCH steps ahead (a
        // hint; the address may lie past the panel, which is allowed).
        let ahead = bp.wrapping_add(PREFETCH * NV * V::N);
        for line in 0..(NV * V::N).div_ceil(16) {
            V::prefetch(ahead.wrapping_add(line * 16));
        }
        let mut bv = [V::splat(0.0); NV];
        for (v, reg) in bv.iter_mut().enumerate() {
            *reg = V::load(bp.add(v * V::N));
        }
        let ak = a.add(kk * cs_a);
        for (r, row) in acc.iter_mut().enumerate() {
            let av = V::splat(*ak.add(r * rs_a));
            for (reg, bvv) in row.iter_mut().zip(bv.iter()) {
                *reg = V::fma(av, *bvv, *reg);
            }
        }
    }
}

/// The definition, written plainly: for tests and the referee.
pub fn gemm_reference(a: MatRef<'_>, b: MatRef<'_>, c: &mut [f32]) {
    assert_eq!(a.cols, b.rows);
    let (m, n, k) = (a.rows, b.cols, a.cols);
    assert_eq!(c.len(), m * n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0f32;
            for kk in 0..k {
                acc = crate::fma::fma(a.at(i, kk), b.at(kk, j), acc);
            }
            c[i * n + j] = canonical(crate::lanes::Scalar(acc)).0;
        }
    }
}

/// A finished chain: `+ bias` when there is one, NaN canonical. (A function, not a
/// closure: see [`block`].)
#[inline(always)]
fn finish<V: Lanes>(acc: V, bias: Option<f32>, bounds: Option<(f32, f32)>) -> V {
    let y = match bias {
        Some(b) => canonical(acc.add(V::splat(b))),
        None => canonical(acc),
    };
    match bounds {
        Some(bounds) => clamp(y, bounds),
        None => y,
    }
}

/// `out[p] = chain_k fma(rows[k][p], w[k], acc) (+ bias)`: a matrix product with one row
/// of A (`w`), written for a depthwise convolution's few taps (B = `rows`, K × P
/// row-major, read in place). The same bits as [`gemm`] with A = `w` (`fma` is
/// commutative in its factors, and the chain runs over K in order from +0).
#[inline(always)]
pub fn weighted_rows<V: Lanes>(rows: &[f32], w: &[f32], bias: Option<f32>, out: &mut [f32]) {
    let (k, p) = (w.len(), out.len());
    assert_eq!(rows.len(), k * p, "weighted_rows: rows must be K x P");
    let slices: Vec<&[f32]> = (0..k).map(|kk| &rows[kk * p..][..p]).collect();
    weighted_slices::<V>(&slices, w, bias, None, out);
}

/// [`weighted_rows`] with each of the K rows its own slice (of at least P values): a
/// stride-1 depthwise convolution reads its taps straight from the padded input rows.
#[inline(always)]
pub fn weighted_slices<V: Lanes>(
    rows: &[&[f32]],
    w: &[f32],
    bias: Option<f32>,
    bounds: Option<(f32, f32)>,
    out: &mut [f32],
) {
    let p = out.len();
    assert_eq!(rows.len(), w.len(), "weighted_slices: one row per weight");
    assert!(
        rows.iter().all(|r| r.len() >= p),
        "weighted_slices: rows shorter than out"
    );
    // Four registers of outputs at a time: four independent chains hide FMA latency.
    let wide = 4 * V::N;
    let mut j = 0;
    while j + wide <= p {
        let mut acc = [V::splat(0.0); 4];
        for (row, &wk) in rows.iter().zip(w) {
            let wv = V::splat(wk);
            for (r, a) in acc.iter_mut().enumerate() {
                // SAFETY: j + wide <= p <= row.len().
                let x = unsafe { V::load(row.as_ptr().add(j + r * V::N)) };
                *a = V::fma(x, wv, *a);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            // SAFETY: as above, for `out`.
            unsafe { finish(*a, bias, bounds).store(out.as_mut_ptr().add(j + r * V::N)) };
        }
        j += wide;
    }
    // Then one register at a time. A last, partial register reads each row in place
    // where the row goes on for a register (the lanes past `p` are computed and dropped:
    // lanes are independent), else through a zero-padded copy.
    while j < p {
        let lanes = V::N.min(p - j);
        let mut acc = V::splat(0.0);
        let mut buf = [0f32; 16];
        for (row, &wk) in rows.iter().zip(w) {
            // SAFETY: a full register of the row exists when row.len() >= j + N; else
            // `buf` has 16.
            let x = if row.len() >= j + V::N {
                unsafe { V::load(row.as_ptr().add(j)) }
            } else {
                buf[..lanes].copy_from_slice(&row[j..j + lanes]);
                unsafe { V::load(buf.as_ptr()) }
            };
            acc = V::fma(x, V::splat(wk), acc);
        }
        // SAFETY: `buf` holds 16 >= N values.
        unsafe { finish(acc, bias, bounds).store(buf.as_mut_ptr()) };
        out[j..j + lanes].copy_from_slice(&buf[..lanes]);
        j += lanes;
    }
}

/// [`weighted_slices`] for `m` weight rows at once: `w` is [m, K] (one row per output
/// channel), `bias` one value per row, `out` [m, P]; row `i` of `out` gets the bits
/// [`weighted_slices`] gives for `w[i]`. Each input register loaded serves four rows (a
/// network's first layer: a short chain over large planes, where one row at a time is
/// bound by loads).
#[inline(always)]
pub fn weighted_slices_rows<V: Lanes>(
    rows: &[&[f32]],
    w: &[f32],
    (bias, bounds): LanesEpilogue<'_>,
    m: usize,
    out: &mut [f32],
) {
    let k = rows.len();
    assert!(
        w.len() == m * k && (m == 0 || out.len().is_multiple_of(m)),
        "weighted_slices_rows: {m} rows of {k} weights, {} weights, {} outputs",
        w.len(),
        out.len()
    );
    assert!(
        bias.is_none_or(|b| b.len() == m),
        "weighted_slices_rows: one bias per row"
    );
    if m == 0 {
        return;
    }
    let p = out.len() / m;
    assert!(
        rows.iter().all(|r| r.len() >= p),
        "weighted_slices_rows: rows shorter than out"
    );
    // ROWS weight rows by REGS registers of outputs: eight independent chains, and few
    // enough registers for every ISA (AVX2 has 16).
    const ROWS: usize = 4;
    const REGS: usize = 2;
    let wide = REGS * V::N;
    // (No closures here: they would not inherit the caller's target features.)
    let mut tails: Vec<&[f32]> = Vec::with_capacity(k);
    let mut first = 0;
    while first < m {
        let mut j = 0;
        if first + ROWS <= m {
            while j + wide <= p {
                let mut acc = [[V::splat(0.0); REGS]; ROWS];
                for (kk, row) in rows.iter().enumerate() {
                    let mut x = [V::splat(0.0); REGS];
                    for (r, x) in x.iter_mut().enumerate() {
                        // SAFETY: j + wide <= p <= row.len().
                        *x = unsafe { V::load(row.as_ptr().add(j + r * V::N)) };
                    }
                    for (i, a) in acc.iter_mut().enumerate() {
                        let wv = V::splat(w[(first + i) * k + kk]);
                        for (a, &x) in a.iter_mut().zip(&x) {
                            *a = V::fma(x, wv, *a);
                        }
                    }
                }
                for (i, a) in acc.iter().enumerate() {
                    let b = bias.map(|b| b[first + i]);
                    for (r, &a) in a.iter().enumerate() {
                        let at = (first + i) * p + j + r * V::N;
                        // SAFETY: at + N <= (first + i) * p + p <= out.len().
                        unsafe { finish(a, b, bounds).store(out.as_mut_ptr().add(at)) };
                    }
                }
                j += wide;
            }
        }
        // What is left of these rows (all of a last, incomplete group), one row at a time.
        let last = (first + ROWS).min(m);
        if j < p {
            tails.clear();
            tails.extend(rows.iter().map(|r| &r[j..]));
            for i in first..last {
                let y = &mut out[i * p + j..][..p - j];
                weighted_slices::<V>(&tails, &w[i * k..][..k], bias.map(|b| b[i]), bounds, y);
            }
        }
        first = last;
    }
}

/// Where a tap of [`weighted_lanes`] (or a position of [`Patches`]) reads padding (+0)
/// instead of an input value.
pub const PADDING: u32 = u32::MAX;

/// What [`weighted_lanes`] applies to each finished chain: a bias per channel, a clamp.
pub type LanesEpilogue<'a> = (Option<&'a [f32]>, Option<(f32, f32)>);

/// [`weighted_slices`] for every channel at once, channels last: with `c` channels,
/// `out[o·c + ch] = chain_t fma(x[at[o·T + t]·c + ch], w[t·c + ch], acc) (+ bias[ch])`,
/// from +0 over the T taps in order, a tap at [`PADDING`] reading +0; then the
/// canonical NaN and the clamp, as [`finish`]. Per output element it is the same
/// sequence of operations as [`weighted_slices`] over that channel's taps, so the same
/// bits; the lanes run across channels, which is what a depthwise convolution on small
/// planes needs.
#[inline(always)]
pub fn weighted_lanes<V: Lanes>(
    x: &[f32],
    at: &[u32],
    w: &[f32],
    (bias, bounds): LanesEpilogue<'_>,
    c: usize,
    out: &mut [f32],
) {
    if c == 0 {
        return;
    }
    let taps = w.len() / c;
    let positions = out.len() / c;
    assert!(
        w.len() == taps * c && out.len() == positions * c && at.len() == positions * taps,
        "weighted_lanes: {c} channels, {} weights, {} taps listed, {} outputs",
        w.len(),
        at.len(),
        out.len()
    );
    assert!(
        bias.is_none_or(|b| b.len() == c),
        "weighted_lanes: one bias per channel"
    );
    let inputs = x.len() / c;
    assert!(
        at.iter().all(|&p| p == PADDING || (p as usize) < inputs),
        "weighted_lanes: a tap reads outside the input"
    );
    let zero = V::splat(0.0);
    let mut xb = [0f32; 16];
    let mut wb = [0f32; 16];
    // Where the channels fill whole registers, ROWS output positions run side by side:
    // independent chains in flight, each still its own sequence over the taps.
    const ROWS: usize = 4;
    let mut o = 0;
    while o < positions {
        let rows = ROWS.min(positions - o);
        let mut j = 0;
        while j < c {
            let lanes = V::N.min(c - j);
            if lanes == V::N && rows == ROWS {
                let reads = &at[o * taps..][..ROWS * taps];
                let mut acc = [zero; ROWS];
                for t in 0..taps {
                    // SAFETY: j + N <= c, so the load is inside row `t` of `w`.
                    let wv = unsafe { V::load(w.as_ptr().add(t * c + j)) };
                    for (q, a) in acc.iter_mut().enumerate() {
                        let p = reads[q * taps + t];
                        let xv = if p == PADDING {
                            zero
                        } else {
                            // SAFETY: p < inputs (asserted) and j + N <= c.
                            unsafe { V::load(x.as_ptr().add(p as usize * c + j)) }
                        };
                        *a = V::fma(xv, wv, *a);
                    }
                }
                for (q, a) in acc.into_iter().enumerate() {
                    let y = &mut out[(o + q) * c..][..c];
                    finish_lanes(a, (bias, bounds), j, lanes, y);
                }
                j += lanes;
                continue;
            }
            for q in 0..rows {
                let reads = &at[(o + q) * taps..][..taps];
                let mut acc = zero;
                if lanes == V::N {
                    for (t, &p) in reads.iter().enumerate() {
                        // SAFETY: j + N <= c, so each load is inside row `t` of `w` and,
                        // for p < inputs (asserted), inside position `p` of `x`.
                        let wv = unsafe { V::load(w.as_ptr().add(t * c + j)) };
                        let xv = if p == PADDING {
                            zero
                        } else {
                            unsafe { V::load(x.as_ptr().add(p as usize * c + j)) }
                        };
                        acc = V::fma(xv, wv, acc);
                    }
                } else {
                    for (t, &p) in reads.iter().enumerate() {
                        wb[..lanes].copy_from_slice(&w[t * c + j..][..lanes]);
                        if p == PADDING {
                            xb[..lanes].fill(0.0);
                        } else {
                            xb[..lanes].copy_from_slice(&x[p as usize * c + j..][..lanes]);
                        }
                        // SAFETY: the buffers hold 16 >= N values.
                        let (xv, wv) = unsafe { (V::load(xb.as_ptr()), V::load(wb.as_ptr())) };
                        acc = V::fma(xv, wv, acc);
                    }
                }
                let y = &mut out[(o + q) * c..][..c];
                finish_lanes(acc, (bias, bounds), j, lanes, y);
            }
            j += lanes;
        }
        o += rows;
    }
}

/// [`weighted_lanes`] where the taps' positions form a grid: output position `o`'s tap `t`
/// reads input position `bases[o] + offsets[t]` (a depthwise convolution's windows over
/// a padded plane), and none reads padding. The same chain per output element, so the
/// same bits; with no per-tap index to load nor padding to test, EIGHT output positions
/// run side by side on each register of weights loaded.
#[inline(always)]
pub fn weighted_grid<V: Lanes>(
    x: &[f32],
    (bases, offsets): (&[u32], &[u32]),
    w: &[f32],
    (bias, bounds): LanesEpilogue<'_>,
    c: usize,
    out: &mut [f32],
) {
    if c == 0 {
        return;
    }
    let taps = offsets.len();
    let positions = bases.len();
    assert!(
        w.len() == taps * c && out.len() == positions * c,
        "weighted_grid: {c} channels, {} weights for {taps} taps, {} outputs for {positions} positions",
        w.len(),
        out.len()
    );
    assert!(
        bias.is_none_or(|b| b.len() == c),
        "weighted_grid: one bias per channel"
    );
    let inputs = x.len() / c;
    let reach = |v: &[u32]| v.iter().map(|&p| p as usize).max().unwrap_or(0);
    assert!(
        positions == 0 || taps == 0 || reach(bases) + reach(offsets) < inputs,
        "weighted_grid: a tap reads outside the input"
    );
    const ROWS: usize = 8;
    let zero = V::splat(0.0);
    // Whether the taps are rows of three neighbouring positions (a 3-wide kernel's
    // windows over a padded plane): eight neighbouring windows then read each row's ten
    // positions once, from registers, for the three taps of the row.
    let rows_of_three = taps % 3 == 0
        && offsets
            .chunks_exact(3)
            .all(|r| r[1] == r[0].wrapping_add(1) && r[2] == r[0].wrapping_add(2));
    // One register of channels at a time over every position: the channels' lines of the
    // padded plane (a register's width of each pixel) then stay in L1 while every window
    // over them reads them, where the other order brought each pixel's lines back from
    // L2 for each of the windows reading it. (Any order: each output is its own chain.)
    let mut j = 0;
    while j < c {
        let lanes = V::N.min(c - j);
        let mut o = 0;
        while o < positions {
            let rows = ROWS.min(positions - o);
            if lanes == V::N && rows == ROWS {
                let base = bases[o] as usize;
                let neighbours = bases[o..o + ROWS]
                    .iter()
                    .enumerate()
                    .all(|(q, &b)| b as usize == base + q);
                if rows_of_three && neighbours {
                    let (x, w) = (&x[base * c + j..], &w[j..]);
                    let out = &mut out[o * c..];
                    if V::N == 8 {
                        // Sixteen registers (AVX2): four windows at a time.
                        grid_rows_of_three::<V, 4>(x, offsets, w, (bias, bounds), c, j, out);
                        let (x, out) = (&x[4 * c..], &mut out[4 * c..]);
                        grid_rows_of_three::<V, 4>(x, offsets, w, (bias, bounds), c, j, out);
                    } else {
                        grid_rows_of_three::<V, ROWS>(x, offsets, w, (bias, bounds), c, j, out);
                    }
                    o += ROWS;
                    continue;
                }
                let mut at = [0usize; ROWS];
                for (q, a) in at.iter_mut().enumerate() {
                    *a = bases[o + q] as usize * c + j;
                }
                let mut acc = [zero; ROWS];
                for (t, &off) in offsets.iter().enumerate() {
                    let off = off as usize * c;
                    // SAFETY: j + N <= c, so the load is inside row `t` of `w`.
                    let wv = unsafe { V::load(w.as_ptr().add(t * c + j)) };
                    for (q, a) in acc.iter_mut().enumerate() {
                        // SAFETY: bases[o + q] + offsets[t] < inputs (asserted) and
                        // j + N <= c.
                        let xv = unsafe { V::load(x.as_ptr().add(at[q] + off)) };
                        *a = V::fma(xv, wv, *a);
                    }
                }
                for (q, a) in acc.into_iter().enumerate() {
                    finish_lanes(a, (bias, bounds), j, lanes, &mut out[(o + q) * c..][..c]);
                }
                o += ROWS;
                continue;
            }
            // A last, short group of positions: one position at a time, whole registers
            // read in place.
            if lanes == V::N {
                for q in 0..rows {
                    let at = bases[o + q] as usize * c + j;
                    let mut acc = zero;
                    for (t, &off) in offsets.iter().enumerate() {
                        // SAFETY: as in the group above, for one position.
                        let (xv, wv) = unsafe {
                            (
                                V::load(x.as_ptr().add(at + off as usize * c)),
                                V::load(w.as_ptr().add(t * c + j)),
                            )
                        };
                        acc = V::fma(xv, wv, acc);
                    }
                    finish_lanes(acc, (bias, bounds), j, lanes, &mut out[(o + q) * c..][..c]);
                }
                o += rows;
                continue;
            }
            // A last, partial register of channels: through buffers.
            let mut xb = [0f32; 16];
            let mut wb = [0f32; 16];
            for q in 0..rows {
                let base = bases[o + q] as usize;
                let mut acc = zero;
                for (t, &off) in offsets.iter().enumerate() {
                    let at = (base + off as usize) * c + j;
                    wb[..lanes].copy_from_slice(&w[t * c + j..][..lanes]);
                    xb[..lanes].copy_from_slice(&x[at..][..lanes]);
                    // SAFETY: the buffers hold 16 >= N values.
                    let (xv, wv) = unsafe { (V::load(xb.as_ptr()), V::load(wb.as_ptr())) };
                    acc = V::fma(xv, wv, acc);
                }
                finish_lanes(acc, (bias, bounds), j, lanes, &mut out[(o + q) * c..][..c]);
            }
            o += rows;
        }
        j += lanes;
    }
}

/// [`weighted_grid`] for `R` neighbouring windows (positions 0, 1, … R-1 of `x`, which
/// starts at the first window's base, at register `j` of the channels) whose taps come
/// in rows of three neighbouring offsets: per row, its `R + 2` positions are loaded once
/// and each of the row's three taps reads them from registers. Each window's chain is
/// the same sequence over the taps in order (row by row, then along the row), so the
/// same bits. `w` starts at register `j` of the weights' first row, `out` at the first
/// window's output (all its channels).
#[inline(always)]
fn grid_rows_of_three<V: Lanes, const R: usize>(
    x: &[f32],
    offsets: &[u32],
    w: &[f32],
    (bias, bounds): LanesEpilogue<'_>,
    c: usize,
    j: usize,
    out: &mut [f32],
) {
    const { assert!(R <= 8, "grid_rows_of_three: at most eight windows") };
    let zero = V::splat(0.0);
    let mut acc = [zero; R];
    for (row, first) in offsets.chunks_exact(3).enumerate() {
        let start = first[0] as usize * c;
        // The row's positions for every window: (R - 1) + 2 past the first.
        let reach = &x[start..][..(R + 1) * c + V::N];
        let mut xs = [zero; 10];
        for (i, v) in xs[..R + 2].iter_mut().enumerate() {
            // SAFETY: i * c + N <= (R + 1) * c + N, inside `reach`.
            *v = unsafe { V::load(reach.as_ptr().add(i * c)) };
        }
        let wr = &w[row * 3 * c..][..2 * c + V::N];
        for kx in 0..3 {
            // SAFETY: kx * c + N <= 2 * c + N, inside `wr`.
            let wv = unsafe { V::load(wr.as_ptr().add(kx * c)) };
            for (q, a) in acc.iter_mut().enumerate() {
                *a = V::fma(xs[q + kx], wv, *a);
            }
        }
    }
    for (q, a) in acc.into_iter().enumerate() {
        let y = &mut out[q * c..][..c];
        finish_lanes(a, (bias, bounds), j, V::N, y);
    }
}

/// [`weighted_lanes`]' epilogue on one finished register of chains (channels
/// `j..j + lanes` of one output position `y`): `+ bias`, canonical NaN, clamp, stored.
#[inline(always)]
fn finish_lanes<V: Lanes>(
    acc: V,
    (bias, bounds): LanesEpilogue<'_>,
    j: usize,
    lanes: usize,
    y: &mut [f32],
) {
    let mut buf = [0f32; 16];
    let mut v = match bias {
        Some(b) => {
            buf[..lanes].copy_from_slice(&b[j..][..lanes]);
            // SAFETY: `buf` holds 16 >= N values.
            canonical(acc.add(unsafe { V::load(buf.as_ptr()) }))
        }
        None => canonical(acc),
    };
    if let Some(bounds) = bounds {
        v = clamp(v, bounds);
    }
    if lanes == V::N {
        assert!(j + V::N <= y.len());
        // SAFETY: asserted just above.
        unsafe { v.store(y.as_mut_ptr().add(j)) };
    } else {
        // SAFETY: `buf` holds 16 >= N values.
        unsafe { v.store(buf.as_mut_ptr()) };
        y[j..j + lanes].copy_from_slice(&buf[..lanes]);
    }
}

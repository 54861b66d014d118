//! The engine's bridge to `inferchain-kernels`, where the numerics of every floating-point
//! operator are defined: the kernel ISA this process runs, the thread pool the kernels'
//! tasks go to, and f32 views of candle tensors.
//!
//! The ISA is detected once (the fastest the CPU runs); `INFERCHAIN_KERNEL_ISA=scalar|avx2|
//! avx512|neon` picks a slower one (tests and the determinism matrix use it). It only
//! changes speed: every ISA computes the same bits.

use candle_core::{bail, CpuStorage, Device, Result, Shape, Storage, Tensor};
use inferchain_kernels::{Isa, Parallel};
use std::mem::MaybeUninit;
use std::sync::OnceLock;

/// The kernel ISA of this process.
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        keep_freed_memory();
        let detected = Isa::detect();
        match std::env::var("INFERCHAIN_KERNEL_ISA") {
            Ok(name) => match Isa::from_name(&name) {
                Some(isa) if isa.available() => isa,
                _ => {
                    log::warn!(
                        "INFERCHAIN_KERNEL_ISA={name} is not a kernel ISA this CPU runs; using {}",
                        detected.name()
                    );
                    detected
                }
            },
            Err(_) => detected,
        }
    })
}

/// Asks glibc's allocator to keep freed memory for reuse instead of returning it to the
/// system: a model run allocates and frees tensors of megabytes per operator, and with
/// glibc's defaults each one is a fresh `mmap` whose pages fault in on first write and
/// are unmapped on free (measured: MobileNet-like at batch 8 spent more than half its time
/// there). Called once, from [`isa`]; the process keeps its peak heap.
///
/// glibc serves a block above its largest mmap threshold (32 MiB) with `mmap` whatever the
/// threshold is set to, so tensors above it (MobileNet-like at batch 8: 8 × 96 × 112² f32
/// values, 38.5 MB) still faulted in page by page on every run; `mmap` is now never used
/// for blocks (MobileNet-like batch 8: 41.7 → 31.7 ms, ResNet-like batch 8 unchanged).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `mallopt` only sets allocator parameters; called before any kernel runs, with
    // valid parameter numbers; a refused value leaves glibc's default in place.
    unsafe {
        // Blocks up to glibc's limit (32 MiB) come from the heap, not `mmap`…
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        // …and the heap is never trimmed back to the system, nor grown a page at a time.
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        // …and no block, however large, is a mapping of its own.
        libc::mallopt(libc::M_MMAP_MAX, 0);
    }
}

/// Keeps candle from starting its own element-wise thread pool (candle-core's "barrier
/// pool", used by its large unary and binary operations, whose idle workers spin for
/// 25,000 polls after each operation). The engine's kernels run on
/// [`crate::kernel_threads`], whose workers poll between a run's loops too: two polling
/// pools on the same cores took the cores from each other's work (all-MiniLM-L6-v2 as
/// ONNX, 2 threads on 2 cores: 26.5 ms with candle's pool, 10.8 ms without, 17.3 ms on
/// one thread). Candle's operations that remain in a run (broadcast arithmetic through
/// candle-onnx) then run on the calling thread. Which thread computes an element never
/// changes its bits.
///
/// Sets the environment variable candle reads once (`CANDLE_NUM_THREADS`): call it at
/// the start of `main`, before any other thread starts.
pub fn keep_candle_on_one_thread() {
    std::env::set_var("CANDLE_NUM_THREADS", "1");
}

/// Makes the calling thread one of the threads of rayon's global pool (`threads` in
/// all, counting it; `None`: `RAYON_NUM_THREADS` or one per CPU), as onnxruntime's caller
/// is one of its session's threads: a run started on this thread then goes straight to
/// its parallel loops, with no hand-over to a pool thread (a wake-up and a sleep per
/// run, [`on_pool`]). For a program whose calling thread runs models itself and does not
/// wait on the pool while it does other work: with one thread, work handed to the pool
/// from another thread would wait for it. An error if the pool is already built.
pub fn join_pool(threads: Option<usize>) -> std::result::Result<(), rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .use_current_thread()
        .build_global()
}

/// Runs `work` on one of rayon's pool threads (at once, when called from one): the
/// parallel loops inside it then split among the pool's threads directly, where each loop
/// started from outside the pool would hand its work over and wait for it (a wake-up
/// and a sleep per loop: hundreds per model run). Which thread runs what never changes a
/// bit.
pub fn on_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| work())
}

/// Kernel tasks on the kernels' own threads ([`crate::kernel_threads`]: the caller and
/// `RAYON_NUM_THREADS - 1` workers that poll between loops rather than sleep): one thread
/// at a time takes the next task in order, so the tasks running at any moment are
/// neighbours (they share operands in cache). Which thread computes a task never changes
/// its bits.
pub struct KernelThreads;

impl Parallel for KernelThreads {
    fn run(&self, tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        crate::kernel_threads::run(tasks, task);
    }
}

/// Calls `f` with `t`'s values as a row-major f32 slice (no copy when `t` is already
/// contiguous). Other dtypes are an error naming `op`: the kernels compute in f32.
pub fn with_f32<R>(op: &str, t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    // Channels-last activations (`crate::channels_last`) are transposed block by block.
    if crate::channels_last::is_channels_last(t) {
        if let Some(r) = crate::channels_last::with_row_major(t, f) {
            return Ok(r);
        }
        bail!("{op}: a channels-last tensor could not be read")
    }
    let t = if t.is_contiguous() {
        t.clone()
    } else {
        t.contiguous()?
    };
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(CpuStorage::F32(values)) => {
            let start = layout.start_offset();
            Ok(f(&values[start..start + t.elem_count()]))
        }
        _ => bail!(
            "{op}: {:?} input; the engine's kernels compute in f32 (numerics profile)",
            t.dtype()
        ),
    }
}

/// `t`'s values as a new row-major f32 vector.
pub fn to_f32_vec(op: &str, t: &Tensor) -> Result<Vec<f32>> {
    with_f32(op, t, <[f32]>::to_vec)
}

/// Panics unless `written` is the part given (its address and length): what makes a part
/// returned by a writer ([`written_in_parts`], [`written_on_threads`]) count as
/// initialized.
fn check_given((at, len): (*const f32, usize), written: &[f32], who: &str) {
    assert!(
        written.as_ptr() == at && written.len() == len,
        "{who}: a part came back other than given"
    );
}

/// `parts · part_len` values written part by part, without zeroing them first: `write`
/// gets each part's fresh storage and returns it initialized (as the kernels' `gemm_into`
/// does), checked to be that same part.
pub fn written_in_parts(
    parts: usize,
    part_len: usize,
    mut write: impl FnMut(usize, &mut [MaybeUninit<f32>]) -> &mut [f32],
) -> Vec<f32> {
    let len = parts * part_len;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    for (i, part) in out.spare_capacity_mut()[..len]
        .chunks_exact_mut(part_len.max(1))
        .enumerate()
    {
        let given = (part.as_ptr() as *const f32, part.len());
        check_given(given, write(i, part), "written_in_parts");
    }
    #[allow(unsafe_code)]
    // SAFETY: every part of the first `len` values is initialized: `write` returned it as
    // an `&mut [f32]` (which only initialized memory can be) at the part's own address
    // and length (checked above).
    unsafe {
        out.set_len(len)
    };
    out
}

/// [`written_in_parts`] with the parts written as tasks on the kernels' threads: `len`
/// values in `part_len`-long parts (the last may be shorter), each returned initialized by
/// `write` and checked to be that same part. Nothing is zeroed first: a fresh output
/// written once, not twice (a pass over memory the main thread would otherwise make alone
/// while the workers wait).
pub fn written_on_threads(
    len: usize,
    part_len: usize,
    write: impl for<'a> Fn(usize, &'a mut [MaybeUninit<f32>]) -> &'a mut [f32] + Sync,
) -> Vec<f32> {
    let mut out: Vec<f32> = Vec::with_capacity(len);
    crate::kernel_threads::for_each_chunk_mut(
        &mut out.spare_capacity_mut()[..len],
        part_len.max(1),
        |i, part| {
            let given = (part.as_ptr() as *const f32, part.len());
            check_given(given, write(i, part), "written_on_threads");
        },
    );
    #[allow(unsafe_code)]
    // SAFETY: the parts cover the first `len` values, and each came back from `write` as
    // an `&mut [f32]` (which only initialized memory can be) at its own address and length
    // (checked above); a panic in any part is raised by `for_each_chunk_mut` before this.
    unsafe {
        out.set_len(len)
    };
    out
}

/// `len` values in rows of `row_len` (the last may be shorter), neighbouring rows
/// grouped into at most [`crate::kernel_threads::threads`] ×
/// [`crate::kernel_threads::TASKS_PER_THREAD`] tasks on the kernels' threads: each task
/// zeroes its own rows (in its cache, not a pass of the calling thread while the others
/// wait), then `write(first_row, rows)` fills them.
pub fn rows_on_threads(
    len: usize,
    row_len: usize,
    write: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let row_len = row_len.max(1);
    let per_task = crate::kernel_threads::rows_per_task(len.div_ceil(row_len));
    zeroed_on_threads(len, per_task * row_len, |t, part| write(t * per_task, part))
}

/// `len` values in `part_len`-long parts (the last may be shorter), one task each on the
/// kernels' threads: each task zeroes its own part (in its cache, not a pass of the
/// calling thread while the others wait), then `write(part_index, part)` fills it.
pub fn zeroed_on_threads(
    len: usize,
    part_len: usize,
    write: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    written_on_threads(len, part_len, |t, part| {
        let part = inferchain_kernels::gemm::zeroed(part);
        write(t, part);
        part
    })
}

/// Fresh storage written front to back, a run of values at a time ([`Filling::put`]),
/// then taken as initialized ([`Filling::done`], which checks every value was written):
/// for an output assembled from pieces (rows of a wider scratch) without zeroing it first.
pub struct Filling<'a> {
    dst: &'a mut [MaybeUninit<f32>],
    filled: usize,
}

impl<'a> Filling<'a> {
    pub fn new(dst: &'a mut [MaybeUninit<f32>]) -> Self {
        Filling { dst, filled: 0 }
    }

    /// Writes `values` next (panics past the end).
    pub fn put(&mut self, values: &[f32]) {
        let d = &mut self.dst[self.filled..][..values.len()];
        // Eight at a time: the compiler moves each piece inline (rows of small planes
        // are short; a `memcpy` call per row costs more than the row).
        let mut dc = d.chunks_exact_mut(8);
        let mut sc = values.chunks_exact(8);
        for (d, s) in (&mut dc).zip(&mut sc) {
            for (d, s) in d.iter_mut().zip(s) {
                d.write(*s);
            }
        }
        for (d, s) in dc.into_remainder().iter_mut().zip(sc.remainder()) {
            d.write(*s);
        }
        self.filled += values.len();
    }

    /// Writes `n` zeros next (panics past the end).
    pub fn zeros(&mut self, n: usize) {
        for d in &mut self.dst[self.filled..][..n] {
            d.write(0.0);
        }
        self.filled += n;
    }

    /// The storage, every value written (panics otherwise).
    pub fn done(self) -> &'a mut [f32] {
        assert_eq!(
            self.filled,
            self.dst.len(),
            "Filling: {} of {} values written",
            self.filled,
            self.dst.len()
        );
        #[allow(unsafe_code)]
        // SAFETY: `put` wrote the values `0..filled` in order, each exactly once, and
        // `filled` is the whole length (asserted).
        unsafe {
            &mut *(self.dst as *mut [MaybeUninit<f32>] as *mut [f32])
        }
    }
}

/// A CPU tensor of shape `shape` holding `values`.
pub fn tensor(values: Vec<f32>, shape: impl Into<Shape>) -> Result<Tensor> {
    Tensor::from_vec(values, shape, &Device::Cpu)
}

//! Every SIMD path this CPU runs gives the scalar reference's bits, kernel by kernel, on
//! random inputs with the awkward values mixed in (NaN, ±inf, ±0, subnormals, huge and
//! tiny magnitudes) and lengths that leave every kind of tail.

use inferchain_kernels::{
    self as k, Bias, Isa, MatRef, PackedB, Patches, Sequential, Unary, PADDING,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }

    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * (self.next() as f32 / u32::MAX as f32)
    }

    /// Mostly ordinary values in [-scale, scale], sometimes an awkward one.
    fn value(&mut self, scale: f32) -> f32 {
        match self.next() % 64 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            3 => -0.0,
            4 => f32::from_bits(self.next() % 0x0080_0000), // subnormal
            5 => self.uniform(-100.0, 100.0),
            6 => self.uniform(-1e-3, 1e-3),
            _ => self.uniform(-scale, scale),
        }
    }

    fn values(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.value(scale)).collect()
    }

    /// Finite values only.
    fn finite(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(-scale, scale)).collect()
    }
}

/// The turn to trace: the trace is the process's, and the tests run side by side.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `f` run with the kernels' trace on, and what it recorded: one test at a time.
fn traced<R>(f: impl FnOnce() -> R) -> (R, Vec<k::trace::Record>) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    traced_in_turn(f)
}

/// [`traced`] for a test that holds the turn already.
fn traced_in_turn<R>(f: impl FnOnce() -> R) -> (R, Vec<k::trace::Record>) {
    k::trace::start();
    let out = f();
    (out, k::trace::finish())
}

/// A product's epilogues to test: none; a bias per row of C, then the clamp; a bias per
/// column (`bias` holds at least `max(m, n)` values).
fn epilogues(bias: &[f32], m: usize, n: usize) -> [(Bias<'_>, Option<(f32, f32)>); 3] {
    [
        (Bias::None, None),
        (Bias::Row(&bias[..m]), Some((-0.5, 0.75))),
        (Bias::Col(&bias[..n]), None),
    ]
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn isas() -> Vec<Isa> {
    let found: Vec<Isa> = Isa::ALL.into_iter().filter(|i| i.available()).collect();
    println!("ISAs on this CPU: {found:?}");
    found
}

const LENGTHS: [usize; 12] = [0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 100, 1000];

const UNARY: [Unary; 12] = [
    Unary::Exp,
    Unary::Log,
    Unary::Tanh,
    Unary::Sigmoid,
    Unary::Erf,
    Unary::Gelu,
    Unary::GeluTanh,
    Unary::Silu,
    Unary::Elu { alpha: 0.7 },
    Unary::Selu {
        alpha: 1.673_263_2,
        gamma: 1.050_701,
    },
    Unary::Softplus,
    Unary::HardSigmoid {
        alpha: 0.2,
        beta: 0.5,
    },
];

#[test]
fn unary_functions_agree() {
    let mut rng = Rng(1);
    for isa in isas() {
        for op in UNARY {
            for &n in &LENGTHS {
                for scale in [1.0, 10.0, 90.0] {
                    let x = rng.values(n, scale);
                    let mut want = vec![0f32; n];
                    k::unary(Isa::Scalar, op, &x, &mut want);
                    let mut got = vec![0f32; n];
                    k::unary(isa, op, &x, &mut got);
                    assert_eq!(bits(&got), bits(&want), "{op:?} on {isa:?}, n = {n}");
                    let mut inplace = x.clone();
                    k::unary_in_place(isa, op, &mut inplace);
                    assert_eq!(bits(&inplace), bits(&want), "{op:?} in place on {isa:?}");
                    assert!(got
                        .iter()
                        .all(|v| !v.is_nan() || v.to_bits() == 0x7fc0_0000));
                }
            }
        }
    }
}

#[test]
fn reductions_and_rows_agree() {
    let mut rng = Rng(2);
    for isa in isas() {
        for &n in &LENGTHS {
            for trial in 0..4 {
                // Trial 0 mixes in awkward values; the others are finite.
                let x = if trial == 0 {
                    rng.values(n, 50.0)
                } else {
                    rng.finite(n, 1e3_f32.powi(trial - 1))
                };
                let s = k::sum(isa, &x);
                assert_eq!(
                    s.to_bits(),
                    k::sum(Isa::Scalar, &x).to_bits(),
                    "sum {isa:?} {n}"
                );
                let m = k::max(isa, &x);
                assert_eq!(
                    m.to_bits(),
                    k::max(Isa::Scalar, &x).to_bits(),
                    "max {isa:?} {n}"
                );
                let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
                k::softmax(isa, &x, &mut a);
                k::softmax(Isa::Scalar, &x, &mut b);
                assert_eq!(bits(&a), bits(&b), "softmax {isa:?} {n}");
                k::log_softmax(isa, &x, &mut a);
                k::log_softmax(Isa::Scalar, &x, &mut b);
                assert_eq!(bits(&a), bits(&b), "log_softmax {isa:?} {n}");
                let scale = rng.finite(n, 2.0);
                let bias = rng.finite(n, 1.0);
                for with_bias in [true, false] {
                    let bias = with_bias.then_some(bias.as_slice());
                    k::layer_norm(isa, &x, &scale, bias, 1e-5, &mut a);
                    k::layer_norm(Isa::Scalar, &x, &scale, bias, 1e-5, &mut b);
                    assert_eq!(bits(&a), bits(&b), "layer_norm {isa:?} {n}");
                }
                let (mean, rstd) = k::moments(isa, &x, 1e-3);
                k::normalize_channel(isa, &x, mean, rstd, 0.7, -0.1, &mut a);
                k::normalize_channel(Isa::Scalar, &x, mean, rstd, 0.7, -0.1, &mut b);
                assert_eq!(bits(&a), bits(&b), "normalize_channel {isa:?} {n}");
            }
        }
    }
}

/// The sum's order is its definition: 16 partials, then the tree. A sum that is not
/// associative in f32 shows the order.
#[test]
fn sum_follows_the_sixteen_lane_order() {
    let mut x = vec![1.0f32; 40];
    x[0] = 1e8;
    x[16] = -1e8;
    // Partial 0 gets 1e8 + -1e8 + 1 = 1 (x[32]); the others 2 or 3 ones each.
    let mut lanes = [0f32; 16];
    for (i, v) in x.iter().enumerate() {
        lanes[i % 16] += v;
    }
    for half in [8, 4, 2] {
        for j in 0..half {
            lanes[j] += lanes[j + half];
        }
    }
    let want = lanes[0] + lanes[1];
    for isa in isas() {
        assert_eq!(k::sum(isa, &x), want, "{isa:?}");
    }
    // A left-to-right sum gives something else here, which is why the order is fixed.
    assert_ne!(x.iter().fold(0f32, |a, b| a + b), want);
}

fn gemm_case(rng: &mut Rng, m: usize, n: usize, kk: usize, transposed_a: bool, bias: u8) {
    let a_data = rng.finite(m * kk, 1.0);
    let b_data = rng.finite(kk * n, 1.0);
    let a = if transposed_a {
        MatRef::row_major(&a_data, kk, m).t()
    } else {
        MatRef::row_major(&a_data, m, kk)
    };
    let b = MatRef::row_major(&b_data, kk, n);
    let mut want = vec![0f32; m * n];
    k::gemm_reference(a, b, &mut want);
    let row_bias = rng.finite(m, 1.0);
    let col_bias = rng.finite(n, 1.0);
    let bias = match bias {
        1 => {
            for i in 0..m {
                for j in 0..n {
                    want[i * n + j] += row_bias[i];
                }
            }
            Bias::Row(&row_bias)
        }
        2 => {
            for i in 0..m {
                for j in 0..n {
                    want[i * n + j] += col_bias[j];
                }
            }
            Bias::Col(&col_bias)
        }
        _ => Bias::None,
    };
    for isa in isas() {
        let packed = PackedB::pack(isa, b);
        let mut got = vec![f32::NAN; m * n];
        k::gemm(isa, a, &packed, bias, &mut got, &Sequential);
        assert_eq!(
            bits(&got),
            bits(&want),
            "gemm {isa:?} m={m} n={n} k={kk} transposed_a={transposed_a}"
        );
        // Transposed B packs to the same panels.
        let bt_data: Vec<f32> = (0..n * kk).map(|i| b_data[(i % kk) * n + i / kk]).collect();
        let packed_t = PackedB::pack(isa, MatRef::row_major(&bt_data, n, kk).t());
        let mut got_t = vec![0f32; m * n];
        k::gemm(isa, a, &packed_t, bias, &mut got_t, &Sequential);
        assert_eq!(bits(&got_t), bits(&want), "gemm with B transposed, {isa:?}");
    }
}

#[test]
fn gemm_agrees_with_the_definition() {
    let mut rng = Rng(3);
    let sizes = [1, 2, 5, 6, 12, 13, 17, 31, 32, 33, 64, 97];
    for (t, &m) in sizes.iter().enumerate() {
        for &n in &sizes {
            let kk = [1, 3, 16, 40, 300][(t + n) % 5];
            gemm_case(
                &mut rng,
                m,
                n,
                kk,
                (m + n) % 2 == 0,
                ((m * 7 + n) % 3) as u8,
            );
        }
    }
    // K longer than one K block (512 steps on a 16-wide panel, 128 on a 64-wide one), M
    // over one task's rows, N over one task's panels: the chain continues across blocks
    // and tasks.
    gemm_case(&mut rng, 200, 300, 700, false, 2);
    gemm_case(&mut rng, 7, 1000, 1030, true, 1);
    // A packed (not contiguous along K) with rows for several tasks: each task takes
    // every panel and packs its own rows, K block by K block, the last tile partial.
    gemm_case(&mut rng, 601, 70, 600, true, 1);
    // K = 0: all zeros (plus bias).
    gemm_case(&mut rng, 3, 5, 0, false, 2);
}

/// Every task on its own thread, the last first.
struct Reversed;

impl k::Parallel for Reversed {
    fn run(&self, tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        std::thread::scope(|s| {
            for t in (0..tasks).rev() {
                s.spawn(move || task(t));
            }
        });
    }
}

/// Parallel tasks (any order, any thread) give the same bits as one after another.
#[test]
fn gemm_tasks_in_any_order_give_the_same_bits() {
    let mut rng = Rng(4);
    let (m, n, kk) = (300, 500, 600);
    let a_data = rng.finite(m * kk, 1.0);
    let b_data = rng.finite(kk * n, 1.0);
    let a = MatRef::row_major(&a_data, m, kk);
    for isa in isas() {
        let packed = PackedB::pack(isa, MatRef::row_major(&b_data, kk, n));
        let mut one = vec![0f32; m * n];
        k::gemm(isa, a, &packed, Bias::None, &mut one, &Sequential);
        let mut many = vec![0f32; m * n];
        k::gemm(isa, a, &packed, Bias::None, &mut many, &Reversed);
        assert_eq!(bits(&one), bits(&many), "{isa:?}");
    }
}

/// A packed B counts the same bytes on every ISA, whatever its panel width: a model's
/// memory cost, which counts them, is consensus data.
#[test]
fn a_packed_b_counts_the_same_bytes_on_every_isa() {
    let mut rng = Rng(12);
    for &(kk, n) in &[(7, 33), (24, 100), (1, 1), (0, 5), (16, 64)] {
        let b_data = rng.finite(kk * n, 1.0);
        for isa in isas() {
            let packed = PackedB::pack(isa, MatRef::row_major(&b_data, kk, n));
            assert_eq!(packed.bytes(), kk * n * 4, "{isa:?} {kk}×{n}");
        }
    }
}

/// A product whose B is given by its rows and packed panel by panel as it goes
/// (`gemm_rows`) gives the bits of the same product with B packed first: K over several K blocks, a last panel
/// narrower than the others, M over one filled task's rows, A read in place and packed,
/// with the clamp, a bias of either kind, awkward values, and tasks in any order; its
/// traced form (B packed, then the recorded product) too.
#[test]
fn b_packed_from_rows_as_it_goes_gives_the_packed_products_bits() {
    let mut rng = Rng(9);
    for &(m, n, kk, transposed_a) in &[
        (64, 3133, 576, false),
        (13, 47, 300, true),
        // A packed by shared tasks over several row blocks, the last tile of two rows.
        (1100, 150, 600, true),
        (600, 70, 130, false),
        (5, 33, 1, false),
        (3, 9, 0, false),
    ] {
        let a_data = rng.values(m * kk, 1.0);
        let b_data = rng.values(kk * n, 1.0);
        let bias_data = rng.finite(m.max(n), 1.0);
        let a = if transposed_a {
            MatRef::row_major(&a_data, kk, m).t()
        } else {
            MatRef::row_major(&a_data, m, kk)
        };
        let b = MatRef::row_major(&b_data, kk, n);
        // Rows longer than N (runs of a longer plane), read only to N.
        let wider: Vec<Vec<f32>> = (0..kk)
            .map(|r| {
                let mut row = b_data[r * n..][..n].to_vec();
                row.extend([f32::NAN; 5]);
                row
            })
            .collect();
        let rows: Vec<&[f32]> = wider.iter().map(Vec::as_slice).collect();
        for isa in isas() {
            let packed = PackedB::pack(isa, b);
            for (bias, clamp) in epilogues(&bias_data, m, n) {
                let mut want = vec![0f32; m * n];
                k::gemm_clamped(isa, a, &packed, bias, clamp, &mut want, &Sequential);
                for par in [&Sequential as &dyn k::Parallel, &Reversed] {
                    let mut fresh = vec![std::mem::MaybeUninit::uninit(); m * n];
                    let got = k::gemm::gemm_rows(isa, a, &rows, n, bias, clamp, &mut fresh, par);
                    assert_eq!(bits(got), bits(&want), "gemm_rows {isa:?} {m}x{n}x{kk}");
                }
                let mut fresh = vec![std::mem::MaybeUninit::uninit(); m * n];
                let (got, records) = traced(|| {
                    bits(k::gemm_rows(
                        isa,
                        a,
                        &rows,
                        n,
                        bias,
                        clamp,
                        &mut fresh,
                        &Sequential,
                    ))
                });
                assert_eq!(got, bits(&want), "traced gemm_rows {isa:?} {m}x{n}x{kk}");
                let recorded = records.iter().any(|r| {
                    matches!(r.call, k::call::Call::Gemm { m: rm, n: rn, k: rk, .. }
                        if (rm, rn, rk) == (m as u32, n as u32, kk as u32))
                });
                assert!(recorded, "the traced product is recorded as a gemm call");
            }
        }
    }
}

/// A product storing only some of C's columns (`gemm_rows_kept`: a convolution's wide
/// output less its dropped columns) gives, in its kept columns, the bits of the whole
/// product: periods shorter and longer than a panel, K over several K blocks, M over
/// several row blocks, several panels a task, every column kept, no rows or no columns,
/// the fallbacks (A packed, no chain), a bias of either kind and the clamp, tasks in any
/// order; its traced form too. A keep outside `1 ..= period` is refused.
#[test]
fn kept_columns_are_the_whole_products_bits() {
    for (period, kept) in [(5, 0), (5, 6), (0, 0)] {
        let made = std::panic::catch_unwind(|| k::KeptColumns::new(period, kept));
        assert!(made.is_err(), "{kept} of every {period} columns kept");
    }
    // The trace's turn for the whole test: its untraced products would land in another
    // test's trace.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng(21);
    for &(m, n, kk, period, kept, transposed_a) in &[
        (64, 300, 576, 57, 55, false),
        (13, 47, 300, 5, 3, false),
        (600, 70, 130, 10, 9, false),
        (32, 1000, 27, 113, 112, false),
        (5, 33, 3, 33, 33, false),
        (7, 40, 1, 17, 1, false),
        // Several panels a task (its panel buffer reused): over 64 panels on AVX2's
        // 16-column panels, over 64 on AVX-512's 64-column ones.
        (16, 4200, 40, 30, 28, false),
        (13, 47, 300, 6, 4, true),
        (3, 9, 0, 4, 3, false),
        (0, 50, 10, 7, 5, false),
        (4, 0, 10, 7, 5, false),
        (4, 0, 10, 7, 5, true),
    ] {
        let keep = k::KeptColumns::new(period, kept);
        let width = keep.count(n);
        let a_data = rng.values(m * kk, 1.0);
        let b_data = rng.values(kk * n, 1.0);
        let bias_data = rng.finite(m.max(n), 1.0);
        let a = if transposed_a {
            MatRef::row_major(&a_data, kk, m).t()
        } else {
            MatRef::row_major(&a_data, m, kk)
        };
        let rows: Vec<&[f32]> = (0..kk).map(|r| &b_data[r * n..][..n]).collect();
        let kept_of = |whole: &[f32]| -> Vec<u32> {
            let mut out = Vec::new();
            for i in 0..m {
                for j in (0..n).filter(|j| j % period < kept) {
                    out.push(whole[i * n + j].to_bits());
                }
            }
            out
        };
        for isa in isas() {
            let packed = PackedB::pack(isa, MatRef::row_major(&b_data, kk, n));
            for (bias, clamp) in epilogues(&bias_data, m, n) {
                let mut whole = vec![0f32; m * n];
                k::gemm_clamped(isa, a, &packed, bias, clamp, &mut whole, &Sequential);
                let want = kept_of(&whole);
                let case = format!("{isa:?} {m}x{n}x{kk}, {kept} of {period}");
                for par in [&Sequential as &dyn k::Parallel, &Reversed] {
                    let mut fresh = vec![std::mem::MaybeUninit::uninit(); m * width];
                    let got = k::gemm::gemm_rows_kept(
                        isa, a, &rows, n, keep, bias, clamp, &mut fresh, par,
                    );
                    assert_eq!(bits(got), want, "gemm_rows_kept {case}");
                }
                let mut fresh = vec![std::mem::MaybeUninit::uninit(); m * width];
                let (got, records) = traced_in_turn(|| {
                    bits(k::gemm_rows_kept(
                        isa,
                        a,
                        &rows,
                        n,
                        keep,
                        bias,
                        clamp,
                        &mut fresh,
                        &Sequential,
                    ))
                });
                assert_eq!(got, want, "traced gemm_rows_kept {case}");
                let recorded = records.iter().any(|r| {
                    matches!(r.call, k::call::Call::Gemm { m: rm, n: rn, k: rk, .. }
                        if (rm, rn, rk) == (m as u32, n as u32, kk as u32))
                });
                assert!(
                    recorded,
                    "the traced product is recorded as the whole gemm call"
                );
            }
        }
    }
}

/// A square convolution window over planes `h × w`: per output position (row, column)
/// and kernel position, the offset in the plane it reads, or `PADDING`.
fn patch_positions(
    (h, w): (usize, usize),
    (kernel, stride, pad): (usize, usize, usize),
) -> Vec<u32> {
    let out = |len: usize| (len + 2 * pad - kernel) / stride + 1;
    let mut positions = Vec::new();
    for oy in 0..out(h) {
        for ox in 0..out(w) {
            for ky in 0..kernel {
                for kx in 0..kernel {
                    let (y, x) = (oy * stride + ky, ox * stride + kx);
                    let inside = (pad..h + pad).contains(&y) && (pad..w + pad).contains(&x);
                    positions.push(if inside {
                        ((y - pad) * w + (x - pad)) as u32
                    } else {
                        PADDING
                    });
                }
            }
        }
    }
    positions
}

/// A product whose A is a convolution's patches, gathered from the input as A is packed,
/// gives the bits of the same product over the written matrix (im2col's): padding, runs
/// of neighbouring positions and positions split across rows and samples, strides, a
/// one-position kernel, more kernel positions than a K block, K over several blocks, no
/// channels (K = 0), A packed by shared tasks and by each task (on 16- and 64-column
/// panels), biases and the clamp, tasks in any order; its traced form records the
/// written matrix's product.
#[test]
fn a_gathered_from_patches_gives_the_written_matrixs_bits() {
    // The whole test in the trace's turn: its many untraced products would otherwise
    // land in another test's trace, whose record counts they would change.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng(21);
    // (samples, channels, h, w), (kernel, stride, pad), N; and channels before the read
    // ones in each sample (a later group's).
    for &(input, window, n, skip) in &[
        ((1, 5, 14, 14), (3, 1, 1), 40, 0),
        ((3, 70, 7, 7), (3, 1, 1), 33, 2),
        ((3, 70, 7, 7), (3, 1, 1), 150, 0),
        ((2, 3, 9, 11), (3, 2, 1), 20, 1),
        ((8, 2, 5, 5), (1, 1, 0), 17, 3),
        ((2, 600, 3, 3), (1, 1, 0), 20, 0),
        ((4, 64, 14, 14), (3, 1, 1), 150, 0),
        ((1, 4, 3, 3), (5, 1, 2), 16, 0),
        ((1, 2, 13, 13), (13, 1, 6), 20, 0),
        // More kernel positions than a K block on every ISA (512 steps at most).
        ((1, 2, 23, 23), (23, 1, 11), 5, 0),
        ((2, 0, 4, 4), (3, 1, 1), 5, 1),
        // No channels, and panels for several tasks: A packed for them shares nothing.
        ((2, 0, 4, 4), (3, 1, 1), 40, 1),
    ] {
        let (samples, channels, h, w) = input;
        let kernel = window.0;
        let plane = h * w;
        let stride = (skip + channels) * plane;
        let all = rng.values(samples * stride, 1.0);
        // The read channels of the first sample onward.
        let data = &all[skip * plane..];
        let positions = patch_positions((h, w), window);
        let taps = kernel * kernel;
        let patches = Patches {
            data,
            positions: &positions,
            taps,
            channels,
            channel_stride: plane,
            samples,
            sample_stride: stride,
        };
        let per_sample = positions.len() / taps;
        let (m, kk) = (samples * per_sample, channels * taps);
        // im2col's matrix, written: row (sample, position), column (channel, kernel
        // position).
        let written: Vec<f32> = (0..m * kk)
            .map(|e| {
                let (i, col) = (e / kk, e % kk);
                let (s, o) = (i / per_sample, i % per_sample);
                match positions[o * taps + col % taps] {
                    PADDING => 0.0,
                    at => all[s * stride + (skip + col / taps) * plane + at as usize],
                }
            })
            .collect();
        let a = MatRef::row_major(&written, m, kk);
        let b_data = rng.values(kk * n, 1.0);
        let bias_data = rng.finite(m.max(n), 1.0);
        for isa in isas() {
            let packed = PackedB::pack(isa, MatRef::row_major(&b_data, kk, n));
            for (bias, clamp) in epilogues(&bias_data, m, n) {
                let mut want = vec![0f32; m * n];
                k::gemm_clamped(isa, a, &packed, bias, clamp, &mut want, &Sequential);
                // A read transposed (packed by the product) too.
                let t_data: Vec<f32> = (0..m * kk).map(|e| written[e % m * kk + e / m]).collect();
                let mut via_t = vec![0f32; m * n];
                let at = MatRef::row_major(&t_data, kk, m).t();
                k::gemm_clamped(isa, at, &packed, bias, clamp, &mut via_t, &Sequential);
                assert_eq!(bits(&via_t), bits(&want), "transposed {isa:?} {m}x{n}x{kk}");
                for par in [&Sequential as &dyn k::Parallel, &Reversed] {
                    let mut fresh = vec![std::mem::MaybeUninit::uninit(); m * n];
                    let got = k::gemm_into(isa, patches, &packed, bias, clamp, &mut fresh, par);
                    assert_eq!(bits(got), bits(&want), "patches {isa:?} {m}x{n}x{kk}");
                }
                let mut fresh = vec![std::mem::MaybeUninit::uninit(); m * n];
                let (got, records) = traced_in_turn(|| {
                    bits(k::gemm_into(
                        isa,
                        patches,
                        &packed,
                        bias,
                        clamp,
                        &mut fresh,
                        &Sequential,
                    ))
                });
                assert_eq!(got, bits(&want), "traced patches {isa:?} {m}x{n}x{kk}");
                let recorded = records.iter().any(|r| {
                    matches!(&r.call, k::call::Call::Gemm { m: rm, a: ra, .. }
                        if *rm == m as u32 && bits(ra) == bits(&written))
                });
                assert!(recorded, "the traced product records the written matrix");
            }
        }
    }
}

/// Patches whose positions read past the input are refused before any task runs.
#[test]
#[should_panic(expected = "patches: a position reads past the input")]
fn patches_past_the_input_are_refused() {
    let data = vec![1f32; 8];
    // Two channels two apart, two samples four apart: position 2 reads the second
    // sample's second channel at 8, past the input (a padded position reads nothing).
    let patches = Patches {
        data: &data,
        positions: &[PADDING, 2],
        taps: 1,
        channels: 2,
        channel_stride: 2,
        samples: 2,
        sample_stride: 4,
    };
    let packed = PackedB::pack(Isa::Scalar, MatRef::row_major(&[1.0; 2], 2, 1));
    let mut c = vec![0f32; 4];
    k::gemm(
        Isa::Scalar,
        patches,
        &packed,
        Bias::None,
        &mut c,
        &Sequential,
    );
}

/// The depthwise kernel computes the matrix product's bits.
#[test]
fn weighted_rows_is_a_one_row_gemm() {
    let mut rng = Rng(5);
    for &(k, p) in &[
        (1usize, 1usize),
        (9, 3136),
        (9, 17),
        (25, 100),
        (4, 64),
        (3, 0),
    ] {
        let rows = rng.values(k * p, 2.0);
        let w = rng.finite(k, 1.0);
        for bias in [None, Some(0.25f32)] {
            let mut want = vec![0f32; p];
            let b = [bias.unwrap_or(0.0)];
            let packed = PackedB::pack(Isa::Scalar, MatRef::row_major(&rows, k, p));
            let bias_arg = if bias.is_some() {
                Bias::Row(&b)
            } else {
                Bias::None
            };
            k::gemm(
                Isa::Scalar,
                MatRef::row_major(&w, 1, k),
                &packed,
                bias_arg,
                &mut want,
                &Sequential,
            );
            for isa in isas() {
                let mut got = vec![f32::NAN; p];
                k::weighted_rows(isa, &rows, &w, bias, &mut got);
                assert_eq!(bits(&got), bits(&want), "{isa:?} k={k} p={p} bias={bias:?}");
            }
        }
    }
}

/// A product with the clamp fused into its epilogue (`gemm_clamped`, `gemm_into` on fresh
/// memory, `weighted_slices_clamped`) gives the bits of the plain product clamped after
/// it, NaNs and infinities included; B packed by parallel tasks is B packed in order.
#[test]
fn fused_clamps_give_the_product_then_the_clamp() {
    let mut rng = Rng(6);
    let bounds = (-0.5f32, 0.75f32);
    for &(m, n, kk) in &[
        (13usize, 45usize, 7usize),
        (96, 200, 16),
        (5, 33, 300),
        (1, 1, 1),
        (4, 7, 0),
    ] {
        let a_data = rng.values(m * kk, 1.0);
        let b_data = rng.values(kk * n, 1.0);
        let a = MatRef::row_major(&a_data, m, kk);
        let b = MatRef::row_major(&b_data, kk, n);
        let row_bias = rng.finite(m, 1.0);
        let col_bias = rng.finite(n, 1.0);
        for isa in isas() {
            let packed = PackedB::pack(isa, b);
            let packed_par = PackedB::pack_with(isa, b, &Sequential);
            assert_eq!(
                bits(&packed.unpack()),
                bits(&packed_par.unpack()),
                "pack_with {isa:?}"
            );
            for bias in [Bias::None, Bias::Row(&row_bias), Bias::Col(&col_bias)] {
                let mut want = vec![0f32; m * n];
                k::gemm(isa, a, &packed, bias, &mut want, &Sequential);
                k::clamp_slice(&mut want, bounds);
                let mut got = vec![f32::NAN; m * n];
                k::gemm_clamped(
                    isa,
                    a,
                    &packed_par,
                    bias,
                    Some(bounds),
                    &mut got,
                    &Sequential,
                );
                assert_eq!(bits(&got), bits(&want), "gemm_clamped {isa:?} {m}x{n}x{kk}");
                let mut fresh = vec![std::mem::MaybeUninit::<f32>::uninit(); m * n];
                let into =
                    k::gemm_into(isa, a, &packed, bias, Some(bounds), &mut fresh, &Sequential);
                assert_eq!(bits(into), bits(&want), "gemm_into {isa:?} {m}x{n}x{kk}");
            }
        }
    }
    for &(taps, p) in &[(9usize, 3191usize), (9, 17), (25, 64)] {
        let rows = rng.values(taps * p, 2.0);
        let slices: Vec<&[f32]> = rows.chunks_exact(p).collect();
        let w = rng.finite(taps, 1.0);
        for isa in isas() {
            let mut want = vec![0f32; p];
            k::weighted_slices(isa, &slices, &w, Some(0.25), &mut want);
            k::clamp_slice(&mut want, bounds);
            let mut got = vec![0f32; p];
            k::weighted_slices_clamped(isa, &slices, &w, Some(0.25), Some(bounds), &mut got);
            assert_eq!(
                bits(&got),
                bits(&want),
                "weighted_slices_clamped {isa:?} {taps}x{p}"
            );
            assert!(want.iter().all(|v| v.is_nan() || (-0.5..=0.75).contains(v)));
        }
    }
}

/// `weighted_slices_rows` (several weight rows over the same input rows, a register
/// loaded once for four of them) gives, on every ISA, the bits `weighted_slices_clamped`
/// gives row by row on the scalar reference: row counts that leave 1 to 3 past the last
/// group of four, output lengths that leave every register tail, bias, clamp or not;
/// input rows that end with the output or run on past it (`weighted_slices` too).
#[test]
fn weighted_slices_rows_is_weighted_slices_per_row() {
    let mut rng = Rng(11);
    for &(taps, p, m) in &[
        (27usize, 1056usize, 16usize),
        (27, 1056, 6),
        (8, 37, 5),
        (3, 1, 7),
        (1, 33, 4),
        (0, 9, 3),
        (5, 0, 2),
        (9, 100, 0),
    ] {
        let rows = rng.values(taps * p, 2.0);
        let slices: Vec<&[f32]> = (0..taps).map(|i| &rows[i * p..][..p]).collect();
        // The same rows running on past `p` (into the next row; the last one not): a
        // last, partial register is then read in place, its extra lanes dropped.
        let running_on: Vec<&[f32]> = (0..taps).map(|i| &rows[i * p..]).collect();
        let w = rng.values(m * taps, 1.0);
        let bias = rng.finite(m, 1.0);
        for b in [None, Some(&bias[..])] {
            for bounds in [None, Some((-0.5f32, 0.75f32))] {
                let mut want = vec![0f32; m * p];
                for (i, y) in want.chunks_exact_mut(p.max(1)).take(m).enumerate() {
                    let wi = &w[i * taps..][..taps];
                    let bi = b.map(|b| b[i]);
                    k::weighted_slices_clamped(Isa::Scalar, &slices, wi, bi, bounds, y);
                }
                for isa in isas() {
                    for (given, rows) in [("exact", &slices), ("running on", &running_on)] {
                        let mut got = vec![f32::NAN; m * p];
                        k::weighted_slices_rows(isa, rows, &w, b, bounds, m, &mut got);
                        assert_eq!(
                            bits(&got),
                            bits(&want),
                            "{isa:?} {given} k={taps} p={p} m={m} bias={} clamp={}",
                            b.is_some(),
                            bounds.is_some()
                        );
                        for (i, y) in got.chunks_exact_mut(p.max(1)).take(m).enumerate() {
                            let wi = &w[i * taps..][..taps];
                            k::weighted_slices_clamped(isa, rows, wi, b.map(|b| b[i]), bounds, y);
                        }
                        assert_eq!(bits(&got), bits(&want), "{isa:?} {given} one row at a time");
                    }
                }
            }
        }
    }
}

/// `weighted_lanes` (channels last, lanes across channels) gives, on every ISA, the bits
/// `weighted_slices_clamped` gives channel by channel on the scalar reference: padding
/// taps read +0, bias per channel, clamp or not, channel counts that leave every tail.
#[test]
fn weighted_lanes_is_weighted_slices_per_channel() {
    let mut rng = Rng(7);
    for &(c, inputs, positions, taps) in &[
        (1usize, 9usize, 4usize, 9usize),
        (7, 16, 4, 9),
        (16, 16, 4, 9),
        (33, 25, 9, 9),
        (336, 16, 4, 9),
        (48, 64, 16, 25),
        // Positions that leave 3 and 2 past the last group of four.
        (32, 20, 7, 9),
        (24, 12, 6, 4),
    ] {
        let x = rng.values(inputs * c, 2.0);
        let w = rng.values(taps * c, 1.0);
        let bias = rng.finite(c, 1.0);
        // Each tap reads a random position, or padding one time in four.
        let at: Vec<u32> = (0..positions * taps)
            .map(|_| match rng.next() % 4 {
                0 => k::PADDING,
                _ => rng.next() % inputs as u32,
            })
            .collect();
        for (bias, bounds) in [
            (None, None),
            (Some(&bias[..]), None),
            (Some(&bias[..]), Some((-0.5f32, 0.75f32))),
        ] {
            let mut want = vec![0f32; positions * c];
            for ch in 0..c {
                let rows: Vec<Vec<f32>> = (0..taps)
                    .map(|t| {
                        (0..positions)
                            .map(|o| match at[o * taps + t] {
                                k::PADDING => 0.0,
                                p => x[p as usize * c + ch],
                            })
                            .collect()
                    })
                    .collect();
                let slices: Vec<&[f32]> = rows.iter().map(|r| &r[..]).collect();
                let wc: Vec<f32> = (0..taps).map(|t| w[t * c + ch]).collect();
                let mut y = vec![0f32; positions];
                let b = bias.map(|b| b[ch]);
                k::weighted_slices_clamped(Isa::Scalar, &slices, &wc, b, bounds, &mut y);
                for (o, v) in y.iter().enumerate() {
                    want[o * c + ch] = *v;
                }
            }
            for isa in isas() {
                let mut got = vec![f32::NAN; positions * c];
                k::weighted_lanes(isa, &x, &at, &w, bias, bounds, c, &mut got);
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "weighted_lanes {isa:?} c={c} taps={taps} bias={} clamp={}",
                    bias.is_some(),
                    bounds.is_some()
                );
            }
        }
    }
}

/// `weighted_grid` (taps at a window's base plus a fixed offset each, none reading
/// padding) gives, on every ISA, the bits `weighted_lanes` gives on the scalar reference
/// over the same taps listed one by one: channel counts that leave every register tail,
/// position counts that leave every remainder past the groups of eight, NaN, ±∞ and
/// subnormal inputs, bias and clamp or not; and traced, the same bits again.
#[test]
fn weighted_grid_is_weighted_lanes_over_the_listed_taps() {
    let mut rng = Rng(11);
    for &(c, inputs, positions, taps) in &[
        (1usize, 40usize, 8usize, 9usize),
        (16, 64, 8, 9),
        (21, 100, 13, 9),
        (48, 200, 31, 25),
        (384, 64, 17, 9),
        (7, 30, 3, 4),
        (33, 50, 16, 1),
    ] {
        let mut x = rng.values(inputs * c, 2.0);
        for (i, special) in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e-40, -0.0]
            .into_iter()
            .enumerate()
        {
            let at = (i * 37) % x.len();
            x[at] = special;
        }
        let w = rng.values(taps * c, 1.0);
        let bias = rng.finite(c, 1.0);
        let offsets: Vec<u32> = (0..taps).map(|_| rng.next() % 10).collect();
        let reach = offsets.iter().max().copied().unwrap_or(0);
        let bases: Vec<u32> = (0..positions)
            .map(|_| rng.next() % (inputs as u32 - reach))
            .collect();
        let at: Vec<u32> = bases
            .iter()
            .flat_map(|&b| offsets.iter().map(move |&t| b + t))
            .collect();
        for (bias, bounds) in [
            (None, None),
            (Some(&bias[..]), None),
            (Some(&bias[..]), Some((-0.5f32, 0.75f32))),
        ] {
            let mut want = vec![0f32; positions * c];
            k::weighted_lanes(Isa::Scalar, &x, &at, &w, bias, bounds, c, &mut want);
            for isa in isas() {
                let mut got = vec![f32::NAN; positions * c];
                k::weighted_grid(isa, &x, &bases, &offsets, &w, bias, bounds, c, &mut got);
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "weighted_grid {isa:?} c={c} positions={positions} taps={taps}"
                );
            }
            let mut got = vec![f32::NAN; positions * c];
            let ((), records) = traced(|| {
                k::weighted_grid(
                    Isa::Scalar,
                    &x,
                    &bases,
                    &offsets,
                    &w,
                    bias,
                    bounds,
                    c,
                    &mut got,
                )
            });
            assert_eq!(
                records.len(),
                c,
                "a traced weighted_grid records a call per channel"
            );
            assert_eq!(bits(&got), bits(&want), "traced weighted_grid c={c}");
        }
    }
}

/// `weighted_grid` over a real padded plane's 3×3 (and 3×5, 1×3) windows, where runs of
/// eight neighbouring windows take the path that loads each row of positions once: on
/// every ISA the bits `weighted_lanes` gives on the scalar reference, for channel counts
/// of whole registers (the path) and not, windows straddling a row end (the other path)
/// and NaN, ±∞, subnormal and -0 inputs.
#[test]
fn weighted_grid_over_rows_of_three_taps_is_weighted_lanes() {
    // The turn to trace, held throughout: a traced test beside this one would record its
    // calls.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng(12);
    for &(c, wp, hp, kh, kw) in &[
        (16usize, 11usize, 9usize, 3usize, 3usize),
        (48, 18, 6, 3, 3),
        (64, 10, 10, 1, 3),
        (32, 12, 7, 3, 5),
        (20, 11, 9, 3, 3),
    ] {
        let inputs = wp * hp;
        let mut x = rng.values(inputs * c, 2.0);
        for (i, special) in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e-40, -0.0]
            .into_iter()
            .enumerate()
        {
            let at = (i * 53) % x.len();
            x[at] = special;
        }
        let w = rng.values(kh * kw * c, 1.0);
        let bias = rng.finite(c, 1.0);
        let offsets: Vec<u32> = (0..kh)
            .flat_map(|ky| (0..kw).map(move |kx| (ky * wp + kx) as u32))
            .collect();
        // Every window inside the plane, row by row: runs of wp - kw + 1 neighbours.
        let bases: Vec<u32> = (0..=hp - kh)
            .flat_map(|oy| (0..=wp - kw).map(move |ox| (oy * wp + ox) as u32))
            .collect();
        let at: Vec<u32> = bases
            .iter()
            .flat_map(|&b| offsets.iter().map(move |&t| b + t))
            .collect();
        for (bias, bounds) in [(None, None), (Some(&bias[..]), Some((-0.5f32, 0.75f32)))] {
            let mut want = vec![0f32; bases.len() * c];
            k::weighted_lanes(Isa::Scalar, &x, &at, &w, bias, bounds, c, &mut want);
            for isa in isas() {
                let mut got = vec![f32::NAN; bases.len() * c];
                k::weighted_grid(isa, &x, &bases, &offsets, &w, bias, bounds, c, &mut got);
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "weighted_grid {isa:?} c={c} plane {wp}x{hp} kernel {kh}x{kw}"
                );
            }
        }
    }
}

/// A grid whose last window reaches past the input is refused, not read.
#[test]
#[should_panic(expected = "weighted_grid: a tap reads outside the input")]
fn weighted_grid_refuses_a_window_past_the_input() {
    let (c, inputs) = (4usize, 10usize);
    let x = vec![1f32; inputs * c];
    let w = vec![1f32; 2 * c];
    let mut out = vec![0f32; 2 * c];
    k::weighted_grid(
        Isa::Scalar,
        &x,
        &[0, 8],
        &[0, 2],
        &w,
        None,
        None,
        c,
        &mut out,
    );
}

/// `window_max_runs` (a pooling window's maximum, lanes across outputs) gives, on every
/// ISA, the bits `window::max` gives element by element: NaN anywhere is the canonical
/// NaN, ±∞, subnormals, and signed zeros, where an equal later value never replaces an
/// earlier one; lengths that leave every register tail; runs that end with the output
/// or go on past it; no runs (-∞).
#[test]
fn window_max_runs_is_window_max_per_element() {
    let mut rng = Rng(13);
    let cases = [
        (9usize, 271usize),
        (4, 64),
        (9, 17),
        (3, 1),
        (1, 33),
        (0, 9),
        (5, 0),
    ];
    for (&(taps, p), zeros) in cases.iter().flat_map(|c| [(c, false), (c, true)]) {
        let mut values = rng.values(taps * p + 16, 2.0);
        if zeros {
            // Only zeros of both signs and -1: which zero wins is decided by order.
            for v in values.iter_mut() {
                *v = [0.0, -0.0, -1.0][(rng.next() % 3) as usize];
            }
        }
        let exact: Vec<&[f32]> = (0..taps).map(|t| &values[t * p..][..p]).collect();
        let running_on: Vec<&[f32]> = (0..taps).map(|t| &values[t * p..]).collect();
        let want: Vec<f32> = (0..p)
            .map(|j| {
                let column: Vec<f32> = exact.iter().map(|r| r[j]).collect();
                inferchain_kernels::window::max(&column)
            })
            .collect();
        for isa in isas() {
            for (given, runs) in [("exact", &exact), ("running on", &running_on)] {
                let mut got = vec![1.5f32; p];
                k::window_max_runs(isa, runs, &mut got);
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "{isa:?} {given} taps={taps} p={p} zeros={zeros}"
                );
            }
        }
    }
}

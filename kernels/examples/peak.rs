//! Measures this CPU's FMA peak with a throughput loop (12 independent FMA chains per
//! thread, no memory traffic) and the kernels' GEMM against it, per ISA:
//!
//! `cargo run --release -p inferchain-kernels --example peak -- [threads] [--peak-only]`
//!
//! Prints `peak <isa> <threads> <GFLOP/s>` and `gemm <isa> <m>x<n>x<k> <GFLOP/s> <% of
//! peak>` lines; `scripts/bench-engine.sh` reads the peak line.
#![allow(unsafe_code)]

use inferchain_kernels::{self as k, Bias, Isa, MatRef, PackedB, Parallel};
use std::time::Instant;

/// Threads from std, one task per thread at a time.
struct Threads(usize);

impl Parallel for Threads {
    fn run(&self, tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..self.0 {
                s.spawn(|| loop {
                    let t = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if t >= tasks {
                        break;
                    }
                    task(t);
                });
            }
        });
    }
}

#[cfg(target_arch = "x86_64")]
mod fma_loop {
    use std::arch::x86_64::*;

    macro_rules! chains {
        ($name:ident, $feat:literal, $t:ty, $set:ident, $fma:ident, $lanes:expr) => {
            #[target_feature(enable = $feat)]
            pub unsafe fn $name(iters: u64) -> (f32, u64) {
                let x = $set(1.000_000_1);
                let y = $set(0.999_999_9);
                let mut a: [$t; 12] = [$set(0.0); 12];
                for _ in 0..iters {
                    for acc in a.iter_mut() {
                        *acc = $fma(*acc, x, y);
                    }
                }
                let mut out = [0f32; $lanes];
                let mut s = $set(0.0);
                for acc in a {
                    s = std::mem::transmute::<[f32; $lanes], $t>(std::array::from_fn(|i| {
                        std::mem::transmute::<$t, [f32; $lanes]>(s)[i]
                            + std::mem::transmute::<$t, [f32; $lanes]>(acc)[i]
                    }));
                }
                out.copy_from_slice(&std::mem::transmute::<$t, [f32; $lanes]>(s));
                (out[0], iters * 12 * $lanes * 2)
            }
        };
    }
    chains!(
        avx512,
        "avx512f",
        __m512,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        16
    );
    chains!(avx2, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, 8);
}

/// GFLOP/s of the FMA loop on `threads` threads.
fn peak(isa: Isa, threads: usize) -> Option<f64> {
    let iters = 50_000_000u64;
    let run = move || -> u64 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: only called for an ISA the CPU has (checked by the caller).
        unsafe {
            let (sink, flops) = match isa {
                Isa::Avx512 => fma_loop::avx512(iters),
                Isa::Avx2 => fma_loop::avx2(iters),
                _ => return 0,
            };
            std::hint::black_box(sink);
            flops
        }
        #[cfg(not(target_arch = "x86_64"))]
        0
    };
    let start = Instant::now();
    let flops: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(run)).collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    (flops > 0).then(|| flops as f64 / start.elapsed().as_secs_f64() / 1e9)
}

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    let mut peaks = std::collections::HashMap::new();
    for isa in [Isa::Avx512, Isa::Avx2] {
        if isa.available() {
            if let Some(p) = peak(isa, threads) {
                println!("peak {} {threads} {p:.1}", isa.name());
                peaks.insert(isa, p);
            }
        }
    }
    let best = peaks.values().cloned().fold(0f64, f64::max);
    if std::env::args().any(|a| a == "--peak-only") {
        return;
    }
    if std::env::var_os("COLD").is_some() {
        let isa = Isa::detect();
        for &(m, n, kk) in &[
            (128usize, 3072usize, 768usize),
            (128, 768, 768),
            (128, 768, 3072),
        ] {
            let copies = (600_000_000 / (kk * n * 4)).max(2);
            let bs: Vec<PackedB> = (0..copies)
                .map(|c| {
                    let b: Vec<f32> = (0..kk * n).map(|i| ((i + c) % 7) as f32 * 0.1).collect();
                    PackedB::pack(isa, MatRef::row_major(&b, kk, n))
                })
                .collect();
            let a: Vec<f32> = (0..m * kk).map(|i| (i % 13) as f32 * 0.1).collect();
            let a = MatRef::row_major(&a, m, kk);
            let mut c = vec![0f32; m * n];
            let par = Threads(threads);
            let start = Instant::now();
            for b in &bs {
                k::gemm(isa, a, b, Bias::None, &mut c, &par);
            }
            let secs = start.elapsed().as_secs_f64() / copies as f64;
            println!(
                "cold-B gemm {m}x{n}x{kk}: {:.3} ms, {:.1} GFLOP/s, B at {:.1} GB/s",
                secs * 1e3,
                2.0 * (m * n * kk) as f64 / secs / 1e9,
                (kk * n * 4) as f64 / secs / 1e9
            );
        }
        return;
    }
    for isa in Isa::ALL
        .into_iter()
        .filter(|i| i.available() && std::env::var_os("SHAPES").is_none())
    {
        for op in [k::Unary::Exp, k::Unary::Erf, k::Unary::Gelu, k::Unary::Tanh] {
            let mut x: Vec<f32> = (0..1 << 20)
                .map(|i| (i % 1000) as f32 * 0.01 - 5.0)
                .collect();
            let reps = 20;
            let start = Instant::now();
            for _ in 0..reps {
                k::unary_in_place(isa, op, &mut x);
            }
            let ns = start.elapsed().as_secs_f64() * 1e9 / (reps * x.len()) as f64;
            println!(
                "unary {} {op:?} {ns:.3} ns/element (one thread)",
                isa.name()
            );
        }
    }
    // `SHAPES=MxNxK,...` measures those products instead, on the widest ISA only; a
    // shape ending in `t` reads A transposed (K×M row-major, as a convolution's `colsᵀ`).
    let chosen: Option<Vec<(usize, usize, usize, bool)>> = std::env::var("SHAPES").ok().map(|v| {
        v.split(',')
            .filter_map(|s| {
                let d: Vec<usize> = s
                    .trim_end_matches('t')
                    .split('x')
                    .filter_map(|d| d.parse().ok())
                    .collect();
                (d.len() == 3).then(|| (d[0], d[1], d[2], s.ends_with('t')))
            })
            .collect()
    });
    let shapes = chosen.clone().unwrap_or(vec![
        (128, 768, 768, false),
        (128, 3072, 768, false),
        (128, 768, 3072, false),
        (1, 768, 768, false),
        (64, 3136, 576, false),
    ]);
    let isas: Vec<Isa> = match chosen {
        Some(_) => vec![Isa::detect()],
        None => Isa::ALL.into_iter().filter(|i| i.available()).collect(),
    };
    for isa in isas {
        for &(m, n, kk, at) in &shapes {
            if isa == Isa::Scalar && m * n * kk > 100_000_000 {
                continue;
            }
            let a: Vec<f32> = (0..m * kk).map(|i| (i % 13) as f32 * 0.1).collect();
            let b: Vec<f32> = (0..kk * n).map(|i| (i % 7) as f32 * 0.1).collect();
            let packed = PackedB::pack(isa, MatRef::row_major(&b, kk, n));
            let mut c = vec![0f32; m * n];
            let par = Threads(threads);
            let a = if at {
                MatRef::row_major(&a, kk, m).t()
            } else {
                MatRef::row_major(&a, m, kk)
            };
            k::gemm(isa, a, &packed, Bias::None, &mut c, &par);
            let reps = (2e10 / (2.0 * (m * n * kk) as f64)).clamp(1.0, 2000.0) as usize;
            let start = Instant::now();
            for _ in 0..reps {
                k::gemm(isa, a, &packed, Bias::None, &mut c, &par);
            }
            let secs = start.elapsed().as_secs_f64() / reps as f64;
            let gflops = 2.0 * (m * n * kk) as f64 / secs / 1e9;
            let pct = if best > 0.0 {
                100.0 * gflops / best
            } else {
                0.0
            };
            println!(
                "gemm {} {m}x{n}x{kk}{} {gflops:.1} GFLOP/s {pct:.0}% of peak",
                isa.name(),
                if at { " (A transposed)" } else { "" }
            );
        }
    }
}

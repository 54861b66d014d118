//! Measures `weighted_grid` (a depthwise convolution's kernel, channels last, over a
//! padded plane) on one thread, for MobileNet-like layers:
//!
//! `cargo run --release -p inferchain-kernels --example depthwise -- [CxHxWsS ...]`
//!
//! Each shape is `channels x height x width`, a 3×3 window padded by one on every side,
//! stride `S` (1 when `sS` is left out). Prints `depthwise <isa> <shape> <µs per call>
//! <GFLOP/s>` for the widest ISA, and exits non-zero where its bits differ from the scalar
//! reference's.

use inferchain_kernels::{self as k, Isa};
use std::time::Instant;

/// The window: 3×3, padded by one on every side.
const KERNEL: usize = 3;
const PAD: usize = 1;
/// Calls per timed round: about this many FLOPs, within the bounds below.
const FLOPS_PER_ROUND: f64 = 2e9;
const CALLS: (f64, f64) = (3.0, 2000.0);
/// Timed rounds per layer; the best is printed.
const ROUNDS: usize = 5;

/// One layer: channels, input height and width, stride.
#[derive(Clone, Copy)]
struct Layer {
    c: usize,
    h: usize,
    w: usize,
    stride: usize,
}

impl Layer {
    fn parse(s: &str) -> Option<Layer> {
        let (dims, stride) = match s.split_once('s') {
            Some((d, st)) => (d, st.parse().ok()?),
            None => (s, 1),
        };
        let d: Vec<usize> = dims.split('x').filter_map(|d| d.parse().ok()).collect();
        (d.len() == 3 && d.iter().all(|&v| v > 0) && stride > 0).then_some(Layer {
            c: d[0],
            h: d[1],
            w: d[2],
            stride,
        })
    }

    /// The padded plane's width and the grid: per output position the padded pixel its
    /// window starts at, per tap the offset from there.
    fn grid(&self) -> (usize, Vec<u32>, Vec<u32>) {
        let (hp, wp) = (self.h + 2 * PAD, self.w + 2 * PAD);
        let (oh, ow) = (
            (hp - KERNEL) / self.stride + 1,
            (wp - KERNEL) / self.stride + 1,
        );
        let bases = (0..oh)
            .flat_map(|oy| (0..ow).map(move |ox| (oy * self.stride * wp + ox * self.stride) as u32))
            .collect();
        let offsets = (0..KERNEL)
            .flat_map(|ky| (0..KERNEL).map(move |kx| (ky * wp + kx) as u32))
            .collect();
        (hp * wp, bases, offsets)
    }
}

fn main() {
    let mut args = Vec::new();
    for arg in std::env::args().skip(1) {
        match Layer::parse(&arg) {
            Some(layer) => args.push(layer),
            None => {
                eprintln!(
                    "depthwise: `{arg}` is not a layer; give CxHxW or CxHxWsS, every size above 0"
                );
                std::process::exit(2);
            }
        }
    }
    let layers = if args.is_empty() {
        [
            "32x112x112",
            "96x112x112s2",
            "144x56x56",
            "144x56x56s2",
            "192x28x28",
            "384x14x14",
            "576x14x14",
            "576x14x14s2",
            "960x7x7",
        ]
        .iter()
        .filter_map(|s| Layer::parse(s))
        .collect()
    } else {
        args
    };
    let isa = Isa::detect();
    let taps = KERNEL * KERNEL;
    let mut differ = false;
    for layer in layers {
        let (pixels, bases, offsets) = layer.grid();
        let c = layer.c;
        let x: Vec<f32> = (0..pixels * c)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
            .collect();
        let w: Vec<f32> = (0..taps * c)
            .map(|i| ((i * 104_729) % 1000) as f32 * 1e-3 - 0.5)
            .collect();
        let bias: Vec<f32> = (0..c).map(|i| i as f32 * 1e-3).collect();
        let mut out = vec![0f32; bases.len() * c];
        let mut want = vec![0f32; bases.len() * c];
        let epilogue = (Some(&bias[..]), Some((0f32, 6f32)));
        k::weighted_grid(
            Isa::Scalar,
            &x,
            &bases,
            &offsets,
            &w,
            epilogue.0,
            epilogue.1,
            c,
            &mut want,
        );
        let flops = 2.0 * (bases.len() * c * taps) as f64;
        let reps = (FLOPS_PER_ROUND / flops).clamp(CALLS.0, CALLS.1) as usize;
        let mut best = f64::MAX;
        for _ in 0..ROUNDS {
            let start = Instant::now();
            for _ in 0..reps {
                k::weighted_grid(
                    isa, &x, &bases, &offsets, &w, epilogue.0, epilogue.1, c, &mut out,
                );
            }
            best = best.min(start.elapsed().as_secs_f64() / reps as f64);
        }
        let same = out
            .iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        differ |= !same;
        println!(
            "depthwise {} {}x{}x{}s{} {:.1} µs {:.1} GFLOP/s{}",
            isa.name(),
            c,
            layer.h,
            layer.w,
            layer.stride,
            best * 1e6,
            flops / best / 1e9,
            if same {
                ""
            } else {
                "  BITS DIFFER FROM SCALAR"
            }
        );
    }
    if differ {
        std::process::exit(1);
    }
}

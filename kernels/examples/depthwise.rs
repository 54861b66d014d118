//! Measures `weighted_grid` (a depthwise convolution's kernel, channels last, over a
//! padded plane) on one thread, for MobileNet-like layers:
//!
//! `cargo run --release -p inferchain-kernels --example depthwise -- [CxHxWsS ...]`
//!
//! Each shape is `channels x height x width`, a 3×3 window padded by one on every side,
//! stride `S` (1 when `sS` is left out). Prints `depthwise <isa> <shape> <µs per call>
//! <GFLOP/s>` for the widest ISA and the scalar reference's bits checked against it.

use inferchain_kernels::{self as k, Isa};
use std::time::Instant;

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
        (d.len() == 3 && stride > 0).then_some(Layer {
            c: d[0],
            h: d[1],
            w: d[2],
            stride,
        })
    }

    /// The padded plane's width and the grid: per output position the padded pixel its
    /// window starts at, per tap the offset from there.
    fn grid(&self) -> (usize, Vec<u32>, Vec<u32>) {
        let (hp, wp) = (self.h + 2, self.w + 2);
        let (oh, ow) = ((hp - 3) / self.stride + 1, (wp - 3) / self.stride + 1);
        let bases = (0..oh)
            .flat_map(|oy| (0..ow).map(move |ox| (oy * self.stride * wp + ox * self.stride) as u32))
            .collect();
        let offsets = (0..3)
            .flat_map(|ky| (0..3).map(move |kx| (ky * wp + kx) as u32))
            .collect();
        (hp * wp, bases, offsets)
    }
}

fn main() {
    let args: Vec<Layer> = std::env::args()
        .skip(1)
        .filter_map(|s| Layer::parse(&s))
        .collect();
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
    for layer in layers {
        let (pixels, bases, offsets) = layer.grid();
        let c = layer.c;
        let x: Vec<f32> = (0..pixels * c)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
            .collect();
        let w: Vec<f32> = (0..9 * c)
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
        let flops = 2.0 * (bases.len() * c * 9) as f64;
        let reps = (2e9 / flops).clamp(3.0, 2000.0) as usize;
        let mut best = f64::MAX;
        for _ in 0..5 {
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
}

//! Which implementation runs: the scalar reference or a SIMD path. All compute the same
//! bits; the choice only changes speed.

/// An instruction set the kernels have a path for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// The reference: plain f32 arithmetic and the software FMA. Runs everywhere,
    /// wasm32 included; what CPUs without FMA use.
    Scalar,
    /// x86_64 with AVX2 and FMA (Haswell and later).
    Avx2,
    /// x86_64 with AVX-512F.
    Avx512,
    /// aarch64 NEON.
    Neon,
}

impl Isa {
    /// Every ISA, fastest first.
    pub const ALL: [Isa; 4] = [Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Scalar];

    /// The name used in logs, benchmarks and `INFERCHAIN_KERNEL_ISA`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|isa| isa.name() == name)
    }

    /// Whether this CPU can run it.
    #[cfg(feature = "std")]
    pub fn available(self) -> bool {
        extern crate std;
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Without run-time detection only the scalar reference is known to run.
    #[cfg(not(feature = "std"))]
    pub fn available(self) -> bool {
        self == Isa::Scalar
    }

    /// This ISA if the CPU runs it, else the scalar reference (the same bits).
    pub fn effective(self) -> Isa {
        if self.available() {
            self
        } else {
            Isa::Scalar
        }
    }

    /// The fastest ISA this CPU runs.
    pub fn detect() -> Isa {
        Isa::ALL
            .into_iter()
            .find(|isa| isa.available())
            .unwrap_or(Isa::Scalar)
    }

    /// Rows per register tile of the matrix product (each ISA's `TileShape` in
    /// `dispatch.rs`; A is packed in tiles of this many rows).
    pub fn gemm_mr(self) -> usize {
        match self {
            Isa::Avx512 | Isa::Avx2 | Isa::Neon => 6,
            Isa::Scalar => 4,
        }
    }

    /// Columns per packed B panel ([`crate::gemm::PackedB`]).
    pub fn gemm_nr(self) -> usize {
        match self {
            Isa::Avx512 => 64,
            Isa::Avx2 | Isa::Neon | Isa::Scalar => 16,
        }
    }
}

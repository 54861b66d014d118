//! A model's cost estimate: the [`ModelCost`] (operations, peak memory) of one request
//! at the largest input its spec admits, computed at import and registered with the
//! model, so the chain can refuse requests beyond what executors must provide instead of
//! an executor finding out at run time.
//!
//! - ONNX graphs: a dry run on the declared maximum shapes (zeros as data), metered node
//!   by node (`crate::onnx::cost`), after checking that no input's data decides a value's
//!   size, so that the dry run bounds every request.
//! - BERT encoders and language models: from their dimensions, at the most tokens the
//!   spec admits ([`TransformerDims::cost`]); their shapes follow from the token count
//!   alone.
//!
//! What this must not do: run anything outside the engine's own limits — an import runs
//! the dry run like any other run (`inferchain model import` in the CLI's process; an
//! executor never needs to).

use inferchain_primitives::{
    io::{Dim, IoSpec, Tensor},
    model::ModelCost,
};

use crate::error::{EngineError, Result};

/// The most input bytes a dry run allocates: a spec that admits more is refused until
/// its dynamic dimensions are bounded (`inferchain model import --dynamic-max`).
pub const MAX_DRY_RUN_INPUT_BYTES: u64 = 256 << 20;

/// The dimensions of a transformer that set its cost.
#[derive(Clone, Copy, Debug)]
pub struct TransformerDims {
    pub layers: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    /// Width of the keys (and of the values) one position keeps in the cache.
    pub kv_width: usize,
    /// Matrices in a layer's feed-forward block: 2 (up, down), 3 with a gate (SwiGLU).
    pub mlp_matrices: usize,
    /// Rows of the output head applied to every position (a language model's vocabulary;
    /// 0 for an encoder whose output is pooled).
    pub head_rows: usize,
}

impl TransformerDims {
    /// One request over `tokens` positions: each position goes through every layer's
    /// projections (query and output `hidden`², key and value `hidden × kv_width`) and
    /// feed-forward matrices, and the output head; attention's two products run over the
    /// positions (all of them: an upper bound for a causal model). Embedding rows are only
    /// read, and norms and activations are small next to the products. The memory is the
    /// weights, one layer's activations, one layer's attention scores and the key/value
    /// cache.
    pub fn cost(&self, tokens: usize, weight_bytes: usize) -> ModelCost {
        let t = tokens as u64;
        let (h, kv, i) = (
            self.hidden as u64,
            self.kv_width as u64,
            self.intermediate as u64,
        );
        let per_layer = 2 * h * h + 2 * h * kv + self.mlp_matrices as u64 * h * i;
        let products = self.layers as u64 * per_layer + self.head_rows as u64 * h;
        let attention = 4 * self.layers as u64 * t * t * h;
        let flops = (2 * products * t).saturating_add(attention);
        let activations = t * (4 * self.hidden as u64 + self.intermediate as u64) * 4;
        let scores = self.heads as u64 * t * t * 4;
        let cache = 2 * self.layers as u64 * t * self.kv_width as u64 * 4;
        ModelCost {
            flops,
            peak_memory_bytes: weight_bytes as u64 + activations + scores + cache,
        }
    }
}

/// Zero tensors at the largest shapes `spec` admits, for a dry run.
pub fn max_shape_inputs(spec: &IoSpec) -> Result<Vec<Tensor>> {
    let IoSpec::Tensors(specs) = spec else {
        return Err(EngineError::InvalidArtifact(
            "an ONNX model takes tensors".into(),
        ));
    };
    let mut total = 0u64;
    let mut tensors = Vec::new();
    for t in specs.iter() {
        let shape: Vec<u32> = t
            .shape
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => *n,
                Dim::Dynamic { max } => *max,
            })
            .collect();
        let bytes = shape.iter().fold(t.dtype.size() as u64, |a, &d| {
            a.saturating_mul(u64::from(d))
        });
        total = total.saturating_add(bytes);
        if total > MAX_DRY_RUN_INPUT_BYTES {
            return Err(EngineError::DryRunTooLarge { bytes: total });
        }
        tensors.push(Tensor {
            dtype: t.dtype,
            shape,
            data: vec![0u8; bytes as usize],
        });
    }
    Ok(tensors)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DIMS: TransformerDims = TransformerDims {
        layers: 2,
        hidden: 8,
        intermediate: 32,
        heads: 2,
        kv_width: 8,
        mlp_matrices: 2,
        head_rows: 0,
    };

    #[test]
    fn a_transformer_costs_more_with_every_token() {
        let mut last = DIMS.cost(1, 4_000);
        for t in 2..64 {
            let now = DIMS.cost(t, 4_000);
            assert!(now.flops > last.flops && now.peak_memory_bytes > last.peak_memory_bytes);
            last = now;
        }
        // Per layer 2·64 + 2·64 + 2·256 = 768 product weights, two layers: at 10 tokens
        // 2·1,536·10 for the products, 4·2·100·8 for attention.
        assert_eq!(DIMS.cost(10, 4_000).flops, 30_720 + 6_400);
        // A head of 50 rows adds 2·50·8 per token.
        let headed = TransformerDims {
            head_rows: 50,
            ..DIMS
        };
        assert_eq!(headed.cost(10, 4_000).flops, 30_720 + 6_400 + 8_000);
    }

    #[test]
    fn dry_run_inputs_take_each_dimension_at_its_maximum_and_refuse_huge_ones() {
        use inferchain_primitives::io::{DType, TensorSpec};
        let spec = |shape: Vec<Dim>| {
            IoSpec::Tensors(
                vec![TensorSpec {
                    name: b"x".to_vec().try_into().unwrap(),
                    dtype: DType::F32,
                    shape: shape.try_into().unwrap(),
                    allow_non_finite: false,
                }]
                .try_into()
                .unwrap(),
            )
        };
        let inputs = max_shape_inputs(&spec(vec![Dim::Fixed(2), Dim::Dynamic { max: 5 }])).unwrap();
        assert_eq!(inputs[0].shape, vec![2, 5]);
        assert_eq!(inputs[0].data.len(), 40);
        let huge = spec(vec![Dim::Dynamic { max: 4096 }; 4]);
        assert!(matches!(
            max_shape_inputs(&huge),
            Err(EngineError::DryRunTooLarge { .. })
        ));
    }
}

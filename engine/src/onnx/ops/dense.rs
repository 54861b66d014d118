//! Tensors as flat row-major f64 vectors, for the operators computed here in plain loops.
//! f64 holds every f32, i32 and u8 exactly; results go back to the input's dtype.

use candle_core::{DType, Device, Result, Tensor};

pub fn to_f64(t: &Tensor) -> Result<Vec<f64>> {
    t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()
}

pub fn from_f64(values: Vec<f64>, dims: &[usize], dtype: DType) -> Result<Tensor> {
    Tensor::from_vec(values, dims, &Device::Cpu)?.to_dtype(dtype)
}

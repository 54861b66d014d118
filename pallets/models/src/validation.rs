//! The rules a spec must meet to be registered.

use crate::{Config, Error};
use frame_support::{ensure, traits::Get};
use inferchain_primitives::{
    io::{Dim, IoSpec},
    model::{ModelFormat, ModelSpec},
};
use sp_runtime::DispatchError;

fn io_spec_is_well_formed(spec: &IoSpec) -> bool {
    match spec {
        IoSpec::Text { max_bytes } => *max_bytes > 0,
        IoSpec::Prompt {
            max_bytes,
            max_new_tokens,
        } => *max_bytes > 0 && *max_new_tokens > 0,
        IoSpec::Generation {
            max_new_tokens,
            max_text_bytes,
        } => *max_new_tokens > 0 && *max_text_bytes > 0,
        IoSpec::Tensors(tensors) => {
            !tensors.is_empty()
                && tensors.iter().all(|t| {
                    t.shape.iter().all(|d| match d {
                        Dim::Fixed(n) => *n > 0,
                        Dim::Dynamic { max } => *max > 0,
                    })
                })
        }
    }
}

/// Checks `spec` against the registration rules.
pub(crate) fn check_spec<T: Config>(spec: &ModelSpec<T::Balance>) -> Result<(), DispatchError> {
    ensure!(!spec.name.is_empty(), Error::<T>::EmptyName);
    ensure!(
        spec.max_input_bytes > 0 && spec.max_input_bytes <= T::MaxInputBytes::get(),
        Error::<T>::InvalidInputLimit
    );
    ensure!(
        spec.max_output_bytes > 0 && spec.max_output_bytes <= T::MaxOutputBytes::get(),
        Error::<T>::InvalidOutputLimit
    );
    ensure!(
        io_spec_is_well_formed(&spec.input) && io_spec_is_well_formed(&spec.output),
        Error::<T>::InvalidIoSpec
    );
    // A language model takes a prompt and returns a generation of at most the tokens a
    // prompt may ask for; no other model takes or returns either.
    let generation = match (&spec.input, &spec.output) {
        (
            IoSpec::Prompt { max_new_tokens, .. },
            IoSpec::Generation {
                max_new_tokens: out,
                ..
            },
        ) => Some(max_new_tokens == out),
        (IoSpec::Prompt { .. }, _) | (_, IoSpec::Prompt { .. } | IoSpec::Generation { .. }) => {
            Some(false)
        }
        _ => None,
    };
    ensure!(
        generation.unwrap_or(true) && generation.is_some() == (spec.format == ModelFormat::Llm),
        Error::<T>::InvalidIoSpec
    );
    // A cost of nothing is one nobody measured: `inferchain model import` gives every
    // model's.
    ensure!(
        spec.cost.flops > 0 && spec.cost.peak_memory_bytes > 0,
        Error::<T>::UnmeasuredCost
    );
    // A mirror executors could never fetch from is governance's error to fix at
    // registration, not one to slash executors for.
    if let Some(uri) = &spec.artifact_uri {
        ensure!(
            inferchain_primitives::mirror::parse_mirror_uri(uri).is_ok(),
            Error::<T>::InvalidArtifactUri
        );
    }
    Ok(())
}

/// Checks `spec`'s cost against what executors are required to provide now. Only at
/// registration: a requirement lowered later leaves registered models in place (the
/// inference pallet stops taking their requests).
pub(crate) fn check_cost<T: Config>(spec: &ModelSpec<T::Balance>) -> Result<(), DispatchError> {
    ensure!(
        spec.cost.fits_within(&T::MaxModelCost::get()),
        Error::<T>::ModelTooCostly
    );
    Ok(())
}

//! Storage migrations of the models pallet.
//!
//! **v0 → v1** (runtime 105, costs registered): every spec gains its [`ModelCost`]. A model
//! registered before costs existed has none measured; it is given `MaxModelCost`, the
//! most any model may cost, so it stays requestable exactly as long as the cap admits
//! every registrable model (and a lowered cap stops it, as it would a measured one).

use crate::{pallet::*, ModelInfo};
use codec::{Decode, Encode};
use frame_support::{
    migrations::VersionedMigration, pallet_prelude::*, traits::UncheckedOnRuntimeUpgrade,
    weights::Weight,
};
use frame_system::pallet_prelude::BlockNumberFor;
use inferchain_primitives::{
    compare::ComparisonRule,
    io::IoSpec,
    model::{
        ModelFormat, ModelSpec, ModelStatus, NumericsProfile, MAX_MODEL_NAME_LEN, MAX_URI_LEN,
    },
    ModelId,
};
use sp_runtime::BoundedVec;

const LOG_TARGET: &str = "runtime::models";

/// The records of storage version 0.
pub mod v0 {
    use super::*;

    /// A spec before costs (v0): [`ModelSpec`] without `cost`.
    #[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
    pub struct ModelSpec<Balance> {
        pub name: BoundedVec<u8, ConstU32<MAX_MODEL_NAME_LEN>>,
        pub format: ModelFormat,
        pub artifact_hash: ModelId,
        pub input: IoSpec,
        pub output: IoSpec,
        pub fee: Balance,
        pub max_input_bytes: u32,
        pub max_output_bytes: u32,
        pub comparison: ComparisonRule,
        pub numerics: NumericsProfile,
        pub artifact_uri: Option<BoundedVec<u8, ConstU32<MAX_URI_LEN>>>,
    }

    /// A registered model (v0).
    #[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
    pub struct ModelInfo<Balance, BlockNumber> {
        pub spec: ModelSpec<Balance>,
        pub status: ModelStatus,
        pub registered_at: BlockNumber,
    }
}

/// v0 → v1, unversioned: each spec gains `cost = MaxModelCost`. Wrapped in [`AddCosts`].
pub struct AddCostsUnchecked<T>(core::marker::PhantomData<T>);

impl<T: Config> UncheckedOnRuntimeUpgrade for AddCostsUnchecked<T> {
    fn on_runtime_upgrade() -> Weight {
        let cost = T::MaxModelCost::get();
        let mut models = 0u64;
        Models::<T>::translate::<v0::ModelInfo<T::Balance, BlockNumberFor<T>>, _>(|_, old| {
            models += 1;
            let s = old.spec;
            Some(ModelInfo {
                spec: ModelSpec {
                    name: s.name,
                    format: s.format,
                    artifact_hash: s.artifact_hash,
                    input: s.input,
                    output: s.output,
                    fee: s.fee,
                    max_input_bytes: s.max_input_bytes,
                    max_output_bytes: s.max_output_bytes,
                    comparison: s.comparison,
                    numerics: s.numerics,
                    artifact_uri: s.artifact_uri,
                    cost,
                },
                status: old.status,
                registered_at: old.registered_at,
            })
        });
        log::info!(target: LOG_TARGET, "migration v1: {models} specs given the cost cap");
        T::DbWeight::get().reads_writes(models, models)
    }
}

/// v0 → v1, run once: [`AddCostsUnchecked`].
pub type AddCosts<T> = VersionedMigration<
    0,
    1,
    AddCostsUnchecked<T>,
    Pallet<T>,
    <T as frame_system::Config>::DbWeight,
>;

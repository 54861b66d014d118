//! # Models pallet
//!
//! inferchain's model registry. Governance (the `RegisterOrigin`: Root through Sudo on the
//! dev chain, a collective later) publishes each model the chain serves as a
//! [`ModelSpec`]: its format, the hash of its canonical manifest (the model id), its input
//! and output specs, its fee, its size limits, the rule under which two outputs count as
//! equal and the numerics profile results are defined under.
//!
//! ## Lifecycle
//!
//! ```text
//! register_model ──► Active ──set_model_status──► Deprecated ──► Retired
//!                      ▲                              │
//!                      └──────────────────────────────┘
//! ```
//!
//! * `Active`: takes new requests.
//! * `Deprecated`: open requests finish; no new ones are taken. It may be re-activated.
//! * `Retired`: takes nothing, and is final: a retired id can never be re-registered or
//!   re-activated, so a receipt naming it can never point at a different model.
//!
//! ## Dispute commitments
//!
//! `set_model_commitments` records, once, the Merkle roots over a model's plan steps and
//! weight tensors ([`ModelCommitments`], computed from the model's files by the engine).
//! With them, a disputed result of the model is settled by the bisection game of the
//! inference pallet and one step re-executed by the runtime's referee; without them the
//! inference pallet takes no requests for the model. They are final: there is exactly
//! one right value per model, and games in flight rely on it.
//!
//! ## Invariants (checked in `try_state`)
//!
//! * `ModelCount` equals the number of entries in `Models` and never exceeds `MaxModels`.
//! * Each entry's key is its spec's `artifact_hash`.
//! * Each spec's size limits are within the Config maxima, and its cost is measured
//!   (non-zero; at registration it was within `MaxModelCost`).
//! * Commitments exist only for registered models and name at least one step.
//!
//! What this pallet must not do: run models, hold funds or know about requests. The
//! inference pallet reads it through [`ModelRegistry`].

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
pub mod migrations;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
mod validation;
pub mod weights;

use inferchain_primitives::ModelId;
pub use inferchain_primitives::{
    dispute::ModelCommitments,
    model::{ModelCost, ModelRegistry, ModelSpec, ModelStatus},
};
pub use weights::WeightInfo;

/// A registered model: its spec, status and when it was registered.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    codec::Encode,
    codec::Decode,
    codec::MaxEncodedLen,
    scale_info::TypeInfo,
)]
pub struct ModelInfo<Balance, BlockNumber> {
    pub spec: ModelSpec<Balance>,
    pub status: ModelStatus,
    pub registered_at: BlockNumber,
}

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use alloc::vec::Vec;
    use frame_support::pallet_prelude::*;
    use frame_system::pallet_prelude::*;
    use sp_runtime::traits::AtLeast32BitUnsigned;

    /// v1: a spec carries its cost (`ModelSpec::cost`; [`crate::migrations`]).
    const STORAGE_VERSION: StorageVersion = StorageVersion::new(1);

    #[pallet::pallet]
    #[pallet::storage_version(STORAGE_VERSION)]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
        /// The balance type fees are expressed in.
        type Balance: Parameter
            + Member
            + AtLeast32BitUnsigned
            + Copy
            + Default
            + MaxEncodedLen
            + MaybeSerializeDeserialize;

        /// Who may register models and change their status or fee.
        type RegisterOrigin: EnsureOrigin<Self::RuntimeOrigin>;

        /// The most models the registry holds (retired ones included).
        #[pallet::constant]
        type MaxModels: Get<u32>;

        /// The largest `max_input_bytes` a model may declare.
        #[pallet::constant]
        type MaxInputBytes: Get<u32>;

        /// The largest `max_output_bytes` a model may declare.
        #[pallet::constant]
        type MaxOutputBytes: Get<u32>;

        /// The largest cost a model may declare: what every executor is required to
        /// provide for one request (operations in time, and memory).
        #[pallet::constant]
        type MaxModelCost: Get<ModelCost>;

        /// Weights of this pallet's calls.
        type WeightInfo: WeightInfo;
    }

    /// Registered models by id.
    #[pallet::storage]
    pub type Models<T: Config> =
        StorageMap<_, Identity, ModelId, ModelInfo<T::Balance, BlockNumberFor<T>>, OptionQuery>;

    /// The dispute commitments of the models that have them (set once, final).
    #[pallet::storage]
    pub type Commitments<T: Config> =
        StorageMap<_, Identity, ModelId, ModelCommitments, OptionQuery>;

    /// How many entries `Models` holds.
    #[pallet::storage]
    pub type ModelCount<T: Config> = StorageValue<_, u32, ValueQuery>;

    #[pallet::genesis_config]
    #[derive(frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        /// Models registered (Active) at genesis.
        pub models: Vec<ModelSpec<T::Balance>>,
        /// Dispute commitments of genesis models (each model at most once).
        pub commitments: Vec<(ModelId, ModelCommitments)>,
    }

    #[pallet::genesis_build]
    impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
        fn build(&self) {
            for spec in &self.models {
                Pallet::<T>::do_register(spec.clone())
                    .expect("genesis models must be valid and distinct; qed");
            }
            for (id, commitments) in &self.commitments {
                Pallet::<T>::do_set_commitments(*id, *commitments)
                    .expect("genesis commitments name a genesis model once, with a plan; qed");
            }
        }
    }

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// A model was registered and is Active.
        ModelRegistered {
            id: ModelId,
            format: inferchain_primitives::model::ModelFormat,
            fee: T::Balance,
        },
        /// A model's status changed.
        ModelStatusChanged {
            id: ModelId,
            old: ModelStatus,
            new: ModelStatus,
        },
        /// A model's fee changed.
        ModelFeeChanged {
            id: ModelId,
            old: T::Balance,
            new: T::Balance,
        },
        /// A model's dispute commitments were recorded: it can be requested, and its
        /// results are settled by the bisection game.
        ModelCommitmentsSet {
            id: ModelId,
            commitments: ModelCommitments,
        },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// A model with this id is already registered (possibly retired).
        ModelAlreadyRegistered,
        /// No model has this id.
        UnknownModel,
        /// The registry holds `MaxModels` models.
        TooManyModels,
        /// The model is retired; retirement is final.
        ModelRetired,
        /// The model already has this status.
        StatusUnchanged,
        /// `max_input_bytes` is zero or above the chain's `MaxInputBytes`.
        InvalidInputLimit,
        /// `max_output_bytes` is zero or above the chain's `MaxOutputBytes`.
        InvalidOutputLimit,
        /// The input or output spec declares no tensor, a zero-sized dimension or an
        /// empty text limit.
        InvalidIoSpec,
        /// The model name is empty.
        EmptyName,
        /// The model's commitments are already recorded; they are final.
        CommitmentsAlreadySet,
        /// Commitments must name at least one plan step.
        EmptyPlan,
        /// `artifact_uri` is not a mirror address executors can fetch from:
        /// `http://HOST[:PORT][/PATH]` in printable ASCII, no user info, query, fragment or
        /// `..` segment (`inferchain_primitives::mirror`).
        InvalidArtifactUri,
        /// The spec's cost exceeds `MaxModelCost`: one request would need more than
        /// executors are required to provide.
        ModelTooCostly,
        /// The spec's cost is zero: not measured (`inferchain model import` gives it).
        UnmeasuredCost,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn integrity_test() {
            assert!(T::MaxModels::get() > 0, "MaxModels must be positive");
            assert!(
                T::MaxInputBytes::get() > 0,
                "MaxInputBytes must be positive"
            );
            assert!(
                T::MaxOutputBytes::get() > 0,
                "MaxOutputBytes must be positive"
            );
        }

        #[cfg(feature = "try-runtime")]
        fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
            Self::do_try_state()
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Register a model.
        ///
        /// **Origin**: `RegisterOrigin`.
        ///
        /// **Details**: the id is `spec.artifact_hash`. The spec must name the model, declare
        /// well-formed input and output specs and size limits within the chain's maxima.
        /// A model id can be registered once, ever.
        ///
        /// **Events**: `ModelRegistered`.
        #[pallet::call_index(0)]
        #[pallet::weight(T::WeightInfo::register_model())]
        pub fn register_model(origin: OriginFor<T>, spec: ModelSpec<T::Balance>) -> DispatchResult {
            T::RegisterOrigin::ensure_origin(origin)?;
            Self::do_register(spec)
        }

        /// Change a model's status.
        ///
        /// **Origin**: `RegisterOrigin`.
        ///
        /// **Details**: `Active` and `Deprecated` may go back and forth; `Retired` is final.
        ///
        /// **Events**: `ModelStatusChanged`.
        #[pallet::call_index(1)]
        #[pallet::weight(T::WeightInfo::set_model_status())]
        pub fn set_model_status(
            origin: OriginFor<T>,
            id: ModelId,
            status: ModelStatus,
        ) -> DispatchResult {
            T::RegisterOrigin::ensure_origin(origin)?;
            Models::<T>::try_mutate(id, |maybe| -> DispatchResult {
                let info = maybe.as_mut().ok_or(Error::<T>::UnknownModel)?;
                ensure!(
                    info.status != ModelStatus::Retired,
                    Error::<T>::ModelRetired
                );
                ensure!(info.status != status, Error::<T>::StatusUnchanged);
                let old = core::mem::replace(&mut info.status, status);
                Self::deposit_event(Event::ModelStatusChanged {
                    id,
                    old,
                    new: status,
                });
                Ok(())
            })
        }

        /// Change a model's fee. Requests already taken keep the fee they were taken at.
        ///
        /// **Origin**: `RegisterOrigin`.
        ///
        /// **Details**: the model must exist and not be retired.
        ///
        /// **Events**: `ModelFeeChanged`.
        #[pallet::call_index(2)]
        #[pallet::weight(T::WeightInfo::set_model_fee())]
        pub fn set_model_fee(origin: OriginFor<T>, id: ModelId, fee: T::Balance) -> DispatchResult {
            T::RegisterOrigin::ensure_origin(origin)?;
            Models::<T>::try_mutate(id, |maybe| -> DispatchResult {
                let info = maybe.as_mut().ok_or(Error::<T>::UnknownModel)?;
                ensure!(
                    info.status != ModelStatus::Retired,
                    Error::<T>::ModelRetired
                );
                let old = core::mem::replace(&mut info.spec.fee, fee);
                Self::deposit_event(Event::ModelFeeChanged { id, old, new: fee });
                Ok(())
            })
        }

        /// Record a model's dispute commitments, once.
        ///
        /// **Origin**: `RegisterOrigin`.
        ///
        /// **Details**: the model must exist and not be retired; `commitments.steps` ≥ 1.
        /// From then on it can be requested, and its disputes are bisection games
        /// refereed by the runtime.
        ///
        /// **Events**: `ModelCommitmentsSet`.
        #[pallet::call_index(3)]
        #[pallet::weight(T::WeightInfo::set_model_commitments())]
        pub fn set_model_commitments(
            origin: OriginFor<T>,
            id: ModelId,
            commitments: ModelCommitments,
        ) -> DispatchResult {
            T::RegisterOrigin::ensure_origin(origin)?;
            Self::do_set_commitments(id, commitments)
        }
    }

    impl<T: Config> Pallet<T> {
        pub(crate) fn do_set_commitments(
            id: ModelId,
            commitments: ModelCommitments,
        ) -> DispatchResult {
            let info = Models::<T>::get(id).ok_or(Error::<T>::UnknownModel)?;
            ensure!(
                info.status != ModelStatus::Retired,
                Error::<T>::ModelRetired
            );
            ensure!(
                !Commitments::<T>::contains_key(id),
                Error::<T>::CommitmentsAlreadySet
            );
            ensure!(commitments.steps > 0, Error::<T>::EmptyPlan);
            Commitments::<T>::insert(id, commitments);
            Self::deposit_event(Event::ModelCommitmentsSet { id, commitments });
            Ok(())
        }

        pub(crate) fn do_register(spec: ModelSpec<T::Balance>) -> DispatchResult {
            validation::check_spec::<T>(&spec)?;
            validation::check_cost::<T>(&spec)?;
            let id = spec.artifact_hash;
            ensure!(
                !Models::<T>::contains_key(id),
                Error::<T>::ModelAlreadyRegistered
            );
            let count = ModelCount::<T>::get();
            ensure!(count < T::MaxModels::get(), Error::<T>::TooManyModels);
            let (format, fee) = (spec.format, spec.fee);
            Models::<T>::insert(
                id,
                ModelInfo {
                    spec,
                    status: ModelStatus::Active,
                    registered_at: frame_system::Pallet::<T>::block_number(),
                },
            );
            ModelCount::<T>::put(count.saturating_add(1));
            Self::deposit_event(Event::ModelRegistered { id, format, fee });
            Ok(())
        }

        /// The invariants listed in the crate docs.
        #[cfg(any(feature = "try-runtime", test))]
        pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
            let mut entries = 0u32;
            for (id, info) in Models::<T>::iter() {
                entries = entries.saturating_add(1);
                ensure!(
                    id == info.spec.artifact_hash,
                    "a model is stored under a foreign id"
                );
                ensure!(
                    validation::check_spec::<T>(&info.spec).is_ok(),
                    "a stored spec breaks the registration rules"
                );
            }
            ensure!(
                entries == ModelCount::<T>::get(),
                "ModelCount differs from Models"
            );
            ensure!(entries <= T::MaxModels::get(), "more models than MaxModels");
            for (id, commitments) in Commitments::<T>::iter() {
                ensure!(
                    Models::<T>::contains_key(id),
                    "commitments of an unregistered model"
                );
                ensure!(commitments.steps > 0, "commitments with an empty plan");
            }
            Ok(())
        }
    }

    impl<T: Config> ModelRegistry<T::Balance> for Pallet<T> {
        fn model(id: &ModelId) -> Option<(ModelSpec<T::Balance>, ModelStatus)> {
            Models::<T>::get(id).map(|info| (info.spec, info.status))
        }

        fn commitments(id: &ModelId) -> Option<ModelCommitments> {
            Commitments::<T>::get(id)
        }

        #[cfg(feature = "runtime-benchmarks")]
        fn register_for_benchmark(spec: ModelSpec<T::Balance>) -> Result<(), ()> {
            Self::do_register(spec).map_err(|_| ())
        }

        #[cfg(feature = "runtime-benchmarks")]
        fn commit_for_benchmark(id: &ModelId, commitments: ModelCommitments) -> Result<(), ()> {
            Self::do_set_commitments(*id, commitments).map_err(|_| ())
        }
    }
}

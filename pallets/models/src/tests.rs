#![allow(clippy::unwrap_used)]

use crate::{mock::*, Error, Event, ModelCount, ModelStatus, Models as ModelsStorage};
use frame_support::{assert_noop, assert_ok, traits::BuildGenesisConfig};
use inferchain_primitives::{
    io::{Dim, IoSpec},
    model::ModelRegistry,
    H256,
};
use sp_runtime::DispatchError;

fn id(seed: u8) -> H256 {
    H256::repeat_byte(seed)
}

#[test]
fn root_registers_a_model() {
    build_and_execute(|| {
        assert_ok!(Models::register_model(RuntimeOrigin::root(), spec(1)));
        let info = ModelsStorage::<Test>::get(id(1)).unwrap();
        assert_eq!(info.status, ModelStatus::Active);
        assert_eq!(info.registered_at, 1);
        assert_eq!(ModelCount::<Test>::get(), 1);
        System::assert_last_event(
            Event::ModelRegistered {
                id: id(1),
                format: inferchain_primitives::model::ModelFormat::Onnx,
                fee: 100,
            }
            .into(),
        );
        assert_eq!(
            <Models as ModelRegistry<u64>>::model(&id(1)),
            Some((spec(1), ModelStatus::Active))
        );
        assert_eq!(<Models as ModelRegistry<u64>>::model(&id(9)), None);
    });
}

#[test]
fn only_the_register_origin_may_register() {
    build_and_execute(|| {
        assert_noop!(
            Models::register_model(RuntimeOrigin::signed(1), spec(1)),
            DispatchError::BadOrigin
        );
        assert_noop!(
            Models::set_model_status(RuntimeOrigin::signed(1), id(1), ModelStatus::Retired),
            DispatchError::BadOrigin
        );
        assert_noop!(
            Models::set_model_fee(RuntimeOrigin::signed(1), id(1), 5),
            DispatchError::BadOrigin
        );
    });
}

#[test]
fn duplicate_ids_are_rejected() {
    build_and_execute(|| {
        assert_ok!(Models::register_model(RuntimeOrigin::root(), spec(1)));
        assert_noop!(
            Models::register_model(RuntimeOrigin::root(), spec(1)),
            Error::<Test>::ModelAlreadyRegistered
        );
    });
}

#[test]
fn the_registry_is_bounded() {
    build_and_execute(|| {
        for seed in 1..=4 {
            assert_ok!(Models::register_model(RuntimeOrigin::root(), spec(seed)));
        }
        assert_noop!(
            Models::register_model(RuntimeOrigin::root(), spec(5)),
            Error::<Test>::TooManyModels
        );
    });
}

#[test]
fn malformed_specs_are_rejected_with_named_errors() {
    build_and_execute(|| {
        let mut s = spec(1);
        s.name = Default::default();
        assert_noop!(
            Models::register_model(RuntimeOrigin::root(), s),
            Error::<Test>::EmptyName
        );

        // Mirrors executors could never fetch from are refused; a plain one is taken.
        for bad in [
            &b"https://mirror/m"[..],
            b"ftp://mirror/m",
            b"http://",
            b"http://mirror/../etc",
            b"http://user@mirror/m",
            b"http://mirror:0/m",
            b"http://mirror/m?x=1",
            b"\x00http://mirror/m",
        ] {
            let mut s = spec(1);
            s.artifact_uri = Some(bad.to_vec().try_into().unwrap());
            assert_noop!(
                Models::register_model(RuntimeOrigin::root(), s),
                Error::<Test>::InvalidArtifactUri
            );
        }
        let mut s = spec(2);
        s.artifact_uri = Some(b"http://127.0.0.1:8000/ab01".to_vec().try_into().unwrap());
        assert_ok!(Models::register_model(RuntimeOrigin::root(), s));

        let mut s = spec(1);
        s.max_input_bytes = 0;
        assert_noop!(
            Models::register_model(RuntimeOrigin::root(), s),
            Error::<Test>::InvalidInputLimit
        );
        let mut s = spec(1);
        s.max_input_bytes = MaxInputBytes::get() + 1;
        assert_noop!(
            Models::register_model(RuntimeOrigin::root(), s),
            Error::<Test>::InvalidInputLimit
        );

        let mut s = spec(1);
        s.max_output_bytes = MaxOutputBytes::get() + 1;
        assert_noop!(
            Models::register_model(RuntimeOrigin::root(), s),
            Error::<Test>::InvalidOutputLimit
        );

        let mut s = spec(1);
        s.input = IoSpec::Tensors(Default::default());
        assert_noop!(
            Models::register_model(RuntimeOrigin::root(), s),
            Error::<Test>::InvalidIoSpec
        );

        let mut s = spec(1);
        if let IoSpec::Tensors(ref mut ts) = s.output {
            ts[0].shape[0] = Dim::Fixed(0);
        }
        assert_noop!(
            Models::register_model(RuntimeOrigin::root(), s),
            Error::<Test>::InvalidIoSpec
        );

        let mut s = spec(1);
        s.input = IoSpec::Text { max_bytes: 0 };
        assert_noop!(
            Models::register_model(RuntimeOrigin::root(), s),
            Error::<Test>::InvalidIoSpec
        );
    });
}

#[test]
fn language_models_pair_a_prompt_with_a_generation_of_the_same_cap() {
    use inferchain_primitives::model::ModelFormat;
    build_and_execute(|| {
        let root = || RuntimeOrigin::root();
        let llm = |seed, new_in, new_out| {
            let mut s = spec(seed);
            s.format = ModelFormat::Llm;
            s.input = IoSpec::Prompt {
                max_bytes: 100,
                max_new_tokens: new_in,
            };
            s.output = IoSpec::Generation {
                max_new_tokens: new_out,
                max_text_bytes: 1000,
            };
            s
        };
        assert_noop!(
            Models::register_model(root(), llm(2, 64, 32)),
            Error::<Test>::InvalidIoSpec
        );
        assert_noop!(
            Models::register_model(root(), llm(2, 0, 0)),
            Error::<Test>::InvalidIoSpec
        );
        // A prompt spec on an ONNX model, or an LLM that returns tensors.
        let mut onnx = llm(2, 64, 64);
        onnx.format = ModelFormat::Onnx;
        assert_noop!(
            Models::register_model(root(), onnx),
            Error::<Test>::InvalidIoSpec
        );
        let mut tensors = llm(2, 64, 64);
        tensors.output = spec(2).output;
        assert_noop!(
            Models::register_model(root(), tensors),
            Error::<Test>::InvalidIoSpec
        );
        let mut plain = spec(2);
        plain.format = ModelFormat::Llm;
        assert_noop!(
            Models::register_model(root(), plain),
            Error::<Test>::InvalidIoSpec
        );
        assert_ok!(Models::register_model(root(), llm(2, 64, 64)));
    });
}

#[test]
fn status_moves_between_active_and_deprecated_and_retirement_is_final() {
    build_and_execute(|| {
        let root = || RuntimeOrigin::root();
        assert_ok!(Models::register_model(root(), spec(1)));

        assert_ok!(Models::set_model_status(
            root(),
            id(1),
            ModelStatus::Deprecated
        ));
        System::assert_last_event(
            Event::ModelStatusChanged {
                id: id(1),
                old: ModelStatus::Active,
                new: ModelStatus::Deprecated,
            }
            .into(),
        );
        assert_noop!(
            Models::set_model_status(root(), id(1), ModelStatus::Deprecated),
            Error::<Test>::StatusUnchanged
        );
        assert_ok!(Models::set_model_status(root(), id(1), ModelStatus::Active));
        assert_ok!(Models::set_model_status(
            root(),
            id(1),
            ModelStatus::Retired
        ));
        assert_eq!(
            ModelsStorage::<Test>::get(id(1)).unwrap().status,
            ModelStatus::Retired
        );

        assert_noop!(
            Models::set_model_status(root(), id(1), ModelStatus::Active),
            Error::<Test>::ModelRetired
        );
        assert_noop!(
            Models::set_model_fee(root(), id(1), 1),
            Error::<Test>::ModelRetired
        );
        // A retired id can never be registered again.
        assert_noop!(
            Models::register_model(root(), spec(1)),
            Error::<Test>::ModelAlreadyRegistered
        );
    });
}

#[test]
fn unknown_models_are_named_as_such() {
    build_and_execute(|| {
        assert_noop!(
            Models::set_model_status(RuntimeOrigin::root(), id(7), ModelStatus::Retired),
            Error::<Test>::UnknownModel
        );
        assert_noop!(
            Models::set_model_fee(RuntimeOrigin::root(), id(7), 1),
            Error::<Test>::UnknownModel
        );
    });
}

#[test]
fn fee_changes_are_recorded() {
    build_and_execute(|| {
        assert_ok!(Models::register_model(RuntimeOrigin::root(), spec(1)));
        assert_ok!(Models::set_model_fee(RuntimeOrigin::root(), id(1), 250));
        assert_eq!(ModelsStorage::<Test>::get(id(1)).unwrap().spec.fee, 250);
        System::assert_last_event(
            Event::ModelFeeChanged {
                id: id(1),
                old: 100,
                new: 250,
            }
            .into(),
        );
    });
}

#[test]
fn genesis_registers_models() {
    new_test_ext().execute_with(|| {
        crate::GenesisConfig::<Test> {
            models: vec![spec(1), spec(2)],
            commitments: vec![(id(2), commitments(5))],
        }
        .build();
        assert_eq!(ModelCount::<Test>::get(), 2);
        assert_eq!(crate::Commitments::<Test>::get(id(2)), Some(commitments(5)));
        assert_eq!(crate::Commitments::<Test>::get(id(1)), None);
        assert_eq!(
            ModelsStorage::<Test>::get(id(2)).unwrap().status,
            ModelStatus::Active
        );
        Models::do_try_state().unwrap();
    });
}

fn commitments(steps: u32) -> crate::ModelCommitments {
    crate::ModelCommitments {
        plan_root: H256::repeat_byte(0xa),
        steps,
        weights_root: H256::repeat_byte(0xb),
        weights: 3,
    }
}

#[test]
fn commitments_are_recorded_once_for_a_live_model() {
    build_and_execute(|| {
        assert_noop!(
            Models::set_model_commitments(RuntimeOrigin::signed(1), id(1), commitments(4)),
            DispatchError::BadOrigin
        );
        assert_noop!(
            Models::set_model_commitments(RuntimeOrigin::root(), id(1), commitments(4)),
            Error::<Test>::UnknownModel
        );
        assert_ok!(Models::register_model(RuntimeOrigin::root(), spec(1)));
        assert_eq!(<Models as ModelRegistry<u64>>::commitments(&id(1)), None);
        assert_noop!(
            Models::set_model_commitments(RuntimeOrigin::root(), id(1), commitments(0)),
            Error::<Test>::EmptyPlan
        );
        assert_ok!(Models::set_model_commitments(
            RuntimeOrigin::root(),
            id(1),
            commitments(4)
        ));
        System::assert_last_event(
            Event::ModelCommitmentsSet {
                id: id(1),
                commitments: commitments(4),
            }
            .into(),
        );
        assert_eq!(
            <Models as ModelRegistry<u64>>::commitments(&id(1)),
            Some(commitments(4))
        );
        // Final: games in flight rely on them.
        assert_noop!(
            Models::set_model_commitments(RuntimeOrigin::root(), id(1), commitments(5)),
            Error::<Test>::CommitmentsAlreadySet
        );
        // A retired model takes none.
        assert_ok!(Models::register_model(RuntimeOrigin::root(), spec(2)));
        assert_ok!(Models::set_model_status(
            RuntimeOrigin::root(),
            id(2),
            ModelStatus::Retired
        ));
        assert_noop!(
            Models::set_model_commitments(RuntimeOrigin::root(), id(2), commitments(4)),
            Error::<Test>::ModelRetired
        );
    });
}

#[test]
fn a_model_costlier_than_executors_provide_is_refused_on_either_count() {
    new_test_ext().execute_with(|| {
        let cap = MaxModelCost::get();
        let mut s = spec(1);
        s.cost.flops = cap.flops + 1;
        assert_noop!(
            Models::register_model(RuntimeOrigin::root(), s),
            Error::<Test>::ModelTooCostly
        );
        let mut s = spec(1);
        s.cost.peak_memory_bytes = cap.peak_memory_bytes + 1;
        assert_noop!(
            Models::register_model(RuntimeOrigin::root(), s),
            Error::<Test>::ModelTooCostly
        );
        let mut s = spec(1);
        s.cost.flops = 0;
        assert_noop!(
            Models::register_model(RuntimeOrigin::root(), s),
            Error::<Test>::UnmeasuredCost
        );
        // At the cap exactly, it is registered with its cost.
        let mut s = spec(1);
        s.cost = cap;
        assert_ok!(Models::register_model(RuntimeOrigin::root(), s));
        assert_eq!(ModelsStorage::<Test>::get(id(1)).unwrap().spec.cost, cap);
    });
}

#[test]
fn the_v1_migration_gives_earlier_specs_the_cost_cap_and_keeps_the_rest() {
    use crate::migrations::{v0, AddCosts};
    use codec::Encode;
    use frame_support::traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion};
    new_test_ext().execute_with(|| {
        StorageVersion::new(0).put::<Models>();
        let new = spec(7);
        let old = v0::ModelInfo {
            spec: v0::ModelSpec {
                name: new.name.clone(),
                format: new.format,
                artifact_hash: new.artifact_hash,
                input: new.input.clone(),
                output: new.output.clone(),
                fee: new.fee,
                max_input_bytes: new.max_input_bytes,
                max_output_bytes: new.max_output_bytes,
                comparison: new.comparison,
                numerics: new.numerics,
                artifact_uri: new.artifact_uri.clone(),
            },
            status: ModelStatus::Deprecated,
            registered_at: 3u64,
        };
        frame_support::storage::unhashed::put_raw(
            &ModelsStorage::<Test>::hashed_key_for(id(7)),
            &old.encode(),
        );
        AddCosts::<Test>::on_runtime_upgrade();
        let info = ModelsStorage::<Test>::get(id(7)).unwrap();
        assert_eq!(info.spec.cost, MaxModelCost::get());
        assert_eq!(info.spec.name, new.name);
        assert_eq!(info.spec.artifact_uri, new.artifact_uri);
        assert_eq!(
            (info.status, info.registered_at),
            (ModelStatus::Deprecated, 3)
        );
        assert_eq!(Models::on_chain_storage_version(), StorageVersion::new(1));
        // Run once: a second upgrade leaves the migrated entry alone.
        AddCosts::<Test>::on_runtime_upgrade();
        assert_eq!(ModelsStorage::<Test>::get(id(7)).unwrap(), info);
    });
}

use crate::{mock::*, Error, Event, Pallet, ParamChange, Params as Stored, PARAM_NAMES};
use frame_support::{assert_noop, assert_ok};
use sp_runtime::{DispatchError, Perbill};

type Change = ParamChange<u128, u64>;

fn set(change: Change) -> frame_support::dispatch::DispatchResult {
    ParamsPallet::set_parameter(RuntimeOrigin::root(), change)
}

#[test]
fn defaults_hold_until_governance_changes_one() {
    new_test_ext().execute_with(|| {
        assert_eq!(Stored::<Test>::get(), None);
        assert_eq!(Pallet::<Test>::current(), DEFAULTS);
    });
}

#[test]
fn a_change_is_stored_with_an_event_naming_old_and_new() {
    new_test_ext().execute_with(|| {
        assert_ok!(set(Change::ExecutionTimeout(12)));
        let current = Pallet::<Test>::current();
        assert_eq!(current.execution_timeout, 12);
        // Nothing else moved.
        assert_eq!(
            crate::ProtocolParams {
                execution_timeout: DEFAULTS.execution_timeout,
                ..current
            },
            DEFAULTS
        );
        System::assert_last_event(
            Event::ParameterSet {
                old: Change::ExecutionTimeout(10),
                new: Change::ExecutionTimeout(12),
            }
            .into(),
        );
        // A second change starts from the first.
        assert_ok!(set(Change::ProtocolFee(Perbill::from_percent(7))));
        let current = Pallet::<Test>::current();
        assert_eq!(current.execution_timeout, 12);
        assert_eq!(current.protocol_fee, Perbill::from_percent(7));
    });
}

#[test]
fn only_the_params_origin_may_set() {
    new_test_ext().execute_with(|| {
        assert_noop!(
            ParamsPallet::set_parameter(RuntimeOrigin::signed(1), Change::ExecutionTimeout(12)),
            DispatchError::BadOrigin
        );
        assert_noop!(
            ParamsPallet::set_parameter(RuntimeOrigin::none(), Change::ExecutionTimeout(12)),
            DispatchError::BadOrigin
        );
    });
}

#[test]
fn values_outside_the_bounds_are_refused() {
    new_test_ext().execute_with(|| {
        // Bounds are half and ten times each default.
        assert_noop!(set(Change::ExecutionTimeout(4)), Error::<Test>::OutOfBounds);
        assert_noop!(
            set(Change::ExecutionTimeout(101)),
            Error::<Test>::OutOfBounds
        );
        assert_noop!(
            set(Change::MinExecutorBond(10_001)),
            Error::<Test>::OutOfBounds
        );
        assert_noop!(
            set(Change::ProtocolFee(Perbill::from_percent(21))),
            Error::<Test>::OutOfBounds
        );
        assert_noop!(set(Change::MaxOffchainRuns(3)), Error::<Test>::OutOfBounds);
        // The bounds themselves are allowed.
        assert_ok!(set(Change::ExecutionTimeout(5)));
        assert_ok!(set(Change::ProtocolFee(Perbill::from_percent(20))));
    });
}

#[test]
fn a_parameter_left_outside_tightened_bounds_does_not_block_others() {
    new_test_ext().execute_with(|| {
        // As if an upgrade had tightened the bounds below a stored value.
        let mut stored = DEFAULTS;
        stored.max_offchain_runs = 1_000;
        Stored::<Test>::put(stored);
        assert_ok!(set(Change::ExecutionTimeout(12)));
        assert_ok!(set(Change::MaxOffchainRuns(80)));
        assert_eq!(Pallet::<Test>::current().max_offchain_runs, 80);
    });
}

#[test]
fn a_value_it_already_has_is_refused() {
    new_test_ext().execute_with(|| {
        assert_noop!(set(Change::ChallengePeriod(20)), Error::<Test>::Unchanged);
    });
}

#[test]
fn relations_between_parameters_are_kept() {
    new_test_ext().execute_with(|| {
        // release_slash (2) may not exceed missed_deadline_slash (10).
        assert_noop!(
            set(Change::ReleaseSlash(11)),
            Error::<Test>::ReleaseAboveMissedSlash
        );
        // Nor may the missed-deadline slash fall below the release slash.
        assert_ok!(set(Change::ReleaseSlash(10)));
        assert_noop!(
            set(Change::MissedDeadlineSlash(9)),
            Error::<Test>::ReleaseAboveMissedSlash
        );
        // 50% + 51% > 100%.
        assert_noop!(
            set(Change::RequesterCompensation(Perbill::from_percent(51))),
            Error::<Test>::SlashSharesAboveWhole
        );
        assert_ok!(set(Change::RequesterCompensation(Perbill::from_percent(
            50
        ))));
        // Unbonding (100) must outlast execution (10) + window (20).
        assert_noop!(
            set(Change::ChallengePeriod(91)),
            Error::<Test>::UnbondingTooShort
        );
        assert_ok!(set(Change::ChallengePeriod(90)));
        assert_noop!(
            set(Change::UnbondingPeriod(99)),
            Error::<Test>::UnbondingTooShort
        );
        // The result slash (200) may not exceed the least bond.
        assert_noop!(
            set(Change::ResultSlash(1_001)),
            Error::<Test>::SlashAboveMinBond
        );
        assert_noop!(
            set(Change::MinExecutorBond(499)),
            Error::<Test>::OutOfBounds
        );
        assert_ok!(set(Change::ResultSlash(1_000)));
        assert_noop!(
            set(Change::MinExecutorBond(999)),
            Error::<Test>::SlashAboveMinBond
        );
        // A retry (2 blocks) must come before a move's and an execution's deadline.
        assert_noop!(
            set(Change::OffchainRetryBlocks(10)),
            Error::<Test>::RetryNotBeforeDeadlines
        );
        assert_ok!(set(Change::OffchainRetryBlocks(9)));
        assert_noop!(
            set(Change::MoveTimeout(9)),
            Error::<Test>::RetryNotBeforeDeadlines
        );
    });
}

#[test]
fn raw_values_name_and_round_trip_every_parameter() {
    for (name, change) in PARAM_NAMES.iter().zip(DEFAULTS.values()) {
        assert_eq!(change.name(), *name);
        let (_, raw) = change.raw();
        assert_eq!(Change::from_raw(name, raw), Some(change), "{name}");
    }
    assert_eq!(Change::from_raw("no_such_parameter", 1), None);
    // A share above 100% and a count above u32 do not convert.
    assert_eq!(Change::from_raw("protocol_fee", 1_000_000_001), None);
    assert_eq!(
        Change::from_raw("max_missed_in_row", u32::MAX as u128 + 1),
        None
    );
    assert_eq!(
        Change::from_raw("execution_timeout", u64::MAX as u128 + 1),
        None
    );
}

//! The validator set: governance edits it, pallet-session takes it at the next session.

use crate::{mock::*, Changed, Error, Event};
use frame_support::{assert_noop, assert_ok};
use pallet_session::SessionManager;
use sp_runtime::DispatchError;

fn set() -> Vec<u64> {
    crate::Validators::<Test>::get().into_inner()
}

#[test]
fn genesis_hands_its_set_to_the_first_session_and_nothing_after_until_a_change() {
    new_test_ext().execute_with(|| {
        assert_eq!(
            <crate::Pallet<Test> as SessionManager<u64>>::new_session_genesis(0),
            Some(vec![1, 2, 3])
        );
        assert_eq!(crate::Pallet::<Test>::new_session(1), None);
        assert_ok!(crate::Pallet::<Test>::do_try_state());
    });
}

#[test]
fn governance_adds_and_removes_and_the_next_session_takes_the_change_once() {
    new_test_ext().execute_with(|| {
        assert_ok!(Validators::add_validator(RuntimeOrigin::root(), 4));
        System::assert_last_event(Event::ValidatorAdded { who: 4 }.into());
        assert_ok!(Validators::remove_validator(RuntimeOrigin::root(), 2));
        System::assert_last_event(Event::ValidatorRemoved { who: 2 }.into());
        assert_eq!(set(), vec![1, 3, 4]);
        assert!(Changed::<Test>::get());

        assert_eq!(crate::Pallet::<Test>::new_session(5), Some(vec![1, 3, 4]));
        System::assert_last_event(
            Event::NewSetPlanned {
                session: 5,
                validators: 3,
            }
            .into(),
        );
        // Handed over once: the following sessions keep it.
        assert_eq!(crate::Pallet::<Test>::new_session(6), None);
        assert_ok!(crate::Pallet::<Test>::do_try_state());
    });
}

#[test]
fn bad_changes_are_refused_by_name_and_change_nothing() {
    new_test_ext().execute_with(|| {
        assert_noop!(
            Validators::add_validator(RuntimeOrigin::signed(1), 4),
            DispatchError::BadOrigin
        );
        assert_noop!(
            Validators::remove_validator(RuntimeOrigin::signed(1), 3),
            DispatchError::BadOrigin
        );
        assert_noop!(
            Validators::add_validator(RuntimeOrigin::root(), 2),
            Error::<Test>::AlreadyValidator
        );
        assert_noop!(
            Validators::add_validator(RuntimeOrigin::root(), 95),
            Error::<Test>::NoSessionKeys
        );
        assert_noop!(
            Validators::remove_validator(RuntimeOrigin::root(), 9),
            Error::<Test>::NotValidator
        );
        assert_ok!(Validators::add_validator(RuntimeOrigin::root(), 4));
        assert_ok!(Validators::add_validator(RuntimeOrigin::root(), 5));
        assert_noop!(
            Validators::add_validator(RuntimeOrigin::root(), 6),
            Error::<Test>::TooManyValidators
        );
        for who in [1, 2, 3] {
            assert_ok!(Validators::remove_validator(RuntimeOrigin::root(), who));
        }
        // Two left: the minimum.
        assert_noop!(
            Validators::remove_validator(RuntimeOrigin::root(), 4),
            Error::<Test>::TooFewValidators
        );
        assert_eq!(set(), vec![4, 5]);
        assert_ok!(crate::Pallet::<Test>::do_try_state());
    });
}

#[test]
fn a_change_is_pending_from_the_decision_until_its_session_starts() {
    new_test_ext().execute_with(|| {
        use crate::Pallet as P;
        assert!(!P::<Test>::change_pending());
        assert_ok!(Validators::add_validator(RuntimeOrigin::root(), 4));
        assert!(P::<Test>::change_pending());
        assert_eq!(P::<Test>::new_session(5), Some(vec![1, 2, 3, 4]));
        // Queued by pallet-session, not validating yet.
        assert!(P::<Test>::change_pending());
        P::<Test>::start_session(4);
        assert!(P::<Test>::change_pending());
        P::<Test>::start_session(5);
        assert!(!P::<Test>::change_pending());
    });
}

#[test]
fn validators_without_keys_are_left_out_and_a_set_too_small_is_withheld() {
    new_test_ext().execute_with(|| {
        use crate::Pallet as P;
        // 91 and 92 had keys when added and purged them since (the mock's `Keyed` says
        // no keys at 90 and above): put them straight into the set.
        crate::Validators::<Test>::put(
            frame_support::BoundedVec::try_from(vec![1, 91, 92]).expect("bounded"),
        );
        Changed::<Test>::put(true);
        // One keyed validator is below MinValidators (2): the current set stays.
        assert_eq!(P::<Test>::new_session(7), None);
        System::assert_last_event(
            Event::NewSetWithheld {
                session: 7,
                keyed: 1,
            }
            .into(),
        );
        assert!(!P::<Test>::change_pending());
        crate::Validators::<Test>::put(
            frame_support::BoundedVec::try_from(vec![1, 2, 91]).expect("bounded"),
        );
        Changed::<Test>::put(true);
        assert_eq!(P::<Test>::new_session(8), Some(vec![1, 2]));
    });
}

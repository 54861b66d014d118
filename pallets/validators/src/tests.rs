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

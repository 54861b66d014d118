use crate::mock::*;
use frame_support::{assert_noop, assert_ok};
use sp_core::H256;
use sp_runtime::{traits::Hash, DispatchError};

#[test]
fn governance_authorizes_a_code_hash_with_the_version_check() {
    new_test_ext().execute_with(|| {
        let hash = <Test as frame_system::Config>::Hashing::hash(b"next runtime");
        assert_ok!(Upgrades::authorize_upgrade(RuntimeOrigin::root(), hash));
        System::assert_last_event(
            frame_system::Event::UpgradeAuthorized {
                code_hash: hash,
                check_version: true,
            }
            .into(),
        );
        // Code that does not hash to it is refused by frame-system.
        assert_noop!(
            System::apply_authorized_upgrade(RuntimeOrigin::signed(7), b"other code".to_vec()),
            frame_system::Error::<Test>::Unauthorized
        );
        // With the version check, the authorized bytes themselves are refused for
        // carrying no runtime version (and the authorization is spent).
        assert_ok!(System::apply_authorized_upgrade(
            RuntimeOrigin::signed(7),
            b"next runtime".to_vec()
        ));
        System::assert_last_event(
            frame_system::Event::RejectedInvalidAuthorizedUpgrade {
                code_hash: hash,
                error: frame_system::Error::<Test>::FailedToExtractRuntimeVersion.into(),
            }
            .into(),
        );
        assert_noop!(
            System::apply_authorized_upgrade(RuntimeOrigin::signed(7), b"next runtime".to_vec()),
            frame_system::Error::<Test>::NothingAuthorized
        );
    });
}

#[test]
fn only_the_upgrade_origin_authorizes() {
    new_test_ext().execute_with(|| {
        assert_noop!(
            Upgrades::authorize_upgrade(RuntimeOrigin::signed(1), H256::repeat_byte(1)),
            DispatchError::BadOrigin
        );
        assert_noop!(
            System::apply_authorized_upgrade(RuntimeOrigin::signed(7), b"code".to_vec()),
            frame_system::Error::<Test>::NothingAuthorized
        );
    });
}

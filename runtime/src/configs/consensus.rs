//! Block production and the randomness draws use: BABE (VRF slot leaders, 10-slot
//! epochs) and the adapter that hands pallet-inference BABE's per-block VRF output.
//!
//! Epochs and sessions: BABE announces each epoch's authorities one epoch ahead, and a
//! node rejects a block that announces when it should not or fails to when it should.
//! pallet-session hands BABE its authorities only when a session ends, and a session end
//! costs a whole block's weight, so sessions end only at the epoch boundaries where one
//! is due ([`super::validators::rotation_due`]); at every other boundary
//! [`EpochsBetweenSessions`] starts the epoch itself with the authorities already
//! announced. Every boundary thus enacts exactly once, and BABE's authorities are always
//! the ones its previous boundary announced.

use frame_support::traits::{ConstU32, ConstU64, Get, Randomness};
use frame_system::pallet_prelude::BlockNumberFor;

use super::validators::{rotation_due, MaxValidators};
use crate::{BlockNumber, Hash, Runtime, EPOCH_DURATION_IN_SLOTS, MILLI_SECS_PER_BLOCK};

impl pallet_babe::Config for Runtime {
    type EpochDuration = ConstU64<EPOCH_DURATION_IN_SLOTS>;
    type ExpectedBlockTime = ConstU64<MILLI_SECS_PER_BLOCK>;
    type EpochChangeTrigger = EpochsBetweenSessions;
    /// No offence reporting yet: nobody is disabled mid-session.
    type DisabledValidators = ();
    type WeightInfo = ();
    type MaxAuthorities = MaxValidators;
    type MaxNominators = ConstU32<0>;
    /// Equivocation reports are not accepted (no validator stake to slash yet).
    type KeyOwnerProof = sp_core::Void;
    type EquivocationReportSystem = ();
}

/// Starts the epochs at whose boundary no session ends: with the authorities announced
/// for it, announcing the same for the next. When a session is due, it does nothing and
/// pallet-session's rotation (which asks BABE's `should_end_session` after this ran)
/// enacts the epoch with the session's validators and queued keys.
///
/// Why BABE stays consistent: the validators a session rotation hands over are the keys
/// its previous rotation queued, and BABE announced exactly those then and has repeated
/// them at every boundary since.
pub struct EpochsBetweenSessions;

impl pallet_babe::EpochChangeTrigger for EpochsBetweenSessions {
    fn trigger<T: pallet_babe::Config>(now: BlockNumberFor<T>) {
        if !pallet_babe::Pallet::<T>::should_epoch_change(now) || rotation_due() {
            return;
        }
        let announced = pallet_babe::NextAuthorities::<T>::get();
        if announced.is_empty() {
            // BABE would ignore the change and every node reject the block: only reachable
            // if every validator purged its keys (docs/THREAT_MODEL.md, Validator set).
            frame_support::defensive!("BABE announced no authorities for this epoch");
        }
        pallet_babe::Pallet::<T>::enact_epoch_change(announced.clone(), announced, None);
        // pallet-babe charges its hooks nothing: the enactment's accesses (the slot, epoch
        // and randomness items, both authority lists, `rotation_due`'s reads) are ours.
        frame_system::Pallet::<T>::register_extra_weight_unchecked(
            <T as frame_system::Config>::DbWeight::get().reads_writes(10, 9),
            frame_support::dispatch::DispatchClass::Mandatory,
        );
    }
}

/// Index of the epoch a boundary in this block starts (the slot decides it, so epochs
/// the chain slept through are skipped, as BABE itself counts them).
pub fn epoch_starting_now() -> u64 {
    sp_consensus_babe::epoch_index(
        pallet_babe::CurrentSlot::<Runtime>::get(),
        pallet_babe::GenesisSlot::<Runtime>::get(),
        EPOCH_DURATION_IN_SLOTS,
    )
}

/// Index of the epoch in force before this block's boundary, if any.
pub fn current_epoch_index() -> u64 {
    pallet_babe::EpochIndex::<Runtime>::get()
}

/// The randomness assignment draws use: the parent block author's VRF output (BABE's
/// `ParentBlockRandomness`), new in every block. Its author knew it before publishing and
/// could only bias it by withholding its block (losing the slot); the current author
/// still orders the block's transactions. Before the first VRF output exists (block 1),
/// the genesis epoch randomness.
pub struct DrawRandomness;

impl Randomness<Hash, BlockNumber> for DrawRandomness {
    fn random(subject: &[u8]) -> (Hash, BlockNumber) {
        match pallet_babe::ParentBlockRandomness::<Runtime>::random(subject) {
            (Some(seed), known_since) => (seed, known_since),
            (None, _) => pallet_babe::RandomnessFromOneEpochAgo::<Runtime>::random(subject),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        AllPalletsWithSystem, Runtime, RuntimeGenesisConfig, RuntimeOrigin, Session, System,
        Timestamp, SLOT_DURATION,
    };
    use codec::Decode;
    use frame_support::traits::{OnFinalize, OnInitialize};
    use sp_consensus_babe::{
        digests::{CompatibleDigestItem, PreDigest, SecondaryPlainPreDigest},
        AuthorityId, ConsensusLog, BABE_ENGINE_ID,
    };
    use sp_keyring::Sr25519Keyring;
    use sp_runtime::{generic::DigestItem, Digest};

    /// The local testnet's genesis: four validators with session keys.
    fn testnet() -> sp_io::TestExternalities {
        let preset = crate::genesis_config_presets::get_preset(
            &sp_genesis_builder::PresetId::from(sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET),
        )
        .expect("the local testnet preset exists");
        let mut ext = sp_io::TestExternalities::new_empty();
        ext.execute_with(|| {
            frame_support::genesis_builder_helper::build_state::<RuntimeGenesisConfig>(preset)
                .expect("the local testnet genesis builds")
        });
        ext
    }

    /// Runs block `n` at `slot` as the runtime would (hooks, the timestamp inherent) and
    /// returns the authorities its BABE digest announces for the next epoch, if any.
    fn block(n: BlockNumber, slot: u64) -> Option<Vec<AuthorityId>> {
        let pre = PreDigest::SecondaryPlain(SecondaryPlainPreDigest {
            authority_index: 0,
            slot: slot.into(),
        });
        let digest = Digest {
            logs: vec![DigestItem::babe_pre_digest(pre)],
        };
        System::reset_events();
        System::initialize(&n, &System::parent_hash(), &digest);
        AllPalletsWithSystem::on_initialize(n);
        Timestamp::set(RuntimeOrigin::none(), slot * SLOT_DURATION).expect("the slot's timestamp");
        AllPalletsWithSystem::on_finalize(n);
        let header = System::finalize();
        let announced: Vec<_> = header
            .digest
            .logs
            .iter()
            .filter_map(|log| match log {
                DigestItem::Consensus(id, data) if *id == BABE_ENGINE_ID => {
                    match ConsensusLog::decode(&mut &data[..]) {
                        Ok(ConsensusLog::NextEpochData(next)) => {
                            Some(next.authorities.into_iter().map(|(a, _)| a).collect())
                        }
                        _ => None,
                    }
                }
                _ => None,
            })
            .collect();
        assert!(announced.len() <= 1, "block {n} announced two epochs");
        announced.into_iter().next()
    }

    fn babe_authorities() -> Vec<AuthorityId> {
        pallet_babe::Authorities::<Runtime>::get()
            .into_iter()
            .map(|(a, _)| a)
            .collect()
    }

    /// BABE's keys of the session's current validators.
    fn session_babe_keys() -> Vec<AuthorityId> {
        pallet_session::Validators::<Runtime>::get()
            .iter()
            .map(|v| Session::load_keys(v).expect("a validator has keys").babe)
            .collect()
    }

    /// Runs blocks from `first` at consecutive slots from `slot` and checks, at each,
    /// what a node checks on import: a block starts a new epoch exactly when it
    /// announces the one after, and each epoch's authorities are the ones announced.
    /// Returns the block number and slot to go on from and the boundaries crossed.
    fn run(
        mut n: BlockNumber,
        mut slot: u64,
        blocks: u32,
        announced: &mut Vec<AuthorityId>,
    ) -> (BlockNumber, u64, u32) {
        let mut boundaries = 0;
        for _ in 0..blocks {
            let epoch_before = pallet_babe::EpochIndex::<Runtime>::get();
            let next = block(n, slot);
            let new_epoch = pallet_babe::EpochIndex::<Runtime>::get() != epoch_before;
            assert_eq!(new_epoch, next.is_some(), "block {n} (slot {slot})");
            if let Some(next) = next {
                assert_eq!(&babe_authorities(), announced, "block {n}: unannounced set");
                *announced = next;
                boundaries += 1;
            }
            n += 1;
            slot += 1;
        }
        (n, slot, boundaries)
    }

    #[test]
    fn every_epoch_boundary_enacts_once_and_sessions_end_only_when_due() {
        testnet().execute_with(|| {
            let genesis_keys = session_babe_keys();
            assert_eq!(genesis_keys.len(), 4);
            // Block 1 starts epoch 0 at its slot and announces epoch 1: the genesis set.
            assert_eq!(block(1, 100), Some(genesis_keys.clone()));
            assert_eq!(current_epoch_index(), 0);
            let mut announced = genesis_keys.clone();
            // Nothing pending: ten epochs, no session ends (each would cost a block).
            let (n, slot, boundaries) = run(2, 101, 99, &mut announced);
            assert_eq!(boundaries, 9);
            assert_eq!(Session::current_index(), 0);
            assert_eq!(babe_authorities(), genesis_keys);

            // Governance removes Dave: the next boundary ends a session (queues the new
            // set, announced for the epoch after), the one after enacts it, and no
            // later one ends a session.
            let dave = Sr25519Keyring::Dave.to_account_id();
            pallet_validators::Pallet::<Runtime>::remove_validator(RuntimeOrigin::root(), dave)
                .expect("root removes a validator");
            let (n, slot, _) = run(n, slot, 10, &mut announced);
            assert_eq!(Session::current_index(), 1);
            assert_eq!(announced.len(), 3, "the queued set is announced");
            assert_eq!(babe_authorities().len(), 4);
            let (n, slot, _) = run(n, slot, 10, &mut announced);
            assert_eq!(Session::current_index(), 2);
            assert_eq!(babe_authorities(), session_babe_keys());
            assert_eq!(babe_authorities().len(), 3);
            let (n, slot, boundaries) = run(n, slot, 50, &mut announced);
            assert_eq!((boundaries, Session::current_index()), (5, 2));
            assert_eq!(babe_authorities(), session_babe_keys());

            // The chain sleeps through epochs: one boundary, at the epoch the slot says.
            let (n, slot, boundaries) = run(n, slot + 35, 1, &mut announced);
            assert_eq!(boundaries, 1);
            assert_eq!(
                current_epoch_index(),
                (slot - 1 - 100) / EPOCH_DURATION_IN_SLOTS
            );
            assert_eq!(Session::current_index(), 2);

            // The hourly rotation: the boundary into epoch 120 ends a session.
            let hour = 100 + super::super::validators::EPOCHS_PER_SESSION * EPOCH_DURATION_IN_SLOTS;
            // (The slot jumps again: epoch 119 starts without a session end, then 120.)
            let (_, _, boundaries) = run(n, hour - 5, 10, &mut announced);
            assert_eq!(boundaries, 2);
            assert_eq!(Session::current_index(), 3);
            assert_eq!(babe_authorities(), session_babe_keys());
        });
    }

    #[test]
    fn validators_purging_every_key_cannot_make_babe_announce_an_empty_epoch() {
        testnet().execute_with(|| {
            block(1, 100);
            for who in [
                Sr25519Keyring::Alice,
                Sr25519Keyring::Bob,
                Sr25519Keyring::Charlie,
                Sr25519Keyring::Dave,
            ] {
                Session::purge_keys(RuntimeOrigin::signed(who.to_account_id()))
                    .expect("a validator purges its keys");
            }
            let mut announced = session_babe_keys_queued();
            // Past the hourly boundary: the rotation would queue nobody, so it waits,
            // and every boundary still announces the four.
            let hour = 100 + super::super::validators::EPOCHS_PER_SESSION * EPOCH_DURATION_IN_SLOTS;
            let (_, _, boundaries) = run(2, hour - 5, 20, &mut announced);
            assert_eq!(boundaries, 3);
            assert_eq!(Session::current_index(), 0);
            assert_eq!(announced.len(), 4);
        });
    }

    /// BABE's keys of the validators pallet-session queued.
    fn session_babe_keys_queued() -> Vec<AuthorityId> {
        pallet_session::QueuedKeys::<Runtime>::get()
            .into_iter()
            .map(|(_, keys)| keys.babe)
            .collect()
    }

    #[test]
    fn draws_use_the_parent_block_authors_vrf_output() {
        testnet().execute_with(|| {
            block(1, 100);
            // No VRF output yet (a secondary plain slot): the genesis epoch randomness.
            let (before, _) = DrawRandomness::random(b"assign");
            pallet_babe::AuthorVrfRandomness::<Runtime>::put(Some([7u8; 32]));
            let (seed, known_since) = DrawRandomness::random(b"assign");
            assert_ne!(seed, before);
            assert_eq!(known_since, System::block_number() - 1);
            // A different subject draws differently from the same output.
            assert_ne!(DrawRandomness::random(b"other").0, seed);
        });
    }
}

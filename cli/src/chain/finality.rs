//! GRANDPA finality from a trusted genesis, across authority-set changes.
//!
//! A receipt trusts one thing: the genesis hash. The genesis state names the first
//! GRANDPA authority set (set id 0). Every later set is reached by a **hand-off**: the
//! header of the block that schedules the change (a `ScheduledChange` digest with delay
//! 0, which is what pallet-grandpa writes at a session change) together with the
//! justification the outgoing set signed for that very block. Following the hand-offs in
//! order gives the set that finalizes any later block; a justification is then checked
//! against that set and its id.
//!
//! This module is pure: no RPC, no clock. The online client collects the hand-offs, an
//! exported receipt carries them, and both are checked here by the same code.

use codec::{Decode, Encode};
use finality_grandpa::voter_set::VoterSet;
use inferchain_runtime::{opaque::Block, BlockNumber, Header};
use sp_consensus_grandpa::{AuthorityList, ConsensusLog, ScheduledChange, GRANDPA_ENGINE_ID};
use sp_runtime::{
    traits::{Header as _, Zero},
    DigestItem,
};

/// An authority set and its id: who may finalize blocks, and the id their signatures
/// commit to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthoritySet {
    pub set_id: u64,
    pub authorities: AuthorityList,
}

/// The block that hands finality from set `n` to set `n + 1`, with set `n`'s
/// justification of it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Handoff {
    pub header: Header,
    pub justification: Vec<u8>,
}

/// Why finality was not proven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FinalityError {
    #[error("authority set {set_id} is empty")]
    EmptySet { set_id: u64 },
    #[error("the justification of block #{number} does not verify against authority set {set_id} ({authorities} authorities): {reason}")]
    BadJustification {
        number: BlockNumber,
        set_id: u64,
        authorities: usize,
        reason: String,
    },
    #[error("hand-off block #{number} schedules no GRANDPA authority change")]
    NoScheduledChange { number: BlockNumber },
    #[error("hand-off block #{number} schedules a change with delay {delay}; only immediate changes (delay 0, as at a session change) are followed")]
    DelayedChange {
        number: BlockNumber,
        delay: BlockNumber,
    },
    #[error("block #{number} forces an authority change (an emergency change without the old set's signatures); a receipt does not follow it")]
    ForcedChange { number: BlockNumber },
    #[error("hand-off block #{number} is not after the previous one (#{previous})")]
    OutOfOrder {
        number: BlockNumber,
        previous: BlockNumber,
    },
}

/// The GRANDPA change `header` schedules, if any; a forced change is an error.
pub fn scheduled_change(
    header: &Header,
) -> Result<Option<ScheduledChange<BlockNumber>>, FinalityError> {
    let mut scheduled = None;
    for item in header.digest().logs() {
        let DigestItem::Consensus(engine, data) = item else {
            continue;
        };
        if *engine != GRANDPA_ENGINE_ID {
            continue;
        }
        match ConsensusLog::<BlockNumber>::decode(&mut &data[..]) {
            Ok(ConsensusLog::ForcedChange(..)) => {
                return Err(FinalityError::ForcedChange {
                    number: *header.number(),
                })
            }
            // The earliest scheduled change of a block is the one GRANDPA applies.
            Ok(ConsensusLog::ScheduledChange(change)) if scheduled.is_none() => {
                scheduled = Some(change)
            }
            _ => {}
        }
    }
    Ok(scheduled)
}

/// Checks that `justification` finalizes `header` under `set`.
pub fn verify_justification(
    set: &AuthoritySet,
    header: &Header,
    justification: &[u8],
) -> Result<(), FinalityError> {
    let voters = VoterSet::new(set.authorities.iter().cloned())
        .ok_or(FinalityError::EmptySet { set_id: set.set_id })?;
    sc_consensus_grandpa::GrandpaJustification::<Block>::decode_and_verify_finalizes(
        justification,
        (header.hash(), *header.number()),
        set.set_id,
        &voters,
    )
    .map(|_| ())
    .map_err(|e| FinalityError::BadJustification {
        number: *header.number(),
        set_id: set.set_id,
        authorities: set.authorities.len(),
        reason: e.to_string(),
    })
}

/// Follows `handoffs` from the genesis set: each must be justified by the set before it
/// and schedule an immediate change, in increasing block order. Returns the set that
/// finalizes blocks after the last hand-off.
pub fn follow_handoffs(
    genesis: AuthoritySet,
    handoffs: &[Handoff],
) -> Result<AuthoritySet, FinalityError> {
    let mut set = genesis;
    let mut previous: Option<BlockNumber> = None;
    for handoff in handoffs {
        let number = *handoff.header.number();
        if let Some(previous) = previous.filter(|p| number <= *p) {
            return Err(FinalityError::OutOfOrder { number, previous });
        }
        verify_justification(&set, &handoff.header, &handoff.justification)?;
        let change = scheduled_change(&handoff.header)?
            .ok_or(FinalityError::NoScheduledChange { number })?;
        if !change.delay.is_zero() {
            return Err(FinalityError::DelayedChange {
                number,
                delay: change.delay,
            });
        }
        set = AuthoritySet {
            set_id: set.set_id + 1,
            authorities: change.next_authorities,
        };
        previous = Some(number);
    }
    Ok(set)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sp_consensus_grandpa::{AuthorityId, AuthoritySignature, GrandpaJustification};
    use sp_core::{ed25519, Pair, H256};
    use sp_keyring::Ed25519Keyring;
    use sp_runtime::Digest;

    /// Ed25519 pairs of the dev keyring, by name.
    pub fn keys(names: &[Ed25519Keyring]) -> Vec<ed25519::Pair> {
        names.iter().map(|k| k.pair()).collect()
    }

    pub fn authorities(pairs: &[ed25519::Pair]) -> AuthorityList {
        pairs
            .iter()
            .map(|p| (AuthorityId::from(p.public()), 1))
            .collect()
    }

    pub fn header(number: BlockNumber, parent: H256, logs: Vec<DigestItem>) -> Header {
        Header::new(
            number,
            H256::repeat_byte(number as u8),
            H256::repeat_byte(0xaa),
            parent,
            Digest { logs },
        )
    }

    pub fn change_log(next: &[ed25519::Pair], delay: BlockNumber) -> DigestItem {
        DigestItem::Consensus(
            GRANDPA_ENGINE_ID,
            ConsensusLog::ScheduledChange(ScheduledChange {
                next_authorities: authorities(next),
                delay,
            })
            .encode(),
        )
    }

    /// A justification of `header` signed by `signers` for `set_id`.
    pub fn justify(header: &Header, set_id: u64, signers: &[ed25519::Pair]) -> Vec<u8> {
        let round = 7;
        let precommit = finality_grandpa::Precommit {
            target_hash: header.hash(),
            target_number: *header.number(),
        };
        let message = finality_grandpa::Message::Precommit(precommit.clone());
        let payload = sp_consensus_grandpa::localized_payload(round, set_id, &message);
        let precommits = signers
            .iter()
            .map(|p| finality_grandpa::SignedPrecommit {
                precommit: precommit.clone(),
                signature: AuthoritySignature::from(p.sign(&payload)),
                id: AuthorityId::from(p.public()),
            })
            .collect();
        GrandpaJustification::<Header> {
            round,
            commit: finality_grandpa::Commit {
                target_hash: header.hash(),
                target_number: *header.number(),
                precommits,
            },
            votes_ancestries: Vec::new(),
        }
        .encode()
    }

    fn genesis_set(pairs: &[ed25519::Pair]) -> AuthoritySet {
        AuthoritySet {
            set_id: 0,
            authorities: authorities(pairs),
        }
    }

    use Ed25519Keyring::{Alice, Bob, Charlie, Dave, Eve, Ferdie};

    #[test]
    fn a_justification_needs_more_than_two_thirds_of_the_set_for_its_set_id() {
        let set0 = keys(&[Alice, Bob, Charlie, Dave]);
        let set = genesis_set(&set0);
        let block = header(5, H256::zero(), vec![]);
        assert_eq!(
            verify_justification(&set, &block, &justify(&block, 0, &set0[..3])),
            Ok(())
        );
        // Two of four is not more than two thirds.
        let too_few = verify_justification(&set, &block, &justify(&block, 0, &set0[..2]));
        assert!(
            matches!(
                too_few,
                Err(FinalityError::BadJustification {
                    number: 5,
                    set_id: 0,
                    ..
                })
            ),
            "{too_few:?}"
        );
        // Signed for another set id.
        let wrong_set = verify_justification(&set, &block, &justify(&block, 1, &set0[..4]));
        assert!(
            matches!(wrong_set, Err(FinalityError::BadJustification { .. })),
            "{wrong_set:?}"
        );
        // Signed by keys outside the set.
        let outsiders = keys(&[Eve, Ferdie, Charlie, Dave]);
        let wrong_signers = verify_justification(&set, &block, &justify(&block, 0, &outsiders));
        assert!(
            matches!(wrong_signers, Err(FinalityError::BadJustification { .. })),
            "{wrong_signers:?}"
        );
        // A justification of another block.
        let other = header(6, block.hash(), vec![]);
        let moved = verify_justification(&set, &block, &justify(&other, 0, &set0));
        assert!(
            matches!(moved, Err(FinalityError::BadJustification { .. })),
            "{moved:?}"
        );
    }

    #[test]
    fn hand_offs_lead_from_the_genesis_set_to_the_current_one() {
        let set0 = keys(&[Alice, Bob, Charlie, Dave]);
        let set1 = keys(&[Bob, Charlie, Dave, Eve]);
        let set2 = keys(&[Charlie, Dave, Eve, Ferdie]);
        let b10 = header(10, H256::zero(), vec![change_log(&set1, 0)]);
        let b20 = header(20, H256::zero(), vec![change_log(&set2, 0)]);
        let handoffs = vec![
            Handoff {
                justification: justify(&b10, 0, &set0),
                header: b10.clone(),
            },
            Handoff {
                justification: justify(&b20, 1, &set1),
                header: b20.clone(),
            },
        ];
        let current = follow_handoffs(genesis_set(&set0), &handoffs).expect("followed");
        assert_eq!(current.set_id, 2);
        assert_eq!(current.authorities, authorities(&set2));
        let b30 = header(30, H256::zero(), vec![]);
        assert_eq!(
            verify_justification(&current, &b30, &justify(&b30, 2, &set2)),
            Ok(())
        );
        // The genesis set cannot finalize a block after it handed over.
        assert!(verify_justification(&current, &b30, &justify(&b30, 0, &set0)).is_err());

        // Without the second hand-off, set 1 is current and set 2's signature fails.
        let partial = follow_handoffs(genesis_set(&set0), &handoffs[..1]).expect("followed");
        assert_eq!(partial.set_id, 1);
        assert!(verify_justification(&partial, &b30, &justify(&b30, 2, &set2)).is_err());

        // Out of order.
        let swapped = vec![handoffs[1].clone(), handoffs[0].clone()];
        assert!(matches!(
            follow_handoffs(genesis_set(&set0), &swapped),
            Err(FinalityError::BadJustification { number: 20, .. })
        ));
        let repeated = vec![handoffs[0].clone(), handoffs[0].clone()];
        assert_eq!(
            follow_handoffs(genesis_set(&set0), &repeated),
            Err(FinalityError::OutOfOrder {
                number: 10,
                previous: 10
            })
        );
    }

    #[test]
    fn a_hand_off_must_be_signed_by_the_outgoing_set_and_schedule_an_immediate_change() {
        let set0 = keys(&[Alice, Bob, Charlie, Dave]);
        let attackers = keys(&[Eve, Ferdie]);
        // A forged hand-off to the attacker's keys, signed by the attackers themselves.
        let forged = header(10, H256::zero(), vec![change_log(&attackers, 0)]);
        assert!(matches!(
            follow_handoffs(
                genesis_set(&set0),
                &[Handoff {
                    justification: justify(&forged, 0, &attackers),
                    header: forged.clone(),
                }]
            ),
            Err(FinalityError::BadJustification { number: 10, .. })
        ));
        // A justified block that changes nothing is no hand-off.
        let plain = header(10, H256::zero(), vec![]);
        assert_eq!(
            follow_handoffs(
                genesis_set(&set0),
                &[Handoff {
                    justification: justify(&plain, 0, &set0),
                    header: plain,
                }]
            ),
            Err(FinalityError::NoScheduledChange { number: 10 })
        );
        // A delayed change is not followed.
        let delayed = header(10, H256::zero(), vec![change_log(&attackers, 3)]);
        assert_eq!(
            follow_handoffs(
                genesis_set(&set0),
                &[Handoff {
                    justification: justify(&delayed, 0, &set0),
                    header: delayed,
                }]
            ),
            Err(FinalityError::DelayedChange {
                number: 10,
                delay: 3
            })
        );
        // A forced change is refused by name.
        let forced = header(
            10,
            H256::zero(),
            vec![DigestItem::Consensus(
                GRANDPA_ENGINE_ID,
                ConsensusLog::ForcedChange(
                    0u32,
                    ScheduledChange {
                        next_authorities: authorities(&attackers),
                        delay: 0,
                    },
                )
                .encode(),
            )],
        );
        assert_eq!(
            follow_handoffs(
                genesis_set(&set0),
                &[Handoff {
                    justification: justify(&forced, 0, &set0),
                    header: forced,
                }]
            ),
            Err(FinalityError::ForcedChange { number: 10 })
        );
    }
}

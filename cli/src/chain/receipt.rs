//! Receipts: what the chain says about a request, with every claim proven to the client
//! instead of trusted from the RPC node.
//!
//! The one thing trusted is a checkpoint: the genesis hash (pinned by the user; the first
//! GRANDPA authority set is read from the genesis state with a storage proof against the
//! genesis header, which must hash to it). From there:
//!
//! 1. **Authority sets**: each change of the GRANDPA set is followed by its hand-off
//!    block, justified by the outgoing set ([`super::finality`]).
//! 2. **Finality**: a block `X` in the request's lifetime, at or after its settlement,
//!    carries a GRANDPA justification by the set of its time, and `X`'s header must hash
//!    to the justified hash.
//! 3. **State**: the request, its result, the model and the set id are read with a
//!    storage proof checked against `X`'s state root; the set id must be the one the
//!    hand-offs lead to.
//! 4. **Content**: the request is `Finalized`; the stored input and output hash to the
//!    hashes the chain recorded; the model is registered under the id it names.
//! 5. **Re-run** (optional, by the caller): the model is re-run locally and compared
//!    under its registered rule.
//!
//! Everything a receipt is checked against is one [`ReceiptFile`]: the online `verify`
//! collects it from a node ([`super::receipt_collect`]) and checks it here; an exported
//! file is checked by the same function with no node at all.
//!
//! What this defends against: an RPC node that lies about any stored field, serves a
//! header that is not the finalized one, a fork GRANDPA did not finalize, or an invented
//! authority set. What it does not: a dishonest two-thirds of an authority set (they can
//! finalize anything), or a wrong genesis hash given by the user.

use super::finality::{self, AuthoritySet, FinalityError, Handoff};
use codec::{Decode, Encode};
use inferchain_primitives::{blake2_256, ModelId, RequestId, H256};
use inferchain_runtime::{Balance, BlockNumber, Header, Runtime};
use pallet_inference::{RequestOf, RequestStatus, ResultOf};
use sp_consensus_grandpa::AuthorityList;
use sp_runtime::traits::{BlakeTwo256, Header as _};

/// One claim of a receipt and whether it held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// A request's receipt: the proven facts and the checks made.
pub struct Receipt {
    pub id: RequestId,
    /// The block whose justification and state root the facts are proven against.
    pub proven_at: (BlockNumber, H256),
    pub request: Option<RequestOf<Runtime>>,
    pub result: Option<ResultOf<Runtime>>,
    pub model: Option<pallet_models::ModelInfo<Balance, BlockNumber>>,
    /// The GRANDPA set that finalized `proven_at`.
    pub authority_set: Option<u64>,
    pub checks: Vec<Check>,
}

/// How a receipt that is not valid failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every check held.
    Valid,
    /// Everything proven holds, but the request is not final yet: ask again later.
    NotFinal,
    /// A check failed: the receipt does not prove what it claims.
    Invalid,
}

impl Receipt {
    /// Whether every check passed.
    pub fn valid(&self) -> bool {
        self.verdict() == Verdict::Valid
    }

    /// Valid, not final yet (only the status failed, on a live request), or invalid.
    pub fn verdict(&self) -> Verdict {
        let failed: Vec<&Check> = self.checks.iter().filter(|c| !c.ok).collect();
        let live = self.request.as_ref().is_some_and(|r| r.status.holds_fee());
        match failed.as_slice() {
            [] if !self.checks.is_empty() => Verdict::Valid,
            [only] if only.name == STATUS && live => Verdict::NotFinal,
            _ => Verdict::Invalid,
        }
    }

    pub fn check(&mut self, name: &'static str, ok: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            name,
            ok,
            detail: detail.into(),
        });
    }
}

const STATUS: &str = "status";

/// What a receipt is checked against: headers, justifications and storage proofs from
/// the genesis to one finalized block. Self-contained: checking it needs no node.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ReceiptFile {
    pub request: RequestId,
    pub genesis_header: Header,
    /// Proof of `Grandpa::Authorities` against the genesis state root.
    pub genesis_proof: Vec<Vec<u8>>,
    /// The authority-set hand-offs from genesis to the set of `header`, in order.
    pub handoffs: Vec<Handoff>,
    /// The block the facts are proven at, and its GRANDPA justification.
    pub header: Header,
    pub justification: Vec<u8>,
    /// Proof of the request, its result, the model and `Grandpa::CurrentSetId` against
    /// `header`'s state root.
    pub state_proof: Vec<Vec<u8>>,
}

/// The first bytes of an exported receipt (then the SCALE encoding of [`ReceiptFile`]).
pub const RECEIPT_MAGIC: &[u8; 12] = b"inferchain/1";

/// Why bytes are not a receipt file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptFileError {
    #[error("not an inferchain receipt (it does not start with {magic:?}); export one with `inferchain verify ID --genesis HASH --export FILE`", magic = String::from_utf8_lossy(RECEIPT_MAGIC))]
    NotAReceipt,
    #[error("the receipt file is truncated or corrupt (it does not decode)")]
    Corrupt,
}

impl ReceiptFile {
    /// The file's bytes: the magic, then the SCALE encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = RECEIPT_MAGIC.to_vec();
        self.encode_to(&mut bytes);
        bytes
    }

    /// Reads a file written by [`ReceiptFile::to_bytes`]; trailing bytes are refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ReceiptFileError> {
        let body = bytes
            .strip_prefix(RECEIPT_MAGIC.as_slice())
            .ok_or(ReceiptFileError::NotAReceipt)?;
        codec::DecodeAll::decode_all(&mut &body[..]).map_err(|_| ReceiptFileError::Corrupt)
    }
}

/// Storage keys a receipt reads.
pub mod keys {
    use super::*;

    pub fn authorities() -> Vec<u8> {
        frame_support::storage::storage_prefix(b"Grandpa", b"Authorities").to_vec()
    }
    pub fn set_id() -> Vec<u8> {
        frame_support::storage::storage_prefix(b"Grandpa", b"CurrentSetId").to_vec()
    }
    pub fn request(id: RequestId) -> Vec<u8> {
        pallet_inference::Requests::<Runtime>::hashed_key_for(id)
    }
    pub fn result(id: RequestId) -> Vec<u8> {
        pallet_inference::Results::<Runtime>::hashed_key_for(id)
    }
    pub fn model(id: ModelId) -> Vec<u8> {
        pallet_models::Models::<Runtime>::hashed_key_for(id)
    }
}

/// `keys` read from `proof` against `root`.
pub fn read_proof(
    root: H256,
    proof: &[Vec<u8>],
    keys: &[Vec<u8>],
) -> Result<Vec<Option<Vec<u8>>>, String> {
    let proof = sp_trie::StorageProof::new(proof.iter().cloned());
    let values = sp_state_machine::read_proof_check::<BlakeTwo256, _>(root, proof, keys)
        .map_err(|e| format!("{e}"))?;
    Ok(keys
        .iter()
        .map(|k| values.get(k).cloned().flatten())
        .collect())
}

/// Checks `file` from the trusted `genesis`: every claim above, each a named [`Check`].
pub fn check_receipt(file: &ReceiptFile, genesis: H256) -> Receipt {
    let number = *file.header.number();
    let hash = file.header.hash();
    let mut receipt = Receipt {
        id: file.request,
        proven_at: (number, hash),
        request: None,
        result: None,
        model: None,
        authority_set: None,
        checks: Vec::new(),
    };

    let genesis_ok = file.genesis_header.hash() == genesis && *file.genesis_header.number() == 0;
    receipt.check(
        "genesis",
        genesis_ok,
        if genesis_ok {
            format!("the genesis header hashes to the trusted {genesis:?}")
        } else {
            format!(
                "the receipt's genesis header #{} hashes to {:?}, not the trusted {genesis:?}",
                file.genesis_header.number(),
                file.genesis_header.hash()
            )
        },
    );
    if !genesis_ok {
        return receipt;
    }
    let authorities = read_proof(
        *file.genesis_header.state_root(),
        &file.genesis_proof,
        &[keys::authorities()],
    )
    .and_then(|mut v| v.pop().flatten().ok_or_else(|| "absent".to_string()))
    .and_then(|v| AuthorityList::decode(&mut &v[..]).map_err(|e| format!("{e}")));
    let authorities = match authorities {
        Ok(a) => a,
        Err(e) => {
            receipt.check(
                "genesis authorities",
                false,
                format!(
                    "the GRANDPA authorities are not proven against the genesis state root: {e}"
                ),
            );
            return receipt;
        }
    };
    receipt.check(
        "genesis authorities",
        true,
        format!(
            "{} GRANDPA authorities read with a storage proof against the genesis state root",
            authorities.len()
        ),
    );

    let followed = finality::follow_handoffs(
        AuthoritySet {
            set_id: 0,
            authorities,
        },
        &file.handoffs,
    )
    .and_then(|set| match file.handoffs.last() {
        Some(last) if *last.header.number() >= number => Err(FinalityError::OutOfOrder {
            number,
            previous: *last.header.number(),
        }),
        _ => Ok(set),
    });
    let set = match followed {
        Ok(set) => set,
        Err(e) => {
            receipt.check("authority set", false, e.to_string());
            return receipt;
        }
    };
    receipt.check(
        "authority set",
        true,
        if file.handoffs.is_empty() {
            "the genesis authorities (set 0) finalize the block".to_string()
        } else {
            format!(
                "followed {} hand-off(s) (blocks {}) from the genesis set to set {} ({} authorities)",
                file.handoffs.len(),
                file.handoffs
                    .iter()
                    .map(|h| format!("#{}", h.header.number()))
                    .collect::<Vec<_>>()
                    .join(", "),
                set.set_id,
                set.authorities.len()
            )
        },
    );
    receipt.authority_set = Some(set.set_id);
    let finality = finality::verify_justification(&set, &file.header, &file.justification);
    receipt.check(
        "finality",
        finality.is_ok(),
        match &finality {
            Ok(()) => format!(
                "block #{number} {hash:?} is finalized: GRANDPA justification signed by more than 2/3 of the {} authorities of set {}",
                set.authorities.len(),
                set.set_id
            ),
            Err(e) => e.to_string(),
        },
    );

    let root = *file.header.state_root();
    let id = file.request;
    let values = read_proof(
        root,
        &file.state_proof,
        &[keys::request(id), keys::result(id), keys::set_id()],
    );
    let mut values = match values {
        Ok(v) => v.into_iter(),
        Err(e) => {
            receipt.check(
                "state proof",
                false,
                format!("the storage proof does not match the state root of block #{number}: {e}"),
            );
            return receipt;
        }
    };
    let (request, result, set_id) = (
        values.next().flatten(),
        values.next().flatten(),
        values.next().flatten(),
    );
    receipt.check(
        "state proof",
        true,
        format!("request and result read with a storage proof against the state root of #{number}"),
    );

    // The set id in a block's state already counts a change the block itself schedules.
    let proven_set = set_id
        .and_then(|v| u64::decode(&mut &v[..]).ok())
        .unwrap_or(0);
    let schedules = matches!(finality::scheduled_change(&file.header), Ok(Some(_)));
    let expected = set.set_id + u64::from(schedules);
    receipt.check(
        "set id",
        proven_set == expected,
        if proven_set == expected {
            format!("the chain's GRANDPA set id at #{number} is {proven_set}, as the hand-offs lead to")
        } else {
            format!("the chain's GRANDPA set id at #{number} is {proven_set}, but the receipt's hand-offs lead to {expected}: a hand-off is missing")
        },
    );

    let request = request.and_then(|v| RequestOf::<Runtime>::decode(&mut &v[..]).ok());
    let result = result.and_then(|v| ResultOf::<Runtime>::decode(&mut &v[..]).ok());
    let Some(request) = request else {
        receipt.check(
            "request",
            false,
            format!("no request {id} at #{number} (never made, or pruned)"),
        );
        return receipt;
    };
    match request.status {
        RequestStatus::Finalized { at } => receipt.check(
            STATUS,
            at <= number,
            format!("the result became final in block #{at}"),
        ),
        ref other => receipt.check(
            STATUS,
            false,
            format!("the request is not final at #{number}: {other:?}"),
        ),
    }
    receipt.check(
        "input hash",
        H256(blake2_256(&request.input)) == request.input_hash,
        format!("the stored input hashes to {:?}", request.input_hash),
    );
    match &result {
        Some(r) => receipt.check(
            "output hash",
            H256(blake2_256(&r.output)) == r.output_hash,
            format!("the stored output hashes to {:?}", r.output_hash),
        ),
        // Waiting for its executor: no result yet, and none is claimed.
        None if matches!(request.status, RequestStatus::Pending { .. }) => {}
        None => receipt.check("output hash", false, "no result stored"),
    }
    let model = read_proof(root, &file.state_proof, &[keys::model(request.model)])
        .ok()
        .and_then(|mut v| v.pop().flatten())
        .and_then(|v| pallet_models::ModelInfo::<Balance, BlockNumber>::decode(&mut &v[..]).ok());
    let model_ok = model
        .as_ref()
        .is_some_and(|m| m.spec.artifact_hash == request.model);
    receipt.check(
        "model",
        model_ok,
        if model_ok {
            format!(
                "model {:?} is registered with that artifact hash",
                request.model
            )
        } else {
            format!(
                "model {:?} is not proven registered under its own id",
                request.model
            )
        },
    );
    receipt.request = Some(request);
    receipt.result = result;
    receipt.model = model;
    receipt
}

/// The model id a receipt names, for callers that re-run it.
pub fn model_of(receipt: &Receipt) -> Option<ModelId> {
    receipt.request.as_ref().map(|r| r.model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::finality::tests::{authorities, change_log, justify, keys as pairs};
    use sp_core::ed25519;
    use sp_keyring::{Ed25519Keyring::*, Sr25519Keyring};
    use sp_runtime::{Digest, StateVersion};
    use sp_state_machine::TrieBackend;
    use std::collections::BTreeMap;

    type Backend = TrieBackend<sp_trie::PrefixedMemoryDB<BlakeTwo256>, BlakeTwo256>;

    /// A state with `entries`: its root and a proof of `keys` in it.
    fn state(entries: &[(Vec<u8>, Vec<u8>)], keys: &[Vec<u8>]) -> (H256, Vec<Vec<u8>>) {
        let map: BTreeMap<Vec<u8>, Vec<u8>> = entries.iter().cloned().collect();
        let backend = Backend::from((map, StateVersion::V1));
        let root = *backend.root();
        let proof = sp_state_machine::prove_read(backend, keys).expect("proof");
        (root, proof.into_iter_nodes().collect())
    }

    fn header(number: BlockNumber, root: H256, logs: Vec<sp_runtime::DigestItem>) -> Header {
        Header::new(
            number,
            H256::repeat_byte(1),
            root,
            H256::zero(),
            Digest { logs },
        )
    }

    struct Chain {
        genesis: Header,
        genesis_proof: Vec<Vec<u8>>,
        set0: Vec<ed25519::Pair>,
    }

    fn chain() -> Chain {
        let set0 = pairs(&[Alice, Bob, Charlie]);
        let (root, genesis_proof) = state(
            &[(keys::authorities(), authorities(&set0).encode())],
            &[keys::authorities()],
        );
        Chain {
            genesis: header(0, root, vec![]),
            genesis_proof,
            set0,
        }
    }

    /// The state of a block where request 7 is final with a result, under `set_id`.
    fn block_state(set_id: u64, output: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        block_state_with(set_id, output, RequestStatus::Finalized { at: 30 })
    }

    fn block_state_with(
        set_id: u64,
        output: &[u8],
        status: RequestStatus<BlockNumber>,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let who = Sr25519Keyring::Charlie.to_account_id();
        let input = b"an input".to_vec();
        let request: RequestOf<Runtime> = pallet_inference::Request {
            model: ModelId::repeat_byte(9),
            requester: who.clone(),
            executor: who.clone(),
            input_hash: H256(blake2_256(&input)),
            input: input.try_into().expect("bounded"),
            fee: 5,
            status,
            attempt: 1,
            submitted_at: 20,
        };
        let result: ResultOf<Runtime> = pallet_inference::InferenceResult {
            executor: who,
            output_hash: H256(blake2_256(output)),
            output: output.to_vec().try_into().expect("bounded"),
            posted_at: 25,
            challenged: false,
        };
        vec![
            (keys::request(7), request.encode()),
            (keys::result(7), result.encode()),
            (keys::set_id(), set_id.encode()),
        ]
    }

    fn proof_keys() -> Vec<Vec<u8>> {
        vec![
            keys::request(7),
            keys::result(7),
            keys::set_id(),
            keys::model(ModelId::repeat_byte(9)),
        ]
    }

    fn honest_file(chain: &Chain) -> ReceiptFile {
        let (root, state_proof) = state(&block_state(0, b"out"), &proof_keys());
        let header = header(31, root, vec![]);
        ReceiptFile {
            request: 7,
            genesis_header: chain.genesis.clone(),
            genesis_proof: chain.genesis_proof.clone(),
            handoffs: vec![],
            justification: justify(&header, 0, &chain.set0),
            header,
            state_proof,
        }
    }

    fn outcome(receipt: &Receipt, name: &str) -> Option<bool> {
        receipt.checks.iter().find(|c| c.name == name).map(|c| c.ok)
    }

    const PROVEN: [&str; 9] = [
        "genesis",
        "genesis authorities",
        "authority set",
        "finality",
        "state proof",
        "set id",
        "status",
        "input hash",
        "output hash",
    ];

    fn assert_all_proven(receipt: &Receipt) {
        for name in PROVEN {
            assert_eq!(
                outcome(receipt, name),
                Some(true),
                "{name}: {:?}",
                receipt.checks
            );
        }
    }

    #[test]
    fn an_honest_receipt_proves_every_fact_and_survives_a_file_round_trip() {
        let chain = chain();
        let file = honest_file(&chain);
        let bytes = file.to_bytes();
        assert_eq!(ReceiptFile::from_bytes(&bytes), Ok(file.clone()));
        let receipt = check_receipt(&file, chain.genesis.hash());
        assert_all_proven(&receipt);
        // No model in this synthetic state: named as such, and the receipt is invalid.
        assert_eq!(outcome(&receipt, "model"), Some(false));
        assert_eq!(receipt.verdict(), Verdict::Invalid);
        assert_eq!(receipt.authority_set, Some(0));

        assert_eq!(
            ReceiptFile::from_bytes(b"not a receipt"),
            Err(ReceiptFileError::NotAReceipt)
        );
        assert_eq!(
            ReceiptFile::from_bytes(&bytes[..bytes.len() - 1]),
            Err(ReceiptFileError::Corrupt)
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            ReceiptFile::from_bytes(&trailing),
            Err(ReceiptFileError::Corrupt)
        );
    }

    #[test]
    fn a_live_request_is_not_final_yet_rather_than_invalid() {
        let chain = chain();
        let mut file = honest_file(&chain);
        let (root, proof) = state(
            &block_state_with(0, b"out", RequestStatus::Submitted { window_end: 40 }),
            &proof_keys(),
        );
        file.header = header(31, root, vec![]);
        file.justification = justify(&file.header, 0, &chain.set0);
        file.state_proof = proof;
        let mut receipt = check_receipt(&file, chain.genesis.hash());
        assert_eq!(outcome(&receipt, STATUS), Some(false));
        // Only the status failing (the model check dropped: this state has none).
        receipt.checks.retain(|c| c.name != "model");
        assert_eq!(receipt.verdict(), Verdict::NotFinal);
        // Any other failure makes it invalid.
        receipt.check("finality", false, "forged");
        assert_eq!(receipt.verdict(), Verdict::Invalid);
    }

    #[test]
    fn tampering_at_the_block_that_matters_fails_the_check_that_covers_it() {
        let chain = chain();
        let honest = honest_file(&chain);

        // Another genesis.
        let receipt = check_receipt(&honest, H256::repeat_byte(3));
        assert_eq!(outcome(&receipt, "genesis"), Some(false));
        assert_eq!(receipt.verdict(), Verdict::Invalid);

        // A proof from another block (another output): the state root disagrees.
        let mut other = honest.clone();
        other.state_proof = state(&block_state(0, b"forged"), &proof_keys()).1;
        let receipt = check_receipt(&other, chain.genesis.hash());
        assert_eq!(outcome(&receipt, "finality"), Some(true));
        assert_eq!(
            outcome(&receipt, "state proof"),
            Some(false),
            "{:?}",
            receipt.checks
        );

        // The forged state with a header of its own: not justified by the set.
        let (root, proof) = state(&block_state(0, b"forged"), &proof_keys());
        let mut forged = honest.clone();
        forged.header = header(31, root, vec![]);
        forged.state_proof = proof;
        let receipt = check_receipt(&forged, chain.genesis.hash());
        assert_eq!(outcome(&receipt, "finality"), Some(false));
        // ... nor by a justification the forger signs with keys of its own.
        let outsiders = pairs(&[Eve, Ferdie, Dave]);
        forged.justification = justify(&forged.header, 0, &outsiders);
        assert_eq!(
            outcome(&check_receipt(&forged, chain.genesis.hash()), "finality"),
            Some(false)
        );

        // Too few signatures, or signed for another set id.
        let mut weak = honest.clone();
        weak.justification = justify(&honest.header, 0, &chain.set0[..2]);
        assert_eq!(
            outcome(&check_receipt(&weak, chain.genesis.hash()), "finality"),
            Some(false)
        );
        weak.justification = justify(&honest.header, 1, &chain.set0);
        assert_eq!(
            outcome(&check_receipt(&weak, chain.genesis.hash()), "finality"),
            Some(false)
        );

        // Genesis authorities swapped for the forger's: the genesis proof fails.
        let mut swapped = honest.clone();
        swapped.genesis_proof = state(
            &[(keys::authorities(), authorities(&outsiders).encode())],
            &[keys::authorities()],
        )
        .1;
        assert_eq!(
            outcome(
                &check_receipt(&swapped, chain.genesis.hash()),
                "genesis authorities"
            ),
            Some(false)
        );
    }

    #[test]
    fn a_receipt_under_a_later_set_needs_every_hand_off_from_genesis() {
        let chain = chain();
        let set1 = pairs(&[Bob, Charlie, Dave]);
        let change = header(12, H256::repeat_byte(4), vec![change_log(&set1, 0)]);
        let handoff = finality::Handoff {
            justification: justify(&change, 0, &chain.set0),
            header: change,
        };
        let (root, state_proof) = state(&block_state(1, b"out"), &proof_keys());
        let block = header(31, root, vec![]);
        let file = ReceiptFile {
            request: 7,
            genesis_header: chain.genesis.clone(),
            genesis_proof: chain.genesis_proof.clone(),
            handoffs: vec![handoff.clone()],
            justification: justify(&block, 1, &set1),
            header: block,
            state_proof,
        };
        let receipt = check_receipt(&file, chain.genesis.hash());
        assert_all_proven(&receipt);
        assert_eq!(receipt.authority_set, Some(1));

        // Without the hand-off, set 1's signatures are not the genesis set's.
        let mut missing = file.clone();
        missing.handoffs.clear();
        let receipt = check_receipt(&missing, chain.genesis.hash());
        assert_eq!(outcome(&receipt, "finality"), Some(false));
        assert_eq!(outcome(&receipt, "set id"), Some(false));

        // A hand-off after the proven block is refused.
        let mut late = file.clone();
        late.handoffs[0].header = header(40, H256::repeat_byte(4), vec![change_log(&set1, 0)]);
        late.handoffs[0].justification = justify(&late.handoffs[0].header, 0, &chain.set0);
        assert_eq!(
            outcome(&check_receipt(&late, chain.genesis.hash()), "authority set"),
            Some(false)
        );

        // The old set cannot sign past its hand-off (a receipt built by a captured old set).
        let mut captured = file.clone();
        captured.handoffs.clear();
        let (root, proof) = state(&block_state(0, b"forged"), &proof_keys());
        captured.header = header(31, root, vec![]);
        captured.state_proof = proof;
        captured.justification = justify(&captured.header, 0, &chain.set0);
        // Without the chain's hand-offs this is indistinguishable from an honest set-0
        // receipt: the receipt is as good as the genesis set's honesty until it hands off.
        assert_eq!(
            outcome(&check_receipt(&captured, chain.genesis.hash()), "finality"),
            Some(true)
        );
    }
}

//! Receipts: what the chain says about a request, with every claim proven to the client
//! instead of trusted from the RPC node.
//!
//! The one thing trusted is a checkpoint: the genesis hash (pinned by the user; the
//! GRANDPA authority set is read from the genesis state with a storage proof against
//! the genesis header, which must hash to it). From there:
//!
//! 1. **Finality**: a block `X` at or after the request's settlement carries a GRANDPA
//!    justification; it is verified against the genesis authority set (set id 0: this
//!    runtime never changes authorities; a changed set id is refused, not guessed), and
//!    `X`'s header must hash to the justified hash.
//! 2. **State**: the request, its result, the model and the set id are read with a
//!    storage proof (`state_getReadProof`) checked against `X`'s state root.
//! 3. **Content**: the request is `Finalized`; the stored input and output hash to the
//!    hashes the chain recorded; the model is registered under the id it names.
//! 4. **Re-run** (optional, by the caller): the model is re-run locally and compared
//!    under its registered rule.
//!
//! What this defends against: an RPC node that lies about any stored field, serves a
//! header that is not the finalized one, or a fork GRANDPA did not finalize. What it
//! does not: a dishonest two-thirds of the genesis validators (they can finalize
//! anything), or a wrong genesis hash given by the user.

use super::{error::Result, Chain, ChainError};
use codec::Decode;
use inferchain_primitives::{blake2_256, ModelId, RequestId, H256};
use inferchain_runtime::{opaque::Block, Balance, BlockNumber, Header, Runtime};
use jsonrpsee::rpc_params;
use pallet_inference::{RequestOf, RequestStatus, ResultOf};
use sp_consensus_grandpa::{AuthorityList, GRANDPA_ENGINE_ID};
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
    pub checks: Vec<Check>,
}

impl Receipt {
    /// Whether every check passed.
    pub fn valid(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }

    fn check(&mut self, name: &'static str, ok: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            name,
            ok,
            detail: detail.into(),
        });
    }
}

fn decode_error(what: &str) -> ChainError {
    ChainError::Decode { what: what.into() }
}

impl Chain {
    /// The header of block `hash`, checked to hash to `hash`.
    pub fn verified_header(&self, hash: H256) -> Result<Header> {
        let value = self.call("chain_getHeader", rpc_params![hash])?;
        let header: Header = serde_json::from_value(value).map_err(|_| decode_error("header"))?;
        if header.hash() != hash {
            return Err(ChainError::Rejected(format!(
                "the node served a header for {hash:?} that hashes to {:?}",
                header.hash()
            )));
        }
        Ok(header)
    }

    /// `keys` at block `at`, proven against `state_root`.
    pub fn proven_read(
        &self,
        keys: &[Vec<u8>],
        at: H256,
        state_root: H256,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let hex_keys: Vec<String> = keys
            .iter()
            .map(|k| format!("0x{}", hex::encode(k)))
            .collect();
        let value = self.call("state_getReadProof", rpc_params![hex_keys, at])?;
        let nodes: Vec<Vec<u8>> = value["proof"]
            .as_array()
            .ok_or_else(|| decode_error("read proof"))?
            .iter()
            .map(|n| {
                n.as_str()
                    .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
                    .ok_or_else(|| decode_error("proof node"))
            })
            .collect::<Result<_>>()?;
        let proof = sp_trie::StorageProof::new(nodes);
        let values = sp_state_machine::read_proof_check::<BlakeTwo256, _>(state_root, proof, keys)
            .map_err(|e| {
                ChainError::Rejected(format!(
                    "the storage proof does not match the state root of block {at:?}: {e}"
                ))
            })?;
        Ok(keys
            .iter()
            .map(|k| values.get(k).cloned().flatten())
            .collect())
    }

    /// The GRANDPA justification stored with block `hash`, if any.
    fn justification(&self, hash: H256) -> Result<Option<Vec<u8>>> {
        let value = self.call("chain_getBlock", rpc_params![hash])?;
        let block: sp_runtime::generic::SignedBlock<Block> =
            serde_json::from_value(value).map_err(|_| decode_error("block"))?;
        Ok(block
            .justifications
            .and_then(|j| j.into_justification(GRANDPA_ENGINE_ID)))
    }

    /// The GRANDPA authorities at the trusted genesis, proven against its state root.
    pub fn genesis_authorities(&self, genesis: H256) -> Result<AuthorityList> {
        let header = self.verified_header(genesis)?;
        let key = frame_support::storage::storage_prefix(b"Grandpa", b"Authorities").to_vec();
        let value = self
            .proven_read(&[key], genesis, *header.state_root())?
            .pop()
            .flatten()
            .ok_or_else(|| decode_error("genesis GRANDPA authorities (absent)"))?;
        AuthorityList::decode(&mut &value[..]).map_err(|_| decode_error("GRANDPA authorities"))
    }

    /// The receipt of request `id`, proven from the checkpoint `genesis`.
    pub fn receipt(&self, id: RequestId, genesis: H256) -> Result<Receipt> {
        if self.params().genesis != genesis {
            return Err(ChainError::Rejected(format!(
                "this node serves the chain with genesis {:?}, not the trusted {genesis:?}",
                self.params().genesis
            )));
        }
        let authorities = self.genesis_authorities(genesis)?;
        let voters = finality_grandpa::voter_set::VoterSet::new(authorities.iter().cloned())
            .ok_or_else(|| {
                ChainError::Rejected("the genesis GRANDPA authority set is empty".into())
            })?;

        // The latest block with a justification, at or below the finalized head.
        let (head, _) = self.finalized()?;
        let mut found = None;
        for n in (head.saturating_sub(64)..=head).rev() {
            let Some(hash) = self.block_hash(n)? else {
                continue;
            };
            if let Some(j) = self.justification(hash)? {
                found = Some((n, hash, j));
                break;
            }
        }
        let (number, hash, justification) = found.ok_or_else(|| {
            ChainError::Rejected(format!(
                "no GRANDPA justification in the 64 blocks below the finalized head #{head}; retry in a few blocks"
            ))
        })?;
        let mut receipt = Receipt {
            id,
            proven_at: (number, hash),
            request: None,
            result: None,
            model: None,
            checks: Vec::new(),
        };
        let finality =
            sc_consensus_grandpa::GrandpaJustification::<Block>::decode_and_verify_finalizes(
                &justification,
                (hash, number),
                0,
                &voters,
            );
        receipt.check(
            "finality",
            finality.is_ok(),
            match &finality {
                Ok(_) => format!(
                    "block #{number} {hash:?} is finalized: GRANDPA justification signed by more than 2/3 of the {} genesis authorities",
                    authorities.len()
                ),
                Err(e) => format!("the GRANDPA justification of #{number} does not verify: {e}"),
            },
        );
        let header = self.verified_header(hash)?;

        let request_key = pallet_inference::Requests::<Runtime>::hashed_key_for(id);
        let result_key = pallet_inference::Results::<Runtime>::hashed_key_for(id);
        let set_id_key =
            frame_support::storage::storage_prefix(b"Grandpa", b"CurrentSetId").to_vec();
        let mut values = match self.proven_read(
            &[request_key, result_key, set_id_key],
            hash,
            *header.state_root(),
        ) {
            Ok(v) => v.into_iter(),
            Err(e) => {
                receipt.check("state proof", false, e.to_string());
                return Ok(receipt);
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
            format!(
                "request and result read with a storage proof against the state root of #{number}"
            ),
        );
        let set_id = set_id
            .and_then(|v| u64::decode(&mut &v[..]).ok())
            .unwrap_or(0);
        receipt.check(
            "authority set",
            set_id == 0,
            if set_id == 0 {
                "GRANDPA set id is 0: the genesis authorities are the current ones".to_string()
            } else {
                format!("GRANDPA set id is {set_id}: the authorities changed since genesis; verifying across set changes is not supported")
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
            return Ok(receipt);
        };
        match request.status {
            RequestStatus::Finalized { at } => receipt.check(
                "status",
                at <= number,
                format!("the result became final in block #{at}"),
            ),
            other => receipt.check(
                "status",
                false,
                format!("the request is not final: {other:?}"),
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
            None => receipt.check("output hash", false, "no result stored"),
        }
        let model_key = pallet_models::Models::<Runtime>::hashed_key_for(request.model);
        let model = self
            .proven_read(&[model_key], hash, *header.state_root())?
            .pop()
            .flatten()
            .and_then(|v| {
                pallet_models::ModelInfo::<Balance, BlockNumber>::decode(&mut &v[..]).ok()
            });
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
                    "model {:?} is not registered under its own id",
                    request.model
                )
            },
        );
        receipt.request = Some(request);
        receipt.result = result;
        receipt.model = model;
        Ok(receipt)
    }
}

/// The model id a receipt names, for callers that re-run it.
pub fn model_of(receipt: &Receipt) -> Option<ModelId> {
    receipt.request.as_ref().map(|r| r.model)
}

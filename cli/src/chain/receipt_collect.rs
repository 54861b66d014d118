//! Collecting a [`ReceiptFile`] from a node: the headers, justifications and storage
//! proofs that prove request `id` from the genesis. Nothing collected here is trusted;
//! [`super::receipt::check_receipt`] checks it all.
//!
//! The proven block is the first justified block at or after the request became final,
//! so a request is provable for its whole retention on any node, and after pruning on an
//! archive node (its creation and settlement blocks are found by bisection over
//! `NextRequestId` and the request's status). Authority-set hand-offs are found by
//! bisection over `Grandpa::CurrentSetId`.

use super::{
    error::Result,
    finality::Handoff,
    receipt::{keys, ReceiptFile},
    Chain, ChainError,
};
use codec::Decode;
use inferchain_primitives::{RequestId, H256};
use inferchain_runtime::{opaque::Block, BlockNumber, Header};
use jsonrpsee::rpc_params;
use pallet_inference::RequestStatus;
use sp_consensus_grandpa::GRANDPA_ENGINE_ID;
use sp_runtime::traits::Header as _;

fn decode_error(what: &str) -> ChainError {
    ChainError::Decode { what: what.into() }
}

/// A state read at an old block failed: say that only an archive node keeps it.
fn pruned(number: BlockNumber, error: ChainError) -> ChainError {
    match error {
        ChainError::Rpc { method, reason } => ChainError::Rpc {
            method,
            reason: format!(
                "{reason} (the state of block #{number} is needed; a node keeps old state only with `--state-pruning archive`)"
            ),
        },
        other => other,
    }
}

impl Chain {
    /// The header of block `hash`, checked to hash to `hash`.
    pub fn verified_header(&self, hash: H256) -> Result<Header> {
        let value = self.call("chain_getHeader", rpc_params![hash])?;
        let header: Header = serde_json::from_value(value).map_err(|_| decode_error("header"))?;
        if header.hash() != hash {
            return Err(ChainError::Unprovable(format!(
                "the node served a header for {hash:?} that hashes to {:?}",
                header.hash()
            )));
        }
        Ok(header)
    }

    /// The raw proof nodes of `keys` at block `at`.
    pub fn read_proof_nodes(&self, keys: &[Vec<u8>], at: H256) -> Result<Vec<Vec<u8>>> {
        let hex_keys: Vec<String> = keys
            .iter()
            .map(|k| format!("0x{}", hex::encode(k)))
            .collect();
        let value = self.call("state_getReadProof", rpc_params![hex_keys, at])?;
        value["proof"]
            .as_array()
            .ok_or_else(|| decode_error("read proof"))?
            .iter()
            .map(|n| {
                n.as_str()
                    .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
                    .ok_or_else(|| decode_error("proof node"))
            })
            .collect()
    }

    /// `keys` at block `at`, proven against `state_root`.
    pub fn proven_read(
        &self,
        keys: &[Vec<u8>],
        at: H256,
        state_root: H256,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let nodes = self.read_proof_nodes(keys, at)?;
        super::receipt::read_proof(state_root, &nodes, keys).map_err(|e| {
            ChainError::Unprovable(format!(
                "the storage proof does not match the state root of block {at:?}: {e}"
            ))
        })
    }

    /// The GRANDPA justification stored with block `hash`, if any.
    pub fn justification(&self, hash: H256) -> Result<Option<Vec<u8>>> {
        let value = self.call("chain_getBlock", rpc_params![hash])?;
        let block: sp_runtime::generic::SignedBlock<Block> =
            serde_json::from_value(value).map_err(|_| decode_error("block"))?;
        Ok(block
            .justifications
            .and_then(|j| j.into_justification(GRANDPA_ENGINE_ID)))
    }

    fn hash_at(&self, n: BlockNumber) -> Result<H256> {
        self.block_hash(n)?
            .ok_or_else(|| ChainError::Unprovable(format!("the node has no block #{n}")))
    }

    fn set_id_at(&self, n: BlockNumber) -> Result<u64> {
        let at = self.hash_at(n)?;
        self.storage::<u64>(&keys::set_id(), "GRANDPA set id", Some(at))
            .map(Option::unwrap_or_default)
            .map_err(|e| pruned(n, e))
    }

    /// The first block in `lo..=hi` where `pred` holds (it must be monotonic and hold
    /// at `hi`).
    fn first_where(
        &self,
        mut lo: BlockNumber,
        mut hi: BlockNumber,
        mut pred: impl FnMut(&Self, BlockNumber) -> Result<bool>,
    ) -> Result<BlockNumber> {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(self, mid)? {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(lo)
    }

    /// The block from which request `id` is to be proven: the block it became final
    /// in, or (not final yet) the finalized head.
    fn settlement_block(
        &self,
        id: RequestId,
        head: BlockNumber,
        head_hash: H256,
    ) -> Result<BlockNumber> {
        if let Some(request) = self.request(id, Some(head_hash))? {
            return Ok(match request.status {
                RequestStatus::Finalized { at } => at,
                _ => head,
            });
        }
        if id >= self.next_request_id(Some(head_hash))? {
            return Err(ChainError::Unprovable(format!(
                "no request {id} on this chain (the next request id is {})",
                self.next_request_id(Some(head_hash))?
            )));
        }
        // Pruned: find when it was made, then when it settled (archive nodes).
        let made = self.first_where(0, head, |c, n| {
            let at = c.hash_at(n)?;
            Ok(c.next_request_id(Some(at)).map_err(|e| pruned(n, e))? > id)
        })?;
        let settled = self.first_where(made, head, |c, n| {
            let at = c.hash_at(n)?;
            let request = c.request(id, Some(at)).map_err(|e| pruned(n, e))?;
            Ok(request.is_none_or(|r| !r.status.holds_fee()))
        })?;
        match self
            .request(id, Some(self.hash_at(settled)?))
            .map_err(|e| pruned(settled, e))?
        {
            Some(r) => match r.status {
                RequestStatus::Finalized { at } => Ok(at),
                other => Err(ChainError::Unprovable(format!(
                    "request {id} ended without a final result ({other:?} at #{settled})"
                ))),
            },
            None => Err(ChainError::Unprovable(format!(
                "request {id} left the chain's state at #{settled} without being seen final"
            ))),
        }
    }

    /// The first block at or after `from` with a GRANDPA justification, up to the
    /// finalized head.
    fn justified_from(&self, from: BlockNumber, head: BlockNumber) -> Result<(Header, Vec<u8>)> {
        for n in from..=head {
            let hash = self.hash_at(n)?;
            if let Some(justification) = self.justification(hash)? {
                return Ok((self.verified_header(hash)?, justification));
            }
        }
        Err(ChainError::Unprovable(format!(
            "no GRANDPA justification between #{from} and the finalized head #{head}; retry in a few blocks"
        )))
    }

    /// Everything that proves request `id` from the trusted `genesis`.
    pub fn receipt_file(&self, id: RequestId, genesis: H256) -> Result<ReceiptFile> {
        if self.params().genesis != genesis {
            return Err(ChainError::Unprovable(format!(
                "this node serves the chain with genesis {:?}, not the trusted {genesis:?}",
                self.params().genesis
            )));
        }
        let genesis_header = self.verified_header(genesis)?;
        let genesis_proof = self
            .read_proof_nodes(&[keys::authorities()], genesis)
            .map_err(|e| pruned(0, e))?;
        let (head, head_hash) = self.finalized()?;
        let from = self.settlement_block(id, head, head_hash)?;
        let (header, justification) = self.justified_from(from, head)?;
        let number = *header.number();
        let hash = header.hash();

        // Hand-offs: the first block of each set after the genesis one, up to the one
        // that finalizes `header` (a block that schedules a change is still finalized by
        // the outgoing set).
        let mut handoffs = Vec::new();
        let current = self.set_id_at(number)?;
        let mut lo = 0;
        for set in 1..=current {
            let at = self.first_where(lo, number, |c, n| Ok(c.set_id_at(n)? >= set))?;
            if at == number {
                break;
            }
            let hash = self.hash_at(at)?;
            let justification = self.justification(hash)?.ok_or_else(|| {
                ChainError::Unprovable(format!(
                    "the node keeps no justification for block #{at}, where GRANDPA set {set} began"
                ))
            })?;
            handoffs.push(Handoff {
                header: self.verified_header(hash)?,
                justification,
            });
            lo = at + 1;
        }

        let mut state_proof =
            self.read_proof_nodes(&[keys::request(id), keys::result(id), keys::set_id()], hash)?;
        let model = self
            .storage_raw(&keys::request(id), Some(hash))?
            .and_then(|v| {
                pallet_inference::RequestOf::<inferchain_runtime::Runtime>::decode(&mut &v[..]).ok()
            })
            .map(|r| r.model);
        if let Some(model) = model {
            for node in self.read_proof_nodes(&[keys::model(model)], hash)? {
                if !state_proof.contains(&node) {
                    state_proof.push(node);
                }
            }
        }
        Ok(ReceiptFile {
            request: id,
            genesis_header,
            genesis_proof,
            handoffs,
            header,
            justification,
            state_proof,
        })
    }
}

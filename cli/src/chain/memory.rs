//! Agent memory as the chain holds it: spaces, memories and grants read from storage,
//! and recall both ways — asked of the runtime (`MemoryApi_recall`) and recomputed here
//! from the space's memories with the same no_std definition
//! (`inferchain_primitives::recall`), so a client need not trust the node's answer.

use super::{client::hex_bytes, error::Result, Chain, ChainError};
use codec::{Decode, Encode};
use frame_support::{StorageHasher, Twox64Concat};
use inferchain_primitives::recall::{self, MemoryId, Recalled};
use inferchain_runtime::Runtime;
use pallet_memory::{MemoryOf, RecallError, SpaceId, SpaceOf};
use sp_core::H256;

/// A space's memories, by id.
pub type SpaceMemories = Vec<(MemoryId, MemoryOf<Runtime>)>;

impl Chain {
    /// Space `id` at block `at` (default: best).
    pub fn space(&self, id: SpaceId, at: Option<H256>) -> Result<Option<SpaceOf<Runtime>>> {
        let key = pallet_memory::Spaces::<Runtime>::hashed_key_for(id);
        self.storage(&key, "memory space", at)
    }

    /// Every memory of `space` at block `at`, by id (pages of 1,000 keys).
    pub fn memories(
        &self,
        space: SpaceId,
        at: Option<H256>,
    ) -> Result<Vec<(MemoryId, MemoryOf<Runtime>)>> {
        let mut key_prefix =
            frame_support::storage::storage_prefix(b"Memory", b"Memories").to_vec();
        key_prefix.extend(<Twox64Concat as StorageHasher>::hash(&space.encode()));
        let prefix_hex = format!("0x{}", hex::encode(&key_prefix));
        let mut out = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let page = match (&start, at) {
                (None, None) => self.call(
                    "state_getKeysPaged",
                    jsonrpsee::rpc_params![prefix_hex.clone(), 1000u32],
                )?,
                (Some(s), None) => self.call(
                    "state_getKeysPaged",
                    jsonrpsee::rpc_params![prefix_hex.clone(), 1000u32, s.clone()],
                )?,
                (None, Some(at)) => self.call(
                    "state_getKeysPaged",
                    jsonrpsee::rpc_params![prefix_hex.clone(), 1000u32, Option::<String>::None, at],
                )?,
                (Some(s), Some(at)) => self.call(
                    "state_getKeysPaged",
                    jsonrpsee::rpc_params![prefix_hex.clone(), 1000u32, s.clone(), at],
                )?,
            };
            let keys: Vec<String> = page
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect();
            for key in &keys {
                let bytes =
                    hex::decode(key.trim_start_matches("0x")).map_err(|_| ChainError::Decode {
                        what: "memory key".into(),
                    })?;
                // Twox64Concat: the key ends with the id itself.
                let id = bytes
                    .get(bytes.len().saturating_sub(4)..)
                    .and_then(|b| MemoryId::decode(&mut &b[..]).ok())
                    .ok_or_else(|| ChainError::Decode {
                        what: "memory id".into(),
                    })?;
                if let Some(m) = self.storage::<MemoryOf<Runtime>>(&bytes, "memory", at)? {
                    out.push((id, m));
                }
            }
            if keys.len() < 1000 {
                break;
            }
            start = keys.last().cloned();
        }
        out.sort_by_key(|(id, _)| *id);
        Ok(out)
    }

    /// Every memory of `space` (whose record is `info`) at block `at`, each id below
    /// `next_memory` read with a storage proof against `state_root` (present, or proven
    /// absent: none can be hidden), the count checked against the space's.
    pub fn proven_memories(
        &self,
        space: SpaceId,
        info: &SpaceOf<Runtime>,
        at: H256,
        state_root: H256,
    ) -> Result<Vec<(MemoryId, MemoryOf<Runtime>)>> {
        let decode = |what: &str| ChainError::Decode { what: what.into() };
        let mut memories = Vec::new();
        let ids: Vec<MemoryId> = (0..info.next_memory).collect();
        for chunk in ids.chunks(1000) {
            let keys: Vec<Vec<u8>> = chunk
                .iter()
                .map(|id| pallet_memory::Memories::<Runtime>::hashed_key_for(space, id))
                .collect();
            for (id, v) in chunk.iter().zip(self.proven_read(&keys, at, state_root)?) {
                if let Some(v) = v {
                    let m =
                        MemoryOf::<Runtime>::decode(&mut &v[..]).map_err(|_| decode("memory"))?;
                    memories.push((*id, m));
                }
            }
        }
        if memories.len() != info.memories as usize {
            return Err(decode(
                "memories (the proven count differs from the space's)",
            ));
        }
        Ok(memories)
    }

    /// Space `space` and its memories at block `at`, all read with storage proofs against
    /// the state root of `at`'s header (checked to hash to `at`).
    pub fn proven_space(
        &self,
        space: SpaceId,
        at: H256,
    ) -> Result<Option<(SpaceOf<Runtime>, SpaceMemories)>> {
        let root = self.verified_header(at)?.state_root;
        let key = pallet_memory::Spaces::<Runtime>::hashed_key_for(space);
        let Some(Some(bytes)) = self.proven_read(&[key], at, root)?.pop() else {
            return Ok(None);
        };
        let info = SpaceOf::<Runtime>::decode(&mut &bytes[..]).map_err(|_| ChainError::Decode {
            what: "memory space".into(),
        })?;
        let memories = self.proven_memories(space, &info, at, root)?;
        Ok(Some((info, memories)))
    }

    /// The runtime's answer to a recall (`MemoryApi_recall`) at block `at`.
    pub fn recall_on_chain(
        &self,
        space: SpaceId,
        query: &[i16],
        k: u32,
        at: Option<H256>,
    ) -> Result<core::result::Result<Vec<Recalled>, RecallError>> {
        let args = format!("0x{}", hex::encode((space, query.to_vec(), k).encode()));
        let value = match at {
            Some(at) => self.call(
                "state_call",
                jsonrpsee::rpc_params!["MemoryApi_recall", args, at],
            )?,
            None => self.call(
                "state_call",
                jsonrpsee::rpc_params!["MemoryApi_recall", args],
            )?,
        };
        let bytes = hex_bytes(&value, "recall answer")?;
        Decode::decode(&mut &bytes[..]).map_err(|_| ChainError::Decode {
            what: "recall answer".into(),
        })
    }
}

/// The recall recomputed from `memories` (a space's, as read from storage): the
/// memories `pallet_memory::Pallet::recallable` admits (ready before block `before`, for
/// an answer made in it), ranked by `inferchain_primitives::recall::top_k`.
pub fn recall_locally(
    memories: &[(MemoryId, MemoryOf<Runtime>)],
    query: &[i16],
    k: u32,
    before: Option<inferchain_runtime::BlockNumber>,
) -> Vec<Recalled> {
    recall::top_k(
        query,
        pallet_memory::Pallet::<Runtime>::recallable(memories, before),
        k as usize,
    )
}

/// A memory-backed answer re-derived from chain state: its record, and whether the
/// recall recomputed at the block it was answered in reproduces the prompt the
/// language model was given.
pub struct AnswerCheck {
    pub record: pallet_memory::AnswerOf<Runtime>,
    /// The recalled memories' texts, in the record's order.
    pub texts: Vec<Vec<u8>>,
    /// The question (the query request's input) and its embedding (the query's result).
    pub question_input: Vec<u8>,
    pub query_output: Vec<u8>,
    pub embedding_model: inferchain_primitives::ModelId,
    pub ok: bool,
    pub detail: String,
}

impl Chain {
    /// The record of memory-backed answer `request` at block `at`, if it is one.
    pub fn answer_record(
        &self,
        request: inferchain_primitives::RequestId,
        at: Option<H256>,
    ) -> Result<Option<pallet_memory::AnswerOf<Runtime>>> {
        let key = pallet_memory::Answers::<Runtime>::hashed_key_for(request);
        self.storage(&key, "answer record", at)
    }

    /// Re-derives answer `request`'s prompt (`prompt`, the text of its request's
    /// `Payload::Prompt`) from the state of the block it was answered in, **every read
    /// proven**: the answer's record against the state root of `proven_at` (a block the
    /// caller verified finalized), the answered block's header linked to it by parent
    /// hashes, and against that header's state root the question, its final embedding,
    /// the space and each of its memory ids below `next_memory` (present or proven
    /// absent, so none can be hidden). Then the top-k and the fitted prompt must be
    /// exactly the model's prompt and the record's memories. `None` if the request is not
    /// a memory-backed answer.
    pub fn check_answer(
        &self,
        request: inferchain_primitives::RequestId,
        prompt: &[u8],
        max_prompt: u32,
        proven_at: H256,
    ) -> Result<Option<AnswerCheck>> {
        let decode = |what: &str| ChainError::Decode { what: what.into() };
        let head = self.verified_header(proven_at)?;
        let record_key = pallet_memory::Answers::<Runtime>::hashed_key_for(request);
        let [record] = &self.proven_read(&[record_key], proven_at, head.state_root)?[..] else {
            return Err(decode("answer record proof"));
        };
        let Some(record) = record else {
            return Ok(None);
        };
        let record = pallet_memory::AnswerOf::<Runtime>::decode(&mut &record[..])
            .map_err(|_| decode("answer record"))?;
        // The answered block, linked to the proven one by parent hashes.
        if record.answered > head.number {
            return Err(decode("answer record (answered after the proven block)"));
        }
        let mut answered = head.clone();
        let mut hash = proven_at;
        while answered.number > record.answered {
            hash = answered.parent_hash;
            answered = self.verified_header(hash)?;
        }
        let root = answered.state_root;
        let missing = |what: &str| ChainError::Decode {
            what: format!(
                "{what} at the answer's block (pruned? the node keeps recent state only)"
            ),
        };
        let keys = [
            pallet_inference::Requests::<Runtime>::hashed_key_for(record.query_request),
            pallet_inference::Results::<Runtime>::hashed_key_for(record.query_request),
            pallet_memory::Spaces::<Runtime>::hashed_key_for(record.space),
        ];
        let values = self.proven_read(&keys, hash, root)?;
        let value = |i: usize, what: &str| values[i].clone().ok_or_else(|| missing(what));
        let query =
            pallet_inference::RequestOf::<Runtime>::decode(&mut &value(0, "question request")?[..])
                .map_err(|_| decode("question request"))?;
        let result = pallet_inference::ResultOf::<Runtime>::decode(
            &mut &value(1, "question embedding")?[..],
        )
        .map_err(|_| decode("question embedding"))?;
        let space = SpaceOf::<Runtime>::decode(&mut &value(2, "memory space")?[..])
            .map_err(|_| decode("memory space"))?;
        let memories = self.proven_memories(record.space, &space, hash, root)?;
        let question = match inferchain_primitives::io::Payload::decode_canonical(&query.input) {
            Ok(inferchain_primitives::io::Payload::Text(t)) => t,
            _ => return Err(missing("question text")),
        };
        let embedding = match inferchain_primitives::io::Payload::decode_canonical(&result.output) {
            Ok(inferchain_primitives::io::Payload::Tensors(t)) if t.len() == 1 => t[0]
                .data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<f32>>(),
            _ => return Err(missing("question embedding tensor")),
        };
        let ranked = recall_locally(
            &memories,
            &recall::quantize(&embedding),
            record.k,
            Some(record.answered),
        );
        let text_of = |id: MemoryId| {
            memories
                .iter()
                .find(|(m, _)| *m == id)
                .map(|(_, m)| m.text.to_vec())
                .unwrap_or_default()
        };
        let ranked_texts: Vec<Vec<u8>> = ranked.iter().map(|r| text_of(r.memory)).collect();
        let refs: Vec<&[u8]> = ranked_texts.iter().map(Vec::as_slice).collect();
        let fitted = recall::fitted_prompt(&refs, &question, max_prompt);
        let ids: Vec<MemoryId> = ranked.iter().map(|r| r.memory).collect();
        let (ok, detail) = match fitted {
            Some((used, ours)) if ours == prompt && ids[..used] == record.memories[..] => (
                true,
                format!(
                    "recalling the top {} of the space's {} memories (each read with a storage proof against block #{}, linked to the finalized #{} by {} headers) for the question's final embedding gives memories {:?} and exactly the prompt the model was given",
                    record.k,
                    memories.len(),
                    record.answered,
                    head.number,
                    head.number - record.answered,
                    record.memories.to_vec()
                ),
            ),
            Some((used, _)) => (
                false,
                format!(
                    "the recall recomputed at block #{} gives memories {:?}, the record says {:?} (or the prompt differs)",
                    record.answered,
                    &ids[..used],
                    record.memories.to_vec()
                ),
            ),
            None => (false, "the question alone does not fit the prompt".into()),
        };
        let texts = record.memories.iter().map(|id| text_of(*id)).collect();
        Ok(Some(AnswerCheck {
            record,
            texts,
            question_input: query.input.to_vec(),
            query_output: result.output.to_vec(),
            embedding_model: space.embedding_model,
            ok,
            detail,
        }))
    }
}

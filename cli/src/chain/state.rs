//! Typed reads of the pallets' storage, decoded with the runtime's own types.

use super::{error::Result, Chain};
use inferchain_primitives::{ModelId, RequestId};
use inferchain_runtime::{AccountId, Balance, Runtime, RuntimeHoldReason};
use pallet_inference::{ExecutorOf, HoldReason, RequestOf, ResultOf};
use sp_core::H256;

/// An account's balances.
pub type AccountInfo =
    frame_system::AccountInfo<inferchain_runtime::Nonce, pallet_balances::AccountData<Balance>>;

impl Chain {
    /// Request `id` at block `at` (default: best).
    pub fn request(&self, id: RequestId, at: Option<H256>) -> Result<Option<RequestOf<Runtime>>> {
        let key = pallet_inference::Requests::<Runtime>::hashed_key_for(id);
        self.storage(&key, "request", at)
    }

    /// The result posted for request `id`.
    pub fn result(&self, id: RequestId, at: Option<H256>) -> Result<Option<ResultOf<Runtime>>> {
        let key = pallet_inference::Results::<Runtime>::hashed_key_for(id);
        self.storage(&key, "result", at)
    }

    /// The registered executor `who`.
    pub fn executor(
        &self,
        who: &AccountId,
        at: Option<H256>,
    ) -> Result<Option<ExecutorOf<Runtime>>> {
        let key = pallet_inference::Executors::<Runtime>::hashed_key_for(who);
        self.storage(&key, "executor", at)
    }

    /// What executor `who` serves (empty if it never declared).
    pub fn service(
        &self,
        who: &AccountId,
        at: Option<H256>,
    ) -> Result<pallet_inference::ServiceOf<Runtime>> {
        let key = pallet_inference::Service::<Runtime>::hashed_key_for(who);
        Ok(self.storage(&key, "service", at)?.unwrap_or_default())
    }

    /// The id the next request gets.
    pub fn next_request_id(&self, at: Option<H256>) -> Result<RequestId> {
        let key = pallet_inference::NextRequestId::<Runtime>::hashed_key();
        Ok(self
            .storage(&key, "next request id", at)?
            .unwrap_or_default())
    }

    /// Everything the inference pallet burned.
    pub fn total_burned(&self, at: Option<H256>) -> Result<Balance> {
        let key = pallet_inference::TotalBurned::<Runtime>::hashed_key();
        Ok(self.storage(&key, "total burned", at)?.unwrap_or_default())
    }

    /// `who`'s account (free balance, nonce…).
    pub fn account(&self, who: &AccountId, at: Option<H256>) -> Result<AccountInfo> {
        let key = frame_system::Account::<Runtime>::hashed_key_for(who);
        Ok(self.storage(&key, "account", at)?.unwrap_or_default())
    }

    /// What `who` has on hold under the inference pallet's `reason`.
    pub fn held(&self, who: &AccountId, reason: HoldReason, at: Option<H256>) -> Result<Balance> {
        let key = pallet_balances::Holds::<Runtime>::hashed_key_for(who);
        let holds: Vec<frame_support::traits::tokens::IdAmount<RuntimeHoldReason, Balance>> =
            self.storage(&key, "holds", at)?.unwrap_or_default();
        let reason = RuntimeHoldReason::from(reason);
        Ok(holds
            .into_iter()
            .filter(|h| h.id == reason)
            .map(|h| h.amount)
            .sum())
    }

    /// Every registered model (the first 1,000: the RPC's page limit).
    pub fn models(
        &self,
    ) -> Result<
        Vec<(
            ModelId,
            pallet_models::ModelInfo<Balance, inferchain_runtime::BlockNumber>,
        )>,
    > {
        let prefix = frame_support::storage::storage_prefix(b"Models", b"Models");
        let value = self.call(
            "state_getKeysPaged",
            jsonrpsee::rpc_params![format!("0x{}", hex::encode(prefix)), 1000u32],
        )?;
        let mut models = Vec::new();
        for key in value.as_array().cloned().unwrap_or_default() {
            let key = key
                .as_str()
                .and_then(|k| hex::decode(k.trim_start_matches("0x")).ok())
                .ok_or_else(|| super::ChainError::Decode {
                    what: "storage key".into(),
                })?;
            // `Identity` hasher: the key ends with the model id itself.
            let Some(id) = key.get(key.len().saturating_sub(32)..) else {
                continue;
            };
            let id = ModelId::from_slice(id);
            if let Some(info) = self.model(id, None)? {
                models.push((id, info));
            }
        }
        Ok(models)
    }

    /// Model `id` as registered.
    pub fn model(
        &self,
        id: ModelId,
        at: Option<H256>,
    ) -> Result<Option<pallet_models::ModelInfo<Balance, inferchain_runtime::BlockNumber>>> {
        let key = pallet_models::Models::<Runtime>::hashed_key_for(id);
        self.storage(&key, "model", at)
    }
}

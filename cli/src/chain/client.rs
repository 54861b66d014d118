//! The connection: JSON-RPC over WebSocket, made blocking for a command-line tool.

use super::{
    error::Result,
    signing::{self, ChainParams},
    ChainError,
};
use codec::Decode;
use inferchain_runtime::{AccountId, Runtime, RuntimeCall, RuntimeEvent};
use jsonrpsee::{
    core::{client::ClientT, params::ArrayParams},
    rpc_params,
    ws_client::{WsClient, WsClientBuilder},
};
use serde_json::Value;
use sp_core::{sr25519, H256};
use std::time::{Duration, Instant};

/// An extrinsic that made it into a block, with the events it caused.
#[derive(Debug, Clone)]
pub struct Included {
    pub block: u32,
    pub hash: H256,
    pub events: Vec<RuntimeEvent>,
}

impl Included {
    /// The id and assigned executor of the request this extrinsic made, if it made one.
    pub fn request_submitted(&self) -> Option<(inferchain_primitives::RequestId, AccountId)> {
        self.events.iter().find_map(|e| match e {
            RuntimeEvent::Inference(pallet_inference::Event::RequestSubmitted {
                id,
                executor,
                ..
            }) => Some((*id, executor.clone())),
            _ => None,
        })
    }
}

/// A connected node.
pub struct Chain {
    runtime: tokio::runtime::Runtime,
    client: WsClient,
    params: ChainParams,
}

pub(super) fn hex_bytes(value: &Value, what: &str) -> Result<Vec<u8>> {
    value
        .as_str()
        .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
        .ok_or_else(|| ChainError::Decode { what: what.into() })
}

fn hex_number(value: &Value, what: &str) -> Result<u32> {
    value
        .as_str()
        .and_then(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .or_else(|| value.as_u64().and_then(|n| u32::try_from(n).ok()))
        .ok_or_else(|| ChainError::Decode { what: what.into() })
}

fn hash_of(value: &Value, what: &str) -> Result<H256> {
    let bytes = hex_bytes(value, what)?;
    (bytes.len() == 32)
        .then(|| H256::from_slice(&bytes))
        .ok_or_else(|| ChainError::Decode { what: what.into() })
}

impl Chain {
    /// Connects to `url` (`ws://127.0.0.1:9944`) and reads the chain's genesis and
    /// runtime version.
    pub fn connect(url: &str) -> Result<Chain> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ChainError::Connect {
                url: url.into(),
                reason: e.to_string(),
            })?;
        let client = runtime
            .block_on(
                WsClientBuilder::default()
                    .request_timeout(Duration::from_secs(30))
                    .build(url),
            )
            .map_err(|e| ChainError::Connect {
                url: url.into(),
                reason: e.to_string(),
            })?;
        let mut chain = Chain {
            runtime,
            client,
            params: ChainParams {
                genesis: H256::zero(),
                spec_version: 0,
                transaction_version: 0,
            },
        };
        let genesis = chain.call("chain_getBlockHash", rpc_params![0])?;
        let version = chain.call("state_getRuntimeVersion", rpc_params![])?;
        chain.params = ChainParams {
            genesis: hash_of(&genesis, "genesis hash")?,
            spec_version: hex_number(&version["specVersion"], "spec version")?,
            transaction_version: hex_number(&version["transactionVersion"], "tx version")?,
        };
        Ok(chain)
    }

    /// What signatures on this chain commit to.
    pub fn params(&self) -> ChainParams {
        self.params
    }

    /// One raw JSON-RPC call.
    pub fn call(&self, method: &str, params: ArrayParams) -> Result<Value> {
        self.runtime
            .block_on(self.client.request::<Value, _>(method, params))
            .map_err(|e| ChainError::Rpc {
                method: method.into(),
                reason: e.to_string(),
            })
    }

    /// The raw value under `key`, at block `at` (default: best).
    pub fn storage_raw(&self, key: &[u8], at: Option<H256>) -> Result<Option<Vec<u8>>> {
        let key = format!("0x{}", hex::encode(key));
        let value = match at {
            Some(at) => self.call("state_getStorage", rpc_params![key, at])?,
            None => self.call("state_getStorage", rpc_params![key])?,
        };
        if value.is_null() {
            return Ok(None);
        }
        hex_bytes(&value, "storage value").map(Some)
    }

    /// The value under `key` decoded as `T`.
    pub fn storage<T: Decode>(
        &self,
        key: &[u8],
        what: &str,
        at: Option<H256>,
    ) -> Result<Option<T>> {
        match self.storage_raw(key, at)? {
            None => Ok(None),
            Some(bytes) => T::decode(&mut &bytes[..])
                .map(Some)
                .map_err(|_| ChainError::Decode { what: what.into() }),
        }
    }

    /// The best block's number.
    pub fn best_number(&self) -> Result<u32> {
        let header = self.call("chain_getHeader", rpc_params![])?;
        hex_number(&header["number"], "header number")
    }

    /// The finalized head: (number, hash).
    pub fn finalized(&self) -> Result<(u32, H256)> {
        let hash = hash_of(
            &self.call("chain_getFinalizedHead", rpc_params![])?,
            "finalized head",
        )?;
        let header = self.call("chain_getHeader", rpc_params![hash])?;
        Ok((hex_number(&header["number"], "header number")?, hash))
    }

    /// The hash of best-chain block `n`, if the node has it.
    pub fn block_hash(&self, n: u32) -> Result<Option<H256>> {
        let value = self.call("chain_getBlockHash", rpc_params![n])?;
        if value.is_null() {
            return Ok(None);
        }
        hash_of(&value, "block hash").map(Some)
    }

    /// The events of block `at`, with their phases.
    pub fn event_records(
        &self,
        at: H256,
    ) -> Result<Vec<frame_system::EventRecord<RuntimeEvent, H256>>> {
        // `System::Events` is private to frame-system; its key is public knowledge.
        let key = frame_support::storage::storage_prefix(b"System", b"Events");
        Ok(self
            .storage::<Vec<frame_system::EventRecord<RuntimeEvent, H256>>>(
                &key,
                "events",
                Some(at),
            )?
            .unwrap_or_default())
    }

    /// The events of block `at`.
    pub fn events(&self, at: H256) -> Result<Vec<RuntimeEvent>> {
        Ok(self
            .event_records(at)?
            .into_iter()
            .map(|r| r.event)
            .collect())
    }

    /// The next nonce of `who`, counting transactions in the node's pool.
    pub fn next_nonce(&self, who: &AccountId) -> Result<u32> {
        let value = self.call("system_accountNextIndex", rpc_params![who.to_string()])?;
        hex_number(&value, "nonce")
    }

    /// Signs `call` with `signer` and hands it to the node; returns the encoded extrinsic.
    pub fn submit(&self, signer: &sr25519::Pair, call: RuntimeCall) -> Result<String> {
        let nonce = self.next_nonce(&signing::account_of(signer))?;
        self.submit_with_nonce(signer, call, nonce)
    }

    /// Like [`Chain::submit`] with an explicit nonce (to queue several at once).
    pub fn submit_with_nonce(
        &self,
        signer: &sr25519::Pair,
        call: RuntimeCall,
        nonce: u32,
    ) -> Result<String> {
        signing::check_runtime(&self.params)?;
        let xt = signing::signed_extrinsic(call, signer, nonce, &self.params);
        let hex = signing::to_hex(&xt);
        self.runtime
            .block_on(
                self.client
                    .request::<Value, _>("author_submitExtrinsic", rpc_params![hex.clone()]),
            )
            .map_err(|e| ChainError::Rejected(e.to_string()))?;
        Ok(hex)
    }

    /// Signs and submits `call`, then waits until it is in a best-chain block; fails
    /// with the runtime's error if the extrinsic failed.
    pub fn submit_and_wait(
        &self,
        signer: &sr25519::Pair,
        call: RuntimeCall,
        timeout: Duration,
    ) -> Result<Included> {
        let from = self.best_number()?;
        let hex = self.submit(signer, call)?;
        self.wait_included(&hex, from + 1, timeout)
    }

    /// Waits for the extrinsic `hex` in best-chain blocks from `from` on.
    pub fn wait_included(&self, hex: &str, from: u32, timeout: Duration) -> Result<Included> {
        let start = Instant::now();
        let mut next = from;
        loop {
            let best = self.best_number()?;
            while next <= best {
                if let Some(found) = self.find_in_block(hex, next)? {
                    return Ok(found);
                }
                next += 1;
            }
            if start.elapsed() > timeout {
                return Err(ChainError::Timeout {
                    what: "the extrinsic to be included".into(),
                    seconds: timeout.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn find_in_block(&self, hex: &str, n: u32) -> Result<Option<Included>> {
        let Some(hash) = self.block_hash(n)? else {
            return Ok(None);
        };
        let block = self.call("chain_getBlock", rpc_params![hash])?;
        let Some(index) = block["block"]["extrinsics"]
            .as_array()
            .and_then(|xts| xts.iter().position(|x| x.as_str() == Some(hex)))
        else {
            return Ok(None);
        };
        let mut events = Vec::new();
        for record in self.event_records(hash)? {
            if record.phase != frame_system::Phase::ApplyExtrinsic(index as u32) {
                continue;
            }
            if let RuntimeEvent::System(frame_system::Event::ExtrinsicFailed {
                dispatch_error,
                ..
            }) = &record.event
            {
                return Err(ChainError::Failed {
                    block: n,
                    error: describe_error(dispatch_error),
                });
            }
            events.push(record.event);
        }
        Ok(Some(Included {
            block: n,
            hash,
            events,
        }))
    }
}

/// A dispatch error with the pallet error's name where we know the pallet.
pub fn describe_error(error: &sp_runtime::DispatchError) -> String {
    use frame_support::traits::PalletInfoAccess;
    if let sp_runtime::DispatchError::Module(m) = error {
        let index = m.index as usize;
        let name: Option<&'static str> = if index == inferchain_runtime::Inference::index() {
            pallet_inference::Error::<Runtime>::decode(&mut &m.error[..])
                .ok()
                .map(Into::into)
        } else if index == inferchain_runtime::Models::index() {
            pallet_models::Error::<Runtime>::decode(&mut &m.error[..])
                .ok()
                .map(Into::into)
        } else if index == inferchain_runtime::Balances::index() {
            pallet_balances::Error::<Runtime>::decode(&mut &m.error[..])
                .ok()
                .map(Into::into)
        } else if index == inferchain_runtime::Sudo::index() {
            pallet_sudo::Error::<Runtime>::decode(&mut &m.error[..])
                .ok()
                .map(Into::into)
        } else if index == inferchain_runtime::Council::index() {
            pallet_collective::Error::<
                Runtime,
                inferchain_runtime::configs::governance::CouncilInstance,
            >::decode(&mut &m.error[..])
            .ok()
            .map(Into::into)
        } else if index == inferchain_runtime::CouncilMembership::index() {
            pallet_membership::Error::<
                Runtime,
                inferchain_runtime::configs::governance::CouncilMembershipInstance,
            >::decode(&mut &m.error[..])
            .ok()
            .map(Into::into)
        } else if index == inferchain_runtime::Validators::index() {
            pallet_validators::Error::<Runtime>::decode(&mut &m.error[..])
                .ok()
                .map(Into::into)
        } else if index == inferchain_runtime::Session::index() {
            pallet_session::Error::<Runtime>::decode(&mut &m.error[..])
                .ok()
                .map(Into::into)
        } else if index == inferchain_runtime::Utility::index() {
            pallet_utility::Error::<Runtime>::decode(&mut &m.error[..])
                .ok()
                .map(Into::into)
        } else if index == inferchain_runtime::ProtocolParams::index() {
            pallet_protocol_params::Error::<Runtime>::decode(&mut &m.error[..])
                .ok()
                .map(Into::into)
        } else {
            None
        };
        if let Some(name) = name {
            return name.to_string();
        }
    }
    format!("{error:?}")
}

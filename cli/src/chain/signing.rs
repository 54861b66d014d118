//! Signed extrinsics built with the runtime's own types: the same extension tuple the
//! runtime checks, signed with an sr25519 key.

use super::{error::Result, ChainError};
use codec::Encode;
use inferchain_runtime::{
    AccountId, Runtime, RuntimeCall, Signature, SignedPayload, TxExtension, UncheckedExtrinsic,
};
use sp_core::{crypto::Pair as _, sr25519, H256};
use sp_runtime::{generic::Era, traits::IdentifyAccount, MultiAddress, MultiSigner};

/// What a signature commits to besides the call: which chain and which runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainParams {
    pub genesis: H256,
    pub spec_version: u32,
    pub transaction_version: u32,
}

/// Refuses a runtime this client was not built for: a signature commits to the spec and
/// transaction version the node reports, but the call's bytes are encoded with the types
/// compiled in here; after an upgrade the same bytes can mean another call.
pub fn check_runtime(params: &ChainParams) -> Result<()> {
    let built = &inferchain_runtime::VERSION;
    if params.spec_version == built.spec_version
        && params.transaction_version == built.transaction_version
    {
        return Ok(());
    }
    Err(ChainError::RuntimeMismatch {
        node_spec: params.spec_version,
        node_tx: params.transaction_version,
        built_spec: built.spec_version,
        built_tx: built.transaction_version,
    })
}

/// The key for a secret URI such as `//Alice` or a mnemonic with derivations.
pub fn pair_from_suri(suri: &str) -> Result<sr25519::Pair> {
    sr25519::Pair::from_string(suri, None).map_err(|e| {
        ChainError::Rejected(format!(
            "`{suri}` is not a valid secret URI ({e:?}); use a dev name like //Alice or a mnemonic"
        ))
    })
}

/// The account of an sr25519 key.
pub fn account_of(pair: &sr25519::Pair) -> AccountId {
    MultiSigner::from(pair.public()).into_account()
}

/// `call` signed by `signer` with `nonce`: immortal, no tip. Callers check the runtime
/// first ([`check_runtime`]).
pub fn signed_extrinsic(
    call: RuntimeCall,
    signer: &sr25519::Pair,
    nonce: u32,
    params: &ChainParams,
) -> UncheckedExtrinsic {
    let extension: TxExtension = (
        frame_system::CheckNonZeroSender::<Runtime>::new(),
        frame_system::CheckSpecVersion::<Runtime>::new(),
        frame_system::CheckTxVersion::<Runtime>::new(),
        frame_system::CheckGenesis::<Runtime>::new(),
        frame_system::CheckEra::<Runtime>::from(Era::Immortal),
        frame_system::CheckNonce::<Runtime>::from(nonce),
        frame_system::CheckWeight::<Runtime>::new(),
        pallet_inference::PrioritizeDuties::<Runtime>::new(),
        pallet_transaction_payment::ChargeTransactionPayment::<Runtime>::from(0),
    );
    let implicit = (
        (),
        params.spec_version,
        params.transaction_version,
        params.genesis,
        params.genesis,
        (),
        (),
        (),
        (),
    );
    let payload = SignedPayload::from_raw(call, extension, implicit);
    let signature = payload.using_encoded(|bytes| signer.sign(bytes));
    let (call, extension, _) = payload.deconstruct();
    UncheckedExtrinsic::new_signed(
        call,
        MultiAddress::Id(account_of(signer)),
        Signature::Sr25519(signature),
        extension,
    )
}

/// The hex (`0x…`) of an extrinsic's SCALE encoding, as RPC takes it.
pub fn to_hex(xt: &UncheckedExtrinsic) -> String {
    format!("0x{}", hex::encode(xt.encode()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_is_refused_for_a_runtime_this_client_was_not_built_for() {
        let built = &inferchain_runtime::VERSION;
        let same = ChainParams {
            genesis: H256::zero(),
            spec_version: built.spec_version,
            transaction_version: built.transaction_version,
        };
        assert!(check_runtime(&same).is_ok());
        for other in [
            ChainParams {
                spec_version: built.spec_version + 1,
                ..same
            },
            ChainParams {
                transaction_version: built.transaction_version + 1,
                ..same
            },
        ] {
            assert!(matches!(
                check_runtime(&other),
                Err(ChainError::RuntimeMismatch { .. })
            ));
        }
    }
}

//! Chain specifications. Each names a genesis preset of the runtime; the genesis data
//! itself lives in `inferchain_runtime::genesis_config_presets`.

use inferchain_runtime::WASM_BINARY;
use sc_service::ChainType;

/// The chain specification of inferchain.
pub type ChainSpec = sc_service::GenericChainSpec;

fn properties() -> sc_service::Properties {
    let mut properties = sc_service::Properties::new();
    properties.insert("tokenSymbol".into(), "INFER".into());
    properties.insert("tokenDecimals".into(), 12.into());
    properties.insert("ss58Format".into(), 42.into());
    properties
}

fn wasm_binary() -> Result<&'static [u8], String> {
    WASM_BINARY.ok_or_else(|| {
        "The runtime's wasm binary is missing: this node was built with SKIP_WASM_BUILD. \
         Rebuild without it (scripts/dev.sh does)."
            .to_string()
    })
}

/// `--dev`: Alice alone authors and finalizes.
pub fn development_chain_spec() -> Result<ChainSpec, String> {
    Ok(ChainSpec::builder(wasm_binary()?, None)
        .with_name("inferchain development")
        .with_id("inferchain_dev")
        .with_chain_type(ChainType::Development)
        .with_genesis_config_preset_name(sp_genesis_builder_preset::DEV)
        .with_properties(properties())
        .build())
}

/// `--chain local`: Alice, Bob, Charlie and Dave as validators.
pub fn local_chain_spec() -> Result<ChainSpec, String> {
    Ok(ChainSpec::builder(wasm_binary()?, None)
        .with_name("inferchain local testnet")
        .with_id("inferchain_local")
        .with_chain_type(ChainType::Local)
        .with_genesis_config_preset_name(sp_genesis_builder_preset::LOCAL)
        .with_properties(properties())
        .build())
}

/// The preset names the runtime defines (`sp_genesis_builder`'s well-known ones).
mod sp_genesis_builder_preset {
    pub const DEV: &str = "development";
    pub const LOCAL: &str = "local_testnet";
}

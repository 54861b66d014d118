//! `inferchain upgrade propose|apply`: a runtime upgrade by governance. The council
//! votes on the code's hash (`Upgrades::authorize_upgrade`, two thirds of the members);
//! once authorized, anyone submits the code (`System::apply_authorized_upgrade`).

use crate::args::{ChainArgs, UpgradeCommand};
use crate::chain_cmd::connect;
use anyhow::{anyhow, bail, Context, Result};
use inferchain_cli::chain::{describe_error, signing};
use inferchain_primitives::blake2_256;
use inferchain_runtime::{RuntimeCall, RuntimeEvent};
use sp_core::H256;
use sp_version::RuntimeVersion;
use std::{path::Path, time::Duration};

/// The most a compressed runtime may expand to: the node's executor's limit
/// (`sc_executor`'s `CODE_BLOB_BOMB_LIMIT`, 50 MiB).
const CODE_BOMB_LIMIT: usize = 50 * 1024 * 1024;

/// Reads a runtime's wasm (compressed or not) and the version it declares in its
/// `runtime_version` section.
pub fn read_runtime(path: &Path) -> Result<(Vec<u8>, RuntimeVersion)> {
    let code = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let wasm = sp_maybe_compressed_blob::decompress(&code, CODE_BOMB_LIMIT)
        .map_err(|e| anyhow!("{} is not a runtime: {e}", path.display()))?;
    let section = custom_section(&wasm, "runtime_version").ok_or_else(|| {
        anyhow!(
            "{} has no runtime_version section: not a runtime built by substrate-wasm-builder",
            path.display()
        )
    })?;
    // The section's own `apis` list is empty: which fields follow depends on the Core
    // API's version, which the `runtime_apis` section holds (8-byte id, `u32` version).
    let apis: Vec<([u8; 8], u32)> = custom_section(&wasm, "runtime_apis")
        .unwrap_or_default()
        .chunks_exact(12)
        .map(|entry| {
            let mut id = [0u8; 8];
            id.copy_from_slice(&entry[..8]);
            let mut version = [0u8; 4];
            version.copy_from_slice(&entry[8..]);
            (id, u32::from_le_bytes(version))
        })
        .collect();
    let core = sp_version::core_version_from_apis(&apis.into());
    let version =
        RuntimeVersion::decode_with_version_hint(&mut &section[..], core).map_err(|e| {
            anyhow!(
                "{}: its runtime_version does not decode ({e})",
                path.display()
            )
        })?;
    Ok((code, version))
}

/// A LEB128 `u32` at `*at`, advancing it.
fn leb_u32(bytes: &[u8], at: &mut usize) -> Option<u32> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        // The fifth byte carries the top 4 bits only (wasm rejects anything more).
        if shift == 28 && byte > 0x0f {
            return None;
        }
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The payload of the custom section `name` of a wasm module.
fn custom_section<'a>(wasm: &'a [u8], name: &str) -> Option<&'a [u8]> {
    if wasm.get(..4)? != b"\0asm" {
        return None;
    }
    let mut at = 8;
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let size = leb_u32(wasm, &mut at)? as usize;
        let end = at.checked_add(size)?;
        let body = wasm.get(at..end)?;
        if id == 0 {
            let mut name_at = 0;
            let len = leb_u32(body, &mut name_at)? as usize;
            if body.get(name_at..name_at.checked_add(len)?)? == name.as_bytes() {
                return body.get(name_at + len..);
            }
        }
        at = end;
    }
    None
}

pub fn run(cmd: UpgradeCommand) -> Result<()> {
    match cmd {
        UpgradeCommand::Propose { wasm, motion } => {
            let (code, version) = read_runtime(&wasm)?;
            let client = connect(&motion.chain)?;
            let on_chain = client.params();
            check_newer(&version, on_chain.spec_version)?;
            let code_hash = H256(blake2_256(&code));
            println!(
                "proposing the upgrade to {} spec version {} (code {}, {} bytes)",
                version.spec_name,
                version.spec_version,
                crate::output::hex0x(code_hash.as_bytes()),
                code.len()
            );
            let mut motion = motion;
            // Two thirds of the council (the runtime's `UpgradeOrigin`): a lower
            // threshold would let the motion close early and fail with `BadOrigin`.
            let council = crate::council_cmd::member_count(&client)?;
            let needed = (2 * council).div_ceil(3);
            match motion.threshold {
                Some(t) if t < needed => bail!(
                    "an upgrade needs two thirds of the council's {council} members: a threshold of at least {needed}, not {t}"
                ),
                _ => motion.threshold = Some(motion.threshold.unwrap_or(needed)),
            }
            crate::council_cmd::propose(
                RuntimeCall::Upgrades(pallet_upgrades::Call::authorize_upgrade { code_hash }),
                &motion,
            )
        }
        UpgradeCommand::Apply { wasm, suri, chain } => apply(&wasm, &suri, &chain),
    }
}

fn check_newer(version: &RuntimeVersion, on_chain: u32) -> Result<()> {
    if version.spec_name != inferchain_runtime::VERSION.spec_name {
        bail!(
            "the file is runtime `{}`, not `{}`",
            version.spec_name,
            inferchain_runtime::VERSION.spec_name
        );
    }
    if version.spec_version <= on_chain {
        bail!(
            "the file's spec version {} is not greater than the chain's {on_chain}: the runtime would refuse it",
            version.spec_version
        );
    }
    Ok(())
}

fn apply(wasm: &Path, suri: &str, chain: &ChainArgs) -> Result<()> {
    let (code, version) = read_runtime(wasm)?;
    let client = connect(chain)?;
    check_newer(&version, client.params().spec_version)?;
    let signer = signing::pair_from_suri(suri)?;
    let included = client.submit_and_wait(
        &signer,
        RuntimeCall::System(frame_system::Call::apply_authorized_upgrade { code }),
        Duration::from_secs(chain.timeout),
    )?;
    for event in &included.events {
        match event {
            RuntimeEvent::System(frame_system::Event::CodeUpdated { .. }) => {
                println!(
                    "runtime upgraded to spec version {} in block #{}; clients must now be the release built for it",
                    version.spec_version, included.block
                );
                return Ok(());
            }
            RuntimeEvent::System(frame_system::Event::RejectedInvalidAuthorizedUpgrade {
                error,
                ..
            }) => bail!(
                "the runtime refused the authorized code in block #{}: {}",
                included.block,
                describe_error(error)
            ),
            _ => {}
        }
    }
    bail!("no CodeUpdated event in block #{}", included.block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_sections_are_found_by_name() {
        // Header, a type section (id 1) of 1 byte, then two custom sections.
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        wasm.extend([1, 1, 0]);
        wasm.extend([0, 4, 1, b'a', 7, 7]);
        wasm.extend([0, 5, 2, b'b', b'c', 9, 8]);
        assert_eq!(custom_section(&wasm, "a"), Some(&[7u8, 7][..]));
        assert_eq!(custom_section(&wasm, "bc"), Some(&[9u8, 8][..]));
        assert_eq!(custom_section(&wasm, "d"), None);
        // A section running past the end is not read.
        wasm.extend([0, 50, 1, b'e']);
        assert_eq!(custom_section(&wasm, "e"), None);
        // A LEB128 size whose fifth byte overflows 32 bits is refused.
        let mut at = 0;
        assert_eq!(
            leb_u32(&[0xff, 0xff, 0xff, 0xff, 0x0f], &mut at),
            Some(u32::MAX)
        );
        at = 0;
        assert_eq!(leb_u32(&[0xff, 0xff, 0xff, 0xff, 0x1f], &mut at), None);
        assert_eq!(custom_section(b"not wasm", "a"), None);
    }

    #[test]
    fn the_runtime_this_client_was_built_with_reads_its_own_version() {
        let Some(wasm) = inferchain_runtime::WASM_BINARY else {
            panic!("built without the wasm runtime");
        };
        let dir = std::env::temp_dir().join(format!("upgrade-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("runtime.wasm");
        std::fs::write(&path, wasm).expect("write");
        let (_, version) = read_runtime(&path).expect("a runtime");
        assert_eq!(
            version.spec_version,
            inferchain_runtime::VERSION.spec_version
        );
        assert_eq!(
            version.transaction_version,
            inferchain_runtime::VERSION.transaction_version
        );
        assert!(check_newer(&version, version.spec_version).is_err());
        assert!(check_newer(&version, version.spec_version - 1).is_ok());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_next_runtime_is_this_one_a_spec_version_later() {
        let path = inferchain_runtime::next_runtime::WASM_BINARY_PATH
            .expect("build.rs builds the next runtime");
        let (code, next) = read_runtime(Path::new(path)).expect("a runtime");
        let built = &inferchain_runtime::VERSION;
        assert_eq!(next.spec_name, built.spec_name);
        assert_eq!(next.spec_version, built.spec_version + 1);
        assert_eq!(next.transaction_version, built.transaction_version);
        assert_ne!(Some(&code[..]), inferchain_runtime::WASM_BINARY);
    }
}

//! The chains the node knows by name, and loading chain-spec files.

use openledger_runtime::{token, SS58_PREFIX, WASM_BINARY};
use sc_service::ChainType;
use sp_genesis_builder::{DEV_RUNTIME_PRESET, LOCAL_TESTNET_RUNTIME_PRESET};
use std::path::PathBuf;

pub type ChainSpec = sc_service::GenericChainSpec;

/// What polkadot.js and Apps read to show balances as OPEN and addresses with our prefix.
pub fn properties() -> sc_chain_spec::Properties {
	let mut properties = sc_chain_spec::Properties::new();
	properties.insert("tokenSymbol".into(), token::SYMBOL.into());
	properties.insert("tokenDecimals".into(), token::DECIMALS.into());
	properties.insert("ss58Format".into(), SS58_PREFIX.into());
	properties
}

fn runtime_code() -> Result<&'static [u8], String> {
	WASM_BINARY.ok_or_else(|| {
		"this node was built without the runtime's wasm blob (SKIP_WASM_BUILD was set); rebuild it"
			.to_string()
	})
}

fn spec(name: &str, id: &str, chain_type: ChainType, preset: &str) -> Result<ChainSpec, String> {
	Ok(ChainSpec::builder(runtime_code()?, None)
		.with_name(name)
		.with_id(id)
		.with_protocol_id("openledger")
		.with_chain_type(chain_type)
		.with_genesis_config_preset_name(preset)
		.with_properties(properties())
		.build())
}

/// `--dev`: Alice alone authors and finalizes; the dev accounts are funded.
pub fn development() -> Result<ChainSpec, String> {
	spec("OpenLedger Development", "openledger_dev", ChainType::Development, DEV_RUNTIME_PRESET)
}

/// `--chain local`: Alice and Bob validate; both must run for blocks to finalize.
pub fn local_testnet() -> Result<ChainSpec, String> {
	spec("OpenLedger Local Testnet", "openledger_local", ChainType::Local, LOCAL_TESTNET_RUNTIME_PRESET)
}

/// Resolves `--chain`: a known name, or the path of a chain-spec JSON file.
pub fn load(id: &str) -> Result<Box<dyn sc_service::ChainSpec>, String> {
	Ok(match id {
		"dev" => Box::new(development()?),
		"" | "local" => Box::new(local_testnet()?),
		path => {
			let file = PathBuf::from(path);
			if !file.is_file() {
				return Err(format!(
					"unknown chain `{path}`: expected `dev`, `local` or the path of a chain-spec JSON file"
				));
			}
			// serde's messages span one line; keep the whole error on it.
			let spec = ChainSpec::from_json_file(file)
				.map_err(|e| format!("invalid chain-spec file `{path}`: {}", e.replace('\n', " ")))?;
			Box::new(spec)
		},
	})
}

#[cfg(test)]
mod tests {
	use super::*;

	fn load_error(id: &str) -> String {
		load(id).err().expect("loading should fail")
	}

	#[test]
	fn unknown_chain_name_is_a_one_line_error() {
		let error = load_error("mainnet");
		assert_eq!(
			error,
			"unknown chain `mainnet`: expected `dev`, `local` or the path of a chain-spec JSON file"
		);
	}

	#[test]
	fn malformed_chain_spec_file_is_a_one_line_error() {
		let path = std::env::temp_dir().join(format!("openledger-bad-spec-{}.json", std::process::id()));
		std::fs::write(&path, "{\n  \"name\": \"broken\",\n").unwrap();
		let error = load_error(path.to_str().unwrap());
		std::fs::remove_file(&path).unwrap();
		assert!(error.starts_with("invalid chain-spec file `"), "{error}");
		assert!(!error.contains('\n'), "{error}");
	}

	#[test]
	fn named_chains_show_open_in_wallets() {
		for spec in [development().unwrap(), local_testnet().unwrap()] {
			let properties = sc_service::ChainSpec::properties(&spec);
			assert_eq!(properties["tokenSymbol"], "OPEN");
			assert_eq!(properties["tokenDecimals"], 18);
			assert_eq!(properties["ss58Format"], 6736);
		}
	}
}

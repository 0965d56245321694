//! Wiring between the attribution pallet's off-chain worker and the OpenLoRA engine.

use sp_core::offchain::OffchainStorage;

/// Where this node's off-chain worker sends inference requests assigned to its operator.
#[derive(Debug, Clone, clap::Args)]
pub struct InferenceParams {
	/// Base URL of the OpenLoRA engine that answers the inference requests assigned to this
	/// node's operator (whose attribution key is in the keystore). Stored in the node's
	/// off-chain storage, where the worker reads it; without the flag the stored value (or the
	/// engine's default, http://127.0.0.1:8000) stays.
	#[arg(long = "inference-url", value_name = "URL")]
	pub url: Option<String>,

	/// A file holding the engine's operator token (`openlora --operator-token-file`), which
	/// the off-chain worker sends as `Authorization: Bearer <token>`: needed when the engine
	/// runs on another machine. Stored in the node's off-chain storage beside the URL.
	#[arg(long = "inference-token-file", value_name = "PATH")]
	pub token_file: Option<std::path::PathBuf>,
}

impl InferenceParams {
	/// Checks the URL and the token and writes them where `pallet_attribution::offchain`
	/// reads them.
	pub fn store(&self, storage: Option<impl OffchainStorage>) -> Result<(), String> {
		let entries = self.entries()?;
		if entries.is_empty() {
			return Ok(());
		}
		let mut storage = storage
			.ok_or("--inference-url and --inference-token-file need off-chain storage, which this node lacks")?;
		for (key, value) in entries {
			storage.set(sp_core::offchain::STORAGE_PREFIX, key, &value);
		}
		if let Some(url) = &self.url {
			log::info!("🧠 Inference requests go to the OpenLoRA engine at {url}");
		}
		if self.token_file.is_some() {
			log::info!("🔑 The engine's operator token is set");
		}
		Ok(())
	}

	/// The off-chain storage entries the flags set: the URL without a trailing `/`, the token
	/// without surrounding whitespace.
	fn entries(&self) -> Result<Vec<(&'static [u8], Vec<u8>)>, String> {
		let mut entries = Vec::new();
		if let Some(url) = &self.url {
			if !(url.starts_with("http://") || url.starts_with("https://")) {
				return Err(format!("--inference-url {url}: expected an http:// or https:// URL"));
			}
			let url = url.trim_end_matches('/').as_bytes().to_vec();
			entries.push((pallet_attribution::offchain::ENGINE_URL_KEY, url));
		}
		if let Some(path) = &self.token_file {
			let token = read_token(path)?.into_bytes();
			entries.push((pallet_attribution::offchain::ENGINE_TOKEN_KEY, token));
		}
		Ok(entries)
	}
}

/// The token in `path` without surrounding whitespace: visible ASCII, since it travels in an
/// HTTP header (the engine also asks for 16 to 256 characters).
fn read_token(path: &std::path::Path) -> Result<String, String> {
	let raw = std::fs::read_to_string(path)
		.map_err(|e| format!("--inference-token-file {}: {e}", path.display()))?;
	let token = raw.trim();
	if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
		return Err(format!(
			"--inference-token-file {}: the token must be visible ASCII characters, as the engine's --operator-token-file",
			path.display()
		));
	}
	Ok(token.to_string())
}

#[cfg(test)]
mod tests {
	use super::*;
	use pallet_attribution::offchain::{ENGINE_TOKEN_KEY, ENGINE_URL_KEY};

	/// Flags with `token` written to a file of its own.
	fn params(url: Option<&str>, token: Option<&str>, name: &str) -> (InferenceParams, std::path::PathBuf) {
		let path = std::env::temp_dir().join(format!("openledger-token-{}-{name}", std::process::id()));
		if let Some(token) = token {
			std::fs::write(&path, token).unwrap();
		}
		(InferenceParams { url: url.map(String::from), token_file: token.map(|_| path.clone()) }, path)
	}

	#[test]
	fn the_url_and_the_token_go_where_the_worker_reads_them() {
		let (p, path) = params(Some("http://10.0.0.2:8000/"), Some("  0123456789abcdef-operator\n"), "good");
		let entries = p.entries();
		std::fs::remove_file(path).unwrap();
		assert_eq!(
			entries.unwrap(),
			vec![
				(ENGINE_URL_KEY, b"http://10.0.0.2:8000".to_vec()),
				(ENGINE_TOKEN_KEY, b"0123456789abcdef-operator".to_vec()),
			]
		);
		assert_eq!(params(None, None, "none").0.entries().unwrap(), vec![]);
	}

	#[test]
	fn bad_urls_and_tokens_are_one_line_errors() {
		for (i, (url, token, expected)) in [
			(Some("127.0.0.1:8000"), None, "expected an http:// or https:// URL"),
			(None, Some(" \n"), "the token must be visible ASCII"),
			(None, Some("two words"), "the token must be visible ASCII"),
		]
		.into_iter()
		.enumerate()
		{
			let (p, path) = params(url, token, &format!("bad{i}"));
			let error = p.entries().unwrap_err();
			let _ = std::fs::remove_file(path);
			assert!(error.contains(expected) && !error.contains('\n'), "{error}");
		}
		let missing = InferenceParams {
			url: None,
			token_file: Some(std::env::temp_dir().join("openledger-no-such-token")),
		};
		let error = missing.entries().unwrap_err();
		assert!(error.starts_with("--inference-token-file ") && !error.contains('\n'), "{error}");
	}
}

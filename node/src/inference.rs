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
}

impl InferenceParams {
	/// Checks the URL and writes it where `pallet_attribution::offchain` reads it.
	pub fn store(&self, storage: Option<impl OffchainStorage>) -> Result<(), String> {
		let Some(url) = &self.url else { return Ok(()) };
		if !(url.starts_with("http://") || url.starts_with("https://")) {
			return Err(format!("--inference-url {url}: expected an http:// or https:// URL"));
		}
		let mut storage =
			storage.ok_or("--inference-url needs off-chain storage, which this node lacks")?;
		storage.set(
			sp_core::offchain::STORAGE_PREFIX,
			pallet_attribution::offchain::ENGINE_URL_KEY,
			url.trim_end_matches('/').as_bytes(),
		);
		log::info!("🧠 Inference requests go to the OpenLoRA engine at {url}");
		Ok(())
	}
}

//! The `datanets_*` JSON-RPC methods: upload a file, download it from any node, and see which
//! contributions reference it.
//!
//! Every refusal is a JSON-RPC error with one of the stable codes in [`error_code`], and a
//! refused call changes nothing on disk.

use std::sync::Arc;

use base64::Engine;
use jsonrpsee::{
	core::{async_trait, RpcResult},
	proc_macros::rpc,
	types::{error::INTERNAL_ERROR_CODE, ErrorObjectOwned},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sp_crypto_hashing::blake2_256;

use crate::{
	index::{At, ContributionIndex, ContributionRef},
	protocol::PeerFetcher,
	store::{ContentStore, StoreError},
	LOG_TARGET,
};

/// The error codes of the `datanets_*` methods. Clients match on them, so they never change
/// meaning.
pub mod error_code {
	/// `data` is neither `0x`-prefixed hex nor standard base64.
	pub const INVALID_ENCODING: i32 = 4001;
	/// The file has no bytes.
	pub const EMPTY_FILE: i32 = 4002;
	/// The file exceeds the node's size limit; `data` is `{ size, limit }`.
	pub const FILE_TOO_LARGE: i32 = 4003;
	/// The node's storage quota is used up; `data` is `{ used, quota, size }`.
	pub const QUOTA_EXCEEDED: i32 = 4004;
	/// The node's disk is full.
	pub const DISK_FULL: i32 = 4005;
	/// The hash is not `0x` followed by 64 hex digits.
	pub const INVALID_HASH: i32 = 4006;
	/// Neither this node nor any connected peer has the file.
	pub const UNKNOWN_HASH: i32 = 4007;
	/// The node could not read or write its store; details are in the node's log.
	pub const STORAGE_IO: i32 = 4008;
	/// The node could not read the contributions from chain state.
	pub const CHAIN_STATE: i32 = 4009;
}

/// The answer to `datanets_upload`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadResult {
	/// The content hash to pass to `datanets.contribute`, `0x`-prefixed hex.
	pub hash: String,
	/// The file's length in bytes, also an argument of `datanets.contribute`.
	pub size: u64,
}

/// The answer to `datanets_status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentStatus {
	/// The content hash asked about, `0x`-prefixed hex.
	pub hash: String,
	/// Whether this node has the file; one that does not can still fetch it from peers.
	pub stored: bool,
	/// The file's length, when stored here.
	pub size: Option<u64>,
	/// The best block number at which the file arrived here, when stored here.
	pub stored_at_block: Option<u64>,
	/// The contributions that reference the file at the best block.
	pub contributions: Vec<ContributionRef>,
}

/// Datanets file RPC methods.
#[rpc(server, namespace = "datanets")]
pub trait DatanetsApi {
	/// Stores a file on this node and returns its content hash.
	///
	/// `data` is `0x`-prefixed hex (what polkadot.js sends for a `Bytes` parameter) or standard
	/// base64. Uploading a file already stored succeeds without storing it twice.
	#[method(name = "upload")]
	async fn upload(&self, data: String) -> RpcResult<UploadResult>;

	/// The file with content hash `hash`, `0x`-prefixed hex, from this node or, failing that,
	/// from a peer; a file fetched from a peer is kept here too.
	#[method(name = "download")]
	async fn download(&self, hash: String) -> RpcResult<String>;

	/// Whether this node has the file with content hash `hash` and which contributions
	/// reference it.
	#[method(name = "status")]
	async fn status(&self, hash: String) -> RpcResult<ContentStatus>;
}

/// Implements [`DatanetsApiServer`]; register it with `Datanets::new(..).into_rpc()`.
pub struct Datanets {
	store: Arc<ContentStore>,
	index: Arc<dyn ContributionIndex>,
	fetcher: Arc<dyn PeerFetcher>,
}

impl Datanets {
	/// The RPC handler over the node's store, chain state and peers.
	pub fn new(
		store: Arc<ContentStore>,
		index: Arc<dyn ContributionIndex>,
		fetcher: Arc<dyn PeerFetcher>,
	) -> Self {
		Datanets { store, index, fetcher }
	}
}

#[async_trait]
impl DatanetsApiServer for Datanets {
	async fn upload(&self, data: String) -> RpcResult<UploadResult> {
		let bytes = decode_data(&data)?;
		// The encoded copy is up to twice the file; free it before the slow part.
		drop(data);
		let store = self.store.clone();
		let index = self.index.clone();
		let stored = blocking(move || store.put(&bytes, index.best_number()))
			.await?
			.map_err(store_error)?;
		Ok(UploadResult { hash: to_hex(&stored.hash), size: stored.size })
	}

	async fn download(&self, hash: String) -> RpcResult<String> {
		let hash = parse_hash(&hash)?;
		let store = self.store.clone();
		if let Some(bytes) = blocking(move || store.get(&hash)).await?.map_err(store_error)? {
			return Ok(to_hex(&bytes));
		}

		// The fetcher is trusted to verify, but a wrong file stored here would be served to the
		// whole network under the wrong name, so check again.
		let bytes = match self.fetcher.fetch(hash).await {
			Some(bytes) if blake2_256(&bytes) == hash => bytes,
			Some(_) => {
				log::warn!(
					target: LOG_TARGET,
					"Discarding fetched bytes that do not match 0x{}",
					hex::encode(hash),
				);
				return Err(unknown_hash(&hash));
			},
			None => return Err(unknown_hash(&hash)),
		};
		let store = self.store.clone();
		let index = self.index.clone();
		let (bytes, stored) = blocking(move || {
			let stored = store.put(&bytes, index.best_number());
			(bytes, stored)
		})
		.await?;
		// The caller asked for the bytes, not for a copy here; keeping one only spares the next
		// download a network round.
		if let Err(e) = stored {
			log::warn!(
				target: LOG_TARGET,
				"Cannot keep 0x{} fetched from a peer: {e}",
				hex::encode(hash),
			);
		}
		Ok(to_hex(&bytes))
	}

	async fn status(&self, hash: String) -> RpcResult<ContentStatus> {
		let hash = parse_hash(&hash)?;
		let meta = self.store.meta(&hash);
		let index = self.index.clone();
		let contributions =
			blocking(move || index.references(&hash, At::Best)).await?.map_err(|e| {
				ErrorObjectOwned::owned(
					error_code::CHAIN_STATE,
					"Cannot read contributions from chain state",
					Some(json!({ "error": e })),
				)
			})?;
		Ok(ContentStatus {
			hash: to_hex(&hash),
			stored: meta.is_some(),
			size: meta.map(|meta| meta.size),
			stored_at_block: meta.map(|meta| meta.stored_at_block),
			contributions,
		})
	}
}

/// Runs disk and runtime work on tokio's blocking pool, so that a slow disk or a runtime call
/// does not stall the other RPC connections served by the same worker thread.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> RpcResult<T> {
	tokio::task::spawn_blocking(work).await.map_err(|e| {
		log::error!(target: LOG_TARGET, "Datanets RPC task failed: {e}");
		ErrorObjectOwned::owned(INTERNAL_ERROR_CODE, "Internal error", None::<()>)
	})
}

/// Hex when `0x`-prefixed, base64 otherwise: the prefix decides, because some strings are valid
/// in both encodings.
fn decode_data(data: &str) -> RpcResult<Vec<u8>> {
	let decoded = match data.strip_prefix("0x") {
		Some(hex) => hex::decode(hex).map_err(|e| e.to_string()),
		None => base64::engine::general_purpose::STANDARD
			.decode(data)
			.map_err(|e| e.to_string()),
	};
	decoded.map_err(|e| {
		ErrorObjectOwned::owned(
			error_code::INVALID_ENCODING,
			"Invalid file encoding: expected 0x-prefixed hex or standard base64",
			Some(json!({ "error": e })),
		)
	})
}

fn parse_hash(hash: &str) -> RpcResult<[u8; 32]> {
	hash.strip_prefix("0x")
		.and_then(|hex| <[u8; 32] as hex::FromHex>::from_hex(hex).ok())
		.ok_or_else(|| {
			ErrorObjectOwned::owned(
				error_code::INVALID_HASH,
				"Invalid hash: expected 0x followed by 64 hex digits",
				None::<()>,
			)
		})
}

fn unknown_hash(hash: &[u8; 32]) -> ErrorObjectOwned {
	ErrorObjectOwned::owned(
		error_code::UNKNOWN_HASH,
		"Unknown hash: neither this node nor any connected peer has the file",
		Some(json!({ "hash": to_hex(hash) })),
	)
}

fn store_error(e: StoreError) -> ErrorObjectOwned {
	match e {
		StoreError::Empty =>
			ErrorObjectOwned::owned(error_code::EMPTY_FILE, "Empty file", None::<()>),
		StoreError::TooLarge { size, limit } => ErrorObjectOwned::owned(
			error_code::FILE_TOO_LARGE,
			"File too large",
			Some(json!({ "size": size, "limit": limit })),
		),
		StoreError::QuotaExceeded { used, quota, size } => ErrorObjectOwned::owned(
			error_code::QUOTA_EXCEEDED,
			"Storage quota of this node exceeded",
			Some(json!({ "used": used, "quota": quota, "size": size })),
		),
		StoreError::DiskFull =>
			ErrorObjectOwned::owned(error_code::DISK_FULL, "Disk full on this node", None::<()>),
		// Paths and OS details are for the operator's log, not for remote callers.
		StoreError::Io(e) => {
			log::warn!(target: LOG_TARGET, "Datanets store failed: {e}");
			ErrorObjectOwned::owned(error_code::STORAGE_IO, "Storage I/O error", None::<()>)
		},
	}
}

fn to_hex(bytes: &[u8]) -> String {
	format!("0x{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{index::ContributionStatus, protocol::NoPeers, store::StoreConfig};
	use jsonrpsee::{MethodsError, RpcModule};
	use parking_lot::Mutex;
	use std::{collections::HashMap, path::Path};

	const MAX: u64 = 64;
	const QUOTA: u64 = 100;

	/// References at the best block per hash; `failing` makes every query fail.
	#[derive(Default)]
	struct FakeIndex {
		references: Mutex<HashMap<[u8; 32], Vec<ContributionRef>>>,
		failing: bool,
	}

	impl ContributionIndex for FakeIndex {
		fn references(&self, hash: &[u8; 32], _at: At) -> Result<Vec<ContributionRef>, String> {
			if self.failing {
				return Err("state discarded".into());
			}
			Ok(self.references.lock().get(hash).cloned().unwrap_or_default())
		}

		fn best_number(&self) -> u64 {
			42
		}

		fn finalized_number(&self) -> u64 {
			40
		}
	}

	/// A peer that returns `bytes` for every request.
	struct FakePeer {
		bytes: Vec<u8>,
	}

	#[async_trait]
	impl PeerFetcher for FakePeer {
		async fn fetch(&self, _hash: [u8; 32]) -> Option<Vec<u8>> {
			Some(self.bytes.clone())
		}
	}

	struct Node {
		_dir: tempfile::TempDir,
		store: Arc<ContentStore>,
		module: RpcModule<Datanets>,
	}

	fn node_with(index: FakeIndex, fetcher: Arc<dyn PeerFetcher>) -> Node {
		let dir = tempfile::tempdir().unwrap();
		let store = Arc::new(
			ContentStore::open(StoreConfig {
				dir: dir.path().to_path_buf(),
				max_file_size: MAX,
				quota_bytes: QUOTA,
			})
			.unwrap(),
		);
		let module = Datanets::new(store.clone(), Arc::new(index), fetcher).into_rpc();
		Node { _dir: dir, store, module }
	}

	fn node() -> Node {
		node_with(FakeIndex::default(), Arc::new(NoPeers))
	}

	async fn upload(node: &Node, data: &str) -> Result<UploadResult, ErrorObjectOwned> {
		call(node, "datanets_upload", data).await
	}

	async fn call<T: serde::de::DeserializeOwned + Clone>(
		node: &Node,
		method: &str,
		param: &str,
	) -> Result<T, ErrorObjectOwned> {
		match node.module.call::<_, T>(method, [param]).await {
			Ok(value) => Ok(value),
			Err(MethodsError::JsonRpc(e)) => Err(e),
			Err(e) => panic!("{method} did not answer with a JSON-RPC error: {e}"),
		}
	}

	fn files_under(dir: &Path) -> usize {
		std::fs::read_dir(dir)
			.unwrap()
			.map(|entry| {
				let path = entry.unwrap().path();
				if path.is_dir() {
					files_under(&path)
				} else {
					1
				}
			})
			.sum()
	}

	fn assert_error(result: Result<impl std::fmt::Debug, ErrorObjectOwned>, code: i32) {
		match result {
			Err(e) => assert_eq!(e.code(), code, "{e:?}"),
			Ok(value) => panic!("expected error {code}, got {value:?}"),
		}
	}

	#[tokio::test]
	async fn hex_and_base64_uploads_give_the_same_hash() {
		let node = node();
		let hex = upload(&node, "0x68656c6c6f").await.unwrap();
		let base64 = upload(&node, "aGVsbG8=").await.unwrap();
		assert_eq!(hex, UploadResult { hash: to_hex(&blake2_256(b"hello")), size: 5 });
		assert_eq!(base64, hex);
		assert_eq!(node.store.used_bytes(), 5);
		assert_eq!(node.store.meta(&blake2_256(b"hello")).unwrap().stored_at_block, 42);
	}

	#[tokio::test]
	async fn download_returns_the_uploaded_bytes() {
		let node = node();
		let uploaded = upload(&node, "0x00ff10").await.unwrap();
		let downloaded: String = call(&node, "datanets_download", &uploaded.hash).await.unwrap();
		assert_eq!(downloaded, "0x00ff10");
	}

	#[tokio::test]
	async fn status_before_and_after_upload() {
		let index = FakeIndex::default();
		let hash = blake2_256(b"dataset");
		let contribution = ContributionRef {
			contribution_id: 3,
			datanet_id: 9,
			contributor: "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty".into(),
			status: ContributionStatus::Accepted,
		};
		index.references.lock().insert(hash, vec![contribution.clone()]);
		let node = node_with(index, Arc::new(NoPeers));

		let before: ContentStatus = call(&node, "datanets_status", &to_hex(&hash)).await.unwrap();
		assert_eq!(
			before,
			ContentStatus {
				hash: to_hex(&hash),
				stored: false,
				size: None,
				stored_at_block: None,
				contributions: vec![contribution.clone()],
			},
		);
		upload(&node, &to_hex(b"dataset")).await.unwrap();
		let after: ContentStatus = call(&node, "datanets_status", &to_hex(&hash)).await.unwrap();
		assert_eq!(
			after,
			ContentStatus { stored: true, size: Some(7), stored_at_block: Some(42), ..before },
		);
	}

	#[tokio::test]
	async fn status_json_uses_the_documented_names() {
		let node = node();
		let hash = to_hex(&blake2_256(b"x"));
		let request =
			format!(r#"{{"jsonrpc":"2.0","id":1,"method":"datanets_status","params":["{hash}"]}}"#);
		let (response, _) = node.module.raw_json_request(&request, 1).await.unwrap();
		let response: serde_json::Value = serde_json::from_str(&response).unwrap();
		assert_eq!(
			response["result"],
			json!({
				"hash": hash,
				"stored": false,
				"size": null,
				"storedAtBlock": null,
				"contributions": [],
			}),
		);
	}

	#[tokio::test]
	async fn download_from_a_peer_keeps_a_copy() {
		let bytes = b"from a peer".to_vec();
		let hash = blake2_256(&bytes);
		let node = node_with(FakeIndex::default(), Arc::new(FakePeer { bytes: bytes.clone() }));

		let downloaded: String = call(&node, "datanets_download", &to_hex(&hash)).await.unwrap();
		assert_eq!(downloaded, to_hex(&bytes));
		assert_eq!(node.store.get(&hash).unwrap(), Some(bytes));
		assert_eq!(node.store.meta(&hash).unwrap().stored_at_block, 42);
	}

	#[tokio::test]
	async fn wrong_bytes_from_a_peer_are_rejected() {
		let node =
			node_with(FakeIndex::default(), Arc::new(FakePeer { bytes: b"forged".to_vec() }));
		let hash = blake2_256(b"genuine");
		assert_error(
			call::<String>(&node, "datanets_download", &to_hex(&hash)).await,
			error_code::UNKNOWN_HASH,
		);
		assert!(node.store.list().is_empty());
		assert_eq!(files_under(node._dir.path()), 0);
	}

	#[tokio::test]
	async fn refused_uploads_change_nothing() {
		let node = node();
		upload(&node, &to_hex(&[1; 60])).await.unwrap();
		let files = files_under(node._dir.path());

		assert_error(upload(&node, "0xzz").await, error_code::INVALID_ENCODING);
		assert_error(upload(&node, "not base64!").await, error_code::INVALID_ENCODING);
		assert_error(upload(&node, "0x").await, error_code::EMPTY_FILE);
		assert_error(upload(&node, "").await, error_code::EMPTY_FILE);

		let too_large = upload(&node, &to_hex(&[2; MAX as usize + 1])).await.unwrap_err();
		assert_eq!(too_large.code(), error_code::FILE_TOO_LARGE);
		assert_eq!(too_large.data().unwrap().get(), r#"{"limit":64,"size":65}"#);

		let over_quota = upload(&node, &to_hex(&[3; 41])).await.unwrap_err();
		assert_eq!(over_quota.code(), error_code::QUOTA_EXCEEDED);
		assert_eq!(over_quota.data().unwrap().get(), r#"{"quota":100,"size":41,"used":60}"#);

		assert_eq!(files_under(node._dir.path()), files);
		assert_eq!(node.store.used_bytes(), 60);
	}

	#[tokio::test]
	async fn invalid_and_unknown_hashes() {
		let node = node();
		for bad in ["", "0x", "0x1234", &hex::encode([0; 32]), &format!("0x{}", "g".repeat(64))] {
			assert_error(
				call::<String>(&node, "datanets_download", bad).await,
				error_code::INVALID_HASH,
			);
			assert_error(
				call::<ContentStatus>(&node, "datanets_status", bad).await,
				error_code::INVALID_HASH,
			);
		}
		let unknown = call::<String>(&node, "datanets_download", &to_hex(&[0; 32])).await;
		assert_error(unknown, error_code::UNKNOWN_HASH);
	}

	#[tokio::test]
	async fn storage_failure_is_reported() {
		let node = node();
		// A file where the temporary directory should be makes every write fail.
		let tmp = node._dir.path().join("tmp");
		std::fs::remove_dir(&tmp).unwrap();
		std::fs::write(&tmp, b"in the way").unwrap();
		assert_error(upload(&node, "0x01").await, error_code::STORAGE_IO);
		assert!(node.store.list().is_empty());
	}

	#[test]
	fn full_disk_has_its_own_code() {
		assert_eq!(store_error(StoreError::DiskFull).code(), error_code::DISK_FULL);
	}

	#[tokio::test]
	async fn chain_state_failure_is_reported() {
		let node = node_with(FakeIndex { failing: true, ..Default::default() }, Arc::new(NoPeers));
		let status = call::<ContentStatus>(&node, "datanets_status", &to_hex(&[1; 32])).await;
		assert_error(status, error_code::CHAIN_STATE);
	}
}

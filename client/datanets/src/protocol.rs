//! The `/<genesis>/datanets/1` request-response protocol, through which nodes fetch files they
//! lack from their peers.
//!
//! Wire format, chosen to need no codec: the request is the 32-byte content hash; the response is
//! the byte `0` when the peer does not have the file, or the byte `1` followed by the file. The
//! requester checks the bytes against the hash, so a peer can withhold a file but never forge
//! one.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use sc_network::{
	config::{IncomingRequest, OutgoingResponse},
	IfDisconnected, NetworkBackend, NetworkRequest, ProtocolName,
};
use sc_network_sync::SyncingService;
use sp_crypto_hashing::blake2_256;
use sp_runtime::traits::Block as BlockT;

use crate::{store::ContentStore, LOG_TARGET};

/// A request is exactly a content hash; the margin only lets an oversized request reach the
/// handler, which answers it with a reputation penalty instead of a silent transport error.
const MAX_REQUEST_SIZE: u64 = 64;

/// Long enough for a file of several MiB on a slow link, short enough that one unresponsive peer
/// does not stall a download that other peers could serve.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Requests waiting to be served; beyond this the network refuses new ones instead of letting
/// peers queue unbounded work on this node.
const INBOUND_QUEUE: usize = 64;

const NOT_HERE: u8 = 0;
const HERE: u8 = 1;

mod rep {
	use sc_network::ReputationChange;

	/// A request that is not a 32-byte hash: no honest implementation sends one.
	pub const MALFORMED_REQUEST: ReputationChange =
		ReputationChange::new(-(1 << 10), "Malformed datanets request");
}

/// The protocol's name for the chain with `genesis_hash`: `/<genesis hex>[/<fork id>]/datanets/1`,
/// like the sync protocols, so that nodes of different chains never talk to each other.
pub fn protocol_name(genesis_hash: &[u8], fork_id: Option<&str>) -> ProtocolName {
	let genesis = hex::encode(genesis_hash);
	match fork_id {
		Some(fork_id) => format!("/{genesis}/{fork_id}/datanets/1"),
		None => format!("/{genesis}/datanets/1"),
	}
	.into()
}

/// The protocol's configuration for the network backend `N` (libp2p or litep2p), to be added to
/// the network configuration before the network starts, and the queue of incoming requests to be
/// handed to [`serve`].
pub fn request_response_config<B: BlockT, N: NetworkBackend<B, B::Hash>>(
	name: ProtocolName,
	max_file_size: u64,
) -> (N::RequestResponseProtocolConfig, async_channel::Receiver<IncomingRequest>) {
	let (sender, receiver) = async_channel::bounded(INBOUND_QUEUE);
	let config = N::request_response_config(
		name,
		Vec::new(),
		MAX_REQUEST_SIZE,
		max_file_size.saturating_add(1),
		REQUEST_TIMEOUT,
		Some(sender),
	);
	(config, receiver)
}

/// Answers requests from peers with files from `store` until the network shuts down.
///
/// One request at a time: a read takes milliseconds, and the bounded inbound queue limits
/// the work peers can make this node do, where concurrent handling would multiply the memory
/// held by files in flight.
pub async fn serve(requests: async_channel::Receiver<IncomingRequest>, store: Arc<ContentStore>) {
	while let Ok(IncomingRequest { peer, payload, pending_response }) = requests.recv().await {
		let response = match <[u8; 32]>::try_from(payload.as_slice()) {
			Ok(hash) => respond(&store, hash).await,
			Err(_) => {
				log::debug!(
					target: LOG_TARGET,
					"Malformed request of {} bytes from {peer}",
					payload.len(),
				);
				OutgoingResponse {
					result: Err(()),
					reputation_changes: vec![rep::MALFORMED_REQUEST],
					sent_feedback: None,
				}
			},
		};
		// The peer may have given up waiting; nothing to do about it.
		let _ = pending_response.send(response);
	}
}

async fn respond(store: &Arc<ContentStore>, hash: [u8; 32]) -> OutgoingResponse {
	let store = store.clone();
	let file = tokio::task::spawn_blocking(move || store.get(&hash))
		.await
		.map_err(|e| e.to_string())
		.and_then(|read| read.map_err(|e| e.to_string()));
	let result = match file {
		Ok(Some(bytes)) => Ok([&[HERE], &bytes[..]].concat()),
		Ok(None) => Ok(vec![NOT_HERE]),
		// Our failure, not the peer's: refuse without a reputation change.
		Err(e) => {
			log::warn!(target: LOG_TARGET, "Cannot serve 0x{}: {e}", hex::encode(hash));
			Err(())
		},
	};
	OutgoingResponse { result, reputation_changes: Vec::new(), sent_feedback: None }
}

/// The file in a response, if the peer had it and it matches `hash`.
fn decode_response(hash: &[u8; 32], response: &[u8]) -> Result<Option<Vec<u8>>, &'static str> {
	match response.split_first() {
		Some((&NOT_HERE, [])) => Ok(None),
		Some((&HERE, bytes)) if blake2_256(bytes) == *hash => Ok(Some(bytes.to_vec())),
		Some((&HERE, _)) => Err("bytes do not match the hash"),
		_ => Err("malformed response"),
	}
}

/// Gets files this node lacks from somewhere else.
#[async_trait]
pub trait PeerFetcher: Send + Sync {
	/// The file with content hash `hash`, verified against it, or `None` if nobody reachable
	/// has it.
	async fn fetch(&self, hash: [u8; 32]) -> Option<Vec<u8>>;
}

/// Fetches from the peers this node is connected to, over the datanets protocol.
pub struct NetworkFetcher<B: BlockT> {
	network: Arc<dyn NetworkRequest + Send + Sync>,
	sync: Arc<SyncingService<B>>,
	protocol: ProtocolName,
}

impl<B: BlockT> NetworkFetcher<B> {
	/// `network` is the service `sc_service::build_network` returns (an
	/// `Arc<dyn NetworkService>` coerces), `sync` lists the connected peers, and `protocol` is
	/// the name the protocol was registered under.
	pub fn new(
		network: Arc<dyn NetworkRequest + Send + Sync>,
		sync: Arc<SyncingService<B>>,
		protocol: ProtocolName,
	) -> Self {
		NetworkFetcher { network, sync, protocol }
	}
}

#[async_trait]
impl<B: BlockT> PeerFetcher for NetworkFetcher<B> {
	/// Asks connected full nodes one after another, so that a file costs the bandwidth of one
	/// transfer rather than one per peer; the first verified copy wins.
	async fn fetch(&self, hash: [u8; 32]) -> Option<Vec<u8>> {
		let peers = match self.sync.peers_info().await {
			Ok(peers) => peers,
			Err(_) => {
				log::debug!(
					target: LOG_TARGET,
					"Syncing service gone; cannot fetch 0x{}",
					hex::encode(hash),
				);
				return None;
			},
		};
		// Light clients keep no files and do not speak the protocol.
		for (peer, _) in peers.into_iter().filter(|(_, info)| info.roles.is_full()) {
			let response = self
				.network
				.request(
					peer,
					self.protocol.clone(),
					hash.to_vec(),
					None,
					IfDisconnected::ImmediateError,
				)
				.await;
			let outcome = match response {
				Ok((response, _)) => decode_response(&hash, &response),
				Err(e) => {
					log::debug!(
						target: LOG_TARGET,
						"Request for 0x{} to {peer} failed: {e}",
						hex::encode(hash),
					);
					continue;
				},
			};
			match outcome {
				Ok(Some(bytes)) => return Some(bytes),
				Ok(None) => {
					log::debug!(target: LOG_TARGET, "{peer} does not have 0x{}", hex::encode(hash))
				},
				Err(e) => log::debug!(
					target: LOG_TARGET,
					"Bad response for 0x{} from {peer}: {e}",
					hex::encode(hash),
				),
			}
		}
		None
	}
}

/// A fetcher for nodes without peers and for tests: nothing is ever found.
pub struct NoPeers;

#[async_trait]
impl PeerFetcher for NoPeers {
	async fn fetch(&self, _hash: [u8; 32]) -> Option<Vec<u8>> {
		None
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::store::StoreConfig;
	use futures::channel::oneshot;
	use sc_network::{service::traits::RequestResponseConfig, PeerId};
	use sp_runtime::{generic, traits::BlakeTwo256, OpaqueExtrinsic};

	type Block = generic::Block<generic::Header<u32, BlakeTwo256>, OpaqueExtrinsic>;
	type Hash = <Block as BlockT>::Hash;

	#[test]
	fn protocol_name_is_chain_specific() {
		assert_eq!(protocol_name(&[0xab, 0x01], None).to_string(), "/ab01/datanets/1");
		assert_eq!(protocol_name(&[0xab, 0x01], Some("fork")).to_string(), "/ab01/fork/datanets/1");
	}

	#[test]
	fn config_builds_for_both_backends() {
		let name = protocol_name(&[1; 32], None);
		let (libp2p, _) = request_response_config::<Block, sc_network::NetworkWorker<Block, Hash>>(
			name.clone(),
			1000,
		);
		assert_eq!(libp2p.max_request_size, MAX_REQUEST_SIZE);
		assert_eq!(libp2p.max_response_size, 1001);
		assert_eq!(libp2p.protocol_name(), &name);
		let (litep2p, _) =
			request_response_config::<Block, sc_network::Litep2pNetworkBackend>(name.clone(), 1000);
		assert_eq!(litep2p.protocol_name(), &name);
	}

	/// The node hands over what `sc_service::build_network` returns; this only has to compile.
	#[test]
	fn network_service_coerces_to_a_request_sender() {
		fn coerce(
			network: Arc<dyn sc_network::service::traits::NetworkService>,
		) -> Arc<dyn NetworkRequest + Send + Sync> {
			network
		}
		let _ = coerce;
	}

	#[test]
	fn responses_are_verified() {
		let hash = blake2_256(b"file");
		assert_eq!(decode_response(&hash, &[NOT_HERE]), Ok(None));
		assert_eq!(decode_response(&hash, b"\x01file"), Ok(Some(b"file".to_vec())));
		assert!(decode_response(&hash, b"\x01fake").is_err());
		assert!(decode_response(&hash, b"").is_err());
		assert!(decode_response(&hash, b"\x00junk").is_err());
		assert!(decode_response(&hash, b"\x02file").is_err());
	}

	#[tokio::test]
	async fn serves_files_and_penalises_malformed_requests() {
		let dir = tempfile::tempdir().unwrap();
		let store = Arc::new(
			ContentStore::open(StoreConfig {
				dir: dir.path().to_path_buf(),
				max_file_size: 1024,
				quota_bytes: 4096,
			})
			.unwrap(),
		);
		let hash = store.put(b"served", 1).unwrap().hash;
		let (sender, receiver) = async_channel::bounded(4);
		let server = tokio::spawn(serve(receiver, store));

		let ask = |payload: Vec<u8>| {
			let sender = sender.clone();
			async move {
				let (tx, rx) = oneshot::channel();
				let request =
					IncomingRequest { peer: PeerId::random(), payload, pending_response: tx };
				sender.send(request).await.unwrap();
				rx.await.unwrap()
			}
		};

		let found = ask(hash.to_vec()).await;
		assert_eq!(found.result, Ok(b"\x01served".to_vec()));
		assert!(found.reputation_changes.is_empty());
		assert_eq!(decode_response(&hash, &found.result.unwrap()), Ok(Some(b"served".to_vec())));

		let missing = ask(vec![7; 32]).await;
		assert_eq!(missing.result, Ok(vec![NOT_HERE]));

		let malformed = ask(vec![7; 33]).await;
		assert_eq!(malformed.result, Err(()));
		assert_eq!(malformed.reputation_changes, vec![rep::MALFORMED_REQUEST]);

		drop(sender);
		server.await.unwrap();
	}
}

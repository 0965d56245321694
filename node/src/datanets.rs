//! Wires the datanet file store (`openledger-datanets-client`) into the node: the command-line
//! flags, the chain-state index it consults, and the pruning task.

use std::sync::Arc;

use futures::StreamExt;
use openledger_datanets_client::{
	index::{At, ContributionIndex, ContributionRef, ContributionStatus},
	pruning, ContentStore,
};
use openledger_runtime::{opaque::Block, AccountId};
use pallet_datanets_runtime_api::DatanetsApi;
use sc_client_api::BlockchainEvents;
use sp_api::ProvideRuntimeApi;
use sp_blockchain::HeaderBackend;
use sp_core::crypto::{Ss58AddressFormat, Ss58Codec};

/// Limits of this node's datanet file store.
#[derive(Debug, Clone, clap::Args)]
pub struct DatanetsParams {
	/// The largest file `datanets_upload` accepts and this node fetches from peers, in bytes.
	/// Uploads are hex in JSON, about twice this size: raise `--rpc-max-request-size` (MiB)
	/// with it beyond 7 MiB.
	#[arg(long = "datanets-max-file-size", value_name = "BYTES", default_value_t = 5 * 1024 * 1024)]
	pub max_file_size: u64,

	/// Disk space this node gives to contributed files, in bytes. Uploads beyond it are refused.
	#[arg(long = "datanets-quota", value_name = "BYTES", default_value_t = 10 * 1024 * 1024 * 1024)]
	pub quota: u64,

	/// An uploaded file that no contribution references within this many blocks is deleted.
	/// Files of rejected and withdrawn contributions are deleted as soon as that is final.
	#[arg(long = "datanets-prune-after", value_name = "BLOCKS", default_value_t = 14_400)]
	pub prune_after: u64,

	/// Look for files to delete every this many finalized blocks.
	#[arg(long = "datanets-prune-interval", value_name = "BLOCKS", default_value_t = 10)]
	pub prune_interval: u32,
}

/// Reads contributions from the runtime's `DatanetsApi`.
pub struct ChainIndex<C> {
	client: Arc<C>,
}

impl<C> ChainIndex<C> {
	pub fn new(client: Arc<C>) -> Self {
		ChainIndex { client }
	}
}

impl<C> ContributionIndex for ChainIndex<C>
where
	C: ProvideRuntimeApi<Block> + HeaderBackend<Block> + Send + Sync,
	C::Api: DatanetsApi<Block, AccountId>,
{
	fn references(&self, hash: &[u8; 32], at: At) -> Result<Vec<ContributionRef>, String> {
		let info = self.client.info();
		let block = match at {
			At::Best => info.best_hash,
			At::Finalized => info.finalized_hash,
		};
		let references = self
			.client
			.runtime_api()
			.content_references(block, (*hash).into())
			.map_err(|e| format!("runtime API DatanetsApi_content_references failed: {e}"))?;
		let format = Ss58AddressFormat::custom(openledger_runtime::SS58_PREFIX);
		Ok(references
			.into_iter()
			.map(|r| ContributionRef {
				contribution_id: r.contribution_id,
				datanet_id: r.datanet_id,
				contributor: r.contributor.to_ss58check_with_version(format),
				status: if r.accepted { ContributionStatus::Accepted } else { ContributionStatus::Pending },
			})
			.collect())
	}

	fn best_number(&self) -> u64 {
		self.client.info().best_number.into()
	}

	fn finalized_number(&self) -> u64 {
		self.client.info().finalized_number.into()
	}
}

/// Deletes unreferenced files every `interval` finalized blocks, off the async executor.
pub async fn run_pruning<C>(
	client: Arc<C>,
	store: Arc<ContentStore>,
	index: Arc<dyn ContributionIndex>,
	params: DatanetsParams,
) where
	C: BlockchainEvents<Block>,
{
	let mut finalized = client.finality_notification_stream();
	let mut last = 0u32;
	let interval = params.prune_interval.max(1);
	while let Some(notification) = finalized.next().await {
		let number = notification.header.number;
		if number < last.saturating_add(interval) {
			continue;
		}
		last = number;
		let (store, index) = (store.clone(), index.clone());
		let pruned = tokio::task::spawn_blocking(move || {
			pruning::prune(&store, &*index, params.prune_after)
		})
		.await;
		match pruned {
			Ok(report) if report.removed_rejected + report.removed_unreferenced > 0 => log::info!(
				target: "datanets",
				"🗑️  Pruned {} file(s) of rejected or withdrawn contributions and {} never \
				 contributed, {} bytes freed; {} kept",
				report.removed_rejected,
				report.removed_unreferenced,
				report.freed_bytes,
				report.kept,
			),
			Ok(_) => {},
			Err(e) => log::warn!(target: "datanets", "pruning task failed: {e}"),
		}
	}
}

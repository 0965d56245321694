//! The seam to chain state: which contributions reference a file.
//!
//! The node implements [`ContributionIndex`] with the datanets runtime API; keeping it a trait
//! lets this crate, and its tests, stay independent of the runtime. On chain, rejected and
//! withdrawn contributions are deleted, so an empty answer means that nobody (still) contributes
//! the file.

use serde::{Deserialize, Serialize};

/// A contribution that references a file by its content hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContributionRef {
	/// The contribution's id in the datanets pallet.
	pub contribution_id: u64,
	/// The datanet it was contributed to.
	pub datanet_id: u32,
	/// The contributor's account, SS58-encoded.
	pub contributor: String,
	/// Where the contribution is in its review.
	pub status: ContributionStatus,
}

/// The review state of a contribution that still exists on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContributionStatus {
	/// Waiting for the datanet owner's decision.
	Pending,
	/// Accepted into the datanet.
	Accepted,
}

/// Which chain state to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
	/// The best block: what users expect to see right after their extrinsic is included.
	Best,
	/// The last finalized block: what deletions rely on, because it cannot be reverted.
	Finalized,
}

/// Contributions on chain, as the node reads them from its runtime.
pub trait ContributionIndex: Send + Sync {
	/// The contributions that reference `hash` in the state at `at`.
	fn references(&self, hash: &[u8; 32], at: At) -> Result<Vec<ContributionRef>, String>;

	/// The number of the best block.
	fn best_number(&self) -> u64;

	/// The number of the last finalized block.
	fn finalized_number(&self) -> u64;
}

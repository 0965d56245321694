//! The records the pallet keeps: datanets, contributions, versions.

use crate::{BalanceOf, Config};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_system::pallet_prelude::BlockNumberFor;
use frame_support::{
	pallet_prelude::Get,
	BoundedVec, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound,
};
use scale_info::TypeInfo;
use sp_core::H256;

/// Index of a datanet, assigned in creation order from 0.
pub type DatanetId = u32;
/// Index of a contribution, unique across all datanets, assigned in submission order from 0.
pub type ContributionId = u64;
/// A datanet's published version. Versions count from 1; 0 means "nothing published yet".
pub type VersionNumber = u32;
/// The blake2-256 of a contributed file's bytes: how chain, node store and engine name a file.
pub type ContentHash = H256;

/// What a datanet is about. Shown by wallets and explorers; only `name` must be non-empty.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, DecodeWithMemTracking,
	TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct DatanetMetadata<T: Config> {
	pub name: BoundedVec<u8, T::MaxNameLength>,
	pub description: BoundedVec<u8, T::MaxDescriptionLength>,
	pub tags: BoundedVec<BoundedVec<u8, T::MaxTagLength>, T::MaxTags>,
	/// An SPDX identifier or a short license text; every contribution is offered under it.
	pub license: BoundedVec<u8, T::MaxLicenseLength>,
}

/// Who may contribute to a datanet.
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
pub enum ContributionPolicy {
	/// Anyone whose reputation is high enough.
	Open,
	/// Only accounts the owner put on the datanet's allow-list (reputation still applies).
	AllowList,
}

#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
pub enum DatanetStatus {
	/// Takes contributions.
	Active,
	/// Takes no new contributions; pending ones can still be decided and published, and every
	/// published version stays, because models and rewards point at them.
	Archived,
}

/// The `MaxCurators` curators plus the owner: everyone who may vote on a contribution.
pub struct MaxVoters<T>(core::marker::PhantomData<T>);
impl<T: Config> Get<u32> for MaxVoters<T> {
	fn get() -> u32 {
		T::MaxCurators::get().saturating_add(1)
	}
}

#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct DatanetInfo<T: Config> {
	pub owner: T::AccountId,
	/// Set by `transfer_ownership`; the transfer happens when this account accepts.
	pub pending_owner: Option<T::AccountId>,
	pub metadata: DatanetMetadata<T>,
	pub policy: ContributionPolicy,
	/// Never contains the owner, who votes as owner.
	pub curators: BoundedVec<T::AccountId, T::MaxCurators>,
	/// Approvals needed to accept a contribution; `None` means a majority of owner + curators.
	pub quorum: Option<u32>,
	pub status: DatanetStatus,
	/// Everything held from the owner for this datanet: the datanet itself, its curators and
	/// allow-list entries, and its versions. Moves with ownership.
	pub deposit: BalanceOf<T>,
	/// The last published version; 0 before the first.
	pub latest_version: VersionNumber,
	/// Contributions waiting for a decision; bounded by `MaxPendingContributions`.
	pub pending: u32,
	/// Allow-list entries, so wallets can show the count without iterating the map.
	pub allowed: u32,
	pub created_at: BlockNumberFor<T>,
}

impl<T: Config> DatanetInfo<T> {
	/// The owner and the curators.
	pub fn electorate(&self) -> u32 {
		(self.curators.len() as u32).saturating_add(1)
	}

	/// Approvals needed. A configured quorum larger than the electorate (after curators left)
	/// shrinks to the electorate rather than leaving every contribution undecidable.
	pub fn effective_quorum(&self) -> u32 {
		let electorate = self.electorate();
		match self.quorum {
			Some(quorum) => quorum.min(electorate),
			None => electorate / 2 + 1,
		}
	}

	pub fn may_review(&self, who: &T::AccountId) -> bool {
		&self.owner == who || self.curators.contains(who)
	}
}

/// What the votes on a contribution add up to.
pub(crate) enum Outcome {
	Accepted,
	Rejected,
	Pending,
}

/// A curator's (or the owner's) decision on a contribution.
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
pub enum Verdict {
	Approve,
	Reject,
}

#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
pub struct Vote {
	pub verdict: Verdict,
	/// 0..=100, the reviewer's view of the contribution's quality.
	pub quality: u8,
}

#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
pub enum ContributionStatus {
	/// Waiting for the curators; the deposit is held.
	Pending,
	/// Accepted with the average quality score of the approving votes; the deposit is returned.
	/// The contribution goes into the datanet's next version. Rejected and withdrawn
	/// contributions are removed from storage, so no status names them.
	Accepted { quality: u8 },
}

#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct ContributionInfo<T: Config> {
	pub datanet_id: DatanetId,
	pub contributor: T::AccountId,
	pub content_hash: ContentHash,
	/// The file's length in bytes, as declared by the contributor; the node store checks it.
	pub size: u64,
	/// Free-form, e.g. a file name and MIME type.
	pub metadata: BoundedVec<u8, T::MaxContributionMetadataLength>,
	/// Held from the contributor while pending.
	pub deposit: BalanceOf<T>,
	pub status: ContributionStatus,
	/// Votes cast while pending; cleared on acceptance.
	pub votes: BoundedVec<(T::AccountId, Vote), MaxVoters<T>>,
	pub submitted_at: BlockNumberFor<T>,
}

/// An immutable, published snapshot of a datanet: what models are trained on and what rewards
/// point back to, as `(datanet id, version)`.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct VersionInfo<T: Config> {
	/// The contributions accepted since the previous version, in acceptance order.
	pub contributions: BoundedVec<ContributionId, T::MaxContributionsPerVersion>,
	/// Binary Merkle root (blake2-256, `binary-merkle-tree`'s construction) over the content
	/// hashes of `contributions`, in order: anyone holding the files can check the set, and a
	/// proof shows one file belongs to the version without listing the rest.
	pub merkle_root: H256,
	pub count: u32,
	pub total_bytes: u64,
	pub published_at: BlockNumberFor<T>,
}

//! # Datanets
//!
//! A **datanet** is a community-owned dataset for one domain. People contribute files to it by
//! content hash, the datanet's curators accept or reject each **contribution**, and the owner
//! publishes immutable **versions**: the accepted contributions since the previous version, with
//! a Merkle root over their content hashes. Models are trained on, and attribution rewards point
//! back to, `(datanet id, version)`.
//!
//! The files themselves never touch the chain: the node keeps them in a content-addressed store
//! and serves them over RPC and to its peers (`client/datanets`). The chain holds hashes, sizes,
//! metadata, votes and deposits.
//!
//! ## Deposits
//! Everything that occupies storage is paid for with a hold (`HoldReason`), not a fee, so it
//! comes back when the storage is freed:
//! - the owner holds `DatanetDeposit + ByteDeposit × metadata bytes` for the datanet,
//!   `ItemDeposit` per curator and per allow-list entry, and `ItemDeposit + ByteDeposit ×` the
//!   encoded size of its contribution-id list (8 bytes per id plus a length prefix) per
//!   version. A datanet is never deleted (versions are referenced forever), so these stay held
//!   while it exists and move with ownership.
//! - a contributor holds `ContributionBaseDeposit + ContributionByteDeposit × size` while the
//!   contribution is pending. Acceptance returns it; rejection sends `RejectionSlash` of it
//!   (rounded to the nearest planck) to the `Slashed` account (the treasury) and returns the
//!   rest; withdrawal returns all of it.
//!
//! ## Curation
//! The owner and the curators vote; the owner counts as one. A contribution is accepted once
//! `quorum` approvals are in (default: a majority of owner + curators), and rejected as soon as
//! approval can no longer reach the quorum (more than `electorate − quorum` rejections), so a
//! contribution never waits for votes that cannot change the outcome. When removing a curator
//! leaves the remaining votes decisive, `settle` (callable by anyone) applies the decision.
//!
//! ## Reputation
//! Every account starts at `InitialReputation`. An accepted contribution adds
//! `ReputationReward × average quality / 100` (quality scores are 0..=100), capped at
//! `MaxReputation`; a rejected one subtracts `ReputationPenalty`. Below `MinReputation` an
//! account can no longer contribute anywhere: repeated spam costs deposits and then access.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
mod inspect;
mod types;
pub mod weights;

pub use inspect::{DatanetsInspect, PublishedContribution};
pub use pallet::*;
pub use types::*;
pub use weights::WeightInfo;

use frame_support::traits::fungible;

pub type BalanceOf<T> =
	<<T as Config>::Currency as fungible::Inspect<<T as frame_system::Config>::AccountId>>::Balance;

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use alloc::vec::Vec;
	use frame_support::{
		pallet_prelude::*,
		traits::{
			fungible::{Inspect, InspectHold, Mutate, MutateHold},
			tokens::{Fortitude, Precision, Restriction},
		},
	};
	use frame_system::pallet_prelude::*;
	use sp_runtime::{
		traits::{BlakeTwo256, Saturating},
		Perbill, SaturatedConversion,
	};
	use sp_core::H256;

	#[pallet::pallet]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config {
		/// Holds the deposits.
		type Currency: Inspect<Self::AccountId>
			+ Mutate<Self::AccountId>
			+ InspectHold<Self::AccountId>
			+ MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;

		/// The runtime's hold reasons, which include this pallet's.
		type RuntimeHoldReason: From<HoldReason>;

		/// Where the slashed share of a rejected contribution's deposit goes (the treasury). It
		/// must exist (hold at least the existential deposit) or slashes fall back to returning
		/// the whole deposit.
		type Slashed: Get<Self::AccountId>;

		/// Held from the owner for a datanet, on top of `ByteDeposit` per metadata byte.
		#[pallet::constant]
		type DatanetDeposit: Get<BalanceOf<Self>>;

		/// Held per stored byte of metadata and version contents.
		#[pallet::constant]
		type ByteDeposit: Get<BalanceOf<Self>>;

		/// Held from the owner per curator, per allow-list entry and per version.
		#[pallet::constant]
		type ItemDeposit: Get<BalanceOf<Self>>;

		/// Held from a contributor per contribution, on top of the per-byte part.
		#[pallet::constant]
		type ContributionBaseDeposit: Get<BalanceOf<Self>>;

		/// Held from a contributor per byte of the contributed file: the node stores it.
		#[pallet::constant]
		type ContributionByteDeposit: Get<BalanceOf<Self>>;

		/// The share of a rejected contribution's deposit sent to `Slashed`.
		#[pallet::constant]
		type RejectionSlash: Get<Perbill>;

		#[pallet::constant]
		type MaxNameLength: Get<u32>;
		#[pallet::constant]
		type MaxDescriptionLength: Get<u32>;
		#[pallet::constant]
		type MaxTagLength: Get<u32>;
		#[pallet::constant]
		type MaxTags: Get<u32>;
		#[pallet::constant]
		type MaxLicenseLength: Get<u32>;
		#[pallet::constant]
		type MaxContributionMetadataLength: Get<u32>;

		/// Curators per datanet, not counting the owner.
		#[pallet::constant]
		type MaxCurators: Get<u32>;

		/// Contributions waiting for a decision, per datanet: bounds the curators' queue and the
		/// deposits a spammer can lock up in one datanet.
		#[pallet::constant]
		type MaxPendingContributions: Get<u32>;

		/// Accepted contributions per version. When this many are accepted and unpublished, the
		/// owner must publish before curators can accept more.
		#[pallet::constant]
		type MaxContributionsPerVersion: Get<u32>;

		/// The largest file a contribution may declare, in bytes.
		#[pallet::constant]
		type MaxContributionSize: Get<u64>;

		#[pallet::constant]
		type InitialReputation: Get<u32>;
		/// Accounts below this cannot contribute.
		#[pallet::constant]
		type MinReputation: Get<u32>;
		#[pallet::constant]
		type MaxReputation: Get<u32>;
		/// Gained by an accepted contribution with an average quality of 100.
		#[pallet::constant]
		type ReputationReward: Get<u32>;
		/// Lost by a rejected contribution.
		#[pallet::constant]
		type ReputationPenalty: Get<u32>;

		type WeightInfo: WeightInfo;
	}

	/// Why this pallet holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// A datanet's owner deposit: the datanet, its curators, allow-list and versions.
		DatanetDeposit,
		/// A pending contribution's deposit.
		ContributionDeposit,
	}

	#[pallet::storage]
	pub type NextDatanetId<T> = StorageValue<_, DatanetId, ValueQuery>;

	#[pallet::storage]
	pub type Datanets<T: Config> = StorageMap<_, Blake2_128Concat, DatanetId, DatanetInfo<T>>;

	/// Accounts allowed to contribute to an allow-list datanet.
	#[pallet::storage]
	pub type AllowedContributors<T: Config> =
		StorageDoubleMap<_, Blake2_128Concat, DatanetId, Blake2_128Concat, T::AccountId, ()>;

	#[pallet::storage]
	pub type NextContributionId<T> = StorageValue<_, ContributionId, ValueQuery>;

	#[pallet::storage]
	pub type Contributions<T: Config> =
		StorageMap<_, Blake2_128Concat, ContributionId, ContributionInfo<T>>;

	/// The pending or accepted contribution of a file in a datanet. Keyed by hash first, so the
	/// node can list every contribution that references a file it stores.
	#[pallet::storage]
	pub type ContributionsByContent<T> = StorageDoubleMap<
		_,
		Identity,
		ContentHash,
		Blake2_128Concat,
		DatanetId,
		ContributionId,
	>;

	/// Accepted contributions not yet in a version, in acceptance order.
	#[pallet::storage]
	pub type Unpublished<T: Config> = StorageMap<
		_,
		Blake2_128Concat,
		DatanetId,
		BoundedVec<ContributionId, T::MaxContributionsPerVersion>,
		ValueQuery,
	>;

	#[pallet::storage]
	pub type Versions<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		DatanetId,
		Twox64Concat,
		VersionNumber,
		VersionInfo<T>,
	>;

	/// The version that published each accepted contribution, so that a receipt's attributed
	/// contributions can be checked against a model's lineage in O(1) each.
	#[pallet::storage]
	pub type PublishedIn<T> = StorageMap<_, Twox64Concat, ContributionId, VersionNumber>;

	/// Reputation of accounts that have had a contribution decided; others have
	/// `InitialReputation`.
	#[pallet::storage]
	pub type Reputation<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, u32>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		DatanetCreated { datanet_id: DatanetId, owner: T::AccountId, deposit: BalanceOf<T> },
		DatanetUpdated { datanet_id: DatanetId, policy: ContributionPolicy },
		ContributorAllowed { datanet_id: DatanetId, who: T::AccountId, allowed: bool },
		CuratorAdded { datanet_id: DatanetId, curator: T::AccountId },
		CuratorRemoved { datanet_id: DatanetId, curator: T::AccountId },
		QuorumSet { datanet_id: DatanetId, quorum: Option<u32> },
		Contributed {
			contribution_id: ContributionId,
			datanet_id: DatanetId,
			contributor: T::AccountId,
			content_hash: ContentHash,
			size: u64,
			deposit: BalanceOf<T>,
		},
		Reviewed { contribution_id: ContributionId, reviewer: T::AccountId, vote: Vote },
		ContributionAccepted {
			contribution_id: ContributionId,
			datanet_id: DatanetId,
			quality: u8,
			reputation: u32,
		},
		ContributionRejected {
			contribution_id: ContributionId,
			datanet_id: DatanetId,
			content_hash: ContentHash,
			slashed: BalanceOf<T>,
			reputation: u32,
		},
		ContributionWithdrawn { contribution_id: ContributionId, datanet_id: DatanetId },
		VersionPublished {
			datanet_id: DatanetId,
			version: VersionNumber,
			count: u32,
			total_bytes: u64,
			merkle_root: H256,
		},
		OwnershipTransferProposed { datanet_id: DatanetId, to: Option<T::AccountId> },
		OwnershipTransferred { datanet_id: DatanetId, from: T::AccountId, to: T::AccountId },
		DatanetArchived { datanet_id: DatanetId },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// No datanet with this id.
		DatanetNotFound,
		/// Only the datanet's owner may do this.
		NotOwner,
		/// The datanet is archived and takes no new contributions or settings.
		DatanetArchived,
		/// A datanet needs a non-empty name.
		EmptyName,
		/// The datanet is open to all; allow-list entries would have no effect.
		NotAllowListed,
		/// This account is already a curator of the datanet.
		AlreadyCurator,
		/// The owner votes as owner and cannot also be a curator.
		OwnerCannotBeCurator,
		/// The datanet has `MaxCurators` curators.
		TooManyCurators,
		/// This account is not a curator of the datanet.
		NotCurator,
		/// A quorum must be at least 1 and at most the number of curators plus the owner.
		InvalidQuorum,
		/// The allow-list entry already has this value.
		AllowListUnchanged,
		/// The datanet takes contributions only from its allow-list.
		NotAllowedToContribute,
		/// A contribution must declare a non-zero size.
		EmptyContribution,
		/// The declared size is above `MaxContributionSize`.
		ContributionTooLarge,
		/// This file is already pending or accepted in this datanet.
		DuplicateContent,
		/// The datanet has `MaxPendingContributions` contributions waiting for a decision.
		TooManyPending,
		/// The account's reputation is below `MinReputation`.
		ReputationTooLow,
		/// The account cannot pay the deposit.
		InsufficientBalance,
		/// No contribution with this id (it may have been rejected or withdrawn).
		ContributionNotFound,
		/// The contribution has already been decided.
		NotPending,
		/// Only the datanet's owner or curators may review.
		NotReviewer,
		/// This reviewer has already voted on the contribution.
		AlreadyVoted,
		/// Quality scores are 0..=100.
		InvalidQualityScore,
		/// Only the contributor may withdraw a contribution.
		NotContributor,
		/// No contributions were accepted since the last version.
		NothingToPublish,
		/// `MaxContributionsPerVersion` accepted contributions wait to be published: the owner
		/// must publish a version before more can be accepted.
		UnpublishedFull,
		/// The account already owns the datanet.
		AlreadyOwner,
		/// The caller is not the proposed new owner.
		NotPendingOwner,
		/// The datanet is already archived.
		AlreadyArchived,
		/// An id or version counter is exhausted.
		Overflow,
		/// The votes cast so far decide nothing: the contribution needs more votes.
		StillUndecided,
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Creates a datanet owned by the caller, holding its deposit.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::create_datanet())]
		pub fn create_datanet(
			origin: OriginFor<T>,
			metadata: DatanetMetadata<T>,
			policy: ContributionPolicy,
		) -> DispatchResult {
			let owner = ensure_signed(origin)?;
			ensure!(!metadata.name.is_empty(), Error::<T>::EmptyName);
			let datanet_id = NextDatanetId::<T>::get();
			let next = datanet_id.checked_add(1).ok_or(Error::<T>::Overflow)?;
			let deposit = Self::metadata_deposit(&metadata);
			Self::hold(&HoldReason::DatanetDeposit, &owner, deposit)?;
			Datanets::<T>::insert(
				datanet_id,
				DatanetInfo {
					owner: owner.clone(),
					pending_owner: None,
					metadata,
					policy,
					curators: BoundedVec::new(),
					quorum: None,
					status: DatanetStatus::Active,
					deposit,
					latest_version: 0,
					pending: 0,
					allowed: 0,
					created_at: frame_system::Pallet::<T>::block_number(),
				},
			);
			NextDatanetId::<T>::put(next);
			Self::deposit_event(Event::DatanetCreated { datanet_id, owner, deposit });
			Ok(())
		}

		/// Replaces the metadata and contribution policy; the deposit follows the new size.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::update_datanet())]
		pub fn update_datanet(
			origin: OriginFor<T>,
			datanet_id: DatanetId,
			metadata: DatanetMetadata<T>,
			policy: ContributionPolicy,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(!metadata.name.is_empty(), Error::<T>::EmptyName);
			Datanets::<T>::try_mutate(datanet_id, |maybe| {
				let datanet = Self::owned_active(maybe, &who)?;
				let old = Self::metadata_deposit(&datanet.metadata);
				let new = Self::metadata_deposit(&metadata);
				datanet.deposit = Self::adjust_hold(&who, datanet.deposit, old, new)?;
				datanet.metadata = metadata;
				datanet.policy = policy;
				Self::deposit_event(Event::DatanetUpdated { datanet_id, policy });
				Ok(())
			})
		}

		/// Adds `who` to (or removes it from) an allow-list datanet's contributors.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::set_contributor_allowed())]
		pub fn set_contributor_allowed(
			origin: OriginFor<T>,
			datanet_id: DatanetId,
			who: T::AccountId,
			allowed: bool,
		) -> DispatchResult {
			let owner = ensure_signed(origin)?;
			Datanets::<T>::try_mutate(datanet_id, |maybe| {
				let datanet = Self::owned_active(maybe, &owner)?;
				ensure!(datanet.policy == ContributionPolicy::AllowList, Error::<T>::NotAllowListed);
				let present = AllowedContributors::<T>::contains_key(datanet_id, &who);
				ensure!(present != allowed, Error::<T>::AllowListUnchanged);
				let item = T::ItemDeposit::get();
				if allowed {
					Self::hold(&HoldReason::DatanetDeposit, &owner, item)?;
					datanet.deposit = datanet.deposit.saturating_add(item);
					datanet.allowed = datanet.allowed.saturating_add(1);
					AllowedContributors::<T>::insert(datanet_id, &who, ());
				} else {
					datanet.deposit = datanet.deposit.saturating_sub(Self::release(
						&HoldReason::DatanetDeposit,
						&owner,
						item,
					));
					datanet.allowed = datanet.allowed.saturating_sub(1);
					AllowedContributors::<T>::remove(datanet_id, &who);
				}
				Self::deposit_event(Event::ContributorAllowed { datanet_id, who, allowed });
				Ok(())
			})
		}

		/// Makes `curator` a voter on the datanet's contributions.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::add_curator())]
		pub fn add_curator(
			origin: OriginFor<T>,
			datanet_id: DatanetId,
			curator: T::AccountId,
		) -> DispatchResult {
			let owner = ensure_signed(origin)?;
			Datanets::<T>::try_mutate(datanet_id, |maybe| {
				let datanet = Self::owned_active(maybe, &owner)?;
				ensure!(curator != owner, Error::<T>::OwnerCannotBeCurator);
				ensure!(!datanet.curators.contains(&curator), Error::<T>::AlreadyCurator);
				datanet
					.curators
					.try_push(curator.clone())
					.map_err(|_| Error::<T>::TooManyCurators)?;
				let item = T::ItemDeposit::get();
				Self::hold(&HoldReason::DatanetDeposit, &owner, item)?;
				datanet.deposit = datanet.deposit.saturating_add(item);
				Self::deposit_event(Event::CuratorAdded { datanet_id, curator });
				Ok(())
			})
		}

		/// Removes a curator. Their votes on pending contributions stop counting (and count again
		/// if they are made curator again); `settle` decides contributions this leaves decided.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::remove_curator())]
		pub fn remove_curator(
			origin: OriginFor<T>,
			datanet_id: DatanetId,
			curator: T::AccountId,
		) -> DispatchResult {
			let owner = ensure_signed(origin)?;
			Datanets::<T>::try_mutate(datanet_id, |maybe| {
				let datanet = Self::owned(maybe, &owner)?;
				let index = datanet
					.curators
					.iter()
					.position(|c| c == &curator)
					.ok_or(Error::<T>::NotCurator)?;
				datanet.curators.remove(index);
				datanet.deposit = datanet.deposit.saturating_sub(Self::release(
					&HoldReason::DatanetDeposit,
					&owner,
					T::ItemDeposit::get(),
				));
				Self::deposit_event(Event::CuratorRemoved { datanet_id, curator });
				Ok(())
			})
		}

		/// Sets the number of approvals a contribution needs; `None` restores the default
		/// majority of owner + curators.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::set_quorum())]
		pub fn set_quorum(
			origin: OriginFor<T>,
			datanet_id: DatanetId,
			quorum: Option<u32>,
		) -> DispatchResult {
			let owner = ensure_signed(origin)?;
			Datanets::<T>::try_mutate(datanet_id, |maybe| {
				let datanet = Self::owned(maybe, &owner)?;
				if let Some(q) = quorum {
					ensure!(q >= 1 && q <= datanet.electorate(), Error::<T>::InvalidQuorum);
				}
				datanet.quorum = quorum;
				Self::deposit_event(Event::QuorumSet { datanet_id, quorum });
				Ok(())
			})
		}

		/// Submits the file with blake2-256 `content_hash` and length `size` (uploaded to a node
		/// with `datanets_upload`) for the curators' decision, holding the contribution deposit.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::contribute())]
		pub fn contribute(
			origin: OriginFor<T>,
			datanet_id: DatanetId,
			content_hash: ContentHash,
			size: u64,
			metadata: BoundedVec<u8, T::MaxContributionMetadataLength>,
		) -> DispatchResult {
			let contributor = ensure_signed(origin)?;
			ensure!(size > 0, Error::<T>::EmptyContribution);
			ensure!(size <= T::MaxContributionSize::get(), Error::<T>::ContributionTooLarge);
			Datanets::<T>::try_mutate(datanet_id, |maybe| {
				let datanet = maybe.as_mut().ok_or(Error::<T>::DatanetNotFound)?;
				ensure!(datanet.status == DatanetStatus::Active, Error::<T>::DatanetArchived);
				if datanet.policy == ContributionPolicy::AllowList {
					ensure!(
						AllowedContributors::<T>::contains_key(datanet_id, &contributor),
						Error::<T>::NotAllowedToContribute
					);
				}
				ensure!(
					Self::reputation(&contributor) >= T::MinReputation::get(),
					Error::<T>::ReputationTooLow
				);
				ensure!(
					!ContributionsByContent::<T>::contains_key(content_hash, datanet_id),
					Error::<T>::DuplicateContent
				);
				ensure!(
					datanet.pending < T::MaxPendingContributions::get(),
					Error::<T>::TooManyPending
				);
				let contribution_id = NextContributionId::<T>::get();
				let next = contribution_id.checked_add(1).ok_or(Error::<T>::Overflow)?;
				let deposit = Self::contribution_deposit(size);
				Self::hold(&HoldReason::ContributionDeposit, &contributor, deposit)?;

				datanet.pending.saturating_inc();
				Contributions::<T>::insert(
					contribution_id,
					ContributionInfo {
						datanet_id,
						contributor: contributor.clone(),
						content_hash,
						size,
						metadata,
						deposit,
						status: ContributionStatus::Pending,
						votes: BoundedVec::new(),
						submitted_at: frame_system::Pallet::<T>::block_number(),
					},
				);
				ContributionsByContent::<T>::insert(content_hash, datanet_id, contribution_id);
				NextContributionId::<T>::put(next);
				Self::deposit_event(Event::Contributed {
					contribution_id,
					datanet_id,
					contributor,
					content_hash,
					size,
					deposit,
				});
				Ok(())
			})
		}

		/// A curator's (or the owner's) vote, with a quality score 0..=100. The vote that
		/// settles the outcome also accepts or rejects the contribution.
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::review_accept()
			.max(T::WeightInfo::review_reject())
			.max(T::WeightInfo::review_vote()))]
		pub fn review(
			origin: OriginFor<T>,
			contribution_id: ContributionId,
			verdict: Verdict,
			quality_score: u8,
		) -> DispatchResultWithPostInfo {
			let reviewer = ensure_signed(origin)?;
			ensure!(quality_score <= 100, Error::<T>::InvalidQualityScore);
			let (mut contribution, mut datanet) = Self::pending_contribution(contribution_id)?;
			ensure!(datanet.may_review(&reviewer), Error::<T>::NotReviewer);
			ensure!(
				!contribution.votes.iter().any(|(voter, _)| voter == &reviewer),
				Error::<T>::AlreadyVoted
			);
			let vote = Vote { verdict, quality: quality_score };
			// Only current voters' votes are left, so the owner plus `MaxCurators` always fit.
			contribution
				.votes
				.try_push((reviewer.clone(), vote))
				.map_err(|_| Error::<T>::NotReviewer)?;
			Self::deposit_event(Event::Reviewed { contribution_id, reviewer, vote });

			match Self::decide(contribution_id, contribution, &mut datanet)? {
				Outcome::Accepted => Ok(Some(T::WeightInfo::review_accept()).into()),
				Outcome::Rejected => Ok(Some(T::WeightInfo::review_reject()).into()),
				Outcome::Pending => Ok(Some(T::WeightInfo::review_vote()).into()),
			}
		}

		/// Takes back a pending contribution and its whole deposit.
		#[pallet::call_index(8)]
		#[pallet::weight(T::WeightInfo::withdraw())]
		pub fn withdraw(origin: OriginFor<T>, contribution_id: ContributionId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let contribution =
				Contributions::<T>::get(contribution_id).ok_or(Error::<T>::ContributionNotFound)?;
			ensure!(contribution.contributor == who, Error::<T>::NotContributor);
			ensure!(contribution.status == ContributionStatus::Pending, Error::<T>::NotPending);
			Self::release(&HoldReason::ContributionDeposit, &who, contribution.deposit);
			Self::forget(contribution_id, &contribution);
			let datanet_id = contribution.datanet_id;
			Datanets::<T>::mutate(datanet_id, |maybe| {
				if let Some(datanet) = maybe {
					datanet.pending.saturating_dec();
				}
			});
			Self::deposit_event(Event::ContributionWithdrawn { contribution_id, datanet_id });
			Ok(())
		}

		/// Publishes the contributions accepted since the last version as the next version.
		#[pallet::call_index(9)]
		#[pallet::weight(T::WeightInfo::publish_version(T::MaxContributionsPerVersion::get()))]
		pub fn publish_version(
			origin: OriginFor<T>,
			datanet_id: DatanetId,
		) -> DispatchResultWithPostInfo {
			let owner = ensure_signed(origin)?;
			Datanets::<T>::try_mutate(datanet_id, |maybe| {
				let datanet = Self::owned(maybe, &owner)?;
				let contributions = Unpublished::<T>::get(datanet_id);
				ensure!(!contributions.is_empty(), Error::<T>::NothingToPublish);
				let version = datanet.latest_version.checked_add(1).ok_or(Error::<T>::Overflow)?;

				let count = contributions.len() as u32;
				let deposit = T::ItemDeposit::get().saturating_add(
					T::ByteDeposit::get()
						.saturating_mul((contributions.encoded_size() as u64).saturated_into()),
				);
				Self::hold(&HoldReason::DatanetDeposit, &owner, deposit)?;
				datanet.deposit = datanet.deposit.saturating_add(deposit);

				let mut hashes = Vec::with_capacity(contributions.len());
				let mut total_bytes = 0u64;
				for id in contributions.iter() {
					// Accepted contributions are never removed, so every id resolves.
					if let Some(c) = Contributions::<T>::get(id) {
						hashes.push(c.content_hash);
						total_bytes = total_bytes.saturating_add(c.size);
					}
					PublishedIn::<T>::insert(id, version);
				}
				let merkle_root = binary_merkle_tree::merkle_root_raw::<BlakeTwo256, _>(hashes);

				Versions::<T>::insert(
					datanet_id,
					version,
					VersionInfo {
						contributions,
						merkle_root,
						count,
						total_bytes,
						published_at: frame_system::Pallet::<T>::block_number(),
					},
				);
				Unpublished::<T>::remove(datanet_id);
				datanet.latest_version = version;
				Self::deposit_event(Event::VersionPublished {
					datanet_id,
					version,
					count,
					total_bytes,
					merkle_root,
				});
				Ok(Some(T::WeightInfo::publish_version(count)).into())
			})
		}

		/// Proposes `new_owner` as the datanet's owner (`None` cancels a proposal). Nothing
		/// changes until they call `accept_ownership`: the owner's deposit moves to them, so
		/// they must agree.
		#[pallet::call_index(10)]
		#[pallet::weight(T::WeightInfo::transfer_ownership())]
		pub fn transfer_ownership(
			origin: OriginFor<T>,
			datanet_id: DatanetId,
			new_owner: Option<T::AccountId>,
		) -> DispatchResult {
			let owner = ensure_signed(origin)?;
			Datanets::<T>::try_mutate(datanet_id, |maybe| {
				let datanet = Self::owned(maybe, &owner)?;
				ensure!(new_owner.as_ref() != Some(&owner), Error::<T>::AlreadyOwner);
				datanet.pending_owner = new_owner.clone();
				Self::deposit_event(Event::OwnershipTransferProposed { datanet_id, to: new_owner });
				Ok(())
			})
		}

		/// Takes over a datanet proposed to the caller, with its deposit. A new owner who was a
		/// curator stops being one (the owner votes as owner).
		#[pallet::call_index(11)]
		#[pallet::weight(T::WeightInfo::accept_ownership())]
		pub fn accept_ownership(origin: OriginFor<T>, datanet_id: DatanetId) -> DispatchResult {
			let new_owner = ensure_signed(origin)?;
			Datanets::<T>::try_mutate(datanet_id, |maybe| {
				let datanet = maybe.as_mut().ok_or(Error::<T>::DatanetNotFound)?;
				ensure!(
					datanet.pending_owner.as_ref() == Some(&new_owner),
					Error::<T>::NotPendingOwner
				);
				let mut deposit = datanet.deposit;
				if let Some(index) = datanet.curators.iter().position(|c| c == &new_owner) {
					datanet.curators.remove(index);
					deposit = deposit.saturating_sub(Self::release(
						&HoldReason::DatanetDeposit,
						&datanet.owner,
						T::ItemDeposit::get(),
					));
				}
				Self::hold(&HoldReason::DatanetDeposit, &new_owner, deposit)?;
				Self::release(&HoldReason::DatanetDeposit, &datanet.owner, deposit);
				let from = core::mem::replace(&mut datanet.owner, new_owner.clone());
				datanet.pending_owner = None;
				datanet.deposit = deposit;
				Self::deposit_event(Event::OwnershipTransferred { datanet_id, from, to: new_owner });
				Ok(())
			})
		}

		/// Closes the datanet to new contributions. Pending contributions can still be decided
		/// and withdrawn, accepted ones published; versions stay.
		#[pallet::call_index(12)]
		#[pallet::weight(T::WeightInfo::archive())]
		pub fn archive(origin: OriginFor<T>, datanet_id: DatanetId) -> DispatchResult {
			let owner = ensure_signed(origin)?;
			Datanets::<T>::try_mutate(datanet_id, |maybe| {
				let datanet = Self::owned(maybe, &owner)?;
				ensure!(datanet.status == DatanetStatus::Active, Error::<T>::AlreadyArchived);
				datanet.status = DatanetStatus::Archived;
				Self::deposit_event(Event::DatanetArchived { datanet_id });
				Ok(())
			})
		}

		/// Decides a pending contribution whose outcome the votes already settle after the
		/// electorate changed: a curator removed (or made owner) can turn the remaining votes
		/// into a quorum for acceptance or make approval unreachable, and nobody left could cast
		/// the vote that triggers the decision. Anyone may call it; it fails with
		/// `StillUndecided` when the current votes decide nothing.
		#[pallet::call_index(13)]
		#[pallet::weight(T::WeightInfo::review_accept().max(T::WeightInfo::review_reject()))]
		pub fn settle(
			origin: OriginFor<T>,
			contribution_id: ContributionId,
		) -> DispatchResultWithPostInfo {
			ensure_signed(origin)?;
			let (contribution, mut datanet) = Self::pending_contribution(contribution_id)?;
			// The deciding branches do what a deciding `review` does minus recording a vote, so
			// they are charged as such.
			match Self::decide(contribution_id, contribution, &mut datanet)? {
				Outcome::Accepted => Ok(Some(T::WeightInfo::review_accept()).into()),
				Outcome::Rejected => Ok(Some(T::WeightInfo::review_reject()).into()),
				Outcome::Pending => Err(Error::<T>::StillUndecided.into()),
			}
		}
	}

	impl<T: Config> Pallet<T> {
		/// An account's reputation; accounts never judged have `InitialReputation`.
		pub fn reputation(who: &T::AccountId) -> u32 {
			Reputation::<T>::get(who).unwrap_or_else(T::InitialReputation::get)
		}

		/// The deposit a contribution of `size` bytes holds.
		pub fn contribution_deposit(size: u64) -> BalanceOf<T> {
			T::ContributionBaseDeposit::get().saturating_add(
				T::ContributionByteDeposit::get().saturating_mul(size.saturated_into()),
			)
		}

		/// The deposit a datanet with `metadata` holds, before curators, allow-list and versions.
		pub fn metadata_deposit(metadata: &DatanetMetadata<T>) -> BalanceOf<T> {
			T::DatanetDeposit::get().saturating_add(
				T::ByteDeposit::get().saturating_mul((metadata.encoded_size() as u64).saturated_into()),
			)
		}

		/// Every pending or accepted contribution of the file `content_hash`, in any datanet.
		pub fn contributions_of(
			content_hash: ContentHash,
		) -> Vec<(ContributionId, ContributionInfo<T>)> {
			ContributionsByContent::<T>::iter_prefix_values(content_hash)
				.filter_map(|id| Contributions::<T>::get(id).map(|c| (id, c)))
				.collect()
		}

		fn owned<'a>(
			maybe: &'a mut Option<DatanetInfo<T>>,
			who: &T::AccountId,
		) -> Result<&'a mut DatanetInfo<T>, DispatchError> {
			let datanet = maybe.as_mut().ok_or(Error::<T>::DatanetNotFound)?;
			ensure!(&datanet.owner == who, Error::<T>::NotOwner);
			Ok(datanet)
		}

		fn owned_active<'a>(
			maybe: &'a mut Option<DatanetInfo<T>>,
			who: &T::AccountId,
		) -> Result<&'a mut DatanetInfo<T>, DispatchError> {
			let datanet = Self::owned(maybe, who)?;
			ensure!(datanet.status == DatanetStatus::Active, Error::<T>::DatanetArchived);
			Ok(datanet)
		}

		fn hold(reason: &HoldReason, who: &T::AccountId, amount: BalanceOf<T>) -> DispatchResult {
			T::Currency::hold(&(*reason).into(), who, amount)
				.map_err(|_| Error::<T>::InsufficientBalance.into())
		}

		/// Releases up to `amount` and says how much was released. Never more than was held: a
		/// runtime upgrade that changed a deposit constant cannot make a release fail.
		fn release(reason: &HoldReason, who: &T::AccountId, amount: BalanceOf<T>) -> BalanceOf<T> {
			T::Currency::release(&(*reason).into(), who, amount, Precision::BestEffort)
				.unwrap_or_default()
		}

		/// Moves the hold for a datanet from `old` to `new` bytes of metadata.
		fn adjust_hold(
			owner: &T::AccountId,
			deposit: BalanceOf<T>,
			old: BalanceOf<T>,
			new: BalanceOf<T>,
		) -> Result<BalanceOf<T>, DispatchError> {
			if new > old {
				let more = new.saturating_sub(old);
				Self::hold(&HoldReason::DatanetDeposit, owner, more)?;
				Ok(deposit.saturating_add(more))
			} else {
				let released =
					Self::release(&HoldReason::DatanetDeposit, owner, old.saturating_sub(new));
				Ok(deposit.saturating_sub(released))
			}
		}

		/// A pending contribution and its datanet. Votes of reviewers who are no longer owner or
		/// curator are dropped: they do not count (and count again if the reviewer returns, as
		/// the stored votes are only rewritten by the next vote or decision).
		fn pending_contribution(
			contribution_id: ContributionId,
		) -> Result<(ContributionInfo<T>, DatanetInfo<T>), DispatchError> {
			let mut contribution =
				Contributions::<T>::get(contribution_id).ok_or(Error::<T>::ContributionNotFound)?;
			ensure!(contribution.status == ContributionStatus::Pending, Error::<T>::NotPending);
			let datanet =
				Datanets::<T>::get(contribution.datanet_id).ok_or(Error::<T>::DatanetNotFound)?;
			contribution.votes.retain(|(voter, _)| datanet.may_review(voter));
			Ok((contribution, datanet))
		}

		/// Counts the votes of a pending contribution against its datanet's quorum and accepts
		/// or rejects it when they decide; otherwise stores the votes. Writes the datanet back
		/// when its pending count changed.
		fn decide(
			contribution_id: ContributionId,
			contribution: ContributionInfo<T>,
			datanet: &mut DatanetInfo<T>,
		) -> Result<Outcome, DispatchError> {
			let datanet_id = contribution.datanet_id;
			let quorum = datanet.effective_quorum();
			let approvals: Vec<u8> = contribution
				.votes
				.iter()
				.filter(|(_, v)| v.verdict == Verdict::Approve)
				.map(|(_, v)| v.quality)
				.collect();
			let rejections = (contribution.votes.len() as u32).saturating_sub(approvals.len() as u32);

			if approvals.len() as u32 >= quorum {
				Self::accept(contribution_id, contribution, datanet, &approvals)?;
				Datanets::<T>::insert(datanet_id, &*datanet);
				Ok(Outcome::Accepted)
			} else if rejections > datanet.electorate().saturating_sub(quorum) {
				Self::reject(contribution_id, contribution, datanet);
				Datanets::<T>::insert(datanet_id, &*datanet);
				Ok(Outcome::Rejected)
			} else {
				Contributions::<T>::insert(contribution_id, contribution);
				Ok(Outcome::Pending)
			}
		}

		fn accept(
			contribution_id: ContributionId,
			mut contribution: ContributionInfo<T>,
			datanet: &mut DatanetInfo<T>,
			approval_qualities: &[u8],
		) -> DispatchResult {
			let datanet_id = contribution.datanet_id;
			Unpublished::<T>::try_mutate(datanet_id, |list| list.try_push(contribution_id))
				.map_err(|_| Error::<T>::UnpublishedFull)?;
			let sum: u32 = approval_qualities.iter().map(|q| *q as u32).sum();
			let quality = (sum / (approval_qualities.len().max(1) as u32)) as u8;

			Self::release(
				&HoldReason::ContributionDeposit,
				&contribution.contributor,
				contribution.deposit,
			);
			let gain = T::ReputationReward::get().saturating_mul(quality as u32) / 100;
			let reputation = Self::reputation(&contribution.contributor)
				.saturating_add(gain)
				.min(T::MaxReputation::get());
			Reputation::<T>::insert(&contribution.contributor, reputation);

			datanet.pending.saturating_dec();
			contribution.status = ContributionStatus::Accepted { quality };
			contribution.deposit = Default::default();
			contribution.votes = BoundedVec::new();
			Contributions::<T>::insert(contribution_id, contribution);
			Self::deposit_event(Event::ContributionAccepted {
				contribution_id,
				datanet_id,
				quality,
				reputation,
			});
			Ok(())
		}

		fn reject(
			contribution_id: ContributionId,
			contribution: ContributionInfo<T>,
			datanet: &mut DatanetInfo<T>,
		) {
			let who = &contribution.contributor;
			let reason = HoldReason::ContributionDeposit.into();
			let share = T::RejectionSlash::get() * contribution.deposit;
			// If the treasury cannot receive (it does not exist and the share is below the
			// existential deposit) the contributor keeps the share rather than the contribution
			// staying undecidable.
			let slashed = T::Currency::transfer_on_hold(
				&reason,
				who,
				&T::Slashed::get(),
				share,
				Precision::Exact,
				Restriction::Free,
				Fortitude::Force,
			)
			.unwrap_or_default();
			Self::release(
				&HoldReason::ContributionDeposit,
				who,
				contribution.deposit.saturating_sub(slashed),
			);
			let reputation =
				Self::reputation(who).saturating_sub(T::ReputationPenalty::get());
			Reputation::<T>::insert(who, reputation);
			datanet.pending.saturating_dec();
			Self::forget(contribution_id, &contribution);
			Self::deposit_event(Event::ContributionRejected {
				contribution_id,
				datanet_id: contribution.datanet_id,
				content_hash: contribution.content_hash,
				slashed,
				reputation,
			});
		}

		/// Removes a rejected or withdrawn contribution; its file may then be contributed again.
		fn forget(contribution_id: ContributionId, contribution: &ContributionInfo<T>) {
			Contributions::<T>::remove(contribution_id);
			ContributionsByContent::<T>::remove(contribution.content_hash, contribution.datanet_id);
		}
	}
}

//! What other pallets read from datanets: the model registry checks a model's lineage, the
//! attribution pallet checks that a receipt pays only contributions of that lineage.

use crate::{
	Config, ContributionId, ContributionPolicy, ContributionStatus, Contributions, DatanetId,
	Datanets, Pallet, PublishedIn, Versions, VersionNumber,
};

/// An accepted contribution that a published version contains.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PublishedContribution<AccountId> {
	pub contributor: AccountId,
	pub datanet_id: DatanetId,
	/// The version that published it; versions after it contain it too.
	pub version: VersionNumber,
}

pub trait DatanetsInspect<AccountId> {
	/// Whether `version` of `datanet_id` has been published.
	fn is_published(datanet_id: DatanetId, version: VersionNumber) -> bool;

	/// The owner of the datanet and whether it takes contributions only from an allow-list
	/// (a permissioned datanet: training on it needs the owner's approval).
	fn owner(datanet_id: DatanetId) -> Option<(AccountId, bool)>;

	/// The contribution, if it is accepted and published.
	fn published_contribution(id: ContributionId) -> Option<PublishedContribution<AccountId>>;

	/// Creates a datanet owned by `owner` with one published version of `contributions`
	/// contributions by `contributor`, for other pallets' benchmarks.
	#[cfg(feature = "runtime-benchmarks")]
	fn publish_for_benchmark(
		owner: AccountId,
		contributor: AccountId,
		contributions: u32,
		permissioned: bool,
	) -> (DatanetId, VersionNumber, alloc::vec::Vec<ContributionId>);
}

impl<T: Config> DatanetsInspect<T::AccountId> for Pallet<T> {
	fn is_published(datanet_id: DatanetId, version: VersionNumber) -> bool {
		Versions::<T>::contains_key(datanet_id, version)
	}

	fn owner(datanet_id: DatanetId) -> Option<(T::AccountId, bool)> {
		Datanets::<T>::get(datanet_id)
			.map(|d| (d.owner, d.policy == ContributionPolicy::AllowList))
	}

	fn published_contribution(id: ContributionId) -> Option<PublishedContribution<T::AccountId>> {
		let version = PublishedIn::<T>::get(id)?;
		let contribution = Contributions::<T>::get(id)?;
		matches!(contribution.status, ContributionStatus::Accepted { .. }).then(|| {
			PublishedContribution {
				contributor: contribution.contributor,
				datanet_id: contribution.datanet_id,
				version,
			}
		})
	}

	#[cfg(feature = "runtime-benchmarks")]
	fn publish_for_benchmark(
		owner: T::AccountId,
		contributor: T::AccountId,
		contributions: u32,
		permissioned: bool,
	) -> (DatanetId, VersionNumber, alloc::vec::Vec<ContributionId>) {
		use crate::*;
		use frame_support::BoundedVec;
		use frame_system::RawOrigin;
		use sp_core::H256;

		let datanet_id = NextDatanetId::<T>::get();
		let metadata = DatanetMetadata::<T> {
			name: BoundedVec::truncate_from(b"bench".to_vec()),
			description: BoundedVec::new(),
			tags: BoundedVec::new(),
			license: BoundedVec::new(),
		};
		let policy =
			if permissioned { ContributionPolicy::AllowList } else { ContributionPolicy::Open };
		let signed = |who: &T::AccountId| RawOrigin::Signed(who.clone());
		Pallet::<T>::create_datanet(signed(&owner).into(), metadata, policy)
			.expect("a funded owner creates a datanet");
		if permissioned {
			Pallet::<T>::set_contributor_allowed(
				signed(&owner).into(),
				datanet_id,
				contributor.clone(),
				true,
			)
			.expect("the owner allows the contributor");
		}
		let mut ids = alloc::vec::Vec::new();
		for i in 0..contributions {
			let id = NextContributionId::<T>::get();
			let mut hash = [0u8; 32];
			hash[..4].copy_from_slice(&i.to_le_bytes());
			hash[4..8].copy_from_slice(&datanet_id.to_le_bytes());
			Pallet::<T>::contribute(
				signed(&contributor).into(),
				datanet_id,
				H256(hash),
				1,
				BoundedVec::new(),
			)
			.expect("a funded contributor contributes");
			Pallet::<T>::review(signed(&owner).into(), id, Verdict::Approve, 100)
				.expect("the owner alone is a quorum");
			ids.push(id);
		}
		Pallet::<T>::publish_version(signed(&owner).into(), datanet_id)
			.expect("accepted contributions publish");
		(datanet_id, 1, ids)
	}
}

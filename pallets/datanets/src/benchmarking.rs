//! Benchmarks for `pallet_datanets`: each call in its most expensive case (largest metadata,
//! fullest curator list and vote list, longest version).

use super::*;
use alloc::{vec, vec::Vec};
use frame_benchmarking::v2::*;
use frame_support::{
	traits::{
		fungible::{Inspect, Mutate},
		Get,
	},
	BoundedVec,
};
use frame_system::RawOrigin;
use sp_core::H256;
use sp_runtime::traits::Bounded;

fn funded<T: Config>(name: &'static str, index: u32) -> T::AccountId {
	let who: T::AccountId = account(name, index, 0);
	// Enough for every deposit a benchmark takes, without approaching the issuance limit.
	let amount = BalanceOf::<T>::max_value() / 1_000_000u32.into();
	T::Currency::set_balance(&who, amount);
	who
}

fn full<S: Get<u32>>(byte: u8) -> BoundedVec<u8, S> {
	BoundedVec::truncate_from(vec![byte; S::get() as usize])
}

fn largest_metadata<T: Config>() -> DatanetMetadata<T> {
	DatanetMetadata {
		name: full(b'n'),
		description: full(b'd'),
		tags: BoundedVec::truncate_from(vec![full(b't'); T::MaxTags::get() as usize]),
		license: full(b'l'),
	}
}

fn small_metadata<T: Config>() -> DatanetMetadata<T> {
	DatanetMetadata {
		name: BoundedVec::truncate_from(b"d".to_vec()),
		description: BoundedVec::new(),
		tags: BoundedVec::new(),
		license: BoundedVec::new(),
	}
}

fn create<T: Config>(owner: &T::AccountId, policy: ContributionPolicy) -> DatanetId {
	let id = NextDatanetId::<T>::get();
	Pallet::<T>::create_datanet(RawOrigin::Signed(owner.clone()).into(), small_metadata::<T>(), policy)
		.expect("a funded owner creates a datanet");
	id
}

/// Adds `count` curators and returns them.
fn add_curators<T: Config>(owner: &T::AccountId, datanet: DatanetId, count: u32) -> Vec<T::AccountId> {
	(0..count)
		.map(|i| {
			let curator: T::AccountId = account("curator", i, 0);
			Pallet::<T>::add_curator(RawOrigin::Signed(owner.clone()).into(), datanet, curator.clone())
				.expect("below MaxCurators");
			curator
		})
		.collect()
}

fn hash(index: u32) -> H256 {
	// `from_low_u64_be` needs `std`; the benchmarks also run in the wasm runtime.
	let mut bytes = [0xffu8; 32];
	bytes[..4].copy_from_slice(&index.to_be_bytes());
	H256(bytes)
}

fn submit_contribution<T: Config>(who: &T::AccountId, datanet: DatanetId, index: u32) -> ContributionId {
	let id = NextContributionId::<T>::get();
	Pallet::<T>::contribute(
		RawOrigin::Signed(who.clone()).into(),
		datanet,
		hash(index),
		T::MaxContributionSize::get(),
		full(b'm'),
	)
	.expect("a funded contributor contributes new content");
	id
}

/// A datanet with `MaxCurators` curators whose quorum is everyone: every approval but the last
/// leaves the contribution pending, and any rejection decides it.
fn unanimous_datanet<T: Config>() -> (T::AccountId, DatanetId, Vec<T::AccountId>) {
	let owner = funded::<T>("owner", 0);
	let datanet = create::<T>(&owner, ContributionPolicy::Open);
	let curators = add_curators::<T>(&owner, datanet, T::MaxCurators::get());
	Pallet::<T>::set_quorum(
		RawOrigin::Signed(owner.clone()).into(),
		datanet,
		Some(T::MaxCurators::get() + 1),
	)
	.expect("the electorate is MaxCurators + 1");
	T::Currency::set_balance(&T::Slashed::get(), T::Currency::minimum_balance());
	(owner, datanet, curators)
}

fn approve<T: Config>(voter: &T::AccountId, contribution: ContributionId) {
	Pallet::<T>::review(RawOrigin::Signed(voter.clone()).into(), contribution, Verdict::Approve, 80)
		.expect("a reviewer votes once on a pending contribution");
}

/// Fills the datanet's unpublished list up to one below its bound with accepted contributions.
fn fill_unpublished<T: Config>(datanet: DatanetId, count: u32) {
	let contributor: T::AccountId = account("filler", 0, 0);
	let mut list = Unpublished::<T>::get(datanet);
	for i in 0..count {
		let id = NextContributionId::<T>::get();
		NextContributionId::<T>::put(id + 1);
		Contributions::<T>::insert(
			id,
			ContributionInfo {
				datanet_id: datanet,
				contributor: contributor.clone(),
				content_hash: hash(1_000_000 + i),
				size: T::MaxContributionSize::get(),
				metadata: BoundedVec::new(),
				deposit: Default::default(),
				status: ContributionStatus::Accepted { quality: 80 },
				votes: BoundedVec::new(),
				submitted_at: frame_system::Pallet::<T>::block_number(),
			},
		);
		list.try_push(id).expect("count is below MaxContributionsPerVersion");
	}
	Unpublished::<T>::insert(datanet, list);
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn create_datanet() {
		let owner = funded::<T>("owner", 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(owner.clone()), largest_metadata::<T>(), ContributionPolicy::AllowList);
		assert!(Datanets::<T>::get(0).is_some());
	}

	#[benchmark]
	fn update_datanet() {
		let owner = funded::<T>("owner", 0);
		let datanet = create::<T>(&owner, ContributionPolicy::Open);
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), datanet, largest_metadata::<T>(), ContributionPolicy::AllowList);
		assert_eq!(Datanets::<T>::get(datanet).map(|d| d.policy), Some(ContributionPolicy::AllowList));
	}

	#[benchmark]
	fn set_contributor_allowed() {
		let owner = funded::<T>("owner", 0);
		let datanet = create::<T>(&owner, ContributionPolicy::AllowList);
		let who: T::AccountId = account("contributor", 0, 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), datanet, who.clone(), true);
		assert!(AllowedContributors::<T>::contains_key(datanet, who));
	}

	#[benchmark]
	fn add_curator() {
		let owner = funded::<T>("owner", 0);
		let datanet = create::<T>(&owner, ContributionPolicy::Open);
		add_curators::<T>(&owner, datanet, T::MaxCurators::get() - 1);
		let curator: T::AccountId = account("new curator", 0, 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), datanet, curator.clone());
		assert!(Datanets::<T>::get(datanet).is_some_and(|d| d.curators.contains(&curator)));
	}

	#[benchmark]
	fn remove_curator() {
		let owner = funded::<T>("owner", 0);
		let datanet = create::<T>(&owner, ContributionPolicy::Open);
		let curators = add_curators::<T>(&owner, datanet, T::MaxCurators::get());
		let last = curators.last().cloned().expect("MaxCurators > 0");
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), datanet, last.clone());
		assert!(Datanets::<T>::get(datanet).is_some_and(|d| !d.curators.contains(&last)));
	}

	#[benchmark]
	fn set_quorum() {
		let owner = funded::<T>("owner", 0);
		let datanet = create::<T>(&owner, ContributionPolicy::Open);
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), datanet, Some(1));
		assert_eq!(Datanets::<T>::get(datanet).and_then(|d| d.quorum), Some(1));
	}

	#[benchmark]
	fn contribute() {
		let owner = funded::<T>("owner", 0);
		let datanet = create::<T>(&owner, ContributionPolicy::AllowList);
		let contributor = funded::<T>("contributor", 0);
		Pallet::<T>::set_contributor_allowed(
			RawOrigin::Signed(owner).into(),
			datanet,
			contributor.clone(),
			true,
		)
		.expect("an allow-list datanet");
		for i in 1..T::MaxPendingContributions::get() {
			submit_contribution::<T>(&contributor, datanet, i);
		}
		#[extrinsic_call]
		_(RawOrigin::Signed(contributor), datanet, hash(0), T::MaxContributionSize::get(), full(b'm'));
		assert!(ContributionsByContent::<T>::contains_key(hash(0), datanet));
	}

	#[benchmark]
	fn review_vote() {
		let (_, datanet, curators) = unanimous_datanet::<T>();
		let contributor = funded::<T>("contributor", 0);
		let id = submit_contribution::<T>(&contributor, datanet, 0);
		let (last, earlier) = curators.split_last().expect("MaxCurators > 0");
		earlier.iter().for_each(|c| approve::<T>(c, id));
		#[extrinsic_call]
		review(RawOrigin::Signed(last.clone()), id, Verdict::Approve, 80);
		assert_eq!(Contributions::<T>::get(id).map(|c| c.status), Some(ContributionStatus::Pending));
	}

	#[benchmark]
	fn review_accept() {
		let (owner, datanet, curators) = unanimous_datanet::<T>();
		let contributor = funded::<T>("contributor", 0);
		let id = submit_contribution::<T>(&contributor, datanet, 0);
		curators.iter().for_each(|c| approve::<T>(c, id));
		fill_unpublished::<T>(datanet, T::MaxContributionsPerVersion::get() - 1);
		#[extrinsic_call]
		review(RawOrigin::Signed(owner), id, Verdict::Approve, 80);
		assert_eq!(
			Contributions::<T>::get(id).map(|c| c.status),
			Some(ContributionStatus::Accepted { quality: 80 })
		);
	}

	#[benchmark]
	fn review_reject() {
		let (owner, datanet, curators) = unanimous_datanet::<T>();
		let contributor = funded::<T>("contributor", 0);
		let id = submit_contribution::<T>(&contributor, datanet, 0);
		curators.iter().for_each(|c| approve::<T>(c, id));
		#[extrinsic_call]
		review(RawOrigin::Signed(owner), id, Verdict::Reject, 0);
		assert!(Contributions::<T>::get(id).is_none());
	}

	#[benchmark]
	fn withdraw() {
		let owner = funded::<T>("owner", 0);
		let datanet = create::<T>(&owner, ContributionPolicy::Open);
		let contributor = funded::<T>("contributor", 0);
		let id = submit_contribution::<T>(&contributor, datanet, 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(contributor), id);
		assert!(Contributions::<T>::get(id).is_none());
	}

	#[benchmark]
	fn publish_version(n: Linear<1, { T::MaxContributionsPerVersion::get() }>) {
		let owner = funded::<T>("owner", 0);
		let datanet = create::<T>(&owner, ContributionPolicy::Open);
		fill_unpublished::<T>(datanet, n);
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), datanet);
		assert_eq!(Versions::<T>::get(datanet, 1).map(|v| v.count), Some(n));
	}

	#[benchmark]
	fn transfer_ownership() {
		let owner = funded::<T>("owner", 0);
		let datanet = create::<T>(&owner, ContributionPolicy::Open);
		let new_owner: T::AccountId = account("new owner", 0, 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), datanet, Some(new_owner.clone()));
		assert_eq!(Datanets::<T>::get(datanet).and_then(|d| d.pending_owner), Some(new_owner));
	}

	#[benchmark]
	fn accept_ownership() {
		let owner = funded::<T>("owner", 0);
		let datanet = create::<T>(&owner, ContributionPolicy::Open);
		let curators = add_curators::<T>(&owner, datanet, T::MaxCurators::get());
		// Worst case: the new owner is the last curator and leaves the curator list.
		let new_owner = curators.last().cloned().expect("MaxCurators > 0");
		T::Currency::set_balance(&new_owner, BalanceOf::<T>::max_value() / 1_000_000u32.into());
		Pallet::<T>::transfer_ownership(
			RawOrigin::Signed(owner).into(),
			datanet,
			Some(new_owner.clone()),
		)
		.expect("the owner proposes");
		#[extrinsic_call]
		_(RawOrigin::Signed(new_owner.clone()), datanet);
		assert_eq!(Datanets::<T>::get(datanet).map(|d| d.owner), Some(new_owner));
	}

	#[benchmark]
	fn archive() {
		let owner = funded::<T>("owner", 0);
		let datanet = create::<T>(&owner, ContributionPolicy::Open);
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), datanet);
		assert_eq!(Datanets::<T>::get(datanet).map(|d| d.status), Some(DatanetStatus::Archived));
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}

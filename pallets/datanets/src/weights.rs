//! Weights for `pallet_datanets`: provisional, replaced by `scripts/benchmark-pallets.sh`.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::RocksDbWeight}};
use core::marker::PhantomData;

pub trait WeightInfo {
	fn create_datanet() -> Weight;
	fn update_datanet() -> Weight;
	fn set_contributor_allowed() -> Weight;
	fn add_curator() -> Weight;
	fn remove_curator() -> Weight;
	fn set_quorum() -> Weight;
	fn contribute() -> Weight;
	fn review_vote() -> Weight;
	fn review_accept() -> Weight;
	fn review_reject() -> Weight;
	fn withdraw() -> Weight;
	fn publish_version(n: u32, ) -> Weight;
	fn transfer_ownership() -> Weight;
	fn accept_ownership() -> Weight;
	fn archive() -> Weight;
}

pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn create_datanet() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(T::DbWeight::get().reads(4)).saturating_add(T::DbWeight::get().writes(4))
	}
	fn update_datanet() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(T::DbWeight::get().reads(4)).saturating_add(T::DbWeight::get().writes(4))
	}
	fn set_contributor_allowed() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(T::DbWeight::get().reads(4)).saturating_add(T::DbWeight::get().writes(4))
	}
	fn add_curator() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(T::DbWeight::get().reads(4)).saturating_add(T::DbWeight::get().writes(4))
	}
	fn remove_curator() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(T::DbWeight::get().reads(4)).saturating_add(T::DbWeight::get().writes(4))
	}
	fn set_quorum() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(T::DbWeight::get().reads(4)).saturating_add(T::DbWeight::get().writes(4))
	}
	fn contribute() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(T::DbWeight::get().reads(4)).saturating_add(T::DbWeight::get().writes(4))
	}
	fn review_vote() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(T::DbWeight::get().reads(4)).saturating_add(T::DbWeight::get().writes(4))
	}
	fn review_accept() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(T::DbWeight::get().reads(4)).saturating_add(T::DbWeight::get().writes(4))
	}
	fn review_reject() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(T::DbWeight::get().reads(4)).saturating_add(T::DbWeight::get().writes(4))
	}
	fn withdraw() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(T::DbWeight::get().reads(4)).saturating_add(T::DbWeight::get().writes(4))
	}
	fn publish_version(n: u32, ) -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(Weight::from_parts(5_000_000, 3_000).saturating_mul(n.into())).saturating_add(T::DbWeight::get().reads(3)).saturating_add(T::DbWeight::get().writes(3)).saturating_add(T::DbWeight::get().reads(n.into()))
	}
	fn transfer_ownership() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(T::DbWeight::get().reads(4)).saturating_add(T::DbWeight::get().writes(4))
	}
	fn accept_ownership() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(T::DbWeight::get().reads(4)).saturating_add(T::DbWeight::get().writes(4))
	}
	fn archive() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(T::DbWeight::get().reads(4)).saturating_add(T::DbWeight::get().writes(4))
	}
}

impl WeightInfo for () {
	fn create_datanet() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(RocksDbWeight::get().reads(4)).saturating_add(RocksDbWeight::get().writes(4))
	}
	fn update_datanet() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(RocksDbWeight::get().reads(4)).saturating_add(RocksDbWeight::get().writes(4))
	}
	fn set_contributor_allowed() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(RocksDbWeight::get().reads(4)).saturating_add(RocksDbWeight::get().writes(4))
	}
	fn add_curator() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(RocksDbWeight::get().reads(4)).saturating_add(RocksDbWeight::get().writes(4))
	}
	fn remove_curator() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(RocksDbWeight::get().reads(4)).saturating_add(RocksDbWeight::get().writes(4))
	}
	fn set_quorum() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(RocksDbWeight::get().reads(4)).saturating_add(RocksDbWeight::get().writes(4))
	}
	fn contribute() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(RocksDbWeight::get().reads(4)).saturating_add(RocksDbWeight::get().writes(4))
	}
	fn review_vote() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(RocksDbWeight::get().reads(4)).saturating_add(RocksDbWeight::get().writes(4))
	}
	fn review_accept() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(RocksDbWeight::get().reads(4)).saturating_add(RocksDbWeight::get().writes(4))
	}
	fn review_reject() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(RocksDbWeight::get().reads(4)).saturating_add(RocksDbWeight::get().writes(4))
	}
	fn withdraw() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(RocksDbWeight::get().reads(4)).saturating_add(RocksDbWeight::get().writes(4))
	}
	fn publish_version(n: u32, ) -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(Weight::from_parts(5_000_000, 3_000).saturating_mul(n.into())).saturating_add(RocksDbWeight::get().reads(3)).saturating_add(RocksDbWeight::get().writes(3)).saturating_add(RocksDbWeight::get().reads(n.into()))
	}
	fn transfer_ownership() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(RocksDbWeight::get().reads(4)).saturating_add(RocksDbWeight::get().writes(4))
	}
	fn accept_ownership() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(RocksDbWeight::get().reads(4)).saturating_add(RocksDbWeight::get().writes(4))
	}
	fn archive() -> Weight {
		Weight::from_parts(50_000_000, 10_000).saturating_add(RocksDbWeight::get().reads(4)).saturating_add(RocksDbWeight::get().writes(4))
	}
}

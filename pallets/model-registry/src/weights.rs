//! Weights for `pallet_model_registry`. Placeholder until `scripts/benchmark-pallets.sh
//! model-registry` regenerates this file from measurements.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::ParityDbWeight}};
use core::marker::PhantomData;

/// Weight functions needed for `pallet_model_registry`.
pub trait WeightInfo {
	fn add_base_model() -> Weight;
	fn register_model(n: u32, ) -> Weight;
	fn set_prices() -> Weight;
	fn set_status() -> Weight;
	fn report_eval() -> Weight;
	fn approve_training() -> Weight;
	fn set_quality_gate() -> Weight;
}

pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn add_base_model() -> Weight { Weight::from_parts(50_000_000, 3_000).saturating_add(T::DbWeight::get().reads_writes(2, 3)) }
	fn register_model(n: u32, ) -> Weight { Weight::from_parts(100_000_000, 6_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(n.into())).saturating_add(T::DbWeight::get().reads_writes(6, 5)) }
	fn set_prices() -> Weight { Weight::from_parts(50_000_000, 3_000).saturating_add(T::DbWeight::get().reads_writes(1, 1)) }
	fn set_status() -> Weight { Weight::from_parts(50_000_000, 3_000).saturating_add(T::DbWeight::get().reads_writes(1, 1)) }
	fn report_eval() -> Weight { Weight::from_parts(50_000_000, 3_000).saturating_add(T::DbWeight::get().reads_writes(2, 1)) }
	fn approve_training() -> Weight { Weight::from_parts(80_000_000, 6_000).saturating_add(T::DbWeight::get().reads_writes(4, 3)) }
	fn set_quality_gate() -> Weight { Weight::from_parts(20_000_000, 0).saturating_add(T::DbWeight::get().writes(1)) }
}

impl WeightInfo for () {
	fn add_base_model() -> Weight { Weight::from_parts(50_000_000, 3_000).saturating_add(ParityDbWeight::get().reads_writes(2, 3)) }
	fn register_model(n: u32, ) -> Weight { Weight::from_parts(100_000_000, 6_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(n.into())).saturating_add(ParityDbWeight::get().reads_writes(6, 5)) }
	fn set_prices() -> Weight { Weight::from_parts(50_000_000, 3_000).saturating_add(ParityDbWeight::get().reads_writes(1, 1)) }
	fn set_status() -> Weight { Weight::from_parts(50_000_000, 3_000).saturating_add(ParityDbWeight::get().reads_writes(1, 1)) }
	fn report_eval() -> Weight { Weight::from_parts(50_000_000, 3_000).saturating_add(ParityDbWeight::get().reads_writes(2, 1)) }
	fn approve_training() -> Weight { Weight::from_parts(80_000_000, 6_000).saturating_add(ParityDbWeight::get().reads_writes(4, 3)) }
	fn set_quality_gate() -> Weight { Weight::from_parts(20_000_000, 0).saturating_add(ParityDbWeight::get().writes(1)) }
}

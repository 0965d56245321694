//! Weights for `pallet_attribution`. Placeholder until `scripts/benchmark-pallets.sh
//! attribution` regenerates this file from measurements.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::ParityDbWeight}};
use core::marker::PhantomData;

/// Weight functions needed for `pallet_attribution`.
pub trait WeightInfo {
	fn register_operator(n: u32, ) -> Weight;
	fn set_operator_models(o: u32, n: u32, ) -> Weight;
	fn unbond(n: u32, ) -> Weight;
	fn withdraw_bond() -> Weight;
	fn request_inference(p: u32, ) -> Weight;
	fn submit_receipt(k: u32, ) -> Weight;
	fn authorize_submit_receipt(k: u32, ) -> Weight;
	fn refund() -> Weight;
	fn claim_rewards() -> Weight;
	fn set_fee_split() -> Weight;
	fn challenge(k: u32, v: u32, ) -> Weight;
	fn vote(v: u32, ) -> Weight;
	fn authorize_vote(v: u32, ) -> Weight;
	fn resolve_dispute(k: u32, ) -> Weight;
	fn release_rewards(k: u32, ) -> Weight;
	fn set_dispute_params() -> Weight;
	fn release_batch_rewards(c: u32, ) -> Weight;
	fn deposit_credit() -> Weight;
	fn unlock_credit() -> Weight;
	fn withdraw_credit() -> Weight;
	fn submit_receipt_batch(p: u32, c: u32, ) -> Weight;
	fn authorize_submit_receipt_batch(p: u32, c: u32, ) -> Weight;
}

pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn register_operator(n: u32, ) -> Weight { Weight::from_parts(100_000_000, 6_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(n.into())).saturating_add(T::DbWeight::get().reads_writes(4, 4)).saturating_add(T::DbWeight::get().reads_writes(2, 1).saturating_mul(n.into())) }
	fn set_operator_models(o: u32, n: u32, ) -> Weight { Weight::from_parts(50_000_000, 3_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul((o + n).into())).saturating_add(T::DbWeight::get().reads_writes(1, 1)).saturating_add(T::DbWeight::get().reads_writes(2, 1).saturating_mul((o + n).into())) }
	fn unbond(n: u32, ) -> Weight { Weight::from_parts(50_000_000, 3_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(n.into())).saturating_add(T::DbWeight::get().reads_writes(1, 1)).saturating_add(T::DbWeight::get().reads_writes(1, 1).saturating_mul(n.into())) }
	fn withdraw_bond() -> Weight { Weight::from_parts(80_000_000, 6_000).saturating_add(T::DbWeight::get().reads_writes(4, 4)) }
	fn request_inference(p: u32, ) -> Weight { Weight::from_parts(120_000_000, 8_000).saturating_add(Weight::from_parts(2_000, 0).saturating_mul(p.into())).saturating_add(T::DbWeight::get().reads_writes(6, 5)) }
	fn submit_receipt(k: u32, ) -> Weight { Weight::from_parts(400_000_000, 12_000).saturating_add(Weight::from_parts(40_000_000, 6_000).saturating_mul(k.into())).saturating_add(T::DbWeight::get().reads_writes(12, 10)).saturating_add(T::DbWeight::get().reads_writes(3, 1).saturating_mul(k.into())) }
	fn authorize_submit_receipt(k: u32, ) -> Weight { Weight::from_parts(200_000_000, 12_000).saturating_add(Weight::from_parts(20_000_000, 6_000).saturating_mul(k.into())).saturating_add(T::DbWeight::get().reads(6)).saturating_add(T::DbWeight::get().reads(2).saturating_mul(k.into())) }
	fn refund() -> Weight { Weight::from_parts(80_000_000, 6_000).saturating_add(T::DbWeight::get().reads_writes(3, 4)) }
	fn claim_rewards() -> Weight { Weight::from_parts(80_000_000, 6_000).saturating_add(T::DbWeight::get().reads_writes(3, 3)) }
	fn set_fee_split() -> Weight { Weight::from_parts(20_000_000, 0).saturating_add(T::DbWeight::get().writes(1)) }
	fn challenge(k: u32, v: u32, ) -> Weight { Weight::from_parts(150_000_000, 12_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul((k + v).into())).saturating_add(T::DbWeight::get().reads_writes(8, 5)).saturating_add(T::DbWeight::get().reads(2).saturating_mul((k + v).into())) }
	fn vote(v: u32, ) -> Weight { Weight::from_parts(150_000_000, 12_000).saturating_add(Weight::from_parts(2_000_000, 0).saturating_mul(v.into())).saturating_add(T::DbWeight::get().reads_writes(3, 1)) }
	fn authorize_vote(v: u32, ) -> Weight { Weight::from_parts(120_000_000, 12_000).saturating_add(Weight::from_parts(2_000_000, 0).saturating_mul(v.into())).saturating_add(T::DbWeight::get().reads(3)) }
	fn resolve_dispute(k: u32, ) -> Weight { Weight::from_parts(200_000_000, 12_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(k.into())).saturating_add(T::DbWeight::get().reads_writes(8, 8)).saturating_add(T::DbWeight::get().reads_writes(1, 1).saturating_mul(k.into())) }
	fn release_rewards(k: u32, ) -> Weight { Weight::from_parts(80_000_000, 6_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(k.into())).saturating_add(T::DbWeight::get().reads_writes(4, 3)).saturating_add(T::DbWeight::get().reads_writes(1, 1).saturating_mul(k.into())) }
	fn set_dispute_params() -> Weight { Weight::from_parts(20_000_000, 0).saturating_add(T::DbWeight::get().writes(1)) }
	fn release_batch_rewards(c: u32, ) -> Weight { Weight::from_parts(80_000_000, 6_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(c.into())).saturating_add(T::DbWeight::get().reads_writes(3, 3)).saturating_add(T::DbWeight::get().reads_writes(1, 1).saturating_mul(c.into())) }
	fn deposit_credit() -> Weight { Weight::from_parts(60_000_000, 4_000).saturating_add(T::DbWeight::get().reads_writes(2, 2)) }
	fn unlock_credit() -> Weight { Weight::from_parts(40_000_000, 4_000).saturating_add(T::DbWeight::get().reads_writes(2, 1)) }
	fn withdraw_credit() -> Weight { Weight::from_parts(60_000_000, 4_000).saturating_add(T::DbWeight::get().reads_writes(3, 3)) }
	fn submit_receipt_batch(p: u32, c: u32, ) -> Weight { Weight::from_parts(300_000_000, 12_000).saturating_add(Weight::from_parts(60_000_000, 6_000).saturating_mul(p.into())).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(c.into())).saturating_add(T::DbWeight::get().reads_writes(12, 10)).saturating_add(T::DbWeight::get().reads_writes(2, 2).saturating_mul(p.into())).saturating_add(T::DbWeight::get().reads(2).saturating_mul(c.into())) }
	fn authorize_submit_receipt_batch(p: u32, c: u32, ) -> Weight { Weight::from_parts(150_000_000, 12_000).saturating_add(Weight::from_parts(10_000_000, 3_000).saturating_mul(p.into())).saturating_add(Weight::from_parts(10_000_000, 3_000).saturating_mul(c.into())).saturating_add(T::DbWeight::get().reads(6)).saturating_add(T::DbWeight::get().reads(1).saturating_mul((p + 2 * c).into())) }
}

impl WeightInfo for () {
	fn register_operator(n: u32, ) -> Weight { Weight::from_parts(100_000_000, 6_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(n.into())) }
	fn set_operator_models(o: u32, n: u32, ) -> Weight { Weight::from_parts(50_000_000, 3_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul((o + n).into())) }
	fn unbond(n: u32, ) -> Weight { Weight::from_parts(50_000_000, 3_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(n.into())) }
	fn withdraw_bond() -> Weight { Weight::from_parts(80_000_000, 6_000) }
	fn request_inference(p: u32, ) -> Weight { Weight::from_parts(120_000_000, 8_000).saturating_add(Weight::from_parts(2_000, 0).saturating_mul(p.into())) }
	fn submit_receipt(k: u32, ) -> Weight { Weight::from_parts(400_000_000, 12_000).saturating_add(Weight::from_parts(40_000_000, 6_000).saturating_mul(k.into())) }
	fn authorize_submit_receipt(k: u32, ) -> Weight { Weight::from_parts(200_000_000, 12_000).saturating_add(Weight::from_parts(20_000_000, 6_000).saturating_mul(k.into())) }
	fn refund() -> Weight { Weight::from_parts(80_000_000, 6_000) }
	fn claim_rewards() -> Weight { Weight::from_parts(80_000_000, 6_000) }
	fn set_fee_split() -> Weight { Weight::from_parts(20_000_000, 0) }
	fn challenge(k: u32, v: u32, ) -> Weight { Weight::from_parts(150_000_000, 12_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul((k + v).into())) }
	fn vote(v: u32, ) -> Weight { Weight::from_parts(150_000_000, 12_000).saturating_add(Weight::from_parts(2_000_000, 0).saturating_mul(v.into())) }
	fn authorize_vote(v: u32, ) -> Weight { Weight::from_parts(120_000_000, 12_000).saturating_add(Weight::from_parts(2_000_000, 0).saturating_mul(v.into())) }
	fn resolve_dispute(k: u32, ) -> Weight { Weight::from_parts(200_000_000, 12_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(k.into())) }
	fn release_rewards(k: u32, ) -> Weight { Weight::from_parts(80_000_000, 6_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(k.into())) }
	fn set_dispute_params() -> Weight { Weight::from_parts(20_000_000, 0) }
	fn release_batch_rewards(c: u32, ) -> Weight { Weight::from_parts(80_000_000, 6_000).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(c.into())) }
	fn deposit_credit() -> Weight { Weight::from_parts(60_000_000, 4_000) }
	fn unlock_credit() -> Weight { Weight::from_parts(40_000_000, 4_000) }
	fn withdraw_credit() -> Weight { Weight::from_parts(60_000_000, 4_000) }
	fn submit_receipt_batch(p: u32, c: u32, ) -> Weight { Weight::from_parts(300_000_000, 12_000).saturating_add(Weight::from_parts(60_000_000, 6_000).saturating_mul(p.into())).saturating_add(Weight::from_parts(20_000_000, 3_000).saturating_mul(c.into())) }
	fn authorize_submit_receipt_batch(p: u32, c: u32, ) -> Weight { Weight::from_parts(150_000_000, 12_000).saturating_add(Weight::from_parts(10_000_000, 3_000).saturating_mul(p.into())).saturating_add(Weight::from_parts(10_000_000, 3_000).saturating_mul(c.into())) }
}

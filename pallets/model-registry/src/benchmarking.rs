//! Benchmarks for `pallet_model_registry`: each call in its most expensive case (longest names,
//! a full lineage of permissioned datanets under a quality gate).

use super::*;
use alloc::{vec, vec::Vec};
use frame_benchmarking::v2::*;
use frame_support::{
	traits::{fungible::Mutate, EnsureOrigin, Get},
	BoundedVec,
};
use frame_system::RawOrigin;
use pallet_datanets::DatanetsInspect;
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

fn hash(byte: u8) -> H256 {
	H256([byte; 32])
}

fn admin<T: Config>() -> Result<T::RuntimeOrigin, BenchmarkError> {
	T::AdminOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)
}

fn new_base_model<T: Config>() -> Result<BaseModelId, BenchmarkError> {
	let id = NextBaseModelId::<T>::get();
	Pallet::<T>::add_base_model(admin::<T>()?, hash(0xba), full(b'n'), full(b'a'), full(b'l'))?;
	Ok(id)
}

/// `count` permissioned datanets, each with a published version, whose owner approved `trainer`:
/// every lineage entry then takes the longest path through `register_model`'s checks.
fn approved_lineage<T: Config>(trainer: &T::AccountId, count: u32) -> Vec<LineageEntry> {
	let owner = funded::<T>("datanet owner", 0);
	let contributor = funded::<T>("contributor", 0);
	(0..count)
		.map(|_| {
			let (datanet, version, _) =
				T::Datanets::publish_for_benchmark(owner.clone(), contributor.clone(), 1, true);
			Pallet::<T>::approve_training(
				RawOrigin::Signed(owner.clone()).into(),
				datanet,
				trainer.clone(),
				true,
			)
			.expect("the owner of a permissioned datanet approves");
			(datanet, version)
		})
		.collect()
}

/// A registered model of `owner` on a fresh base model, with a one-datanet lineage.
fn registered<T: Config>(owner: &T::AccountId) -> Result<ModelId, BenchmarkError> {
	let base = new_base_model::<T>()?;
	let lineage = approved_lineage::<T>(owner, 1);
	let id = NextModelId::<T>::get();
	Pallet::<T>::register_model(
		RawOrigin::Signed(owner.clone()).into(),
		base,
		hash(0xad),
		BoundedVec::truncate_from(lineage),
		hash(0x3a),
		1u32.into(),
		1u32.into(),
		None,
	)?;
	Ok(id)
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn add_base_model() -> Result<(), BenchmarkError> {
		let origin = admin::<T>()?;
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, hash(0xba), full(b'n'), full(b'a'), full(b'l'));
		assert_eq!(BaseModelByHash::<T>::get(hash(0xba)), Some(0));
		Ok(())
	}

	#[benchmark]
	fn register_model(n: Linear<1, { T::MaxLineage::get() }>) -> Result<(), BenchmarkError> {
		let owner = funded::<T>("owner", 0);
		let base = new_base_model::<T>()?;
		let lineage = approved_lineage::<T>(&owner, n);
		QualityGate::<T>::put(50);
		let id = NextModelId::<T>::get();
		#[extrinsic_call]
		_(
			RawOrigin::Signed(owner),
			base,
			hash(0xad),
			BoundedVec::truncate_from(lineage),
			hash(0x3a),
			1u32.into(),
			1u32.into(),
			Some(EvalReport { score: 50, evidence: hash(0xe0) }),
		);
		assert_eq!(Models::<T>::get(id).map(|m| m.lineage.len() as u32), Some(n));
		Ok(())
	}

	#[benchmark]
	fn set_prices() -> Result<(), BenchmarkError> {
		let owner = funded::<T>("owner", 0);
		let id = registered::<T>(&owner)?;
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), id, 2u32.into(), 3u32.into());
		assert_eq!(Models::<T>::get(id).map(|m| m.price_out), Some(3u32.into()));
		Ok(())
	}

	#[benchmark]
	fn set_status() -> Result<(), BenchmarkError> {
		let owner = funded::<T>("owner", 0);
		let id = registered::<T>(&owner)?;
		// The owner's path is the longer one: it goes through the failed admin check first.
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), id, ModelStatus::Deprecated);
		assert_eq!(Models::<T>::get(id).map(|m| m.status), Some(ModelStatus::Deprecated));
		Ok(())
	}

	#[benchmark]
	fn report_eval() -> Result<(), BenchmarkError> {
		let owner = funded::<T>("owner", 0);
		let id = registered::<T>(&owner)?;
		QualityGate::<T>::put(50);
		let report = EvalReport { score: 50, evidence: hash(0xe0) };
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), id, report);
		assert_eq!(Models::<T>::get(id).and_then(|m| m.eval), Some(report));
		Ok(())
	}

	#[benchmark]
	fn approve_training() {
		let owner = funded::<T>("datanet owner", 0);
		let contributor = funded::<T>("contributor", 0);
		let (datanet, _, _) =
			T::Datanets::publish_for_benchmark(owner.clone(), contributor, 1, true);
		let trainer: T::AccountId = account("trainer", 0, 0);
		// Approving holds a deposit; revoking releases one with the same reads and writes.
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), datanet, trainer.clone(), true);
		assert!(TrainingApprovals::<T>::contains_key(datanet, trainer));
	}

	#[benchmark]
	fn set_quality_gate() -> Result<(), BenchmarkError> {
		let origin = admin::<T>()?;
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, Some(50));
		assert_eq!(QualityGate::<T>::get(), Some(50));
		Ok(())
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}

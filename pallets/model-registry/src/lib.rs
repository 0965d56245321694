//! # Model registry
//!
//! The chain's record of what is served and what it was trained on.
//!
//! - **Base models** (root, later governance): the foundation models adapters are trained on,
//!   named by the hash of their weights file as the OpenLoRA engine reports it.
//! - **Models**: LoRA adapters on a base model, named by the blake2-256 of their safetensors file.
//!   Each records its **lineage**, the `(datanet id, version)` pairs it was trained on (each must
//!   be published), the hash of ModelFactory's lineage manifest, its prices `R_in` and `R_out` per
//!   1,000 tokens, a status and a deposit. The attribution pallet pays contributors only from the
//!   lineage and charges requesters these prices.
//!
//! ## Permissioned datanets
//! A datanet that takes contributions only from an allow-list is permissioned: registering a
//! model with it in its lineage needs its owner's approval (`approve_training`), given to the
//! model owner's account before registration. Open datanets need none.
//!
//! ## Quality gate
//! Root may set a minimum evaluation score. Models registered (or re-reporting) while a gate is
//! set must carry an [`EvalReport`] at or above it; the evidence hash names the report (for
//! example `modelfactory eval`'s JSON) so anyone can check the claim. Root can suspend a model
//! whose report turns out to be false.
//!
//! ## Deposits
//! The owner holds `ModelDeposit + ByteDeposit ×` the encoded size of the lineage for a model,
//! and a datanet owner holds `ApprovalDeposit` per training approval; both come back when the
//! storage is freed. A model's record is never freed, because receipts point at it: a
//! deprecated model keeps its deposit held.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
mod types;
pub mod weights;

pub use pallet::*;
pub use types::*;
pub use weights::WeightInfo;

use frame_support::traits::fungible;

pub type BalanceOf<T> =
	<<T as Config>::Currency as fungible::Inspect<<T as frame_system::Config>::AccountId>>::Balance;

/// What the attribution pallet needs to know about a model to charge for it and pay its lineage.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ServedModel<AccountId, Balance> {
	pub owner: AccountId,
	pub adapter_hash: sp_core::H256,
	pub price_in: Balance,
	pub price_out: Balance,
	pub active: bool,
	pub lineage: alloc::vec::Vec<LineageEntry>,
}

impl<AccountId, Balance> ServedModel<AccountId, Balance> {
	/// Whether a contribution published in `version` of `datanet_id` is in the training data:
	/// a lineage entry covers versions 1 to its version.
	pub fn covers(&self, datanet_id: pallet_datanets::DatanetId, version: u32) -> bool {
		self.lineage.iter().any(|(d, v)| *d == datanet_id && version <= *v)
	}
}

pub trait ModelsInspect<AccountId, Balance> {
	fn served_model(model_id: ModelId) -> Option<ServedModel<AccountId, Balance>>;

	/// Registers an active model owned by `owner` with `lineage`, at the given prices, for other
	/// pallets' benchmarks.
	#[cfg(feature = "runtime-benchmarks")]
	fn register_for_benchmark(
		owner: AccountId,
		lineage: alloc::vec::Vec<LineageEntry>,
		price: Balance,
	) -> ModelId;
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::{
		pallet_prelude::*,
		traits::{
			fungible::{Inspect, InspectHold, Mutate, MutateHold},
			tokens::Precision,
		},
	};
	use frame_system::pallet_prelude::*;
	use pallet_datanets::{DatanetId, DatanetsInspect};
	use sp_core::H256;
	use sp_runtime::{traits::Saturating, SaturatedConversion};

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

		/// Adds base models, suspends models and sets the quality gate: root now, governance
		/// later.
		type AdminOrigin: EnsureOrigin<Self::RuntimeOrigin>;

		/// The datanets a lineage points at.
		type Datanets: DatanetsInspect<Self::AccountId>;

		/// Held from the owner per model, on top of `ByteDeposit` per byte of lineage.
		#[pallet::constant]
		type ModelDeposit: Get<BalanceOf<Self>>;

		#[pallet::constant]
		type ByteDeposit: Get<BalanceOf<Self>>;

		/// Held from a datanet owner per training approval.
		#[pallet::constant]
		type ApprovalDeposit: Get<BalanceOf<Self>>;

		/// Bytes of a base model's name, architecture and license each.
		#[pallet::constant]
		type MaxNameLength: Get<u32>;

		/// Datanets in one model's lineage.
		#[pallet::constant]
		type MaxLineage: Get<u32>;

		type WeightInfo: WeightInfo;
	}

	#[pallet::composite_enum]
	pub enum HoldReason {
		/// A registered model's deposit.
		ModelDeposit,
		/// A datanet owner's approval for an account to train on the datanet.
		ApprovalDeposit,
	}

	#[pallet::storage]
	pub type NextBaseModelId<T> = StorageValue<_, BaseModelId, ValueQuery>;

	#[pallet::storage]
	pub type BaseModels<T: Config> = StorageMap<_, Twox64Concat, BaseModelId, BaseModelInfo<T>>;

	#[pallet::storage]
	pub type BaseModelByHash<T> = StorageMap<_, Identity, H256, BaseModelId>;

	#[pallet::storage]
	pub type NextModelId<T> = StorageValue<_, ModelId, ValueQuery>;

	#[pallet::storage]
	pub type Models<T: Config> = StorageMap<_, Twox64Concat, ModelId, ModelInfo<T>>;

	/// Each adapter file is registered once.
	#[pallet::storage]
	pub type ModelByAdapter<T> = StorageMap<_, Identity, H256, ModelId>;

	/// `(datanet, account)`: the permissioned datanet's owner lets the account register models
	/// trained on it. The value is the deposit held from the owner who approved.
	#[pallet::storage]
	pub type TrainingApprovals<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		DatanetId,
		Blake2_128Concat,
		T::AccountId,
		(T::AccountId, BalanceOf<T>),
	>;

	/// The minimum evaluation score a model must report; `None`: no gate.
	#[pallet::storage]
	pub type QualityGate<T> = StorageValue<_, u32>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		BaseModelAdded { base_model: BaseModelId, hash: H256 },
		ModelRegistered {
			model_id: ModelId,
			owner: T::AccountId,
			base_model: BaseModelId,
			adapter_hash: H256,
			deposit: BalanceOf<T>,
		},
		PricesSet { model_id: ModelId, price_in: BalanceOf<T>, price_out: BalanceOf<T> },
		StatusSet { model_id: ModelId, status: ModelStatus },
		EvalReported { model_id: ModelId, report: EvalReport },
		TrainingApproved { datanet_id: DatanetId, who: T::AccountId, approved: bool },
		QualityGateSet { min_score: Option<u32> },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// No base model with this id.
		BaseModelNotFound,
		/// A base model with this hash is already registered.
		DuplicateBaseModel,
		/// No model with this id.
		ModelNotFound,
		/// This adapter file is already registered as a model.
		DuplicateAdapter,
		/// Only the model's owner may do this.
		NotOwner,
		/// A lineage names at least one datanet version.
		EmptyLineage,
		/// Lineage entries must be sorted by datanet id, one per datanet.
		UnsortedLineage,
		/// A lineage entry names a datanet version that is not published.
		VersionNotPublished,
		/// A lineage entry names a permissioned datanet whose owner has not approved the
		/// caller.
		TrainingNotApproved,
		/// The quality gate requires an evaluation report.
		EvalRequired,
		/// The evaluation score is below the quality gate.
		BelowQualityGate,
		/// No datanet with this id.
		DatanetNotFound,
		/// Only the datanet's owner may approve training on it.
		NotDatanetOwner,
		/// The datanet takes open contributions: training on it needs no approval.
		DatanetNotPermissioned,
		/// The approval already has this value.
		ApprovalUnchanged,
		/// A deprecated model cannot change status or prices.
		ModelDeprecated,
		/// The owner may only deprecate; suspending and reactivating are for root.
		StatusNotAllowed,
		/// The account cannot pay the deposit.
		InsufficientBalance,
		/// An id counter is exhausted.
		Overflow,
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Adds a base model that adapters can be registered on.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::add_base_model())]
		pub fn add_base_model(
			origin: OriginFor<T>,
			hash: H256,
			name: BoundedVec<u8, T::MaxNameLength>,
			architecture: BoundedVec<u8, T::MaxNameLength>,
			license: BoundedVec<u8, T::MaxNameLength>,
		) -> DispatchResult {
			T::AdminOrigin::ensure_origin(origin)?;
			ensure!(!BaseModelByHash::<T>::contains_key(hash), Error::<T>::DuplicateBaseModel);
			let base_model = NextBaseModelId::<T>::get();
			let next = base_model.checked_add(1).ok_or(Error::<T>::Overflow)?;
			BaseModels::<T>::insert(base_model, BaseModelInfo { hash, name, architecture, license });
			BaseModelByHash::<T>::insert(hash, base_model);
			NextBaseModelId::<T>::put(next);
			Self::deposit_event(Event::BaseModelAdded { base_model, hash });
			Ok(())
		}

		/// Registers the caller's adapter `adapter_hash`, trained on `base_model` with the
		/// datanet versions of `lineage`, at `price_in` / `price_out` per 1,000 tokens.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::register_model(lineage.len() as u32))]
		pub fn register_model(
			origin: OriginFor<T>,
			base_model: BaseModelId,
			adapter_hash: H256,
			lineage: BoundedVec<LineageEntry, T::MaxLineage>,
			lineage_manifest: H256,
			price_in: BalanceOf<T>,
			price_out: BalanceOf<T>,
			eval: Option<EvalReport>,
		) -> DispatchResult {
			let owner = ensure_signed(origin)?;
			ensure!(BaseModels::<T>::contains_key(base_model), Error::<T>::BaseModelNotFound);
			ensure!(!ModelByAdapter::<T>::contains_key(adapter_hash), Error::<T>::DuplicateAdapter);
			ensure!(!lineage.is_empty(), Error::<T>::EmptyLineage);
			ensure!(lineage.windows(2).all(|w| w[0].0 < w[1].0), Error::<T>::UnsortedLineage);
			for (datanet_id, version) in lineage.iter() {
				let (datanet_owner, permissioned) =
					T::Datanets::owner(*datanet_id).ok_or(Error::<T>::DatanetNotFound)?;
				ensure!(
					T::Datanets::is_published(*datanet_id, *version),
					Error::<T>::VersionNotPublished
				);
				// A datanet's owner trains on it without approving themselves.
				if permissioned && datanet_owner != owner {
					ensure!(
						TrainingApprovals::<T>::contains_key(datanet_id, &owner),
						Error::<T>::TrainingNotApproved
					);
				}
			}
			Self::check_gate(eval.as_ref())?;

			let model_id = NextModelId::<T>::get();
			let next = model_id.checked_add(1).ok_or(Error::<T>::Overflow)?;
			let deposit = T::ModelDeposit::get().saturating_add(
				T::ByteDeposit::get().saturating_mul((lineage.encoded_size() as u64).saturated_into()),
			);
			T::Currency::hold(&HoldReason::ModelDeposit.into(), &owner, deposit)
				.map_err(|_| Error::<T>::InsufficientBalance)?;
			Models::<T>::insert(
				model_id,
				ModelInfo {
					owner: owner.clone(),
					base_model,
					adapter_hash,
					lineage,
					lineage_manifest,
					price_in,
					price_out,
					status: ModelStatus::Active,
					eval,
					deposit,
					registered_at: frame_system::Pallet::<T>::block_number(),
				},
			);
			ModelByAdapter::<T>::insert(adapter_hash, model_id);
			NextModelId::<T>::put(next);
			Self::deposit_event(Event::ModelRegistered {
				model_id,
				owner,
				base_model,
				adapter_hash,
				deposit,
			});
			Ok(())
		}

		/// Sets the prices per 1,000 input and output tokens. Requests already made keep the fee
		/// ceiling they escrowed.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::set_prices())]
		pub fn set_prices(
			origin: OriginFor<T>,
			model_id: ModelId,
			price_in: BalanceOf<T>,
			price_out: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Models::<T>::try_mutate(model_id, |maybe| {
				let model = maybe.as_mut().ok_or(Error::<T>::ModelNotFound)?;
				ensure!(model.owner == who, Error::<T>::NotOwner);
				ensure!(model.status != ModelStatus::Deprecated, Error::<T>::ModelDeprecated);
				model.price_in = price_in;
				model.price_out = price_out;
				Self::deposit_event(Event::PricesSet { model_id, price_in, price_out });
				Ok(())
			})
		}

		/// The owner may deprecate their model, for good; root may also suspend and reactivate
		/// it. A deprecated model stays deprecated.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::set_status())]
		pub fn set_status(
			origin: OriginFor<T>,
			model_id: ModelId,
			status: ModelStatus,
		) -> DispatchResult {
			let owner = match T::AdminOrigin::try_origin(origin) {
				Ok(_) => None,
				Err(origin) => Some(ensure_signed(origin)?),
			};
			Models::<T>::try_mutate(model_id, |maybe| {
				let model = maybe.as_mut().ok_or(Error::<T>::ModelNotFound)?;
				ensure!(model.status != ModelStatus::Deprecated, Error::<T>::ModelDeprecated);
				if let Some(who) = owner {
					ensure!(model.owner == who, Error::<T>::NotOwner);
					ensure!(status == ModelStatus::Deprecated, Error::<T>::StatusNotAllowed);
				}
				model.status = status;
				Self::deposit_event(Event::StatusSet { model_id, status });
				Ok(())
			})
		}

		/// Replaces the model's evaluation report; it must pass the current quality gate.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::report_eval())]
		pub fn report_eval(
			origin: OriginFor<T>,
			model_id: ModelId,
			report: EvalReport,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::check_gate(Some(&report))?;
			Models::<T>::try_mutate(model_id, |maybe| {
				let model = maybe.as_mut().ok_or(Error::<T>::ModelNotFound)?;
				ensure!(model.owner == who, Error::<T>::NotOwner);
				ensure!(model.status != ModelStatus::Deprecated, Error::<T>::ModelDeprecated);
				model.eval = Some(report);
				Self::deposit_event(Event::EvalReported { model_id, report });
				Ok(())
			})
		}

		/// The owner of a permissioned datanet lets `who` register models trained on it, or
		/// takes the approval back (models already registered stay).
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::approve_training())]
		pub fn approve_training(
			origin: OriginFor<T>,
			datanet_id: DatanetId,
			who: T::AccountId,
			approved: bool,
		) -> DispatchResult {
			let owner = ensure_signed(origin)?;
			let (datanet_owner, permissioned) =
				T::Datanets::owner(datanet_id).ok_or(Error::<T>::DatanetNotFound)?;
			ensure!(datanet_owner == owner, Error::<T>::NotDatanetOwner);
			ensure!(permissioned, Error::<T>::DatanetNotPermissioned);
			let existing = TrainingApprovals::<T>::get(datanet_id, &who);
			ensure!(existing.is_some() != approved, Error::<T>::ApprovalUnchanged);
			if approved {
				let deposit = T::ApprovalDeposit::get();
				T::Currency::hold(&HoldReason::ApprovalDeposit.into(), &owner, deposit)
					.map_err(|_| Error::<T>::InsufficientBalance)?;
				TrainingApprovals::<T>::insert(datanet_id, &who, (owner, deposit));
			} else if let Some((payer, deposit)) = existing {
				// The deposit goes back to whoever approved, even after an ownership change.
				let _ = T::Currency::release(
					&HoldReason::ApprovalDeposit.into(),
					&payer,
					deposit,
					Precision::BestEffort,
				);
				TrainingApprovals::<T>::remove(datanet_id, &who);
			}
			Self::deposit_event(Event::TrainingApproved { datanet_id, who, approved });
			Ok(())
		}

		/// Sets the minimum evaluation score for new reports (`None`: no gate). Models already
		/// registered keep serving; root suspends the ones that should not.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::set_quality_gate())]
		pub fn set_quality_gate(origin: OriginFor<T>, min_score: Option<u32>) -> DispatchResult {
			T::AdminOrigin::ensure_origin(origin)?;
			QualityGate::<T>::set(min_score);
			Self::deposit_event(Event::QualityGateSet { min_score });
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		fn check_gate(eval: Option<&EvalReport>) -> DispatchResult {
			if let Some(min) = QualityGate::<T>::get() {
				let report = eval.ok_or(Error::<T>::EvalRequired)?;
				ensure!(report.score >= min, Error::<T>::BelowQualityGate);
			}
			Ok(())
		}
	}

	impl<T: Config> ModelsInspect<T::AccountId, BalanceOf<T>> for Pallet<T> {
		fn served_model(model_id: ModelId) -> Option<ServedModel<T::AccountId, BalanceOf<T>>> {
			Models::<T>::get(model_id).map(|m| ServedModel {
				owner: m.owner,
				adapter_hash: m.adapter_hash,
				price_in: m.price_in,
				price_out: m.price_out,
				active: m.status == ModelStatus::Active,
				lineage: m.lineage.into_inner(),
			})
		}

		#[cfg(feature = "runtime-benchmarks")]
		fn register_for_benchmark(
			owner: T::AccountId,
			lineage: alloc::vec::Vec<LineageEntry>,
			price: BalanceOf<T>,
		) -> ModelId {
			let model_id = NextModelId::<T>::get();
			let mut adapter = [0xadu8; 32];
			adapter[..4].copy_from_slice(&model_id.to_le_bytes());
			Models::<T>::insert(
				model_id,
				ModelInfo {
					owner,
					base_model: 0,
					adapter_hash: H256(adapter),
					lineage: BoundedVec::truncate_from(lineage),
					lineage_manifest: H256::zero(),
					price_in: price,
					price_out: price,
					status: ModelStatus::Active,
					eval: None,
					deposit: Default::default(),
					registered_at: frame_system::Pallet::<T>::block_number(),
				},
			);
			ModelByAdapter::<T>::insert(H256(adapter), model_id);
			NextModelId::<T>::put(model_id.saturating_add(1));
			model_id
		}
	}
}

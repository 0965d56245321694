//! # Attribution
//!
//! Proof of Attribution on chain: who serves which model, what a user pays for an inference, and
//! how that fee reaches the model owner, the stakers, the treasury and the contributors whose
//! data shaped the output.
//!
//! ## Operators
//! An operator registers with a bond (a hold), the models it serves and an **attribution key**
//! (sr25519, key type `attr`) that lives in its node's keystore and signs its receipts. Its
//! off-chain worker (see [`offchain`]) answers the requests assigned to it. `unbond` stops new
//! assignments; the bond comes back with `withdraw_bond` after `UnbondingDelay` blocks and once
//! no request assigned to it is open, so a bond cannot leave ahead of the requests it owes.
//!
//! ## Requests
//! `request_inference` holds `max_fee` from the requester and assigns the request to one of the
//! model's operators (round robin by request id). `max_fee` must cover the worst case at the
//! model's current prices (every prompt byte a token, plus `MaxSpecialTokens`, and
//! `max_output_tokens` output tokens), so a price change cannot make an answered request unpayable.
//! A request not answered by its deadline is refunded by anyone's `refund`.
//!
//! ## Receipts and the fee split
//! The operator's receipt names the request, the model and adapter, the prompt and output hashes,
//! the token counts, the attribution method, index root and record hash, and the top-K
//! contribution weights in parts per million; on-chain requests carry the output text. The pallet
//! checks the signature against the operator's registered key, that the request was assigned to
//! that operator and is still open (a settled one is a replay), the hashes, the token counts
//! against the request, and that every weighted contribution is published in a datanet version
//! the model's lineage covers. Then, with `F = T_in·R_in/1000 + T_out·R_out/1000 + platform_fee`
//! (the division rounds down), `S = F − platform_fee` goes:
//! - `owner · S` (rounded down) to the model owner,
//! - `stakers · S` (rounded down) to the staking-reward pot,
//! - `contributors · S` (rounded down) to the contributors, each `ppm / 10^6` of it rounded down,
//!   credited to their reward balance,
//! - and the rest — the platform fee and every rounding remainder, or the contributors' whole
//!   share when the receipt attributes nothing — to the treasury.
//!
//! The parts sum to exactly `F`; `max_fee − F` returns to the requester.
//!
//! ## Scale
//! A receipt costs O(K) writes: one reward-balance increment per weighted contribution. Rewards
//! sit in the pallet's reward pot until their owner calls `claim_rewards`.
//!
//! Receipts are accepted either as a signed transaction from any account (which pays the usual
//! fee) or as an authorized general transaction that pays none: the operator's off-chain worker
//! submits that way, and the transaction pool validates the whole receipt before accepting it.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
pub mod offchain;
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

/// The operators' attribution keys: sr25519, key type `attr`.
pub mod crypto {
	use sp_core::crypto::KeyTypeId;
	use sp_runtime::app_crypto::{app_crypto, sr25519};

	pub const KEY_TYPE: KeyTypeId = KeyTypeId(*b"attr");
	app_crypto!(sr25519, KEY_TYPE);
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::{
		pallet_prelude::*,
		traits::{
			fungible::{Inspect, InspectHold, Mutate, MutateHold},
			tokens::{Fortitude, Precision, Preservation, Restriction},
		},
		PalletId,
	};
	use frame_system::{offchain::CreateAuthorizedTransaction, pallet_prelude::*};
	use pallet_datanets::DatanetsInspect;
	use pallet_model_registry::{ModelsInspect, ServedModel};
	use sp_runtime::{
		traits::{AccountIdConversion, BlakeTwo256, Hash, Saturating, Zero},
		Perbill, RuntimeAppPublic,
	};
	use pallet_datanets::ContributionId;
	use pallet_model_registry::ModelId;
	use sp_core::H256;

	#[pallet::pallet]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config + CreateAuthorizedTransaction<Call<Self>> {
		/// Holds bonds and escrows; pays the fee split.
		type Currency: Inspect<Self::AccountId>
			+ Mutate<Self::AccountId>
			+ InspectHold<Self::AccountId>
			+ MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;

		/// The runtime's hold reasons, which include this pallet's.
		type RuntimeHoldReason: From<HoldReason>;

		/// Sets the fee split: root now, governance later.
		type AdminOrigin: EnsureOrigin<Self::RuntimeOrigin>;

		/// An operator's attribution key.
		type OperatorKey: Member
			+ Parameter
			+ RuntimeAppPublic
			+ Ord
			+ MaxEncodedLen
			+ DecodeWithMemTracking;

		/// Models, their prices and lineage.
		type Models: ModelsInspect<Self::AccountId, BalanceOf<Self>>;

		/// The contributions a receipt weighs.
		type Datanets: DatanetsInspect<Self::AccountId>;

		/// Receives the platform fee and the rounding remainders. Must exist.
		type Treasury: Get<Self::AccountId>;

		/// Receives the stakers' share until staking pays it out. Must exist.
		type StakingPot: Get<Self::AccountId>;

		/// Derives the reward pot that holds contributors' unclaimed rewards. Must exist
		/// (genesis gives it the existential deposit).
		#[pallet::constant]
		type PalletId: Get<PalletId>;

		/// Held from an operator while registered.
		#[pallet::constant]
		type OperatorBond: Get<BalanceOf<Self>>;

		/// Blocks between `unbond` and `withdraw_bond`.
		#[pallet::constant]
		type UnbondingDelay: Get<BlockNumberFor<Self>>;

		/// Blocks an operator has to answer a request before it can be refunded.
		#[pallet::constant]
		type RequestTimeout: Get<BlockNumberFor<Self>>;

		/// Bytes of an on-chain request's prompt.
		#[pallet::constant]
		type MaxPromptLength: Get<u32>;

		/// Bytes of an on-chain receipt's output text.
		#[pallet::constant]
		type MaxOutputLength: Get<u32>;

		/// The most output tokens a request may ask for.
		#[pallet::constant]
		type MaxOutputTokens: Get<u32>;

		/// Tokens a prompt may count beyond one per byte (begin-of-sequence and template tokens).
		#[pallet::constant]
		type MaxSpecialTokens: Get<u32>;

		/// Contributions one receipt may weigh (the engine's top-K).
		#[pallet::constant]
		type MaxWeights: Get<u32>;

		#[pallet::constant]
		type MaxModelsPerOperator: Get<u32>;

		#[pallet::constant]
		type MaxOperatorsPerModel: Get<u32>;

		/// Transaction-pool priority of receipts from off-chain workers.
		#[pallet::constant]
		type ReceiptPriority: Get<TransactionPriority>;

		type WeightInfo: WeightInfo;
	}

	#[pallet::composite_enum]
	pub enum HoldReason {
		/// An operator's bond.
		OperatorBond,
		/// A request's maximum fee, until its receipt or refund.
		Escrow,
	}

	#[pallet::type_value]
	pub fn DefaultFeeSplit<T: Config>() -> FeeSplit<BalanceOf<T>> {
		FeeSplit {
			owner: Perbill::from_percent(40),
			stakers: Perbill::from_percent(10),
			contributors: Perbill::from_percent(50),
			platform_fee: Zero::zero(),
		}
	}

	#[pallet::storage]
	pub type FeeParams<T: Config> =
		StorageValue<_, FeeSplit<BalanceOf<T>>, ValueQuery, DefaultFeeSplit<T>>;

	#[pallet::storage]
	pub type Operators<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, OperatorInfo<T>>;

	/// Each attribution key belongs to one operator; the off-chain worker finds its operator here.
	#[pallet::storage]
	pub type OperatorByKey<T: Config> =
		StorageMap<_, Blake2_128Concat, T::OperatorKey, T::AccountId>;

	/// The operators a model's requests are assigned to, in registration order.
	#[pallet::storage]
	pub type ModelOperators<T: Config> = StorageMap<
		_,
		Twox64Concat,
		ModelId,
		BoundedVec<T::AccountId, T::MaxOperatorsPerModel>,
		ValueQuery,
	>;

	#[pallet::storage]
	pub type NextRequestId<T> = StorageValue<_, RequestId, ValueQuery>;

	#[pallet::storage]
	pub type Requests<T: Config> = StorageMap<_, Twox64Concat, RequestId, RequestInfo<T>>;

	/// Open requests by operator: what its off-chain worker has to answer.
	#[pallet::storage]
	pub type Assigned<T: Config> =
		StorageDoubleMap<_, Blake2_128Concat, T::AccountId, Twox64Concat, RequestId, ()>;

	#[pallet::storage]
	pub type Receipts<T: Config> = StorageMap<_, Twox64Concat, RequestId, ReceiptRecord<T>>;

	/// Unclaimed rewards, held in the reward pot.
	#[pallet::storage]
	pub type Rewards<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, BalanceOf<T>, ValueQuery>;

	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// `None` keeps the default split (40 % owner, 10 % stakers, 50 % contributors, no
		/// platform fee).
		pub fee_split: Option<FeeSplit<BalanceOf<T>>>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			if let Some(split) = self.fee_split {
				assert!(split.is_valid(), "the fee split's shares must sum to 100 %");
				FeeParams::<T>::put(split);
			}
		}
	}

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		OperatorRegistered { operator: T::AccountId, key: T::OperatorKey, bond: BalanceOf<T> },
		OperatorModelsSet { operator: T::AccountId, models: BoundedVec<ModelId, T::MaxModelsPerOperator> },
		OperatorUnbonding { operator: T::AccountId, withdrawable_at: BlockNumberFor<T> },
		OperatorRemoved { operator: T::AccountId, bond: BalanceOf<T> },
		InferenceRequested {
			request_id: RequestId,
			model_id: ModelId,
			requester: T::AccountId,
			operator: T::AccountId,
			max_fee: BalanceOf<T>,
			deadline: BlockNumberFor<T>,
		},
		/// A receipt was accepted and its fee paid out.
		ReceiptSettled {
			request_id: RequestId,
			operator: T::AccountId,
			model_id: ModelId,
			input_tokens: u32,
			output_tokens: u32,
			method: AttributionMethod,
			record_hash: H256,
			parts: FeeParts<BalanceOf<T>>,
			refunded: BalanceOf<T>,
			output: BoundedVec<u8, T::MaxOutputLength>,
		},
		/// A contribution's share of a receipt, credited to its contributor.
		ContributorCredited {
			request_id: RequestId,
			contribution_id: ContributionId,
			contributor: T::AccountId,
			amount: BalanceOf<T>,
		},
		RequestRefunded { request_id: RequestId, requester: T::AccountId, amount: BalanceOf<T> },
		RewardsClaimed { who: T::AccountId, amount: BalanceOf<T> },
		FeeSplitSet { split: FeeSplit<BalanceOf<T>> },
	}

	#[pallet::error]
	#[derive(PartialEq)]
	pub enum Error<T> {
		/// The account is already a registered operator.
		AlreadyOperator,
		/// The account is not a registered operator.
		NotOperator,
		/// Another operator registered this attribution key.
		KeyInUse,
		/// A model in the list does not exist or is not active.
		ModelNotServable,
		/// A model appears twice in the list.
		DuplicateModel,
		/// The model has `MaxOperatorsPerModel` operators.
		TooManyOperators,
		/// The operator is unbonding and takes no new models.
		Unbonding,
		/// `unbond` first.
		NotUnbonding,
		/// The unbonding delay has not passed, or requests assigned to the operator are open.
		BondLocked,
		/// The account cannot pay the bond or the escrow.
		InsufficientBalance,
		/// No model with this id.
		ModelNotFound,
		/// The model is suspended or deprecated.
		ModelNotActive,
		/// No operator serves the model.
		NoOperator,
		/// The prompt is empty or not UTF-8.
		InvalidPrompt,
		/// `max_output_tokens` must be 1 to `MaxOutputTokens`.
		InvalidTokenLimit,
		/// `max_fee` does not cover the worst case at the model's prices.
		MaxFeeTooLow,
		/// No open request with this id.
		UnknownRequest,
		/// The request already has a settled receipt: this one is a replay.
		AlreadySettled,
		/// The request's deadline has not passed.
		NotExpired,
		/// The receipt's operator is not the one the request was assigned to.
		NotAssignedOperator,
		/// The signature is not the operator's attribution key's over this receipt.
		BadSignature,
		/// The receipt names another model than the request.
		ModelMismatch,
		/// The receipt's adapter hash is not the model's.
		AdapterMismatch,
		/// The prompt hash is not the hash of the request's prompt.
		PromptMismatch,
		/// The output hash is not the hash of the output text.
		OutputMismatch,
		/// More input tokens than the prompt can have.
		TooManyInputTokens,
		/// More output tokens than the request allows.
		TooManyOutputTokens,
		/// Weights must be positive, sorted by strictly ascending contribution id and sum to
		/// 1,000,000, or be empty with method `None`.
		InvalidWeights,
		/// A weighted contribution is not published in a datanet version the model's lineage
		/// covers.
		NotInLineage,
		/// The fee is above the request's `max_fee`.
		FeeAboveMax,
		/// No rewards to claim.
		NothingToClaim,
		/// The shares of a fee split must sum to 100 %.
		InvalidFeeSplit,
		/// An id counter is exhausted.
		Overflow,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn offchain_worker(now: BlockNumberFor<T>) {
			offchain::run::<T>(now);
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Registers the caller as an operator serving `models`, with attribution key `key`,
		/// holding `OperatorBond`.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::register_operator(models.len() as u32))]
		pub fn register_operator(
			origin: OriginFor<T>,
			key: T::OperatorKey,
			models: BoundedVec<ModelId, T::MaxModelsPerOperator>,
		) -> DispatchResult {
			let operator = ensure_signed(origin)?;
			ensure!(!Operators::<T>::contains_key(&operator), Error::<T>::AlreadyOperator);
			ensure!(!OperatorByKey::<T>::contains_key(&key), Error::<T>::KeyInUse);
			Self::check_models(&models)?;
			let bond = T::OperatorBond::get();
			T::Currency::hold(&HoldReason::OperatorBond.into(), &operator, bond)
				.map_err(|_| Error::<T>::InsufficientBalance)?;
			for model_id in models.iter() {
				ModelOperators::<T>::try_mutate(model_id, |ops| ops.try_push(operator.clone()))
					.map_err(|_| Error::<T>::TooManyOperators)?;
			}
			OperatorByKey::<T>::insert(&key, &operator);
			Operators::<T>::insert(
				&operator,
				OperatorInfo { key: key.clone(), models, bond, unbonding_at: None },
			);
			Self::deposit_event(Event::OperatorRegistered { operator, key, bond });
			Ok(())
		}

		/// Replaces the list of models the operator serves. Requests already assigned stay
		/// assigned.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::set_operator_models(
			T::MaxModelsPerOperator::get(),
			models.len() as u32,
		))]
		pub fn set_operator_models(
			origin: OriginFor<T>,
			models: BoundedVec<ModelId, T::MaxModelsPerOperator>,
		) -> DispatchResult {
			let operator = ensure_signed(origin)?;
			Self::check_models(&models)?;
			Operators::<T>::try_mutate(&operator, |maybe| {
				let info = maybe.as_mut().ok_or(Error::<T>::NotOperator)?;
				ensure!(info.unbonding_at.is_none(), Error::<T>::Unbonding);
				Self::leave_models(&operator, &info.models);
				for model_id in models.iter() {
					ModelOperators::<T>::try_mutate(model_id, |ops| ops.try_push(operator.clone()))
						.map_err(|_| Error::<T>::TooManyOperators)?;
				}
				info.models = models.clone();
				Self::deposit_event(Event::OperatorModelsSet { operator: operator.clone(), models });
				Ok(())
			})
		}

		/// Stops new requests being assigned to the caller and starts the unbonding delay.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::unbond(T::MaxModelsPerOperator::get()))]
		pub fn unbond(origin: OriginFor<T>) -> DispatchResult {
			let operator = ensure_signed(origin)?;
			Operators::<T>::try_mutate(&operator, |maybe| {
				let info = maybe.as_mut().ok_or(Error::<T>::NotOperator)?;
				ensure!(info.unbonding_at.is_none(), Error::<T>::Unbonding);
				Self::leave_models(&operator, &info.models);
				let at = frame_system::Pallet::<T>::block_number()
					.saturating_add(T::UnbondingDelay::get());
				info.unbonding_at = Some(at);
				Self::deposit_event(Event::OperatorUnbonding {
					operator: operator.clone(),
					withdrawable_at: at,
				});
				Ok(())
			})
		}

		/// Returns the bond and removes the operator, once the unbonding delay has passed and
		/// no request assigned to it is open.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::withdraw_bond())]
		pub fn withdraw_bond(origin: OriginFor<T>) -> DispatchResult {
			let operator = ensure_signed(origin)?;
			let info = Operators::<T>::get(&operator).ok_or(Error::<T>::NotOperator)?;
			let at = info.unbonding_at.ok_or(Error::<T>::NotUnbonding)?;
			ensure!(frame_system::Pallet::<T>::block_number() >= at, Error::<T>::BondLocked);
			ensure!(
				Assigned::<T>::iter_prefix(&operator).next().is_none(),
				Error::<T>::BondLocked
			);
			let bond = T::Currency::release(
				&HoldReason::OperatorBond.into(),
				&operator,
				info.bond,
				Precision::BestEffort,
			)
			.unwrap_or_default();
			OperatorByKey::<T>::remove(&info.key);
			Operators::<T>::remove(&operator);
			Self::deposit_event(Event::OperatorRemoved { operator, bond });
			Ok(())
		}

		/// Asks model `model_id` to complete `prompt` with at most `max_output_tokens` tokens,
		/// holding `max_fee` until the receipt (which charges the actual fee) or the refund.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::request_inference(prompt.len() as u32))]
		pub fn request_inference(
			origin: OriginFor<T>,
			model_id: ModelId,
			prompt: BoundedVec<u8, T::MaxPromptLength>,
			max_output_tokens: u32,
			max_fee: BalanceOf<T>,
		) -> DispatchResult {
			let requester = ensure_signed(origin)?;
			let model = T::Models::served_model(model_id).ok_or(Error::<T>::ModelNotFound)?;
			ensure!(model.active, Error::<T>::ModelNotActive);
			ensure!(
				!prompt.is_empty() && core::str::from_utf8(&prompt).is_ok(),
				Error::<T>::InvalidPrompt
			);
			ensure!(
				max_output_tokens >= 1 && max_output_tokens <= T::MaxOutputTokens::get(),
				Error::<T>::InvalidTokenLimit
			);
			let worst = Self::fee(&model, Self::max_input_tokens(prompt.len()), max_output_tokens);
			ensure!(max_fee >= worst, Error::<T>::MaxFeeTooLow);
			let operators = ModelOperators::<T>::get(model_id);
			ensure!(!operators.is_empty(), Error::<T>::NoOperator);

			let request_id = NextRequestId::<T>::get();
			let next = request_id.checked_add(1).ok_or(Error::<T>::Overflow)?;
			let operator = operators[(request_id % operators.len() as u64) as usize].clone();
			T::Currency::hold(&HoldReason::Escrow.into(), &requester, max_fee)
				.map_err(|_| Error::<T>::InsufficientBalance)?;
			let deadline =
				frame_system::Pallet::<T>::block_number().saturating_add(T::RequestTimeout::get());
			Requests::<T>::insert(
				request_id,
				RequestInfo {
					requester: requester.clone(),
					model_id,
					operator: operator.clone(),
					prompt,
					max_output_tokens,
					max_fee,
					deadline,
				},
			);
			Assigned::<T>::insert(&operator, request_id, ());
			NextRequestId::<T>::put(next);
			Self::deposit_event(Event::InferenceRequested {
				request_id,
				model_id,
				requester,
				operator,
				max_fee,
				deadline,
			});
			Ok(())
		}

		/// Settles an operator's signed receipt: checks it, pays the fee split and returns the
		/// unused escrow. Any account may submit it (and pays the transaction fee); the
		/// operator's off-chain worker submits it as an authorized transaction without a fee.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::submit_receipt(receipt.weights.len() as u32))]
		#[pallet::authorize(|_source, receipt, signature| Pallet::<T>::authorize_receipt(receipt, signature))]
		#[pallet::weight_of_authorize(T::WeightInfo::authorize_submit_receipt(T::MaxWeights::get()))]
		pub fn submit_receipt(
			origin: OriginFor<T>,
			receipt: Receipt<T>,
			signature: <T::OperatorKey as RuntimeAppPublic>::Signature,
		) -> DispatchResult {
			if ensure_authorized(origin.clone()).is_err() {
				ensure_signed(origin)?;
			}
			let checked = Self::check_receipt(&receipt, &signature)?;
			Self::settle(receipt, checked)
		}

		/// Returns the escrow of a request nobody answered by its deadline. Anyone may call it.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::refund())]
		pub fn refund(origin: OriginFor<T>, request_id: RequestId) -> DispatchResult {
			ensure_signed(origin)?;
			let request = Requests::<T>::get(request_id).ok_or(Error::<T>::UnknownRequest)?;
			ensure!(
				frame_system::Pallet::<T>::block_number() > request.deadline,
				Error::<T>::NotExpired
			);
			let amount = T::Currency::release(
				&HoldReason::Escrow.into(),
				&request.requester,
				request.max_fee,
				Precision::BestEffort,
			)
			.unwrap_or_default();
			Requests::<T>::remove(request_id);
			Assigned::<T>::remove(&request.operator, request_id);
			Self::deposit_event(Event::RequestRefunded {
				request_id,
				requester: request.requester,
				amount,
			});
			Ok(())
		}

		/// Pays the caller's accumulated rewards out of the reward pot.
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::claim_rewards())]
		pub fn claim_rewards(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let amount = Rewards::<T>::get(&who);
			ensure!(!amount.is_zero(), Error::<T>::NothingToClaim);
			T::Currency::transfer(&Self::reward_pot(), &who, amount, Preservation::Preserve)?;
			Rewards::<T>::remove(&who);
			Self::deposit_event(Event::RewardsClaimed { who, amount });
			Ok(())
		}

		/// Sets beta, gamma, delta and the platform fee for receipts from now on.
		#[pallet::call_index(8)]
		#[pallet::weight(T::WeightInfo::set_fee_split())]
		pub fn set_fee_split(origin: OriginFor<T>, split: FeeSplit<BalanceOf<T>>) -> DispatchResult {
			T::AdminOrigin::ensure_origin(origin)?;
			ensure!(split.is_valid(), Error::<T>::InvalidFeeSplit);
			FeeParams::<T>::put(split);
			Self::deposit_event(Event::FeeSplitSet { split });
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		/// The account holding contributors' unclaimed rewards.
		pub fn reward_pot() -> T::AccountId {
			T::PalletId::get().into_account_truncating()
		}

		/// The most tokens a prompt of `bytes` bytes can count.
		pub fn max_input_tokens(bytes: usize) -> u32 {
			(bytes as u32).saturating_add(T::MaxSpecialTokens::get())
		}

		/// `F = T_in·R_in/1000 + T_out·R_out/1000 + platform_fee`, the division rounding down
		/// once over the sum.
		pub fn fee(
			model: &ServedModel<T::AccountId, BalanceOf<T>>,
			input_tokens: u32,
			output_tokens: u32,
		) -> BalanceOf<T> {
			let per_thousand = model
				.price_in
				.saturating_mul(input_tokens.into())
				.saturating_add(model.price_out.saturating_mul(output_tokens.into()));
			(per_thousand / 1000u32.into()).saturating_add(FeeParams::<T>::get().platform_fee)
		}

		/// The parts of `fee` and each weighted contribution's amount, per the module docs.
		pub fn split(
			fee: BalanceOf<T>,
			weights: &[(ContributionId, Ppm)],
		) -> (FeeParts<BalanceOf<T>>, alloc::vec::Vec<BalanceOf<T>>) {
			let params = FeeParams::<T>::get();
			let shared = fee.saturating_sub(params.platform_fee);
			let owner = params.owner.mul_floor(shared);
			let stakers = params.stakers.mul_floor(shared);
			let pool = params.contributors.mul_floor(shared);
			let amounts: alloc::vec::Vec<BalanceOf<T>> = weights
				.iter()
				.map(|(_, ppm)| Perbill::from_parts(ppm.saturating_mul(1000)).mul_floor(pool))
				.collect();
			let contributors =
				amounts.iter().fold(BalanceOf::<T>::zero(), |a, b| a.saturating_add(*b));
			let treasury =
				fee.saturating_sub(owner).saturating_sub(stakers).saturating_sub(contributors);
			(FeeParts { fee, owner, stakers, contributors, treasury }, amounts)
		}

		fn check_models(models: &[ModelId]) -> DispatchResult {
			for (i, model_id) in models.iter().enumerate() {
				ensure!(!models[..i].contains(model_id), Error::<T>::DuplicateModel);
				let model =
					T::Models::served_model(*model_id).ok_or(Error::<T>::ModelNotServable)?;
				ensure!(model.active, Error::<T>::ModelNotServable);
			}
			Ok(())
		}

		fn leave_models(operator: &T::AccountId, models: &[ModelId]) {
			for model_id in models {
				ModelOperators::<T>::mutate(model_id, |ops| ops.retain(|o| o != operator));
			}
		}

		/// Everything that makes a receipt payable; shared by the transaction pool's check and
		/// the dispatch, which pays what it found.
		pub fn check_receipt(
			receipt: &Receipt<T>,
			signature: &<T::OperatorKey as RuntimeAppPublic>::Signature,
		) -> Result<CheckedReceipt<T>, Error<T>> {
			let Some(request) = Requests::<T>::get(receipt.request_id) else {
				return Err(if Receipts::<T>::contains_key(receipt.request_id) {
					Error::<T>::AlreadySettled
				} else {
					Error::<T>::UnknownRequest
				});
			};
			ensure!(receipt.operator == request.operator, Error::<T>::NotAssignedOperator);
			let operator = Operators::<T>::get(&receipt.operator).ok_or(Error::<T>::NotOperator)?;
			let genesis = frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero());
			ensure!(
				operator.key.verify(&receipt.signing_payload(&genesis), signature),
				Error::<T>::BadSignature
			);
			ensure!(receipt.model_id == request.model_id, Error::<T>::ModelMismatch);
			let model =
				T::Models::served_model(receipt.model_id).ok_or(Error::<T>::ModelNotFound)?;
			ensure!(receipt.adapter_hash == model.adapter_hash, Error::<T>::AdapterMismatch);
			ensure!(
				receipt.prompt_hash == BlakeTwo256::hash(&request.prompt),
				Error::<T>::PromptMismatch
			);
			ensure!(
				receipt.output_hash == BlakeTwo256::hash(&receipt.output),
				Error::<T>::OutputMismatch
			);
			ensure!(
				receipt.input_tokens <= Self::max_input_tokens(request.prompt.len()),
				Error::<T>::TooManyInputTokens
			);
			ensure!(
				receipt.output_tokens <= request.max_output_tokens,
				Error::<T>::TooManyOutputTokens
			);
			let contributors = Self::check_weights(receipt, &model)?;
			let fee = Self::fee(&model, receipt.input_tokens, receipt.output_tokens);
			ensure!(fee <= request.max_fee, Error::<T>::FeeAboveMax);
			Ok(CheckedReceipt { request, model, fee, contributors })
		}

		/// The contributor of each weighted contribution, in the receipt's order.
		fn check_weights(
			receipt: &Receipt<T>,
			model: &ServedModel<T::AccountId, BalanceOf<T>>,
		) -> Result<alloc::vec::Vec<T::AccountId>, Error<T>> {
			let weights = &receipt.weights;
			if receipt.method == AttributionMethod::None {
				return if weights.is_empty() {
					Ok(alloc::vec::Vec::new())
				} else {
					Err(Error::<T>::InvalidWeights)
				};
			}
			ensure!(
				weights.iter().all(|(_, ppm)| *ppm > 0) &&
					weights.windows(2).all(|w| w[0].0 < w[1].0) &&
					weights.iter().map(|(_, ppm)| *ppm as u64).sum::<u64>() == PPM as u64,
				Error::<T>::InvalidWeights
			);
			weights
				.iter()
				.map(|(contribution_id, _)| {
					let published = T::Datanets::published_contribution(*contribution_id)
						.ok_or(Error::<T>::NotInLineage)?;
					ensure!(
						model.covers(published.datanet_id, published.version),
						Error::<T>::NotInLineage
					);
					Ok(published.contributor)
				})
				.collect()
		}

		fn settle(receipt: Receipt<T>, checked: CheckedReceipt<T>) -> DispatchResult {
			let CheckedReceipt { request, model, fee, contributors } = checked;
			let request_id = receipt.request_id;
			let (parts, amounts) = Self::split(fee, &receipt.weights);
			let escrow: T::RuntimeHoldReason = HoldReason::Escrow.into();
			let pay = |to: &T::AccountId, amount: BalanceOf<T>| -> DispatchResult {
				if amount.is_zero() {
					return Ok(());
				}
				T::Currency::transfer_on_hold(
					&escrow,
					&request.requester,
					to,
					amount,
					Precision::Exact,
					Restriction::Free,
					Fortitude::Force,
				)
				.map(|_| ())
			};
			// An owner whose account cannot receive the amount (it would stay below the
			// existential deposit) is credited like a contributor instead.
			let mut to_pot = parts.contributors;
			if pay(&model.owner, parts.owner).is_err() {
				to_pot = to_pot.saturating_add(parts.owner);
				Rewards::<T>::mutate(&model.owner, |r| *r = r.saturating_add(parts.owner));
			}
			pay(&Self::reward_pot(), to_pot)?;
			pay(&T::StakingPot::get(), parts.stakers)?;
			pay(&T::Treasury::get(), parts.treasury)?;
			let refunded = T::Currency::release(
				&escrow,
				&request.requester,
				request.max_fee.saturating_sub(fee),
				Precision::BestEffort,
			)
			.unwrap_or_default();

			for (((contribution_id, _), contributor), amount) in
				receipt.weights.iter().zip(contributors).zip(amounts)
			{
				if amount.is_zero() {
					continue;
				}
				Rewards::<T>::mutate(&contributor, |r| *r = r.saturating_add(amount));
				Self::deposit_event(Event::ContributorCredited {
					request_id,
					contribution_id: *contribution_id,
					contributor,
					amount,
				});
			}
			Requests::<T>::remove(request_id);
			Assigned::<T>::remove(&request.operator, request_id);
			Receipts::<T>::insert(
				request_id,
				ReceiptRecord {
					operator: receipt.operator.clone(),
					model_id: receipt.model_id,
					output_hash: receipt.output_hash,
					record_hash: receipt.record_hash,
					fee,
					settled_at: frame_system::Pallet::<T>::block_number(),
				},
			);
			Self::deposit_event(Event::ReceiptSettled {
				request_id,
				operator: receipt.operator,
				model_id: receipt.model_id,
				input_tokens: receipt.input_tokens,
				output_tokens: receipt.output_tokens,
				method: receipt.method,
				record_hash: receipt.record_hash,
				parts,
				refunded,
				output: receipt.output,
			});
			Ok(())
		}

		/// The transaction pool's check of an off-chain worker's receipt: the whole
		/// `check_receipt`, so an invalid receipt never enters a block. One receipt per request
		/// is in the pool at a time.
		fn authorize_receipt(
			receipt: &Receipt<T>,
			signature: &<T::OperatorKey as RuntimeAppPublic>::Signature,
		) -> TransactionValidityWithRefund {
			Self::check_receipt(receipt, signature).map_err(|e| {
				let index = e.into_index_u8();
				TransactionValidityError::Invalid(InvalidTransaction::Custom(index))
			})?;
			let validity = ValidTransaction::with_tag_prefix("AttributionReceipt")
				.priority(T::ReceiptPriority::get())
				.and_provides(receipt.request_id)
				.longevity(64)
				.propagate(true)
				.build()?;
			Ok((validity, Weight::zero()))
		}
	}

	impl<T: Config> Error<T> {
		fn into_index_u8(self) -> u8 {
			let DispatchError::Module(module) = DispatchError::from(self) else { return 0 };
			module.error[0]
		}
	}

	impl<Balance> FeeSplit<Balance> {
		pub fn is_valid(&self) -> bool {
			self.owner
				.deconstruct()
				.checked_add(self.stakers.deconstruct())
				.and_then(|s| s.checked_add(self.contributors.deconstruct())) ==
				Some(Perbill::one().deconstruct())
		}
	}

	impl<T: Config> sp_runtime::BoundToRuntimeAppPublic for Pallet<T> {
		type Public = T::OperatorKey;
	}
}

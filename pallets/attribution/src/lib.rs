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
//! no request assigned to it is open, its latest receipt's challenge window is over and no
//! dispute against it is open: a bond cannot leave ahead of what it answers for.
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
//! ## Maturity and disputes
//! The contributors' pool of a receipt goes to the reward pot at settlement but is credited only
//! when the receipt **matures**, `challenge_window` blocks later (`on_idle` does it in settlement
//! order, or anyone's `release_rewards`): then each contributor's amount joins its reward
//! balance, which `claim_rewards` pays, and the pool's rounding remainder goes to the treasury.
//!
//! Inside the window anyone may `challenge` a receipt with a bond, the request's prompt and the
//! attribution record they recomputed (its hash and weights). The verifiers are the model's other
//! operators (not the accused, not the challenger): their off-chain workers run the same request
//! on their own engine, greedy and with the receipt's attribution method, and `vote` the
//! [`attestation`] they get. The first attestation more than half of the verifiers vote for
//! decides (see [`DisputeOutcome`]); with none by the deadline anyone's `resolve_dispute` voids
//! the dispute. A losing challenger forfeits its bond, a losing operator a part of its bond; the
//! winner gets `winner_share` of it and the treasury the rest. An operator with an open dispute
//! cannot withdraw its bond.
//!
//! ## Prepaid batches
//! A user with credit (`deposit_credit`) signs requests to an operator's engine directly; the
//! operator settles what it served in one `submit_receipt_batch`: per-payer charges (with each
//! payer's nonce range, above its `SettledNonce`), per-contribution influence, the rates, and the
//! Merkle root of the [`BatchLeaf`]s. The chain checks the aggregates; anyone holding the leaves
//! proves a wrong batch with `challenge_batch` from one leaf or two consecutive ones (see
//! [`BatchFraud`]), which refunds the payer from the operator's bond and slashes it. The
//! operator's off-chain worker builds batches from the engine's journal (`offchain::batcher`).
//!
//! A leaf's attribution is disputed with `challenge_leaf` (see [`LeafChallenge`]): the
//! challenger reveals the operator's attribution record, which the chain checks against the
//! leaf's attestation by its hash, and the verifiers' engines recompute that very record and
//! vote with `vote_leaf`. The batch is held meanwhile; an overturn moves the leaf's part of the
//! batch's pool to the challenger's weights.
//!
//! ## Scale
//! A receipt costs O(K) writes: the record with its K credits, then K reward-balance increments
//! when it matures. Rewards sit in the pallet's reward pot until their owner calls
//! `claim_rewards`.
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
mod fraud;
mod types;
pub mod weights;

pub use pallet::*;
pub use types::*;
pub use weights::WeightInfo;

use frame_support::traits::fungible;

pub type BalanceOf<T> =
	<<T as Config>::Currency as fungible::Inspect<<T as frame_system::Config>::AccountId>>::Balance;

/// Makes a payer's signed request for the `challenge_batch` benchmark, which does not know the
/// runtime's signature scheme.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper<AccountId, Signature> {
	/// A payer and its signature of `message`.
	fn sign_request(message: &[u8]) -> (AccountId, Signature);
}

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
		traits::{AccountIdConversion, BlakeTwo256, Hash, IdentifyAccount, Saturating, Verify, Zero},
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

		/// Bytes of the operator's attribution record a leaf challenge carries (the engine's
		/// canonical record: about 250 bytes, 4 per prompt and output token, 12 per weight).
		#[pallet::constant]
		type MaxRecordLength: Get<u32>;

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

		/// Payers one batch may charge.
		#[pallet::constant]
		type MaxBatchPayers: Get<u32>;

		/// Contributions one batch may pay.
		#[pallet::constant]
		type MaxBatchContributions: Get<u32>;

		/// Blocks between `unlock_credit` and `withdraw_credit`: the time operators have to
		/// settle what they served against the credit.
		#[pallet::constant]
		type CreditUnlockDelay: Get<BlockNumberFor<Self>>;

		/// A prepaid payer's signature of a request (the runtime's `MultiSignature`: wallets
		/// sign sr25519).
		type RequestSignature: Parameter
			+ Verify<Signer: IdentifyAccount<AccountId = Self::AccountId>>
			+ From<sp_core::sr25519::Signature>;

		/// Signs requests for the `challenge_batch` benchmark.
		#[cfg(feature = "runtime-benchmarks")]
		type BenchmarkHelper: BenchmarkHelper<Self::AccountId, Self::RequestSignature>;

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
		/// A challenger's bond, until the dispute resolves.
		ChallengeBond,
		/// Prepaid credit, which operators' batches charge.
		Credit,
	}

	#[pallet::type_value]
	pub fn DefaultDisputeParams<T: Config>() -> DisputeParams<BalanceOf<T>, BlockNumberFor<T>> {
		DisputeParams {
			challenge_window: 100u32.into(),
			voting_period: 50u32.into(),
			challenge_bond: T::OperatorBond::get() / 10u32.into(),
			slash: Perbill::from_percent(10),
			winner_share: Perbill::from_percent(50),
		}
	}

	#[pallet::storage]
	pub type DisputeConfig<T: Config> = StorageValue<
		_,
		DisputeParams<BalanceOf<T>, BlockNumberFor<T>>,
		ValueQuery,
		DefaultDisputeParams<T>,
	>;

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

	/// Open disputes, by the request of the receipt they challenge.
	#[pallet::storage]
	pub type Disputes<T: Config> = StorageMap<_, Twox64Concat, RequestId, Dispute<T>>;

	/// Open challenges of batch leaves' attribution, by operator and batch number: one leaf of
	/// a batch at a time.
	#[pallet::storage]
	pub type LeafDisputes<T: Config> =
		StorageDoubleMap<_, Blake2_128Concat, T::AccountId, Twox64Concat, u64, LeafDispute<T>>;

	/// The block of each operator's latest settled receipt: its bond stays until that
	/// receipt's challenge window is over.
	#[pallet::storage]
	pub type LastSettledAt<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, BlockNumberFor<T>>;

	/// Open disputes against each operator; its bond stays while any is open.
	#[pallet::storage]
	pub type DisputesAgainst<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, u32, ValueQuery>;

	/// Settlements in settlement order, from `MaturityHead` (the oldest not yet matured) to
	/// `MaturityTail` (the next free slot): `on_idle` matures them from the head.
	#[pallet::storage]
	pub type MaturityQueue<T: Config> = StorageMap<_, Twox64Concat, u64, Settlement<T::AccountId>>;

	/// Each operator's next batch number.
	#[pallet::storage]
	pub type BatchNonce<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, u64, ValueQuery>;

	/// Settled batches by operator and number.
	#[pallet::storage]
	pub type Batches<T: Config> =
		StorageDoubleMap<_, Blake2_128Concat, T::AccountId, Twox64Concat, u64, BatchRecord<T>>;

	/// Each prepaid payer's highest request nonce settled in a batch: a batch charges only
	/// nonces above it.
	#[pallet::storage]
	pub type SettledNonce<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, u64>;

	/// Credit a payer asked to withdraw, and from which block it may: until then batches still
	/// charge it.
	#[pallet::storage]
	pub type CreditUnlocks<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, (BalanceOf<T>, BlockNumberFor<T>)>;

	#[pallet::storage]
	pub type MaturityHead<T> = StorageValue<_, u64, ValueQuery>;

	#[pallet::storage]
	pub type MaturityTail<T> = StorageValue<_, u64, ValueQuery>;

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
		/// `None` keeps the default: a 100-block window, 50 blocks of voting, a tenth of the
		/// operator bond to challenge, 10 % slashed, half of it to the winner.
		pub dispute_params: Option<DisputeParams<BalanceOf<T>, BlockNumberFor<T>>>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			if let Some(split) = self.fee_split {
				assert!(split.is_valid(), "the fee split's shares must sum to 100 %");
				FeeParams::<T>::put(split);
			}
			if let Some(params) = self.dispute_params {
				assert!(
					Pallet::<T>::dispute_params_valid(&params),
					"a dispute's voting period must be at least one block"
				);
				DisputeConfig::<T>::put(params);
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
		/// A matured settlement's share for a contribution, credited to its contributor.
		ContributorCredited {
			settlement: Settlement<T::AccountId>,
			contribution_id: ContributionId,
			contributor: T::AccountId,
			amount: BalanceOf<T>,
		},
		RequestRefunded { request_id: RequestId, requester: T::AccountId, amount: BalanceOf<T> },
		RewardsClaimed { who: T::AccountId, amount: BalanceOf<T> },
		FeeSplitSet { split: FeeSplit<BalanceOf<T>> },
		/// A settlement matured: its contributors' rewards are claimable.
		RewardsReleased {
			settlement: Settlement<T::AccountId>,
			credited: BalanceOf<T>,
			to_treasury: BalanceOf<T>,
		},
		/// An operator's batch of prepaid receipts was accepted and paid out.
		BatchSettled {
			operator: T::AccountId,
			nonce: u64,
			model_id: ModelId,
			receipts: u32,
			receipts_root: H256,
			parts: FeeParts<BalanceOf<T>>,
		},
		CreditDeposited { who: T::AccountId, amount: BalanceOf<T> },
		CreditUnlocking { who: T::AccountId, amount: BalanceOf<T>, withdrawable_at: BlockNumberFor<T> },
		CreditWithdrawn { who: T::AccountId, amount: BalanceOf<T> },
		DisputeOpened {
			request_id: RequestId,
			challenger: T::AccountId,
			operator: T::AccountId,
			verifiers: BoundedVec<T::AccountId, T::MaxOperatorsPerModel>,
			deadline: BlockNumberFor<T>,
		},
		VoteCast { request_id: RequestId, verifier: T::AccountId, attestation: H256 },
		/// `slashed` is taken from the losing operator's bond or the losing challenger's; the
		/// winner got `to_winner` of it.
		DisputeResolved {
			request_id: RequestId,
			outcome: DisputeOutcome,
			slashed: BalanceOf<T>,
			to_winner: BalanceOf<T>,
		},
		DisputeParamsSet { params: DisputeParams<BalanceOf<T>, BlockNumberFor<T>> },
		/// A batch leaf's attribution was challenged; its batch is held until the dispute
		/// resolves.
		LeafDisputeOpened {
			operator: T::AccountId,
			nonce: u64,
			index: u32,
			challenger: T::AccountId,
			verifiers: BoundedVec<T::AccountId, T::MaxOperatorsPerModel>,
			deadline: BlockNumberFor<T>,
		},
		LeafVoteCast { operator: T::AccountId, nonce: u64, verifier: T::AccountId, attestation: H256 },
		/// As `DisputeResolved`, for a batch leaf: an overturn re-splits the leaf's part of the
		/// batch's contributors' pool by the challenger's weights, a rejection sends it to the
		/// treasury.
		LeafDisputeResolved {
			operator: T::AccountId,
			nonce: u64,
			index: u32,
			outcome: DisputeOutcome,
			slashed: BalanceOf<T>,
			to_winner: BalanceOf<T>,
		},
		/// A batch was proven wrong: `payer` got `refunded` back from the operator's bond,
		/// `slashed` more was taken from it, `to_challenger` of that to the challenger, and the
		/// batch's maturing pool went to the treasury.
		BatchFraudProven {
			operator: T::AccountId,
			nonce: u64,
			kind: FraudKind,
			payer: T::AccountId,
			refunded: BalanceOf<T>,
			slashed: BalanceOf<T>,
			to_challenger: BalanceOf<T>,
		},
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
		/// The unbonding delay has not passed, requests assigned to the operator are open, its
		/// latest receipt can still be challenged, or a dispute against it is open.
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
		/// No settled receipt for this request.
		NoReceipt,
		/// The receipt's challenge window is over.
		ChallengeWindowClosed,
		/// The receipt is already challenged.
		AlreadyDisputed,
		/// The challenge claims the receipt's own record and weights.
		SameRecord,
		/// The model has no operator besides the accused and the challenger to verify.
		NoVerifiers,
		/// No open dispute for this request.
		NoDispute,
		/// The voter is not one of the dispute's verifiers.
		NotVerifier,
		/// The verifier already voted.
		AlreadyVoted,
		/// The dispute's voting period is over: resolve it.
		VotingClosed,
		/// The dispute's voting period is not over.
		VotingOpen,
		/// The receipt is not maturing (it is challenged or already final).
		NotMaturing,
		/// The receipt's challenge window is not over.
		NotMatured,
		/// The voting period must be at least one block.
		InvalidDisputeParams,
		/// The batch's number is not the operator's next.
		BadBatchNonce,
		/// The operator does not serve the batch's model.
		NotModelOperator,
		/// A batch must settle at least one receipt and charge someone.
		EmptyBatch,
		/// Charges must be positive, by strictly ascending payer, and cover the platform fees.
		InvalidCharges,
		/// A payer's credit does not cover its charge.
		InsufficientCredit,
		/// Influence must be positive, by strictly ascending contribution, and sum to at most
		/// the shared fee.
		InvalidInfluence,
		/// Nothing to unlock or withdraw, or the unlock delay has not passed.
		CreditLocked,
		/// The batch's rates are not the model's prices and platform fee now.
		StaleRates,
		/// A charge's nonces must satisfy `SettledNonce < first_nonce <= last_nonce`.
		InvalidNonces,
		/// No settled batch with this operator and number.
		NoBatch,
		/// The batch was already proven wrong.
		FraudAlreadyProven,
		/// The charges are not the batch's.
		ChargesMismatch,
		/// A leaf's Merkle proof does not lead to the batch's root.
		BadMerkleProof,
		/// The leaves of a seam are not consecutive, or not the first or last.
		NotAdjacent,
		/// The leaves are consistent: nothing is proven.
		NotFraud,
		/// The record's hash with these weights is not the leaf's attestation.
		RecordMismatch,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn offchain_worker(now: BlockNumberFor<T>) {
			offchain::run::<T>(now);
		}

		fn on_idle(now: BlockNumberFor<T>, remaining: Weight) -> Weight {
			Self::mature_receipts(now, remaining)
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
			let now = frame_system::Pallet::<T>::block_number();
			let window = DisputeConfig::<T>::get().challenge_window;
			ensure!(
				Assigned::<T>::iter_prefix(&operator).next().is_none() &&
					DisputesAgainst::<T>::get(&operator) == 0 &&
					LastSettledAt::<T>::get(&operator)
						.is_none_or(|at| now > at.saturating_add(window)),
				Error::<T>::BondLocked
			);
			LastSettledAt::<T>::remove(&operator);
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
			Self::ensure_worker_or_signed(origin)?;
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

		/// Challenges the receipt of request `request_id` within its challenge window, holding
		/// the challenge bond. `prompt` is the request's (checked against the receipt's prompt
		/// hash); `record_hash` and `weights` are the attribution record the challenger
		/// recomputed, empty weights meaning none.
		#[pallet::call_index(9)]
		#[pallet::weight(T::WeightInfo::challenge(weights.len() as u32, T::MaxOperatorsPerModel::get()))]
		pub fn challenge(
			origin: OriginFor<T>,
			request_id: RequestId,
			prompt: BoundedVec<u8, T::MaxPromptLength>,
			record_hash: H256,
			weights: BoundedVec<(ContributionId, Ppm), T::MaxWeights>,
		) -> DispatchResult {
			let challenger = ensure_signed(origin)?;
			let mut record = Receipts::<T>::get(request_id).ok_or(Error::<T>::NoReceipt)?;
			Self::ensure_challengeable(record.status, record.settled_at)?;
			ensure!(BlakeTwo256::hash(&prompt) == record.prompt_hash, Error::<T>::PromptMismatch);
			ensure!(
				attestation(&record_hash, &weights) != record.attestation,
				Error::<T>::SameRecord
			);
			let dispute = Self::open_dispute(
				challenger,
				record.operator.clone(),
				record.model_id,
				prompt,
				record_hash,
				weights,
			)?;
			let (challenger, verifiers, deadline) =
				(dispute.challenger.clone(), dispute.verifiers.clone(), dispute.deadline);
			Disputes::<T>::insert(request_id, dispute);
			record.status = ReceiptStatus::Disputed;
			let operator = record.operator.clone();
			Receipts::<T>::insert(request_id, record);
			Self::deposit_event(Event::DisputeOpened {
				request_id,
				challenger,
				operator,
				verifiers,
				deadline,
			});
			Ok(())
		}

		/// A verifier's vote: the attestation its engine recomputed for the disputed receipt,
		/// signed with its attribution key. The first attestation with a majority of all
		/// verifiers resolves the dispute. The verifier's off-chain worker submits it as an
		/// authorized transaction without a fee; any account may submit it too.
		#[pallet::call_index(10)]
		#[pallet::weight(T::WeightInfo::vote(T::MaxOperatorsPerModel::get())
			.saturating_add(T::WeightInfo::resolve_dispute(T::MaxWeights::get())))]
		#[pallet::authorize(|_source, request_id, verifier, attestation, signature| {
			Pallet::<T>::authorize_vote(*request_id, verifier, attestation, signature)
		})]
		#[pallet::weight_of_authorize(T::WeightInfo::authorize_vote(T::MaxOperatorsPerModel::get()))]
		pub fn vote(
			origin: OriginFor<T>,
			request_id: RequestId,
			verifier: T::AccountId,
			attestation: H256,
			signature: <T::OperatorKey as RuntimeAppPublic>::Signature,
		) -> DispatchResult {
			Self::ensure_worker_or_signed(origin)?;
			let (mut dispute, index) =
				Self::check_vote(request_id, &verifier, &attestation, &signature)?;
			dispute.votes[index] = Some(attestation);
			Self::deposit_event(Event::VoteCast { request_id, verifier, attestation });
			if dispute.majority().is_some() {
				Self::resolve(request_id, dispute)
			} else {
				Disputes::<T>::insert(request_id, dispute);
				Ok(())
			}
		}

		/// Ends a dispute whose voting period is over without a majority: void, the receipt
		/// stands and the challenger's bond comes back. Anyone may call it.
		#[pallet::call_index(11)]
		#[pallet::weight(T::WeightInfo::resolve_dispute(T::MaxWeights::get()))]
		pub fn resolve_dispute(origin: OriginFor<T>, request_id: RequestId) -> DispatchResult {
			ensure_signed(origin)?;
			let dispute = Disputes::<T>::get(request_id).ok_or(Error::<T>::NoDispute)?;
			ensure!(
				frame_system::Pallet::<T>::block_number() > dispute.deadline,
				Error::<T>::VotingOpen
			);
			Self::resolve(request_id, dispute)
		}

		/// Credits a settlement's contributors once its challenge window is over, for when
		/// `on_idle` has not got to it yet. Anyone may call it.
		#[pallet::call_index(12)]
		#[pallet::weight(T::WeightInfo::release_rewards(T::MaxWeights::get())
			.max(T::WeightInfo::release_batch_rewards(T::MaxBatchContributions::get())))]
		pub fn release_rewards(
			origin: OriginFor<T>,
			settlement: Settlement<T::AccountId>,
		) -> DispatchResult {
			ensure_signed(origin)?;
			let now = frame_system::Pallet::<T>::block_number();
			let window = DisputeConfig::<T>::get().challenge_window;
			let settled_at =
				Self::maturing_since(&settlement).ok_or(Error::<T>::NotMaturing)?;
			ensure!(now > settled_at.saturating_add(window), Error::<T>::NotMatured);
			Self::release_settlement(&settlement)
		}

		/// Sets the challenge window, voting period, challenge bond and slashing for disputes
		/// opened from now on.
		#[pallet::call_index(13)]
		#[pallet::weight(T::WeightInfo::set_dispute_params())]
		pub fn set_dispute_params(
			origin: OriginFor<T>,
			params: DisputeParams<BalanceOf<T>, BlockNumberFor<T>>,
		) -> DispatchResult {
			T::AdminOrigin::ensure_origin(origin)?;
			ensure!(Self::dispute_params_valid(&params), Error::<T>::InvalidDisputeParams);
			DisputeConfig::<T>::put(params);
			Self::deposit_event(Event::DisputeParamsSet { params });
			Ok(())
		}

		/// Holds `amount` of the caller's balance as prepaid credit, which operators' batches
		/// charge for the requests the caller signs to their engines.
		#[pallet::call_index(14)]
		#[pallet::weight(T::WeightInfo::deposit_credit())]
		pub fn deposit_credit(origin: OriginFor<T>, amount: BalanceOf<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			T::Currency::hold(&HoldReason::Credit.into(), &who, amount)
				.map_err(|_| Error::<T>::InsufficientBalance)?;
			Self::deposit_event(Event::CreditDeposited { who, amount });
			Ok(())
		}

		/// Asks for `amount` of the caller's credit back: `withdraw_credit` releases it after
		/// `CreditUnlockDelay` blocks, until when batches may still charge it. Replaces an
		/// earlier unlock.
		#[pallet::call_index(15)]
		#[pallet::weight(T::WeightInfo::unlock_credit())]
		pub fn unlock_credit(origin: OriginFor<T>, amount: BalanceOf<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(
				!amount.is_zero() && amount <= Self::credit_of(&who),
				Error::<T>::CreditLocked
			);
			let at =
				frame_system::Pallet::<T>::block_number().saturating_add(T::CreditUnlockDelay::get());
			CreditUnlocks::<T>::insert(&who, (amount, at));
			Self::deposit_event(Event::CreditUnlocking { who, amount, withdrawable_at: at });
			Ok(())
		}

		/// Releases the unlocked credit (what batches left of it) once the delay has passed.
		#[pallet::call_index(16)]
		#[pallet::weight(T::WeightInfo::withdraw_credit())]
		pub fn withdraw_credit(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let (amount, at) = CreditUnlocks::<T>::get(&who).ok_or(Error::<T>::CreditLocked)?;
			ensure!(frame_system::Pallet::<T>::block_number() >= at, Error::<T>::CreditLocked);
			let amount = T::Currency::release(
				&HoldReason::Credit.into(),
				&who,
				amount.min(Self::credit_of(&who)),
				Precision::BestEffort,
			)?;
			CreditUnlocks::<T>::remove(&who);
			Self::deposit_event(Event::CreditWithdrawn { who, amount });
			Ok(())
		}

		/// Settles an operator's signed batch of prepaid receipts: charges each payer's credit,
		/// pays the split of the total and records the batch, whose contributors' pool matures
		/// like a receipt's. Any account may submit it; the operator's node submits it as an
		/// authorized transaction without a fee.
		#[pallet::call_index(17)]
		#[pallet::weight(T::WeightInfo::submit_receipt_batch(
			batch.charges.len() as u32,
			batch.influence.len() as u32,
		))]
		#[pallet::authorize(|_source, batch, signature| Pallet::<T>::authorize_batch(batch, signature))]
		#[pallet::weight_of_authorize(T::WeightInfo::authorize_submit_receipt_batch(
			T::MaxBatchPayers::get(),
			T::MaxBatchContributions::get(),
		))]
		pub fn submit_receipt_batch(
			origin: OriginFor<T>,
			batch: ReceiptBatch<T>,
			signature: <T::OperatorKey as RuntimeAppPublic>::Signature,
		) -> DispatchResult {
			Self::ensure_worker_or_signed(origin)?;
			let checked = Self::check_batch(&batch, &signature)?;
			Self::settle_batch(batch, checked)
		}

		/// Proves a settled batch wrong from its own leaves (see [`BatchFraud`]), restating the
		/// batch's charges. The wronged payer gets back what it lost, up to its charge, from
		/// the operator's bond; `slash` of the rest of the bond is taken, `winner_share` of that
		/// to the caller; a maturing batch's contributors' pool goes to the treasury. One proof
		/// per batch. Needs no bond: a proof that does not hold fails.
		#[pallet::call_index(18)]
		#[pallet::weight(T::WeightInfo::challenge_batch_leaf(charges.len() as u32)
			.max(T::WeightInfo::challenge_batch_seam(charges.len() as u32)))]
		pub fn challenge_batch(
			origin: OriginFor<T>,
			operator: T::AccountId,
			nonce: u64,
			charges: BoundedVec<Charge<T::AccountId, BalanceOf<T>>, T::MaxBatchPayers>,
			fraud: BatchFraud<T>,
		) -> DispatchResult {
			let challenger = ensure_signed(origin)?;
			let mut record = Batches::<T>::get(&operator, nonce).ok_or(Error::<T>::NoBatch)?;
			ensure!(!record.fraud_proven, Error::<T>::FraudAlreadyProven);
			ensure!(
				BlakeTwo256::hash_of(&charges) == record.charges_hash,
				Error::<T>::ChargesMismatch
			);
			let (kind, payer, loss) = Self::check_fraud(&record, &charges, &fraud)?;
			let (refunded, slashed, to_challenger) =
				Self::punish_fraud(&operator, &mut record, &payer, loss, &challenger)?;
			Batches::<T>::insert(&operator, nonce, record);
			Self::deposit_event(Event::BatchFraudProven {
				operator,
				nonce,
				kind,
				payer,
				refunded,
				slashed,
				to_challenger,
			});
			Ok(())
		}

		/// Challenges the attribution of one leaf of `operator`'s batch `nonce` within the
		/// batch's challenge window, holding the challenge bond (see [`LeafChallenge`]). The
		/// model's other operators recompute the operator's record on their engines and vote
		/// with `vote_leaf`, as for a receipt; the batch does not mature meanwhile. One leaf of
		/// a batch is disputed at a time.
		#[pallet::call_index(19)]
		#[pallet::weight(T::WeightInfo::challenge_leaf(
			challenge.record.len() as u32,
			T::MaxOperatorsPerModel::get(),
		))]
		pub fn challenge_leaf(
			origin: OriginFor<T>,
			operator: T::AccountId,
			nonce: u64,
			challenge: LeafChallenge<T>,
		) -> DispatchResult {
			let challenger = ensure_signed(origin)?;
			let mut batch = Batches::<T>::get(&operator, nonce).ok_or(Error::<T>::NoBatch)?;
			ensure!(!batch.fraud_proven, Error::<T>::FraudAlreadyProven);
			Self::ensure_challengeable(batch.status, batch.settled_at)?;
			Self::ensure_in_batch(&batch, &challenge.leaf)?;
			let LeafChallenge { leaf: proven, prompt, record, attested_weights, record_hash, weights } =
				challenge;
			let leaf = proven.leaf;
			ensure!(BlakeTwo256::hash(&prompt) == leaf.prompt_hash, Error::<T>::PromptMismatch);
			ensure!(
				attestation(&BlakeTwo256::hash(&record), &attested_weights) == leaf.attestation,
				Error::<T>::RecordMismatch
			);
			ensure!(
				attestation(&record_hash, &weights) != leaf.attestation,
				Error::<T>::SameRecord
			);
			let dispute = Self::open_dispute(
				challenger.clone(),
				operator.clone(),
				batch.model_id,
				prompt,
				record_hash,
				weights,
			)?;
			let (verifiers, deadline) = (dispute.verifiers.clone(), dispute.deadline);
			LeafDisputes::<T>::insert(
				&operator,
				nonce,
				LeafDispute {
					dispute,
					index: proven.index,
					attestation: leaf.attestation,
					output_hash: leaf.output_hash,
					record,
					attested_weights,
					shared: leaf.fee.saturating_sub(batch.rates.platform_fee),
				},
			);
			batch.status = ReceiptStatus::Disputed;
			Batches::<T>::insert(&operator, nonce, batch);
			Self::deposit_event(Event::LeafDisputeOpened {
				operator,
				nonce,
				index: proven.index,
				challenger,
				verifiers,
				deadline,
			});
			Ok(())
		}

		/// A verifier's vote in the dispute of a batch leaf: the attestation its engine
		/// recomputed from the operator's record, or [`INCONSISTENT_RECORD`], signed with its
		/// attribution key. As `vote`, the first attestation with a majority of all verifiers
		/// resolves it.
		#[pallet::call_index(20)]
		#[pallet::weight(T::WeightInfo::vote_leaf(T::MaxOperatorsPerModel::get())
			.saturating_add(T::WeightInfo::resolve_leaf_dispute(T::MaxWeights::get())))]
		#[pallet::authorize(|_source, operator, nonce, verifier, attestation, signature| {
			Pallet::<T>::authorize_leaf_vote(operator, *nonce, verifier, attestation, signature)
		})]
		#[pallet::weight_of_authorize(T::WeightInfo::authorize_vote_leaf(
			T::MaxOperatorsPerModel::get()
		))]
		pub fn vote_leaf(
			origin: OriginFor<T>,
			operator: T::AccountId,
			nonce: u64,
			verifier: T::AccountId,
			attestation: H256,
			signature: <T::OperatorKey as RuntimeAppPublic>::Signature,
		) -> DispatchResult {
			Self::ensure_worker_or_signed(origin)?;
			let (mut leaf, index) =
				Self::check_leaf_vote(&operator, nonce, &verifier, &attestation, &signature)?;
			leaf.dispute.votes[index] = Some(attestation);
			Self::deposit_event(Event::LeafVoteCast {
				operator: operator.clone(),
				nonce,
				verifier,
				attestation,
			});
			if leaf.dispute.majority().is_some() {
				Self::resolve_leaf(&operator, nonce, leaf)
			} else {
				LeafDisputes::<T>::insert(&operator, nonce, leaf);
				Ok(())
			}
		}

		/// Ends a leaf dispute whose voting period is over without a majority: void, the leaf
		/// stands and the challenger's bond comes back. Anyone may call it.
		#[pallet::call_index(21)]
		#[pallet::weight(T::WeightInfo::resolve_leaf_dispute(T::MaxWeights::get()))]
		pub fn resolve_leaf_dispute(
			origin: OriginFor<T>,
			operator: T::AccountId,
			nonce: u64,
		) -> DispatchResult {
			ensure_signed(origin)?;
			let leaf = LeafDisputes::<T>::get(&operator, nonce).ok_or(Error::<T>::NoDispute)?;
			ensure!(
				frame_system::Pallet::<T>::block_number() > leaf.dispute.deadline,
				Error::<T>::VotingOpen
			);
			Self::resolve_leaf(&operator, nonce, leaf)
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

		/// The fee at the model's current rates (see [`Rates::fee`]).
		pub fn fee(
			model: &ServedModel<T::AccountId, BalanceOf<T>>,
			input_tokens: u32,
			output_tokens: u32,
		) -> BalanceOf<T> {
			Self::rates(model).fee(input_tokens, output_tokens)
		}

		/// The model's prices and the platform fee now.
		pub fn rates(model: &ServedModel<T::AccountId, BalanceOf<T>>) -> Rates<BalanceOf<T>> {
			Rates {
				price_in: model.price_in,
				price_out: model.price_out,
				platform_fee: FeeParams::<T>::get().platform_fee,
			}
		}

		/// The parts of `fee`, the contributors' pool (before its split's rounding) and each
		/// weighted contribution's amount, per the module docs.
		pub fn split(
			fee: BalanceOf<T>,
			weights: &[(ContributionId, Ppm)],
		) -> (FeeParts<BalanceOf<T>>, BalanceOf<T>, alloc::vec::Vec<BalanceOf<T>>) {
			let shared = fee.saturating_sub(FeeParams::<T>::get().platform_fee);
			let (owner, stakers, pool) = Self::shares(shared);
			let amounts = Self::split_pool(pool, weights);
			let contributors =
				amounts.iter().fold(BalanceOf::<T>::zero(), |a, b| a.saturating_add(*b));
			let treasury =
				fee.saturating_sub(owner).saturating_sub(stakers).saturating_sub(contributors);
			(FeeParts { fee, owner, stakers, contributors, treasury }, pool, amounts)
		}

		/// The owner's, the stakers' and the contributors' parts of the shared fee, each rounded
		/// down.
		fn shares(shared: BalanceOf<T>) -> (BalanceOf<T>, BalanceOf<T>, BalanceOf<T>) {
			let params = FeeParams::<T>::get();
			(
				params.owner.mul_floor(shared),
				params.stakers.mul_floor(shared),
				params.contributors.mul_floor(shared),
			)
		}

		/// The hash of block 0, which every signed payload names so it is valid on one chain.
		pub fn genesis_hash() -> T::Hash {
			frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero())
		}

		/// Appends a settlement to the maturity queue.
		fn enqueue(settlement: Settlement<T::AccountId>) {
			let tail = MaturityTail::<T>::get();
			MaturityQueue::<T>::insert(tail, settlement);
			MaturityTail::<T>::put(tail.saturating_add(1));
		}

		/// The block a still-maturing settlement was settled at; `None` once challenged or
		/// final.
		fn maturing_since(settlement: &Settlement<T::AccountId>) -> Option<BlockNumberFor<T>> {
			let maturing = |status: ReceiptStatus| status == ReceiptStatus::Maturing;
			match settlement {
				Settlement::Receipt(id) =>
					Receipts::<T>::get(id).filter(|r| maturing(r.status)).map(|r| r.settled_at),
				Settlement::Batch(operator, nonce) => Batches::<T>::get(operator, nonce)
					.filter(|b| maturing(b.status))
					.map(|b| b.settled_at),
			}
		}

		/// Each weighted contribution's part of `pool`, rounded down.
		fn split_pool(
			pool: BalanceOf<T>,
			weights: &[(ContributionId, Ppm)],
		) -> alloc::vec::Vec<BalanceOf<T>> {
			weights
				.iter()
				.map(|(_, ppm)| Perbill::from_parts(ppm.saturating_mul(1000)).mul_floor(pool))
				.collect()
		}

		/// Verifiers need at least a block to vote.
		pub fn dispute_params_valid(params: &DisputeParams<BalanceOf<T>, BlockNumberFor<T>>) -> bool {
			!params.voting_period.is_zero()
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
			let genesis = Self::genesis_hash();
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
			ensure!(
				(receipt.method == AttributionMethod::None) == receipt.weights.is_empty(),
				Error::<T>::InvalidWeights
			);
			let contributors = Self::check_weights(&receipt.weights, &model)?;
			let fee = Self::fee(&model, receipt.input_tokens, receipt.output_tokens);
			ensure!(fee <= request.max_fee, Error::<T>::FeeAboveMax);
			Ok(CheckedReceipt { request, model, fee, contributors })
		}

		/// The contributor of each weighted contribution, in order. Weights are empty (no
		/// attribution) or positive, by strictly ascending contribution, summing to [`PPM`].
		fn check_weights(
			weights: &[(ContributionId, Ppm)],
			model: &ServedModel<T::AccountId, BalanceOf<T>>,
		) -> Result<alloc::vec::Vec<T::AccountId>, Error<T>> {
			if weights.is_empty() {
				return Ok(alloc::vec::Vec::new());
			}
			ensure!(
				weights.iter().all(|(_, ppm)| *ppm > 0) &&
					weights.windows(2).all(|w| w[0].0 < w[1].0) &&
					weights.iter().map(|(_, ppm)| *ppm as u64).sum::<u64>() == PPM as u64,
				Error::<T>::InvalidWeights
			);
			weights
				.iter()
				.map(|(contribution_id, _)| Self::lineage_contributor(*contribution_id, model))
				.collect()
		}

		/// The contributor of a contribution published in a datanet version `model`'s lineage
		/// covers.
		pub(crate) fn lineage_contributor(
			contribution_id: ContributionId,
			model: &ServedModel<T::AccountId, BalanceOf<T>>,
		) -> Result<T::AccountId, Error<T>> {
			let published = T::Datanets::published_contribution(contribution_id)
				.ok_or(Error::<T>::NotInLineage)?;
			ensure!(model.covers(published.datanet_id, published.version), Error::<T>::NotInLineage);
			Ok(published.contributor)
		}

		fn settle(receipt: Receipt<T>, checked: CheckedReceipt<T>) -> DispatchResult {
			let CheckedReceipt { request, model, fee, contributors } = checked;
			let request_id = receipt.request_id;
			let (parts, pool, amounts) = Self::split(fee, &receipt.weights);
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
			// existential deposit) is credited its part right away, from the reward pot.
			let mut to_pot = pool;
			if pay(&model.owner, parts.owner).is_err() {
				to_pot = to_pot.saturating_add(parts.owner);
				Rewards::<T>::mutate(&model.owner, |r| *r = r.saturating_add(parts.owner));
			}
			pay(&Self::reward_pot(), to_pot)?;
			pay(&T::StakingPot::get(), parts.stakers)?;
			// The pool's rounding remainder reaches the treasury when the receipt matures.
			pay(&T::Treasury::get(), parts.treasury.saturating_sub(pool.saturating_sub(parts.contributors)))?;
			let refunded = T::Currency::release(
				&escrow,
				&request.requester,
				request.max_fee.saturating_sub(fee),
				Precision::BestEffort,
			)
			.unwrap_or_default();

			let credits = receipt
				.weights
				.iter()
				.zip(contributors)
				.zip(amounts)
				.filter(|(_, amount)| !amount.is_zero())
				.map(|(((contribution_id, _), contributor), amount)| {
					(*contribution_id, contributor, amount)
				});
			let now = frame_system::Pallet::<T>::block_number();
			Requests::<T>::remove(request_id);
			Assigned::<T>::remove(&request.operator, request_id);
			LastSettledAt::<T>::insert(&request.operator, now);
			Receipts::<T>::insert(
				request_id,
				ReceiptRecord {
					operator: receipt.operator.clone(),
					model_id: receipt.model_id,
					prompt_hash: receipt.prompt_hash,
					output_hash: receipt.output_hash,
					max_output_tokens: request.max_output_tokens,
					method: receipt.method,
					record_hash: receipt.record_hash,
					attestation: attestation(&receipt.record_hash, &receipt.weights),
					fee,
					pool,
					credits: BoundedVec::truncate_from(credits.collect()),
					settled_at: now,
					status: ReceiptStatus::Maturing,
				},
			);
			Self::enqueue(Settlement::Receipt(request_id));
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

		/// Credits `credits` from the reward pot and sends what they leave of `pool` to the
		/// treasury.
		fn credit(
			settlement: Settlement<T::AccountId>,
			credits: &[(ContributionId, T::AccountId, BalanceOf<T>)],
			pool: BalanceOf<T>,
		) -> DispatchResult {
			let mut credited = BalanceOf::<T>::zero();
			for (contribution_id, contributor, amount) in credits {
				credited = credited.saturating_add(*amount);
				Rewards::<T>::mutate(contributor, |r| *r = r.saturating_add(*amount));
				Self::deposit_event(Event::ContributorCredited {
					settlement: settlement.clone(),
					contribution_id: *contribution_id,
					contributor: contributor.clone(),
					amount: *amount,
				});
			}
			let to_treasury = pool.saturating_sub(credited);
			if !to_treasury.is_zero() {
				T::Currency::transfer(
					&Self::reward_pot(),
					&T::Treasury::get(),
					to_treasury,
					Preservation::Preserve,
				)?;
			}
			Self::deposit_event(Event::RewardsReleased { settlement, credited, to_treasury });
			Ok(())
		}

		/// Credits a receipt's contributors; the receipt becomes final.
		fn release(request_id: RequestId, record: &mut ReceiptRecord<T>) -> DispatchResult {
			Self::credit(Settlement::Receipt(request_id), &record.credits, record.pool)?;
			record.credits = BoundedVec::new();
			record.status = ReceiptStatus::Final;
			Ok(())
		}

		/// Credits a maturing settlement's contributors and stores it final.
		fn release_settlement(settlement: &Settlement<T::AccountId>) -> DispatchResult {
			match settlement {
				Settlement::Receipt(request_id) => {
					let mut record =
						Receipts::<T>::get(request_id).ok_or(Error::<T>::NoReceipt)?;
					Self::release(*request_id, &mut record)?;
					Receipts::<T>::insert(request_id, record);
				},
				Settlement::Batch(operator, nonce) => {
					let mut record =
						Batches::<T>::get(operator, nonce).ok_or(Error::<T>::NotMaturing)?;
					Self::credit(settlement.clone(), &record.credits, record.pool)?;
					record.credits = BoundedVec::new();
					record.status = ReceiptStatus::Final;
					Batches::<T>::insert(operator, nonce, record);
				},
			}
			Ok(())
		}

		/// Matures settlements from the head of the queue while their window is over and
		/// `remaining` allows, each priced by its kind (a receipt's `MaxWeights` credits or a
		/// batch's `MaxBatchContributions`); challenged and released ones just leave the queue.
		fn mature_receipts(now: BlockNumberFor<T>, remaining: Weight) -> Weight {
			let db = T::DbWeight::get();
			let cost = |settlement: &Settlement<T::AccountId>| {
				match settlement {
					Settlement::Receipt(_) => T::WeightInfo::release_rewards(T::MaxWeights::get()),
					Settlement::Batch(..) =>
						T::WeightInfo::release_batch_rewards(T::MaxBatchContributions::get()),
				}
				.saturating_add(db.reads_writes(2, 2))
			};
			let mut used = db.reads(3);
			if remaining.any_lt(used) {
				return Weight::zero();
			}
			let window = DisputeConfig::<T>::get().challenge_window;
			let (mut head, tail) = (MaturityHead::<T>::get(), MaturityTail::<T>::get());
			while head < tail && !remaining.any_lt(used.saturating_add(db.reads(1))) {
				let Some(settlement) = MaturityQueue::<T>::get(head) else { break };
				let item = cost(&settlement);
				if remaining.any_lt(used.saturating_add(item)) {
					used = used.saturating_add(db.reads(1));
					break;
				}
				used = used.saturating_add(item);
				if let Some(settled_at) = Self::maturing_since(&settlement) {
					if now <= settled_at.saturating_add(window) {
						break;
					}
					// The pot holds every maturing pool, so this only fails if the runtime's
					// accounting is broken: leave the settlement for `release_rewards` rather
					// than stall the queue.
					let _ = Self::release_settlement(&settlement);
				}
				MaturityQueue::<T>::remove(head);
				head = head.saturating_add(1);
			}
			MaturityHead::<T>::put(head);
			used
		}

		/// The payer's credit.
		pub fn credit_of(who: &T::AccountId) -> BalanceOf<T> {
			T::Currency::balance_on_hold(&HoldReason::Credit.into(), who)
		}

		/// Everything that makes a batch payable; shared by the transaction pool's check and
		/// the dispatch.
		pub fn check_batch(
			batch: &ReceiptBatch<T>,
			signature: &<T::OperatorKey as RuntimeAppPublic>::Signature,
		) -> Result<CheckedBatch<T>, Error<T>> {
			let operator = Operators::<T>::get(&batch.operator).ok_or(Error::<T>::NotOperator)?;
			let genesis = Self::genesis_hash();
			ensure!(
				operator.key.verify(&batch.signing_payload(&genesis), signature),
				Error::<T>::BadSignature
			);
			ensure!(batch.nonce == BatchNonce::<T>::get(&batch.operator), Error::<T>::BadBatchNonce);
			ensure!(operator.models.contains(&batch.model_id), Error::<T>::NotModelOperator);
			let model = T::Models::served_model(batch.model_id).ok_or(Error::<T>::ModelNotFound)?;
			ensure!(batch.rates == Self::rates(&model), Error::<T>::StaleRates);
			ensure!(batch.receipts > 0 && !batch.charges.is_empty(), Error::<T>::EmptyBatch);
			ensure!(
				batch.charges.windows(2).all(|w| w[0].payer < w[1].payer) &&
					batch.charges.iter().all(|c| !c.amount.is_zero()),
				Error::<T>::InvalidCharges
			);
			let mut fee = BalanceOf::<T>::zero();
			for charge in batch.charges.iter() {
				ensure!(
					charge.first_nonce <= charge.last_nonce &&
						SettledNonce::<T>::get(&charge.payer)
							.map_or(true, |settled| charge.first_nonce > settled),
					Error::<T>::InvalidNonces
				);
				ensure!(charge.amount <= Self::credit_of(&charge.payer), Error::<T>::InsufficientCredit);
				fee = fee.checked_add(&charge.amount).ok_or(Error::<T>::InvalidCharges)?;
			}
			let platform = batch.rates.platform_fee.saturating_mul(batch.receipts.into());
			let shared = fee.checked_sub(&platform).ok_or(Error::<T>::InvalidCharges)?;
			let influence = &batch.influence;
			let total = influence
				.iter()
				.try_fold(BalanceOf::<T>::zero(), |sum, (_, i)| sum.checked_add(i))
				.ok_or(Error::<T>::InvalidInfluence)?;
			ensure!(
				influence.windows(2).all(|w| w[0].0 < w[1].0) &&
					influence.iter().all(|(_, i)| !i.is_zero()) &&
					total <= shared,
				Error::<T>::InvalidInfluence
			);
			let contributors = influence
				.iter()
				.map(|(contribution_id, _)| Self::lineage_contributor(*contribution_id, &model))
				.collect::<Result<_, _>>()?;
			Ok(CheckedBatch {
				owner: model.owner,
				adapter_hash: model.adapter_hash,
				fee,
				shared,
				contributors,
			})
		}

		fn settle_batch(batch: ReceiptBatch<T>, checked: CheckedBatch<T>) -> DispatchResult {
			let CheckedBatch { owner, adapter_hash, fee, shared, contributors } = checked;
			let pot = Self::reward_pot();
			for charge in batch.charges.iter() {
				T::Currency::transfer_on_hold(
					&HoldReason::Credit.into(),
					&charge.payer,
					&pot,
					charge.amount,
					Precision::Exact,
					Restriction::Free,
					Fortitude::Force,
				)?;
				SettledNonce::<T>::insert(&charge.payer, charge.last_nonce);
			}
			let contributors_share = FeeParams::<T>::get().contributors;
			let (owner_part, stakers, pool) = Self::shares(shared);
			let credits: alloc::vec::Vec<_> = batch
				.influence
				.iter()
				.zip(contributors)
				.map(|((id, influence), who)| (*id, who, contributors_share.mul_floor(*influence)))
				.filter(|(_, _, amount)| !amount.is_zero())
				.collect();
			let contributors_part =
				credits.iter().fold(BalanceOf::<T>::zero(), |s, (_, _, a)| s.saturating_add(*a));
			let treasury = fee
				.saturating_sub(owner_part)
				.saturating_sub(stakers)
				.saturating_sub(contributors_part);
			// The pot keeps the pool; the rest leaves it now.
			let pay = |to: &T::AccountId, amount: BalanceOf<T>| -> DispatchResult {
				if amount.is_zero() {
					return Ok(());
				}
				T::Currency::transfer(&pot, to, amount, Preservation::Preserve).map(|_| ())
			};
			if pay(&owner, owner_part).is_err() {
				Rewards::<T>::mutate(&owner, |r| *r = r.saturating_add(owner_part));
			}
			pay(&T::StakingPot::get(), stakers)?;
			pay(&T::Treasury::get(), treasury.saturating_sub(pool.saturating_sub(contributors_part)))?;

			let now = frame_system::Pallet::<T>::block_number();
			let nonce = batch.nonce;
			BatchNonce::<T>::insert(&batch.operator, nonce.saturating_add(1));
			LastSettledAt::<T>::insert(&batch.operator, now);
			Batches::<T>::insert(
				&batch.operator,
				nonce,
				BatchRecord {
					model_id: batch.model_id,
					adapter_hash,
					receipts_root: batch.receipts_root,
					receipts: batch.receipts,
					rates: batch.rates,
					charges_hash: BlakeTwo256::hash_of(&batch.charges),
					fee,
					pool,
					credits: BoundedVec::truncate_from(credits),
					settled_at: now,
					status: ReceiptStatus::Maturing,
					fraud_proven: false,
				},
			);
			Self::enqueue(Settlement::Batch(batch.operator.clone(), nonce));
			Self::deposit_event(Event::BatchSettled {
				operator: batch.operator,
				nonce,
				model_id: batch.model_id,
				receipts: batch.receipts,
				receipts_root: batch.receipts_root,
				parts: FeeParts {
					fee,
					owner: owner_part,
					stakers,
					contributors: contributors_part,
					treasury,
				},
			});
			Ok(())
		}

		/// A receipt or leaf that can still be challenged: maturing, inside its window.
		fn ensure_challengeable(
			status: ReceiptStatus,
			settled_at: BlockNumberFor<T>,
		) -> DispatchResult {
			match status {
				ReceiptStatus::Maturing => {},
				ReceiptStatus::Disputed => return Err(Error::<T>::AlreadyDisputed.into()),
				ReceiptStatus::Final => return Err(Error::<T>::ChallengeWindowClosed.into()),
			}
			let window = DisputeConfig::<T>::get().challenge_window;
			ensure!(
				frame_system::Pallet::<T>::block_number() <= settled_at.saturating_add(window),
				Error::<T>::ChallengeWindowClosed
			);
			Ok(())
		}

		/// A dispute of `operator`'s attribution for `model_id`, opened by `challenger` with
		/// the record it recomputed: the claimed weights must be the lineage's, the verifiers
		/// are the model's other operators that are not unbonding, and the challenge bond is
		/// held. The operator's bond stays until it closes.
		fn open_dispute(
			challenger: T::AccountId,
			operator: T::AccountId,
			model_id: ModelId,
			prompt: BoundedVec<u8, T::MaxPromptLength>,
			record_hash: H256,
			weights: BoundedVec<(ContributionId, Ppm), T::MaxWeights>,
		) -> Result<Dispute<T>, DispatchError> {
			let model = T::Models::served_model(model_id).ok_or(Error::<T>::ModelNotFound)?;
			let contributors = Self::check_weights(&weights, &model)?;
			let verifiers: alloc::vec::Vec<T::AccountId> = ModelOperators::<T>::get(model_id)
				.into_iter()
				.filter(|v| *v != operator && *v != challenger)
				.filter(|v| Operators::<T>::get(v).is_some_and(|info| info.unbonding_at.is_none()))
				.collect();
			ensure!(!verifiers.is_empty(), Error::<T>::NoVerifiers);
			let params = DisputeConfig::<T>::get();
			T::Currency::hold(&HoldReason::ChallengeBond.into(), &challenger, params.challenge_bond)
				.map_err(|_| Error::<T>::InsufficientBalance)?;
			DisputesAgainst::<T>::mutate(&operator, |n| *n = n.saturating_add(1));
			let votes = BoundedVec::truncate_from(alloc::vec![None; verifiers.len()]);
			Ok(Dispute {
				challenger,
				operator,
				bond: params.challenge_bond,
				prompt,
				claimed_record_hash: record_hash,
				claimed_weights: weights,
				claimed_contributors: BoundedVec::truncate_from(contributors),
				verifiers: BoundedVec::truncate_from(verifiers),
				votes,
				deadline: frame_system::Pallet::<T>::block_number()
					.saturating_add(params.voting_period),
			})
		}

		/// The verifier's place in `dispute` if it may still vote and signed `payload`.
		fn check_ballot(
			dispute: &Dispute<T>,
			verifier: &T::AccountId,
			payload: &[u8],
			signature: &<T::OperatorKey as RuntimeAppPublic>::Signature,
		) -> Result<usize, Error<T>> {
			ensure!(
				frame_system::Pallet::<T>::block_number() <= dispute.deadline,
				Error::<T>::VotingClosed
			);
			let index = dispute
				.verifiers
				.iter()
				.position(|v| v == verifier)
				.ok_or(Error::<T>::NotVerifier)?;
			ensure!(dispute.votes[index].is_none(), Error::<T>::AlreadyVoted);
			let key = Operators::<T>::get(verifier).ok_or(Error::<T>::NotOperator)?.key;
			ensure!(key.verify(&payload, signature), Error::<T>::BadSignature);
			Ok(index)
		}

		/// A valid vote's dispute and the verifier's place in it.
		pub fn check_vote(
			request_id: RequestId,
			verifier: &T::AccountId,
			attestation: &H256,
			signature: &<T::OperatorKey as RuntimeAppPublic>::Signature,
		) -> Result<(Dispute<T>, usize), Error<T>> {
			let dispute = Disputes::<T>::get(request_id).ok_or(Error::<T>::NoDispute)?;
			let payload = vote_payload(&Self::genesis_hash(), request_id, attestation);
			let index = Self::check_ballot(&dispute, verifier, &payload, signature)?;
			Ok((dispute, index))
		}

		/// A valid leaf vote's dispute and the verifier's place in it.
		pub fn check_leaf_vote(
			operator: &T::AccountId,
			nonce: u64,
			verifier: &T::AccountId,
			attestation: &H256,
			signature: &<T::OperatorKey as RuntimeAppPublic>::Signature,
		) -> Result<(LeafDispute<T>, usize), Error<T>> {
			let leaf = LeafDisputes::<T>::get(operator, nonce).ok_or(Error::<T>::NoDispute)?;
			let payload =
				leaf_vote_payload(&Self::genesis_hash(), operator, nonce, leaf.index, attestation);
			let index = Self::check_ballot(&leaf.dispute, verifier, &payload, signature)?;
			Ok((leaf, index))
		}

		/// The outcome of a dispute of an attribution attested as `attested`, with the bonds
		/// paid: a losing challenger's forfeited, a losing operator's slashed. Returns what was
		/// taken and what the winner got of it.
		fn judge(
			dispute: &Dispute<T>,
			attested: H256,
		) -> Result<(DisputeOutcome, BalanceOf<T>, BalanceOf<T>), DispatchError> {
			let params = DisputeConfig::<T>::get();
			let claimed = attestation(&dispute.claimed_record_hash, &dispute.claimed_weights);
			let outcome = match dispute.majority() {
				None => DisputeOutcome::Void,
				Some(a) if a == attested => DisputeOutcome::Upheld,
				Some(a) if a == claimed => DisputeOutcome::Overturned,
				Some(_) => DisputeOutcome::Rejected,
			};
			let bond_reason: T::RuntimeHoldReason = HoldReason::ChallengeBond.into();
			let (mut slashed, mut to_winner) = (BalanceOf::<T>::zero(), BalanceOf::<T>::zero());
			if outcome == DisputeOutcome::Upheld {
				(slashed, to_winner) = Self::forfeit(
					&bond_reason,
					&dispute.challenger,
					dispute.bond,
					&dispute.operator,
					params.winner_share,
				)?;
			} else {
				T::Currency::release(
					&bond_reason,
					&dispute.challenger,
					dispute.bond,
					Precision::BestEffort,
				)?;
			}
			if matches!(outcome, DisputeOutcome::Overturned | DisputeOutcome::Rejected) {
				let mut operator =
					Operators::<T>::get(&dispute.operator).ok_or(Error::<T>::NotOperator)?;
				let winner_share = if outcome == DisputeOutcome::Overturned {
					params.winner_share
				} else {
					Perbill::zero()
				};
				(slashed, to_winner) = Self::forfeit(
					&HoldReason::OperatorBond.into(),
					&dispute.operator,
					params.slash.mul_floor(operator.bond),
					&dispute.challenger,
					winner_share,
				)?;
				operator.bond = operator.bond.saturating_sub(slashed);
				Operators::<T>::insert(&dispute.operator, operator);
			}
			DisputesAgainst::<T>::mutate_exists(&dispute.operator, |n| {
				*n = n.map(|n| n.saturating_sub(1)).filter(|n| *n > 0)
			});
			Ok((outcome, slashed, to_winner))
		}

		/// The credits of `pool` split by the challenger's weights.
		fn claimed_credits(
			dispute: &Dispute<T>,
			pool: BalanceOf<T>,
		) -> alloc::vec::Vec<(ContributionId, T::AccountId, BalanceOf<T>)> {
			let amounts = Self::split_pool(pool, &dispute.claimed_weights);
			dispute
				.claimed_weights
				.iter()
				.zip(dispute.claimed_contributors.iter())
				.zip(amounts)
				.filter(|(_, amount)| !amount.is_zero())
				.map(|(((id, _), who), amount)| (*id, who.clone(), amount))
				.collect()
		}

		/// Pays out a dispute by its majority (void without one) and closes it: an overturn
		/// re-splits the receipt's pool by the challenger's weights, a rejection sends it to
		/// the treasury.
		fn resolve(request_id: RequestId, dispute: Dispute<T>) -> DispatchResult {
			let mut record = Receipts::<T>::get(request_id).ok_or(Error::<T>::NoReceipt)?;
			let (outcome, slashed, to_winner) = Self::judge(&dispute, record.attestation)?;
			match outcome {
				DisputeOutcome::Overturned =>
					record.credits =
						BoundedVec::truncate_from(Self::claimed_credits(&dispute, record.pool)),
				DisputeOutcome::Rejected => record.credits = BoundedVec::new(),
				DisputeOutcome::Upheld | DisputeOutcome::Void => {},
			}
			Self::release(request_id, &mut record)?;
			Receipts::<T>::insert(request_id, record);
			Disputes::<T>::remove(request_id);
			Self::deposit_event(Event::DisputeResolved { request_id, outcome, slashed, to_winner });
			Ok(())
		}

		/// Pays out a leaf dispute and closes it. The leaf's part of the batch's pool is its
		/// `shared` fee's contributors' share, split by the attested weights: an overturn moves
		/// it to the challenger's weights, a rejection takes it out of the credits (to the
		/// treasury at maturity). The batch matures again, at once if its window is over.
		fn resolve_leaf(
			operator: &T::AccountId,
			nonce: u64,
			leaf: LeafDispute<T>,
		) -> DispatchResult {
			let mut batch = Batches::<T>::get(operator, nonce).ok_or(Error::<T>::NoBatch)?;
			let (outcome, slashed, to_winner) = Self::judge(&leaf.dispute, leaf.attestation)?;
			// A fraud proof meanwhile made the batch final and voided its pool.
			if batch.status == ReceiptStatus::Disputed {
				let pool = FeeParams::<T>::get().contributors.mul_floor(leaf.shared);
				let added = match outcome {
					DisputeOutcome::Overturned => Some(Self::claimed_credits(&leaf.dispute, pool)),
					DisputeOutcome::Rejected => Some(alloc::vec::Vec::new()),
					DisputeOutcome::Upheld | DisputeOutcome::Void => None,
				};
				if let Some(added) = added {
					let removed = leaf
						.attested_weights
						.iter()
						.map(|(id, _)| *id)
						.zip(Self::split_pool(pool, &leaf.attested_weights));
					Self::resplit(&mut batch, removed, added);
				}
				batch.status = ReceiptStatus::Maturing;
				Self::enqueue(Settlement::Batch(operator.clone(), nonce));
			}
			Batches::<T>::insert(operator, nonce, batch);
			LeafDisputes::<T>::remove(operator, nonce);
			Self::deposit_event(Event::LeafDisputeResolved {
				operator: operator.clone(),
				nonce,
				index: leaf.index,
				outcome,
				slashed,
				to_winner,
			});
			Ok(())
		}

		/// Takes the `removed` amounts from a batch's credits (none below zero) and adds the
		/// `added` credits as far as the batch's pool allows. A contribution the full credit
		/// list has no place for leaves its part in the pool, for the treasury at maturity.
		fn resplit(
			batch: &mut BatchRecord<T>,
			removed: impl Iterator<Item = (ContributionId, BalanceOf<T>)>,
			added: alloc::vec::Vec<(ContributionId, T::AccountId, BalanceOf<T>)>,
		) {
			for (id, amount) in removed {
				if let Some(credit) = batch.credits.iter_mut().find(|c| c.0 == id) {
					credit.2 = credit.2.saturating_sub(amount);
				}
			}
			let credited =
				batch.credits.iter().fold(BalanceOf::<T>::zero(), |s, c| s.saturating_add(c.2));
			let mut room = batch.pool.saturating_sub(credited);
			for (id, who, amount) in added {
				let amount = amount.min(room);
				room = room.saturating_sub(amount);
				match batch.credits.iter_mut().find(|c| c.0 == id) {
					Some(credit) => credit.2 = credit.2.saturating_add(amount),
					None => {
						let _ = batch.credits.try_push((id, who, amount));
					},
				}
			}
			batch.credits.retain(|c| !c.2.is_zero());
		}

		/// Takes `amount` of `loser`'s hold `reason`: `winner_share` of it to `winner`, the rest
		/// to the treasury. Returns what was taken and what the winner got.
		pub(crate) fn forfeit(
			reason: &T::RuntimeHoldReason,
			loser: &T::AccountId,
			amount: BalanceOf<T>,
			winner: &T::AccountId,
			winner_share: Perbill,
		) -> Result<(BalanceOf<T>, BalanceOf<T>), DispatchError> {
			let amount = amount.min(T::Currency::balance_on_hold(reason, loser));
			let to_winner = winner_share.mul_floor(amount);
			let pay = |to: &T::AccountId, part: BalanceOf<T>| -> DispatchResult {
				if !part.is_zero() {
					T::Currency::transfer_on_hold(
						reason,
						loser,
						to,
						part,
						Precision::Exact,
						Restriction::Free,
						Fortitude::Force,
					)?;
				}
				Ok(())
			};
			pay(winner, to_winner)?;
			pay(&T::Treasury::get(), amount.saturating_sub(to_winner))?;
			Ok((amount, to_winner))
		}

		/// An off-chain worker's authorized transaction, or any signed account's.
		fn ensure_worker_or_signed(origin: OriginFor<T>) -> DispatchResult {
			if ensure_authorized(origin.clone()).is_ok() {
				return Ok(());
			}
			ensure_signed(origin)?;
			Ok(())
		}

		/// The transaction pool's answer for an off-chain worker's transaction: the dispatch's
		/// own check has run (`checked`), so an invalid one never enters a block; a valid one
		/// provides `(tag, provides)`, one per request, vote or batch in the pool.
		fn pool_validity(
			checked: Result<(), Error<T>>,
			tag: &'static str,
			provides: impl Encode,
		) -> TransactionValidityWithRefund {
			checked.map_err(|e| {
				TransactionValidityError::Invalid(InvalidTransaction::Custom(e.into_index_u8()))
			})?;
			let validity = ValidTransaction::with_tag_prefix(tag)
				.priority(T::ReceiptPriority::get())
				.and_provides(provides)
				.longevity(64)
				.propagate(true)
				.build()?;
			Ok((validity, Weight::zero()))
		}

		fn authorize_receipt(
			receipt: &Receipt<T>,
			signature: &<T::OperatorKey as RuntimeAppPublic>::Signature,
		) -> TransactionValidityWithRefund {
			let checked = Self::check_receipt(receipt, signature).map(|_| ());
			Self::pool_validity(checked, "AttributionReceipt", receipt.request_id)
		}

		fn authorize_vote(
			request_id: RequestId,
			verifier: &T::AccountId,
			attestation: &H256,
			signature: &<T::OperatorKey as RuntimeAppPublic>::Signature,
		) -> TransactionValidityWithRefund {
			let checked = Self::check_vote(request_id, verifier, attestation, signature).map(|_| ());
			Self::pool_validity(checked, "AttributionVote", (request_id, verifier))
		}

		fn authorize_leaf_vote(
			operator: &T::AccountId,
			nonce: u64,
			verifier: &T::AccountId,
			attestation: &H256,
			signature: &<T::OperatorKey as RuntimeAppPublic>::Signature,
		) -> TransactionValidityWithRefund {
			let checked = Self::check_leaf_vote(operator, nonce, verifier, attestation, signature)
				.map(|_| ());
			Self::pool_validity(checked, "AttributionLeafVote", (operator, nonce, verifier))
		}

		fn authorize_batch(
			batch: &ReceiptBatch<T>,
			signature: &<T::OperatorKey as RuntimeAppPublic>::Signature,
		) -> TransactionValidityWithRefund {
			let checked = Self::check_batch(batch, signature).map(|_| ());
			Self::pool_validity(checked, "AttributionBatch", (&batch.operator, batch.nonce))
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

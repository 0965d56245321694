//! The records the pallet keeps: operators, requests, receipts and the fee split.

use crate::{BalanceOf, Config};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{BoundedVec, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound};
use frame_system::pallet_prelude::BlockNumberFor;
use pallet_datanets::ContributionId;
use pallet_model_registry::ModelId;
use scale_info::TypeInfo;
use sp_core::H256;
use frame_support::traits::ConstU32;
use sp_runtime::{traits::AtLeast32BitUnsigned, Perbill};

/// Index of an on-chain inference request, assigned in order from 0 and never reused.
pub type RequestId = u64;

/// Influence in parts per million; a receipt's weights sum to exactly [`PPM`].
pub type Ppm = u32;
pub const PPM: Ppm = 1_000_000;

/// How the operator's engine computed the weights (the engine's `attribution.method`).
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
pub enum AttributionMethod {
	/// No attribution: the contributors' share goes to the treasury.
	None,
	/// Infini-gram style span matching over the lineage's contributions.
	Span,
	/// DataInf gradient influence through the adapter.
	Datainf,
}

/// How `F − platform_fee` is split. The three shares sum to 100 %; each party's part is rounded
/// down and the treasury takes the platform fee plus every rounding remainder, so the parts sum to
/// exactly `F`.
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
	serde::Serialize, serde::Deserialize,
)]
pub struct FeeSplit<Balance> {
	/// beta: to the model owner.
	pub owner: Perbill,
	/// gamma: to the staking-reward pot.
	pub stakers: Perbill,
	/// delta: to the contributors, pro rata to their weights.
	pub contributors: Perbill,
	/// Added to every fee and paid to the treasury.
	pub platform_fee: Balance,
}

/// A registered inference operator.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct OperatorInfo<T: Config> {
	/// Signs the operator's receipts; lives in its node's keystore (key type `attr`).
	pub key: T::OperatorKey,
	/// The models it serves; requests for them may be assigned to it.
	pub models: BoundedVec<ModelId, T::MaxModelsPerOperator>,
	/// Held while registered and until the unbonding delay has passed.
	pub bond: BalanceOf<T>,
	/// Set by `unbond`: the block from which `withdraw_bond` may return the bond.
	pub unbonding_at: Option<BlockNumberFor<T>>,
}

/// An inference request waiting for its operator's receipt.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct RequestInfo<T: Config> {
	pub requester: T::AccountId,
	pub model_id: ModelId,
	pub operator: T::AccountId,
	/// UTF-8, sent to the engine as the completion prompt.
	pub prompt: BoundedVec<u8, T::MaxPromptLength>,
	pub max_output_tokens: u32,
	/// Held from the requester; what the receipt does not charge comes back.
	pub max_fee: BalanceOf<T>,
	/// After this block anyone may refund the request.
	pub deadline: BlockNumberFor<T>,
}

/// What an operator signs for one answered request.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, DecodeWithMemTracking,
	TypeInfo,
)]
#[scale_info(skip_type_params(T))]
pub struct Receipt<T: Config> {
	pub request_id: RequestId,
	pub operator: T::AccountId,
	pub model_id: ModelId,
	/// blake2-256 of the adapter file that served the request.
	pub adapter_hash: H256,
	/// blake2-256 of the prompt's UTF-8 bytes.
	pub prompt_hash: H256,
	/// blake2-256 of `output`.
	pub output_hash: H256,
	pub input_tokens: u32,
	pub output_tokens: u32,
	pub method: AttributionMethod,
	/// The span index's or gradient store's root the weights were computed against.
	pub index_root: H256,
	/// The hash of the engine's canonical attribution record, which `verify` recomputes.
	pub record_hash: H256,
	/// `(contribution, ppm)`, contribution ids strictly ascending, summing to [`PPM`]; empty
	/// when `method` is `None`.
	pub weights: BoundedVec<(ContributionId, Ppm), T::MaxWeights>,
	/// The generated text, UTF-8.
	pub output: BoundedVec<u8, T::MaxOutputLength>,
}

impl<T: Config> Receipt<T> {
	/// The bytes the operator's key signs: a domain tag, the chain's genesis hash (a receipt is
	/// valid on one chain only) and the receipt.
	pub fn signing_payload(&self, genesis: &T::Hash) -> alloc::vec::Vec<u8> {
		(b"openledger/receipt/v1", genesis, self).encode()
	}
}

/// Where a settled receipt's contributor rewards are.
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
pub enum ReceiptStatus {
	/// In the challenge window: the contributors' pool sits in the reward pot, not yet
	/// claimable.
	Maturing,
	/// Challenged: nothing moves until the dispute resolves.
	Disputed,
	/// Rewards credited (or re-split by a dispute); the receipt can no longer be challenged.
	Final,
}

/// What stays on chain of a settled receipt: enough to detect replays, to challenge it and to
/// credit its contributors once it matures.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct ReceiptRecord<T: Config> {
	pub operator: T::AccountId,
	pub model_id: ModelId,
	pub prompt_hash: H256,
	pub output_hash: H256,
	/// The request's limit, which a verifier's engine runs with again.
	pub max_output_tokens: u32,
	pub method: AttributionMethod,
	pub record_hash: H256,
	/// [`attestation`] of the record hash and the weights: what a verifier's vote must match.
	pub attestation: H256,
	pub fee: BalanceOf<T>,
	/// The contributors' share of the fee, in the reward pot until the receipt matures.
	pub pool: BalanceOf<T>,
	/// Each weighted contribution's contributor and amount, credited at maturity; emptied then.
	pub credits: BoundedVec<(ContributionId, T::AccountId, BalanceOf<T>), T::MaxWeights>,
	pub settled_at: BlockNumberFor<T>,
	pub status: ReceiptStatus,
}

/// What a receipt and a verifier agree on when they agree: the attribution record's hash and
/// the weights the chain pays by. `blake2_256(SCALE((record_hash, weights)))`.
pub fn attestation(record_hash: &H256, weights: &[(ContributionId, Ppm)]) -> H256 {
	use sp_runtime::traits::{BlakeTwo256, Hash};
	BlakeTwo256::hash_of(&(record_hash, weights))
}

/// Challenges: how long, how much, and what a loser pays. Settable by the admin origin.
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
	serde::Serialize, serde::Deserialize,
)]
pub struct DisputeParams<Balance, BlockNumber> {
	/// Blocks after settlement in which a receipt may be challenged; its contributors'
	/// rewards become claimable after it.
	pub challenge_window: BlockNumber,
	/// Blocks the verifiers have to vote.
	pub voting_period: BlockNumber,
	/// Held from a challenger until the dispute resolves; forfeited if the receipt stands.
	pub challenge_bond: Balance,
	/// The part of an operator's bond slashed when its receipt is overturned.
	pub slash: Perbill,
	/// The part of a forfeited bond or slash paid to the winner; the rest goes to the treasury.
	pub winner_share: Perbill,
}

/// How a dispute ended.
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
pub enum DisputeOutcome {
	/// A majority of the verifiers reproduced the receipt: the challenger's bond is forfeited.
	Upheld,
	/// A majority reproduced the challenger's record: the operator is slashed and the
	/// contributors' pool is re-split by the challenger's weights.
	Overturned,
	/// A majority reproduced neither: the operator is slashed, the challenger gets its bond
	/// back and the pool goes to the treasury.
	Rejected,
	/// No majority by the deadline: the bond comes back and the receipt stands.
	Void,
}

/// An open challenge of a settled receipt.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct Dispute<T: Config> {
	pub challenger: T::AccountId,
	/// The receipt's operator.
	pub operator: T::AccountId,
	pub bond: BalanceOf<T>,
	/// The request's prompt (its hash is checked against the receipt), for the verifiers'
	/// engines.
	pub prompt: BoundedVec<u8, T::MaxPromptLength>,
	/// The record the challenger recomputed and the weights it implies.
	pub claimed_record_hash: H256,
	pub claimed_weights: BoundedVec<(ContributionId, Ppm), T::MaxWeights>,
	/// The contributor of each claimed weight, in order.
	pub claimed_contributors: BoundedVec<T::AccountId, T::MaxWeights>,
	/// The operators of the model other than the accused and the challenger, when challenged.
	pub verifiers: BoundedVec<T::AccountId, T::MaxOperatorsPerModel>,
	/// `votes[i]` is the attestation `verifiers[i]` recomputed.
	pub votes: BoundedVec<Option<H256>, T::MaxOperatorsPerModel>,
	/// After this block anyone may resolve it; without a majority it is void.
	pub deadline: BlockNumberFor<T>,
}

impl<T: Config> Dispute<T> {
	/// The attestation more than half of all verifiers voted for, if any.
	pub fn majority(&self) -> Option<H256> {
		let cast: alloc::vec::Vec<H256> = self.votes.iter().flatten().copied().collect();
		cast.iter()
			.find(|a| cast.iter().filter(|b| b == a).count() * 2 > self.verifiers.len())
			.copied()
	}
}

impl<T: Config> Dispute<T> {
	/// Whether `verifier` is one of the dispute's verifiers and has not voted yet.
	pub fn awaits(&self, verifier: &T::AccountId) -> bool {
		self.verifiers.iter().zip(&self.votes).any(|(v, vote)| v == verifier && vote.is_none())
	}
}

/// What a verifier signs: the dispute (by request) and the attestation it recomputed.
pub fn vote_payload<Hash: Encode>(genesis: &Hash, request_id: RequestId, attestation: &H256) -> alloc::vec::Vec<u8> {
	(b"openledger/vote/v1", genesis, request_id, attestation).encode()
}

/// What a verifier signs in the dispute of a batch leaf: the leaf (operator, batch number,
/// index) and the attestation it recomputed. Every dispute of one leaf concerns the same
/// record, so a vote for one is the verifier's answer to any.
pub fn leaf_vote_payload<Hash: Encode, AccountId: Encode>(
	genesis: &Hash,
	operator: &AccountId,
	nonce: u64,
	index: u32,
	attestation: &H256,
) -> alloc::vec::Vec<u8> {
	(b"openledger/leaf-vote/v1", genesis, operator, nonce, index, attestation).encode()
}

/// A verifier's vote when the operator's record does not describe the disputed leaf: it does
/// not parse, its inputs do not recompute (its tokens are not its prompt or output), or it
/// names another adapter or output than the leaf. A majority for it rejects the leaf's
/// attribution: no blake2-256 output is all zeros in practice.
pub const INCONSISTENT_RECORD: H256 = H256::zero();

/// A challenge of the attribution a batch leaf attests. The leaf commits only to
/// `attestation(record_hash, weights)`; the challenger reveals the operator's record (the
/// engine's canonical bytes, which the payer got with its answer) and weights, which the chain
/// checks against it, so the verifiers recompute the very record the operator committed to,
/// tokens included, and not a re-tokenization of the output.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, DecodeWithMemTracking,
	TypeInfo,
)]
#[scale_info(skip_type_params(T))]
pub struct LeafChallenge<T: Config> {
	pub leaf: ProvenLeaf<T>,
	/// The request's prompt text, whose hash is the leaf's, for the verifiers' engines.
	pub prompt: BoundedVec<u8, T::MaxPromptLength>,
	/// The operator's attribution record: the canonical bytes whose blake2-256 is the record
	/// hash the leaf attests (the engine's `record_bytes`).
	pub record: BoundedVec<u8, T::MaxRecordLength>,
	/// The weights the leaf attests with that record, by ascending contribution id.
	pub attested_weights: BoundedVec<(ContributionId, Ppm), T::MaxWeights>,
	/// The record the challenger recomputed, and its weights.
	pub record_hash: H256,
	pub weights: BoundedVec<(ContributionId, Ppm), T::MaxWeights>,
}

/// An open challenge of a batch leaf's attribution; its batch is held (`Disputed`) meanwhile.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct LeafDispute<T: Config> {
	pub dispute: Dispute<T>,
	/// The leaf's position in its batch.
	pub index: u32,
	/// The leaf's attestation, which an upholding majority reproduces.
	pub attestation: H256,
	/// The leaf's output hash, which the operator's record must name.
	pub output_hash: H256,
	/// The operator's record, for the verifiers' engines.
	pub record: BoundedVec<u8, T::MaxRecordLength>,
	pub attested_weights: BoundedVec<(ContributionId, Ppm), T::MaxWeights>,
	/// The leaf's `fee − platform_fee`, the part of the batch's shared fee its weights split.
	pub shared: BalanceOf<T>,
}

/// A receipt that passed every check, with what paying it needs.
pub struct CheckedReceipt<T: Config> {
	pub request: RequestInfo<T>,
	pub model: pallet_model_registry::ServedModel<T::AccountId, BalanceOf<T>>,
	pub fee: BalanceOf<T>,
	/// The contributor of each weighted contribution, in the receipt's order.
	pub contributors: alloc::vec::Vec<T::AccountId>,
}

/// Where one receipt's fee went.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub struct FeeParts<Balance> {
	pub fee: Balance,
	pub owner: Balance,
	pub stakers: Balance,
	pub contributors: Balance,
	pub treasury: Balance,
}

/// A settlement whose contributors' rewards mature: one on-chain request's receipt, or one
/// operator's batch of prepaid receipts.
#[derive(
	Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
pub enum Settlement<AccountId> {
	Receipt(RequestId),
	/// The operator and its batch number.
	Batch(AccountId, u64),
}

/// The prices a batch's receipts were charged at: the model's `R_in` and `R_out` per 1,000
/// tokens and the platform fee, when the batch was settled.
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
pub struct Rates<Balance> {
	pub price_in: Balance,
	pub price_out: Balance,
	pub platform_fee: Balance,
}

impl<Balance: AtLeast32BitUnsigned + Copy> Rates<Balance> {
	/// `F = T_in·R_in/1000 + T_out·R_out/1000 + platform_fee`, the division rounding down once
	/// over the sum.
	pub fn fee(&self, input_tokens: u32, output_tokens: u32) -> Balance {
		let per_thousand = self
			.price_in
			.saturating_mul(input_tokens.into())
			.saturating_add(self.price_out.saturating_mul(output_tokens.into()));
		(per_thousand / 1000u32.into()).saturating_add(self.platform_fee)
	}
}

/// One payer's part of a batch: the total of its receipts' fees, charged from its prepaid
/// credit, and the first and last request nonce among them.
#[derive(
	Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
pub struct Charge<AccountId, Balance> {
	pub payer: AccountId,
	pub amount: Balance,
	/// Above every nonce of the payer's settled before (see `SettledNonce`), so no signed
	/// request is charged twice, by this operator or another.
	pub first_nonce: u64,
	pub last_nonce: u64,
}

/// An operator's signed settlement of many receipts it served to prepaid users through the
/// engine's HTTP API. The chain checks its aggregates, not the receipts: those are the
/// [`BatchLeaf`]s committed to by `receipts_root`, which the operator keeps and publishes (the
/// engine's journal), and a wrong one can be proven with `challenge_batch`.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, DecodeWithMemTracking,
	TypeInfo,
)]
#[scale_info(skip_type_params(T))]
pub struct ReceiptBatch<T: Config> {
	pub operator: T::AccountId,
	pub model_id: ModelId,
	/// The operator's next batch number: batches settle once each, in order.
	pub nonce: u64,
	/// The binary blake2-256 Merkle root (`binary-merkle-tree`) of the SCALE-encoded leaves.
	pub receipts_root: H256,
	/// How many receipts (leaves); each pays the platform fee.
	pub receipts: u32,
	/// The model's current prices and platform fee, which every leaf's fee must follow.
	pub rates: Rates<BalanceOf<T>>,
	/// Payers strictly ascending; each total is its last leaf's `payer_total`.
	pub charges: BoundedVec<Charge<T::AccountId, BalanceOf<T>>, T::MaxBatchPayers>,
	/// Each weighted contribution's influence: the sum over the receipts of the receipt's
	/// `F − platform_fee` times the contribution's ppm / 10^6, rounded down; contribution ids
	/// strictly ascending. The contributors' pool is split by it.
	pub influence: BoundedVec<(ContributionId, BalanceOf<T>), T::MaxBatchContributions>,
}

impl<T: Config> ReceiptBatch<T> {
	/// The bytes the operator's key signs: a domain tag, the chain's genesis hash and the batch.
	pub fn signing_payload(&self, genesis: &T::Hash) -> alloc::vec::Vec<u8> {
		(b"openledger/batch/v1", genesis, self).encode()
	}
}

/// One receipt of a batch: the request its payer signed to the engine, what was served, and
/// what the operator charged for it. Leaves are ordered by `(payer, nonce)`, strictly, so each
/// payer's leaves are consecutive and its last `payer_total` is its charge.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, DecodeWithMemTracking,
	TypeInfo,
)]
#[scale_info(skip_type_params(T))]
pub struct BatchLeaf<T: Config> {
	pub payer: T::AccountId,
	pub nonce: u64,
	pub max_fee: BalanceOf<T>,
	/// The payer's signature of [`request_payload`].
	pub signature: T::RequestSignature,
	/// blake2-256 of the prompt text.
	pub prompt_hash: H256,
	pub max_tokens: u32,
	pub output_hash: H256,
	pub input_tokens: u32,
	pub output_tokens: u32,
	/// [`attestation`] of the engine's record hash and weights.
	pub attestation: H256,
	/// `rates.fee(input_tokens, output_tokens)`.
	pub fee: BalanceOf<T>,
	/// The payer's fees in this batch through this leaf.
	pub payer_total: BalanceOf<T>,
}

/// What a prepaid user signs (sr25519, as a wallet signs bytes): the chain, the adapter, the
/// prompt, the output limit, a nonce and the most it may cost. The SCALE encoding of
/// `(b"openledger/request/v1", genesis, adapter_hash, prompt_hash, max_tokens, nonce, max_fee)`,
/// which the engine checks before serving (`openlora`'s `prepaid::Terms`).
pub fn request_payload<Hash: Encode, Balance: Encode>(
	genesis: &Hash,
	adapter_hash: &H256,
	prompt_hash: &H256,
	max_tokens: u32,
	nonce: u64,
	max_fee: &Balance,
) -> alloc::vec::Vec<u8> {
	(b"openledger/request/v1", genesis, adapter_hash, prompt_hash, max_tokens, nonce, max_fee).encode()
}

/// The longest Merkle proof: 2^32 leaves.
pub type MaxProofDepth = ConstU32<32>;

/// A leaf of a settled batch with its Merkle proof against the batch's `receipts_root`.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, DecodeWithMemTracking,
	TypeInfo,
)]
#[scale_info(skip_type_params(T))]
pub struct ProvenLeaf<T: Config> {
	pub leaf: BatchLeaf<T>,
	/// Its position, from 0.
	pub index: u32,
	/// `binary-merkle-tree`'s proof items, from the leaf up.
	pub proof: BoundedVec<H256, MaxProofDepth>,
}

/// A proof that a settled batch is wrong, from its own leaves.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, DecodeWithMemTracking,
	TypeInfo,
)]
#[scale_info(skip_type_params(T))]
pub enum BatchFraud<T: Config> {
	/// A leaf wrong on its own: its payer did not sign it, or it costs more than the rates, its
	/// `max_fee` or its `max_tokens` allow.
	Leaf(ProvenLeaf<T>),
	/// Two consecutive leaves, or the first (`left: None`) or the last (`right: None`) alone,
	/// that break the order, a running total, or the charges: a payer's first or last leaf
	/// against its charge, or a charged payer with no leaves between them.
	Seam { left: Option<ProvenLeaf<T>>, right: Option<ProvenLeaf<T>> },
}

/// What a batch fraud proof showed.
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
pub enum FraudKind {
	/// The payer's signature does not verify.
	Unsigned,
	/// The fee is not the rates', or above `max_fee`, or the output above `max_tokens`.
	Overcharged,
	/// Two leaves out of `(payer, nonce)` order: a request settled twice, or hidden.
	Unordered,
	/// A running total is not the previous one plus the fee.
	WrongTotal,
	/// A payer's charge or nonce range disagrees with its leaves, or it has none.
	WrongCharge,
}

/// What stays on chain of a settled batch: enough to check a fraud proof against it and to
/// credit its contributors once it matures.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct BatchRecord<T: Config> {
	pub model_id: ModelId,
	/// The model's adapter, which every leaf's payer signed for.
	pub adapter_hash: H256,
	pub receipts_root: H256,
	pub receipts: u32,
	pub rates: Rates<BalanceOf<T>>,
	/// blake2-256 of the SCALE-encoded charges, which a fraud proof restates.
	pub charges_hash: H256,
	pub fee: BalanceOf<T>,
	/// The contributors' share, in the reward pot until the batch matures.
	pub pool: BalanceOf<T>,
	/// Each contribution's contributor and amount, credited at maturity; emptied then.
	pub credits: BoundedVec<(ContributionId, T::AccountId, BalanceOf<T>), T::MaxBatchContributions>,
	pub settled_at: BlockNumberFor<T>,
	/// `Maturing`, `Disputed` while one of its leaves is challenged (see `challenge_leaf`), or
	/// `Final`; a proven fraud makes it final without credits.
	pub status: ReceiptStatus,
	/// A fraud proof against it succeeded: the operator paid for it and no other is accepted.
	pub fraud_proven: bool,
}

/// A batch that passed every check, with what paying it needs.
pub struct CheckedBatch<T: Config> {
	pub owner: T::AccountId,
	pub adapter_hash: H256,
	/// Σ charges.
	pub fee: BalanceOf<T>,
	/// `fee − receipts · platform_fee`, which the split shares out.
	pub shared: BalanceOf<T>,
	/// The contributor of each contribution in `influence`, in order.
	pub contributors: alloc::vec::Vec<T::AccountId>,
}

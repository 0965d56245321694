//! The OpenLedger runtime.
//!
//! OPEN is the native token (18 decimals, fixed supply of 1,000,000,000 OPEN, see [`token`]).
//! Blocks are authored by Aura every [`MILLISECS_PER_BLOCK`] and finalized by GRANDPA.
//! Transaction fees and dust are paid into the treasury account instead of being burned, and
//! signed accounts cannot burn OPEN ([`BaseCallFilter`]), so the total issuance stays at the
//! genesis supply; only root (sudo now, governance later) could change it.

#![cfg_attr(not(feature = "std"), no_std)]
// `construct_runtime`-style macros expand to large recursive types.
#![recursion_limit = "256"]

#[cfg(feature = "std")]
include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));

extern crate alloc;

mod apis;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarks;
pub mod genesis_config_presets;
pub mod token;

use alloc::{borrow::Cow, vec::Vec};
use frame_support::{
	derive_impl,
	dispatch::DispatchClass,
	parameter_types,
	traits::{
		tokens::imbalance::ResolveTo, ConstBool, ConstU128, ConstU16, ConstU32, ConstU64, ConstU8,
		VariantCountOf,
	},
	weights::{
		constants::{ParityDbWeight, WEIGHT_REF_TIME_PER_SECOND},
		ConstantMultiplier, Weight,
	},
	PalletId,
};
use pallet_transaction_payment::{FungibleAdapter, Multiplier, TargetedFeeAdjustment};
use sp_runtime::{
	generic, impl_opaque_keys,
	traits::{AccountIdConversion, BlakeTwo256, IdentifyAccount, One, Verify},
	FixedPointNumber, MultiAddress, MultiSignature, Perbill, Perquintill,
};
use sp_version::RuntimeVersion;

#[cfg(feature = "std")]
pub use apis::RuntimeApi;
pub use apis::RUNTIME_API_VERSIONS;
pub use token::{Balance, EXISTENTIAL_DEPOSIT, MICRO_OPEN, MILLI_OPEN, OPEN, TOTAL_SUPPLY};

/// An index to a block.
pub type BlockNumber = u32;
/// The signature scheme of transactions: sr25519, ed25519 or ecdsa, as polkadot.js signs them.
pub type Signature = MultiSignature;
/// Accounts are the public keys of [`Signature`] (32 bytes).
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;
/// How many transactions an account has sent.
pub type Nonce = u32;
/// A hash of some data used by the chain.
pub type Hash = sp_core::H256;

/// Opaque types for the node, which does not need to know the runtime's call and event types.
pub mod opaque {
	use super::*;
	pub use sp_runtime::OpaqueExtrinsic as UncheckedExtrinsic;

	/// Opaque block header type.
	pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
	/// Opaque block type.
	pub type Block = generic::Block<Header, UncheckedExtrinsic>;

	impl_opaque_keys! {
		/// The keys a node holds: authoring (Aura), finality (GRANDPA) and, for inference
		/// operators, the attribution key. `author_rotateKeys` makes all three; `--dev` and
		/// `--alice` insert the well-known ones.
		pub struct SessionKeys {
			pub aura: Aura,
			pub grandpa: Grandpa,
			/// Signs an inference operator's attribution receipts.
			pub attribution: Attribution,
		}
	}
}

#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
	spec_name: Cow::Borrowed("openledger"),
	impl_name: Cow::Borrowed("openledger-node"),
	authoring_version: 1,
	// Bump on every change of runtime logic; polkadot.js keys its type bundles on it.
	spec_version: 106,
	impl_version: 1,
	apis: RUNTIME_API_VERSIONS,
	// Bump when the encoding of existing calls or transaction extensions changes.
	transaction_version: 2,
	system_version: 1,
};

/// Target block time. Aura's slot is this long, and it cannot change once a chain has started.
pub const MILLISECS_PER_BLOCK: u64 = 6000;
pub const SLOT_DURATION: u64 = MILLISECS_PER_BLOCK;
pub const MINUTES: BlockNumber = 60_000 / (MILLISECS_PER_BLOCK as BlockNumber);
pub const HOURS: BlockNumber = MINUTES * 60;
pub const DAYS: BlockNumber = HOURS * 24;

/// SS58 address prefix of OpenLedger accounts: 6736 spells "OPEN" on a phone keypad and is not
/// taken in the SS58 registry (checked against `ss58-registry` 1.51).
pub const SS58_PREFIX: u16 = 6736;

/// The treasury receives transaction fees, dust and (later) slashes and the platform fee.
pub const TREASURY_PALLET_ID: PalletId = PalletId(*b"ol/trsry");
/// Holds the staking share of inference fees until staking pays it out.
pub const STAKING_REWARD_PALLET_ID: PalletId = PalletId(*b"ol/stkrw");
/// Holds contributors' unclaimed attribution rewards.
pub const ATTRIBUTION_PALLET_ID: PalletId = PalletId(*b"ol/attrb");

/// Normal transactions may fill 75 % of a block; the rest is kept for operational ones.
const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);

parameter_types! {
	pub const BlockHashCount: BlockNumber = 2400;
	pub const Version: RuntimeVersion = VERSION;
	/// 2 seconds of compute per 6-second block, the usual margin for import and propagation.
	pub RuntimeBlockWeights: frame_system::limits::BlockWeights =
		frame_system::limits::BlockWeights::with_sensible_defaults(
			Weight::from_parts(2u64 * WEIGHT_REF_TIME_PER_SECOND, u64::MAX),
			NORMAL_DISPATCH_RATIO,
		);
	/// 5 MiB blocks, of which normal transactions may fill the same 75 % as of the weight.
	pub RuntimeBlockLength: frame_system::limits::BlockLength =
		frame_system::limits::BlockLength::builder()
			.max_length(5 * 1024 * 1024)
			.modify_max_length_for_class(DispatchClass::Normal, |max| *max = NORMAL_DISPATCH_RATIO * *max)
			.build();
	pub TreasuryAccount: AccountId = TREASURY_PALLET_ID.into_account_truncating();
	pub StakingRewardPot: AccountId = STAKING_REWARD_PALLET_ID.into_account_truncating();
	pub AttributionRewardPot: AccountId = ATTRIBUTION_PALLET_ID.into_account_truncating();
}

/// Calls that signed accounts may not make: `Balances::burn` would shrink the fixed supply.
/// Root bypasses this filter; `Utility` batches apply it to every inner call.
pub struct BaseCallFilter;
impl frame_support::traits::Contains<RuntimeCall> for BaseCallFilter {
	fn contains(call: &RuntimeCall) -> bool {
		!matches!(call, RuntimeCall::Balances(pallet_balances::Call::burn { .. }))
	}
}

#[derive_impl(frame_system::config_preludes::SolochainDefaultConfig)]
impl frame_system::Config for Runtime {
	type BaseCallFilter = BaseCallFilter;
	type Block = Block;
	type BlockWeights = RuntimeBlockWeights;
	type BlockLength = RuntimeBlockLength;
	type AccountId = AccountId;
	type Nonce = Nonce;
	type Hash = Hash;
	type BlockHashCount = BlockHashCount;
	type DbWeight = ParityDbWeight;
	type Version = Version;
	type AccountData = pallet_balances::AccountData<Balance>;
	type SystemWeightInfo = frame_system::weights::SubstrateWeight<Runtime>;
	type ExtensionsWeightInfo = frame_system::SubstrateExtensionsWeight<Runtime>;
	type SS58Prefix = ConstU16<SS58_PREFIX>;
	type MaxConsumers = ConstU32<16>;
}

impl pallet_aura::Config for Runtime {
	type AuthorityId = sp_consensus_aura::sr25519::AuthorityId;
	type DisabledValidators = ();
	type MaxAuthorities = ConstU32<32>;
	type AllowMultipleBlocksPerSlot = ConstBool<false>;
	type SlotDuration = pallet_aura::MinimumPeriodTimesTwo<Runtime>;
}

impl pallet_grandpa::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type WeightInfo = ();
	type MaxAuthorities = ConstU32<32>;
	type MaxNominators = ConstU32<0>;
	type MaxSetIdSessionEntries = ConstU64<0>;
	// No session history yet, so equivocations cannot be proven on chain.
	type KeyOwnerProof = sp_core::Void;
	type EquivocationReportSystem = ();
}

impl pallet_timestamp::Config for Runtime {
	type Moment = u64;
	type OnTimestampSet = Aura;
	type MinimumPeriod = ConstU64<{ SLOT_DURATION / 2 }>;
	type WeightInfo = pallet_timestamp::weights::SubstrateWeight<Runtime>;
}

impl pallet_balances::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeHoldReason = RuntimeHoldReason;
	type RuntimeFreezeReason = RuntimeFreezeReason;
	type WeightInfo = pallet_balances::weights::SubstrateWeight<Runtime>;
	type Balance = Balance;
	// Dust of reaped accounts goes to the treasury: burning it would shrink the fixed supply.
	type DustRemoval = ResolveTo<TreasuryAccount, Balances>;
	type ExistentialDeposit = ConstU128<EXISTENTIAL_DEPOSIT>;
	type AccountStore = System;
	type ReserveIdentifier = [u8; 8];
	type FreezeIdentifier = RuntimeFreezeReason;
	type MaxLocks = ConstU32<50>;
	type MaxReserves = ConstU32<50>;
	type MaxFreezes = VariantCountOf<RuntimeFreezeReason>;
	type DoneSlashHandler = ();
}

parameter_types! {
	/// Fees start rising once blocks are more than a quarter full ...
	pub const TargetBlockFullness: Perquintill = Perquintill::from_percent(25);
	/// ... at Polkadot's rate of adjustment ...
	pub AdjustmentVariable: Multiplier = Multiplier::saturating_from_rational(75, 1_000_000);
	/// ... and never fall below the base price, which is already low.
	pub MinimumMultiplier: Multiplier = Multiplier::one();
	pub MaximumMultiplier: Multiplier = Multiplier::saturating_from_integer(1_000);
}

impl pallet_transaction_payment::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type OnChargeTransaction = FungibleAdapter<Balances, ResolveTo<TreasuryAccount, Balances>>;
	type WeightToFee = ConstantMultiplier<Balance, ConstU128<{ token::FEE_PER_WEIGHT_PICOSECOND }>>;
	type LengthToFee = ConstantMultiplier<Balance, ConstU128<{ token::FEE_PER_BYTE }>>;
	type FeeMultiplierUpdate = TargetedFeeAdjustment<
		Self,
		TargetBlockFullness,
		AdjustmentVariable,
		MinimumMultiplier,
		MaximumMultiplier,
	>;
	type OperationalFeeMultiplier = ConstU8<5>;
	type WeightInfo = pallet_transaction_payment::weights::SubstrateWeight<Runtime>;
}

impl pallet_sudo::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeCall = RuntimeCall;
	type WeightInfo = pallet_sudo::weights::SubstrateWeight<Runtime>;
}

impl pallet_utility::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeCall = RuntimeCall;
	type PalletsOrigin = OriginCaller;
	type WeightInfo = pallet_utility::weights::SubstrateWeight<Runtime>;
}

parameter_types! {
	/// Anyone can create a datanet; the deposit makes squatting names and spamming empty
	/// datanets cost something, and comes back only through ownership (datanets are permanent).
	pub const DatanetDeposit: Balance = 10 * OPEN;
	pub const DatanetByteDeposit: Balance = MILLI_OPEN;
	pub const DatanetItemDeposit: Balance = 100 * MILLI_OPEN;
	pub const ContributionBaseDeposit: Balance = 100 * MILLI_OPEN;
	/// Every node stores every contributed file: 1 µOPEN per byte, about 1 OPEN per MiB, held
	/// until the curators decide. A 5 MiB file holds about 5.3 OPEN.
	pub const ContributionByteDeposit: Balance = MICRO_OPEN;
	/// A rejected contribution loses a fifth of its deposit to the treasury: enough to make
	/// spam cost, not so much that honest borderline files are not submitted.
	pub const RejectionSlash: Perbill = Perbill::from_percent(20);
	/// The chain's ceiling; each node's `--datanets-max-file-size` (5 MiB by default) is what
	/// its RPC accepts.
	pub const MaxContributionSize: u64 = 64 * 1024 * 1024;
}

impl pallet_datanets::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Slashed = TreasuryAccount;
	type DatanetDeposit = DatanetDeposit;
	type ByteDeposit = DatanetByteDeposit;
	type ItemDeposit = DatanetItemDeposit;
	type ContributionBaseDeposit = ContributionBaseDeposit;
	type ContributionByteDeposit = ContributionByteDeposit;
	type RejectionSlash = RejectionSlash;
	type MaxNameLength = ConstU32<64>;
	type MaxDescriptionLength = ConstU32<1024>;
	type MaxTagLength = ConstU32<32>;
	type MaxTags = ConstU32<16>;
	type MaxLicenseLength = ConstU32<64>;
	type MaxContributionMetadataLength = ConstU32<256>;
	type MaxCurators = ConstU32<16>;
	type MaxPendingContributions = ConstU32<256>;
	type MaxContributionsPerVersion = ConstU32<1024>;
	type MaxContributionSize = MaxContributionSize;
	// A fresh account survives two rejections (100 → 75 → 50); a third locks it out. Ten
	// accepted contributions at full quality buy room for four more mistakes.
	type InitialReputation = ConstU32<100>;
	type MinReputation = ConstU32<50>;
	type MaxReputation = ConstU32<1_000>;
	type ReputationReward = ConstU32<10>;
	type ReputationPenalty = ConstU32<25>;
	type WeightInfo = pallet_datanets::weights::SubstrateWeight<Runtime>;
}

parameter_types! {
	/// A model's record is permanent (receipts point at it): 10 OPEN keeps registrations
	/// deliberate without pricing out a single developer.
	pub const ModelDeposit: Balance = 10 * OPEN;
	pub const ModelByteDeposit: Balance = MILLI_OPEN;
	pub const TrainingApprovalDeposit: Balance = 100 * MILLI_OPEN;
}

impl pallet_model_registry::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type AdminOrigin = frame_system::EnsureRoot<AccountId>;
	type Datanets = Datanets;
	type ModelDeposit = ModelDeposit;
	type ByteDeposit = ModelByteDeposit;
	type ApprovalDeposit = TrainingApprovalDeposit;
	type MaxNameLength = ConstU32<64>;
	type MaxLineage = ConstU32<16>;
	type WeightInfo = pallet_model_registry::weights::SubstrateWeight<Runtime>;
}

parameter_types! {
	pub const AttributionPalletId: PalletId = ATTRIBUTION_PALLET_ID;
	/// What an operator puts at stake for the receipts it signs.
	pub const OperatorBond: Balance = 1_000 * OPEN;
	pub const OperatorUnbondingDelay: BlockNumber = 7 * DAYS;
	/// One minute: the default model answers a 256-token request with attribution in seconds
	/// on a CPU, so a request still open after ten blocks is not being served.
	pub const RequestTimeout: BlockNumber = 10;
	/// Receipts of off-chain workers pay no fee; they rank below operational transactions.
	pub const ReceiptPriority: u64 = u64::MAX / 2;
}

impl pallet_attribution::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type AdminOrigin = frame_system::EnsureRoot<AccountId>;
	type OperatorKey = pallet_attribution::crypto::Public;
	type Models = ModelRegistry;
	type Datanets = Datanets;
	type Treasury = TreasuryAccount;
	type StakingPot = StakingRewardPot;
	type PalletId = AttributionPalletId;
	type OperatorBond = OperatorBond;
	type UnbondingDelay = OperatorUnbondingDelay;
	type RequestTimeout = RequestTimeout;
	type MaxPromptLength = ConstU32<4096>;
	type MaxOutputLength = ConstU32<8192>;
	type MaxOutputTokens = ConstU32<512>;
	// A leaf's record: its prompt and output tokens (a prepaid request may use the engine's
	// whole 4,096-token context) at 4 bytes each, its weights and 250 bytes of hashes.
	type MaxRecordLength = ConstU32<{ 64 * 1024 }>;
	// BOS plus a margin for chat templates.
	type MaxSpecialTokens = ConstU32<4>;
	// The engine's top-K.
	type MaxWeights = ConstU32<32>;
	type MaxModelsPerOperator = ConstU32<16>;
	type MaxOperatorsPerModel = ConstU32<16>;
	// A batch settles what many users paid for; their number and the contributions they pay
	// bound its weight.
	type MaxBatchPayers = ConstU32<256>;
	type MaxBatchContributions = ConstU32<256>;
	// Operators settle what they served within the hour before a payer's credit can leave.
	type CreditUnlockDelay = ConstU32<HOURS>;
	type ReceiptPriority = ReceiptPriority;
	type RequestSignature = Signature;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = RequestSigner;
	type WeightInfo = pallet_attribution::weights::SubstrateWeight<Runtime>;
}

/// Signs prepaid requests for the attribution benchmarks with a fresh sr25519 key from the
/// benchmark's keystore, as a wallet would.
#[cfg(feature = "runtime-benchmarks")]
pub struct RequestSigner;

#[cfg(feature = "runtime-benchmarks")]
impl pallet_attribution::BenchmarkHelper<AccountId, Signature> for RequestSigner {
	fn sign_request(message: &[u8]) -> (AccountId, Signature) {
		use sp_runtime::RuntimeAppPublic;
		let public = pallet_attribution::crypto::Public::generate_pair(None);
		let signature =
			public.sign(&message).expect("the benchmark keystore signs with the key it generated");
		(
			AccountId::from(sp_core::sr25519::Public::from(public)),
			Signature::from(sp_core::sr25519::Signature::from(signature)),
		)
	}
}

impl<LocalCall> frame_system::offchain::CreateTransactionBase<LocalCall> for Runtime
where
	RuntimeCall: From<LocalCall>,
{
	type Extrinsic = UncheckedExtrinsic;
	type RuntimeCall = RuntimeCall;
}

impl<LocalCall> frame_system::offchain::CreateTransaction<LocalCall> for Runtime
where
	RuntimeCall: From<LocalCall>,
{
	type Extension = TxExtension;

	fn create_transaction(call: RuntimeCall, extension: TxExtension) -> UncheckedExtrinsic {
		UncheckedExtrinsic::new_transaction(call, extension)
	}
}

/// Off-chain workers' authorized transactions (attribution receipts): no signer, so nonce and
/// payment do nothing; immortal, so a slow inference cannot outlive its era.
impl<LocalCall> frame_system::offchain::CreateAuthorizedTransaction<LocalCall> for Runtime
where
	RuntimeCall: From<LocalCall>,
{
	fn create_extension() -> TxExtension {
		(
			frame_system::AuthorizeCall::<Runtime>::new(),
			frame_system::CheckNonZeroSender::<Runtime>::new(),
			frame_system::CheckSpecVersion::<Runtime>::new(),
			frame_system::CheckTxVersion::<Runtime>::new(),
			frame_system::CheckGenesis::<Runtime>::new(),
			frame_system::CheckEra::<Runtime>::from(generic::Era::Immortal),
			frame_system::CheckNonce::<Runtime>::from(0),
			frame_system::CheckWeight::<Runtime>::new(),
			pallet_transaction_payment::ChargeTransactionPayment::<Runtime>::from(0),
			frame_metadata_hash_extension::CheckMetadataHash::<Runtime>::new(false),
			frame_system::WeightReclaim::<Runtime>::new(),
		)
	}
}

#[frame_support::runtime]
mod runtime {
	#[runtime::runtime]
	#[runtime::derive(
		RuntimeCall,
		RuntimeEvent,
		RuntimeError,
		RuntimeOrigin,
		RuntimeFreezeReason,
		RuntimeHoldReason,
		RuntimeSlashReason,
		RuntimeLockId,
		RuntimeTask,
		RuntimeViewFunction
	)]
	pub struct Runtime;

	#[runtime::pallet_index(0)]
	pub type System = frame_system;

	#[runtime::pallet_index(1)]
	pub type Timestamp = pallet_timestamp;

	#[runtime::pallet_index(2)]
	pub type Aura = pallet_aura;

	#[runtime::pallet_index(3)]
	pub type Grandpa = pallet_grandpa;

	#[runtime::pallet_index(4)]
	pub type Balances = pallet_balances;

	#[runtime::pallet_index(5)]
	pub type TransactionPayment = pallet_transaction_payment;

	#[runtime::pallet_index(6)]
	pub type Sudo = pallet_sudo;

	#[runtime::pallet_index(7)]
	pub type Utility = pallet_utility;

	#[runtime::pallet_index(10)]
	pub type Datanets = pallet_datanets;

	#[runtime::pallet_index(11)]
	pub type ModelRegistry = pallet_model_registry;

	#[runtime::pallet_index(12)]
	pub type Attribution = pallet_attribution;
}

/// The address format: polkadot.js sends `MultiAddress::Id`.
pub type Address = MultiAddress<AccountId, ()>;
pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
pub type Block = generic::Block<Header, UncheckedExtrinsic>;

/// The checks every signed transaction passes, in order.
pub type TxExtension = (
	// Lets pallets authorize specific unsigned calls (`#[pallet::authorize]`); no-op otherwise.
	frame_system::AuthorizeCall<Runtime>,
	frame_system::CheckNonZeroSender<Runtime>,
	frame_system::CheckSpecVersion<Runtime>,
	frame_system::CheckTxVersion<Runtime>,
	frame_system::CheckGenesis<Runtime>,
	frame_system::CheckEra<Runtime>,
	frame_system::CheckNonce<Runtime>,
	frame_system::CheckWeight<Runtime>,
	pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
	// Lets offline signers verify the metadata they display (see the `metadata-hash` feature).
	frame_metadata_hash_extension::CheckMetadataHash<Runtime>,
	// Refunds unused weight; must come last.
	frame_system::WeightReclaim<Runtime>,
);

pub type UncheckedExtrinsic =
	generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;
pub type SignedPayload = generic::SignedPayload<RuntimeCall, TxExtension>;

/// Storage migrations of the runtime beyond those declared in pallets.
type Migrations = ();

pub type Executive = frame_executive::Executive<
	Runtime,
	Block,
	frame_system::ChainContext<Runtime>,
	Runtime,
	AllPalletsWithSystem,
	Migrations,
>;

#[cfg(test)]
mod tests {
	use super::*;
	use frame_support::traits::Contains;
	use sp_keyring::Sr25519Keyring;

	#[test]
	fn signed_accounts_cannot_burn_open_but_can_transfer() {
		let burn = RuntimeCall::Balances(pallet_balances::Call::burn { value: OPEN, keep_alive: true });
		let transfer = RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
			dest: Sr25519Keyring::Bob.to_account_id().into(),
			value: OPEN,
		});
		assert!(!BaseCallFilter::contains(&burn));
		assert!(BaseCallFilter::contains(&transfer));
		let batched_burn = RuntimeCall::Utility(pallet_utility::Call::batch { calls: vec![burn] });
		// The batch itself passes; `Utility` then filters the inner burn with the caller's origin.
		assert!(BaseCallFilter::contains(&batched_burn));
	}
}

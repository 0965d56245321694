//! A runtime with `pallet_balances` and this pallet, for the unit tests and the benchmark tests.
//!
//! The model registry and datanets are small in-memory mocks ([`MockModels`], [`MockDatanets`])
//! that the tests set up directly: a model's prices, status and lineage, and which contributions
//! are published in which datanet version. Operator keys are
//! [`UintAuthorityId`](sp_runtime::testing::UintAuthorityId): its signature is the signer's id and
//! the message, so signing and verifying need no keystore.

use crate as pallet_attribution;
use codec::{Decode, DecodeWithMemTracking, Encode};
use core::cell::RefCell;
use scale_info::TypeInfo;
use frame_support::{derive_impl, parameter_types, traits::ConstU32, PalletId};
use pallet_datanets::{ContributionId, DatanetId, DatanetsInspect, PublishedContribution};
use pallet_model_registry::{LineageEntry, ModelId, ModelsInspect, ServedModel};
use sp_core::H256;
use sp_runtime::{testing::UintAuthorityId, BuildStorage};
use std::collections::{BTreeMap, BTreeSet};

type Block = frame_system::mocking::MockBlock<Test>;
pub type Extrinsic = frame_system::mocking::MockUncheckedExtrinsic<Test>;
pub type AccountId = u64;
pub type Balance = u128;

#[frame_support::runtime]
mod runtime {
	#[runtime::runtime]
	#[runtime::derive(
		RuntimeCall,
		RuntimeEvent,
		RuntimeError,
		RuntimeOrigin,
		RuntimeTask,
		RuntimeHoldReason,
		RuntimeFreezeReason
	)]
	pub struct Test;

	#[runtime::pallet_index(0)]
	pub type System = frame_system;
	#[runtime::pallet_index(1)]
	pub type Balances = pallet_balances;
	#[runtime::pallet_index(2)]
	pub type Attribution = pallet_attribution;
}

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type AccountData = pallet_balances::AccountData<Balance>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
	type Balance = Balance;
	type AccountStore = System;
	type ExistentialDeposit = ExistentialDeposit;
	type RuntimeHoldReason = RuntimeHoldReason;
}

impl<LocalCall> frame_system::offchain::CreateTransactionBase<LocalCall> for Test
where
	RuntimeCall: From<LocalCall>,
{
	type Extrinsic = Extrinsic;
	type RuntimeCall = RuntimeCall;
}

impl<LocalCall> frame_system::offchain::CreateTransaction<LocalCall> for Test
where
	RuntimeCall: From<LocalCall>,
{
	type Extension = ();

	fn create_transaction(call: RuntimeCall, extension: ()) -> Extrinsic {
		Extrinsic::new_transaction(call, extension)
	}
}

impl<LocalCall> frame_system::offchain::CreateAuthorizedTransaction<LocalCall> for Test
where
	RuntimeCall: From<LocalCall>,
{
	fn create_extension() -> Self::Extension {}
}

/// Operators.
pub const ALICE: AccountId = 1;
pub const BOB: AccountId = 2;
/// Requests inferences.
pub const CHARLIE: AccountId = 3;
/// Owns the models.
pub const DAVE: AccountId = 4;
/// Contributors.
pub const EVE: AccountId = 5;
pub const FERDIE: AccountId = 6;
/// An account with only the existential deposit: it cannot pay a bond or an escrow.
pub const POOR: AccountId = 7;
/// A third and a fourth would-be operator.
pub const GRACE: AccountId = 8;
pub const HEIDI: AccountId = 10;
pub const TREASURY: AccountId = 900;
pub const STAKING_POT: AccountId = 901;
pub const INITIAL_BALANCE: Balance = 1_000_000;
pub const ED: Balance = 1;

parameter_types! {
	pub static ExistentialDeposit: Balance = ED;
	pub const Treasury: AccountId = TREASURY;
	pub const StakingPot: AccountId = STAKING_POT;
	pub const AttributionPalletId: PalletId = PalletId(*b"py/attrb");
}

impl pallet_attribution::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type AdminOrigin = frame_system::EnsureRoot<AccountId>;
	type OperatorKey = UintAuthorityId;
	type Models = MockModels;
	type Datanets = MockDatanets;
	type Treasury = Treasury;
	type StakingPot = StakingPot;
	type PalletId = AttributionPalletId;
	type OperatorBond = frame_support::traits::ConstU128<1_000>;
	type UnbondingDelay = frame_support::traits::ConstU64<10>;
	type RequestTimeout = frame_support::traits::ConstU64<5>;
	type MaxPromptLength = ConstU32<64>;
	type MaxOutputLength = ConstU32<64>;
	type MaxOutputTokens = ConstU32<100>;
	type MaxRecordLength = ConstU32<512>;
	type MaxSpecialTokens = ConstU32<2>;
	type MaxWeights = ConstU32<4>;
	type MaxModelsPerOperator = ConstU32<3>;
	type MaxOperatorsPerModel = ConstU32<3>;
	type MaxBatchPayers = ConstU32<3>;
	type MaxBatchContributions = ConstU32<4>;
	type CreditUnlockDelay = frame_support::traits::ConstU64<5>;
	type ReceiptPriority = frame_support::traits::ConstU64<100>;
	type RequestSignature = PayerSignature;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = PayerSignature;
	type WeightInfo = ();
}

/// A payer's signature in the mock, whose accounts are numbers: the account and the message,
/// like `TestSignature`.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub struct PayerSignature(pub AccountId, pub Vec<u8>);

impl sp_runtime::traits::Verify for PayerSignature {
	type Signer = UintAuthorityId;
	fn verify<L: sp_runtime::traits::Lazy<[u8]>>(&self, mut msg: L, signer: &AccountId) -> bool {
		*signer == self.0 && msg.get() == self.1.as_slice()
	}
}

/// The off-chain worker's conversion of an engine's sr25519 signature; the mock's accounts
/// have no sr25519 keys, so it never verifies.
impl From<sp_core::sr25519::Signature> for PayerSignature {
	fn from(_: sp_core::sr25519::Signature) -> Self {
		Self(AccountId::MAX, Vec::new())
	}
}

/// Signs as the benchmarks' payer, account 77.
#[cfg(feature = "runtime-benchmarks")]
impl crate::BenchmarkHelper<AccountId, PayerSignature> for PayerSignature {
	fn sign_request(message: &[u8]) -> (AccountId, PayerSignature) {
		(77, PayerSignature(77, message.to_vec()))
	}
}

thread_local! {
	static MODELS: RefCell<BTreeMap<ModelId, ServedModel<AccountId, Balance>>> =
		RefCell::new(BTreeMap::new());
	static NEXT_MODEL: RefCell<ModelId> = RefCell::new(0);
	static CONTRIBUTIONS: RefCell<BTreeMap<ContributionId, PublishedContribution<AccountId>>> =
		RefCell::new(BTreeMap::new());
	static NEXT_CONTRIBUTION: RefCell<ContributionId> = RefCell::new(0);
	static VERSIONS: RefCell<BTreeSet<(DatanetId, u32)>> = RefCell::new(BTreeSet::new());
	static DATANET_OWNERS: RefCell<BTreeMap<DatanetId, (AccountId, bool)>> =
		RefCell::new(BTreeMap::new());
}

/// The adapter hash the mock gives model `model_id`.
pub fn adapter_of(model_id: ModelId) -> H256 {
	let mut bytes = [0xadu8; 32];
	bytes[..4].copy_from_slice(&model_id.to_le_bytes());
	H256(bytes)
}

/// The lineage entries `register_for_benchmark` keeps: fewer than `MaxWeights`, so the benchmarks
/// must spread a receipt's contributions over fewer datanets than weights, as in the runtime.
#[cfg(feature = "runtime-benchmarks")]
pub const MOCK_MAX_LINEAGE: usize = 2;

/// The model registry, in memory.
pub struct MockModels;

impl MockModels {
	/// Registers an active model owned by `owner`, trained on `lineage`.
	pub fn add(
		owner: AccountId,
		price_in: Balance,
		price_out: Balance,
		lineage: Vec<LineageEntry>,
	) -> ModelId {
		let model_id = NEXT_MODEL.with(|n| {
			let id = *n.borrow();
			*n.borrow_mut() = id + 1;
			id
		});
		let model = ServedModel {
			owner,
			adapter_hash: adapter_of(model_id),
			price_in,
			price_out,
			active: true,
			lineage,
		};
		MODELS.with(|m| m.borrow_mut().insert(model_id, model));
		model_id
	}

	fn update(model_id: ModelId, f: impl FnOnce(&mut ServedModel<AccountId, Balance>)) {
		MODELS.with(|m| f(m.borrow_mut().get_mut(&model_id).expect("the model exists")))
	}

	/// What the owner would do with `set_prices`.
	pub fn set_prices(model_id: ModelId, price_in: Balance, price_out: Balance) {
		Self::update(model_id, |m| {
			m.price_in = price_in;
			m.price_out = price_out;
		})
	}

	/// Suspends (`false`) or reactivates the model.
	pub fn set_active(model_id: ModelId, active: bool) {
		Self::update(model_id, |m| m.active = active)
	}
}

impl ModelsInspect<AccountId, Balance> for MockModels {
	fn served_model(model_id: ModelId) -> Option<ServedModel<AccountId, Balance>> {
		MODELS.with(|m| m.borrow().get(&model_id).cloned())
	}

	/// Keeps `MOCK_MAX_LINEAGE` lineage entries, as the registry truncates to its `MaxLineage`
	/// (which in the runtime is below `MaxWeights` too).
	#[cfg(feature = "runtime-benchmarks")]
	fn register_for_benchmark(
		owner: AccountId,
		mut lineage: Vec<LineageEntry>,
		price: Balance,
	) -> ModelId {
		lineage.truncate(MOCK_MAX_LINEAGE);
		Self::add(owner, price, price, lineage)
	}
}

/// Datanets, in memory: which contributions are accepted and published in which version.
pub struct MockDatanets;

impl MockDatanets {
	/// Publishes version `version` of `datanet_id` (owned by `DAVE`, open).
	pub fn publish_version(datanet_id: DatanetId, version: u32) {
		VERSIONS.with(|v| v.borrow_mut().insert((datanet_id, version)));
		DATANET_OWNERS.with(|o| {
			o.borrow_mut().entry(datanet_id).or_insert((DAVE, false));
		});
	}

	/// An accepted contribution of `contributor` to `datanet_id`, first published in `version`
	/// (which this publishes).
	pub fn publish(contributor: AccountId, datanet_id: DatanetId, version: u32) -> ContributionId {
		let id = Self::unpublished();
		Self::publish_version(datanet_id, version);
		CONTRIBUTIONS.with(|c| {
			c.borrow_mut().insert(id, PublishedContribution { contributor, datanet_id, version })
		});
		id
	}

	/// A contribution id that is not (yet) accepted and published anywhere.
	pub fn unpublished() -> ContributionId {
		NEXT_CONTRIBUTION.with(|n| {
			let id = *n.borrow();
			*n.borrow_mut() = id + 1;
			id
		})
	}
}

impl DatanetsInspect<AccountId> for MockDatanets {
	fn is_published(datanet_id: DatanetId, version: u32) -> bool {
		VERSIONS.with(|v| v.borrow().contains(&(datanet_id, version)))
	}

	fn owner(datanet_id: DatanetId) -> Option<(AccountId, bool)> {
		DATANET_OWNERS.with(|o| o.borrow().get(&datanet_id).cloned())
	}

	fn published_contribution(id: ContributionId) -> Option<PublishedContribution<AccountId>> {
		CONTRIBUTIONS.with(|c| c.borrow().get(&id).cloned())
	}

	#[cfg(feature = "runtime-benchmarks")]
	fn publish_for_benchmark(
		owner: AccountId,
		contributor: AccountId,
		contributions: u32,
		permissioned: bool,
	) -> (DatanetId, u32, Vec<ContributionId>) {
		let datanet_id =
			DATANET_OWNERS.with(|o| o.borrow().keys().next_back().map_or(0, |last| last + 1));
		DATANET_OWNERS.with(|o| o.borrow_mut().insert(datanet_id, (owner, permissioned)));
		let ids = (0..contributions).map(|_| Self::publish(contributor, datanet_id, 1)).collect();
		(datanet_id, 1, ids)
	}
}

/// Forgets every mock model and datanet.
fn reset_mocks() {
	MODELS.with(|m| m.borrow_mut().clear());
	NEXT_MODEL.with(|n| *n.borrow_mut() = 0);
	CONTRIBUTIONS.with(|c| c.borrow_mut().clear());
	NEXT_CONTRIBUTION.with(|n| *n.borrow_mut() = 0);
	VERSIONS.with(|v| v.borrow_mut().clear());
	DATANET_OWNERS.with(|o| o.borrow_mut().clear());
	ExistentialDeposit::set(ED);
}

/// Short enough to run through in a test, within the mock's unbonding delay of 10 blocks.
pub const DISPUTE_PARAMS: pallet_attribution::DisputeParams<Balance, u64> =
	pallet_attribution::DisputeParams {
		challenge_window: 3,
		voting_period: 4,
		challenge_bond: 100,
		slash: sp_runtime::Perbill::from_percent(10),
		winner_share: sp_runtime::Perbill::from_percent(50),
	};

pub fn reward_pot() -> AccountId {
	Attribution::reward_pot()
}

pub fn new_test_ext() -> sp_io::TestExternalities {
	new_test_ext_with_ed(ED)
}

/// The same accounts, with existential deposit `ed`: the pots and POOR hold `ed`.
pub fn new_test_ext_with_ed(ed: Balance) -> sp_io::TestExternalities {
	reset_mocks();
	ExistentialDeposit::set(ed);
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: vec![
			(ALICE, INITIAL_BALANCE),
			(BOB, INITIAL_BALANCE),
			(CHARLIE, INITIAL_BALANCE),
			(DAVE, INITIAL_BALANCE),
			(EVE, INITIAL_BALANCE),
			(FERDIE, INITIAL_BALANCE),
			(GRACE, INITIAL_BALANCE),
			(HEIDI, INITIAL_BALANCE),
			(POOR, ed),
			(TREASURY, ed),
			(STAKING_POT, ed),
			(pallet_attribution::Pallet::<Test>::reward_pot(), ed),
		],
		..Default::default()
	}
	.assimilate_storage(&mut storage)
	.unwrap();
	pallet_attribution::GenesisConfig::<Test> {
		dispute_params: Some(DISPUTE_PARAMS),
		..Default::default()
	}
	.assimilate_storage(&mut storage)
	.unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	ext
}

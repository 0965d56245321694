//! A runtime with `pallet_balances` and this pallet, for the unit tests. The datanets a lineage
//! points at are [`MockDatanets`], a table the tests fill, so that each test states exactly
//! which datanets exist, who owns them and which versions are published.

use crate as pallet_model_registry;
use core::cell::RefCell;
use frame_support::{derive_impl, parameter_types, traits::ConstU32};
use pallet_datanets::{
	ContributionId, DatanetId, DatanetsInspect, PublishedContribution, VersionNumber,
};
use sp_runtime::BuildStorage;
use std::collections::{BTreeMap, BTreeSet};

type Block = frame_system::mocking::MockBlock<Test>;
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
	pub type ModelRegistry = pallet_model_registry;
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

pub const ALICE: AccountId = 1;
pub const BOB: AccountId = 2;
pub const CHARLIE: AccountId = 3;
pub const DAVE: AccountId = 4;
pub const EVE: AccountId = 5;
/// An account with only the existential deposit: it cannot pay any deposit.
pub const POOR: AccountId = 6;
pub const INITIAL_BALANCE: Balance = 1_000_000;

parameter_types! {
	pub const ExistentialDeposit: Balance = 1;
}

impl pallet_model_registry::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type AdminOrigin = frame_system::EnsureRoot<AccountId>;
	type Datanets = MockDatanets;
	type ModelDeposit = frame_support::traits::ConstU128<1_000>;
	type ByteDeposit = frame_support::traits::ConstU128<10>;
	type ApprovalDeposit = frame_support::traits::ConstU128<100>;
	type MaxNameLength = ConstU32<16>;
	type MaxLineage = ConstU32<4>;
	type WeightInfo = ();
}

thread_local! {
	/// Datanet id → (owner, permissioned).
	static DATANETS: RefCell<BTreeMap<DatanetId, (AccountId, bool)>> =
		RefCell::new(BTreeMap::new());
	static PUBLISHED: RefCell<BTreeSet<(DatanetId, VersionNumber)>> = RefCell::new(BTreeSet::new());
}

/// Creates (or replaces) datanet `id`, owned by `owner`; `permissioned` makes it an allow-list
/// datanet, whose owner must approve training on it.
pub fn set_datanet(id: DatanetId, owner: AccountId, permissioned: bool) {
	DATANETS.with(|d| d.borrow_mut().insert(id, (owner, permissioned)));
}

/// Publishes versions 1 to `latest` of datanet `id`, as the datanets pallet would have by then.
pub fn publish(id: DatanetId, latest: VersionNumber) {
	PUBLISHED.with(|p| p.borrow_mut().extend((1..=latest).map(|v| (id, v))));
}

/// The datanets of the test that ran before on this thread must not leak into the next one.
fn reset_datanets() {
	DATANETS.with(|d| d.borrow_mut().clear());
	PUBLISHED.with(|p| p.borrow_mut().clear());
}

pub struct MockDatanets;

impl DatanetsInspect<AccountId> for MockDatanets {
	fn is_published(datanet_id: DatanetId, version: VersionNumber) -> bool {
		PUBLISHED.with(|p| p.borrow().contains(&(datanet_id, version)))
	}

	fn owner(datanet_id: DatanetId) -> Option<(AccountId, bool)> {
		DATANETS.with(|d| d.borrow().get(&datanet_id).copied())
	}

	/// The registry never looks at single contributions; the attribution pallet does.
	fn published_contribution(_: ContributionId) -> Option<PublishedContribution<AccountId>> {
		None
	}

	#[cfg(feature = "runtime-benchmarks")]
	fn publish_for_benchmark(
		owner: AccountId,
		_contributor: AccountId,
		contributions: u32,
		permissioned: bool,
	) -> (DatanetId, VersionNumber, Vec<ContributionId>) {
		// The benchmark harness wipes storage between runs but not this table, so ids keep
		// counting up and each run gets datanets of its own, in increasing order as on chain.
		let id = DATANETS.with(|d| d.borrow().keys().next_back().map_or(0, |last| last + 1));
		set_datanet(id, owner, permissioned);
		publish(id, 1);
		let first = ContributionId::from(id) * 1_000;
		(id, 1, (first..first + ContributionId::from(contributions)).collect())
	}
}

pub fn new_test_ext() -> sp_io::TestExternalities {
	reset_datanets();
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: vec![
			(ALICE, INITIAL_BALANCE),
			(BOB, INITIAL_BALANCE),
			(CHARLIE, INITIAL_BALANCE),
			(DAVE, INITIAL_BALANCE),
			(EVE, INITIAL_BALANCE),
			(POOR, 1),
		],
		..Default::default()
	}
	.assimilate_storage(&mut storage)
	.unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	ext
}

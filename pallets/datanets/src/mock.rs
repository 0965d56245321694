//! A runtime with `pallet_balances` and this pallet, for the unit tests.

use crate as pallet_datanets;
use frame_support::{derive_impl, parameter_types, traits::ConstU32};
use sp_runtime::{BuildStorage, Perbill};

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
	pub type Datanets = pallet_datanets;
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

pub const TREASURY: AccountId = 999;
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
	pub const Treasury: AccountId = TREASURY;
	pub const MaxContributionSize: u64 = 5 * 1024 * 1024;
	pub const RejectionSlash: Perbill = Perbill::from_percent(10);
}

impl pallet_datanets::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Slashed = Treasury;
	type DatanetDeposit = frame_support::traits::ConstU128<1_000>;
	type ByteDeposit = frame_support::traits::ConstU128<2>;
	type ItemDeposit = frame_support::traits::ConstU128<100>;
	type ContributionBaseDeposit = frame_support::traits::ConstU128<50>;
	type ContributionByteDeposit = frame_support::traits::ConstU128<1>;
	type RejectionSlash = RejectionSlash;
	type MaxNameLength = ConstU32<32>;
	type MaxDescriptionLength = ConstU32<128>;
	type MaxTagLength = ConstU32<16>;
	type MaxTags = ConstU32<4>;
	type MaxLicenseLength = ConstU32<32>;
	type MaxContributionMetadataLength = ConstU32<64>;
	type MaxCurators = ConstU32<3>;
	type MaxPendingContributions = ConstU32<4>;
	type MaxContributionsPerVersion = ConstU32<5>;
	type MaxContributionSize = MaxContributionSize;
	type InitialReputation = ConstU32<50>;
	type MinReputation = ConstU32<10>;
	type MaxReputation = ConstU32<60>;
	type ReputationReward = ConstU32<10>;
	type ReputationPenalty = ConstU32<20>;
	type WeightInfo = ();
}

pub fn new_test_ext() -> sp_io::TestExternalities {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: vec![
			(ALICE, INITIAL_BALANCE),
			(BOB, INITIAL_BALANCE),
			(CHARLIE, INITIAL_BALANCE),
			(DAVE, INITIAL_BALANCE),
			(EVE, INITIAL_BALANCE),
			(POOR, 1),
			(TREASURY, 1),
		],
		..Default::default()
	}
	.assimilate_storage(&mut storage)
	.unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	ext
}

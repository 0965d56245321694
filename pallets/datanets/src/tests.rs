//! Unit tests of the datanets pallet on the mock runtime (`mock.rs`).
//!
//! Expected deposits are computed here from the mock's constants, restated below and checked
//! against the runtime in `mock_constants_are_the_ones_these_tests_assume`.

use crate::{
	mock::*, ContributionId, ContributionInfo, ContributionPolicy, ContributionStatus, DatanetId,
	DatanetInfo, DatanetMetadata, DatanetStatus, Error, Event, HoldReason, Verdict, VersionInfo,
	Vote,
};
use frame_support::{
	assert_noop, assert_ok,
	traits::{
		fungible::{Inspect, InspectHold, Mutate},
		Get,
	},
	BoundedVec,
};
use sp_core::H256;
use sp_runtime::traits::BlakeTwo256;

const DATANET_DEPOSIT: Balance = 1_000;
const BYTE_DEPOSIT: Balance = 2;
const ITEM_DEPOSIT: Balance = 100;
const CONTRIBUTION_BASE_DEPOSIT: Balance = 50;
const CONTRIBUTION_BYTE_DEPOSIT: Balance = 1;
/// The size `contribute` declares.
const SIZE: u64 = 100;
/// The deposit of a `SIZE`-byte contribution.
const DEPOSIT: Balance = CONTRIBUTION_BASE_DEPOSIT + CONTRIBUTION_BYTE_DEPOSIT * SIZE as Balance;
/// The name `create` gives a datanet.
const NAME: &[u8] = b"Medical";
/// A datanet id nothing was created under.
const MISSING: DatanetId = 42;

fn signed(who: AccountId) -> RuntimeOrigin {
	RuntimeOrigin::signed(who)
}

fn bounded<S: Get<u32>>(bytes: &[u8]) -> BoundedVec<u8, S> {
	bytes.to_vec().try_into().expect("within the bound")
}

fn metadata_with(
	name: &[u8],
	description: &[u8],
	tags: &[&[u8]],
	license: &[u8],
) -> DatanetMetadata<Test> {
	DatanetMetadata {
		name: bounded(name),
		description: bounded(description),
		tags: tags.iter().map(|tag| bounded(tag)).collect::<Vec<_>>().try_into().unwrap(),
		license: bounded(license),
	}
}

/// A datanet called `name`, with no description or tags, under the MIT license.
fn metadata(name: &[u8]) -> DatanetMetadata<Test> {
	metadata_with(name, b"", &[], b"MIT")
}

/// The hold for `metadata(name)`: SCALE puts a one-byte compact length before the name, the
/// (empty) description, the (empty) tag list and the license, "MIT" being 3 bytes.
fn metadata_deposit(name: &[u8]) -> Balance {
	DATANET_DEPOSIT + BYTE_DEPOSIT * (1 + name.len() as Balance + 1 + 1 + 1 + 3)
}

/// The hold for a version of `count` contributions: the item, plus the bytes of the SCALE-encoded
/// id list (a one-byte compact length, then 8 bytes per `u64` id).
fn version_deposit(count: Balance) -> Balance {
	ITEM_DEPOSIT + BYTE_DEPOSIT * (1 + 8 * count)
}

fn create_with(owner: AccountId, policy: ContributionPolicy) -> DatanetId {
	let datanet_id = crate::NextDatanetId::<Test>::get();
	assert_ok!(Datanets::create_datanet(signed(owner), metadata(NAME), policy));
	datanet_id
}

/// An open datanet called `NAME`.
fn create(owner: AccountId) -> DatanetId {
	create_with(owner, ContributionPolicy::Open)
}

fn add_curators(datanet_id: DatanetId, curators: &[AccountId]) {
	let owner = datanet(datanet_id).owner;
	for curator in curators {
		assert_ok!(Datanets::add_curator(signed(owner), datanet_id, *curator));
	}
}

/// The content hash of the one-byte file `[n]`.
fn file(n: u8) -> H256 {
	sp_io::hashing::blake2_256(&[n]).into()
}

fn contribute_sized(who: AccountId, datanet_id: DatanetId, n: u8, size: u64) -> ContributionId {
	let contribution_id = crate::NextContributionId::<Test>::get();
	assert_ok!(Datanets::contribute(signed(who), datanet_id, file(n), size, bounded(b"a.csv")));
	contribution_id
}

/// Contributes file `n`, declared `SIZE` bytes long.
fn contribute(who: AccountId, datanet_id: DatanetId, n: u8) -> ContributionId {
	contribute_sized(who, datanet_id, n, SIZE)
}

fn approve(who: AccountId, contribution_id: ContributionId, quality: u8) {
	assert_ok!(Datanets::review(signed(who), contribution_id, Verdict::Approve, quality));
}

fn reject(who: AccountId, contribution_id: ContributionId) {
	assert_ok!(Datanets::review(signed(who), contribution_id, Verdict::Reject, 0));
}

/// Contributes file `n` to a datanet its owner decides alone, and accepts it.
fn accepted(who: AccountId, datanet_id: DatanetId, n: u8, size: u64) -> ContributionId {
	let contribution_id = contribute_sized(who, datanet_id, n, size);
	approve(datanet(datanet_id).owner, contribution_id, 100);
	contribution_id
}

fn datanet(datanet_id: DatanetId) -> DatanetInfo<Test> {
	crate::Datanets::<Test>::get(datanet_id).expect("the datanet exists")
}

fn contribution(contribution_id: ContributionId) -> Option<ContributionInfo<Test>> {
	crate::Contributions::<Test>::get(contribution_id)
}

fn status(contribution_id: ContributionId) -> Option<ContributionStatus> {
	contribution(contribution_id).map(|c| c.status)
}

fn is_pending(contribution_id: ContributionId) -> bool {
	status(contribution_id) == Some(ContributionStatus::Pending)
}

fn is_accepted(contribution_id: ContributionId) -> bool {
	matches!(status(contribution_id), Some(ContributionStatus::Accepted { .. }))
}

fn unpublished(datanet_id: DatanetId) -> Vec<ContributionId> {
	crate::Unpublished::<Test>::get(datanet_id).into_inner()
}

fn version(datanet_id: DatanetId, number: u32) -> VersionInfo<Test> {
	crate::Versions::<Test>::get(datanet_id, number).expect("the version exists")
}

fn owner_hold(who: AccountId) -> Balance {
	Balances::balance_on_hold(&RuntimeHoldReason::Datanets(HoldReason::DatanetDeposit), &who)
}

fn contribution_hold(who: AccountId) -> Balance {
	Balances::balance_on_hold(&RuntimeHoldReason::Datanets(HoldReason::ContributionDeposit), &who)
}

fn free(who: AccountId) -> Balance {
	Balances::free_balance(who)
}

fn issuance() -> Balance {
	<Balances as Inspect<AccountId>>::total_issuance()
}

fn reputation(who: AccountId) -> u32 {
	Datanets::reputation(&who)
}

/// An inner node of the Merkle tree: blake2-256 of the two children concatenated.
fn node(left: H256, right: H256) -> H256 {
	sp_io::hashing::blake2_256(&[left.as_bytes(), right.as_bytes()].concat()).into()
}

#[test]
fn mock_constants_are_the_ones_these_tests_assume() {
	assert_eq!(<<Test as crate::Config>::DatanetDeposit as Get<Balance>>::get(), DATANET_DEPOSIT);
	assert_eq!(<<Test as crate::Config>::ByteDeposit as Get<Balance>>::get(), BYTE_DEPOSIT);
	assert_eq!(<<Test as crate::Config>::ItemDeposit as Get<Balance>>::get(), ITEM_DEPOSIT);
	assert_eq!(
		<<Test as crate::Config>::ContributionBaseDeposit as Get<Balance>>::get(),
		CONTRIBUTION_BASE_DEPOSIT
	);
	assert_eq!(
		<<Test as crate::Config>::ContributionByteDeposit as Get<Balance>>::get(),
		CONTRIBUTION_BYTE_DEPOSIT
	);
	assert_eq!(DEPOSIT, 150);
	assert_eq!(metadata_deposit(NAME), 1_028);
	new_test_ext().execute_with(|| {
		assert_eq!(Datanets::metadata_deposit(&metadata(NAME)), metadata_deposit(NAME));
		assert_eq!(Datanets::contribution_deposit(SIZE), DEPOSIT);
	});
}

#[test]
fn create_datanet_holds_the_metadata_deposit() {
	new_test_ext().execute_with(|| {
		let meta = metadata_with(
			b"Medical imaging",
			b"Chest X-rays",
			&[b"health", b"vision"],
			b"CC-BY-4.0",
		);
		// Compact length + bytes of name, description, tag list (length, then each tag) and
		// license.
		let deposit = DATANET_DEPOSIT
			+ BYTE_DEPOSIT * ((1 + 15) + (1 + 12) + (1 + (1 + 6) + (1 + 6)) + (1 + 9));
		assert_eq!(deposit, 1_108);
		let issued = issuance();

		assert_ok!(Datanets::create_datanet(signed(ALICE), meta.clone(), ContributionPolicy::Open));

		System::assert_last_event(
			Event::DatanetCreated { datanet_id: 0, owner: ALICE, deposit }.into(),
		);
		assert_eq!(
			datanet(0),
			DatanetInfo {
				owner: ALICE,
				pending_owner: None,
				metadata: meta,
				policy: ContributionPolicy::Open,
				curators: BoundedVec::new(),
				quorum: None,
				status: DatanetStatus::Active,
				deposit,
				latest_version: 0,
				pending: 0,
				allowed: 0,
				created_at: 1,
			}
		);
		assert_eq!(owner_hold(ALICE), deposit);
		assert_eq!(free(ALICE), INITIAL_BALANCE - deposit);
		assert_eq!(crate::NextDatanetId::<Test>::get(), 1);

		// Ids count up; one account's holds for several datanets add up.
		System::set_block_number(7);
		assert_eq!(create_with(ALICE, ContributionPolicy::AllowList), 1);
		System::assert_last_event(
			Event::DatanetCreated { datanet_id: 1, owner: ALICE, deposit: metadata_deposit(NAME) }
				.into(),
		);
		assert_eq!(datanet(1).policy, ContributionPolicy::AllowList);
		assert_eq!(datanet(1).created_at, 7);
		assert_eq!(owner_hold(ALICE), deposit + metadata_deposit(NAME));
		assert_eq!(issuance(), issued);
	});
}

#[test]
fn create_datanet_errors() {
	new_test_ext().execute_with(|| {
		assert_noop!(
			Datanets::create_datanet(signed(ALICE), metadata(b""), ContributionPolicy::Open),
			Error::<Test>::EmptyName
		);
		assert_noop!(
			Datanets::create_datanet(signed(POOR), metadata(NAME), ContributionPolicy::Open),
			Error::<Test>::InsufficientBalance
		);
		crate::NextDatanetId::<Test>::put(DatanetId::MAX);
		assert_noop!(
			Datanets::create_datanet(signed(ALICE), metadata(NAME), ContributionPolicy::Open),
			Error::<Test>::Overflow
		);
	});
}

#[test]
fn update_datanet_moves_the_hold_with_the_metadata_size() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		add_curators(d, &[BOB]);
		let issued = issuance();

		// 100 bytes of description: its compact length takes 2 bytes (values from 64 up).
		let long = metadata_with(NAME, &[b'x'; 100], &[], b"MIT");
		let long_deposit = DATANET_DEPOSIT + BYTE_DEPOSIT * ((1 + 7) + (2 + 100) + 1 + (1 + 3));
		assert_eq!(long_deposit, 1_230);
		assert_ok!(Datanets::update_datanet(
			signed(ALICE),
			d,
			long.clone(),
			ContributionPolicy::AllowList
		));
		System::assert_last_event(
			Event::DatanetUpdated { datanet_id: d, policy: ContributionPolicy::AllowList }.into(),
		);
		assert_eq!(datanet(d).metadata, long);
		assert_eq!(datanet(d).policy, ContributionPolicy::AllowList);
		assert_eq!(datanet(d).deposit, long_deposit + ITEM_DEPOSIT);
		assert_eq!(owner_hold(ALICE), long_deposit + ITEM_DEPOSIT);
		assert_eq!(free(ALICE), INITIAL_BALANCE - long_deposit - ITEM_DEPOSIT);

		// Shrinking below the original returns the difference.
		assert_ok!(Datanets::update_datanet(
			signed(ALICE),
			d,
			metadata(b"X"),
			ContributionPolicy::Open
		));
		System::assert_last_event(
			Event::DatanetUpdated { datanet_id: d, policy: ContributionPolicy::Open }.into(),
		);
		assert_eq!(metadata_deposit(b"X"), 1_016);
		assert_eq!(datanet(d).deposit, metadata_deposit(b"X") + ITEM_DEPOSIT);
		assert_eq!(owner_hold(ALICE), metadata_deposit(b"X") + ITEM_DEPOSIT);
		assert_eq!(free(ALICE), INITIAL_BALANCE - metadata_deposit(b"X") - ITEM_DEPOSIT);
		assert_eq!(datanet(d).policy, ContributionPolicy::Open);
		assert_eq!(issuance(), issued);
	});
}

#[test]
fn update_datanet_errors() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		let open = ContributionPolicy::Open;
		assert_noop!(
			Datanets::update_datanet(signed(ALICE), d, metadata(b""), open),
			Error::<Test>::EmptyName
		);
		assert_noop!(
			Datanets::update_datanet(signed(ALICE), MISSING, metadata(NAME), open),
			Error::<Test>::DatanetNotFound
		);
		assert_noop!(
			Datanets::update_datanet(signed(BOB), d, metadata(NAME), open),
			Error::<Test>::NotOwner
		);
		// The owner cannot pay for more metadata.
		<Balances as Mutate<AccountId>>::set_balance(&ALICE, 10);
		assert_noop!(
			Datanets::update_datanet(signed(ALICE), d, metadata(b"A much longer name"), open),
			Error::<Test>::InsufficientBalance
		);
		assert_ok!(Datanets::archive(signed(ALICE), d));
		assert_noop!(
			Datanets::update_datanet(signed(ALICE), d, metadata(NAME), open),
			Error::<Test>::DatanetArchived
		);
	});
}

#[test]
fn set_contributor_allowed_holds_an_item_deposit_per_entry() {
	new_test_ext().execute_with(|| {
		let d = create_with(ALICE, ContributionPolicy::AllowList);
		let base = metadata_deposit(NAME);
		let issued = issuance();

		assert_ok!(Datanets::set_contributor_allowed(signed(ALICE), d, EVE, true));
		System::assert_last_event(
			Event::ContributorAllowed { datanet_id: d, who: EVE, allowed: true }.into(),
		);
		assert_ok!(Datanets::set_contributor_allowed(signed(ALICE), d, DAVE, true));
		assert!(crate::AllowedContributors::<Test>::contains_key(d, EVE));
		assert!(crate::AllowedContributors::<Test>::contains_key(d, DAVE));
		assert_eq!(datanet(d).allowed, 2);
		assert_eq!(datanet(d).deposit, base + 2 * ITEM_DEPOSIT);
		assert_eq!(owner_hold(ALICE), base + 2 * ITEM_DEPOSIT);
		assert_eq!(free(ALICE), INITIAL_BALANCE - base - 2 * ITEM_DEPOSIT);

		assert_ok!(Datanets::set_contributor_allowed(signed(ALICE), d, EVE, false));
		System::assert_last_event(
			Event::ContributorAllowed { datanet_id: d, who: EVE, allowed: false }.into(),
		);
		assert!(!crate::AllowedContributors::<Test>::contains_key(d, EVE));
		assert_eq!(datanet(d).allowed, 1);
		assert_eq!(datanet(d).deposit, base + ITEM_DEPOSIT);
		assert_eq!(owner_hold(ALICE), base + ITEM_DEPOSIT);
		assert_eq!(free(ALICE), INITIAL_BALANCE - base - ITEM_DEPOSIT);
		assert_eq!(issuance(), issued);
	});
}

#[test]
fn set_contributor_allowed_errors() {
	new_test_ext().execute_with(|| {
		let open = create(ALICE);
		let d = create_with(ALICE, ContributionPolicy::AllowList);
		assert_noop!(
			Datanets::set_contributor_allowed(signed(ALICE), open, EVE, true),
			Error::<Test>::NotAllowListed
		);
		assert_noop!(
			Datanets::set_contributor_allowed(signed(ALICE), d, EVE, false),
			Error::<Test>::AllowListUnchanged
		);
		assert_ok!(Datanets::set_contributor_allowed(signed(ALICE), d, EVE, true));
		assert_noop!(
			Datanets::set_contributor_allowed(signed(ALICE), d, EVE, true),
			Error::<Test>::AllowListUnchanged
		);
		assert_noop!(
			Datanets::set_contributor_allowed(signed(BOB), d, DAVE, true),
			Error::<Test>::NotOwner
		);
		assert_noop!(
			Datanets::set_contributor_allowed(signed(ALICE), MISSING, DAVE, true),
			Error::<Test>::DatanetNotFound
		);
		assert_ok!(Datanets::archive(signed(ALICE), d));
		assert_noop!(
			Datanets::set_contributor_allowed(signed(ALICE), d, DAVE, true),
			Error::<Test>::DatanetArchived
		);
	});
}

#[test]
fn allow_list_decides_who_may_contribute() {
	new_test_ext().execute_with(|| {
		let d = create_with(ALICE, ContributionPolicy::AllowList);
		assert_noop!(
			Datanets::contribute(signed(EVE), d, file(1), SIZE, bounded(b"")),
			Error::<Test>::NotAllowedToContribute
		);
		// The owner is no exception.
		assert_noop!(
			Datanets::contribute(signed(ALICE), d, file(1), SIZE, bounded(b"")),
			Error::<Test>::NotAllowedToContribute
		);
		assert_ok!(Datanets::set_contributor_allowed(signed(ALICE), d, EVE, true));
		contribute(EVE, d, 1);
		assert_ok!(Datanets::set_contributor_allowed(signed(ALICE), d, EVE, false));
		assert_noop!(
			Datanets::contribute(signed(EVE), d, file(2), SIZE, bounded(b"")),
			Error::<Test>::NotAllowedToContribute
		);
		// Opening the datanet lets everyone in.
		assert_ok!(Datanets::update_datanet(
			signed(ALICE),
			d,
			metadata(NAME),
			ContributionPolicy::Open
		));
		contribute(EVE, d, 2);
		contribute(DAVE, d, 3);
	});
}

#[test]
fn add_and_remove_curator_hold_and_return_an_item_deposit() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		let base = metadata_deposit(NAME);
		let issued = issuance();

		assert_ok!(Datanets::add_curator(signed(ALICE), d, BOB));
		System::assert_last_event(Event::CuratorAdded { datanet_id: d, curator: BOB }.into());
		assert_ok!(Datanets::add_curator(signed(ALICE), d, CHARLIE));
		assert_eq!(datanet(d).curators.into_inner(), vec![BOB, CHARLIE]);
		assert_eq!(datanet(d).electorate(), 3);
		assert_eq!(datanet(d).deposit, base + 2 * ITEM_DEPOSIT);
		assert_eq!(owner_hold(ALICE), base + 2 * ITEM_DEPOSIT);
		assert_eq!(free(ALICE), INITIAL_BALANCE - base - 2 * ITEM_DEPOSIT);
		// Curators pay nothing.
		assert_eq!(free(BOB), INITIAL_BALANCE);

		assert_ok!(Datanets::remove_curator(signed(ALICE), d, BOB));
		System::assert_last_event(Event::CuratorRemoved { datanet_id: d, curator: BOB }.into());
		assert_eq!(datanet(d).curators.into_inner(), vec![CHARLIE]);
		assert_eq!(datanet(d).deposit, base + ITEM_DEPOSIT);
		assert_eq!(owner_hold(ALICE), base + ITEM_DEPOSIT);
		assert_eq!(free(ALICE), INITIAL_BALANCE - base - ITEM_DEPOSIT);
		assert_eq!(issuance(), issued);
	});
}

#[test]
fn curator_errors() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		assert_noop!(
			Datanets::add_curator(signed(ALICE), d, ALICE),
			Error::<Test>::OwnerCannotBeCurator
		);
		add_curators(d, &[BOB, CHARLIE, DAVE]);
		assert_noop!(Datanets::add_curator(signed(ALICE), d, BOB), Error::<Test>::AlreadyCurator);
		// MaxCurators is 3.
		assert_noop!(Datanets::add_curator(signed(ALICE), d, EVE), Error::<Test>::TooManyCurators);
		assert_noop!(Datanets::add_curator(signed(BOB), d, EVE), Error::<Test>::NotOwner);
		assert_noop!(
			Datanets::add_curator(signed(ALICE), MISSING, EVE),
			Error::<Test>::DatanetNotFound
		);
		assert_noop!(Datanets::remove_curator(signed(ALICE), d, EVE), Error::<Test>::NotCurator);
		assert_noop!(Datanets::remove_curator(signed(ALICE), d, ALICE), Error::<Test>::NotCurator);
		assert_noop!(Datanets::remove_curator(signed(BOB), d, CHARLIE), Error::<Test>::NotOwner);
		assert_noop!(
			Datanets::remove_curator(signed(ALICE), MISSING, BOB),
			Error::<Test>::DatanetNotFound
		);
		// An owner who cannot pay the item deposit cannot add a curator.
		assert_ok!(Datanets::remove_curator(signed(ALICE), d, DAVE));
		<Balances as Mutate<AccountId>>::set_balance(&ALICE, ITEM_DEPOSIT);
		assert_noop!(
			Datanets::add_curator(signed(ALICE), d, DAVE),
			Error::<Test>::InsufficientBalance
		);
		assert_ok!(Datanets::archive(signed(ALICE), d));
		assert_noop!(Datanets::add_curator(signed(ALICE), d, DAVE), Error::<Test>::DatanetArchived);
	});
}

#[test]
fn set_quorum_sets_and_clears_a_custom_quorum() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		add_curators(d, &[BOB, CHARLIE, DAVE]);
		assert_eq!(datanet(d).effective_quorum(), 3);

		assert_ok!(Datanets::set_quorum(signed(ALICE), d, Some(2)));
		System::assert_last_event(Event::QuorumSet { datanet_id: d, quorum: Some(2) }.into());
		assert_eq!(datanet(d).quorum, Some(2));
		assert_eq!(datanet(d).effective_quorum(), 2);

		assert_ok!(Datanets::set_quorum(signed(ALICE), d, Some(4)));
		assert_eq!(datanet(d).effective_quorum(), 4);

		assert_ok!(Datanets::set_quorum(signed(ALICE), d, None));
		System::assert_last_event(Event::QuorumSet { datanet_id: d, quorum: None }.into());
		assert_eq!(datanet(d).quorum, None);
		assert_eq!(datanet(d).effective_quorum(), 3);
	});
}

#[test]
fn set_quorum_errors() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		add_curators(d, &[BOB]);
		assert_noop!(Datanets::set_quorum(signed(ALICE), d, Some(0)), Error::<Test>::InvalidQuorum);
		// The electorate is the owner and one curator.
		assert_noop!(Datanets::set_quorum(signed(ALICE), d, Some(3)), Error::<Test>::InvalidQuorum);
		assert_noop!(Datanets::set_quorum(signed(BOB), d, Some(1)), Error::<Test>::NotOwner);
		assert_noop!(
			Datanets::set_quorum(signed(ALICE), MISSING, Some(1)),
			Error::<Test>::DatanetNotFound
		);
	});
}

#[test]
fn contribute_holds_the_deposit_and_records_a_pending_contribution() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		let issued = issuance();
		let size = 1_234;
		let deposit = CONTRIBUTION_BASE_DEPOSIT + CONTRIBUTION_BYTE_DEPOSIT * 1_234;
		System::set_block_number(5);

		assert_ok!(Datanets::contribute(
			signed(EVE),
			d,
			file(1),
			size,
			bounded(b"scan.png image/png")
		));

		System::assert_last_event(
			Event::Contributed {
				contribution_id: 0,
				datanet_id: d,
				contributor: EVE,
				content_hash: file(1),
				size,
				deposit,
			}
			.into(),
		);
		assert_eq!(
			contribution(0),
			Some(ContributionInfo {
				datanet_id: d,
				contributor: EVE,
				content_hash: file(1),
				size,
				metadata: bounded(b"scan.png image/png"),
				deposit,
				status: ContributionStatus::Pending,
				votes: BoundedVec::new(),
				submitted_at: 5,
			})
		);
		assert_eq!(crate::ContributionsByContent::<Test>::get(file(1), d), Some(0));
		assert_eq!(crate::NextContributionId::<Test>::get(), 1);
		assert_eq!(datanet(d).pending, 1);
		assert_eq!(contribution_hold(EVE), 1_284);
		assert_eq!(free(EVE), INITIAL_BALANCE - 1_284);
		assert_eq!(Datanets::contribution_deposit(size), deposit);

		// Ids are global, across datanets.
		let other = create(BOB);
		assert_eq!(contribute(EVE, other, 2), 1);
		assert_eq!(contribution_hold(EVE), 1_284 + DEPOSIT);
		assert_eq!(datanet(other).pending, 1);
		assert_eq!(issuance(), issued);
	});
}

#[test]
fn contribute_errors() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		let contribute_file = |who, datanet_id, n, size| {
			Datanets::contribute(signed(who), datanet_id, file(n), size, bounded(b""))
		};
		assert_noop!(contribute_file(EVE, d, 1, 0), Error::<Test>::EmptyContribution);
		let max = MaxContributionSize::get();
		assert_noop!(contribute_file(EVE, d, 1, max + 1), Error::<Test>::ContributionTooLarge);
		// The largest file passes the size check; EVE cannot pay its 5 MiB deposit.
		assert_noop!(contribute_file(EVE, d, 1, max), Error::<Test>::InsufficientBalance);
		assert_noop!(contribute_file(POOR, d, 1, 1), Error::<Test>::InsufficientBalance);
		assert_noop!(contribute_file(EVE, MISSING, 1, SIZE), Error::<Test>::DatanetNotFound);

		contribute(EVE, d, 1);
		// Pending content, from anyone.
		assert_noop!(contribute_file(DAVE, d, 1, SIZE), Error::<Test>::DuplicateContent);
		contribute(EVE, d, 2);
		contribute(DAVE, d, 3);
		contribute(DAVE, d, 4);
		// MaxPendingContributions is 4.
		assert_noop!(contribute_file(CHARLIE, d, 5, SIZE), Error::<Test>::TooManyPending);
		approve(ALICE, 0, 50);
		// Accepted content is a duplicate too; a decision frees a pending slot.
		assert_noop!(contribute_file(CHARLIE, d, 1, SIZE), Error::<Test>::DuplicateContent);
		crate::NextContributionId::<Test>::put(ContributionId::MAX);
		assert_noop!(contribute_file(CHARLIE, d, 5, SIZE), Error::<Test>::Overflow);
		crate::NextContributionId::<Test>::put(4);
		contribute(CHARLIE, d, 5);

		assert_ok!(Datanets::archive(signed(ALICE), d));
		assert_noop!(contribute_file(CHARLIE, d, 6, SIZE), Error::<Test>::DatanetArchived);
	});
}

#[test]
fn a_vote_that_settles_nothing_is_recorded() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		add_curators(d, &[BOB, CHARLIE]);
		let c = contribute(EVE, d, 1);

		assert_ok!(Datanets::review(signed(BOB), c, Verdict::Approve, 70));
		let vote = Vote { verdict: Verdict::Approve, quality: 70 };
		System::assert_last_event(
			Event::Reviewed { contribution_id: c, reviewer: BOB, vote }.into(),
		);
		assert_ok!(Datanets::review(signed(CHARLIE), c, Verdict::Reject, 20));
		let rejection = Vote { verdict: Verdict::Reject, quality: 20 };
		System::assert_last_event(
			Event::Reviewed { contribution_id: c, reviewer: CHARLIE, vote: rejection }.into(),
		);
		let pending = contribution(c).unwrap();
		assert_eq!(pending.status, ContributionStatus::Pending);
		assert_eq!(pending.votes.into_inner(), vec![(BOB, vote), (CHARLIE, rejection)]);
		assert_eq!(datanet(d).pending, 1);
		assert_eq!(contribution_hold(EVE), DEPOSIT);
		assert_eq!(reputation(EVE), 50);
		assert!(unpublished(d).is_empty());
	});
}

#[test]
fn acceptance_returns_the_deposit_and_queues_the_contribution() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		add_curators(d, &[BOB]);
		let issued = issuance();
		let c = contribute(EVE, d, 1);
		approve(ALICE, c, 90);
		assert_eq!(free(EVE), INITIAL_BALANCE - DEPOSIT);

		assert_ok!(Datanets::review(signed(BOB), c, Verdict::Approve, 71));

		System::assert_has_event(
			Event::Reviewed {
				contribution_id: c,
				reviewer: BOB,
				vote: Vote { verdict: Verdict::Approve, quality: 71 },
			}
			.into(),
		);
		// (90 + 71) / 2 = 80 (floored); reputation 50 + 10 × 80 / 100.
		System::assert_last_event(
			Event::ContributionAccepted {
				contribution_id: c,
				datanet_id: d,
				quality: 80,
				reputation: 58,
			}
			.into(),
		);
		let accepted = contribution(c).unwrap();
		assert_eq!(accepted.status, ContributionStatus::Accepted { quality: 80 });
		assert_eq!(accepted.deposit, 0);
		assert!(accepted.votes.is_empty());
		assert_eq!(crate::ContributionsByContent::<Test>::get(file(1), d), Some(c));
		assert_eq!(unpublished(d), vec![c]);
		assert_eq!(datanet(d).pending, 0);
		assert_eq!(contribution_hold(EVE), 0);
		assert_eq!(free(EVE), INITIAL_BALANCE);
		assert_eq!(reputation(EVE), 58);
		assert_eq!(crate::Reputation::<Test>::get(EVE), Some(58));
		assert_eq!(issuance(), issued);
	});
}

#[test]
fn rejection_slashes_a_share_to_the_treasury_and_returns_the_rest() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		let issued = issuance();
		// Perbill × balance rounds to the nearest plank, a tie down: 10 % of 150 is 15, of
		// 57 (5.7) is 6, of 55 (5.5) is 5. Each rejection costs EVE 20 reputation.
		for (n, size, deposit, slashed, reputation) in
			[(1, 100, 150, 15, 30), (2, 7, 57, 6, 10), (3, 5, 55, 5, 0)]
		{
			let treasury = free(TREASURY);
			let eve = free(EVE);
			let c = contribute_sized(EVE, d, n, size);
			assert_eq!(contribution_hold(EVE), deposit);
			assert_eq!(free(EVE), eve - deposit);

			assert_ok!(Datanets::review(signed(ALICE), c, Verdict::Reject, 0));

			System::assert_last_event(
				Event::ContributionRejected {
					contribution_id: c,
					datanet_id: d,
					content_hash: file(n),
					slashed,
					reputation,
				}
				.into(),
			);
			assert_eq!(free(TREASURY), treasury + slashed);
			assert_eq!(free(EVE), eve - slashed);
			assert_eq!(contribution_hold(EVE), 0);
			assert_eq!(contribution(c), None);
			assert_eq!(crate::ContributionsByContent::<Test>::get(file(n), d), None);
			assert_eq!(datanet(d).pending, 0);
			assert_eq!(crate::Reputation::<Test>::get(EVE), Some(reputation));
			assert!(unpublished(d).is_empty());
		}
		assert_eq!(free(TREASURY), 1 + 15 + 6 + 5);
		assert_eq!(issuance(), issued);
	});
}

#[test]
fn default_quorum_is_a_majority_of_owner_and_curators() {
	let voters = [ALICE, BOB, CHARLIE, DAVE];
	for (curators, quorum) in [(0, 1), (1, 2), (2, 2), (3, 3)] {
		new_test_ext().execute_with(|| {
			let d = create(ALICE);
			add_curators(d, &voters[1..=curators]);
			assert_eq!(datanet(d).electorate(), curators as u32 + 1);
			assert_eq!(datanet(d).effective_quorum(), quorum as u32);
			let c = contribute(EVE, d, 1);
			for voter in &voters[..quorum - 1] {
				approve(*voter, c, 60);
				assert!(is_pending(c), "{curators} curators: accepted before {quorum} approvals");
			}
			approve(voters[quorum - 1], c, 60);
			assert!(is_accepted(c), "{curators} curators: not accepted after {quorum} approvals");
		});
	}
}

#[test]
fn a_custom_quorum_decides() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		add_curators(d, &[BOB, CHARLIE, DAVE]);

		assert_ok!(Datanets::set_quorum(signed(ALICE), d, Some(2)));
		let c = contribute(EVE, d, 1);
		approve(DAVE, c, 60);
		assert!(is_pending(c));
		approve(BOB, c, 60);
		assert!(is_accepted(c));
		// With quorum 2 of 4, approval stays reachable until a third rejection.
		let c = contribute(EVE, d, 2);
		reject(ALICE, c);
		reject(BOB, c);
		assert!(is_pending(c));
		reject(CHARLIE, c);
		assert_eq!(contribution(c), None);

		assert_ok!(Datanets::set_quorum(signed(ALICE), d, Some(4)));
		let c = contribute(EVE, d, 3);
		for voter in [ALICE, BOB, CHARLIE] {
			approve(voter, c, 60);
			assert!(is_pending(c));
		}
		approve(DAVE, c, 60);
		assert!(is_accepted(c));
		// Unanimity: one rejection rejects.
		let c = contribute(DAVE, d, 4);
		approve(ALICE, c, 60);
		reject(CHARLIE, c);
		assert_eq!(contribution(c), None);
	});
}

#[test]
fn rejection_comes_as_soon_as_approval_cannot_reach_the_quorum() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		add_curators(d, &[BOB, CHARLIE]);
		// Electorate 3, quorum 2: two rejections reject.
		let c = contribute(EVE, d, 1);
		reject(ALICE, c);
		assert!(is_pending(c));
		reject(BOB, c);
		assert_eq!(contribution(c), None);
		let c = contribute(DAVE, d, 2);
		approve(ALICE, c, 60);
		reject(BOB, c);
		assert!(is_pending(c));
		reject(CHARLIE, c);
		assert_eq!(contribution(c), None);

		// Electorate 2, quorum 2: one rejection rejects.
		assert_ok!(Datanets::remove_curator(signed(ALICE), d, CHARLIE));
		assert_eq!(datanet(d).effective_quorum(), 2);
		let c = contribute(EVE, d, 3);
		approve(ALICE, c, 60);
		assert!(is_pending(c));
		reject(BOB, c);
		assert_eq!(contribution(c), None);

		// The owner alone: one rejection rejects.
		assert_ok!(Datanets::remove_curator(signed(ALICE), d, BOB));
		let c = contribute(DAVE, d, 4);
		reject(ALICE, c);
		assert_eq!(contribution(c), None);
	});
}

#[test]
fn votes_of_a_removed_curator_no_longer_count() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		add_curators(d, &[BOB, CHARLIE]);
		let approved = contribute(EVE, d, 1);
		let rejected = contribute(EVE, d, 2);
		approve(BOB, approved, 90);
		reject(BOB, rejected);

		// Electorate 2, quorum 2.
		assert_ok!(Datanets::remove_curator(signed(ALICE), d, BOB));
		assert_noop!(
			Datanets::review(signed(BOB), approved, Verdict::Approve, 90),
			Error::<Test>::NotReviewer
		);

		// BOB's approval would make ALICE's the second.
		approve(ALICE, approved, 50);
		assert!(is_pending(approved));
		let votes = contribution(approved).unwrap().votes.into_inner();
		assert_eq!(votes, vec![(ALICE, Vote { verdict: Verdict::Approve, quality: 50 })]);
		approve(CHARLIE, approved, 70);
		// Quality 60: BOB's 90 is not in the average.
		assert_eq!(status(approved), Some(ContributionStatus::Accepted { quality: 60 }));

		// BOB's rejection would reject at the first vote of anyone (more than 2 − 2 = 0).
		approve(CHARLIE, rejected, 50);
		assert!(is_pending(rejected));
		approve(ALICE, rejected, 50);
		assert!(is_accepted(rejected));
	});
}

#[test]
fn a_custom_quorum_shrinks_with_the_electorate() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		add_curators(d, &[BOB, CHARLIE, DAVE]);
		assert_ok!(Datanets::set_quorum(signed(ALICE), d, Some(4)));
		let c = contribute(EVE, d, 1);
		approve(ALICE, c, 60);

		assert_ok!(Datanets::remove_curator(signed(ALICE), d, DAVE));
		assert_eq!(datanet(d).effective_quorum(), 3);
		assert_ok!(Datanets::remove_curator(signed(ALICE), d, CHARLIE));
		assert_eq!(datanet(d).quorum, Some(4));
		assert_eq!(datanet(d).electorate(), 2);
		assert_eq!(datanet(d).effective_quorum(), 2);

		approve(BOB, c, 60);
		assert!(is_accepted(c));
		// A quorum above the electorate cannot be set, only kept.
		assert_noop!(Datanets::set_quorum(signed(ALICE), d, Some(3)), Error::<Test>::InvalidQuorum);
	});
}

#[test]
fn reputation_grows_with_the_average_approving_quality_up_to_the_cap() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		add_curators(d, &[BOB, CHARLIE]);
		assert_eq!(crate::Reputation::<Test>::get(EVE), None);
		assert_eq!(reputation(EVE), 50);

		// A rejecting vote's quality is not averaged: (80 + 60) / 2 = 70 → +7.
		let c = contribute(EVE, d, 1);
		assert_ok!(Datanets::review(signed(CHARLIE), c, Verdict::Reject, 10));
		approve(ALICE, c, 80);
		approve(BOB, c, 60);
		System::assert_last_event(
			Event::ContributionAccepted {
				contribution_id: c,
				datanet_id: d,
				quality: 70,
				reputation: 57,
			}
			.into(),
		);
		assert_eq!(reputation(EVE), 57);

		// Quality 0 gains nothing.
		let c = contribute(EVE, d, 2);
		approve(ALICE, c, 0);
		approve(BOB, c, 0);
		assert_eq!(status(c), Some(ContributionStatus::Accepted { quality: 0 }));
		assert_eq!(reputation(EVE), 57);

		// (100 + 99) / 2 = 99 → +9 (9.9 floored) → 66, capped at 60.
		let c = contribute(EVE, d, 3);
		approve(ALICE, c, 100);
		approve(BOB, c, 99);
		System::assert_last_event(
			Event::ContributionAccepted {
				contribution_id: c,
				datanet_id: d,
				quality: 99,
				reputation: 60,
			}
			.into(),
		);
		assert_eq!(reputation(EVE), 60);
		assert_eq!(reputation(DAVE), 50);
	});
}

#[test]
fn rejections_cost_reputation_until_contributing_is_refused() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		let elsewhere = create(BOB);
		for (n, after) in [(1, 30), (2, 10), (3, 0)] {
			// At 10 (MinReputation) EVE may still contribute.
			let c = contribute(EVE, d, n);
			reject(ALICE, c);
			assert_eq!(reputation(EVE), after);
		}
		let c = contribute(DAVE, d, 4);
		reject(ALICE, c);
		assert_eq!(reputation(DAVE), 30);
		// Refused in every datanet.
		for datanet_id in [d, elsewhere] {
			assert_noop!(
				Datanets::contribute(signed(EVE), datanet_id, file(9), SIZE, bounded(b"")),
				Error::<Test>::ReputationTooLow
			);
		}
	});
}

#[test]
fn review_errors() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		add_curators(d, &[BOB, CHARLIE]);
		let c = contribute(EVE, d, 1);
		assert_noop!(
			Datanets::review(signed(ALICE), c, Verdict::Approve, 101),
			Error::<Test>::InvalidQualityScore
		);
		assert_noop!(
			Datanets::review(signed(ALICE), 99, Verdict::Approve, 50),
			Error::<Test>::ContributionNotFound
		);
		// Neither the contributor nor a stranger.
		assert_noop!(
			Datanets::review(signed(EVE), c, Verdict::Approve, 50),
			Error::<Test>::NotReviewer
		);
		assert_noop!(
			Datanets::review(signed(DAVE), c, Verdict::Approve, 50),
			Error::<Test>::NotReviewer
		);
		approve(BOB, c, 50);
		assert_noop!(
			Datanets::review(signed(BOB), c, Verdict::Reject, 50),
			Error::<Test>::AlreadyVoted
		);
		approve(ALICE, c, 50);
		assert!(is_accepted(c));
		assert_noop!(
			Datanets::review(signed(CHARLIE), c, Verdict::Approve, 50),
			Error::<Test>::NotPending
		);
		// A rejected contribution is gone.
		let gone = contribute(EVE, d, 2);
		reject(ALICE, gone);
		reject(BOB, gone);
		assert_noop!(
			Datanets::review(signed(CHARLIE), gone, Verdict::Approve, 50),
			Error::<Test>::ContributionNotFound
		);
	});
}

#[test]
fn acceptance_waits_for_a_version_once_the_unpublished_list_is_full() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		let mut accepted_ids = Vec::new();
		for n in 1..=4 {
			accepted_ids.push(accepted(EVE, d, n, SIZE));
		}
		let fifth = contribute(EVE, d, 5);
		let sixth = contribute(DAVE, d, 6);
		approve(ALICE, fifth, 100);
		accepted_ids.push(fifth);
		assert_eq!(unpublished(d), accepted_ids);

		// MaxContributionsPerVersion is 5.
		assert_noop!(
			Datanets::review(signed(ALICE), sixth, Verdict::Approve, 100),
			Error::<Test>::UnpublishedFull
		);
		assert_ok!(Datanets::publish_version(signed(ALICE), d));
		approve(ALICE, sixth, 100);
		assert_eq!(unpublished(d), vec![sixth]);
		assert_eq!(version(d, 1).contributions.into_inner(), accepted_ids);
	});
}

#[test]
fn withdraw_returns_the_whole_deposit() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		add_curators(d, &[BOB, CHARLIE]);
		let issued = issuance();
		let c = contribute_sized(EVE, d, 1, 57);
		reject(BOB, c);
		assert_eq!(contribution_hold(EVE), 57 + CONTRIBUTION_BASE_DEPOSIT);

		assert_ok!(Datanets::withdraw(signed(EVE), c));

		System::assert_last_event(
			Event::ContributionWithdrawn { contribution_id: c, datanet_id: d }.into(),
		);
		assert_eq!(contribution(c), None);
		assert_eq!(crate::ContributionsByContent::<Test>::get(file(1), d), None);
		assert_eq!(datanet(d).pending, 0);
		assert_eq!(contribution_hold(EVE), 0);
		assert_eq!(free(EVE), INITIAL_BALANCE);
		assert_eq!(free(TREASURY), 1);
		// Withdrawing is not a rejection.
		assert_eq!(crate::Reputation::<Test>::get(EVE), None);
		assert_eq!(issuance(), issued);
	});
}

#[test]
fn withdraw_errors() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		let c = contribute(EVE, d, 1);
		assert_noop!(Datanets::withdraw(signed(DAVE), c), Error::<Test>::NotContributor);
		assert_noop!(Datanets::withdraw(signed(ALICE), c), Error::<Test>::NotContributor);
		assert_noop!(Datanets::withdraw(signed(EVE), 99), Error::<Test>::ContributionNotFound);
		approve(ALICE, c, 50);
		assert_noop!(Datanets::withdraw(signed(EVE), c), Error::<Test>::NotPending);
		let gone = contribute(EVE, d, 2);
		assert_ok!(Datanets::withdraw(signed(EVE), gone));
		assert_noop!(Datanets::withdraw(signed(EVE), gone), Error::<Test>::ContributionNotFound);
	});
}

#[test]
fn publish_version_snapshots_the_contributions_accepted_since_the_last() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		let issued = issuance();
		let base = metadata_deposit(NAME);
		let c0 = contribute_sized(EVE, d, 1, 10);
		let c1 = contribute_sized(DAVE, d, 2, 20);
		let c2 = contribute_sized(EVE, d, 3, 30);
		// Accepted out of id order; a pending one waits.
		approve(ALICE, c1, 100);
		approve(ALICE, c0, 100);
		assert_eq!(unpublished(d), vec![c1, c0]);
		System::set_block_number(3);

		assert_ok!(Datanets::publish_version(signed(ALICE), d));

		let root = node(file(2), file(1));
		System::assert_last_event(
			Event::VersionPublished {
				datanet_id: d,
				version: 1,
				count: 2,
				total_bytes: 30,
				merkle_root: root,
			}
			.into(),
		);
		assert_eq!(
			version(d, 1),
			VersionInfo {
				contributions: vec![c1, c0].try_into().unwrap(),
				merkle_root: root,
				count: 2,
				total_bytes: 30,
				published_at: 3,
			}
		);
		assert_eq!(datanet(d).latest_version, 1);
		assert!(unpublished(d).is_empty());
		assert!(!crate::Unpublished::<Test>::contains_key(d));
		assert_eq!(version_deposit(2), 134);
		assert_eq!(datanet(d).deposit, base + 134);
		assert_eq!(owner_hold(ALICE), base + 134);
		assert_eq!(free(ALICE), INITIAL_BALANCE - base - 134);
		assert_noop!(Datanets::publish_version(signed(ALICE), d), Error::<Test>::NothingToPublish);

		approve(ALICE, c2, 100);
		assert_ok!(Datanets::publish_version(signed(ALICE), d));
		System::assert_last_event(
			Event::VersionPublished {
				datanet_id: d,
				version: 2,
				count: 1,
				total_bytes: 30,
				merkle_root: file(3),
			}
			.into(),
		);
		assert_eq!(version(d, 2).contributions.into_inner(), vec![c2]);
		// Version 1 is untouched.
		assert_eq!(version(d, 1).contributions.into_inner(), vec![c1, c0]);
		assert_eq!(datanet(d).latest_version, 2);
		assert_eq!(version_deposit(1), 118);
		assert_eq!(owner_hold(ALICE), base + 134 + 118);
		assert_eq!(datanet(d).deposit, base + 134 + 118);
		// Accepted contributions stay, and keep their content.
		assert!(is_accepted(c0) && is_accepted(c1) && is_accepted(c2));
		assert_eq!(issuance(), issued);
	});
}

#[test]
fn merkle_root_is_binary_merkle_tree_over_the_content_hashes_in_order() {
	new_test_ext().execute_with(|| {
		let (a, b, c) = (file(1), file(2), file(3));
		// One leaf: the leaf itself, unhashed. Two: blake2-256(a ++ b). Three: the odd last
		// leaf is promoted unhashed to the next row: blake2-256(blake2-256(a ++ b) ++ c).
		// Leaves are in acceptance order, so [3, 1] differs from [1, 3].
		let cases: [(&[u8], H256); 5] = [
			(&[1], a),
			(&[1, 2], node(a, b)),
			(&[2, 1], node(b, a)),
			(&[1, 2, 3], node(node(a, b), c)),
			(&[3, 1, 2], node(node(c, a), b)),
		];
		for (files, hand) in cases {
			let d = create(ALICE);
			for n in files {
				accepted(EVE, d, *n, SIZE);
			}
			assert_ok!(Datanets::publish_version(signed(ALICE), d));
			let root = version(d, 1).merkle_root;
			assert_eq!(root, hand, "files {files:?}");
			let leaves: Vec<H256> = files.iter().map(|n| file(*n)).collect();
			assert_eq!(root, binary_merkle_tree::merkle_root_raw::<BlakeTwo256, _>(leaves));
		}
		assert_ne!(node(a, b), node(b, a));
	});
}

#[test]
fn publish_version_errors() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		add_curators(d, &[BOB]);
		assert_noop!(Datanets::publish_version(signed(ALICE), d), Error::<Test>::NothingToPublish);
		let c = contribute(EVE, d, 1);
		// Pending contributions are not published.
		approve(BOB, c, 50);
		assert_noop!(Datanets::publish_version(signed(ALICE), d), Error::<Test>::NothingToPublish);
		approve(ALICE, c, 50);
		assert_noop!(Datanets::publish_version(signed(BOB), d), Error::<Test>::NotOwner);
		assert_noop!(
			Datanets::publish_version(signed(ALICE), MISSING),
			Error::<Test>::DatanetNotFound
		);
		crate::Datanets::<Test>::mutate(d, |info| info.as_mut().unwrap().latest_version = u32::MAX);
		assert_noop!(Datanets::publish_version(signed(ALICE), d), Error::<Test>::Overflow);
		crate::Datanets::<Test>::mutate(d, |info| info.as_mut().unwrap().latest_version = 0);
		// The owner cannot pay the version deposit.
		<Balances as Mutate<AccountId>>::set_balance(&ALICE, version_deposit(1));
		assert_noop!(
			Datanets::publish_version(signed(ALICE), d),
			Error::<Test>::InsufficientBalance
		);
	});
}

#[test]
fn rejected_or_withdrawn_content_can_come_again() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		let c = contribute(EVE, d, 1);
		reject(ALICE, c);
		let again = contribute(DAVE, d, 1);
		assert_eq!(crate::ContributionsByContent::<Test>::get(file(1), d), Some(again));
		assert_ok!(Datanets::withdraw(signed(DAVE), again));
		let third = contribute(EVE, d, 1);
		approve(ALICE, third, 50);
		assert_noop!(
			Datanets::contribute(signed(DAVE), d, file(1), SIZE, bounded(b"")),
			Error::<Test>::DuplicateContent
		);
		assert_ok!(Datanets::publish_version(signed(ALICE), d));
		assert_eq!(version(d, 1).contributions.into_inner(), vec![third]);
		// Still a duplicate once published.
		assert_noop!(
			Datanets::contribute(signed(DAVE), d, file(1), SIZE, bounded(b"")),
			Error::<Test>::DuplicateContent
		);
	});
}

#[test]
fn the_same_content_may_go_to_different_datanets() {
	new_test_ext().execute_with(|| {
		let first = create(ALICE);
		let second = create(BOB);
		let c0 = contribute(EVE, first, 1);
		let c1 = contribute(EVE, second, 1);
		assert_eq!(crate::ContributionsByContent::<Test>::get(file(1), first), Some(c0));
		assert_eq!(crate::ContributionsByContent::<Test>::get(file(1), second), Some(c1));
		approve(ALICE, c0, 50);
		approve(BOB, c1, 50);
		assert!(is_accepted(c0) && is_accepted(c1));
		assert_eq!(contribution_hold(EVE), 0);
	});
}

#[test]
fn contributions_of_lists_pending_and_accepted_contributions_across_datanets() {
	new_test_ext().execute_with(|| {
		let first = create(ALICE);
		let second = create(BOB);
		let third = create(CHARLIE);
		let pending = contribute(EVE, first, 1);
		let accepted = contribute(DAVE, second, 1);
		approve(BOB, accepted, 80);
		let rejected = contribute(EVE, third, 1);
		reject(CHARLIE, rejected);
		let withdrawn = contribute(EVE, first, 2);
		assert_ok!(Datanets::withdraw(signed(EVE), withdrawn));

		let mut listed = Datanets::contributions_of(file(1));
		listed.sort_by_key(|(id, _)| *id);
		assert_eq!(
			listed,
			vec![
				(pending, contribution(pending).unwrap()),
				(accepted, contribution(accepted).unwrap()),
			]
		);
		assert_eq!(listed[0].1.datanet_id, first);
		assert_eq!(listed[0].1.status, ContributionStatus::Pending);
		assert_eq!(listed[1].1.datanet_id, second);
		assert_eq!(listed[1].1.status, ContributionStatus::Accepted { quality: 80 });
		assert_eq!(Datanets::contributions_of(file(2)), vec![]);
		assert_eq!(Datanets::contributions_of(file(3)), vec![]);

		// Published contributions stay listed; a rejected pending one drops out.
		assert_ok!(Datanets::publish_version(signed(BOB), second));
		reject(ALICE, pending);
		assert_eq!(
			Datanets::contributions_of(file(1)),
			vec![(accepted, contribution(accepted).unwrap())]
		);
	});
}

#[test]
fn archive_closes_the_datanet_to_contributions_and_settings() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		add_curators(d, &[BOB]);
		let accepted = contribute(EVE, d, 1);
		let rejected = contribute(DAVE, d, 2);
		let withdrawn = contribute(EVE, d, 3);
		let deposit = datanet(d).deposit;

		assert_ok!(Datanets::archive(signed(ALICE), d));
		System::assert_last_event(Event::DatanetArchived { datanet_id: d }.into());
		assert_eq!(datanet(d).status, DatanetStatus::Archived);
		assert_eq!(datanet(d).deposit, deposit);
		assert_eq!(owner_hold(ALICE), deposit);

		assert_noop!(Datanets::archive(signed(ALICE), d), Error::<Test>::AlreadyArchived);
		assert_noop!(
			Datanets::contribute(signed(EVE), d, file(4), SIZE, bounded(b"")),
			Error::<Test>::DatanetArchived
		);
		assert_noop!(
			Datanets::update_datanet(signed(ALICE), d, metadata(NAME), ContributionPolicy::Open),
			Error::<Test>::DatanetArchived
		);
		assert_noop!(
			Datanets::add_curator(signed(ALICE), d, CHARLIE),
			Error::<Test>::DatanetArchived
		);

		// Pending contributions are still decided or withdrawn, and published.
		approve(ALICE, accepted, 70);
		approve(BOB, accepted, 70);
		assert!(is_accepted(accepted));
		reject(BOB, rejected);
		assert_eq!(contribution(rejected), None);
		assert_ok!(Datanets::withdraw(signed(EVE), withdrawn));
		assert_eq!(datanet(d).pending, 0);
		assert_ok!(Datanets::publish_version(signed(ALICE), d));
		assert_eq!(version(d, 1).contributions.into_inner(), vec![accepted]);
		// Curators can still be removed, the quorum set, the datanet handed over.
		assert_ok!(Datanets::set_quorum(signed(ALICE), d, Some(2)));
		assert_ok!(Datanets::remove_curator(signed(ALICE), d, BOB));
		assert_ok!(Datanets::transfer_ownership(signed(ALICE), d, Some(DAVE)));
		assert_ok!(Datanets::accept_ownership(signed(DAVE), d));
		assert_eq!(datanet(d).status, DatanetStatus::Archived);
	});
}

#[test]
fn archive_errors() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		assert_noop!(Datanets::archive(signed(BOB), d), Error::<Test>::NotOwner);
		assert_noop!(Datanets::archive(signed(ALICE), MISSING), Error::<Test>::DatanetNotFound);
	});
}

#[test]
fn transfer_ownership_proposes_and_cancels() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		assert_ok!(Datanets::transfer_ownership(signed(ALICE), d, Some(BOB)));
		System::assert_last_event(
			Event::OwnershipTransferProposed { datanet_id: d, to: Some(BOB) }.into(),
		);
		assert_eq!(datanet(d).pending_owner, Some(BOB));
		// Nothing moves until accepted.
		assert_eq!(datanet(d).owner, ALICE);
		assert_eq!(owner_hold(ALICE), metadata_deposit(NAME));
		assert_eq!(owner_hold(BOB), 0);

		// A second proposal replaces the first.
		assert_ok!(Datanets::transfer_ownership(signed(ALICE), d, Some(CHARLIE)));
		assert_eq!(datanet(d).pending_owner, Some(CHARLIE));
		assert_noop!(Datanets::accept_ownership(signed(BOB), d), Error::<Test>::NotPendingOwner);

		assert_ok!(Datanets::transfer_ownership(signed(ALICE), d, None));
		System::assert_last_event(
			Event::OwnershipTransferProposed { datanet_id: d, to: None }.into(),
		);
		assert_eq!(datanet(d).pending_owner, None);
		assert_noop!(
			Datanets::accept_ownership(signed(CHARLIE), d),
			Error::<Test>::NotPendingOwner
		);
	});
}

#[test]
fn ownership_errors() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		assert_noop!(
			Datanets::transfer_ownership(signed(ALICE), d, Some(ALICE)),
			Error::<Test>::AlreadyOwner
		);
		assert_noop!(
			Datanets::transfer_ownership(signed(BOB), d, Some(BOB)),
			Error::<Test>::NotOwner
		);
		assert_noop!(
			Datanets::transfer_ownership(signed(ALICE), MISSING, Some(BOB)),
			Error::<Test>::DatanetNotFound
		);
		assert_noop!(Datanets::accept_ownership(signed(BOB), d), Error::<Test>::NotPendingOwner);
		assert_noop!(
			Datanets::accept_ownership(signed(BOB), MISSING),
			Error::<Test>::DatanetNotFound
		);
		// The owner cannot accept their own datanet.
		assert_noop!(Datanets::accept_ownership(signed(ALICE), d), Error::<Test>::NotPendingOwner);
		assert_ok!(Datanets::transfer_ownership(signed(ALICE), d, Some(POOR)));
		assert_noop!(
			Datanets::accept_ownership(signed(POOR), d),
			Error::<Test>::InsufficientBalance
		);
	});
}

#[test]
fn accept_ownership_moves_the_whole_hold_to_the_new_owner() {
	new_test_ext().execute_with(|| {
		let issued = issuance();
		let kept = create(ALICE);
		let d = create_with(ALICE, ContributionPolicy::AllowList);
		add_curators(d, &[BOB, CHARLIE]);
		assert_ok!(Datanets::set_contributor_allowed(signed(ALICE), d, EVE, true));
		let c = contribute(EVE, d, 1);
		approve(ALICE, c, 60);
		approve(CHARLIE, c, 60);
		assert_ok!(Datanets::publish_version(signed(ALICE), d));
		// Metadata, two curators, one allow-list entry, a version of one contribution.
		let deposit = metadata_deposit(NAME) + 2 * ITEM_DEPOSIT + ITEM_DEPOSIT + version_deposit(1);
		assert_eq!(deposit, 1_028 + 200 + 100 + 118);
		assert_eq!(datanet(d).deposit, deposit);
		assert_eq!(owner_hold(ALICE), metadata_deposit(NAME) + deposit);

		// To an account that is not a curator: everything moves.
		assert_ok!(Datanets::transfer_ownership(signed(ALICE), d, Some(DAVE)));
		assert_ok!(Datanets::accept_ownership(signed(DAVE), d));
		System::assert_last_event(
			Event::OwnershipTransferred { datanet_id: d, from: ALICE, to: DAVE }.into(),
		);
		assert_eq!(datanet(d).owner, DAVE);
		assert_eq!(datanet(d).pending_owner, None);
		assert_eq!(datanet(d).curators.clone().into_inner(), vec![BOB, CHARLIE]);
		assert_eq!(datanet(d).deposit, deposit);
		assert_eq!(owner_hold(DAVE), deposit);
		assert_eq!(free(DAVE), INITIAL_BALANCE - deposit);
		// ALICE keeps exactly the hold of the datanet she still owns.
		assert_eq!(owner_hold(ALICE), metadata_deposit(NAME));
		assert_eq!(free(ALICE), INITIAL_BALANCE - metadata_deposit(NAME));
		assert_eq!(datanet(kept).owner, ALICE);

		// To a curator: the seat goes, and its item deposit back to the old owner.
		assert_ok!(Datanets::transfer_ownership(signed(DAVE), d, Some(BOB)));
		assert_ok!(Datanets::accept_ownership(signed(BOB), d));
		System::assert_last_event(
			Event::OwnershipTransferred { datanet_id: d, from: DAVE, to: BOB }.into(),
		);
		assert_eq!(datanet(d).owner, BOB);
		assert_eq!(datanet(d).curators.clone().into_inner(), vec![CHARLIE]);
		assert_eq!(datanet(d).deposit, deposit - ITEM_DEPOSIT);
		assert_eq!(owner_hold(BOB), deposit - ITEM_DEPOSIT);
		assert_eq!(free(BOB), INITIAL_BALANCE - deposit + ITEM_DEPOSIT);
		assert_eq!(owner_hold(DAVE), 0);
		assert_eq!(free(DAVE), INITIAL_BALANCE);

		// The new owner manages, and is refunded from, what they hold.
		assert_noop!(Datanets::add_curator(signed(DAVE), d, EVE), Error::<Test>::NotOwner);
		assert_ok!(Datanets::remove_curator(signed(BOB), d, CHARLIE));
		assert_ok!(Datanets::set_contributor_allowed(signed(BOB), d, EVE, false));
		assert_eq!(owner_hold(BOB), deposit - 3 * ITEM_DEPOSIT);
		assert_eq!(free(BOB), INITIAL_BALANCE - deposit + 3 * ITEM_DEPOSIT);
		assert_eq!(datanet(d).deposit, deposit - 3 * ITEM_DEPOSIT);
		assert_eq!(issuance(), issued);
	});
}

#[test]
fn the_new_owner_votes_as_owner() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		add_curators(d, &[BOB, CHARLIE]);
		let c = contribute(EVE, d, 1);
		approve(ALICE, c, 60);
		assert_ok!(Datanets::transfer_ownership(signed(ALICE), d, Some(DAVE)));
		assert_ok!(Datanets::accept_ownership(signed(DAVE), d));
		// The old owner no longer votes, and their approval no longer counts.
		assert_noop!(
			Datanets::review(signed(ALICE), c, Verdict::Approve, 60),
			Error::<Test>::NotReviewer
		);
		approve(BOB, c, 60);
		assert!(is_pending(c));
		approve(DAVE, c, 60);
		assert!(is_accepted(c));
	});
}

#[test]
fn total_issuance_never_changes() {
	new_test_ext().execute_with(|| {
		let issued = issuance();
		let d = create_with(ALICE, ContributionPolicy::AllowList);
		add_curators(d, &[BOB, CHARLIE]);
		for who in [DAVE, EVE] {
			assert_ok!(Datanets::set_contributor_allowed(signed(ALICE), d, who, true));
		}
		let a = contribute_sized(EVE, d, 1, 33);
		let r = contribute_sized(DAVE, d, 2, 77);
		let w = contribute_sized(EVE, d, 3, 11);
		approve(BOB, a, 40);
		approve(CHARLIE, a, 90);
		reject(ALICE, r);
		reject(BOB, r);
		assert_ok!(Datanets::withdraw(signed(EVE), w));
		assert_ok!(Datanets::publish_version(signed(ALICE), d));
		assert_ok!(Datanets::update_datanet(
			signed(ALICE),
			d,
			metadata(b"Renamed"),
			ContributionPolicy::Open
		));
		assert_ok!(Datanets::transfer_ownership(signed(ALICE), d, Some(CHARLIE)));
		assert_ok!(Datanets::accept_ownership(signed(CHARLIE), d));
		assert_ok!(Datanets::remove_curator(signed(CHARLIE), d, BOB));
		assert_ok!(Datanets::archive(signed(CHARLIE), d));
		// 10 % of 50 + 77 = 12.7 → 13.
		assert_eq!(free(TREASURY), 1 + 13);
		assert_eq!(issuance(), issued);
		assert_eq!(issued, 5 * INITIAL_BALANCE + 2);
	});
}


/// Removing a curator can leave the remaining votes decisive while nobody can vote any more
/// (everyone left has voted, and an archived datanet takes no new curators): `settle` applies the
/// decision, and refuses while the votes decide nothing.
#[test]
fn settle_decides_what_a_curator_removal_left_decided() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		add_curators(d, &[BOB, CHARLIE]);
		let c = contribute(EVE, d, 1);
		approve(ALICE, c, 60);
		reject(BOB, c);
		assert!(is_pending(c));
		assert_noop!(Datanets::settle(signed(DAVE), c), Error::<Test>::StillUndecided);
		assert_ok!(Datanets::archive(signed(ALICE), d));

		assert_ok!(Datanets::remove_curator(signed(ALICE), d, CHARLIE));
		for (who, error) in [
			(ALICE, Error::<Test>::AlreadyVoted),
			(BOB, Error::<Test>::AlreadyVoted),
			(CHARLIE, Error::<Test>::NotReviewer),
		] {
			assert_noop!(Datanets::review(signed(who), c, Verdict::Reject, 0), error);
		}
		assert_noop!(Datanets::add_curator(signed(ALICE), d, DAVE), Error::<Test>::DatanetArchived);

		// 1 rejection > electorate 2 − quorum 2: anyone may settle it as rejected.
		assert_ok!(Datanets::settle(signed(DAVE), c));
		assert!(!is_pending(c));
		assert!(crate::Contributions::<Test>::get(c).is_none(), "rejected contributions are removed");
		assert_noop!(Datanets::settle(signed(DAVE), c), Error::<Test>::ContributionNotFound);
	});
}

#[test]
fn settle_refuses_decided_contributions() {
	new_test_ext().execute_with(|| {
		let d = create(ALICE);
		let c = contribute(EVE, d, 1);
		approve(ALICE, c, 60);
		assert_noop!(Datanets::settle(signed(DAVE), c), Error::<Test>::NotPending);
	});
}

//! Unit tests of the model registry on the mock runtime (`mock.rs`).
//!
//! Expected deposits are computed here from the mock's constants, restated below and checked
//! against the runtime in `mock_constants_are_the_ones_these_tests_assume`. Every test starts
//! from `world()`: one base model and three datanets.

use crate::{
	mock::*, BaseModelId, BaseModelInfo, Error, EvalReport, Event, HoldReason, LineageEntry,
	ModelId, ModelInfo, ModelStatus, ModelsInspect, ServedModel,
};
use frame_support::{
	assert_noop, assert_ok,
	traits::{
		fungible::{Inspect, InspectHold},
		Get,
	},
	BoundedVec,
};
use pallet_datanets::{DatanetId, DatanetsInspect};
use sp_core::H256;
use sp_runtime::{DispatchError, DispatchResult};

const MODEL_DEPOSIT: Balance = 1_000;
const BYTE_DEPOSIT: Balance = 10;
const APPROVAL_DEPOSIT: Balance = 100;

/// Open, owned by DAVE, versions 1 to 3 published.
const OPEN: DatanetId = 1;
/// Permissioned, owned by EVE, versions 1 and 2 published.
const PERMISSIONED: DatanetId = 2;
/// Open, owned by DAVE, version 1 published.
const SMALL: DatanetId = 3;
/// A datanet id nothing was created under.
const MISSING: DatanetId = 42;
/// The base model `world()` adds.
const BASE: BaseModelId = 0;
const PRICE_IN: Balance = 5;
const PRICE_OUT: Balance = 7;

fn signed(who: AccountId) -> RuntimeOrigin {
	RuntimeOrigin::signed(who)
}

fn root() -> RuntimeOrigin {
	RuntimeOrigin::root()
}

fn bounded<S: Get<u32>>(bytes: &[u8]) -> BoundedVec<u8, S> {
	bytes.to_vec().try_into().expect("within the bound")
}

fn hash(n: u8) -> H256 {
	H256::repeat_byte(n)
}

fn lineage(entries: &[LineageEntry]) -> BoundedVec<LineageEntry, MaxLineage> {
	entries.to_vec().try_into().expect("within MaxLineage")
}

type MaxLineage = <Test as crate::Config>::MaxLineage;

/// The hold for a model with `entries` lineage entries: SCALE puts a one-byte compact length
/// before the entries, and each `(u32, u32)` takes 8 bytes.
fn model_deposit(entries: Balance) -> Balance {
	MODEL_DEPOSIT + BYTE_DEPOSIT * (1 + 8 * entries)
}

fn report(score: u32) -> EvalReport {
	EvalReport { score, evidence: hash(0xe0) }
}

fn add_base_model(hash: H256) -> DispatchResult {
	ModelRegistry::add_base_model(
		root(),
		hash,
		bounded(b"gemma-3-1b"),
		bounded(b"gemma3"),
		bounded(b"gemma"),
	)
}

/// One base model, `OPEN`, `PERMISSIONED` and `SMALL`.
fn world() -> sp_io::TestExternalities {
	let mut ext = new_test_ext();
	ext.execute_with(|| {
		assert_ok!(add_base_model(hash(0xba)));
		set_datanet(OPEN, DAVE, false);
		publish(OPEN, 3);
		set_datanet(PERMISSIONED, EVE, true);
		publish(PERMISSIONED, 2);
		set_datanet(SMALL, DAVE, false);
		publish(SMALL, 1);
	});
	ext
}

fn register_with(
	owner: AccountId,
	adapter: u8,
	entries: &[LineageEntry],
	eval: Option<EvalReport>,
) -> DispatchResult {
	ModelRegistry::register_model(
		signed(owner),
		BASE,
		hash(adapter),
		lineage(entries),
		hash(0x3a),
		PRICE_IN,
		PRICE_OUT,
		eval,
	)
}

/// Registers adapter `adapter` with no evaluation report and returns its id.
fn register(owner: AccountId, adapter: u8, entries: &[LineageEntry]) -> ModelId {
	let model_id = crate::NextModelId::<Test>::get();
	assert_ok!(register_with(owner, adapter, entries, None));
	model_id
}

fn model(model_id: ModelId) -> ModelInfo<Test> {
	crate::Models::<Test>::get(model_id).expect("the model exists")
}

fn status(model_id: ModelId) -> ModelStatus {
	model(model_id).status
}

fn model_hold(who: AccountId) -> Balance {
	Balances::balance_on_hold(&RuntimeHoldReason::ModelRegistry(HoldReason::ModelDeposit), &who)
}

fn approval_hold(who: AccountId) -> Balance {
	Balances::balance_on_hold(&RuntimeHoldReason::ModelRegistry(HoldReason::ApprovalDeposit), &who)
}

fn free(who: AccountId) -> Balance {
	Balances::free_balance(who)
}

fn issuance() -> Balance {
	<Balances as Inspect<AccountId>>::total_issuance()
}

fn approve(datanet_id: DatanetId, who: AccountId) {
	let (owner, _) = MockDatanets::owner(datanet_id).expect("the datanet exists");
	assert_ok!(ModelRegistry::approve_training(signed(owner), datanet_id, who, true));
}


#[test]
fn mock_constants_are_the_ones_these_tests_assume() {
	assert_eq!(<<Test as crate::Config>::ModelDeposit as Get<Balance>>::get(), MODEL_DEPOSIT);
	assert_eq!(<<Test as crate::Config>::ByteDeposit as Get<Balance>>::get(), BYTE_DEPOSIT);
	assert_eq!(<<Test as crate::Config>::ApprovalDeposit as Get<Balance>>::get(), APPROVAL_DEPOSIT);
	assert_eq!(<MaxLineage as Get<u32>>::get(), 4);
	assert_eq!(model_deposit(1), 1_090);
	assert_eq!(model_deposit(2), 1_170);
	// The byte count is the one the pallet takes: the SCALE encoding of the bounded lineage.
	assert_eq!(codec::Encode::encoded_size(&lineage(&[(OPEN, 3), (SMALL, 1)])), 17);
}

#[test]
fn add_base_model_is_for_root_and_once_per_hash() {
	new_test_ext().execute_with(|| {
		assert_noop!(
			ModelRegistry::add_base_model(
				signed(ALICE),
				hash(0xba),
				bounded(b"x"),
				bounded(b"x"),
				bounded(b"x")
			),
			DispatchError::BadOrigin
		);

		assert_ok!(add_base_model(hash(0xba)));
		System::assert_last_event(Event::BaseModelAdded { base_model: 0, hash: hash(0xba) }.into());
		assert_eq!(
			crate::BaseModels::<Test>::get(0),
			Some(BaseModelInfo {
				hash: hash(0xba),
				name: bounded(b"gemma-3-1b"),
				architecture: bounded(b"gemma3"),
				license: bounded(b"gemma"),
			})
		);
		assert_eq!(crate::BaseModelByHash::<Test>::get(hash(0xba)), Some(0));
		assert_eq!(crate::NextBaseModelId::<Test>::get(), 1);

		assert_noop!(add_base_model(hash(0xba)), Error::<Test>::DuplicateBaseModel);

		assert_ok!(add_base_model(hash(0xbb)));
		System::assert_last_event(Event::BaseModelAdded { base_model: 1, hash: hash(0xbb) }.into());
		assert_eq!(crate::BaseModelByHash::<Test>::get(hash(0xbb)), Some(1));
		assert_eq!(crate::NextBaseModelId::<Test>::get(), 2);

		crate::NextBaseModelId::<Test>::put(BaseModelId::MAX);
		assert_noop!(add_base_model(hash(0xbc)), Error::<Test>::Overflow);
	});
}

#[test]
fn register_model_holds_the_deposit_and_records_the_model() {
	world().execute_with(|| {
		let issued = issuance();
		System::set_block_number(5);
		let entries = [(OPEN, 3), (SMALL, 1)];
		let deposit = model_deposit(2);

		assert_ok!(register_with(ALICE, 0xa1, &entries, Some(report(80))));

		System::assert_last_event(
			Event::ModelRegistered {
				model_id: 0,
				owner: ALICE,
				base_model: BASE,
				adapter_hash: hash(0xa1),
				deposit,
			}
			.into(),
		);
		assert_eq!(
			model(0),
			ModelInfo {
				owner: ALICE,
				base_model: BASE,
				adapter_hash: hash(0xa1),
				lineage: lineage(&entries),
				lineage_manifest: hash(0x3a),
				price_in: PRICE_IN,
				price_out: PRICE_OUT,
				status: ModelStatus::Active,
				eval: Some(report(80)),
				deposit,
				registered_at: 5,
			}
		);
		assert_eq!(crate::ModelByAdapter::<Test>::get(hash(0xa1)), Some(0));
		assert_eq!(crate::NextModelId::<Test>::get(), 1);
		assert_eq!(model_hold(ALICE), 1_170);
		assert_eq!(free(ALICE), INITIAL_BALANCE - 1_170);

		// Ids count up; the deposit follows the lineage length; one owner's holds add up.
		assert_eq!(register(ALICE, 0xa2, &[(OPEN, 1)]), 1);
		System::assert_last_event(
			Event::ModelRegistered {
				model_id: 1,
				owner: ALICE,
				base_model: BASE,
				adapter_hash: hash(0xa2),
				deposit: model_deposit(1),
			}
			.into(),
		);
		assert_eq!(model(1).deposit, 1_090);
		assert_eq!(model(1).eval, None);
		assert_eq!(crate::ModelByAdapter::<Test>::get(hash(0xa2)), Some(1));
		assert_eq!(model_hold(ALICE), 1_170 + 1_090);
		assert_eq!(free(ALICE), INITIAL_BALANCE - 1_170 - 1_090);
		assert_eq!(issuance(), issued);
	});
}

#[test]
fn register_model_errors() {
	world().execute_with(|| {
		assert_noop!(
			ModelRegistry::register_model(
				root(),
				BASE,
				hash(0xa1),
				lineage(&[(OPEN, 1)]),
				hash(0x3a),
				PRICE_IN,
				PRICE_OUT,
				None
			),
			DispatchError::BadOrigin
		);
		assert_noop!(
			ModelRegistry::register_model(
				signed(ALICE),
				7,
				hash(0xa1),
				lineage(&[(OPEN, 1)]),
				hash(0x3a),
				PRICE_IN,
				PRICE_OUT,
				None
			),
			Error::<Test>::BaseModelNotFound
		);
		assert_noop!(register_with(ALICE, 0xa1, &[], None), Error::<Test>::EmptyLineage);
		assert_noop!(
			register_with(ALICE, 0xa1, &[(SMALL, 1), (OPEN, 1)], None),
			Error::<Test>::UnsortedLineage
		);
		// Two versions of one datanet: the later one already covers the earlier.
		assert_noop!(
			register_with(ALICE, 0xa1, &[(OPEN, 1), (OPEN, 2)], None),
			Error::<Test>::UnsortedLineage
		);
		assert_noop!(
			register_with(ALICE, 0xa1, &[(OPEN, 1), (MISSING, 1)], None),
			Error::<Test>::DatanetNotFound
		);
		assert_noop!(
			register_with(ALICE, 0xa1, &[(OPEN, 4)], None),
			Error::<Test>::VersionNotPublished
		);
		// Version 0 is "nothing published yet", never a training set.
		assert_noop!(
			register_with(ALICE, 0xa1, &[(OPEN, 0)], None),
			Error::<Test>::VersionNotPublished
		);
		assert_noop!(
			register_with(POOR, 0xa1, &[(OPEN, 1)], None),
			Error::<Test>::InsufficientBalance
		);

		// One model per adapter file, whoever registers it.
		register(ALICE, 0xa1, &[(OPEN, 1)]);
		assert_noop!(
			register_with(ALICE, 0xa1, &[(OPEN, 2)], None),
			Error::<Test>::DuplicateAdapter
		);
		assert_noop!(
			register_with(BOB, 0xa1, &[(SMALL, 1)], None),
			Error::<Test>::DuplicateAdapter
		);

		crate::NextModelId::<Test>::put(ModelId::MAX);
		assert_noop!(register_with(ALICE, 0xa2, &[(OPEN, 1)], None), Error::<Test>::Overflow);
	});
}

#[test]
fn a_permissioned_datanets_owner_trains_on_it_without_approving_themselves() {
	world().execute_with(|| {
		assert_eq!(register(EVE, 0xe1, &[(PERMISSIONED, 2)]), 0);
		assert_eq!(approval_hold(EVE), 0);
		assert!(crate::TrainingApprovals::<Test>::get(PERMISSIONED, EVE).is_none());
	});
}

#[test]
fn a_deprecated_model_takes_no_new_evaluation() {
	world().execute_with(|| {
		let model_id = register(ALICE, 0xa1, &[(OPEN, 1)]);
		assert_ok!(ModelRegistry::set_status(signed(ALICE), model_id, ModelStatus::Deprecated));
		assert_noop!(
			ModelRegistry::report_eval(signed(ALICE), model_id, report(90)),
			Error::<Test>::ModelDeprecated
		);
	});
}

#[test]
fn a_permissioned_datanet_needs_its_owners_approval() {
	world().execute_with(|| {
		let entries = [(OPEN, 3), (PERMISSIONED, 2)];
		assert_noop!(
			register_with(ALICE, 0xa1, &entries, None),
			Error::<Test>::TrainingNotApproved
		);

		approve(PERMISSIONED, ALICE);
		assert_eq!(register(ALICE, 0xa1, &entries), 0);
		assert_eq!(model(0).lineage, lineage(&entries));
		assert_eq!(model_hold(ALICE), model_deposit(2));

		// The approval names one account.
		assert_noop!(
			register_with(BOB, 0xb1, &[(PERMISSIONED, 1)], None),
			Error::<Test>::TrainingNotApproved
		);

		// Taking it back stops new registrations; the model already registered stays.
		assert_ok!(ModelRegistry::approve_training(signed(EVE), PERMISSIONED, ALICE, false));
		assert_noop!(
			register_with(ALICE, 0xa2, &[(PERMISSIONED, 2)], None),
			Error::<Test>::TrainingNotApproved
		);
		assert_eq!(status(0), ModelStatus::Active);
		assert_eq!(model_hold(ALICE), model_deposit(2));
	});
}

#[test]
fn the_quality_gate_asks_for_a_report_at_or_above_it() {
	world().execute_with(|| {
		assert_noop!(
			ModelRegistry::set_quality_gate(signed(ALICE), Some(70)),
			DispatchError::BadOrigin
		);
		assert_ok!(ModelRegistry::set_quality_gate(root(), Some(70)));
		System::assert_last_event(Event::QualityGateSet { min_score: Some(70) }.into());
		assert_eq!(crate::QualityGate::<Test>::get(), Some(70));

		assert_noop!(register_with(ALICE, 0xa1, &[(OPEN, 1)], None), Error::<Test>::EvalRequired);
		assert_noop!(
			register_with(ALICE, 0xa1, &[(OPEN, 1)], Some(report(69))),
			Error::<Test>::BelowQualityGate
		);
		assert_ok!(register_with(ALICE, 0xa1, &[(OPEN, 1)], Some(report(70))));
		assert_eq!(model(0).eval, Some(report(70)));

		assert_ok!(ModelRegistry::set_quality_gate(root(), None));
		System::assert_last_event(Event::QualityGateSet { min_score: None }.into());
		assert_eq!(crate::QualityGate::<Test>::get(), None);
		assert_ok!(register_with(ALICE, 0xa2, &[(OPEN, 1)], None));
		assert_eq!(model(1).eval, None);
	});
}

#[test]
fn set_prices_is_for_the_owner_until_deprecation() {
	world().execute_with(|| {
		let m = register(ALICE, 0xa1, &[(OPEN, 1)]);

		assert_ok!(ModelRegistry::set_prices(signed(ALICE), m, 11, 13));
		System::assert_last_event(
			Event::PricesSet { model_id: m, price_in: 11, price_out: 13 }.into(),
		);
		assert_eq!((model(m).price_in, model(m).price_out), (11, 13));

		assert_noop!(ModelRegistry::set_prices(signed(BOB), m, 1, 1), Error::<Test>::NotOwner);
		assert_noop!(
			ModelRegistry::set_prices(signed(ALICE), 9, 1, 1),
			Error::<Test>::ModelNotFound
		);

		assert_ok!(ModelRegistry::set_status(signed(ALICE), m, ModelStatus::Deprecated));
		assert_noop!(
			ModelRegistry::set_prices(signed(ALICE), m, 1, 1),
			Error::<Test>::ModelDeprecated
		);
		assert_eq!((model(m).price_in, model(m).price_out), (11, 13));
	});
}

#[test]
fn set_status_owner_deprecates_root_suspends_and_reactivates() {
	world().execute_with(|| {
		let m = register(ALICE, 0xa1, &[(OPEN, 1)]);

		// The owner cannot suspend (or reactivate) their own model; strangers nothing at all.
		assert_noop!(
			ModelRegistry::set_status(signed(ALICE), m, ModelStatus::Suspended),
			Error::<Test>::StatusNotAllowed
		);
		assert_noop!(
			ModelRegistry::set_status(signed(BOB), m, ModelStatus::Deprecated),
			Error::<Test>::NotOwner
		);
		assert_noop!(
			ModelRegistry::set_status(RuntimeOrigin::none(), m, ModelStatus::Deprecated),
			DispatchError::BadOrigin
		);
		assert_noop!(
			ModelRegistry::set_status(root(), 9, ModelStatus::Suspended),
			Error::<Test>::ModelNotFound
		);

		assert_ok!(ModelRegistry::set_status(root(), m, ModelStatus::Suspended));
		System::assert_last_event(
			Event::StatusSet { model_id: m, status: ModelStatus::Suspended }.into(),
		);
		assert_eq!(status(m), ModelStatus::Suspended);
		assert_noop!(
			ModelRegistry::set_status(signed(ALICE), m, ModelStatus::Active),
			Error::<Test>::StatusNotAllowed
		);

		assert_ok!(ModelRegistry::set_status(root(), m, ModelStatus::Active));
		System::assert_last_event(
			Event::StatusSet { model_id: m, status: ModelStatus::Active }.into(),
		);
		assert_eq!(status(m), ModelStatus::Active);

		assert_ok!(ModelRegistry::set_status(signed(ALICE), m, ModelStatus::Deprecated));
		System::assert_last_event(
			Event::StatusSet { model_id: m, status: ModelStatus::Deprecated }.into(),
		);
		assert_eq!(status(m), ModelStatus::Deprecated);

		// Deprecation is final, for root too; the record and its deposit stay.
		assert_noop!(
			ModelRegistry::set_status(root(), m, ModelStatus::Active),
			Error::<Test>::ModelDeprecated
		);
		assert_noop!(
			ModelRegistry::set_status(signed(ALICE), m, ModelStatus::Deprecated),
			Error::<Test>::ModelDeprecated
		);
		assert_eq!(model_hold(ALICE), model_deposit(1));
		assert_eq!(crate::ModelByAdapter::<Test>::get(hash(0xa1)), Some(m));
	});
}

#[test]
fn report_eval_replaces_the_report_if_it_passes_the_gate() {
	world().execute_with(|| {
		let m = register(ALICE, 0xa1, &[(OPEN, 1)]);

		assert_ok!(ModelRegistry::report_eval(signed(ALICE), m, report(40)));
		System::assert_last_event(Event::EvalReported { model_id: m, report: report(40) }.into());
		assert_eq!(model(m).eval, Some(report(40)));

		assert_noop!(
			ModelRegistry::report_eval(signed(BOB), m, report(90)),
			Error::<Test>::NotOwner
		);
		assert_noop!(
			ModelRegistry::report_eval(signed(ALICE), 9, report(90)),
			Error::<Test>::ModelNotFound
		);

		assert_ok!(ModelRegistry::set_quality_gate(root(), Some(50)));
		assert_noop!(
			ModelRegistry::report_eval(signed(ALICE), m, report(49)),
			Error::<Test>::BelowQualityGate
		);
		let better = EvalReport { score: 50, evidence: hash(0xe1) };
		assert_ok!(ModelRegistry::report_eval(signed(ALICE), m, better));
		System::assert_last_event(Event::EvalReported { model_id: m, report: better }.into());
		assert_eq!(model(m).eval, Some(better));
	});
}

#[test]
fn approve_training_holds_a_deposit_from_the_datanet_owner() {
	world().execute_with(|| {
		let issued = issuance();

		assert_ok!(ModelRegistry::approve_training(signed(EVE), PERMISSIONED, ALICE, true));
		System::assert_last_event(
			Event::TrainingApproved { datanet_id: PERMISSIONED, who: ALICE, approved: true }.into(),
		);
		assert_eq!(
			crate::TrainingApprovals::<Test>::get(PERMISSIONED, ALICE),
			Some((EVE, APPROVAL_DEPOSIT))
		);
		assert_ok!(ModelRegistry::approve_training(signed(EVE), PERMISSIONED, BOB, true));
		assert_eq!(approval_hold(EVE), 2 * APPROVAL_DEPOSIT);
		assert_eq!(free(EVE), INITIAL_BALANCE - 2 * APPROVAL_DEPOSIT);
		assert_eq!(approval_hold(ALICE), 0);

		assert_ok!(ModelRegistry::approve_training(signed(EVE), PERMISSIONED, ALICE, false));
		System::assert_last_event(
			Event::TrainingApproved { datanet_id: PERMISSIONED, who: ALICE, approved: false }
				.into(),
		);
		assert_eq!(crate::TrainingApprovals::<Test>::get(PERMISSIONED, ALICE), None);
		assert!(crate::TrainingApprovals::<Test>::contains_key(PERMISSIONED, BOB));
		assert_eq!(approval_hold(EVE), APPROVAL_DEPOSIT);
		assert_eq!(free(EVE), INITIAL_BALANCE - APPROVAL_DEPOSIT);
		assert_eq!(issuance(), issued);
	});
}

#[test]
fn approve_training_errors() {
	world().execute_with(|| {
		assert_noop!(
			ModelRegistry::approve_training(signed(BOB), PERMISSIONED, ALICE, true),
			Error::<Test>::NotDatanetOwner
		);
		assert_noop!(
			ModelRegistry::approve_training(signed(DAVE), OPEN, ALICE, true),
			Error::<Test>::DatanetNotPermissioned
		);
		assert_noop!(
			ModelRegistry::approve_training(signed(EVE), MISSING, ALICE, true),
			Error::<Test>::DatanetNotFound
		);
		assert_noop!(
			ModelRegistry::approve_training(signed(EVE), PERMISSIONED, ALICE, false),
			Error::<Test>::ApprovalUnchanged
		);
		approve(PERMISSIONED, ALICE);
		assert_noop!(
			ModelRegistry::approve_training(signed(EVE), PERMISSIONED, ALICE, true),
			Error::<Test>::ApprovalUnchanged
		);

		set_datanet(5, POOR, true);
		assert_noop!(
			ModelRegistry::approve_training(signed(POOR), 5, ALICE, true),
			Error::<Test>::InsufficientBalance
		);
	});
}

#[test]
fn a_revoked_approval_pays_back_whoever_approved() {
	world().execute_with(|| {
		approve(PERMISSIONED, ALICE);
		// The datanet changes hands after the approval.
		set_datanet(PERMISSIONED, CHARLIE, true);
		assert_noop!(
			ModelRegistry::approve_training(signed(EVE), PERMISSIONED, ALICE, false),
			Error::<Test>::NotDatanetOwner
		);

		assert_ok!(ModelRegistry::approve_training(signed(CHARLIE), PERMISSIONED, ALICE, false));
		assert_eq!(crate::TrainingApprovals::<Test>::get(PERMISSIONED, ALICE), None);
		assert_eq!(approval_hold(EVE), 0);
		assert_eq!(free(EVE), INITIAL_BALANCE);
		assert_eq!(approval_hold(CHARLIE), 0);
		assert_eq!(free(CHARLIE), INITIAL_BALANCE);
	});
}

#[test]
fn served_model_is_what_attribution_charges_and_pays_from() {
	world().execute_with(|| {
		approve(PERMISSIONED, ALICE);
		let entries = [(OPEN, 3), (PERMISSIONED, 1)];
		let m = register(ALICE, 0xa1, &entries);
		assert_ok!(ModelRegistry::set_prices(signed(ALICE), m, 11, 13));

		let served = ServedModel {
			owner: ALICE,
			adapter_hash: hash(0xa1),
			price_in: 11,
			price_out: 13,
			active: true,
			lineage: entries.to_vec(),
		};
		assert_eq!(<ModelRegistry as ModelsInspect<_, _>>::served_model(m), Some(served.clone()));
		assert_eq!(<ModelRegistry as ModelsInspect<AccountId, Balance>>::served_model(9), None);

		// Suspended and deprecated models are not served.
		assert_ok!(ModelRegistry::set_status(root(), m, ModelStatus::Suspended));
		assert_eq!(
			ModelRegistry::served_model(m),
			Some(ServedModel { active: false, ..served.clone() })
		);
		assert_ok!(ModelRegistry::set_status(root(), m, ModelStatus::Active));
		assert_eq!(ModelRegistry::served_model(m).map(|s| s.active), Some(true));
		assert_ok!(ModelRegistry::set_status(signed(ALICE), m, ModelStatus::Deprecated));
		assert_eq!(ModelRegistry::served_model(m), Some(ServedModel { active: false, ..served }));
	});
}

#[test]
fn a_lineage_entry_covers_its_datanet_up_to_its_version() {
	world().execute_with(|| {
		let m = register(ALICE, 0xa1, &[(OPEN, 2), (SMALL, 1)]);
		let served = ModelRegistry::served_model(m).expect("registered");

		assert!(served.covers(OPEN, 1));
		assert!(served.covers(OPEN, 2));
		// Contributions published later were not in the training data.
		assert!(!served.covers(OPEN, 3));
		assert!(served.covers(SMALL, 1));
		assert!(!served.covers(SMALL, 2));
		// Nor were datanets outside the lineage, whatever their version.
		assert!(!served.covers(PERMISSIONED, 1));
		assert!(!served.covers(MISSING, 1));
	});
}

//! Unit tests of the attribution pallet on the mock runtime (`mock.rs`).
//!
//! Expected fees and parts are worked out by hand in the comments and written as numbers, so a
//! change to the formula or the rounding shows up here; the mock's constants they assume are
//! checked in `mock_constants_are_the_ones_these_tests_assume`.

use crate::{
	mock::*, Assigned, AttributionMethod, Call, DisputeOutcome, Error, Event, FeeParams, FeeParts, FeeSplit,
	HoldReason, ModelOperators, NextRequestId, OperatorByKey, OperatorInfo, Operators, Ppm,
	Receipt, ReceiptBatch, ReceiptRecord, ReceiptStatus, Receipts, RequestId, RequestInfo, Requests,
	Rewards, Settlement, BatchFraud, BatchLeaf, Charge, FraudKind, ProvenLeaf, Rates, DisputeConfig,
	request_payload, fraud::{batch_root, prove_leaf},
};
use codec::{Decode, Encode};
use frame_support::{
	assert_noop, assert_ok,
	pallet_prelude::Authorize,
	traits::{
		fungible::{Inspect, InspectHold},
		Get, Hooks,
	},
	weights::Weight,
	BoundedVec,
};
use pallet_datanets::{ContributionId, DatanetId};
use pallet_model_registry::{ModelId, ModelsInspect};
use sp_core::{
	offchain::{
		testing::{PendingRequest, TestOffchainExt, TestTransactionPoolExt},
		OffchainDbExt, OffchainWorkerExt, StorageKind, TransactionPoolExt,
	},
	H256,
};
use sp_runtime::{
	testing::{TestSignature, UintAuthorityId},
	traits::{BlakeTwo256, Hash},
	transaction_validity::{InvalidTransaction, TransactionSource, TransactionValidityError},
	BuildStorage, DispatchError, DispatchResult, Perbill, RuntimeAppPublic, TokenError,
};

const BOND: Balance = 1_000;
const UNBONDING_DELAY: u64 = 10;
const REQUEST_TIMEOUT: u64 = 5;
const MAX_SPECIAL_TOKENS: u32 = 2;

/// Prices per 1,000 tokens, odd enough that every floor in the fee and its split drops something.
const PRICE_IN: Balance = 123_457;
const PRICE_OUT: Balance = 234_567;
const PROMPT: &[u8] = b"Hello";
const OUTPUT: &[u8] = b"Hi there";
const MAX_OUTPUT_TOKENS: u32 = 10;
const MAX_FEE: Balance = 5_000;
/// The worst case of a `PROMPT` request: (5 + 2) input tokens and 10 output tokens,
/// (123_457·7 + 234_567·10) / 1000 = 3_209_869 / 1000 = 3_209.
const WORST: Balance = 3_209;
/// The tokens the receipts report.
const INPUT_TOKENS: u32 = 5;
const OUTPUT_TOKENS: u32 = 9;
/// F = (123_457·5 + 234_567·9) / 1000 = (617_285 + 2_111_103) / 1000 = 2_728 (388 dropped).
const FEE: Balance = 2_728;
/// The default split of F: 40 % of 2_728 = 1_091.2, 10 % = 272.8, 50 % = 1_364.
const OWNER_PART: Balance = 1_091;
const STAKERS_PART: Balance = 272;
const POOL: Balance = 1_364;
/// The weights of `World::weights` and their shares of the 1_364 pool:
/// 0.123456 · 1_364 = 168.39, 0.543210 · 1_364 = 740.94, 0.333334 · 1_364 = 454.67.
const EVE1_PPM: Ppm = 123_456;
const EVE2_PPM: Ppm = 543_210;
const FERDIE_PPM: Ppm = 333_334;
const EVE1_AMOUNT: Balance = 168;
const EVE2_AMOUNT: Balance = 740;
const FERDIE_AMOUNT: Balance = 454;
const CONTRIBUTORS_PART: Balance = EVE1_AMOUNT + EVE2_AMOUNT + FERDIE_AMOUNT;
/// What the contributors' floors leave of the pool: 1_364 − 1_362.
const POOL_REMAINDER: Balance = POOL - CONTRIBUTORS_PART;
/// The treasury's part: 2_728 − 1_091 − 272 − 1_362 = 3, the three rounding remainders
/// (0.2 + 0.8 + 2).
const TREASURY_PART: Balance = 3;
/// The datanet the standard model was trained on, version 1.
const DATANET: DatanetId = 0;
/// Another datanet, outside the standard model's lineage.
const OTHER_DATANET: DatanetId = 1;
/// A model id nothing was registered under.
const MISSING_MODEL: ModelId = 42;
/// Submits receipts; any signed account may.
const RELAYER: AccountId = 9;

fn signed(who: AccountId) -> RuntimeOrigin {
	RuntimeOrigin::signed(who)
}

fn bounded<T: Clone + core::fmt::Debug, S: Get<u32>>(items: &[T]) -> BoundedVec<T, S> {
	items.to_vec().try_into().expect("within the bound")
}

/// The attribution key each account registers with.
fn key_of(who: AccountId) -> UintAuthorityId {
	UintAuthorityId(100 + who)
}

fn free(who: AccountId) -> Balance {
	Balances::free_balance(who)
}

fn bond_held(who: AccountId) -> Balance {
	Balances::balance_on_hold(&RuntimeHoldReason::Attribution(HoldReason::OperatorBond), &who)
}

fn escrow_held(who: AccountId) -> Balance {
	Balances::balance_on_hold(&RuntimeHoldReason::Attribution(HoldReason::Escrow), &who)
}

fn issuance() -> Balance {
	<Balances as Inspect<AccountId>>::total_issuance()
}

fn attribution_events() -> Vec<Event<Test>> {
	System::events()
		.into_iter()
		.filter_map(|r| match r.event {
			RuntimeEvent::Attribution(e) => Some(e),
			_ => None,
		})
		.collect()
}

fn last_event() -> Event<Test> {
	attribution_events().pop().expect("an attribution event")
}

fn register(who: AccountId, models: &[ModelId]) {
	assert_ok!(Attribution::register_operator(signed(who), key_of(who), bounded(models)));
}

fn serving(model_id: ModelId) -> Vec<AccountId> {
	ModelOperators::<Test>::get(model_id).into_inner()
}

/// A `PROMPT` request from CHARLIE with `max_fee`.
fn request_with_fee(model_id: ModelId, max_fee: Balance) -> RequestId {
	let request_id = NextRequestId::<Test>::get();
	assert_ok!(Attribution::request_inference(
		signed(CHARLIE),
		model_id,
		bounded(PROMPT),
		MAX_OUTPUT_TOKENS,
		max_fee
	));
	request_id
}

fn request(model_id: ModelId) -> RequestId {
	request_with_fee(model_id, MAX_FEE)
}

/// Moves past the challenge window of every receipt settled so far and runs `on_idle`, which
/// credits their contributors.
fn mature() {
	let at = System::block_number() + DISPUTE_PARAMS.challenge_window + 1;
	System::set_block_number(at);
	Attribution::on_idle(at, Weight::MAX);
}

fn genesis() -> H256 {
	System::block_hash(0)
}

/// What the assigned operator's engine would report for an open request: `OUTPUT`, 5 input and
/// 9 output tokens, and `weights` (method `Span`, or `None` when empty).
fn receipt(request_id: RequestId, weights: &[(ContributionId, Ppm)]) -> Receipt<Test> {
	let request = Requests::<Test>::get(request_id).expect("the request is open");
	Receipt {
		request_id,
		operator: request.operator,
		model_id: request.model_id,
		adapter_hash: adapter_of(request.model_id),
		prompt_hash: BlakeTwo256::hash(&request.prompt),
		output_hash: BlakeTwo256::hash(OUTPUT),
		input_tokens: INPUT_TOKENS,
		output_tokens: OUTPUT_TOKENS,
		method: if weights.is_empty() { AttributionMethod::None } else { AttributionMethod::Span },
		index_root: H256::repeat_byte(0x11),
		record_hash: H256::repeat_byte(0x22),
		weights: bounded(weights),
		output: bounded(OUTPUT),
	}
}

fn sign_with(key: &UintAuthorityId, receipt: &Receipt<Test>) -> TestSignature {
	key.sign(&receipt.signing_payload(&genesis())).expect("UintAuthorityId signs anything")
}

/// Submits `receipt` signed by its operator's key, from `RELAYER`.
fn submit(receipt: Receipt<Test>) -> DispatchResult {
	let signature = sign_with(&key_of(receipt.operator), &receipt);
	Attribution::submit_receipt(signed(RELAYER), receipt, signature)
}

/// The standard setup: DAVE's model trained on version 1 of `DATANET`, which publishes two
/// contributions of EVE and one of FERDIE, served by ALICE.
struct World {
	model: ModelId,
	eve1: ContributionId,
	eve2: ContributionId,
	ferdie: ContributionId,
}

impl World {
	fn new() -> Self {
		let model = MockModels::add(DAVE, PRICE_IN, PRICE_OUT, vec![(DATANET, 1)]);
		let eve1 = MockDatanets::publish(EVE, DATANET, 1);
		let eve2 = MockDatanets::publish(EVE, DATANET, 1);
		let ferdie = MockDatanets::publish(FERDIE, DATANET, 1);
		register(ALICE, &[model]);
		World { model, eve1, eve2, ferdie }
	}

	/// Sorted by contribution id, summing to 1_000_000.
	fn weights(&self) -> Vec<(ContributionId, Ppm)> {
		vec![(self.eve1, EVE1_PPM), (self.eve2, EVE2_PPM), (self.ferdie, FERDIE_PPM)]
	}
}

fn custom_error_index(error: Error<Test>) -> u8 {
	match DispatchError::from(error) {
		DispatchError::Module(module) => module.error[0],
		other => panic!("not a module error: {other:?}"),
	}
}

#[test]
fn mock_constants_are_the_ones_these_tests_assume() {
	assert_eq!(<<Test as crate::Config>::OperatorBond as Get<Balance>>::get(), BOND);
	assert_eq!(<<Test as crate::Config>::UnbondingDelay as Get<u64>>::get(), UNBONDING_DELAY);
	assert_eq!(<<Test as crate::Config>::RequestTimeout as Get<u64>>::get(), REQUEST_TIMEOUT);
	assert_eq!(<<Test as crate::Config>::MaxSpecialTokens as Get<u32>>::get(), MAX_SPECIAL_TOKENS);
	assert_eq!(OWNER_PART + STAKERS_PART + CONTRIBUTORS_PART + TREASURY_PART, FEE);
	assert_eq!(EVE1_PPM + EVE2_PPM + FERDIE_PPM, crate::PPM);
	new_test_ext().execute_with(|| {
		let model = MockModels::add(DAVE, PRICE_IN, PRICE_OUT, vec![]);
		let served = <MockModels as ModelsInspect<AccountId, Balance>>::served_model(model).unwrap();
		assert_eq!(Attribution::fee(&served, INPUT_TOKENS, OUTPUT_TOKENS), FEE);
		assert_eq!(
			Attribution::fee(&served, PROMPT.len() as u32 + MAX_SPECIAL_TOKENS, MAX_OUTPUT_TOKENS),
			WORST
		);
	});
}

#[test]
fn genesis_funds_the_pots_and_keeps_the_default_split() {
	new_test_ext().execute_with(|| {
		assert_eq!(free(TREASURY), ED);
		assert_eq!(free(STAKING_POT), ED);
		assert_eq!(free(reward_pot()), ED);
		assert_ne!(reward_pot(), TREASURY);
		assert_eq!(
			FeeParams::<Test>::get(),
			FeeSplit {
				owner: Perbill::from_percent(40),
				stakers: Perbill::from_percent(10),
				contributors: Perbill::from_percent(50),
				platform_fee: 0,
			}
		);
	});
}

#[test]
fn genesis_sets_a_valid_split() {
	let split = FeeSplit {
		owner: Perbill::from_percent(30),
		stakers: Perbill::from_percent(20),
		contributors: Perbill::from_percent(50),
		platform_fee: 7,
	};
	let storage = crate::GenesisConfig::<Test> { fee_split: Some(split), dispute_params: None }.build_storage().unwrap();
	sp_io::TestExternalities::new(storage).execute_with(|| {
		assert_eq!(FeeParams::<Test>::get(), split);
	});
}

#[test]
#[should_panic(expected = "the fee split's shares must sum to 100 %")]
fn genesis_rejects_an_invalid_split() {
	let split = FeeSplit {
		owner: Perbill::from_percent(40),
		stakers: Perbill::from_percent(10),
		contributors: Perbill::from_percent(40),
		platform_fee: 0,
	};
	let _ = crate::GenesisConfig::<Test> { fee_split: Some(split), dispute_params: None }.build_storage();
}

// --- Operators ---------------------------------------------------------------------------------

#[test]
fn register_operator_holds_the_bond() {
	new_test_ext().execute_with(|| {
		let m1 = MockModels::add(DAVE, PRICE_IN, PRICE_OUT, vec![]);
		let m2 = MockModels::add(DAVE, PRICE_IN, PRICE_OUT, vec![]);
		let before = issuance();
		register(ALICE, &[m1, m2]);
		assert_eq!(free(ALICE), INITIAL_BALANCE - BOND);
		assert_eq!(bond_held(ALICE), BOND);
		assert_eq!(issuance(), before);
		assert_eq!(
			Operators::<Test>::get(ALICE),
			Some(OperatorInfo {
				key: key_of(ALICE),
				models: bounded(&[m1, m2]),
				bond: BOND,
				unbonding_at: None,
			})
		);
		assert_eq!(OperatorByKey::<Test>::get(key_of(ALICE)), Some(ALICE));
		assert_eq!(serving(m1), vec![ALICE]);
		assert_eq!(serving(m2), vec![ALICE]);
		assert_eq!(
			last_event(),
			Event::OperatorRegistered { operator: ALICE, key: key_of(ALICE), bond: BOND }
		);
	});
}

#[test]
fn register_operator_rejects_what_it_must() {
	new_test_ext().execute_with(|| {
		let model = MockModels::add(DAVE, PRICE_IN, PRICE_OUT, vec![]);
		let suspended = MockModels::add(DAVE, PRICE_IN, PRICE_OUT, vec![]);
		MockModels::set_active(suspended, false);
		register(ALICE, &[model]);

		assert_noop!(
			Attribution::register_operator(signed(ALICE), key_of(GRACE), bounded(&[model])),
			Error::<Test>::AlreadyOperator
		);
		assert_noop!(
			Attribution::register_operator(signed(BOB), key_of(ALICE), bounded(&[model])),
			Error::<Test>::KeyInUse
		);
		assert_noop!(
			Attribution::register_operator(signed(BOB), key_of(BOB), bounded(&[MISSING_MODEL])),
			Error::<Test>::ModelNotServable
		);
		assert_noop!(
			Attribution::register_operator(signed(BOB), key_of(BOB), bounded(&[model, suspended])),
			Error::<Test>::ModelNotServable
		);
		assert_noop!(
			Attribution::register_operator(signed(BOB), key_of(BOB), bounded(&[model, model])),
			Error::<Test>::DuplicateModel
		);
		assert_noop!(
			Attribution::register_operator(signed(POOR), key_of(POOR), bounded(&[model])),
			Error::<Test>::InsufficientBalance
		);

		// Three operators per model in the mock: a fourth cannot join.
		register(BOB, &[model]);
		register(HEIDI, &[model]);
		assert_eq!(serving(model), vec![ALICE, BOB, HEIDI]);
		assert_noop!(
			Attribution::register_operator(signed(GRACE), key_of(GRACE), bounded(&[model])),
			Error::<Test>::TooManyOperators
		);
		assert_eq!(bond_held(GRACE), 0);
		assert_eq!(free(GRACE), INITIAL_BALANCE);
	});
}

#[test]
fn set_operator_models_replaces_the_list() {
	new_test_ext().execute_with(|| {
		let m1 = MockModels::add(DAVE, PRICE_IN, PRICE_OUT, vec![]);
		let m2 = MockModels::add(DAVE, PRICE_IN, PRICE_OUT, vec![]);
		let m3 = MockModels::add(DAVE, PRICE_IN, PRICE_OUT, vec![]);
		register(ALICE, &[m1, m2]);
		register(BOB, &[m2]);
		assert_eq!(serving(m2), vec![ALICE, BOB]);

		assert_ok!(Attribution::set_operator_models(signed(ALICE), bounded(&[m2, m3])));
		assert_eq!(serving(m1), Vec::<AccountId>::new());
		// ALICE left m2 and joined again: now after BOB.
		assert_eq!(serving(m2), vec![BOB, ALICE]);
		assert_eq!(serving(m3), vec![ALICE]);
		assert_eq!(Operators::<Test>::get(ALICE).unwrap().models.into_inner(), vec![m2, m3]);
		assert_eq!(bond_held(ALICE), BOND);
		assert_eq!(
			last_event(),
			Event::OperatorModelsSet { operator: ALICE, models: bounded(&[m2, m3]) }
		);

		assert_noop!(
			Attribution::set_operator_models(signed(GRACE), bounded(&[m1])),
			Error::<Test>::NotOperator
		);
		assert_noop!(
			Attribution::set_operator_models(signed(ALICE), bounded(&[m1, m1])),
			Error::<Test>::DuplicateModel
		);
		assert_noop!(
			Attribution::set_operator_models(signed(ALICE), bounded(&[MISSING_MODEL])),
			Error::<Test>::ModelNotServable
		);
		// m2 is full (BOB, ALICE and HEIDI): GRACE cannot move onto it.
		register(HEIDI, &[m2]);
		register(GRACE, &[m1]);
		assert_noop!(
			Attribution::set_operator_models(signed(GRACE), bounded(&[m2])),
			Error::<Test>::TooManyOperators
		);

		assert_ok!(Attribution::unbond(signed(ALICE)));
		assert_noop!(
			Attribution::set_operator_models(signed(ALICE), bounded(&[m1])),
			Error::<Test>::Unbonding
		);
	});
}

#[test]
fn unbond_stops_assignments() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		assert_noop!(Attribution::unbond(signed(BOB)), Error::<Test>::NotOperator);
		assert_ok!(Attribution::unbond(signed(ALICE)));
		assert_eq!(
			last_event(),
			Event::OperatorUnbonding { operator: ALICE, withdrawable_at: 1 + UNBONDING_DELAY }
		);
		assert_eq!(Operators::<Test>::get(ALICE).unwrap().unbonding_at, Some(1 + UNBONDING_DELAY));
		assert_eq!(serving(w.model), Vec::<AccountId>::new());
		assert_eq!(bond_held(ALICE), BOND);
		assert_noop!(Attribution::unbond(signed(ALICE)), Error::<Test>::Unbonding);
		assert_noop!(
			Attribution::request_inference(
				signed(CHARLIE),
				w.model,
				bounded(PROMPT),
				MAX_OUTPUT_TOKENS,
				MAX_FEE
			),
			Error::<Test>::NoOperator
		);
	});
}

#[test]
fn withdraw_bond_waits_for_the_delay() {
	new_test_ext().execute_with(|| {
		let _w = World::new();
		assert_noop!(Attribution::withdraw_bond(signed(BOB)), Error::<Test>::NotOperator);
		assert_noop!(Attribution::withdraw_bond(signed(ALICE)), Error::<Test>::NotUnbonding);
		assert_ok!(Attribution::unbond(signed(ALICE)));
		System::set_block_number(UNBONDING_DELAY);
		assert_noop!(Attribution::withdraw_bond(signed(ALICE)), Error::<Test>::BondLocked);

		System::set_block_number(1 + UNBONDING_DELAY);
		assert_ok!(Attribution::withdraw_bond(signed(ALICE)));
		assert_eq!(bond_held(ALICE), 0);
		assert_eq!(free(ALICE), INITIAL_BALANCE);
		assert!(Operators::<Test>::get(ALICE).is_none());
		assert!(OperatorByKey::<Test>::get(key_of(ALICE)).is_none());
		assert_eq!(last_event(), Event::OperatorRemoved { operator: ALICE, bond: BOND });
		assert_noop!(Attribution::withdraw_bond(signed(ALICE)), Error::<Test>::NotOperator);

		// The key is free again.
		assert_ok!(Attribution::register_operator(signed(BOB), key_of(ALICE), bounded(&[])));
	});
}

#[test]
fn withdraw_bond_waits_for_open_requests() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let request_id = request(w.model);
		assert_ok!(Attribution::unbond(signed(ALICE)));
		System::set_block_number(1 + UNBONDING_DELAY);
		assert_noop!(Attribution::withdraw_bond(signed(ALICE)), Error::<Test>::BondLocked);

		// An unbonding operator still answers what it was assigned, and the bond stays until
		// that receipt can no longer be challenged.
		assert_ok!(submit(receipt(request_id, &w.weights())));
		assert_noop!(Attribution::withdraw_bond(signed(ALICE)), Error::<Test>::BondLocked);
		System::set_block_number(1 + UNBONDING_DELAY + DISPUTE_PARAMS.challenge_window);
		assert_noop!(Attribution::withdraw_bond(signed(ALICE)), Error::<Test>::BondLocked);
		System::set_block_number(1 + UNBONDING_DELAY + DISPUTE_PARAMS.challenge_window + 1);
		assert_ok!(Attribution::withdraw_bond(signed(ALICE)));
		assert!(!crate::LastSettledAt::<Test>::contains_key(ALICE));
		assert_eq!(bond_held(ALICE), 0);
		assert_eq!(free(ALICE), INITIAL_BALANCE);
	});
}

#[test]
fn a_refund_also_unlocks_the_bond() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let request_id = request(w.model);
		assert_ok!(Attribution::unbond(signed(ALICE)));
		System::set_block_number(1 + UNBONDING_DELAY);
		assert_noop!(Attribution::withdraw_bond(signed(ALICE)), Error::<Test>::BondLocked);
		assert_ok!(Attribution::refund(signed(RELAYER), request_id));
		assert_ok!(Attribution::withdraw_bond(signed(ALICE)));
		assert_eq!(free(ALICE), INITIAL_BALANCE);
	});
}

// --- Requests ----------------------------------------------------------------------------------

#[test]
fn request_inference_holds_the_escrow() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let before = issuance();
		let request_id = request(w.model);
		assert_eq!(request_id, 0);
		assert_eq!(NextRequestId::<Test>::get(), 1);
		assert_eq!(free(CHARLIE), INITIAL_BALANCE - MAX_FEE);
		assert_eq!(escrow_held(CHARLIE), MAX_FEE);
		assert_eq!(issuance(), before);
		let deadline = 1 + REQUEST_TIMEOUT;
		assert_eq!(
			Requests::<Test>::get(request_id),
			Some(RequestInfo {
				requester: CHARLIE,
				model_id: w.model,
				operator: ALICE,
				prompt: bounded(PROMPT),
				max_output_tokens: MAX_OUTPUT_TOKENS,
				max_fee: MAX_FEE,
				deadline,
			})
		);
		assert!(Assigned::<Test>::contains_key(ALICE, request_id));
		assert_eq!(
			last_event(),
			Event::InferenceRequested {
				request_id,
				model_id: w.model,
				requester: CHARLIE,
				operator: ALICE,
				max_fee: MAX_FEE,
				deadline,
			}
		);
	});
}

#[test]
fn requests_are_assigned_round_robin_by_id() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		register(BOB, &[w.model]);
		let other = MockModels::add(DAVE, PRICE_IN, PRICE_OUT, vec![]);
		register(GRACE, &[other]);

		let operator_of = |id| Requests::<Test>::get(id).unwrap().operator;
		assert_eq!(request(w.model), 0);
		assert_eq!(request(w.model), 1);
		// Ids are global: id 2 goes to the only operator of the other model.
		assert_eq!(request(other), 2);
		assert_eq!(request(w.model), 3);
		assert_eq!(request(w.model), 4);
		assert_eq!(
			(0..5).map(operator_of).collect::<Vec<_>>(),
			vec![ALICE, BOB, GRACE, BOB, ALICE]
		);
		assert_eq!(Assigned::<Test>::iter_key_prefix(ALICE).count(), 2);
		assert_eq!(Assigned::<Test>::iter_key_prefix(BOB).count(), 2);
		assert_eq!(escrow_held(CHARLIE), 5 * MAX_FEE);
	});
}

#[test]
fn request_inference_rejects_what_it_must() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let req = |model, prompt: &[u8], max_out, max_fee| {
			Attribution::request_inference(signed(CHARLIE), model, bounded(prompt), max_out, max_fee)
		};
		assert_noop!(
			req(MISSING_MODEL, PROMPT, MAX_OUTPUT_TOKENS, MAX_FEE),
			Error::<Test>::ModelNotFound
		);
		let suspended = MockModels::add(DAVE, PRICE_IN, PRICE_OUT, vec![]);
		MockModels::set_active(suspended, false);
		assert_noop!(
			req(suspended, PROMPT, MAX_OUTPUT_TOKENS, MAX_FEE),
			Error::<Test>::ModelNotActive
		);
		assert_noop!(req(w.model, b"", MAX_OUTPUT_TOKENS, MAX_FEE), Error::<Test>::InvalidPrompt);
		assert_noop!(
			req(w.model, &[b'h', 0xff, 0xfe], MAX_OUTPUT_TOKENS, MAX_FEE),
			Error::<Test>::InvalidPrompt
		);
		assert_noop!(req(w.model, PROMPT, 0, MAX_FEE), Error::<Test>::InvalidTokenLimit);
		assert_noop!(req(w.model, PROMPT, 101, 1_000_000), Error::<Test>::InvalidTokenLimit);
		assert_noop!(
			req(w.model, PROMPT, MAX_OUTPUT_TOKENS, WORST - 1),
			Error::<Test>::MaxFeeTooLow
		);
		let unserved = MockModels::add(DAVE, PRICE_IN, PRICE_OUT, vec![]);
		assert_noop!(
			req(unserved, PROMPT, MAX_OUTPUT_TOKENS, MAX_FEE),
			Error::<Test>::NoOperator
		);
		assert_noop!(
			Attribution::request_inference(
				signed(POOR),
				w.model,
				bounded(PROMPT),
				MAX_OUTPUT_TOKENS,
				MAX_FEE
			),
			Error::<Test>::InsufficientBalance
		);

		// The boundaries themselves pass.
		assert_ok!(req(w.model, PROMPT, MAX_OUTPUT_TOKENS, WORST));
		// 2 bytes of UTF-8 and 100 output tokens: (123_457·4 + 234_567·100) / 1000 = 23_950.
		assert_noop!(req(w.model, "é".as_bytes(), 100, 23_949), Error::<Test>::MaxFeeTooLow);
		assert_ok!(req(w.model, "é".as_bytes(), 100, 23_950));
		assert_eq!(escrow_held(CHARLIE), WORST + 23_950);
	});
}

// --- Receipts ----------------------------------------------------------------------------------

#[test]
fn submit_receipt_pays_the_split_to_the_unit() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let request_id = request(w.model);
		let before = issuance();
		let receipt = receipt(request_id, &w.weights());
		let output_hash = receipt.output_hash;
		System::reset_events();
		assert_ok!(submit(receipt));

		assert_eq!(free(DAVE), INITIAL_BALANCE + OWNER_PART);
		assert_eq!(free(STAKING_POT), ED + STAKERS_PART);
		// Until the receipt matures the pot holds the whole pool, rounding remainder included.
		assert_eq!(free(TREASURY), ED + TREASURY_PART - POOL_REMAINDER);
		assert_eq!(free(reward_pot()), ED + POOL);
		assert_eq!(free(CHARLIE), INITIAL_BALANCE - FEE);
		assert_eq!(escrow_held(CHARLIE), 0);
		// Nobody else paid or got anything: the relayer, the operator, the contributors (until
		// they claim).
		assert_eq!(free(RELAYER), 0);
		assert_eq!(free(ALICE), INITIAL_BALANCE - BOND);
		assert_eq!(free(EVE), INITIAL_BALANCE);
		assert_eq!(issuance(), before);

		assert_eq!(Rewards::<Test>::iter().count(), 0);
		assert!(Requests::<Test>::get(request_id).is_none());
		assert!(!Assigned::<Test>::contains_key(ALICE, request_id));
		let credits = vec![(w.eve1, EVE, EVE1_AMOUNT), (w.eve2, EVE, EVE2_AMOUNT), (w.ferdie, FERDIE, FERDIE_AMOUNT)];
		assert_eq!(
			Receipts::<Test>::get(request_id),
			Some(ReceiptRecord {
				operator: ALICE,
				model_id: w.model,
				prompt_hash: BlakeTwo256::hash(PROMPT),
				output_hash,
				max_output_tokens: MAX_OUTPUT_TOKENS,
				method: AttributionMethod::Span,
				record_hash: H256::repeat_byte(0x22),
				attestation: crate::attestation(&H256::repeat_byte(0x22), &w.weights()),
				fee: FEE,
				pool: POOL,
				credits: bounded(&credits),
				settled_at: 1,
				status: ReceiptStatus::Maturing,
			})
		);
		let settled = Event::ReceiptSettled {
			request_id,
			operator: ALICE,
			model_id: w.model,
			input_tokens: INPUT_TOKENS,
			output_tokens: OUTPUT_TOKENS,
			method: AttributionMethod::Span,
			record_hash: H256::repeat_byte(0x22),
			parts: FeeParts {
				fee: FEE,
				owner: OWNER_PART,
				stakers: STAKERS_PART,
				contributors: CONTRIBUTORS_PART,
				treasury: TREASURY_PART,
			},
			refunded: MAX_FEE - FEE,
			output: bounded(OUTPUT),
		};
		assert_eq!(attribution_events(), vec![settled]);

		// Nothing is claimable inside the challenge window.
		assert_noop!(Attribution::claim_rewards(signed(EVE)), Error::<Test>::NothingToClaim);
		System::set_block_number(1 + DISPUTE_PARAMS.challenge_window);
		Attribution::on_idle(System::block_number(), Weight::MAX);
		assert_eq!(Rewards::<Test>::iter().count(), 0);
		assert_noop!(
			Attribution::release_rewards(signed(RELAYER), Settlement::Receipt(request_id)),
			Error::<Test>::NotMatured
		);

		// Maturity credits the contributors and sends the pool's remainder to the treasury.
		System::reset_events();
		mature();
		assert_eq!(Rewards::<Test>::get(EVE), EVE1_AMOUNT + EVE2_AMOUNT);
		assert_eq!(Rewards::<Test>::get(FERDIE), FERDIE_AMOUNT);
		assert_eq!(Rewards::<Test>::get(DAVE), 0);
		assert_eq!(free(TREASURY), ED + TREASURY_PART);
		assert_eq!(free(reward_pot()), ED + CONTRIBUTORS_PART);
		let record = Receipts::<Test>::get(request_id).unwrap();
		assert_eq!((record.status, record.credits.len()), (ReceiptStatus::Final, 0));
		assert_eq!(issuance(), before);
		assert_noop!(
			Attribution::release_rewards(signed(RELAYER), Settlement::Receipt(request_id)),
			Error::<Test>::NotMaturing
		);
		assert_eq!(
			attribution_events(),
			vec![
				Event::ContributorCredited {
					settlement: Settlement::Receipt(request_id),
					contribution_id: w.eve1,
					contributor: EVE,
					amount: EVE1_AMOUNT,
				},
				Event::ContributorCredited {
					settlement: Settlement::Receipt(request_id),
					contribution_id: w.eve2,
					contributor: EVE,
					amount: EVE2_AMOUNT,
				},
				Event::ContributorCredited {
					settlement: Settlement::Receipt(request_id),
					contribution_id: w.ferdie,
					contributor: FERDIE,
					amount: FERDIE_AMOUNT,
				},
				Event::RewardsReleased {
					settlement: Settlement::Receipt(request_id),
					credited: CONTRIBUTORS_PART,
					to_treasury: POOL_REMAINDER,
				},
			]
		);

		// Claiming.
		assert_ok!(Attribution::claim_rewards(signed(EVE)));
		assert_eq!(free(EVE), INITIAL_BALANCE + EVE1_AMOUNT + EVE2_AMOUNT);
		assert_eq!(free(reward_pot()), ED + FERDIE_AMOUNT);
		assert_eq!(Rewards::<Test>::get(EVE), 0);
		assert!(!Rewards::<Test>::contains_key(EVE));
		assert_eq!(
			last_event(),
			Event::RewardsClaimed { who: EVE, amount: EVE1_AMOUNT + EVE2_AMOUNT }
		);
		assert_noop!(Attribution::claim_rewards(signed(EVE)), Error::<Test>::NothingToClaim);
		assert_ok!(Attribution::claim_rewards(signed(FERDIE)));
		assert_eq!(free(FERDIE), INITIAL_BALANCE + FERDIE_AMOUNT);
		assert_eq!(free(reward_pot()), ED);
		assert_noop!(Attribution::claim_rewards(signed(DAVE)), Error::<Test>::NothingToClaim);
	});
}

#[test]
fn rewards_accumulate_over_receipts() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let first = request(w.model);
		let second = request(w.model);
		assert_ok!(submit(receipt(first, &w.weights())));
		assert_ok!(submit(receipt(second, &[(w.ferdie, crate::PPM)])));
		mature();
		assert_eq!(Rewards::<Test>::get(EVE), EVE1_AMOUNT + EVE2_AMOUNT);
		// All of the second pool: 1_364.
		assert_eq!(Rewards::<Test>::get(FERDIE), FERDIE_AMOUNT + POOL);
		assert_eq!(free(reward_pot()), ED + CONTRIBUTORS_PART + POOL);
		// The second receipt leaves no contributor remainder: 2_728 − 1_091 − 272 − 1_364 = 1.
		assert_eq!(free(TREASURY), ED + TREASURY_PART + 1);
		assert_eq!(free(CHARLIE), INITIAL_BALANCE - 2 * FEE);
	});
}

#[test]
fn the_platform_fee_and_a_custom_split_reach_the_treasury() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let split = FeeSplit {
			owner: Perbill::from_percent(30),
			stakers: Perbill::from_percent(20),
			contributors: Perbill::from_percent(50),
			platform_fee: 7,
		};
		assert_ok!(Attribution::set_fee_split(RuntimeOrigin::root(), split));
		// The worst case now includes the platform fee too.
		assert_noop!(
			Attribution::request_inference(
				signed(CHARLIE),
				w.model,
				bounded(PROMPT),
				MAX_OUTPUT_TOKENS,
				WORST + 6
			),
			Error::<Test>::MaxFeeTooLow
		);
		let request_id = request_with_fee(w.model, WORST + 7);
		assert_ok!(submit(receipt(request_id, &w.weights())));
		let settled = last_event();
		mature();
		// F = 2_728 + 7 = 2_735; S = 2_728: owner 30 % = 818.4, stakers 20 % = 545.6, the same
		// 1_364 pool paying 1_362; treasury = 7 + 0.4 + 0.6 + 2 = 10.
		let fee = FEE + 7;
		assert_eq!(free(DAVE), INITIAL_BALANCE + 818);
		assert_eq!(free(STAKING_POT), ED + 545);
		assert_eq!(free(reward_pot()), ED + CONTRIBUTORS_PART);
		assert_eq!(free(TREASURY), ED + 10);
		assert_eq!(818 + 545 + CONTRIBUTORS_PART + 10, fee);
		assert_eq!(free(CHARLIE), INITIAL_BALANCE - fee);
		assert_eq!(escrow_held(CHARLIE), 0);
		match settled {
			Event::ReceiptSettled { parts, refunded, .. } => {
				assert_eq!(
					parts,
					FeeParts {
						fee,
						owner: 818,
						stakers: 545,
						contributors: CONTRIBUTORS_PART,
						treasury: 10
					}
				);
				assert_eq!(refunded, WORST + 7 - fee);
			},
			other => panic!("unexpected event {other:?}"),
		}
	});
}

#[test]
fn without_attribution_the_contributors_share_goes_to_the_treasury() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let request_id = request(w.model);
		let receipt = receipt(request_id, &[]);
		assert_eq!(receipt.method, AttributionMethod::None);
		System::reset_events();
		assert_ok!(submit(receipt));
		assert_eq!(free(DAVE), INITIAL_BALANCE + OWNER_PART);
		assert_eq!(free(STAKING_POT), ED + STAKERS_PART);
		// The pool waits in the pot: a challenge may still show whose data it owes.
		assert_eq!(free(TREASURY), ED + 1);
		assert_eq!(free(reward_pot()), ED + POOL);
		mature();
		// 2_728 − 1_091 − 272 = 1_365.
		assert_eq!(free(TREASURY), ED + 1_365);
		assert_eq!(free(reward_pot()), ED);
		assert_eq!(free(CHARLIE), INITIAL_BALANCE - FEE);
		assert_eq!(Rewards::<Test>::iter().count(), 0);
		let events = attribution_events();
		assert_eq!(events.len(), 2);
		assert_eq!(
			events[1],
			Event::RewardsReleased { settlement: Settlement::Receipt(request_id), credited: 0, to_treasury: POOL }
		);
		assert!(matches!(
			&events[0],
			Event::ReceiptSettled {
				method: AttributionMethod::None,
				parts: FeeParts { fee: FEE, owner: OWNER_PART, stakers: STAKERS_PART, contributors: 0, treasury: 1_365 },
				..
			}
		));
	});
}

#[test]
fn an_owner_below_the_existential_deposit_is_credited_like_a_contributor() {
	const BIG_ED: Balance = 100;
	const NEW_OWNER: AccountId = 77;
	new_test_ext_with_ed(BIG_ED).execute_with(|| {
		// F = (10_000·5 + 10_000·9) / 1000 = 140: owner 56 (below the ED of a new account),
		// stakers 14, contributors 70, treasury 0.
		let model = MockModels::add(NEW_OWNER, 10_000, 10_000, vec![(DATANET, 1)]);
		let c = MockDatanets::publish(EVE, DATANET, 1);
		register(ALICE, &[model]);
		let first = request(model);
		assert_ok!(submit(receipt(first, &[(c, crate::PPM)])));
		// The owner's part is claimable at once: no challenge changes it.
		assert_eq!(Rewards::<Test>::get(EVE), 0);
		assert_eq!(Rewards::<Test>::get(NEW_OWNER), 56);
		mature();
		assert_eq!(free(NEW_OWNER), 0);
		assert_eq!(Rewards::<Test>::get(NEW_OWNER), 56);
		assert_eq!(Rewards::<Test>::get(EVE), 70);
		assert_eq!(free(reward_pot()), BIG_ED + 56 + 70);
		assert_eq!(free(STAKING_POT), BIG_ED + 14);
		assert_eq!(free(TREASURY), BIG_ED);
		assert_eq!(free(CHARLIE), INITIAL_BALANCE - 140);
		// 56 cannot open an account either.
		assert_noop!(
			Attribution::claim_rewards(signed(NEW_OWNER)),
			DispatchError::Token(TokenError::BelowMinimum)
		);

		let second = request(model);
		assert_ok!(submit(receipt(second, &[(c, crate::PPM)])));
		assert_eq!(Rewards::<Test>::get(NEW_OWNER), 112);
		assert_ok!(Attribution::claim_rewards(signed(NEW_OWNER)));
		assert_eq!(free(NEW_OWNER), 112);
		assert_eq!(free(reward_pot()), BIG_ED + 140);
	});
}

#[test]
fn receipts_for_unknown_or_settled_requests_fail() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let request_id = request(w.model);
		let mut unknown = receipt(request_id, &w.weights());
		unknown.request_id = 99;
		assert_noop!(submit(unknown), Error::<Test>::UnknownRequest);

		let good = receipt(request_id, &w.weights());
		let signature = sign_with(&key_of(ALICE), &good);
		assert_ok!(Attribution::submit_receipt(signed(RELAYER), good.clone(), signature.clone()));
		assert_noop!(
			Attribution::submit_receipt(signed(RELAYER), good, signature),
			Error::<Test>::AlreadySettled
		);
		assert_eq!(free(CHARLIE), INITIAL_BALANCE - FEE);
	});
}

#[test]
fn receipts_of_another_operator_or_key_fail() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		register(BOB, &[w.model]);
		let request_id = request(w.model);
		assert_eq!(Requests::<Test>::get(request_id).unwrap().operator, ALICE);

		// BOB answers ALICE's request with his own, correctly signed receipt.
		let mut bobs = receipt(request_id, &w.weights());
		bobs.operator = BOB;
		assert_noop!(submit(bobs), Error::<Test>::NotAssignedOperator);

		// ALICE's receipt signed by BOB's key.
		let good = receipt(request_id, &w.weights());
		let by_bob = sign_with(&key_of(BOB), &good);
		assert_noop!(
			Attribution::submit_receipt(signed(RELAYER), good.clone(), by_bob),
			Error::<Test>::BadSignature
		);
		// ALICE's signature over another receipt: the record hash changed after signing.
		let signature = sign_with(&key_of(ALICE), &good);
		let mut altered = good.clone();
		altered.record_hash = H256::repeat_byte(0x33);
		assert_noop!(
			Attribution::submit_receipt(signed(RELAYER), altered, signature.clone()),
			Error::<Test>::BadSignature
		);
		// ALICE's signature for another chain.
		let elsewhere = key_of(ALICE)
			.sign(&good.signing_payload(&H256::repeat_byte(0x99)))
			.unwrap();
		assert_noop!(
			Attribution::submit_receipt(signed(RELAYER), good.clone(), elsewhere),
			Error::<Test>::BadSignature
		);
		// Unsigned calls are not receipts.
		assert_noop!(
			Attribution::submit_receipt(RuntimeOrigin::none(), good.clone(), signature.clone()),
			DispatchError::BadOrigin
		);
		assert_ok!(Attribution::submit_receipt(signed(RELAYER), good, signature));
	});
}

#[test]
fn receipts_must_match_the_request() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let other = MockModels::add(DAVE, PRICE_IN, PRICE_OUT, vec![(DATANET, 1)]);
		let request_id = request(w.model);
		let good = || receipt(request_id, &w.weights());

		let mut r = good();
		r.model_id = other;
		r.adapter_hash = adapter_of(other);
		assert_noop!(submit(r), Error::<Test>::ModelMismatch);

		let mut r = good();
		r.adapter_hash = H256::repeat_byte(9);
		assert_noop!(submit(r), Error::<Test>::AdapterMismatch);

		let mut r = good();
		r.prompt_hash = BlakeTwo256::hash(b"Goodbye");
		assert_noop!(submit(r), Error::<Test>::PromptMismatch);

		let mut r = good();
		r.output_hash = BlakeTwo256::hash(b"Something else");
		assert_noop!(submit(r), Error::<Test>::OutputMismatch);
		let mut r = good();
		r.output = bounded(b"Something else");
		assert_noop!(submit(r), Error::<Test>::OutputMismatch);

		// 5 prompt bytes + 2 special tokens at most.
		let mut r = good();
		r.input_tokens = PROMPT.len() as u32 + MAX_SPECIAL_TOKENS + 1;
		assert_noop!(submit(r), Error::<Test>::TooManyInputTokens);

		let mut r = good();
		r.output_tokens = MAX_OUTPUT_TOKENS + 1;
		assert_noop!(submit(r), Error::<Test>::TooManyOutputTokens);

		// The limits themselves pass: (123_457·7 + 234_567·10) / 1000 = 3_209 = WORST.
		let mut r = good();
		r.input_tokens = PROMPT.len() as u32 + MAX_SPECIAL_TOKENS;
		r.output_tokens = MAX_OUTPUT_TOKENS;
		assert_ok!(submit(r));
		assert_eq!(free(CHARLIE), INITIAL_BALANCE - WORST);
	});
}

#[test]
fn weights_must_be_well_formed() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let request_id = request(w.model);
		let with = |method, weights: &[(ContributionId, Ppm)]| {
			let mut r = receipt(request_id, weights);
			r.method = method;
			submit(r)
		};
		let span = AttributionMethod::Span;
		// Not summing to 1_000_000.
		assert_noop!(
			with(span, &[(w.eve1, 500_000), (w.ferdie, 499_999)]),
			Error::<Test>::InvalidWeights
		);
		assert_noop!(
			with(span, &[(w.eve1, 500_000), (w.ferdie, 500_001)]),
			Error::<Test>::InvalidWeights
		);
		// Unsorted, and a contribution twice.
		assert_noop!(
			with(span, &[(w.ferdie, 500_000), (w.eve1, 500_000)]),
			Error::<Test>::InvalidWeights
		);
		assert_noop!(
			with(span, &[(w.eve1, 500_000), (w.eve1, 500_000)]),
			Error::<Test>::InvalidWeights
		);
		// A zero weight.
		assert_noop!(
			with(span, &[(w.eve1, 0), (w.ferdie, 1_000_000)]),
			Error::<Test>::InvalidWeights
		);
		// Weights under method None, and no weights under a real method.
		assert_noop!(
			with(AttributionMethod::None, &[(w.eve1, 1_000_000)]),
			Error::<Test>::InvalidWeights
		);
		assert_noop!(with(AttributionMethod::Datainf, &[]), Error::<Test>::InvalidWeights);
		assert_ok!(with(AttributionMethod::Datainf, &[(w.eve2, 1_000_000)]));
	});
}

#[test]
fn weights_must_stay_in_the_lineage() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let unpublished = MockDatanets::unpublished();
		let outside = MockDatanets::publish(FERDIE, OTHER_DATANET, 1);
		let request_id = request(w.model);
		let with = |weights: &[(ContributionId, Ppm)]| submit(receipt(request_id, weights));
		assert_noop!(
			with(&[(w.eve1, 500_000), (unpublished, 500_000)]),
			Error::<Test>::NotInLineage
		);
		assert_noop!(with(&[(w.eve1, 500_000), (outside, 500_000)]), Error::<Test>::NotInLineage);
		// Version 2 of the lineage's datanet is not in it either.
		let later = MockDatanets::publish(FERDIE, DATANET, 2);
		assert_noop!(with(&[(w.eve1, 500_000), (later, 500_000)]), Error::<Test>::NotInLineage);
		assert_ok!(with(&[(w.eve1, 500_000), (w.ferdie, 500_000)]));
	});
}

#[test]
fn a_lineage_entry_covers_the_versions_up_to_it() {
	new_test_ext().execute_with(|| {
		let v1 = MockDatanets::publish(EVE, DATANET, 1);
		let v2 = MockDatanets::publish(FERDIE, DATANET, 2);
		let up_to_2 = MockModels::add(DAVE, PRICE_IN, PRICE_OUT, vec![(DATANET, 2)]);
		let up_to_1 = MockModels::add(DAVE, PRICE_IN, PRICE_OUT, vec![(DATANET, 1)]);
		register(ALICE, &[up_to_2, up_to_1]);

		let r = request(up_to_2);
		assert_ok!(submit(receipt(r, &[(v1, 400_000), (v2, 600_000)])));
		mature();
		// 0.4 · 1_364 = 545.6 and 0.6 · 1_364 = 818.4.
		assert_eq!(Rewards::<Test>::get(EVE), 545);
		assert_eq!(Rewards::<Test>::get(FERDIE), 818);

		let r = request(up_to_1);
		assert_noop!(submit(receipt(r, &[(v2, 1_000_000)])), Error::<Test>::NotInLineage);
		assert_noop!(
			submit(receipt(r, &[(v1, 400_000), (v2, 600_000)])),
			Error::<Test>::NotInLineage
		);
		assert_ok!(submit(receipt(r, &[(v1, 1_000_000)])));
		mature();
		assert_eq!(Rewards::<Test>::get(EVE), 545 + POOL);
	});
}

#[test]
fn a_price_rise_after_the_request_cannot_charge_more_than_max_fee() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let request_id = request_with_fee(w.model, WORST);
		MockModels::set_prices(w.model, 2 * PRICE_IN, 2 * PRICE_OUT);
		// (246_914·5 + 469_134·9) / 1000 = 5_456 > 3_209.
		assert_noop!(submit(receipt(request_id, &w.weights())), Error::<Test>::FeeAboveMax);
		assert_eq!(escrow_held(CHARLIE), WORST);

		// A smaller answer that fits still settles, at the new prices:
		// (246_914·2 + 469_134·4) / 1000 = 2_370.
		let mut r = receipt(request_id, &w.weights());
		r.input_tokens = 2;
		r.output_tokens = 4;
		assert_ok!(submit(r));
		assert_eq!(free(CHARLIE), INITIAL_BALANCE - 2_370);
		assert_eq!(escrow_held(CHARLIE), 0);
	});
}

// --- Refunds -----------------------------------------------------------------------------------

#[test]
fn refund_returns_the_whole_escrow_after_the_deadline() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let request_id = request(w.model);
		let deadline = 1 + REQUEST_TIMEOUT;
		assert_noop!(Attribution::refund(signed(RELAYER), 99), Error::<Test>::UnknownRequest);
		assert_noop!(Attribution::refund(signed(RELAYER), request_id), Error::<Test>::NotExpired);
		System::set_block_number(deadline);
		assert_noop!(Attribution::refund(signed(RELAYER), request_id), Error::<Test>::NotExpired);

		System::set_block_number(deadline + 1);
		assert_ok!(Attribution::refund(signed(RELAYER), request_id));
		assert_eq!(free(CHARLIE), INITIAL_BALANCE);
		assert_eq!(escrow_held(CHARLIE), 0);
		assert!(Requests::<Test>::get(request_id).is_none());
		assert!(!Assigned::<Test>::contains_key(ALICE, request_id));
		assert!(Receipts::<Test>::get(request_id).is_none());
		assert_eq!(
			last_event(),
			Event::RequestRefunded { request_id, requester: CHARLIE, amount: MAX_FEE }
		);
		assert_noop!(
			Attribution::refund(signed(RELAYER), request_id),
			Error::<Test>::UnknownRequest
		);
		// The refunded request cannot be answered any more.
		let mut late = receipt_for_closed(request_id, w.model);
		late.weights = bounded(&w.weights());
		assert_noop!(submit(late), Error::<Test>::UnknownRequest);
	});
}

/// A receipt for a request that is no longer open, built from what ALICE would have answered.
fn receipt_for_closed(request_id: RequestId, model_id: ModelId) -> Receipt<Test> {
	Receipt {
		request_id,
		operator: ALICE,
		model_id,
		adapter_hash: adapter_of(model_id),
		prompt_hash: BlakeTwo256::hash(PROMPT),
		output_hash: BlakeTwo256::hash(OUTPUT),
		input_tokens: INPUT_TOKENS,
		output_tokens: OUTPUT_TOKENS,
		method: AttributionMethod::Span,
		index_root: H256::repeat_byte(0x11),
		record_hash: H256::repeat_byte(0x22),
		weights: BoundedVec::new(),
		output: bounded(OUTPUT),
	}
}

// --- The fee split -----------------------------------------------------------------------------

#[test]
fn set_fee_split_is_root_only_and_checked() {
	new_test_ext().execute_with(|| {
		let split = FeeSplit {
			owner: Perbill::from_percent(60),
			stakers: Perbill::from_percent(15),
			contributors: Perbill::from_percent(25),
			platform_fee: 3,
		};
		assert_noop!(Attribution::set_fee_split(signed(ALICE), split), DispatchError::BadOrigin);
		let short = FeeSplit { contributors: Perbill::from_percent(24), ..split };
		assert_noop!(
			Attribution::set_fee_split(RuntimeOrigin::root(), short),
			Error::<Test>::InvalidFeeSplit
		);
		let over = FeeSplit { owner: Perbill::from_percent(100), ..split };
		assert_noop!(
			Attribution::set_fee_split(RuntimeOrigin::root(), over),
			Error::<Test>::InvalidFeeSplit
		);
		let one_part_off = FeeSplit { stakers: Perbill::from_parts(150_000_001), ..split };
		assert_noop!(
			Attribution::set_fee_split(RuntimeOrigin::root(), one_part_off),
			Error::<Test>::InvalidFeeSplit
		);
		assert_ok!(Attribution::set_fee_split(RuntimeOrigin::root(), split));
		assert_eq!(FeeParams::<Test>::get(), split);
		assert_eq!(last_event(), Event::FeeSplitSet { split });
	});
}

// --- The authorized (fee-less) path ------------------------------------------------------------

#[test]
fn the_pool_accepts_a_valid_receipt_and_rejects_a_bad_one() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		register(BOB, &[w.model]);
		let request_id = request(w.model);
		let good = receipt(request_id, &w.weights());
		let call = Call::<Test>::submit_receipt {
			receipt: good.clone(),
			signature: sign_with(&key_of(ALICE), &good),
		};
		let (valid, refund) = call
			.authorize(TransactionSource::External)
			.expect("submit_receipt is authorizable")
			.expect("a valid receipt is authorized");
		assert_eq!(valid.priority, 100);
		assert_eq!(valid.provides, vec![("AttributionReceipt", request_id).encode()]);
		assert!(valid.requires.is_empty());
		assert_eq!(valid.longevity, 64);
		assert!(valid.propagate);
		assert_eq!(refund, frame_support::weights::Weight::zero());

		// Signed by BOB's key: the pool names the error by its index.
		let bad = Call::<Test>::submit_receipt {
			receipt: good.clone(),
			signature: sign_with(&key_of(BOB), &good),
		};
		let bad_signature = custom_error_index(Error::<Test>::BadSignature);
		assert_eq!(bad_signature, 20);
		assert_eq!(
			bad.authorize(TransactionSource::External),
			Some(Err(TransactionValidityError::Invalid(InvalidTransaction::Custom(bad_signature))))
		);
		// Other calls are not authorized at all.
		assert!(Call::<Test>::refund { request_id }.authorize(TransactionSource::External).is_none());

		// Dispatched as an authorized transaction, the receipt settles.
		let Call::submit_receipt { receipt, signature } = call.clone() else { unreachable!() };
		assert_ok!(Attribution::submit_receipt(
			frame_system::RawOrigin::Authorized.into(),
			receipt,
			signature
		));
		assert_eq!(free(DAVE), INITIAL_BALANCE + OWNER_PART);
		assert_eq!(free(CHARLIE), INITIAL_BALANCE - FEE);

		// And the same receipt is now a replay.
		assert_eq!(
			call.authorize(TransactionSource::External),
			Some(Err(TransactionValidityError::Invalid(InvalidTransaction::Custom(
				custom_error_index(Error::<Test>::AlreadySettled)
			))))
		);
	});
}

// --- The off-chain worker ----------------------------------------------------------------------

/// Runs `test` on the mock runtime with the off-chain worker's extensions: `engine` takes the
/// HTTP requests the test expects, `pool()` lists the transactions submitted so far.
fn with_offchain_worker(test: impl FnOnce(&TestOffchainExt, &dyn Fn() -> Vec<Vec<u8>>)) {
	let mut ext = new_test_ext();
	let (engine, _) = TestOffchainExt::new();
	let (pool, pool_state) = TestTransactionPoolExt::new();
	ext.register_extension(OffchainDbExt::new(engine.clone()));
	ext.register_extension(OffchainWorkerExt::new(engine.clone()));
	ext.register_extension(TransactionPoolExt::new(pool));
	let transactions = move || pool_state.read().transactions.clone();
	ext.execute_with(|| test(&engine, &transactions));
}

/// Runs the off-chain worker; its batcher finds the engine's journal empty.
fn ocw(offchain: &TestOffchainExt, block: u64) {
	expect_journal(offchain, 0, r#"{"entries":[],"last_seq":0,"settled_through":0}"#);
	<Attribution as Hooks<u64>>::offchain_worker(block);
}

/// The batcher's read of the journal after `cursor`, answered with `page`.
fn expect_journal(offchain: &TestOffchainExt, cursor: u64, page: &str) {
	// Read before taking the state's lock: the engine URL lives in the same state.
	let uri = format!("{}/v1/journal?after={cursor}&limit=1024", crate::offchain::engine_url());
	offchain.0.write().expect_request(PendingRequest {
		method: "GET".into(),
		uri,
		response: Some(page.as_bytes().to_vec()),
		sent: true,
		..Default::default()
	});
}

fn hex(bytes: &[u8]) -> String {
	bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn completion_body(model_id: ModelId) -> Vec<u8> {
	format!(
		r#"{{"model":"0x{}","prompt":"Hello","max_tokens":{MAX_OUTPUT_TOKENS},"temperature":0.0,"attribution":true}}"#,
		hex(adapter_of(model_id).as_bytes())
	)
	.into_bytes()
}

fn engine_request(uri: &str, body: Vec<u8>, response: &[u8]) -> PendingRequest {
	PendingRequest {
		method: "POST".into(),
		uri: uri.into(),
		headers: vec![("Content-Type".into(), "application/json".into())],
		body,
		response: Some(response.to_vec()),
		sent: true,
		..Default::default()
	}
}

#[test]
fn the_offchain_worker_answers_and_submits_an_authorized_receipt() {
	with_offchain_worker(|engine, pool| {
		let w = World::new();
		UintAuthorityId::set_all_keys(vec![key_of(ALICE)]);
		sp_io::offchain::local_storage_set(
			StorageKind::PERSISTENT,
			crate::offchain::ENGINE_URL_KEY,
			b" http://engine:9000/ ",
		);
		let request_id = request(w.model);
		// The engine lists the weights by rank; the receipt sorts them by contribution id.
		let answer = format!(
			r#"{{"choices":[{{"text":"Hi there"}}],
				"receipt":{{"adapter_hash":"0x{}","input_tokens":5,"output_tokens":9}},
				"attribution":{{"method":"span","weights":[
					{{"contribution":{},"ppm":{EVE2_PPM}}},
					{{"contribution":{},"ppm":{FERDIE_PPM}}},
					{{"contribution":{},"ppm":{EVE1_PPM}}}],
				"index_root":"0x{}","record_hash":"0x{}"}}}}"#,
			hex(adapter_of(w.model).as_bytes()),
			w.eve2,
			w.ferdie,
			w.eve1,
			hex(&[0x11; 32]),
			hex(&[0x22; 32]),
		);
		engine.0.write().expect_request(engine_request(
			"http://engine:9000/v1/completions",
			completion_body(w.model),
			answer.as_bytes(),
		));
		ocw(engine, 1);

		let txs = pool();
		assert_eq!(txs.len(), 1);
		let xt = Extrinsic::decode(&mut &txs[0][..]).unwrap();
		assert!(matches!(xt.preamble, sp_runtime::generic::Preamble::General(..)));
		let RuntimeCall::Attribution(call) = xt.function else { panic!("not a receipt") };
		let Call::submit_receipt { receipt: submitted, signature } = call.clone() else {
			panic!("not a receipt")
		};
		assert_eq!(submitted, receipt(request_id, &w.weights()));
		assert!(matches!(call.authorize(TransactionSource::Local), Some(Ok(_))));

		// A later run of the same block neither asks the engine again nor resubmits; five
		// blocks on, the same receipt is submitted again in case the first was dropped.
		ocw(engine, 1);
		System::set_block_number(5);
		ocw(engine, 5);
		assert_eq!(pool().len(), 1);
		System::set_block_number(6);
		ocw(engine, 6);
		let txs = pool();
		assert_eq!(txs.len(), 2);
		assert_eq!(txs[1], txs[0]);

		assert_ok!(Attribution::submit_receipt(
			frame_system::RawOrigin::Authorized.into(),
			submitted,
			signature
		));
		mature();
		assert_eq!(Rewards::<Test>::get(EVE), EVE1_AMOUNT + EVE2_AMOUNT);
		// Nothing is assigned any more: the worker does nothing.
		System::set_block_number(20);
		ocw(engine, 20);
		assert_eq!(pool().len(), 2);
	});
}

#[test]
fn the_offchain_worker_gives_up_after_three_failed_attempts() {
	with_offchain_worker(|engine, pool| {
		let w = World::new();
		// BOB's key is not in this node's keystore: his requests are not this node's to answer.
		register(BOB, &[w.model]);
		UintAuthorityId::set_all_keys(vec![key_of(ALICE)]);
		let request_id = request(w.model);
		let bobs = request(w.model);
		assert_eq!(Requests::<Test>::get(bobs).unwrap().operator, BOB);
		for block in 1..=crate::offchain::MAX_ATTEMPTS as u64 {
			// The default address, and an answer that is not a completion.
			engine.0.write().expect_request(engine_request(
				"http://127.0.0.1:8000/v1/completions",
				completion_body(w.model),
				b"<html>Bad gateway</html>",
			));
			System::set_block_number(block);
			ocw(engine, block);
		}
		// A fourth run does not call the engine (the test externalities would panic on an
		// unexpected request).
		System::set_block_number(10);
		ocw(engine, 10);
		assert!(pool().is_empty());
		assert!(Requests::<Test>::get(request_id).is_some());
	});
}

// --- Disputes ----------------------------------------------------------------------------------

fn challenge_held(who: AccountId) -> Balance {
	Balances::balance_on_hold(&RuntimeHoldReason::Attribution(HoldReason::ChallengeBond), &who)
}

/// The record hash the challenger says its engine computed.
fn claimed_record() -> H256 {
	H256::repeat_byte(0x33)
}

fn challenge_as(
	who: AccountId,
	request_id: RequestId,
	weights: &[(ContributionId, Ppm)],
) -> DispatchResult {
	Attribution::challenge(signed(who), request_id, bounded(PROMPT), claimed_record(), bounded(weights))
}

/// Casts `verifier`'s vote, signed with its key, from `RELAYER`.
fn vote(request_id: RequestId, verifier: AccountId, attestation: H256) -> DispatchResult {
	let signature = key_of(verifier)
		.sign(&crate::vote_payload(&genesis(), request_id, &attestation))
		.expect("UintAuthorityId signs anything");
	Attribution::vote(signed(RELAYER), request_id, verifier, attestation, signature)
}

impl World {
	/// The attestation of the receipts `receipt(_, &self.weights())` makes.
	fn receipt_attestation(&self) -> H256 {
		crate::attestation(&H256::repeat_byte(0x22), &self.weights())
	}

	/// What the challenger of [`World::disputed`] claims: FERDIE's contribution alone.
	fn claimed_weights(&self) -> Vec<(ContributionId, Ppm)> {
		vec![(self.ferdie, crate::PPM)]
	}

	fn claimed_attestation(&self) -> H256 {
		crate::attestation(&claimed_record(), &self.claimed_weights())
	}

	/// ALICE's settled receipt with the standard weights, served with BOB and HEIDI, and
	/// challenged by CHARLIE at block 1.
	fn disputed(&self) -> RequestId {
		register(BOB, &[self.model]);
		register(HEIDI, &[self.model]);
		let request_id = request(self.model);
		assert_eq!(Requests::<Test>::get(request_id).unwrap().operator, ALICE);
		assert_ok!(submit(receipt(request_id, &self.weights())));
		assert_ok!(challenge_as(CHARLIE, request_id, &self.claimed_weights()));
		request_id
	}
}

/// CHARLIE's balance after paying the standard fee.
const CHARLIE_AFTER_FEE: Balance = INITIAL_BALANCE - FEE;
const CHALLENGE_BOND: Balance = DISPUTE_PARAMS.challenge_bond;
/// 10 % of ALICE's bond.
const SLASH: Balance = BOND / 10;

#[test]
fn a_challenge_freezes_the_rewards_and_the_bond_until_it_resolves() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let request_id = w.disputed();
		assert_eq!(challenge_held(CHARLIE), CHALLENGE_BOND);
		assert_eq!(free(CHARLIE), CHARLIE_AFTER_FEE - CHALLENGE_BOND);
		assert_eq!(Receipts::<Test>::get(request_id).unwrap().status, ReceiptStatus::Disputed);
		assert_eq!(crate::DisputesAgainst::<Test>::get(ALICE), 1);
		assert_eq!(
			last_event(),
			Event::DisputeOpened {
				request_id,
				challenger: CHARLIE,
				operator: ALICE,
				verifiers: bounded(&[BOB, HEIDI]),
				deadline: 1 + DISPUTE_PARAMS.voting_period,
			}
		);

		// The window passes: the challenged receipt does not mature.
		mature();
		assert_eq!(Rewards::<Test>::iter().count(), 0);
		assert_eq!(free(reward_pot()), ED + POOL);
		assert_eq!(crate::MaturityHead::<Test>::get(), 1);
		assert_noop!(
			Attribution::release_rewards(signed(EVE), Settlement::Receipt(request_id)),
			Error::<Test>::NotMaturing
		);

		// The operator cannot leave with its bond while the dispute is open.
		assert_ok!(Attribution::unbond(signed(ALICE)));
		System::set_block_number(System::block_number() + UNBONDING_DELAY);
		assert_noop!(Attribution::withdraw_bond(signed(ALICE)), Error::<Test>::BondLocked);

		// Nobody voted by the deadline: void. The bond comes back and the receipt pays as
		// it said.
		assert_ok!(Attribution::resolve_dispute(signed(RELAYER), request_id));
		assert_eq!(
			last_event(),
			Event::DisputeResolved {
				request_id,
				outcome: DisputeOutcome::Void,
				slashed: 0,
				to_winner: 0
			}
		);
		assert_eq!(challenge_held(CHARLIE), 0);
		assert_eq!(free(CHARLIE), CHARLIE_AFTER_FEE);
		assert_eq!(Rewards::<Test>::get(EVE), EVE1_AMOUNT + EVE2_AMOUNT);
		assert_eq!(Rewards::<Test>::get(FERDIE), FERDIE_AMOUNT);
		assert_eq!(free(TREASURY), ED + TREASURY_PART);
		assert_eq!(Receipts::<Test>::get(request_id).unwrap().status, ReceiptStatus::Final);
		assert!(crate::Disputes::<Test>::get(request_id).is_none());
		assert!(!crate::DisputesAgainst::<Test>::contains_key(ALICE));
		assert_ok!(Attribution::withdraw_bond(signed(ALICE)));
		assert_eq!(free(ALICE), INITIAL_BALANCE);
	});
}

#[test]
fn challenge_rejects_what_it_must() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let request_id = request(w.model);
		assert_ok!(submit(receipt(request_id, &w.weights())));
		let claimed = w.claimed_weights();
		// Only ALICE serves the model: nobody could verify.
		assert_noop!(challenge_as(CHARLIE, request_id, &claimed), Error::<Test>::NoVerifiers);
		register(BOB, &[w.model]);

		assert_noop!(challenge_as(CHARLIE, 99, &claimed), Error::<Test>::NoReceipt);
		assert_noop!(
			Attribution::challenge(
				signed(CHARLIE),
				request_id,
				bounded(b"Hellp"),
				claimed_record(),
				bounded(&claimed)
			),
			Error::<Test>::PromptMismatch
		);
		assert_noop!(
			Attribution::challenge(
				signed(CHARLIE),
				request_id,
				bounded(PROMPT),
				H256::repeat_byte(0x22),
				bounded(&w.weights())
			),
			Error::<Test>::SameRecord
		);
		let unpublished = MockDatanets::unpublished();
		assert_noop!(
			challenge_as(CHARLIE, request_id, &[(unpublished, crate::PPM)]),
			Error::<Test>::NotInLineage
		);
		assert_noop!(
			challenge_as(CHARLIE, request_id, &[(w.ferdie, 5)]),
			Error::<Test>::InvalidWeights
		);
		assert_noop!(
			challenge_as(POOR, request_id, &claimed),
			Error::<Test>::InsufficientBalance
		);
		// BOB, the only other operator, cannot both challenge and verify.
		assert_noop!(challenge_as(BOB, request_id, &claimed), Error::<Test>::NoVerifiers);

		// The window is the settlement block plus 3.
		System::set_block_number(1 + DISPUTE_PARAMS.challenge_window + 1);
		assert_noop!(
			challenge_as(CHARLIE, request_id, &claimed),
			Error::<Test>::ChallengeWindowClosed
		);
		System::set_block_number(1 + DISPUTE_PARAMS.challenge_window);
		assert_ok!(challenge_as(CHARLIE, request_id, &[]));
		assert_noop!(challenge_as(EVE, request_id, &claimed), Error::<Test>::AlreadyDisputed);

		// Once final, it stays final.
		let other = request(w.model);
		assert_ok!(submit(receipt(other, &w.weights())));
		mature();
		assert_noop!(
			challenge_as(CHARLIE, other, &claimed),
			Error::<Test>::ChallengeWindowClosed
		);
	});
}

#[test]
fn an_overturned_receipt_slashes_the_operator_and_pays_by_the_challengers_weights() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let request_id = w.disputed();
		let treasury_before = free(TREASURY);
		assert_ok!(vote(request_id, BOB, w.claimed_attestation()));
		// One of two verifiers is no majority.
		assert!(crate::Disputes::<Test>::get(request_id).is_some());
		assert_eq!(
			last_event(),
			Event::VoteCast { request_id, verifier: BOB, attestation: w.claimed_attestation() }
		);
		assert_noop!(vote(request_id, BOB, w.claimed_attestation()), Error::<Test>::AlreadyVoted);
		System::reset_events();
		assert_ok!(vote(request_id, HEIDI, w.claimed_attestation()));

		assert_eq!(bond_held(ALICE), BOND - SLASH);
		assert_eq!(Operators::<Test>::get(ALICE).unwrap().bond, BOND - SLASH);
		// Half the slash to the challenger, half to the treasury; the bond comes back.
		assert_eq!(challenge_held(CHARLIE), 0);
		assert_eq!(free(CHARLIE), CHARLIE_AFTER_FEE + SLASH / 2);
		// All of the pool to FERDIE: no remainder.
		assert_eq!(Rewards::<Test>::get(FERDIE), POOL);
		assert_eq!(Rewards::<Test>::get(EVE), 0);
		assert_eq!(free(TREASURY), treasury_before + SLASH / 2);
		assert_eq!(free(reward_pot()), ED + POOL);
		assert!(crate::Disputes::<Test>::get(request_id).is_none());
		assert_eq!(Receipts::<Test>::get(request_id).unwrap().status, ReceiptStatus::Final);
		assert_eq!(
			attribution_events(),
			vec![
				Event::VoteCast { request_id, verifier: HEIDI, attestation: w.claimed_attestation() },
				Event::ContributorCredited {
					settlement: Settlement::Receipt(request_id),
					contribution_id: w.ferdie,
					contributor: FERDIE,
					amount: POOL
				},
				Event::RewardsReleased { settlement: Settlement::Receipt(request_id), credited: POOL, to_treasury: 0 },
				Event::DisputeResolved {
					request_id,
					outcome: DisputeOutcome::Overturned,
					slashed: SLASH,
					to_winner: SLASH / 2
				},
			]
		);
	});
}

#[test]
fn an_upheld_receipt_costs_the_challenger_its_bond() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let request_id = w.disputed();
		assert_ok!(vote(request_id, HEIDI, w.receipt_attestation()));
		assert_ok!(vote(request_id, BOB, w.receipt_attestation()));
		assert_eq!(
			last_event(),
			Event::DisputeResolved {
				request_id,
				outcome: DisputeOutcome::Upheld,
				slashed: CHALLENGE_BOND,
				to_winner: CHALLENGE_BOND / 2
			}
		);
		assert_eq!(challenge_held(CHARLIE), 0);
		assert_eq!(free(CHARLIE), CHARLIE_AFTER_FEE - CHALLENGE_BOND);
		assert_eq!(free(ALICE), INITIAL_BALANCE - BOND + CHALLENGE_BOND / 2);
		assert_eq!(bond_held(ALICE), BOND);
		assert_eq!(free(TREASURY), ED + TREASURY_PART + CHALLENGE_BOND / 2);
		// The receipt's own split, at once.
		assert_eq!(Rewards::<Test>::get(EVE), EVE1_AMOUNT + EVE2_AMOUNT);
		assert_eq!(Rewards::<Test>::get(FERDIE), FERDIE_AMOUNT);
	});
}

#[test]
fn a_majority_for_neither_record_slashes_the_operator_and_sends_the_pool_to_the_treasury() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let request_id = w.disputed();
		let treasury_before = free(TREASURY);
		let third = H256::repeat_byte(0x44);
		assert_ok!(vote(request_id, BOB, third));
		assert_ok!(vote(request_id, HEIDI, third));
		assert_eq!(
			last_event(),
			Event::DisputeResolved {
				request_id,
				outcome: DisputeOutcome::Rejected,
				slashed: SLASH,
				to_winner: 0
			}
		);
		assert_eq!(bond_held(ALICE), BOND - SLASH);
		assert_eq!(free(CHARLIE), CHARLIE_AFTER_FEE);
		assert_eq!(Rewards::<Test>::iter().count(), 0);
		assert_eq!(free(TREASURY), treasury_before + SLASH + POOL);
		assert_eq!(free(reward_pot()), ED);
	});
}

#[test]
fn votes_are_checked_and_a_split_vote_is_void() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let request_id = w.disputed();
		let a = w.claimed_attestation();
		assert_noop!(vote(99, BOB, a), Error::<Test>::NoDispute);
		assert_noop!(vote(request_id, ALICE, a), Error::<Test>::NotVerifier);
		assert_noop!(vote(request_id, GRACE, a), Error::<Test>::NotVerifier);
		let forged = key_of(HEIDI).sign(&crate::vote_payload(&genesis(), request_id, &a)).unwrap();
		assert_noop!(
			Attribution::vote(signed(RELAYER), request_id, BOB, a, forged),
			Error::<Test>::BadSignature
		);
		// A signature for another attestation does not carry over.
		let for_other = key_of(BOB)
			.sign(&crate::vote_payload(&genesis(), request_id, &w.receipt_attestation()))
			.unwrap();
		assert_noop!(
			Attribution::vote(signed(RELAYER), request_id, BOB, a, for_other),
			Error::<Test>::BadSignature
		);

		assert_ok!(vote(request_id, BOB, a));
		assert_ok!(vote(request_id, HEIDI, w.receipt_attestation()));
		// One each: no majority, still open.
		assert!(crate::Disputes::<Test>::get(request_id).is_some());
		assert_noop!(
			Attribution::resolve_dispute(signed(RELAYER), request_id),
			Error::<Test>::VotingOpen
		);
		System::set_block_number(1 + DISPUTE_PARAMS.voting_period + 1);
		assert_noop!(vote(request_id, BOB, a), Error::<Test>::VotingClosed);
		assert_ok!(Attribution::resolve_dispute(signed(RELAYER), request_id));
		assert!(matches!(
			last_event(),
			Event::DisputeResolved { outcome: DisputeOutcome::Void, slashed: 0, .. }
		));
		assert_noop!(
			Attribution::resolve_dispute(signed(RELAYER), request_id),
			Error::<Test>::NoDispute
		);
	});
}

#[test]
fn set_dispute_params_is_root_only_and_checked() {
	new_test_ext().execute_with(|| {
		let mut params = DISPUTE_PARAMS;
		params.challenge_window = 6;
		assert_noop!(
			Attribution::set_dispute_params(signed(ALICE), params),
			DispatchError::BadOrigin
		);
		assert_ok!(Attribution::set_dispute_params(RuntimeOrigin::root(), params));
		assert_eq!(crate::DisputeConfig::<Test>::get(), params);
		assert_eq!(last_event(), Event::DisputeParamsSet { params });
		params.voting_period = 0;
		assert_noop!(
			Attribution::set_dispute_params(RuntimeOrigin::root(), params),
			Error::<Test>::InvalidDisputeParams
		);
	});
}

#[test]
fn on_idle_matures_in_settlement_order_within_its_weight() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let first = request(w.model);
		assert_ok!(submit(receipt(first, &w.weights())));
		System::set_block_number(2);
		let second = request(w.model);
		assert_ok!(submit(receipt(second, &w.weights())));
		// At block 5 only the first is past its window (1 + 3).
		System::set_block_number(5);
		let per_receipt = <() as crate::WeightInfo>::release_rewards(4);
		// A receipt is priced as a receipt, not as the largest batch: one receipt's weight
		// (the mock counts no database weight) is enough.
		assert!(per_receipt.any_lt(<() as crate::WeightInfo>::release_batch_rewards(4)));
		assert_eq!(Attribution::on_idle(5, per_receipt.saturating_sub(Weight::from_parts(1, 0))), Weight::zero());
		assert_eq!(Receipts::<Test>::get(first).unwrap().status, ReceiptStatus::Maturing);
		let used = Attribution::on_idle(5, per_receipt);
		assert_eq!(used, per_receipt);
		assert_eq!(Receipts::<Test>::get(first).unwrap().status, ReceiptStatus::Final);
		assert_eq!(Receipts::<Test>::get(second).unwrap().status, ReceiptStatus::Maturing);
		assert!(used.all_gte(per_receipt));
		// With no weight to spare nothing happens; the fallback call still works.
		System::set_block_number(6);
		assert_eq!(Attribution::on_idle(6, Weight::zero()), Weight::zero());
		assert_eq!(Receipts::<Test>::get(second).unwrap().status, ReceiptStatus::Maturing);
		assert_ok!(Attribution::release_rewards(signed(RELAYER), Settlement::Receipt(second)));
		assert_eq!(Rewards::<Test>::get(EVE), 2 * (EVE1_AMOUNT + EVE2_AMOUNT));
		// The queue entry of a receipt released by hand just leaves.
		Attribution::on_idle(7, Weight::MAX);
		assert_eq!(crate::MaturityHead::<Test>::get(), crate::MaturityTail::<Test>::get());
		assert_eq!(Rewards::<Test>::get(EVE), 2 * (EVE1_AMOUNT + EVE2_AMOUNT));
	});
}

#[test]
fn a_verifiers_offchain_worker_reruns_the_request_and_votes() {
	with_offchain_worker(|engine, pool| {
		let w = World::new();
		let request_id = w.disputed();
		// This node holds BOB's key: BOB verifies, ALICE (the accused) is not asked.
		UintAuthorityId::set_all_keys(vec![key_of(BOB)]);
		// The engine is asked for the receipt's method by name; it finds FERDIE alone, as the
		// challenger said.
		let body = format!(
			r#"{{"model":"0x{}","prompt":"Hello","max_tokens":{MAX_OUTPUT_TOKENS},"temperature":0.0,"attribution":"span"}}"#,
			hex(adapter_of(w.model).as_bytes())
		);
		let answer = format!(
			r#"{{"choices":[{{"text":"Hi there"}}],
				"receipt":{{"adapter_hash":"0x{}","input_tokens":5,"output_tokens":9}},
				"attribution":{{"method":"span","weights":[{{"contribution":{},"ppm":1000000}}],
				"index_root":"0x{}","record_hash":"0x{}"}}}}"#,
			hex(adapter_of(w.model).as_bytes()),
			w.ferdie,
			hex(&[0x11; 32]),
			hex(claimed_record().as_bytes()),
		);
		engine.0.write().expect_request(engine_request(
			"http://127.0.0.1:8000/v1/completions",
			body.into_bytes(),
			answer.as_bytes(),
		));
		ocw(engine, 1);

		let txs = pool();
		assert_eq!(txs.len(), 1);
		let xt = Extrinsic::decode(&mut &txs[0][..]).unwrap();
		let RuntimeCall::Attribution(call) = xt.function else { panic!("not a vote") };
		let Call::vote { request_id: voted, verifier, attestation, signature } = call.clone() else {
			panic!("not a vote")
		};
		assert_eq!((voted, verifier, attestation), (request_id, BOB, w.claimed_attestation()));
		assert!(matches!(call.authorize(TransactionSource::Local), Some(Ok(_))));
		assert_ok!(Attribution::vote(
			frame_system::RawOrigin::Authorized.into(),
			request_id,
			BOB,
			attestation,
			signature.clone()
		));
		// The pool refuses the same vote twice.
		let again = Call::<Test>::vote { request_id, verifier: BOB, attestation, signature };
		assert_eq!(
			again.authorize(TransactionSource::Local).map(|r| r.map(|_| ())),
			Some(Err(TransactionValidityError::Invalid(InvalidTransaction::Custom(
				custom_error_index(Error::<Test>::AlreadyVoted)
			))))
		);
		// Having voted, the worker leaves the dispute alone (an unexpected engine call would
		// panic).
		System::set_block_number(2);
		ocw(engine, 2);
		assert_eq!(pool().len(), 1);
	});
}

// --- Batches of prepaid receipts ---------------------------------------------------------------

fn credit_held(who: AccountId) -> Balance {
	Balances::balance_on_hold(&RuntimeHoldReason::Attribution(HoldReason::Credit), &who)
}

/// Charges of `(payer, amount)`, each for its requests with nonces 1 and 2.
fn charges(
	list: &[(AccountId, Balance)],
) -> BoundedVec<Charge<AccountId, Balance>, <Test as crate::Config>::MaxBatchPayers> {
	bounded(
		&list
			.iter()
			.map(|&(payer, amount)| Charge { payer, amount, first_nonce: 1, last_nonce: 2 })
			.collect::<Vec<_>>(),
	)
}

fn rates() -> Rates<Balance> {
	Rates { price_in: PRICE_IN, price_out: PRICE_OUT, platform_fee: FeeParams::<Test>::get().platform_fee }
}

/// ALICE's first batch for the World's model: three receipts, CHARLIE paying 2_000 and GRACE
/// 1_000, EVE's first contribution weighing 500 of the shared fee and FERDIE's 1_000. Its
/// aggregates only: the root commits to no leaves.
fn batch(w: &World) -> ReceiptBatch<Test> {
	ReceiptBatch {
		operator: ALICE,
		model_id: w.model,
		nonce: 0,
		receipts_root: H256::repeat_byte(0x55),
		receipts: 3,
		rates: rates(),
		charges: charges(&[(CHARLIE, 2_000), (GRACE, 1_000)]),
		influence: bounded(&[(w.eve1, 500), (w.ferdie, 1_000)]),
	}
}

fn submit_batch_signed_by(key: &UintAuthorityId, batch: ReceiptBatch<Test>) -> DispatchResult {
	let signature = key.sign(&batch.signing_payload(&genesis())).expect("UintAuthorityId signs anything");
	Attribution::submit_receipt_batch(signed(RELAYER), batch, signature)
}

fn submit_batch(batch: ReceiptBatch<Test>) -> DispatchResult {
	submit_batch_signed_by(&key_of(batch.operator), batch)
}

fn deposit_credits() {
	assert_ok!(Attribution::deposit_credit(signed(CHARLIE), 5_000));
	assert_ok!(Attribution::deposit_credit(signed(GRACE), 5_000));
}

#[test]
fn a_batch_charges_each_payers_credit_and_splits_the_total() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		deposit_credits();
		assert_eq!(last_event(), Event::CreditDeposited { who: GRACE, amount: 5_000 });
		let before = issuance();
		assert_ok!(submit_batch(batch(&w)));

		// F = 3_000, S = 3_000 (no platform fee): owner 1_200, stakers 300, pool 1_500 of which
		// EVE gets 50 % of 500 = 250 and FERDIE 50 % of 1_000 = 500; treasury 750, of which the
		// pool's 750 remainder only at maturity.
		assert_eq!(credit_held(CHARLIE), 3_000);
		assert_eq!(credit_held(GRACE), 4_000);
		assert_eq!(free(DAVE), INITIAL_BALANCE + 1_200);
		assert_eq!(free(STAKING_POT), ED + 300);
		assert_eq!(free(TREASURY), ED);
		assert_eq!(free(reward_pot()), ED + 1_500);
		assert_eq!(issuance(), before);
		assert_eq!(
			last_event(),
			Event::BatchSettled {
				operator: ALICE,
				nonce: 0,
				model_id: w.model,
				receipts: 3,
				receipts_root: H256::repeat_byte(0x55),
				parts: FeeParts { fee: 3_000, owner: 1_200, stakers: 300, contributors: 750, treasury: 750 },
			}
		);
		assert_eq!(crate::BatchNonce::<Test>::get(ALICE), 1);
		let record = crate::Batches::<Test>::get(ALICE, 0).unwrap();
		assert_eq!((record.fee, record.pool, record.status), (3_000, 1_500, ReceiptStatus::Maturing));
		assert_eq!(Rewards::<Test>::iter().count(), 0);
		// The same batch again is a replay.
		assert_noop!(submit_batch(batch(&w)), Error::<Test>::BadBatchNonce);

		mature();
		assert_eq!(Rewards::<Test>::get(EVE), 250);
		assert_eq!(Rewards::<Test>::get(FERDIE), 500);
		assert_eq!(free(TREASURY), ED + 750);
		assert_eq!(free(reward_pot()), ED + 750);
		assert_eq!(crate::Batches::<Test>::get(ALICE, 0).unwrap().status, ReceiptStatus::Final);
		assert_eq!(
			last_event(),
			Event::RewardsReleased {
				settlement: Settlement::Batch(ALICE, 0),
				credited: 750,
				to_treasury: 750
			}
		);

		// The next batch takes the next number; the platform fee is due per receipt.
		assert_ok!(Attribution::set_fee_split(
			RuntimeOrigin::root(),
			FeeSplit { platform_fee: 10, ..FeeParams::<Test>::get() }
		));
		let mut next = batch(&w);
		next.nonce = 1;
		next.influence = bounded(&[]);
		next.charges = charges(&[(CHARLIE, 30)]);
		next.rates.platform_fee = 0;
		assert_noop!(submit_batch(next.clone()), Error::<Test>::StaleRates);
		next.rates = rates();
		// CHARLIE's requests 1 and 2 are settled: charging them again is refused.
		assert_noop!(submit_batch(next.clone()), Error::<Test>::InvalidNonces);
		assert_eq!(crate::SettledNonce::<Test>::get(CHARLIE), Some(2));
		next.charges = bounded(&[Charge { payer: CHARLIE, amount: 29, first_nonce: 3, last_nonce: 3 }]);
		assert_noop!(submit_batch(next.clone()), Error::<Test>::InvalidCharges);
		next.charges[0].amount = 30;
		assert_ok!(submit_batch(next));
		assert_eq!(free(TREASURY), ED + 750 + 30);
		assert_eq!(crate::SettledNonce::<Test>::get(CHARLIE), Some(3));
	});
}

#[test]
fn batches_are_checked() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		deposit_credits();
		let with = |f: &dyn Fn(&mut ReceiptBatch<Test>)| {
			let mut b = batch(&w);
			f(&mut b);
			submit_batch(b)
		};
		assert_noop!(with(&|b| b.operator = GRACE), Error::<Test>::NotOperator);
		assert_noop!(
			submit_batch_signed_by(&key_of(BOB), batch(&w)),
			Error::<Test>::BadSignature
		);
		assert_noop!(with(&|b| b.nonce = 1), Error::<Test>::BadBatchNonce);
		let other = MockModels::add(DAVE, PRICE_IN, PRICE_OUT, vec![(DATANET, 1)]);
		assert_noop!(with(&|b| b.model_id = other), Error::<Test>::NotModelOperator);
		assert_noop!(with(&|b| b.receipts = 0), Error::<Test>::EmptyBatch);
		assert_noop!(with(&|b| b.charges = bounded(&[])), Error::<Test>::EmptyBatch);
		assert_noop!(with(&|b| b.rates.price_out += 1), Error::<Test>::StaleRates);
		assert_noop!(with(&|b| b.rates.platform_fee = 1), Error::<Test>::StaleRates);
		assert_noop!(
			with(&|b| {
				b.charges[1].first_nonce = 3;
			}),
			Error::<Test>::InvalidNonces
		);
		assert_noop!(
			with(&|b| b.charges = charges(&[(GRACE, 1_000), (CHARLIE, 2_000)])),
			Error::<Test>::InvalidCharges
		);
		assert_noop!(
			with(&|b| b.charges = charges(&[(CHARLIE, 2_000), (GRACE, 0)])),
			Error::<Test>::InvalidCharges
		);
		assert_noop!(
			with(&|b| b.charges = charges(&[(CHARLIE, 5_001)])),
			Error::<Test>::InsufficientCredit
		);
		assert_noop!(
			with(&|b| b.charges = charges(&[(CHARLIE, 100), (EVE, 1)])),
			Error::<Test>::InsufficientCredit
		);
		assert_noop!(
			with(&|b| b.influence = bounded(&[(w.ferdie, 1_000), (w.eve1, 500)])),
			Error::<Test>::InvalidInfluence
		);
		assert_noop!(
			with(&|b| b.influence = bounded(&[(w.eve1, 0)])),
			Error::<Test>::InvalidInfluence
		);
		assert_noop!(
			with(&|b| b.influence = bounded(&[(w.eve1, 2_000), (w.ferdie, 1_001)])),
			Error::<Test>::InvalidInfluence
		);
		let outside = MockDatanets::publish(FERDIE, OTHER_DATANET, 1);
		assert_noop!(
			with(&|b| b.influence = bounded(&[(w.eve1, 500), (outside, 500)])),
			Error::<Test>::NotInLineage
		);
		assert_ok!(with(&|b| b.influence = bounded(&[(w.eve1, 2_000), (w.ferdie, 1_000)])));
	});
}

#[test]
fn credit_unlocks_after_a_delay_and_stays_chargeable_until_then() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		deposit_credits();
		assert_noop!(
			Attribution::deposit_credit(signed(POOR), 10),
			Error::<Test>::InsufficientBalance
		);
		assert_noop!(Attribution::withdraw_credit(signed(CHARLIE)), Error::<Test>::CreditLocked);
		assert_noop!(
			Attribution::unlock_credit(signed(CHARLIE), 5_001),
			Error::<Test>::CreditLocked
		);
		assert_noop!(Attribution::unlock_credit(signed(CHARLIE), 0), Error::<Test>::CreditLocked);
		assert_ok!(Attribution::unlock_credit(signed(CHARLIE), 4_000));
		assert_eq!(
			last_event(),
			Event::CreditUnlocking { who: CHARLIE, amount: 4_000, withdrawable_at: 1 + 5 }
		);
		System::set_block_number(5);
		assert_noop!(Attribution::withdraw_credit(signed(CHARLIE)), Error::<Test>::CreditLocked);
		// A batch still charges the unlocking credit.
		assert_ok!(submit_batch(batch(&w)));
		System::set_block_number(6);
		assert_ok!(Attribution::withdraw_credit(signed(CHARLIE)));
		assert_eq!(last_event(), Event::CreditWithdrawn { who: CHARLIE, amount: 3_000 });
		assert_eq!(credit_held(CHARLIE), 0);
		assert_eq!(free(CHARLIE), INITIAL_BALANCE - 2_000);
		assert!(!crate::CreditUnlocks::<Test>::contains_key(CHARLIE));
	});
}

#[test]
fn the_pool_checks_a_batch_and_the_authorized_path_settles_it() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		deposit_credits();
		let b = batch(&w);
		let signature = key_of(ALICE).sign(&b.signing_payload(&genesis())).unwrap();
		let call = Call::<Test>::submit_receipt_batch { batch: b.clone(), signature: signature.clone() };
		assert!(matches!(call.authorize(TransactionSource::External), Some(Ok(_))));
		let forged = key_of(BOB).sign(&b.signing_payload(&genesis())).unwrap();
		let bad = Call::<Test>::submit_receipt_batch { batch: b.clone(), signature: forged };
		assert_eq!(
			bad.authorize(TransactionSource::External).map(|r| r.map(|_| ())),
			Some(Err(TransactionValidityError::Invalid(InvalidTransaction::Custom(
				custom_error_index(Error::<Test>::BadSignature)
			))))
		);
		assert_ok!(Attribution::submit_receipt_batch(
			frame_system::RawOrigin::Authorized.into(),
			b,
			signature
		));
		assert_eq!(free(reward_pot()), ED + 1_500);
	});
}

// --- Batch fraud proofs ------------------------------------------------------------------------

/// A request `payer` signed for the World's model, served with `input_tokens` and
/// `output_tokens` and charged at the rates; `payer_total` is left for [`honest`] to fill.
fn leaf(w: &World, payer: AccountId, nonce: u64, input_tokens: u32, output_tokens: u32) -> BatchLeaf<Test> {
	let prompt_hash = BlakeTwo256::hash_of(&(payer, nonce));
	let adapter = MockModels::served_model(w.model).unwrap().adapter_hash;
	let message = request_payload(&genesis(), &adapter, &prompt_hash, MAX_OUTPUT_TOKENS, nonce, &MAX_FEE);
	BatchLeaf {
		payer,
		nonce,
		max_fee: MAX_FEE,
		signature: PayerSignature(payer, message),
		prompt_hash,
		max_tokens: MAX_OUTPUT_TOKENS,
		output_hash: BlakeTwo256::hash_of(&nonce),
		input_tokens,
		output_tokens,
		attestation: H256::zero(),
		fee: rates().fee(input_tokens, output_tokens),
		payer_total: 0,
	}
}

/// Three requests: CHARLIE's 1 (1 + 1 tokens: (123_457 + 234_567) / 1000 = 358) and 2 (2 + 1:
/// 481), GRACE's 1 (358).
fn three_leaves(w: &World) -> Vec<BatchLeaf<Test>> {
	vec![leaf(w, GRACE, 1, 1, 1), leaf(w, CHARLIE, 2, 2, 1), leaf(w, CHARLIE, 1, 1, 1)]
}

/// The leaves as an honest operator commits to them: by `(payer, nonce)`, with running totals,
/// and the charges they add up to.
fn honest(mut leaves: Vec<BatchLeaf<Test>>) -> (Vec<BatchLeaf<Test>>, Vec<Charge<AccountId, Balance>>) {
	leaves.sort_by_key(|l| (l.payer, l.nonce));
	let mut charges: Vec<Charge<AccountId, Balance>> = Vec::new();
	for i in 0..leaves.len() {
		let previous = i.checked_sub(1).map(|p| leaves[p].clone()).filter(|p| p.payer == leaves[i].payer);
		leaves[i].payer_total = previous.map_or(0, |p| p.payer_total) + leaves[i].fee;
		let l = &leaves[i];
		match charges.last_mut() {
			Some(c) if c.payer == l.payer => {
				c.amount = l.payer_total;
				c.last_nonce = l.nonce;
			},
			_ => charges.push(Charge { payer: l.payer, amount: l.fee, first_nonce: l.nonce, last_nonce: l.nonce }),
		}
	}
	(leaves, charges)
}

/// Settles ALICE's next batch committing to `leaves` (as they are) with `charges`.
fn settle_leaves(w: &World, leaves: &[BatchLeaf<Test>], charges: &[Charge<AccountId, Balance>]) -> u64 {
	let nonce = crate::BatchNonce::<Test>::get(ALICE);
	assert_ok!(submit_batch(ReceiptBatch {
		operator: ALICE,
		model_id: w.model,
		nonce,
		receipts_root: batch_root::<Test>(leaves),
		receipts: leaves.len() as u32,
		rates: rates(),
		charges: bounded(charges),
		influence: bounded(&[(w.eve1, 100)]),
	}));
	nonce
}

fn proven(leaves: &[BatchLeaf<Test>], index: u32) -> ProvenLeaf<Test> {
	prove_leaf::<Test>(leaves, index).expect("the index is in the batch")
}

fn seam(leaves: &[BatchLeaf<Test>], left: Option<u32>, right: Option<u32>) -> BatchFraud<Test> {
	BatchFraud::Seam { left: left.map(|i| proven(leaves, i)), right: right.map(|i| proven(leaves, i)) }
}

fn challenge_batch(
	nonce: u64,
	charges: &[Charge<AccountId, Balance>],
	fraud: BatchFraud<Test>,
) -> DispatchResult {
	Attribution::challenge_batch(signed(FERDIE), ALICE, nonce, bounded(charges), fraud)
}

#[test]
fn an_honest_batch_survives_every_fraud_proof() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		deposit_credits();
		let (leaves, charges) = honest(three_leaves(&w));
		assert_eq!(
			charges.iter().map(|c| (c.payer, c.amount, c.first_nonce, c.last_nonce)).collect::<Vec<_>>(),
			vec![(CHARLIE, 358 + 481, 1, 2), (GRACE, 358, 1, 1)]
		);
		let nonce = settle_leaves(&w, &leaves, &charges);
		assert_eq!(credit_held(CHARLIE), 5_000 - 839);
		for i in 0..3 {
			assert_noop!(
				challenge_batch(nonce, &charges, BatchFraud::Leaf(proven(&leaves, i))),
				Error::<Test>::NotFraud
			);
		}
		for (left, right) in [(None, Some(0)), (Some(0), Some(1)), (Some(1), Some(2)), (Some(2), None)] {
			assert_noop!(challenge_batch(nonce, &charges, seam(&leaves, left, right)), Error::<Test>::NotFraud);
		}
		// Proofs that prove nothing about this batch.
		assert_noop!(challenge_batch(nonce, &charges, seam(&leaves, Some(0), Some(2))), Error::<Test>::NotAdjacent);
		assert_noop!(challenge_batch(nonce, &charges, seam(&leaves, Some(1), None)), Error::<Test>::NotAdjacent);
		assert_noop!(challenge_batch(nonce, &charges, seam(&leaves, None, None)), Error::<Test>::NotAdjacent);
		let mut moved = proven(&leaves, 1);
		moved.index = 2;
		assert_noop!(challenge_batch(nonce, &charges, BatchFraud::Leaf(moved)), Error::<Test>::BadMerkleProof);
		let mut forged = proven(&leaves, 1);
		forged.leaf.fee += 1;
		assert_noop!(challenge_batch(nonce, &charges, BatchFraud::Leaf(forged)), Error::<Test>::BadMerkleProof);
		let mut restated = charges.clone();
		restated[0].amount += 1;
		assert_noop!(
			challenge_batch(nonce, &restated, BatchFraud::Leaf(proven(&leaves, 0))),
			Error::<Test>::ChargesMismatch
		);
		assert_noop!(
			challenge_batch(nonce + 1, &charges, BatchFraud::Leaf(proven(&leaves, 0))),
			Error::<Test>::NoBatch
		);
		// The payers' nonces are settled: the same requests cannot be charged again.
		assert_eq!(crate::SettledNonce::<Test>::get(CHARLIE), Some(2));
		assert_eq!(crate::SettledNonce::<Test>::get(GRACE), Some(1));
	});
}

/// Each proof's refund, slash and the batch after it.
fn assert_punished(nonce: u64, kind: FraudKind, payer: AccountId, refunded: Balance) {
	let params = DisputeConfig::<Test>::get();
	let slashed = params.slash.mul_floor(BOND - refunded);
	let to_challenger = params.winner_share.mul_floor(slashed);
	assert_eq!(
		last_event(),
		Event::BatchFraudProven { operator: ALICE, nonce, kind, payer, refunded, slashed, to_challenger }
	);
	assert_eq!(Operators::<Test>::get(ALICE).unwrap().bond, BOND - refunded - slashed);
	assert_eq!(
		Balances::balance_on_hold(&RuntimeHoldReason::Attribution(HoldReason::OperatorBond), &ALICE),
		BOND - refunded - slashed
	);
	let record = crate::Batches::<Test>::get(ALICE, nonce).unwrap();
	assert!(record.fraud_proven);
	assert_eq!((record.status, record.credits.len()), (ReceiptStatus::Final, 0));
}

#[test]
fn a_leaf_its_payer_did_not_sign_is_refunded_from_the_operators_bond() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		deposit_credits();
		let mut forged = three_leaves(&w);
		// GRACE never asked for this: the operator signed for her.
		forged[0].signature = PayerSignature(ALICE, forged[0].signature.1.clone());
		let (leaves, charges) = honest(forged);
		let nonce = settle_leaves(&w, &leaves, &charges);
		let (grace, ferdie, treasury) = (free(GRACE), free(FERDIE), free(TREASURY));
		let pool = crate::Batches::<Test>::get(ALICE, nonce).unwrap().pool;
		assert!(pool > 0);

		assert_ok!(challenge_batch(nonce, &charges, BatchFraud::Leaf(proven(&leaves, 2))));
		assert_punished(nonce, FraudKind::Unsigned, GRACE, 358);
		assert_eq!(free(GRACE), grace + 358);
		// 10 % of the 642 left: 64, half to the challenger, half and the voided pool to the
		// treasury.
		assert_eq!(free(FERDIE), ferdie + 32);
		assert_eq!(free(TREASURY), treasury + 32 + pool);
		// One proof per batch; maturity credits nothing from it.
		assert_noop!(
			challenge_batch(nonce, &charges, BatchFraud::Leaf(proven(&leaves, 2))),
			Error::<Test>::FraudAlreadyProven
		);
		mature();
		assert_eq!(Rewards::<Test>::iter().count(), 0);
	});
}

#[test]
fn an_overcharged_leaf_is_proven() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		deposit_credits();
		let mut over = three_leaves(&w);
		over[1].fee += 1;
		let (leaves, charges) = honest(over);
		let nonce = settle_leaves(&w, &leaves, &charges);
		// CHARLIE's nonce 2 is at index 1; its fee is 482 at rates that give 481.
		assert_ok!(challenge_batch(nonce, &charges, BatchFraud::Leaf(proven(&leaves, 1))));
		assert_punished(nonce, FraudKind::Overcharged, CHARLIE, 482);

		// More output than the payer allowed, at the right price, is overcharged too.
		let mut long = vec![leaf(&w, GRACE, 2, 1, MAX_OUTPUT_TOKENS + 1)];
		long[0].fee = rates().fee(1, MAX_OUTPUT_TOKENS + 1);
		let (leaves, charges) = honest(long);
		let nonce = settle_leaves(&w, &leaves, &charges);
		assert_ok!(challenge_batch(nonce, &charges, BatchFraud::Leaf(proven(&leaves, 0))));
		assert_eq!(
			crate::Batches::<Test>::get(ALICE, nonce).map(|b| b.fraud_proven),
			Some(true)
		);
	});
}

#[test]
fn a_request_settled_twice_breaks_the_order() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		deposit_credits();
		let (mut leaves, _) = honest(three_leaves(&w));
		// CHARLIE's request 2 twice: the totals and the charge agree with each other, but the
		// order cannot.
		leaves.insert(2, leaves[1].clone());
		leaves[2].payer_total = leaves[1].payer_total + leaves[2].fee;
		let charges = vec![
			Charge { payer: CHARLIE, amount: leaves[2].payer_total, first_nonce: 1, last_nonce: 2 },
			Charge { payer: GRACE, amount: 358, first_nonce: 1, last_nonce: 1 },
		];
		let nonce = settle_leaves(&w, &leaves, &charges);
		assert_noop!(challenge_batch(nonce, &charges, seam(&leaves, Some(0), Some(1))), Error::<Test>::NotFraud);
		assert_ok!(challenge_batch(nonce, &charges, seam(&leaves, Some(1), Some(2))));
		// CHARLIE paid 358 + 481 + 481 = 1_320; the bond covers 1_000 of it.
		assert_punished(nonce, FraudKind::Unordered, CHARLIE, BOND);
	});
}

#[test]
fn running_totals_and_charges_must_add_up() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		deposit_credits();
		// A total that skips the previous fee.
		let (mut leaves, mut charges) = honest(three_leaves(&w));
		leaves[1].payer_total += 100;
		charges[0].amount += 100;
		let nonce = settle_leaves(&w, &leaves, &charges);
		assert_noop!(challenge_batch(nonce, &charges, seam(&leaves, Some(1), Some(2))), Error::<Test>::NotFraud);
		assert_ok!(challenge_batch(nonce, &charges, seam(&leaves, Some(0), Some(1))));
		assert_punished(nonce, FraudKind::WrongTotal, CHARLIE, 939);
	});
	new_test_ext().execute_with(|| {
		let w = World::new();
		deposit_credits();
		// A charge above the payer's last total, at the batch's end.
		let (leaves, mut charges) = honest(three_leaves(&w));
		charges[1].amount += 1;
		let nonce = settle_leaves(&w, &leaves, &charges);
		assert_ok!(challenge_batch(nonce, &charges, seam(&leaves, Some(2), None)));
		assert_punished(nonce, FraudKind::WrongCharge, GRACE, 359);
	});
	new_test_ext().execute_with(|| {
		let w = World::new();
		deposit_credits();
		// A first nonce below the payer's first leaf's: earlier requests would look settled.
		let (leaves, mut charges) = honest(vec![leaf(&w, GRACE, 5, 1, 1)]);
		charges[0].first_nonce = 3;
		let nonce = settle_leaves(&w, &leaves, &charges);
		assert_ok!(challenge_batch(nonce, &charges, seam(&leaves, None, Some(0))));
		assert_punished(nonce, FraudKind::WrongCharge, GRACE, 358);
	});
	new_test_ext().execute_with(|| {
		let w = World::new();
		deposit_credits();
		assert_ok!(Attribution::deposit_credit(signed(EVE), 5_000));
		// EVE is charged between CHARLIE and GRACE without a leaf.
		let (leaves, mut charges) = honest(three_leaves(&w));
		assert!(CHARLIE < EVE && EVE < GRACE);
		charges.insert(1, Charge { payer: EVE, amount: 700, first_nonce: 1, last_nonce: 1 });
		let nonce = settle_leaves(&w, &leaves, &charges);
		assert_noop!(challenge_batch(nonce, &charges, seam(&leaves, Some(0), Some(1))), Error::<Test>::NotFraud);
		assert_ok!(challenge_batch(nonce, &charges, seam(&leaves, Some(1), Some(2))));
		assert_punished(nonce, FraudKind::WrongCharge, EVE, 700);
	});
}

// --- The batcher ------------------------------------------------------------------------------

/// A journal entry as the engine serves it: `payer` (its SCALE bytes as a 32-byte account) asked
/// for 1 input and `output_tokens` output tokens of `adapter`.
fn journal_entry(seq: u64, payer: AccountId, nonce: u64, adapter: H256, output_tokens: u32, weights: &[(ContributionId, Ppm)]) -> String {
	let mut account = [0u8; 32];
	account[..8].copy_from_slice(&payer.encode());
	let weights: Vec<String> =
		weights.iter().map(|(id, ppm)| format!(r#"{{"contribution":{id},"ppm":{ppm}}}"#)).collect();
	format!(
		r#"{{"seq":{seq},"account":"0x{}","nonce":{nonce},"max_fee":"{MAX_FEE}","signature":"0x{}","adapter_hash":"0x{}","prompt_hash":"0x{}","max_tokens":{MAX_OUTPUT_TOKENS},"output_hash":"0x{}","input_tokens":1,"output_tokens":{output_tokens},"method":"span","index_root":"0x{}","record_hash":"0x{}","weights":[{}]}}"#,
		hex(&account),
		hex(&[7; 64]),
		hex(adapter.as_bytes()),
		hex(&[1; 32]),
		hex(&[2; 32]),
		hex(&[3; 32]),
		hex(&[4; 32]),
		weights.join(",")
	)
}

#[test]
fn the_batcher_settles_the_engines_journal_in_one_batch() {
	with_offchain_worker(|engine, pool| {
		let w = World::new();
		UintAuthorityId::set_all_keys(vec![key_of(ALICE)]);
		deposit_credits();
		let ours = adapter_of(w.model);
		let entries = [
			journal_entry(1, GRACE, 1, ours, 1, &[(w.eve1, 1_000_000)]),
			// Left out: another operator's adapter, a nonce already used, more output than
			// max_tokens.
			journal_entry(2, CHARLIE, 1, H256::repeat_byte(0xee), 1, &[]),
			journal_entry(3, CHARLIE, 1, ours, 1, &[(w.ferdie, 600_000), (w.eve1, 400_000)]),
			journal_entry(4, CHARLIE, 1, ours, 1, &[]),
			journal_entry(5, GRACE, 2, ours, MAX_OUTPUT_TOKENS + 1, &[]),
			journal_entry(6, CHARLIE, 2, ours, 1, &[]),
		];
		let page = format!(r#"{{"entries":[{}],"last_seq":6,"settled_through":0}}"#, entries.join(","));
		expect_journal(engine, 0, &page);

		// Three receipts at (123_457 + 234_567) / 1000 = 358 each, by payer, with running
		// totals; the engine's sr25519 signatures become the mock's never-verifying one.
		let entry_leaf = |payer, nonce, weights: &[(ContributionId, Ppm)], payer_total| BatchLeaf::<Test> {
			payer,
			nonce,
			max_fee: MAX_FEE,
			signature: PayerSignature(AccountId::MAX, Vec::new()),
			prompt_hash: H256::repeat_byte(1),
			max_tokens: MAX_OUTPUT_TOKENS,
			output_hash: H256::repeat_byte(2),
			input_tokens: 1,
			output_tokens: 1,
			attestation: crate::attestation(&H256::repeat_byte(4), weights),
			fee: 358,
			payer_total,
		};
		let mut charlie_weights = [(w.ferdie, 600_000), (w.eve1, 400_000)];
		charlie_weights.sort();
		let leaves = vec![
			entry_leaf(CHARLIE, 1, &charlie_weights, 358),
			entry_leaf(CHARLIE, 2, &[], 716),
			entry_leaf(GRACE, 1, &[(w.eve1, 1_000_000)], 358),
		];
		let expected = ReceiptBatch::<Test> {
			operator: ALICE,
			model_id: w.model,
			nonce: 0,
			receipts_root: batch_root(&leaves),
			receipts: 3,
			rates: rates(),
			charges: BoundedVec::truncate_from(vec![
				Charge { payer: CHARLIE, amount: 716, first_nonce: 1, last_nonce: 2 },
				Charge { payer: GRACE, amount: 358, first_nonce: 1, last_nonce: 1 },
			]),
			// EVE's contribution: all of GRACE's 358 and 40 % of CHARLIE's first (143);
			// FERDIE's 60 % of it (214).
			influence: BoundedVec::truncate_from(vec![(w.eve1, 358 + 143), (w.ferdie, 214)]),
		};
		// Before the batch is submitted, the engine archives it with its leaves.
		let leaves_hex: Vec<String> = leaves.iter().map(|l| format!(r#""0x{}""#, hex(&l.encode()))).collect();
		let archive = format!(
			r#"{{"root":"0x{}","batch":"0x{}","leaves":[{}]}}"#,
			hex(expected.receipts_root.as_bytes()),
			hex(&expected.encode()),
			leaves_hex.join(",")
		);
		engine.0.write().expect_request(PendingRequest {
			method: "PUT".into(),
			..engine_request("http://127.0.0.1:8000/v1/batches/0", archive.into_bytes(), br#"{"nonce":0}"#)
		});
		<Attribution as Hooks<u64>>::offchain_worker(1);

		let txs = pool();
		assert_eq!(txs.len(), 1);
		let xt = Extrinsic::decode(&mut &txs[0][..]).unwrap();
		let RuntimeCall::Attribution(call) = xt.function else { panic!("not a batch") };
		let Call::submit_receipt_batch { batch, signature } = call.clone() else { panic!("not a batch") };
		assert_eq!(batch, expected);
		assert!(matches!(call.authorize(TransactionSource::Local), Some(Ok(_))));
		assert_ok!(Attribution::submit_receipt_batch(
			frame_system::RawOrigin::Authorized.into(),
			batch,
			signature
		));
		assert_eq!(credit_held(CHARLIE), 5_000 - 716);
		assert_eq!(crate::SettledNonce::<Test>::get(CHARLIE), Some(2));

		// The next block tells the engine entries through 6 are settled, then reads after them.
		System::set_block_number(2);
		engine.0.write().expect_request(engine_request(
			"http://127.0.0.1:8000/v1/journal/settled",
			br#"{"through":6}"#.to_vec(),
			br#"{"settled_through":6}"#,
		));
		expect_journal(engine, 6, r#"{"entries":[],"last_seq":6,"settled_through":6}"#);
		<Attribution as Hooks<u64>>::offchain_worker(2);
		assert_eq!(pool().len(), 1);
	});
}

// --- Disputes of batch leaves ------------------------------------------------------------------

/// The canonical record ALICE's engine returned for CHARLIE's first request: the chain only
/// hashes it, the verifiers' engines parse it.
const RECORD: &[u8] = b"the operator's canonical attribution record";
/// CHARLIE's first request, the first of `three_leaves` by `(payer, nonce)`.
const LEAF: u32 = 0;
/// Its fee, 358 (1 + 1 tokens), all shared (no platform fee): the contributors' half is 179.
const LEAF_POOL: Balance = 179;
/// The batch's pool: half of 358 + 481 + 358 = 1_197, rounded down.
const LEAF_BATCH_POOL: Balance = 598;

/// ALICE's batch of `three_leaves`, for a model BOB and HEIDI also serve, in which CHARLIE's
/// first request (prompt `PROMPT`) attests `RECORD` with EVE's first contribution alone, and
/// the batch's influence follows from it. Returns the batch's nonce and its leaves.
fn attested_batch(w: &World) -> (u64, Vec<BatchLeaf<Test>>) {
	register(BOB, &[w.model]);
	register(HEIDI, &[w.model]);
	deposit_credits();
	let (mut leaves, charges) = honest(three_leaves(w));
	let l = &mut leaves[LEAF as usize];
	assert_eq!((l.payer, l.nonce, l.fee), (CHARLIE, 1, 358));
	l.prompt_hash = BlakeTwo256::hash(PROMPT);
	l.signature = PayerSignature(
		l.payer,
		request_payload(&genesis(), &adapter_of(w.model), &l.prompt_hash, MAX_OUTPUT_TOKENS, l.nonce, &MAX_FEE),
	);
	l.attestation = w.leaf_attestation();
	let nonce = crate::BatchNonce::<Test>::get(ALICE);
	assert_ok!(submit_batch(ReceiptBatch {
		operator: ALICE,
		model_id: w.model,
		nonce,
		receipts_root: batch_root::<Test>(&leaves),
		receipts: 3,
		rates: rates(),
		charges: bounded(&charges),
		influence: bounded(&[(w.eve1, 358)]),
	}));
	let batch = crate::Batches::<Test>::get(ALICE, nonce).unwrap();
	assert_eq!((batch.pool, batch.credits.to_vec()), (LEAF_BATCH_POOL, vec![(w.eve1, EVE, LEAF_POOL)]));
	(nonce, leaves)
}

impl World {
	/// What the attested leaf commits to: `RECORD` with EVE's first contribution alone.
	fn leaf_attestation(&self) -> H256 {
		crate::attestation(&BlakeTwo256::hash(RECORD), &[(self.eve1, crate::PPM)])
	}

	/// The challenge of the attested leaf: FERDIE's contribution alone, as for receipts.
	fn leaf_challenge(&self, leaves: &[BatchLeaf<Test>]) -> crate::LeafChallenge<Test> {
		crate::LeafChallenge {
			leaf: proven(leaves, LEAF),
			prompt: bounded(PROMPT),
			record: bounded(RECORD),
			attested_weights: bounded(&[(self.eve1, crate::PPM)]),
			record_hash: claimed_record(),
			weights: bounded(&self.claimed_weights()),
		}
	}
}

fn challenge_leaf(who: AccountId, nonce: u64, challenge: crate::LeafChallenge<Test>) -> DispatchResult {
	Attribution::challenge_leaf(signed(who), ALICE, nonce, challenge)
}

/// Casts `verifier`'s vote on leaf `index` of ALICE's batch `nonce`, from `RELAYER`.
fn leaf_vote_on(nonce: u64, index: u32, verifier: AccountId, attestation: H256) -> DispatchResult {
	let signature = key_of(verifier)
		.sign(&crate::leaf_vote_payload(&genesis(), &ALICE, nonce, index, &attestation))
		.expect("UintAuthorityId signs anything");
	Attribution::vote_leaf(signed(RELAYER), ALICE, nonce, verifier, attestation, signature)
}

fn leaf_vote(nonce: u64, verifier: AccountId, attestation: H256) -> DispatchResult {
	leaf_vote_on(nonce, LEAF, verifier, attestation)
}

/// The event of the attested leaf's dispute in ALICE's batch `nonce` resolving.
fn leaf_resolved(nonce: u64, outcome: DisputeOutcome, slashed: Balance, to_winner: Balance) -> Event<Test> {
	Event::LeafDisputeResolved { operator: ALICE, nonce, index: LEAF, outcome, slashed, to_winner }
}

fn batch_credits(nonce: u64) -> Vec<(ContributionId, AccountId, Balance)> {
	crate::Batches::<Test>::get(ALICE, nonce).unwrap().credits.to_vec()
}

#[test]
fn a_leaf_challenge_holds_the_batch_and_an_overturn_pays_the_leaf_by_the_challengers_weights() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let (nonce, leaves) = attested_batch(&w);
		let grace_before = free(GRACE);
		assert_ok!(challenge_leaf(GRACE, nonce, w.leaf_challenge(&leaves)));
		assert_eq!(
			last_event(),
			Event::LeafDisputeOpened {
				operator: ALICE,
				nonce,
				index: LEAF,
				challenger: GRACE,
				verifiers: bounded(&[BOB, HEIDI]),
				deadline: 1 + DISPUTE_PARAMS.voting_period,
			}
		);
		assert_eq!(challenge_held(GRACE), CHALLENGE_BOND);
		assert_eq!(crate::Batches::<Test>::get(ALICE, nonce).unwrap().status, ReceiptStatus::Disputed);
		assert_eq!(crate::DisputesAgainst::<Test>::get(ALICE), 1);
		// One leaf of a batch at a time.
		assert_noop!(challenge_leaf(FERDIE, nonce, w.leaf_challenge(&leaves)), Error::<Test>::AlreadyDisputed);

		// The window passes: the held batch does not mature.
		let pot = free(reward_pot());
		mature();
		assert_eq!(Rewards::<Test>::iter().count(), 0);
		assert_eq!(free(reward_pot()), pot);
		assert_noop!(
			Attribution::release_rewards(signed(EVE), Settlement::Batch(ALICE, nonce)),
			Error::<Test>::NotMaturing
		);

		assert_ok!(leaf_vote(nonce, BOB, w.claimed_attestation()));
		assert_eq!(
			last_event(),
			Event::LeafVoteCast { operator: ALICE, nonce, verifier: BOB, attestation: w.claimed_attestation() }
		);
		assert!(crate::LeafDisputes::<Test>::get(ALICE, nonce).is_some());
		assert_ok!(leaf_vote(nonce, HEIDI, w.claimed_attestation()));
		assert_eq!(
			last_event(),
			leaf_resolved(nonce, DisputeOutcome::Overturned, SLASH, SLASH / 2)
		);
		assert_eq!(bond_held(ALICE), BOND - SLASH);
		assert_eq!(challenge_held(GRACE), 0);
		assert_eq!(free(GRACE), grace_before + SLASH / 2);
		assert!(crate::LeafDisputes::<Test>::get(ALICE, nonce).is_none());
		assert!(!crate::DisputesAgainst::<Test>::contains_key(ALICE));
		// The leaf's part of the pool moves from EVE's contribution to FERDIE's.
		assert_eq!(batch_credits(nonce), vec![(w.ferdie, FERDIE, LEAF_POOL)]);
		assert_eq!(crate::Batches::<Test>::get(ALICE, nonce).unwrap().status, ReceiptStatus::Maturing);

		// Its window is over: the next idle time credits it, the rest of the pool to the treasury.
		let treasury = free(TREASURY);
		Attribution::on_idle(System::block_number(), Weight::MAX);
		assert_eq!(Rewards::<Test>::get(FERDIE), LEAF_POOL);
		assert_eq!(Rewards::<Test>::get(EVE), 0);
		assert_eq!(free(TREASURY), treasury + LEAF_BATCH_POOL - LEAF_POOL);
		assert_eq!(crate::Batches::<Test>::get(ALICE, nonce).unwrap().status, ReceiptStatus::Final);
	});
}

#[test]
fn an_upheld_leaf_costs_the_challenger_its_bond_and_keeps_the_batchs_credits() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let (nonce, leaves) = attested_batch(&w);
		let (alice_before, grace_before) = (free(ALICE), free(GRACE));
		assert_ok!(challenge_leaf(GRACE, nonce, w.leaf_challenge(&leaves)));
		assert_ok!(leaf_vote(nonce, BOB, w.leaf_attestation()));
		assert_ok!(leaf_vote(nonce, HEIDI, w.leaf_attestation()));
		assert_eq!(
			last_event(),
			leaf_resolved(nonce, DisputeOutcome::Upheld, CHALLENGE_BOND, CHALLENGE_BOND / 2)
		);
		assert_eq!(free(GRACE), grace_before - CHALLENGE_BOND);
		assert_eq!(free(ALICE), alice_before + CHALLENGE_BOND / 2);
		assert_eq!(bond_held(ALICE), BOND);
		assert_eq!(batch_credits(nonce), vec![(w.eve1, EVE, LEAF_POOL)]);
		mature();
		assert_eq!(Rewards::<Test>::get(EVE), LEAF_POOL);
	});
}

#[test]
fn a_majority_for_an_inconsistent_record_slashes_the_operator_and_sends_the_leafs_part_to_the_treasury() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let (nonce, leaves) = attested_batch(&w);
		let grace_before = free(GRACE);
		assert_ok!(challenge_leaf(GRACE, nonce, w.leaf_challenge(&leaves)));
		assert_ok!(leaf_vote(nonce, BOB, crate::INCONSISTENT_RECORD));
		assert_ok!(leaf_vote(nonce, HEIDI, crate::INCONSISTENT_RECORD));
		assert_eq!(
			last_event(),
			leaf_resolved(nonce, DisputeOutcome::Rejected, SLASH, 0)
		);
		assert_eq!(free(GRACE), grace_before);
		assert_eq!(bond_held(ALICE), BOND - SLASH);
		assert!(batch_credits(nonce).is_empty());
		let treasury = free(TREASURY);
		mature();
		assert_eq!(Rewards::<Test>::iter().count(), 0);
		assert_eq!(free(TREASURY), treasury + LEAF_BATCH_POOL);
	});
}

#[test]
fn challenge_leaf_rejects_what_it_must() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let (nonce, leaves) = attested_batch(&w);
		let c = || w.leaf_challenge(&leaves);
		assert_noop!(challenge_leaf(GRACE, nonce + 1, c()), Error::<Test>::NoBatch);
		let mut elsewhere = c();
		elsewhere.leaf.index = 1;
		assert_noop!(challenge_leaf(GRACE, nonce, elsewhere), Error::<Test>::BadMerkleProof);
		let mut prompt = c();
		prompt.prompt = bounded(b"Hullo");
		assert_noop!(challenge_leaf(GRACE, nonce, prompt), Error::<Test>::PromptMismatch);
		let mut record = c();
		record.record = bounded(b"another record");
		assert_noop!(challenge_leaf(GRACE, nonce, record), Error::<Test>::RecordMismatch);
		let mut attested = c();
		attested.attested_weights = bounded(&[(w.ferdie, crate::PPM)]);
		assert_noop!(challenge_leaf(GRACE, nonce, attested), Error::<Test>::RecordMismatch);
		let mut same = c();
		same.record_hash = BlakeTwo256::hash(RECORD);
		same.weights = bounded(&[(w.eve1, crate::PPM)]);
		assert_noop!(challenge_leaf(GRACE, nonce, same), Error::<Test>::SameRecord);
		let mut partial = c();
		partial.weights = bounded(&[(w.ferdie, 1)]);
		assert_noop!(challenge_leaf(GRACE, nonce, partial), Error::<Test>::InvalidWeights);
		let outside = MockDatanets::publish(FERDIE, OTHER_DATANET, 1);
		let mut foreign = c();
		foreign.weights = bounded(&[(outside, crate::PPM)]);
		assert_noop!(challenge_leaf(GRACE, nonce, foreign), Error::<Test>::NotInLineage);
		assert_noop!(challenge_leaf(POOR, nonce, c()), Error::<Test>::InsufficientBalance);
		crate::Batches::<Test>::mutate(ALICE, nonce, |b| b.as_mut().unwrap().fraud_proven = true);
		assert_noop!(challenge_leaf(GRACE, nonce, c()), Error::<Test>::FraudAlreadyProven);
		crate::Batches::<Test>::mutate(ALICE, nonce, |b| b.as_mut().unwrap().fraud_proven = false);
		System::set_block_number(1 + DISPUTE_PARAMS.challenge_window + 1);
		assert_noop!(challenge_leaf(GRACE, nonce, c()), Error::<Test>::ChallengeWindowClosed);
	});
}

#[test]
fn leaf_votes_are_checked_and_without_a_majority_the_leaf_stands() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let (nonce, leaves) = attested_batch(&w);
		assert_ok!(challenge_leaf(GRACE, nonce, w.leaf_challenge(&leaves)));
		let claimed = w.claimed_attestation();
		assert_noop!(leaf_vote(nonce, ALICE, claimed), Error::<Test>::NotVerifier);
		assert_noop!(leaf_vote(nonce + 1, BOB, claimed), Error::<Test>::NoDispute);
		// A vote signed for another leaf of the batch is no vote on this one.
		let other_leaf = key_of(BOB)
			.sign(&crate::leaf_vote_payload(&genesis(), &ALICE, nonce, LEAF + 1, &claimed))
			.unwrap();
		assert_noop!(
			Attribution::vote_leaf(signed(RELAYER), ALICE, nonce, BOB, claimed, other_leaf),
			Error::<Test>::BadSignature
		);
		assert_ok!(leaf_vote(nonce, BOB, claimed));
		assert_noop!(leaf_vote(nonce, BOB, claimed), Error::<Test>::AlreadyVoted);
		assert_noop!(
			Attribution::resolve_leaf_dispute(signed(RELAYER), ALICE, nonce),
			Error::<Test>::VotingOpen
		);
		System::set_block_number(1 + DISPUTE_PARAMS.voting_period + 1);
		assert_noop!(leaf_vote(nonce, HEIDI, claimed), Error::<Test>::VotingClosed);
		let grace_before = free(GRACE);
		assert_ok!(Attribution::resolve_leaf_dispute(signed(RELAYER), ALICE, nonce));
		assert_eq!(
			last_event(),
			leaf_resolved(nonce, DisputeOutcome::Void, 0, 0)
		);
		assert_eq!(free(GRACE), grace_before + CHALLENGE_BOND);
		assert_eq!(bond_held(ALICE), BOND);
		assert_eq!(batch_credits(nonce), vec![(w.eve1, EVE, LEAF_POOL)]);
		// The window closed while the batch was held: it is not challenged again, and matures.
		assert_noop!(challenge_leaf(GRACE, nonce, w.leaf_challenge(&leaves)), Error::<Test>::ChallengeWindowClosed);
		assert_ok!(Attribution::release_rewards(signed(EVE), Settlement::Batch(ALICE, nonce)));
		assert_eq!(Rewards::<Test>::get(EVE), LEAF_POOL);
	});
}

#[test]
fn a_fraud_proof_during_a_leaf_dispute_voids_the_pool_and_the_dispute_only_settles_bonds() {
	new_test_ext().execute_with(|| {
		let w = World::new();
		let (nonce, leaves) = attested_batch(&w);
		assert_ok!(challenge_leaf(GRACE, nonce, w.leaf_challenge(&leaves)));
		// GRACE's leaf claims a running total one above its fee.
		let mut wrong = leaves.clone();
		wrong[2].payer_total += 1;
		let treasury = free(TREASURY);
		crate::Batches::<Test>::mutate(ALICE, nonce, |b| b.as_mut().unwrap().receipts_root = batch_root::<Test>(&wrong));
		let (_, charges) = honest(three_leaves(&w));
		assert_ok!(challenge_batch(nonce, &charges, seam(&wrong, Some(1), Some(2))));
		let batch = crate::Batches::<Test>::get(ALICE, nonce).unwrap();
		assert_eq!((batch.status, batch.credits.len()), (ReceiptStatus::Final, 0));
		assert!(free(TREASURY) >= treasury + LEAF_BATCH_POOL);
		let alice_bond = bond_held(ALICE);
		assert_ok!(leaf_vote(nonce, BOB, w.claimed_attestation()));
		assert_ok!(leaf_vote(nonce, HEIDI, w.claimed_attestation()));
		assert_eq!(bond_held(ALICE), alice_bond - alice_bond / 10);
		let batch = crate::Batches::<Test>::get(ALICE, nonce).unwrap();
		assert_eq!((batch.status, batch.credits.len()), (ReceiptStatus::Final, 0));
		mature();
		assert_eq!(Rewards::<Test>::iter().count(), 0);
	});
}

#[test]
fn a_verifiers_offchain_worker_recomputes_the_leafs_record_and_votes() {
	with_offchain_worker(|engine, pool| {
		let w = World::new();
		let (nonce, leaves) = attested_batch(&w);
		assert_ok!(challenge_leaf(GRACE, nonce, w.leaf_challenge(&leaves)));
		let body = format!(r#"{{"record":"0x{}","prompt":"Hello"}}"#, hex(RECORD)).into_bytes();
		let answer = |verdict: &str| {
			format!(
				r#"{{"verdict":"{verdict}","l1_ppm":2000000,
					"claimed":{{"record_hash":"0x{}","method":"span","adapter":"0x{}","base_model":"0x{}",
						"prompt_hash":"0x{}","output_hash":"0x{}","weights":[{{"contribution":{},"ppm":1000000}}]}},
					"recomputed":{{"record_hash":"0x{}","method":"span","index_root":"0x{}",
						"weights":[{{"contribution":{},"ppm":1000000}}]}}}}"#,
				hex(BlakeTwo256::hash(RECORD).as_bytes()),
				hex(adapter_of(w.model).as_bytes()),
				hex(&[0x44; 32]),
				hex(BlakeTwo256::hash(PROMPT).as_bytes()),
				hex(leaves[LEAF as usize].output_hash.as_bytes()),
				w.eve1,
				hex(claimed_record().as_bytes()),
				hex(&[0x11; 32]),
				w.ferdie,
			)
		};
		let uri = "http://127.0.0.1:8000/v1/attributions/verify";
		let voted = |at: usize| {
			let xt = Extrinsic::decode(&mut &pool()[at][..]).unwrap();
			let RuntimeCall::Attribution(call) = xt.function else { panic!("not a vote") };
			assert!(matches!(call.authorize(TransactionSource::Local), Some(Ok(_))));
			let Call::vote_leaf { operator, nonce: n, verifier, attestation, signature } = call else {
				panic!("not a leaf vote")
			};
			assert_eq!((operator, n), (ALICE, nonce));
			(verifier, attestation, signature)
		};

		// BOB's engine recomputes FERDIE alone from the operator's record, as GRACE said.
		UintAuthorityId::set_all_keys(vec![key_of(BOB)]);
		engine.0.write().expect_request(engine_request(uri, body.clone(), answer("weights_differ").as_bytes()));
		ocw(engine, 1);
		assert_eq!(pool().len(), 1);
		let (verifier, attestation, signature) = voted(0);
		assert_eq!((verifier, attestation), (BOB, w.claimed_attestation()));
		assert_ok!(Attribution::vote_leaf(
			frame_system::RawOrigin::Authorized.into(),
			ALICE,
			nonce,
			BOB,
			attestation,
			signature
		));

		// HEIDI's engine finds that the record's tokens are not its prompt: inconsistent.
		UintAuthorityId::set_all_keys(vec![key_of(HEIDI)]);
		engine.0.write().expect_request(engine_request(uri, body, answer("inputs_differ").as_bytes()));
		ocw(engine, 1);
		assert_eq!(pool().len(), 2);
		let (verifier, attestation, _) = voted(1);
		assert_eq!((verifier, attestation), (HEIDI, crate::INCONSISTENT_RECORD));
	});
}

#[test]
fn the_offchain_worker_sends_the_operator_token_with_every_engine_call() {
	with_offchain_worker(|engine, pool| {
		World::new();
		UintAuthorityId::set_all_keys(vec![key_of(ALICE)]);
		sp_io::offchain::local_storage_set(
			StorageKind::PERSISTENT,
			crate::offchain::ENGINE_TOKEN_KEY,
			b" 0123456789abcdef-operator\n",
		);
		let uri = format!("{}/v1/journal?after=0&limit=1024", crate::offchain::engine_url());
		engine.0.write().expect_request(PendingRequest {
			method: "GET".into(),
			uri,
			headers: vec![("Authorization".into(), "Bearer 0123456789abcdef-operator".into())],
			response: Some(br#"{"entries":[],"last_seq":0,"settled_through":0}"#.to_vec()),
			sent: true,
			..Default::default()
		});
		<Attribution as Hooks<u64>>::offchain_worker(1);
		assert!(pool().is_empty());
	});
}

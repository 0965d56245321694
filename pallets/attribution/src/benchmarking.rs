//! Benchmarks for `pallet_attribution`: each call in its most expensive case (full operator lists
//! on every model touched, the longest prompt and output, a receipt weighing `k` contributions of
//! contributors that have no reward balance yet, and a model owner that is paid).
//!
//! `T::Models::register_for_benchmark` and `T::Datanets::publish_for_benchmark` set up the models
//! and their lineage; operator keys come from `T::OperatorKey::generate_pair`, which needs the
//! keystore the benchmark CLI provides (the mock's `UintAuthorityId` needs none).

use super::*;
use alloc::{vec, vec::Vec};
use frame_benchmarking::v2::*;
use frame_support::{
	pallet_prelude::{Authorize, TransactionSource},
	traits::{
		fungible::{Inspect, Mutate},
		EnsureOrigin, Get,
	},
	BoundedVec,
};
use frame_system::RawOrigin;
use pallet_datanets::{ContributionId, DatanetsInspect};
use pallet_model_registry::{LineageEntry, ModelId, ModelsInspect};
use sp_core::H256;
use sp_runtime::{
	traits::{BlakeTwo256, Bounded, Hash, One, Saturating, Zero},
	Perbill, RuntimeAppPublic,
};

/// Enough for every bond and escrow a benchmark takes, without approaching the issuance limit.
fn rich<T: Config>() -> BalanceOf<T> {
	BalanceOf::<T>::max_value() / 1_000_000u32.into()
}

fn funded<T: Config>(name: &'static str, index: u32) -> T::AccountId {
	let who: T::AccountId = account(name, index, 0);
	T::Currency::set_balance(&who, rich::<T>());
	who
}

/// A price per 1,000 tokens at which every part of a fee, and every contributor's share of it,
/// is well above zero.
fn price<T: Config>() -> BalanceOf<T> {
	T::Currency::minimum_balance().max(One::one()).saturating_mul(1_000_000u32.into())
}

/// The treasury, the staking pot and the reward pot must exist (genesis funds them).
fn fund_pots<T: Config>() {
	let ed = T::Currency::minimum_balance();
	for pot in [T::Treasury::get(), T::StakingPot::get(), Pallet::<T>::reward_pot()] {
		if T::Currency::balance(&pot) < ed {
			T::Currency::set_balance(&pot, ed);
		}
	}
}

/// Fills `model_id`'s operator list with accounts that are not operators, leaving one place.
fn fill_operators<T: Config>(model_id: ModelId) {
	let others: Vec<T::AccountId> =
		(1..T::MaxOperatorsPerModel::get()).map(|i| account("other operator", i, 0)).collect();
	ModelOperators::<T>::insert(model_id, BoundedVec::truncate_from(others));
}

/// `n` active models, each with a full operator list but for one place.
fn models<T: Config>(n: u32) -> BoundedVec<ModelId, T::MaxModelsPerOperator> {
	let owner = funded::<T>("model owner", 0);
	let ids: Vec<ModelId> = (0..n)
		.map(|_| {
			let id = T::Models::register_for_benchmark(owner.clone(), vec![], price::<T>());
			fill_operators::<T>(id);
			id
		})
		.collect();
	BoundedVec::truncate_from(ids)
}

/// Registers `who` serving `models`; returns its key.
fn register<T: Config>(
	who: &T::AccountId,
	models: BoundedVec<ModelId, T::MaxModelsPerOperator>,
) -> T::OperatorKey {
	let key = T::OperatorKey::generate_pair(None);
	Pallet::<T>::register_operator(RawOrigin::Signed(who.clone()).into(), key.clone(), models)
		.expect("a funded operator registers");
	key
}

fn full<S: Get<u32>>(byte: u8) -> BoundedVec<u8, S> {
	BoundedVec::truncate_from(vec![byte; S::get() as usize])
}

/// The most lineage entries a model keeps: `register_for_benchmark` truncates to the registry's
/// bound, which this pallet cannot name, so a probe model tells.
fn lineage_cap<T: Config>(owner: &T::AccountId) -> u32 {
	let probe: Vec<LineageEntry> =
		(0..T::MaxWeights::get()).map(|i| (u32::MAX - i, 1)).collect();
	let id = T::Models::register_for_benchmark(owner.clone(), probe, price::<T>());
	T::Models::served_model(id).map_or(1, |m| m.lineage.len() as u32).max(1)
}

/// `k` published contributions, spread over as many datanets (each with its own contributor,
/// who has no reward balance yet) as a model's lineage may hold; the lineage covering them.
fn contributions<T: Config>(
	owner: &T::AccountId,
	k: u32,
) -> (Vec<LineageEntry>, Vec<ContributionId>, Vec<T::AccountId>) {
	let datanets = k.min(lineage_cap::<T>(owner));
	let mut lineage = Vec::new();
	let mut ids = Vec::new();
	let mut contributors = Vec::new();
	for d in 0..datanets {
		let contributor = funded::<T>("contributor", d);
		// The first `k % datanets` datanets take one contribution more.
		let count = k / datanets + if d < k % datanets { 1 } else { 0 };
		let (datanet_id, version, mut published) =
			T::Datanets::publish_for_benchmark(owner.clone(), contributor.clone(), count, false);
		lineage.push((datanet_id, version));
		ids.append(&mut published);
		contributors.push(contributor);
	}
	ids.sort();
	(lineage, ids, contributors)
}

/// `k` positive weights summing to `PPM`.
fn weights(ids: &[ContributionId]) -> Vec<(ContributionId, Ppm)> {
	let k = ids.len() as u32;
	ids.iter()
		.enumerate()
		.map(|(i, id)| (*id, PPM / k + if i == 0 { PPM % k } else { 0 }))
		.collect()
}

/// An open request with the longest prompt, for a model trained on `k` contributions, and its
/// assigned operator's signed receipt weighing all of them, with the longest output.
fn signed_receipt<T: Config>(
	k: u32,
) -> Result<
	(Receipt<T>, <T::OperatorKey as RuntimeAppPublic>::Signature, Vec<T::AccountId>),
	BenchmarkError,
> {
	fund_pots::<T>();
	let owner = funded::<T>("model owner", 0);
	let (lineage, ids, contributors) = contributions::<T>(&owner, k);
	let model_id = T::Models::register_for_benchmark(owner, lineage, price::<T>());
	let operator = funded::<T>("operator", 0);
	let key = register::<T>(&operator, BoundedVec::truncate_from(vec![model_id]));
	let requester = funded::<T>("requester", 0);
	let prompt: BoundedVec<u8, T::MaxPromptLength> = full(b'p');
	let model = T::Models::served_model(model_id).ok_or("the model is registered")?;
	let input_tokens = Pallet::<T>::max_input_tokens(prompt.len());
	let output_tokens = T::MaxOutputTokens::get();
	let max_fee = Pallet::<T>::fee(&model, input_tokens, output_tokens);
	let request_id = NextRequestId::<T>::get();
	Pallet::<T>::request_inference(
		RawOrigin::Signed(requester).into(),
		model_id,
		prompt.clone(),
		output_tokens,
		max_fee,
	)?;
	let output: BoundedVec<u8, T::MaxOutputLength> = full(b'o');
	let receipt = Receipt::<T> {
		request_id,
		operator,
		model_id,
		adapter_hash: model.adapter_hash,
		prompt_hash: BlakeTwo256::hash(&prompt),
		output_hash: BlakeTwo256::hash(&output),
		input_tokens,
		output_tokens,
		method: AttributionMethod::Span,
		index_root: H256::repeat_byte(1),
		record_hash: H256::repeat_byte(2),
		weights: BoundedVec::truncate_from(weights(&ids)),
		output,
	};
	let genesis = Pallet::<T>::genesis_hash();
	let signature = key.sign(&receipt.signing_payload(&genesis)).ok_or("the key signs")?;
	Ok((receipt, signature, contributors))
}

/// A settled receipt weighing `k` contributions, and their contributors.
fn settled<T: Config>(k: u32) -> Result<(RequestId, Vec<T::AccountId>), BenchmarkError> {
	let (receipt, signature, contributors) = signed_receipt::<T>(k)?;
	let request_id = receipt.request_id;
	let relayer: T::AccountId = whitelisted_caller();
	Pallet::<T>::submit_receipt(RawOrigin::Signed(relayer).into(), receipt, signature)?;
	Ok((request_id, contributors))
}

/// Registers `v` more operators of `model_id`, who verify its disputes; returns their keys.
fn verifiers<T: Config>(model_id: ModelId, v: u32) -> Vec<(T::AccountId, T::OperatorKey)> {
	(0..v)
		.map(|i| {
			let who = funded::<T>("verifier", i);
			let key = register::<T>(&who, BoundedVec::truncate_from(vec![model_id]));
			(who, key)
		})
		.collect()
}

/// The receipt's own contributions with the same weights: with another record hash, the
/// record a challenger claims.
fn claimed_weights<T: Config>(
	request_id: RequestId,
) -> Result<BoundedVec<(ContributionId, Ppm), T::MaxWeights>, BenchmarkError> {
	let record = Receipts::<T>::get(request_id).ok_or("the receipt is settled")?;
	let mut ids: Vec<ContributionId> = record.credits.iter().map(|(id, _, _)| *id).collect();
	ids.sort();
	Ok(BoundedVec::truncate_from(weights(&ids)))
}

/// A receipt weighing `k` contributions, challenged, with `v` verifiers; their keys.
fn disputed<T: Config>(
	k: u32,
	v: u32,
) -> Result<(RequestId, Vec<(T::AccountId, T::OperatorKey)>), BenchmarkError> {
	let (request_id, _) = settled::<T>(k)?;
	let record = Receipts::<T>::get(request_id).ok_or("the receipt is settled")?;
	let keys = verifiers::<T>(record.model_id, v);
	let weights = claimed_weights::<T>(request_id)?;
	let challenger = funded::<T>("challenger", 0);
	Pallet::<T>::challenge(
		RawOrigin::Signed(challenger).into(),
		request_id,
		full(b'p'),
		H256::repeat_byte(3),
		weights,
	)?;
	Ok((request_id, keys))
}

/// `verifier`'s signed vote for the challenger's record.
fn ballot<T: Config>(
	request_id: RequestId,
	(verifier, key): &(T::AccountId, T::OperatorKey),
) -> Result<(T::AccountId, H256, <T::OperatorKey as RuntimeAppPublic>::Signature), BenchmarkError> {
	let dispute = Disputes::<T>::get(request_id).ok_or("the dispute is open")?;
	let attestation = attestation(&dispute.claimed_record_hash, &dispute.claimed_weights);
	let genesis = Pallet::<T>::genesis_hash();
	let signature =
		key.sign(&vote_payload(&genesis, request_id, &attestation)).ok_or("the key signs")?;
	Ok((verifier.clone(), attestation, signature))
}

/// An operator's first batch for a model trained on `c` contributions: `p` payers with credit,
/// each charged the same, and every contribution weighing a part of the shared fee; signed.
fn signed_batch<T: Config>(
	p: u32,
	c: u32,
) -> Result<(ReceiptBatch<T>, <T::OperatorKey as RuntimeAppPublic>::Signature), BenchmarkError> {
	fund_pots::<T>();
	let owner = funded::<T>("model owner", 0);
	let (lineage, ids, _) = contributions::<T>(&owner, c);
	let model_id = T::Models::register_for_benchmark(owner, lineage, price::<T>());
	let rates = Pallet::<T>::rates(&T::Models::served_model(model_id).ok_or("the model is served")?);
	let operator = funded::<T>("operator", 0);
	let key = register::<T>(&operator, BoundedVec::truncate_from(vec![model_id]));
	let charge = price::<T>();
	let mut payers: Vec<T::AccountId> = (0..p)
		.map(|i| {
			let payer = funded::<T>("payer", i);
			Pallet::<T>::deposit_credit(RawOrigin::Signed(payer.clone()).into(), charge)
				.expect("a funded payer deposits");
			payer
		})
		.collect();
	payers.sort();
	let receipts = p.saturating_mul(10);
	let platform = FeeParams::<T>::get().platform_fee.saturating_mul(receipts.into());
	let charge_total = charge.saturating_mul(p.into());
	let each = charge_total.saturating_sub(platform) / c.max(1).into();
	let batch = ReceiptBatch::<T> {
		operator,
		model_id,
		nonce: 0,
		receipts_root: H256::repeat_byte(5),
		receipts,
		rates,
		charges: BoundedVec::truncate_from(
			payers
				.into_iter()
				.map(|payer| Charge { payer, amount: charge, first_nonce: 0, last_nonce: 9 })
				.collect(),
		),
		influence: BoundedVec::truncate_from(ids.into_iter().map(|id| (id, each)).collect()),
	};
	let genesis = Pallet::<T>::genesis_hash();
	let signature = key.sign(&batch.signing_payload(&genesis)).ok_or("the key signs")?;
	Ok((batch, signature))
}

/// An operator's settled batch of one receipt from each of `p` payers but the highest, which is
/// charged without one when `leafless`. The receipt of `T::BenchmarkHelper`'s payer, one of
/// them, is truly signed and overcharged by one. Returns the operator, the leaves, the charges
/// and the signed leaf's index.
fn settled_leaves<T: Config>(
	p: u32,
	leafless: bool,
) -> Result<(T::AccountId, Vec<BatchLeaf<T>>, Vec<Charge<T::AccountId, BalanceOf<T>>>, u32), BenchmarkError> {
	fund_pots::<T>();
	let owner = funded::<T>("model owner", 0);
	let (lineage, _, _) = contributions::<T>(&owner, 1);
	let model_id = T::Models::register_for_benchmark(owner, lineage, price::<T>());
	let model = T::Models::served_model(model_id).ok_or("the model is served")?;
	let rates = Pallet::<T>::rates(&model);
	let operator = funded::<T>("operator", 0);
	let key = register::<T>(&operator, BoundedVec::truncate_from(vec![model_id]));
	let genesis = Pallet::<T>::genesis_hash();

	let fee = rates.fee(1, 1);
	let max_fee = fee.saturating_mul(2u32.into());
	let message = request_payload(&genesis, &model.adapter_hash, &H256::zero(), 1, 1, &max_fee);
	let (signer, signature) = T::BenchmarkHelper::sign_request(&message);
	T::Currency::set_balance(&signer, rich::<T>());
	let mut payers: Vec<T::AccountId> =
		core::iter::once(signer.clone()).chain((1..p).map(|i| funded::<T>("payer", i))).collect();
	payers.sort();
	let with_leaves = if leafless { p.saturating_sub(1) } else { p } as usize;
	let leaves: Vec<BatchLeaf<T>> = payers[..with_leaves]
		.iter()
		.map(|payer| {
			let fee = if *payer == signer { fee.saturating_add(One::one()) } else { fee };
			BatchLeaf {
				payer: payer.clone(),
				nonce: 1,
				max_fee,
				signature: signature.clone(),
				prompt_hash: H256::zero(),
				max_tokens: 1,
				output_hash: H256::zero(),
				input_tokens: 1,
				output_tokens: 1,
				attestation: H256::zero(),
				fee,
				payer_total: fee,
			}
		})
		.collect();
	let charges: Vec<Charge<T::AccountId, BalanceOf<T>>> = payers
		.iter()
		.map(|payer| {
			Pallet::<T>::deposit_credit(RawOrigin::Signed(payer.clone()).into(), price::<T>())
				.expect("a funded payer deposits");
			let amount = leaves.iter().find(|l| &l.payer == payer).map_or(fee, |l| l.fee);
			Charge { payer: payer.clone(), amount, first_nonce: 1, last_nonce: 1 }
		})
		.collect();
	let batch = ReceiptBatch::<T> {
		operator: operator.clone(),
		model_id,
		nonce: 0,
		receipts_root: fraud::batch_root(&leaves),
		receipts: leaves.len() as u32,
		rates,
		charges: BoundedVec::truncate_from(charges.clone()),
		influence: BoundedVec::new(),
	};
	let batch_signature = key.sign(&batch.signing_payload(&genesis)).ok_or("the key signs")?;
	Pallet::<T>::submit_receipt_batch(
		RawOrigin::Signed(whitelisted_caller()).into(),
		batch,
		batch_signature,
	)?;
	let signed_index = payers.iter().position(|p| *p == signer).unwrap_or(0) as u32;
	Ok((operator, leaves, charges, signed_index))
}

/// An operator's settled batch of one leaf, for a model trained on `MaxBatchContributions`
/// contributions (at least `k`), all of them credited: the leaf has the longest prompt and
/// attests a record of `r` bytes with `k` weights. Returns the operator, a challenge of the leaf
/// claiming another record with the last `k` contributions, and the model.
fn attested_leaf<T: Config>(
	k: u32,
	r: u32,
) -> Result<(T::AccountId, LeafChallenge<T>, ModelId), BenchmarkError> {
	fund_pots::<T>();
	let owner = funded::<T>("model owner", 0);
	let (lineage, ids, _) = contributions::<T>(&owner, T::MaxBatchContributions::get().max(k));
	let model_id = T::Models::register_for_benchmark(owner, lineage, price::<T>());
	let model = T::Models::served_model(model_id).ok_or("the model is served")?;
	let rates = Pallet::<T>::rates(&model);
	let operator = funded::<T>("operator", 0);
	let key = register::<T>(&operator, BoundedVec::truncate_from(vec![model_id]));
	let genesis = Pallet::<T>::genesis_hash();

	let prompt: BoundedVec<u8, T::MaxPromptLength> = full(b'p');
	let prompt_hash = BlakeTwo256::hash(&prompt);
	let record: BoundedVec<u8, T::MaxRecordLength> =
		BoundedVec::truncate_from(vec![b'r'; r as usize]);
	let attested_weights = BoundedVec::truncate_from(weights(&ids[..k as usize]));
	let fee = rates.fee(1, 1);
	let max_fee = fee.saturating_mul(2u32.into());
	let message = request_payload(&genesis, &model.adapter_hash, &prompt_hash, 1, 1, &max_fee);
	let (payer, signature) = T::BenchmarkHelper::sign_request(&message);
	T::Currency::set_balance(&payer, rich::<T>());
	Pallet::<T>::deposit_credit(RawOrigin::Signed(payer.clone()).into(), price::<T>())?;
	let leaf = BatchLeaf::<T> {
		payer: payer.clone(),
		nonce: 1,
		max_fee,
		signature,
		prompt_hash,
		max_tokens: 1,
		output_hash: H256::zero(),
		input_tokens: 1,
		output_tokens: 1,
		attestation: attestation(&BlakeTwo256::hash(&record), &attested_weights),
		fee,
		payer_total: fee,
	};
	let each = fee.saturating_sub(rates.platform_fee) / (ids.len() as u32).into();
	let batch = ReceiptBatch::<T> {
		operator: operator.clone(),
		model_id,
		nonce: 0,
		receipts_root: fraud::batch_root(&[leaf.clone()]),
		receipts: 1,
		rates,
		charges: BoundedVec::truncate_from(vec![Charge {
			payer,
			amount: fee,
			first_nonce: 1,
			last_nonce: 1,
		}]),
		influence: BoundedVec::truncate_from(ids.iter().map(|id| (*id, each)).collect()),
	};
	let batch_signature = key.sign(&batch.signing_payload(&genesis)).ok_or("the key signs")?;
	Pallet::<T>::submit_receipt_batch(
		RawOrigin::Signed(whitelisted_caller()).into(),
		batch,
		batch_signature,
	)?;
	let challenge = LeafChallenge {
		leaf: fraud::prove_leaf(&[leaf], 0).ok_or("in the batch")?,
		prompt,
		record,
		attested_weights,
		record_hash: H256::repeat_byte(3),
		weights: BoundedVec::truncate_from(weights(&ids[ids.len() - k as usize..])),
	};
	Ok((operator, challenge, model_id))
}

/// A leaf attesting the longest record with `k` weights, challenged, with `v` verifiers; their
/// keys and the operator.
fn disputed_leaf<T: Config>(
	k: u32,
	v: u32,
) -> Result<(T::AccountId, Vec<(T::AccountId, T::OperatorKey)>), BenchmarkError> {
	let (operator, leaf_challenge, model_id) = attested_leaf::<T>(k, T::MaxRecordLength::get())?;
	let keys = verifiers::<T>(model_id, v);
	let challenger = funded::<T>("challenger", 0);
	Pallet::<T>::challenge_leaf(RawOrigin::Signed(challenger).into(), operator.clone(), 0, leaf_challenge)?;
	Ok((operator, keys))
}

/// `verifier`'s signed vote for the leaf challenger's record.
fn leaf_ballot<T: Config>(
	operator: &T::AccountId,
	(verifier, key): &(T::AccountId, T::OperatorKey),
) -> Result<(T::AccountId, H256, <T::OperatorKey as RuntimeAppPublic>::Signature), BenchmarkError> {
	let leaf = LeafDisputes::<T>::get(operator, 0).ok_or("the dispute is open")?;
	let attestation = attestation(&leaf.dispute.claimed_record_hash, &leaf.dispute.claimed_weights);
	let payload = leaf_vote_payload(&Pallet::<T>::genesis_hash(), operator, 0, leaf.index, &attestation);
	let signature = key.sign(&payload).ok_or("the key signs")?;
	Ok((verifier.clone(), attestation, signature))
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn register_operator(n: Linear<1, { T::MaxModelsPerOperator::get() }>) {
		let models = models::<T>(n);
		let operator = funded::<T>("operator", 0);
		let key = T::OperatorKey::generate_pair(None);
		#[extrinsic_call]
		_(RawOrigin::Signed(operator.clone()), key.clone(), models.clone());
		assert_eq!(OperatorByKey::<T>::get(&key), Some(operator.clone()));
		for model_id in models {
			assert_eq!(ModelOperators::<T>::get(model_id).last(), Some(&operator));
		}
	}

	#[benchmark]
	fn set_operator_models(
		o: Linear<1, { T::MaxModelsPerOperator::get() }>,
		n: Linear<1, { T::MaxModelsPerOperator::get() }>,
	) {
		let operator = funded::<T>("operator", 0);
		register::<T>(&operator, models::<T>(o));
		let new_models = models::<T>(n);
		#[extrinsic_call]
		_(RawOrigin::Signed(operator.clone()), new_models.clone());
		assert_eq!(Operators::<T>::get(&operator).map(|i| i.models), Some(new_models));
	}

	#[benchmark]
	fn unbond(n: Linear<1, { T::MaxModelsPerOperator::get() }>) {
		let operator = funded::<T>("operator", 0);
		let models = models::<T>(n);
		register::<T>(&operator, models.clone());
		#[extrinsic_call]
		_(RawOrigin::Signed(operator.clone()));
		assert!(Operators::<T>::get(&operator).and_then(|i| i.unbonding_at).is_some());
		for model_id in models {
			assert!(!ModelOperators::<T>::get(model_id).contains(&operator));
		}
	}

	#[benchmark]
	fn withdraw_bond() {
		let operator = funded::<T>("operator", 0);
		let key = register::<T>(&operator, models::<T>(1));
		Pallet::<T>::unbond(RawOrigin::Signed(operator.clone()).into())
			.expect("the operator unbonds");
		let at = frame_system::Pallet::<T>::block_number().saturating_add(T::UnbondingDelay::get());
		frame_system::Pallet::<T>::set_block_number(at);
		#[extrinsic_call]
		_(RawOrigin::Signed(operator.clone()));
		assert!(Operators::<T>::get(&operator).is_none());
		assert!(OperatorByKey::<T>::get(&key).is_none());
	}

	#[benchmark]
	fn request_inference(p: Linear<1, { T::MaxPromptLength::get() }>) -> Result<(), BenchmarkError> {
		let models = models::<T>(1);
		let model_id = models[0];
		register::<T>(&funded::<T>("operator", 0), models);
		let requester = funded::<T>("requester", 0);
		let prompt: BoundedVec<u8, T::MaxPromptLength> =
			BoundedVec::truncate_from(vec![b'p'; p as usize]);
		let model = T::Models::served_model(model_id).ok_or("the model is registered")?;
		let output_tokens = T::MaxOutputTokens::get();
		let max_fee =
			Pallet::<T>::fee(&model, Pallet::<T>::max_input_tokens(p as usize), output_tokens);
		let request_id = NextRequestId::<T>::get();
		#[extrinsic_call]
		_(RawOrigin::Signed(requester.clone()), model_id, prompt, output_tokens, max_fee);
		assert_eq!(Requests::<T>::get(request_id).map(|r| r.requester), Some(requester));
		Ok(())
	}

	#[benchmark]
	fn submit_receipt(k: Linear<1, { T::MaxWeights::get() }>) -> Result<(), BenchmarkError> {
		let (receipt, signature, contributors) = signed_receipt::<T>(k)?;
		let request_id = receipt.request_id;
		let relayer: T::AccountId = whitelisted_caller();
		#[extrinsic_call]
		_(RawOrigin::Signed(relayer), receipt, signature);
		assert!(Requests::<T>::get(request_id).is_none());
		let credited: Vec<T::AccountId> = Receipts::<T>::get(request_id)
			.ok_or("the receipt is settled")?
			.credits
			.into_iter()
			.map(|(_, who, _)| who)
			.collect();
		for contributor in contributors {
			assert!(credited.contains(&contributor));
		}
		Ok(())
	}

	#[benchmark]
	fn authorize_submit_receipt(
		k: Linear<1, { T::MaxWeights::get() }>,
	) -> Result<(), BenchmarkError> {
		let (receipt, signature, _) = signed_receipt::<T>(k)?;
		let call = Call::<T>::submit_receipt { receipt, signature };
		#[block]
		{
			call.authorize(TransactionSource::External)
				.ok_or("submit_receipt must give some authorization")??;
		}
		Ok(())
	}

	#[benchmark]
	fn refund() -> Result<(), BenchmarkError> {
		let (receipt, _, _) = signed_receipt::<T>(1)?;
		let request_id = receipt.request_id;
		let deadline = Requests::<T>::get(request_id).ok_or("the request is open")?.deadline;
		frame_system::Pallet::<T>::set_block_number(deadline.saturating_add(One::one()));
		let caller: T::AccountId = whitelisted_caller();
		#[extrinsic_call]
		_(RawOrigin::Signed(caller), request_id);
		assert!(Requests::<T>::get(request_id).is_none());
		assert!(!Assigned::<T>::contains_key(&receipt.operator, request_id));
		Ok(())
	}

	#[benchmark]
	fn claim_rewards() {
		fund_pots::<T>();
		let ed = T::Currency::minimum_balance();
		let amount = price::<T>();
		T::Currency::set_balance(&Pallet::<T>::reward_pot(), ed.saturating_add(amount));
		// A claimant with no account yet: the claim creates it.
		let who: T::AccountId = account("contributor", 0, 0);
		Rewards::<T>::insert(&who, amount);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));
		assert_eq!(T::Currency::balance(&who), amount);
		assert!(!Rewards::<T>::contains_key(&who));
	}

	#[benchmark]
	fn release_rewards(k: Linear<1, { T::MaxWeights::get() }>) -> Result<(), BenchmarkError> {
		let (request_id, contributors) = settled::<T>(k)?;
		let window = DisputeConfig::<T>::get().challenge_window;
		frame_system::Pallet::<T>::set_block_number(
			frame_system::Pallet::<T>::block_number().saturating_add(window).saturating_add(One::one()),
		);
		let caller: T::AccountId = whitelisted_caller();
		#[extrinsic_call]
		_(RawOrigin::Signed(caller), Settlement::Receipt(request_id));
		for contributor in contributors {
			assert!(!Rewards::<T>::get(&contributor).is_zero());
		}
		Ok(())
	}

	#[benchmark]
	fn challenge(
		k: Linear<1, { T::MaxWeights::get() }>,
		v: Linear<1, { T::MaxOperatorsPerModel::get() - 1 }>,
	) -> Result<(), BenchmarkError> {
		let (request_id, _) = settled::<T>(k)?;
		let record = Receipts::<T>::get(request_id).ok_or("the receipt is settled")?;
		verifiers::<T>(record.model_id, v);
		let weights = claimed_weights::<T>(request_id)?;
		let challenger = funded::<T>("challenger", 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(challenger), request_id, full(b'p'), H256::repeat_byte(3), weights);
		assert_eq!(Disputes::<T>::get(request_id).map(|d| d.verifiers.len() as u32), Some(v));
		Ok(())
	}

	/// A vote that leaves the dispute open: the first of `v ≥ 2` verifiers.
	#[benchmark]
	fn vote(v: Linear<2, { T::MaxOperatorsPerModel::get() - 1 }>) -> Result<(), BenchmarkError> {
		let (request_id, keys) = disputed::<T>(T::MaxWeights::get(), v)?;
		let (verifier, attestation, signature) = ballot::<T>(request_id, &keys[0])?;
		let relayer: T::AccountId = whitelisted_caller();
		#[extrinsic_call]
		_(RawOrigin::Signed(relayer), request_id, verifier, attestation, signature);
		assert!(Disputes::<T>::get(request_id).is_some_and(|d| d.votes[0].is_some()));
		Ok(())
	}

	#[benchmark]
	fn authorize_vote(v: Linear<2, { T::MaxOperatorsPerModel::get() - 1 }>) -> Result<(), BenchmarkError> {
		let (request_id, keys) = disputed::<T>(T::MaxWeights::get(), v)?;
		let (verifier, attestation, signature) = ballot::<T>(request_id, &keys[0])?;
		let call = Call::<T>::vote { request_id, verifier, attestation, signature };
		#[block]
		{
			call.authorize(TransactionSource::External)
				.ok_or("vote must give some authorization")??;
		}
		Ok(())
	}

	/// The most expensive resolution: overturned, slashing the operator and crediting `k`
	/// contributions by the challenger's weights.
	#[benchmark]
	fn resolve_dispute(k: Linear<1, { T::MaxWeights::get() }>) -> Result<(), BenchmarkError> {
		let (request_id, _) = disputed::<T>(k, 1)?;
		let mut dispute = Disputes::<T>::get(request_id).ok_or("the dispute is open")?;
		dispute.votes[0] =
			Some(attestation(&dispute.claimed_record_hash, &dispute.claimed_weights));
		let deadline = dispute.deadline;
		Disputes::<T>::insert(request_id, dispute);
		frame_system::Pallet::<T>::set_block_number(deadline.saturating_add(One::one()));
		let caller: T::AccountId = whitelisted_caller();
		#[extrinsic_call]
		_(RawOrigin::Signed(caller), request_id);
		assert!(Disputes::<T>::get(request_id).is_none());
		assert_eq!(
			Receipts::<T>::get(request_id).map(|r| r.status),
			Some(ReceiptStatus::Final)
		);
		Ok(())
	}

	#[benchmark]
	fn set_dispute_params() -> Result<(), BenchmarkError> {
		let origin =
			T::AdminOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
		let mut params = DisputeConfig::<T>::get();
		params.voting_period = params.voting_period.saturating_add(One::one());
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, params);
		assert_eq!(DisputeConfig::<T>::get(), params);
		Ok(())
	}

	#[benchmark]
	fn submit_receipt_batch(
		p: Linear<1, { T::MaxBatchPayers::get() }>,
		c: Linear<1, { T::MaxBatchContributions::get() }>,
	) -> Result<(), BenchmarkError> {
		let (batch, signature) = signed_batch::<T>(p, c)?;
		let operator = batch.operator.clone();
		let relayer: T::AccountId = whitelisted_caller();
		#[extrinsic_call]
		_(RawOrigin::Signed(relayer), batch, signature);
		assert_eq!(BatchNonce::<T>::get(&operator), 1);
		Ok(())
	}

	#[benchmark]
	fn authorize_submit_receipt_batch(
		p: Linear<1, { T::MaxBatchPayers::get() }>,
		c: Linear<1, { T::MaxBatchContributions::get() }>,
	) -> Result<(), BenchmarkError> {
		let (batch, signature) = signed_batch::<T>(p, c)?;
		let call = Call::<T>::submit_receipt_batch { batch, signature };
		#[block]
		{
			call.authorize(TransactionSource::External)
				.ok_or("submit_receipt_batch must give some authorization")??;
		}
		Ok(())
	}

	#[benchmark]
	fn release_batch_rewards(c: Linear<1, { T::MaxBatchContributions::get() }>) -> Result<(), BenchmarkError> {
		let (batch, signature) = signed_batch::<T>(1, c)?;
		let operator = batch.operator.clone();
		let relayer: T::AccountId = whitelisted_caller();
		Pallet::<T>::submit_receipt_batch(RawOrigin::Signed(relayer.clone()).into(), batch, signature)?;
		let window = DisputeConfig::<T>::get().challenge_window;
		frame_system::Pallet::<T>::set_block_number(
			frame_system::Pallet::<T>::block_number().saturating_add(window).saturating_add(One::one()),
		);
		#[extrinsic_call]
		release_rewards(RawOrigin::Signed(relayer), Settlement::Batch(operator.clone(), 0));
		assert_eq!(Batches::<T>::get(&operator, 0).map(|b| b.status), Some(ReceiptStatus::Final));
		Ok(())
	}

	#[benchmark]
	fn deposit_credit() {
		let who = funded::<T>("payer", 0);
		let amount = price::<T>();
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), amount);
		assert_eq!(Pallet::<T>::credit_of(&who), amount);
	}

	#[benchmark]
	fn unlock_credit() -> Result<(), BenchmarkError> {
		let who = funded::<T>("payer", 0);
		let amount = price::<T>();
		Pallet::<T>::deposit_credit(RawOrigin::Signed(who.clone()).into(), amount)?;
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), amount);
		assert!(CreditUnlocks::<T>::contains_key(&who));
		Ok(())
	}

	#[benchmark]
	fn withdraw_credit() -> Result<(), BenchmarkError> {
		let who = funded::<T>("payer", 0);
		let amount = price::<T>();
		Pallet::<T>::deposit_credit(RawOrigin::Signed(who.clone()).into(), amount)?;
		Pallet::<T>::unlock_credit(RawOrigin::Signed(who.clone()).into(), amount)?;
		frame_system::Pallet::<T>::set_block_number(
			frame_system::Pallet::<T>::block_number().saturating_add(T::CreditUnlockDelay::get()),
		);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));
		assert!(Pallet::<T>::credit_of(&who).is_zero());
		Ok(())
	}

	#[benchmark]
	fn set_fee_split() -> Result<(), BenchmarkError> {
		let origin =
			T::AdminOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
		let split = FeeSplit {
			owner: Perbill::from_percent(30),
			stakers: Perbill::from_percent(20),
			contributors: Perbill::from_percent(50),
			platform_fee: T::Currency::minimum_balance(),
		};
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, split);
		assert_eq!(FeeParams::<T>::get(), split);
		Ok(())
	}

	/// A truly signed leaf whose fee is off: every check of a leaf runs.
	#[benchmark]
	fn challenge_batch_leaf(p: Linear<1, { T::MaxBatchPayers::get() }>) -> Result<(), BenchmarkError> {
		let (operator, leaves, charges, signed) = settled_leaves::<T>(p, false)?;
		let fraud = BatchFraud::Leaf(fraud::prove_leaf(&leaves, signed).ok_or("in the batch")?);
		let challenger = funded::<T>("challenger", 0);
		#[extrinsic_call]
		challenge_batch(
			RawOrigin::Signed(challenger),
			operator.clone(),
			0,
			BoundedVec::truncate_from(charges),
			fraud,
		);
		assert!(Batches::<T>::get(&operator, 0).is_some_and(|b| b.fraud_proven));
		Ok(())
	}

	/// The last leaf and the batch's end, with a payer charged after it: both proofs and the
	/// whole charge list are checked.
	#[benchmark]
	fn challenge_batch_seam(p: Linear<2, { T::MaxBatchPayers::get() }>) -> Result<(), BenchmarkError> {
		let (operator, leaves, charges, _) = settled_leaves::<T>(p, true)?;
		let last = leaves.len() as u32 - 1;
		let fraud = BatchFraud::Seam {
			left: Some(fraud::prove_leaf(&leaves, last).ok_or("in the batch")?),
			right: None,
		};
		let challenger = funded::<T>("challenger", 0);
		#[extrinsic_call]
		challenge_batch(
			RawOrigin::Signed(challenger),
			operator.clone(),
			0,
			BoundedVec::truncate_from(charges),
			fraud,
		);
		assert!(Batches::<T>::get(&operator, 0).is_some_and(|b| b.fraud_proven));
		Ok(())
	}

	/// The longest prompt and a record of `r` bytes, `MaxWeights` claimed weights, `v` verifiers.
	#[benchmark]
	fn challenge_leaf(
		r: Linear<1, { T::MaxRecordLength::get() }>,
		v: Linear<1, { T::MaxOperatorsPerModel::get() - 1 }>,
	) -> Result<(), BenchmarkError> {
		// Not `challenge`: the benchmark of that name is a unit struct here.
		let (operator, leaf_challenge, model_id) = attested_leaf::<T>(T::MaxWeights::get(), r)?;
		verifiers::<T>(model_id, v);
		let challenger = funded::<T>("challenger", 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(challenger), operator.clone(), 0, leaf_challenge);
		assert_eq!(
			LeafDisputes::<T>::get(&operator, 0).map(|d| d.dispute.verifiers.len() as u32),
			Some(v)
		);
		Ok(())
	}

	/// A vote that leaves the dispute open: the first of `v ≥ 2` verifiers.
	#[benchmark]
	fn vote_leaf(v: Linear<2, { T::MaxOperatorsPerModel::get() - 1 }>) -> Result<(), BenchmarkError> {
		let (operator, keys) = disputed_leaf::<T>(T::MaxWeights::get(), v)?;
		let (verifier, attestation, signature) = leaf_ballot::<T>(&operator, &keys[0])?;
		let relayer: T::AccountId = whitelisted_caller();
		#[extrinsic_call]
		_(RawOrigin::Signed(relayer), operator.clone(), 0, verifier, attestation, signature);
		assert!(LeafDisputes::<T>::get(&operator, 0).is_some_and(|d| d.dispute.votes[0].is_some()));
		Ok(())
	}

	#[benchmark]
	fn authorize_vote_leaf(
		v: Linear<2, { T::MaxOperatorsPerModel::get() - 1 }>,
	) -> Result<(), BenchmarkError> {
		let (operator, keys) = disputed_leaf::<T>(T::MaxWeights::get(), v)?;
		let (verifier, attestation, signature) = leaf_ballot::<T>(&operator, &keys[0])?;
		let call = Call::<T>::vote_leaf { operator, nonce: 0, verifier, attestation, signature };
		#[block]
		{
			call.authorize(TransactionSource::External)
				.ok_or("vote_leaf must give some authorization")??;
		}
		Ok(())
	}

	/// The most expensive resolution: overturned, slashing the operator and moving the leaf's
	/// part of a fully credited batch from `k` contributions to `k` others.
	#[benchmark]
	fn resolve_leaf_dispute(k: Linear<1, { T::MaxWeights::get() }>) -> Result<(), BenchmarkError> {
		let (operator, _) = disputed_leaf::<T>(k, 1)?;
		let mut leaf = LeafDisputes::<T>::get(&operator, 0).ok_or("the dispute is open")?;
		leaf.dispute.votes[0] =
			Some(attestation(&leaf.dispute.claimed_record_hash, &leaf.dispute.claimed_weights));
		let deadline = leaf.dispute.deadline;
		LeafDisputes::<T>::insert(&operator, 0, leaf);
		frame_system::Pallet::<T>::set_block_number(deadline.saturating_add(One::one()));
		let caller: T::AccountId = whitelisted_caller();
		#[extrinsic_call]
		_(RawOrigin::Signed(caller), operator.clone(), 0);
		assert!(LeafDisputes::<T>::get(&operator, 0).is_none());
		assert_eq!(Batches::<T>::get(&operator, 0).map(|b| b.status), Some(ReceiptStatus::Maturing));
		Ok(())
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}

//! The operator's batcher: settles the prepaid requests its engine served (the engine's
//! journal) in batches.
//!
//! One batch is in flight at a time. Each run with none in flight reads the unsettled journal
//! entries after the cursor, builds the next batch from the longest run of them for one model
//! the operator serves (within `MaxBatchPayers` and `MaxBatchContributions`), signs it with
//! the attribution key, has the engine archive it with its leaves (`PUT /v1/batches/{nonce}`,
//! so that anyone can check it and prove its fraud; a batch the engine did not archive is not
//! submitted) and submits it. Once the chain's `BatchNonce` passes it, the engine is
//! told the entries are settled (`POST /v1/journal/settled`) and the cursor moves on; if the
//! batch stops being valid before that (a payer withdrew its credit, a price changed), it is
//! rebuilt.
//!
//! An entry that cannot be charged is left out and settled with the batch, so the journal does
//! not keep it: another operator's adapter, a nonce at or below the payer's settled one, a fee
//! above the payer's `max_fee`, more output than `max_tokens`, or a payer whose credit is spent.
//! A weight on a contribution outside the model's lineage is left out of the influence (its
//! part of the pool goes to the treasury), like the chain would refuse it.

use super::*;
use crate::fraud::batch_root;
use alloc::collections::BTreeMap;
use frame_support::traits::Get;
use sp_runtime::{
	traits::{Saturating, Zero},
	Perbill, SaturatedConversion,
};

/// Entries read from the journal per batch.
const JOURNAL_PAGE: u32 = 1024;

/// This node's batcher state for one operator, in persistent off-chain storage.
#[derive(Encode, Decode, Default)]
struct BatcherState {
	/// Journal entries up to this seq are settled on chain or were left out.
	cursor: u64,
	in_flight: Option<InFlight>,
}

#[derive(Encode, Decode)]
struct InFlight {
	nonce: u64,
	/// The last journal seq the batch covers.
	through: u64,
	/// The signed `submit_receipt_batch` call, and the block it was last submitted at.
	call: Vec<u8>,
	submitted_at: u32,
}

pub(super) fn run<T: Config>(now: BlockNumberFor<T>, key: &T::OperatorKey, operator: &T::AccountId) {
	let lock_key = (b"openledger::attribution::batcher-lock::", operator).encode();
	let mut lock = StorageLock::<BlockAndTime<frame_system::Pallet<T>>>::with_block_and_time_deadline(
		&lock_key,
		1,
		Duration::from_millis(ENGINE_TIMEOUT_MS),
	);
	let Ok(_guard) = lock.try_lock() else { return };
	let state_key = (b"openledger::attribution::batcher::", operator).encode();
	let state_ref = StorageValueRef::persistent(&state_key);
	let mut state: BatcherState = state_ref.get().ok().flatten().unwrap_or_default();
	let block: u32 = now.saturated_into();

	if let Some(batch) = state.in_flight.take() {
		state.in_flight = follow_up::<T>(operator, block, batch, &mut state.cursor);
	}
	if state.in_flight.is_none() {
		match build::<T>(key, operator, state.cursor) {
			Ok(Built::Batch { nonce, through, call, archive }) => match archive_batch(nonce, archive) {
				Ok(()) => {
					log::info!(target: LOG, "batch {nonce}: journal entries through {through}");
					let call_bytes = call.encode();
					submit::<T>(call);
					state.in_flight =
						Some(InFlight { nonce, through, call: call_bytes, submitted_at: block });
				},
				Err(e) => log::warn!(target: LOG, "batch {nonce} waits: the engine did not archive it ({e})"),
			},
			Ok(Built::NothingBillable { through }) =>
				if settle_journal(through).is_ok() {
					state.cursor = through;
				},
			Ok(Built::Nothing) => {},
			Err(e) => log::warn!(target: LOG, "batching the journal: {e}"),
		}
	}
	state_ref.set(&state);
}

/// What is left in flight of `batch`: nothing once it is settled (on chain and in the journal)
/// or no longer valid; otherwise the batch, resubmitted if it has waited long.
fn follow_up<T: Config>(
	operator: &T::AccountId,
	block: u32,
	mut batch: InFlight,
	cursor: &mut u64,
) -> Option<InFlight> {
	if BatchNonce::<T>::get(operator) > batch.nonce {
		if let Err(e) = settle_journal(batch.through) {
			log::warn!(target: LOG, "batch {} is settled, but the journal is not told: {e}", batch.nonce);
			return Some(batch);
		}
		*cursor = batch.through;
		return None;
	}
	let Ok(Call::<T>::submit_receipt_batch { batch: signed, signature }) =
		Call::<T>::decode(&mut &batch.call[..])
	else {
		return None;
	};
	if let Err(e) = Pallet::<T>::check_batch(&signed, &signature) {
		log::info!(target: LOG, "batch {} is no longer valid ({e:?}): rebuilding it", batch.nonce);
		return None;
	}
	if block >= batch.submitted_at.saturating_add(RESUBMIT_AFTER) {
		submit::<T>(Call::<T>::submit_receipt_batch { batch: signed, signature });
		batch.submitted_at = block;
	}
	Some(batch)
}

enum Built<T: Config> {
	/// `archive` is the body of `PUT /v1/batches/{nonce}`: the batch and its leaves.
	Batch { nonce: u64, through: u64, call: Call<T>, archive: Vec<u8> },
	/// Entries up to `through` can never be charged.
	NothingBillable { through: u64 },
	Nothing,
}

/// The journal page: `journal::Page` of the engine.
#[derive(serde::Deserialize)]
struct Page {
	entries: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
	seq: u64,
	account: String,
	nonce: u64,
	max_fee: String,
	signature: String,
	adapter_hash: String,
	prompt_hash: String,
	max_tokens: u32,
	output_hash: String,
	input_tokens: u64,
	output_tokens: u64,
	record_hash: String,
	weights: Vec<EngineWeight>,
}

/// A payer's leaves so far in the batch being built.
struct Payer<T: Config> {
	spent: BalanceOf<T>,
	credit: BalanceOf<T>,
	last_nonce: Option<u64>,
}

fn build<T: Config>(key: &T::OperatorKey, operator: &T::AccountId, cursor: u64) -> Result<Built<T>, String> {
	let (code, body) = engine_http(&format!("/v1/journal?after={cursor}&limit={JOURNAL_PAGE}"), None)?;
	match code {
		200 => {},
		// An engine without a journal serves no prepaid requests.
		404 => return Ok(Built::Nothing),
		_ => return Err(format!("the engine's journal answered HTTP {code}")),
	}
	let page: Page = serde_json::from_slice(&body).map_err(|e| format!("unexpected journal page: {e}"))?;
	let info = Operators::<T>::get(operator).ok_or("not an operator")?;
	let served: Vec<(ModelId, ServedModel<T::AccountId, BalanceOf<T>>)> = info
		.models
		.iter()
		.filter_map(|id| T::Models::served_model(*id).map(|m| (*id, m)))
		.collect();

	let mut model: Option<&(ModelId, ServedModel<T::AccountId, BalanceOf<T>>)> = None;
	let mut through = cursor;
	let mut leaves: Vec<BatchLeaf<T>> = Vec::new();
	let mut payers: BTreeMap<T::AccountId, Payer<T>> = BTreeMap::new();
	let mut influence: BTreeMap<ContributionId, BalanceOf<T>> = BTreeMap::new();
	for entry in page.entries {
		let adapter = parse_h256(&entry.adapter_hash).ok_or("bad adapter_hash")?;
		let Some(this) = served.iter().find(|(_, m)| m.adapter_hash == adapter) else {
			log::warn!(target: LOG, "journal entry {}: an adapter this operator does not serve", entry.seq);
			through = entry.seq;
			continue;
		};
		if model.is_some_and(|(id, _)| *id != this.0) {
			break;
		}
		let (leaf, weights) = match leaf_of::<T>(&entry, &this.1) {
			Ok(l) => l,
			Err(e) => {
				log::warn!(target: LOG, "journal entry {}: left out, {e}", entry.seq);
				through = entry.seq;
				continue;
			},
		};
		let new_contributions =
			weights.iter().filter(|(id, _)| !influence.contains_key(id)).count() as u32;
		if (!payers.contains_key(&leaf.payer) && payers.len() as u32 >= T::MaxBatchPayers::get()) ||
			influence.len() as u32 + new_contributions > T::MaxBatchContributions::get()
		{
			break;
		}
		let payer = payers.entry(leaf.payer.clone()).or_insert_with(|| Payer {
			spent: Zero::zero(),
			credit: Pallet::<T>::credit_of(&leaf.payer),
			last_nonce: SettledNonce::<T>::get(&leaf.payer),
		});
		let spent = payer.spent.saturating_add(leaf.fee);
		if payer.last_nonce.is_some_and(|n| leaf.nonce <= n) || spent > payer.credit {
			log::warn!(
				target: LOG,
				"journal entry {}: left out, its nonce is used or its payer's credit is spent",
				entry.seq
			);
			through = entry.seq;
			continue;
		}
		(payer.spent, payer.last_nonce) = (spent, Some(leaf.nonce));
		let shared = leaf.fee.saturating_sub(FeeParams::<T>::get().platform_fee);
		for (id, ppm) in weights {
			let part = Perbill::from_parts(ppm.saturating_mul(1000)).mul_floor(shared);
			let total = influence.entry(id).or_insert_with(Zero::zero);
			*total = total.saturating_add(part);
		}
		leaves.push(leaf);
		model = Some(this);
		through = entry.seq;
	}
	let Some((model_id, served_model)) = model else {
		return Ok(if through > cursor { Built::NothingBillable { through } } else { Built::Nothing });
	};

	// By payer, then nonce (already rising per payer), with running totals.
	leaves.sort_by(|a, b| a.payer.cmp(&b.payer));
	let mut charges: Vec<Charge<T::AccountId, BalanceOf<T>>> = Vec::new();
	for leaf in leaves.iter_mut() {
		match charges.last_mut() {
			Some(c) if c.payer == leaf.payer => {
				c.amount = c.amount.saturating_add(leaf.fee);
				c.last_nonce = leaf.nonce;
			},
			_ => charges.push(Charge {
				payer: leaf.payer.clone(),
				amount: leaf.fee,
				first_nonce: leaf.nonce,
				last_nonce: leaf.nonce,
			}),
		}
		leaf.payer_total = charges.last().map_or(leaf.fee, |c| c.amount);
	}
	let batch = ReceiptBatch::<T> {
		operator: operator.clone(),
		model_id: *model_id,
		nonce: BatchNonce::<T>::get(operator),
		receipts_root: batch_root(&leaves),
		receipts: leaves.len() as u32,
		rates: Pallet::<T>::rates(served_model),
		charges: BoundedVec::truncate_from(charges),
		influence: BoundedVec::truncate_from(
			influence.into_iter().filter(|(_, i)| !i.is_zero()).collect::<Vec<_>>(),
		),
	};
	let signature = key
		.sign(&batch.signing_payload(&Pallet::<T>::genesis_hash()))
		.ok_or("the keystore cannot sign with the attribution key")?;
	Pallet::<T>::check_batch(&batch, &signature).map_err(|e| format!("the batch is invalid: {e:?}"))?;
	let nonce = batch.nonce;
	let hex = |bytes: &[u8]| format!("\"0x{}\"", HexDisplay::from(&bytes));
	let leaves: Vec<String> = leaves.iter().map(|l| hex(&l.encode())).collect();
	let archive = format!(
		"{{\"root\":{},\"batch\":{},\"leaves\":[{}]}}",
		hex(batch.receipts_root.as_bytes()),
		hex(&batch.encode()),
		leaves.join(",")
	);
	let call = Call::<T>::submit_receipt_batch { batch, signature };
	Ok(Built::Batch { nonce, through, call, archive: archive.into_bytes() })
}

/// The leaf for a journal entry at the model's rates, and the weights on contributions of its
/// lineage; or why it cannot be charged.
fn leaf_of<T: Config>(
	entry: &Entry,
	model: &ServedModel<T::AccountId, BalanceOf<T>>,
) -> Result<(BatchLeaf<T>, Vec<(ContributionId, Ppm)>), String> {
	let account = parse_h256(&entry.account).ok_or("bad account")?;
	let payer = T::AccountId::decode(&mut &account.0[..]).map_err(|_| "not an account")?;
	let signature = parse_bytes::<64>(&entry.signature).ok_or("bad signature")?;
	let max_fee: u128 = entry.max_fee.parse().map_err(|_| "bad max_fee")?;
	let max_fee = BalanceOf::<T>::try_from(max_fee).map_err(|_| "max_fee out of range")?;
	let input_tokens = u32::try_from(entry.input_tokens).map_err(|_| "too many input tokens")?;
	let output_tokens = u32::try_from(entry.output_tokens).map_err(|_| "too many output tokens")?;
	if output_tokens > entry.max_tokens {
		return Err(format!("{output_tokens} output tokens, above max_tokens {}", entry.max_tokens));
	}
	let fee = Pallet::<T>::fee(model, input_tokens, output_tokens);
	if fee > max_fee {
		return Err(String::from("the fee is above the payer's max_fee"));
	}
	let record_hash = parse_h256(&entry.record_hash).ok_or("bad record_hash")?;
	let all = by_contribution(&entry.weights);
	let weights =
		all.iter().copied().filter(|(id, _)| Pallet::<T>::lineage_contributor(*id, model).is_ok()).collect();
	let leaf = BatchLeaf {
		payer,
		nonce: entry.nonce,
		max_fee,
		signature: sp_core::sr25519::Signature::from_raw(signature).into(),
		prompt_hash: parse_h256(&entry.prompt_hash).ok_or("bad prompt_hash")?,
		max_tokens: entry.max_tokens,
		output_hash: parse_h256(&entry.output_hash).ok_or("bad output_hash")?,
		input_tokens,
		output_tokens,
		attestation: attestation(&record_hash, &all),
		fee,
		payer_total: fee,
	};
	Ok((leaf, weights))
}

/// Has the engine archive batch `nonce` and its leaves.
fn archive_batch(nonce: u64, archive: Vec<u8>) -> Result<(), String> {
	engine_request(http::Method::Put, &format!("/v1/batches/{nonce}"), Some(archive)).and_then(done)
}

/// Tells the engine its journal is settled through `through`.
fn settle_journal(through: u64) -> Result<(), String> {
	let body = format!("{{\"through\":{through}}}").into_bytes();
	engine_http("/v1/journal/settled", Some(body)).and_then(done)
}

/// Whether the engine did what it was asked: HTTP 200, or its answer.
fn done((code, body): (u16, Vec<u8>)) -> Result<(), String> {
	match code {
		200 => Ok(()),
		_ => Err(format!("HTTP {code}: {}", String::from_utf8_lossy(&body))),
	}
}

//! The operator's off-chain worker: answers the requests assigned to an operator whose
//! attribution key is in this node's keystore, by calling the local OpenLoRA engine over HTTP and
//! submitting the signed receipt as an authorized (fee-less) transaction.
//!
//! - The engine's base URL is read from the node's persistent off-chain storage under
//!   [`ENGINE_URL_KEY`] (raw UTF-8; `openledger-node --inference-url` and the
//!   `offchain_localStorageSet` RPC write it), falling back to [`DEFAULT_ENGINE_URL`]. An
//!   operator token under [`ENGINE_TOKEN_KEY`] goes with every call as
//!   `Authorization: Bearer <token>`: it admits the node to the engine's operator endpoints from
//!   another machine.
//! - Each request has a lock in persistent off-chain storage, which every fork and every
//!   concurrently running worker of this node shares: one worker at a time works on a request.
//!   Beside it, the request's state records the attempts and the signed receipt once made, so a
//!   later block resubmits the same receipt (if the first submission was dropped) instead of
//!   running the inference again.
//! - An engine error or timeout costs one of [`MAX_ATTEMPTS`]; after the last the request is
//!   left to be refunded at its deadline.
//!
//! The same worker settles the prepaid requests the engine served in batches (see [`batcher`]).

mod batcher;

use crate::*;
use alloc::{format, string::String, vec::Vec};
use codec::{Decode, Encode};
use frame_support::BoundedVec;
use pallet_datanets::ContributionId;
use pallet_model_registry::{ModelId, ModelsInspect, ServedModel};
use frame_system::{
	offchain::{CreateAuthorizedTransaction, SubmitTransaction},
	pallet_prelude::BlockNumberFor,
};
use sp_core::{hexdisplay::HexDisplay, offchain::StorageKind, H256};
use sp_runtime::{
	offchain::{
		http,
		storage::StorageValueRef,
		storage_lock::{BlockAndTime, StorageLock},
		Duration,
	},
	traits::{BlakeTwo256, Hash},
	RuntimeAppPublic,
};

/// Persistent off-chain storage key of the engine's base URL.
pub const ENGINE_URL_KEY: &[u8] = b"openledger::inference-url";
/// Persistent off-chain storage key of the operator token the engine asks of a node on another
/// machine (raw UTF-8; `openledger-node --inference-token-file` writes it).
pub const ENGINE_TOKEN_KEY: &[u8] = b"openledger::inference-token";
/// OpenLoRA's default address.
pub const DEFAULT_ENGINE_URL: &str = "http://127.0.0.1:8000";
/// Inference runs an engine call per try; after this many failures the request is refunded.
pub const MAX_ATTEMPTS: u8 = 3;
/// Blocks to wait for a submitted receipt to be included before submitting it again.
const RESUBMIT_AFTER: u32 = 5;
/// The engine's time to answer one request, attribution included.
const ENGINE_TIMEOUT_MS: u64 = 120_000;
const LOG: &str = "runtime::attribution";

/// What this node's off-chain workers know about one job.
#[derive(Encode, Decode, Default)]
struct JobState {
	attempts: u8,
	/// The signed call once made, and the block it was last submitted at.
	submitted: Option<(u32, Vec<u8>)>,
}

pub(crate) fn run<T: Config>(now: BlockNumberFor<T>) {
	for key in T::OperatorKey::all() {
		let Some(operator) = OperatorByKey::<T>::get(&key) else { continue };
		let open: Vec<RequestId> = Assigned::<T>::iter_key_prefix(&operator).collect();
		for request_id in open {
			let Some(request) = Requests::<T>::get(request_id) else { continue };
			let job = (b"request", request_id).encode();
			work::<T>(now, &job, || answer::<T>(&key, &operator, request_id, &request));
		}
		let ballots: Vec<(RequestId, Dispute<T>)> = Disputes::<T>::iter()
			.filter(|(_, d)| now <= d.deadline && d.awaits(&operator))
			.collect();
		for (request_id, dispute) in ballots {
			let job = (b"vote", request_id, &operator).encode();
			work::<T>(now, &job, || verify::<T>(&key, &operator, request_id, &dispute));
		}
		let leaf_ballots: Vec<(T::AccountId, u64, LeafDispute<T>)> = LeafDisputes::<T>::iter()
			.filter(|(_, _, d)| now <= d.dispute.deadline && d.dispute.awaits(&operator))
			.collect();
		for (accused, nonce, dispute) in leaf_ballots {
			let job = (b"leaf-vote", &accused, nonce, dispute.index, &operator).encode();
			work::<T>(now, &job, || verify_leaf::<T>(&key, &operator, &accused, nonce, &dispute));
		}
		batcher::run::<T>(now, &key, &operator);
	}
}

/// Runs one job (answering a request, voting in a dispute) at most once at a time across
/// blocks and forks: `make` builds the signed call, which is kept and resubmitted if it was
/// not included, and `make`'s failures count against [`MAX_ATTEMPTS`].
fn work<T: Config>(
	now: BlockNumberFor<T>,
	job: &[u8],
	make: impl FnOnce() -> Result<Call<T>, String>,
) {
	let lock_key = [b"openledger::attribution::lock::".as_slice(), job].concat();
	let mut lock = StorageLock::<BlockAndTime<frame_system::Pallet<T>>>::with_block_and_time_deadline(
		&lock_key,
		1,
		Duration::from_millis(ENGINE_TIMEOUT_MS + 30_000),
	);
	// Another worker (an earlier block's, or a fork's) is on it.
	let Ok(_guard) = lock.try_lock() else { return };

	let state_key = [b"openledger::attribution::job::".as_slice(), job].concat();
	let state_ref = StorageValueRef::persistent(&state_key);
	let mut state: JobState = state_ref.get().ok().flatten().unwrap_or_default();
	let block: u32 = sp_runtime::SaturatedConversion::saturated_into(now);

	if let Some((at, call)) = state.submitted.take() {
		if block >= at.saturating_add(RESUBMIT_AFTER) {
			if let Ok(decoded) = Call::<T>::decode(&mut &call[..]) {
				submit::<T>(decoded);
			}
			state.submitted = Some((block, call));
		} else {
			state.submitted = Some((at, call));
		}
		state_ref.set(&state);
		return;
	}
	if state.attempts >= MAX_ATTEMPTS {
		return;
	}
	state.attempts += 1;
	state_ref.set(&state);

	match make() {
		Ok(call) => {
			state.submitted = Some((block, call.encode()));
			state_ref.set(&state);
			submit::<T>(call);
		},
		Err(e) => log::warn!(
			target: LOG,
			"{}: attempt {} of {MAX_ATTEMPTS} failed: {e}",
			job_name(job),
			state.attempts
		),
	}
}

fn job_name(job: &[u8]) -> String {
	format!("job 0x{}", HexDisplay::from(&job))
}

/// The signed receipt for an assigned request.
fn answer<T: Config>(
	key: &T::OperatorKey,
	operator: &T::AccountId,
	request_id: RequestId,
	request: &RequestInfo<T>,
) -> Result<Call<T>, String> {
	let receipt = infer::<T>(operator, request_id, request)?;
	let signature = key
		.sign(&receipt.signing_payload(&Pallet::<T>::genesis_hash()))
		.ok_or("the keystore cannot sign with the attribution key")?;
	log::info!(target: LOG, "request {request_id}: receipt made");
	Ok(Call::<T>::submit_receipt { receipt, signature })
}

/// The signed vote of a verifier: the attestation its own engine gets for the disputed
/// request, run the way the receipt says it was.
fn verify<T: Config>(
	key: &T::OperatorKey,
	verifier: &T::AccountId,
	request_id: RequestId,
	dispute: &Dispute<T>,
) -> Result<Call<T>, String> {
	let record = Receipts::<T>::get(request_id).ok_or("the receipt is gone")?;
	let model = T::Models::served_model(record.model_id).ok_or("the model is gone")?;
	let prompt = core::str::from_utf8(&dispute.prompt).map_err(|_| "the prompt is not UTF-8")?;
	let ask = match record.method {
		AttributionMethod::None => ENGINE_DEFAULT,
		AttributionMethod::Span => Ask::Method("span"),
		AttributionMethod::Datainf => Ask::Method("datainf"),
	};
	let answer = run_engine(&model.adapter_hash, prompt, record.max_output_tokens, ask)?;
	let attestation = attestation(&answer.record_hash, &answer.weights);
	let signature = key
		.sign(&vote_payload(&Pallet::<T>::genesis_hash(), request_id, &attestation))
		.ok_or("the keystore cannot sign with the attribution key")?;
	log::info!(
		target: LOG,
		"dispute on request {request_id}: voting {attestation:?} (the receipt's is {:?})",
		record.attestation
	);
	Ok(Call::<T>::vote { request_id, verifier: verifier.clone(), attestation, signature })
}

/// The signed vote of a verifier in the dispute of a batch leaf: its engine recomputes the
/// operator's record from the record's own inputs (`/v1/attributions/verify`), with the
/// prompt's tokens. A record that does not describe the leaf gets [`INCONSISTENT_RECORD`].
fn verify_leaf<T: Config>(
	key: &T::OperatorKey,
	verifier: &T::AccountId,
	operator: &T::AccountId,
	nonce: u64,
	leaf: &LeafDispute<T>,
) -> Result<Call<T>, String> {
	let batch = Batches::<T>::get(operator, nonce).ok_or("the batch is gone")?;
	let prompt = core::str::from_utf8(&leaf.dispute.prompt).map_err(|_| "the prompt is not UTF-8")?;
	let record = format!("0x{}", HexDisplay::from(&leaf.record.clone().into_inner()));
	let body = serde_json::to_vec(&VerifyBody { record: &record, prompt })
		.map_err(|_| "cannot encode the request")?;
	let (code, body) = engine_http("/v1/attributions/verify", Some(body))?;
	let attestation = match code {
		200 => {
			let answer = serde_json::from_slice::<Verified>(&body)
				.map_err(|e| format!("unexpected engine answer: {e}"))?;
			let names_leaf = answer.claimed.adapter.as_deref().and_then(parse_h256) ==
				Some(batch.adapter_hash) &&
				parse_h256(&answer.claimed.output_hash) == Some(leaf.output_hash);
			if answer.verdict == "inputs_differ" || !names_leaf {
				INCONSISTENT_RECORD
			} else {
				let record_hash =
					parse_h256(&answer.recomputed.record_hash).ok_or("bad record_hash")?;
				attestation(&record_hash, &by_contribution(&answer.recomputed.weights))
			}
		},
		// Bytes that are no record, or a record of the base model, which has no lineage.
		400 | 422 => INCONSISTENT_RECORD,
		_ => return Err(format!("the engine refused to verify: HTTP {code}")),
	};
	let payload =
		leaf_vote_payload(&Pallet::<T>::genesis_hash(), operator, nonce, leaf.index, &attestation);
	let signature = key.sign(&payload).ok_or("the keystore cannot sign with the attribution key")?;
	log::info!(
		target: LOG,
		"dispute on leaf {} of batch {nonce}: voting {attestation:?} (the leaf's is {:?})",
		leaf.index,
		leaf.attestation
	);
	Ok(Call::<T>::vote_leaf {
		operator: operator.clone(),
		nonce,
		verifier: verifier.clone(),
		attestation,
		signature,
	})
}

fn submit<T: Config>(call: Call<T>) {
	let xt = <T as CreateAuthorizedTransaction<Call<T>>>::create_authorized_transaction(call.into());
	match SubmitTransaction::<T, Call<T>>::submit_transaction(xt) {
		Ok(()) => log::info!(target: LOG, "transaction submitted"),
		Err(()) => log::warn!(target: LOG, "the pool refused the transaction"),
	}
}

pub(crate) fn engine_url() -> String {
	sp_io::offchain::local_storage_get(StorageKind::PERSISTENT, ENGINE_URL_KEY)
		.and_then(|raw| String::from_utf8(raw).ok())
		.map(|url| String::from(url.trim().trim_end_matches('/')))
		.filter(|url| !url.is_empty())
		.unwrap_or_else(|| String::from(DEFAULT_ENGINE_URL))
}

fn engine_token() -> Option<String> {
	sp_io::offchain::local_storage_get(StorageKind::PERSISTENT, ENGINE_TOKEN_KEY)
		.and_then(|raw| String::from_utf8(raw).ok())
		.map(|token| String::from(token.trim()))
		.filter(|token| !token.is_empty())
}

#[derive(serde::Serialize)]
struct CompletionBody<'a> {
	model: &'a str,
	prompt: &'a str,
	max_tokens: u32,
	temperature: f32,
	attribution: Ask,
}

/// The engine's `attribution` field: its default method (or none), or a named one.
#[derive(serde::Serialize, Clone, Copy)]
#[serde(untagged)]
enum Ask {
	Flag(bool),
	Method(&'static str),
}

/// The engine's default method, where the adapter has attribution data.
const ENGINE_DEFAULT: Ask = Ask::Flag(true);

#[derive(serde::Deserialize)]
struct Completion {
	choices: Vec<Choice>,
	receipt: EngineReceipt,
	attribution: Option<EngineAttribution>,
}

#[derive(serde::Deserialize)]
struct Choice {
	text: String,
}

#[derive(serde::Deserialize)]
struct EngineReceipt {
	adapter_hash: Option<String>,
	input_tokens: u32,
	output_tokens: u32,
}

#[derive(serde::Deserialize)]
struct EngineAttribution {
	method: String,
	weights: Vec<EngineWeight>,
	index_root: String,
	record_hash: String,
}

/// The engine's weights (best first) as the chain orders them: by ascending contribution id.
fn by_contribution(weights: &[EngineWeight]) -> Vec<(ContributionId, Ppm)> {
	let mut sorted: Vec<(ContributionId, Ppm)> =
		weights.iter().map(|w| (w.contribution, w.ppm)).collect();
	sorted.sort_by_key(|(id, _)| *id);
	sorted
}

#[derive(serde::Deserialize)]
struct EngineWeight {
	contribution: u64,
	ppm: u32,
}

#[derive(serde::Serialize)]
struct VerifyBody<'a> {
	record: &'a str,
	prompt: &'a str,
}

/// The engine's answer to `/v1/attributions/verify`, as far as a vote needs it.
#[derive(serde::Deserialize)]
struct Verified {
	verdict: String,
	claimed: ClaimedInputs,
	recomputed: Recomputed,
}

#[derive(serde::Deserialize)]
struct ClaimedInputs {
	adapter: Option<String>,
	output_hash: String,
}

#[derive(serde::Deserialize)]
struct Recomputed {
	record_hash: String,
	weights: Vec<EngineWeight>,
}

#[derive(serde::Deserialize)]
struct EngineError {
	error: EngineErrorBody,
}

#[derive(serde::Deserialize)]
struct EngineErrorBody {
	code: Option<String>,
}

/// What the engine answered, as the chain counts it.
struct EngineAnswer {
	text: String,
	adapter_hash: Option<H256>,
	input_tokens: u32,
	output_tokens: u32,
	method: AttributionMethod,
	index_root: H256,
	record_hash: H256,
	/// By ascending contribution id.
	weights: Vec<(ContributionId, Ppm)>,
}

/// Runs a completion greedy (so anyone can reproduce the output) with attribution `ask`; with
/// the default ask, an adapter the engine has no attribution data for is answered without.
fn run_engine(adapter_hash: &H256, prompt: &str, max_tokens: u32, ask: Ask) -> Result<EngineAnswer, String> {
	let model_name = format!("0x{}", HexDisplay::from(&adapter_hash.0));
	let completion = match call_engine(&model_name, prompt, max_tokens, ask)? {
		Ok(c) => c,
		Err(code) if code == "no_attribution_data" && matches!(ask, Ask::Flag(true)) =>
			call_engine(&model_name, prompt, max_tokens, Ask::Flag(false))?.map_err(|code| {
				format!("the engine refused the request: {code}")
			})?,
		Err(code) => return Err(format!("the engine refused the request: {code}")),
	};
	let text = completion.choices.into_iter().next().ok_or("the engine returned no choice")?.text;
	let (method, index_root, record_hash, weights) = match completion.attribution {
		None => (AttributionMethod::None, H256::zero(), H256::zero(), Vec::new()),
		Some(a) => {
			let method = match a.method.as_str() {
				"span" => AttributionMethod::Span,
				"datainf" => AttributionMethod::Datainf,
				other => return Err(format!("unknown attribution method {other}")),
			};
			let root = parse_h256(&a.index_root).ok_or("bad index_root")?;
			let record = parse_h256(&a.record_hash).ok_or("bad record_hash")?;
			let weights = by_contribution(&a.weights);
			// The engine's "no attribution" is an empty list.
			let method = if weights.is_empty() { AttributionMethod::None } else { method };
			(method, root, record, weights)
		},
	};
	Ok(EngineAnswer {
		text,
		adapter_hash: completion.receipt.adapter_hash.as_deref().and_then(parse_h256),
		input_tokens: completion.receipt.input_tokens,
		output_tokens: completion.receipt.output_tokens,
		method,
		index_root,
		record_hash,
		weights,
	})
}

/// The receipt for a request, from the engine's answer.
fn infer<T: Config>(
	operator: &T::AccountId,
	request_id: RequestId,
	request: &RequestInfo<T>,
) -> Result<Receipt<T>, String> {
	let model = T::Models::served_model(request.model_id).ok_or("the model is gone")?;
	let prompt = core::str::from_utf8(&request.prompt).map_err(|_| "the prompt is not UTF-8")?;
	let answer = run_engine(&model.adapter_hash, prompt, request.max_output_tokens, ENGINE_DEFAULT)?;
	if answer.adapter_hash != Some(model.adapter_hash) {
		return Err(String::from("the engine served another adapter"));
	}
	let output: BoundedVec<u8, T::MaxOutputLength> = BoundedVec::try_from(answer.text.into_bytes())
		.map_err(|_| "the output is longer than MaxOutputLength")?;
	Ok(Receipt {
		request_id,
		operator: operator.clone(),
		model_id: request.model_id,
		adapter_hash: model.adapter_hash,
		prompt_hash: BlakeTwo256::hash(&request.prompt),
		output_hash: BlakeTwo256::hash(&output),
		input_tokens: answer.input_tokens,
		output_tokens: answer.output_tokens,
		method: answer.method,
		index_root: answer.index_root,
		record_hash: answer.record_hash,
		weights: BoundedVec::try_from(answer.weights).map_err(|_| "more weights than MaxWeights")?,
		output,
	})
}

/// `Ok(Ok(completion))`, `Ok(Err(engine error code))` for an answer with an error status, or
/// `Err` when the engine could not be reached or answered nonsense.
fn call_engine(
	model: &str,
	prompt: &str,
	max_tokens: u32,
	attribution: Ask,
) -> Result<Result<Completion, String>, String> {
	let body = serde_json::to_vec(&CompletionBody {
		model,
		prompt,
		max_tokens,
		temperature: 0.0,
		attribution,
	})
	.map_err(|_| "cannot encode the request")?;
	let (code, body) = engine_http("/v1/completions", Some(body))?;
	if code != 200 {
		let error = serde_json::from_slice::<EngineError>(&body)
			.ok()
			.and_then(|e| e.error.code)
			.unwrap_or_else(|| format!("HTTP {code}"));
		return Ok(Err(error));
	}
	serde_json::from_slice::<Completion>(&body)
		.map(Ok)
		.map_err(|e| format!("unexpected engine answer: {e}"))
}

/// POSTs the JSON `body` to the engine's `path`, or GETs it without one: the status and the
/// body, or why the engine could not be reached.
fn engine_http(path: &str, body: Option<Vec<u8>>) -> Result<(u16, Vec<u8>), String> {
	let method = if body.is_some() { http::Method::Post } else { http::Method::Get };
	engine_request(method, path, body)
}

/// `method` on the engine's `path`, with a JSON `body` if any; the status and the response body.
fn engine_request(
	method: http::Method,
	path: &str,
	body: Option<Vec<u8>>,
) -> Result<(u16, Vec<u8>), String> {
	let url = format!("{}{path}", engine_url());
	let authorization = engine_token().map(|token| format!("Bearer {token}"));
	let deadline = sp_io::offchain::timestamp().add(Duration::from_millis(ENGINE_TIMEOUT_MS));
	let request = match body {
		Some(body) => http::Request::new(&url)
			.method(method)
			.body(alloc::vec![body])
			.add_header("Content-Type", "application/json"),
		None => http::Request::new(&url).method(method).body(Vec::new()),
	};
	let request = match &authorization {
		Some(value) => request.add_header("Authorization", value),
		None => request,
	};
	let pending = request
		.deadline(deadline)
		.send()
		.map_err(|_| format!("cannot reach the engine at {url}"))?;
	let response = pending
		.try_wait(deadline)
		.map_err(|_| String::from("the engine timed out"))?
		.map_err(|e| format!("engine HTTP error: {e:?}"))?;
	Ok((response.code, response.body().collect()))
}

fn parse_h256(s: &str) -> Option<H256> {
	parse_bytes::<32>(s).map(H256)
}

/// `0x` (optional) and exactly `2N` hex digits.
fn parse_bytes<const N: usize>(s: &str) -> Option<[u8; N]> {
	let digits = s.strip_prefix("0x").unwrap_or(s).as_bytes();
	if digits.len() != 2 * N {
		return None;
	}
	let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
	let mut out = [0u8; N];
	for (i, pair) in digits.chunks(2).enumerate() {
		out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
	}
	Some(out)
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn hashes_round_trip_through_hex() {
		let h = H256([0xa5; 32]);
		assert_eq!(parse_h256(&format!("0x{}", HexDisplay::from(&h.0))), Some(h));
		assert_eq!(parse_h256("0x12"), None);
		assert_eq!(parse_h256(&"zz".repeat(32)), None);
	}

	#[test]
	fn engine_answers_parse() {
		let body = br#"{"id":"cmpl-1","choices":[{"index":0,"text":"Paris.","finish_reason":"stop"}],
			"receipt":{"adapter_hash":"0x11","prompt_hash":"0x22","output_hash":"0x33","input_tokens":5,"output_tokens":2,"attribution_record_hash":null},
			"attribution":{"method":"span","weights":[{"contribution":7,"ppm":1000000}],"index_root":"0x44","record_hash":"0x55","record":{},"spans":[]}}"#;
		let c: Completion = serde_json::from_slice(body).unwrap();
		assert_eq!(c.choices[0].text, "Paris.");
		assert_eq!(c.receipt.output_tokens, 2);
		let a = c.attribution.unwrap();
		assert_eq!((a.method.as_str(), a.weights[0].contribution, a.weights[0].ppm), ("span", 7, PPM));
		let e: EngineError =
			serde_json::from_slice(br#"{"error":{"code":"no_attribution_data","message":"x"}}"#).unwrap();
		assert_eq!(e.error.code.as_deref(), Some("no_attribution_data"));
	}
}

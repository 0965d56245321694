//! The HTTP API end to end: a real server on a local port, a real HTTP client.

use std::path::PathBuf;
use std::sync::Arc;

use openlora::engine::EngineConfig;
use openlora::fixtures::{write_adapter, write_model, ModelSpec};
use openlora::lora::{blake2_256, save_peft};
use openlora::models::gemma3::Proj;
use openlora::prepaid::Terms;
use openlora::server::{router, service, ServeOptions, ServerState};
use serde_json::{json, Value};

struct Server {
    url: String,
    dir: tempfile::TempDir,
    _task: tokio::task::JoinHandle<()>,
}

async fn start(engine: EngineConfig) -> Server {
    start_with(engine, |_| {}).await
}

async fn start_with(engine: EngineConfig, configure: impl FnOnce(&mut ServeOptions)) -> Server {
    start_as(engine, configure, None).await
}

/// A server as `start_with` makes it; with `remote`, every caller seems to connect from there.
async fn start_as(
    engine: EngineConfig,
    configure: impl FnOnce(&mut ServeOptions),
    remote: Option<std::net::SocketAddr>,
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(&dir.path().join("base"), &ModelSpec::tiny(), 11).unwrap();
    let mut opts = ServeOptions::new(model);
    opts.served_model_name = "tiny".into();
    opts.max_context = 64;
    opts.max_lora_rank = 16;
    opts.engine = engine;
    opts.device = openlora::fixtures::test_device();
    let cfg = openlora::models::gemma3::Gemma3Config::from_file(&opts.model).unwrap();
    for i in 0..2 {
        let d = write_adapter(&dir.path().join(format!("ad{i}")), &cfg, 4, 16.0, &Proj::ALL, 40 + i).unwrap();
        opts.loras.push((format!("ad{i}"), d));
    }
    configure(&mut opts);
    let state = Arc::new(ServerState::open(opts).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = match remote {
        None => tokio::spawn(async move { axum::serve(listener, service(state)).await.unwrap() }),
        Some(peer) => {
            let app = router(state).layer(axum::extract::connect_info::MockConnectInfo(peer));
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() })
        }
    };
    Server { url, dir, _task: task }
}

async fn post(s: &Server, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new().post(format!("{}{path}", s.url)).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn get(s: &Server, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("{}{path}", s.url)).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn get_json(s: &Server, path: &str) -> (u16, Value) {
    let (status, body) = get(s, path).await;
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}")))
}

fn greedy(model: &str, prompt: &str, max_tokens: usize) -> Value {
    json!({"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": true})
}

fn hex32(b: &[u8]) -> String {
    format!("0x{}", hex::encode(blake2_256(b)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_carry_text_usage_and_receipt_fields() {
    let s = start(EngineConfig::default()).await;
    let (status, body) = post(&s, "/v1/completions", greedy("ad0", "the cat", 12)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["model"], "ad0");
    let text = body["choices"][0]["text"].as_str().unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 12);
    let prompt_tokens = body["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(prompt_tokens >= 3, "bos + pieces of `the cat`");
    let receipt = &body["receipt"];
    assert_eq!(receipt["prompt_hash"], hex32(b"the cat"));
    assert_eq!(receipt["output_hash"], hex32(text.as_bytes()));
    assert_eq!(receipt["input_tokens"], prompt_tokens);
    assert_eq!(receipt["output_tokens"], 12);
    let adapter_file = std::fs::read(s.dir.path().join("ad0/adapter_model.safetensors")).unwrap();
    assert_eq!(receipt["adapter_hash"], hex32(&adapter_file));
    let model_file = std::fs::read(s.dir.path().join("base/model.gguf")).unwrap();
    assert_eq!(receipt["base_model_hash"], hex32(&model_file));

    // Greedy is deterministic; the base model and another adapter answer differently.
    let (_, again) = post(&s, "/v1/completions", greedy("ad0", "the cat", 12)).await;
    assert_eq!(again["choices"][0]["text"], text);
    let (_, base) = post(&s, "/v1/completions", greedy("tiny", "the cat", 12)).await;
    assert_eq!(base["receipt"]["adapter_hash"], Value::Null);
    let (_, other) = post(&s, "/v1/completions", greedy("ad1", "the cat", 12)).await;
    assert!(base["choices"][0]["text"] != text && other["choices"][0]["text"] != text);
    // The adapter's hash names it too.
    let by_hash = receipt["adapter_hash"].as_str().unwrap();
    let (status, h) = post(&s, "/v1/completions", greedy(by_hash, "the cat", 12)).await;
    assert_eq!(status, 200);
    assert_eq!(h["choices"][0]["text"], text);
}

/// Reads an SSE response into its `data:` payloads.
async fn sse(s: &Server, path: &str, body: Value) -> Vec<String> {
    let r = reqwest::Client::new().post(format!("{}{path}", s.url)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    text.split("\n\n").filter_map(|e| e.strip_prefix("data: ")).map(String::from).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_sends_the_same_text_piece_by_piece() {
    let s = start(EngineConfig::default()).await;
    let (_, whole) = post(&s, "/v1/completions", greedy("ad1", "on the", 20)).await;
    let mut req = greedy("ad1", "on the", 20);
    req["stream"] = json!(true);
    let events = sse(&s, "/v1/completions", req).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    assert!(chunks.len() > 2, "streamed in pieces");
    let text: String = chunks.iter().map(|c| c["choices"][0]["text"].as_str().unwrap()).collect();
    assert_eq!(text, whole["choices"][0]["text"].as_str().unwrap());
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "length");
    assert_eq!(last["receipt"]["output_hash"], whole["receipt"]["output_hash"]);
    assert_eq!(last["usage"]["completion_tokens"], 20);

    // Chat: a role first, then content deltas.
    let events = sse(
        &s,
        "/v1/chat/completions",
        json!({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "temperature": 0, "stream": true, "ignore_eos": true}),
    )
    .await;
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(events.last().unwrap(), "[DONE]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completions_and_stop_sequences() {
    let s = start(EngineConfig::default()).await;
    let (status, body) = post(
        &s,
        "/v1/chat/completions",
        json!({"model": "ad0", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "and the"}], "max_tokens": 8, "temperature": 0, "ignore_eos": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["receipt"]["prompt_hash"], hex32(b"system: be brief\nuser: and the\nassistant:"));

    // A stop sequence taken from the greedy output cuts it there, without the stop itself.
    let (_, full) = post(&s, "/v1/completions", greedy("ad0", "in", 24)).await;
    let text = full["choices"][0]["text"].as_str().unwrap().to_string();
    let cut = text.char_indices().map(|(i, _)| i).nth(6).expect("long enough output");
    let stop: String = text[cut..].chars().take(2).collect();
    let first = text.find(&stop).unwrap();
    let mut req = greedy("ad0", "in", 24);
    req["stop"] = json!([stop]);
    let (_, stopped) = post(&s, "/v1/completions", req).await;
    assert_eq!(stopped["choices"][0]["finish_reason"], "stop");
    assert_eq!(stopped["choices"][0]["text"], &text[..first]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_with_the_right_status() {
    let s = start(EngineConfig::default()).await;
    let (status, body) = post(&s, "/v1/completions", greedy("no-such-adapter", "x", 4)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("model_not_found")));
    assert!(body["error"]["message"].as_str().unwrap().contains("no-such-adapter"));

    let long = "a ".repeat(200);
    let (status, body) = post(&s, "/v1/completions", greedy("tiny", &long, 4)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("context_length_exceeded")));

    let (status, body) = post(&s, "/v1/completions", json!({"model": "tiny"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("prompt"));
    let (status, _) = post(&s, "/v1/completions", json!({"model": "tiny", "prompt": "x", "temperature": 9})).await;
    assert_eq!(status, 400);

    // A record to verify: not one, or of an adapter without lineage.
    for (body, expected) in [
        (json!({"prompt": "x"}), "invalid_request"),
        (json!({"record": "not hex"}), "bad_record"),
        (json!({"record": "0x1234"}), "bad_record"),
    ] {
        let (status, answer) = post(&s, "/v1/attributions/verify", body.clone()).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some(expected)), "{body}: {answer}");
    }
    let adapter = blake2_256(&std::fs::read(s.dir.path().join("ad0/adapter_model.safetensors")).unwrap());
    let record = attribution::record::AttributionRecord {
        method: attribution::record::Method::Datainf { top_k: 8 },
        base_model: [0; 32],
        adapter: Some(adapter),
        index_root: [0; 32],
        prompt_hash: [0; 32],
        output_hash: [0; 32],
        prompt_tokens: vec![2],
        output_tokens: vec![3],
        weights: Vec::new(),
    };
    let record = format!("0x{}", hex::encode(record.canonical_bytes()));
    let (status, body) = post(&s, "/v1/attributions/verify", json!({"record": record})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("no_attribution_data")), "{body}");

    let r = reqwest::Client::new()
        .post(format!("{}/v1/completions", s.url))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "body_too_large");

    let (status, _) = get(&s, "/v1/nothing").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_and_the_rest_complete() {
    let s = start(EngineConfig { max_batch_size: 1, max_queue: 2, ..EngineConfig::default() }).await;
    let client = reqwest::Client::new();
    let sends = (0..12).map(|_| {
        let c = client.clone();
        let url = format!("{}/v1/completions", s.url);
        async move {
            let r = c.post(url).json(&greedy("ad0", "the", 40)).send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            (status, body)
        }
    });
    let results = futures::future::join_all(sends).await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let busy: Vec<_> = results.iter().filter(|(s, _)| *s == 429).collect();
    assert!(ok >= 1 && !busy.is_empty() && ok + busy.len() == 12, "{results:?}");
    assert_eq!(busy[0].1["error"]["code"], "queue_full");
    let (_, metrics) = get(&s, "/metrics").await;
    assert!(metrics.contains(&format!("openlora_requests_rejected_total {}", busy.len())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_load_and_unload_at_run_time() {
    let s = start(EngineConfig::default()).await;
    let (_, models) = get_json(&s, "/v1/models").await;
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["tiny", "ad0", "ad1"]);

    // A copy of ad0 under a new name answers exactly as ad0 does.
    let dir: PathBuf = s.dir.path().join("ad0");
    let (status, body) = post(&s, "/v1/load_lora_adapter", json!({"lora_name": "fresh", "lora_path": dir, "prefetch": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["resident"], true);
    let (_, a) = post(&s, "/v1/completions", greedy("fresh", "re", 8)).await;
    let (_, b) = post(&s, "/v1/completions", greedy("ad0", "re", 8)).await;
    assert_eq!(a["choices"][0]["text"], b["choices"][0]["text"]);
    let (status, _) = post(&s, "/v1/load_lora_adapter", json!({"lora_name": "fresh", "lora_path": dir})).await;
    assert_eq!(status, 400, "a name is registered once");

    let (status, _) = post(&s, "/v1/unload_lora_adapter", json!({"lora_name": "fresh"})).await;
    assert_eq!(status, 200);
    let (status, _) = post(&s, "/v1/completions", greedy("fresh", "re", 8)).await;
    assert_eq!(status, 404);
    let (status, body) = post(&s, "/v1/unload_lora_adapter", json!({"lora_name": "fresh"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("adapter_not_found")));

    // Broken adapters are refused with a reason, and everyone else is still served.
    let bad = s.dir.path().join("bad");
    save_peft(
        &bad,
        4,
        8.0,
        &["q_proj"],
        &[
            ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight".into(), vec![f32::NAN; 4 * 64], vec![4, 64]),
            ("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight".into(), vec![0.0; 64 * 4], vec![64, 4]),
        ],
    )
    .unwrap();
    let (status, body) = post(&s, "/v1/load_lora_adapter", json!({"lora_name": "bad", "lora_path": bad, "prefetch": true})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("adapter_refused")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("NaN"));
    let (status, _) = post(&s, "/v1/completions", greedy("bad", "re", 4)).await;
    assert_eq!(status, 404, "a refused prefetch leaves nothing registered");
    // Without prefetch, the NaN is found when the first request loads it.
    post(&s, "/v1/load_lora_adapter", json!({"lora_name": "bad", "lora_path": bad})).await;
    let (status, body) = post(&s, "/v1/completions", greedy("bad", "re", 4)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("adapter_refused")));
    let (status, body) = post(&s, "/v1/completions", greedy("ad1", "re", 4)).await;
    assert_eq!(status, 200, "{body}");

    let (status, health) = get_json(&s, "/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    let (_, metrics) = get(&s, "/metrics").await;
    for kind in ["openlora_generated_tokens_total counter", "openlora_adapter_cache_misses_total counter", "openlora_adapter_load_seconds histogram", "openlora_queue_depth gauge"] {
        assert!(metrics.contains(&format!("# TYPE {kind}")), "missing {kind}");
    }
    assert!(!metrics.contains("openlora_generated_tokens_total 0\n"));
}

const GENESIS: [u8; 32] = [0x47; 32];

/// A server that takes prepaid requests for `GENESIS`, journaling beside its model's folder.
async fn start_prepaid() -> Server {
    start_prepaid_as(None).await
}

async fn start_prepaid_as(remote: Option<std::net::SocketAddr>) -> Server {
    let configure = |o: &mut ServeOptions| {
        o.ledger_genesis = Some(GENESIS);
        o.journal = Some(o.model.parent().unwrap().with_file_name("journal"));
    };
    start_as(EngineConfig::default(), configure, remote).await
}

fn alice() -> schnorrkel::Keypair {
    schnorrkel::MiniSecretKey::from_bytes(&[7; 32]).unwrap().expand_to_keypair(schnorrkel::ExpansionMode::Ed25519)
}

/// The `openledger` field: `key` signs the terms given (which a test may make differ from the
/// request it sends).
fn openledger(key: &schnorrkel::Keypair, adapter: [u8; 32], prompt: &str, max_tokens: u32, nonce: u64) -> Value {
    let terms = Terms { genesis: GENESIS, adapter_hash: adapter, prompt_hash: blake2_256(prompt.as_bytes()), max_tokens, nonce, max_fee: 1_000 };
    let signature = key.sign_simple(b"substrate", &terms.message()).to_bytes();
    json!({
        "account": format!("0x{}", hex::encode(key.public.to_bytes())),
        "nonce": nonce,
        "max_fee": "1000",
        "signature": format!("0x{}", hex::encode(signature)),
    })
}

fn paid(model: &str, prompt: &str, max_tokens: u32, openledger: Value) -> Value {
    let mut req = greedy(model, prompt, max_tokens as usize);
    req["openledger"] = openledger;
    req
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepaid_requests_are_verified_served_and_journaled() {
    let s = start_prepaid().await;
    let adapter = blake2_256(&std::fs::read(s.dir.path().join("ad0/adapter_model.safetensors")).unwrap());
    let key = alice();
    let first = openledger(&key, adapter, "the cat", 6, 1);
    let (status, body) = post(&s, "/v1/completions", paid("ad0", "the cat", 6, first.clone())).await;
    assert_eq!(status, 200, "{body}");
    let receipt = &body["receipt"];
    assert_eq!(receipt["journal_seq"], 1);

    let (status, page) = get_json(&s, "/v1/journal").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["last_seq"], 1);
    let e = &page["entries"][0];
    assert_eq!(e["seq"], 1);
    assert_eq!(e["account"], format!("0x{}", hex::encode(key.public.to_bytes())));
    assert_eq!((e["nonce"].as_u64(), e["max_fee"].as_str(), e["max_tokens"].as_u64()), (Some(1), Some("1000"), Some(6)));
    for field in ["adapter_hash", "prompt_hash", "output_hash", "input_tokens", "output_tokens"] {
        assert_eq!(e[field], receipt[field], "{field}");
    }
    assert_eq!(e["signature"], first["signature"]);
    assert_eq!((e["method"].as_str(), e["weights"].as_array().map(Vec::len)), (Some("none"), Some(0)));
    assert_eq!(e["record_hash"], format!("0x{}", "00".repeat(32)));

    // The same signed request again is a replay.
    let (status, body) = post(&s, "/v1/completions", paid("ad0", "the cat", 6, first)).await;
    assert_eq!((status, code(&body)), (409, "nonce_used"), "{body}");
    // A signature over other terms than the request's.
    for (prompt, max_tokens, model) in [("the dog", 6, "ad0"), ("the cat", 7, "ad0"), ("the cat", 6, "ad1")] {
        let (status, body) = post(&s, "/v1/completions", paid(model, "the cat", 6, openledger(&key, adapter, prompt, max_tokens, 2))).await;
        assert_eq!((status, code(&body)), (401, "bad_signature"), "{prompt} {max_tokens} {model}: {body}");
    }
    // Chat signs the rendered prompt, the receipt's prompt_hash; the adapter's hash names it.
    let chat_prompt = "user: hi\nassistant:";
    let model = format!("0x{}", hex::encode(adapter));
    let mut chat = json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0});
    chat["openledger"] = openledger(&key, adapter, chat_prompt, 4, 2);
    let (status, body) = post(&s, "/v1/chat/completions", chat).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["receipt"]["journal_seq"], 2);

    // Malformed or unpayable requests.
    let mut no_max = paid("ad0", "x", 4, openledger(&key, adapter, "x", 16, 3));
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let mut bad_account = paid("ad0", "x", 4, openledger(&key, adapter, "x", 4, 3));
    bad_account["openledger"]["account"] = json!("0x1234");
    let mut streamed = paid("ad0", "x", 4, openledger(&key, adapter, "x", 4, 3));
    streamed["stream"] = json!(true);
    let base = paid("tiny", "x", 4, openledger(&key, adapter, "x", 4, 3));
    for req in [no_max, bad_account, streamed, base] {
        let (status, body) = post(&s, "/v1/completions", req).await;
        assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
    }

    // Two requests with one nonce at once: one is served.
    let sends = (0..2).map(|_| post(&s, "/v1/completions", paid("ad0", "on", 24, openledger(&key, adapter, "on", 24, 3))));
    let mut statuses: Vec<u16> = futures::future::join_all(sends).await.into_iter().map(|(s, _)| s).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 409]);

    // Free requests are still served, and not journaled.
    let (status, body) = post(&s, "/v1/completions", greedy("ad0", "the cat", 6)).await;
    assert_eq!((status, &body["receipt"]["journal_seq"]), (200, &Value::Null));

    // Settled entries are not listed again.
    let (status, page) = get_json(&s, "/v1/journal?after=1&limit=1").await;
    assert_eq!((status, page["entries"].as_array().unwrap().len(), &page["entries"][0]["seq"], &page["last_seq"]), (200, 1, &json!(2), &json!(3)));
    let (status, body) = post(&s, "/v1/journal/settled", json!({"through": 2})).await;
    assert_eq!((status, &body["settled_through"]), (200, &json!(2)), "{body}");
    let (_, page) = get_json(&s, "/v1/journal").await;
    let seqs: Vec<&Value> = page["entries"].as_array().unwrap().iter().map(|e| &e["seq"]).collect();
    assert_eq!(seqs, [&json!(3)]);
    let (status, body) = post(&s, "/v1/journal/settled", json!({"through": 4})).await;
    assert_eq!((status, code(&body)), (400, "bad_request"));
    let (status, _) = get(&s, "/v1/journal?limit=1025").await;
    assert_eq!(status, 400);
    let (status, body) = post(&s, "/v1/completions", paid("ad0", "the cat", 6, openledger(&key, adapter, "the cat", 6, 2))).await;
    assert_eq!((status, code(&body)), (409, "nonce_used"), "a settled nonce stays used: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_genesis_prepaid_requests_are_refused() {
    let s = start(EngineConfig::default()).await;
    let adapter = blake2_256(&std::fs::read(s.dir.path().join("ad0/adapter_model.safetensors")).unwrap());
    let (status, body) = post(&s, "/v1/completions", paid("ad0", "the cat", 6, openledger(&alice(), adapter, "the cat", 6, 1))).await;
    assert_eq!((status, code(&body)), (400, "prepaid_disabled"), "{body}");
    let (status, body) = get(&s, "/v1/journal").await;
    assert_eq!(status, 404, "{body}");

    let mut opts = ServeOptions::new(s.dir.path().join("base/model.gguf"));
    opts.ledger_genesis = Some(GENESIS);
    let e = ServerState::open(opts).err().expect("a genesis without a journal is refused");
    assert!(e.to_string().contains("--journal"), "{e}");
}

async fn put(s: &Server, path: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .put(format!("{}{path}", s.url))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_batches_are_archived_with_their_leaves_and_served_with_proofs() {
    let s = start_prepaid().await;
    let leaves: Vec<Vec<u8>> = (1..=3u8).map(|n| vec![n; 40]).collect();
    let root = attribution::leaves_root(&leaves);
    let upload = |root: [u8; 32], leaves: &[Vec<u8>]| {
        json!({
            "root": attribution::hex32(&root),
            "batch": "0x0102",
            "leaves": leaves.iter().map(|l| format!("0x{}", hex::encode(l))).collect::<Vec<_>>(),
        })
        .to_string()
    };

    let (status, body) = get_json(&s, "/v1/batches/7").await;
    assert_eq!((status, code(&body)), (404, "batch_not_found"));
    let (status, body) = put(&s, "/v1/batches/7", &upload(root, &leaves)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["leaves"], 3);

    let (status, body) = get_json(&s, "/v1/batches/7").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["nonce"].as_u64(), body["batch"].as_str()), (Some(7), Some("0x0102")));
    assert_eq!(body["leaves"][2], format!("0x{}", hex::encode(&leaves[2])));
    let (status, proof) = get_json(&s, "/v1/batches/7/proofs/0").await;
    assert_eq!(status, 200, "{proof}");
    let sibling = format!("0x{}", hex::encode(blake2_256(&leaves[1])));
    assert_eq!(proof["proof"][0], sibling);
    assert_eq!((proof["number_of_leaves"].as_u64(), proof["root"].as_str()), (Some(3), Some(attribution::hex32(&root).as_str())));
    let (status, body) = get_json(&s, "/v1/batches/7/proofs/3").await;
    assert_eq!((status, code(&body)), (404, "leaf_not_found"));

    // Leaves that do not hash to the root, a bad nonce and bad JSON are refused; the archive
    // keeps what it had.
    let (status, body) = put(&s, "/v1/batches/7", &upload([9; 32], &leaves)).await;
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("not the stated root"), "{body}");
    let (status, body) = put(&s, "/v1/batches/seven", &upload(root, &leaves)).await;
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
    let (status, body) = put(&s, "/v1/batches/7", "{\"root\": 1}").await;
    assert_eq!((status, code(&body)), (400, "invalid_request"), "{body}");
    let (_, body) = get_json(&s, "/v1/batches/7").await;
    assert_eq!(body["leaves"].as_array().map(Vec::len), Some(3));

    // Without a journal there is no archive either.
    let plain = start(EngineConfig::default()).await;
    let (status, body) = get_json(&plain, "/v1/batches/7").await;
    assert_eq!((status, code(&body)), (404, "journal_disabled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_endpoints_answer_only_callers_on_the_engines_machine() {
    let s = start_prepaid_as(Some(([192, 0, 2, 7], 40_000).into())).await;
    let adapter = blake2_256(&std::fs::read(s.dir.path().join("ad0/adapter_model.safetensors")).unwrap());
    let forbidden = |(status, body): (u16, Value)| assert_eq!((status, code(&body)), (403, "operator_only"), "{body}");
    forbidden(get_json(&s, "/v1/journal").await);
    forbidden(post(&s, "/v1/journal/settled", json!({"through": 0})).await);
    forbidden(put(&s, "/v1/batches/0", "{}").await);
    forbidden(post(&s, "/v1/load_lora_adapter", json!({"lora_name": "x", "lora_path": "/etc"})).await);
    forbidden(post(&s, "/v1/unload_lora_adapter", json!({"lora_name": "ad0"})).await);
    // What payers and other operators need still answers: a prepaid completion, the archive and
    // verification.
    let (status, body) = post(&s, "/v1/completions", paid("ad0", "the cat", 6, openledger(&alice(), adapter, "the cat", 6, 1))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get_json(&s, "/v1/batches/0").await;
    assert_eq!((status, code(&body)), (404, "batch_not_found"));
    let (status, body) = post(&s, "/v1/attributions/verify", json!({"record": "0x1234"})).await;
    assert_eq!((status, code(&body)), (400, "bad_record"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_another_machine_reaches_the_operator_endpoints_with_the_operator_token() {
    const TOKEN: &str = "0123456789abcdef-operator";
    let remote = Some(([192, 0, 2, 7], 40_000).into());
    let s = start_as(EngineConfig::default(), |o| o.operator_token = Some(TOKEN.into()), remote).await;
    let journal = |auth: Option<&str>| {
        let mut r = reqwest::Client::new().get(format!("{}/v1/journal", s.url));
        if let Some(auth) = auth {
            r = r.header("authorization", auth);
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    // Past the operator check, this engine has no journal to show.
    let (status, body) = journal(Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!((status, code(&body)), (404, "journal_disabled"), "{body}");
    for auth in [None, Some("Bearer 0123456789abcdef-operatoR"), Some("Bearer 0123456789abcdef"), Some(TOKEN)] {
        let (status, body) = journal(auth).await;
        assert_eq!((status, code(&body)), (403, "operator_only"), "{auth:?}: {body}");
    }
}

#[test]
fn an_operator_token_must_be_long_and_header_safe() {
    let dir = tempfile::tempdir().unwrap();
    let read = |content: &str| {
        let path = dir.path().join("token");
        std::fs::write(&path, content).unwrap();
        openlora::server::read_operator_token(&path).map_err(|e| e.to_string())
    };
    assert_eq!(read("  0123456789abcdef-operator\n").unwrap(), "0123456789abcdef-operator");
    for bad in ["short", "0123456789abcdef operator", "0123456789abcdef\u{e9}", &"x".repeat(257)] {
        assert!(read(bad).unwrap_err().contains("16 to 256 visible ASCII"), "{bad:?}");
    }
    assert!(openlora::server::read_operator_token(&dir.path().join("missing")).is_err());
}

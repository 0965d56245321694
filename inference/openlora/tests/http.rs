//! The HTTP API end to end: a real server on a local port, a real HTTP client.

use std::path::PathBuf;
use std::sync::Arc;

use openlora::engine::EngineConfig;
use openlora::fixtures::{write_adapter, write_model, ModelSpec};
use openlora::lora::{blake2_256, save_peft};
use openlora::models::gemma3::Proj;
use openlora::server::{router, ServeOptions, ServerState};
use serde_json::{json, Value};

struct Server {
    url: String,
    dir: tempfile::TempDir,
    _task: tokio::task::JoinHandle<()>,
}

async fn start(engine: EngineConfig) -> Server {
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
    let state = Arc::new(ServerState::open(opts).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
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
    let (_, models) = get(&s, "/v1/models").await;
    let models: Value = serde_json::from_str(&models).unwrap();
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

    let (status, health) = get(&s, "/health").await;
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "ok");
    let (_, metrics) = get(&s, "/metrics").await;
    for kind in ["openlora_generated_tokens_total counter", "openlora_adapter_cache_misses_total counter", "openlora_adapter_load_seconds histogram", "openlora_queue_depth gauge"] {
        assert!(metrics.contains(&format!("# TYPE {kind}")), "missing {kind}");
    }
    assert!(!metrics.contains("openlora_generated_tokens_total 0\n"));
}

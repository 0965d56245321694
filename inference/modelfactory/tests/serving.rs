//! Attribution through the OpenLoRA HTTP API: a real server on a local port serving an adapter
//! ModelFactory trained, a real HTTP client, and the records it returns verified offline and by
//! the engine itself (`/v1/attributions/verify`).

use std::path::PathBuf;
use std::sync::Arc;

use attribution::lineage::HyperParameters;
use attribution::record::{AttributionRecord, Verdict};
use modelfactory::factory::{self, tokenizer_for, TrainOptions};
use modelfactory::source::read_folder;
use openlora::attributor::Attributor;
use openlora::fixtures::{write_model, ModelSpec};
use openlora::server::{service, ServeOptions, ServerState};
use serde_json::{json, Value};

struct Server {
    url: String,
    model: PathBuf,
    adapter: PathBuf,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(&dir.path().join("base"), &ModelSpec::tiny(), 5).unwrap();
    let folder = dir.path().join("data");
    std::fs::create_dir_all(&folder).unwrap();
    for (i, t) in ["the old mill grinds corn for the whole valley every autumn", "a green ferry crosses the lake twice each morning"].iter().enumerate() {
        std::fs::write(folder.join(format!("{i}.txt")), t.repeat(3)).unwrap();
    }
    let (data, refs) = read_folder(&folder).unwrap();
    let hyper = HyperParameters {
        rank: 8,
        alpha: 16.0,
        targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"].map(String::from).to_vec(),
        steps: 150,
        learning_rate: 1e-2,
        weight_decay: 0.0,
        seq_len: 48,
        batch: 2,
        seed: 3,
        holdout_every: 0,
        gradient_tokens: 64,
    };
    let adapter = dir.path().join("trained");
    let m = model.clone();
    let a = adapter.clone();
    tokio::task::spawn_blocking(move || factory::train(&m, vec![data], refs, &TrainOptions { hyper, index_from: None }, &a).unwrap())
        .await
        .unwrap();
    let mut opts = ServeOptions::new(model.clone());
    opts.served_model_name = "tiny".into();
    opts.max_context = 64;
    opts.loras.push(("mill".into(), adapter.clone()));
    let state = Arc::new(ServerState::open(opts).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, service(state)).await.unwrap() });
    Server { url, model, adapter, _dir: dir }
}

async fn post(s: &Server, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new().post(format!("{}{path}", s.url)).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn complete(s: &Server, body: Value) -> (u16, Value) {
    post(s, "/v1/completions", body).await
}

async fn verify(s: &Server, record: &AttributionRecord, prompt: &str) -> (u16, Value) {
    let record = format!("0x{}", hex::encode(record.canonical_bytes()));
    post(s, "/v1/attributions/verify", json!({"record": record, "prompt": prompt})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_carry_attribution_records_that_verify() {
    let s = start().await;
    let tok = tokenizer_for(&s.model).unwrap();
    for method in ["span", "datainf"] {
        let req = json!({"model": "mill", "prompt": "the old mill grinds", "max_tokens": 12, "temperature": 0, "attribution": method});
        let (status, body) = complete(&s, req).await;
        assert_eq!(status, 200, "{body}");
        let a = &body["attribution"];
        assert_eq!(a["method"], method);
        assert_eq!(body["receipt"]["attribution_record_hash"], a["record_hash"]);
        let record: AttributionRecord = serde_json::from_value(a["record"].clone()).unwrap();
        assert_eq!(attribution::hex32(&record.hash()), a["record_hash"].as_str().unwrap());
        assert_eq!(attribution::hex32(&record.index_root), a["index_root"].as_str().unwrap());
        assert_eq!(record.output_tokens.len() as u64, body["usage"]["completion_tokens"].as_u64().unwrap());
        let ppm: u64 = record.weights.iter().map(|w| w.ppm as u64).sum();
        assert!(ppm == 0 || ppm == 1_000_000, "{method}: weights sum to {ppm}");
        // Anyone with the model, the adapter folder and the prompt recomputes the same record.
        let (model, adapter) = (s.model.clone(), s.adapter.clone());
        let tok = tok.clone();
        let verdict = tokio::task::spawn_blocking(move || {
            Attributor::new(&model, 64).verify(&record, &adapter, &tok, Some("the old mill grinds")).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(verdict, Verdict::Match, "{method}");
    }
    // The adapter was trained to continue this text: its output copies the datanet, and the
    // span method pays the contribution it copies.
    let (_, body) = complete(&s, json!({"model": "mill", "prompt": "the old mill", "max_tokens": 16, "temperature": 0, "attribution": true})).await;
    let weights = body["attribution"]["weights"].as_array().unwrap();
    assert_eq!(weights.first().map(|w| w["contribution"].clone()), Some(json!(0)), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribution_that_cannot_be_done_is_refused_clearly() {
    let s = start().await;
    let (status, body) = complete(&s, json!({"model": "tiny", "prompt": "x", "max_tokens": 2, "attribution": true})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "no_attribution_data");
    let (status, body) = complete(&s, json!({"model": "mill", "prompt": "x", "max_tokens": 2, "attribution": "magic"})).await;
    assert_eq!(status, 400, "{body}");
    // Not asked for: no attribution, and the receipt names none.
    let (status, body) = complete(&s, json!({"model": "mill", "prompt": "x", "max_tokens": 2})).await;
    assert_eq!(status, 200);
    assert!(body["attribution"].is_null() && body["receipt"]["attribution_record_hash"].is_null());
    // Streaming: the last chunk carries the attribution.
    let r = reqwest::Client::new()
        .post(format!("{}/v1/completions", s.url))
        .json(&json!({"model": "mill", "prompt": "the old mill", "max_tokens": 4, "stream": true, "attribution": "span"}))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    let last: Value = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .last()
        .unwrap();
    assert_eq!(last["attribution"]["method"], "span", "{last}");
    assert_eq!(last["receipt"]["attribution_record_hash"], last["attribution"]["record_hash"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_recomputes_a_records_canonical_bytes() {
    let s = start().await;
    let prompt = "the old mill grinds";
    let req = json!({"model": "mill", "prompt": prompt, "max_tokens": 12, "temperature": 0, "attribution": "span"});
    let (status, body) = complete(&s, req).await;
    assert_eq!(status, 200, "{body}");
    let a = &body["attribution"];
    let honest = a["record_hash"].as_str().unwrap();
    // The bytes a challenge puts on chain are the ones the receipt's hash is of.
    let bytes = hex::decode(a["record_bytes"].as_str().unwrap().strip_prefix("0x").unwrap()).unwrap();
    assert_eq!(attribution::hex32(&attribution::blake2_256(&bytes)), honest);
    let record = AttributionRecord::from_canonical_bytes(&bytes).unwrap();

    let (status, body) = verify(&s, &record, prompt).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verdict"], "match", "{body}");
    assert_eq!((body["claimed"]["record_hash"].as_str(), body["recomputed"]["record_hash"].as_str()), (Some(honest), Some(honest)));
    assert_eq!(body["claimed"]["method"], "span");
    assert_eq!(body["recomputed"]["weights"], a["weights"]);

    // Another prompt: the record's inputs are not that completion's; the record recomputed from
    // the given prompt still comes back.
    let (status, body) = verify(&s, &record, "the green ferry").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["verdict"].as_str(), body["field"].as_str()), (Some("inputs_differ"), Some("prompt_hash")), "{body}");
    assert!(body["recomputed"]["record_hash"].is_string(), "{body}");

    // Forged weights (a contribution the datanet does not have): the engine recomputes the
    // honest record.
    let mut forged = record.clone();
    forged.weights = vec![attribution::Weight { contribution: 999, ppm: attribution::PPM }];
    let (status, body) = verify(&s, &forged, prompt).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verdict"], "weights_differ", "{body}");
    assert!(body["l1_ppm"].as_u64().unwrap() >= 1_000_000, "{body}");
    assert_eq!(body["claimed"]["record_hash"].as_str().unwrap(), attribution::hex32(&forged.hash()));
    assert_eq!(body["recomputed"]["record_hash"].as_str(), Some(honest));

    // What cannot be verified here.
    let code = |(status, body): (u16, Value)| (status, body["error"]["code"].as_str().unwrap_or_default().to_string());
    let bad = post(&s, "/v1/attributions/verify", json!({"record": "0x1234", "prompt": prompt})).await;
    assert_eq!(code(bad), (400, "bad_record".to_string()));
    let mut elsewhere = record.clone();
    elsewhere.adapter = Some([7; 32]);
    assert_eq!(code(verify(&s, &elsewhere, prompt).await), (404, "model_not_found".to_string()));
    let mut base = record.clone();
    base.adapter = None;
    assert_eq!(code(verify(&s, &base, prompt).await), (422, "no_attribution_data".to_string()));
}

//! The HTTP API: OpenAI-compatible completions with SSE streaming, vLLM-style adapter loading,
//! health and Prometheus metrics.
//!
//! Every error is JSON, `{"error": {"message", "type", "code"}}`, with the status a client can
//! act on: 400 bad input, 404 unknown adapter, 413 body too large, 422 adapter refused,
//! 429 queue full.
//!
//! A completion of an adapter trained by ModelFactory can ask for attribution
//! (`"attribution": true`, `"span"` or `"datainf"`; `openlora --attribution` sets a default):
//! the response then carries the attribution record (see `attributor`), its canonical bytes and
//! its hash, which the receipt names.
//!
//! `POST /v1/attributions/verify` recomputes a claimed record (its canonical bytes, as a
//! challenge puts them on chain) from this engine's own model, adapter and attribution data, and
//! answers `match`, `weights_differ` or `inputs_differ` with both records: how an operator's node
//! judges another operator's attribution.
//!
//! With `--ledger-genesis` (and `--journal`), a completion may be prepaid: signed by the paying
//! account (`"openledger"`, see `prepaid`) and journaled before it is answered (see `journal`);
//! `/v1/journal` and `/v1/journal/settled` serve the journal to the operator's node, and
//! `/v1/batches/{nonce}` archives and serves the leaves of the batches it settles (see `batches`).
//!
//! The operator's endpoints — loading and unloading adapters, the journal, archiving a batch —
//! answer callers on this machine only (403 `operator_only`), or, with `--operator-token-file`,
//! callers that send that token as `Authorization: Bearer <token>`: payers reach the engine from
//! anywhere, and must not be able to settle an operator's journal or replace its archive.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use attribution::hex32;
use attribution::record::AttributionRecord;
use candle_core::Device;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::adapters::{register_dir, AdapterStore, StoreError};
use crate::attributor::{AttributionCache, Attributor, Completion, MethodChoice};
use crate::batches::{ArchiveError, ArchivedBatch, BatchArchive, BatchUpload, HexBytes, LeafProof};
use crate::engine::{Engine, EngineConfig, Event, Finish, Request, SubmitError};
use crate::journal::{Journal, Leaf, NonceUsed, Page, Reservation, SettleError};
use crate::lora::{blake2_256, blake2_256_file, Hash256};
use crate::metrics::Metrics;
use crate::models::gemma3::Gemma3;
use crate::prepaid::{Authorization, Terms};
use crate::sampling::SamplingParams;

/// A batch's leaves (`PUT /v1/batches/{nonce}`) may be up to this many bytes.
pub const MAX_BATCH_BODY_BYTES: usize = 4 << 20;

/// Request bodies above this are refused (413): prompts are bounded by the context anyway.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// What a server needs to start; `openlora`'s flags fill it.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub model: PathBuf,
    /// Default: `tokenizer.json` beside the model, created from its vocabulary when missing.
    pub tokenizer: Option<PathBuf>,
    pub served_model_name: String,
    pub loras: Vec<(String, PathBuf)>,
    pub lora_dir: Option<PathBuf>,
    pub max_lora_rank: usize,
    pub adapter_cache_bytes: usize,
    pub max_context: usize,
    pub engine: EngineConfig,
    pub device: Device,
    /// Attribution for requests that do not say (`None`: only on request).
    pub default_attribution: Option<MethodChoice>,
    /// The chain prepaid requests are signed for; `None` refuses them.
    pub ledger_genesis: Option<Hash256>,
    /// Where served prepaid requests are journaled; required with `ledger_genesis`.
    pub journal: Option<PathBuf>,
    /// Admits callers from other machines to the operator's endpoints when they send it as
    /// `Authorization: Bearer <token>` (see [`read_operator_token`]).
    pub operator_token: Option<String>,
}

impl ServeOptions {
    pub fn new(model: PathBuf) -> Self {
        Self {
            model,
            tokenizer: None,
            served_model_name: "gemma-3-270m".into(),
            loras: Vec::new(),
            lora_dir: None,
            max_lora_rank: 128,
            adapter_cache_bytes: 1 << 30,
            max_context: 4096,
            engine: EngineConfig::default(),
            device: Device::Cpu,
            default_attribution: None,
            ledger_genesis: None,
            journal: None,
            operator_token: None,
        }
    }
}

pub struct ServerState {
    pub engine: Engine,
    /// The name under which the base model is served (`model` for no adapter).
    pub base_name: String,
    /// blake2-256 of the base model file.
    pub base_hash: Hash256,
    pub chat: ChatTemplate,
    attributor: Attributor,
    attribution_data: AttributionCache,
    default_attribution: Option<MethodChoice>,
    ledger_genesis: Option<Hash256>,
    journal: Option<Arc<Journal>>,
    /// In the journal's folder, under `batches/`.
    batches: Option<Arc<BatchArchive>>,
    operator_token: Option<String>,
}

impl ServerState {
    /// Loads the model and tokenizer, registers the adapters and starts the engine.
    pub fn open(opts: ServeOptions) -> anyhow::Result<Self> {
        if opts.ledger_genesis.is_some() && opts.journal.is_none() {
            anyhow::bail!(
                "--ledger-genesis needs --journal DIR: a prepaid request is journaled before it is answered, so that it can be settled"
            );
        }
        // The archive of settled batches lives in the journal's folder.
        let (journal, batches) = match opts.journal.as_deref() {
            None => (None, None),
            Some(dir) => {
                let journal = Journal::open(dir).with_context(|| format!("opening the journal {}", dir.display()))?;
                let archive = dir.join("batches");
                let batches = BatchArchive::open(&archive)
                    .with_context(|| format!("opening the batch archive {}", archive.display()))?;
                (Some(Arc::new(journal)), Some(Arc::new(batches)))
            }
        };
        let started = std::time::Instant::now();
        let tokenizer_path =
            opts.tokenizer.clone().unwrap_or_else(|| opts.model.with_file_name("tokenizer.json"));
        let tokenizer = Arc::new(crate::tokenizer::load_or_convert(&tokenizer_path, &opts.model)?);
        let model = Gemma3::load(&opts.model, opts.max_context, &opts.device)?;
        let base_hash = blake2_256_file(&opts.model).context("hashing the model")?;
        tracing::info!(
            "loaded {} ({} layers, hidden {}, vocab {}) on {:?} in {:.1?}",
            opts.model.display(),
            model.config.num_layers,
            model.config.hidden_size,
            model.config.vocab_size,
            opts.device,
            started.elapsed()
        );
        let metrics = Arc::new(Metrics::default());
        let mut store = AdapterStore::new(
            model.config.clone(),
            opts.max_lora_rank,
            opts.adapter_cache_bytes,
            metrics.clone(),
        );
        for (name, path) in &opts.loras {
            store.register(name, path).with_context(|| format!("adapter {name}={}", path.display()))?;
        }
        if let Some(dir) = &opts.lora_dir {
            let n = register_dir(&mut store, dir).with_context(|| format!("adapter folder {}", dir.display()))?;
            tracing::info!("registered {n} adapters from {}", dir.display());
        }
        let chat = ChatTemplate::for_tokenizer(&tokenizer);
        let engine = Engine::start(model, tokenizer, Arc::new(Mutex::new(store)), opts.engine, metrics);
        Ok(Self {
            engine,
            base_name: opts.served_model_name,
            base_hash,
            chat,
            attributor: Attributor::new(&opts.model, opts.max_context),
            attribution_data: AttributionCache::default(),
            default_attribution: opts.default_attribution,
            ledger_genesis: opts.ledger_genesis,
            journal,
            batches,
            operator_token: opts.operator_token,
        })
    }
}

/// The HTTP service, with each connection's peer address (see [`FromOperator`]).
pub fn service(state: Arc<ServerState>) -> IntoMakeServiceWithConnectInfo<Router, SocketAddr> {
    router(state).into_make_service_with_connect_info::<SocketAddr>()
}

pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/attributions/verify", post(verify_attribution))
        .route("/v1/models", get(models))
        .route("/v1/load_lora_adapter", post(load_adapter))
        .route("/v1/unload_lora_adapter", post(unload_adapter))
        .route("/v1/journal", get(journal_page))
        .route("/v1/journal/settled", post(journal_settled))
        .route(
            "/v1/batches/{nonce}",
            put(archive_batch).get(archived_batch).layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES)),
        )
        .route("/v1/batches/{nonce}/proofs/{index}", get(leaf_proof))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    /// Bad input to the prepaid and journal features, which name it `bad_request`.
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    fn journal_failed(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "journal_failed", format!("the journal could not record it: {e}"))
    }
    fn archive_failed(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "archive_failed", format!("the batch archive failed: {e}"))
    }
    fn attribution_failed(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "attribution_failed", format!("{e:#}"))
    }
    fn no_attribution_data(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "no_attribution_data", message)
    }
    fn json(&self) -> Value {
        let kind = match self.status.as_u16() {
            404 => "not_found_error",
            429 => "rate_limit_error",
            400..=499 => "invalid_request_error",
            _ => "server_error",
        };
        json!({"error": {"message": self.message, "type": kind, "code": self.code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.json())).into_response()
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        let (status, code) = match e {
            SubmitError::QueueFull(_) => (StatusCode::TOO_MANY_REQUESTS, "queue_full"),
            SubmitError::TooLong { .. } => (StatusCode::BAD_REQUEST, "context_length_exceeded"),
            SubmitError::EmptyPrompt => (StatusCode::BAD_REQUEST, "empty_prompt"),
            SubmitError::Stopped => (StatusCode::SERVICE_UNAVAILABLE, "engine_stopped"),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<NonceUsed> for ApiError {
    fn from(e: NonceUsed) -> Self {
        Self::new(StatusCode::CONFLICT, "nonce_used", e.to_string())
    }
}

impl From<SettleError> for ApiError {
    fn from(e: SettleError) -> Self {
        match e {
            SettleError::BeyondEnd { .. } => Self::bad_request(e.to_string()),
            SettleError::Io(_) => Self::journal_failed(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let (status, code) = match e {
            StoreError::Unknown(_) => (StatusCode::NOT_FOUND, "adapter_not_found"),
            StoreError::NameTaken(_) => (StatusCode::BAD_REQUEST, "adapter_exists"),
            StoreError::Refused { .. } | StoreError::Changed(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "adapter_refused")
            }
            StoreError::TooLarge { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "adapter_too_large"),
        };
        Self::new(status, code, e.to_string())
    }
}

/// A caller of an operator's endpoint: on this machine (a loopback peer), where the operator's
/// node and tools run, or holding the operator token. Anything else, or a peer the server was
/// not told, is refused.
pub struct FromOperator;

impl FromRequestParts<Arc<ServerState>> for FromOperator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<ServerState>) -> Result<Self, ApiError> {
        let local = matches!(parts.extensions.get::<ConnectInfo<SocketAddr>>(), Some(ConnectInfo(peer)) if peer.ip().is_loopback());
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let holds_token = match (&state.operator_token, bearer) {
            (Some(token), Some(sent)) => same_secret(token.as_bytes(), sent.as_bytes()),
            _ => false,
        };
        if local || holds_token {
            Ok(Self)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "operator_only",
                "this endpoint is for the operator's node: on the engine's machine, or with the operator token (Authorization: Bearer)",
            ))
        }
    }
}

/// Compares a secret in time that depends on its length only, so that answer times do not
/// reveal how much of a guess was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Reads the operator token from `path`: the file's content without surrounding whitespace,
/// 16 to 256 visible ASCII characters (it travels in an HTTP header, and a short one can be
/// guessed). The node sends it from the same file (`openledger-node --inference-token-file`).
pub fn read_operator_token(path: &std::path::Path) -> anyhow::Result<String> {
    let raw = std::fs::read_to_string(path).with_context(|| format!("reading the operator token {}", path.display()))?;
    let token = raw.trim();
    anyhow::ensure!(
        (16..=256).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic()),
        "the operator token in {} must be 16 to 256 visible ASCII characters (e.g. `openssl rand -hex 32`)",
        path.display()
    );
    Ok(token.to_string())
}

/// Parses a JSON body, turning every failure (size, syntax, types) into a JSON error.
fn parse<T: serde::de::DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body.map_err(|e| {
        let status = e.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "body_too_large" } else { "bad_body" };
        ApiError::new(status, code, e.body_text())
    })?;
    serde_json::from_slice(&body).map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// The fields both completion endpoints share.
#[derive(Deserialize)]
struct Common {
    model: String,
    max_tokens: Option<usize>,
    #[serde(alias = "max_completion_tokens")]
    max_completion_tokens: Option<usize>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    seed: Option<u64>,
    stop: Option<OneOrMany>,
    #[serde(default)]
    stream: bool,
    n: Option<usize>,
    #[serde(default)]
    ignore_eos: bool,
    attribution: Option<AttributionField>,
    /// A prepaid request's payer and signature (`prepaid::Authorization`), checked by
    /// `authorize` so that every mistake in it gets the same error code.
    openledger: Option<Value>,
}

/// `"attribution": true | false | "span" | "datainf"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum AttributionField {
    Flag(bool),
    Method(String),
}

#[derive(Deserialize)]
struct CompletionRequest {
    #[serde(flatten)]
    common: Common,
    prompt: OneOrMany,
}

#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    content: ChatContent,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ChatContent {
    Text(String),
    Parts(Vec<ChatPart>),
}

#[derive(Deserialize)]
struct ChatPart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
}

#[derive(Deserialize)]
struct ChatRequest {
    #[serde(flatten)]
    common: Common,
    messages: Vec<ChatMessage>,
}

/// How chat messages become one prompt.
#[derive(Clone, Copy, Debug)]
pub enum ChatTemplate {
    /// Gemma's turns: `<start_of_turn>user … <end_of_turn>`; system text opens the first user turn.
    Gemma,
    /// `role: content` lines, for models without chat tokens.
    Plain,
}

impl ChatTemplate {
    pub fn for_tokenizer(tok: &tokenizers::Tokenizer) -> Self {
        if tok.token_to_id("<start_of_turn>").is_some() {
            Self::Gemma
        } else {
            Self::Plain
        }
    }

    fn render(self, messages: &[(String, String)]) -> String {
        let mut out = String::new();
        match self {
            Self::Gemma => {
                let mut system = String::new();
                for (role, content) in messages {
                    match role.as_str() {
                        "system" | "developer" => system.push_str(&format!("{content}\n\n")),
                        "assistant" | "model" => {
                            out.push_str(&format!("<start_of_turn>model\n{content}<end_of_turn>\n"))
                        }
                        _ => {
                            let content = format!("{}{content}", std::mem::take(&mut system));
                            out.push_str(&format!("<start_of_turn>user\n{content}<end_of_turn>\n"))
                        }
                    }
                }
                out.push_str("<start_of_turn>model\n");
            }
            Self::Plain => {
                for (role, content) in messages {
                    out.push_str(&format!("{role}: {content}\n"));
                }
                out.push_str("assistant:");
            }
        }
        out
    }
}

/// A validated request, ready for the engine.
struct Prepared {
    model: String,
    adapter: Option<String>,
    prompt_text: String,
    /// blake2-256 of `prompt_text`: the receipt's, and what a prepaid request signs.
    prompt_hash: Hash256,
    prompt: Vec<u32>,
    max_tokens: usize,
    sampling: SamplingParams,
    stop: Vec<String>,
    ignore_eos: bool,
    stream: bool,
    /// The method and the adapter's folder, when this completion is to be attributed.
    attribution: Option<(MethodChoice, PathBuf)>,
    paid: Option<Paid>,
}

/// A prepaid request whose signature checked out, holding its nonce while it is served.
struct Paid {
    auth: Authorization,
    adapter_hash: Hash256,
    max_tokens: u32,
    reservation: Reservation,
}

/// Completions default to OpenAI's 16 tokens; chat to whatever the context leaves, capped.
const DEFAULT_MAX_TOKENS: usize = 16;
const DEFAULT_CHAT_MAX_TOKENS: usize = 512;

fn prepare(state: &ServerState, c: Common, prompt_text: String, chat: bool) -> Result<Prepared, ApiError> {
    if c.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad("only n = 1 is supported"));
    }
    let temperature = c.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::bad("temperature must be between 0 and 2"));
    }
    let top_p = c.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::bad("top_p must be in (0, 1]"));
    }
    let stop = c.stop.map(OneOrMany::into_vec).unwrap_or_default();
    if stop.len() > 4 || stop.iter().any(|s| s.len() > 256) {
        return Err(ApiError::bad("at most 4 stop sequences of at most 256 bytes"));
    }
    let explicit = match c.attribution {
        None => None,
        Some(AttributionField::Flag(false)) => Some(None),
        Some(AttributionField::Flag(true)) => Some(Some(state.default_attribution.unwrap_or(MethodChoice::Span))),
        Some(AttributionField::Method(m)) => Some(Some(
            MethodChoice::parse(&m).ok_or_else(|| ApiError::bad(format!("unknown attribution method `{m}`: span or datainf")))?,
        )),
    };
    let (adapter, adapter_dir, adapter_hash) = if c.model == state.base_name {
        (None, None, None)
    } else {
        let store = state.engine.store.lock().unwrap_or_else(|e| e.into_inner());
        let reg = store.resolve(&c.model).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "model_not_found",
                format!("the model `{}` does not exist: no base model or adapter has that name", c.model),
            )
        })?;
        (Some(reg.name.clone()), Some(reg.header.dir.clone()), Some(reg.header.hash))
    };
    let trained = adapter_dir.filter(|d| d.join(attribution::lineage::LINEAGE_FILE).is_file());
    // Asked for explicitly, attribution must be possible; a server default applies where it is.
    let attribution = match (explicit, trained) {
        (Some(None), _) | (None, None) => None,
        (None, Some(dir)) => state.default_attribution.map(|m| (m, dir)),
        (Some(Some(m)), Some(dir)) => Some((m, dir)),
        (Some(Some(_)), None) => {
            return Err(ApiError::no_attribution_data(format!(
                "`{}` has no lineage: attribution needs an adapter trained by modelfactory",
                c.model
            )))
        }
    };
    let enc = state
        .engine
        .tokenizer
        .encode(prompt_text.as_str(), true)
        .map_err(|e| ApiError::bad(format!("cannot tokenize the prompt: {e}")))?;
    let prompt = enc.get_ids().to_vec();
    let context = state.engine.context();
    let explicit_max_tokens = c.max_completion_tokens.or(c.max_tokens);
    let max_tokens = match explicit_max_tokens {
        Some(0) => return Err(ApiError::bad("max_tokens must be at least 1")),
        Some(n) => n,
        None if chat => DEFAULT_CHAT_MAX_TOKENS.min(context.saturating_sub(prompt.len())).max(1),
        None => DEFAULT_MAX_TOKENS,
    };
    let prompt_hash = blake2_256(prompt_text.as_bytes());
    let paid = match c.openledger {
        None => None,
        Some(field) => Some(authorize(state, field, adapter_hash, prompt_hash, explicit_max_tokens, c.stream)?),
    };
    Ok(Prepared {
        model: c.model,
        adapter,
        prompt_text,
        prompt_hash,
        prompt,
        max_tokens,
        sampling: SamplingParams { temperature, top_p, seed: c.seed },
        stop,
        ignore_eos: c.ignore_eos,
        stream: c.stream,
        attribution,
        paid,
    })
}

/// Checks a prepaid request (its field, its terms, its signature) and reserves its nonce.
fn authorize(
    state: &ServerState,
    field: Value,
    adapter_hash: Option<Hash256>,
    prompt_hash: Hash256,
    max_tokens: Option<usize>,
    stream: bool,
) -> Result<Paid, ApiError> {
    let (Some(genesis), Some(journal)) = (state.ledger_genesis, &state.journal) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "prepaid_disabled",
            "this server takes no prepaid requests (it was started without --ledger-genesis)",
        ));
    };
    let auth = Authorization::parse(field).map_err(ApiError::bad_request)?;
    if stream {
        return Err(ApiError::bad_request("a prepaid request cannot stream: it is journaled before it is answered"));
    }
    let adapter_hash = adapter_hash.ok_or_else(|| {
        ApiError::bad_request("a prepaid request names an adapter (by name or 0x hash): the base model has nobody to pay")
    })?;
    let max_tokens = max_tokens
        .ok_or_else(|| ApiError::bad_request("a prepaid request gives max_tokens: it is part of what is signed"))?;
    let max_tokens =
        u32::try_from(max_tokens).map_err(|_| ApiError::bad_request("max_tokens does not fit in a u32"))?;
    let terms = Terms { genesis, adapter_hash, prompt_hash, max_tokens, nonce: auth.nonce, max_fee: auth.max_fee };
    if !auth.verifies(&terms.message()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "the signature is not the account's over this request (genesis, adapter, prompt, max_tokens, nonce, max_fee)",
        ));
    }
    let reservation = journal.reserve(auth.account, auth.nonce)?;
    Ok(Paid { auth, adapter_hash, max_tokens, reservation })
}

async fn completions(State(state): State<Arc<ServerState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let result = async {
        let req: CompletionRequest = parse(body)?;
        let prompts = req.prompt.into_vec();
        let [prompt] = <[String; 1]>::try_from(prompts)
            .map_err(|_| ApiError::bad("exactly one prompt per request is supported"))?;
        let p = prepare(&state, req.common, prompt, false)?;
        run(state, p, Kind::Completion).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn chat_completions(State(state): State<Arc<ServerState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let result = async {
        let req: ChatRequest = parse(body)?;
        if req.messages.is_empty() {
            return Err(ApiError::bad("messages must not be empty"));
        }
        let messages: Vec<(String, String)> = req
            .messages
            .into_iter()
            .map(|m| {
                let text = match m.content {
                    ChatContent::Text(t) => t,
                    ChatContent::Parts(parts) => parts
                        .into_iter()
                        .filter(|p| p.kind == "text")
                        .map(|p| p.text)
                        .collect::<Vec<_>>()
                        .join(""),
                };
                (m.role, text)
            })
            .collect();
        let prompt = state.chat.render(&messages);
        let p = prepare(&state, req.common, prompt, true)?;
        run(state, p, Kind::Chat).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Clone, Copy)]
enum Kind {
    Completion,
    Chat,
}

/// The fields a chain receipt will need, for one finished completion, and its attribution when
/// one was asked for (the receipt then names the record's hash).
fn receipt(state: &ServerState, p: &Prepared, f: &Finish, attribution: Option<&Attributed>) -> Value {
    json!({
        "base_model_hash": hex32(&state.base_hash),
        "adapter_hash": f.adapter_hash.as_ref().map(hex32),
        "prompt_hash": hex32(&p.prompt_hash),
        "output_hash": hex32(&blake2_256(f.text.as_bytes())),
        "input_tokens": p.prompt.len(),
        "output_tokens": f.output_tokens.len(),
        "attribution_record_hash": attribution.map(|a| hex32(&a.summary.record_hash)),
    })
}

/// A completion's attribution: what the journal keeps of it, and the response's object.
struct Attributed {
    summary: crate::journal::Attribution,
    json: Value,
}

/// Attributes a finished completion on a blocking thread (the gradient method takes seconds).
async fn attribute(state: &Arc<ServerState>, p: &Prepared, f: &Finish) -> Result<Option<Attributed>, ApiError> {
    let Some((method, dir)) = p.attribution.clone() else { return Ok(None) };
    let Some(adapter) = f.adapter_hash else { return Ok(None) };
    let state = state.clone();
    let (prompt, output) = ((p.prompt_text.clone(), p.prompt.clone()), (f.text.clone(), f.output_tokens.clone()));
    let result = tokio::task::spawn_blocking(move || -> anyhow::Result<Attributed> {
        let data = state.attribution_data.get(adapter, &dir, &state.base_hash)?;
        let c = Completion::new(state.base_hash, Some(adapter), (&prompt.0, &prompt.1), (&output.0, &output.1));
        let a = state.attributor.attribute(method, &data, &c)?;
        let summary = crate::journal::Attribution::of(&a.record);
        let json = json!({
            "method": summary.method,
            "weights": summary.weights,
            "index_root": hex32(&summary.index_root),
            "record_hash": hex32(&summary.record_hash),
            "record_bytes": HexBytes(a.record.canonical_bytes()),
            "record": a.record,
            "spans": a.spans,
        });
        Ok(Attributed { summary, json })
    })
    .await
    .map_err(ApiError::attribution_failed)?;
    result.map(Some).map_err(ApiError::attribution_failed)
}

#[derive(Deserialize)]
struct VerifyRequest {
    /// `0x` hex of the claimed record's canonical bytes, as a challenge puts them on chain.
    record: String,
    /// The text the record's prompt hash should be of; without it the claimed prompt hash and
    /// tokens are taken as given.
    prompt: Option<String>,
}

/// A record as the verify endpoint shows it: its identity and inputs, without the tokens the
/// caller sent.
fn record_json(r: &AttributionRecord) -> Value {
    json!({
        "record_hash": hex32(&r.hash()),
        "method": r.method.name(),
        "base_model": hex32(&r.base_model),
        "adapter": r.adapter.as_ref().map(hex32),
        "index_root": hex32(&r.index_root),
        "prompt_hash": hex32(&r.prompt_hash),
        "output_hash": hex32(&r.output_hash),
        "weights": r.weights,
    })
}

/// Recomputes a claimed record with this engine's model, adapter and attribution data.
async fn verify_attribution(
    State(state): State<Arc<ServerState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let req: VerifyRequest = parse(body)?;
    let bad_record = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_record", message);
    let bytes = HexBytes::parse(&req.record).ok_or_else(|| bad_record("record is not 0x and hex digits".into()))?;
    let claimed = AttributionRecord::from_canonical_bytes(&bytes.0).map_err(|e| bad_record(format!("record: {e}")))?;
    let adapter = claimed
        .adapter
        .ok_or_else(|| ApiError::no_attribution_data("the record names no adapter: the base model has no lineage"))?;
    let dir = {
        let store = state.engine.store.lock().unwrap_or_else(|e| e.into_inner());
        let reg = store.resolve(&hex32(&adapter)).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "model_not_found",
                format!("no adapter {} is registered here", hex32(&adapter)),
            )
        })?;
        reg.header.dir.clone()
    };
    if !dir.join(attribution::lineage::LINEAGE_FILE).is_file() {
        return Err(ApiError::no_attribution_data(format!(
            "adapter {} has no lineage: attribution needs an adapter trained by modelfactory",
            hex32(&adapter)
        )));
    }
    let claimed_json = record_json(&claimed);
    let prompt = req.prompt;
    // The gradient method takes seconds: off the async runtime, as `attribute` does.
    let (verdict, recomputed) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let data = state.attribution_data.get(adapter, &dir, &state.base_hash)?;
        state.attributor.verify_against(state.base_hash, &claimed, &data, &state.engine.tokenizer, prompt.as_deref())
    })
    .await
    .map_err(ApiError::attribution_failed)?
    .map_err(ApiError::attribution_failed)?;
    // `weights_differ` carries the recomputed weights; the whole recomputed record replaces them.
    let mut answer = json!(verdict);
    answer["claimed"] = claimed_json;
    answer["recomputed"] = record_json(&recomputed);
    Ok(Json(answer))
}

fn usage(prompt_tokens: usize, f: &Finish) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": f.output_tokens.len(),
        "total_tokens": prompt_tokens + f.output_tokens.len(),
    })
}

/// Journals a served prepaid request, after any lower nonce of its account still being served,
/// and returns its seq once it is on disk.
async fn journal_paid(paid: Paid, p: &Prepared, f: &Finish, attribution: Option<&Attributed>) -> Result<u64, ApiError> {
    if f.adapter_hash != Some(paid.adapter_hash) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "adapter_refused",
            format!("`{}` was replaced by another file while the request waited: the signature names {}", p.model, hex32(&paid.adapter_hash)),
        ));
    }
    let leaf = Leaf {
        account: paid.auth.account,
        nonce: paid.auth.nonce,
        max_fee: paid.auth.max_fee,
        signature: paid.auth.signature,
        adapter_hash: paid.adapter_hash,
        prompt_hash: p.prompt_hash,
        max_tokens: paid.max_tokens,
        output_hash: blake2_256(f.text.as_bytes()),
        input_tokens: p.prompt.len() as u64,
        output_tokens: f.output_tokens.len() as u64,
        attribution: attribution.map_or_else(crate::journal::Attribution::none, |a| a.summary.clone()),
    };
    let reservation = paid.reservation;
    reservation.wait_turn().await;
    // fsync blocks: off the async runtime.
    tokio::task::spawn_blocking(move || reservation.commit(leaf))
        .await
        .map_err(ApiError::journal_failed)?
        .map_err(ApiError::journal_failed)
}

async fn run(state: Arc<ServerState>, mut p: Prepared, kind: Kind) -> Result<Response, ApiError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let prompt_tokens = p.prompt.len();
    state.engine.submit(Request {
        adapter: p.adapter.clone(),
        prompt: p.prompt.clone(),
        max_tokens: p.max_tokens,
        sampling: p.sampling.clone(),
        stop: p.stop.clone(),
        ignore_eos: p.ignore_eos,
        events: tx,
    })?;
    let id = format!("{}-{}", match kind { Kind::Completion => "cmpl", Kind::Chat => "chatcmpl" }, hex::encode(&blake2_256(format!("{:?}{}", std::time::Instant::now(), p.prompt_text).as_bytes())[..12]));
    let created = now();
    if p.stream {
        let stream = stream_events(state, rx, id, created, p, kind);
        return Ok(Sse::new(stream).into_response());
    }
    let mut rx = rx;
    let mut finish = None;
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Text(_) => {}
            Event::Finished(f) => {
                finish = Some(f);
                break;
            }
            Event::Failed(msg) => return Err(failure(msg)),
        }
    }
    let f = finish.ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "engine_error", "the engine dropped the request"))?;
    let choice = match kind {
        Kind::Completion => json!({"index": 0, "text": f.text, "finish_reason": f.reason.as_str(), "logprobs": null}),
        Kind::Chat => json!({"index": 0, "message": {"role": "assistant", "content": f.text}, "finish_reason": f.reason.as_str()}),
    };
    let object = match kind { Kind::Completion => "text_completion", Kind::Chat => "chat.completion" };
    let attribution = attribute(&state, &p, &f).await?;
    let mut receipt = receipt(&state, &p, &f, attribution.as_ref());
    if let Some(paid) = p.paid.take() {
        receipt["journal_seq"] = json!(journal_paid(paid, &p, &f, attribution.as_ref()).await?);
    }
    Ok(Json(json!({
        "id": id, "object": object, "created": created, "model": p.model,
        "choices": [choice],
        "usage": usage(prompt_tokens, &f),
        "receipt": receipt,
        "attribution": attribution.map(|a| a.json),
    }))
    .into_response())
}

fn failure(msg: crate::engine::Failure) -> ApiError {
    match msg {
        crate::engine::Failure::Adapter(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "adapter_refused", m),
        crate::engine::Failure::Internal(m) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "engine_error", m),
    }
}

fn stream_events(
    state: Arc<ServerState>,
    rx: mpsc::UnboundedReceiver<Event>,
    id: String,
    created: u64,
    p: Prepared,
    kind: Kind,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let p = Arc::new(p);
    let model = p.model.clone();
    let object = match kind { Kind::Completion => "text_completion", Kind::Chat => "chat.completion.chunk" };
    let chunk = move |text: Option<&str>, finish: Option<&str>, first: bool| -> Value {
        let choice = match kind {
            Kind::Completion => json!({"index": 0, "text": text.unwrap_or(""), "finish_reason": finish, "logprobs": null}),
            Kind::Chat => {
                let mut delta = serde_json::Map::new();
                if first {
                    delta.insert("role".into(), json!("assistant"));
                }
                if let Some(t) = text {
                    delta.insert("content".into(), json!(t));
                }
                json!({"index": 0, "delta": delta, "finish_reason": finish})
            }
        };
        json!({"id": id, "object": object, "created": created, "model": model, "choices": [choice]})
    };
    let chunk = Arc::new(chunk);
    let mut first = true;
    UnboundedReceiverStream::new(rx)
        .then(move |ev| {
            let (state, p, chunk) = (state.clone(), p.clone(), chunk.clone());
            let was_first = std::mem::replace(&mut first, false);
            async move {
                let (data, done) = match ev {
                    Event::Text(t) => (chunk(Some(&t), None, was_first), false),
                    Event::Finished(f) => {
                        let mut c = chunk(None, Some(f.reason.as_str()), was_first);
                        match attribute(&state, &p, &f).await {
                            Ok(a) => {
                                c["usage"] = usage(p.prompt.len(), &f);
                                c["receipt"] = receipt(&state, &p, &f, a.as_ref());
                                c["attribution"] = a.map_or(Value::Null, |a| a.json);
                            }
                            Err(e) => c = e.json(),
                        }
                        (c, true)
                    }
                    Event::Failed(m) => (failure(m).json(), true),
                };
                let mut out = vec![Ok(SseEvent::default().data(data.to_string()))];
                if done {
                    out.push(Ok(SseEvent::default().data("[DONE]")));
                }
                futures::stream::iter(out)
            }
        })
        .flatten()
}

async fn models(State(state): State<Arc<ServerState>>) -> Json<Value> {
    let created = now();
    let mut data = vec![json!({
        "id": state.base_name, "object": "model", "created": created, "owned_by": "openlora",
        "root": state.base_name, "parent": null,
        "openlora": {"hash": hex32(&state.base_hash), "kind": "base", "context_length": state.engine.context()},
    })];
    let store = state.engine.store.lock().unwrap_or_else(|e| e.into_inner());
    for (reg, resident) in store.list() {
        data.push(json!({
            "id": reg.name, "object": "model", "created": created, "owned_by": "openlora",
            "root": reg.header.dir.display().to_string(), "parent": state.base_name,
            "openlora": {
                "hash": hex32(&reg.header.hash), "kind": "lora", "rank": reg.header.rank,
                "alpha": reg.header.alpha, "bytes": reg.header.weight_bytes, "resident": resident,
            },
        }));
    }
    Json(json!({"object": "list", "data": data}))
}

#[derive(Deserialize)]
struct LoadAdapter {
    lora_name: String,
    lora_path: PathBuf,
    /// Load the weights now instead of on the first request.
    #[serde(default)]
    prefetch: bool,
}

const MAX_ADAPTER_NAME: usize = 128;

async fn load_adapter(
    _: FromOperator,
    State(state): State<Arc<ServerState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let req: LoadAdapter = parse(body)?;
        let name = req.lora_name;
        if name.is_empty() || name.len() > MAX_ADAPTER_NAME || name == state.base_name || name.starts_with("0x") {
            return Err(ApiError::bad(format!(
                "lora_name must be 1 to {MAX_ADAPTER_NAME} bytes, not start with 0x, and differ from the base model's name"
            )));
        }
        let st = state.clone();
        let path = req.lora_path.clone();
        let reg_name = name.clone();
        // Registration reads and hashes the file: off the async runtime.
        let reg = tokio::task::spawn_blocking(move || {
            let mut store = st.engine.store.lock().unwrap_or_else(|e| e.into_inner());
            store.register(&reg_name, &path).cloned()
        })
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
        let mut resident = false;
        if req.prefetch {
            match state.engine.prefetch(&name).await {
                Ok(r) => resident = r,
                Err(e) => {
                    let _ = state.engine.store.lock().unwrap_or_else(|e| e.into_inner()).unregister(&name);
                    return Err(e.into());
                }
            }
        }
        Ok(json!({
            "lora_name": reg.name, "hash": hex32(&reg.header.hash), "rank": reg.header.rank,
            "bytes": reg.header.weight_bytes, "resident": resident,
        }))
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct UnloadAdapter {
    lora_name: String,
}

async fn unload_adapter(
    _: FromOperator,
    State(state): State<Arc<ServerState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = (|| {
        let req: UnloadAdapter = parse(body)?;
        let mut store = state.engine.store.lock().unwrap_or_else(|e| e.into_inner());
        let reg = store.unregister(&req.lora_name)?;
        Ok::<_, ApiError>(json!({"lora_name": reg.name, "hash": hex32(&reg.header.hash), "unloaded": true}))
    })();
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Entries a journal page holds unless `limit` says, and at most.
const JOURNAL_PAGE: usize = 256;
const MAX_JOURNAL_PAGE: usize = 1024;

fn journal_of(state: &ServerState) -> Result<&Arc<Journal>, ApiError> {
    state.journal.as_ref().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "journal_disabled", "this server keeps no journal (start it with --journal DIR)")
    })
}

#[derive(Deserialize)]
struct JournalQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

async fn journal_page(
    _: FromOperator,
    State(state): State<Arc<ServerState>>,
    query: Result<Query<JournalQuery>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let journal = journal_of(&state)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(JOURNAL_PAGE);
    if !(1..=MAX_JOURNAL_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be 1 to {MAX_JOURNAL_PAGE}")));
    }
    Ok(Json(journal.page(q.after, limit)))
}

#[derive(Deserialize)]
struct Settle {
    through: u64,
}

async fn journal_settled(
    _: FromOperator,
    State(state): State<Arc<ServerState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let journal = journal_of(&state)?.clone();
    let req: Settle = parse(body)?;
    // Settling fsyncs and rewrites the file: off the async runtime.
    let through =
        tokio::task::spawn_blocking(move || journal.settle(req.through)).await.map_err(ApiError::journal_failed)??;
    Ok(Json(json!({"settled_through": through})))
}

fn batches_of(state: &ServerState) -> Result<&Arc<BatchArchive>, ApiError> {
    state.batches.as_ref().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "journal_disabled", "this server keeps no batches (start it with --journal DIR)")
    })
}

fn path_of<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(p)| p).map_err(|e| ApiError::bad_request(e.body_text()))
}

impl From<ArchiveError> for ApiError {
    fn from(e: ArchiveError) -> Self {
        match e {
            ArchiveError::Io(_) => Self::archive_failed(e),
            _ => Self::bad_request(e.to_string()),
        }
    }
}

/// The operator's node archives a batch before submitting it.
async fn archive_batch(
    _: FromOperator,
    State(state): State<Arc<ServerState>>,
    nonce: Result<Path<u64>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let archive = batches_of(&state)?.clone();
    let nonce = path_of(nonce)?;
    let upload: BatchUpload = parse(body)?;
    // Hashing up to thousands of leaves and an fsync: off the async runtime.
    let archived = tokio::task::spawn_blocking(move || archive.put(nonce, upload))
        .await
        .map_err(ApiError::archive_failed)??;
    Ok(Json(json!({"nonce": nonce, "root": hex32(&archived.upload.root), "leaves": archived.upload.leaves.len()})))
}

async fn load_batch(state: &ServerState, nonce: u64) -> Result<ArchivedBatch, ApiError> {
    let archive = batches_of(state)?.clone();
    tokio::task::spawn_blocking(move || archive.get(nonce))
        .await
        .map_err(ApiError::archive_failed)?
        .map_err(ApiError::archive_failed)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "batch_not_found", format!("no batch {nonce} is archived here")))
}

async fn archived_batch(
    State(state): State<Arc<ServerState>>,
    nonce: Result<Path<u64>, PathRejection>,
) -> Result<Json<ArchivedBatch>, ApiError> {
    Ok(Json(load_batch(&state, path_of(nonce)?).await?))
}

async fn leaf_proof(
    State(state): State<Arc<ServerState>>,
    path: Result<Path<(u64, usize)>, PathRejection>,
) -> Result<Json<LeafProof>, ApiError> {
    let (nonce, index) = path_of(path)?;
    let batch = load_batch(&state, nonce).await?;
    let leaves = batch.upload.leaves.len();
    batch.proof(index).map(Json).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "leaf_not_found", format!("batch {nonce} has {leaves} leaves, not a leaf {index}"))
    })
}

async fn health(State(state): State<Arc<ServerState>>) -> Json<Value> {
    let store = state.engine.store.lock().unwrap_or_else(|e| e.into_inner());
    Json(json!({
        "status": "ok",
        "model": state.base_name,
        "model_hash": hex32(&state.base_hash),
        "adapters_registered": store.list().len(),
        "adapters_resident": store.resident_count(),
    }))
}

async fn metrics(State(state): State<Arc<ServerState>>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], state.engine.metrics.render())
}

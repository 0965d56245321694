//! OpenLoRA: one resident base model, many LoRA adapters loaded just in time, and requests for
//! different adapters decoded together in one batch. See README.md for the design.

pub mod adapters;
pub mod attention;
pub mod attributor;
pub mod batches;
pub mod cpu;
pub mod engine;
pub mod fixtures;
pub mod journal;
pub mod lora;
pub mod metrics;
pub mod models;
pub mod ops;
pub mod plot;
pub mod q8;
pub mod prepaid;
pub mod sampling;
pub mod server;
pub mod tokenizer;
pub mod train;

/// Where `scripts/fetch-model.sh` puts the default model (Gemma 3 270M).
pub fn default_model_path() -> std::path::PathBuf {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_else(|| ".".into());
    home.join(".cache/openledger/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf")
}

/// The candle device named on the command line: `cpu`, or `cuda` / `cuda:N`.
pub fn device(spec: &str) -> anyhow::Result<candle_core::Device> {
    match spec {
        "cpu" => Ok(candle_core::Device::Cpu),
        s if s.starts_with("cuda") => {
            let ordinal = s.strip_prefix("cuda:").map(str::parse).transpose()?.unwrap_or(0);
            Ok(candle_core::Device::new_cuda(ordinal)?)
        }
        other => anyhow::bail!("unknown device `{other}`: use cpu or cuda[:N]"),
    }
}

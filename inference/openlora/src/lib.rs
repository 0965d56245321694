//! OpenLoRA: one resident base model, many LoRA adapters loaded just in time, and requests for
//! different adapters decoded together in one batch. See README.md for the design.

pub mod adapters;
pub mod engine;
pub mod fixtures;
pub mod lora;
pub mod metrics;
pub mod models;
pub mod sampling;
pub mod server;
pub mod tokenizer;

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

//! The lineage manifest (`lineage.json`, beside the adapter, written by ModelFactory): what an
//! adapter was trained on, from what, and how, and where its attribution data lies (the span
//! index in `span-index/`, the gradient store in `gradients.bin`). Its blake2-256 is what the
//! model registry records on chain.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::span::Cover;
use crate::ContributionId;

/// What the manifest records about one contribution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContributionRef {
    pub id: ContributionId,
    pub content_hash: String,
    pub bytes: u64,
    /// The file name, for a local folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

pub const LINEAGE_FILE: &str = "lineage.json";
pub const SPAN_INDEX_DIR: &str = "span-index";
pub const FORMAT: &str = "openledger-lineage/v1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HyperParameters {
    pub rank: usize,
    pub alpha: f64,
    /// PEFT module names (`q_proj`, …).
    pub targets: Vec<String>,
    pub steps: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Tokens per training window, BOS included.
    pub seq_len: usize,
    /// Windows per optimiser step.
    pub batch: usize,
    pub seed: u64,
    /// Every n-th window is held out for `eval` (0: none).
    pub holdout_every: usize,
    /// Tokens of each contribution its stored gradient is taken over.
    pub gradient_tokens: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatanetVersion {
    #[serde(flatten)]
    pub cover: Cover,
    pub contributions: Vec<ContributionRef>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingFigures {
    pub train_windows: usize,
    pub train_tokens: usize,
    pub heldout_windows: usize,
    pub first_loss: f32,
    pub final_loss: f32,
    pub seconds: f64,
    pub tokens_per_second: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    pub format: String,
    /// blake2-256 of the base model file.
    pub base_model: String,
    /// blake2-256 of `adapter_model.safetensors`.
    pub adapter: String,
    pub datanets: Vec<DatanetVersion>,
    pub hyper_parameters: HyperParameters,
    pub training: TrainingFigures,
    /// Root of the span index in `span-index/`.
    pub span_index_root: String,
    /// blake2-256 of `gradients.bin`.
    pub gradient_store: String,
}

impl Lineage {
    pub fn covers(&self) -> Vec<Cover> {
        self.datanets.iter().map(|d| d.cover).collect()
    }

    pub fn read(adapter_dir: &Path) -> anyhow::Result<Self> {
        let path = adapter_dir.join(LINEAGE_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("{}: {e} (not an adapter trained by modelfactory?)", path.display()))?;
        let lineage: Lineage = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        anyhow::ensure!(lineage.format == FORMAT, "{}: unknown format `{}`", path.display(), lineage.format);
        Ok(lineage)
    }
}

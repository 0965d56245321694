//! Attribution of served outputs: which contributions of an adapter's lineage shaped a
//! completion, as an [`AttributionRecord`] a receipt can sign, and `verify` / `verify_against`,
//! which recompute a record from its inputs.
//!
//! An adapter trained by ModelFactory carries `lineage.json`, its span index (`span-index/`) and
//! its gradient store (`gradients.bin`). The span method needs only the index; the gradient
//! method needs the model loaded for gradients (dense f32 weights, several times the quantized
//! model's memory), which is loaded on first use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{ensure, Context};
use attribution::influence::{compress, GradientStore};
use attribution::lineage::{Lineage, SPAN_INDEX_DIR};
use attribution::record::{compare, AttributionRecord, Method, Verdict};
use attribution::span::{Span, SpanIndex, SpanParams};
use attribution::{blake2_256, hex32, Hash256};
use candle_core::Device;
use serde::Serialize;

use crate::lora::{self, LoadedAdapter};
use crate::models::gemma3::Gemma3;
use crate::train::{loss_gradient, Example, TrainableLora};

/// Which method a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodChoice {
    Span,
    Datainf,
}

impl MethodChoice {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "span" => Some(Self::Span),
            "datainf" | "gradient" => Some(Self::Datainf),
            _ => None,
        }
    }
}

/// The attribution data of one adapter, opened once and shared.
pub struct AdapterAttribution {
    pub dir: PathBuf,
    pub lineage: Lineage,
    span: SpanIndex,
    gradients: GradientStore,
}

impl AdapterAttribution {
    /// Opens an adapter folder's lineage, span index and gradient store, refusing data that does
    /// not belong together (another base model, another adapter, other datanet versions).
    pub fn open(dir: &Path, base_model: &Hash256) -> anyhow::Result<Self> {
        let lineage = Lineage::read(dir)?;
        ensure!(
            lineage.base_model == hex32(base_model),
            "adapter {} was trained on base model {}, this server runs {}",
            dir.display(),
            lineage.base_model,
            hex32(base_model)
        );
        let covers = lineage.covers();
        let span = SpanIndex::open(dir.join(SPAN_INDEX_DIR), &lineage.base_model, &covers)?;
        ensure!(hex32(&span.root()) == lineage.span_index_root, "the span index in {} is not the one lineage.json names", dir.display());
        let gradients = GradientStore::open(dir, Some(&covers))?;
        ensure!(hex32(&gradients.root) == lineage.gradient_store, "the gradient store in {} is not the one lineage.json names", dir.display());
        ensure!(gradients.header.adapter == lineage.adapter, "the gradient store was taken at another adapter");
        Ok(Self { dir: dir.to_path_buf(), lineage, span, gradients })
    }
}

/// What attribution works from: the completion as the engine produced it.
pub struct Completion<'a> {
    pub base_model: Hash256,
    pub adapter: Option<Hash256>,
    /// blake2-256 of the prompt and output texts, as the receipt records them.
    pub prompt_hash: Hash256,
    pub output_hash: Hash256,
    pub prompt_tokens: &'a [u32],
    pub output_tokens: &'a [u32],
}

impl<'a> Completion<'a> {
    /// A completion as the receipt describes it: the prompt and output texts are hashed.
    pub fn new(
        base_model: Hash256,
        adapter: Option<Hash256>,
        (prompt_text, prompt_tokens): (&str, &'a [u32]),
        (output_text, output_tokens): (&str, &'a [u32]),
    ) -> Self {
        Self {
            base_model,
            adapter,
            prompt_hash: blake2_256(prompt_text.as_bytes()),
            output_hash: blake2_256(output_text.as_bytes()),
            prompt_tokens,
            output_tokens,
        }
    }
}

/// An attribution and what explains it.
#[derive(Debug, Serialize)]
pub struct Attributed {
    pub record: AttributionRecord,
    /// For the span method: the maximal spans of the output found in the index.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<Span>,
}

fn record(c: &Completion<'_>, method: Method, index_root: Hash256, weights: Vec<attribution::Weight>) -> AttributionRecord {
    AttributionRecord {
        method,
        base_model: c.base_model,
        adapter: c.adapter,
        index_root,
        prompt_hash: c.prompt_hash,
        output_hash: c.output_hash,
        prompt_tokens: c.prompt_tokens.to_vec(),
        output_tokens: c.output_tokens.to_vec(),
        weights,
    }
}

/// Computes attributions for one base model: the span method directly, the gradient method
/// through a model loaded for gradients on first use.
pub struct Attributor {
    model_path: PathBuf,
    max_context: usize,
    differentiable: OnceLock<anyhow::Result<Gemma3>>,
    /// Gradient attributions run one at a time: each holds a whole backward pass in memory.
    gradient_lock: Mutex<()>,
    pub span_params: SpanParams,
    pub top_k: usize,
}

impl Attributor {
    pub fn new(model_path: &Path, max_context: usize) -> Self {
        Self {
            model_path: model_path.to_path_buf(),
            max_context,
            differentiable: OnceLock::new(),
            gradient_lock: Mutex::new(()),
            span_params: SpanParams::default(),
            top_k: SpanParams::default().top_k,
        }
    }

    fn differentiable(&self) -> anyhow::Result<&Gemma3> {
        self.differentiable
            .get_or_init(|| Gemma3::load_differentiable(&self.model_path, self.max_context))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("loading the model for gradients: {e}"))
    }

    pub fn span(&self, data: &AdapterAttribution, c: &Completion<'_>, params: &SpanParams) -> Attributed {
        let found = data.span.attribute(c.output_tokens, params);
        Attributed { record: record(c, Method::span(params), data.span.root(), found.weights), spans: found.spans }
    }

    pub fn datainf(&self, data: &AdapterAttribution, adapter: &LoadedAdapter, c: &Completion<'_>, top_k: usize) -> anyhow::Result<Attributed> {
        let method = Method::Datainf { top_k: top_k as u32 };
        if c.output_tokens.is_empty() {
            return Ok(Attributed { record: record(c, method, data.gradients.root, Vec::new()), spans: Vec::new() });
        }
        let model = self.differentiable()?;
        let _one_at_a_time = self.gradient_lock.lock().unwrap_or_else(|e| e.into_inner());
        let lora = TrainableLora::from_adapter(adapter, &model.config, &Device::Cpu)?;
        let tokens: Vec<u32> = c.prompt_tokens.iter().chain(c.output_tokens).copied().collect();
        let example = Example { tokens: &tokens, first_target: c.prompt_tokens.len().max(1) };
        let (_, grads) = loss_gradient(model, &lora, &example)?;
        let sketched = compress(&data.gradients.header.sketch, &grads);
        let weights = data.gradients.attribute(&sketched, top_k)?;
        Ok(Attributed { record: record(c, method, data.gradients.root, weights), spans: Vec::new() })
    }

    pub fn attribute(&self, choice: MethodChoice, data: &AdapterAttribution, c: &Completion<'_>) -> anyhow::Result<Attributed> {
        match choice {
            MethodChoice::Span => Ok(self.span(data, c, &self.span_params)),
            MethodChoice::Datainf => {
                let adapter = lora::load(&data.dir, &self.differentiable()?.config, usize::MAX, None)?;
                self.datainf(data, &adapter, c, self.top_k)
            }
        }
    }

    /// Recomputes `claimed` from its own inputs with this model and the adapter in
    /// `adapter_dir`, and says whether it matches; see [`Self::verify_against`], which a server
    /// calls instead: this hashes the whole model file first.
    pub fn verify(
        &self,
        claimed: &AttributionRecord,
        adapter_dir: &Path,
        tokenizer: &tokenizers::Tokenizer,
        prompt_text: Option<&str>,
    ) -> anyhow::Result<Verdict> {
        let base_model = attribution::blake2_256_file(&self.model_path).context("hashing the model")?;
        let data = AdapterAttribution::open(adapter_dir, &base_model)?;
        Ok(self.verify_against(base_model, claimed, &data, tokenizer, prompt_text)?.0)
    }

    /// Recomputes `claimed` from its own inputs, with this model (whose file hash is
    /// `base_model`) and the adapter whose attribution data `data` is, and says whether it
    /// matches; returns the recomputed record too.
    ///
    /// The output hash is recomputed from the claimed output tokens (decoded with `tokenizer`),
    /// so a record whose tokens are not its output fails. Given the prompt text, the prompt hash
    /// and tokens are the text's (tokenized as the server does, with special tokens), so a
    /// record whose prompt tokens are not its prompt fails too; without it they are taken as
    /// claimed.
    pub fn verify_against(
        &self,
        base_model: Hash256,
        claimed: &AttributionRecord,
        data: &AdapterAttribution,
        tokenizer: &tokenizers::Tokenizer,
        prompt_text: Option<&str>,
    ) -> anyhow::Result<(Verdict, AttributionRecord)> {
        let output_text = tokenizer.decode(&claimed.output_tokens, true).map_err(anyhow::Error::msg)?;
        let prompt_tokens = match prompt_text {
            Some(p) => tokenizer.encode(p, true).map_err(anyhow::Error::msg)?.get_ids().to_vec(),
            None => claimed.prompt_tokens.clone(),
        };
        let adapter_hash = attribution::parse_hex32(&data.lineage.adapter).context("lineage adapter hash")?;
        let c = Completion {
            base_model,
            adapter: Some(adapter_hash),
            prompt_hash: prompt_text.map_or(claimed.prompt_hash, |p| blake2_256(p.as_bytes())),
            output_hash: blake2_256(output_text.as_bytes()),
            prompt_tokens: &prompt_tokens,
            output_tokens: &claimed.output_tokens,
        };
        let recomputed = match claimed.method {
            Method::Span { min_len, max_occurrences, top_k } => {
                let params = SpanParams { min_len: min_len as usize, max_occurrences, top_k: top_k as usize };
                self.span(data, &c, &params).record
            }
            Method::Datainf { top_k } => {
                let adapter = lora::load(&data.dir, &self.differentiable()?.config, usize::MAX, None)?;
                self.datainf(data, &adapter, &c, top_k as usize)?.record
            }
        };
        Ok((compare(claimed, &recomputed), recomputed))
    }
}

/// Opened adapter attribution data, by adapter hash: opening maps the span index and reads the
/// gradient store, once per adapter.
#[derive(Default)]
pub struct AttributionCache {
    open: Mutex<std::collections::HashMap<Hash256, Arc<AdapterAttribution>>>,
}

impl AttributionCache {
    pub fn get(&self, adapter: Hash256, dir: &Path, base_model: &Hash256) -> anyhow::Result<Arc<AdapterAttribution>> {
        if let Some(a) = self.open.lock().unwrap_or_else(|e| e.into_inner()).get(&adapter) {
            return Ok(a.clone());
        }
        let data = Arc::new(AdapterAttribution::open(dir, base_model)?);
        ensure!(data.lineage.adapter == hex32(&adapter), "lineage.json in {} describes another adapter", dir.display());
        self.open.lock().unwrap_or_else(|e| e.into_inner()).insert(adapter, data.clone());
        Ok(data)
    }
}

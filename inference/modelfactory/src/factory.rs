//! `train` and `eval`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context};
use attribution::influence::{compress, write_store, SketchParams, StoreHeader};
use attribution::lineage::{ContributionRef, DatanetVersion, HyperParameters, Lineage, TrainingFigures, FORMAT, LINEAGE_FILE, SPAN_INDEX_DIR};
use attribution::span::{BuildStage, Document as SpanDocument, SpanIndex};
use attribution::{blake2_256_file, hex32};
use candle_core::Device;
use openlora::lora::{self, LoraBatch, WEIGHTS_FILE};
use openlora::models::gemma3::{Gemma3, Proj};
use openlora::train::{loss_gradient, next_token_loss, Example, TrainableLora, Trainer};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokenizers::Tokenizer;

use crate::dataset::{self, Dataset, Window};
use crate::progress::Progress;
use crate::source::VersionData;

/// The tokenizer the OpenLoRA server uses for `model` (created beside it on first use).
pub fn tokenizer_for(model: &Path) -> anyhow::Result<Tokenizer> {
    openlora::tokenizer::load_or_convert(&model.with_file_name("tokenizer.json"), model)
}

fn bos(tok: &Tokenizer) -> anyhow::Result<u32> {
    let enc = tok.encode("", true).map_err(anyhow::Error::msg)?;
    enc.get_ids().first().copied().context("the tokenizer adds no BOS token")
}

pub struct TrainOptions {
    pub hyper: HyperParameters,
    /// A span index of an earlier adapter whose shards for the same datanet versions are
    /// reused instead of rebuilt (versions are immutable, so their shards are too).
    pub index_from: Option<PathBuf>,
}

fn parse_targets(names: &[String]) -> anyhow::Result<Vec<Proj>> {
    names
        .iter()
        .map(|n| Proj::from_peft_name(n).with_context(|| format!("unknown target module `{n}`: use q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj or down_proj")))
        .collect()
}

/// Fine-tunes an adapter on `versions` and writes, into `out` (which must not exist yet), the
/// PEFT adapter, `lineage.json`, the span index and the gradient store. Everything is written
/// into a temporary folder beside `out` and renamed at the end, so a failed or interrupted
/// run leaves nothing that looks like an adapter.
pub fn train(model_path: &Path, versions: Vec<VersionData>, refs: Vec<ContributionRef>, opts: &TrainOptions, out: &Path) -> anyhow::Result<Lineage> {
    let h = &opts.hyper;
    ensure!(!out.exists(), "{} already exists; choose a new output folder", out.display());
    ensure!(h.rank > 0 && h.steps > 0 && h.batch > 0 && h.seq_len >= 2, "rank, steps and batch must be positive and seq_len at least 2");
    let targets = parse_targets(&h.targets)?;
    ensure!(!targets.is_empty(), "no target modules");
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let work = tempfile::Builder::new().prefix(".modelfactory-").tempdir_in(parent)?;

    eprintln!("modelfactory: hashing and loading {}", model_path.display());
    let base_hash = blake2_256_file(model_path).with_context(|| format!("cannot read model {}", model_path.display()))?;
    let tok = tokenizer_for(model_path)?;
    let model = Gemma3::load_differentiable(model_path, h.seq_len)?;
    let documents = dataset::tokenize(&tok, &versions, |w| eprintln!("modelfactory: warning: {w}"))?;
    let data = dataset::windows(documents, bos(&tok)?, h.seq_len, h.holdout_every);
    ensure!(!data.train.is_empty(), "the datanet has no text to train on");

    let lora = TrainableLora::new(&model.config, h.rank, h.alpha, &targets, h.seed, &Device::Cpu)?;
    eprintln!(
        "modelfactory: {} trainable parameters, {} training windows ({} tokens), {} held out",
        lora.parameter_count(),
        data.train.len(),
        data.train.iter().map(|w| w.tokens.len()).sum::<usize>(),
        data.heldout.len()
    );
    let (lora, figures) = fit(&model, lora, &data, h)?;
    let adapter_hash = lora.save(work.path())?;

    let sketch = SketchParams::default();
    let covers: Vec<_> = versions.iter().map(|v| v.cover).collect();
    let gradient_root = gradient_store(&model, &lora, &data, h, sketch, &covers, &hex32(&adapter_hash), work.path())?;
    let vocab = model.config.vocab_size as u32;
    let index_root = span_index(&data, &versions, &hex32(&base_hash), vocab, opts.index_from.as_deref(), &work.path().join(SPAN_INDEX_DIR))?;

    let mut datanets = Vec::new();
    let mut refs = refs.into_iter();
    for v in &versions {
        datanets.push(DatanetVersion { cover: v.cover, contributions: refs.by_ref().take(v.contributions.len()).collect() });
    }
    let lineage = Lineage {
        format: FORMAT.into(),
        base_model: hex32(&base_hash),
        adapter: hex32(&adapter_hash),
        datanets,
        hyper_parameters: h.clone(),
        training: figures,
        span_index_root: hex32(&index_root),
        gradient_store: hex32(&gradient_root),
    };
    std::fs::write(work.path().join(LINEAGE_FILE), serde_json::to_vec_pretty(&lineage)?)?;
    let work = work.keep();
    std::fs::rename(&work, out).with_context(|| format!("moving the result to {}", out.display()))?;
    Ok(lineage)
}

/// The training loop: `steps` AdamW steps of `batch` windows each, in a seeded order that is
/// reshuffled every epoch; a short linear warm-up of the learning rate.
fn fit(model: &Gemma3, lora: TrainableLora, data: &Dataset, h: &HyperParameters) -> anyhow::Result<(TrainableLora, TrainingFigures)> {
    let mut trainer = Trainer::new(lora, h.learning_rate, h.weight_decay)?;
    let mut rng = ChaCha8Rng::seed_from_u64(h.seed);
    let mut order: Vec<usize> = Vec::new();
    let warmup = (h.steps / 10).max(1);
    let mut progress = Progress::new("training", h.steps as u64);
    let started = Instant::now();
    let (mut tokens, mut first_loss, mut last_loss) = (0usize, f32::NAN, f32::NAN);
    for step in 0..h.steps {
        let mut batch: Vec<&Window> = Vec::with_capacity(h.batch);
        while batch.len() < h.batch.min(data.train.len()) {
            if order.is_empty() {
                order = (0..data.train.len()).collect();
                order.shuffle(&mut rng);
            }
            batch.push(&data.train[order.pop().expect("refilled above")]);
        }
        trainer.set_learning_rate(h.learning_rate * ((step + 1) as f64 / warmup as f64).min(1.0));
        let examples: Vec<Example<'_>> = batch.iter().map(|w| Example { tokens: &w.tokens, first_target: 1 }).collect();
        let loss = trainer.step(model, &examples)?;
        ensure!(loss.is_finite(), "the loss diverged at step {step} (lower --lr)");
        if step == 0 {
            first_loss = loss;
        }
        last_loss = loss;
        tokens += batch.iter().map(|w| w.tokens.len()).sum::<usize>();
        let tps = tokens as f64 / started.elapsed().as_secs_f64();
        progress.update(step as u64 + 1, &format!("loss {loss:.3} | {tps:.0} tok/s"));
    }
    let seconds = started.elapsed().as_secs_f64();
    let figures = TrainingFigures {
        train_windows: data.train.len(),
        train_tokens: data.train.iter().map(|w| w.tokens.len()).sum(),
        heldout_windows: data.heldout.len(),
        first_loss,
        final_loss: last_loss,
        seconds,
        tokens_per_second: tokens as f64 / seconds,
    };
    Ok((trainer.lora, figures))
}

/// Per-contribution gradients at the trained adapter: the loss gradient over each
/// contribution's first training windows, up to `gradient_tokens` tokens.
#[allow(clippy::too_many_arguments)]
fn gradient_store(
    model: &Gemma3,
    lora: &TrainableLora,
    data: &Dataset,
    h: &HyperParameters,
    sketch: SketchParams,
    covers: &[attribution::span::Cover],
    adapter: &str,
    dir: &Path,
) -> anyhow::Result<attribution::Hash256> {
    let ids: Vec<u64> = data.documents.iter().flatten().map(|d| d.contribution).collect();
    let mut progress = Progress::new("gradients", ids.len() as u64);
    let mut entries = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let mut budget = h.gradient_tokens;
        let mut sum: Option<Vec<Vec<f32>>> = None;
        for w in data.train.iter().filter(|w| w.contribution == *id) {
            if budget == 0 {
                break;
            }
            let take = w.tokens.len().min(budget + 1);
            budget = budget.saturating_sub(take - 1);
            if take < 2 {
                continue;
            }
            let (_, g) = loss_gradient(model, lora, &Example { tokens: &w.tokens[..take], first_target: 1 })?;
            match &mut sum {
                None => sum = Some(g),
                Some(s) => s.iter_mut().zip(g).for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(x, y)| *x += y)),
            }
        }
        // A contribution entirely held out (or empty) has no training gradient: it cannot have
        // shaped the adapter, and a zero gradient scores zero.
        let g = sum.unwrap_or_else(|| vec![Vec::new(); model.config.num_layers]);
        entries.push((*id, compress(&sketch, &g)));
        progress.update(i as u64 + 1, "");
    }
    let header = StoreHeader {
        sketch,
        layers: model.config.num_layers as u32,
        adapter: adapter.into(),
        covers: covers.to_vec(),
        contributions: entries.len() as u64,
    };
    Ok(write_store(dir, &header, &entries)?)
}

/// One shard per datanet version, reusing shards of `index_from` for versions it covers.
fn span_index(data: &Dataset, versions: &[VersionData], tokenizer: &str, vocab: u32, index_from: Option<&Path>, dir: &Path) -> anyhow::Result<attribution::Hash256> {
    let previous = index_from.map(SpanIndex::open_any).transpose().context("the index to reuse")?;
    let mut index = SpanIndex::create(dir, tokenizer)?;
    for (v, docs) in versions.iter().zip(&data.documents) {
        if let Some(prev) = previous.as_ref().filter(|p| p.tokenizer() == tokenizer && p.covers().contains(&v.cover)) {
            index.import_shard(prev, &v.cover)?;
            eprintln!("span index: reused the shard of {}", v.cover);
            continue;
        }
        let tokens: u64 = docs.iter().map(|d| d.tokens.len() as u64).sum();
        let mut progress = Progress::new(&format!("span index {}", v.cover), tokens.max(1));
        let docs = docs.iter().map(|d| SpanDocument { contribution: d.contribution, tokens: &d.tokens });
        index.add_shard(v.cover, docs, vocab, |stage| {
            if let BuildStage::Reading { tokens: t } = stage {
                progress.update(t, "tokens")
            }
        })?;
    }
    Ok(index.root())
}

/// Held-out loss of the base model and of the adapter.
#[derive(Debug, serde::Serialize)]
pub struct EvalReport {
    pub windows: usize,
    pub tokens: usize,
    pub base_loss: f64,
    pub base_perplexity: f64,
    pub adapter_loss: f64,
    pub adapter_perplexity: f64,
}

/// Evaluates `adapter` (trained by [`train`]) on the held-out windows of its own datanet data,
/// cut the way training cut them. Refuses a base model other than the one it was trained on.
pub fn eval(model_path: &Path, adapter_dir: &Path, versions: &[VersionData]) -> anyhow::Result<EvalReport> {
    let lineage = Lineage::read(adapter_dir)?;
    let base_hash = hex32(&blake2_256_file(model_path)?);
    ensure!(
        base_hash == lineage.base_model,
        "the adapter was trained on base model {}, {} is {base_hash}: it does not fit",
        lineage.base_model,
        model_path.display()
    );
    let covers: Vec<_> = versions.iter().map(|v| v.cover).collect();
    ensure!(covers == lineage.covers(), "the data given is not the adapter's lineage: {:?} vs {:?}", covers, lineage.covers());
    let h = &lineage.hyper_parameters;
    let tok = tokenizer_for(model_path)?;
    let model = Gemma3::load(model_path, h.seq_len, &Device::Cpu)?;
    let adapter = lora::load(adapter_dir, &model.config, h.rank.max(1), None)?;
    ensure!(hex32(&adapter.header.hash) == lineage.adapter, "{} is not the adapter lineage.json describes", adapter_dir.join(WEIGHTS_FILE).display());
    let documents = dataset::tokenize(&tok, versions, |_| {})?;
    let data = dataset::windows(documents, bos(&tok)?, h.seq_len, h.holdout_every);
    let windows: Vec<&Window> = data.heldout.iter().filter(|w| w.tokens.len() >= 2).collect();
    ensure!(!windows.is_empty(), "no held-out data: the datanet is too small for holdout_every = {}", h.holdout_every);
    let mut progress = Progress::new("eval", windows.len() as u64);
    let (mut base, mut tuned, mut tokens) = (0f64, 0f64, 0usize);
    for (i, w) in windows.iter().enumerate() {
        let ex = [Example { tokens: &w.tokens, first_target: 1 }];
        let n = w.tokens.len() - 1;
        let none = LoraBatch::new([(w.tokens.len(), None)]);
        let with = LoraBatch::new([(w.tokens.len(), Some(&adapter))]);
        base += next_token_loss(&model, &none, &ex)?.to_scalar::<f32>()? as f64 * n as f64;
        tuned += next_token_loss(&model, &with, &ex)?.to_scalar::<f32>()? as f64 * n as f64;
        tokens += n;
        progress.update(i as u64 + 1, "");
    }
    let (base_loss, adapter_loss) = (base / tokens as f64, tuned / tokens as f64);
    Ok(EvalReport {
        windows: windows.len(),
        tokens,
        base_loss,
        base_perplexity: base_loss.exp(),
        adapter_loss,
        adapter_perplexity: adapter_loss.exp(),
    })
}

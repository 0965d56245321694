//! LoRA parameters with gradients: fine-tuning an adapter (ModelFactory) and the loss gradient
//! of one output with respect to an adapter (gradient attribution).
//!
//! Both run the base model from [`Gemma3::load_differentiable`] with [`Gemma3::forward_all`]:
//! the base weights are constants, only the adapter's `A` and `B` are variables.

use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::lora::{peft_stem, save_peft, Hash256, LoadedAdapter, LoraDelta, PeftTensor};
use crate::models::gemma3::{Gemma3, Gemma3Config, Proj};

/// An adapter being trained, or an adapter loaded as variables to take gradients through.
pub struct TrainableLora {
    pub rank: usize,
    pub alpha: f64,
    pub targets: Vec<Proj>,
    scale: f64,
    /// Indexed by `layer * Proj::COUNT + proj`: `A` (r × in) and `B` (out × r).
    pairs: Vec<Option<(Var, Var)>>,
}

impl TrainableLora {
    /// A fresh adapter the way PEFT initialises one: `A` uniform in ±1/√in (Kaiming with
    /// a = √5), `B` zero, so that training starts from the base model exactly. Seeded: the
    /// same seed gives the same adapter.
    pub fn new(cfg: &Gemma3Config, rank: usize, alpha: f64, targets: &[Proj], seed: u64, device: &Device) -> candle_core::Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut pairs: Vec<Option<(Var, Var)>> = (0..cfg.num_layers * Proj::COUNT).map(|_| None).collect();
        let mut targets = targets.to_vec();
        targets.sort();
        targets.dedup();
        for layer in 0..cfg.num_layers {
            for &p in &targets {
                let (i, o) = cfg.proj_dims(p);
                let bound = 1.0 / (i as f32).sqrt();
                let a: Vec<f32> = (0..rank * i).map(|_| rng.random_range(-bound..bound)).collect();
                let a = Var::from_tensor(&Tensor::from_vec(a, (rank, i), device)?)?;
                let b = Var::zeros((o, rank), DType::F32, device)?;
                pairs[layer * Proj::COUNT + p as usize] = Some((a, b));
            }
        }
        Ok(Self { rank, alpha, targets, scale: alpha / rank as f64, pairs })
    }

    /// A served adapter as variables, to differentiate a loss with respect to it.
    pub fn from_adapter(adapter: &LoadedAdapter, cfg: &Gemma3Config, device: &Device) -> candle_core::Result<Self> {
        let mut pairs: Vec<Option<(Var, Var)>> = (0..cfg.num_layers * Proj::COUNT).map(|_| None).collect();
        let mut targets = Vec::new();
        for layer in 0..cfg.num_layers {
            for p in Proj::ALL {
                let Some(pair) = adapter.pair(layer, p) else { continue };
                let (a, b) = pair.weights();
                let a = Var::from_tensor(&Tensor::from_slice(a, (adapter.rank, pair.in_dim), device)?)?;
                let b = Var::from_tensor(&Tensor::from_vec(b, (pair.out_dim, adapter.rank), device)?)?;
                pairs[layer * Proj::COUNT + p as usize] = Some((a, b));
                if !targets.contains(&p) {
                    targets.push(p);
                }
            }
        }
        targets.sort();
        Ok(Self {
            rank: adapter.rank,
            alpha: adapter.header.alpha,
            targets,
            scale: adapter.scale as f64,
            pairs,
        })
    }

    fn num_layers(&self) -> usize {
        self.pairs.len() / Proj::COUNT
    }

    fn pair(&self, layer: usize, proj: Proj) -> Option<&(Var, Var)> {
        self.pairs.get(layer * Proj::COUNT + proj as usize)?.as_ref()
    }

    pub fn vars(&self) -> Vec<Var> {
        self.pairs.iter().flatten().flat_map(|(a, b)| [a.clone(), b.clone()]).collect()
    }

    /// Trainable parameters: Σ r · (in + out) over the adapted projections.
    pub fn parameter_count(&self) -> usize {
        self.pairs.iter().flatten().map(|(a, b)| a.elem_count() + b.elem_count()).sum()
    }

    /// Writes the adapter as a PEFT folder and returns its identity (the weights file's hash).
    pub fn save(&self, dir: &Path) -> anyhow::Result<Hash256> {
        let mut tensors: Vec<PeftTensor> = Vec::new();
        for layer in 0..self.num_layers() {
            for &p in &self.targets {
                let Some((a, b)) = self.pair(layer, p) else { continue };
                let stem = peft_stem(layer, p);
                for (suffix, t) in [("lora_A", a), ("lora_B", b)] {
                    let data = t.as_tensor().flatten_all()?.to_vec1::<f32>()?;
                    tensors.push((format!("{stem}.{suffix}.weight"), data, t.dims().to_vec()));
                }
            }
        }
        let names: Vec<&str> = self.targets.iter().map(|p| p.peft_name()).collect();
        save_peft(dir, self.rank, self.alpha, &names, &tensors)
    }

    /// The gradient of each layer's LoRA parameters, flattened: for every adapted projection
    /// in [`Proj`] order, `∂A` then `∂B`, row-major. A missing gradient (the loss does not
    /// reach a parameter) counts as zero. DataInf works layer by layer, hence the grouping.
    pub fn layer_gradients(&self, grads: &GradStore) -> candle_core::Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(self.num_layers());
        for layer in 0..self.num_layers() {
            let mut g = Vec::new();
            for &p in &self.targets {
                let Some((a, b)) = self.pair(layer, p) else { continue };
                for v in [a, b] {
                    match grads.get(v.as_tensor()) {
                        Some(t) => g.extend(t.flatten_all()?.to_vec1::<f32>()?),
                        None => g.extend(std::iter::repeat_n(0f32, v.elem_count())),
                    }
                }
            }
            out.push(g);
        }
        Ok(out)
    }
}

impl LoraDelta for TrainableLora {
    fn delta(&self, x: &Tensor, layer: usize, proj: Proj, _out_dim: usize) -> candle_core::Result<Option<Tensor>> {
        let Some((a, b)) = self.pair(layer, proj) else { return Ok(None) };
        let h = crate::ops::matmul_t(x, a.as_tensor())?;
        Ok(Some((crate::ops::matmul_t(&h, b.as_tensor())? * self.scale)?))
    }
}

/// One sequence to score: the model reads `tokens` and is scored on predicting
/// `tokens[first_target..]` (1 for plain language-model training; the prompt length when only
/// a completion counts).
pub struct Example<'a> {
    pub tokens: &'a [u32],
    pub first_target: usize,
}

/// Mean next-token cross-entropy over the targets of `examples`, in one forward pass. The LM
/// head runs only on the rows that predict a target.
pub fn next_token_loss(model: &Gemma3, lora: &impl LoraDelta, examples: &[Example<'_>]) -> candle_core::Result<Tensor> {
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    let mut offset = 0u32;
    for e in examples {
        if e.first_target == 0 || e.first_target >= e.tokens.len() {
            candle_core::bail!("an example needs at least one token to read and one to predict");
        }
        rows.extend((e.first_target - 1..e.tokens.len() - 1).map(|r| offset + r as u32));
        targets.extend_from_slice(&e.tokens[e.first_target..]);
        offset += e.tokens.len() as u32;
    }
    let seqs: Vec<&[u32]> = examples.iter().map(|e| e.tokens).collect();
    let logits = model.forward_all(&seqs, lora, rows)?;
    crate::ops::cross_entropy(&logits, &targets)
}

/// AdamW on a [`TrainableLora`].
pub struct Trainer {
    pub lora: TrainableLora,
    opt: AdamW,
}

impl Trainer {
    pub fn new(lora: TrainableLora, learning_rate: f64, weight_decay: f64) -> candle_core::Result<Self> {
        let params = ParamsAdamW { lr: learning_rate, weight_decay, ..Default::default() };
        let opt = AdamW::new(lora.vars(), params)?;
        Ok(Self { lora, opt })
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        self.opt.set_learning_rate(lr);
    }

    /// One optimiser step on a batch; returns the batch's loss before the step.
    pub fn step(&mut self, model: &Gemma3, batch: &[Example<'_>]) -> candle_core::Result<f32> {
        let loss = next_token_loss(model, &self.lora, batch)?;
        self.opt.backward_step(&loss)?;
        loss.to_scalar::<f32>()
    }
}

/// The per-layer gradient of the loss of `example` with respect to `lora` (see
/// [`TrainableLora::layer_gradients`]), and the loss.
pub fn loss_gradient(model: &Gemma3, lora: &TrainableLora, example: &Example<'_>) -> candle_core::Result<(f32, Vec<Vec<f32>>)> {
    let loss = next_token_loss(model, lora, std::slice::from_ref(example))?;
    let grads = loss.backward()?;
    Ok((loss.to_scalar::<f32>()?, lora.layer_gradients(&grads)?))
}

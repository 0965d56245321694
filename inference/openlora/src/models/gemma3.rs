//! Gemma 3, a llama-family decoder, written for mixed-adapter batches.
//!
//! Differences from candle-transformers' Gemma 3: every projection is a [`BaseLinear`] whose
//! output gets each row's own LoRA delta ([`LoraBatch`]), and one forward pass takes a ragged
//! batch — sequences of different lengths at different positions, each with its own KV cache —
//! laid out as one row per token. The big matmuls (projections, MLP, LM head) run once over all
//! rows; attention runs per sequence against that sequence's cache (on the CPU, every sequence
//! in one parallel pass: [`crate::attention`]).
//!
//! Weights come from a GGUF file (llama.cpp's `gemma3` layout), quantized or f32. llama.cpp
//! stores Gemma's RMSNorm weights with the `+1` already applied, so the norms here are plain.

use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::kv_cache::KvCache;

use crate::attention::{self, Heads, LayerKv, Span};
use crate::lora::LoraDelta;
use crate::ops;
use crate::q8::Q8Matrix;

/// The seven projections a LoRA adapter may target, in PEFT's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proj {
    Q = 0,
    K = 1,
    V = 2,
    O = 3,
    Gate = 4,
    Up = 5,
    Down = 6,
}

impl Proj {
    pub const COUNT: usize = 7;
    pub const ALL: [Proj; 7] =
        [Proj::Q, Proj::K, Proj::V, Proj::O, Proj::Gate, Proj::Up, Proj::Down];

    pub fn peft_name(self) -> &'static str {
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"][self as usize]
    }

    pub fn from_peft_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.peft_name() == name)
    }

    /// `self_attn` or `mlp`: the PEFT module path segment above the projection.
    pub fn block(self) -> &'static str {
        if (self as usize) < 4 {
            "self_attn"
        } else {
            "mlp"
        }
    }

    fn gguf_name(self) -> &'static str {
        ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
            [self as usize]
    }
}

/// Rope base of the sliding-window layers; Gemma 3 fixes it and llama.cpp does not store it.
const ROPE_LOCAL_BASE: f64 = 10_000.0;
/// Every sixth layer attends globally, the rest within the sliding window.
const SLIDING_WINDOW_PATTERN: usize = 6;

#[derive(Clone, Debug, PartialEq)]
pub struct Gemma3Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_base: f64,
    pub sliding_window: usize,
    pub context_length: usize,
}

impl Gemma3Config {
    /// (input, output) features of a projection.
    pub fn proj_dims(&self, proj: Proj) -> (usize, usize) {
        let (h, q, kv, i) = (
            self.hidden_size,
            self.num_heads * self.head_dim,
            self.num_kv_heads * self.head_dim,
            self.intermediate_size,
        );
        match proj {
            Proj::Q => (h, q),
            Proj::K | Proj::V => (h, kv),
            Proj::O => (q, h),
            Proj::Gate | Proj::Up => (h, i),
            Proj::Down => (i, h),
        }
    }

    fn is_sliding(&self, layer: usize) -> bool {
        (layer + 1) % SLIDING_WINDOW_PATTERN != 0
    }

    /// Reads the configuration from a GGUF file's metadata, without its tensors.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let mut f = std::fs::File::open(path)
            .map_err(|e| anyhow::anyhow!("cannot open model {}: {e}", path.display()))?;
        let ct = gguf_file::Content::read(&mut f)
            .map_err(|e| anyhow::anyhow!("{} is not a GGUF file: {e}", path.display()))?;
        Ok(Self::from_gguf(&ct)?)
    }

    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self> {
        let arch = md(ct, "general.architecture")?.to_string()?.clone();
        if arch != "gemma3" {
            candle_core::bail!("unsupported architecture `{arch}`: this engine serves gemma3");
        }
        let u = |k: &str| -> Result<usize> { Ok(md(ct, &format!("gemma3.{k}"))?.to_u32()? as usize) };
        let vocab_size = match ct.metadata.get("tokenizer.ggml.tokens") {
            Some(v) => v.to_vec()?.len(),
            None => ct
                .tensor_infos
                .get("token_embd.weight")
                .map(|t| t.shape.dims()[0])
                .ok_or_else(|| candle_core::Error::Msg("no token_embd.weight".into()))?,
        };
        Ok(Self {
            vocab_size,
            hidden_size: u("embedding_length")?,
            intermediate_size: u("feed_forward_length")?,
            num_layers: u("block_count")?,
            num_heads: u("attention.head_count")?,
            num_kv_heads: u("attention.head_count_kv")?,
            head_dim: u("attention.key_length")?,
            rms_norm_eps: md(ct, "gemma3.attention.layer_norm_rms_epsilon")?.to_f32()? as f64,
            rope_base: md(ct, "gemma3.rope.freq_base")?.to_f32()? as f64,
            sliding_window: u("attention.sliding_window")?,
            context_length: u("context_length")?,
        })
    }
}

fn md<'a>(ct: &'a gguf_file::Content, key: &str) -> Result<&'a gguf_file::Value> {
    ct.metadata
        .get(key)
        .ok_or_else(|| candle_core::Error::Msg(format!("GGUF metadata has no `{key}`")))
}

/// A base projection: quantized or dense weights (out × in), shared by every row.
pub struct BaseLinear {
    w: BaseWeights,
    out_dim: usize,
}

/// Where a base projection's product runs.
enum BaseWeights {
    /// candle's kernels: GPUs, and dense weights when serving.
    Candle(QMatMul),
    /// Quantized weights on the CPU for serving, packed for [`Q8Matrix`]: batches of rows
    /// cost less per row than single rows, and a row's output has the same bits in any batch
    /// and on any CPU.
    Q8(Arc<Q8Matrix>),
    /// Quantized weights in a differentiable model: the serving product, and its backward pass.
    Frozen(Frozen),
    /// Dense weights (out × in) in a differentiable model, through [`ops::matmul_t`]; also
    /// quantized weights whose output count is not a multiple of 32, which a transposed
    /// [`Q8Matrix`] cannot hold.
    Dense(Tensor),
}

/// A quantized base projection in a differentiable model: the serving product forward, and a
/// backward pass to the input only, through a packed transposed copy (about one more byte per
/// parameter). candle's matmul backward also computes the gradient of the weight, a tensor as
/// large as the weight, on every step, which a frozen base model never needs: for Gemma's
/// 262k-token LM head alone that is 670 MB and as many FLOPs as the forward pass.
#[derive(Clone)]
struct Frozen {
    w: Arc<Q8Matrix>,
    /// The transposed weights (in × out), for `∂x = ∂y · W`.
    w_t: Arc<Q8Matrix>,
}

impl Frozen {
    fn new(t: &QTensor) -> Result<Self> {
        let dense_t = t.dequantize(&Device::Cpu)?.t()?.contiguous()?;
        let w_t = Q8Matrix::from_qtensor(&QTensor::quantize(&dense_t, GgmlDType::Q8_0)?)?;
        Ok(Self { w: Arc::new(Q8Matrix::from_qtensor(t)?), w_t: Arc::new(w_t) })
    }
}

impl candle_core::CustomOp1 for Frozen {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(&self, storage: &candle_core::CpuStorage, layout: &candle_core::Layout) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        candle_core::CustomOp1::cpu_fwd(self.w.as_ref(), storage, layout)
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        grad_res.contiguous()?.apply_op1_no_bwd(self.w_t.as_ref()).map(Some)
    }
}

impl BaseLinear {
    fn new(t: QTensor, differentiable: bool) -> Result<Self> {
        let out_dim = t.shape().dims()[0];
        Self::from_arc(Arc::new(t), differentiable, out_dim)
    }

    fn from_arc(t: Arc<QTensor>, differentiable: bool, out_dim: usize) -> Result<Self> {
        let dense = matches!(t.dtype(), GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16);
        let w = match (t.device().is_cpu(), dense, differentiable) {
            (false, _, true) => candle_core::bail!("gradients run on the CPU only"),
            (false, _, false) | (true, true, false) => BaseWeights::Candle(QMatMul::from_arc(t)?),
            (true, false, false) => BaseWeights::Q8(Arc::new(Q8Matrix::from_qtensor(&t)?)),
            (true, false, true) if out_dim % GgmlDType::Q8_0.block_size() == 0 => BaseWeights::Frozen(Frozen::new(&t)?),
            (true, _, true) => BaseWeights::Dense(t.dequantize(&Device::Cpu)?),
        };
        Ok(Self { w, out_dim })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.w {
            BaseWeights::Candle(w) => w.forward(x),
            BaseWeights::Q8(w) => x.contiguous()?.apply_op1_no_bwd(w.as_ref()),
            BaseWeights::Frozen(f) => x.contiguous()?.apply_op1(f.clone()),
            BaseWeights::Dense(w) => ops::matmul_t(x, w),
        }
    }

    /// The packed weights, where the product runs on them.
    fn packed(&self) -> Option<&Arc<Q8Matrix>> {
        match &self.w {
            BaseWeights::Q8(w) | BaseWeights::Frozen(Frozen { w, .. }) => Some(w),
            BaseWeights::Candle(_) | BaseWeights::Dense(_) => None,
        }
    }
}

/// RMS normalisation: candle's fused kernel for serving; for gradients the op with a
/// backward pass, whose bits are the same on every machine.
enum RmsNorm {
    Fused { w: Tensor, eps: f32 },
    Differentiable(ops::RmsNorm),
}

impl RmsNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            RmsNorm::Fused { w, eps } => candle_nn::ops::rms_norm(&x.contiguous()?, w, *eps),
            RmsNorm::Differentiable(norm) => norm.forward(x),
        }
    }
}

struct Layer {
    attn_norm: RmsNorm,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    post_attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    post_ffn_norm: RmsNorm,
    projs: Vec<BaseLinear>,
    sliding: bool,
}

/// The rows of one sequence in a forward pass.
pub struct SeqRows<'a> {
    /// The new tokens of this sequence (the prompt on its first pass, then one per step).
    pub tokens: &'a [u32],
    pub cache: &'a mut SeqCache,
}

/// One sequence's key/value cache, one entry per layer, preallocated for its whole length.
pub struct SeqCache {
    layers: LayerCaches,
    len: usize,
}

enum LayerCaches {
    /// Read by candle's ops (accelerators).
    Candle(Vec<KvCache>),
    /// Read in place by [`attention::attend`] (CPU serving).
    Cpu(Vec<LayerKv>),
}

impl SeqCache {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

pub struct Gemma3 {
    pub config: Gemma3Config,
    /// Loaded for gradients ([`Gemma3::load_differentiable`]): ops with a backward pass, on
    /// the CPU.
    differentiable: bool,
    /// Attention by [`attention::attend`] rather than candle's ops: CPU serving.
    cpu_attention: bool,
    embed: Embedding,
    lm_head: BaseLinear,
    final_norm: RmsNorm,
    layers: Vec<Layer>,
    rope_global: (Tensor, Tensor),
    rope_local: (Tensor, Tensor),
    device: Device,
}

/// The rope's cosines and sines (positions × head_dim / 2), with `libm`'s functions: the C
/// library's differ between machines.
fn rope_tables(base: f64, head_dim: usize, max_pos: usize, dev: &Device) -> Result<(Tensor, Tensor)> {
    let inv: Vec<f32> = (0..head_dim / 2)
        .map(|i| 1.0 / libm::pow(base, 2.0 * i as f64 / head_dim as f64) as f32)
        .collect();
    let freqs: Vec<f32> = (0..max_pos).flat_map(|p| inv.iter().map(move |f| p as f32 * f)).collect();
    let table = |f: fn(f32) -> f32| Tensor::from_vec(freqs.iter().map(|x| f(*x)).collect::<Vec<_>>(), (max_pos, head_dim / 2), dev);
    Ok((table(libm::cosf)?, table(libm::sinf)?))
}

impl Gemma3 {
    /// Loads the model from a GGUF file. `max_context` caps positions (and the rope tables).
    pub fn load(path: &Path, max_context: usize, device: &Device) -> anyhow::Result<Self> {
        Self::load_with(path, max_context, device, false)
    }

    /// Loads the model for training and gradients, on the CPU: projections with a backward
    /// pass to their input (through a packed transposed copy of each weight, about one more
    /// byte per parameter), and norms, rope, attention, GeLU and loss with backward passes
    /// whose bits are the same on every machine ([`crate::ops`]), so that anyone recomputes
    /// a gradient exactly. Use it with [`Gemma3::forward_all`].
    pub fn load_differentiable(path: &Path, max_context: usize) -> anyhow::Result<Self> {
        Self::load_with(path, max_context, &Device::Cpu, true)
    }

    fn load_with(path: &Path, max_context: usize, device: &Device, differentiable: bool) -> anyhow::Result<Self> {
        let mut file = std::fs::File::open(path)
            .map_err(|e| anyhow::anyhow!("cannot open model {}: {e}", path.display()))?;
        let ct = gguf_file::Content::read(&mut file)
            .map_err(|e| anyhow::anyhow!("{} is not a GGUF file: {e}", path.display()))?;
        let config = Gemma3Config::from_gguf(&ct)?;
        let mut get = |name: &str| ct.tensor(&mut file, name, device);
        let norm = |t: QTensor, eps: f64| -> Result<RmsNorm> {
            let w = t.dequantize(device)?;
            Ok(match differentiable {
                true => RmsNorm::Differentiable(ops::RmsNorm::new(w.to_vec1()?, eps as f32)),
                false => RmsNorm::Fused { w, eps: eps as f32 },
            })
        };
        let eps = config.rms_norm_eps;
        let token_embd = Arc::new(get("token_embd.weight")?);
        let tied = !ct.tensor_infos.contains_key("output.weight");
        let lm_head = match tied {
            true => token_embd.clone(),
            false => Arc::new(get("output.weight")?),
        };
        let lm_head = BaseLinear::from_arc(lm_head, differentiable, config.vocab_size)?;
        // A packed LM head holds the shared table, so the 262k-row table is in memory once.
        let embed = match (lm_head.packed(), tied) {
            (Some(w), true) => Embedding::Packed(w.clone()),
            _ => Embedding::Table(token_embd),
        };
        let final_norm = norm(get("output_norm.weight")?, eps)?;
        let mut layers = Vec::with_capacity(config.num_layers);
        for l in 0..config.num_layers {
            let mut t = |n: &str| get(&format!("blk.{l}.{n}.weight"));
            let projs = Proj::ALL
                .iter()
                .map(|p| BaseLinear::new(t(p.gguf_name())?, differentiable))
                .collect::<Result<Vec<_>>>()?;
            layers.push(Layer {
                attn_norm: norm(t("attn_norm")?, eps)?,
                q_norm: norm(t("attn_q_norm")?, eps)?,
                k_norm: norm(t("attn_k_norm")?, eps)?,
                post_attn_norm: norm(t("post_attention_norm")?, eps)?,
                ffn_norm: norm(t("ffn_norm")?, eps)?,
                post_ffn_norm: norm(t("post_ffw_norm")?, eps)?,
                projs,
                sliding: config.is_sliding(l),
            });
            for p in Proj::ALL {
                let (i, o) = config.proj_dims(p);
                let dims = layers[l].projs[p as usize].w_dims();
                if dims != (o, i) {
                    anyhow::bail!("blk.{l}.{} has shape {dims:?}, expected {:?}", p.gguf_name(), (o, i));
                }
            }
        }
        let max_pos = max_context.min(config.context_length).max(1);
        let rope_global = rope_tables(config.rope_base, config.head_dim, max_pos, device)?;
        let rope_local = rope_tables(ROPE_LOCAL_BASE, config.head_dim, max_pos, device)?;
        Ok(Self {
            config,
            differentiable,
            cpu_attention: device.is_cpu() && !differentiable,
            embed,
            lm_head,
            final_norm,
            layers,
            rope_global,
            rope_local,
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Positions the rope tables cover: the longest sequence this model instance can run.
    pub fn max_positions(&self) -> usize {
        self.rope_global.0.dim(0).unwrap_or(0)
    }

    pub fn new_cache(&self, capacity: usize) -> SeqCache {
        let capacity = capacity.max(1);
        let layers = 0..self.config.num_layers;
        let layers = match self.cpu_attention {
            true => LayerCaches::Cpu(layers.map(|l| LayerKv::new(&self.heads(l), capacity)).collect()),
            false => LayerCaches::Candle(layers.map(|_| KvCache::new(1, capacity)).collect()),
        };
        SeqCache { layers, len: 0 }
    }

    fn heads(&self, layer: usize) -> Heads {
        let c = &self.config;
        Heads {
            query: c.num_heads,
            kv: c.num_kv_heads,
            dim: c.head_dim,
            window: self.layers[layer].sliding.then_some(c.sliding_window),
        }
    }

    fn linear(
        &self,
        x: &Tensor,
        layer: usize,
        proj: Proj,
        lora: &impl LoraDelta,
    ) -> Result<Tensor> {
        let base = &self.layers[layer].projs[proj as usize];
        let y = base.forward(x)?;
        match lora.delta(x, layer, proj, base.out_dim)? {
            Some(d) => y + d,
            None => Ok(y),
        }
    }

    /// One forward pass over a ragged batch. Appends every sequence's new keys and values to
    /// its cache and returns the logits of each sequence's last new token (sequences × vocab).
    pub fn forward(&self, seqs: &mut [SeqRows<'_>], lora: &impl LoraDelta) -> Result<Tensor> {
        let last = self.pass(seqs, lora)?;
        self.head(&last)
    }

    /// The same pass for greedy decoding: each sequence's next token, the first index of the
    /// largest logit, exactly as `argmax` of [`Gemma3::forward`]'s rows. With the packed LM
    /// head the logits are reduced tile by tile and never written out.
    pub fn forward_greedy(&self, seqs: &mut [SeqRows<'_>], lora: &impl LoraDelta) -> Result<Vec<u32>> {
        let last = self.pass(seqs, lora)?;
        if let BaseWeights::Q8(head) = &self.lm_head.w {
            return head.argmax_rows(&last.flatten_all()?.to_vec1::<f32>()?);
        }
        let logits = self.head(&last)?;
        match self.device.is_cpu() {
            true => Ok(logits.to_vec2::<f32>()?.iter().map(|row| crate::sampling::argmax(row)).collect()),
            false => logits.argmax(candle_core::D::Minus1)?.to_vec1::<u32>(),
        }
    }

    /// The decoder over a ragged batch with caches: the final-normed hidden state of each
    /// sequence's last new token (sequences × hidden).
    fn pass(&self, seqs: &mut [SeqRows<'_>], lora: &impl LoraDelta) -> Result<Tensor> {
        let mut ids = Vec::new();
        let mut positions = Vec::new();
        for s in seqs.iter() {
            if s.tokens.is_empty() {
                candle_core::bail!("a sequence in the batch has no new tokens");
            }
            let start = s.cache.len;
            if start + s.tokens.len() > self.max_positions() {
                candle_core::bail!("sequence of {} tokens exceeds the context of {}", start + s.tokens.len(), self.max_positions());
            }
            ids.extend_from_slice(s.tokens);
            positions.extend((start..start + s.tokens.len()).map(|p| p as u32));
        }
        let x = self.layers_forward(ids, positions, lora, |l, q, k, v, window| {
            if self.cpu_attention {
                return self.attend_cpu(seqs, l, q, k, v);
            }
            let mut outs = Vec::with_capacity(seqs.len());
            let mut row = 0;
            for s in seqs.iter_mut() {
                let n = s.tokens.len();
                let start = s.cache.len;
                let LayerCaches::Candle(layers) = &mut s.cache.layers else {
                    candle_core::bail!("a CPU cache in a pass on {:?}", self.device);
                };
                let (k_all, v_all) = layers[l]
                    .append(&k.narrow(1, row, n)?.contiguous()?, &v.narrow(1, row, n)?.contiguous()?)?;
                outs.push(self.attention(&q.narrow(1, row, n)?, &k_all, &v_all, start, window)?);
                row += n;
            }
            Tensor::cat(&outs, 0)
        })?;
        let mut last = Vec::with_capacity(seqs.len());
        let mut row = 0u32;
        for s in seqs.iter_mut() {
            row += s.tokens.len() as u32;
            last.push(row - 1);
            s.cache.len += s.tokens.len();
        }
        self.final_rows(&x, last)
    }

    /// A forward pass over whole sequences from position 0, with no cache, returning the
    /// logits of the rows in `logit_rows` (indices into the concatenated tokens of `seqs`). On
    /// a model from [`Gemma3::load_differentiable`] the result has a backward pass to the
    /// LoRA parameters: this is what training and gradient attribution use.
    pub fn forward_all(&self, seqs: &[&[u32]], lora: &impl LoraDelta, logit_rows: Vec<u32>) -> Result<Tensor> {
        let mut ids = Vec::new();
        let mut positions = Vec::new();
        for s in seqs {
            if s.is_empty() || s.len() > self.max_positions() {
                candle_core::bail!("a sequence of {} tokens does not fit the context of {}", s.len(), self.max_positions());
            }
            ids.extend_from_slice(s);
            positions.extend(0..s.len() as u32);
        }
        let x = self.layers_forward(ids, positions, lora, |_, q, k, v, window| {
            let mut outs = Vec::with_capacity(seqs.len());
            let mut row = 0;
            for s in seqs {
                let n = s.len();
                let (k, v) = (k.narrow(1, row, n)?, v.narrow(1, row, n)?);
                outs.push(self.attention(&q.narrow(1, row, n)?, &k, &v, 0, window)?);
                row += n;
            }
            Tensor::cat(&outs, 0)
        })?;
        self.head(&self.final_rows(&x, logit_rows)?)
    }

    /// Layer `l`'s attention for the whole pass on the CPU: stores the new keys and values in
    /// each sequence's cache, then attends every row at once.
    fn attend_cpu(&self, seqs: &mut [SeqRows<'_>], l: usize, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        let heads = self.heads(l);
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        let (q, k, v) = (flat(q)?, flat(k)?, flat(v)?);
        let mut row = 0;
        let mut spans = Vec::with_capacity(seqs.len());
        for s in seqs.iter_mut() {
            let (n, start) = (s.tokens.len(), s.cache.len);
            let kv = &mut cpu_layers(s.cache)?[l];
            kv.append(&heads, &k, &v, row..row + n, start)?;
            spans.push(Span { kv, start, rows: n });
            row += n;
        }
        let out = attention::attend(&heads, &q, &spans)?;
        Tensor::from_vec(out, (row, heads.query * heads.dim), &self.device)
    }

    /// The logits (f32) of final-normed hidden states.
    fn head(&self, normed: &Tensor) -> Result<Tensor> {
        self.lm_head.forward(normed)?.to_dtype(DType::F32)
    }

    /// Rows `rows` of the hidden states `x`, through the final norm.
    fn final_rows(&self, x: &Tensor, rows: Vec<u32>) -> Result<Tensor> {
        let n = rows.len();
        let rows = Tensor::from_vec(rows, n, &self.device)?;
        self.final_norm.forward(&x.index_select(&rows, 0)?)
    }

    /// The decoder layers over rows `ids` at `positions`. `attend(layer, q, k, v, window)`
    /// gets the roped queries (heads × rows × hd), keys and values (kv_heads × rows × hd) and
    /// returns the attention output (rows × heads·hd): the callers differ only in where keys
    /// and values come from. Returns the final hidden states (rows × hidden).
    fn layers_forward(
        &self,
        ids: Vec<u32>,
        positions: Vec<u32>,
        lora: &impl LoraDelta,
        mut attend: impl FnMut(usize, &Tensor, &Tensor, &Tensor, Option<usize>) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let cfg = &self.config;
        let rows = ids.len();
        let ids = Tensor::from_vec(ids, rows, &self.device)?;
        let positions = Tensor::from_vec(positions, rows, &self.device)?;
        let mut x = self.embed.lookup(&ids)?.affine((cfg.hidden_size as f64).sqrt(), 0.0)?;
        let rope = |t: &(Tensor, Tensor)| -> Result<(Tensor, Tensor)> {
            Ok((t.0.index_select(&positions, 0)?, t.1.index_select(&positions, 0)?))
        };
        let (cos_g, sin_g) = rope(&self.rope_global)?;
        let (cos_l, sin_l) = rope(&self.rope_local)?;
        let (nh, nkv, hd) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        for (l, layer) in self.layers.iter().enumerate() {
            let h = layer.attn_norm.forward(&x)?;
            let q = self.linear(&h, l, Proj::Q, lora)?.reshape((rows, nh, hd))?;
            let k = self.linear(&h, l, Proj::K, lora)?.reshape((rows, nkv, hd))?;
            let v = self.linear(&h, l, Proj::V, lora)?.reshape((rows, nkv, hd))?;
            let q = layer.q_norm.forward(&q)?;
            let k = layer.k_norm.forward(&k)?;
            // Rows as rope's time axis: each row carries its own sequence position.
            let (cos, sin) = if layer.sliding { (&cos_l, &sin_l) } else { (&cos_g, &sin_g) };
            let q = self.rope(&q, cos, sin)?;
            let k = self.rope(&k, cos, sin)?;
            let v = v.transpose(0, 1)?;
            let window = layer.sliding.then_some(cfg.sliding_window);
            let attn = attend(l, &q, &k, &v, window)?;
            let o = self.linear(&attn, l, Proj::O, lora)?;
            x = (x + layer.post_attn_norm.forward(&o)?)?;
            let h = layer.ffn_norm.forward(&x)?;
            let g = self.gelu(&self.linear(&h, l, Proj::Gate, lora)?)?;
            let u = self.linear(&h, l, Proj::Up, lora)?;
            let m = self.linear(&(g * u)?, l, Proj::Down, lora)?;
            x = (x + layer.post_ffn_norm.forward(&m)?)?;
        }
        Ok(x)
    }

    fn gelu(&self, x: &Tensor) -> Result<Tensor> {
        match x.device().is_cpu() && x.dtype() == DType::F32 {
            true => ops::gelu_tanh(x),
            false => x.gelu(),
        }
    }

    /// Rope over rows × heads × hd, returning heads × rows × hd.
    fn rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let x = x.transpose(0, 1)?.unsqueeze(0)?.contiguous()?;
        let y = match self.differentiable {
            true => candle_nn::rotary_emb::rope_slow(&x, cos, sin)?,
            false => candle_nn::rotary_emb::rope(&x, cos, sin)?,
        };
        y.squeeze(0)
    }

    /// Causal attention of one sequence's new queries (heads × n × hd) over its keys and
    /// values (kv_heads × T × hd); the new queries sit at positions `start..start + n`.
    /// Grouped-query: each key/value head serves `heads / kv_heads` query heads without being
    /// copied.
    fn attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, start: usize, window: Option<usize>) -> Result<Tensor> {
        let (nh, n, hd) = q.dims3()?;
        let (nkv, t, _) = k.dims3()?;
        let group = nh / nkv;
        let q = q.contiguous()?.reshape((nkv, group * n, hd))?;
        let scores = match self.differentiable {
            true => ops::matmul_t(&q, k)?,
            false => q.matmul(&k.contiguous()?.t()?)?,
        };
        let scores = (scores * (1.0 / (hd as f64).sqrt()))?.reshape((nkv, group, n, t))?;
        let needs_mask = n > 1 || window.is_some_and(|w| t > w);
        let scores = if needs_mask {
            let mut mask = vec![0f32; n * t];
            for i in 0..n {
                let pos = start + i;
                for j in 0..t {
                    let visible = j <= pos && window.is_none_or(|w| pos - j < w);
                    if !visible {
                        mask[i * t + j] = f32::NEG_INFINITY;
                    }
                }
            }
            let mask = Tensor::from_vec(mask, (n, t), q.device())?.to_dtype(scores.dtype())?;
            scores.broadcast_add(&mask)?
        } else {
            scores
        };
        let scores = scores.reshape((nkv, group * n, t))?.contiguous()?;
        // nkv × (group·n) × hd
        let o = match self.differentiable {
            true => ops::matmul_t(&ops::softmax_last_dim(&scores)?, &v.transpose(1, 2)?)?,
            false => candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v.contiguous()?)?,
        };
        o.reshape((nh, n, hd))?.transpose(0, 1)?.reshape((n, nh * hd))
    }
}

fn cpu_layers(cache: &mut SeqCache) -> Result<&mut [LayerKv]> {
    match &mut cache.layers {
        LayerCaches::Cpu(layers) => Ok(layers),
        LayerCaches::Candle(_) => candle_core::bail!("a device cache in a CPU pass"),
    }
}

impl BaseLinear {
    fn w_dims(&self) -> (usize, usize) {
        let dims = match &self.w {
            BaseWeights::Q8(w) | BaseWeights::Frozen(Frozen { w, .. }) => return w.dims(),
            BaseWeights::Dense(t) => t.dims().to_vec(),
            BaseWeights::Candle(QMatMul::QTensor(t)) => t.shape().dims().to_vec(),
            BaseWeights::Candle(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => t.dims().to_vec(),
        };
        (dims[0], dims.get(1).copied().unwrap_or(0))
    }
}

/// The token embedding table.
enum Embedding {
    Table(Arc<QTensor>),
    /// Rows of the packed LM head that shares the table.
    Packed(Arc<Q8Matrix>),
}

impl Embedding {
    fn lookup(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Embedding::Table(t) => t.embedding(ids),
            Embedding::Packed(w) => {
                let rows = ids.to_vec1::<u32>()?;
                Tensor::from_vec(w.rows(&rows)?, (rows.len(), w.dims().1), ids.device())
            }
        }
    }
}

/// The GGUF tensor name of a projection's weight, for tools that write models.
pub fn gguf_proj_name(layer: usize, proj: Proj) -> String {
    format!("blk.{layer}.{}.weight", proj.gguf_name())
}

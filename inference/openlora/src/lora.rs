//! LoRA adapters in the PEFT layout, and the per-row LoRA product for a mixed batch.
//!
//! An adapter is a folder with `adapter_config.json` (`r`, `lora_alpha`, `target_modules`) and
//! `adapter_model.safetensors` holding, for each adapted projection of each layer,
//! `…layers.{l}.{self_attn|mlp}.{proj}.lora_A.weight` (r × in) and `….lora_B.weight` (out × r).
//! Its identity is the blake2-256 hash of the safetensors file, the value the chain records.
//!
//! The delta a row receives is `scale · B · (A · x)` with `scale = alpha / r`. Rows of one batch
//! use different adapters: [`LoraBatch::delta`] gathers each row's adapter (BGMV: a batched
//! gather matrix-vector product) instead of running one forward pass per adapter.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use crate::models::gemma3::{Gemma3Config, Proj};

pub use attribution::hash::{blake2_256, blake2_256_file, Hash256};

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// Why an adapter was refused. Each names the file and the offending tensor so that the
/// adapter's author can fix it.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("invalid {CONFIG_FILE}: {0}")]
    Config(String),
    #[error("broken safetensors file: {0}")]
    Safetensors(String),
    #[error("rank {rank} is over this server's limit of {max}")]
    RankTooLarge { rank: usize, max: usize },
    #[error("tensor `{name}` has shape {found:?}, the base model needs {expected:?}")]
    Shape { name: String, found: Vec<usize>, expected: Vec<usize> },
    #[error("tensor `{0}` holds NaN or infinite values")]
    NonFinite(String),
    #[error("tensor `{0}` names no layer/projection of the base model")]
    UnknownTensor(String),
    #[error("tensor `{0}` has no matching lora_A/lora_B partner")]
    Unpaired(String),
    #[error("the adapter adapts nothing: no lora_A/lora_B tensors")]
    Empty,
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
}

#[derive(Debug, Deserialize)]
struct PeftConfig {
    r: usize,
    lora_alpha: f64,
    #[serde(default)]
    use_rslora: bool,
}

/// What registration learns from an adapter without reading its weights: enough to list it,
/// account for its memory and refuse an oversized rank before it is ever loaded.
#[derive(Clone, Debug)]
pub struct AdapterHeader {
    pub dir: PathBuf,
    pub hash: Hash256,
    pub rank: usize,
    pub alpha: f64,
    /// Bytes the loaded weights occupy (f32).
    pub weight_bytes: usize,
}

/// One adapted projection of one layer: `A` (r × in) and `B` transposed (r × out), as f32.
/// `B` is kept transposed because the CPU product adds `t_k · Bᵀ[k]` row by row, which
/// vectorizes; PEFT's out × r would be one short dot product per output.
pub struct LoraPair {
    pub in_dim: usize,
    pub out_dim: usize,
    a: Vec<f32>,
    b_t: Vec<f32>,
}

/// An adapter's weights, ready for the forward pass.
pub struct LoadedAdapter {
    pub header: AdapterHeader,
    pub scale: f32,
    pub rank: usize,
    /// Indexed by `layer * Proj::COUNT + proj`.
    pairs: Vec<Option<LoraPair>>,
}

impl LoraPair {
    /// `A` (r × in) and `B` (out × r), row-major: PEFT's layout.
    pub fn weights(&self) -> (&[f32], Vec<f32>) {
        (&self.a, transpose(&self.b_t, self.out_dim))
    }

    fn b(&self, o: usize, k: usize) -> f32 {
        self.b_t[k * self.out_dim + o]
    }
}

impl LoadedAdapter {
    pub fn pair(&self, layer: usize, proj: Proj) -> Option<&LoraPair> {
        self.pairs.get(layer * Proj::COUNT + proj as usize)?.as_ref()
    }

    pub fn weight_bytes(&self) -> usize {
        self.header.weight_bytes
    }

    /// The dense delta `scale · B · A` (out × in) for one projection: what merging the adapter
    /// into the base weights adds. Used to check the batched path against merged weights.
    pub fn merged_delta(&self, layer: usize, proj: Proj) -> Option<Vec<f32>> {
        let p = self.pair(layer, proj)?;
        let mut d = vec![0f32; p.out_dim * p.in_dim];
        for o in 0..p.out_dim {
            for k in 0..self.rank {
                let bk = self.scale * p.b(o, k);
                let arow = &p.a[k * p.in_dim..(k + 1) * p.in_dim];
                for (dst, a) in d[o * p.in_dim..(o + 1) * p.in_dim].iter_mut().zip(arow) {
                    *dst += bk * a;
                }
            }
        }
        Some(d)
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AdapterError + '_ {
    move |source| AdapterError::Io { path: path.to_path_buf(), source }
}

fn read_config(dir: &Path) -> Result<PeftConfig, AdapterError> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
    let cfg: PeftConfig =
        serde_json::from_str(&text).map_err(|e| AdapterError::Config(e.to_string()))?;
    if cfg.r == 0 {
        return Err(AdapterError::Config("`r` must be at least 1".into()));
    }
    if !cfg.lora_alpha.is_finite() || cfg.lora_alpha <= 0.0 {
        return Err(AdapterError::Config("`lora_alpha` must be a positive number".into()));
    }
    Ok(cfg)
}

/// Parses a PEFT tensor name into (layer, projection, is_a).
fn parse_tensor_name(name: &str) -> Option<(usize, Proj, bool)> {
    let (stem, is_a) = if let Some(s) = name.strip_suffix(".lora_A.weight") {
        (s, true)
    } else {
        (name.strip_suffix(".lora_B.weight")?, false)
    };
    let (prefix, module) = stem.rsplit_once('.')?;
    let proj = Proj::from_peft_name(module)?;
    let prefix = prefix.strip_suffix(proj.block())?.strip_suffix('.')?;
    let layer = prefix.rsplit_once("layers.")?.1.parse().ok()?;
    Some((layer, proj, is_a))
}

struct Plan {
    /// (layer, proj) → (A tensor name, B tensor name)
    pairs: HashMap<(usize, Proj), (String, String)>,
}

/// Checks names, pairing and shapes from the safetensors header alone.
fn plan(
    st: &safetensors::SafeTensors<'_>,
    cfg: &PeftConfig,
    model: &Gemma3Config,
) -> Result<Plan, AdapterError> {
    let mut a_names = HashMap::new();
    let mut b_names = HashMap::new();
    for (name, view) in st.tensors() {
        let (layer, proj, is_a) =
            parse_tensor_name(&name).ok_or_else(|| AdapterError::UnknownTensor(name.clone()))?;
        if layer >= model.num_layers {
            return Err(AdapterError::UnknownTensor(name));
        }
        let (in_dim, out_dim) = model.proj_dims(proj);
        let expected = if is_a { vec![cfg.r, in_dim] } else { vec![out_dim, cfg.r] };
        if view.shape() != expected.as_slice() {
            return Err(AdapterError::Shape { name, found: view.shape().to_vec(), expected });
        }
        if !matches!(
            view.dtype(),
            safetensors::Dtype::F32 | safetensors::Dtype::F16 | safetensors::Dtype::BF16
        ) {
            return Err(AdapterError::Safetensors(format!(
                "tensor `{name}` has dtype {:?}; f32, f16 or bf16 expected",
                view.dtype()
            )));
        }
        if is_a { a_names.insert((layer, proj), name) } else { b_names.insert((layer, proj), name) };
    }
    let mut pairs = HashMap::new();
    for (key, a) in a_names {
        let b = b_names.remove(&key).ok_or_else(|| AdapterError::Unpaired(a.clone()))?;
        pairs.insert(key, (a, b));
    }
    if let Some(b) = b_names.into_values().next() {
        return Err(AdapterError::Unpaired(b));
    }
    if pairs.is_empty() {
        return Err(AdapterError::Empty);
    }
    Ok(Plan { pairs })
}

fn weight_bytes(plan: &Plan, rank: usize, model: &Gemma3Config) -> usize {
    plan.pairs
        .keys()
        .map(|&(_, proj)| {
            let (i, o) = model.proj_dims(proj);
            rank * (i + o) * std::mem::size_of::<f32>()
        })
        .sum()
}

fn scale(cfg: &PeftConfig) -> f32 {
    let denom = if cfg.use_rslora { (cfg.r as f64).sqrt() } else { cfg.r as f64 };
    (cfg.lora_alpha / denom) as f32
}

/// An adapter folder read from disk: its config and the raw weights file, not yet checked.
struct Opened {
    cfg: PeftConfig,
    bytes: Vec<u8>,
}

impl Opened {
    fn read(dir: &Path, max_rank: usize) -> Result<Self, AdapterError> {
        let cfg = read_config(dir)?;
        if cfg.r > max_rank {
            return Err(AdapterError::RankTooLarge { rank: cfg.r, max: max_rank });
        }
        let path = dir.join(WEIGHTS_FILE);
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        Ok(Self { cfg, bytes })
    }

    /// Parses the safetensors header and checks every tensor against the base model.
    fn plan(&self, model: &Gemma3Config) -> Result<(safetensors::SafeTensors<'_>, Plan), AdapterError> {
        let st = safetensors::SafeTensors::deserialize(&self.bytes)
            .map_err(|e| AdapterError::Safetensors(e.to_string()))?;
        let plan = plan(&st, &self.cfg, model)?;
        Ok((st, plan))
    }

    fn header(&self, dir: &Path, plan: &Plan, model: &Gemma3Config, hash: Hash256) -> AdapterHeader {
        AdapterHeader {
            dir: dir.to_path_buf(),
            hash,
            rank: self.cfg.r,
            alpha: self.cfg.lora_alpha,
            weight_bytes: weight_bytes(plan, self.cfg.r, model),
        }
    }
}

/// Reads an adapter's config and safetensors header, hashes the weights file, and checks every
/// tensor's name and shape against the base model. Reads the whole file (for the hash) but
/// keeps none of it.
pub fn read_header(
    dir: &Path,
    model: &Gemma3Config,
    max_rank: usize,
) -> Result<AdapterHeader, AdapterError> {
    let opened = Opened::read(dir, max_rank)?;
    let (_, plan) = opened.plan(model)?;
    Ok(opened.header(dir, &plan, model, blake2_256(&opened.bytes)))
}

fn to_f32(view: &safetensors::tensor::TensorView<'_>) -> Vec<f32> {
    let data = view.data();
    match view.dtype() {
        safetensors::Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        safetensors::Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        // `plan` admits only the three float types.
        _ => data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
    }
}

/// Loads an adapter's weights: checks shapes and refuses NaN/Inf. `known_hash` skips hashing
/// when the caller knows the file is the one it hashed before (the cold-load path of the
/// store, where hashing would dominate the load time). The weights stay in host memory: the
/// CPU reads them in place, accelerators get them through [`LoraStacks`].
pub fn load(
    dir: &Path,
    model: &Gemma3Config,
    max_rank: usize,
    known_hash: Option<Hash256>,
) -> Result<LoadedAdapter, AdapterError> {
    let opened = Opened::read(dir, max_rank)?;
    let (st, plan) = opened.plan(model)?;
    let mut pairs: Vec<Option<LoraPair>> =
        (0..model.num_layers * Proj::COUNT).map(|_| None).collect();
    for (&(layer, proj), (a_name, b_name)) in &plan.pairs {
        let read = |name: &str| -> Result<Vec<f32>, AdapterError> {
            let view =
                st.tensor(name).map_err(|e| AdapterError::Safetensors(e.to_string()))?;
            let v = to_f32(&view);
            if v.iter().any(|x| !x.is_finite()) {
                return Err(AdapterError::NonFinite(name.to_string()));
            }
            Ok(v)
        };
        let (a, b) = (read(a_name)?, read(b_name)?);
        let (in_dim, out_dim) = model.proj_dims(proj);
        let b_t = transpose(&b, opened.cfg.r);
        pairs[layer * Proj::COUNT + proj as usize] = Some(LoraPair { in_dim, out_dim, a, b_t });
    }
    let hash = known_hash.unwrap_or_else(|| blake2_256(&opened.bytes));
    let header = opened.header(dir, &plan, model, hash);
    Ok(LoadedAdapter { header, scale: scale(&opened.cfg), rank: opened.cfg.r, pairs })
}

/// One tensor of an adapter being written: PEFT name, f32 data, shape.
pub type PeftTensor = (String, Vec<f32>, Vec<usize>);

/// The PEFT name stem of one projection of one layer.
pub fn peft_stem(layer: usize, proj: Proj) -> String {
    format!("base_model.model.model.layers.{layer}.{}.{}", proj.block(), proj.peft_name())
}

/// Writes an adapter folder (`adapter_config.json` and f32 `adapter_model.safetensors`) and
/// returns the weights file's hash. Both files are written under temporary names, synced and
/// renamed, so a crash never leaves an adapter whose hash names other weights.
pub fn save_peft(
    dir: &Path,
    rank: usize,
    alpha: f64,
    targets: &[&str],
    tensors: &[PeftTensor],
) -> anyhow::Result<Hash256> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let config = serde_json::json!({
        "peft_type": "LORA", "r": rank, "lora_alpha": alpha, "target_modules": targets,
        "bias": "none", "task_type": "CAUSAL_LM",
    });
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|(_, data, _)| data.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, _, shape), bytes)| {
            Ok((name.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)?))
        })
        .collect::<anyhow::Result<_>>()?;
    let weights = safetensors::serialize(views, None)?;
    for (name, data) in [(WEIGHTS_FILE, weights.as_slice()), (CONFIG_FILE, &serde_json::to_vec_pretty(&config)?)] {
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(data)?;
        tmp.as_file().sync_all()?;
        tmp.persist(dir.join(name))?;
    }
    Ok(blake2_256(&weights))
}

/// Which adapter each row of a forward pass uses: the distinct adapters of the batch and, per
/// row (token), an index into them or `None` for the base model.
pub struct LoraBatch<'a> {
    adapters: Vec<&'a LoadedAdapter>,
    row_slot: Vec<Option<u32>>,
    /// Gathered path: the stacked adapters and each row's index into them (0: no adapter).
    gathered: Option<(&'a LoraStacks, Tensor)>,
}

/// The adapters of a batch stacked per adapted projection, on the device: `A` as
/// (1 + adapters) × r_max × in and `scale·B` as (1 + adapters) × out × r_max, slot 0 zero and
/// smaller ranks zero-padded. With them the LoRA product of a whole batch is one gather and two
/// batched matmuls per projection, however many adapters the batch mixes (the S-LoRA / Punica
/// way), instead of kernels per adapter. Rebuilt only when the batch's set of adapters changes,
/// which during steady decoding it does not.
#[derive(Default)]
pub struct LoraStacks {
    /// What the stacks hold: each adapter's file hash, rank and scale (content, not addresses,
    /// which a freed adapter's successor may reuse; the scale comes from the config file).
    key: Vec<(Hash256, usize, u32)>,
    stacks: HashMap<(usize, Proj), (Tensor, Tensor)>,
}

impl LoraStacks {
    fn rebuild(&mut self, adapters: &[&LoadedAdapter], cfg: &Gemma3Config, device: &Device) -> candle_core::Result<()> {
        let key: Vec<_> = adapters.iter().map(|a| (a.header.hash, a.rank, a.scale.to_bits())).collect();
        if key == self.key {
            return Ok(());
        }
        self.stacks.clear();
        let r = adapters.iter().map(|a| a.rank).max().unwrap_or(0);
        for layer in 0..cfg.num_layers {
            for proj in Proj::ALL {
                if !adapters.iter().any(|a| a.pair(layer, proj).is_some()) {
                    continue;
                }
                let (i, o) = cfg.proj_dims(proj);
                let mut a_all = vec![0f32; (adapters.len() + 1) * r * i];
                let mut b_all = vec![0f32; (adapters.len() + 1) * o * r];
                for (slot, ad) in adapters.iter().enumerate() {
                    let Some(p) = ad.pair(layer, proj) else { continue };
                    let (a_dst, b_dst) = (&mut a_all[(slot + 1) * r * i..], &mut b_all[(slot + 1) * o * r..]);
                    a_dst[..ad.rank * i].copy_from_slice(&p.a);
                    for row in 0..o {
                        for k in 0..ad.rank {
                            b_dst[row * r + k] = ad.scale * p.b(row, k);
                        }
                    }
                }
                let n = adapters.len() + 1;
                self.stacks.insert(
                    (layer, proj),
                    (Tensor::from_vec(a_all, (n, r, i), device)?, Tensor::from_vec(b_all, (n, o, r), device)?),
                );
            }
        }
        self.key = key;
        Ok(())
    }
}

/// What a forward pass adds to a projection's output for LoRA: [`LoraBatch`] when serving (a
/// different adapter per row), `train::TrainableLora` when computing gradients.
pub trait LoraDelta {
    /// The LoRA contribution for `x` (rows × in) at one projection, or `None` when nothing
    /// adapts it.
    fn delta(&self, x: &Tensor, layer: usize, proj: Proj, out_dim: usize) -> candle_core::Result<Option<Tensor>>;
}

impl LoraDelta for LoraBatch<'_> {
    fn delta(&self, x: &Tensor, layer: usize, proj: Proj, out_dim: usize) -> candle_core::Result<Option<Tensor>> {
        self.row_delta(x, layer, proj, out_dim)
    }
}

impl<'a> LoraBatch<'a> {
    /// `rows` lists, for each sequence in batch order, its number of rows and its adapter.
    pub fn new(rows: impl IntoIterator<Item = (usize, Option<&'a LoadedAdapter>)>) -> Self {
        let mut adapters: Vec<&LoadedAdapter> = Vec::new();
        let mut row_slot = Vec::new();
        for (len, adapter) in rows {
            let slot = adapter.map(|a| {
                match adapters.iter().position(|b| std::ptr::eq(*b, a)) {
                    Some(i) => i as u32,
                    None => {
                        adapters.push(a);
                        (adapters.len() - 1) as u32
                    }
                }
            });
            row_slot.extend(std::iter::repeat_n(slot, len));
        }
        Self { adapters, row_slot, gathered: None }
    }

    /// The same batch, computed by gathering from `stacks` (rebuilt first if this batch's
    /// adapters differ from the last one's). The engine uses it on accelerators.
    pub fn gathered(
        mut self,
        stacks: &'a mut LoraStacks,
        cfg: &Gemma3Config,
        device: &Device,
    ) -> candle_core::Result<Self> {
        stacks.rebuild(&self.adapters, cfg, device)?;
        let idx: Vec<u32> = self.row_slot.iter().map(|s| s.map_or(0, |s| s + 1)).collect();
        let idx = Tensor::from_vec(idx, self.row_slot.len(), device)?;
        self.gathered = Some((stacks, idx));
        Ok(self)
    }

    /// The LoRA contribution for `x` (rows × in) at one projection, or `None` when no row of
    /// the batch adapts it.
    fn row_delta(
        &self,
        x: &Tensor,
        layer: usize,
        proj: Proj,
        out_dim: usize,
    ) -> candle_core::Result<Option<Tensor>> {
        if !self.adapters.iter().any(|a| a.pair(layer, proj).is_some()) {
            return Ok(None);
        }
        if let Some((stacks, idx)) = &self.gathered {
            let Some((a, b)) = stacks.stacks.get(&(layer, proj)) else { return Ok(None) };
            let a = a.index_select(idx, 0)?; // rows × r × in
            let b = b.index_select(idx, 0)?; // rows × out × r
            let t = a.matmul(&x.to_dtype(DType::F32)?.unsqueeze(2)?)?; // rows × r × 1
            return b.matmul(&t)?.squeeze(2)?.to_dtype(x.dtype()).map(Some);
        }
        if !x.device().is_cpu() {
            candle_core::bail!("on an accelerator the LoRA product needs LoraBatch::gathered");
        }
        self.delta_cpu(x, layer, proj, out_dim).map(Some)
    }

    /// BGMV on the CPU: each row reads its own adapter's A and B in place; no weights are
    /// copied or stacked. Rows are independent, so they run in parallel, on candle's pool like
    /// the base product beside them.
    fn delta_cpu(
        &self,
        x: &Tensor,
        layer: usize,
        proj: Proj,
        out_dim: usize,
    ) -> candle_core::Result<Tensor> {
        let (rows, in_dim) = x.dims2()?;
        let xs = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let mut out = vec![0f32; rows * out_dim];
        crate::cpu::for_each_chunk(&mut out, out_dim, |row, y| {
            let Some(slot) = self.row_slot[row] else { return };
            let adapter = self.adapters[slot as usize];
            let Some(pair) = adapter.pair(layer, proj) else { return };
            let xr = &xs[row * in_dim..(row + 1) * in_dim];
            for k in 0..adapter.rank {
                let tk = adapter.scale * dot(&pair.a[k * in_dim..(k + 1) * in_dim], xr);
                for (yo, b) in y.iter_mut().zip(&pair.b_t[k * out_dim..(k + 1) * out_dim]) {
                    *yo += tk * b;
                }
            }
        });
        Tensor::from_vec(out, (rows, out_dim), x.device())?.to_dtype(x.dtype())
    }
}

/// A row-major matrix of `cols` columns, transposed.
fn transpose(m: &[f32], cols: usize) -> Vec<f32> {
    let rows = m.len() / cols.max(1);
    let mut t = vec![0f32; m.len()];
    for (r, row) in m.chunks_exact(cols).enumerate() {
        for (c, v) in row.iter().enumerate() {
            t[c * rows + r] = *v;
        }
    }
    t
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorise the loop.
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for i in 0..chunks {
        for j in 0..8 {
            acc[j] += a[i * 8 + j] * b[i * 8 + j];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peft_names_parse() {
        assert_eq!(
            parse_tensor_name("base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight"),
            Some((3, Proj::Q, true))
        );
        assert_eq!(
            parse_tensor_name("base_model.model.model.layers.12.mlp.down_proj.lora_B.weight"),
            Some((12, Proj::Down, false))
        );
        assert_eq!(parse_tensor_name("base_model.model.model.layers.1.mlp.q_proj.bias"), None);
        assert_eq!(parse_tensor_name("layers.x.self_attn.q_proj.lora_A.weight"), None);
    }
}

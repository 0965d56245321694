//! Gradient influence for LoRA adapters, DataInf's closed form (Kwon et al., ICLR 2024).
//!
//! **At training time** ModelFactory computes, for every contribution k, the gradient of its
//! training loss with respect to the adapter's parameters, layer by layer, and stores it here in
//! compressed form ([`GradientStore`]).
//!
//! **For an output** the engine computes the gradient `v` of the output's loss (the generated
//! tokens given the prompt) with respect to the same parameters, and scores each contribution by
//! how much training on it lowered that loss:
//!
//! ```text
//! score(k) = Σ_l (1/λ_l) · ( v_l·g_lk − (1/n) Σ_i (v_l·g_li)(g_li·g_lk) / (λ_l + ‖g_li‖²) )
//! λ_l      = 0.1 · (1/n) Σ_i ‖g_li‖²
//! ```
//!
//! the per-layer Sherman–Morrison approximation of `vᵀ H⁻¹ g_k` (upweighting k moves the
//! parameters by `−H⁻¹ g_k`, which lowers the output's loss by `vᵀ H⁻¹ g_k`). It costs O(n·d)
//! per layer, not O(n²): `u_l = Σ_i c_i g_li` with `c_i = (v_l·g_li)/(λ_l + ‖g_li‖²)` is shared by
//! every k. Positive scores become ppm weights through [`crate::ppm::to_ppm`].
//!
//! **Compression.** A layer's LoRA gradient has Σ r·(in + out) entries (tens of thousands), so
//! each is count-sketched to `dim` entries (every coordinate added, with a pseudo-random sign,
//! into one pseudo-random bucket: inner products are preserved in expectation, no projection
//! matrix is stored) and quantized to int8 with one f32 scale per layer.
//!
//! **Determinism.** Sketching, quantization and scoring are fixed-order scalar f64 arithmetic,
//! which IEEE 754 makes identical on every machine. What is not bit-exact across CPUs is the
//! output gradient itself (a forward and backward pass through the model, whose matmul kernels
//! differ by CPU family); quantizing it to int8 before scoring absorbs almost all of that, but a
//! value that lands on a rounding boundary can still differ. The span method is exact
//! everywhere; this method is reproducible on the same kind of CPU, and `verify` reports how far
//! a recomputation is from a record when it is not.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hash::{blake2_256, Hash256};
use crate::ppm::{to_ppm, ContributionId, Weight};
use crate::span::Cover;

/// DataInf's damping: λ_l = 0.1 × the mean squared gradient norm of layer l.
const DAMPING: f64 = 0.1;

const MAGIC: &[u8; 8] = b"OLGRAD01";
pub const GRADIENTS_FILE: &str = "gradients.bin";

#[derive(Debug, thiserror::Error)]
pub enum InfluenceError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a gradient store: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("gradient of {found} layers, the store holds {expected}")]
    Layers { found: usize, expected: usize },
    #[error("the gradient store covers {found:?}, the adapter's lineage is {expected:?}")]
    Covers { found: Vec<Cover>, expected: Vec<Cover> },
    #[error("the gradient store holds no contributions")]
    Empty,
}

/// How gradients are compressed; recorded in the store so that output gradients are sketched
/// the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SketchParams {
    /// Entries per layer after sketching.
    pub dim: u32,
    pub seed: u64,
}

impl Default for SketchParams {
    fn default() -> Self {
        Self { dim: 512, seed: 0x0e11_ed6e_0da7_a1f0 }
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl SketchParams {
    /// Count sketch of one layer's gradient (`grad` in `train::TrainableLora::layer_gradients`
    /// order), accumulated in f64 in coordinate order.
    pub fn sketch(&self, layer: usize, grad: &[f32]) -> Vec<f64> {
        let dim = self.dim as u64;
        let mut out = vec![0f64; self.dim as usize];
        let layer_key = splitmix64(self.seed ^ splitmix64(layer as u64));
        for (j, &g) in grad.iter().enumerate() {
            let h = splitmix64(layer_key ^ j as u64);
            let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
            out[((h & 0x7fff_ffff_ffff_ffff) % dim) as usize] += sign * g as f64;
        }
        out
    }
}

/// One layer's sketch as int8 and its scale: value ≈ scale · q.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantized {
    pub scale: f32,
    pub q: Vec<i8>,
}

impl Quantized {
    pub fn new(v: &[f64]) -> Self {
        let max = v.iter().fold(0f64, |m, x| m.max(x.abs()));
        if max == 0.0 || !max.is_finite() {
            return Self { scale: 0.0, q: vec![0; v.len()] };
        }
        let scale = (max / 127.0) as f32;
        let q = v.iter().map(|x| (x / scale as f64).round().clamp(-127.0, 127.0) as i8).collect();
        Self { scale, q }
    }

    fn dot(&self, other: &Quantized) -> f64 {
        let s: i64 = self.q.iter().zip(&other.q).map(|(&a, &b)| a as i64 * b as i64).sum();
        s as f64 * self.scale as f64 * other.scale as f64
    }
}

/// A sketched, quantized gradient: one [`Quantized`] per layer.
pub type SketchedGradient = Vec<Quantized>;

/// Sketches and quantizes per-layer gradients.
pub fn compress(params: &SketchParams, layers: &[Vec<f32>]) -> SketchedGradient {
    layers.iter().enumerate().map(|(l, g)| Quantized::new(&params.sketch(l, g))).collect()
}

/// What a gradient store describes, stored as its JSON header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreHeader {
    pub sketch: SketchParams,
    pub layers: u32,
    /// The adapter the gradients were taken at (its weights file hash, `0x` hex).
    pub adapter: String,
    /// The datanet versions (or local folder) the contributions come from.
    pub covers: Vec<Cover>,
    pub contributions: u64,
}

/// Per-contribution gradients of one adapter: `gradients.bin` holds the magic, the JSON header's
/// length (u32 LE) and the header, then per contribution its id (u64 LE) and per layer the scale
/// (f32 LE) and `dim` int8 values.
pub struct GradientStore {
    pub header: StoreHeader,
    /// blake2-256 of the file: the index root gradient attributions name.
    pub root: Hash256,
    ids: Vec<ContributionId>,
    grads: Vec<SketchedGradient>,
}

/// Writes a store, fsynced under a temporary name and then renamed into `dir`.
pub fn write_store(
    dir: &Path,
    header: &StoreHeader,
    entries: &[(ContributionId, SketchedGradient)],
) -> Result<Hash256, InfluenceError> {
    let path = dir.join(GRADIENTS_FILE);
    let io = |source| InfluenceError::Io { path: path.clone(), source };
    let json = serde_json::to_vec(header).expect("a header always serializes");
    let mut bytes = Vec::with_capacity(
        16 + json.len() + entries.len() * (8 + header.layers as usize * (4 + header.sketch.dim as usize)),
    );
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&json);
    for (id, layers) in entries {
        bytes.extend_from_slice(&id.to_le_bytes());
        for l in layers {
            bytes.extend_from_slice(&l.scale.to_le_bytes());
            bytes.extend(l.q.iter().map(|&x| x as u8));
        }
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(&bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(&path).map_err(|e| io(e.error))?;
    Ok(blake2_256(&bytes))
}

impl GradientStore {
    /// Opens `dir/gradients.bin`, refusing a store taken for other datanet versions than
    /// `expected` (when given).
    pub fn open(dir: &Path, expected: Option<&[Cover]>) -> Result<Self, InfluenceError> {
        let path = dir.join(GRADIENTS_FILE);
        let bytes = std::fs::read(&path).map_err(|source| InfluenceError::Io { path: path.clone(), source })?;
        let bad = |reason: &str| InfluenceError::Format { path: path.clone(), reason: reason.into() };
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(bad("wrong magic"));
        }
        let hlen = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        let body = 12usize.checked_add(hlen).filter(|&e| e <= bytes.len()).ok_or_else(|| bad("truncated header"))?;
        let header: StoreHeader =
            serde_json::from_slice(&bytes[12..body]).map_err(|e| bad(&format!("header: {e}")))?;
        if let Some(expected) = expected {
            let (mut a, mut b) = (header.covers.clone(), expected.to_vec());
            a.sort();
            b.sort();
            if a != b {
                return Err(InfluenceError::Covers { found: header.covers, expected: expected.to_vec() });
            }
        }
        let (layers, dim) = (header.layers as usize, header.sketch.dim as usize);
        let entry = 8 + layers * (4 + dim);
        let rest = &bytes[body..];
        if dim == 0 || rest.len() as u64 != header.contributions * entry as u64 {
            return Err(bad("size does not match the header"));
        }
        let mut ids = Vec::with_capacity(header.contributions as usize);
        let mut grads = Vec::with_capacity(header.contributions as usize);
        for e in rest.chunks_exact(entry) {
            ids.push(u64::from_le_bytes(e[..8].try_into().expect("8 bytes")));
            let g = e[8..]
                .chunks_exact(4 + dim)
                .map(|l| Quantized {
                    scale: f32::from_le_bytes(l[..4].try_into().expect("4 bytes")),
                    q: l[4..].iter().map(|&x| x as i8).collect(),
                })
                .collect();
            grads.push(g);
        }
        Ok(Self { header, root: blake2_256(&bytes), ids, grads })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// DataInf scores of every contribution for an output gradient (see the module doc),
    /// in store order.
    pub fn scores(&self, output: &SketchedGradient) -> Result<Vec<(ContributionId, f64)>, InfluenceError> {
        if self.grads.is_empty() {
            return Err(InfluenceError::Empty);
        }
        if output.len() != self.header.layers as usize {
            return Err(InfluenceError::Layers { found: output.len(), expected: self.header.layers as usize });
        }
        let n = self.grads.len() as f64;
        let mut scores = vec![0f64; self.grads.len()];
        for (l, v) in output.iter().enumerate() {
            let norms: Vec<f64> = self.grads.iter().map(|g| g[l].dot(&g[l])).collect();
            let lambda = DAMPING * norms.iter().sum::<f64>() / n;
            if lambda == 0.0 {
                continue; // the adapter does not depend on this layer
            }
            let dim = v.q.len();
            let mut u = vec![0f64; dim];
            for (g, norm) in self.grads.iter().zip(&norms) {
                let c = v.dot(&g[l]) / (lambda + norm);
                let s = c * g[l].scale as f64;
                for (uj, &q) in u.iter_mut().zip(&g[l].q) {
                    *uj += s * q as f64;
                }
            }
            for (score, g) in scores.iter_mut().zip(&self.grads) {
                let ug: f64 = u.iter().zip(&g[l].q).map(|(a, &q)| a * q as f64).sum::<f64>() * g[l].scale as f64;
                *score += (v.dot(&g[l]) - ug / n) / lambda;
            }
        }
        Ok(self.ids.iter().copied().zip(scores).collect())
    }

    /// The output's ppm weights: positive scores only, `top_k` at most.
    pub fn attribute(&self, output: &SketchedGradient, top_k: usize) -> Result<Vec<Weight>, InfluenceError> {
        let scores = self.scores(output)?;
        let max = scores.iter().map(|s| s.1).fold(0f64, f64::max);
        if max <= 0.0 || !max.is_finite() {
            return Ok(Vec::new());
        }
        // Scores as integers relative to the best one, 2^52 steps: exact in f64, and the ppm
        // rounding stays integer.
        let scale = (1u64 << 52) as f64 / max;
        let ints: Vec<(ContributionId, u128)> =
            scores.iter().map(|&(id, s)| (id, if s > 0.0 { (s * scale).floor() as u128 } else { 0 })).collect();
        Ok(to_ppm(&ints, top_k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_grad(seed: u64, layers: usize, len: usize) -> Vec<Vec<f32>> {
        (0..layers)
            .map(|l| (0..len).map(|j| ((splitmix64(seed * 1000 + l as u64 * 100_000 + j as u64) % 2001) as f32 - 1000.0) / 1000.0).collect())
            .collect()
    }

    #[test]
    fn sketching_preserves_inner_products_roughly() {
        let p = SketchParams { dim: 1024, seed: 1 };
        let a = random_grad(1, 1, 20_000).remove(0);
        let b: Vec<f32> = a.iter().zip(random_grad(2, 1, 20_000).remove(0)).map(|(x, y)| 0.8 * x + 0.2 * y).collect();
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let (sa, sb) = (p.sketch(0, &a), p.sketch(0, &b));
        let approx: f64 = sa.iter().zip(&sb).map(|(x, y)| x * y).sum();
        assert!((approx - exact).abs() < 0.1 * exact.abs(), "sketched {approx}, exact {exact}");
    }

    #[test]
    fn the_contribution_whose_gradient_matches_the_output_gets_the_most_weight() {
        let dir = tempfile::tempdir().unwrap();
        let p = SketchParams { dim: 256, seed: 9 };
        let grads: Vec<Vec<Vec<f32>>> = (0..20).map(|i| random_grad(10 + i, 3, 4_000)).collect();
        let entries: Vec<_> = grads.iter().enumerate().map(|(i, g)| (100 + i as u64, compress(&p, g))).collect();
        let header = StoreHeader { sketch: p, layers: 3, adapter: "0x00".into(), covers: vec![], contributions: 20 };
        let root = write_store(dir.path(), &header, &entries).unwrap();
        let store = GradientStore::open(dir.path(), Some(&[])).unwrap();
        assert_eq!(store.root, root);
        // The output's gradient is contribution 107's plus noise.
        let noise = random_grad(999, 3, 4_000);
        let out: Vec<Vec<f32>> =
            grads[7].iter().zip(&noise).map(|(g, n)| g.iter().zip(n).map(|(a, b)| a + 0.3 * b).collect()).collect();
        let w = store.attribute(&compress(&p, &out), 5).unwrap();
        assert_eq!(w[0].contribution, 107);
        assert_eq!(w.iter().map(|w| w.ppm).sum::<u32>(), 1_000_000);
        // An unrelated output: whatever the weights, they are the same every time.
        let other = compress(&p, &random_grad(5555, 3, 4_000));
        assert_eq!(store.attribute(&other, 5).unwrap(), store.attribute(&other, 5).unwrap());
    }

    #[test]
    fn a_damaged_or_foreign_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = SketchParams { dim: 8, seed: 1 };
        let cover = Cover { datanet_id: Some(1), version: Some(1), merkle_root: [7; 32] };
        let header = StoreHeader { sketch: p, layers: 1, adapter: "0x00".into(), covers: vec![cover], contributions: 1 };
        write_store(dir.path(), &header, &[(1, compress(&p, &[vec![1.0; 10]]))]).unwrap();
        let other = Cover { version: Some(2), ..cover };
        assert!(matches!(GradientStore::open(dir.path(), Some(&[other])), Err(InfluenceError::Covers { .. })));
        let path = dir.path().join(GRADIENTS_FILE);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(matches!(GradientStore::open(dir.path(), None), Err(InfluenceError::Format { .. })));
    }
}

//! The model's own CPU ops, whose results have the same bits on every machine; those the
//! differentiable model uses carry their backward pass.
//!
//! Why: a verifier recomputes an operator's attribution weights on its own machine, and the
//! gradient method's weights come from a backward pass through the whole model. candle's f32
//! matmul (the `gemm` crate) and its quantized kernels pick AVX2 or AVX-512 code at run time
//! and block their sums by the CPU's cache sizes, and `f32::exp` is the C library's, so with
//! candle's ops the same gradient came out different from one CPU to another (one record's
//! weights by 51,450 ppm between an AVX-512 and an AVX2 CPU). Here:
//!
//! - every sum runs in a fixed order: 16 lanes, then a fixed tree ([`dot`]), with the same
//!   fused multiply-adds on every CPU (`mul_add` is exactly rounded wherever it runs);
//! - transcendental functions are this module's [`exp`] and the pure-Rust `libm` crate's
//!   ([`ln`], and the rope's sines and cosines), not the C library's, whose code differs
//!   between versions and instruction sets;
//! - work is split across threads only by output element, never inside a sum.
//!
//! The quantized products keep to the same rules in [`crate::q8`].

use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

use crate::cpu::{contiguous_f32, for_each_chunk};

/// Lanes of the dot products: fixed, so that the summation order is the same on every CPU.
const LANES: usize = 16;

/// `a · b` in 16 independent lanes (which the compiler keeps in vector registers), then a fixed
/// pairwise tree: the same bits on every CPU.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let whole = a.len() / LANES * LANES;
    for (x, y) in a[..whole].chunks_exact(LANES).zip(b[..whole].chunks_exact(LANES)) {
        for i in 0..LANES {
            lanes[i] = x[i].mul_add(y[i], lanes[i]);
        }
    }
    for (i, (x, y)) in a[whole..].iter().zip(&b[whole..]).enumerate() {
        lanes[i] = x.mul_add(*y, lanes[i]);
    }
    sum_lanes(lanes)
}

/// The fixed pairwise tree that ends every lane-wise sum.
fn sum_lanes(mut lanes: [f32; LANES]) -> f32 {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            lanes[i] += lanes[i + width];
        }
    }
    lanes[0]
}

/// `e^x` from plain f32 arithmetic and fused multiply-adds, so the bits are the same on every
/// machine, and branch-free, so loops over it vectorize (a call into a C or `libm` `expf`
/// cannot: it was a fifth of a training step, mostly in the loss over the 262k vocabulary).
/// Within 2 ulp of the exact value. Results below 2⁻¹²⁶ flush to 0, so `-∞` (a masked position)
/// gives exactly 0; above the largest finite value it gives `∞`; NaN stays NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // e^x = 2^k · e^r with k = round(x / ln 2) and |r| ≤ ln 2 / 2, ln 2 split in two parts so
    // that k · LN2_HI is exact (Cody and Waite). The polynomial is Cephes' `expf`.
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const P: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5];
    // ln of the smallest normal and of the largest finite f32.
    const LO: f32 = -87.336_55;
    const HI: f32 = 88.722_83;
    let c = x.clamp(LO, HI);
    let k = (c * LOG2_E).round_ties_even();
    let r = (-k).mul_add(LN2_HI, c);
    let r = (-k).mul_add(LN2_LO, r);
    let mut p = P[0];
    for coeff in &P[1..] {
        p = p.mul_add(r, *coeff);
    }
    let e_r = p.mul_add(r * r, r) + 1.0;
    // 2^k for k in -126..=128, as two factors so that k = 128 (x just below HI) stays finite.
    let half = (k * 0.5).floor();
    let pow2 = |n: f32| f32::from_bits(((n as i32 + 127) as u32) << 23);
    let y = e_r * pow2(half) * pow2(k - half);
    if x < LO {
        0.0
    } else if x > HI {
        f32::INFINITY
    } else if x.is_nan() {
        x
    } else {
        y
    }
}

/// The natural logarithm, the same on every machine.
#[inline]
pub fn ln(x: f32) -> f32 {
    libm::logf(x)
}

/// Softmax of one row in place. `-∞` entries (masked positions) get exactly 0; the row needs
/// one finite entry.
pub fn softmax_in_place(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in x.iter_mut() {
        *v = exp(*v - max);
    }
    let sum: f32 = x.iter().sum();
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// The input of a custom op as a contiguous f32 slice and its dimensions.
fn input<'a>(op: &str, storage: &'a CpuStorage, layout: &Layout) -> Result<(&'a [f32], Vec<usize>)> {
    Ok((contiguous_f32(op, storage, layout)?, layout.dims().to_vec()))
}

/// Splits dims into (rows, last): the ops below work along the last dimension.
fn rows_of(op: &str, dims: &[usize]) -> Result<(usize, usize)> {
    match dims.split_last() {
        Some((&last, rest)) if last > 0 => Ok((rest.iter().product(), last)),
        _ => candle_core::bail!("{op} takes a tensor with a non-empty last dimension, not {dims:?}"),
    }
}

/// `f(row, out)` over every `width`-long row of a new tensor of `dims`, rows in parallel.
fn map_rows(dims: &[usize], width: usize, f: impl Fn(usize, &mut [f32]) + Sync) -> (CpuStorage, Shape) {
    let mut out = vec![0f32; dims.iter().product()];
    for_each_chunk(&mut out, width, f);
    (CpuStorage::F32(out), Shape::from(dims))
}

/// The two inputs of a backward op (the forward's input or output, and the gradient of its
/// result): contiguous f32 of one shape.
fn input_pair<'a>(op: &str, s1: &'a CpuStorage, l1: &Layout, s2: &'a CpuStorage, l2: &Layout) -> Result<(&'a [f32], &'a [f32], Vec<usize>)> {
    let (a, dims) = input(op, s1, l1)?;
    let (b, b_dims) = input(op, s2, l2)?;
    if dims != b_dims {
        candle_core::bail!("{op}: shapes {dims:?} and {b_dims:?} differ");
    }
    Ok((a, b, dims))
}

/// `a · bᵀ` over the last two dimensions: `a` is `[batch] × m × k`, `b` is `[batch] × n × k`
/// (the same batch, if any), the result `[batch] × m × n`. With its backward pass to both.
///
/// Written as rows against rows because then every output is one [`dot`] of two contiguous
/// vectors; callers that hold `b` as `k × n` pass its transpose. The products this model
/// takes gradients through (LoRA factors, attention of one sequence) are small enough that a
/// plain dot-product loop costs little next to the quantized projections.
pub fn matmul_t(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.contiguous()?.apply_op2(&b.contiguous()?, MatMulT)
}

struct MatMulT;

impl MatMulT {
    fn dims(a: &[usize], b: &[usize]) -> Result<(usize, usize, usize, usize)> {
        let ok = a.len() == b.len()
            && (a.len() == 2 || a.len() == 3)
            && a[..a.len() - 2] == b[..b.len() - 2]
            && a[a.len() - 1] == b[b.len() - 1];
        if !ok {
            candle_core::bail!("matmul_t: cannot multiply {a:?} by the transpose of {b:?}");
        }
        let batch = if a.len() == 3 { a[0] } else { 1 };
        let r = a.len();
        Ok((batch, a[r - 2], b[r - 2], a[r - 1]))
    }
}

impl CustomOp2 for MatMulT {
    fn name(&self) -> &'static str {
        "matmul-t"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (a, a_dims) = input("matmul_t", s1, l1)?;
        let (b, b_dims) = input("matmul_t", s2, l2)?;
        let (_, m, n, k) = Self::dims(&a_dims, &b_dims)?;
        let mut out_dims = a_dims.clone();
        *out_dims.last_mut().expect("rank 2 or 3") = n;
        if n == 0 {
            return Ok((CpuStorage::F32(Vec::new()), Shape::from(out_dims)));
        }
        Ok(map_rows(&out_dims, n, |r, row| {
            let (x, batch) = (&a[r * k..(r + 1) * k], r / m.max(1));
            for (j, o) in row.iter_mut().enumerate() {
                *o = dot(x, &b[(batch * n + j) * k..][..k]);
            }
        }))
    }

    fn bwd(&self, a: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let t = |x: &Tensor| -> Result<Tensor> {
            let r = x.rank();
            x.transpose(r - 2, r - 1)?.contiguous()
        };
        let grad = grad.contiguous()?;
        // ∂a = ∂y · b = ∂y · (bᵀ)ᵀ;  ∂b = ∂yᵀ · a = ∂yᵀ · (aᵀ)ᵀ. Skipped for a constant (a
        // frozen dense base weight), whose gradient is as large as the weight.
        let da = match a.track_op() {
            true => Some(grad.apply_op2_no_bwd(&t(b)?, &MatMulT)?),
            false => None,
        };
        let db = match b.track_op() {
            true => Some(t(&grad)?.apply_op2_no_bwd(&t(a)?, &MatMulT)?),
            false => None,
        };
        Ok((da, db))
    }
}

/// Softmax along the last dimension, with its backward pass. `-∞` entries get exactly 0.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Softmax)
}

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, dims) = input("softmax", storage, layout)?;
        let (_, d) = rows_of("softmax", &dims)?;
        Ok(map_rows(&dims, d, |r, row| {
            row.copy_from_slice(&x[r * d..(r + 1) * d]);
            softmax_in_place(row);
        }))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        y.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxGrad).map(Some)
    }
}

/// `∂x = y ⊙ (∂y − (∂y · y))`, row by row.
struct SoftmaxGrad;

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "softmax-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (y, g, dims) = input_pair("softmax-grad", s1, l1, s2, l2)?;
        let (_, d) = rows_of("softmax-grad", &dims)?;
        Ok(map_rows(&dims, d, |r, row| {
            let (y, g) = (&y[r * d..(r + 1) * d], &g[r * d..(r + 1) * d]);
            let s = dot(g, y);
            for ((o, y), g) in row.iter_mut().zip(y).zip(g) {
                *o = y * (g - s);
            }
        }))
    }
}

/// RMS normalisation along the last dimension, `y = x / √(mean(x²) + ε) ⊙ w`, with its
/// backward pass to `x` (the weight is part of the frozen base model).
#[derive(Clone)]
pub struct RmsNorm {
    w: Arc<Vec<f32>>,
    eps: f32,
}

impl RmsNorm {
    pub fn new(w: Vec<f32>, eps: f32) -> Self {
        Self { w: Arc::new(w), eps }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op1(self.clone())
    }

    /// √(mean(x²) + ε) of one row.
    fn rms(&self, x: &[f32]) -> f32 {
        (dot(x, x) / x.len() as f32 + self.eps).sqrt()
    }

    fn width(&self, op: &str, dims: &[usize]) -> Result<usize> {
        let (_, d) = rows_of(op, dims)?;
        if d != self.w.len() {
            candle_core::bail!("{op}: rows of {d} against a weight of {}", self.w.len());
        }
        Ok(d)
    }
}

impl CustomOp1 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, dims) = input("rms-norm", storage, layout)?;
        let d = self.width("rms-norm", &dims)?;
        Ok(map_rows(&dims, d, |r, row| {
            let x = &x[r * d..(r + 1) * d];
            let rms = self.rms(x);
            for ((o, x), w) in row.iter_mut().zip(x).zip(self.w.iter()) {
                *o = x / rms * w;
            }
        }))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        x.apply_op2_no_bwd(&grad.contiguous()?, &RmsNormGrad(self.clone())).map(Some)
    }
}

/// With `s = rms(x)` and `gw = ∂y ⊙ w`: `∂x = gw / s − x · (gw · x) / (d · s³)`.
struct RmsNormGrad(RmsNorm);

impl CustomOp2 for RmsNormGrad {
    fn name(&self) -> &'static str {
        "rms-norm-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, g, dims) = input_pair("rms-norm-grad", s1, l1, s2, l2)?;
        let norm = &self.0;
        let d = norm.width("rms-norm-grad", &dims)?;
        Ok(map_rows(&dims, d, |r, row| {
            let (x, g) = (&x[r * d..(r + 1) * d], &g[r * d..(r + 1) * d]);
            let rms = norm.rms(x);
            for ((o, g), w) in row.iter_mut().zip(g).zip(norm.w.iter()) {
                *o = g * w;
            }
            let c = dot(row, x) / (d as f32 * rms * rms * rms);
            for (o, x) in row.iter_mut().zip(x) {
                *o = *o / rms - x * c;
            }
        }))
    }
}

/// Gemma's GeLU, the tanh form, with its backward pass. `tanh z` is `1 − 2 / (1 + e^{2z})`, from
/// one [`exp`]: the C library's `tanhf` element by element was 10 % of the engine's CPU time at
/// batch 64, and differs between machines.
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(GeluTanh)
}

struct GeluTanh;

/// Elements per parallel task of the elementwise ops.
const CHUNK: usize = 4096;
const GELU_C: f32 = std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2;
const GELU_A: f32 = 0.044715;

/// `tanh(√(2/π)·(x + a·x³))`; `e^{2z}` overflowing to ∞ gives exactly 1.
#[inline]
fn gelu_tanh_of(x: f32) -> f32 {
    let z = GELU_C * x * (1.0 + GELU_A * x * x);
    1.0 - 2.0 / (1.0 + exp(2.0 * z))
}

impl CustomOp1 for GeluTanh {
    fn name(&self) -> &'static str {
        "gelu-tanh"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, dims) = input("gelu-tanh", storage, layout)?;
        Ok(map_rows(&dims, CHUNK, |i, y| {
            for (y, &v) in y.iter_mut().zip(&x[i * CHUNK..]) {
                *y = 0.5 * v * (1.0 + gelu_tanh_of(v));
            }
        }))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        x.apply_op2_no_bwd(&grad.contiguous()?, &GeluTanhGrad).map(Some)
    }
}

/// `d/dx ½x(1 + t) = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3a·x²)`.
struct GeluTanhGrad;

impl CustomOp2 for GeluTanhGrad {
    fn name(&self) -> &'static str {
        "gelu-tanh-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, g, dims) = input_pair("gelu-tanh-grad", s1, l1, s2, l2)?;
        Ok(map_rows(&dims, CHUNK, |i, out| {
            for ((o, &v), &g) in out.iter_mut().zip(&x[i * CHUNK..]).zip(&g[i * CHUNK..]) {
                let t = gelu_tanh_of(v);
                let dz = GELU_C * (1.0 + 3.0 * GELU_A * v * v);
                *o = g * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * dz);
            }
        }))
    }
}

/// Mean cross-entropy of `logits` (rows × vocab) against one target per row, as a scalar, with
/// its backward pass to the logits. One pass per row over the vocabulary, without the
/// log-softmax tensor (67 MB per 64 rows of Gemma's 262k vocabulary) that the composed op
/// writes and reads back several times.
pub fn cross_entropy(logits: &Tensor, targets: &[u32]) -> Result<Tensor> {
    let op = CrossEntropy { targets: Arc::new(targets.to_vec()), row_stats: Arc::default() };
    logits.contiguous()?.apply_op1(op)
}

#[derive(Clone)]
struct CrossEntropy {
    targets: Arc<Vec<u32>>,
    /// Each row's `(max, ln Σ e^{x − max})`, written by the forward pass and read by the
    /// backward pass of the same application, which would otherwise take every `exp` again.
    row_stats: Arc<OnceLock<Vec<[f32; 2]>>>,
}

impl CrossEntropy {
    fn check(&self, dims: &[usize]) -> Result<(usize, usize)> {
        let (rows, vocab) = match dims {
            &[rows, vocab] if vocab > 0 => (rows, vocab),
            _ => candle_core::bail!("cross_entropy takes rows × vocab logits, not {dims:?}"),
        };
        if rows == 0 || self.targets.len() != rows {
            candle_core::bail!("cross_entropy: {} targets for {rows} rows", self.targets.len());
        }
        if let Some(t) = self.targets.iter().find(|&&t| t as usize >= vocab) {
            candle_core::bail!("cross_entropy: target {t} outside a vocabulary of {vocab}");
        }
        Ok((rows, vocab))
    }

    /// `(max, ln Σ e^{x − max})` of one row.
    fn log_sum_exp(row: &[f32]) -> (f32, f32) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut lanes = [0f32; LANES];
        for chunk in row.chunks(LANES) {
            for (l, v) in lanes.iter_mut().zip(chunk) {
                *l += exp(v - max);
            }
        }
        (max, ln(sum_lanes(lanes)))
    }
}

impl CustomOp1 for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross-entropy"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32("cross-entropy", storage, layout)?;
        let (rows, vocab) = self.check(layout.dims())?;
        let mut stats = vec![0f32; 2 * rows];
        for_each_chunk(&mut stats, 2, |r, out| {
            let (max, lse) = Self::log_sum_exp(&x[r * vocab..(r + 1) * vocab]);
            out.copy_from_slice(&[max, lse]);
        });
        let stats: Vec<[f32; 2]> = stats.chunks_exact(2).map(|s| [s[0], s[1]]).collect();
        let losses = stats.iter().enumerate().map(|(r, [max, lse])| lse - (x[r * vocab + self.targets[r] as usize] - max));
        let mean = losses.sum::<f32>() / rows as f32;
        // `cross_entropy` makes a new op for every application: this is its only forward pass.
        let _ = self.row_stats.set(stats);
        Ok((CpuStorage::F32(vec![mean]), Shape::from(())))
    }

    fn bwd(&self, logits: &Tensor, _loss: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        logits.apply_op2_no_bwd(grad, &CrossEntropyGrad(self.clone())).map(Some)
    }
}

/// `∂x = (softmax(x) − onehot(target)) · ∂loss / rows`.
struct CrossEntropyGrad(CrossEntropy);

impl CustomOp2 for CrossEntropyGrad {
    fn name(&self) -> &'static str {
        "cross-entropy-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32("cross-entropy-grad", s1, l1)?;
        let (rows, vocab) = self.0.check(l1.dims())?;
        let g = match contiguous_f32("cross-entropy-grad", s2, l2)? {
            [g] => *g / rows as f32,
            _ => candle_core::bail!("cross-entropy-grad: the loss gradient is a scalar"),
        };
        let Some(stats) = self.0.row_stats.get() else {
            candle_core::bail!("cross-entropy-grad before its forward pass");
        };
        Ok(map_rows(l1.dims(), vocab, |r, out| {
            let row = &x[r * vocab..(r + 1) * vocab];
            let [max, lse] = stats[r];
            for (o, v) in out.iter_mut().zip(row) {
                *o = exp(v - max - lse) * g;
            }
            out[self.0.targets[r] as usize] -= g;
        }))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    /// Seeded values in [-1, 1) (xorshift), for the CPU ops' tests.
    pub(crate) fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    fn tensor(dims: &[usize], seed: u64) -> Tensor {
        Tensor::from_vec(values(dims.iter().product(), seed), dims, &Device::Cpu).unwrap()
    }

    fn max_rel_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        let (a, b) = (a.flatten_all().unwrap().to_vec1::<f32>().unwrap(), b.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        a.iter().zip(&b).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0.0, f32::max)
    }

    /// `ours` and `theirs` (candle's composed ops) agree on their values and on the gradients
    /// of a random weighted sum of their outputs with respect to every input.
    fn agrees(inputs: &[Tensor], ours: impl Fn(&[Tensor]) -> Tensor, theirs: impl Fn(&[Tensor]) -> Tensor, tol: f32) {
        let run = |f: &dyn Fn(&[Tensor]) -> Tensor| {
            let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
            let xs: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
            let y = f(&xs);
            let r = tensor(y.dims(), 99);
            let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let grads: Vec<Tensor> = xs.iter().map(|x| grads.get(x).expect("a gradient for every input").clone()).collect();
            (y, grads)
        };
        let (y, g) = run(&ours);
        let (want_y, want_g) = run(&theirs);
        let d = max_rel_diff(&y, &want_y);
        assert!(d < tol, "values differ by {d}");
        for (i, (a, b)) in g.iter().zip(&want_g).enumerate() {
            let d = max_rel_diff(a, b);
            assert!(d < tol, "gradients of input {i} differ by {d}");
        }
    }

    #[test]
    fn matmul_t_matches_candles_matmul_and_its_gradients() {
        // k = 37: the lane remainder; one 2-D and one batched product.
        for (a, b) in [(vec![5, 37], vec![3, 37]), (vec![2, 4, 37], vec![2, 6, 37])] {
            let inputs = [tensor(&a, 1), tensor(&b, 2)];
            agrees(&inputs, |x| matmul_t(&x[0], &x[1]).unwrap(), |x| x[0].matmul(&x[1].t().unwrap()).unwrap(), 1e-5);
        }
        assert!(matmul_t(&tensor(&[2, 3], 1), &tensor(&[2, 4], 2)).is_err());
    }

    #[test]
    fn softmax_matches_candles_and_masked_entries_get_zero() {
        agrees(&[tensor(&[3, 5, 20], 3)], |x| softmax_last_dim(&x[0]).unwrap(), |x| candle_nn::ops::softmax(&x[0], D::Minus1).unwrap(), 1e-5);
        let masked = Tensor::new(&[[0.5f32, f32::NEG_INFINITY, -1.0]], &Device::Cpu).unwrap();
        let p = softmax_last_dim(&masked).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(p[0][1], 0.0);
        assert!((p[0][0] + p[0][2] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn rms_norm_matches_candles() {
        let w = values(24, 4).iter().map(|v| 1.0 + v).collect::<Vec<_>>();
        let wt = Tensor::from_slice(&w, 24, &Device::Cpu).unwrap();
        let norm = RmsNorm::new(w, 1e-6);
        agrees(&[tensor(&[4, 3, 24], 5)], |x| norm.forward(&x[0]).unwrap(), |x| candle_nn::ops::rms_norm_slow(&x[0], &wt, 1e-6).unwrap(), 1e-5);
        assert!(norm.forward(&tensor(&[2, 23], 1)).is_err());
    }

    #[test]
    fn gelu_matches_candles() {
        // Across the range and past where e^{2z} overflows, over more than one parallel chunk.
        let xs: Vec<f32> = (0..20_000).map(|i| (i as f32 - 10_000.0) / 400.0).chain([-1e4, 1e4, 0.0]).collect();
        let x = Tensor::from_vec(xs.clone(), xs.len(), &Device::Cpu).unwrap();
        agrees(&[x], |x| gelu_tanh(&x[0]).unwrap(), |x| x[0].gelu().unwrap(), 1e-5);
    }

    #[test]
    fn cross_entropy_matches_candles() {
        let targets = [3u32, 0, 99, 41];
        let t = Tensor::new(&targets, &Device::Cpu).unwrap();
        // Logits of a realistic spread (a few units), over a vocabulary of 100.
        let logits = (tensor(&[4, 100], 6) * 4.0).unwrap();
        agrees(&[logits], |x| cross_entropy(&x[0], &targets).unwrap(), |x| candle_nn::loss::cross_entropy(&x[0], &t).unwrap(), 1e-5);
        assert!(cross_entropy(&tensor(&[4, 100], 1), &[1, 2, 3]).is_err());
        assert!(cross_entropy(&tensor(&[1, 100], 1), &[100]).is_err());
    }

    #[test]
    fn exp_is_within_two_ulp_and_keeps_the_edges() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.7 {
            let want = (x as f64).exp();
            let ulp = (want as f32).abs() * f32::EPSILON;
            worst = worst.max(((exp(x) as f64) - want).abs() / ulp as f64);
            x += 0.000_37;
        }
        assert!(worst <= 2.0, "{worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-1000.0), 0.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert!(exp(88.72).is_finite());
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn dot_sums_in_lanes_then_a_tree() {
        // 1e8 + 1 − 1e8 in sequence gives 0 in f32; in lanes the 1 and the 1e8s fall in
        // different lanes, so the exact answer survives: the order is the lanes', not memory's.
        let mut a = vec![0f32; 18];
        (a[0], a[1], a[16]) = (1e8, 1.0, -1e8);
        assert_eq!(dot(&a, &[1.0; 18]), 1.0);
        assert_eq!(dot(&[], &[]), 0.0);
    }
}

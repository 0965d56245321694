//! The CPU matrix product of the quantized base projections: weights in Q8_0 (8-bit values,
//! one scale per 32), activations quantized the same way, integer dot products per block.
//!
//! Why not candle's Q8_0 kernel: it makes about 11 G multiply-adds/s on this machine whatever
//! the batch size, so a batch of 64 rows cost 64 single rows (perf: its `vec_dot` was 73 % of
//! the engine's CPU time at batch 64). Here the weights are packed once at load in tiles of 16
//! output rows, laid out so that one AVX-512 VNNI instruction makes 64 multiply-adds, and each
//! tile is used for 8 activation rows while it sits in L1.
//!
//! Every kernel produces the same bits, for any batch size: the integer dot product of a block
//! is exact, and each output then accumulates `(weight scale · activation scale) · dot` with
//! one fused multiply-add per block, in block order, in every kernel. So greedy outputs — which
//! receipts hash and verifiers recompute — do not depend on which rows share a batch, nor on
//! whether the CPU has AVX-512 VNNI, only AVX2, or neither. The tests hold the kernels to that.

use candle_core::quantized::{GgmlDType, QTensor};
use std::mem::MaybeUninit;

use candle_core::{CpuStorage, Device, Layout, Result, Shape};

/// Values per quantization block (Q8_0's).
const BLOCK: usize = 32;
/// Output rows per packed tile: the 16 lanes of one AVX-512 register of i32 / f32.
const TILE: usize = 16;
/// Activation rows that share one pass over a tile.
const ROWS: usize = 8;
/// Packed weights one worker walks before taking the next activation rows.
const CHUNK_BYTES: usize = 512 << 10;

/// One 32-value block of 16 output rows. `qs[g * 64 + row * 4 + j]` is the row's value
/// `4g + j` plus 128, unsigned: VNNI multiplies unsigned by signed bytes, and the activation
/// side must stay signed. The offset comes back out through the activations' block sums.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct PackedBlock {
    qs: [u8; BLOCK * TILE],
    d: [f32; TILE],
}

/// A weight matrix (`n` outputs × `k` inputs) packed for [`Q8Matrix::matmul`].
pub struct Q8Matrix {
    n: usize,
    k: usize,
    /// Tile-major: the `k / 32` blocks of tile 0, then of tile 1, ...; the last tile's rows
    /// past `n` are zero.
    blocks: Vec<PackedBlock>,
}

/// Activations quantized per 32-value block: values in -127..=127, a scale, and the block's
/// sum of values (for the weights' +128 offset). The values are kept as little-endian words of
/// four, the unit a kernel broadcasts against a tile.
struct QuantRows {
    blocks_per_row: usize,
    words: Vec<i32>,
    d: Vec<f32>,
    sums: Vec<i32>,
}

/// Words of four values per block.
const WORDS: usize = BLOCK / 4;

impl QuantRows {
    fn new(x: &[f32], k: usize) -> Self {
        let blocks = x.len() / BLOCK;
        let mut q = Self {
            blocks_per_row: k / BLOCK,
            words: Vec::with_capacity(blocks * WORDS),
            d: Vec::with_capacity(blocks),
            sums: Vec::with_capacity(blocks),
        };
        // Written as fixed-width lane loops so that the compiler vectorizes them.
        for xs in x.chunks_exact(BLOCK) {
            let mut lanes = [0f32; 8];
            for eight in xs.chunks_exact(8) {
                for (m, v) in lanes.iter_mut().zip(eight) {
                    *m = m.max(v.abs());
                }
            }
            let d = lanes.iter().fold(0f32, |m, v| m.max(*v)) / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            let mut qs = [0u8; BLOCK];
            for (q, v) in qs.iter_mut().zip(xs) {
                // -127..=127: the AVX2 kernel negates activations, and -128 has no negation.
                *q = (v * id).round_ties_even().clamp(-127.0, 127.0) as i8 as u8;
            }
            q.sums.push(qs.iter().map(|q| *q as i8 as i32).sum());
            q.words.extend(qs.chunks_exact(4).map(|w| i32::from_le_bytes([w[0], w[1], w[2], w[3]])));
            q.d.push(d);
        }
        q
    }

    /// The first block of row `r`: its words, scales and sums start here.
    #[inline(always)]
    fn row(&self, r: usize) -> usize {
        r * self.blocks_per_row
    }
}

/// The instruction sets a kernel is written for; all give the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    Avx512Vnni,
    Avx2,
    Portable,
}

impl Kernel {
    const ALL: [Kernel; 3] = [Kernel::Avx512Vnni, Kernel::Avx2, Kernel::Portable];

    /// Whether this CPU has the instructions the kernel is written with.
    pub fn runs_here(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            Kernel::Portable => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The fastest kernel this CPU runs.
    pub fn best() -> Self {
        Self::ALL.into_iter().find(|k| k.runs_here()).unwrap_or(Kernel::Portable)
    }

    /// Every kernel this CPU runs, fastest first.
    pub fn available() -> Vec<Self> {
        Self::ALL.into_iter().filter(|k| k.runs_here()).collect()
    }

    /// `R` activation rows from `r0` against one tile's blocks: `[r][lane]`.
    #[inline(always)]
    fn tile<const R: usize>(self, w: &[PackedBlock], a: &QuantRows, r0: usize) -> [[f32; TILE]; R] {
        let mut out = [[0f32; TILE]; R];
        let out_ref = &mut out;
        match self {
            // SAFETY: `matmul_with` runs a kernel only where `runs_here()`: the CPU has the
            // features these enable.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => unsafe { x86::tile_vnni::<R>(w, a, r0, out_ref) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { x86::tile_avx2::<R>(w, a, r0, out_ref) },
            _ => tile_portable::<R>(w, a, r0, out_ref),
        }
        out
    }
}

fn tile_portable<const R: usize>(w: &[PackedBlock], a: &QuantRows, r0: usize, out: &mut [[f32; TILE]; R]) {
    for (r, out) in out.iter_mut().enumerate() {
        for (lane, out) in out.iter_mut().enumerate() {
            let mut acc = 0f32;
            let row = a.row(r0 + r);
            for (b, blk) in w.iter().enumerate() {
                let words = &a.words[(row + b) * WORDS..][..WORDS];
                let mut dot = 0i32;
                for (g, word) in words.iter().enumerate() {
                    for (j, x) in word.to_le_bytes().into_iter().enumerate() {
                        dot += (blk.qs[g * 64 + lane * 4 + j] as i32 - 128) * x as i8 as i32;
                    }
                }
                acc = (blk.d[lane] * a.d[row + b]).mul_add(dot as f32, acc);
            }
            *out = acc;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{PackedBlock, QuantRows, TILE, WORDS};
    use core::arch::x86_64::*;

    /// The first block of rows `r0 .. r0 + R` in `a`, checked once so the loops read unchecked.
    #[inline(always)]
    fn rows<const R: usize>(a: &QuantRows, r0: usize, blocks: usize) -> [usize; R] {
        assert!(blocks <= a.blocks_per_row && a.row(r0 + R) <= a.d.len(), "rows outside the activations");
        std::array::from_fn(|r| a.row(r0 + r))
    }

    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn tile_vnni<const R: usize>(w: &[PackedBlock], a: &QuantRows, r0: usize, out: &mut [[f32; TILE]; R]) {
        let rows = rows::<R>(a, r0, w.len());
        let (words, ds, sums) = (a.words.as_ptr(), a.d.as_ptr(), a.sums.as_ptr());
        let mut acc = [_mm512_setzero_ps(); R];
        for (b, blk) in w.iter().enumerate() {
            let mut dot = [_mm512_setzero_si512(); R];
            for g in 0..WORDS {
                let wv = _mm512_load_si512(blk.qs.as_ptr().add(g * 64).cast());
                for r in 0..R {
                    let x = *words.add((rows[r] + b) * WORDS + g);
                    dot[r] = _mm512_dpbusd_epi32(dot[r], wv, _mm512_set1_epi32(x));
                }
            }
            let dw = _mm512_load_ps(blk.d.as_ptr());
            for r in 0..R {
                let (d, sum) = (*ds.add(rows[r] + b), *sums.add(rows[r] + b));
                let dot = _mm512_sub_epi32(dot[r], _mm512_set1_epi32(128 * sum));
                let scale = _mm512_mul_ps(dw, _mm512_set1_ps(d));
                acc[r] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(dot), acc[r]);
            }
        }
        for r in 0..R {
            _mm512_storeu_ps(out[r].as_mut_ptr(), acc[r]);
        }
    }

    /// Without VNNI: `maddubs` multiplies unsigned by signed bytes into saturating i16 pairs,
    /// so the weights go back to signed and the sign moves onto the activations
    /// (|w| · ±x ≤ 128 · 127 · 2 fits). Lanes 0..8 and 8..16 of the tile are two registers.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile_avx2<const R: usize>(w: &[PackedBlock], a: &QuantRows, r0: usize, out: &mut [[f32; TILE]; R]) {
        let rows = rows::<R>(a, r0, w.len());
        let (words, ds) = (a.words.as_ptr(), a.d.as_ptr());
        let offset = _mm256_set1_epi8(-128);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for (b, blk) in w.iter().enumerate() {
            let mut dot = [[_mm256_setzero_si256(); 2]; R];
            for g in 0..WORDS {
                for h in 0..2 {
                    let wu = _mm256_load_si256(blk.qs.as_ptr().add(g * 64 + h * 32).cast());
                    let ws = _mm256_xor_si256(wu, offset);
                    let wabs = _mm256_abs_epi8(ws);
                    for r in 0..R {
                        let x = _mm256_set1_epi32(*words.add((rows[r] + b) * WORDS + g));
                        let x = _mm256_sign_epi8(x, ws);
                        let pairs = _mm256_maddubs_epi16(wabs, x);
                        dot[r][h] = _mm256_add_epi32(dot[r][h], _mm256_madd_epi16(pairs, ones));
                    }
                }
            }
            for h in 0..2 {
                let dw = _mm256_load_ps(blk.d.as_ptr().add(h * 8));
                for r in 0..R {
                    let scale = _mm256_mul_ps(dw, _mm256_set1_ps(*ds.add(rows[r] + b)));
                    acc[r][h] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot[r][h]), acc[r][h]);
                }
            }
        }
        for r in 0..R {
            _mm256_storeu_ps(out[r].as_mut_ptr(), acc[r][0]);
            _mm256_storeu_ps(out[r].as_mut_ptr().add(8), acc[r][1]);
        }
    }
}

impl Q8Matrix {
    /// Packs a weight tensor (`n` × `k`, `k` a multiple of 32). Q8_0 is taken as it is; other
    /// quantizations are dequantized and quantized to Q8_0, which keeps at least their precision.
    pub fn from_qtensor(t: &QTensor) -> Result<Self> {
        let (n, k) = t.shape().dims2()?;
        if k % BLOCK != 0 {
            candle_core::bail!("a Q8_0 matrix needs inputs in multiples of {BLOCK}, not {k}");
        }
        let requantized;
        let t = match t.dtype() {
            GgmlDType::Q8_0 => t,
            _ => {
                requantized = QTensor::quantize(&t.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?;
                &requantized
            }
        };
        let data = t.data()?;
        // BlockQ8_0: an f16 scale, then 32 i8 values.
        const Q8_0_BYTES: usize = 2 + BLOCK;
        let blocks_per_row = k / BLOCK;
        if data.len() != n * blocks_per_row * Q8_0_BYTES {
            candle_core::bail!("Q8_0 tensor of {n}×{k} holds {} bytes", data.len());
        }
        let tiles = n.div_ceil(TILE);
        let empty = PackedBlock { qs: [128; BLOCK * TILE], d: [0.0; TILE] };
        let mut blocks = vec![empty; tiles * blocks_per_row];
        for row in 0..n {
            let (tile, lane) = (row / TILE, row % TILE);
            for b in 0..blocks_per_row {
                let src = &data[(row * blocks_per_row + b) * Q8_0_BYTES..][..Q8_0_BYTES];
                let dst = &mut blocks[tile * blocks_per_row + b];
                dst.d[lane] = half::f16::from_le_bytes([src[0], src[1]]).to_f32();
                for (i, q) in src[2..].iter().enumerate() {
                    dst.qs[(i / 4) * 64 + lane * 4 + i % 4] = (*q as i8 as i16 + 128) as u8;
                }
            }
        }
        Ok(Self { n, k, blocks })
    }

    pub fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    /// Bytes of packed weights held.
    pub fn size_in_bytes(&self) -> usize {
        self.blocks.len() * std::mem::size_of::<PackedBlock>()
    }

    /// Rows `ids` of the matrix, dequantized (`ids.len()` × `k`): the embedding lookup when
    /// the LM head shares its matrix with the token embeddings.
    pub fn rows(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let blocks_per_row = self.k / BLOCK;
        let mut out = Vec::with_capacity(ids.len() * self.k);
        for &id in ids {
            let row = id as usize;
            if row >= self.n {
                candle_core::bail!("row {row} of a {}-row matrix", self.n);
            }
            let (tile, lane) = (row / TILE, row % TILE);
            for blk in &self.blocks[tile * blocks_per_row..][..blocks_per_row] {
                out.extend((0..BLOCK).map(|i| blk.d[lane] * (blk.qs[(i / 4) * 64 + lane * 4 + i % 4] as i32 - 128) as f32));
            }
        }
        Ok(out)
    }

    /// `x` (`m` × `k`, row-major) times the transposed matrix, into `out` (`m` × `n`), with
    /// the fastest kernel this CPU has.
    pub fn matmul(&self, x: &[f32], out: &mut [f32]) -> Result<()> {
        self.matmul_with(Kernel::best(), x, out)
    }

    pub fn matmul_with(&self, kernel: Kernel, x: &[f32], out: &mut [f32]) -> Result<()> {
        // SAFETY: initialized values are valid `MaybeUninit`s, and only f32s are written back.
        let out = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast(), out.len()) };
        self.matmul_into(kernel, x, out)
    }

    /// The product into memory that need not be initialized: every output is written.
    fn matmul_into(&self, kernel: Kernel, x: &[f32], out: &mut [MaybeUninit<f32>]) -> Result<()> {
        let n = self.n;
        if out.len() != x.len() / self.k * n {
            candle_core::bail!("matmul of {} inputs into {} outputs against {n}×{}", x.len(), out.len(), self.k);
        }
        // Workers own disjoint column ranges (tiles) of every row.
        let dst = crate::cpu::SharedOut(out.as_mut_ptr().cast::<f32>());
        self.tiles(
            kernel,
            x,
            || (),
            |_, r0, tile, rows| {
                let dst = dst;
                let cols = TILE.min(n - tile * TILE);
                for (i, vals) in rows.iter().enumerate() {
                    // SAFETY: row `r0 + i` < m and columns `tile * 16 ..+ cols` < n lie in
                    // `out`, and only this worker writes this tile's columns.
                    unsafe {
                        let at = dst.0.add((r0 + i) * n + tile * TILE);
                        std::ptr::copy_nonoverlapping(vals.as_ptr(), at, cols);
                    }
                }
            },
            |_| {},
        )
    }

    /// The index of the largest output of each row of `x` (`m` × `k`) times the transposed
    /// matrix, the first one on ties: greedy decoding's next tokens straight from the LM head,
    /// without writing the `m` × `n` logits (67 MB for 64 rows of Gemma's vocabulary) to
    /// memory. The outputs compared have the bits [`Q8Matrix::matmul`] gives.
    pub fn argmax_rows(&self, x: &[f32]) -> Result<Vec<u32>> {
        let m = x.len() / self.k;
        let none = || vec![(f32::NEG_INFINITY, u32::MAX); m];
        let best = std::sync::Mutex::new(none());
        // Largest value, then lowest index: the same answer whatever order tiles arrive in.
        let better = |(v, i): (f32, u32), (bv, bi): (f32, u32)| v > bv || (v == bv && i < bi);
        let n = self.n;
        self.tiles(
            Kernel::best(),
            x,
            none,
            |local, r0, tile, rows| {
                for (i, vals) in rows.iter().enumerate() {
                    let slot = &mut local[r0 + i];
                    for (lane, &v) in vals.iter().enumerate().take(n - tile * TILE) {
                        let col = (tile * TILE + lane) as u32;
                        if better((v, col), *slot) {
                            *slot = (v, col);
                        }
                    }
                }
            },
            |local| {
                let mut best = best.lock().unwrap_or_else(|e| e.into_inner());
                for (b, l) in best.iter_mut().zip(local) {
                    if better(l, *b) {
                        *b = l;
                    }
                }
            },
        )?;
        // A row of NaNs has no maximum; its first index stands in, as `sampling::argmax` does.
        let best = best.into_inner().unwrap_or_else(|e| e.into_inner());
        Ok(best.into_iter().map(|(_, i)| if i == u32::MAX { 0 } else { i }).collect())
    }

    /// Runs the product on the worker pool one tile (16 outputs) of up to 8 rows at a time:
    /// each worker takes ranges of tiles, makes a `start()` state for each range, hands every
    /// tile's results to `put(state, first row, tile, rows × 16 values)` and the state to
    /// `finish` at the range's end.
    fn tiles<S>(
        &self,
        kernel: Kernel,
        x: &[f32],
        start: impl Fn() -> S + Sync,
        put: impl Fn(&mut S, usize, usize, &[[f32; TILE]]) + Sync,
        finish: impl Fn(S) + Sync,
    ) -> Result<()> {
        let (n, k) = (self.n, self.k);
        if !kernel.runs_here() {
            candle_core::bail!("this CPU cannot run the {kernel:?} kernel");
        }
        if x.len() % k != 0 {
            candle_core::bail!("matmul of {} inputs against {n}×{k}", x.len());
        }
        let m = x.len() / k;
        if m == 0 {
            return Ok(());
        }
        let a = QuantRows::new(x, k);
        let blocks_per_row = k / BLOCK;
        let tiles = n.div_ceil(TILE);
        // Tiles of one stretch stay in L2 while every group of activation rows passes over them.
        let stretch = (CHUNK_BYTES / (blocks_per_row * std::mem::size_of::<PackedBlock>())).max(1);
        // candle's own pool: its ops and these products then share one set of worker threads.
        candle_core::utils::barrier_pool().execute_chunked(tiles, |range| {
            let mut state = start();
            for first in range.clone().step_by(stretch) {
                let stretch = first..range.end.min(first + stretch);
                let mut r0 = 0;
                while r0 < m {
                    let r = match m - r0 {
                        left if left >= ROWS => ROWS,
                        left if left >= 4 => 4,
                        left if left >= 2 => 2,
                        _ => 1,
                    };
                    for tile in stretch.clone() {
                        let w = &self.blocks[tile * blocks_per_row..][..blocks_per_row];
                        match r {
                            ROWS => put(&mut state, r0, tile, &kernel.tile::<ROWS>(w, &a, r0)),
                            4 => put(&mut state, r0, tile, &kernel.tile::<4>(w, &a, r0)),
                            2 => put(&mut state, r0, tile, &kernel.tile::<2>(w, &a, r0)),
                            _ => put(&mut state, r0, tile, &kernel.tile::<1>(w, &a, r0)),
                        }
                    }
                    r0 += r;
                }
            }
            finish(state);
        });
        Ok(())
    }
}

/// The matrix as a candle op on f32 CPU tensors (`… × k` → `… × n`).
impl candle_core::CustomOp1 for Q8Matrix {
    fn name(&self) -> &'static str {
        "q8-matmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = crate::cpu::contiguous_f32("q8-matmul", storage, layout)?;
        let mut dims = layout.dims().to_vec();
        match dims.last_mut() {
            Some(last) if *last == self.k => *last = self.n,
            _ => candle_core::bail!("q8-matmul of {:?} against {}×{}", layout.dims(), self.n, self.k),
        }
        // Not zeroed: the product writes every output (for the LM head, 67 MB a step).
        let len = x.len() / self.k * self.n;
        let mut out = Vec::with_capacity(len);
        self.matmul_into(Kernel::best(), x, &mut out.spare_capacity_mut()[..len])?;
        // SAFETY: `matmul_into` wrote all `len` values.
        unsafe { out.set_len(len) };
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Module, Tensor};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rng: &mut ChaCha8Rng, len: usize, scale: f32) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-scale..scale)).collect()
    }

    fn matrix(rng: &mut ChaCha8Rng, n: usize, k: usize) -> (QTensor, Q8Matrix) {
        let w = Tensor::from_vec(random(rng, n * k, 0.5), (n, k), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
        let packed = Q8Matrix::from_qtensor(&q).unwrap();
        (q, packed)
    }

    fn product(m: &Q8Matrix, kernel: Kernel, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; x.len() / m.k * m.n];
        m.matmul_with(kernel, x, &mut out).unwrap();
        out
    }

    #[test]
    fn every_kernel_gives_the_same_bits() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        // 37 outputs: two full tiles and a partial one; 13 rows: every row-group size.
        let (_, w) = matrix(&mut rng, 37, 96);
        let mut x = random(&mut rng, 13 * 96, 3.0);
        x[..32].fill(0.0); // a block of zeros has scale 0
        x[40] = 1e-30;
        let kernels = Kernel::available();
        let reference = product(&w, Kernel::Portable, &x);
        for kernel in kernels {
            let got = product(&w, kernel, &x);
            let same = got.iter().zip(&reference).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{kernel:?} differs from the portable kernel");
        }
    }

    #[test]
    fn a_row_gets_the_same_bits_in_any_batch() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (_, w) = matrix(&mut rng, 64, 64);
        let x = random(&mut rng, 11 * 64, 1.0);
        let batched = product(&w, Kernel::best(), &x);
        for (r, row) in x.chunks_exact(64).enumerate() {
            let alone = product(&w, Kernel::best(), row);
            assert_eq!(alone, batched[r * 64..(r + 1) * 64], "row {r}");
        }
    }

    #[test]
    fn argmax_rows_is_the_argmax_of_the_product() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        // 1,000 outputs over many tiles and ranges of the pool; 11 rows: every row-group size.
        let (_, w) = matrix(&mut rng, 1000, 64);
        let mut x = random(&mut rng, 11 * 64, 1.0);
        // Row 3 repeats row 0 scaled by 2: the same maximum. Row 5 is all zeros: every output
        // ties at 0 and the first index wins.
        let row0: Vec<f32> = x[..64].iter().map(|v| v * 2.0).collect();
        x[3 * 64..4 * 64].copy_from_slice(&row0);
        x[5 * 64..6 * 64].fill(0.0);
        let full = product(&w, Kernel::best(), &x);
        let want: Vec<u32> = full.chunks(1000).map(crate::sampling::argmax).collect();
        assert_eq!(w.argmax_rows(&x).unwrap(), want);
        assert_eq!(want[5], 0);
        assert_eq!(want[0], want[3]);
    }

    #[test]
    fn extreme_weights_stay_exact() {
        // -128 is a valid Q8_0 value that llama.cpp never writes; the AVX2 kernel's sign trick
        // and the VNNI kernel's +128 offset must both get it right.
        let k = 64;
        let mut bytes = Vec::new();
        for row in 0..16 {
            for _ in 0..k / BLOCK {
                bytes.extend(half::f16::from_f32(0.5).to_le_bytes());
                bytes.extend((0..BLOCK).map(|i| if (i + row) % 3 == 0 { 0x80 } else { 0x7f }));
            }
        }
        let q = QTensor::new(candle_core::quantized::QStorage::from_data(std::borrow::Cow::Owned(bytes), &Device::Cpu, GgmlDType::Q8_0).unwrap(), (16, k)).unwrap();
        let w = Q8Matrix::from_qtensor(&q).unwrap();
        let x: Vec<f32> = (0..k).map(|i| if i % 2 == 0 { 127.0 } else { -127.0 }).collect();
        let expected: Vec<f32> = (0..16)
            .map(|row| {
                let dot: i32 = (0..k).map(|i| if (i % BLOCK + row) % 3 == 0 { -128 } else { 127 } * if i % 2 == 0 { 127 } else { -127 }).sum();
                0.5 * dot as f32
            })
            .collect();
        for kernel in Kernel::available() {
            assert_eq!(product(&w, kernel, &x), expected, "{kernel:?}");
        }
    }

    #[test]
    fn agrees_with_the_dense_product_and_with_candle() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (q, w) = matrix(&mut rng, 50, 128);
        let x = random(&mut rng, 5 * 128, 2.0);
        let ours = product(&w, Kernel::best(), &x);
        let xt = Tensor::from_vec(x.clone(), (5, 128), &Device::Cpu).unwrap();
        let candle: Vec<f32> = candle_core::quantized::QMatMul::from_qtensor(QTensor::quantize(&q.dequantize(&Device::Cpu).unwrap(), GgmlDType::Q8_0).unwrap()).unwrap().forward(&xt).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let dense: Vec<f32> = xt.matmul(&q.dequantize(&Device::Cpu).unwrap().t().unwrap()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        for i in 0..ours.len() {
            // Quantizing the activations to 8 bits costs about 1 % of a typical output.
            assert!((ours[i] - dense[i]).abs() < 0.05, "output {i}: {} vs dense {}", ours[i], dense[i]);
            assert!((ours[i] - candle[i]).abs() < 0.05, "output {i}: {} vs candle {}", ours[i], candle[i]);
        }
    }

    #[test]
    fn rows_dequantize_like_candle() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let (q, w) = matrix(&mut rng, 20, 64);
        let ids = [0u32, 19, 7, 16];
        let ours = w.rows(&ids).unwrap();
        let theirs: Vec<f32> = q.embedding(&Tensor::new(&ids, &Device::Cpu).unwrap()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(ours, theirs);
        assert!(w.rows(&[20]).is_err());
    }

    #[test]
    fn other_quantizations_are_packed_through_q8_0() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let t = Tensor::from_vec(random(&mut rng, 32 * 256, 1.0), (32, 256), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&t, GgmlDType::Q4K).unwrap();
        let w = Q8Matrix::from_qtensor(&q).unwrap();
        let exact = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let ids: Vec<u32> = (0..32).collect();
        let packed = w.rows(&ids).unwrap();
        let worst = exact.iter().zip(&packed).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst < 0.01, "requantization error {worst}");
        let bad = QTensor::quantize(&Tensor::zeros((4, 48), candle_core::DType::F32, &Device::Cpu).unwrap(), GgmlDType::F32).unwrap();
        assert!(Q8Matrix::from_qtensor(&bad).is_err(), "48 inputs are not whole blocks");
    }
}

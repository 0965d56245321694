//! Causal attention of a whole ragged batch on the CPU, in one parallel pass over its rows.
//!
//! Why not candle's ops: attention is per sequence (each has its own cache and length), so with
//! candle a decode step of 64 sequences ran about 20 small tensor ops per sequence per layer —
//! 23,000 ops a step for Gemma 3 270M, each with its allocations and a hand-off to the worker
//! pool, around work worth a few microseconds. Here each layer is one parallel loop over the
//! batch's rows that reads keys and values in place in the sequences' caches.
//!
//! A row's result depends only on its own sequence: the sums run in a fixed order (16 lanes,
//! then a fixed tree), whatever the batch, the thread count or the CPU, so batching changes no
//! bits of the greedy outputs that receipts hash.

use std::ops::Range;

use candle_core::Result;

use crate::ops::{dot, softmax_in_place};

/// The attention heads of a layer.
#[derive(Clone, Copy, Debug)]
pub struct Heads {
    pub query: usize,
    pub kv: usize,
    pub dim: usize,
    /// Sliding-window width of this layer; `None` attends to every earlier position.
    pub window: Option<usize>,
}

/// One layer of one sequence's key/value cache: `kv × capacity × dim` each, filled up to the
/// sequence's length. Allocated once for the sequence's whole length.
pub struct LayerKv {
    keys: Vec<f32>,
    values: Vec<f32>,
    capacity: usize,
}

impl LayerKv {
    pub fn new(heads: &Heads, capacity: usize) -> Self {
        let len = heads.kv * capacity * heads.dim;
        Self { keys: vec![0.0; len], values: vec![0.0; len], capacity }
    }

    /// Stores rows `rows` of a pass's new keys and values (`kv × pass rows × dim`, rows of all
    /// sequences) at positions `at..`.
    pub fn append(&mut self, heads: &Heads, keys: &[f32], values: &[f32], rows: Range<usize>, at: usize) -> Result<()> {
        let (n, d) = (rows.len(), heads.dim);
        if at + n > self.capacity {
            candle_core::bail!("KV cache of {} positions cannot take {n} more at {at}", self.capacity);
        }
        let pass_rows = keys.len() / (heads.kv * d);
        for h in 0..heads.kv {
            let src = (h * pass_rows + rows.start) * d..(h * pass_rows + rows.end) * d;
            let dst = (h * self.capacity + at) * d..(h * self.capacity + at + n) * d;
            self.keys[dst.clone()].copy_from_slice(&keys[src.clone()]);
            self.values[dst].copy_from_slice(&values[src]);
        }
        Ok(())
    }

    fn key(&self, heads: &Heads, h: usize, pos: usize) -> &[f32] {
        let at = (h * self.capacity + pos) * heads.dim;
        &self.keys[at..at + heads.dim]
    }

    fn value(&self, heads: &Heads, h: usize, pos: usize) -> &[f32] {
        let at = (h * self.capacity + pos) * heads.dim;
        &self.values[at..at + heads.dim]
    }
}

/// One sequence's part of a pass: its cache (already holding this pass's keys and values) and
/// the position of its first new row; its rows follow the previous sequence's.
pub struct Span<'a> {
    pub kv: &'a LayerKv,
    pub start: usize,
    pub rows: usize,
}

/// Attention of every new row over its own sequence's positions up to its own (and within the
/// window). `queries` is `query heads × pass rows × dim`; the result is `pass rows × (query
/// heads · dim)`. A group of `query / kv` query heads shares each key/value head.
pub fn attend(heads: &Heads, queries: &[f32], spans: &[Span<'_>]) -> Result<Vec<f32>> {
    let rows: usize = spans.iter().map(|s| s.rows).sum();
    let d = heads.dim;
    if heads.kv == 0 || heads.query % heads.kv != 0 || queries.len() != heads.query * rows * d {
        candle_core::bail!("attention: {} queries for {rows} rows of {heads:?}", queries.len());
    }
    // (span, position) of every row.
    let mut row_at = Vec::with_capacity(rows);
    for (i, s) in spans.iter().enumerate() {
        if s.start + s.rows > s.kv.capacity {
            candle_core::bail!("attention: positions up to {} in a cache of {}", s.start + s.rows, s.kv.capacity);
        }
        row_at.extend((s.start..s.start + s.rows).map(|p| (i, p)));
    }
    let group = heads.query / heads.kv;
    let scale = 1.0 / (d as f32).sqrt();
    let mut out = vec![0f32; rows * heads.query * d];
    crate::cpu::for_each_chunk(&mut out, heads.query * d, |r, out| {
        let (span, pos) = row_at[r];
        let kv = spans[span].kv;
        let first = heads.window.map_or(0, |w| (pos + 1).saturating_sub(w));
        let mut weights = vec![0f32; pos + 1 - first];
        for (h, out) in out.chunks_exact_mut(d).enumerate() {
            let q = &queries[(h * rows + r) * d..][..d];
            let kvh = h / group;
            for (w, j) in weights.iter_mut().zip(first..=pos) {
                *w = dot(q, kv.key(heads, kvh, j)) * scale;
            }
            softmax_in_place(&mut weights);
            for (w, j) in weights.iter().zip(first..=pos) {
                for (o, v) in out.iter_mut().zip(kv.value(heads, kvh, j)) {
                    *o = w.mul_add(*v, *o);
                }
            }
        }
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::values;

    /// Attention of one row written out the plain way, in f64.
    fn reference(heads: &Heads, q: &[f32], keys: &[Vec<f32>], values: &[Vec<f32>], pos: usize) -> Vec<f32> {
        let d = heads.dim;
        let group = heads.query / heads.kv;
        let first = heads.window.map_or(0, |w| (pos + 1).saturating_sub(w));
        let mut out = Vec::new();
        for h in 0..heads.query {
            let kvh = h / group;
            let scores: Vec<f64> = (first..=pos)
                .map(|j| {
                    let k = &keys[kvh][j * d..(j + 1) * d];
                    q[h * d..(h + 1) * d].iter().zip(k).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>() / (d as f64).sqrt()
                })
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            for c in 0..d {
                out.push((first..=pos).zip(&e).map(|(j, e)| e / sum * values[kvh][j * d + c] as f64).sum::<f64>() as f32);
            }
        }
        out
    }

    /// One sequence's whole keys and values (`kv` heads, `len` positions) and queries for its
    /// positions `start..len`, laid out per head as a pass lays them out.
    struct Seq {
        keys: Vec<Vec<f32>>,
        values: Vec<Vec<f32>>,
        queries: Vec<Vec<f32>>,
        start: usize,
    }

    fn seq(heads: &Heads, len: usize, start: usize, seed: u64) -> Seq {
        let d = heads.dim;
        Seq {
            keys: (0..heads.kv).map(|h| values(len * d, seed * 10 + h as u64)).collect(),
            values: (0..heads.kv).map(|h| values(len * d, seed * 10 + 5 + h as u64)).collect(),
            queries: (start..len).map(|p| values(heads.query * d, seed * 1000 + p as u64)).collect(),
            start,
        }
    }

    /// Runs `seqs` as one pass: earlier positions are already cached, the rest arrive as the
    /// pass's new rows. Returns every row's output.
    fn run(heads: &Heads, seqs: &[Seq]) -> Vec<Vec<f32>> {
        let d = heads.dim;
        let rows: usize = seqs.iter().map(|s| s.queries.len()).sum();
        let (mut new_k, mut new_v, mut q) = (vec![0f32; heads.kv * rows * d], vec![0f32; heads.kv * rows * d], vec![0f32; heads.query * rows * d]);
        let mut caches = Vec::new();
        let mut r0 = 0;
        for s in seqs {
            let len = s.start + s.queries.len();
            let mut kv = LayerKv::new(heads, len + 3);
            // The cached part, as an earlier pass of this sequence alone would have stored it.
            let (old_k, old_v): (Vec<f32>, Vec<f32>) = (
                s.keys.iter().flat_map(|k| k[..s.start * d].to_vec()).collect(),
                s.values.iter().flat_map(|v| v[..s.start * d].to_vec()).collect(),
            );
            kv.append(heads, &old_k, &old_v, 0..s.start, 0).unwrap();
            for (i, p) in (s.start..len).enumerate() {
                for h in 0..heads.kv {
                    new_k[(h * rows + r0 + i) * d..][..d].copy_from_slice(&s.keys[h][p * d..(p + 1) * d]);
                    new_v[(h * rows + r0 + i) * d..][..d].copy_from_slice(&s.values[h][p * d..(p + 1) * d]);
                }
                for h in 0..heads.query {
                    q[(h * rows + r0 + i) * d..][..d].copy_from_slice(&s.queries[i][h * d..(h + 1) * d]);
                }
            }
            caches.push((kv, r0));
            r0 += s.queries.len();
        }
        for ((kv, r0), s) in caches.iter_mut().zip(seqs) {
            kv.append(heads, &new_k, &new_v, *r0..*r0 + s.queries.len(), s.start).unwrap();
        }
        let spans: Vec<Span<'_>> = caches.iter().zip(seqs).map(|((kv, _), s)| Span { kv, start: s.start, rows: s.queries.len() }).collect();
        let out = attend(heads, &q, &spans).unwrap();
        out.chunks(heads.query * d).map(|c| c.to_vec()).collect()
    }

    #[test]
    fn every_row_attends_causally_within_its_window_and_its_own_sequence() {
        for window in [None, Some(4)] {
            // 70 = 4·16 + 6: the dot products' lane remainder is exercised too.
            let heads = Heads { query: 4, kv: 2, dim: 70, window };
            // A prompt from empty, a second prompt chunk, one decoding row past the window.
            let seqs = [seq(&heads, 7, 0, 1), seq(&heads, 9, 5, 2), seq(&heads, 12, 11, 3)];
            let out = run(&heads, &seqs);
            let mut r = 0;
            for s in &seqs {
                for (i, q) in s.queries.iter().enumerate() {
                    let want = reference(&heads, q, &s.keys, &s.values, s.start + i);
                    let diff = out[r].iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                    assert!(diff < 1e-5, "window {window:?}, row {r}: off by {diff}");
                    r += 1;
                }
            }
        }
    }

    #[test]
    fn a_rows_bits_do_not_depend_on_the_rest_of_the_batch() {
        let heads = Heads { query: 4, kv: 1, dim: 64, window: Some(6) };
        let seqs = [seq(&heads, 10, 9, 1), seq(&heads, 30, 0, 2), seq(&heads, 8, 7, 3)];
        let together = run(&heads, &seqs);
        let mut r = 0;
        for s in seqs {
            let n = s.queries.len();
            assert_eq!(run(&heads, std::slice::from_ref(&s)), together[r..r + n]);
            r += n;
        }
    }

    #[test]
    fn a_pass_past_the_cache_capacity_is_an_error() {
        let heads = Heads { query: 1, kv: 1, dim: 4, window: None };
        let mut kv = LayerKv::new(&heads, 2);
        assert!(kv.append(&heads, &[0.0; 12], &[0.0; 12], 0..3, 0).is_err());
        assert!(kv.append(&heads, &[0.0; 8], &[0.0; 8], 0..2, 1).is_err());
        kv.append(&heads, &[0.0; 8], &[0.0; 8], 0..2, 0).unwrap();
    }
}

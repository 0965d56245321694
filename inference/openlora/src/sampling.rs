//! Choosing the next token: greedy, or temperature / top-p from a seeded generator.

use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Debug, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy: the same request always yields the same tokens.
    pub temperature: f32,
    pub top_p: f32,
    /// Makes sampled output reproducible; `None` draws a fresh seed.
    pub seed: Option<u64>,
}

impl SamplingParams {
    pub fn greedy() -> Self {
        Self { temperature: 0.0, top_p: 1.0, seed: None }
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }
}

pub struct Sampler {
    params: SamplingParams,
    rng: ChaCha8Rng,
}

/// How many of the most likely tokens top-p looks at before falling back to a full sort.
const TOP_P_CANDIDATES: usize = 256;

impl Sampler {
    pub fn new(params: SamplingParams) -> Self {
        let rng = match params.seed {
            Some(s) => ChaCha8Rng::seed_from_u64(s),
            None => ChaCha8Rng::from_os_rng(),
        };
        Self { params, rng }
    }

    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.params.is_greedy() {
            return argmax(logits);
        }
        let t = self.params.temperature;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut probs: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, ((l - max) / t).exp()))
            .collect();
        let total: f32 = probs.iter().map(|p| p.1).sum();
        if self.params.top_p < 1.0 {
            let by_prob = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
            // The nucleus is almost always within the few hundred most likely tokens: select
            // those in linear time and sort only them.
            if probs.len() > TOP_P_CANDIDATES {
                probs.select_nth_unstable_by(TOP_P_CANDIDATES, by_prob);
                let head: f32 = probs[..TOP_P_CANDIDATES].iter().map(|p| p.1).sum();
                if head / total >= self.params.top_p {
                    probs.truncate(TOP_P_CANDIDATES);
                }
            }
            probs.sort_unstable_by(by_prob);
            let mut acc = 0.0;
            let mut keep = probs.len();
            for (i, p) in probs.iter().enumerate() {
                acc += p.1 / total;
                if acc >= self.params.top_p {
                    keep = i + 1;
                    break;
                }
            }
            probs.truncate(keep);
        }
        let mass: f32 = probs.iter().map(|p| p.1).sum();
        let mut r = self.rng.random::<f32>() * mass;
        for &(id, p) in &probs {
            if r < p {
                return id;
            }
            r -= p;
        }
        probs.last().map(|p| p.0).unwrap_or(0)
    }
}

/// The first index of the largest value, so ties resolve the same way everywhere. Lane-wise
/// maxima first (which the compiler vectorizes), then the first index holding the maximum.
pub fn argmax(xs: &[f32]) -> u32 {
    let mut lanes = [f32::NEG_INFINITY; 16];
    let whole = xs.len() / 16 * 16;
    for chunk in xs[..whole].chunks_exact(16) {
        for (m, &x) in lanes.iter_mut().zip(chunk) {
            *m = if x > *m { x } else { *m };
        }
    }
    let max = lanes.iter().chain(&xs[whole..]).fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    xs.iter().position(|&x| x == max).unwrap_or(0) as u32
}

/// The next token of every row of `logits` (one row of the vocabulary per sampler, row-major),
/// rows drawn in parallel on candle's worker pool: each sampler draws only its own row, so the
/// result is the same as drawing them one by one.
pub fn sample_rows(samplers: Vec<&mut Sampler>, logits: &[f32]) -> Vec<u32> {
    let vocab = logits.len() / samplers.len().max(1);
    let cells: Vec<Mutex<(&mut Sampler, u32)>> = samplers.into_iter().map(|s| Mutex::new((s, 0))).collect();
    candle_core::utils::barrier_pool().execute_chunked(cells.len(), |range| {
        for i in range {
            // Uncontended: the pool hands each row to one worker.
            let mut cell = cells[i].lock().unwrap_or_else(|e| e.into_inner());
            cell.1 = cell.0.sample(&logits[i * vocab..(i + 1) * vocab]);
        }
    });
    cells.into_iter().map(|c| c.into_inner().unwrap_or_else(|e| e.into_inner()).1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_maximum() {
        let mut s = Sampler::new(SamplingParams::greedy());
        assert_eq!(s.sample(&[0.1, 3.0, -1.0, 3.0]), 1);
    }

    #[test]
    fn argmax_takes_the_first_maximum_past_every_lane() {
        for len in [1, 15, 16, 17, 40, 1000] {
            for at in [0, len / 3, len - 1] {
                let mut xs: Vec<f32> = (0..len).map(|i| -((i * 37 % 11) as f32)).collect();
                xs[at] = 5.0;
                if at + 16 < len {
                    xs[at + 16] = 5.0; // the same lane, later
                }
                if at + 1 < len {
                    xs[len - 1] = 5.0; // another lane, later
                }
                assert_eq!(argmax(&xs), at as u32, "len {len}, maximum at {at}");
            }
        }
        assert_eq!(argmax(&[f32::NEG_INFINITY; 3]), 0);
    }

    #[test]
    fn rows_sampled_together_equal_rows_sampled_one_by_one() {
        let vocab = 500;
        let logits: Vec<f32> = (0..6 * vocab).map(|i| ((i * 7919) % 1000) as f32 / 100.0).collect();
        let params = |i: u64| match i % 2 {
            0 => SamplingParams::greedy(),
            _ => SamplingParams { temperature: 0.8, top_p: 0.9, seed: Some(i) },
        };
        let mut together: Vec<Sampler> = (0..6).map(|i| Sampler::new(params(i))).collect();
        let mut alone: Vec<Sampler> = (0..6).map(|i| Sampler::new(params(i))).collect();
        for _ in 0..5 {
            let got = sample_rows(together.iter_mut().collect(), &logits);
            let want: Vec<u32> = alone.iter_mut().zip(logits.chunks(vocab)).map(|(s, l)| s.sample(l)).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn a_seed_reproduces_the_draws() {
        let logits: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1000) as f32 / 100.0).collect();
        let params = SamplingParams { temperature: 1.0, top_p: 0.9, seed: Some(42) };
        let draw = |p: &SamplingParams| {
            let mut s = Sampler::new(p.clone());
            (0..50).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(draw(&params), draw(&params));
        assert_ne!(draw(&params), draw(&SamplingParams { seed: Some(43), ..params.clone() }));
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        // One token holds ~79% of the mass; with top_p 0.5 nothing else may be drawn.
        let mut logits = vec![0.0f32; 300];
        logits[123] = 7.0;
        let mut s = Sampler::new(SamplingParams { temperature: 1.0, top_p: 0.5, seed: Some(1) });
        assert!((0..200).all(|_| s.sample(&logits) == 123));
        let mut s = Sampler::new(SamplingParams { temperature: 1.0, top_p: 1.0, seed: Some(1) });
        assert!((0..200).any(|_| s.sample(&logits) != 123));
    }
}

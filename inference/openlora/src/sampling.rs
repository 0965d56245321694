//! Choosing the next token: greedy, or temperature / top-p from a seeded generator.

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

/// The first index of the largest value, so ties resolve the same way everywhere.
pub fn argmax(xs: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best as u32
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

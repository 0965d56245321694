//! Turning raw influence scores into payable weights: integers in parts per million that sum to
//! exactly 1,000,000.
//!
//! Both methods end here, so that the rounding rule (which the chain's fee split relies on) is
//! written once: keep the `top_k` highest positive scores (ties: lower contribution id first),
//! give each `floor(1e6 · score / total)`, then hand the few ppm left by rounding down, one each,
//! to the largest remainders (ties: lower id first). Pure integer arithmetic, so every machine
//! gets the same weights.

use serde::{Deserialize, Serialize};

pub type ContributionId = u64;

pub const PPM: u32 = 1_000_000;

/// One contribution's share of an output's attribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weight {
    pub contribution: ContributionId,
    pub ppm: u32,
}

/// Weights for the positive scores, best first; empty when no score is positive ("no
/// attribution"). Scores of the same contribution must already be summed.
pub fn to_ppm(scores: &[(ContributionId, u128)], top_k: usize) -> Vec<Weight> {
    let mut kept: Vec<(ContributionId, u128)> =
        scores.iter().copied().filter(|&(_, s)| s > 0).collect();
    kept.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    kept.truncate(top_k);
    // Drop low bits until `total · 1e6` fits in u128; the proportions barely move.
    let fits = |k: &[(ContributionId, u128)]| {
        k.iter().try_fold(0u128, |t, &(_, s)| t.checked_add(s)).and_then(|t| t.checked_mul(PPM as u128))
    };
    while fits(&kept).is_none() {
        kept.iter_mut().for_each(|(_, s)| *s >>= 1);
    }
    let total: u128 = kept.iter().map(|&(_, s)| s).sum();
    if total == 0 {
        return Vec::new();
    }
    let mut shares: Vec<(ContributionId, u32, u128)> = kept
        .iter()
        .map(|&(id, s)| {
            let scaled = s * PPM as u128;
            (id, (scaled / total) as u32, scaled % total)
        })
        .collect();
    let assigned: u32 = shares.iter().map(|s| s.1).sum();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| shares[b].2.cmp(&shares[a].2).then(shares[a].0.cmp(&shares[b].0)));
    // Rounding down loses less than one ppm per share, so at most `len` are left to hand out.
    for &i in order.iter().take((PPM - assigned) as usize) {
        shares[i].1 += 1;
    }
    let mut weights: Vec<Weight> =
        shares.into_iter().map(|(contribution, ppm, _)| Weight { contribution, ppm }).collect();
    weights.sort_by(|a, b| b.ppm.cmp(&a.ppm).then(a.contribution.cmp(&b.contribution)));
    weights.retain(|w| w.ppm > 0);
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(w: &[Weight]) -> u32 {
        w.iter().map(|w| w.ppm).sum()
    }

    #[test]
    fn thirds_sum_to_a_million_and_the_remainder_goes_to_the_lowest_id() {
        let w = to_ppm(&[(7, 1), (3, 1), (5, 1)], 10);
        assert_eq!(sum(&w), PPM);
        assert_eq!(w[0], Weight { contribution: 3, ppm: 333_334 });
        assert_eq!(w[1].ppm, 333_333);
        assert_eq!(w[2].ppm, 333_333);
    }

    #[test]
    fn only_positive_scores_and_top_k_are_paid() {
        let w = to_ppm(&[(1, 0), (2, 30), (3, 10), (4, 60)], 2);
        assert_eq!(w, vec![Weight { contribution: 4, ppm: 666_667 }, Weight { contribution: 2, ppm: 333_333 }]);
        assert!(to_ppm(&[(1, 0)], 5).is_empty(), "no positive score: no attribution");
    }

    #[test]
    fn many_tiny_shares_still_sum_exactly() {
        let scores: Vec<_> = (0..997u64).map(|i| (i, 1 + (i as u128 * 7919) % 13)).collect();
        let w = to_ppm(&scores, 997);
        assert_eq!(sum(&w), PPM);
        let huge = to_ppm(&[(1, u128::MAX / 4), (2, u128::MAX / 4)], 2);
        assert_eq!(sum(&huge), PPM);
    }
}

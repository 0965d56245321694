//! Pattern search in one shard's suffix array.
//!
//! The suffixes starting with a pattern form one contiguous range of the suffix array, found by
//! binary search. Within the range of a pattern `p`, the suffixes are sorted by their token after
//! `p`, so the range of `p` extended by one token is a binary search inside it that compares that
//! one token: matching statistics never scan a range.

use std::cmp::Ordering;
use std::ops::Range;

use crate::ppm::ContributionId;

/// Tokens as the index stores them: token + 1, so that no query token equals the 0 document
/// separator. Ids too large for any vocabulary saturate, and match nothing either.
pub(super) fn encode(tokens: &[u32]) -> Vec<u32> {
    tokens.iter().map(|t| t.saturating_add(1)).collect()
}

/// The longest match of a query suffix: `len` tokens, found at the suffixes `range`.
pub(super) struct Match {
    pub len: usize,
    pub range: Range<usize>,
}

/// A mapped shard. Positions read from `sa` are not trusted (a corrupt file must not panic a
/// query): text beyond the end reads as a separator.
pub(super) struct View<'a> {
    pub text: &'a [u32],
    pub sa: &'a [u32],
    pub docs: &'a [[u64; 2]],
}

impl View<'_> {
    /// The suffixes starting with `pattern` (encoded).
    pub fn find(&self, pattern: &[u32]) -> Range<usize> {
        self.narrow(0..self.sa.len(), pattern, 0)
    }

    /// For each start `i` of `query` (encoded), the longest prefix of `query[i..]` in this shard.
    ///
    /// Uses `L(i+1) ≥ L(i) − 1`: the match at `i` minus its first token is known to occur, so it
    /// is located directly, then extended one token at a time. Extensions and failed extensions
    /// add up to at most `2 · query.len()` narrowing steps.
    pub fn matching_statistics(&self, query: &[u32]) -> Vec<Match> {
        let all = 0..self.sa.len();
        let mut stats = Vec::with_capacity(query.len());
        let mut len = 0;
        for i in 0..query.len() {
            let mut range = if len > 1 {
                len -= 1;
                self.narrow(all.clone(), &query[i..i + len], 0)
            } else {
                len = 0;
                all.clone()
            };
            while i + len < query.len() {
                let next = self.narrow(range.clone(), &query[i..=i + len], len);
                if next.is_empty() {
                    break;
                }
                range = next;
                len += 1;
            }
            stats.push(Match { len, range });
        }
        stats
    }

    /// The contribution of each suffix in `range` (suffixes are positions in the text, and
    /// `docs` lists the documents by start position).
    pub fn contributions(&self, range: Range<usize>) -> impl Iterator<Item = ContributionId> + '_ {
        self.sa[range].iter().filter_map(|&pos| {
            let doc = self.docs.partition_point(|d| d[0] <= u64::from(pos));
            doc.checked_sub(1).map(|d| self.docs[d][1])
        })
    }

    /// The sub-range of `range` whose suffixes start with `pattern`, given that all suffixes in
    /// `range` start with `pattern[..known]`.
    ///
    /// Two binary searches (first suffix not below the pattern, first above it). Each keeps the
    /// common prefix length of the pattern with the suffixes bounding the search: every suffix in
    /// between shares the shorter of the two, so comparisons start there.
    fn narrow(&self, range: Range<usize>, pattern: &[u32], known: usize) -> Range<usize> {
        let (mut lo, mut hi) = (range.start, range.end);
        let (mut lcp_lo, mut lcp_hi) = (known, known);
        // The first suffix seen above the pattern bounds the second search.
        let (mut end, mut lcp_end) = (range.end, known);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (ord, lcp) = self.compare(mid, pattern, lcp_lo.min(lcp_hi));
            match ord {
                Ordering::Less => (lo, lcp_lo) = (mid + 1, lcp),
                Ordering::Equal => (hi, lcp_hi) = (mid, lcp),
                Ordering::Greater => (hi, lcp_hi, end, lcp_end) = (mid, lcp, mid, lcp),
            }
        }
        let start = lo;
        // `start` was compared and is not below the pattern; it matches unless it is `end`.
        if start == end {
            return start..start;
        }
        let (mut lo, mut hi) = (start + 1, end);
        let (mut lcp_lo, mut lcp_hi) = (pattern.len(), lcp_end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (ord, lcp) = self.compare(mid, pattern, lcp_lo.min(lcp_hi));
            if ord == Ordering::Greater {
                (hi, lcp_hi) = (mid, lcp);
            } else {
                (lo, lcp_lo) = (mid + 1, lcp);
            }
        }
        start..lo
    }

    /// Compares the first `pattern.len()` tokens of suffix `k` with `pattern`, from token `from`
    /// on (the ones before are known equal). Returns the order and the common prefix length.
    fn compare(&self, k: usize, pattern: &[u32], from: usize) -> (Ordering, usize) {
        let pos = self.sa[k] as usize;
        for (j, &p) in pattern.iter().enumerate().skip(from) {
            let t = self.text.get(pos + j).copied().unwrap_or(0);
            if t != p {
                return (t.cmp(&p), j);
            }
        }
        (Ordering::Equal, pattern.len())
    }
}

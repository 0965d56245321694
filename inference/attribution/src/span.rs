//! Span attribution, infini-gram style: the stretches of an output that occur verbatim in the
//! contributions an adapter was trained on, and which contributions they occur in.
//!
//! The index is a suffix array over the tokenized contributions, one shard per batch of documents
//! (normally one datanet version: adding a version adds a shard and leaves the others untouched).
//! For every start `i` of the output, the matching statistics `L_i` are the length of the longest
//! prefix of `output[i..]` that occurs in some shard. A *maximal span* is a start with
//! `L_i ≥ n` (`n` = [`SpanParams::min_len`]) that is not contained in the span starting one token
//! earlier (`i + L_i > i − 1 + L_{i−1}`). Matches never cross documents: each document ends with a
//! separator no output token equals.
//!
//! # Scoring
//!
//! Integer arithmetic only, so that every machine pays the same weights:
//!
//! ```text
//! D        = documents in the index (all shards)
//! c        = occurrences of the span in the index (all shards)
//! occ_k    = occurrences of the span in the documents of contribution k
//! df       = number of contributions with occ_k > 0
//! idf      = log2(D + 1) − log2(df)                  fixed point, 32 fractional bits, each log2
//!                                                    rounded down by an exact integer algorithm
//! W        = (L − n + 1) · idf                       L = the span's length
//! score_k  = Σ over spans with c ≤ max_occurrences of ⌊W · occ_k / c⌋      (u128)
//! weights  = ppm::to_ppm(score, top_k)
//! ```
//!
//! Longer spans weigh more, linearly in the tokens beyond the minimum; rarer spans weigh more, by
//! their inverse document frequency, so a phrase found in every document weighs almost nothing.
//! A span found more than `max_occurrences` times is a common phrase: it is reported, with no
//! contributions, and weighs nothing (this also bounds the work per span).

mod disk;
mod search;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hash::{blake2_256, hex32, Hash256};
use crate::ppm::{to_ppm, ContributionId, Weight};
use disk::{Manifest, Shard};

pub use disk::{FileInfo, ShardFiles, ShardInfo};

/// What a shard was built from: a datanet version (whose Merkle root over the accepted
/// contributions the chain records), or, with no ids, a local folder of files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cover {
    pub datanet_id: Option<u32>,
    pub version: Option<u32>,
    #[serde(with = "crate::hash::serde_hex")]
    pub merkle_root: Hash256,
}

impl fmt::Display for Cover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.datanet_id, self.version) {
            (Some(d), Some(v)) => write!(f, "datanet {d} version {v}")?,
            (None, None) => write!(f, "local files")?,
            (d, v) => write!(f, "datanet {d:?} version {v:?}")?,
        }
        write!(f, " (merkle root {})", hex32(&self.merkle_root))
    }
}

/// One tokenized training document and the contribution it belongs to (a contribution may span
/// several documents; its occurrences are then summed).
#[derive(Clone, Copy, Debug)]
pub struct Document<'a> {
    pub contribution: ContributionId,
    pub tokens: &'a [u32],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanParams {
    /// `n`: the shortest span that counts (0 is taken as 1). Short n-grams recur by chance in
    /// any large corpus; six tokens rarely do.
    pub min_len: usize,
    /// Spans found more often than this are common phrases and weigh nothing.
    pub max_occurrences: u64,
    /// How many contributions are paid, at most (see [`to_ppm`]).
    pub top_k: usize,
}

impl Default for SpanParams {
    fn default() -> Self {
        Self { min_len: 6, max_occurrences: 1000, top_k: 32 }
    }
}

/// A maximal span of the output found in the index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Offset of the span's first token in the output.
    pub start: usize,
    pub len: usize,
    /// Occurrences in the whole index.
    pub occurrences: u64,
    /// `(contribution, occurrences)`, by contribution id; empty for a common phrase (more than
    /// [`SpanParams::max_occurrences`] occurrences).
    pub contributions: Vec<(ContributionId, u64)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanAttribution {
    /// Maximal spans, by start.
    pub spans: Vec<Span>,
    /// Empty when no span weighs anything ("no attribution").
    pub weights: Vec<Weight>,
}

/// Where [`SpanIndex::add_shard`] is, for progress reports on large shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildStage {
    /// Documents read and checked so far.
    Reading { tokens: u64 },
    /// Building the suffix array (one call, no finer progress).
    Sorting { positions: u64 },
    /// Writing and hashing the shard's files.
    Writing,
}

#[derive(Debug, thiserror::Error)]
pub enum SpanError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: missing", path.display())]
    Missing { path: PathBuf },
    #[error("{} already holds a span index", path.display())]
    Exists { path: PathBuf },
    #[error("{}: not a span index manifest: {source}", path.display())]
    Manifest { path: PathBuf, source: serde_json::Error },
    #[error("{}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{}: {found} bytes, expected {expected}", path.display())]
    Length { path: PathBuf, found: u64, expected: u64 },
    #[error("{}: blake2-256 is {}, the manifest records {}", path.display(), hex32(found), hex32(expected))]
    HashMismatch { path: PathBuf, found: Hash256, expected: Hash256 },
    #[error("the index was built with tokenizer {found:?}, not {expected:?}")]
    TokenizerMismatch { found: String, expected: String },
    #[error("the index covers other data than expected: missing [{}], unexpected [{}]", list(missing), list(unexpected))]
    CoversMismatch { missing: Vec<Cover>, unexpected: Vec<Cover> },
    #[error("the index already has a shard for {0}")]
    DuplicateCover(Cover),
    #[error("document {document} (contribution {contribution}): token {token} at offset {offset} is not below the vocabulary size {vocab_size}")]
    TokenOutOfVocab { document: u64, contribution: ContributionId, offset: usize, token: u32, vocab_size: u32 },
    #[error("the index has no shard for {0}")]
    NoSuchCover(Cover),
    #[error("shard too big: document {document} brings it to {positions} positions (tokens + one separator per document), a shard holds at most {}", i32::MAX)]
    ShardTooBig { document: u64, positions: u64 },
    #[error("suffix array construction failed: {0}")]
    SuffixArray(libsais::LibsaisError),
}

fn list(covers: &[Cover]) -> String {
    covers.iter().map(Cover::to_string).collect::<Vec<_>>().join(", ")
}

pub type Result<T, E = SpanError> = std::result::Result<T, E>;

/// Token ids a shard can hold are below this: the suffix array sorts `id + 1` as an i32.
pub const MAX_VOCAB: u32 = i32::MAX as u32 - 1;

/// A span index on disk: a directory of shards and the `index.json` manifest that lists them.
/// Shard files are memory-mapped, so opening is cheap whatever the index size, and queries touch
/// only the pages their binary searches visit.
pub struct SpanIndex {
    dir: PathBuf,
    manifest: Manifest,
    shards: Vec<Shard>,
}

impl SpanIndex {
    /// An empty index in `dir` (created if needed) for token ids of `tokenizer`, an identity the
    /// caller chooses (for instance the hash of the base model's tokenizer file). Refuses a
    /// directory that already holds an index.
    pub fn create(dir: impl AsRef<Path>, tokenizer: &str) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let manifest = Manifest::new(tokenizer);
        manifest.create(&dir)?;
        Ok(Self { dir, manifest, shards: Vec::new() })
    }

    /// The index in `dir`, if it was built for `tokenizer` and covers exactly the `expected` data
    /// (in any order): attributing against other data would silently pay the wrong contributors.
    pub fn open(dir: impl AsRef<Path>, tokenizer: &str, expected: &[Cover]) -> Result<Self> {
        let index = Self::open_any(dir)?;
        if index.manifest.tokenizer != tokenizer {
            return Err(SpanError::TokenizerMismatch {
                found: index.manifest.tokenizer.clone(),
                expected: tokenizer.to_owned(),
            });
        }
        let have = index.covers();
        let missing: Vec<Cover> = expected.iter().filter(|c| !have.contains(c)).copied().collect();
        let unexpected: Vec<Cover> = have.iter().filter(|c| !expected.contains(c)).copied().collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(SpanError::CoversMismatch { missing, unexpected });
        }
        Ok(index)
    }

    /// The index in `dir`, whatever it covers: for tools that inspect an index or add the shards
    /// it lacks.
    pub fn open_any(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let manifest = Manifest::read(&dir)?;
        let shards = manifest.shards.iter().map(|info| Shard::open(&dir, info)).collect::<Result<_>>()?;
        Ok(Self { dir, manifest, shards })
    }

    /// Indexes `docs` as a new shard for `cover`: builds its suffix array in memory (about 8 bytes
    /// per token), writes its files, then records it in the manifest, so an interrupted build
    /// leaves the index as it was. Token ids must be below `vocab_size` (and
    /// [`MAX_VOCAB`]); a token that is not is an error, not a silently unmatchable document.
    pub fn add_shard<'d>(
        &mut self,
        cover: Cover,
        docs: impl IntoIterator<Item = Document<'d>>,
        vocab_size: u32,
        progress: impl FnMut(BuildStage),
    ) -> Result<ShardInfo> {
        let name = self.next_shard_name(&cover)?;
        let info = disk::build_shard(&self.dir, &name, cover, docs, vocab_size, progress)?;
        self.record(info)
    }

    /// Copies `from`'s shard for `cover` into this index, checking its files against their
    /// recorded hashes on the way: a datanet version indexed once is reused by every later
    /// adapter trained on it, without rebuilding its suffix array.
    pub fn import_shard(&mut self, from: &SpanIndex, cover: &Cover) -> Result<ShardInfo> {
        if from.manifest.tokenizer != self.manifest.tokenizer {
            return Err(SpanError::TokenizerMismatch {
                found: from.manifest.tokenizer.clone(),
                expected: self.manifest.tokenizer.clone(),
            });
        }
        let source = from.manifest.shards.iter().find(|s| s.cover == *cover).ok_or(SpanError::NoSuchCover(*cover))?;
        let name = self.next_shard_name(cover)?;
        let info = disk::copy_shard(&from.dir, source, &self.dir, &name)?;
        self.record(info)
    }

    /// The directory for a new shard for `cover`, which must not be in the index yet. A leftover
    /// of an interrupted build may be there: its files are replaced.
    fn next_shard_name(&self, cover: &Cover) -> Result<String> {
        if self.manifest.shards.iter().any(|s| s.cover == *cover) {
            return Err(SpanError::DuplicateCover(*cover));
        }
        Ok(format!("shard-{}", self.manifest.shards.len()))
    }

    /// Maps a newly written shard and lists it in the manifest.
    fn record(&mut self, info: ShardInfo) -> Result<ShardInfo> {
        let shard = Shard::open(&self.dir, &info)?;
        let mut manifest = self.manifest.clone();
        manifest.shards.push(info.clone());
        manifest.write(&self.dir)?;
        self.manifest = manifest;
        self.shards.push(shard);
        Ok(info)
    }

    pub fn tokenizer(&self) -> &str {
        &self.manifest.tokenizer
    }

    /// The shards, in the order they were added.
    pub fn shards(&self) -> &[ShardInfo] {
        &self.manifest.shards
    }

    pub fn covers(&self) -> Vec<Cover> {
        self.manifest.shards.iter().map(|s| s.cover).collect()
    }

    /// Document tokens in the index (separators not counted).
    pub fn tokens(&self) -> u64 {
        self.manifest.shards.iter().map(|s| s.tokens).sum()
    }

    pub fn documents(&self) -> u64 {
        self.manifest.shards.iter().map(|s| s.documents).sum()
    }

    /// The identity of the index content, which attribution records carry: blake2-256 of
    /// `"openledger/span-index/1"`, the tokenizer (u64 length, then UTF-8), the number of shards
    /// (u64), then per shard in manifest order its cover (datanet id and version each as a 0 byte,
    /// or a 1 byte and the u32; then the Merkle root), tokens (u64), documents (u64) and the
    /// blake2-256 of `tokens.bin`, `sa.bin` and `docs.bin`. Integers little-endian. Directory and
    /// file names are not part of it, so a copy of the index has the same root.
    pub fn root(&self) -> Hash256 {
        let mut b = b"openledger/span-index/1".to_vec();
        b.extend((self.manifest.tokenizer.len() as u64).to_le_bytes());
        b.extend(self.manifest.tokenizer.as_bytes());
        b.extend((self.manifest.shards.len() as u64).to_le_bytes());
        for s in &self.manifest.shards {
            for id in [s.cover.datanet_id, s.cover.version] {
                match id {
                    None => b.push(0),
                    Some(id) => {
                        b.push(1);
                        b.extend(id.to_le_bytes());
                    }
                }
            }
            b.extend(s.cover.merkle_root);
            b.extend(s.tokens.to_le_bytes());
            b.extend(s.documents.to_le_bytes());
            for f in [&s.files.tokens, &s.files.sa, &s.files.docs] {
                b.extend(f.blake2_256);
            }
        }
        blake2_256(&b)
    }

    /// Hashes every shard file and compares with the manifest. Reads the whole index (seconds per
    /// GB), which is why opening does not.
    pub fn verify_files(&self) -> Result<()> {
        self.manifest.shards.iter().try_for_each(|info| disk::verify(&self.dir, info))
    }

    /// Occurrences of `pattern` in the index (0 for an empty pattern).
    pub fn count(&self, pattern: &[u32]) -> u64 {
        if pattern.is_empty() {
            return 0;
        }
        let pattern = search::encode(pattern);
        self.shards.iter().map(|s| s.view().find(&pattern).len() as u64).sum()
    }

    /// The output's maximal spans found in the index and the contributions' weights for them (see
    /// the module documentation for the formula).
    pub fn attribute(&self, output: &[u32], params: &SpanParams) -> SpanAttribution {
        let query = search::encode(output);
        let views: Vec<_> = self.shards.iter().map(Shard::view).collect();
        let stats: Vec<_> = views.iter().map(|v| v.matching_statistics(&query)).collect();
        let min_len = params.min_len.max(1);
        let log2_docs = log2_fixed(self.documents() + 1);

        let mut spans = Vec::new();
        let mut scores: BTreeMap<ContributionId, u128> = BTreeMap::new();
        let mut prev_end = 0;
        for start in 0..query.len() {
            let len = stats.iter().map(|s| s[start].len).max().unwrap_or(0);
            let end = start + len;
            let maximal = len >= min_len && end > prev_end;
            prev_end = end;
            if !maximal {
                continue;
            }
            // Shards whose longest match here is shorter do not contain the span.
            let ranges: Vec<_> = views
                .iter()
                .zip(&stats)
                .filter(|(_, s)| s[start].len == len)
                .map(|(v, s)| (v, s[start].range.clone()))
                .collect();
            let occurrences: u64 = ranges.iter().map(|(_, r)| r.len() as u64).sum();
            let mut span = Span { start, len, occurrences, contributions: Vec::new() };
            if occurrences <= params.max_occurrences {
                let mut ids: Vec<ContributionId> =
                    ranges.iter().flat_map(|(v, r)| v.contributions(r.clone())).collect();
                ids.sort_unstable();
                for id in ids {
                    match span.contributions.last_mut() {
                        Some((last, n)) if *last == id => *n += 1,
                        _ => span.contributions.push((id, 1)),
                    }
                }
                let df = span.contributions.len() as u64;
                let idf = log2_docs.saturating_sub(log2_fixed(df));
                let weight = (len - min_len + 1) as u128 * idf as u128;
                for &(id, occ) in &span.contributions {
                    *scores.entry(id).or_default() += weight * occ as u128 / occurrences as u128;
                }
            }
            spans.push(span);
        }
        let scores: Vec<_> = scores.into_iter().collect();
        SpanAttribution { spans, weights: to_ppm(&scores, params.top_k) }
    }
}

/// `log2(x)` in fixed point with 32 fractional bits (`x ≥ 1`; 0 gives 0), never above the exact
/// value. The integer part is the position of the leading one; each fractional bit comes from
/// squaring the mantissa (in `[1, 2)`, 63 fractional bits in a u128, truncated):
/// `log2(m²) = 2·log2(m)`, so the square reaching 2 means the next bit is 1. Integer steps only,
/// hence the same on every machine.
fn log2_fixed(x: u64) -> u64 {
    if x == 0 {
        return 0;
    }
    let int = 63 - u64::from(x.leading_zeros());
    let mut m = u128::from(x) << (63 - int);
    let mut frac = 0u64;
    for bit in (0..32).rev() {
        // m < 2^64, so m² < 2^128.
        m = (m * m) >> 63;
        if m >> 64 != 0 {
            m >>= 1;
            frac |= 1 << bit;
        }
    }
    (int << 32) | frac
}

#[cfg(test)]
mod tests {
    use super::log2_fixed;

    const ONE: f64 = (1u64 << 32) as f64;

    #[test]
    fn log2_fixed_matches_known_values() {
        assert_eq!(log2_fixed(1), 0);
        assert_eq!(log2_fixed(2), 1 << 32);
        assert_eq!(log2_fixed(1 << 40), 40 << 32);
        assert_eq!(log2_fixed(u64::MAX) >> 32, 63);
        for x in [3u64, 5, 7, 10, 1000, 123_456_789, u64::MAX / 3, u64::MAX] {
            let exact = (x as f64).log2();
            let got = log2_fixed(x) as f64 / ONE;
            assert!((got - exact).abs() <= 1e-9 * exact, "log2({x}) = {got}, expected {exact}");
        }
    }

    #[test]
    fn log2_fixed_is_monotonic() {
        let mut prev = 0;
        for x in (1..200_000u64).chain((0..2000).map(|i| (1u64 << 40) + i * 977)) {
            let y = log2_fixed(x);
            assert!(y >= prev, "log2({x}) decreased");
            prev = y;
        }
        assert!(log2_fixed(3) > log2_fixed(2) && log2_fixed(1_000_001) > log2_fixed(1_000_000));
    }
}

//! The attribution record: everything needed to recompute an output's attribution, the result,
//! and the hash a receipt signs.
//!
//! The hash is blake2-256 over [`AttributionRecord::canonical_bytes`], a fixed little-endian
//! layout (no JSON, whose key order and number formatting vary between libraries). The JSON
//! form is for people and HTTP; two records are the same record exactly when their hashes are.

use serde::{Deserialize, Serialize};

use crate::hash::{blake2_256, Hash256};
use crate::ppm::Weight;
use crate::span::SpanParams;

/// Domain separation: a record hash can never collide with another kind of hash.
const DOMAIN: &[u8] = b"openledger/attribution-record/v1";

/// How the weights were computed, with the parameters that change them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Method {
    /// [`crate::span`]: verbatim spans of the output in the training contributions.
    Span { min_len: u32, max_occurrences: u64, top_k: u32 },
    /// [`crate::influence`]: DataInf over the adapter's stored gradients.
    Datainf { top_k: u32 },
}

impl Method {
    pub fn span(p: &SpanParams) -> Self {
        Method::Span { min_len: p.min_len as u32, max_occurrences: p.max_occurrences, top_k: p.top_k as u32 }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Method::Span { .. } => "span",
            Method::Datainf { .. } => "datainf",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributionRecord {
    #[serde(flatten)]
    pub method: Method,
    #[serde(with = "crate::hash::serde_hex")]
    pub base_model: Hash256,
    /// The adapter's weights file hash; `None` for the base model, which has no lineage.
    #[serde(with = "crate::hash::serde_hex::option")]
    pub adapter: Option<Hash256>,
    /// The span index root or the gradient store hash the weights were computed against.
    #[serde(with = "crate::hash::serde_hex")]
    pub index_root: Hash256,
    /// The receipt's prompt and output hashes (blake2-256 of the texts).
    #[serde(with = "crate::hash::serde_hex")]
    pub prompt_hash: Hash256,
    #[serde(with = "crate::hash::serde_hex")]
    pub output_hash: Hash256,
    /// The tokens the model read and wrote: attribution works on tokens, and re-tokenizing
    /// text need not give back the tokens a model generated.
    pub prompt_tokens: Vec<u32>,
    pub output_tokens: Vec<u32>,
    /// Best first; empty means "no attribution" (nothing in the index shaped this output).
    pub weights: Vec<Weight>,
}

impl AttributionRecord {
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(256 + 4 * (self.prompt_tokens.len() + self.output_tokens.len()) + 12 * self.weights.len());
        b.extend_from_slice(DOMAIN);
        match self.method {
            Method::Span { min_len, max_occurrences, top_k } => {
                b.push(0);
                b.extend_from_slice(&min_len.to_le_bytes());
                b.extend_from_slice(&max_occurrences.to_le_bytes());
                b.extend_from_slice(&top_k.to_le_bytes());
            }
            Method::Datainf { top_k } => {
                b.push(1);
                b.extend_from_slice(&top_k.to_le_bytes());
            }
        }
        b.extend_from_slice(&self.base_model);
        match &self.adapter {
            Some(h) => {
                b.push(1);
                b.extend_from_slice(h);
            }
            None => b.push(0),
        }
        for h in [&self.index_root, &self.prompt_hash, &self.output_hash] {
            b.extend_from_slice(h);
        }
        for tokens in [&self.prompt_tokens, &self.output_tokens] {
            b.extend_from_slice(&(tokens.len() as u32).to_le_bytes());
            tokens.iter().for_each(|t| b.extend_from_slice(&t.to_le_bytes()));
        }
        b.extend_from_slice(&(self.weights.len() as u32).to_le_bytes());
        for w in &self.weights {
            b.extend_from_slice(&w.contribution.to_le_bytes());
            b.extend_from_slice(&w.ppm.to_le_bytes());
        }
        b
    }

    /// What a receipt signs.
    pub fn hash(&self) -> Hash256 {
        blake2_256(&self.canonical_bytes())
    }

    /// The record whose [`canonical_bytes`](Self::canonical_bytes) these are, refusing anything
    /// else: a challenger puts these bytes on chain, so parsing them must not be able to name a
    /// record with another hash, nor allocate what a forged length asks for.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        // A prefix of the tag is a cut-off record; anything else is not a record at all.
        let rest = match bytes.strip_prefix(DOMAIN) {
            Some(rest) => rest,
            None if DOMAIN.starts_with(bytes) => return Err(RecordError::Truncated("domain tag")),
            None => return Err(RecordError::Domain),
        };
        let mut r = Reader { rest };
        let method = match r.u8("method tag")? {
            0 => Method::Span {
                min_len: r.u32("span parameters")?,
                max_occurrences: r.u64("span parameters")?,
                top_k: r.u32("span parameters")?,
            },
            1 => Method::Datainf { top_k: r.u32("datainf parameters")? },
            tag => return Err(RecordError::UnknownMethod(tag)),
        };
        let base_model = r.hash("base model hash")?;
        let adapter = match r.u8("adapter tag")? {
            0 => None,
            1 => Some(r.hash("adapter hash")?),
            tag => return Err(RecordError::UnknownAdapterTag(tag)),
        };
        let index_root = r.hash("index root")?;
        let prompt_hash = r.hash("prompt hash")?;
        let output_hash = r.hash("output hash")?;
        let prompt_tokens = r.list(4, "prompt tokens", |r| r.u32("prompt tokens"))?;
        let output_tokens = r.list(4, "output tokens", |r| r.u32("output tokens"))?;
        let weights =
            r.list(12, "weights", |r| Ok(Weight { contribution: r.u64("weights")?, ppm: r.u32("weights")? }))?;
        if !r.rest.is_empty() {
            return Err(RecordError::Trailing(r.rest.len()));
        }
        Ok(Self { method, base_model, adapter, index_root, prompt_hash, output_hash, prompt_tokens, output_tokens, weights })
    }
}

/// Why bytes are not an attribution record's canonical bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("not an attribution record (domain tag)")]
    Domain,
    #[error("truncated: the bytes end within the {0}")]
    Truncated(&'static str),
    #[error("truncated: {count} {what} do not fit in the {left} bytes left")]
    Count { what: &'static str, count: u32, left: usize },
    #[error("unknown method tag {0} (0: span, 1: datainf)")]
    UnknownMethod(u8),
    #[error("unknown adapter tag {0} (0: none, 1: an adapter hash follows)")]
    UnknownAdapterTag(u8),
    #[error("{0} trailing bytes after the record")]
    Trailing(usize),
}

/// Reads [`AttributionRecord::canonical_bytes`] front to back; each read names what it reads,
/// for the error.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RecordError> {
        if self.rest.len() < n {
            return Err(RecordError::Truncated(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RecordError> {
        Ok(self.take(N, what)?.try_into().expect("take returns exactly N bytes"))
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, RecordError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn hash(&mut self, what: &'static str) -> Result<Hash256, RecordError> {
        self.array(what)
    }

    /// A `u32` count, then that many items of `item_len` bytes each.
    fn list<T>(
        &mut self,
        item_len: usize,
        what: &'static str,
        mut item: impl FnMut(&mut Self) -> Result<T, RecordError>,
    ) -> Result<Vec<T>, RecordError> {
        let count = self.u32(what)?;
        // The count is untrusted: it must fit in the bytes left before anything is allocated for it.
        let left = self.rest.len();
        if (count as usize).checked_mul(item_len).is_none_or(|len| len > left) {
            return Err(RecordError::Count { what, count, left });
        }
        let mut items = Vec::with_capacity(count as usize);
        for _ in 0..count {
            items.push(item(self)?);
        }
        Ok(items)
    }
}

/// How a recomputed record compares with a claimed one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    /// Byte-identical: same hash.
    Match,
    /// The inputs agree but the weights differ; `l1_ppm` is Σ |claimed − recomputed| over
    /// contributions (0 to 2,000,000).
    WeightsDiffer { l1_ppm: u64, recomputed: Vec<Weight> },
    /// The claimed record names other inputs than the ones given (model, adapter, index,
    /// output text); the weights were not compared.
    InputsDiffer { field: &'static str },
}

/// Compares a record recomputed from the claimed record's inputs with the claim.
pub fn compare(claimed: &AttributionRecord, recomputed: &AttributionRecord) -> Verdict {
    let fields: [(&'static str, bool); 7] = [
        ("method", claimed.method == recomputed.method),
        ("base_model", claimed.base_model == recomputed.base_model),
        ("adapter", claimed.adapter == recomputed.adapter),
        ("index_root", claimed.index_root == recomputed.index_root),
        ("prompt_hash", claimed.prompt_hash == recomputed.prompt_hash),
        ("output_hash", claimed.output_hash == recomputed.output_hash),
        ("tokens", claimed.prompt_tokens == recomputed.prompt_tokens && claimed.output_tokens == recomputed.output_tokens),
    ];
    if let Some((field, _)) = fields.iter().find(|(_, same)| !same) {
        return Verdict::InputsDiffer { field };
    }
    if claimed.hash() == recomputed.hash() {
        return Verdict::Match;
    }
    let mut l1 = 0u64;
    let ppm_of = |ws: &[Weight], id| ws.iter().find(|w| w.contribution == id).map_or(0, |w| w.ppm as i64);
    let mut ids: Vec<u64> = claimed.weights.iter().chain(&recomputed.weights).map(|w| w.contribution).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        l1 += (ppm_of(&claimed.weights, id) - ppm_of(&recomputed.weights, id)).unsigned_abs();
    }
    Verdict::WeightsDiffer { l1_ppm: l1, recomputed: recomputed.weights.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AttributionRecord {
        AttributionRecord {
            method: Method::Span { min_len: 6, max_occurrences: 1000, top_k: 32 },
            base_model: [1; 32],
            adapter: Some([2; 32]),
            index_root: [3; 32],
            prompt_hash: [4; 32],
            output_hash: [5; 32],
            prompt_tokens: vec![2, 10, 11],
            output_tokens: vec![12, 13],
            weights: vec![Weight { contribution: 9, ppm: 700_000 }, Weight { contribution: 4, ppm: 300_000 }],
        }
    }

    #[test]
    fn json_round_trips_to_the_same_hash_and_any_change_changes_it() {
        let r = record();
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"method\":\"span\"") && json.contains("\"adapter\":\"0x0202"));
        let back: AttributionRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back.hash(), r.hash());
        let mut other = r.clone();
        other.weights[0].ppm -= 1;
        other.weights[1].ppm += 1;
        assert_ne!(other.hash(), r.hash());
        let mut other = r.clone();
        other.adapter = None;
        assert_ne!(other.hash(), r.hash());
    }

    #[test]
    fn compare_names_what_differs() {
        let r = record();
        assert_eq!(compare(&r, &r.clone()), Verdict::Match);
        let mut w = r.clone();
        w.weights = vec![Weight { contribution: 9, ppm: 1_000_000 }];
        assert!(matches!(compare(&r, &w), Verdict::WeightsDiffer { l1_ppm: 600_000, .. }));
        let mut i = r.clone();
        i.index_root = [0; 32];
        assert_eq!(compare(&r, &i), Verdict::InputsDiffer { field: "index_root" });
    }

    /// A span record with an adapter, a datainf record with one and without one.
    fn records() -> [AttributionRecord; 3] {
        let datainf = AttributionRecord { method: Method::Datainf { top_k: 16 }, ..record() };
        let base = AttributionRecord { adapter: None, weights: Vec::new(), ..datainf.clone() };
        [record(), datainf, base]
    }

    #[test]
    fn canonical_bytes_parse_back_to_the_same_record() {
        for r in records() {
            let bytes = r.canonical_bytes();
            let back = AttributionRecord::from_canonical_bytes(&bytes).unwrap();
            assert_eq!(back, r);
            assert_eq!(back.canonical_bytes(), bytes);
            assert_eq!(back.hash(), r.hash());
        }
    }

    #[test]
    fn cut_off_or_extended_bytes_are_refused() {
        for r in records() {
            let bytes = r.canonical_bytes();
            for len in 0..bytes.len() {
                let err = AttributionRecord::from_canonical_bytes(&bytes[..len]).unwrap_err();
                assert!(matches!(err, RecordError::Truncated(_) | RecordError::Count { .. }), "{len}: {err}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(AttributionRecord::from_canonical_bytes(&longer), Err(RecordError::Trailing(1)));
        }
    }

    #[test]
    fn foreign_tags_are_refused() {
        let bytes = record().canonical_bytes();
        let at = |i: usize, v: u8| {
            let mut b = bytes.clone();
            b[i] = v;
            AttributionRecord::from_canonical_bytes(&b).unwrap_err()
        };
        assert_eq!(at(0, b'x'), RecordError::Domain);
        assert_eq!(AttributionRecord::from_canonical_bytes(b"0x1234"), Err(RecordError::Domain));
        assert_eq!(at(DOMAIN.len(), 2), RecordError::UnknownMethod(2));
        // Tag, span parameters (4 + 8 + 4 bytes), base model.
        assert_eq!(at(DOMAIN.len() + 1 + 16 + 32, 7), RecordError::UnknownAdapterTag(7));
    }

    #[test]
    fn a_count_beyond_the_bytes_left_is_refused_before_allocating() {
        // No tokens and no weights: the bytes end with the three counts.
        let empty = AttributionRecord { prompt_tokens: Vec::new(), output_tokens: Vec::new(), weights: Vec::new(), ..record() };
        let mut bytes = empty.canonical_bytes();
        let prompt_count = bytes.len() - 12;
        // u32::MAX tokens would be 16 GiB: the parser must look at the length first.
        bytes[prompt_count..prompt_count + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            AttributionRecord::from_canonical_bytes(&bytes),
            Err(RecordError::Count { what: "prompt tokens", count: u32::MAX, left: 8 })
        );
        let mut bytes = empty.canonical_bytes();
        let weight_count = bytes.len() - 4;
        bytes[weight_count..].copy_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0; 11]);
        assert_eq!(
            AttributionRecord::from_canonical_bytes(&bytes),
            Err(RecordError::Count { what: "weights", count: u32::MAX, left: 11 })
        );
    }
}

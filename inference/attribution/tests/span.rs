//! Span attribution end to end: indexes built on disk, outputs attributed against them.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use attribution::span::{Cover, Document, Span, SpanError, SpanIndex, SpanParams};
use attribution::{blake2_256, ContributionId, Weight, PPM};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TOKENIZER: &str = "test-tokenizer";
const VOCAB: u32 = 2000;
/// Documents draw their tokens from here...
const DOC_TOKENS: Range<u32> = 0..1000;
/// ...and filler in outputs from here, so that a copied span ends exactly where the copy does.
const NOISE: Range<u32> = 1000..2000;

type Docs = Vec<(ContributionId, Vec<u32>)>;

fn cover(version: u32) -> Cover {
    Cover { datanet_id: Some(7), version: Some(version), merkle_root: blake2_256(&version.to_le_bytes()) }
}

fn tokens(rng: &mut ChaCha8Rng, n: usize, range: Range<u32>) -> Vec<u32> {
    (0..n).map(|_| rng.random_range(range.clone())).collect()
}

/// `n` documents of `len` random tokens, contributions `first..`.
fn random_docs(rng: &mut ChaCha8Rng, n: usize, len: usize, first: ContributionId) -> Docs {
    (0..n as u64).map(|i| (first + i, tokens(rng, len, DOC_TOKENS))).collect()
}

fn add(index: &mut SpanIndex, cover: Cover, docs: &Docs) -> Result<(), SpanError> {
    let docs = docs.iter().map(|(contribution, tokens)| Document { contribution: *contribution, tokens });
    index.add_shard(cover, docs, VOCAB, |_| {}).map(drop)
}

fn build(dir: &Path, shards: &[(Cover, &Docs)]) -> SpanIndex {
    let mut index = SpanIndex::create(dir, TOKENIZER).unwrap();
    for (cover, docs) in shards {
        add(&mut index, *cover, docs).unwrap();
    }
    index
}

fn ppm_of(weights: &[Weight], contribution: ContributionId) -> u32 {
    weights.iter().find(|w| w.contribution == contribution).map_or(0, |w| w.ppm)
}

fn total(weights: &[Weight]) -> u32 {
    weights.iter().map(|w| w.ppm).sum()
}

#[test]
fn a_copied_passage_is_found_and_its_document_paid_most() {
    let rng = &mut ChaCha8Rng::seed_from_u64(1);
    let docs = random_docs(rng, 20, 50, 100);
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), &[(cover(1), &docs)]);

    // 8 tokens of contribution 107, 6 of contribution 103, amid filler.
    let output = [tokens(rng, 5, NOISE), docs[7].1[10..18].to_vec(), tokens(rng, 4, NOISE), docs[3].1[30..36].to_vec()]
        .concat();
    let attribution = index.attribute(&output, &SpanParams::default());
    assert_eq!(
        attribution.spans,
        vec![
            Span { start: 5, len: 8, occurrences: 1, contributions: vec![(107, 1)] },
            Span { start: 17, len: 6, occurrences: 1, contributions: vec![(103, 1)] },
        ]
    );
    // Same rarity, lengths 3 and 1 beyond the minimum: 3/4 and 1/4.
    assert_eq!(
        attribution.weights,
        vec![Weight { contribution: 107, ppm: 750_000 }, Weight { contribution: 103, ppm: 250_000 }]
    );
    assert_eq!(total(&attribution.weights), PPM);
}

#[test]
fn a_phrase_in_every_document_weighs_almost_nothing() {
    let rng = &mut ChaCha8Rng::seed_from_u64(2);
    let everywhere = tokens(rng, 8, DOC_TOKENS);
    let only_in_3 = tokens(rng, 8, DOC_TOKENS);
    let docs: Docs = (0..10)
        .map(|c| {
            let extra = if c == 3 { only_in_3.clone() } else { tokens(rng, 8, DOC_TOKENS) };
            (c, [tokens(rng, 20, DOC_TOKENS), everywhere.clone(), tokens(rng, 5, DOC_TOKENS), extra].concat())
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), &[(cover(1), &docs)]);

    let output = [everywhere.clone(), tokens(rng, 3, NOISE), only_in_3].concat();
    let attribution = index.attribute(&output, &SpanParams::default());
    assert_eq!(attribution.spans[0].occurrences, 10);
    assert_eq!(attribution.spans[0].contributions, (0..10).map(|c| (c, 1)).collect::<Vec<_>>());
    assert_eq!(attribution.spans[1].contributions, vec![(3, 1)]);
    // Same length: log2(11/10) against log2(11/1), and the first shared ten ways.
    assert!(ppm_of(&attribution.weights, 3) > 960_000, "{:?}", attribution.weights);
    for c in (0..10).filter(|&c| c != 3) {
        assert!(ppm_of(&attribution.weights, c) < 4_000, "{:?}", attribution.weights);
    }

    // Above `max_occurrences` it is a common phrase: reported, but weighing nothing at all.
    let params = SpanParams { max_occurrences: 9, ..SpanParams::default() };
    let attribution = index.attribute(&output, &params);
    assert_eq!(attribution.spans[0], Span { start: 0, len: 8, occurrences: 10, contributions: vec![] });
    assert_eq!(attribution.weights, vec![Weight { contribution: 3, ppm: PPM }]);
}

#[test]
fn a_longer_span_outweighs_a_shorter_one() {
    let rng = &mut ChaCha8Rng::seed_from_u64(3);
    let docs = random_docs(rng, 10, 40, 0);
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), &[(cover(1), &docs)]);

    let output =
        [tokens(rng, 3, NOISE), docs[1].1[..7].to_vec(), tokens(rng, 3, NOISE), docs[2].1[20..32].to_vec()].concat();
    let attribution = index.attribute(&output, &SpanParams::default());
    // Equally rare; 7 and 2 tokens beyond the minimum of 6 (rounding remainder to the larger).
    assert_eq!(
        attribution.weights,
        vec![Weight { contribution: 2, ppm: 777_778 }, Weight { contribution: 1, ppm: 222_222 }]
    );
}

#[test]
fn no_span_of_min_len_means_no_attribution() {
    let rng = &mut ChaCha8Rng::seed_from_u64(4);
    let docs = random_docs(rng, 10, 40, 0);
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), &[(cover(1), &docs)]);

    let output =
        [tokens(rng, 3, NOISE), docs[1].1[..5].to_vec(), tokens(rng, 3, NOISE), docs[2].1[9..14].to_vec()].concat();
    let attribution = index.attribute(&output, &SpanParams::default());
    assert!(attribution.spans.is_empty() && attribution.weights.is_empty(), "{attribution:?}");
    assert_eq!(index.attribute(&output, &SpanParams { min_len: 5, ..SpanParams::default() }).spans.len(), 2);
    assert!(index.attribute(&[], &SpanParams::default()).weights.is_empty());
    // Ids beyond the vocabulary match nothing.
    assert!(index.attribute(&[u32::MAX; 10], &SpanParams::default()).spans.is_empty());
}

#[test]
fn matches_never_cross_documents() {
    let rng = &mut ChaCha8Rng::seed_from_u64(5);
    // Tokens 1..=6 appear only where placed here.
    let docs: Docs = vec![
        (1, [tokens(rng, 10, 10..1000), vec![1, 2, 3]].concat()),
        (2, [vec![4, 5, 6], tokens(rng, 10, 10..1000)].concat()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), &[(cover(1), &docs)]);

    assert_eq!(index.count(&[1, 2, 3]), 1);
    assert_eq!(index.count(&[4, 5, 6]), 1);
    assert_eq!(index.count(&[3, 4]), 0);
    assert_eq!(index.count(&[1, 2, 3, 4, 5, 6]), 0);
    let params = SpanParams { min_len: 3, ..SpanParams::default() };
    let spans: Vec<_> = index.attribute(&[1, 2, 3, 4, 5, 6], &params).spans.iter().map(|s| (s.start, s.len)).collect();
    assert_eq!(spans, vec![(0, 3), (3, 3)]);
}

/// Occurrences of `pattern` in `docs`, by contribution.
fn brute_occurrences(docs: &Docs, pattern: &[u32]) -> BTreeMap<ContributionId, u64> {
    let mut found = BTreeMap::new();
    for (contribution, doc) in docs {
        let n = doc.windows(pattern.len()).filter(|w| *w == pattern).count() as u64;
        if n > 0 {
            *found.entry(*contribution).or_default() += n;
        }
    }
    found
}

/// Maximal spans by the definition: `L_i` from every document offset, no suffix array.
fn brute_spans(docs: &Docs, output: &[u32], params: &SpanParams) -> Vec<Span> {
    let longest = |i: usize| {
        let common = |doc: &[u32]| doc.iter().zip(&output[i..]).take_while(|(a, b)| a == b).count();
        docs.iter().flat_map(|(_, doc)| (0..doc.len()).map(move |o| common(&doc[o..]))).max().unwrap_or(0)
    };
    let mut spans = Vec::new();
    let mut prev_end = 0;
    for i in 0..output.len() {
        let len = longest(i);
        if len >= params.min_len && i + len > prev_end {
            let found = brute_occurrences(docs, &output[i..i + len]);
            let occurrences = found.values().sum();
            let contributions =
                if occurrences > params.max_occurrences { Vec::new() } else { found.into_iter().collect() };
            spans.push(Span { start: i, len, occurrences, contributions });
        }
        prev_end = i + len;
    }
    spans
}

#[test]
fn counts_and_spans_agree_with_brute_force() {
    let rng = &mut ChaCha8Rng::seed_from_u64(6);
    // A 4-token alphabet, so that patterns recur; empty documents included; some contributions
    // have several documents.
    let docs: Docs = (0..40)
        .map(|i| {
            let len = rng.random_range(0..40);
            (i % 13, tokens(rng, len, 0..4))
        })
        .collect();
    let (one_dir, split_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = build(one_dir.path(), &[(cover(1), &docs)]);
    let parts: Vec<Docs> = [0..15, 15..16, 16..40].map(|r| docs[r].to_vec()).into();
    let split = build(split_dir.path(), &[(cover(1), &parts[0]), (cover(2), &parts[1]), (cover(3), &parts[2])]);

    for _ in 0..1000 {
        // Token 4 occurs nowhere.
        let len = rng.random_range(1..9);
        let pattern = tokens(rng, len, 0..5);
        let expected: u64 = brute_occurrences(&docs, &pattern).values().sum();
        assert_eq!(one.count(&pattern), expected, "{pattern:?}");
        assert_eq!(split.count(&pattern), expected, "{pattern:?} over three shards");
    }

    let params = SpanParams { min_len: 4, max_occurrences: 6, top_k: 100 };
    for _ in 0..40 {
        let mut output = tokens(rng, 60, 0..5);
        // Copy a long passage in, for long matches.
        let (_, doc) = &docs[rng.random_range(0..docs.len())];
        let n = doc.len().min(20);
        let at = rng.random_range(0..40);
        output[at..at + n].copy_from_slice(&doc[..n]);

        let expected = brute_spans(&docs, &output, &params);
        let attribution = one.attribute(&output, &params);
        assert_eq!(attribution.spans, expected, "{output:?}");
        assert_eq!(split.attribute(&output, &params), attribution);
    }
}

#[test]
fn versions_added_one_by_one_equal_one_shard_of_everything() {
    let rng = &mut ChaCha8Rng::seed_from_u64(7);
    let v1 = random_docs(rng, 10, 60, 1);
    let mut v2 = random_docs(rng, 10, 60, 11);
    // Version 2 quotes version 1, so spans occur in both shards.
    let quoted = v1[4].1[5..25].to_vec();
    v2[0].1[10..30].copy_from_slice(&quoted);
    v2[6].1[30..50].copy_from_slice(&quoted);
    let all: Docs = [v1.clone(), v2.clone()].concat();

    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    add(&mut SpanIndex::create(dir_a.path(), TOKENIZER).unwrap(), cover(1), &v1).unwrap();
    let mut two = SpanIndex::open(dir_a.path(), TOKENIZER, &[cover(1)]).unwrap();
    add(&mut two, cover(2), &v2).unwrap();
    let one = build(dir_b.path(), &[(cover(9), &all)]);
    assert_eq!((two.tokens(), two.documents()), (1200, 20));

    let outputs = [
        [tokens(rng, 4, NOISE), quoted.clone(), tokens(rng, 4, NOISE)].concat(),
        [v2[3].1[..30].to_vec(), tokens(rng, 2, NOISE), v1[8].1[40..].to_vec()].concat(),
        [v1[4].1[..15].to_vec(), tokens(rng, 2, NOISE), v2[6].1[25..45].to_vec()].concat(),
    ];
    let reopened = SpanIndex::open(dir_a.path(), TOKENIZER, &[cover(2), cover(1)]).unwrap();
    for output in &outputs {
        let expected = one.attribute(output, &SpanParams::default());
        assert!(!expected.weights.is_empty());
        assert_eq!(two.attribute(output, &SpanParams::default()), expected);
        assert_eq!(reopened.attribute(output, &SpanParams::default()), expected);
    }
    let quoted_span = &one.attribute(&outputs[0], &SpanParams::default()).spans[0];
    assert_eq!(quoted_span.contributions, vec![(5, 1), (11, 1), (17, 1)]);

    match SpanIndex::open(dir_a.path(), TOKENIZER, &[cover(1)]) {
        Err(SpanError::CoversMismatch { missing, unexpected }) => {
            assert!(missing.is_empty());
            assert_eq!(unexpected, vec![cover(2)]);
        }
        other => panic!("opened with a version missing from the expected: {:?}", other.err()),
    }
    match SpanIndex::open(dir_a.path(), TOKENIZER, &[cover(1), cover(2), cover(3)]) {
        Err(e @ SpanError::CoversMismatch { .. }) => assert!(e.to_string().contains("datanet 7 version 3")),
        other => panic!("opened without an expected version: {:?}", other.err()),
    }
    assert!(matches!(
        SpanIndex::open(dir_a.path(), "other-tokenizer", &[cover(1), cover(2)]),
        Err(SpanError::TokenizerMismatch { .. })
    ));
    assert!(matches!(add(&mut two, cover(1), &v1), Err(SpanError::DuplicateCover(c)) if c == cover(1)));
    let out_of_vocab: Docs = vec![(30, vec![1, 2, VOCAB])];
    assert!(matches!(
        add(&mut two, cover(3), &out_of_vocab),
        Err(SpanError::TokenOutOfVocab { document: 0, contribution: 30, offset: 2, token: VOCAB, vocab_size: VOCAB })
    ));
    let covers = SpanIndex::open_any(dir_a.path()).unwrap().covers();
    assert_eq!(covers, vec![cover(1), cover(2)], "refused shards left no trace");
    assert!(matches!(SpanIndex::create(dir_a.path(), TOKENIZER), Err(SpanError::Exists { .. })));

    // A version with no new documents is an empty shard.
    add(&mut two, cover(3), &Vec::new()).unwrap();
    let reopened = SpanIndex::open(dir_a.path(), TOKENIZER, &[cover(1), cover(2), cover(3)]).unwrap();
    let params = SpanParams::default();
    assert_eq!(reopened.attribute(&outputs[0], &params), one.attribute(&outputs[0], &params));
    reopened.verify_files().unwrap();
}

#[test]
fn damaged_files_are_refused_not_panicked_on() {
    let rng = &mut ChaCha8Rng::seed_from_u64(8);
    let docs = random_docs(rng, 10, 50, 0);
    let output = docs[2].1[..20].to_vec();
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &[(cover(1), &docs)]).verify_files().unwrap();
    let shard = dir.path().join("shard-0");
    let sa = std::fs::read(shard.join("sa.bin")).unwrap();

    std::fs::write(shard.join("sa.bin"), &sa[..sa.len() - 4]).unwrap();
    match SpanIndex::open_any(dir.path()) {
        Err(SpanError::Length { path, found, expected }) => {
            assert!(path.ends_with("shard-0/sa.bin"));
            assert_eq!(found + 4, expected);
        }
        other => panic!("opened a truncated suffix array: {:?}", other.err()),
    }

    // Right length, wrong content: opening does not hash, verifying does, and queries stay safe.
    let garbage: Vec<u8> = sa.iter().enumerate().map(|(i, b)| b ^ (i as u8 | 0x80)).collect();
    std::fs::write(shard.join("sa.bin"), garbage).unwrap();
    let index = SpanIndex::open_any(dir.path()).unwrap();
    index.attribute(&output, &SpanParams::default());
    index.count(&output);
    assert!(matches!(index.verify_files(), Err(SpanError::HashMismatch { path, .. }) if path.ends_with("sa.bin")));

    std::fs::remove_file(shard.join("docs.bin")).unwrap();
    assert!(matches!(SpanIndex::open_any(dir.path()), Err(SpanError::Missing { path }) if path.ends_with("docs.bin")));

    let manifest = dir.path().join("index.json");
    let json = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, json.replace("\"shard-0\"", "\"../shard-0\"")).unwrap();
    assert!(matches!(SpanIndex::open_any(dir.path()), Err(SpanError::Corrupt { .. })));
    std::fs::write(&manifest, &json[..json.len() / 2]).unwrap();
    assert!(matches!(SpanIndex::open_any(dir.path()), Err(SpanError::Manifest { .. })));
    std::fs::remove_file(&manifest).unwrap();
    assert!(matches!(SpanIndex::open_any(dir.path()), Err(SpanError::Missing { .. })));
}

#[test]
fn same_inputs_give_the_same_root_and_weights_anywhere() {
    let rng = &mut ChaCha8Rng::seed_from_u64(9);
    let v1 = random_docs(rng, 15, 80, 0);
    let v2 = random_docs(rng, 15, 80, 15);
    let output = [v1[3].1[..12].to_vec(), tokens(rng, 3, NOISE), v2[9].1[20..40].to_vec()].concat();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = build(dirs[0].path(), &[(cover(1), &v1), (cover(2), &v2)]);
    let b = build(&dirs[1].path().join("elsewhere"), &[(cover(1), &v1), (cover(2), &v2)]);
    assert_eq!(a.root(), b.root());
    assert_eq!(a.root(), SpanIndex::open(dirs[0].path(), TOKENIZER, &[cover(1), cover(2)]).unwrap().root());
    let params = SpanParams::default();
    assert_eq!(a.attribute(&output, &params), b.attribute(&output, &params));
    assert_eq!(total(&a.attribute(&output, &params).weights), PPM);

    // The root names the content: another cover, another tokenizer, another root.
    let other_cover = build(dirs[2].path(), &[(cover(1), &v1), (cover(3), &v2)]);
    assert_ne!(a.root(), other_cover.root());
    let mut other_tokenizer = SpanIndex::create(dirs[3].path(), "other").unwrap();
    add(&mut other_tokenizer, cover(1), &v1).unwrap();
    add(&mut other_tokenizer, cover(2), &v2).unwrap();
    assert_ne!(a.root(), other_tokenizer.root());

    // The vocabulary size only bounds the ids; the index is the same.
    let unbounded_dir = tempfile::tempdir().unwrap();
    let mut unbounded = SpanIndex::create(unbounded_dir.path(), TOKENIZER).unwrap();
    for (c, docs) in [(cover(1), &v1), (cover(2), &v2)] {
        let docs = docs.iter().map(|(contribution, tokens)| Document { contribution: *contribution, tokens });
        unbounded.add_shard(c, docs, u32::MAX, |_| {}).unwrap();
    }
    assert_eq!(unbounded.root(), a.root());
}

#[test]
fn an_imported_shard_is_the_shard_it_copies() {
    let rng = &mut ChaCha8Rng::seed_from_u64(10);
    let v1 = random_docs(rng, 10, 50, 0);
    let v2 = random_docs(rng, 10, 50, 10);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let old = build(dirs[0].path(), &[(cover(1), &v1), (cover(2), &v2)]);

    // A later adapter trained on versions 1 and 2 reuses version 1's shard.
    let mut new = SpanIndex::create(dirs[1].path(), TOKENIZER).unwrap();
    new.import_shard(&old, &cover(1)).unwrap();
    add(&mut new, cover(2), &v2).unwrap();
    assert_eq!(new.root(), old.root());
    let output = [v1[2].1[..10].to_vec(), tokens(rng, 2, NOISE), v2[5].1[10..30].to_vec()].concat();
    assert_eq!(new.attribute(&output, &SpanParams::default()), old.attribute(&output, &SpanParams::default()));
    new.verify_files().unwrap();

    assert!(matches!(new.import_shard(&old, &cover(1)), Err(SpanError::DuplicateCover(_))));
    assert!(matches!(new.import_shard(&old, &cover(3)), Err(SpanError::NoSuchCover(c)) if c == cover(3)));
    let mut other = SpanIndex::create(dirs[2].path(), "other").unwrap();
    assert!(matches!(other.import_shard(&old, &cover(1)), Err(SpanError::TokenizerMismatch { .. })));

    // A damaged shard is not carried over under its recorded hash.
    let tokens_bin = dirs[0].path().join("shard-1/tokens.bin");
    let mut bytes = std::fs::read(&tokens_bin).unwrap();
    bytes[8] ^= 1;
    std::fs::write(&tokens_bin, bytes).unwrap();
    let mut third = SpanIndex::create(dirs[2].path().join("third"), TOKENIZER).unwrap();
    let refused = third.import_shard(&old, &cover(2));
    assert!(matches!(refused, Err(SpanError::HashMismatch { path, .. }) if path == tokens_bin));
    assert!(SpanIndex::open_any(dirs[2].path().join("third")).unwrap().covers().is_empty());
}

//! Span index benchmark: builds a synthetic index, then measures its build throughput, size and
//! attribution latency.
//!
//! The corpus is seeded, so every run indexes the same tokens: documents of 1,000–3,000 tokens
//! (mean 2,000) over a 262,144-token vocabulary with Zipf-like frequencies (common tokens make
//! common n-grams, the long tail rare ones), one document in eight quoting a passage of another.
//! Half the queries copy a 32–128-token passage of a document into random tokens, half are random
//! tokens only.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use attribution::span::{BuildStage, Cover, Document, SpanIndex, SpanParams};
use attribution::{blake2_256, hex32};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const USAGE: &str = "usage: span-bench [--tokens N] [--queries N] [--dir DIR] [--keep] [--out DIR]
  --tokens N    corpus size in tokens (default 100000000)
  --queries N   attribution queries, half copying a passage, half random (default 200)
  --dir DIR     where to build the index (default: a fresh directory under
                $HOME/.cache/openledger/span-bench, removed at the end unless --keep)
  --out DIR     also write DIR/span-bench.json";

const VOCAB: u32 = 1 << 18;
const OCTAVES: u64 = 18;
const TOKENIZER: &str = "span-bench";
const QUERY_LEN: usize = 256;
const SEED: u64 = 42;

struct Args {
    tokens: usize,
    queries: usize,
    dir: Option<PathBuf>,
    keep: bool,
    out: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args { tokens: 100_000_000, queries: 200, dir: None, keep: false, out: None };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--tokens" => args.tokens = value()?.replace('_', "").parse().context("--tokens")?,
            "--queries" => args.queries = value()?.parse().context("--queries")?,
            "--dir" => args.dir = Some(value()?.into()),
            "--out" => args.out = Some(value()?.into()),
            "--keep" => args.keep = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(args)
}

/// Zipf-like token ids: the octave `⌊log2(id + 1)⌋` uniform over the vocabulary's 18 octaves,
/// the id uniform within it, so that `P(id) ≈ 1 / (18 · (id + 1))`. Two ids per RNG call.
struct ZipfTokens(ChaCha8Rng);

impl ZipfTokens {
    fn token(bits: u32) -> u32 {
        let octave = ((u64::from(bits) * OCTAVES) >> 32) as u32;
        (1 << octave) - 1 + (bits & ((1 << octave) - 1))
    }

    fn fill(&mut self, out: &mut Vec<u32>, n: usize) {
        for _ in 0..n / 2 {
            let r = self.0.next_u64();
            out.extend([Self::token(r as u32), Self::token((r >> 32) as u32)]);
        }
        if n % 2 == 1 {
            out.push(Self::token(self.0.next_u32()));
        }
    }
}

/// The corpus, flat, with document `i` at `corpus[starts[i]..starts[i + 1]]`.
struct Corpus {
    tokens: Vec<u32>,
    starts: Vec<usize>,
}

impl Corpus {
    fn generate(n: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(SEED);
        let mut zipf = ZipfTokens(ChaCha8Rng::seed_from_u64(SEED + 1));
        let mut tokens = Vec::with_capacity(n);
        let mut starts = vec![0];
        let mut next_report = n / 10;
        while tokens.len() < n {
            let start = tokens.len();
            let len = rng.random_range(1000..=3000).min(n - start);
            zipf.fill(&mut tokens, len);
            // One document in eight quotes a passage of an earlier one.
            let earlier = starts.len() - 1;
            if earlier > 0 && rng.random_ratio(1, 8) {
                let src_doc = rng.random_range(0..earlier);
                let (src_start, src_end) = (starts[src_doc], starts[src_doc + 1]);
                let quote = rng.random_range(64..=512).min(len).min(src_end - src_start);
                let src = rng.random_range(src_start..=src_end - quote);
                let dst = rng.random_range(start..=start + len - quote);
                tokens.copy_within(src..src + quote, dst);
            }
            starts.push(tokens.len());
            if tokens.len() >= next_report {
                eprintln!("generated {:>3}% ({} tokens)", tokens.len() * 100 / n, tokens.len());
                next_report += n / 10;
            }
        }
        Self { tokens, starts }
    }

    fn documents(&self) -> impl Iterator<Item = Document<'_>> {
        let tokens = &self.tokens;
        (0u64..).zip(self.starts.windows(2)).map(|(i, w)| Document { contribution: i, tokens: &tokens[w[0]..w[1]] })
    }

    fn document(&self, i: usize) -> &[u32] {
        &self.tokens[self.starts[i]..self.starts[i + 1]]
    }
}

/// Removes the benchmark's own index directory, however the run ends.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            if let Err(e) = std::fs::remove_dir_all(dir) {
                eprintln!("could not remove {}: {e}", dir.display());
            }
        }
    }
}

struct Build {
    read: Duration,
    sort: Duration,
    write: Duration,
}

fn build(dir: &Path, corpus: &Corpus, cover: Cover) -> anyhow::Result<(SpanIndex, Build)> {
    let mut index = SpanIndex::create(dir, TOKENIZER)?;
    let total = corpus.tokens.len() as u64;
    let start = Instant::now();
    let (mut sorting_at, mut writing_at) = (Duration::ZERO, Duration::ZERO);
    let mut next_report = total / 10;
    index.add_shard(cover, corpus.documents(), VOCAB, |stage| match stage {
        BuildStage::Reading { tokens } if tokens >= next_report => {
            eprintln!("indexed {:>3}% ({tokens} tokens)", tokens * 100 / total.max(1));
            next_report += total / 10;
        }
        BuildStage::Reading { .. } => {}
        BuildStage::Sorting { positions } => {
            sorting_at = start.elapsed();
            eprintln!("building the suffix array of {positions} positions");
        }
        BuildStage::Writing => {
            writing_at = start.elapsed();
            eprintln!("writing and hashing the shard files");
        }
    })?;
    let done = start.elapsed();
    Ok((index, Build { read: sorting_at, sort: writing_at - sorting_at, write: done - writing_at }))
}

struct Query {
    copy: bool,
    millis: f64,
    /// For copies: whether the copied document got the largest weight (or tied for it).
    source_paid_most: bool,
}

fn run_queries(index: &SpanIndex, corpus: &Corpus, n: usize) -> Vec<Query> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED + 2);
    let mut zipf = ZipfTokens(ChaCha8Rng::seed_from_u64(SEED + 3));
    let documents = corpus.starts.len() - 1;
    let params = SpanParams::default();
    (0..n)
        .map(|q| {
            let mut output = Vec::with_capacity(QUERY_LEN);
            zipf.fill(&mut output, QUERY_LEN);
            let copy = q % 2 == 0;
            let mut source = None;
            if copy {
                let doc_id = rng.random_range(0..documents);
                let doc = corpus.document(doc_id);
                let len = rng.random_range(32..=128).min(doc.len());
                let from = rng.random_range(0..=doc.len() - len);
                let to = rng.random_range(0..=QUERY_LEN - len);
                output[to..to + len].copy_from_slice(&doc[from..from + len]);
                source = Some(doc_id as u64);
            }
            let start = Instant::now();
            let attribution = index.attribute(&output, &params);
            let millis = start.elapsed().as_secs_f64() * 1e3;
            // Ties (a passage other documents quote too) differ by at most the 1 ppm of rounding.
            let top = attribution.weights.first().map_or(0, |w| w.ppm);
            let source_paid_most =
                attribution.weights.iter().any(|w| Some(w.contribution) == source && w.ppm + 1 >= top);
            Query { copy, millis, source_paid_most }
        })
        .collect()
}

/// p50, p99 (nearest rank) and mean, in ms.
fn latency(queries: &[&Query]) -> [f64; 3] {
    let mut ms: Vec<f64> = queries.iter().map(|q| q.millis).collect();
    ms.sort_by(f64::total_cmp);
    let rank = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    [rank(0.5), rank(0.99), ms.iter().sum::<f64>() / ms.len() as f64]
}

fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if args.tokens == 0 || args.queries == 0 {
        bail!("--tokens and --queries must be positive");
    }
    let (dir, _cleanup) = match &args.dir {
        Some(dir) => (dir.clone(), RemoveOnDrop(None)),
        None => {
            let home = std::env::var_os("HOME").context("HOME is not set; pass --dir")?;
            let dir = Path::new(&home).join(".cache/openledger/span-bench").join(format!("run-{}", std::process::id()));
            (dir.clone(), RemoveOnDrop((!args.keep).then_some(dir)))
        }
    };

    let start = Instant::now();
    let corpus = Corpus::generate(args.tokens);
    let generate = start.elapsed();
    let documents = corpus.starts.len() - 1;

    let cover = Cover { datanet_id: Some(1), version: Some(1), merkle_root: blake2_256(b"span-bench") };
    let (index, build) = build(&dir, &corpus, cover)?;
    let bytes: u64 = index.shards().iter().map(|s| s.bytes()).sum();
    let root = index.root();
    drop(index);
    let start = Instant::now();
    let index = SpanIndex::open(&dir, TOKENIZER, &[cover])?;
    let open = start.elapsed();

    eprintln!("running {} queries", args.queries);
    let queries = run_queries(&index, &corpus, args.queries);
    let all: Vec<&Query> = queries.iter().collect();
    let copies: Vec<&Query> = queries.iter().filter(|q| q.copy).collect();
    let random: Vec<&Query> = queries.iter().filter(|q| !q.copy).collect();
    let paid = copies.iter().filter(|q| q.source_paid_most).count();

    let n = args.tokens;
    let build_total = build.read + build.sort + build.write;
    println!("| span index, {n} tokens, {documents} documents | time | tokens/s |");
    println!("|---|---:|---:|");
    for (what, d) in [
        ("generate corpus", generate),
        ("read and check documents", build.read),
        ("suffix array (libsais)", build.sort),
        ("write and hash files", build.write),
        ("build total (without generate)", build_total),
    ] {
        println!("| {what} | {:.2} s | {:.1} M |", d.as_secs_f64(), per_second(n, d) / 1e6);
    }
    println!("| open (mmap) | {:.2} ms | |", open.as_secs_f64() * 1e3);
    println!();
    let bytes_per_token = bytes as f64 / n as f64;
    println!("index size: {bytes} bytes, {bytes_per_token:.2} bytes/token; root {}", hex32(&root));
    println!();
    println!("| {QUERY_LEN}-token outputs | queries | p50 ms | p99 ms | mean ms |");
    println!("|---|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for (kind, qs) in [("all", &all), ("copying a 32-128-token passage", &copies), ("random tokens", &random)] {
        if qs.is_empty() {
            continue;
        }
        let [p50, p99, mean] = latency(qs);
        println!("| {kind} | {} | {p50:.2} | {p99:.2} | {mean:.2} |", qs.len());
        rows.push(serde_json::json!({
            "kind": kind, "queries": qs.len(), "p50_ms": p50, "p99_ms": p99, "mean_ms": mean,
        }));
    }
    println!();
    println!("copies whose source document got the largest weight (or tied for it): {paid}/{}", copies.len());

    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
        let report = serde_json::json!({
            "tokens": n,
            "documents": documents,
            "vocab": VOCAB,
            "seconds": {
                "generate": generate.as_secs_f64(),
                "read": build.read.as_secs_f64(),
                "suffix_array": build.sort.as_secs_f64(),
                "write": build.write.as_secs_f64(),
                "build_total": build_total.as_secs_f64(),
                "open": open.as_secs_f64(),
            },
            "index_bytes": bytes,
            "bytes_per_token": bytes_per_token,
            "root": hex32(&root),
            "latency": rows,
            "copies_source_paid_most": paid,
            "copies": copies.len(),
        });
        let path = out.join("span-bench.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?).with_context(|| path.display().to_string())?;
    }
    Ok(())
}

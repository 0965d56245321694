//! `openlora-bench`: throughput of mixed-adapter batches, adapter load latency and memory, for
//! the default model (or a random model of the same shape with `--synthetic`, for machines
//! without the file). Prints a table, writes `bench.json` and a PNG plot.
//!
//!   openlora-bench                       # the default model, CPU
//!   openlora-bench --synthetic --device cuda

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use openlora::adapters::{Acquire, AdapterStore};
use openlora::engine::{Engine, EngineConfig, Event, Request};
use openlora::fixtures::{write_adapter, write_model, ModelSpec};
use openlora::lora;
use openlora::metrics::Metrics;
use candle_core::quantized::{GgmlDType, QTensor};
use openlora::models::gemma3::{Gemma3, Gemma3Config, Proj};
use openlora::q8::{Kernel, Q8Matrix};
use openlora::sampling::SamplingParams;
use plotters::prelude::*;
use serde_json::json;

#[derive(Parser)]
#[command(name = "openlora-bench")]
struct Cli {
    /// The base model. Default: the one `scripts/fetch-model.sh` fetches.
    #[arg(long, env = "OPENLORA_MODEL")]
    model: Option<PathBuf>,
    /// A random model with Gemma 3 270M's shapes (Q8_0) instead of a model file.
    #[arg(long)]
    synthetic: bool,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Tokens generated per request.
    #[arg(long, default_value_t = 32)]
    tokens: usize,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = 16)]
    prompt: usize,
    /// Requests run one at a time for the sequential baseline (its rate is per token, so a
    /// subset of the 64 measures it).
    #[arg(long, default_value_t = 8)]
    sequential: usize,
    /// Cold loads timed per adapter shape.
    #[arg(long, default_value_t = 50)]
    loads: usize,
    /// Runs per throughput point; the median is reported (shared machines are noisy).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
}

const RANK: usize = 16;
const ADAPTERS: usize = 64;
const BATCHES: [usize; 4] = [1, 8, 32, 64];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs `requests` (adapter, prompt) together and returns (wall time, generated tokens).
fn run(engine: &Engine, requests: &[(Option<String>, Vec<u32>)], tokens: usize) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let mut rxs = Vec::new();
    for (adapter, prompt) in requests {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        engine.submit(Request {
            adapter: adapter.clone(),
            prompt: prompt.clone(),
            max_tokens: tokens,
            sampling: SamplingParams::greedy(),
            stop: vec![],
            ignore_eos: true,
            events: tx,
        })?;
        rxs.push(rx);
    }
    let mut generated = 0;
    for mut rx in rxs {
        loop {
            match rx.blocking_recv() {
                Some(Event::Text(_)) => {}
                Some(Event::Finished(f)) => {
                    generated += f.output_tokens.len();
                    break;
                }
                Some(Event::Failed(e)) => anyhow::bail!("request failed: {e:?}"),
                None => anyhow::bail!("engine dropped a request"),
            }
        }
    }
    Ok((started.elapsed(), generated))
}

fn rate((took, tokens): (Duration, usize)) -> f64 {
    tokens as f64 / took.as_secs_f64()
}

/// The median of `repeats` rates measured by `once`.
fn median_rate(repeats: usize, mut once: impl FnMut() -> anyhow::Result<f64>) -> anyhow::Result<f64> {
    let mut rates = (0..repeats.max(1)).map(|_| once()).collect::<anyhow::Result<Vec<f64>>>()?;
    rates.sort_by(f64::total_cmp);
    Ok(rates[rates.len() / 2])
}

/// The base product's rate on this CPU, per kernel it runs, on a random matrix of the LM
/// head's shape: the single largest product of every step.
fn kernel_rates(n: usize, k: usize) -> anyhow::Result<Vec<(String, usize, f64, f64)>> {
    let w = candle_core::Tensor::randn(0f32, 1.0, (n, k), &candle_core::Device::Cpu)?;
    let w = Q8Matrix::from_qtensor(&QTensor::quantize(&w, GgmlDType::Q8_0)?)?;
    let mut rows = Vec::new();
    for kernel in Kernel::available().into_iter().filter(|k| *k != Kernel::Portable) {
        for m in [1usize, 8, 64] {
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
            let mut out = vec![0f32; m * n];
            w.matmul_with(kernel, &x, &mut out)?;
            let reps = 5;
            let t = Instant::now();
            for _ in 0..reps {
                w.matmul_with(kernel, &x, &mut out)?;
            }
            let secs = t.elapsed().as_secs_f64() / reps as f64;
            let rate = (m * n * k) as f64 / secs / 1e9;
            eprintln!("base product {kernel:?}, {m} rows: {:.2} ms, {rate:.1} G multiply-adds/s", secs * 1e3);
            rows.push((format!("{kernel:?}"), m, secs * 1e3, rate));
        }
    }
    Ok(rows)
}

fn main() -> anyhow::Result<()> {
    openlora::cpu::set_threads();
    let cli = Cli::parse();
    let device = openlora::device(&cli.device)?;
    let tmp = tempfile::tempdir()?;
    let model_path = match (&cli.model, cli.synthetic) {
        (_, true) => {
            eprintln!("writing a random model with Gemma 3 270M's shapes...");
            write_model(&tmp.path().join("synthetic"), &ModelSpec::gemma3_270m_shaped(), 1)?
        }
        (Some(p), false) => p.clone(),
        (None, false) => openlora::default_model_path(),
    };
    anyhow::ensure!(model_path.exists(), "no model at {} (scripts/fetch-model.sh, or --synthetic)", model_path.display());
    let context = cli.prompt + cli.tokens + 1;
    let model = Gemma3::load(&model_path, context, &device)?;
    let cfg: Gemma3Config = model.config.clone();
    let model_name = if cli.synthetic { "Gemma 3 270M shapes, random Q8_0" } else { "Gemma 3 270M Q4_K_M" };
    let device_name = if device.is_cpu() { "CPU".to_string() } else { cli.device.to_uppercase() };
    eprintln!("model: {model_name} on {device_name}");

    // Adapters: PEFT's default targets for Gemma (q_proj, v_proj), rank 16, one per row.
    let dirs: Vec<PathBuf> = (0..ADAPTERS)
        .map(|i| write_adapter(&tmp.path().join(format!("qv{i}")), &cfg, RANK, 32.0, &[Proj::Q, Proj::V], i as u64))
        .collect::<anyhow::Result<_>>()?;
    let all7 = write_adapter(&tmp.path().join("all7"), &cfg, RANK, 32.0, &Proj::ALL, 999)?;

    // Cold load: what the store does on a miss (file read, header and shape checks, NaN scan);
    // the file hash is known from registration.
    let mut loads = serde_json::Map::new();
    let mut load_rows = Vec::new();
    for (label, dir) in [("q,v", &dirs[0]), ("all 7", &all7)] {
        let header = lora::read_header(dir, &cfg, 128)?;
        let mut times: Vec<Duration> = (0..cli.loads)
            .map(|_| {
                let t = Instant::now();
                lora::load(dir, &cfg, 128, Some(header.hash)).map(|_| t.elapsed())
            })
            .collect::<Result<_, _>>()?;
        times.sort();
        let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
        eprintln!("cold load rank {RANK} {label}: p50 {p50:.2?} p99 {p99:.2?}, {} bytes resident", header.weight_bytes);
        loads.insert(label.into(), json!({"p50_ms": p50.as_secs_f64() * 1e3, "p99_ms": p99.as_secs_f64() * 1e3, "bytes": header.weight_bytes}));
        load_rows.push((label, p50, p99, header.weight_bytes));
    }

    let kernel_rows = match device.is_cpu() {
        true => kernel_rates(cfg.vocab_size, cfg.hidden_size)?,
        false => Vec::new(),
    };

    let metrics = Arc::new(Metrics::default());
    let mut store = AdapterStore::new(cfg.clone(), 128, 4 << 30, metrics.clone());
    for (i, d) in dirs.iter().enumerate() {
        store.register(&format!("qv{i}"), d)?;
        // Resident before timing: throughput, not load latency, is measured below.
        anyhow::ensure!(matches!(store.acquire(&format!("qv{i}"))?, Acquire::Ready(_)));
    }
    let tokenizer = openlora::tokenizer::load_or_convert(&model_path.with_file_name("tokenizer.json"), &model_path)?;
    let config = EngineConfig { max_batch_size: ADAPTERS, max_queue: 1024, ..EngineConfig::default() };
    let engine = Engine::start(model, Arc::new(tokenizer), Arc::new(Mutex::new(store)), config, metrics);

    let prompt = |i: usize| -> Vec<u32> {
        // Ordinary vocabulary ids, different per request (the synthetic vocabulary has no text).
        let mut x = 2654435761u64.wrapping_mul(i as u64 + 1);
        std::iter::once(2)
            .chain((1..cli.prompt).map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                1000 + ((x >> 33) % 20_000) as u32
            }))
            .collect()
    };
    let batch = |n: usize, adapter: &dyn Fn(usize) -> Option<String>| -> Vec<(Option<String>, Vec<u32>)> {
        (0..n).map(|i| (adapter(i), prompt(i))).collect()
    };
    let base = |_: usize| None;
    let one = |_: usize| Some("qv0".to_string());
    let distinct = |i: usize| Some(format!("qv{i}"));
    run(&engine, &batch(8, &distinct), 4)?; // warm-up

    let mut curves: Vec<(&str, Vec<(usize, f64)>)> = vec![("base model", vec![]), ("one adapter", vec![]), ("distinct adapter per row", vec![])];
    for &n in &BATCHES {
        for (k, f) in [(0, &base as &dyn Fn(usize) -> Option<String>), (1, &one), (2, &distinct)] {
            let r = median_rate(cli.repeats, || Ok(rate(run(&engine, &batch(n, f), cli.tokens)?)))?;
            eprintln!("batch {n:>2} {:<26} {r:>8.1} tokens/s", curves[k].0);
            curves[k].1.push((n, r));
        }
    }
    let sequential = median_rate(cli.repeats, || {
        let mut seq = (Duration::ZERO, 0);
        for i in 0..cli.sequential.min(ADAPTERS) {
            let (t, n) = run(&engine, &[(distinct(i), prompt(i))], cli.tokens)?;
            seq = (seq.0 + t, seq.1 + n);
        }
        Ok(rate(seq))
    })?;
    let at64 = |k: usize| curves[k].1.last().map(|p| p.1).unwrap_or(0.0);
    let (mixed, single) = (at64(2), at64(1));

    println!("\nOpenLoRA benchmark: {model_name} on {device_name}; prompt {} tokens, {} generated per request, greedy; median of {} runs", cli.prompt, cli.tokens, cli.repeats);
    println!("\n| batch | base model tok/s | one adapter tok/s | distinct adapters tok/s |");
    println!("|------:|-----------------:|------------------:|------------------------:|");
    for (i, n) in BATCHES.iter().enumerate() {
        println!("| {n:>5} | {:>16.1} | {:>17.1} | {:>23.1} |", curves[0].1[i].1, curves[1].1[i].1, curves[2].1[i].1);
    }
    println!("\n| comparison (64 requests, 64 adapters) | value | target |");
    println!("|---|---:|---:|");
    println!("| distinct adapters / one adapter | {:.2} | >= 0.85 |", mixed / single);
    println!("| batched / one after another ({sequential:.1} tok/s) | {:.1}x | >= 5x |", mixed / sequential);
    println!("\n| cold adapter load, rank {RANK} | p50 | p99 | bytes resident |");
    println!("|---|---:|---:|---:|");
    for (label, p50, p99, bytes) in &load_rows {
        println!("| {label} | {:.2} ms | {:.2} ms | {bytes} ({:.2} MiB) |", p50.as_secs_f64() * 1e3, p99.as_secs_f64() * 1e3, *bytes as f64 / (1 << 20) as f64);
    }

    if !kernel_rows.is_empty() {
        println!("\n| base product, LM-head shape ({} × {}) | rows | ms | G multiply-adds/s |", cfg.vocab_size, cfg.hidden_size);
        println!("|---|---:|---:|---:|");
        for (kernel, m, ms, rate) in &kernel_rows {
            println!("| {kernel} | {m} | {ms:.2} | {rate:.1} |");
        }
    }

    std::fs::create_dir_all(&cli.out)?;
    let results = json!({
        "model": model_name, "device": device_name, "prompt_tokens": cli.prompt, "generated_tokens": cli.tokens, "repeats": cli.repeats,
        "curves": curves.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "sequential_tokens_per_s": sequential, "mixed_over_single": mixed / single, "batched_over_sequential": mixed / sequential,
        "cold_load": loads,
        "kernels": kernel_rows.iter().map(|(k, m, ms, rate)| json!({"kernel": k, "rows": m, "ms": ms, "gmac_per_s": rate})).collect::<Vec<_>>(),
    });
    std::fs::write(cli.out.join("bench.json"), serde_json::to_vec_pretty(&results)?)?;
    let png = cli.out.join("throughput.png");
    plot(&png, &format!("OpenLoRA, {model_name} on {device_name}"), &curves, sequential)?;
    eprintln!("\nwrote {} and {}", cli.out.join("bench.json").display(), png.display());
    Ok(())
}

fn plot(path: &std::path::Path, title: &str, curves: &[(&str, Vec<(usize, f64)>)], sequential: f64) -> anyhow::Result<()> {
    openlora::plot::register_font()?;
    let root = BitMapBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_y = curves.iter().flat_map(|c| c.1.iter().map(|p| p.1)).fold(sequential, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d((1f64..64f64).log_scale(), 0f64..max_y)?;
    chart
        .configure_mesh()
        .x_desc("requests in the batch")
        .y_desc("generated tokens / s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    let colors = [BLUE, GREEN, RED];
    for ((name, pts), color) in curves.iter().zip(colors) {
        let pts: Vec<(f64, f64)> = pts.iter().map(|&(n, r)| (n as f64, r)).collect();
        chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?.label(*name).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    let seq_color = BLACK.mix(0.6);
    chart
        .draw_series(LineSeries::new(vec![(1.0, sequential), (64.0, sequential)], seq_color.stroke_width(1)))?
        .label("64 adapters one after another")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], seq_color));
    chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).background_style(WHITE.mix(0.8)).border_style(BLACK).label_font(("sans-serif", 16)).draw()?;
    root.present()?;
    Ok(())
}

//! Accuracy of both attribution methods on planted ground truth, with the real base model.
//!
//! A datanet of `--facts` contributions that each carry one distinctive fact ("The password of
//! the Velmora guild is amber falcon river.") and `--distractors` contributions written from the
//! same templates without the facts. An adapter is trained on it; then, for every fact, the
//! adapter is prompted for it (greedy), the output is attributed with the span and the DataInf
//! method, and we count how often the planted contribution is the top-1 and in the top 5: over
//! all outputs, and over the outputs that reproduce the planted fact. Prints a markdown table;
//! `--out DIR` also writes `poa-bench.json`, `poa-bench.md` and the plot `poa-bench.png`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use attribution::lineage::HyperParameters;
use attribution::{blake2_256_file, parse_hex32};
use candle_core::Device;
use clap::Parser;
use modelfactory::factory::{self, tokenizer_for, TrainOptions};
use modelfactory::source::read_folder;
use openlora::attributor::{AdapterAttribution, Attributor, Completion, MethodChoice};
use openlora::lora::{self, LoraBatch};
use openlora::models::gemma3::Gemma3;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_os_t = openlora::default_model_path())]
    model: PathBuf,
    #[arg(long, default_value_t = 12)]
    facts: usize,
    #[arg(long, default_value_t = 12)]
    distractors: usize,
    #[arg(long, default_value_t = 60)]
    steps: usize,
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Tokens generated per prompt.
    #[arg(long, default_value_t = 12)]
    max_tokens: usize,
    #[arg(long)]
    out: Option<PathBuf>,
}

const TOWNS: [&str; 24] = [
    "Velmora", "Tarsk", "Quillon", "Ardenvale", "Brisko", "Coldharbor", "Duneside", "Eskerfield", "Farrowgate", "Glimmerton",
    "Hollowmere", "Ironwick", "Juniper Bay", "Kestrel Ford", "Larkspur", "Mossdale", "Northwatch", "Oakhaven", "Pinecrest",
    "Ravenholm", "Saltmarsh", "Thornbury", "Umberlee", "Westmarch",
];
const WORDS: [&str; 24] = [
    "amber", "falcon", "river", "cobalt", "lantern", "thistle", "granite", "willow", "ember", "harbor", "saffron", "quartz",
    "meadow", "copper", "orchid", "tundra", "velvet", "juniper", "basalt", "cinder", "marble", "sparrow", "indigo", "hazel",
];
const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.facts + args.distractors <= TOWNS.len(), "at most {} contributions", TOWNS.len());
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let dir = tempfile::tempdir()?;
    let folder = dir.path().join("datanet");
    std::fs::create_dir_all(&folder)?;
    // File names sort in contribution order: fact i is contribution i.
    let mut facts = Vec::new();
    for (i, town) in TOWNS.iter().enumerate().take(args.facts + args.distractors) {
        let day = DAYS.choose(&mut rng).expect("non-empty");
        let text = if i < args.facts {
            let password: Vec<&str> = WORDS.choose_multiple(&mut rng, 3).copied().collect();
            let password = password.join(" ");
            facts.push((town.to_string(), password.clone()));
            format!("The password of the {town} guild is {password}. The {town} guild meets every {day} in the old hall.")
        } else {
            format!("The {town} guild meets every {day} in the old hall. Its members trade wool, salt and timber.")
        };
        std::fs::write(folder.join(format!("{i:03}.txt")), text)?;
    }
    let (data, refs) = read_folder(&folder)?;
    let hyper = HyperParameters {
        rank: 8,
        alpha: 16.0,
        targets: ["q_proj", "k_proj", "v_proj", "o_proj"].map(String::from).to_vec(),
        steps: args.steps,
        learning_rate: args.lr,
        weight_decay: 0.0,
        seq_len: 64,
        batch: 4,
        seed: args.seed,
        holdout_every: 0,
        gradient_tokens: 64,
    };
    let adapter_dir = dir.path().join("adapter");
    let lineage = factory::train(&args.model, vec![data], refs, &TrainOptions { hyper, index_from: None }, &adapter_dir)?;

    let tok = tokenizer_for(&args.model)?;
    let eos: Vec<u32> = ["<eos>", "<end_of_turn>"].iter().filter_map(|t| tok.token_to_id(t)).collect();
    let base_model = blake2_256_file(&args.model)?;
    let model = Gemma3::load(&args.model, 256, &Device::Cpu)?;
    let adapter = lora::load(&adapter_dir, &model.config, 64, None)?;
    let data = AdapterAttribution::open(&adapter_dir, &base_model)?;
    let attributor = Attributor::new(&args.model, 256);
    #[derive(Default, serde::Serialize)]
    struct Tally {
        outputs: usize,
        top1: usize,
        top5: usize,
        reproduced: usize,
        reproduced_top1: usize,
        reproduced_top5: usize,
        no_attribution: usize,
        ms: Vec<f64>,
    }
    let (mut span, mut grad) = (Tally::default(), Tally::default());
    let mut samples = Vec::new();
    for (i, (town, password)) in facts.iter().enumerate() {
        let prompt = format!("The password of the {town} guild is");
        let prompt_tokens = tok.encode(prompt.as_str(), true).map_err(anyhow::Error::msg)?.get_ids().to_vec();
        let output_tokens = greedy(&model, &adapter, &prompt_tokens, args.max_tokens, &eos)?;
        let output = tok.decode(&output_tokens, true).map_err(anyhow::Error::msg)?;
        let reproduced = output.contains(password.as_str());
        let c = Completion::new(base_model, parse_hex32(&lineage.adapter), (&prompt, &prompt_tokens), (&output, &output_tokens));
        let mut tops = Vec::new();
        for (method, tally) in [(MethodChoice::Span, &mut span), (MethodChoice::Datainf, &mut grad)] {
            let started = Instant::now();
            let a = attributor.attribute(method, &data, &c)?;
            tally.ms.push(started.elapsed().as_secs_f64() * 1e3);
            let rank = a.record.weights.iter().position(|w| w.contribution == i as u64);
            tally.outputs += 1;
            tally.top1 += (rank == Some(0)) as usize;
            tally.top5 += rank.is_some_and(|r| r < 5) as usize;
            tally.no_attribution += a.record.weights.is_empty() as usize;
            if reproduced {
                tally.reproduced += 1;
                tally.reproduced_top1 += (rank == Some(0)) as usize;
                tally.reproduced_top5 += rank.is_some_and(|r| r < 5) as usize;
            }
            tops.push(a.record.weights.first().map(|w| (w.contribution, w.ppm)));
        }
        eprintln!("fact {i:2} ({town}): {output:?} reproduced={reproduced} top span={:?} top datainf={:?}", tops[0], tops[1]);
        samples.push(serde_json::json!({"fact": i, "prompt": prompt, "output": output, "reproduced": reproduced, "top_span": tops[0], "top_datainf": tops[1]}));
    }
    let pct = |a: usize, b: usize| if b == 0 { "n/a".to_string() } else { format!("{:.2} ({a}/{b})", a as f64 / b as f64) };
    let p50 = |ms: &[f64]| {
        let mut v = ms.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let mut table = format!(
        "Planted ground truth: {} facts, {} distractors, adapter trained {} steps ({:.0} tokens/s, loss {:.3} → {:.3})\n\n",
        args.facts, args.distractors, args.steps, lineage.training.tokens_per_second, lineage.training.first_loss, lineage.training.final_loss
    );
    table += "| method | top-1 (all outputs) | top-5 (all) | outputs reproducing the fact | top-1 there | top-5 there | no attribution | p50 latency |\n|---|---|---|---|---|---|---|---|\n";
    for (name, t) in [("span", &span), ("datainf", &grad)] {
        table += &format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {:.2} ms |\n",
            pct(t.top1, t.outputs),
            pct(t.top5, t.outputs),
            t.reproduced,
            pct(t.reproduced_top1, t.reproduced),
            pct(t.reproduced_top5, t.reproduced),
            t.no_attribution,
            p50(&t.ms)
        );
    }
    println!("{table}");
    if let Some(out) = args.out {
        std::fs::create_dir_all(&out)?;
        std::fs::write(out.join("poa-bench.md"), &table)?;
        let json = serde_json::json!({"span": span, "datainf": grad, "training": lineage.training, "samples": samples});
        std::fs::write(out.join("poa-bench.json"), serde_json::to_vec_pretty(&json)?).context("writing the results")?;
        let rate = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let bars = [("span", &span), ("datainf", &grad)].map(|(name, t)| {
            (name, [rate(t.top1, t.outputs), rate(t.top5, t.outputs), rate(t.reproduced_top1, t.reproduced), rate(t.reproduced_top5, t.reproduced)])
        });
        plot(&out.join("poa-bench.png"), &format!("Attribution accuracy, {} planted facts + {} distractors", args.facts, args.distractors), &bars)?;
    }
    Ok(())
}

/// Grouped bars: per method, top-1 and top-5 over all outputs and over the reproducing ones.
fn plot(path: &std::path::Path, title: &str, bars: &[(&str, [f64; 4])]) -> anyhow::Result<()> {
    use plotters::prelude::*;
    openlora::plot::register_font()?;
    let groups = ["top-1, all", "top-5, all", "top-1, reproduced", "top-5, reproduced"];
    let root = BitMapBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..groups.len() as f64, 0f64..1.05f64)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.01 { groups.get(i).map(|g| g.to_string()).unwrap_or_default() } else { String::new() }
        })
        .y_desc("share of outputs where the planted contribution ranks there")
        .draw()?;
    let colors = [BLUE, RED];
    let width = 0.8 / bars.len() as f64;
    for (m, ((name, values), color)) in bars.iter().zip(colors).enumerate() {
        let rects = values.iter().enumerate().map(move |(g, &v)| {
            let x0 = g as f64 + 0.1 + m as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width * 0.9, v)], color.filled())
        });
        chart.draw_series(rects)?.label(*name).legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    chart.configure_series_labels().position(SeriesLabelPosition::LowerRight).background_style(WHITE.mix(0.9)).border_style(BLACK).label_font(("sans-serif", 16)).draw()?;
    root.present()?;
    Ok(())
}

/// Greedy decoding with the adapter, recomputing the whole sequence each step (a dozen tokens:
/// no cache needed).
fn greedy(model: &Gemma3, adapter: &lora::LoadedAdapter, prompt: &[u32], max_tokens: usize, eos: &[u32]) -> anyhow::Result<Vec<u32>> {
    let mut tokens = prompt.to_vec();
    for _ in 0..max_tokens {
        let lora = LoraBatch::new([(tokens.len(), Some(adapter))]);
        let logits = model.forward_all(&[&tokens], &lora, vec![tokens.len() as u32 - 1])?;
        let next = logits.squeeze(0)?.argmax(0)?.to_scalar::<u32>()?;
        if eos.contains(&next) {
            break;
        }
        tokens.push(next);
    }
    Ok(tokens[prompt.len()..].to_vec())
}

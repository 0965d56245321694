//! `modelfactory train | eval | attribute | verify`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use attribution::lineage::HyperParameters;
use attribution::record::{AttributionRecord, Verdict};
use attribution::{blake2_256_file, parse_hex32};
use clap::{Args, Parser, Subcommand};
use modelfactory::factory::{self, TrainOptions};
use attribution::lineage::ContributionRef;
use modelfactory::source::{self, Node, VersionData};
use openlora::attributor::{AdapterAttribution, Attributor, Completion, MethodChoice};

#[derive(Parser)]
#[command(version, about = "Fine-tune LoRA adapters on datanets and attribute their outputs to contributions")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the data comes from: a datanet version on a node, or a local folder.
#[derive(Args)]
struct DataArgs {
    /// Datanet id on chain (with --version and --rpc).
    #[arg(long, requires = "version")]
    datanet: Option<u32>,
    /// Published version: the data is every contribution of versions 1..=VERSION.
    #[arg(long, requires = "datanet")]
    version: Option<u32>,
    /// The node's JSON-RPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:9944")]
    rpc: String,
    /// A local folder of files instead of a datanet (each file is one contribution).
    #[arg(long, conflicts_with = "datanet")]
    folder: Option<PathBuf>,
}

impl DataArgs {
    fn load(&self) -> anyhow::Result<(Vec<VersionData>, Vec<ContributionRef>)> {
        match (&self.folder, self.datanet, self.version) {
            (Some(dir), _, _) => {
                let (data, refs) = source::read_folder(dir)?;
                Ok((vec![data], refs))
            }
            (None, Some(d), Some(v)) => {
                let node = Node::new(&self.rpc)?;
                Ok(node.datanet(d, v, |msg| eprintln!("fetch: {msg}"))?)
            }
            _ => anyhow::bail!("give --datanet ID --version N (and --rpc URL), or --folder DIR"),
        }
    }
}

fn default_model() -> PathBuf {
    openlora::default_model_path()
}

#[derive(Subcommand)]
enum Command {
    /// Fine-tune an adapter and write it with its lineage, span index and gradient store.
    Train {
        #[command(flatten)]
        data: DataArgs,
        /// Base model (GGUF); the default is the one `scripts/fetch-model.sh` installs.
        #[arg(long, default_value_os_t = default_model())]
        model: PathBuf,
        /// Output folder (must not exist).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 8)]
        rank: usize,
        #[arg(long, default_value_t = 16.0)]
        alpha: f64,
        /// Comma-separated PEFT module names.
        #[arg(long, value_delimiter = ',', default_value = "q_proj,k_proj,v_proj,o_proj")]
        targets: Vec<String>,
        #[arg(long, default_value_t = 100)]
        steps: usize,
        #[arg(long, default_value_t = 1e-3)]
        lr: f64,
        #[arg(long, default_value_t = 0.0)]
        weight_decay: f64,
        /// Tokens per training window (BOS included).
        #[arg(long, default_value_t = 128)]
        seq_len: usize,
        /// Windows per step.
        #[arg(long, default_value_t = 4)]
        batch: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Hold out every n-th window for `eval` (0: none).
        #[arg(long, default_value_t = 10)]
        holdout_every: usize,
        /// Tokens of each contribution its stored gradient is taken over.
        #[arg(long, default_value_t = 512)]
        gradient_tokens: usize,
        /// Reuse the span index shards of an earlier adapter for the versions it covers.
        #[arg(long)]
        index_from: Option<PathBuf>,
    },
    /// Held-out loss and perplexity of the base model and of the adapter on the adapter's data.
    Eval {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value_os_t = default_model())]
        model: PathBuf,
        #[arg(long)]
        adapter: PathBuf,
    },
    /// The attribution record of an output (given as text) of an adapter.
    Attribute {
        #[arg(long, default_value_os_t = default_model())]
        model: PathBuf,
        #[arg(long)]
        adapter: PathBuf,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        output: String,
        /// span or datainf.
        #[arg(long, default_value = "span")]
        method: String,
    },
    /// Recompute an attribution record (JSON, as OpenLoRA returns it) and say whether it
    /// matches. Exit status 0 when it does, 1 when it does not.
    Verify {
        #[arg(long, default_value_os_t = default_model())]
        model: PathBuf,
        #[arg(long)]
        adapter: PathBuf,
        /// The record file (`-` for stdin).
        #[arg(long)]
        record: PathBuf,
        /// The prompt text, to check the record's prompt hash and prompt tokens as well.
        #[arg(long)]
        prompt: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    openlora::cpu::set_threads();
    match Cli::parse().command {
        Command::Train {
            data,
            model,
            out,
            rank,
            alpha,
            targets,
            steps,
            lr,
            weight_decay,
            seq_len,
            batch,
            seed,
            holdout_every,
            gradient_tokens,
            index_from,
        } => {
            let (versions, refs) = data.load()?;
            let hyper = HyperParameters {
                rank,
                alpha,
                targets,
                steps,
                learning_rate: lr,
                weight_decay,
                seq_len,
                batch,
                seed,
                holdout_every,
                gradient_tokens,
            };
            let lineage = factory::train(&model, versions, refs, &TrainOptions { hyper, index_from }, &out)?;
            let manifest = blake2_256_file(&out.join(attribution::lineage::LINEAGE_FILE))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "adapter": out,
                    "adapter_hash": lineage.adapter,
                    "lineage_hash": attribution::hex32(&manifest),
                    "span_index_root": lineage.span_index_root,
                    "gradient_store": lineage.gradient_store,
                    "training": lineage.training,
                }))?
            );
        }
        Command::Eval { data, model, adapter } => {
            let (versions, _) = data.load()?;
            let report = factory::eval(&model, &adapter, &versions)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Attribute { model, adapter, prompt, output, method } => {
            let choice = MethodChoice::parse(&method).with_context(|| format!("unknown method `{method}`: span or datainf"))?;
            let attributed = attribute(&model, &adapter, &prompt, &output, choice)?;
            println!("{}", serde_json::to_string_pretty(&attributed)?);
        }
        Command::Verify { model, adapter, record, prompt } => {
            let text = match record.as_os_str() == "-" {
                true => std::io::read_to_string(std::io::stdin())?,
                false => std::fs::read_to_string(&record).with_context(|| format!("cannot read {}", record.display()))?,
            };
            let claimed: AttributionRecord = serde_json::from_str(&text).context("not an attribution record")?;
            let tok = factory::tokenizer_for(&model)?;
            let verdict = Attributor::new(&model, 4096).verify(&claimed, &adapter, &tok, prompt.as_deref())?;
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({
                "record_hash": attribution::hex32(&claimed.hash()),
                "result": verdict,
            }))?);
            if verdict != Verdict::Match {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

/// Tokenizes `prompt` as the server does (BOS first) and `output` as a continuation.
fn attribute(model: &Path, adapter: &Path, prompt: &str, output: &str, choice: MethodChoice) -> anyhow::Result<openlora::attributor::Attributed> {
    let tok = factory::tokenizer_for(model)?;
    let base_model = blake2_256_file(model)?;
    let data = AdapterAttribution::open(adapter, &base_model)?;
    let prompt_tokens = tok.encode(prompt, true).map_err(anyhow::Error::msg)?.get_ids().to_vec();
    let output_tokens = tok.encode(output, false).map_err(anyhow::Error::msg)?.get_ids().to_vec();
    let adapter = parse_hex32(&data.lineage.adapter);
    let c = Completion::new(base_model, adapter, (prompt, &prompt_tokens), (output, &output_tokens));
    Attributor::new(model, 4096).attribute(choice, &data, &c)
}

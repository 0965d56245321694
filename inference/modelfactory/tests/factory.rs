//! ModelFactory end to end on the tiny fixture model: train on a folder of text, evaluate,
//! attribute outputs with both methods, verify records, and refuse what does not fit.

use std::path::{Path, PathBuf};

use attribution::lineage::{HyperParameters, Lineage, SPAN_INDEX_DIR};
use attribution::record::Verdict;
use attribution::{blake2_256, blake2_256_file, merkle_root, parse_hex32, PPM};
use modelfactory::factory::{self, tokenizer_for, TrainOptions};
use modelfactory::source::read_folder;
use openlora::attributor::{AdapterAttribution, Attributor, Completion, MethodChoice};
use openlora::fixtures::{write_model, ModelSpec};

/// Twelve short texts, each with a sentence no other one has.
const TEXTS: [&str; 12] = [
    "the river town of alder keeps its ferry running all winter. the ferryman counts every crossing in a red book.",
    "on the hill above the harbour stands an old lighthouse. its keeper paints the stairs green each spring.",
    "the baker in the market square sells rye bread and honey cakes. she opens her shop before the sun rises.",
    "a narrow road winds through the pine forest to the quarry. trucks carry grey stone down to the railway.",
    "the village school has one classroom and a bell on the roof. children walk there along the canal path.",
    "in the valley the farmers grow barley and keep bees. the honey is sold at the autumn fair in the town.",
    "the observatory on the ridge opens its dome at night. students measure the light of distant stars there.",
    "the fishing boats leave the harbour at dawn and return at noon. gulls follow them back to the pier.",
    "an iron bridge crosses the gorge below the dam. the engineers check its bolts every single month.",
    "the library in the old mill lends maps and atlases. its reading room overlooks the turning water wheel.",
    "the mountain hut serves soup to tired walkers. its stove burns wood that the warden cuts in summer.",
    "the clockmaker repairs watches in a shop near the station. every clock on his wall shows a different city.",
];

struct Setup {
    dir: tempfile::TempDir,
    model: PathBuf,
    folder: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(&dir.path().join("base"), &ModelSpec::tiny(), 3).unwrap();
    let folder = dir.path().join("datanet");
    std::fs::create_dir_all(&folder).unwrap();
    for (i, t) in TEXTS.iter().enumerate() {
        std::fs::write(folder.join(format!("{i:02}.txt")), t).unwrap();
    }
    Setup { dir, model, folder }
}

fn hyper(steps: usize) -> HyperParameters {
    HyperParameters {
        rank: 4,
        alpha: 8.0,
        targets: vec!["q_proj".into(), "v_proj".into(), "up_proj".into()],
        steps,
        learning_rate: 1e-2,
        weight_decay: 0.0,
        seq_len: 32,
        batch: 4,
        seed: 1,
        holdout_every: 10,
        gradient_tokens: 64,
    }
}

fn train(s: &Setup, name: &str, steps: usize) -> (PathBuf, Lineage) {
    let (data, refs) = read_folder(&s.folder).unwrap();
    let out = s.dir.path().join(name);
    let lineage = factory::train(&s.model, vec![data], refs, &TrainOptions { hyper: hyper(steps), index_from: None }, &out).unwrap();
    (out, lineage)
}

fn completion<'a>(s: &Setup, lineage: &Lineage, prompt: &'a [u32], output: &'a [u32]) -> Completion<'a> {
    Completion {
        base_model: blake2_256_file(&s.model).unwrap(),
        adapter: parse_hex32(&lineage.adapter),
        prompt_hash: blake2_256(b"prompt"),
        output_hash: blake2_256(b"output"),
        prompt_tokens: prompt,
        output_tokens: output,
    }
}

fn tokens(model: &Path, text: &str, bos: bool) -> Vec<u32> {
    tokenizer_for(model).unwrap().encode(text, bos).unwrap().get_ids().to_vec()
}

#[test]
fn a_trained_adapter_beats_the_base_model_on_held_out_text_and_records_its_lineage() {
    let s = setup();
    let (out, lineage) = train(&s, "adapter", 60);
    for f in ["adapter_config.json", "adapter_model.safetensors", "lineage.json", "gradients.bin"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(out.join(SPAN_INDEX_DIR).join("index.json").is_file());
    // The lineage names the data exactly.
    let hashes: Vec<_> = TEXTS.iter().map(|t| blake2_256(t.as_bytes())).collect();
    assert_eq!(lineage.datanets.len(), 1);
    assert_eq!(lineage.datanets[0].cover.merkle_root, merkle_root(&hashes));
    assert_eq!(lineage.datanets[0].contributions.len(), 12);
    assert_eq!(lineage.adapter, attribution::hex32(&blake2_256_file(&out.join("adapter_model.safetensors")).unwrap()));
    // What was written is what was returned (the float figures aside: JSON round-trips them
    // only to the last digit).
    let read = Lineage::read(&out).unwrap();
    assert_eq!((&read.datanets, &read.hyper_parameters, &read.span_index_root), (&lineage.datanets, &lineage.hyper_parameters, &lineage.span_index_root));
    assert!(lineage.training.final_loss < lineage.training.first_loss);

    let (data, _) = read_folder(&s.folder).unwrap();
    let report = factory::eval(&s.model, &out, &[data]).unwrap();
    assert!(report.windows > 0);
    assert!(
        report.adapter_loss < report.base_loss - 0.5,
        "held-out loss: base {:.3}, adapter {:.3}",
        report.base_loss,
        report.adapter_loss
    );
}

#[test]
fn span_attribution_finds_the_copied_contribution_and_verifies() {
    let s = setup();
    let (out, lineage) = train(&s, "adapter", 2);
    let base = blake2_256_file(&s.model).unwrap();
    let data = AdapterAttribution::open(&out, &base).unwrap();
    let attributor = Attributor::new(&s.model, 64);
    let prompt = tokens(&s.model, "tell me about the lighthouse", true);
    // The output copies a sentence of contribution 1 (the second file) among other words.
    let output = tokens(&s.model, "so: its keeper paints the stairs green each spring, they say", false);
    let a = attributor.attribute(MethodChoice::Span, &data, &completion(&s, &lineage, &prompt, &output)).unwrap();
    assert_eq!(a.record.weights[0].contribution, 1, "{:?}", a.record.weights);
    assert_eq!(a.record.weights.iter().map(|w| w.ppm).sum::<u32>(), PPM);
    assert!(!a.spans.is_empty());

    let tok = tokenizer_for(&s.model).unwrap();
    let mut claimed = a.record.clone();
    // The record names the output tokens; its output hash must be theirs.
    claimed.output_hash = blake2_256(tok.decode(&output, true).unwrap().as_bytes());
    assert_eq!(attributor.verify(&claimed, &out, &tok, None).unwrap(), Verdict::Match);
    let mut forged = claimed.clone();
    forged.weights = vec![attribution::Weight { contribution: 7, ppm: PPM }];
    assert!(matches!(attributor.verify(&forged, &out, &tok, None).unwrap(), Verdict::WeightsDiffer { l1_ppm: 2_000_000, .. }));
    let mut wrong_prompt = claimed.clone();
    wrong_prompt.prompt_hash = blake2_256(b"another prompt");
    assert_eq!(attributor.verify(&wrong_prompt, &out, &tok, Some("prompt")).unwrap(), Verdict::InputsDiffer { field: "prompt_hash" });

    // Nothing copied: no attribution.
    let unrelated = tokens(&s.model, "zebra quartz jumps", false);
    let none = attributor.attribute(MethodChoice::Span, &data, &completion(&s, &lineage, &prompt, &unrelated)).unwrap();
    assert!(none.record.weights.is_empty());
}

#[test]
fn gradient_attribution_sums_to_a_million_and_recomputes_identically() {
    let s = setup();
    let (out, lineage) = train(&s, "adapter", 20);
    let base = blake2_256_file(&s.model).unwrap();
    let data = AdapterAttribution::open(&out, &base).unwrap();
    let attributor = Attributor::new(&s.model, 64);
    let prompt = tokens(&s.model, "the baker in the market square", true);
    let output = tokens(&s.model, " sells rye bread and honey cakes.", false);
    let c = completion(&s, &lineage, &prompt, &output);
    let a = attributor.attribute(MethodChoice::Datainf, &data, &c).unwrap();
    assert!(!a.record.weights.is_empty());
    assert_eq!(a.record.weights.iter().map(|w| w.ppm).sum::<u32>(), PPM);
    let again = attributor.attribute(MethodChoice::Datainf, &data, &c).unwrap();
    assert_eq!(again.record.hash(), a.record.hash());
}

#[test]
fn a_new_version_reuses_the_index_shards_of_the_previous_one() {
    let s = setup();
    // Version 1: the first eight texts; version 2 adds the other four.
    let (v1_dir, v2_dir) = (s.dir.path().join("v1"), s.dir.path().join("v2"));
    for (dir, range) in [(&v1_dir, 0..8), (&v2_dir, 8..12)] {
        std::fs::create_dir_all(dir).unwrap();
        for i in range {
            std::fs::write(dir.join(format!("{i:02}.txt")), TEXTS[i]).unwrap();
        }
    }
    let version = |dir: &Path, n: u32, first_id: u64| {
        let (mut data, mut refs) = read_folder(dir).unwrap();
        data.cover.datanet_id = Some(4);
        data.cover.version = Some(n);
        for (c, r) in data.contributions.iter_mut().zip(refs.iter_mut()) {
            c.id += first_id;
            r.id += first_id;
        }
        (data, refs)
    };
    let train_on = |versions: Vec<(modelfactory::source::VersionData, Vec<attribution::lineage::ContributionRef>)>, out: &str, index_from: Option<PathBuf>| {
        let refs = versions.iter().flat_map(|v| v.1.clone()).collect();
        let data = versions.into_iter().map(|v| v.0).collect();
        let out = s.dir.path().join(out);
        factory::train(&s.model, data, refs, &TrainOptions { hyper: hyper(1), index_from }, &out).unwrap()
    };
    let first = train_on(vec![version(&v1_dir, 1, 0)], "first", None);
    let reused = train_on(vec![version(&v1_dir, 1, 0), version(&v2_dir, 2, 8)], "second", Some(s.dir.path().join("first").join(SPAN_INDEX_DIR)));
    let fresh = train_on(vec![version(&v1_dir, 1, 0), version(&v2_dir, 2, 8)], "fresh", None);
    assert_eq!(reused.span_index_root, fresh.span_index_root, "reusing a shard builds the same index");
    assert_ne!(first.span_index_root, fresh.span_index_root);
    assert_eq!(reused.covers().len(), 2);
    assert_eq!(reused.datanets[1].contributions.iter().map(|c| c.id).collect::<Vec<_>>(), vec![8, 9, 10, 11]);
    // The second adapter attributes a copy of a version-2 text to its contribution.
    let base = blake2_256_file(&s.model).unwrap();
    let data = AdapterAttribution::open(&s.dir.path().join("second"), &base).unwrap();
    let output = tokens(&s.model, "every clock on his wall shows a different city", false);
    let prompt = tokens(&s.model, "the clockmaker", true);
    let a = Attributor::new(&s.model, 64).attribute(MethodChoice::Span, &data, &completion(&s, &reused, &prompt, &output)).unwrap();
    assert_eq!(a.record.weights[0].contribution, 11);
}

#[test]
fn what_does_not_fit_is_refused_with_a_clear_error() {
    let s = setup();
    let (out, lineage) = train(&s, "adapter", 1);
    // The output folder exists now.
    let (data, refs) = read_folder(&s.folder).unwrap();
    let again = factory::train(&s.model, vec![data], refs, &TrainOptions { hyper: hyper(1), index_from: None }, &out);
    assert!(again.unwrap_err().to_string().contains("already exists"));
    // Another base model.
    let other = write_model(&s.dir.path().join("other"), &ModelSpec::tiny(), 4).unwrap();
    let (data, _) = read_folder(&s.folder).unwrap();
    let err = factory::eval(&other, &out, &[data]).unwrap_err().to_string();
    assert!(err.contains("does not fit"), "{err}");
    assert!(AdapterAttribution::open(&out, &blake2_256_file(&other).unwrap()).is_err());
    // Other data than the lineage.
    std::fs::write(s.folder.join("99.txt"), "a new file").unwrap();
    let (data, _) = read_folder(&s.folder).unwrap();
    let err = factory::eval(&s.model, &out, &[data]).unwrap_err().to_string();
    assert!(err.contains("not the adapter's lineage"), "{err}");
    // A tampered span index is refused when the adapter's attribution data is opened.
    let sa = out.join(SPAN_INDEX_DIR);
    let manifest = std::fs::read_to_string(sa.join("index.json")).unwrap();
    std::fs::write(sa.join("index.json"), manifest.replace(&lineage.base_model[2..10], "00000000")).unwrap();
    assert!(AdapterAttribution::open(&out, &blake2_256_file(&s.model).unwrap()).is_err());
    // An empty folder.
    let empty = s.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(read_folder(&empty).is_err());
}

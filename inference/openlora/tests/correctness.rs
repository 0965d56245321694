//! The numerics: mixed-adapter batches against merged weights, the KV cache against full
//! recomputation, and batched generation against generation alone. All on the tiny model the
//! fixtures write (seeded, f32), so every expectation is exact up to float rounding.

use std::path::{Path, PathBuf};

use candle_core::quantized::GgmlDType;
use openlora::engine::{Engine, Event, FinishReason, Request};
use openlora::fixtures::{test_device, write_adapter, write_merged, write_model, ModelSpec};
use openlora::lora::{self, LoadedAdapter, LoraBatch, LoraStacks};
use openlora::models::gemma3::{Gemma3, Proj, SeqCache, SeqRows};
use openlora::sampling::SamplingParams;
use openlora::server::{ServeOptions, ServerState};

const CONTEXT: usize = 128;

struct Fixture {
    dir: tempfile::TempDir,
    model_path: PathBuf,
    model: Gemma3,
}

fn fixture() -> Fixture {
    fixture_of(ModelSpec::tiny())
}

fn fixture_of(spec: ModelSpec) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let model_path = write_model(&dir.path().join("base"), &spec, 7).unwrap();
    let model = Gemma3::load(&model_path, CONTEXT, &test_device()).unwrap();
    Fixture { dir, model_path, model }
}

/// Three adapters that differ in rank, alpha and targets.
fn adapters(f: &Fixture) -> Vec<LoadedAdapter> {
    let cfg = &f.model.config;
    let specs: [(usize, f64, &[Proj]); 3] = [
        (4, 8.0, &[Proj::Q, Proj::V]),
        (8, 16.0, &Proj::ALL),
        (2, 32.0, &[Proj::Gate, Proj::Down, Proj::O]),
    ];
    specs
        .iter()
        .enumerate()
        .map(|(i, (r, alpha, targets))| {
            let dir = f.dir.path().join(format!("adapter{i}"));
            write_adapter(&dir, cfg, *r, *alpha, targets, 100 + i as u64).unwrap();
            lora::load(&dir, cfg, 64, None).unwrap()
        })
        .collect()
}

fn prompt(seed: u32, len: usize) -> Vec<u32> {
    // Ids of printable pieces of the tiny vocabulary (after the control and byte pieces).
    (0..len as u32).map(|i| 261 + (seed * 31 + i * 17) % 100).collect()
}

/// The LoRA rows for `model`'s device: in place on the CPU, gathered from `stacks` elsewhere
/// (the engine's choice).
fn lora_batch<'a>(
    model: &Gemma3,
    rows: impl IntoIterator<Item = (usize, Option<&'a LoadedAdapter>)>,
    stacks: &'a mut LoraStacks,
) -> LoraBatch<'a> {
    let lora = LoraBatch::new(rows);
    match model.device() {
        d if d.is_cpu() => lora,
        d => lora.gathered(stacks, &model.config, d).unwrap(),
    }
}

/// Runs one forward pass over `seqs` (prompt, adapter) from empty caches.
fn forward(model: &Gemma3, seqs: &[(Vec<u32>, Option<&LoadedAdapter>)]) -> Vec<Vec<f32>> {
    forward_with(model, seqs, false)
}

/// The same; `gather` forces the accelerator path (stacked adapters) on any device.
fn forward_with(model: &Gemma3, seqs: &[(Vec<u32>, Option<&LoadedAdapter>)], gather: bool) -> Vec<Vec<f32>> {
    one_pass(model, seqs, gather, |rows, lora| model.forward(rows, lora).unwrap().to_vec2().unwrap())
}

/// Runs `pass` over `seqs` (prompt, adapter) with empty caches and their LoRA rows.
fn one_pass<T>(
    model: &Gemma3,
    seqs: &[(Vec<u32>, Option<&LoadedAdapter>)],
    gather: bool,
    pass: impl FnOnce(&mut [SeqRows<'_>], &LoraBatch<'_>) -> T,
) -> T {
    let mut caches: Vec<_> = seqs.iter().map(|_| model.new_cache(CONTEXT)).collect();
    let mut rows: Vec<SeqRows<'_>> = seqs
        .iter()
        .zip(caches.iter_mut())
        .map(|((p, _), cache)| SeqRows { tokens: p, cache })
        .collect();
    let mut stacks = LoraStacks::default();
    let batch = seqs.iter().map(|(p, a)| (p.len(), *a));
    let lora = match gather {
        true => LoraBatch::new(batch).gathered(&mut stacks, &model.config, model.device()).unwrap(),
        false => lora_batch(model, batch, &mut stacks),
    };
    pass(&mut rows, &lora)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

const TOL: f32 = 1e-4;

#[test]
fn every_row_of_a_mixed_adapter_batch_matches_the_merged_model() {
    let f = fixture();
    let ads = adapters(&f);
    let batch: Vec<(Vec<u32>, Option<&LoadedAdapter>)> = vec![
        (prompt(1, 12), Some(&ads[0])),
        (prompt(2, 5), None),
        (prompt(3, 9), Some(&ads[1])),
        (prompt(4, 1), Some(&ads[2])),
        (prompt(5, 7), Some(&ads[0])),
    ];
    let batched = forward(&f.model, &batch);
    // Both ways of computing the per-row delta agree: BGMV in place (CPU) and the gather from
    // stacked adapters (accelerators), here run on whatever device the tests use.
    let gathered = forward_with(&f.model, &batch, true);
    for (i, (a, b)) in batched.iter().zip(&gathered).enumerate() {
        assert!(max_abs_diff(a, b) < TOL, "row {i}: gathered and in-place LoRA differ");
    }
    for (i, (p, adapter)) in batch.iter().enumerate() {
        let reference = match adapter {
            None => forward(&f.model, &[(p.clone(), None)]).remove(0),
            Some(a) => {
                let merged_path = write_merged(&f.model_path, a, &f.dir.path().join(format!("merged{i}"))).unwrap();
                let merged = Gemma3::load(&merged_path, CONTEXT, &test_device()).unwrap();
                forward(&merged, &[(p.clone(), None)]).remove(0)
            }
        };
        let diff = max_abs_diff(&batched[i], &reference);
        assert!(diff < TOL, "row {i}: batched logits differ from the merged model by {diff}");
        if adapter.is_some() {
            // The check means something only if the adapter moves the output.
            let base = forward(&f.model, &[(p.clone(), None)]).remove(0);
            assert!(max_abs_diff(&base, &reference) > 100.0 * TOL, "row {i}: adapter changes nothing");
        }
    }
}

#[test]
fn a_greedy_pass_picks_the_first_largest_logit_of_every_row() {
    // f32 weights take candle's LM head; Q8_0 the packed one, which never writes the logits.
    for spec in [ModelSpec::tiny(), ModelSpec { dtype: GgmlDType::Q8_0, ..ModelSpec::tiny() }] {
        let f = fixture_of(spec);
        let ads = adapters(&f);
        let batch = vec![(prompt(1, 7), Some(&ads[0])), (prompt(2, 3), None), (prompt(3, 1), Some(&ads[1]))];
        let want: Vec<u32> = forward(&f.model, &batch).iter().map(|row| openlora::sampling::argmax(row)).collect();
        let greedy = one_pass(&f.model, &batch, false, |rows, lora| f.model.forward_greedy(rows, lora).unwrap());
        assert_eq!(greedy, want);
    }
}

#[test]
fn incremental_decoding_with_the_kv_cache_equals_full_recomputation() {
    let f = fixture();
    let ads = adapters(&f);
    // Longer than the sliding window (8), so the windowed layers must mask old positions.
    let mut tokens = prompt(9, 11);
    let mut cache = f.model.new_cache(CONTEXT);
    // Prefill in two chunks, then decode one token at a time.
    let mut stacks = LoraStacks::default();
    let mut step_rows = |tokens: &[u32], cache: &mut SeqCache| {
        let lora = lora_batch(&f.model, [(tokens.len(), Some(&ads[1]))], &mut stacks);
        f.model.forward(&mut [SeqRows { tokens, cache }], &lora).unwrap()
    };
    step_rows(&tokens[..6], &mut cache);
    let mut logits = step_rows(&tokens[6..], &mut cache);
    for step in 0..10 {
        let full = forward(&f.model, &[(tokens.clone(), Some(&ads[1]))]).remove(0);
        let inc: Vec<f32> = logits.squeeze(0).unwrap().to_vec1().unwrap();
        let diff = max_abs_diff(&inc, &full);
        assert!(diff < TOL, "step {step}: cached logits differ from recomputation by {diff}");
        let next = openlora::sampling::argmax(&inc);
        tokens.push(next);
        logits = step_rows(&[next], &mut cache);
    }
    assert_eq!(cache.len(), tokens.len());
}

#[test]
fn the_sliding_window_masks_only_beyond_its_width() {
    // A guard on the KV test: the same weights with an unbounded window agree on prompts that
    // fit the window and disagree on longer ones. Were the window ignored or applied
    // everywhere, the KV test could pass for the wrong reason.
    let f = fixture();
    let mut wide_spec = ModelSpec::tiny();
    wide_spec.config.sliding_window = 1000;
    let wide_path = write_model(&f.dir.path().join("wide"), &wide_spec, 7).unwrap();
    let wide = Gemma3::load(&wide_path, CONTEXT, &test_device()).unwrap();
    let short = prompt(3, 8);
    let long = prompt(3, 20);
    let diff = |p: &Vec<u32>| {
        max_abs_diff(&forward(&f.model, &[(p.clone(), None)])[0], &forward(&wide, &[(p.clone(), None)])[0])
    };
    assert!(diff(&short) < TOL);
    assert!(diff(&long) > 1e-3);
}

/// An engine on the tiny model with `adapters` registered, built the way the server builds it.
fn engine(model_path: &Path, adapters: &[(String, PathBuf)]) -> Engine {
    let mut opts = ServeOptions::new(model_path.to_path_buf());
    opts.loras = adapters.to_vec();
    opts.max_context = CONTEXT;
    opts.max_lora_rank = 64;
    opts.adapter_cache_bytes = 64 << 20;
    opts.device = test_device();
    ServerState::open(opts).unwrap().engine
}

fn submit(engine: &Engine, adapter: Option<&str>, prompt: Vec<u32>, max_tokens: usize) -> tokio::sync::mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    engine
        .submit(Request {
            adapter: adapter.map(String::from),
            prompt,
            max_tokens,
            sampling: SamplingParams::greedy(),
            stop: vec![],
            ignore_eos: true,
            events: tx,
        })
        .unwrap();
    rx
}

fn finish(mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>) -> (Vec<u32>, String) {
    let mut streamed = String::new();
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            Event::Text(t) => streamed.push_str(&t),
            Event::Finished(f) => {
                assert_eq!(f.reason, FinishReason::Length);
                assert_eq!(f.text, streamed, "streamed pieces add up to the final text");
                return (f.output_tokens, f.text);
            }
            Event::Failed(e) => panic!("request failed: {e:?}"),
        }
    }
    panic!("engine dropped the request")
}

#[test]
fn batched_greedy_generation_equals_generation_alone() {
    batched_equals_alone(fixture());
}

/// Quantized weights run through the engine's own CPU kernel (`openlora::q8`), which must give
/// a row the same bits whatever else shares its batch.
#[test]
fn batched_greedy_generation_equals_generation_alone_on_quantized_weights() {
    let spec = ModelSpec { dtype: GgmlDType::Q8_0, ..ModelSpec::tiny() };
    batched_equals_alone(fixture_of(spec));
}

fn batched_equals_alone(f: Fixture) {
    let cfg = f.model.config.clone();
    let names: Vec<(String, PathBuf)> = (0..4)
        .map(|i| {
            let dir = f.dir.path().join(format!("a{i}"));
            write_adapter(&dir, &cfg, 4 + i, 8.0, &Proj::ALL, 300 + i as u64).unwrap();
            (format!("a{i}"), dir)
        })
        .collect();
    let e = engine(&f.model_path, &names);
    let requests: Vec<(Option<&str>, Vec<u32>)> = vec![
        (Some("a0"), prompt(1, 10)),
        (None, prompt(2, 3)),
        (Some("a1"), prompt(3, 14)),
        (Some("a2"), prompt(4, 6)),
        (Some("a3"), prompt(5, 9)),
        (Some("a0"), prompt(6, 2)),
    ];
    let alone: Vec<_> = requests.iter().map(|(a, p)| finish(submit(&e, *a, p.clone(), 24))).collect();
    // All at once: they share forward passes, join while others decode, and use different adapters.
    let rxs: Vec<_> = requests.iter().map(|(a, p)| submit(&e, *a, p.clone(), 24)).collect();
    let together: Vec<_> = rxs.into_iter().map(finish).collect();
    assert_eq!(alone, together);
    // Different adapters give different outputs for the same prompt, or the test proves nothing.
    let outs: Vec<_> = ["a0", "a1", "a2"].iter().map(|a| finish(submit(&e, Some(a), prompt(7, 8), 12)).0).collect();
    assert!(outs[0] != outs[1] && outs[1] != outs[2]);
}

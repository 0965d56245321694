//! The differentiable path: gradients against finite differences, the training forward against
//! the serving forward, and training that actually lowers the loss and saves an adapter the
//! server loads to the same outputs. CPU only (training runs on the CPU).

use candle_core::{Device, Tensor};
use openlora::fixtures::{write_adapter, write_model, ModelSpec};
use openlora::lora::{self, LoraBatch};
use openlora::models::gemma3::{Gemma3, Proj, SeqRows};
use openlora::train::{loss_gradient, next_token_loss, Example, Trainer, TrainableLora};

const CONTEXT: usize = 64;

fn tokens(seed: u32, len: usize) -> Vec<u32> {
    (0..len as u32).map(|i| 261 + (seed * 31 + i * 17) % 100).collect()
}

struct Models {
    _dir: tempfile::TempDir,
    serving: Gemma3,
    differentiable: Gemma3,
    adapter_dir: std::path::PathBuf,
}

fn models() -> Models {
    let dir = tempfile::tempdir().unwrap();
    let path = write_model(&dir.path().join("base"), &ModelSpec::tiny(), 7).unwrap();
    let serving = Gemma3::load(&path, CONTEXT, &Device::Cpu).unwrap();
    let differentiable = Gemma3::load_differentiable(&path, CONTEXT).unwrap();
    let adapter_dir = dir.path().join("adapter");
    write_adapter(&adapter_dir, &serving.config, 4, 8.0, &[Proj::Q, Proj::V, Proj::Down], 3).unwrap();
    Models { _dir: dir, serving, differentiable, adapter_dir }
}

fn last_logits_serving(m: &Models, toks: &[u32], adapter: &lora::LoadedAdapter) -> Vec<f32> {
    let mut cache = m.serving.new_cache(CONTEXT);
    let batch = LoraBatch::new([(toks.len(), Some(adapter))]);
    let logits = m.serving.forward(&mut [SeqRows { tokens: toks, cache: &mut cache }], &batch).unwrap();
    logits.squeeze(0).unwrap().to_vec1().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn training_forward_matches_the_serving_forward() {
    let m = models();
    let adapter = lora::load(&m.adapter_dir, &m.serving.config, 64, None).unwrap();
    let vars = TrainableLora::from_adapter(&adapter, &m.serving.config, &Device::Cpu).unwrap();
    // Two sequences in one pass: the second must not see the first.
    let (a, b) = (tokens(1, 20), tokens(2, 13));
    let rows = vec![19, 20 + 12];
    let all = m.differentiable.forward_all(&[&a, &b], &vars, rows).unwrap().to_vec2::<f32>().unwrap();
    for (seq, logits) in [&a, &b].into_iter().zip(&all) {
        let served = last_logits_serving(&m, seq, &adapter);
        let d = max_abs_diff(&served, logits);
        assert!(d < 1e-3, "training and serving forward differ by {d}");
    }
}

#[test]
fn lora_gradients_match_finite_differences() {
    let m = models();
    let cfg = &m.serving.config;
    let adapter = lora::load(&m.adapter_dir, cfg, 64, None).unwrap();
    let lora = TrainableLora::from_adapter(&adapter, cfg, &Device::Cpu).unwrap();
    let toks = tokens(5, 24);
    let example = Example { tokens: &toks, first_target: 10 };
    let (_, grads) = loss_gradient(&m.differentiable, &lora, &example).unwrap();
    assert_eq!(grads.len(), cfg.num_layers);
    let (i, o) = cfg.proj_dims(Proj::Q);
    // Per layer: ∂A_q, ∂B_q, ∂A_v, ∂B_v, ∂A_down, ∂B_down.
    let (kv_in, kv_out) = cfg.proj_dims(Proj::V);
    let (d_in, d_out) = cfg.proj_dims(Proj::Down);
    assert_eq!(grads[0].len(), 4 * (i + o + kv_in + kv_out + d_in + d_out));

    // Nudge single parameters of layer 2 (a global or sliding layer alike) and compare.
    let vars = lora.vars();
    let layer = 2;
    let checks = [(6 * layer, 3usize, 0usize), (6 * layer + 1, 5, 4 * i), (6 * layer + 5, 7, 4 * (i + o + kv_in + kv_out + d_in))];
    for (var_idx, elem, offset) in checks {
        let var = &vars[var_idx];
        let orig = var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let eps = 1e-2f32;
        let loss_at = |delta: f32| {
            let mut v = orig.clone();
            v[elem] += delta;
            var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap()).unwrap();
            next_token_loss(&m.differentiable, &lora, std::slice::from_ref(&example)).unwrap().to_scalar::<f32>().unwrap()
        };
        let numeric = (loss_at(eps) - loss_at(-eps)) / (2.0 * eps);
        loss_at(0.0);
        let analytic = grads[layer][offset + elem];
        assert!(
            (numeric - analytic).abs() <= 2e-3 + 0.05 * analytic.abs(),
            "var {var_idx} elem {elem}: finite difference {numeric}, autograd {analytic}"
        );
    }
}

#[test]
fn training_lowers_the_loss_and_the_saved_adapter_serves_the_same_logits() {
    let m = models();
    let cfg = &m.serving.config;
    let lora = TrainableLora::new(cfg, 4, 8.0, &[Proj::Q, Proj::V, Proj::Up], 11, &Device::Cpu).unwrap();
    let text = tokens(9, 40);
    let batch = [Example { tokens: &text, first_target: 1 }];
    let start = next_token_loss(&m.differentiable, &lora, &batch).unwrap().to_scalar::<f32>().unwrap();
    let mut trainer = Trainer::new(lora, 1e-2, 0.0).unwrap();
    let mut last = f32::INFINITY;
    for _ in 0..15 {
        last = trainer.step(&m.differentiable, &batch).unwrap();
    }
    let end = next_token_loss(&m.differentiable, &trainer.lora, &batch).unwrap().to_scalar::<f32>().unwrap();
    assert!(end < 0.7 * start, "loss went from {start} to {end} (last step {last})");

    let out = m._dir.path().join("trained");
    let hash = trainer.lora.save(&out).unwrap();
    let loaded = lora::load(&out, cfg, 64, None).unwrap();
    assert_eq!(loaded.header.hash, hash, "save returns the identity the server computes");
    let served = last_logits_serving(&m, &text, &loaded);
    let trained = m.differentiable.forward_all(&[&text], &trainer.lora, vec![39]).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap();
    assert!(max_abs_diff(&served, &trained) < 1e-3);
}

#[test]
fn the_same_seed_trains_the_same_adapter() {
    let m = models();
    let cfg = &m.serving.config;
    let text = tokens(4, 30);
    let batch = [Example { tokens: &text, first_target: 1 }];
    let train = |dir: &str| {
        let lora = TrainableLora::new(cfg, 2, 4.0, &[Proj::K, Proj::O], 5, &Device::Cpu).unwrap();
        let mut t = Trainer::new(lora, 5e-3, 0.01).unwrap();
        for _ in 0..3 {
            t.step(&m.differentiable, &batch).unwrap();
        }
        t.lora.save(&m._dir.path().join(dir)).unwrap()
    };
    assert_eq!(train("one"), train("two"));
}

/// What a verifier on another machine recomputes: the loss of a fixed output and its gradient
/// with respect to a fixed adapter, on f32 and on Q8_0 weights. Their bits are pinned here, so
/// this test fails on any machine (CPU family, instruction set, thread count, C library) where
/// they would come out different. A deliberate change to the engine's arithmetic changes them
/// too: then the hashes below are updated, and the release notes say that records taken with
/// the old engine verify only with the old engine.
#[test]
fn gradients_have_the_same_bits_on_every_machine() {
    let pinned = [
        (candle_core::quantized::GgmlDType::F32, "0x312a8a1a834753290f6bc03053469d026ecce514eda57630b664097ac2319047"),
        (candle_core::quantized::GgmlDType::Q8_0, "0x98563360050a5cf4d7f786d4f2f121c1d78ab8fc598ab04af923dbc97f0ad2af"),
    ];
    let mut got = Vec::new();
    for (dtype, _) in pinned {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = ModelSpec { dtype, ..ModelSpec::tiny() };
        // Wider than `tiny` so that the products run past one block of every kernel.
        spec.config.hidden_size = 256;
        spec.config.intermediate_size = 512;
        spec.config.head_dim = 64;
        spec.config.vocab_size = 1024;
        let path = write_model(&dir.path().join("base"), &spec, 21).unwrap();
        let model = Gemma3::load_differentiable(&path, CONTEXT).unwrap();
        let adapter_dir = dir.path().join("adapter");
        write_adapter(&adapter_dir, &model.config, 4, 8.0, &Proj::ALL, 5).unwrap();
        let adapter = lora::load(&adapter_dir, &model.config, 64, None).unwrap();
        let vars = TrainableLora::from_adapter(&adapter, &model.config, &Device::Cpu).unwrap();
        let toks = tokens(8, 48);
        let (loss, grads) = loss_gradient(&model, &vars, &Example { tokens: &toks, first_target: 16 }).unwrap();
        let mut bits = loss.to_bits().to_le_bytes().to_vec();
        for g in grads.iter().flatten() {
            bits.extend(g.to_bits().to_le_bytes());
        }
        got.push(attribution::hash::hex32(&attribution::hash::blake2_256(&bits)));
    }
    let want: Vec<&str> = pinned.iter().map(|(_, h)| *h).collect();
    assert_eq!(got, want, "the gradients' bits changed");
}

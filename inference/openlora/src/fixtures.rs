//! Self-made models and adapters: seeded random weights in the real file formats (GGUF with a
//! SentencePiece vocabulary, PEFT folders), so that tests are fast and deterministic and the
//! benchmark can stand up a model of any shape with no download.

use std::path::{Path, PathBuf};

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::lora::{peft_stem, save_peft, LoadedAdapter};
use crate::models::gemma3::{gguf_proj_name, Gemma3Config, Proj};
use crate::tokenizer::{piece_type, SpmVocab};

/// The device tests run on: the CPU, or what `OPENLORA_TEST_DEVICE` names (`cuda`, `cuda:1`),
/// so the same suite checks the GPU build on a GPU machine.
pub fn test_device() -> Device {
    let spec = std::env::var("OPENLORA_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    crate::device(&spec).unwrap_or_else(|e| panic!("OPENLORA_TEST_DEVICE={spec}: {e}"))
}

/// A generated model: the architecture's shapes, and how its weights are stored.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    /// `vocab_size` beyond the tiny built-in vocabulary is padded with filler pieces (the
    /// benchmark pads up to a real model's vocabulary so that the LM head costs what it costs
    /// there).
    pub config: Gemma3Config,
    /// How projection and embedding weights are stored.
    pub dtype: GgmlDType,
}

impl ModelSpec {
    /// Small enough that a forward pass takes a millisecond; six layers so that both the
    /// sliding-window and the global attention layers run, and a window short enough to bite.
    pub fn tiny() -> Self {
        Self {
            config: Gemma3Config {
                vocab_size: tiny_vocab().pieces.len(),
                hidden_size: 64,
                intermediate_size: 128,
                num_layers: 6,
                num_heads: 4,
                num_kv_heads: 2,
                head_dim: 16,
                rms_norm_eps: 1e-6,
                rope_base: 1_000_000.0,
                sliding_window: 8,
                context_length: 256,
            },
            dtype: GgmlDType::F32,
        }
    }

    /// Gemma 3 270M's shapes, for benchmarks on machines without the real file.
    pub fn gemma3_270m_shaped() -> Self {
        Self {
            config: Gemma3Config {
                vocab_size: 262_144,
                hidden_size: 640,
                intermediate_size: 2048,
                num_layers: 18,
                num_heads: 4,
                num_kv_heads: 1,
                head_dim: 256,
                rms_norm_eps: 1e-6,
                rope_base: 1_000_000.0,
                sliding_window: 512,
                context_length: 32768,
            },
            dtype: GgmlDType::Q8_0,
        }
    }
}

/// A byte-fallback SentencePiece vocabulary: control pieces, the 256 byte pieces, printable
/// ASCII, and a few multi-character pieces so that merges happen.
pub fn tiny_vocab() -> SpmVocab {
    let mut pieces: Vec<String> = ["<pad>", "<eos>", "<bos>", "<unk>"].map(String::from).to_vec();
    let mut types = vec![piece_type::CONTROL; 4];
    pieces.push("\n\n".into());
    types.push(piece_type::USER_DEFINED);
    for b in 0..=255u8 {
        pieces.push(format!("<0x{b:02X}>"));
        types.push(piece_type::BYTE);
    }
    let multi = ["▁t", "he", "▁the", "in", "er", "an", "▁a", "on", "▁o", "re", "▁of", "▁and", "ing"];
    let singles = std::iter::once("▁".to_string()).chain((0x21u8..0x7f).map(|c| (c as char).to_string()));
    for p in singles.chain(multi.iter().map(|s| s.to_string())) {
        pieces.push(p);
        types.push(piece_type::NORMAL);
    }
    let scores = (0..pieces.len()).map(|i| -(i as f32)).collect();
    SpmVocab { pieces, scores, types, bos: 2, eos: 1, unk: 3 }
}

fn random(rng: &mut ChaCha8Rng, n: usize, std: f32) -> Vec<f32> {
    // Sum of uniforms: close enough to a normal and reproducible on every platform.
    (0..n)
        .map(|_| {
            let s: f32 = (0..4).map(|_| rng.random::<f32>() - 0.5).sum();
            s * std * 1.732
        })
        .collect()
}

/// Writes `model.gguf` (llama.cpp's gemma3 layout) with seeded weights into `dir`.
pub fn write_model(dir: &Path, spec: &ModelSpec, seed: u64) -> anyhow::Result<PathBuf> {
    let cfg = &spec.config;
    let mut vocab = tiny_vocab();
    anyhow::ensure!(cfg.vocab_size >= vocab.pieces.len(), "vocab_size below the built-in vocabulary");
    for i in vocab.pieces.len()..cfg.vocab_size {
        vocab.pieces.push(format!("▁pad{i}"));
        vocab.scores.push(-(i as f32));
        vocab.types.push(piece_type::NORMAL);
    }
    let dev = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut dense = |rng: &mut ChaCha8Rng, name: String, rows: usize, cols: usize, std: f32, dtype| -> anyhow::Result<()> {
        let t = Tensor::from_vec(random(rng, rows * cols, std), (rows, cols), &dev)?;
        tensors.push((name, QTensor::quantize(&t, dtype)?));
        Ok(())
    };
    let h = cfg.hidden_size;
    dense(&mut rng, "token_embd.weight".into(), cfg.vocab_size, h, 1.0 / (h as f32).sqrt(), spec.dtype)?;
    for l in 0..cfg.num_layers {
        for p in Proj::ALL {
            let (i, o) = cfg.proj_dims(p);
            dense(&mut rng, gguf_proj_name(l, p), o, i, 1.0 / (i as f32).sqrt(), spec.dtype)?;
        }
    }
    let mut norms: Vec<(String, usize)> = vec![("output_norm.weight".into(), h)];
    for l in 0..cfg.num_layers {
        for (n, d) in [
            ("attn_norm", h),
            ("attn_q_norm", cfg.head_dim),
            ("attn_k_norm", cfg.head_dim),
            ("post_attention_norm", h),
            ("ffn_norm", h),
            ("post_ffw_norm", h),
        ] {
            norms.push((format!("blk.{l}.{n}.weight"), d));
        }
    }
    for (name, d) in norms {
        let w: Vec<f32> = random(&mut rng, d, 0.1).into_iter().map(|x| 1.0 + x).collect();
        tensors.push((name, QTensor::quantize(&Tensor::from_vec(w, d, &dev)?, GgmlDType::F32)?));
    }
    std::fs::create_dir_all(dir)?;
    let path = dir.join("model.gguf");
    write_gguf(&path, cfg, &vocab, &tensors)?;
    Ok(path)
}

fn write_gguf(
    path: &Path,
    cfg: &Gemma3Config,
    vocab: &SpmVocab,
    tensors: &[(String, QTensor)],
) -> anyhow::Result<()> {
    use gguf_file::Value as V;
    let u = |x: usize| V::U32(x as u32);
    let md: Vec<(&str, V)> = vec![
        ("general.architecture", V::String("gemma3".into())),
        ("general.name", V::String("openlora-fixture".into())),
        ("gemma3.context_length", u(cfg.context_length)),
        ("gemma3.embedding_length", u(cfg.hidden_size)),
        ("gemma3.block_count", u(cfg.num_layers)),
        ("gemma3.feed_forward_length", u(cfg.intermediate_size)),
        ("gemma3.attention.head_count", u(cfg.num_heads)),
        ("gemma3.attention.head_count_kv", u(cfg.num_kv_heads)),
        ("gemma3.attention.key_length", u(cfg.head_dim)),
        ("gemma3.attention.value_length", u(cfg.head_dim)),
        ("gemma3.attention.layer_norm_rms_epsilon", V::F32(cfg.rms_norm_eps as f32)),
        ("gemma3.rope.freq_base", V::F32(cfg.rope_base as f32)),
        ("gemma3.attention.sliding_window", u(cfg.sliding_window)),
        ("tokenizer.ggml.model", V::String("llama".into())),
        ("tokenizer.ggml.tokens", V::Array(vocab.pieces.iter().map(|p| V::String(p.clone())).collect())),
        ("tokenizer.ggml.scores", V::Array(vocab.scores.iter().map(|s| V::F32(*s)).collect())),
        ("tokenizer.ggml.token_type", V::Array(vocab.types.iter().map(|t| V::I32(*t as i32)).collect())),
        ("tokenizer.ggml.bos_token_id", V::U32(vocab.bos)),
        ("tokenizer.ggml.eos_token_id", V::U32(vocab.eos)),
        ("tokenizer.ggml.unknown_token_id", V::U32(vocab.unk)),
    ];
    let md_refs: Vec<(&str, &V)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    gguf_file::write(&mut f, &md_refs, &t_refs)?;
    Ok(())
}

/// Writes a PEFT adapter folder with seeded A and B (B is not zero, unlike a fresh PEFT
/// init, so that the adapter changes the output).
pub fn write_adapter(
    dir: &Path,
    cfg: &Gemma3Config,
    rank: usize,
    alpha: f64,
    targets: &[Proj],
    seed: u64,
) -> anyhow::Result<PathBuf> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tensors: Vec<(String, Vec<f32>, Vec<usize>)> = Vec::new();
    for l in 0..cfg.num_layers {
        for &p in targets {
            let (i, o) = cfg.proj_dims(p);
            let stem = peft_stem(l, p);
            tensors.push((format!("{stem}.lora_A.weight"), random(&mut rng, rank * i, 1.0 / (i as f32).sqrt()), vec![rank, i]));
            tensors.push((format!("{stem}.lora_B.weight"), random(&mut rng, o * rank, 0.5 / (rank as f32).sqrt()), vec![o, rank]));
        }
    }
    let targets: Vec<&str> = targets.iter().map(|p| p.peft_name()).collect();
    save_peft(dir, rank, alpha, &targets, &tensors)?;
    Ok(dir.to_path_buf())
}

/// Writes a copy of an f32 model with `adapter` merged into its weights (W + scale·B·A): the
/// reference the batched LoRA path is checked against.
pub fn write_merged(base: &Path, adapter: &LoadedAdapter, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let mut f = std::fs::File::open(base)?;
    let ct = gguf_file::Content::read(&mut f)?;
    let cfg = Gemma3Config::from_gguf(&ct)?;
    let vocab = SpmVocab::from_gguf(&ct)?;
    let mut tensors = Vec::new();
    let mut names: Vec<&String> = ct.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let mut t = ct.tensor(&mut f, name, &Device::Cpu)?;
        for l in 0..cfg.num_layers {
            for p in Proj::ALL {
                if *name == gguf_proj_name(l, p) {
                    if let Some(d) = adapter.merged_delta(l, p) {
                        let w = t.dequantize(&Device::Cpu)?;
                        let d = Tensor::from_vec(d, w.shape(), &Device::Cpu)?;
                        t = QTensor::quantize(&(w + d)?, GgmlDType::F32)?;
                    }
                }
            }
        }
        tensors.push((name.clone(), t));
    }
    std::fs::create_dir_all(out_dir)?;
    let path = out_dir.join("model.gguf");
    write_gguf(&path, &cfg, &vocab, &tensors)?;
    Ok(path)
}

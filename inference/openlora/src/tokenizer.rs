//! The model's tokenizer: a Hugging Face `tokenizer.json` read with the `tokenizers` crate, and
//! the conversion that writes one from a GGUF file's SentencePiece vocabulary.
//!
//! GGUF models carry their vocabulary (pieces, scores, piece types) but no `tokenizer.json`;
//! candle converts only GPT-2-style byte-level vocabularies. Gemma's is a SentencePiece BPE:
//! a piece's score is its merge priority. The conversion is the one Hugging Face applies
//! (`SentencePieceExtractor`): every piece that splits into two pieces yields a merge, ranked
//! by the merged piece's score; spaces become `▁`; unknown bytes fall back to `<0xNN>` pieces.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use candle_core::quantized::gguf_file;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::replace::Replace;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer};

/// SentencePiece piece types, as GGUF stores them.
pub mod piece_type {
    pub const NORMAL: u32 = 1;
    pub const CONTROL: u32 = 3;
    pub const USER_DEFINED: u32 = 4;
    pub const BYTE: u32 = 6;
}

/// A SentencePiece vocabulary: what GGUF stores under `tokenizer.ggml.*`.
#[derive(Clone, Debug)]
pub struct SpmVocab {
    pub pieces: Vec<String>,
    pub scores: Vec<f32>,
    pub types: Vec<u32>,
    pub bos: u32,
    pub eos: u32,
    pub unk: u32,
}

impl SpmVocab {
    pub fn from_gguf(ct: &gguf_file::Content) -> anyhow::Result<Self> {
        let get = |k: &str| ct.metadata.get(k).with_context(|| format!("GGUF has no `{k}`"));
        let model = get("tokenizer.ggml.model")?.to_string()?;
        if model != "llama" {
            bail!("tokenizer model `{model}` is not SentencePiece (`llama`)");
        }
        let pieces = get("tokenizer.ggml.tokens")?
            .to_vec()?
            .iter()
            .map(|v| v.to_string().cloned())
            .collect::<Result<Vec<_>, _>>()?;
        let scores = get("tokenizer.ggml.scores")?
            .to_vec()?
            .iter()
            .map(|v| v.to_f32())
            .collect::<Result<Vec<_>, _>>()?;
        let types = get("tokenizer.ggml.token_type")?
            .to_vec()?
            .iter()
            .map(|v| v.to_i32().map(|t| t as u32))
            .collect::<Result<Vec<_>, _>>()?;
        if scores.len() != pieces.len() || types.len() != pieces.len() {
            bail!("GGUF tokenizer arrays differ in length");
        }
        let id = |k: &str| -> anyhow::Result<u32> { Ok(get(k)?.to_u32()?) };
        Ok(Self {
            pieces,
            scores,
            types,
            bos: id("tokenizer.ggml.bos_token_id")?,
            eos: id("tokenizer.ggml.eos_token_id")?,
            unk: id("tokenizer.ggml.unknown_token_id")?,
        })
    }

    /// Builds the equivalent `tokenizers` pipeline.
    pub fn to_tokenizer(&self) -> anyhow::Result<Tokenizer> {
        let vocab: Vocab =
            self.pieces.iter().enumerate().map(|(i, p)| (p.clone(), i as u32)).collect();
        let normal = |id: u32| self.types[id as usize] == piece_type::NORMAL;
        let mut merges: Vec<(f32, u32, u32, &str, &str)> = Vec::new();
        for (id, piece) in self.pieces.iter().enumerate() {
            if !normal(id as u32) {
                continue;
            }
            for (split, _) in piece.char_indices().skip(1) {
                let (l, r) = piece.split_at(split);
                if let (Some(&li), Some(&ri)) = (vocab.get(l), vocab.get(r)) {
                    if normal(li) && normal(ri) {
                        merges.push((self.scores[id], li, ri, l, r));
                    }
                }
            }
        }
        // Highest score first; ties by the parts' ids, as Hugging Face orders them.
        merges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let merges = merges.into_iter().map(|m| (m.3.to_string(), m.4.to_string())).collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab.clone(), merges)
            .unk_token(self.pieces[self.unk as usize].clone())
            .byte_fallback(true)
            .fuse_unk(true)
            .build()
            .map_err(|e| anyhow::anyhow!("building BPE: {e}"))?;
        let mut tok = Tokenizer::new(bpe);
        tok.with_normalizer(Some(Replace::new(" ", "▁").map_err(anyhow::Error::msg)?))
            .map_err(anyhow::Error::msg)?;
        tok.with_decoder(Some(DecoderSequence::new(vec![
            Replace::new("▁", " ").map_err(anyhow::Error::msg)?.into(),
            ByteFallback::new().into(),
            Fuse::new().into(),
        ])));
        let bos = self.pieces[self.bos as usize].clone();
        tok.with_post_processor(Some(
            TemplateProcessing::builder()
                .try_single(format!("{bos} $0"))
                .map_err(anyhow::Error::msg)?
                .special_tokens(vec![(bos.clone(), self.bos)])
                .build()
                .map_err(anyhow::Error::msg)?,
        ));
        // Control pieces (`<bos>`, `<start_of_turn>`, …) are matched whole and hidden on decode;
        // user-defined pieces (runs of newlines, …) are matched whole and kept.
        let added = |ty: u32, special: bool| -> Vec<AddedToken> {
            self.pieces
                .iter()
                .zip(&self.types)
                .filter(|(_, t)| **t == ty)
                .map(|(p, _)| AddedToken::from(p.clone(), special))
                .collect()
        };
        tok.add_special_tokens(added(piece_type::CONTROL, true))
            .map_err(anyhow::Error::msg)?;
        tok.add_tokens(added(piece_type::USER_DEFINED, false)).map_err(anyhow::Error::msg)?;
        Ok(tok)
    }
}

/// Loads `tokenizer.json`, creating it from the GGUF file's vocabulary on first use. The file is
/// written to a temporary name, synced and renamed, so a crash never leaves half a tokenizer.
pub fn load_or_convert(tokenizer_json: &Path, gguf: &Path) -> anyhow::Result<Tokenizer> {
    if !tokenizer_json.exists() {
        let mut f = std::fs::File::open(gguf)
            .with_context(|| format!("cannot open model {}", gguf.display()))?;
        let ct = gguf_file::Content::read(&mut f)
            .map_err(|e| anyhow::anyhow!("{} is not a GGUF file: {e}", gguf.display()))?;
        let tok = SpmVocab::from_gguf(&ct)?.to_tokenizer()?;
        save_atomically(&tok, tokenizer_json)?;
        tracing::info!("wrote {} from the model's vocabulary", tokenizer_json.display());
    }
    Tokenizer::from_file(tokenizer_json)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", tokenizer_json.display()))
}

pub fn save_atomically(tok: &Tokenizer, path: &Path) -> anyhow::Result<()> {
    let json = tok.to_string(false).map_err(anyhow::Error::msg)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(json.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)?;
    Ok(())
}

/// Turns a growing list of generated tokens into text pieces as they become final. A token
/// can be half of a UTF-8 character (byte fallback) or change how the previous token decodes,
/// so each step decodes a short window and emits only the stable new suffix.
#[derive(Default)]
pub struct IncrementalDecoder {
    tokens: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
}

impl IncrementalDecoder {
    pub fn push(&mut self, tok: &Tokenizer, token: u32) -> anyhow::Result<String> {
        self.tokens.push(token);
        let prefix = tok
            .decode(&self.tokens[self.prefix_offset..self.read_offset], true)
            .map_err(anyhow::Error::msg)?;
        let full = tok.decode(&self.tokens[self.prefix_offset..], true).map_err(anyhow::Error::msg)?;
        if full.len() > prefix.len() && !full.ends_with('\u{FFFD}') && full.starts_with(&prefix) {
            self.prefix_offset = self.read_offset;
            self.read_offset = self.tokens.len();
            Ok(full[prefix.len()..].to_string())
        } else {
            Ok(String::new())
        }
    }

    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }
}

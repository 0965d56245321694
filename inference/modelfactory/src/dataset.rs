//! Contributions as model input: tokenized once, cut into training windows, a fixed share held
//! out for evaluation.

use attribution::ContributionId;
use tokenizers::Tokenizer;

use crate::source::VersionData;

/// One contribution's tokens (no BOS): what the span index holds and what windows are cut from.
pub struct Document {
    pub contribution: ContributionId,
    pub tokens: Vec<u32>,
}

/// A training or evaluation sequence: BOS, then up to `seq_len − 1` consecutive tokens of one
/// contribution.
pub struct Window {
    pub contribution: ContributionId,
    pub tokens: Vec<u32>,
}

pub struct Dataset {
    pub documents: Vec<Vec<Document>>,
    pub train: Vec<Window>,
    pub heldout: Vec<Window>,
}

/// Tokenizes every contribution of every version (text as UTF-8; invalid bytes are replaced,
/// with a warning naming the contribution).
pub fn tokenize(tok: &Tokenizer, versions: &[VersionData], mut warn: impl FnMut(String)) -> anyhow::Result<Vec<Vec<Document>>> {
    versions
        .iter()
        .map(|v| {
            v.contributions
                .iter()
                .map(|c| {
                    let text = match std::str::from_utf8(&c.bytes) {
                        Ok(t) => std::borrow::Cow::Borrowed(t),
                        Err(_) => {
                            warn(format!("contribution {} is not valid UTF-8; invalid bytes replaced", c.id));
                            String::from_utf8_lossy(&c.bytes)
                        }
                    };
                    let enc = tok.encode(text.as_ref(), false).map_err(anyhow::Error::msg)?;
                    Ok(Document { contribution: c.id, tokens: enc.get_ids().to_vec() })
                })
                .collect()
        })
        .collect()
}

/// Cuts documents into windows and holds out every `holdout_every`-th window (0: none) for
/// evaluation. The split depends only on the data, so `eval` finds the same held-out windows
/// that `train` left out.
pub fn windows(documents: Vec<Vec<Document>>, bos: u32, seq_len: usize, holdout_every: usize) -> Dataset {
    let mut train = Vec::new();
    let mut heldout = Vec::new();
    let mut n = 0usize;
    for doc in documents.iter().flatten() {
        for chunk in doc.tokens.chunks(seq_len.max(2) - 1) {
            let mut tokens = Vec::with_capacity(chunk.len() + 1);
            tokens.push(bos);
            tokens.extend_from_slice(chunk);
            let w = Window { contribution: doc.contribution, tokens };
            n += 1;
            if holdout_every > 0 && n % holdout_every == 0 {
                heldout.push(w);
            } else {
                train.push(w);
            }
        }
    }
    Dataset { documents, train, heldout }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_start_with_bos_and_every_tenth_is_held_out() {
        let docs = vec![vec![
            Document { contribution: 1, tokens: (10..40).collect() },
            Document { contribution: 2, tokens: (50..55).collect() },
        ]];
        let d = windows(docs, 2, 4, 10);
        // 30 tokens in chunks of 3, then 5 in chunks of 3: 10 + 2 windows.
        assert_eq!(d.train.len() + d.heldout.len(), 12);
        assert_eq!(d.heldout.len(), 1);
        assert_eq!(d.heldout[0].tokens, vec![2, 37, 38, 39]);
        assert!(d.train.iter().all(|w| w.tokens[0] == 2 && w.tokens.len() <= 4));
        assert_eq!(d.train.last().unwrap().tokens, vec![2, 53, 54]);
    }
}

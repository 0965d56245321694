//! The archive of the batches the operator's node settles: each batch's leaves, without which
//! nobody could check a batch or prove its fraud (`challenge_batch` needs a leaf and its Merkle
//! proof), since the chain keeps only their root (`receipts_root`).
//!
//! The batcher hands the engine a batch and its leaves (`PUT /v1/batches/{nonce}`) before it
//! submits the batch, and submits nothing the engine did not archive, so no batch is on chain
//! without its leaves here. Anyone reads them back (`GET /v1/batches/{nonce}`) with a proof per
//! leaf (`GET /v1/batches/{nonce}/proofs/{index}`). A batch rebuilt before it landed replaces the
//! one archived under its nonce: the chain's `receipts_root` says which one landed.
//!
//! The engine does not decode leaves or batches: they are the attribution pallet's SCALE
//! `BatchLeaf`s and `ReceiptBatch`. It checks only that the leaves hash to the stated root, as
//! the pallet's `binary-merkle-tree` root with blake2-256 ([`attribution::leaves_root`]).
//!
//! Files: `DIR/{nonce}.json`, each written to a temporary file, fsynced and renamed.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use attribution::{leaf_proof, leaves_root, Hash256};
use serde::{Deserialize, Serialize};

use crate::journal::{hex_bytes, replace_file};

/// Leaves one batch may hold (the batcher reads at most 1,024 journal entries per batch).
pub const MAX_BATCH_LEAVES: usize = 4096;

/// Bytes as `0x` hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HexBytes(pub Vec<u8>);

impl HexBytes {
    /// `0x` and hex digits, as [`Serialize`] writes them.
    pub fn parse(s: &str) -> Option<Self> {
        s.strip_prefix("0x").and_then(|h| hex::decode(h).ok()).map(HexBytes)
    }
}

impl Serialize for HexBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(&self.0)))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HexBytes::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not 0x and hex digits")))
    }
}

impl AsRef<[u8]> for HexBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// What the batcher hands over: a batch and the leaves its root commits to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchUpload {
    /// The batch's `receipts_root`.
    #[serde(with = "hex_bytes")]
    pub root: Hash256,
    /// The SCALE `ReceiptBatch` as signed (its charges are what `challenge_batch` restates).
    pub batch: HexBytes,
    /// The SCALE `BatchLeaf`s in the order the root commits to.
    pub leaves: Vec<HexBytes>,
}

/// An archived batch: its operator's batch nonce and what was uploaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedBatch {
    pub nonce: u64,
    #[serde(flatten)]
    pub upload: BatchUpload,
}

/// One leaf of an archived batch and its Merkle proof.
#[derive(Debug, Serialize)]
pub struct LeafProof {
    pub index: usize,
    pub number_of_leaves: usize,
    pub leaf: HexBytes,
    pub proof: Vec<HexBytes>,
    #[serde(with = "hex_bytes")]
    pub root: Hash256,
}

impl ArchivedBatch {
    pub fn proof(&self, index: usize) -> Option<LeafProof> {
        let leaves = &self.upload.leaves;
        let proof = leaf_proof(leaves, index)?;
        Some(LeafProof {
            index,
            number_of_leaves: leaves.len(),
            leaf: leaves[index].clone(),
            proof: proof.iter().map(|h| HexBytes(h.to_vec())).collect(),
            root: self.upload.root,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("a batch has 1 to {MAX_BATCH_LEAVES} leaves, not {0}")]
    LeafCount(usize),
    #[error("the leaves hash to {computed}, not the stated root {stated}")]
    RootMismatch { stated: String, computed: String },
    #[error("archiving the batch: {0}")]
    Io(#[from] io::Error),
}

pub struct BatchArchive {
    dir: PathBuf,
    /// Serialises writers: a batch's temporary file has one name.
    write: Mutex<()>,
}

impl BatchArchive {
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self { dir: dir.to_path_buf(), write: Mutex::new(()) })
    }

    /// Archives `upload` as batch `nonce` once its leaves prove its root, replacing what was
    /// archived under that nonce.
    pub fn put(&self, nonce: u64, upload: BatchUpload) -> Result<ArchivedBatch, ArchiveError> {
        let n = upload.leaves.len();
        if !(1..=MAX_BATCH_LEAVES).contains(&n) {
            return Err(ArchiveError::LeafCount(n));
        }
        let computed = leaves_root(&upload.leaves);
        if computed != upload.root {
            return Err(ArchiveError::RootMismatch {
                stated: attribution::hex32(&upload.root),
                computed: attribution::hex32(&computed),
            });
        }
        let archived = ArchivedBatch { nonce, upload };
        let bytes = serde_json::to_vec(&archived).map_err(io::Error::other)?;
        let _writing = self.write.lock().unwrap_or_else(|e| e.into_inner());
        replace_file(&self.dir, &file_name(nonce), &bytes)?;
        Ok(archived)
    }

    pub fn get(&self, nonce: u64) -> io::Result<Option<ArchivedBatch>> {
        match std::fs::read(self.dir.join(file_name(nonce))) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn file_name(nonce: u64) -> String {
    format!("{nonce}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(leaves: &[&[u8]]) -> BatchUpload {
        let leaves: Vec<HexBytes> = leaves.iter().map(|l| HexBytes(l.to_vec())).collect();
        BatchUpload { root: leaves_root(&leaves), batch: HexBytes(vec![7; 40]), leaves }
    }

    #[test]
    fn an_archived_batch_survives_reopening_and_proves_each_leaf() {
        let dir = tempfile::tempdir().unwrap();
        let archive = BatchArchive::open(dir.path()).unwrap();
        let up = upload(&[b"one", b"two", b"three"]);
        archive.put(4, up.clone()).unwrap();
        let back = BatchArchive::open(dir.path()).unwrap().get(4).unwrap().unwrap();
        assert_eq!(back, ArchivedBatch { nonce: 4, upload: up.clone() });
        assert!(archive.get(5).unwrap().is_none());
        let p = back.proof(2).unwrap();
        assert_eq!((p.number_of_leaves, p.leaf.0.as_slice(), p.root), (3, &b"three"[..], up.root));
        assert_eq!(p.proof.len(), 1, "the odd last leaf is promoted past the first row");
        assert!(back.proof(3).is_none());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["4.json"]);
    }

    #[test]
    fn a_rebuilt_batch_replaces_the_one_under_its_nonce() {
        let dir = tempfile::tempdir().unwrap();
        let archive = BatchArchive::open(dir.path()).unwrap();
        archive.put(0, upload(&[b"a", b"b"])).unwrap();
        let rebuilt = upload(&[b"a"]);
        archive.put(0, rebuilt.clone()).unwrap();
        assert_eq!(archive.get(0).unwrap().unwrap().upload, rebuilt);
    }

    #[test]
    fn leaves_that_do_not_prove_the_root_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let archive = BatchArchive::open(dir.path()).unwrap();
        let mut up = upload(&[b"a", b"b"]);
        up.leaves[1] = HexBytes(b"c".to_vec());
        assert!(matches!(archive.put(1, up), Err(ArchiveError::RootMismatch { .. })));
        assert!(matches!(archive.put(1, upload(&[])), Err(ArchiveError::LeafCount(0))));
        assert!(archive.get(1).unwrap().is_none());
    }
}

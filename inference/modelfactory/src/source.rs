//! Where training data comes from: the accepted contributions of a published datanet version,
//! read from a node (chain state for the list and Merkle root, `datanets_download` for the files,
//! every file checked against its content hash), or a local folder of files for offline use.

use std::path::Path;

use attribution::lineage::ContributionRef;
use attribution::span::Cover;
use attribution::{blake2_256, hex32, merkle_root, ContributionId, Hash256};
use parity_scale_codec::{Decode, Encode};

/// One accepted contribution and its file.
pub struct Contribution {
    pub id: ContributionId,
    pub content_hash: Hash256,
    pub bytes: Vec<u8>,
}

/// The contributions of one datanet version (or of a local folder) and what covers them.
pub struct VersionData {
    pub cover: Cover,
    pub contributions: Vec<Contribution>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("datanet {0} does not exist on this chain")]
    UnknownDatanet(u32),
    #[error("datanet {datanet} has no published version {version} (latest: {latest})")]
    UnknownVersion { datanet: u32, version: u32, latest: u32 },
    #[error("contribution {id}: the node returned a file whose blake2-256 is {found}, the chain records {expected}")]
    HashMismatch { id: ContributionId, expected: String, found: String },
    #[error("version {version} of datanet {datanet}: the files' Merkle root {found} is not the recorded {expected}")]
    RootMismatch { datanet: u32, version: u32, expected: String, found: String },
    #[error("the datanet holds no contributions up to version {version}")]
    Empty { version: u32 },
    #[error("{0} holds no files")]
    EmptyFolder(String),
    #[error("node RPC {method}: {message}")]
    Rpc { method: String, message: String },
    #[error("cannot decode chain state {what}: {message}")]
    Decode { what: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A local folder as a source: every regular file, in name order, is one contribution with id
/// = its position. Hidden files are skipped.
pub fn read_folder(dir: &Path) -> Result<(VersionData, Vec<ContributionRef>), SourceError> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(SourceError::EmptyFolder(dir.display().to_string()));
    }
    let mut contributions = Vec::new();
    let mut refs = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let bytes = std::fs::read(dir.join(name))?;
        let content_hash = blake2_256(&bytes);
        refs.push(ContributionRef { id: i as u64, content_hash: hex32(&content_hash), bytes: bytes.len() as u64, file: Some(name.clone()) });
        contributions.push(Contribution { id: i as u64, content_hash, bytes });
    }
    let root = merkle_root(contributions.iter().map(|c| &c.content_hash));
    Ok((VersionData { cover: Cover { datanet_id: None, version: None, merkle_root: root }, contributions }, refs))
}

/// `pallet-datanets`' `VersionInfo`: only what is read here.
#[derive(Decode, Encode)]
struct VersionInfo {
    contributions: Vec<u64>,
    merkle_root: [u8; 32],
}

/// The leading fields of `pallet-datanets`' `ContributionInfo`.
#[derive(Decode)]
struct ContributionInfo {
    _datanet_id: u32,
    _contributor: [u8; 32],
    content_hash: [u8; 32],
}

fn twox_128(data: &[u8]) -> [u8; 16] {
    use std::hash::Hasher;
    let mut out = [0u8; 16];
    for (seed, chunk) in out.chunks_exact_mut(8).enumerate() {
        let mut h = twox_hash::XxHash64::with_seed(seed as u64);
        h.write(data);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

fn twox_64_concat(data: &[u8]) -> Vec<u8> {
    use std::hash::Hasher;
    let mut h = twox_hash::XxHash64::with_seed(0);
    h.write(data);
    [h.finish().to_le_bytes().as_slice(), data].concat()
}

fn blake2_128_concat(data: &[u8]) -> Vec<u8> {
    use blake2::digest::consts::U16;
    use blake2::{Blake2b, Digest};
    let h: [u8; 16] = Blake2b::<U16>::digest(data).into();
    [h.as_slice(), data].concat()
}

fn storage_key(item: &str, keys: &[Vec<u8>]) -> String {
    let mut k = [twox_128(b"Datanets"), twox_128(item.as_bytes())].concat();
    keys.iter().for_each(|x| k.extend_from_slice(x));
    format!("0x{}", hex::encode(k))
}

/// A node's JSON-RPC endpoint (`http://127.0.0.1:9944`).
pub struct Node {
    url: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Node {
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(120)).build()?;
        Ok(Self { url: url.to_string(), http, rt })
    }

    fn call(&self, method: &str, params: serde_json::Value) -> Result<serde_json::Value, SourceError> {
        let rpc = |message: String| SourceError::Rpc { method: method.into(), message };
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp: serde_json::Value = self
            .rt
            .block_on(async {
                let r = self.http.post(&self.url).json(&body).send().await?.error_for_status()?;
                r.json().await
            })
            .map_err(|e| rpc(format!("{} ({})", e, self.url)))?;
        if let Some(err) = resp.get("error") {
            return Err(rpc(err.get("message").and_then(|m| m.as_str()).unwrap_or("error").to_string()));
        }
        Ok(resp.get("result").cloned().unwrap_or(serde_json::Value::Null))
    }

    fn storage(&self, key: String) -> Result<Option<Vec<u8>>, SourceError> {
        match self.call("state_getStorage", serde_json::json!([key]))? {
            serde_json::Value::String(s) => hex::decode(s.trim_start_matches("0x"))
                .map(Some)
                .map_err(|e| SourceError::Decode { what: "storage value".into(), message: e.to_string() }),
            _ => Ok(None),
        }
    }

    fn version(&self, datanet: u32, version: u32) -> Result<Option<VersionInfo>, SourceError> {
        let key = storage_key("Versions", &[blake2_128_concat(&datanet.encode()), twox_64_concat(&version.encode())]);
        self.storage(key)?
            .map(|b| {
                VersionInfo::decode(&mut &b[..])
                    .map_err(|e| SourceError::Decode { what: format!("Versions({datanet}, {version})"), message: e.to_string() })
            })
            .transpose()
    }

    fn latest_version(&self, datanet: u32) -> Result<u32, SourceError> {
        let mut v = 0;
        while self.version(datanet, v + 1)?.is_some() {
            v += 1;
        }
        Ok(v)
    }

    /// The contributions of versions `1..=version` of `datanet`, one [`VersionData`] per
    /// version (a datanet's version holds the contributions accepted since the previous one),
    /// every file fetched and checked against its hash and every version against its root.
    pub fn datanet(&self, datanet: u32, version: u32, mut progress: impl FnMut(&str)) -> Result<(Vec<VersionData>, Vec<ContributionRef>), SourceError> {
        let exists = self.storage(storage_key("Datanets", &[blake2_128_concat(&datanet.encode())]))?.is_some();
        if !exists {
            return Err(SourceError::UnknownDatanet(datanet));
        }
        let mut versions = Vec::new();
        let mut refs = Vec::new();
        for v in 1..=version {
            let info = self.version(datanet, v)?.ok_or_else(|| SourceError::UnknownVersion {
                datanet,
                version,
                latest: self.latest_version(datanet).unwrap_or(0),
            })?;
            let mut contributions = Vec::with_capacity(info.contributions.len());
            for (i, &id) in info.contributions.iter().enumerate() {
                let key = storage_key("Contributions", &[blake2_128_concat(&id.encode())]);
                let raw = self.storage(key)?.ok_or_else(|| SourceError::Decode {
                    what: format!("Contributions({id})"),
                    message: "missing".into(),
                })?;
                let c = ContributionInfo::decode(&mut &raw[..])
                    .map_err(|e| SourceError::Decode { what: format!("Contributions({id})"), message: e.to_string() })?;
                let file = self.call("datanets_download", serde_json::json!([hex32(&c.content_hash)]))?;
                let bytes = file
                    .as_str()
                    .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
                    .ok_or_else(|| SourceError::Rpc { method: "datanets_download".into(), message: "not a hex string".into() })?;
                let found = blake2_256(&bytes);
                if found != c.content_hash {
                    return Err(SourceError::HashMismatch { id, expected: hex32(&c.content_hash), found: hex32(&found) });
                }
                progress(&format!("version {v}: contribution {} of {} ({} bytes)", i + 1, info.contributions.len(), bytes.len()));
                refs.push(ContributionRef { id, content_hash: hex32(&found), bytes: bytes.len() as u64, file: None });
                contributions.push(Contribution { id, content_hash: found, bytes });
            }
            let root = merkle_root(contributions.iter().map(|c| &c.content_hash));
            if root != info.merkle_root {
                return Err(SourceError::RootMismatch { datanet, version: v, expected: hex32(&info.merkle_root), found: hex32(&root) });
            }
            versions.push(VersionData { cover: Cover { datanet_id: Some(datanet), version: Some(v), merkle_root: root }, contributions });
        }
        if versions.iter().all(|v| v.contributions.is_empty()) {
            return Err(SourceError::Empty { version });
        }
        Ok((versions, refs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_keys_use_the_runtime_hashers() {
        // The well-known prefix of the System pallet.
        assert_eq!(twox_128(b"System"), hex::decode("26aa394eea5630e07c48ae0c9558cef7").unwrap()[..]);
        let k = storage_key("Versions", &[blake2_128_concat(&1u32.encode()), twox_64_concat(&2u32.encode())]);
        // prefix (32) + blake2_128 (16) + id (4) + twox64 (8) + version (4) bytes, in hex.
        assert_eq!(k.len(), 2 + 2 * (32 + 16 + 4 + 8 + 4));
        let id_then_version = format!("01000000{}", hex::encode(twox_64_concat(&2u32.encode())));
        assert!(k.ends_with(&id_then_version), "{k}");
    }

    #[test]
    fn a_folder_is_a_source_with_its_merkle_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.txt"), "second").unwrap();
        std::fs::write(dir.path().join("a.txt"), "first").unwrap();
        std::fs::write(dir.path().join(".hidden"), "skip").unwrap();
        let (data, refs) = read_folder(dir.path()).unwrap();
        assert_eq!(refs.iter().map(|r| r.file.clone().unwrap()).collect::<Vec<_>>(), ["a.txt", "b.txt"]);
        let hashes = [blake2_256(b"first"), blake2_256(b"second")];
        assert_eq!(data.cover.merkle_root, merkle_root(&hashes));
        assert!(matches!(read_folder(tempfile::tempdir().unwrap().path()), Err(SourceError::EmptyFolder(_))));
    }
}

//! The adapter store: every registered adapter by name, and the few that are resident.
//!
//! Registration keeps only an adapter's header (path, hash, rank, size), so thousands can be
//! registered in bounded memory. Weights are loaded on the first request that needs them and
//! kept in an LRU cache under a byte budget. A running sequence holds its adapter through an
//! `Arc`; the cache never evicts an adapter in use, so eviction cannot disturb a running
//! request, and when nothing can be evicted the request waits in the queue instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::lora::{self, AdapterError, AdapterHeader, Hash256, LoadedAdapter};
use crate::metrics::Metrics;
use crate::models::gemma3::Gemma3Config;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no adapter named `{0}` is registered")]
    Unknown(String),
    #[error("an adapter named `{0}` is already registered")]
    NameTaken(String),
    #[error("adapter `{name}` was refused: {source}")]
    Refused { name: String, source: AdapterError },
    #[error("adapter `{name}` needs {need} bytes, more than the whole adapter cache ({budget} bytes)")]
    TooLarge { name: String, need: usize, budget: usize },
    #[error("adapter `{0}`'s weights file changed since it was registered; register it again")]
    Changed(String),
}

/// What the store knows about a registered adapter.
#[derive(Clone, Debug)]
pub struct Registered {
    pub name: String,
    pub header: AdapterHeader,
    file_len: u64,
    file_mtime: Option<SystemTime>,
}

struct Resident {
    adapter: Arc<LoadedAdapter>,
    last_used: u64,
}

/// The outcome of asking for an adapter's weights.
pub enum Acquire {
    Ready(Arc<LoadedAdapter>),
    /// Every resident adapter is in use and the new one does not fit: try again after a
    /// running sequence finishes.
    Wait,
}

pub struct AdapterStore {
    model: Gemma3Config,
    max_rank: usize,
    budget_bytes: usize,
    registered: HashMap<String, Registered>,
    by_hash: HashMap<Hash256, String>,
    resident: HashMap<String, Resident>,
    resident_bytes: usize,
    clock: u64,
    metrics: Arc<Metrics>,
    /// Unregistered adapters' weights, dropped by the engine thread: device memory is freed
    /// on the thread that owns the device.
    retired: Vec<Arc<LoadedAdapter>>,
}

fn file_stamp(dir: &Path) -> (u64, Option<SystemTime>) {
    match std::fs::metadata(dir.join(lora::WEIGHTS_FILE)) {
        Ok(m) => (m.len(), m.modified().ok()),
        Err(_) => (0, None),
    }
}

impl AdapterStore {
    pub fn new(
        model: Gemma3Config,
        max_rank: usize,
        budget_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            model,
            max_rank,
            budget_bytes,
            registered: HashMap::new(),
            by_hash: HashMap::new(),
            resident: HashMap::new(),
            resident_bytes: 0,
            clock: 0,
            metrics,
            retired: Vec::new(),
        }
    }

    /// Registers an adapter folder under `name`: reads and hashes it and checks its shapes
    /// against the base model, without keeping its weights.
    pub fn register(&mut self, name: &str, dir: &Path) -> Result<&Registered, StoreError> {
        if self.registered.contains_key(name) {
            return Err(StoreError::NameTaken(name.to_string()));
        }
        let header = lora::read_header(dir, &self.model, self.max_rank)
            .map_err(|source| StoreError::Refused { name: name.to_string(), source })?;
        if header.weight_bytes > self.budget_bytes {
            return Err(StoreError::TooLarge {
                name: name.to_string(),
                need: header.weight_bytes,
                budget: self.budget_bytes,
            });
        }
        let (file_len, file_mtime) = file_stamp(dir);
        self.by_hash.insert(header.hash, name.to_string());
        let reg = Registered { name: name.to_string(), header, file_len, file_mtime };
        self.registered.insert(name.to_string(), reg);
        self.metrics.set_registered(self.registered.len());
        Ok(&self.registered[name])
    }

    /// Forgets an adapter. Sequences already running with it finish with their copy.
    pub fn unregister(&mut self, name: &str) -> Result<Registered, StoreError> {
        let reg = self.registered.remove(name).ok_or_else(|| StoreError::Unknown(name.into()))?;
        // Two names may register the same file; the hash keeps naming the other one.
        if self.by_hash.get(&reg.header.hash) == Some(&reg.name) {
            self.by_hash.remove(&reg.header.hash);
            if let Some(other) = self.registered.values().find(|r| r.header.hash == reg.header.hash) {
                self.by_hash.insert(reg.header.hash, other.name.clone());
            }
        }
        if let Some(r) = self.resident.remove(name) {
            self.resident_bytes -= r.adapter.weight_bytes();
            self.retired.push(r.adapter);
        }
        self.metrics.set_registered(self.registered.len());
        self.metrics.set_resident(self.resident.len(), self.resident_bytes);
        Ok(reg)
    }

    /// Finds an adapter by its name or by its hash (`0x` + 64 hex digits).
    pub fn resolve(&self, name_or_hash: &str) -> Option<&Registered> {
        if let Some(r) = self.registered.get(name_or_hash) {
            return Some(r);
        }
        let hex = name_or_hash.strip_prefix("0x")?;
        let mut hash = [0u8; 32];
        hex::decode_to_slice(hex, &mut hash).ok()?;
        self.registered.get(self.by_hash.get(&hash)?)
    }

    pub fn list(&self) -> Vec<(&Registered, bool)> {
        let mut v: Vec<_> =
            self.registered.values().map(|r| (r, self.resident.contains_key(&r.name))).collect();
        v.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        v
    }

    pub fn resident_bytes(&self) -> usize {
        self.resident_bytes
    }

    pub fn resident_count(&self) -> usize {
        self.resident.len()
    }

    /// Frees the weights of unregistered adapters (called by the engine thread).
    pub fn drop_retired(&mut self) {
        self.retired.clear();
    }

    /// The adapter's weights, loading them if they are not resident.
    pub fn acquire(&mut self, name: &str) -> Result<Acquire, StoreError> {
        self.clock += 1;
        if let Some(r) = self.resident.get_mut(name) {
            r.last_used = self.clock;
            self.metrics.adapter_hit();
            return Ok(Acquire::Ready(r.adapter.clone()));
        }
        let reg = self.registered.get(name).ok_or_else(|| StoreError::Unknown(name.into()))?;
        let need = reg.header.weight_bytes;
        if !self.make_room(need) {
            return Ok(Acquire::Wait);
        }
        self.metrics.adapter_miss();
        let started = Instant::now();
        let reg = &self.registered[name];
        // The file's size and mtime vouch for it being the file hashed at registration; if
        // either moved, hash again so that the receipts name what actually ran.
        let unchanged = file_stamp(&reg.header.dir) == (reg.file_len, reg.file_mtime);
        let known = unchanged.then_some(reg.header.hash);
        let adapter = lora::load(&reg.header.dir, &self.model, self.max_rank, known)
            .map_err(|source| StoreError::Refused { name: name.to_string(), source })?;
        if adapter.header.hash != reg.header.hash {
            return Err(StoreError::Changed(name.to_string()));
        }
        self.metrics.adapter_loaded(started.elapsed());
        let adapter = Arc::new(adapter);
        self.resident_bytes += need;
        self.resident
            .insert(name.to_string(), Resident { adapter: adapter.clone(), last_used: self.clock });
        self.metrics.set_resident(self.resident.len(), self.resident_bytes);
        Ok(Acquire::Ready(adapter))
    }

    /// Evicts least recently used adapters that no sequence holds until `need` more bytes fit.
    fn make_room(&mut self, need: usize) -> bool {
        while self.resident_bytes + need > self.budget_bytes {
            let victim = self
                .resident
                .iter()
                .filter(|(_, r)| Arc::strong_count(&r.adapter) == 1)
                .min_by_key(|(_, r)| r.last_used)
                .map(|(n, _)| n.clone());
            let Some(victim) = victim else { return false };
            let r = self.resident.remove(&victim).expect("victim is resident");
            self.resident_bytes -= r.adapter.weight_bytes();
            self.metrics.adapter_evicted();
        }
        true
    }
}

/// Registers every adapter folder below `root`, each under its folder name; used for
/// `--lora-dir`. Returns how many were registered; a refused adapter is reported and skipped.
pub fn register_dir(store: &mut AdapterStore, root: &Path) -> std::io::Result<usize> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(lora::CONFIG_FILE).exists())
        .collect();
    dirs.sort();
    let mut n = 0;
    for dir in dirs {
        let name = dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        match store.register(&name, &dir) {
            Ok(_) => n += 1,
            Err(e) => tracing::warn!("skipping {}: {e}", dir.display()),
        }
    }
    Ok(n)
}

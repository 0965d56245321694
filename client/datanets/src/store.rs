//! Content-addressed files on local disk.
//!
//! A file is named by the blake2-256 of its bytes, the hash contributors put on chain, so a node
//! can hand a file to anyone and the receiver can check it without trusting the sender.
//!
//! Layout under [`StoreConfig::dir`]:
//!
//! ```text
//! objects/<first 2 hex digits>/<64 hex digits>        the bytes
//! objects/<first 2 hex digits>/<64 hex digits>.meta   ObjectMeta, JSON
//! tmp/                                                 files being written
//! ```
//!
//! The two-digit fan-out keeps directories small enough for every filesystem. Every file reaches
//! `objects/` by `rename` from `tmp/` after `sync_all`, so a crash leaves either the complete old
//! state or the complete new file, never a partial one; whatever a crash leaves in `tmp/` is
//! deleted by [`ContentStore::open`]. The store answers from an in-memory index of the objects,
//! built by `open`, so quota checks and `meta` queries need no disk access.

use std::{
	collections::HashMap,
	fs::{self, File},
	io::{self, ErrorKind, Write},
	path::{Path, PathBuf},
	sync::atomic::{AtomicU64, Ordering},
};

use hex::FromHex;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sp_crypto_hashing::blake2_256;

use crate::LOG_TARGET;

/// Where the store lives and how much it may hold; filled by the node from its CLI flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
	/// The store's directory; the node uses `<base-path>/chains/<chain-id>/datanets`.
	pub dir: PathBuf,
	/// Largest single file accepted, in bytes.
	pub max_file_size: u64,
	/// Most bytes of file content this node keeps in total.
	pub quota_bytes: u64,
}

/// What the store remembers about an object besides its bytes; what pruning decides on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
	/// Length of the file in bytes.
	pub size: u64,
	/// Best block number when the file arrived, the start of its grace period before a
	/// contribution references it.
	pub stored_at_block: u64,
	/// Whether a finalized contribution has referenced the file, so that losing all references
	/// later means the contribution was rejected or withdrawn rather than never made.
	pub referenced: bool,
}

/// The outcome of a successful [`ContentStore::put`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
	/// blake2-256 of the bytes.
	pub hash: [u8; 32],
	/// Length of the file in bytes.
	pub size: u64,
	/// `false` when the store already had the file.
	pub newly_stored: bool,
}

/// Why the store refused or failed an operation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
	/// A file needs at least one byte; an empty hash is of no use to anybody.
	#[error("empty file")]
	Empty,
	/// The file is larger than [`StoreConfig::max_file_size`].
	#[error("file of {size} bytes exceeds the limit of {limit} bytes")]
	TooLarge { size: u64, limit: u64 },
	/// Keeping the file would exceed [`StoreConfig::quota_bytes`].
	#[error("storing {size} more bytes would exceed the quota: {used} of {quota} bytes used")]
	QuotaExceeded { used: u64, quota: u64, size: u64 },
	/// The filesystem has no room left.
	#[error("disk full")]
	DiskFull,
	/// Any other I/O failure, with the operation and path that failed.
	#[error("storage I/O error: {0}")]
	Io(String),
}

/// Content-addressed file store; see the module documentation for the layout and guarantees.
pub struct ContentStore {
	config: StoreConfig,
	objects_dir: PathBuf,
	tmp_dir: PathBuf,
	/// Makes temporary file names unique within this process; `open` empties `tmp/`, and one
	/// node process owns its base path, so no other writer can collide with them.
	next_temp: AtomicU64,
	/// Serialises every change to `objects/` with the index that mirrors it, so that two uploads
	/// cannot both pass the quota check or both rename the same object into place.
	state: Mutex<State>,
}

struct State {
	objects: HashMap<[u8; 32], ObjectMeta>,
	used: u64,
}

impl ContentStore {
	/// Opens (creating if needed) the store in `config.dir` and rebuilds the index from disk.
	///
	/// Leftovers of a crash are repaired here: `tmp/` is emptied, an object whose sidecar is
	/// missing or unreadable gets a new one with `stored_at_block` 0 (its upload never returned
	/// success, since `put` writes the sidecar before answering), a sidecar without its object is
	/// removed, and an object whose length disagrees with its sidecar is deleted as corrupt.
	pub fn open(config: StoreConfig) -> Result<ContentStore, StoreError> {
		let objects_dir = config.dir.join("objects");
		let tmp_dir = config.dir.join("tmp");
		for dir in [&objects_dir, &tmp_dir] {
			fs::create_dir_all(dir).map_err(|e| io_error("creating", dir, e))?;
		}
		let store = ContentStore {
			config,
			objects_dir,
			tmp_dir,
			next_temp: AtomicU64::new(0),
			state: Mutex::new(State { objects: HashMap::new(), used: 0 }),
		};
		store.clear_tmp()?;
		let (objects, used) = store.scan()?;
		*store.state.lock() = State { objects, used };
		Ok(store)
	}

	/// Stores `bytes` under their blake2-256, recording `at_block` as the start of the grace
	/// period.
	///
	/// Storing a file that is already present writes no bytes; it only moves the grace period of
	/// a never-referenced file forward, because a second upload means somebody is about to
	/// contribute it and the first upload's clock must not delete it under them.
	pub fn put(&self, bytes: &[u8], at_block: u64) -> Result<Stored, StoreError> {
		let size = bytes.len() as u64;
		if size == 0 {
			return Err(StoreError::Empty);
		}
		if size > self.config.max_file_size {
			return Err(StoreError::TooLarge { size, limit: self.config.max_file_size });
		}
		let hash = blake2_256(bytes);
		{
			// Answer duplicates and over-quota uploads before writing anything.
			let mut state = self.state.lock();
			if let Some(stored) = self.existing(&mut state, &hash, at_block) {
				return Ok(stored);
			}
			self.check_quota(&state, size)?;
		}

		// Hashing (above), writing and syncing, the slow parts, happen without the lock.
		let meta = ObjectMeta { size, stored_at_block: at_block, referenced: false };
		let data_file = self.write_temp(bytes)?;
		let meta_file = self.write_temp(&encode_meta(&meta)?)?;

		let mut state = self.state.lock();
		if let Some(stored) = self.existing(&mut state, &hash, at_block) {
			return Ok(stored);
		}
		self.check_quota(&state, size)?;
		self.ensure_shard(&hash)?;
		let data_path = self.data_path(&hash);
		data_file.persist(&data_path)?;
		// Data first, sidecar second, one directory sync for both: a crash in between leaves an
		// object without sidecar, which `open` repairs.
		let meta_path = self.meta_path(&hash);
		let shard = self.shard_dir(&hash);
		let persisted = meta_file
			.persist(&meta_path)
			.and_then(|()| sync_dir(&shard).map_err(|e| io_error("syncing", &shard, e)));
		if let Err(e) = persisted {
			// Not durable means not stored: the caller must not be told the upload succeeded.
			remove_if_present(&data_path);
			remove_if_present(&meta_path);
			return Err(e);
		}
		state.objects.insert(hash, meta);
		state.used += size;
		Ok(Stored { hash, size, newly_stored: true })
	}

	/// The file's bytes, verified against `hash` on every read.
	///
	/// A file that no longer matches its hash (bit rot, a truncated copy, a hand edit) is deleted
	/// and reported as absent, so that the node fetches a good copy from a peer instead of
	/// serving a bad one.
	pub fn get(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
		if !self.state.lock().objects.contains_key(hash) {
			return Ok(None);
		}
		let path = self.data_path(hash);
		match fs::read(&path) {
			Ok(bytes) if blake2_256(&bytes) == *hash => Ok(Some(bytes)),
			Ok(_) => Ok(self.discard_corrupt(hash)),
			Err(e) if e.kind() == ErrorKind::NotFound => Ok(self.discard_corrupt(hash)),
			Err(e) => Err(io_error("reading", &path, e)),
		}
	}

	/// The sidecar of a stored file, from memory.
	pub fn meta(&self, hash: &[u8; 32]) -> Option<ObjectMeta> {
		self.state.lock().objects.get(hash).copied()
	}

	/// Records that a finalized contribution references the file; persisted, so that pruning
	/// still knows after a restart that an unreferenced file was rejected rather than never
	/// contributed.
	pub fn mark_referenced(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
		let mut state = self.state.lock();
		let Some(meta) = state.objects.get(hash).copied() else { return Ok(()) };
		if meta.referenced {
			return Ok(());
		}
		let meta = ObjectMeta { referenced: true, ..meta };
		self.write_meta(hash, &meta)?;
		state.objects.insert(*hash, meta);
		Ok(())
	}

	/// Deletes a file and its sidecar and frees its quota; `false` if it was not stored or could
	/// not be deleted.
	pub fn remove(&self, hash: &[u8; 32]) -> bool {
		let mut state = self.state.lock();
		let Some(meta) = state.objects.get(hash).copied() else { return false };
		let data_path = self.data_path(hash);
		if let Err(e) = fs::remove_file(&data_path) {
			if e.kind() != ErrorKind::NotFound {
				log::warn!(target: LOG_TARGET, "Cannot remove {}: {e}", data_path.display());
				return false;
			}
		}
		// A sidecar left behind by a failure here is removed by the next `open`.
		remove_if_present(&self.meta_path(hash));
		state.objects.remove(hash);
		state.used = state.used.saturating_sub(meta.size);
		true
	}

	/// Every stored file with its sidecar, ordered by hash.
	pub fn list(&self) -> Vec<([u8; 32], ObjectMeta)> {
		let mut objects: Vec<_> =
			self.state.lock().objects.iter().map(|(hash, meta)| (*hash, *meta)).collect();
		objects.sort_unstable_by(|a, b| a.0.cmp(&b.0));
		objects
	}

	/// Bytes of file content stored, what counts against [`StoreConfig::quota_bytes`].
	pub fn used_bytes(&self) -> u64 {
		self.state.lock().used
	}

	/// The configuration the store was opened with.
	pub fn config(&self) -> &StoreConfig {
		&self.config
	}

	/// The answer to a `put` of a file already stored, refreshing its grace period.
	fn existing(&self, state: &mut State, hash: &[u8; 32], at_block: u64) -> Option<Stored> {
		let meta = state.objects.get(hash).copied()?;
		if !meta.referenced && at_block > meta.stored_at_block {
			let meta = ObjectMeta { stored_at_block: at_block, ..meta };
			match self.write_meta(hash, &meta) {
				Ok(()) => {
					state.objects.insert(*hash, meta);
				},
				// The bytes are stored, which is what the caller asked for; only the grace
				// period stays shorter.
				Err(e) => log::warn!(
					target: LOG_TARGET,
					"Cannot refresh the grace period of 0x{}: {e}",
					hex::encode(hash),
				),
			}
		}
		Some(Stored { hash: *hash, size: meta.size, newly_stored: false })
	}

	fn check_quota(&self, state: &State, size: u64) -> Result<(), StoreError> {
		let quota = self.config.quota_bytes;
		if state.used.saturating_add(size) > quota {
			return Err(StoreError::QuotaExceeded { used: state.used, quota, size });
		}
		Ok(())
	}

	/// Deletes an object whose bytes are missing or do not match its hash, returning the bytes
	/// instead if a concurrent `put` replaced it with a good copy in the meantime.
	fn discard_corrupt(&self, hash: &[u8; 32]) -> Option<Vec<u8>> {
		let mut state = self.state.lock();
		let path = self.data_path(hash);
		match fs::read(&path) {
			Ok(bytes) if blake2_256(&bytes) == *hash => return Some(bytes),
			Ok(_) => log::warn!(
				target: LOG_TARGET,
				"{} does not match its hash; deleting it so that a good copy can be fetched",
				path.display(),
			),
			Err(e) => log::warn!(
				target: LOG_TARGET,
				"{} cannot be read ({e}); forgetting it so that a good copy can be fetched",
				path.display(),
			),
		}
		remove_if_present(&path);
		remove_if_present(&self.meta_path(hash));
		if let Some(meta) = state.objects.remove(hash) {
			state.used = state.used.saturating_sub(meta.size);
		}
		None
	}

	/// Replaces the sidecar of `hash` atomically.
	fn write_meta(&self, hash: &[u8; 32], meta: &ObjectMeta) -> Result<(), StoreError> {
		self.write_temp(&encode_meta(meta)?)?.persist(&self.meta_path(hash))?;
		let shard = self.shard_dir(hash);
		sync_dir(&shard).map_err(|e| io_error("syncing", &shard, e))
	}

	/// Writes `bytes` to a new file in `tmp/` and syncs it, ready to be renamed into place.
	fn write_temp(&self, bytes: &[u8]) -> Result<TempFile, StoreError> {
		let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
		let path = self.tmp_dir.join(format!("{}.{n}", std::process::id()));
		let mut file = File::options()
			.write(true)
			.create_new(true)
			.open(&path)
			.map_err(|e| io_error("creating", &path, e))?;
		// From here on the guard deletes the file on every early return.
		let temp = TempFile { path, persisted: false };
		file.write_all(bytes)
			.and_then(|()| file.sync_all())
			.map_err(|e| io_error("writing", &temp.path, e))?;
		Ok(temp)
	}

	/// Creates the fan-out directory of `hash` and makes its entry durable.
	fn ensure_shard(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
		let shard = self.shard_dir(hash);
		if shard.is_dir() {
			return Ok(());
		}
		fs::create_dir(&shard)
			.and_then(|()| sync_dir(&self.objects_dir))
			.map_err(|e| io_error("creating", &shard, e))
	}

	fn clear_tmp(&self) -> Result<(), StoreError> {
		let entries =
			fs::read_dir(&self.tmp_dir).map_err(|e| io_error("listing", &self.tmp_dir, e))?;
		for entry in entries {
			let path = entry.map_err(|e| io_error("listing", &self.tmp_dir, e))?.path();
			let removed =
				if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
			removed.map_err(|e| io_error("removing", &path, e))?;
			log::debug!(
				target: LOG_TARGET,
				"Removed {}, left over by an interrupted write",
				path.display(),
			);
		}
		Ok(())
	}

	/// Rebuilds the index from `objects/`, repairing what a crash may have left (see `open`).
	fn scan(&self) -> Result<(HashMap<[u8; 32], ObjectMeta>, u64), StoreError> {
		let mut objects = HashMap::new();
		let mut used = 0u64;
		for shard in read_dir_paths(&self.objects_dir)? {
			if !shard.is_dir() {
				log::warn!(
					target: LOG_TARGET,
					"Ignoring {}: not a store directory",
					shard.display(),
				);
				continue;
			}
			let mut data = Vec::new();
			let mut metas = Vec::new();
			for path in read_dir_paths(&shard)? {
				let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
				let (stem, is_meta) = match name.strip_suffix(".meta") {
					Some(stem) => (stem, true),
					None => (name, false),
				};
				match parse_object_name(stem) {
					Some(hash) if self.shard_dir(&hash) == shard =>
						if is_meta {
							metas.push(hash)
						} else {
							data.push(hash)
						},
					_ => log::warn!(
						target: LOG_TARGET,
						"Ignoring {}: not a store object",
						path.display(),
					),
				}
			}
			for hash in &data {
				if let Some(meta) = self.load_object(hash)? {
					used = used.saturating_add(meta.size);
					objects.insert(*hash, meta);
				}
			}
			for hash in metas.iter().filter(|hash| !objects.contains_key(*hash)) {
				log::debug!(
					target: LOG_TARGET,
					"Removing the sidecar of missing object 0x{}",
					hex::encode(hash),
				);
				remove_if_present(&self.meta_path(hash));
			}
		}
		Ok((objects, used))
	}

	/// The sidecar of an object found on disk, repaired if needed; `None` if the object was
	/// deleted as corrupt.
	fn load_object(&self, hash: &[u8; 32]) -> Result<Option<ObjectMeta>, StoreError> {
		let data_path = self.data_path(hash);
		let len = fs::metadata(&data_path).map_err(|e| io_error("reading", &data_path, e))?.len();
		let meta_path = self.meta_path(hash);
		let meta = fs::read(&meta_path)
			.ok()
			.and_then(|raw| serde_json::from_slice::<ObjectMeta>(&raw).ok());
		match meta {
			Some(meta) if meta.size == len && len > 0 => Ok(Some(meta)),
			None if len > 0 => {
				log::debug!(
					target: LOG_TARGET,
					"Recreating the sidecar of 0x{}",
					hex::encode(hash),
				);
				let meta = ObjectMeta { size: len, stored_at_block: 0, referenced: false };
				self.write_meta(hash, &meta)?;
				Ok(Some(meta))
			},
			_ => {
				log::warn!(
					target: LOG_TARGET,
					"Deleting {}: its length {len} does not match what was stored",
					data_path.display(),
				);
				remove_if_present(&data_path);
				remove_if_present(&meta_path);
				Ok(None)
			},
		}
	}

	fn shard_dir(&self, hash: &[u8; 32]) -> PathBuf {
		self.objects_dir.join(hex::encode(&hash[..1]))
	}

	fn data_path(&self, hash: &[u8; 32]) -> PathBuf {
		self.shard_dir(hash).join(hex::encode(hash))
	}

	fn meta_path(&self, hash: &[u8; 32]) -> PathBuf {
		self.shard_dir(hash).join(format!("{}.meta", hex::encode(hash)))
	}
}

/// A synced file in `tmp/`, deleted when dropped unless it was renamed into place.
struct TempFile {
	path: PathBuf,
	persisted: bool,
}

impl TempFile {
	fn persist(mut self, dest: &Path) -> Result<(), StoreError> {
		fs::rename(&self.path, dest).map_err(|e| io_error("renaming into", dest, e))?;
		self.persisted = true;
		Ok(())
	}
}

impl Drop for TempFile {
	fn drop(&mut self) {
		if !self.persisted {
			remove_if_present(&self.path);
		}
	}
}

fn encode_meta(meta: &ObjectMeta) -> Result<Vec<u8>, StoreError> {
	serde_json::to_vec(meta).map_err(|e| StoreError::Io(format!("encoding a sidecar: {e}")))
}

/// The hash named by a canonical (lowercase, 64 digit) object file name.
fn parse_object_name(name: &str) -> Option<[u8; 32]> {
	let hash = <[u8; 32]>::from_hex(name).ok()?;
	(hex::encode(hash) == name).then_some(hash)
}

fn read_dir_paths(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
	fs::read_dir(dir)
		.and_then(|entries| entries.map(|entry| entry.map(|entry| entry.path())).collect())
		.map_err(|e| io_error("listing", dir, e))
}

/// Makes renames and creations inside `dir` durable; a file's own `sync_all` does not cover the
/// directory entry that names it.
fn sync_dir(dir: &Path) -> io::Result<()> {
	File::open(dir)?.sync_all()
}

/// Best-effort delete for cleanup paths, where the original error is the one worth reporting.
fn remove_if_present(path: &Path) {
	if let Err(e) = fs::remove_file(path) {
		if e.kind() != ErrorKind::NotFound {
			log::warn!(target: LOG_TARGET, "Cannot remove {}: {e}", path.display());
		}
	}
}

/// Maps I/O errors, singling out a full disk, which the RPC reports with its own code because the
/// operator, not the uploader, has to act on it.
fn io_error(action: &str, path: &Path, e: io::Error) -> StoreError {
	match e.kind() {
		ErrorKind::StorageFull | ErrorKind::QuotaExceeded => StoreError::DiskFull,
		_ => StoreError::Io(format!("{action} {}: {e}", path.display())),
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	const MAX: u64 = 1024;

	fn config(dir: &Path, quota_bytes: u64) -> StoreConfig {
		StoreConfig { dir: dir.to_path_buf(), max_file_size: MAX, quota_bytes }
	}

	fn open(dir: &Path) -> ContentStore {
		ContentStore::open(config(dir, 10 * MAX)).expect("store opens")
	}

	/// Every file under `dir`, with its contents, to check that a refused operation changed
	/// nothing.
	fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
		let mut files = Vec::new();
		let mut pending = vec![dir.to_path_buf()];
		while let Some(dir) = pending.pop() {
			for path in read_dir_paths(&dir).expect("listable") {
				if path.is_dir() {
					pending.push(path);
				} else {
					let bytes = fs::read(&path).expect("readable");
					files.push((path, bytes));
				}
			}
		}
		files.sort();
		files
	}

	fn tmp_is_empty(dir: &Path) -> bool {
		read_dir_paths(&dir.join("tmp")).expect("listable").is_empty()
	}

	#[test]
	fn round_trip() {
		let dir = tempfile::tempdir().unwrap();
		let store = open(dir.path());
		let stored = store.put(b"hello datanets", 7).unwrap();
		assert_eq!(
			stored,
			Stored { hash: blake2_256(b"hello datanets"), size: 14, newly_stored: true },
		);
		assert_eq!(store.get(&stored.hash).unwrap(), Some(b"hello datanets".to_vec()));
		assert_eq!(
			store.meta(&stored.hash),
			Some(ObjectMeta { size: 14, stored_at_block: 7, referenced: false }),
		);
		assert_eq!(store.used_bytes(), 14);
		assert_eq!(store.list(), vec![(stored.hash, store.meta(&stored.hash).unwrap())]);
		assert_eq!(store.get(&[0; 32]).unwrap(), None);
		let hex = hex::encode(stored.hash);
		let shard = dir.path().join("objects").join(&hex[..2]);
		assert!(shard.join(&hex).is_file());
		assert!(shard.join(format!("{hex}.meta")).is_file());
		assert!(tmp_is_empty(dir.path()));
	}

	#[test]
	fn restart_keeps_files_and_quota_accounting() {
		let dir = tempfile::tempdir().unwrap();
		let (a, b) = {
			let store = open(dir.path());
			let a = store.put(b"first", 1).unwrap().hash;
			let b = store.put(b"second file", 2).unwrap().hash;
			store.mark_referenced(&b).unwrap();
			(a, b)
		};
		let store = open(dir.path());
		assert_eq!(store.used_bytes(), 16);
		assert_eq!(store.get(&a).unwrap(), Some(b"first".to_vec()));
		assert_eq!(store.get(&b).unwrap(), Some(b"second file".to_vec()));
		assert_eq!(
			store.meta(&b),
			Some(ObjectMeta { size: 11, stored_at_block: 2, referenced: true }),
		);
	}

	#[test]
	fn open_cleans_leftover_temp_files() {
		let dir = tempfile::tempdir().unwrap();
		drop(open(dir.path()));
		fs::write(dir.path().join("tmp").join("123.0"), b"half an upload").unwrap();
		let store = open(dir.path());
		assert!(tmp_is_empty(dir.path()));
		assert_eq!(store.used_bytes(), 0);
		assert!(store.list().is_empty());
	}

	#[test]
	fn open_repairs_missing_and_orphaned_sidecars() {
		let dir = tempfile::tempdir().unwrap();
		let (kept, orphan) = {
			let store = open(dir.path());
			(store.put(b"kept", 9).unwrap().hash, store.put(b"orphan", 9).unwrap().hash)
		};
		let store = open(dir.path());
		fs::remove_file(store.meta_path(&kept)).unwrap();
		fs::remove_file(store.data_path(&orphan)).unwrap();
		drop(store);

		let store = open(dir.path());
		assert_eq!(
			store.meta(&kept),
			Some(ObjectMeta { size: 4, stored_at_block: 0, referenced: false }),
		);
		assert!(store.meta_path(&kept).is_file());
		assert_eq!(store.meta(&orphan), None);
		assert!(!store.meta_path(&orphan).exists());
		assert_eq!(store.used_bytes(), 4);
	}

	#[test]
	fn duplicate_put_stores_once_and_refreshes_the_grace_period() {
		let dir = tempfile::tempdir().unwrap();
		let store = open(dir.path());
		let first = store.put(b"same bytes", 3).unwrap();
		let second = store.put(b"same bytes", 8).unwrap();
		assert!(first.newly_stored);
		assert_eq!(second, Stored { newly_stored: false, ..first });
		assert_eq!(store.used_bytes(), 10);
		assert_eq!(store.meta(&first.hash).unwrap().stored_at_block, 8);
		// An older block number never moves the clock back.
		store.put(b"same bytes", 5).unwrap();
		assert_eq!(store.meta(&first.hash).unwrap().stored_at_block, 8);
		assert!(tmp_is_empty(dir.path()));
	}

	#[test]
	fn refused_puts_change_nothing_on_disk() {
		let dir = tempfile::tempdir().unwrap();
		let store = ContentStore::open(config(dir.path(), 12)).unwrap();
		store.put(b"0123456789", 1).unwrap();
		let before = snapshot(dir.path());

		assert_eq!(store.put(b"", 1), Err(StoreError::Empty));
		let too_large = vec![1u8; MAX as usize + 1];
		assert_eq!(
			store.put(&too_large, 1),
			Err(StoreError::TooLarge { size: MAX + 1, limit: MAX }),
		);
		assert_eq!(
			store.put(b"abc", 1),
			Err(StoreError::QuotaExceeded { used: 10, quota: 12, size: 3 }),
		);

		assert_eq!(snapshot(dir.path()), before);
		assert_eq!(store.used_bytes(), 10);
		assert_eq!(store.list().len(), 1);
	}

	#[test]
	fn corrupted_file_is_detected_and_removed() {
		let dir = tempfile::tempdir().unwrap();
		let store = open(dir.path());
		let hash = store.put(b"original", 1).unwrap().hash;
		fs::write(store.data_path(&hash), b"tampered").unwrap();

		assert_eq!(store.get(&hash).unwrap(), None);
		assert_eq!(store.meta(&hash), None);
		assert_eq!(store.used_bytes(), 0);
		assert!(!store.data_path(&hash).exists());
		assert!(!store.meta_path(&hash).exists());
		// A good copy can be stored again.
		assert!(store.put(b"original", 2).unwrap().newly_stored);
	}

	#[test]
	fn truncated_file_is_deleted_at_open() {
		let dir = tempfile::tempdir().unwrap();
		let hash = open(dir.path()).put(b"complete", 1).unwrap().hash;
		let store = open(dir.path());
		fs::write(store.data_path(&hash), b"comp").unwrap();
		drop(store);

		let store = open(dir.path());
		assert_eq!(store.meta(&hash), None);
		assert_eq!(store.used_bytes(), 0);
		assert!(!store.data_path(&hash).exists());
	}

	#[test]
	fn remove_frees_quota() {
		let dir = tempfile::tempdir().unwrap();
		let store = ContentStore::open(config(dir.path(), 10)).unwrap();
		let hash = store.put(b"eight by", 1).unwrap().hash;
		assert!(matches!(store.put(b"five!", 1), Err(StoreError::QuotaExceeded { .. })));

		assert!(store.remove(&hash));
		assert!(!store.remove(&hash));
		assert_eq!(store.used_bytes(), 0);
		assert!(!store.data_path(&hash).exists());
		assert!(!store.meta_path(&hash).exists());
		assert!(store.put(b"five!", 1).unwrap().newly_stored);
	}

	#[test]
	fn failed_write_leaves_no_temp_file() {
		let dir = tempfile::tempdir().unwrap();
		let store = open(dir.path());
		let hash = blake2_256(b"nowhere to go");
		// A file where the fan-out directory should be makes the rename fail after the temp
		// files were written.
		fs::write(store.shard_dir(&hash), b"in the way").unwrap();
		assert!(matches!(store.put(b"nowhere to go", 1), Err(StoreError::Io(_))));
		assert!(tmp_is_empty(dir.path()));
		assert_eq!(store.used_bytes(), 0);
		assert_eq!(store.meta(&hash), None);
	}

	#[test]
	fn full_disk_is_its_own_error() {
		let path = Path::new("/x");
		assert_eq!(io_error("writing", path, ErrorKind::StorageFull.into()), StoreError::DiskFull);
		assert!(matches!(
			io_error("writing", path, ErrorKind::PermissionDenied.into()),
			StoreError::Io(_)
		));
	}
}

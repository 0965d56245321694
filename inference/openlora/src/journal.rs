//! The journal of served prepaid requests: what the operator's node settles on chain in
//! batches, and its proof that a request was signed and served.
//!
//! A folder (`openlora --journal DIR`) with:
//! - `journal.jsonl`: one [`Entry`] per line, `seq` strictly increasing. An entry is appended
//!   and fsynced before its response leaves, so every answered prepaid request can be settled.
//!   A crash mid-append leaves a torn last line, which opening drops.
//! - `settled.json`: `{"through", "nonces"}`, replaced atomically: entries up to `through` are
//!   settled on chain, and each account's highest nonce at that point, which must outlive the
//!   settled entries that compaction removes (a settled nonce must never be served again).
//! - `lock`: held while a server uses the folder; a second server on it refuses to start.
//!
//! Per account, nonces rise in journal order: a nonce must be above every nonce journaled or
//! being served for its account, and a request waits for lower nonces still being served before
//! it is journaled, so that the chain can insist that an account's nonces rise.

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;
use attribution::record::AttributionRecord;
use attribution::{Hash256, Weight};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::prepaid::{AccountId, Signature};

const JOURNAL_FILE: &str = "journal.jsonl";
const SETTLED_FILE: &str = "settled.json";
const LOCK_FILE: &str = "lock";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    None,
    Span,
    Datainf,
}

/// The completion's attribution, in the shapes of the response's `attribution` object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    pub method: Method,
    #[serde(with = "hex_bytes")]
    pub index_root: Hash256,
    #[serde(with = "hex_bytes")]
    pub record_hash: Hash256,
    pub weights: Vec<Weight>,
}

impl Attribution {
    /// Attribution did not run.
    pub fn none() -> Self {
        Self { method: Method::None, index_root: [0; 32], record_hash: [0; 32], weights: Vec::new() }
    }

    pub fn of(record: &AttributionRecord) -> Self {
        let method = match record.method {
            attribution::record::Method::Span { .. } => Method::Span,
            attribution::record::Method::Datainf { .. } => Method::Datainf,
        };
        Self { method, index_root: record.index_root, record_hash: record.hash(), weights: record.weights.clone() }
    }
}

/// One served prepaid request: what the user signed, and what the engine answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaf {
    #[serde(with = "hex_bytes")]
    pub account: AccountId,
    pub nonce: u64,
    #[serde(with = "decimal")]
    pub max_fee: u128,
    #[serde(with = "hex_bytes")]
    pub signature: Signature,
    #[serde(with = "hex_bytes")]
    pub adapter_hash: Hash256,
    #[serde(with = "hex_bytes")]
    pub prompt_hash: Hash256,
    pub max_tokens: u32,
    #[serde(with = "hex_bytes")]
    pub output_hash: Hash256,
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(flatten)]
    pub attribution: Attribution,
}

/// A journaled [`Leaf`] and its place in the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    #[serde(flatten)]
    pub leaf: Leaf,
}

/// The unsettled entries after a point, for the operator's node.
#[derive(Debug, Serialize)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// The highest seq ever assigned (settled or not).
    pub last_seq: u64,
    pub settled_through: u64,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NonceUsed {
    #[error("nonce {nonce} is not above {highest}, the highest nonce this account has used")]
    Journaled { nonce: u64, highest: u64 },
    #[error("nonce {nonce} is not above {highest}, the highest nonce of this account's requests being served")]
    InFlight { nonce: u64, highest: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("cannot settle through {through}: the journal ends at {last_seq}")]
    BeyondEnd { through: u64, last_seq: u64 },
    #[error("recording the settlement: {0}")]
    Io(#[from] io::Error),
}

/// `settled.json`.
#[derive(Default, Serialize, Deserialize)]
struct Settled {
    through: u64,
    nonces: Vec<AccountNonce>,
}

#[derive(Serialize, Deserialize)]
struct AccountNonce {
    #[serde(with = "hex_bytes")]
    account: AccountId,
    nonce: u64,
}

pub struct Journal {
    dir: PathBuf,
    state: Mutex<State>,
    /// Woken whenever a reservation ends, for requests waiting on a lower nonce.
    turn: Notify,
    _lock: File,
}

struct State {
    last_seq: u64,
    settled: u64,
    /// Entries above `settled`, ascending.
    unsettled: Vec<Entry>,
    /// Every account's highest journaled nonce, settled or not.
    highest: HashMap<AccountId, u64>,
    /// Nonces reserved by requests being served.
    in_flight: HashMap<AccountId, BTreeSet<u64>>,
}

impl Journal {
    /// Opens (or creates) the journal folder, recovering the last seq and every account's
    /// highest nonce, and dropping a torn last line.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the journal folder {}", dir.display()))?;
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(LOCK_FILE))?;
        lock.try_lock()
            .map_err(|e| anyhow::anyhow!("the journal {} is in use by another server ({e})", dir.display()))?;
        let settled: Settled = match std::fs::read(dir.join(SETTLED_FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("reading {SETTLED_FILE}"))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Settled::default(),
            Err(e) => return Err(e).context(format!("reading {SETTLED_FILE}")),
        };
        let path = dir.join(JOURNAL_FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        // The new file's name must survive a crash as much as its contents.
        File::open(dir)?.sync_all()?;
        let bytes = std::fs::read(&path)?;
        let (entries, whole) = read_entries(&bytes).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        if whole < bytes.len() {
            tracing::warn!("{}: dropping a torn last entry ({} bytes)", path.display(), bytes.len() - whole);
            file.set_len(whole as u64)?;
            file.sync_all()?;
        }
        let mut highest: HashMap<AccountId, u64> =
            settled.nonces.iter().map(|n| (n.account, n.nonce)).collect();
        for e in &entries {
            raise(&mut highest, e.leaf.account, e.leaf.nonce);
        }
        let last_seq = entries.last().map_or(settled.through, |e| e.seq.max(settled.through));
        let unsettled = entries.into_iter().filter(|e| e.seq > settled.through).collect();
        let state = State { last_seq, settled: settled.through, unsettled, highest, in_flight: HashMap::new() };
        Ok(Self { dir: dir.to_path_buf(), state: Mutex::new(state), turn: Notify::new(), _lock: lock })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims `nonce` for a request about to be served; dropping the reservation without
    /// committing it frees the nonce again.
    pub fn reserve(self: &Arc<Self>, account: AccountId, nonce: u64) -> Result<Reservation, NonceUsed> {
        let mut state = self.state();
        if let Some(&highest) = state.highest.get(&account).filter(|&&h| nonce <= h) {
            return Err(NonceUsed::Journaled { nonce, highest });
        }
        let in_flight = state.in_flight.entry(account).or_default();
        if let Some(&highest) = in_flight.last().filter(|&&h| nonce <= h) {
            return Err(NonceUsed::InFlight { nonce, highest });
        }
        in_flight.insert(nonce);
        Ok(Reservation { journal: self.clone(), account, nonce })
    }

    pub fn page(&self, after: u64, limit: usize) -> Page {
        let state = self.state();
        let start = state.unsettled.partition_point(|e| e.seq <= after);
        Page {
            entries: state.unsettled[start..].iter().take(limit).cloned().collect(),
            last_seq: state.last_seq,
            settled_through: state.settled,
        }
    }

    /// Records that the entries up to `through` are settled on chain, and drops them from the
    /// file. Settling what is already settled changes nothing.
    pub fn settle(&self, through: u64) -> Result<u64, SettleError> {
        let mut state = self.state();
        if through > state.last_seq {
            return Err(SettleError::BeyondEnd { through, last_seq: state.last_seq });
        }
        if through <= state.settled {
            return Ok(state.settled);
        }
        // Every highest nonce, not only the settled ones: a superset is as safe and needs no
        // second pass over the file.
        let nonces = state.highest.iter().map(|(&account, &nonce)| AccountNonce { account, nonce }).collect();
        let settled = serde_json::to_vec(&Settled { through, nonces }).map_err(io::Error::other)?;
        replace_file(&self.dir, SETTLED_FILE, &settled)?;
        state.settled = through;
        let keep = state.unsettled.partition_point(|e| e.seq <= through);
        state.unsettled.drain(..keep);
        // Settled entries left in the file are skipped on opening, so a failed compaction
        // costs only disk space until the next settlement.
        let mut tail = Vec::new();
        for e in &state.unsettled {
            tail.extend(line(e)?);
        }
        if let Err(e) = replace_file(&self.dir, JOURNAL_FILE, &tail) {
            tracing::warn!("compacting the journal after settling through {through}: {e}");
        }
        Ok(through)
    }

    fn append(&self, state: &mut State, leaf: Leaf) -> io::Result<u64> {
        let entry = Entry { seq: state.last_seq + 1, leaf };
        let line = line(&entry)?;
        // Opened by name each time: compaction replaces the file under that name.
        let mut file = OpenOptions::new().append(true).open(self.dir.join(JOURNAL_FILE))?;
        let before = file.metadata()?.len();
        if let Err(e) = file.write_all(&line).and_then(|()| file.sync_data()) {
            // Leave no partial line for the next entry to follow.
            let _ = file.set_len(before);
            return Err(e);
        }
        state.last_seq = entry.seq;
        raise(&mut state.highest, entry.leaf.account, entry.leaf.nonce);
        state.unsettled.push(entry);
        Ok(state.last_seq)
    }
}

/// A nonce claimed by a request being served.
pub struct Reservation {
    journal: Arc<Journal>,
    account: AccountId,
    nonce: u64,
}

impl Reservation {
    /// Waits until no lower nonce of the same account is being served, so that entries keep
    /// the account's nonce order.
    pub async fn wait_turn(&self) {
        loop {
            let notified = self.journal.turn.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let earlier = self.journal.state().in_flight[&self.account].first() != Some(&self.nonce);
            if !earlier {
                return;
            }
            notified.await;
        }
    }

    /// Journals the served request (fsynced when this returns) and returns its seq.
    pub fn commit(self, leaf: Leaf) -> io::Result<u64> {
        assert_eq!((leaf.account, leaf.nonce), (self.account, self.nonce), "a reservation commits its own nonce");
        let mut state = self.journal.state();
        self.journal.append(&mut state, leaf)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut state = self.journal.state();
        if let Some(set) = state.in_flight.get_mut(&self.account) {
            set.remove(&self.nonce);
            if set.is_empty() {
                state.in_flight.remove(&self.account);
            }
        }
        drop(state);
        self.journal.turn.notify_waiters();
    }
}

fn raise(highest: &mut HashMap<AccountId, u64>, account: AccountId, nonce: u64) {
    let h = highest.entry(account).or_insert(nonce);
    *h = (*h).max(nonce);
}

fn line(e: &Entry) -> io::Result<Vec<u8>> {
    let mut l = serde_json::to_vec(e).map_err(io::Error::other)?;
    l.push(b'\n');
    Ok(l)
}

/// The entries of a journal file and the length of the bytes they fill. An unreadable last line
/// is a torn append and ends the journal; an unreadable line before it is damage, and an error.
fn read_entries(bytes: &[u8]) -> Result<(Vec<Entry>, usize), String> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut whole = 0;
    for (n, l) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        let parsed = match l.strip_suffix(b"\n") {
            Some(l) => serde_json::from_slice::<Entry>(l).map_err(|e| e.to_string()),
            None => Err("no end of line".into()),
        };
        let entry = match parsed {
            Ok(e) => e,
            Err(_) if whole + l.len() == bytes.len() => break,
            Err(e) => return Err(format!("line {}: {e}", n + 1)),
        };
        if entries.last().map_or(entry.seq == 0, |last| entry.seq <= last.seq) {
            return Err(format!("line {}: seq {} does not follow the line before", n + 1, entry.seq));
        }
        whole += l.len();
        entries.push(entry);
    }
    Ok((entries, whole))
}

/// Replaces `dir/name` so that a crash leaves either the old or the new contents.
pub(crate) fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// `0x` hex for fixed-size byte arrays.
pub(crate) mod hex_bytes {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(b: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(b)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        crate::prepaid::parse_hex(&s).ok_or_else(|| D::Error::custom(format!("{s:?} is not 0x and {} hex digits", 2 * N)))
    }
}

/// A u128 as a decimal string, as the request carries `max_fee`.
mod decimal {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(account: u8, nonce: u64) -> Leaf {
        Leaf {
            account: [account; 32],
            nonce,
            max_fee: u128::MAX,
            signature: [9; 64],
            adapter_hash: [1; 32],
            prompt_hash: [2; 32],
            max_tokens: 16,
            output_hash: [3; 32],
            input_tokens: 5,
            output_tokens: 16,
            attribution: Attribution {
                method: Method::Span,
                index_root: [4; 32],
                record_hash: [5; 32],
                weights: vec![Weight { contribution: 7, ppm: 1_000_000 }],
            },
        }
    }

    fn serve(j: &Arc<Journal>, account: u8, nonce: u64) -> u64 {
        j.reserve([account; 32], nonce).unwrap().commit(leaf(account, nonce)).unwrap()
    }

    /// A fresh journal with account 1's nonces 1 to `n` served.
    fn served(n: u64) -> (tempfile::TempDir, Arc<Journal>) {
        let dir = tempfile::tempdir().unwrap();
        let j = Arc::new(Journal::open(dir.path()).unwrap());
        for nonce in 1..=n {
            serve(&j, 1, nonce);
        }
        (dir, j)
    }

    fn seqs(p: &Page) -> Vec<u64> {
        p.entries.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn entries_and_nonces_survive_a_restart() {
        let (dir, j) = served(0);
        assert_eq!((serve(&j, 1, 0), serve(&j, 1, 5), serve(&j, 2, 3)), (1, 2, 3));
        assert_eq!(j.reserve([1; 32], 5).err(), Some(NonceUsed::Journaled { nonce: 5, highest: 5 }));
        let page = j.page(0, 10);
        assert_eq!((seqs(&page), page.last_seq), (vec![1, 2, 3], 3));
        assert_eq!(page.entries[1].leaf, leaf(1, 5));
        assert!(Journal::open(dir.path()).is_err(), "one server per journal");
        drop(j);

        let j = Arc::new(Journal::open(dir.path()).unwrap());
        assert_eq!(j.page(0, 10).entries, page.entries);
        assert_eq!(j.reserve([1; 32], 4).err(), Some(NonceUsed::Journaled { nonce: 4, highest: 5 }));
        assert_eq!(j.reserve([2; 32], 3).err(), Some(NonceUsed::Journaled { nonce: 3, highest: 3 }));
        assert_eq!(serve(&j, 1, 6), 4);
        assert_eq!(seqs(&j.page(2, 1)), vec![3], "after and limit");
    }

    #[test]
    fn the_file_holds_one_json_object_per_line() {
        let (dir, _j) = served(1);
        let text = std::fs::read_to_string(dir.path().join(JOURNAL_FILE)).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.strip_suffix('\n').unwrap()).unwrap();
        assert_eq!(v["seq"], 1);
        assert_eq!(v["account"], format!("0x{}", "01".repeat(32)));
        assert_eq!(v["max_fee"], u128::MAX.to_string());
        assert_eq!(v["signature"], format!("0x{}", "09".repeat(64)));
        assert_eq!(v["method"], "span");
        assert_eq!(v["weights"], serde_json::json!([{"contribution": 7, "ppm": 1_000_000}]));
        let none = serde_json::to_value(Attribution::none()).unwrap();
        assert_eq!(none["method"], "none");
        assert_eq!(none["record_hash"], format!("0x{}", "00".repeat(32)));
    }

    #[test]
    fn attribution_is_summarised_from_its_record() {
        let record = AttributionRecord {
            method: attribution::record::Method::Datainf { top_k: 8 },
            base_model: [1; 32],
            adapter: Some([2; 32]),
            index_root: [3; 32],
            prompt_hash: [4; 32],
            output_hash: [5; 32],
            prompt_tokens: vec![1, 2],
            output_tokens: vec![3],
            weights: vec![Weight { contribution: 9, ppm: 600_000 }, Weight { contribution: 4, ppm: 400_000 }],
        };
        let a = Attribution::of(&record);
        assert_eq!((a.method, a.index_root, a.record_hash), (Method::Datainf, [3; 32], record.hash()));
        assert_eq!(a.weights, record.weights);
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_damage_before_it_refused() {
        let (dir, j) = served(2);
        let path = dir.path().join(JOURNAL_FILE);
        drop(j);
        let whole = std::fs::read(&path).unwrap();
        for torn in [&b"{\"seq\":3,\"acc"[..], b"{\"seq\":3}\n", b"\0\0\0\0"] {
            let mut bytes = whole.clone();
            bytes.extend_from_slice(torn);
            std::fs::write(&path, &bytes).unwrap();
            let j = Arc::new(Journal::open(dir.path()).unwrap());
            assert_eq!(std::fs::read(&path).unwrap(), whole, "truncated");
            assert_eq!(j.page(0, 10).last_seq, 2);
            assert_eq!(serve(&j, 1, 3), 3);
            drop(j);
            std::fs::write(&path, &whole).unwrap();
        }
        let mut damaged = b"{\"seq\":1,\"acc\n".to_vec();
        damaged.extend_from_slice(&whole);
        std::fs::write(&path, damaged).unwrap();
        let e = Journal::open(dir.path()).err().unwrap();
        assert!(format!("{e:#}").contains("line 1"), "{e:#}");
    }

    #[test]
    fn settled_entries_are_not_listed_again_and_their_nonces_stay_used() {
        let (dir, j) = served(4);
        serve(&j, 2, 10);
        assert!(matches!(j.settle(6), Err(SettleError::BeyondEnd { through: 6, last_seq: 5 })));
        assert_eq!(j.settle(3).unwrap(), 3);
        assert_eq!(j.settle(2).unwrap(), 3, "settling again changes nothing");
        assert_eq!(seqs(&j.page(0, 10)), vec![4, 5]);
        assert_eq!(j.page(0, 10).settled_through, 3);
        assert_eq!(std::fs::read_to_string(dir.path().join(JOURNAL_FILE)).unwrap().lines().count(), 2, "compacted");

        assert_eq!(j.settle(5).unwrap(), 5);
        assert_eq!(std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap(), b"");
        drop(j);
        let j = Arc::new(Journal::open(dir.path()).unwrap());
        let page = j.page(0, 10);
        assert_eq!((page.entries.len(), page.last_seq, page.settled_through), (0, 5, 5));
        assert!(j.reserve([1; 32], 4).is_err() && j.reserve([2; 32], 10).is_err(), "nonces outlive compaction");
        assert_eq!(serve(&j, 1, 5), 6, "seq goes on after the settled ones");
    }

    #[test]
    fn a_crash_between_settling_and_compacting_loses_nothing() {
        let (dir, j) = served(3);
        let before = std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap();
        j.settle(2).unwrap();
        drop(j);
        std::fs::write(dir.path().join(JOURNAL_FILE), before).unwrap();
        let j = Arc::new(Journal::open(dir.path()).unwrap());
        assert_eq!(seqs(&j.page(0, 10)), vec![3]);
        assert_eq!(serve(&j, 1, 4), 4);
    }

    #[tokio::test]
    async fn reservations_keep_nonces_unique_and_in_order() {
        let (_dir, j) = served(0);
        let five = j.reserve([1; 32], 5).unwrap();
        assert_eq!(j.reserve([1; 32], 5).err(), Some(NonceUsed::InFlight { nonce: 5, highest: 5 }));
        assert!(j.reserve([1; 32], 4).is_err(), "below a nonce being served");
        let other_account = j.reserve([2; 32], 5).unwrap();
        drop(other_account);
        let six = j.reserve([1; 32], 6).unwrap();

        // Six finished first, but waits for five to be journaled.
        let waiting = tokio::spawn(async move {
            six.wait_turn().await;
            six.commit(leaf(1, 6)).unwrap()
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        five.wait_turn().await;
        assert_eq!(five.commit(leaf(1, 5)).unwrap(), 1);
        assert_eq!(waiting.await.unwrap(), 2);

        // A failed request frees its nonce and lets the next one go.
        let seven = j.reserve([1; 32], 7).unwrap();
        let eight = j.reserve([1; 32], 8).unwrap();
        drop(seven);
        eight.wait_turn().await;
        assert_eq!(eight.commit(leaf(1, 8)).unwrap(), 3);
        assert_eq!(j.reserve([1; 32], 7).err(), Some(NonceUsed::Journaled { nonce: 7, highest: 8 }));
    }
}

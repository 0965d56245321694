//! Deleting files that no contribution needs.
//!
//! Decisions read the finalized state only, so that a reorg can never delete a file that the
//! canonical chain still references. The rules, per stored file:
//!
//! * referenced by a contribution: keep, and remember that it was referenced;
//! * referenced before but not any more: its contribution was rejected or withdrawn, delete it now;
//! * never referenced: keep it for `prune_after_blocks` after it was stored, the time a contributor
//!   has to sign `datanets.contribute` after uploading, then delete it.
//!
//! When the chain cannot be read for a file, the file is kept: a failed query is no evidence.

use crate::{
	index::{At, ContributionIndex},
	store::{ContentStore, ObjectMeta},
	LOG_TARGET,
};

/// What one [`prune`] run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
	/// Files deleted because the contribution that referenced them is gone.
	pub removed_rejected: usize,
	/// Files deleted because no contribution referenced them within the grace period.
	pub removed_unreferenced: usize,
	/// Files kept, including those whose references could not be read.
	pub kept: usize,
	/// Bytes of file content deleted.
	pub freed_bytes: u64,
}

#[derive(Debug, PartialEq, Eq)]
enum Decision {
	Referenced,
	Keep,
	RemoveRejected,
	RemoveUnreferenced,
}

/// Applies the pruning rules of the module documentation to every stored file.
///
/// Blocking: it reads chain state once per file and deletes files; run it off the async
/// executor.
pub fn prune(
	store: &ContentStore,
	index: &dyn ContributionIndex,
	prune_after_blocks: u64,
) -> PruneReport {
	let finalized = index.finalized_number();
	let mut report = PruneReport::default();
	for (hash, meta) in store.list() {
		let referenced = match index.references(&hash, At::Finalized) {
			Ok(references) => !references.is_empty(),
			Err(e) => {
				log::warn!(
					target: LOG_TARGET,
					"Keeping 0x{}: cannot read its contributions: {e}",
					hex::encode(hash),
				);
				report.kept += 1;
				continue;
			},
		};
		match decide(&meta, referenced, finalized, prune_after_blocks) {
			Decision::Referenced => {
				if let Err(e) = store.mark_referenced(&hash) {
					log::warn!(
						target: LOG_TARGET,
						"Cannot record that 0x{} is referenced: {e}",
						hex::encode(hash),
					);
				}
				report.kept += 1;
			},
			Decision::Keep => report.kept += 1,
			decision @ (Decision::RemoveRejected | Decision::RemoveUnreferenced) => {
				if !store.remove(&hash) {
					continue;
				}
				log::debug!(target: LOG_TARGET, "Pruned 0x{} ({decision:?})", hex::encode(hash));
				report.freed_bytes += meta.size;
				if decision == Decision::RemoveRejected {
					report.removed_rejected += 1;
				} else {
					report.removed_unreferenced += 1;
				}
			},
		}
	}
	report
}

fn decide(
	meta: &ObjectMeta,
	referenced: bool,
	finalized: u64,
	prune_after_blocks: u64,
) -> Decision {
	if referenced {
		Decision::Referenced
	} else if meta.referenced {
		Decision::RemoveRejected
	} else if finalized.saturating_sub(meta.stored_at_block) >= prune_after_blocks {
		Decision::RemoveUnreferenced
	} else {
		Decision::Keep
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{
		index::{ContributionRef, ContributionStatus},
		store::StoreConfig,
	};
	use std::collections::{HashMap, HashSet};

	/// Finalized references per hash; hashes in `failing` make the query fail.
	#[derive(Default)]
	struct FakeIndex {
		finalized: u64,
		references: HashMap<[u8; 32], Vec<ContributionRef>>,
		failing: HashSet<[u8; 32]>,
	}

	impl ContributionIndex for FakeIndex {
		fn references(&self, hash: &[u8; 32], at: At) -> Result<Vec<ContributionRef>, String> {
			assert_eq!(at, At::Finalized, "pruning must only trust finalized state");
			if self.failing.contains(hash) {
				return Err("state unavailable".into());
			}
			Ok(self.references.get(hash).cloned().unwrap_or_default())
		}

		fn best_number(&self) -> u64 {
			self.finalized + 2
		}

		fn finalized_number(&self) -> u64 {
			self.finalized
		}
	}

	fn contribution(contribution_id: u64) -> ContributionRef {
		ContributionRef {
			contribution_id,
			datanet_id: 1,
			contributor: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY".into(),
			status: ContributionStatus::Pending,
		}
	}

	fn store(dir: &std::path::Path) -> ContentStore {
		ContentStore::open(StoreConfig {
			dir: dir.to_path_buf(),
			max_file_size: 1024,
			quota_bytes: 1024 * 1024,
		})
		.unwrap()
	}

	#[test]
	fn applies_every_rule() {
		let dir = tempfile::tempdir().unwrap();
		let store = store(dir.path());
		let mut index = FakeIndex { finalized: 100, ..Default::default() };

		let referenced = store.put(b"referenced", 10).unwrap().hash;
		let rejected = store.put(b"rejected!", 10).unwrap().hash;
		let expired = store.put(b"expired", 50).unwrap().hash;
		let fresh = store.put(b"fresh", 51).unwrap().hash;
		let unknown_state = store.put(b"unknown state", 0).unwrap().hash;

		index.references.insert(referenced, vec![contribution(1)]);
		index.references.insert(rejected, vec![contribution(2)]);
		index.failing.insert(unknown_state);
		let report = prune(&store, &index, 50);
		// `expired` is exactly 50 blocks old: the grace period is over.
		assert_eq!(
			report,
			PruneReport { removed_rejected: 0, removed_unreferenced: 1, kept: 4, freed_bytes: 7 },
		);
		assert!(store.meta(&referenced).unwrap().referenced);
		assert!(store.meta(&rejected).unwrap().referenced);
		assert!(!store.meta(&fresh).unwrap().referenced);
		assert_eq!(store.meta(&expired), None);
		assert!(store.meta(&unknown_state).is_some());

		// The contribution of `rejected` is rejected: its file goes at once, although it is
		// younger than the grace period.
		index.references.remove(&rejected);
		let report = prune(&store, &index, 1000);
		assert_eq!(
			report,
			PruneReport { removed_rejected: 1, removed_unreferenced: 0, kept: 3, freed_bytes: 9 },
		);
		assert_eq!(store.meta(&rejected), None);
		assert!(store.meta(&referenced).is_some());
		assert!(store.meta(&fresh).is_some());
		assert!(store.meta(&unknown_state).is_some());
	}

	#[test]
	fn grace_period_counts_from_the_stored_block() {
		let meta = ObjectMeta { size: 1, stored_at_block: 90, referenced: false };
		assert_eq!(decide(&meta, false, 99, 10), Decision::Keep);
		assert_eq!(decide(&meta, false, 100, 10), Decision::RemoveUnreferenced);
		// Stored at a best block above the finalized one: never negative, so kept.
		assert_eq!(decide(&meta, false, 80, 10), Decision::Keep);
		assert_eq!(decide(&meta, true, 1000, 10), Decision::Referenced);
		let was_referenced = ObjectMeta { referenced: true, ..meta };
		assert_eq!(decide(&was_referenced, false, 91, 10), Decision::RemoveRejected);
		assert_eq!(decide(&was_referenced, true, 91, 10), Decision::Referenced);
	}

	#[test]
	fn referenced_mark_survives_a_restart() {
		let dir = tempfile::tempdir().unwrap();
		let hash = {
			let store = store(dir.path());
			let hash = store.put(b"contributed", 5).unwrap().hash;
			let index = FakeIndex {
				finalized: 6,
				references: [(hash, vec![contribution(7)])].into(),
				..Default::default()
			};
			prune(&store, &index, 100);
			hash
		};
		// After the restart the contribution has been rejected.
		let store = store(dir.path());
		let report = prune(&store, &FakeIndex { finalized: 7, ..Default::default() }, 100);
		assert_eq!(report.removed_rejected, 1);
		assert_eq!(store.meta(&hash), None);
		assert_eq!(store.used_bytes(), 0);
	}
}

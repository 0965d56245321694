//! The node side of datanets, the community datasets of OpenLedger.
//!
//! Files stay off chain: the chain records only a file's blake2-256 content hash, its size and
//! metadata (`datanets.contribute`). This crate keeps the files:
//!
//! * [`store`]: content-addressed files on the node's disk, within a quota;
//! * [`rpc`]: `datanets_upload`, `datanets_download` and `datanets_status`;
//! * [`protocol`]: a request-response protocol through which a node that lacks a file gets it from
//!   its peers, so that any node can serve any file;
//! * [`pruning`]: deletes files that no contribution references (any more);
//! * [`index`]: the chain state those decisions read, provided by the node.
//!
//! See the crate's README for the design and the reasons for it.

pub mod index;
pub mod protocol;
pub mod pruning;
pub mod rpc;
pub mod store;

pub use index::{At, ContributionIndex, ContributionRef, ContributionStatus};
pub use protocol::{NetworkFetcher, NoPeers, PeerFetcher};
pub use pruning::{prune, PruneReport};
pub use rpc::{Datanets, DatanetsApiServer};
pub use store::{ContentStore, ObjectMeta, StoreConfig, StoreError, Stored};

/// Log target of everything in this crate: `-l datanets=debug`.
const LOG_TARGET: &str = "datanets";

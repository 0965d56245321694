//! Proof of Attribution: which datanet contributions shaped a model output, and by how much.
//!
//! Two methods, one output format ([`ppm::Weight`]s in parts per million, summing to exactly
//! 1,000,000, or none):
//! - [`span`]: infini-gram-style span matching against a suffix array over the tokenized
//!   contributions an adapter was trained on. Integer arithmetic end to end, so the weights are
//!   byte-identical on every machine.
//! - [`influence`]: DataInf's closed-form influence of each contribution's LoRA gradient on the
//!   output's loss gradient.
//!
//! [`record`] is the canonical attribution record a receipt signs, and its hash; [`lineage`] the
//! manifest that ties an adapter to the datanet versions it was trained on. The model side
//! (tokenizing, gradients) lives in `openlora`; this crate needs no model.

pub mod hash;
pub mod influence;
pub mod lineage;
pub mod ppm;
pub mod record;
pub mod span;

pub use hash::{blake2_256, blake2_256_file, hex32, leaf_proof, leaves_root, merkle_root, parse_hex32, Hash256};
pub use ppm::{to_ppm, ContributionId, Weight, PPM};

//! ModelFactory: fine-tunes a LoRA adapter for the OpenLoRA base model on the accepted
//! contributions of a datanet version, and writes beside it what Proof of Attribution needs:
//! the lineage manifest, the span index and the per-contribution gradient store.

pub mod dataset;
pub mod factory;
pub mod progress;
pub mod source;

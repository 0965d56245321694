//! Model architectures, one per file.
pub mod gemma3;

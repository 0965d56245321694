//! The records the registry keeps: base models, models (LoRA adapters) and evaluation reports.

use crate::{BalanceOf, Config};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{BoundedVec, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound};
use frame_system::pallet_prelude::BlockNumberFor;
use pallet_datanets::{DatanetId, VersionNumber};
use scale_info::TypeInfo;
use sp_core::H256;

/// Index of a base model, assigned in registration order from 0.
pub type BaseModelId = u32;
/// Index of a model (a LoRA adapter on a base model), assigned in registration order from 0.
pub type ModelId = u32;

/// A foundation model that adapters are trained on. The engine loads it by the same hash.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, DecodeWithMemTracking,
	TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct BaseModelInfo<T: Config> {
	/// blake2-256 of the weights file, as OpenLoRA reports it (`base_model_hash`).
	pub hash: H256,
	pub name: BoundedVec<u8, T::MaxNameLength>,
	/// e.g. `gemma3`.
	pub architecture: BoundedVec<u8, T::MaxNameLength>,
	/// An SPDX identifier or the name of the model's terms.
	pub license: BoundedVec<u8, T::MaxNameLength>,
}

/// Whether requests may be sent to a model.
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
pub enum ModelStatus {
	/// Takes inference requests.
	Active,
	/// Stopped by root (governance): takes no requests until root reactivates it.
	Suspended,
	/// Retired by its owner for good. The record stays, because receipts point at it.
	Deprecated,
}

/// A model's self-reported evaluation: a score (higher is better, on the scale the quality gate
/// uses) and the hash of the report that backs it, e.g. `modelfactory eval`'s JSON output.
#[derive(
	Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
pub struct EvalReport {
	pub score: u32,
	pub evidence: H256,
}

/// A datanet version a model was trained on: versions 1 to `version` of the datanet.
pub type LineageEntry = (DatanetId, VersionNumber);

/// A LoRA adapter on a registered base model.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
pub struct ModelInfo<T: Config> {
	pub owner: T::AccountId,
	pub base_model: BaseModelId,
	/// blake2-256 of `adapter_model.safetensors`: how OpenLoRA names the adapter (`0x…`).
	pub adapter_hash: H256,
	/// The datanet versions it was trained on, sorted by datanet id, one entry per datanet.
	pub lineage: BoundedVec<LineageEntry, T::MaxLineage>,
	/// blake2-256 of ModelFactory's `lineage.json`, which lists every contribution and the
	/// hyper-parameters.
	pub lineage_manifest: H256,
	/// Price per 1,000 input tokens (`R_in`).
	pub price_in: BalanceOf<T>,
	/// Price per 1,000 output tokens (`R_out`).
	pub price_out: BalanceOf<T>,
	pub status: ModelStatus,
	pub eval: Option<EvalReport>,
	/// Held from the owner while the model exists.
	pub deposit: BalanceOf<T>,
	pub registered_at: BlockNumberFor<T>,
}

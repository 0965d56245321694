//! The runtime API the node's datanet store uses to decide which files to keep and to answer
//! `datanets_status`.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use codec::{Codec, Decode, Encode};
pub use pallet_datanets::{ContentHash, ContributionId, DatanetId};
use scale_info::TypeInfo;

/// A pending or accepted contribution of a file.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub struct ContentReference<AccountId> {
	pub contribution_id: ContributionId,
	pub datanet_id: DatanetId,
	pub contributor: AccountId,
	/// `false` while the curators have not decided.
	pub accepted: bool,
}

sp_api::decl_runtime_apis! {
	pub trait DatanetsApi<AccountId: Codec> {
		/// Every pending or accepted contribution of the file `content_hash`, in any datanet.
		/// Empty when nobody (still) contributes it: never contributed, rejected or withdrawn.
		fn content_references(content_hash: ContentHash) -> Vec<ContentReference<AccountId>>;
	}
}

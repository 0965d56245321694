//! Batch fraud proofs: a settled batch is checked against its own leaves, which the operator
//! committed to with `receipts_root`. Each check needs one leaf, or two consecutive ones, and
//! their Merkle proofs, so a proof costs the same however large the batch.
//!
//! With every leaf and every seam between two leaves (and both ends) consistent, the batch is
//! right: each leaf was signed by its payer and priced by the batch's rates; leaves are strictly
//! ordered by `(payer, nonce)`, so a payer's leaves are consecutive and no request appears twice;
//! the running totals make each payer's last `payer_total` the sum of its fees, which must be its
//! charge; and no payer is charged without leaves. Nonces rise across batches (`SettledNonce`),
//! so no request is charged in two batches either.

use crate::*;
use frame_support::{
	pallet_prelude::*,
	traits::{
		fungible::{InspectHold, Mutate, MutateHold},
		tokens::{Fortitude, Precision, Preservation, Restriction},
	},
};
use sp_core::H256;
use sp_runtime::traits::{BlakeTwo256, Saturating, Verify, Zero};

/// The batch's charges as `challenge_batch` restates them.
pub type Charges<T> = [Charge<<T as frame_system::Config>::AccountId, BalanceOf<T>>];

/// The Merkle root of `leaves` in order, as `receipts_root` commits to them.
pub fn batch_root<T: Config>(leaves: &[BatchLeaf<T>]) -> H256 {
	binary_merkle_tree::merkle_root::<BlakeTwo256, _>(leaves.iter().map(|l| l.encode()))
}

/// `leaves[index]` with its proof against [`batch_root`]`(leaves)`.
#[cfg(any(test, feature = "runtime-benchmarks"))]
pub fn prove_leaf<T: Config>(leaves: &[BatchLeaf<T>], index: u32) -> Option<ProvenLeaf<T>> {
	let leaf = leaves.get(index as usize)?.clone();
	let proof = binary_merkle_tree::merkle_proof::<BlakeTwo256, _, _>(
		leaves.iter().map(|l| l.encode()),
		index,
	);
	Some(ProvenLeaf { leaf, index, proof: BoundedVec::try_from(proof.proof).ok()? })
}

fn charge_of<'a, T: Config>(
	charges: &'a Charges<T>,
	payer: &T::AccountId,
) -> Option<&'a Charge<T::AccountId, BalanceOf<T>>> {
	charges.iter().find(|c| &c.payer == payer)
}

impl<T: Config> Pallet<T> {
	/// What `fraud` proves against the batch `record` with `charges`: the kind, the wronged
	/// payer and what it lost (at most its charge).
	pub(crate) fn check_fraud(
		record: &BatchRecord<T>,
		charges: &Charges<T>,
		fraud: &BatchFraud<T>,
	) -> Result<(FraudKind, T::AccountId, BalanceOf<T>), Error<T>> {
		let charged =
			|payer: &T::AccountId| charge_of::<T>(charges, payer).map_or(Zero::zero(), |c| c.amount);
		match fraud {
			BatchFraud::Leaf(proven) => {
				Self::ensure_in_batch(record, proven)?;
				let leaf = &proven.leaf;
				let kind = Self::leaf_fault(record, leaf).ok_or(Error::<T>::NotFraud)?;
				Ok((kind, leaf.payer.clone(), leaf.fee.min(charged(&leaf.payer))))
			},
			BatchFraud::Seam { left, right } => {
				let adjacent = match (left, right) {
					(Some(l), Some(r)) => l.index.checked_add(1) == Some(r.index),
					(None, Some(r)) => r.index == 0,
					(Some(l), None) => l.index.checked_add(1) == Some(record.receipts),
					(None, None) => false,
				};
				ensure!(adjacent, Error::<T>::NotAdjacent);
				for proven in left.iter().chain(right.iter()) {
					Self::ensure_in_batch(record, proven)?;
				}
				let (left, right) = (left.as_ref().map(|p| &p.leaf), right.as_ref().map(|p| &p.leaf));
				let (kind, payer) =
					Self::seam_fault(charges, left, right).ok_or(Error::<T>::NotFraud)?;
				let loss = charged(&payer);
				Ok((kind, payer, loss))
			},
		}
	}

	pub(crate) fn ensure_in_batch(record: &BatchRecord<T>, proven: &ProvenLeaf<T>) -> Result<(), Error<T>> {
		let encoded = proven.leaf.encode();
		ensure!(
			binary_merkle_tree::verify_proof::<BlakeTwo256, _, _>(
				&record.receipts_root,
				proven.proof.iter().copied(),
				record.receipts,
				proven.index,
				&encoded,
			),
			Error::<T>::BadMerkleProof
		);
		Ok(())
	}

	/// What is wrong with a leaf on its own, if anything.
	fn leaf_fault(record: &BatchRecord<T>, leaf: &BatchLeaf<T>) -> Option<FraudKind> {
		let message = request_payload(
			&Self::genesis_hash(),
			&record.adapter_hash,
			&leaf.prompt_hash,
			leaf.max_tokens,
			leaf.nonce,
			&leaf.max_fee,
		);
		if !leaf.signature.verify(message.as_slice(), &leaf.payer) {
			return Some(FraudKind::Unsigned);
		}
		let priced = record.rates.fee(leaf.input_tokens, leaf.output_tokens);
		if leaf.output_tokens > leaf.max_tokens || leaf.fee > leaf.max_fee || leaf.fee != priced {
			return Some(FraudKind::Overcharged);
		}
		None
	}

	/// What is wrong where `left` ends and `right` begins (`None`: the batch's end), and the
	/// payer it wrongs.
	fn seam_fault(
		charges: &Charges<T>,
		left: Option<&BatchLeaf<T>>,
		right: Option<&BatchLeaf<T>>,
	) -> Option<(FraudKind, T::AccountId)> {
		let charge_of = |payer: &T::AccountId| charge_of::<T>(charges, payer);
		let same_payer = matches!((left, right), (Some(l), Some(r)) if l.payer == r.payer);
		if let (Some(l), Some(r)) = (left, right) {
			if (&l.payer, l.nonce) >= (&r.payer, r.nonce) {
				return Some((FraudKind::Unordered, r.payer.clone()));
			}
		}
		if let Some(r) = right {
			let expected = match left {
				Some(l) if same_payer => l.payer_total.checked_add(&r.fee),
				_ => Some(r.fee),
			};
			if expected != Some(r.payer_total) {
				return Some((FraudKind::WrongTotal, r.payer.clone()));
			}
			// The first leaf of its payer opens the charge's nonce range.
			if !same_payer && charge_of(&r.payer).map_or(true, |c| c.first_nonce != r.nonce) {
				return Some((FraudKind::WrongCharge, r.payer.clone()));
			}
		}
		if let Some(l) = left {
			// The last leaf of its payer closes the range and carries the charge.
			if !same_payer &&
				charge_of(&l.payer)
					.map_or(true, |c| c.last_nonce != l.nonce || c.amount != l.payer_total)
			{
				return Some((FraudKind::WrongCharge, l.payer.clone()));
			}
		}
		// A payer charged between them has no leaves.
		charges
			.iter()
			.find(|c| {
				left.map_or(true, |l| c.payer > l.payer) && right.map_or(true, |r| c.payer < r.payer)
			})
			.map(|c| (FraudKind::WrongCharge, c.payer.clone()))
	}

	/// Refunds `payer` up to `loss` from the operator's bond, slashes `slash` of what is left
	/// (`winner_share` of it to the challenger) and voids the batch's maturing pool. Returns
	/// the refund, the slash and the challenger's part.
	pub(crate) fn punish_fraud(
		operator: &T::AccountId,
		record: &mut BatchRecord<T>,
		payer: &T::AccountId,
		loss: BalanceOf<T>,
		challenger: &T::AccountId,
	) -> Result<(BalanceOf<T>, BalanceOf<T>, BalanceOf<T>), DispatchError> {
		let mut info = Operators::<T>::get(operator).ok_or(Error::<T>::NotOperator)?;
		let reason: T::RuntimeHoldReason = HoldReason::OperatorBond.into();
		let refunded = loss.min(T::Currency::balance_on_hold(&reason, operator));
		if !refunded.is_zero() {
			T::Currency::transfer_on_hold(
				&reason,
				operator,
				payer,
				refunded,
				Precision::Exact,
				Restriction::Free,
				Fortitude::Force,
			)?;
		}
		let bond = info.bond.saturating_sub(refunded);
		let params = DisputeConfig::<T>::get();
		let (slashed, to_challenger) =
			Self::forfeit(&reason, operator, params.slash.mul_floor(bond), challenger, params.winner_share)?;
		info.bond = bond.saturating_sub(slashed);
		Operators::<T>::insert(operator, info);

		// A batch held by a leaf dispute still has its pool: the dispute then only settles bonds.
		if record.status != ReceiptStatus::Final {
			if !record.pool.is_zero() {
				T::Currency::transfer(
					&Self::reward_pot(),
					&T::Treasury::get(),
					record.pool,
					Preservation::Preserve,
				)?;
			}
			record.credits = BoundedVec::new();
			record.status = ReceiptStatus::Final;
		}
		record.fraud_proven = true;
		Ok((refunded, slashed, to_challenger))
	}
}

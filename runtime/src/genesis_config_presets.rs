//! Genesis presets: `development` (Alice validates) and `local_testnet` (Alice and Bob validate).
//!
//! Every preset mints exactly [`TOTAL_SUPPLY`]. It is split between the five allocations of the
//! OPEN token, each held by a keyless account derived from a [`PalletId`] (`modl` + the id), so
//! that no private key controls them; vesting and release schedules come with the emissions
//! pallet. The well-known dev accounts are funded out of the community allocation, and the
//! treasury starts with the existential deposit so that fee payments of any size can land in it.

use alloc::{vec, vec::Vec};
use frame_support::{build_struct_json_patch, PalletId};
use serde_json::Value;
use sp_consensus_aura::sr25519::AuthorityId as AuraId;
use sp_consensus_grandpa::AuthorityId as GrandpaId;
use sp_genesis_builder::{PresetId, DEV_RUNTIME_PRESET, LOCAL_TESTNET_RUNTIME_PRESET};
use sp_keyring::{Ed25519Keyring, Sr25519Keyring};
use sp_runtime::traits::AccountIdConversion;

use crate::{
	AccountId, AttributionConfig, AttributionRewardPot, BalancesConfig, RuntimeGenesisConfig, StakingRewardPot,
	SudoConfig, TreasuryAccount,
	EXISTENTIAL_DEPOSIT, MILLI_OPEN, OPEN, TOTAL_SUPPLY,
};
use crate::token::Balance;

/// One share of the OPEN supply.
pub struct Allocation {
	pub name: &'static str,
	pub pallet_id: PalletId,
	/// Share of [`TOTAL_SUPPLY`] in basis points (1/10,000).
	pub basis_points: u32,
}

impl Allocation {
	/// The keyless account that holds this allocation.
	pub fn account(&self) -> AccountId {
		self.pallet_id.into_account_truncating()
	}

	/// The allocation in plancks: exact, since the supply is a multiple of 10,000.
	pub const fn amount(&self) -> Balance {
		TOTAL_SUPPLY / 10_000 * self.basis_points as Balance
	}
}

/// The published allocation of OPEN: 51.71 / 18.29 / 15 / 10 / 5 %.
pub const ALLOCATIONS: [Allocation; 5] = [
	Allocation { name: "community", pallet_id: PalletId(*b"ol/cmnty"), basis_points: 5171 },
	Allocation { name: "investors", pallet_id: PalletId(*b"ol/invst"), basis_points: 1829 },
	Allocation { name: "team", pallet_id: PalletId(*b"ol/teams"), basis_points: 1500 },
	Allocation { name: "ecosystem", pallet_id: PalletId(*b"ol/ecsys"), basis_points: 1000 },
	Allocation { name: "liquidity", pallet_id: PalletId(*b"ol/liqdt"), basis_points: 500 },
];

/// Index of the community allocation in [`ALLOCATIONS`].
pub const COMMUNITY: usize = 0;

/// What each well-known dev account (Alice ... Ferdie) starts with on dev and test chains.
pub const DEV_ENDOWMENT: Balance = 1_000_000 * OPEN;

/// The balances at genesis: the allocations, with `faucets` each given [`DEV_ENDOWMENT`] and the
/// accounts that must always exist (the treasury, the staking-reward pot and the attribution
/// reward pot) their existential deposit, both out of the community allocation.
pub fn genesis_balances(faucets: &[AccountId]) -> Vec<(AccountId, Balance)> {
	let pots = [TreasuryAccount::get(), StakingRewardPot::get(), AttributionRewardPot::get()];
	let carved_out = DEV_ENDOWMENT
		.saturating_mul(faucets.len() as Balance)
		.saturating_add(EXISTENTIAL_DEPOSIT.saturating_mul(pots.len() as Balance));
	let mut balances: Vec<(AccountId, Balance)> = ALLOCATIONS
		.iter()
		.enumerate()
		.map(|(i, a)| {
			let amount = if i == COMMUNITY { a.amount().saturating_sub(carved_out) } else { a.amount() };
			(a.account(), amount)
		})
		.collect();
	balances.extend(pots.into_iter().map(|pot| (pot, EXISTENTIAL_DEPOSIT)));
	balances.extend(faucets.iter().cloned().map(|who| (who, DEV_ENDOWMENT)));
	balances
}

fn testnet_genesis(
	authorities: Vec<(AuraId, GrandpaId)>,
	faucets: Vec<AccountId>,
	root: AccountId,
) -> Value {
	build_struct_json_patch!(RuntimeGenesisConfig {
		balances: BalancesConfig { balances: genesis_balances(&faucets) },
		aura: pallet_aura::GenesisConfig {
			authorities: authorities.iter().map(|(aura, _)| aura.clone()).collect::<Vec<_>>(),
		},
		grandpa: pallet_grandpa::GenesisConfig {
			authorities: authorities.iter().map(|(_, grandpa)| (grandpa.clone(), 1)).collect::<Vec<_>>(),
		},
		sudo: SudoConfig { key: Some(root) },
		attribution: AttributionConfig {
			fee_split: Some(dev_fee_split()),
			dispute_params: Some(dev_dispute_params()),
		},
	})
}

/// OpenLedger publishes no values for beta, gamma and delta; test chains use the pallet's
/// default shares and a 0.001 OPEN platform fee, so that every party of the split is visible.
fn dev_fee_split() -> pallet_attribution::FeeSplit<Balance> {
	pallet_attribution::FeeSplit {
		owner: sp_runtime::Perbill::from_percent(40),
		stakers: sp_runtime::Perbill::from_percent(10),
		contributors: sp_runtime::Perbill::from_percent(50),
		platform_fee: MILLI_OPEN,
	}
}

/// Test chains mature receipts in 10 blocks (a minute) and give verifiers 20 blocks to vote
/// (the gradient attribution takes seconds on a CPU), so a contributor sees a claimable reward
/// and a dispute ends within minutes; the bond and the slashing are the pallet's defaults.
fn dev_dispute_params() -> pallet_attribution::DisputeParams<Balance, crate::BlockNumber> {
	pallet_attribution::DisputeParams {
		challenge_window: 10,
		voting_period: 20,
		challenge_bond: 100 * OPEN,
		slash: sp_runtime::Perbill::from_percent(10),
		winner_share: sp_runtime::Perbill::from_percent(50),
	}
}

/// Dev validators use the well-known keys: sr25519 for Aura, ed25519 for GRANDPA.
fn authority_keys(aura: Sr25519Keyring, grandpa: Ed25519Keyring) -> (AuraId, GrandpaId) {
	(aura.public().into(), grandpa.public().into())
}

fn dev_faucets() -> Vec<AccountId> {
	[
		Sr25519Keyring::Alice,
		Sr25519Keyring::Bob,
		Sr25519Keyring::Charlie,
		Sr25519Keyring::Dave,
		Sr25519Keyring::Eve,
		Sr25519Keyring::Ferdie,
	]
	.into_iter()
	.map(|k| k.to_account_id())
	.collect()
}

/// The genesis patch of a preset, or `None` for an unknown name.
pub fn preset(id: &PresetId) -> Option<Value> {
	let patch = match id.as_ref() {
		DEV_RUNTIME_PRESET => testnet_genesis(
			vec![authority_keys(Sr25519Keyring::Alice, Ed25519Keyring::Alice)],
			dev_faucets(),
			Sr25519Keyring::Alice.to_account_id(),
		),
		LOCAL_TESTNET_RUNTIME_PRESET => testnet_genesis(
			vec![authority_keys(Sr25519Keyring::Alice, Ed25519Keyring::Alice), authority_keys(Sr25519Keyring::Bob, Ed25519Keyring::Bob)],
			dev_faucets(),
			Sr25519Keyring::Alice.to_account_id(),
		),
		_ => return None,
	};
	Some(patch)
}

/// The JSON of a preset, as the `GenesisBuilder` runtime API returns it.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
	preset(id).map(|patch| serde_json::to_vec(&patch).expect("a JSON value always serializes"))
}

pub fn preset_names() -> Vec<PresetId> {
	vec![PresetId::from(DEV_RUNTIME_PRESET), PresetId::from(LOCAL_TESTNET_RUNTIME_PRESET)]
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{Balances, Runtime, System};
	use sp_runtime::BuildStorage;

	/// Builds the genesis state of a preset the way the node does: the preset's patch merged
	/// over the default config, then every pallet's genesis build.
	fn genesis_of(name: &str) -> sp_io::TestExternalities {
		let patch = preset(&PresetId::from(name)).expect("preset exists");
		let mut config = serde_json::to_value(RuntimeGenesisConfig::default()).unwrap();
		json_merge(&mut config, patch);
		let config: RuntimeGenesisConfig = serde_json::from_value(config).unwrap();
		config.build_storage().unwrap().into()
	}

	fn json_merge(base: &mut Value, patch: Value) {
		match (base, patch) {
			(Value::Object(base), Value::Object(patch)) =>
				for (k, v) in patch {
					json_merge(base.entry(k).or_insert(Value::Null), v);
				},
			(base, patch) => *base = patch,
		}
	}

	#[test]
	fn every_preset_mints_exactly_one_billion_open() {
		for name in preset_names() {
			let name = core::str::from_utf8(name.as_ref()).unwrap().to_owned();
			genesis_of(&name).execute_with(|| {
				assert_eq!(
					pallet_balances::TotalIssuance::<Runtime>::get(),
					1_000_000_000 * 10u128.pow(18),
					"preset {name}"
				);
				// The issuance is backed by real balances, not just the counter.
				let held: Balance =
					frame_system::Account::<Runtime>::iter().map(|(_, info)| info.data.free).sum();
				assert_eq!(held, TOTAL_SUPPLY, "preset {name}");
			});
		}
	}

	#[test]
	fn allocations_follow_the_published_split() {
		let shares: Vec<_> = ALLOCATIONS.iter().map(|a| (a.name, a.amount() / OPEN)).collect();
		assert_eq!(
			shares,
			vec![
				("community", 517_100_000),
				("investors", 182_900_000),
				("team", 150_000_000),
				("ecosystem", 100_000_000),
				("liquidity", 50_000_000),
			]
		);
		assert_eq!(ALLOCATIONS.iter().map(|a| a.basis_points).sum::<u32>(), 10_000);
	}

	#[test]
	fn development_funds_dev_accounts_and_alice_validates() {
		genesis_of(DEV_RUNTIME_PRESET).execute_with(|| {
			for who in dev_faucets() {
				assert_eq!(Balances::free_balance(&who), DEV_ENDOWMENT);
			}
			assert_eq!(
				Balances::free_balance(ALLOCATIONS[COMMUNITY].account()),
				ALLOCATIONS[COMMUNITY].amount() - 6 * DEV_ENDOWMENT - 3 * EXISTENTIAL_DEPOSIT
			);
			for pot in [TreasuryAccount::get(), StakingRewardPot::get(), AttributionRewardPot::get()] {
				assert_eq!(Balances::free_balance(pot), EXISTENTIAL_DEPOSIT);
			}
			assert_eq!(pallet_aura::Authorities::<Runtime>::get().len(), 1);
			assert_eq!(pallet_grandpa::Pallet::<Runtime>::grandpa_authorities().len(), 1);
			assert_eq!(pallet_sudo::Key::<Runtime>::get(), Some(Sr25519Keyring::Alice.to_account_id()));
			assert_eq!(System::block_number(), 0);
		});
	}

	#[test]
	fn local_testnet_has_two_validators() {
		genesis_of(LOCAL_TESTNET_RUNTIME_PRESET).execute_with(|| {
			let aura = pallet_aura::Authorities::<Runtime>::get();
			assert_eq!(aura.len(), 2);
			assert_ne!(aura[0], aura[1]);
			let grandpa = pallet_grandpa::Pallet::<Runtime>::grandpa_authorities();
			assert_eq!(grandpa.len(), 2);
			assert_ne!(grandpa[0].0, grandpa[1].0);
		});
	}

	#[test]
	fn unknown_preset_is_none() {
		assert!(get_preset(&PresetId::from("mainnet")).is_none());
	}
}

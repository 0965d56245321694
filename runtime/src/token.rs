//! OPEN, the native token: units, supply and the prices of block space.

/// Balances are counted in plancks: 1 OPEN = 10^18 plancks, the 18 decimals of the OPEN ERC-20.
pub type Balance = u128;

pub const DECIMALS: u8 = 18;
pub const SYMBOL: &str = "OPEN";

pub const OPEN: Balance = 10u128.pow(DECIMALS as u32);
pub const MILLI_OPEN: Balance = OPEN / 1_000;
pub const MICRO_OPEN: Balance = MILLI_OPEN / 1_000;

/// The fixed supply: exactly 1,000,000,000 OPEN exist from genesis on. No pallet mints, fees
/// and dust go to the treasury instead of being burned, and signed accounts cannot burn.
pub const TOTAL_SUPPLY: Balance = 1_000_000_000 * OPEN;

/// An account holding less than 0.01 OPEN is reaped. Each account costs every node storage
/// forever; at 0.01 OPEN, a million spam accounts tie up 10,000 OPEN (0.001 % of the supply),
/// while any real participant (a contribution deposit, a fee payment) is far above it.
pub const EXISTENTIAL_DEPOSIT: Balance = 10 * MILLI_OPEN;

/// One second of block compute (10^12 weight picoseconds) costs 1 OPEN. A `transfer_keep_alive`
/// weighs 3.5 x 10^8 ps with the base extrinsic and the transaction extensions; with its length
/// fee it costs 0.000608 OPEN (measured with `payment_queryInfo` on a dev chain).
pub const FEE_PER_WEIGHT_PICOSECOND: Balance = OPEN / 1_000_000_000_000;

/// 1 micro-OPEN per byte of extrinsic: a transfer (about 145 bytes) pays about 0.00015 OPEN for
/// its length, and filling the 75 % of a 5 MiB block open to normal transactions costs ~3.9 OPEN.
pub const FEE_PER_BYTE: Balance = MICRO_OPEN;

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn supply_is_one_billion_open_in_plancks() {
		assert_eq!(TOTAL_SUPPLY, 1_000_000_000_000_000_000_000_000_000);
		assert_eq!(EXISTENTIAL_DEPOSIT, 10_000_000_000_000_000);
		assert_eq!(FEE_PER_WEIGHT_PICOSECOND, 1_000_000);
	}
}

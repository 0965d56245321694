//! `openledger-node`: the OpenLedger blockchain node.

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod chain_spec;
mod cli;
mod command;
mod rpc;
mod service;

fn main() {
	// One line on stderr and a non-zero exit, instead of the Debug dump `main() -> Result`
	// would print: operators read this in terminals and service logs.
	if let Err(error) = command::run() {
		eprintln!("Error: {error}");
		std::process::exit(1);
	}
}

//! `openledger-node`: the OpenLedger blockchain node.

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod chain_spec;
mod cli;
mod command;
mod datanets;
mod inference;
mod rpc;
mod service;

fn main() {
	// One line on stderr and a non-zero exit, instead of the multi-line Debug dump that
	// `main() -> Result` would print: operators read this in terminals and service logs.
	if let Err(error) = command::run() {
		let message = error.to_string();
		let one_line: Vec<&str> =
			message.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
		eprintln!("Error: {}", one_line.join(" "));
		std::process::exit(1);
	}
}

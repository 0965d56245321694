//! The pallets whose benchmarks the `benchmark pallet` command of the node runs.

frame_benchmarking::define_benchmarks!(
	[frame_benchmarking, BaselineBench::<Runtime>]
	[frame_system, SystemBench::<Runtime>]
	[frame_system_extensions, SystemExtensionsBench::<Runtime>]
	[pallet_balances, Balances]
	[pallet_datanets, Datanets]
	[pallet_model_registry, ModelRegistry]
	[pallet_attribution, Attribution]
	[pallet_timestamp, Timestamp]
	[pallet_sudo, Sudo]
	[pallet_utility, Utility]
	[pallet_transaction_payment, TransactionPayment]
);

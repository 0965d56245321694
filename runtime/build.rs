fn main() {
	#[cfg(feature = "std")]
	build_wasm();
}

/// Builds the runtime to wasm, with source paths remapped so that the blob (and so the genesis
/// hash of the committed chain specs) does not depend on where the repository or the cargo
/// registry sit on the building machine: panic locations embed file paths.
#[cfg(feature = "std")]
fn build_wasm() {
	let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
	let repo_root = std::path::Path::new(&manifest_dir)
		.parent()
		.expect("the runtime crate lives inside the repository")
		.display()
		.to_string();
	let mut remaps = vec![format!("--remap-path-prefix={repo_root}=/openledger")];
	let cargo_home = std::env::var("CARGO_HOME")
		.or_else(|_| std::env::var("HOME").map(|home| format!("{home}/.cargo")));
	if let Ok(cargo_home) = cargo_home {
		remaps.push(format!("--remap-path-prefix={cargo_home}=/cargo"));
	}
	let builder = substrate_wasm_builder::WasmBuilder::new()
		.with_current_project()
		.export_heap_base()
		.import_memory();
	#[cfg(feature = "metadata-hash")]
	let builder = builder.enable_metadata_hash("OPEN", 18);
	remaps.iter().fold(builder, |b, flag| b.append_to_rust_flags(flag)).build();
}

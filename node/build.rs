use substrate_build_script_utils::{generate_cargo_keys, rerun_if_git_head_changed};

fn main() {
	// `--version` prints the commit the node was built from.
	generate_cargo_keys();
	rerun_if_git_head_changed();
}

# Shared by the scripts in this folder; sourced, not run.
#
# One cargo target directory outside the checkout, shared by every clone on the machine (CI
# included), so that a fresh clone reuses the hour-long Substrate build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/openledger/target}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_BIN="$CARGO_TARGET_DIR/release/openledger-node"

# Cargo derives each local crate's identity (and so the symbol names and layout of the runtime's
# wasm) from its source path. Building every checkout through one fixed path, a symlink to the
# checkout, gives the same wasm blob and genesis hash whatever the clone's location, as srtool's
# fixed /build does; it also keeps CI's fresh clones from rebuilding the runtime.
BUILD_LINK="${OPENLEDGER_BUILD_LINK:-$HOME/.cache/openledger/src}"
SCRIPT_START=$SECONDS

step() { printf '\n==> [%4ds] %s\n' "$((SECONDS - SCRIPT_START))" "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

link_build_path() {
	if [ -e "$BUILD_LINK" ] && [ ! -L "$BUILD_LINK" ]; then
		die "$BUILD_LINK exists and is not a symlink: move it away or set OPENLEDGER_BUILD_LINK"
	fi
	mkdir -p "$(dirname "$BUILD_LINK")"
	ln -sfn "$REPO_ROOT" "$BUILD_LINK"
}

# `cargo "$@"` on this checkout's node workspace, through the fixed build path.
cargo_at_build_link() {
	link_build_path
	cargo "$@" --manifest-path "$BUILD_LINK/Cargo.toml"
}

# `cargo "$@"` on the inference workspace (`inference/`, the OpenLoRA engine), same target dir,
# with the CPU flags of inference/.cargo/config.toml (cargo reads that file only when run from
# inside inference/).
cargo_inference() {
	link_build_path
	RUSTFLAGS="-C target-cpu=x86-64-v3" cargo "$@" --manifest-path "$BUILD_LINK/inference/Cargo.toml"
}

# Builds test binaries of the inference workspace (`cargo test --no-run "$@"`) and prints
# `name path` for each, one per line.
inference_test_binaries() {
	cargo_inference test --no-run --message-format=json "$@" | python3 -c 'import sys, json
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] != ["bin"]:
        print(m["target"]["name"], m["executable"])'
}
OPENLORA_BIN="$CARGO_TARGET_DIR/release/openlora"
MODELFACTORY_BIN="$CARGO_TARGET_DIR/release/modelfactory"

# The first half of both README commands: the toolchain, then the node.
setup_and_build_node() {
	step "toolchain"
	bash "$REPO_ROOT/scripts/setup.sh"
	step "building openledger-node (release; a cold build takes about 45 minutes on 2 cores)"
	cargo_at_build_link build --release --locked -p openledger-node
}

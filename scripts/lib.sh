# Shared by the scripts in this folder; sourced, not run.
#
# One cargo target directory outside the checkout, shared by every clone on the machine (CI
# included), so that a fresh clone reuses the hour-long Substrate build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/openledger/target}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_BIN="$CARGO_TARGET_DIR/release/openledger-node"
SCRIPT_START=$SECONDS

step() { printf '\n==> [%4ds] %s\n' "$((SECONDS - SCRIPT_START))" "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The first half of both README commands: the toolchain, then the node.
setup_and_build_node() {
	step "toolchain"
	bash "$REPO_ROOT/scripts/setup.sh"
	step "building openledger-node (release; a cold build takes about an hour on 2 cores)"
	cargo build --release --locked -p openledger-node
}

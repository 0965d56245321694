#!/usr/bin/env bash
# `cargo "$@"` for this checkout, the way the other scripts run it: through the fixed build path
# (see lib.sh) and the shared target directory, and one at a time: a second invocation waits for the
# first, because two Substrate builds at once on a small machine only make both slower.
#   scripts/cargo.sh test --release -p pallet-datanets
#   scripts/cargo.sh --inference test --release       (the inference/ workspace)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mkdir -p "$CARGO_TARGET_DIR"
exec 9>"$CARGO_TARGET_DIR/.openledger-cargo.lock"
if ! flock -n 9; then
	echo "scripts/cargo.sh: waiting for another cargo run on this machine to finish..." >&2
	flock 9
fi
if [ "${1:-}" = --inference ]; then
	shift
	cargo_inference "$@"
else
	cargo_at_build_link "$@"
fi

#!/usr/bin/env bash
# Measures the weights of the project's own pallets and regenerates their `weights.rs`.
#   scripts/benchmark-pallets.sh            # every pallet below
#   scripts/benchmark-pallets.sh datanets   # one
# Builds the node with `--features runtime-benchmarks` (a second build beside the normal one in
# the shared target directory: about 40 minutes cold on 2 cores), then runs 50 steps × 20
# repeats per call in the wasm executor against the development chain.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PALLETS=("${@:-datanets}")
step "toolchain"
bash "$REPO_ROOT/scripts/setup.sh"
step "building openledger-node with runtime-benchmarks"
# frame-benchmarking-cli carries a test runtime (for `benchmark storage`) whose wasm build cannot
# find itself through our workspace's metadata; the pallet benchmarks do not use it.
export SKIP_FRAME_STORAGE_ACCESS_TEST_RUNTIME_WASM_BUILD=1
"$REPO_ROOT/scripts/cargo.sh" build --release --locked -p openledger-node --features runtime-benchmarks
WASM="$(ls -t "$CARGO_TARGET_DIR"/release/wbuild/openledger-runtime/openledger_runtime.compact.compressed.wasm | head -1)"

for pallet in "${PALLETS[@]}"; do
	step "benchmarking pallet_${pallet//-/_}"
	"$NODE_BIN" benchmark pallet \
		--runtime "$WASM" \
		--genesis-builder-preset development \
		--pallet "pallet_${pallet//-/_}" --extrinsic '*' \
		--steps 50 --repeat 20 \
		--wasm-execution compiled \
		--heap-pages 4096 \
		--template "$REPO_ROOT/scripts/pallet-weight-template.hbs" \
		--output "$REPO_ROOT/pallets/$pallet/src/weights.rs"
done
step "done: review and commit pallets/*/src/weights.rs"

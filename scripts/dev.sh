#!/usr/bin/env bash
# Sets everything up, builds the node and starts a single-validator development chain:
# RPC on ws://127.0.0.1:9944, blocks every 6 s, finalized by GRANDPA, state in a temporary folder.
# Extra arguments go to the node (e.g. `scripts/dev.sh --rpc-external`).
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

setup_and_build_node
step "starting the dev chain (Ctrl-C to stop)"
exec "$NODE_BIN" --dev "$@"

#!/usr/bin/env bash
# Sets everything up, builds the node, the OpenLoRA engine and ModelFactory, and starts a
# single-validator development chain (RPC on ws://127.0.0.1:9944, blocks every 6 s, finalized by
# GRANDPA, state in a temporary folder) together with the engine serving the default model on
# http://127.0.0.1:8000. The dev node holds Alice's attribution key and its off-chain worker sends
# the inference requests assigned to Alice to the engine, and settles the prepaid requests the
# engine serves (signed by the payer for this chain, journaled in the temporary folder) in batches.
#
# Then a demo (tests/e2e/dev-demo.mjs) publishes a small datanet, trains an adapter on it,
# registers it as a model with Alice as its operator, requests one inference and prints the
# receipt, and settles one prepaid request in a batch; OPENLEDGER_DEV_DEMO=0 skips it. Extra arguments go to the node (e.g. `--rpc-external`).
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

ENGINE_PORT="${OPENLORA_PORT:-8000}"
setup_and_build_node
step "building the OpenLoRA engine and ModelFactory"
cargo_inference build --release --locked
bash scripts/fetch-model.sh
if [ "${OPENLEDGER_DEV_DEMO:-1}" != 0 ] && [ ! -d tests/e2e/node_modules ]; then
	(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi

WORK="$(mktemp -d -t openledger-dev-XXXXXX)"
cleanup() {
	kill "${NODE_PID:-}" "${ENGINE_PID:-}" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

step "starting the dev chain (Ctrl-C stops it and the engine)"
"$NODE_BIN" --dev --inference-url "http://127.0.0.1:$ENGINE_PORT" "$@" &
NODE_PID=$!
# The engine takes prepaid requests signed for this chain only, so it needs the genesis hash.
GENESIS=""
for _ in $(seq 1 120); do
	GENESIS="$(curl -sf -H 'Content-Type: application/json' \
		-d '{"id":1,"jsonrpc":"2.0","method":"chain_getBlockHash","params":[0]}' \
		http://127.0.0.1:9944 2>/dev/null | sed -n 's/.*"result":"\(0x[0-9a-f]*\)".*/\1/p')" || true
	[ -n "$GENESIS" ] && break
	kill -0 "$NODE_PID" 2>/dev/null || die "the node exited"
	sleep 1
done
[ -n "$GENESIS" ] || die "the node's RPC did not answer on http://127.0.0.1:9944"

step "starting the OpenLoRA engine on http://127.0.0.1:$ENGINE_PORT, prepaid requests journaled in $WORK/journal (log: $WORK/openlora.log)"
OPENLORA_ATTRIBUTION="${OPENLORA_ATTRIBUTION:-datainf}" "$OPENLORA_BIN" --port "$ENGINE_PORT" \
	--ledger-genesis "$GENESIS" --journal "$WORK/journal" >"$WORK/openlora.log" 2>&1 &
ENGINE_PID=$!
for _ in $(seq 1 120); do
	curl -sf "http://127.0.0.1:$ENGINE_PORT/health" >/dev/null 2>&1 && break
	kill -0 "$ENGINE_PID" 2>/dev/null || die "openlora exited: $(tail -20 "$WORK/openlora.log")"
	sleep 1
done
if [ "${OPENLEDGER_DEV_DEMO:-1}" != 0 ]; then
	step "demo: datanet -> adapter -> model -> inference request -> receipt"
	node tests/e2e/dev-demo.mjs ws://127.0.0.1:9944 "http://127.0.0.1:$ENGINE_PORT" "$MODELFACTORY_BIN" "$WORK" ||
		echo "the demo failed; the chain and the engine keep running" >&2
fi
wait "$NODE_PID"

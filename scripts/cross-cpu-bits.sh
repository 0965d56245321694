#!/usr/bin/env bash
# Runs the test that pins the bits of a loss gradient (inference/openlora/tests/training.rs,
# `gradients_have_the_same_bits_on_every_machine`) as CPUs other than this one: under qemu's
# user-mode emulator as a CPU without AVX-512 (`-cpu max`: AVX2 and FMA, which is where the
# engine's kernels and candle's differ most) and as a Haswell, and natively on one thread.
# Verifiers recompute DataInf attribution weights from that gradient on their own machines, so
# the weights are only as portable as these bits. Needs qemu-user (scripts/setup.sh installs it).
#   scripts/cross-cpu-bits.sh
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

QEMU="$(command -v qemu-x86_64 || true)"
[ -n "$QEMU" ] || die "qemu-x86_64 not found: run scripts/setup.sh (Debian package qemu-user)"
TEST=gradients_have_the_same_bits_on_every_machine

exe="$(inference_test_binaries --release --locked -p openlora --test training | awk '$1 == "training" { print $2 }')"
[ -x "$exe" ] || die "no test binary for openlora's tests/training.rs"

run() {
	local what="$1"
	shift
	printf '%-40s' "$what"
	local out
	if out="$("$@" "$TEST" --exact 2>&1)" && grep -q '^test result: ok. 1 passed' <<<"$out"; then
		echo "same bits"
	else
		echo "DIFFERENT BITS"
		printf '%s\n' "$out" >&2
		return 1
	fi
}
status=0
run "this CPU ($(grep -m1 -o 'avx512_vnni' /proc/cpuinfo || echo 'no AVX-512 VNNI'))" "$exe" || status=1
run "this CPU, one thread" env RAYON_NUM_THREADS=1 "$exe" || status=1
run "qemu -cpu max (AVX2 + FMA, no AVX-512)" "$QEMU" -cpu max "$exe" || status=1
run "qemu -cpu Haswell" "$QEMU" -cpu Haswell "$exe" || status=1
exit $status

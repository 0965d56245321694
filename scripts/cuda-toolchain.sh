#!/usr/bin/env bash
# Installs the CUDA 13.0 build tools OpenLoRA's `cuda` feature needs, from PyPI, into
# ~/.cache/openledger/cuda-13.0 (a CUDA_HOME layout): nvcc, nvvm, the CUDA headers and the
# cuBLAS / cuRAND / NVRTC / runtime libraries candle links against. Pinned to the 13.0 line:
# newer PTX does not load on a CUDA 13.0 driver. These wheels are proprietary (NVIDIA EULA):
# installed at build time, never committed.
#
# The GPU driver's libcuda.so is not on PyPI, so this writes a link-time stub with the driver
# API's symbol names (as the toolkit's lib64/stubs/libcuda.so is); the real driver library is
# loaded at run time on the GPU machine.
#   source <(scripts/cuda-toolchain.sh --env)    # prints the exports a build needs
set -Eeuo pipefail
PREFIX="${OPENLEDGER_CUDA_HOME:-$HOME/.cache/openledger/cuda-13.0}"
WHEELS=(
	nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88
	nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88
	nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
)
log() { printf '[cuda-toolchain] %s\n' "$*" >&2; }

if [ ! -x "$PREFIX/bin/nvcc" ] || [ ! -f "$PREFIX/lib/stubs/libcuda.so" ]; then
	work="$(mktemp -d)"
	trap 'rm -rf "$work"' EXIT
	log "downloading ${#WHEELS[@]} CUDA 13.0 wheels from PyPI (about 700 MB)"
	python3 -m pip download --no-deps --only-binary=:all: -d "$work/wheels" "${WHEELS[@]}" >&2
	for w in "$work"/wheels/*.whl; do python3 -m zipfile -e "$w" "$work/x"; done
	rm -rf "$PREFIX.partial"
	mv "$work/x/nvidia/cu13" "$PREFIX.partial"
	chmod +x "$PREFIX.partial"/bin/* "$PREFIX.partial"/nvvm/bin/* 2>/dev/null || true
	# Unversioned names for the linker.
	for so in "$PREFIX.partial"/lib/lib*.so.*; do
		base="${so%%.so.*}.so"
		[ -e "$base" ] || ln -s "$(basename "$so")" "$base"
	done
	# The driver stub: every driver API entry point cudarc declares, each returning an error.
	src="$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -path '*cudarc-0.19.10/src/driver/sys/mod.rs' | head -1)"
	[ -n "$src" ] || { log "cudarc 0.19.10 sources not found: run cargo fetch in inference/ first"; exit 1; }
	mkdir -p "$PREFIX.partial/lib/stubs"
	grep -oE 'fn cu[A-Z][A-Za-z0-9_]*' "$src" | sort -u | sed 's/^fn \(.*\)/int \1(void) { return 999; }/' >"$work/stub.c"
	gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$PREFIX.partial/lib/stubs/libcuda.so" "$work/stub.c"
	rm -rf "$PREFIX"
	mv "$PREFIX.partial" "$PREFIX"
	log "installed in $PREFIX"
fi
if [ "${1:-}" = --env ]; then
	cat <<ENV
export CUDA_HOME="$PREFIX" CUDA_PATH="$PREFIX" CUDA_COMPUTE_CAP=90
export PATH="$PREFIX/bin:\$PATH"
export LIBRARY_PATH="$PREFIX/lib:$PREFIX/lib/stubs\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
ENV
fi

#!/usr/bin/env bash
# Prepares a stock Debian 12 machine to build and test OpenLedger, without rustup downloads.
#
# The wasm runtime needs a Rust toolchain with a `wasm32v1-none` standard library and a wasm
# linker. rustup's toolchains here have neither, and we must not fetch them from rustup's servers,
# so we use Debian's `rustc-web` toolchain (with its library sources and the matching `lld`) and
# compile `core`/`alloc` for `wasm32v1-none` into its sysroot once. The repository's
# `rust-toolchain.toml` names that toolchain, so a plain `cargo build` in the repo uses it.
#
# Idempotent: every step checks before it acts; a second run finishes in seconds.
set -Eeuo pipefail

TOOLCHAIN_NAME=openledger-debian
SYSROOT=/usr
HOST=x86_64-unknown-linux-gnu
WASM_TARGET=wasm32v1-none
WASM_LIBDIR="$SYSROOT/lib/rustlib/$WASM_TARGET/lib"
LLVM_VERSION=22
# qemu-user: scripts/cross-cpu-bits.sh runs the attribution engine's bit-exactness test as
# other CPUs.
APT_PACKAGES=(rustc-web cargo-web rust-web-src "lld-$LLVM_VERSION" protobuf-compiler
	pkg-config make gcc g++ libc6-dev ca-certificates curl git python3-pip fonts-dejavu-core
	qemu-user)

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || die "not root and no sudo: run as root or install sudo"
	SUDO=(sudo)
fi

missing_packages() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
	done
}

# 1. Debian packages. `apt-get update` only when something is missing, to keep re-runs instant.
mapfile -t missing < <(missing_packages "${APT_PACKAGES[@]}")
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	missing+=(nodejs npm)
fi
if [ "${#missing[@]}" -gt 0 ]; then
	log "installing Debian packages: ${missing[*]}"
	"${SUDO[@]}" apt-get update -qq || die "apt-get update failed (is deb.debian.org reachable?)"
	DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
else
	log "Debian packages present"
fi

RUSTC="$SYSROOT/bin/rustc"
CARGO="$SYSROOT/bin/cargo"
[ -x "$RUSTC" ] && [ -x "$CARGO" ] || die "$RUSTC or $CARGO missing after installing rustc-web/cargo-web"
RUST_SRC="$SYSROOT/lib/rustlib/src/rust/library"
[ -d "$RUST_SRC/core" ] || die "Rust library sources not found at $RUST_SRC (package rust-web-src)"
RUSTC_VERSION="$("$RUSTC" -vV | sed -n 's/^release: //p')"
log "toolchain: $("$RUSTC" --version)"

# 2. rustc looks for its wasm linker under the sysroot as `rust-lld`; Debian's lld of the same
#    LLVM major answers to that name.
LLVM_MAJOR="$("$RUSTC" -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')"
[ "$LLVM_MAJOR" = "$LLVM_VERSION" ] || die "rustc uses LLVM $LLVM_MAJOR but this script pins lld-$LLVM_VERSION"
LLD="/usr/lib/llvm-$LLVM_VERSION/bin/lld"
RUST_LLD="$SYSROOT/lib/rustlib/$HOST/bin/rust-lld"
[ -x "$LLD" ] || die "$LLD missing (package lld-$LLVM_VERSION)"
if [ "$(readlink -f "$RUST_LLD" 2>/dev/null)" != "$(readlink -f "$LLD")" ]; then
	log "linking $RUST_LLD -> $LLD"
	"${SUDO[@]}" mkdir -p "$(dirname "$RUST_LLD")"
	"${SUDO[@]}" ln -sfn "$LLD" "$RUST_LLD"
fi

# 3. core/alloc for wasm32v1-none, built once per rustc release. Bitcode must be embedded: the
#    runtime blob is linked with LTO. A stamp records the rustc that built them.
STAMP="$WASM_LIBDIR/.openledger-stamp"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$RUSTC_VERSION" ]; then
	log "building core/alloc for $WASM_TARGET with rustc $RUSTC_VERSION (one time, ~1 min)"
	scratch="$(mktemp -d)"
	mkdir -p "$scratch/src"
	cat >"$scratch/Cargo.toml" <<-'EOF'
		[package]
		name = "wasm-sysroot"
		version = "0.0.0"
		edition = "2021"
		[lib]
		crate-type = ["cdylib"]
		[profile.release]
		panic = "abort"
	EOF
	cat >"$scratch/src/lib.rs" <<-'EOF'
		#![no_std]
		#[panic_handler]
		fn panic(_: &core::panic::PanicInfo) -> ! { loop {} }
	EOF
	(cd "$scratch" && env -u RUSTUP_TOOLCHAIN -u CARGO_TARGET_DIR \
		RUSTC="$RUSTC" RUSTC_BOOTSTRAP=1 RUSTFLAGS="-C embed-bitcode=yes" \
		"$CARGO" build -q --release --target "$WASM_TARGET" -Zbuild-std=core,alloc) ||
		die "building core/alloc for $WASM_TARGET failed (see cargo output above)"
	deps="$scratch/target/$WASM_TARGET/release/deps"
	"${SUDO[@]}" rm -rf "$WASM_LIBDIR"
	"${SUDO[@]}" mkdir -p "$WASM_LIBDIR"
	for lib in core alloc compiler_builtins; do
		ls "$deps"/lib"$lib"-*.rlib >/dev/null 2>&1 || die "lib$lib rlib was not produced"
		"${SUDO[@]}" cp "$deps"/lib"$lib"-*.rlib "$WASM_LIBDIR/"
	done
	echo "$RUSTC_VERSION" | "${SUDO[@]}" tee "$STAMP" >/dev/null
	rm -rf "$scratch"
	# Runtime objects built against the previous rlibs fail with "can't find crate".
	rm -rf "${CARGO_TARGET_DIR:-$HOME/.cache/openledger/target}"/*/wbuild
else
	log "core/alloc for $WASM_TARGET present"
fi

# 4. Make the Debian toolchain the repository's toolchain. With rustup, `rust-toolchain.toml`
#    names a linked toolchain; without rustup, /usr/bin/cargo is already the one on PATH.
if command -v rustup >/dev/null; then
	if ! rustup toolchain list | grep -q "^$TOOLCHAIN_NAME"; then
		log "linking rustup toolchain $TOOLCHAIN_NAME -> $SYSROOT"
		rustup toolchain link "$TOOLCHAIN_NAME" "$SYSROOT"
	fi
else
	command -v cargo >/dev/null && [ "$(readlink -f "$(command -v cargo)")" = "$(readlink -f "$CARGO")" ] ||
		die "no rustup and 'cargo' on PATH is not $CARGO: put $SYSROOT/bin first in PATH"
fi

# 5. Sanity check: the toolchain the repository selects is the one prepared above.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
selected="$(cd "$repo" && rustc -vV | sed -n 's/^release: //p')"
[ "$selected" = "$RUSTC_VERSION" ] ||
	die "rustc in $repo is $selected, expected Debian's $RUSTC_VERSION (check rust-toolchain.toml)"
log "ready: rustc $selected with $WASM_TARGET core/alloc; lld $LLVM_VERSION"

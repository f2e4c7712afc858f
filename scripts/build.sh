#!/usr/bin/env bash
# Build the peerkit library and put it where addons/peerkit/peerkit.gdextension looks for it.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/build.sh [--target TARGET] [--debug] [--test-hooks] [--into DIR] [--help]

Builds the peerkit library and copies it into addons/peerkit/bin/ under the names peerkit.gdextension lists
for its platform.
  (default)  the optimised library (cargo --release), under both the *.debug.* name (loaded by the editor,
             headless runs and debug exports) and the *.release.* name (release exports): what a game needs,
             and what scripts/package.sh ships.
  --debug    the unoptimised library with godot-rust's strict safety checks, under the *.debug.* name only.
             It catches misuse early and makes every call many times slower: for peerkit's own tests.
--test-hooks builds in PeerkitPanicProbe, a class that panics on purpose, for scripts/test.sh. Not for shipping.
--into DIR   copies the libraries into DIR instead of addons/peerkit/bin (scripts/package.sh stages the zip so).
--target TARGET  host (the default: this system's platform), windows-x86_64 or linux-arm64. The other two
             are cross-built from Linux x86_64 with Debian's toolchains, installed on first use into
             .toolchains/ (scripts/install-toolchain.sh: sid's rustc, cargo and rust-src, which build std
             for the target with -Zbuild-std; mingw-w64 or gcc-aarch64-linux-gnu as the linker); the build
             goes to target/cross/. The Windows DLL links the mingw runtime statically (nothing to ship
             beside it) and has its symbols stripped.
Prints the path of each copied library.
USAGE
}

profile=release
target=host
features=()
into=""
while (( $# > 0 )); do
  case "$1" in
    --debug) profile=debug ;;
    --test-hooks) features=(--features test-hooks) ;;
    --into) into=${2:?--into needs a folder}; shift ;;
    --target) target=${2:?--target needs host, windows-x86_64 or linux-arm64}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

cargo_args=(build -p peerkit --locked "${features[@]}")
[[ $profile == release ]] && cargo_args+=(--release)

case "$target" in
  host)
    cargo "${cargo_args[@]}" >&2
    target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || echo "$repo/target")
    case "$(uname -s)" in
      Linux)
        case "$(uname -m)" in
          x86_64) arch=x86_64 ;;
          aarch64|arm64) arch=arm64 ;;
          *) echo "build.sh: unsupported Linux architecture $(uname -m)" >&2; exit 1 ;;
        esac
        src="$target_dir/$profile/libpeerkit.so"
        dest="libpeerkit.linux.debug.$arch.so" ;;
      Darwin)
        src="$target_dir/$profile/libpeerkit.dylib"
        dest="libpeerkit.macos.debug.dylib" ;;
      MINGW*|MSYS*|CYGWIN*)
        src="$target_dir/$profile/peerkit.dll"
        dest="peerkit.windows.debug.x86_64.dll" ;;
      *) echo "build.sh: unsupported system $(uname -s)" >&2; exit 1 ;;
    esac ;;
  windows-x86_64|linux-arm64)
    [[ $(uname -s) == Linux && $(uname -m) == x86_64 ]] ||
      { echo "build.sh: --target $target cross-builds from Linux x86_64 only" >&2; exit 1; }
    # shellcheck source=lib/cross.sh
    source "$repo/scripts/lib/cross.sh"
    cross_env "$target"
    cargo_args+=(--target "$cross_triple" -Zbuild-std=std,panic_abort,panic_unwind)
    "$CARGO" "${cargo_args[@]}" >&2
    src="$CARGO_TARGET_DIR/$cross_triple/$profile/$cross_lib"
    dest=$cross_dest ;;
  *) echo "build.sh: unknown target '$target' (host, windows-x86_64 or linux-arm64)" >&2; exit 2 ;;
esac

bin_dir=${into:-$repo/addons/peerkit/bin}
dest="$bin_dir/$dest"
install() {
  # Copy to a temporary name, then rename, so a running Godot never maps a half-written file.
  cp "$src" "$1.tmp"
  mv -f "$1.tmp" "$1"
  echo "$1"
}
mkdir -p "$bin_dir"
install "$dest"
if [[ $profile == release ]]; then
  install "${dest/.debug./.release.}"
fi

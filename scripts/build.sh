#!/usr/bin/env bash
# Build the peerkit library and put it where addons/peerkit/peerkit.gdextension looks for it.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/build.sh [--debug] [--test-hooks] [--into DIR] [--help]

Builds the peerkit library and copies it into addons/peerkit/bin/ under the names peerkit.gdextension lists
for this platform.
  (default)  the optimised library (cargo --release), under both the *.debug.* name (loaded by the editor,
             headless runs and debug exports) and the *.release.* name (release exports): what a game needs,
             and what scripts/package.sh ships.
  --debug    the unoptimised library with godot-rust's strict safety checks, under the *.debug.* name only.
             It catches misuse early and makes every call many times slower: for peerkit's own tests.
--test-hooks builds in PeerkitPanicProbe, a class that panics on purpose, for scripts/test.sh. Not for shipping.
--into DIR   copies the libraries into DIR instead of addons/peerkit/bin (scripts/package.sh stages the zip so).
Prints the path of each copied library.
USAGE
}

profile=release
features=()
into=""
while (( $# > 0 )); do
  case "$1" in
    --debug) profile=debug ;;
    --test-hooks) features=(--features test-hooks) ;;
    --into) into=${2:?--into needs a folder}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

cargo_args=(build -p peerkit --locked "${features[@]}")
[[ $profile == release ]] && cargo_args+=(--release)
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
    dest="addons/peerkit/bin/libpeerkit.linux.debug.$arch.so" ;;
  Darwin)
    src="$target_dir/$profile/libpeerkit.dylib"
    dest="addons/peerkit/bin/libpeerkit.macos.debug.dylib" ;;
  MINGW*|MSYS*|CYGWIN*)
    src="$target_dir/$profile/peerkit.dll"
    dest="addons/peerkit/bin/peerkit.windows.debug.x86_64.dll" ;;
  *) echo "build.sh: unsupported system $(uname -s)" >&2; exit 1 ;;
esac

bin_dir=${into:-$repo/addons/peerkit/bin}
dest="$bin_dir/${dest#addons/peerkit/bin/}"
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

#!/usr/bin/env bash
# Build the peerkit library and put it where addons/peerkit/peerkit.gdextension looks for it.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/build.sh [--release [--editor]] [--test-hooks] [--help]

Runs `cargo build -p peerkit` (debug by default) and copies the library into addons/peerkit/bin/
under the name peerkit.gdextension lists for this platform:
  debug   -> the *.debug.* entry, loaded by the editor and debug exports;
  release -> the *.release.* entry, loaded by release exports.
--editor (with --release) also installs the release build under the *.debug.* name, so the editor and
headless runs (demo, benchmarks) use the optimised library. The debug build runs godot-rust's strict
safeguards, which make each call into the library many times slower: right for tests, slow for play.
--test-hooks builds in PeerkitPanicProbe, a class that panics on purpose, for scripts/test.sh. Not for shipping.
Prints the path of the copied library.
USAGE
}

profile=debug
editor=false
features=()
for arg in "$@"; do
  case "$arg" in
    --release) profile=release ;;
    --editor) editor=true ;;
    --test-hooks) features=(--features test-hooks) ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

if [[ $editor == true && $profile != release ]]; then
  echo "build.sh: --editor goes with --release" >&2
  exit 2
fi

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
    dest="addons/peerkit/bin/libpeerkit.linux.$profile.$arch.so" ;;
  Darwin)
    src="$target_dir/$profile/libpeerkit.dylib"
    dest="addons/peerkit/bin/libpeerkit.macos.$profile.dylib" ;;
  MINGW*|MSYS*|CYGWIN*)
    src="$target_dir/$profile/peerkit.dll"
    dest="addons/peerkit/bin/peerkit.windows.$profile.x86_64.dll" ;;
  *) echo "build.sh: unsupported system $(uname -s)" >&2; exit 1 ;;
esac

install() {
  # Copy to a temporary name, then rename, so a running Godot never maps a half-written file.
  cp "$src" "$1.tmp"
  mv -f "$1.tmp" "$1"
  echo "$repo/$1"
}
mkdir -p addons/peerkit/bin
install "$dest"
if [[ $editor == true ]]; then
  install "${dest/.release./.debug.}"
fi

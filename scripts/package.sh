#!/usr/bin/env bash
# Build an Asset-Library-ready zip of the addon: dist/peerkit-VERSION.zip.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/package.sh [--host-only] [--help]

Builds the optimised library for every platform this machine can build (scripts/build.sh --into a staging
folder: the release build under both the release and the editor's names, so the editor and exported games
both load it) and writes dist/peerkit-VERSION.zip (VERSION from Cargo.toml) holding addons/peerkit/:
peerkit.gdextension (listing exactly the libraries in the zip), bin/, icons/, LICENSE and README.md.
On Linux x86_64 that is Linux x86_64, Windows x86_64 and Linux arm64 (the cross toolchains install into
.toolchains/ on first use; see scripts/install-toolchain.sh); elsewhere, this system's platform.
--host-only  only this system's platform (quicker; the zip then lists only that library).
The working tree is not touched (its addons/peerkit/bin keeps whatever build is there). Prints the zip's path.
USAGE
}

host_only=false
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  --host-only) host_only=true ;;
  "") ;;
  *) echo "package.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
version=$(sed -nE 's/^version = "([^"]+)"/\1/p' Cargo.toml | head -n 1)
[[ -n $version ]] || { echo "package.sh: no version in Cargo.toml" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
scripts/build.sh --into "$stage/bin" >&2
if [[ $host_only == false && $(uname -s) == Linux && $(uname -m) == x86_64 ]]; then
  for target in windows-x86_64 linux-arm64; do
    scripts/build.sh --target "$target" --into "$stage/bin" >&2
  done
fi

mkdir -p dist
zip_path="$repo/dist/peerkit-$version.zip"
rm -f "$zip_path"
python3 - "$zip_path" "$stage/bin" <<'PY'
import os, sys, zipfile
out, built = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    shipped = set(os.listdir(built))
    # Everything of the addon but its bin/ folder, which comes from this build alone; the .gdextension lists
    # only the libraries that ship (the checkout's lists every platform build.sh can make).
    for root, dirs, files in os.walk("addons/peerkit"):
        dirs[:] = [d for d in dirs if not (root == "addons/peerkit" and d == "bin")]
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.startswith(".") or name.endswith(".tmp"):
                continue
            if name == "peerkit.gdextension":
                lines = [
                    line for line in open(path).read().splitlines()
                    if "res://addons/peerkit/bin/" not in line
                    or line.split("res://addons/peerkit/bin/")[1].rstrip('"') in shipped
                ]
                z.writestr(path, "\n".join(lines) + "\n")
                continue
            z.write(path, path)
    for name in sorted(os.listdir(built)):
        z.write(os.path.join(built, name), "addons/peerkit/bin/" + name)
PY
echo "$zip_path"

#!/usr/bin/env bash
# Runs the demo scenes on a virtual display, as a person would see them, and checks their screenshots' pixels.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/screenshot-test.sh [--out DIR] [--readme] [--help]

  1. installs Godot with Xvfb and Mesa's software renderer into .godot-runtime/ (scripts/install-godot.sh
     --display; no system files change);
  2. builds the library if addons/peerkit/bin has none (scripts/build.sh);
  3. starts Xvfb, runs each demo scene for a few seconds with the compatibility renderer (opengl3) and
     saves a screenshot and the layout of what it drew: godot-project/demo/main.tscn (the link panel and
     plots) and godot-project/demo/multiplayer_demo.tscn (a server and two clients);
  4. checks the pixels (godot-project/tests/screenshots/check_screenshots.gd): the panel is drawn, labels are
     rendered, every plot has a line, the world views show their dots; then checks that the same checks fail
     on a blank image (so they can fail).
The last line is "screenshots: N passed, N failed". --out DIR keeps the screenshots there (default: a
temporary directory); --readme also copies them to docs/ for the README.
USAGE
}

out=""
readme=false
while (( $# > 0 )); do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    --readme) readme=true ;;
    *) echo "screenshot-test.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=scripts/lib/xvfb.sh
source "$repo/scripts/lib/xvfb.sh"
godot=$(scripts/install-godot.sh --display)
xvfb="$repo/.godot-runtime/xvfb"
if ! ls addons/peerkit/bin/libpeerkit.* >/dev/null 2>&1; then
  scripts/build.sh >&2
fi
work=$(mktemp -d)
[[ -n $out ]] || out="$work/shots"
mkdir -p "$out"
xvfb_pid=""
cleanup() {
  [[ -n $xvfb_pid ]] && kill "$xvfb_pid" 2>/dev/null && wait "$xvfb_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

start_xvfb "$xvfb" 1280x720x24 "$work/xvfb.log" || exit 1
display=$xvfb_display

failed_runs=0
for scene in main multiplayer_demo; do
  log="$work/$scene.log"
  set +e
  DISPLAY=":$display" timeout 120 "$godot" --rendering-driver opengl3 --audio-driver Dummy --path godot-project \
    "res://demo/$scene.tscn" -- --screenshot "$out" --seconds 8 --preset lossy --loss 0.05 >"$log" 2>&1
  rc=$?
  set -e
  if (( rc != 0 )) || grep -qE 'SCRIPT ERROR|Error loading extension' "$log"; then
    echo "FAIL the demo scene $scene (exit $rc):"
    tail -n 20 "$log"
    failed_runs=$((failed_runs + 1))
  else
    echo "ran  $scene: $(grep -E '^demo: saved' "$log" | tail -n 1)"
  fi
done

set +e
"$godot" --headless --path godot-project -s res://tests/screenshots/check_screenshots.gd -- "$out" 2>&1 |
  grep -E '^(ok|FAIL) |^screenshots: ' | tee "$work/check.log"
set -e
line=$(grep -E '^screenshots: [0-9]+ passed, [0-9]+ failed$' "$work/check.log" | tail -n 1 || true)
passed=0
failed=1
if [[ -n $line ]]; then
  read -r passed failed < <(echo "$line" | sed -E 's/screenshots: ([0-9]+) passed, ([0-9]+) failed/\1 \2/')
fi

# The same checks on blank images must fail: they would catch a demo that draws nothing.
mkdir -p "$work/blank"
for layout in "$out"/*_layout.json; do
  cp "$layout" "$work/blank/"
  name=$(basename "$layout" _layout.json)
  python3 -c 'import sys, zlib, struct
w, h = 1280, 720
raw = b"".join(b"\x00" + b"\x0b\x0f\x14" * w for _ in range(h))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))' "$work/blank/$name.png"
done
set +e
blank=$("$godot" --headless --path godot-project -s res://tests/screenshots/check_screenshots.gd -- "$work/blank" 2>&1 |
  grep -E '^screenshots: ' | tail -n 1)
set -e
if [[ $blank =~ ^screenshots:\ 0\ passed,\ [1-9] ]]; then
  echo "ok   the checks fail on blank images ($blank)"
  passed=$((passed + 1))
else
  echo "FAIL the checks did not fail on blank images: $blank"
  failed=$((failed + 1))
fi

if [[ $readme == true ]]; then
  mkdir -p docs
  for shot in "$out"/*.png; do
    cp "$shot" "docs/screenshot-$(basename "$shot")"
  done
  echo "copied the screenshots to docs/"
fi
failed=$((failed + failed_runs))
echo "screenshots: $passed passed, $failed failed"
(( failed == 0 ))

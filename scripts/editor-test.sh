#!/usr/bin/env bash
# Runs the real Godot editor on a virtual display with the peerkit plugin, as a person would use it, and checks
# the Debugger's "peerkit" tab while a small game runs.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/editor-test.sh [--out DIR] [--readme] [--help]

  1. installs Godot with Xvfb and Mesa's software renderer into .godot-runtime/ (scripts/install-godot.sh
     --display; no system files change), and builds the library if addons/peerkit/bin has none;
  2. makes a scratch project: a copy of addons/peerkit, a game with two links (godot-project/tests/editor/
     game.gd) and a test plugin (godot-project/tests/editor/driver.gd), and imports it headless;
  3. starts Xvfb and the editor (opengl3); the test plugin enables the peerkit plugin as Project Settings >
     Plugins would, sets the startup preset to 3g, runs the game under the editor's debugger, opens the
     Debugger's peerkit tab, saves a screenshot and checks its pixels (the list shows text, the plots are drawn
     and have lines; the same checks fail on a blank image), then sets a latency in the panel and waits for
     the game's measured delay to follow.
The last line is "editor: N passed, N failed". --out DIR keeps the screenshots there (default: a temporary
directory); --readme also copies the panel's screenshot to docs/screenshot-debugger-panel.png.
USAGE
}

out=""
readme=false
while (( $# > 0 )); do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    --readme) readme=true ;;
    *) echo "editor-test.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
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

project="$work/project"
mkdir -p "$project/addons/editor_test"
cp -r addons/peerkit "$project/addons/peerkit"
cp godot-project/tests/editor/plugin.cfg godot-project/tests/editor/driver.gd "$project/addons/editor_test/"
cp godot-project/tests/editor/game.gd "$project/game.gd"
cat >"$project/game.tscn" <<'SCENE'
[gd_scene load_steps=2 format=3]

[ext_resource type="Script" path="res://game.gd" id="1"]

[node name="Game" type="Node"]
script = ExtResource("1")
SCENE
cat >"$project/project.godot" <<'PROJECT'
config_version=5

[application]

config/name="peerkit editor test"
config/features=PackedStringArray("4.3")

[editor_plugins]

enabled=PackedStringArray("res://addons/editor_test/plugin.cfg")

[audio]

driver/driver="Dummy"

[rendering]

renderer/rendering_method="gl_compatibility"
PROJECT

# Import twice: the first import of a new project may crash on exit (Godot's own bug), the second settles it.
for _ in 1 2; do
  # (in a subshell whose stderr is dropped: bash would report the crash's "Aborted" there)
  ( timeout 180 "$godot" --headless --path "$project" --import >"$work/import.log" 2>&1 ) 2>/dev/null || true
done

start_xvfb "$xvfb" 1600x900x24 "$work/xvfb.log" || exit 1
display=$xvfb_display

# The editor starts the game by running its own executable again. Our private Godot runs through its own loader
# (.godot-runtime/godot), so its executable is that loader, which the editor cannot run as a game. Give a copy of
# the binary the private loader as its interpreter instead (through a short symlink: the ELF header has room for
# 27 characters), with the library paths the wrapper sets, which the game then inherits. A Godot installed the
# usual way ($GODOT, or one on the PATH) runs as it is.
editor=("$godot")
if [[ $godot == "$repo/.godot-runtime/godot" ]]; then
  runtime="$repo/.godot-runtime/root"
  libdir="$runtime/usr/lib/x86_64-linux-gnu"
  loader_dir=$(mktemp -d /tmp/pkld.XXXXXX)
  ln -s "$libdir/ld-linux-x86-64.so.2" "$loader_dir/ld"
  trap 'rm -rf "$loader_dir"; cleanup' EXIT
  cp "$runtime/usr/bin/godot" "$work/godot"
  python3 - "$work/godot" "$loader_dir/ld" <<'PY'
import struct, sys
path, interp = sys.argv[1], sys.argv[2].encode()
with open(path, "r+b") as f:
    head = f.read(64)
    assert head[:4] == b"\x7fELF" and head[4] == 2, "not a 64-bit ELF file"
    phoff, = struct.unpack_from("<Q", head, 32)
    phentsize, phnum = struct.unpack_from("<HH", head, 54)
    for i in range(phnum):
        f.seek(phoff + i * phentsize)
        kind, _, offset, _, _, filesz = struct.unpack("<IIQQQQ", f.read(40))
        if kind == 3:  # PT_INTERP
            assert len(interp) < filesz, f"{sys.argv[2]} is longer than the {filesz - 1} characters the header holds"
            f.seek(offset)
            f.write(interp.ljust(filesz, b"\0"))
            break
    else:
        raise SystemExit("no PT_INTERP header")
PY
  # Only the editor (and the game it starts) gets the private libraries: this script's own tools need the
  # system's.
  editor=(env LD_LIBRARY_PATH="$libdir:$runtime/lib/x86_64-linux-gnu:$libdir/pulseaudio"
    LIBGL_DRIVERS_PATH="$libdir/dri" __EGL_VENDOR_LIBRARY_DIRS="$runtime/usr/share/glvnd/egl_vendor.d" "$work/godot")
fi

log="$work/editor.log"
set +e
DISPLAY=":$display" PEERKIT_EDITOR_TEST_OUT="$out" timeout 300 "${editor[@]}" --editor --rendering-driver opengl3 \
  --audio-driver Dummy --resolution 1600x900 --path "$project" >"$log" 2>&1
rc=$?
set -e
cp "$log" "$out/editor.log"
grep -E '^(ok|FAIL) ' "$log" || true
line=$(grep -E '^editor: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
passed=0
failed=1
if [[ -n $line ]]; then
  read -r passed failed < <(echo "$line" | sed -E 's/editor: ([0-9]+) passed, ([0-9]+) failed/\1 \2/')
else
  echo "FAIL the editor printed no summary (exit $rc):"
  tail -n 40 "$log"
fi
if grep -qE 'SCRIPT ERROR|Error loading extension' "$log"; then
  echo "FAIL the editor's log shows script or extension errors:"
  grep -E -A3 'SCRIPT ERROR|Error loading extension' "$log" | head -n 40
  failed=$((failed + 1))
fi
if [[ $readme == true && -f $out/debugger_panel.png ]]; then
  mkdir -p docs
  cp "$out/debugger_panel.png" docs/screenshot-debugger-panel.png
  echo "copied the panel's screenshot to docs/"
fi
echo "editor: $passed passed, $failed failed"
(( failed == 0 ))

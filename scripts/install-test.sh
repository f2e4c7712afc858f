#!/usr/bin/env bash
# What a user does: unzip the packaged addon into a brand-new project, open (import) it, use every class.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/install-test.sh [--help]

Packages the addon (scripts/package.sh), unzips it into a brand-new, empty Godot project in a temporary
folder, imports that project headless (as opening it in the editor would; twice, see below), then runs a
smoke script that uses every class; then, in a second brand-new project that is never imported, checks
README's troubleshooting (the Parse Error without .godot/extension_list.cfg, the first example running with it).
The first headless editor session that discovers an extension may crash
at exit (a Godot bug, godotengine/godot#123511); the second import must then exit cleanly. Nothing from this repository but the zip (and the smoke script) goes into the project.
Prints "install: 1 passed, 0 failed" (or failed) and exits non-zero on failure.
USAGE
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) echo "install-test.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
godot=$(scripts/install-godot.sh)
tree_before=$(find addons/peerkit/bin -type f ! -name '.gitkeep' -exec md5sum {} + 2>/dev/null | sort)
zip=$(scripts/package.sh)
tree_after=$(find addons/peerkit/bin -type f ! -name '.gitkeep' -exec md5sum {} + 2>/dev/null | sort)
project=$(mktemp -d)
trap 'rm -rf "$project"' EXIT

cat > "$project/project.godot" <<'PROJECT'
config_version=5

[application]

config/name="peerkit install test"
PROJECT
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$project"
cp godot-project/install_test/smoke.gd "$project/smoke.gd"

echo "importing a new project with $(basename "$zip") ..."
# First editor session: it discovers the extension. Godot's headless editor may crash at exit in exactly this
# session (godotengine/godot#123511, not peerkit's: godot-cpp extensions hit it too); its work is saved by then.
timeout 300 "$godot" --headless --import --path "$project" >"$project.import.log" 2>&1 ||
  echo "(first import exited with $?: the known engine crash at exit after discovering an extension)"
# Second session: the extension is listed now and loads at start-up; this one must exit cleanly.
if ! timeout 300 "$godot" --headless --import --path "$project" >>"$project.import.log" 2>&1 ||
    grep -qE "Can't open dynamic library|Error loading extension" "$project.import.log"; then
  grep -E "ERROR|Can't open|Error loading" "$project.import.log" | head -20
  rm -f "$project.import.log"
  echo "install: 0 passed, 1 failed"
  exit 1
fi
set +e
timeout 120 "$godot" --headless --path "$project" -s res://smoke.gd 2>&1 | tee "$project.smoke.log"
rc=${PIPESTATUS[0]}
set -e
rm -f "$project.import.log"
passed=0
failed=0
if (( rc == 0 )) && grep -q "^smoke: ok" "$project.smoke.log"; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi
rm -f "$project.smoke.log"

# README's troubleshooting, as a user meets it: a project never imported, a script run headless. Without
# .godot/extension_list.cfg it fails with the Parse Error README quotes; with that one line, the README's first
# example runs and prints what README says.
fresh=$(mktemp -d)
trap 'rm -rf "$project" "$fresh"' EXIT
cp "$project/project.godot" "$fresh/project.godot"
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$fresh"
grep -v '^##' godot-project/examples/link_conditioner_test.gd > "$fresh/link_conditioner_test.gd"
set +e
before=$(timeout 120 "$godot" --headless --path "$fresh" -s res://link_conditioner_test.gd 2>&1)
mkdir -p "$fresh/.godot"
echo 'res://addons/peerkit/peerkit.gdextension' > "$fresh/.godot/extension_list.cfg"
after=$(timeout 120 "$godot" --headless --path "$fresh" -s res://link_conditioner_test.gd 2>&1)
after_rc=$?
set -e
if grep -qF 'Parse Error: Identifier "LocalPacketPeer" not declared in the current scope.' <<<"$before" &&
    (( after_rc == 0 )) && grep -qF 'at 100 ms: 1 packets' <<<"$after"; then
  echo "ok   a never-imported project runs the README's first example once extension_list.cfg lists the addon"
  passed=$((passed + 1))
else
  echo "FAIL README's troubleshooting: without extension_list.cfg:"; echo "$before" | tail -n 5
  echo "with it (exit $after_rc):"; echo "$after" | tail -n 5
  failed=$((failed + 1))
fi
# The zip's .gdextension lists exactly the libraries the zip holds, each under the key of its platform.
if python3 - "$zip" <<'PY'
import re, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
entries = dict(re.findall(r'^(\S+) = "res://(addons/peerkit/bin/[^"]+)"', z.read("addons/peerkit/peerkit.gdextension").decode(), re.M))
held = {n for n in z.namelist() if n.startswith("addons/peerkit/bin/")}
print(f"listed {sorted(entries.values())}, held {sorted(held)}")
sys.exit(0 if set(entries.values()) == held and held else 1)
PY
then
  echo "ok   the zip's .gdextension lists exactly the libraries it holds"
  passed=$((passed + 1))
else
  echo "FAIL the zip's .gdextension and its libraries differ"
  failed=$((failed + 1))
fi
# Per platform: on Linux x86_64 the zip holds all three, each under its debug and release names, each a binary
# of its platform (ELF x86-64, ELF AArch64, PE32+ x86-64 DLL), the two names the same file.
if [[ $(uname -s) == Linux && $(uname -m) == x86_64 ]]; then
  if python3 - "$zip" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
def elf_machine(b):
    return int.from_bytes(b[18:20], "little") if b[:4] == b"\x7fELF" else None
def pe_machine(b):
    if b[:2] != b"MZ":
        return None
    at = int.from_bytes(b[0x3C:0x40], "little")
    return int.from_bytes(b[at + 4:at + 6], "little") if b[at:at + 4] == b"PE\0\0" else None
platforms = {
    "linux x86_64": ("libpeerkit.linux.{}.x86_64.so", lambda b: elf_machine(b) == 62),
    "linux arm64": ("libpeerkit.linux.{}.arm64.so", lambda b: elf_machine(b) == 183),
    "windows x86_64": ("peerkit.windows.{}.x86_64.dll", lambda b: pe_machine(b) == 0x8664),
}
ok = True
for platform, (pattern, is_platform) in platforms.items():
    builds = []
    for kind in ("debug", "release"):
        name = "addons/peerkit/bin/" + pattern.format(kind)
        data = z.read(name) if name in z.namelist() else None
        builds.append(data)
        good = data is not None and is_platform(data)
        ok &= good
        print(f"{'ok' if good else 'MISSING or wrong'}: {name} ({len(data) // 1024 if data else 0} KiB)")
    if builds[0] != builds[1]:
        print(f"{platform}: the debug and release names hold different files")
        ok = False
sys.exit(0 if ok else 1)
PY
  then
    echo "ok   the zip holds Linux x86_64, Linux arm64 and Windows x86_64, each under both names"
    passed=$((passed + 1))
  else
    echo "FAIL the zip lacks a platform, or holds a library of the wrong platform"
    failed=$((failed + 1))
  fi
fi
if [[ $tree_before == "$tree_after" ]]; then
  echo "ok   packaging left the working tree's addons/peerkit/bin as it was"
  passed=$((passed + 1))
else
  echo "FAIL packaging changed addons/peerkit/bin:"; diff <(echo "$tree_before") <(echo "$tree_after") || true
  failed=$((failed + 1))
fi
echo "install: $passed passed, $failed failed"
(( failed == 0 ))

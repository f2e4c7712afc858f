#!/usr/bin/env bash
# Build the Windows x86_64 and Linux arm64 libraries and test them as far as this Linux x86_64 machine reaches.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/test-platforms.sh [windows-x86_64] [linux-arm64] [--help]

For each platform named (both when none is):
  windows-x86_64  1. cross-builds peerkit-core's whole test suite for x86_64-pc-windows-gnu and runs every test
                     program under Wine (sockets and the UDP receive thread included);
                  2. builds the shipped DLL (scripts/build.sh --target windows-x86_64) and checks it: a PE
                     x86-64 DLL that exports gdext_rust_init and imports only DLLs every Windows has (no mingw
                     runtime to ship);
                  3. loads it under Wine with LoadLibrary and finds gdext_rust_init (every import resolves).
                  Not tested: loading in Godot for Windows, which is not obtainable here.
  linux-arm64     1. builds the shipped library (scripts/build.sh --target linux-arm64) and checks it: an
                     AArch64 shared object exporting gdext_rust_init, needing only glibc and libgcc_s;
                  2. runs the GDScript suite in Debian's arm64 Godot under qemu-aarch64 against it, all but
                     two tests: test_hardening's panic test (it needs PeerkitPanicProbe, which only a
                     --test-hooks build has; this tests the library that ships) and test_docs' help check (it
                     reads the docs the host's Rust tests write; the help is the same on every platform).
Toolchains, Wine, qemu and the arm64 Godot are installed on first use into .toolchains/
(scripts/install-toolchain.sh). The last line is "platforms: N passed, N failed" (each test program's tests,
each check, each GDScript test). Logs: target/test-logs/platform-*.log
USAGE
}

platforms=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    windows-x86_64|linux-arm64) platforms+=("$arg") ;;
    *) echo "test-platforms.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
(( ${#platforms[@]} > 0 )) || platforms=(windows-x86_64 linux-arm64)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
logs="$repo/target/test-logs"
mkdir -p "$logs"
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
# check NAME CONDITION-COMMAND...: one counted check.
check() {
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}

# Every Windows since 7 has these (the api-ms-win-* names are its API sets); anything else would have to ship.
windows_system_dlls="kernel32.dll ntdll.dll advapi32.dll ws2_32.dll userenv.dll msvcrt.dll bcrypt.dll
bcryptprimitives.dll api-ms-win-core-synch-l1-2-0.dll"

test_windows() {
  local tc="$repo/.toolchains" wine list exe name log results rc mingw
  echo "== windows-x86_64: peerkit-core's tests under Wine"
  wine=$(scripts/install-toolchain.sh wine)
  # shellcheck source=lib/cross.sh
  source scripts/lib/cross.sh
  cross_env windows-x86_64
  mingw=$(dirname "$CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER")
  list="$logs/platform-windows-tests.json"
  if ! "$CARGO" test -p peerkit-core --locked --release --target "$cross_triple" \
    -Zbuild-std=std,panic_abort,panic_unwind --no-run --message-format=json >"$list" 2>"$logs/platform-windows-build.log"; then
    tail -n 30 "$logs/platform-windows-build.log"
    fail "peerkit-core's tests build for Windows (log: $logs/platform-windows-build.log)"
    return
  fi
  while IFS= read -r exe; do
    name=$(basename "$exe" .exe)
    name=${name%-*}
    log="$logs/platform-windows-$name.log"
    cp "$tc/wine/dlls/bcryptprimitives.dll" "$(dirname "$exe")/"
    # Wine writes nothing to a pipe: the output goes to a file, and wine's own exit code is the program's.
    set +e
    (cd "$(dirname "$exe")" && timeout 600 "$wine" "$exe" >"$log" 2>&1)
    rc=$?
    set -e
    results=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/' | head -n 1 || true)
    if [[ -z $results ]]; then
      fail "$name under Wine printed no result (exit $rc; log: $log)"
      tail -n 20 "$log"
      continue
    fi
    read -r p f <<<"$results"
    passed=$((passed + p))
    failed=$((failed + f))
    if (( f > 0 || rc != 0 )); then
      (( f == 0 )) && failed=$((failed + 1))
      echo "FAIL $name under Wine: $p passed, $f failed, exit $rc (log: $log)"
      grep -E -A6 "^---- |panicked" "$log" | head -n 40
    else
      echo "ok   $name under Wine: $p passed"
    fi
  done < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])' "$list")

  echo "== windows-x86_64: the shipped DLL"
  local dll imports exports bad
  dll=$(scripts/build.sh --target windows-x86_64 2>"$logs/platform-windows-dll.log") ||
    { tail -n 30 "$logs/platform-windows-dll.log"; fail "the Windows DLL builds"; return; }
  dll=${dll%%$'\n'*}  # build.sh prints the debug name's path, then the release name's
  "$mingw/x86_64-w64-mingw32-objdump" -p "$dll" >"$logs/platform-windows-objdump.log"
  check "peerkit.windows.*.dll is a PE x86-64 DLL" grep -q 'file format pei-x86-64' "$logs/platform-windows-objdump.log"
  exports=$(sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' "$logs/platform-windows-objdump.log")
  check "the DLL exports gdext_rust_init" grep -qw gdext_rust_init <<<"$exports"
  imports=$(sed -nE 's/^\s*DLL Name: (.*)$/\1/p' "$logs/platform-windows-objdump.log" | tr 'A-Z' 'a-z' | sort -u)
  bad=""
  for i in $imports; do
    grep -qxF "$i" <<<"$(tr ' ' '\n' <<<"$windows_system_dlls")" || bad+=" $i"
  done
  echo "     imports: $(echo $imports)"
  check "the DLL imports only system DLLs${bad:+ (not:$bad)}" test -z "$bad"
  echo "     size: $(( $(stat -c %s "$dll") / 1024 )) KiB"

  # A program that loads the DLL as Godot would (LoadLibrary, then the entry symbol), under Wine.
  local probe="$repo/target/cross/load-probe"
  mkdir -p "$probe"
  cat >"$probe/load.c" <<'C'
#include <windows.h>
#include <stdio.h>
int main(int argc, char **argv) {
  HMODULE lib = LoadLibraryA(argv[1]);
  if (!lib) { printf("LoadLibrary failed: error %lu\n", GetLastError()); return 1; }
  if (!GetProcAddress(lib, "gdext_rust_init")) { printf("no gdext_rust_init\n"); return 2; }
  printf("loaded, gdext_rust_init found\n");
  return 0;
}
C
  "$mingw/x86_64-w64-mingw32-gcc" -O2 -o "$probe/load.exe" "$probe/load.c"
  cp "$dll" "$probe/peerkit.dll"
  cp "$tc/wine/dlls/bcryptprimitives.dll" "$probe/"
  set +e
  (cd "$probe" && timeout 120 "$wine" load.exe peerkit.dll >"$logs/platform-windows-load.log" 2>&1)
  rc=$?
  set -e
  check "the DLL loads under Wine and gdext_rust_init resolves (exit $rc)" \
    grep -q "gdext_rust_init found" "$logs/platform-windows-load.log"
}

test_arm64() {
  local tc="$repo/.toolchains" lib godot elf needed bad n started
  echo "== linux-arm64: the shipped library"
  godot=$(scripts/install-toolchain.sh godot-arm64)
  lib=$(scripts/build.sh --target linux-arm64 2>"$logs/platform-arm64-build.log") ||
    { tail -n 30 "$logs/platform-arm64-build.log"; fail "the arm64 library builds"; return; }
  lib=${lib%%$'\n'*}
  local root="$tc/aarch64-gcc/root"
  # The private binutils find their libraries beside them only when told (as the gcc wrapper does).
  LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu" "$root/usr/bin/aarch64-linux-gnu-readelf" -h -d --dyn-syms -V "$lib" \
    >"$logs/platform-arm64-readelf.log"
  elf="$logs/platform-arm64-readelf.log"
  check "libpeerkit.linux.*.arm64.so is an AArch64 shared object" grep -qE 'Machine:\s+AArch64' "$elf"
  check "it exports gdext_rust_init" grep -qE 'FUNC\s+GLOBAL\s+DEFAULT\s+[0-9]+ gdext_rust_init$' "$elf"
  needed=$(sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p' "$elf" | sort -u)
  bad=""
  for n in $needed; do
    [[ $n =~ ^(libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|ld-linux-aarch64\.so\.1)$ ]] || bad+=" $n"
  done
  echo "     needs: $(echo $needed); newest glibc symbol version: $(grep -oE 'GLIBC_[0-9.]+' "$elf" | sort -uV | tail -n 1)"
  check "it needs only glibc and libgcc_s${bad:+ (not:$bad)}" test -z "$bad"

  echo "== linux-arm64: the GDScript suite in arm64 Godot under qemu-aarch64"
  started=$(date +%s)
  set +e
  PEERKIT_GODOT="$godot" timeout 1800 "$godot" --headless --path godot-project -s res://tests/run_tests.gd -- \
    -test_hardening.test_a_panic_inside_a_virtual -test_docs.test_every_registered_member_is_described \
    >"$logs/platform-arm64-godot.log" 2>&1
  rc=$?
  set -e
  local counts
  counts=$(sed -nE 's/^gdscript: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$logs/platform-arm64-godot.log" | tail -n 1)
  if [[ -z $counts ]]; then
    fail "the arm64 GDScript run printed no summary (exit $rc; log: $logs/platform-arm64-godot.log)"
    tail -n 30 "$logs/platform-arm64-godot.log"
    return
  fi
  read -r p f <<<"$counts"
  passed=$((passed + p))
  failed=$((failed + f))
  grep -E '^FAIL' -A4 "$logs/platform-arm64-godot.log" | head -n 40 || true
  for pattern in 'SCRIPT ERROR' "Can't open dynamic library" 'Error loading extension'; do
    if grep -qF "$pattern" "$logs/platform-arm64-godot.log"; then
      fail "the arm64 Godot log shows '$pattern'"
    fi
  done
  (( rc == 0 )) || fail "arm64 Godot exited with $rc"
  echo "     arm64 GDScript suite: $p passed, $f failed in $(( $(date +%s) - started )) s under emulation"
}

for platform in "${platforms[@]}"; do
  case "$platform" in
    windows-x86_64) test_windows ;;
    linux-arm64) test_arm64 ;;
  esac
done
echo "platforms: $passed passed, $failed failed"
(( failed == 0 ))

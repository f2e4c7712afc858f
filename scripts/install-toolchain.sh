#!/usr/bin/env bash
# Install the cross toolchains and emulators for the Windows x86_64 and Linux arm64 builds into .toolchains/.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/install-toolchain.sh COMPONENT... [--help]

Installs each COMPONENT into .toolchains/ (git-ignored; once, later runs reuse it) and prints the path of the
launcher or folder it made. Nothing outside .toolchains/ changes: apt-get runs with private lists and cache,
dpkg -x unpacks, and the programs run through their own loaders.
  rust         Debian sid's rustc, cargo and rust-src (they build std for another target with -Zbuild-std);
               prints .toolchains/bin/cargo (.toolchains/bin/rustc beside it).
  mingw        this system's gcc-mingw-w64-x86-64-posix, the Windows linker; prints its bin folder.
  aarch64-gcc  this system's gcc-aarch64-linux-gnu, the Linux arm64 linker; prints its bin folder.
  wine         this system's wine64 (for running Windows test programs), and a test-only
               bcryptprimitives.dll stand-in built with mingw (Wine 8 lacks the DLL Rust's std imports);
               prints .toolchains/bin/wine.
  qemu         Debian sid's qemu-user (statically linked); prints .toolchains/bin/qemu-aarch64.
  godot-arm64  Debian sid's arm64 godot, run under qemu-aarch64; prints .toolchains/bin/godot-arm64.
No version is pinned: each component is checked by running it (rustc must be at least the workspace's
rust-version, Godot at least 4.3). Progress goes to stderr.
USAGE
}

(( $# > 0 )) || { usage >&2; exit 2; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tc="$repo/.toolchains"
bin="$tc/bin"
mkdir -p "$bin"
# shellcheck source=lib/private-apt.sh
source "$repo/scripts/lib/private-apt.sh"
log() { printf 'install-toolchain: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

command -v apt-get >/dev/null && command -v dpkg >/dev/null ||
  die "this needs apt-get and dpkg (a Debian-based system); see README's Platforms section"

# fetch NAME SUITE ARCH MODE PACKAGE...: unpacks the packages into .toolchains/NAME/root (from scratch).
fetch() {
  local name=$1
  shift
  rm -rf "${tc:?}/$name"
  log "fetching $* for $name"
  private_apt_fetch "$tc/$name" "$@" || die "apt-get could not fetch $name's packages"
  private_apt_unpack "$tc/$name" "$tc/$name/root"
}

# launcher PATH COMMAND...: writes an executable script at PATH that runs COMMAND with the caller's arguments.
launcher() {
  local path=$1
  shift
  printf '#!/bin/sh\n# Written by scripts/install-toolchain.sh.\nexec %s "$@"\n' "$*" >"$path"
  chmod +x "$path"
}

links() {  # links GCC: true when GCC compiles and links a C program (so its linker runs too)
  local out
  out=$(mktemp -d)
  printf 'int main(void) { return 0; }\n' >"$out/probe.c"
  "$1" -o "$out/probe" "$out/probe.c" >/dev/null 2>&1
  local rc=$?
  rm -rf "$out"
  return $rc
}

version_at_least() {  # version_at_least HAVE WANT: true when HAVE >= WANT (dotted numbers)
  [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1) == "$2" ]]
}

install_rust() {
  local want have root="$tc/rust/root"
  want=$(sed -nE 's/^rust-version = "([^"]+)"/\1/p' "$repo/Cargo.toml")
  if [[ -x $bin/rustc ]] && have=$("$bin/rustc" --version 2>/dev/null | awk '{ print $2 }') &&
    version_at_least "$have" "$want" && [[ -d $root/usr/lib/rustlib/src/rust/library ]]; then
    echo "$bin/cargo"
    return
  fi
  fetch rust sid native closure rustc cargo rust-src
  local lib="$root/usr/lib/x86_64-linux-gnu"
  local run="$lib/ld-linux-x86-64.so.2 --library-path $lib:$root/lib/x86_64-linux-gnu:$root/usr/lib"
  launcher "$bin/rustc" "$run $root/usr/bin/rustc"
  launcher "$bin/cargo" "$run $root/usr/bin/cargo"
  have=$("$bin/rustc" --version 2>/dev/null | awk '{ print $2 }') || die "the fetched rustc does not run"
  version_at_least "$have" "$want" || die "sid's rustc is $have, older than the workspace's rust-version $want"
  [[ -d $root/usr/lib/rustlib/src/rust/library ]] || die "rust-src is missing from $root"
  log "installed $("$bin/rustc" --version) and $("$bin/cargo" --version)"
  echo "$bin/cargo"
}

install_mingw() {
  local dir="$tc/mingw/root/usr/bin"
  if [[ -x $dir/x86_64-w64-mingw32-gcc ]] && links "$dir/x86_64-w64-mingw32-gcc"; then
    echo "$dir"
    return
  fi
  fetch mingw system native missing gcc-mingw-w64-x86-64-posix
  # The package names its driver by version and thread model; cargo and the checks call it by the plain name.
  local gcc
  gcc=$(cd "$dir" && ls x86_64-w64-mingw32-gcc-*-posix 2>/dev/null | grep -E 'gcc-[0-9]+-posix$' | head -n 1)
  [[ -n $gcc ]] || die "no x86_64-w64-mingw32-gcc-N-posix in $dir"
  ln -sf "$gcc" "$dir/x86_64-w64-mingw32-gcc"
  links "$dir/x86_64-w64-mingw32-gcc" || die "the fetched mingw gcc cannot link a program"
  log "installed $("$dir/x86_64-w64-mingw32-gcc" --version | head -n 1)"
  echo "$dir"
}

install_aarch64_gcc() {
  local dir="$tc/aarch64-gcc/bin" root="$tc/aarch64-gcc/root"
  if [[ -x $dir/aarch64-linux-gnu-gcc ]] && links "$dir/aarch64-linux-gnu-gcc"; then
    echo "$dir"
    return
  fi
  fetch aarch64-gcc system native missing gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  # The cross binutils load their own libbfd and libctf, which a private root keeps beside them: the driver
  # rustc calls is a wrapper that lets the linker find them, and points it at the root (the libc.so linker script
  # names its files by absolute paths, which ld then looks for under the sysroot).
  mkdir -p "$dir"
  cat >"$dir/aarch64-linux-gnu-gcc" <<LAUNCH
#!/bin/sh
# Written by scripts/install-toolchain.sh: the private aarch64 gcc, with its binutils' libraries found.
LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$root/usr/bin/aarch64-linux-gnu-gcc" --sysroot="$root" "\$@"
LAUNCH
  chmod +x "$dir/aarch64-linux-gnu-gcc"
  links "$dir/aarch64-linux-gnu-gcc" || die "the fetched aarch64 gcc cannot link a program"
  log "installed $("$dir/aarch64-linux-gnu-gcc" --version | head -n 1)"
  echo "$dir"
}

install_wine() {
  local root="$tc/wine/root" mingw
  if [[ -x $bin/wine && -f $tc/wine/dlls/bcryptprimitives.dll ]]; then
    echo "$bin/wine"
    return
  fi
  mingw=$(install_mingw)
  fetch wine system native missing wine64
  [[ -x $root/usr/lib/wine/wine64 && -x $root/usr/lib/wine/wineserver64 ]] || die "no wine64/wineserver64 in $root"
  # Debian's usr/lib/wine/wineserver is a script that looks for /usr/lib/wine/wineserver64 at its absolute path;
  # Wine starts it from its own folder, so the private one must be the server itself.
  ln -sf wineserver64 "$root/usr/lib/wine/wineserver"
  # Wine finds its own DLLs next to ntdll.so, but the PE zlib1.dll (Debian's libz-mingw-w64) only on
  # WINEDLLPATH; and wineserver by the WINESERVER variable instead of /usr/lib/wine's fixed path.
  local dll_path="$root/usr/x86_64-w64-mingw32/lib"
  mkdir -p "$tc/wine/dlls"
  cat >"$bin/wine" <<LAUNCH
#!/bin/sh
# Written by scripts/install-toolchain.sh: runs a Windows program under the private Wine, in a prefix of
# WINEPREFIX (default .toolchains/wine/prefix). Put $tc/wine/dlls/bcryptprimitives.dll beside the program.
export WINEPREFIX="\${WINEPREFIX:-$tc/wine/prefix}"
export WINESERVER="$root/usr/lib/wine/wineserver64"
export WINEDLLPATH="$dll_path"
export WINEDEBUG="\${WINEDEBUG:--all}"
exec "$root/usr/lib/wine/wine64" "\$@"
LAUNCH
  chmod +x "$bin/wine"
  # Rust's std imports ProcessPrng from bcryptprimitives.dll, which Wine 8 lacks: this stand-in fills the buffer
  # from advapi32's RtlGenRandom (SystemFunction036). For running tests under Wine only; never shipped.
  cat >"$tc/wine/dlls/bcryptprimitives.c" <<'C'
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
    if (!SystemFunction036(data, n)) return FALSE;
    data += n;
    len -= n;
  }
  return TRUE;
}
C
  "$mingw/x86_64-w64-mingw32-gcc" -shared -O2 -o "$tc/wine/dlls/bcryptprimitives.dll" \
    "$tc/wine/dlls/bcryptprimitives.c" -ladvapi32 || die "could not build the bcryptprimitives.dll stand-in"
  log "installed $("$bin/wine" --version 2>/dev/null || echo wine)"
  echo "$bin/wine"
}

install_qemu() {
  if [[ -x $bin/qemu-aarch64 ]] && "$bin/qemu-aarch64" --version >/dev/null 2>&1; then
    echo "$bin/qemu-aarch64"
    return
  fi
  fetch qemu sid native only qemu-user
  launcher "$bin/qemu-aarch64" "$tc/qemu/root/usr/bin/qemu-aarch64"
  "$bin/qemu-aarch64" --version >/dev/null || die "the fetched qemu-aarch64 does not run"
  log "installed $("$bin/qemu-aarch64" --version | head -n 1)"
  echo "$bin/qemu-aarch64"
}

install_godot_arm64() {
  local root="$tc/godot-arm64/root" qemu version
  qemu=$(install_qemu)
  godot_ok() {
    version=$("$bin/godot-arm64" --headless --version 2>/dev/null | tail -n 1)
    [[ $version =~ ^([0-9]+)\.([0-9]+) ]] &&
      (( BASH_REMATCH[1] > 4 || (BASH_REMATCH[1] == 4 && BASH_REMATCH[2] >= 3) ))
  }
  if [[ -x $bin/godot-arm64 ]] && godot_ok; then
    echo "$bin/godot-arm64"
    return
  fi
  fetch godot-arm64 sid arm64 closure godot
  ln -sfn usr/lib "$root/lib"
  local lib="$root/usr/lib/aarch64-linux-gnu"
  launcher "$bin/godot-arm64" \
    "$qemu -L $root $lib/ld-linux-aarch64.so.1 --library-path $lib:$lib/pulseaudio $root/usr/bin/godot"
  godot_ok || die "the fetched arm64 Godot does not run under qemu or is older than 4.3 ($version)"
  log "installed arm64 Godot $version"
  echo "$bin/godot-arm64"
}

for component in "$@"; do
  case "$component" in
    -h|--help) usage; exit 0 ;;
    rust) install_rust ;;
    mingw) install_mingw ;;
    aarch64-gcc) install_aarch64_gcc ;;
    wine) install_wine ;;
    qemu) install_qemu ;;
    godot-arm64) install_godot_arm64 ;;
    *) die "unknown component '$component' (see --help)" ;;
  esac
done

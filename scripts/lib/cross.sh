# shellcheck shell=bash
# The cross-build environment for one target, shared by scripts/build.sh and scripts/test-platforms.sh.

# cross_env TARGET (windows-x86_64 or linux-arm64): installs the toolchain if missing (scripts/install-toolchain.sh)
# and exports what cargo needs (CARGO, RUSTC, RUSTC_BOOTSTRAP for -Zbuild-std, the linker, CARGO_TARGET_DIR);
# sets cross_triple, cross_lib (the library's file name) and cross_dest (its name in addons/peerkit/bin).
cross_env() {
  local repo linker_dir
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  CARGO=$("$repo/scripts/install-toolchain.sh" rust)
  RUSTC="$(dirname "$CARGO")/rustc"
  # -Zbuild-std is unstable: sid's stable toolchain allows it with this variable (nothing else is unstable).
  export CARGO RUSTC RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$repo/target/cross"
  case "$1" in
    windows-x86_64)
      linker_dir=$("$repo/scripts/install-toolchain.sh" mingw)
      cross_triple=x86_64-pc-windows-gnu
      cross_lib=peerkit.dll
      cross_dest=peerkit.windows.debug.x86_64.dll
      export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER="$linker_dir/x86_64-w64-mingw32-gcc"
      # No symbol table in the DLL (Windows does not use it; it was most of the file).
      export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS="-C strip=symbols"
      ;;
    linux-arm64)
      linker_dir=$("$repo/scripts/install-toolchain.sh" aarch64-gcc)
      cross_triple=aarch64-unknown-linux-gnu
      cross_lib=libpeerkit.so
      cross_dest=libpeerkit.linux.debug.arm64.so
      export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="$linker_dir/aarch64-linux-gnu-gcc"
      ;;
    *) echo "cross.sh: unknown target '$1'" >&2; return 2 ;;
  esac
  # rustc calls the target's binutils (dlltool for Windows) by their plain names.
  export PATH="$linker_dir:$PATH"
}

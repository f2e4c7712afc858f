#!/usr/bin/env bash
# Print the path of a Godot >= 4.3 binary that runs headless, installing one if needed.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/install-godot.sh [--display] [--help]

Prints the path of a Godot 4.3+ executable usable with --headless, trying in order:
  1. $GODOT, if set (it must be 4.3 or newer);
  2. a `godot` on PATH, if it is 4.3 or newer;
  3. the private runtime cached in .godot-runtime/ by an earlier run;
  4. Debian sid's `godot` package, fetched with apt-get into .godot-runtime/
     (no root changes: private apt lists, cache and status; the debs are
     unpacked with dpkg -x and started through their own dynamic loader).
--display: always the private runtime (steps 3-4), with Debian sid's Xvfb and Mesa's software renderer
unpacked beside Godot, and a launcher .godot-runtime/xvfb that starts that Xvfb; for the screenshot test,
so the renderer is the same on every machine.
Progress goes to stderr; only the path goes to stdout.
USAGE
}

display=false
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  --display) display=true ;;
  "") ;;
  *) echo "install-godot.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runtime="$repo/.godot-runtime"
launcher="$runtime/godot"
xvfb_launcher="$runtime/xvfb"
min_major=4
min_minor=3

log() { printf 'install-godot: %s\n' "$*" >&2; }

# version_ok BIN: true when BIN --version reports major.minor >= 4.3.
version_ok() {
  local out major minor
  out=$("$1" --headless --version 2>/dev/null | tail -n 1) || return 1
  [[ $out =~ ^([0-9]+)\.([0-9]+) ]] || return 1
  major=${BASH_REMATCH[1]}
  minor=${BASH_REMATCH[2]}
  (( major > min_major || (major == min_major && minor >= min_minor) ))
}

if [[ $display == true ]]; then
  if [[ -x $launcher && -x $xvfb_launcher ]] && version_ok "$launcher"; then
    echo "$launcher"
    exit 0
  fi
elif [[ -n ${GODOT:-} ]]; then
  if version_ok "$GODOT"; then
    echo "$GODOT"
    exit 0
  fi
  log "GODOT=$GODOT is not a Godot 4.3+ binary (its --version says: $("$GODOT" --headless --version 2>/dev/null | tail -n 1 || true))"
  exit 1
fi

if [[ $display == false ]] && on_path=$(command -v godot 2>/dev/null) && version_ok "$on_path"; then
  echo "$on_path"
  exit 0
fi

if [[ $display == false && -x $launcher ]] && version_ok "$launcher"; then
  echo "$launcher"
  exit 0
fi

if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  log "no Godot 4.3+ found and this system has no apt-get/dpkg to fetch one."
  log "Install Godot 4.3 or newer (https://godotengine.org/download) and put it on PATH, or set GODOT=/path/to/godot."
  exit 1
fi

# shellcheck source=lib/private-apt.sh
source "$repo/scripts/lib/private-apt.sh"
log "fetching Debian sid's godot package into $runtime (once; later runs reuse it)"
apt_dir="$runtime/apt"
root="$runtime/root"
rm -rf "$apt_dir" "$root" "$xvfb_launcher" "$runtime/xkb-bin"
packages=(godot)
if [[ $display == true ]]; then
  # Xvfb, its keymap compiler and data, and Mesa's GL/EGL with the software rasteriser (llvmpipe).
  packages+=(xvfb x11-xkb-utils xkb-data libgl1 libglx-mesa0 libgl1-mesa-dri libegl1 libegl-mesa0)
fi
if ! private_apt_fetch "$apt_dir" sid native closure "${packages[@]}"; then
  log "could not fetch Godot with apt-get; install Godot 4.3+ yourself (https://godotengine.org/download) or set GODOT."
  exit 1
fi
private_apt_unpack "$apt_dir" "$root"

libdir="$root/usr/lib/x86_64-linux-gnu"
[[ $(uname -m) == aarch64 ]] && libdir="$root/usr/lib/aarch64-linux-gnu"
loader=$(ls "$libdir"/ld-linux-*.so.* 2>/dev/null | head -n 1 || true)
[[ -n $loader ]] || { log "no dynamic loader found in the unpacked runtime"; exit 1; }
arch_dir=$(basename "$libdir")

cat > "$launcher" <<LAUNCH
#!/usr/bin/env bash
# Runs Debian sid's Godot unpacked by scripts/install-godot.sh, with its own loader and libraries.
here=\$(cd "\$(dirname "\${BASH_SOURCE[0]}")" && pwd)
root="\$here/root"
lib="\$root/usr/lib/$arch_dir"
export LIBGL_DRIVERS_PATH="\$lib/dri"
export __EGL_VENDOR_LIBRARY_DIRS="\$root/usr/share/glvnd/egl_vendor.d"
exec "\$lib/$(basename "$loader")" --library-path "\$lib:\$root/lib/$arch_dir:\$lib/pulseaudio" "\$root/usr/bin/godot" "\$@"
LAUNCH
chmod +x "$launcher"

if [[ $display == true ]]; then
  # Xvfb runs its keymap compiler as /usr/bin/xkbcomp, a path built into it. The launcher gives it the private one:
  # directly when the system has its own, else laid over /usr/bin in a private mount namespace of an unprivileged
  # user namespace, so nothing outside that one process changes.
  mkdir -p "$runtime/xkb-bin"
  cat > "$runtime/xkb-bin/xkbcomp" <<LAUNCH
#!/bin/sh
root="$root"
lib="\$root/usr/lib/$arch_dir"
exec "\$lib/$(basename "$loader")" --library-path "\$lib:\$root/lib/$arch_dir" "\$root/usr/bin/xkbcomp" "\$@"
LAUNCH
  chmod +x "$runtime/xkb-bin/xkbcomp"
  cat > "$xvfb_launcher" <<LAUNCH
#!/usr/bin/env bash
# Runs Debian sid's Xvfb unpacked by scripts/install-godot.sh --display, with its own loader and libraries.
here=\$(cd "\$(dirname "\${BASH_SOURCE[0]}")" && pwd)
root="\$here/root"
lib="\$root/usr/lib/$arch_dir"
if [[ ! -x /usr/bin/xkbcomp && -z \${PEERKIT_XKB_OVERLAY:-} ]]; then
  exec unshare --user --map-root-user --mount bash -c \
    'mount -t overlay overlay -o "lowerdir=\$1:/usr/bin" /usr/bin && PEERKIT_XKB_OVERLAY=1 exec "\$0" "\${@:2}"' \
    "\$0" "\$here/xkb-bin" "\$@"
fi
exec "\$lib/$(basename "$loader")" --library-path "\$lib:\$root/lib/$arch_dir" "\$root/usr/bin/Xvfb" -xkbdir "\$root/usr/share/X11/xkb" "\$@"
LAUNCH
  chmod +x "$xvfb_launcher"
fi

if ! version_ok "$launcher"; then
  log "the fetched Godot does not run or is older than 4.3: $("$launcher" --headless --version 2>&1 | tail -n 3)"
  exit 1
fi
log "installed $("$launcher" --headless --version 2>/dev/null | tail -n 1)"
echo "$launcher"

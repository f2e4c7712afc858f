#!/usr/bin/env bash
# The headless demo: builds peerkit and runs the demo script in the bundled project.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/demo.sh [--help]

Installs Godot 4.3+ if needed, builds the library, and runs the headless demos in godot-project/demo/:
  local_pair_demo.gd  two LocalPacketPeers exchange Variants and raw packets; prints what went through;
  link_demo.gd        the same 60 Hz update stream over a clean link and over LinkConditioner presets,
                      with the statistics side by side.
USAGE
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) echo "demo.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
godot=$(scripts/install-godot.sh)
build_log=$(mktemp)
trap 'rm -f "$build_log"' EXIT
scripts/build.sh >"$build_log" 2>&1 || { cat "$build_log" >&2; exit 1; }
for demo in local_pair_demo link_demo; do
  "$godot" --headless --path godot-project -s "res://demo/$demo.gd" 2>&1 |
    grep -vE '^(Godot Engine v|Initialize godot-rust)' | sed '/./,$!d'
  rc=${PIPESTATUS[0]}
  (( rc == 0 )) || exit "$rc"
  echo
done

#!/usr/bin/env bash
# The headless demo: builds peerkit and runs the demo script in the bundled project.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/demo.sh [--help]

Installs Godot 4.3+ if needed, builds the library, and runs godot-project/demo/local_pair_demo.gd
headless: two LocalPacketPeers exchange Variants and raw packets, and it prints what went through.
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
"$godot" --headless --path godot-project -s res://demo/local_pair_demo.gd 2>&1 |
  grep -vE '^(Godot Engine v|Initialize godot-rust)' | sed '/./,$!d'
exit "${PIPESTATUS[0]}"

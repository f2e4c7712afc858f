#!/usr/bin/env bash
# Soak test (not part of CI): reliable messages over a lossy, jittery link for a while, in real time.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/soak.sh [MINUTES] [--help]

Builds the optimised library (scripts/build.sh) and runs godot-project/bench/soak.gd
headless for MINUTES (default 5): two ReliablePacketPeers over LinkConditioners ("lossy" preset plus 5%
loss each way) over a LocalPacketPeer pair, messages of 9 B to 4 KiB as fast as the window allows.
Prints throughput and resident memory every 5 s. Fails if any message is lost, duplicated, reordered or
altered, if the connection fails, or if resident memory keeps growing after the warm-up.
USAGE
}

minutes=5
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) minutes=$1 ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
godot=$(scripts/install-godot.sh)
scripts/build.sh >/dev/null
"$godot" --headless --path godot-project -s res://bench/soak.gd -- "$minutes" 2>&1 |
  grep -vE '^(Godot Engine v|Initialize godot-rust)'
exit "${PIPESTATUS[0]}"

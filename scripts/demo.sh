#!/usr/bin/env bash
# The headless demos: builds peerkit and runs the demo scripts in the bundled project.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/demo.sh [OPTIONS] [--help]

Installs Godot 4.3+ if needed, builds the optimised library (scripts/build.sh; the first
build takes a few minutes), and runs the headless demos in godot-project/demo/.

Without options it runs all three:
  local_pair_demo.gd  two LocalPacketPeers exchange Variants and raw packets; prints what went through;
  link_demo.gd        one 60 Hz update stream over a clean link and LinkConditioner presets, stats side by side;
  reliable_demo.gd    the showcase: messages over ReliablePacketPeer -> LinkConditioner -> LocalPacketPeer
                      in real time, with a progress line and a report (delivery, order, retransmissions,
                      latency percentiles).
With options, only the showcase runs, set by them:
  --preset NAME     link preset each way: clean, wifi, 4g, 3g, lossy (default), satellite
  --loss P          loss probability each way (0..1), on top of the preset
  --latency MS      one-way latency, replacing the preset's
  --jitter MS       jitter, replacing the preset's
  --messages N      how many messages (default 1000)
  --rate N          messages per second (default 500; 0 sends as fast as the congestion window allows)
  --size BYTES      message size (default 200)
  --seed N          seed of the simulated links (default 1)
  --udp             run over two PacketPeerUDP sockets on 127.0.0.1 instead of a LocalPacketPeer pair

The scenes to watch (they need a display; scripts/screenshot-test.sh runs them on a virtual one):
  --window          opens the main demo scene: game-like traffic with a link panel and live plots
  --multiplayer     opens the multiplayer scene: a server and two clients with SceneMultiplayer over
                    LocalMultiplayerNetwork, client B on an impaired link
USAGE
}

for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
  esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
godot=$(scripts/install-godot.sh)
build_log=$(mktemp)
trap 'rm -f "$build_log"' EXIT
# The optimised library, also under the editor's name: the demo runs in real time.
scripts/build.sh >"$build_log" 2>&1 || { cat "$build_log" >&2; exit 1; }

run() {
  local demo=$1
  shift
  "$godot" --headless --path godot-project -s "res://demo/$demo.gd" -- "$@" 2>&1 |
    grep -vE '^(Godot Engine v|Initialize godot-rust)' | sed '/./,$!d'
  local rc=${PIPESTATUS[0]}
  (( rc == 0 )) || exit "$rc"
  echo
}

case "${1:-}" in
  --window|--multiplayer)
    scene=main
    [[ $1 == --multiplayer ]] && scene=multiplayer_demo
    if [[ -z ${DISPLAY:-}${WAYLAND_DISPLAY:-} ]]; then
      echo "demo.sh $1: no display (DISPLAY is not set); scripts/screenshot-test.sh --out DIR shows it on a virtual one" >&2
      exit 1
    fi
    exec "$godot" --path godot-project "res://demo/$scene.tscn"
    ;;
esac

if (( $# == 0 )); then
  run local_pair_demo
  run link_demo
fi
run reliable_demo "$@"

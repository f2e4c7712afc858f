#!/usr/bin/env bash
# Benchmarks: the optimised library in headless Godot, side by side with Godot's own peers, and the Rust core.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/bench.sh [--json FILE] [--quick] [--only race|multiplayer_race|server] [--help]

  1. builds the optimised library with the benchmark-only BenchNullPeer (cargo --release --features
     bench-peers) and installs it under the editor's name in addons/peerkit/bin (scripts/test.sh and
     scripts/build.sh put the debug build back);
  2. runs godot-project/bench/bench.gd headless: same-thread put+get against a null peer, a GDScript Array,
     PacketPeerStream and PacketPeerUDP; cross-thread throughput; LinkConditioner overhead and queue depth;
     ReliablePacketPeer goodput; UdpPacketPeer against PacketPeerUDP; LocalMultiplayerPeer per packet;
     then, in a fresh process, memory per queued packet; then the targets, as
     ratios of figures from the same bench.sh run;
  3. runs godot-project/bench/race.gd: the same reliable stream of 1 KiB messages through a UdpLinkProxy,
     with Godot's ENet and with ReliablePacketPeer over UdpPacketPeer, at three link conditions (goodput,
     p50/p99 latency, ratios), a burst, and a thin stream of 100 B events at 100/s on two lossy links, and MultiplayerLinkConditioner's cost over a bare ENetMultiplayerPeer;
     then godot-project/bench/multiplayer_race.gd: a game's load (60 Hz unreliable state, 20 Hz reliable
     events, one 1 MB transfer, on three channels) over ENetMultiplayerPeer and over UdpMultiplayerPeer through
     the same proxy (delivered share and p50/p99 per mode, the transfer's time, main-thread CPU per packet);
  4. runs godot-project/bench/server.gd: one ReliableServer and 64 clients on loopback, each client sending
     60 messages of 100 B a second for 10 s: the server side's time per frame (p50, p99) and messages
     delivered;
  5. runs `cargo bench -p peerkit-core` (the core without Godot).
--only race  runs step 3's race alone, --only multiplayer_race its multiplayer race, --only server step 4
alone (with step 1's build).
Every figure is the median of 5 runs in one process. --json FILE writes all figures to FILE.
--quick runs a tenth of the work (for trying the script, not for figures).
The first run builds the optimised library, which takes a few minutes.
USAGE
}

json=""
quick=()
only=""
while (( $# > 0 )); do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --json) json=${2:?--json needs a file}; shift ;;
    --quick) quick=(--quick) ;;
    --only) only=${2:?--only needs race, multiplayer_race or server}; shift; [[ $only == race || $only == multiplayer_race || $only == server ]] || { echo "bench.sh: --only takes race, multiplayer_race or server" >&2; exit 2; } ;;
    *) echo "bench.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
godot=$(scripts/install-godot.sh)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "building the optimised library with BenchNullPeer ..." >&2
cargo build -p peerkit --release --locked --features bench-peers >&2
case "$(uname -m)" in
  x86_64) arch=x86_64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "bench.sh: unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
cp target/release/libpeerkit.so "addons/peerkit/bin/libpeerkit.linux.debug.$arch.so.tmp"
mv -f "addons/peerkit/bin/libpeerkit.linux.debug.$arch.so.tmp" "addons/peerkit/bin/libpeerkit.linux.debug.$arch.so"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
run_godot() {
  local rc
  set +e
  "$godot" --headless --path godot-project -s "$@" 2>&1 | grep -vE '^(Godot Engine v|Initialize godot-rust)'
  rc=${PIPESTATUS[0]}
  set -e
  (( rc == 0 )) || { echo "bench.sh: the Godot benchmark failed ($rc)" >&2; exit "$rc"; }
}
if [[ -n $only ]]; then
  run_godot "res://bench/$only.gd" -- --json "$work/$only.json" "${quick[@]}"
  [[ -n $json ]] && cp "$work/$only.json" "$json" && echo "figures written to $json"
  exit 0
fi
run_godot res://bench/bench.gd -- --section speed --json "$work/speed.json" "${quick[@]}"
run_godot res://bench/bench.gd -- --section memory --json "$work/memory.json" "${quick[@]}"
run_godot res://bench/targets.gd -- "$work/speed.json" "$work/memory.json" "$work/godot.json"
echo
run_godot res://bench/race.gd -- --json "$work/race.json" "${quick[@]}"
echo
run_godot res://bench/multiplayer_race.gd -- --json "$work/multiplayer_race.json" "${quick[@]}"
echo
run_godot res://bench/server.gd -- --json "$work/server.json" "${quick[@]}"

echo
bench_args=()
(( ${#quick[@]} == 0 )) && bench_args=(-- --bench)
PEERKIT_BENCH_JSON="$work/core.json" cargo bench -p peerkit-core --locked --bench core -q "${bench_args[@]}" 2>/dev/null ||
  PEERKIT_BENCH_JSON="$work/core.json" cargo bench -p peerkit-core --locked --bench core "${bench_args[@]}"

if [[ -n $json ]]; then
  python3 - "$work/godot.json" "$work/core.json" "$work/race.json" "$work/multiplayer_race.json" "$work/server.json" "$json" <<'PY'
import json, sys
godot, core, race, mp_race, server, out = sys.argv[1:]
with open(godot) as g, open(core) as c, open(race) as r, open(mp_race) as m, open(server) as s:
    merged = {"godot": json.load(g), "core": json.load(c), "race": json.load(r), "multiplayer_race": json.load(m),
              "server": json.load(s)}
with open(out, "w") as f:
    json.dump(merged, f, indent=2)
PY
  echo "figures written to $json"
fi

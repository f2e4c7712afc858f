#!/usr/bin/env bash
# Run each fuzz target (cargo-fuzz + libFuzzer) for a while; a crash fails the run and leaves its input in
# fuzz/artifacts/TARGET/ (turn it into a regression test).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/fuzz.sh [SECONDS] [--help]

Runs each fuzz target in fuzz/fuzz_targets for SECONDS (default 60), starting from the committed seed
corpus in fuzz/corpus/TARGET. New interesting inputs go to fuzz/corpus-new/TARGET (git-ignored); to keep
them, merge both into a fresh folder and commit that as corpus/TARGET:
`cd fuzz && mkdir M && RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET M corpus/TARGET corpus-new/TARGET -- -merge=1`.
Targets: datagram_decode (decoder + reassembly), connection_pair (two connections, the fuzzer as the
network and the reader), sender_acks (forged acknowledgements against the sending half), link_model (settings and traffic), multiplayer_network (peers, targets, modes, links, disconnects). Installs cargo-fuzz if it is missing. libFuzzer needs Rust's
unstable -Z flags: on the stable toolchain this sets RUSTC_BOOTSTRAP=1 for the fuzz build only.
Prints "fuzz: N passed, N failed".
USAGE
}

seconds=60
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number (see --help)" >&2; exit 2 ;;
  *) seconds=$1 ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo/fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (once) ..." >&2
  cargo install cargo-fuzz --locked >&2
fi
export RUSTC_BOOTSTRAP=1

passed=0
failed=0
for target in datagram_decode connection_pair sender_acks link_model multiplayer_network server_endpoint; do
  mkdir -p "corpus/$target" "corpus-new/$target"
  echo "== fuzzing $target for $seconds s"
  if cargo fuzz run "$target" "corpus-new/$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
      2>&1 | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|Done|==[0-9]+==|SUMMARY|thread|panicked|.*ERROR)" ; then
    :
  fi
  if [[ ${PIPESTATUS[0]} -eq 0 ]]; then
    passed=$((passed + 1))
  else
    echo "fuzz target $target FAILED: see fuzz/artifacts/$target/" >&2
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
(( failed == 0 ))

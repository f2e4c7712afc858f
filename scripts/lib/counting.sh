# Sourced by scripts/test.sh: turns a step's summary line and exit code into its counts. Uses the caller's
# $logs (a folder) and appends to its problems array.

# counts LABEL LOG: the last "LABEL: N passed, N failed" line of LOG as "N N", or nothing when there is none.
counts() {
  grep -E "^$1: [0-9]+ passed, [0-9]+ failed\$" "$2" | tail -n 1 |
    sed -E "s/^$1: ([0-9]+) passed, ([0-9]+) failed\$/\1 \2/" || true
}

# counted LABEL WHAT CMD...: runs CMD, its output also in $logs/LABEL.log, and sets counted_passed and
# counted_failed from its "LABEL: N passed, N failed" line; without one, that is a failure and WHAT says why. A
# command that exits non-zero is a failure too, whatever its line says.
counted() {
  local label=$1 what=$2 found rc
  shift 2
  set +e
  "$@" 2>&1 | tee "$logs/$label.log"
  rc=${PIPESTATUS[0]}
  set -e
  found=$(counts "$label" "$logs/$label.log")
  if [[ -n $found ]]; then
    read -r counted_passed counted_failed <<<"$found"
    if (( rc != 0 && counted_failed == 0 )); then
      counted_failed=1
      problems+=("$label exited with $rc although its summary counted no failure")
    fi
  else
    counted_passed=0
    counted_failed=1
    problems+=("$what (exit $rc)")
  fi
}

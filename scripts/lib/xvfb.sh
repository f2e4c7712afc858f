# shellcheck shell=bash
# A private X server for the tests that draw (scripts/screenshot-test.sh, scripts/editor-test.sh).

# start_xvfb XVFB SIZE LOG: starts XVFB (the private Xvfb launcher) on a free display number with a screen of SIZE
# (e.g. 1280x720x24), its output in LOG, and waits for its socket. Sets xvfb_display (the number) and xvfb_pid;
# on failure prints why and returns 1.
start_xvfb() {
  local xvfb=$1 size=$2 log=$3 n
  xvfb_display=""
  xvfb_pid=""
  for n in $(seq 90 170); do
    if [[ ! -e /tmp/.X11-unix/X$n && ! -e /tmp/.X$n-lock ]]; then xvfb_display=$n; break; fi
  done
  [[ -n $xvfb_display ]] || { echo "no free X display number between 90 and 170" >&2; return 1; }
  "$xvfb" ":$xvfb_display" -screen 0 "$size" -nolisten tcp >"$log" 2>&1 &
  xvfb_pid=$!
  for _ in $(seq 100); do
    [[ -e /tmp/.X11-unix/X$xvfb_display ]] && return 0
    kill -0 "$xvfb_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "Xvfb did not start:" >&2
  tail -n 20 "$log" >&2
  return 1
}

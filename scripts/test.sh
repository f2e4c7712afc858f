#!/usr/bin/env bash
# Install what is missing, build, run the Rust tests and the GDScript suite in headless Godot.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/test.sh [--fuzz SECONDS] [--platforms] [--package] [FILTER...] [--help]

  1. finds or installs Godot 4.3+ (scripts/install-godot.sh);
  2. builds the debug library into addons/peerkit/bin (scripts/build.sh --debug --test-hooks: with the
     PeerkitPanicProbe class the tests use to prove a panic becomes an error);
  3. checks formatting (cargo fmt --check) and lints (cargo clippy --all-targets -D warnings), and that its
     own counter (scripts/lib/counting.sh) counts a step that exits non-zero as failed;
  4. runs `cargo test --workspace`;
  5. runs the GDScript suites in godot-project/tests headless;
  6. without FILTER, runs each script in godot-project/examples (the README's examples) as a user would,
     the demo scenes on a virtual display with their screenshots checked (scripts/screenshot-test.sh), and
     the real editor with the peerkit plugin's Debugger panel, driven and checked as a person would see it
     (scripts/editor-test.sh);
  7. with --fuzz SECONDS, runs each fuzz target that long (scripts/fuzz.sh; CI uses 30);
  8. with --platforms, builds and tests the Windows x86_64 and Linux arm64 libraries (scripts/test-platforms.sh:
     the core's tests under Wine, the DLL's imports and exports, the GDScript suite in arm64 Godot under qemu;
     the toolchains install into .toolchains/ on first use);
  9. with --package, packages the addon and installs it into a brand-new project (scripts/install-test.sh).
FILTER (optional, one or more): run only the GDScript tests whose "suite.test" name contains it,
e.g. `scripts/test.sh close` or `scripts/test.sh test_local_packet_peer`. Rust tests always run.

Fails (exit 1) on any failed test, a Godot exit code other than 0, or a Godot log that shows
SCRIPT ERROR, "Can't open dynamic library", "Error loading extension" or leaked ObjectDB instances.
The last line is "N passed, N failed" over Rust and GDScript tests together.
Logs: target/test-logs/{cargo,godot}.log
USAGE
}

filters=()
fuzz_seconds=""
package=false
platforms=false
while (( $# > 0 )); do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --package) package=true ;;
    --platforms) platforms=true ;;
    --fuzz) fuzz_seconds=${2:?--fuzz needs a number of seconds}; shift ;;
    -*) echo "test.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) filters+=("$1") ;;
  esac
  shift
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
logs="$repo/target/test-logs"
mkdir -p "$logs"
# The Rust docs test writes the library's editor docs here; tests/test_docs.gd checks them against ClassDB.
export PEERKIT_DOCS_DIR="$repo/target/docs-xml"
rm -rf "$PEERKIT_DOCS_DIR"

step() { printf '\n== %s\n' "$*"; }
# counts and counted: how a step's "LABEL: N passed, N failed" line and exit code become its counts.
source "$repo/scripts/lib/counting.sh"

step "Godot runtime"
godot=$(scripts/install-godot.sh)
# The GDScript suite starts a second Godot for its two-process tests: this one.
export PEERKIT_GODOT="$godot"
echo "$godot ($("$godot" --headless --version 2>/dev/null | tail -n 1))"

step "build"
scripts/build.sh --debug --test-hooks

problems=()
lint_failed=0

step "cargo fmt --check, cargo clippy"
if ! cargo fmt --all -- --check; then
  problems+=("cargo fmt --check: the code is not formatted (run cargo fmt --all)")
  lint_failed=$((lint_failed + 1))
fi
if ! cargo clippy --workspace --all-targets --locked -- -D warnings; then
  problems+=("cargo clippy found warnings")
  lint_failed=$((lint_failed + 1))
fi
# The counter itself: a step whose summary says "0 failed" but that exits non-zero counts as failed.
if ! (logs=$(mktemp -d) && problems=() &&
  counted selftest "no summary" bash -c 'echo "selftest: 3 passed, 0 failed"; exit 4' >/dev/null &&
  ((counted_failed == 1)) && [[ ${problems[0]} == *"exited with 4"* ]]); then
  problems+=("scripts/lib/counting.sh: a step that exited non-zero was not counted as failed")
  lint_failed=$((lint_failed + 1))
fi

step "cargo test"
set +e
cargo test --workspace --locked 2>&1 | tee "$logs/cargo.log"
cargo_rc=${PIPESTATUS[0]}
set -e
# Sum every "test result: ... N passed; M failed" line (unit, integration and doc tests).
read -r rust_passed rust_failed < <(
  grep -E '^test result:' "$logs/cargo.log" |
    sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/' |
    awk '{ p += $1; f += $2 } END { print p + 0, f + 0 }'
)
if (( cargo_rc != 0 )); then
  problems+=("cargo test exited with $cargo_rc")
  (( rust_failed == 0 )) && rust_failed=1  # a build failure runs no test but must still count as a failure
fi
echo "rust: $rust_passed passed, $rust_failed failed"

step "GDScript tests (headless Godot)"
set +e
timeout 900 "$godot" --headless --path godot-project -s res://tests/run_tests.gd -- "${filters[@]}" 2>&1 |
  tee "$logs/godot.log"
godot_rc=${PIPESTATUS[0]}
set -e
gd_counts=$(counts gdscript "$logs/godot.log")
if [[ -n $gd_counts ]]; then
  read -r gd_passed gd_failed <<<"$gd_counts"
else
  gd_passed=0
  gd_failed=1
  problems+=("the GDScript runner printed no summary (crash or timeout?)")
fi
(( godot_rc == 0 )) || problems+=("Godot exited with $godot_rc")
for pattern in 'SCRIPT ERROR' "Can't open dynamic library" 'Error loading extension' 'ObjectDB instances leaked at exit'; do
  if grep -qF "$pattern" "$logs/godot.log"; then
    problems+=("the Godot log shows '$pattern'")
  fi
done

examples_passed=0
examples_failed=0
if (( ${#filters[@]} == 0 )); then
  step "examples (the scripts the README shows, run as a user would)"
  for example in godot-project/examples/*.gd; do
    name=$(basename "$example" .gd)
    [[ $name == run_node ]] && continue  # the runner for node examples, not an example
    # A node script runs as it would in a scene (examples/run_node.gd); a SceneTree script runs as itself.
    if grep -q '^extends SceneTree' "$example"; then
      run=(-s "res://examples/$name.gd")
    else
      run=(-s res://examples/run_node.gd -- "res://examples/$name.gd")
    fi
    set +e
    timeout 120 "$godot" --headless --path godot-project "${run[@]}" >"$logs/example-$name.log" 2>&1
    rc=$?
    set -e
    # The README shows the script whole, less its leading "##" comment: the two must not drift apart.
    shown=$(python3 -c 'import sys; code = "".join(l for l in open(sys.argv[1]) if not l.startswith("##")); print(code.strip() in open("README.md").read())' "$example")
    if [[ $shown != True ]]; then
      echo "README.md does not show $example as it is" >>"$logs/example-$name.log"
    fi
    # Each "## Expect: TEXT" line of the example must be printed by it.
    missing=0
    while IFS= read -r expected; do
      if ! grep -qF -- "$expected" "$logs/example-$name.log"; then
        echo "expected output missing: $expected" >>"$logs/example-$name.log"
        missing=1
      fi
    done < <(sed -n 's/^## Expect: //p' "$example")
    if (( rc == 0 && missing == 0 )) && [[ $shown == True ]] && ! grep -qE 'SCRIPT ERROR|Error loading extension' "$logs/example-$name.log"; then
      examples_passed=$((examples_passed + 1))
      echo "ok   $name"
    else
      examples_failed=$((examples_failed + 1))
      echo "FAIL $name (exit $rc; log: $logs/example-$name.log)"
      tail -n 20 "$logs/example-$name.log"
    fi
  done
  # And the other way: every GDScript snippet in README is one of those files.
  set +e
  python3 - <<'PY' >"$logs/example-snippets.log" 2>&1
import glob, re
examples = ["".join(l for l in open(f) if not l.startswith("##")).strip() for f in glob.glob("godot-project/examples/*.gd")]
snippets = re.findall(r"```gdscript\n(.*?)```", open("README.md").read(), re.S)
orphans = [s for s in snippets if s.strip() not in examples]
for s in orphans:
    print("README snippet with no file in godot-project/examples/:\n" + s)
print(f"{len(snippets)} snippets, {len(orphans)} without a file")
raise SystemExit(1 if orphans else 0)
PY
  rc=$?
  set -e
  if (( rc == 0 )); then
    examples_passed=$((examples_passed + 1))
    echo "ok   every README snippet is an example file ($(tail -n 1 "$logs/example-snippets.log"))"
  else
    examples_failed=$((examples_failed + 1))
    echo "FAIL README snippets without a file:"
    cat "$logs/example-snippets.log"
  fi
  # README's Troubleshooting: godot-rust's banner follows Godot's --no-header (it is printed without it).
  set +e
  quiet=$("$godot" --headless --no-header --path godot-project -s res://examples/link_conditioner_test.gd 2>&1)
  loud=$("$godot" --headless --path godot-project -s res://examples/link_conditioner_test.gd 2>&1)
  set -e
  if [[ $quiet == *"at 100 ms: 1 packets"* && $quiet != *"Initialize godot-rust"* && $loud == *"Initialize godot-rust"* ]]; then
    examples_passed=$((examples_passed + 1))
    echo "ok   --no-header silences godot-rust's banner, which is printed without it"
  else
    examples_failed=$((examples_failed + 1))
    echo "FAIL the banner with and without --no-header:"; echo "$quiet" | head -n 5; echo "$loud" | head -n 5
  fi
fi

shots_passed=0
shots_failed=0
if (( ${#filters[@]} == 0 )); then
  step "demo screenshots (Xvfb + Mesa, checked pixel by pixel)"
  counted screenshots "the screenshot test printed no summary" scripts/screenshot-test.sh
  shots_passed=$counted_passed
  shots_failed=$counted_failed
fi

editor_passed=0
editor_failed=0
if (( ${#filters[@]} == 0 )); then
  step "the editor's peerkit Debugger panel (the real editor on Xvfb)"
  counted editor "the editor test printed no summary" scripts/editor-test.sh
  editor_passed=$counted_passed
  editor_failed=$counted_failed
fi

fuzz_passed=0
fuzz_failed=0
if [[ -n $fuzz_seconds ]]; then
  step "fuzzing, $fuzz_seconds s per target"
  counted fuzz "the fuzz run printed no summary (did cargo-fuzz build?)" scripts/fuzz.sh "$fuzz_seconds"
  fuzz_passed=$counted_passed
  fuzz_failed=$counted_failed
fi

platforms_passed=0
platforms_failed=0
if [[ $platforms == true ]]; then
  step "Windows x86_64 and Linux arm64"
  counted platforms "the platform tests printed no summary" scripts/test-platforms.sh
  platforms_passed=$counted_passed
  platforms_failed=$counted_failed
fi

install_passed=0
install_failed=0
if [[ $package == true ]]; then
  step "package and install into a new project"
  set +e
  scripts/install-test.sh 2>&1 | tee "$logs/install.log"
  set -e
  found=$(counts install "$logs/install.log")
  if [[ -n $found ]]; then
    read -r install_passed install_failed <<<"$found"
  else
    install_failed=1
    problems+=("the install test printed no summary")
  fi
fi

step "summary"
for p in "${problems[@]}"; do echo "problem: $p"; done
passed=$((rust_passed + gd_passed + examples_passed + shots_passed + editor_passed + fuzz_passed + platforms_passed + install_passed))
failed=$((rust_failed + gd_failed + lint_failed + examples_failed + shots_failed + editor_failed + fuzz_failed + platforms_failed + install_failed))
if (( failed == 0 && ${#problems[@]} > 0 )); then
  failed=1  # a log problem with every test green still fails the run
fi
echo "rust: $rust_passed passed, $rust_failed failed"
echo "gdscript: $gd_passed passed, $gd_failed failed"
echo "lint: $((3 - lint_failed)) passed, $lint_failed failed"
(( ${#filters[@]} == 0 )) && echo "examples: $examples_passed passed, $examples_failed failed"
(( ${#filters[@]} == 0 )) && echo "screenshots: $shots_passed passed, $shots_failed failed"
(( ${#filters[@]} == 0 )) && echo "editor: $editor_passed passed, $editor_failed failed"
[[ -n $fuzz_seconds ]] && echo "fuzz: $fuzz_passed passed, $fuzz_failed failed"
[[ $platforms == true ]] && echo "platforms: $platforms_passed passed, $platforms_failed failed"
[[ $package == true ]] && echo "install: $install_passed passed, $install_failed failed"
echo "$passed passed, $failed failed"
(( failed == 0 ))

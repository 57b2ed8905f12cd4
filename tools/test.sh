#!/usr/bin/env bash
# The README's test command (run as root on Debian 12, from anywhere):
#   1. install missing packages (tools/install-deps.sh)
#   2. build/ : configure, build, run every meson test (unit + integration)
#   3. build-asan/ : ASan+UBSan build (no mimalloc), unit tests only
#   4. tests/fuzz/run.sh 20 : the LMTP parser fuzz target for 20 s (one test)
# then prints one line per test and, as the very last line, "N passed, N failed".
# Exit status is non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

RESULTS=$(mktemp /tmp/sluice-test-results.XXXXXX)
trap 'rm -f "$RESULTS"' EXIT

# record RESULT NAME SECONDS: one test outcome for the summary
record() { printf '%s\t%s\t%s\n' "$1" "$2" "${3:-0}" >>"$RESULTS"; }

step() { printf '\n===== %s: %s\n' "$(date +%H:%M:%S)" "$*"; }

# setup_build DIR [meson options]: configure a fresh or existing build dir
setup_build() {
    local dir=$1
    shift
    if [ -f "$dir/meson-private/coredata.dat" ]; then
        meson setup --reconfigure "$dir" "$@" || meson setup --wipe "$dir" "$@"
    else
        rm -rf "$dir"
        meson setup "$dir" "$@"
    fi
}

# run_meson_tests DIR LABEL [meson test args]: runs the tests, then records each
# result from DIR/meson-logs/testlog.json
run_meson_tests() {
    local dir=$1 label=$2
    shift 2
    rm -f "$dir/meson-logs/testlog.json"
    meson test -C "$dir" --print-errorlogs "$@"
    if [ ! -s "$dir/meson-logs/testlog.json" ]; then
        record ERROR "$label: meson test (no testlog.json)"
        return
    fi
    python3 - "$dir/meson-logs/testlog.json" "$label" >>"$RESULTS" <<'PY' || record ERROR "$label: reading testlog.json"
import json, sys
path, label = sys.argv[1], sys.argv[2]
with open(path) as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        t = json.loads(line)
        name = f"{label}: {t.get('name')}"   # e.g. "sluice:unit / lmtp_parser"
        print(f"{t.get('result')}\t{name}\t{t.get('duration') or 0:.1f}")
PY
}

step "install dependencies"
if ! bash tools/install-deps.sh; then
    record ERROR "tools/install-deps.sh"
fi

step "build (build/)"
if setup_build build && ninja -C build; then
    step "meson test (build/): unit + integration"
    run_meson_tests build build --num-processes 1
else
    record ERROR "build: meson setup / ninja"
fi

step "sanitizer build (build-asan/)"
if setup_build build-asan -Db_sanitize=address,undefined -Dmimalloc=false && ninja -C build-asan; then
    step "meson test (build-asan/): unit"
    ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        run_meson_tests build-asan build-asan --suite unit
else
    record ERROR "build-asan: meson setup / ninja"
fi

step "fuzz (tests/fuzz/run.sh 20)"
t0=$SECONDS
if timeout -k 10 300 bash tests/fuzz/run.sh 20; then
    record OK "fuzz: tests/fuzz/run.sh 20" $((SECONDS - t0))
else
    record FAIL "fuzz: tests/fuzz/run.sh 20" $((SECONDS - t0))
fi

step "summary"
# awk, not python: the last line must appear even if the toolchain is broken.
awk -F '\t' '
    { printf "%-14s %s (%ss)\n", $1, $2, $3 }
    $1 == "OK" { passed++; next }
    $1 == "FAIL" || $1 == "TIMEOUT" || $1 == "ERROR" || $1 == "UNEXPECTEDPASS" { failed++; next }
    { other++ }
    END {
        if (other) printf "(%d skipped or expected failures, counted in neither)\n", other
        printf "%d passed, %d failed\n", passed, failed
        exit (failed || !passed) ? 1 : 0
    }' "$RESULTS"

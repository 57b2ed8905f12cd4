#!/usr/bin/env bash
# bench/durable-floor.sh: the durability floor of this disk, per method, as a
# Markdown table: the fastest Maildir deliveries that keep "data durable
# before its name, name durable before the reply", with no protocol and no
# server (bench/durable-floor.c). sluice's bench numbers are judged against it.
#
#   bench/durable-floor.sh [--repeat N] [--duration S]
#
#   --repeat N    repetitions (default $REPEAT or 3)
#   --duration S  measured seconds per run (default $DURATION or 5), each
#                 after the program's unmeasured 1 s warm-up
#
# Builds nothing: runs build/bench/durable-floor, or $FLOOR. Matrix: methods
# fsync, fsync-notmp (--no-tmp-fsync), syncfs and none x 1 and 10 recipients
# x 8 and 32 threads, 4 KiB messages, 1,000 users, interleaved, the order of
# the methods rotating per repetition; the table gives medians. The maildirs
# live in one temp dir under the repo (the disk sluice's mail is on), one tree
# per method. Message files are kept until the end: on ext4 without a
# journal, inode allocation stays several times more expensive for minutes
# after a bulk delete (bench/RESULTS.md), so give the disk a few quiet minutes
# after other deletes before a run, too. Several GB of mail at the defaults, most of it
# from method none; the temp dir is removed at the end.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
REPEAT=${REPEAT:-3}
DURATION=${DURATION:-5}
FLOOR=${FLOOR:-build/bench/durable-floor}
while [ $# -gt 0 ]; do
    case $1 in
    --repeat) REPEAT=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    *) echo "usage: bench/durable-floor.sh [--repeat N] [--duration S]" >&2; exit 2 ;;
    esac
    shift
done
[ -x "$FLOOR" ] || {
    echo "bench/durable-floor.sh: no $FLOOR: build it (ninja -C build bench/durable-floor)" \
        "or set FLOOR" >&2
    exit 1
}
avail_kb=$(df -Pk "$ROOT" | awk 'NR == 2 {print $4}')
[ "${avail_kb:-0}" -ge $((10 * 1024 * 1024)) ] || {
    echo "bench/durable-floor.sh: less than 10 GiB free under $ROOT" >&2
    exit 1
}

W=$(mktemp -d "$ROOT/.floor.XXXXXX") || exit 1
cleanup() {
    echo "removing $W (the runs' maildirs)" >&2
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# fsync-notmp: fsync without the tmp/ directory fsync, the least any server
# must do (enough with a journal, not crash-safe for the link count without)
METHODS=(fsync fsync-notmp syncfs none)
RUNS=$W/runs.jsonl
for ((rep = 1; rep <= REPEAT; rep++)); do
    # rotate the order so no method always runs first after a quiet disk
    k=$(((rep - 1) % ${#METHODS[@]}))
    order=("${METHODS[@]:k}" "${METHODS[@]:0:k}")
    for rcpts in 1 10; do
        for threads in 8 32; do
            for m in "${order[@]}"; do
                args=(--method "$m")
                [ "$m" = fsync-notmp ] && args=(--method fsync --no-tmp-fsync)
                out=$("$FLOOR" --dir "$W/$m" "${args[@]}" --threads "$threads" --rcpts "$rcpts" \
                    --users 1000 --size 4096 --duration "$DURATION" --json 2>"$W/stderr") || {
                    echo "bench/durable-floor.sh: $m, $rcpts rcpts, $threads threads failed:" >&2
                    cat "$W/stderr" >&2
                    exit 1
                }
                python3 - "$rep" "$out" "$m" >>"$RUNS" <<'PY'
import json, sys
j = json.loads(sys.argv[2])
j["rep"] = int(sys.argv[1])
j["method"] = sys.argv[3]
print(json.dumps(j))
PY
                tail -n 1 "$RUNS" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("rep %(rep)d %(method)-11s %(rcpts)2d rcpt %(threads)2d threads: %(msgs_per_s)8.0f msg/s  p50 %(p50_ms).2f  p99 %(p99_ms).2f ms  cpu %(cpu_ms_per_msg).3f ms/msg" % r)'
            done
        done
    done
done

echo
echo "$(date +%F): bench/durable-floor.sh, kernel $(uname -r), $(nproc) CPUs," \
    "$(findmnt -no SOURCE,FSTYPE,OPTIONS -T "$W" | tr -s " ");" \
    "REPEAT=$REPEAT, DURATION=$DURATION s, 4 KiB, 1,000 users, medians"
echo
python3 - "$RUNS" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
med = lambda xs: statistics.median(xs) if xs else float("nan")
print("| rcpts | threads | method | msg/s | p50 ms | p99 ms | CPU ms/msg | rounds/msg |")
print("|---|---|---|---|---|---|---|---|")
for rcpts in (1, 10):
    for threads in (8, 32):
        for m in ("fsync", "fsync-notmp", "syncfs", "none"):
            rs = [r for r in runs if r["method"] == m and r["rcpts"] == rcpts
                  and r["threads"] == threads]
            rounds = "%.3f" % med([r["rounds_per_msg"] for r in rs]) if m == "syncfs" else "-"
            print("| %d | %d | %s | %.0f | %.2f | %.2f | %.3f | %s |" % (
                rcpts, threads, m, med([r["msgs_per_s"] for r in rs]),
                med([r["p50_ms"] for r in rs]), med([r["p99_ms"] for r in rs]),
                med([r["cpu_ms_per_msg"] for r in rs]), rounds))
PY

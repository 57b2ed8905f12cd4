#!/usr/bin/env bash
# bench/smtp-source.sh: messages per second and server CPU per message for
# sluice under Postfix's smtp-source, in one run, on this machine.
#
#   bash bench/smtp-source.sh [MESSAGES] [SESSIONS] [SIZE_BYTES]
#
# Runs, each REPEAT times (default 3), interleaved: 1 and 10 recipients per
# message, with fsync = yes (the default, durable) and fsync = no. Each run
# uses fresh recipients (new maildirs) so ext4's inode allocator does not
# walk freshly deleted inodes. Prints one line per run and the medians.
# Needs a build in build/ (tools/run.sh or meson setup build && ninja -C build).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-16000}
S=${2:-8}
SIZE=${3:-4096}
REPEAT=${REPEAT:-3}
BIN=build/sluice
UDB=build/tools/sluice-userdb
[ -x "$BIN" ] || { echo "build sluice first: meson setup build && ninja -C build" >&2; exit 1; }
W=$(mktemp -d /tmp/sluice-bench.XXXXXX)
trap 'kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
PORT=$((20000 + RANDOM % 20000))
PID=
"$UDB" create "$W/userdb.sqlite" >/dev/null
# smtp-source -r R -t u@d sends to Ru@d ... 2u@d and u@d: create those users.
for run in $(seq 1 $((REPEAT * 4))); do
    "$UDB" add "$W/userdb.sqlite" "r${run}@example.test" >/dev/null
    for i in 2 3 4 5 6 7 8 9 10; do
        "$UDB" add "$W/userdb.sqlite" "${i}r${run}@example.test" >/dev/null
    done
done

start() { # fsync
    cat >"$W/sluice.conf" <<C
lmtp_listen = 127.0.0.1:$PORT
mail_root = $W/mail
userdb_connect = $W/userdb.sqlite
hostname = bench.test
fsync = $1
log_level = warning
C
    "$BIN" -c "$W/sluice.conf" 2>>"$W/sluice.log" &
    PID=$!
    for _ in $(seq 50); do
        (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
        sleep 0.1
    done
    echo "sluice did not start" >&2
    exit 1
}

stop() {
    kill "$PID"
    wait "$PID" || true
}

cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

run=0
results=()
for rep in $(seq 1 "$REPEAT"); do
    for fs in yes no; do
        for r in 1 10; do
            run=$((run + 1))
            start "$fs"
            c0=$(cpu_ticks "$PID")
            t0=$(date +%s.%N)
            smtp-source -L -d -s "$S" -m "$N" -l "$SIZE" -r "$r" -f bench@example.org \
                -t "r${run}@example.test" "127.0.0.1:$PORT"
            t1=$(date +%s.%N)
            c1=$(cpu_ticks "$PID")
            stop
            line=$(awk -v n="$N" -v r="$r" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" \
                -v fs="$fs" -v s="$S" -v sz="$SIZE" 'BEGIN {
                    d = t1 - t0
                    printf "fsync=%s rcpts=%d sessions=%d size=%d msgs=%d secs=%.2f msg/s=%.0f deliveries/s=%.0f cpu_ms/msg=%.3f\n",
                        fs, r, s, sz, n, d, n / d, n * r / d, (c1 - c0) * 10 / n }')
            echo "$line"
            results+=("$line")
        done
    done
done
echo "--- medians over $REPEAT runs"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for fs in yes no; do
    for r in 1 10; do
        sel=$(printf '%s\n' "${results[@]}" | grep "^fsync=$fs rcpts=$r ")
        m=$(echo "$sel" | sed -E 's/.* msg\/s=([0-9]+).*/\1/' | median)
        c=$(echo "$sel" | sed -E 's/.*cpu_ms\/msg=([0-9.]+).*/\1/' | median)
        echo "fsync=$fs rcpts=$r msg/s=$m deliveries/s=$((m * r)) cpu_ms/msg=$c"
    done
done

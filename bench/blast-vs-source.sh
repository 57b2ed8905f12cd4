#!/usr/bin/env bash
# bench/blast-vs-source.sh: lmtpblast against Postfix's smtp-source, both
# sending to Postfix's smtp-sink in LMTP mode on loopback, so the only
# difference is the client. Reports messages per second and the client's
# own CPU time per message (user + system, from bash `times` on the child).
#
#   bash bench/blast-vs-source.sh
#
# Environment: REPEAT (default 3), CONNS (default "8 32"), RCPTS (default
# "1 10"), SIZE (default 4096), MSGS_1RCPT (default 20000), MSGS_NRCPT
# (default 10000), BLAST (default build/bench/lmtpblast), BLAST_ARGS (extra
# lmtpblast options, e.g. --pipeline; empty: lock-step like smtp-source).
#
# Runs are interleaved (each point alternates which client goes first) and
# repeated; the table shows medians. The machine also runs smtp-sink, so
# read the numbers as a comparison within one run, not as absolutes.
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-3}
CONNS=${CONNS:-"8 32"}
RCPTS=${RCPTS:-"1 10"}
SIZE=${SIZE:-4096}
MSGS_1RCPT=${MSGS_1RCPT:-20000}
MSGS_NRCPT=${MSGS_NRCPT:-10000}
BLAST=${BLAST:-build/bench/lmtpblast}
BLAST_ARGS=${BLAST_ARGS:-}
# smtp-source -l counts only the body; its From/To/Date/Message-Id add
# about 110 bytes. lmtpblast's --size is the whole message: match them.
BLAST_SIZE=$((SIZE + 110))

for tool in smtp-sink smtp-source; do
    command -v "$tool" >/dev/null || { echo "$tool not found (Debian: postfix)" >&2; exit 1; }
done
[ -x "$BLAST" ] || { echo "build lmtpblast first: ninja -C build" >&2; exit 1; }

W=$(mktemp -d /tmp/blast-vs-source.XXXXXX)
SINK_PID=
cleanup() {
    if [ -n "$SINK_PID" ]; then
        kill "$SINK_PID" 2>/dev/null || true
        wait "$SINK_PID" 2>/dev/null || true
    fi
    rm -rf "$W"
}
trap cleanup EXIT

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A free loopback port: pick at random, skip ports something answers on,
# and retry if smtp-sink still fails to bind (a race with another user).
start_sink() {
    local user=()
    [ "$(id -u)" -eq 0 ] && user=(-u nobody) # smtp-sink refuses to run as root
    for _ in $(seq 20); do
        PORT=$((20000 + RANDOM % 30000))
        port_open "$PORT" && continue
        smtp-sink "${user[@]}" -L -c "127.0.0.1:$PORT" 256 >/dev/null 2>"$W/sink.err" &
        SINK_PID=$!
        for _ in $(seq 50); do
            port_open "$PORT" && return 0
            kill -0 "$SINK_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill "$SINK_PID" 2>/dev/null || true
        wait "$SINK_PID" 2>/dev/null || true
        SINK_PID=
    done
    echo "could not start smtp-sink: $(cat "$W/sink.err")" >&2
    exit 1
}

# `times` in a subshell reports that subshell's children: the client alone.
to_s() { # "1m2.345s" -> 62.345
    awk -v t="$1" 'BEGIN { split(t, a, "m"); sub("s", "", a[2]); printf "%.3f", a[1] * 60 + a[2] }'
}

# run_client NAME MSGS CMD...: prints "msgs_per_s cpu_ms_per_msg".
run_client() {
    local name=$1 msgs=$2
    shift 2
    local t0 t1 out rc
    t0=$(date +%s%N)
    out=$( (
        set +e
        "$@" >"$W/$name.out" 2>"$W/$name.err"
        echo "rc $?"
        times
    ))
    t1=$(date +%s%N)
    rc=$(echo "$out" | awk '/^rc / { print $2 }')
    if [ "$rc" != 0 ]; then
        echo "$name failed (exit $rc): $*" >&2
        tail -n 5 "$W/$name.out" "$W/$name.err" >&2
        exit 1
    fi
    local ct user sys
    ct=$(echo "$out" | tail -n 1) # children: "user sys"
    user=$(to_s "${ct%% *}")
    sys=$(to_s "${ct##* }")
    awk -v n="$msgs" -v t0="$t0" -v t1="$t1" -v u="$user" -v s="$sys" 'BEGIN {
        d = (t1 - t0) / 1e9
        printf "%.0f %.4f\n", n / d, (u + s) * 1000 / n }'
}

run_source() { # CONNS RCPTS MSGS
    run_client smtp-source "$3" smtp-source -L -d -s "$1" -m "$3" -l "$SIZE" -r "$2" \
        "127.0.0.1:$PORT"
}

run_blast() { # CONNS RCPTS MSGS
    # shellcheck disable=SC2086 # BLAST_ARGS is a list of options
    run_client lmtpblast "$3" "$BLAST" --target "127.0.0.1:$PORT" --connections "$1" \
        --rcpts "$2" --messages "$3" --size "$BLAST_SIZE" $BLAST_ARGS
}

start_sink
echo "smtp-sink -L on 127.0.0.1:$PORT; $REPEAT runs per point, interleaved; size $SIZE"
echo "lmtpblast options: ${BLAST_ARGS:-(none: lock-step, like smtp-source)}"
declare -A res
for rep in $(seq 1 "$REPEAT"); do
    for c in $CONNS; do
        for r in $RCPTS; do
            n=$MSGS_1RCPT
            [ "$r" -gt 1 ] && n=$MSGS_NRCPT
            if [ $((rep % 2)) -eq 1 ]; then
                s=$(run_source "$c" "$r" "$n")
                b=$(run_blast "$c" "$r" "$n")
            else
                b=$(run_blast "$c" "$r" "$n")
                s=$(run_source "$c" "$r" "$n")
            fi
            printf 'run %d conns=%-3s rcpts=%-3s smtp-source %s  lmtpblast %s\n' \
                "$rep" "$c" "$r" "$s" "$b"
            res[$c.$r.src]+="$s"$'\n'
            res[$c.$r.blast]+="$b"$'\n'
        done
    done
done

median_col() { # COLUMN (1 or 2) of the lines on stdin
    awk -v k="$1" 'NF { print $k }' | sort -g |
        awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

echo
echo "medians of $REPEAT runs (msg/s: higher is better; CPU ms/msg: lower is better)"
printf '| conns | rcpts | smtp-source msg/s | lmtpblast msg/s '
printf '| smtp-source CPU ms/msg | lmtpblast CPU ms/msg |\n'
printf '|---|---|---|---|---|---|\n'
for c in $CONNS; do
    for r in $RCPTS; do
        sr=$(printf '%s' "${res[$c.$r.src]}" | median_col 1)
        br=$(printf '%s' "${res[$c.$r.blast]}" | median_col 1)
        sc=$(printf '%s' "${res[$c.$r.src]}" | median_col 2)
        bc=$(printf '%s' "${res[$c.$r.blast]}" | median_col 2)
        printf '| %s | %s | %s | %s | %s | %s |\n' "$c" "$r" "$sr" "$br" "$sc" "$bc"
    done
done

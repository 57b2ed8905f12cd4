#!/usr/bin/env bash
# Load: Postfix's smtp-source against sluice (fsync = yes), 8 sessions, 16,000
# messages with 1 recipient, then 16,000 with 10 recipients (-r 10), then 2,000
# with a new connection per message. Afterwards every mailbox must hold each
# accepted message exactly once, byte-exact against what smtp-source sends
# (captured once through smtp-sink -d with the same options), multi-recipient
# copies must be hard links, nothing may be left in tmp/, and the log must have
# one result=saved line per delivery. Prints messages/s per phase.
#
# LOAD_MESSAGES / LOAD_SESSIONS override the sizes (defaults 16000 / 8).
source "$(dirname "$0")/lib.sh"
t_init
t_need smtp-source smtp-sink

MSGS=${LOAD_MESSAGES:-16000}
SESS=${LOAD_SESSIONS:-8}
CONN_MSGS=$((MSGS / 8))
SENDER=sender@example.org
read -r LMTP_PORT SINK_PORT < <(free_ports 2 | tr '\n' ' ')

# smtp-source -r N sends RCPT TO:<N-th prefix><-t address> for N..2, then the bare
# address: -t multi@example.test -r 10 gives 10multi@ ... 2multi@, multi@.
userdb_demo 1
userdb_add single@example.test
userdb_add conn@example.test
MULTI_USERS=multi@example.test
userdb_add multi@example.test
for i in 2 3 4 5 6 7 8 9 10; do
    userdb_add "${i}multi@example.test"
    MULTI_USERS+=",${i}multi@example.test"
done

CONF=$T_WORK/sluice.conf
sluice_conf "$CONF" fsync=yes connections_per_ip_max=200 connections_max=1000
sluice_start "$CONF"

# ---------------------------------------------------------------- reference capture
# One message per phase through smtp-sink, with the same smtp-source options.
mkdir -p "$T_WORK/sink"
chown nobody "$T_WORK/sink"
t_logfile "$T_WORK/sink.log"
smtp-sink -L -u nobody -d "$T_WORK/sink/%H%M%S." "127.0.0.1:$SINK_PORT" 64 >>"$T_WORK/sink.log" 2>&1 &
SINK_PID=$!
t_bg_add "$SINK_PID"
wait_tcp 127.0.0.1 "$SINK_PORT" 10 "$SINK_PID" || { t_fail "smtp-sink starts" "not listening" "listening"; t_done; }

src_opts() { # PHASE -> smtp-source options shared by the capture and the real run
    case $1 in
    single) echo "-L -d -l 2000 -f $SENDER -t single@example.test -M client.test" ;;
    multi) echo "-L -d -l 700 -r 10 -f $SENDER -t multi@example.test -M client.test" ;;
    conn) echo "-L -l 300 -f $SENDER -t conn@example.test -M client.test" ;;
    esac
}

capture() { # PHASE -> sets CAPTURED to the path of the captured reference message
    local before after f=
    CAPTURED=
    before=$(ls "$T_WORK/sink" | sort)
    # shellcheck disable=SC2046
    if ! timeout 30 smtp-source $(src_opts "$1") -m 1 -s 1 "127.0.0.1:$SINK_PORT" >>"$T_WORK/sink.log" 2>&1; then
        t_fail "smtp-source -> smtp-sink capture for $1" "exit status $?" "exit 0"
        t_done
    fi
    for _ in $(seq 50); do
        after=$(ls "$T_WORK/sink" | sort)
        f=$(comm -13 <(echo "$before") <(echo "$after") | head -n 1)
        [ -n "$f" ] && [ -s "$T_WORK/sink/$f" ] && break
        sleep 0.1
    done
    [ -n "$f" ] || { t_fail "smtp-sink dump for $1" "no dump file" "one file"; t_done; }
    sleep 0.2
    CAPTURED=$T_WORK/sink/$f
}

capture single
REF_SINGLE=$CAPTURED
capture multi
REF_MULTI=$CAPTURED
capture conn
REF_CONN=$CAPTURED
pid_stop "$SINK_PID"

# ---------------------------------------------------------------- load phases
run_phase() { # NAME MESSAGES SESSIONS RCPTS_PER_MSG
    local name=$1 n=$2 s=$3 r=$4 t0 t1 rc out
    t_log "phase $name: $n messages x $r recipients, $s sessions"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2046
    out=$(timeout -k 5 300 smtp-source $(src_opts "$name") -s "$s" -m "$n" "127.0.0.1:$LMTP_PORT" 2>&1)
    rc=$?
    t1=$(date +%s.%N)
    t_eq "phase $name: smtp-source exits 0 (every reply positive)" "$rc" 0 ||
        printf '%s\n' "$out" | tail -n 5
    python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); n=int(sys.argv[3]); r=int(sys.argv[4]);
print(f'# phase {sys.argv[5]}: {n} messages in {t:.2f}s = {n/t:.0f} messages/s, {n*r/t:.0f} deliveries/s')" \
        "$t0" "$t1" "$n" "$r" "$name"
}

run_phase single "$MSGS" "$SESS" 1
run_phase multi "$MSGS" "$SESS" 10
run_phase conn "$CONN_MSGS" "$SESS" 1

sluice_stop
t_eq "sluice exits 0 on SIGTERM after the load" "$SLUICE_RC" 0

# ---------------------------------------------------------------- checks
t_log "checking mailboxes"
T_PY_TIMEOUT=600
t_py "single" "$LIB_DIR/loadcheck.py" "$MAIL_ROOT" "$REF_SINGLE" "$MSGS" "$SENDER" single@example.test
t_py "multi" "$LIB_DIR/loadcheck.py" "$MAIL_ROOT" "$REF_MULTI" "$MSGS" "$SENDER" "$MULTI_USERS"
t_py "conn" "$LIB_DIR/loadcheck.py" "$MAIL_ROOT" "$REF_CONN" "$CONN_MSGS" "$SENDER" conn@example.test

left=$(leftover_tmp "$MAIL_ROOT" | wc -l)
t_eq "nothing left in any tmp/" "$left" 0
if [ "$LMTP_BACKEND" = sluice ]; then
    want=$((MSGS + MSGS * 10 + CONN_MSGS))
    got=$(grep -c 'result=saved' "$SLUICE_LOG")
    t_eq "log: one result=saved line per delivery" "$got" "$want"
fi

t_done

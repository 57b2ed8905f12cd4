#!/usr/bin/env bash
# Crash safety: a python LMTP load (6 connections, unique marked messages of
# 200 B to 1 MB, 1 or 3 recipients, fsync = yes) runs while sluice is killed
# with SIGKILL twice and restarted. Every delivery the client saw acknowledged
# must be in new/ (or cur/) intact; no file in new/ or cur/ may be partial or
# unknown; tmp/ may keep leftovers. sluice must come back up each time and
# keep delivering.
source "$(dirname "$0")/lib.sh"
t_init

read -r LMTP_PORT < <(free_port)
export LMTP_PORT MAIL_ROOT
userdb_demo 8
CONF=$T_WORK/sluice.conf
sluice_conf "$CONF" fsync=yes
sluice_start "$CONF"

OUT=$T_WORK/transcript
mkdir -p "$OUT"
now() { date +%s.%N; }
t_log "load starts"
timeout -k 5 120 python3 "$LIB_DIR/crash.py" load "$OUT" 12 6 >"$T_WORK/load.out" 2>&1 &
LOAD_PID=$!
t_bg_add "$LOAD_PID"
for round in 1 2; do
    sleep 3
    echo "kill $(now)" >>"$OUT/events"
    t_log "kill -9 sluice (round $round)"
    sluice_kill9
    sleep 0.5
    sluice_start "$CONF"
    echo "up $(now)" >>"$OUT/events"
    t_log "sluice restarted (pid $SLUICE_PID)"
done
if pid_wait "$LOAD_PID" 90; then
    t_eq "load client finished" "$PID_RC" 0
else
    t_fail "load client finished" "still running" "done within 90 s"
fi
t_bg_forget "$LOAD_PID"
cat "$T_WORK/load.out"
sluice_stop
t_eq "sluice exits 0 on SIGTERM after the crashes" "$SLUICE_RC" 0

T_PY_TIMEOUT=300
t_py "crash verify" "$LIB_DIR/crash.py" verify "$OUT"
t_done

#!/usr/bin/env bash
# The Prometheus stats socket: promtool accepts a live scrape; after a known
# load (40 messages x 3 recipients over 4 connections, plus unknown, inactive
# and oversize recipients) every counter equals what was sent; fsync = no
# shows as sluice_fsync_enabled 0; a refused client is counted; the
# sluice-stats reader prints a summary; HTTP errors for other paths.
source "$(dirname "$0")/lib.sh"
t_init
t_need python3 promtool curl

read -r LMTP_PORT STATS_PORT < <(free_ports 2 | tr '\n' ' ')
userdb_demo 20
userdb_add off@example.test --inactive

CONF=$T_WORK/sluice.conf
sluice_conf "$CONF" "stats_listen=127.0.0.1:$STATS_PORT" message_size_max=100k
sluice_start "$CONF"
wait_tcp 127.0.0.1 "$STATS_PORT" 10 "$SLUICE_PID" || t_fail "stats port listens" "closed" "open"

t_py "known load, exact counters" "$(dirname "$0")/stats_check.py" "$LMTP_PORT" "$STATS_PORT" "$MAIL_ROOT"

curl -s "http://127.0.0.1:$STATS_PORT/metrics" >"$T_WORK/metrics.txt"
t_cmd "promtool check metrics accepts a live scrape" promtool check metrics <"$T_WORK/metrics.txt"
t_eq "GET /other: 404" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$STATS_PORT/other")" 404
t_eq "POST /metrics: 405" "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$STATS_PORT/metrics")" 405
out=$("$SLUICE_SRC/tools/sluice-stats" "127.0.0.1:$STATS_PORT" --interval 0.2 2>&1)
t_match "sluice-stats summary" "$out" "fsync yes.*recipients: delivered 120"
sluice_stop
t_eq "sluice exits 0" "$SLUICE_RC" 0

# fsync = no is visible; an allowlist refusal is counted.
MAIL_ROOT=$T_WORK/mail2
sluice_conf "$CONF" "stats_listen=127.0.0.1:$STATS_PORT" fsync=no "lmtp_allow=10.9.9.9/32"
sluice_start "$CONF"
wait_tcp 127.0.0.1 "$STATS_PORT" 10 "$SLUICE_PID"
refused() {
    curl -s "http://127.0.0.1:$STATS_PORT/metrics" |
        sed -n 's/^sluice_connections_refused_total{reason="allowlist"} //p'
}
# sluice_start's readiness probe was refused too: wait until it is counted.
before=0
for _ in $(seq 40); do
    before=$(refused)
    [ "${before:-0}" -ge 1 ] && break
    sleep 0.05
done
sleep 0.2
before=$(refused)
(exec 3<>"/dev/tcp/127.0.0.1/$LMTP_PORT" && timeout 2 cat <&3 >/dev/null) 2>/dev/null
after=$before
for _ in $(seq 20); do
    after=$(refused)
    [ "$after" != "$before" ] && break
    sleep 0.1
done
t_eq "allowlist refusal counted once" "$after" "$((before + 1))"
m=$(curl -s "http://127.0.0.1:$STATS_PORT/metrics")
t_match "fsync = no: sluice_fsync_enabled 0" "$m" $'\nsluice_fsync_enabled 0\n'
t_match "no fsync calls with fsync = no" "$m" $'\nsluice_fsyncs_total 0\n'
sluice_stop
t_done

#!/usr/bin/env bash
# The SMTP AUTH endpoint (Dovecot auth client protocol, what Postfix's
# smtpd_sasl_type = dovecot speaks) against the real sluice binary, through
# auth_check.py: exact handshake and MECH flags; PLAIN (right, wrong and
# unknown user give the same FAIL), LOGIN, CRAM-MD5 and SCRAM-SHA-256 with
# {PLAIN} passwords, a {SHA512-CRYPT} user made by sluice-pw; CANCEL;
# protocol violations that disconnect; the per-connection cap; the failure
# delay (without blocking others); the per-IP penalty; a UNIX listener;
# stats; a passdb outage (connection closed, then recovery); SIGHUP (new
# mechanisms, the penalty table kept, an unknown mechanism refused). The log must
# never hold a password.
source "$(dirname "$0")/lib.sh"
t_init
t_need python3
SLUICE_PW=${SLUICE_PW:-$SLUICE_SRC/build/tools/sluice-pw}
t_need "$SLUICE_PW"

read -r LMTP_PORT AUTH_PORT STATS_PORT < <(free_ports 3 | tr '\n' ' ')
userdb_demo 5
crypt=$(printf '%s\n' 's3cret-crypt' | "$SLUICE_PW" -s SHA512-CRYPT)
t_match "sluice-pw makes a {SHA512-CRYPT} value" "$crypt" '^\{SHA512-CRYPT\}\$6\$'
userdb_add crypt@example.test --password "$crypt"

CONF=$T_WORK/sluice.conf
# start_auth_sluice WHAT: sluice with this test's auth endpoint, on $CONF
start_auth_sluice() {
    sluice_conf "$CONF" cores=1 \
        "auth_listen=127.0.0.1:$AUTH_PORT, unix:$T_WORK/auth.sock" \
        "stats_listen=127.0.0.1:$STATS_PORT" \
        "password_query=SELECT password, active FROM mailbox WHERE username = '%u'" \
        "auth_mechanisms=PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256" \
        default_pass_scheme=PLAIN auth_requests_per_conn_max=3 auth_cache_ttl=3s
    sluice_start "$CONF"
    wait_tcp 127.0.0.1 "$AUTH_PORT" 10 "$SLUICE_PID" || t_fail "auth port listens$1" "closed" "open"
}
start_auth_sluice ""
t_eq "UNIX auth socket mode 0660" "$(stat -c %a "$T_WORK/auth.sock" 2>/dev/null)" 660

T_PY_TIMEOUT=180 t_py "auth protocol" "$(dirname "$0")/auth_check.py" main 127.0.0.1 "$AUTH_PORT" \
    "$T_WORK/auth.sock" "$SLUICE_PID" "$STATS_PORT"

if command -v promtool >/dev/null 2>&1; then
    python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$STATS_PORT/metrics').read().decode())" >"$T_WORK/metrics.txt"
    t_cmd "promtool accepts the scrape with auth metrics" promtool check metrics <"$T_WORK/metrics.txt"
fi

T_PY_TIMEOUT=60 t_py "passdb down" "$(dirname "$0")/auth_check.py" down 127.0.0.1 "$AUTH_PORT" "$USERDB"
sluice_stop
t_eq "sluice exits 0" "$SLUICE_RC" 0

log=$(cat "$SLUICE_LOG")
t_match "one log line per AUTH with mechanism, user, rip and result" "$log" \
    'auth\([0-9]+/[0-9]+\): PLAIN ok user=<user0001@example.test> service=smtp lip=127.0.0.1 rip=192.0.2.1'
t_match "a failure is logged with its reason (log only)" "$log" \
    'PLAIN failed user=<nobody@example.test> service=smtp lip=127.0.0.1 rip=192.0.2.3: unknown user'
t_match "a passdb outage is logged" "$log" 'tempfail user=<user0003@example.test>.*passdb unavailable'
t_eq "no password in the log" "$(grep -c -e 's3cret-crypt' -e 'not-the-password' "$SLUICE_LOG")" 0
resp=$(printf '\0user0001@example.test\0demo' | base64 -w0)
t_eq "no response data in the log" "$(grep -cF "$resp" "$SLUICE_LOG")" 0

# ---------------------------------------------------------------- SIGHUP
# A reload swaps in the new mechanisms for new connections, keeps the penalty
# table when the delays stay the same (a guessing client keeps its slate), and
# an unknown mechanism leaves the offered ones in place.
start_auth_sluice " (reload run)"
RELOAD_PY=$T_WORK/reload.py
cat >"$RELOAD_PY" <<'PY'
import sys, time
from authproto import AuthConn
from itest import CHECK
target, step = sys.argv[1], sys.argv[2]
c = AuthConn(target)
mechs = sorted(c.handshake())
if step == "before":
    CHECK.eq("before the reload: mechanisms offered", mechs,
             ["CRAM-MD5", "LOGIN", "PLAIN", "SCRAM-SHA-256"])
    for i in (1, 2, 3):  # three new guesses: penalty level 3 (a 6 s wait)
        CHECK.eq("guess %d from 198.51.100.50: FAIL" % i,
                 c.plain("user0001@example.test", "guess-%d" % i, rip="198.51.100.50")[0], "FAIL")
else:
    want = ["LOGIN", "PLAIN"]
    CHECK.eq("after the %s: mechanisms offered to a new connection" % step, mechs, want)
    if step == "reload":
        t0 = time.monotonic()
        verb = c.plain("user0001@example.test", "demo", rip="198.51.100.50")[0]
        took = time.monotonic() - t0
        CHECK.eq("after the reload: the right password from the penalised rip: OK", verb, "OK")
        CHECK.true("after the reload: that rip is still held (penalty kept)", took >= 1.0,
                   "%.2f s" % took, ">= 1 s")
        t0 = time.monotonic()
        verb = c.plain("user0001@example.test", "demo", rip="198.51.100.51")[0]
        CHECK.true("after the reload: another rip is not held", time.monotonic() - t0 < 1.0,
                   "%.2f s" % (time.monotonic() - t0), "< 1 s")
c.close()
CHECK.done()
PY
t_py "before the reload" "$RELOAD_PY" "127.0.0.1:$AUTH_PORT" before
sed -i 's/^auth_mechanisms = .*/auth_mechanisms = PLAIN LOGIN/' "$CONF"
kill -HUP "$SLUICE_PID"
for _ in $(seq 50); do grep -q 'configuration reloaded' "$SLUICE_LOG" && break; sleep 0.1; done
t_match "SIGHUP: the reload is logged" "$(cat "$SLUICE_LOG")" 'configuration reloaded'
t_py "after the reload" "$RELOAD_PY" "127.0.0.1:$AUTH_PORT" reload
sed -i 's/^auth_mechanisms = .*/auth_mechanisms = PLAIN BOGUS/' "$CONF"
kill -HUP "$SLUICE_PID"
for _ in $(seq 50); do grep -q 'keeping the mechanisms' "$SLUICE_LOG" && break; sleep 0.1; done
t_match "SIGHUP with an unknown mechanism: the endpoint keeps its mechanisms and says why" \
    "$(cat "$SLUICE_LOG")" \
    "auth: reload: auth_mechanisms: unknown mechanism 'BOGUS': keeping the mechanisms offered before"
t_py "after the refused mechanism" "$RELOAD_PY" "127.0.0.1:$AUTH_PORT" "refused mechanism"
sluice_stop
t_eq "sluice exits 0 (reload run)" "$SLUICE_RC" 0

# An unknown mechanism name in the config is refused at start.
sluice_conf "$CONF" "auth_listen=127.0.0.1:$AUTH_PORT" "auth_mechanisms=PLAIN BOGUS"
timeout 10 "$SLUICE_BIN" -c "$CONF" >"$T_WORK/bad.out" 2>&1
rc=$?
t_eq "auth_mechanisms with an unknown name: sluice exits 1" "$rc" 1
t_match "... and says why" "$(cat "$T_WORK/bad.out")" "unknown mechanism 'BOGUS'"
t_done

#!/usr/bin/env bash
# Brute force against sluice's auth endpoint, spoken directly the way many
# smtpd processes would (one connection each, AUTH ... service=smtp nologin
# lip= rip=): 1,000 wrong passwords for rip=A over 50 connections.
#  - the delay grows: sequential wrong attempts from one rip get slower;
#  - the 1,000 attempts from rip=A take far longer (>= 3x) than 1,000 wrong
#    attempts spread over 1,000 rips (failure delay only, no penalty);
#  - meanwhile rip=B authenticates correctly every time, at full speed: its
#    p50 stays far below A's (ratio), its p99 below 1 s;
#  - LMTP delivery (build/bench/lmtpblast against the same sluice, a few
#    seconds before and during the flood) keeps at least 30% of its rate.
# Only ratios and second-scale bounds: the machine is shared.
# The penalty settings are shrunk (auth_failure_delay = 100ms,
# auth_penalty_max = 1s) so that the test stays well under 90 s.
# Skips (77) while sluice's auth endpoint is not in the tree yet.
# AUTH_BACKEND=dovecot runs the auth side against Dovecot (harness
# development only: Dovecot's penalty is fixed at 2 s x 2^n up to 15 s, so
# set BF_ATTEMPTS lower; LMTP still goes to sluice).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_auth.sh"
t_init
BLAST=${LMTPBLAST:-$(dirname "$SLUICE_BIN")/bench/lmtpblast}
t_need "$BLAST"
if [ "$AUTH_BACKEND" = sluice ] && ! auth_have_sluice; then
    t_skip "sluice's auth endpoint is not in the tree or the binary yet (lib_auth.sh auth_have_sluice)"
fi
ATTEMPTS=${BF_ATTEMPTS:-1000}
CONNS=50

for i in 0 1 2 3 4; do
    auth_user "$(printf 'user%04d@example.test' "$i")" '{PLAIN}right-pw'
done
if [ "$AUTH_BACKEND" = sluice ]; then
    auth_start bf sluice auth_failure_delay=100ms auth_penalty_max=1s cores=2
    LMTP_PORT=$AUTH_LMTP_PORT
else
    auth_start bf dovecot "auth_failure_delay=1 secs"
    LMTP_PORT=$(free_port)
    USERDB=$AUTH_DB sluice_conf "$T_WORK/sluice.conf" "userdb_connect=$AUTH_DB"
    sluice_start "$T_WORK/sluice.conf"
fi
TARGET=$AUTH_INET

# lmtp_rate SECONDS OUT: lmtpblast msg/s against sluice for SECONDS
lmtp_blast() {
    timeout -k 5 $(($1 + 30)) "$BLAST" --target "127.0.0.1:$LMTP_PORT" --connections 4 \
        --duration "$1" --rcpts 1 --size 2048 --users 5 --user-pattern 'user%04d@example.test' \
        --json >"$2" 2>"$2.err"
}
lmtp_rate() {
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%.1f" % (r["messages"] / r["elapsed_s"]))' "$1"
}

lmtp_blast 3 "$T_WORK/lmtp-before.json"
t_eq "lmtpblast before the flood (exit)" "$?" 0
BEFORE=$(lmtp_rate "$T_WORK/lmtp-before.json")
t_log "LMTP before the flood: $BEFORE msg/s"

PY=$T_WORK/bf.py
cat >"$PY" <<'PY'
import statistics, sys, threading, time
from authproto import AuthConn
from itest import CHECK

target, attempts, conns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
A, B = "192.0.2.1", "192.0.2.2"

def med(v):
    return statistics.median(v) if v else float("nan")

def p99(v):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * 0.99))] if v else float("nan")

# 1. the growing delay: 8 sequential wrong attempts from one rip
c = AuthConn(target)
c.handshake()
seq = []
for i in range(8):
    t0 = time.monotonic()
    verb = c.plain("user0001@example.test", "wrong-%d" % i, rip="192.0.2.9")[0]
    seq.append(time.monotonic() - t0)
    CHECK.eq(f"sequential wrong attempt {i + 1}: FAIL", verb, "FAIL")
c.close()
print("delays of 8 sequential wrong attempts from one rip (s):", " ".join("%.2f" % x for x in seq))
CHECK.true("the delay grows: the last attempt takes >= 2x the first",
           seq[-1] >= 2 * seq[0], "%.3f s then %.3f s" % (seq[0], seq[-1]), ">= 2x")

# a flood: `attempts` wrong passwords over `conns` connections; rip_of(i) per attempt
def flood(rip_of, out):
    lock = threading.Lock()
    todo = list(range(attempts))
    lat, verbs = [], {}
    def worker():
        c = AuthConn(target, timeout=60)
        c.handshake()
        while True:
            with lock:
                if not todo:
                    break
                i = todo.pop()
            t0 = time.monotonic()
            verb = c.plain("user%04d@example.test" % (i % 5), "wrong-%d" % i, rip=rip_of(i))[0]
            with lock:
                lat.append(time.monotonic() - t0)
                verbs[verb] = verbs.get(verb, 0) + 1
            if verb is None:   # dropped: reconnect
                c.close()
                c = AuthConn(target, timeout=60)
                c.handshake()
        c.close()
    t0 = time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.update(took=time.monotonic() - t0, lat=lat, verbs=verbs)

# 2. the same number of wrong attempts, one rip each: failure delay only
base = {}
flood(lambda i: "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255), base)
print("%d wrong attempts from %d rips: %.1f s, %s" % (attempts, attempts, base["took"], base["verbs"]))
CHECK.eq("distinct rips: every attempt answered FAIL", base["verbs"], {"FAIL": attempts})

# 3. B alone: right password, sequential
def run_b(stop, lat, verbs):
    c = AuthConn(target)
    c.handshake()
    n = 0
    while not stop.is_set():
        t0 = time.monotonic()
        verb = c.plain("user%04d@example.test" % (n % 5), "right-pw", rip=B)[0]
        lat.append(time.monotonic() - t0)
        verbs[verb] = verbs.get(verb, 0) + 1
        n += 1
        time.sleep(0.01)
    c.close()

stop = threading.Event()
b0_lat, b0_verbs = [], {}
tb = threading.Thread(target=run_b, args=(stop, b0_lat, b0_verbs))
tb.start()
time.sleep(2)
stop.set()
tb.join()
print("rip B alone: %d auths, p50 %.1f ms, p99 %.1f ms" % (len(b0_lat), med(b0_lat) * 1e3, p99(b0_lat) * 1e3))

# 4. the flood from A with B authenticating meanwhile; the shell runs LMTP now
open(sys.argv[4], "w").write("flood\n")
stop = threading.Event()
b_lat, b_verbs = [], {}
tb = threading.Thread(target=run_b, args=(stop, b_lat, b_verbs))
tb.start()
fl = {}
flood(lambda i: A, fl)
stop.set()
tb.join()
print("%d wrong attempts from rip A over %d connections: %.1f s (%.1fx the distinct-rip run), %s"
      % (attempts, conns, fl["took"], fl["took"] / base["took"], fl["verbs"]))
print("rip A latency: p50 %.2f s, p99 %.2f s" % (med(fl["lat"]), p99(fl["lat"])))
print("rip B during the flood: %d auths, p50 %.1f ms, p99 %.1f ms"
      % (len(b_lat), med(b_lat) * 1e3, p99(b_lat) * 1e3))
CHECK.eq("rip A: every attempt answered FAIL (none dropped)", fl["verbs"], {"FAIL": attempts})
CHECK.true("rip A: the flood takes >= 3x as long as the same attempts from distinct rips",
           fl["took"] >= 3 * base["took"], "%.1f s vs %.1f s" % (fl["took"], base["took"]), ">= 3x")
CHECK.eq("rip B: every auth during the flood OK", b_verbs, {"OK": len(b_lat)})
CHECK.true("rip B: authenticated during the flood (>= 20 times)", len(b_lat) >= 20, len(b_lat), ">= 20")
CHECK.true("rip B: p50 latency below 1/10 of rip A's", med(b_lat) * 10 < med(fl["lat"]),
           "B %.1f ms, A %.1f ms" % (med(b_lat) * 1e3, med(fl["lat"]) * 1e3), "B < A / 10")
CHECK.true("rip B: p99 latency below 1 s during the flood", p99(b_lat) < 1.0,
           "%.3f s" % p99(b_lat), "< 1 s")
CHECK.done()
PY

MARK=$T_WORK/flood-started
T_PY_TIMEOUT=85
t_py "brute force" "$PY" "$TARGET" "$ATTEMPTS" "$CONNS" "$MARK" &
PYPID=$!
wait_file "$MARK" 60 || t_fail "the flood started within 60 s (LMTP 'during' would not be during it)" "not started" "started"
sleep 1
lmtp_blast 3 "$T_WORK/lmtp-during.json"
t_eq "lmtpblast during the flood (exit)" "$?" 0
DURING=$(lmtp_rate "$T_WORK/lmtp-during.json")
wait "$PYPID"
PYRC=$?
# t_py ran in a background subshell, so its ok/FAIL counts stay there: its
# exit status carries the result
t_eq "brute-force checks (python, output above)" "$PYRC" 0
t_log "LMTP during the flood: $DURING msg/s (before: $BEFORE)"
t_eq "LMTP keeps >= 30% of its rate during the flood" \
    "$(python3 -c 'import sys; print("yes" if float(sys.argv[1]) >= 0.3 * float(sys.argv[2]) else "no: %s vs %s msg/s" % (sys.argv[1], sys.argv[2]))' "$DURING" "$BEFORE")" yes
auth_stop bf

# A client retrying one stale password is not guessing: as in Dovecot, a
# failure that repeats one of the rip's last 10 user+password attempts does
# not raise its penalty level; a new password does. Read from the debug log
# of a second endpoint, which names the level of every held AUTH.
if [ "$AUTH_BACKEND" = sluice ]; then
    auth_start rep sluice auth_failure_delay=100ms auth_penalty_max=1s log_level=debug
    REP=$T_WORK/repeat.py
    cat >"$REP" <<'PY'
import sys
from authproto import AuthConn
from itest import CHECK
c = AuthConn(sys.argv[1])
c.handshake()
for pw in ["stale-pw", "stale-pw", "stale-pw", "stale-pw", "new-guess", "stale-pw", "x"]:
    CHECK.eq("wrong password %s: FAIL" % pw, c.plain("user0002@example.test", pw, rip="198.51.100.77")[0], "FAIL")
c.close()
CHECK.done()
PY
    t_py "repeated password" "$REP" "$AUTH_INET"
    LEVELS=$(grep -o 'rip 198.51.100.77 penalised: held [0-9]* ms (level [0-9]*)' \
        "${AUTH_DIRS[rep]}/log" | sed 's/.*level \([0-9]*\))/\1/' | tr '\n' ' ')
    t_eq "penalty levels of the held attempts (stale x3, then a new guess, stale again)" \
        "$LEVELS" "1 1 1 1 2 2 "
    auth_stop rep
fi
t_done

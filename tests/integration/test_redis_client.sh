#!/usr/bin/env bash
# The Redis userdb cache against a real redis-server on loopback:
# - redis_client_driver runs auth/userdb_redis.c on a real sl_ring the way a
#   delivery core does: store/lookup round trips, MISS, 1000 pipelined lookups
#   in few sends and in order, the bounded queue, a UNIX socket, garbage values
#   (ERROR, logged once per key), redis killed (ERROR at once) and restarted
#   (reconnect), redis SIGSTOPped (ERROR at the timeout, then recovery after
#   SIGCONT), and the generation callback after `sluice-cache flush --all`;
# - sluice-cache flush --user/--domain/--all remove exactly the right keys
#   (glob metacharacters in the argument are literal) and bump the generation;
#   sluice-cache get prints the decoded entries.
source "$(dirname "$0")/lib.sh"
t_init
REDIS_DRIVER=${REDIS_DRIVER:-$SLUICE_SRC/build/tests/integration/redis_client_driver}
SLUICE_CACHE=${SLUICE_CACHE:-$SLUICE_SRC/build/tools/sluice-cache}
t_need redis-server redis-cli "$REDIS_DRIVER" "$SLUICE_CACHE"

REDIS_PORT=$(free_port)
RDIR=$T_WORK/redis
CTL=$T_WORK/ctl
mkdir -p "$RDIR" "$CTL"
cat >"$RDIR/redis.conf" <<C
bind 127.0.0.1
port $REDIS_PORT
unixsocket $RDIR/redis.sock
unixsocketperm 700
save ""
appendonly no
dir $RDIR
logfile $RDIR/redis.log
daemonize no
C
t_logfile "$RDIR/redis.log"

rcli() { timeout 10 redis-cli -p "$REDIS_PORT" "$@"; }

# redis_start: starts redis-server in the background (REDIS_PID) and waits for PONG
redis_start() {
    redis-server "$RDIR/redis.conf" >>"$RDIR/redis.out" 2>&1 &
    REDIS_PID=$!
    t_bg_add "$REDIS_PID"
    local end=$((SECONDS + 20))
    until [ "$(rcli ping 2>/dev/null)" = PONG ]; do
        if [ $SECONDS -ge $end ] || pid_exited "$REDIS_PID"; then
            t_fail "redis-server starts on 127.0.0.1:$REDIS_PORT" "$(tail -n 5 "$RDIR/redis.out")" "PONG"
            t_done
        fi
        sleep 0.05
    done
}

# wait_step NAME: waits until the driver prints "wait NAME"
wait_step() {
    local end=$((SECONDS + 60))
    until grep -qx "wait $1" "$DRV_OUT" 2>/dev/null; do
        if pid_exited "$DRV_PID" || [ $SECONDS -ge $end ]; then
            t_fail "driver reaches step $1" "$(tail -n 3 "$DRV_OUT" | tr '\n' '|')" "wait $1"
            return 1
        fi
        sleep 0.05
    done
}

# ---------------------------------------------------------------- the ring client

redis_start
DRV_OUT=$T_WORK/driver.out
DRV_LOG=$T_WORK/driver.log
t_logfile "$DRV_LOG"
"$REDIS_DRIVER" "$REDIS_PORT" "$RDIR/redis.sock" "$CTL" "$REDIS_PID" >"$DRV_OUT" 2>"$DRV_LOG" &
DRV_PID=$!
t_bg_add "$DRV_PID"

# The driver kills redis itself (SIGKILL, to fail requests on the wire), then asks for a restart.
if wait_step restart; then
    { wait "$REDIS_PID"; } 2>/dev/null # reap the SIGKILLed redis without bash's job notice
    pid_stop "$REDIS_PID" 5
    redis_start
    echo "$REDIS_PID" >"$CTL/go-restart.tmp" && mv "$CTL/go-restart.tmp" "$CTL/go-restart"
fi
if wait_step flush-all; then
    "$SLUICE_CACHE" -s "127.0.0.1:$REDIS_PORT" flush --all >"$T_WORK/flush-all.out" 2>&1
    touch "$CTL/go-flush-all"
fi
pid_wait "$DRV_PID" 120 || { kill -KILL "$DRV_PID"; pid_wait "$DRV_PID" 5; PID_RC=timeout; }
t_bg_forget "$DRV_PID"
# The driver continues redis when it exits; a crashed driver may not have.
kill -CONT "$REDIS_PID" 2>/dev/null

cat "$DRV_OUT"
n_ok=$(grep -c '^ok   - ' "$DRV_OUT")
n_fail=$(grep -c '^FAIL - ' "$DRV_OUT")
T_CHECKS=$((T_CHECKS + n_ok + n_fail))
T_FAILS=$((T_FAILS + n_fail))
t_eq "driver exits 0" "$PID_RC" 0
t_match "driver ran its checks" "$n_ok" '^[1-9][0-9]+$'

for g in g1 g2 g3 g4; do
    t_eq "garbage for $g@example.test logged once (two lookups)" \
        "$(grep -c "user:$g@example.test" "$DRV_LOG")" 1
done
t_match "flush --all during the driver run" "$(cat "$T_WORK/flush-all.out")" '^removed [0-9]+ keys; generation 1$'

# ---------------------------------------------------------------- sluice-cache

cache() { timeout 30 "$SLUICE_CACHE" -s "127.0.0.1:$REDIS_PORT" "$@"; }
keys() { rcli --scan | sort | tr '\n' ' '; }
sorted() { printf '%s\n' "$@" | sort | tr '\n' ' '; }

seed() {
    rcli flushall >/dev/null
    local k
    for k in user:a@x.test pass:a@x.test user:b@x.test user:c@xx.test user:d@sub.x.test \
        user:e@y.test pass:e@y.test 'user:st*r@y.test' user:star@y.test \
        'user:u@w?.test' user:u@wx.test user:x.test; do
        rcli set "sluice:v1:$k" "1|N" >/dev/null
    done
    rcli set other:key v >/dev/null
    rcli set sluice:v1:gen 41 >/dev/null
}

seed
out=$(cache flush --domain X.Test)
t_eq "flush --domain x.test: count" "$out" "removed 3 keys; generation 42"
t_eq "flush --domain x.test: exactly its users' keys" "$(keys)" "$(sorted other:key sluice:v1:gen \
    sluice:v1:user:c@xx.test sluice:v1:user:d@sub.x.test sluice:v1:user:e@y.test \
    sluice:v1:pass:e@y.test 'sluice:v1:user:st*r@y.test' sluice:v1:user:star@y.test \
    'sluice:v1:user:u@w?.test' sluice:v1:user:u@wx.test sluice:v1:user:x.test)"
out=$(cache flush --user 'ST*R@y.test')
t_eq "flush --user st*r@y.test: count" "$out" "removed 1 keys; generation 43"
t_eq "flush --user st*r@y.test: star@y.test stays" "$(rcli exists sluice:v1:user:star@y.test)" 1
out=$(cache flush --user E@y.test)
t_eq "flush --user e@y.test: user and pass keys" "$out" "removed 2 keys; generation 44"
out=$(cache flush --domain 'w?.test')
t_eq "flush --domain w?.test: the ? is literal" "$out" "removed 1 keys; generation 45"
t_eq "flush --domain w?.test: u@wx.test stays" "$(rcli exists sluice:v1:user:u@wx.test)" 1
out=$(cache flush --user nobody@nowhere.test)
t_eq "flush of nothing still bumps the generation" "$out" "removed 0 keys; generation 46"

seed
out=$(timeout 30 "$SLUICE_CACHE" -S "$RDIR/redis.sock" flush --all)
t_eq "flush --all over the UNIX socket: count" "$out" "removed 12 keys; generation 42"
t_eq "flush --all keeps the generation and foreign keys" "$(keys)" "$(sorted other:key sluice:v1:gen)"

rcli set sluice:v1:user:alice@example.test '1|F|100|example.test/alice/' EX 60 >/dev/null
rcli set sluice:v1:pass:alice@example.test '1|P|{PLAIN}secret' >/dev/null
rcli set sluice:v1:user:junk@example.test '9|F|1|m' >/dev/null
out=$(cache get Alice@Example.test)
t_match "get: the decoded user entry" "$out" \
    '^user alice@example.test: FOUND quota_bytes=100 maildir=example.test/alice/ ttl=(60|59)s'
t_match "get: the pass entry, password hidden" "$out" \
    $'\npass alice@example.test: FOUND \\(password hidden\\)$'
t_eq "get: never prints the password" "$(printf '%s' "$out" | grep -c secret)" 0
t_match "get: garbage is named" "$(cache get junk@example.test)" \
    '^user junk@example.test: garbage \(unknown version, 7 bytes\)'
t_match "get: not cached" "$(cache get none@example.test)" '^user none@example.test: not cached'

cache flush --sideways >/dev/null 2>&1
t_eq "usage error: exit 2" "$?" 2
timeout 30 "$SLUICE_CACHE" -s "127.0.0.1:1" -t 500 flush --all >/dev/null 2>&1
t_eq "no redis: exit 1" "$?" 1

t_done

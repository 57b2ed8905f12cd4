#!/usr/bin/env bash
# The recipient lookup tiers against real servers: sluice with a PostgreSQL
# userdb (postfixadmin schema) and Redis, all started from temp dirs.
#   - cold lookups go to SQL and are stored in Redis (keys and TTLs checked);
#     after a restart (empty core caches) the same users come from Redis;
#   - concurrent lookups of one uncached user on every core make one query
#     (single flight);
#   - a changed row is seen after `sluice-cache flush --user`, and the cores
#     drop their in-process caches when the generation moves;
#   - a value of the wrong shape in Redis is a miss (logged once), and SQL
#     answers;
#   - Redis stopped and restarted in the middle of a load: every RCPT 250,
#     every acknowledged message on disk, the errors counted, reconnected;
#   - PostgreSQL stopped in the middle of a load: cached users still 250,
#     others 451 4.3.0 (never 5xx), nothing acknowledged lost; back without a
#     restart; with userdb_cache_serve_stale an expired entry answers;
#   - SMTP AUTH passwords come from Redis before SQL, a changed password is
#     checked against SQL at once, and Redis answers while SQL is down.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_sql.sh"
t_init

SLUICE_CACHE=${SLUICE_CACHE:-$(dirname "$SLUICE_BIN")/tools/sluice-cache}
t_need "$SLUICE_CACHE" redis-cli
{ read -r LMTP_PORT; read -r STATS_PORT; } < <(free_ports 2)
export LMTP_PORT STATS_PORT MAIL_ROOT
CONF=$T_WORK/sluice.conf
TIERS="$LIB_DIR/userdb_tiers.py"

pg_start
redis_start
sql_add_users 400
# Lookups of "flight*" users take a second: long enough for every core to
# ask for the same user while the first query runs.
pg_sql "CREATE FUNCTION sluice_test_delay(who text) RETURNS boolean LANGUAGE plpgsql AS \$\$
  BEGIN
    IF who LIKE 'flight%' THEN PERFORM pg_sleep(1); END IF;
    RETURN true;
  END \$\$;
  INSERT INTO mailbox (username, password, maildir, quota, local_part, domain) VALUES
    ('flight@example.test', '{PLAIN}x', 'example.test/flight/', 0, 'flight', 'example.test');
  GRANT EXECUTE ON FUNCTION sluice_test_delay(text) TO sluice" >/dev/null ||
    t_fail "postgres: delay function" "error" "ok"

rc() { redis-cli -p "$REDIS_PORT" "$@"; }
conf() {
    sluice_conf "$CONF" userdb_driver=pgsql "userdb_connect=$PG_CONNECT" \
        "user_query=SELECT maildir, quota, active FROM mailbox WHERE username = '%u' AND sluice_test_delay(local_part)" \
        "redis=127.0.0.1:$REDIS_PORT" redis_ttl=1h redis_negative_ttl=5m \
        "stats_listen=127.0.0.1:$STATS_PORT" userdb_query_timeout_ms=3000 cores=2 "$@"
}
start() { sluice_start "$CONF"; wait_tcp 127.0.0.1 "$STATS_PORT" 10 "$SLUICE_PID"; }
py() { t_py "$1" "$TIERS" "${@:2}"; }

# ---------------------------------------------------------------- cold, then warm
conf
start
py "cold" deliver 0 40
py "cold unknown" rcpt nobody@example.test '550 5\.1\.1 .*'
py "cold" expect 'sluice_userdb_lookups_total{tier="sql",result="found"}' == 40
py "cold" expect 'sluice_userdb_lookups_total{tier="sql",result="notfound"}' == 1
py "cold" expect 'sluice_redis_lookups_total{result="miss"}' == 41
t_eq "Redis holds what SQL answered" "$(rc GET sluice:v1:user:user0007@example.test)" \
    "1|F|0|example.test/user0007/"
t_eq "an unknown user is cached negatively" "$(rc GET sluice:v1:user:nobody@example.test)" "1|N"
ttl=$(rc TTL sluice:v1:user:user0007@example.test)
t_eq "positive TTL is redis_ttl" "$([ "$ttl" -gt 3500 ] && [ "$ttl" -le 3600 ] && echo in-range)" in-range
ttl=$(rc TTL sluice:v1:user:nobody@example.test)
t_eq "negative TTL is redis_negative_ttl" "$([ "$ttl" -gt 200 ] && [ "$ttl" -le 300 ] && echo in-range)" in-range
sluice_stop
t_eq "sluice exits 0" "$SLUICE_RC" 0

start
py "warm" deliver 0 40
py "warm unknown" rcpt nobody@example.test '550 5\.1\.1 .*'
py "warm" expect 'sluice_userdb_lookups_total{tier="redis",result="found"}' == 40
py "warm" expect 'sluice_userdb_lookups_total{tier="redis",result="notfound"}' == 1
py "warm" expect 'sluice_userdb_lookups_total{tier="sql",result="found"}' == 0
py "warm" expect 'sluice_redis_lookup_seconds_count' == 41

# ---------------------------------------------------------------- single flight
# Twenty sessions ask for the uncached, slow user at once.
flights=()
for i in $(seq 20); do
    python3 "$TIERS" rcpt flight@example.test '250 .*' >"$T_WORK/flight.$i" 2>&1 &
    flights+=($!)
done
wait "${flights[@]}"
t_eq "twenty concurrent RCPTs for one user all answered 250" \
    "$(cat "$T_WORK"/flight.* | grep -c '^ok   - ')" 20
py "single flight" expect 'sluice_userdb_sql_queries_total' == 1
py "single flight" expect 'sluice_userdb_sql_shared_total' == 19

# ---------------------------------------------------------------- flush
pg_sql "UPDATE mailbox SET maildir = 'example.test/moved0003/' WHERE username = 'user0003@example.test'" >/dev/null
py "before the flush: cached" deliver 3 1
out=$("$SLUICE_CACHE" -s "127.0.0.1:$REDIS_PORT" flush --user user0003@example.test 2>&1)
t_match "sluice-cache flush --user" "$out" 'removed 1 keys; generation [0-9]+'
t_eq "the key is gone" "$(rc EXISTS sluice:v1:user:user0003@example.test)" 0
# The cores see the new generation on their next tick (1 s) and drop their caches.
sleep 2.5
py "after the flush: SQL's new answer" deliver 3 1 example.test/moved%04d
grep -c 'userdb cache flushed' "$SLUICE_LOG" >"$T_WORK/flushes"
t_eq "both cores dropped their in-process caches" "$(cat "$T_WORK/flushes")" 2
# Back where the load below expects it.
pg_sql "UPDATE mailbox SET maildir = 'example.test/user0003/' WHERE username = 'user0003@example.test'" >/dev/null
"$SLUICE_CACHE" -s "127.0.0.1:$REDIS_PORT" flush --user user0003@example.test >/dev/null

# ---------------------------------------------------------------- garbage
rc SET sluice:v1:user:user0100@example.test "not|a|sluice|entry" >/dev/null
rc SET sluice:v1:user:user0101@example.test "1|F|notanumber|x/" >/dev/null
py "garbage is a miss" deliver 100 2
py "garbage again" deliver 100 2
t_eq "a garbage value is logged once per key" \
    "$(grep -c 'garbage value for sluice:v1:user:user0100@example.test' "$SLUICE_LOG")" 1
t_eq "SQL's answer replaced the garbage" "$(rc GET sluice:v1:user:user0100@example.test)" \
    "1|F|0|example.test/user0100/"
sluice_stop

# ---------------------------------------------------------------- Redis outage under load
conf userdb_cache_ttl=1s
start
python3 "$TIERS" load 8 4 400 "$T_WORK/load-redis.json" >"$T_WORK/load-redis.out" 2>&1 &
load=$!
sleep 2
redis_stop
t_log "redis stopped"
sleep 3
redis_restart
t_log "redis restarted"
wait $load
cat "$T_WORK/load-redis.out"
py "Redis outage" verify "$T_WORK/load-redis.json"
py "Redis outage" expect 'sluice_redis_lookups_total{result="error"}' '>' 0
hits=$(python3 "$TIERS" metric 'sluice_redis_lookups_total{result="hit"}')
sleep 2
py "after the restart" deliver 200 20
py "Redis answers again after the restart" expect 'sluice_redis_lookups_total{result="hit"}' '>' "${hits%.*}"

# ---------------------------------------------------------------- SQL outage under load
# Users 0..199 are in Redis now; 300..399 never were looked up.
rc DEL $(for n in $(seq 300 399); do printf 'sluice:v1:user:user%04d@example.test ' "$n"; done) >/dev/null
python3 "$TIERS" load 8 4 400 "$T_WORK/load-sql.json" >"$T_WORK/load-sql.out" 2>&1 &
load=$!
sleep 2
pg_stop
t_log "postgres stopped"
sleep 3
pg_restart
t_log "postgres restarted"
wait $load
cat "$T_WORK/load-sql.out"
py "SQL outage" verify "$T_WORK/load-sql.json" allow451
py "SQL outage: cached users still delivered" expect 'sluice_userdb_lookups_total{tier="redis",result="found"}' '>' 0
rc DEL sluice:v1:user:user0399@example.test >/dev/null
py "SQL back, no restart" until user0399@example.test '250 .*' 15
sluice_stop
t_eq "sluice exits 0" "$SLUICE_RC" 0

# ---------------------------------------------------------------- passwords from Redis
# The auth endpoint asks Redis for the pass entries the resolver stores
# before it asks SQL (no in-process auth cache here, so every AUTH looks up).
# A password that does not match what Redis holds is checked against SQL
# once more (it may have changed), and SQL's answer replaces Redis's.
read -r AUTH_PORT < <(free_port)
conf "auth_listen=127.0.0.1:$AUTH_PORT" auth_cache_size=0 auth_failure_delay=0 \
    "password_query=SELECT password FROM mailbox WHERE username = '%u'" default_pass_scheme=PLAIN
start
wait_tcp 127.0.0.1 "$AUTH_PORT" 10 "$SLUICE_PID" || t_fail "auth port listens" "closed" "open"
AUTH_PY=$T_WORK/auth_redis.py
cat >"$AUTH_PY" <<'PY'
import sys
from authproto import AuthConn
from itest import CHECK
for step in sys.argv[2:]:
    user, password, want = step.split(":")
    c = AuthConn(sys.argv[1])
    c.handshake()
    c.auth("PLAIN", b"\0" + user.encode() + b"\0" + password.encode())
    verb = c.reply()[0]
    CHECK.eq(f"AUTH PLAIN {user} {password}", verb if verb is not None else "closed", want)
    c.close()
CHECK.done()
PY
auth_py() { t_py "$1" "$AUTH_PY" "127.0.0.1:$AUTH_PORT" "${@:2}"; }
auth_py "passdb: first from SQL" user0010@example.test:secret:OK
t_eq "passdb: SQL's answer is stored in Redis" \
    "$(rc GET sluice:v1:pass:user0010@example.test)" "1|P|{PLAIN}secret"
auth_py "passdb: then from Redis" user0010@example.test:secret:OK user0010@example.test:wrong:FAIL
py "passdb: Redis answered" expect 'sluice_auth_redis_hits_total' == 2
pg_sql "UPDATE mailbox SET password = '{PLAIN}changed' WHERE username = 'user0010@example.test'" \
    >/dev/null || t_fail "postgres: password change" "error" "ok"
auth_py "passdb: a changed password works at once" user0010@example.test:changed:OK \
    user0010@example.test:secret:FAIL
t_eq "passdb: Redis holds the new password" \
    "$(rc GET sluice:v1:pass:user0010@example.test)" "1|P|{PLAIN}changed"
pg_stop
t_log "postgres stopped"
auth_py "passdb: SQL down, Redis answers" user0010@example.test:changed:OK \
    user0011@example.test:secret:closed
pg_restart
sluice_stop
t_eq "sluice exits 0" "$SLUICE_RC" 0

# ---------------------------------------------------------------- stale entries
# One core: the entry must be in the cache of the core that answers.
conf userdb_cache_ttl=1s userdb_cache_serve_stale=yes redis= cores=1
start
py "stale: cache user0005" deliver 5 1
pg_stop
sleep 1.5
py "stale: SQL down, expired entry served" deliver 5 1
py "stale: uncached user" rcpt user0006@example.test '451 4\.3\.0 .*'
py "stale" expect 'sluice_userdb_stale_served_total' == 1
pg_restart
sluice_stop
t_eq "sluice exits 0" "$SLUICE_RC" 0
t_eq "no tmp/ leftovers" "$(leftover_tmp "$MAIL_ROOT")" ""
t_done

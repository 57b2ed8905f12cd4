#!/usr/bin/env bash
# The SQL userdb drivers against real servers: PostgreSQL and MariaDB started
# from temp dirs with the postfixadmin schema (lib_sql.sh), and a SQLite file
# for comparison; each backend also with the Redis tier in front. For each backend a real sluice is checked over LMTP: known
# user 250 with the file in the maildir the row names, unknown 550 5.1.1,
# inactive 550 5.2.1, an address that needs SQL quoting (o'brien, and one that
# would inject if spliced), Dovecot's %n/%d and %{...} forms. For the two
# servers also: a query past userdb_query_timeout_ms answers 451 4.3.0 in
# time, an outage (database stopped: uncached user 451 4.3.0, cached user
# still 250; database back: the same user 250 without restarting sluice), a
# database unreachable at start (sluice starts, answers 451), and a query the
# server rejects (sluice refuses to start).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_sql.sh"
t_init

read -r LMTP_PORT < <(free_port)
export LMTP_PORT MAIL_ROOT
CONF=$T_WORK/sluice.conf
CHECK=$T_WORK/check.py

# ---------------------------------------------------------------- databases
pg_start
mariadb_start
sql_add_users 1000
# Rows each test below names; maildirs carry the backend's name so a file
# proves which database answered.
pg_sql "INSERT INTO mailbox (username, password, maildir, quota, local_part, domain, active) VALUES
    ('off@example.test', '{PLAIN}x', 'example.test/off/', 0, 'off', 'example.test', false),
    ('o''brien@example.test', '{PLAIN}x', 'pgsql/obrien/', 0, 'o''brien', 'example.test', true),
    ('routed@example.test', '{PLAIN}x', 'pgsql/routed/', 1048576, 'routed', 'example.test', true),
    ('slow@example.test', '{PLAIN}x', 'pgsql/slow/', 0, 'slow', 'example.test', true),
    ('nap1@example.test', '{PLAIN}x', 'pgsql/nap1/', 0, 'nap1', 'example.test', true),
    ('nap2@example.test', '{PLAIN}x', 'pgsql/nap2/', 0, 'nap2', 'example.test', true),
    ('nap3@example.test', '{PLAIN}x', 'pgsql/nap3/', 0, 'nap3', 'example.test', true),
    ('nap4@example.test', '{PLAIN}x', 'pgsql/nap4/', 0, 'nap4', 'example.test', true);
  CREATE FUNCTION sluice_test_delay(who text) RETURNS boolean LANGUAGE plpgsql AS \$\$
  BEGIN
    IF who = 'slow' THEN PERFORM pg_sleep(3); END IF;
    IF who LIKE 'nap%' THEN PERFORM pg_sleep(0.6); END IF;
    RETURN true;
  END \$\$;" >/dev/null || t_fail "postgres: extra rows" "error" "ok"
mariadb_sql "INSERT INTO mailbox (username, password, maildir, quota, local_part, domain, active) VALUES
    ('off@example.test', '{PLAIN}x', 'example.test/off/', 0, 'off', 'example.test', 0),
    ('o''brien@example.test', '{PLAIN}x', 'mysql/obrien/', 0, 'o''brien', 'example.test', 1),
    ('routed@example.test', '{PLAIN}x', 'mysql/routed/', 1048576, 'routed', 'example.test', 1),
    ('slow@example.test', '{PLAIN}x', 'mysql/slow/', 0, 'slow', 'example.test', 1)" ||
    t_fail "mariadb: extra rows" "error" "ok"
userdb_demo 1000
userdb_add off@example.test --inactive
userdb_add "o'brien@example.test" --maildir sqlite/obrien/
userdb_add routed@example.test --maildir sqlite/routed/ --quota 1048576

# ---------------------------------------------------------------- LMTP checks
cat >"$CHECK" <<'PY'
"""usage: check.py STEP...  where a STEP is one of
  deliver ADDR MAILDIR      RCPT and DATA answer 250; the message lands in MAIL_ROOT/MAILDIR/new
  refuse ADDR REGEX         RCPT answers a reply matching REGEX
  tempfail_within ADDR MS   RCPT answers 451 4.3.0 within MS milliseconds
  until ADDR SECONDS        repeats RCPT until it answers 250 (at most SECONDS)
  pipelined ADDRS SECONDS   MAIL, the RCPTs of ADDRS (comma-separated, "!" before an
                            unknown one) and DATA in one write, as Postfix sends them:
                            every RCPT reply in order, all within SECONDS; then the
                            message goes to the known ones
Environment: LMTP_PORT, MAIL_ROOT, WHAT (names the checks)."""
import os
import sys
import time

from itest import CHECK, Lmtp, dot_stuff, env, make_msg, wait_for

T = ("127.0.0.1", int(env("LMTP_PORT")))
ROOT = env("MAIL_ROOT")
WHAT = env("WHAT")
n_msg = [0]


def rcpt(addr, keep=False):
    c = Lmtp(T, timeout=20)
    c.r()
    c.cmd("LHLO client.test")
    c.cmd("MAIL FROM:<sender@example.org>")
    t0 = time.monotonic()
    rep = c.cmd(f"RCPT TO:<{addr}>")
    took = time.monotonic() - t0
    if keep:
        return c, rep, took
    c.cmd("QUIT")
    c.close()
    return None, rep, took


def new_files(maildir):
    d = os.path.join(ROOT, maildir, "new")
    return [os.path.join(d, f) for f in os.listdir(d)] if os.path.isdir(d) else []


def deliver(addr, maildir):
    n_msg[0] += 1
    marker = f"{WHAT.replace(' ', '-')}-{n_msg[0]}-{os.getpid()}"
    c, rep, _ = rcpt(addr, keep=True)
    if not rep.startswith("250"):
        c.close()
        return CHECK.fail(f"{WHAT}: RCPT {addr} accepted", rep, "250 ...")
    CHECK.ok(f"{WHAT}: RCPT {addr} accepted")
    CHECK.match(f"{WHAT}: DATA after RCPT {addr}", c.cmd("DATA"), r"354 .*")
    c.send(dot_stuff(make_msg(marker, to=addr)))
    final = c.r()
    c.cmd("QUIT")
    c.close()
    CHECK.match(f"{WHAT}: {addr} delivered", final, r"250 2\.0\.0 .*")

    def landed():
        for p in new_files(maildir):
            with open(p, "rb") as f:
                if f"END {marker}".encode() in f.read():
                    return p
        return None

    path = wait_for(landed, timeout=10)
    CHECK.true(f"{WHAT}: {addr} lands in {maildir}new", path,
               f"files: {new_files(maildir)}", f"a file with END {marker}")


def refuse(addr, regex):
    _, rep, _ = rcpt(addr)
    CHECK.match(f"{WHAT}: RCPT {addr} refused", rep, regex)


def tempfail_within(addr, ms):
    _, rep, took = rcpt(addr)
    CHECK.match(f"{WHAT}: RCPT {addr} answers 451 4.3.0", rep, r"451 4\.3\.0 .*")
    CHECK.true(f"{WHAT}: RCPT {addr} answered within {ms} ms", took * 1000 <= int(ms),
               f"{took * 1000:.0f} ms", f"<= {ms} ms")


def until(addr, seconds):
    t0 = time.monotonic()
    tries = 0
    rep = ""
    while time.monotonic() - t0 < float(seconds):
        tries += 1
        _, rep, _ = rcpt(addr)
        if rep.startswith("250"):
            break
        time.sleep(0.2)
    took = time.monotonic() - t0
    CHECK.true(f"{WHAT}: RCPT {addr} answers 250 again ({tries} tries, {took:.1f} s)",
               rep.startswith("250"), rep, f"250 within {seconds} s")


def pipelined(addrs, seconds):
    addrs = addrs.split(",")
    c = Lmtp(T, timeout=20)
    c.r()
    c.cmd("LHLO client.test")
    t0 = time.monotonic()
    c.send("MAIL FROM:<sender@example.org>\r\n"
           + "".join(f"RCPT TO:<{a.lstrip('!')}>\r\n" for a in addrs) + "DATA\r\n")
    CHECK.match(f"{WHAT}: pipelined MAIL", c.r(), r"250 .*")
    for a in addrs:
        want = r"550 5\.1\.1 .*" if a.startswith("!") else r"250 2\.1\.5 .*"
        CHECK.match(f"{WHAT}: pipelined RCPT {a}: its reply, in order", c.r(), want)
    took = time.monotonic() - t0
    CHECK.match(f"{WHAT}: pipelined DATA", c.r(), r"354 .*")
    CHECK.true(f"{WHAT}: the {len(addrs)} RCPTs answered within {seconds} s", took <= float(seconds),
               f"{took:.2f} s", f"<= {seconds} s")
    c.send(dot_stuff(make_msg(f"{WHAT}-pipelined-{os.getpid()}", to=addrs[0])))
    for a in addrs:
        if not a.startswith("!"):
            CHECK.match(f"{WHAT}: pipelined: delivered to {a}", c.r(), r"250 2\.0\.0 .*")
    c.cmd("QUIT")
    c.close()


STEPS = {"deliver": (deliver, 2), "refuse": (refuse, 2),
         "tempfail_within": (tempfail_within, 2), "until": (until, 2),
         "pipelined": (pipelined, 2)}
args = sys.argv[1:]
while args:
    fn, n = STEPS[args[0]]
    fn(*args[1:1 + n])
    args = args[1 + n:]
CHECK.done()
PY

# check WHAT STEP...: runs the LMTP steps against the running sluice
check() {
    local what=$1
    shift
    WHAT=$what t_py "$what" "$CHECK" "$@"
}

# stop_sluice: SIGTERM the running sluice; it must exit 0
stop_sluice() {
    [ -n "${SLUICE_PID:-}" ] || return 0
    sluice_stop
    t_eq "$SLUICE_WHAT: sluice exits 0 on SIGTERM" "$SLUICE_RC" 0
}

# run_sluice NAME DRIVER CONNECT USER_QUERY: (re)starts sluice on one core (one
# cache, so "cached" is deterministic) with that userdb
run_sluice() {
    stop_sluice
    SLUICE_WHAT="$1 ($2)"
    sluice_conf "$CONF" "userdb_driver=$2" "userdb_connect=$3" "user_query=$4" \
        "password_query=SELECT password FROM mailbox WHERE username = '%u' AND active = '1'" \
        cores=1 resolver_threads=2 userdb_query_timeout_ms=1000 userdb_connect_timeout_ms=1000 \
        "${@:5}"
    t_log "$1: sluice with userdb_driver=$2 ${*:5}"
    sluice_start "$CONF"
}

REFUSE_UNKNOWN='550 5\.1\.1 .*'
REFUSE_INACTIVE='550 5\.2\.1 .*'
Q_USER="SELECT maildir, quota AS quota_bytes, active FROM mailbox WHERE username = '%u'"

# checks_u NAME: the checks every backend passes (sluice running with a %u query)
checks_u() {
    check "$1 %u" \
        deliver user0001@example.test example.test/user0001/ \
        deliver user0999+tag@example.test example.test/user0999/ \
        deliver routed@example.test "$1/routed/" \
        deliver "o'brien@example.test" "$1/obrien/" \
        refuse nobody@example.test "$REFUSE_UNKNOWN" \
        refuse "x'OR'1'='1@example.test" "$REFUSE_UNKNOWN" \
        refuse "user0001'--@example.test" "$REFUSE_UNKNOWN" \
        refuse off@example.test "$REFUSE_INACTIVE"
}

# checks_nd NAME: the same with %n/%d (and %{...}) queries
checks_nd() {
    check "$1 %n/%d" \
        deliver user0002@example.test example.test/user0002/ \
        deliver "o'brien@example.test" "$1/obrien/" \
        refuse nobody@example.test "$REFUSE_UNKNOWN" \
        refuse user0002@other.test "$REFUSE_UNKNOWN" \
        refuse off@example.test "$REFUSE_INACTIVE"
}

# outage NAME STOP START: the database goes away and comes back under sluice
outage() {
    local name=$1 stop=$2 start=$3
    check "$name before the outage" deliver user0010@example.test example.test/user0010/
    "$stop"
    t_log "$name stopped"
    check "$name down" \
        tempfail_within user0011@example.test 5000 \
        deliver user0010@example.test example.test/user0010/ \
        tempfail_within user0012@example.test 5000
    "$start"
    t_log "$name restarted"
    check "$name back" \
        until user0011@example.test 20 \
        deliver user0011@example.test example.test/user0011/ \
        deliver user0012@example.test example.test/user0012/
}

# ---------------------------------------------------------------- SQLite
run_sluice sqlite sqlite "$USERDB" "$Q_USER"
checks_u sqlite
run_sluice sqlite sqlite "$USERDB" \
    "SELECT maildir, quota, active FROM mailbox WHERE local_part = '%n' AND domain = '%d'"
checks_nd sqlite

# ---------------------------------------------------------------- PostgreSQL
run_sluice pgsql pgsql "$PG_CONNECT" "$Q_USER"
checks_u pgsql
outage pgsql pg_stop pg_run
t_match "pgsql: the outage is in the log" "$(cat "$SLUICE_LOG")" "userdb pgsql: .*(failed, reconnecting|TEMPFAIL until it is back)"
t_match "pgsql: the recovery is in the log" "$(cat "$SLUICE_LOG")" "userdb pgsql: connected again"
run_sluice pgsql pgsql "$PG_CONNECT" \
    "SELECT m.maildir, m.quota AS quota_bytes, m.active FROM mailbox m JOIN domain d ON d.domain = m.domain WHERE m.local_part = '%{username}' AND d.domain = '%d' AND d.active AND sluice_test_delay(m.local_part)"
checks_nd pgsql
check "pgsql query timeout" \
    tempfail_within slow@example.test 2500 \
    until user0003@example.test 10
# Pipelined RCPTs that miss the cache are looked up together: four users
# whose query sleeps 0.6 s each are answered in about one sleep with four
# resolver threads, not four in a row (2.4 s); replies stay in order.
run_sluice pgsql pgsql "$PG_CONNECT" \
    "SELECT m.maildir, m.quota AS quota_bytes, m.active FROM mailbox m JOIN domain d ON d.domain = m.domain WHERE m.local_part = '%{username}' AND d.domain = '%d' AND d.active AND sluice_test_delay(m.local_part)" \
    resolver_threads=4
check "pgsql read-ahead" pipelined 'nap1@example.test,!nobody1@example.test,nap2@example.test,nap3@example.test,!nobody2@example.test,nap4@example.test' 1.8

# ---------------------------------------------------------------- MariaDB
run_sluice mysql mysql "$MARIADB_CONNECT" "$Q_USER"
checks_u mysql
outage mysql mariadb_stop mariadb_run
t_match "mysql: the outage is in the log" "$(cat "$SLUICE_LOG")" "userdb mysql: .*(failed, reconnecting|TEMPFAIL until it is back)"
t_match "mysql: the recovery is in the log" "$(cat "$SLUICE_LOG")" "userdb mysql: connected again"
run_sluice mysql mariadb "$MARIADB_CONNECT" \
    "SELECT m.maildir, m.quota AS quota_bytes, m.active FROM mailbox m JOIN domain d ON d.domain = m.domain WHERE m.local_part = \"%n\" AND d.domain = '%{domain}' AND d.active = '1' AND (m.local_part <> 'slow' OR SLEEP(3) = 0)"
checks_nd mysql
check "mysql query timeout" \
    tempfail_within slow@example.test 2500 \
    until user0003@example.test 10

# ---------------------------------------------------------------- with Redis
# The same checks with the Redis tier: first SQL answers (and the answer is
# stored in Redis), then, after a restart with empty in-process caches, Redis.
redis_start
for b in sqlite:sqlite:"$USERDB" pgsql:pgsql:"$PG_CONNECT" mysql:mysql:"$MARIADB_CONNECT"; do
    name=${b%%:*}
    rest=${b#*:}
    driver=${rest%%:*}
    connect=${rest#*:}
    redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
    run_sluice "$name" "$driver" "$connect" "$Q_USER" "redis=127.0.0.1:$REDIS_PORT"
    checks_u "$name"
    t_eq "$name + Redis: SQL's answer is stored in Redis" \
        "$(redis-cli -p "$REDIS_PORT" GET sluice:v1:user:user0001@example.test)" \
        "1|F|0|example.test/user0001/"
    # Hit counts from here on are this backend's second sluice only.
    redis-cli -p "$REDIS_PORT" CONFIG RESETSTAT >/dev/null
    run_sluice "$name" "$driver" "$connect" "$Q_USER" "redis=127.0.0.1:$REDIS_PORT"
    checks_u "$name"
    t_match "$name + Redis: the second sluice's lookups were Redis hits" \
        "$(redis-cli -p "$REDIS_PORT" INFO stats | tr -d '\r' | grep '^keyspace_hits:')" \
        '^keyspace_hits:[1-9][0-9]*$'
done
redis_stop

# ---------------------------------------------------------------- down at start
# A database that cannot be reached does not stop sluice: 451 until it is up.
read -r DEAD_PORT < <(free_port)
run_sluice pgsql pgsql "host=127.0.0.1 port=$DEAD_PORT dbname=mail user=sluice password=x" "$Q_USER"
check "pgsql unreachable at start" tempfail_within user0020@example.test 3000
run_sluice mysql mysql "host=127.0.0.1 port=$DEAD_PORT dbname=mail user=sluice password=x" "$Q_USER"
check "mysql unreachable at start" tempfail_within user0020@example.test 3000

# ---------------------------------------------------------------- config errors
# A query the server rejects stops sluice at start (exit non-zero, the reason
# on stderr).
stop_sluice
sluice_conf "$CONF" userdb_driver=pgsql "userdb_connect=$PG_CONNECT" \
    "user_query=SELECT maildir FROM no_such_table WHERE username = '%u'"
out=$(timeout 20 "$SLUICE_BIN" -c "$CONF" 2>&1)
rc=$?
t_match "pgsql: a rejected user_query stops sluice at start" "exit $rc: $out" \
    "exit [1-9][0-9]*: .*user_query does not prepare.*no_such_table.*"
t_done

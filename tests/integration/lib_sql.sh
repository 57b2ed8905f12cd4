# shellcheck shell=bash
# shellcheck disable=SC2034  # globals set here are read by the test scripts
# PostgreSQL, MariaDB and Redis for the integration tests: real servers started
# as child processes from temp dirs below $T_WORK (reference: platform.md §9).
# Source it after lib.sh, call it after t_init:
#
#   source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/lib_sql.sh"
#   t_init
#   pg_start        # PG_PORT PG_CONNECT PG_DIR; db "mail" with the postfixadmin schema
#   mariadb_start   # MARIADB_PORT MARIADB_SOCK MARIADB_CONNECT; the same
#   redis_start     # REDIS_PORT REDIS_SOCK
#   sql_add_users 1000          # user0000..user0999@example.test in every started database
#   pg_sql "UPDATE mailbox ..." / mariadb_sql "..."
#   pg_restart / mariadb_restart / redis_restart   # same data dir and port: outage tests
#
# Each server's pid goes to the front of lib.sh's T_PIDS, so the EXIT trap
# (which stops T_PIDS last-first) stops it after the sluice that talks to it:
# PostgreSQL's SIGTERM shutdown waits for its clients to leave. Every wait is
# bounded; a server that does not come up fails the test and ends it.

SQL_SCHEMA_DIR=$LIB_DIR/sql
SQL_PASSWORD=sluice-db-secret # the password of the database user "sluice" (both servers)
PG_BIN=${PG_BIN:-$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)}
PG_PID=
MARIADB_PID=
REDIS_PID=

# sql_bg_first PID: registers PID to be stopped after everything started before it
sql_bg_first() { T_PIDS=("$1" "${T_PIDS[@]}"); }

# sql_wait WHAT SECONDS PID CMD...: runs CMD until it succeeds; fails the test and
# ends it after SECONDS or when PID (the server) exits.
sql_wait() {
    local what=$1 end=$((SECONDS + $2)) pid=$3
    shift 3
    while ! "$@" >/dev/null 2>&1; do
        if pid_exited "$pid"; then
            t_fail "$what" "server exited" "running"
            t_done
        fi
        if [ $SECONDS -ge "$end" ]; then
            t_fail "$what" "not ready after $2 s" "ready"
            t_done
        fi
        sleep 0.1
    done
}

# sql_stop_pid PID SIGNAL SECONDS: signals a server, waits, SIGKILL after SECONDS
sql_stop_pid() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill "-$2" "$pid" 2>/dev/null
    if ! pid_wait "$pid" "$3"; then
        echo "pid $pid still running $3 s after SIG$2: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    t_bg_forget "$pid"
}

# ---------------------------------------------------------------- PostgreSQL

# pg_sql SQL: runs SQL in database mail as the superuser over the UNIX socket
pg_sql() {
    timeout 60 "$PG_BIN/psql" -h "$PG_DIR" -p "$PG_PORT" -U postgres -d "${PG_DB:-mail}" \
        -v ON_ERROR_STOP=1 -qAt -c "$1"
}

# pg_sql_file FILE: runs an SQL file in database mail
pg_sql_file() {
    timeout 60 "$PG_BIN/psql" -h "$PG_DIR" -p "$PG_PORT" -U postgres -d mail \
        -v ON_ERROR_STOP=1 -qAt -f "$1"
}

# Starts postgres in the foreground as user postgres (setpriv execs, so the pid
# is the postmaster's), on 127.0.0.1:$PG_PORT and a socket in $PG_DIR.
pg_run() {
    t_logfile "$PG_DIR/postgres.log"
    (cd "$PG_DIR" && exec setpriv --reuid=postgres --regid=postgres --init-groups -- \
        "$PG_BIN/postgres" -D "$PG_DATA" -p "$PG_PORT" -c listen_addresses=127.0.0.1 \
        -c unix_socket_directories="$PG_DIR" -c fsync=off -c synchronous_commit=off \
        -c full_page_writes=off -c max_connections=50) >>"$PG_DIR/postgres.log" 2>&1 &
    PG_PID=$!
    sql_bg_first "$PG_PID"
    sql_wait "postgres accepts connections on port $PG_PORT" 60 "$PG_PID" \
        timeout 5 "$PG_BIN/pg_isready" -q -h "$PG_DIR" -p "$PG_PORT" -U postgres
}

# pg_start: initdb in $T_WORK/pg (owned by postgres), start, create database mail
# with the postfixadmin schema and a login role "sluice" that may read it. Local
# (socket) connections are trusted; TCP ones need the password (scram-sha-256),
# so PG_CONNECT exercises real authentication.
pg_start() {
    t_need "$PG_BIN/initdb" "$PG_BIN/postgres" "$PG_BIN/psql" setpriv runuser
    PG_DIR=$T_WORK/pg
    PG_DATA=$PG_DIR/data
    mkdir -p "$PG_DIR"
    printf '%s\n' "$SQL_PASSWORD" >"$PG_DIR/pwfile"
    chown -R postgres:postgres "$PG_DIR"
    chmod 700 "$PG_DIR"
    if ! timeout 120 runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -U postgres \
        --auth-local=trust --auth-host=scram-sha-256 --pwfile="$PG_DIR/pwfile" -E UTF8 \
        --locale=C.UTF-8 --no-sync >"$PG_DIR/initdb.log" 2>&1; then
        t_fail "initdb $PG_DATA" "$(tail -n 5 "$PG_DIR/initdb.log")" "exit 0"
        t_done
    fi
    read -r PG_PORT < <(free_port)
    pg_run
    if ! { PG_DB=postgres pg_sql "CREATE DATABASE mail ENCODING 'UTF8'" >/dev/null &&
        pg_sql_file "$SQL_SCHEMA_DIR/postfixadmin-pgsql.sql" >/dev/null &&
        pg_sql "CREATE ROLE sluice LOGIN PASSWORD '$SQL_PASSWORD';
                GRANT SELECT ON ALL TABLES IN SCHEMA public TO sluice" >/dev/null; }; then
        t_fail "postgres: create database mail with the postfixadmin schema" "error" "ok"
        t_done
    fi
    PG_CONNECT="host=127.0.0.1 port=$PG_PORT dbname=mail user=sluice password=$SQL_PASSWORD"
    t_log "postgres pid $PG_PID on 127.0.0.1:$PG_PORT"
}

# pg_stop: fast shutdown (SIGINT: clients are disconnected, not waited for)
pg_stop() {
    sql_stop_pid "$PG_PID" INT 30
    PG_PID=
}

# pg_restart: stop, then start the same data dir on the same port
pg_restart() {
    pg_stop
    pg_run
}

# ---------------------------------------------------------------- MariaDB

# mariadb_sql SQL: runs SQL in database mail as root over the UNIX socket
mariadb_sql() {
    timeout 60 mariadb --no-defaults -S "$MARIADB_SOCK" -u root -N -B "${MARIADB_DB:-mail}" \
        -e "$1"
}

mariadb_run() {
    t_logfile "$MARIADB_DIR/error.log"
    mariadbd --no-defaults --user=mysql --datadir="$MARIADB_DIR/data" \
        --socket="$MARIADB_SOCK" --port="$MARIADB_PORT" --bind-address=127.0.0.1 \
        --pid-file="$MARIADB_DIR/mariadbd.pid" --log-error="$MARIADB_DIR/error.log" \
        --skip-log-bin --skip-name-resolve --innodb-flush-log-at-trx-commit=0 \
        --innodb-buffer-pool-size=64M --innodb-log-file-size=32M >/dev/null 2>&1 &
    MARIADB_PID=$!
    sql_bg_first "$MARIADB_PID"
    sql_wait "mariadbd answers ping on $MARIADB_SOCK" 60 "$MARIADB_PID" \
        timeout 5 mariadb-admin --no-defaults -S "$MARIADB_SOCK" -u root ping
}

# mariadb_start: mariadb-install-db in $T_WORK/mariadb (owned by mysql), start,
# create database mail with the postfixadmin schema and a user "sluice" (TCP
# from 127.0.0.1 and the socket) with the password, allowed to read it.
mariadb_start() {
    t_need mariadbd mariadb-install-db mariadb mariadb-admin
    MARIADB_DIR=$T_WORK/mariadb
    MARIADB_SOCK=$MARIADB_DIR/mysqld.sock
    mkdir -p "$MARIADB_DIR"
    chown mysql:mysql "$MARIADB_DIR"
    chmod 755 "$MARIADB_DIR"
    if ! timeout 120 mariadb-install-db --no-defaults --user=mysql \
        --datadir="$MARIADB_DIR/data" --auth-root-authentication-method=normal \
        --skip-test-db >"$MARIADB_DIR/install.log" 2>&1; then
        t_fail "mariadb-install-db $MARIADB_DIR/data" "$(tail -n 5 "$MARIADB_DIR/install.log")" "exit 0"
        t_done
    fi
    read -r MARIADB_PORT < <(free_port)
    mariadb_run
    if ! { MARIADB_DB=mysql mariadb_sql "CREATE DATABASE mail CHARACTER SET utf8mb4" &&
        mariadb_sql "source $SQL_SCHEMA_DIR/postfixadmin-mysql.sql" &&
        mariadb_sql "CREATE USER 'sluice'@'127.0.0.1' IDENTIFIED BY '$SQL_PASSWORD';
                     CREATE USER 'sluice'@'localhost' IDENTIFIED BY '$SQL_PASSWORD';
                     GRANT SELECT ON mail.* TO 'sluice'@'127.0.0.1';
                     GRANT SELECT ON mail.* TO 'sluice'@'localhost'"; }; then
        t_fail "mariadb: create database mail with the postfixadmin schema" "error" "ok"
        t_done
    fi
    MARIADB_CONNECT="host=127.0.0.1 port=$MARIADB_PORT dbname=mail user=sluice password=$SQL_PASSWORD"
    t_log "mariadbd pid $MARIADB_PID on 127.0.0.1:$MARIADB_PORT"
}

# mariadb_stop: SIGTERM is a normal shutdown that closes client connections
mariadb_stop() {
    sql_stop_pid "$MARIADB_PID" TERM 30
    MARIADB_PID=
}

mariadb_restart() {
    mariadb_stop
    mariadb_run
}

# ---------------------------------------------------------------- Redis

redis_run() {
    t_logfile "$REDIS_DIR/redis.log"
    redis-server "$REDIS_DIR/redis.conf" >/dev/null 2>&1 &
    REDIS_PID=$!
    sql_bg_first "$REDIS_PID"
    # shellcheck disable=SC2016  # $1 is expanded by the inner sh
    sql_wait "redis answers PING on $REDIS_SOCK" 30 "$REDIS_PID" \
        sh -c 'test "$(timeout 5 redis-cli -s "$1" ping)" = PONG' sh "$REDIS_SOCK"
}

# redis_start: redis-server on 127.0.0.1:$REDIS_PORT and $REDIS_SOCK, no
# persistence (save "", appendonly no), files in $T_WORK/redis
redis_start() {
    t_need redis-server redis-cli
    REDIS_DIR=$T_WORK/redis
    REDIS_SOCK=$REDIS_DIR/redis.sock
    mkdir -p "$REDIS_DIR"
    read -r REDIS_PORT < <(free_port)
    cat >"$REDIS_DIR/redis.conf" <<C
bind 127.0.0.1
port $REDIS_PORT
unixsocket $REDIS_SOCK
unixsocketperm 777
save ""
appendonly no
daemonize no
dir $REDIS_DIR
logfile $REDIS_DIR/redis.log
C
    redis_run
    t_log "redis pid $REDIS_PID on 127.0.0.1:$REDIS_PORT"
}

redis_stop() {
    sql_stop_pid "$REDIS_PID" TERM 20
    REDIS_PID=
}

redis_restart() {
    redis_stop
    redis_run
}

# ---------------------------------------------------------------- users

# sql_add_users N [pg] [mariadb]: inserts user0000..user(N-1)@example.test (maildir
# example.test/userNNNN/, password {PLAIN}secret, quota 0, active) and their
# postfixadmin self-aliases into the named databases (default: every one
# started), plus the domain row. One set-based statement per table, so 100,000
# users take seconds.
sql_add_users() {
    local n=$1 db
    shift
    local -a dbs=("$@")
    if [ ${#dbs[@]} -eq 0 ]; then
        [ -n "$PG_PID" ] && dbs+=(pg)
        [ -n "$MARIADB_PID" ] && dbs+=(mariadb)
    fi
    for db in "${dbs[@]}"; do
        case $db in
        pg) sql_add_users_pg "$n" >/dev/null ||
            { t_fail "postgres: add $n users" "error" "ok"; t_done; } ;;
        mariadb) sql_add_users_mariadb "$n" >/dev/null ||
            { t_fail "mariadb: add $n users" "error" "ok"; t_done; } ;;
        *) t_fail "sql_add_users: known database" "$db" "pg or mariadb"; t_done ;;
        esac
    done
}

sql_add_users_pg() {
    pg_sql "INSERT INTO domain (domain, description) VALUES ('example.test', 'sluice tests')
              ON CONFLICT DO NOTHING;
            CREATE TEMP TABLE new_users AS
              SELECT 'user' || lpad(n::text, greatest(4, length(n::text)), '0') AS local_part
              FROM generate_series(0, $1 - 1) AS n;
            INSERT INTO mailbox (username, password, maildir, quota, local_part, domain)
              SELECT local_part || '@example.test', '{PLAIN}secret',
                     'example.test/' || local_part || '/', 0, local_part, 'example.test'
              FROM new_users;
            INSERT INTO alias (address, goto, domain)
              SELECT local_part || '@example.test', local_part || '@example.test', 'example.test'
              FROM new_users;"
}

sql_add_users_mariadb() {
    mariadb_sql "SET SESSION max_recursive_iterations = $1 + 1;
        INSERT IGNORE INTO domain (domain, description) VALUES ('example.test', 'sluice tests');
        CREATE TEMPORARY TABLE new_users AS
          WITH RECURSIVE seq (n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < $1 - 1)
          SELECT CONCAT('user', LPAD(n, GREATEST(4, LENGTH(n)), '0')) AS local_part FROM seq;
        INSERT INTO mailbox (username, password, maildir, quota, local_part, domain)
          SELECT CONCAT(local_part, '@example.test'), '{PLAIN}secret',
                 CONCAT('example.test/', local_part, '/'), 0, local_part, 'example.test'
          FROM new_users;
        INSERT INTO alias (address, goto, domain)
          SELECT CONCAT(local_part, '@example.test'), CONCAT(local_part, '@example.test'),
                 'example.test'
          FROM new_users;"
}

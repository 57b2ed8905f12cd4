# shellcheck shell=bash
# shellcheck disable=SC2034  # globals set here are read by the test scripts
# Shared helpers for the sluice integration tests. Source it, do not run it.
#
# A test script does:
#   source "$(dirname "$0")/lib.sh"
#   t_init                      # temp dir T_WORK, EXIT trap that stops everything
#   userdb_demo 5; sluice_conf "$T_WORK/sluice.conf" key=value...; sluice_start "$T_WORK/sluice.conf"
#   t_eq "what" "$got" "$want"  # prints ok/FAIL with got/want
#   t_done                      # exit 0 if every check passed, else 1
#
# Everything started through these helpers is stopped at exit (also on failure),
# by its pid. Every blocking step is bounded with `timeout`.
#
# Environment (meson sets the first three):
#   SLUICE_BIN, SLUICE_USERDB, SLUICE_SRC   paths to the binaries and the source tree
#   SLUICE_TEST_KEEP=1                      keep the temp dir after the test
#   LMTP_BACKEND=dovecot                    run against Dovecot's LMTP instead of sluice
#                                           (harness development only; sluice-only checks fail)

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SLUICE_SRC=${SLUICE_SRC:-$(cd "$LIB_DIR/../.." && pwd)}
SLUICE_BIN=${SLUICE_BIN:-$SLUICE_SRC/build/sluice}
SLUICE_USERDB=${SLUICE_USERDB:-$SLUICE_SRC/build/tools/sluice-userdb}
LMTP_BACKEND=${LMTP_BACKEND:-sluice}
export PYTHONPATH="$LIB_DIR${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
export PYTHONUNBUFFERED=1
export LC_ALL=C.UTF-8

T_FAILS=0
T_CHECKS=0
T_PIDS=()        # background processes to stop at exit
T_MOUNTS=()      # mount points to unmount at exit
T_POSTFIX_DIRS=()
T_LOGS=()        # logs whose tail is printed when the test fails

# ---------------------------------------------------------------- reporting

t_log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }

t_ok() {
    T_CHECKS=$((T_CHECKS + 1))
    printf 'ok   - %s\n' "$1"
}

# t_fail WHAT [GOT] [WANT]
t_fail() {
    T_CHECKS=$((T_CHECKS + 1))
    T_FAILS=$((T_FAILS + 1))
    printf 'FAIL - %s\n' "$1"
    if [ $# -ge 2 ]; then printf '       got:  %s\n' "$2"; fi
    if [ $# -ge 3 ]; then printf '       want: %s\n' "$3"; fi
    return 1
}

# t_eq WHAT GOT WANT
t_eq() {
    if [ "$2" == "$3" ]; then t_ok "$1"; else t_fail "$1" "$2" "$3"; fi
}

# t_match WHAT GOT ERE
t_match() {
    if [[ $2 =~ $3 ]]; then t_ok "$1"; else t_fail "$1" "$2" "/$3/"; fi
}

# t_cmd WHAT CMD...: passes when CMD exits 0 (its output is shown on failure)
t_cmd() {
    local what=$1 out rc
    shift
    out=$("$@" 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then
        t_ok "$what"
    else
        t_fail "$what" "exit $rc: $(printf '%s' "$out" | tail -n 20)" "exit 0"
    fi
    return $rc
}

# t_py WHAT SCRIPT ARGS...: runs a python check script; its ok/FAIL lines count here.
t_py() {
    local what=$1 limit=${T_PY_TIMEOUT:-300} out rc
    shift
    out=$(timeout -k 5 "$limit" python3 "$@" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    local n_ok n_fail
    n_ok=$(printf '%s\n' "$out" | grep -c '^ok   - ')
    n_fail=$(printf '%s\n' "$out" | grep -c '^FAIL - ')
    T_CHECKS=$((T_CHECKS + n_ok + n_fail))
    T_FAILS=$((T_FAILS + n_fail))
    if [ $rc -ne 0 ] && [ "$n_fail" -eq 0 ]; then
        t_fail "$what: python exited $rc without a reported failure" "exit $rc" "exit 0"
    fi
    return $rc
}

# t_skip REASON: the whole test is skipped (only for a missing kernel feature)
t_skip() {
    printf 'SKIP - %s\n' "$1"
    exit 77
}

t_need() {
    local p
    for p in "$@"; do
        if ! command -v "$p" >/dev/null 2>&1 && [ ! -x "$p" ]; then
            # A missing package is a failure, never a skip (see STYLE.md, Tests).
            t_fail "required program present: $p" "not found" "installed (tools/install-deps.sh)"
            t_done
        fi
    done
}

# ---------------------------------------------------------------- lifecycle

t_init() {
    # SLUICE_SYNC_METHOD=syncfs runs the same script with that sync_method
    # (sluice_conf writes it into every config).
    T_NAME=$(basename "$0" .sh)${SLUICE_SYNC_METHOD:+_$SLUICE_SYNC_METHOD}
    T_WORK=$(mktemp -d "/tmp/sluice-$T_NAME.XXXXXX")
    chmod 755 "$T_WORK"   # postfix and dovecot users must reach their dirs inside
    T_START=$SECONDS
    MAIL_ROOT=$T_WORK/mail
    USERDB=$T_WORK/users.sqlite
    mkdir -p "$MAIL_ROOT"
    trap t_exit EXIT
    trap 'echo "interrupted"; exit 130' INT
    trap 'echo "terminated (timeout?)"; exit 143' TERM
    t_log "$T_NAME: work dir $T_WORK, backend $LMTP_BACKEND"
    if [ "$LMTP_BACKEND" = sluice ]; then
        # sluice cannot run without io_uring: the one reason to skip.
        if [ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" = 2 ]; then
            t_skip "io_uring is disabled in this kernel (kernel.io_uring_disabled = 2)"
        fi
        t_need "$SLUICE_BIN" "$SLUICE_USERDB"
    fi
    t_need python3 timeout
}

t_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$T_FAILS" -gt 0 ] || { [ $rc -ne 0 ] && [ $rc -ne 77 ]; }; then
        local f
        for f in "${T_LOGS[@]}"; do
            [ -s "$f" ] || continue
            echo "----- last lines of $f"
            tail -n 40 "$f"
        done
    fi
    t_stop_all
    if [ "${SLUICE_TEST_KEEP:-0}" = 1 ]; then
        echo "kept $T_WORK"
    elif [ -n "${T_WORK:-}" ] && [ -d "$T_WORK" ]; then
        rm -rf "$T_WORK"
    fi
    exit $rc
}

t_done() {
    local took=$((SECONDS - T_START))
    if [ "$T_FAILS" -gt 0 ]; then
        echo "$T_NAME: $T_FAILS of $T_CHECKS checks FAILED (${took}s)"
        exit 1
    fi
    echo "$T_NAME: all $T_CHECKS checks passed (${took}s)"
    exit 0
}

# pid_exited PID: true when PID is gone or a zombie
pid_exited() {
    local st
    [ -r "/proc/$1/stat" ] || return 0
    st=$(sed -E 's/^.*\) (.).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 0
    [ "$st" = Z ] || [ -z "$st" ]
}

# pid_wait PID SECONDS: waits for PID (a child of this shell) to exit and sets
# PID_RC to its exit status; returns 1 on timeout. Do not call it in $(...):
# a subshell cannot reap this shell's children.
pid_wait() {
    local pid=$1 end=$((SECONDS + $2))
    PID_RC=
    while ! pid_exited "$pid"; do
        if [ $SECONDS -ge $end ]; then return 1; fi
        sleep 0.05
    done
    wait "$pid" 2>/dev/null
    PID_RC=$?
    return 0
}

# pid_stop PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 10)
pid_stop() {
    local pid=$1 grace=${2:-10}
    pid_exited "$pid" && { wait "$pid" 2>/dev/null; t_bg_forget "$pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null
    if ! pid_wait "$pid" "$grace" >/dev/null; then
        echo "pid $pid ignored SIGTERM for ${grace}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    t_bg_forget "$pid"
    return 0
}

t_bg_add() { T_PIDS+=("$1"); }

# t_bg_forget PID: PID was reaped; never signal it again (pids get reused)
t_bg_forget() {
    local i
    for i in "${!T_PIDS[@]}"; do
        [ "${T_PIDS[$i]}" = "$1" ] && unset 'T_PIDS[i]'
    done
    T_PIDS=("${T_PIDS[@]}")
}

# t_logfile PATH: print PATH's tail if the test fails
t_logfile() {
    case " ${T_LOGS[*]} " in *" $1 "*) ;; *) T_LOGS+=("$1") ;; esac
}

t_stop_all() {
    local i d m
    for ((i = ${#T_PIDS[@]} - 1; i >= 0; i--)); do
        pid_stop "${T_PIDS[$i]}" 10
    done
    T_PIDS=()
    for d in "${T_POSTFIX_DIRS[@]}"; do
        postfix_stop "$d"
    done
    T_POSTFIX_DIRS=()
    for m in "${T_MOUNTS[@]}"; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
    T_MOUNTS=()
}

# ---------------------------------------------------------------- network

# free_ports N: prints N distinct free TCP ports on 127.0.0.1 (one per line)
free_ports() {
    python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
PY
}

free_port() { free_ports 1; }

# wait_tcp HOST PORT SECONDS [PID]: waits until a TCP connect succeeds
wait_tcp() {
    local host=$1 port=$2 end=$((SECONDS + $3)) pid=${4:-}
    while [ $SECONDS -lt $end ]; do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
        if [ -n "$pid" ] && pid_exited "$pid"; then return 1; fi
        sleep 0.05
    done
    return 1
}

# wait_file PATH SECONDS: waits until PATH exists (file, socket, ...)
wait_file() {
    local end=$((SECONDS + $2))
    while [ ! -e "$1" ]; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.05
    done
}

# ---------------------------------------------------------------- userdb

# userdb_demo N: creates $USERDB with user0000..user(N-1)@example.test + postmaster
userdb_demo() {
    local n=$1
    if [ "$LMTP_BACKEND" = dovecot ]; then
        : >"$T_WORK/passwd"
        local i
        for ((i = 0; i < n; i++)); do
            userdb_add "$(printf 'user%04d@example.test' "$i")"
        done
        userdb_add postmaster@example.test
        return 0
    fi
    timeout 60 "$SLUICE_USERDB" demo "$USERDB" "$n" >"$T_WORK/userdb.out" 2>&1 ||
        { t_fail "sluice-userdb demo $USERDB $n" "$(tail -n 5 "$T_WORK/userdb.out")" "exit 0"; t_done; }
}

# userdb_add ADDR [sluice-userdb add options]
userdb_add() {
    local addr=$1
    shift
    if [ "$LMTP_BACKEND" = dovecot ]; then
        local local=${addr%@*} dom=${addr#*@}
        case " $* " in *" --inactive "*) return 0 ;; esac
        echo "$addr::65534:65534::$MAIL_ROOT/$dom/$local::" >>"$T_WORK/passwd"
        return 0
    fi
    timeout 60 "$SLUICE_USERDB" add "$USERDB" "$addr" "$@" >>"$T_WORK/userdb.out" 2>&1 ||
        { t_fail "sluice-userdb add $addr $*" "$(tail -n 5 "$T_WORK/userdb.out")" "exit 0"; t_done; }
}

# ---------------------------------------------------------------- sluice

# sluice_conf FILE [key=value ...]: writes a config; the defaults below are
# replaced by same-named keys from the arguments, new keys are appended.
# Needs $LMTP_PORT (and uses $T_WORK/lmtp.sock as the UNIX listener).
sluice_conf() {
    local file=$1 kv k v i found
    shift
    local -a keys=(lmtp_listen lmtp_unix_mode lmtp_allow cores hostname greeting mail_root
        userdb_driver userdb_connect user_query userdb_cache_size userdb_cache_ttl
        userdb_cache_negative_ttl fsync sync_method log log_level)
    local -a vals=("127.0.0.1:$LMTP_PORT, unix:$T_WORK/lmtp.sock" 0666 "127.0.0.0/8, ::1/128"
        auto mx.test "sluice ready." "$MAIL_ROOT" sqlite "$USERDB"
        "SELECT maildir, quota, active FROM mailbox WHERE username = '%u'" 100000 5m 1m
        yes "${SLUICE_SYNC_METHOD:-}" stderr info)
    for kv in "$@"; do
        k=${kv%%=*}
        v=${kv#*=}
        found=0
        for i in "${!keys[@]}"; do
            if [ "${keys[$i]}" = "$k" ]; then vals[$i]=$v; found=1; fi
        done
        if [ $found = 0 ]; then keys+=("$k"); vals+=("$v"); fi
    done
    {
        echo "# generated by $T_NAME"
        for i in "${!keys[@]}"; do
            [ -n "${vals[$i]}" ] && printf '%s = %s\n' "${keys[$i]}" "${vals[$i]}"
        done
    } >"$file"
}

# sluice_start CONF [PORT]: starts sluice in the background (stderr to
# $T_WORK/sluice.log, appended), waits until PORT ($LMTP_PORT) accepts.
# Sets SLUICE_PID. Fails the test (and ends it) when sluice does not come up.
sluice_start() {
    local conf=$1 port=${2:-$LMTP_PORT}
    SLUICE_LOG=$T_WORK/sluice.log
    if [ "$LMTP_BACKEND" = dovecot ]; then
        dovecot_lmtp_start "$port"
        SLUICE_PID=$DOVECOT_PID
        return 0
    fi
    t_logfile "$SLUICE_LOG"
    echo "=== $(date +%T) sluice -c $conf" >>"$SLUICE_LOG"
    "$SLUICE_BIN" -c "$conf" 2>>"$SLUICE_LOG" &
    SLUICE_PID=$!
    t_bg_add "$SLUICE_PID"
    if ! wait_tcp 127.0.0.1 "$port" 20 "$SLUICE_PID"; then
        local rc="still running"
        pid_wait "$SLUICE_PID" 0 && rc="exit status $PID_RC"
        t_fail "sluice starts and listens on 127.0.0.1:$port" "$rc; log: $(tail -n 5 "$SLUICE_LOG" | tr '\n' '|')" "listening"
        t_done
    fi
}

# sluice_stop: SIGTERM and wait (SIGKILL after 15 s). Sets SLUICE_RC.
sluice_stop() {
    local pid=${SLUICE_PID:-}
    SLUICE_RC=
    [ -n "$pid" ] || return 0
    if [ "$LMTP_BACKEND" = dovecot ]; then
        pid_stop "$pid" 10
        t_bg_forget "$pid"
        SLUICE_RC=0
        SLUICE_PID=
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null
    if pid_wait "$pid" 15; then
        SLUICE_RC=$PID_RC
    else
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        SLUICE_RC="still running 15 s after SIGTERM"
    fi
    t_bg_forget "$pid"
    SLUICE_PID=
}

# sluice_kill9: SIGKILL sluice (a crash) and reap it
sluice_kill9() {
    local pid=${SLUICE_PID:-}
    [ -n "$pid" ] || return 0
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    t_bg_forget "$pid"
    SLUICE_PID=
}

# ---------------------------------------------------------------- maildir

# count_files DIR: number of regular files directly in DIR (0 if absent)
count_files() {
    if [ -d "$1" ]; then find "$1" -mindepth 1 -maxdepth 1 -type f | wc -l; else echo 0; fi
}

# leftover_tmp ROOT: lists files in any tmp/ below ROOT
leftover_tmp() {
    find "$1" -type f -path "$1/*/tmp/*" 2>/dev/null
}

# ---------------------------------------------------------------- postfix

# postfix_start DIR SMTP_PORT LMTP_TARGET [extra main.cf lines]: platform.md §8
postfix_start() {
    local B=$1 port=$2 lmtp=$3 extra=${4:-}
    mkdir -p "$B/etc" "$B/spool" "$B/data" "$B/log"
    chmod 755 "$B"
    chown postfix "$B/data"
    cp /usr/share/postfix/master.cf.dist "$B/etc/master.cf"
    cat >"$B/etc/main.cf" <<C
compatibility_level = 3.6
queue_directory = $B/spool
data_directory = $B/data
maillog_file = $B/log/postfix.log
maillog_file_prefixes = $B/log
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.test.invalid
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
smtputf8_enable = no
virtual_mailbox_domains = example.test
virtual_transport = lmtp:$lmtp
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
$extra
C
    postconf -c "$B/etc" -F '*/*/chroot = n' || return 1
    postconf -c "$B/etc" -M# smtp/inet || return 1
    postconf -c "$B/etc" -Me "127.0.0.1:$port/inet = 127.0.0.1:$port inet n - n - - smtpd" || return 1
    timeout 60 postfix -c "$B/etc" check >"$B/log/check.out" 2>&1 ||
        { cat "$B/log/check.out"; return 1; }
    T_POSTFIX_DIRS+=("$B")
    t_logfile "$B/log/postfix.log"
    postfix -c "$B/etc" start-fg >"$B/log/start-fg.out" 2>&1 &
    POSTFIX_PID=$!
    wait_tcp 127.0.0.1 "$port" 20 "$POSTFIX_PID"
}

# postfix_stop DIR: stops a postfix started by postfix_start (start-fg exits 143: normal)
postfix_stop() {
    local B=$1
    [ -f "$B/etc/main.cf" ] || return 0
    timeout 30 postfix -c "$B/etc" stop >/dev/null 2>&1
    if [ -n "${POSTFIX_PID:-}" ]; then
        pid_wait "$POSTFIX_PID" 15 >/dev/null || { kill -KILL "$POSTFIX_PID" 2>/dev/null; wait "$POSTFIX_PID" 2>/dev/null; }
        POSTFIX_PID=
    fi
}

# ---------------------------------------------------------------- dovecot

# dovecot_conf DIR PROTOCOLS: writes DIR/dovecot.conf; uses $DOVECOT_IMAP_PORT /
# $DOVECOT_LMTP_PORT, userdb passwd-file $T_WORK/passwd (or static when absent)
dovecot_conf() {
    local D=$1 protocols=$2 userdb
    mkdir -p "$D/run" "$D/state"
    chmod 755 "$D" "$D/run"
    if [ -f "$T_WORK/passwd" ]; then
        chmod 644 "$T_WORK/passwd"
        userdb="userdb {
  driver = passwd-file
  args = username_format=%u $T_WORK/passwd
}"
    else
        userdb="userdb {
  driver = static
  args = uid=65534 gid=65534 home=$MAIL_ROOT/%d/%n
}"
    fi
    cat >"$D/dovecot.conf" <<C
base_dir = $D/run
state_dir = $D/state
log_path = /dev/stderr
info_log_path = /dev/stderr
protocols = $protocols
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = maildir:$MAIL_ROOT/%d/%n
hostname = mx.test
login_greeting = sluice ready.
lmtp_save_to_detail_mailbox = yes
recipient_delimiter = +
default_internal_user = dovecot
default_login_user = dovenull
passdb {
  driver = static
  args = password=secret
}
$userdb
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${DOVECOT_IMAP_PORT:-0}
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${DOVECOT_LMTP_PORT:-0}
  }
}
service anvil {
  chroot =
}
C
}

# dovecot_start DIR PORT: runs dovecot -F with DIR/dovecot.conf; waits for PORT
dovecot_start() {
    local D=$1 port=$2
    t_logfile "$D/dovecot.log"
    dovecot -F -c "$D/dovecot.conf" >>"$D/dovecot.log" 2>&1 &
    DOVECOT_PID=$!
    t_bg_add "$DOVECOT_PID"
    wait_tcp 127.0.0.1 "$port" 20 "$DOVECOT_PID"
}

# dovecot_lmtp_start PORT: Dovecot LMTP as a stand-in for sluice (harness development)
dovecot_lmtp_start() {
    local port=$1
    DOVECOT_LMTP_PORT=$port
    dovecot_conf "$T_WORK/dovecot-lmtp" lmtp
    chown -R 65534:65534 "$MAIL_ROOT"
    dovecot_start "$T_WORK/dovecot-lmtp" "$port" ||
        { t_fail "dovecot lmtp starts" "$(tail -n 5 "$T_WORK/dovecot-lmtp/dovecot.log")" "listening"; t_done; }
}

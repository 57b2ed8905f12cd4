# shellcheck shell=bash
# shellcheck disable=SC2034  # globals set here are read by the test scripts
# The SASL auth endpoint for the integration tests: sluice's (auth_listen) or,
# with AUTH_BACKEND=dovecot, a real Dovecot 2.3 auth service from a temp config
# with the same users, passwords, mechanisms and failure delay. Source it after
# lib.sh, call it after t_init:
#
#   auth_user user0001@example.test '{PLAIN}secret'      # one passdb entry (both backends)
#   auth_start NAME BACKEND [key=value ...]             # AUTH_INET=127.0.0.1:P, AUTH_UNIX=/path
#   auth_stop NAME
#
# The extra key=value pairs are sluice config keys; for Dovecot the ones with
# a Dovecot equivalent (auth_failure_delay, auth_mechanisms, auth_realm) are
# mapped. Several endpoints may run at once under different NAMEs.
#
# Environment: AUTH_BACKEND=sluice|dovecot (default sluice), SLUICE_PW.

AUTH_BACKEND=${AUTH_BACKEND:-sluice}
SLUICE_PW=${SLUICE_PW:-$SLUICE_SRC/build/tools/sluice-pw}
AUTH_MECHS_DEFAULT="PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256"
AUTH_REALM=example.test
AUTH_PASSWD=           # passwd-file for Dovecot (made on first auth_user)
AUTH_DB=               # SQLite userdb for sluice (made on first auth_user)
declare -A AUTH_PIDS AUTH_DIRS

# auth_have_sluice: true when sluice's auth endpoint is in the tree, wired into
# core/main.c, and in the binary under test
auth_have_sluice() {
    [ -x "$SLUICE_BIN" ] && [ -f "$SLUICE_SRC/proto/auth_session.c" ] &&
        grep -q auth_session "$SLUICE_SRC/core/main.c" 2>/dev/null &&
        grep -q auth_listen "$SLUICE_SRC/core/config.c" 2>/dev/null &&
        grep -qa auth_listen "$SLUICE_BIN"
}

# auth_pw SCHEME PASSWORD [USER]: a stored value made by sluice-pw (doveadm pw
# when sluice-pw is not built: the values are interchangeable, test_pwscheme)
auth_pw() {
    local -a u=()
    [ -n "${3:-}" ] && u=(-u "$3")
    if [ -x "$SLUICE_PW" ]; then
        timeout 60 "$SLUICE_PW" -s "$1" "${u[@]}" -p "$2"
    else
        timeout 60 doveadm pw -s "$1" "${u[@]}" -p "$2"
    fi
}

# auth_user ADDR STORED [--inactive]: ADDR with password STORED in both passdbs
# (an inactive user is left out of Dovecot's passwd-file: there it is unknown)
auth_user() {
    local addr=$1 stored=$2 inactive=${3:-}
    AUTH_PASSWD=$T_WORK/auth-passwd
    AUTH_DB=$T_WORK/auth-users.sqlite
    if [ -z "$inactive" ]; then
        printf '%s:%s::::::\n' "$addr" "$stored" >>"$AUTH_PASSWD"
        chmod 644 "$AUTH_PASSWD"
    fi
    if [ -x "$SLUICE_USERDB" ]; then
        if [ ! -e "$AUTH_DB" ]; then
            timeout 60 "$SLUICE_USERDB" create "$AUTH_DB" >>"$T_WORK/userdb.out" 2>&1 ||
                { t_fail "sluice-userdb create $AUTH_DB" "$(tail -n 3 "$T_WORK/userdb.out")" "exit 0"; t_done; }
        fi
        local -a extra=()
        [ -n "$inactive" ] && extra=(--inactive)
        timeout 60 "$SLUICE_USERDB" add "$AUTH_DB" "$addr" --password "$stored" "${extra[@]}" \
            >>"$T_WORK/userdb.out" 2>&1 ||
            { t_fail "sluice-userdb add $addr" "$(tail -n 3 "$T_WORK/userdb.out")" "exit 0"; t_done; }
    fi
}

# auth_kv KEY DEFAULT ARGS...: the value of KEY=... among ARGS, else DEFAULT
auth_kv() {
    local key=$1 val=$2 kv
    shift 2
    for kv in "$@"; do
        [ "${kv%%=*}" = "$key" ] && val=${kv#*=}
    done
    printf '%s' "$val"
}

# auth_start NAME BACKEND [key=value ...]: starts an auth endpoint listening on
# a free loopback port (AUTH_INET=127.0.0.1:PORT) and on a UNIX socket
# (AUTH_UNIX, mode 0666); AUTH_PID is its pid. Fails the test when it does not come up.
auth_start() {
    local name=$1 backend=$2
    shift 2
    local dir=$T_WORK/auth-$name port
    mkdir -p "$dir"
    chmod 755 "$dir"
    port=$(free_port)
    AUTH_INET=127.0.0.1:$port
    AUTH_UNIX=$dir/auth-client
    AUTH_DIRS[$name]=$dir
    case $backend in
    dovecot) auth_start_dovecot "$dir" "$port" "$@" ;;
    sluice) auth_start_sluice "$dir" "$port" "$@" ;;
    *) t_fail "auth backend known" "$backend" "sluice or dovecot"; t_done ;;
    esac
    AUTH_PIDS[$name]=$AUTH_PID
    if ! wait_tcp 127.0.0.1 "$port" 20 "$AUTH_PID" || ! wait_file "$AUTH_UNIX" 10; then
        t_fail "$backend auth endpoint $name listens on $AUTH_INET and $AUTH_UNIX" \
            "$(tail -n 5 "$dir/log" | tr '\n' '|')" "listening"
        t_done
    fi
    t_log "auth endpoint $name ($backend): $AUTH_INET, unix:$AUTH_UNIX"
}

auth_start_dovecot() {
    local D=$1 port=$2
    shift 2
    local mechs delay realm
    mechs=$(auth_kv auth_mechanisms "$AUTH_MECHS_DEFAULT" "$@")
    delay=$(auth_kv auth_failure_delay 2s "$@")
    realm=$(auth_kv auth_realm "$AUTH_REALM" "$@")
    mkdir -p "$D/run" "$D/state"
    chmod 755 "$D/run"
    # Dovecot wants "2 secs" style intervals; sluice's "2s" is read the same way.
    cat >"$D/dovecot.conf" <<C
base_dir = $D/run
state_dir = $D/state
log_path = /dev/stderr
info_log_path = /dev/stderr
protocols = none
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = ${mechs,,}
auth_realms = $realm
auth_failure_delay = $delay
default_internal_user = dovecot
default_login_user = dovenull
passdb {
  driver = passwd-file
  args = username_format=%u ${AUTH_PASSWD:-$T_WORK/auth-passwd}
}
service auth {
  inet_listener auth-inet {
    address = 127.0.0.1
    port = $port
  }
  unix_listener auth-client {
    path = $D/auth-client
    mode = 0666
  }
}
service anvil {
  chroot =
}
C
    t_logfile "$D/log"
    dovecot -F -c "$D/dovecot.conf" >>"$D/log" 2>&1 &
    AUTH_PID=$!
    t_bg_add "$AUTH_PID"
}

# sluice with its auth endpoint; LMTP on a port of its own (sluice always
# listens for LMTP). Extra args are sluice config keys (they win). Every test
# password carries its {SCHEME}; default_pass_scheme = PLAIN says the store
# can serve the mechanisms that need a plaintext-equivalent secret, so sluice
# offers them (with the default, MD5-CRYPT, it offers only PLAIN and LOGIN).
auth_start_sluice() {
    local D=$1 port=$2
    shift 2
    local lmtp
    lmtp=$(free_port)
    LMTP_PORT=$lmtp sluice_conf "$D/sluice.conf" \
        "lmtp_listen=127.0.0.1:$lmtp" "userdb_connect=${AUTH_DB:-$T_WORK/auth-users.sqlite}" \
        "password_query=SELECT password FROM mailbox WHERE username = '%u' AND active = '1'" \
        "auth_listen=127.0.0.1:$port, unix:$D/auth-client" auth_unix_mode=0666 \
        "auth_mechanisms=$AUTH_MECHS_DEFAULT" "auth_ntlm=no" "auth_realm=$AUTH_REALM" \
        "auth_failure_delay=2s" default_pass_scheme=PLAIN "$@"
    t_logfile "$D/log"
    "$SLUICE_BIN" -c "$D/sluice.conf" >>"$D/log" 2>&1 &
    AUTH_PID=$!
    AUTH_LMTP_PORT=$lmtp
    t_bg_add "$AUTH_PID"
}

# auth_stop NAME
auth_stop() {
    local pid=${AUTH_PIDS[$1]:-}
    [ -n "$pid" ] || return 0
    pid_stop "$pid" 10
    unset 'AUTH_PIDS[$1]'
}

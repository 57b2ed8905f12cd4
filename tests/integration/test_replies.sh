#!/usr/bin/env bash
# Every LMTP reply path of the interface, against a real sluice on loopback:
# greeting/LHLO, command errors, deliveries (single, several recipients with hard
# links, duplicates, unknown+known mix, pipelined streams, split writes, BDAT,
# +detail, SMTPUTF8, size and recipient limits, store and userdb failures, disk
# full), the UNIX listener, idle timeout, connection limits, the allowlist,
# SIGHUP reload and SIGTERM shutdown. swaks covers the same basics as a client
# that is not ours. Protocol checks live in replies.py (one section per sluice
# instance); this script starts the instances.
source "$(dirname "$0")/lib.sh"
t_init
t_need swaks

read -r LMTP_PORT < <(free_port)
export LMTP_PORT LMTP_SOCK=$T_WORK/lmtp.sock MAIL_ROOT USERDB
SIZE_MAX=102400
RCPT_MAX=5
export SIZE_MAX RCPT_MAX

userdb_demo 6
userdb_add off@example.test --inactive
# Maildir++ folder .lists for user0002 (for +detail); user0004's maildir path is a
# regular file, so every delivery to it fails in the store.
mkdir -p "$MAIL_ROOT/example.test/user0002/.lists/"{cur,new,tmp}
chmod 700 "$MAIL_ROOT/example.test/user0002/.lists/"{cur,new,tmp}
: >"$MAIL_ROOT/example.test/user0002/.lists/maildirfolder"
echo "not a directory" >"$MAIL_ROOT/example.test/user0004"

# ---------------------------------------------------------------- config check (-t)
CONF=$T_WORK/sluice.conf
sluice_conf "$CONF" "message_size_max=100k" "recipients_max=$RCPT_MAX" \
    recipient_delimiter=+ detail_mailbox=yes detail_mailbox_create=no bad_commands_max=10 \
    line_length_max=4096
if [ "$LMTP_BACKEND" = sluice ]; then
    out=$(timeout 20 "$SLUICE_BIN" -c "$CONF" -t 2>&1)
    rc=$?
    t_eq "sluice -t accepts a valid config" "exit $rc" "exit 0" || echo "$out" | head -n 5
    sluice_conf "$T_WORK/bad.conf" "message_size_max=lots"
    timeout 20 "$SLUICE_BIN" -c "$T_WORK/bad.conf" -t >/dev/null 2>&1
    rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 124 ]; then t_ok "sluice -t rejects message_size_max = lots (exit $rc)"
    else t_fail "sluice -t rejects message_size_max = lots" "exit $rc" "non-zero exit"; fi
    sluice_conf "$T_WORK/bad2.conf" "no_such_key=1"
    timeout 20 "$SLUICE_BIN" -c "$T_WORK/bad2.conf" -t >/dev/null 2>&1
    rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 124 ]; then t_ok "sluice -t rejects an unknown key (exit $rc)"
    else t_fail "sluice -t rejects an unknown key" "exit $rc" "non-zero exit"; fi
fi

# ---------------------------------------------------------------- main instance
t_log "main instance"
sluice_start "$CONF"
export SLUICE_PID SLUICE_CONF=$CONF SLUICE_LOG
wait_file "$LMTP_SOCK" 10 || t_fail "UNIX listener $LMTP_SOCK exists" "missing" "socket"

swaks_lmtp() {
    timeout 60 swaks --protocol LMTP --from sender@example.org --helo client.test \
        --header "Subject: swaks test" --body "hello from swaks" "$@" 2>&1
}
out=$(swaks_lmtp --server 127.0.0.1 --port "$LMTP_PORT" --to user0005@example.test)
rc=$?
t_eq "swaks TCP delivery exit status" "$rc" 0
t_match "swaks TCP: greeting" "$out" "<-  220 mx\.test sluice ready\."
t_match "swaks TCP: Saved" "$out" "<-  250 2\.0\.0 <user0005@example\.test> [^ ]+ Saved"
t_eq "swaks TCP: one file in user0005/new" "$(count_files "$MAIL_ROOT/example.test/user0005/new")" 1
out=$(swaks_lmtp --socket "$LMTP_SOCK" --to user0005@example.test)
rc=$?
t_eq "swaks UNIX socket delivery exit status" "$rc" 0
t_match "swaks UNIX socket: Saved" "$out" "<-  250 2\.0\.0 <user0005@example\.test> [^ ]+ Saved"
t_eq "swaks UNIX socket: two files in user0005/new" "$(count_files "$MAIL_ROOT/example.test/user0005/new")" 2
out=$(swaks_lmtp --server 127.0.0.1 --port "$LMTP_PORT" --to nobody@example.test)
rc=$?
t_match "swaks unknown user: non-zero exit" "$rc" "^[1-9][0-9]*$"
t_match "swaks unknown user: 550 5.1.1" "$out" \
    "<\*\* 550 5\.1\.1 <nobody@example\.test> User doesn't exist: nobody@example\.test"
out=$(swaks_lmtp --server 127.0.0.1 --port "$LMTP_PORT" --to user0005@example.test,off@example.test)
t_match "swaks known+inactive: 550 5.2.1 for the inactive one" "$out" \
    "<\*\* 550 5\.2\.1 <off@example\.test> Mailbox disabled"
t_match "swaks known+inactive: Saved for the known one" "$out" \
    "<-  250 2\.0\.0 <user0005@example\.test> [^ ]+ Saved"

t_py "replies main" "$LIB_DIR/replies.py" main
sluice_stop
t_eq "main instance: SIGTERM exit status" "$SLUICE_RC" 0

# ---------------------------------------------------------------- idle timeout
t_log "idle instance"
sluice_conf "$CONF" idle_timeout=2s
sluice_start "$CONF"
export SLUICE_PID
t_py "replies idle" "$LIB_DIR/replies.py" idle
sluice_stop
t_eq "idle instance: SIGTERM exit status" "$SLUICE_RC" 0

# ---------------------------------------------------------------- connection limits
t_log "connection limit instance"
sluice_conf "$CONF" connections_per_ip_max=4 connections_max=6
sluice_start "$CONF"
export SLUICE_PID
t_py "replies conn" "$LIB_DIR/replies.py" conn
sluice_stop
t_eq "connection limit instance: SIGTERM exit status" "$SLUICE_RC" 0

# ---------------------------------------------------------------- allowlist
t_log "allowlist instance"
sluice_conf "$CONF" "lmtp_allow=10.0.0.0/8, ::1/128"
sluice_start "$CONF"
export SLUICE_PID
t_py "replies allow" "$LIB_DIR/replies.py" allow
sluice_stop
t_eq "allowlist instance: SIGTERM exit status" "$SLUICE_RC" 0

# ---------------------------------------------------------------- userdb failure
t_log "userdb failure instance"
cp "$USERDB" "$T_WORK/users-fail.sqlite"
sluice_conf "$CONF" "userdb_connect=$T_WORK/users-fail.sqlite"
sluice_start "$CONF"
export SLUICE_PID
USERDB=$T_WORK/users-fail.sqlite t_py "replies userdbfail" "$LIB_DIR/replies.py" userdbfail
sluice_stop
t_eq "userdb failure instance: SIGTERM exit status" "$SLUICE_RC" 0

# ---------------------------------------------------------------- disk full
t_log "disk full instance"
SMALL=$T_WORK/small
mkdir -p "$SMALL"
if mount -t tmpfs -o size=512k,mode=0755 tmpfs "$SMALL" 2>"$T_WORK/mount.err"; then
    T_MOUNTS+=("$SMALL")
    sluice_conf "$CONF" "mail_root=$SMALL"
    sluice_start "$CONF"
    export SLUICE_PID
    MAIL_ROOT=$SMALL t_py "replies diskfull" "$LIB_DIR/replies.py" diskfull
    sluice_stop
    t_eq "disk full instance: SIGTERM exit status" "$SLUICE_RC" 0
else
    echo "# disk-full checks not run: cannot mount a tmpfs ($(cat "$T_WORK/mount.err"))"
fi

# ---------------------------------------------------------------- SIGHUP
t_log "SIGHUP instance"
sluice_conf "$CONF" "recipients_max=$RCPT_MAX"
sluice_start "$CONF"
export SLUICE_PID
t_py "replies sighup" "$LIB_DIR/replies.py" sighup
sluice_stop
t_eq "SIGHUP instance: SIGTERM exit status" "$SLUICE_RC" 0

# ---------------------------------------------------------------- SIGTERM
t_log "SIGTERM instance"
sluice_conf "$CONF"
sluice_start "$CONF"
export SLUICE_PID
t_py "replies sigterm" "$LIB_DIR/replies.py" sigterm
if [ "$LMTP_BACKEND" = sluice ]; then
    if pid_wait "$SLUICE_PID" 15; then
        t_eq "SIGTERM: exit status" "$PID_RC" 0
        t_bg_forget "$SLUICE_PID"
    else
        t_fail "SIGTERM: process exits" "still running 15 s after SIGTERM" "exit 0"
    fi
    SLUICE_PID=
fi

t_done

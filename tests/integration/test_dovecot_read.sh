#!/usr/bin/env bash
# A real Dovecot reads what sluice wrote: messages of many sizes and shapes
# (empty body to 4 MB, long lines, dots, 8-bit, two recipients, BDAT chunks, a
# +detail folder) are delivered through sluice, then Dovecot (temp config,
# mail_location = maildir:<mail_root>/%d/%n) must report the right counts and
# sizes (doveadm mailbox status / fetch) and serve each message over IMAP
# exactly as sent, with RFC822.SIZE matching the bytes it serves, which holds
# only if sluice's S= and W= in the file names are right.
source "$(dirname "$0")/lib.sh"
t_init
t_need dovecot doveadm

read -r LMTP_PORT IMAP_PORT < <(free_ports 2 | tr '\n' ' ')
export LMTP_PORT IMAP_PORT MAIL_ROOT
userdb_demo 3
mkdir -p "$MAIL_ROOT/example.test/user0002/.lists/"{cur,new,tmp}
chmod 700 "$MAIL_ROOT/example.test/user0002/.lists/"{cur,new,tmp}
: >"$MAIL_ROOT/example.test/user0002/.lists/maildirfolder"

CONF=$T_WORK/sluice.conf
sluice_conf "$CONF" detail_mailbox=yes message_size_max=50M
sluice_start "$CONF"
t_py "deliver" "$LIB_DIR/dovecot_read.py" deliver "$T_WORK/expect.json"
sluice_stop
t_eq "sluice exits 0 on SIGTERM" "$SLUICE_RC" 0

# Dovecot refuses mail uid 0: hand the Maildirs to the uid of its static userdb.
chown -R 65534:65534 "$MAIL_ROOT"
rm -f "$T_WORK/passwd"   # static userdb (see dovecot_conf)
DOVECOT_IMAP_PORT=$IMAP_PORT
dovecot_conf "$T_WORK/dovecot" imap
if ! dovecot_start "$T_WORK/dovecot" "$IMAP_PORT"; then
    t_fail "dovecot starts (imap on $IMAP_PORT)" "$(tail -n 5 "$T_WORK/dovecot/dovecot.log")" "listening"
    t_done
fi
DOVEADM_CONF=$T_WORK/dovecot/dovecot.conf t_py "verify" "$LIB_DIR/dovecot_read.py" verify "$T_WORK/expect.json"
t_eq "dovecot logged no errors about the Maildir" \
    "$(grep -Ei 'error|panic|fatal|corrupt|broken' "$T_WORK/dovecot/dovecot.log" | head -n 5)" ""
t_done

#!/usr/bin/env bash
# A real Postfix 3.7 (from a temp config dir) in front of sluice:
# virtual_transport = lmtp:inet:127.0.0.1:<sluice>. Mail goes in over SMTP
# (swaks, and python smtplib for a larger byte-exact message) and must come out
# in the Maildirs: known users delivered (status=sent, 250 2.0.0 ... Saved),
# two recipients in one LMTP transaction as hard links, an unknown and an
# inactive user bounced with sluice's 5xx text (the bounces themselves are
# delivered to postmaster@ through sluice), a store failure deferred (4xx).
source "$(dirname "$0")/lib.sh"
t_init
t_need postfix postconf postqueue swaks

read -r LMTP_PORT SMTP_PORT < <(free_ports 2 | tr '\n' ' ')
userdb_demo 3
userdb_add off@example.test --inactive
userdb_add broken@example.test
mkdir -p "$MAIL_ROOT/example.test"
echo "not a directory" >"$MAIL_ROOT/example.test/broken"

CONF=$T_WORK/sluice.conf
sluice_conf "$CONF"
sluice_start "$CONF"

PF=$T_WORK/postfix
if ! postfix_start "$PF" "$SMTP_PORT" "inet:127.0.0.1:$LMTP_PORT"; then
    t_fail "postfix starts on 127.0.0.1:$SMTP_PORT" "$(tail -n 5 "$PF/log/postfix.log" "$PF/log/start-fg.out" 2>&1)" "listening"
    t_done
fi
t_ok "postfix listening on 127.0.0.1:$SMTP_PORT"
PFLOG=$PF/log/postfix.log

swaks_smtp() {
    timeout 60 swaks --server 127.0.0.1 --port "$SMTP_PORT" --helo client.test "$@" 2>&1
}
out=$(swaks_smtp --from sender@example.org --to user0001@example.test --header "Subject: pf-single")
t_eq "swaks -> postfix: single recipient accepted (exit)" "$?" 0
out=$(swaks_smtp --from sender@example.org --to user0001@example.test,user0002@example.test \
    --header "Subject: pf-double")
t_eq "swaks -> postfix: two recipients accepted (exit)" "$?" 0
out=$(swaks_smtp --from postmaster@example.test --to nobody@example.test --header "Subject: pf-unknown")
t_eq "swaks -> postfix: unknown user queued (postfix has no recipient map; the LMTP RCPT rejects)" "$?" 0
out=$(swaks_smtp --from postmaster@example.test --to off@example.test --header "Subject: pf-inactive")
t_eq "swaks -> postfix: inactive user queued" "$?" 0
out=$(swaks_smtp --from sender@example.org --to broken@example.test --header "Subject: pf-broken")
t_eq "swaks -> postfix: broken-maildir user queued" "$?" 0

# A 5 MB message with exact bytes, through smtplib.
BIGMSG=$T_WORK/big.eml
python3 - "$BIGMSG" "$SMTP_PORT" <<'PY'
import smtplib, sys
lines = [b"From: <sender@example.org>", b"To: <user0002@example.test>", b"Subject: pf-big",
         b"Date: Mon, 23 Nov 2026 12:00:00 +0000", b"Message-ID: <pf-big@itest.sluice>", b""]
for i in range(65000):   # about 5 MB: Postfix writes it as fast as the socket takes it
    ln = ("%06d " % i + "0123456789abcdefghijklmnopqrstuvwxyz" * 2).encode()
    if i % 50 == 7:
        ln = b"." + ln
    lines.append(ln)
lines.append(b"END pf-big")
msg = b"\r\n".join(lines) + b"\r\n"
open(sys.argv[1], "wb").write(msg)
with smtplib.SMTP("127.0.0.1", int(sys.argv[2]), local_hostname="client.test", timeout=30) as s:
    s.sendmail("sender@example.org", ["user0002@example.test"], msg)
PY
t_eq "smtplib -> postfix: 5 MB message accepted" "$?" 0

# ---------------------------------------------------------------- wait for delivery
# sent: user0001 x2, user0002 x2, postmaster x2 (bounces); bounced: 2; deferred: >= 1
t_log "waiting for postfix to deliver"
end=$((SECONDS + 60))
while [ $SECONDS -lt $end ]; do
    sent=$(grep -c 'status=sent' "$PFLOG" 2>/dev/null)
    bounced=$(grep -c 'status=bounced' "$PFLOG" 2>/dev/null)
    deferred=$(grep -c 'status=deferred' "$PFLOG" 2>/dev/null)
    if [ "$sent" -ge 6 ] && [ "$bounced" -ge 2 ] && [ "$deferred" -ge 1 ]; then break; fi
    sleep 0.5
done
queue=$(timeout 20 postqueue -c "$PF/etc" -j 2>/dev/null)
t_log "postfix: sent=$sent bounced=$bounced deferred=$deferred"

logline() { grep "to=<$1>" "$PFLOG" | grep "status=$2" | head -n 1; }
for u in user0001 user0002; do
    l=$(logline "$u@example.test" sent)
    t_match "postfix log: $u status=sent with sluice's Saved reply" "$l" \
        "relay=127\.0\.0\.1\[127\.0\.0\.1\]:$LMTP_PORT,.* status=sent \(250 2\.0\.0 <$u@example\.test> [^ ]+ Saved\)"
done
l=$(logline postmaster@example.test sent)
t_match "postfix log: bounce delivered to postmaster via sluice" "$l" "status=sent \(250 2\.0\.0 <postmaster@example\.test> [^ ]+ Saved\)"
t_match "postfix log: unknown user bounced with sluice's 550 5.1.1" "$(logline nobody@example.test bounced)" \
    "status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.1\.1 <nobody@example\.test> User doesn't exist: nobody@example\.test \(in reply to RCPT TO command\)\)"
t_match "postfix log: inactive user bounced with sluice's 550 5.2.1" "$(logline off@example.test bounced)" \
    "status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.2\.1 <off@example\.test> Mailbox disabled \(in reply to RCPT TO command\)\)"
t_match "postfix log: store failure deferred with 451 4.3.0" "$(logline broken@example.test deferred)" \
    "status=deferred \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 451 4\.3\.0 <broken@example\.test> Temporary internal error \(in reply to end of DATA command\)\)"
t_eq "postfix queue: only the deferred message for broken@ is left" \
    "$(printf '%s\n' "$queue" | python3 -c 'import json, sys
print(sorted(r["address"] for ln in sys.stdin if ln.strip() for r in json.loads(ln)["recipients"]))')" \
    "['broken@example.test']"
t_eq "postfix log: the 5 MB message was never deferred" \
    "$(grep 'to=<user0002@example.test>' "$PFLOG" | grep -c 'status=deferred')" 0
t_eq "postfix log: no LMTP connection or protocol trouble" \
    "$(grep 'postfix/lmtp' "$PFLOG" | grep -Ei 'lost connection|protocol error|unexpected|malformed|timed out|refused' | head -n 3)" ""

# ---------------------------------------------------------------- mailboxes
T_PY_TIMEOUT=60
t_py "postfix mailboxes" - "$MAIL_ROOT" "$BIGMSG" <<'PY'
import os, re, sys
from itest import CHECK, list_new, read, split_added, check_name, show
root, big = sys.argv[1], sys.argv[2]

def subject(data):
    m = re.search(rb"(?mi)^Subject: (.*)$", data)
    return m.group(1).decode() if m else None

def by_subject(user):
    out = {}
    for p in list_new(root, user):
        d = read(p)
        out.setdefault(subject(d), []).append((p, d))
    return out

u1, u2, pm = by_subject("user0001"), by_subject("user0002"), by_subject("postmaster")
CHECK.eq("user0001 got pf-single and pf-double", sorted(k for k in u1), ["pf-double", "pf-single"])
CHECK.eq("user0002 got pf-big and pf-double", sorted(k for k in u2), ["pf-big", "pf-double"])
for name, box in (("user0001", u1), ("user0002", u2)):
    for subj, items in box.items():
        CHECK.eq(f"{name}: {subj} delivered once", len(items), 1)
        for p, d in items:
            check_name(f"{name} {subj}", p, d)
            added, order, rest = split_added(d)
            CHECK.eq(f"{name} {subj}: Return-Path", added.get("return-path"), "<sender@example.org>")
            CHECK.true(f"{name} {subj}: postfix's Received follows sluice's",
                       rest.startswith(b"Received: from client.test"), show(rest[:80]),
                       "Received: from client.test ...")
            if subj == "pf-double":
                CHECK.eq(f"{name} {subj}: no Delivered-To (two recipients)", added.get("delivered-to"), None)
            else:
                CHECK.true(f"{name} {subj}: Delivered-To", added.get("delivered-to") in
                           (f"{name}@example.test", f"<{name}@example.test>"),
                           added.get("delivered-to"), f"{name}@example.test")
if "pf-double" in u1 and "pf-double" in u2:
    a, b = os.stat(u1["pf-double"][0][0]), os.stat(u2["pf-double"][0][0])
    CHECK.eq("pf-double: one inode for both recipients (hard link)", (a.st_dev, a.st_ino), (b.st_dev, b.st_ino))
if "pf-big" in u2:
    want = read(big).replace(b"\r\n", b"\n")
    got = split_added(u2["pf-big"][0][1])[2]
    CHECK.true("pf-big: message byte-exact after postfix's headers", got.endswith(b"\n" + want),
               f"{len(got)} bytes, tail {show(got[-120:])}", f"ends with the {len(want)} bytes sent")
bounces = [d for items in pm.values() for _p, d in items]
CHECK.eq("postmaster got two bounces", len(bounces), 2)
text = b"\n".join(bounces)
CHECK.true("a bounce quotes sluice's 550 5.1.1 for nobody@", b"550 5.1.1 <nobody@example.test> User doesn't exist" in text,
           show(text[:300]), "the 550 5.1.1 text")
CHECK.true("a bounce quotes sluice's 550 5.2.1 for off@", b"550 5.2.1 <off@example.test> Mailbox disabled" in text,
           show(text[:300]), "the 550 5.2.1 text")
CHECK.eq("nothing for broken@ (its maildir path is a file)", os.path.isfile(os.path.join(root, "example.test", "broken")), True)
CHECK.done()
PY

left=$(leftover_tmp "$MAIL_ROOT" | wc -l)
t_eq "nothing left in any tmp/" "$left" 0

postfix_stop "$PF"
T_POSTFIX_DIRS=()
sluice_stop
t_eq "sluice exits 0 on SIGTERM" "$SLUICE_RC" 0
t_done

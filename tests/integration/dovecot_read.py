"""Deliveries through sluice read back by a real Dovecot (test_dovecot_read.sh).

usage: dovecot_read.py deliver EXPECT.json      (env LMTP_PORT)
       dovecot_read.py verify EXPECT.json       (env MAIL_ROOT, DOVEADM_CONF, IMAP_PORT)

deliver sends messages of many sizes and shapes (DATA and BDAT, one and two
recipients, a +detail folder) and writes what it sent per mailbox. verify asks
Dovecot: doveadm mailbox status (messages, vsize), doveadm fetch (size.physical,
size.virtual per message) and IMAP (RFC822.SIZE and BODY[] per message), and
compares with the files and with what was sent.
"""

import base64
import imaplib
import json
import os
import re
import subprocess
import sys

from itest import CHECK, Lmtp, dot_stuff, env, make_msg, read, show, split_added

SENDER = "sender@example.org"


def lmtp_send(c, rcpts, msg, chunks=None):
    label = re.search(rb"Message-ID: <([^@>]+)", msg).group(1).decode()
    c.send(f"MAIL FROM:<{SENDER}>\r\n" + "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts))
    reps = c.replies(1 + len(rcpts))
    if reps != ["250 2.1.0 OK"] + ["250 2.1.5 OK"] * len(rcpts):
        return CHECK.fail(f"{label}: envelope accepted", reps, "250 ...")
    if chunks is None:
        c.send("DATA\r\n")
        r = c.r()
        if r != "354 OK":
            return CHECK.fail(f"{label}: DATA", r, "354 OK")
        c.send(dot_stuff(msg))
    else:
        pos = 0
        for i, n in enumerate(chunks):
            last = i == len(chunks) - 1
            part = msg[pos:] if last else msg[pos:pos + n]
            pos += len(part)
            c.send(f"BDAT {len(part)}{' LAST' if last else ''}\r\n".encode() + part)
            if not last:
                r = c.r()
                if r != f"250 2.0.0 Added {len(part)} octets":
                    return CHECK.fail(f"{label}: BDAT chunk", r, f"250 2.0.0 Added {len(part)} octets")
    reps = c.replies(len(rcpts))
    good = all(re.fullmatch(r"250 2\.0\.0 <" + re.escape(r) + r"> \S+ Saved", x)
               for r, x in zip(rcpts, reps))
    return CHECK.true(f"{label}: delivered to {', '.join(rcpts)}", good, reps, "Saved for each")


def connect():
    c = Lmtp(("127.0.0.1", int(env("LMTP_PORT"))), timeout=60)
    c.r()
    c.send("LHLO client.test\r\n")
    c.reply()
    return c


def deliver(out):
    """Sends every message; a failure is reported and the rest still go (on a new
    connection). Only what was acknowledged is expected in the Maildirs."""
    sent = {"user0001/INBOX": [], "user0002/INBOX": [], "user0002/lists": []}
    todo = []
    plain = [("empty-body", 0, 78), ("one-line", 10, 78), ("one-kb", 1024, 78),
             ("sixty-four-kb", 65536, 78), ("one-mb", 1 << 20, 200),
             ("four-mb-long-lines", 4 << 20, 990)]
    for marker, size, ll in plain:
        if marker == "empty-body":
            msg = f"Subject: {marker}\r\nMessage-ID: <{marker}@itest.sluice>\r\n\r\n".encode()
        else:
            msg = make_msg(marker, size, line_len=ll)
        todo.append((["user0001@example.test"], msg, None, ["user0001/INBOX"]))
    marker = "dots-8bit"
    msg = (f"Subject: {marker}\r\nMessage-ID: <{marker}@itest.sluice>\r\n\r\n".encode()
           + b".\r\n..\r\n. .\r\ncaf\xc3\xa9 \xe2\x82\xac\r\n\r\n\r\nlast\r\n")
    todo.append((["user0001@example.test"], msg, None, ["user0001/INBOX"]))
    todo.append((["user0001@example.test", "user0002@example.test"], make_msg("two-rcpts", 10000),
                 None, ["user0001/INBOX", "user0002/INBOX"]))
    todo.append((["user0001@example.test"], make_msg("bdat-chunks", 200000),
                 [65536, 1, 70001, 0], ["user0001/INBOX"]))
    todo.append((["user0002+lists@example.test"], make_msg("detail-folder", 5000), None,
                 ["user0002/lists"]))
    c = None
    for rcpts, msg, chunks, boxes in todo:
        mid = re.search(rb"Message-ID: (<[^>]+>)", msg).group(1).decode()
        try:
            if c is None:
                c = connect()
            ok = lmtp_send(c, rcpts, msg, chunks)
        except OSError as e:
            ok = CHECK.fail(f"{mid}: delivered", f"{type(e).__name__}: {e}", "Saved")
        if ok:
            for b in boxes:
                sent[b].append((mid, msg))
        else:
            if c:
                c.close()
            c = None
    if c:
        c.cmd("QUIT")
    with open(out, "w") as f:
        json.dump({k: [(mid, base64.b64encode(m).decode()) for mid, m in v]
                   for k, v in sent.items()}, f)
    CHECK.done()


def doveadm(*args):
    conf = env("DOVEADM_CONF")
    p = subprocess.run(["doveadm", "-c", conf] + list(args), capture_output=True, timeout=60)
    if p.returncode != 0:
        CHECK.fail(f"doveadm {' '.join(args)}", p.stderr.decode(errors="replace")[-500:], "exit 0")
    return p.stdout.decode("utf-8", "replace")


def verify(path):
    mail_root = env("MAIL_ROOT")
    with open(path) as f:
        sent = {k: [(mid, base64.b64decode(m)) for mid, m in v] for k, v in json.load(f).items()}
    imap = imaplib.IMAP4("127.0.0.1", int(env("IMAP_PORT")))
    for box, msgs in sent.items():
        user, folder = box.split("/")
        addr = f"{user}@example.test"
        mailbox = folder
        # Dovecot may have moved them to cur/ already; gather both
        d = os.path.join(mail_root, "example.test", user, "" if folder == "INBOX" else "." + folder)
        files = []
        for sub in ("new", "cur"):
            p = os.path.join(d, sub)
            if os.path.isdir(p):
                files += [os.path.join(p, x) for x in os.listdir(p)]
        by_mid = {}
        for p in files:
            data = read(p)
            m = re.search(rb"(?mi)^Message-ID: (\S+)$", data)
            by_mid[m.group(1).decode() if m else None] = data
        want_vsize = sum(len(d) + d.count(b"\n") for d in by_mid.values())
        st = doveadm("-f", "flow", "mailbox", "status", "-u", addr, "messages vsize", mailbox)
        m = re.search(r"messages=(\d+)\s+vsize=(\d+)", st)
        got = (int(m.group(1)), int(m.group(2))) if m else st.strip()
        CHECK.eq(f"doveadm mailbox status {box}: messages, vsize", got, (len(msgs), want_vsize))
        out = doveadm("-f", "flow", "fetch", "-u", addr,
                      "hdr.message-id size.physical size.virtual", "mailbox", mailbox, "all")
        fetched = {}
        for ln in out.splitlines():
            mm = re.search(r"hdr\.message-id=(\S*)\s+size\.physical=(\d+)\s+size\.virtual=(\d+)", ln)
            if mm:
                fetched[mm.group(1)] = (int(mm.group(2)), int(mm.group(3)))
        CHECK.eq(f"doveadm fetch {box}: the Message-IDs sent", sorted(fetched), sorted(m for m, _ in msgs))
        typ, _ = imap.login(addr, "secret")
        typ, data = imap.select(mailbox, readonly=True)
        CHECK.eq(f"IMAP SELECT {box}: EXISTS", int(data[0]), len(msgs))
        bodies = {}
        if int(data[0]) > 0:
            typ, data = imap.fetch("1:*", "(RFC822.SIZE BODY.PEEK[])")
            for item in data:
                if not isinstance(item, tuple):
                    continue
                size = int(re.search(rb"RFC822\.SIZE (\d+)", item[0]).group(1))
                body = item[1]
                mid = re.search(rb"(?mi)^Message-ID: (\S+)\r$", body)
                bodies[mid.group(1).decode() if mid else None] = (size, body)
        imap.close()
        imap.logout()
        imap = imaplib.IMAP4("127.0.0.1", int(env("IMAP_PORT")))
        for mid, msg in msgs:
            data = by_mid.get(mid)
            if data is None:
                CHECK.fail(f"{box} {mid}: file present", "missing", "a file in new/ or cur/")
                continue
            phys, virt = len(data), len(data) + data.count(b"\n")
            CHECK.eq(f"{box} {mid}: doveadm size.physical, size.virtual", fetched.get(mid), (phys, virt))
            size, body = bodies.get(mid, (None, b""))
            CHECK.eq(f"{box} {mid}: IMAP RFC822.SIZE", size, virt)
            CHECK.eq(f"{box} {mid}: IMAP BODY[] is the file with CRLF", len(body), virt)
            rest = split_added(body.replace(b"\r\n", b"\n"))[2].replace(b"\n", b"\r\n")
            if rest == msg:
                CHECK.ok(f"{box} {mid}: IMAP BODY[] after sluice's headers is what was sent")
            else:
                CHECK.fail(f"{box} {mid}: IMAP BODY[] after sluice's headers is what was sent",
                           f"{len(rest)} bytes {show(rest[:120])}", f"{len(msg)} bytes {show(msg[:120])}")
    imap.logout()
    CHECK.done()


if __name__ == "__main__":
    {"deliver": deliver, "verify": verify}[sys.argv[1]](sys.argv[2])

"""LMTP reply checks for test_replies.sh, one section per sluice instance.

usage: replies.py SECTION   (main | idle | conn | allow | userdbfail | diskfull | sighup | sigterm)
Environment: LMTP_PORT, LMTP_SOCK, MAIL_ROOT, SLUICE_PID, SLUICE_CONF, SLUICE_LOG, USERDB,
SIZE_MAX (bytes, main), RCPT_MAX (main).
"""

import email.utils
import os
import re
import signal
import socket
import sqlite3
import stat
import sys
import time
import traceback

from itest import (CHECK, HOST, Lmtp, Closed, check_name, crlf_to_lf, dot_stuff, env, list_new,
                   make_msg, read, show, split_added, user_dir, wait_for)

PORT = int(env("LMTP_PORT"))
T = ("127.0.0.1", PORT)
MAIL_ROOT = env("MAIL_ROOT")
SENDER = "sender@example.org"
GREETING = f"220 {HOST} sluice ready."
SAVED = r"250 2\.0\.0 <{}> (\S+) Saved"


def esc(s):
    return re.escape(s)


def saved_re(rcpt):
    return SAVED.format(esc(rcpt))


def subtest(fn):
    """Runs one subtest; an exception is reported as a failure, the rest go on."""
    def run():
        print(f"# --- {fn.__name__}", flush=True)
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - report and continue
            CHECK.fail(f"{fn.__name__}: raised {type(e).__name__}", show(str(e)),
                       "no exception")
            traceback.print_exc(file=sys.stdout)
    run.__name__ = fn.__name__
    return run


def open_session(target=T, lhlo=True, what="session"):
    c = Lmtp(target)
    g = c.r()
    if g != GREETING:
        CHECK.fail(f"{what}: greeting", g, GREETING)
    if lhlo:
        c.send("LHLO client.test\r\n")
        rep = c.r()
        if not rep.startswith("250"):
            CHECK.fail(f"{what}: LHLO accepted", rep, "250 ...")
    return c


def snap(users, folder=""):
    return {u: set(list_new(MAIL_ROOT, u, folder=folder)) for u in users}


def added_files(before, user, folder=""):
    return sorted(set(list_new(MAIL_ROOT, user, folder=folder)) - before[user])


def check_delivery(what, path, msg, rcpt, sid=None, single=True, sender=SENDER):
    """Checks one delivered file: the prepended headers, then the message byte-exact (LF)."""
    data = read(path)
    check_name(what, path, data)
    added, order, rest = split_added(data)
    CHECK.eq(f"{what}: Return-Path header", added.get("return-path"), f"<{sender}>")
    if single:
        dt = added.get("delivered-to")
        if dt in (rcpt, f"<{rcpt}>"):
            CHECK.ok(f"{what}: Delivered-To header")
        else:
            CHECK.fail(f"{what}: Delivered-To header", dt, f"{rcpt} (or <{rcpt}>)")
    else:
        CHECK.eq(f"{what}: no Delivered-To with several recipients", added.get("delivered-to"),
                 None)
    rec = added.get("received")
    if CHECK.match(f"{what}: Received header", rec,
                   r"from .* by " + esc(HOST) + r" .*with (UTF8)?LMTP[SA]*\b.* id \S+.*; .+"):
        m = re.search(r" id (\S+)", rec)
        if sid is not None and m:
            rid = m.group(1).rstrip(";")
            CHECK.eq(f"{what}: Received id is the session id of the Saved reply", rid, sid)
        date = rec.rsplit(";", 1)[1].strip()
        try:
            ts = email.utils.parsedate_to_datetime(date).timestamp()
            CHECK.true(f"{what}: Received date is now", abs(ts - time.time()) < 600, date,
                       "an RFC 5322 date within 10 minutes")
        except (TypeError, ValueError):
            CHECK.fail(f"{what}: Received date parses", date, "RFC 5322 date")
    # continuation lines of the Received header start with a TAB
    start = data.find(b"Received:")
    if start >= 0:
        hdr_lines = []
        for ln in data[start:].split(b"\n")[1:]:
            if ln[:1] in (b" ", b"\t"):
                hdr_lines.append(ln)
            else:
                break
        bad = [ln for ln in hdr_lines if not ln.startswith(b"\t")]
        CHECK.eq(f"{what}: Received continuation lines start with TAB", bad, [])
    CHECK.true(f"{what}: no CR in the stored file (mail_crlf = no)", b"\r" not in data,
               show(data[:200]), "LF line ends only")
    want = crlf_to_lf(msg)
    if rest == want:
        CHECK.ok(f"{what}: message body byte-exact")
    else:
        i = next((k for k in range(min(len(rest), len(want))) if rest[k] != want[k]),
                 min(len(rest), len(want)))
        CHECK.fail(f"{what}: message byte-exact after the added headers",
                   f"{len(rest)} bytes, differs at {i}: {show(rest[max(0, i - 40):i + 80])}",
                   f"{len(want)} bytes: {show(want[max(0, i - 40):i + 80])}")
    return data


def deliver(c, rcpts, msg, sender=SENDER, what="delivery"):
    """MAIL/RCPT.../DATA one step at a time; returns the per-recipient replies."""
    CHECK.eq(f"{what}: MAIL", c.cmd(f"MAIL FROM:<{sender}>"), "250 2.1.0 OK")
    for r in rcpts:
        CHECK.eq(f"{what}: RCPT {r}", c.cmd(f"RCPT TO:<{r}>"), "250 2.1.5 OK")
    CHECK.eq(f"{what}: DATA", c.cmd("DATA"), "354 OK")
    c.send(dot_stuff(msg))
    return c.replies(len(rcpts))


# ====================================================================== main

@subtest
def greeting_and_lhlo():
    c = Lmtp(T)
    CHECK.eq("greeting", c.r(), GREETING)
    c.send("LHLO client.test\r\n")
    lines = c.reply()
    CHECK.eq("LHLO first line", lines[0], f"250-{HOST}")
    CHECK.true("LHLO continuation lines use 250-", all(x.startswith("250-") for x in lines[:-1]),
               lines, "250-... except the last")
    CHECK.true("LHLO last line uses '250 '", lines[-1].startswith("250 "), lines[-1], "250 ...")
    kw = sorted(x[4:] for x in lines[1:])
    want = sorted(["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "CHUNKING",
                   f"SIZE {os.environ.get('SIZE_MAX', '102400')}", "SMTPUTF8"])
    CHECK.eq("LHLO keywords", kw, want)
    CHECK.eq("QUIT", c.cmd("QUIT"), "221 2.0.0 Bye")
    closed, extra = c.closed(3)
    CHECK.true("connection closed after QUIT", closed and not extra,
                   f"closed={closed} extra={show(extra)}", "EOF")


@subtest
def command_replies():
    c = open_session()
    CHECK.eq("NOOP", c.cmd("NOOP"), "250 2.0.0 OK")
    CHECK.eq("RSET", c.cmd("RSET"), "250 2.0.0 OK")
    CHECK.eq("VRFY", c.cmd("VRFY user0001@example.test"), "252 2.3.3 Try RCPT instead")
    CHECK.eq("HELO is unknown in LMTP", c.cmd("HELO client.test"), "500 5.5.1 Unknown command")
    CHECK.eq("EHLO is unknown in LMTP", c.cmd("EHLO client.test"), "500 5.5.1 Unknown command")
    CHECK.eq("unknown command", c.cmd("FROBNICATE now"), "500 5.5.1 Unknown command")
    CHECK.eq("RCPT before MAIL", c.cmd("RCPT TO:<user0001@example.test>"),
             "503 5.5.0 MAIL needed first")
    CHECK.eq("MAIL", c.cmd(f"MAIL FROM:<{SENDER}>"), "250 2.1.0 OK")
    CHECK.eq("MAIL twice", c.cmd(f"MAIL FROM:<{SENDER}>"), "503 5.5.0 MAIL already given")
    CHECK.eq("RCPT empty path", c.cmd("RCPT TO:<>"),
             "550 5.1.1 <> Unacceptable TO: Empty path not allowed")
    CHECK.eq("RCPT unknown user", c.cmd("RCPT TO:<nobody@example.test>"),
             "550 5.1.1 <nobody@example.test> User doesn't exist: nobody@example.test")
    CHECK.eq("RCPT unknown user with +detail", c.cmd("RCPT TO:<nobody+x@example.test>"),
             "550 5.1.1 <nobody+x@example.test> User doesn't exist: nobody@example.test")
    CHECK.eq("RCPT inactive user", c.cmd("RCPT TO:<off@example.test>"),
             "550 5.2.1 <off@example.test> Mailbox disabled")
    CHECK.eq("DATA without a valid RCPT", c.cmd("DATA"), "503 5.5.0 No valid recipients")
    CHECK.eq("RSET after failed DATA", c.cmd("RSET"), "250 2.0.0 OK")
    CHECK.eq("MAIL unknown parameter", c.cmd(f"MAIL FROM:<{SENDER}> FOO=bar"),
             "555 5.5.4 Unsupported parameters")
    size_max = int(os.environ.get("SIZE_MAX", "102400"))
    CHECK.eq("MAIL SIZE= over the maximum", c.cmd(f"MAIL FROM:<{SENDER}> SIZE={size_max + 1}"),
             "552 5.3.4 Message size exceeds fixed maximum message size")
    CHECK.eq("MAIL SIZE= under the maximum", c.cmd(f"MAIL FROM:<{SENDER}> SIZE=1000"),
             "250 2.1.0 OK")
    CHECK.eq("RSET", c.cmd("RSET"), "250 2.0.0 OK")
    CHECK.eq("MAIL BODY=8BITMIME", c.cmd(f"MAIL FROM:<{SENDER}> BODY=8BITMIME"), "250 2.1.0 OK")
    CHECK.eq("RSET", c.cmd("RSET"), "250 2.0.0 OK")
    CHECK.match("MAIL non-ASCII address without SMTPUTF8", c.cmd("MAIL FROM:<jöe@example.org>"),
                r"553 5\.6\.7 .*")
    CHECK.eq("RSET", c.cmd("RSET"), "250 2.0.0 OK")
    CHECK.eq("MAIL ASCII", c.cmd(f"MAIL FROM:<{SENDER}>"), "250 2.1.0 OK")
    CHECK.match("RCPT non-ASCII address without SMTPUTF8", c.cmd("RCPT TO:<üser@example.test>"),
                r"553 5\.6\.7 .*")
    CHECK.eq("QUIT", c.cmd("QUIT"), "221 2.0.0 Bye")
    c.close()


@subtest
def single_delivery():
    rcpt = "user0001@example.test"
    before = snap(["user0001"])
    msg = make_msg("single-1", 3000)
    c = open_session()
    reps = deliver(c, [rcpt], msg, what="single")
    m = re.fullmatch(saved_re(rcpt), reps[0])
    CHECK.match("single: Saved reply", reps[0], saved_re(rcpt))
    new = added_files(before, "user0001")
    if CHECK.eq("single: one new file in new/ when the 250 arrives", len(new), 1):
        check_delivery("single", new[0], msg, rcpt, sid=m.group(1) if m else None)
    for sub in ("tmp", "new", "cur"):
        p = os.path.join(user_dir(MAIL_ROOT, "user0001"), sub)
        mode = stat.S_IMODE(os.stat(p).st_mode) if os.path.isdir(p) else None
        CHECK.eq(f"maildir {sub}/ mode", oct(mode) if mode is not None else None, "0o700")
    # a second message on the same connection, then the log line
    msg2 = make_msg("single-2", 10)
    reps = deliver(c, [rcpt], msg2, what="single second transaction")
    CHECK.match("single second transaction: Saved", reps[0], saved_re(rcpt))
    CHECK.eq("single: QUIT", c.cmd("QUIT"), "221 2.0.0 Bye")
    c.close()


@subtest
def multi_recipient_hardlinks():
    rcpts = ["user0001@example.test", "user0002@example.test", "user0003@example.test"]
    users = [r.split("@")[0] for r in rcpts]
    before = snap(users)
    msg = make_msg("multi-1", 5000)
    c = open_session()
    reps = deliver(c, rcpts, msg, what="multi")
    for r, rep in zip(rcpts, reps):
        CHECK.match(f"multi: Saved reply for {r} in RCPT order", rep, saved_re(r))
    inodes = set()
    for u, r in zip(users, rcpts):
        new = added_files(before, u)
        if CHECK.eq(f"multi: one new file for {u}", len(new), 1):
            check_delivery(f"multi {u}", new[0], msg, r, single=False)
            st = os.stat(new[0])
            inodes.add((st.st_dev, st.st_ino))
    CHECK.eq("multi: the recipients' files are hard links of one inode", len(inodes), 1)
    c.close()


@subtest
def pipelined_mix():
    rcpts = ["user0001@example.test", "nobody@example.test", "user0002@example.test",
             "off@example.test"]
    before = snap(["user0001", "user0002"])
    c = open_session()
    c.send(f"MAIL FROM:<{SENDER}>\r\n" + "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts) + "DATA\r\n")
    reps = c.replies(6)
    want = ["250 2.1.0 OK", "250 2.1.5 OK",
            "550 5.1.1 <nobody@example.test> User doesn't exist: nobody@example.test",
            "250 2.1.5 OK", "550 5.2.1 <off@example.test> Mailbox disabled", "354 OK"]
    CHECK.eq("pipelined MAIL+4 RCPT+DATA in one write: replies", reps, want)
    msg = make_msg("pipe-mix", 500)
    c.send(dot_stuff(msg))
    reps = c.replies(2)
    CHECK.match("pipelined mix: first valid recipient Saved", reps[0],
                saved_re("user0001@example.test"))
    CHECK.match("pipelined mix: second valid recipient Saved", reps[1],
                saved_re("user0002@example.test"))
    CHECK.eq("pipelined mix: no reply for rejected recipients", c.cmd("NOOP"), "250 2.0.0 OK")
    for u in ("user0001", "user0002"):
        new = added_files(before, u)
        if CHECK.eq(f"pipelined mix: one file for {u}", len(new), 1):
            check_delivery(f"pipelined mix {u}", new[0], msg, f"{u}@example.test", single=False)
    c.close()


@subtest
def pipelined_everything_and_duplicates():
    """LHLO, two whole transactions (with body) and QUIT in a single write."""
    before = snap(["user0001", "user0002", "user0003"])
    m1 = make_msg("pipe-all-1", 800)
    m2 = make_msg("pipe-all-2", 300)
    stream = (b"LHLO client.test\r\n"
              + f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<user0001@example.test>\r\n"
                "RCPT TO:<user0001@example.test>\r\nRCPT TO:<user0002@example.test>\r\n"
                "DATA\r\n".encode() + dot_stuff(m1)
              + f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<user0003@example.test>\r\nDATA\r\n".encode()
              + dot_stuff(m2) + b"QUIT\r\n")
    c = Lmtp(T)
    CHECK.eq("pipelined-all: greeting", c.r(), GREETING)
    c.send(stream)
    lhlo = c.reply()
    CHECK.eq("pipelined-all: LHLO", lhlo[0], f"250-{HOST}")
    reps = c.replies(13)
    want = ["250 2.1.0 OK", "250 2.1.5 OK", "250 2.1.5 OK", "250 2.1.5 OK", "354 OK",
            saved_re("user0001@example.test"), saved_re("user0001@example.test"),
            saved_re("user0002@example.test"),
            "250 2.1.0 OK", "250 2.1.5 OK", "354 OK", saved_re("user0003@example.test"),
            "221 2.0.0 Bye"]
    got_ok = len(reps) == len(want) and all(
        re.fullmatch(w, g) if "\\" in w else g == w for g, w in zip(reps, want))
    if not got_ok:
        CHECK.fail("pipelined-all: replies (duplicate RCPT gets its own Saved)", reps, want)
    else:
        CHECK.ok("pipelined-all: replies (duplicate RCPT gets its own Saved)")
    n1 = added_files(before, "user0001")
    CHECK.true("pipelined-all: duplicate recipient has the message", len(n1) >= 1, len(n1), ">= 1")
    print(f"# duplicate RCPT stored {len(n1)} file(s) for user0001")
    if n1:
        check_delivery("pipelined-all user0001", n1[0], m1, "user0001@example.test",
                       single=False)
    n3 = added_files(before, "user0003")
    if CHECK.eq("pipelined-all: second transaction delivered", len(n3), 1):
        check_delivery("pipelined-all user0003", n3[0], m2, "user0003@example.test")
    closed, extra = c.closed(3)
    CHECK.true("pipelined-all: closed after QUIT", closed and not extra,
                   f"closed={closed} extra={show(extra)}", "EOF")


@subtest
def content_edge_cases():
    rcpt = "user0001@example.test"
    c = open_session()
    cases = {
        "headers only": b"Subject: empty body\r\nMessage-ID: <edge-1@itest>\r\n\r\n",
        "no body no blank line": b"Subject: just a header\r\n",
        "dots and 8bit": (b"Subject: dots\r\n\r\n.\r\n..\r\n...\r\n. x\r\n.x\r\nx.\r\n"
                          b"caf\xc3\xa9 \xe2\x82\xac \xff\xfe raw 8bit\r\n\r\n\r\n"
                          b"trailing blank lines above\r\n"),
        "long body line": b"Subject: long\r\n\r\n" + b"y" * 3990 + b"\r\nend\r\n",
        "tabs and spaces": b"Subject: ws\r\n\r\n\tindented\r\n  spaces  \r\nlast line\r\n",
    }
    for name, msg in cases.items():
        before = snap(["user0001"])
        reps = deliver(c, [rcpt], msg, what=f"edge '{name}'")
        m = re.fullmatch(saved_re(rcpt), reps[0])
        CHECK.match(f"edge '{name}': Saved", reps[0], saved_re(rcpt))
        new = added_files(before, "user0001")
        if CHECK.eq(f"edge '{name}': one file", len(new), 1):
            check_delivery(f"edge '{name}'", new[0], msg, rcpt, sid=m.group(1) if m else None)
    c.close()


@subtest
def split_writes():
    """The DATA stream cut at every awkward place: byte by byte, and the final dot split."""
    rcpt = "user0002@example.test"
    c = open_session()
    msg = make_msg("split-bytes", 600)
    before = snap(["user0002"])
    c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n")
    CHECK.eq("split: envelope", c.replies(3), ["250 2.1.0 OK", "250 2.1.5 OK", "354 OK"])
    payload = dot_stuff(msg)
    for i in range(len(payload)):
        c.send(payload[i:i + 1])
    rep = c.r()
    CHECK.match("split: one byte per write: Saved", rep, saved_re(rcpt))
    new = added_files(before, "user0002")
    if CHECK.eq("split: one byte per write: one file", len(new), 1):
        check_delivery("split bytes", new[0], msg, rcpt)
    for cut in (b"\r\n", b"\r\n.", b"\r\n.\r"):
        before = snap(["user0002"])
        msg = make_msg("split-dot", 200)
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n")
        c.replies(3)
        payload = dot_stuff(msg)
        tail = b"\r\n.\r\n"
        head = payload[:-len(tail)] + cut
        c.send(head)
        time.sleep(0.2)
        try:
            early = c.line(0.3)
        except socket.timeout:
            early = None
        CHECK.eq(f"split at {cut!r}: no reply before the final dot", early, None)
        c.send(tail[len(cut):])
        CHECK.match(f"split at {cut!r}: Saved", c.r(), saved_re(rcpt))
        new = added_files(before, "user0002")
        if CHECK.eq(f"split at {cut!r}: one file", len(new), 1):
            check_delivery(f"split at {cut!r}", new[0], msg, rcpt)
    c.close()


@subtest
def size_limit():
    size_max = int(os.environ.get("SIZE_MAX", "102400"))
    rcpts = ["user0001@example.test", "user0002@example.test"]
    before = snap(["user0001", "user0002"])
    c = open_session()
    msg = make_msg("too-big", size_max + 50000)
    reps = deliver(c, rcpts, msg, what="too big")
    for r, rep in zip(rcpts, reps):
        CHECK.eq(f"too big: reply for {r}", rep,
                 f"552 5.3.4 <{r}> Message size exceeds fixed maximum message size")
    for u in ("user0001", "user0002"):
        CHECK.eq(f"too big: nothing delivered to {u}", added_files(before, u), [])
    CHECK.eq("too big: session usable afterwards", c.cmd("NOOP"), "250 2.0.0 OK")
    small = make_msg("after-too-big", 100)
    reps = deliver(c, rcpts[:1], small, what="after too big")
    CHECK.match("after too big: Saved", reps[0], saved_re(rcpts[0]))
    c.close()


@subtest
def too_many_recipients():
    n = int(os.environ.get("RCPT_MAX", "5"))
    c = open_session()
    c.send(f"MAIL FROM:<{SENDER}>\r\n")
    CHECK.eq("rcpt limit: MAIL", c.r(), "250 2.1.0 OK")
    users = [f"user{(i % 3) + 1:04d}@example.test" for i in range(n)]
    # distinct addresses via +detail so duplicates are not in play
    rcpts = [u.replace("@", f"+r{i}@") for i, u in enumerate(users)]
    for r in rcpts:
        CHECK.eq(f"rcpt limit: RCPT {r}", c.cmd(f"RCPT TO:<{r}>"), "250 2.1.5 OK")
    CHECK.eq(f"rcpt limit: RCPT number {n + 1}", c.cmd("RCPT TO:<user0001@example.test>"),
             "452 4.5.3 Too many recipients")
    CHECK.eq("rcpt limit: DATA", c.cmd("DATA"), "354 OK")
    c.send(dot_stuff(make_msg("rcpt-limit", 100)))
    reps = c.replies(n)
    for r, rep in zip(rcpts, reps):
        CHECK.match(f"rcpt limit: Saved for {r}", rep, saved_re(r))
    CHECK.eq("rcpt limit: no extra reply", c.cmd("NOOP"), "250 2.0.0 OK")
    c.close()


@subtest
def long_line():
    c = open_session()
    CHECK.eq("line too long", c.cmd("NOOP " + "x" * 5000), "500 5.5.2 Line too long")
    CHECK.eq("session usable after a too long line", c.cmd("NOOP"), "250 2.0.0 OK")
    CHECK.eq("MAIL after a too long line", c.cmd(f"MAIL FROM:<{SENDER}>"), "250 2.1.0 OK")
    CHECK.eq("RCPT with a too long line", c.cmd("RCPT TO:<" + "a" * 5000 + "@example.test>"),
             "500 5.5.2 Line too long")
    CHECK.eq("session usable after the second too long line", c.cmd("NOOP"), "250 2.0.0 OK")
    c.close()


@subtest
def bad_commands_limit():
    c = open_session()
    c.send("BOGUS\r\n" * 12)
    reps = c.replies(11)
    want = ["500 5.5.1 Unknown command"] * 10 + [f"421 4.7.0 {HOST} Too many invalid commands."]
    CHECK.eq("11th bad command: 421 after 10 x 500", reps, want)
    closed, extra = c.closed(3)
    CHECK.true("closed after too many invalid commands", closed and not extra,
                   f"closed={closed} extra={show(extra)}", "EOF")


@subtest
def bdat():
    rcpts = ["user0001@example.test", "user0002@example.test"]
    before = snap(["user0001", "user0002"])
    c = open_session()
    CHECK.eq("BDAT: MAIL", c.cmd(f"MAIL FROM:<{SENDER}>"), "250 2.1.0 OK")
    for r in rcpts:
        CHECK.eq(f"BDAT: RCPT {r}", c.cmd(f"RCPT TO:<{r}>"), "250 2.1.5 OK")
    msg = (b"Subject: bdat\r\nMessage-ID: <bdat-1@itest>\r\n\r\n..not stuffed in BDAT\r\n"
           b".\r\nline after a lone dot\r\nlast\r\n")
    cut = msg.index(b"..not") + 5
    cut = msg.index(b"\r\n", cut) + 1     # the first chunk ends between CR and LF
    c1, c2 = msg[:cut], msg[cut:]
    c.send(f"BDAT {len(c1)}\r\n".encode() + c1)
    CHECK.eq("BDAT non-LAST chunk", c.r(), f"250 2.0.0 Added {len(c1)} octets")
    c.send(f"BDAT {len(c2)} LAST\r\n".encode() + c2)
    reps = c.replies(2)
    for r, rep in zip(rcpts, reps):
        CHECK.match(f"BDAT LAST: Saved for {r}", rep, saved_re(r))
    for u, r in zip(("user0001", "user0002"), rcpts):
        new = added_files(before, u)
        if CHECK.eq(f"BDAT: one file for {u}", len(new), 1):
            check_delivery(f"BDAT {u}", new[0], msg, r, single=False)
    # pipelined, with an empty LAST chunk
    before = snap(["user0003"])
    msg2 = b"Subject: bdat2\r\n\r\n" + b"z" * 1000 + b"\r\n"
    c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<user0003@example.test>\r\n"
           f"BDAT {len(msg2)}\r\n".encode() + msg2 + b"BDAT 0 LAST\r\n")
    reps = c.replies(4)
    CHECK.eq("BDAT pipelined: envelope and chunk replies", reps[:3],
             ["250 2.1.0 OK", "250 2.1.5 OK", f"250 2.0.0 Added {len(msg2)} octets"])
    CHECK.match("BDAT 0 LAST: Saved", reps[3], saved_re("user0003@example.test"))
    new = added_files(before, "user0003")
    if CHECK.eq("BDAT pipelined: one file", len(new), 1):
        check_delivery("BDAT pipelined", new[0], msg2, "user0003@example.test")
    c.close()


@subtest
def detail_folders():
    c = open_session()
    before_inbox = snap(["user0002", "user0003"])
    before_lists = snap(["user0002"], folder="lists")
    msg = make_msg("detail-lists", 200)
    rep = deliver(c, ["user0002+lists@example.test"], msg, what="detail .lists")[0]
    CHECK.match("+detail existing folder: Saved", rep, saved_re("user0002+lists@example.test"))
    new = added_files(before_lists, "user0002", folder="lists")
    if CHECK.eq("+detail: file in .lists/new", len(new), 1):
        check_delivery("+detail .lists", new[0], msg, "user0002+lists@example.test")
    CHECK.eq("+detail: INBOX untouched", added_files(before_inbox, "user0002"), [])
    msg = make_msg("detail-absent", 200)
    rep = deliver(c, ["user0003+nothere@example.test"], msg, what="detail absent")[0]
    CHECK.match("+detail absent folder: Saved", rep, saved_re("user0003+nothere@example.test"))
    new = added_files(before_inbox, "user0003")
    if CHECK.eq("+detail absent folder: file in INBOX new/", len(new), 1):
        check_delivery("+detail INBOX", new[0], msg, "user0003+nothere@example.test")
    CHECK.eq("+detail absent folder: .nothere not created (detail_mailbox_create = no)",
             os.path.exists(os.path.join(user_dir(MAIL_ROOT, "user0003"), ".nothere")), False)
    c.close()


@subtest
def smtputf8():
    rcpt = "user0003@example.test"
    before = snap(["user0003"])
    c = open_session()
    CHECK.eq("SMTPUTF8 MAIL", c.cmd("MAIL FROM:<jöe@exämple.org> SMTPUTF8"), "250 2.1.0 OK")
    CHECK.eq("SMTPUTF8 RCPT", c.cmd(f"RCPT TO:<{rcpt}>"), "250 2.1.5 OK")
    CHECK.eq("SMTPUTF8 DATA", c.cmd("DATA"), "354 OK")
    msg = "Subject: grüße\r\nFrom: <jöe@exämple.org>\r\n\r\nnon-ASCII body ✓\r\n".encode()
    c.send(dot_stuff(msg))
    CHECK.match("SMTPUTF8 Saved", c.r(), saved_re(rcpt))
    new = added_files(before, "user0003")
    if CHECK.eq("SMTPUTF8: one file", len(new), 1):
        check_delivery("SMTPUTF8", new[0], msg, rcpt, sender="jöe@exämple.org")
    c.close()


@subtest
def store_error():
    """user0004's maildir path is a regular file: 451 for it, the other recipient still gets it."""
    before = snap(["user0001"])
    c = open_session()
    msg = make_msg("store-error", 300)
    CHECK.eq("store error: MAIL", c.cmd(f"MAIL FROM:<{SENDER}>"), "250 2.1.0 OK")
    CHECK.eq("store error: RCPT broken user", c.cmd("RCPT TO:<user0004@example.test>"),
             "250 2.1.5 OK")
    CHECK.eq("store error: RCPT good user", c.cmd("RCPT TO:<user0001@example.test>"),
             "250 2.1.5 OK")
    CHECK.eq("store error: DATA", c.cmd("DATA"), "354 OK")
    c.send(dot_stuff(msg))
    reps = c.replies(2)
    CHECK.eq("store error: 451 for the broken maildir", reps[0],
             "451 4.3.0 <user0004@example.test> Temporary internal error")
    CHECK.match("store error: the other recipient is Saved", reps[1],
                saved_re("user0001@example.test"))
    new = added_files(before, "user0001")
    if CHECK.eq("store error: good recipient has one file", len(new), 1):
        check_delivery("store error good rcpt", new[0], msg, "user0001@example.test",
                       single=False)
    c.close()


@subtest
def unix_socket():
    path = env("LMTP_SOCK")
    st = os.stat(path)
    CHECK.eq("UNIX socket is a socket", stat.S_ISSOCK(st.st_mode), True)
    CHECK.eq("UNIX socket mode (lmtp_unix_mode)", oct(stat.S_IMODE(st.st_mode)), "0o666")
    before = snap(["user0002"])
    c = open_session(path, what="unix")
    msg = make_msg("unix-1", 400)
    reps = deliver(c, ["user0002@example.test"], msg, what="unix")
    CHECK.match("UNIX socket delivery: Saved", reps[0], saved_re("user0002@example.test"))
    new = added_files(before, "user0002")
    if CHECK.eq("UNIX socket delivery: one file", len(new), 1):
        check_delivery("unix", new[0], msg, "user0002@example.test")
    CHECK.eq("UNIX socket QUIT", c.cmd("QUIT"), "221 2.0.0 Bye")
    c.close()


@subtest
def no_tmp_leftovers_and_log():
    left = []
    for dirpath, _dirs, files in os.walk(MAIL_ROOT):
        if os.path.basename(dirpath) == "tmp":
            left += [os.path.join(dirpath, f) for f in files]
    CHECK.eq("nothing left in any tmp/ after the deliveries", left, [])
    log = read(env("SLUICE_LOG")).decode("utf-8", "replace").splitlines()

    def has(rcpt, result_re):
        for ln in log:
            if re.search(r"rcpt=<?" + esc(rcpt) + r">?(\s|,|$)", ln) and "size=" in ln \
                    and re.search(r"result=" + result_re, ln):
                return True
        return False
    CHECK.true("log: a line with rcpt=, size=, result=saved for user0001",
               has("user0001@example.test", "saved"),
               "no such line", "rcpt=user0001@example.test ... size=N ... result=saved")
    CHECK.true("log: a line for the detail recipient", has("user0002+lists@example.test", "saved"),
               "no such line", "rcpt=user0002+lists@example.test ... result=saved")
    CHECK.true("log: a failed line for the broken maildir",
               has("user0004@example.test", r"(?!saved)\w+"),
               "no such line", "rcpt=user0004@example.test ... result=<not saved>")


def section_main():
    for t in (greeting_and_lhlo, command_replies, single_delivery, multi_recipient_hardlinks,
              pipelined_mix, pipelined_everything_and_duplicates, content_edge_cases,
              split_writes, size_limit, too_many_recipients, long_line, bad_commands_limit,
              bdat, detail_folders, smtputf8, store_error, unix_socket, no_tmp_leftovers_and_log):
        t()


# ====================================================================== other instances

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@subtest
def section_idle():
    for lhlo in (False, True):
        what = "idle timeout after LHLO" if lhlo else "idle timeout before LHLO"
        c = open_session(lhlo=lhlo, what=what)
        t0 = time.monotonic()
        rep = c.r(timeout=10)
        took = time.monotonic() - t0
        CHECK.eq(f"{what}: reply", rep, f"421 4.4.2 {HOST} Disconnected for inactivity")
        CHECK.true(f"{what}: after about 2 s", 1.5 <= took <= 6, f"{took:.2f}s", "1.5..6 s")
        closed, extra = c.closed(3)
        CHECK.true(f"{what}: connection closed", closed and not extra,
                   f"closed={closed} extra={show(extra)}", "EOF")
    # activity resets the timer: NOOP every second for 4 s keeps the session
    c = open_session(what="idle keepalive")
    ok = True
    for _ in range(4):
        time.sleep(1.0)
        rep = c.cmd("NOOP")
        if rep != "250 2.0.0 OK":
            ok = CHECK.fail("idle: NOOP every 1 s keeps a 2 s idle session", rep, "250 2.0.0 OK")
            break
    if ok:
        CHECK.ok("idle: NOOP every 1 s keeps a 2 s idle session")
    c.close()


@subtest
def section_conn():
    """connections_per_ip_max = 4, connections_max = 6."""
    held = []
    for i in range(4):
        c = Lmtp(T, source="127.0.0.1")
        CHECK.eq(f"per-IP limit: connection {i + 1} of 4 greeted", c.r(), GREETING)
        held.append(c)
    c5 = Lmtp(T, source="127.0.0.1")
    CHECK.eq("per-IP limit: 5th connection from 127.0.0.1", c5.r(),
             f"421 4.7.0 {HOST} Too many connections")
    closed, extra = c5.closed(3)
    CHECK.true("per-IP limit: 5th connection closed", closed and not extra,
                   f"closed={closed} extra={show(extra)}", "EOF")
    for i in range(2):
        c = Lmtp(T, source="127.0.0.2")
        CHECK.eq(f"other IP 127.0.0.2: connection {i + 1} greeted", c.r(), GREETING)
        held.append(c)
    c7 = Lmtp(T, source="127.0.0.3")
    CHECK.eq("connections_max: 7th connection (from 127.0.0.3)", c7.r(),
             f"421 4.7.0 {HOST} Too many connections")
    closed, extra = c7.closed(3)
    CHECK.true("connections_max: 7th connection closed", closed and not extra,
                   f"closed={closed} extra={show(extra)}", "EOF")
    CHECK.eq("held connections still work", held[0].cmd("NOOP"), "250 2.0.0 OK")
    held[0].cmd("QUIT")
    held[0].close()

    def retry():
        c = Lmtp(T, source="127.0.0.1")
        g = c.r()
        if g == GREETING:
            return c
        c.close()
        return None
    c = wait_for(retry, timeout=5, step=0.2)
    CHECK.true("per-IP limit: a slot frees up after a QUIT", c is not None, "still refused",
               GREETING)
    if c:
        c.close()
    for h in held[1:]:
        h.close()


@subtest
def section_allow():
    c = Lmtp(T)
    closed, extra = c.closed(5)
    CHECK.true("peer outside lmtp_allow: closed without greeting", closed and extra == b"",
               f"closed={closed} bytes={show(extra)}", "closed, no bytes")
    pid = int(env("SLUICE_PID"))
    CHECK.true("server still running after refusing a peer", alive(pid), "exited", "running")


@subtest
def section_userdbfail():
    db = env("USERDB")
    rcpt = "user0001@example.test"
    c = open_session()
    con = sqlite3.connect(db, timeout=10)
    con.execute("ALTER TABLE mailbox RENAME TO mailbox_moved")
    con.commit()
    CHECK.eq("userdb failure: MAIL", c.cmd(f"MAIL FROM:<{SENDER}>"), "250 2.1.0 OK")
    CHECK.eq("userdb failure: RCPT", c.cmd(f"RCPT TO:<{rcpt}>"),
             f"451 4.3.0 <{rcpt}> Temporary internal error")
    CHECK.eq("userdb failure: RCPT unknown user is also temporary",
             c.cmd("RCPT TO:<nobody@example.test>"),
             "451 4.3.0 <nobody@example.test> Temporary internal error")
    CHECK.eq("userdb failure: RSET", c.cmd("RSET"), "250 2.0.0 OK")
    con.execute("ALTER TABLE mailbox_moved RENAME TO mailbox")
    con.commit()
    con.close()
    CHECK.eq("userdb back: MAIL", c.cmd(f"MAIL FROM:<{SENDER}>"), "250 2.1.0 OK")
    CHECK.eq("userdb back: the temporary failure was not cached", c.cmd(f"RCPT TO:<{rcpt}>"),
             "250 2.1.5 OK")
    CHECK.eq("userdb back: unknown user", c.cmd("RCPT TO:<nobody@example.test>"),
             "550 5.1.1 <nobody@example.test> User doesn't exist: nobody@example.test")
    c.close()


@subtest
def section_diskfull():
    rcpt = "user0001@example.test"
    c = open_session()
    big = make_msg("disk-full", 600 * 1024)
    reps = deliver(c, [rcpt], big, what="disk full")
    CHECK.match("disk full: 452 4.3.1 for the recipient", reps[0],
                r"452 4\.3\.1 <" + esc(rcpt) + r"> .+")
    CHECK.eq("disk full: nothing in new/", list_new(MAIL_ROOT, "user0001"), [])
    left = []
    for dirpath, _d, files in os.walk(MAIL_ROOT):
        if os.path.basename(dirpath) == "tmp":
            left += files
    CHECK.eq("disk full: the partial file is removed from tmp/", left, [])
    small = make_msg("after-disk-full", 100)
    reps = deliver(c, [rcpt], small, what="after disk full")
    CHECK.match("after disk full: a small message is Saved", reps[0], saved_re(rcpt))
    c.close()


@subtest
def section_sighup():
    pid = int(env("SLUICE_PID"))
    conf = env("SLUICE_CONF")
    c1 = open_session(what="before reload")
    with open(conf) as f:
        text = f.read()
    text = re.sub(r"(?m)^greeting = .*$", "greeting = sluice reloaded.", text)
    text = re.sub(r"(?m)^recipients_max = .*\n", "", text) + "recipients_max = 2\n"
    with open(conf, "w") as f:
        f.write(text)
    os.kill(pid, signal.SIGHUP)
    want = f"220 {HOST} sluice reloaded."

    def new_greeting():
        c = Lmtp(T)
        g = c.r()
        if g == want:
            return c
        c.close()
        return None
    c2 = wait_for(new_greeting, timeout=5, step=0.2)
    CHECK.true("SIGHUP: new connections see the new greeting", c2 is not None, "old greeting",
               want)
    if c2:
        c2.send("LHLO client.test\r\n")
        c2.reply()
        c2.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<user0001@example.test>\r\n"
                "RCPT TO:<user0002@example.test>\r\nRCPT TO:<user0003@example.test>\r\n")
        CHECK.eq("SIGHUP: new recipients_max = 2 applies",
                 c2.replies(4), ["250 2.1.0 OK", "250 2.1.5 OK", "250 2.1.5 OK",
                                 "452 4.5.3 Too many recipients"])
        c2.close()
    CHECK.eq("SIGHUP: the old connection is still usable", c1.cmd("NOOP"), "250 2.0.0 OK")
    before = snap(["user0001"])
    msg = make_msg("after-hup", 300)
    reps = deliver(c1, ["user0001@example.test"], msg, what="old connection after SIGHUP")
    CHECK.match("SIGHUP: delivery on the old connection", reps[0],
                saved_re("user0001@example.test"))
    CHECK.eq("SIGHUP: file delivered", len(added_files(before, "user0001")), 1)
    c1.close()
    CHECK.true("SIGHUP: same process still running", alive(pid), "exited", "running")
    # a broken config on reload must not take the server down
    with open(conf, "a") as f:
        f.write("message_size_max = banana\n")
    os.kill(pid, signal.SIGHUP)
    time.sleep(1.0)
    CHECK.true("SIGHUP with an invalid config: server keeps running", alive(pid), "exited",
               "running")
    if alive(pid):
        c3 = Lmtp(T)
        CHECK.eq("SIGHUP with an invalid config: still greets (old config kept)", c3.r(), want)
        c3.close()


@subtest
def section_sigterm():
    pid = int(env("SLUICE_PID"))
    rcpt = "user0001@example.test"
    before = snap(["user0001"])
    idle = open_session(what="idle at SIGTERM")
    fly = open_session(what="in flight at SIGTERM")
    msg = make_msg("in-flight", 20000)
    payload = dot_stuff(msg)
    fly.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n")
    CHECK.eq("in flight: envelope", fly.replies(3), ["250 2.1.0 OK", "250 2.1.5 OK", "354 OK"])
    half = len(payload) // 2
    fly.send(payload[:half])
    time.sleep(0.2)
    os.kill(pid, signal.SIGTERM)
    CHECK.eq("SIGTERM: idle session is told", idle.r(timeout=5),
             f"421 4.3.2 {HOST} Shutting down")
    closed, extra = idle.closed(5)
    CHECK.true("SIGTERM: idle session closed", closed and not extra,
                   f"closed={closed} extra={show(extra)}", "EOF")
    time.sleep(0.3)
    try:
        n = Lmtp(T, timeout=2)
        g = n.r(timeout=1)
        n.close()
    except OSError as e:
        g = f"connect failed: {e.strerror}"
    CHECK.true("SIGTERM: no new session is greeted", not g.startswith("220"), g,
               "refused, closed, or no greeting")
    fly.send(payload[half:])
    rep = fly.r(timeout=10)
    CHECK.match("SIGTERM: the transaction in flight finishes: Saved", rep, saved_re(rcpt))
    new = added_files(before, "user0001")
    if CHECK.eq("SIGTERM: in-flight message is in new/", len(new), 1):
        check_delivery("in flight", new[0], msg, rcpt)
    fly.close()


SECTIONS = {
    "main": section_main, "idle": section_idle, "conn": section_conn, "allow": section_allow,
    "userdbfail": section_userdbfail, "diskfull": section_diskfull, "sighup": section_sighup,
    "sigterm": section_sigterm,
}

if __name__ == "__main__":
    SECTIONS[sys.argv[1]]()
    CHECK.done()

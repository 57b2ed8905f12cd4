"""Checks the Maildirs after an smtp-source run (test_load.sh).

usage: loadcheck.py MAIL_ROOT REF_DUMP COUNT SENDER USER[,USER...]

REF_DUMP is one message as smtp-sink -d captured it from the same smtp-source
command line: smtp-sink's own headers (through its 3-line Received), then the
message as sent, then one empty line. smtp-source's Date is fixed per process
and its Message-Id is <pid.fd.counter@host>, so those two header values are
compared by shape (and uniqueness); every other byte must be identical.
With several users the run used -r N: each message must be in every user's
new/, as hard links of one inode.
"""

import os
import re
import sys

from itest import CHECK, NAME_RE, list_new, read, show, split_added

VARIABLE = re.compile(rb"(?m)^(Date|Message-Id): (.*)\n")


def ref_message(path):
    data = read(path)
    i = data.find(b"\nReceived: ")
    if not data.startswith(b"X-Client-Addr:") or i < 0:
        CHECK.fail("smtp-sink dump has its header block", show(data[:300]), "X-Client-Addr: ...")
        CHECK.done()
    i += 1
    lines = data[i:].split(b"\n")
    # Received: + 2 continuation lines
    n = 1
    while lines[n].startswith(b"\t") or lines[n].startswith(b" "):
        n += 1
    msg = b"\n".join(lines[n:])
    if msg.endswith(b"\n\n"):
        msg = msg[:-1]  # smtp-sink appends one empty line after each message
    return msg


def normalize(msg):
    vals = {}

    def sub(m):
        vals[m.group(1).decode()] = m.group(2).decode("utf-8", "replace")
        return m.group(1) + b": <variable>\n"
    return VARIABLE.sub(sub, msg), vals


def main():
    mail_root, ref_path, count, sender, users = sys.argv[1:6]
    count = int(count)
    users = users.split(",")
    multi = len(users) > 1
    ref, _ = normalize(ref_message(ref_path))
    label = f"{'multi' if multi else 'single'} ({users[0]}...)" if multi else users[0]
    by_user = {}
    dates = set()
    bad = {}

    def note(kind, example):
        bad.setdefault(kind, [0, example])
        bad[kind][0] += 1

    for u in users:
        local = u.split("@")[0]
        files = list_new(mail_root, local)
        CHECK.eq(f"{label}: files in {local}/new equal accepted messages", len(files), count)
        ids = {}
        for p in files:
            data = read(p)
            m = NAME_RE.fullmatch(os.path.basename(p))
            if not m:
                note("file name format <sec>.M<usec>P<pid>Q<n>.<host>,S=,W=", os.path.basename(p))
            else:
                if int(m.group(6)) != len(data):
                    note("S= equals the file size", f"{os.path.basename(p)} size {len(data)}")
                vsize = len(data) + data.count(b"\n")
                if int(m.group(7)) != vsize:
                    note("W= equals the size with CRLF", f"{os.path.basename(p)} want W={vsize}")
            added, _order, rest = split_added(data)
            if added.get("return-path") != f"<{sender}>":
                note("Return-Path is the envelope sender", added.get("return-path"))
            dt = added.get("delivered-to")
            if multi and dt is not None:
                note("no Delivered-To with several recipients", dt)
            if not multi and dt not in (u, f"<{u}>"):
                note("Delivered-To is the recipient", dt)
            if not re.match(r"from .* by mx\.test .*with LMTP", added.get("received") or ""):
                note("sluice's Received header", added.get("received"))
            norm, vals = normalize(rest)
            if norm != ref:
                i = next((k for k in range(min(len(norm), len(ref))) if norm[k] != ref[k]),
                         min(len(norm), len(ref)))
                note("message byte-exact against the smtp-sink capture",
                     f"{os.path.basename(p)} differs at byte {i}: got "
                     f"{show(norm[max(0, i - 30):i + 50])} want {show(ref[max(0, i - 30):i + 50])}")
            mid = vals.get("Message-Id")
            if mid is None or not re.fullmatch(r"<[0-9a-f]{4,}\.[0-9a-f]{4,}\.[0-9a-f]{4,}@\S+>", mid):
                note("Message-Id from smtp-source", mid)
            dates.add(vals.get("Date"))
            if mid in ids:
                note("each message exactly once per mailbox (duplicate Message-Id)",
                     f"{mid} in {os.path.basename(ids[mid])} and {os.path.basename(p)}")
            ids[mid] = p
        by_user[u] = ids
    CHECK.eq(f"{label}: one Date for the whole smtp-source run", len(dates), 1)
    if multi:
        first = set(by_user[users[0]])
        for u in users[1:]:
            if set(by_user[u]) != first:
                note("every recipient has the same messages",
                     f"{u}: {len(set(by_user[u]) - first)} extra, {len(first - set(by_user[u]))} missing")
        for mid in list(first)[: count]:
            inodes = set()
            for u in users:
                p = by_user[u].get(mid)
                if p:
                    st = os.stat(p)
                    inodes.add((st.st_dev, st.st_ino))
            if len(inodes) != 1:
                note("the recipients' files are hard links of one inode",
                     f"{mid}: {len(inodes)} inodes")
    kinds = ["file name format <sec>.M<usec>P<pid>Q<n>.<host>,S=,W=", "S= equals the file size",
             "W= equals the size with CRLF", "Return-Path is the envelope sender",
             "no Delivered-To with several recipients" if multi else "Delivered-To is the recipient",
             "sluice's Received header", "message byte-exact against the smtp-sink capture",
             "Message-Id from smtp-source",
             "each message exactly once per mailbox (duplicate Message-Id)"]
    if multi:
        kinds += ["every recipient has the same messages",
                  "the recipients' files are hard links of one inode"]
    for k in kinds:
        if k in bad:
            CHECK.fail(f"{label}: {k}", f"{bad[k][0]} files wrong, e.g. {show(bad[k][1])}",
                       "all files")
        else:
            CHECK.ok(f"{label}: {k}")
    CHECK.done()


if __name__ == "__main__":
    main()

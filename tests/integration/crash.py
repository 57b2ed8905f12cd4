"""Load with a client-side transcript, then the crash checks (test_crash.sh).

usage: crash.py load DIR SECONDS THREADS   (env LMTP_PORT)
       crash.py verify DIR                 (env MAIL_ROOT)

load: THREADS connections deliver uniquely marked messages (Message-ID
<crash-tN-M@itest.sluice>, last line 'END crash-tN-M', sizes from 200 B to 1 MB,
1 or 3 recipients) until SECONDS have passed, reconnecting whenever the server
goes away. Each thread appends to DIR/tN.jsonl: a 'sent' record before a
message goes out and an 'ack' record with the server's reply after it is read.

verify: every acknowledged (message, recipient) must be in the recipient's
Maildir exactly once and byte-exact; every file in any new/ or cur/ must be a
complete, byte-exact message that was sent to that recipient (no partial file
is ever visible); leftovers in tmp/ are allowed and counted.
"""

import glob
import json
import os
import random
import re
import sys
import threading
import time

from itest import CHECK, Closed, Lmtp, crlf_to_lf, dot_stuff, env, make_msg, read, show, split_added

USERS = [f"user{i:04d}@example.test" for i in range(8)]
SIZES = [200, 200, 2000, 2000, 2000, 20000, 20000, 200000, 1000000]


def message(marker, size):
    return make_msg(marker, size, to="crash@example.test")


def worker(tid, deadline, outdir, stats):
    rng = random.Random(1000 + tid)
    target = ("127.0.0.1", int(env("LMTP_PORT")))
    n = 0
    with open(os.path.join(outdir, f"t{tid}.jsonl"), "a", buffering=1) as log:
        while time.monotonic() < deadline:
            c = None
            try:
                c = Lmtp(target, timeout=15)
                if not c.r().startswith("220 "):
                    raise Closed()
                c.send("LHLO client.test\r\n")
                c.reply()
                while time.monotonic() < deadline:
                    n += 1
                    marker = f"crash-t{tid}-{n}"
                    size = rng.choice(SIZES)
                    rcpts = rng.sample(USERS, rng.choice([1, 1, 3]))
                    log.write(json.dumps({"sent": marker, "size": size, "rcpts": rcpts,
                                          "t": time.time()}) + "\n")
                    c.send("MAIL FROM:<crash@example.org>\r\n"
                           + "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts) + "DATA\r\n")
                    env_reps = c.replies(2 + len(rcpts))
                    if env_reps[-1] != "354 OK":
                        log.write(json.dumps({"envelope": marker, "replies": env_reps}) + "\n")
                        stats["envelope_fail"] += 1
                        break
                    c.send(dot_stuff(message(marker, size)))
                    for r in rcpts:
                        rep = c.r()
                        log.write(json.dumps({"ack": marker, "rcpt": r, "reply": rep,
                                              "t": time.time()}) + "\n")
                        if rep.startswith("250 "):
                            stats["acked"] += 1
                    if "<EOF>" in rep or "<TIMEOUT>" in rep:
                        break
            except (OSError, Closed):
                stats["conn_errors"] += 1
            finally:
                if c:
                    c.close()
            time.sleep(0.05)


def load(outdir, seconds, threads):
    deadline = time.monotonic() + float(seconds)
    stats = {"acked": 0, "conn_errors": 0, "envelope_fail": 0}
    ts = [threading.Thread(target=worker, args=(i, deadline, outdir, stats))
          for i in range(int(threads))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(f"# load: {stats['acked']} recipient acks, {stats['conn_errors']} connection errors, "
          f"{stats['envelope_fail']} envelopes cut short")


def verify(outdir):
    mail_root = env("MAIL_ROOT")
    sent = {}
    acks = []
    for p in glob.glob(os.path.join(outdir, "t*.jsonl")):
        with open(p) as f:
            for ln in f:
                rec = json.loads(ln)
                if "sent" in rec:
                    sent[rec["sent"]] = rec
                elif "ack" in rec:
                    acks.append(rec)
    acked = [(a["ack"], a["rcpt"]) for a in acks if a["reply"].startswith("250 ")]
    bad_acks = [a for a in acks if not a["reply"].startswith("250 ")
                and a["reply"] not in ("<EOF>", "<TIMEOUT>")
                and not a["reply"].startswith("4")]
    print(f"# {len(sent)} messages sent, {len(acked)} (message, recipient) pairs acknowledged")
    CHECK.true("load made progress (acknowledged deliveries)", len(acked) > 50, len(acked), "> 50")
    CHECK.eq("no 5xx replies to deliveries during the crashes", [show(a) for a in bad_acks[:3]], [])

    # every visible file, per recipient
    files = {}          # (marker, rcpt) -> [paths]
    bad = []
    tmp_left = 0
    for dom_user in sorted(glob.glob(os.path.join(mail_root, "example.test", "*"))):
        rcpt = os.path.basename(dom_user) + "@example.test"
        tmp_left += len(os.listdir(os.path.join(dom_user, "tmp"))) \
            if os.path.isdir(os.path.join(dom_user, "tmp")) else 0
        for sub in ("new", "cur"):
            for p in glob.glob(os.path.join(dom_user, sub, "*")):
                data = read(p)
                m = re.search(rb"(?m)^Message-ID: <(crash-t\d+-\d+)@itest\.sluice>$", data)
                if not m:
                    bad.append(f"{p}: no crash Message-ID (partial or foreign file): "
                               f"{show(data[:120])} ... {show(data[-80:])}")
                    continue
                marker = m.group(1).decode()
                rec = sent.get(marker)
                if rec is None:
                    bad.append(f"{p}: {marker} was never sent")
                    continue
                if rcpt not in rec["rcpts"]:
                    bad.append(f"{p}: {marker} was not sent to {rcpt}")
                want = crlf_to_lf(message(marker, rec["size"]))
                added, _o, rest = split_added(data)
                if rest != want:
                    bad.append(f"{p}: {marker} is not intact: {len(rest)} bytes, want {len(want)}; "
                               f"ends {show(rest[-60:])}")
                if added.get("return-path") != "<crash@example.org>":
                    bad.append(f"{p}: Return-Path {added.get('return-path')}")
                files.setdefault((marker, rcpt), []).append(p)
    CHECK.eq("every file in new/ and cur/ is a complete message sent to that recipient",
             bad[:5], [])
    if bad:
        print(f"# {len(bad)} bad files in all")
    dups = {k: v for k, v in files.items() if len(v) > 1}
    CHECK.eq("no message twice in one mailbox", [f"{k}: {len(v)} files" for k, v in
                                                 list(dups.items())[:5]], [])
    missing = [f"{m} -> {r}" for m, r in acked if (m, r) not in files]
    CHECK.eq("every acknowledged delivery is in the recipient's Maildir", missing[:10], [])
    if missing:
        print(f"# {len(missing)} acknowledged deliveries missing in all")
    events = []
    ev_path = os.path.join(outdir, "events")
    if os.path.exists(ev_path):
        with open(ev_path) as f:
            events = [(ln.split()[0], float(ln.split()[1])) for ln in f if ln.strip()]
    # deliveries were acknowledged in every window: before the first kill, after each restart
    bounds = [0.0] + [t for kind, t in events] + [float("inf")]
    kinds = ["start"] + [kind for kind, t in events]
    ack_times = [a["t"] for a in acks if a["reply"].startswith("250 ")]
    for i, kind in enumerate(kinds):
        if kind not in ("start", "up"):
            continue
        lo, hi = bounds[i], bounds[i + 1]
        n = sum(1 for t in ack_times if lo <= t < hi)
        what = "before the first kill" if kind == "start" else f"after restart {i // 2}"
        CHECK.true(f"acknowledged deliveries {what}", n > 0, n, "> 0")
    unacked_present = len(set(files) - set(acked))
    print(f"# {len(files)} (message, recipient) files visible; {unacked_present} of them were "
          f"never acknowledged (committed before the crash, ack lost: allowed); "
          f"{tmp_left} files left in tmp/ (allowed after a crash)")
    CHECK.done()


if __name__ == "__main__":
    if sys.argv[1] == "load":
        load(*sys.argv[2:5])
    else:
        verify(sys.argv[2])

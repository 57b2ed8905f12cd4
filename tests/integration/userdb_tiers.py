"""userdb_tiers.py: the LMTP side of test_redis_userdb.sh.

usage: userdb_tiers.py STEP ARGS...
  deliver FIRST COUNT [MAILDIR_FMT]   one session; user FIRST..FIRST+COUNT-1 each get one
                                      message: RCPT 250, DATA 250, and the file is in
                                      MAIL_ROOT/<MAILDIR_FMT % n>/new (default
                                      example.test/user%04d)
  rcpt ADDR REGEX                     RCPT answers a reply matching REGEX
  until ADDR REGEX SECONDS            repeats RCPT until the reply matches (at most SECONDS)
  metric SERIES                       prints the value of one /metrics series
  expect SERIES OP VALUE              /metrics SERIES compared (==, >=, >) with VALUE
  load SECONDS CONNS USERS STATE      closed-loop load over user0000..user(USERS-1) for SECONDS;
                                      writes what happened to STATE (JSON)
  verify STATE [allow451]             every RCPT of STATE answered 250 (or 451 4.3.0 when
                                      allow451), never 5xx; every message whose DATA got 250
                                      is in its maildir, whole; prints the counts
Environment: LMTP_PORT, STATS_PORT, MAIL_ROOT."""
import json
import os
import random
import re
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from itest import Checks, Lmtp, dot_stuff, env, make_msg, wait_for  # noqa: E402

T = ("127.0.0.1", int(env("LMTP_PORT")))
ROOT = env("MAIL_ROOT")
c = Checks()


def scrape():
    port = env("STATS_PORT")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def metric(series):
    for line in scrape().splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def session():
    s = Lmtp(T, timeout=30)
    s.r()
    s.cmd("LHLO tiers.test")
    return s


def send_one(s, addr, marker):
    """One transaction: (rcpt reply, data reply or None)."""
    mail = s.cmd("MAIL FROM:<sender@example.org>")
    if not mail.startswith("250"):
        return mail, None
    rep = s.cmd(f"RCPT TO:<{addr}>")
    if not rep.startswith("250"):
        s.cmd("RSET")
        return rep, None
    go = s.cmd("DATA")
    if not go.startswith("354"):
        return rep, go
    s.send(dot_stuff(make_msg(marker, body_bytes=300, to=addr)))
    return rep, s.r()


def files_with(maildir, marker):
    d = os.path.join(ROOT, maildir, "new")
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    hits = []
    for n in names:
        with open(os.path.join(d, n), "rb") as f:
            if marker.encode() in f.read():
                hits.append(n)
    return hits


def step_deliver(first, count, fmt="example.test/user%04d"):
    s = session()
    bad = []
    for n in range(first, first + count):
        addr = "user%04d@example.test" % n
        marker = f"deliver-{addr}-{time.monotonic_ns()}"
        rcpt, data = send_one(s, addr, marker)
        if not rcpt.startswith("250") or data is None or not data.startswith("250"):
            bad.append((addr, rcpt, data))
        elif len(files_with(fmt % n, marker)) != 1:
            bad.append((addr, "no file in " + fmt % n, data))
    s.cmd("QUIT")
    c.eq(f"deliver user{first:04d}..user{first + count - 1:04d}: 250 and one file each", bad, [])


def step_rcpt(addr, regex):
    s = session()
    s.cmd("MAIL FROM:<sender@example.org>")
    c.match(f"RCPT {addr}", s.cmd(f"RCPT TO:<{addr}>"), regex)
    s.cmd("QUIT")


def step_until(addr, regex, seconds):
    last = [None]

    def attempt():
        s = session()
        s.cmd("MAIL FROM:<sender@example.org>")
        last[0] = s.cmd(f"RCPT TO:<{addr}>")
        s.cmd("QUIT")
        return re.match(regex, last[0]) is not None

    ok = wait_for(attempt, timeout=float(seconds), step=0.3)
    c.true(f"RCPT {addr} comes to answer {regex} within {seconds} s", ok, last[0], regex)


def step_expect(series, op, want):
    got = metric(series)
    want = float(want)
    ok = got is not None and {"==": got == want, ">=": got >= want, ">": got > want}[op]
    c.true(f"{series} {op} {want:g}", ok, got, f"{op} {want:g}")


def step_load(seconds, conns, users, state):
    stop = time.monotonic() + float(seconds)
    results = []
    lock = threading.Lock()

    def worker(k):
        rng = random.Random(k)
        mine = []
        s = None
        while time.monotonic() < stop:
            try:
                if s is None:
                    s = session()
                addr = "user%04d@example.test" % rng.randrange(int(users))
                marker = f"load-{k}-{len(mine)}-{time.monotonic_ns()}"
                rcpt, data = send_one(s, addr, marker)
                mine.append({"addr": addr, "marker": marker, "rcpt": rcpt, "data": data})
            except Exception as e:  # a dropped session is a failure verify reports
                mine.append({"addr": None, "marker": None, "rcpt": f"error {e}", "data": None})
                s = None
                time.sleep(0.1)
        if s is not None:
            s.cmd("QUIT")
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(int(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(state, "w") as f:
        json.dump(results, f)
    print(f"load: {len(results)} transactions")


def step_verify(state, allow451=None):
    with open(state) as f:
        results = json.load(f)
    ok_rcpt = [r for r in results if r["rcpt"].startswith("250")]
    tempfail = [r for r in results if r["rcpt"].startswith("451 4.3.0")]
    other = [r for r in results if r not in ok_rcpt and r not in tempfail]
    c.true(f"{len(results)} transactions ran", len(results) > 20, len(results), "> 20")
    c.eq("RCPT replies other than 250 and 451 4.3.0 (never 5xx)", [r["rcpt"] for r in other][:5],
         [])
    if allow451 is None:
        c.eq("RCPTs answered 451", len(tempfail), 0)
    delivered = [r for r in ok_rcpt if r["data"] and r["data"].startswith("250")]
    c.eq("DATA after an accepted RCPT answered 250", len(delivered), len(ok_rcpt))
    missing = []
    for r in delivered:
        local = r["addr"].split("@")[0]
        n = len(files_with("example.test/" + local, r["marker"]))
        if n != 1:
            missing.append(f'{r["marker"]} for {r["addr"]}: {n} files')
    c.eq("acknowledged messages on disk, once each", missing[:5], [])
    print(f"verify: {len(delivered)} delivered, {len(tempfail)} answered 451")


STEPS = {"deliver": lambda a: step_deliver(int(a[0]), int(a[1]), *a[2:]),
         "rcpt": lambda a: step_rcpt(a[0], a[1]),
         "until": lambda a: step_until(a[0], a[1], a[2]),
         "metric": lambda a: print(metric(a[0])),
         "expect": lambda a: step_expect(a[0], a[1], a[2]),
         "load": lambda a: step_load(*a[:4]),
         "verify": lambda a: step_verify(*a[:2])}

if __name__ == "__main__":
    STEPS[sys.argv[1]](sys.argv[2:])
    sys.exit(c.done())

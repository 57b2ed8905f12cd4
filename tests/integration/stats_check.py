"""stats_check.py: a known load against sluice, then /metrics must say
exactly what was sent. Usage: stats_check.py LMTP_PORT STATS_PORT MAIL_ROOT"""
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from itest import Checks, Lmtp, make_msg, dot_stuff, wait_for  # noqa: E402

lmtp_port, stats_port, mail_root = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = Checks()
TXNS, RCPTS, CONNS = 40, 3, 4


def scrape():
    with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/metrics", timeout=5) as r:
        return r.read().decode()


def value(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def transaction(s, rcpts, body_bytes, marker):
    s.send(b"MAIL FROM:<sender@example.org>\r\n")
    c.match(f"{marker}: MAIL", s.r(), r"250 .*")
    accepted = 0
    for r in rcpts:
        s.send(f"RCPT TO:<{r}>\r\n".encode())
        rep = s.r()
        if rep.startswith("250"):
            accepted += 1
    if accepted == 0:
        s.send(b"RSET\r\n")
        s.r()
        return []
    s.send(b"DATA\r\n")
    c.match(f"{marker}: DATA", s.r(), r"354 .*")
    s.send(dot_stuff(make_msg(marker, body_bytes=body_bytes)))
    return [s.r() for _ in range(accepted)]


# The harness's readiness probe already made a connection: count from here.
conns_before = value(scrape(), "sluice_connections_total")
conns = [Lmtp(("127.0.0.1", lmtp_port)) for _ in range(CONNS)]
for s in conns:
    c.match("greeting", s.r(), r"220 .*")
    s.send(b"LHLO stats.test\r\n")
    c.match("LHLO", s.r(), r"250.*")
saved = 0
for i in range(TXNS):
    s = conns[i % CONNS]
    users = [f"user{(i * RCPTS + k) % 19 + 1:04d}@example.test" for k in range(RCPTS)]
    replies = transaction(s, users, 300 + 37 * i, f"stats-{i}")
    saved += sum(1 for r in replies if r.startswith("250 2.0.0"))
c.eq("every recipient saved", saved, TXNS * RCPTS)
s = conns[0]
# 5 unknown, 2 inactive (answered at RCPT), then 2 recipients of a message
# that is too big (answered 552 after DATA).
unknown = transaction(s, [f"nobody{k}@example.test" for k in range(5)], 100, "unknown")
c.eq("unknown users: no DATA", unknown, [])
transaction(s, ["off@example.test", "off@example.test"], 100, "inactive")
big = transaction(s, ["user0001@example.test", "user0002@example.test"], 300 * 1024, "big")
c.eq("too big: 552 for each", [r[:9] for r in big], ["552 5.3.4"] * 2)
for s in conns:
    s.send(b"QUIT\r\n")
    s.r()
    s.close()

wait_for(lambda: value(scrape(), "sluice_connections_open") == 0, timeout=5)
m = scrape()
delivered_bytes = 0
for root, _dirs, files in os.walk(mail_root):
    if os.path.basename(root) == "new":
        delivered_bytes += sum(os.path.getsize(os.path.join(root, f)) for f in files)
want = {
    "sluice_connections_open": 0,
    "sluice_connections_total": conns_before + CONNS,
    "sluice_transactions_total": TXNS + 1,  # the too-big one reached end of data too
    'sluice_recipients_total{outcome="delivered"}': TXNS * RCPTS,
    'sluice_recipients_total{outcome="unknown"}': 5,
    'sluice_recipients_total{outcome="inactive"}': 2,
    'sluice_recipients_total{outcome="rejected"}': 2,
    'sluice_recipients_total{outcome="tempfail"}': 0,
    "sluice_delivered_bytes_total": delivered_bytes,
    "sluice_delivery_seconds_count": TXNS,
    "sluice_commit_batch_transactions_sum": TXNS,
    "sluice_fsync_enabled": 1,
    "sluice_store_errors_total": 0,
}
for series, v in want.items():
    c.eq(f"metric {series}", value(m, series), v)
lookups = {r: sum(value(m, f'sluice_userdb_lookups_total{{tier="{t}",result="{r}"}}') or 0
                  for t in ("core", "sql"))
           for r in ("found", "notfound", "inactive", "tempfail")}
c.eq("lookups by result (core cache + sql)", lookups,
     {"found": TXNS * RCPTS + 2, "notfound": 5, "inactive": 2, "tempfail": 0})
c.true("some lookups answered by the core cache",
       (value(m, 'sluice_userdb_lookups_total{tier="core",result="found"}') or 0) > 0)
method = os.environ.get("SLUICE_SYNC_METHOD") or "fsync"
c.eq(f"sync method gauge says {method}", value(m, f'sluice_sync_method{{method="{method}"}}'), 1)
fsyncs = value(m, "sluice_fsyncs_total")
waits = value(m, "sluice_syncfs_waits_total")
if method == "fsync":
    c.eq("fsync histogram counts every fsync", value(m, "sluice_fsync_seconds_count"), fsyncs)
    c.true("at least one file fsync per message plus directories", fsyncs >= TXNS + 1,
           fsyncs, f">= {TXNS + 1}")
    c.eq("no syncfs rounds", value(m, "sluice_syncfs_rounds_total"), 0)
else:
    c.eq("no fsync calls with syncfs rounds", fsyncs, 0)
    c.eq("the wait histogram counts every barrier wait", value(m, "sluice_fsync_seconds_count"),
         waits)
    c.true("a wait for each file's data, and per batch one for the names", waits >= TXNS + 1,
           waits, f">= {TXNS + 1}")
    rounds = value(m, "sluice_syncfs_rounds_total")
    c.true("rounds: at least data then names, at most one per wait", 2 <= rounds <= waits,
           rounds, f"2..{waits}")
    c.eq("no failed round", value(m, "sluice_syncfs_failed_total"), 0)
c.eq("batches histogram counts every batch", value(m, "sluice_commit_batch_transactions_count"),
     value(m, "sluice_commit_batches_total"))
c.done()

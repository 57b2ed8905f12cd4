#!/usr/bin/env python3
"""Helper for bench/userdb-bench (python3 standard library only).

  userdb-bench.py redis-fill N PREFIX TTL_S
                        Redis protocol on stdout for `redis-cli --pipe`: SET of the
                        userdb entry of user0000..user(N-1)@example.test, in the
                        format of auth/redis_entry.h ("1|F|<quota>|<maildir>")
  userdb-bench.py entry USER            the value redis-fill writes for USER
  userdb-bench.py maildirs ROOT N       creates ROOT/example.test/userNNNN/{cur,new,tmp}
  userdb-bench.py metrics PORT OUT.json scrapes http://127.0.0.1:PORT/metrics into OUT.json
  userdb-bench.py prime LMTP_PORT STATS_PORT N
                        RCPT-only passes over all N users (1,000 pipelined RCPTs per
                        transaction, then RSET, nothing delivered), one connection at
                        a time, until every delivery core took a pass: the kernel
                        spreads connections over the cores (SO_REUSEPORT) and each
                        core has its own cache. The core a pass ran on is the one
                        whose sluice_core_loop_iterations_total grew most.
  userdb-bench.py record OUT.jsonl K=V... BEFORE.json AFTER.json BLAST.json
                        one run: lmtpblast's result, the tier counters' deltas and
                        the CPU samples; prints a one-line summary
  userdb-bench.py table RUNS.jsonl      the markdown table of medians, then notes
"""

import json
import os
import re
import socket
import statistics
import sys
import urllib.request

DOMAIN = "example.test"
MODES = ("sql", "redis", "core")
MODE_LABEL = {
    "sql": "1. misses to PostgreSQL",
    "redis": "2. hits in Redis",
    "core": "3. core cache hits",
}
SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


def user_name(i):
    # sql_add_users (tests/integration/lib_sql.sh) pads to at least 4 digits,
    # as lmtpblast's user%04d does
    return f"user{i:04d}@{DOMAIN}"


def entry(user):
    local = user.split("@", 1)[0]
    return f"1|F|0|{DOMAIN}/{local}/"


def resp(*words):
    out = [f"*{len(words)}\r\n".encode()]
    for w in words:
        b = w.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def redis_fill(n, prefix, ttl_s):
    w = sys.stdout.buffer
    for i in range(n):
        u = user_name(i)
        w.write(resp("SET", f"{prefix}:v1:user:{u.lower()}", entry(u), "EX", str(ttl_s)))
    w.flush()


def maildirs(root, n):
    for i in range(n):
        base = os.path.join(root, DOMAIN, user_name(i).split("@", 1)[0])
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(base, sub), exist_ok=True)


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SERIES.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def metrics(port, path):
    with open(path, "w") as f:
        json.dump(scrape(port), f)


def core_iterations(m):
    it = {}
    for k, v in m.items():
        mm = re.match(r'sluice_core_loop_iterations_total\{core="(\d+)"\}', k)
        if mm:
            it[int(mm.group(1))] = v
    return it


class Lmtp:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by sluice")
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln.decode(errors="replace")

    def reply(self):
        """One reply (multi-line replies end with 'NNN ')."""
        while True:
            ln = self.line()
            if len(ln) < 4 or ln[3] != "-":
                return ln


def prime_pass(port, n, batch=1000):
    """RCPT for every user over one connection; returns the non-250 count."""
    c = Lmtp(port)
    c.reply()
    c.s.sendall(b"LHLO userdb-bench.test\r\n")
    c.reply()
    bad = 0
    for start in range(0, n, batch):
        users = [user_name(i) for i in range(start, min(n, start + batch))]
        req = [b"MAIL FROM:<bench@example.org>\r\n"]
        req += [f"RCPT TO:<{u}>\r\n".encode() for u in users]
        req.append(b"RSET\r\n")
        c.s.sendall(b"".join(req))
        if not c.reply().startswith("250"):
            bad += len(users)
        for _ in users:
            if not c.reply().startswith("250"):
                bad += 1
        c.reply()
    c.s.sendall(b"QUIT\r\n")
    c.reply()
    c.s.close()
    return bad


def prime(lmtp_port, stats_port, n):
    m = scrape(stats_port)
    ncores = int(m.get("sluice_delivery_cores", 1))
    primed = set()
    passes = 0
    bad = 0
    while len(primed) < ncores and passes < 8 * ncores:
        before = core_iterations(m)
        bad += prime_pass(lmtp_port, n)
        passes += 1
        m = scrape(stats_port)
        after = core_iterations(m)
        grew = {c: after.get(c, 0) - before.get(c, 0) for c in after}
        primed.add(max(grew, key=grew.get))
    print(f"{passes} {len(primed)} {ncores} {bad}")


def tier_sum(before, after, prefix):
    total = 0.0
    for k, v in after.items():
        if k.startswith(prefix):
            total += v - before.get(k, 0.0)
    return total


def delta(before, after, key):
    return after.get(key, 0.0) - before.get(key, 0.0)


def hist_stats(before, after, name):
    """(mean seconds, p99 upper bound seconds) of a histogram's delta."""
    n = delta(before, after, f"{name}_count")
    if n <= 0:
        return None, None
    mean = delta(before, after, f"{name}_sum") / n
    buckets = []
    for k in after:
        mm = re.match(re.escape(name) + r'_bucket\{le="([^"]+)"\}', k)
        if mm:
            le = float("inf") if mm.group(1) == "+Inf" else float(mm.group(1))
            buckets.append((le, delta(before, after, k)))
    buckets.sort()
    p99 = None
    for le, cum in buckets:
        if cum >= 0.99 * n:
            p99 = le
            break
    return mean, p99


def load_blast(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def fnum(v, nd=0):
    if v is None:
        return "n/a"
    return f"{v:,.{nd}f}"


def pct(v):
    return "n/a" if v is None else f"{100.0 * v:.1f}%"


def record(out, args):
    before_f, after_f, blast_f = args[-3:]
    meta = dict(kv.split("=", 1) for kv in args[:-3])
    r = {"rep": int(meta["rep"]), "mode": meta["mode"], "fsync": meta["fsync"],
         "order": int(meta["order"]), "rc": int(meta["rc"]), "alive": meta.get("alive") == "1"}
    blast = load_blast(blast_f)
    r["ok"] = blast is not None
    if blast:
        lat = blast.get("latency_ms") or {}
        r.update({"msgs_per_s": blast.get("msgs_per_s"),
                  "deliveries_per_s": blast.get("deliveries_per_s"),
                  "messages": blast.get("messages"), "deliveries": blast.get("deliveries"),
                  "elapsed_s": blast.get("elapsed_s"), "p50": lat.get("p50"),
                  "p99": lat.get("p99"), "errors": blast.get("errors") or 0,
                  "replies": blast.get("replies") or {}})
    try:
        with open(before_f) as f:
            b = json.load(f)
        with open(after_f) as f:
            a = json.load(f)
    except (OSError, ValueError):
        b, a = None, None
    if a is not None:
        tiers = {t: tier_sum(b, a, f'sluice_userdb_lookups_total{{tier="{t}",')
                 for t in ("core", "redis", "sql")}
        lookups = sum(tiers.values())
        r["lookups"] = lookups
        for t, v in tiers.items():
            r[f"frac_{t}"] = v / lookups if lookups else None
        r["tempfail"] = tier_sum(b, a, 'sluice_userdb_lookups_total{tier="sql",result="tempfail"}')
        for res in ("hit", "miss", "error"):
            r[f"redis_{res}"] = delta(b, a, f'sluice_redis_lookups_total{{result="{res}"}}')
        r["sql_queries"] = delta(b, a, "sluice_userdb_sql_queries_total")
        r["delivered"] = delta(b, a, 'sluice_recipients_total{outcome="delivered"}')
        r["redis_mean_s"], r["redis_p99_s"] = hist_stats(b, a, "sluice_redis_lookup_seconds")
        r["sql_mean_s"], r["sql_p99_s"] = hist_stats(b, a, "sluice_sql_lookup_seconds")
    dlv = r.get("deliveries") or 0
    for who in ("sluice", "pg", "redis"):
        c0, c1 = meta.get(f"cpu0_{who}"), meta.get(f"cpu1_{who}")
        if c0 is not None and c1 is not None and dlv:
            r[f"cpu_{who}_us_per_dlv"] = (float(c1) - float(c0)) * 1000.0 / dlv
    with open(out, "a") as f:
        f.write(json.dumps(r) + "\n")
    bad = {k: v for k, v in (r.get("replies") or {}).items() if str(k) != "250" and v}
    print(f"  {r['mode']:<5} fsync={r['fsync']:<3} {fnum(r.get('deliveries_per_s')):>7} dlv/s "
          f"{fnum(r.get('msgs_per_s')):>6} msg/s  p99 {fnum(r.get('p99'), 2)} ms  "
          f"core {pct(r.get('frac_core'))} redis {pct(r.get('frac_redis'))} "
          f"sql {pct(r.get('frac_sql'))} of {fnum(r.get('lookups'))} lookups, "
          f"{fnum(r.get('sql_queries'))} SQL queries"
          + (f"  errors {r.get('errors')}" if r.get("errors") else "")
          + (f"  non-250 {bad}" if bad else "")
          + ("" if r["ok"] else f"  NO RESULT (rc {r['rc']})")
          + ("" if r["alive"] else "  SLUICE DEAD"))


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def us(v):
    return None if v is None else v * 1e6


def table(path):
    with open(path) as f:
        runs = [json.loads(ln) for ln in f if ln.strip()]
    fsyncs = [x for x in ("yes", "no") if any(r["fsync"] == x for r in runs)]
    by = {}
    for r in runs:
        by.setdefault((r["mode"], r["fsync"]), {})[r["rep"]] = r
    print("| mode | fsync | deliveries/s | msg/s | p50 ms | p99 ms | answered by core / Redis / SQL "
          "| SQL queries/s | Redis lookup mean (p99≤) µs | SQL lookup mean (p99≤) µs "
          "| CPU µs/delivery sluice / PG / Redis | vs core cache |")
    print("|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|---:|")
    for fs in fsyncs:
        for mode in MODES:
            reps = by.get((mode, fs), {})
            rs = [r for r in reps.values() if r.get("ok")]
            if not rs:
                continue
            ratios = []
            for rep, r in reps.items():
                ref = by.get(("core", fs), {}).get(rep)
                if r.get("ok") and ref and ref.get("ok") and ref.get("deliveries_per_s"):
                    ratios.append(r["deliveries_per_s"] / ref["deliveries_per_s"])
            qps = med([r["sql_queries"] / r["elapsed_s"] for r in rs
                       if r.get("sql_queries") is not None and r.get("elapsed_s")])
            redis_lat = f"{fnum(us(med([r.get('redis_mean_s') for r in rs])))} " \
                        f"({fnum(us(med([r.get('redis_p99_s') for r in rs])))})"
            sql_lat = f"{fnum(us(med([r.get('sql_mean_s') for r in rs])))} " \
                      f"({fnum(us(med([r.get('sql_p99_s') for r in rs])))})"
            cpu = " / ".join(fnum(med([r.get(f"cpu_{w}_us_per_dlv") for r in rs]), 1)
                             for w in ("sluice", "pg", "redis"))
            ratio = "—" if mode == "core" else ("n/a" if not ratios else f"{med(ratios):.2f}")
            print(f"| {MODE_LABEL[mode]} | {fs} | {fnum(med([r.get('deliveries_per_s') for r in rs]))} "
                  f"| {fnum(med([r.get('msgs_per_s') for r in rs]))} "
                  f"| {fnum(med([r.get('p50') for r in rs]), 2)} "
                  f"| {fnum(med([r.get('p99') for r in rs]), 2)} "
                  f"| {pct(med([r.get('frac_core') for r in rs]))} / "
                  f"{pct(med([r.get('frac_redis') for r in rs]))} / "
                  f"{pct(med([r.get('frac_sql') for r in rs]))} "
                  f"| {fnum(qps)} | {redis_lat} | {sql_lat} | {cpu} | {ratio} |")
    print()
    nrep = len({r["rep"] for r in runs})
    print(f"Medians over {nrep} repetition(s); 'vs core cache' is deliveries/s against mode 3 with "
          "the same fsync, taken within each repetition, then medianed. The tier fractions are "
          "sluice_userdb_lookups_total deltas over the measured run; latencies are the means of "
          "sluice_redis_lookup_seconds / sluice_sql_lookup_seconds over it, p99 as the upper bound "
          "of its histogram bucket.")
    notes = []
    for r in runs:
        where = f"rep {r['rep']}, mode {r['mode']}, fsync {r['fsync']}"
        if not r.get("ok"):
            notes.append(f"{where}: no result from lmtpblast (exit {r['rc']})")
            continue
        if not r.get("alive", True):
            notes.append(f"{where}: sluice was not running after the run")
        bad = {k: v for k, v in (r.get("replies") or {}).items() if str(k) != "250" and v}
        if r.get("errors") or bad:
            notes.append(f"{where}: {r.get('errors', 0)} client errors, non-250 replies {bad}")
        if r.get("redis_error"):
            notes.append(f"{where}: {r['redis_error']:.0f} Redis lookup errors")
        if r.get("tempfail"):
            notes.append(f"{where}: {r['tempfail']:.0f} SQL tempfails")
        want = {"sql": None, "redis": "frac_redis", "core": "frac_core"}[r["mode"]]
        if want and r.get(want) is not None and r[want] < 0.99:
            notes.append(f"{where}: only {pct(r[want])} of the lookups came from the intended tier")
    if notes:
        print()
        print("Runs with errors, unexpected replies or lookups outside their tier:")
        for n in notes:
            print(f"- {n}")
    else:
        print("Every run: 0 client errors and only 250 replies.")


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "redis-fill":
        redis_fill(int(args[0]), args[1], int(args[2]))
    elif cmd == "entry":
        print(entry(args[0]))
    elif cmd == "maildirs":
        maildirs(args[0], int(args[1]))
    elif cmd == "metrics":
        metrics(int(args[0]), args[1])
    elif cmd == "prime":
        prime(int(args[0]), int(args[1]), int(args[2]))
    elif cmd == "record":
        record(args[0], args[1:])
    elif cmd == "table":
        table(args[0])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Helper for bench/compare (python3 standard library only).

  compare.py ports N                 N free TCP ports on 127.0.0.1, one per line
  compare.py sample PID              "CPU_MS RSS_KIB NPROCS" over PID's process tree
  compare.py record OUT.jsonl K=V... BLAST.json
                                     merges one lmtpblast result with the server
                                     metrics into a line of OUT.jsonl and prints a
                                     one-line summary of the run
  compare.py snap OUT.json           snapshot of every process's CPU and /proc/stat
  compare.py foreign START END PID   CPU used between two snapshots by processes
                                     outside PID's tree (line 1: a sentence,
                                     line 2: other user processes' % of capacity)
  compare.py fallback-json MSGS RCPTS SECONDS
                                     lmtpblast-shaped JSON for a smtp-source run
  compare.py table RUNS.jsonl [--brief]
                                     the markdown table of medians and ratios,
                                     then notes on errors and unexpected replies
                                     (--brief: only the table and the errors)

CPU of a process tree: utime+stime (fields 14-15 of /proc/PID/stat) of every
live process in the tree plus cutime+cstime (16-17): children that already
exited and were reaped by a live process of the tree are counted there, and
each exited process is counted exactly once (by the live ancestor that holds
it in its cutime). RSS: the sum of VmRSS over the live processes of the tree
(shared pages are counted once per process that maps them).
"""

import json
import os
import socket
import statistics
import sys

SERVERS = ("sluice", "dovecot", "smtp-sink")
LABEL = {"sluice": "sluice", "dovecot": "Dovecot 2.3", "smtp-sink": "smtp-sink"}


def ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    for s in socks:
        print(s.getsockname()[1])


def proc_stats():
    """(pid, comm, ppid, ticks, starttime) for every process; ticks are
    utime + stime + cutime + cstime (fields 14-17 of /proc/PID/stat)."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        rest = st[st.rindex(")") + 2:].split()
        # rest[0] is field 3 (state): field n is rest[n - 3]
        ticks = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
        yield int(d), comm, int(rest[1]), ticks, int(rest[19])


def read_procs():
    return {pid: {"ppid": ppid, "ticks": ticks} for pid, _c, ppid, ticks, _s in proc_stats()}


def tree(root, procs):
    kids = {}
    for pid, p in procs.items():
        kids.setdefault(p["ppid"], []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            out.append(pid)
            todo.extend(kids.get(pid, []))
    return out


def vmrss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def sample(root):
    procs = read_procs()
    pids = tree(root, procs)
    hz = os.sysconf("SC_CLK_TCK")
    ticks = sum(procs[p]["ticks"] for p in pids)
    rss = sum(vmrss_kib(p) for p in pids)
    print(f"{ticks * 1000.0 / hz:.1f} {rss} {len(pids)}")


def snap(out):
    """All processes (comm, ticks, starttime, ppid) and the /proc/stat cpu line."""
    procs = {str(pid): [comm, ticks, start, ppid]
             for pid, comm, ppid, ticks, start in proc_stats()}
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    with open(out, "w") as f:
        json.dump({"procs": procs, "cpu": cpu}, f)


def foreign(start, end, root):
    """What else used the CPU between two snapshots: processes outside ROOT's tree."""
    a = json.load(open(start))
    b = json.load(open(end))
    hz = os.sysconf("SC_CLK_TCK")
    procs = {int(k): {"ppid": v[3], "ticks": v[1]} for k, v in b["procs"].items()}
    ours = set(tree(int(root), procs))
    user, kern = {}, {}
    for pid, (comm, ticks, start_t, ppid) in b["procs"].items():
        if int(pid) in ours:
            continue
        old = a["procs"].get(pid)
        d = ticks - old[1] if old and old[2] == start_t else ticks
        if d <= 0:
            continue
        bucket = kern if (ppid == 2 or pid == "2") else user
        name = comm.split("/")[0]
        bucket[name] = bucket.get(name, 0) + d
    ca, cb = a["cpu"], b["cpu"]
    delta = [y - x for x, y in zip(ca, cb)]
    total = sum(delta[:8])
    idle = delta[3] + delta[4]
    steal = delta[7] if len(delta) > 7 else 0
    secs = total / hz / (os.cpu_count() or 1)

    def top(d):
        items = sorted(d.items(), key=lambda kv: -kv[1])[:4]
        return ", ".join(f"{k} {v / hz:.1f}" for k, v in items) or "none"

    us, ks = sum(user.values()), sum(kern.values())
    cap = total or 1
    print(f"over {secs:.0f} s the CPUs were {100.0 * (total - idle) / cap:.0f}% busy "
          f"(steal {100.0 * steal / cap:.1f}%); other user processes used {us / hz:.1f} CPU-s "
          f"({100.0 * us / cap:.1f}% of capacity; top: {top(user)}), kernel threads {ks / hz:.1f} "
          f"CPU-s ({100.0 * ks / cap:.1f}%, partly this benchmark's own I/O; top: {top(kern)})")
    print(f"{100.0 * us / cap:.1f}")


def fnum(v, nd=0):
    if v is None:
        return "n/a"
    if nd == 0:
        return f"{v:,.0f}"
    return f"{v:,.{nd}f}"


def record(out, args):
    blast_file = args[-1]
    meta = {}
    for kv in args[:-1]:
        k, v = kv.split("=", 1)
        meta[k] = v
    r = {
        "rep": int(meta["rep"]), "size": int(meta["size"]), "rcpts": int(meta["rcpts"]),
        "conns": int(meta["conns"]), "server": meta["server"], "order": int(meta["order"]),
        "rc": int(meta["rc"]),
    }
    blast = None
    try:
        with open(blast_file) as f:
            text = f.read().strip()
        # the JSON object is the last non-empty line (tolerates a banner before it)
        for line in reversed(text.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                blast = json.loads(line)
                break
    except (OSError, ValueError):
        blast = None
    r["ok"] = blast is not None
    if blast is not None:
        lat = blast.get("latency_ms") or {}
        r.update({
            "msgs_per_s": blast.get("msgs_per_s"),
            "deliveries_per_s": blast.get("deliveries_per_s"),
            "messages": blast.get("messages"),
            "deliveries": blast.get("deliveries"),
            "elapsed_s": blast.get("elapsed_s"),
            "p50": lat.get("p50"), "p99": lat.get("p99"), "p999": lat.get("p999"),
            "max": lat.get("max"),
            "replies": blast.get("replies") or {},
            "errors": blast.get("errors") or 0,
            "client_cpu_ms_per_msg": blast.get("client_cpu_ms_per_msg"),
        })
    cpu0, cpu1 = float(meta["cpu0"]), float(meta["cpu1"])
    r["server_cpu_ms"] = cpu1 - cpu0
    msgs = r.get("messages") or 0
    r["cpu_ms_per_msg"] = (cpu1 - cpu0) / msgs if msgs else None
    r["rss_mib"] = int(meta["rss_kib"]) / 1024.0
    r["nprocs"] = int(meta["nprocs"])
    r["alive"] = meta.get("alive", "1") == "1"
    with open(out, "a") as f:
        f.write(json.dumps(r) + "\n")
    bad = non250(r)
    print(f"  {r['server']:<9} {fnum(r.get('msgs_per_s')):>7} msg/s "
          f"{fnum(r.get('deliveries_per_s')):>7} dlv/s  p50 {fnum(r.get('p50'), 2)} "
          f"p99 {fnum(r.get('p99'), 2)} ms  cpu {fnum(r['cpu_ms_per_msg'], 3)} ms/msg  "
          f"rss {r['rss_mib']:.1f} MiB ({r['nprocs']} procs)"
          + (f"  errors {r.get('errors')}" if r.get("errors") else "")
          + (f"  non-250 {bad}" if bad else "")
          + ("" if r["ok"] else f"  NO RESULT (rc {r['rc']})")
          + ("" if r["alive"] else "  SERVER DEAD"))


def non250(r):
    return {k: v for k, v in (r.get("replies") or {}).items() if str(k) != "250" and v}


def fallback_json(msgs, rcpts, secs):
    msgs, rcpts, secs = int(msgs), int(rcpts), float(secs)
    print(json.dumps({
        "msgs_per_s": msgs / secs, "deliveries_per_s": msgs * rcpts / secs,
        "messages": msgs, "deliveries": msgs * rcpts, "elapsed_s": secs,
        "latency_ms": {"p50": None, "p90": None, "p99": None, "p999": None, "max": None},
        "replies": {}, "errors": 0, "client_cpu_ms_per_msg": None,
    }))


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def table(path, brief=False):
    runs = []
    with open(path) as f:
        for line in f:
            if line.strip():
                runs.append(json.loads(line))
    points = []
    for r in runs:
        p = (r["size"], r["rcpts"], r["conns"])
        if p not in points:
            points.append(p)
    points.sort()
    by = {}
    for r in runs:
        by.setdefault((r["size"], r["rcpts"], r["conns"], r["server"]), {})[r["rep"]] = r

    def rate(r):
        if r is None or not r.get("ok") or not r.get("msgs_per_s"):
            return None
        return r["msgs_per_s"]

    print("| size | rcpts | conns | server | msg/s | deliveries/s | p50 ms | p99 ms "
          "| CPU ms/msg | RSS MiB | ratio msg/s vs Dovecot | ratio vs smtp-sink |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    summary = []
    for (size, rcpts, conns) in points:
        for srv in SERVERS:
            reps = by.get((size, rcpts, conns, srv), {})
            if not reps:
                continue
            rs = [r for r in reps.values() if r.get("ok")]
            ratios = {}
            for other in ("dovecot", "smtp-sink"):
                if other == srv:
                    ratios[other] = "—"
                    continue
                vals = []
                for rep, r in reps.items():
                    a = rate(r)
                    b = rate(by.get((size, rcpts, conns, other), {}).get(rep))
                    if a is not None and b:
                        vals.append(a / b)
                m = med(vals)
                ratios[other] = "n/a" if m is None else f"{m:.2f}"
                if srv == "sluice" and other == "dovecot" and m is not None:
                    summary.append(m)
            sz = f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"
            print(f"| {sz} | {rcpts} | {conns} | {LABEL[srv]} "
                  f"| {fnum(med([r.get('msgs_per_s') for r in rs]))} "
                  f"| {fnum(med([r.get('deliveries_per_s') for r in rs]))} "
                  f"| {fnum(med([r.get('p50') for r in rs]), 2)} "
                  f"| {fnum(med([r.get('p99') for r in rs]), 2)} "
                  f"| {fnum(med([r.get('cpu_ms_per_msg') for r in rs]), 3)} "
                  f"| {fnum(med([r.get('rss_mib') for r in rs]), 1)} "
                  f"| {ratios['dovecot']} | {ratios['smtp-sink']} |")
    print()
    notes = run_notes(runs)
    if brief:
        for n in notes:
            print(f"- {n}")
        return
    nrep = len({r["rep"] for r in runs})
    print(f"Medians over {nrep} repetition(s); ratios are computed within each repetition, "
          "then medianed; '—' is the server against itself.")
    if summary:
        print(f"sluice/Dovecot msg/s over the {len(summary)} points: "
              f"min {min(summary):.2f}, median {statistics.median(summary):.2f}, "
              f"max {max(summary):.2f}.")
    if notes:
        print()
        print("Runs with errors, unexpected replies or far from their median:")
        for n in notes:
            print(f"- {n}")
    else:
        print("Every run: 0 client errors and only 250 replies.")


def run_notes(runs):
    notes = []
    for r in runs:
        where = (f"rep {r['rep']}, {r['size']} B, {r['rcpts']} rcpt, {r['conns']} conn, "
                 f"{LABEL[r['server']]}")
        if not r.get("ok"):
            notes.append(f"{where}: no result from the load generator (exit {r['rc']})")
            continue
        if not r.get("alive", True):
            notes.append(f"{where}: server was not running after the run")
        bad = non250(r)
        if r.get("errors") or bad:
            notes.append(f"{where}: {r.get('errors', 0)} client errors, non-250 replies {bad}")
    # outliers: a run at less than half (or more than twice) the median of its point
    groups = {}
    for r in runs:
        if r.get("ok") and r.get("msgs_per_s"):
            groups.setdefault((r["size"], r["rcpts"], r["conns"], r["server"]), []).append(r)
    for key, rs in sorted(groups.items()):
        if len(rs) < 3:
            continue
        m = statistics.median(r["msgs_per_s"] for r in rs)
        for r in rs:
            if r["msgs_per_s"] < 0.5 * m or r["msgs_per_s"] > 2 * m:
                notes.append(
                    f"outlier: rep {r['rep']}, {r['size']} B, {r['rcpts']} rcpt, {r['conns']} conn, "
                    f"{LABEL[r['server']]}: {r['msgs_per_s']:,.0f} msg/s against a median of {m:,.0f} "
                    f"(p50 {fnum(r.get('p50'), 2)} ms, p99 {fnum(r.get('p99'), 2)} ms, "
                    f"max {fnum(r.get('max'), 1)} ms)")
    return notes


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[1]
    if cmd == "ports":
        ports(int(argv[2]))
    elif cmd == "sample":
        sample(int(argv[2]))
    elif cmd == "record":
        record(argv[2], argv[3:])
    elif cmd == "snap":
        snap(argv[2])
    elif cmd == "foreign":
        foreign(argv[2], argv[3], argv[4])
    elif cmd == "fallback-json":
        fallback_json(*argv[2:5])
    elif cmd == "table":
        table(argv[2], brief=len(argv) > 3 and argv[3] == "--brief")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

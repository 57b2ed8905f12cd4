"""SMTP AUTH endpoint checks: speaks the Dovecot auth client protocol (what
Postfix's smtpd_sasl_type = dovecot sends) to a running sluice, byte for
byte, with the client side of PLAIN, LOGIN, CRAM-MD5 and SCRAM-SHA-256 done
here (hmac/hashlib). Prints ok/FAIL lines (itest.Checks) for lib.sh's t_py.

usage: auth_check.py PHASE ARGS...
  main HOST PORT UNIX_SOCK SPID STATS_PORT   everything that needs one server
  down HOST PORT DB                          passdb down: connection closed, then recovery
"""

import base64
import hashlib
import hmac
import os
import socket
import sqlite3
import sys
import threading
import time
import urllib.request

from itest import CHECK

DEMO = "demo"
U1 = "user0001@example.test"
U2 = "user0002@example.test"
U3 = "user0003@example.test"  # looked up only in the outage phase
CRYPT_USER = "crypt@example.test"
CRYPT_PASS = "s3cret-crypt"


def b64(data):
    return base64.b64encode(data).decode()


class Conn:
    """One auth client connection; lines are str without the LF."""

    def __init__(self, host, port=None, unix=None, handshake=True):
        if unix is not None:
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.connect(unix)
        else:
            self.s = socket.create_connection((host, port))
        self.s.settimeout(15)
        self.buf = b""
        self.greeting = []
        if handshake:
            self.greeting = self.read_handshake()
            self.send("VERSION\t1\t0\nCPID\t4242\n")

    def send(self, text):
        self.s.sendall(text.encode() if isinstance(text, str) else text)

    def line(self, timeout=15):
        self.s.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                return None  # closed
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.decode()

    def read_handshake(self):
        lines = []
        while True:
            ln = self.line()
            if ln is None:
                return lines
            lines.append(ln)
            if ln == "DONE":
                return lines

    def closed_within(self, seconds):
        """True if the server closes the connection within seconds (no more lines)."""
        end = time.time() + seconds
        while time.time() < end:
            try:
                ln = self.line(timeout=max(0.05, end - time.time()))
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if ln is None:
                return True
        return False

    def close(self):
        self.s.close()


def auth_line(rid, mech, rip, resp=None, extra=""):
    ln = f"AUTH\t{rid}\t{mech}\tservice=smtp\tnologin\tlip=127.0.0.1\trip={rip}{extra}"
    if resp is not None:
        ln += "\tresp=" + resp
    return ln + "\n"


def plain_resp(user, password):
    return b64(b"\0" + user.encode() + b"\0" + password.encode())


def timed_plain(c, rid, user, password, rip):
    t = time.time()
    c.send(auth_line(rid, "PLAIN", rip, plain_resp(user, password)))
    ln = c.line()
    return ln, time.time() - t


# ---- mechanisms, client side ------------------------------------------------


def login(c, rid, user, password, rip):
    c.send(auth_line(rid, "LOGIN", rip))
    a = c.line()
    c.send(f"CONT\t{rid}\t{b64(user.encode())}\n")
    b = c.line()
    c.send(f"CONT\t{rid}\t{b64(password.encode())}\n")
    return a, b, c.line()


def cram_md5(c, rid, user, password, rip):
    c.send(auth_line(rid, "CRAM-MD5", rip))
    ln = c.line()
    parts = ln.split("\t")
    if parts[0] != "CONT":
        return ln, None
    challenge = base64.b64decode(parts[2])
    digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
    c.send(f"CONT\t{rid}\t{b64(f'{user} {digest}'.encode())}\n")
    return c.line(), challenge


def scram_sha256(c, rid, user, password, rip, tamper=False):
    """Returns (final line, server signature verified)."""
    cnonce = b64(os.urandom(18))
    first_bare = f"n={user},r={cnonce}"
    c.send(auth_line(rid, "SCRAM-SHA-256", rip, b64(("n,," + first_bare).encode())))
    ln = c.line()
    parts = ln.split("\t")
    if parts[0] != "CONT":
        return ln, False
    server_first = base64.b64decode(parts[2]).decode()
    fields = dict(kv.split("=", 1) for kv in server_first.split(","))
    if not fields["r"].startswith(cnonce):
        return "server nonce does not extend the client nonce", False
    salt = base64.b64decode(fields["s"])
    iters = int(fields["i"])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    final_wo_proof = f"c={b64(b'n,,')},r={fields['r']}"
    auth_msg = f"{first_bare},{server_first},{final_wo_proof}".encode()
    sig = hmac.new(stored_key, auth_msg, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    if tamper:
        proof = bytes([proof[0] ^ 1]) + proof[1:]
    c.send(f"CONT\t{rid}\t{b64((final_wo_proof + ',p=' + b64(proof)).encode())}\n")
    ln = c.line()
    parts = ln.split("\t")
    if parts[0] != "CONT":
        return ln, False
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    want_v = "v=" + b64(hmac.new(server_key, auth_msg, hashlib.sha256).digest())
    verified = base64.b64decode(parts[2]).decode() == want_v
    c.send(f"CONT\t{rid}\t\n")  # the empty reply to the server's final message
    return c.line(), verified


# ---- phases ---------------------------------------------------------------


def check_handshake(host, port, spid):
    c = Conn(host, port, handshake=False)
    g = c.read_handshake()
    want_head = [
        "VERSION\t1\t2",
        "MECH\tPLAIN\tplaintext",
        "MECH\tLOGIN\tplaintext",
        "MECH\tCRAM-MD5\tdictionary\tactive",
        "MECH\tSCRAM-SHA-256\tmutual-auth",
        f"SPID\t{spid}",
    ]
    CHECK.eq("handshake: VERSION, MECH lines with flags in configured order, SPID", g[:6], want_head)
    CHECK.match("handshake: CUID is a number", g[6] if len(g) > 6 else None, r"CUID\t[0-9]+")
    CHECK.match("handshake: COOKIE is 32 hex digits", g[7] if len(g) > 7 else None,
                r"COOKIE\t[0-9a-f]{32}")
    CHECK.eq("handshake: DONE last, nothing else", g[8:], ["DONE"])
    c2 = Conn(host, port, handshake=False)
    g2 = c2.read_handshake()
    CHECK.true("handshake: each connection gets its own CUID and COOKIE",
               len(g2) == 9 and g2[6] != g[6] and g2[7] != g[7], got=(g[6:8], g2[6:8]))
    c2.send("VERSION\t2\t0\n")
    CHECK.true("VERSION major 2: disconnected", c2.closed_within(3))
    c.send("VERSION\t1\t0\n")
    c.send(auth_line(1, "PLAIN", "192.0.2.200", plain_resp(U1, DEMO)))
    CHECK.true("AUTH before CPID: disconnected", c.closed_within(3))


def check_plain_login(host, port):
    c = Conn(host, port)
    ln, took = timed_plain(c, 1, U1, DEMO, "192.0.2.1")
    CHECK.eq("PLAIN, right password: OK with user=", ln, f"OK\t1\tuser={U1}")
    CHECK.true("PLAIN OK is not delayed", took < 1.0, got=f"{took:.2f}s", want="< 1s")
    ln, took = timed_plain(c, 2, "USER0001@Example.Test", DEMO, "192.0.2.1")
    CHECK.eq("PLAIN: the user name is looked up lower-cased", ln, f"OK\t2\tuser={U1}")
    wrong, t_wrong = timed_plain(c, 3, U1, "not-the-password", "192.0.2.2")
    unknown, t_unknown = timed_plain(c, 4, "nobody@example.test", DEMO, "192.0.2.3")
    CHECK.eq("PLAIN, wrong password: FAIL", wrong, "FAIL\t3")
    CHECK.eq("PLAIN, unknown user: the same FAIL text",
             unknown.replace("FAIL\t4", "FAIL\t3", 1) if unknown else unknown, wrong)
    for what, took in (("wrong password", t_wrong), ("unknown user", t_unknown)):
        CHECK.true(f"FAIL for {what} held for the failure delay (~2 s)", 1.8 <= took <= 3.5,
                   got=f"{took:.2f}s", want="1.8..3.5s")
    a, b, final = login(c, 5, U2, DEMO, "192.0.2.4")
    CHECK.eq("LOGIN: first challenge asks for the user name", a, f"CONT\t5\t{b64(b'Username:')}")
    CHECK.eq("LOGIN: second challenge asks for the password", b, f"CONT\t5\t{b64(b'Password:')}")
    CHECK.eq("LOGIN: OK", final, f"OK\t5\tuser={U2}")
    ln, _ = timed_plain(c, 6, CRYPT_USER, CRYPT_PASS, "192.0.2.5")
    CHECK.eq("PLAIN against a {SHA512-CRYPT} password (worker thread): OK", ln,
             f"OK\t6\tuser={CRYPT_USER}")
    ln, _ = timed_plain(c, 7, CRYPT_USER, "wrong", "192.0.2.6")
    CHECK.eq("PLAIN against {SHA512-CRYPT}, wrong password: FAIL", ln, "FAIL\t7")
    c.send(auth_line(8, "NOSUCH-MECH", "192.0.2.7", plain_resp(U1, DEMO)))
    t = time.time()
    ln = c.line()
    CHECK.eq("unknown mechanism: FAIL", ln,
             "FAIL\t8\tcode=auth_mech_invalid\treason=Unsupported authentication mechanism")
    CHECK.true("unknown mechanism: answered at once", time.time() - t < 1.0)
    c.send(auth_line(9, "DIGEST-MD5", "192.0.2.7"))
    CHECK.eq("a mechanism not offered: FAIL", c.line(),
             "FAIL\t9\tcode=auth_mech_invalid\treason=Unsupported authentication mechanism")
    c.send(auth_line(10, "PLAIN", "192.0.2.8", "not*base64"))
    CHECK.eq("invalid base64 in resp=: FAIL code=invalid_base64", c.line(),
             "FAIL\t10\tcode=invalid_base64\treason=Invalid base64 data in initial response")
    c.close()


def check_cram_scram(host, port):
    c = Conn(host, port)
    ln, challenge = cram_md5(c, 1, U1, DEMO, "192.0.2.20")
    CHECK.eq("CRAM-MD5 with a {PLAIN} password: OK", ln, f"OK\t1\tuser={U1}")
    CHECK.match("CRAM-MD5 challenge shape <random.time@host>",
                challenge.decode() if challenge else None, r"<[0-9]+\.[0-9]+@[^>]+>")
    ln, _ = cram_md5(c, 2, U1, "wrong", "192.0.2.21")
    CHECK.eq("CRAM-MD5, wrong secret: FAIL", ln, "FAIL\t2")
    ln, _ = cram_md5(c, 3, CRYPT_USER, CRYPT_PASS, "192.0.2.22")
    CHECK.eq("CRAM-MD5 for a {SHA512-CRYPT} user (cannot be served): FAIL", ln,
             "FAIL\t3")
    ln, verified = scram_sha256(c, 4, U2, DEMO, "192.0.2.23")
    CHECK.eq("SCRAM-SHA-256 with a {PLAIN} password: OK", ln, f"OK\t4\tuser={U2}")
    CHECK.true("SCRAM-SHA-256: the server's signature verifies (mutual auth)", verified)
    ln, _ = scram_sha256(c, 5, U2, DEMO, "192.0.2.24", tamper=True)
    CHECK.eq("SCRAM-SHA-256, bad proof: FAIL", ln, "FAIL\t5")
    c.close()


def check_cancel_and_limits(host, port):
    c = Conn(host, port)
    c.send(auth_line(1, "LOGIN", "192.0.2.30"))
    CHECK.eq("CANCEL: request under way", c.line(), f"CONT\t1\t{b64(b'Username:')}")
    c.send("CANCEL\t1\n")
    a, b, final = login(c, 1, U1, DEMO, "192.0.2.30")
    CHECK.eq("after CANCEL the id is free again and the connection works", final, f"OK\t1\tuser={U1}")
    c.send("CONT\t77\tAAAA\n")
    CHECK.eq("CONT for an unknown id: FAIL timed out", c.line(),
             "FAIL\t77\treason=Authentication request timed out")
    # the cap (auth_requests_per_conn_max = 3 in this test's config)
    for rid in (11, 12, 13):
        c.send(auth_line(rid, "LOGIN", "192.0.2.31"))
        c.line()
    c.send(auth_line(14, "LOGIN", "192.0.2.31"))
    t = time.time()
    ln = c.line()
    CHECK.eq("a request over auth_requests_per_conn_max: FAIL code=temp_fail", ln,
             "FAIL\t14\tcode=temp_fail\treason=Too many concurrent requests")
    CHECK.true("the over-cap FAIL comes at once", time.time() - t < 1.0)
    c.send("CANCEL\t11\nCANCEL\t12\nCANCEL\t13\n")
    ln, _ = timed_plain(c, 15, U1, DEMO, "192.0.2.31")
    CHECK.eq("after cancelling, requests are accepted again", ln, f"OK\t15\tuser={U1}")
    c.send(auth_line(16, "PLAIN", "192.0.2.32", plain_resp(U1, DEMO)).replace("\n", "\tlport=25\n"))
    CHECK.true("a parameter after resp=: disconnected", c.closed_within(3))

    c = Conn(host, port)
    c.send("AUTH\t1\tPLAIN\tlip=127.0.0.1\trip=192.0.2.33\tresp=" + plain_resp(U1, DEMO) + "\n")
    CHECK.true("AUTH without service=: disconnected", c.closed_within(3))
    c = Conn(host, port)
    c.send(auth_line(1, "PLAIN", "192.0.2.34", "A" * 16384))
    CHECK.true("a line over 16 KiB: disconnected", c.closed_within(3))
    c = Conn(host, port)
    c.send(auth_line(1, "LOGIN", "192.0.2.35"))
    c.line()
    c.send(auth_line(1, "PLAIN", "192.0.2.35", plain_resp(U1, DEMO)))
    CHECK.true("a duplicate id of a request under way: disconnected", c.closed_within(3))
    c = Conn(host, port)
    c.send("HELLO\tworld\n")
    CHECK.true("an unknown command: disconnected", c.closed_within(3))
    # a line of exactly 16 KiB (LF included) is still accepted
    c = Conn(host, port)
    base = auth_line(1, "PLAIN", "192.0.2.36", plain_resp(U1, DEMO))[:-1]
    pad = "\tx-pad=" + "p" * (16384 - len(base) - len("\tx-pad=") - 1)
    ln = base.replace("\tresp=", pad + "\tresp=") + "\n"
    c.send(ln)
    CHECK.eq("a 16384-byte line (unknown parameter ignored): OK", (len(ln), c.line()),
             (16384, f"OK\t1\tuser={U1}"))


def check_delay_not_blocking(host, port):
    """A held FAIL does not stall other requests, on another connection or this one."""
    a = Conn(host, port)
    b = Conn(host, port)
    t0 = time.time()
    a.send(auth_line(1, "PLAIN", "192.0.2.40", plain_resp(U1, "wrong")))
    time.sleep(0.2)
    ln_b, took_b = timed_plain(b, 1, U1, DEMO, "192.0.2.41")
    ln_a2, took_a2 = timed_plain(a, 2, U2, DEMO, "192.0.2.42")
    ln_a = a.line()
    took_a = time.time() - t0
    CHECK.eq("failure delay: other connection answered", ln_b, f"OK\t1\tuser={U1}")
    CHECK.true("failure delay: other connection not blocked", took_b < 1.0, got=f"{took_b:.2f}s")
    CHECK.eq("failure delay: same connection, next request answered first", ln_a2,
             f"OK\t2\tuser={U2}")
    CHECK.true("failure delay: same connection not blocked", took_a2 < 1.0, got=f"{took_a2:.2f}s")
    CHECK.eq("failure delay: the held FAIL arrives", ln_a, "FAIL\t1")
    CHECK.true("failure delay: FAIL ~2 s after the AUTH", 1.8 <= took_a <= 3.5, got=f"{took_a:.2f}s")


def check_penalty(host, port):
    """One rip fails repeatedly and waits longer each time; another does not.
    Every guess is a new password: a repeated one does not raise the penalty
    (checked in test_auth_bruteforce)."""
    x = Conn(host, port)
    y = Conn(host, port)
    times = []
    for rid in (1, 2, 3):
        ln, took = timed_plain(x, rid, U1, "wrong-%d" % rid, "198.51.100.9")
        CHECK.eq(f"penalty: failure {rid} from one rip is a FAIL", ln, f"FAIL\t{rid}")
        times.append(took)
    ln, took_y = timed_plain(y, 1, U1, "wrong", "203.0.113.9")
    CHECK.eq("penalty: another rip fails normally", ln, "FAIL\t1")
    CHECK.true("penalty: first failure takes only the failure delay", times[0] < 3.0,
               got=f"{times[0]:.2f}s")
    CHECK.true("penalty: the third AUTH from the same rip is held (>= 3.5 s)", times[2] >= 3.5,
               got=[f"{t:.2f}" for t in times])
    CHECK.true("penalty: capped below Postfix's 10 s timeout", max(times) < 9.0,
               got=[f"{t:.2f}" for t in times])
    CHECK.true("penalty: another rip is not penalised", took_y < 3.0, got=f"{took_y:.2f}s")
    # a penalised IPv6 /48 covers its neighbours
    ln, _ = timed_plain(y, 2, U1, "wrong-a", "2001:db8:5::1")
    ln, _ = timed_plain(y, 3, U1, "wrong-b", "2001:db8:5::2")
    ln, took = timed_plain(y, 4, U1, DEMO, "2001:db8:5:ffff::3")
    CHECK.eq("penalty: a held right password still succeeds", ln, f"OK\t4\tuser={U1}")
    CHECK.true("penalty: IPv6 penalised by /48", took >= 1.5, got=f"{took:.2f}s")


def check_unix(unix):
    c = Conn(None, unix=unix)
    CHECK.eq("UNIX socket: handshake", c.greeting[0] if c.greeting else None, "VERSION\t1\t2")
    ln, _ = timed_plain(c, 1, U1, DEMO, "192.0.2.50")
    CHECK.eq("UNIX socket: PLAIN OK", ln, f"OK\t1\tuser={U1}")


def metric(stats_port, name):
    body = urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/metrics", timeout=5).read().decode()
    for ln in body.splitlines():
        if ln.startswith(name + " "):
            return int(float(ln.split()[1]))
    return None


def check_stats(stats_port):
    ok = metric(stats_port, 'sluice_auth_requests_total{mechanism="PLAIN",result="ok"}')
    fail = metric(stats_port, 'sluice_auth_requests_total{mechanism="PLAIN",result="fail"}')
    scram = metric(stats_port, 'sluice_auth_requests_total{mechanism="SCRAM-SHA-256",result="ok"}')
    unknown = metric(stats_port, 'sluice_auth_requests_total{mechanism="unknown",result="fail"}')
    pen = metric(stats_port, "sluice_auth_penalties_total")
    conns = metric(stats_port, "sluice_auth_connections_total")
    cancel = metric(stats_port, 'sluice_auth_requests_total{mechanism="LOGIN",result="cancel"}')
    # Counted from the phases above: every PLAIN success and failure, the
    # LOGINs cancelled (4) or cut off by a disconnect (1).
    CHECK.eq("stats: PLAIN ok counted", ok, 9)
    CHECK.eq("stats: PLAIN fail counted", fail, 11)
    CHECK.eq("stats: LOGIN cancel counted", cancel, 5)
    CHECK.eq("stats: SCRAM-SHA-256 ok counted", scram, 1)
    CHECK.eq("stats: unknown mechanisms counted", unknown, 2)
    CHECK.true("stats: penalties counted", pen is not None and pen >= 2, got=pen, want=">= 2")
    CHECK.true("stats: connections counted", conns is not None and conns >= 15, got=conns)


def phase_main(host, port, unix, spid, stats_port):
    port = int(port)
    check_handshake(host, port, spid)
    check_plain_login(host, port)
    check_cram_scram(host, port)
    check_cancel_and_limits(host, port)
    check_delay_not_blocking(host, port)
    check_penalty(host, port)
    check_unix(unix)
    check_stats(int(stats_port))


def phase_down(host, port, db):
    """Hold an exclusive lock on the SQLite passdb: lookups fail (busy) as
    with a database that is down."""
    port = int(port)
    c = Conn(host, port)
    ln, _ = timed_plain(c, 1, U1, DEMO, "192.0.2.60")
    CHECK.eq("backend up: OK (and cached)", ln, f"OK\t1\tuser={U1}")
    t_cached = time.time()
    lock = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        ln, _ = timed_plain(c, 2, U1, DEMO, "192.0.2.60")
        CHECK.eq("backend down: a cached user still logs in", ln, f"OK\t2\tuser={U1}")
        t = time.time()
        c.send(auth_line(3, "PLAIN", "192.0.2.61", plain_resp(U3, DEMO)))
        closed = c.closed_within(8)
        CHECK.true("backend down, user not cached: connection closed (Postfix: 454 4.7.0)", closed,
                   got="no close", want="closed")
        CHECK.true("backend down: closed within Postfix's 10 s", time.time() - t < 9.0,
                   got=f"{time.time() - t:.2f}s")
        # auth_cache_ttl = 3s in this test's config: U1's entry has expired by now
        time.sleep(max(0.0, 3.5 - (time.time() - t_cached)))
        c = Conn(host, port)
        ln, took = timed_plain(c, 1, U1, DEMO, "192.0.2.62")
        CHECK.eq("backend down, cache entry expired: served stale (auth_cache_serve_stale)", ln,
                 f"OK\t1\tuser={U1}")
        CHECK.true("... after the backend's answer (busy timeout), within 10 s", took < 9.0,
                   got=f"{took:.2f}s")
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    c = Conn(host, port)
    ln, _ = timed_plain(c, 1, U3, DEMO, "192.0.2.61")
    CHECK.eq("backend back: the same user logs in on a new connection", ln, f"OK\t1\tuser={U3}")


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    phase, args = sys.argv[1], sys.argv[2:]
    {"main": phase_main, "down": phase_down}[phase](*args)
    CHECK.done()


if __name__ == "__main__":
    main()

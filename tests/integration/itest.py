"""Helpers for the sluice integration tests (python3 standard library only).

- Checks: ok/FAIL lines with got/want, counted by lib.sh's t_py.
- Lmtp: a client that sends exact bytes and reads replies line by line, so a
  test controls pipelining and chunking byte for byte.
- Maildir readers: list deliveries, split off the headers sluice prepends,
  check file names against the interface (S= and W=).
"""

import os
import re
import socket
import sys
import time

HOST = os.environ.get("WANT_HOSTNAME", "mx.test")


class Checks:
    def __init__(self):
        self.fails = 0
        self.count = 0

    def ok(self, what):
        self.count += 1
        print(f"ok   - {what}", flush=True)
        return True

    def fail(self, what, got=None, want=None):
        self.count += 1
        self.fails += 1
        print(f"FAIL - {what}", flush=True)
        if got is not None:
            print(f"       got:  {got!r}" if not isinstance(got, str) else f"       got:  {got}")
        if want is not None:
            print(f"       want: {want!r}" if not isinstance(want, str) else f"       want: {want}")
        sys.stdout.flush()
        return False

    def eq(self, what, got, want):
        if got == want:
            return self.ok(what)
        return self.fail(what, show(got), show(want))

    def match(self, what, got, regex):
        if got is not None and re.fullmatch(regex, got, re.S):
            return self.ok(what)
        return self.fail(what, show(got), f"/{regex}/")

    def true(self, what, cond, got=None, want=None):
        if cond:
            return self.ok(what)
        return self.fail(what, got, want)

    def done(self):
        print(f"# {self.count - self.fails} of {self.count} checks passed", flush=True)
        sys.exit(1 if self.fails else 0)


CHECK = Checks()


def show(v, limit=600):
    """A printable, bounded rendering of a value for got/want lines."""
    if isinstance(v, (bytes, bytearray)):
        s = repr(bytes(v))
    elif isinstance(v, str):
        s = v
    else:
        s = repr(v)
    if len(s) > limit:
        s = s[:limit] + f"... ({len(s)} chars)"
    return s


class Closed(Exception):
    pass


class Lmtp:
    """One LMTP connection. target: (host, port) or a UNIX socket path."""

    def __init__(self, target, timeout=10.0, source=None):
        self.timeout = timeout
        if isinstance(target, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if source:
                self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect(target)
        self.buf = b""
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise Closed()
        self.buf += chunk

    def line(self, timeout=None):
        """Next reply line without CRLF (str); raises Closed at EOF, socket.timeout."""
        t = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + t
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self._fill(left)
        raw, self.buf = self.buf.split(b"\n", 1)
        return raw.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self, timeout=None):
        """Next complete reply: list of lines (multi-line replies use 'ddd-')."""
        lines = []
        while True:
            ln = self.line(timeout)
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                return lines

    def r(self, timeout=None):
        """Next reply as one string (lines joined with '|'); '<EOF>' or '<TIMEOUT>'."""
        try:
            return "|".join(self.reply(timeout))
        except Closed:
            return "<EOF>"
        except socket.timeout:
            return "<TIMEOUT>"

    def replies(self, n, timeout=None):
        return [self.r(timeout) for _ in range(n)]

    def closed(self, timeout=3.0):
        """True when the peer closes within timeout with no more bytes; returns (closed, extra)."""
        deadline = time.monotonic() + timeout
        extra = self.buf
        self.buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, extra
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False, extra
            except (ConnectionResetError, BrokenPipeError):
                return True, extra
            if not chunk:
                return True, extra
            extra += chunk

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def cmd(self, line, timeout=None):
        self.send(line + "\r\n")
        return self.r(timeout)


def dot_stuff(msg):
    """SMTP transparency for a CRLF message; returns the DATA payload incl. the final dot."""
    if not msg.endswith(b"\r\n"):
        msg += b"\r\n"
    out = []
    for ln in msg.split(b"\r\n")[:-1]:
        out.append((b"." + ln) if ln.startswith(b".") else ln)
    return b"\r\n".join(out) + b"\r\n.\r\n"


def make_msg(marker, body_bytes=200, sender="sender@example.org", to="rcpt@example.test",
             extra_headers=b"", line_len=78):
    """A CRLF message with a unique Message-ID, a body of about body_bytes of
    printable lines, and a last line 'END <marker>' so truncation is visible."""
    hdr = (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: test {marker}\r\n"
           f"Message-ID: <{marker}@itest.sluice>\r\n").encode() + extra_headers + b"\r\n"
    lines = []
    n = 0
    size = 0
    while size < body_bytes:
        seed = f"{marker}:{n}:"
        ln = (seed + "abcdefghijklmnopqrstuvwxyz0123456789" * 4)[:max(1, line_len)]
        if n % 7 == 3:
            ln = "." + ln  # dot at line start: must be stuffed on the wire, unstuffed on disk
        lines.append(ln.encode())
        size += len(ln) + 2
        n += 1
    lines.append(f"END {marker}".encode())
    return hdr + b"\r\n".join(lines) + b"\r\n"


def crlf_to_lf(b):
    return b.replace(b"\r\n", b"\n")


# ---------------------------------------------------------------- maildir

NAME_RE = re.compile(r"(\d+)\.M(\d+)P(\d+)Q(\d+)\.([^,/:]+),S=(\d+),W=(\d+)")


def user_dir(mail_root, user, domain="example.test"):
    return os.path.join(mail_root, domain, user)


def list_new(mail_root, user, domain="example.test", folder=""):
    """Files in <maildir>[/.folder]/new, sorted by name (full paths)."""
    d = user_dir(mail_root, user, domain)
    if folder:
        d = os.path.join(d, "." + folder)
    d = os.path.join(d, "new")
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, f) for f in os.listdir(d)
                  if os.path.isfile(os.path.join(d, f)))


def read(path):
    with open(path, "rb") as f:
        return f.read()


ADDED = (b"return-path", b"delivered-to", b"received")


def split_added(data):
    """Split the headers sluice prepends (Return-Path, Delivered-To, Received,
    each at most once, in any order, continuation lines included) from the
    message as sent. Returns (dict lowercase-name -> unfolded value (str), order, rest)."""
    pos = 0
    added = {}
    order = []
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            break
        colon = data.find(b":", pos, end)
        if colon < 0:
            break
        name = data[pos:colon].lower()
        if name not in ADDED or name.decode() in added:
            break
        # header ends at the first line that does not start with SP/TAB
        e = end
        while e + 1 < len(data) and data[e + 1:e + 2] in (b" ", b"\t"):
            n = data.find(b"\n", e + 1)
            if n < 0:
                break
            e = n
        raw = data[colon + 1:e + 1]
        added[name.decode()] = re.sub(r"\r?\n[ \t]", " ", raw.decode("utf-8", "replace")).strip()
        order.append(name.decode())
        pos = e + 1
    return added, order, data[pos:]


def check_name(what, path, data=None):
    """Checks a delivered file's name against <sec>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<vsize>."""
    name = os.path.basename(path)
    m = NAME_RE.fullmatch(name)
    if not m:
        return CHECK.fail(f"{what}: file name format", name,
                          "<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<vsize>")
    if data is None:
        data = read(path)
    size, vsize = int(m.group(6)), int(m.group(7))
    want_v = len(data) + data.count(b"\n") - data.count(b"\r\n")
    good = True
    if size != len(data):
        good = CHECK.fail(f"{what}: S= equals file size", f"S={size} in {name}", f"S={len(data)}")
    if vsize != want_v:
        good = CHECK.fail(f"{what}: W= equals size with CRLF line ends", f"W={vsize} in {name}",
                          f"W={want_v}")
    return good


def wait_for(pred, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def env(name, default=None):
    v = os.environ.get(name, default)
    if v is None:
        print(f"FAIL - environment variable {name} set\n       got:  unset\n       want: set")
        sys.exit(1)
    return v

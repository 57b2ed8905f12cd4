"""Clients for the SASL tests (python3 standard library only).

AuthConn speaks the Dovecot auth client protocol (reference/protocols.md §3) to
an auth endpoint, the way Postfix's smtpd does: VERSION 1 0 + CPID, then AUTH
lines with service=smtp, nologin, lip= and rip=. Scram is an RFC 5802 client
(SCRAM-SHA-1 / SCRAM-SHA-256, no channel binding) that checks the server's
signature; smtp_scram runs it over SMTP AUTH through smtplib.
"""

import base64
import hashlib
import hmac
import os
import smtplib
import socket


def connect(target, timeout=30.0):
    """target: "host:port" or "unix:/path"."""
    if target.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(target[5:])
        return s
    host, port = target.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class AuthConn:
    """One client connection; handshake() returns the MECH lines as {name: flags}."""

    def __init__(self, target, timeout=30.0):
        self.sock = connect(target, timeout)
        self.buf = b""
        self.next_id = 1

    def close(self):
        self.sock.close()

    def line(self):
        """The next line without LF; None at EOF."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.decode()

    def handshake(self):
        self.sock.sendall(b"VERSION\t1\t0\nCPID\t%d\n" % os.getpid())
        mechs, lines = {}, []
        while True:
            ln = self.line()
            if ln is None:
                raise ConnectionError("EOF in handshake after %r" % lines)
            lines.append(ln)
            f = ln.split("\t")
            if f[0] == "MECH":
                mechs[f[1]] = f[2:]
            if f[0] == "DONE":
                self.handshake_lines = lines
                return mechs

    def auth(self, mech, resp=None, rip="127.0.0.1", extra=()):
        """Sends AUTH; returns its id."""
        rid = self.next_id
        self.next_id += 1
        fields = ["AUTH", str(rid), mech, "service=smtp", "nologin", "lip=127.0.0.1",
                  "rip=" + rip, *extra]
        if resp is not None:
            fields.append("resp=" + base64.b64encode(resp).decode())
        self.sock.sendall(("\t".join(fields) + "\n").encode())
        return rid

    def cont(self, rid, data):
        self.sock.sendall(b"CONT\t%d\t%s\n" % (rid, base64.b64encode(data)))

    def reply(self):
        """(verb, id, {fields}, [bare flags], raw line); verb None at EOF."""
        ln = self.line()
        if ln is None:
            return None, None, {}, [], None
        f = ln.split("\t")
        kv, bare = {}, []
        for x in f[2:]:
            if "=" in x:
                k, v = x.split("=", 1)
                kv[k] = v
            else:
                bare.append(x)
        return f[0], int(f[1]) if len(f) > 1 and f[1].isdigit() else None, kv, bare, ln

    def plain(self, user, password, rip="127.0.0.1"):
        """One AUTH PLAIN with an initial response; returns reply()."""
        self.auth("PLAIN", b"\0" + user.encode() + b"\0" + password.encode(), rip)
        return self.reply()


class ScramError(Exception):
    pass


class Scram:
    """RFC 5802 client without channel binding ("n,,")."""

    def __init__(self, mech, user, password):
        self.h = {"SCRAM-SHA-1": hashlib.sha1, "SCRAM-SHA-256": hashlib.sha256}[mech]
        self.hname = self.h().name
        self.user = user.replace("=", "=3D").replace(",", "=2C")
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.step = 0
        self.server_sig = None

    def first(self):
        self.bare = "n=%s,r=%s" % (self.user, self.nonce)
        return ("n,," + self.bare).encode()

    def final(self, server_first):
        sf = server_first.decode()
        attrs = dict(a.split("=", 1) for a in sf.split(","))
        if not attrs.get("r", "").startswith(self.nonce):
            raise ScramError("server nonce does not extend ours: %r" % sf)
        salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
        salted = hashlib.pbkdf2_hmac(self.hname, self.password, salt, iters)
        client_key = hmac.new(salted, b"Client Key", self.h).digest()
        stored_key = self.h(client_key).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        auth_msg = ",".join((self.bare, sf, without_proof)).encode()
        client_sig = hmac.new(stored_key, auth_msg, self.h).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
        server_key = hmac.new(salted, b"Server Key", self.h).digest()
        self.server_sig = hmac.new(server_key, auth_msg, self.h).digest()
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()

    def check_server_final(self, data):
        sf = data.decode()
        if not sf.startswith("v="):
            raise ScramError("server-final is not v=...: %r" % sf)
        if base64.b64decode(sf[2:]) != self.server_sig:
            raise ScramError("server signature does not verify")

    def __call__(self, challenge):
        """smtplib's authobject: None first, then the decoded 334 challenges."""
        self.step += 1
        if self.step == 1:
            return self.first().decode()
        if self.step == 2:
            return self.final(challenge).decode()
        self.check_server_final(challenge)
        return ""


def smtp_scram(host, port, mech, user, password, source="127.0.0.1", mail_from=None):
    """SMTP AUTH with SCRAM through smtplib; returns (code, text, ehlo auth list,
    server signature verified). With mail_from, a successful AUTH is followed by
    MAIL FROM (so that Postfix logs sasl_method/sasl_username with a queue id)."""
    with smtplib.SMTP(host, port, local_hostname="client.test", timeout=30,
                      source_address=(source, 0)) as s:
        s.ehlo()
        offered = s.esmtp_features.get("auth", "").split()
        sc = Scram(mech, user, password)
        # smtplib: authobject(None) gives the initial response; the rest are 334 challenges
        obj = lambda challenge=None: sc(challenge)
        try:
            code, text = s.auth(mech, obj, initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as e:
            code, text = e.smtp_code, e.smtp_error
        if code == 235 and mail_from:
            s.mail(mail_from)
        return code, text.decode(errors="replace"), offered, sc.server_sig is not None and sc.step >= 3

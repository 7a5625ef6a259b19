"""test_tls.py - fetchd's HTTPS end to end, against real TLS servers on 127.0.0.1, with the certificates
made at test time by tests/tls/make-certs.sh:

  * one nginx with a `server` block per certificate, each on its own port (ECDSA and RSA leaves, a
    TLS 1.2-only server, a chain through an intermediate and the same leaf without it, expired, not yet
    valid, a wrong name, self-signed, an unknown root, and a plain-HTTP port), session cache and
    tickets on, an access log with $connection and $ssl_session_reused;
  * `openssl s_server` wanting a client certificate (it aborts the handshake with an alert);
  * small Python servers for what neither can do: TCP servers that, after the ClientHello, hang up
    (FIN), reset (RST) or say nothing, and a TLS server that ends an EOF-delimited body with or without
    close_notify.

Checked: the result's TLS fields, each certificate failure with the backend's reason, IP SANs, aborted
handshakes (FIN, RST, alerts, a plain-HTTP server), the tls timeout phase, tls_verified of failed
handshakes, truncation, keep-alive over TLS, session resumption (from both ends), verify = no,
min_version = 1.3 (fetchd -t and a start), and a mixed batch after which fetchd is still right and its
descriptors come back. Prints (does not check) the daemon's RSS per in-flight TLS connection.

Runs against build/fetchd (mbedTLS) or whatever FETCHD_BIN / FETCHCTL_BIN name (the OpenSSL build);
where the backends legitimately differ, each gets its own exact expectation."""

import atexit
import os
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import (ECHO_MODULE, NGINX, REPO, Fetchd, FetchdStartError, Suite, by_url,  # noqa: E402
                     free_port, ipv6_loopback, sha256_hex, submit, wait_until, warc_records, write_conf)

suite = Suite(__file__, timeout=60)
FETCHD = os.environ.get("FETCHD_BIN") or os.path.join(REPO, "build", "fetchd")
MAKE_CERTS = os.path.join(REPO, "tests", "tls", "make-certs.sh")


# ---- the backend under test ----------------------------------------------------------------------

def _backend_name() -> str:
    """"mbedtls 2.28.3" or "openssl 3.0.x", from `fetchd -V` ("fetchd 0.1.0 (mbedtls 2.28.3)")."""
    out = subprocess.run([FETCHD, "-V"], capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"\((\w+ [^)]*)\)", out)
    assert m, "fetchd -V said %r" % out
    return m.group(1)


BACKEND_NAME = _backend_name()
BACKEND = BACKEND_NAME.split()[0]       # "mbedtls" or "openssl"
assert BACKEND in ("mbedtls", "openssl"), BACKEND_NAME
OPENSSL = BACKEND == "openssl"          # TLS 1.3; mbedTLS 2.28 speaks TLS 1.2 only

# The ciphers each nginx server is pinned to, so both the version and the suite are exact per backend.
ECDSA12 = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
RSA12 = "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
EC13 = "TLS_AES_128_GCM_SHA256"
RSA13 = "TLS_CHACHA20_POLY1305_SHA256"


# ---- certificates ---------------------------------------------------------------------------------

_state = {}


def certs() -> str:
    """The directory of fresh certificates (made once per run by make-certs.sh, removed at exit)."""
    if "certs" not in _state:
        d = tempfile.mkdtemp(prefix="fetchd-tls-certs-")
        atexit.register(shutil.rmtree, d, True)
        subprocess.run(["sh", MAKE_CERTS, d], check=True, timeout=60, capture_output=True)
        with open(os.path.join(d, "chain.pem"), "w") as f:  # leaf, then the intermediate
            for name in ("chained.crt", "int.crt"):
                with open(os.path.join(d, name)) as g:
                    f.write(g.read())
        _state["certs"] = d
    return _state["certs"]


def cert(name: str) -> str:
    return os.path.join(certs(), name)


# ---- nginx: one server block per certificate --------------------------------------------------------

RND = random.Random(4242)
FILES = {
    "/1k.html": (b"<!doctype html><title>fetchd tls</title>\n" + b"x" * 1024)[:1024],
    "/16k.bin": RND.randbytes(16384),
    "/1m.bin": RND.randbytes(1 << 20),
}
SHA = {p: sha256_hex(b) for p, b in FILES.items()}

# name: (certificate, key, extra directives). Every server serves FILES, /delay and logs to access.log.
SERVERS = {
    "ok": ("ok.crt", "ec.key", "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256; "
                               "ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;"),
    "ok12": ("ok.crt", "ec.key", "ssl_protocols TLSv1.2; ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256;"),
    "rsa": ("rsa.crt", "rsa.key", "ssl_ciphers ECDHE-RSA-AES256-GCM-SHA384; "
                                  "ssl_conf_command Ciphersuites TLS_CHACHA20_POLY1305_SHA256;"),
    "chained": ("chain.pem", "ec.key", ""),
    "incomplete": ("chained.crt", "ec.key", ""),
    "expired": ("expired.crt", "ec.key", ""),
    "notyet": ("notyet.crt", "ec.key", ""),
    "wrong": ("wrong.crt", "ec.key", ""),
    "self": ("self.crt", "ec.key", ""),
    "unknown": ("unknown.crt", "ec.key", ""),
    "plain": (None, None, ""),   # plain HTTP
}
DELAY_S = 2.0


class TlsNginx:
    """A real nginx with a server block per SERVERS entry, each on its own free port of 127.0.0.1 ("ok"
    also on 127.0.0.2, and on [::1] when there is IPv6). .port[name], .url(name, path, host),
    .log(tag): the access-log entries whose URI contains tag."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fetchd-tls-nginx-")
        self.root = os.path.join(self.dir, "www")
        for p, b in FILES.items():
            os.makedirs(self.root, exist_ok=True)
            with open(os.path.join(self.root, p.lstrip("/")), "wb") as f:
                f.write(b)
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        self.error_log = os.path.join(self.dir, "logs", "error.log")
        self.access_log = os.path.join(self.dir, "logs", "access.log")
        self.v6 = ipv6_loopback()
        self.proc = None
        harness._LIVE.append(self)
        self._start()

    def _conf(self) -> str:
        d = self.dir
        out = ["load_module %s;" % ECHO_MODULE, "worker_processes 1;", "daemon off;", "master_process on;",
               "pid %s/nginx.pid;" % d, "error_log %s warn;" % self.error_log, "worker_rlimit_nofile 8192;"]
        if os.geteuid() == 0:
            out.append("user root root;")  # as in harness.Origin: "nobody" cannot read the temp dir
        out += [
            "events { worker_connections 4096; }",
            "http {",
            "  default_type application/octet-stream;",
            "  types { text/html html; application/octet-stream bin; }",
            "  log_format tls '$server_port $connection $ssl_session_reused $ssl_protocol $status $request_uri';",
            "  access_log %s tls;" % self.access_log,
            "  client_body_temp_path %s/body; proxy_temp_path %s/proxy; fastcgi_temp_path %s/fcgi;" % (d, d, d),
            "  uwsgi_temp_path %s/uwsgi; scgi_temp_path %s/scgi;" % (d, d),
            "  keepalive_requests 100000; keepalive_timeout 65s;",
            "  ssl_protocols TLSv1.2 TLSv1.3;  # nginx 1.22 leaves TLSv1.3 out by default",
            "  ssl_session_cache shared:fetchdtls:4m; ssl_session_timeout 10m; ssl_session_tickets on;",
        ]
        for name, (crt, key, extra) in SERVERS.items():
            ssl_ = "" if crt is None else " ssl"
            listens = ["127.0.0.1:%d" % self.port[name]]
            if name == "ok":
                listens.append("127.0.0.2:%d" % self.port[name])
                if self.v6:
                    listens.append("[::1]:%d" % self.port[name])
            out.append("  server {")
            out += ["    listen %s%s backlog=4096;" % (a, ssl_) for a in listens]
            if crt:
                out.append("    ssl_certificate %s; ssl_certificate_key %s;" % (cert(crt), cert(key)))
            if extra:
                out.append("    " + extra)
            out += ["    root %s;" % self.root,
                    "    location = /delay { echo_sleep %.1f; echo \"delayed\"; }" % DELAY_S,
                    "  }"]
        out += ["}", ""]
        return "\n".join(out)

    def _start(self):
        conf = os.path.join(self.dir, "nginx.conf")
        for _attempt in range(5):  # a free port may be taken meanwhile: new ports, again
            self.port = {name: free_port() for name in SERVERS}
            if len(set(self.port.values())) < len(SERVERS):
                continue
            with open(conf, "w") as f:
                f.write(self._conf())
            open(self.error_log, "w").close()
            self.proc = subprocess.Popen([NGINX, "-p", self.dir + "/", "-c", conf, "-e", self.error_log],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, preexec_fn=harness._pdeathsig)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.proc.poll() is None:
                if all(harness._port_answers(p) for p in self.port.values()):
                    return
                time.sleep(0.02)
            harness._kill_tree(self.proc)
            if "in use" not in self.log_text():
                break
        raise RuntimeError("nginx did not start; error.log:\n" + self.log_text())

    def log_text(self) -> str:
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def url(self, name: str, path: str = "/1k.html", host: str = "127.0.0.1") -> str:
        scheme = "http" if SERVERS[name][0] is None else "https"
        return "%s://%s:%d%s" % (scheme, host, self.port[name], path)

    def log(self, tag: str):
        """Access-log entries of requests whose URI contains tag: dicts port, conn, reused (bool),
        proto, status, uri."""
        out = []
        with open(self.access_log, errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 6 and tag in parts[5]:
                    out.append({"port": int(parts[0]), "conn": int(parts[1]), "reused": parts[2] == "r",
                                "proto": parts[3], "status": int(parts[4]), "uri": parts[5]})
        return out

    def wait_log(self, tag: str, n: int):
        """The entries for tag once there are n of them (nginx logs just after the response went out)."""
        wait_until(lambda: len(self.log(tag)) >= n, timeout=5, what="%d access-log lines for %s" % (n, tag))
        return self.log(tag)

    def stop(self):
        if self.proc is not None:
            harness._kill_tree(self.proc, signal.SIGTERM, 10)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
        if self in harness._LIVE:
            harness._LIVE.remove(self)


def nginx() -> TlsNginx:
    """The nginx shared by every test (each test tags its URIs to find its own log lines)."""
    if "nginx" not in _state:
        _state["nginx"] = TlsNginx()
    return _state["nginx"]


# ---- small Python servers for misbehaviour nginx cannot do ------------------------------------------

class PyServer:
    """A TCP listener on 127.0.0.1 (free port); handler(sock) runs on a thread per connection."""

    def __init__(self, handler):
        self.handler = handler
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(256)
        self.port = self.lsock.getsockname()[1]
        self.errors = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()
        harness._LIVE.append(self)

    def _accept(self):
        while not self.stopped:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(s,), daemon=True).start()

    def _run(self, s):
        try:
            s.settimeout(5)
            self.handler(s)
        except Exception as e:  # noqa: BLE001 (kept for the assertion messages)
            self.errors.append(repr(e))
        finally:
            s.close()

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return "https://%s:%d%s" % (host, self.port, path)

    def stop(self):
        self.stopped = True
        self.lsock.close()
        if self in harness._LIVE:
            harness._LIVE.remove(self)


def _read_client_hello(s):
    """Read one whole TLS record (the ClientHello) from a raw socket."""
    head = b""
    while len(head) < 5:
        d = s.recv(5 - len(head))
        if not d:
            return
        head += d
    left = struct.unpack("!H", head[3:5])[0]
    while left > 0:
        d = s.recv(left)
        if not d:
            return
        left -= len(d)


def hangup_handler(how: str):
    """After the ClientHello: "fin" closes, "rst" aborts the connection (SO_LINGER 0), "mute" says
    nothing until the client goes away."""
    def handle(s):
        _read_client_hello(s)
        if how == "rst":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif how == "mute":
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
    return handle


EOF_BODY = bytes(RND.randrange(256) for _ in range(40000))  # several TLS records


def eof_body_handler(ctx):
    """A TLS server answering by path:
      /trunc   200 without Content-Length (the body ends at the close); TCP closed without close_notify
      /clean   the same body, then close_notify (unwrap), then the TCP close
      /framed  200 with Content-Length and Connection: close; TCP closed without close_notify"""
    def handle(raw):
        s = ctx.wrap_socket(raw, server_side=True)
        req = b""
        while b"\r\n\r\n" not in req:
            d = s.recv(4096)
            if not d:
                return
            req += d
        path = req.split(b" ", 2)[1]
        if path.startswith(b"/framed"):
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(EOF_BODY)
                      + EOF_BODY)
        else:
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n" + EOF_BODY)
        # wrap_socket took raw's descriptor: s is the socket from here on.
        if path.startswith(b"/clean"):
            try:
                s = s.unwrap()  # close_notify; then waits for the client's (or for its close)
            except (OSError, ssl.SSLError):
                pass
        try:
            s.shutdown(socket.SHUT_WR)  # on an SSLSocket this drops TLS first: no close_notify
            s.settimeout(2)
            while s.recv(4096):  # until the client closes: no RST for unread bytes
                pass
        except (OSError, ssl.SSLError):
            pass
        finally:
            s.close()
    return handle


def py_servers():
    """{"fin", "rst", "mute", "eof"}: the Python servers shared by every test."""
    if "py" not in _state:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert("ok.crt"), cert("ec.key"))
        _state["py"] = {how: PyServer(hangup_handler(how)) for how in ("fin", "rst", "mute")}
        _state["py"]["eof"] = PyServer(eof_body_handler(ctx))
    return _state["py"]


class SServer:
    """openssl s_server on 127.0.0.1:free port (its stdin a pipe kept open; ready at "ACCEPT")."""

    def __init__(self, args):
        self.dir = tempfile.mkdtemp(prefix="fetchd-tls-sserver-")
        self.out = os.path.join(self.dir, "out")
        for _attempt in range(3):
            self.port = free_port()
            with open(self.out, "wb") as out:
                self.proc = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % self.port]
                                             + args, stdin=subprocess.PIPE, stdout=out, stderr=out,
                                             cwd=certs(), preexec_fn=harness._pdeathsig)
            try:
                wait_until(lambda: "ACCEPT" in self._text() or self.proc.poll() is not None, timeout=5,
                           what="s_server ACCEPT")
            except AssertionError:
                pass
            if self.proc.poll() is None and "ACCEPT" in self._text():
                harness._LIVE.append(self)
                return
            harness._kill_tree(self.proc)
        raise RuntimeError("s_server did not start: " + self._text())

    def _text(self):
        with open(self.out, errors="replace") as f:
            return f.read()

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return "https://%s:%d%s" % (host, self.port, path)

    def stop(self):
        if self.proc is not None:
            harness._kill_tree(self.proc, signal.SIGTERM, 5)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
        if self in harness._LIVE:
            harness._LIVE.remove(self)


def alert_servers():
    """{"12", "13"}: s_servers that want a client certificate (fetchd has none): "12" is TLS 1.2 only
    (handshake_failure in the handshake), "13" also speaks TLS 1.3 (certificate_required after it)."""
    if "alert" not in _state:
        base = ["-cert", "ok.crt", "-key", "ec.key", "-www", "-Verify", "1"]
        _state["alert"] = {"12": SServer(base + ["-tls1_2"]), "13": SServer(base)}
    return _state["alert"]


# ---- fetchd -------------------------------------------------------------------------------------------

def hosts_file() -> str:
    """A hosts file: localhost and wrong.test at 127.0.0.1 (no IPv6, no DNS involved)."""
    path = os.path.join(certs(), "hosts")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write("127.0.0.1 localhost wrong.test\n")
    return path


def tls_conf(tls=None, fetch=None):
    """A fetchd conf: [tls] ca_file = the test CA, the hosts file above, short timeouts."""
    conf = {
        "daemon": {"log_level": "info"},  # the stop line (tls_handshakes=...) is at info
        "fetch": {"connect_timeout_ms": 5000, "header_timeout_ms": 10000, "idle_timeout_ms": 10000,
                  "timeout_ms": 20000},
        "dns": {"hosts_file": hosts_file(), "servers": "127.0.0.1:9"},  # every name is in the file
        "tls": {"ca_file": cert("ca.crt")},
    }
    conf["fetch"].update(fetch or {})
    conf["tls"].update(tls or {})
    return conf


def stop_stats(d) -> dict:
    """Stop fetchd (it must exit 0) and return the numbers of its "stopped ok=..." log line."""
    rc = d.stop()
    assert rc == 0, "fetchd exit %s; log:\n%s" % (rc, d.log_text()[-2000:])
    m = re.search(r"stopped (ok=.*)", d.log_text())
    assert m, d.log_text()[-2000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


def run(d, urls, want_rc=None, timeout=40):
    rc, results, err = submit(d.sock, urls, timeout=timeout)
    assert len(results) == len(urls), (rc, len(results), len(urls), err)
    if want_rc is not None:
        assert rc == want_rc, "fetchctl exit %d, want %d: %s %s" % (
            rc, want_rc, err, [r for r in results if r["error"]][:3])
    return by_url(results)


def base_fd_count(d) -> int:
    """fetchd's descriptors at rest: once the connection Fetchd made to probe the socket is closed."""
    wait_until(lambda: "client 1 closed" in d.log_text(), timeout=5, what="the readiness probe closed")
    return d.fd_count()


# ---- result checks --------------------------------------------------------------------------------------

def expect_version(server: str) -> str:
    """The version fetchd must negotiate with an nginx server of SERVERS."""
    return "TLSv1.3" if OPENSSL and server != "ok12" else "TLSv1.2"


def expect_cipher(server: str):
    """The exact suite for the pinned servers, None for the others (any IANA name)."""
    v13 = expect_version(server) == "TLSv1.3"
    return {"ok": EC13 if v13 else ECDSA12, "ok12": ECDSA12, "rsa": RSA13 if v13 else RSA12}.get(server)


def tls_ok(r, sha, server, new_conn=None, verified=True, ip="127.0.0.1"):
    """A 200 over TLS with the body's sha256 and the TLS fields a connection to `server` must give.
    new_conn: True -> the handshake time is > 0; False -> 0 (a reused connection); None: either."""
    assert r["error"] is None and r["status"] == 200, r
    assert r["body_sha256"] == sha, r
    assert r["ip"] == ip, r
    assert r["tls_version"] == expect_version(server), (expect_version(server), r)
    want = expect_cipher(server)
    if want:
        assert r["tls_cipher"] == want, (want, r)
    else:
        assert re.fullmatch(r"TLS_[A-Z0-9_]{8,}", r["tls_cipher"] or ""), r
    assert r["tls_backend"] == BACKEND_NAME and r["tls_backend"].startswith(BACKEND), r
    assert r["tls_verified"] is verified, r
    t = r["timings_ms"]
    if new_conn is True:
        assert t["tls"] > 0 and t["connect"] > 0, r
    elif new_conn is False:
        assert t["tls"] == 0 and t["connect"] == 0, r
    assert t["tls"] <= t["total"], r


def tls_failed(r, message, exact=True, ip="127.0.0.1", status=None, handshake_done=False):
    """Class tls with this message (exact, or a substring); no body digest. A failure in the handshake
    has no version or cipher. (tls_verified of failures: failed_handshakes_are_not_reported_verified.)"""
    e = r["error"]
    assert e is not None and e["class"] == "tls", r
    if exact:
        assert e["message"] == message, "message %r, want %r: %s" % (e["message"], message, r)
    else:
        assert message in e["message"], "message %r lacks %r: %s" % (e["message"], message, r)
    assert r["status"] == status and r["body_sha256"] is None and r["ip"] == ip, r
    assert r["tls_backend"] == BACKEND_NAME, r
    if not handshake_done:
        assert r["tls_version"] is None and r["tls_cipher"] is None, r


ALERT_40 = "handshake failed: the server sent alert handshake_failure (40)"
CERT_REASONS = {  # the backends' reasons (tls_conn_reason), the same text for both
    "expired": "certificate expired on 2020-02-01",
    "notyet": "certificate is not valid until 2090-01-01",
    "self": "certificate not trusted: self-signed",
    "unknown": 'certificate not trusted: unknown issuer "fetchd unknown CA" (unknown root or incomplete chain)',
    "incomplete": 'certificate not trusted: unknown issuer "fetchd test intermediate" '
                  '(unknown root or incomplete chain)',
    "wrong": "certificate does not match host localhost",
}


CLOSED_IN_HANDSHAKE = "the server closed the connection during the TLS handshake"
# What each backend makes of a plain-HTTP answer ("HTTP/1.1 400 Bad Request") to its ClientHello.
PLAIN_HTTP_REASON = ("handshake failed: wrong version number" if OPENSSL else
                     "handshake failed: SSL - An invalid SSL record was received")


# ---- the tests --------------------------------------------------------------------------------------------

@suite.test
def valid_certificates_ecdsa_rsa_tls12_and_a_chain_through_an_intermediate():
    n = nginx()
    with Fetchd(tls_conf()) as d:
        cases = [("ok", "/1k.html"), ("ok", "/1m.bin"), ("ok12", "/16k.bin"), ("rsa", "/1k.html"),
                 ("rsa", "/1m.bin"), ("chained", "/16k.bin")]
        urls = {n.url(s, p + "?valid"): (s, p) for s, p in cases}
        got = run(d, list(urls), want_rc=0)
        for u, (s, p) in urls.items():
            tls_ok(got[u], SHA[p], s)
            assert got[u]["body_bytes"] == len(FILES[p]), got[u]
        # A name the certificate carries gets SNI and a verified name (the hosts file maps it).
        u = n.url("ok", "/16k.bin?valid-name", host="localhost")
        tls_ok(run(d, [u], want_rc=0)[u], SHA["/16k.bin"], "ok", new_conn=True)
        # The server saw each protocol it was asked for.
        seen = {e["port"]: e["proto"] for e in n.wait_log("?valid", len(cases) + 1)}
        for s in ("ok", "ok12", "rsa", "chained"):
            assert seen[n.port[s]] == expect_version(s), (s, seen)
        st = stop_stats(d)  # a handshake on every connection (how many run at once is the scheduler's)
        assert st["failed"] == 0 and st["tls_handshakes"] == st["conns_opened"] >= 5, st


@suite.test
def warc_of_https_holds_the_plaintext_exchange():
    import hashlib
    n = nginx()
    with Fetchd(tls_conf()) as d:
        urls = [n.url("ok", "/1m.bin?warc"), n.url("rsa", "/16k.bin?warc")]
        out = os.path.join(d.dir, "tls.warc.gz")
        rc, res, err = submit(d.sock, urls, extra_args=["--warc", out])
        assert rc == 0 and len(res) == 2, err
        recs = warc_records(out)
        for u, p in zip(urls, ("/1m.bin", "/16k.bin")):
            resp = [r for r in recs if r["type"] == "response" and r["target_uri"] == u]
            assert len(resp) == 1 and resp[0]["http_status"] == 200, (u, resp)
            assert resp[0]["payload_sha1"] == hashlib.sha1(FILES[p]).hexdigest(), resp[0]
            req = [r for r in recs if r["record_id"] == resp[0]["concurrent_to"]]
            assert req and req[0]["http_method"] == "GET" and req[0]["ip"] == "127.0.0.1", req


@suite.test
def first_fetch_on_a_new_connection_has_handshake_time():
    n = nginx()
    with Fetchd(tls_conf(fetch={"per_host_connections": 1})) as d:
        u = n.url("ok", "/1k.html?first")
        tls_ok(run(d, [u], want_rc=0)[u], SHA["/1k.html"], "ok", new_conn=True)
        u2 = n.url("ok", "/1k.html?second")
        tls_ok(run(d, [u2], want_rc=0)[u2], SHA["/1k.html"], "ok", new_conn=False)  # pooled


@suite.test
def certificate_failures_each_with_its_reason():
    n = nginx()
    with Fetchd(tls_conf()) as d:
        urls = {n.url(s, "/1k.html?bad", host="localhost"): reason for s, reason in CERT_REASONS.items()}
        # wrong.test is 127.0.0.1 by the hosts file, and the good certificate does not name it.
        urls[n.url("ok", "/1k.html?bad", host="wrong.test")] = "certificate does not match host wrong.test"
        got = run(d, list(urls), want_rc=5)
        for u, reason in urls.items():
            tls_failed(got[u], reason)
        assert d.alive()
        # The same servers' certificates by IP: the names do not matter to these failures.
        for s in ("expired", "self", "unknown"):
            u = n.url(s, "/1k.html?bad-ip")
            tls_failed(run(d, [u], want_rc=5)[u], CERT_REASONS[s])
        assert n.log("?bad") == [], "nginx answered a request fetchd should not have sent"


@suite.test
def ip_san_matches_its_address_only():
    n = nginx()
    with Fetchd(tls_conf()) as d:
        good, other = n.url("ok", "/1k.html?ipsan"), n.url("ok", "/1k.html?ipsan", host="127.0.0.2")
        urls = [good, other]
        if n.v6:
            urls.append(n.url("ok", "/1k.html?ipsan", host="[::1]"))
        got = run(d, urls, want_rc=5)
        tls_ok(got[good], SHA["/1k.html"], "ok", new_conn=True)
        tls_failed(got[other], "certificate does not match host 127.0.0.2", ip="127.0.0.2")
        if n.v6:
            tls_ok(got[urls[2]], SHA["/1k.html"], "ok", new_conn=True, ip="::1")


@suite.test
def aborted_handshakes_fail_as_tls_and_fetchd_stays_up():
    n, py, al = nginx(), py_servers(), alert_servers()
    with Fetchd(tls_conf()) as d:
        fin, a12, a13 = py["fin"].url("/?abort"), al["12"].url("/?abort"), al["13"].url("/?abort")
        plain = "https://127.0.0.1:%d/1k.html?abort" % n.port["plain"]
        got = run(d, [fin, a12, a13, plain], want_rc=5)
        # Closed (FIN) right after the ClientHello.
        tls_failed(got[fin], CLOSED_IN_HANDSHAKE)
        # A fatal alert in a TLS 1.2 handshake.
        tls_failed(got[a12], ALERT_40)
        if OPENSSL:  # TLS 1.3: the client's handshake is done before the server objects, after it
            tls_failed(got[a13], "the server sent alert certificate_required (116)", handshake_done=True)
            assert got[a13]["tls_version"] == "TLSv1.3", got[a13]
        else:
            tls_failed(got[a13], ALERT_40)
        # A plain-HTTP server behind an https URL.
        tls_failed(got[plain], PLAIN_HTTP_REASON)
        assert d.alive()
        u = n.url("ok", "/16k.bin?after-abort")
        tls_ok(run(d, [u], want_rc=0)[u], SHA["/16k.bin"], "ok", new_conn=True)


@suite.test
def handshake_reset_by_the_server_is_a_tls_failure():
    """A server that resets the connection (RST) right after the ClientHello failed the TLS handshake,
    exactly as one that closes it (FIN): class tls, not protocol."""
    py = py_servers()
    with Fetchd(tls_conf()) as d:
        rst = py["rst"].url("/?reset")
        r = run(d, [rst], want_rc=5)[rst]
        tls_failed(r, "handshake", exact=False)
        assert d.alive()


@suite.test
def silent_server_times_out_in_the_tls_phase():
    py = py_servers()
    with Fetchd(tls_conf(fetch={"connect_timeout_ms": 300})) as d:
        u = py["mute"].url("/?mute")
        r = run(d, [u], want_rc=5)[u]
        assert r["error"] == {"class": "timeout", "phase": "tls", "message": "tls timeout after 300 ms"}, r
        assert r["status"] is None and r["tls_version"] is None and 300 <= r["timings_ms"]["total"] < 2000, r


@suite.test
def failed_handshakes_are_not_reported_verified():
    """protocol.md: tls_verified is true "when the certificate was verified". A certificate that failed
    verification, or a handshake that ended before any certificate came, was not verified."""
    n, py, al = nginx(), py_servers(), alert_servers()
    with Fetchd(tls_conf()) as d:
        urls = [n.url(s, "/1k.html?unverified", host="localhost") for s in ("expired", "self", "wrong")]
        urls += [py["fin"].url("/?unverified"), al["12"].url("/?unverified")]
        got = run(d, urls, want_rc=5)
        bad = [(u, got[u]["error"]["message"], got[u]["tls_verified"]) for u in urls
               if got[u]["tls_verified"] is True]
        assert not bad, "failed handshakes reported as verified: %s" % bad


@suite.test
def close_without_close_notify_truncates_an_eof_delimited_body():
    py = py_servers()["eof"]
    with Fetchd(tls_conf()) as d:
        trunc, clean, framed = py.url("/trunc"), py.url("/clean"), py.url("/framed")
        got = run(d, [trunc, clean, framed], want_rc=5)
        tls_failed(got[trunc], "truncated", exact=False, status=200, handshake_done=True)
        assert got[trunc]["tls_version"] == ("TLSv1.3" if OPENSSL else "TLSv1.2"), got[trunc]
        # With close_notify the same body is whole.
        r = got[clean]
        assert r["error"] is None and r["status"] == 200, r
        assert r["body_bytes"] == len(EOF_BODY) and r["body_sha256"] == sha256_hex(EOF_BODY), r
        # A Content-Length body is complete before the close: its missing close_notify changes nothing.
        r = got[framed]
        assert r["error"] is None and r["body_sha256"] == sha256_hex(EOF_BODY), r
        assert d.alive()
    assert py.errors == [], py.errors


@suite.test
def keep_alive_fifty_urls_over_one_tls_connection():
    n = nginx()
    with Fetchd(tls_conf(fetch={"per_host_connections": 1})) as d:
        urls = [n.url("ok", "/1k.html?ka=%d" % i) for i in range(50)]
        got = run(d, urls, want_rc=0)
        new = [u for u in urls if got[u]["timings_ms"]["tls"] > 0]
        assert len(new) == 1, "%d fetches had a handshake" % len(new)
        for u in urls:
            tls_ok(got[u], SHA["/1k.html"], "ok", new_conn=(u in new))
        entries = n.wait_log("?ka=", 50)
        assert len({e["conn"] for e in entries}) == 1, sorted({e["conn"] for e in entries})
        st = stop_stats(d)
        assert st["tls_handshakes"] == 1 and st["conns_opened"] == 1, st


def _resumption_run(tag: str, cache_size: int):
    """Two batches of 20 URLs each to two hosts (a TLS 1.3-capable one and a TLS 1.2-only one), with
    the idle connections closed in between. Returns (fetchd's stop numbers, access-log entries by
    batch)."""
    n = nginx()
    conf = tls_conf(tls={"session_cache_size": cache_size},
                    fetch={"per_host_connections": 1, "keepalive_idle_ms": 100})
    with Fetchd(conf) as d:
        base = base_fd_count(d)
        logs = []
        for b in range(2):
            urls = [n.url(s, "/1k.html?%s%d=%d" % (tag, b, i)) for s in ("ok", "ok12") for i in range(20)]
            got = run(d, urls, want_rc=0)
            for u in urls:
                tls_ok(got[u], SHA["/1k.html"], "ok12" if ":%d/" % n.port["ok12"] in u else "ok")
            logs.append(n.wait_log("?%s%d=" % (tag, b), 40))
            d.fds_settle(base, slack=0, timeout=3)  # keepalive_idle_ms closed both connections
        return stop_stats(d), logs


@suite.test
def sessions_resume_after_the_connections_closed():
    st, (first, second) = _resumption_run("res", 10000)
    assert not any(e["reused"] for e in first), first[:3]
    assert all(e["reused"] for e in second), [e for e in second if not e["reused"]][:3]
    conns1, conns2 = {(e["port"], e["conn"]) for e in first}, {(e["port"], e["conn"]) for e in second}
    assert len(conns1) == 2 and len(conns2) == 2 and not conns1 & conns2, (conns1, conns2)
    assert {e["proto"] for e in second} == {expect_version("ok"), "TLSv1.2"}, second[:3]
    assert st["tls_handshakes"] == 4 and st["tls_resumed"] == 2, st


@suite.test
def session_cache_size_zero_resumes_nothing():
    st, (first, second) = _resumption_run("nores", 0)
    assert not any(e["reused"] for e in first + second), [e for e in first + second if e["reused"]][:3]
    conns1, conns2 = {(e["port"], e["conn"]) for e in first}, {(e["port"], e["conn"]) for e in second}
    assert len(conns1) == 2 and len(conns2) == 2 and not conns1 & conns2, (conns1, conns2)
    assert st["tls_handshakes"] == 4 and st["tls_resumed"] == 0, st


@suite.test
def verify_no_accepts_a_self_signed_and_an_expired_certificate():
    n = nginx()
    with Fetchd(tls_conf(tls={"verify": "no", "ca_file": ""})) as d:
        urls = {n.url("self", "/16k.bin?noverify"): "self", n.url("expired", "/16k.bin?noverify"): "expired",
                n.url("ok", "/16k.bin?noverify", host="wrong.test"): "ok"}
        got = run(d, list(urls), want_rc=0)
        for u, s in urls.items():
            tls_ok(got[u], SHA["/16k.bin"], s, new_conn=True, verified=False)
        assert "verify = no" in d.log_text(), d.log_text()


def _check_config(text: str):
    path = os.path.join(tempfile.mkdtemp(prefix="fetchd-tls-conf-"), "fetchd.conf")
    write_conf(path, text)
    try:
        p = subprocess.run([FETCHD, "-t", "-c", path], capture_output=True, text=True, timeout=10)
    finally:
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    return p.returncode, p.stdout + p.stderr


@suite.test
def min_version_1_3():
    n = nginx()
    conf = tls_conf(tls={"min_version": "1.3"})
    rc, out = _check_config(conf)
    if OPENSSL:
        assert rc == 0, out
        with Fetchd(conf) as d:
            ok, old = n.url("ok", "/1k.html?min13"), n.url("ok12", "/1k.html?min13")
            got = run(d, [ok, old], want_rc=5)
            tls_ok(got[ok], SHA["/1k.html"], "ok", new_conn=True)
            tls_failed(got[old], "handshake failed: the server sent alert protocol_version (70)")
        return
    # mbedTLS 2.28 has no TLS 1.3: the configuration is refused, by -t as by a start.
    try:
        Fetchd(conf, timeout=5).stop()
    except FetchdStartError as e:
        assert e.rc == 1, e
        assert "min_version 1.3" in e.log and "openssl" in e.log, e.log
    else:
        raise AssertionError("fetchd (mbedTLS) started with min_version = 1.3")
    assert rc == 1 and "min_version 1.3" in out and "openssl" in out, (
        "fetchd -t exit %d for min_version = 1.3 with mbedTLS: %s" % (rc, out.strip()))


@suite.test
def mixed_batch_disturbs_nothing_and_descriptors_come_back():
    n, py, al = nginx(), py_servers(), alert_servers()
    conf = tls_conf(fetch={"max_inflight": 64, "per_host_connections": 8, "keepalive_idle_ms": 300})
    with Fetchd(conf) as d:
        base = base_fd_count(d)
        good = {}
        for i in range(200):
            s, p = [("ok", "/1k.html"), ("rsa", "/16k.bin"), ("chained", "/1k.html"), ("ok12", "/16k.bin")][i % 4]
            good[n.url(s, "%s?mix=%d" % (p, i))] = (s, p)
        plain = {n.url("plain", "/16k.bin?mix=%d" % i): "/16k.bin" for i in range(200)}
        bad = {}
        for i in range(5):
            for s, reason in CERT_REASONS.items():
                bad[n.url(s, "/1k.html?mixbad=%d" % i, host="localhost")] = (reason, True)
            bad[n.url("ok", "/1k.html?mixbad=%d" % i, host="127.0.0.2")] = (
                "certificate does not match host 127.0.0.2", True)
            bad[py["fin"].url("/?%d" % i)] = (CLOSED_IN_HANDSHAKE, True)
            bad[al["12"].url("/?%d" % i)] = (ALERT_40, True)
            bad[py["eof"].url("/trunc?%d" % i)] = ("truncated", False)
            bad["https://127.0.0.1:%d/?mixbad=%d" % (n.port["plain"], i)] = (PLAIN_HTTP_REASON, True)
        urls = list(good) + list(plain) + list(bad)
        random.Random(7).shuffle(urls)
        got = run(d, urls, want_rc=5, timeout=50)
        for u, (s, p) in good.items():
            tls_ok(got[u], SHA[p], s)
        for u, p in plain.items():
            r = got[u]
            assert r["error"] is None and r["status"] == 200 and r["body_sha256"] == SHA[p], r
            assert r["tls_version"] is None and r["tls_verified"] is None and r["tls_backend"] is None, r
        for u, (msg, exact) in bad.items():
            r = got[u]
            ip = "127.0.0.2" if "//127.0.0.2:" in u else "127.0.0.1"
            if "/trunc" in u:
                tls_failed(r, msg, exact=False, status=200, handshake_done=True)
            else:
                tls_failed(r, msg, exact=exact, ip=ip)
        assert d.alive()
        d.fds_settle(base, slack=0, timeout=5)  # every connection closed after keepalive_idle_ms
        # And it goes on as before.
        u = n.url("rsa", "/1m.bin?mix-after")
        tls_ok(run(d, [u], want_rc=0)[u], SHA["/1m.bin"], "rsa", new_conn=True)
        assert stop_stats(d)["stale_cqes"] == 0


@suite.test
def rss_per_in_flight_tls_connection():
    """Printed, not checked: 500 fetches held in flight by /delay over TLS, full handshakes each."""
    n = nginx()
    N = 500
    conf = tls_conf(tls={"session_cache_size": 0},
                    fetch={"max_inflight": N, "per_host_connections": N, "keepalive_idle_ms": 0,
                           "connect_timeout_ms": 20000})
    with Fetchd(conf) as d:
        run(d, [n.url("ok", "/16k.bin?warm=%d" % i) for i in range(50)], want_rc=0)
        time.sleep(0.3)
        base = d.rss_kb()
        samples, stop = [], threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    samples.append(d.rss_kb())
                except (OSError, AssertionError):
                    return
                stop.wait(0.01)
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        t0 = time.monotonic()
        try:
            got = run(d, [n.url("ok", "/delay?rss=%d" % i) for i in range(N)], timeout=40)
        finally:
            stop.set()
            t.join()
        wall = time.monotonic() - t0
        ok = sum(1 for r in got.values() if r["status"] == 200 and r["error"] is None)
        assert ok == N, [r for r in got.values() if r["error"]][:3]
        # Were they in flight together? The sum of their durations over the wall time says how many
        # ran at once on average (the handshakes, CPU-bound in one worker, may take seconds).
        together = sum(r["timings_ms"]["total"] for r in got.values()) / 1000 / wall
        hs = sorted(r["timings_ms"]["tls"] for r in got.values())
        peak = max(samples)
        per = (peak - base) / N
        print("RSS per in-flight TLS connection: %.1f KiB (%s)" % (per, BACKEND_NAME))
        print("  [VmRSS base %d KiB, peak %d KiB; %d fetches, %.0f in flight on average; wall %.2f s for "
              "%.1f s responses; handshake median %.0f ms, max %.0f ms]"
              % (base, peak, N, together, wall, DELAY_S, hs[N // 2], hs[-1]))
        if together < 0.8 * N:
            print("  (note: only %.0f of %d were in flight together; the figure understates)" % (together, N))


if __name__ == "__main__":
    suite.main()

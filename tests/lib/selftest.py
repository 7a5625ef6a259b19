#!/usr/bin/env python3
"""selftest.py - checks the test infrastructure itself (hostile.py and harness.py), without fetchd.

Every hostile.py scenario is exercised with raw sockets or http.client, the nginx Origin with curl,
urllib and http.client, the Suite runner with a throw-away suite in a subprocess, and the Fetchd /
fetchctl / submit plumbing with stand-in programs (a fake daemon that only opens its socket, a fake
client that prints JSON Lines). Run: python3 tests/lib/selftest.py [NAME-SUBSTRING...]
Ends with "N passed, N failed" like every suite.
"""

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import hostile  # noqa: E402
from harness import Suite, Origin, Hostile, Fetchd, sha256_hex, pattern_body, wait_until  # noqa: E402

suite = Suite(__file__)
H = None  # the shared hostile server (subprocess), started in main


class Raw:
    """A raw client connection with a receive buffer."""

    def __init__(self, port, timeout=5.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, path, headers=""):
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, headers)).encode())

    def _more(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("EOF")
        self.buf += d

    def head(self):
        """The next response head as (status, headers list of (lower name, value), raw bytes)."""
        while b"\r\n\r\n" not in self.buf:
            self._more()
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        hdrs = [(n.strip().lower(), v.strip()) for n, _, v in (ln.partition(":") for ln in lines[1:])]
        return int(lines[0].split()[1]), hdrs, raw

    def exact(self, n):
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def until_eof(self):
        """Everything up to EOF; (bytes, exception or None) - a reset ends it too."""
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    break
                self.buf += d
            err = None
        except OSError as e:
            err = e
        out, self.buf = self.buf, b""
        return out, err

    def silent_for(self, seconds):
        """True when nothing (not even EOF) arrives for `seconds`."""
        self.s.settimeout(seconds)
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return True
        finally:
            self.s.settimeout(5.0)
        self.buf += d
        return False

    def close(self):
        self.s.close()


def get_cl(r, path):
    """GET path on Raw r, expect 200 with Content-Length; return (headers dict, body)."""
    r.send(path)
    status, hdrs, _ = r.head()
    assert status == 200, status
    h = dict(hdrs)
    return h, r.exact(int(h["content-length"]))


def hget(path, port=None):
    return harness.http_get(port or H.port, path)


# ---- hostile scenarios ----------------------------------------------------------------------------

@suite.test
def ok_exact_lengths():
    r = Raw(H.port)
    for n in (0, 1, 26, 27, 1000, 100000, 3 * 65536 + 5):
        h, body = get_cl(r, "/ok?len=%d" % n)
        assert body == pattern_body(n) and len(body) == n, n
    assert r.silent_for(0.1), "bytes beyond Content-Length"
    r.close()
    st, h, body = hget("/ok?len=5000000")
    assert st == 200 and sha256_hex(body) == harness.pattern_sha256(5000000)
    assert pattern_body(30) == b"abcdefghijklmnopqrstuvwxyzabcd"


@suite.test
def chunked_decodes_and_has_ext_and_trailer():
    for n, size in ((1000, 100), (1001, 7), (0, 5), (300000, 65536)):
        st, h, body = hget("/chunked?len=%d&size=%d" % (n, size))
        assert st == 200 and h.get("transfer-encoding") == "chunked" and body == pattern_body(n), (n, size)
    r = Raw(H.port)
    r.send("/chunked?len=30&size=7")
    r.head()
    end = b"0\r\nX-Trailer: t\r\n\r\n"
    while end not in r.buf:
        r._more()
    raw, r.buf = r.buf.split(end, 1)
    raw += end
    assert raw.startswith(b"7;ext=1\r\nabcdefg\r\n") and raw.count(b";ext=1") == 5, raw
    h, body = get_cl(r, "/ok?len=3")  # still keep-alive after the trailer
    assert body == b"abc"
    r.close()


@suite.test
def eof_body_then_close():
    r = Raw(H.port)
    r.send("/eof?len=777")
    st, hdrs, _ = r.head()
    names = [n for n, _ in hdrs]
    assert st == 200 and "content-length" not in names and "transfer-encoding" not in names
    body, err = r.until_eof()
    assert err is None and body == pattern_body(777)
    st, h, body = hget("/eof?len=100000")
    assert body == pattern_body(100000)


@suite.test
def delay_waits():
    t = time.monotonic()
    st, h, body = hget("/delay?ms=300&len=10")
    el = time.monotonic() - t
    assert st == 200 and body == pattern_body(10) and 0.3 <= el < 2, el


@suite.test
def drip_sends_byte_by_byte():
    r = Raw(H.port)
    t = time.monotonic()
    r.send("/drip?len=20&ms=5")
    first = r.s.recv(65536)
    assert len(first) == 1, first  # the first piece is a single byte
    r.buf = first
    st, hdrs, raw = r.head()
    body = r.exact(20)
    el = time.monotonic() - t
    total = len(raw) + 4 + 20
    assert st == 200 and body == pattern_body(20)
    assert el >= total * 0.005 * 0.9, (el, total)
    h, body = get_cl(r, "/drip?len=50")  # ms=0 default; keep-alive
    assert body == pattern_body(50)
    r.close()


@suite.test
def hang_holds_until_client_closes():
    H.reset()
    r = Raw(H.port)
    r.send("/hang")
    assert r.silent_for(0.5), "hang answered"
    assert H.stats()["open"] == 1
    r.close()
    wait_until(lambda: H.stats()["open"] == 0, what="hang connection closed on the server")


@suite.test
def headers_forever_never_ends_head():
    r = Raw(H.port)
    r.send("/headers-forever?ms=1")
    t = time.monotonic()
    while time.monotonic() - t < 0.5:
        r._more()
    assert r.buf.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\n\r\n" not in r.buf
    lines = r.buf.split(b"\r\n")[1:-1]
    assert len(lines) > 20 and all(len(ln) == 98 for ln in lines), len(lines)
    r.close()
    wait_until(lambda: H.stats()["open"] == 0, what="server thread to notice the close")


@suite.test
def huge_header():
    r = Raw(H.port)
    r.send("/huge-header")  # defaults: 1 MiB value, 100-byte body
    st, hdrs, _ = r.head()
    assert len(dict(hdrs)["x-huge"]) == 1 << 20
    assert r.exact(100) == pattern_body(100)
    r.send("/huge-header?bytes=1000&len=10")  # keep-alive
    st, hdrs, _ = r.head()
    assert len(dict(hdrs)["x-huge"]) == 1000 and r.exact(10) == pattern_body(10)
    r.close()
    try:
        hget("/huge-header")
    except http.client.HTTPException:
        pass
    else:
        raise AssertionError("http.client accepted a 1 MiB header line")


@suite.test
def chunked_forever_until_close():
    H.reset()
    c = http.client.HTTPConnection("127.0.0.1", H.port, timeout=5)
    c.request("GET", "/chunked-forever?size=1000")
    resp = c.getresponse()
    got = resp.read(3000000)  # http.client decodes chunks; it never sees the end
    assert got == pattern_body(3000000)
    c.close()
    wait_until(lambda: H.stats()["open"] == 0, what="chunked-forever thread to stop")


@suite.test
def cl_short():
    r = Raw(H.port)
    r.send("/cl-short?len=1000&send=300")
    st, hdrs, _ = r.head()
    assert dict(hdrs)["content-length"] == "1000"
    body, err = r.until_eof()
    assert err is None and body == pattern_body(300)
    try:
        hget("/cl-short")
    except http.client.IncompleteRead as e:
        assert len(e.partial) == 500
    else:
        raise AssertionError("no IncompleteRead")


@suite.test
def rst_header_and_body():
    r = Raw(H.port)
    r.send("/rst-header")
    data, err = r.until_eof()
    assert isinstance(err, ConnectionResetError), (data, err)
    assert b"\r\n\r\n" not in data
    r = Raw(H.port)
    r.send("/rst-body?len=100000")
    data, err = r.until_eof()
    assert isinstance(err, ConnectionResetError), err
    assert b"Content-Length: 100000\r\n" in data and len(data) < 100000


@suite.test
def huge_chunk():
    r = Raw(H.port)
    r.send("/huge-chunk")
    st, hdrs, _ = r.head()
    assert dict(hdrs)["transfer-encoding"] == "chunked"
    while len(r.buf) < 24 + 256:
        r._more()
    assert r.buf.startswith(b"FFFFFFFFFFFFFFFFFFFFFF\r\n")
    assert r.silent_for(0.3), "huge-chunk closed without close=1"
    r.close()
    r = Raw(H.port)
    r.send("/huge-chunk?close=1")
    r.head()
    data, err = r.until_eof()
    assert err is None and data.startswith(b"FFFFFFFFFFFFFFFFFFFFFF\r\n")


@suite.test
def interim_responses():
    r = Raw(H.port)
    r.send("/interim?n=3")
    for _ in range(3):
        st, hdrs, raw = r.head()
        assert st == 100 and raw == b"HTTP/1.1 100 Continue", raw
    st, hdrs, _ = r.head()
    assert st == 200 and r.exact(5) == b"final"
    r.send("/interim?n=2&code=103")
    for _ in range(2):
        st, hdrs, _ = r.head()
        assert st == 103 and "link" in dict(hdrs)
    st, hdrs, _ = r.head()
    assert st == 200 and r.exact(5) == b"final"
    r.close()
    st, h, body = hget("/interim?n=1")  # http.client skips 100 Continue
    assert st == 200 and body == b"final"


@suite.test
def garbage():
    r = Raw(H.port)
    r.send("/garbage")
    data, err = r.until_eof()
    assert err is None and len(data) == 514 and not data.startswith(b"HTTP")


@suite.test
def extra_then_next_request_served():
    for junk in ("resp", "bytes"):
        r = Raw(H.port)
        h, body = get_cl(r, "/extra?len=100&junk=" + junk)
        assert body == pattern_body(100)
        time.sleep(0.1)
        r.send("/conn")
        # Everything after the first response: the junk, then the real answer to /conn.
        while b"req=2" not in r.buf:
            r._more()
        if junk == "resp":
            assert r.buf.startswith(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nJUNK!HTTP/1.1 200")
        else:
            assert r.buf.startswith(b"\x00JUNK\xff")
        assert r.buf.endswith(b"req=2")
        r.close()


@suite.test
def malformed_framing():
    r = Raw(H.port)
    r.send("/cl-conflict")
    st, hdrs, _ = r.head()
    assert [v for n, v in hdrs if n == "content-length"] == ["5", "6"]
    r.until_eof()
    r = Raw(H.port)
    r.send("/te-cl")
    st, hdrs, _ = r.head()
    h = dict(hdrs)
    assert h["transfer-encoding"] == "chunked" and h["content-length"] == "3"
    body, err = r.until_eof()
    assert body == b"5\r\nabcde\r\n0\r\n\r\n"


@suite.test
def close_after_response():
    r = Raw(H.port)
    r.send("/close?len=10")
    st, hdrs, _ = r.head()
    assert dict(hdrs)["connection"] == "close"
    body, err = r.until_eof()
    assert body == pattern_body(10) and err is None


@suite.test
def status_codes():
    r = Raw(H.port)
    r.send("/status?code=204&len=50")
    st, hdrs, _ = r.head()
    assert st == 204 and dict(hdrs)["content-length"] == "50"
    r.send("/status?code=304")
    st, hdrs, _ = r.head()
    assert st == 304 and "content-length" not in dict(hdrs)
    r.send("/status?code=503&len=10")
    st, hdrs, _ = r.head()
    assert st == 503 and r.exact(10) == pattern_body(10)  # nothing was left over from 204/304
    r.send("/status?code=299")
    st, hdrs, raw = r.head()
    assert st == 299 and dict(hdrs)["content-length"] == "0"
    r.send("/nowhere")
    st, hdrs, _ = r.head()
    assert st == 404
    r.exact(int(dict(hdrs)["content-length"]))
    r.send("/ok?len=1")
    st, hdrs, _ = r.head()
    assert st == 200 and r.exact(1) == b"a"
    r.close()


@suite.test
def conn_counts_keepalive_reuse():
    c = http.client.HTTPConnection("127.0.0.1", H.port, timeout=5)
    seen = []
    for _ in range(3):
        c.request("GET", "/conn")
        seen.append(c.getresponse().read().decode())
    c.close()
    num = seen[0].split()[0]
    assert seen == ["%s req=%d" % (num, i) for i in (1, 2, 3)], seen
    st, h, body = hget("/conn")
    assert body.decode().split()[0] != num and body.endswith(b"req=1")


@suite.test
def pipelined_requests_and_echo():
    r = Raw(H.port)
    r.s.sendall(b"GET /ok?len=3 HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: y\r\nX-A: 1\r\n\r\n")
    st, hdrs, _ = r.head()  # both requests in one segment: answered in order
    assert st == 200 and r.exact(3) == b"abc"
    st, hdrs, _ = r.head()
    body = r.exact(int(dict(hdrs)["content-length"]))
    assert body == b"GET /echo HTTP/1.1\r\nHost: y\r\nX-A: 1\r\n\r\n", body
    r.close()


@suite.test
def bad_requests():
    r = Raw(H.port)
    r.s.sendall(b"GET / HTTP/1.1\r\nX: " + b"a" * 70000)
    st, hdrs, _ = r.head()
    assert st == 431
    r.until_eof()
    r = Raw(H.port)
    r.s.sendall(b"NONSENSE\r\n\r\n")
    st, hdrs, _ = r.head()
    assert st == 400
    # HTTP/1.0 without keep-alive gets closed; Connection: close on 1.1 too
    r = Raw(H.port)
    r.s.sendall(b"GET /ok?len=2 HTTP/1.0\r\n\r\n")
    assert r.until_eof()[0].endswith(b"\r\n\r\nab")
    r = Raw(H.port)
    r.send("/ok?len=2", "Connection: close\r\n")
    assert r.until_eof()[0].endswith(b"\r\n\r\nab")


@suite.test
def stats_count_concurrent_connections():
    H.reset()
    socks = []
    for _ in range(50):
        r = Raw(H.port)
        r.send("/hang")
        socks.append(r)
    wait_until(lambda: H.stats()["open"] == 50, what="50 open")
    s = H.stats()
    assert s["max_open"] == 50 and s["connections"] == 50 and s["requests"] == 50, s
    assert s["by_path"] == {"/hang": 50}, s
    for r in socks[:20]:
        r.close()
    wait_until(lambda: H.stats()["open"] == 30, what="30 open")
    H.reset()
    s = H.stats()
    assert s["max_open"] == 30 and s["connections"] == 0 and s["requests"] == 0, s
    for r in socks[20:]:
        r.close()
    wait_until(lambda: H.stats()["open"] == 0, what="0 open")
    assert H.stats()["max_open"] == 30
    # A connection that never sends a request is counted when it closes, but never as open.
    H.reset()
    socket.create_connection(("127.0.0.1", H.port)).close()
    wait_until(lambda: H.stats()["connections"] == 1, what="idle connection counted")
    assert H.stats()["max_open"] == 0


@suite.test(timeout=120)
def thousand_concurrent_connections():
    H.reset()
    n = 1200
    conns = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", H.port), timeout=30)
        s.sendall(b"GET /ok?len=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (i % 500))
        conns.append(s)
    wait_until(lambda: H.stats()["open"] == n, timeout=30, what="%d open" % n)
    for i, s in enumerate(conns):
        data = b""
        want = i % 500
        while not (b"\r\n\r\n" in data and len(data.split(b"\r\n\r\n", 1)[1]) >= want):
            d = s.recv(65536)
            assert d, "EOF on connection %d" % i
            data += d
        assert data.split(b"\r\n\r\n", 1)[1] == pattern_body(want)
    s = H.stats()
    assert s["max_open"] == n and s["requests"] == n, s
    for s in conns:
        s.close()
    wait_until(lambda: H.stats()["open"] == 0, timeout=30, what="all closed")


@suite.test
def inprocess_server_and_program_mode():
    srv = hostile.HostileServer()
    port = srv.start()
    st, h, body = harness.http_get(port, "/conn")
    assert body == b"conn=1 req=1", body
    s = srv.stats()
    assert s["connections"] == 1 and s["requests"] == 1 and s["by_path"] == {"/conn": 1}, s
    srv.stop()
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        pass
    else:
        raise AssertionError("still accepting after stop()")
    with Hostile(inprocess=True) as h2:
        st, _, body = harness.http_get(h2.port, "/ok?len=4")
        assert body == b"abcd" and h2.stats()["requests"] == 1
    # Program mode: "PORT n" on the first line, serves until killed.
    p = subprocess.Popen([sys.executable, hostile.__file__, "--port", "0", "--host", "127.0.0.1"],
                         stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("PORT "), line
        st, _, body = harness.http_get(int(line.split()[1]), "/ok?len=2")
        assert body == b"ab"
    finally:
        p.kill()
        p.wait()


# ---- nginx origin --------------------------------------------------------------------------------

@suite.test
def origin_files_delay_status():
    with Origin(extra_files={"/sub/x.txt": b"hello\n"}) as o:
        assert len(o.files["/1k.html"]) == 1024 and len(o.files["/16k.html"]) == 16384
        assert len(o.files["/1m.bin"]) == 1 << 20 and o.files["/empty.txt"] == b""
        for path, digest in o.sha256.items():
            out = subprocess.run(["curl", "-sS", "-f", "-o", "-", o.url(path)], capture_output=True,
                                 timeout=30)
            assert out.returncode == 0, out.stderr
            assert sha256_hex(out.stdout) == digest, path
        with urllib.request.urlopen(o.url("/1m.bin"), timeout=10) as resp:
            assert sha256_hex(resp.read()) == o.sha256["/1m.bin"]
        for path, want, minimum in (("/delay", b"delayed\n", 0.1), ("/slow", b"slow\n", 1.0)):
            t = time.monotonic()
            st, h, body = harness.http_get(o.port, path)
            el = time.monotonic() - t
            assert st == 200 and body == want and el >= minimum, (path, body, el)
        st, h, body = harness.http_get(o.port, "/missing")
        assert st == 404
        # Keep-alive and stub_status: one idle kept-alive client connection shows as active.
        if o.has_stub_status:
            assert o.active_connections() == 0
            c = http.client.HTTPConnection("127.0.0.1", o.port, timeout=5)
            for _ in range(5):
                c.request("GET", "/1k.html")
                assert c.getresponse().read() == o.files["/1k.html"]
            assert o.active_connections() == 1 and o.stub_status()["waiting"] == 1
            c.close()
            wait_until(lambda: o.active_connections() == 0, what="nginx to see the close")
        pid, d = o.proc.pid, o.dir
    assert not os.path.exists(d), "temp dir left behind"
    assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z"


@suite.test
def origin_many_keepalive_requests():
    with Origin() as o:
        c = http.client.HTTPConnection("127.0.0.1", o.port, timeout=5)
        for _ in range(300):
            c.request("GET", "/16k.html")
            assert c.getresponse().read() == o.files["/16k.html"]
        c.close()
        if o.has_stub_status:
            assert o.stub_status()["accepts"] <= 3  # readiness probe, this client, the status query


# ---- the runner and the fetchd plumbing ----------------------------------------------------------

@suite.test
def suite_runner_reports_and_times_out():
    code = textwrap.dedent("""
        import sys, time
        sys.path.insert(0, %r)
        from harness import Suite
        s = Suite("x")
        @s.test
        def good(): pass
        @s.test
        def bad(): assert 1 == 2, "one is not two"
        @s.test(timeout=0.3)
        def slow():
            try:
                time.sleep(5)
            except Exception:
                pass  # a test cannot swallow the timeout
        @s.test
        def after(): pass
        s.main()
    """ % os.path.dirname(os.path.abspath(__file__)))
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    lines = p.stdout.splitlines()
    assert p.returncode == 1, p
    assert lines[-1] == "2 passed, 2 failed", p.stdout
    assert "ok good" in p.stdout and "ok after" in p.stdout
    assert "FAIL bad: AssertionError: one is not two" in p.stdout
    assert "FAIL slow: timed out after 0.3s" in p.stdout
    assert time.monotonic() - t < 5
    p = subprocess.run([sys.executable, "-c", code, "good"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.splitlines()[-1] == "1 passed, 0 failed", p.stdout


FAKE_FETCHD = r'''
import os, signal, socket, sys, time
args = sys.argv[1:]
conf, sock = args[args.index("-c") + 1], args[args.index("-s") + 1]
text = open(conf).read()
sys.stderr.write("fake fetchd conf=%r extra=%r\n" % (text, args[4:]))
sys.stderr.flush()
if "fail" in text:
    sys.stderr.write("fetchd.conf:1: bad\n")
    sys.exit(2)
time.sleep(0.2)
ls = socket.socket(socket.AF_UNIX)
ls.bind(sock)
ls.listen(16)
signal.signal(signal.SIGTERM, lambda s, f: sys.exit(0 if "slowstop" not in text else time.sleep(60)))
while True:
    c, _ = ls.accept()
    c.close()
'''

FAKE_FETCHCTL = r'''
import json, sys
args = sys.argv[1:]
assert args[0] == "-s" and args[2] == "submit", args
for u in open(args[-1]).read().split():
    print(json.dumps({"url": u, "status": 200, "sock": args[1]}))
sys.stderr.write("done\n")
'''


@suite.test
def fetchd_helpers_with_stand_ins():
    tmp = tempfile.mkdtemp(prefix="fetchd-selftest-")
    fake_d, fake_c = os.path.join(tmp, "fetchd"), os.path.join(tmp, "fetchctl")
    for path, body in ((fake_d, FAKE_FETCHD), (fake_c, FAKE_FETCHCTL)):
        with open(path, "w") as f:
            f.write("#!%s\n%s" % (sys.executable, body))
        os.chmod(path, 0o755)
    old = dict(os.environ)
    os.environ["FETCHD_BIN"], os.environ["FETCHCTL_BIN"] = fake_d, fake_c
    try:
        conf = {"fetch": {"max_inflight": 4, "user_agent": "t"}, "control": {"max_clients": 2}}
        with Fetchd(conf, extra_args=("-v",)) as d:
            assert d.alive() and os.path.exists(d.sock)
            with open(d.conf_path) as f:
                assert f.read() == ("[fetch]\nmax_inflight = 4\nuser_agent = t\n\n"
                                    "[control]\nmax_clients = 2\n")
            assert "fake fetchd" in d.log_text() and "['-v']" in d.log_text()
            assert d.fd_count() >= 3 and d.rss_kb() > 1000
            rc, results, err = harness.submit(d.sock, ["http://a/1", "http://b/2"])
            assert rc == 0 and err == "done\n" and len(results) == 2
            m = harness.by_url(results)
            assert m["http://b/2"]["status"] == 200 and m["http://a/1"]["sock"] == d.sock
            rc, out, err = harness.fetchctl(d.sock, "submit /dev/null")
            assert rc == 0 and out == ""
            assert d.stop() == 0 and not d.alive()
        assert not os.path.exists(d.dir)
        try:
            Fetchd("fail = 1\n")
        except harness.FetchdStartError as e:
            assert e.rc == 2 and "fetchd.conf:1: bad" in e.log
        else:
            raise AssertionError("no FetchdStartError")
        d = Fetchd({"x": {"slowstop": 1}})
        t = time.monotonic()
        assert d.stop(timeout=0.5) == -9 and time.monotonic() - t < 5
        d.__exit__(None, None, None)
    finally:
        os.environ.clear()
        os.environ.update(old)
        harness.shutil.rmtree(tmp, ignore_errors=True)


def main():
    global H
    H = Hostile()
    try:
        suite.main()
    finally:
        H.stop()


if __name__ == "__main__":
    main()

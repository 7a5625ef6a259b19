#!/usr/bin/env python3
"""selftest.py - checks the test infrastructure itself (hostile.py and harness.py), without fetchd.

Every hostile.py scenario is exercised with raw sockets or http.client, the nginx Origin with curl,
urllib and http.client, the Suite runner with a throw-away suite in a subprocess, and the Fetchd /
fetchctl / submit plumbing with stand-in programs (a fake daemon that only opens its socket, a fake
client that prints JSON Lines). Run: python3 tests/lib/selftest.py [NAME-SUBSTRING...]
Ends with "N passed, N failed" like every suite.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
import urllib.request
import zlib
from urllib.parse import quote, urlencode

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


# ---- redirects, retries, encodings, robots, the request log ---------------------------------------

def ctl(path):
    """GET a /_ctl/ path on the shared server; the body (asserting 200)."""
    st, h, body = hget(path)
    assert st == 200, (path, st, body)
    return body


def log(prefix=""):
    return json.loads(ctl("/_ctl/log?prefix=" + quote(prefix, safe="")))


@suite.test
def redirect_location_exact():
    r = Raw(H.port)
    for code, to in ((302, "/rel/path?x=1&y=2"), (301, "http://example.com:8080/a#f"),
                     (303, "//other.host/p"),
                     (307, "/with space/a+b"), (308, "rel/é%41"), (300, "?q"), (399, "x\ty"), (200, "/z")):
        r.send("/redirect?code=%d&to=%s" % (code, quote(to, safe="")))
        st, hdrs, raw = r.head()
        h = dict(hdrs)
        assert st == code and h["location"].encode("latin-1") == to.encode("utf-8"), (code, to, raw)
        assert ("\r\nLocation: " + to + "\r\n").encode("utf-8") in raw + b"\r\n", raw
        assert r.exact(int(h["content-length"])) == b"redirect"
    r.send("/redirect?to=/x")  # defaults: 302
    st, hdrs, _ = r.head()
    assert st == 302 and dict(hdrs)["location"] == "/x" and r.exact(8) == b"redirect"
    r.send("/redirect?code=301&to=/b&body=3000")
    st, hdrs, _ = r.head()
    assert st == 301 and dict(hdrs)["content-length"] == "3000" and r.exact(3000) == pattern_body(3000)
    r.send("/redirect?code=302&to=/c&noloc=1")
    st, hdrs, _ = r.head()
    assert st == 302 and "location" not in dict(hdrs) and r.exact(8) == b"redirect"
    r.send("/redirect?code=304&to=/d")  # no body, no Content-Length; the connection stays usable
    st, hdrs, _ = r.head()
    assert st == 304 and dict(hdrs)["location"] == "/d" and "content-length" not in dict(hdrs)
    h, body = get_cl(r, "/ok?len=2")
    assert body == b"ab"
    # CR LF in `to` goes out as is: a header injection for tests that want one
    r.send("/redirect?to=%2Fa%0D%0AX-Injected%3A%201")
    st, hdrs, _ = r.head()
    assert dict(hdrs)["x-injected"] == "1" and r.exact(8) == b"redirect"
    r.close()


@suite.test
def chain_relative_and_absolute():
    r = Raw(H.port)
    for n in range(4, 0, -1):
        r.send("/chain?n=%d&code=301&id=X" % n)
        st, hdrs, _ = r.head()
        assert st == 301 and dict(hdrs)["location"] == "/chain?n=%d&code=301&id=X" % (n - 1), hdrs
        r.exact(8)
    h, body = get_cl(r, "/chain?n=0&code=301&id=X")
    assert body == b"chain-end id=X"
    r.send("/chain?n=1&id=a%20b%26c")  # default code 302; id re-encoded
    st, hdrs, _ = r.head()
    assert st == 302 and dict(hdrs)["location"] == "/chain?n=0&code=302&id=a%20b%26c", hdrs
    r.exact(8)
    h, body = get_cl(r, "/chain?n=0&code=302&id=a%20b%26c")
    assert body == b"chain-end id=a b&c"
    r.send("/chain?n=2&code=307&id=Q&abs=1")  # Raw sends "Host: x"
    st, hdrs, _ = r.head()
    assert dict(hdrs)["location"] == "http://x:%d/chain?n=1&code=307&id=Q&abs=1" % H.port, hdrs
    r.exact(8)
    r.close()
    # A real client follows the whole chain, relative or absolute.
    for extra in ("", "&abs=1"):
        ctl("/_ctl/clear")
        with urllib.request.urlopen(H.url("/chain?n=5&code=301&id=u%s" % extra), timeout=10) as resp:
            assert resp.read() == b"chain-end id=u" and resp.url.startswith(H.url("/chain?n=0&"))
        assert [e["target"] for e in log("/chain")] == [
            "/chain?n=%d&code=301&id=u%s" % (n, extra) for n in range(5, -1, -1)]


@suite.test
def loop_redirects_forever():
    st, h, _ = hget("/loop?id=L&step=0")
    assert st == 302 and h["location"] == "/loop?id=L&step=1"
    st, h, _ = hget("/loop?id=L&step=1")
    assert st == 302 and h["location"] == "/loop?id=L&step=0"
    st, h, _ = hget("/loop?id=L")
    assert h["location"] == "/loop?id=L&step=1"
    try:
        urllib.request.urlopen(H.url("/loop?id=L&step=0"), timeout=10)
    except urllib.error.HTTPError as e:
        assert e.code == 302 and "infinite loop" in str(e), e
    else:
        raise AssertionError("urllib followed an endless loop to an end")


@suite.test
def flaky_counts_and_retry_after():
    key = "fc%d" % os.getpid()
    r = Raw(H.port)
    for i in (1, 2):  # keep-alive through the failures
        r.send("/flaky?key=%s&fail=2&code=503&retry_after=120" % key)
        st, hdrs, _ = r.head()
        h = dict(hdrs)
        assert st == 503 and h["retry-after"] == "120", (st, hdrs)
        assert r.exact(int(h["content-length"])) == b"flaky %d" % i
    for i in (3, 4):
        h, body = get_cl(r, "/flaky?key=%s&fail=2&code=503&retry_after=120" % key)
        assert body == b"ok after %d" % i and "retry-after" not in h
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    r.send("/flaky?key=%s-d&fail=1&code=429&retry_after=%s" % (key, quote(date, safe="")))
    st, hdrs, _ = r.head()
    assert st == 429 and dict(hdrs)["retry-after"] == date
    r.exact(int(dict(hdrs)["content-length"]))
    h, body = get_cl(r, "/flaky?key=%s-d&fail=1&code=429" % key)  # same key, other parameters
    assert body == b"ok after 2"
    r.send("/flaky?key=%s-n&fail=1" % key)  # defaults: 503, no Retry-After
    st, hdrs, _ = r.head()
    assert st == 503 and "retry-after" not in dict(hdrs)
    r.exact(int(dict(hdrs)["content-length"]))
    r.close()
    # reset / close / hang: one connection each, then the success
    for how in ("reset", "close", "hang"):
        k = "%s-%s" % (key, how)
        for _ in range(2):
            r = Raw(H.port)
            r.send("/flaky?key=%s&fail=2&code=%s" % (k, how))
            if how == "hang":
                assert r.silent_for(0.3), "flaky hang answered"
                r.close()
                continue
            data, err = r.until_eof()
            assert data == b"", (how, data)
            if how == "reset":
                assert isinstance(err, ConnectionResetError), err
            else:
                assert err is None, err
        st, h, body = hget("/flaky?key=%s&fail=2&code=%s" % (k, how))
        assert st == 200 and body == b"ok after 3", (how, st, body)
    wait_until(lambda: H.stats()["open"] == 0, what="flaky connections closed")


def decode(body, kind):
    return zlib.decompress(body, hostile.WBITS[kind])


@suite.test
def gzip_and_deflate_decode_to_pattern():
    r = Raw(H.port)
    for path, kind, magic in (("/gzip?", "gzip", b"\x1f\x8b"), ("/deflate?", "deflate", b"\x78"),
                              ("/deflate?raw=1&", "raw", b"")):
        for n in (0, 1, 26, 1000, 100000, 3000000):
            h, body = get_cl(r, "%slen=%d" % (path, n))
            assert h["content-encoding"] == ("gzip" if kind == "gzip" else "deflate"), h
            assert body.startswith(magic) and len(body) < n + 64, (path, n, len(body))
            assert sha256_hex(decode(body, kind)) == harness.pattern_sha256(n), (path, n)
            assert body == hostile.compress_pattern(n, kind), (path, n)
        # chunked framing, through http.client (which undoes the chunking, not the encoding)
        st, h, body = hget("%slen=200000&chunked=1&size=1000&level=9" % path)
        assert h["transfer-encoding"] == "chunked" and "content-length" not in h
        assert sha256_hex(decode(body, kind)) == harness.pattern_sha256(200000)
        assert body == hostile.compress_pattern(200000, kind, 9)
    try:
        zlib.decompress(hget("/deflate?raw=1&len=100")[2])  # raw=1 really has no zlib wrapper
    except zlib.error:
        pass
    else:
        raise AssertionError("raw deflate decoded as zlib")
    lvl1, lvl9 = hget("/gzip?len=1000000&level=1")[2], hget("/gzip?len=1000000&level=9")[2]
    assert lvl1 != lvl9 and decode(lvl1, "gzip") == decode(lvl9, "gzip") == pattern_body(1000000)
    assert hget("/gzip?len=5000")[2] == hget("/gzip?len=5000")[2]  # deterministic (mtime 0)
    # chunked on a raw socket: the chunk sizes, then keep-alive
    r.send("/gzip?len=100000&chunked=1&size=7")
    st, hdrs, _ = r.head()
    while not r.buf.endswith(b"\r\n0\r\n\r\n"):
        r._more()
    assert r.buf.startswith(b"7\r\n\x1f\x8b")
    r.buf = b""
    c = http.client.HTTPConnection("127.0.0.1", H.port, timeout=5)
    c.request("HEAD", "/gzip?len=100000")
    resp = c.getresponse()
    assert resp.getheader("content-length") == str(len(hostile.compress_pattern(100000)))
    assert resp.read() == b""
    c.close()
    h, body = get_cl(r, "/ok?len=3")
    assert body == b"abc"
    r.close()


@suite.test
def gzip_corrupt_and_truncated():
    r = Raw(H.port)
    for n in (0, 1, 26, 1024, 100000, 2000000):
        good = hostile.compress_pattern(n)
        h, body = get_cl(r, "/gzip-corrupt?len=%d" % n)
        assert h["content-encoding"] == "gzip" and len(body) == len(good)
        assert sum(a != b for a, b in zip(body, good)) == 4
        try:
            out = zlib.decompress(body, 31)
        except zlib.error:
            pass
        else:
            raise AssertionError("corrupt gzip decoded (len=%d, %d bytes)" % (n, len(out)))
        h, body = get_cl(r, "/gzip-truncated?len=%d" % n)
        assert h["content-encoding"] == "gzip" and body == good[:len(good) // 2], n
        d = zlib.decompressobj(31)
        out = d.decompress(body)
        assert not d.eof and pattern_body(n).startswith(out), n
    h, body = get_cl(r, "/gzip-corrupt")  # default len 1024
    assert len(body) == len(hostile.compress_pattern(1024))
    r.close()


@suite.test
def gzip_bomb_streams_and_stops():
    H.reset()
    c = http.client.HTTPConnection("127.0.0.1", H.port, timeout=10)
    c.request("GET", "/gzip-bomb")  # 1 GiB of zeros
    resp = c.getresponse()
    assert resp.getheader("content-encoding") == "gzip" and resp.getheader("transfer-encoding") == "chunked"
    d = zlib.decompressobj(31)
    decoded = wire = 0
    while decoded < 64 << 20:
        data = resp.read1(65536)
        assert data, "bomb ended early"
        wire += len(data)
        out = d.decompress(data, 1 << 24)
        assert out.count(0) == len(out)
        decoded += len(out)
        while d.unconsumed_tail:
            out = d.decompress(d.unconsumed_tail, 1 << 24)
            decoded += len(out)
    assert wire < decoded // 500, (wire, decoded)
    c.close()
    wait_until(lambda: H.stats()["open"] == 0, what="bomb thread to notice the close")
    # A small one to its end: exact size, a proper gzip end, and keep-alive.
    c = http.client.HTTPConnection("127.0.0.1", H.port, timeout=10)
    for mb in (3, 0):
        c.request("GET", "/gzip-bomb?mb=%d&level=1" % mb)
        body = c.getresponse().read()
        d = zlib.decompressobj(31)
        out = d.decompress(body)
        assert d.eof and len(out) == mb << 20 and out.count(0) == len(out), (mb, len(out))
    c.request("GET", "/conn")
    assert c.getresponse().read().endswith(b"req=3")
    c.close()


@suite.test
def echo_request_get_and_head():
    r = Raw(H.port)
    r.s.sendall(b"GET /echo-request?a=1&b=%20 HTTP/1.1\r\nHost: x\r\nX-Mixed-Case:  v 1 \r\n"
                b"X-Dup: a\r\nX-Dup: b\r\nUser-Agent: t/1\r\n\r\n")
    st, hdrs, _ = r.head()
    h = dict(hdrs)
    assert st == 200 and h["content-type"] == "application/json"
    got = json.loads(r.exact(int(h["content-length"])))
    assert got == {"method": "GET", "target": "/echo-request?a=1&b=%20",
                   "headers": [["Host", "x"], ["X-Mixed-Case", "v 1"], ["X-Dup", "a"], ["X-Dup", "b"],
                               ["User-Agent", "t/1"]]}, got
    r.s.sendall(b"HEAD /echo-request HTTP/1.1\r\nHost: y\r\n\r\n")
    st, hdrs, _ = r.head()
    want = json.dumps({"method": "HEAD", "target": "/echo-request", "headers": [["Host", "y"]]})
    assert st == 200 and dict(hdrs)["content-length"] == str(len(want)), (hdrs, want)
    h, body = get_cl(r, "/ok?len=4")  # nothing followed the HEAD response
    assert body == b"abcd"
    r.s.sendall(b"POST /echo-request HTTP/1.1\r\nHost: z\r\nContent-Length: 3\r\n\r\nabc")
    st, hdrs, _ = r.head()
    got = json.loads(r.exact(int(dict(hdrs)["content-length"])))
    assert got["method"] == "POST" and got["headers"][1] == ["Content-Length", "3"]
    r.close()


@suite.test
def robots_control():
    ctl("/_ctl/robots?reset=1")
    H.reset()
    st, h, body = hget("/robots.txt")
    assert st == 404 and body == b"not found\n"
    text = "User-agent: *\nDisallow: /private\nAllow: /a+b%c\n"
    assert ctl("/_ctl/robots?" + urlencode({"status": 200, "body": text})) == b"ok"
    st, h, body = hget("/robots.txt")
    assert st == 200 and body.decode() == text and h["content-type"] == "text/plain"
    ctl("/_ctl/robots?status=503&delay_ms=300")
    t = time.monotonic()
    st, h, body = hget("/robots.txt")
    assert st == 503 and body == b"" and time.monotonic() - t >= 0.3
    ctl("/_ctl/robots?status=301&location=%2Frobots2.txt")
    st, h, body = hget("/robots.txt")
    assert st == 301 and h["location"] == "/robots2.txt"
    ctl("/_ctl/robots?body=%FF%00x")  # status defaults to 200; any bytes
    r = Raw(H.port)
    h, body = get_cl(r, "/robots.txt")
    assert body == b"\xff\x00x"
    r.close()
    ctl("/_ctl/robots?reset=1")
    assert hget("/robots.txt")[0] == 404
    # /_ctl/ requests are control: never counted
    s = H.stats()
    assert s["by_path"] == {"/robots.txt": 6}, s
    st, h, body = hget("/_ctl/nothing")
    assert st == 404 and H.stats()["requests"] == 6


@suite.test
def request_log_prefix_and_times():
    ctl("/_ctl/clear")
    assert log() == []
    t0 = time.time()
    r1, r2 = Raw(H.port), Raw(H.port)
    get_cl(r1, "/flaky?key=log%d&fail=0" % os.getpid())
    r2.send("/ok?len=1", "X-Test: two\r\n")
    r2.head()
    r2.exact(1)
    get_cl(r1, "/slow-ok?ms=200&len=5")
    t_slow = time.time()
    get_cl(r2, "/flaky?key=log%d&fail=0" % os.getpid())
    hget("/_stats")
    hget("/_ctl/log?prefix=/")
    get_cl(r1, "/ok?len=1&x=2")
    t1 = time.time()
    r1.close()
    r2.close()
    entries = log()
    assert [e["target"] for e in entries] == [
        "/flaky?key=log%d&fail=0" % os.getpid(), "/ok?len=1", "/slow-ok?ms=200&len=5",
        "/flaky?key=log%d&fail=0" % os.getpid(), "/ok?len=1&x=2"], entries
    ts = [e["t"] for e in entries]
    assert all(a < b for a, b in zip(ts, ts[1:])) and t0 - 0.001 <= ts[0] and ts[-1] <= t1 + 0.001, ts
    assert all(round(t, 6) == t for t in ts)
    assert t_slow - ts[2] >= 0.19, (t_slow, ts[2])  # logged on arrival, before the 200 ms wait
    conns = [e["conn"] for e in entries]
    assert conns[0] == conns[2] == conns[4] != conns[1] == conns[3] and min(conns) > 0, conns
    assert entries[1]["method"] == "GET" and entries[1]["headers"] == [["Host", "x"], ["X-Test", "two"]]
    flaky = log("/flaky")
    assert [e["target"] for e in flaky] == [entries[0]["target"], entries[3]["target"]]
    assert flaky[1] == entries[3]
    assert [e["target"] for e in log("/ok?len=1&")] == ["/ok?len=1&x=2"]
    assert log("/nothing") == []
    st, h, body = hget("/_ctl/log?prefix=%2Fslow-ok")
    assert h["content-type"] == "application/json" and len(json.loads(body)) == 1
    assert ctl("/_ctl/clear") == b"ok" and log() == []


@suite.test
def inprocess_new_operations():
    srv = hostile.HostileServer()
    port = srv.start()
    try:
        srv.set_robots(200, "User-agent: *\nDisallow: /\n")
        st, h, body = harness.http_get(port, "/robots.txt")
        assert st == 200 and body == b"User-agent: *\nDisallow: /\n"
        srv.set_robots(429, b"", delay_ms=100)
        t = time.monotonic()
        assert harness.http_get(port, "/robots.txt")[0] == 429 and time.monotonic() - t >= 0.1
        srv.reset_robots()
        assert harness.http_get(port, "/robots.txt")[0] == 404
        harness.http_get(port, "/flaky?key=k&fail=1")
        harness.http_get(port, "/flaky?key=k&fail=1")
        assert srv.flaky_count("k") == 2 and srv.flaky_count("other") == 0
        assert [e["target"] for e in srv.request_log("/flaky")] == ["/flaky?key=k&fail=1"] * 2
        assert len(srv.request_log()) == 5 and srv.request_log()[0]["conn"] == 1
        srv.clear_log()
        assert srv.request_log() == []
        # Many threads at once: every request logged, times strictly increasing.
        def worker(i):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            for j in range(100):
                c.request("GET", "/ok?len=1&w=%d&j=%d" % (i, j))
                c.getresponse().read()
            c.close()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        entries = srv.request_log("/ok")
        ts = [e["t"] for e in entries]
        assert len(entries) == 800 and all(a < b for a, b in zip(ts, ts[1:]))
        assert len({e["conn"] for e in entries}) == 8
        # Bounded: only the newest LOG_MAX entries stay.
        oks = entries
        conn = hostile._Conn(None)
        conn.number = 7
        for i in range(hostile.LOG_MAX + 10 - 800):
            srv._record(conn, hostile._Request(b"GET /b%d HTTP/1.1\r\nHost: h" % i))
        entries = srv.request_log()
        assert len(entries) == hostile.LOG_MAX and entries[-1]["target"] == "/b%d" % (hostile.LOG_MAX - 791)
        assert srv.request_log("/ok") == oks[10:]  # the 10 oldest went
    finally:
        srv.stop()


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
                                    "[control]\nmax_clients = 2\n\n"
                                    "[security]\nallow_addresses = %s\n\n"
                                    "[retry]\ntimes = 0\n" % harness.LOOPBACK_ALLOW)
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

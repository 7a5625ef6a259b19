#!/usr/bin/env python3
"""test_errors.py - fetchd against misbehaving servers (tests/lib/hostile.py) and bad input.

Every test asserts the exact outcome of each fetch (error class, timeout phase, status, body size and
sha256) and that fetchd is still alive afterwards. Most tests share one long-lived "main" fetchd (so
the last test can check that, after everything, its descriptors and connections all go away); tests
that need their own limits or timeouts start a small fetchd of their own. One hostile server serves
every test.

Run from the repository root:  python3 tests/integration/test_errors.py [NAME-FILTER...]
"""

import hashlib
import json
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (Fetchd, Hostile, Origin, Suite, by_url, free_port, pattern_sha256,  # noqa: E402
                     submit, wait_until)

suite = Suite(__file__, timeout=30)

EMPTY_SHA = hashlib.sha256(b"").hexdigest()
FD_SLACK = 1

# Short timeouts everywhere, so that a daemon that misses a limit cannot stall the suite for long.
QUIET = {"log_level": "warn"}
MAIN_CONF = {
    "daemon": QUIET,
    "fetch": {"max_inflight": 64, "per_host_connections": 8, "connect_timeout_ms": 2000,
              "header_timeout_ms": 5000, "idle_timeout_ms": 3000, "timeout_ms": 10000,
              "keepalive_idle_ms": 200},
}

_state = {}


def hostile() -> Hostile:
    """The hostile server shared by every test."""
    if "hostile" not in _state:
        _state["hostile"] = Hostile()
    return _state["hostile"]


def main_daemon():
    """(fetchd, fd count right after startup): the daemon shared by most tests."""
    if "main" not in _state:
        d = Fetchd(MAIN_CONF)
        _state["main"] = (d, d.fd_count())
    return _state["main"]


def H(path: str) -> str:
    return hostile().url(path)


def j(r) -> str:
    """A result as JSON text for assertion messages (long URLs shortened)."""
    r = dict(r)
    for k in ("url", "final_url"):
        if isinstance(r.get(k), str) and len(r[k]) > 200:
            r[k] = r[k][:100] + "...(%d bytes)" % len(r[k])
    return json.dumps(r, sort_keys=True)


def assert_alive(d: Fetchd):
    assert d.alive(), "fetchd died (exit %s); log tail:\n%s" % (d.proc.poll(), d.log_text()[-3000:])


def run(d: Fetchd, urls, want_rc=None, timeout=30):
    """Submit urls; check one result per URL and (optionally) the exit code; return {url: result}."""
    rc, results, err = submit(d.sock, urls, timeout=timeout)
    assert_alive(d)
    assert len(results) == len(urls), "%d URLs but %d results (rc %d, stderr %s)" % (
        len(urls), len(results), rc, err.strip())
    if want_rc is not None:
        assert rc == want_rc, "fetchctl exit %d, wanted %d; stderr: %s" % (rc, want_rc, err.strip())
    res = by_url(results)
    missing = [u for u in urls if u not in res]
    assert not missing, "no result for %s" % missing[:3]
    return res


def check_ok(r, status=200, n=None, sha=None, ctype=None):
    """A success: status, no error, body_bytes n and body_sha256 sha (pattern_sha256(n) by default)."""
    if sha is None and n is not None:
        sha = pattern_sha256(n)
    assert r["error"] is None, "unexpected error: " + j(r)
    assert r["status"] == status, "status %r != %r: %s" % (r["status"], status, j(r))
    if n is not None:
        assert r["body_bytes"] == n, "body_bytes %r != %r: %s" % (r["body_bytes"], n, j(r))
    if sha is not None:
        assert r["body_sha256"] == sha, "wrong body_sha256: " + j(r)
    if ctype is not None:
        assert r["content_type"] == ctype, "content_type %r != %r: %s" % (r["content_type"], ctype, j(r))
    assert r["final_url"] == r["url"], j(r)
    assert r["attempts"] >= 1, j(r)
    return r


def check_err(r, cls, status=None, phase=None, ip="127.0.0.1"):
    """A failure of class cls; status is what arrived (None when the header never completed); phase
    for timeouts (None: no phase field); no body hash."""
    e = r["error"]
    assert isinstance(e, dict), "expected a %s error, got success: %s" % (cls, j(r))
    assert e.get("class") == cls, "error class %r != %r: %s" % (e.get("class"), cls, j(r))
    assert isinstance(e.get("message"), str) and e["message"], "error without a message: " + j(r)
    assert e.get("phase") == phase, "error phase %r != %r: %s" % (e.get("phase"), phase, j(r))
    assert r["status"] == status, "status %r != %r: %s" % (r["status"], status, j(r))
    assert r["body_sha256"] is None, "a failed fetch has a body hash: " + j(r)
    if status is None:
        assert r["body_bytes"] == 0, "no header but body bytes: " + j(r)
    if ip is not Ellipsis:
        assert r["ip"] == ip, "ip %r != %r: %s" % (r["ip"], ip, j(r))
    return r


def check_duration(r, ms, lo=0.8, hi=5.0):
    t = r["timings_ms"]["total"]
    assert lo * ms <= t < hi * ms, "took %.1f ms, expected about %d ms: %s" % (t, ms, j(r))


def hostile_settles(timeout=5.0):
    """Wait until the hostile server has no connection open (raw_open counts the one asking)."""
    last = [None]

    def ok():
        last[0] = hostile().stats()
        return last[0]["open"] == 0 and last[0]["raw_open"] <= 1
    try:
        wait_until(ok, timeout=timeout, what="hostile open == 0")
    except AssertionError:
        raise AssertionError("hostile still has connections open: %s" % last[0])


def own_daemon_settles(d: Fetchd, baseline: int):
    assert_alive(d)
    d.fds_settle(baseline, FD_SLACK)
    hostile_settles()
    assert_alive(d)


def extra_len(boundary: int) -> int:
    """len for /extra?len=N whose response (head + body, without the junk) is exactly boundary bytes."""
    for n in range(boundary, 0, -1):
        head = len("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
        if head + n == boundary:
            return n
    raise ValueError(boundary)


# ---- good framings ------------------------------------------------------------------------------

@suite.test
def test_good_framings():
    d, _ = main_daemon()
    sizes = [0, 1, 1000, 5000, 100000, 1 << 20]
    urls = {"ok%d" % n: H("/ok?len=%d" % n) for n in sizes}
    urls.update({
        "chunked": H("/chunked?len=5000&size=100"),
        "chunked1": H("/chunked?len=70000&size=7000"),
        "chunked0": H("/chunked?len=0"),
        "eof": H("/eof?len=3000"),
        "eofbig": H("/eof?len=200000"),
        "interim": H("/interim?n=3"),
        "interim103": H("/interim?n=3&code=103"),
        "s204": H("/status?code=204"),
        "s304": H("/status?code=304"),
        "s304len": H("/status?code=304&len=100"),
        "s204len": H("/status?code=204&len=50"),
        "s500": H("/status?code=500&len=10"),
        "bighead": H("/huge-header?bytes=60000&len=100"),
        "drip": H("/drip?len=30"),
        "delay": H("/delay?ms=50&len=10"),
        "close": H("/close?len=100"),
        "notfound": H("/no-such-path"),
    })
    res = run(d, list(urls.values()), want_rc=0)
    r = {k: res[u] for k, u in urls.items()}
    for n in sizes:
        check_ok(r["ok%d" % n], 200, n, ctype="application/octet-stream")
    check_ok(r["chunked"], 200, 5000)
    assert r["chunked"]["body_sha256"] == r["ok5000"]["body_sha256"], j(r["chunked"])
    check_ok(r["chunked1"], 200, 70000)
    check_ok(r["chunked0"], 200, 0, EMPTY_SHA)
    check_ok(r["eof"], 200, 3000)
    check_ok(r["eofbig"], 200, 200000)
    final_sha = hashlib.sha256(b"final").hexdigest()
    check_ok(r["interim"], 200, 5, final_sha)
    check_ok(r["interim103"], 200, 5, final_sha)
    for k, code in (("s204", 204), ("s304", 304), ("s304len", 304), ("s204len", 204)):
        check_ok(r[k], code, 0, EMPTY_SHA)
    check_ok(r["s500"], 500, 10)
    check_ok(r["bighead"], 200, 100)
    check_ok(r["drip"], 200, 30)
    check_ok(r["delay"], 200, 10)
    check_ok(r["close"], 200, 100)
    check_ok(r["notfound"], 404, 10, hashlib.sha256(b"not found\n").hexdigest(), "text/plain")
    for x in r.values():
        assert x["ip"] == "127.0.0.1", j(x)
    assert_alive(d)


@suite.test
def test_extra_junk_does_not_poison_next_request():
    """per_host_connections=1: everything runs in order on as few connections as possible; junk
    after a response, early closes and bodiless statuses must not leak into the next response."""
    with Fetchd({"daemon": QUIET, "fetch": {"per_host_connections": 1, "keepalive_idle_ms": 200,
                                            "header_timeout_ms": 2000, "idle_timeout_ms": 2000,
                                            "timeout_ms": 5000}}) as d:
        base = d.fd_count()
        seq = [
            ("/extra?len=100", 100), ("/ok?len=200", 200), ("/ok?len=201", 201),
            ("/extra?len=100&junk=bytes", 100), ("/ok?len=300", 300), ("/ok?len=301", 301),
            ("/extra?len=5000", 5000), ("/chunked?len=400&size=50", 400),
            ("/status?code=304&len=100", 0), ("/ok?len=7", 7),
            ("/status?code=204&len=50", 0), ("/ok?len=8", 8),
            ("/ok?len=100&close=1", 100), ("/ok?len=9", 9),   # closes without saying so
            ("/close?len=50", 50), ("/ok?len=11", 11),
            ("/interim?n=2", 5), ("/ok?len=12", 12),
        ]
        urls = [H(p) for p, _ in seq]
        res = run(d, urls, want_rc=0)
        for (p, n), u in zip(seq, urls):
            if p.startswith("/interim"):
                check_ok(res[u], 200, n, hashlib.sha256(b"final").hexdigest())
            elif p.startswith("/status"):
                check_ok(res[u], int(p.split("code=")[1][:3]), 0, EMPTY_SHA)
            else:
                check_ok(res[u], 200, n)
            assert res[u]["attempts"] == 1, j(res[u])
        own_daemon_settles(d, base)


@suite.test
def test_extra_junk_at_recv_buffer_boundary():
    """The same, but each response ends exactly on a power-of-two boundary (the daemon's receive
    buffers are such sizes), so the junk arrives in a separate read after the response is complete
    and the connection already looks reusable. It must still not become the next response."""
    with Fetchd({"daemon": QUIET, "fetch": {"per_host_connections": 1, "keepalive_idle_ms": 200,
                                            "header_timeout_ms": 2000, "idle_timeout_ms": 2000,
                                            "timeout_ms": 5000}}) as d:
        base = d.fd_count()
        urls, want = [], {}
        for b in (4096, 8192, 16384, 32768, 65536):
            n = extra_len(b)
            for junk in ("resp", "bytes"):
                u = H("/extra?len=%d&junk=%s" % (n, junk))
                urls.append(u)
                want[u] = n
                for m in (200 + b % 7, 300 + len(urls)):
                    u = H("/ok?len=%d&after=%d%s" % (m, b, junk))
                    urls.append(u)
                    want[u] = m
        rc, results, err = submit(d.sock, urls, timeout=30)
        res = by_url(results)
        bad = []
        for u in urls:
            r = res.get(u)
            if (r is None or r["error"] is not None or r["status"] != 200 or
                    r["body_bytes"] != want[u] or r["body_sha256"] != pattern_sha256(want[u])):
                bad.append(j(r) if r else "no result for " + u)
        assert not bad and d.alive(), (
            "fetchd %s; %d of %d results wrong (rc %d, stderr %s); first: %s\nfetchd log tail:\n%s" % (
                "alive" if d.alive() else "DIED (exit %s)" % d.proc.poll(), len(bad), len(urls), rc,
                err.strip(), bad[:2], d.log_text()[-1500:]))
        assert rc == 0, err
        own_daemon_settles(d, base)


# ---- protocol errors -----------------------------------------------------------------------------

@suite.test
def test_protocol_errors():
    d, _ = main_daemon()
    # path -> status that arrived before the failure (None: the header never completed)
    cases = {
        "/cl-short": 200,
        "/cl-short?len=10&send=9": 200,
        "/cl-conflict": None,
        "/te-cl": None,
        "/garbage": None,
        "/garbage?len=4000&seed=7": None,
        "/huge-chunk?close=0": 200,
        "/huge-chunk?close=1": 200,
        "/rst-header": None,
        "/rst-body": 200,
        "/rst-body?len=400000": 200,
        "/interim?n=40": None,
        "/interim?n=40&code=103": None,
    }
    urls = {p: H(p) for p in cases}
    good = H("/ok?len=777")
    res = run(d, list(urls.values()) + [good], want_rc=5)
    for p, st in cases.items():
        r = check_err(res[urls[p]], "protocol", status=st)
        assert r["attempts"] == 1, j(r)
        if p.startswith("/cl-short"):
            want = 500 if p == "/cl-short" else 9
            assert r["body_bytes"] == want, "truncated body should count the bytes that came: " + j(r)
        if p.startswith("/rst-body"):
            total = 100000 if p == "/rst-body" else 400000
            assert 0 < r["body_bytes"] < total, j(r)
    check_ok(res[good], 200, 777)
    # A fetch on the same server right after all of that still works.
    res = run(d, [H("/ok?len=778")], want_rc=0)
    check_ok(res[H("/ok?len=778")], 200, 778)


# ---- too large -------------------------------------------------------------------------------------

@suite.test
def test_too_large_header_default_limit():
    d, _ = main_daemon()
    u1 = H("/huge-header?bytes=100000")
    u2 = H("/huge-header?bytes=1048576&x=2")
    u3 = H("/headers-forever?ms=0")
    u4 = H("/headers-forever?ms=1")
    res = run(d, [u1, u2, u3, u4], want_rc=5)
    for u in (u1, u2, u3, u4):
        r = check_err(res[u], "too_large")
        # an endless header is cut at max_header_bytes, before the 5 s header timeout
        assert r["timings_ms"]["total"] < 4500, "too slow for a size limit: " + j(r)
    assert_alive(d)


@suite.test
def test_too_large_body_and_small_header_limit():
    with Fetchd({"daemon": QUIET, "fetch": {"max_body_bytes": 1000, "max_header_bytes": "4K",
                                            "keepalive_idle_ms": 200, "header_timeout_ms": 5000,
                                            "idle_timeout_ms": 3000, "timeout_ms": 10000}}) as d:
        base = d.fd_count()
        big = {"declared": H("/ok?len=5000"), "streamed": H("/chunked?len=5000"),
               "eof": H("/eof?len=5000"), "eofbig": H("/eof?len=300000"),
               "chunkbig": H("/chunked?len=300000&size=4000")}
        fit = {1000: H("/ok?len=1000"), 999: H("/chunked?len=999&size=100"), 1: H("/eof?len=1")}
        hdr = {"forever": H("/headers-forever"), "huge": H("/huge-header?bytes=5000&len=10"),
               "fits": H("/huge-header?bytes=3000&len=10")}
        res = run(d, list(big.values()) + list(fit.values()) + list(hdr.values()), want_rc=5)
        r = check_err(res[big["declared"]], "too_large", status=200)
        assert r["body_bytes"] == 0, "rejected on Content-Length, before any body: " + j(r)
        for k in ("streamed", "eof", "eofbig", "chunkbig"):
            r = check_err(res[big[k]], "too_large", status=200)
            assert r["body_bytes"] > 1000, j(r)
        for n, u in fit.items():
            check_ok(res[u], 200, n)
        r = check_err(res[hdr["forever"]], "too_large")
        assert r["timings_ms"]["total"] < 3000, "a size limit, not the 5 s header timeout: " + j(r)
        check_err(res[hdr["huge"]], "too_large")
        check_ok(res[hdr["fits"]], 200, 10)
        own_daemon_settles(d, base)


# ---- timeouts ----------------------------------------------------------------------------------------

@suite.test
def test_timeout_connect():
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers = []
    try:
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)
        port = ls.getsockname()[1]
        for _ in range(2):  # fill the accept queue (never accepted): further SYNs are dropped
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(s)
        time.sleep(0.05)
        with Fetchd({"daemon": QUIET, "fetch": {"connect_timeout_ms": 300, "header_timeout_ms": 2000,
                                                "idle_timeout_ms": 2000, "timeout_ms": 5000,
                                                "keepalive_idle_ms": 200}}) as d:
            base = d.fd_count()
            u = "http://127.0.0.1:%d/never" % port
            res = run(d, [u], want_rc=5)
            r = check_err(res[u], "timeout", phase="connect")
            check_duration(r, 300)
            assert r["attempts"] == 1, j(r)
            d.fds_settle(base, FD_SLACK)
            assert_alive(d)
    finally:
        for s in fillers:
            s.close()
        ls.close()


@suite.test
def test_timeout_header():
    with Fetchd({"daemon": QUIET, "fetch": {"header_timeout_ms": 300, "idle_timeout_ms": 5000,
                                            "timeout_ms": 10000, "keepalive_idle_ms": 200}}) as d:
        base = d.fd_count()
        hang, slow = H("/hang"), H("/headers-forever?ms=50")
        res = run(d, [hang, slow], want_rc=5)
        r = check_err(res[hang], "timeout", phase="header")
        check_duration(r, 300)
        # header lines keep arriving: the header timeout still runs from the request
        r = check_err(res[slow], "timeout", phase="header")
        check_duration(r, 300)
        own_daemon_settles(d, base)


@suite.test
def test_timeout_idle():
    # /drip sends even its header one byte at a time: 400 ms gaps > idle 200 ms, header timeout far
    # away. The 5 ms drip takes ~300 ms in total (> idle), so it passes only if every byte re-arms it.
    with Fetchd({"daemon": QUIET, "fetch": {"idle_timeout_ms": 200, "header_timeout_ms": 5000,
                                            "timeout_ms": 10000, "keepalive_idle_ms": 200}}) as d:
        base = d.fd_count()
        slow, fine = H("/drip?len=50&ms=400"), H("/drip?len=20&ms=5")
        res = run(d, [slow, fine], want_rc=5)
        r = check_err(res[slow], "timeout", phase="idle")
        check_duration(r, 200)
        r = check_ok(res[fine], 200, 20)
        assert r["timings_ms"]["total"] > 200, "drip was faster than expected; test proves nothing: " + j(r)
        own_daemon_settles(d, base)


@suite.test
def test_timeout_total():
    with Fetchd({"daemon": QUIET, "fetch": {"timeout_ms": 500, "header_timeout_ms": 5000,
                                            "idle_timeout_ms": 5000, "keepalive_idle_ms": 200}}) as d:
        base = d.fd_count()
        u = H("/chunked-forever?ms=10")
        res = run(d, [u], want_rc=5)
        r = check_err(res[u], "timeout", status=200, phase="total")
        assert r["body_bytes"] > 0, j(r)
        check_duration(r, 500)
        own_daemon_settles(d, base)


# ---- connect errors, bad URLs, exit codes ----------------------------------------------------------

@suite.test
def test_connection_refused():
    d, _ = main_daemon()
    port = free_port()  # nothing listens there
    u = "http://127.0.0.1:%d/x" % port
    good = H("/ok?len=10")
    res = run(d, [u, good], want_rc=5)
    r = check_err(res[u], "connect", ip="127.0.0.1")
    assert r["attempts"] == 1, j(r)
    assert r["timings_ms"]["total"] < 1000, j(r)
    check_ok(res[good], 200, 10)


@suite.test
def test_bad_urls():
    d, _ = main_daemon()
    base = H("/ok?len=10&pad=")
    at_limit = base + "a" * (8192 - len(base))
    too_long = base + "b" * (9000 - len(base))
    bad = ["ftp://x", "http://", "http://a b/", "http://[::1", "http://host:99999/", "not a url"]
    good = [H("/ok?len=1"), H("/ok?len=2"), H("/ok?len=3"), at_limit]
    urls = [good[0], bad[0], bad[1], good[1], bad[2], bad[3], too_long, bad[4], bad[5], good[2],
            good[3]]
    rc, results, err = submit(d.sock, urls)
    assert_alive(d)
    assert len(results) == len(urls), "%d lines, %d results: %s" % (len(urls), len(results), results)
    assert rc == 5, "exit %d with bad URLs in the batch; stderr %s" % (rc, err)
    res = by_url(results)
    for u in bad:
        assert u in res, "no result for %r" % u
        r = check_err(res[u], "url", ip=None)
        assert r["body_bytes"] == 0, j(r)
    long_res = [r for r in results if r["url"] != at_limit and too_long.startswith(r["url"])
                and len(r["url"]) >= 256]
    assert len(long_res) == 1, "expected one result for the 9000-byte URL: %s" % [j(r) for r in long_res]
    r = check_err(long_res[0], "url", ip=None)
    assert "max_url_bytes" in r["error"]["message"], j(r)
    for u in good:
        check_ok(res[u], 200, 10 if u == at_limit else int(u.rsplit("=", 1)[1]))


@suite.test
def test_exit_codes():
    d, _ = main_daemon()
    all_good = [H("/ok?len=5"), H("/nope-404"), H("/status?code=500&len=3"), H("/status?code=204")]
    res = run(d, all_good, want_rc=0)  # every URL got an HTTP response, whatever its status
    assert res[H("/nope-404")]["status"] == 404, j(res[H("/nope-404")])
    assert res[H("/status?code=500&len=3")]["status"] == 500
    run(d, all_good + ["ftp://x"], want_rc=5)
    run(d, all_good + [H("/cl-conflict?again=1")], want_rc=5)
    run(d, [H("/nope-404?only=1")], want_rc=0)


# ---- isolation ---------------------------------------------------------------------------------------

@suite.test(timeout=60)
def test_broken_server_does_not_disturb_others():
    d, _ = main_daemon()
    refused = "http://127.0.0.1:%d/" % free_port()
    failures = {  # URL -> (class, status)
        H("/cl-short?len=1000&send=500&m=1"): ("protocol", 200),
        H("/cl-short?len=5000&send=1&m=1"): ("protocol", 200),
        H("/cl-conflict?m=1"): ("protocol", None),
        H("/te-cl?m=1"): ("protocol", None),
        H("/garbage?seed=1&m=1"): ("protocol", None),
        H("/garbage?seed=2&len=4000&m=1"): ("protocol", None),
        H("/huge-chunk?close=0&m=1"): ("protocol", 200),
        H("/huge-chunk?close=1&m=1"): ("protocol", 200),
        H("/rst-header?m=1"): ("protocol", None),
        H("/rst-header?m=2"): ("protocol", None),
        H("/rst-body?len=100000&m=1"): ("protocol", 200),
        H("/rst-body?len=300000&m=1"): ("protocol", 200),
        H("/interim?n=40&m=1"): ("protocol", None),
        H("/interim?n=40&code=103&m=1"): ("protocol", None),
        H("/huge-header?bytes=100000&m=1"): ("too_large", None),
        H("/huge-header?bytes=1048576&m=1"): ("too_large", None),
        H("/headers-forever?ms=0&m=1"): ("too_large", None),
        H("/headers-forever?ms=0&m=2"): ("too_large", None),
        H("/cl-short?len=10&send=9&m=1"): ("protocol", 200),
        refused: ("connect", None),
    }
    assert len(failures) == 20
    with Origin() as o:
        paths = ["/1k.html", "/16k.html", "/1m.bin", "/empty.txt"]
        goods = {o.url("%s?i=%d" % (paths[i % 4], i)): paths[i % 4] for i in range(200)}
        urls = list(goods) + list(failures)
        random.Random(7).shuffle(urls)
        res = run(d, urls, want_rc=5, timeout=60)
        wrong = []
        for u, p in goods.items():
            r = res[u]
            if (r["error"] is not None or r["status"] != 200 or r["body_sha256"] != o.sha256[p] or
                    r["body_bytes"] != len(o.files[p])):
                wrong.append(j(r))
        assert not wrong, "%d good fetches disturbed; first: %s" % (len(wrong), wrong[:3])
        for u, (cls, st) in failures.items():
            check_err(res[u], cls, status=st)
        assert_alive(d)
        if o.has_stub_status:  # fetchd's idle connections to nginx close after keepalive_idle_ms
            wait_until(lambda: o.active_connections() == 0, timeout=5,
                       what="nginx connections closed by fetchd")


# ---- after all of that ---------------------------------------------------------------------------

@suite.test
def test_no_leaks_after_everything():
    d, base = main_daemon()
    # one more round trip through every kind of failure the main daemon has seen
    res = run(d, [H("/ok?len=42"), H("/garbage?final=1"), H("/huge-header?bytes=100000&final=1")],
              want_rc=5)
    check_ok(res[H("/ok?len=42")], 200, 42)
    assert_alive(d)
    # Memory: the same hostile mix, over and over, must not make the daemon grow. Under ASan the
    # allocator's quarantine holds freed memory on purpose, so there LeakSanitizer is the check.
    mix = ["/cl-short", "/cl-conflict", "/te-cl", "/garbage", "/huge-chunk?close=1", "/rst-header",
           "/rst-body", "/interim?n=40", "/huge-header?bytes=1048576",
           "/extra?len=100", "/ok?len=5000", "/chunked?len=5000&size=100"]
    def one_round(k):
        urls = [H("%s%sround=%d&i=%d" % (p, "&" if "?" in p else "?", k, i)) for p in mix for i in range(8)]
        res = run(d, urls, want_rc=5)
        assert sum(1 for r in res.values() if r.get("error")) == 8 * (len(mix) - 3), res
    for k in range(3):
        one_round(k)
    rss0 = d.rss_kb()
    for k in range(3, 23):
        one_round(k)
    rss1 = d.rss_kb()
    print("  RSS after 3 hostile rounds %d KiB, after 20 more %d KiB (%d x %d fetches each)" % (
        rss0, rss1, len(mix), 8))
    if os.environ.get("FETCHD_SAN") != "asan":
        assert rss1 - rss0 < 2048, "fetchd grew from %d to %d KiB over 20 hostile rounds" % (rss0, rss1)
    d.fds_settle(base, FD_SLACK)
    hostile_settles()
    assert_alive(d)
    rc = d.stop()
    assert rc == 0, "fetchd exit %s on SIGTERM; log tail:\n%s" % (rc, d.log_text()[-2000:])


if __name__ == "__main__":
    suite.main()

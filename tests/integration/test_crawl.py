#!/usr/bin/env python3
"""test_crawl.py - what crawling jobs expect from fetchd: request options (batch and per URL), redirects,
retries with backoff and Retry-After, and per-host politeness. Against the scripted server
(tests/lib/hostile.py, whose request log gives server-side timestamps and the headers it received)
and a real nginx origin with return/rewrite redirects.

Run from the repository root:  python3 tests/integration/test_crawl.py [NAME-FILTER...]
"""

import email.utils
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (Fetchd, Hostile, Origin, Suite, by_url, fetchctl, free_port, parse_jsonl,  # noqa: E402
                     pattern_sha256, submit)

suite = Suite(__file__, timeout=60)
QUIET = {"log_level": "warn"}
FETCH = {"connect_timeout_ms": 2000, "header_timeout_ms": 5000, "idle_timeout_ms": 3000, "timeout_ms": 10000,
         "keepalive_idle_ms": 500}
RETRY = {"times": 2, "base_ms": 100, "max_ms": 2000}
_state = {}


def hostile() -> Hostile:
    if "hostile" not in _state:
        _state["hostile"] = Hostile()
    return _state["hostile"]


def H(path: str, host: str = "127.0.0.1") -> str:
    return hostile().url(path, host)


def daemon() -> Fetchd:
    """The daemon most tests share: retries on (fast backoff), no politeness delay."""
    if "main" not in _state:
        _state["main"] = Fetchd({"daemon": QUIET, "fetch": FETCH, "retry": RETRY})
    return _state["main"]


def run(d, lines, want_rc=None, extra_args=(), n=None):
    """Submit lines (URLs and indented option lines); {url: result}."""
    rc, results, err = submit(d.sock, lines, timeout=50, extra_args=extra_args)
    urls = [x for x in lines if not x[:1].isspace()]
    assert len(results) == (n if n is not None else len(urls)), "%d results for %d URLs (rc %d): %s" % (
        len(results), len(urls), rc, err)
    if want_rc is not None:
        assert rc == want_rc, "fetchctl exit %d, wanted %d: %s" % (rc, want_rc, err)
    return by_url(results)


def err_class(r):
    return r["error"]["class"] if r["error"] else None


def logged(prefix: str) -> list:
    return hostile().log(prefix)


def headers_of(entry) -> dict:
    return {k.lower(): v for k, v in entry["headers"]}


# ---- request options ---------------------------------------------------------------------------------

@suite.test
def default_request_headers():
    d = daemon()
    res = run(d, [H("/echo-request?id=def")], want_rc=0)
    assert res[H("/echo-request?id=def")]["status"] == 200
    (e,) = logged("/echo-request?id=def")
    h = headers_of(e)
    assert e["method"] == "GET", e
    assert h["user-agent"] == "fetchd/0.1.0" and h["accept"] == "*/*", h
    assert h["accept-encoding"] == "gzip, deflate", "decode = yes asks for gzip and deflate: %s" % h
    assert h["connection"] == "keep-alive" and h["host"] == "127.0.0.1:%d" % hostile().port, h


@suite.test
def batch_and_url_options_reach_the_server():
    d = daemon()
    lines = [H("/echo-request?id=o1"),
             H("/echo-request?id=o2"), "  method=HEAD",
             H("/echo-request?id=o3"), "  header=X-Batch: from-url", "  user_agent=url-agent/2",
             "\theader=X-Extra:  spaced value ",
             H("/echo-request?id=o4"), "  header=Accept-Encoding:", "  header=Accept: text/html"]
    res = run(d, lines, want_rc=0, extra_args=["-H", "X-Batch: yes", "-A", "batch-agent/1", "-H", "Cookie: a=b"])
    h1 = headers_of(logged("/echo-request?id=o1")[0])
    assert h1["x-batch"] == "yes" and h1["user-agent"] == "batch-agent/1" and h1["cookie"] == "a=b", h1
    e2 = logged("/echo-request?id=o2")[0]
    assert e2["method"] == "HEAD", e2
    r2 = res[H("/echo-request?id=o2")]
    assert r2["status"] == 200 and r2["body_bytes"] == 0 and r2["error"] is None, r2
    h3 = headers_of(logged("/echo-request?id=o3")[0])
    assert h3["x-batch"] == "from-url" and h3["user-agent"] == "url-agent/2", h3
    assert h3["x-extra"] == "spaced value" and h3["cookie"] == "a=b", h3
    e4 = logged("/echo-request?id=o4")[0]
    h4 = headers_of(e4)
    assert "accept-encoding" not in h4 and h4["accept"] == "text/html", e4
    assert sum(1 for k, _ in e4["headers"] if k.lower() == "accept") == 1, e4


@suite.test
def bad_options_fail_one_url_or_refuse_the_batch():
    d = daemon()
    lines = [H("/ok?len=1&b=1"), "  timeout_ms=999999999",
             H("/ok?len=1&b=2"), "  colour=blue",
             H("/ok?len=1&b=3"), "  header=Host: evil",
             H("/ok?len=1&b=4"), "  method=POST",
             H("/ok?len=1&b=5")]
    res = run(d, lines, want_rc=5)
    msgs = {u: (r["error"] or {}).get("message", "") for u, r in res.items()}
    assert "above the daemon's 10000" in msgs[H("/ok?len=1&b=1")], msgs
    assert "unknown option 'colour'" in msgs[H("/ok?len=1&b=2")], msgs
    assert "fetchd's to send" in msgs[H("/ok?len=1&b=3")], msgs
    assert "GET or HEAD" in msgs[H("/ok?len=1&b=4")], msgs
    for i in range(1, 5):
        r = res[H("/ok?len=1&b=%d" % i)]
        assert err_class(r) == "url" and r["url"] == H("/ok?len=1&b=%d" % i), r
    assert res[H("/ok?len=1&b=5")]["status"] == 200
    assert not logged("/ok?len=1&b=1") and not logged("/ok?len=1&b=4"), "a refused URL was fetched"
    # a bad batch option refuses the whole batch, with the reason
    rc, out, err = fetchctl(d.sock, ["-o", "retries=9", "submit", "-"], input_text=H("/ok?len=1") + "\n")
    assert rc == 4 and "bad batch option: retries=9 is above the daemon's 2" in err, (rc, err)
    rc, out, err = fetchctl(d.sock, ["submit", "-"], input_text="  method=HEAD\n" + H("/ok") + "\n")
    assert rc == 2 and "option 'method=HEAD' before any URL" in err, (rc, err)
    assert d.alive()


@suite.test
def per_url_limits_and_timeouts_override_the_daemons():
    d = daemon()
    t0 = time.monotonic()
    lines = [H("/hang?t=1"), "  timeout_ms=300", "  retries=0",
             H("/ok?len=5000&t=2"), "  max_body_bytes=1000",
             H("/ok?len=5000&t=3"), "  max_body_bytes=5000",
             H("/delay?ms=600&len=10&t=4"), "  header_timeout_ms=200", "  retries=0"]
    res = run(d, lines)
    took = time.monotonic() - t0
    r = res[H("/hang?t=1")]
    assert err_class(r) == "timeout" and r["error"]["phase"] == "total" and "300 ms" in r["error"]["message"], r
    assert err_class(res[H("/ok?len=5000&t=2")]) == "too_large", res[H("/ok?len=5000&t=2")]
    assert res[H("/ok?len=5000&t=3")]["body_sha256"] == pattern_sha256(5000)
    r = res[H("/delay?ms=600&len=10&t=4")]
    assert err_class(r) == "timeout" and r["error"]["phase"] == "header", r
    assert took < 3, "per-URL timeouts were not applied: %.1f s" % took


# ---- redirects -------------------------------------------------------------------------------------

@suite.test
def every_redirect_code_is_followed_to_the_end():
    d = daemon()
    urls = {}
    for i, code in enumerate((301, 302, 303, 307, 308)):
        target = "/ok%%3Flen%%3D%d" % (100 + i)
        urls[code] = H("/redirect?code=%d&to=%s" % (code, target))
    res = run(d, list(urls.values()), want_rc=0)
    for i, (code, u) in enumerate(urls.items()):
        r = res[u]
        n = 100 + i
        assert r["status"] == 200 and r["error"] is None, r
        assert r["final_url"] == H("/ok?len=%d" % n), r
        assert r["redirects"] == [{"url": u, "status": code}], r
        assert r["body_bytes"] == n and r["body_sha256"] == pattern_sha256(n), r


@suite.test
def location_forms_resolve_like_a_browser():
    d = daemon()
    port = hostile().port
    cases = {
        "ok%3Flen%3D11": H("/ok?len=11"),                          # relative path
        "/ok%3Flen%3D12": H("/ok?len=12"),                         # absolute path
        "//127.0.0.1:%d/ok%%3Flen%%3D13" % port: H("/ok?len=13"),  # scheme-relative
        "http://localhost:%d/ok%%3Flen%%3D14" % port: H("/ok?len=14", "localhost"),  # another host name
        "../ok%3Flen%3D15": H("/ok?len=15"),                       # dot segments
        "/ok%3Flen%3D16%26x%3Da%20b": H("/ok?len=16&x=a%20b"),     # a space is percent-encoded
        "%3Flen%3D17": H("/redirect?len=17"),                      # query only
    }
    urls = {H("/redirect?code=302&to=%s" % to): want for to, want in cases.items()}
    res = run(d, list(urls), n=len(urls))
    for u, want in urls.items():
        r = res[u]
        assert r["final_url"] == want and r["redirects"][0] == {"url": u, "status": 302}, (u, r)
        if "/redirect?len=17" in want:
            # /redirect without `to` answers with an empty Location: itself, a loop
            assert err_class(r) == "redirects" and "loop" in r["error"]["message"], r
            continue
        assert r["status"] == 200 and r["error"] is None and len(r["redirects"]) == 1, r


@suite.test
def loops_caps_and_bad_hops_stop_with_class_redirects_or_blocked():
    d = daemon()
    loop = H("/loop?id=L&step=0")
    long_chain = H("/chain?n=12&id=c12")
    capped = H("/chain?n=3&id=c3")
    ok_chain = H("/chain?n=2&id=c2&abs=1")
    ftp = H("/redirect?code=301&to=ftp://example.com/")
    blocked = H("/redirect?code=302&to=http://10.1.2.3/")
    empty = H("/redirect?code=302")
    lines = [loop, long_chain, capped, "  max_redirects=2", ok_chain, "  max_redirects=2", ftp, blocked, empty]
    res = run(d, lines)
    r = res[loop]
    assert err_class(r) == "redirects" and "loop" in r["error"]["message"] and r["status"] == 302, r
    # the hops followed; the answer that would close the loop is the final one
    assert r["redirects"] == [{"url": loop, "status": 302}] and r["final_url"] == H("/loop?id=L&step=1"), r
    r = res[long_chain]
    assert err_class(r) == "redirects" and "more than 10 redirects" in r["error"]["message"], r
    assert len(r["redirects"]) == 10, r
    r = res[capped]
    assert err_class(r) == "redirects" and "more than 2" in r["error"]["message"], r
    r = res[ok_chain]
    assert r["status"] == 200 and r["error"] is None and len(r["redirects"]) == 2, r
    assert r["final_url"] == H("/chain?n=0&code=302&id=c2&abs=1"), r
    r = res[ftp]
    assert err_class(r) == "redirects" and "unsupported scheme" in r["error"]["message"], r
    assert r["status"] == 301 and r["redirects"] == [], r
    r = res[blocked]
    assert err_class(r) == "blocked" and r["final_url"] == "http://10.1.2.3/", r
    assert r["redirects"] == [{"url": blocked, "status": 302}], r
    r = res[empty]  # an empty Location is the URL itself: a loop, known before asking again
    assert err_class(r) == "redirects" and "loop" in r["error"]["message"] and r["redirects"] == [], r
    assert len([e for e in logged("/redirect?code=302") if e["target"] == "/redirect?code=302"]) == 1


@suite.test
def following_can_be_turned_off_per_url_and_per_batch():
    d = daemon()
    a, b = H("/chain?n=1&id=off1"), H("/chain?n=1&id=off2")
    res = run(d, [a, "  follow=no", b])
    assert res[a]["status"] == 302 and res[a]["redirects"] == [] and res[a]["final_url"] == a, res[a]
    assert res[b]["status"] == 200 and len(res[b]["redirects"]) == 1, res[b]
    c = H("/chain?n=1&id=off3")
    res = run(d, [c], extra_args=["--no-follow"])
    assert res[c]["status"] == 302 and res[c]["error"] is None, res[c]


@suite.test
def credentials_stay_behind_on_a_cross_host_redirect():
    d = daemon()
    port = hostile().port
    same = H("/redirect?code=302&to=/echo-request%3Fid%3Dsame")
    other = H("/redirect?code=302&to=http://localhost:%d/echo-request%%3Fid%%3Dother" % port)
    run(d, [same, other], want_rc=0,
        extra_args=["-H", "Authorization: Bearer secret", "-H", "Cookie: s=1", "-H", "X-Keep: 1"])
    hs = headers_of(logged("/echo-request?id=same")[0])
    ho = headers_of(logged("/echo-request?id=other")[0])
    assert hs["authorization"] == "Bearer secret" and hs["cookie"] == "s=1", hs
    assert "authorization" not in ho and "cookie" not in ho and ho["x-keep"] == "1", ho
    assert ho["host"] == "localhost:%d" % port, ho


@suite.test
def nginx_return_and_rewrite_redirects():
    conf = ("location = /r301 { return 301 /1k.html; }\n"
            "location = /r302abs { return 302 http://127.0.0.1:$server_port/16k.html; }\n"
            "location = /r307 { return 307 /old/empty.txt; }\n"
            "location /old/ { rewrite ^/old/(.*)$ /$1 permanent; }\n")
    with Origin(extra_conf=conf) as o:
        d = daemon()
        urls = [o.url("/r301"), o.url("/r302abs"), o.url("/r307"), o.url("/old/1m.bin")]
        res = run(d, urls, want_rc=0)
        want = {o.url("/r301"): ("/1k.html", [301]), o.url("/r302abs"): ("/16k.html", [302]),
                o.url("/r307"): ("/empty.txt", [307, 301]), o.url("/old/1m.bin"): ("/1m.bin", [301])}
        for u, (path, codes) in want.items():
            r = res[u]
            assert r["status"] == 200 and r["final_url"] == o.url(path), r
            assert [h["status"] for h in r["redirects"]] == codes, r
            assert r["body_sha256"] == o.sha256[path], r


@suite.test
def a_redirect_to_https_crosses_schemes():
    d = daemon()
    port = free_port()  # nothing listens: the https hop fails to connect, after the hop was taken
    u = H("/redirect?code=301&to=https://127.0.0.1:%d/x" % port)
    res = run(d, [u, "  retries=0"])
    r = res[u]
    assert err_class(r) == "connect" and r["final_url"] == "https://127.0.0.1:%d/x" % port, r
    assert r["redirects"] == [{"url": u, "status": 301}], r


# ---- retries ------------------------------------------------------------------------------------------

def gaps(prefix):
    t = [e["t"] for e in logged(prefix)]
    return [b - a for a, b in zip(t, t[1:])]


@suite.test
def retryable_statuses_are_retried_with_growing_backoff():
    d = daemon()
    urls = {code: H("/flaky?key=s%d&fail=2&code=%d" % (code, code)) for code in (408, 429, 500, 502, 503, 504)}
    never = H("/flaky?key=never&fail=5&code=503")
    not_retried = {code: H("/flaky?key=n%d&fail=1&code=%d" % (code, code)) for code in (404, 501)}
    res = run(d, list(urls.values()) + [never] + list(not_retried.values()))
    for code, u in urls.items():
        r = res[u]
        assert r["status"] == 200 and r["attempts"] == 3 and r["error"] is None, r
        g = gaps("/flaky?key=s%d&" % code)
        assert len(g) == 2, g
        # base 100 ms, doubled, each 0.5x..1.5x
        assert 0.045 <= g[0] <= 0.4 and 0.095 <= g[1] <= 0.7, (code, g)
    r = res[never]
    assert r["status"] == 503 and r["attempts"] == 3 and r["error"] is None, "the last answer stands: %s" % r
    for code, u in not_retried.items():
        assert res[u]["status"] == code and res[u]["attempts"] == 1, res[u]


@suite.test
def retry_after_seconds_and_dates_are_honoured_up_to_max_ms():
    d = daemon()
    date = email.utils.formatdate(time.time() + 2.5, usegmt=True).replace(" ", "%20")
    secs = H("/flaky?key=ra1&fail=1&code=503&retry_after=1")
    when = H("/flaky?key=ra2&fail=1&code=429&retry_after=%s" % date.replace(",", "%2C"))
    capped = H("/flaky?key=ra3&fail=1&code=503&retry_after=3600")
    res = run(d, [secs, when, capped], want_rc=0)
    for u in (secs, when, capped):
        assert res[u]["status"] == 200 and res[u]["attempts"] == 2, res[u]
    g1, g2, g3 = gaps("/flaky?key=ra1&")[0], gaps("/flaky?key=ra2&")[0], gaps("/flaky?key=ra3&")[0]
    assert 0.95 <= g1 <= 1.6, g1
    assert 1.0 <= g2 <= 3.2, g2           # a date 2.5 s ahead (whole seconds on the wire)
    assert 1.9 <= g3 <= 2.6, g3           # capped at max_ms = 2000


@suite.test
def resets_empty_replies_refusals_and_timeouts_are_retried():
    d = daemon()
    reset = H("/flaky?key=rst&fail=1&code=reset")
    close = H("/flaky?key=cls&fail=2&code=close")
    hang = H("/flaky?key=hng&fail=1&code=hang")
    refused = "http://127.0.0.1:%d/nothing" % free_port()
    res = run(d, [reset, close, hang, "  timeout_ms=300", refused])
    # A reset or close on a reused keep-alive connection is first taken for a stale connection (tried
    # again at once, not counted as an attempt, as curl does); the server saw every request either way.
    assert res[reset]["status"] == 200 and len(logged("/flaky?key=rst&")) == 2, res[reset]
    assert res[close]["status"] == 200 and len(logged("/flaky?key=cls&")) == 3, res[close]
    assert res[close]["attempts"] >= 2, res[close]
    assert res[hang]["status"] == 200 and res[hang]["attempts"] == 2, res[hang]
    r = res[refused]
    assert err_class(r) == "connect" and r["attempts"] == 3, r
    # per-URL retries=0: one attempt
    u = H("/flaky?key=once&fail=1&code=502")
    res = run(d, [u, "  retries=0"])
    assert res[u]["status"] == 502 and res[u]["attempts"] == 1, res[u]
    # not retried: a protocol error that is not a reset, and a body too large
    g, big = H("/garbage?r=1"), H("/ok?len=5000&r=2")
    res = run(d, [g, big, "  max_body_bytes=10"])
    assert res[g]["attempts"] == 1 and err_class(res[g]) == "protocol", res[g]
    assert res[big]["attempts"] == 1 and err_class(res[big]) == "too_large", res[big]


@suite.test
def a_url_backing_off_holds_no_slot_and_others_finish_first():
    with Fetchd({"daemon": QUIET, "fetch": dict(FETCH, max_inflight=2), "retry": RETRY}) as d:
        slow = H("/flaky?key=bo&fail=1&code=503&retry_after=2")
        oks = [H("/delay?ms=50&len=1&k=%d" % i) for i in range(20)]
        t0 = time.monotonic()
        rc, results, err = submit(d.sock, [slow] + oks, timeout=30)
        assert rc == 0 and len(results) == 21, (rc, err)
        assert results[-1]["url"] == slow, "the backing-off URL should finish last: %s" % results[-1]
        # 20 x 50 ms through 2 slots is about 0.5 s: they did not wait behind the 2 s backoff
        last_ok = max(i for i, r in enumerate(results) if r["url"] != slow)
        assert last_ok == 19 and time.monotonic() - t0 >= 1.9, results[-1]


@suite.test
def a_client_gone_while_a_url_backs_off_leaves_nothing_behind():
    with Fetchd({"daemon": QUIET, "fetch": FETCH, "retry": RETRY}) as d:
        base = d.fd_count()
        u = H("/flaky?key=gone&fail=1&code=503&retry_after=2")
        rc, out, err = fetchctl(d.sock, ["submit", "-"], input_text=u + "\n", timeout=0.8) \
            if False else (None, None, None)
        s = socket.socket(socket.AF_UNIX)
        s.connect(d.sock)
        import struct
        hello = b'{"protocol":1}'
        s.sendall(struct.pack(">IB", len(hello), 1) + hello + struct.pack(">IB", len(u) + 1, 2) +
                  (u + "\n").encode() + struct.pack(">IB", 0, 3))
        time.sleep(0.5)  # the first answer (503) came; the URL now backs off for 2 s
        s.close()
        time.sleep(0.3)
        res = run(d, [H("/ok?len=3&after=gone")], want_rc=0)
        assert res[H("/ok?len=3&after=gone")]["status"] == 200
        t_end = time.monotonic() + 5
        while d.fd_count() > base + 1 and time.monotonic() < t_end:
            time.sleep(0.05)
        assert d.fd_count() <= base + 1, "descriptors left: %d > %d" % (d.fd_count(), base)
        time.sleep(2.0)
        assert len(logged("/flaky?key=gone&")) == 1, "a cancelled URL was retried anyway"
        assert d.alive()


# ---- content decoding ----------------------------------------------------------------------------

@suite.test
def gzip_and_deflate_bodies_are_decoded_as_they_stream():
    import hashlib
    import hostile as hostile_mod
    d = daemon()
    cases = {H("/gzip?len=70000"): ("gzip", 70000), H("/gzip?len=300000&chunked=1&size=1000"): ("gzip", 300000),
             H("/deflate?len=5000"): ("deflate", 5000), H("/deflate?len=90000&raw=1"): ("deflate", 90000),
             H("/deflate?len=1&raw=1&chunked=1&size=1"): ("deflate", 1), H("/gzip?len=0"): ("gzip", 0)}
    res = run(d, list(cases), want_rc=0)
    for u, (enc, n) in cases.items():
        r = res[u]
        assert r["content_encoding"] == enc and r["decoded"] is True, r
        assert r["body_bytes"] == n and r["body_sha256"] == pattern_sha256(n), r
        if n >= 5000:
            assert r["wire_bytes"] < n, "the wire carried the compressed body: %s" % r
    # decode=no: asks for identity; a server that compresses anyway gets its body passed on as it came
    u = H("/gzip?len=70000&raw=body")
    res = run(d, [u, "  decode=no"], want_rc=0)
    raw = hostile_mod.compress_pattern(70000, "gzip")
    r = res[u]
    assert r["decoded"] is False and r["content_encoding"] == "gzip", r
    assert r["body_bytes"] == len(raw) and r["body_sha256"] == hashlib.sha256(raw).hexdigest(), r
    assert headers_of(logged("/gzip?len=70000&raw=body")[0])["accept-encoding"] == "identity"


@suite.test
def a_gzip_bomb_stops_at_max_body_bytes_with_bounded_memory():
    with Fetchd({"daemon": QUIET, "fetch": dict(FETCH, max_body_bytes="10M")}) as d:
        rss0 = d.rss_kb()
        t0 = time.monotonic()
        bomb = H("/gzip-bomb?mb=4096")
        res = run(d, [bomb, H("/gzip?len=1000&bomb=side")])
        r = res[bomb]
        assert err_class(r) == "too_large" and "decoded body exceeds" in r["error"]["message"], r
        assert 10 << 20 < r["body_bytes"] <= (10 << 20) + 16384, r
        assert r["wire_bytes"] < 1 << 20, "stopped early, after about 10 KiB of gzip per 10 MiB: %s" % r
        assert time.monotonic() - t0 < 5
        assert res[H("/gzip?len=1000&bomb=side")]["body_sha256"] == pattern_sha256(1000)
        grew = d.rss_kb() - rss0
        assert grew < 8 * 1024, "fetchd grew %d KiB decoding a bomb" % grew


@suite.test
def corrupt_and_truncated_compressed_bodies_are_protocol_errors():
    d = daemon()
    bad, cut = H("/gzip-corrupt?len=50000"), H("/gzip-truncated?len=50000")
    res = run(d, [bad, cut], want_rc=5)
    assert err_class(res[bad]) == "protocol" and res[bad]["status"] == 200, res[bad]
    assert err_class(res[cut]) == "protocol" and "truncated" in res[cut]["error"]["message"], res[cut]
    assert res[bad]["attempts"] == 1 and res[cut]["attempts"] == 1


# ---- politeness ----------------------------------------------------------------------------------

@suite.test
def delay_ms_spaces_requests_to_one_host_but_not_across_hosts():
    conf = {"daemon": QUIET, "fetch": dict(FETCH, per_host_connections=4), "politeness": {"delay_ms": 200}}
    with Fetchd(conf) as d:
        a = [H("/ok?len=1&pa=%d" % i) for i in range(5)]
        b = [H("/ok?len=1&pb=%d" % i, "localhost") for i in range(5)]
        t0 = time.monotonic()
        res = run(d, a + b, want_rc=0)
        took = time.monotonic() - t0
        for prefix in ("/ok?len=1&pa=", "/ok?len=1&pb="):
            g = gaps(prefix)
            assert len(g) == 4 and min(g) >= 0.19, (prefix, g)
        # two hosts side by side: about 4 x 200 ms, not 9 x 200 ms
        assert took < 1.5, "hosts waited for each other: %.2f s" % took
        # time spent waiting for the host's turn is not a timeout
        for r in res.values():
            assert r["timings_ms"]["total"] < 150, r


@suite.test
def requests_per_s_and_random_delay():
    conf = {"daemon": QUIET, "fetch": FETCH, "politeness": {"requests_per_s": 10}}
    with Fetchd(conf) as d:
        run(d, [H("/ok?len=1&rps=%d" % i) for i in range(5)], want_rc=0)
        g = gaps("/ok?len=1&rps=")
        assert len(g) == 4 and min(g) >= 0.095, g
    conf = {"daemon": QUIET, "fetch": FETCH, "politeness": {"delay_ms": 200, "random_delay": "yes"}}
    with Fetchd(conf) as d:
        run(d, [H("/ok?len=1&rnd=%d" % i) for i in range(8)], want_rc=0)
        g = gaps("/ok?len=1&rnd=")
        assert len(g) == 7 and min(g) >= 0.095 and max(g) <= 0.45, g
        assert max(g) - min(g) > 0.02, "random_delay gave the same spacing every time: %s" % g


@suite.test
def a_long_politeness_queue_does_not_time_out():
    conf = {"daemon": QUIET, "fetch": dict(FETCH, timeout_ms=400, connect_timeout_ms=400),
            "politeness": {"delay_ms": 300}}
    with Fetchd(conf) as d:
        urls = [H("/ok?len=2&q=%d" % i) for i in range(5)]
        res = run(d, urls, want_rc=0)  # the last one waits 1.2 s for its turn: not a timeout
        assert all(r["status"] == 200 for r in res.values()), res


# ---- robots.txt ---------------------------------------------------------------------------------

ROBOTS = {"obey_robots": "yes"}


def robots_daemon(**politeness):
    return Fetchd({"daemon": QUIET, "fetch": dict(FETCH, user_agent="FetchBot/2.0 (+https://example)"),
                   "politeness": dict(ROBOTS, **politeness)})


@suite.test
def robots_rules_from_rfc_9309_are_obeyed_with_one_fetch_per_host():
    h = hostile()
    # RFC 9309 5.1's example, with our product token in one of the groups
    h.set_robots(200, "User-Agent: *\nDisallow: *.gif$\nDisallow: /example/\nAllow: /publications/\n\n"
                      "User-Agent: foobot\nDisallow:/\nAllow:/example/page.html\nAllow:/example/allowed.gif\n\n"
                      "User-Agent: FetchBot\nUser-Agent: BazBot\nDisallow: /example/page.html\n"
                      "Disallow: /*.bin$\nAllow: /ok\n")
    try:
        with robots_daemon() as d:
            paths = {"/ok?len=5&r=1": True, "/example/page.html": False, "/example/other": True,
                     "/x/file.bin": False, "/x/file.bin?q": True, "/robots.txt": True, "/publications/a.gif": True}
            urls = {H(p): allowed for p, allowed in paths.items()}
            res = run(d, list(urls))
            for u, allowed in urls.items():
                r = res[u]
                if allowed:
                    assert err_class(r) != "robots", r
                else:
                    assert err_class(r) == "robots" and r["status"] is None and r["attempts"] == 1, r
                    assert "disallowed by robots.txt" in r["error"]["message"], r
                    path = u[len(H("")):]
                    assert not [e for e in logged(path) if e["target"] == path], "requested anyway: %s" % u
            assert len(logged("/robots.txt")) == 2, "robots.txt once for the rules, once as a URL"
            # cached: a second batch does not fetch robots.txt again
            run(d, [H("/ok?len=5&r=2")], want_rc=0)
            assert len(logged("/robots.txt")) == 2
            # another host (localhost:port) has its own robots.txt
            run(d, [H("/ok?len=5&r=3", "localhost")], want_rc=0)
            assert len(logged("/robots.txt")) == 3
    finally:
        h.set_robots(404, "")


@suite.test
def robots_status_codes_map_to_allow_or_disallow_all():
    h = hostile()
    try:
        for status, allowed in ((404, True), (403, True), (500, False), (503, False)):
            h.set_robots(status, "User-agent: *\nDisallow: /\n")
            with robots_daemon() as d:
                u = H("/ok?len=1&st=%d" % status)
                r = run(d, [u])[u]
                if allowed:
                    assert r["status"] == 200, (status, r)
                else:
                    assert err_class(r) == "robots" and "unreachable (status %d)" % status in r["error"]["message"], r
    finally:
        h.set_robots(404, "")


@suite.test
def crawl_delay_raises_the_hosts_spacing():
    h = hostile()
    h.set_robots(200, "User-agent: fetchbot\nCrawl-delay: 0.3\nAllow: /\n")
    try:
        with robots_daemon(delay_ms=50) as d:
            run(d, [H("/ok?len=1&cd=%d" % i) for i in range(4)], want_rc=0)
            g = gaps("/ok?len=1&cd=")
            assert len(g) == 3 and min(g) >= 0.29, g
    finally:
        h.set_robots(404, "")


@suite.test
def robots_txt_is_fetched_through_redirects_and_a_slow_one_holds_the_queue():
    conf = "location = /robots.txt { return 301 /real-robots.txt; }\n"
    files = {"/real-robots.txt": b"User-agent: *\nDisallow: /1k.html\nCrawl-delay: abc\n"}
    with Origin(extra_files=files, extra_conf=conf) as o, robots_daemon() as d:
        res = run(d, [o.url("/1k.html"), o.url("/16k.html")])
        assert err_class(res[o.url("/1k.html")]) == "robots", res[o.url("/1k.html")]
        assert res[o.url("/16k.html")]["body_sha256"] == o.sha256["/16k.html"]
    h = hostile()
    h.set_robots(200, "User-agent: *\nDisallow: /private\n", delay_ms=400)
    try:
        with robots_daemon() as d:
            t0 = time.monotonic()
            res = run(d, [H("/private/x"), H("/ok?len=2&slow=1")])
            assert err_class(res[H("/private/x")]) == "robots"
            assert res[H("/ok?len=2&slow=1")]["status"] == 200
            assert time.monotonic() - t0 >= 0.39
            assert not logged("/private")
    finally:
        h.set_robots(404, "")


@suite.test
def shared_daemon_still_healthy():
    d = daemon()
    assert d.alive()
    res = run(d, [H("/ok?len=9&final=1")], want_rc=0)
    assert res[H("/ok?len=9&final=1")]["body_sha256"] == pattern_sha256(9)
    assert d.stop() == 0, d.log_text()[-2000:]


if __name__ == "__main__":
    suite.main()

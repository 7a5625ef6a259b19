#!/usr/bin/env python3
"""test_redisctl.py - fetchctl enqueue and drain against a real redis-server: the entries enqueue
writes (read back with the test's own RESP client), what drain prints, acknowledges and deletes, and
how both fail. The last test runs them around a real fetchd consuming the stream."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import REPO, Fetchd, Origin, Redis, Suite, redis_fields, wait_until  # noqa: E402

suite = Suite(__file__, timeout=60)
FETCHCTL = os.environ.get("FETCHCTL_BIN") or os.path.join(REPO, "build", "fetchctl")


def ctl(*args, input_text=None, timeout=30):
    p = subprocess.run([FETCHCTL] + [str(a) for a in args], input=input_text, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def entries(r, stream):
    return [(i.decode(), redis_fields(f)) for i, f in r.call("XRANGE", stream, "-", "+") or []]


def fake_results(r, n, stream="fetchd:results", tag="x"):
    r.pipe([["XADD", stream, "*", "entry", "%d-0" % i, "url", "http://h/%d" % i, "consumer", "c",
             "result", json.dumps({"url": "http://h/%d" % i, "tag": tag})] for i in range(n)])


@suite.test
def enqueue_writes_one_entry_per_url_with_its_options():
    with Redis() as r:
        src = ("# a comment\n\nhttp://a/1\n  method=HEAD\n  header=X-A: 1\n"
               "http://b/2\tretries=1\ttimeout_ms=500\r\n   \nhttp://c/3\tnot-an-option\nhttp://d/4\n")
        rc, out, err = ctl("--redis", r.url, "--json", "enqueue", "-", input_text=src)
        assert rc == 1 and "line 8: option 'not-an-option' is not key=value" in err, (rc, err)
        got = json.loads(out)
        es = entries(r, "fetchd:urls")
        assert got["enqueued"] == 3 and got["refused"] == 1 and got["first_id"] == es[0][0] and got["last_id"] == es[-1][0]
        assert [e[1]["url"] for e in es] == ["http://a/1", "http://b/2", "http://d/4"], es
        flat = r.call("XRANGE", "fetchd:urls", es[0][0], es[0][0])[0][1]
        assert flat == [b"url", b"http://a/1", b"method", b"HEAD", b"header", b"X-A: 1"], flat
        assert es[1][1] == {"url": "http://b/2", "retries": "1", "timeout_ms": "500"}, es[1]
        path = os.path.join(r.dir, "urls.txt")
        with open(path, "w") as f:
            f.write("".join("http://e/%d\n" % i for i in range(2500)))
        rc, out, err = ctl("--redis", r.url, "--stream", "other", "enqueue", path)
        assert rc == 0 and out == "" and "enqueued 2500 URLs to other" in err, (rc, out, err)
        assert r.xlen("other") == 2500 and entries(r, "other")[2499][1]["url"] == "http://e/2499"


@suite.test
def drain_prints_acknowledges_and_deletes():
    with Redis() as r:
        fake_results(r, 5)
        rc, out, err = ctl("--redis", r.url, "--count", 2, "drain")
        lines = [json.loads(x) for x in out.splitlines()]
        assert rc == 0 and [x["url"] for x in lines] == ["http://h/0", "http://h/1"], (rc, out, err)
        assert r.xlen("fetchd:results") == 3 and "drained 2 results" in err
        rc, out, err = ctl("--redis", r.url, "--keep", "drain")
        assert rc == 0 and len(out.splitlines()) == 3 and r.xlen("fetchd:results") == 3, (rc, out, err)
        rc, out, err = ctl("--redis", r.url, "drain")  # acknowledged already: nothing new for the group
        assert rc == 0 and out == "", out
        rc, out, err = ctl("--redis", r.url, "--group", "other", "-q", "drain")
        assert rc == 0 and len(out.splitlines()) == 3 and err == "" and r.xlen("fetchd:results") == 0, (out, err)


@suite.test
def drain_prints_again_what_it_read_and_did_not_acknowledge():
    with Redis() as r:
        fake_results(r, 3)
        r.call("XGROUP", "CREATE", "fetchd:results", "fetchctl", "0")
        r.call("XREADGROUP", "GROUP", "fetchctl", "fetchctl", "COUNT", 2, "STREAMS", "fetchd:results", ">")
        rc, out, err = ctl("--redis", r.url, "drain")
        assert rc == 0 and [json.loads(x)["url"] for x in out.splitlines()] == ["http://h/0", "http://h/1", "http://h/2"]
        assert r.call("XPENDING", "fetchd:results", "fetchctl")[0] == 0


@suite.test
def drain_dead_prints_json_objects():
    with Redis() as r:
        r.call("XADD", "fetchd:dead", "*", "entry", "5-0", "url", "http://x/\"q\"", "deliveries", "4", "consumer",
               "w1", "error", "delivered 4 times without a result (last held by w1)")
        rc, out, err = ctl("--redis", r.url, "--dead", "drain")
        d = json.loads(out)
        assert rc == 0 and d == {"entry": "5-0", "url": "http://x/\"q\"", "deliveries": 4, "consumer": "w1",
                                 "error": "delivered 4 times without a result (last held by w1)"}, (out, err)
        assert "drained 1 dead entries from fetchd:dead" in err


@suite.test
def drain_follow_waits_for_new_results_and_stops_on_sigterm():
    with Redis() as r:
        p = subprocess.Popen([FETCHCTL, "--redis", r.url, "--follow", "drain"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)
            fake_results(r, 2, tag="late")
            wait_until(lambda: r.xlen("fetchd:results") == 0, 5, what="drain to take them")
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=5)
            assert p.returncode == 0 and [json.loads(x)["tag"] for x in out.splitlines()] == ["late", "late"], (out, err)
        finally:
            if p.poll() is None:
                p.kill()


@suite.test
def passwords_and_unreachable_servers():
    with Redis(password="pw-1") as r:
        rc, out, err = ctl("--redis", r.url, "enqueue", "-", input_text="http://a/\n")
        assert rc == 0 and r.xlen("fetchd:urls") == 1, err
        rc, out, err = ctl("--redis", "redis://:nope@127.0.0.1:%d/0" % r.port, "enqueue", "-", input_text="http://a/\n")
        assert rc == 3 and "WRONGPASS" in err and "nope" not in err, err
        rc, out, err = ctl("--redis", "redis://127.0.0.1:%d/0" % r.port, "drain")
        assert rc == 3 and "NOAUTH" in err, err
    rc, out, err = ctl("--redis", "redis://127.0.0.1:1/0", "drain")
    assert rc == 3 and "cannot reach Redis at redis://127.0.0.1:1/0" in err, err
    rc, out, err = ctl("--redis", "http://x", "drain")
    assert rc == 3 and "redis://" in err, err
    rc, out, err = ctl("enqueue", "-", input_text="")
    assert rc == 2 and "needs --redis" in err, err
    rc, out, err = ctl("--redis", "redis://127.0.0.1:1/0", "submit", "-", input_text="")
    assert rc == 2 and "--redis goes with enqueue and drain" in err, err


@suite.test(timeout=120)
def enqueue_then_fetchd_then_drain():
    with Origin() as o, Redis() as r:
        src = "".join(o.url("/1k.html?e=%d\n" % i) for i in range(500)) + o.url("/16k.html") + "\n  method=HEAD\n"
        rc, out, err = ctl("--redis", r.url, "enqueue", "-", input_text=src)
        assert rc == 0, err
        with Fetchd({"queue": {"backend": "redis", "url": r.url}}) as d:
            got, deadline = [], time.monotonic() + 60
            while len(got) < 501 and time.monotonic() < deadline:
                rc, out, err = ctl("--redis", r.url, "-q", "drain")
                assert rc == 0, err
                got += [json.loads(x) for x in out.splitlines()]
                time.sleep(0.05)
            assert len(got) == 501 and len({g["url"] for g in got}) == 501, len(got)
            head = [g for g in got if g["url"].endswith("/16k.html")][0]
            assert head["status"] == 200 and head["body_bytes"] == 0, head
            assert all(g["status"] == 200 and g["body_bytes"] == 1024 for g in got if g is not head)
            p = subprocess.run([FETCHCTL, "-s", d.sock, "stats"], capture_output=True, text=True)
            assert "queue: redis://127.0.0.1:%d/0 stream fetchd:urls group fetchd" % r.port in p.stdout, p.stdout
            assert "published 501, acked 501" in p.stdout, p.stdout


if __name__ == "__main__":
    suite.main()

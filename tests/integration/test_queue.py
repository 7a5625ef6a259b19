#!/usr/bin/env python3
"""test_queue.py - fetchd daemons sharing a crawl through Redis Streams ([queue] backend = redis):
a real redis-server on a loopback port (tests/lib/harness.py Redis), real nginx, real fetchd processes.
Every entry of the input stream must end with exactly one result in the results stream and be
acknowledged, also when a daemon is killed (the others take its entries over and may fetch some again)
and when Redis restarts; entries that keep failing go to the dead stream; a daemon holds no more
entries than max_pending."""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (Fetchd, Origin, Redis, RedisError, Suite, fetchctl, redis_fields,  # noqa: E402
                     wait_until)

suite = Suite(__file__, timeout=240)
SLOW = os.environ.get("FETCHD_SAN") == "asan"  # sanitizer builds run slower: wait longer, not less
BIG = 30000


def qconf(redis, consumer, **queue):
    q = {"backend": "redis", "url": redis.url, "consumer": consumer, "claim_idle_ms": 1500}
    q.update(queue)
    return {"queue": q, "fetch": {"per_host_connections": 16}}


def enqueue(redis, urls, stream="fetchd:urls", extra=None):
    """XADD each URL (with extra fields {url: [k, v, ...]}); the entry ids, in order."""
    cmds = [["XADD", stream, "*", "url", u] + list((extra or {}).get(u, [])) for u in urls]
    ids = redis.pipe(cmds)
    assert all(isinstance(i, bytes) for i in ids), [i for i in ids if not isinstance(i, bytes)][:3]
    return [i.decode() for i in ids]


def results(redis, stream="fetchd:results"):
    """Every entry of the results stream: [{"entry", "url", "consumer", "result": dict}, ...]."""
    out = []
    for _, flat in redis.call("XRANGE", stream, "-", "+") or []:
        f = redis_fields(flat)
        f["result"] = json.loads(f["result"])
        out.append(f)
    return out


def group_info(redis, stream="fetchd:urls", group="fetchd"):
    try:
        groups = redis.call("XINFO", "GROUPS", stream)
    except RedisError:  # no stream yet
        groups = []
    for g in groups:
        d = {g[i].decode(): g[i + 1] for i in range(0, len(g), 2)}
        if d["name"] == group.encode():
            return d
    return None


def wait_done(redis, n, timeout, what="results"):
    """Until the results stream has n entries and the group has nothing pending or undelivered."""
    def done():
        if redis.xlen("fetchd:results") < n:
            return False
        g = group_info(redis)
        if g is None:
            return False
        return g["pending"] == 0 and (g["lag"] or 0) == 0
    wait_until(done, timeout * (3 if SLOW else 1), interval=0.1, what=what)


def by_entry(res):
    m = {}
    for r in res:
        m.setdefault(r["entry"], []).append(r)
    return m


def pending_of(redis, consumer, stream="fetchd:urls", group="fetchd"):
    """The ids of the entries consumer holds (none before fetchd made the group)."""
    try:
        rows = redis.call("XPENDING", stream, group, "-", "+", 1000000, consumer) or []
    except RedisError as e:
        if "NOGROUP" not in str(e):
            raise
        rows = []
    return {r[0].decode() for r in rows}


@suite.test(timeout=300)
def three_daemons_share_30000_urls_each_gets_exactly_one_result():
    with Origin() as o, Redis() as r:
        urls = [o.url("/1k.html?i=%d" % i) for i in range(BIG)]
        ids = enqueue(r, urls)
        ds = [Fetchd(qconf(r, "w%d" % i, max_pending=256)) for i in range(3)]
        try:
            wait_done(r, BIG, 120)
            res = results(r)
            assert len(res) == BIG, len(res)
            m = by_entry(res)
            assert set(m) == set(ids), (len(set(ids) - set(m)), len(set(m) - set(ids)))
            assert all(len(v) == 1 for v in m.values())
            want = dict(zip(ids, urls))
            sha = o.sha256["/1k.html"]
            for e in res:
                assert e["url"] == want[e["entry"]] == e["result"]["url"], e
                assert e["result"]["status"] == 200 and e["result"]["body_sha256"] == sha, e
            per = {c: sum(1 for e in res if e["consumer"] == c) for c in ("w0", "w1", "w2")}
            assert all(n > 0 for n in per.values()), per
            print("per daemon:", per)
            for d in ds:  # lag and pending are read from Redis once a second
                q = wait_until(lambda: (lambda q: q if q["pending"] == 0 and q["lag"] == 0 else None)(
                    json.loads(fetchctl(d.sock, ["stats", "--json"])[1])["queue"]), 5, what="stats to catch up")
                assert q["connected"] and q["held"] == 0, q
                assert q["published"] == q["acked"] == per[q["consumer"]] and q["dead"] == 0, q
            for d in ds:
                d.stop()
                assert "queue: stopped" in d.log_text()
        finally:
            for d in ds:
                d.stop()


@suite.test(timeout=300)
def a_killed_daemon_s_entries_are_claimed_by_the_others():
    with Origin() as o, Redis() as r:
        urls = [o.url("/1k.html?k=%d" % i) for i in range(BIG)]
        ids = enqueue(r, urls)
        ds = [Fetchd(qconf(r, "k%d" % i, max_pending=256)) for i in range(3)]
        try:
            wait_until(lambda: r.xlen("fetchd:results") >= BIG // 6, 60 * (3 if SLOW else 1), interval=0.01,
                       what="a sixth of the results")
            os.kill(ds[0].proc.pid, signal.SIGKILL)
            ds[0].proc.wait()
            held = pending_of(r, "k0")  # what the killed daemon had read and not acknowledged
            assert 0 < len(held) <= 256, len(held)
            wait_done(r, BIG, 120)
            m = by_entry(results(r))
            assert set(m) == set(ids), len(set(ids) - set(m))
            assert all(len(v) == 1 for v in m.values()), [k for k, v in m.items() if len(v) > 1][:5]
            taken = [e for e in held if m[e][0]["consumer"] != "k0"]
            assert len(taken) == len(held), (len(taken), len(held))  # k0 added nothing it did not acknowledge
            stats = [json.loads(fetchctl(d.sock, ["stats", "--json"])[1])["queue"] for d in ds[1:]]
            assert sum(s["claimed"] for s in stats) == len(held) and all(s["held"] == 0 for s in stats), stats
            print("the killed daemon held %d entries: the others took them over, one result each" % len(held))
        finally:
            for d in ds:
                d.stop()


@suite.test(timeout=300)
def redis_restarted_mid_run_fetchd_reconnects_and_finishes():
    with Origin() as o, Redis() as r:
        n = 20000
        urls = [o.url("/1k.html?r=%d" % i) for i in range(n)]
        ids = enqueue(r, urls)
        ds = [Fetchd(qconf(r, "r%d" % i, max_pending=128, claim_idle_ms=20000)) for i in range(2)]
        try:
            wait_until(lambda: r.xlen("fetchd:results") >= n // 5, 60 * (3 if SLOW else 1), interval=0.01,
                       what="a fifth of the results")
            r.restart(down_s=1.0)
            wait_done(r, n, 120)
            m = by_entry(results(r))
            assert set(m) == set(ids), len(set(ids) - set(m))
            dups = sum(1 for v in m.values() if len(v) > 1)
            assert dups == 0, dups
            for d in ds:
                log = d.log_text()
                assert "queue: lost Redis" in log and "again" in log, log[-3000:]
                q = json.loads(fetchctl(d.sock, ["stats", "--json"])[1])["queue"]
                assert q["reconnects"] >= 1 and q["connected"] and q["held"] == 0, q
            sup = sum(json.loads(fetchctl(d.sock, ["stats", "--json"])[1])["queue"]["superseded"] for d in ds)
            print("after the restart: one result per entry; %d retried after a lost reply were acknowledged "
                  "already" % sup)
        finally:
            for d in ds:
                d.stop()


@suite.test
def entries_delivered_too_often_go_to_the_dead_stream():
    with Origin() as o, Redis() as r:
        poison, orphan = enqueue(r, [o.url("/1k.html?poison"), o.url("/1k.html?orphan")])
        r.call("XGROUP", "CREATE", "fetchd:urls", "fetchd", "0")
        got = r.call("XREADGROUP", "GROUP", "fetchd", "ghost", "COUNT", 2, "STREAMS", "fetchd:urls", ">")
        assert len(got[0][1]) == 2
        r.call("XCLAIM", "fetchd:urls", "fetchd", "ghost", 0, poison)
        r.call("XCLAIM", "fetchd:urls", "fetchd", "ghost", 0, poison)  # delivered 3 times now
        with Fetchd(qconf(r, "f", claim_idle_ms=300, max_deliveries=3)) as d:
            wait_until(lambda: r.xlen("fetchd:dead") == 1 and r.xlen("fetchd:results") == 1, 15, what="dead + result")
            dead = redis_fields(r.call("XRANGE", "fetchd:dead", "-", "+")[0][1])
            assert dead["entry"] == poison and dead["url"] == o.url("/1k.html?poison"), dead
            assert dead["deliveries"] == "3" and dead["consumer"] == "ghost", dead
            assert "delivered 3 times without a result" in dead["error"], dead
            res = results(r)
            assert res[0]["entry"] == orphan and res[0]["consumer"] == "f" and res[0]["result"]["status"] == 200
            wait_until(lambda: (group_info(r) or {}).get("pending") == 0, 5, what="both acknowledged")
            q = json.loads(fetchctl(d.sock, ["stats", "--json"])[1])["queue"]
            assert q["dead"] == 1 and q["claimed"] == 1 and q["read"] == 0, q
            assert "went to fetchd:dead" in d.log_text()


@suite.test
def bad_entries_get_a_result_or_the_dead_stream_and_are_acknowledged():
    with Origin() as o, Redis() as r:
        good = o.url("/16k.html")
        ids = enqueue(r, [good, "http://exa mple.com/", good + "?head", good + "?put", good + "?tab"],
                      extra={good + "?head": ["method", "HEAD"], good + "?put": ["method", "PUT"],
                             good + "?tab": ["header", "X-A: 1\tX-B: 2"]})
        noid = r.call("XADD", "fetchd:urls", "*", "link", good).decode()
        with Fetchd(qconf(r, "b")) as d:
            wait_done(r, 5, 15)
            m = {e["entry"]: e["result"] for e in results(r)}
            assert m[ids[0]]["status"] == 200 and m[ids[0]]["body_bytes"] == 16384, m[ids[0]]
            assert m[ids[1]]["error"]["class"] == "url", m[ids[1]]
            assert m[ids[2]]["status"] == 200 and m[ids[2]]["body_bytes"] == 0, m[ids[2]]
            assert m[ids[3]]["error"]["class"] == "url" and "bad option" in m[ids[3]]["error"]["message"], m[ids[3]]
            assert m[ids[4]]["error"]["class"] == "url" and "TAB" in m[ids[4]]["error"]["message"], m[ids[4]]
            dead = redis_fields(r.call("XRANGE", "fetchd:dead", "-", "+")[0][1])
            assert dead["entry"] == noid and dead["error"] == "the entry has no url field", dead
            assert group_info(r)["pending"] == 0
            assert d.alive()


@suite.test
def an_entry_is_acknowledged_only_after_its_result_is_in():
    with Origin() as o, Redis() as r:
        r.call("SET", "fetchd:results", "not a stream")  # every XADD is refused (WRONGTYPE)
        ids = enqueue(r, [o.url("/1k.html?w=%d" % i) for i in range(3)])
        with Fetchd(qconf(r, "w")) as d:
            wait_until(lambda: "adding a result to fetchd:results refused: WRONGTYPE" in d.log_text(), 10,
                       what="the refusal")
            time.sleep(0.5)
            assert group_info(r)["pending"] == 3 and d.log_text().count("refused: WRONGTYPE") == 1
            q = json.loads(fetchctl(d.sock, ["stats", "--json"])[1])["queue"]
            assert q["held"] == 3 and q["published"] == 0 and q["acked"] == 0, q
            r.call("DEL", "fetchd:results")
            wait_done(r, 3, 15)
            assert sorted(e["entry"] for e in results(r)) == sorted(ids)


@suite.test
def a_flushed_script_cache_is_loaded_again():
    with Origin() as o, Redis() as r:
        with Fetchd(qconf(r, "s")) as d:
            ids = enqueue(r, [o.url("/1k.html?s1")])
            wait_done(r, 1, 10)
            r.call("SCRIPT", "FLUSH")
            ids += enqueue(r, [o.url("/1k.html?s2=%d" % i) for i in range(20)])
            wait_done(r, 21, 15)
            assert sorted(e["entry"] for e in results(r)) == sorted(ids)
            assert "the script cache was flushed" in d.log_text()


@suite.test
def a_daemon_holds_no_more_than_max_pending_entries():
    with Origin() as o, Redis() as r:
        ids = enqueue(r, [o.url("/delay?p=%d" % i) for i in range(60)])
        with Fetchd(qconf(r, "p", max_pending=5, batch=100)) as d:
            most = 0
            deadline = time.monotonic() + 30 * (3 if SLOW else 1)
            while r.xlen("fetchd:results") < len(ids) and time.monotonic() < deadline:
                most = max(most, len(pending_of(r, "p")))
                time.sleep(0.01)
            wait_done(r, len(ids), 10)
            assert 3 <= most <= 5, most
            q = json.loads(fetchctl(d.sock, ["stats", "--json"])[1])["queue"]
            assert q["max_pending"] == 5 and q["read"] == 60, q


@suite.test
def sigterm_leaves_unfinished_entries_pending_for_another_daemon():
    with Origin() as o, Redis() as r:
        ids = enqueue(r, [o.url("/slow?s=%d" % i) for i in range(40)])
        d = Fetchd(dict(qconf(r, "t1", max_pending=20), daemon={"drain_timeout_ms": 300}))
        try:
            wait_until(lambda: len(pending_of(r, "t1")) == 20, 10, what="20 entries held")
            d.signal(signal.SIGTERM)
            assert d.wait_exit(15) == 0
            res = results(r)
            assert all(e["result"]["error"] is None for e in res), [e["result"]["error"] for e in res]
            left = pending_of(r, "t1")
            assert len(left) + len(res) == 20 and len(left) > 0, (len(left), len(res))
            assert "entries left pending" in d.log_text()
        finally:
            d.stop()
        with Fetchd(qconf(r, "t2", claim_idle_ms=300, max_pending=40)):
            wait_done(r, 40, 30)
            m = by_entry(results(r))
            assert set(m) == set(ids) and all(len(v) == 1 for v in m.values()), (len(set(ids) - set(m)), [(k, [x["consumer"] for x in v]) for k, v in m.items() if len(v) > 1])
            assert all(v[0]["result"]["status"] == 200 for v in m.values())


@suite.test
def a_restarted_daemon_with_a_fixed_name_takes_its_entries_back_at_once():
    with Origin() as o, Redis() as r:
        ids = enqueue(r, [o.url("/slow?f=%d" % i) for i in range(10)])
        d = Fetchd(qconf(r, "fixed", claim_idle_ms=600000))
        wait_until(lambda: len(pending_of(r, "fixed")) == 10, 10, what="10 entries held")
        os.kill(d.proc.pid, signal.SIGKILL)
        d.proc.wait()
        d.stop()
        t0 = time.monotonic()
        with Fetchd(qconf(r, "fixed", claim_idle_ms=600000)):
            wait_done(r, 10, 20)
            assert time.monotonic() - t0 < 10  # not after claim_idle_ms (10 minutes)
            assert sorted(e["entry"] for e in results(r)) == sorted(ids)


@suite.test
def fetchd_starts_without_redis_serves_sockets_and_connects_later():
    with Origin() as o:
        r = Redis()
        port, url = r.port, r.url
        r.stop()
        conf = qconf(r, "late")
        conf["queue"]["url"] = url
        with Fetchd(conf) as d:
            rc, out, err = fetchctl(d.sock, ["submit", "-"], input_text=o.url("/1k.html") + "\n")
            assert rc == 0 and json.loads(out)["status"] == 200, (rc, out, err)
            q = json.loads(fetchctl(d.sock, ["stats", "--json"])[1])["queue"]
            assert not q["connected"], q
            assert "cannot reach Redis" in d.log_text()
            r2 = Redis(port=port)
            try:
                ids = enqueue(r2, [o.url("/1k.html?late")])
                wait_done(r2, 1, 20)
                assert results(r2)[0]["entry"] == ids[0]
            finally:
                r2.stop()


@suite.test
def a_password_is_used_and_never_logged():
    with Origin() as o, Redis(password="s3cret-pw") as r:
        ids = enqueue(r, [o.url("/1k.html?pw")])
        with Fetchd(qconf(r, "pw")) as d:
            wait_done(r, 1, 15)
            assert results(r)[0]["entry"] == ids[0]
            rc, out, _ = fetchctl(d.sock, ["stats", "--json"])
            assert "s3cret" not in out and "s3cret" not in d.log_text()
            assert json.loads(out)["queue"]["url"] == "redis://127.0.0.1:%d/0" % r.port
        bad = qconf(r, "pw2")
        bad["queue"]["url"] = "redis://:wrong@127.0.0.1:%d/0" % r.port
        with Fetchd(bad) as d:
            wait_until(lambda: "cannot reach Redis" in d.log_text(), 10, what="the refusal logged")
            assert "wrong" not in d.log_text()


@suite.test
def a_bad_queue_url_stops_the_start():
    for url, why in (("http://127.0.0.1:6379/0", "redis://"), ("redis://127.0.0.1:99999/0", "port")):
        try:
            d = Fetchd({"queue": {"backend": "redis", "url": url}})
        except AssertionError as e:
            assert "[queue]" in str(e) or "url" in str(e), e
            continue
        d.stop()
        raise AssertionError("fetchd started with [queue] url = %s" % url)


if __name__ == "__main__":
    suite.main()

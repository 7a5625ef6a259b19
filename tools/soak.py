#!/usr/bin/env python3
"""soak.py - `make soak`: mixed good and hostile traffic through one fetchd for a while, and proof
that its memory, descriptors and threads stay flat.

    python3 tools/soak.py [--minutes 10] [--threads 3] [--seed N] [--no-tls] [--no-dns] [--no-queue] ...
    make soak SOAK_ARGS="--minutes 1"

Run from the repository root after `make`. Standard library only. Everything runs on loopback, in a
private temporary directory:

  * a real nginx origin (tests/lib/harness.py's Origin) serving /1k.html, /16k.html, /1m.bin and
    /empty.txt over http and, when the openssl CLI is there, over https on a second port (a test CA
    from tests/tls/make-certs.sh);
  * the scripted hostile server (tests/lib/hostile.py) in its own process;
  * dnsmasq, when installed, answering *.good.soak.test with 127.0.0.1 and NXDOMAIN for every other
    name, so that names (new ones in every batch, and a small set that keeps expiring) go through
    fetchd's resolver and DNS cache;
  * one fetchd with modest limits and timeouts of a few seconds ([security] allow_addresses =
    127.0.0.0/8).

`--threads` clients (default 3) loop: each builds a shuffled batch (mostly good nginx URLs, some by
name and over https, plus every hostile scenario, bad URLs, blocked addresses, a refused port and
unknown names), runs `fetchctl submit` on it and checks every result: one per URL, good URLs 200 (or
404) with the right sha256 and length, failures with the class (and timeout phase) their scenario
must produce. Every fourth batch also writes a WARC file and body files (`--warc`, `--output-dir`;
the WARC's digests are recomputed by tests/lib/warcread.py and each body file is hashed), and every
fourth (offset by two) runs detached (`submit --detach`, then `results JOB`). When redis-server is
installed, fetchd also consumes a Redis stream ([queue] backend = redis), and one more client loops
on the same kind of batches through it: `fetchctl enqueue`, then `fetchctl drain` until every URL has
its result, checked the same way (one result per URL). Where timing alone decides between two
outcomes, the other one is accepted and counted as "tolerated". One more client, every 10-20 s, submits a batch full of slow URLs and is killed
(SIGKILL) part way through, or is stopped (SIGSTOP) for a while and then continued and checked.

fetchd's VmRSS, descriptor count and thread count are sampled every --interval seconds. After the
warm-up (10% of the run, at most one minute), traffic pauses, idle keep-alive connections expire
(keepalive_idle_ms) and the idle baseline is taken; traffic then resumes for the rest of the run. At
the end the same is done again. The run PASSes when fetchd is alive (and stops cleanly), no result
is missing or wrong, the idle RSS at the end is within 5% + 2 MiB of the idle baseline, and the
descriptors and threads are back to the baseline (and nginx and the hostile server see no
connection left open). Exit 0 on PASS, 1 on FAIL, 2 when the setup itself failed.

The table and the verdict go to stdout (progress to stderr), and with more detail (every sample,
outcomes per scenario, the first wrong results, fetchd's warnings) to build/soak/report.md.
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
from harness import (Fetchd, Hostile, Origin, Redis, free_port, http_get, pattern_sha256,  # noqa: E402
                     sha256_hex)
from dnsmasq import Dnsmasq  # noqa: E402

OUT_DIR = os.path.join(REPO, "build", "soak")
MAKE_CERTS = os.path.join(REPO, "tests", "tls", "make-certs.sh")

FETCH_CONF = {
    "max_inflight": 256, "per_host_connections": 16, "connect_timeout_ms": 2000,
    "header_timeout_ms": 2000, "idle_timeout_ms": 1000, "timeout_ms": 5000,
    "keepalive_idle_ms": 2000,
}
KEEPALIVE_S = FETCH_CONF["keepalive_idle_ms"] / 1000.0
RSS_SLACK_PCT = 5.0      # end RSS may exceed the baseline by this much ...
RSS_SLACK_KIB = 2048     # ... plus this
BATCH_TIMEOUT = 90       # seconds; a batch still running after this counts as stuck
CLASSES = ["protocol", "timeout", "too_large", "connect", "dns", "blocked", "url", "tls", "internal",
           "cancelled"]


def log(msg):
    print("[soak %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ---- what a URL must produce ------------------------------------------------------------------------

class Expect:
    """The outcome one URL must have.

    Success: status, nbytes and sha (sha None: do not check the body).
    Failure: classes, a set of (class, phase) pairs (phase None for non-timeouts); tolerate, other
    pairs accepted when timing decides (counted apart); statuses, the statuses allowed alongside.
    """
    __slots__ = ("label", "status", "nbytes", "sha", "classes", "tolerate", "statuses", "prefix")

    def __init__(self, label, status=None, nbytes=None, sha=None, classes=None, tolerate=(),
                 statuses=(None,), prefix=False):
        self.label, self.status, self.nbytes, self.sha = label, status, nbytes, sha
        self.classes = set(classes) if classes else None
        self.tolerate = set(tolerate)
        self.statuses = set(statuses)
        self.prefix = prefix  # the URL is too long: its result carries a truncated url


def good(label, status, body: bytes = None, nbytes=None, sha=None):
    if body is not None:
        nbytes, sha = len(body), sha256_hex(body)
    return Expect(label, status=status, nbytes=nbytes, sha=sha)


def pat(label, n, status=200):
    """A hostile-server success with its n-byte pattern body."""
    return Expect(label, status=status, nbytes=n, sha=pattern_sha256(n))


def fail(label, cls, phase=None, statuses=(None,), tolerate=(), prefix=False):
    return Expect(label, classes=[(cls, phase)], statuses=statuses, tolerate=tolerate, prefix=prefix)


def outcome(r) -> str:
    """A short name for what a result is: "200", "protocol", "protocol@200", "timeout:idle"."""
    e = r.get("error")
    if e is None:
        return str(r.get("status"))
    s = str(e.get("class")) if isinstance(e, dict) else "?"
    if isinstance(e, dict) and e.get("phase"):
        s += ":" + str(e["phase"])
    if r.get("status") is not None:
        s += "@%s" % r["status"]
    return s


def judge(x: Expect, r) -> tuple:
    """("ok" | "tolerated" | "wrong", reason)."""
    e = r.get("error")
    if x.classes is None:
        if e is not None:
            return "wrong", "expected a success, got an error"
        if r.get("status") != x.status:
            return "wrong", "status %r, expected %r" % (r.get("status"), x.status)
        if x.nbytes is not None and r.get("body_bytes") != x.nbytes:
            return "wrong", "body_bytes %r, expected %r" % (r.get("body_bytes"), x.nbytes)
        if x.sha is not None and r.get("body_sha256") != x.sha:
            return "wrong", "wrong body_sha256"
        if r.get("final_url") != r.get("url"):
            return "wrong", "final_url differs from url"
        if not isinstance(r.get("attempts"), int) or r["attempts"] < 1:
            return "wrong", "attempts %r" % r.get("attempts")
        return "ok", ""
    if not isinstance(e, dict):
        return "wrong", "expected a failure (%s), got a success" % sorted(x.classes)
    if not isinstance(e.get("message"), str) or not e["message"]:
        return "wrong", "error without a message"
    if r.get("body_sha256") is not None:
        return "wrong", "a failed fetch carries a body hash"
    if r.get("status") not in x.statuses:
        return "wrong", "status %r with a %s error, expected one of %r" % (
            r.get("status"), e.get("class"), sorted(x.statuses, key=str))
    pair = (e.get("class"), e.get("phase"))
    if pair in x.classes:
        return "ok", ""
    if pair in x.tolerate:
        return "tolerated", ""
    return "wrong", "error %s/%s, expected %s" % (pair[0], pair[1], sorted(x.classes, key=str))


# ---- the environment: servers and what they serve ---------------------------------------------------

class Env:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.notes = []
        self.tls_port = None
        self.certs = None
        self.dns = None
        self.refuser = None
        self.origin = None
        self.hostile = None
        self.daemon = None
        self.redis = None

    def start(self):
        a = self.args
        extra_conf = ""
        if not a.no_tls:
            if shutil.which("openssl") and os.path.exists(MAKE_CERTS):
                self.certs = os.path.join(self.tmp, "certs")
                os.makedirs(self.certs)
                p = subprocess.run(["sh", MAKE_CERTS, self.certs], capture_output=True, text=True)
                if p.returncode != 0:
                    raise RuntimeError("make-certs.sh failed: " + p.stderr[-2000:])
                self.tls_port = free_port()
                extra_conf = ("    listen 127.0.0.1:%d ssl;\n    ssl_certificate %s;\n"
                              "    ssl_certificate_key %s;" % (
                                  self.tls_port, os.path.join(self.certs, "ok.crt"),
                                  os.path.join(self.certs, "ec.key")))
            else:
                self.notes.append("https left out: no openssl CLI")
        self.origin = Origin(extra_conf=extra_conf)
        o = self.origin
        log("nginx origin on 127.0.0.1:%d%s" % (
            o.port, " (https on %d)" % self.tls_port if self.tls_port else ""))
        # What nginx answers besides the files: learn the 404 page and /delay once.
        st, _, b404 = http_get(o.port, "/soak-no-such-file")
        assert st == 404, "nginx answered %d for a missing file" % st
        st, _, bdelay = http_get(o.port, "/delay")
        assert st == 200, "nginx /delay answered %d" % st
        self.body404, self.bodydelay = b404, bdelay

        self.hostile = Hostile()
        log("hostile server on 127.0.0.1:%d (pid %d)" % (self.hostile.port, self.hostile.proc.pid))

        # A port that refuses: bound, never listening (a SYN gets a RST); held for the whole run.
        self.refuser = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.refuser.bind(("127.0.0.1", 0))
        self.refused_port = self.refuser.getsockname()[1]

        if not a.no_dns:
            if shutil.which("dnsmasq"):
                # *.good.soak.test -> 127.0.0.1 (TTL 2 s), NXDOMAIN for every other name
                self.dns = Dnsmasq(args=["--address=/good.soak.test/127.0.0.1", "--cache-size=0",
                                         "--dns-forward-max=1000"], local_ttl=2)
                log("dnsmasq on 127.0.0.1:%d" % self.dns.port)
            else:
                self.notes.append("names left out: no dnsmasq")

        conf = {
            "daemon": {"log_level": "info"},
            "fetch": dict(FETCH_CONF),
            "security": {"allow_addresses": "127.0.0.0/8"},
        }
        if self.dns:
            # Short TTLs and a small cache, so names expire and the cache evicts all the time; the
            # cache is full well before the warm-up ends.
            conf["dns"] = {"servers": "127.0.0.1:%d" % self.dns.port, "timeout_ms": 1000, "tries": 2,
                           "hosts_file": "", "cache_size": 256, "min_ttl_s": 1, "max_ttl_s": 5,
                           "negative_ttl_s": 2}
        if self.certs:
            conf["tls"] = {"ca_file": os.path.join(self.certs, "ca.crt")}
        if not a.no_queue:
            if shutil.which("redis-server"):
                self.redis = Redis()
                conf["queue"] = {"backend": "redis", "url": self.redis.url, "consumer": "soak",
                                 "max_pending": 256, "claim_idle_ms": 30000}
                log("redis-server on 127.0.0.1:%d" % self.redis.port)
            else:
                self.notes.append("the Redis queue left out: no redis-server")
        self.conf = conf
        self.daemon = Fetchd(conf, timeout=10)
        log("fetchd pid %d on %s" % (self.daemon.pid, self.daemon.sock))

    def stop(self):
        for obj in (self.daemon, self.hostile, self.origin, self.dns, self.redis):
            if obj is not None:
                try:
                    obj.stop()
                except Exception:  # noqa: BLE001 - keep cleaning up
                    pass
        if self.refuser:
            self.refuser.close()


# ---- batches ----------------------------------------------------------------------------------------

BAD_URLS = ["ftp://127.0.0.1/{id}", "http://a b/{id}", "http://[::1/{id}", "http://127.0.0.1:99999/{id}",
            "not a url {id}", "gopher://x/{id}", "http:///{id}", "http://exa mple.com:80/{id}"]


class Batcher:
    """Builds shuffled batches: [(url, Expect)]; every URL carries a unique sk= tag."""

    def __init__(self, env: Env, size: int):
        self.env = env
        self.size = size
        self.pool_names = ["pool%02d.good.soak.test" % i for i in range(16)]

    def batch(self, tag: str, rnd: random.Random, slow: bool = False):
        env, o = self.env, self.env.origin
        out = []
        n = [0]

        def add(url, x):
            n[0] += 1
            sep = "&" if "?" in url else "?"
            out.append((url + sep + "sk=%s.%d" % (tag, n[0]), x))

        def ngx(path, host="127.0.0.1", port=None, scheme="http"):
            return "%s://%s:%d%s" % (scheme, host, port or o.port, path)

        files = {"/1k.html": 0.40, "/16k.html": 0.28, "/1m.bin": 0.04, "/empty.txt": 0.06,
                 "/nope.html": 0.12, "/delay": 0.10}
        n_plain = self.size
        for p in rnd.choices(list(files), weights=list(files.values()), k=n_plain):
            add(ngx(p), self._nginx_expect("nginx " + p, p))
        if slow:  # the killed client's batches: slow URLs, so that the kill lands mid-batch
            # (nginx's /slow sleeps 1 s: as long as idle_timeout_ms, so /delay, 0.1 s, it is)
            for _ in range(20):
                add(ngx("/delay"), good("nginx /delay", 200, self.env.bodydelay))
        # by name: a few new names every batch, and names from a small pool whose TTL keeps expiring
        if env.dns:
            for i in range(8):
                p = rnd.choice(["/1k.html", "/16k.html"])
                add(ngx(p, host="%s-%d.good.soak.test" % (tag.replace(".", "-"), i)),
                    self._nginx_expect("name new " + p, p))
            for _ in range(12):
                p = rnd.choice(["/1k.html", "/16k.html", "/empty.txt"])
                add(ngx(p, host=rnd.choice(self.pool_names)), self._nginx_expect("name pool " + p, p))
            for i in range(3):
                add("http://%s-%d.nx.soak.test/" % (tag.replace(".", "-"), i), fail("name nxdomain", "dns"))
        # https
        if env.tls_port:
            for _ in range(16):
                p = rnd.choice(["/1k.html", "/1k.html", "/16k.html", "/nope.html", "/empty.txt"])
                add(ngx(p, port=env.tls_port, scheme="https"), self._nginx_expect("https " + p, p))
            if rnd.random() < 0.3:
                add(ngx("/1m.bin", port=env.tls_port, scheme="https"),
                    self._nginx_expect("https /1m.bin", "/1m.bin"))
            # https to the plain-http port: nginx answers the ClientHello with a plain 400
            add(ngx("/1k.html", scheme="https"), fail("https to a plain port", "tls"))

        h = env.hostile.url
        # hostile, well-behaved scenarios: must succeed with the exact body
        for _ in range(2):
            k = rnd.randrange(0, 40000)
            add(h("/ok?len=%d" % k), pat("hostile /ok", k))
        k, s = rnd.randrange(0, 20000), rnd.randrange(1, 3000)
        add(h("/chunked?len=%d&size=%d" % (k, s)), pat("hostile /chunked", k))
        k = rnd.randrange(0, 30000)
        add(h("/eof?len=%d" % k), pat("hostile /eof", k))
        add(h("/drip?len=20&ms=2"), pat("hostile /drip small", 20))
        k = rnd.randrange(1, 9000)
        add(h("/extra?len=%d&junk=%s" % (k, rnd.choice(["resp", "bytes"]))), pat("hostile /extra junk", k))
        add(h("/interim?n=2&code=%d" % rnd.choice([100, 103])), good("hostile /interim n=2", 200, b"final"))
        k = rnd.randrange(0, 5000)
        add(h("/close?len=%d" % k), pat("hostile /close", k))
        add(h("/status?code=204"), good("hostile 204", 204, b""))
        add(h("/status?code=500&len=7"), pat("hostile 500", 7, status=500))
        add(h("/delay?ms=300&len=100"), pat("hostile /delay 300ms", 100))
        add(h("/no-such-scenario"), good("hostile 404", 404, b"not found\n"))
        # hostile, broken: must fail with their class
        add(h("/garbage?seed=%d" % rnd.randrange(1 << 20)), fail("hostile /garbage", "protocol"))
        add(h("/cl-short?len=1000"), fail("hostile /cl-short", "protocol", statuses=(200,)))
        # RST: depending on when the reset lands, the head may or may not have been read
        add(h("/rst-body?len=100000"), fail("hostile /rst-body", "protocol", statuses=(200, None)))
        add(h("/rst-header"), fail("hostile /rst-header", "protocol"))
        add(h("/huge-header?bytes=100000"), fail("hostile /huge-header", "too_large"))
        add(h("/headers-forever?ms=0"), fail("hostile /headers-forever", "too_large"))
        add(h("/interim?n=40"), fail("hostile /interim flood", "protocol"))
        add(h("/te-cl"), fail("hostile /te-cl", "protocol"))
        add(h("/cl-conflict"), fail("hostile /cl-conflict", "protocol"))
        add(h("/huge-chunk?close=1"), fail("hostile /huge-chunk", "protocol", statuses=(200,)))
        # silence: no byte ever (idle 1 s fires before header 2 s if the idle timer covers the head)
        add(h("/hang"), fail("hostile /hang", "timeout", "header", tolerate=[("timeout", "idle")]))
        # a header that trickles: 100-byte lines every 50 ms never go idle; header timeout at 2 s
        add(h("/headers-forever?ms=50"), fail("hostile /headers-forever slow", "timeout", "header"))
        # gaps of 1.5 s > idle 1 s
        add(h("/drip?len=50&ms=1500"), fail("hostile /drip slow", "timeout", "idle", tolerate=[("timeout", "header")]))
        if slow or rnd.random() < 0.35:
            add(h("/chunked-forever?ms=20"), fail("hostile /chunked-forever", "timeout", "total",
                                                  statuses=(200,)))
        # bad URLs, blocked addresses, a refused port
        for t in rnd.sample(BAD_URLS, 3):
            add(t.format(id="bad"), fail("bad url", "url"))
        if rnd.random() < 0.25:
            u = ngx("/1k.html?pad=" + "x" * 9000)
            add(u, fail("bad url too long", "url", prefix=True))
        add("http://10.%d.%d.%d/" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255)),
            fail("blocked 10/8", "blocked"))
        add("http://169.254.169.254/latest/meta-data/", fail("blocked metadata", "blocked"))
        add("http://[::1]:%d/1k.html" % o.port, fail("blocked ::1", "blocked"))
        add("http://127.0.0.1:%d/x" % env.refused_port, fail("refused port", "connect"))
        rnd.shuffle(out)
        return out

    def _nginx_expect(self, label, path):
        o = self.env.origin
        if path in o.files:
            return good(label, 200, o.files[path])
        if path == "/delay":
            return good(label, 200, self.env.bodydelay)
        return good(label, 404, self.env.body404)


# ---- bookkeeping ------------------------------------------------------------------------------------

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.batches = 0          # batches checked in full
        self.queued = 0           # of those, through the Redis queue
        self.killed = 0           # batches whose client was killed (partial results checked)
        self.stopped = 0          # batches whose client was stopped and continued (checked in full)
        self.urls = 0             # results checked
        self.ok = 0               # results without an error
        self.by_class = {c: 0 for c in CLASSES}
        self.tolerated = 0
        self.wrong = 0
        self.missing = 0
        self.problems = []        # first few: text
        self.nproblems = 0
        self.other = 0            # problems that are not a wrong or missing result (stuck, exit code)
        self.outcomes = {}        # label -> {outcome: count}

    def problem(self, text, other=True):
        with self.lock:
            self.nproblems += 1
            if other:
                self.other += 1
            if len(self.problems) < 40:
                self.problems.append(text)
        log("PROBLEM: " + text[:600])

    def snapshot(self):
        with self.lock:
            return {"batches": self.batches, "queued": self.queued, "killed": self.killed, "stopped": self.stopped,
                    "urls": self.urls, "ok": self.ok, "by_class": dict(self.by_class),
                    "tolerated": self.tolerated, "wrong": self.wrong, "missing": self.missing,
                    "problems": self.nproblems, "other": self.other}


def short(r) -> str:
    r = dict(r)
    for k in ("url", "final_url"):
        if isinstance(r.get(k), str) and len(r[k]) > 200:
            r[k] = r[k][:120] + "...(%d bytes)" % len(r[k])
    return json.dumps(r, sort_keys=True)


def check_results(stats: Stats, batch, lines, complete: bool, what: str):
    """Check the result lines of one batch. complete: every URL must have its result."""
    want = {u: x for u, x in batch}
    longs = [(u, x) for u, x in batch if x.prefix]
    seen = set()
    counts = {"ok": 0, "tol": 0, "wrong": 0, "urls": 0, "cls": {}, "outcomes": []}
    problems = []
    for i, line in enumerate(lines):
        try:
            r = json.loads(line)
        except ValueError:
            problems.append("%s: line %d is not JSON: %r" % (what, i + 1, line[:300]))
            counts["wrong"] += 1
            continue
        u = r.get("url")
        if u not in want:
            match = [lu for lu, _ in longs if isinstance(u, str) and len(u) >= 256 and lu.startswith(u)]
            if len(match) == 1:
                u = match[0]
            else:
                problems.append("%s: result for a URL not in the batch: %s" % (what, short(r)))
                counts["wrong"] += 1
                continue
        if u in seen:
            problems.append("%s: second result for one URL: %s" % (what, short(r)))
            counts["wrong"] += 1
            continue
        seen.add(u)
        x = want[u]
        verdict, reason = judge(x, r)
        counts["urls"] += 1
        counts["outcomes"].append((x.label, outcome(r)))
        e = r.get("error")
        if e is None:
            counts["ok"] += 1
        else:
            c = e.get("class") if isinstance(e, dict) else "?"
            counts["cls"][c] = counts["cls"].get(c, 0) + 1
        if verdict == "tolerated":
            counts["tol"] += 1
        elif verdict == "wrong":
            counts["wrong"] += 1
            problems.append("%s: %s [%s]: %s" % (what, x.label, reason, short(r)))
    missing = [u for u, _ in batch if u not in seen] if complete else []
    for u in missing[:3]:
        problems.append("%s: no result for %s" % (what, u[:200]))
    with stats.lock:
        stats.urls += counts["urls"]
        stats.ok += counts["ok"]
        stats.tolerated += counts["tol"]
        stats.wrong += counts["wrong"]
        stats.missing += len(missing)
        for c, k in counts["cls"].items():
            stats.by_class[c] = stats.by_class.get(c, 0) + k
        for label, oc in counts["outcomes"]:
            d = stats.outcomes.setdefault(label, {})
            d[oc] = d.get(oc, 0) + 1
    if len(missing) > 3:
        problems.append("%s: %d results missing in all" % (what, len(missing)))
    for p in problems:
        stats.problem(p, other=False)
    return not problems


# ---- clients ----------------------------------------------------------------------------------------

class Traffic:
    """The client threads, with a gate to pause them (for the idle baselines) and to stop them."""

    def __init__(self, env: Env, stats: Stats, args, tmp):
        self.env, self.stats, self.args, self.tmp = env, stats, args, tmp
        self.batcher = Batcher(env, args.batch)
        self.fetchctl = os.environ.get("FETCHCTL_BIN") or os.path.join(REPO, "build", "fetchctl")
        self.cond = threading.Condition()
        self.paused = False
        self.stopping = False
        self.busy = 0
        self.threads = []
        self.procs = set()  # live fetchctl Popen objects, killed at exit
        self.plock = threading.Lock()
        self.fatal = None   # set when something means the run cannot go on

    def start(self):
        for i in range(self.args.threads):
            t = threading.Thread(target=self._client, args=(i,), name="client%d" % i, daemon=True)
            t.start()
            self.threads.append(t)
        if self.env.redis:
            t = threading.Thread(target=self._queue_client, name="queue", daemon=True)
            t.start()
            self.threads.append(t)
        if self.args.kill_every > 0:
            t = threading.Thread(target=self._killer, name="killer", daemon=True)
            t.start()
            self.threads.append(t)

    def _enter(self):
        """Wait while paused; False when stopping. Counts the caller busy."""
        with self.cond:
            while self.paused and not self.stopping:
                self.cond.wait()
            if self.stopping:
                return False
            self.busy += 1
            return True

    def _leave(self):
        with self.cond:
            self.busy -= 1
            self.cond.notify_all()

    def pause(self, stop=False):
        """Let the running batches finish and start no more; returns once no client is busy."""
        with self.cond:
            self.paused = True
            if stop:
                self.stopping = True
            self.cond.notify_all()
            deadline = time.monotonic() + BATCH_TIMEOUT + 30
            while self.busy and time.monotonic() < deadline:
                self.cond.wait(1)
            return self.busy == 0

    def resume(self):
        with self.cond:
            self.paused = False
            self.cond.notify_all()

    def _write(self, batch, tag):
        path = os.path.join(self.tmp, "batch-%s.txt" % tag)
        with open(path, "w") as f:
            f.write("".join(u + "\n" for u, _ in batch))
        return path

    def _popen(self, path, args=("submit",)):
        p = subprocess.Popen([self.fetchctl, "-s", self.env.daemon.sock, "-q"] + list(args) + [path],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with self.plock:
            self.procs.add(p)
        return p

    def _done(self, p):
        with self.plock:
            self.procs.discard(p)

    def kill_all(self):
        with self.plock:
            procs = list(self.procs)
        for p in procs:
            if p.poll() is None:
                p.kill()

    def _client(self, i):
        rnd = random.Random("%s-client-%d" % (self.args.seed, i))
        n = 0
        while self._enter():
            try:
                n += 1
                tag = "c%d.%d" % (i, n)
                batch = self.batcher.batch(tag, rnd)
                # every 4th batch keeps a WARC file and body files, every 4th (offset) runs detached
                mode = {0: "capture", 2: "detach"}.get(n % 4, "plain")
                self._run(batch, tag, rnd, stop_for=0, mode=mode)
            except Exception as e:  # noqa: BLE001 - a bug here must end the run, visibly
                self.fatal = "client %d: %s: %s" % (i, type(e).__name__, e)
                self.stats.problem(self.fatal)
            finally:
                self._leave()
            if self.fatal:
                return

    def _queue_client(self):
        """Batches through the Redis queue: enqueue, then drain until each URL has its result."""
        rnd = random.Random("%s-queue" % self.args.seed)
        n = 0
        while self._enter():
            try:
                n += 1
                self._run_queue(self.batcher.batch("q%d" % n, rnd), "q%d" % n)
            except Exception as e:  # noqa: BLE001 - a bug here must end the run, visibly
                self.fatal = "queue client: %s: %s" % (type(e).__name__, e)
                self.stats.problem(self.fatal)
            finally:
                self._leave()
            if self.fatal:
                return

    def _run_queue(self, batch, tag):
        path = self._write(batch, tag)
        what, url = "queue batch %s" % tag, self.env.redis.url
        try:
            p = subprocess.run([self.fetchctl, "--redis", url, "-q", "enqueue", path], capture_output=True,
                               text=True, timeout=60)
        finally:
            os.unlink(path)
        if p.returncode != 0:
            self.stats.problem("%s: enqueue exit %d: %s" % (what, p.returncode, p.stderr.strip()[:300]))
            return
        lines, deadline = [], time.monotonic() + BATCH_TIMEOUT
        while len(lines) < len(batch) and time.monotonic() < deadline:
            d = subprocess.run([self.fetchctl, "--redis", url, "-q", "--count", str(len(batch) - len(lines)),
                                "drain"], capture_output=True, text=True, timeout=60)
            if d.returncode != 0:
                self.stats.problem("%s: drain exit %d: %s" % (what, d.returncode, d.stderr.strip()[:300]))
                return
            lines += d.stdout.splitlines()
            if len(lines) < len(batch):
                time.sleep(0.2)
        check_results(self.stats, batch, lines, True, what)
        with self.stats.lock:
            self.stats.batches += 1
            self.stats.queued += 1

    def _detach(self, path, what):
        """submit --detach: the job's id, or None (a problem noted)."""
        p = subprocess.run([self.fetchctl, "-s", self.env.daemon.sock, "--json", "submit", "--detach", path],
                           capture_output=True, text=True, timeout=BATCH_TIMEOUT)
        try:
            return json.loads(p.stdout)["job"]
        except (ValueError, KeyError):
            self.stats.problem("%s: submit --detach exit %d: %s" % (what, p.returncode, p.stderr.strip()[:300]))
            return None

    def _check_capture(self, warc, outdir, lines, what):
        """The WARC's digests (tests/lib/warcread.py) and each body file's hash against its result."""
        import warcread
        try:
            recs = warcread.read(warc)
        except warcread.WarcError as e:
            self.stats.problem("%s: WARC: %s" % (what, e))
            return
        ok = [json.loads(l) for l in lines if l.strip()]
        ok = [r for r in ok if r.get("error") is None]
        if sum(1 for r in recs if r["type"] == "response") < len(ok):
            self.stats.problem("%s: WARC has fewer responses than successes" % what)
        for r in ok:
            try:
                with open(r["path"], "rb") as f:
                    if r["body_sha256"] and hashlib.sha256(f.read()).hexdigest() != r["body_sha256"]:
                        self.stats.problem("%s: body file of %s differs from its hash" % (what, r["url"]))
            except (OSError, TypeError) as e:
                self.stats.problem("%s: body file of %s: %s" % (what, r["url"], e))

    def _run(self, batch, tag, rnd, stop_for, mode="plain"):
        """Submit, wait, check everything. stop_for > 0: SIGSTOP the client that long mid-batch.
        mode: "capture" (--warc and --output-dir, both checked), "detach" (submit --detach, then
        results JOB), or "plain"."""
        path = self._write(batch, tag)
        what = "batch %s" % tag
        warc, outdir, args = None, None, ["submit"]
        if mode == "capture":
            warc = os.path.join(self.tmp, "warc-%s.warc.gz" % tag)
            outdir = os.path.join(self.tmp, "bodies-%s" % tag)
            args = ["submit", "--warc", warc, "--output-dir", outdir]
        elif mode == "detach":
            job = self._detach(path, what)
            if job is None:
                os.unlink(path)
                return
            args = ["results"]
            what = "job %s (batch %s)" % (job, tag)
        p = self._popen(job if mode == "detach" else path, args)
        try:
            if stop_for:
                time.sleep(rnd.uniform(0.1, 1.0))
                p.send_signal(signal.SIGSTOP)
                time.sleep(stop_for)
                p.send_signal(signal.SIGCONT)
            try:
                out, err = p.communicate(timeout=BATCH_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                self.stats.problem("batch %s (%d URLs) stuck: fetchctl still running after %d s, "
                                   "killed; %d result lines by then" % (
                                       tag, len(batch), BATCH_TIMEOUT, out.count(b"\n")))
                return
        finally:
            self._done(p)
            os.unlink(path)
        text = out.decode("utf-8", "replace")
        if warc:
            if p.returncode in (0, 5):
                self._check_capture(warc, outdir, text.splitlines(), what)
            if os.path.exists(warc):
                os.unlink(warc)
            shutil.rmtree(outdir, ignore_errors=True)
        if p.returncode not in (0, 5):
            self.stats.problem("%s: fetchctl exit %d: %s" % (what, p.returncode,
                                                           err.decode("utf-8", "replace").strip()[:500]))
        want_rc = 5 if any(x.classes for _, x in batch) else 0
        if p.returncode in (0, 5) and p.returncode != want_rc:
            self.stats.problem("%s: fetchctl exit %d, expected %d" % (what, p.returncode, want_rc))
        check_results(self.stats, batch, text.splitlines(), True, what)
        with self.stats.lock:
            self.stats.batches += 1
            if stop_for:
                self.stats.stopped += 1

    def _killer(self):
        rnd = random.Random("%s-killer" % self.args.seed)
        n = 0
        while True:
            # sleep kill_every..2*kill_every seconds, waking up early when told to stop
            with self.cond:
                self.cond.wait_for(lambda: self.stopping,
                                   timeout=rnd.uniform(self.args.kill_every, 2 * self.args.kill_every))
            if not self._enter():
                return
            try:
                n += 1
                tag = "k%d" % n
                batch = self.batcher.batch(tag, rnd, slow=True)
                if n % 3 == 0:  # every third: stopped for 3 s, continued, checked in full
                    self._run(batch, tag, rnd, stop_for=3.0)
                else:
                    self._kill_one(batch, tag, rnd)
            except Exception as e:  # noqa: BLE001
                self.fatal = "killer: %s: %s" % (type(e).__name__, e)
                self.stats.problem(self.fatal)
            finally:
                self._leave()
            if self.fatal:
                return

    def _kill_one(self, batch, tag, rnd):
        """Submit and SIGKILL the client part way through; check the results that did come."""
        path = self._write(batch, tag)
        p = self._popen(path)
        chunks = []
        reader = threading.Thread(target=lambda: chunks.append(p.stdout.read()), daemon=True)
        reader.start()
        try:
            time.sleep(rnd.uniform(0.2, 2.5))
            finished = p.poll() is not None
            p.kill()
            p.wait()
            reader.join(10)
            p.stderr.read()
        finally:
            self._done(p)
            os.unlink(path)
        text = b"".join(chunks).decode("utf-8", "replace")
        lines = text.split("\n")[:-1]  # the part after the last newline may be cut short
        check_results(self.stats, batch, lines, finished, "killed batch %s" % tag)
        with self.stats.lock:
            self.stats.killed += 1


# ---- sampling ---------------------------------------------------------------------------------------

def proc_sample(pid):
    """{"rss": KiB, "hwm": KiB, "threads": n, "fds": n} of a live process; None if it is gone."""
    try:
        out = {}
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k == "VmRSS":
                    out["rss"] = int(v.split()[0])
                elif k == "VmHWM":
                    out["hwm"] = int(v.split()[0])
                elif k == "Threads":
                    out["threads"] = int(v.split()[0])
        out["fds"] = len(os.listdir("/proc/%d/fd" % pid))
        return out
    except (OSError, ValueError):
        return None


def heap_in_use(daemon):
    """(system KiB, in use KiB) of fetchd's malloc heap, from glibc's malloc_stats() called in the
    daemon by gdb (it prints to fetchd's stderr, the log); None when that fails. Only while idle:
    the daemon stops while gdb is attached."""
    before = len(daemon.log_text())
    try:
        p = subprocess.run(["gdb", "-p", str(daemon.pid), "-batch", "-ex", "call (void)malloc_stats()"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60, text=True,
                           errors="replace")
    except (OSError, subprocess.TimeoutExpired) as e:
        log("heap: gdb failed: %s" % e)
        return None
    for _ in range(20):
        m = re.findall(r"Total \(incl\. mmap\):\s*system bytes\s*=\s*(\d+)\s*in use bytes\s*=\s*(\d+)",
                       daemon.log_text()[before:])
        if m:
            return int(m[-1][0]) // 1024, int(m[-1][1]) // 1024
        time.sleep(0.1)
    log("heap: no malloc_stats() output in fetchd's log; gdb said: %s" % (p.stdout + p.stderr)[-1000:])
    return None


def fd_targets(pid):
    out = {}
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            t = re.sub(r"\[\d+\]", "", t)  # socket:[123] -> socket:
            out[t] = out.get(t, 0) + 1
    except OSError:
        pass
    return out


class Soak:
    def __init__(self, args):
        self.args = args
        self.rows = []       # every sample: dict
        self.t0 = None
        self.traffic_s = 0.0
        self.notes = []
        self.traffic = None

    def sample(self, env, stats, phase):
        s = proc_sample(env.daemon.pid) if env.daemon.alive() else None
        snap = stats.snapshot()
        row = {"t": time.monotonic() - self.t0, "phase": phase, "rss": None, "hwm": None,
               "threads": None, "fds": None}
        if s:
            row.update(s)
        row.update(snap)
        self.rows.append(row)
        return row

    def idle_sample(self, env, stats, phase, want_fds=None):
        """After the traffic stopped: wait for keep-alive connections to expire and the fd count to
        settle (to want_fds, when given), then sample."""
        time.sleep(KEEPALIVE_S + 1.0)
        deadline = time.monotonic() + 15
        last, steady_since = None, time.monotonic()
        while time.monotonic() < deadline and env.daemon.alive():
            s = proc_sample(env.daemon.pid)
            if s is None:
                break
            if s["fds"] != last:
                last, steady_since = s["fds"], time.monotonic()
            if want_fds is not None and s["fds"] <= want_fds and time.monotonic() - steady_since >= 1:
                break
            if want_fds is None and time.monotonic() - steady_since >= 2:
                break
            time.sleep(0.25)
        row = self.sample(env, stats, phase)
        if self.args.heap:
            row["heap"] = heap_in_use(env.daemon)
        return row


def fmt_t(t):
    return "%d:%02d" % (int(t) // 60, int(t) % 60)


TABLE_COLS = ["time", "phase", "RSS KiB", "fds", "thr", "batches", "killed", "URLs", "ok", "protocol",
              "timeout", "too_large", "connect", "dns", "blocked", "url", "tls", "internal", "tolerated",
              "wrong", "missing"]


def table_row(r):
    c = r["by_class"]
    v = lambda x: "-" if x is None else str(x)  # noqa: E731
    return [fmt_t(r["t"]), r["phase"], v(r["rss"]), v(r["fds"]), v(r["threads"]), str(r["batches"]),
            str(r["killed"]), str(r["urls"]), str(r["ok"])] + [str(c.get(k, 0)) for k in (
                "protocol", "timeout", "too_large", "connect", "dns", "blocked", "url", "tls",
                "internal")] + [str(r["tolerated"]), str(r["wrong"]), str(r["missing"])]


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


class Printer:
    """Prints table rows to stdout as they come, in fixed-width columns."""
    WIDTHS = [6, 9, 8, 4, 4, 7, 6, 8, 8, 8, 7, 9, 7, 5, 7, 5, 5, 8, 9, 5, 7]

    def __init__(self):
        self.header_done = False

    def line(self, cells):
        return " ".join(c.rjust(w) for c, w in zip(cells, self.WIDTHS))

    def row(self, r):
        if not self.header_done:
            print(self.line(TABLE_COLS), flush=True)
            self.header_done = True
        print(self.line(table_row(r)), flush=True)


# ---- main -------------------------------------------------------------------------------------------

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="fetchd soak test: mixed good and hostile traffic through "
                                             "one fetchd; RSS, fds and threads must stay flat.")
    ap.add_argument("--minutes", type=float, default=10.0, help="traffic time (default 10)")
    ap.add_argument("--threads", type=int, default=3, help="concurrent fetchctl clients (default 3)")
    ap.add_argument("--batch", type=int, default=300,
                    help="plain nginx URLs per batch; the other kinds come on top (default 300)")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples (default 5)")
    ap.add_argument("--rows", type=int, default=20, help="about this many table rows (default 20)")
    ap.add_argument("--warmup", type=float, default=None,
                    help="warm-up seconds before the baseline (default: 10%% of the run, at most 60)")
    ap.add_argument("--kill-every", type=float, default=10.0,
                    help="a killed (or stopped) client every N..2N seconds; 0: never (default 10)")
    ap.add_argument("--seed", default="soak", help="random seed (default 'soak')")
    ap.add_argument("--no-tls", action="store_true", help="leave https out")
    ap.add_argument("--no-dns", action="store_true", help="leave names (dnsmasq) out")
    ap.add_argument("--no-queue", action="store_true", help="leave the Redis queue out")
    ap.add_argument("--heap", action="store_true",
                    help="also report fetchd's malloc heap in use at the idle samples (attaches gdb to "
                         "call glibc's malloc_stats(); needs gdb)")
    ap.add_argument("--out", default=OUT_DIR, help="report directory (default build/soak)")
    a = ap.parse_args(argv)
    if a.minutes <= 0 or a.threads < 1 or a.batch < 1 or a.interval <= 0:
        ap.error("--minutes, --threads, --batch and --interval must be positive")
    if a.warmup is None:
        a.warmup = min(60.0, 0.1 * a.minutes * 60)
    return a


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt()


def main(argv=None):
    args = parse_args(argv)
    for b in ("FETCHD_BIN", "FETCHCTL_BIN"):
        path = os.environ.get(b) or os.path.join(REPO, "build", b.split("_")[0].lower())
        if not os.access(path, os.X_OK):
            print("soak: %s not found; run `make` first" % path, file=sys.stderr)
            return 2
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="fetchd-soak-")
    env = Env(args, tmp)
    stats = Stats()
    soak = Soak(args)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        try:
            env.start()
        except Exception as e:  # noqa: BLE001
            print("soak: setup failed: %s: %s" % (type(e).__name__, e), file=sys.stderr)
            return 2
        return run(args, env, stats, soak, tmp)
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 130
    finally:
        if soak.traffic is not None:
            soak.traffic.kill_all()
        env.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, env, stats, soak, tmp):
    d = env.daemon
    printer = Printer()
    total_s = args.minutes * 60
    soak.t0 = time.monotonic()
    soak.traffic = traffic = Traffic(env, stats, args, tmp)
    fd_start_targets = fd_targets(d.pid)
    start = soak.sample(env, stats, "start")
    if args.heap:
        start["heap"] = heap_in_use(d)
    printer.row(start)
    log("soak for %g min (%d s warm-up), %d clients, %d plain URLs per batch%s%s" % (
        args.minutes, args.warmup, args.threads, args.batch,
        ", https" if env.tls_port else "", ", names via dnsmasq" if env.dns else ""))
    traffic.start()

    row_every = max(args.interval, round(total_s / max(1, args.rows) / args.interval) * args.interval)
    next_sample = args.interval
    next_row = row_every
    traffic_t = 0.0          # seconds of traffic so far (the pause for the baseline not counted)
    last_tick = time.monotonic()
    baseline = None
    died = False
    base_targets = {}
    while traffic_t < total_s:
        time.sleep(min(0.5, max(0.05, next_sample - traffic_t)))
        now = time.monotonic()
        traffic_t += now - last_tick
        last_tick = now
        if not d.alive():
            died = True
            stats.problem("fetchd died (exit %s); log tail:\n%s" % (d.proc.poll(), d.log_text()[-3000:]))
            break
        if traffic.fatal:
            break
        if baseline is None and traffic_t >= args.warmup:
            log("warm-up over after %s: pausing traffic for the idle baseline" % fmt_t(traffic_t))
            busy = soak.sample(env, stats, "warm")
            printer.row(busy)
            if not traffic.pause():
                stats.problem("clients still busy %d s after the pause" % (BATCH_TIMEOUT + 30))
            baseline = soak.idle_sample(env, stats, "baseline")
            base_targets = fd_targets(d.pid)
            printer.row(baseline)
            log("baseline: RSS %s KiB, %s fds, %s threads" % (baseline["rss"], baseline["fds"],
                                                              baseline["threads"]))
            traffic.resume()
            last_tick = time.monotonic()
            continue
        if traffic_t >= next_sample:
            r = soak.sample(env, stats, "busy")
            next_sample += args.interval
            if traffic_t >= next_row:
                printer.row(r)
                next_row += row_every
    soak.traffic_s = traffic_t

    log("traffic over after %s: letting the last batches finish" % fmt_t(traffic_t))
    if not traffic.pause(stop=True):
        stats.problem("clients still busy %d s after the end" % (BATCH_TIMEOUT + 30))
        traffic.kill_all()
    last_busy = soak.rows[-1] if soak.rows else None
    if baseline is None:  # a run shorter than the warm-up, or it died first
        baseline = start
        soak.notes.append("no baseline after a warm-up (the run ended first): the start is the baseline")
    end = soak.idle_sample(env, stats, "end", want_fds=baseline["fds"])
    printer.row(end)
    end_targets = fd_targets(d.pid) if d.alive() else {}

    # connections the servers still see from fetchd
    leftovers = {}
    try:
        leftovers["hostile"] = max(0, env.hostile.stats()["raw_open"] - 1)  # minus the /_stats one
    except Exception as e:  # noqa: BLE001
        leftovers["hostile"] = "? (%s)" % e
    try:
        if env.origin.has_stub_status:
            leftovers["nginx"] = env.origin.active_connections()
    except Exception as e:  # noqa: BLE001
        leftovers["nginx"] = "? (%s)" % e

    alive_at_end = d.alive() and not died
    rc = d.stop()
    logtext = d.log_text()
    m = re.findall(r"stopped (ok=.*)", logtext)
    stop_stats = m[-1] if m else None
    warn_lines = [ln for ln in logtext.splitlines() if re.search(r"\b(warn|error|crit)\b", ln)]

    # ---- verdict
    snap = stats.snapshot()
    fails = []
    if not alive_at_end:
        fails.append("fetchd died")
    elif rc != 0:
        fails.append("fetchd exit %s on SIGTERM" % rc)
    if snap["missing"]:
        fails.append("%d missing results" % snap["missing"])
    if snap["wrong"]:
        fails.append("%d wrong results" % snap["wrong"])
    if snap["other"]:
        fails.append("%d other problems (see report)" % snap["other"])
    if traffic.fatal:
        fails.append("soak itself failed: " + traffic.fatal)
    rss_b, rss_e = baseline.get("rss"), end.get("rss")
    if rss_b is None or rss_e is None:
        fails.append("no RSS figures")
    else:
        limit = rss_b * (1 + RSS_SLACK_PCT / 100.0) + RSS_SLACK_KIB
        if rss_e > limit:
            fails.append("RSS grew %+d KiB (limit %+d)" % (rss_e - rss_b, limit - rss_b))
    if baseline.get("fds") is None or end.get("fds") != baseline["fds"]:
        fails.append("fds %s at the end, %s at the baseline" % (end.get("fds"), baseline.get("fds")))
    if baseline.get("threads") != end.get("threads"):
        fails.append("threads %s at the end, %s at the baseline" % (end.get("threads"),
                                                                    baseline.get("threads")))
    for k, v in leftovers.items():
        if v != 0:
            fails.append("%s still has %s connections open" % (k, v))
    if snap["batches"] == 0:
        fails.append("no batch completed")
    verdict = "PASS" if not fails else "FAIL"

    def delta(a, b):
        return "%+d" % (b - a) if a is not None and b is not None else "?"
    line = ("soak: %g minutes, %d URLs, RSS start %s KiB end %s KiB (%s), fds start %s end %s, "
            "%d missing results, %d wrong, fetchd %s: %s" % (
                args.minutes, snap["urls"], rss_b, rss_e, delta(rss_b, rss_e), baseline.get("fds"),
                end.get("fds"), snap["missing"], snap["wrong"],
                "alive" if alive_at_end else "DEAD", verdict))

    # ---- report
    checks = [
        "fetchd alive through the run: %s; exit code on SIGTERM: %s" % ("yes" if alive_at_end else "NO", rc),
        "results checked: %d in %d full batches (%d of them through the Redis queue, %d with the client "
        "stopped and continued) and %d killed batches; missing %d, wrong %d, tolerated %d" % (
            snap["urls"], snap["batches"], snap["queued"], snap["stopped"], snap["killed"], snap["missing"],
            snap["wrong"], snap["tolerated"]),
        "RSS KiB: start %s, baseline (idle, after warm-up) %s, end (idle) %s (%s; limit +%d%% + %d KiB), "
        "peak VmHWM %s" % (start.get("rss"), rss_b, rss_e, delta(rss_b, rss_e), RSS_SLACK_PCT,
                           RSS_SLACK_KIB, end.get("hwm")),
        "fds: start %s, baseline %s, end %s; threads: start %s, baseline %s, end %s" % (
            start.get("fds"), baseline.get("fds"), end.get("fds"), start.get("threads"),
            baseline.get("threads"), end.get("threads")),
        "connections left open at the end: %s" % ", ".join("%s %s" % kv for kv in leftovers.items()),
        "fetchd log: %d warn/error lines; %s" % (len(warn_lines), "stopped " + stop_stats if stop_stats
                                                 else "no 'stopped' line"),
    ]
    if args.heap:
        hs = [(r["phase"], r.get("heap")) for r in (start, baseline, end)]
        checks.append("malloc heap (system KiB, in use KiB) at the idle samples: " +
                      ", ".join("%s %s" % (p, h if h else "?") for p, h in hs))
    busy_rows = [r for r in soak.rows if r["phase"] == "busy" and r["t"] > 0 and r.get("rss")]
    if len(busy_rows) >= 4:
        half = len(busy_rows) // 2
        a = sum(r["rss"] for r in busy_rows[:half]) / half
        b = sum(r["rss"] for r in busy_rows[half:]) / (len(busy_rows) - half)
        checks.append("busy RSS (mean of samples under traffic): first half %.0f KiB, second half %.0f "
                      "KiB (%+.0f)" % (a, b, b - a))
    for c in checks:
        print("soak: " + c)
    for f in fails:
        print("soak: FAIL: " + f)
    print(line, flush=True)

    write_report(args, env, stats, soak, start, baseline, end, last_busy, checks, fails, line,
                 warn_lines, base_targets, end_targets, fd_start_targets)
    return 0 if verdict == "PASS" else 1


def write_report(args, env, stats, soak, start, baseline, end, last_busy, checks, fails, line,
                 warn_lines, base_targets, end_targets, start_targets):
    snap = stats.snapshot()
    out = ["# fetchd soak report", "",
           "`python3 tools/soak.py %s` on %s, %s" % (" ".join(sys.argv[1:]), os.uname().nodename,
                                                     time.strftime("%Y-%m-%d %H:%M:%S")), "",
           "**" + line + "**", ""]
    if fails:
        out += ["Failed checks:", ""] + ["- " + f for f in fails] + [""]
    out += ["## Checks", ""] + ["- " + c for c in checks] + [""]
    out += ["## Setup", "",
            "- fetchd: `%s`, config:" % " ".join(env.daemon.argv), "",
            "```ini", open(env.daemon.conf_path).read().strip(), "```", "",
            "- %g minutes of traffic (warm-up %d s), %d clients, %d plain nginx URLs per batch plus "
            "the other kinds; a killed or stopped client every %g-%g s; samples every %g s; seed %r"
            % (args.minutes, args.warmup, args.threads, args.batch, args.kill_every,
               2 * args.kill_every, args.interval, args.seed),
            "- nginx origin on %d%s; hostile server on %d; refused port %d%s" % (
                env.origin.port, ", https on %d" % env.tls_port if env.tls_port else "",
                env.hostile.port, env.refused_port,
                "; dnsmasq on %d" % env.dns.port if env.dns else "")]
    out += ["- note: " + n for n in env.notes + soak.notes] + [""]
    out += ["## Samples", "",
            "Cumulative counts. `start`: before any traffic; `warm`: end of the warm-up, under "
            "traffic; `baseline`: idle after the warm-up (traffic paused, keep-alive expired); "
            "`busy`: under traffic; `end`: idle after the last batch.", ""]
    out.append(md_table(TABLE_COLS, [table_row(r) for r in soak.rows]))
    out += ["", "## Outcomes by scenario", "",
            md_table(["scenario", "results", "outcomes"],
                     [[k, str(sum(v.values())), ", ".join("%s %d" % kv for kv in sorted(
                         v.items(), key=lambda kv: -kv[1]))] for k, v in sorted(stats.outcomes.items())]),
            ""]
    if stats.problems:
        out += ["## Problems (first %d of %d)" % (len(stats.problems), stats.nproblems), "", "```"]
        out += stats.problems + ["```", ""]
    if base_targets != end_targets or start_targets != base_targets:
        out += ["## Descriptors by target", "", "start: `%s`" % json.dumps(start_targets, sort_keys=True),
                "", "baseline: `%s`" % json.dumps(base_targets, sort_keys=True), "",
                "end: `%s`" % json.dumps(end_targets, sort_keys=True), ""]
    out += ["## fetchd warnings and errors (%d lines; first 30)" % len(warn_lines), "", "```"]
    out += warn_lines[:30] + ["```", ""]
    path = os.path.join(args.out, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(out))
    with open(os.path.join(args.out, "samples.csv"), "w") as f:
        f.write("t,phase,rss_kib,hwm_kib,fds,threads,batches,killed,urls,ok,%s,tolerated,wrong,missing\n"
                % ",".join(CLASSES))
        for r in soak.rows:
            f.write("%.1f,%s,%s,%s,%s,%s,%d,%d,%d,%d,%s,%d,%d,%d\n" % (
                r["t"], r["phase"], r["rss"], r["hwm"], r["fds"], r["threads"], r["batches"],
                r["killed"], r["urls"], r["ok"], ",".join(str(r["by_class"].get(c, 0)) for c in CLASSES),
                r["tolerated"], r["wrong"], r["missing"]))
    log("report: %s (samples.csv beside it)" % os.path.relpath(path, REPO))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""test_dns.py - fetchd's name resolution and address policy end to end, against a REAL resolver.

Each test starts dnsmasq on a free high port of 127.0.0.1 with a private zone: --local=/test/ (and
--local=/#/, see Dnsmasq) so that unknown names get NXDOMAIN; --addn-hosts, --host-record (with
per-record TTLs) and --txt-record for the records; --server=/zone/ to forward a zone to a small UDP
server of this file that answers SERVFAIL or REFUSED, lists addresses in a fixed order, or never
answers; --log-queries into a file, so that a test counts the queries that reached the resolver, per
name and type. fetchd uses it through [dns] servers. The origins are nginx and the hostile server on
127.0.0.1, plus in-process hostile servers on [::1] and 127.0.0.2 where a test must tell apart which
address fetchd connected to. Everything stays on loopback.

Covered: one query per name at volume (20,000 URLs over 2,000 names, two ports each), TTL expiry
within min_ttl_s/max_ttl_s (and no lookup while a pooled connection is reused), negative caching
(NXDOMAIN, no address records) and negative_ttl_s, cache_size eviction, falling back to the next
address, [dns] family, [dns] hosts_file, a hung lookup while the rest of the batch flows, the address
policy (the built-in refusal of loopback in every IPv4 spelling, IPv6, IPv4-mapped, from DNS and from
the hosts file; allow_addresses; deny_addresses winning; only the permitted addresses of a name
used) and the reason given for each kind of DNS failure.

Run from the repository root:  python3 tests/integration/test_dns.py [NAME-FILTER...]
"""

import collections
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (_LIVE, LOOPBACK_ALLOW, REPO, Fetchd, Hostile, Origin, Suite, by_url,  # noqa: E402
                     free_port, free_udp_tcp_port, ipv6_loopback, pattern_sha256, submit, wait_until)
from dnsmasq import Dnsmasq, _skip_name, dns_query  # noqa: E402
import hostile  # noqa: E402  (tests/lib is on the path now)

suite = Suite(__file__, timeout=40)

# ---- servers this file starts (stopped at exit with the harness's) ----------------------------------

class UdpServer:
    """A UDP "DNS server" on 127.0.0.1 for dnsmasq to forward a zone to. rcode=None: a blackhole that
    never answers (it does not even read). Else every query gets that rcode, with the A records of
    answers {name: [address...]} in exactly that order (TTL 60) for a NOERROR A query."""

    def __init__(self, rcode=None, answers=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.rcode = rcode
        self.answers = answers or {}
        self._stop = False
        self._thread = None
        if rcode is not None:
            self.sock.settimeout(0.1)
            self._thread = threading.Thread(target=self._serve, daemon=True)
            self._thread.start()
        _LIVE.append(self)

    def _reply(self, b: bytes) -> bytes:
        qid, flags = struct.unpack(">HH", b[:4])
        qend = _skip_name(b, 12)
        qtype = struct.unpack(">H", b[qend:qend + 2])[0]
        labels, o = [], 12
        while b[o]:
            labels.append(b[o + 1:o + 1 + b[o]].decode().lower())
            o += 1 + b[o]
        ips = self.answers.get(".".join(labels), []) if self.rcode == 0 and qtype == 1 else []
        head = struct.pack(">HHHHHH", qid, 0x8480 | (flags & 0x0100) | self.rcode, 1, len(ips), 0, 0)
        rrs = b"".join(struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(ip) for ip in ips)
        return head + b[12:qend + 4] + rrs

    def _serve(self):
        while not self._stop:
            try:
                b, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.sock.sendto(self._reply(b), peer)
            except (OSError, IndexError, struct.error, UnicodeDecodeError):
                pass

    def stop(self):
        self._stop = True
        if self._thread:
            self._thread.join(2)
            self._thread = None
        self.sock.close()
        if self in _LIVE:
            _LIVE.remove(self)


class _Server(hostile.HostileServer):
    """The hostile server in this process, on any address: IPv6 too (the original is IPv4 only)."""

    def start(self) -> int:
        ls = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((self.host, self.port))
        ls.listen(self.backlog)
        ls.settimeout(0.2)
        self._listener = ls
        self.port = ls.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="hostile-accept", daemon=True)
        self._thread.start()
        _LIVE.append(self)
        return self.port

    def stop(self):
        super().stop()
        if self in _LIVE:
            _LIVE.remove(self)


def servers_on_one_port(*hosts):
    """A hostile server (subprocess) on 127.0.0.1:P plus in-process ones on each of `hosts`, all on
    the same port P (so one URL reaches whichever address fetchd picks). Returns (Hostile, [servers])."""
    for _attempt in range(10):
        h = Hostile()
        extra = []
        try:
            for host in hosts:
                s = _Server(host=host, port=h.port)
                s.start()
                extra.append(s)
            return h, extra
        except OSError:  # the port is taken on that address: try another
            for s in extra:
                s.stop()
            h.stop()
    raise RuntimeError("no port free on 127.0.0.1 and %s" % (hosts,))


# ---- fetchd helpers -----------------------------------------------------------------------------------

def dns_conf(dns, **dns_keys):
    """A fetchd conf using `dns` as its resolver; no hosts file unless given ([dns] keys as kwargs)."""
    keys = {"servers": dns.server, "timeout_ms": 1000, "tries": 2, "hosts_file": ""}
    keys.update(dns_keys)
    return {"dns": keys}


def conf_accepts(text: str) -> bool:
    """Does this fetchd build accept the configuration text (fetchd -t)?"""
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write(text)
    try:
        binary = os.environ.get("FETCHD_BIN") or os.path.join(REPO, "build", "fetchd")
        return subprocess.run([binary, "-t", "-c", f.name], capture_output=True, timeout=10).returncode == 0
    finally:
        os.unlink(f.name)


def stop_stats(d) -> dict:
    """Stop fetchd and return the numbers of its "stopped ok=..." log line."""
    assert d.stop() == 0, d.log_text()[-2000:]
    m = re.search(r"stopped (ok=.*)", d.log_text())
    assert m, d.log_text()[-2000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


def ok(r, sha=None, ip="127.0.0.1"):
    assert r["error"] is None and r["status"] == 200, r
    if sha is not None:
        assert r["body_sha256"] == sha, r
    if ip is not None:
        assert r["ip"] == ip, r


def failed(r, cls, message, ip=None):
    """r failed with exactly this class and message, without a response."""
    assert r["error"] == {"class": cls, "message": message}, r
    assert r["status"] is None and r["body_sha256"] is None and r["ip"] == ip, r


# ---- 1. volume: one query per name --------------------------------------------------------------------

@suite.test(timeout=50)
def twenty_thousand_urls_over_two_thousand_names_make_one_query_per_name():
    names = ["n%04d.bulk.test" % i for i in range(2000)]
    with Dnsmasq(hosts=[("127.0.0.1", n) for n in names], local_ttl=600) as dns:
        # nginx listens on two ports: each name is two fetchd hosts (scheme+name+port) sharing a lookup
        port2 = free_port()
        with Origin(extra_conf="    listen 127.0.0.1:%d backlog=4096;" % port2) as o:
            # A burst of 2 x 128 queries can overflow dnsmasq's socket buffer (the kernel drops some):
            # those are asked again after timeout_ms, and a busy machine gets three tries.
            conf = dns_conf(dns, min_ttl_s=600, timeout_ms=2000, tries=3)
            conf["fetch"] = {"max_inflight": 500, "per_host_connections": 4}
            with Fetchd(conf) as d:
                paths = ["/1k.html", "/16k.html"]
                urls = []
                for r in range(10):  # interleaved: every name once per round
                    for i, n in enumerate(names):
                        port = o.port if r % 2 == 0 else port2
                        urls.append("http://%s:%d%s?r=%d" % (n, port, paths[i % 2], r))
                t0 = time.monotonic()
                rc, results, err = submit(d.sock, urls, timeout=45)
                took = time.monotonic() - t0
                st = stop_stats(d)
        qs = dns.queries()
    per_name = collections.Counter(n for t, n in qs if t == "A")
    bad = [r for r in results if r["error"]]
    # a summary rather than 20,000 results when it goes wrong
    assert not bad and rc == 0, (
        "%d of %d URLs failed in %.1fs: %s; e.g. %s; A queries per name: %s; fetchd: %s" % (
            len(bad), len(results), took,
            dict(collections.Counter(r["error"]["message"].split(": ", 1)[-1] for r in bad)),
            bad[0]["error"]["message"], dict(collections.Counter(per_name[n] for n in names)),
            {k: v for k, v in st.items() if k.startswith("dns_")}))
    assert len(results) == 20000, len(results)
    got = by_url(results)
    assert len(got) == 20000
    for i, u in enumerate(urls):
        ok(got[u], o.sha256[paths[(i % 2000) % 2]])
    # (only the names themselves: with a search domain in resolv.conf and a high ndots, c-ares may
    # also ask for name.<search domain>)
    a = collections.Counter(n for t, n in qs if t == "A" and n.endswith(".bulk.test"))
    aaaa = collections.Counter(n for t, n in qs if t == "AAAA" and n.endswith(".bulk.test"))
    assert set(a) == set(names), (len(a), sorted(set(a) ^ set(names))[:5])
    assert all(c == 1 for c in a.values()), sorted((c, n) for n, c in a.items() if c != 1)[:5]
    assert set(aaaa) <= set(names) and all(c <= 1 for c in aaaa.values()), \
        sorted((c, n) for n, c in aaaa.items() if c > 1 or n not in names)[:5]
    assert not [q for q in qs if q[1].endswith(".bulk.test") and q[0] not in ("A", "AAAA")], qs[:5]
    # fetchd counts one lookup (one getaddrinfo: its A and AAAA queries) per name; the second host of
    # each name (the other port), and any host dropped and re-created later, found the lookup in
    # flight (coalesced) or its answer in the cache
    assert st["dns_queries"] == 2000, st
    assert st["dns_hosts_file_hits"] == 0, st
    assert st["dns_coalesced"] + st["dns_cache_hits"] >= 2000, st
    assert st["ok"] == 20000 and st["failed"] == 0, st
    print("   20000 URLs in %.2fs; %d A + %d AAAA queries; fetchd: %s" % (
        took, sum(a.values()), sum(aaaa.values()),
        " ".join("%s=%d" % (k, st[k]) for k in ("dns_queries", "dns_cache_hits", "dns_coalesced"))))


# ---- 2. TTL -------------------------------------------------------------------------------------------

@suite.test
def answers_expire_after_their_ttl_bounded_by_min_and_max_ttl():
    # Per-record TTLs (--host-record=name,address,TTL); one fetchd per case, all sharing one wait.
    recs = ["--host-record=a.ttl.test,127.0.0.1,1", "--host-record=b.ttl.test,127.0.0.1,1",
            "--host-record=c.ttl.test,127.0.0.1,600", "--host-record=d.ttl.test,127.0.0.1,1",
            "--host-record=ttl%s,127.0.0.1,1" % Dnsmasq.CTL]
    with Dnsmasq(args=recs) as dns, Hostile() as h, Hostile() as hd:
        assert dns_query(dns.port, "ttl" + Dnsmasq.CTL)[1] == [("A", "127.0.0.1", 1)]  # per-record TTLs work
        gone = {"keepalive_idle_ms": 100}  # the pooled connection closes: the next fetch needs a new one
        daemons = {
            "a.ttl.test": Fetchd(dict(dns_conf(dns, min_ttl_s=0), fetch=gone)),  # TTL 1 s honoured
            "b.ttl.test": Fetchd(dict(dns_conf(dns), fetch=gone)),               # min_ttl_s 30 keeps it
            "c.ttl.test": Fetchd(dict(dns_conf(dns, max_ttl_s=1), fetch=gone)),  # TTL 600 s cut to 1 s
            # the host keeps its pooled connections: reusing one needs no lookup, a new one does
            "d.ttl.test": Fetchd(dict(dns_conf(dns, min_ttl_s=0),
                                      fetch={"keepalive_idle_ms": 30000, "per_host_connections": 3})),
        }
        try:
            def batch(name, n, tag, server=h, path="/ok?len=5"):
                urls = ["http://%s:%d%s&b=%s&i=%d" % (name, server.port, path, tag, i) for i in range(n)]
                rc, results, err = submit(daemons[name].sock, urls)
                assert rc == 0 and len(results) == n, results
                for r in results:
                    ok(r, pattern_sha256(5))
                return results

            for name in ("a.ttl.test", "b.ttl.test", "c.ttl.test"):
                batch(name, 1, "1")
            batch("d.ttl.test", 2, "1", hd, "/delay?ms=300&len=5")  # two connections, both pooled after
            assert hd.stats()["connections"] == 2, hd.stats()
            time.sleep(1.3)  # every 1 s TTL has run out
            wait_until(lambda: h.stats()["open"] == 0, timeout=3, what="pooled connections closed")
            for name in ("a.ttl.test", "b.ttl.test", "c.ttl.test"):
                r = batch(name, 1, "2")[0]
                if name == "b.ttl.test":
                    assert r["timings_ms"]["dns"] == 0, r  # from the cache
            batch("d.ttl.test", 2, "2", hd, "/delay?ms=300&len=5")  # both on the pooled connections
            assert hd.stats()["connections"] == 2, hd.stats()
            assert dns.count("d.ttl.test") == 1, dns.queries()
            batch("d.ttl.test", 3, "3", hd, "/delay?ms=300&len=5")  # two reused, one new: looked up again
            assert hd.stats()["connections"] == 3, hd.stats()
            expect = {"a.ttl.test": 2, "b.ttl.test": 1, "c.ttl.test": 2, "d.ttl.test": 2}
            assert {n: dns.count(n) for n in expect} == expect, dns.queries()
            st = {n: stop_stats(d) for n, d in daemons.items()}
            assert {n: st[n]["dns_queries"] for n in expect} == expect, st
            assert st["b.ttl.test"]["dns_cache_hits"] == 1, st
        finally:
            for d in daemons.values():
                d.stop()
                shutil.rmtree(d.dir, ignore_errors=True)


# ---- 3. negative caching ------------------------------------------------------------------------------

@suite.test
def nxdomain_is_cached():
    with Dnsmasq() as dns, Fetchd(dns_conf(dns)) as d:
        msg = "cannot resolve missing.test: no such host (NXDOMAIN)"
        for batch in range(2):
            rc, results, err = submit(d.sock, ["http://missing.test/a?b=%d" % batch,
                                               "http://missing.test:8080/b?b=%d" % batch])
            assert rc == 5 and len(results) == 2, (rc, results)
            for r in results:
                failed(r, "dns", msg)
                assert r["timings_ms"]["total"] == r["timings_ms"]["dns"], r
        assert dns.count("missing.test", "A") == 1, dns.queries()
        assert dns.count("missing.test", "AAAA") <= 1, dns.queries()
        st = stop_stats(d)
        # two hosts (ports 80 and 8080) per batch: one query, then coalesced or cached
        assert st["dns_queries"] == 1, st
        assert st["dns_coalesced"] + st["dns_cache_hits"] == 3 and st["dns_cache_hits"] >= 2, st


@suite.test
def negative_ttl_zero_asks_again():
    with Dnsmasq() as dns, Fetchd(dns_conf(dns, negative_ttl_s=0)) as d:
        for batch in range(2):
            rc, results, err = submit(d.sock, ["http://missing.test/?b=%d" % batch])
            failed(results[0], "dns", "cannot resolve missing.test: no such host (NXDOMAIN)")
        assert dns.count("missing.test", "A") == 2, dns.queries()
        assert stop_stats(d)["dns_queries"] == 2


@suite.test
def cache_size_evicts_the_least_recently_used_name():
    recs = [("127.0.0.1", n) for n in ("a.lru.test", "b.lru.test", "c.lru.test")]
    with Dnsmasq(hosts=recs) as dns, Hostile() as h:
        # keepalive 0: no pooled connection, so every batch starts from the cache
        conf = dict(dns_conf(dns, cache_size=2), fetch={"keepalive_idle_ms": 0})
        if conf_accepts("[daemon]\nworkers = 1\n"):
            conf["daemon"] = {"workers": 1}  # each worker has a cache of its own: one cache here
        with Fetchd(conf) as d:
            for i, n in enumerate(["a", "b", "a", "c", "a", "b"]):
                rc, results, err = submit(d.sock, ["http://%s.lru.test:%d/ok?len=2&i=%d" % (n, h.port, i)])
                assert rc == 0, results
                ok(results[0], pattern_sha256(2))
            # a, b: asked; a: cached; c: asked, evicts b (a was used more recently); a: cached; b: asked
            assert [n for t, n in dns.queries() if t == "A" and n.endswith(".lru.test")] == \
                ["a.lru.test", "b.lru.test", "c.lru.test", "b.lru.test"], dns.queries()
            st = stop_stats(d)
            assert st["dns_queries"] == 4 and st["dns_cache_hits"] == 2, st


# ---- 4. several addresses -----------------------------------------------------------------------------

def _connect_attempts(log: str):
    """(address, error) of every failed connect that fetchd followed with the next address (debug)."""
    return re.findall(r"connect to (\S+) failed \((.*?)\), trying the next address", log)


@suite.test
def connect_falls_back_to_the_next_address():
    # 127.0.0.2 and 127.0.0.3 refuse connections; only 127.0.0.1 listens. ordered.test is forwarded to
    # a server that lists them in exactly this order (--cache-size=0: dnsmasq relays that answer as it
    # is; from its cache it would rotate it); many.test comes from dnsmasq's hosts file, whose answers
    # dnsmasq rotates from one query to the next (so there, any order is right)
    order = ["127.0.0.2", "127.0.0.3", "127.0.0.1"]
    upstream = UdpServer(rcode=0, answers={"ordered.test": order})
    recs = [(ip, "many.test") for ip in order]
    try:
        args = ["--server=/ordered.test/127.0.0.1#%d" % upstream.port, "--cache-size=0"]
        with Dnsmasq(hosts=recs, args=args) as dns, Hostile() as h:
            for _ in range(3):
                assert [ip for _t, ip, _ttl in dns_query(dns.port, "ordered.test")[1]] == order
            conf = dns_conf(dns)
            conf["daemon"] = {"log_level": "debug"}
            with Fetchd(conf) as d:
                url = "http://ordered.test:%d/ok?len=9" % h.port
                rc, results, err = submit(d.sock, [url])
                assert rc == 0, results
                ok(results[0], pattern_sha256(9))
                assert results[0]["attempts"] == 1, results[0]
                assert _connect_attempts(d.log_text()) == \
                    [("127.0.0.2:%d" % h.port, "Connection refused"),
                     ("127.0.0.3:%d" % h.port, "Connection refused")], d.log_text()[-3000:]
                mark = len(d.log_text())
                url = "http://many.test:%d/ok?len=9" % h.port
                rc, results, err = submit(d.sock, [url])
                assert rc == 0, results
                ok(results[0], pattern_sha256(9))
                tried = _connect_attempts(d.log_text()[mark:])
                assert len(set(tried)) == len(tried) and \
                    set(tried) <= {("127.0.0.2:%d" % h.port, "Connection refused"),
                                   ("127.0.0.3:%d" % h.port, "Connection refused")}, tried
            assert h.stats()["connections"] == 2, h.stats()
    finally:
        upstream.stop()


# ---- 5. [dns] family ----------------------------------------------------------------------------------

@suite.test
def family_picks_the_address_records():
    v6 = ipv6_loopback()
    if not v6:
        print("   note: no IPv6 loopback on this host: connecting to ::1 not tested")
    recs = ["--host-record=both.test,127.0.0.1,::1", "--host-record=v4only.test,127.0.0.1"]
    with Dnsmasq(args=recs) as dns:
        h, extra = servers_on_one_port(*(["::1"] if v6 else []))
        h6 = extra[0] if extra else None

        def served():
            return (h6.stats()["requests"] if h6 else 0, h.stats()["requests"])

        with h:
            url = "http://both.test:%d/ok?len=6" % h.port
            url4 = "http://v4only.test:%d/ok?len=6" % h.port
            # ipv6: only AAAA is asked; a name without one has "no address records", remembered
            with Fetchd(dns_conf(dns, family="ipv6")) as d:
                for batch in range(2):
                    rc, results, err = submit(d.sock, [url4 + "&b=%d" % batch] + ([url] if v6 else []))
                    got = by_url(results)
                    failed(got[url4 + "&b=%d" % batch], "dns",
                           "cannot resolve v4only.test: no address records")
                    if v6:
                        ok(got[url], pattern_sha256(6), ip="::1")
                assert served() == ((2, 0) if v6 else (0, 0)), served()
                qs = dns.queries()
                assert ("A", "v4only.test") not in qs and ("A", "both.test") not in qs, qs
                assert qs.count(("AAAA", "v4only.test")) == 1, qs  # the NODATA was cached
            # ipv4: only A is asked
            aaaa_before = dns.count("both.test", "AAAA")
            h.reset()
            with Fetchd(dns_conf(dns, family="ipv4")) as d:
                rc, results, err = submit(d.sock, [url, url4])
                assert rc == 0, results
                for r in results:
                    ok(r, pattern_sha256(6), ip="127.0.0.1")
                assert served()[1] == 2, served()
                assert dns.count("both.test", "A") == 1 and dns.count("both.test", "AAAA") == aaaa_before
            # any: both records; whichever address fetchd picks (after a failed connect to ::1 when
            # this host has no IPv6, the next address), the server there got the request
            h.reset()
            if h6:
                h6.reset()
            with Fetchd(dns_conf(dns, family="any")) as d:
                rc, results, err = submit(d.sock, [url])
                ok(results[0], pattern_sha256(6), ip=None)
                ip = results[0]["ip"]
                assert ip in (("::1", "127.0.0.1") if v6 else ("127.0.0.1",)), results[0]
                assert served() == ((1, 0) if ip == "::1" else (0, 1)), (ip, served())
                print("   family any: fetchd connected to %s" % ip)
        for s in extra:
            s.stop()


# ---- 6. hosts file ------------------------------------------------------------------------------------

@suite.test
def hosts_file_answers_without_a_query():
    with Dnsmasq(hosts=[("127.0.0.2", "both.test")]) as dns, Hostile() as h:
        path = os.path.join(dns.dir, "fetchd-hosts")
        with open(path, "w") as f:
            f.write("# test hosts file\n127.0.0.1 onlyhere.test alias.test\n127.0.0.1\tBoth.Test\n")
        with Fetchd(dns_conf(dns, hosts_file=path)) as d:
            urls = ["http://onlyhere.test:%d/ok?len=4" % h.port, "http://ALIAS.test:%d/ok?len=4" % h.port,
                    "http://both.test:%d/ok?len=4" % h.port]
            rc, results, err = submit(d.sock, urls)
            assert rc == 0, results
            for r in results:
                ok(r, pattern_sha256(4))  # both.test: 127.0.0.1 from the file, not DNS's 127.0.0.2
            asked = [q for q in dns.queries() if q[1].lower().split(".")[0] in ("onlyhere", "alias", "both")]
            assert asked == [], dns.queries()
            st = stop_stats(d)
            assert st["dns_hosts_file_hits"] == 3 and st["dns_queries"] == 0, st


# ---- 7. a lookup that hangs ---------------------------------------------------------------------------

@suite.test
def a_hung_lookup_fails_alone_while_the_batch_keeps_flowing():
    hole = UdpServer(rcode=None)
    fast = ["f%d.fast.test" % i for i in range(10)]
    try:
        with Dnsmasq(hosts=[("127.0.0.1", n) for n in fast],
                     args=["--server=/slow.test/127.0.0.1#%d" % hole.port]) as dns, Origin() as o:
            conf = dns_conf(dns, timeout_ms=300, tries=1)
            conf["fetch"] = {"max_inflight": 64, "per_host_connections": 4}
            with Fetchd(conf) as d:
                # two hosts (ports) on the hung name share its one lookup, and fail together
                hung = ["http://www.slow.test:%d/1k.html" % o.port, "http://www.slow.test:8080/"]
                urls = hung + [o.url("/1k.html?i=%d" % i) for i in range(100)]
                urls += ["http://%s:%d/1k.html?i=%d" % (fast[i % 10], o.port, i) for i in range(100)]
                t0 = time.monotonic()
                rc, results, err = submit(d.sock, urls)
                took = time.monotonic() - t0
                assert rc == 5 and len(results) == 202, (rc, len(results))
                order = [r["url"] for r in results]
                assert sorted(order[-2:]) == sorted(hung), [order.index(u) for u in hung]
                for r in results[-2:]:
                    failed(r, "dns", "cannot resolve www.slow.test: lookup timed out")
                    assert r["timings_ms"]["dns"] >= 250, r
                for r in results[:-2]:
                    ok(r, o.sha256["/1k.html"])
                slowest = max(r["timings_ms"]["total"] for r in results[:-2])
                assert took < 3.0, took
                print("   the 200 others took at most %.1f ms each; the batch %.2f s" % (slowest, took))
                st = stop_stats(d)
                assert st["dns_queries"] == 11 and st["dns_coalesced"] == 1, st
            assert dns.count("www.slow.test", "A") == 1, dns.queries()
    finally:
        hole.stop()


# ---- 8. address policy --------------------------------------------------------------------------------

LOOPBACK_FORMS = ["127.0.0.1", "127.1", "0x7f.1", "2130706433", "0177.0.0.1"]


def _policy_conf(dns, **security):
    path = os.path.join(dns.dir, "fetchd-hosts")
    with open(path, "w") as f:
        f.write("127.0.0.1 fromfile.test\n")
    conf = dns_conf(dns, hosts_file=path)
    if security:
        conf["security"] = security
    return conf


def _policy_urls(port, v6):
    """The five IPv4 spellings, loop.test (DNS), fromfile.test (hosts file), then [::1] and
    [::ffff:127.0.0.1] when this host has IPv6; all for 127.0.0.1 / ::1 on `port`."""
    urls = ["http://%s:%d/ok?len=3" % (host, port) for host in LOOPBACK_FORMS]
    urls += ["http://loop.test:%d/ok?len=3" % port, "http://fromfile.test:%d/ok?len=3" % port]
    if v6:
        urls += ["http://[::1]:%d/ok?len=3" % port, "http://[::ffff:127.0.0.1]:%d/ok?len=3" % port]
    return urls


@suite.test
def built_in_policy_refuses_loopback_in_every_spelling():
    v6 = ipv6_loopback()
    if not v6:
        print("   note: no IPv6 loopback on this host: [::1] and [::ffff:127.0.0.1] not tested")
    with Dnsmasq(hosts=[("127.0.0.1", "loop.test")]) as dns:
        h, extra = servers_on_one_port(*(["::1"] if v6 else []))
        with h:
            urls = _policy_urls(h.port, v6)
            with Fetchd(_policy_conf(dns), loopback=False) as d:  # the built-in policy only
                rc, results, err = submit(d.sock, urls)
                assert rc == 5 and len(results) == len(urls), (rc, results)
                got = by_url(results)
                v4why = "127.0.0.1 is loopback (127.0.0.0/8)"
                for u in urls[:5]:
                    failed(got[u], "blocked", "127.0.0.1: " + v4why)
                failed(got[urls[5]], "blocked", "loop.test: " + v4why)
                failed(got[urls[6]], "blocked", "fromfile.test: " + v4why)
                if v6:
                    failed(got[urls[7]], "blocked", "::1: ::1 is loopback (::1/128)")
                    failed(got[urls[8]], "blocked", "::ffff:127.0.0.1: ::ffff:127.0.0.1 is IPv4-mapped "
                           "127.0.0.1, which is loopback (127.0.0.0/8)")
                assert "error blocked: %d" % len(urls) in err, err
            assert h.stats()["connections"] == 0, h.stats()
            for s in extra:
                assert s.stats()["connections"] == 0, s.stats()
        for s in extra:
            s.stop()


@suite.test
def allow_addresses_lets_loopback_through():
    v6 = ipv6_loopback()
    if not v6:
        print("   note: no IPv6 loopback on this host: [::1] and [::ffff:127.0.0.1] not tested")
    with Dnsmasq(hosts=[("127.0.0.1", "loop.test")]) as dns:
        h, extra = servers_on_one_port(*(["::1"] if v6 else []))
        with h:
            urls = _policy_urls(h.port, v6)
            with Fetchd(_policy_conf(dns, allow_addresses=LOOPBACK_ALLOW), loopback=False) as d:
                rc, results, err = submit(d.sock, urls)
                assert rc == 0, results
                got = by_url(results)
                for u in urls[:7]:
                    ok(got[u], pattern_sha256(3))
                if v6:
                    ok(got[urls[7]], pattern_sha256(3), ip="::1")
                    # an IPv4-mapped address reaches the IPv4 listener
                    ok(got[urls[8]], pattern_sha256(3), ip="::ffff:127.0.0.1")
                    assert extra[0].stats()["requests"] == 1, extra[0].stats()
            assert h.stats()["requests"] == 7 + (1 if v6 else 0), h.stats()
        for s in extra:
            s.stop()


@suite.test
def deny_addresses_wins_over_allow():
    v6 = ipv6_loopback()
    if not v6:
        print("   note: no IPv6 loopback on this host: [::1] and [::ffff:127.0.0.1] not tested")
    with Dnsmasq(hosts=[("127.0.0.1", "loop.test")]) as dns:
        h, extra = servers_on_one_port(*(["::1"] if v6 else []))
        with h:
            urls = _policy_urls(h.port, v6)
            conf = _policy_conf(dns, allow_addresses=LOOPBACK_ALLOW, deny_addresses="127.0.0.1/32")
            with Fetchd(conf, loopback=False) as d:
                rc, results, err = submit(d.sock, urls)
                assert rc == 5, results
                got = by_url(results)
                why = "127.0.0.1 is denied by deny_addresses (127.0.0.1/32)"
                for u in urls[:5]:
                    failed(got[u], "blocked", "127.0.0.1: " + why)
                failed(got[urls[5]], "blocked", "loop.test: " + why)
                failed(got[urls[6]], "blocked", "fromfile.test: " + why)
                if v6:
                    ok(got[urls[7]], pattern_sha256(3), ip="::1")  # allowed, and not denied
                    failed(got[urls[8]], "blocked", "::ffff:127.0.0.1: ::ffff:127.0.0.1 is IPv4-mapped "
                           "127.0.0.1, which is denied by deny_addresses (127.0.0.1/32)")
            assert h.stats()["connections"] == 0, h.stats()
        for s in extra:
            s.stop()


@suite.test
def a_name_uses_only_its_permitted_addresses():
    # two.test has two addresses, each with a server on the same port: which one gets the requests
    # shows which address fetchd used, whatever order the answer lists them in
    recs = [("127.0.0.1", "two.test"), ("127.0.0.2", "two.test")]
    with Dnsmasq(hosts=recs) as dns:
        h, (h2,) = servers_on_one_port("127.0.0.2")
        with h:
            urls = ["http://two.test:%d/ok?len=8&i=%d" % (h.port, i) for i in range(20)]
            for deny, served, idle in (("127.0.0.1/32", h2, h), ("127.0.0.2", h, h2)):
                h.reset()
                h2.reset()
                conf = dns_conf(dns)
                conf["security"] = {"allow_addresses": "127.0.0.0/8", "deny_addresses": deny}
                conf["fetch"] = {"per_host_connections": 4}
                with Fetchd(conf, loopback=False) as d:
                    rc, results, err = submit(d.sock, urls)
                    assert rc == 0, results
                    ip = "127.0.0.2" if served is h2 else "127.0.0.1"
                    for r in results:
                        ok(r, pattern_sha256(8), ip=ip)
                assert served.stats()["requests"] == 20, served.stats()
                assert idle.stats()["connections"] == 0, idle.stats()
        h2.stop()


# ---- 9. why a lookup failed ---------------------------------------------------------------------------

@suite.test
def each_dns_failure_has_its_reason():
    servfail = UdpServer(rcode=2)
    refused = UdpServer(rcode=5)
    hole = UdpServer(rcode=None)
    closed = free_udp_tcp_port()  # nothing listens there
    try:
        args = ["--server=/servfail.test/127.0.0.1#%d" % servfail.port,
                "--server=/refused.test/127.0.0.1#%d" % refused.port,
                "--server=/slow.test/127.0.0.1#%d" % hole.port,
                "--server=/closed.test/127.0.0.1#%d" % closed]
        # norecords.test exists (a TXT record) but has no A or AAAA record
        with Dnsmasq(args=args + ["--txt-record=norecords.test,hello"]) as dns:
            # what dnsmasq itself answers, so that a failure below is fetchd's and not the setup's
            assert dns_query(dns.port, "probe.servfail.test")[0] == "SERVFAIL"
            assert dns_query(dns.port, "probe.refused.test")[0] == "REFUSED"
            assert dns_query(dns.port, "probe.missing.test")[0] == "NXDOMAIN"
            assert dns_query(dns.port, "norecords.test") == ("NOERROR", [])
            with Fetchd(dns_conf(dns, timeout_ms=400, tries=1)) as d:
                expect = {
                    "http://missing.test/": "no such host (NXDOMAIN)",
                    "http://www.servfail.test/": "server failure (SERVFAIL)",
                    "http://www.refused.test/": "query refused",
                    "http://www.slow.test/": "lookup timed out",
                    # dnsmasq never answers when its upstream port is closed (no SERVFAIL): a timeout
                    "http://www.closed.test/": "lookup timed out",
                    "http://norecords.test/": "no address records",
                }
                rc, results, err = submit(d.sock, list(expect))
                assert rc == 5 and len(results) == len(expect), results
                got = by_url(results)
                wrong = []
                for u, why in expect.items():
                    r = got[u]
                    want = {"class": "dns", "message": "cannot resolve %s: %s" % (u.split("/")[2], why)}
                    if r["error"] != want:
                        wrong.append("%s: got %s, want %r" % (u, r["error"], want["message"]))
                    assert r["status"] is None and r["ip"] is None and r["attempts"] == 1, r
                    assert r["timings_ms"]["total"] == r["timings_ms"]["dns"], r
                assert not wrong, "; ".join(wrong)
                assert "error dns: 6" in err, err
                assert d.alive()
    finally:
        for s in (servfail, refused, hole):
            s.stop()


if __name__ == "__main__":
    suite.main()

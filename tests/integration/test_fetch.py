"""test_fetch.py - fetchd end to end against real parts: a real nginx origin, the scripted hostile server,
a real resolver (dnsmasq), fetchd and fetchctl as processes. The core promises of the product:
correct bodies at volume, completion order, the in-flight and per-host bounds, keep-alive reuse,
cancellation when a client vanishes, clients kept apart, configuration checks and exit codes."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (REPO, Fetchd, Hostile, Origin, Suite, by_url, fetchctl, free_port,  # noqa: E402
                     parse_jsonl, pattern_sha256, submit, wait_until)

suite = Suite(__file__, timeout=120)
FETCHD = os.environ.get("FETCHD_BIN", os.path.join(REPO, "build", "fetchd"))
FETCHCTL = os.environ.get("FETCHCTL_BIN", os.path.join(REPO, "build", "fetchctl"))
RESULT_KEYS = ["url", "final_url", "redirects", "status", "error", "body_bytes", "body_sha256", "content_type",
               "content_encoding", "decoded", "wire_bytes", "ip", "tls_version", "tls_cipher", "tls_backend", "tls_verified", "timings_ms", "attempts"]


def ok(r, sha=None):
    assert r["error"] is None and r["status"] == 200, r
    if sha is not None:
        assert r["body_sha256"] == sha, r


@suite.test(timeout=180)
def ten_thousand_urls_all_200_with_correct_sha256():
    with Origin() as o, Fetchd({"fetch": {"max_inflight": 256, "per_host_connections": 64}}) as d:
        paths = ["/1k.html", "/16k.html", "/empty.txt"]
        urls = [o.url(f"{paths[i % 3]}?n={i}") for i in range(10000)]
        rc, results, err = submit(d.sock, urls, timeout=150)
        assert rc == 0, err
        assert len(results) == 10000, len(results)
        got = by_url(results)
        assert len(got) == 10000
        for i, u in enumerate(urls):
            r = got[u]
            ok(r, o.sha256[paths[i % 3]])
            assert r["body_bytes"] == len(o.files[paths[i % 3]]), r
        assert "10000 URLs" in err and "10000 with an HTTP response" in err, err


@suite.test
def result_object_has_every_field():
    with Origin() as o, Fetchd() as d:
        rc, results, err = submit(d.sock, [o.url("/1k.html")])
        assert rc == 0, err
        r = results[0]
        assert list(r.keys()) == RESULT_KEYS, list(r.keys())
        assert r["url"] == r["final_url"] == o.url("/1k.html")
        assert r["content_type"] == "text/html", r
        assert r["ip"] == "127.0.0.1", r
        assert r["attempts"] == 1, r
        assert r["tls_version"] is None and r["tls_verified"] is None, r  # plain http
        t = r["timings_ms"]
        assert set(t) == {"dns", "connect", "tls", "ttfb", "total"}, t
        assert t["dns"] == 0 and t["tls"] == 0, t  # IP literal, plain HTTP
        assert 0 <= t["connect"] <= t["total"] and 0 < t["ttfb"] <= t["total"] < 5000, t


@suite.test
def no_hash_batches_report_sizes_but_no_digest():
    with Origin() as o, Fetchd() as d:
        urls = [o.url(f"/16k.html?{i}") for i in range(20)]
        rc, results, err = submit(d.sock, urls, extra_args=["--no-hash"])
        assert rc == 0 and len(results) == 20, err
        assert all(r["body_sha256"] is None and r["body_bytes"] == 16384 for r in results), results[0]
        rc, results, err = submit(d.sock, urls[:1])  # the next client hashes again
        assert results[0]["body_sha256"] == o.sha256["/16k.html"], results[0]


@suite.test
def fast_urls_finish_before_a_slow_one_submitted_first():
    with Origin() as o, Fetchd({"fetch": {"max_inflight": 16}}) as d:
        urls = [o.url("/slow")] + [o.url(f"/1k.html?{i}") for i in range(20)]
        rc, results, err = submit(d.sock, urls)
        assert rc == 0, err
        order = [r["url"] for r in results]
        assert order[-1] == o.url("/slow"), order[:3]
        assert results[-1]["timings_ms"]["total"] >= 900, results[-1]


@suite.test
def origin_never_sees_more_than_max_inflight_connections():
    with Hostile() as h, Fetchd({"fetch": {"max_inflight": 5, "per_host_connections": 100}}) as d:
        # per_host_connections is far above max_inflight: max_inflight is what binds.
        urls = [h.url(f"/delay?ms=100&len=10&i={i}") for i in range(60)]
        h.reset()
        t0 = time.monotonic()
        rc, results, err = submit(d.sock, urls)
        elapsed = time.monotonic() - t0
        assert rc == 0, err + str([r for r in results if r["error"]][:2])
        st = h.stats()
        assert st["max_open"] == 5, st  # the bound holds, and is used
        assert elapsed >= 60 / 5 * 0.1 * 0.9, elapsed


@suite.test
def per_host_connections_bound_each_host():
    with Hostile() as h, Fetchd({"fetch": {"max_inflight": 100, "per_host_connections": 3}}) as d:
        urls = [h.url(f"/delay?ms=100&len=10&i={i}") for i in range(30)]
        h.reset()
        rc, results, err = submit(d.sock, urls)
        assert rc == 0, err
        assert h.stats()["max_open"] == 3, h.stats()
        # Two host names: each gets its own three.
        urls = [h.url(f"/delay?ms=100&len=10&i={i}", host=("127.0.0.1" if i % 2 else "localhost"))
                for i in range(30)]
        h.reset()
        rc, results, err = submit(d.sock, urls)
        assert rc == 0, err
        assert h.stats()["max_open"] == 6, h.stats()


@suite.test
def keep_alive_reuses_one_connection():
    with Hostile() as h, Fetchd({"fetch": {"max_inflight": 8, "per_host_connections": 1}}) as d:
        h.reset()
        urls = [h.url(f"/ok?len=100&i={i}") for i in range(50)]
        rc, results, err = submit(d.sock, urls)
        assert rc == 0, err
        st = h.stats()
        assert st["requests"] == 50 and st["connections"] == 1, st
        reused = [r for r in results if r["timings_ms"]["connect"] == 0]
        assert len(reused) == 49, len(reused)
        # A response with "Connection: close" is not reused.
        h.reset()  # a new host name, so the pooled connection from above is not in play
        rc, results, err = submit(d.sock, [h.url(f"/close?len=10&i={i}", host="localhost") for i in range(5)])
        assert rc == 0, err
        assert h.stats()["connections"] == 5 and h.stats()["requests"] == 5, h.stats()


@suite.test
def server_closing_idle_keepalive_connections_is_harmless():
    # The server closes right after each response without saying so: the next request on the
    # pooled connection finds it dead and is retried once on a fresh one, never reported as failed.
    with Hostile() as h, Fetchd({"fetch": {"max_inflight": 4, "per_host_connections": 1}}) as d:
        for round_ in range(3):
            urls = [h.url(f"/ok?len=50&close=1&r={round_}&i={i}") for i in range(20)]
            rc, results, err = submit(d.sock, urls)
            assert rc == 0, err + str([r for r in results if r["error"]][:2])
            assert all(r["attempts"] == 1 for r in results), results[:2]


@suite.test
def idle_pooled_connections_expire():
    with Hostile() as h, Fetchd({"fetch": {"keepalive_idle_ms": 300}}) as d:
        h.reset()
        rc, results, err = submit(d.sock, [h.url(f"/ok?len=10&i={i}") for i in range(4)])
        assert rc == 0, err
        assert h.stats()["open"] >= 1, h.stats()
        wait_until(lambda: h.stats()["open"] == 0, timeout=3, what="idle connections closed")


def _slow_batch(h, n):
    return [h.url(f"/delay?ms=300&len=10&i={i}") for i in range(n)]


@suite.test
def killed_client_cancels_its_batch_and_frees_everything():
    # Idle pooled connections expire fast, so "everything closed" is reached without waiting 30 s.
    conf = {"fetch": {"max_inflight": 50, "per_host_connections": 50, "keepalive_idle_ms": 200}}
    with Hostile() as h, Fetchd(conf) as d:
        base_fds = d.fd_count()
        base_rss = d.rss_kb()
        for round_ in range(3):
            path = os.path.join(d.dir, f"slow{round_}.txt")
            with open(path, "w") as f:
                f.write("\n".join(_slow_batch(h, 2000)) + "\n")
            p = subprocess.Popen([FETCHCTL, "-s", d.sock, "submit", path], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL)
            first = p.stdout.readline()  # at least one result arrived: the batch is under way
            assert b'"status":200' in first, first
            wait_until(lambda: h.stats()["open"] >= 40, timeout=5, what="fetches in flight")
            p.kill()
            p.wait()
            p.stdout.close()
            wait_until(lambda: h.stats()["open"] == 0, timeout=5, what="origin connections closed")
            wait_until(lambda: d.fd_count() <= base_fds, timeout=5, what="fds back to baseline")
        assert d.alive()
        assert "cancelled=" in d.log_text()
        rc, results, err = submit(d.sock, [h.url("/ok?len=5")])
        assert rc == 0 and results[0]["body_sha256"] == pattern_sha256(5), err
        assert d.rss_kb() < base_rss + 20000, (base_rss, d.rss_kb())


@suite.test
def two_clients_at_once_each_get_only_their_results():
    with Origin() as o, Fetchd({"fetch": {"max_inflight": 64}}) as d:
        outs = {}

        def run(tag):
            urls = [o.url(f"/1k.html?client={tag}&i={i}") for i in range(3000)]
            outs[tag] = submit(d.sock, urls, timeout=100)

        threads = [threading.Thread(target=run, args=(t,)) for t in ("a", "b")]
        [t.start() for t in threads]
        [t.join() for t in threads]
        for tag in ("a", "b"):
            rc, results, err = outs[tag]
            assert rc == 0, err
            assert len(results) == 3000
            assert all(f"client={tag}&" in r["url"] for r in results), tag
            assert len(by_url(results)) == 3000


@suite.test
def a_client_that_does_not_read_does_not_stall_others():
    with Origin() as o, Fetchd({"fetch": {"max_inflight": 32}, "control": {"client_buffer_bytes": "64K"}}) as d:
        path = os.path.join(d.dir, "big.txt")
        with open(path, "w") as f:
            f.write("\n".join(o.url(f"/1k.html?stuck={i}") for i in range(50000)) + "\n")
        # fetchctl writing into a pipe nobody reads: it blocks, the daemon must hold back for it only.
        stuck = subprocess.Popen([FETCHCTL, "-s", d.sock, "submit", path], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        rss_before = d.rss_kb()
        rc, results, err = submit(d.sock, [o.url(f"/1k.html?free={i}") for i in range(2000)], timeout=30)
        assert rc == 0 and len(results) == 2000, err
        time.sleep(0.5)
        assert d.rss_kb() < rss_before + 10000, (rss_before, d.rss_kb())
        stuck.kill()
        stuck.wait()
        stuck.stdout.close()


def _dnsmasq(port, zone):
    args = ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
            f"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces", "--local=/test/",
            "--pid-file=", "--log-facility=-"]
    if os.geteuid() == 0:
        args.append("--user=root")
    for name, ip in zone:
        args.append(f"--address=/{name}/{ip}")
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.3)
    assert p.poll() is None, p.stderr.read().decode()
    return p


@suite.test
def names_resolve_through_a_real_resolver():
    port = free_port()
    dns = _dnsmasq(port, [("good.test", "127.0.0.1"), ("other.test", "127.0.0.2")])
    try:
        with Hostile() as h, Fetchd({"dns": {"servers": f"127.0.0.1:{port}", "timeout_ms": 500, "tries": 1}}) as d:
            p = h.port
            urls = [f"http://good.test:{p}/ok?len=7&i={i}" for i in range(50)]
            urls += [f"http://other.test:{p}/ok?len=7", f"http://missing.test:{p}/ok"]
            rc, results, err = submit(d.sock, urls)
            got = by_url(results)
            for u in urls[:50]:
                ok(got[u], pattern_sha256(7))
                assert got[u]["ip"] == "127.0.0.1"
            # the hostile server listens on 127.0.0.1 only: the name resolved, the connect is refused
            assert got[urls[50]]["ip"] == "127.0.0.2", got[urls[50]]
            assert got[urls[50]]["error"]["class"] == "connect", got[urls[50]]
            bad = got[urls[51]]
            assert bad["error"]["class"] == "dns" and "NXDOMAIN" in bad["error"]["message"], bad
            assert rc == 5, rc
            st = h.stats()
            assert st["requests"] == 50, st
    finally:
        dns.kill()
        dns.wait()


@suite.test
def dns_server_that_never_answers_fails_with_a_reason():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))  # a UDP port that swallows queries
    try:
        conf = {"dns": {"servers": f"127.0.0.1:{s.getsockname()[1]}", "timeout_ms": 200, "tries": 1}}
        with Fetchd(conf) as d:
            rc, results, err = submit(d.sock, ["http://silent.test/"], timeout=20)
            r = results[0]
            assert r["error"]["class"] == "dns" and "timed out" in r["error"]["message"], r
            assert d.alive()
    finally:
        s.close()


@suite.test
def ipv6_literal():
    with Hostile() as h:
        pass
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        s.bind(("::1", 0))
    except OSError:
        s.close()
        return  # no IPv6 loopback here: nothing to test
    s.listen(4)
    port = s.getsockname()[1]

    def serve():
        c, _ = s.accept()
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nv6")
        c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    with Fetchd() as d:
        rc, results, err = submit(d.sock, [f"http://[::1]:{port}/x"])
        assert rc == 0, results
        assert results[0]["ip"] == "::1" and results[0]["body_bytes"] == 2, results[0]
    s.close()


@suite.test
def request_carries_host_user_agent_and_basic_auth():
    with Hostile() as h, Fetchd() as d:
        # /echo returns the request head: check it through its sha256 against what we expect to send.
        url = f"http://user:p%40ss@127.0.0.1:{h.port}/echo?q=1#frag"
        rc, results, err = submit(d.sock, [url])
        assert rc == 0, results
        expected = (f"GET /echo?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{h.port}\r\nUser-Agent: fetchd/0.1.0\r\n"
                    "Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
                    "Authorization: Basic dXNlcjpwQHNz\r\n\r\n").encode()
        import hashlib
        assert results[0]["body_sha256"] == hashlib.sha256(expected).hexdigest(), results[0]


@suite.test
def config_check_and_errors():
    p = subprocess.run([FETCHD, "-t", "-c", os.path.join(REPO, "conf", "fetchd.conf")], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write("[fetch]\nmax_inflight = 8\n\nper_host_connections = 0\n")
    try:
        p = subprocess.run([FETCHD, "-t", "-c", f.name], capture_output=True, text=True)
        assert p.returncode == 1 and f"{f.name}:4:" in p.stderr and "out of range" in p.stderr, p.stderr
        with open(f.name, "w") as g:
            g.write("[fetch]\nmax_inflite = 8\n")
        p = subprocess.run([FETCHD, "-c", f.name, "-s", "/tmp/never.sock"], capture_output=True, text=True)
        assert p.returncode == 1 and "unknown key 'max_inflite'" in p.stderr, p.stderr
    finally:
        os.unlink(f.name)
    p = subprocess.run([FETCHD, "-t"], capture_output=True, text=True)
    assert p.returncode == 0 and "built-in defaults" in p.stdout, p.stdout


@suite.test
def runs_on_built_in_defaults_without_a_file():
    with Hostile() as h:
        sock = os.path.join(tempfile.mkdtemp(), "f.sock")
        p = subprocess.Popen([FETCHD], env=dict(os.environ, FETCHD_SOCKET=sock), stderr=subprocess.PIPE)
        try:
            wait_until(lambda: os.path.exists(sock), timeout=5, what="socket")
            assert oct(os.stat(sock).st_mode & 0o777) == "0o660"
            # The built-in address policy refuses loopback: the origin is never contacted.
            rc, results, err = submit(sock, [h.url("/ok?len=3")])
            r = results[0]
            assert rc == 5 and r["error"]["class"] == "blocked", r
            assert "127.0.0.1 is loopback" in r["error"]["message"], r
            assert h.stats()["connections"] == 0, h.stats()
        finally:
            p.send_signal(signal.SIGTERM)
            assert p.wait(10) == 0
        assert not os.path.exists(sock)  # removed on a clean stop


@suite.test
def io_uring_unavailable_is_a_clear_error_not_a_crash():
    knob = "/proc/sys/kernel/io_uring_disabled"
    if os.geteuid() != 0 or not os.access(knob, os.W_OK):
        return  # cannot switch io_uring off here without root
    with open(knob) as f:
        old = f.read().strip()
    try:
        with open(knob, "w") as f:
            f.write("2")
        p = subprocess.run([FETCHD, "-s", os.path.join(tempfile.mkdtemp(), "f.sock")], capture_output=True,
                           text=True, timeout=10)
    finally:
        with open(knob, "w") as f:
            f.write(old)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "io_uring is not permitted (EPERM)" in p.stderr and "io_uring_disabled" in p.stderr, p.stderr


@suite.test
def second_daemon_on_the_same_socket_refuses_to_start():
    with Fetchd() as d:
        p = subprocess.run([FETCHD, "-s", d.sock], capture_output=True, text=True, timeout=10)
        assert p.returncode == 1 and "already listening" in p.stderr, p.stderr
        assert d.alive()


@suite.test
def fetchctl_exit_codes():
    rc, out, err = fetchctl("/nonexistent/dir/f.sock", ["submit", "-"], input_text="http://x/\n")
    assert rc == 3 and "cannot reach fetchd" in err, (rc, err)
    rc, out, err = fetchctl("/tmp/x.sock", ["bogus"])
    assert rc == 2, (rc, err)
    with Hostile() as h, Fetchd() as d:
        rc, out, err = fetchctl(d.sock, ["submit", "-"], input_text=f"# c\n\n  {h.url('/ok')}  \n")
        assert rc == 0 and len(parse_jsonl(out)) == 1, (rc, out, err)
        rc, out, err = fetchctl(d.sock, ["submit", "-"], input_text=f"{h.url('/ok')}\nhttp://127.0.0.1:1/\n")
        assert rc == 5 and "error connect: 1" in err, (rc, err)
        rc, out, err = fetchctl(d.sock, ["submit", "-"], input_text="ftp://x\n")
        bad = parse_jsonl(out)[0]
        assert bad["error"]["class"] == "url" and bad["tls_verified"] is None and bad["attempts"] == 0, bad
        rc, out, err = fetchctl(d.sock, ["-q", "submit", "-"], input_text="")
        assert rc == 0 and out == "" and err == "", (rc, out, err)


@suite.test
def malformed_frames_get_an_error_and_the_daemon_stays_up():
    with Hostile() as h, Fetchd() as d:
        cases = [b"\x00\x00\x00\x02\x02hi",                       # URLS before HELLO
                 b"\xff\xff\xff\xff\x01",                         # absurd length
                 b"\x00\x00\x00\x0e\x01{\"protocol\":9}",         # unknown version
                 b"garbage that is not a frame at all........"]
        for raw in cases:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.sock)
            s.sendall(raw)
            s.settimeout(5)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            s.close()
            assert data[4:5] == b"\x84" and b"error" in data, (raw, data)
        assert d.alive()
        rc, results, err = submit(d.sock, [h.url("/ok?len=3")])
        assert rc == 0, err


@suite.test(timeout=300)
def daemon_has_no_leaks_or_memory_errors_under_valgrind():
    if os.environ.get("FETCHD_SAN"):
        print("  (sanitizer build: valgrind cannot run it; ASan and LSan check this run instead)")
        return
    if not shutil.which("valgrind"):
        raise AssertionError("valgrind is not installed (make deps installs it)")
    env = dict(os.environ, FETCHD_WRAP="valgrind --error-exitcode=99 --track-origins=yes --leak-check=full "
               "--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect")
    with Hostile() as h, Origin() as o:
        d = Fetchd({"fetch": {"max_inflight": 16, "header_timeout_ms": 500}}, env=env, timeout=30)
        try:
            urls = [o.url(f"/1k.html?{i}") for i in range(200)]
            urls += [h.url(p) for p in ("/cl-short", "/garbage", "/hang", "/chunked?len=3000&size=7",
                                        "/rst-body", "/huge-header?bytes=100000")]
            urls += ["ftp://bad", "http://127.0.0.1:1/"]
            rc, results, err = submit(d.sock, urls, timeout=60)
            assert len(results) == len(urls), err
            # and a client that vanishes mid-batch
            p = subprocess.Popen([FETCHCTL, "-s", d.sock, "submit", "-"], stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            p.stdin.write(("\n".join(h.url(f"/delay?ms=2000&i={i}") for i in range(20)) + "\n").encode())
            p.stdin.flush()
            time.sleep(1.0)
            p.kill()
            p.wait()
        finally:
            rc = d.stop(timeout=60)
        log = d.log_text()
        assert rc == 0, log[-3000:]
        assert "ERROR SUMMARY: 0 errors" in log, log[-3000:]


if __name__ == "__main__":
    suite.main()

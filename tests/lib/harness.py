"""harness.py - what fetchd's integration tests (tests/integration/test_*.py) are built from.

  * Suite: a tiny test runner. Each registered function is one test; it prints "ok NAME" or
    "FAIL NAME: reason" plus the traceback, enforces a per-test timeout (SIGALRM, default 60 s), ends
    with "N passed, N failed" as the last line of stdout and exits 1 when anything failed.
  * Origin: a real nginx on 127.0.0.1 (free port, private temp dir, echo module, stub_status) serving
    generated files whose sha256 the test knows.
  * Hostile: tests/lib/hostile.py (the scripted misbehaving server) in a subprocess or in-process.
  * Fetchd / fetchctl / submit / by_url: run build/fetchd (FETCHD_BIN overrides) and build/fetchctl
    (FETCHCTL_BIN overrides) against a private control socket.
  * free_port, sha256_hex, pattern_body/pattern_sha256 (hostile's bodies), wait_until.

An integration test starts with:

    import os, sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    from harness import Suite, Origin, Hostile, Fetchd, submit, by_url

    suite = Suite(__file__)

    @suite.test
    def test_small_file():
        with Origin() as o, Fetchd({"fetch": {"max_inflight": 16}}) as d:
            rc, results, err = submit(d.sock, [o.url("/1k.html")])
            assert rc == 0, err

    if __name__ == "__main__":
        suite.main()

Every process started here is also stopped at interpreter exit, so a failing test leaves nothing behind.
"""

import atexit
import ctypes
import hashlib
import http.client
import json
import os
import random
import resource
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.parse
import time
import traceback

_LIB = os.path.dirname(os.path.abspath(__file__))
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)
import hostile  # noqa: E402  (needs the path above)

REPO = os.path.dirname(os.path.dirname(_LIB))          # the repository root
HOSTILE_PY = os.path.join(_LIB, "hostile.py")
NGINX = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"

pattern_body = hostile.pattern_body


# ---- small helpers ------------------------------------------------------------------------------

def sha256_hex(data: bytes) -> str:
    """Hex sha256 of data."""
    return hashlib.sha256(data).hexdigest()


def pattern_sha256(n: int) -> str:
    """sha256 of hostile's n-byte body (what /ok?len=n, /chunked?len=n, /eof?len=n... send)."""
    return sha256_hex(hostile.pattern_body(n))


def ipv6_loopback() -> bool:
    """Can this host listen on [::1]?"""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 a moment ago (dnsmasq binds both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                    return port
                except OSError:
                    continue


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout: float = 5.0, interval: float = 0.02, what: str = "condition"):
    """Poll pred() until it returns something truthy (returned); AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def _port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _pdeathsig():
    """preexec_fn: the child gets SIGKILL if the test process dies (no orphans in CI)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


# Everything started here, stopped at exit in reverse order (each .stop() is idempotent).
_LIVE = []


def _stop_all():
    for obj in reversed(list(_LIVE)):
        try:
            obj.stop()
        except Exception:
            pass


atexit.register(_stop_all)


def _kill_tree(proc: subprocess.Popen, sig=signal.SIGTERM, wait: float = 10.0):
    """Signal proc, wait up to `wait` s, then SIGKILL it and any children it left. Returns its rc."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            try:
                with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
                    kids = [int(p) for p in f.read().split()]
            except OSError:
                kids = []
            for k in kids:
                try:
                    os.kill(k, signal.SIGKILL)
                except OSError:
                    pass
            proc.kill()
            proc.wait()
    return proc.returncode


def http_get(port: int, path: str, timeout: float = 10.0, host: str = "127.0.0.1"):
    """One GET on a fresh connection: (status, headers dict with lower-case names, body bytes)."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


# ---- test runner ---------------------------------------------------------------------------------

class TestTimeout(BaseException):
    """Raised in the test by SIGALRM. A BaseException so `except Exception` in a test cannot eat it."""


class _Terminated(BaseException):
    """Raised by SIGTERM (CI cancelling the run): stop running tests, clean up, print the summary."""


def _on_term(signum, frame):
    raise _Terminated("terminated by SIGTERM")


class Suite:
    """A list of test functions, run in order by run()/main().

        suite = Suite("name")
        @suite.test                  # or @suite.test(timeout=120)
        def test_x(): ...
        suite.main()                 # runs, prints the summary, exits 0/1

    Command-line arguments to main() are substrings; only tests whose names contain one are run.
    """

    def __init__(self, name: str = "", timeout: float = 60.0):
        self.name = os.path.basename(name) if name else ""
        self.timeout = timeout
        self.tests = []  # (name, function, timeout)

    def test(self, fn=None, *, timeout=None, name=None):
        """Decorator registering a test; usable bare or with timeout=/name= keywords."""
        def register(f):
            self.tests.append((name or f.__name__, f, timeout or self.timeout))
            return f
        return register(fn) if fn is not None else register

    def run(self, only=()) -> int:
        """Run the tests, print one line each and the summary last; returns the number failed."""
        def on_alarm(signum, frame):
            raise TestTimeout("test timed out")

        old_alarm = signal.signal(signal.SIGALRM, on_alarm)
        old_term = signal.signal(signal.SIGTERM, _on_term)
        passed = failed = 0
        try:
            for name, fn, limit in self.tests:
                if only and not any(o in name for o in only):
                    continue
                t0 = time.monotonic()
                try:
                    signal.setitimer(signal.ITIMER_REAL, limit)
                    try:
                        fn()
                    finally:
                        signal.setitimer(signal.ITIMER_REAL, 0)
                except (KeyboardInterrupt, _Terminated):
                    failed += 1
                    print("FAIL %s: interrupted" % name)
                    raise
                except TestTimeout:
                    failed += 1
                    print("FAIL %s: timed out after %gs" % (name, limit))
                    traceback.print_exc(file=sys.stdout)
                except BaseException as e:  # AssertionError, any error, even SystemExit
                    failed += 1
                    reason = "%s: %s" % (type(e).__name__, e) if str(e) else type(e).__name__
                    print("FAIL %s: %s" % (name, reason.splitlines()[0] if reason else ""))
                    traceback.print_exc(file=sys.stdout)
                else:
                    passed += 1
                    print("ok %s (%.2fs)" % (name, time.monotonic() - t0))
                sys.stdout.flush()
        finally:
            signal.signal(signal.SIGALRM, old_alarm)
            signal.signal(signal.SIGTERM, old_term)
            _stop_all()
            sys.stderr.flush()
            print("%d passed, %d failed" % (passed, failed))
            sys.stdout.flush()
        return failed

    def main(self, argv=None):
        """run() with sys.argv[1:] as the name filter, then exit 1 on any failure."""
        argv = sys.argv[1:] if argv is None else argv
        try:
            failed = self.run(argv)
        except _Terminated:
            sys.exit(143)  # the summary (counting the interrupted test as failed) is already out
        sys.exit(1 if failed else 0)


# ---- nginx origin --------------------------------------------------------------------------------

def _nginx_has(flag: str) -> bool:
    """Is `flag` (e.g. "--with-http_stub_status_module") in nginx -V?"""
    try:
        out = subprocess.run([NGINX, "-V"], capture_output=True, text=True, timeout=10)
    except OSError:
        return False
    return flag in (out.stdout + out.stderr)


class Origin:
    """A real nginx on 127.0.0.1:port serving generated files, in a private temp directory.

    Files (path -> bytes in .files, hex sha256 in .sha256):
      /1k.html (1024 bytes), /16k.html (16384), /1m.bin (1 MiB random), /empty.txt (0 bytes),
      plus `extra_files` {"/name": bytes}.
    Locations: /delay (echo_sleep 0.1; "delayed\\n"), /slow (echo_sleep 1.0; "slow\\n"),
      /_status (stub_status, when compiled in), plus `extra_conf` text placed in the server block.
    """

    def __init__(self, extra_files=None, extra_conf: str = "", start: bool = True):
        self.dir = tempfile.mkdtemp(prefix="fetchd-origin-")
        self.root = os.path.join(self.dir, "www")
        self.port = 0
        self.proc = None
        self.extra_conf = extra_conf
        self.has_stub_status = _nginx_has("--with-http_stub_status_module")
        rnd = random.Random(20240611)
        html = (b"<!doctype html>\n<html><head><title>fetchd test</title></head><body>\n" +
                b"<p>lorem ipsum dolor sit amet</p>\n" * 600)
        self.files = {
            "/1k.html": html[:1024 - 15] + b"</body></html>\n",
            "/16k.html": html[:16384 - 15] + b"</body></html>\n",
            "/1m.bin": rnd.randbytes(1 << 20),
            "/empty.txt": b"",
        }
        self.files.update(extra_files or {})
        self.sha256 = {p: sha256_hex(b) for p, b in self.files.items()}
        for p, b in self.files.items():
            full = os.path.join(self.root, p.lstrip("/"))
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(b)
        for sub in ("tmp", "logs"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.error_log = os.path.join(self.dir, "logs", "error.log")
        _LIVE.append(self)
        if start:
            self.start()

    def _conf(self) -> str:
        d = self.dir
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        nofile = min(hard if hard != resource.RLIM_INFINITY else 65536, 65536)
        wconn = max(1024, min(16384, nofile - 64))
        lines = [
            "# generated by tests/lib/harness.py",
            "load_module %s;" % ECHO_MODULE,
            "worker_processes 1;",
            "daemon off;",
            "master_process on;",
            "pid %s/nginx.pid;" % d,
            "error_log %s warn;" % self.error_log,
            "worker_rlimit_nofile %d;" % nofile,
        ]
        if os.geteuid() == 0:
            # As root the worker would otherwise switch to "nobody", which cannot read the 0700 temp
            # dir (every request: 403). As non-root the directive is ignored, so only emit it as root.
            lines.append("user root root;")
        lines += [
            "events { worker_connections %d; }" % wconn,
            "http {",
            "  access_log off;",
            "  default_type application/octet-stream;",
            "  types { text/html html; text/plain txt; application/octet-stream bin; }",
            "  client_body_temp_path %s/tmp/body;" % d,
            "  proxy_temp_path %s/tmp/proxy;" % d,
            "  fastcgi_temp_path %s/tmp/fastcgi;" % d,
            "  uwsgi_temp_path %s/tmp/uwsgi;" % d,
            "  scgi_temp_path %s/tmp/scgi;" % d,
            "  keepalive_requests 100000;",
            "  keepalive_timeout 65s;",
            "  sendfile on;",
            "  server {",
            "    listen 127.0.0.1:%d backlog=4096;" % self.port,
            "    server_name localhost;",
            "    root %s;" % self.root,
            "    location = /delay { echo_sleep 0.1; echo \"delayed\"; }",
            "    location = /slow { echo_sleep 1.0; echo \"slow\"; }",
        ]
        if self.has_stub_status:
            lines.append("    location = /_status { stub_status; }")
        if self.extra_conf:
            lines.append(self.extra_conf)
        lines += ["  }", "}", ""]
        return "\n".join(lines)

    def start(self):
        """Start nginx on a free port and wait until it accepts connections (5 s)."""
        last = ""
        for _attempt in range(5):  # another process may grab the free port first: retry
            self.port = free_port()
            conf = os.path.join(self.dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(self._conf())
            open(self.error_log, "w").close()
            self.proc = subprocess.Popen(
                [NGINX, "-p", self.dir + "/", "-c", conf, "-e", self.error_log],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=_pdeathsig)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _port_answers(self.port):
                    return self
                time.sleep(0.02)
            _kill_tree(self.proc)
            last = self.log_text()
            if "in use" not in last:
                break
        raise RuntimeError("nginx did not start; error.log:\n" + last)

    def stop(self):
        """Stop nginx (SIGTERM, then SIGKILL) and remove the temp dir."""
        if self.proc is not None:
            _kill_tree(self.proc, signal.SIGTERM, 10)
            self.proc = None
        if self.dir and os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)
        if self in _LIVE:
            _LIVE.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        """http://host:port/path for this origin."""
        return "http://%s:%d%s" % (host, self.port, path)

    def log_text(self) -> str:
        """nginx's error log so far."""
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stub_status(self) -> dict:
        """nginx stub_status as a dict: active, accepts, handled, requests, reading, writing, waiting.
        The numbers include the connection used to ask (1 active/writing, 1 accept, 1 request)."""
        if not self.has_stub_status:
            raise RuntimeError("nginx has no stub_status module")
        status, _, body = http_get(self.port, "/_status")
        assert status == 200, "stub_status answered %d" % status
        nums = [int(t) for t in body.decode().replace(":", " ").split() if t.isdigit()]
        keys = ("active", "accepts", "handled", "requests", "reading", "writing", "waiting")
        return dict(zip(keys, nums))

    def active_connections(self) -> int:
        """Client connections open on nginx now, not counting the one used to ask."""
        return self.stub_status()["active"] - 1


# ---- hostile server -------------------------------------------------------------------------------

class Hostile:
    """tests/lib/hostile.py running for a test: a subprocess (default) or a thread in this process.

    .port, .url(path), .stats() (dict, see hostile.py), .reset(), .stop(); context manager.
    """

    def __init__(self, inprocess: bool = False):
        self.proc = None
        self.server = None
        self.dir = None
        if inprocess:
            self.server = hostile.HostileServer()
            self.port = self.server.start()
        else:
            self.dir = tempfile.mkdtemp(prefix="fetchd-hostile-")
            self.stderr_path = os.path.join(self.dir, "stderr.log")
            with open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(
                    [sys.executable, HOSTILE_PY, "--port", "0"], stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=err, preexec_fn=_pdeathsig)
            ready, _, _ = select.select([self.proc.stdout], [], [], 10)
            line = self.proc.stdout.readline().decode() if ready else ""
            self.proc.stdout.close()  # it prints nothing after the PORT line
            if not line.startswith("PORT "):
                _kill_tree(self.proc)
                raise RuntimeError("hostile.py did not start: %r %s" % (line, self._stderr()))
            self.port = int(line.split()[1])
        _LIVE.append(self)

    def _stderr(self) -> str:
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except (OSError, AttributeError):
            return ""

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        """http://host:port/path for this server."""
        return "http://%s:%d%s" % (host, self.port, path)

    def stats(self) -> dict:
        """{"connections", "open", "max_open", "requests", "raw_open", "by_path"}."""
        if self.server:
            return self.server.stats()
        status, _, body = http_get(self.port, "/_stats")
        assert status == 200, "/_stats answered %d" % status
        return json.loads(body)

    def log(self, prefix: str = "") -> list:
        """The server's request log: [{"t", "method", "target", "conn", "headers"}, ...], oldest first."""
        if self.server:
            return self.server.request_log(prefix)
        status, _, body = http_get(self.port, "/_ctl/log?prefix=" + urllib.parse.quote(prefix, safe=""))
        assert status == 200, "/_ctl/log answered %d" % status
        return json.loads(body)

    def set_robots(self, status: int = 200, body: str = "", delay_ms: int = 0):
        """What /robots.txt answers from now on."""
        q = urllib.parse.urlencode({"status": status, "body": body, "delay_ms": delay_ms})
        if self.server:
            self.server.set_robots(status, body.encode(), delay_ms)
        else:
            assert http_get(self.port, "/_ctl/robots?" + q)[0] == 200

    def reset(self):
        """Zero connections/requests/by_path; max_open restarts from what is open now."""
        if self.server:
            self.server.reset()
        else:
            http_get(self.port, "/_reset")

    def stop(self):
        if self.server:
            self.server.stop()
            self.server = None
        if self.proc:
            _kill_tree(self.proc, signal.SIGTERM, 5)
            self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        if self in _LIVE:
            _LIVE.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


# ---- redis ---------------------------------------------------------------------------------------

class RedisError(Exception):
    pass


def _resp_cmd(args) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


def _resp_read(f):
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        return RedisError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise ValueError("bad RESP line %r" % line)


def redis_fields(flat) -> dict:
    """[k1, v1, k2, v2, ...] (bytes) -> {k: v} (str; a repeated key keeps its last value)."""
    return {flat[i].decode(): flat[i + 1].decode(errors="replace") for i in range(0, len(flat or []), 2)}


class Redis:
    """A real redis-server on a free loopback port, its data (append-only file) in a temp dir, so that
    .restart() keeps every stream and consumer group. .port, .url (redis://127.0.0.1:PORT/0),
    .cli(*args) -> redis-cli's raw output (str), .cmd(*args) -> the same split into lines, .stop(),
    .kill() (SIGKILL, no save), .restart(down_s=0). password: requirepass (and .url carries it)."""

    def __init__(self, password: str = "", port: int = 0):
        self.dir = tempfile.mkdtemp(prefix="fetchd-redis-")
        self.password = password
        self.port = port or free_port()
        self.url = "redis://%s127.0.0.1:%d/0" % ((":" + password + "@") if password else "", self.port)
        self.proc = None
        self.start()
        _LIVE.append(self)

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no",
                "--logfile", os.path.join(self.dir, "redis.log")]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=_pdeathsig)
        wait_until(lambda: self.proc.poll() is not None or self._pong(), 10, what="redis-server to answer")
        if self.proc.poll() is not None:
            raise RuntimeError("redis-server exited %s: %s" % (self.proc.returncode, self.log_text()[-2000:]))

    def _pong(self) -> bool:
        try:
            return self.cli("PING").strip() == "PONG"
        except Exception:
            return False

    def log_text(self) -> str:
        try:
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cli(self, *args, timeout: float = 30.0) -> str:
        cmd = ["redis-cli", "--raw", "-h", "127.0.0.1", "-p", str(self.port)]
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        r = subprocess.run(cmd + [str(a) for a in args], capture_output=True, timeout=timeout, env=env)
        return r.stdout.decode(errors="replace")

    def cmd(self, *args, timeout: float = 30.0) -> list:
        out = self.cli(*args, timeout=timeout)
        return out.split("\n")[:-1] if out.endswith("\n") else out.split("\n")

    def pipe(self, cmds, timeout: float = 60.0) -> list:
        """Send many commands on one connection (RESP, pipelined); their replies, in order. An error
        reply comes back as a RedisError object, not raised."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            f = s.makefile("rb")
            pre = [("AUTH", self.password)] if self.password else []
            out = []
            for i in range(0, len(cmds), 1000):
                chunk = pre + list(cmds[i:i + 1000])
                pre = []
                s.sendall(b"".join(_resp_cmd(c) for c in chunk))
                out += [_resp_read(f) for _ in chunk]
            return out[1:] if self.password else out

    def call(self, *args, timeout: float = 30.0):
        """One command: its reply (bytes, int, list, None); RedisError on an error reply."""
        r = self.pipe([args], timeout=timeout)[0]
        if isinstance(r, RedisError):
            raise r
        return r

    def xlen(self, stream: str) -> int:
        v = self.cli("XLEN", stream).strip()
        return int(v) if v.lstrip("-").isdigit() else -1

    def kill(self):
        """SIGKILL: no save at exit (the append-only file has every write already)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, down_s: float = 0.0):
        """Stop (SIGTERM), stay down down_s seconds, start again on the same port with the same data."""
        if self.proc:
            _kill_tree(self.proc, signal.SIGTERM, 10)
        time.sleep(down_s)
        self.start()

    def stop(self):
        if self.proc:
            _kill_tree(self.proc, signal.SIGTERM, 10)
            self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        if self in _LIVE:
            _LIVE.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


# ---- fetchd and fetchctl --------------------------------------------------------------------------

def _bin(env: str, name: str) -> str:
    return os.environ.get(env) or os.path.join(REPO, "build", name)


LOOPBACK_ALLOW = "127.0.0.0/8, ::1/128"


def write_conf(path: str, conf) -> None:
    """Write an INI file: conf is {section: {key: value}} (values str()'d, True/False -> true/false,
    lists joined with ", "), raw text, or None (an empty file)."""
    if conf is None:
        text = ""
    elif isinstance(conf, str):
        text = conf
    else:
        out = []
        for section, keys in conf.items():
            out.append("[%s]" % section)
            for k, v in keys.items():
                if isinstance(v, bool):
                    v = "true" if v else "false"
                elif isinstance(v, (list, tuple)):
                    v = ", ".join(str(x) for x in v)
                out.append("%s = %s" % (k, v))
            out.append("")
        text = "\n".join(out)
    with open(path, "w") as f:
        f.write(text)


class FetchdStartError(AssertionError):
    """fetchd exited or never opened its socket; .rc (None if still running) and .log."""

    def __init__(self, msg, rc, log):
        super().__init__("%s (exit %s); log:\n%s" % (msg, rc, log[-4000:]))
        self.rc, self.log = rc, log


class Fetchd:
    """build/fetchd -c CONF -s SOCK running in a private temp dir.

    conf: {section: {key: value}}, raw INI text, or None (empty file). extra_args go after -s SOCK.
    FETCHD_BIN overrides the binary; FETCHD_WRAP (e.g. "valgrind -q --error-exitcode=99") prefixes it.
    With wait=True the constructor returns once the socket accepts a connection (timeout s), raising
    FetchdStartError if the daemon exits first or takes longer.
    .pid, .sock, .conf_path, .log_path, .log_text(), .fd_count(), .rss_kb(), .alive(), .wait_exit(),
    .signal(sig), .stop() -> exit code. Context manager (stop + remove the temp dir).
    """

    def __init__(self, conf=None, extra_args=(), wait: bool = True, timeout: float = 5.0, env=None,
                 loopback: bool = True):
        """loopback: add [security] allow_addresses = 127.0.0.0/8, ::1/128 unless conf sets it.
        A dict conf without a [retry] section gets [retry] times = 0 (tests that want retries say so),
        and one without [jobs] dir gets [jobs] dir = DIR/jobs."""
        self.dir = tempfile.mkdtemp(prefix="fetchd-test-")
        self.sock = os.path.join(self.dir, "ctl.sock")
        self.conf_path = os.path.join(self.dir, "fetchd.conf")
        self.log_path = os.path.join(self.dir, "fetchd.log")
        self.rc = None
        if loopback and (conf is None or isinstance(conf, dict)):
            # The tests fetch from loopback origins, which the built-in address policy refuses.
            conf = dict(conf or {})
            conf["security"] = dict(conf.get("security", {}))
            conf["security"].setdefault("allow_addresses", LOOPBACK_ALLOW)
        if isinstance(conf, dict) and "retry" not in conf:
            # One attempt per URL unless a test asks for retries: outcomes and timings stay exact.
            conf = dict(conf, retry={"times": 0})
        if isinstance(conf, dict) and "dir" not in conf.get("jobs", {}):
            # Detached jobs spool in the test's directory, not in /var/lib/fetchd.
            conf = dict(conf, jobs=dict(conf.get("jobs", {}), dir=os.path.join(self.dir, "jobs")))
        write_conf(self.conf_path, conf)
        argv = shlex.split((env or {}).get("FETCHD_WRAP", os.environ.get("FETCHD_WRAP", "")))
        argv += [_bin("FETCHD_BIN", "fetchd"), "-c", self.conf_path, "-s", self.sock]
        argv += [str(a) for a in extra_args]
        self.argv = argv
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=self.dir, env=full_env, preexec_fn=_pdeathsig)
        self.pid = self.proc.pid
        _LIVE.append(self)
        if wait:
            try:
                self.wait_ready(timeout)
            except BaseException:
                self.stop()  # the exception carries the log; leave nothing behind
                shutil.rmtree(self.dir, ignore_errors=True)
                raise

    def wait_ready(self, timeout: float = 5.0):
        """Wait until the control socket exists and accepts a connection."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise FetchdStartError("fetchd exited before it was ready", self.proc.returncode,
                                       self.log_text())
            if os.path.exists(self.sock):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(self.sock)
                    return self
                except OSError:
                    pass
                finally:
                    s.close()
            if time.monotonic() >= deadline:
                raise FetchdStartError("fetchd not ready after %.1fs" % timeout, None,
                                       self.log_text())
            time.sleep(0.01)

    def log_text(self) -> str:
        """Everything fetchd wrote to stderr/stdout so far."""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def fd_count(self) -> int:
        """Open file descriptors of the daemon."""
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def fd_list(self) -> list:
        """What the daemon's descriptors point at, sorted (for failure messages)."""
        return sorted(os.readlink("/proc/%d/fd/%s" % (self.pid, f)) for f in os.listdir("/proc/%d/fd" % self.pid))

    def fds_settle(self, baseline: int, slack: int = 1, timeout: float = 5.0):
        """Wait until the descriptor count is back to baseline (+/- slack); AssertionError listing them."""
        last = [None]

        def ok():
            last[0] = self.fd_count()
            return abs(last[0] - baseline) <= slack
        try:
            wait_until(ok, timeout=timeout, what="fd count back to %d" % baseline)
        except AssertionError:
            raise AssertionError("fetchd fd count %s, %d after startup; fds: %s" % (last[0], baseline,
                                                                                  self.fd_list()))

    def rss_kb(self) -> int:
        """Resident set size in KiB (VmRSS)."""
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for pid %d" % self.pid)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 10.0):
        """Wait for the daemon to exit by itself; its exit code (negative: killed by that signal)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("fetchd still running after %.1fs" % timeout)

    def stop(self, timeout: float = 10.0):
        """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit code (-9 if it was killed)."""
        if self.rc is None:
            self.rc = _kill_tree(self.proc, signal.SIGTERM, timeout)
        if self in _LIVE:
            _LIVE.remove(self)
        return self.rc

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        if exc_type is not None:  # show what the daemon said, to explain the failure
            lines = self.log_text().splitlines()[-40:]
            print("--- fetchd log (last %d lines) ---" % len(lines))
            print("\n".join(lines))
            print("--- end of fetchd log ---")
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


def fetchctl(sock: str, args, input_text=None, timeout: float = 60):
    """Run fetchctl -s SOCK ARGS... (FETCHCTL_BIN overrides build/fetchctl); args is a list or a
    shell-like string. Returns (exit code, stdout text, stderr text); AssertionError on timeout."""
    if isinstance(args, str):
        args = shlex.split(args)
    argv = [_bin("FETCHCTL_BIN", "fetchctl"), "-s", sock] + [str(a) for a in args]
    try:
        p = subprocess.run(argv, input=input_text, capture_output=True, text=True, timeout=timeout,
                           errors="replace")
    except subprocess.TimeoutExpired as e:
        raise AssertionError("fetchctl %s timed out after %ss; stderr: %s"
                             % (" ".join(argv[1:]), timeout, e.stderr))
    return p.returncode, p.stdout, p.stderr


def parse_jsonl(text: str) -> list:
    """JSON Lines -> list of objects (blank lines skipped); AssertionError naming a bad line."""
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError as e:
            raise AssertionError("line %d of fetchctl output is not JSON (%s): %r" % (i, e, line[:200]))
    return out


def submit(sock: str, urls, timeout: float = 60, extra_args=()):
    """Write urls (one a line) to a temp file, run `fetchctl -s SOCK submit [extra_args] FILE`.
    Returns (exit code, results parsed from stdout as JSON Lines, stderr text)."""
    fd, path = tempfile.mkstemp(prefix="fetchd-urls-", suffix=".txt")
    try:
        with os.fdopen(fd, "w") as f:
            f.write("".join(u + "\n" for u in urls))
        rc, out, err = fetchctl(sock, ["submit"] + list(extra_args) + [path], timeout=timeout)
    finally:
        os.unlink(path)
    return rc, parse_jsonl(out), err


_warcio = {}


def warc_records(*paths):
    """Every record of the WARC files, as two independent readers see them: tests/lib/warcread.py
    (Python, strict, always) and the npm package warcio (tests/lib/warccheck.mjs; installed by
    tests/lib/npm-deps.sh on first use). Each recomputes every block and payload digest; they must agree
    record by record. Returns warcread's records; AssertionError when a digest is wrong, a file does not
    parse or the readers disagree. Where npm cannot install warcio (no registry), a NOTE says so and
    warcread's check stands alone."""
    import warcread
    try:
        recs = [r for p in paths for r in warcread.read(p)]
    except warcread.WarcError as e:
        raise AssertionError("warcread: %s" % e)
    lib = os.path.join(REPO, "tests", "lib")
    if "ok" not in _warcio:
        why = os.environ.get("FETCHD_WARCIO")  # tests/run-all.sh tried once for every suite
        if why is None:
            p = subprocess.run([os.path.join(lib, "npm-deps.sh")], capture_output=True, text=True, timeout=300)
            why = "ok" if p.returncode == 0 else ((p.stderr.strip().splitlines() or ["?"])[-1])
        _warcio["ok"] = why == "ok"
        if why != "ok":
            print("NOTE: warcio is not available (%s): WARC files are checked by warcread.py alone" % why)
    if not _warcio["ok"]:
        return recs
    p = subprocess.run(["node", os.path.join(lib, "warccheck.mjs")] + list(paths), capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, "warcio check failed (%d): %s\n%s" % (p.returncode, p.stderr, p.stdout[-3000:])
    theirs = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    keys = ("type", "record_id", "target_uri", "ip", "concurrent_to", "content_length", "block_digest_ok",
            "payload_digest_ok", "payload_sha1", "http_status", "http_method", "metadata")
    mine = [{k: r[k] for k in keys} for r in recs]
    assert mine == [{k: r[k] for k in keys} for r in theirs], "warcread and warcio disagree: %s" % (
        [(a, b) for a, b in zip(mine, theirs) if a != {k: b[k] for k in keys}][:2],)
    return recs


def by_url(results) -> dict:
    """{result["url"]: result} (a repeated URL keeps its last result)."""
    return {r["url"]: r for r in results}

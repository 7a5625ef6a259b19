#!/usr/bin/env python3
"""bench.py - fetchd's own benchmark (`make bench`).

    python3 tools/bench/bench.py [--quick] [--peers fetchd,curl_multi,...] [--n N] [WORKLOAD...]

Run from the repository root after `make`. Standard library only (Python 3.11). Everything runs on
this machine's loopback: a private nginx origin, a fresh fetchd per workload, and the peers it is
compared with, each on the same URL list at the same in-flight depth, one after another. Tables go to
stdout (Markdown) and to build/bench/results.md; progress goes to stderr. See tools/bench/README.md.

Debian packages needed (bookworm):
    libcurl4-openssl-dev curl wrk python3-aiohttp nginx-light libnginx-mod-http-echo openssl
plus what `make` needs for build/fetchd and build/fetchctl (make TLS=openssl for the OpenSSL build).
"""

import argparse
import atexit
import fcntl
import http.client
import os
import platform
import re
import resource
import select
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(REPO, "tools", "bench")
OUT_DIR = os.path.join(REPO, "build", "bench")
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
SYS_PYTHON = "/usr/bin/python3"  # Debian's python3, which has python3-aiohttp
CLK_TCK = os.sysconf("SC_CLK_TCK")
F_SETPIPE_SZ = 1031
PEER_TIMEOUT = 600  # seconds; a peer still running after this is killed and reported as failed

ALL_PEERS = ["fetchd", "curl_multi", "curl_cli", "py_aiohttp", "wrk"]
ALL_WORKLOADS = ["same", "hosts", "delay", "big", "tls", "tls-new", "million", "memory"]

# name: URL kind, path, N (default, --quick), in-flight depth, caps on N for the slow peers; the HTTPS
# workloads also say which TLS server of the origin they use ("keep": keep-alive, "new": the origin
# closes after every response) and which peers take part.
WORKLOADS = {
    "same": dict(kind="same", path="/1k.html", n=100000, quick=10000, conc=256,
                 caps={"py_aiohttp": 20000, "curl_cli": 20000},
                 what="one host, keep-alive: N x /1k.html on 127.0.0.1"),
    "hosts": dict(kind="hosts", path="/1k.html", n=20000, quick=5000, conc=256,
                  caps={"py_aiohttp": 20000, "curl_cli": 20000},
                  what="a new connection per fetch: N x /1k.html, each on its own host 127.A.B.C"),
    "delay": dict(kind="hosts", path="/delay", n=40000, quick=10000, conc=2000,
                  caps={"py_aiohttp": 10000, "curl_cli": 20000},
                  what="distinct hosts, 100 ms server think time: N x /delay"),
    "big": dict(kind="same", path="/1m.bin", n=2000, quick=500, conc=64,
                caps={"py_aiohttp": 500, "curl_cli": 20000},
                what="one host, keep-alive, 1 MiB bodies: N x /1m.bin"),
    "tls": dict(kind="same", path="/1k.html", n=50000, quick=10000, conc=64, tls="keep",
                caps={"py_aiohttp": 20000}, peers=("fetchd", "curl_multi", "py_aiohttp", "wrk"),
                what="HTTPS, one host, keep-alive: N x https://127.0.0.1/1k.html"),
    "tls-new": dict(kind="same", path="/1k.html", n=5000, quick=1000, conc=64, tls="new", caps={},
                    peers=("fetchd", "curl_multi", "wrk"),
                    what="HTTPS, a new TLS connection per fetch (the origin closes after every "
                         "response): N x https://127.0.0.1/1k.html"),
    "million": dict(kind="same", path="/1k.html", n=1000000, quick=200000, conc=256, caps={},
                    what="one fetchctl submit of N x /1k.html on 127.0.0.1 (fetchd only)"),
    "memory": dict(kind="hosts", path="/slow", n=5000, quick=5000, conc=5000, caps={},
                   what="fetchd memory per in-flight connection: 5000 x /slow (1 s) on distinct hosts"),
}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------
# Cleanup: every process we start and every setting we change is undone at exit, however we exit.

class Cleanup:
    def __init__(self):
        self.actions = []  # (name, fn), run last-in first-out
        self.children = {}  # pid -> name, peers currently running

    def add(self, name, fn):
        self.actions.append((name, fn))

    def remove(self, name):
        self.actions = [(n, f) for n, f in self.actions if n != name]

    def run(self):
        for pid in list(self.children):
            try:
                os.killpg(pid, signal.SIGKILL)  # each peer runs in its own process group
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.children.pop(pid, None)
        while self.actions:
            name, fn = self.actions.pop()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - keep cleaning up
                log(f"cleanup {name}: {e}")


CLEANUP = Cleanup()
atexit.register(CLEANUP.run)


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------------------------------------------
# Loopback ports: many short connections leave TIME_WAIT sockets behind.

def read_sys(name):
    with open("/proc/sys/" + name.replace(".", "/")) as f:
        return f.read().split()


def write_sys(name, value):
    with open("/proc/sys/" + name.replace(".", "/"), "w") as f:
        f.write(value)


def count_time_wait(port):
    """TCP sockets in TIME_WAIT to or from the origin's port."""
    n = 0
    hexport = f":{port:04X}"
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    _, local, remote, st = line.split(None, 4)[:4]
                    if st == "06" and (local.endswith(hexport) or remote.endswith(hexport)):
                        n += 1
        except OSError:
            pass
    return n


def tune_ports(notes):
    lo, hi = map(int, read_sys("net.ipv4.ip_local_port_range"))
    tw = int(read_sys("net.ipv4.tcp_tw_reuse")[0])
    state = f"ip_local_port_range {lo}-{hi} ({hi - lo + 1} ports), tcp_tw_reuse {tw}"
    log("loopback ports: " + state)
    changes = []
    if tw == 0 or hi - lo + 1 < 28000:
        if os.geteuid() != 0:
            notes.append(f"{state}: TIME_WAIT may exhaust ephemeral ports in hosts/delay; run as root "
                         "to let bench.py set tcp_tw_reuse=1 and widen the range")
            return state
        if tw == 0:
            write_sys("net.ipv4.tcp_tw_reuse", "1")
            CLEANUP.add("tcp_tw_reuse", lambda: write_sys("net.ipv4.tcp_tw_reuse", str(tw)))
            changes.append("net.ipv4.tcp_tw_reuse=1")
        if hi - lo + 1 < 28000:
            write_sys("net.ipv4.ip_local_port_range", "10240 65000")
            CLEANUP.add("port_range", lambda: write_sys("net.ipv4.ip_local_port_range", f"{lo} {hi}"))
            changes.append("net.ipv4.ip_local_port_range=10240 65000")
        msg = f"set {', '.join(changes)} for this run (was {state}; restored at exit)"
        log(msg)
        notes.append(msg)
    return state + ("; changed for the run: " + ", ".join(changes) if changes else " (left as is)")


# ---------------------------------------------------------------------------------------------------
# URL lists

def loop_host(i):
    """A distinct loopback address for each i: 127.A.B.C with A in 1..254, B in 0..255, C in 1..254."""
    a, r = divmod(i, 256 * 254)
    b, c = divmod(r, 254)
    return f"127.{1 + a}.{b}.{1 + c}"


def write_list(path, kind, url_path, n, port, scheme="http"):
    with open(path, "w") as f:
        chunk = []
        for i in range(n):
            host = "127.0.0.1" if kind == "same" else loop_host(i)
            chunk.append(f"{scheme}://{host}:{port}{url_path}?{i}\n")
            if len(chunk) == 10000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    return path


# ---------------------------------------------------------------------------------------------------
# TLS material for the HTTPS workloads, made fresh for every run (as tests/tls/make-certs.sh does).

def make_certs(d):
    """A private ECDSA P-256 CA (ca.crt, ca.key) and, signed by it, a P-256 server certificate for
    DNS:localhost and IP:127.0.0.1 (server.crt, server.key) in directory d."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "req.cnf"), "w") as f:  # no default extensions from openssl.cnf
        f.write("[req]\ndistinguished_name = dn\n[dn]\n")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("basicConstraints = critical,CA:FALSE\n"
                "keyUsage = critical,digitalSignature\n"
                "extendedKeyUsage = serverAuth\n"
                "subjectKeyIdentifier = hash\n"
                "authorityKeyIdentifier = keyid\n"
                "subjectAltName = DNS:localhost,IP:127.0.0.1\n")

    def openssl(*argv):
        p = subprocess.run(["openssl", *argv], cwd=d, capture_output=True, text=True)
        if p.returncode != 0:
            last = (p.stderr.strip().splitlines() or ["?"])[-1]
            raise RuntimeError(f"openssl {argv[0]} failed: {last}")

    for key in ("ca.key", "server.key"):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    openssl("req", "-config", "req.cnf", "-new", "-x509", "-key", "ca.key", "-out", "ca.crt",
            "-days", "30", "-subj", "/CN=fetchd bench CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash")
    openssl("req", "-config", "req.cnf", "-new", "-key", "server.key", "-subj", "/CN=localhost",
            "-out", "server.csr")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "30", "-sha256",
            "-extfile", "server.ext", "-out", "server.crt")
    return {name: os.path.join(d, name) for name in ("ca.crt", "server.crt", "server.key")}


# ---------------------------------------------------------------------------------------------------
# The origin: a private nginx with one worker, listening on every address so that every 127.A.B.C
# reaches it. With tls, two more servers speak HTTPS (TLS 1.2 and 1.3, an ECDSA P-256 certificate,
# a shared session cache and session tickets): tls_port keeps connections alive like the plain one,
# tls_new_port closes every connection after its response (keepalive_timeout 0) and logs, for each
# request, whether its TLS session was resumed.

class Origin:
    def __init__(self, tmp, tls=False):
        self.dir = os.path.join(tmp, "origin")
        self.www = os.path.join(self.dir, "www")
        self.port = 0
        self.tls_port = self.tls_new_port = 0
        self.certs = make_certs(os.path.join(self.dir, "tls")) if tls else None
        self.tls_log = os.path.join(self.dir, "logs", "tls-new.log")
        self.tls_log_offset = 0
        self.proc = None
        for sub in ("www", "tmp", "logs"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        with open(os.path.join(self.www, "1k.html"), "wb") as f:
            f.write((b"<!doctype html><html><body>" + b"fetchd bench " * 80)[:1024 - 15]
                    + b"</body></html>\n")
        with open(os.path.join(self.www, "1m.bin"), "wb") as f:
            f.write(os.urandom(1 << 20))
        self.error_log = os.path.join(self.dir, "logs", "error.log")
        self.log_offset = 0

    def new_errors(self):
        """nginx error-log lines (level error and above) written since the last call."""
        try:
            with open(self.error_log, "rb") as f:
                f.seek(self.log_offset)
                data = f.read()
                self.log_offset = f.tell()
        except OSError:
            return []
        return [line for line in data.decode(errors="replace").splitlines() if line.strip()]

    def error_note(self):
        """A short note on what the origin logged since the last call, or None."""
        lines = self.new_errors()
        if not lines:
            return None
        kinds = {}
        for line in lines:
            m = re.search(r"\[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*?)(?:, client:|$)", line)
            what = re.sub(r'"[^"]*"', '"..."', m.group(2)) if m else line
            kinds[what] = kinds.get(what, 0) + 1
        return "origin errors: " + ", ".join(f"{n} x {w}" for w, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:2])

    def conf(self):
        d = self.dir
        lines = [
            "# generated by tools/bench/bench.py",
            f"load_module {ECHO_MODULE};",
            "worker_processes 1;",
            "daemon off;",
            "master_process on;",
            f"pid {d}/nginx.pid;",
            f"error_log {self.error_log} error;",
            "worker_rlimit_nofile 200000;",
        ]
        if os.geteuid() == 0:
            # As root the worker would switch to nobody, which cannot read the 0700 temp dir.
            lines.append("user root root;")
        lines += [
            "events { worker_connections 65000; multi_accept on; }",
            "http {",
            "    access_log off;",
            "    keepalive_requests 1000000;",
            "    keepalive_timeout 65s;",
            "    sendfile on;",
            "    default_type application/octet-stream;",
            "    types { text/html html; application/octet-stream bin; }",
            f"    client_body_temp_path {d}/tmp/body;",
            f"    proxy_temp_path {d}/tmp/proxy;",
            f"    fastcgi_temp_path {d}/tmp/fastcgi;",
            f"    uwsgi_temp_path {d}/tmp/uwsgi;",
            f"    scgi_temp_path {d}/tmp/scgi;",
            "    server {",
            f"        listen {self.port} reuseport backlog=65535;",
            f"        root {self.www};",
            "        location = /delay { echo_sleep 0.1; echo \"delayed\"; }",
            "        location = /slow { echo_sleep 1.0; echo \"slow\"; }",
            "    }",
        ]
        if self.certs:
            lines += [
                f"    ssl_certificate {self.certs['server.crt']};",
                f"    ssl_certificate_key {self.certs['server.key']};",
                "    ssl_protocols TLSv1.2 TLSv1.3;",
                "    ssl_session_cache shared:SSL:10m;",
                "    ssl_session_tickets on;",
                "    log_format tlsnew '$ssl_session_reused $ssl_protocol $ssl_curve $status';",
                "    server {",
                f"        listen {self.tls_port} ssl backlog=65535;",
                f"        root {self.www};",
                "    }",
                "    server {",
                f"        listen {self.tls_new_port} ssl backlog=65535;",
                f"        root {self.www};",
                "        keepalive_timeout 0;",
                f"        access_log {self.tls_log} tlsnew;",
                "    }",
            ]
        lines.append("}")
        return "\n".join(lines) + "\n"

    def tls_new_seen(self):
        """What the closing TLS server logged since the last call: {"requests", "resumed", "protocols"}
        (protocols: "TLSv1.3 X25519" -> requests)."""
        try:
            with open(self.tls_log, "rb") as f:
                f.seek(self.tls_log_offset)
                data = f.read()
                self.tls_log_offset = f.tell()
        except OSError:
            data = b""
        seen = {"requests": 0, "resumed": 0, "protocols": {}}
        for line in data.decode(errors="replace").splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            seen["requests"] += 1
            seen["resumed"] += parts[0] == "r"
            what = parts[1] + (f" {parts[2]}" if len(parts) > 3 and parts[2] != "-" else "")
            seen["protocols"][what] = seen["protocols"].get(what, 0) + 1
        return seen

    @staticmethod
    def free_port():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("0.0.0.0", 0))
            return s.getsockname()[1]

    def get(self, host, path, port=None):
        if port:
            ctx = ssl.create_default_context(cafile=self.certs["ca.crt"])
            c = http.client.HTTPSConnection(host, port, timeout=3, context=ctx)
        else:
            c = http.client.HTTPConnection(host, self.port, timeout=3)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, len(r.read())
        finally:
            c.close()

    def start(self):
        last = ""
        for _ in range(5):
            self.port = self.free_port()
            if self.certs:
                self.tls_port, self.tls_new_port = self.free_port(), self.free_port()
            conf = os.path.join(self.dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(self.conf())
            self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.dir, "-e", self.error_log],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         preexec_fn=raise_nofile)
            CLEANUP.add("nginx", self.stop)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    last = self.proc.stderr.read().decode(errors="replace")
                    break
                try:
                    if (self.get("127.0.0.1", "/1k.html") == (200, 1024)
                            and self.get("127.9.8.7", "/1m.bin") == (200, 1 << 20)
                            and self.get("127.1.0.1", "/delay")[0] == 200
                            and (not self.certs  # the certificate verifies for the IP and the name
                                 or (self.get("127.0.0.1", "/1k.html", self.tls_port) == (200, 1024)
                                     and self.get("localhost", "/1k.html", self.tls_new_port)
                                     == (200, 1024)))):
                        self.tls_new_seen()  # skip the check's own request
                        return self.new_errors()
                except ssl.SSLError as e:  # not a matter of waiting: the certificates are wrong
                    self.stop()
                    raise SystemExit(f"bench: the origin's HTTPS check failed: {e}")
                except OSError:
                    pass
                time.sleep(0.05)
            self.stop()
            CLEANUP.remove("nginx")
        raise SystemExit(f"bench: nginx did not start: {last.strip()} (see {self.error_log})")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def url(self, host, path, tls=None):
        if tls:
            return f"https://{host}:{self.tls_port if tls == 'keep' else self.tls_new_port}{path}"
        return f"http://{host}:{self.port}{path}"


# ---------------------------------------------------------------------------------------------------
# fetchd: a new daemon per workload, so its peak RSS (VmHWM) belongs to that workload.

class Fetchd:
    def __init__(self, binary, tmp, name, inflight, per_host, tls=None):
        """tls: keys for the [tls] section (ca_file, session_cache_size), or None."""
        self.binary = binary
        self.sock = os.path.join(tmp, f"fetchd-{name}.sock")
        self.conf = os.path.join(tmp, f"fetchd-{name}.conf")
        self.log = os.path.join(tmp, f"fetchd-{name}.log")
        self.proc = None
        with open(self.conf, "w") as f:
            f.write("# generated by tools/bench/bench.py\n"
                    "[daemon]\nlog_level = info\n"
                    f"[control]\nsocket = {self.sock}\nclient_window = {max(4096, 2 * inflight)}\n"
                    f"[fetch]\nmax_inflight = {inflight}\nper_host_connections = {per_host}\n"
                    "[security]\nallow_addresses = 127.0.0.0/8\n")
            if tls:
                f.write("[tls]\n" + "".join(f"{k} = {v}\n" for k, v in tls.items()))

    def start(self):
        self.proc = subprocess.Popen([self.binary, "-c", self.conf, "-s", self.sock],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "w"),
                                     preexec_fn=raise_nofile)
        CLEANUP.add("fetchd", self.stop)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fetchd exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(self.sock)
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("fetchd's socket did not appear: " + self.log_tail())

    def cpu(self):
        """utime + stime in seconds."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def status_kib(self, key):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=5):
        try:
            with open(self.log, errors="replace") as f:
                return " | ".join(line.strip() for line in f.readlines()[-n:])
        except OSError:
            return ""

    def stop_stats(self):
        """The counters of fetchd's `stopped ...` log line (after stop()), e.g. {"tls_handshakes": 64}."""
        try:
            with open(self.log, errors="replace") as f:
                lines = [line for line in f if re.search(r"\bstopped ok=", line)]
        except OSError:
            return {}
        return {k: int(v) for k, v in re.findall(r"\b(\w+)=(\d+)", lines[-1])} if lines else {}

    def log_problems(self):
        """Lines of fetchd's log at warn level or above."""
        try:
            with open(self.log, errors="replace") as f:
                return [line.strip() for line in f if re.search(r"\b(warn|warning|error|crit)\b", line)]
        except OSError:
            return []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------------------------------------------
# Running one peer process: stream its stdout through counters, collect its rusage with wait4.

class Counter:
    """Counts byte patterns in a stream without holding it, and keeps the last few KiB of it."""

    def __init__(self, patterns=()):
        self.patterns = {p: 0 for p in patterns}
        self.carry = {p: b"" for p in patterns}
        self.tail = b""
        self.bytes = 0

    def feed(self, b):
        self.bytes += len(b)
        for p in self.patterns:
            buf = self.carry[p] + b
            self.patterns[p] += buf.count(p)
            self.carry[p] = buf[-(len(p) - 1):] if len(p) > 1 else b""
        self.tail = (self.tail + b)[-8192:]

    def last(self, key):
        """The value of the last `key=N` in the output, or None."""
        m = re.findall(rb"(?m)^" + key.encode() + rb"=(\d+)\s*$", self.tail)
        return int(m[-1]) if m else None


class Proc:
    pass


RUSAGE = {"bin": None, "err": None}  # build/bench/rusage, see tools/bench/rusage.c


def build_tool(name, libs=()):
    """Build build/bench/NAME from tools/bench/NAME.c when missing or older than the source."""
    src = os.path.join(HERE, name + ".c")
    out = os.path.join(OUT_DIR, name)
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        cmd = ["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out, src, *libs]
        log("building: " + " ".join(cmd))
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"building {name} failed: " + (p.stderr.strip().splitlines() or ["?"])[-1])
    return out


def run_proc(argv, counter, errlog, timeout=PEER_TIMEOUT, env=None):
    """Run argv with stdout streamed through counter; returns wall, exit code, CPU and peak RSS.

    The command runs under build/bench/rusage (its own process group), which reports the command's
    own rusage: see rusage.c for why os.wait4() on a child of this Python process overstates RSS."""
    r = Proc()
    r.timed_out = False
    ru_file = errlog + ".rusage"
    if os.path.exists(ru_file):
        os.unlink(ru_file)
    full = [RUSAGE["bin"], ru_file, *argv] if RUSAGE["bin"] else argv
    t0 = time.monotonic()
    p = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=open(errlog, "wb"), cwd=REPO,
                         preexec_fn=raise_nofile, start_new_session=True,
                         env={**os.environ, **env} if env else None)
    CLEANUP.children[p.pid] = argv[0]
    fd = p.stdout.fileno()
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, 1 << 20)
    except OSError:
        pass
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        ready = select.select([fd], [], [], max(0.0, left))[0] if left > 0 else []
        if not ready:
            r.timed_out = True
            os.killpg(p.pid, signal.SIGKILL)
            break
        b = os.read(fd, 1 << 20)
        if not b:
            break
        counter.feed(b)
    _, status, ru = os.wait4(p.pid, 0)
    r.wall = time.monotonic() - t0
    p.returncode = r.rc = os.waitstatus_to_exitcode(status)
    CLEANUP.children.pop(p.pid, None)
    p.stdout.close()
    r.cpu = ru.ru_utime + ru.ru_stime
    r.maxrss_kib = ru.ru_maxrss
    r.rss_exact = False
    try:
        with open(ru_file) as f:
            ut, st, rss = map(int, f.read().split())
        r.cpu, r.maxrss_kib, r.rss_exact = (ut + st) / 1e6, rss, True
    except (OSError, ValueError):
        pass
    try:
        with open(errlog, errors="replace") as f:
            r.stderr = f.read()[-2000:]
    except OSError:
        r.stderr = ""
    return r


class Row:
    def __init__(self, peer, n, mode=None):
        self.peer, self.n = peer, n
        self.mode = mode          # tls-new: "full" or "resumed"; compared with curl_multi's row of it
        self.is_base = peer == "curl_multi"  # the row the "x curl_multi" columns divide by
        self.tls = None           # fetchd: (handshakes, resumed) from its stop log line
        self.tls_note = None      # ... and the note that says so
        self.ok = None
        self.wall = None
        self.rate = None          # fetches/s
        self.cpu = None           # seconds, client (+ daemon for fetchd)
        self.daemon_rss = None    # KiB (fetchd VmHWM)
        self.client_rss = None    # KiB (ru_maxrss)
        self.bytes_rate = None    # bytes/s
        self.notes = []
        self.failed = False

    def finish(self, proc, ok):
        self.ok = ok if ok is not None else 0
        self.wall = proc.wall
        self.rate = self.ok / proc.wall if proc.wall > 0 else 0
        if proc.timed_out:
            self.notes.append(f"killed after {PEER_TIMEOUT} s")
        if proc.rc != 0:
            self.notes.append(f"exit {proc.rc}")
            last = [s for s in proc.stderr.strip().splitlines() if s.strip()]
            if last:
                self.notes.append(last[-1][:200])
        if ok is None:
            self.notes.append("no ok= count in its output")
        if self.ok < 0.99 * self.n:
            self.notes.append(f"only {self.ok} of {self.n} got 200")
        self.failed = bool(proc.timed_out or proc.rc != 0 or ok is None or self.ok < 0.99 * self.n)
        if self.failed:
            self.notes.insert(0, "FAILED")


# ---------------------------------------------------------------------------------------------------
# The peers

class Bench:
    def __init__(self, args, tmp, origin):
        self.args = args
        self.tmp = tmp
        self.origin = origin
        self.lists = {}
        self.curl_multi_bin = None
        self.curl_multi_err = None
        self.tools = {
            "curl_cli": shutil.which("curl"),
            "wrk": shutil.which("wrk"),
            "py_aiohttp": os.path.exists(SYS_PYTHON) and subprocess.run(
                [SYS_PYTHON, "-c", "import aiohttp"], capture_output=True).returncode == 0,
        }

    def url_list(self, kind, path, n, tls=None):
        """tls: None (http on the plain port), "keep" or "new" (https on that TLS server's port)."""
        key = (kind, path, n, tls)
        if key not in self.lists:
            name = f"urls-{kind}-{path.strip('/').replace('.', '_')}-{n}{'-tls-' + tls if tls else ''}.txt"
            port = {None: self.origin.port, "keep": self.origin.tls_port,
                    "new": self.origin.tls_new_port}[tls]
            self.lists[key] = write_list(os.path.join(self.tmp, name), kind, path, n, port,
                                         "https" if tls else "http")
        return self.lists[key]

    def build_curl_multi(self):
        if self.curl_multi_bin or self.curl_multi_err:
            return self.curl_multi_bin
        try:
            self.curl_multi_bin = build_tool("curl_multi", ["-lcurl"])
        except RuntimeError as e:
            self.curl_multi_err = f"{e} (apt-get install libcurl4-openssl-dev)"
            log(self.curl_multi_err)
        return self.curl_multi_bin

    def settle(self, what):
        time.sleep(1)
        log(what)

    def run_fetchd(self, wname, lst, n, conc, per_host=None, extra=(), tls=None, label=None, mode=None,
                   tag=None):
        """tls: the [tls] keys (see Fetchd); label: the row's name; tag: added to the log names."""
        row = Row(label or " ".join(["fetchd", *extra]), n, mode)
        name = f"{wname}-{tag}" if tag else wname
        d = Fetchd(self.args.fetchd, self.tmp, name, conc, per_host or conc, tls)
        try:
            d.start()
        except RuntimeError as e:
            row.failed = True
            row.notes = ["FAILED", str(e)[:200]]
            CLEANUP.remove("fetchd")
            d.stop()
            return row
        try:
            self.settle(f"{wname}: {row.peer} (pid {d.proc.pid}) + fetchctl, {n} URLs, {conc} in flight")
            versions = ({b'"tls_version":"' + v.encode() + b'"': v for v in ("TLSv1.2", "TLSv1.3")}
                        if tls else {})
            cnt = Counter([b'"status":200,"error":null', b'"status":200,', *versions])
            c0 = d.cpu()
            proc = run_proc([self.args.fetchctl, "-q", *extra, "-s", d.sock, "submit", lst], cnt,
                            os.path.join(self.tmp, f"fetchctl-{name}.err"))
            alive = d.alive()
            c1 = d.cpu() if alive else c0
            row.daemon_rss = d.status_kib("VmHWM") if alive else None
            ok = cnt.patterns[b'"status":200,"error":null']
            row.finish(proc, ok)
            s200 = cnt.patterns[b'"status":200,']
            if s200 != ok:
                row.notes.append(f"{s200 - ok} results had status 200 with an error")
            row.cpu = proc.cpu + (c1 - c0)
            row.client_rss = proc.maxrss_kib
            row.notes.append(f"CPU: fetchd {c1 - c0:.2f} s + fetchctl {proc.cpu:.2f} s")
            if not alive:
                row.failed = True
                row.notes.insert(0, f"FAILED: fetchd died ({d.proc.returncode}): {d.log_tail(2)}")
            if versions:
                seen = [f"{cnt.patterns[p]:,} x {v}" for p, v in versions.items() if cnt.patterns[p]]
                row.notes.append("results: " + (", ".join(seen) or "no tls_version"))
        finally:
            d.stop()
            CLEANUP.remove("fetchd")
        probs = d.log_problems()
        if probs:
            row.notes.append(f"fetchd log: {len(probs)} warn/error lines, e.g. {probs[0][:160]}")
        if tls:
            st = d.stop_stats()
            if "tls_handshakes" in st:
                row.tls = (st["tls_handshakes"], st.get("tls_resumed", 0))
                row.tls_note = (f"fetchd log: {row.tls[0]:,} TLS handshakes, {row.tls[1]:,} resumed "
                                f"(conns_opened={st.get('conns_opened', '?')}, "
                                f"conns_reused={st.get('conns_reused', '?')})")
                row.notes.append(row.tls_note)
            else:
                row.notes.append("fetchd log: no stop line with tls_handshakes")
        return row

    def run_client(self, peer, wname, lst, n, conc, cafile=None, env=None, label=None, mode=None):
        """cafile: the CA for https URLs (curl_multi and py_aiohttp); env: extra environment."""
        row = Row(label or peer, n, mode)
        row.is_base = peer == "curl_multi"
        if peer == "curl_multi":
            binary = self.build_curl_multi()
            if not binary:
                row.notes = ["not run", self.curl_multi_err]
                return row
            argv = [binary, lst, str(conc)] + ([cafile] if cafile else [])
        elif peer == "curl_cli":
            if not self.tools["curl_cli"]:
                row.notes = ["not run: curl not installed (apt-get install curl)"]
                return row
            cfg = lst + ".curlrc"
            with open(lst) as src, open(cfg, "w") as out:
                for line in src:
                    out.write(f'url = "{line.strip()}"\noutput = "/dev/null"\n')
            # -s alone still draws the parallel progress meter on stderr in curl 7.88.
            argv = ["curl", "--parallel", "--parallel-max", str(conc), "--parallel-immediate", "-s",
                    "--no-progress-meter", "-w", "%{http_code}\\n", "--config", cfg]
            if conc > 300:
                row.notes.append("curl caps --parallel-max at 300")
        elif peer == "py_aiohttp":
            if not self.tools["py_aiohttp"]:
                row.notes = [f"not run: {SYS_PYTHON} cannot import aiohttp (apt-get install python3-aiohttp)"]
                return row
            argv = [SYS_PYTHON, os.path.join(HERE, "py_aiohttp.py"), lst, str(conc)]
            argv += [cafile] if cafile else []
        else:
            raise ValueError(peer)
        self.settle(f"{wname}: {row.peer}, {n} URLs, {conc} in flight"
                    + (f" ({' '.join(f'{k}={v}' for k, v in env.items())})" if env else ""))
        cnt = Counter([b"200\n"])
        tag = f"-{mode}" if mode else ""
        proc = run_proc(argv, cnt, os.path.join(self.tmp, f"{peer}-{wname}{tag}.err"), env=env)
        ok = cnt.patterns[b"200\n"] if peer == "curl_cli" else cnt.last("ok")
        row.finish(proc, ok)
        row.cpu = proc.cpu
        row.client_rss = proc.maxrss_kib
        if not proc.rss_exact:
            row.notes.append("RSS includes the driver's (no rusage helper)")
        return row

    def run_wrk(self, wname, url, conc, close, mode=None):
        row = Row("wrk", None, mode)
        if not self.tools["wrk"]:
            row.notes = ["not run: wrk not installed (apt-get install wrk)"]
            return row
        argv = ["wrk", "-t1", f"-c{conc}", "-d5s", "--latency"]
        if close:
            argv += ["-H", "Connection: close"]
        argv.append(url)
        self.settle(f"{wname}: wrk {' '.join(shlex.quote(a) for a in argv[1:])}")
        cnt = Counter()
        proc = run_proc(argv, cnt, os.path.join(self.tmp, f"wrk-{wname}.err"), timeout=60)
        out = cnt.tail.decode(errors="replace")
        rq = re.search(r"Requests/sec:\s*([\d.]+)", out)
        tr = re.search(r"Transfer/sec:\s*([\d.]+)\s*([KMGT]?B)", out)
        total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
        if not rq or proc.rc != 0:
            row.failed = True
            row.notes = ["FAILED", f"exit {proc.rc}", (proc.stderr.strip().splitlines() or [""])[-1][:120]]
            return row
        row.rate = float(rq.group(1))
        if tr:
            mult = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[tr.group(2)]
            row.bytes_rate = float(tr.group(1)) * mult
        if total:
            row.ok = int(total.group(1))
            row.wall = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
        errs = re.search(r"Socket errors: (.*)", out)
        if errs:
            row.notes.append("socket errors: " + errs.group(1).strip())
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if non2xx:
            row.notes.append(f"{non2xx.group(1)} non-2xx responses")
        p50 = re.search(r"50%\s+([\d.]+\w+)", out)
        p99 = re.search(r"99%\s+([\d.]+\w+)", out)
        if p50 and p99:
            row.notes.append(f"latency p50 {p50.group(1)}, p99 {p99.group(1)}")
        row.notes.insert(0, "origin ceiling, 5 s" + (", Connection: close" if close else ", keep-alive"))
        return row


# ---------------------------------------------------------------------------------------------------
# Tables

def fmt_int(x):
    return "-" if x is None else f"{x:,.0f}"


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def md_table(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def peer_table(rows, big=False, extra_rows=()):
    # Each row is divided by the curl_multi row of its own mode (tls-new: full handshakes or resumed);
    # rows without a mode by the plain curl_multi row.
    bases = {}
    for r in rows:
        if r.is_base and not r.failed and r.rate and r.mode not in bases:
            bases[r.mode] = r
    wrk = next((r for r in rows if r.peer == "wrk" and r.bytes_rate), None)
    header = ["peer", "URLs", "ok", "wall s", "fetches/s", "x curl_multi", "CPU us/fetch", "CPU x curl_multi"]
    if big:
        header += ["MiB/s", "x wrk"]
    header += ["daemon RSS MiB", "client RSS MiB", "note"]
    out = []
    for r in rows:
        base = bases.get(r.mode)
        cpu_f = r.cpu * 1e6 / r.ok if r.cpu is not None and r.ok else None
        base_cpu = base.cpu * 1e6 / base.ok if base and base.cpu is not None and base.ok else None
        cells = [r.peer, fmt_int(r.n), fmt_int(r.ok), fmt(r.wall, ".2f"), fmt_int(r.rate),
                 fmt(r.rate / base.rate, ".2f") if base and r.rate is not None else "-",
                 fmt(cpu_f, ".1f"),
                 fmt(cpu_f / base_cpu, ".2f") if cpu_f is not None and base_cpu else "-"]
        if big:
            br = r.bytes_rate
            if br is None and r.rate is not None and r.peer != "wrk":
                br = r.rate * (1 << 20)
            cells += [fmt(br / (1 << 20) if br is not None else None, ",.0f"),
                      fmt(br / wrk.bytes_rate, ".2f") if br is not None and wrk else "-"]
        cells += [fmt(r.daemon_rss / 1024 if r.daemon_rss else None, ".1f"),
                  fmt(r.client_rss / 1024 if r.client_rss else None, ".1f"),
                  "; ".join(r.notes)]
        out.append(cells)
    for er in extra_rows:
        out.append(er + [""] * (len(header) - len(er)))
    return md_table(header, out)


# ---------------------------------------------------------------------------------------------------
# Workloads

REPEATS = 3  # fetchd and curl_multi run this many times per workload; the median run is reported


def median_row(rows):
    """The run with the median rate, noting every run's rate (short runs on a shared machine drift)."""
    if len(rows) == 1:
        return rows[0]
    good = sorted((r for r in rows if not r.failed), key=lambda r: r.rate or 0)
    pick = good[len(good) // 2] if good else rows[0]
    pick.notes.insert(0, f"median of {len(rows)} runs: " + ", ".join(fmt_int(r.rate) + "/s" for r in rows))
    return pick


def workload_peers(wname, peers):
    """The peers that take part in wname (the HTTPS workloads name theirs), in the fixed order."""
    only = WORKLOADS[wname].get("peers")
    if only is None:
        return peers
    left_out = [p for p in peers if p not in only]
    if left_out:
        log(f"{wname}: not run for {', '.join(left_out)}")
    return [p for p in peers if p in only]


def run_peer_workload(b, wname, peers, quick, n_override):
    w = WORKLOADS[wname]
    n = n_override or (w["quick"] if quick else w["n"])
    conc = w["conc"]
    tls = w.get("tls")
    lst = b.url_list(w["kind"], w["path"], n, tls)
    ca = b.origin.certs["ca.crt"] if tls else None
    fetchd_tls = {"ca_file": ca} if tls else None
    title = f"{wname}: {w['what']}; N = {n:,}, {conc} in flight"
    log(f"=== {title}")
    rows = []
    for peer in workload_peers(wname, peers):
        if peer == "wrk":
            host = "127.0.0.1" if w["kind"] == "same" else "127.0.0.2"
            rows.append(b.run_wrk(wname, b.origin.url(host, w["path"], tls), conc, w["kind"] != "same"))
        else:
            pn = min(n, w["caps"].get(peer, n))
            plst = lst if pn == n else b.url_list(w["kind"], w["path"], pn, tls)
            reps = REPEATS if peer in ("fetchd", "curl_multi") and wname != "delay" else 1
            if peer == "fetchd":
                row = median_row([b.run_fetchd(wname, plst, pn, conc, tls=fetchd_tls) for _ in range(reps)])
                # The peers do not hash bodies: show fetchd both ways.
                row.notes.append("bodies hashed (SHA-256)")
                rows.append(row)
                row = median_row([b.run_fetchd(wname, plst, pn, conc, extra=("--no-hash",), tls=fetchd_tls)
                                  for _ in range(reps)])
            else:
                row = median_row([b.run_client(peer, wname, plst, pn, conc, cafile=ca) for _ in range(reps)])
            if pn < n:
                row.notes.insert(0, f"first {pn:,} of the {n:,} URLs")
            rows.append(row)
        r = rows[-1]
        origin_note = b.origin.error_note()
        if origin_note:
            r.notes.append(origin_note)
        log(f"{wname}: {peer}: ok={fmt_int(r.ok)} wall={fmt(r.wall, '.2f')} s "
            f"rate={fmt_int(r.rate)}/s {'; '.join(r.notes)}")
        if w["kind"] != "same":
            log(f"TCP sockets in TIME_WAIT on the origin's port: {count_time_wait(b.origin.port)}")
    extra = []
    if wname == "delay":
        extra.append([f"ideal: {conc} in flight / 0.1 s", "-", "-", "-", fmt_int(conc / 0.1)])
    table = peer_table(rows, big=(wname == "big"), extra_rows=extra)
    return title, table, rows


def run_tls_new(b, peers, quick, n_override):
    """tls-new: every fetch on a new TLS connection (the origin closes after each response), with
    full handshakes only and with session resumption, for fetchd and for libcurl multi. Each run is
    checked against the origin's own log of which requests came on a resumed TLS session."""
    wname = "tls-new"
    w = WORKLOADS[wname]
    n = n_override or (w["quick"] if quick else w["n"])
    conc = w["conc"]
    lst = b.url_list(w["kind"], w["path"], n, "new")
    ca = b.origin.certs["ca.crt"]
    title = f"{wname}: {w['what']}; N = {n:,}, {conc} in flight"
    log(f"=== {title}")
    modes = {"full": "full handshakes", "resumed": "resumed"}

    def runs_of(run, reps):
        """reps runs of a peer, each with what the origin saw of it (row.seen)."""
        out = []
        for _ in range(reps):
            b.origin.tls_new_seen()  # skip whatever came before
            row = run()
            row.seen = b.origin.tls_new_seen()
            out.append(row)
        return out

    def finish(runs, mode, note):
        """The median run, with the origin's and fetchd's handshake counts of every run checked.
        mode None: what the origin saw decides (wrk)."""
        if mode is None:
            seen = runs[0].seen
            mode = runs[0].mode = "resumed" if seen["resumed"] > seen["requests"] / 2 else "full"
            runs[0].peer += f", {modes[mode]}"
        row = median_row(runs)
        if len(runs) > 1 and row.tls_note in row.notes:  # said for every run below
            row.notes.remove(row.tls_note)
        protos = sorted({p for r in runs for p in r.seen["protocols"]})
        row.notes.append("origin: requests on resumed sessions "
                         + ", ".join(f"{r.seen['resumed']:,}/{r.seen['requests']:,}" for r in runs)
                         + (" (one per run)" if len(runs) > 1 else "")
                         + (f", {' + '.join(protos)}" if protos else ""))
        if len(runs) > 1 and any(r.tls for r in runs):
            row.notes.append("fetchd log: resumed/handshakes "
                             + ", ".join(f"{r.tls[1]:,}/{r.tls[0]:,}" if r.tls else "?" for r in runs)
                             + (f" (conns_opened={row.tls_note.split('conns_opened=')[1]}"
                                if row.tls_note and "conns_opened=" in row.tls_note else ""))
        bad = []
        for r in runs:
            fetchd_resumed = r.tls[1] if r.tls else 0
            if mode == "full" and (r.seen["resumed"] or fetchd_resumed):
                bad.append(f"{r.seen['resumed']} resumed at the origin"
                           + (f", {fetchd_resumed} in fetchd's log" if r.tls else ""))
            if mode == "resumed" and r.seen["requests"] and r.seen["resumed"] < r.seen["requests"] / 2:
                bad.append(f"only {r.seen['resumed']} of {r.seen['requests']} resumed at the origin")
            if r.tls and r.tls[0] != r.seen["requests"]:
                bad.append(f"fetchd logged {r.tls[0]} handshakes, the origin {r.seen['requests']} requests")
        if bad:
            row.notes.insert(0, f"WARNING: not {modes[mode]}: " + "; ".join(bad[:2]))
        row.notes.append(note)
        origin_note = b.origin.error_note()
        if origin_note:
            row.notes.append(origin_note)
        log(f"{wname}: {row.peer}: ok={fmt_int(row.ok)} wall={fmt(row.wall, '.2f')} s "
            f"rate={fmt_int(row.rate)}/s {'; '.join(row.notes)}")
        return row

    rows = []
    for peer in workload_peers(wname, peers):
        reps = REPEATS if peer in ("fetchd", "curl_multi") else 1
        if peer == "fetchd":
            # session_cache_size = 0: fetchd keeps no session, so every handshake is a full one. Left
            # at its default (10000 host:port entries per worker), the cache resumes all but the
            # connections opened before the first session came back.
            for mode, conf, note in (
                    ("full", {"ca_file": ca, "session_cache_size": 0}, "session_cache_size = 0"),
                    ("resumed", {"ca_file": ca}, "session_cache_size left at its default (10000)")):
                label = f"fetchd, {modes[mode]}"
                runs = runs_of(lambda: b.run_fetchd(wname, lst, n, conc, tls=conf, label=label, mode=mode,
                                                    tag=mode), reps)
                rows.append(finish(runs, mode, "bodies hashed (SHA-256); " + note))
        elif peer == "curl_multi":
            for mode, env, note in (
                    ("full", {"BENCH_NO_SESSION_CACHE": "1"}, "CURLOPT_SSL_SESSIONID_CACHE 0"),
                    ("resumed", None, "libcurl's session cache on (the default)")):
                label = f"curl_multi, {modes[mode]}"
                runs = runs_of(lambda: b.run_client(peer, wname, lst, n, conc, cafile=ca, env=env,
                                                    label=label, mode=mode), reps)
                rows.append(finish(runs, mode, note))
        elif peer == "wrk":
            # wrk has no switch for TLS sessions: the origin's log says which kind of row it is.
            runs = runs_of(lambda: b.run_wrk(wname, b.origin.url("127.0.0.1", w["path"], "new"), conc, True),
                           1)
            rows.append(finish(runs, None, "the handshake kind as the origin saw it"))
        log(f"TCP sockets in TIME_WAIT on the origin's TLS port: {count_time_wait(b.origin.tls_new_port)}")
    table = peer_table(rows)
    table += ("\n\nx curl_multi and CPU x curl_multi divide by the curl_multi row of the same kind of "
              "handshake: the `full handshakes` rows by `curl_multi, full handshakes`, the `resumed` rows "
              "by `curl_multi, resumed`.")
    return title, table, rows


def run_million(b, quick, n_override):
    w = WORKLOADS["million"]
    n = n_override or (w["quick"] if quick else w["n"])
    lst = b.url_list(w["kind"], w["path"], n)
    title = f"million: {w['what']}; N = {n:,}, {w['conc']} in flight"
    log(f"=== {title}")
    row = b.run_fetchd("million", lst, n, w["conc"])
    origin_note = b.origin.error_note()
    if origin_note:
        row.notes.append(origin_note)
    log(f"million: fetchd: ok={fmt_int(row.ok)} wall={fmt(row.wall, '.2f')} s rate={fmt_int(row.rate)}/s")
    return title, peer_table([row]), [row]


def run_memory(b, n_override):
    w = WORKLOADS["memory"]
    n = n_override or w["n"]
    conc = n
    title = (f"memory: {w['what'].replace('5000', f'{n:,}')}; fetchd max_inflight = "
             f"per_host_connections = {conc}")
    log(f"=== {title}")
    warm = b.url_list("same", "/1k.html", 100)
    lst = b.url_list("hosts", "/slow", n)
    notes = []
    d = Fetchd(b.args.fetchd, b.tmp, "memory", conc, conc)
    d.start()
    try:
        rss_start = d.status_kib("VmRSS")
        wp = run_proc([b.args.fetchctl, "-q", "-s", d.sock, "submit", warm],
                      Counter([b'"status":200,"error":null']), os.path.join(b.tmp, "fetchctl-warm.err"),
                      timeout=60)
        if wp.rc != 0:
            notes.append(f"warm-up batch: fetchctl exit {wp.rc}")
        time.sleep(1)
        base = d.status_kib("VmRSS")
        log(f"memory: VmRSS after startup {rss_start} KiB, after warm-up {base} KiB; "
            f"submitting {n} /slow URLs")
        samples = []
        cnt = Counter([b'"status":200,"error":null'])
        # run_proc blocks reading fetchctl's stdout, so VmRSS is sampled every 50 ms by a thread.
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    samples.append(d.status_kib("VmRSS"))
                except OSError:
                    return
                stop.wait(0.05)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        try:
            proc = run_proc([b.args.fetchctl, "-q", "-s", d.sock, "submit", lst], cnt,
                            os.path.join(b.tmp, "fetchctl-memory.err"), timeout=120)
        finally:
            stop.set()
            t.join()
        ok = cnt.patterns[b'"status":200,"error":null']
        peak = max(samples) if samples else None
        hwm = d.status_kib("VmHWM") if d.alive() else None
        if proc.rc != 0:
            notes.append(f"fetchctl exit {proc.rc}: {(proc.stderr.strip().splitlines() or [''])[-1][:120]}")
        if ok < 0.99 * n:
            notes.insert(0, f"FAILED: only {ok} of {n} got 200")
        if proc.wall > 3.0:
            notes.append(f"took {proc.wall:.1f} s for 1 s responses: not all {n} were in flight at once")
        probs = d.log_problems()
        if probs:
            notes.append(f"fetchd log: {len(probs)} warn/error lines, e.g. {probs[0][:160]}")
        origin_note = b.origin.error_note()
        if origin_note:
            notes.append(origin_note)
        per = (peak - base) / n if peak is not None else None
        header = ["in flight", "ok (200)", "wall s", "VmRSS start KiB", "VmRSS base KiB (after warm-up)",
                  "VmRSS peak KiB", "KiB per in-flight conn", "fetchd VmHWM MiB", "fetchctl RSS MiB",
                  "samples", "note"]
        cells = [fmt_int(n), fmt_int(ok), f"{proc.wall:.2f}", fmt_int(rss_start), fmt_int(base),
                 fmt_int(peak), fmt(per, ".1f"), fmt(hwm / 1024 if hwm else None, ".1f"),
                 f"{proc.maxrss_kib / 1024:.1f}", str(len(samples)), "; ".join(notes)]
        log(f"memory: peak VmRSS {peak} KiB, base {base} KiB -> {fmt(per, '.1f')} KiB per in-flight fetch; "
            f"ok={ok} in {proc.wall:.2f} s")
        return title, md_table(header, [cells]), []
    finally:
        d.stop()
        CLEANUP.remove("fetchd")


# ---------------------------------------------------------------------------------------------------

def save_logs(tmp):
    """Keep the peers' stderr and fetchd's logs of this run in build/bench/logs/."""
    dest = os.path.join(OUT_DIR, "logs")
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest, exist_ok=True)
    try:
        for name in sorted(os.listdir(tmp)):
            if name.endswith((".err", ".log")):
                shutil.copy(os.path.join(tmp, name), dest)
        shutil.copy(os.path.join(tmp, "origin", "logs", "error.log"), os.path.join(dest, "nginx-error.log"))
    except OSError as e:
        log(f"saving logs: {e}")


def binary_info(path):
    """`PATH (VERSION, built DATE)`: the repo may have moved on since the binary was built."""
    try:
        v = subprocess.run([path, "-V"], capture_output=True, text=True, timeout=5).stdout.strip()
        built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(path)))
    except (OSError, subprocess.SubprocessError):
        return f"{path} (missing)"
    return f"{os.path.relpath(path, REPO)} ({v or '?'}, built {built})"


def machine_info():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or str(os.cpu_count())
    git = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True,
                         text=True).stdout.strip() or "?"
    return {"nproc": nproc, "cpu": model, "kernel": platform.release(), "git": git}


def main():
    ap = argparse.ArgumentParser(description="fetchd's benchmark against libcurl multi, curl --parallel, "
                                 "aiohttp and wrk on a loopback nginx origin.")
    ap.add_argument("workloads", nargs="*", metavar="WORKLOAD",
                    help=f"any of {' '.join(ALL_WORKLOADS)} (default: all)")
    ap.add_argument("--quick", action="store_true", help="smaller lists (a couple of minutes)")
    ap.add_argument("--peers", default=",".join(ALL_PEERS),
                    help=f"comma-separated subset of {','.join(ALL_PEERS)} (default: all)")
    ap.add_argument("--n", type=int, help="override N for every workload (testing)")
    ap.add_argument("--fetchd", default=os.path.join(REPO, "build", "fetchd"))
    ap.add_argument("--fetchctl", default=os.path.join(REPO, "build", "fetchctl"))
    args = ap.parse_args()
    workloads = args.workloads or ALL_WORKLOADS
    bad = [w for w in workloads if w not in WORKLOADS]
    peers = [p for p in args.peers.split(",") if p]
    badp = [p for p in peers if p not in ALL_PEERS]
    if bad or badp:
        ap.error(f"unknown workload(s) {bad} or peer(s) {badp}")
    peers = [p for p in ALL_PEERS if p in peers]  # fixed order
    for path in (args.fetchd, args.fetchctl):
        if "fetchd" in peers and not os.access(path, os.X_OK):
            sys.exit(f"bench: {path} not found: run `make` first")
    if not shutil.which("nginx") or not os.path.exists(ECHO_MODULE):
        sys.exit("bench: needs nginx and its echo module: apt-get install nginx-light libnginx-mod-http-echo")
    tls = any(WORKLOADS[w].get("tls") for w in workloads)
    if tls and not shutil.which("openssl"):
        sys.exit("bench: the HTTPS workloads need the openssl command: apt-get install openssl")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    raise_nofile()
    os.makedirs(OUT_DIR, exist_ok=True)
    command = "python3 " + shlex.join([os.path.relpath(sys.argv[0], REPO) if os.path.isabs(sys.argv[0])
                                       else sys.argv[0]] + sys.argv[1:])
    started = time.time()
    t0 = time.monotonic()
    info = machine_info()
    load0 = os.getloadavg()
    notes = []
    tmp = tempfile.mkdtemp(prefix="fetchd-bench-")
    CLEANUP.add("tmpdir", lambda: shutil.rmtree(tmp, ignore_errors=True))
    results = []
    ports = "?"
    try:
        ports = tune_ports(notes)
        try:
            origin = Origin(tmp, tls=tls)
        except RuntimeError as e:
            sys.exit(f"bench: making the TLS certificates: {e}")
        for line in origin.start():
            if "setrlimit" in line:
                nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
                notes.append(f"nginx could not raise its open-file limit to 200000 (no CAP_SYS_RESOURCE?): "
                             f"the origin worker has {nofile} file descriptors")
                log(notes[-1])
        log(f"nginx origin (1 worker) on port {origin.port}, all addresses"
            + (f"; HTTPS on {origin.tls_port} (keep-alive) and {origin.tls_new_port} (closes after each "
               f"response), CA {origin.certs['ca.crt']}" if tls else "") + f"; temp dir {tmp}; "
            f"open-file limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}")
        try:
            RUSAGE["bin"] = build_tool("rusage")
        except RuntimeError as e:
            notes.append(f"{e}: client CPU and RSS come from os.wait4, and RSS includes the driver's")
            log(notes[-1])
        b = Bench(args, tmp, origin)
        for wname in workloads:
            try:
                if wname == "million":
                    if "fetchd" not in peers:
                        continue
                    results.append(run_million(b, args.quick, args.n))
                elif wname == "memory":
                    if "fetchd" not in peers:
                        continue
                    results.append(run_memory(b, args.n))
                elif wname == "tls-new":
                    results.append(run_tls_new(b, peers, args.quick, args.n))
                else:
                    results.append(run_peer_workload(b, wname, peers, args.quick, args.n))
            except (RuntimeError, OSError) as e:
                log(f"{wname}: FAILED: {e}")
                results.append((f"{wname}: FAILED", f"FAILED: {e}", []))
            print(f"\n## {results[-1][0]}\n\n{results[-1][1]}\n", flush=True)
    finally:
        total = time.monotonic() - t0
        save_logs(tmp)
        if results:
            load1 = os.getloadavg()
            head = [
                "# fetchd benchmark results",
                "",
                f"- command: `{command}` (from {REPO})",
                f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(started))}",
                f"- machine: nproc {info['nproc']}, CPU {info['cpu']}, kernel {info['kernel']}",
                f"- fetchd: {binary_info(args.fetchd)}; fetchctl: {binary_info(args.fetchctl)}; "
                f"repo at git {info['git']}",
                "- origin: nginx, 1 worker, on the same machine (loopback)"
                + ("; HTTPS with a fresh ECDSA P-256 CA and server certificate, TLS 1.2 and 1.3, "
                   "shared session cache and tickets on" if tls else ""),
                f"- loopback ports: {ports}",
                f"- load average at start {load0[0]:.2f}, at end {load1[0]:.2f} (other work on the "
                "machine skews the figures)",
                f"- total run time: {total:.0f} s",
            ] + [f"- note: {n}" for n in notes]
            body = "\n".join(head) + "\n" + "".join(f"\n## {t}\n\n{tb}\n" for t, tb, _ in results)
            body += ("\nColumns: fetches/s = URLs answered 200 per wall second; x curl_multi = this peer's "
                     "fetches/s divided by libcurl multi's (higher is faster; in tls-new, by the curl_multi "
                     "row of the same kind of handshake, full or resumed); CPU us/fetch = user+system "
                     "CPU per 200 (fetchd: daemon + fetchctl); CPU x curl_multi = that divided by libcurl "
                     "multi's (lower is cheaper); daemon RSS = fetchd VmHWM; client RSS = the client "
                     "process's ru_maxrss.\n")
            out = os.path.join(OUT_DIR, "results.md")
            with open(out, "w") as f:
                f.write(body)
            print("\n" + "=" * 100 + "\n" + body)
            log(f"wrote {os.path.relpath(out, REPO)}; total run time {total:.0f} s")
        CLEANUP.run()
    failed = any(r.failed for _, _, rows in results for r in rows if r.peer.startswith("fetchd"))
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)

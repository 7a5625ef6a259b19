"""test_systemd.py - fetchd as a system service (the "Operations" issue): the units in systemd/ pass
`systemd-analyze verify` and `systemd-analyze security` (overall exposure at most 2.5), the seccomp
filter keeps io_uring; fetchd speaks the sd_notify protocol to a notify socket the test binds (READY=1,
STATUS=, STOPPING=1, WATCHDOG=1); it takes its listening socket from systemd (socket activation) and
leaves it in place; [control] allow_uids/allow_gids refuse other users; `make install`/`uninstall`
put exactly the expected files (man pages included) under DESTDIR; the man pages in man/ render
without groff warnings and cover every key of conf/fetchd.conf and every long option of fetchctl.
Needs systemd-analyze and systemd-socket-activate (the Debian package systemd), groff (groff-base)
and root for the access-control tests (setpriv)."""

import atexit
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (REPO, Fetchd, Hostile, Suite, fetchctl, parse_jsonl,  # noqa: E402
                     pattern_sha256, submit, wait_until, write_conf, LOOPBACK_ALLOW, _kill_tree)

suite = Suite(__file__, timeout=60)
UNITS = os.path.join(REPO, "systemd")
FETCHD = os.environ.get("FETCHD_BIN", os.path.join(REPO, "build", "fetchd"))
FETCHCTL = os.environ.get("FETCHCTL_BIN", os.path.join(REPO, "build", "fetchctl"))
THRESHOLD = 2.5  # the most overall exposure `systemd-analyze security` may report for fetchd.service


def need(tool: str) -> str:
    """The path of tool; a clear failure (never a silent skip) when it is missing."""
    path = shutil.which(tool)
    assert path, "%s not found: install the Debian package systemd (tools/deps.sh lists it)" % tool
    return path


def analyze(*args, cwd=None):
    """systemd-analyze ARGS...: (exit code, stdout, stderr)."""
    p = subprocess.run([need("systemd-analyze")] + list(args), capture_output=True, text=True, timeout=60,
                       cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def units_for_test(tmp: str) -> str:
    """The units copied into tmp with ExecStart pointing at the fetchd under test (verify checks that
    the binary exists); tmp."""
    for name in ("fetchd.service", "fetchd.socket"):
        with open(os.path.join(UNITS, name)) as f:
            text = f.read()
        with open(os.path.join(tmp, name), "w") as f:
            f.write(text.replace("/usr/local/bin/fetchd", FETCHD))
    return tmp


# ---- 1. the units ----------------------------------------------------------------------------------

@suite.test
def units_pass_systemd_analyze_verify():
    tmp = tempfile.mkdtemp(prefix="fetchd-units-")
    try:
        units_for_test(tmp)
        rc, out, err = analyze("verify", "--man=no", "fetchd.service", "fetchd.socket", cwd=tmp)
        # verify exits 0 on unknown keys and only warns: any output at all is a failure
        assert rc == 0 and not err.strip() and not out.strip(), "rc %d\n%s%s" % (rc, out, err)
        # and it does catch a mistake (so a clean run means something)
        with open(os.path.join(tmp, "fetchd.service")) as f:
            text = f.read()
        with open(os.path.join(tmp, "fetchd.service"), "w") as f:
            f.write(text.replace("Restart=on-failure", "Restrat=on-failure"))
        rc, out, err = analyze("verify", "--man=no", "fetchd.service", cwd=tmp)
        assert "Restrat" in err, "verify did not flag an unknown key: %r %r" % (out, err)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@suite.test
def service_exposure_is_at_most_2_5():
    unit = os.path.join(UNITS, "fetchd.service")
    # systemd 252: --threshold is an integer on the 0..100 scale (10 x the printed figure)
    rc, out, err = analyze("security", "--offline=yes", "--threshold=%d" % int(THRESHOLD * 10), unit)
    m = re.search(r"Overall exposure level for fetchd\.service: ([0-9.]+)", out)
    assert m, "no exposure figure in the output (rc %d):\n%s%s" % (rc, out[-2000:], err)
    level = float(m.group(1))
    assert rc == 0 and level <= THRESHOLD, "exposure %.1f (rc %d), at most %.1f allowed:\n%s" % (
        level, rc, THRESHOLD, out)
    print("  overall exposure %.1f" % level)


@suite.test
def syscall_filter_keeps_io_uring():
    rc, out, err = analyze("syscall-filter", "@system-service", "@aio")
    assert rc == 0, err
    names = set(out.split())
    with open(os.path.join(UNITS, "fetchd.service")) as f:
        text = f.read()
    assert "SystemCallFilter=@system-service" in text and "\nSystemCallFilter=io_uring_setup " in text, text
    for call in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
        assert call in names, "%s is in neither @system-service nor @aio on this systemd" % call
    for line in text.splitlines():  # nothing denies them again
        if line.startswith("SystemCallFilter=~"):
            denied = line.split("=~", 1)[1].split()
            assert not any("io_uring" in d or d == "@aio" for d in denied), line


@suite.test
def socket_unit_and_sysusers():
    with open(os.path.join(UNITS, "fetchd.socket")) as f:
        sock = f.read()
    for want in ("ListenStream=/run/fetchd.sock", "SocketMode=0660", "SocketUser=root", "SocketGroup=fetchd"):
        assert "\n" + want + "\n" in sock, want
    with open(os.path.join(UNITS, "fetchd.sysusers")) as f:
        lines = [l for l in f.read().splitlines() if l.strip() and not l.startswith("#")]
    assert lines == ['u fetchd - "fetchd batch fetcher"'], lines
    with open(os.path.join(UNITS, "fetchd.service")) as f:
        svc = f.read()
    for want in ("Type=notify", "User=fetchd", "Group=fetchd", "ExecStart=/usr/local/bin/fetchd -c "
                 "/etc/fetchd/fetchd.conf", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure",
                 "LimitNOFILE=65536", "#WatchdogSec="):
        assert "\n" + want in svc, want


# ---- 2. sd_notify ------------------------------------------------------------------------------------

class Notify:
    """A notify socket like systemd's: AF_UNIX SOCK_DGRAM bound in a temp dir (or abstract "@name").
    .env for Fetchd(env=...), .wait_for(prefix) -> the message, .messages (every line so far)."""

    def __init__(self, abstract: bool = False):
        self.dir = tempfile.mkdtemp(prefix="fetchd-notify-")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "fetchd-test-notify-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.sock.bind("\0" + name)
            self.env = {"NOTIFY_SOCKET": "@" + name}
        else:
            path = os.path.join(self.dir, "notify.sock")
            self.sock.bind(path)
            self.env = {"NOTIFY_SOCKET": path}
        self.messages = []  # (monotonic time, line)

    def _recv(self, timeout: float) -> bool:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return False
        now = time.monotonic()
        self.messages += [(now, line) for line in data.decode().split("\n") if line]
        return True

    def wait_for(self, pred, timeout: float = 5.0, what: str = ""):
        """The first line (from the start) for which pred(line) holds; AssertionError on timeout."""
        if isinstance(pred, str):
            prefix = pred
            pred = lambda l: l.startswith(prefix)  # noqa: E731
        seen = 0
        deadline = time.monotonic() + timeout
        while True:
            for _, line in self.messages[seen:]:
                if pred(line):
                    return line
            seen = len(self.messages)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no notification %s within %.1fs; got %r" % (
                    what, timeout, [l for _, l in self.messages][-20:]))
            self._recv(left)

    def drain(self, seconds: float):
        """Collect for this long."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._recv(deadline - time.monotonic())

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def lines(n: Notify):
    return [l for _, l in n.messages]


@suite.test
def notify_ready_status_and_stopping():
    with Notify() as n, Hostile() as h:
        d = Fetchd(wait=False, env=n.env)
        with d:
            n.wait_for("READY=1", what="READY=1")
            # READY=1 means the socket already accepts connections
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.sock)
            s.close()
            assert lines(n)[0] == "READY=1", lines(n)
            assert lines(n).count("READY=1") == 1, lines(n)
            first = n.wait_for("STATUS=", what="the first STATUS=")
            assert re.fullmatch(r"STATUS=(0|1) clients?, 0 fetches in flight, 0 done", first), first
            # a batch of slow URLs shows up in the summary (at most a second late)
            urls = [h.url("/delay?ms=2500&len=10&k=%d" % i) for i in range(5)]
            path = os.path.join(d.dir, "urls.txt")
            with open(path, "w") as f:
                f.write("".join(u + "\n" for u in urls))
            p = subprocess.Popen([FETCHCTL, "-s", d.sock, "-q", "submit", path], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            busy = n.wait_for(lambda l: l == "STATUS=1 client, 5 fetches in flight, 0 done", timeout=3,
                              what="STATUS with the batch in flight")
            out, err = p.communicate(timeout=20)
            assert p.returncode == 0 and len(parse_jsonl(out)) == 5, err
            n.wait_for("STATUS=0 clients, 0 fetches in flight, 5 done", timeout=3, what="STATUS after it")
            # at most one STATUS per second
            stamps = [t for t, l in n.messages if l.startswith("STATUS=")]
            gaps = [b - a for a, b in zip(stamps, stamps[1:])]
            assert all(g >= 0.9 for g in gaps), (gaps, lines(n))
            d.signal(15)
            n.wait_for("STOPPING=1", what="STOPPING=1 after SIGTERM")
            assert d.wait_exit(10) == 0, d.log_text()
            assert busy and "WATCHDOG=1" not in lines(n), lines(n)  # no WATCHDOG_USEC: no pings


@suite.test
def notify_watchdog_at_half_the_period():
    with Notify() as n:
        with Fetchd(env=dict(n.env, WATCHDOG_USEC="200000")) as d:
            n.wait_for("READY=1")
            n.drain(1.05)
            pings = [t for t, l in n.messages if l == "WATCHDOG=1"]
            assert 8 <= len(pings) <= 13, "%d pings in about 1 s: %r" % (len(pings), lines(n))
            gaps = [b - a for a, b in zip(pings, pings[1:])]
            assert all(0.05 <= g <= 0.2 for g in gaps), gaps
            assert d.alive()
    with Notify() as n:  # WATCHDOG_PID names another process: not ours to ping
        with Fetchd(env=dict(n.env, WATCHDOG_USEC="200000", WATCHDOG_PID="1")):
            n.wait_for("READY=1")
            n.drain(0.5)
            assert "WATCHDOG=1" not in lines(n), lines(n)


@suite.test
def notify_abstract_socket_and_bad_values():
    with Notify(abstract=True) as n:
        with Fetchd(env=n.env) as d:
            n.wait_for("READY=1", what="READY=1 on an abstract socket")
            d.signal(2)
            n.wait_for("STOPPING=1", what="STOPPING=1 after SIGINT")
            assert d.wait_exit(10) == 0
    # a NOTIFY_SOCKET fetchd cannot use is a warning, not a failed start
    with Fetchd(env={"NOTIFY_SOCKET": "relative/path"}) as d:
        rc, res, err = submit(d.sock, [])
        assert rc == 0, err
        assert "NOTIFY_SOCKET: Invalid argument" in d.log_text(), d.log_text()


# ---- 3. socket activation ------------------------------------------------------------------------

class Activated:
    """fetchd started by systemd-socket-activate -l PATH (it listens, then execs fetchd on the first
    connection with LISTEN_FDS=1 and LISTEN_PID = its own pid). .sock, .conf_path, .log_text(),
    .stop() -> fetchd's exit code."""

    def __init__(self, conf=None):
        self.dir = tempfile.mkdtemp(prefix="fetchd-activate-")
        self.sock = os.path.join(self.dir, "activated.sock")
        self.conf_path = os.path.join(self.dir, "fetchd.conf")
        self.log_path = os.path.join(self.dir, "fetchd.log")
        write_conf(self.conf_path, conf or {"security": {"allow_addresses": LOOPBACK_ALLOW}, "retry": {"times": 0}})
        argv = [need("systemd-socket-activate"), "-l", self.sock, FETCHD, "-c", self.conf_path]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        wait_until(lambda: os.path.exists(self.sock) or self.proc.poll() is not None, what="the socket")
        assert self.proc.poll() is None, self.log_text()

    def log_text(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self) -> int:
        return _kill_tree(self.proc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        if exc[0] is not None:
            print("--- log ---\n" + self.log_text()[-3000:])
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


@suite.test
def socket_activation_serves_and_leaves_the_socket():
    with Hostile() as h, Activated() as a:
        mode = os.stat(a.sock).st_mode & 0o7777
        urls = [h.url("/ok?len=33&k=%d" % i) for i in range(50)]
        rc, res, err = submit(a.sock, urls)  # the first connection starts fetchd
        assert rc == 0 and len(res) == 50, err + a.log_text()
        assert all(r["body_sha256"] == pattern_sha256(33) for r in res), res[:2]
        log = a.log_text()
        assert "socket activation: listening on %s (file descriptor 3" % a.sock in log, log
        assert "socket=%s " % a.sock in log, log
        assert os.stat(a.sock).st_mode & 0o7777 == mode, "fetchd changed the mode of systemd's socket"
        rc, res, err = submit(a.sock, urls[:3])  # and again: it keeps serving the same socket
        assert rc == 0 and len(res) == 3, err
        assert a.stop() == 0, a.log_text()
        assert os.path.exists(a.sock), "fetchd removed the socket systemd handed it"
        assert "stopped ok=53" in a.log_text(), a.log_text()


def start_with_fd3(fd3_setup: str, env_pid: str = "$$", fds: str = "1", pass_fds=(), timeout=10):
    """fetchd run through `sh -c '...; LISTEN_PID=... LISTEN_FDS=... exec fetchd'`: (exit code or None if
    still running, log text, the Popen, the dir)."""
    tmp = tempfile.mkdtemp(prefix="fetchd-fd3-")
    conf, sock = os.path.join(tmp, "fetchd.conf"), os.path.join(tmp, "own.sock")
    write_conf(conf, {"security": {"allow_addresses": LOOPBACK_ALLOW}})
    script = '%s; LISTEN_PID=%s LISTEN_FDS=%s exec "$0" -c "$1" -s "$2"' % (fd3_setup, env_pid, fds)
    p = subprocess.Popen(["sh", "-c", script, FETCHD, conf, sock], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, pass_fds=pass_fds)
    try:
        out, _ = p.communicate(timeout=2)
        return p.returncode, out, p, tmp
    except subprocess.TimeoutExpired:
        return None, "", p, tmp


@suite.test
def socket_activation_refuses_a_wrong_descriptor():
    cases = [("exec 3</etc/hosts", "1", (), "file descriptor 3 is not a socket"),
             ("exec 3<&-", "1", (), "file descriptor 3 is not a socket"),
             ("true", "zero", (), "LISTEN_FDS='zero'")]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    unlistened = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        for s, what in ((udp, "domain 2, type 2"), (unlistened, "domain 1, type 1, listening 0")):
            assert s.fileno() < 10, "sh redirections take one digit: %d" % s.fileno()
            cases.append(("exec 3<&%d" % s.fileno(), "1", (s.fileno(),), what))
        for setup, fds, pass_fds, want in cases:
            rc, out, p, tmp = start_with_fd3(setup, fds=fds, pass_fds=pass_fds)
            shutil.rmtree(tmp, ignore_errors=True)
            if rc is None:
                _kill_tree(p)
            assert rc == 1 and "socket activation: " in out and want in out, (setup, rc, out)
            assert not os.path.exists(os.path.join(tmp, "own.sock")), setup
    finally:
        udp.close()
        unlistened.close()


@suite.test
def listen_pid_of_another_process_is_ignored():
    rc, out, p, tmp = start_with_fd3("exec 3</etc/hosts", env_pid="1")
    try:
        assert rc is None, "fetchd exited (%s): %s" % (rc, out)
        sock = os.path.join(tmp, "own.sock")
        wait_until(lambda: os.path.exists(sock), what="its own socket")
        rc2, res, err = submit(sock, [])
        assert rc2 == 0, err
        assert _kill_tree(p) == 0
        assert not os.path.exists(sock), "fetchd's own socket is removed at exit, as before"
    finally:
        _kill_tree(p)
        shutil.rmtree(tmp, ignore_errors=True)


# ---- 4. access control -----------------------------------------------------------------------------

DENIED = "permission denied: uid %d is not allowed (see [control] allow_uids)"


_public = {}


def public_fetchctl() -> str:
    """A copy of fetchctl that any user can run: the checkout may sit under a private directory (/root),
    and a fresh chroot's own root directory may be 0700 (then it gets o+x for the rest of the run)."""
    if "path" not in _public:
        st = os.stat("/")
        if (st.st_mode & 0o011) != 0o011:
            os.chmod("/", st.st_mode | 0o011)
            atexit.register(os.chmod, "/", st.st_mode)
        d = tempfile.mkdtemp(prefix="fetchctl-any-")
        os.chmod(d, 0o755)
        _public["path"] = os.path.join(d, "fetchctl")
        shutil.copy(FETCHCTL, _public["path"])
        os.chmod(_public["path"], 0o755)
        atexit.register(shutil.rmtree, d, True)
    return _public["path"]


def as_user(d, uid: int, gid: int, groups, urls):
    """fetchctl submit - as uid/gid with supplementary groups (setpriv, needs root): (rc, stdout, stderr)."""
    assert os.geteuid() == 0, "the access-control tests run fetchctl as other users: run them as root"
    grp = ["--groups=" + ",".join(str(g) for g in groups)] if groups else ["--clear-groups"]
    argv = [need("setpriv"), "--reuid=%d" % uid, "--regid=%d" % gid] + grp
    argv += [public_fetchctl(), "-s", d.sock, "-q", "submit", "-"]
    p = subprocess.run(argv, input="".join(u + "\n" for u in urls), capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def open_up(d):
    """Let any user reach the socket, so that only fetchd's own check decides."""
    os.chmod(d.dir, 0o755)
    os.chmod(d.sock, 0o666)


def refused(d, rc, out, err, uid):
    assert rc == 4 and out == "" and DENIED % uid in err, (rc, out, err)
    want = "refused a client: %s (pid=" % (DENIED % uid)
    wait_until(lambda: want in d.log_text(), what="the refusal in the log")
    line = [l for l in d.log_text().splitlines() if want in l][-1]
    assert re.search(r"\(pid=[1-9][0-9]* uid=%d " % uid, line), line


@suite.test
def access_default_is_root_own_uid_and_socket_group():
    with Hostile() as h, Fetchd() as d:
        open_up(d)
        urls = [h.url("/ok?len=5&k=%d" % i) for i in range(3)]
        rc, out, err = as_user(d, 65534, 65534, [], urls)
        refused(d, rc, out, err, 65534)
        # the socket file's group (root's, 0, here) lets a member in: as primary or supplementary group
        for gid, groups in ((0, []), (65534, [0])):
            rc, out, err = as_user(d, 65534, gid, groups, urls)
            assert rc == 0 and len(parse_jsonl(out)) == 3, (gid, groups, rc, err)
        rc, res, err = submit(d.sock, urls)  # root
        assert rc == 0 and len(res) == 3, err
        assert d.alive() and "connected pid=" in d.log_text()


@suite.test
def access_lists_allow_exactly_what_they_name():
    with Hostile() as h, Fetchd({"control": {"allow_uids": "65534", "allow_gids": "4242, 4343"}}) as d:
        open_up(d)
        urls = [h.url("/ok?len=9&k=%d" % i) for i in range(4)]
        rc, out, err = as_user(d, 65534, 65534, [], urls)
        res = parse_jsonl(out)
        assert rc == 0 and len(res) == 4 and all(r["body_sha256"] == pattern_sha256(9) for r in res), err
        rc, out, err = as_user(d, 65533, 65533, [], urls)
        refused(d, rc, out, err, 65533)
        for gid, groups in ((4343, []), (65533, [7, 4242])):  # a listed group, primary or supplementary
            rc, out, err = as_user(d, 65533, gid, groups, urls)
            assert rc == 0 and len(parse_jsonl(out)) == 4, (gid, groups, rc, err)
        rc, out, err = as_user(d, 65533, 65533, [0], urls)  # the socket's group no longer counts
        refused(d, rc, out, err, 65533)
        rc, res, err = submit(d.sock, urls)  # root always may
        assert rc == 0 and len(res) == 4, err


# ---- reload (SIGHUP) ------------------------------------------------------------------------------

def echo_headers(d, h) -> dict:
    """The request headers fetchd sent to /echo-request, through a fetch that keeps the body (hostile's
    request log: {name: value})."""
    target = "/echo-request?r=%f" % time.monotonic()
    rc, res, err = submit(d.sock, [h.url(target)])
    assert rc == 0 and len(res) == 1 and res[0]["error"] is None, (rc, res, err)
    reqs = [r for r in h.log() if r["target"] == target]
    assert len(reqs) == 1, reqs
    return {k.lower(): v for k, v in reqs[0]["headers"]}


def reload_conf(d, conf, marker: str, timeout: float = 5.0) -> str:
    """Rewrite the daemon's file, SIGHUP, and wait for the log line that starts with marker (after the
    ones already there); returns that line."""
    before = d.log_text().count(marker)
    if isinstance(conf, dict) and "jobs" not in conf:  # as the harness started it (a restart-only key)
        conf = dict(conf, jobs={"dir": os.path.join(d.dir, "jobs")})
    write_conf(d.conf_path, conf)
    d.signal(1)
    wait_until(lambda: d.log_text().count(marker) > before, timeout=timeout, what="'%s' in the log" % marker)
    return [l for l in d.log_text().splitlines() if marker in l][-1]


BASE = {"security": {"allow_addresses": LOOPBACK_ALLOW}, "retry": {"times": 0}}


@suite.test
def reload_applies_live_keys_and_names_restart_keys():
    with Notify() as n, Hostile() as h:
        conf = dict(BASE, fetch={"user_agent": "before/1"})
        with Fetchd(conf, env=n.env) as d:
            assert echo_headers(d, h)["user-agent"] == "before/1"
            rc, res, err = submit(d.sock, [h.url("/ok?len=5000")])
            assert rc == 0 and res[0]["error"] is None and res[0]["body_bytes"] == 5000, res
            new = dict(BASE, fetch={"user_agent": "after/2", "max_body_bytes": 1000},
                       daemon={"workers": 3}, dns={"servers": "127.0.0.1:1"})
            line = reload_conf(d, new, "reload file=")
            assert 'changed=2 keys="fetch.max_body_bytes, fetch.user_agent"' in line, line
            wait_until(lambda: "need a restart" in d.log_text(), what="the restart warning")  # written after
            warn = [l for l in d.log_text().splitlines() if "need a restart" in l]
            assert warn and "daemon.workers, dns.servers changed in " + d.conf_path in warn[-1], warn
            assert echo_headers(d, h)["user-agent"] == "after/2"
            rc, res, err = submit(d.sock, [h.url("/ok?len=5000")])
            e = res[0]["error"]
            assert rc != 0 and e and e["class"] == "too_large" and "1000" in e["message"], res
            # still one lookup path (dns.servers kept its old value): a name from /etc/hosts resolves
            rc, res, err = submit(d.sock, [h.url("/ok?len=10", host="localhost")])
            assert rc == 0 and res[0]["error"] is None, res
            # systemd hears RELOADING=1, then READY=1 again
            n.wait_for("RELOADING=1", what="RELOADING=1")
            n.drain(0.3)
            msgs = lines(n)
            assert msgs.index("RELOADING=1") < len(msgs) - 1 - msgs[::-1].index("READY=1"), msgs


@suite.test
def reload_with_a_bad_file_keeps_the_running_configuration():
    robots = {"obey_robots": "yes"}
    with Hostile() as h:
        with Fetchd(dict(BASE, fetch={"user_agent": "keep/1"}, politeness=robots)) as d:
            line = reload_conf(d, "[fetch]\nuser_agent = lost/2\nbogus = 1\n", "reload failed")
            assert "keeping the running configuration" in line and "fetchd.conf:3: unknown key 'bogus'" in line, line
            assert echo_headers(d, h)["user-agent"] == "keep/1"
            line = reload_conf(d, dict(BASE, fetch={"timeout_ms": 0}, politeness=robots), "reload failed")
            assert "timeout_ms" in line, line
            # a file the loader takes but the running daemon could not use is refused the same way
            line = reload_conf(d, dict(BASE, fetch={"user_agent": "(no token)"}, politeness=robots), "reload failed")
            assert "no product token" in line, line
            assert echo_headers(d, h)["user-agent"] == "keep/1"
            line = reload_conf(d, dict(BASE, fetch={"user_agent": "good/3"}, politeness=robots), "reload file=")
            assert 'keys="fetch.user_agent"' in line, line
            assert echo_headers(d, h)["user-agent"] == "good/3"
            assert d.alive()


@suite.test
def reload_changes_who_may_connect():
    with Hostile() as h, Fetchd(BASE) as d:
        open_up(d)
        urls = [h.url("/ok?len=5&k=%d" % i) for i in range(2)]
        rc, out, err = as_user(d, 65534, 65534, [], urls)
        refused(d, rc, out, err, 65534)
        reload_conf(d, dict(BASE, control={"allow_uids": "65534"}), "reload file=")
        rc, out, err = as_user(d, 65534, 65534, [], urls)
        assert rc == 0 and len(parse_jsonl(out)) == 2, (rc, err)
        reload_conf(d, BASE, "reload file=")
        rc, out, err = as_user(d, 65534, 65534, [], urls)
        refused(d, rc, out, err, 65534)


@suite.test
def reload_mid_batch_loses_nothing():
    with Hostile() as h, Fetchd(dict(BASE, fetch={"user_agent": "a/1"})) as d:
        urls = [h.url("/delay?ms=%d&len=100&k=%d" % (20 * (i % 10), i)) for i in range(200)]
        path = os.path.join(d.dir, "urls.txt")
        with open(path, "w") as f:
            f.write("".join(u + "\n" for u in urls))
        p = subprocess.Popen([FETCHCTL, "-s", d.sock, "-q", "submit", path], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        for i in range(5):
            time.sleep(0.1)
            reload_conf(d, dict(BASE, fetch={"user_agent": "a/%d" % (i + 2)},
                                politeness={"delay_ms": 0 if i % 2 else 1}), "reload file=")
        out, err = p.communicate(timeout=60)
        res = parse_jsonl(out)
        assert p.returncode == 0 and len(res) == 200, err
        assert sorted(r["url"] for r in res) == sorted(urls)
        assert all(r["error"] is None and r["body_bytes"] == 100 for r in res)
        assert d.log_text().count("reload file=") == 5 and d.alive()


# ---- 5. man pages ---------------------------------------------------------------------------------

MAN_PAGES = ("man1/fetchctl.1", "man5/fetchd.conf.5", "man8/fetchd.8")


@suite.test
def man_pages_render_and_cover_keys_and_options():
    groff = shutil.which("groff")
    assert groff, "groff not found: install the Debian package groff-base (tools/deps.sh lists it)"
    text = {}
    for page in MAN_PAGES:
        path = os.path.join(REPO, "man", os.path.basename(page))
        p = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", path], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0 and not p.stdout and not p.stderr, "%s: rc %d\n%s%s" % (
            path, p.returncode, p.stdout, p.stderr)
        with open(path) as f:
            # roff escapes hyphens (\-) and may break words with \%: compare the plain spelling
            text[page] = f.read().replace("\\-", "-").replace("\\%", "")
    with open(os.path.join(REPO, "conf", "fetchd.conf")) as f:
        keys = sorted(set(re.findall(r"^([a-z_]+) = ", f.read(), re.M)))
    assert len(keys) >= 40, keys
    missing = [k for k in keys if not re.search(r"^\.B %s =" % k, text["man5/fetchd.conf.5"], re.M)]
    assert not missing, "keys of conf/fetchd.conf missing from man/fetchd.conf.5: %s" % missing
    p = subprocess.run([FETCHCTL, "--help"], capture_output=True, text=True, timeout=10)
    longs = sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", p.stdout + p.stderr)))
    assert len(longs) >= 15, (p.returncode, p.stdout, p.stderr)
    missing = [o for o in longs if not re.search(re.escape(o) + r"(?![a-z-])", text["man1/fetchctl.1"])]
    assert not missing, "fetchctl --help options missing from man/fetchctl.1: %s" % missing


# ---- 6. make install / uninstall -------------------------------------------------------------------

def make(*args):
    p = subprocess.run(["make", "-s", "--no-print-directory", "-C", REPO] + list(args), capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, "make %s: %s%s" % (" ".join(args), p.stdout, p.stderr)
    return p.stdout


def tree(root):
    """{relative path: mode} of the files under root, and the set of directories."""
    files, dirs = {}, set()
    for d, subdirs, names in os.walk(root):
        for s in subdirs:
            dirs.add(os.path.relpath(os.path.join(d, s), root))
        for n in names:
            full = os.path.join(d, n)
            files[os.path.relpath(full, root)] = os.stat(full).st_mode & 0o7777
    return files, dirs


@suite.test(timeout=300)
def make_install_and_uninstall():
    tmp = tempfile.mkdtemp(prefix="fetchd-install-")
    try:
        for prefix in ("/usr/local", "/opt/fx"):
            dest = os.path.join(tmp, prefix.strip("/").replace("/", "_"))
            make("install", "DESTDIR=" + dest, "PREFIX=" + prefix)
            p = prefix.lstrip("/")
            files, _ = tree(dest)
            assert files == {
                p + "/bin/fetchd": 0o755, p + "/bin/fetchctl": 0o755,
                p + "/lib/systemd/system/fetchd.service": 0o644, p + "/lib/systemd/system/fetchd.socket": 0o644,
                p + "/lib/sysusers.d/fetchd.conf": 0o644, "etc/fetchd/fetchd.conf": 0o644,
                p + "/share/man/man1/fetchctl.1": 0o644, p + "/share/man/man5/fetchd.conf.5": 0o644,
                p + "/share/man/man8/fetchd.8": 0o644,
            }, sorted(files.items())
            for page in MAN_PAGES:
                with open(os.path.join(dest, p, "share/man", page), "rb") as a, \
                        open(os.path.join(REPO, "man", os.path.basename(page)), "rb") as b:
                    assert a.read() == b.read(), "the installed %s is not man/%s" % (page, os.path.basename(page))
            with open(os.path.join(dest, p, "lib/systemd/system/fetchd.service")) as f:
                unit = f.read()
            assert "\nExecStart=%s/bin/fetchd -c /etc/fetchd/fetchd.conf\n" % prefix in unit, unit
            with open(os.path.join(dest, p, "bin/fetchd"), "rb") as a, open(os.path.join(REPO, "build/fetchd"), "rb") as b:
                assert a.read() == b.read(), "the installed fetchd is not build/fetchd"
            with open(os.path.join(dest, "etc/fetchd/fetchd.conf")) as a, open(os.path.join(REPO, "conf/fetchd.conf")) as b:
                assert a.read() == b.read()
            make("uninstall", "DESTDIR=" + dest, "PREFIX=" + prefix)
            files, dirs = tree(dest)
            assert files == {}, files  # an unedited configuration goes too
            for page in MAN_PAGES:
                assert not os.path.exists(os.path.join(dest, p, "share/man", page)), page
            assert "etc/fetchd" not in dirs, dirs
        # an existing (edited) configuration is never overwritten, nor removed
        dest = os.path.join(tmp, "edited")
        conf = os.path.join(dest, "etc/fetchd/fetchd.conf")
        os.makedirs(os.path.dirname(conf))
        with open(conf, "w") as f:
            f.write("[fetch]\nmax_inflight = 7\n")
        out = make("install", "DESTDIR=" + dest)
        assert "keeping the existing" in out, out
        out = make("uninstall", "DESTDIR=" + dest)
        assert "keeping" in out, out
        files, _ = tree(dest)
        assert list(files) == ["etc/fetchd/fetchd.conf"], files
        with open(conf) as f:
            assert f.read() == "[fetch]\nmax_inflight = 7\n"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    suite.main()

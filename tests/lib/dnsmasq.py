"""dnsmasq.py - a real resolver for tests and tools: dnsmasq on a free port of 127.0.0.1 with a private
zone (Dnsmasq), and a tiny DNS client to probe it (dns_query). Used by tests/integration/test_dns.py and
tools/soak.py. Everything it starts is stopped at exit with the harness's own processes."""

import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time

from harness import _LIVE, _kill_tree, _pdeathsig, free_udp_tcp_port, wait_until

# ---- a tiny DNS client (enough to probe dnsmasq) ------------------------------------------------------

QTYPE = {"A": 1, "AAAA": 28}
RCODE = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}


def dns_packet(name: str, qtype: int, qid: int) -> bytes:
    """A standard recursive query for name/qtype."""
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", qtype, 1)


def _skip_name(b: bytes, o: int) -> int:
    while True:
        n = b[o]
        if n == 0:
            return o + 1
        if n & 0xC0 == 0xC0:
            return o + 2
        o += 1 + n


def dns_query(port: int, name: str, qtype: str = "A", timeout: float = 1.0):
    """Ask 127.0.0.1:port over UDP. Returns (rcode name, [(type, address, ttl)...]) in answer order;
    socket.timeout when nothing comes back."""
    qid = int.from_bytes(os.urandom(2), "big")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(dns_packet(name, QTYPE[qtype], qid), ("127.0.0.1", port))
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.001, deadline - time.monotonic()))
            b, _ = s.recvfrom(4096)
            if len(b) >= 12 and struct.unpack(">H", b[:2])[0] == qid:
                break
    flags, qd, an = struct.unpack(">HHH", b[2:8])
    o = 12
    for _ in range(qd):
        o = _skip_name(b, o) + 4
    answers = []
    for _ in range(an):
        o = _skip_name(b, o)
        rtype, _cls, ttl, rdlen = struct.unpack(">HHIH", b[o:o + 10])
        o += 10
        rdata = b[o:o + rdlen]
        o += rdlen
        if rtype == 1:
            answers.append(("A", socket.inet_ntop(socket.AF_INET, rdata), ttl))
        elif rtype == 28:
            answers.append(("AAAA", socket.inet_ntop(socket.AF_INET6, rdata), ttl))
    return RCODE.get(flags & 0xF, str(flags & 0xF)), answers


# ---- dnsmasq ------------------------------------------------------------------------------------------

class Dnsmasq:
    """dnsmasq answering for the test zone on 127.0.0.1:port, logging every query to a file.

    hosts: [(address, name)...] written to an --addn-hosts file (a name may appear on several lines:
    several addresses). args: more dnsmasq options (--address=, --host-record=, --server=...).
    local_ttl: --local-ttl (dnsmasq's default, 0, is used when None).
    Besides --local=/test/, --local=/#/ makes dnsmasq answer NXDOMAIN (not REFUSED) for every other
    name: c-ares tries the search domains of /etc/resolv.conf after an NXDOMAIN (or first, with a
    high ndots), and a CI machine's search domain must not turn "no such host" into a REFUSED for
    name.<search domain>, which is what fetchd would then report. Counts are kept per exact name
    for the same reason.
    """

    CTL = ".ctl.test"  # names of the probes this helper sends itself; queries() leaves them out

    def __init__(self, hosts=(), args=(), local_ttl=None):
        self.dir = tempfile.mkdtemp(prefix="fetchd-dnsmasq-")
        self.hosts_path = os.path.join(self.dir, "hosts")
        self.log_path = os.path.join(self.dir, "queries.log")
        with open(self.hosts_path, "w") as f:
            f.write("".join("%s %s\n" % (ip, name) for ip, name in hosts))
        self.args = list(args)
        if local_ttl is not None:
            self.args.append("--local-ttl=%d" % local_ttl)
        self.proc = None
        self._probe = 0
        _LIVE.append(self)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        last = ""
        for _attempt in range(5):  # the port may be taken between picking and binding: retry
            self.port = free_udp_tcp_port()
            argv = ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
                    "--port=%d" % self.port, "--listen-address=127.0.0.1", "--bind-interfaces",
                    "--local=/test/", "--local=/#/", "--pid-file=", "--log-queries",
                    "--log-facility=" + self.log_path, "--addn-hosts=" + self.hosts_path] + self.args
            if os.geteuid() == 0:
                argv.append("--user=root")
            err_path = os.path.join(self.dir, "stderr")
            with open(err_path, "wb") as err:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=err, preexec_fn=_pdeathsig)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    # any reply at all means it is serving
                    dns_query(self.port, "ready%s" % self.CTL, timeout=0.1)
                    return
                except OSError:  # socket.timeout, or ECONNREFUSED before it binds
                    pass
            self.proc.kill()
            self.proc.wait()
            with open(err_path, errors="replace") as f:
                last = f.read() + self.log_text()
            if "in use" not in last:
                break
        raise RuntimeError("dnsmasq did not start: " + last[-2000:])

    @property
    def server(self) -> str:
        """The [dns] servers value for fetchd."""
        return "127.0.0.1:%d" % self.port

    def log_text(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def sync(self):
        """Barrier: send a probe and wait until it is in the log, so that every query dnsmasq got
        before it is logged too."""
        self._probe += 1
        name = "sync%d%s" % (self._probe, self.CTL)
        dns_query(self.port, name, timeout=2.0)
        wait_until(lambda: ("] %s from" % name) in self.log_text(), timeout=5, what="dnsmasq log sync")

    def queries(self, sync: bool = True):
        """[(type, name)...] of every query fetchd sent, in order (the probes left out)."""
        if sync:
            self.sync()
        out = []
        for m in re.finditer(r"query\[(\w+)\] (\S+) from ", self.log_text()):
            if not m.group(2).endswith(self.CTL):
                out.append((m.group(1), m.group(2)))
        return out

    def count(self, name: str, qtype: str = "A", sync: bool = True) -> int:
        return sum(1 for q in self.queries(sync) if q == (qtype, name))

    def stop(self):
        if self.proc is not None:
            _kill_tree(self.proc, wait=5)
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

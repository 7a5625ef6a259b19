#!/usr/bin/env python3
"""queue_scale.py - throughput of fetchd daemons sharing a Redis stream, 1..K of them (`make bench-queue`).

    python3 tools/bench/queue_scale.py [--n 30000] [--daemons 1,2,3] [--rounds 3] [--path /1k.html]

Everything on this machine's loopback: a private nginx origin and redis-server (tests/lib/harness.py),
fresh fetchd processes (build/fetchd, or $FETCHD_BIN) with [queue] backend = redis. Each round enqueues
N URLs, starts the daemons, and times from their start until every entry has its result in the results
stream and nothing is pending. The same N URLs submitted over the socket to one fetchd (no Redis) run
in the same command as the reference. Prints a Markdown table: median fetches/s per configuration, its
ratio to the socket run, and the CPU seconds of fetchd and of redis-server per 10,000 URLs (redis-server's
includes this script's polling: an XLEN every 5 ms, which dominates on slow workloads).
"""
import argparse
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
from harness import Fetchd, Origin, Redis, fetchctl  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """utime + stime of a live process, seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def queue_round(origin, n, k, path, max_pending, batch):
    with Redis() as r:
        urls = [origin.url("%s?q=%d" % (path, i)) for i in range(n)]
        r.pipe([["XADD", "fetchd:urls", "*", "url", u] for u in urls])
        r.call("XGROUP", "CREATE", "fetchd:urls", "fetchd", "0")
        redis_cpu0 = cpu_s(r.proc.pid)
        t0 = time.monotonic()
        ds = [Fetchd({"queue": {"backend": "redis", "url": r.url, "consumer": "b%d" % i,
                                "max_pending": max_pending, "batch": batch},
                      "fetch": {"per_host_connections": 64}, "daemon": {"log_level": "warn"}})
              for i in range(k)]
        try:
            while True:
                if r.xlen("fetchd:results") >= n:
                    g = r.call("XINFO", "GROUPS", "fetchd:urls")[0]
                    info = {g[i].decode(): g[i + 1] for i in range(0, len(g), 2)}
                    if info["pending"] == 0:
                        break
                if time.monotonic() - t0 > 600:
                    raise RuntimeError("not done after 600 s")
                time.sleep(0.005)
            wall = time.monotonic() - t0
            fcpu = sum(cpu_s(d.proc.pid) for d in ds)
            rcpu = cpu_s(r.proc.pid) - redis_cpu0
        finally:
            for d in ds:
                d.stop()
        return n / wall, fcpu, rcpu


def socket_round(origin, n, path):
    with Fetchd({"fetch": {"per_host_connections": 64}, "daemon": {"log_level": "warn"}}) as d:
        src = os.path.join(d.dir, "urls.txt")
        with open(src, "w") as f:
            f.write("".join(origin.url("%s?s=%d\n" % (path, i)) for i in range(n)))
        t0 = time.monotonic()
        rc, out, err = fetchctl(d.sock, ["-q", "submit", "--output", "/dev/null", src], timeout=600)
        wall = time.monotonic() - t0
        if rc != 0:
            raise RuntimeError("fetchctl submit: exit %d: %s" % (rc, err[-500:]))
        return n / wall, cpu_s(d.proc.pid), 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=30000)
    ap.add_argument("--daemons", default="1,2,3")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--path", default="/1k.html")
    ap.add_argument("--max-pending", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=100)
    a = ap.parse_args()
    rows = []
    with Origin() as o:
        configs = [("socket, 1 fetchd", None)] + [("redis, %s fetchd" % k, int(k)) for k in a.daemons.split(",")]
        for name, k in configs:
            runs = []
            for _ in range(a.rounds):
                runs.append(socket_round(o, a.n, a.path) if k is None else queue_round(o, a.n, k, a.path, a.max_pending, a.batch))
                print("%s: %.0f/s" % (name, runs[-1][0]), file=sys.stderr)
            med = sorted(runs)[len(runs) // 2]
            rows.append((name, med, [x[0] for x in runs]))
    base = rows[0][1][0]
    print("| configuration | fetches/s (median of %d) | vs socket | fetchd CPU s / 10k URLs | redis CPU s / 10k URLs | runs |"
          % a.rounds)
    print("|---|---|---|---|---|---|")
    for name, (rate, fcpu, rcpu), all_rates in rows:
        print("| %s | %.0f | %.2fx | %.2f | %.2f | %s |" % (name, rate, rate / base, fcpu * 10000 / a.n,
                                                            rcpu * 10000 / a.n,
                                                            ", ".join("%.0f" % x for x in all_rates)))
    print("\nN=%d URLs of %s on one nginx, %d CPUs, [queue] max_pending %d, batch %d (`python3 "
          "tools/bench/queue_scale.py --n %d --path %s --daemons %s --rounds %d --max-pending %d --batch %d`)"
          % (a.n, a.path, os.cpu_count(), a.max_pending, a.batch, a.n, a.path, a.daemons, a.rounds, a.max_pending,
             a.batch))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""demo.py - `make demo`: start a local nginx origin and fetchd on its built-in defaults (no config
file), submit a sample batch with fetchctl, check every body against the origin's files by sha256 and
print a summary. Everything runs on loopback in a temporary directory and is stopped at the end."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
from harness import Origin, wait_until  # noqa: E402

N_GOOD = 5000
FETCHD = os.environ.get("FETCHD_BIN", os.path.join(REPO, "build", "fetchd"))
FETCHCTL = os.environ.get("FETCHCTL_BIN", os.path.join(REPO, "build", "fetchctl"))


def main():
    work = tempfile.mkdtemp(prefix="fetchd-demo-")
    sock = os.path.join(work, "fetchd.sock")
    with Origin() as origin:
        print(f"demo: nginx origin on 127.0.0.1:{origin.port} serving {sorted(origin.files)}")
        # Built-in defaults, but for one exception: the address policy refuses loopback, where the
        # demo's origin lives.
        conf = os.path.join(work, "fetchd.conf")
        with open(conf, "w") as f:
            f.write("[security]\nallow_addresses = 127.0.0.0/8, ::1/128\n")
        daemon = subprocess.Popen([FETCHD, "-c", conf, "-s", sock],
                                  stderr=open(os.path.join(work, "fetchd.log"), "w"))
        try:
            wait_until(lambda: os.path.exists(sock), timeout=5, what="fetchd's socket")
            print(f"demo: fetchd (pid {daemon.pid}) on {sock}: built-in defaults, loopback allowed")
            pick = ["/1k.html", "/16k.html", "/empty.txt"]
            paths = ["/1m.bin" if i % 100 == 0 else pick[i % 3] for i in range(N_GOOD)]
            urls = [origin.url(f"{paths[i]}?n={i}") for i in range(N_GOOD)]
            extras = [origin.url("/no-such-file"),            # a 404: an HTTP response, not a failure
                      "ftp://example.com/file",                  # bad URL: fails alone, class url
                      "http://127.0.0.1:1/",                     # nothing listens: class connect
                      "http://does-not-exist.invalid/"]          # NXDOMAIN: class dns
            batch = os.path.join(work, "urls.txt")
            with open(batch, "w") as f:
                f.write("# sample batch: one URL per line\n" + "\n".join(urls + extras) + "\n")
            print(f"demo: fetchctl submit {len(urls) + len(extras)} URLs ...")
            t0 = time.monotonic()
            p = subprocess.run([FETCHCTL, "-s", sock, "submit", batch],
                               capture_output=True, text=True, timeout=300)
            secs = time.monotonic() - t0
            sys.stderr.write(p.stderr)
            results = [json.loads(line) for line in p.stdout.splitlines()]
            by_url = {r["url"]: r for r in results}
            verified = sum(1 for i, u in enumerate(urls)
                           if by_url.get(u, {}).get("body_sha256") == origin.sha256[paths[i]])
            failed = {r["url"]: r["error"]["class"] for r in results if r["error"]}
            print("demo: one result line:", json.dumps(by_url[urls[0]]))
            print(f"demo: failures, as expected: {failed}")
            good = (p.returncode == 5 and verified == N_GOOD and len(results) == len(urls) + len(extras)
                    and set(failed.values()) == {"url", "connect", "dns"})
            print(f"demo: {'OK' if good else 'UNEXPECTED'}: {verified}/{N_GOOD} bodies verified by sha256, "
                  f"{len(results)} results in {secs:.2f} s ({len(results) / secs:.0f} URLs/s), "
                  f"fetchctl exit {p.returncode}")
            return 0 if good else 1
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(10)


if __name__ == "__main__":
    sys.exit(main())

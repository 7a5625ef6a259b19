#!/usr/bin/python3
"""py_aiohttp.py LIST CONC [CAFILE] - the benchmark's asyncio + aiohttp peer.

Fetches every URL in LIST (one per line; blank lines and '#' lines skipped) through one ClientSession
whose TCPConnector allows CONC connections in total and per host, with a pool of CONC worker tasks.
Each body is read fully and discarded. Prints "fail=N" and, as the LAST line, "ok=N" (responses with
status 200 whose body was read completely). Exit status 0 when every URL got a 200, else 1.

Run it with /usr/bin/python3 (Debian's python3-aiohttp); another python3 on PATH may lack aiohttp.
"""
import asyncio
import ssl
import sys

import aiohttp


async def main(urls, conc, cafile):
    counts = {"ok": 0, "fail": 0, "shown": 0, "why": {}}
    it = iter(urls)
    ctx = ssl.create_default_context(cafile=cafile) if cafile else None
    connector = aiohttp.TCPConnector(limit=conc, limit_per_host=conc, **({"ssl": ctx} if ctx else {}))
    timeout = aiohttp.ClientTimeout(total=120, sock_connect=10)

    async def worker(session):
        for url in it:  # the shared iterator hands each URL to exactly one worker
            try:
                async with session.get(url) as resp:
                    await resp.read()
                    good = resp.status == 200
                    why = f"HTTP {resp.status}"
            except Exception as e:  # noqa: BLE001 - any failure counts as a failed fetch
                good, why = False, f"{type(e).__name__}: {e}"
                cause = e.os_error if isinstance(e, aiohttp.ClientConnectorError) else e
                short = f"{type(e).__name__} ({getattr(cause, 'strerror', None) or cause})"
                counts["why"][short] = counts["why"].get(short, 0) + 1
            if good:
                counts["ok"] += 1
            else:
                if why.startswith("HTTP "):
                    counts["why"][why] = counts["why"].get(why, 0) + 1
                counts["fail"] += 1
                if counts["shown"] < 5:
                    counts["shown"] += 1
                    print(f"py_aiohttp: {url}: {why}", file=sys.stderr)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(min(conc, len(urls)) or 1)))
    return counts


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: py_aiohttp.py LIST CONC [CAFILE]")
    with open(sys.argv[1]) as f:
        urls = [s for s in (line.strip() for line in f) if s and not s.startswith("#")]
    c = asyncio.run(main(urls, int(sys.argv[2]), sys.argv[3] if len(sys.argv) == 4 else None))
    if c["fail"]:
        why = ", ".join(f"{n} x {w}" for w, n in sorted(c["why"].items(), key=lambda kv: -kv[1]))
        print(f"py_aiohttp: {c['fail']} of {len(urls)} failed: {why}", file=sys.stderr)
    print(f"fail={c['fail']}")
    print(f"ok={c['ok']}", flush=True)
    sys.exit(0 if c["fail"] == 0 else 1)

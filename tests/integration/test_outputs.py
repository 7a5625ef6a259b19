#!/usr/bin/env python3
"""test_outputs.py - what fetchctl keeps besides result lines: WARC files (--warc, read back by an
independent reader, the npm package warcio, with every digest recomputed) and body files
(--output-dir), and the daemon's flow control for the bytes behind them (CAPTURE frames)."""
import glob
import hashlib
import json
import os
import socket
import struct
import sys
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (REPO, Fetchd, Hostile, Suite, fetchctl, parse_jsonl,  # noqa: E402
                     warc_records)

suite = Suite(__file__, timeout=120)
FETCHCTL = os.environ.get("FETCHCTL_BIN") or os.path.join(REPO, "build", "fetchctl")


def pattern(n: int) -> bytes:
    unit = b"abcdefghijklmnopqrstuvwxyz"
    return (unit * (n // 26 + 1))[:n]


def sha1(b: bytes) -> str:
    return hashlib.sha1(b).hexdigest()


def submit(d, urls, args, timeout=60):
    path = os.path.join(d.dir, "urls-%f.txt" % time.monotonic())
    with open(path, "w") as f:
        f.write("".join(u + "\n" for u in urls))
    rc, out, err = fetchctl(d.sock, ["-q", "submit"] + list(args) + [path], timeout=timeout)
    return rc, parse_jsonl(out), err


def check_warc(recs, results, bodies):
    """recs: warcio's records of one batch; results: its result lines; bodies: {url: payload bytes as
    sent on the wire after chunked decoding}. Every success has a request and a response record, linked,
    with the payload digest of the body; every failure a metadata record with its error."""
    assert recs[0]["type"] == "warcinfo", recs[0]
    by_id = {r["record_id"]: r for r in recs}
    responses = [r for r in recs if r["type"] == "response"]
    for r in responses:
        req = by_id.get(r["concurrent_to"])
        assert req and req["type"] == "request" and req["target_uri"] == r["target_uri"], r
        assert r["block_digest_ok"] is True and r["payload_digest_ok"] is True, r
        assert req["block_digest_ok"] is True and r["ip"] == "127.0.0.1" and req["ip"] == "127.0.0.1", r
    for res in results:
        final = res.get("final_url") or res["url"]
        if res["error"] is None:
            mine = [r for r in responses if r["target_uri"] == final]
            assert len(mine) == 1, (final, mine)
            assert mine[0]["http_status"] == res["status"], (mine[0], res)
            if final in bodies:
                assert mine[0]["payload_sha1"] == sha1(bodies[final]), (mine[0], final)
        else:
            uri = res["url"].replace(" ", "%20")
            meta = [r for r in recs if r["type"] == "metadata" and r["target_uri"] == uri]
            assert len(meta) == 1 and ("fetchd-error: %s: " % res["error"]["class"]) in meta[0]["metadata"], (
                res, meta)


@suite.test
def warc_gz_holds_every_exchange_and_warcio_agrees():
    with Hostile() as h, Fetchd() as d:
        ok = [h.url("/ok?len=%d&k=%d" % (n, n)) for n in (0, 1, 5000, 300000)]
        chunked = h.url("/chunked?len=70000&size=999")
        gz = h.url("/gzip?len=20000")
        redirect = h.url("/chain?n=2&id=w")
        notfound = h.url("/status?code=404&len=7")
        refused = "http://127.0.0.1:1/nothing"
        bad = "http://exa mple.com/"
        urls = ok + [chunked, gz, redirect, notfound, refused, bad]
        out = os.path.join(d.dir, "crawl.warc.gz")
        rc, res, err = submit(d, urls, ["--warc", out])
        assert rc == 5 and len(res) == len(urls), (rc, err)
        assert all("path" not in r and isinstance(r["seq"], int) for r in res), res[0]
        recs = warc_records(out)
        bodies = {u: pattern(n) for u, n in zip(ok, (0, 1, 5000, 300000))}
        bodies[chunked] = pattern(70000)  # the payload digest is over the body without chunked framing
        check_warc(recs, res, bodies)
        # the gzip body is kept as it came (content coding is part of the payload)
        g = [r for r in recs if r["type"] == "response" and r["target_uri"] == gz][0]
        assert g["payload_digest_ok"] and g["content_length"] > 0
        # every hop of the redirect is an exchange of its own
        hops = [r["target_uri"] for r in recs if r["type"] == "response" and "/chain?" in r["target_uri"]]
        assert len(hops) == 3, hops
        # each record is its own gzip member: decompressing member by member gives WARC/1.1 headers
        with open(out, "rb") as f:
            data = f.read()
        members, off = 0, 0
        while off < len(data):
            dobj = zlib.decompressobj(31)
            head = dobj.decompress(data[off:])
            assert head.startswith(b"WARC/1.1\r\n"), head[:40]
            off = len(data) - len(dobj.unused_data)
            members += 1
        assert members == len(recs), (members, len(recs))


@suite.test
def plain_warc_and_rolling_by_size():
    with Hostile() as h, Fetchd() as d:
        urls = [h.url("/ok?len=50000&k=%d" % i) for i in range(20)]
        out = os.path.join(d.dir, "plain.warc")
        rc, res, err = submit(d, urls[:3], ["--warc", out])
        assert rc == 0, err
        with open(out, "rb") as f:
            assert f.read(9) == b"WARC/1.1\r"  # not compressed
        check_warc(warc_records(out), res, {u: pattern(50000) for u in urls})
        # the readers can fail: one byte changed in a body is caught
        with open(out, "rb") as f:
            data = bytearray(f.read())
        data[data.rindex(b"abcdefghij") + 3] ^= 0x20
        bad = os.path.join(d.dir, "bad.warc")
        with open(bad, "wb") as f:
            f.write(data)
        try:
            warc_records(bad)
        except AssertionError as e:
            assert "digest" in str(e), e
        else:
            raise AssertionError("a changed body byte went unnoticed")
        base = os.path.join(d.dir, "roll.warc")  # uncompressed: the pattern bodies compress to nothing
        rc, res, err = submit(d, urls, ["--warc", base, "--warc-max-bytes", "120K"])
        assert rc == 0, err
        files = sorted(glob.glob(os.path.join(d.dir, "roll-*.warc")))
        assert len(files) >= 6 and not os.path.exists(base), files
        assert [os.path.basename(f) for f in files] == ["roll-%05d.warc" % i for i in range(len(files))]
        assert all(os.path.getsize(f) < 120 * 1024 + 2 * 52000 for f in files), [os.path.getsize(f) for f in files]
        allrecs = []
        for f in files:
            recs = warc_records(f)
            assert recs[0]["type"] == "warcinfo", f
            allrecs += recs
        check_warc([allrecs[0]] + [r for r in allrecs if r["type"] != "warcinfo"], res,
                   {u: pattern(50000) for u in urls})
        rc, out_, err = fetchctl(d.sock, ["submit", "--warc-max-bytes", "1M", "-"], input_text="")
        assert rc == 2 and "--warc-max-bytes needs --warc" in err, err


@suite.test
def output_dir_stores_each_body_under_its_name():
    with Hostile() as h, Fetchd() as d:
        port = h.url("/").split(":")[2].split("/")[0]
        urls = [h.url("/ok?len=1234"), h.url("/ok?len=1234"), h.url("/chunked?len=5000&size=100"),
                h.url("/gzip?len=3000"), h.url("/status?code=500&len=3"), h.url("/"), h.url("/a/../b/./c")]
        top = os.path.join(d.dir, "bodies")
        rc, res, err = submit(d, urls, ["--output-dir", top])
        assert len(res) == len(urls), err
        paths = []
        for r in res:
            assert "path" in r, r
            if r["error"] is not None:
                assert r["path"] is None, r
                continue
            p = r["path"]
            assert p.startswith(top + "/127.0.0.1_%s/" % port), p
            with open(p, "rb") as f:
                body = f.read()
            assert hashlib.sha256(body).hexdigest() == r["body_sha256"] and len(body) == r["body_bytes"], r
            paths.append(p)
        assert len(set(paths)) == len(paths), paths  # the same URL twice: two files
        names = sorted(os.path.relpath(p, top) for p in paths)
        assert "127.0.0.1_%s/ok%%3Flen=1234" % port in names and "127.0.0.1_%s/ok%%3Flen=1234.1" % port in names, names
        assert "127.0.0.1_%s/index.html" % port in names, names
        for p in paths:  # nothing escapes the directory, and no temporary file is left
            assert os.path.realpath(p).startswith(os.path.realpath(top) + "/"), p
        left = [f for _, _, fs in os.walk(top) for f in fs if f.startswith(".")]
        assert not left, left
        # a URL whose name would be too long: its body is not kept, with a warning; the rest goes on
        deep = h.url("/" + "/".join(["x" * 150] * 30))
        rc, res, err = submit(d, [deep, h.url("/ok?len=3")], ["--output-dir", top])
        r = {x["url"]: x for x in res}
        assert r[deep]["error"] is None and r[deep]["path"] is None, r[deep]
        assert "warning: --output-dir: File name too long: %s...: body not kept" % deep[:300] in err, err
        assert r[h.url("/ok?len=3")]["path"].endswith("/ok%3Flen=3"), res


@suite.test
def retries_and_redirects_keep_only_the_final_body():
    conf = {"retry": {"times": 2, "base_ms": 10, "max_ms": 50}}
    with Hostile() as h, Fetchd(conf) as d:
        flaky = h.url("/flaky?key=o1&fail=1&code=503")
        chain = h.url("/chain?n=2&id=o2")
        top = os.path.join(d.dir, "b")
        out = os.path.join(d.dir, "r.warc.gz")
        rc, res, err = submit(d, [flaky, chain], ["--output-dir", top, "--warc", out])
        assert rc == 0, err
        r = {x["url"]: x for x in res}
        with open(r[flaky]["path"], "rb") as f:
            assert f.read() == b"ok after 2", r[flaky]
        with open(r[chain]["path"], "rb") as f:
            assert f.read() == b"chain-end id=o2"
        recs = warc_records(out)
        # the failed attempt (503) is an exchange too: two responses for the flaky URL
        st = [x["http_status"] for x in recs if x["type"] == "response" and x["target_uri"] == flaky]
        assert st == [503, 200], st


def raw_session(d, hello: dict, urls):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.sock)
    payload = json.dumps(hello).encode()
    body = "".join(u + "\n" for u in urls).encode()
    s.sendall(struct.pack(">IB", len(payload), 1) + payload + struct.pack(">IB", len(body), 2) + body +
              struct.pack(">IB", 0, 3))
    return s


def read_all(s, timeout=60):
    """Every frame until the daemon closes: [(type, payload)]."""
    s.settimeout(timeout)
    data = b""
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    frames, off = [], 0
    while off + 5 <= len(data):
        n, t = struct.unpack(">IB", data[off:off + 5])
        frames.append((t, data[off + 5:off + 5 + n]))
        off += 5 + n
    return frames


@suite.test
def a_client_that_does_not_read_captures_stays_bounded():
    with Hostile() as h, Fetchd({"control": {"client_buffer_bytes": "1M"}}) as d:
        n, size = 12, 2 << 20
        urls = [h.url("/ok?len=%d&k=%d" % (size, i)) for i in range(n)]
        time.sleep(0.3)
        base = d.rss_kb()
        s = raw_session(d, {"protocol": 1, "capture": "raw"}, urls)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        time.sleep(1.5)  # the client reads nothing: fetchd stops receiving for it
        grown = d.rss_kb() - base
        assert grown < 8 * 1024, "fetchd grew by %d KiB holding an unread capture (%d x %d bytes)" % (
            grown, n, size)
        frames = read_all(s)
        s.close()
        got, results = {}, []
        for t, p in frames:
            if t == 0x85:
                seq, kind = struct.unpack(">IB", p[:5])
                if kind == 3:
                    got[seq] = got.get(seq, 0) + len(p) - 5
            elif t == 0x82:
                results += [json.loads(x) for x in p.decode().splitlines()]
        assert len(results) == n and all(r["error"] is None for r in results), results[:2]
        assert all(v > size for v in got.values()) and len(got) == n, got
        assert d.stop() == 0
        pauses = int(d.log_text().split("capture_pauses=")[1].split()[0])
        assert pauses > 0, "the unread client never paused a connection"


@suite.test
def hello_with_a_bad_capture_is_refused():
    with Fetchd() as d:
        s = raw_session(d, {"protocol": 1, "capture": "everything"}, [])
        frames = read_all(s, 10)
        assert frames and frames[0][0] == 0x84, frames
        assert json.loads(frames[0][1])["error"] == 'HELLO "capture" must be "raw", "body" or "raw,body"'


if __name__ == "__main__":
    sys.exit(suite.main())

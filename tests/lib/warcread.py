#!/usr/bin/env python3
"""warcread.py - a small, strict WARC reader for the tests, written from the WARC 1.1 and HTTP/1.1
specifications and independent of fetchctl's C writer: it walks plain files and gzip files (one record
per gzip member), parses each record's headers, recomputes WARC-Block-Digest over the block and
WARC-Payload-Digest over the HTTP body with any chunked coding removed (content coding kept), and
reports each record as a dict with the keys tests/lib/warccheck.mjs prints (warcio's check), so the two
can be compared and either can stand alone.

    python3 tests/lib/warcread.py FILE...   prints one JSON object per record; exit 1 on any error
"""
import base64
import hashlib
import json
import re
import sys
import zlib


class WarcError(Exception):
    pass


def _members(data: bytes):
    """(offset, bytes) of each record: gzip members, or the plain stream cut at record boundaries."""
    if data[:2] == b"\x1f\x8b":
        off = 0
        while off < len(data):
            d = zlib.decompressobj(31)
            try:
                out = d.decompress(data[off:]) + d.flush()
            except zlib.error as e:
                raise WarcError("gzip member at %d: %s" % (off, e))
            if not d.eof:
                raise WarcError("gzip member at %d is truncated" % off)
            yield off, out
            off = len(data) - len(d.unused_data)
        return
    off = 0
    while off < len(data):
        end = data.find(b"\r\n\r\n", off)
        if end < 0:
            raise WarcError("record at %d: no end of headers" % off)
        m = re.search(rb"\r\nContent-Length:[ \t]*(\d+)", data[off:end + 2], re.I)
        if not m:
            raise WarcError("record at %d: no Content-Length" % off)
        stop = end + 4 + int(m.group(1)) + 4
        yield off, data[off:stop]
        off = stop


def _digest_ok(header, payload: bytes):
    if header is None:
        return None
    algo, _, value = header.partition(":")
    if algo.lower() != "sha1":
        raise WarcError("digest %s: only sha1 is known here" % header)
    d = hashlib.sha1(payload).digest()
    return value in (base64.b32encode(d).decode(), d.hex(), d.hex().upper())


def dechunk(body: bytes) -> bytes:
    """The body of a chunked message (RFC 9112 7.1), strictly; WarcError when malformed."""
    out, p = [], 0
    while True:
        eol = body.find(b"\r\n", p)
        if eol < 0:
            raise WarcError("chunk size line without CRLF")
        m = re.fullmatch(rb"([0-9A-Fa-f]+)[ \t]*(;.*)?", body[p:eol])
        if not m:
            raise WarcError("bad chunk size line %r" % body[p:eol][:40])
        size, p = int(m.group(1), 16), eol + 2
        if size == 0:
            break
        if body[p + size:p + size + 2] != b"\r\n":
            raise WarcError("chunk of %d bytes without its CRLF" % size)
        out.append(body[p:p + size])
        p += size + 2
    if body.find(b"\r\n\r\n", p - 2) < 0:
        raise WarcError("chunked body without the end of its trailer section")
    return b"".join(out)


def _http(block: bytes):
    """(first line, headers dict lower-cased, body) of the final HTTP message in block (1xx skipped)."""
    p = 0
    while True:
        end = block.find(b"\r\n\r\n", p)
        if end < 0:
            raise WarcError("no complete HTTP head in the block")
        head = block[p:end].decode("latin1").split("\r\n")
        p = end + 4
        if not re.match(r"HTTP/1\.\d 1\d\d", head[0]) or head[0].startswith(("HTTP/1.1 101", "HTTP/1.0 101")):
            break
    headers = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return head[0], headers, block[p:]


def read(path: str):
    with open(path, "rb") as f:
        data = f.read()
    records = []
    for off, rec in _members(data):
        end = rec.find(b"\r\n\r\n")
        lines = rec[:end].decode("utf-8").split("\r\n")
        if not re.fullmatch(r"WARC/1\.[01]", lines[0]):
            raise WarcError("%s: record at %d starts with %r" % (path, off, lines[0][:20]))
        h = {}
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            if not sep:
                raise WarcError("%s: record at %d: bad header line %r" % (path, off, line))
            h[k.strip().lower()] = v.strip()
        n = int(h["content-length"])
        block = rec[end + 4:end + 4 + n]
        if len(block) != n or rec[end + 4 + n:] != b"\r\n\r\n":
            raise WarcError("%s: record at %d: block of %d bytes, or no CRLF CRLF after it" % (path, off, n))
        r = {"file": path, "offset": off, "type": h.get("warc-type"), "record_id": h.get("warc-record-id"),
             "target_uri": h.get("warc-target-uri"), "date": h.get("warc-date"), "ip": h.get("warc-ip-address"),
             "concurrent_to": h.get("warc-concurrent-to"), "content_length": n,
             "block_digest_ok": _digest_ok(h.get("warc-block-digest"), block), "payload_digest_ok": None,
             "payload_sha1": None, "http_status": None, "http_method": None, "metadata": None}
        if r["block_digest_ok"] is not True:
            raise WarcError("%s: record at %d: block digest %s" % (path, off, "missing" if r["block_digest_ok"]
                                                                   is None else "mismatch"))
        if r["type"] in ("request", "response") and h.get("content-type", "").startswith("application/http"):
            first, hh, body = _http(block)
            if r["type"] == "response":
                r["http_status"] = int(first.split(" ")[1])
                if re.search(r"(^|,)\s*chunked\s*$", hh.get("transfer-encoding", ""), re.I):
                    body = dechunk(body)
                r["payload_sha1"] = hashlib.sha1(body).hexdigest()
                r["payload_digest_ok"] = _digest_ok(h.get("warc-payload-digest"), body)
                if r["payload_digest_ok"] is False:
                    raise WarcError("%s: record at %d: payload digest mismatch" % (path, off))
            else:
                r["http_method"] = first.split(" ")[0]
        if r["type"] == "metadata":
            r["metadata"] = block.decode("utf-8")
        records.append(r)
    return records


def main(argv):
    try:
        for path in argv[1:]:
            for r in read(path):
                print(json.dumps(r))
    except (WarcError, OSError, ValueError, KeyError) as e:
        print("warcread: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""hostile.py - a scripted HTTP/1.1 server that misbehaves on purpose, for testing fetchd.

The path of each request picks a scenario (well-behaved, slow, truncated, malformed, reset, endless...),
query-string parameters tune it, and the scenario also decides whether the connection is kept alive
for the next request or closed. Raw sockets, one daemon thread per connection, so a thousand or more
concurrent connections are fine.

Two ways to use it:
  * as a program:  python3 tests/lib/hostile.py [--host 127.0.0.1] [--port 0]
    prints "PORT <n>" as the first line of stdout, then serves until killed.
  * as a module:   srv = HostileServer(); port = srv.start(); ...; srv.stats(); srv.stop()
    (plus srv.set_robots(status, body, delay_ms, location), srv.reset_robots(),
    srv.request_log(prefix), srv.clear_log(), srv.flaky_count(key): the /_ctl/ operations in-process)

Scenarios (numbers are defaults; every body is pattern_bytes(0, len), i.e. "abc...z" repeated):
  /ok?len=1024                200 with Content-Length; keep-alive
  /chunked?len=1024&size=100  200 chunked, chunks of `size` bytes each with ";ext=1", trailer X-Trailer: t
  /eof?len=1024               200 with neither Content-Length nor Transfer-Encoding; body, then close
  /delay?ms=100&len=1024      /ok after `ms` milliseconds
  /drip?len=100&ms=0          whole response sent one byte per send() (TCP_NODELAY), `ms` between bytes
  /hang                       never answers; holds the connection until the client closes it
  /headers-forever?ms=5       status line, then a ~100-byte header line every `ms` ms, forever
  /huge-header?bytes=1048576&len=100   one header whose value is `bytes` long, then a normal body
  /chunked-forever?size=4096&ms=0      endless chunks until the client closes
  /cl-short?len=1000&send=500 Content-Length `len` but only `send` body bytes, then close
  /rst-header                 half of the response head, then a TCP RST
  /rst-body?len=100000        full head (Content-Length len), half the body, then a TCP RST
  /huge-chunk?close=0         chunk-size line "FFFFFFFFFFFFFFFFFFFFFF", some bytes, then holds the
                              connection until the client closes (close=1: close at once)
  /interim?n=1&code=100       n interim responses (100 Continue, or 103 Early Hints with a Link header),
                              then 200 with body "final"; keep-alive
  /garbage?len=512            non-HTTP bytes, then close
  /extra?len=1024&junk=resp   a complete response immediately followed, in the same send(), by junk: a
                              fake second response (junk=resp) or raw bytes (junk=bytes); the connection
                              stays open and the next request on it is served normally
  /cl-conflict                two different Content-Length headers (5 and 6), 6 body bytes, close
  /te-cl                      Transfer-Encoding: chunked plus Content-Length: 3, a valid chunked body, close
  /close?len=1024             200 with Content-Length and "Connection: close", then close
  /status?code=200&len=N      any status; 1xx, 204 and 304 never carry a body (but get Content-Length when
                              len is given); other codes without len get Content-Length: 0
  /conn                       body "conn=<connection number> req=<request number on that connection>"
  /echo                       body = the request head exactly as received (to inspect what a client sends)
  /echo-request               200 application/json {"method": m, "target": t, "headers": [[name, value],
                              ...]} of the request (header names as sent, in order, values trimmed); HEAD
                              gets the Content-Length of that JSON and no body
  /redirect?code=302&to=URL   status `code` (any number), "Location: <to>", Content-Length body "redirect".
                              `to` is percent-decoded exactly once, byte for byte ("+" stays "+"; send a
                              space as %20), so it can be relative, absolute, scheme-relative, hold spaces,
                              non-ASCII or even CR LF; no `to` gives an empty Location. &body=N: an N-byte
                              pattern body instead; &noloc=1: no Location. Codes 1xx, 204, 304 get no body
                              and no Content-Length
  /chain?n=3&code=302&id=     n > 0: `code` to /chain?n=<n-1>&code=<code>&id=<id> (id re-encoded with %XX),
                              a relative Location (path only), body "redirect"; &abs=1: absolute
                              http://<Host header's name or the bound address>:<port>/chain?...&abs=1.
                              n <= 0: 200 body "chain-end id=<id>"
  /loop?id=&step=0            302 to /loop?id=<id>&step=1, which 302s back to step=0: an endless loop
  /flaky?key=&fail=2&code=503 requests are counted per key (never reset, see flaky_count()); request number
                              N <= fail gets `code` with body "flaky N" (&retry_after=V adds "Retry-After:
                              V", V percent-decoded like `to`, e.g. an HTTP-date), later ones 200 "ok after
                              N". code=reset: a TCP RST and no response; code=close: close without
                              answering; code=hang: never answer, hold the connection like /hang
  /gzip?len=1024&level=6      200 Content-Encoding: gzip, body = gzip (mtime 0) of pattern_body(len) at
                              `level`, Content-Length framed; &chunked=1&size=4096: chunked instead
  /deflate?len=1024&raw=0&level=6      same with Content-Encoding: deflate: zlib-wrapped (RFC 1950), or
                              raw deflate (RFC 1951) with raw=1; &chunked=1&size=4096 as for /gzip
  /gzip-bomb?mb=1024&level=9  Content-Encoding: gzip, chunked: a gzip stream of `mb` MiB of zero bytes,
                              compressed on the fly (about 1 KiB per MiB), until done (then the last chunk,
                              keep-alive) or the client closes
  /gzip-corrupt?len=1024      /gzip's Content-Length framed body with its 4 middle bytes inverted (xor 0xff):
                              inflating fails (bad data or bad CRC); keep-alive
  /gzip-truncated?len=1024    the first half of /gzip's compressed body, with a correct Content-Length for
                              that half: the HTTP framing is fine, the gzip stream never ends; keep-alive
  /robots.txt                 whatever /_ctl/robots set (default: 404 "not found\n" like any unknown path)
  /slow-ok?ms=100&len=1024    like /delay (the request log keeps its arrival time, as for every request)
  anything else               404 with a short body; keep-alive
Every scenario that would keep the connection alive closes it instead when the query has close=1 or the
request says "Connection: close".

Control (never counted, never logged; every path starting with /_ctl/ is control too):
  /_stats   JSON {"connections", "open", "max_open", "requests", "raw_open", "by_path"}
  /_reset   zero connections/requests/by_path and set max_open to the current open count
  /_ctl/robots?status=200&body=&delay_ms=0[&location=URL]   what /robots.txt answers from now on:
            `status`, the body (form-decoded: "+" is a space, %XX a byte, as urllib.parse.urlencode
            writes it), after `delay_ms`, with "Location: URL" (decoded like /redirect's `to`) when given;
            /_ctl/robots?reset=1 restores the 404. Answers 200 "ok"
  /_ctl/log?prefix=   application/json list of {"t", "method", "target", "conn", "headers"} for the logged
            requests whose target starts with `prefix` (default: all), oldest first
  /_ctl/clear         empty the request log; 200 "ok"

Request log: every parsed non-control request is recorded when its head has been read, before it is
answered: "t" time.time() rounded to microseconds (strictly increasing: a clock step back is clamped),
"method", "target" as sent, "conn" the connection number (as /conn shows), "headers" [[name, value], ...]
as in /echo-request. Only the last 100,000 requests are kept.

Counting rule: a connection counts (accepted, open, max_open, and gets a connection number) once it has
sent its first non-control request, or when it closes without sending any request; so the connection a
test uses to read /_stats never shows up in the numbers it reads. "raw_open" counts every open socket.
"""

import argparse
import collections
import json
import random
import socket
import struct
import sys
import threading
import time
import zlib
from http import HTTPStatus
from urllib.parse import parse_qs, quote, unquote_to_bytes, urlsplit

PATTERN = b"abcdefghijklmnopqrstuvwxyz"
# A block of whole patterns (length divisible by 26) so a slice can start at any pattern offset.
_BLOCK = PATTERN * (65536 // len(PATTERN) + 2)

MAX_HEAD = 64 * 1024          # longest request head accepted
SEND_BUF = 64 * 1024          # Writer flushes at this size
CONTROL_PATHS = ("/_stats", "/_reset")
CTL_PREFIX = "/_ctl/"         # every path under it is control as well
LOG_MAX = 100000              # request log entries kept
GZ_CACHE = 16                 # compressed pattern bodies kept for /gzip, /deflate...
# zlib wbits for each Content-Encoding flavour
WBITS = {"gzip": 31, "deflate": 15, "raw": -15}


def pattern_bytes(offset: int, n: int) -> bytes:
    """n bytes of the endless "abc...zabc..." stream, starting at stream offset `offset`."""
    out = []
    start = offset % len(PATTERN)
    while n > 0:
        take = min(n, len(_BLOCK) - start)
        out.append(_BLOCK[start:start + take])
        n -= take
        start = 0
    return b"".join(out)


def pattern_body(n: int) -> bytes:
    """The body the scenarios send for len=n."""
    return pattern_bytes(0, n)


def compress_pattern(n: int, kind: str = "gzip", level: int = 6) -> bytes:
    """pattern_body(n) compressed: kind "gzip" (mtime 0), "deflate" (zlib-wrapped) or "raw" (raw deflate),
    exactly what /gzip and /deflate send."""
    co = zlib.compressobj(level, zlib.DEFLATED, WBITS[kind])
    out = []
    off = 0
    while off < n:
        take = min(n - off, 1 << 20)
        out.append(co.compress(pattern_bytes(off, take)))
        off += take
    out.append(co.flush())
    return b"".join(out)


class _Writer:
    """Buffers small writes into large send() calls."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def write(self, data: bytes):
        self.buf += data
        if len(self.buf) >= SEND_BUF:
            self.flush()

    def flush(self):
        if self.buf:
            self.sock.sendall(self.buf)
            self.buf.clear()


class _Request:
    """One parsed request head."""

    def __init__(self, raw: bytes):
        self.raw = raw
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise ValueError("bad request line")
        self.method, self.target, self.version = parts
        self.headers = {}
        self.header_list = []   # [(name as sent, value), ...] in order, duplicates kept
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError("bad header line")
            self.headers[name.strip().lower()] = value.strip()
            self.header_list.append((name.strip(), value.strip()))
        split = urlsplit(self.target)
        self.path = split.path or "/"
        self.query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            self.wants_close = "keep-alive" not in conn
        else:
            self.wants_close = "close" in conn

    def num(self, name: str, default: int) -> int:
        """Integer query parameter, or default when absent or unparsable."""
        try:
            return int(self.query[name])
        except (KeyError, ValueError):
            return default

    def raw_param(self, name: str, form: bool = False):
        """The last `name` query parameter as bytes, percent-decoded exactly once ("+" stays "+" unless
        form=True, where it is a space); None when absent."""
        found = None
        for part in urlsplit(self.target).query.split("&"):
            key, _, value = part.partition("=")
            if unquote_to_bytes(key.replace("+", " ")).decode("latin-1") == name:
                found = value
        if found is None:
            return None
        return unquote_to_bytes(found.replace("+", " ") if form else found)


class _Conn:
    """Per-connection state."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""          # bytes received beyond the previous request (pipelining)
        self.counted = False    # has this connection entered the counters yet?
        self.number = 0         # connection number (1, 2, ...) once counted
        self.requests = 0       # non-control requests seen on this connection
        self.control = False    # has it carried a /_stats or /_reset request?


def _reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Status"


def _head(code: int, headers) -> bytes:
    """A response head: status line, the (name, value) header pairs, the empty line."""
    lines = ["HTTP/1.1 %d %s" % (code, _reason(code))]
    lines += ["%s: %s" % hv for hv in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _bodyless(code: int) -> bool:
    """Statuses that never carry a body."""
    return code in (204, 304) or 100 <= code < 200


def _rst(sock):
    """Close with a TCP RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _hold(sock):
    """Keep the connection open, discarding input, until the client closes it (or stop())."""
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


class HostileServer:
    """The server. start() binds and returns the port; stop() closes everything."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, backlog: int = 4096):
        self.host, self.port, self.backlog = host, port, backlog
        self._lock = threading.Lock()
        self._listener = None
        self._thread = None
        self._stopping = False
        self._socks = set()         # every open client socket, so stop() can shut them down
        self._serial = 0            # last connection number handed out (never reset)
        self.connections = 0        # counted connections accepted
        self.open = 0               # counted connections open now
        self.max_open = 0           # most counted connections open at once
        self.requests = 0           # non-control requests read
        self.by_path = {}           # non-control requests per path
        self._log = collections.deque(maxlen=LOG_MAX)   # request log entries (dicts), oldest first
        self._log_last = 0.0        # time of the newest log entry
        self._flaky = {}            # /flaky requests per key
        self._robots = None         # (status, body, delay_ms, location) set by /_ctl/robots; None: 404
        self._gz_cache = collections.OrderedDict()      # (kind, len, level) -> compressed body
        self._handlers = {
            "/ok": self._ok, "/chunked": self._chunked, "/eof": self._eof, "/delay": self._delay,
            "/drip": self._drip, "/hang": self._hang, "/headers-forever": self._headers_forever,
            "/huge-header": self._huge_header, "/chunked-forever": self._chunked_forever,
            "/cl-short": self._cl_short, "/rst-header": self._rst_header, "/rst-body": self._rst_body,
            "/huge-chunk": self._huge_chunk, "/interim": self._interim, "/garbage": self._garbage,
            "/extra": self._extra, "/cl-conflict": self._cl_conflict, "/te-cl": self._te_cl,
            "/close": self._close, "/status": self._status, "/conn": self._conn, "/echo": self._echo,
            "/_stats": self._stats, "/_reset": self._reset,
            "/echo-request": self._echo_request, "/redirect": self._redirect, "/chain": self._chain,
            "/loop": self._loop, "/flaky": self._flaky_h, "/gzip": self._gzip, "/deflate": self._deflate,
            "/gzip-bomb": self._gzip_bomb, "/gzip-corrupt": self._gzip_corrupt,
            "/gzip-truncated": self._gzip_truncated, "/robots.txt": self._robots_txt,
            "/slow-ok": self._delay,
            "/_ctl/robots": self._ctl_robots, "/_ctl/log": self._ctl_log, "/_ctl/clear": self._ctl_clear,
        }

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> int:
        """Bind, listen and start accepting in a daemon thread; returns the bound port."""
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((self.host, self.port))
        ls.listen(self.backlog)
        ls.settimeout(0.2)  # so the accept loop notices stop()
        self._listener = ls
        self.port = ls.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="hostile-accept", daemon=True)
        self._thread.start()
        return self.port

    def stop(self):
        """Stop accepting and shut down every open connection."""
        self._stopping = True
        if self._thread:
            self._thread.join(5)
        if self._listener:
            self._listener.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stats(self) -> dict:
        """A snapshot of the counters (what /_stats returns)."""
        with self._lock:
            return {"connections": self.connections, "open": self.open, "max_open": self.max_open,
                    "requests": self.requests, "raw_open": len(self._socks),
                    "by_path": dict(self.by_path)}

    def reset(self):
        """Zero the counters; max_open restarts from the connections open now."""
        with self._lock:
            self.connections = self.requests = 0
            self.by_path = {}
            self.max_open = self.open

    def set_robots(self, status: int = 200, body=b"", delay_ms: int = 0, location=None):
        """What /robots.txt answers from now on (body and location: bytes or str)."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if isinstance(location, bytes):
            location = location.decode("latin-1")
        self._robots = (int(status), bytes(body), int(delay_ms), location)

    def reset_robots(self):
        """/robots.txt answers 404 again."""
        self._robots = None

    def request_log(self, prefix: str = "") -> list:
        """Logged requests whose target starts with prefix, oldest first: dicts with "t", "method",
        "target", "conn", "headers" ([[name, value], ...])."""
        with self._lock:
            entries = list(self._log)
        return [dict(e, headers=[list(hv) for hv in e["headers"]])
                for e in entries if e["target"].startswith(prefix)]

    def clear_log(self):
        """Empty the request log."""
        with self._lock:
            self._log.clear()

    def flaky_count(self, key: str = "") -> int:
        """How many /flaky requests arrived with this key."""
        with self._lock:
            return self._flaky.get(key, 0)

    def _record(self, conn, req):
        """Append a request to the log."""
        with self._lock:
            t = round(time.time(), 6)
            if t <= self._log_last:
                t = round(self._log_last + 0.000001, 6)
            self._log_last = t
            self._log.append({"t": t, "method": req.method, "target": req.target, "conn": conn.number,
                              "headers": tuple(req.header_list)})

    def _accept_loop(self):
        while not self._stopping:
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stopping:
                    return
                time.sleep(0.01)  # e.g. EMFILE: back off rather than spin
                continue
            sock.settimeout(None)
            with self._lock:
                self._socks.add(sock)
            try:
                threading.Thread(target=self._serve, args=(sock,), daemon=True).start()
            except RuntimeError:  # cannot start a thread: drop the connection
                self._forget(sock, None)
                sock.close()

    # ---- connection loop -------------------------------------------------------------------------

    def _count(self, conn: _Conn):
        """Enter a connection into the counters (first non-control request)."""
        with self._lock:
            self._serial += 1
            conn.number = self._serial
            conn.counted = True
            self.connections += 1
            self.open += 1
            self.max_open = max(self.max_open, self.open)

    def _forget(self, sock, conn):
        with self._lock:
            self._socks.discard(sock)
            if conn is None:
                return
            if conn.counted:
                self.open -= 1
            elif conn.requests == 0 and not conn.control:
                self.connections += 1  # closed without ever sending a request: still an accept

    def _read_head(self, conn: _Conn):
        """The next request head (without the final CRLFCRLF); None on EOF; b"" when too large."""
        while True:
            end = conn.buf.find(b"\r\n\r\n")
            if end >= 0:
                head, conn.buf = conn.buf[:end], conn.buf[end + 4:]
                return head
            if len(conn.buf) > MAX_HEAD:
                return b""
            data = conn.sock.recv(65536)
            if not data:
                return None
            conn.buf += data

    def _discard_body(self, conn: _Conn, n: int):
        """Drop an n-byte request body."""
        while len(conn.buf) < n:
            data = conn.sock.recv(65536)
            if not data:
                raise ConnectionError("EOF in request body")
            conn.buf += data
        conn.buf = conn.buf[n:]

    def _serve(self, sock):
        conn = _Conn(sock)
        try:
            while not self._stopping:
                head = self._read_head(conn)
                if head is None:
                    break
                if head == b"":
                    sock.sendall(_head(431, [("Content-Length", "0"), ("Connection", "close")]))
                    break
                try:
                    req = _Request(head)
                    if "transfer-encoding" in req.headers:
                        raise ValueError("request bodies must use Content-Length")
                    self._discard_body(conn, int(req.headers.get("content-length", "0")))
                except ValueError:
                    sock.sendall(_head(400, [("Content-Length", "0"), ("Connection", "close")]))
                    break
                control = req.path in CONTROL_PATHS or req.path.startswith(CTL_PREFIX)
                if control:
                    conn.control = True
                else:
                    if not conn.counted:
                        self._count(conn)
                    conn.requests += 1
                    with self._lock:
                        self.requests += 1
                        self.by_path[req.path] = self.by_path.get(req.path, 0) + 1
                    self._record(conn, req)
                handler = self._handlers.get(req.path, self._not_found)
                keep = handler(conn, req)
                if not keep or req.wants_close or req.query.get("close") == "1":
                    break
        except OSError:
            pass  # the client went away (EPIPE, ECONNRESET, ...) or stop() shut us down
        finally:
            self._forget(sock, conn)
            try:
                sock.close()
            except OSError:
                pass

    # ---- helpers for scenarios -------------------------------------------------------------------

    def _simple(self, conn, req, code, body: bytes, extra=()):
        """Send a complete Content-Length response; True (keep-alive)."""
        head = _head(code, [("Content-Length", str(len(body)))] + list(extra))
        conn.sock.sendall(head + (b"" if req.method == "HEAD" else body))
        return True

    def _send_pattern(self, w: _Writer, n: int, offset: int = 0):
        """Stream n pattern bytes through w."""
        while n > 0:
            take = min(n, SEND_BUF)
            w.write(pattern_bytes(offset, take))
            offset += take
            n -= take

    def _answer(self, conn, req, code, body: bytes, extra=()):
        """_simple, except that 1xx, 204 and 304 get neither a body nor a Content-Length."""
        if _bodyless(code):
            conn.sock.sendall(_head(code, list(extra)))
            return True
        return self._simple(conn, req, code, body, extra)

    def _send_chunked(self, w: _Writer, data: bytes, size: int):
        """data as chunks of `size` bytes plus the last chunk, through w."""
        for off in range(0, len(data), size):
            piece = data[off:off + size]
            w.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
        w.write(b"0\r\n\r\n")

    def _compressed(self, kind: str, n: int, level: int) -> bytes:
        """compress_pattern(n, kind, level), from a small cache."""
        key = (kind, n, level)
        with self._lock:
            data = self._gz_cache.get(key)
            if data is not None:
                self._gz_cache.move_to_end(key)
                return data
        data = compress_pattern(n, kind, level)
        with self._lock:
            self._gz_cache[key] = data
            while len(self._gz_cache) > GZ_CACHE:
                self._gz_cache.popitem(last=False)
        return data

    def _redirect_to(self, conn, req, code: int, location, body: bytes = b"redirect"):
        """A redirect-like response: `code`, "Location: location" unless None, Content-Length body."""
        extra = [("Content-Type", "text/plain")]
        if location is not None:
            extra.insert(0, ("Location", location))
        return self._answer(conn, req, code, body, extra)

    def _send_cl(self, conn, req, n: int, extra=()):
        """Head with Content-Length n plus an n-byte pattern body, streamed."""
        w = _Writer(conn.sock)
        w.write(_head(200, [("Content-Length", str(n))] + list(extra)))
        if req.method != "HEAD":
            self._send_pattern(w, n)
        w.flush()

    # ---- scenarios (each returns True to keep the connection, False to close it) ---------------

    def _ok(self, conn, req):
        self._send_cl(conn, req, req.num("len", 1024), [("Content-Type", "application/octet-stream")])
        return True

    def _chunked(self, conn, req):
        n, size = req.num("len", 1024), max(1, req.num("size", 100))
        w = _Writer(conn.sock)
        w.write(_head(200, [("Transfer-Encoding", "chunked"), ("Trailer", "X-Trailer")]))
        off = 0
        while off < n:
            take = min(size, n - off)
            w.write(b"%x;ext=1\r\n" % take)
            w.write(pattern_bytes(off, take))
            w.write(b"\r\n")
            off += take
        w.write(b"0\r\nX-Trailer: t\r\n\r\n")
        w.flush()
        return True

    def _eof(self, conn, req):
        w = _Writer(conn.sock)
        w.write(_head(200, [("Content-Type", "application/octet-stream")]))
        self._send_pattern(w, req.num("len", 1024))
        w.flush()
        return False

    def _delay(self, conn, req):
        time.sleep(req.num("ms", 100) / 1000.0)
        return self._ok(conn, req)

    def _drip(self, conn, req):
        n, ms = req.num("len", 100), req.num("ms", 0)
        data = _head(200, [("Content-Length", str(n))]) + pattern_body(n)
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            conn.sock.sendall(data[i:i + 1])
            if ms:
                time.sleep(ms / 1000.0)
        return True

    def _hang(self, conn, req):
        _hold(conn.sock)
        return False

    def _headers_forever(self, conn, req):
        ms = req.num("ms", 5)
        conn.sock.sendall(b"HTTP/1.1 200 OK\r\n")
        i = 0
        while not self._stopping:
            i += 1
            line = b"X-Forever-%08d: " % i
            conn.sock.sendall(line + b"x" * (98 - len(line)) + b"\r\n")  # 100 bytes with CRLF
            time.sleep(ms / 1000.0)
        return False

    def _huge_header(self, conn, req):
        size, n = req.num("bytes", 1 << 20), req.num("len", 100)
        w = _Writer(conn.sock)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Huge: " % n)
        left = size
        while left > 0:
            take = min(left, SEND_BUF)
            w.write(b"h" * take)
            left -= take
        w.write(b"\r\n\r\n")
        self._send_pattern(w, n)
        w.flush()
        return True

    def _chunked_forever(self, conn, req):
        size, ms = max(1, req.num("size", 4096)), req.num("ms", 0)
        conn.sock.sendall(_head(200, [("Transfer-Encoding", "chunked")]))
        off = 0
        while not self._stopping:
            conn.sock.sendall(b"%x\r\n" % size + pattern_bytes(off, size) + b"\r\n")
            off += size
            if ms:
                time.sleep(ms / 1000.0)
        return False

    def _cl_short(self, conn, req):
        n = req.num("len", 1000)
        k = min(req.num("send", n // 2), n - 1) if n > 0 else 0
        conn.sock.sendall(_head(200, [("Content-Length", str(n))]) + pattern_body(k))
        return False

    def _rst_header(self, conn, req):
        head = _head(200, [("Content-Length", "100"), ("Content-Type", "text/plain"),
                           ("X-Padding", "p" * 64), ("X-More", "m" * 64)])
        conn.sock.sendall(head[:len(head) // 2])
        time.sleep(0.05)  # let the half head reach the client before the RST
        _rst(conn.sock)
        return False

    def _rst_body(self, conn, req):
        n = req.num("len", 100000)
        w = _Writer(conn.sock)
        w.write(_head(200, [("Content-Length", str(n))]))
        self._send_pattern(w, n // 2)
        w.flush()
        time.sleep(0.05)
        _rst(conn.sock)
        return False

    def _huge_chunk(self, conn, req):
        conn.sock.sendall(_head(200, [("Transfer-Encoding", "chunked")]) +
                          b"FFFFFFFFFFFFFFFFFFFFFF\r\n" + pattern_body(256))
        if req.query.get("close") != "1":
            _hold(conn.sock)
        return False

    def _interim(self, conn, req):
        n, code = req.num("n", 1), req.num("code", 100)
        for _ in range(n):
            if code == 103:
                conn.sock.sendall(_head(103, [("Link", "</style.css>; rel=preload; as=style")]))
            else:
                conn.sock.sendall(_head(code, []))
        return self._simple(conn, req, 200, b"final")

    def _garbage(self, conn, req):
        rnd = random.Random(req.num("seed", 1))
        data = bytes(rnd.randrange(256) for _ in range(req.num("len", 512)))
        conn.sock.sendall(b"\x00\xff" + data)  # never starts like "HTTP/"
        return False

    def _extra(self, conn, req):
        n = req.num("len", 1024)
        if req.query.get("junk", "resp") == "bytes":
            junk = b"\x00JUNK\xff" * 8
        else:
            junk = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nJUNK!"
        conn.sock.sendall(_head(200, [("Content-Length", str(n))]) + pattern_body(n) + junk)
        return True

    def _cl_conflict(self, conn, req):
        conn.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef")
        return False

    def _te_cl(self, conn, req):
        conn.sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
                          b"5\r\nabcde\r\n0\r\n\r\n")
        return False

    def _close(self, conn, req):
        self._send_cl(conn, req, req.num("len", 1024), [("Connection", "close")])
        return False

    def _status(self, conn, req):
        code = req.num("code", 200)
        has_len = "len" in req.query
        n = req.num("len", 0)
        if code in (204, 304) or 100 <= code < 200:
            headers = [("Content-Length", str(n))] if has_len else []
            conn.sock.sendall(_head(code, headers))
            return True
        w = _Writer(conn.sock)
        w.write(_head(code, [("Content-Length", str(n))]))
        if req.method != "HEAD":
            self._send_pattern(w, n)
        w.flush()
        return True

    def _conn(self, conn, req):
        body = b"conn=%d req=%d" % (conn.number, conn.requests)
        return self._simple(conn, req, 200, body, [("Content-Type", "text/plain")])

    def _echo(self, conn, req):
        return self._simple(conn, req, 200, req.raw + b"\r\n\r\n", [("Content-Type", "text/plain")])

    def _echo_request(self, conn, req):
        body = json.dumps({"method": req.method, "target": req.target,
                           "headers": [list(hv) for hv in req.header_list]}).encode()
        return self._simple(conn, req, 200, body, [("Content-Type", "application/json")])

    def _redirect(self, conn, req):
        code = req.num("code", 302)
        to = req.raw_param("to")
        location = None if req.query.get("noloc") == "1" else (to or b"").decode("latin-1")
        body = pattern_body(req.num("body", 0)) if "body" in req.query else b"redirect"
        return self._redirect_to(conn, req, code, location, body)

    def _chain(self, conn, req):
        n, code, ident = req.num("n", 3), req.num("code", 302), req.query.get("id", "")
        if n <= 0:
            return self._simple(conn, req, 200, b"chain-end id=" + ident.encode("utf-8"),
                                [("Content-Type", "text/plain")])
        target = "/chain?n=%d&code=%d&id=%s" % (n - 1, code, quote(ident, safe=""))
        if req.query.get("abs") == "1":
            host = req.headers.get("host", "")
            if host.startswith("["):
                name = host[:host.find("]") + 1] if "]" in host else host
            else:
                name = host.partition(":")[0]
            if not name:
                name = "[%s]" % self.host if ":" in self.host else self.host
            target = "http://%s:%d%s&abs=1" % (name, self.port, target)
        return self._redirect_to(conn, req, code, target)

    def _loop(self, conn, req):
        step = 1 if req.num("step", 0) == 0 else 0
        target = "/loop?id=%s&step=%d" % (quote(req.query.get("id", ""), safe=""), step)
        return self._redirect_to(conn, req, 302, target)

    def _flaky_h(self, conn, req):
        key, fail, code = req.query.get("key", ""), req.num("fail", 2), req.query.get("code", "503")
        with self._lock:
            n = self._flaky[key] = self._flaky.get(key, 0) + 1
        if n > fail:
            return self._simple(conn, req, 200, b"ok after %d" % n, [("Content-Type", "text/plain")])
        if code == "reset":
            _rst(conn.sock)
            return False
        if code == "close":
            return False
        if code == "hang":
            _hold(conn.sock)
            return False
        try:
            status = int(code)
        except ValueError:
            status = 503
        extra = [("Content-Type", "text/plain")]
        retry = req.raw_param("retry_after")
        if retry is not None:
            extra.append(("Retry-After", retry.decode("latin-1")))
        return self._answer(conn, req, status, b"flaky %d" % n, extra)

    def _send_encoded(self, conn, req, kind: str, encoding: str):
        """A compressed pattern body: Content-Length framed, or chunked with chunked=1."""
        data = self._compressed(kind, req.num("len", 1024), req.num("level", 6))
        w = _Writer(conn.sock)
        headers = [("Content-Type", "text/plain"), ("Content-Encoding", encoding)]
        if req.query.get("chunked") == "1":
            w.write(_head(200, headers + [("Transfer-Encoding", "chunked")]))
            if req.method != "HEAD":
                self._send_chunked(w, data, max(1, req.num("size", 4096)))
        else:
            w.write(_head(200, [("Content-Length", str(len(data)))] + headers))
            if req.method != "HEAD":
                w.write(data)
        w.flush()
        return True

    def _gzip(self, conn, req):
        return self._send_encoded(conn, req, "gzip", "gzip")

    def _deflate(self, conn, req):
        return self._send_encoded(conn, req, "raw" if req.query.get("raw") == "1" else "deflate",
                                  "deflate")

    def _gzip_bomb(self, conn, req):
        mb, level = req.num("mb", 1024), req.num("level", 9)
        conn.sock.sendall(_head(200, [("Content-Type", "application/octet-stream"),
                                      ("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked")]))
        if req.method == "HEAD":
            return True
        co = zlib.compressobj(level, zlib.DEFLATED, WBITS["gzip"])
        zeros = bytes(1 << 20)
        for _ in range(mb):
            if self._stopping:
                return False
            out = co.compress(zeros)
            if out:
                conn.sock.sendall(b"%x\r\n" % len(out) + out + b"\r\n")
        out = co.flush()
        conn.sock.sendall(b"%x\r\n" % len(out) + out + b"\r\n0\r\n\r\n")
        return True

    def _gzip_corrupt(self, conn, req):
        data = bytearray(self._compressed("gzip", req.num("len", 1024), 6))
        mid = len(data) // 2
        for i in range(max(0, mid - 2), min(len(data), mid + 2)):
            data[i] ^= 0xFF
        return self._simple(conn, req, 200, bytes(data),
                            [("Content-Type", "text/plain"), ("Content-Encoding", "gzip")])

    def _gzip_truncated(self, conn, req):
        data = self._compressed("gzip", req.num("len", 1024), 6)
        return self._simple(conn, req, 200, data[:len(data) // 2],
                            [("Content-Type", "text/plain"), ("Content-Encoding", "gzip")])

    def _robots_txt(self, conn, req):
        robots = self._robots
        if robots is None:
            return self._not_found(conn, req)
        status, body, delay_ms, location = robots
        if delay_ms > 0:
            time.sleep(delay_ms / 1000.0)
        extra = [("Content-Type", "text/plain")]
        if location is not None:
            extra.append(("Location", location))
        return self._answer(conn, req, status, body, extra)

    def _ctl_robots(self, conn, req):
        if req.query.get("reset") == "1":
            self.reset_robots()
        else:
            loc = req.raw_param("location")
            self.set_robots(req.num("status", 200), req.raw_param("body", form=True) or b"",
                            req.num("delay_ms", 0), None if loc is None else loc.decode("latin-1"))
        return self._simple(conn, req, 200, b"ok", [("Content-Type", "text/plain")])

    def _ctl_log(self, conn, req):
        body = json.dumps(self.request_log(req.query.get("prefix", ""))).encode()
        return self._simple(conn, req, 200, body, [("Content-Type", "application/json")])

    def _ctl_clear(self, conn, req):
        self.clear_log()
        return self._simple(conn, req, 200, b"ok", [("Content-Type", "text/plain")])

    def _not_found(self, conn, req):
        return self._simple(conn, req, 404, b"not found\n", [("Content-Type", "text/plain")])

    def _stats(self, conn, req):
        body = json.dumps(self.stats()).encode()
        return self._simple(conn, req, 200, body, [("Content-Type", "application/json")])

    def _reset(self, conn, req):
        self.reset()
        return self._simple(conn, req, 200, b"reset\n", [("Content-Type", "text/plain")])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Scripted hostile HTTP/1.1 test server.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--backlog", type=int, default=4096)
    args = ap.parse_args(argv)
    # Many threads: small stacks keep the address space modest (only touched pages cost memory).
    threading.stack_size(256 * 1024)
    srv = HostileServer(args.host, args.port, args.backlog)
    port = srv.start()
    sys.stdout.write("PORT %d\n" % port)
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""make-seeds.py - (re)build the seed corpora tests/fuzz/{http1,chunked,url,conf,proto}/ from the
project's own test data. Run from anywhere; it rewrites the seed files (the ones it names: hand-made
"seed-" and "crash-" files and libFuzzer's additions from `make fuzz-merge`, named by SHA-1, are kept):

    python3 tests/fuzz/make-seeds.py [--minimize]

- http1:   the raw streams of tests/corpus/http1-responses.jsonl and the table of tests/unit/test_http1.c
           (extracted by compiling that file with a small main; needs cc), behind the harness's 4 control
           bytes (HEAD flag, max_header_bytes, split point at the middle).
- chunked: the chunked bodies of those streams, and hand-written ones.
- url:     the inputs of tests/corpus/urltestdata.json that start with "http", and the URL literals of
           tests/unit/test_url.c.
- conf:    conf/fetchd.conf, one file per section of it, the texts tests/unit/test_conf.c loads, and
           hand-written variations.
- proto:   control-protocol sessions: HELLO + URLS + END and malformed ones.
A corpus holds at most LIMIT files. With more candidates, --minimize keeps those that add coverage (it
runs build-fuzz/fuzz_NAME -merge=1, so `make fuzz-build` first); without it, the first LIMIT are kept.
"""
import base64
import codecs
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LIMIT = 250
GENERATED = re.compile(r"^(llhttp|case|ws|url|test|conf|sess|body)-")


def c_strings(src):
    """Decode one run of adjacent C string literals ("a" "b") into bytes."""
    out = b""
    for lit in re.findall(r'"((?:[^"\\\n]|\\.)*)"', src):
        out += codecs.escape_decode(lit.encode("latin-1"))[0]
    return out


def slug(s, n=60):
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-")
    return s[:n] or "x"


class Corpus:
    def __init__(self, name):
        self.name = name
        self.items = []  # (filename, bytes)
        self.seen = set()

    def add(self, label, data):
        if data in self.seen:
            return
        self.seen.add(data)
        base = slug(label)
        fn, k = base, 2
        names = {f for f, _ in self.items}
        while fn in names:
            fn = "%s-%d" % (base, k)
            k += 1
        self.items.append((fn, data))

    def write(self, minimize):
        d = os.path.join(HERE, self.name)
        os.makedirs(d, exist_ok=True)
        items = self.items
        if len(items) > LIMIT:
            items = self.minimize(items) if minimize else items[:LIMIT]
        for f in os.listdir(d):
            if GENERATED.match(f):
                os.unlink(os.path.join(d, f))
        for fn, data in items:
            with open(os.path.join(d, fn), "wb") as f:
                f.write(data)
        total = sum(len(x) for _, x in items)
        print("%-8s %4d files, %7d bytes (of %d candidates)" % (self.name, len(items), total, len(self.items)))

    def minimize(self, items):
        fuzzer = os.path.join(ROOT, "build-fuzz", "fuzz_" + self.name)
        if not os.access(fuzzer, os.X_OK):
            sys.exit("make-seeds: %s is not built (make fuzz-build)" % fuzzer)
        with tempfile.TemporaryDirectory() as tmp:
            cand, out = os.path.join(tmp, "cand"), os.path.join(tmp, "out")
            os.makedirs(cand)
            os.makedirs(out)
            for fn, data in items:
                with open(os.path.join(cand, fn), "wb") as f:
                    f.write(data)
            subprocess.run([fuzzer, "-merge=1", out, cand], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            kept = set(os.listdir(out))
        return [(fn, data) for fn, data in items if hashlib.sha1(data).hexdigest() in kept][:LIMIT]


# ---- HTTP/1.1 streams ----

def http1_control(raw, head=False, max_hdr=0):
    """The harness's 4 control bytes: HEAD flag and max_header_bytes mode, its parameter, a split point."""
    if max_hdr == 0:
        b0, b1 = 0, 0
    elif max_hdr <= 256:
        b0, b1 = 2, max_hdr - 1
    else:
        b0, b1 = 4, max(0, min(255, max_hdr // 64 - 1))
    return bytes([b0 | (1 if head else 0), b1]) + struct.pack(">H", (len(raw) // 2) & 0xFFFF)


def http1_table_cases():
    """(name, head, max_hdr, raw) for every row of the table in tests/unit/test_http1.c."""
    main = r'''
#define main test_http1_main
#include "tests/unit/test_http1.c"
#undef main
int main(void)
{
	gen_init();
	for (size_t i = 0; i < NCASES; i++) {
		const struct tcase *c = &cases[i];
		size_t len = c->raw_len ? c->raw_len : strlen(c->raw);
		printf("%s\t%d\t%llu\t", c->name, c->head, (unsigned long long)c->max_hdr);
		for (size_t j = 0; j < len; j++)
			printf("%02x", (unsigned char)c->raw[j]);
		printf("\n");
	}
	return 0;
}
'''
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = os.path.join(tmp, "dump.c"), os.path.join(tmp, "dump")
        with open(src, "w") as f:
            f.write(main)
        subprocess.run(["cc", "-std=gnu11", "-w", "-D_GNU_SOURCE", '-DFETCHD_VERSION="0.1.0"', "-I", ROOT,
                        "-o", exe, src, os.path.join(ROOT, "daemon", "http1.c")], check=True)
        out = subprocess.run([exe], check=True, stdout=subprocess.PIPE).stdout.decode()
    for line in out.splitlines():
        name, head, max_hdr, raw = line.split("\t")
        yield name, head == "1", int(max_hdr), bytes.fromhex(raw)


def llhttp_records():
    with open(os.path.join(ROOT, "tests", "corpus", "http1-responses.jsonl")) as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                yield rec["id"], rec.get("request_method", "GET") == "HEAD", base64.b64decode(rec["raw_b64"])


def build_http1(streams):
    c = Corpus("http1")
    for kind, name, head, max_hdr, raw in streams:
        c.add("%s-%s" % (kind, name), http1_control(raw, head, max_hdr) + raw)
    # a few more: small header limits, pipelining, HEAD with each framing
    c.add("case-small-limit-chunked-trailers", http1_control(b"", False, 60) +
          b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\nX-T: 1\r\n\r\n")
    c.add("case-medium-limit", bytes([4, 3, 0, 9]) + b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    c.add("case-head-pipelined-chunked", http1_control(b"", True) +
          b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    return c


PREFIX = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def build_chunked(streams):
    c = Corpus("chunked")
    hand = [
        ("simple", b"5\r\nhello\r\n0\r\n\r\n"),
        ("two-chunks", b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        ("extensions", b"5;a=b;c=\"q;\\\"x\" ; d = e\r\nhello\r\n6 ; x\r\n world\r\n0;last\r\n\r\n"),
        ("trailers", b"1\r\nz\r\n0\r\nX-Trailer: 1\r\nY:2\r\n\r\n"),
        ("leading-zeros", b"000000000000000000000000A\r\n0123456789\r\n0\r\n\r\n"),
        ("upper-hex", b"1F\r\n" + b"x" * 31 + b"\r\n0\r\n\r\n"),
        ("size-2p60-1", b"FFFFFFFFFFFFFFF\r\nab"),
        ("size-overflow", b"1000000000000000\r\n"),
        ("no-crlf-after-data", b"2\r\nabc\r\n0\r\n\r\n"),
        ("bare-lf", b"1\nz\r\n0\r\n\r\n"),
        ("ext-unbalanced-quote", b"5;a=\"b; c\r\nhello\r\n0\r\n\r\n"),
        ("ext-empty-value", b"2;a=\r\naa\r\n0\r\n\r\n"),
        ("obs-fold-trailer", b"0\r\nA: b\r\n c\r\n\r\n"),
        ("pipelined-next", b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
        ("pipelined-next-chunked", b"0\r\n\r\n" + PREFIX + b"2\r\nhi\r\n0\r\n\r\n"),
        ("truncated-in-data", b"5\r\nhel"),
        ("empty", b""),
        ("random-bytes", bytes(range(256))),
        ("long-ext", b"1;" + b"e" * 4092 + b"\r\nx\r\n0\r\n\r\n"),
        ("many-small-chunks", b"".join(b"1\r\n%c\r\n" % (65 + i % 26) for i in range(200)) + b"0\r\n\r\n"),
    ]
    for name, body in hand:
        c.add("body-" + name, body)
    for kind, name, head, max_hdr, raw in streams:
        m = re.search(rb"\r\n\r\n", raw)
        if head or not m or not re.search(rb"(?im)^transfer-encoding:.*chunked", raw[:m.end()]):
            continue
        c.add("%s-%s" % (kind, name), raw[m.end():])
    return c


# ---- URLs ----

def build_url():
    c = Corpus("url")
    hand = [
        "http://example.com/", "https://example.com:8443/a?b#c", "http://user:pass@host:81/p?q",
        "http://[::1]:8080/", "http://[2001:db8::1]/x", "http://[::ffff:127.0.0.1]/", "http://[fe80::1%25eth0]/",
        "http://0x7f.1/", "http://2130706433/", "http://127.1/", "http://0177.0.0.1/", "http://1.2.3.4./",
        "http://4294967296/", "http://0x/", "http://a.b.c.d.e.f/", "http://a_b-c.example./",
        "http://" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61 + "/",
        "http://" + "a" * 64 + "/", "http://a:65535", "http://a:65536", "http://a:0/", "http://a:/",
        "http://@a/", "http://a@b@c/", "http://a\\b/", "HTTP://EXAMPLE.COM", "http:/a", "http:a", "ftp://a/",
        "http://a/caf\u00e9", "http://a?x", "http://a#f", "http://[::1]x/", "http://[::1", "http://a..b/",
    ]
    for u in hand:
        c.add("url-" + u, u.encode())
    with open(os.path.join(ROOT, "tests", "unit", "test_url.c"), encoding="latin-1") as f:
        src = f.read()
    for m in re.finditer(r'\{\s*((?:"(?:[^"\\\n]|\\.)*"\s*)+),', src):
        s = c_strings(m.group(1))
        if s.lower().startswith(b"http"):
            c.add("test-" + s.decode("latin-1"), s)
    with open(os.path.join(ROOT, "tests", "corpus", "urltestdata.json"), encoding="utf-8") as f:
        data = json.load(f)
    for rec in data:
        if isinstance(rec, dict) and rec["input"].startswith("http"):
            c.add("wpt-" + rec["input"], rec["input"].encode("utf-8", "surrogatepass"))
    return c


# ---- configuration files ----

def build_conf():
    c = Corpus("conf")
    with open(os.path.join(ROOT, "conf", "fetchd.conf"), "rb") as f:
        example = f.read()
    c.add("conf-fetchd.conf", example)
    # the example without comments, and each of its sections alone
    lines = [l for l in example.split(b"\n") if l.strip() and not l.startswith(b"#")]
    c.add("conf-example-bare", b"\n".join(lines) + b"\n")
    sections, cur = {}, None
    for l in lines:
        if l.startswith(b"["):
            cur = l
            sections[cur] = [l]
        elif cur:
            sections[cur].append(l)
    for head, body in sections.items():
        c.add("conf-section-" + head.decode().strip("[]"), b"\n".join(body) + b"\n")
    hand = [
        ("sizes", b"[control]\nclient_buffer_bytes = 64KiB\nmax_url_bytes = 64k\n[fetch]\nmax_header_bytes = 16M\n"
                  b"max_body_bytes = 1T\n"),
        ("sizes-mixed-case", b"[fetch]\nmax_body_bytes = 3gIb\nmax_header_bytes = 1024\n"),
        ("bounds-low", b"[daemon]\nworkers = 0\n[control]\nmax_clients = 1\nclient_window = 1\n[fetch]\n"
                       b"keepalive_idle_ms = 0\nmax_body_bytes = 0\n[dns]\ncache_size = 0\nmin_ttl_s = 0\n"),
        ("bounds-high", b"[daemon]\nworkers = 64\n[control]\nmax_clients = 4096\nclient_window = 1000000\n"
                        b"[fetch]\ntimeout_ms = 86400000\n[dns]\nmax_ttl_s = 604800\n"),
        ("out-of-range", b"[fetch]\nmax_inflight = 100001\n"),
        ("overflow", b"[fetch]\nmax_body_bytes = 99999999999999999999999\n"),
        ("overflow-suffix", b"[fetch]\nmax_body_bytes = 17179869184T\n"),
        ("strings", b"[fetch]\nuser_agent = Mozilla/5.0 (X11; Linux) fetchd\n[dns]\nfamily = ipv6\n"
                    b"hosts_file =\n[tls]\nmin_version = 1.3\nverify = no\nca_file = /etc/ssl/x.pem\n"),
        ("servers", b"[dns]\nservers = 127.0.0.1:5353, [::1]:53,\t8.8.8.8\n"),
        ("addresses", b"[security]\nallow_addresses = 127.0.0.0/8, ::1/128, 10.1.2.3/8\n"
                      b"deny_addresses = 169.254.169.254, fe80::/10\n"),
        ("log-levels", b"[daemon]\nlog_level = DEBUG\nlog_level = warn\n"),
        ("crlf-bom", b"\xef\xbb\xbf[fetch]\r\nmax_inflight = 7\r\n"),
        ("inline-comments", b"[fetch] ; c\nmax_inflight = 5 ; five\nuser_agent = a;b # c\n"),
        ("indented", b"[fetch]\n   max_inflight = 5\n\tper_host_connections = 2\n"),
        ("unknown-key", b"[fetch]\nbogus = 1\n"),
        ("unknown-section", b"[nope]\nx = 1\n"),
        ("key-outside-section", b"max_inflight = 5\n"),
        ("colon-separator", b"[fetch]\nmax_inflight: 5\n"),
        ("empty-value-number", b"[fetch]\nmax_inflight =\n"),
        ("nul-byte", b"[fetch]\nmax_inflight = 5\0junk\n"),
        ("long-line", b"[dns]\nservers = " + b"1.1.1.1," * 30 + b"1.1.1.1\n"),
        ("socket-long", b"[control]\nsocket = /" + b"s" * 106 + b"\n"),
        ("socket-too-long", b"[control]\nsocket = /" + b"s" * 107 + b"\n"),
        ("no-final-newline", b"[fetch]\nmax_inflight = 5"),
        ("comments-only", b"# nothing\n; nothing\n\n"),
        ("empty-section-name", b"[]\n"),
    ]
    for name, text in hand:
        c.add("conf-" + name, text)
    with open(os.path.join(ROOT, "tests", "unit", "test_conf.c"), encoding="latin-1") as f:
        src = f.read()
    for m in re.finditer(r'(?:check_file_error|load_text)\(\s*(?:&c,\s*)?((?:"(?:[^"\\\n]|\\.)*"\s*)+)', src):
        text = c_strings(m.group(1))
        c.add("test-" + text.decode("latin-1")[:40], text)
    return c


# ---- control-protocol sessions ----

def frame(t, payload):
    return struct.pack(">IB", len(payload), t) + payload


HELLO, URLS, END = 1, 2, 3


def build_proto():
    c = Corpus("proto")
    hello = frame(HELLO, b'{"protocol": 1, "client": "fetchctl/0.1.0"}')
    urls = b"http://example.com/\nhttps://a.test:8443/x?y\n"
    sessions = [
        ("valid", hello + frame(URLS, urls) + frame(END, b"")),
        ("valid-no-hash", frame(HELLO, b'{"protocol":1,"hash":false}') + frame(URLS, urls) + frame(END, b"")),
        ("valid-crlf-lines", hello + frame(URLS, b"http://a/\r\nhttp://b/\r\n\r\n") + frame(END, b"")),
        ("valid-two-urls-frames", hello + frame(URLS, b"http://a/\n") + frame(URLS, b"bad url\n\n# x\n") +
         frame(END, b"")),
        ("valid-empty-urls", hello + frame(URLS, b"") + frame(END, b"")),
        ("valid-end-twice", hello + frame(END, b"") + frame(END, b"")),
        ("valid-partial-next", hello + frame(URLS, urls) + frame(END, b"")[:3]),
        ("valid-long-url", hello + frame(URLS, b"http://a/" + b"p" * 9000 + b"\n") + frame(END, b"")),
        ("hello-version-2", frame(HELLO, b'{"protocol": 2}') + frame(URLS, urls)),
        ("hello-version-negative", frame(HELLO, b'{"protocol": -1}')),
        ("hello-version-float", frame(HELLO, b'{"protocol": 1.0}')),
        ("hello-version-huge", frame(HELLO, b'{"protocol": 99999999999999999999999}')),
        ("hello-no-version", frame(HELLO, b'{"client": "x"}')),
        ("hello-empty", frame(HELLO, b"")),
        ("hello-key-in-string", frame(HELLO, b'{"client": "\\"protocol\\": 1", "protocol" :\t1, "hash": true}')),
        ("hello-twice", hello + hello),
        ("no-hello", frame(URLS, urls) + frame(END, b"")),
        ("urls-after-end", hello + frame(END, b"") + frame(URLS, urls)),
        ("urls-no-final-newline", hello + frame(URLS, b"http://a/\nhttp://b/")),
        ("unknown-type", hello + frame(0x7F, b"x")),
        ("daemon-type", hello + frame(0x81, b"{}")),
        ("too-large", hello + struct.pack(">IB", (1 << 20) + 1, URLS)),
        ("max-size-header", hello + struct.pack(">IB", 1 << 20, URLS) + b"http://a/\n"),
        ("huge-length", struct.pack(">IB", 0xFFFFFFFF, HELLO)),
        ("short-header", b"\x00\x00\x00"),
        ("truncated-payload", frame(HELLO, b'{"protocol": 1}')[:10]),
        ("empty", b""),
    ]
    for name, data in sessions:
        c.add("sess-" + name, data)
    return c


def main():
    minimize = "--minimize" in sys.argv[1:]
    streams = [("llhttp", i, h, 0, raw) for i, h, raw in llhttp_records()]
    streams += [("case", n, h, m, raw) for n, h, m, raw in http1_table_cases()]
    for corpus in (build_http1(streams), build_chunked(streams), build_url(), build_conf(), build_proto()):
        corpus.write(minimize)


if __name__ == "__main__":
    main()

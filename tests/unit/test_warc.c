/* test_warc.c - unit tests for tools/spool.c and tools/warc.c: base32 against the RFC 4648 vectors;
 * block digests against the FIPS 180 SHA-1 vectors (one block spilled to disk); every record read back
 * by a small parser here (header form, Content-Length, digests, the CRLF CRLF end) from plain files and
 * from .gz files walked one gzip member at a time, each member holding exactly one record; a spool of
 * 5 MiB through a 64 KiB cap, appended and read in random pieces; rolled file names for each kind of
 * path and the max_bytes rule (captures kept whole, a warcinfo first in every file); and errors:
 * /dev/full, a missing directory, bad arguments, a record cut back out after EFBIG, a sticky failed
 * roll. */
#include "tools/spool.h"
#include "tools/warc.h"
#include "tests/unit/test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/sha1.h>
#include <zlib.h>

#define KIB 1024u
#define MIB (1024u * 1024u)

static char tmp_dir[256];

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

static uint8_t *make_random(size_t n, uint64_t seed)
{
	uint8_t *p = xmalloc(n);
	uint64_t s = seed | 1;
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(test_rng(&s) >> 32);
	return p;
}

static char *tmp_path(const char *name)
{
	static char path[512];
	snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);
	return path;
}

static void sha1_b32(const void *p, size_t n, char out[40])
{
	uint8_t d[20];
	mbedtls_sha1_ret(p, n, d);
	warc_base32(d, 20, out);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, n = 0, got;
	uint8_t *p = xmalloc(cap);
	if (!f) {
		free(p);
		return NULL;
	}
	while ((got = fread(p + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap)
			p = realloc(p, cap *= 2);
		if (!p)
			abort();
	}
	fclose(f);
	*len = n;
	return p;
}

/* ---- reading records back ---- */

struct rec {
	char type[16], id[64], date[40], filename[64], target[256], ip[64], concurrent_to[64];
	char content_type[64], block_digest[64], payload_digest[64];
	uint64_t content_length;
	bool digest_ok;    /* WARC-Block-Digest is "sha1:" + base32 of the block as stored */
	uint64_t offset;   /* where the record starts in the file (compressed offset for .gz) */
	size_t block_len;
	char block_head[64]; /* the block's first bytes, NUL-terminated */
};

static void hdr_copy(char *dst, size_t cap, const char *v, size_t n)
{
	n = n < cap - 1 ? n : cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

/* Parse the record at p[0..len); the bytes it took, or 0 when it is malformed. */
static size_t parse_record(const uint8_t *p, size_t len, struct rec *r)
{
	memset(r, 0, sizeof(*r));
	const char *s = (const char *)p;
	const uint8_t *end = memmem(p, len, "\r\n\r\n", 4);
	if (len < 10 || memcmp(p, "WARC/1.1\r\n", 10) != 0 || !end)
		return 0;
	size_t hdr_len = (size_t)(end - p) + 4, i = 10;
	bool have_len = false;
	while (i < hdr_len - 2) {
		const char *eol = memmem(s + i, hdr_len - i, "\r\n", 2);
		const char *colon = memchr(s + i, ':', (size_t)(eol - (s + i)));
		if (!colon || colon[1] != ' ')
			return 0;
		size_t nlen = (size_t)(colon - (s + i));
		const char *v = colon + 2;
		size_t vlen = (size_t)(eol - v);
#define H(name, field)                                                     \
	if (nlen == strlen(name) && strncmp(s + i, name, nlen) == 0)       \
		hdr_copy(r->field, sizeof(r->field), v, vlen);
		H("WARC-Type", type) H("WARC-Record-ID", id) H("WARC-Date", date) H("WARC-Filename", filename)
		H("WARC-Target-URI", target) H("WARC-IP-Address", ip) H("WARC-Concurrent-To", concurrent_to)
		H("Content-Type", content_type) H("WARC-Block-Digest", block_digest)
		H("WARC-Payload-Digest", payload_digest)
#undef H
		if (nlen == 14 && strncmp(s + i, "Content-Length", 14) == 0) {
			r->content_length = strtoull(v, NULL, 10);
			have_len = true;
		}
		i = (size_t)(eol - s) + 2;
	}
	if (!have_len || r->content_length > len - hdr_len || len - hdr_len - r->content_length < 4 ||
	    memcmp(p + hdr_len + r->content_length, "\r\n\r\n", 4) != 0)
		return 0;
	char b32[40], want[48];
	sha1_b32(p + hdr_len, r->content_length, b32);
	snprintf(want, sizeof(want), "sha1:%s", b32);
	r->digest_ok = strcmp(want, r->block_digest) == 0;
	r->block_len = r->content_length;
	hdr_copy(r->block_head, sizeof(r->block_head), (const char *)p + hdr_len, r->content_length);
	return hdr_len + r->content_length + 4;
}

/* Inflate one gzip member at p[0..len) into *out (malloc'ed); the compressed bytes it took, or 0. */
static size_t inflate_member(const uint8_t *p, size_t len, uint8_t **out, size_t *out_len)
{
	z_stream z = {0};
	size_t cap = 64 * KIB, n = 0;
	uint8_t *o = xmalloc(cap);
	int zr = Z_OK;
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		abort();
	z.next_in = (Bytef *)p;
	z.avail_in = (uInt)len;
	while (zr == Z_OK) {
		if (n == cap)
			o = realloc(o, cap *= 2);
		if (!o)
			abort();
		z.next_out = o + n;
		z.avail_out = (uInt)(cap - n);
		zr = inflate(&z, Z_NO_FLUSH);
		n = cap - z.avail_out;
	}
	size_t used = len - z.avail_in;
	inflateEnd(&z);
	if (zr != Z_STREAM_END) {
		free(o);
		return 0;
	}
	*out = o;
	*out_len = n;
	return used;
}

/* Every record of the file at path into recs[0..max): the count, or -1 when the file is malformed.
 * A .gz file (by its magic) must hold exactly one record per gzip member. */
static int load_records(const char *path, struct rec *recs, int max)
{
	size_t len, off = 0;
	uint8_t *p = read_file(path, &len);
	int n = 0;
	if (!p)
		return -1;
	bool gz = len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
	while (off < len && n < max) {
		uint8_t *m = p + off, *plain = NULL;
		size_t mlen = len - off, took, used = 0;
		if (gz) {
			used = inflate_member(p + off, len - off, &plain, &mlen);
			m = plain;
		}
		took = used || !gz ? parse_record(m, mlen, &recs[n]) : 0;
		free(plain);
		if (!took || (gz && took != mlen))
			break;
		recs[n++].offset = off;
		off += gz ? used : took;
	}
	free(p);
	return off == len ? n : -1;
}

/* ---- base32 ---- */

static void test_base32(void)
{
	static const struct {
		const char *in;
		size_t len;
		const char *want;
	} cases[] = {
		{"", 0, ""},
		{"f", 1, "MY======"},
		{"fo", 2, "MZXQ===="},
		{"foo", 3, "MZXW6==="},
		{"foob", 4, "MZXW6YQ="},
		{"fooba", 5, "MZXW6YTB"},
		{"foobar", 6, "MZXW6YTBOI======"},
		{"\xff\xff\xff\xff\xff", 5, "77777777"},
		{"\0\0\0\0\0\0", 6, "AAAAAAAAAA======"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[64];
		size_t n = warc_base32(cases[i].in, cases[i].len, out);
		CHECK(n == strlen(cases[i].want) && strcmp(out, cases[i].want) == 0, "base32 case %zu = %s, want %s",
		      i, out, cases[i].want);
	}
}

/* ---- spool ---- */

static bool spool_fd_deleted(const struct spool *s)
{
	char link[64], target[512];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", s->fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strstr(target, "(deleted)") != NULL;
}

static void test_spool_big(size_t total, size_t cap, uint64_t seed)
{
	struct spool s;
	uint8_t *data = make_random(total, seed), *back = xmalloc(total);
	uint64_t rs = seed * 7 + 1;
	size_t off = 0;
	int bad = 0;
	spool_init(&s, cap);
	while (off < total) {
		size_t n = (size_t)(test_rng(&rs) % (3 * cap / 2 + 2));
		n = n < total - off ? n : total - off;
		if (spool_append(&s, data + off, n) != 0)
			bad++;
		off += n;
	}
	CHECK(bad == 0 && spool_len(&s) == total, "spool %zu/%zu: %d appends failed, len %llu", total, cap, bad,
	      (unsigned long long)spool_len(&s));
	CHECK(s.mem_alloc <= cap, "spool %zu/%zu: %zu bytes in memory", total, cap, s.mem_alloc);
	CHECK(total <= cap ? s.fd == -1 : s.fd >= 0 && spool_fd_deleted(&s), "spool %zu/%zu: fd %d", total, cap,
	      s.fd);
	/* read back in order, in random pieces */
	for (off = 0; off < total;) {
		size_t n = 1 + (size_t)(test_rng(&rs) % (2 * cap + 100));
		ssize_t got = spool_read(&s, off, back + off, n);
		if (got <= 0 || (size_t)got != (n < total - off ? n : total - off)) {
			bad++;
			break;
		}
		off += (size_t)got;
	}
	CHECK(bad == 0 && memcmp(back, data, total) == 0, "spool %zu/%zu: read back differs", total, cap);
	/* random ranges, some across the memory/file edge */
	for (int i = 0; i < 200 && total; i++) {
		size_t o = i % 2 ? (size_t)(test_rng(&rs) % total) : (cap > 10 ? cap - 10 : 0);
		size_t n = 1 + (size_t)(test_rng(&rs) % 100000);
		size_t want = o < total ? (n < total - o ? n : total - o) : 0;
		ssize_t got = spool_read(&s, o, back, n);
		if (got != (ssize_t)want || memcmp(back, data + o, want) != 0)
			bad++;
	}
	CHECK(bad == 0, "spool %zu/%zu: %d random reads wrong", total, cap, bad);
	CHECK(spool_read(&s, total, back, 10) == 0 && spool_read(&s, total + 5, back, 10) == 0,
	      "spool %zu/%zu: reading at the end", total, cap);
	/* reset, then reuse */
	spool_reset(&s);
	CHECK(spool_len(&s) == 0 && spool_read(&s, 0, back, 10) == 0, "spool reset: len %llu",
	      (unsigned long long)spool_len(&s));
	size_t again = total < 3 * cap + 1 ? (total ? total - 1 : 0) : 3 * cap;
	CHECK(spool_append(&s, data + 1, again) == 0 && spool_read(&s, 0, back, again) == (ssize_t)again &&
		      memcmp(back, data + 1, again) == 0,
	      "spool %zu/%zu: reuse after reset", total, cap);
	if (s.fd >= 0) {
		struct stat st;
		CHECK(fstat(s.fd, &st) == 0 && (uint64_t)st.st_size == (again > cap ? again - cap : 0),
		      "spool %zu/%zu: the file was not truncated by reset (%lld bytes)", total, cap,
		      (long long)st.st_size);
	}
	spool_free(&s);
	free(data);
	free(back);
}

static void test_spool(void)
{
	static const struct {
		size_t total, cap;
	} cases[] = {
		{5 * MIB, 64 * KIB}, {0, 64 * KIB}, {1000, 64 * KIB}, {64 * KIB, 64 * KIB}, {64 * KIB + 1, 64 * KIB},
		{300 * KIB, 0},      {100 * KIB, 1}, {2 * MIB, 1 * MIB},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		test_spool_big(cases[i].total, cases[i].cap, 100 + i);

	/* a spill that cannot happen ($TMPDIR missing) adds nothing */
	struct spool s;
	char *old = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL, buf[8];
	setenv("TMPDIR", tmp_path("no-such-dir"), 1);
	spool_init(&s, 4);
	CHECK(spool_append(&s, "abc", 3) == 0, "spool: append under the cap");
	int r = spool_append(&s, "defgh", 5);
	CHECK(r == -ENOENT && spool_len(&s) == 3, "spool: failed spill gave %d, len %llu", r,
	      (unsigned long long)spool_len(&s));
	CHECK(spool_append(&s, "d", 1) == 0 && spool_read(&s, 0, buf, 8) == 4 && memcmp(buf, "abcd", 4) == 0,
	      "spool: usable after a failed spill");
	spool_free(&s);
	if (old)
		setenv("TMPDIR", old, 1);
	else
		unsetenv("TMPDIR");
	free(old);
}

/* ---- records, digests, gzip members ---- */

static const char chunked_resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n"
				   "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

static void spool_set(struct spool *s, const void *p, size_t n)
{
	spool_reset(s);
	if (spool_append(s, p, n) != 0)
		abort();
}

static void test_digests(void)
{
	static const struct {
		const char *block;
		size_t repeat; /* the block is block[0] repeated this many times, when not 0 */
		const char *want;
	} cases[] = {
		{"", 0, "sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ"},
		{"abc", 0, "sha1:VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5"},
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 0, "sha1:QSMD4RA4HPJG5OVOJKQ7SUJJ4XSUM4HR"},
		{"a", 1000000, "sha1:GSVJOPGUYTNKJ5Q65MV5XLJHGFSTIALP"},
	};
	for (int gz = 0; gz < 2; gz++) {
		const char *path = tmp_path(gz ? "digests.warc.gz" : "digests.warc");
		struct warc_writer *w;
		struct spool s;
		char err[256], id[WARC_ID_SIZE];
		spool_init(&s, 64 * KIB);
		int r = warc_open(&w, path, 0, "test_warc/1", err, sizeof(err));
		CHECK(r == 0, "open %s: %s", path, err);
		if (r)
			return;
		size_t n = sizeof(cases) / sizeof(cases[0]);
		for (size_t i = 0; i < n; i++) {
			spool_reset(&s);
			if (cases[i].repeat) {
				char chunk[1000];
				memset(chunk, cases[i].block[0], sizeof(chunk));
				for (size_t k = 0; k < cases[i].repeat / sizeof(chunk); k++)
					spool_append(&s, chunk, sizeof(chunk));
			} else {
				spool_append(&s, cases[i].block, strlen(cases[i].block));
			}
			r = warc_write_request(w, "http://example.com/", "2026-11-22T08:10:26Z", "", &s, id);
			CHECK(r == 0, "write: %s", warc_error(w));
		}
		CHECK(warc_close(w) == 0, "close %s", path);
		struct rec recs[8];
		int got = load_records(path, recs, 8);
		CHECK(got == (int)n + 1, "%s: %d records", path, got);
		for (int i = 1; i < got; i++)
			CHECK(strcmp(recs[i].block_digest, cases[i - 1].want) == 0 && recs[i].digest_ok,
			      "%s: digest %s, want %s", path, recs[i].block_digest, cases[i - 1].want);
		spool_free(&s);
	}
}

/* A warcinfo, request, response (chunked) and metadata: each record's fields read back, plain and gz. */
static void test_records(void)
{
	static const char req[] = "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nUser-Agent: fetchd\r\n\r\n";
	static const char *const paths[] = {"rec.warc", "rec.warc.gz", "rec.gz", "rec"};
	for (size_t pi = 0; pi < sizeof(paths) / sizeof(paths[0]); pi++) {
		const char *path = tmp_path(paths[pi]);
		struct warc_writer *w;
		struct spool s;
		char err[256], req_id[WARC_ID_SIZE], resp_id[WARC_ID_SIZE], meta_id[WARC_ID_SIZE];
		uint8_t payload[20];
		mbedtls_sha1_ret((const uint8_t *)"hello world", 11, payload);
		spool_init(&s, 16);
		int r = warc_open(&w, path, 0, "fetchctl/0.1.0", err, sizeof(err));
		CHECK(r == 0 && strcmp(warc_filename(w), path) == 0, "open %s: %s", path, err);
		if (r)
			return;
		spool_set(&s, req, strlen(req));
		CHECK(warc_write_request(w, "http://example.com/a?b=c", "2026-11-22T08:10:26Z", "93.184.216.34", &s,
					 req_id) == 0,
		      "%s: request: %s", path, warc_error(w));
		spool_set(&s, chunked_resp, strlen(chunked_resp));
		CHECK(warc_write_response(w, "http://example.com/a?b=c", "2026-11-22T08:10:26.5Z", "93.184.216.34",
					  req_id, &s, payload, resp_id) == 0,
		      "%s: response: %s", path, warc_error(w));
		CHECK(warc_write_metadata(w, "http://example.com/a?b=c", "2026-11-22T08:10:26.123456Z", resp_id,
					  "fetchd-error: timeout: no header in 30 s\r\n", meta_id) == 0,
		      "%s: metadata: %s", path, warc_error(w));
		CHECK(warc_close(w) == 0, "%s: close", path);
		spool_free(&s);

		size_t len;
		uint8_t *raw = read_file(path, &len);
		bool is_gz = raw && len > 2 && raw[0] == 0x1f && raw[1] == 0x8b;
		CHECK(is_gz == (strstr(paths[pi], ".gz") != NULL), "%s: gzip %d", path, is_gz);
		free(raw);

		struct rec recs[8];
		int n = load_records(path, recs, 8);
		CHECK(n == 4, "%s: %d records", path, n);
		if (n != 4)
			continue;
		CHECK(strcmp(recs[0].type, "warcinfo") == 0 && strcmp(recs[0].filename, paths[pi]) == 0 &&
			      strcmp(recs[0].content_type, "application/warc-fields") == 0 &&
			      strstr(recs[0].block_head, "software: fetchctl/0.1.0\r\nformat: WARC File Format 1.1\r\n"),
		      "%s: warcinfo %s %s [%s]", path, recs[0].type, recs[0].filename, recs[0].block_head);
		CHECK(strcmp(recs[1].type, "request") == 0 && strcmp(recs[1].id, req_id) == 0 &&
			      strcmp(recs[1].target, "http://example.com/a?b=c") == 0 &&
			      strcmp(recs[1].ip, "93.184.216.34") == 0 && strcmp(recs[1].date, "2026-11-22T08:10:26Z") == 0 &&
			      strcmp(recs[1].content_type, "application/http;msgtype=request") == 0 &&
			      recs[1].content_length == strlen(req) && !recs[1].payload_digest[0],
		      "%s: request record", path);
		CHECK(strcmp(recs[2].type, "response") == 0 && strcmp(recs[2].id, resp_id) == 0 &&
			      strcmp(recs[2].concurrent_to, req_id) == 0 &&
			      strcmp(recs[2].payload_digest, "sha1:FKXGYNOJJ7H3IFO35FPUBC445EPOQRXN") == 0 &&
			      strcmp(recs[2].content_type, "application/http;msgtype=response") == 0 &&
			      recs[2].content_length == strlen(chunked_resp),
		      "%s: response record (payload %s)", path, recs[2].payload_digest);
		CHECK(strcmp(recs[3].type, "metadata") == 0 && strcmp(recs[3].concurrent_to, resp_id) == 0 &&
			      !recs[3].ip[0] && strcmp(recs[3].date, "2026-11-22T08:10:26.123456Z") == 0 &&
			      strcmp(recs[3].block_head, "fetchd-error: timeout: no header in 30 s\r\n") == 0,
		      "%s: metadata record", path);
		for (int i = 0; i < n; i++) {
			CHECK(recs[i].digest_ok, "%s: record %d block digest %s", path, i, recs[i].block_digest);
			CHECK(strlen(recs[i].id) == 47 && strncmp(recs[i].id, "<urn:uuid:", 10) == 0 &&
				      recs[i].id[24] == '4' && strchr("89ab", recs[i].id[29]),
			      "%s: record id %s", path, recs[i].id);
		}
		CHECK(strcmp(req_id, resp_id) != 0 && strcmp(resp_id, meta_id) != 0, "%s: ids differ", path);
	}
	char now[WARC_DATE_SIZE];
	CHECK(warc_date_now(now) == 0 && strlen(now) == 27 && now[10] == 'T' && now[19] == '.' && now[26] == 'Z',
	      "warc_date_now: %s", now);
}

/* ---- rolling ---- */

/* The names a series gets, for each kind of path; max_bytes 1 puts each capture in a file of its own. */
static void test_roll_names(void)
{
	static const struct {
		const char *path, *stem, *suffix; /* the series: stem + "-%05d" + suffix */
		bool gz;
	} cases[] = {
		{"out.warc.gz", "out", ".warc.gz", true},
		{"out.warc", "out", ".warc", false},
		{"out.gz", "out", ".gz", true},
		{"out", "out", "", false},
		{"a.b.c", "a.b.c", "", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char dir[300], path[400], want[64], err[256], id[WARC_ID_SIZE];
		struct warc_writer *w;
		struct spool s;
		snprintf(dir, sizeof(dir), "%s/names%zu", tmp_dir, i);
		mkdir(dir, 0700);
		snprintf(path, sizeof(path), "%s/%s", dir, cases[i].path);
		spool_init(&s, 1024);
		spool_set(&s, "GET / HTTP/1.1\r\n\r\n", 18);
		int r = warc_open(&w, path, 1, "t", err, sizeof(err));
		CHECK(r == 0, "open %s: %s", path, err);
		if (r)
			continue;
		snprintf(want, sizeof(want), "%s-00000%s", cases[i].stem, cases[i].suffix);
		const char *b = strrchr(warc_filename(w), '/') + 1;
		CHECK(strcmp(b, want) == 0, "%s: first file %s, want %s", path, b, want);
		for (int k = 0; k < 3; k++) {
			CHECK(warc_write_request(w, "http://x/", "2026-01-01T00:00:00Z", NULL, &s, id) == 0,
			      "%s: %s", path, warc_error(w));
			CHECK(warc_write_metadata(w, "http://x/", "2026-01-01T00:00:00Z", id, "a: b\r\n", id) == 0,
			      "%s: %s", path, warc_error(w));
		}
		snprintf(want, sizeof(want), "%s-00002%s", cases[i].stem, cases[i].suffix);
		b = strrchr(warc_filename(w), '/') + 1;
		CHECK(strcmp(b, want) == 0, "%s: third file %s, want %s", path, b, want);
		CHECK(warc_close(w) == 0, "close %s", path);
		CHECK(access(path, F_OK) != 0, "%s exists: a series never writes the path itself", path);
		for (int k = 0; k < 4; k++) {
			char name[400];
			struct rec recs[4];
			snprintf(want, sizeof(want), "%s-%05d%s", cases[i].stem, k, cases[i].suffix);
			snprintf(name, sizeof(name), "%s/%s", dir, want);
			if (k == 3) {
				CHECK(access(name, F_OK) != 0, "%s exists", name);
				break;
			}
			int n = load_records(name, recs, 4);
			CHECK(n == 3 && strcmp(recs[0].type, "warcinfo") == 0 && strcmp(recs[0].filename, want) == 0 &&
				      strcmp(recs[1].type, "request") == 0 && strcmp(recs[2].type, "metadata") == 0,
			      "%s: %d records", name, n);
			size_t len;
			uint8_t *raw = read_file(name, &len);
			CHECK(raw && (len > 2 && raw[0] == 0x1f && raw[1] == 0x8b) == cases[i].gz, "%s: gzip", name);
			free(raw);
			unlink(name);
		}
		rmdir(dir);
		spool_free(&s);
	}
}

/* Many captures (request, response, metadata) of incompressible data through max_bytes: every file
 * starts with a warcinfo, no capture is split, a file reached max_bytes before the next began, and
 * its last capture started below max_bytes. */
static void test_roll_sizes(void)
{
	static const struct {
		const char *stem, *suffix;
		uint64_t max;
	} cases[] = {{"roll", ".warc.gz", 20000}, {"roll", ".warc", 20000}, {"roll1", ".warc", 50000}};
	for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
		struct warc_writer *w;
		struct spool s;
		char err[256], req_id[WARC_ID_SIZE], resp_id[WARC_ID_SIZE], meta_id[WARC_ID_SIZE];
		uint64_t rs = 77 + ci;
		char path[400];
		snprintf(path, sizeof(path), "%s/%s%s", tmp_dir, cases[ci].stem, cases[ci].suffix);
		spool_init(&s, 4 * KIB);
		int r = warc_open(&w, path, cases[ci].max, "t", err, sizeof(err));
		CHECK(r == 0, "open %s: %s", path, err);
		if (r)
			return;
		int captures = 60, bad = 0;
		for (int k = 0; k < captures; k++) {
			size_t n = 100 + (size_t)(test_rng(&rs) % 8000);
			uint8_t *data = make_random(n, rs);
			spool_set(&s, data, n);
			bad += warc_write_request(w, "http://x/", "2026-01-01T00:00:00Z", "::1", &s, req_id) != 0;
			bad += warc_write_response(w, "http://x/", "2026-01-01T00:00:00Z", "::1", req_id, &s, NULL,
						   resp_id) != 0;
			bad += warc_write_metadata(w, "http://x/", "2026-01-01T00:00:00Z", resp_id, "k: v\r\n",
						   meta_id) != 0;
			free(data);
		}
		CHECK(bad == 0, "%s: %d writes failed: %s", path, bad, warc_error(w));
		CHECK(warc_close(w) == 0, "close %s", path);
		spool_free(&s);

		int files = 0, seen = 0;
		for (;; files++) {
			char name[400];
			struct rec recs[256];
			struct stat st;
			snprintf(name, sizeof(name), "%s/%s-%05d%s", tmp_dir, cases[ci].stem, files, cases[ci].suffix);
			if (stat(name, &st) != 0)
				break;
			int n = load_records(name, recs, 256);
			bool ok = n >= 4 && (n - 1) % 3 == 0 && strcmp(recs[0].type, "warcinfo") == 0;
			for (int i = 1; ok && i < n; i += 3)
				ok = strcmp(recs[i].type, "request") == 0 && strcmp(recs[i + 1].type, "response") == 0 &&
				     strcmp(recs[i + 2].type, "metadata") == 0 &&
				     strcmp(recs[i + 1].concurrent_to, recs[i].id) == 0 &&
				     strcmp(recs[i + 2].concurrent_to, recs[i + 1].id) == 0 && recs[i].digest_ok &&
				     recs[i + 1].digest_ok && !recs[i + 1].payload_digest[0];
			CHECK(ok, "%s: %d records, in captures", name, n);
			if (n >= 4) {
				CHECK(recs[n - 3].offset < cases[ci].max, "%s: last capture began at %llu", name,
				      (unsigned long long)recs[n - 3].offset);
				seen += (n - 1) / 3;
			}
			char next[400];
			snprintf(next, sizeof(next), "%s/%s-%05d%s", tmp_dir, cases[ci].stem, files + 1, cases[ci].suffix);
			if (access(next, F_OK) == 0)
				CHECK((uint64_t)st.st_size >= cases[ci].max, "%s: %lld bytes, yet a next file", name,
				      (long long)st.st_size);
			unlink(name);
		}
		CHECK(seen == captures && files > 2, "%s: %d captures in %d files", path, seen, files);
	}
}

/* ---- errors ---- */

static void test_errors(void)
{
	struct warc_writer *w = (struct warc_writer *)1;
	struct spool s;
	char err[256], id[WARC_ID_SIZE];
	int r;

	r = warc_open(&w, "/dev/full", 0, "t", err, sizeof(err));
	CHECK(r == -ENOSPC && !w && strstr(err, "/dev/full") && strstr(err, "No space left"), "/dev/full: %d %s",
	      r, err);
	r = warc_open(&w, tmp_path("no-such-dir/x.warc"), 0, "t", err, sizeof(err));
	CHECK(r == -ENOENT && !w && strstr(err, "no-such-dir/x.warc"), "missing dir: %d %s", r, err);
	r = warc_open(&w, "", 0, "t", err, sizeof(err));
	CHECK(r == -EINVAL && !w, "empty path: %d %s", r, err);
	r = warc_open(&w, tmp_path("x.warc"), 0, "bad\r\nname", err, sizeof(err));
	CHECK(r == -EINVAL && !w, "software with CRLF: %d %s", r, err);

	/* bad arguments: refused, nothing written */
	const char *path = tmp_path("args.warc");
	spool_init(&s, 1024);
	spool_set(&s, "x", 1);
	r = warc_open(&w, path, 0, "t", err, sizeof(err));
	CHECK(r == 0, "open %s: %s", path, err);
	if (r)
		return;
	static const struct {
		const char *uri, *date, *ip, *conc;
	} bad[] = {
		{"http://x/\r\nWARC-Type: evil", "2026-01-01T00:00:00Z", NULL, NULL},
		{"", "2026-01-01T00:00:00Z", NULL, NULL},
		{NULL, "2026-01-01T00:00:00Z", NULL, NULL},
		{"http://x/", "2026-01-01 00:00:00Z", NULL, NULL},
		{"http://x/", "2026-01-01T00:00:00", NULL, NULL},
		{"http://x/", "2026-01-01T00:00:00.Z", NULL, NULL},
		{"http://x/", "2026-01-01T00:00:00.1234567Z", NULL, NULL},
		{"http://x/", "2026-01-01T00:00:00Zx", NULL, NULL},
		{"http://x/", "26-01-01T00:00:00Z", NULL, NULL},
		{"http://x/", "2026-01-01T00:00:00Z", "1.2.3.4\n", NULL},
		{"http://x/", "2026-01-01T00:00:00Z", NULL, "<urn:uuid:1>\r"},
		{"http://x/", "2026-01-01T00:00:00Z", NULL, ""},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = warc_write_response(w, bad[i].uri, bad[i].date, bad[i].ip, bad[i].conc, &s, NULL, id);
		CHECK(r == -EINVAL && strstr(warc_error(w), "invalid"), "bad case %zu: %d", i, r);
	}
	CHECK(warc_write_metadata(w, NULL, "2026-01-01T00:00:00Z", NULL, "a: b\r\n", id) == 0,
	      "metadata without a target: %s", warc_error(w));
	CHECK(warc_close(w) == 0, "close");
	struct rec recs[4];
	CHECK(load_records(path, recs, 4) == 2 && !recs[1].target[0], "%s: only warcinfo and metadata", path);
	spool_free(&s);

	/* a record that fails half way (EFBIG at RLIMIT_FSIZE) is cut back out; the writer goes on */
	for (int gz = 0; gz < 2; gz++) {
		struct rlimit old, lim;
		size_t n = 16 * KIB;
		uint8_t *data = make_random(n, 5);
		path = tmp_path(gz ? "efbig.warc.gz" : "efbig.warc");
		spool_init(&s, n);
		spool_set(&s, data, n);
		r = warc_open(&w, path, 0, "t", err, sizeof(err));
		CHECK(r == 0, "open %s: %s", path, err);
		if (r)
			break;
		struct stat st0, st1;
		stat(path, &st0);
		signal(SIGXFSZ, SIG_IGN);
		getrlimit(RLIMIT_FSIZE, &old);
		lim = old;
		lim.rlim_cur = 4096;
		setrlimit(RLIMIT_FSIZE, &lim);
		r = warc_write_response(w, "http://x/", "2026-01-01T00:00:00Z", NULL, NULL, &s, NULL, id);
		int r2 = warc_write_metadata(w, "http://x/", "2026-01-01T00:00:00Z", NULL, "after: efbig\r\n", id);
		setrlimit(RLIMIT_FSIZE, &old);
		signal(SIGXFSZ, SIG_DFL);
		CHECK(r == -EFBIG && strstr(warc_error(w), "write ") && strstr(warc_error(w), path), "%s: %d %s",
		      path, r, warc_error(w));
		CHECK(r2 == 0, "%s: after the cut: %d %s", path, r2, warc_error(w));
		stat(path, &st1);
		CHECK(warc_close(w) == 0, "close %s", path);
		int k = load_records(path, recs, 4);
		CHECK(k == 2 && strcmp(recs[1].type, "metadata") == 0 && recs[1].digest_ok &&
			      strcmp(recs[1].block_head, "after: efbig\r\n") == 0 && st1.st_size > st0.st_size,
		      "%s: %d records after the cut", path, k);
		spool_free(&s);
		free(data);
	}

	/* a roll that cannot open the next file: sticky */
	char dir[300], p2[400];
	snprintf(dir, sizeof(dir), "%s/gone", tmp_dir);
	mkdir(dir, 0700);
	snprintf(p2, sizeof(p2), "%s/s.warc", dir);
	spool_init(&s, 64);
	spool_set(&s, "GET / HTTP/1.1\r\n\r\n", 18);
	r = warc_open(&w, p2, 1, "t", err, sizeof(err));
	CHECK(r == 0, "open %s: %s", p2, err);
	if (r)
		return;
	CHECK(warc_write_request(w, "http://x/", "2026-01-01T00:00:00Z", NULL, &s, id) == 0, "first request");
	unlink(warc_filename(w));
	rmdir(dir);
	r = warc_write_request(w, "http://x/", "2026-01-01T00:00:00Z", NULL, &s, id);
	CHECK(r == -ENOENT && strstr(warc_error(w), "s-00001.warc"), "roll into a removed dir: %d %s", r,
	      warc_error(w));
	r = warc_write_metadata(w, "http://x/", "2026-01-01T00:00:00Z", NULL, "a: b\r\n", id);
	CHECK(r == -ENOENT, "sticky: %d", r);
	CHECK(warc_close(w) == -ENOENT, "close after a sticky error");
	CHECK(warc_close(NULL) == 0, "close NULL");
	spool_free(&s);
}

int main(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(tmp_dir, sizeof(tmp_dir), "%s/test_warc.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmp_dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_base32();
	test_spool();
	test_digests();
	test_records();
	test_roll_names();
	test_roll_sizes();
	test_errors();

	static const char *const leftovers[] = {"digests.warc", "digests.warc.gz", "rec.warc", "rec.warc.gz",
						"rec.gz", "rec", "args.warc", "efbig.warc", "efbig.warc.gz", "x.warc"};
	for (size_t i = 0; i < sizeof(leftovers) / sizeof(leftovers[0]); i++)
		unlink(tmp_path(leftovers[i]));
	if (rmdir(tmp_dir) != 0)
		fprintf(stderr, "note: %s left behind\n", tmp_dir);
	return test_report();
}

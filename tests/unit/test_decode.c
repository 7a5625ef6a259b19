/* test_decode.c - unit tests for daemon/decode.c: Content-Encoding names; round trips of gzip,
 * zlib-wrapped and raw deflate made here with zlib's deflate (sizes 0 to 1 MiB, several levels, fed
 * whole, in chunks, byte by byte, at every split point, with out_cap 1, 7 and 16384); concatenated gzip
 * members and trailing junk (the gzip magic split across calls); corrupt and truncated streams; a
 * 1 GiB-of-zeros gzip bomb stopped by the sink; misuse, sticky errors and decode_free; memory measured
 * with counting allocators (and allocation failures); and random and mutated inputs, where feeding in
 * random pieces must give exactly what feeding whole gives. */
#include "daemon/decode.h"
#include "tests/unit/test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KIB 1024u
#define MIB (1024u * 1024u)

/* ---- helpers: PRNG, data, compression ---- */

static size_t rng_below(uint64_t *s, size_t n)
{
	return n ? (size_t)(test_rng(s) % n) : 0;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

static const char *const words[] = {"the ", "fetch ", "daemon ", "<div class=\"x\">", "</div>\n",
				    "gzip ", "deflate ", "window ", "{\"url\": ", "0123456789", "\r\n"};

/* Mixed data: random bytes, words, copies of earlier data (near and far), runs. */
static uint8_t *make_mixed(size_t n, uint64_t seed)
{
	uint8_t *p = xmalloc(n);
	uint64_t s = seed | 1;
	size_t i = 0;
	while (i < n) {
		size_t left = n - i, k;
		switch (rng_below(&s, 4)) {
		case 0: /* random bytes */
			k = 1 + rng_below(&s, 200);
			for (size_t j = 0; j < k && j < left; j++)
				p[i + j] = (uint8_t)test_rng(&s);
			break;
		case 1: { /* a word */
			const char *w = words[rng_below(&s, sizeof words / sizeof words[0])];
			k = strlen(w);
			memcpy(p + i, w, k < left ? k : left);
			break;
		}
		case 2: /* a copy of earlier data, up to 40000 bytes back */
			k = 3 + rng_below(&s, 300);
			if (i == 0) {
				k = 1;
				p[i] = 'x';
				break;
			}
			size_t from = i - 1 - rng_below(&s, i < 40000 ? i : 40000);
			for (size_t j = 0; j < k && j < left; j++)
				p[i + j] = p[from + j]; /* may overlap: byte by byte */
			break;
		default: /* a run */
			k = 1 + rng_below(&s, 2000);
			memset(p + i, (int)rng_below(&s, 256), k < left ? k : left);
			break;
		}
		i += k < left ? k : left;
	}
	return p;
}

/* One compressed stream: windowBits 31 gzip, 15 zlib, -15 raw. */
static uint8_t *zcompress(int wbits, int level, const uint8_t *in, size_t n, size_t *outlen)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, level, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	size_t cap = deflateBound(&z, n) + 64;
	uint8_t *out = xmalloc(cap);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		abort();
	*outlen = z.total_out;
	deflateEnd(&z);
	return out;
}

/* a + b in a new buffer. */
static uint8_t *concat(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	uint8_t *p = xmalloc(an + bn);
	if (an)
		memcpy(p, a, an);
	if (bn)
		memcpy(p + an, b, bn);
	return p;
}

/* ---- the sink ---- */

struct sink_buf {
	uint8_t *p;
	size_t len, cap;       /* collected, up to keep_max */
	size_t keep_max;       /* 0: keep nothing */
	uint64_t total;        /* all bytes the sink was offered */
	size_t calls, max_piece, zero_pieces;
	uint64_t stop_after;   /* refuse the piece that takes total past this; 0: never */
};

static int collect(void *arg, const uint8_t *p, size_t n)
{
	struct sink_buf *s = arg;
	s->calls++;
	if (n > s->max_piece)
		s->max_piece = n;
	if (n == 0)
		s->zero_pieces++;
	if (s->len + n <= s->keep_max) {
		if (s->len + n > s->cap) {
			s->cap = (s->len + n) * 2;
			s->p = realloc(s->p, s->cap);
			if (!s->p)
				abort();
		}
		memcpy(s->p + s->len, p, n);
		s->len += n;
	}
	s->total += n;
	return s->stop_after && s->total > s->stop_after;
}

static void sink_init(struct sink_buf *s, size_t keep_max)
{
	memset(s, 0, sizeof *s);
	s->keep_max = keep_max;
}

static int refuse(void *arg, const uint8_t *p, size_t n)
{
	(*(size_t *)arg)++;
	return 1;
}

static int accept_all(void *arg, const uint8_t *p, size_t n)
{
	return 0;
}

/* ---- driving the decoder ---- */

enum plan_mode { PLAN_WHOLE, PLAN_CHUNK, PLAN_RANDOM, PLAN_CUT };

/* How the body is cut into decode_feed calls. */
struct plan {
	enum plan_mode mode;
	size_t a;     /* CHUNK: piece size; RANDOM: max piece; CUT: first piece length */
	uint64_t rng; /* RANDOM; also adds empty feeds now and then */
	size_t fed;
};

static size_t plan_next(struct plan *pl, size_t left)
{
	size_t k = left;
	switch (pl->mode) {
	case PLAN_WHOLE: break;
	case PLAN_CHUNK: k = pl->a; break;
	case PLAN_RANDOM:
		k = rng_below(&pl->rng, 8) == 0 ? 0 : 1 + rng_below(&pl->rng, pl->a);
		break;
	case PLAN_CUT: k = pl->fed < pl->a ? pl->a - pl->fed : left; break;
	}
	return k < left ? k : left;
}

struct result {
	int rc;          /* the first nonzero decode_feed result, else decode_finish's */
	int from_finish; /* 1 when rc came from decode_finish */
	uint64_t trailing, out_bytes, in_bytes;
	uint32_t members;
	int raw;
};

/* Decode in[0..n) with a fresh decoder, scratch of exactly out_cap bytes (so ASan sees overruns). */
static struct result run(enum decode_kind k, const uint8_t *in, size_t n, struct plan pl,
			 size_t out_cap, struct sink_buf *s)
{
	struct result r = {0};
	struct decoder d;
	uint8_t *out = xmalloc(out_cap);
	r.rc = decode_init(&d, k);
	size_t off = 0;
	while (!r.rc && off < n) {
		size_t len = plan_next(&pl, n - off);
		r.rc = decode_feed(&d, in + off, len, out, out_cap, collect, s);
		off += len;
		pl.fed += len;
	}
	if (!r.rc) {
		r.rc = decode_finish(&d);
		r.from_finish = 1;
	}
	r.trailing = d.trailing_bytes;
	r.out_bytes = d.out_bytes;
	r.in_bytes = d.in_bytes;
	r.members = d.members;
	r.raw = d.deflate_raw;
	decode_free(&d);
	free(out);
	return r;
}

static struct plan whole(void)
{
	return (struct plan){PLAN_WHOLE, 0, 0, 0};
}

static struct plan chunks(size_t a)
{
	return (struct plan){PLAN_CHUNK, a, 0, 0};
}

static struct plan random_pieces(size_t max, uint64_t seed)
{
	return (struct plan){PLAN_RANDOM, max, seed | 1, 0};
}

static struct plan cut_at(size_t a)
{
	return (struct plan){PLAN_CUT, a, 0, 0};
}

/* Decoding must succeed and give want[0..wn) with trailing bytes counted. */
static void expect_ok(const char *what, enum decode_kind k, const uint8_t *in, size_t n,
		      struct plan pl, size_t out_cap, const uint8_t *want, size_t wn,
		      uint64_t trailing)
{
	struct sink_buf s;
	sink_init(&s, wn + 1);
	struct result r = run(k, in, n, pl, out_cap, &s);
	CHECK(r.rc == DECODE_OK, "%s: rc %d (%s)", what, r.rc, decode_strerror(r.rc));
	CHECK(s.total == wn && s.len == wn && (wn == 0 || memcmp(s.p, want, wn) == 0),
	      "%s: output %llu bytes, want %zu%s", what, (unsigned long long)s.total, wn,
	      s.total == wn ? " (content differs)" : "");
	CHECK(r.out_bytes == s.total, "%s: out_bytes %llu", what, (unsigned long long)r.out_bytes);
	CHECK(s.max_piece <= out_cap && s.zero_pieces == 0, "%s: piece %zu > out_cap %zu or empty",
	      what, s.max_piece, out_cap);
	CHECK(r.trailing == trailing, "%s: trailing %llu, want %llu", what,
	      (unsigned long long)r.trailing, (unsigned long long)trailing);
	CHECK(r.in_bytes == n, "%s: in_bytes %llu", what, (unsigned long long)r.in_bytes);
	free(s.p);
}

/* Decoding must fail with rc (from a feed, or from finish when at_finish). */
static void expect_rc(const char *what, enum decode_kind k, const uint8_t *in, size_t n,
		      struct plan pl, size_t out_cap, int rc, int at_finish)
{
	struct sink_buf s;
	sink_init(&s, 0);
	struct result r = run(k, in, n, pl, out_cap, &s);
	CHECK(r.rc == rc && r.from_finish == at_finish, "%s: rc %d (%s) from %s, want %d (%s) from %s",
	      what, r.rc, decode_strerror(r.rc), r.from_finish ? "finish" : "feed", rc,
	      decode_strerror(rc), at_finish ? "finish" : "feed");
	free(s.p);
}

/* A gzip member header: deflate, no flags, no time, Unix. */
static const uint8_t gzip_head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};

/* ---- formats ---- */

struct fmt {
	const char *name;
	enum decode_kind kind;
	int wbits;
};

static const struct fmt fmts[] = {
	{"gzip", DECODE_GZIP, 31},
	{"zlib", DECODE_DEFLATE, 15},
	{"raw", DECODE_DEFLATE, -15},
};
#define NFMTS (sizeof fmts / sizeof fmts[0])

/* ---- Content-Encoding names ---- */

struct kind_case {
	const char *in;
	int want;
};

static const struct kind_case kind_cases[] = {
	{"", DECODE_IDENTITY},
	{"   ", DECODE_IDENTITY},
	{"\t", DECODE_IDENTITY},
	{"identity", DECODE_IDENTITY},
	{"IDENTITY", DECODE_IDENTITY},
	{" Identity\r\n", DECODE_IDENTITY},
	{"gzip", DECODE_GZIP},
	{"GZIP", DECODE_GZIP},
	{"GzIp", DECODE_GZIP},
	{"  gzip  ", DECODE_GZIP},
	{"\tgzip\t", DECODE_GZIP},
	{"gzip\r\n", DECODE_GZIP},
	{"x-gzip", DECODE_GZIP},
	{"X-GZIP", DECODE_GZIP},
	{" x-Gzip ", DECODE_GZIP},
	{"deflate", DECODE_DEFLATE},
	{"DEFLATE", DECODE_DEFLATE},
	{" Deflate\t", DECODE_DEFLATE},
	{"br", -1},
	{"zstd", -1},
	{"compress", -1},
	{"x-compress", -1},
	{"gzip, br", -1},
	{"gzip,gzip", -1},
	{"gzip, identity", -1},
	{"identity, gzip", -1},
	{"deflate, gzip", -1},
	{"gzip;q=1", -1},
	{"g zip", -1},
	{"gzi", -1},
	{"gzipp", -1},
	{"xgzip", -1},
	{"x-deflate", -1},
	{"\"gzip\"", -1},
	{"gzip\x0b", DECODE_GZIP},
	{"gzip\x01", -1},
	{"gz\xc3\xadp", -1},
	{",", -1},
	{"*", -1},
	{"chunked", -1},
};

static void test_kind_of(void)
{
	for (size_t i = 0; i < sizeof kind_cases / sizeof kind_cases[0]; i++) {
		const struct kind_case *c = &kind_cases[i];
		int got = decode_kind_of(c->in);
		CHECK(got == c->want, "decode_kind_of(\"%s\") = %d, want %d", c->in, got, c->want);
	}
	CHECK(decode_kind_of(NULL) == DECODE_IDENTITY, "NULL is identity");
	CHECK(strcmp(decode_kind_name(DECODE_IDENTITY), "identity") == 0, "name identity");
	CHECK(strcmp(decode_kind_name(DECODE_GZIP), "gzip") == 0, "name gzip");
	CHECK(strcmp(decode_kind_name(DECODE_DEFLATE), "deflate") == 0, "name deflate");
	CHECK(strcmp(decode_kind_name((enum decode_kind)7), "unknown") == 0, "name unknown");
	static const int rcs[] = {DECODE_OK, DECODE_E_CORRUPT, DECODE_E_TRUNCATED, DECODE_E_SINK,
				  DECODE_E_NOMEM, DECODE_E_USAGE};
	for (size_t i = 0; i < sizeof rcs / sizeof rcs[0]; i++) {
		const char *m = decode_strerror(rcs[i]);
		CHECK(m && *m && strcmp(m, decode_strerror(-99)) != 0, "strerror(%d) '%s'", rcs[i], m);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(m, decode_strerror(rcs[j])) != 0, "strerror %d == %d", rcs[i], rcs[j]);
	}
	CHECK(strcmp(decode_strerror(-99), "unknown decode error") == 0, "strerror unknown");
}

/* ---- round trips ---- */

struct rt_case {
	size_t size;
	int level;
	struct plan pl;
	size_t out_cap;
};

static void roundtrip(const struct fmt *f, const struct rt_case *c, const uint8_t *data)
{
	size_t zn;
	uint8_t *z = zcompress(f->wbits, c->level, data, c->size, &zn);
	char what[160];
	snprintf(what, sizeof what, "%s level %d size %zu plan %d/%zu out_cap %zu", f->name, c->level,
		 c->size, (int)c->pl.mode, c->pl.a, c->out_cap);
	expect_ok(what, f->kind, z, zn, c->pl, c->out_cap, data, c->size, 0);
	free(z);
}

static void test_roundtrips(void)
{
	static const size_t sizes[] = {0, 1, 100, 70000, MIB};
	static const int levels[] = {0, 1, 6, 9};
	uint8_t *data = make_mixed(MIB, 42);
	for (size_t fi = 0; fi < NFMTS; fi++)
		for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
			for (size_t li = 0; li < sizeof levels / sizeof levels[0]; li++) {
				size_t n = sizes[si];
				int lv = levels[li];
				const struct rt_case cases[] = {
					{n, lv, whole(), 16384},
					{n, lv, chunks(16384), 7},
					{n, lv, random_pieces(16384, n + (size_t)lv), 16384},
					{n, lv, chunks(1), n <= 70000 ? 1 : 16384},
					{n, lv, random_pieces(64, 7 * n + 1), n <= 70000 ? 7 : 4096},
				};
				for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
					roundtrip(&fmts[fi], &cases[ci], data);
			}
	free(data);
}

/* The zlib/raw choice is made from the first two bytes; check it was the right one. */
static void test_deflate_sniff(void)
{
	uint8_t *data = make_mixed(5000, 3);
	for (int wb = -15; wb <= 15; wb += 30)
		for (int lv = 0; lv <= 9; lv++) {
			size_t zn;
			uint8_t *z = zcompress(wb, lv, data, 5000, &zn);
			struct sink_buf s;
			sink_init(&s, 0);
			struct result r = run(DECODE_DEFLATE, z, zn, chunks(1), 100, &s);
			CHECK(r.rc == DECODE_OK && r.raw == (wb < 0) && s.total == 5000,
			      "wbits %d level %d: rc %d raw %d", wb, lv, r.rc, r.raw);
			free(z);
		}
	free(data);
	/* the smallest raw streams */
	expect_ok("raw empty fixed block", DECODE_DEFLATE, (const uint8_t *)"\x03\x00", 2, chunks(1), 1,
		  NULL, 0, 0);
	expect_ok("raw empty stored block", DECODE_DEFLATE, (const uint8_t *)"\x01\x00\x00\xff\xff", 5,
		  chunks(1), 1, NULL, 0, 0);
	expect_ok("raw stored 'hi' + junk", DECODE_DEFLATE,
		  (const uint8_t *)"\x01\x02\x00\xfd\xffhi\x78\x9c", 9, chunks(1), 1,
		  (const uint8_t *)"hi", 2, 2);
	expect_ok("zlib empty", DECODE_DEFLATE, (const uint8_t *)"\x78\x9c\x03\x00\x00\x00\x00\x01", 8,
		  whole(), 16, NULL, 0, 0);
	expect_rc("raw one byte", DECODE_DEFLATE, (const uint8_t *)"\x03", 1, whole(), 16,
		  DECODE_E_TRUNCATED, 1);
	expect_rc("zlib header only", DECODE_DEFLATE, (const uint8_t *)"\x78\x9c", 2, chunks(1), 16,
		  DECODE_E_TRUNCATED, 1);
	/* FDICT: a valid zlib header asking for a preset dictionary we cannot have */
	expect_rc("zlib FDICT", DECODE_DEFLATE, (const uint8_t *)"\x78\xbb\x00\x00\x00\x01\x03\x00", 8,
		  whole(), 16, DECODE_E_CORRUPT, 0);
	/* gzip bytes labelled deflate are not a zlib header: raw, and invalid as raw */
	expect_rc("gzip as deflate", DECODE_DEFLATE,
		  (const uint8_t *)"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x03\x00", 12, whole(), 16,
		  DECODE_E_CORRUPT, 0);
}

/* Every split point into two pieces, and every pair of cuts, for small inputs. */
static void test_split_points(void)
{
	static const char text[] = "Hello, hello, hello! fetchd decodes Content-Encoding: gzip and "
				   "deflate as the body streams in, one byte or sixteen KiB at a time.";
	size_t tn = sizeof text - 1;
	for (size_t fi = 0; fi < NFMTS; fi++) {
		size_t zn;
		uint8_t *z = zcompress(fmts[fi].wbits, 9, (const uint8_t *)text, tn, &zn);
		char what[96];
		for (size_t cut = 0; cut <= zn; cut++) {
			snprintf(what, sizeof what, "%s cut at %zu of %zu", fmts[fi].name, cut, zn);
			expect_ok(what, fmts[fi].kind, z, zn, cut_at(cut), 7, (const uint8_t *)text, tn,
				  0);
		}
		snprintf(what, sizeof what, "%s byte by byte", fmts[fi].name);
		expect_ok(what, fmts[fi].kind, z, zn, chunks(1), 1, (const uint8_t *)text, tn, 0);
		/* three pieces: every pair of cuts (checked through a two-level plan by hand) */
		for (size_t a = 1; a < zn; a++)
			for (size_t b = a; b < zn; b += 3) {
				struct decoder d;
				struct sink_buf s;
				uint8_t out[5];
				sink_init(&s, tn + 1);
				int rc = decode_init(&d, fmts[fi].kind);
				rc = rc ? rc : decode_feed(&d, z, a, out, sizeof out, collect, &s);
				rc = rc ? rc : decode_feed(&d, z + a, b - a, out, sizeof out, collect, &s);
				rc = rc ? rc : decode_feed(&d, z + b, zn - b, out, sizeof out, collect, &s);
				rc = rc ? rc : decode_finish(&d);
				CHECK(rc == 0 && s.len == tn && memcmp(s.p, text, tn) == 0,
				      "%s cuts %zu,%zu: rc %d len %zu", fmts[fi].name, a, b, rc, s.len);
				decode_free(&d);
				free(s.p);
			}
		free(z);
	}
}

/* ---- concatenated members and trailing junk ---- */

static void test_members(void)
{
	uint8_t *a = make_mixed(3000, 11), *b = make_mixed(70000, 12);
	size_t an, bn, en;
	uint8_t *za = zcompress(31, 6, a, 3000, &an), *zb = zcompress(31, 1, b, 70000, &bn);
	uint8_t *ze = zcompress(31, 9, (const uint8_t *)"", 0, &en);
	uint8_t *zab = concat(za, an, zb, bn);
	uint8_t *zabe = concat(zab, an + bn, ze, en);
	uint8_t *zabea = concat(zabe, an + bn + en, za, an);
	size_t zn = an + bn + en + an;
	uint8_t *ab = concat(a, 3000, b, 70000);
	uint8_t *aba = concat(ab, 73000, a, 3000);
	expect_ok("two members", DECODE_GZIP, zab, an + bn, whole(), 16384, ab, 73000, 0);
	expect_ok("four members whole", DECODE_GZIP, zabea, zn, whole(), 16384, aba, 76000, 0);
	expect_ok("four members bytewise", DECODE_GZIP, zabea, zn, chunks(1), 7, aba, 76000, 0);
	for (uint64_t seed = 1; seed <= 20; seed++)
		expect_ok("four members random", DECODE_GZIP, zabea, zn, random_pieces(300, seed), 1 + seed,
			  aba, 76000, 0);
	struct sink_buf s;
	sink_init(&s, 0);
	struct result r = run(DECODE_GZIP, zabea, zn, chunks(5), 99, &s);
	CHECK(r.rc == 0 && r.members == 4, "members %u rc %d", r.members, r.rc);
	/* every split point of two small members: the magic of the second split across calls */
	static const char t1[] = "first member\n", t2[] = "second member, longer than the first\n";
	size_t n1, n2;
	uint8_t *z1 = zcompress(31, 9, (const uint8_t *)t1, sizeof t1 - 1, &n1);
	uint8_t *z2 = zcompress(31, 0, (const uint8_t *)t2, sizeof t2 - 1, &n2);
	uint8_t *z12 = concat(z1, n1, z2, n2);
	uint8_t *t12 = concat((const uint8_t *)t1, sizeof t1 - 1, (const uint8_t *)t2, sizeof t2 - 1);
	for (size_t cut = 0; cut <= n1 + n2; cut++)
		expect_ok("two small members, split", DECODE_GZIP, z12, n1 + n2, cut_at(cut), 3, t12,
			  sizeof t1 + sizeof t2 - 2, 0);
	/* a second member that is truncated or corrupt */
	expect_rc("second member truncated", DECODE_GZIP, z12, n1 + n2 - 1, whole(), 64,
		  DECODE_E_TRUNCATED, 1);
	expect_rc("second member only magic", DECODE_GZIP, z12, n1 + 2, chunks(1), 64,
		  DECODE_E_TRUNCATED, 1);
	z12[n1 + 2] = 7; /* compression method */
	expect_rc("second member bad method", DECODE_GZIP, z12, n1 + n2, chunks(1), 64,
		  DECODE_E_CORRUPT, 0);
	free(z1), free(z2), free(z12), free(t12);
	free(a), free(b), free(za), free(zb), free(ze), free(zab), free(zabe), free(zabea), free(ab);
	free(aba);
}

struct junk_case {
	const char *name;
	const char *junk;
	size_t len;
};

static const struct junk_case junk_cases[] = {
	{"text", "junk\n", 5},
	{"lone 1f", "\x1f", 1},
	{"1f then other", "\x1f\x00" "abc", 5},
	{"1f 1f 8b", "\x1f\x1f\x8b", 3},
	{"8b", "\x8b\x1f\x8b", 3},
	{"zeros", "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16},
	{"newline", "\r\n", 2},
	{"zlib header", "\x78\x9c\x03\x00", 4},
};

static void test_trailing(void)
{
	uint8_t *data = make_mixed(20000, 5);
	for (size_t fi = 0; fi < NFMTS; fi++) {
		size_t zn;
		uint8_t *z = zcompress(fmts[fi].wbits, 6, data, 20000, &zn);
		for (size_t ji = 0; ji < sizeof junk_cases / sizeof junk_cases[0]; ji++) {
			const struct junk_case *j = &junk_cases[ji];
			uint8_t *zj = concat(z, zn, (const uint8_t *)j->junk, j->len);
			char what[96];
			snprintf(what, sizeof what, "%s + %s", fmts[fi].name, j->name);
			expect_ok(what, fmts[fi].kind, zj, zn + j->len, whole(), 16384, data, 20000, j->len);
			for (size_t cut = zn - 3; cut <= zn + j->len; cut++)
				expect_ok(what, fmts[fi].kind, zj, zn + j->len, cut_at(cut), 1000, data, 20000,
					  j->len);
			expect_ok(what, fmts[fi].kind, zj, zn + j->len, chunks(1), 1, data, 20000, j->len);
			free(zj);
		}
		/* a valid member after junk is junk too */
		uint8_t *zx = concat(z, zn, (const uint8_t *)"x", 1);
		uint8_t *zxz = concat(zx, zn + 1, z, zn);
		expect_ok("member after junk", fmts[fi].kind, zxz, 2 * zn + 1, chunks(100), 100, data, 20000,
			  zn + 1);
		free(zx), free(zxz), free(z);
	}
	free(data);
}

/* ---- corrupt and truncated ---- */

static void flip_expect(const char *what, const struct fmt *f, const uint8_t *z, size_t zn,
			size_t at, uint8_t xor_mask, int at_finish)
{
	uint8_t *c = concat(z, zn, NULL, 0);
	c[at] ^= xor_mask;
	expect_rc(what, f->kind, c, zn, whole(), 16384, DECODE_E_CORRUPT, at_finish);
	expect_rc(what, f->kind, c, zn, chunks(1), 7, DECODE_E_CORRUPT, at_finish);
	free(c);
}

static void test_corrupt(void)
{
	uint8_t *data = make_mixed(70000, 9);
	size_t gn, zn, rn;
	uint8_t *g = zcompress(31, 6, data, 70000, &gn);
	uint8_t *z = zcompress(15, 6, data, 70000, &zn);
	uint8_t *r = zcompress(-15, 6, data, 70000, &rn);
	const struct fmt *G = &fmts[0], *Z = &fmts[1], *R = &fmts[2];
	flip_expect("gzip magic 0", G, g, gn, 0, 0x01, 0);
	flip_expect("gzip magic 1", G, g, gn, 1, 0x80, 0);
	flip_expect("gzip method", G, g, gn, 2, 0x0f, 0);
	flip_expect("gzip reserved flag", G, g, gn, 3, 0x80, 0);
	flip_expect("gzip block type", G, g, gn, 10, (uint8_t)(~g[10] & 6), 0);
	flip_expect("gzip CRC", G, g, gn, gn - 8, 0x01, 0);
	flip_expect("gzip CRC high byte", G, g, gn, gn - 5, 0x80, 0);
	flip_expect("gzip ISIZE", G, g, gn, gn - 4, 0x01, 0);
	flip_expect("gzip ISIZE high byte", G, g, gn, gn - 1, 0x40, 0);
	flip_expect("zlib block type", Z, z, zn, 2, (uint8_t)(~z[2] & 6), 0);
	flip_expect("zlib Adler-32", Z, z, zn, zn - 1, 0x01, 0);
	flip_expect("zlib Adler-32 first", Z, z, zn, zn - 4, 0x10, 0);
	flip_expect("raw block type", R, r, rn, 0, (uint8_t)(~r[0] & 6), 0);
	/* the gzip FHCRC header CRC, checked by zlib */
	static const uint8_t hcrc[] = {0x1f, 0x8b, 8, 2, 0, 0, 0, 0, 0, 3, 0x12, 0x34, 3, 0,
				       0, 0, 0, 0, 0, 0, 0, 0};
	expect_rc("gzip bad header CRC", DECODE_GZIP, hcrc, sizeof hcrc, whole(), 64, DECODE_E_CORRUPT, 0);
	/* zlib-wrapped and raw data labelled gzip: strict */
	expect_rc("zlib as gzip", DECODE_GZIP, z, zn, whole(), 64, DECODE_E_CORRUPT, 0);
	expect_rc("raw as gzip", DECODE_GZIP, r, rn, whole(), 64, DECODE_E_CORRUPT, 0);
	expect_rc("text as gzip", DECODE_GZIP, (const uint8_t *)"<html>", 6, chunks(1), 64,
		  DECODE_E_CORRUPT, 0);
	/* flipped bits in the middle: gzip and zlib never end OK with wrong output (checksums); a flip
	 * breaks the stream (CORRUPT), rarely makes it look longer (TRUNCATED), or lands on bits the
	 * decoder ignores (padding after a stored block header: OK, same output) */
	const struct {
		const struct fmt *f;
		const uint8_t *z;
		size_t n;
	} streams[] = {{G, g, gn}, {Z, z, zn}};
	for (size_t si = 0; si < 2; si++) {
		int corrupt = 0, tries = 0;
		for (size_t at = 12; at + 12 < streams[si].n; at += 97) {
			uint8_t *c = concat(streams[si].z, streams[si].n, NULL, 0);
			c[at] ^= (uint8_t)(1u << (at % 8));
			struct sink_buf s;
			sink_init(&s, 70001);
			struct result res = run(streams[si].f->kind, c, streams[si].n, chunks(4096), 4096, &s);
			int same = s.len == 70000 && memcmp(s.p, data, 70000) == 0;
			CHECK(res.rc == DECODE_E_CORRUPT || res.rc == DECODE_E_TRUNCATED ||
				      (res.rc == DECODE_OK && same),
			      "%s flip at %zu: rc %d", streams[si].f->name, at, res.rc);
			free(s.p);
			corrupt += res.rc == DECODE_E_CORRUPT;
			tries++;
			free(c);
		}
		CHECK(corrupt * 10 >= tries * 9, "%s: only %d of %d flips CORRUPT", streams[si].f->name,
		      corrupt, tries);
	}
	free(data), free(g), free(z), free(r);
}

/* The detail names zlib's reason. */
static void test_detail(void)
{
	struct decoder d;
	uint8_t out[16];
	CHECK(decode_init(&d, DECODE_GZIP) == 0 && d.detail == NULL, "init gzip");
	int rc = decode_feed(&d, (const uint8_t *)"\x1f\x8b\x07\x00", 4, out, sizeof out, accept_all, NULL);
	CHECK(rc == DECODE_E_CORRUPT && d.detail && strstr(d.detail, "method"), "detail '%s'",
	      d.detail ? d.detail : "(null)");
	decode_free(&d);
	CHECK(decode_init(&d, DECODE_DEFLATE) == 0, "init deflate");
	rc = decode_feed(&d, (const uint8_t *)"\x78\xbb\0\0\0\1", 6, out, sizeof out, accept_all, NULL);
	CHECK(rc == DECODE_E_CORRUPT && d.detail && strstr(d.detail, "dictionary"), "FDICT detail '%s'",
	      d.detail ? d.detail : "(null)");
	decode_free(&d);
}

static void test_truncated(void)
{
	uint8_t *data = make_mixed(3000, 21);
	for (size_t fi = 0; fi < NFMTS; fi++) {
		size_t zn;
		uint8_t *z = zcompress(fmts[fi].wbits, 6, data, 3000, &zn);
		char what[64];
		for (size_t n = 1; n < zn; n++) {
			snprintf(what, sizeof what, "%s cut to %zu of %zu", fmts[fi].name, n, zn);
			expect_rc(what, fmts[fi].kind, z, n, whole(), 16384, DECODE_E_TRUNCATED, 1);
			if (n % 7 == 0 || n < 12 || n > zn - 10)
				expect_rc(what, fmts[fi].kind, z, n, chunks(1), 1, DECODE_E_TRUNCATED, 1);
		}
		free(z);
	}
	free(data);
	/* an empty body is complete, for every kind */
	for (int k = DECODE_IDENTITY; k <= DECODE_DEFLATE; k++) {
		expect_ok("empty body", (enum decode_kind)k, NULL, 0, whole(), 16, NULL, 0, 0);
		struct decoder d;
		uint8_t out[4];
		size_t calls = 0;
		CHECK(decode_init(&d, (enum decode_kind)k) == 0, "init %d", k);
		CHECK(decode_feed(&d, NULL, 0, out, sizeof out, refuse, &calls) == 0 && calls == 0,
		      "empty feed calls no sink");
		CHECK(decode_finish(&d) == DECODE_OK, "empty finish %d", k);
		decode_free(&d);
	}
}

/* ---- identity ---- */

static void test_identity(void)
{
	uint8_t *data = make_mixed(50000, 8);
	expect_ok("identity whole", DECODE_IDENTITY, data, 50000, whole(), 16384, data, 50000, 0);
	expect_ok("identity bytewise cap 7", DECODE_IDENTITY, data, 50000, chunks(1), 7, data, 50000, 0);
	expect_ok("identity random", DECODE_IDENTITY, data, 50000, random_pieces(20000, 5), 3, data,
		  50000, 0);
	/* identity pieces are views of the input, never more than out_cap */
	struct decoder d;
	struct sink_buf s;
	sink_init(&s, 0);
	decode_init(&d, DECODE_IDENTITY);
	CHECK(decode_feed(&d, data, 50000, NULL, 1000, collect, &s) == 0 && s.calls == 50 &&
		      s.max_piece == 1000,
	      "identity NULL out: calls %zu max %zu", s.calls, s.max_piece);
	s.stop_after = 50000 + 1500;
	CHECK(decode_feed(&d, data, 50000, NULL, 1000, collect, &s) == DECODE_E_SINK &&
		      s.total == 52000,
	      "identity sink stop at %llu", (unsigned long long)s.total);
	decode_free(&d);
	free(data);
}

/* ---- the bomb ---- */

/* Raw deflate of seg zeros (fed in 64 KiB pieces) ending in a full flush: byte-aligned, not final,
 * and referring to nothing before its start, so copies of it can follow each other. */
static uint8_t *zero_segment(size_t seg, size_t *outlen, uLong *crc)
{
	uint8_t *zeros = calloc(64 * KIB, 1);
	z_stream z;
	memset(&z, 0, sizeof z);
	if (!zeros || deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_RLE) != Z_OK)
		abort();
	size_t cap = deflateBound(&z, seg) + 64;
	uint8_t *out = xmalloc(cap);
	z.next_out = out;
	z.avail_out = (uInt)cap;
	*crc = crc32(0, Z_NULL, 0);
	for (size_t done = 0; done < seg; done += 64 * KIB) {
		z.next_in = zeros;
		z.avail_in = (uInt)(seg - done < 64 * KIB ? seg - done : 64 * KIB);
		*crc = crc32(*crc, zeros, z.avail_in);
		if (deflate(&z, Z_NO_FLUSH) != Z_OK || z.avail_in)
			abort();
	}
	if (deflate(&z, Z_FULL_FLUSH) != Z_OK || z.avail_out == 0)
		abort();
	*outlen = cap - z.avail_out;
	deflateEnd(&z);
	free(zeros);
	return out;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* seg * copies zeros as one gzip member: header, copies of one deflated segment, an empty final
 * block, CRC-32 and length. Never holds the zeros: 1 MiB x 1024 (1 GiB) is about 1 MB. */
static uint8_t *make_zero_bomb(size_t seg, size_t copies, size_t *outlen)
{
	size_t sn;
	uLong crc_seg, crc;
	uint8_t *s = zero_segment(seg, &sn, &crc_seg);
	size_t n = sizeof gzip_head + sn * copies + 2 + 8;
	uint8_t *p = xmalloc(n), *w = p;
	memcpy(w, gzip_head, sizeof gzip_head);
	w += sizeof gzip_head;
	crc = crc_seg;
	for (size_t i = 0; i < copies; i++, w += sn) {
		memcpy(w, s, sn);
		if (i)
			crc = crc32_combine(crc, crc_seg, (z_off_t)seg);
	}
	*w++ = 0x03; /* final fixed-Huffman block holding only end-of-block */
	*w++ = 0x00;
	put_le32(w, (uint32_t)crc);
	put_le32(w + 4, (uint32_t)(seg * copies));
	free(s);
	*outlen = n;
	return p;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bomb_run(const uint8_t *bomb, size_t bn, size_t out_cap, size_t piece)
{
	const uint64_t limit = 10ull * MIB;
	struct decoder d;
	struct sink_buf s;
	sink_init(&s, 0);
	s.stop_after = limit;
	uint8_t *out = xmalloc(out_cap);
	CHECK(decode_init(&d, DECODE_GZIP) == 0, "bomb init");
	double t0 = now_s();
	size_t off = 0;
	int rc = 0;
	while (rc == 0 && off < bn) {
		size_t k = bn - off < piece ? bn - off : piece;
		rc = decode_feed(&d, bomb + off, k, out, out_cap, collect, &s);
		off += k;
	}
	double dt = now_s() - t0;
	CHECK(rc == DECODE_E_SINK, "bomb out_cap %zu: rc %d", out_cap, rc);
	CHECK(s.total > limit && s.total <= limit + out_cap, "bomb out_cap %zu: delivered %llu",
	      out_cap, (unsigned long long)s.total);
	CHECK(off <= 32 * KIB, "bomb out_cap %zu: read %zu input bytes", out_cap, off);
	CHECK(dt < 10.0, "bomb out_cap %zu: %.2f s", out_cap, dt);
	CHECK(decode_feed(&d, bomb, 1, out, out_cap, collect, &s) == DECODE_E_SINK &&
		      decode_finish(&d) == DECODE_E_SINK,
	      "bomb: sink error sticky");
	decode_free(&d);
	free(out);
}

static void test_bomb(void)
{
	/* the construction, checked in full on a small one: 8 MiB of zeros */
	size_t bn;
	uint8_t *bomb = make_zero_bomb(MIB, 8, &bn);
	struct sink_buf s;
	sink_init(&s, 8 * MIB);
	struct result r = run(DECODE_GZIP, bomb, bn, chunks(16384), 16384, &s);
	int zeros = s.len == 8 * MIB;
	for (size_t i = 0; zeros && i < s.len; i++)
		zeros = s.p[i] == 0;
	CHECK(r.rc == DECODE_OK && zeros && r.trailing == 0, "small bomb: rc %d, %zu bytes", r.rc, s.len);
	free(s.p);
	free(bomb);
	bomb = make_zero_bomb(MIB, 1024, &bn);
	CHECK(bn > 900 * KIB && bn < 1200 * KIB, "bomb is %zu bytes", bn);
	bomb_run(bomb, bn, 16384, 16384);
	bomb_run(bomb, bn, 4096, 1);
	bomb_run(bomb, bn, 7, 16384);
	bomb_run(bomb, bn, 1, 1000);
	free(bomb);
}

/* A sink that refuses the first piece: one call, at most out_cap bytes. */
static void test_sink_stop(void)
{
	uint8_t *data = make_mixed(100000, 4);
	for (size_t fi = 0; fi < NFMTS; fi++) {
		size_t zn;
		uint8_t *z = zcompress(fmts[fi].wbits, 6, data, 100000, &zn);
		struct decoder d;
		uint8_t out[333];
		size_t calls = 0;
		decode_init(&d, fmts[fi].kind);
		int rc = decode_feed(&d, z, zn, out, sizeof out, refuse, &calls);
		CHECK(rc == DECODE_E_SINK && calls == 1 && d.out_bytes == sizeof out,
		      "%s: refuse first: rc %d calls %zu out %llu", fmts[fi].name, rc, calls,
		      (unsigned long long)d.out_bytes);
		CHECK(decode_feed(&d, z, zn, out, sizeof out, refuse, &calls) == DECODE_E_SINK && calls == 1,
		      "%s: sticky, no more sink calls", fmts[fi].name);
		decode_free(&d);
		free(z);
	}
	free(data);
}

/* ---- misuse, sticky errors, decode_free ---- */

static void test_misuse(void)
{
	struct decoder d;
	uint8_t out[16];
	size_t gn;
	uint8_t *g = zcompress(31, 6, (const uint8_t *)"abc", 3, &gn);
	CHECK(decode_init(&d, (enum decode_kind)9) == DECODE_E_USAGE, "bad kind");
	CHECK(decode_feed(&d, g, gn, out, sizeof out, accept_all, NULL) == DECODE_E_USAGE,
	      "feed after failed init");
	CHECK(decode_finish(&d) == DECODE_E_USAGE, "finish after failed init");
	decode_free(&d);
	decode_free(&d);
	memset(&d, 0, sizeof d);
	decode_free(&d); /* zeroed */
	CHECK(decode_feed(&d, g, gn, out, sizeof out, accept_all, NULL) == DECODE_E_USAGE, "zeroed");

	CHECK(decode_init(&d, DECODE_GZIP) == 0, "init");
	CHECK(decode_feed(&d, g, gn, out, 0, accept_all, NULL) == DECODE_E_USAGE, "out_cap 0");
	CHECK(decode_feed(&d, g, gn, NULL, 16, accept_all, NULL) == DECODE_E_USAGE, "out NULL");
	CHECK(decode_feed(&d, g, gn, out, sizeof out, NULL, NULL) == DECODE_E_USAGE, "sink NULL");
	CHECK(decode_feed(&d, NULL, 3, out, sizeof out, accept_all, NULL) == DECODE_E_USAGE, "in NULL");
	CHECK(d.in_bytes == 0, "misuse consumed nothing");
	CHECK(decode_feed(&d, g, gn, out, sizeof out, accept_all, NULL) == 0, "usage not sticky");
	CHECK(decode_finish(&d) == 0 && decode_finish(&d) == 0, "finish twice");
	decode_free(&d);
	decode_free(&d);
	CHECK(decode_feed(&d, g, gn, out, sizeof out, accept_all, NULL) == DECODE_E_USAGE,
	      "feed after free");

	/* a corrupt stream stays corrupt even when good bytes follow */
	CHECK(decode_init(&d, DECODE_GZIP) == 0, "init 2");
	CHECK(decode_feed(&d, (const uint8_t *)"PK\3\4", 4, out, sizeof out, accept_all, NULL) ==
		      DECODE_E_CORRUPT,
	      "zip is not gzip");
	CHECK(decode_feed(&d, g, gn, out, sizeof out, accept_all, NULL) == DECODE_E_CORRUPT, "sticky");
	CHECK(decode_finish(&d) == DECODE_E_CORRUPT, "sticky finish");
	decode_free(&d);
	/* re-init over a finished decoder's freed storage works */
	for (int i = 0; i < 3; i++) {
		CHECK(decode_init(&d, DECODE_GZIP) == 0, "reinit %d", i);
		CHECK(decode_feed(&d, g, gn, out, sizeof out, accept_all, NULL) == 0 &&
			      decode_finish(&d) == 0 && d.members == 1,
		      "reinit decode %d", i);
		decode_free(&d);
	}
	free(g);
}

/* ---- memory ---- */

#define MAX_BLOCKS 16

struct counter {
	size_t live, peak, calls, fail_at;
	void *blk[MAX_BLOCKS];
	size_t size[MAX_BLOCKS];
};

static voidpf count_alloc(voidpf opaque, uInt items, uInt size)
{
	struct counter *c = opaque;
	if (++c->calls == c->fail_at)
		return NULL;
	size_t n = (size_t)items * size;
	for (int i = 0; i < MAX_BLOCKS; i++)
		if (!c->blk[i]) {
			c->blk[i] = xmalloc(n);
			c->size[i] = n;
			c->live += n;
			if (c->live > c->peak)
				c->peak = c->live;
			return c->blk[i];
		}
	return NULL;
}

static void count_free(voidpf opaque, voidpf p)
{
	struct counter *c = opaque;
	for (int i = 0; i < MAX_BLOCKS; i++)
		if (c->blk[i] == p) {
			free(p);
			c->blk[i] = NULL;
			c->live -= c->size[i];
			return;
		}
	abort();
}

static void test_memory(void)
{
	uint8_t *data = make_mixed(MIB, 77);
	size_t zn;
	uint8_t *z = zcompress(31, 6, data, MIB, &zn);
	uint8_t *zz = concat(z, zn, z, zn);
	uint8_t out[16384];
	struct counter c = {0};
	struct decoder d;
	CHECK(decode_init_alloc(&d, DECODE_GZIP, count_alloc, count_free, &c) == 0, "init counted");
	size_t state = c.live;
	CHECK(state > 0 && state <= 8 * KIB, "inflate state %zu bytes", state);
	int rc = decode_feed(&d, zz, 2 * zn, out, sizeof out, accept_all, NULL);
	CHECK(rc == 0 && decode_finish(&d) == 0 && d.members == 2, "counted decode rc %d", rc);
	CHECK(c.peak == state + 32 * KIB && c.calls == 2, "peak %zu (state %zu), %zu allocations",
	      c.peak, state, c.calls);
	CHECK(c.peak <= 40 * KIB, "peak %zu > 40 KiB", c.peak);
	CHECK(sizeof(struct decoder) <= 192, "sizeof(struct decoder) %zu", sizeof(struct decoder));
	decode_free(&d);
	CHECK(c.live == 0, "all freed, %zu live", c.live);

	/* deflate (both kinds) the same; identity nothing */
	static const int wbs[] = {15, -15};
	for (int i = 0; i < 2; i++) {
		uint8_t *zd = zcompress(wbs[i], 6, data, MIB, &zn);
		memset(&c, 0, sizeof c);
		decode_init_alloc(&d, DECODE_DEFLATE, count_alloc, count_free, &c);
		rc = decode_feed(&d, zd, zn, out, sizeof out, accept_all, NULL);
		CHECK(rc == 0 && decode_finish(&d) == 0 && c.peak == state + 32 * KIB,
		      "deflate %d: rc %d peak %zu", wbs[i], rc, c.peak);
		decode_free(&d);
		CHECK(c.live == 0, "deflate freed");
		free(zd);
	}
	memset(&c, 0, sizeof c);
	decode_init_alloc(&d, DECODE_IDENTITY, count_alloc, count_free, &c);
	CHECK(decode_feed(&d, data, 1000, out, sizeof out, accept_all, NULL) == 0 && c.calls == 0,
	      "identity allocates nothing");
	decode_free(&d);

	/* allocation failures: the state (init), then the window (first output) */
	memset(&c, 0, sizeof c);
	c.fail_at = 1;
	CHECK(decode_init_alloc(&d, DECODE_GZIP, count_alloc, count_free, &c) == DECODE_E_NOMEM,
	      "state allocation fails");
	decode_free(&d);
	decode_free(&d);
	CHECK(c.live == 0, "nothing live after failed init");
	memset(&c, 0, sizeof c);
	c.fail_at = 2;
	CHECK(decode_init_alloc(&d, DECODE_GZIP, count_alloc, count_free, &c) == 0, "init ok");
	rc = decode_feed(&d, z, zn, out, sizeof out, accept_all, NULL);
	CHECK(rc == DECODE_E_NOMEM && decode_finish(&d) == DECODE_E_NOMEM, "window fails: rc %d", rc);
	decode_free(&d);
	CHECK(c.live == 0, "nothing live after NOMEM");
	free(data), free(z), free(zz);
}

/* ---- random and mutated inputs ---- */

/* Feeding whole and feeding in random pieces with a small out_cap must agree: same result, same
 * bytes out (the output is kept up to 256 KiB and the sink stops at 4 MiB), same trailing count. */
static void fuzz_one(enum decode_kind k, const uint8_t *in, size_t n, uint64_t seed)
{
	struct sink_buf a, b;
	sink_init(&a, 256 * KIB);
	sink_init(&b, 256 * KIB);
	a.stop_after = b.stop_after = 4 * MIB;
	uint64_t s = seed | 1;
	size_t cap = 1 + rng_below(&s, 64);
	struct result ra = run(k, in, n, whole(), 65536, &a);
	struct result rb = run(k, in, n, random_pieces(1 + rng_below(&s, 40), seed), cap, &b);
	CHECK(ra.rc == DECODE_OK || ra.rc == DECODE_E_CORRUPT || ra.rc == DECODE_E_TRUNCATED ||
		      ra.rc == DECODE_E_SINK,
	      "rc %d", ra.rc);
	CHECK(ra.rc == rb.rc, "kind %d seed %llu n %zu: whole rc %d, pieces rc %d", (int)k,
	      (unsigned long long)seed, n, ra.rc, rb.rc);
	if (ra.rc != DECODE_E_SINK)
		CHECK(a.total == b.total && a.len == b.len && (a.len == 0 || !memcmp(a.p, b.p, a.len)),
		      "kind %d seed %llu: output %llu vs %llu", (int)k, (unsigned long long)seed,
		      (unsigned long long)a.total, (unsigned long long)b.total);
	if (ra.rc == DECODE_OK)
		CHECK(ra.trailing == rb.trailing && ra.members == rb.members,
		      "kind %d seed %llu: trailing %llu vs %llu", (int)k, (unsigned long long)seed,
		      (unsigned long long)ra.trailing, (unsigned long long)rb.trailing);
	CHECK(b.max_piece <= cap && a.zero_pieces == 0 && b.zero_pieces == 0, "pieces");
	free(a.p), free(b.p);
}

static void test_random(void)
{
	uint64_t s = 0x5eed;
	uint8_t buf[700];
	for (int i = 0; i < 4000; i++) {
		size_t n = rng_below(&s, sizeof buf);
		for (size_t j = 0; j < n; j++)
			buf[j] = (uint8_t)test_rng(&s);
		int style = (int)rng_below(&s, 4);
		if (style == 1 && n >= 10)
			memcpy(buf, gzip_head, 10);
		if (style == 2 && n >= 2)
			buf[0] = 0x78, buf[1] = 0x9c;
		if (style == 3 && n >= 1)
			buf[0] = (uint8_t)((buf[0] & ~6u) | 2u); /* raw, fixed Huffman block */
		enum decode_kind k = style == 1 ? DECODE_GZIP : style ? DECODE_DEFLATE
								      : (enum decode_kind)rng_below(&s, 3);
		fuzz_one(k, buf, n, (uint64_t)i + 1);
	}
}

static void test_mutations(void)
{
	uint8_t *data = make_mixed(5000, 31);
	uint64_t s = 0xfeed;
	for (size_t fi = 0; fi < NFMTS; fi++) {
		size_t zn;
		uint8_t *z = zcompress(fmts[fi].wbits, 6, data, 5000, &zn);
		uint8_t *m = xmalloc(zn + 16);
		for (int i = 0; i < 700; i++) {
			memcpy(m, z, zn);
			size_t n = zn;
			int edits = 1 + (int)rng_below(&s, 3);
			for (int e = 0; e < edits; e++) {
				switch (rng_below(&s, 4)) {
				case 0: m[rng_below(&s, n)] ^= (uint8_t)(1u << rng_below(&s, 8)); break;
				case 1: m[rng_below(&s, n)] = (uint8_t)test_rng(&s); break;
				case 2: n = 1 + rng_below(&s, n); break;
				default: /* append: junk or a second copy's head */
					for (int j = 0; j < 4; j++)
						m[n++] = j < 2 && (i & 1) ? gzip_head[j] : (uint8_t)test_rng(&s);
					break;
				}
			}
			fuzz_one(fmts[fi].kind, m, n, s);
		}
		free(m), free(z);
	}
	free(data);
}

int main(void)
{
	test_kind_of();
	test_roundtrips();
	test_deflate_sniff();
	test_split_points();
	test_members();
	test_trailing();
	test_corrupt();
	test_detail();
	test_truncated();
	test_identity();
	test_sink_stop();
	test_misuse();
	test_memory();
	test_bomb();
	test_random();
	test_mutations();
	return test_report();
}

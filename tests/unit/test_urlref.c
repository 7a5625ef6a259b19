/* test_urlref.c - unit tests for daemon/urlref.c: the RFC 3986 5.4 examples, the WHATWG adjustments
 * (whitespace, backslashes, percent-encoding, "%2e" dot segments, schemes), userinfo and fragments,
 * output bounds, seeded random references, and the WHATWG URL test data (tests/corpus/
 * urltestdata.json: the records with an http/https base, read by a small JSON reader here since
 * urltestdata.txt keeps only records without a base). Every successful result must pass url_parse. */
#include "daemon/urlref.h"
#include "daemon/hex.h"
#include "daemon/url.h"
#include "tests/unit/test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OUT_MAX 8192

/* ---- the invariant, checked on every call ---- */

static int invariant_bad;

/* urlref_resolve on NUL-terminated strings, checking the result's invariants: a length that matches
 * strlen(out) and passes url_parse, or -1 with a reason and out = "". */
static int resolve(const char *base, const char *ref, size_t ref_len, char *out, size_t cap,
		   const char **why)
{
	*why = NULL;
	int n = urlref_resolve(base, strlen(base), ref, ref_len, out, cap, why);
	struct url u;
	const char *pwhy;
	if (n >= 0) {
		if ((size_t)n >= cap || strlen(out) != (size_t)n ||
		    url_parse(out, (size_t)n, 1, &u, &pwhy) != 0)
			invariant_bad++;
	} else if (n != -1 || !*why || !**why || (cap > 0 && out[0] != '\0')) {
		invariant_bad++;
	}
	return n;
}

/* ---- tables ---- */

struct ref_case {
	const char *base;
	const char *ref;
	const char *want; /* NULL: must fail with reason */
	const char *reason;
};

#define RFC_BASE "http://a/b/c/d;p?q"
#define UNSUP "unsupported scheme in Location"

/* RFC 3986 5.4.1 (normal) and 5.4.2 (abnormal), base "http://a/b/c/d;p?q". Differences from the RFC
 * text: "g:h" is refused (not http/https); "http:g" takes the RFC's backward-compatible reading,
 * as browsers do, since the strict "http:g" is not a fetchable URL. */
static const struct ref_case rfc_cases[] = {
	{RFC_BASE, "g:h", NULL, UNSUP},
	{RFC_BASE, "g", "http://a/b/c/g", NULL},
	{RFC_BASE, "./g", "http://a/b/c/g", NULL},
	{RFC_BASE, "g/", "http://a/b/c/g/", NULL},
	{RFC_BASE, "/g", "http://a/g", NULL},
	{RFC_BASE, "//g", "http://g", NULL},
	{RFC_BASE, "?y", "http://a/b/c/d;p?y", NULL},
	{RFC_BASE, "g?y", "http://a/b/c/g?y", NULL},
	{RFC_BASE, "#s", "http://a/b/c/d;p?q#s", NULL},
	{RFC_BASE, "g#s", "http://a/b/c/g#s", NULL},
	{RFC_BASE, "g?y#s", "http://a/b/c/g?y#s", NULL},
	{RFC_BASE, ";x", "http://a/b/c/;x", NULL},
	{RFC_BASE, "g;x", "http://a/b/c/g;x", NULL},
	{RFC_BASE, "g;x?y#s", "http://a/b/c/g;x?y#s", NULL},
	{RFC_BASE, "", "http://a/b/c/d;p?q", NULL},
	{RFC_BASE, ".", "http://a/b/c/", NULL},
	{RFC_BASE, "./", "http://a/b/c/", NULL},
	{RFC_BASE, "..", "http://a/b/", NULL},
	{RFC_BASE, "../", "http://a/b/", NULL},
	{RFC_BASE, "../g", "http://a/b/g", NULL},
	{RFC_BASE, "../..", "http://a/", NULL},
	{RFC_BASE, "../../", "http://a/", NULL},
	{RFC_BASE, "../../g", "http://a/g", NULL},
	/* 5.4.2 */
	{RFC_BASE, "../../../g", "http://a/g", NULL},
	{RFC_BASE, "../../../../g", "http://a/g", NULL},
	{RFC_BASE, "/./g", "http://a/g", NULL},
	{RFC_BASE, "/../g", "http://a/g", NULL},
	{RFC_BASE, "g.", "http://a/b/c/g.", NULL},
	{RFC_BASE, ".g", "http://a/b/c/.g", NULL},
	{RFC_BASE, "g..", "http://a/b/c/g..", NULL},
	{RFC_BASE, "..g", "http://a/b/c/..g", NULL},
	{RFC_BASE, "./../g", "http://a/b/g", NULL},
	{RFC_BASE, "./g/.", "http://a/b/c/g/", NULL},
	{RFC_BASE, "g/./h", "http://a/b/c/g/h", NULL},
	{RFC_BASE, "g/../h", "http://a/b/c/h", NULL},
	{RFC_BASE, "g;x=1/./y", "http://a/b/c/g;x=1/y", NULL},
	{RFC_BASE, "g;x=1/../y", "http://a/b/c/y", NULL},
	{RFC_BASE, "g?y/./x", "http://a/b/c/g?y/./x", NULL},
	{RFC_BASE, "g?y/../x", "http://a/b/c/g?y/../x", NULL},
	{RFC_BASE, "g#s/./x", "http://a/b/c/g#s/./x", NULL},
	{RFC_BASE, "g#s/../x", "http://a/b/c/g#s/../x", NULL},
	{RFC_BASE, "http:g", "http://a/b/c/g", NULL},
};

#define B RFC_BASE
#define UB "http://u:p@a/b"

/* The WHATWG adjustments and the rules of urlref.h. */
static const struct ref_case more_cases[] = {
	/* whitespace */
	{B, " \t/x \n", "http://a/x", NULL},
	{B, "/x\ty\r\nz", "http://a/xyz", NULL},
	{B, "\x01\x1f g \x1f", "http://a/b/c/g", NULL},
	{B, " ", "http://a/b/c/d;p?q", NULL},
	{B, "g h", "http://a/b/c/g%20h", NULL},
	{B, "hT\ttp://h/", "http://h/", NULL},
	{B, "/\n/h/p", "http://h/p", NULL},
	{B, ".\t.", "http://a/b/", NULL},
	{B, "%2\ne", "http://a/b/c/", NULL},
	/* percent-encoding */
	{B, "g\"<>`{}|^'", "http://a/b/c/g%22%3C%3E%60%7B%7D|^'", NULL},
	{B, "?a b\"<>`{}'|", "http://a/b/c/d;p?a%20b%22%3C%3E`{}%27|", NULL},
	{B, "#a b\"<>`{}'#", "http://a/b/c/d;p?q#a%20b%22%3C%3E%60{}'#", NULL},
	{B, "caf\xc3\xa9?\xe2\x82\xac#\xff", "http://a/b/c/caf%C3%A9?%E2%82%AC#%FF", NULL},
	{B, "\x7f\x01x", "http://a/b/c/%7F%01x", NULL},
	{B, "a%zz%", "http://a/b/c/a%zz%", NULL},
	{B, "%41%2F", "http://a/b/c/%41%2F", NULL},
	{B, "?x\x7f", "http://a/b/c/d;p?x%7F", NULL},
	/* backslashes */
	{B, "\\x\\y", "http://a/x/y", NULL},
	{B, "\\\\h\\p", "http://h/p", NULL},
	{B, "/\\h/p", "http://h/p", NULL},
	{B, "\\/h/p", "http://h/p", NULL},
	{B, "///h/p", "http://h/p", NULL},
	{B, "//h\\x", "http://h/x", NULL},
	{B, "?q\\x#f\\y", "http://a/b/c/d;p?q\\x#f\\y", NULL},
	/* dot segments, percent-encoded */
	{B, "%2e", "http://a/b/c/", NULL},
	{B, "%2E%2e", "http://a/b/", NULL},
	{B, ".%2E/g", "http://a/b/g", NULL},
	{B, "%2e./g", "http://a/b/g", NULL},
	{B, "g/%2e%2e/%2E%2E/h", "http://a/b/h", NULL},
	{B, "%2e%2", "http://a/b/c/%2e%2", NULL},
	{B, "..%2e", "http://a/b/c/..%2e", NULL},
	{B, "%252e", "http://a/b/c/%252e", NULL},
	{B, "...", "http://a/b/c/...", NULL},
	{B, "g//..", "http://a/b/c/g/", NULL},
	{B, "/a//b/../../c", "http://a/a/c", NULL},
	/* schemes */
	{B, "http:/p", "http://a/p", NULL},
	{B, "http:", "http://a/b/c/d;p?q", NULL},
	{B, "http:?x", "http://a/b/c/d;p?x", NULL},
	{B, "http:#f", "http://a/b/c/d;p?q#f", NULL},
	{B, "http:\\\\h\\p", "http://h/p", NULL},
	{B, "HTTP://H/P", "http://H/P", NULL},
	{B, "https:h", "https://h", NULL},
	{B, "https:/h/p", "https://h/p", NULL},
	{B, "https:\\h", "https://h", NULL},
	{B, "https:////h/p?q#f", "https://h/p?q#f", NULL},
	{B, "1a:b", "http://a/b/c/1a:b", NULL},
	{B, "./g:h", "http://a/b/c/g:h", NULL},
	{B, "g:h", NULL, UNSUP},
	{B, "javascript:alert(1)", NULL, UNSUP},
	{B, "JavaScript:x", NULL, UNSUP},
	{B, " java\tscript:x", NULL, UNSUP},
	{B, "ftp://h/", NULL, UNSUP},
	{B, "data:text/html,x", NULL, UNSUP},
	{B, "mailto:a@b", NULL, UNSUP},
	{B, "file:///etc/passwd", NULL, UNSUP},
	{B, "ws://h/", NULL, UNSUP},
	{B, "c:\\x", NULL, UNSUP},
	{B, "a+b.c-d:x", NULL, UNSUP},
	{B, "httpss://h/", NULL, UNSUP},
	{"https://s/x/y", "z", "https://s/x/z", NULL},
	{"https://s/x/y", "//h", "https://h", NULL},
	{"https://s/x/y", "http://h/", "http://h/", NULL},
	{"https://s/x/y", "https:g", "https://s/x/g", NULL},
	{"https://s/x/y", "http:g", "http://g", NULL},
	/* authorities */
	{B, "//h:8080", "http://h:8080", NULL},
	{B, "//[::1]:81/x", "http://[::1]:81/x", NULL},
	{B, "//h?x", "http://h?x", NULL},
	{B, "//h#f", "http://h#f", NULL},
	{B, "//h/../x/./y", "http://h/x/y", NULL},
	{B, "//u:p@h/x", "http://u:p@h/x", NULL},
	{B, "//u s\xc3\xa9`:p@q@h/", "http://u%20s%C3%A9%60:p@q@h/", NULL},
	{B, "http://", NULL, "empty host"},
	{B, "//", NULL, "empty host"},
	{B, "https:", NULL, "empty host"},
	{B, "//u@/x", NULL, "empty host"},
	{B, "//h h/", NULL, "control character or space in URL"},
	{B, "//\xc3\xa9.com/", NULL, "non-ASCII host (IDNA) not supported"},
	{B, "//%41/", NULL, "invalid character in host"},
	{B, "//h:99999/", NULL, "port out of range"},
	{B, "//h:x/", NULL, "invalid port"},
	{B, "//[::1/", NULL, "missing ']' after IPv6 address"},
	/* userinfo: the base's stays with the base's authority only */
	{UB, "c", "http://u:p@a/c", NULL},
	{UB, "?x", "http://u:p@a/b?x", NULL},
	{UB, "//other/x", "http://other/x", NULL},
	{UB, "//a/x", "http://a/x", NULL},
	{UB, "https://a/b", "https://a/b", NULL},
	/* fragments and odd bases */
	{"http://a/b#frag", "", "http://a/b", NULL},
	{"http://a/b#frag", "#g", "http://a/b#g", NULL},
	{"http://a/b#frag", "?x", "http://a/b?x", NULL},
	{"http://a/b#frag", "c", "http://a/c", NULL},
	{"http://a/b?#", "", "http://a/b?", NULL},
	{B, "?", "http://a/b/c/d;p?", NULL},
	{B, "#", "http://a/b/c/d;p?q#", NULL},
	{"http://a", "g", "http://a/g", NULL},
	{"http://a", "?x", "http://a?x", NULL},
	{"http://a", "", "http://a", NULL},
	{"http://a", "..", "http://a/", NULL},
	{"http://a?x", "#f", "http://a?x#f", NULL},
	{"http://a?x", "g", "http://a/g", NULL},
	{"http://a/b/./c/../d", "e", "http://a/b/e", NULL},
	{"http://a/b/./c/../d", "", "http://a/b/d", NULL},
	{"http://a/b\\c/d", "e", "http://a/b/c/e", NULL},
	{"http://a/caf\xc3\xa9/x?\xc3\xa9'", "?q", "http://a/caf%C3%A9/x?q", NULL},
	{"http://a/caf\xc3\xa9/x?\xc3\xa9'", "#f", "http://a/caf%C3%A9/x?%C3%A9%27#f", NULL},
	{"HTTP://U@A:81/x", "y", "http://U@A:81/y", NULL},
	{"http://[::1]:8080/a/b", "../c", "http://[::1]:8080/c", NULL},
	/* bad bases */
	{"ftp://a/", "x", NULL, "invalid base URL"},
	{"", "x", NULL, "invalid base URL"},
	{"http://a/ b", "x", NULL, "invalid base URL"},
	{"/relative", "x", NULL, "invalid base URL"},
};

static void check_case(const struct ref_case *c)
{
	char out[OUT_MAX];
	const char *why;
	int n = resolve(c->base, c->ref, strlen(c->ref), out, sizeof out, &why);
	if (c->want)
		CHECK(n == (int)strlen(c->want) && strcmp(out, c->want) == 0,
		      "<%s> + <%s>: got <%s> (%s), want <%s>", c->base, c->ref, out,
		      n < 0 ? why : "ok", c->want);
	else
		CHECK(n == -1 && why && strcmp(why, c->reason) == 0,
		      "<%s> + <%s>: got <%s> (%s), want failure '%s'", c->base, c->ref, out,
		      n < 0 ? why : "ok", c->reason);
}

static void test_tables(void)
{
	for (size_t i = 0; i < sizeof rfc_cases / sizeof rfc_cases[0]; i++)
		check_case(&rfc_cases[i]);
	for (size_t i = 0; i < sizeof more_cases / sizeof more_cases[0]; i++)
		check_case(&more_cases[i]);
}

/* ---- bytes the table cannot hold: NULs, not NUL-terminated input ---- */

static void test_raw_bytes(void)
{
	char out[64];
	const char *why;
	int n = resolve(B, "g\0h", 3, out, sizeof out, &why);
	CHECK(n >= 0 && strcmp(out, "http://a/b/c/g%00h") == 0, "NUL in path: %s", out);
	n = resolve(B, "\0g\0", 3, out, sizeof out, &why);
	CHECK(n >= 0 && strcmp(out, "http://a/b/c/g") == 0, "NULs stripped at the ends: %s", out);
	n = resolve(B, "//h\0x/", 6, out, sizeof out, &why);
	CHECK(n == -1, "NUL in host accepted: %s", out);
	n = resolve(B, "gXYZ", 1, out, sizeof out, &why);
	CHECK(n >= 0 && strcmp(out, "http://a/b/c/g") == 0, "ref_len respected: %s", out);
	n = urlref_resolve("http://a/bXYZ", 10, "c", 1, out, sizeof out, &why);
	CHECK(n >= 0 && strcmp(out, "http://a/c") == 0, "base_len respected: %s", out);
	n = urlref_resolve(B, strlen(B), NULL, 0, out, sizeof out, &why);
	CHECK(n >= 0 && strcmp(out, B) == 0, "NULL empty ref: %s", out);
}

/* ---- output bounds ---- */

static void test_bounds(void)
{
	char out[64];
	const char *why;
	const char *want = "http://a/b/c/g"; /* 14 bytes */
	CHECK(resolve(B, "g", 1, out, 15, &why) == 14 && strcmp(out, want) == 0, "exact fit");
	CHECK(resolve(B, "g", 1, out, 14, &why) == -1 && strcmp(why, "Location too long") == 0,
	      "one byte short: %s", out);
	CHECK(resolve(B, "g", 1, out, 1, &why) == -1 && out[0] == '\0', "cap 1");
	CHECK(urlref_resolve(B, strlen(B), "g", 1, NULL, 0, &why) == -1 &&
		      strcmp(why, "Location too long") == 0, "cap 0");
	/* "%20" expands: 3 bytes each */
	CHECK(resolve(B, "/\"\"\"", 4, out, 19, &why) == 18, "encoded fit: %s", out);
	CHECK(resolve(B, "/\"\"\"", 4, out, 18, &why) == -1, "encoded overflow: %s", out);
	/* Only the result must fit, however long the path was before dot-segment removal. */
	const char *longseg = "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/../x";
	CHECK(resolve(B, longseg, strlen(longseg), out, 11, &why) == 10 &&
		      strcmp(out, "http://a/x") == 0, "long segment removed: %s", out);
	CHECK(resolve(B, "..", 2, out, 12, &why) == 11 && strcmp(out, "http://a/b/") == 0,
	      "base segments removed: %s", out);
	CHECK(resolve(B, "?", 1, out, 18, &why) == 17 && strcmp(out, "http://a/b/c/d;p?") == 0,
	      "base path fit: %s", out);
	CHECK(resolve(B, "?", 1, out, 17, &why) == -1, "base path overflow: %s", out);
	CHECK(resolve(B, "#f", 2, out, 20, &why) == -1, "query overflow: %s", out);
	CHECK(resolve(B, "#f", 2, out, 21, &why) == 20, "fragment fit: %s", out);
	CHECK(resolve("http://u:p@host/", "x", 1, out, 10, &why) == -1, "authority overflow");

	/* Long references: 100000 path bytes resolve into a large buffer, and fail in a small one. */
	size_t len = 100000;
	char *ref = malloc(len), *big = malloc(len + 64);
	if (!ref || !big)
		abort();
	memset(ref, 'x', len);
	ref[0] = '/';
	int n = resolve(B, ref, len, big, len + 64, &why);
	CHECK(n == (int)len + 8, "long path: %d", n);
	CHECK(resolve(B, ref, len, big, 4096, &why) == -1 && strcmp(why, "Location too long") == 0,
	      "long path in 4096");
	memset(ref, '.', len); /* one segment of dots: not a dot segment */
	CHECK(resolve(B, ref, len, big, len + 64, &why) == (int)len + 13, "dots: %s", why ? why : "");
	for (size_t i = 0; i + 3 <= len; i += 3)
		memcpy(ref + i, "../", 3);
	CHECK(resolve(B, ref, len - len % 3, big, 64, &why) == 9 && strcmp(big, "http://a/") == 0,
	      "many ..: %s", big);
	free(ref);
	free(big);
}

/* ---- seeded random references ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static const char *const fuzz_bases[] = {
	"http://a/b/c/d;p?q",
	"http://u:p@h:81/a/b/c?q#f",
	"https://[::1]/",
	"http://a",
	"http://a?x",
	"http://x/%2e/\xc3\xa9/b\\c/..",
	"HTTPS://0x7f.1:443/x//y/",
};

static const char *const fuzz_pieces[] = {
	"http:", "https:", "HTTP:", "//", "/", "\\", "..", ".", "%2e", "%2E", "?", "#", "@", ":", "[",
	"]", "::1", "a", "b.c", "80", "%", "\t", "\n", " ", "\x7f", "\x80", "\xff", "javascript:",
	"x:", "g", "1.2.3.4", "0x7f", "%41", "'", "\"", "<", "`", "{", "\r", "u:p@", "65536",
};

static size_t random_ref(char *buf, size_t cap)
{
	size_t n = 0;
	int raw = rng() % 4 == 0;
	size_t count = rng() % 16;
	for (size_t k = 0; k < count; k++) {
		if (raw) {
			if (n < cap)
				buf[n++] = (char)(rng() & 0xff);
			continue;
		}
		const char *p = fuzz_pieces[rng() % (sizeof fuzz_pieces / sizeof fuzz_pieces[0])];
		size_t pl = strlen(p);
		if (n + pl > cap)
			break;
		memcpy(buf + n, p, pl);
		n += pl;
	}
	if (rng() % 8 == 0 && n < cap)
		buf[n++] = '\0';
	return n;
}

/* One random case: the result in a large buffer, then in tight ones. */
static int fuzz_one(const char *base, const char *bytes, size_t len)
{
	char *ref = malloc(len ? len : 1); /* exactly len bytes: ASan catches over-reads */
	char big[OUT_MAX], small[OUT_MAX];
	const char *why, *why2;
	if (!ref)
		abort();
	memcpy(ref, bytes, len);
	int bad = 0;
	int n = resolve(base, ref, len, big, sizeof big, &why);
	if (n >= 0) {
		size_t cap = (size_t)n + 1 - rng() % 2; /* exact fit, or one short */
		int m = resolve(base, ref, len, small, cap, &why2);
		if (cap == (size_t)n ? m != -1 || strcmp(why2, "Location too long") != 0
				     : m != n || strcmp(small, big) != 0)
			bad = 1;
	}
	free(ref);
	return bad;
}

static void test_fuzz(void)
{
	char buf[256];
	int bad = 0, ok = 0;
	const int runs = 20000;
	for (int i = 0; i < runs; i++) {
		const char *base = fuzz_bases[rng() % (sizeof fuzz_bases / sizeof fuzz_bases[0])];
		size_t len = random_ref(buf, sizeof buf);
		bad += fuzz_one(base, buf, len);
		char out[OUT_MAX];
		const char *why;
		ok += resolve(base, buf, len, out, sizeof out, &why) >= 0;
	}
	CHECK(bad == 0, "%d of %d random references misbehaved with a tight buffer", bad, runs);
	CHECK(ok > runs / 10 && ok < runs, "%d of %d random references resolved", ok, runs);
}

/* ---- WHATWG URL test data (JSON) ---- */

/* A reader for urltestdata.json: an array of strings (comments) and flat objects whose values are
 * strings, null or booleans. */
struct json_in {
	const char *p, *end;
	int bad;
};

struct whatwg_rec {
	char input[2048], base[2048], href[2048];
	size_t input_len;
	int has_base, has_href, failure;
};

static void jskip(struct json_in *j)
{
	while (j->p < j->end && strchr(" \t\r\n", *j->p))
		j->p++;
}

static int jtake(struct json_in *j, char c)
{
	jskip(j);
	if (j->p < j->end && *j->p == c) {
		j->p++;
		return 1;
	}
	return 0;
}

static int jword(struct json_in *j, const char *w)
{
	size_t n = strlen(w);
	jskip(j);
	if ((size_t)(j->end - j->p) >= n && memcmp(j->p, w, n) == 0) {
		j->p += n;
		return 1;
	}
	return 0;
}

static int jhex4(struct json_in *j, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++, j->p++) {
		int d = j->p < j->end ? hex_value(*j->p) : -1;
		if (d < 0)
			return -1;
		*v = *v * 16 + (unsigned)d;
	}
	return 0;
}

static void utf8_put(char *out, size_t cap, size_t *o, unsigned cp)
{
	unsigned char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | cp >> 6);
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | cp >> 12);
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | cp >> 18);
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	for (size_t i = 0; i < n; i++)
		if (*o + 1 < cap)
			out[(*o)++] = (char)b[i];
}

/* \uXXXX (after the 'u'), with surrogate pairs; a lone surrogate becomes U+FFFD, as the conversion
 * to a USVString before URL parsing does. */
static unsigned junicode(struct json_in *j)
{
	unsigned cp, lo;
	if (jhex4(j, &cp) != 0) {
		j->bad = 1;
		return 0xfffd;
	}
	if (cp < 0xd800 || cp > 0xdfff)
		return cp;
	if (cp <= 0xdbff && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
		const char *save = j->p;
		j->p += 2;
		if (jhex4(j, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff)
			return 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		j->p = save;
	}
	return 0xfffd;
}

/* A string into out (NUL-terminated, truncated to cap); returns its length, -1 if not a string. */
static long jstring(struct json_in *j, char *out, size_t cap)
{
	size_t o = 0;
	if (!jtake(j, '"'))
		return -1;
	while (j->p < j->end && *j->p != '"') {
		char c = *j->p++;
		if (c != '\\') {
			if (o + 1 < cap)
				out[o++] = c;
			continue;
		}
		if (j->p >= j->end)
			break;
		c = *j->p++;
		const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
		const char *k = strchr(from, c);
		if (c == 'u')
			utf8_put(out, cap, &o, junicode(j));
		else if (k && c && o + 1 < cap)
			out[o++] = to[k - from];
		else if (!k || !c)
			j->bad = 1;
	}
	if (!jtake(j, '"'))
		j->bad = 1;
	out[o] = '\0';
	return (long)o;
}

static void jfield(struct json_in *j, const char *key, struct whatwg_rec *r)
{
	static char scratch[4096];
	if (jword(j, "null")) {
		return;
	} else if (jword(j, "true")) {
		r->failure |= strcmp(key, "failure") == 0;
		return;
	} else if (jword(j, "false")) {
		return;
	}
	char *dst = scratch;
	size_t cap = sizeof scratch;
	if (strcmp(key, "input") == 0 || strcmp(key, "base") == 0 || strcmp(key, "href") == 0) {
		dst = key[0] == 'i' ? r->input : key[0] == 'b' ? r->base : r->href;
		cap = sizeof r->input;
	}
	long n = jstring(j, dst, cap);
	if (n < 0)
		j->bad = 1;
	if (key[0] == 'i' && dst == r->input)
		r->input_len = (size_t)(n < 0 ? 0 : n);
	r->has_base |= dst == r->base;
	r->has_href |= dst == r->href;
}

/* The next object of the array into r; returns 1, or 0 at the end (or on malformed input). */
static int jnext(struct json_in *j, struct whatwg_rec *r, int *first)
{
	char key[64];
	for (;;) {
		if (jtake(j, ']') || j->bad)
			return 0;
		if (!*first && !jtake(j, ','))
			return j->bad = 1, 0;
		*first = 0;
		if (!jtake(j, '{')) {
			if (jstring(j, key, sizeof key) < 0)
				return j->bad = 1, 0;
			continue; /* a comment string */
		}
		memset(r, 0, sizeof *r);
		int more = !jtake(j, '}');
		while (more && !j->bad) {
			if (jstring(j, key, sizeof key) < 0 || !jtake(j, ':'))
				return j->bad = 1, 0;
			jfield(j, key, r);
			more = jtake(j, ',');
			if (!more && !jtake(j, '}'))
				j->bad = 1;
		}
		return !j->bad;
	}
}

/* ---- comparing with WHATWG ---- */

enum wcat {
	W_EXACT,        /* our href is WHATWG's, byte for byte */
	W_EQUIVALENT,   /* differs only as the W_DIFF_* kinds below say */
	W_BOTH_REJECT,  /* WHATWG fails, we fail */
	W_NOT_HTTP,     /* WHATWG's result is not http(s) (e.g. "mailto:"): we refuse the scheme */
	W_HREF_STRICT,  /* WHATWG's href is rejected by url_parse (stricter rules): we fail */
	W_HOST_PCT,     /* we fail: percent-encoded host (WHATWG decodes; url_parse does not) */
	W_HOST_IDNA,    /* we fail: non-ASCII host (WHATWG applies IDNA; url_parse does not) */
	W_MISMATCH,     /* anything else */
	W_WE_ACCEPT,    /* WHATWG fails, we give a URL */
	W_COUNT
};

static const char *const wcat_names[W_COUNT] = {
	"exact: same href",
	"equivalent: same URL after the differences below",
	"agree: both reject",
	"agree: WHATWG's result is not http(s), we refuse the scheme",
	"agree: WHATWG's href is rejected by url_parse (port 0), we fail",
	"stricter: percent-encoded host (url_parse does not decode)",
	"stricter: non-ASCII host (url_parse does no IDNA)",
	"MISMATCH",
	"ACCEPTED WHERE WHATWG REJECTS",
};

enum wdiff {
	D_HOST,      /* host written differently, same host after url_parse (case, IPv4/IPv6 forms) */
	D_PORT,      /* port written differently (":80" default kept, ":" empty, leading zeros) */
	D_EMPTY_PATH,/* our empty path, WHATWG's "/" (RFC 3986 keeps it empty; same request target) */
	D_USERINFO,  /* WHATWG drops an empty password or '@', or encodes more userinfo bytes */
	D_COUNT
};

static const char *const wdiff_names[D_COUNT] = {
	"host spelling (case, IPv4/IPv6 forms; url_parse normalises)",
	"port spelling (default port kept, empty port, leading zeros)",
	"empty path kept (RFC 3986) where WHATWG writes \"/\"",
	"userinfo spelling (empty password/'@' kept, fewer bytes encoded)",
};

static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		int hi = i + 2 < n ? hex_value(s[i + 1]) : -1, lo = i + 2 < n ? hex_value(s[i + 2]) : -1;
		if (s[i] == '%' && hi >= 0 && lo >= 0) {
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return (int)o;
}

/* Userinfo as WHATWG would write it: decoded, without a trailing ':' (empty password). */
static void norm_userinfo(const char *s, const struct url *u, char *out, size_t cap)
{
	size_t n = u->userinfo_len;
	if (n > 0 && s[u->userinfo_off + n - 1] == ':')
		n--;
	pct_decode(s + u->userinfo_off, n, out, cap);
}

/* Path, query and fragment, with "/" for an empty path. */
static void rest_of(const char *s, const struct url *u, char *out, size_t cap, int *empty_path)
{
	const char *r = s + u->target_off;
	*empty_path = r[0] != '/';
	snprintf(out, cap, "%s%s", *empty_path ? "/" : "", r);
}

/* The spellings of host and port in s (parsed into u): [*h, *h + *hl) and [*p, *p + *pl) (port
 * without ':'; *p 0 when there is no ':'). */
static void host_port_text(const char *s, const struct url *u, size_t *h, size_t *hl, size_t *p,
			   size_t *pl)
{
	size_t a = u->userinfo_off ? u->userinfo_off + u->userinfo_len + 1
				   : (size_t)(strstr(s, "://") - s) + 3;
	size_t end = u->target_off, from = a;
	const char *close = s[a] == '[' ? memchr(s + a, ']', end - a) : NULL;
	if (close)
		from = (size_t)(close - s);
	const char *colon = memchr(s + from, ':', end - from);
	*h = a;
	*hl = (colon ? (size_t)(colon - s) : end) - a;
	*p = colon ? (size_t)(colon - s) + 1 : 0;
	*pl = colon ? end - *p : 0;
}

static int same_text(const char *a, size_t al, const char *b, size_t bl)
{
	return al == bl && memcmp(a, b, al) == 0;
}

/* Sets one bit per enum wdiff; returns 0 when the two URLs are the same up to those, else -1. */
static int compare_urls(const char *ours, const char *theirs, unsigned *diffs)
{
	struct url a, b;
	const char *why;
	static char ra[4096], rb[4096], ua[1024], ub[1024];
	int ea, eb;
	*diffs = 0;
	if (url_parse(ours, strlen(ours), 1, &a, &why) ||
	    url_parse(theirs, strlen(theirs), 1, &b, &why))
		return -1;
	if (a.scheme != b.scheme || a.port != b.port || a.host_kind != b.host_kind ||
	    strcmp(a.host, b.host) != 0)
		return -1;
	rest_of(ours, &a, ra, sizeof ra, &ea);
	rest_of(theirs, &b, rb, sizeof rb, &eb);
	norm_userinfo(ours, &a, ua, sizeof ua);
	norm_userinfo(theirs, &b, ub, sizeof ub);
	if (strcmp(ra, rb) != 0 || strcmp(ua, ub) != 0 || eb)
		return -1;
	size_t ha, hla, pa, pla, hb, hlb, pb, plb;
	host_port_text(ours, &a, &ha, &hla, &pa, &pla);
	host_port_text(theirs, &b, &hb, &hlb, &pb, &plb);
	if (!same_text(ours + ha, hla, theirs + hb, hlb))
		*diffs |= 1u << D_HOST;
	if ((pa != 0) != (pb != 0) || !same_text(ours + pa, pla, theirs + pb, plb))
		*diffs |= 1u << D_PORT;
	if (ea)
		*diffs |= 1u << D_EMPTY_PATH;
	if ((a.userinfo_off != 0) != (b.userinfo_off != 0) ||
	    !same_text(ours + a.userinfo_off, a.userinfo_len, theirs + b.userinfo_off,
		       b.userinfo_len))
		*diffs |= 1u << D_USERINFO;
	return 0;
}

/* The host region of a reference: after "//" (or a scheme's ':') and the last '@', up to a slash, '?'
 * or '#'. Found independently of urlref.c, to confirm a host-related failure. */
static void ref_host(const char *s, char *out, size_t cap)
{
	const char *p = strstr(s, "//");
	if (!p)
		p = strstr(s, "\\\\");
	if (!p && (p = strchr(s, ':')))
		p -= 1;
	if (!p) {
		out[0] = '\0';
		return;
	}
	p += 2;
	size_t n = strcspn(p, "/\\?#");
	const char *at = NULL;
	for (size_t i = 0; i < n; i++)
		if (p[i] == '@')
			at = p + i;
	if (at) {
		n -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	snprintf(out, cap, "%.*s", (int)n, p);
}

static enum wcat classify_reject(const struct whatwg_rec *r, const char *why)
{
	char host[2048];
	ref_host(r->input, host, sizeof host);
	if (strcmp(why, "invalid character in host") == 0 && strchr(host, '%'))
		return W_HOST_PCT;
	if (strcmp(why, "non-ASCII host (IDNA) not supported") == 0)
		for (const char *p = host; *p; p++)
			if ((unsigned char)*p >= 0x80)
				return W_HOST_IDNA;
	return W_MISMATCH;
}

static int is_http_url(const char *s)
{
	return strncasecmp(s, "http:", 5) == 0 || strncasecmp(s, "https:", 6) == 0;
}

static enum wcat classify(const struct whatwg_rec *r, unsigned *diffs)
{
	static char out[OUT_MAX];
	const char *why;
	struct url u;
	*diffs = 0;
	int n = resolve(r->base, r->input, r->input_len, out, sizeof out, &why);
	if (r->failure)
		return n < 0 ? W_BOTH_REJECT : W_WE_ACCEPT;
	if (!is_http_url(r->href))
		return n < 0 && strcmp(why, UNSUP) == 0 ? W_NOT_HTTP : W_MISMATCH;
	const char *href_why;
	if (url_parse(r->href, strlen(r->href), 1, &u, &href_why) != 0)
		return n < 0 ? W_HREF_STRICT : W_MISMATCH;
	if (n < 0)
		return classify_reject(r, why);
	if (strcmp(out, r->href) == 0)
		return W_EXACT;
	return compare_urls(out, r->href, diffs) == 0 ? W_EQUIVALENT : W_MISMATCH;
}

static char *read_corpus(size_t *len)
{
	const char *dir = getenv("FETCHD_CORPUS_DIR");
	char path[1024];
	snprintf(path, sizeof path, "%s/urltestdata.json", dir && *dir ? dir : "tests/corpus");
	FILE *f = fopen(path, "rb");
	CHECK(f != NULL, "cannot open %s (run from the repo root or set FETCHD_CORPUS_DIR)", path);
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t cap = 0, n = 0, got;
	do {
		if (n == cap && !(buf = realloc(buf, cap = cap * 2 + 65536)))
			abort();
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	*len = n;
	return buf;
}

static void report_whatwg(const int *count, const int *dcount, int selected)
{
	printf("WHATWG corpus: %d records with an http(s) base\n", selected);
	for (int c = 0; c < W_COUNT; c++)
		printf("  %4d  %s\n", count[c], wcat_names[c]);
	for (int d = 0; d < D_COUNT; d++)
		printf("        %4d  of them: %s\n", dcount[d], wdiff_names[d]);
}

static void test_whatwg(void)
{
	size_t len;
	char *text = read_corpus(&len);
	if (!text)
		return;
	static struct whatwg_rec r;
	struct json_in j = {text, text + len, 0};
	int first = 1, selected = 0, count[W_COUNT] = {0}, dcount[D_COUNT] = {0};
	CHECK(jtake(&j, '['), "corpus is not a JSON array");
	while (jnext(&j, &r, &first)) {
		if (!r.has_base || !is_http_url(r.base) || (!r.failure && !r.has_href))
			continue;
		selected++;
		unsigned diffs;
		enum wcat c = classify(&r, &diffs);
		count[c]++;
		for (int d = 0; d < D_COUNT; d++)
			dcount[d] += (diffs >> d) & 1;
		if (c == W_MISMATCH || c == W_WE_ACCEPT)
			fprintf(stderr, "whatwg %s: <%s> + <%s> -> want <%s>\n", wcat_names[c], r.base,
				r.input, r.failure ? "failure" : r.href);
	}
	CHECK(!j.bad, "malformed corpus JSON near offset %ld", (long)(j.p - text));
	free(text);
	CHECK(selected >= 150, "only %d records with an http(s) base", selected);
	CHECK(count[W_MISMATCH] == 0, "%d mismatches", count[W_MISMATCH]);
	CHECK(count[W_WE_ACCEPT] == 0, "%d accepted that WHATWG rejects", count[W_WE_ACCEPT]);
	CHECK(count[W_EXACT] >= 60, "only %d exact agreements", count[W_EXACT]);
	report_whatwg(count, dcount, selected);
}

int main(void)
{
	test_tables();
	test_raw_bytes();
	test_bounds();
	test_fuzz();
	test_whatwg();
	CHECK(invariant_bad == 0, "%d results broke the invariant (url_parse, length, reason)",
	      invariant_bad);
	return test_report();
}

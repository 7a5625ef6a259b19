/* test_url.c - unit tests for daemon/url.c: table-driven accepted and rejected forms (spans, host
 * normalisation, ports, IPv4/IPv6), the Host header, long inputs, prefix and mutation fuzzing, and
 * the WHATWG URL test data (tests/corpus/urltestdata.txt, made by tests/corpus/url_to_txt.py),
 * where every record must either agree with WHATWG or be rejected by one of our stricter rules. */
#include "daemon/url.h"
#include "daemon/hex.h"
#include "tests/unit/test.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- table of accepted URLs ---- */

struct ok_case {
	const char *in;
	int https;           /* allow_https */
	const char *host;
	int kind;            /* enum url_host_kind */
	unsigned port;
	int port_explicit;
	const char *target;  /* the span as sent */
	const char *userinfo;
};

#define N URL_HOST_NAME
#define V4 URL_HOST_IPV4
#define V6 URL_HOST_IPV6

static const struct ok_case ok_cases[] = {
	{"http://example.com", 0, "example.com", N, 80, 0, "", ""},
	{"http://example.com/", 0, "example.com", N, 80, 0, "/", ""},
	{"HTTP://EXAMPLE.COM/A/B", 0, "example.com", N, 80, 0, "/A/B", ""},
	{"hTtPs://Example.Com/x", 1, "example.com", N, 443, 0, "/x", ""},
	{"http://example.com:8080/x?y=1", 0, "example.com", N, 8080, 1, "/x?y=1", ""},
	{"http://example.com:/x", 0, "example.com", N, 80, 0, "/x", ""},
	{"http://a:", 0, "a", N, 80, 0, "", ""},
	{"http://example.com:80/", 0, "example.com", N, 80, 1, "/", ""},
	{"https://example.com:443/", 1, "example.com", N, 443, 1, "/", ""},
	{"https://example.com:80/", 1, "example.com", N, 80, 1, "/", ""},
	{"http://example.com:65535/", 0, "example.com", N, 65535, 1, "/", ""},
	{"http://example.com:1/", 0, "example.com", N, 1, 1, "/", ""},
	{"http://example.com:00000000000000000081/", 0, "example.com", N, 81, 1, "/", ""},
	{"http://a?x", 0, "a", N, 80, 0, "?x", ""},
	{"http://a:81?x=1&y", 0, "a", N, 81, 1, "?x=1&y", ""},
	{"http://a?x#f", 0, "a", N, 80, 0, "?x", ""},
	{"http://a/p?q#frag", 0, "a", N, 80, 0, "/p?q", ""},
	{"http://a/p?q#frag?#/x", 0, "a", N, 80, 0, "/p?q", ""},
	{"http://a#frag", 0, "a", N, 80, 0, "", ""},
	{"http://a/#", 0, "a", N, 80, 0, "/", ""},
	{"http://a/?", 0, "a", N, 80, 0, "/?", ""},
	{"http://a//x//", 0, "a", N, 80, 0, "//x//", ""},
	{"http://a/./../b/%2e%2E/", 0, "a", N, 80, 0, "/./../b/%2e%2E/", ""},
	{"http://a/p%20q%zz%", 0, "a", N, 80, 0, "/p%20q%zz%", ""},
	{"http://a/caf\xc3\xa9?q=\xe2\x82\xac", 0, "a", N, 80, 0, "/caf\xc3\xa9?q=\xe2\x82\xac", ""},
	{"http://a/b\\c?d\\e", 0, "a", N, 80, 0, "/b\\c?d\\e", ""},
	{"http://a/\"<>`{}|^'", 0, "a", N, 80, 0, "/\"<>`{}|^'", ""},
	{"http://a/b@c:d", 0, "a", N, 80, 0, "/b@c:d", ""},
	{"http://a?b@c", 0, "a", N, 80, 0, "?b@c", ""},
	{"http://user:pass@host/", 0, "host", N, 80, 0, "/", "user:pass"},
	{"http://@host/", 0, "host", N, 80, 0, "/", ""},
	{"http://:@host/", 0, "host", N, 80, 0, "/", ":"},
	{"http://a@b@host:99/", 0, "host", N, 99, 1, "/", "a@b"},
	{"http://u%40x:p%3A@host/", 0, "host", N, 80, 0, "/", "u%40x:p%3A"},
	{"http://\xc3\xa9@host/", 0, "host", N, 80, 0, "/", "\xc3\xa9"},
	{"http://u:[x]@host/", 0, "host", N, 80, 0, "/", "u:[x]"},
	{"http://host./", 0, "host.", N, 80, 0, "/", ""},
	{"http://My_Host-1.Example/", 0, "my_host-1.example", N, 80, 0, "/", ""},
	{"http://-a-.b_/", 0, "-a-.b_", N, 80, 0, "/", ""},
	{"http://localhost:3000", 0, "localhost", N, 3000, 1, "", ""},
	{"http://0x7f.0.0.0x7g/", 0, "0x7f.0.0.0x7g", N, 80, 0, "/", ""},
	{"http://10.0.0.XN--abc/", 0, "10.0.0.xn--abc", N, 80, 0, "/", ""},
	{"http://1.2.3.a1/", 0, "1.2.3.a1", N, 80, 0, "/", ""},
	{"http://1.2.3.0b1/", 0, "1.2.3.0b1", N, 80, 0, "/", ""},
	/* IPv4, WHATWG forms */
	{"http://127.0.0.1/", 0, "127.0.0.1", V4, 80, 0, "/", ""},
	{"http://127.1/", 0, "127.0.0.1", V4, 80, 0, "/", ""},
	{"http://0x7f.1/", 0, "127.0.0.1", V4, 80, 0, "/", ""},
	{"http://0X7F.1/", 0, "127.0.0.1", V4, 80, 0, "/", ""},
	{"http://2130706433/", 0, "127.0.0.1", V4, 80, 0, "/", ""},
	{"http://0177.0.0.1/", 0, "127.0.0.1", V4, 80, 0, "/", ""},
	{"http://0x7F000001:8080/a", 0, "127.0.0.1", V4, 8080, 1, "/a", ""},
	{"http://1.2.3.4./", 0, "1.2.3.4", V4, 80, 0, "/", ""},
	{"http://0x.0x.0", 0, "0.0.0.0", V4, 80, 0, "", ""},
	{"http://0/", 0, "0.0.0.0", V4, 80, 0, "/", ""},
	{"http://00.00.00.00/", 0, "0.0.0.0", V4, 80, 0, "/", ""},
	{"http://255.255.255.255/", 0, "255.255.255.255", V4, 80, 0, "/", ""},
	{"http://4294967295/", 0, "255.255.255.255", V4, 80, 0, "/", ""},
	{"http://037777777777/", 0, "255.255.255.255", V4, 80, 0, "/", ""},
	{"http://0xffffffff/", 0, "255.255.255.255", V4, 80, 0, "/", ""},
	{"http://1.16777215/", 0, "1.255.255.255", V4, 80, 0, "/", ""},
	{"http://1.2.65535/", 0, "1.2.255.255", V4, 80, 0, "/", ""},
	{"http://192.0x00A80001/", 0, "192.168.0.1", V4, 80, 0, "/", ""},
	{"http://0000000000000000000000000000000000000000177.0.0.1/", 0, "127.0.0.1", V4, 80, 0,
	 "/", ""},
	{"http://u:p@10.1:81?q", 0, "10.0.0.1", V4, 81, 1, "?q", "u:p"},
	/* IPv6 */
	{"http://[::1]/", 0, "::1", V6, 80, 0, "/", ""},
	{"http://[::1]", 0, "::1", V6, 80, 0, "", ""},
	{"http://[::1]:/", 0, "::1", V6, 80, 0, "/", ""},
	{"http://[::1]:8080/x", 0, "::1", V6, 8080, 1, "/x", ""},
	{"http://[::]/", 0, "::", V6, 80, 0, "/", ""},
	{"http://[2001:DB8:0:0:0:0:0:1]/", 0, "2001:db8::1", V6, 80, 0, "/", ""},
	{"http://[2001:db8:0:1:0:0:0:1]/", 0, "2001:db8:0:1::1", V6, 80, 0, "/", ""},
	{"http://[::ffff:127.0.0.1]/", 0, "::ffff:127.0.0.1", V6, 80, 0, "/", ""},
	{"http://[::FFFF:7f00:1]/", 0, "::ffff:127.0.0.1", V6, 80, 0, "/", ""},
	{"http://[0:1:0:1:0:1:0:1]/", 0, "0:1:0:1:0:1:0:1", V6, 80, 0, "/", ""},
	{"https://[::1]/", 1, "::1", V6, 443, 0, "/", ""},
	{"http://u@[::1]:81?x", 0, "::1", V6, 81, 1, "?x", "u"},
	{"http://[::1]#x", 0, "::1", V6, 80, 0, "", ""},
};

/* ---- table of rejected URLs ---- */

struct bad_case {
	const char *in;
	size_t len; /* 0: strlen(in) */
	int https;
	const char *reason;
};

#define CTL "control character or space in URL"
#define SCHEME "unsupported scheme"
#define SLASHES "missing \"//\" after scheme"
#define BADHOST "invalid character in host"
#define EMPTY "empty host"
#define LABEL "empty label in host"
#define V4BAD "invalid IPv4 address"
#define V6BAD "invalid IPv6 address"
#define RANGE "port out of range"
#define BADPORT "invalid port"

static const struct bad_case bad_cases[] = {
	{"", 0, 1, "empty URL"},
	{"ftp://a/", 0, 1, SCHEME},
	{"file:///etc/passwd", 0, 1, SCHEME},
	{"javascript:alert(1)", 0, 1, SCHEME},
	{"data:text/plain,x", 0, 1, SCHEME},
	{"ws://a/", 0, 1, SCHEME},
	{"httpx://a/", 0, 1, SCHEME},
	{"https://a/", 0, 0, SCHEME},
	{"HTTPS://a/", 0, 0, SCHEME},
	{"localhost:8080", 0, 1, SCHEME},
	{"example.com/x", 0, 1, "missing scheme"},
	{"://a", 0, 1, "missing scheme"},
	{"1http://a", 0, 1, "missing scheme"},
	{"http", 0, 1, "missing scheme"},
	{"http:/a", 0, 1, SLASHES},
	{"http:a", 0, 1, SLASHES},
	{"http:", 0, 1, SLASHES},
	{"http:/", 0, 1, SLASHES},
	{"http:\\\\a/", 0, 1, SLASHES},
	{" http://a/", 0, 1, CTL},
	{"http://a/ ", 0, 1, CTL},
	{"http://a/\n", 0, 1, CTL},
	{"http://a/b c", 0, 1, CTL},
	{"http://a/\t", 0, 1, CTL},
	{"http://a/\x7f", 0, 1, CTL},
	{"http://a/#x y", 0, 1, CTL},
	{"http://a\rb/", 0, 1, CTL},
	{"http://a/\0b", 11, 1, CTL},
	{"http://a\0.evil/", 15, 1, CTL},
	{"http://\xc3\xa9.com/", 0, 1, "non-ASCII host (IDNA) not supported"},
	{"http://a\x80/", 0, 1, "non-ASCII host (IDNA) not supported"},
	{"http://a%41/", 0, 1, BADHOST},
	{"http://%e2%98%83/", 0, 1, BADHOST},
	{"http://a<b/", 0, 1, BADHOST},
	{"http://a!b/", 0, 1, BADHOST},
	{"http://a]b/", 0, 1, BADHOST},
	{"http://a\\b/", 0, 1, "backslash in authority"},
	{"http://u\\@a/", 0, 1, "backslash in authority"},
	{"http://a\\", 0, 1, "backslash in authority"},
	{"http://", 0, 1, EMPTY},
	{"http:///", 0, 1, EMPTY},
	{"http://?x", 0, 1, EMPTY},
	{"http://#", 0, 1, EMPTY},
	{"http://@/", 0, 1, EMPTY},
	{"http://u:p@", 0, 1, EMPTY},
	{"http://:80/", 0, 1, EMPTY},
	{"http://u@:80/", 0, 1, EMPTY},
	{"http://a..b/", 0, 1, LABEL},
	{"http://.a/", 0, 1, LABEL},
	{"http://a../", 0, 1, LABEL},
	{"http://./", 0, 1, LABEL},
	{"http://foo.09../", 0, 1, LABEL},
	{"http://1.2.3.4.5/", 0, 1, V4BAD},
	{"http://1.2.3.4.5./", 0, 1, V4BAD},
	{"http://256.0.0.1/", 0, 1, V4BAD},
	{"http://1.256.0.0/", 0, 1, V4BAD},
	{"http://1.2.3.08/", 0, 1, V4BAD},
	{"http://09.2.3.4/", 0, 1, V4BAD},
	{"http://0x100000000/", 0, 1, V4BAD},
	{"http://4294967296/", 0, 1, V4BAD},
	{"http://1.16777216/", 0, 1, V4BAD},
	{"http://1.2.65536/", 0, 1, V4BAD},
	{"http://1.2.3.256/", 0, 1, V4BAD},
	{"http://foo.1.2.3/", 0, 1, V4BAD},
	{"http://foo.0x4/", 0, 1, V4BAD},
	{"http://foo.09/", 0, 1, V4BAD},
	{"http://foo.0x/", 0, 1, V4BAD},
	{"http://0..0x300/", 0, 1, V4BAD},
	{"http://.1/", 0, 1, V4BAD},
	{"http://0999999999999999999/", 0, 1, V4BAD},
	{"http://[::1", 0, 1, "missing ']' after IPv6 address"},
	{"http://[", 0, 1, "missing ']' after IPv6 address"},
	{"http://[::1]x/", 0, 1, "invalid character after IPv6 address"},
	{"http://[::1]]/", 0, 1, "invalid character after IPv6 address"},
	{"http://[]/", 0, 1, V6BAD},
	{"http://[::1%25eth0]/", 0, 1, "IPv6 zone identifiers not supported"},
	{"http://[fe80::1%eth0]/", 0, 1, "IPv6 zone identifiers not supported"},
	{"http://[1:2:3:4:5:6:7:8:9]/", 0, 1, V6BAD},
	{"http://[::127.0.0.0.1]/", 0, 1, V6BAD},
	{"http://[0::0::0]/", 0, 1, V6BAD},
	{"http://[www.google.com]/", 0, 1, V6BAD},
	{"http://[127.0.0.1]/", 0, 1, V6BAD},
	{"http://[::1]:0/", 0, 1, RANGE},
	{"http://a:0/", 0, 1, RANGE},
	{"http://a:000/", 0, 1, RANGE},
	{"http://a:65536/", 0, 1, RANGE},
	{"http://a:99999999999999999999/", 0, 1, RANGE},
	{"http://a:-1/", 0, 1, BADPORT},
	{"http://a:+80/", 0, 1, BADPORT},
	{"http://a:8o/", 0, 1, BADPORT},
	{"http://a:80:81/", 0, 1, BADPORT},
	{"http://a:0x50/", 0, 1, BADPORT},
	{"http://a: 80/", 0, 1, CTL},
};

static void check_ok_case(const struct ok_case *c)
{
	struct url u;
	const char *why = "unset";
	size_t len = strlen(c->in);
	int rc = url_parse(c->in, len, c->https, &u, &why);
	CHECK(rc == 0, "%s: rejected (%s)", c->in, why ? why : "?");
	if (rc != 0)
		return;
	enum url_scheme want = strncasecmp(c->in, "https:", 6) == 0 ? URL_HTTPS : URL_HTTP;
	CHECK(u.scheme == want, "%s: scheme %d", c->in, (int)u.scheme);
	CHECK(strcmp(u.host, c->host) == 0, "%s: host '%s', want '%s'", c->in, u.host, c->host);
	CHECK((int)u.host_kind == c->kind, "%s: kind %d, want %d", c->in, (int)u.host_kind, c->kind);
	CHECK(u.port == c->port, "%s: port %u, want %u", c->in, (unsigned)u.port, c->port);
	CHECK(u.port_explicit == c->port_explicit, "%s: port_explicit %d", c->in, u.port_explicit);
	CHECK(u.target_off + u.target_len <= len, "%s: target span out of input", c->in);
	CHECK(u.target_len == strlen(c->target) && memcmp(c->in + u.target_off, c->target,
							   u.target_len) == 0,
	      "%s: target '%.*s', want '%s'", c->in, (int)u.target_len, c->in + u.target_off,
	      c->target);
	CHECK(u.userinfo_len == strlen(c->userinfo) &&
		      memcmp(c->in + u.userinfo_off, c->userinfo, u.userinfo_len) == 0,
	      "%s: userinfo '%.*s', want '%s'", c->in, (int)u.userinfo_len, c->in + u.userinfo_off,
	      c->userinfo);
}

static void test_ok_cases(void)
{
	for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++)
		check_ok_case(&ok_cases[i]);
}

static void test_bad_cases(void)
{
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *c = &bad_cases[i];
		size_t len = c->len ? c->len : strlen(c->in);
		struct url u;
		const char *why = NULL;
		int rc = url_parse(c->in, len, c->https, &u, &why);
		CHECK(rc == -1, "%s: accepted (host '%s')", c->in, u.host);
		CHECK(why && strcmp(why, c->reason) == 0, "%s: reason '%s', want '%s'", c->in,
		      why ? why : "(null)", c->reason);
	}
}

/* Scheme and host kinds, the stored address bytes, and the userinfo/target offsets. */
static void test_details(void)
{
	struct url u;
	const char *why;
	const char *s = "http://0x7f.1/";
	CHECK(url_parse(s, strlen(s), 0, &u, &why) == 0, "parse %s", s);
	CHECK(memcmp(u.ip, "\x7f\0\0\x01", 4) == 0, "IPv4 bytes");
	CHECK(u.scheme == URL_HTTP, "http scheme");
	s = "HTTPS://[::1]/";
	CHECK(url_parse(s, strlen(s), 1, &u, &why) == 0, "parse %s", s);
	CHECK(u.scheme == URL_HTTPS, "https scheme");
	CHECK(memcmp(u.ip, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16) == 0, "IPv6 bytes");
	s = "http://@h/p";
	CHECK(url_parse(s, strlen(s), 0, &u, &why) == 0, "parse %s", s);
	CHECK(u.userinfo_off == 7 && u.userinfo_len == 0, "empty userinfo at %zu", u.userinfo_off);
	CHECK(u.target_off == 9 && u.target_len == 2, "target %zu+%zu", u.target_off, u.target_len);
	/* Not NUL-terminated: the parser must stop at len. */
	s = "http://a/bc#";
	CHECK(url_parse(s, 10, 0, &u, &why) == 0 && u.target_len == 2, "len respected");
	CHECK(url_parse(s, 8, 0, &u, &why) == 0 && u.target_len == 0 && strcmp(u.host, "a") == 0,
	      "len cuts before path");
	/* The reason is set on failure and is a static string. */
	why = NULL;
	CHECK(url_parse("gopher://x", 10, 1, &u, &why) == -1 && why && *why, "reason set");
}

/* ---- Host header ---- */

static void check_host_header(const char *in, int https, const char *want)
{
	struct url u;
	const char *why;
	char out[URL_HOST_MAX + 16];
	CHECK(url_parse(in, strlen(in), https, &u, &why) == 0, "parse %s", in);
	int n = url_host_header(&u, out, sizeof out);
	CHECK(n == (int)strlen(want) && strcmp(out, want) == 0, "%s: Host '%s', want '%s'", in,
	      n >= 0 ? out : "(error)", want);
}

static void test_host_header(void)
{
	check_host_header("http://Example.com/x", 0, "example.com");
	check_host_header("http://example.com:8080/", 0, "example.com:8080");
	check_host_header("http://example.com:80/", 0, "example.com");
	check_host_header("https://example.com:443/", 1, "example.com");
	check_host_header("https://example.com/", 1, "example.com");
	check_host_header("https://example.com:80/", 1, "example.com:80");
	check_host_header("http://example.com:443/", 0, "example.com:443");
	check_host_header("http://[::1]:8080/", 0, "[::1]:8080");
	check_host_header("http://[::1]/", 0, "[::1]");
	check_host_header("http://[::FFFF:7f00:1]:81/", 0, "[::ffff:127.0.0.1]:81");
	check_host_header("http://0x7f.1:81/", 0, "127.0.0.1:81");
	check_host_header("http://user:pw@host./", 0, "host.");

	struct url u;
	const char *why;
	char out[32];
	const char *s = "http://abc:8080/";
	CHECK(url_parse(s, strlen(s), 0, &u, &why) == 0, "parse %s", s);
	CHECK(url_host_header(&u, out, 9) == 8 && strcmp(out, "abc:8080") == 0, "exact fit");
	CHECK(url_host_header(&u, out, 8) == -1, "one byte short");
	CHECK(url_host_header(&u, out, 0) == -1, "no room");
}

/* ---- long inputs ---- */

static char *make_url(const char *head, char fill, size_t count, const char *tail, size_t *len)
{
	size_t hl = strlen(head), tl = strlen(tail);
	char *s = malloc(hl + count + tl);
	if (!s)
		abort();
	memcpy(s, head, hl);
	memset(s + hl, fill, count);
	memcpy(s + hl + count, tail, tl);
	*len = hl + count + tl;
	return s;
}

static void check_long(const char *head, char fill, size_t count, const char *tail,
		       const char *want_reason)
{
	size_t len;
	char *s = make_url(head, fill, count, tail, &len);
	struct url u;
	const char *why = NULL;
	int rc = url_parse(s, len, 0, &u, &why);
	if (want_reason)
		CHECK(rc == -1 && why && strcmp(why, want_reason) == 0, "%s + %zu x '%c': %s", head,
		      count, fill, why ? why : "accepted");
	else
		CHECK(rc == 0, "%s + %zu x '%c': rejected (%s)", head, count, fill, why);
	free(s);
}

/* A name of count labels "aaa...a" of label_len bytes each. */
static void check_name(size_t label_len, size_t labels, int trailing_dot, int want_ok)
{
	char buf[1024], in[1100];
	size_t n = 0;
	for (size_t l = 0; l < labels; l++) {
		if (l)
			buf[n++] = '.';
		memset(buf + n, 'a' + (int)(l % 26), label_len);
		n += label_len;
	}
	if (trailing_dot)
		buf[n++] = '.';
	buf[n] = '\0';
	snprintf(in, sizeof in, "http://%s/", buf);
	struct url u;
	const char *why = NULL;
	int rc = url_parse(in, strlen(in), 0, &u, &why);
	if (want_ok)
		CHECK(rc == 0 && strcmp(u.host, buf) == 0, "name of %zu bytes: %s", n,
		      rc ? why : "host differs");
	else
		CHECK(rc == -1 && strcmp(why, "host name too long") == 0, "name of %zu bytes: %s", n,
		      rc ? why : "accepted");
}

static void test_long(void)
{
	check_name(63, 1, 0, 1);
	check_name(63, 1, 1, 1);
	check_name(64, 1, 0, 0);
	check_name(63, 4, 0, 0);  /* 255 bytes */
	check_name(49, 5, 0, 1);  /* 249 bytes */
	check_name(50, 5, 0, 0);  /* 254 bytes: too long */
	check_name(1, 127, 0, 1); /* 253 bytes */
	check_name(1, 127, 1, 1); /* 253 bytes + trailing dot */
	check_name(1, 128, 0, 0); /* 255 bytes */
	check_long("http://a/", 'x', 100000, "?q", NULL);
	check_long("http://", 'u', 100000, "@a/", NULL);
	check_long("http://", 'a', 100000, "/", "host name too long");
	check_long("http://", '1', 100000, "/", "invalid IPv4 address");
	check_long("http://0x", 'f', 100000, "/", "invalid IPv4 address");
	check_long("http://0", '0', 100000, "/", NULL); /* octal 0: 0.0.0.0 */
	check_long("http://a:", '0', 100000, "8/", NULL);
	check_long("http://a:", '9', 100000, "/", "port out of range");
	check_long("http://[", 'a', 100000, "]/", "invalid IPv6 address");
	check_long("http://[::", '1', 100000, "/", "missing ']' after IPv6 address");
	check_long("http://a/", '\0', 100000, "", "control character or space in URL");
}

/* ---- fuzz-ish: prefixes and single-byte mutations must parse or fail cleanly ---- */

static int spans_sane(const char *s, size_t len, const struct url *u)
{
	if (u->target_off > len || u->target_len > len - u->target_off)
		return 0;
	if (u->target_len && s[u->target_off] != '/' && s[u->target_off] != '?')
		return 0;
	if (u->userinfo_off > len || u->userinfo_len > len - u->userinfo_off)
		return 0;
	size_t hl = strnlen(u->host, sizeof u->host);
	return hl > 0 && hl < sizeof u->host;
}

static int fuzz_bad;

static void fuzz_one(const char *bytes, size_t len)
{
	char *s = malloc(len ? len : 1); /* exactly len bytes: valgrind catches over-reads */
	if (!s)
		abort();
	memcpy(s, bytes, len);
	struct url u;
	const char *why = NULL;
	int rc = url_parse(s, len, 1, &u, &why);
	if (rc == 0 ? !spans_sane(s, len, &u) : (rc != -1 || !why || !*why))
		fuzz_bad++;
	free(s);
}

static const char *const fuzz_seeds[] = {
	"http://user:pw@www.Example.com:8080/a/b?c=d#e",
	"https://[2001:db8::ff00:42:8329]:443/x?y#z",
	"http://0x7f.0.0.1:65535?q",
	"HTTP://1.2.3.4./%41",
	"http://@a/",
};

static void test_fuzz(void)
{
	static const char subst[] = {'\0', ' ', '/', '?', '#', '@', ':', '[', ']', '.', '%', '\\',
				     '0', 'x', '9', 'A', (char)0x80, (char)0xff, 0x7f};
	size_t runs = 0;
	for (size_t i = 0; i < sizeof fuzz_seeds / sizeof fuzz_seeds[0]; i++) {
		const char *seed = fuzz_seeds[i];
		size_t n = strlen(seed);
		char buf[128];
		for (size_t len = 0; len <= n; len++, runs++)
			fuzz_one(seed, len);
		for (size_t pos = 0; pos < n; pos++) {
			for (size_t k = 0; k < sizeof subst; k++, runs++) {
				memcpy(buf, seed, n);
				buf[pos] = subst[k];
				fuzz_one(buf, n);
				fuzz_one(buf, pos + 1); /* cut right after the change */
			}
		}
	}
	CHECK(fuzz_bad == 0, "%d of %zu fuzz inputs broke an invariant", fuzz_bad, runs);
}

/* ---- WHATWG corpus ---- */

enum corpus_cat {
	CAT_AGREE_REJECT,    /* WHATWG fails, we fail */
	CAT_AGREE_FULL,      /* same host, port and target */
	CAT_AGREE_HOSTPORT,  /* same host and port; target not comparable (WHATWG re-encodes) */
	CAT_STRIP,           /* leading/trailing C0 or space, which WHATWG strips */
	CAT_CONTROL,         /* control character or space inside (WHATWG strips tab/LF/CR) */
	CAT_SLASHES,         /* "http:/x", "http:x": WHATWG accepts for special schemes */
	CAT_BACKSLASH,       /* backslash in the authority: WHATWG reads it as '/' */
	CAT_NONASCII_HOST,   /* IDNA */
	CAT_PERCENT_HOST,    /* percent-encoded host: WHATWG decodes */
	CAT_HOST_PUNCT,      /* punctuation WHATWG allows in hosts: !"$&'()*+,;=`{}~ */
	CAT_EMPTY_LABEL,     /* "a..b", "." */
	CAT_MISMATCH,        /* WHATWG accepts, we disagree on a value or reject without a rule */
	CAT_WE_ACCEPT,       /* WHATWG rejects, we accept */
	CAT_COUNT
};

static const char *const cat_names[CAT_COUNT] = {
	"agree: both reject",
	"agree: host, port and target",
	"agree: host and port (target re-encoded by WHATWG, not compared)",
	"stricter: leading/trailing C0 or space (not stripped)",
	"stricter: control character or space inside",
	"stricter: scheme not followed by \"//\"",
	"stricter: backslash in authority",
	"stricter: non-ASCII host (no IDNA)",
	"stricter: percent-encoded host",
	"stricter: punctuation in host",
	"stricter: empty label in host",
	"MISMATCH",
	"ACCEPTED WHERE WHATWG REJECTS",
};

struct corpus_rec {
	char index[16];
	int whatwg_ok;
	char input[4096];
	size_t input_len;
	char hostname[512];
	char port[16];
	char target[4096];
};

/* Decodes one field (with \xHH escapes) into out; returns its length or -1. */
static long unescape(const char *f, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (o + 1 >= cap)
			return -1;
		if (f[i] == '\\') {
			int hi = i + 3 < n ? hex_value(f[i + 2]) : -1;
			int lo = i + 3 < n ? hex_value(f[i + 3]) : -1;
			if (i + 3 >= n || f[i + 1] != 'x' || hi < 0 || lo < 0)
				return -1;
			out[o++] = (char)(hi * 16 + lo);
			i += 3;
		} else {
			out[o++] = f[i];
		}
	}
	out[o] = '\0';
	return (long)o;
}

/* Splits a record line (without its newline) into rec; returns 0 or -1. */
static int parse_record(char *line, struct corpus_rec *rec)
{
	char *field[6];
	int nf = 0;
	for (char *p = line; nf < 6; nf++) {
		field[nf] = p;
		p = strchr(p, '\t');
		if (!p) {
			nf++;
			break;
		}
		*p++ = '\0';
	}
	if (nf < 3)
		return -1;
	snprintf(rec->index, sizeof rec->index, "%s", field[0]);
	rec->whatwg_ok = strcmp(field[1], "ok") == 0;
	if (!rec->whatwg_ok && (strcmp(field[1], "fail") != 0 || nf != 3))
		return -1;
	if (rec->whatwg_ok && nf != 6)
		return -1;
	long n = unescape(field[2], strlen(field[2]), rec->input, sizeof rec->input);
	if (n < 0)
		return -1;
	rec->input_len = (size_t)n;
	if (!rec->whatwg_ok)
		return 0;
	if (unescape(field[3], strlen(field[3]), rec->hostname, sizeof rec->hostname) < 0 ||
	    unescape(field[4], strlen(field[4]), rec->port, sizeof rec->port) < 0 ||
	    unescape(field[5], strlen(field[5]), rec->target, sizeof rec->target) < 0)
		return -1;
	return 0;
}

static int has_byte_in(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] && strchr(set, s[i]))
			return 1;
	return 0;
}

static int has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return 1;
	return 0;
}

/* The host part of the input, found independently of url.c: after "://" and the last '@' of the
 * authority, up to '/', '?', '#' or the end. Empty when there is no "://". */
static void host_region(const char *s, size_t n, size_t *off, size_t *len)
{
	const char *sep = memmem(s, n, "://", 3);
	*off = *len = 0;
	if (!sep)
		return;
	size_t a = (size_t)(sep - s) + 3, e = a;
	while (e < n && !strchr("/?#", s[e]))
		e++;
	for (size_t i = e; i > a; i--)
		if (s[i - 1] == '@') {
			a = i;
			break;
		}
	*off = a;
	*len = e - a;
}

/* Which stricter rule explains our rejection of something WHATWG accepts; CAT_MISMATCH if none.
 * Each rule is confirmed on the input itself, so a wrong rejection cannot hide behind a reason. */
static enum corpus_cat stricter_rule(const struct corpus_rec *r, const char *why)
{
	const char *s = r->input;
	size_t n = r->input_len, ho, hl;
	host_region(s, n, &ho, &hl);
	if (strcmp(why, CTL) == 0) {
		if ((unsigned char)s[0] <= 0x20 || (unsigned char)s[n - 1] <= 0x20)
			return CAT_STRIP;
		return has_control(s, n) ? CAT_CONTROL : CAT_MISMATCH;
	}
	if (strcmp(why, SLASHES) == 0)
		return memmem(s, n, "://", 3) ? CAT_MISMATCH : CAT_SLASHES;
	if (strcmp(why, "backslash in authority") == 0)
		return memchr(s, '\\', n) ? CAT_BACKSLASH : CAT_MISMATCH;
	if (strcmp(why, "non-ASCII host (IDNA) not supported") == 0) {
		for (size_t i = 0; i < hl; i++)
			if ((unsigned char)s[ho + i] >= 0x80)
				return CAT_NONASCII_HOST;
		return CAT_MISMATCH;
	}
	if (strcmp(why, BADHOST) == 0) {
		if (memchr(s + ho, '%', hl))
			return CAT_PERCENT_HOST;
		return has_byte_in(s + ho, hl, "!\"$&'()*+,;=`{}~") ? CAT_HOST_PUNCT : CAT_MISMATCH;
	}
	if (strcmp(why, LABEL) == 0) {
		int empty = memmem(s + ho, hl, "..", 2) || (hl && s[ho] == '.');
		return empty ? CAT_EMPTY_LABEL : CAT_MISMATCH;
	}
	return CAT_MISMATCH;
}

static int is_dot_segment(const char *seg, size_t n)
{
	static const char *const dots[] = {".", "..", "%2e", ".%2e", "%2e.", "%2e%2e"};
	for (size_t i = 0; i < sizeof dots / sizeof dots[0]; i++)
		if (strlen(dots[i]) == n && strncasecmp(seg, dots[i], n) == 0)
			return 1;
	return 0;
}

/* WHATWG leaves our target alone when it has only printable ASCII outside its percent-encode
 * sets and no dot segments in the path. */
static int target_comparable(const char *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c <= 0x20 || c >= 0x7f || strchr("\"#<>`{}'\\^|", c))
			return 0;
	}
	size_t path_end = 0, seg = 0;
	while (path_end < n && t[path_end] != '?')
		path_end++;
	for (size_t i = 0; i <= path_end; i++) {
		if (i < path_end && t[i] != '/')
			continue;
		if (i > seg && is_dot_segment(t + seg, i - seg))
			return 0;
		seg = i + 1;
	}
	return 1;
}

/* Our target as WHATWG's pathname + search: "/" prepended when missing, a bare "?" dropped. */
static void whatwg_target(const char *t, size_t n, char *out, size_t cap)
{
	int slash = n == 0 || t[0] != '/';
	const char *q = memchr(t, '?', n);
	if (q && (size_t)(q - t) == n - 1)
		n--;
	snprintf(out, cap, "%s%.*s", slash ? "/" : "", (int)n, t);
}

static int same_host(const struct corpus_rec *r, const struct url *u)
{
	size_t hl = strlen(r->hostname);
	if (hl >= 2 && r->hostname[0] == '[' && r->hostname[hl - 1] == ']') {
		char inner[64];
		struct in6_addr a;
		snprintf(inner, sizeof inner, "%.*s", (int)(hl - 2), r->hostname + 1);
		return u->host_kind == URL_HOST_IPV6 && inet_pton(AF_INET6, inner, &a) == 1 &&
		       memcmp(&a, u->ip, 16) == 0;
	}
	return u->host_kind != URL_HOST_IPV6 && strcmp(u->host, r->hostname) == 0;
}

static enum corpus_cat compare_accepted(const struct corpus_rec *r, const struct url *u)
{
	unsigned want_port = strcmp(r->port, "default") == 0 ? (u->scheme == URL_HTTPS ? 443u : 80u)
							     : (unsigned)atoi(r->port);
	if (!same_host(r, u) || u->port != want_port)
		return CAT_MISMATCH;
	const char *t = r->input + u->target_off;
	if (!target_comparable(t, u->target_len))
		return CAT_AGREE_HOSTPORT;
	char mine[4200];
	whatwg_target(t, u->target_len, mine, sizeof mine);
	return strcmp(mine, r->target) == 0 ? CAT_AGREE_FULL : CAT_MISMATCH;
}

static enum corpus_cat classify(const struct corpus_rec *r)
{
	struct url u;
	const char *why = NULL;
	int rc = url_parse(r->input, r->input_len, 1, &u, &why);
	if (!r->whatwg_ok)
		return rc == 0 ? CAT_WE_ACCEPT : CAT_AGREE_REJECT;
	if (rc != 0)
		return stricter_rule(r, why);
	return compare_accepted(r, &u);
}

static FILE *open_corpus(void)
{
	const char *dir = getenv("FETCHD_CORPUS_DIR");
	char path[1024];
	snprintf(path, sizeof path, "%s/urltestdata.txt", dir && *dir ? dir : "tests/corpus");
	FILE *f = fopen(path, "r");
	CHECK(f != NULL, "cannot open %s (run from the repo root or set FETCHD_CORPUS_DIR)", path);
	return f;
}

static void test_corpus(void)
{
	FILE *f = open_corpus();
	if (!f)
		return;
	static char line[16384];
	static struct corpus_rec rec;
	int count[CAT_COUNT] = {0}, records = 0, malformed = 0;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (parse_record(line, &rec) != 0) {
			malformed++;
			continue;
		}
		records++;
		enum corpus_cat c = classify(&rec);
		count[c]++;
		if (c == CAT_MISMATCH || c == CAT_WE_ACCEPT)
			fprintf(stderr, "corpus #%s %s: %s\n", rec.index, cat_names[c], rec.input);
	}
	fclose(f);
	CHECK(malformed == 0, "%d malformed corpus lines", malformed);
	CHECK(records >= 250, "only %d corpus records", records);
	CHECK(count[CAT_MISMATCH] == 0, "%d mismatches", count[CAT_MISMATCH]);
	CHECK(count[CAT_WE_ACCEPT] == 0, "%d accepted that WHATWG rejects", count[CAT_WE_ACCEPT]);
	CHECK(count[CAT_AGREE_FULL] >= 20, "only %d full agreements", count[CAT_AGREE_FULL]);
	printf("WHATWG corpus: %d records\n", records);
	for (int c = 0; c < CAT_COUNT; c++)
		printf("  %4d  %s\n", count[c], cat_names[c]);
}

int main(void)
{
	test_ok_cases();
	test_bad_cases();
	test_details();
	test_host_header();
	test_long();
	test_fuzz();
	test_corpus();
	return test_report();
}

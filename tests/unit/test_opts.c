/* test_opts.c - unit tests for daemon/opts.c: each key, bounds against the daemon's limits, header
 * replacement and removal, refused headers and malformed items; and the request builder fed with the
 * resulting header lines (daemon/http1.c). */
#include "daemon/http1.h"
#include "daemon/opts.h"
#include "tests/unit/test.h"

#include <string.h>

static const struct fetch_opts daemon_max = {
	.method = OPTS_GET, .follow = true, .decode = true, .max_redirects = 10, .retries = 2,
	.timeout_ms = 120000, .connect_timeout_ms = 10000, .header_timeout_ms = 30000, .idle_timeout_ms = 30000,
	.max_body_bytes = 1u << 30,
};

static char extra[OPTS_EXTRA_MAX], err[OPTS_ERR_MAX];

static int parse(const char *s, struct fetch_opts *o)
{
	*o = daemon_max;
	err[0] = 0;
	return opts_parse(s, strlen(s), &daemon_max, o, extra, sizeof(extra), err, sizeof(err));
}

static void test_keys(void)
{
	struct fetch_opts o;
	CHECK(parse("", &o) == 0 && o.extra_len == 0 && o.method == OPTS_GET, "empty");
	CHECK(parse("method=HEAD\tfollow=no\tdecode=no", &o) == 0 && o.method == OPTS_HEAD && !o.follow && !o.decode,
	      "method/follow/decode: %s", err);
	CHECK(parse("\t\tmethod=HEAD\t", &o) == 0 && o.method == OPTS_HEAD, "empty items skipped");
	CHECK(parse("max_redirects=0\tretries=1\ttimeout_ms=5\tconnect_timeout_ms=6\theader_timeout_ms=7\t"
		    "idle_timeout_ms=8\tmax_body_bytes=9", &o) == 0 && o.max_redirects == 0 && o.retries == 1 &&
	      o.timeout_ms == 5 && o.connect_timeout_ms == 6 && o.header_timeout_ms == 7 && o.idle_timeout_ms == 8 &&
	      o.max_body_bytes == 9, "numbers: %s", err);
	CHECK(parse("max_body_bytes=1073741824", &o) == 0 && o.max_body_bytes == 1u << 30, "at the limit");
	CHECK(parse("follow=YES", &o) == 0 && o.follow, "yes in any case");

	static const struct {
		const char *in, *msg;
	} bad[] = {
		{ "timeout_ms=120001", "above the daemon's 120000" },
		{ "timeout_ms=0", "below the daemon's 1" },
		{ "max_body_bytes=1073741825", "above" },
		{ "retries=3", "above the daemon's 2" },
		{ "retries=-1", "needs a number" },
		{ "retries=", "needs a number" },
		{ "retries=99999999999999999999", "needs a number" },
		{ "method=POST", "GET or HEAD" },
		{ "method=get", "GET or HEAD" },
		{ "follow=1", "yes or no" },
		{ "colour=blue", "unknown option 'colour'" },
		{ "method", "needs key=value" },
		{ "header=NoColon", "Name: value" },
		{ "header=: x", "Name: value" },
		{ "header=Bad Name: x", "not an HTTP token" },
		{ "header=Host: evil", "fetchd's to send" },
		{ "header=content-length: 5", "fetchd's to send" },
		{ "header=Transfer-Encoding: chunked", "fetchd's to send" },
		{ "header=X: a\rb", "control character" },
		{ "header=X: a\nb", "control character" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(parse(bad[i].in, &o) == -1 && strstr(err, bad[i].msg), "'%s' -> '%s'", bad[i].in, err);
}

static bool has(const char *lines, size_t len, const char *name)
{
	size_t at, n;
	return http1_header_find(lines, len, name, strlen(name), &at, &n);
}

static void test_headers(void)
{
	struct fetch_opts o;
	CHECK(parse("header=X-A: 1\theader=X-B:  two  \tuser_agent=ua/1", &o) == 0, "%s", err);
	CHECK(o.extra_len == strlen("X-A: 1\r\nX-B: two\r\nUser-Agent: ua/1\r\n") &&
	      memcmp(extra, "X-A: 1\r\nX-B: two\r\nUser-Agent: ua/1\r\n", o.extra_len) == 0, "lines: '%.*s'",
	      (int)o.extra_len, extra);
	/* a later header of the same name (any case) replaces the earlier one */
	CHECK(parse("header=X-A: 1\theader=X-B: 2\theader=x-a: 3\tuser_agent=u1\theader=User-Agent: u2", &o) == 0,
	      "%s", err);
	CHECK(o.extra_len == strlen("X-B: 2\r\nx-a: 3\r\nUser-Agent: u2\r\n") &&
	      memcmp(extra, "X-B: 2\r\nx-a: 3\r\nUser-Agent: u2\r\n", o.extra_len) == 0, "replaced: '%.*s'",
	      (int)o.extra_len, extra);
	CHECK(has(extra, o.extra_len, "X-A") && has(extra, o.extra_len, "user-agent") && !has(extra, o.extra_len, "X"),
	      "http1_header_find");
	/* the URL's options start from the batch's lines */
	struct fetch_opts b;
	CHECK(parse("header=Accept:\theader=X-Batch: b", &b) == 0 && b.extra_len == strlen("Accept:\r\nX-Batch: b\r\n"),
	      "empty value kept as a removal: '%.*s'", (int)b.extra_len, extra);
	CHECK(opts_parse("header=X-Batch: u", 17, &daemon_max, &b, extra, sizeof(extra), err, sizeof(err)) == 0 &&
	      memcmp(extra, "Accept:\r\nX-Batch: u\r\n", b.extra_len) == 0, "URL over batch: '%.*s'", (int)b.extra_len,
	      extra);
	/* the cap */
	char big[OPTS_EXTRA_MAX + 64] = "header=X: ";
	memset(big + 10, 'v', sizeof(big) - 11);
	big[sizeof(big) - 1] = 0;
	CHECK(parse(big, &o) == -1 && strstr(err, "longer than"), "over the cap: %s", err);
}

static void test_build(void)
{
	struct fetch_opts o;
	char req[8192];
	CHECK(parse("header=Accept: text/html\theader=Accept-Encoding:\theader=Cookie: c=1\theader=X-Y: z\t"
		    "user_agent=me", &o) == 0, "%s", err);
	struct http1_request rq = { .method = "GET", .target = "/p", .target_len = 2, .host = "h", .host_len = 1,
				    .user_agent = "fetchd/x", .accept_encoding = "gzip, deflate", .extra = extra,
				    .extra_len = o.extra_len };
	ssize_t n = http1_build_request(req, sizeof(req), &rq);
	const char *want = "GET /p HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nAccept: text/html\r\n"
			   "Cookie: c=1\r\nX-Y: z\r\nUser-Agent: me\r\n\r\n";
	CHECK(n == (ssize_t)strlen(want) && strcmp(req, want) == 0, "built: '%s'", req);
	rq.drop_credentials = true;
	rq.auth_basic64 = "dTpw";
	n = http1_build_request(req, sizeof(req), &rq);
	CHECK(n > 0 && !strstr(req, "Cookie") && strstr(req, "Authorization: Basic dTpw\r\n"), "cross-host: '%s'", req);
	CHECK(parse("header=Authorization: Bearer t", &o) == 0, "%s", err);
	rq.extra_len = o.extra_len;
	rq.drop_credentials = false;
	n = http1_build_request(req, sizeof(req), &rq);
	CHECK(n > 0 && strstr(req, "Authorization: Bearer t\r\n") && !strstr(req, "Basic"),
	      "an explicit Authorization wins over the URL's: '%s'", req);
	rq.drop_credentials = true;
	n = http1_build_request(req, sizeof(req), &rq);
	CHECK(n > 0 && !strstr(req, "Bearer") && !strstr(req, "Authorization"), "and stays behind: '%s'", req);
	rq.extra = "X: a\r\nbroken";
	rq.extra_len = strlen(rq.extra);
	CHECK(http1_build_request(req, sizeof(req), &rq) == -1, "malformed extra refused");
}

int main(void)
{
	test_keys();
	test_headers();
	test_build();
	return test_report();
}

/* test_robots.c - unit tests for daemon/robots.c: the examples of RFC 9309 (2.2.1, 2.2.2, 2.2.3, 5.1,
 * 5.2) as tables, group selection, longest match and ties, wildcards and '$', percent-encoding,
 * crawl-delay, comments/BOM/line ends, /robots.txt, allow_all/disallow_all, the 500 KiB and rule
 * limits, long targets, pathological wildcard patterns (timed), a cross-check of the matcher against
 * a small dynamic-programming reference on random rules, and random bytes (for the sanitizers). */
#include "daemon/robots.h"
#include "daemon/hex.h"
#include "tests/unit/test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKEN "fetchd"

/* ---- helpers ---- */

static bool allowed_n(const char *txt, size_t len, const char *token, const char *target, size_t tlen)
{
	struct robots *r = robots_parse(txt, len, token);
	if (!r) {
		CHECK(r != NULL, "out of memory?");
		return false;
	}
	bool ok = robots_allowed(r, target, tlen);
	robots_free(r);
	return ok;
}

static bool allowed(const char *txt, const char *token, const char *target)
{
	return allowed_n(txt, strlen(txt), token, target, strlen(target));
}

struct case_ {
	const char *txt;
	const char *token;
	const char *target;
	bool allowed;
};

static void run_cases(const char *name, const struct case_ *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool got = allowed(c[i].txt, c[i].token, c[i].target);
		CHECK(got == c[i].allowed, "%s #%zu: token %s target \"%s\": got %s\n%s", name, i,
		      c[i].token, c[i].target, got ? "allowed" : "disallowed", c[i].txt);
	}
}

#define RUN(table) run_cases(#table, table, sizeof(table) / sizeof(table[0]))
#define A true
#define D false

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- RFC 9309 5.1 and 5.2 ---- */

#define RFC_5_1 \
	"User-Agent: *\n"                 \
	"Disallow: *.gif$\n"              \
	"Disallow: /example/\n"           \
	"Allow: /publications/\n"         \
	"\n"                              \
	"User-Agent: foobot\n"            \
	"Disallow:/\n"                    \
	"Allow:/example/page.html\n"      \
	"Allow:/example/allowed.gif\n"    \
	"\n"                              \
	"User-Agent: barbot\n"            \
	"User-Agent: bazbot\n"            \
	"Disallow: /example/page.html\n"  \
	"\n"                              \
	"User-Agent: quxbot\n"            \
	"\n"                              \
	"EOF\n"

static const struct case_ rfc_5_1[] = {
	/* "*": /publications/ allowed, /example/ and .gif disallowed */
	{RFC_5_1, "otherbot", "/", A},
	{RFC_5_1, "otherbot", "/index.html", A},
	{RFC_5_1, "otherbot", "/example/", D},
	{RFC_5_1, "otherbot", "/example/page.html", D},
	{RFC_5_1, "otherbot", "/example", A},
	{RFC_5_1, "otherbot", "/publications/", A},
	{RFC_5_1, "otherbot", "/publications/paper.pdf", A},
	{RFC_5_1, "otherbot", "/image.gif", D},
	{RFC_5_1, "otherbot", "/a/b/c.gif", D},
	{RFC_5_1, "otherbot", "/image.gif?size=2", A},
	{RFC_5_1, "otherbot", "/image.GIF", A},
	{RFC_5_1, "otherbot", "/publications/x.gif", A}, /* 14 octets beat 6 */
	{RFC_5_1, "otherbot", "/robots.txt", A},
	/* foobot: only /example/page.html and /example/allowed.gif */
	{RFC_5_1, "foobot", "/", D},
	{RFC_5_1, "foobot", "/example/page.html", A},
	{RFC_5_1, "foobot", "/example/allowed.gif", A},
	{RFC_5_1, "foobot", "/example/page.html?x=1", A},
	{RFC_5_1, "foobot", "/example/other.html", D},
	{RFC_5_1, "foobot", "/publications/", D},
	{RFC_5_1, "foobot", "/x.gif", D},
	{RFC_5_1, "FooBot", "/example/page.html", A},
	{RFC_5_1, "FOOBOT", "/", D},
	{RFC_5_1, "foobot", "/robots.txt", A},
	/* barbot and bazbot: one group for both; not /example/page.html, the rest is free */
	{RFC_5_1, "barbot", "/example/page.html", D},
	{RFC_5_1, "barbot", "/example/page.html5", D},
	{RFC_5_1, "barbot", "/example/page.htm", A},
	{RFC_5_1, "barbot", "/example/", A},
	{RFC_5_1, "barbot", "/x.gif", A},
	{RFC_5_1, "bazbot", "/example/page.html", D},
	{RFC_5_1, "bazbot", "/example/", A},
	{RFC_5_1, "BazBot", "/", A},
	/* quxbot: an empty group at the end; everything is allowed, the "*" group does not apply */
	{RFC_5_1, "quxbot", "/", A},
	{RFC_5_1, "quxbot", "/example/", A},
	{RFC_5_1, "quxbot", "/x.gif", A},
	{RFC_5_1, "quxbot", "/example/page.html", A},
};

#define RFC_5_2 \
	"User-Agent: foobot\n"   \
	"Allow: /example/page/\n" \
	"Disallow: /example/page/disallowed.gif\n"

static const struct case_ rfc_5_2[] = {
	{RFC_5_2, "foobot", "/example/page/", A},
	{RFC_5_2, "foobot", "/example/page/index.html", A},
	{RFC_5_2, "foobot", "/example/page/disallowed.gif", D},
	{RFC_5_2, "foobot", "/example/page/disallowed.gif?x", D},
	/* the RFC's prose says ".../disallow.gif", which only the Allow rule matches */
	{RFC_5_2, "foobot", "/example/page/disallow.gif", A},
	{RFC_5_2, "foobot", "/example/", A},
	{RFC_5_2, "otherbot", "/example/page/disallowed.gif", A},
};

/* ---- RFC 9309 2.2.1: user-agent lines, merged groups ---- */

#define RFC_2_2_1 \
	"user-agent: ExampleBot\n" \
	"disallow: /foo\n"         \
	"disallow: /bar\n"         \
	"\n"                       \
	"user-agent: ExampleBot\n" \
	"disallow: /baz\n"

static const struct case_ rfc_2_2_1[] = {
	{RFC_2_2_1, "ExampleBot", "/foo", D},
	{RFC_2_2_1, "ExampleBot", "/bar", D},
	{RFC_2_2_1, "ExampleBot", "/baz", D},
	{RFC_2_2_1, "examplebot", "/baz/x", D},
	{RFC_2_2_1, "ExampleBot", "/qux", A},
	{RFC_2_2_1, "OtherBot", "/foo", A},
	{"User-agent: ExampleBot/0.1\nDisallow: /x\n", "ExampleBot", "/x", D},
	{"User-agent: ExampleBot/0.1 (+https://x.example/)\nDisallow: /x\n", "examplebot", "/x", D},
};

/* ---- RFC 9309 2.2.2 (figure 4): percent-encoding ---- */

#define DIS(p) "User-agent: *\nDisallow: " p "\n"

static const struct case_ rfc_2_2_2[] = {
	{DIS("/foo/bar?baz=quz"), TOKEN, "/foo/bar?baz=quz", D},
	{DIS("/foo/bar?baz=quz"), TOKEN, "/foo/bar?baz=qu", A},
	{DIS("/foo/bar?baz=https://foo.bar"), TOKEN, "/foo/bar?baz=https%3A%2F%2Ffoo.bar", D},
	{DIS("/foo/bar?baz=https%3A%2F%2Ffoo.bar"), TOKEN, "/foo/bar?baz=https://foo.bar", D},
	{DIS("/foo/bar?baz=https%3A%2F%2Ffoo.bar"), TOKEN, "/foo/bar?baz=https%3a%2f%2ffoo.bar", D},
	{DIS("/foo/bar/\xe3\x83\x84"), TOKEN, "/foo/bar/%E3%83%84", D},
	{DIS("/foo/bar/\xe3\x83\x84"), TOKEN, "/foo/bar/%e3%83%84", D},
	{DIS("/foo/bar/\xe3\x83\x84"), TOKEN, "/foo/bar/\xe3\x83\x84", D},
	{DIS("/foo/bar/\xe3\x83\x84"), TOKEN, "/foo/bar/%E3%83", A},
	{DIS("/foo/bar/%E3%83%84"), TOKEN, "/foo/bar/%E3%83%84", D},
	{DIS("/foo/bar/%E3%83%84"), TOKEN, "/foo/bar/\xe3\x83\x84", D},
	{DIS("/foo/bar/%e3%83%84"), TOKEN, "/foo/bar/%E3%83%84", D},
	{DIS("/foo/bar/%62%61%7A"), TOKEN, "/foo/bar/baz", D},
	{DIS("/foo/bar/%62%61%7a"), TOKEN, "/foo/bar/%62%61%7A", D},
	{DIS("/foo/bar/baz"), TOKEN, "/foo/bar/%62%61%7A", D},
	{DIS("/foo/bar/baz"), TOKEN, "/foo/bar/%62%61%7", A},
	{DIS("/foo/bar/%62%61%7A$"), TOKEN, "/foo/bar/baz", D},
	{DIS("/foo/bar/%62%61%7A$"), TOKEN, "/foo/bar/bazz", A},
};

/* ---- RFC 9309 2.2.3 (figures 5 and 6): special characters ---- */

static const struct case_ rfc_2_2_3[] = {
	{"User-agent: *\nDisallow: /\nallow: / # comment in line\n", TOKEN, "/x", A},
	{"# comment on its own line\nUser-agent: *\nDisallow: /x\n", TOKEN, "/x", D},
	{DIS("/this/path/exactly$"), TOKEN, "/this/path/exactly", D},
	{DIS("/this/path/exactly$"), TOKEN, "/this/path/exactly/", A},
	{DIS("/this/path/exactly$"), TOKEN, "/this/path/exactlyx", A},
	{DIS("/this/path/exactly$"), TOKEN, "/this/path/exactly?q", A},
	{DIS("/this/path/exactly$"), TOKEN, "/this/path/exact", A},
	{DIS("/this/*/exactly"), TOKEN, "/this/a/exactly", D},
	{DIS("/this/*/exactly"), TOKEN, "/this/a/b/exactly", D},
	{DIS("/this/*/exactly"), TOKEN, "/this//exactly", D},
	{DIS("/this/*/exactly"), TOKEN, "/this/a/exactly/more", D},
	{DIS("/this/*/exactly"), TOKEN, "/this/exactly", A},
	{DIS("/this/*/exactly"), TOKEN, "/that/a/exactly", A},
	{DIS("/path/file-with-a-%2A.html"), TOKEN, "/path/file-with-a-*.html", D},
	{DIS("/path/file-with-a-%2A.html"), TOKEN, "/path/file-with-a-%2A.html", D},
	{DIS("/path/file-with-a-%2a.html"), TOKEN, "/path/file-with-a-%2A.html", D},
	{DIS("/path/file-with-a-%2A.html"), TOKEN, "/path/file-with-a-x.html", A},
	{DIS("/path/file-with-a-%2A.html"), TOKEN, "/path/file-with-a-.html", A},
	{DIS("/path/foo-%24"), TOKEN, "/path/foo-$", D},
	{DIS("/path/foo-%24"), TOKEN, "/path/foo-%24", D},
	{DIS("/path/foo-%24"), TOKEN, "/path/foo-$x", D},
	{DIS("/path/foo-%24"), TOKEN, "/path/foo-", A},
	{DIS("/path/foo-%24$"), TOKEN, "/path/foo-$", D},
	{DIS("/path/foo-%24$"), TOKEN, "/path/foo-$x", A},
};

/* ---- group selection ---- */

#define MERGED \
	"User-agent: fetchd\nAllow: /a/b\n" \
	"User-agent: x\nDisallow: /\n"      \
	"User-agent: fetchd\nDisallow: /a\n"

static const struct case_ groups[] = {
	/* case-insensitive product token; the value up to the first non-token character */
	{"User-agent: FETCHD\nDisallow: /\n", TOKEN, "/x", D},
	{"User-agent: FetchD\nDisallow: /\n", "FETCHD", "/x", D},
	{"User-agent: fetchd/0.1.0\nDisallow: /\n", TOKEN, "/x", D},
	{"User-agent: fetchd 0.1\nDisallow: /\n", TOKEN, "/x", D},
	{"User-agent: fetchd;x\nDisallow: /\n", TOKEN, "/x", D},
	{"User-agent:fetchd\nDisallow: /\n", TOKEN, "/x", D},
	{"User-agent: fetchdx\nDisallow: /\n", TOKEN, "/x", A},
	{"User-agent: fetch\nDisallow: /\n", TOKEN, "/x", A},
	{"User-agent: fetchd-bot\nDisallow: /\n", TOKEN, "/x", A},
	{"User-agent: fetchd_bot\nDisallow: /\n", TOKEN, "/x", A},
	{"User-agent: fetchd2\nDisallow: /\n", TOKEN, "/x", D}, /* the value is cut at the digit */
	{"User-agent: fetchd.com\nDisallow: /\n", TOKEN, "/x", D},
	{"User-agent: Mozilla fetchd\nDisallow: /\n", TOKEN, "/x", A},
	{"User-agent: my-bot\nDisallow: /\n", "My-Bot", "/x", D},
	{"User-agent: my_bot\nDisallow: /\n", "my_bot", "/x", D},
	/* "*" and its fallback */
	{"User-agent: *\nDisallow: /\n", TOKEN, "/x", D},
	{"User-agent: * # everyone\nDisallow: /\n", TOKEN, "/x", D},
	{"User-agent: *\t\nDisallow: /\n", TOKEN, "/x", D},
	{"User-agent: *bot\nDisallow: /\n", TOKEN, "/x", A},
	{"User-agent: other\nDisallow: /\n", TOKEN, "/x", A},
	{"User-agent: *\nDisallow: /a\nUser-agent: fetchd\nDisallow: /b\n", TOKEN, "/a", A},
	{"User-agent: *\nDisallow: /a\nUser-agent: fetchd\nDisallow: /b\n", TOKEN, "/b", D},
	{"User-agent: *\nDisallow: /a\nUser-agent: fetchd\nDisallow: /b\n", "other", "/a", D},
	{"User-agent: *\nDisallow: /a\nUser-agent: fetchd\nDisallow: /b\n", "other", "/b", A},
	{"User-agent: fetchd\nDisallow: /b\nUser-agent: *\nDisallow: /a\n", TOKEN, "/a", A},
	/* an empty group for the token beats "*" */
	{"User-agent: *\nDisallow: /\nUser-agent: fetchd\n", TOKEN, "/x", A},
	{"User-agent: fetchd\nUser-agent: *\nDisallow: /\n", TOKEN, "/x", D}, /* one group for both */
	/* no group at all */
	{"", TOKEN, "/x", A},
	{"Disallow: /\n", TOKEN, "/x", A},
	{"Disallow: /\nUser-agent: *\nDisallow: /y\n", TOKEN, "/x", A},
	{"Sitemap: https://example.com/sitemap.xml\n", TOKEN, "/x", A},
	/* consecutive user-agent lines are one group; a rule ends the run */
	{"User-agent: a\nUser-agent: fetchd\nUser-agent: b\nDisallow: /x\n", TOKEN, "/x", D},
	{"User-agent: a\n\nUser-agent: fetchd\n\nDisallow: /x\n", TOKEN, "/x", D},
	{"User-agent: fetchd\nDisallow: /a\nUser-agent: other\nDisallow: /b\n", TOKEN, "/b", A},
	{"User-agent: fetchd\nDisallow: /a\nUser-agent: other\nDisallow: /b\n", TOKEN, "/a", D},
	{"User-agent: fetchd\nCrawl-delay: 1\nUser-agent: other\nDisallow: /\n", TOKEN, "/x", A},
	/* other records neither end a group nor a user-agent run (RFC 9309 2.2.4) */
	{"User-agent: other\nSitemap: /s.xml\nUser-agent: fetchd\nDisallow: /b\n", TOKEN, "/b", D},
	{"User-agent: fetchd\nDisallow: /a\nSitemap: x\nDisallow: /b\n", TOKEN, "/b", D},
	{"User-agent: fetchd\nHost: example.com\nDisallow: /b\n", TOKEN, "/b", D},
	{"User-agent: fetchd\ngarbage line\nDisallow: /b\n", TOKEN, "/b", D},
	/* merged groups, rules from all of them, longest match across them */
	{MERGED, TOKEN, "/a/b", A},
	{MERGED, TOKEN, "/a/c", D},
	{MERGED, TOKEN, "/x", A},
	{MERGED, "x", "/x", D},
	{"User-agent: *\nDisallow: /a\nUser-agent: x\nDisallow: /\nUser-agent: *\nDisallow: /b\n",
	 TOKEN, "/b", D},
	/* an invalid product token only ever gets "*" */
	{"User-agent: fetchd2\nDisallow: /\nUser-agent: *\nDisallow: /s\n", "fetchd2", "/x", A},
	{"User-agent: fetchd2\nDisallow: /\nUser-agent: *\nDisallow: /s\n", "fetchd2", "/s", D},
	{"User-agent: \nDisallow: /\n", "", "/x", A},
};

/* ---- longest match, ties ---- */

static const struct case_ longest[] = {
	{"User-agent: *\nAllow: /p\nDisallow: /\n", TOKEN, "/page", A},
	{"User-agent: *\nDisallow: /\nAllow: /p\n", TOKEN, "/page", A},
	{"User-agent: *\nAllow: /folder\nDisallow: /folder\n", TOKEN, "/folder/page", A},
	{"User-agent: *\nDisallow: /folder\nAllow: /folder\n", TOKEN, "/folder/page", A},
	{"User-agent: *\nAllow: /page\nDisallow: /*.htm\n", TOKEN, "/page.htm", D},
	{"User-agent: *\nAllow: /page\nDisallow: /*.htm\n", TOKEN, "/page", A},
	{"User-agent: *\nAllow: /$\nDisallow: /\n", TOKEN, "/", A},
	{"User-agent: *\nAllow: /$\nDisallow: /\n", TOKEN, "", A},
	{"User-agent: *\nAllow: /$\nDisallow: /\n", TOKEN, "/page.htm", D},
	{"User-agent: *\nAllow: /*.php$\nDisallow: /\n", TOKEN, "/x.php", A},
	{"User-agent: *\nAllow: /*.php$\nDisallow: /\n", TOKEN, "/x.php?y", D},
	{"User-agent: *\nAllow: /a\nDisallow: /ab\n", TOKEN, "/abc", D},
	{"User-agent: *\nAllow: /a\nDisallow: /ab\n", TOKEN, "/ac", A},
	{"User-agent: *\nDisallow: /a\nAllow: /ab\n", TOKEN, "/abc", A},
	{"User-agent: *\nDisallow: /a\nAllow: /ab\n", TOKEN, "/ac", D},
	/* length is counted on decoded octets: "/caf%C3%A9" and "/caf\xc3\xa9" tie, allow wins */
	{"User-agent: *\nDisallow: /caf%C3%A9\nAllow: /caf\xc3\xa9\n", TOKEN, "/caf%c3%a9", A},
	{"User-agent: *\nAllow: /caf%C3%A9\nDisallow: /caf\xc3\xa9\n", TOKEN, "/caf\xc3\xa9", A},
	{"User-agent: *\nDisallow: /ab\nAllow: /%61\n", TOKEN, "/ab", D}, /* 3 octets beat 2 */
	/* '*' and '$' count: "/a*" (3) beats "/a" (2); "/a$" (3) beats "/a" */
	{"User-agent: *\nAllow: /a\nDisallow: /a*\n", TOKEN, "/ab", D},
	{"User-agent: *\nDisallow: /a\nAllow: /a$\n", TOKEN, "/a", A},
	{"User-agent: *\nDisallow: /a\nAllow: /a$\n", TOKEN, "/ab", D},
	/* duplicates are harmless */
	{"User-agent: *\nDisallow: /a\nDisallow: /a\nAllow: /a\nAllow: /a\n", TOKEN, "/a", A},
};

/* ---- wildcards and '$' ---- */

static const struct case_ wild[] = {
	{DIS("/*"), TOKEN, "/", D},
	{DIS("/*"), TOKEN, "/anything?at=all", D},
	{DIS("*"), TOKEN, "/x", D},
	{DIS("*"), TOKEN, "", D},
	{DIS("*$"), TOKEN, "/x", D},
	{DIS("/a*b*c"), TOKEN, "/axxbyyc", D},
	{DIS("/a*b*c"), TOKEN, "/abc", D},
	{DIS("/a*b*c"), TOKEN, "/abcdef", D},
	{DIS("/a*b*c"), TOKEN, "/acb", A},
	{DIS("/a**b"), TOKEN, "/axb", D},
	{DIS("/a**b"), TOKEN, "/ab", D},
	{DIS("/a**b"), TOKEN, "/a", A},
	{DIS("/*.gif$"), TOKEN, "/x.gif", D},
	{DIS("/*.gif$"), TOKEN, "/.gif", D},
	{DIS("/*.gif$"), TOKEN, "/x.gif.gif", D},
	{DIS("/*.gif$"), TOKEN, "/x.gif/", A},
	{DIS("/*.gif$"), TOKEN, "/x.gifs", A},
	{DIS("/*.gif$"), TOKEN, "/gif", A},
	{DIS("/a$"), TOKEN, "/a", D},
	{DIS("/a$"), TOKEN, "/ab", A},
	{DIS("/a$"), TOKEN, "/a?x", A},
	{DIS("/a$b"), TOKEN, "/a$b", D}, /* a '$' that is not last is literal */
	{DIS("/a$b"), TOKEN, "/a%24b/c", D},
	{DIS("/a$b"), TOKEN, "/ab", A},
	{DIS("/a$$"), TOKEN, "/a$", D},
	{DIS("/a$$"), TOKEN, "/a$x", A},
	{DIS("/a*$"), TOKEN, "/ab", D},
	{DIS("/a*$"), TOKEN, "/a", D},
	{DIS("$"), TOKEN, "/", A}, /* an empty anchored pattern is dropped */
	{DIS("/fish*.php"), TOKEN, "/fish.php", D},
	{DIS("/fish*.php"), TOKEN, "/fishheads/catfish.php?parameters", D},
	{DIS("/fish*.php"), TOKEN, "/Fish.PHP", A},
	{DIS("/fish*.php"), TOKEN, "/fish.ph", A},
	{DIS("/*ab*abc$"), TOKEN, "/abXabc", D},
	{DIS("/*ab*abc$"), TOKEN, "/ababc", D},
	{DIS("/*ab*abc$"), TOKEN, "/abc", A},
	{DIS("/*aa*aa$"), TOKEN, "/aaa", A},
	{DIS("/*aa*aa$"), TOKEN, "/aaaa", D},
	{DIS("/*aa*aa"), TOKEN, "/aaax", A},
	{DIS("/*aa*aa"), TOKEN, "/aaaax", D},
	{DIS("/*?"), TOKEN, "/a?b", D},
	{DIS("/*?"), TOKEN, "/ab", A},
	{DIS("/*?$"), TOKEN, "/a?", D},
	{DIS("/*?$"), TOKEN, "/a?b", A},
	{DIS("/x/*/y/*/z$"), TOKEN, "/x/1/y/2/z", D},
	{DIS("/x/*/y/*/z$"), TOKEN, "/x/1/y/2/z/", A},
	{DIS("/x/*/y/*/z$"), TOKEN, "/x/y/z", A},
	{DIS("/x/*/y/*/z$"), TOKEN, "/x/y/y/z/z", D},
};

/* ---- percent-encoding ---- */

static const struct case_ percent[] = {
	{DIS("/a%2fb"), TOKEN, "/a%2Fb", D},
	{DIS("/a%2Fb"), TOKEN, "/a/b", D},    /* decided: reserved characters decode too */
	{DIS("/a/b"), TOKEN, "/a%2fb", D},
	{DIS("/a?b"), TOKEN, "/a%3Fb", D},
	{DIS("/%7Euser"), TOKEN, "/~user/x", D},
	{DIS("/~user"), TOKEN, "/%7euser/x", D},
	{DIS("/a-b_c.d"), TOKEN, "/a%2Db%5Fc%2Ed", D},
	{DIS("/A"), TOKEN, "/%41", D},
	{DIS("/A"), TOKEN, "/%61", A},       /* case-sensitive after decoding */
	{DIS("/a"), TOKEN, "/A", A},
	/* a '%' without two hex digits is literal, and equals "%25" */
	{DIS("/a%zz"), TOKEN, "/a%zz", D},
	{DIS("/a%zz"), TOKEN, "/a%25zz", D},
	{DIS("/a%25zz"), TOKEN, "/a%zz", D},
	{DIS("/a%"), TOKEN, "/a%", D},
	{DIS("/a%4"), TOKEN, "/a%4", D},
	{DIS("/a%4"), TOKEN, "/a%41", A},
	{DIS("/a%4$"), TOKEN, "/a%4", D},
	/* no double decoding */
	{DIS("/a%2541"), TOKEN, "/aA", A},
	{DIS("/a%2541"), TOKEN, "/a%41", A},
	{DIS("/a%2541"), TOKEN, "/a%2541", D},
	{DIS("/a%41"), TOKEN, "/a%2541", A},
	/* non-ASCII both ways, either hex case */
	{DIS("/\xc3\xbc"), TOKEN, "/%C3%BC", D},
	{DIS("/\xc3\xbc"), TOKEN, "/%c3%bc", D},
	{DIS("/\xc3\xbc"), TOKEN, "/\xc3\xbc", D},
	{DIS("/%C3%BC"), TOKEN, "/\xc3\xbc/x", D},
	{DIS("/\xc3\xbc"), TOKEN, "/%C3%BD", A},
	{DIS("/\xc3"), TOKEN, "/%C3%BC", D}, /* octet prefix, like any other */
	/* a space inside a value is kept and matches "%20" */
	{DIS("/a b"), TOKEN, "/a%20b", D},
	{DIS("/a%20b"), TOKEN, "/a b", D},
	/* the star and dollar escapes are literal in rules, raw in targets */
	{DIS("/%2A"), TOKEN, "/x", A},
	{DIS("/%2A"), TOKEN, "/*", D},
	{DIS("/%2A$"), TOKEN, "/*", D},
	{DIS("/%2A$"), TOKEN, "/*x", A},
};

/* ---- rules that do not start with '/' or '*' ---- */

static void test_unrooted(void)
{
	static const char *drop[] = {
		DIS("private"), DIS("http://example.com/x"), DIS("a*"), DIS("?x"), DIS("%"), DIS("$"),
		DIS("%2A"), "User-agent: *\nAllow: x\nDisallow:\nAllow:\n",
	};
	for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++) {
		struct robots *r = robots_parse(drop[i], strlen(drop[i]), TOKEN);
		CHECK(r && robots_rule_count(r) == 0, "#%zu: %zu rules kept from %s", i,
		      r ? robots_rule_count(r) : 0, drop[i]);
		CHECK(r && robots_allowed(r, "/private", 8) && robots_allowed(r, "/*", 2), "#%zu", i);
		robots_free(r);
	}
	CHECK(!allowed(DIS("%2Fprivate"), TOKEN, "/private"), "%%2F decodes to a leading '/'");
	CHECK(!allowed(DIS("*private"), TOKEN, "/private"), "'*' first is kept");
	CHECK(allowed(DIS("private"), TOKEN, "private"), "targets always start with '/'");
}

/* ---- comments, BOM, line ends, keys, whitespace ---- */

static const struct case_ syntax[] = {
	{"\xEF\xBB\xBFUser-agent: *\nDisallow: /x\n", TOKEN, "/x", D},
	{"\xEF\xBB\xBF\nUser-agent: *\nDisallow: /x\n", TOKEN, "/x", D},
	{"\xEF\xBBUser-agent: *\nDisallow: /x\n", TOKEN, "/x", A}, /* half a BOM spoils the key */
	{"User-agent: *\n\xEF\xBB\xBF" "Disallow: /x\n", TOKEN, "/x", A},
	{"User-agent: *\r\nDisallow: /x\r\n", TOKEN, "/x", D},
	{"User-agent: *\r\nDisallow: /x\r\n", TOKEN, "/y", A},
	{"User-agent: *\rDisallow: /x\r", TOKEN, "/x", D},
	{"User-agent: *\rDisallow: /x", TOKEN, "/x", D},
	{"User-agent: *\r\n\r\n\n\rDisallow: /x", TOKEN, "/x", D},
	{"User-agent: *\nDisallow: /x", TOKEN, "/x", D}, /* no final line end */
	{"User-agent: *\nDisallow: /x\r", TOKEN, "/xy", D},
	{"User-agent: *\nDisallow: /x\r", TOKEN, "/y", A},
	/* comments */
	{"User-agent: * # c\nDisallow: /x # not /y\n", TOKEN, "/x", D},
	{"User-agent: * # c\nDisallow: /x # not /y\n", TOKEN, "/y", A},
	{"User-agent: *\n# Disallow: /\n", TOKEN, "/x", A},
	{"User-agent: *\nDisallow: /a#b\n", TOKEN, "/ab", D},
	{"User-agent: *\nDisallow: #/a\n", TOKEN, "/a", A},
	{"User-agent: fetchd#bot\nDisallow: /\n", TOKEN, "/a", D},
	{"# User-agent: fetchd\nUser-agent: *\nDisallow: /\n", TOKEN, "/a", D},
	{"User-agent: *\nDisallow: /a\n    # indented comment\nDisallow: /b\n", TOKEN, "/b", D},
	/* keys: case, whitespace, misspellings */
	{"USER-AGENT: *\nDISALLOW: /x\n", TOKEN, "/x", D},
	{"user-agent: *\ndisallow: /x\n", TOKEN, "/x", D},
	{"  User-agent  :  *  \n\tDisallow\t:\t/x\t\n", TOKEN, "/x", D},
	{"  User-agent  :  *  \n\tDisallow\t:\t/x\t\n", TOKEN, "/xy", D},
	{"User-agent: *\nDisallow :/x\n", TOKEN, "/x", D},
	{"useragent: *\nDisallow: /x\n", TOKEN, "/x", D},
	{"User Agent: *\nDisallow: /x\n", TOKEN, "/x", D},
	{"User-agent: *\nDissallow: /x\n", TOKEN, "/x", D},
	{"User-agent: *\ndisalow: /x\n", TOKEN, "/x", D},
	{"User-agent: *\nDisallaw: /x\n", TOKEN, "/x", D},
	{"User-agent: *\nDisallows: /x\n", TOKEN, "/x", A},
	{"User-agent: *\nDis allow: /x\n", TOKEN, "/x", A},
	{"User-agent: *\nDisallow /x\n", TOKEN, "/x", A}, /* no colon: not a record */
	{"User-agent *\nDisallow: /x\n", TOKEN, "/x", A},
	{"User-agent: *\nDisallow: /x:y\n", TOKEN, "/x:y", D},
	{"User-agent: *\nDisallow: /x:y\n", TOKEN, "/x", A},
	{"User-agent: *\n: /x\n", TOKEN, "/x", A},
	/* empty values */
	{"User-agent: *\nDisallow:\n", TOKEN, "/x", A},
	{"User-agent: *\nDisallow:    \n", TOKEN, "/x", A},
	{"User-agent: *\nDisallow: /\nAllow:\n", TOKEN, "/x", D},
	/* NUL bytes are ordinary octets (the tables use C strings, so see test_nul too) */
	{"User-agent: *\nDisallow: /%00\n", TOKEN, "/%00x", D},
	{"User-agent: *\nDisallow: /%00\n", TOKEN, "/", A},
};

static void test_nul(void)
{
	static const char txt[] = "User-agent: *\nDisallow: /a\0b\nDisallow: /c\n";
	CHECK(!allowed_n(txt, sizeof txt - 1, TOKEN, "/a\0bc", 5), "NUL in rule and target");
	CHECK(!allowed_n(txt, sizeof txt - 1, TOKEN, "/a%00b", 6), "NUL in rule, %%00 in target");
	CHECK(allowed_n(txt, sizeof txt - 1, TOKEN, "/ab", 3), "NUL is not nothing");
	CHECK(!allowed_n(txt, sizeof txt - 1, TOKEN, "/c", 2), "the line after");
	static const char txt2[] = "User-agent: *\0\nDisallow: /x\n";
	CHECK(allowed_n(txt2, sizeof txt2 - 1, TOKEN, "/x", 2), "\"*\\0\" is not \"*\"");
}

/* ---- /robots.txt, targets, allow_all, disallow_all ---- */

static void test_robots_txt_and_targets(void)
{
	static const struct case_ c[] = {
		{DIS("/"), TOKEN, "/robots.txt", A},
		{DIS("/robots.txt"), TOKEN, "/robots.txt", A},
		{DIS("/"), TOKEN, "/robots%2Etxt", A},
		{DIS("/"), TOKEN, "/robots.txt?x", D},
		{DIS("/"), TOKEN, "/ROBOTS.TXT", D},
		{DIS("/"), TOKEN, "/robots.txt/", D},
		{DIS("/"), TOKEN, "robots.txt", A}, /* read as "/robots.txt" */
		/* empty and path-less targets */
		{DIS("/$"), TOKEN, "", D},
		{DIS("/$"), TOKEN, "/", D},
		{DIS("/$"), TOKEN, "/?", A},
		{DIS("/?"), TOKEN, "?x", D},
		{DIS("/?x"), TOKEN, "?x", D},
		{DIS("/?y"), TOKEN, "?x", A},
		{DIS("/x"), TOKEN, "", A},
	};
	run_cases("robots_txt", c, sizeof c / sizeof c[0]);

	struct robots *a = robots_allow_all(), *d = robots_disallow_all();
	CHECK(a && d, "allocation");
	if (!a || !d)
		return;
	static const char *targets[] = {"/", "", "/x", "?q", "/robots.txt?x", "/a/b/c.gif"};
	for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
		CHECK(robots_allowed(a, targets[i], strlen(targets[i])), "allow_all %s", targets[i]);
		CHECK(!robots_allowed(d, targets[i], strlen(targets[i])), "disallow_all %s",
		      targets[i]);
	}
	CHECK(robots_allowed(d, "/robots.txt", 11), "disallow_all still allows /robots.txt");
	CHECK(robots_allowed(d, NULL, 0) == false, "disallow_all, empty target");
	CHECK(robots_crawl_delay_ms(a) == -1 && robots_crawl_delay_ms(d) == -1, "no crawl-delay");
	CHECK(robots_rule_count(a) == 0 && robots_rule_count(d) == 0, "no rules");
	CHECK(robots_memory_bytes(a) > 0 && robots_memory_bytes(a) < 256, "%zu",
	      robots_memory_bytes(a));
	robots_free(a);
	robots_free(d);
	robots_free(NULL);

	struct robots *r = robots_parse(NULL, 0, TOKEN);
	CHECK(r && robots_allowed(r, "/x", 2) && robots_crawl_delay_ms(r) == -1, "empty body");
	robots_free(r);
}

/* ---- crawl-delay ---- */

struct delay_case {
	const char *value;
	int64_t ms;
};

static const struct delay_case delays[] = {
	{"5", 5000},        {"2.5", 2500},     {"0.5", 500},      {".5", 500},       {"5.", 5000},
	{"0", 0},           {"0.0", 0},        {"1.2345", 1234},  {"0.001", 1},      {"0.0009", 0},
	{"60", 60000},      {"59.999", 59999}, {"61", 60000},     {"3600", 60000},   {"007", 7000},
	{"99999999999999999999999999", 60000},  {"1.99999999999999999999999", 1999},
	{"  7  ", 7000},    {"10 # comment", 10000},
	{"-1", -1},         {"1s", -1},        {"abc", -1},       {"", -1},          {"1e3", -1},
	{"1 2", -1},        {"+1", -1},        {".", -1},         {"1..2", -1},      {"1.2.3", -1},
	{"0x10", -1},       {"1,5", -1},       {"\xef\xbc\x91", -1},
};

static int64_t delay_of(const char *txt, const char *token)
{
	struct robots *r = robots_parse(txt, strlen(txt), token);
	int64_t ms = r ? robots_crawl_delay_ms(r) : -2;
	robots_free(r);
	return ms;
}

static void test_crawl_delay(void)
{
	char txt[256];
	for (size_t i = 0; i < sizeof delays / sizeof delays[0]; i++) {
		snprintf(txt, sizeof txt, "User-agent: *\nCrawl-delay: %s\nDisallow: /x\n",
			 delays[i].value);
		int64_t ms = delay_of(txt, TOKEN);
		CHECK(ms == delays[i].ms, "crawl-delay \"%s\": got %lld, want %lld", delays[i].value,
		      (long long)ms, (long long)delays[i].ms);
	}
	static const char per_group[] = "User-agent: *\nCrawl-delay: 1\n\n"
					"User-agent: fetchd\nCrawl-delay: 3\n"
					"User-agent: quiet\nDisallow: /\n";
	CHECK(delay_of(per_group, TOKEN) == 3000, "token group");
	CHECK(delay_of(per_group, "other") == 1000, "\"*\" group");
	CHECK(delay_of(per_group, "quiet") == -1, "a group without one does not inherit \"*\"'s");
	CHECK(delay_of("User-agent: fetchd\nCrawl-delay: 2\nUser-agent: x\nDisallow: /\n"
		       "User-agent: fetchd\nCrawl-delay: 4\n", TOKEN) == 4000, "merged: the largest");
	CHECK(delay_of("User-agent: fetchd\nCrawl-delay: 4\nCrawl-delay: 2\n", TOKEN) == 4000,
	      "largest");
	CHECK(delay_of("User-agent: fetchd\nCrawl-delay: x\nCrawl-delay: 2\n", TOKEN) == 2000,
	      "invalid then valid");
	CHECK(delay_of("User-agent: fetchd\nCrawl-delay: 2\nCrawl-delay: x\n", TOKEN) == 2000,
	      "valid then invalid");
	CHECK(delay_of("Crawl-delay: 5\nUser-agent: *\nDisallow: /\n", TOKEN) == -1,
	      "outside a group");
	CHECK(delay_of("User-agent: *\nCRAWL-DELAY : 1.5\n", TOKEN) == 1500, "key case and spaces");
	CHECK(delay_of("User-agent: *\r\nCrawl-delay: 1\r\n", TOKEN) == 1000, "CRLF");
	CHECK(delay_of("User-agent: *\nCrawl-delay: 1\n", "fetchd2") == 1000,
	      "invalid token gets \"*\"");
	CHECK(delay_of("", TOKEN) == -1, "empty");
}

/* ---- limits: 500 KiB, rule count, memory, long targets ---- */

static char *filler(size_t *len, const char *head, size_t total, const char *tail)
{
	size_t hn = strlen(head), tn = strlen(tail);
	char *s = malloc(total + tn + 1);
	if (!s)
		abort();
	memcpy(s, head, hn);
	memset(s + hn, '#', total - hn);
	for (size_t i = hn + 100; i < total; i += 101)
		s[i] = '\n';
	memcpy(s + total, tail, tn + 1);
	*len = total + tn;
	return s;
}

static void test_size_limit(void)
{
	size_t len;
	/* a rule after 500 KiB is ignored */
	char *s = filler(&len, "User-agent: *\nDisallow: /a\n", ROBOTS_MAX_BYTES + 10,
			 "\nDisallow: /b\n");
	CHECK(!allowed_n(s, len, TOKEN, "/a", 2), "rule before the limit");
	CHECK(allowed_n(s, len, TOKEN, "/b", 2), "rule after the limit");
	free(s);

	/* the line the cut falls in is dropped, not shortened: "Allow: /p" would allow "/pub" */
	s = filler(&len, "User-agent: *\nDisallow: /\n", ROBOTS_MAX_BYTES - 10,
		   "\nAllow: /public/x\nAllow: /\n");
	CHECK(!allowed_n(s, len, TOKEN, "/pub", 4), "a cut Allow line must not become \"Allow: /p\"");
	CHECK(!allowed_n(s, len, TOKEN, "/public/x", 9), "the cut line is dropped");
	CHECK(!allowed_n(s, len, TOKEN, "/x", 2), "and what follows");
	free(s);

	/* a rule ending exactly at the limit is kept when the next byte ends the line */
	char *t = malloc(ROBOTS_MAX_BYTES + 64);
	if (!t)
		abort();
	static const char rule[] = "\nDisallow: /end";
	size_t body = ROBOTS_MAX_BYTES - (sizeof rule - 1);
	memcpy(t, "User-agent: *\n", 14);
	memset(t + 14, '#', body - 14);
	memcpy(t + body, rule, sizeof rule - 1);
	memcpy(t + ROBOTS_MAX_BYTES, "\nDisallow: /more\n", 17);
	CHECK(!allowed_n(t, ROBOTS_MAX_BYTES + 17, TOKEN, "/end", 4), "last line before a line end");
	CHECK(allowed_n(t, ROBOTS_MAX_BYTES + 17, TOKEN, "/en", 3), "not shortened");
	CHECK(allowed_n(t, ROBOTS_MAX_BYTES + 17, TOKEN, "/more", 5), "after the limit");
	CHECK(!allowed_n(t, ROBOTS_MAX_BYTES, TOKEN, "/end", 4), "exactly ROBOTS_MAX_BYTES");
	memcpy(t + ROBOTS_MAX_BYTES, "x\nDisallow: /more\n", 18);
	CHECK(allowed_n(t, ROBOTS_MAX_BYTES + 18, TOKEN, "/end", 4), "the line goes on past it");
	CHECK(allowed_n(t, ROBOTS_MAX_BYTES + 18, TOKEN, "/endx", 5), "the line goes on past it");
	free(t);
}

static void test_rule_limit(void)
{
	size_t cap = 24 * 20000 + 64, len = 0;
	char *s = malloc(cap);
	if (!s)
		abort();
	len += (size_t)snprintf(s + len, cap - len, "User-agent: *\n");
	for (int i = 0; i < 20000; i++)
		len += (size_t)snprintf(s + len, cap - len, "Disallow: /r%d/\n", i);
	CHECK(len < ROBOTS_MAX_BYTES, "fits: %zu", len);
	struct robots *r = robots_parse(s, len, TOKEN);
	CHECK(r != NULL, "parse");
	if (r) {
		CHECK(robots_rule_count(r) == ROBOTS_MAX_RULES, "%zu rules", robots_rule_count(r));
		CHECK(!robots_allowed(r, "/r0/", 4), "first rule");
		CHECK(!robots_allowed(r, "/r9999/", 7), "last kept rule");
		CHECK(robots_allowed(r, "/r10000/", 8), "first dropped rule");
		CHECK(robots_allowed(r, "/r19999/", 8), "last dropped rule");
		CHECK(robots_memory_bytes(r) < 2 * len, "memory %zu for %zu bytes",
		      robots_memory_bytes(r), len);
		robots_free(r);
	}
	free(s);
}

/* The worst case for memory: stars between single octets, over the whole 500 KiB. */
static void test_memory_bound(void)
{
	size_t len = 0, cap = ROBOTS_MAX_BYTES + 64;
	char *s = malloc(cap);
	if (!s)
		abort();
	len += (size_t)snprintf(s + len, cap - len, "User-agent: *\n");
	while (len + 320 < ROBOTS_MAX_BYTES) {
		len += (size_t)snprintf(s + len, cap - len, "Allow:/");
		for (int i = 0; i < 150; i++) {
			s[len++] = '*';
			s[len++] = 'a';
		}
		s[len++] = '\n';
	}
	struct robots *r = robots_parse(s, len, TOKEN);
	size_t bound = 2 * (size_t)ROBOTS_MAX_BYTES + 16 * (size_t)ROBOTS_MAX_RULES + 64;
	CHECK(r && robots_memory_bytes(r) < bound, "memory %zu, bound %zu",
	      r ? robots_memory_bytes(r) : 0, bound);
	CHECK(r && robots_rule_count(r) > 1000, "rules %zu", r ? robots_rule_count(r) : 0);
	robots_free(r);

	/* one huge pattern is dropped (longer than any examined target) */
	memset(s, 'a', cap);
	memcpy(s, "User-agent: *\nDisallow: /", 25);
	r = robots_parse(s, 25 + ROBOTS_MAX_PATTERN_BYTES, TOKEN);
	CHECK(r && robots_rule_count(r) == 0, "over-long pattern dropped");
	robots_free(r);
	r = robots_parse(s, 25 + ROBOTS_MAX_PATTERN_BYTES - 1, TOKEN);
	CHECK(r && robots_rule_count(r) == 1, "longest pattern kept");
	robots_free(r);
	free(s);
}

#define GIF DIS("/*.gif$")

static void test_long_target(void)
{
	size_t n = 3 * ROBOTS_MAX_TARGET_BYTES;
	char *t = malloc(n + 1);
	if (!t)
		abort();
	t[0] = '/';
	memset(t + 1, 'x', n - 5);
	memcpy(t + n - 4, ".gif", 4);
	CHECK(!allowed_n(DIS("/xx"), strlen(DIS("/xx")), TOKEN, t, n), "prefix rule");
	CHECK(allowed_n(GIF, strlen(GIF), TOKEN, t, n), "anchored: the end is unknown");
	CHECK(!allowed_n(GIF, strlen(GIF), TOKEN, t + n - 10, 10), "short one");
	CHECK(allowed_n(DIS("/*y"), strlen(DIS("/*y")), TOKEN, t, n), "no y in the examined part");
	/* a target of exactly ROBOTS_MAX_TARGET_BYTES is whole */
	memcpy(t + ROBOTS_MAX_TARGET_BYTES - 4, ".gif", 4);
	CHECK(!allowed_n(GIF, strlen(GIF), TOKEN, t, ROBOTS_MAX_TARGET_BYTES), "exactly the limit");
	/* an encoded target decodes to less, so more of it fits */
	size_t m = 0;
	for (; m + 3 <= n - 30; m += 3)
		memcpy(t + m, "%2F", 3);
	memcpy(t + m, ".gif", 4);
	CHECK(!allowed_n(GIF, strlen(GIF), TOKEN, t, m + 4), "%zu encoded bytes", m + 4);
	free(t);
}

/* ---- pathological patterns ---- */

static void test_pathological(void)
{
	size_t n = ROBOTS_MAX_TARGET_BYTES;
	char *t = malloc(n);
	if (!t)
		abort();
	t[0] = '/';
	memset(t + 1, 'a', n - 1);
	static const char *pats[] = {
		DIS("/*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b"),
		DIS("/*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b$"),
		DIS("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*ab*"),
		DIS("/*aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"),
		DIS("/*a*aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab$"),
	};
	double t0 = now_s();
	for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++)
		for (int rep = 0; rep < 100; rep++)
			CHECK(allowed_n(pats[i], strlen(pats[i]), TOKEN, t, n), "pattern %zu", i);
	double single = now_s() - t0;

	/* ROBOTS_MAX_RULES such rules, all tried against one long target */
	size_t cap = 64 * ROBOTS_MAX_RULES + 64, len = 0;
	char *s = malloc(cap);
	if (!s)
		abort();
	len += (size_t)snprintf(s + len, cap - len, "User-agent: *\n");
	for (unsigned i = 0; i < ROBOTS_MAX_RULES; i++)
		len += (size_t)snprintf(s + len, cap - len, "Disallow: /*a*a*a*a*a*a*a*a*b%u\n", i);
	struct robots *r = robots_parse(s, len, TOKEN);
	CHECK(r && robots_rule_count(r) == ROBOTS_MAX_RULES, "rules");
	t0 = now_s();
	for (int rep = 0; r && rep < 3; rep++)
		CHECK(robots_allowed(r, t, n), "many rules");
	double many = (now_s() - t0) / 3;
	robots_free(r);
	free(s);
	free(t);
	printf("pathological: 500 single-rule checks %.3f s, one check against %u rules %.3f s\n",
	       single, ROBOTS_MAX_RULES, many);
	CHECK(single < 2.0, "%.3f s", single);
	CHECK(many < 2.0, "%.3f s", many);
}

/* ---- cross-check against a reference matcher ---- */

static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

#define REF_WILD (-1)

/* Decodes s into octets (and REF_WILD for '*' when pattern); returns the count. */
static size_t ref_decode(const char *s, size_t n, int *out, bool pattern)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (pattern && s[i] == '*')
			out[o++] = REF_WILD;
		else if (s[i] == '%' && i + 2 < n && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
			out[o++] = hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]);
			i += 2;
		} else
			out[o++] = (unsigned char)s[i];
	}
	return o;
}

/* Plain DP glob: m[i][j] = pattern[0..i) matches target[0..j). */
static bool ref_glob(const int *p, size_t pn, bool anchored, const int *t, size_t tn)
{
	static bool m[64][64];
	memset(m, 0, sizeof m);
	m[0][0] = true;
	for (size_t i = 1; i <= pn; i++)
		for (size_t j = 0; j <= tn; j++) {
			if (p[i - 1] == REF_WILD)
				m[i][j] = m[i - 1][j] || (j > 0 && m[i][j - 1]);
			else
				m[i][j] = j > 0 && m[i - 1][j - 1] && p[i - 1] == t[j - 1];
		}
	if (anchored)
		return m[pn][tn];
	for (size_t j = 0; j <= tn; j++)
		if (m[pn][j])
			return true;
	return false;
}

struct ref_rule {
	char text[32];
	bool allow;
};

/* -1: the rule is dropped or does not match; else its priority. */
static long ref_priority(const char *pat, const int *t, size_t tn)
{
	size_t n = strlen(pat);
	bool anchored = n > 0 && pat[n - 1] == '$';
	int p[64], q[64];
	size_t pn = ref_decode(pat, anchored ? n - 1 : n, p, true), qn = 0, stars = 0;
	for (size_t i = 0; i < pn; i++) { /* collapse runs of '*' */
		if (p[i] == REF_WILD && qn > 0 && q[qn - 1] == REF_WILD)
			continue;
		stars += p[i] == REF_WILD;
		q[qn++] = p[i];
	}
	if (qn == 0 || (q[0] != '/' && q[0] != REF_WILD))
		return -1;
	if (!ref_glob(q, qn, anchored, t, tn))
		return -1;
	return (long)(qn - stars) + (long)stars + (anchored ? 1 : 0);
}

static bool ref_allowed(const struct ref_rule *rules, size_t nr, const char *target)
{
	int t[64];
	size_t tn = 0;
	if (target[0] != '/')
		t[tn++] = '/';
	tn += ref_decode(target, strlen(target), t + tn, false);
	long best = -1;
	bool verdict = true;
	for (size_t i = 0; i < nr; i++) {
		long p = ref_priority(rules[i].text, t, tn);
		if (p > best || (p == best && p >= 0 && rules[i].allow)) {
			best = p;
			verdict = rules[i].allow;
		}
	}
	return verdict;
}

static void random_piece(char *out, size_t max, bool pattern)
{
	static const char *const atoms[] = {"/", "a",  "b", "%61", "%2F", "%2f",
					    "%", "*", "**", "$",  "ab",  "%2A"};
	size_t n = 0, natoms = sizeof atoms / sizeof atoms[0];
	if (rng() % 4 != 0)
		out[n++] = '/';
	size_t count = rng() % 7;
	for (size_t i = 0; i < count; i++) {
		const char *a = atoms[rng() % natoms];
		if (!pattern && (a[0] == '*' || a[0] == '$'))
			a = (rng() & 1) ? "*" : "$"; /* raw '*' and '$' in targets are literal */
		if (n + strlen(a) >= max)
			break;
		memcpy(out + n, a, strlen(a));
		n += strlen(a);
	}
	out[n] = '\0';
}

static void test_cross_check(void)
{
	rng_state = 0x9e3779b97f4a7c15ull;
	int mismatches = 0, outcome[2] = {0, 0};
	for (int iter = 0; iter < 20000; iter++) {
		struct ref_rule rules[3];
		size_t nr = 1 + rng() % 3;
		char txt[256];
		size_t len = (size_t)snprintf(txt, sizeof txt, "User-agent: *\n");
		for (size_t i = 0; i < nr; i++) {
			random_piece(rules[i].text, 24, true);
			rules[i].allow = rng() & 1;
			len += (size_t)snprintf(txt + len, sizeof txt - len, "%s: %s\n",
						rules[i].allow ? "Allow" : "Disallow", rules[i].text);
		}
		char target[32];
		random_piece(target, 24, false);
		bool want = ref_allowed(rules, nr, target);
		bool got = allowed(txt, TOKEN, target);
		outcome[got]++;
		if (got != want && mismatches++ < 10)
			CHECK(got == want, "target \"%s\": got %d, reference %d\n%s", target, got,
			      want, txt);
	}
	CHECK(mismatches == 0, "%d mismatches with the reference matcher", mismatches);
	CHECK(outcome[0] > 3000 && outcome[1] > 3000, "%d disallowed, %d allowed", outcome[0],
	      outcome[1]);
}

/* ---- random bytes ---- */

static void test_random_bytes(void)
{
	static const char *const words[] = {
		"User-agent:", "user-agent: *", "fetchd", "Allow:", "Disallow:", "Crawl-delay:",
		"*", "$", "/", "%", "%2", "%41", "#", "\n", "\r", "\r\n", " ", "\t", ":",
		"\xEF\xBB\xBF", "0.5", "9999",
	};
	rng_state = 12345;
	char buf[2048];
	char target[64];
	int bad = 0;
	for (int iter = 0; iter < 5000; iter++) {
		size_t len = rng() % sizeof buf;
		for (size_t i = 0; i < len;) {
			if (rng() % 3 == 0) {
				buf[i++] = (char)rng();
				continue;
			}
			const char *w = words[rng() % (sizeof words / sizeof words[0])];
			size_t wn = strlen(w);
			if (wn > len - i)
				wn = len - i;
			memcpy(buf + i, w, wn);
			i += wn;
		}
		struct robots *r = robots_parse(len ? buf : NULL, len, (iter & 1) ? TOKEN : "FetchD");
		if (!r) {
			bad++;
			continue;
		}
		for (int k = 0; k < 8; k++) {
			size_t tn = rng() % sizeof target;
			for (size_t i = 0; i < tn; i++)
				target[i] = (k & 1) ? "/a*$%2F?"[rng() % 8] : (char)rng();
			(void)robots_allowed(r, tn ? target : NULL, tn);
		}
		int64_t ms = robots_crawl_delay_ms(r);
		if (!robots_allowed(r, "/robots.txt", 11) || ms < -1 ||
		    ms > ROBOTS_MAX_CRAWL_DELAY_MS ||
		    robots_memory_bytes(r) > 2 * len + 16 * robots_rule_count(r) + 64)
			bad++;
		robots_free(r);
	}
	CHECK(bad == 0, "%d random inputs broke an invariant", bad);
}

static void test_token_valid(void)
{
	CHECK(robots_token_valid("fetchd"), "fetchd");
	CHECK(robots_token_valid("Fetch-D_bot"), "letters, '-' and '_'");
	CHECK(!robots_token_valid(""), "empty");
	CHECK(!robots_token_valid(NULL), "NULL");
	CHECK(!robots_token_valid("fetchd2"), "digit");
	CHECK(!robots_token_valid("fetchd/1.0"), "version");
	CHECK(!robots_token_valid("*"), "star");
	CHECK(!robots_token_valid("fetch d"), "space");
	char big[ROBOTS_MAX_TOKEN_BYTES + 2];
	memset(big, 'a', sizeof big);
	big[ROBOTS_MAX_TOKEN_BYTES] = '\0';
	CHECK(robots_token_valid(big), "longest");
	big[ROBOTS_MAX_TOKEN_BYTES] = 'a';
	big[ROBOTS_MAX_TOKEN_BYTES + 1] = '\0';
	CHECK(!robots_token_valid(big), "too long");
}

int main(void)
{
	RUN(rfc_5_1);
	RUN(rfc_5_2);
	RUN(rfc_2_2_1);
	RUN(rfc_2_2_2);
	RUN(rfc_2_2_3);
	RUN(groups);
	RUN(longest);
	RUN(wild);
	RUN(percent);
	RUN(syntax);
	test_unrooted();
	test_nul();
	test_robots_txt_and_targets();
	test_crawl_delay();
	test_size_limit();
	test_rule_limit();
	test_memory_bound();
	test_long_target();
	test_pathological();
	test_cross_check();
	test_random_bytes();
	test_token_valid();
	return test_report();
}

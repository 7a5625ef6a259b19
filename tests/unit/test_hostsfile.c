/* test_hostsfile.c - the /etc/hosts parser and lookup: Debian's stock file, aliases, comments at line
 * end, a name on several lines (order, duplicates, the cap of 8), family filtering, malformed and
 * scoped lines skipped and counted, CRLF, no trailing newline, empty input, NUL bytes, and the size
 * and line limits. */
#include "daemon/hostsfile.h"
#include "tests/unit/test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char err[256];

static struct hostsfile *parse_n(const char *text, size_t len)
{
	struct hostsfile *h = NULL;
	err[0] = '\0';
	int rc = hostsfile_parse(&h, text, len, err, sizeof err);
	if (rc != 0 || !h) {
		fprintf(stderr, "parse failed: %d %s\n", rc, err);
		exit(2);
	}
	return h;
}

static struct hostsfile *parse(const char *text)
{
	return parse_n(text, strlen(text));
}

/* name's addresses for family as text, "a b c" in order, "" when none. */
static const char *lookup(const struct hostsfile *h, const char *name, int family)
{
	static char out[1024];
	union sockaddr_any a[16];
	int n = hostsfile_lookup(h, name, family, a, 16);
	char buf[INET6_ADDRSTRLEN];

	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		const void *src = a[i].sa.sa_family == AF_INET ? (const void *)&a[i].in4.sin_addr
							       : (const void *)&a[i].in6.sin6_addr;
		unsigned port = ntohs(a[i].sa.sa_family == AF_INET ? a[i].in4.sin_port : a[i].in6.sin6_port);
		if (!inet_ntop(a[i].sa.sa_family, src, buf, sizeof buf) || port != 0)
			snprintf(buf, sizeof buf, "BAD");
		snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", i ? " " : "", buf);
	}
	return out;
}

#define LOOKS(h, name, family, want)                                                              \
	do {                                                                                      \
		const char *got_ = lookup(h, name, family);                                       \
		CHECK(strcmp(got_, want) == 0, "%s/%d: got '%s', want '%s'", name, family, got_, \
		      want);                                                                      \
	} while (0)

static void test_debian(void)
{
	struct hostsfile *h = parse("127.0.0.1\tlocalhost\n"
				    "127.0.1.1\tdebian.example.org\tdebian\n"
				    "\n"
				    "# The following lines are desirable for IPv6 capable hosts\n"
				    "::1     localhost ip6-localhost ip6-loopback\n"
				    "ff02::1 ip6-allnodes\n"
				    "ff02::2 ip6-allrouters\n");
	struct hostsfile_stats st = hostsfile_stats(h);

	LOOKS(h, "localhost", AF_UNSPEC, "127.0.0.1 ::1");
	LOOKS(h, "localhost", AF_INET, "127.0.0.1");
	LOOKS(h, "localhost", AF_INET6, "::1");
	LOOKS(h, "debian", AF_UNSPEC, "127.0.1.1");
	LOOKS(h, "debian.example.org", AF_UNSPEC, "127.0.1.1");
	LOOKS(h, "debian", AF_INET6, "");
	LOOKS(h, "ip6-localhost", AF_UNSPEC, "::1");
	LOOKS(h, "ip6-loopback", AF_INET, "");
	LOOKS(h, "ip6-allnodes", AF_INET6, "ff02::1");
	LOOKS(h, "ip6-allrouters", AF_UNSPEC, "ff02::2");
	LOOKS(h, "example.org", AF_UNSPEC, "");
	LOOKS(h, "local", AF_UNSPEC, "");
	LOOKS(h, "LocalHost", AF_UNSPEC, "127.0.0.1 ::1");
	CHECK(st.names == 7, "names %u", st.names);
	CHECK(st.addresses == 8, "addresses %u", st.addresses);
	CHECK(st.skipped == 0 && st.malformed == 0 && st.scoped == 0 && st.first_malformed == 0,
	      "skipped %u", st.skipped);
	hostsfile_free(h);
}

static void test_aliases_comments(void)
{
	struct hostsfile *h = parse("  10.0.0.1   Web.Example.COM  web   www  # the web server\n"
				    "10.0.0.2 db#primary database\n"
				    "\t10.0.0.3\tcache\t#\tnot-a-name\n"
				    "#10.0.0.4 commented-out\n"
				    "   # indented comment\n"
				    "10.0.0.5 # no name before the comment\n");
	struct hostsfile_stats st = hostsfile_stats(h);

	LOOKS(h, "web.example.com", AF_UNSPEC, "10.0.0.1");
	LOOKS(h, "WEB.EXAMPLE.COM", AF_UNSPEC, "10.0.0.1");
	LOOKS(h, "web", AF_UNSPEC, "10.0.0.1");
	LOOKS(h, "www", AF_INET, "10.0.0.1");
	LOOKS(h, "db", AF_UNSPEC, "10.0.0.2");
	LOOKS(h, "db#primary", AF_UNSPEC, "");
	LOOKS(h, "primary", AF_UNSPEC, "");
	LOOKS(h, "database", AF_UNSPEC, "");
	LOOKS(h, "cache", AF_UNSPEC, "10.0.0.3");
	LOOKS(h, "not-a-name", AF_UNSPEC, "");
	LOOKS(h, "commented-out", AF_UNSPEC, "");
	LOOKS(h, "the", AF_UNSPEC, "");
	CHECK(st.names == 5, "names %u", st.names);
	CHECK(st.malformed == 1 && st.first_malformed == 6, "malformed %u first %u", st.malformed,
	      st.first_malformed);
	hostsfile_free(h);
}

static void test_duplicates(void)
{
	struct hostsfile *h = parse("192.0.2.1 multi\n"
				    "2001:db8::1 multi\n"
				    "192.0.2.2 other MULTI\n"
				    "192.0.2.1 multi again\n" /* already has it: not twice */
				    "2001:db8::2 multi multi\n"
				    "192.0.2.3 multi\n"
				    "192.0.2.4 multi\n"
				    "192.0.2.5 multi\n"
				    "192.0.2.6 multi\n" /* the 8th */
				    "192.0.2.7 multi\n" /* over the cap */
				    "2001:db8::3 multi\n");
	struct hostsfile_stats st = hostsfile_stats(h);
	union sockaddr_any a[8];

	LOOKS(h, "multi", AF_UNSPEC,
	      "192.0.2.1 2001:db8::1 192.0.2.2 2001:db8::2 192.0.2.3 192.0.2.4 192.0.2.5 192.0.2.6");
	LOOKS(h, "multi", AF_INET, "192.0.2.1 192.0.2.2 192.0.2.3 192.0.2.4 192.0.2.5 192.0.2.6");
	LOOKS(h, "multi", AF_INET6, "2001:db8::1 2001:db8::2");
	LOOKS(h, "other", AF_UNSPEC, "192.0.2.2");
	LOOKS(h, "again", AF_UNSPEC, "192.0.2.1");
	CHECK(st.names == 3, "names %u", st.names);
	CHECK(st.dropped == 2, "dropped %u", st.dropped);
	CHECK(st.addresses == 10, "addresses %u", st.addresses);

	/* max bounds what is written, family filtering first. */
	CHECK(hostsfile_lookup(h, "multi", AF_UNSPEC, a, 3) == 3, "max 3");
	CHECK(a[2].sa.sa_family == AF_INET && ntohl(a[2].in4.sin_addr.s_addr) == 0xc0000202,
	      "third address");
	CHECK(hostsfile_lookup(h, "multi", AF_INET6, a, 1) == 1 && a[0].sa.sa_family == AF_INET6,
	      "max 1 IPv6");
	CHECK(hostsfile_lookup(h, "multi", AF_UNSPEC, a, 0) == 0, "max 0");
	hostsfile_free(h);
}

static void test_lookup_args(void)
{
	struct hostsfile *h = parse("192.0.2.1 a\n");
	union sockaddr_any a[2];
	char longname[300];

	CHECK(hostsfile_lookup(h, "a", AF_UNIX, a, 2) == -EINVAL, "AF_UNIX accepted");
	CHECK(hostsfile_lookup(h, "a", 12345, a, 2) == -EINVAL, "family 12345 accepted");
	CHECK(hostsfile_lookup(NULL, "a", AF_UNSPEC, a, 2) == 0, "NULL hosts file");
	CHECK(hostsfile_lookup(h, NULL, AF_UNSPEC, a, 2) == 0, "NULL name");
	CHECK(hostsfile_lookup(h, "", AF_UNSPEC, a, 2) == 0, "empty name");
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	CHECK(hostsfile_lookup(h, longname, AF_UNSPEC, a, 2) == 0, "300-byte name");
	CHECK(hostsfile_lookup(h, "a", AF_UNSPEC, a, 2) == 1, "a");
	struct hostsfile_stats none = hostsfile_stats(NULL);
	CHECK(none.names == 0 && none.skipped == 0, "stats of NULL");
	hostsfile_free(h);
	hostsfile_free(NULL);
}

static void test_malformed(void)
{
	char name255[256], name256[257], many[2048], text[8192];

	memset(name255, 'n', 255);
	name255[255] = '\0';
	memset(name256, 'm', 256);
	name256[256] = '\0';
	strcpy(many, "192.0.2.99");
	for (int i = 0; i < HOSTSFILE_MAX_NAMES_PER_LINE + 1; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), " n%d", i);
	snprintf(text, sizeof text,
		 "192.0.2.1 good1\n"      /* 1 */
		 "999.1.1.1 bad\n"        /* 2: octet out of range */
		 "1.2.3 bad\n"            /* 3: three octets */
		 "127.1 bad\n"            /* 4: inet_aton shorthand */
		 "192.0.2.2\n"            /* 5: no name */
		 "justaname\n"            /* 6: no address */
		 "::g bad\n"              /* 7 */
		 "1:2:3:4:5:6:7:8:9 bad\n"/* 8 */
		 "0x7f.0.0.1 bad\n"       /* 9 */
		 "192.0.2.3 ok bad\x01\n" /* 10: control byte in a name */
		 "192.0.2.4 %s\n"         /* 11: 256-byte name */
		 "%s\n"                   /* 12: 65 names */
		 "192.0.2.5 %s good2\n"   /* 13: 255-byte name is fine */
		 "192.0.2.6 good3 # 1.2.3.4 x\n" /* 14 */
		 "1234567890123456789012345678901234567890123456789012345678901234567890 bad\n" /* 15 */
		 "192.0.2.7,192.0.2.8 bad\n" /* 16 */
		 "2001:db8::1 good4\n",   /* 17 */
		 name256, many, name255);
	struct hostsfile *h = parse(text);
	struct hostsfile_stats st = hostsfile_stats(h);

	CHECK(st.malformed == 13, "malformed %u", st.malformed);
	CHECK(st.skipped == 13 && st.scoped == 0, "skipped %u scoped %u", st.skipped, st.scoped);
	CHECK(st.first_malformed == 2, "first malformed %u", st.first_malformed);
	CHECK(st.names == 5, "names %u", st.names);
	LOOKS(h, "good1", AF_UNSPEC, "192.0.2.1");
	LOOKS(h, "good2", AF_UNSPEC, "192.0.2.5");
	LOOKS(h, name255, AF_UNSPEC, "192.0.2.5");
	LOOKS(h, "good3", AF_UNSPEC, "192.0.2.6");
	LOOKS(h, "good4", AF_UNSPEC, "2001:db8::1");
	LOOKS(h, "bad", AF_UNSPEC, "");
	LOOKS(h, "ok", AF_UNSPEC, "");
	LOOKS(h, "n0", AF_UNSPEC, "");
	LOOKS(h, "justaname", AF_UNSPEC, "");
	hostsfile_free(h);

	/* Exactly HOSTSFILE_MAX_NAMES_PER_LINE names is fine. */
	strcpy(many, "192.0.2.99");
	for (int i = 0; i < HOSTSFILE_MAX_NAMES_PER_LINE; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), " n%d", i);
	h = parse(many);
	CHECK(hostsfile_stats(h).names == HOSTSFILE_MAX_NAMES_PER_LINE, "names %u",
	      hostsfile_stats(h).names);
	LOOKS(h, "n63", AF_INET, "192.0.2.99");
	hostsfile_free(h);
}

static void test_scoped(void)
{
	struct hostsfile *h = parse("fe80::1%eth0 router\n"
				    "fe80::2%2 router2\n"
				    "fe80::3 router\n"
				    "fe80::4% empty-zone\n"   /* malformed */
				    "192.0.2.1%eth0 v4-zone\n" /* malformed */
				    "fe80::zz%eth0 bad-zone\n"); /* malformed */
	struct hostsfile_stats st = hostsfile_stats(h);

	LOOKS(h, "router", AF_UNSPEC, "fe80::3");
	LOOKS(h, "router2", AF_UNSPEC, "");
	LOOKS(h, "empty-zone", AF_UNSPEC, "");
	LOOKS(h, "v4-zone", AF_UNSPEC, "");
	CHECK(st.scoped == 2, "scoped %u", st.scoped);
	CHECK(st.malformed == 3 && st.first_malformed == 4, "malformed %u first %u", st.malformed,
	      st.first_malformed);
	CHECK(st.skipped == 5, "skipped %u", st.skipped);
	CHECK(st.names == 1, "names %u", st.names);
	hostsfile_free(h);
}

static void test_line_endings(void)
{
	struct hostsfile *h = parse("127.0.0.1 a b\r\n::1 a\r\n\r\n# c\r\n192.0.2.9 last");
	struct hostsfile_stats st = hostsfile_stats(h);

	LOOKS(h, "a", AF_UNSPEC, "127.0.0.1 ::1");
	LOOKS(h, "b", AF_UNSPEC, "127.0.0.1");
	LOOKS(h, "b\r", AF_UNSPEC, "");
	LOOKS(h, "last", AF_UNSPEC, "192.0.2.9"); /* no trailing newline */
	CHECK(st.names == 3 && st.skipped == 0, "names %u skipped %u", st.names, st.skipped);
	hostsfile_free(h);

	/* A NUL byte inside a line makes it malformed; the next line still counts. */
	static const char nul[] = "192.0.2.1 x\0y\n192.0.2.2\0 z\n192.0.2.3 w\n";
	h = parse_n(nul, sizeof nul - 1);
	LOOKS(h, "x", AF_UNSPEC, "");
	LOOKS(h, "z", AF_UNSPEC, "");
	LOOKS(h, "w", AF_UNSPEC, "192.0.2.3");
	CHECK(hostsfile_stats(h).malformed == 2, "malformed %u", hostsfile_stats(h).malformed);
	hostsfile_free(h);

	/* Lines that are only CRLF are blank. */
	h = parse("\r\n\r\n");
	CHECK(hostsfile_stats(h).names == 0 && hostsfile_stats(h).skipped == 0, "CRLF blank lines");
	hostsfile_free(h);
}

static void test_empty(void)
{
	struct hostsfile *h = NULL;

	CHECK(hostsfile_parse(&h, NULL, 0, err, sizeof err) == 0 && h, "NULL, 0 refused");
	CHECK(hostsfile_stats(h).names == 0, "names in empty input");
	LOOKS(h, "localhost", AF_UNSPEC, "");
	hostsfile_free(h);
	h = parse("\n\n   \n\t\n# only a comment\n");
	struct hostsfile_stats st = hostsfile_stats(h);
	CHECK(st.names == 0 && st.skipped == 0 && st.addresses == 0, "blank input not empty");
	hostsfile_free(h);
	/* err may be left out. */
	h = NULL;
	CHECK(hostsfile_parse(&h, "192.0.2.1 q", 11, NULL, 0) == 0 && h, "no err buffer");
	LOOKS(h, "q", AF_UNSPEC, "192.0.2.1");
	hostsfile_free(h);
}

static void test_limits(void)
{
	size_t big = HOSTSFILE_MAX_BYTES + 1;
	char *text = malloc(big);
	struct hostsfile *h = (struct hostsfile *)1;

	if (!text) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	/* One comment line of 64 MiB + 1 byte: refused; 64 MiB: fine. */
	memset(text, '#', big);
	CHECK(hostsfile_parse(&h, text, big, err, sizeof err) == -EFBIG, "64 MiB + 1 accepted");
	CHECK(h == NULL, "out not cleared");
	CHECK(strstr(err, "too large") != NULL, "err '%s'", err);
	CHECK(hostsfile_parse(&h, text, big - 1, err, sizeof err) == 0 && h, "64 MiB refused: %s", err);
	hostsfile_free(h);

	/* 100,000 lines, each a distinct name: all there. */
	size_t len = 0;
	for (unsigned i = 0; i < HOSTSFILE_MAX_LINES; i++)
		len += (size_t)sprintf(text + len, "10.%u.%u.%u h%u\n", i >> 16, (i >> 8) & 255, i & 255, i);
	h = parse_n(text, len);
	CHECK(hostsfile_stats(h).names == HOSTSFILE_MAX_LINES, "names %u", hostsfile_stats(h).names);
	LOOKS(h, "h0", AF_INET, "10.0.0.0");
	LOOKS(h, "H99999", AF_INET, "10.1.134.159");
	LOOKS(h, "h100000", AF_INET, "");
	hostsfile_free(h);
	/* One more line, even without its newline: refused. */
	memcpy(text + len, "10.9.9.9 x", 10);
	h = (struct hostsfile *)1;
	CHECK(hostsfile_parse(&h, text, len + 10, err, sizeof err) == -E2BIG && h == NULL,
	      "100,001 lines accepted");
	CHECK(strstr(err, "100001 lines") != NULL, "err '%s'", err);
	/* 100,001 empty lines too; 100,000 of them are fine. */
	memset(text, '\n', HOSTSFILE_MAX_LINES + 1);
	CHECK(hostsfile_parse(&h, text, HOSTSFILE_MAX_LINES + 1, err, sizeof err) == -E2BIG,
	      "100,001 blank lines accepted");
	CHECK(hostsfile_parse(&h, text, HOSTSFILE_MAX_LINES, err, sizeof err) == 0 && h,
	      "100,000 blank lines refused");
	hostsfile_free(h);
	free(text);
}

int main(void)
{
	test_debian();
	test_aliases_comments();
	test_duplicates();
	test_lookup_args();
	test_malformed();
	test_scoped();
	test_line_endings();
	test_empty();
	test_limits();
	return test_report();
}

/* test_addrpolicy.c - the address policy: every built-in blocked range at its first and last address
 * and just outside, in plain and IPv4-mapped form; the metadata address; NAT64 and 6to4; allow and
 * deny lists and their order; list parsing errors; and the CIDR helpers underneath (conf/cidr.c). */
#include "conf/cidr.h"
#include "daemon/addrpolicy.h"
#include "tests/unit/test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static char why[ADDRPOLICY_WHY_MAX];
static char err[256];

/* The address text (IPv6 when it has a colon) as a sockaddr; exits on a typo in the test. */
static const struct sockaddr *sa_of(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	int ok;

	memset(ss, 0, sizeof *ss);
	if (strchr(text, ':')) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(80);
		ok = inet_pton(AF_INET6, text, &in6->sin6_addr);
	} else {
		in->sin_family = AF_INET;
		in->sin_port = htons(80);
		ok = inet_pton(AF_INET, text, &in->sin_addr);
	}
	if (ok != 1) {
		fprintf(stderr, "test bug: bad address %s\n", text);
		exit(2);
	}
	return (const struct sockaddr *)ss;
}

static bool allowed(const struct addrpolicy *p, const char *addr)
{
	struct sockaddr_storage ss;

	memset(why, 'x', sizeof why);
	return addrpolicy_allowed(p, sa_of(addr, &ss), why, sizeof why);
}

static int parse(struct addrpolicy *p, const char *allow, const char *deny)
{
	err[0] = '\0';
	return addrpolicy_parse(p, allow, deny, err, sizeof err);
}

/* addr under p: allowed with why "" when want is NULL, else refused with exactly that why. */
static void expect(const struct addrpolicy *p, const char *addr, const char *want)
{
	bool ok = allowed(p, addr);

	if (!want)
		CHECK(ok && why[0] == '\0', "%s refused: %s", addr, why);
	else
		CHECK(!ok && strcmp(why, want) == 0, "%s: got %s '%s', want '%s'", addr, ok ? "allowed" : "refused",
		      why, want);
}

/* ---- built-in ranges, default policy ---- */

static const struct builtin_case {
	const char *addr, *range, *name; /* range NULL: allowed */
} builtin_cases[] = {
	{ "0.0.0.0", "0.0.0.0/8", "this network" },
	{ "0.255.255.255", "0.0.0.0/8", "this network" },
	{ "1.0.0.0", NULL, NULL },
	{ "9.255.255.255", NULL, NULL },
	{ "10.0.0.0", "10.0.0.0/8", "private (RFC 1918)" },
	{ "10.255.255.255", "10.0.0.0/8", "private (RFC 1918)" },
	{ "11.0.0.0", NULL, NULL },
	{ "100.63.255.255", NULL, NULL },
	{ "100.64.0.0", "100.64.0.0/10", "carrier-grade NAT" },
	{ "100.127.255.255", "100.64.0.0/10", "carrier-grade NAT" },
	{ "100.128.0.0", NULL, NULL },
	{ "126.255.255.255", NULL, NULL },
	{ "127.0.0.0", "127.0.0.0/8", "loopback" },
	{ "127.0.0.1", "127.0.0.0/8", "loopback" },
	{ "127.255.255.255", "127.0.0.0/8", "loopback" },
	{ "128.0.0.0", NULL, NULL },
	{ "169.253.255.255", NULL, NULL },
	{ "169.254.0.0", "169.254.0.0/16", "link-local" },
	{ "169.254.169.253", "169.254.0.0/16", "link-local" },
	{ "169.254.255.255", "169.254.0.0/16", "link-local" },
	{ "169.255.0.0", NULL, NULL },
	{ "172.15.255.255", NULL, NULL },
	{ "172.16.0.0", "172.16.0.0/12", "private (RFC 1918)" },
	{ "172.31.255.255", "172.16.0.0/12", "private (RFC 1918)" },
	{ "172.32.0.0", NULL, NULL },
	{ "191.255.255.255", NULL, NULL },
	{ "192.0.0.0", "192.0.0.0/24", "IETF protocol assignments" },
	{ "192.0.0.255", "192.0.0.0/24", "IETF protocol assignments" },
	{ "192.0.1.0", NULL, NULL },
	{ "192.0.1.255", NULL, NULL },
	{ "192.0.2.0", "192.0.2.0/24", "documentation" },
	{ "192.0.2.255", "192.0.2.0/24", "documentation" },
	{ "192.0.3.0", NULL, NULL },
	{ "192.167.255.255", NULL, NULL },
	{ "192.168.0.0", "192.168.0.0/16", "private (RFC 1918)" },
	{ "192.168.255.255", "192.168.0.0/16", "private (RFC 1918)" },
	{ "192.169.0.0", NULL, NULL },
	{ "198.17.255.255", NULL, NULL },
	{ "198.18.0.0", "198.18.0.0/15", "benchmarking" },
	{ "198.19.255.255", "198.18.0.0/15", "benchmarking" },
	{ "198.20.0.0", NULL, NULL },
	{ "198.51.99.255", NULL, NULL },
	{ "198.51.100.0", "198.51.100.0/24", "documentation" },
	{ "198.51.100.255", "198.51.100.0/24", "documentation" },
	{ "198.51.101.0", NULL, NULL },
	{ "203.0.112.255", NULL, NULL },
	{ "203.0.113.0", "203.0.113.0/24", "documentation" },
	{ "203.0.113.255", "203.0.113.0/24", "documentation" },
	{ "203.0.114.0", NULL, NULL },
	{ "223.255.255.255", NULL, NULL },
	{ "224.0.0.0", "224.0.0.0/4", "multicast" },
	{ "239.255.255.255", "224.0.0.0/4", "multicast" },
	{ "240.0.0.0", "240.0.0.0/4", "reserved" },
	{ "255.255.255.254", "240.0.0.0/4", "reserved" },
	{ "255.255.255.255", "255.255.255.255/32", "broadcast" },
	{ "8.8.8.8", NULL, NULL },
	{ "1.1.1.1", NULL, NULL },
	{ "93.184.215.14", NULL, NULL },

	{ "::", "::/128", "unspecified" },
	{ "::1", "::1/128", "loopback" },
	{ "::2", "::/96", "IPv4-compatible (deprecated)" },
	{ "::1.2.3.4", "::/96", "IPv4-compatible (deprecated)" },
	{ "::127.0.0.1", "::/96", "IPv4-compatible (deprecated)" },
	{ "::255.255.255.255", "::/96", "IPv4-compatible (deprecated)" },
	{ "::1:0:0", NULL, NULL },
	{ "64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", NULL, NULL },
	{ "64:ff9b::", "64:ff9b::/96", "NAT64 (embeds an IPv4 address)" },
	{ "64:ff9b::7f00:1", "64:ff9b::/96", "NAT64 (embeds an IPv4 address)" },
	{ "64:ff9b::808:808", "64:ff9b::/96", "NAT64 (embeds an IPv4 address)" },
	{ "64:ff9b::ffff:ffff", "64:ff9b::/96", "NAT64 (embeds an IPv4 address)" },
	{ "64:ff9b::1:0:0", NULL, NULL },
	{ "64:ff9b:0:ffff:ffff:ffff:ffff:ffff", NULL, NULL },
	{ "64:ff9b:1::", "64:ff9b:1::/48", "NAT64 (embeds an IPv4 address)" },
	{ "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "64:ff9b:1::/48", "NAT64 (embeds an IPv4 address)" },
	{ "64:ff9b:2::", NULL, NULL },
	{ "ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL, NULL },
	{ "100::", "100::/64", "discard" },
	{ "100::ffff:ffff:ffff:ffff", "100::/64", "discard" },
	{ "100:0:0:1::", NULL, NULL },
	{ "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", NULL, NULL },
	{ "2001:db8::", "2001:db8::/32", "documentation" },
	{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::/32", "documentation" },
	{ "2001:db9::", NULL, NULL },
	{ "2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL, NULL },
	{ "2002::", "2002::/16", "6to4 (embeds an IPv4 address)" },
	{ "2002:7f00:1::", "2002::/16", "6to4 (embeds an IPv4 address)" },
	{ "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2002::/16", "6to4 (embeds an IPv4 address)" },
	{ "2003::", NULL, NULL },
	{ "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL, NULL },
	{ "fc00::", "fc00::/7", "unique local" },
	{ "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fc00::/7", "unique local" },
	{ "fe00::", NULL, NULL },
	{ "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL, NULL },
	{ "fe80::", "fe80::/10", "link-local" },
	{ "fe80::1", "fe80::/10", "link-local" },
	{ "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::/10", "link-local" },
	{ "fec0::", "fec0::/10", "site-local (deprecated)" },
	{ "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fec0::/10", "site-local (deprecated)" },
	{ "ff00::", "ff00::/8", "multicast" },
	{ "ff02::1", "ff00::/8", "multicast" },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ff00::/8", "multicast" },
	{ "2606:4700::1111", NULL, NULL },
	{ "2001:4860:4860::8888", NULL, NULL },
	{ "2a00:1450:4001:82a::200e", NULL, NULL },
};

static void test_builtin(void)
{
	struct addrpolicy p;
	char want[ADDRPOLICY_WHY_MAX], mapped[64];

	CHECK(parse(&p, "", "") == 0 && p.nallow == 0 && p.ndeny == 0, "%s", err);
	for (size_t i = 0; i < NELEMS(builtin_cases); i++) {
		const struct builtin_case *c = &builtin_cases[i];
		snprintf(want, sizeof want, "%s is %s (%s)", c->addr, c->name, c->range);
		expect(&p, c->addr, c->range ? want : NULL);
		if (strchr(c->addr, ':'))
			continue;
		/* the same IPv4 address, IPv4-mapped: the same verdict, and the reason says so */
		snprintf(mapped, sizeof mapped, "::ffff:%s", c->addr);
		snprintf(want, sizeof want, "%s is IPv4-mapped %s, which is %s (%s)", mapped, c->addr, c->name,
			 c->range);
		expect(&p, mapped, c->range ? want : NULL);
	}
}

static void test_metadata(void)
{
	struct addrpolicy p;

	memset(&p, 0, sizeof p); /* a zeroed policy is the default one */
	expect(&p, "169.254.169.254", "169.254.169.254 is link-local, the cloud metadata address (169.254.0.0/16)");
	expect(&p, "::ffff:169.254.169.254",
	       "::ffff:169.254.169.254 is IPv4-mapped 169.254.169.254, which is link-local, the cloud metadata "
	       "address (169.254.0.0/16)");
	expect(&p, "fd00:ec2::254", "fd00:ec2::254 is unique local, the cloud metadata address (fc00::/7)");
	expect(&p, "fd00:ec2::253", "fd00:ec2::253 is unique local (fc00::/7)");
	/* only an allow entry opens it, and a deny entry closes it again */
	CHECK(parse(&p, "169.254.169.254", "") == 0, "%s", err);
	expect(&p, "169.254.169.254", NULL);
	expect(&p, "169.254.169.253", "169.254.169.253 is link-local (169.254.0.0/16)");
	CHECK(parse(&p, "169.254.0.0/16", "169.254.169.254/32") == 0, "%s", err);
	expect(&p, "169.254.1.1", NULL);
	expect(&p, "169.254.169.254", "169.254.169.254 is denied by deny_addresses (169.254.169.254/32)");
}

/* ---- allow and deny lists ---- */

static const struct list_case {
	const char *allow, *deny, *addr, *why; /* why NULL: allowed */
} list_cases[] = {
	/* what the tests and the demo use */
	{ "127.0.0.0/8, ::1/128", "", "127.0.0.1", NULL },
	{ "127.0.0.0/8, ::1/128", "", "127.255.0.9", NULL },
	{ "127.0.0.0/8, ::1/128", "", "::1", NULL },
	{ "127.0.0.0/8, ::1/128", "", "::ffff:127.0.0.1", NULL },
	{ "127.0.0.0/8, ::1/128", "", "10.0.0.1", "10.0.0.1 is private (RFC 1918) (10.0.0.0/8)" },
	{ "127.0.0.0/8, ::1/128", "", "::", ":: is unspecified (::/128)" },
	{ "127.0.0.0/8, ::1/128", "", "8.8.8.8", NULL },
	/* deny beats allow, and beats the absence of a built-in range */
	{ "10.0.0.0/8", "10.1.0.0/16", "10.2.3.4", NULL },
	{ "10.0.0.0/8", "10.1.0.0/16", "10.1.2.3", "10.1.2.3 is denied by deny_addresses (10.1.0.0/16)" },
	{ "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1 is denied by deny_addresses (127.0.0.1/32)" },
	{ "", "8.8.8.0/24", "8.8.8.8", "8.8.8.8 is denied by deny_addresses (8.8.8.0/24)" },
	{ "", "8.8.8.0/24", "8.8.4.4", NULL },
	{ "", "8.8.8.0/24", "::ffff:8.8.8.8",
	  "::ffff:8.8.8.8 is IPv4-mapped 8.8.8.8, which is denied by deny_addresses (8.8.8.0/24)" },
	{ "", "2606:4700::/32", "2606:4700::1111", "2606:4700::1111 is denied by deny_addresses (2606:4700::/32)" },
	{ "", "2606:4700::/32", "2606:4701::1111", NULL },
	/* the first matching deny entry names the reason */
	{ "", "10.0.0.0/8, 10.1.0.0/16", "10.1.2.3", "10.1.2.3 is denied by deny_addresses (10.0.0.0/8)" },
	/* an IPv6 deny entry over the mapped range closes mapped addresses; an IPv6 allow never opens them */
	{ "", "::/0", "2606:4700::1111", "2606:4700::1111 is denied by deny_addresses (::/0)" },
	{ "", "::/0", "::ffff:8.8.8.8", "::ffff:8.8.8.8 is denied by deny_addresses (::/0)" },
	{ "", "::/0", "8.8.8.8", NULL },
	{ "", "0.0.0.0/0", "8.8.8.8", "8.8.8.8 is denied by deny_addresses (0.0.0.0/0)" },
	{ "", "0.0.0.0/0", "::ffff:8.8.8.8",
	  "::ffff:8.8.8.8 is IPv4-mapped 8.8.8.8, which is denied by deny_addresses (0.0.0.0/0)" },
	{ "", "0.0.0.0/0", "2606:4700::1111", NULL },
	{ "::/0", "", "fe80::1", NULL },
	{ "::/0", "", "::1", NULL },
	{ "::/0", "", "::ffff:127.0.0.1",
	  "::ffff:127.0.0.1 is IPv4-mapped 127.0.0.1, which is loopback (127.0.0.0/8)" },
	{ "::/0", "", "127.0.0.1", "127.0.0.1 is loopback (127.0.0.0/8)" },
	{ "0.0.0.0/0", "", "127.0.0.1", NULL },
	{ "0.0.0.0/0", "", "::ffff:10.9.9.9", NULL },
	{ "0.0.0.0/0", "", "::1", "::1 is loopback (::1/128)" },
	/* IPv4-mapped entries are their IPv4 range */
	{ "::ffff:127.0.0.0/104", "", "127.0.0.2", NULL },
	{ "::ffff:127.0.0.0/104", "", "::ffff:127.0.0.2", NULL },
	{ "::ffff:127.0.0.0/104", "", "10.0.0.1", "10.0.0.1 is private (RFC 1918) (10.0.0.0/8)" },
	{ "", "::ffff:8.8.8.8", "8.8.8.8", "8.8.8.8 is denied by deny_addresses (8.8.8.8/32)" },
	{ "::ffff:0:0/96", "", "192.168.1.1", NULL },
	/* an allow entry opens a built-in range: NAT64, 6to4, link-local, multicast */
	{ "64:ff9b::/96", "", "64:ff9b::808:808", NULL },
	{ "64:ff9b::/96", "", "64:ff9b:1::1", "64:ff9b:1::1 is NAT64 (embeds an IPv4 address) (64:ff9b:1::/48)" },
	{ "2002::/16", "", "2002:7f00:1::", NULL },
	{ "fe80::/10", "", "fe80::1", NULL },
	{ "224.0.0.0/4", "", "239.1.1.1", NULL },
	/* bare addresses are single addresses */
	{ "10.0.0.1", "", "10.0.0.1", NULL },
	{ "10.0.0.1", "", "10.0.0.2", "10.0.0.2 is private (RFC 1918) (10.0.0.0/8)" },
	{ "fe80::1", "", "fe80::1", NULL },
	{ "fe80::1", "", "fe80::2", "fe80::2 is link-local (fe80::/10)" },
	{ "FE80::0:1", "", "fe80::1", NULL },
	/* host bits past the prefix are cleared: 10.1.2.3/8 is 10.0.0.0/8 */
	{ "10.1.2.3/8", "", "10.200.0.1", NULL },
	{ "", "10.1.2.3/8", "10.200.0.1", "10.200.0.1 is denied by deny_addresses (10.0.0.0/8)" },
	{ "fe80::1/10", "", "fe80::99", NULL },
	/* blanks around entries, and /0 and /32 edges */
	{ " \t10.0.0.0/8 ,\t192.168.0.0/16\t", "", "192.168.7.7", NULL },
	{ "10.0.0.0/32", "", "10.0.0.0", NULL },
	{ "10.0.0.0/32", "", "10.0.0.1", "10.0.0.1 is private (RFC 1918) (10.0.0.0/8)" },
	{ "10.0.0.0/31", "", "10.0.0.1", NULL },
	{ "10.0.0.0/31", "", "10.0.0.2", "10.0.0.2 is private (RFC 1918) (10.0.0.0/8)" },
	{ "172.16.0.0/13", "", "172.23.255.255", NULL },
	{ "172.16.0.0/13", "", "172.24.0.0", "172.24.0.0 is private (RFC 1918) (172.16.0.0/12)" },
};

static void test_lists(void)
{
	struct addrpolicy p;

	for (size_t i = 0; i < NELEMS(list_cases); i++) {
		const struct list_case *c = &list_cases[i];
		if (parse(&p, c->allow, c->deny) < 0) {
			CHECK(false, "allow '%s' deny '%s': %s", c->allow, c->deny, err);
			continue;
		}
		bool ok = allowed(&p, c->addr);
		if (!c->why)
			CHECK(ok && why[0] == '\0', "allow '%s' deny '%s': %s refused: %s", c->allow, c->deny,
			      c->addr, why);
		else
			CHECK(!ok && strcmp(why, c->why) == 0, "allow '%s' deny '%s': %s %s '%s', want '%s'",
			      c->allow, c->deny, c->addr, ok ? "allowed" : "refused", why, c->why);
	}
	CHECK(parse(&p, NULL, NULL) == 0 && p.nallow == 0 && p.ndeny == 0, "NULL lists: %s", err);
	CHECK(parse(&p, "1.2.3.4/8, 1.0.0.0/8", "") == 0 && p.allow[0].masked && !p.allow[1].masked,
	      "masked flags");
}

/* 64 entries in each list work, the 65th is refused. */
static void test_many(void)
{
	struct addrpolicy p;
	char allow[64 * 16 + 16], deny[64 * 48 + 48];
	size_t na = 0, nd = 0;

	for (int i = 0; i < 64; i++) {
		na += (size_t)snprintf(allow + na, sizeof allow - na, "%s10.0.%d.0/24", i ? "," : "", i);
		nd += (size_t)snprintf(deny + nd, sizeof deny - nd, "%s2001:db8:%x::/48", i ? ", " : "", i);
	}
	CHECK(parse(&p, allow, deny) == 0 && p.nallow == 64 && p.ndeny == 64, "%s", err);
	expect(&p, "10.0.0.1", NULL);
	expect(&p, "10.0.63.254", NULL);
	expect(&p, "10.0.64.1", "10.0.64.1 is private (RFC 1918) (10.0.0.0/8)");
	expect(&p, "2001:db8:3f::1", "2001:db8:3f::1 is denied by deny_addresses (2001:db8:3f::/48)");
	expect(&p, "2001:db8:40::1", "2001:db8:40::1 is documentation (2001:db8::/32)");
	snprintf(allow + na, sizeof allow - na, ",10.0.64.0/24");
	CHECK(parse(&p, allow, "") == -1 &&
		      strcmp(err, "invalid allow_addresses entry '10.0.64.0/24': too many entries (at most 64)") == 0,
	      "%s", err);
	snprintf(deny + nd, sizeof deny - nd, ",300.0.0.0");
	CHECK(parse(&p, "", deny) == -1 &&
		      strcmp(err, "invalid deny_addresses entry '300.0.0.0': not an IPv4 address (a.b.c.d)") == 0,
	      "a bad 65th entry is reported for what it is: %s", err);
}

/* ---- parse errors ---- */

static const struct bad_case {
	const char *entry, *reason;
} bad_cases[] = {
	{ "10.0.0.0/33", "prefix length above 32 for IPv4" },
	{ "::1/129", "prefix length above 128 for IPv6" },
	{ "1.2.3", "not an IPv4 address (a.b.c.d)" },
	{ "fe80::1%eth0/64", "zone identifiers (%) are not allowed" },
	{ "fe80::1%1", "zone identifiers (%) are not allowed" },
	{ "10.0.0.0/", "missing prefix length after '/'" },
	{ "/8", "missing address" },
	{ "10.0.0.0/8x", "prefix length is not a decimal number" },
	{ "10.0.0.0/08", "prefix length is not a decimal number" },
	{ "10.0.0.0/-8", "prefix length is not a decimal number" },
	{ "10.0.0.0/+8", "prefix length is not a decimal number" },
	{ "::/0128", "prefix length is not a decimal number" },
	{ "10.0.0.0/8/8", "prefix length is not a decimal number" },
	{ "10.0.0.0/ 8", "prefix length is not a decimal number" },
	{ "256.0.0.0", "not an IPv4 address (a.b.c.d)" },
	{ "127.1", "not an IPv4 address (a.b.c.d)" },
	{ "010.0.0.1", "not an IPv4 address (a.b.c.d)" },
	{ "0x7f.0.0.1", "not an IPv4 address (a.b.c.d)" },
	{ "localhost", "not an IPv4 address (a.b.c.d)" },
	{ "1.2.3.4 5.6.7.8", "not an IPv4 address (a.b.c.d)" },
	{ "1.2.3.4:80", "not an IPv6 address" },
	{ "[::1]", "not an IPv6 address" },
	{ ":::1", "not an IPv6 address" },
	{ "gggg::1", "not an IPv6 address" },
	{ "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa", "address too long" },
};

static void check_bad(const char *allow, const char *deny, const char *want)
{
	struct addrpolicy p;

	parse(&p, "127.0.0.0/8", "8.8.8.8");
	CHECK(parse(&p, allow, deny) == -1 && strcmp(err, want) == 0, "allow '%s' deny '%s': got '%s', want '%s'",
	      allow, deny, err, want);
	CHECK(p.nallow == 0 && p.ndeny == 0, "a failed parse left entries");
	expect(&p, "127.0.0.1", "127.0.0.1 is loopback (127.0.0.0/8)");
}

static void test_bad(void)
{
	char want[256], list[128];

	for (size_t i = 0; i < NELEMS(bad_cases); i++) {
		snprintf(want, sizeof want, "invalid allow_addresses entry '%s': %s", bad_cases[i].entry,
			 bad_cases[i].reason);
		check_bad(bad_cases[i].entry, "", want);
		snprintf(want, sizeof want, "invalid deny_addresses entry '%s': %s", bad_cases[i].entry,
			 bad_cases[i].reason);
		snprintf(list, sizeof list, "10.0.0.0/8, %s, 8.8.8.8", bad_cases[i].entry);
		check_bad("127.0.0.1", list, want);
	}
	/* "" is the empty list, but an empty entry is an error */
	check_bad("1.1.1.1,", "", "invalid allow_addresses entry '': empty entry");
	check_bad(",1.1.1.1", "", "invalid allow_addresses entry '': empty entry");
	check_bad("1.1.1.1,,2.2.2.2", "", "invalid allow_addresses entry '': empty entry");
	check_bad(" ", "", "invalid allow_addresses entry '': empty entry");
	check_bad("", " \t, ", "invalid deny_addresses entry '': empty entry");
	/* the allow list is reported first */
	check_bad("1.2.3", "::1/129", "invalid allow_addresses entry '1.2.3': not an IPv4 address (a.b.c.d)");
	/* a long bad entry is quoted truncated, and err may be short or absent */
	struct addrpolicy p;
	CHECK(addrpolicy_parse(&p, "x", "", err, 12) == -1 && strcmp(err, "invalid all") == 0, "%s", err);
	CHECK(addrpolicy_parse(&p, "x", "", NULL, 0) == -1, "NULL err");
}

/* ---- the pieces underneath ---- */

static void test_cidr(void)
{
	struct cidr c;
	const char *reason = "";
	char buf[CIDR_TEXT_MAX];
	uint8_t a4[4] = { 10, 1, 2, 3 }, a6[16] = { 0 };

	CHECK(cidr_parse(&c, "10.1.2.3/8", 10, &reason) == 0 && c.family == AF_INET && c.prefix == 8 &&
		      c.masked && c.addr[1] == 0,
	      "%s", reason);
	CHECK(cidr_format(&c, buf, sizeof buf) == 0 && strcmp(buf, "10.0.0.0/8") == 0, "%s", buf);
	CHECK(cidr_format(&c, buf, 10) == -1, "short buffer");
	CHECK(cidr_contains(&c, AF_INET, a4) && !cidr_contains(&c, AF_INET6, a6), "family is part of a match");
	/* len bounds the entry: the rest of the string is not read */
	CHECK(cidr_parse(&c, "10.1.2.3/8 junk", 8, &reason) == 0 && c.prefix == 32 && !c.masked, "%s", reason);
	CHECK(cidr_parse(&c, "::/0", 4, &reason) == 0 && c.family == AF_INET6 && c.prefix == 0 &&
		      cidr_contains(&c, AF_INET6, a6) && !cidr_contains(&c, AF_INET, a4),
	      "%s", reason);
	CHECK(cidr_parse(&c, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128", 49, &reason) == 0 &&
		      cidr_format(&c, buf, sizeof buf) == 0 &&
		      strcmp(buf, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128") == 0,
	      "%s", buf);
	CHECK(cidr_parse(&c, "", 0, &reason) == -1 && strcmp(reason, "empty entry") == 0, "empty");

	struct cidr list[2];
	size_t n = 9;
	char bad[6];
	CHECK(cidr_parse_list("1.1.1.1, 2.2.2.2", list, 2, &n, bad, sizeof bad, &reason) == 0 && n == 2, "two");
	CHECK(cidr_parse_list("1.1.1.1, 2.2.2.2, 3.3.3.3", list, 2, &n, bad, sizeof bad, &reason) == -1 &&
		      strcmp(bad, "3.3.3") == 0 && strcmp(reason, "too many entries") == 0,
	      "%s %s", bad, reason);
	CHECK(cidr_parse_list("", list, 2, &n, NULL, 0, &reason) == 0 && n == 0, "empty list");
	CHECK(cidr_parse_list("x", list, 2, &n, NULL, 0, &reason) == -1, "NULL bad buffer");
}

static void test_sockaddr(void)
{
	struct addrpolicy p;
	struct sockaddr_storage ss;
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	char buf[ADDRPOLICY_ADDR_MAX];

	memset(&p, 0, sizeof p);
	CHECK(!addrpolicy_allowed(&p, (const struct sockaddr *)&un, why, sizeof why) &&
		      strcmp(why, "address family 1 is neither IPv4 nor IPv6") == 0,
	      "%s", why);
	CHECK(!addrpolicy_allowed(&p, NULL, NULL, 0), "NULL address");
	CHECK(!addrpolicy_allowed(&p, sa_of("127.0.0.1", &ss), NULL, 0), "NULL why");
	CHECK(addrpolicy_allowed(&p, sa_of("8.8.8.8", &ss), NULL, 0), "NULL why, allowed");
	CHECK(!addrpolicy_allowed(&p, sa_of("127.0.0.1", &ss), why, 9) && strcmp(why, "127.0.0.") == 0,
	      "short why: %s", why);
	/* the scope id of a link-local address changes nothing */
	((struct sockaddr_in6 *)sa_of("fe80::1", &ss))->sin6_scope_id = 2;
	CHECK(!addrpolicy_allowed(&p, (const struct sockaddr *)&ss, why, sizeof why) &&
		      strcmp(why, "fe80::1 is link-local (fe80::/10)") == 0,
	      "%s", why);

	CHECK(addrpolicy_format(sa_of("::ffff:127.0.0.1", &ss), buf, sizeof buf) == 0 &&
		      strcmp(buf, "::ffff:127.0.0.1") == 0,
	      "%s", buf);
	CHECK(addrpolicy_format(sa_of("10.1.2.3", &ss), buf, sizeof buf) == 0 && strcmp(buf, "10.1.2.3") == 0,
	      "%s", buf);
	CHECK(addrpolicy_format(sa_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &ss), buf, sizeof buf) == 0,
	      "longest IPv6");
	CHECK(addrpolicy_format(sa_of("10.1.2.3", &ss), buf, 8) == -1, "short buffer");
	CHECK(addrpolicy_format((const struct sockaddr *)&un, buf, sizeof buf) == -1, "AF_UNIX");
	CHECK(addrpolicy_format(NULL, buf, sizeof buf) == -1, "NULL");
}

int main(void)
{
	test_builtin();
	test_metadata();
	test_lists();
	test_many();
	test_bad();
	test_cidr();
	test_sockaddr();
	return test_report();
}

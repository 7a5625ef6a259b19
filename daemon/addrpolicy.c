/* addrpolicy.c - decides whether an address may be connected to: the deny list, then the allow list,
 * then the built-in special-purpose ranges (RFC 6890 and friends), and explains every refusal.
 * IPv4-mapped IPv6 addresses are unwrapped so that ::ffff:127.0.0.1 is as blocked as 127.0.0.1. */
#include "daemon/addrpolicy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

struct addrpolicy_range {
	struct cidr net;
	const char *name;
};

#define V4(a, b, c, d, len, name) { { AF_INET, { a, b, c, d }, len, false }, name }
#define V6(len, name, ...) { { AF_INET6, { __VA_ARGS__ }, len, false }, name }

/* Where ranges nest, the narrower comes first so that it names the address. */
static const struct addrpolicy_range addrpolicy_builtin[] = {
	V4(0, 0, 0, 0, 8, "this network"),
	V4(10, 0, 0, 0, 8, "private (RFC 1918)"),
	V4(100, 64, 0, 0, 10, "carrier-grade NAT"),
	V4(127, 0, 0, 0, 8, "loopback"),
	V4(169, 254, 0, 0, 16, "link-local"),
	V4(172, 16, 0, 0, 12, "private (RFC 1918)"),
	V4(192, 0, 0, 0, 24, "IETF protocol assignments"),
	V4(192, 0, 2, 0, 24, "documentation"),
	V4(192, 168, 0, 0, 16, "private (RFC 1918)"),
	V4(198, 18, 0, 0, 15, "benchmarking"),
	V4(198, 51, 100, 0, 24, "documentation"),
	V4(203, 0, 113, 0, 24, "documentation"),
	V4(224, 0, 0, 0, 4, "multicast"),
	V4(255, 255, 255, 255, 32, "broadcast"),
	V4(240, 0, 0, 0, 4, "reserved"),
	V6(128, "unspecified", 0),                                          /* ::/128 */
	V6(128, "loopback", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), /* ::1/128 */
	V6(96, "IPv4-compatible (deprecated)", 0),                          /* ::/96 */
	V6(96, "NAT64 (embeds an IPv4 address)", 0x00, 0x64, 0xff, 0x9b),   /* 64:ff9b::/96 */
	V6(48, "NAT64 (embeds an IPv4 address)", 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01), /* 64:ff9b:1::/48 */
	V6(64, "discard", 0x01, 0x00),                                      /* 100::/64 */
	V6(32, "documentation", 0x20, 0x01, 0x0d, 0xb8),                    /* 2001:db8::/32 */
	V6(16, "6to4 (embeds an IPv4 address)", 0x20, 0x02),                /* 2002::/16 */
	V6(7, "unique local", 0xfc),                                        /* fc00::/7 */
	V6(10, "link-local", 0xfe, 0x80),                                   /* fe80::/10 */
	V6(10, "site-local (deprecated)", 0xfe, 0xc0),                      /* fec0::/10 */
	V6(8, "multicast", 0xff),                                           /* ff00::/8 */
};

/* Instance metadata services, the prize of most SSRF attacks: named in the reason. */
static const struct cidr addrpolicy_metadata[] = {
	{ AF_INET, { 169, 254, 169, 254 }, 32, false },
	{ AF_INET6, { 0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54 }, 128, false },
};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ::ffff:0:0/96, the IPv4-mapped addresses */
static const uint8_t addrpolicy_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* The address being judged, in the forms it can be matched by. */
struct addrpolicy_target {
	bool has_v4, has_v6, mapped; /* mapped: has both, the IPv4 form unwrapped from ::ffff:a.b.c.d */
	uint8_t v4[4], v6[16];
};

enum addrpolicy_via { VIA_NONE, VIA_V4, VIA_V6 };

/* ---- building the lists ---- */

/* ::ffff:a.b.c.d/96+n is stored as a.b.c.d/n: mapped addresses are matched in their IPv4 form. */
static void addrpolicy_unmap_entry(struct cidr *c)
{
	if (c->family != AF_INET6 || c->prefix < 96 || memcmp(c->addr, addrpolicy_mapped_prefix, 12) != 0)
		return;
	c->family = AF_INET;
	memmove(c->addr, c->addr + 12, 4);
	memset(c->addr + 4, 0, 12);
	c->prefix = (uint8_t)(c->prefix - 96);
}

static int addrpolicy_parse_list(struct cidr *out, size_t *n, const char *key, const char *csv, char *err,
				 size_t errlen)
{
	char bad[CIDR_TEXT_MAX + 16];
	const char *reason = "";

	if (cidr_parse_list(csv ? csv : "", out, ADDRPOLICY_MAX, n, bad, sizeof bad, &reason) < 0) {
		if (err && errlen && strcmp(reason, "too many entries") == 0)
			snprintf(err, errlen, "invalid %s entry '%s': %s (at most %d)", key, bad, reason,
				 ADDRPOLICY_MAX);
		else if (err && errlen)
			snprintf(err, errlen, "invalid %s entry '%s': %s", key, bad, reason);
		return -1;
	}
	for (size_t i = 0; i < *n; i++)
		addrpolicy_unmap_entry(&out[i]);
	return 0;
}

int addrpolicy_parse(struct addrpolicy *p, const char *allow_csv, const char *deny_csv, char *err,
		     size_t errlen)
{
	memset(p, 0, sizeof *p);
	if (addrpolicy_parse_list(p->allow, &p->nallow, "allow_addresses", allow_csv, err, errlen) < 0 ||
	    addrpolicy_parse_list(p->deny, &p->ndeny, "deny_addresses", deny_csv, err, errlen) < 0) {
		memset(p, 0, sizeof *p);
		return -1;
	}
	return 0;
}

/* ---- judging one address ---- */

static bool addrpolicy_target_of(const struct sockaddr *sa, struct addrpolicy_target *t)
{
	memset(t, 0, sizeof *t);
	if (sa && sa->sa_family == AF_INET) {
		t->has_v4 = true;
		memcpy(t->v4, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return true;
	}
	if (!sa || sa->sa_family != AF_INET6)
		return false;
	t->has_v6 = true;
	memcpy(t->v6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
	if (memcmp(t->v6, addrpolicy_mapped_prefix, 12) == 0) {
		t->has_v4 = t->mapped = true;
		memcpy(t->v4, t->v6 + 12, 4);
	}
	return true;
}

/* Does c hold t, and through which form? The IPv6 form of a mapped address counts only when
 * v6_of_mapped (deny lists). */
static enum addrpolicy_via addrpolicy_holds(const struct cidr *c, const struct addrpolicy_target *t,
					    bool v6_of_mapped)
{
	if (t->has_v4 && cidr_contains(c, AF_INET, t->v4))
		return VIA_V4;
	if (t->has_v6 && (!t->mapped || v6_of_mapped) && cidr_contains(c, AF_INET6, t->v6))
		return VIA_V6;
	return VIA_NONE;
}

/* The first entry of list[0..n) that holds t, or NULL; *via says how. */
static const struct cidr *addrpolicy_find(const struct cidr *list, size_t n,
					  const struct addrpolicy_target *t, bool v6_of_mapped,
					  enum addrpolicy_via *via)
{
	for (size_t i = 0; i < n; i++)
		if ((*via = addrpolicy_holds(&list[i], t, v6_of_mapped)) != VIA_NONE)
			return &list[i];
	return NULL;
}

/* The built-in range holding t (mapped addresses by their IPv4 form only), or NULL. */
static const struct addrpolicy_range *addrpolicy_builtin_find(const struct addrpolicy_target *t,
							      enum addrpolicy_via *via)
{
	for (size_t i = 0; i < NELEMS(addrpolicy_builtin); i++)
		if ((*via = addrpolicy_holds(&addrpolicy_builtin[i].net, t, false)) != VIA_NONE)
			return &addrpolicy_builtin[i];
	return NULL;
}

static bool addrpolicy_is_metadata(const struct addrpolicy_target *t)
{
	for (size_t i = 0; i < NELEMS(addrpolicy_metadata); i++)
		if (addrpolicy_holds(&addrpolicy_metadata[i], t, false) != VIA_NONE)
			return true;
	return false;
}

/* why = "<addr> is <what> (<range>)", or "<addr> is IPv4-mapped <v4>, which is <what> (<range>)" when
 * the IPv4 form of a mapped address matched. */
static void addrpolicy_explain(char *why, size_t whylen, const struct sockaddr *sa,
			       const struct addrpolicy_target *t, enum addrpolicy_via via, const char *what,
			       const struct cidr *range)
{
	char addr[ADDRPOLICY_ADDR_MAX] = "?", v4[INET_ADDRSTRLEN] = "?", net[CIDR_TEXT_MAX] = "?";

	if (!why || whylen == 0)
		return;
	addrpolicy_format(sa, addr, sizeof addr); /* cannot fail: sa is IPv4 or IPv6, the buffers fit */
	cidr_format(range, net, sizeof net);
	if (t->mapped && via == VIA_V4 && inet_ntop(AF_INET, t->v4, v4, sizeof v4))
		snprintf(why, whylen, "%s is IPv4-mapped %s, which is %s (%s)", addr, v4, what, net);
	else
		snprintf(why, whylen, "%s is %s (%s)", addr, what, net);
}

bool addrpolicy_allowed(const struct addrpolicy *p, const struct sockaddr *sa, char *why, size_t whylen)
{
	struct addrpolicy_target t;
	const struct addrpolicy_range *r;
	const struct cidr *c;
	enum addrpolicy_via via = VIA_NONE;
	char what[96];

	if (why && whylen)
		why[0] = '\0';
	if (!addrpolicy_target_of(sa, &t)) {
		if (why && whylen)
			snprintf(why, whylen, "address family %d is neither IPv4 nor IPv6",
				 sa ? sa->sa_family : -1);
		return false;
	}
	if ((c = addrpolicy_find(p->deny, p->ndeny, &t, true, &via))) {
		addrpolicy_explain(why, whylen, sa, &t, via, "denied by deny_addresses", c);
		return false;
	}
	if (addrpolicy_find(p->allow, p->nallow, &t, false, &via))
		return true;
	if ((r = addrpolicy_builtin_find(&t, &via))) {
		snprintf(what, sizeof what, "%s%s", r->name,
			 addrpolicy_is_metadata(&t) ? ", the cloud metadata address" : "");
		addrpolicy_explain(why, whylen, sa, &t, via, what, &r->net);
		return false;
	}
	return true;
}

int addrpolicy_format(const struct sockaddr *sa, char *buf, size_t buflen)
{
	const void *a;

	if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return -1;
	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	return inet_ntop(sa->sa_family, a, buf, (socklen_t)buflen) ? 0 : -1;
}

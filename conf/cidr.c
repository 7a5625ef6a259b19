/* cidr.c - parses, matches and prints CIDR ranges ("10.0.0.0/8", "::1/128", bare addresses) and
 * comma-separated lists of them. Addresses go through inet_pton, so only the canonical forms are
 * accepted: four decimal parts for IPv4 (no "127.1", no octal), any RFC 4291 text form for IPv6. */
#include "conf/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static size_t cidr_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

/* "/prefix" digits s[0..n): decimal, no leading zero, at most max. Returns the value or -1. */
static int cidr_parse_prefix(const char *s, size_t n, unsigned max, const char **reason)
{
	unsigned v = 0;

	if (n == 0) {
		*reason = "missing prefix length after '/'";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || (i == 0 && s[i] == '0' && n > 1) || i >= 3) {
			*reason = "prefix length is not a decimal number";
			return -1;
		}
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max) {
		*reason = max == 32 ? "prefix length above 32 for IPv4" : "prefix length above 128 for IPv6";
		return -1;
	}
	return (int)v;
}

/* The address s[0..n) into c->family and c->addr. */
static int cidr_parse_addr(struct cidr *c, const char *s, size_t n, const char **reason)
{
	char text[INET6_ADDRSTRLEN];

	if (memchr(s, '%', n)) {
		*reason = "zone identifiers (%) are not allowed";
		return -1;
	}
	c->family = memchr(s, ':', n) ? AF_INET6 : AF_INET;
	if (n == 0 || n >= sizeof text) {
		*reason = n ? "address too long" : "missing address";
		return -1;
	}
	memcpy(text, s, n);
	text[n] = '\0';
	if (inet_pton(c->family, text, c->addr) != 1) {
		*reason = c->family == AF_INET ? "not an IPv4 address (a.b.c.d)" : "not an IPv6 address";
		return -1;
	}
	return 0;
}

/* Clear the bits past c->prefix; true when any was set. */
static bool cidr_mask(struct cidr *c)
{
	bool was_set = false;

	for (size_t bit = c->prefix; bit < cidr_bits(c->family); bit++) {
		uint8_t m = (uint8_t)(0x80u >> (bit % 8));
		was_set |= (c->addr[bit / 8] & m) != 0;
		c->addr[bit / 8] &= (uint8_t)~m;
	}
	return was_set;
}

int cidr_parse(struct cidr *c, const char *s, size_t len, const char **reason)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	int prefix;

	memset(c, 0, sizeof *c);
	if (len == 0) {
		*reason = "empty entry";
		return -1;
	}
	if (cidr_parse_addr(c, s, alen, reason) < 0)
		return -1;
	prefix = (int)cidr_bits(c->family);
	if (slash) {
		prefix = cidr_parse_prefix(slash + 1, len - alen - 1, (unsigned)prefix, reason);
		if (prefix < 0)
			return -1;
	}
	c->prefix = (uint8_t)prefix;
	c->masked = cidr_mask(c);
	return 0;
}

static bool cidr_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Copy the entry s[0..n) into bad (truncated to fit) and fail. */
static int cidr_fail(char *bad, size_t badlen, const char *s, size_t n)
{
	if (badlen == 0)
		return -1;
	if (n >= badlen)
		n = badlen - 1;
	memcpy(bad, s, n);
	bad[n] = '\0';
	return -1;
}

/* The entry s[0..*n) without the blanks around it; *n is updated. */
static const char *cidr_trim(const char *s, size_t *n)
{
	while (*n && cidr_blank(*s))
		s++, (*n)--;
	while (*n && cidr_blank(s[*n - 1]))
		(*n)--;
	return s;
}

int cidr_parse_list(const char *csv, struct cidr *out, size_t max, size_t *n, char *bad, size_t badlen,
		    const char **reason)
{
	const char *p = csv;

	*n = 0;
	if (*p == '\0')
		return 0;
	for (;;) {
		size_t len = strcspn(p, ",");
		const char *next = p + len;
		const char *entry = cidr_trim(p, &len);
		struct cidr c;
		if (cidr_parse(&c, entry, len, reason) < 0)
			return cidr_fail(bad, badlen, entry, len);
		if (*n == max) {
			*reason = "too many entries";
			return cidr_fail(bad, badlen, entry, len);
		}
		out[(*n)++] = c;
		if (*next == '\0')
			return 0;
		p = next + 1;
	}
}

bool cidr_contains(const struct cidr *c, int family, const uint8_t *addr)
{
	size_t whole = c->prefix / 8;
	unsigned rest = c->prefix % 8;

	if (family != c->family)
		return false;
	if (memcmp(c->addr, addr, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t m = (uint8_t)(0xffu << (8 - rest));
	return (addr[whole] & m) == c->addr[whole];
}

int cidr_format(const struct cidr *c, char *buf, size_t buflen)
{
	char text[INET6_ADDRSTRLEN];
	int n;

	if (!inet_ntop(c->family, c->addr, text, sizeof text))
		return -1;
	n = snprintf(buf, buflen, "%s/%u", text, (unsigned)c->prefix);
	return n < 0 || (size_t)n >= buflen ? -1 : 0;
}

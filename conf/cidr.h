/* cidr.h - IP address ranges in CIDR notation, pure: parse one range or a comma-separated list of them
 * ("127.0.0.0/8, ::1/128"), test an address against a range, and print a range. Shared by the config
 * checker (conf.c) and the address policy (daemon/addrpolicy.c). No I/O, no allocation, no logging. */
#ifndef FETCHD_CIDR_H
#define FETCHD_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CIDR_LIST_MAX 64   /* most entries in one list */
#define CIDR_TEXT_MAX 50   /* longest printed range: an IPv6 address (45) + "/128" + NUL */

struct cidr {
	int family;          /* AF_INET or AF_INET6 */
	uint8_t addr[16];    /* network order; IPv4 uses the first 4 bytes; bits past prefix are zero */
	uint8_t prefix;      /* 0..32 or 0..128 */
	bool masked;         /* the text had bits set past the prefix ("10.1.2.3/8"); they were cleared */
};

/* Parse one entry of len bytes (no surrounding blanks): an IPv4 address a.b.c.d or an IPv6 address,
 * optionally followed by /prefix (decimal, no sign, no leading zero). A bare address means /32 or
 * /128. Host bits past the prefix are accepted and cleared (c->masked says so). Zone identifiers
 * ("fe80::1%eth0") are refused. Returns 0, or -1 with *reason set to a static string. */
int cidr_parse(struct cidr *c, const char *s, size_t len, const char **reason);

/* Parse a comma-separated list of entries; blanks (spaces, tabs) around each entry are ignored. "" is
 * the empty list; an empty entry ("a,,b", "a,", " ") is an error. Fills out[0..*n), at most max
 * entries. Returns 0, or -1 with the offending entry copied (trimmed, truncated to fit, NUL-terminated)
 * into bad when badlen > 0 and *reason set to a static string ("too many entries" past max). */
int cidr_parse_list(const char *csv, struct cidr *out, size_t max, size_t *n, char *bad, size_t badlen,
		    const char **reason);

/* True when addr (4 or 16 bytes, network order, of the given family) lies in c. */
bool cidr_contains(const struct cidr *c, int family, const uint8_t *addr);

/* Print c as "10.0.0.0/8" or "fe80::/10". Returns 0, or -1 when buflen is too small. */
int cidr_format(const struct cidr *c, char *buf, size_t buflen);

#endif

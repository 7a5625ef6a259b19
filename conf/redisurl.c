/* redisurl.c - parse redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (redisurl.h). USER and PASSWORD may be
 * percent-encoded; HOST is a name, an IPv4 address or [IPv6]. No query, no fragment, no other scheme. */
#include "conf/redisurl.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int redisurl_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode s[0..n) into out (cap bytes with its NUL). */
static int redisurl_decode(const char *s, size_t n, char *out, size_t cap, const char **why)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			int hi = i + 1 < n ? redisurl_hex(s[i + 1]) : -1;
			int lo = i + 2 < n ? redisurl_hex(s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				*why = "a bad %-escape in the user or password";
				return -1;
			}
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f) {
			*why = "a control character in the user or password";
			return -1;
		}
		if (o + 1 >= cap) {
			*why = "the user or password is too long";
			return -1;
		}
		out[o++] = (char)c;
	}
	out[o] = 0;
	return 0;
}

/* A decimal number of at most max, all of s[0..n). */
static bool redisurl_num(const char *s, size_t n, uint64_t max, uint64_t *v)
{
	if (n == 0 || n > 10)
		return false;
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*v = *v * 10 + (uint64_t)(s[i] - '0');
	}
	return *v <= max;
}

/* USER:PASSWORD (or :PASSWORD, or PASSWORD alone) before the '@'. */
static int redisurl_creds(const char *s, size_t n, struct redisurl *u, const char **why)
{
	const char *colon = memchr(s, ':', n);
	if (!colon)
		return redisurl_decode(s, n, u->password, sizeof(u->password), why);
	if (redisurl_decode(s, (size_t)(colon - s), u->user, sizeof(u->user), why) < 0)
		return -1;
	return redisurl_decode(colon + 1, n - (size_t)(colon - s) - 1, u->password, sizeof(u->password), why);
}

/* HOST[:PORT] */
static int redisurl_hostport(const char *s, size_t n, struct redisurl *u, const char **why)
{
	const char *end = s + n, *host = s, *hend, *port = NULL;
	if (n && s[0] == '[') {
		hend = memchr(s, ']', n);
		if (!hend) {
			*why = "an IPv6 address without its ']'";
			return -1;
		}
		host = s + 1;
		if (hend + 1 < end && hend[1] != ':') {
			*why = "something after the IPv6 address that is not :PORT";
			return -1;
		}
		port = hend + 1 < end ? hend + 2 : NULL;
	} else {
		hend = memchr(s, ':', n);
		port = hend ? hend + 1 : NULL;
		hend = hend ? hend : end;
	}
	size_t hl = (size_t)(hend - host);
	if (hl == 0 || hl >= sizeof(u->host)) {
		*why = hl ? "the host name is too long" : "no host";
		return -1;
	}
	for (size_t i = 0; i < hl; i++) {
		unsigned char c = (unsigned char)host[i];
		if (c <= 0x20 || c >= 0x7f || c == '%' || c == '?' || c == '#' || c == '@' || c == '/' ||
		    (c == ':' && host == s)) {
			*why = "a character a host name cannot have";
			return -1;
		}
	}
	memcpy(u->host, host, hl);
	u->host[hl] = 0;
	uint64_t v = 6379;
	if (port && (!redisurl_num(port, (size_t)(end - port), 65535, &v) || v == 0)) {
		*why = "the port is not a number 1..65535";
		return -1;
	}
	u->port = (uint16_t)v;
	return 0;
}

int redisurl_parse(const char *s, struct redisurl *u, const char **why)
{
	memset(u, 0, sizeof(*u));
	static const char scheme[] = "redis://";
	if (strncmp(s, scheme, sizeof(scheme) - 1) != 0) {
		*why = "it does not start with redis://";
		return -1;
	}
	s += sizeof(scheme) - 1;
	size_t n = strlen(s);
	if (strpbrk(s, "?#")) {
		*why = "a query or fragment (redis://[[user]:password@]host[:port][/db] has none)";
		return -1;
	}
	const char *at = memrchr(s, '@', n);
	if (at && redisurl_creds(s, (size_t)(at - s), u, why) < 0)
		return -1;
	const char *hp = at ? at + 1 : s;
	const char *slash = strchr(hp, '/');
	size_t hpl = slash ? (size_t)(slash - hp) : strlen(hp);
	if (redisurl_hostport(hp, hpl, u, why) < 0)
		return -1;
	uint64_t db = 0;
	if (slash && slash[1] && !redisurl_num(slash + 1, strlen(slash + 1), 2147483647u, &db)) {
		*why = "the database is not a number 0..2147483647";
		return -1;
	}
	u->db = (uint32_t)db;
	return 0;
}

void redisurl_safe(const struct redisurl *u, char *out, size_t cap)
{
	bool v6 = strchr(u->host, ':') != NULL;
	snprintf(out, cap, "redis://%s%s%s:%u/%u", v6 ? "[" : "", u->host, v6 ? "]" : "", (unsigned)u->port,
		 (unsigned)u->db);
}

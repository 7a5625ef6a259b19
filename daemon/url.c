/* url.c - splits an absolute http(s) URL into scheme, host (normalised), port, request target and
 * userinfo spans. Pure: no I/O, no allocation, no logging. The rules are in url.h; in short, the
 * parser is strict where the WHATWG URL Standard is lenient (no whitespace stripping, no IDNA, no
 * percent-decoding of hosts, "//" required) and follows WHATWG for IPv4 host forms. */
#include "daemon/url.h"
#include "daemon/hex.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#define URL_LABEL_MAX 63
#define URL_NAME_MAX 253 /* without the optional trailing dot */

/* ---- small character helpers ---- */

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_host_char(int c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
}

static int fail(const char **reason, const char *why)
{
	*reason = why;
	return -1;
}

/* ---- whole-input checks ---- */

static int check_bytes(const char *s, size_t len, const char **reason)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f)
			return fail(reason, "control character or space in URL");
	}
	return 0;
}

/* Case-insensitive comparison of s[0..n) with a lowercase literal. */
static int equals_lower(const char *s, size_t n, const char *lit)
{
	if (strlen(lit) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)s[i]) != lit[i])
			return 0;
	return 1;
}

/* Reads "scheme://"; on success *pos is the offset of the authority. */
static int parse_scheme(const char *s, size_t len, int allow_https, struct url *u, size_t *pos,
			const char **reason)
{
	size_t i = 0;
	while (i < len && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i]) ||
			   s[i] == '+' || s[i] == '-' || s[i] == '.'))
		i++;
	if (i == 0 || i == len || s[i] != ':' || !is_alpha((unsigned char)s[0]))
		return fail(reason, "missing scheme");
	if (equals_lower(s, i, "http"))
		u->scheme = URL_HTTP;
	else if (allow_https && equals_lower(s, i, "https"))
		u->scheme = URL_HTTPS;
	else
		return fail(reason, "unsupported scheme");
	if (len - i < 3 || s[i + 1] != '/' || s[i + 2] != '/')
		return fail(reason, "missing \"//\" after scheme");
	*pos = i + 3;
	return 0;
}

/* ---- IPv4 (WHATWG "IPv4 parser") ---- */

/* Parses one IPv4 part: decimal, 0x/0X hex (digits optional: "0x" is 0) or leading-0 octal.
 * Values above 2^32 saturate at 2^32 (they are out of range anyway). */
static int ipv4_number(const char *s, size_t n, uint64_t *out)
{
	unsigned base = 10;
	if (n == 0)
		return -1;
	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		n -= 2;
	} else if (n >= 2 && s[0] == '0') {
		base = 8;
		s++;
		n--;
	}
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		int d = hex_value((unsigned char)s[i]);
		if (d < 0 || (unsigned)d >= base)
			return -1;
		v = v * base + (unsigned)d;
		if (v > 0x100000000ull)
			v = 0x100000000ull;
	}
	*out = v;
	return 0;
}

/* WHATWG "ends in a number": the last label is all digits, or a valid hex number ("0x..."). */
static int ends_in_number(const char *h, size_t n)
{
	size_t start = n;
	while (start > 0 && h[start - 1] != '.')
		start--;
	const char *last = h + start;
	size_t ln = n - start;
	if (ln == 0)
		return 0;
	size_t i = 0;
	while (i < ln && is_digit((unsigned char)last[i]))
		i++;
	if (i == ln)
		return 1;
	uint64_t ignored;
	return ln >= 2 && last[0] == '0' && lower((unsigned char)last[1]) == 'x' &&
	       ipv4_number(last, ln, &ignored) == 0;
}

/* h[0..n) without the optional trailing dot. */
static int parse_ipv4(const char *h, size_t n, struct url *u, const char **reason)
{
	uint64_t part[4];
	size_t count = 0, start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && h[i] != '.')
			continue;
		if (count == 4 || ipv4_number(h + start, i - start, &part[count]) != 0)
			return fail(reason, "invalid IPv4 address");
		count++;
		start = i + 1;
	}
	for (size_t i = 0; i + 1 < count; i++)
		if (part[i] > 255)
			return fail(reason, "invalid IPv4 address");
	if (part[count - 1] >= (1ull << (8 * (5 - count))))
		return fail(reason, "invalid IPv4 address");
	uint32_t addr = (uint32_t)part[count - 1];
	for (size_t i = 0; i + 1 < count; i++)
		addr |= (uint32_t)part[i] << (8 * (3 - i));
	for (int i = 0; i < 4; i++)
		u->ip[i] = (uint8_t)(addr >> (8 * (3 - i)));
	snprintf(u->host, sizeof u->host, "%u.%u.%u.%u", u->ip[0], u->ip[1], u->ip[2], u->ip[3]);
	u->host_kind = URL_HOST_IPV4;
	return 0;
}

/* ---- IPv6 literal ---- */

/* h[0..n) is the text between the brackets. */
static int parse_ipv6(const char *h, size_t n, struct url *u, const char **reason)
{
	char buf[INET6_ADDRSTRLEN];
	if (memchr(h, '%', n))
		return fail(reason, "IPv6 zone identifiers not supported");
	if (n == 0 || n >= sizeof buf)
		return fail(reason, "invalid IPv6 address");
	memcpy(buf, h, n);
	buf[n] = '\0';
	struct in6_addr a;
	if (inet_pton(AF_INET6, buf, &a) != 1)
		return fail(reason, "invalid IPv6 address");
	memcpy(u->ip, &a, 16);
	if (!inet_ntop(AF_INET6, &a, u->host, sizeof u->host))
		return fail(reason, "invalid IPv6 address");
	u->host_kind = URL_HOST_IPV6;
	return 0;
}

/* ---- registered names ---- */

/* h[0..n) without the optional trailing dot; checks labels and lengths. */
static int check_labels(const char *h, size_t n, const char **reason)
{
	if (n > URL_NAME_MAX)
		return fail(reason, "host name too long");
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && h[i] != '.')
			continue;
		if (i == start)
			return fail(reason, "empty label in host");
		if (i - start > URL_LABEL_MAX)
			return fail(reason, "host name too long");
		start = i + 1;
	}
	return 0;
}

static int parse_name_or_ipv4(const char *h, size_t n, struct url *u, const char **reason)
{
	if (n == 0)
		return fail(reason, "empty host");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)h[i] >= 0x80)
			return fail(reason, "non-ASCII host (IDNA) not supported");
	for (size_t i = 0; i < n; i++)
		if (!is_host_char((unsigned char)h[i]))
			return fail(reason, "invalid character in host");
	size_t core = (h[n - 1] == '.') ? n - 1 : n; /* one trailing dot is allowed */
	if (core > 0 && ends_in_number(h, core))
		return parse_ipv4(h, core, u, reason);
	if (check_labels(h, core, reason) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		u->host[i] = (char)lower((unsigned char)h[i]);
	u->host[n] = '\0';
	u->host_kind = URL_HOST_NAME;
	return 0;
}

/* ---- port ---- */

/* p[0..n) are the bytes after ':'; empty means the scheme's default (WHATWG). */
static int parse_port(const char *p, size_t n, struct url *u, const char **reason)
{
	if (n == 0)
		return 0;
	uint32_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit((unsigned char)p[i]))
			return fail(reason, "invalid port");
		v = v * 10 + (uint32_t)(p[i] - '0');
		if (v > 65535)
			return fail(reason, "port out of range");
	}
	if (v == 0)
		return fail(reason, "port out of range");
	u->port = (uint16_t)v;
	u->port_explicit = 1;
	return 0;
}

/* ---- authority ---- */

/* hp[0..n) is host [":" port], after any userinfo. */
static int parse_hostport(const char *hp, size_t n, struct url *u, const char **reason)
{
	size_t host_end;
	if (n > 0 && hp[0] == '[') {
		const char *close = memchr(hp, ']', n);
		if (!close)
			return fail(reason, "missing ']' after IPv6 address");
		host_end = (size_t)(close - hp) + 1;
		if (host_end < n && hp[host_end] != ':')
			return fail(reason, "invalid character after IPv6 address");
		if (parse_ipv6(hp + 1, host_end - 2, u, reason) != 0)
			return -1;
	} else {
		const char *colon = memchr(hp, ':', n);
		host_end = colon ? (size_t)(colon - hp) : n;
		if (parse_name_or_ipv4(hp, host_end, u, reason) != 0)
			return -1;
	}
	if (host_end == n)
		return 0;
	return parse_port(hp + host_end + 1, n - host_end - 1, u, reason);
}

/* The authority is s[off..end). */
static int parse_authority(const char *s, size_t off, size_t end, struct url *u,
			   const char **reason)
{
	if (memchr(s + off, '\\', end - off))
		return fail(reason, "backslash in authority");
	size_t host_off = off;
	for (size_t i = end; i > off; i--) {
		if (s[i - 1] == '@') {
			u->userinfo_off = off;
			u->userinfo_len = i - 1 - off;
			host_off = i;
			break;
		}
	}
	return parse_hostport(s + host_off, end - host_off, u, reason);
}

/* ---- public ---- */

int url_parse(const char *s, size_t len, int allow_https, struct url *u, const char **reason)
{
	assert(u && reason && (s || len == 0));
	memset(u, 0, sizeof *u);
	*reason = NULL;
	if (len == 0)
		return fail(reason, "empty URL");
	size_t pos;
	if (check_bytes(s, len, reason) != 0 || parse_scheme(s, len, allow_https, u, &pos, reason) != 0)
		return -1;
	u->port = (u->scheme == URL_HTTPS) ? 443 : 80;
	size_t auth_end = pos;
	while (auth_end < len && s[auth_end] != '/' && s[auth_end] != '?' && s[auth_end] != '#')
		auth_end++;
	if (parse_authority(s, pos, auth_end, u, reason) != 0)
		return -1;
	size_t target_end = auth_end;
	while (target_end < len && s[target_end] != '#')
		target_end++;
	u->target_off = auth_end;
	u->target_len = target_end - auth_end;
	return 0;
}

int url_host_header(const struct url *u, char *out, size_t cap)
{
	assert(u && (out || cap == 0));
	uint16_t def = (u->scheme == URL_HTTPS) ? 443 : 80;
	const char *open = (u->host_kind == URL_HOST_IPV6) ? "[" : "";
	const char *close = (u->host_kind == URL_HOST_IPV6) ? "]" : "";
	int n;
	if (u->port != def)
		n = snprintf(out, cap, "%s%s%s:%u", open, u->host, close, (unsigned)u->port);
	else
		n = snprintf(out, cap, "%s%s%s", open, u->host, close);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	return n;
}

/* url.h - URL parsing for fetching, pure: splits an absolute http:// (later https://) URL into what a
 * request needs. The path, query and userinfo are kept exactly as sent (no re-encoding); the fragment is
 * dropped from the request target; the host is lowercased. No I/O, no allocation, no logging. */
#ifndef FETCHD_URL_H
#define FETCHD_URL_H

#include <stddef.h>
#include <stdint.h>

#define URL_HOST_MAX 256 /* a DNS name is at most 253 bytes; an IPv6 literal far less */

enum url_scheme { URL_HTTP = 1, URL_HTTPS = 2 };
enum url_host_kind { URL_HOST_NAME = 1, URL_HOST_IPV4, URL_HOST_IPV6 };

struct url {
	enum url_scheme scheme;
	enum url_host_kind host_kind;
	uint16_t port;                /* explicit or the scheme's default (80, 443) */
	int port_explicit;            /* 1 when the URL names a port */
	char host[URL_HOST_MAX];      /* lowercased name; IPv4 in dotted decimal (normalised, see
	                                 below); IPv6 without brackets, as inet_ntop prints it */
	uint8_t ip[16];               /* URL_HOST_IPV4: first 4 bytes (network order); IPV6: 16 bytes */
	/* Spans into the input string (offset, length). */
	size_t target_off, target_len;     /* path + query as sent, up to (not including) '#'. It
	                                      starts at the first '/' or '?' after the authority.
	                                      When it does not start with '/' (no path: empty for
	                                      "http://a", "?x" for "http://a?x"), callers send "/"
	                                      before it ("/", "/?x"). */
	size_t userinfo_off, userinfo_len; /* "user:pass" before '@'; len 0 when absent */
};

/* Parse an absolute URL of len bytes (not necessarily NUL-terminated). Leading and trailing ASCII
 * whitespace is an error (the caller strips lines). Returns 0, or -1 with *reason set to a static
 * string ("unsupported scheme", "empty host", "port out of range", "invalid character in host",
 * "control character or space in URL", ...).
 * Stricter than WHATWG on purpose: "scheme://" is required; no byte <= 0x20 or 0x7f anywhere
 * (tabs and newlines are not stripped); no backslash in the authority; host names are ASCII
 * letters, digits, '-', '_' and '.', with no empty label except one trailing dot (kept), labels
 * <= 63 and names <= 253 bytes (no IDNA, no percent-decoding); port 1-65535 ("http://a:/" means
 * the default port). Userinfo is everything before the last '@' of the authority, not checked.
 * IPv6 literals are bracketed, without zone identifier. Non-ASCII bytes in the path and query are
 * kept as sent; the fragment is not checked beyond the byte rule above.
 * Accepted schemes: http (and https when allow_https != 0). Scheme and host are case-insensitive.
 * IPv4 hosts follow the WHATWG rules: 1-4 parts, each decimal, 0x hex or 0 octal ("0x7f.1",
 * "2130706433", "127.1" all mean 127.0.0.1) and are normalised into host/ip. */
int url_parse(const char *s, size_t len, int allow_https, struct url *u, const char **reason);

/* The Host header value, as curl sends it: the normalised host (IPv6 in brackets), plus ":port" when
 * the port is not the scheme's default. Writes a NUL-terminated string; returns its length, or -1 if
 * cap is too small. */
int url_host_header(const struct url *u, char *out, size_t cap);

#endif

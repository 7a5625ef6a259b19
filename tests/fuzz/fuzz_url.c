/* fuzz_url.c - libFuzzer harness for url_parse and url_host_header (daemon/url.h).
 *
 * The input is the URL (not NUL-terminated: libFuzzer's buffer ends exactly at the last byte). It is
 * parsed with allow_https 0 and 1, twice each into differently pre-filled structs (the results must be
 * identical), and on success checked against url.h: the spans lie within the input and say what they
 * should (target from the first '/' or '?' up to '#', userinfo before the last '@'), the host is
 * NUL-terminated, a lowercased name of host characters without ':', or an address that inet_pton reads
 * back into ip[]; the port is not 0 and is the scheme's default unless explicit; url_host_header fits in
 * 300 bytes; and the canonical form "scheme://" Host target parses again to the same host, address and
 * port. allow_https only widens what is accepted. */
#include "daemon/url.h"
#include "tests/fuzz/check.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse_checked(const char *s, size_t len, int allow_https, struct url *u)
{
	struct url again;
	const char *reason = "unset", *reason2 = "unset";
	int rc, rc2;

	memset(u, 0xa5, sizeof(*u));
	memset(&again, 0x5a, sizeof(again));
	rc = url_parse(s, len, allow_https, u, &reason);
	rc2 = url_parse(s, len, allow_https, &again, &reason2);
	CHECK(rc == 0 || rc == -1, "url_parse returned %d", rc);
	CHECK(rc == rc2 && memcmp(u, &again, sizeof(*u)) == 0, "two parses of the same input differ");
	if (rc < 0)
		CHECK(reason && reason[0] && reason == reason2, "failure without a reason");
	return rc;
}

static bool is_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

static void check_success(const char *s, size_t len, int allow_https, const struct url *u)
{
	size_t hlen = strnlen(u->host, sizeof(u->host)), auth, host_start, host_end, i;
	uint16_t def = u->scheme == URL_HTTPS ? 443 : 80;
	char hh[300], canon_host[URL_HOST_MAX];
	uint8_t bin[16];
	int n;

	CHECK(u->scheme == URL_HTTP || (u->scheme == URL_HTTPS && allow_https), "scheme %d with allow_https %d",
	      u->scheme, allow_https);
	auth = u->scheme == URL_HTTPS ? 8 : 7; /* "http://", "https://" in any case */
	CHECK(len >= auth && memcmp(s + auth - 3, "://", 3) == 0, "no scheme:// at the start");

	/* target: from the end of the authority up to '#' (or the end) */
	CHECK(u->target_off >= auth && u->target_off <= len && u->target_len <= len - u->target_off,
	      "target span %zu+%zu outside %zu bytes", u->target_off, u->target_len, len);
	CHECK(u->target_len == 0 || s[u->target_off] == '/' || s[u->target_off] == '?',
	      "target starts with '%c'", s[u->target_off]);
	CHECK(!memchr(s + u->target_off, '#', u->target_len), "'#' inside the target");
	CHECK(u->target_off + u->target_len == len || s[u->target_off + u->target_len] == '#',
	      "target ends before neither '#' nor the end");
	for (i = auth; i < u->target_off; i++)
		CHECK(s[i] != '/' && s[i] != '?' && s[i] != '#' && s[i] != '\\', "authority holds '%c'", s[i]);

	/* userinfo: before the last '@' of the authority */
	host_start = auth;
	for (i = u->target_off; i > auth; i--)
		if (s[i - 1] == '@') {
			host_start = i;
			break;
		}
	if (u->userinfo_len) {
		CHECK(u->userinfo_off == auth && u->userinfo_off + u->userinfo_len + 1 == host_start,
		      "userinfo span %zu+%zu, host at %zu", u->userinfo_off, u->userinfo_len, host_start);
	} else {
		CHECK(host_start == auth || host_start == auth + 1, "userinfo missing, host at %zu", host_start);
	}

	/* host */
	CHECK(hlen > 0 && hlen < sizeof(u->host), "host length %zu", hlen);
	if (u->host_kind == URL_HOST_IPV6) {
		const char *close = memchr(s + host_start, ']', u->target_off - host_start);

		CHECK(s[host_start] == '[' && close, "IPv6 host without brackets in the input");
		host_end = (size_t)(close - s) + 1;
		CHECK(inet_pton(AF_INET6, u->host, bin) == 1 && memcmp(bin, u->ip, 16) == 0,
		      "IPv6 host '%s' does not match ip[]", u->host);
		CHECK(inet_ntop(AF_INET6, u->ip, canon_host, sizeof(canon_host)) && strcmp(canon_host, u->host) == 0,
		      "IPv6 host '%s' not in inet_ntop form", u->host);
	} else {
		const char *colon = memchr(s + host_start, ':', u->target_off - host_start);

		host_end = colon ? (size_t)(colon - s) : u->target_off;
		CHECK(!strchr(u->host, ':'), "host '%s' holds ':'", u->host);
		if (u->host_kind == URL_HOST_IPV4) {
			CHECK(inet_pton(AF_INET, u->host, bin) == 1 && memcmp(bin, u->ip, 4) == 0,
			      "IPv4 host '%s' does not match ip[]", u->host);
			snprintf(canon_host, sizeof(canon_host), "%u.%u.%u.%u", u->ip[0], u->ip[1], u->ip[2], u->ip[3]);
			CHECK(strcmp(canon_host, u->host) == 0, "IPv4 host '%s' not normalised", u->host);
		} else {
			CHECK(u->host_kind == URL_HOST_NAME, "host_kind %d", u->host_kind);
			CHECK(hlen == host_end - host_start, "host '%s' from a %zu-byte span", u->host,
			      host_end - host_start);
			for (i = 0; i < hlen; i++) {
				char c = s[host_start + i];

				CHECK(is_host_char(u->host[i]), "host '%s' holds byte 0x%02x", u->host,
				      (unsigned char)u->host[i]);
				CHECK(u->host[i] == ((c >= 'A' && c <= 'Z') ? c + 32 : c), "host '%s' is not the input "
				      "lowercased", u->host);
			}
			CHECK(hlen <= 254 && (hlen < 254 || u->host[253] == '.'), "name of %zu bytes", hlen);
			CHECK(u->host[0] != '.' && !strstr(u->host, ".."), "empty label in '%s'", u->host);
		}
	}

	/* port */
	CHECK(u->port != 0, "port 0");
	if (host_end < u->target_off) {
		unsigned long v = 0;

		CHECK(s[host_end] == ':', "host followed by '%c'", s[host_end]);
		for (i = host_end + 1; i < u->target_off; i++) {
			CHECK(s[i] >= '0' && s[i] <= '9', "port holds '%c'", s[i]);
			v = v * 10 + (unsigned long)(s[i] - '0');
			CHECK(v <= 65535, "port out of range accepted");
		}
		if (i == host_end + 1)
			CHECK(!u->port_explicit && u->port == def, "empty port is not the default");
		else
			CHECK(u->port_explicit && u->port == v, "port %u, the URL says %lu", u->port, v);
	} else {
		CHECK(!u->port_explicit && u->port == def, "port %u without one in the URL", u->port);
	}

	/* Host header */
	n = url_host_header(u, hh, sizeof(hh));
	CHECK(n > 0 && (size_t)n == strlen(hh), "url_host_header returned %d", n);
	CHECK((hh[0] == '[') == (u->host_kind == URL_HOST_IPV6), "Host '%s'", hh);
	CHECK(url_host_header(u, hh, (size_t)n) == -1, "url_host_header fits without room for the NUL");
	CHECK(url_host_header(u, hh, (size_t)n + 1) == n, "url_host_header needs more than n + 1");

	/* the canonical form parses to the same place */
	{
		const char *scheme = u->scheme == URL_HTTPS ? "https://" : "http://";
		bool slash = u->target_len == 0 || s[u->target_off] != '/';
		size_t clen = strlen(scheme) + (size_t)n + slash + u->target_len;
		char *canon = malloc(clen);
		struct url v;

		CHECK(canon != NULL, "out of memory");
		memcpy(canon, scheme, strlen(scheme));
		memcpy(canon + strlen(scheme), hh, (size_t)n);
		if (slash)
			canon[strlen(scheme) + (size_t)n] = '/';
		memcpy(canon + clen - u->target_len, s + u->target_off, u->target_len);
		CHECK(parse_checked(canon, clen, allow_https, &v) == 0, "canonical form '%.*s' does not parse",
		      (int)clen, canon);
		CHECK(v.scheme == u->scheme && v.host_kind == u->host_kind && strcmp(v.host, u->host) == 0 &&
		      memcmp(v.ip, u->ip, sizeof(v.ip)) == 0 && v.port == u->port,
		      "canonical form '%.*s' parses to %s port %u, not %s port %u", (int)clen, canon, v.host, v.port,
		      u->host, u->port);
		CHECK(v.target_off == clen - u->target_len - slash && v.target_len == u->target_len + slash,
		      "canonical target %zu+%zu", v.target_off, v.target_len);
		free(canon);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct url u0, u1;
	int r0, r1;

	r0 = parse_checked(s, size, 0, &u0);
	r1 = parse_checked(s, size, 1, &u1);
	if (r0 == 0) {
		CHECK(r1 == 0 && memcmp(&u0, &u1, sizeof(u0)) == 0, "allow_https changed an http URL");
		check_success(s, size, 0, &u0);
	}
	if (r1 == 0) {
		CHECK(r0 == 0 || u1.scheme == URL_HTTPS, "an http URL accepted only with allow_https");
		check_success(s, size, 1, &u1);
	}
	return 0;
}

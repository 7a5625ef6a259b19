/* result.c - encode a struct result as one JSON Lines record. Field order is fixed (docs/protocol.md). */
#include "daemon/result.h"

#include "daemon/hex.h"
#include "daemon/json.h"

#include <string.h>

static void result_put(struct buf *b, const char *s, size_t n)
{
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

#define RESULT_LIT(b, lit) result_put((b), (lit), sizeof(lit) - 1)

/* Decimal digits of v; the buffer has room (reserved by the caller). */
static void result_u64(struct buf *b, uint64_t v)
{
	char tmp[20];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		b->p[b->len++] = (uint8_t)tmp[--n];
}

/* Nanoseconds as milliseconds with three decimals ("12.345"), rounded to the microsecond. */
static void result_ms(struct buf *b, int64_t ns)
{
	uint64_t us = ns > 0 ? ((uint64_t)ns + 500) / 1000 : 0;
	result_u64(b, us / 1000);
	b->p[b->len++] = '.';
	b->p[b->len++] = (uint8_t)('0' + us / 100 % 10);
	b->p[b->len++] = (uint8_t)('0' + us / 10 % 10);
	b->p[b->len++] = (uint8_t)('0' + us % 10);
}

static void result_hex(struct buf *b, const uint8_t *p, size_t n)
{
	b->p[b->len++] = '"';
	hex_encode(p, n, (char *)b->p + b->len); /* its NUL becomes the closing quote */
	b->len += 2 * n;
	b->p[b->len++] = '"';
}

/* Room for everything but the strings json_str reserves for itself. */
#define RESULT_FIXED_BYTES 512

static int result_error(struct buf *b, const struct result *r)
{
	if (!r->err_class) {
		RESULT_LIT(b, "null");
		return 0;
	}
	RESULT_LIT(b, "{\"class\":");
	if (json_str(b, r->err_class, strlen(r->err_class)) < 0)
		return -1;
	RESULT_LIT(b, ",\"message\":");
	if (json_str(b, r->err_msg, strlen(r->err_msg)) < 0 || buf_reserve(b, RESULT_FIXED_BYTES) < 0)
		return -1;
	if (r->err_phase) {
		RESULT_LIT(b, ",\"phase\":");
		if (json_str(b, r->err_phase, strlen(r->err_phase)) < 0 || buf_reserve(b, RESULT_FIXED_BYTES) < 0)
			return -1;
	}
	RESULT_LIT(b, "}");
	return 0;
}

static int result_opt_str(struct buf *b, const char *s)
{
	if (!s || !*s) {
		RESULT_LIT(b, "null");
		return 0;
	}
	return json_str(b, s, strlen(s)) < 0 || buf_reserve(b, RESULT_FIXED_BYTES) < 0 ? -1 : 0;
}

int result_hop_add(struct buf *hops, int status, const char *url, size_t len)
{
	uint16_t st = (uint16_t)status;
	uint32_t n = (uint32_t)len;
	if (buf_reserve(hops, sizeof(st) + sizeof(n) + len) < 0)
		return -1;
	buf_append(hops, &st, sizeof(st));
	buf_append(hops, &n, sizeof(n));
	buf_append(hops, url, len);
	return 0;
}

/* "redirects":[{"url":...,"status":301},...] */
static int result_hops(struct buf *b, const struct buf *hops)
{
	RESULT_LIT(b, ",\"redirects\":[");
	for (size_t off = 0; hops && off + 6 <= hops->len;) {
		uint16_t st;
		uint32_t n;
		memcpy(&st, hops->p + off, sizeof(st));
		memcpy(&n, hops->p + off + 2, sizeof(n));
		off += 6;
		if (buf_reserve(b, RESULT_FIXED_BYTES) < 0)
			return -1;
		RESULT_LIT(b, "{\"url\":");
		if (json_str(b, hops->p + off, n) < 0 || buf_reserve(b, RESULT_FIXED_BYTES) < 0)
			return -1;
		off += n;
		RESULT_LIT(b, ",\"status\":");
		result_u64(b, st);
		RESULT_LIT(b, "}");
		if (off < hops->len)
			RESULT_LIT(b, ",");
	}
	RESULT_LIT(b, "]");
	return 0;
}

const char *const result_classes[RESULT_NCLASSES] = {
	"url", "dns", "blocked", "tls", "connect", "timeout", "protocol", "too_large", "redirects", "robots",
	"cancelled", "internal",
};

unsigned result_class_index(const char *cls)
{
	for (unsigned i = 0; i < RESULT_NCLASSES; i++)
		if (!strcmp(result_classes[i], cls))
			return i;
	return RESULT_NCLASSES - 1;
}

void result_init(struct result *r)
{
	memset(r, 0, sizeof(*r));
	r->status = -1;
	r->tls_verified = -1;
	r->seq = -1;
}

int result_encode(struct buf *b, const struct result *r)
{
	if (buf_reserve(b, RESULT_FIXED_BYTES) < 0)
		return -1;
	RESULT_LIT(b, "{\"url\":");
	if (json_str(b, r->url, r->url_len) < 0 || buf_reserve(b, RESULT_FIXED_BYTES) < 0)
		return -1;
	RESULT_LIT(b, ",\"final_url\":");
	if (json_str(b, r->final_url ? r->final_url : r->url, r->final_url ? r->final_url_len : r->url_len) < 0 ||
	    buf_reserve(b, RESULT_FIXED_BYTES) < 0 || result_hops(b, r->hops) < 0)
		return -1;
	RESULT_LIT(b, ",\"status\":");
	if (r->status >= 0)
		result_u64(b, (uint64_t)r->status);
	else
		RESULT_LIT(b, "null");
	RESULT_LIT(b, ",\"error\":");
	if (result_error(b, r) < 0)
		return -1;
	RESULT_LIT(b, ",\"body_bytes\":");
	result_u64(b, r->body_bytes);
	RESULT_LIT(b, ",\"body_sha256\":");
	if (r->have_sha)
		result_hex(b, r->sha, sizeof(r->sha));
	else
		RESULT_LIT(b, "null");
	RESULT_LIT(b, ",\"content_type\":");
	if (result_opt_str(b, r->content_type) < 0)
		return -1;
	RESULT_LIT(b, ",\"content_encoding\":");
	if (result_opt_str(b, r->content_encoding) < 0)
		return -1;
	RESULT_LIT(b, ",\"decoded\":");
	if (r->decoded)
		RESULT_LIT(b, "true");
	else
		RESULT_LIT(b, "false");
	RESULT_LIT(b, ",\"wire_bytes\":");
	result_u64(b, r->wire_bytes);
	RESULT_LIT(b, ",\"ip\":");
	if (result_opt_str(b, r->ip) < 0)
		return -1;
	RESULT_LIT(b, ",\"tls_version\":");
	if (result_opt_str(b, r->tls_version) < 0)
		return -1;
	RESULT_LIT(b, ",\"tls_cipher\":");
	if (result_opt_str(b, r->tls_cipher) < 0)
		return -1;
	RESULT_LIT(b, ",\"tls_backend\":");
	if (result_opt_str(b, r->tls_backend) < 0)
		return -1;
	RESULT_LIT(b, ",\"tls_verified\":");
	if (r->tls_verified < 0)
		RESULT_LIT(b, "null");
	else if (r->tls_verified)
		RESULT_LIT(b, "true");
	else
		RESULT_LIT(b, "false");
	RESULT_LIT(b, ",\"timings_ms\":{\"dns\":");
	result_ms(b, r->dns_ns);
	RESULT_LIT(b, ",\"connect\":");
	result_ms(b, r->connect_ns);
	RESULT_LIT(b, ",\"tls\":");
	result_ms(b, r->tls_ns);
	RESULT_LIT(b, ",\"ttfb\":");
	result_ms(b, r->ttfb_ns);
	RESULT_LIT(b, ",\"total\":");
	result_ms(b, r->total_ns);
	RESULT_LIT(b, "},\"attempts\":");
	result_u64(b, r->attempts);
	if (r->seq >= 0) {
		RESULT_LIT(b, ",\"seq\":");
		result_u64(b, (uint64_t)r->seq);
	}
	RESULT_LIT(b, "}\n");
	return 0;
}

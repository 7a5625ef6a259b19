/* result.c - encode a struct result as one JSON Lines record. Field order is fixed (docs/protocol.md). */
#include "daemon/result.h"

#include "daemon/json.h"

#include <string.h>

static int result_hex(struct buf *b, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	if (buf_reserve(b, n * 2 + 2) < 0)
		return -1;
	b->p[b->len++] = '"';
	for (size_t i = 0; i < n; i++) {
		b->p[b->len++] = (uint8_t)hex[p[i] >> 4];
		b->p[b->len++] = (uint8_t)hex[p[i] & 15];
	}
	b->p[b->len++] = '"';
	return 0;
}

static int result_error(struct buf *b, const struct result *r)
{
	if (!r->err_class)
		return buf_append(b, "null", 4);
	int rc = buf_printf(b, "{\"class\":\"%s\",\"message\":", r->err_class);
	rc |= json_str(b, r->err_msg, strlen(r->err_msg));
	if (r->err_phase)
		rc |= buf_printf(b, ",\"phase\":\"%s\"", r->err_phase);
	rc |= buf_append(b, "}", 1);
	return rc;
}

int result_encode(struct buf *b, const struct result *r)
{
	int rc = buf_append(b, "{\"url\":", 7);
	rc |= json_str(b, r->url, r->url_len);
	rc |= buf_append(b, ",\"final_url\":", 13);
	if (r->final_url)
		rc |= json_str(b, r->final_url, r->final_url_len);
	else
		rc |= json_str(b, r->url, r->url_len);
	if (r->status >= 0)
		rc |= buf_printf(b, ",\"status\":%d", r->status);
	else
		rc |= buf_append(b, ",\"status\":null", 14);
	rc |= buf_append(b, ",\"error\":", 9);
	rc |= result_error(b, r);
	rc |= buf_printf(b, ",\"body_bytes\":%llu,\"body_sha256\":", (unsigned long long)r->body_bytes);
	rc |= r->have_sha ? result_hex(b, r->sha, sizeof(r->sha)) : buf_append(b, "null", 4);
	rc |= buf_append(b, ",\"content_type\":", 16);
	rc |= r->content_type ? json_str(b, r->content_type, strlen(r->content_type)) : buf_append(b, "null", 4);
	rc |= buf_append(b, ",\"ip\":", 6);
	rc |= r->ip[0] ? json_str(b, r->ip, strlen(r->ip)) : buf_append(b, "null", 4);
	rc |= buf_printf(b,
			 ",\"timings_ms\":{\"dns\":%.3f,\"connect\":%.3f,\"tls\":%.3f,\"ttfb\":%.3f,\"total\":%.3f}"
			 ",\"attempts\":%u}\n",
			 r->dns_ms, r->connect_ms, r->tls_ms, r->ttfb_ms, r->total_ms, r->attempts);
	return rc ? -1 : 0;
}

/* proto.c - control protocol decoding: frames, URLS lines, HELLO fields. */
#include "daemon/proto.h"

#include <string.h>

#include "daemon/json.h"
#include "daemon/protocol.h"

int proto_frame(const uint8_t *p, size_t len, struct proto_frame *f)
{
	if (len < FETCHD_FRAME_HDR_BYTES)
		return PROTO_NEED_MORE;
	uint32_t n = fetchd_frame_len(p);
	if (n > FETCHD_FRAME_MAX_BYTES)
		return PROTO_E_TOO_LARGE;
	if (len - FETCHD_FRAME_HDR_BYTES < n)
		return PROTO_NEED_MORE;
	f->type = p[4];
	f->payload = p + FETCHD_FRAME_HDR_BYTES;
	f->len = n;
	f->size = FETCHD_FRAME_HDR_BYTES + (size_t)n;
	return PROTO_OK;
}

int proto_line(const uint8_t *p, size_t len, const char **line, size_t *line_len, size_t *consumed)
{
	if (len == 0)
		return PROTO_NEED_MORE;
	const uint8_t *nl = memchr(p, '\n', len);
	if (!nl)
		return PROTO_E_NO_NEWLINE;
	size_t n = (size_t)(nl - p);
	*consumed = n + 1;
	if (n && p[n - 1] == '\r')
		n--;
	*line = (const char *)p;
	*line_len = n;
	return PROTO_OK;
}

int proto_hello(const uint8_t *p, size_t len, struct proto_hello *h)
{
	const char *s = (const char *)p;
	h->protocol = -1;
	h->hash = true;
	if (!json_get_int(s, len, "protocol", &h->protocol) || h->protocol != FETCHD_PROTO_VERSION)
		return PROTO_E_VERSION;
	json_get_bool(s, len, "hash", &h->hash);
	h->options_len = json_get_str(s, len, "options", h->options, sizeof(h->options));
	h->options[h->options_len < 0 ? 0 : h->options_len] = 0;
	if (h->options_len < 0 && json_has(s, len, "options"))
		return PROTO_E_OPTIONS;
	int vn = json_get_str(s, len, "verb", h->verb, sizeof(h->verb));
	h->verb[vn < 0 ? 0 : vn] = 0;
	if (vn < 0 && json_has(s, len, "verb"))
		return PROTO_E_VERB;
	int jn = json_get_str(s, len, "job", h->job, sizeof(h->job));
	h->job[jn < 0 ? 0 : jn] = 0;
	h->detach = false;
	json_get_bool(s, len, "detach", &h->detach);
	char cap[16];
	h->capture = 0;
	int n = json_get_str(s, len, "capture", cap, sizeof(cap));
	if (n < 0 && json_has(s, len, "capture"))
		return PROTO_E_CAPTURE;
	if (n >= 0) {
		cap[n] = 0;
		if (!strcmp(cap, "raw"))
			h->capture = FETCHD_CAPTURE_RAW;
		else if (!strcmp(cap, "body"))
			h->capture = FETCHD_CAPTURE_BODY;
		else if (!strcmp(cap, "raw,body") || !strcmp(cap, "body,raw"))
			h->capture = FETCHD_CAPTURE_RAW | FETCHD_CAPTURE_BODY;
		else
			return PROTO_E_CAPTURE;
	}
	return PROTO_OK;
}

/* fuzz_proto.c - libFuzzer harness for the control-protocol decoder (daemon/proto.h).
 *
 * The input is what a client sends on the control socket. It is walked as daemon/control.c walks a
 * client's buffer: frames with proto_frame; the first must be HELLO (read with proto_hello), then URLS
 * frames (split into lines with proto_line, each line given to url_parse as control.c does) and END;
 * a second HELLO, URLS after END, an unknown type, a bad HELLO, a URLS payload without its final
 * newline or a frame over the limit end the session, as they do in the daemon.
 * Invariants: every decoded size stays within the bytes offered; a frame is reported only once all of
 * it is there (every shorter prefix needs more); PROTO_E_TOO_LARGE comes exactly when the header's
 * length exceeds FETCHD_FRAME_MAX_BYTES; lines are the bytes before a '\n' (one '\r' dropped); HELLO
 * accepted means "protocol": 1; the walk always advances (bounded loop counts). Decoding is repeated
 * to check it is deterministic. */
#include "daemon/proto.h"
#include "tests/fuzz/check.h"
#include "daemon/protocol.h"
#include "daemon/opts.h"
#include "daemon/url.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define MAX_URL_BYTES 8192 /* the default [control] max_url_bytes */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* proto_frame on p[0..len), with its contract checked. */
static int frame(const uint8_t *p, size_t len, struct proto_frame *f)
{
	struct proto_frame g;
	int rc;

	memset(f, 0xa5, sizeof(*f));
	rc = proto_frame(p, len, f);
	CHECK(rc == PROTO_OK || rc == PROTO_NEED_MORE || rc == PROTO_E_TOO_LARGE, "proto_frame returned %d", rc);
	if (len < FETCHD_FRAME_HDR_BYTES) {
		CHECK(rc == PROTO_NEED_MORE, "%d from %zu bytes, less than a header", rc, len);
		return rc;
	}
	if (be32(p) > FETCHD_FRAME_MAX_BYTES) {
		CHECK(rc == PROTO_E_TOO_LARGE, "length %u over the limit gave %d", be32(p), rc);
		return rc;
	}
	CHECK(rc != PROTO_E_TOO_LARGE, "PROTO_E_TOO_LARGE for a header saying %u", be32(p));
	if (len - FETCHD_FRAME_HDR_BYTES < be32(p)) {
		CHECK(rc == PROTO_NEED_MORE, "frame of %u bytes reported from %zu", be32(p), len);
		return rc;
	}
	CHECK(rc == PROTO_OK, "a whole frame gave %d", rc);
	CHECK(f->type == p[4] && f->len == be32(p) && f->payload == p + FETCHD_FRAME_HDR_BYTES &&
	      f->size == FETCHD_FRAME_HDR_BYTES + (size_t)f->len && f->size <= len,
	      "frame type %u len %u size %zu from %zu bytes", f->type, f->len, f->size, len);
	CHECK(proto_frame(p, len, &g) == PROTO_OK && g.type == f->type && g.payload == f->payload &&
	      g.len == f->len && g.size == f->size, "proto_frame not deterministic");
	return rc;
}

/* A URL's options, as control.c applies them over a batch's: within the limits, or an error with a
 * message; the header lines stay well-formed and within their buffer. */
static void options(const char *s, size_t len)
{
	static const struct fetch_opts max = {
		.method = OPTS_GET, .follow = true, .decode = true, .max_redirects = 10, .retries = 2,
		.timeout_ms = 120000, .connect_timeout_ms = 10000, .header_timeout_ms = 30000,
		.idle_timeout_ms = 30000, .max_body_bytes = 1u << 30,
	};
	struct fetch_opts o = max;
	char extra[OPTS_EXTRA_MAX], err[OPTS_ERR_MAX] = "";

	static const char batch[] = "X-Batch: 1\r\n";
	memcpy(extra, batch, sizeof(batch) - 1);
	o.extra_len = sizeof(batch) - 1;
	if (opts_parse(s, len, &max, &o, extra, sizeof(extra), err, sizeof(err)) < 0) {
		CHECK(err[0] != '\0', "option refused without a message");
		return;
	}
	CHECK(o.extra_len <= sizeof(extra) && o.method <= OPTS_HEAD && o.retries <= max.retries &&
	      o.timeout_ms >= 1 && o.timeout_ms <= max.timeout_ms && o.max_redirects <= max.max_redirects &&
	      o.max_body_bytes <= max.max_body_bytes, "options outside the daemon's limits");
	for (size_t at = 0; at < o.extra_len;) {
		const char *eol = memmem(extra + at, o.extra_len - at, "\r\n", 2);
		CHECK(eol && memchr(extra + at, ':', (size_t)(eol - extra) - at), "header lines malformed");
		at = (size_t)(eol - extra) + 2;
	}
}

/* The URL lines of one URLS payload. Returns false when the session ends (no final newline). */
static bool urls(const uint8_t *p, size_t len)
{
	size_t off = 0, lines = 0;

	while (off < len) {
		const char *line = NULL;
		size_t line_len = (size_t)-1, used = (size_t)-1;
		int rc = proto_line(p + off, len - off, &line, &line_len, &used);

		CHECK(++lines <= len, "more lines than bytes: the walk does not advance");
		if (rc == PROTO_E_NO_NEWLINE) {
			CHECK(!memchr(p + off, '\n', len - off), "PROTO_E_NO_NEWLINE with a '\\n' in the payload");
			return false;
		}
		CHECK(rc == PROTO_OK, "proto_line returned %d for %zu bytes", rc, len - off);
		CHECK(used >= 1 && used <= len - off && p[off + used - 1] == '\n' &&
		      !memchr(p + off, '\n', used - 1), "line consumed %zu of %zu bytes", used, len - off);
		CHECK(line == (const char *)p + off, "line does not start where the payload does");
		CHECK(line_len == used - 1 || (line_len == used - 2 && line[line_len] == '\r'),
		      "line of %zu bytes out of %zu consumed", line_len, used);
		const char *tab = memchr(line, '\t', line_len); /* the URL, then its options (opts.h) */
		size_t url_len = tab ? (size_t)(tab - line) : line_len;
		if (url_len <= MAX_URL_BYTES) { /* control.c rejects longer ones before parsing */
			struct url u;
			const char *reason = NULL;

			if (url_parse(line, url_len, 1, &u, &reason) == 0)
				CHECK(u.target_off + u.target_len <= url_len && u.port != 0, "URL spans");
			else
				CHECK(reason != NULL, "url_parse failed without a reason");
		}
		if (tab)
			options(tab + 1, line_len - url_len - 1);
		off += used;
	}
	{
		const char *line;
		size_t line_len, used;

		CHECK(proto_line(p + off, 0, &line, &line_len, &used) == PROTO_NEED_MORE, "empty rest not NEED_MORE");
	}
	return true;
}

static bool hello(const uint8_t *p, size_t len)
{
	struct proto_hello h, h2;
	int rc, rc2;

	memset(&h, 0xa5, sizeof(h));
	memset(&h2, 0x5a, sizeof(h2));
	rc = proto_hello(p, len, &h);
	rc2 = proto_hello(p, len, &h2);
	CHECK(rc == PROTO_OK || rc == PROTO_E_VERSION || rc == PROTO_E_OPTIONS || rc == PROTO_E_CAPTURE ||
		      rc == PROTO_E_VERB,
	      "proto_hello returned %d", rc);
	CHECK(rc == rc2 && h.protocol == h2.protocol && h.hash == h2.hash, "proto_hello not deterministic");
	CHECK(rc != PROTO_OK || ((h.capture & ~3u) == 0 && h.capture == h2.capture && h.detach == h2.detach &&
				 strlen(h.verb) < sizeof(h.verb) && !strcmp(h.verb, h2.verb) &&
				 strlen(h.job) < sizeof(h.job) && !strcmp(h.job, h2.job)),
	      "capture %u, verb or job not deterministic or out of bounds", h.capture);
	CHECK(rc != PROTO_OK || (h.options_len >= -1 && h.options_len < (int)sizeof(h.options) &&
				 strlen(h.options) == (size_t)(h.options_len < 0 ? 0 : h.options_len)),
	      "options length %d", h.options_len);
	if (rc != PROTO_E_VERSION)
		CHECK(h.protocol == FETCHD_PROTO_VERSION, "HELLO accepted with protocol %lld", (long long)h.protocol);
	else
		CHECK(h.protocol != FETCHD_PROTO_VERSION, "HELLO refused with protocol 1");
	return rc == PROTO_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool hello_done = false, end_seen = false;
	size_t off = 0, frames = 0;

	for (;;) {
		struct proto_frame f, g;
		int rc = frame(data + off, size - off, &f);

		CHECK(++frames <= size / FETCHD_FRAME_HDR_BYTES + 1, "more frames than headers fit: no progress");
		if (rc != PROTO_OK)
			break; /* NEED_MORE: wait for bytes; TOO_LARGE: the session ends */
		/* the daemon sees the frame grow: every shorter prefix needs more */
		CHECK(frame(data + off, f.size - 1, &g) == PROTO_NEED_MORE, "a frame less one byte is complete");
		CHECK(frame(data + off, FETCHD_FRAME_HDR_BYTES - 1, &g) == PROTO_NEED_MORE, "4 bytes are a frame");
		if (f.size > FETCHD_FRAME_HDR_BYTES)
			CHECK(frame(data + off, FETCHD_FRAME_HDR_BYTES + f.len / 2, &g) == PROTO_NEED_MORE,
			      "half a frame is complete");
		if (!hello_done && f.type != FETCHD_FR_HELLO)
			break; /* "the first frame must be HELLO" */
		if (f.type == FETCHD_FR_HELLO) {
			if (hello_done || !hello(f.payload, f.len))
				break; /* "HELLO sent twice", or an unsupported version */
			hello_done = true;
		} else if (f.type == FETCHD_FR_URLS) {
			if (end_seen || !urls(f.payload, f.len))
				break; /* "URLS after END", or no final newline */
		} else if (f.type == FETCHD_FR_END) {
			end_seen = true;
		} else {
			break; /* unknown frame type */
		}
		off += f.size;
		CHECK(off <= size, "walked past the input: %zu of %zu", off, size);
	}
	return 0;
}

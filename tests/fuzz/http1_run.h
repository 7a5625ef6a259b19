/* http1_run.h - the driver shared by fuzz_http1.c and fuzz_chunked.c: feed a response stream to the
 * HTTP/1.1 parser (daemon/http1.h) in pieces, the way a keep-alive client does, check the parse contract
 * at every call (abort() on a violation) and record an outcome that must not depend on the split.
 *
 * Each piece is copied into a heap buffer of exactly its size, so ASan sees a read past a piece, and a
 * parser that kept a pointer into an earlier piece reads freed memory. After DONE on a keep-alive
 * response the parser is reset and the rest of the stream is parsed as the next response (pipelining),
 * up to RUN_MAX_RESP responses; after a response without keep-alive the client stops reading. */
#ifndef FETCHD_FUZZ_HTTP1_RUN_H
#define FETCHD_FUZZ_HTTP1_RUN_H

#include "daemon/http1.h"
#include "tests/fuzz/check.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_MAX_RESP 8
#define RUN_NOT_CALLED 99 /* finish: http1_finish was not called (the client stopped reading) */

/* A broken invariant: say which, then abort() so libFuzzer (or replay.c) records the input. */

struct run_resp {
	bool headers, done, eof_done;
	int status, version_minor;
	enum http1_framing framing;
	bool keep_alive;
	int64_t content_length;
	char content_type[HTTP1_CONTENT_TYPE_MAX];
	uint32_t interim_count;
	uint64_t header_bytes_at_headers, header_bytes_at_end;
	size_t end_at;      /* stream offset just after the response (DONE), or where parsing ended */
	size_t body_off;    /* this response's body in outcome.body */
	uint64_t body_len;
};

struct run_outcome {
	int n;                               /* completed responses */
	struct run_resp r[RUN_MAX_RESP + 1]; /* r[n]: the one in progress, if any */
	int err;                             /* negative result of http1_parse or http1_finish, else 0 */
	int finish;                          /* http1_finish's result, or RUN_NOT_CALLED */
	size_t consumed;                     /* stream bytes the parser consumed */
	size_t leftover;                     /* bytes left unread after a response without keep-alive */
	uint8_t *body;                       /* every body byte of every response, in order */
	size_t body_len, body_cap;
};

struct run {
	struct http1_parser p;
	bool head;
	uint64_t max_hdr;
	bool stopped;
	size_t fed;                          /* stream bytes offered so far */
	struct run_outcome *o;
};

static void run_init(struct run *r, struct run_outcome *o, size_t total, bool head, uint64_t max_hdr)
{
	memset(o, 0, sizeof(*o));
	o->finish = RUN_NOT_CALLED;
	o->body_cap = total ? total : 1;
	o->body = malloc(o->body_cap);
	CHECK(o->body != NULL, "out of memory");
	r->head = head;
	r->max_hdr = max_hdr;
	r->stopped = false;
	r->fed = 0;
	r->o = o;
	http1_parser_init(&r->p, head, max_hdr);
}

static void run_free(struct run_outcome *o)
{
	free(o->body);
	o->body = NULL;
}

/* Checks that hold after every call, whatever it returned. */
static void run_check_always(const struct run *r, int err)
{
	const struct http1_parser *p = &r->p;

	CHECK(p->header_bytes <= r->max_hdr || err == HTTP1_E_HEADER_TOO_LARGE,
		  "header_bytes %llu > max_header_bytes %llu without HTTP1_E_HEADER_TOO_LARGE (err %d)",
		  (unsigned long long)p->header_bytes, (unsigned long long)r->max_hdr, err);
	CHECK(memchr(p->content_type, '\0', sizeof(p->content_type)) != NULL, "content_type not terminated");
	CHECK(r->o->body_len <= r->fed, "%zu body bytes out of %zu fed", r->o->body_len, r->fed);
	CHECK(p->body_bytes <= r->fed, "body_bytes %llu > %zu fed", (unsigned long long)p->body_bytes, r->fed);
}

static void run_on_headers(struct run *r, struct run_resp *x)
{
	const struct http1_parser *p = &r->p;

	CHECK(!x->headers, "a second HEADERS for one response");
	CHECK(http1_started(p), "HEADERS but not started");
	CHECK(p->status >= 200 && p->status <= 999, "final status %d", p->status);
	CHECK(p->version_minor >= 0 && p->version_minor <= 9, "version 1.%d", p->version_minor);
	CHECK(p->framing >= HTTP1_FRAMING_NONE && p->framing <= HTTP1_FRAMING_EOF, "framing %d", p->framing);
	CHECK(p->interim_count <= HTTP1_MAX_INTERIM, "interim_count %u", p->interim_count);
	CHECK(p->body_bytes == 0, "body_bytes %llu at HEADERS", (unsigned long long)p->body_bytes);
	CHECK(p->content_length >= -1, "content_length %lld", (long long)p->content_length);
	if (r->head || p->status == 204 || p->status == 304)
		CHECK(p->framing == HTTP1_FRAMING_NONE, "HEAD/204/304 with framing %d", p->framing);
	if (p->framing == HTTP1_FRAMING_LENGTH)
		CHECK(p->content_length >= 0, "FRAMING_LENGTH with content_length %lld",
			  (long long)p->content_length);
	if (p->framing == HTTP1_FRAMING_CHUNKED)
		CHECK(p->content_length == -1, "chunked with content_length %lld", (long long)p->content_length);
	if (p->framing == HTTP1_FRAMING_EOF)
		CHECK(!p->keep_alive, "FRAMING_EOF with keep_alive");
	x->headers = true;
	x->status = p->status;
	x->version_minor = p->version_minor;
	x->framing = p->framing;
	x->keep_alive = p->keep_alive;
	x->content_length = p->content_length;
	memcpy(x->content_type, p->content_type, sizeof(x->content_type));
	x->interim_count = p->interim_count;
	x->header_bytes_at_headers = p->header_bytes;
}

static void run_on_body(struct run *r, struct run_resp *x, const struct http1_ev *ev)
{
	struct run_outcome *o = r->o;

	CHECK(x->headers, "BODY before HEADERS");
	CHECK(ev->len > 0, "empty BODY event");
	CHECK(x->framing != HTTP1_FRAMING_NONE, "BODY with FRAMING_NONE");
	CHECK(o->body_len + ev->len <= o->body_cap, "more body bytes (%zu) than the stream has (%zu)",
		  o->body_len + ev->len, o->body_cap);
	if (x->body_len == 0)
		x->body_off = o->body_len;
	memcpy(o->body + o->body_len, ev->data, ev->len);
	o->body_len += ev->len;
	x->body_len += ev->len;
	CHECK(r->p.body_bytes == x->body_len, "body_bytes %llu, BODY events gave %llu",
		  (unsigned long long)r->p.body_bytes, (unsigned long long)x->body_len);
	if (x->framing == HTTP1_FRAMING_LENGTH)
		CHECK(x->body_len <= (uint64_t)x->content_length, "body %llu > Content-Length %lld",
			  (unsigned long long)x->body_len, (long long)x->content_length);
}

/* DONE: returns false when the client stops reading (the connection is not reusable). */
static bool run_on_done(struct run *r, struct run_resp *x, bool at_eof)
{
	struct run_outcome *o = r->o;
	const struct http1_parser *p = &r->p;

	CHECK(x->headers, "DONE before HEADERS");
	CHECK(p->body_bytes == x->body_len, "DONE: body_bytes %llu, BODY events gave %llu",
		  (unsigned long long)p->body_bytes, (unsigned long long)x->body_len);
	if (x->framing == HTTP1_FRAMING_NONE)
		CHECK(x->body_len == 0, "FRAMING_NONE with %llu body bytes", (unsigned long long)x->body_len);
	if (x->framing == HTTP1_FRAMING_LENGTH)
		CHECK(x->body_len == (uint64_t)x->content_length, "DONE with %llu of %lld body bytes",
			  (unsigned long long)x->body_len, (long long)x->content_length);
	if (at_eof)
		CHECK(x->framing == HTTP1_FRAMING_EOF, "finish gave DONE for framing %d", x->framing);
	else
		CHECK(x->framing != HTTP1_FRAMING_EOF, "DONE from parse for a FRAMING_EOF body");
	x->done = true;
	x->eof_done = at_eof;
	x->header_bytes_at_end = p->header_bytes;
	x->end_at = o->consumed;
	o->n++;
	if (at_eof || !p->keep_alive || o->n >= RUN_MAX_RESP)
		return false;
	http1_parser_init(&r->p, r->head, r->max_hdr);
	return true;
}

/* Feed one read's worth of bytes: buf[0..len) is a heap copy of exactly len bytes. */
static void run_feed(struct run *r, const uint8_t *buf, size_t len)
{
	struct run_outcome *o = r->o;
	size_t off = 0;

	r->fed += len;
	while (!r->stopped) {
		struct http1_ev ev;
		struct run_resp *x = &o->r[o->n];
		ssize_t n = http1_parse(&r->p, buf + off, len - off, &ev);

		if (n < 0) {
			struct http1_ev ev2;

			CHECK(n >= HTTP1_E_AFTER_DONE && n != HTTP1_E_TRUNCATED && n != HTTP1_E_AFTER_DONE,
				  "parse returned %zd", n);
			run_check_always(r, (int)n);
			CHECK(http1_parse(&r->p, buf + off, len - off, &ev2) == n, "error %zd not sticky", n);
			o->err = (int)n;
			/* not end_at: what the failing call consumed before failing is not reported */
			x->header_bytes_at_end = r->p.header_bytes;
			r->stopped = true;
			return;
		}
		CHECK((size_t)n <= len - off, "consumed %zd of %zu", n, len - off);
		off += (size_t)n;
		o->consumed += (size_t)n;
		run_check_always(r, 0);
		switch (ev.type) {
		case HTTP1_EV_NONE:
			CHECK(off == len, "NONE with %zu of %zu bytes consumed", off, len);
			return;
		case HTTP1_EV_HEADERS:
			run_on_headers(r, x);
			break;
		case HTTP1_EV_BODY:
			/* the last ev.len bytes of those this call consumed, inside our buffer */
			CHECK(ev.data >= buf && ev.data + ev.len <= buf + len, "BODY points outside the input");
			CHECK(ev.data >= buf + off - (size_t)n && ev.data + ev.len == buf + off,
				  "BODY is not the tail of the consumed bytes");
			run_on_body(r, x, &ev);
			break;
		case HTTP1_EV_DONE: {
			struct http1_ev ev2;

			CHECK(http1_parse(&r->p, buf + off, len - off, &ev2) == HTTP1_E_AFTER_DONE,
				  "parse after DONE did not return HTTP1_E_AFTER_DONE");
			if (!run_on_done(r, x, false)) {
				CHECK(http1_finish(&r->p) == HTTP1_EV_NONE, "finish after DONE");
				r->stopped = true;
			}
			break;
		}
		default:
			CHECK(0, "event type %d", ev.type);
		}
	}
}

/* The stream ended (EOF) after total bytes. */
static void run_end(struct run *r, size_t total)
{
	struct run_outcome *o = r->o;
	struct run_resp *x = &o->r[o->n];

	CHECK(r->fed == total, "fed %zu of %zu", r->fed, total);
	if (r->stopped) {
		if (o->err == 0)
			o->leftover = total - o->consumed;
		return;
	}
	CHECK(o->consumed == total, "not stopped but %zu of %zu consumed", o->consumed, total);
	o->finish = http1_finish(&r->p);
	run_check_always(r, o->finish);
	CHECK(o->finish == HTTP1_EV_NONE || o->finish == HTTP1_EV_DONE || o->finish == HTTP1_E_TRUNCATED,
		  "finish returned %d (no parse error before it)", o->finish);
	if (o->finish < 0) {
		CHECK(http1_finish(&r->p) == o->finish, "finish error not sticky");
		o->err = o->finish;
		x->header_bytes_at_end = r->p.header_bytes;
		x->end_at = o->consumed;
	} else if (o->finish == HTTP1_EV_DONE) {
		run_on_done(r, x, true);
		CHECK(http1_finish(&r->p) == HTTP1_EV_NONE, "finish after finish's DONE");
	} else {
		CHECK(!x->headers && !http1_started(&r->p), "finish NONE inside a response");
	}
}

/* Run raw[0..len) cut at cuts[0..ncuts) (ascending, each in 0..len). */
static void run_split(const uint8_t *raw, size_t len, bool head, uint64_t max_hdr, const size_t *cuts,
		      size_t ncuts, struct run_outcome *o)
{
	struct run r;
	size_t prev = 0;

	run_init(&r, o, len, head, max_hdr);
	for (size_t i = 0; i <= ncuts && !r.stopped; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		uint8_t *piece;

		if (end <= prev)
			continue;
		piece = malloc(end - prev);
		CHECK(piece != NULL, "out of memory");
		memcpy(piece, raw + prev, end - prev);
		run_feed(&r, piece, end - prev);
		free(piece);
		prev = end;
	}
	r.fed = len; /* bytes after a stop are offered to nobody */
	run_end(&r, len);
}

/* The whole stream as one read, straight from the caller's buffer (for libFuzzer, exactly sized). */
static void run_whole(const uint8_t *raw, size_t len, bool head, uint64_t max_hdr, struct run_outcome *o)
{
	struct run r;

	run_init(&r, o, len, head, max_hdr);
	if (len)
		run_feed(&r, raw, len);
	r.fed = len;
	run_end(&r, len);
}

static void run_bytewise(const uint8_t *raw, size_t len, bool head, uint64_t max_hdr, struct run_outcome *o)
{
	struct run r;

	run_init(&r, o, len, head, max_hdr);
	for (size_t i = 0; i < len && !r.stopped; i++) {
		uint8_t *piece = malloc(1);

		CHECK(piece != NULL, "out of memory");
		piece[0] = raw[i];
		run_feed(&r, piece, 1);
		free(piece);
	}
	r.fed = len;
	run_end(&r, len);
}

static void run_resp_cmp(const struct run_outcome *a, const struct run_outcome *b, int i, const char *what)
{
	const struct run_resp *x = &a->r[i], *y = &b->r[i];

	CHECK(x->headers == y->headers && x->done == y->done && x->eof_done == y->eof_done,
		  "%s: response %d: headers %d/%d done %d/%d eof %d/%d", what, i, x->headers, y->headers, x->done,
		  y->done, x->eof_done, y->eof_done);
	CHECK(x->status == y->status && x->version_minor == y->version_minor,
		  "%s: response %d: status %d/%d version %d/%d", what, i, x->status, y->status, x->version_minor,
		  y->version_minor);
	CHECK(x->framing == y->framing && x->keep_alive == y->keep_alive &&
		  x->content_length == y->content_length,
		  "%s: response %d: framing %d/%d keep_alive %d/%d content_length %lld/%lld", what, i, x->framing,
		  y->framing, x->keep_alive, y->keep_alive, (long long)x->content_length, (long long)y->content_length);
	CHECK(strcmp(x->content_type, y->content_type) == 0, "%s: response %d: content_type '%s'/'%s'", what,
		  i, x->content_type, y->content_type);
	CHECK(x->interim_count == y->interim_count, "%s: response %d: interim_count %u/%u", what, i,
		  x->interim_count, y->interim_count);
	CHECK(x->header_bytes_at_headers == y->header_bytes_at_headers &&
		  x->header_bytes_at_end == y->header_bytes_at_end && x->end_at == y->end_at,
		  "%s: response %d: header_bytes %llu/%llu, at end %llu/%llu, end_at %zu/%zu", what, i,
		  (unsigned long long)x->header_bytes_at_headers, (unsigned long long)y->header_bytes_at_headers,
		  (unsigned long long)x->header_bytes_at_end, (unsigned long long)y->header_bytes_at_end,
		  x->end_at, y->end_at);
	CHECK(x->body_len == y->body_len && (x->body_len == 0 || x->body_off == y->body_off),
		  "%s: response %d: body %llu/%llu bytes", what, i, (unsigned long long)x->body_len,
		  (unsigned long long)y->body_len);
}

/* b (a split run) must equal a (the whole-input run). */
static void run_compare(const struct run_outcome *a, const struct run_outcome *b, const char *what)
{
	CHECK(a->n == b->n, "%s: %d responses, whole input gave %d", what, b->n, a->n);
	CHECK(a->err == b->err, "%s: error %d (%s), whole input gave %d (%s)", what, b->err,
		  http1_strerror(b->err), a->err, http1_strerror(a->err));
	CHECK(a->finish == b->finish, "%s: finish %d, whole input gave %d", what, b->finish, a->finish);
	/* after a parse error, the bytes consumed before it depend on where the failing read started */
	CHECK((a->err < 0 && a->err != HTTP1_E_TRUNCATED) ||
		  (a->consumed == b->consumed && a->leftover == b->leftover),
		  "%s: consumed %zu leftover %zu, whole input gave %zu %zu", what, b->consumed, b->leftover,
		  a->consumed, a->leftover);
	for (int i = 0; i <= a->n && i <= RUN_MAX_RESP; i++)
		run_resp_cmp(a, b, i, what);
	CHECK(a->body_len == b->body_len && memcmp(a->body, b->body, a->body_len) == 0,
		  "%s: body bytes differ (%zu/%zu bytes)", what, b->body_len, a->body_len);
}

/* A small deterministic generator for split points (splitmix64). */
static uint64_t run_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t run_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* Up to max ascending cut points in 0..len, from the generator. Returns how many. */
static size_t run_random_cuts(uint64_t *seed, size_t len, size_t *cuts, size_t max)
{
	size_t n = 1 + (size_t)(run_rand(seed) % max);

	if (len == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		cuts[i] = (size_t)(run_rand(seed) % (len + 1));
	for (size_t i = 1; i < n; i++) /* insertion sort: n is small */
		for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
			size_t t = cuts[j];

			cuts[j] = cuts[j - 1];
			cuts[j - 1] = t;
		}
	return n;
}

#endif

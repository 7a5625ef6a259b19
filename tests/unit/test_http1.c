/* test_http1.c - unit tests for daemon/http1.c: a table of responses, each fed whole, byte by byte and
 * split at every point (the outcome must not depend on the split); API details (sticky errors, DONE with
 * nothing left to read, misuse after DONE, pointers into the caller's buffer); the request builder; and
 * the llhttp-derived corpus in tests/corpus/http1-responses.txt, with intentional differences listed. */
#include "daemon/http1.h"
#include "daemon/hex.h"
#include "tests/unit/test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESP 4      /* responses one stream may hold in these tests */
#define BODY_CAP 8192   /* body bytes kept per response for comparison */
#define DEF_MAX_HDR 65536
#define FINISH_NOT_CALLED 99

/* ---- driving the parser the way a keep-alive client does ---- */

struct resp {
	bool headers_seen, done, eof_done;
	int status, version_minor;
	enum http1_framing framing;
	bool keep_alive;
	int64_t content_length;
	char content_type[HTTP1_CONTENT_TYPE_MAX];
	uint32_t interim_count;
	uint64_t header_bytes;
	size_t done_at;   /* input offset just after the response */
	size_t body_len;  /* all body bytes delivered (only BODY_CAP kept) */
	uint8_t body[BODY_CAP];
};

struct outcome {
	int n;          /* completed responses */
	struct resp r[MAX_RESP + 1]; /* r[n] is the one in progress, if any */
	int err;        /* negative result of http1_parse or http1_finish, else 0 */
	int finish;     /* result of http1_finish, FINISH_NOT_CALLED when we stopped first */
	size_t leftover;/* bytes left unread because a response ended with keep_alive false */
	int api_bad;    /* violations of the parse contract seen (count) */
	int body_events;/* number of BODY events (informative: depends on the split) */
};

struct run {
	struct http1_parser p;
	bool head;
	uint64_t max_hdr;
	bool stopped;
	size_t consumed;
	struct outcome *o;
};

/* The request builder with only the fields the simple cases need. */
static ssize_t build_simple(char *buf, size_t cap, const char *method, const char *target, size_t target_len,
			    const char *host, size_t host_len, const char *ua, const char *auth)
{
	struct http1_request rq = { .method = method, .target = target, .target_len = target_len, .host = host,
				    .host_len = host_len, .user_agent = ua, .auth_basic64 = auth };
	return http1_build_request(buf, cap, &rq);
}

static void run_init(struct run *r, struct outcome *o, bool head, uint64_t max_hdr)
{
	memset(o, 0, sizeof(*o));
	o->finish = FINISH_NOT_CALLED;
	r->head = head;
	r->max_hdr = max_hdr;
	r->stopped = false;
	r->consumed = 0;
	r->o = o;
	http1_parser_init(&r->p, head, max_hdr);
}

static void on_headers(struct run *r, struct resp *x)
{
	const struct http1_parser *p = &r->p;

	if (x->headers_seen)
		r->o->api_bad++;
	x->headers_seen = true;
	x->status = p->status;
	x->version_minor = p->version_minor;
	x->framing = p->framing;
	x->keep_alive = p->keep_alive;
	x->content_length = p->content_length;
	memcpy(x->content_type, p->content_type, sizeof(x->content_type));
	x->interim_count = p->interim_count;
}

static void on_body(struct run *r, struct resp *x, const struct http1_ev *ev)
{
	for (size_t i = 0; i < ev->len; i++)
		if (x->body_len + i < BODY_CAP)
			x->body[x->body_len + i] = ev->data[i];
	x->body_len += ev->len;
	r->o->body_events++;
	if (!x->headers_seen || ev->len == 0 || r->p.body_bytes != x->body_len)
		r->o->api_bad++;
}

/* DONE: returns false when the client stops reading (the connection is not reusable). */
static bool on_done(struct run *r, struct resp *x)
{
	struct outcome *o = r->o;

	if (!x->headers_seen || r->p.body_bytes != x->body_len)
		o->api_bad++;
	x->done = true;
	x->header_bytes = r->p.header_bytes;
	x->done_at = r->consumed;
	o->n++;
	if (!r->p.keep_alive)
		return false;
	if (o->n >= MAX_RESP) {
		o->api_bad++;
		return false;
	}
	http1_parser_init(&r->p, r->head, r->max_hdr);
	return true;
}

/* Feed one read's worth of bytes. */
static void run_feed(struct run *r, const uint8_t *buf, size_t len)
{
	size_t off = 0;
	struct outcome *o = r->o;

	while (!r->stopped) {
		struct http1_ev ev;
		struct resp *x = &o->r[o->n];
		ssize_t n = http1_parse(&r->p, buf + off, len - off, &ev);

		if (n < 0) {
			o->err = (int)n;
			r->stopped = true;
			return;
		}
		if ((size_t)n > len - off) {
			o->api_bad++;
			r->stopped = true;
			return;
		}
		off += (size_t)n;
		r->consumed += (size_t)n;
		switch (ev.type) {
		case HTTP1_EV_NONE:
			if (off != len)
				o->api_bad++;
			return;
		case HTTP1_EV_HEADERS:
			on_headers(r, x);
			break;
		case HTTP1_EV_BODY:
			/* BODY points into our buffer: the last ev.len bytes of what this call consumed */
			if (ev.data < buf + off - (size_t)n || ev.data + ev.len != buf + off)
				o->api_bad++;
			on_body(r, x, &ev);
			break;
		case HTTP1_EV_DONE:
			if (!on_done(r, x))
				r->stopped = true;
			break;
		}
	}
}

static void run_end(struct run *r, size_t total)
{
	struct outcome *o = r->o;

	if (r->stopped) {
		if (o->err == 0)
			o->leftover = total - r->consumed;
		return;
	}
	o->finish = http1_finish(&r->p);
	if (o->finish < 0) {
		o->err = o->finish;
	} else if (o->finish == HTTP1_EV_DONE) {
		o->r[o->n].eof_done = true;
		o->r[o->n].done = true;
		o->r[o->n].header_bytes = r->p.header_bytes;
		o->r[o->n].done_at = r->consumed;
		o->n++;
	} else if (o->finish != HTTP1_EV_NONE || r->consumed != total) {
		o->api_bad++;
	}
}

/* Run raw split at the given cut points (ascending, each in 1..len-1). */
static void run_split(const uint8_t *raw, size_t len, bool head, uint64_t max_hdr, const size_t *cuts,
		      int ncuts, struct outcome *o)
{
	struct run r;
	size_t prev = 0;

	run_init(&r, o, head, max_hdr);
	for (int i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;

		run_feed(&r, raw + prev, end - prev);
		prev = end;
	}
	run_end(&r, len);
}

static void run_bytewise(const uint8_t *raw, size_t len, bool head, uint64_t max_hdr, struct outcome *o)
{
	struct run r;

	run_init(&r, o, head, max_hdr);
	for (size_t i = 0; i < len && !r.stopped; i++)
		run_feed(&r, raw + i, 1);
	run_end(&r, len);
}

static bool resp_equal(const struct resp *a, const struct resp *b)
{
	size_t kept = a->body_len < BODY_CAP ? a->body_len : BODY_CAP;

	return a->headers_seen == b->headers_seen && a->done == b->done && a->eof_done == b->eof_done &&
	       a->status == b->status && a->version_minor == b->version_minor &&
	       a->framing == b->framing && a->keep_alive == b->keep_alive &&
	       a->content_length == b->content_length &&
	       strcmp(a->content_type, b->content_type) == 0 && a->interim_count == b->interim_count &&
	       a->header_bytes == b->header_bytes && a->done_at == b->done_at &&
	       a->body_len == b->body_len && memcmp(a->body, b->body, kept) == 0;
}

static bool outcome_equal(const struct outcome *a, const struct outcome *b)
{
	if (a->n != b->n || a->err != b->err || a->finish != b->finish || a->leftover != b->leftover ||
	    a->api_bad != b->api_bad)
		return false;
	for (int i = 0; i <= a->n && i <= MAX_RESP; i++)
		if (!resp_equal(&a->r[i], &b->r[i]))
			return false;
	return true;
}

/* ---- the table ---- */

#define NONE HTTP1_FRAMING_NONE
#define LEN HTTP1_FRAMING_LENGTH
#define CHUNKED HTTP1_FRAMING_CHUNKED
#define EOFB HTTP1_FRAMING_EOF

struct want_resp {
	int status;
	const char *body;
	enum http1_framing framing;
	bool keep_alive;
	int64_t content_length;
	const char *content_type; /* NULL: "" */
};

struct tcase {
	const char *name;
	const char *raw;
	size_t raw_len;         /* 0: strlen(raw) */
	bool head;
	uint64_t max_hdr;       /* 0: DEF_MAX_HDR */
	int err;                /* expected error (from parse or finish), 0: none */
	int n;                  /* completed responses */
	struct want_resp r[2];  /* the first (up to) two completed responses */
	bool eof;               /* the last completed response ended at EOF (finish -> DONE) */
	size_t leftover;        /* bytes left unread after a response that closes the connection */
	uint32_t interim;       /* 1xx skipped before the first response */
	int partial_status;     /* with err TRUNCATED: status of the response in progress, 0: headers
	                           not complete */
	const char *partial_body;
};

#define C100 "HTTP/1.1 100 Continue\r\n\r\n"
#define X4(s) s s s s
#define X32(s) X4(X4(s)) X4(X4(s))
#define OK_CL5 "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
#define H200 "HTTP/1.1 200 OK\r\n"
#define TE_CH "Transfer-Encoding: chunked\r\n"

/* Generated at start-up (too long to write out). */
static char gen_ct300[512], gen_conn_long[HTTP1_VALUE_MAX + 200], gen_ct_long[HTTP1_VALUE_MAX + 200],
	gen_other_long[3 * HTTP1_VALUE_MAX], gen_chunk_line[HTTP1_VALUE_MAX + 200],
	gen_cl_ows[2 * HTTP1_VALUE_MAX], gen_chunk_line_ok[HTTP1_VALUE_MAX + 200];
static char want_ct255[HTTP1_CONTENT_TYPE_MAX], want_k255[HTTP1_CONTENT_TYPE_MAX];

static void gen_init(void)
{
	char a300[301], big[HTTP1_VALUE_MAX + 2], spaces[HTTP1_VALUE_MAX + 100];

	memset(a300, 'a', 300);
	a300[300] = '\0';
	memset(want_ct255, 'a', HTTP1_CONTENT_TYPE_MAX - 1);
	want_ct255[HTTP1_CONTENT_TYPE_MAX - 1] = '\0';
	memset(want_k255, 'k', HTTP1_CONTENT_TYPE_MAX - 1);
	want_k255[HTTP1_CONTENT_TYPE_MAX - 1] = '\0';
	snprintf(gen_ct300, sizeof(gen_ct300), H200 "Content-Type: %s\r\nContent-Length: 0\r\n\r\n", a300);
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0'; /* HTTP1_VALUE_MAX + 1 bytes */
	snprintf(gen_conn_long, sizeof(gen_conn_long), H200 "Connection: %s\r\nContent-Length: 0\r\n\r\n", big);
	snprintf(gen_ct_long, sizeof(gen_ct_long), H200 "Content-Type: %s\r\nContent-Length: 0\r\n\r\n", big);
	snprintf(gen_other_long, sizeof(gen_other_long), H200 "X-Other: %s%s\r\nContent-Length: 0\r\n\r\n", big,
		 big);
	memset(spaces, ' ', sizeof(spaces) - 1);
	spaces[sizeof(spaces) - 1] = '\0';
	/* "5" then 4195 trailing spaces: longer than the limit only before trimming, so accepted */
	snprintf(gen_cl_ows, sizeof(gen_cl_ows), H200 "Content-Length: 5%s\r\n\r\nhello", spaces);
	/* chunk lines "1;" name CRLF of 4096 bytes (the limit) and 4097 bytes */
	memset(big, 'e', sizeof(big) - 1);
	big[4092] = '\0';
	snprintf(gen_chunk_line_ok, sizeof(gen_chunk_line_ok), H200 TE_CH "\r\n1;%s\r\nx\r\n0\r\n\r\n", big);
	big[4092] = 'e';
	big[4093] = '\0';
	snprintf(gen_chunk_line, sizeof(gen_chunk_line), H200 TE_CH "\r\n1;%s\r\nx\r\n0\r\n\r\n", big);
}

static const struct tcase cases[] = {
	/* framing */
	{ "content-length", OK_CL5, .n = 1, .r = { { 200, "hello", LEN, true, 5, NULL } } },
	{ "content-length 0", H200 "Content-Length: 0\r\n\r\n", .n = 1, .r = { { 200, "", LEN, true, 0, NULL } } },
	{ "chunked, extensions, trailers",
	  H200 TE_CH "Content-Type: text/plain\r\n\r\n"
	  "5;a=b;c=\"q;\\\"x\" ; d = e\r\nhello\r\n6 ; x\r\n world\r\n0;last\r\nX-Trailer: 1\r\nY:2\r\n\r\n",
	  .n = 1, .r = { { 200, "hello world", CHUNKED, true, -1, "text/plain" } } },
	{ "chunked, leading zeros and hex case", H200 TE_CH "\r\n000000000000000000000000A\r\n0123456789\r\n0\r\n\r\n",
	  .n = 1, .r = { { 200, "0123456789", CHUNKED, true, -1, NULL } } },
	{ "Transfer-Encoding is case-insensitive", H200 "transfer-encoding: ChUnKeD\r\n\r\n1\r\nz\r\n0\r\n\r\n",
	  .n = 1, .r = { { 200, "z", CHUNKED, true, -1, NULL } } },
	{ "body until EOF", H200 "Content-Type: text/html\r\n\r\nabc\r\ndef", .n = 1, .eof = true,
	  .r = { { 200, "abc\r\ndef", EOFB, false, -1, "text/html" } } },
	{ "EOF right after the header section", H200 "\r\n", .n = 1, .eof = true,
	  .r = { { 200, "", EOFB, false, -1, NULL } } },
	{ "HEAD with Content-Length", H200 "Content-Length: 100\r\n\r\n", .head = true, .n = 1,
	  .r = { { 200, "", NONE, true, 100, NULL } } },
	{ "HEAD with chunked: no body", H200 TE_CH "\r\n", .head = true, .n = 1,
	  .r = { { 200, "", NONE, true, -1, NULL } } },
	{ "HEAD pipelined (reuse after DONE)",
	  H200 "Content-Length: 123\r\n\r\n" H200 "Content-Length: 456\r\n\r\n", .head = true, .n = 2,
	  .r = { { 200, "", NONE, true, 123, NULL }, { 200, "", NONE, true, 456, NULL } } },
	{ "204 with Content-Length", "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", .n = 1,
	  .r = { { 204, "", NONE, true, 10, NULL } } },
	{ "304 with chunked, then 200",
	  "HTTP/1.1 304 Not Modified\r\n" TE_CH "\r\n" OK_CL5, .n = 2,
	  .r = { { 304, "", NONE, true, -1, NULL }, { 200, "hello", LEN, true, 5, NULL } } },
	{ "pipelined CL then chunked, extra CRLF between",
	  OK_CL5 "\r\n" H200 TE_CH "\r\n3\r\nabc\r\n0\r\n\r\n", .n = 2,
	  .r = { { 200, "hello", LEN, true, 5, NULL }, { 200, "abc", CHUNKED, true, -1, NULL } } },
	{ "leading empty lines skipped", "\r\n\r\n" OK_CL5, .n = 1, .r = { { 200, "hello", LEN, true, 5, NULL } } },
	/* connection reuse */
	{ "HTTP/1.0 without keep-alive stops the client", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhiXYZ",
	  .n = 1, .leftover = 3, .r = { { 200, "hi", LEN, false, 2, NULL } } },
	{ "HTTP/1.0 with keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nhi",
	  .n = 1, .r = { { 200, "hi", LEN, true, 2, NULL } } },
	{ "HTTP/1.1 Connection: close", H200 "Connection: foo, CLOSE\r\nContent-Length: 2\r\n\r\nhijunk",
	  .n = 1, .leftover = 4, .r = { { 200, "hi", LEN, false, 2, NULL } } },
	{ "close wins over keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\n"
	  "Content-Length: 0\r\n\r\n", .n = 1, .r = { { 200, "", LEN, false, 0, NULL } } },
	{ "HTTP/1.2 is treated as 1.1", "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", .n = 1,
	  .r = { { 200, "", LEN, true, 0, NULL } } },
	/* interim responses */
	{ "100-continue then 200", C100 OK_CL5, .n = 1, .interim = 1, .r = { { 200, "hello", LEN, true, 5, NULL } } },
	{ "103 with headers, extra CRLF, then 200",
	  "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nContent-Length: 7\r\n\r\n\r\n" OK_CL5,
	  .n = 1, .interim = 1, .r = { { 200, "hello", LEN, true, 5, NULL } } },
	{ "32 interim responses are fine", X32(C100) OK_CL5, .n = 1, .interim = 32,
	  .r = { { 200, "hello", LEN, true, 5, NULL } } },
	{ "33 interim responses: error", X32(C100) C100 OK_CL5, .err = HTTP1_E_INTERIM },
	{ "101 we did not ask for", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
	  .err = HTTP1_E_INTERIM },
	{ "EOF after an interim response", C100, .err = HTTP1_E_TRUNCATED },
	/* status line */
	{ "empty reason after SP", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", .n = 1,
	  .r = { { 200, "", LEN, true, 0, NULL } } },
	{ "no reason, no SP", "HTTP/1.1 301\r\nContent-Length: 0\r\n\r\n", .n = 1,
	  .r = { { 301, "", LEN, true, 0, NULL } } },
	{ "reason with obs-text, tab and spaces", "HTTP/1.1 500 Ori\xc3\xabnt\tatie  x\r\nContent-Length: 0\r\n\r\n",
	  .n = 1, .r = { { 500, "", LEN, true, 0, NULL } } },
	{ "status 999", "HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n", .n = 1,
	  .r = { { 999, "", LEN, true, 0, NULL } } },
	{ "two-digit status", "HTTP/1.1 20 OK\r\n\r\n", .err = HTTP1_E_STATUS_LINE },
	{ "four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", .err = HTTP1_E_STATUS_LINE },
	{ "status 099", "HTTP/1.1 099 OK\r\n\r\n", .err = HTTP1_E_STATUS_LINE },
	{ "HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", .err = HTTP1_E_STATUS_LINE },
	{ "HTTP/1.10", "HTTP/1.10 200 OK\r\n\r\n", .err = HTTP1_E_STATUS_LINE },
	{ "lowercase http", "http/1.1 200 OK\r\n\r\n", .err = HTTP1_E_STATUS_LINE },
	{ "RTSP", "RTSP/1.0 200 OK\r\n\r\n", .err = HTTP1_E_STATUS_LINE },
	{ "two spaces before status", "HTTP/1.1  200 OK\r\n\r\n", .err = HTTP1_E_STATUS_LINE },
	{ "tab after version", "HTTP/1.1\t200 OK\r\n\r\n", .err = HTTP1_E_STATUS_LINE },
	{ "no space after status", "HTTP/1.1 200OK\r\n\r\n", .err = HTTP1_E_STATUS_LINE },
	{ "control byte in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", .err = HTTP1_E_STATUS_LINE },
	{ "bare LF ends the status line", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", .err = HTTP1_E_STATUS_LINE },
	{ "bare CR in the status line", "HTTP/1.1 200 OK\rX: y\r\n\r\n", .err = HTTP1_E_STATUS_LINE },
	{ "lone CR before the status line", "\rHTTP/1.1 200 OK\r\n\r\n", .err = HTTP1_E_STATUS_LINE },
	{ "CR CR before the status line", "\r\rHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	  .err = HTTP1_E_STATUS_LINE },
	/* header lines */
	{ "header names are case-insensitive, value OWS trimmed",
	  H200 "cOnTeNt-TyPe: \t text/html; charset=utf-8 \t\r\ncontent-LENGTH:\t3\t\r\n\r\nabc", .n = 1,
	  .r = { { 200, "abc", LEN, true, 3, "text/html; charset=utf-8" } } },
	{ "similar names are not interpreted",
	  H200 "Content-Length-X: 9\r\nX-Content-Length: 9\r\nContent-Lengt: x\r\n"
	  "Transfer-Encoding-Foo: gzip\r\nContent-Length: 1\r\n\r\nq", .n = 1, .r = { { 200, "q", LEN, true, 1, NULL } } },
	{ "tokens with odd tchars, empty and obs-text values",
	  H200 "X-$Proto_type.B!#%&'*+^`|~: v\r\nPragma:\r\nX-U: \xff\xfe\r\nContent-Length: 0\r\n\r\n", .n = 1,
	  .r = { { 200, "", LEN, true, 0, NULL } } },
	{ "whitespace before the colon", H200 "Content-Length : 5\r\n\r\nhello", .err = HTTP1_E_HEADER },
	{ "space in a header name", H200 "en-US Content-Type: text/xml\r\n\r\n", .err = HTTP1_E_HEADER },
	{ "obs-fold", H200 "X-A: one\r\n two\r\nContent-Length: 0\r\n\r\n", .err = HTTP1_E_HEADER },
	{ "space before the first header", H200 " Host: foo\r\n\r\n", .err = HTTP1_E_HEADER },
	{ "bare CR in a value", H200 "Foo: 1\rBar: 2\r\n\r\n", .err = HTTP1_E_HEADER },
	{ "bare LF ends a header", H200 "Foo: 1\nContent-Length: 0\r\n\r\n", .err = HTTP1_E_HEADER },
	{ "bare CR in the empty line", H200 "Foo: 1\r\n\rX", .err = HTTP1_E_HEADER },
	{ "NUL in a value", H200 "Foo: a\0b\r\n\r\n", sizeof(H200 "Foo: a\0b\r\n\r\n") - 1, .err = HTTP1_E_HEADER },
	{ "no colon", H200 "Foo\r\n\r\n", .err = HTTP1_E_HEADER },
	{ "empty name", H200 ": x\r\n\r\n", .err = HTTP1_E_HEADER },
	{ "Content-Type truncated", gen_ct300, .n = 1, .r = { { 200, "", LEN, true, 0, want_ct255 } } },
	{ "Content-Type longer than HTTP1_VALUE_MAX is truncated too", gen_ct_long, .n = 1,
	  .r = { { 200, "", LEN, true, 0, want_k255 } } },
	{ "interpreted value too long", gen_conn_long, .err = HTTP1_E_VALUE_TOO_LONG },
	{ "long value of another header is skipped", gen_other_long, .n = 1, .r = { { 200, "", LEN, true, 0, NULL } } },
	{ "trailing OWS beyond the value limit is trimmed", gen_cl_ows, .n = 1,
	  .r = { { 200, "hello", LEN, true, 5, NULL } } },
	/* Content-Length */
	{ "repeated identical Content-Length", H200 "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", .n = 1,
	  .r = { { 200, "hello", LEN, true, 5, NULL } } },
	{ "Content-Length list 5, 5", H200 "Content-Length: 5, 5,5\r\n\r\nhello", .n = 1,
	  .r = { { 200, "hello", LEN, true, 5, NULL } } },
	{ "conflicting Content-Length lines", H200 "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
	  .err = HTTP1_E_CL_CONFLICT },
	{ "conflicting Content-Length list", H200 "Content-Length: 5, 6\r\n\r\nhello", .err = HTTP1_E_CL_CONFLICT },
	{ "Content-Length not a number", H200 "Content-Length: 5a\r\n\r\nhello", .err = HTTP1_E_CONTENT_LENGTH },
	{ "Content-Length negative", H200 "Content-Length: -1\r\n\r\n", .err = HTTP1_E_CONTENT_LENGTH },
	{ "Content-Length with plus", H200 "Content-Length: +5\r\n\r\nhello", .err = HTTP1_E_CONTENT_LENGTH },
	{ "Content-Length empty", H200 "Content-Length: \r\n\r\n", .err = HTTP1_E_CONTENT_LENGTH },
	{ "Content-Length list with empty member", H200 "Content-Length: 5,\r\n\r\nhello",
	  .err = HTTP1_E_CONTENT_LENGTH },
	{ "Content-Length space inside", H200 "Content-Length: 1 2\r\n\r\n", .err = HTTP1_E_CONTENT_LENGTH },
	{ "Content-Length overflow", H200 "Content-Length: 9223372036854775808\r\n\r\n", .err = HTTP1_E_CONTENT_LENGTH },
	{ "Content-Length INT64_MAX then EOF", H200 "Content-Length: 9223372036854775807\r\n\r\nab",
	  .err = HTTP1_E_TRUNCATED, .partial_status = 200, .partial_body = "ab" },
	{ "truncated Content-Length body", H200 "Content-Length: 10\r\n\r\nabc", .err = HTTP1_E_TRUNCATED,
	  .partial_status = 200, .partial_body = "abc" },
	{ "truncated header section", H200 "Content-Le", .err = HTTP1_E_TRUNCATED },
	{ "truncated status line", "HTTP/1.1 2", .err = HTTP1_E_TRUNCATED },
	{ "truncated second pipelined response", OK_CL5 "HTTP/1.1 200 OK", .n = 1, .err = HTTP1_E_TRUNCATED,
	  .r = { { 200, "hello", LEN, true, 5, NULL } } },
	/* Transfer-Encoding */
	{ "Transfer-Encoding with Content-Length", H200 TE_CH "Content-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	  .err = HTTP1_E_TE_CL },
	{ "Content-Length with Transfer-Encoding", H200 "Content-Length: 3\r\n" TE_CH "\r\n3\r\nabc\r\n0\r\n\r\n",
	  .err = HTTP1_E_TE_CL },
	{ "gzip, chunked", H200 "Transfer-Encoding: gzip, chunked\r\n\r\n", .err = HTTP1_E_TE },
	{ "gzip then chunked on two lines", H200 "Transfer-Encoding: gzip\r\n" TE_CH "\r\n", .err = HTTP1_E_TE },
	{ "chunked not last", H200 "Transfer-Encoding: chunked, identity\r\n\r\nWorld", .err = HTTP1_E_TE },
	{ "chunked twice", H200 TE_CH TE_CH "\r\n", .err = HTTP1_E_TE },
	{ "unknown coding chunkedchunked", H200 "Transfer-Encoding: chunkedchunked\r\n\r\n", .err = HTTP1_E_TE },
	{ "empty Transfer-Encoding", H200 "Transfer-Encoding:\r\n\r\n", .err = HTTP1_E_TE },
	{ "chunked over HTTP/1.0", "HTTP/1.0 200 OK\r\n" TE_CH "\r\n0\r\n\r\n", .err = HTTP1_E_TE },
	{ "empty list members are ignored", H200 "Transfer-Encoding: , chunked ,\r\n\r\n1\r\nz\r\n0\r\n\r\n",
	  .n = 1, .r = { { 200, "z", CHUNKED, true, -1, NULL } } },
	/* chunked framing errors */
	{ "chunk size overflow", H200 TE_CH "\r\nFFFFFFFFFFFFFFFFF\r\n", .err = HTTP1_E_CHUNK_OVERFLOW },
	{ "chunk size 2^60 overflows", H200 TE_CH "\r\n1000000000000000\r\n", .err = HTTP1_E_CHUNK_OVERFLOW },
	{ "chunk size 2^60-1 is fine (truncated)", H200 TE_CH "\r\nFFFFFFFFFFFFFFF\r\nab",
	  .err = HTTP1_E_TRUNCATED, .partial_status = 200, .partial_body = "ab" },
	{ "no CRLF after chunk data", H200 TE_CH "\r\n2\r\nabc\r\n0\r\n\r\n", .err = HTTP1_E_CHUNK_SIZE },
	{ "LF only after chunk data", H200 TE_CH "\r\n2\r\nab\n0\r\n\r\n", .err = HTTP1_E_CHUNK_SIZE },
	{ "trailing space after chunk size", H200 TE_CH "\r\n5  \r\nhello\r\n0\r\n\r\n", .err = HTTP1_E_CHUNK_SIZE },
	{ "no semicolon before extension", H200 TE_CH "\r\n2 erf\r\naa\r\n0\r\n\r\n", .err = HTTP1_E_CHUNK_SIZE },
	{ "nothing after semicolon", H200 TE_CH "\r\n2;\r\naa\r\n0\r\n\r\n", .err = HTTP1_E_CHUNK_SIZE },
	{ "empty extension value", H200 TE_CH "\r\n2;a=\r\naa\r\n0\r\n\r\n", .err = HTTP1_E_CHUNK_SIZE },
	{ "unbalanced quote in extension", H200 TE_CH "\r\n5;a=\"b; c\r\nhello\r\n0\r\n\r\n", .err = HTTP1_E_CHUNK_SIZE },
	{ "no chunk size", H200 TE_CH "\r\n;a\r\n", .err = HTTP1_E_CHUNK_SIZE },
	{ "non-hex chunk size", H200 TE_CH "\r\nx\r\n", .err = HTTP1_E_CHUNK_SIZE },
	{ "bare LF after chunk size", H200 TE_CH "\r\n1\nz\r\n0\r\n\r\n", .err = HTTP1_E_CHUNK_SIZE },
	{ "chunk line longer than 4096 bytes", gen_chunk_line, .err = HTTP1_E_CHUNK_SIZE },
	{ "chunk line of 4096 bytes", gen_chunk_line_ok, .n = 1, .r = { { 200, "x", CHUNKED, true, -1, NULL } } },
	{ "obs-fold in trailers", H200 TE_CH "\r\n0\r\nA: b\r\n c\r\n\r\n", .err = HTTP1_E_HEADER },
	{ "truncated chunk data", H200 TE_CH "\r\n5\r\nhel", .err = HTTP1_E_TRUNCATED, .partial_status = 200,
	  .partial_body = "hel" },
	{ "truncated before the last CRLF", H200 TE_CH "\r\n5\r\nhello\r\n0\r\n", .err = HTTP1_E_TRUNCATED,
	  .partial_status = 200, .partial_body = "hello" },
	{ "truncated in a trailer", H200 TE_CH "\r\n0\r\nX: 1\r\n", .err = HTTP1_E_TRUNCATED, .partial_status = 200,
	  .partial_body = "" },
	/* header size limit: H200 "\r\n" is 19 bytes */
	{ "header bytes at the limit", H200 "\r\n", .max_hdr = 19, .n = 1, .eof = true,
	  .r = { { 200, "", EOFB, false, -1, NULL } } },
	{ "header bytes one over the limit", H200 "\r\n", .max_hdr = 18, .err = HTTP1_E_HEADER_TOO_LARGE },
	{ "interim bytes count", C100 H200 "\r\n", .max_hdr = 25 + 18, .err = HTTP1_E_HEADER_TOO_LARGE },
	{ "leading empty lines count", "\r\n" H200 "\r\n", .max_hdr = 20, .err = HTTP1_E_HEADER_TOO_LARGE },
	{ "trailer bytes count", H200 TE_CH "\r\n1\r\nz\r\n0\r\nX-T: 1\r\n\r\n", .max_hdr = 47 + 9,
	  .err = HTTP1_E_HEADER_TOO_LARGE },
	{ "trailer bytes at the limit", H200 TE_CH "\r\n1\r\nz\r\n0\r\nX-T: 1\r\n\r\n", .max_hdr = 47 + 10, .n = 1,
	  .r = { { 200, "z", CHUNKED, true, -1, NULL } } },
	/* nothing at all */
	{ "empty stream", "", .n = 0 },
	{ "only empty lines", "\r\n\r\n", .n = 0 },
	{ "a lone CR", "\r", .err = HTTP1_E_TRUNCATED },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* Which outcome the table expects; returns a reason for a mismatch, or NULL. */
static const char *case_mismatch(const struct tcase *c, const struct outcome *o)
{
	static char why[160];

	if (o->api_bad)
		return "parse contract violated";
	if (o->err != c->err) {
		snprintf(why, sizeof(why), "error %d (%s), want %d", o->err, http1_strerror(o->err), c->err);
		return why;
	}
	if (o->n != c->n) {
		snprintf(why, sizeof(why), "%d responses, want %d", o->n, c->n);
		return why;
	}
	for (int i = 0; i < c->n && i < 2; i++) {
		const struct want_resp *w = &c->r[i];
		const struct resp *x = &o->r[i];
		const char *ct = w->content_type ? w->content_type : "";

		if (x->status != w->status || x->framing != w->framing || x->keep_alive != w->keep_alive ||
		    x->content_length != w->content_length || strcmp(x->content_type, ct) != 0) {
			snprintf(why, sizeof(why), "response %d: status %d framing %d ka %d cl %lld ct '%.40s'", i,
				 x->status, x->framing, x->keep_alive, (long long)x->content_length, x->content_type);
			return why;
		}
		if (x->body_len != strlen(w->body) || memcmp(x->body, w->body, x->body_len) != 0)
			return "body differs";
	}
	if (c->n > 0 && o->r[c->n - 1].eof_done != c->eof)
		return "EOF completion differs";
	if (o->leftover != c->leftover)
		return "leftover differs";
	if (o->r[0].interim_count != c->interim)
		return "interim count differs";
	if (c->err == HTTP1_E_TRUNCATED) {
		const struct resp *x = &o->r[o->n];

		if (x->headers_seen != (c->partial_status != 0) || (c->partial_status && x->status != c->partial_status))
			return "partial response status differs";
		if (c->partial_body &&
		    (x->body_len != strlen(c->partial_body) || memcmp(x->body, c->partial_body, x->body_len) != 0))
			return "partial body differs";
	}
	return NULL;
}

/* Run one stream in every split mode; all outcomes must equal the whole-feed one. Returns it in *whole. */
static int check_splits(const uint8_t *raw, size_t len, bool head, uint64_t max_hdr, struct outcome *whole,
			const char *name)
{
	static struct outcome o;
	size_t cuts[2];
	size_t stride = len <= 2048 ? 1 : len / 256;
	int bad = 0;

	run_split(raw, len, head, max_hdr, NULL, 0, whole);
	run_bytewise(raw, len, head, max_hdr, &o);
	if (!outcome_equal(whole, &o)) {
		fprintf(stderr, "  %s: byte-by-byte differs from whole\n", name);
		bad++;
	}
	for (size_t k = 1; k < len; k++) {
		if (k % stride != 0 && k > 8 && k + 8 < len)
			continue;
		cuts[0] = k;
		run_split(raw, len, head, max_hdr, cuts, 1, &o);
		if (!outcome_equal(whole, &o)) {
			fprintf(stderr, "  %s: split at %zu differs\n", name, k);
			bad++;
		}
		cuts[1] = k + 1 + (len - k) / 2;
		if (cuts[1] >= len)
			continue;
		run_split(raw, len, head, max_hdr, cuts, 2, &o);
		if (!outcome_equal(whole, &o)) {
			fprintf(stderr, "  %s: split at %zu,%zu differs\n", name, cuts[0], cuts[1]);
			bad++;
		}
	}
	return bad;
}

static void test_table(void)
{
	static struct outcome whole;

	for (size_t i = 0; i < NCASES; i++) {
		const struct tcase *c = &cases[i];
		size_t len = c->raw_len ? c->raw_len : strlen(c->raw);
		const char *why;
		int bad;

		bad = check_splits((const uint8_t *)c->raw, len, c->head, c->max_hdr ? c->max_hdr : DEF_MAX_HDR,
				   &whole, c->name);
		CHECK(bad == 0, "%s: %d split modes differ from the whole feed", c->name, bad);
		why = case_mismatch(c, &whole);
		CHECK(why == NULL, "%s: %s", c->name, why);
	}
}

/* ---- API details ---- */

static ssize_t feed(struct http1_parser *p, const char *s, struct http1_ev *ev)
{
	return http1_parse(p, (const uint8_t *)s, strlen(s), ev);
}

static void test_events(void)
{
	struct http1_parser p;
	struct http1_ev ev;
	const char *s = "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1";
	ssize_t n;

	http1_parser_init(&p, false, DEF_MAX_HDR);
	CHECK(!http1_started(&p), "fresh parser not started");
	CHECK(http1_finish(&p) == HTTP1_EV_NONE, "finish on a fresh parser: nothing pending");
	http1_parser_init(&p, false, DEF_MAX_HDR);
	n = feed(&p, s, &ev);
	CHECK(n == 27 && ev.type == HTTP1_EV_HEADERS, "HEADERS after 27 bytes: %zd %d", n, ev.type);
	CHECK(http1_started(&p), "started after a status line");
	CHECK(p.status == 204 && p.framing == HTTP1_FRAMING_NONE && p.keep_alive, "204 fields");
	n = http1_parse(&p, NULL, 0, &ev);
	CHECK(n == 0 && ev.type == HTTP1_EV_DONE, "DONE with no bytes offered: %zd %d", n, ev.type);
	n = feed(&p, s + 27, &ev);
	CHECK(n == HTTP1_E_AFTER_DONE, "parse after DONE: %zd", n);
	n = http1_parse(&p, NULL, 0, &ev);
	CHECK(n == HTTP1_E_AFTER_DONE, "parse after DONE, no bytes: %zd", n);
	CHECK(http1_finish(&p) == HTTP1_EV_NONE, "finish after DONE: nothing pending");

	/* a chunked body fed whole: one BODY per contiguous run of chunk data, pointing into our buffer */
	const char *ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
	size_t off = 0, len = strlen(ch);
	int bodies = 0;

	http1_parser_init(&p, false, DEF_MAX_HDR);
	for (;;) {
		n = http1_parse(&p, (const uint8_t *)ch + off, len - off, &ev);
		if (n < 0)
			break;
		if (ev.type == HTTP1_EV_BODY) {
			CHECK((const char *)ev.data >= ch + off && (const char *)ev.data + ev.len == ch + off + n,
			      "BODY is the tail of the consumed bytes");
			CHECK(memcmp(ev.data, bodies == 0 ? "abc" : "de", ev.len) == 0, "BODY %d content", bodies);
			bodies++;
		}
		off += (size_t)n;
		if (ev.type == HTTP1_EV_DONE || ev.type == HTTP1_EV_NONE)
			break;
	}
	CHECK(ev.type == HTTP1_EV_DONE && off == len && bodies == 2, "chunked whole: %d bodies, DONE at %zu", bodies,
	      off);
	CHECK(p.body_bytes == 5 && p.header_bytes == 47 + 2, "body_bytes %llu header_bytes %llu",
	      (unsigned long long)p.body_bytes, (unsigned long long)p.header_bytes);

	/* errors are sticky, for parse and finish */
	http1_parser_init(&p, false, DEF_MAX_HDR);
	n = feed(&p, "HTTP/1.1 200 OK\r\nContent-Length: x\r\n", &ev);
	CHECK(n == HTTP1_E_CONTENT_LENGTH, "bad CL: %zd", n);
	n = feed(&p, "\r\n", &ev);
	CHECK(n == HTTP1_E_CONTENT_LENGTH, "error is sticky: %zd", n);
	CHECK(http1_finish(&p) == HTTP1_E_CONTENT_LENGTH, "finish reports the sticky error");

	/* finish: truncation is sticky too; leading empty lines do not start a response */
	http1_parser_init(&p, false, DEF_MAX_HDR);
	n = feed(&p, "\r\n", &ev);
	CHECK(n == 2 && ev.type == HTTP1_EV_NONE && !http1_started(&p), "empty line: not started");
	n = feed(&p, "H", &ev);
	CHECK(n == 1 && http1_started(&p), "one status byte: started");
	CHECK(http1_finish(&p) == HTTP1_E_TRUNCATED, "finish inside the status line");
	CHECK(feed(&p, "TTP/1.1 200 OK\r\n", &ev) == HTTP1_E_TRUNCATED, "parse after truncation");
	CHECK(sizeof(struct http1_parser) <= 2 * HTTP1_VALUE_MAX + 768, "parser is %zu bytes",
	      sizeof(struct http1_parser));
}

/* Location, Retry-After and Content-Encoding are kept; a Location too long to keep is not an error. */
static void test_kept_headers(void)
{
	struct http1_parser p;
	struct http1_ev ev;
	const char *r = "HTTP/1.1 301 Moved\r\nLocation:  /a/b?c \r\nRetry-After: 120\r\n"
			"Content-Encoding: gzip\r\nContent-Length: 0\r\n\r\n";
	http1_parser_init(&p, false, DEF_MAX_HDR);
	ssize_t n = feed(&p, r, &ev);
	CHECK(n > 0 && ev.type == HTTP1_EV_HEADERS && p.status == 301, "headers: %zd %d", n, ev.type);
	CHECK(p.location_len == 6 && strcmp(p.location, "/a/b?c") == 0, "location '%s' (%d)", p.location,
	      p.location_len);
	CHECK(strcmp(p.retry_after, "120") == 0 && strcmp(p.content_encoding, "gzip") == 0, "'%s' '%s'",
	      p.retry_after, p.content_encoding);
	/* several Content-Encoding fields make one list */
	http1_parser_init(&p, false, DEF_MAX_HDR);
	n = feed(&p, "HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Encoding:  gzip \r\nContent-Length: 0\r\n\r\n",
		 &ev);
	CHECK(n > 0 && strcmp(p.content_encoding, "br, gzip") == 0, "'%s'", p.content_encoding);
	/* absent, then a second response on the same parser starts clean */
	http1_parser_init(&p, false, DEF_MAX_HDR);
	n = feed(&p, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &ev);
	CHECK(n > 0 && p.location_len == -1 && !p.retry_after[0] && !p.content_encoding[0], "absent");
	/* a Location longer than HTTP1_VALUE_MAX: -2, and the response still parses */
	size_t big = HTTP1_VALUE_MAX + 100;
	char *resp = malloc(big + 128);
	int at = sprintf(resp, "HTTP/1.1 302 Found\r\nLocation: /");
	memset(resp + at, 'x', big);
	strcpy(resp + at + big, "\r\nContent-Length: 0\r\n\r\n");
	http1_parser_init(&p, false, DEF_MAX_HDR);
	n = feed(&p, resp, &ev);
	CHECK(n > 0 && ev.type == HTTP1_EV_HEADERS && p.location_len == -2, "long Location: %zd %d", n, p.location_len);
	free(resp);
	/* exactly HTTP1_VALUE_MAX bytes fit */
	resp = malloc(HTTP1_VALUE_MAX + 128);
	at = sprintf(resp, "HTTP/1.1 302 Found\r\nLocation: ");
	memset(resp + at, 'y', HTTP1_VALUE_MAX);
	strcpy(resp + at + HTTP1_VALUE_MAX, "\r\nContent-Length: 0\r\n\r\n");
	http1_parser_init(&p, false, DEF_MAX_HDR);
	n = feed(&p, resp, &ev);
	CHECK(n > 0 && p.location_len == HTTP1_VALUE_MAX && strlen(p.location) == HTTP1_VALUE_MAX, "full Location: %d",
	      p.location_len);
	free(resp);
}

static void test_endless_header(void)
{
	size_t len = 1u << 20, off;
	uint8_t *raw = malloc(len);
	struct outcome *o = malloc(sizeof(*o));
	struct http1_parser p;
	struct http1_ev ev;
	ssize_t n = 0;
	static const char start[] = "HTTP/1.1 200 OK\r\nX-Endless: ";

	if (!raw || !o) {
		CHECK(0, "out of memory");
		free(raw);
		free(o);
		return;
	}
	memcpy(raw, start, sizeof(start) - 1);
	memset(raw + sizeof(start) - 1, 'v', len - (sizeof(start) - 1));
	/* fed in 4 KiB reads: the error comes with the read that crosses 64 KiB, not at the end */
	http1_parser_init(&p, false, 65536);
	for (off = 0; off < len; off += 4096) {
		n = http1_parse(&p, raw + off, 4096, &ev);
		if (n < 0)
			break;
	}
	CHECK(n == HTTP1_E_HEADER_TOO_LARGE && off == 65536, "endless header: %zd at offset %zu", n, off);
	CHECK(p.header_bytes == 65537, "stopped at the first byte over the limit: %llu",
	      (unsigned long long)p.header_bytes);
	CHECK(check_splits(raw, len, false, 65536, o, "endless header") == 0, "endless header: split modes agree");
	CHECK(o->err == HTTP1_E_HEADER_TOO_LARGE && o->n == 0, "endless header outcome %d", o->err);
	/* endless empty lines before a status line are bounded too */
	memset(raw, 0, len);
	for (size_t i = 0; i + 1 < len; i += 2)
		memcpy(raw + i, "\r\n", 2);
	http1_parser_init(&p, false, 65536);
	n = http1_parse(&p, raw, len, &ev);
	CHECK(n == HTTP1_E_HEADER_TOO_LARGE, "endless empty lines: %zd", n);
	free(raw);
	free(o);
}

static void test_strerror(void)
{
	for (int e = HTTP1_E_AFTER_DONE; e <= HTTP1_E_STATUS_LINE; e++) {
		const char *s = http1_strerror(e);

		CHECK(s && s[0] && strcmp(s, http1_strerror(-1000)) != 0, "strerror(%d) is specific", e);
		for (int f = e + 1; f <= HTTP1_E_STATUS_LINE; f++)
			CHECK(strcmp(s, http1_strerror(f)) != 0, "strerror(%d) == strerror(%d)", e, f);
	}
	CHECK(strcmp(http1_strerror(HTTP1_E_CL_CONFLICT), "conflicting Content-Length") == 0, "CL conflict text");
	CHECK(http1_strerror(5)[0] != '\0', "unknown value still gives a string");
}

/* ---- request builder ---- */

static void test_build_request(void)
{
	char buf[512];
	ssize_t n;
	const char *want = "GET /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: fetchd/0.1\r\n"
			   "Accept: */*\r\nAccept-Encoding: identity\r\nConnection: keep-alive\r\n\r\n";
	const char *want_head = "HEAD / HTTP/1.1\r\nHost: h\r\nUser-Agent: ua x\r\nAccept: */*\r\n"
				"Accept-Encoding: identity\r\nConnection: keep-alive\r\n"
				"Authorization: Basic dXNlcjpwYXNz\r\n\r\n";

	n = build_simple(buf, sizeof(buf), "GET", "/a?b=c#frag", 6, "example.com:8080", 16, "fetchd/0.1",
				NULL);
	CHECK(n == (ssize_t)strlen(want) && strcmp(buf, want) == 0, "GET request: %zd '%s'", n, buf);
	n = build_simple(buf, sizeof(buf), "HEAD", "", 0, "h", 1, "ua x", "dXNlcjpwYXNz");
	CHECK(n == (ssize_t)strlen(want_head) && strcmp(buf, want_head) == 0, "HEAD request: %zd '%s'", n, buf);
	n = build_simple(buf, sizeof(buf), "GET", "/", 1, "h", 1, NULL, NULL);
	CHECK(n > 0 && strstr(buf, "User-Agent") == NULL, "NULL user agent omits the line");

	/* exact capacity: the length plus its NUL; every smaller capacity fails */
	size_t need = strlen(want) + 1;
	bool all_fail = true;

	for (size_t cap = 0; cap < need; cap++)
		if (build_simple(buf, cap, "GET", "/a?b=c", 6, "example.com:8080", 16, "fetchd/0.1", NULL) != -1)
			all_fail = false;
	CHECK(all_fail, "every capacity below %zu fails", need);
	n = build_simple(buf, need, "GET", "/a?b=c", 6, "example.com:8080", 16, "fetchd/0.1", NULL);
	CHECK(n == (ssize_t)need - 1 && strcmp(buf, want) == 0, "capacity %zu is enough: %zd", need, n);

	/* injection */
	CHECK(build_simple(buf, sizeof(buf), "GET", "/a\r\nX: y", 8, "h", 1, "ua", NULL) == -1, "CRLF in target");
	CHECK(build_simple(buf, sizeof(buf), "GET", "/a\0b", 4, "h", 1, "ua", NULL) == -1, "NUL in target");
	CHECK(build_simple(buf, sizeof(buf), "GET", "/a b", 4, "h", 1, "ua", NULL) == -1, "SP in target");
	CHECK(build_simple(buf, sizeof(buf), "GET", "/", 1, "h\r\nX: y", 8, "ua", NULL) == -1, "CRLF in host");
	CHECK(build_simple(buf, sizeof(buf), "GET", "/", 1, "h\0", 2, "ua", NULL) == -1, "NUL in host");
	CHECK(build_simple(buf, sizeof(buf), "GET", "/", 1, "h", 1, "ua\r\nX: y", NULL) == -1, "CRLF in UA");
	CHECK(build_simple(buf, sizeof(buf), "GET", "/", 1, "h", 1, "ua\n", NULL) == -1, "LF in UA");
	CHECK(build_simple(buf, sizeof(buf), "GET", "/", 1, "h", 1, "ua", "abc\r\n") == -1, "CRLF in auth");
	CHECK(build_simple(buf, sizeof(buf), "GE\rT", "/", 1, "h", 1, "ua", NULL) == -1, "CR in method");
	CHECK(build_simple(buf, sizeof(buf), "", "/", 1, "h", 1, "ua", NULL) == -1, "empty method");
	/* the target length is honoured, bytes after it are not read */
	n = build_simple(buf, sizeof(buf), "GET", "/x\r\n", 2, "hh\n", 2, "ua", NULL);
	CHECK(n > 0 && strncmp(buf, "GET /x HTTP/1.1\r\nHost: hh\r\n", 27) == 0, "lengths honoured: '%s'", buf);
}

/* ---- the llhttp-derived corpus ---- */

struct crec {
	char id[160];
	bool head;
	uint8_t *raw;
	size_t raw_len;
	int nmsg;
	struct {
		int status;
		bool eof;
		uint8_t *body;
		size_t body_len;
	} msg[8];
	char end[16];
	int partial_status; /* -1: headers not complete */
	uint8_t *partial_body;
	size_t partial_len;
};

/* Records where our behaviour differs from llhttp's on purpose, and what we do instead. */
static const struct {
	const char *id;
	int our_err;         /* our error, or 0: we stop after a Connection: close response (leftover unread) */
	const char *reason;
} differences[] = {
	{ "sample:rtsp-response", HTTP1_E_STATUS_LINE, "we reject RTSP status lines: a fetcher speaks HTTP only" },
	{ "sample:ice-response", HTTP1_E_STATUS_LINE, "we reject ICE status lines: a fetcher speaks HTTP only" },
	{ "sample:http-version-0-9", HTTP1_E_STATUS_LINE, "we accept HTTP/1.x status lines only" },
	{ "connection:http-1-1-with-keep-alive-disabled-and-204-status", 0,
	  "after a Connection: close response a client stops reading; the rest is never parsed" },
	{ "connection:http-1-1-with-keep-alive-disabled-content-length", 0,
	  "after a Connection: close response a client stops reading; the rest is never parsed" },
	{ "connection:http-101-response-with-upgrade-and-content-length-header", HTTP1_E_INTERIM,
	  "we never ask for an upgrade, so a 101 is an error" },
	{ "connection:http-101-response-with-upgrade-and-transfer-encoding-header", HTTP1_E_INTERIM,
	  "we never ask for an upgrade, so a 101 is an error" },
	{ "transfer-encoding:chunked-before-other-transfer-encoding", HTTP1_E_TE,
	  "we reject codings we cannot decode (we send Accept-Encoding: identity) instead of reading to EOF" },
	{ "transfer-encoding:multiple-transfer-encoding-where-chunked-is-not-the-last-one", HTTP1_E_TE,
	  "we reject codings we cannot decode instead of reading to EOF" },
	{ "transfer-encoding:chunkedchunked-transfer-encoding-does-not-enable-chunked-enconding", HTTP1_E_TE,
	  "we reject codings we cannot decode instead of reading to EOF" },
};

#define NDIFF (sizeof(differences) / sizeof(differences[0]))

/* Decode hex ("-" is empty) into a new buffer; returns false on malformed input. */
static bool unhex(const char *s, uint8_t **out, size_t *out_len)
{
	size_t n = strcspn(s, " \n");

	*out_len = 0;
	*out = malloc(n / 2 + 1);
	if (!*out)
		return false;
	if (n == 1 && s[0] == '-')
		return true;
	if (n % 2)
		return false;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		(*out)[(*out_len)++] = (uint8_t)(hi * 16 + lo);
	}
	return true;
}

static void crec_free(struct crec *r)
{
	free(r->raw);
	free(r->partial_body);
	for (int i = 0; i < r->nmsg; i++)
		free(r->msg[i].body);
	memset(r, 0, sizeof(*r));
}

/* One line of a record; returns false on a malformed line. */
static bool crec_line(struct crec *r, const char *line)
{
	char word[16];
	int status, flag, used = 0;

	if (strncmp(line, "record ", 7) == 0)
		return sscanf(line + 7, "%159s", r->id) == 1;
	if (strncmp(line, "method ", 7) == 0) {
		r->head = strncmp(line + 7, "HEAD", 4) == 0;
		return true;
	}
	if (strncmp(line, "raw ", 4) == 0)
		return !r->raw && unhex(line + 4, &r->raw, &r->raw_len);
	if (strncmp(line, "msg ", 4) == 0) {
		if (r->nmsg >= 8 || sscanf(line + 4, "%d %d %n", &status, &flag, &used) != 2 || used == 0)
			return false;
		r->msg[r->nmsg].status = status;
		r->msg[r->nmsg].eof = flag != 0;
		r->nmsg++;
		return unhex(line + 4 + used, &r->msg[r->nmsg - 1].body, &r->msg[r->nmsg - 1].body_len);
	}
	if (strncmp(line, "end ", 4) == 0)
		return sscanf(line + 4, "%15s", r->end) == 1;
	if (strncmp(line, "partial ", 8) == 0) {
		if (sscanf(line + 8, "%15s %d %n", word, &flag, &used) != 2 || used == 0)
			return false;
		r->partial_status = strcmp(word, "-") == 0 ? -1 : atoi(word);
		return unhex(line + 8 + used, &r->partial_body, &r->partial_len);
	}
	return strncmp(line, "error ", 6) == 0 || line[0] == '#' || line[0] == '\n';
}

static bool bytes_equal(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
	size_t kept = a_len < BODY_CAP ? a_len : BODY_CAP;

	return a_len == b_len && memcmp(a, b, kept) == 0;
}

/* Our completed responses against llhttp's messages, interim ones left out; NULL when equal. */
static const char *messages_mismatch(const struct crec *r, const struct outcome *o)
{
	int k = 0;
	uint32_t interim = 0, want_interim = 0;

	for (int i = 0; i < r->nmsg; i++) {
		if (r->msg[i].status < 200) {
			want_interim++;
			continue;
		}
		if (k >= o->n)
			return "fewer responses";
		if (o->r[k].status != r->msg[i].status)
			return "status differs";
		if (!bytes_equal(o->r[k].body, o->r[k].body_len, r->msg[i].body, r->msg[i].body_len))
			return "body differs";
		if (o->r[k].eof_done != r->msg[i].eof)
			return "EOF completion differs";
		k++;
	}
	if (k != o->n)
		return "more responses";
	for (int i = 0; i <= o->n && i < MAX_RESP; i++)
		interim += o->r[i].interim_count;
	return interim == want_interim ? NULL : "interim count differs";
}

static const char *corpus_mismatch(const struct crec *r, const struct outcome *o)
{
	const char *why = messages_mismatch(r, o);

	if (o->api_bad)
		return "parse contract violated";
	if (why)
		return why;
	if (strcmp(r->end, "clean") == 0)
		return o->err == 0 && o->leftover == 0 ? NULL : "want a clean end";
	if (strcmp(r->end, "error") == 0)
		return o->err < 0 && o->err != HTTP1_E_TRUNCATED ? NULL : "want a parse error";
	if (strcmp(r->end, "incomplete") != 0)
		return "end kind we never produce";
	if (o->err != HTTP1_E_TRUNCATED)
		return "want a truncated response";
	if (o->r[o->n].headers_seen != (r->partial_status >= 0))
		return "partial header state differs";
	if (r->partial_status >= 0 && o->r[o->n].status != r->partial_status)
		return "partial status differs";
	if (!bytes_equal(o->r[o->n].body, o->r[o->n].body_len, r->partial_body, r->partial_len))
		return "partial body differs";
	return NULL;
}

/* What we say we do for a listed record; NULL when that holds. */
static const char *difference_mismatch(const struct crec *r, const struct outcome *o, int our_err)
{
	if (o->api_bad)
		return "parse contract violated";
	if (our_err != 0)
		return o->err == our_err ? NULL : "not the error we list";
	if (o->err != 0 || o->leftover == 0 || o->n == 0 || o->r[o->n - 1].keep_alive)
		return "not a stop after Connection: close";
	return messages_mismatch(r, o);
}

static void corpus_record(const struct crec *r, int *matched, int *differ)
{
	static struct outcome whole, bytewise;
	const char *why;
	int diff = -1;

	run_split(r->raw, r->raw_len, r->head, DEF_MAX_HDR, NULL, 0, &whole);
	run_bytewise(r->raw, r->raw_len, r->head, DEF_MAX_HDR, &bytewise);
	CHECK(outcome_equal(&whole, &bytewise), "corpus %s: byte-by-byte differs from whole", r->id);
	for (size_t i = 0; i < NDIFF; i++)
		if (strcmp(differences[i].id, r->id) == 0)
			diff = (int)i;
	if (diff >= 0) {
		why = difference_mismatch(r, &whole, differences[diff].our_err);
		CHECK(why == NULL, "corpus %s (listed: %s): %s; err %d", r->id, differences[diff].reason, why,
		      whole.err);
		CHECK(corpus_mismatch(r, &whole) != NULL, "corpus %s is listed but matches llhttp", r->id);
		(*differ)++;
		return;
	}
	why = corpus_mismatch(r, &whole);
	CHECK(why == NULL, "corpus %s: %s (err %d %s, %d responses)", r->id, why, whole.err,
	      http1_strerror(whole.err), whole.n);
	if (!why)
		(*matched)++;
}

static FILE *corpus_open(void)
{
	const char *dir = getenv("FETCHD_CORPUS_DIR");
	char path[1024];

	snprintf(path, sizeof(path), "%s/http1-responses.txt", dir && dir[0] ? dir : "tests/corpus");
	return fopen(path, "r");
}

static void test_corpus(void)
{
	FILE *f = corpus_open();
	char *line = NULL;
	size_t cap = 0;
	struct crec r;
	int records = 0, matched = 0, differ = 0, bad_lines = 0;

	CHECK(f != NULL, "cannot open tests/corpus/http1-responses.txt (run from the repo root or set "
			 "FETCHD_CORPUS_DIR)");
	if (!f)
		return;
	memset(&r, 0, sizeof(r));
	while (getline(&line, &cap, f) > 0) {
		if (strcmp(line, ".\n") == 0) {
			if (r.raw && r.id[0] && r.end[0]) {
				corpus_record(&r, &matched, &differ);
				records++;
			} else {
				bad_lines++;
			}
			crec_free(&r);
		} else if (!crec_line(&r, line)) {
			bad_lines++;
		}
	}
	crec_free(&r);
	free(line);
	fclose(f);
	CHECK(bad_lines == 0, "corpus: %d malformed lines or records", bad_lines);
	CHECK(records == 77, "corpus: %d records, want 77", records);
	CHECK(differ == (int)NDIFF, "corpus: %d of %zu listed differences found", differ, NDIFF);
	printf("corpus: %d records, %d match llhttp, %d listed as intentional differences\n", records, matched,
	       differ);
}

int main(void)
{
	gen_init();
	test_table();
	test_events();
	test_endless_header();
	test_kept_headers();
	test_strerror();
	test_build_request();
	test_corpus();
	return test_report();
}

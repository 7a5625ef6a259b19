/* http1.h - HTTP/1.1 client side, pure: a request builder and an incremental response parser.
 * No I/O, no allocation, no logging. The parser takes bytes in any split (one at a time is fine) and
 * reports events; it keeps only the header fields a fetcher needs. */
#ifndef FETCHD_HTTP1_H
#define FETCHD_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP1_CONTENT_TYPE_MAX 256 /* longer Content-Type values are truncated (not an error) */
#define HTTP1_VALUE_MAX 4096       /* longest value kept for a header the parser interprets */
#define HTTP1_MAX_INTERIM 32       /* more 1xx responses than this before the final one: error */

/* Negative results of http1_parse / http1_finish. */
enum http1_error {
	HTTP1_E_STATUS_LINE = -1,     /* malformed status line (version, code, reason) */
	HTTP1_E_HEADER = -2,          /* malformed header line (bad name token, no colon, bare CR...) */
	HTTP1_E_CONTENT_LENGTH = -3,  /* Content-Length not a number, or overflows */
	HTTP1_E_CL_CONFLICT = -4,     /* several different Content-Length values */
	HTTP1_E_TE_CL = -5,           /* Transfer-Encoding together with Content-Length */
	HTTP1_E_TE = -6,              /* Transfer-Encoding we cannot decode (chunked not last, unknown) */
	HTTP1_E_CHUNK_SIZE = -7,      /* malformed chunk size line, extension or chunk end */
	HTTP1_E_CHUNK_OVERFLOW = -8,  /* chunk size too large to represent */
	HTTP1_E_HEADER_TOO_LARGE = -9,/* header bytes (status lines, headers, trailers) > max_header_bytes */
	HTTP1_E_TRUNCATED = -10,      /* EOF before the response was complete */
	HTTP1_E_INTERIM = -11,        /* too many 1xx responses, or a 101 we did not ask for */
	HTTP1_E_VALUE_TOO_LONG = -12, /* an interpreted header's value is longer than HTTP1_VALUE_MAX */
	HTTP1_E_AFTER_DONE = -13,     /* http1_parse called after HTTP1_EV_DONE without a reset */
};

enum http1_event {
	HTTP1_EV_NONE = 0, /* all offered bytes consumed; nothing to report; feed more */
	HTTP1_EV_HEADERS,  /* the final (non-1xx) response's header section is complete; the fields
	                      below are valid from now on */
	HTTP1_EV_BODY,     /* ev->data, ev->len: body bytes with chunked framing removed; they point
	                      into the caller's buffer */
	HTTP1_EV_DONE,     /* the response is complete; any bytes after it are not part of it */
};

enum http1_framing {
	HTTP1_FRAMING_NONE = 0,  /* no body: 1xx/204/304, or a response to HEAD */
	HTTP1_FRAMING_LENGTH,    /* Content-Length */
	HTTP1_FRAMING_CHUNKED,   /* Transfer-Encoding: chunked */
	HTTP1_FRAMING_EOF,       /* neither: the body runs until the server closes */
};

struct http1_ev {
	enum http1_event type;
	const uint8_t *data;
	size_t len;
};

struct http1_parser {
	/* Results, valid after HTTP1_EV_HEADERS. */
	int status;                 /* 100..999 */
	int version_minor;          /* HTTP/1.x */
	enum http1_framing framing;
	int64_t content_length;     /* -1 when absent */
	bool keep_alive;            /* the connection may carry another request after DONE (HTTP/1.1
	                               without "Connection: close", or HTTP/1.0 with keep-alive) and
	                               the body is framed (not FRAMING_EOF) */
	char content_type[HTTP1_CONTENT_TYPE_MAX]; /* "" when absent; NUL-terminated */
	char retry_after[64];       /* Retry-After, "" when absent (truncated) */
	char content_encoding[64];  /* Content-Encoding, "" when absent (truncated) */
	int location_len;           /* Location: its length in location[], -1 absent, -2 longer than
	                               HTTP1_VALUE_MAX (then not an error: only following it fails) */
	uint64_t header_bytes;      /* bytes of status lines, headers and trailers seen so far */
	uint32_t interim_count;     /* 1xx responses skipped */
	uint64_t body_bytes;        /* decoded body bytes delivered so far */

	/* Private state below; callers do not touch it. */
	bool head_request;
	uint64_t max_header_bytes;
	int state;                  /* where the byte-level state machine stands */
	int substate;               /* position inside the status line, or chunk extension step */
	int error;                  /* sticky enum http1_error once parsing failed, else 0 */
	uint64_t remaining;         /* body or chunk bytes left; while in a chunk-size line, the size */
	int header_id;              /* which interpreted header the current line is */
	uint32_t name_len;
	char name[32];              /* current header name, lowercased, truncated */
	uint32_t value_len;
	uint32_t flags;
	uint32_t line_len;          /* bytes of the current chunk-size line */
	char value[HTTP1_VALUE_MAX];/* current interpreted header value, leading OWS skipped; near the
	                               end, so init need not clear it */
	char location[HTTP1_VALUE_MAX + 1]; /* the Location value (location_len bytes + NUL); last: its
	                               pages are touched only by responses that carry one */
};

/* Prepare p for one response. head_request: the request was HEAD (no body whatever the headers say).
 * max_header_bytes bounds everything that is not body. */
void http1_parser_init(struct http1_parser *p, bool head_request, uint64_t max_header_bytes);

/* Parse up to len bytes. Returns the number of bytes consumed (0..len) and fills ev; or a negative enum
 * http1_error. It stops early to report an event: call again with the rest. After HTTP1_EV_DONE it
 * consumes nothing more (the rest belongs to the next response, or is junk); calling it again then
 * returns HTTP1_E_AFTER_DONE. Keep calling until HTTP1_EV_NONE (which always means all len bytes were
 * consumed): an event may come with 0 bytes consumed, even for len 0 (DONE right after the HEADERS of a
 * response without body, or after the last BODY of a Content-Length body). A BODY's bytes are the last
 * ev->len bytes of those consumed. Errors are sticky: every later call returns the same error. */
ssize_t http1_parse(struct http1_parser *p, const uint8_t *buf, size_t len, struct http1_ev *ev);

/* The connection reached EOF. Returns HTTP1_EV_DONE when that completes the response (FRAMING_EOF
 * body), HTTP1_EV_NONE when the parser sits between responses (no byte of a new one seen, or DONE was
 * already reported), or HTTP1_E_TRUNCATED; after a parse error, that error. */
int http1_finish(struct http1_parser *p);

/* True once any byte of the response has been consumed (empty lines before a status line are skipped
 * and do not count). */
bool http1_started(const struct http1_parser *p);

/* A short human-readable reason for an enum http1_error ("conflicting Content-Length"). */
const char *http1_strerror(int err);

/* In header lines "Name: value\r\n"... (lines[0..len)), the line for name[0..name_len), compared
 * case-insensitively: true, with its offset and length (CRLF included) in *at and *n. */
bool http1_header_find(const char *lines, size_t len, const char *name, size_t name_len, size_t *at, size_t *n);

struct http1_request {
	const char *method;            /* "GET" or "HEAD" */
	const char *target;            /* as sent; target_len 0 sends "/" */
	size_t target_len;
	const char *host;              /* the Host value */
	size_t host_len;
	const char *user_agent;        /* NULL: no User-Agent line */
	const char *accept_encoding;   /* NULL: "identity" */
	const char *auth_basic64;      /* NULL: no Authorization (from the URL's userinfo) */
	const char *extra;             /* extra header lines "Name: value\r\n" (opts.h); may be NULL */
	size_t extra_len;
	bool drop_credentials;         /* leave extra's Authorization and Cookie out (cross-host redirect) */
};

/* Build the request: request line, Host, User-Agent, Accept: * / *, Accept-Encoding and Connection:
 * keep-alive, then the extra lines, then Authorization: Basic. An extra line replaces the default
 * header of its name; an extra "Name:" line without a value only removes that default. The result is
 * NUL-terminated (cap must hold the terminator too). Returns the length, or -1 when cap is too small or
 * an argument holds CR, LF or NUL (also: any control byte, or SP in method, target or host), or extra
 * is not well-formed lines. */
ssize_t http1_build_request(char *buf, size_t cap, const struct http1_request *rq);

#endif

/* proto.h - decoding what a client sends on the control socket (docs/protocol.md), pure: frames out of
 * a byte buffer, lines out of a URLS payload, the fields of HELLO. No I/O, no allocation. */
#ifndef FETCHD_PROTO_H
#define FETCHD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum proto_rc {
	PROTO_NEED_MORE = 0,     /* not a whole frame (or line) yet */
	PROTO_OK = 1,            /* one frame (or line) decoded */
	PROTO_E_TOO_LARGE = -1,  /* a frame longer than FETCHD_FRAME_MAX_BYTES */
	PROTO_E_NO_NEWLINE = -2, /* a URLS payload that does not end with '\n' */
	PROTO_E_VERSION = -3,    /* HELLO without "protocol": 1 */
	PROTO_E_OPTIONS = -4,    /* HELLO "options" not a string of at most 8191 bytes */
	PROTO_E_CAPTURE = -5,    /* HELLO "capture" not "raw", "body" or "raw,body" */
	PROTO_E_VERB = -6,       /* HELLO "verb" not a short string */
};

struct proto_frame {
	uint8_t type;
	const uint8_t *payload;
	uint32_t len;            /* payload bytes */
	size_t size;             /* header + payload: what the frame takes of the buffer */
};

/* The frame at the start of p[0..len): PROTO_OK and *f, PROTO_NEED_MORE, or PROTO_E_TOO_LARGE (known
 * from the header alone). */
int proto_frame(const uint8_t *p, size_t len, struct proto_frame *f);

/* The first line of a URLS payload remainder p[0..len): PROTO_OK with *line, *line_len (one trailing
 * '\r' removed) and *consumed (the '\n' included); PROTO_E_NO_NEWLINE when len > 0 holds no '\n';
 * PROTO_NEED_MORE when len is 0. */
int proto_line(const uint8_t *p, size_t len, const char **line, size_t *line_len, size_t *consumed);

struct proto_hello {
	int64_t protocol;        /* -1 when absent */
	bool hash;               /* "hash": true|false; default true */
	uint8_t capture;         /* "capture": FETCHD_CAPTURE_RAW and/or _BODY; default 0 */
	char verb[32];           /* "verb": what the session asks instead of fetching; "" when absent */
	char job[32];            /* "job": the job a verb is about; "" when absent */
	bool detach;             /* "detach": true: the batch becomes a job (jobs.c); default false */
	int options_len;         /* "options": "k=v\tk=v" (opts.h), unescaped into options; -1: absent */
	char options[8192];
};

/* Read a HELLO payload: PROTO_OK, PROTO_E_VERSION (h->protocol says what came), PROTO_E_OPTIONS or
 * PROTO_E_CAPTURE. */
int proto_hello(const uint8_t *p, size_t len, struct proto_hello *h);

#endif

/* result.h - one fetch's outcome as the JSON object fetchctl prints (the single JSON encoder of the
 * project). Pure: a struct in, one line of JSON (with '\n') appended to a buffer. */
#ifndef FETCHD_RESULT_H
#define FETCHD_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/buf.h"

struct result {
	const char *url;
	size_t url_len;
	const char *final_url;   /* NULL: same as url */
	size_t final_url_len;
	const struct buf *hops;  /* redirects followed, NULL: none. Records of: u16 status, u32 length
	                            (host order), that many bytes of the URL that answered with it */
	int status;              /* < 0: null */
	const char *err_class;   /* NULL: no error */
	const char *err_phase;   /* timeouts: which phase; else NULL */
	char err_msg[512];
	uint64_t body_bytes;
	bool have_sha;
	uint8_t sha[32];
	const char *content_type; /* NULL: null */
	const char *content_encoding; /* the response's Content-Encoding as sent; NULL: null */
	bool decoded;             /* ... and the body was decoded from it (body_bytes, body_sha256 decoded) */
	uint64_t wire_bytes;      /* bytes received on the socket for this request (head, framing, TLS) */
	const char *ip;           /* NULL or "": null */
	const char *tls_version;  /* https only; NULL: null */
	const char *tls_cipher;
	const char *tls_backend;
	int tls_verified;         /* 1, 0, or -1: null (not https) */
	int64_t dns_ns, connect_ns, tls_ns, ttfb_ns, total_ns; /* printed as milliseconds, 3 decimals */
	uint32_t attempts;
	int64_t seq;              /* the line's number in its session (from 0), printed only when >= 0
	                             (sessions that asked for "capture") */
};

/* The error classes (docs/protocol.md §9), in a fixed order: counters are kept by index. */
#define RESULT_NCLASSES 12
extern const char *const result_classes[RESULT_NCLASSES];
/* The index of cls in result_classes ("internal"'s for a name not there). */
unsigned result_class_index(const char *cls);

/* A result with nothing known yet: every field null or 0. */
void result_init(struct result *r);

/* Append one hop record to a hops buffer. Returns 0 or -1 (out of memory). */
int result_hop_add(struct buf *hops, int status, const char *url, size_t len);

/* Append r as one JSON object and a newline. Returns 0 or -1 (out of memory). */
int result_encode(struct buf *b, const struct result *r);

#endif

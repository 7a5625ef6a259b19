/* protocol.h - the fetchd control protocol, shared by the daemon and fetchctl (docs/protocol.md says
 * the same in prose). A Unix stream socket carries frames: u32 payload length (big-endian), u8 type,
 * payload. Header-only: constants and two tiny helpers. */
#ifndef FETCHD_PROTOCOL_H
#define FETCHD_PROTOCOL_H

#include <stdint.h>

#ifndef FETCHD_VERSION
#error "FETCHD_VERSION comes from the Makefile (-DFETCHD_VERSION=...)"
#endif
#define FETCHD_PROTO_VERSION 1
#define FETCHD_FRAME_HDR_BYTES 5
#define FETCHD_FRAME_MAX_BYTES (1u << 20) /* largest payload either side may send */
#define FETCHD_DEFAULT_SOCKET "/run/fetchd.sock"

enum fetchd_frame_type {
	/* client -> daemon */
	FETCHD_FR_HELLO = 0x01,   /* JSON {"protocol": 1, "client": "..."}; first frame */
	FETCHD_FR_URLS = 0x02,    /* URLs, each line ended by '\n'; one result per line */
	FETCHD_FR_END = 0x03,     /* no more URLs; the daemon sends DONE after the last result */
	/* daemon -> client */
	FETCHD_FR_WELCOME = 0x81, /* JSON {"protocol": 1, "server": "fetchd/x.y.z", "max_url_bytes": N} */
	FETCHD_FR_RESULTS = 0x82, /* one or more JSON objects, each ended by '\n' (JSON Lines) */
	FETCHD_FR_DONE = 0x83,    /* JSON {"results": N}; the daemon closes after it */
	FETCHD_FR_ERROR = 0x84,   /* JSON {"error": "..."}; the daemon closes after it */
	FETCHD_FR_CAPTURE = 0x85, /* u32 seq (BE), u8 kind (enum fetchd_capture), data: the bytes of one
	                             fetch, when HELLO asked for "capture"; all before its result */
	FETCHD_FR_INFO = 0x86,    /* JSON: the answer to HELLO "verb" (ping, stats); the daemon then closes */
};

/* HELLO "capture": "raw", "body" or "raw,body" asks for CAPTURE frames. An exchange is one request
 * and its response (each attempt and each redirect hop is one); a new EXCHANGE for a seq abandons an
 * exchange of that seq that had no END (a retry, a failure), and so does the seq's result. */
enum fetchd_capture {
	FETCHD_CAP_EXCHANGE = 1,  /* JSON {"url": "...", "ip": "...", "date": "2026-01-02T03:04:05.678901Z"} */
	FETCHD_CAP_REQUEST = 2,   /* ("raw") the request bytes as sent */
	FETCHD_CAP_RESPONSE = 3,  /* ("raw") response bytes as received (after TLS), in order */
	FETCHD_CAP_BODY = 4,      /* ("body") body bytes after transfer and content decoding, in order */
	FETCHD_CAP_END = 5,       /* JSON {"payload_sha1": "hex"} ("raw": SHA-1 of the body without
	                             chunked coding, before content decoding): the response is complete */
};
#define FETCHD_CAPTURE_RAW 1u     /* HELLO "capture" flags */
#define FETCHD_CAPTURE_BODY 2u
#define FETCHD_CAPTURE_HDR_BYTES 5 /* seq + kind */

static inline void fetchd_frame_hdr(uint8_t *p, uint32_t len, uint8_t type)
{
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[4] = type;
}

static inline uint32_t fetchd_frame_len(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

#endif

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
};

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

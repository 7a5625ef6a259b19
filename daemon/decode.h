/* decode.h - HTTP Content-Encoding decoding (gzip, deflate), pure: the body streams in as pieces of any
 * size (1 byte and up) and the decoded bytes stream out to a sink in pieces no bigger than the caller's
 * scratch buffer, so a sink that counts bytes can stop a decompression bomb at once. Handles
 * concatenated gzip members, zlib-wrapped and raw "deflate", and junk after the end of the stream.
 * No I/O, no logging, no globals; the only allocations are zlib's, made through the caller's allocator
 * when one is given.
 *
 * Memory per decoder, with zlib 1.2.13 on x86-64 (measured by tests/unit/test_decode.c with counting
 * allocators): sizeof(struct decoder) = 184 bytes, held by the caller, plus 7160 bytes of zlib
 * inflate state allocated by decode_init, plus the 32768-byte window zlib allocates on the first call
 * that produces output: 39928 bytes of heap (about 39 KiB) at most, for any input, and nothing more for
 * further gzip members (the state and window are reused). IDENTITY allocates nothing. The scratch
 * buffer given to decode_feed is the caller's (any size >= 1; 16 KiB is a good figure). */
#ifndef FETCHD_DECODE_H
#define FETCHD_DECODE_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

enum decode_kind { DECODE_IDENTITY = 0, DECODE_GZIP, DECODE_DEFLATE };

enum decode_rc {
	DECODE_OK = 0,
	DECODE_E_CORRUPT = -1,   /* bad stream: header, block, CRC/Adler or length check */
	DECODE_E_TRUNCATED = -2, /* decode_finish: the body stopped inside the stream */
	DECODE_E_SINK = -3,      /* the sink returned nonzero */
	DECODE_E_NOMEM = -4,     /* zlib could not allocate its state or window */
	DECODE_E_USAGE = -5,     /* bad kind, NULL out/sink, out_cap 0, or decoder not initialised */
};

/* Internal phases of struct decoder (not for callers). */
enum decode_phase {
	DECODE_PH_SNIFF = 0, /* deflate: waiting for 2 bytes to tell zlib-wrapped from raw */
	DECODE_PH_STREAM,    /* inside a compressed stream (or identity) */
	DECODE_PH_BETWEEN,   /* gzip: a member ended; is a new one (magic 1f 8b) next? */
	DECODE_PH_DONE,      /* the stream ended: whatever follows is trailing junk */
};

struct decoder {
	z_stream zs;
	enum decode_kind kind;
	enum decode_phase phase;
	int ready;                /* 1 between a successful decode_init and decode_free */
	int zlib_live;            /* 1 while zs holds zlib state (inflateEnd owed) */
	int err;                  /* sticky: the first failure, returned again by feed and finish */
	unsigned head_len;        /* bytes held in head (0-2) */
	uint8_t head[2];          /* deflate sniff bytes, or a gzip magic byte seen after a member */
	const char *detail;       /* zlib's message for the first CORRUPT error, else NULL */
	uint64_t in_bytes;        /* input bytes given to decode_feed, trailing junk included */
	uint64_t out_bytes;       /* decoded bytes handed to the sink (the refused piece included) */
	uint64_t trailing_bytes;  /* input bytes after the end of the stream, ignored */
	uint32_t members;         /* gzip members completed */
	int deflate_raw;          /* deflate only, once known: 1 raw (RFC 1951), 0 zlib (RFC 1950) */
};

/* The Content-Encoding header value -> kind. "" or "identity" -> IDENTITY; "gzip", "x-gzip" -> GZIP;
 * "deflate" -> DEFLATE; case-insensitive, surrounding whitespace (SP, HTAB, CR, LF, VT, FF) ignored.
 * NULL (no header) -> IDENTITY. Anything else, including stacked codings ("gzip, br"), parameters,
 * "br", "zstd", "compress": -1 (the caller then passes the body through undecoded and says so). */
int decode_kind_of(const char *value);

/* "identity", "gzip", "deflate"; "unknown" for any other value. Static strings. */
const char *decode_kind_name(enum decode_kind k);

/* Start decoding k. Any previous contents of *d are ignored (no decode_free is done for them). zlib
 * allocates its inflate state here (7160 bytes); its 32 KiB window comes later, on the first output.
 * Returns DECODE_OK, DECODE_E_NOMEM, or DECODE_E_USAGE for an unknown kind. After a failure *d is
 * still safe to pass to decode_free. */
int decode_init(struct decoder *d, enum decode_kind k);

/* Same, with zlib's allocator hooks (zalloc NULL: malloc/free). The hooks and opaque must stay valid
 * until decode_free. Used by the tests to measure memory; usable for per-fetch accounting. */
int decode_init_alloc(struct decoder *d, enum decode_kind k, alloc_func zalloc, free_func zfree,
		      void *opaque);

/* Decode in[0..len) (len may be 0; in may then be NULL) and hand the output to sink in pieces of
 * 1..out_cap bytes written into the caller's scratch buffer out (IDENTITY hands out pieces of in
 * itself, also at most out_cap bytes each, and does not touch out). A sink returning nonzero stops
 * everything at once: decode_feed returns DECODE_E_SINK, so with a sink enforcing a byte limit a bomb
 * stops after at most out_cap bytes past it, having read little more input than that output needs.
 * DECODE_E_CORRUPT on a bad stream (decode_strerror for the class, d->detail for zlib's words);
 * DECODE_E_NOMEM when zlib cannot allocate its window (on the first output).
 * After the end of the stream: for gzip, a member starting with the magic 1f 8b is decoded too (as
 * gzip -d does; the magic may be split across calls); anything else after the end, and everything
 * after that, is ignored and counted in d->trailing_bytes. "deflate" is zlib-wrapped (RFC 1950) when
 * its first two bytes are a valid zlib header (CM 8, window <= 32 KiB, check bits), raw (RFC 1951)
 * otherwise, as curl and browsers do; those bytes may arrive one at a time. gzip is strict: a zlib or
 * raw stream labelled gzip is DECODE_E_CORRUPT.
 * Errors are sticky: once a call fails, every later feed and finish returns the same code, without
 * calling the sink. DECODE_E_USAGE (not initialised or freed, NULL sink, out_cap 0, NULL out for a
 * compressed kind, NULL in with len > 0) consumes nothing and is not sticky.
 * out_cap above UINT_MAX is used as UINT_MAX. */
int decode_feed(struct decoder *d, const uint8_t *in, size_t len, uint8_t *out, size_t out_cap,
		int (*sink)(void *arg, const uint8_t *p, size_t n), void *arg);

/* The body ended. DECODE_OK when the stream was complete (any trailing junk already counted), and
 * also when the body was empty (0 input bytes: 0 output, common for 204/304-like responses sent with
 * Content-Encoding: gzip) and always for IDENTITY. DECODE_E_TRUNCATED when the body stopped inside a
 * stream, including a deflate body of a single byte. A pending gzip magic byte 1f with nothing after
 * it is trailing junk. It produces no output (all output was delivered by decode_feed). Returns the
 * sticky error if a feed failed. Does not free: call decode_free. */
int decode_finish(struct decoder *d);

/* Release zlib's memory. Safe to call twice, after a failed init, and on a zeroed struct. */
void decode_free(struct decoder *d);

/* A static message for a decode_rc ("ok", "corrupt compressed data", ...). */
const char *decode_strerror(int rc);

#endif

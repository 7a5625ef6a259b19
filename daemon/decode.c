/* decode.c - streams an HTTP body through zlib's inflate for Content-Encoding gzip and deflate: a small
 * phase machine (deflate header sniff, stream, gzip member boundary, trailing junk) around one
 * z_stream, with output handed to the caller's sink in pieces of at most out_cap bytes. Pure: no I/O,
 * no logging, no globals; zlib allocates through the caller's hooks. The contract is in decode.h. */
#include "daemon/decode.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

#define GZIP_MAGIC0 0x1f
#define GZIP_MAGIC1 0x8b
#define WBITS_ZLIB 15       /* zlib wrapper, 32 KiB window */
#define WBITS_RAW (-15)     /* raw deflate, 32 KiB window */
#define WBITS_GZIP (16 + 15) /* gzip wrapper only, 32 KiB window */

/* Where decoded bytes go: the scratch buffer and the sink (one decode_feed call). */
struct decode_out {
	uint8_t *buf;
	unsigned cap;
	int (*sink)(void *arg, const uint8_t *p, size_t n);
	void *arg;
};

static int feed_all(struct decoder *d, const uint8_t *in, size_t len, const struct decode_out *o);

/* ---- Content-Encoding names ---- */

static int is_ows(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Case-insensitive comparison of s[0..n) with a lowercase literal. */
static int equals_lower(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

int decode_kind_of(const char *value)
{
	if (!value)
		return DECODE_IDENTITY;
	size_t b = 0, e = strlen(value);
	while (b < e && is_ows((unsigned char)value[b]))
		b++;
	while (e > b && is_ows((unsigned char)value[e - 1]))
		e--;
	const char *s = value + b;
	size_t n = e - b;
	if (n == 0 || equals_lower(s, n, "identity"))
		return DECODE_IDENTITY;
	if (equals_lower(s, n, "gzip") || equals_lower(s, n, "x-gzip"))
		return DECODE_GZIP;
	if (equals_lower(s, n, "deflate"))
		return DECODE_DEFLATE;
	return -1;
}

const char *decode_kind_name(enum decode_kind k)
{
	switch (k) {
	case DECODE_IDENTITY: return "identity";
	case DECODE_GZIP: return "gzip";
	case DECODE_DEFLATE: return "deflate";
	}
	return "unknown";
}

const char *decode_strerror(int rc)
{
	switch (rc) {
	case DECODE_OK: return "ok";
	case DECODE_E_CORRUPT: return "corrupt compressed data";
	case DECODE_E_TRUNCATED: return "compressed data truncated";
	case DECODE_E_SINK: return "stopped by the body sink";
	case DECODE_E_NOMEM: return "out of memory for decompression";
	case DECODE_E_USAGE: return "decoder misuse";
	}
	return "unknown decode error";
}

/* ---- setup and teardown ---- */

int decode_init_alloc(struct decoder *d, enum decode_kind k, alloc_func zalloc, free_func zfree,
		      void *opaque)
{
	memset(d, 0, sizeof *d);
	d->kind = k;
	if (k != DECODE_IDENTITY && k != DECODE_GZIP && k != DECODE_DEFLATE)
		return d->err = DECODE_E_USAGE;
	d->phase = k == DECODE_DEFLATE ? DECODE_PH_SNIFF : DECODE_PH_STREAM;
	if (k != DECODE_IDENTITY) {
		d->zs.zalloc = zalloc;
		d->zs.zfree = zfree;
		d->zs.opaque = opaque;
		/* deflate starts as zlib-wrapped; the sniff may switch it to raw (same window size, so
		 * inflateReset2 keeps the allocation). */
		int zrc = inflateInit2(&d->zs, k == DECODE_GZIP ? WBITS_GZIP : WBITS_ZLIB);
		if (zrc != Z_OK)
			return d->err = zrc == Z_MEM_ERROR ? DECODE_E_NOMEM : DECODE_E_USAGE;
		d->zlib_live = 1;
	}
	d->ready = 1;
	return DECODE_OK;
}

int decode_init(struct decoder *d, enum decode_kind k)
{
	return decode_init_alloc(d, k, Z_NULL, Z_NULL, Z_NULL);
}

void decode_free(struct decoder *d)
{
	if (d->zlib_live)
		inflateEnd(&d->zs);
	d->zlib_live = 0;
	d->ready = 0;
}

/* ---- output ---- */

static int fail(struct decoder *d, int rc)
{
	if (!d->err)
		d->err = rc;
	return d->err;
}

static int deliver(struct decoder *d, const struct decode_out *o, const uint8_t *p, size_t n)
{
	d->out_bytes += n;
	return o->sink(o->arg, p, n) ? fail(d, DECODE_E_SINK) : DECODE_OK;
}

static int zlib_failure(struct decoder *d, int zrc)
{
	if (zrc == Z_MEM_ERROR)
		return fail(d, DECODE_E_NOMEM);
	if (!d->err)
		d->detail = zrc == Z_NEED_DICT ? "needs a preset dictionary"
			    : d->zs.msg            ? d->zs.msg
						   : "inflate failed";
	return fail(d, DECODE_E_CORRUPT);
}

/* ---- phases: each consumes a prefix of the input (*used bytes) ---- */

static int step_identity(struct decoder *d, const uint8_t *in, size_t len, size_t *used,
			 const struct decode_out *o)
{
	size_t n = len < o->cap ? len : o->cap;
	*used = n;
	return deliver(d, o, in, n);
}

/* Stream end: gzip may go on with another member, anything else is done. */
static void stream_ended(struct decoder *d)
{
	d->members++;
	d->phase = d->kind == DECODE_GZIP ? DECODE_PH_BETWEEN : DECODE_PH_DONE;
}

/* Inflate until the input is used up with output space to spare, or the stream ends. */
static int step_stream(struct decoder *d, const uint8_t *in, size_t len, size_t *used,
		       const struct decode_out *o)
{
	z_stream *z = &d->zs;
	unsigned avail = len > UINT_MAX ? UINT_MAX : (unsigned)len;
	z->next_in = (Bytef *)(uintptr_t)in;
	z->avail_in = avail;
	int zrc, rc = DECODE_OK;
	do {
		z->next_out = o->buf;
		z->avail_out = o->cap;
		zrc = inflate(z, Z_NO_FLUSH);
		size_t n = o->cap - z->avail_out;
		if (n && (rc = deliver(d, o, o->buf, n)))
			break;
		if (zrc != Z_OK && zrc != Z_BUF_ERROR) /* Z_BUF_ERROR: no progress, needs input */
			break;
	} while (z->avail_out == 0);
	*used = avail - z->avail_in;
	if (rc)
		return rc;
	if (zrc == Z_STREAM_END)
		stream_ended(d);
	else if (zrc != Z_OK && zrc != Z_BUF_ERROR)
		return zlib_failure(d, zrc);
	return DECODE_OK;
}

/* A valid zlib header (RFC 1950): deflate, window <= 32 KiB, check bits. */
static int is_zlib_header(uint8_t cmf, uint8_t flg)
{
	return (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && ((unsigned)cmf * 256 + flg) % 31 == 0;
}

/* Deflate: collect two bytes, choose the wrapper, then inflate them. */
static int step_sniff(struct decoder *d, const uint8_t *in, size_t len, size_t *used,
		      const struct decode_out *o)
{
	d->head[d->head_len++] = in[0];
	*used = 1;
	if (d->head_len < 2)
		return DECODE_OK;
	d->deflate_raw = !is_zlib_header(d->head[0], d->head[1]);
	if (d->deflate_raw && inflateReset2(&d->zs, WBITS_RAW) != Z_OK)
		return zlib_failure(d, Z_STREAM_ERROR);
	d->phase = DECODE_PH_STREAM;
	uint8_t head[2] = {d->head[0], d->head[1]};
	d->head_len = 0;
	return feed_all(d, head, 2, o);
}

static int step_done(struct decoder *d, const uint8_t *in, size_t len, size_t *used,
		     const struct decode_out *o)
{
	d->trailing_bytes += len;
	*used = len;
	return DECODE_OK;
}

/* After a gzip member: 1f 8b starts another member, anything else is trailing junk. */
static int step_between(struct decoder *d, const uint8_t *in, size_t len, size_t *used,
			const struct decode_out *o)
{
	*used = 0;
	if (d->head_len == 0 && in[0] == GZIP_MAGIC0) {
		d->head[d->head_len++] = in[0];
		*used = 1;
		return DECODE_OK;
	}
	if (d->head_len == 0 || in[0] != GZIP_MAGIC1) {
		d->trailing_bytes += d->head_len;
		d->head_len = 0;
		d->phase = DECODE_PH_DONE;
		return DECODE_OK;
	}
	d->head_len = 0;
	if (inflateReset(&d->zs) != Z_OK)
		return zlib_failure(d, Z_STREAM_ERROR);
	d->phase = DECODE_PH_STREAM;
	static const uint8_t magic0 = GZIP_MAGIC0;
	return feed_all(d, &magic0, 1, o); /* the 8b is read next, in the stream phase */
}

static int step(struct decoder *d, const uint8_t *in, size_t len, size_t *used,
		const struct decode_out *o)
{
	if (d->kind == DECODE_IDENTITY)
		return step_identity(d, in, len, used, o);
	switch (d->phase) {
	case DECODE_PH_SNIFF: return step_sniff(d, in, len, used, o);
	case DECODE_PH_STREAM: return step_stream(d, in, len, used, o);
	case DECODE_PH_BETWEEN: return step_between(d, in, len, used, o);
	case DECODE_PH_DONE: return step_done(d, in, len, used, o);
	}
	return fail(d, DECODE_E_USAGE);
}

static int feed_all(struct decoder *d, const uint8_t *in, size_t len, const struct decode_out *o)
{
	while (len > 0) {
		size_t used = 0;
		int rc = step(d, in, len, &used, o);
		if (rc)
			return rc;
		in += used;
		len -= used;
	}
	return DECODE_OK;
}

int decode_feed(struct decoder *d, const uint8_t *in, size_t len, uint8_t *out, size_t out_cap,
		int (*sink)(void *arg, const uint8_t *p, size_t n), void *arg)
{
	if (!d->ready || !sink || out_cap == 0 || (!out && d->kind != DECODE_IDENTITY) ||
	    (!in && len))
		return DECODE_E_USAGE; /* not sticky: nothing was consumed */
	if (d->err)
		return d->err;
	struct decode_out o = {out, out_cap > UINT_MAX ? UINT_MAX : (unsigned)out_cap, sink, arg};
	d->in_bytes += len;
	return feed_all(d, in, len, &o);
}

int decode_finish(struct decoder *d)
{
	if (!d->ready)
		return DECODE_E_USAGE;
	if (d->err)
		return d->err;
	if (d->kind == DECODE_IDENTITY || d->in_bytes == 0 || d->phase == DECODE_PH_DONE)
		return DECODE_OK;
	if (d->phase == DECODE_PH_BETWEEN) {
		d->trailing_bytes += d->head_len; /* a lone 1f */
		d->head_len = 0;
		d->phase = DECODE_PH_DONE;
		return DECODE_OK;
	}
	return fail(d, DECODE_E_TRUNCATED);
}

/* warc.c - the WARC 1.1 writer of fetchctl (warc.h): record headers, SHA-1 block digests in base32,
 * one gzip member per record, files rolled by size, and a failed record cut back out of the file. */
#include "tools/warc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/sha1.h>
#include <zlib.h>

#define WARC_BUF_SIZE (64u * 1024u) /* the output buffer, and the piece a block is read in */
#define WARC_CONFORMS "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"

struct warc_writer {
	char *path;         /* the file now open */
	char *stem;         /* a series' names: stem + "-%05u" + suffix */
	const char *suffix; /* ".warc.gz", ".warc", ".gz" or "" */
	char *software;
	uint64_t max_bytes; /* 0: one file, no series */
	unsigned next_seq;  /* the number of the series' next file */
	bool gz;
	bool z_ready;
	int fd;
	uint64_t file_bytes;   /* bytes in the file (all handed to the kernel: out is flushed per record) */
	unsigned file_records; /* records in the file, its warcinfo included */
	int sticky;            /* 0, or the -errno every call returns from now on */
	z_stream z;
	size_t out_len;
	uint8_t out[WARC_BUF_SIZE];
	uint8_t in[WARC_BUF_SIZE];
	char err[512];
};

/* A record to write: its header fields (NULL: not written) and its block, a spool or bytes. */
struct warc_rec {
	const char *type;
	const char *target_uri;
	const char *date;
	const char *ip;
	const char *concurrent_to;
	const char *filename;
	const char *content_type;
	const struct spool *sp;
	const uint8_t *mem;
	size_t mem_len;
	const uint8_t *payload_sha1;
};

static int warc_fail(struct warc_writer *w, int r, const char *what)
{
	snprintf(w->err, sizeof(w->err), "%s %s: %s", what, w->path ? w->path : "", strerror(-r));
	return r;
}

/* ---- encodings ---- */

size_t warc_base32(const void *in, size_t len, char *out)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	const uint8_t *p = in;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 5) {
		uint8_t g[5] = {0};
		size_t n = len - i < 5 ? len - i : 5;
		memcpy(g, p + i, n);
		uint64_t bits = (uint64_t)g[0] << 32 | (uint64_t)g[1] << 24 | (uint64_t)g[2] << 16 |
				(uint64_t)g[3] << 8 | g[4];
		size_t chars = (n * 8 + 4) / 5; /* 1..5 bytes -> 2, 4, 5, 7, 8 characters */
		for (size_t k = 0; k < 8; k++)
			out[o++] = k < chars ? alphabet[(bits >> (35 - 5 * k)) & 31] : '=';
	}
	out[o] = '\0';
	return o;
}

int warc_date_now(char buf[WARC_DATE_SIZE])
{
	struct timespec ts;
	struct tm tm;
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return -errno;
	if (!gmtime_r(&ts.tv_sec, &tm) || tm.tm_year < 0 || tm.tm_year > 9999 - 1900)
		return -EOVERFLOW;
	size_t n = strftime(buf, WARC_DATE_SIZE, "%Y-%m-%dT%H:%M:%S", &tm); /* 19 characters */
	snprintf(buf + n, WARC_DATE_SIZE - n, ".%06uZ", (unsigned)(ts.tv_nsec / 1000) % 1000000u);
	return 0;
}

/* "YYYY-MM-DDThh:mm:ss" then up to six fraction digits after a '.', then "Z". */
static bool warc_date_ok(const char *d)
{
	static const char form[] = "dddd-dd-ddTdd:dd:dd";
	for (size_t i = 0; form[i]; i++) {
		if (form[i] == 'd' ? (d[i] < '0' || d[i] > '9') : d[i] != form[i])
			return false;
	}
	d += sizeof(form) - 1;
	if (*d == '.') {
		size_t n = 0;
		while (d[1 + n] >= '0' && d[1 + n] <= '9')
			n++;
		if (n < 1 || n > 6)
			return false;
		d += 1 + n;
	}
	return d[0] == 'Z' && d[1] == '\0';
}

/* A header value: no control characters (CR, LF, NUL, ...), not empty. UTF-8 is allowed. */
static bool warc_value_ok(const char *v)
{
	if (!*v)
		return false;
	for (; *v; v++) {
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return false;
	}
	return true;
}

static int warc_new_id(char id[WARC_ID_SIZE])
{
	uint8_t b[16];
	ssize_t n;
	while ((n = getrandom(b, sizeof(b), 0)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(b))
		return n < 0 ? -errno : -EIO;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 */
	snprintf(id, WARC_ID_SIZE,
		 "<urn:uuid:%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x>", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

/* ---- the block: a spool or bytes, read in pieces ---- */

static uint64_t warc_block_len(const struct warc_rec *r)
{
	return r->sp ? spool_len(r->sp) : r->mem_len;
}

/* The next piece of the block from off into w->in: its length, 0 at the end, or -errno. */
static ssize_t warc_block_read(struct warc_writer *w, const struct warc_rec *r, uint64_t off)
{
	if (r->sp)
		return spool_read(r->sp, off, w->in, sizeof(w->in));
	size_t n = off < r->mem_len ? r->mem_len - (size_t)off : 0;
	n = n < sizeof(w->in) ? n : sizeof(w->in);
	if (n)
		memcpy(w->in, r->mem + off, n);
	return (ssize_t)n;
}

static int warc_block_sha1(struct warc_writer *w, const struct warc_rec *r, uint8_t sha1[20])
{
	mbedtls_sha1_context c;
	uint64_t off = 0;
	int ret = 0;
	mbedtls_sha1_init(&c);
	if (mbedtls_sha1_starts_ret(&c) != 0)
		ret = -EIO;
	while (ret == 0) {
		ssize_t n = warc_block_read(w, r, off);
		if (n <= 0) {
			ret = (int)n;
			break;
		}
		if (mbedtls_sha1_update_ret(&c, w->in, (size_t)n) != 0)
			ret = -EIO;
		off += (uint64_t)n;
	}
	if (ret == 0 && off != warc_block_len(r))
		ret = -EIO;
	if (ret == 0 && mbedtls_sha1_finish_ret(&c, sha1) != 0)
		ret = -EIO;
	mbedtls_sha1_free(&c);
	return ret;
}

/* ---- output: the buffer, gzip members, the file ---- */

static int warc_flush(struct warc_writer *w)
{
	size_t done = 0;
	while (done < w->out_len) {
		ssize_t n = write(w->fd, w->out + done, w->out_len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
		w->file_bytes += (uint64_t)n;
	}
	w->out_len = 0;
	return 0;
}

/* Run deflate over z.next_in with flush (Z_NO_FLUSH or Z_FINISH) until the input is used up (and, for
 * Z_FINISH, the member's trailer is out). */
static int warc_deflate(struct warc_writer *w, int flush)
{
	for (;;) {
		if (w->out_len == sizeof(w->out)) {
			int r = warc_flush(w);
			if (r < 0)
				return r;
		}
		w->z.next_out = w->out + w->out_len;
		w->z.avail_out = (uInt)(sizeof(w->out) - w->out_len);
		int zr = deflate(&w->z, flush);
		w->out_len = sizeof(w->out) - w->z.avail_out;
		if (zr == Z_STREAM_END)
			return 0;
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			return -EIO;
		if (flush == Z_NO_FLUSH && w->z.avail_in == 0)
			return 0;
	}
}

static int warc_emit(struct warc_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;
	if (w->gz) {
		w->z.next_in = (Bytef *)p;
		w->z.avail_in = (uInt)len; /* len <= WARC_BUF_SIZE or a header: far below 4 GiB */
		return warc_deflate(w, Z_NO_FLUSH);
	}
	while (len) {
		if (w->out_len == sizeof(w->out)) {
			int r = warc_flush(w);
			if (r < 0)
				return r;
		}
		size_t n = sizeof(w->out) - w->out_len < len ? sizeof(w->out) - w->out_len : len;
		memcpy(w->out + w->out_len, p, n);
		w->out_len += n, p += n, len -= n;
	}
	return 0;
}

/* The end of a record: close its gzip member and hand everything to the kernel. */
static int warc_end_record(struct warc_writer *w)
{
	if (w->gz) {
		w->z.next_in = NULL;
		w->z.avail_in = 0;
		int r = warc_deflate(w, Z_FINISH);
		if (r < 0)
			return r;
		if (deflateReset(&w->z) != Z_OK)
			return -EIO;
	}
	return warc_flush(w);
}

/* After a failed record: cut the file back to start, where the record began. When that cannot be
 * done the file may end in part of a record, and the error becomes sticky. */
static void warc_rollback(struct warc_writer *w, uint64_t start, int r)
{
	w->out_len = 0;
	if (w->gz && deflateReset(&w->z) != Z_OK)
		w->sticky = r;
	if (w->file_bytes == start)
		return;
	if (ftruncate(w->fd, (off_t)start) < 0 || lseek(w->fd, (off_t)start, SEEK_SET) != (off_t)start)
		w->sticky = r;
	else
		w->file_bytes = start;
}

/* ---- records ---- */

struct warc_hdr {
	char *p;
	size_t len, cap;
};

static void warc_hdr_add(struct warc_hdr *h, const char *name, const char *value)
{
	if (!value)
		return;
	int n = snprintf(h->p + h->len, h->cap - h->len, "%s: %s\r\n", name, value);
	h->len += n > 0 && (size_t)n < h->cap - h->len ? (size_t)n : h->cap - h->len; /* cap is enough */
}

/* The record's header text (malloc'ed) with its id and block digest, or NULL when out of memory. */
static char *warc_hdr_make(const struct warc_rec *r, const char *id, const uint8_t block_sha1[20],
			   size_t *len)
{
	const char *vals[] = {r->type, r->target_uri, r->date, r->ip, r->concurrent_to, r->filename,
			      r->content_type};
	char b32[40], block_digest[48], payload_digest[48], clen[24];
	size_t cap = 512;
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		cap += vals[i] ? strlen(vals[i]) : 0;
	struct warc_hdr h = {.p = malloc(cap), .cap = cap};
	if (!h.p)
		return NULL;
	warc_base32(block_sha1, 20, b32);
	snprintf(block_digest, sizeof(block_digest), "sha1:%s", b32);
	if (r->payload_sha1) {
		warc_base32(r->payload_sha1, 20, b32);
		snprintf(payload_digest, sizeof(payload_digest), "sha1:%s", b32);
	}
	snprintf(clen, sizeof(clen), "%" PRIu64, warc_block_len(r));
	h.len = (size_t)snprintf(h.p, h.cap, "WARC/1.1\r\n");
	warc_hdr_add(&h, "WARC-Type", r->type);
	warc_hdr_add(&h, "WARC-Record-ID", id);
	warc_hdr_add(&h, "WARC-Date", r->date);
	warc_hdr_add(&h, "WARC-Filename", r->filename);
	warc_hdr_add(&h, "WARC-Target-URI", r->target_uri);
	warc_hdr_add(&h, "WARC-IP-Address", r->ip);
	warc_hdr_add(&h, "WARC-Concurrent-To", r->concurrent_to);
	warc_hdr_add(&h, "Content-Type", r->content_type);
	warc_hdr_add(&h, "Content-Length", clen);
	warc_hdr_add(&h, "WARC-Block-Digest", block_digest);
	warc_hdr_add(&h, "WARC-Payload-Digest", r->payload_sha1 ? payload_digest : NULL);
	h.len += (size_t)snprintf(h.p + h.len, h.cap - h.len, "\r\n");
	*len = h.len;
	return h.p;
}

/* Write the record's bytes: header, block, CRLF CRLF. */
static int warc_put(struct warc_writer *w, const struct warc_rec *r, const char *hdr, size_t hdr_len)
{
	uint64_t off = 0;
	int ret = warc_emit(w, hdr, hdr_len);
	while (ret == 0) {
		ssize_t n = warc_block_read(w, r, off);
		if (n <= 0) {
			ret = n < 0 ? (int)n : off == warc_block_len(r) ? 0 : -EIO;
			break;
		}
		off += (uint64_t)n;
		ret = warc_emit(w, w->in, (size_t)n);
	}
	if (ret == 0)
		ret = warc_emit(w, "\r\n\r\n", 4);
	if (ret == 0)
		ret = warc_end_record(w);
	return ret;
}

static int warc_record(struct warc_writer *w, const struct warc_rec *r, char id[WARC_ID_SIZE]);

/* Open the series' next file (or the one file) and write its warcinfo. */
static int warc_start_file(struct warc_writer *w)
{
	char *path;
	if (w->max_bytes == 0) {
		path = strdup(w->path);
	} else if (asprintf(&path, "%s-%05u%s", w->stem, w->next_seq, w->suffix) < 0) {
		path = NULL;
	}
	if (!path)
		return warc_fail(w, -ENOMEM, "open");
	free(w->path);
	w->path = path;
	w->next_seq++;
	w->file_bytes = 0;
	w->file_records = 0;
	w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (w->fd < 0)
		return warc_fail(w, -errno, "open");

	char date[WARC_DATE_SIZE], id[WARC_ID_SIZE], *fields;
	int r = warc_date_now(date);
	if (r < 0)
		return warc_fail(w, r, "clock for");
	int n = asprintf(&fields, "software: %s\r\nformat: WARC File Format 1.1\r\nconformsTo: %s\r\n",
			 w->software, WARC_CONFORMS);
	if (n < 0)
		return warc_fail(w, -ENOMEM, "warcinfo for");
	const char *base = strrchr(path, '/');
	struct warc_rec info = {.type = "warcinfo", .date = date, .filename = base ? base + 1 : path,
				.content_type = "application/warc-fields", .mem = (const uint8_t *)fields,
				.mem_len = (size_t)n};
	r = warc_record(w, &info, id);
	free(fields);
	return r;
}

/* Close the file: out is empty (flushed per record); fsync catches write-back errors. A file that
 * cannot be fsync'ed (a pipe, /dev/null) is not an error. */
static int warc_end_file(struct warc_writer *w)
{
	int ret = 0;
	if (w->fd < 0)
		return 0;
	if (fsync(w->fd) < 0 && errno != EINVAL && errno != EROFS && errno != ENOTSUP)
		ret = warc_fail(w, -errno, "fsync");
	if (close(w->fd) < 0 && ret == 0 && errno != EINTR)
		ret = warc_fail(w, -errno, "close");
	w->fd = -1;
	return ret;
}

static int warc_record(struct warc_writer *w, const struct warc_rec *r, char id[WARC_ID_SIZE])
{
	uint8_t sha1[20];
	size_t hdr_len;
	if (w->sticky)
		return w->sticky;
	bool rollable = strcmp(r->type, "warcinfo") != 0 && !r->concurrent_to;
	if (rollable && w->max_bytes && w->file_bytes >= w->max_bytes && w->file_records > 1) {
		int rr = warc_end_file(w);
		if (rr == 0)
			rr = warc_start_file(w);
		if (rr < 0)
			return w->sticky = rr;
	}
	int ret = warc_new_id(id);
	if (ret < 0)
		return warc_fail(w, ret, "record id for");
	ret = warc_block_sha1(w, r, sha1);
	if (ret < 0)
		return warc_fail(w, ret, "read block for");
	char *hdr = warc_hdr_make(r, id, sha1, &hdr_len);
	if (!hdr)
		return warc_fail(w, -ENOMEM, "record for");
	uint64_t start = w->file_bytes;
	ret = warc_put(w, r, hdr, hdr_len);
	free(hdr);
	if (ret < 0) {
		warc_rollback(w, start, ret);
		return warc_fail(w, ret, "write");
	}
	w->file_records++;
	return 0;
}

/* The checks every public record call makes on its arguments. */
static int warc_check_args(struct warc_writer *w, const char *target_uri, const char *date,
			   const char *ip, const char *concurrent_to)
{
	const char *bad = NULL;
	if (target_uri && !warc_value_ok(target_uri))
		bad = "target URI";
	else if (!warc_date_ok(date))
		bad = "WARC-Date";
	else if (ip && *ip && !warc_value_ok(ip))
		bad = "IP address";
	else if (concurrent_to && !warc_value_ok(concurrent_to))
		bad = "WARC-Concurrent-To";
	if (!bad)
		return 0;
	snprintf(w->err, sizeof(w->err), "invalid %s for a record", bad);
	return -EINVAL;
}

int warc_write_request(struct warc_writer *w, const char *target_uri, const char *warc_date,
		       const char *ip, const struct spool *block, char record_id[WARC_ID_SIZE])
{
	int r = warc_check_args(w, target_uri ? target_uri : "", warc_date, ip, NULL);
	if (r < 0)
		return r;
	struct warc_rec rec = {.type = "request", .target_uri = target_uri, .date = warc_date,
			       .ip = ip && *ip ? ip : NULL, .content_type = "application/http;msgtype=request",
			       .sp = block};
	return warc_record(w, &rec, record_id);
}

int warc_write_response(struct warc_writer *w, const char *target_uri, const char *warc_date,
			const char *ip, const char *concurrent_to, const struct spool *block,
			const uint8_t payload_sha1[20], char record_id[WARC_ID_SIZE])
{
	int r = warc_check_args(w, target_uri ? target_uri : "", warc_date, ip, concurrent_to);
	if (r < 0)
		return r;
	struct warc_rec rec = {.type = "response", .target_uri = target_uri, .date = warc_date,
			       .ip = ip && *ip ? ip : NULL, .concurrent_to = concurrent_to,
			       .content_type = "application/http;msgtype=response", .sp = block,
			       .payload_sha1 = payload_sha1};
	return warc_record(w, &rec, record_id);
}

int warc_write_metadata(struct warc_writer *w, const char *target_uri, const char *warc_date,
			const char *concurrent_to, const char *fields, char record_id[WARC_ID_SIZE])
{
	int r = warc_check_args(w, target_uri, warc_date, NULL, concurrent_to);
	if (r == 0 && !fields) {
		snprintf(w->err, sizeof(w->err), "invalid fields for a record");
		r = -EINVAL;
	}
	if (r < 0)
		return r;
	struct warc_rec rec = {.type = "metadata", .target_uri = target_uri, .date = warc_date,
			       .concurrent_to = concurrent_to, .content_type = "application/warc-fields",
			       .mem = (const uint8_t *)fields, .mem_len = strlen(fields)};
	return warc_record(w, &rec, record_id);
}

/* ---- the writer ---- */

/* Split path into the series' stem and suffix. */
static int warc_names(struct warc_writer *w, const char *path)
{
	static const char *const suffixes[] = {".warc.gz", ".warc", ".gz", ""};
	size_t len = strlen(path);
	for (size_t i = 0;; i++) {
		size_t n = strlen(suffixes[i]);
		if (len >= n && strcmp(path + len - n, suffixes[i]) == 0) {
			w->suffix = suffixes[i];
			w->stem = strndup(path, len - n);
			return w->stem ? 0 : -ENOMEM;
		}
	}
}

int warc_open(struct warc_writer **out, const char *path, uint64_t max_bytes, const char *software,
	      char *err, size_t errlen)
{
	struct warc_writer *w = calloc(1, sizeof(*w));
	int r = -ENOMEM;
	*out = NULL;
	if (!w) {
		snprintf(err, errlen, "open %s: %s", path, strerror(ENOMEM));
		return r;
	}
	w->fd = -1;
	w->max_bytes = max_bytes;
	size_t len = strlen(path);
	w->gz = len >= 3 && strcmp(path + len - 3, ".gz") == 0;
	if (!*path || !warc_value_ok(software)) {
		r = -EINVAL;
		snprintf(w->err, sizeof(w->err), "open %s: %s", path, !*path ? "empty path" : "invalid software name");
		goto fail;
	}
	w->path = strdup(path);
	w->software = strdup(software);
	if (!w->path || !w->software || warc_names(w, path) < 0) {
		warc_fail(w, r, "open");
		goto fail;
	}
	if (w->gz) {
		if (deflateInit2(&w->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
			warc_fail(w, r, "open");
			goto fail;
		}
		w->z_ready = true;
	}
	r = warc_start_file(w);
	if (r < 0)
		goto fail;
	*out = w;
	return 0;
fail:
	snprintf(err, errlen, "%s", w->err);
	w->sticky = 0;
	warc_close(w);
	return r;
}

const char *warc_filename(const struct warc_writer *w)
{
	return w->path;
}

const char *warc_error(const struct warc_writer *w)
{
	return w->err;
}

int warc_close(struct warc_writer *w)
{
	if (!w)
		return 0;
	int r = warc_end_file(w);
	if (w->sticky)
		r = w->sticky;
	if (w->z_ready)
		deflateEnd(&w->z);
	free(w->path);
	free(w->stem);
	free(w->software);
	free(w);
	return r;
}

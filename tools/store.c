/* store.c - what fetchctl keeps of each fetch besides its result line: WARC records (--warc) and body
 * files (--output-dir), built from the daemon's CAPTURE frames (docs/protocol.md). Frames of many
 * fetches interleave; each seq (the URL's line number in the session) has one exchange in progress at
 * a time. A WARC request/response pair is written when its exchange ends complete; a body file is
 * committed under its name when the fetch's result says it succeeded, and removed otherwise. A failed
 * fetch gets a WARC metadata record with its error. Memory per exchange is bounded by the spools
 * (tools/spool.h); bodies stream to their files. */
#include "tools/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/protocol.h"
#include "tools/outdir.h"
#include "tools/resultline.h"
#include "tools/spool.h"
#include "tools/warc.h"

#define STORE_REQ_MEM_BYTES 16384
#define STORE_RESP_MEM_BYTES 262144
#define STORE_URL_MAX 65536
#define STORE_IP_MAX 64

struct store_entry {
	struct store_entry *next; /* in its hash bucket */
	uint32_t seq;
	bool open;               /* an exchange is in progress (EXCHANGE seen, END not yet) */
	bool body_open;          /* body holds this seq's file in progress */
	char *url;               /* the exchange's URL (malloc'd) */
	char ip[STORE_IP_MAX];
	char date[WARC_DATE_SIZE];
	struct spool req, resp;
	struct outdir_file body;
};

struct store {
	struct warc_writer *warc;
	struct outdir dir;
	bool have_dir;
	struct store_entry **buckets;
	uint32_t nbuckets, nentries;
	char path[4096];         /* the last committed body's path */
};

static struct store_entry **store_slot(struct store *s, uint32_t seq)
{
	struct store_entry **p = &s->buckets[(seq * 2654435761u) & (s->nbuckets - 1)];
	while (*p && (*p)->seq != seq)
		p = &(*p)->next;
	return p;
}

static int store_grow(struct store *s)
{
	uint32_t n = s->nbuckets ? 2 * s->nbuckets : 1024;
	struct store_entry **b = calloc(n, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->nbuckets; i++) {
		for (struct store_entry *e = s->buckets[i], *next; e; e = next) {
			next = e->next;
			struct store_entry **slot = &b[(e->seq * 2654435761u) & (n - 1)];
			e->next = *slot;
			*slot = e;
		}
	}
	free(s->buckets);
	s->buckets = b, s->nbuckets = n;
	return 0;
}

static struct store_entry *store_get(struct store *s, uint32_t seq, bool create)
{
	struct store_entry **p = store_slot(s, seq);
	if (*p || !create)
		return *p;
	if (s->nentries >= s->nbuckets && store_grow(s) < 0)
		return NULL;
	p = store_slot(s, seq);
	struct store_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->seq = seq;
	spool_init(&e->req, STORE_REQ_MEM_BYTES);
	spool_init(&e->resp, STORE_RESP_MEM_BYTES);
	*p = e;
	s->nentries++;
	return e;
}

static void store_drop(struct store *s, struct store_entry *e)
{
	struct store_entry **p = store_slot(s, e->seq);
	*p = e->next;
	s->nentries--;
	if (e->body_open)
		outdir_abort(&s->dir, &e->body);
	spool_free(&e->req);
	spool_free(&e->resp);
	free(e->url);
	free(e);
}

int store_open(struct store **out, const char *warc_path, uint64_t warc_max_bytes, const char *dir,
	       char *err, size_t errlen)
{
	struct store *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s || store_grow(s) < 0) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int rc = 0;
	if (warc_path)
		rc = warc_open(&s->warc, warc_path, warc_max_bytes, "fetchctl/" FETCHD_VERSION, err, errlen);
	if (rc == 0 && dir) {
		rc = outdir_open(&s->dir, dir, err, errlen);
		s->have_dir = rc == 0;
	}
	if (rc < 0) {
		store_close(s, NULL, 0);
		return rc;
	}
	*out = s;
	return 0;
}

const char *store_capture(const struct store *s)
{
	if (s->warc && s->have_dir)
		return "raw,body";
	return s->warc ? "raw" : s->have_dir ? "body" : NULL;
}

/* A JSON string field of an EXCHANGE frame into out. */
static void store_field(const char *json, size_t len, const char *key, char *out, size_t cap)
{
	struct rl_val v;
	out[0] = 0;
	if (rl_get(json, len, key, &v) && v.type == RL_STRING)
		rl_text(&v, out, cap);
}

static int store_exchange(struct store *s, struct store_entry *e, const uint8_t *p, size_t n, char *err,
			  size_t errlen)
{
	static char url[STORE_URL_MAX];
	store_field((const char *)p, n, "url", url, sizeof(url));
	store_field((const char *)p, n, "ip", e->ip, sizeof(e->ip));
	store_field((const char *)p, n, "date", e->date, sizeof(e->date));
	free(e->url);
	if (!(e->url = strdup(url))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	spool_reset(&e->req);
	spool_reset(&e->resp);
	e->open = true;
	if (!s->have_dir)
		return 0;
	int rc = outdir_begin(&s->dir, &e->body); /* a retry or a redirect hop starts the body again */
	if (rc < 0) {
		snprintf(err, errlen, "--output-dir: %s", strerror(-rc));
		return rc;
	}
	e->body_open = true;
	return 0;
}

/* The exchange of e ended complete: its request and response records. */
static int store_warc_pair(struct store *s, struct store_entry *e, const uint8_t *p, size_t n, char *err,
			   size_t errlen)
{
	char hex[48];
	uint8_t sha[20];
	bool have_sha = false;
	store_field((const char *)p, n, "payload_sha1", hex, sizeof(hex));
	if (strlen(hex) == 40) {
		have_sha = true;
		for (int i = 0; i < 20; i++) {
			unsigned v;
			if (sscanf(hex + 2 * i, "%2x", &v) != 1)
				have_sha = false;
			sha[i] = (uint8_t)v;
		}
	}
	char req_id[WARC_ID_SIZE], resp_id[WARC_ID_SIZE];
	int rc = warc_write_request(s->warc, e->url, e->date, e->ip, &e->req, req_id);
	if (rc == 0)
		rc = warc_write_response(s->warc, e->url, e->date, e->ip, req_id, &e->resp, have_sha ? sha : NULL,
					 resp_id);
	if (rc < 0)
		snprintf(err, errlen, "--warc: %s", warc_error(s->warc));
	return rc;
}

int store_frame(struct store *s, const uint8_t *p, uint32_t len, char *err, size_t errlen)
{
	if (len < FETCHD_CAPTURE_HDR_BYTES) {
		snprintf(err, errlen, "a CAPTURE frame of %u bytes", len);
		return -EPROTO;
	}
	uint32_t seq = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	uint8_t kind = p[4];
	p += FETCHD_CAPTURE_HDR_BYTES, len -= FETCHD_CAPTURE_HDR_BYTES;
	struct store_entry *e = store_get(s, seq, kind == FETCHD_CAP_EXCHANGE);
	if (!e && kind == FETCHD_CAP_EXCHANGE) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (kind == FETCHD_CAP_EXCHANGE)
		return store_exchange(s, e, p, len, err, errlen);
	if (!e || !e->open) {
		snprintf(err, errlen, "CAPTURE kind %u for seq %u outside an exchange", kind, seq);
		return -EPROTO;
	}
	int rc = 0;
	switch (kind) {
	case FETCHD_CAP_REQUEST:
		rc = s->warc ? spool_append(&e->req, p, len) : 0;
		break;
	case FETCHD_CAP_RESPONSE:
		rc = s->warc ? spool_append(&e->resp, p, len) : 0;
		break;
	case FETCHD_CAP_BODY:
		rc = e->body_open ? outdir_write(&e->body, p, len) : 0;
		break;
	case FETCHD_CAP_END:
		e->open = false;
		return s->warc ? store_warc_pair(s, e, p, len, err, errlen) : 0;
	default:
		snprintf(err, errlen, "unknown CAPTURE kind %u", kind);
		return -EPROTO;
	}
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", kind == FETCHD_CAP_BODY ? "--output-dir" : "spooling a capture",
			 strerror(-rc));
	return rc;
}

/* A URL as a WARC-Target-URI: a line the daemon refused may hold spaces or control bytes, which a
 * WARC header may not; they become %XX. */
static const char *store_uri(const char *url)
{
	static char out[3 * STORE_URL_MAX];
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)url; *p && o + 4 < sizeof(out); p++) {
		if (*p <= 0x20 || *p == 0x7f)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%%%02X", *p);
		else
			out[o++] = (char)*p;
	}
	out[o] = 0;
	return out;
}

int store_result(struct store *s, const char *line, size_t len, const char **path, char *err, size_t errlen)
{
	struct rl_val v;
	*path = NULL;
	if (!rl_get(line, len, "seq", &v) || v.type != RL_NUMBER) {
		snprintf(err, errlen, "a result without \"seq\"");
		return -EPROTO;
	}
	struct store_entry *e = store_get(s, (uint32_t)strtoul(v.p, NULL, 10), false);
	bool ok = rl_get(line, len, "error", &v) && v.type == RL_NULL;
	static char url[STORE_URL_MAX];
	store_field(line, len, "url", url, sizeof(url));
	int rc = 0;
	if (!ok && s->warc) {
		char cls[64], msg[1024], fields[1200], date[WARC_DATE_SIZE], id[WARC_ID_SIZE];
		store_field(line, len, "error.class", cls, sizeof(cls));
		store_field(line, len, "error.message", msg, sizeof(msg));
		for (char *q = msg; *q; q++)
			if ((unsigned char)*q < 0x20 || *q == 0x7f)
				*q = ' ';
		snprintf(fields, sizeof(fields), "fetchd-error: %s: %s\r\n", cls, msg);
		rc = warc_date_now(date);
		if (rc == 0 && warc_write_metadata(s->warc, store_uri(url), date, NULL, fields, id) < 0) {
			snprintf(err, errlen, "--warc: %s", warc_error(s->warc));
			rc = -EIO;
		}
	}
	if (e && e->body_open && ok && rc == 0) {
		rc = outdir_commit(&s->dir, &e->body, url, strlen(url), s->path, sizeof(s->path));
		e->body_open = false;
		if (rc < 0)
			snprintf(err, errlen, "--output-dir: %s: %.300s%s", strerror(-rc), url,
				 strlen(url) > 300 ? "..." : "");
		else
			*path = s->path;
		if (rc == -ENAMETOOLONG || rc == -EINVAL || rc == -EEXIST)
			rc = 1; /* this URL's name, not the directory: its body is not kept, the run goes on */
	}
	if (e)
		store_drop(s, e);
	return rc;
}

int store_close(struct store *s, char *err, size_t errlen)
{
	if (!s)
		return 0;
	for (uint32_t i = 0; i < s->nbuckets; i++)
		while (s->buckets[i])
			store_drop(s, s->buckets[i]);
	free(s->buckets);
	int rc = 0;
	if (s->warc && (rc = warc_close(s->warc)) < 0 && err)
		snprintf(err, errlen, "--warc: closing the file: %s", strerror(-rc));
	if (s->have_dir)
		outdir_close(&s->dir);
	free(s);
	return rc;
}

/* capture.c - a fetch's bytes for its client, when the session's HELLO asked for "capture"
 * (docs/protocol.md, CAPTURE): the start of each exchange (attempt or redirect hop) with its request as
 * sent, the response bytes as received (after TLS), the body bytes after decoding, and the end of a
 * complete response with the SHA-1 of its payload. They go through the worker's outbox in order, before
 * the fetch's result, and the control thread frames them.
 *
 * Flow control, per worker and client: at most capture_window bytes may be queued and not yet
 * acknowledged by the control thread (which acknowledges once it has written them to the client's
 * socket). A connection that pushes the count over stops receiving (its multishot receive is
 * cancelled) until acknowledgements bring the count to half the window; its idle timer does not run
 * meanwhile. So a slow client slows its own fetches, and fetchd's memory for it stays bounded. */
#include "daemon/fetchd.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon/hex.h"
#include "daemon/json.h"
#include "daemon/log.h"
#include "daemon/protocol.h"

#define CAPTURE_WINDOW_MIN_BYTES (256u * 1024)

/* The unacknowledged bytes a worker allows each client: its share of half the client's buffer. */
static uint64_t capture_window(const struct worker *w)
{
	uint64_t win = w->conf.client_buffer_bytes / 2 / w->sh->nworkers;
	return win < CAPTURE_WINDOW_MIN_BYTES ? CAPTURE_WINDOW_MIN_BYTES : win;
}

/* The account of f's client, reset when the slot belongs to a newer client than it knew. */
static struct capture_acct *capture_acct(struct worker *w, uint32_t idx, uint32_t gen)
{
	struct capture_acct *a = &w->captures[idx];
	if (a->gen != gen) {
		a->gen = gen;
		a->unacked = 0;
		/* connections paused for an older client of the slot were closed with its fetches */
	}
	return a;
}

static void capture_put(struct worker *w, struct fetch *f, uint8_t kind, const void *p, size_t n)
{
	uint8_t hdr[FETCHD_CAPTURE_HDR_BYTES] = { (uint8_t)(f->seq >> 24), (uint8_t)(f->seq >> 16),
						  (uint8_t)(f->seq >> 8), (uint8_t)f->seq, kind };
	if (worker_capture(w, f, hdr, p, n) == 0)
		capture_acct(w, f->client_idx, f->client_gen)->unacked += sizeof(hdr) + n;
}

void capture_exchange(struct worker *w, struct conn *c)
{
	struct fetch *f = c->fetch;
	if (!f->capture)
		return;
	struct timespec ts;
	struct tm tm;
	char date[96];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(date, sizeof(date), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
	struct buf *b = &w->capture_scratch;
	b->len = 0;
	if (buf_append(b, "{\"url\":", 7) < 0 || json_str(b, fetch_url(f), fetch_url_len(f)) < 0 ||
	    buf_append(b, ",\"ip\":", 6) < 0 || json_str(b, c->ip, strlen(c->ip)) < 0 ||
	    buf_append(b, ",\"date\":\"", 9) < 0 || buf_append(b, date, strlen(date)) < 0 ||
	    buf_append(b, "\"}", 2) < 0) {
		log_error("worker %u: out of memory capturing an exchange", w->id);
		return;
	}
	capture_put(w, f, FETCHD_CAP_EXCHANGE, b->p, b->len);
	if (f->capture & FETCHD_CAPTURE_RAW) {
		capture_put(w, f, FETCHD_CAP_REQUEST, c->req, c->req_len);
		tls_sha1_init(&c->payload_sha1);
	}
}

void capture_response(struct worker *w, struct conn *c, const uint8_t *p, size_t n)
{
	if (n && c->fetch && (c->fetch->capture & FETCHD_CAPTURE_RAW))
		capture_put(w, c->fetch, FETCHD_CAP_RESPONSE, p, n);
}

void capture_payload(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->fetch->capture & FETCHD_CAPTURE_RAW)
		tls_sha1_update(&c->payload_sha1, p, n);
}

void capture_body(struct worker *w, struct conn *c, const uint8_t *p, size_t n)
{
	if (n && (c->fetch->capture & FETCHD_CAPTURE_BODY))
		capture_put(w, c->fetch, FETCHD_CAP_BODY, p, n);
}

void capture_end(struct worker *w, struct conn *c)
{
	struct fetch *f = c->fetch;
	if (!f->capture)
		return;
	char json[80] = "{}";
	if (f->capture & FETCHD_CAPTURE_RAW) {
		uint8_t sha[TLS_SHA1_BYTES];
		char hex[2 * TLS_SHA1_BYTES + 1];
		tls_sha1_final(&c->payload_sha1, sha);
		hex_encode(sha, sizeof(sha), hex);
		snprintf(json, sizeof(json), "{\"payload_sha1\":\"%s\"}", hex);
	}
	capture_put(w, f, FETCHD_CAP_END, json, strlen(json));
}

/* After c's bytes were captured: stop receiving on it while its client is over the window. */
void capture_check(struct worker *w, struct conn *c)
{
	struct fetch *f = c->fetch;
	if (!f || !f->capture || c->paused || c->state != C_BUSY)
		return;
	struct capture_acct *a = capture_acct(w, f->client_idx, f->client_gen);
	if (a->unacked <= capture_window(w))
		return;
	c->paused = true;
	list_add_tail(&a->paused, &c->pause_link);
	w->stats.capture_pauses++;
	conn_stop_recv(w, c);
}

/* c stops belonging to its fetch (released, closed): it is no longer paused for anyone. */
void capture_forget(struct conn *c)
{
	if (list_linked(&c->pause_link))
		list_del(&c->pause_link);
	c->paused = false;
}

void capture_ack(struct worker *w, uint32_t idx, uint32_t gen, uint64_t bytes)
{
	if (idx >= w->client_cap || w->captures[idx].gen != gen)
		return; /* a newer client has the slot: that account started from zero */
	struct capture_acct *a = &w->captures[idx];
	a->unacked = bytes < a->unacked ? a->unacked - bytes : 0;
	if (a->unacked > capture_window(w) / 2)
		return;
	struct link *l;
	while ((l = list_pop(&a->paused))) {
		list_init(l);
		struct conn *c = list_entry(l, struct conn, pause_link);
		c->paused = false;
		conn_resume_recv(w, c);
	}
}

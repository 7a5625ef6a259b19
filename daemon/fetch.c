/* fetch.c - the end of a fetch: gather its outcome (from the fetch and, while attached, its connection)
 * into a struct result, hand the JSON line to its client, detach it from the connection and free it.
 * Every result goes through fetch_finish; every state change through fetch_set_state. */
#include "daemon/fetchd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/httpdate.h"
#include "daemon/log.h"
#include "daemon/result.h"
#include "daemon/urlref.h"

static const char *const fetch_state_names[] = {
	[F_QUEUED] = "queued", [F_CONNECTING] = "connecting", [F_TLS] = "tls", [F_SENDING] = "sending",
	[F_WAITING] = "waiting", [F_BODY] = "body", [F_DONE] = "done",
};
_Static_assert(sizeof(fetch_state_names) / sizeof(fetch_state_names[0]) == F_DONE + 1, "a state without a name");

void fetch_set_state(struct fetch *f, enum fetch_state s)
{
	log_debug("fetch %p: %s => %s", (void *)f, fetch_state_names[f->state], fetch_state_names[s]);
	f->state = s;
}

void fetch_free(struct fetch *f)
{
	buf_free(&f->hops);
	buf_free(&f->body);
	free(f->cur);
	free(f);
}

static void fetch_from_conn(const struct worker *w, struct result *r, struct fetch *f, struct conn *c)
{
	r->ip = c->ip;
	r->connect_ns = c->reused ? 0 : c->connect_ns;
	if (c->got_bytes)
		r->ttfb_ns = c->t_first_byte_ns - c->t_req_ns;
	if (c->tls) {
		r->tls_ns = c->reused ? 0 : c->tls_ns;
		r->tls_version = c->tls_done ? tls_conn_version(c->tls) : NULL;
		r->tls_cipher = c->tls_done ? tls_conn_cipher(c->tls) : NULL;
		r->tls_backend = tls_backend_name();
		r->tls_verified = c->tls_done && strcmp(w->conf.tls_verify, "no") != 0;
	}
	r->wire_bytes = c->wire_bytes;
	if (c->headers_done) {
		r->status = c->parser.status;
		r->content_type = c->parser.content_type[0] ? c->parser.content_type : NULL;
		r->content_encoding = c->parser.content_encoding[0] ? c->parser.content_encoding : NULL;
		r->decoded = c->decoding;
		r->body_bytes = c->body_bytes;
	}
	c->fetch = NULL;
	f->conn = NULL;
}

/* What every result of f says whatever its end: its URLs, hops, tries and time so far. */
static void fetch_result_common(const struct fetch *f, struct result *r)
{
	r->url = f->url;
	r->url_len = f->url_len;
	r->final_url = f->cur;
	r->final_url_len = f->cur_len;
	r->hops = f->hops.len ? &f->hops : NULL;
	r->attempts = f->attempts;
	r->seq = f->capture ? (int64_t)f->seq : -1;
	r->dns_ns = f->dns_ns;
	r->total_ns = f->prev_ns + f->dns_ns;
}

static void fetch_finish(struct worker *w, struct fetch *f, struct result *r)
{
	fetch_result_common(f, r);
	if (!r->attempts)
		r->attempts = 1;
	if (f->state != F_QUEUED) {
		r->total_ns += w->now_ns - f->t_start_ns;
		w->inflight--;
	}
	if (f->conn)
		fetch_from_conn(w, r, f, f->conn);
	fetch_set_state(f, F_DONE);
	if (f->internal) { /* robots.txt: its result is for this worker */
		robotstxt_done(w, f, r);
		list_del(&f->wlink);
		fetch_free(f);
		return;
	}
	if (r->err_class) {
		w->stats.fetches_failed++;
		w->stats.errors[result_class_index(r->err_class)]++;
	} else {
		w->stats.fetches_ok++;
	}
	worker_result(w, f, r);
}

/* The next backoff: base_ms doubled per earlier retry, 0.5x..1.5x at random, at most max_ms; or the
 * server's Retry-After (ms >= 0), at most max_ms. */
static int64_t fetch_backoff_ms(struct worker *w, const struct fetch *f, int64_t retry_after_ms)
{
	uint64_t max = w->conf.retry_max_ms;
	if (retry_after_ms >= 0)
		return retry_after_ms < (int64_t)max ? retry_after_ms : (int64_t)max;
	uint64_t ms = w->conf.retry_base_ms;
	for (uint32_t i = 1; i < f->attempts && ms < max; i++)
		ms *= 2;
	ms = ms / 2 + worker_random(w) % (ms + 1); /* 0.5x .. 1.5x */
	return (int64_t)(ms < max ? ms : max);
}

/* Back off and try f again, when a retry is left: f leaves its connection (the caller still closes or
 * releases it) and waits in the worker's waitheap, holding no slot. Returns false when f is done. */
static bool fetch_retry(struct worker *w, struct fetch *f, int64_t retry_after_ms)
{
	if (f->attempts > f->opts.retries || w->stopping)
		return false;
	int64_t due = w->now_ns + fetch_backoff_ms(w, f, retry_after_ms) * 1000000;
	if (waitheap_add(&w->waits, &f->wait, due) < 0)
		return false;
	worker_timer(w, due, TK_WAIT, 0, 0);
	if (f->conn) {
		f->conn->fetch = NULL;
		f->conn = NULL;
	}
	if (f->state != F_QUEUED) {
		w->inflight--;
		f->prev_ns += w->now_ns - f->t_start_ns;
	}
	f->prev_ns += f->dns_ns;
	f->dns_ns = 0;
	f->host = NULL;
	f->stale_retried = false;
	f->transient = false;
	w->stats.retries++;
	fetch_set_state(f, F_QUEUED);
	return true;
}

void fetch_retry_due(struct worker *w, struct fetch *f)
{
	struct url u;
	const char *reason;
	if (url_parse(fetch_url(f), fetch_url_len(f), 1, &u, &reason) < 0) { /* parsed before: cannot happen */
		fetch_fail(w, f, "internal", NULL, "URL no longer parses: %s", reason);
		return;
	}
	sched_admit(w, f, &u);
}

static bool fetch_retryable(const struct fetch *f, const char *cls)
{
	return !strcmp(cls, "timeout") || !strcmp(cls, "connect") || (!strcmp(cls, "protocol") && f->transient);
}

void fetch_cancelled(struct worker *w, struct fetch *f)
{
	struct result r;
	result_init(&r);
	r.err_class = "cancelled";
	snprintf(r.err_msg, sizeof(r.err_msg), "fetchd stopped before this URL was done ([daemon] drain_timeout_ms)");
	f->cancelled = true;
	fetch_result_common(f, &r);
	w->stats.fetches_failed++;
	w->stats.errors[result_class_index(r.err_class)]++;
	fetch_set_state(f, F_DONE);
	worker_result(w, f, &r);
}

void fetch_fail(struct worker *w, struct fetch *f, const char *cls, const char *phase, const char *fmt, ...)
{
	if (fetch_retryable(f, cls) && fetch_retry(w, f, -1))
		return;
	struct result r;
	result_init(&r);
	r.err_class = cls;
	r.err_phase = phase;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r.err_msg, sizeof(r.err_msg), fmt, ap);
	va_end(ap);
	fetch_finish(w, f, &r);
}

void fetch_succeed(struct worker *w, struct fetch *f, struct conn *c)
{
	struct result r;
	result_init(&r);
	r.have_sha = f->hash;
	if (r.have_sha)
		tls_sha256_final(&c->sha, r.sha);
	fetch_finish(w, f, &r);
}

/* An internal fetch's next hop: admitted here when this worker owns the host, else it ends as class
 * "redirects" (robots.txt then counts as unavailable). */
static void fetch_internal_hop(struct worker *w, struct fetch *f, const struct url *u)
{
	if (worker_owner(w, u->host) != w->id) {
		fetch_fail(w, f, "redirects", NULL, "robots.txt redirects to a host of another worker");
		return;
	}
	sched_admit(w, f, u);
}

static bool fetch_is_redirect(int status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* Has f already fetched url (the URL it was given, one of its hops, or the current one)? */
static bool fetch_seen(const struct fetch *f, const char *url, size_t len)
{
	if ((len == f->url_len && memcmp(url, f->url, len) == 0) ||
	    (len == fetch_url_len(f) && memcmp(url, fetch_url(f), len) == 0))
		return true;
	for (size_t off = 0; off + 6 <= f->hops.len;) {
		uint32_t n;
		memcpy(&n, f->hops.p + off + 2, sizeof(n));
		off += 6;
		if (n == len && memcmp(f->hops.p + off, url, len) == 0)
			return true;
		off += n;
	}
	return false;
}

/* Does u name another origin than the URL f was given (scheme, host or port)? */
static bool fetch_other_origin(const struct fetch *f, const struct url *u)
{
	struct url first;
	const char *reason;
	if (url_parse(f->url, f->url_len, 1, &first, &reason) < 0)
		return true;
	return first.scheme != u->scheme || first.port != u->port || strcmp(first.host, u->host) != 0;
}

/* Follow c's redirect for f: check the hop, record it, and send f (detached from c) back to the control
 * thread, which hands it to the worker that owns the new host. A hop that cannot be followed fails f
 * with class "redirects". Either way c is the caller's to release. */
static void fetch_redirect(struct worker *w, struct fetch *f, struct conn *c)
{
	const struct http1_parser *p = &c->parser;
	char *next = malloc(w->conf.max_url_bytes + 1);
	const char *why = NULL;
	struct url u;
	int n = -1;
	if (!next) {
		fetch_fail(w, f, "internal", NULL, "out of memory following a redirect");
		return;
	}
	if (f->nredirects >= f->opts.max_redirects)
		why = "too many redirects";
	else if (p->location_len < 0)
		why = "Location longer than the parser keeps";
	else if ((n = urlref_resolve(fetch_url(f), fetch_url_len(f), p->location, (size_t)p->location_len, next,
				     w->conf.max_url_bytes + 1, &why)) >= 0 &&
		 url_parse(next, (size_t)n, 1, &u, &why) == 0 && fetch_seen(f, next, (size_t)n))
		why = "redirect loop";
	if (why || n < 0) {
		if (f->nredirects >= f->opts.max_redirects)
			fetch_fail(w, f, "redirects", NULL, "more than %u redirects", f->opts.max_redirects);
		else
			fetch_fail(w, f, "redirects", NULL, "%s (Location: %.200s)", why ? why : "bad Location",
				   p->location_len >= 0 ? p->location : "...");
		free(next);
		return;
	}
	if (result_hop_add(&f->hops, p->status, fetch_url(f), fetch_url_len(f)) < 0) {
		fetch_fail(w, f, "internal", NULL, "out of memory following a redirect");
		free(next);
		return;
	}
	free(f->cur);
	f->cur = next;
	f->cur_len = (uint32_t)n;
	f->target_off = (uint32_t)u.target_off, f->target_len = (uint32_t)u.target_len;
	f->userinfo_off = (uint32_t)u.userinfo_off, f->userinfo_len = (uint32_t)u.userinfo_len;
	f->untrusted = f->untrusted || fetch_other_origin(f, &u);
	f->nredirects++;
	w->stats.redirects++;
	f->prev_ns += f->dns_ns + (w->now_ns - f->t_start_ns);
	f->dns_ns = 0;
	f->attempts = 0;
	f->stale_retried = false;
	c->fetch = NULL;
	f->conn = NULL;
	w->inflight--;
	fetch_set_state(f, F_QUEUED);
	if (f->internal) /* robots.txt: followed here when this worker owns the new host */
		fetch_internal_hop(w, f, &u);
	else
		worker_reroute(w, f);
}

static bool fetch_retryable_status(int status)
{
	return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

void fetch_response(struct worker *w, struct fetch *f, struct conn *c)
{
	const struct http1_parser *p = &c->parser;
	int64_t after_ms = -1;
	if (fetch_retryable_status(p->status)) {
		if (p->retry_after[0])
			after_ms = httpdate_retry_after_ms(p->retry_after, strlen(p->retry_after), time(NULL));
		if (fetch_retry(w, f, after_ms))
			return;
	}
	if (f->opts.follow && fetch_is_redirect(p->status) && p->location_len != -1)
		fetch_redirect(w, f, c);
	else
		fetch_succeed(w, f, c);
}

/* fetch.c - the end of a fetch: gather its outcome (from the fetch and, while attached, its connection)
 * into a struct result, hand the JSON line to its client, detach it from the connection and free it.
 * Every result goes through fetch_finish; every state change through fetch_set_state. */
#include "daemon/fetchd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/result.h"

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
	if (c->headers_done) {
		r->status = c->parser.status;
		r->content_type = c->parser.content_type[0] ? c->parser.content_type : NULL;
		r->body_bytes = c->parser.body_bytes;
	}
	c->fetch = NULL;
	f->conn = NULL;
}

static void fetch_finish(struct worker *w, struct fetch *f, struct result *r)
{
	r->url = f->url;
	r->url_len = f->url_len;
	r->attempts = f->attempts ? f->attempts : 1;
	r->dns_ns = f->dns_ns;
	r->total_ns = f->dns_ns;
	if (f->state != F_QUEUED) {
		r->total_ns += w->now_ns - f->t_start_ns;
		w->inflight--;
	}
	if (f->conn)
		fetch_from_conn(w, r, f, f->conn);
	if (r->err_class)
		w->stats.fetches_failed++;
	else
		w->stats.fetches_ok++;
	fetch_set_state(f, F_DONE);
	worker_result(w, f, r);
}

void fetch_fail(struct worker *w, struct fetch *f, const char *cls, const char *phase, const char *fmt, ...)
{
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

/* conn.c - connections and the per-fetch exchange on them: connect (next address on failure), TLS for
 * https (ciphertext through memory buffers: tls/ never sees the socket), send the request, receive into
 * provided buffers and feed the HTTP/1.1 parser, hash the body, enforce limits and timeouts, then keep
 * the connection for reuse or close it. The one place where ring, TLS and HTTP meet.
 * A connection is freed only when none of its ring ops is in flight: close = cancel, wait, free. */
#include "daemon/fetchd.h"
#include "daemon/hex.h"
#include "daemon/decode.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"

static const char *const conn_state_names[] = {
	[C_FREE] = "free", [C_CONNECTING] = "connecting", [C_BUSY] = "busy", [C_IDLE] = "idle",
	[C_CLOSING] = "closing",
};
_Static_assert(sizeof(conn_state_names) / sizeof(conn_state_names[0]) == C_CLOSING + 1, "a state without a name");

static void conn_set_state(struct conn *c, enum conn_state s)
{
	log_debug("conn %u: %s => %s", c->idx, conn_state_names[c->state], conn_state_names[s]);
	c->state = s;
}

static int64_t conn_ms(uint32_t ms)
{
	return (int64_t)ms * 1000000;
}

static uint64_t conn_ud(const struct conn *c, uint8_t op)
{
	return ring_ud(op, c->gen, c->idx);
}

struct conn *conn_alloc(struct worker *w)
{
	if (w->nconn_free == 0)
		return NULL;
	uint32_t idx = w->conn_free[--w->nconn_free];
	struct conn *c = &w->conns[idx];
	assert(c->state == C_FREE && c->ops == 0);
	char *req = c->req;
	uint32_t gen = c->gen, req_cap = c->req_cap;
	memset(c, 0, offsetof(struct conn, parser)); /* parser and hash are set per request */
	c->idx = idx, c->gen = gen, c->req = req, c->req_cap = req_cap;
	c->fd = -1;
	list_init(&c->pool_link);
	list_init(&c->lru_link);
	list_init(&c->nobufs_link);
	list_init(&c->pause_link);
	w->nconns++;
	return c;
}

/* The exchange is over: the decoder's memory goes now, not when the connection is reused. */
static void conn_decode_end(struct conn *c)
{
	if (c->decoding)
		decode_free(&c->dec);
	c->decoding = false;
}

static void conn_free(struct worker *w, struct conn *c)
{
	assert(c->ops == 0 && c->fetch == NULL);
	if (c->fd >= 0)
		ring_close(&w->ring, c->fd, ring_ud(OP_CLOSE, 0, 0));
	c->fd = -1;
	tls_conn_free(c->tls); /* TLS state lives exactly as long as the connection */
	c->tls = NULL;
	log_debug("conn %u: freed (%s) after %u requests", c->idx, c->close_reason, c->requests);
	conn_set_state(c, C_FREE);
	c->gen = (c->gen + 1) & RING_GEN_MASK;
	w->conn_free[w->nconn_free++] = c->idx;
	w->nconns--;
	struct host *h = c->host;
	c->host = NULL;
	h->nconns--;
	sched_host_changed(w, h); /* may free h */
}

void conn_hs_end(struct worker *w, struct conn *c)
{
	if (!c->hs_counted)
		return;
	c->hs_counted = false;
	w->handshakes--;
	while (!list_empty(&w->tls_wait)) { /* their turn: sched_run looks at them again */
		struct link *l = list_pop(&w->tls_wait);
		list_add_tail(&w->ready, l);
	}
}

/* Cancel each op in flight by its user_data (a lookup; cancelling by fd scans every pending op). */
static void conn_cancel_ops(struct worker *w, struct conn *c)
{
	static const uint8_t ops[] = { OP_CONN_CONNECT, OP_CONN_SEND, OP_CONN_RECV };
	const bool armed[] = { c->connect_armed, c->send_armed, c->recv_armed };
	for (size_t i = 0; i < sizeof(ops); i++) {
		if (!armed[i])
			continue;
		ring_cancel(&w->ring, conn_ud(c, ops[i]), conn_ud(c, OP_CONN_CANCEL));
		c->ops++;
	}
}

void conn_close(struct worker *w, struct conn *c, const char *reason)
{
	assert(c->fetch == NULL);
	if (c->state == C_CLOSING || c->state == C_FREE)
		return;
	if (c->state == C_IDLE) {
		list_del(&c->pool_link);
		list_del(&c->lru_link);
	}
	if (list_linked(&c->nobufs_link))
		list_del(&c->nobufs_link);
	capture_forget(c);
	c->close_reason = reason;
	conn_decode_end(c);
	conn_set_state(c, C_CLOSING);
	conn_hs_end(w, c);
	/* Shut the socket down now: the peer sees the close at once, the connection stops counting
	 * against the limits, and a receive in flight ends by itself (EOF). The slot waits for its ops. */
	c->host->nopen--;
	w->nopen--;
	worker_budget_give(w);
	if (c->fd >= 0 && shutdown(c->fd, SHUT_RDWR) == 0)
		c->recv_armed = false; /* ends with res 0 on its own: no cancel needed */
	if (c->ops == 0) {
		conn_free(w, c);
		return;
	}
	conn_cancel_ops(w, c);
}

static void conn_op_done(struct worker *w, struct conn *c)
{
	assert(c->ops > 0);
	c->ops--;
	if (c->state == C_CLOSING && c->ops == 0)
		conn_free(w, c);
}

/* The earliest deadline for c in its current phase, and that phase's name. */
static int64_t conn_deadline(const struct worker *w, const struct conn *c, const char **phase)
{
	const struct conf *cf = &w->conf;
	const struct fetch_opts *fo = c->fetch ? &c->fetch->opts : NULL;
	int64_t dl = INT64_MAX, t;
	*phase = NULL;
#define CONN_CAND(expr, name)                    \
	do {                                     \
		t = (expr);                      \
		if (t < dl) {                    \
			dl = t, *phase = (name); \
		}                                \
	} while (0)
	if (c->state == C_CONNECTING)
		CONN_CAND(c->t_connect_ns + conn_ms(fo ? fo->connect_timeout_ms : cf->connect_timeout_ms), "connect");
	if (c->state == C_BUSY && c->tls && !c->tls_done) {
		/* connect_timeout_ms covers the TCP connect and the TLS handshake, as in curl */
		CONN_CAND(c->t_connect_ns + conn_ms(fo ? fo->connect_timeout_ms : cf->connect_timeout_ms), "tls");
	} else if (c->state == C_BUSY) {
		if (!c->headers_done)
			CONN_CAND(c->t_req_ns + conn_ms(fo ? fo->header_timeout_ms : cf->header_timeout_ms), "header");
		if (!c->paused) /* waiting for its client (capture) is not the server's idleness */
			CONN_CAND((c->got_bytes ? c->t_last_recv_ns : c->t_req_ns) +
					  conn_ms(fo ? fo->idle_timeout_ms : cf->idle_timeout_ms), "idle");
	}
	if (c->state == C_IDLE)
		CONN_CAND(c->t_idle_ns + conn_ms(cf->keepalive_idle_ms), "keepalive");
	if (c->fetch)
		CONN_CAND(c->fetch->t_start_ns + conn_ms(fo->timeout_ms), "total");
#undef CONN_CAND
	return dl;
}

/* Arm a timer if c's deadline moved earlier; a later deadline is found when the earlier one fires. */
static void conn_arm_timer(struct worker *w, struct conn *c)
{
	const char *phase;
	int64_t dl = conn_deadline(w, c, &phase);
	if (dl == INT64_MAX || (c->timer_at_ns != 0 && c->timer_at_ns <= dl))
		return;
	c->timer_at_ns = dl;
	worker_timer(w, dl, TK_CONN, c->gen, c->idx);
}

static void conn_fmt_addr(const union sockaddr_any *a, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (a->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof(ip));
		snprintf(out, cap, "[%s]:%u", ip, ntohs(a->in6.sin6_port));
	} else {
		inet_ntop(AF_INET, &a->in4.sin_addr, ip, sizeof(ip));
		snprintf(out, cap, "%s:%u", ip, ntohs(a->in4.sin_port));
	}
}

/* c->ip: the address as text, once per connect (inet_ntop's sprintf is slow for IPv4). */
static void conn_set_ip(struct conn *c)
{
	if (c->addr.sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &c->addr.in6.sin6_addr, c->ip, sizeof(c->ip));
		return;
	}
	const uint8_t *b = (const uint8_t *)&c->addr.in4.sin_addr;
	char *o = c->ip;
	for (int i = 0; i < 4; i++) {
		if (b[i] >= 100)
			*o++ = (char)('0' + b[i] / 100);
		if (b[i] >= 10)
			*o++ = (char)('0' + b[i] / 10 % 10);
		*o++ = (char)('0' + b[i] % 10);
		*o++ = i < 3 ? '.' : 0;
	}
}

static void conn_arm_recv(struct worker *w, struct conn *c)
{
	if (c->recv_armed || c->state == C_CLOSING || c->paused)
		return;
	/* A capturing fetch takes one buffer at a time, so that a pause (capture.c) takes effect at once
	 * instead of after every byte the socket holds has arrived. */
	if (c->fetch && c->fetch->capture)
		ring_recv_one(&w->ring, c->fd, conn_ud(c, OP_CONN_RECV));
	else
		ring_recv_multi(&w->ring, c->fd, conn_ud(c, OP_CONN_RECV));
	c->recv_armed = true;
	c->ops++;
}

void conn_stop_recv(struct worker *w, struct conn *c)
{
	if (list_linked(&c->nobufs_link))
		list_del(&c->nobufs_link);
	if (!c->recv_armed || c->recv_cancelling)
		return;
	ring_cancel(&w->ring, conn_ud(c, OP_CONN_RECV), conn_ud(c, OP_CONN_CANCEL));
	c->recv_cancelling = true;
	c->ops++;
}

void conn_resume_recv(struct worker *w, struct conn *c)
{
	c->t_last_recv_ns = w->now_ns; /* the idle time starts again */
	conn_arm_recv(w, c);
	conn_arm_timer(w, c);
}

/* Start connecting to the address at c->addr_idx. Returns 0, or -errno when no socket could be made. */
static int conn_connect(struct worker *w, struct conn *c)
{
	struct host *h = c->host;
	c->addr = h->addrs[c->addr_idx];
	conn_set_ip(c);
	int family = c->addr.sa.sa_family;
	c->fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	conn_set_state(c, C_CONNECTING);
	c->t_connect_ns = w->now_ns;
	socklen_t len = family == AF_INET6 ? sizeof(c->addr.in6) : sizeof(c->addr.in4);
	ring_connect(&w->ring, c->fd, &c->addr.sa, len, conn_ud(c, OP_CONN_CONNECT));
	c->connect_armed = true;
	c->ops++;
	conn_arm_timer(w, c);
	return 0;
}

static int conn_base64(const uint8_t *in, size_t n, char *out, size_t cap)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t need = (n + 2) / 3 * 4 + 1, o = 0;
	if (need > cap)
		return -1;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = tbl[(v >> 18) & 63];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tbl[v & 63] : '=';
	}
	out[o] = 0;
	return 0;
}

/* userinfo "user:pa%40ss" -> base64 of the percent-decoded bytes, as curl sends it. */
static int conn_basic_auth(const struct fetch *f, char *out, size_t cap)
{
	uint8_t raw[1024];
	size_t n = 0;
	const char *s = fetch_url(f) + f->userinfo_off;
	for (size_t i = 0; i < f->userinfo_len && n < sizeof(raw); i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < f->userinfo_len && (hi = hex_value(s[i + 1])) >= 0 &&
		    (lo = hex_value(s[i + 2])) >= 0) {
			raw[n++] = (uint8_t)(hi << 4 | lo);
			i += 2;
		} else {
			raw[n++] = (uint8_t)s[i];
		}
	}
	return conn_base64(raw, n, out, cap);
}

static void conn_send_rest(struct worker *w, struct conn *c)
{
	ring_send(&w->ring, c->fd, c->req + c->req_sent, c->req_len - c->req_sent, conn_ud(c, OP_CONN_SEND));
	c->send_armed = true;
	c->ops++;
}

static void conn_tls_send_request(struct worker *w, struct conn *c);
static void conn_tls_start(struct worker *w, struct conn *c);
static void conn_tls_sent(struct worker *w, struct conn *c, size_t n);
static void conn_tls_input(struct worker *w, struct conn *c, const uint8_t *data, size_t len);
static bool conn_plain(struct worker *w, struct conn *c, const uint8_t *data, size_t len);
static void conn_tls_save_session(struct worker *w, struct conn *c);

/* Begin the exchange for c->fetch on a connected socket: build and send the request. */
static void conn_begin_request(struct worker *w, struct conn *c)
{
	struct fetch *f = c->fetch;
	struct host *h = c->host;
	char auth[1400];
	const char *authp = NULL;
	if (f->userinfo_len && conn_basic_auth(f, auth, sizeof(auth)) == 0)
		authp = auth;
	size_t need = 256 + f->target_len + strlen(h->host_header) + strlen(w->conf.user_agent) + sizeof(auth) +
		      f->opts.extra_len;
	if (need > c->req_cap) {
		char *p = realloc(c->req, need);
		if (!p) {
			fetch_fail(w, f, "internal", NULL, "out of memory building the request");
			conn_close(w, c, "out of memory");
			return;
		}
		c->req = p, c->req_cap = (uint32_t)need;
	}
	/* "http://a?x" has the target "?x": the request line needs "/?x". */
	const char *target = f->target_len ? fetch_url(f) + f->target_off : "/";
	size_t target_len = f->target_len ? f->target_len : 1;
	char *prefixed = NULL;
	if (target[0] != '/') {
		prefixed = malloc(target_len + 1);
		if (prefixed) {
			prefixed[0] = '/';
			memcpy(prefixed + 1, target, target_len);
		}
		target = prefixed, target_len++;
	}
	struct http1_request rq = {
		.method = f->opts.method == OPTS_HEAD ? "HEAD" : "GET", .target = target, .target_len = target_len,
		.host = h->host_header, .host_len = strlen(h->host_header), .user_agent = w->conf.user_agent,
		.accept_encoding = f->opts.decode ? "gzip, deflate" : NULL, .auth_basic64 = authp,
		.extra = fetch_extra(f), .extra_len = f->opts.extra_len, .drop_credentials = f->untrusted,
	};
	ssize_t n = !target ? -1 : http1_build_request(c->req, c->req_cap, &rq);
	free(prefixed);
	if (n < 0) {
		fetch_fail(w, f, "url", NULL, "cannot build a request for this URL");
		conn_close(w, c, "request could not be built");
		return;
	}
	c->req_len = (uint32_t)n;
	c->req_sent = 0;
	capture_exchange(w, c);
	c->got_bytes = false;
	c->headers_done = false;
	c->wire_bytes = 0;
	c->body_bytes = 0;
	conn_decode_end(c);
	c->t_req_ns = w->now_ns;
	c->requests++;
	/* Politeness spaces what the server sees: a request that took long to connect moves the next one */
	if (h->spacing_ns && h->next_ok_ns < w->now_ns + h->spacing_ns)
		h->next_ok_ns = w->now_ns + h->spacing_ns;
	http1_parser_init(&c->parser, f->opts.method == OPTS_HEAD, w->conf.max_header_bytes);
	tls_sha256_init(&c->sha);
	fetch_set_state(f, F_SENDING);
	if (c->tls)
		conn_tls_send_request(w, c);
	else
		conn_send_rest(w, c);
	conn_arm_recv(w, c);
	conn_arm_timer(w, c);
}

/* An idle connection of h that may carry a request now: the most recently used one that has been
 * idle for a whole loop turn. Bytes a server sent after its response (junk) that had already
 * arrived then reached the idle receive, which closed the connection; a connection put back in
 * this very turn could still hold them unseen. */
struct conn *conn_idle_usable(const struct worker *w, struct host *h)
{
	for (struct link *l = h->idle.prev; l != &h->idle; l = l->prev) {
		struct conn *c = list_entry(l, struct conn, pool_link);
		if (c->idle_turn < w->turn)
			return c;
	}
	return NULL;
}

void conn_start(struct worker *w, struct fetch *f)
{
	struct host *h = f->host;
	f->attempts++;
	fetch_set_state(f, F_CONNECTING);
	struct conn *c = conn_idle_usable(w, h);
	if (c) {
		list_del(&c->pool_link);
		list_del(&c->lru_link);
		conn_set_state(c, C_BUSY);
		c->reused = true;
		c->fetch = f;
		f->conn = c;
		w->stats.conns_reused++;
		conn_begin_request(w, c);
		return;
	}
	c = conn_alloc(w);
	if (!c) {
		worker_budget_give(w); /* taken for this connection by the scheduler */
		fetch_fail(w, f, "internal", NULL, "no connection slot free");
		return;
	}
	c->host = h;
	h->nconns++;
	h->nopen++;
	w->nopen++;
	if (h->scheme == URL_HTTPS) {
		c->hs_counted = true;
		w->handshakes++;
	}
	c->fetch = f;
	f->conn = c;
	int err = conn_connect(w, c);
	if (err < 0) {
		fetch_fail(w, f, "connect", NULL, "cannot create a socket: %s", strerror(-err));
		conn_close(w, c, "socket failed");
		return;
	}
	w->stats.conns_opened++;
}

/* After the response: keep c for the next request to its host, or close it. */
void conn_release(struct worker *w, struct conn *c, bool reusable)
{
	conn_decode_end(c);
	capture_forget(c);
	if (!reusable || w->stopping || w->conf.keepalive_idle_ms == 0) {
		conn_close(w, c, reusable ? "keep-alive disabled" : "not reusable");
		return;
	}
	conn_set_state(c, C_IDLE);
	c->reused = false;
	c->t_idle_ns = w->now_ns;
	c->idle_turn = w->turn;
	list_add_tail(&c->host->idle, &c->pool_link);
	list_add_tail(&w->idle_lru, &c->lru_link);
	conn_arm_timer(w, c);
	sched_host_changed(w, c->host);
}

static void conn_fail(struct worker *w, struct conn *c, const char *cls, const char *phase, const char *reason,
		      const char *msg)
{
	fetch_fail(w, c->fetch, cls, phase, "%s", msg);
	conn_close(w, c, reason);
}

/* A reused connection that died before any response byte: the server closed it while idle. Try once
 * more on a new connection, as curl does; this is not a new attempt. */
static bool conn_retry_stale(struct worker *w, struct conn *c)
{
	struct fetch *f = c->fetch;
	if (!c->reused || c->got_bytes || f->stale_retried)
		return false;
	f->stale_retried = true;
	f->attempts--;
	c->fetch = NULL;
	f->conn = NULL;
	w->stats.stale_retries++;
	conn_close(w, c, "reused connection was closed by the server");
	sched_requeue(w, f);
	return true;
}

static void conn_on_connect(struct worker *w, struct conn *c, int res)
{
	c->connect_ns = w->now_ns - c->t_connect_ns; /* the last address tried, success or not */
	if (res == 0) {
		conn_set_state(c, C_BUSY);
		if (c->host->scheme == URL_HTTPS)
			conn_tls_start(w, c);
		else
			conn_begin_request(w, c);
		return;
	}
	char addr[80];
	conn_fmt_addr(&c->addr, addr, sizeof(addr));
	if (c->addr_idx + 1 < c->host->naddrs) {
		log_debug("conn %u: connect to %s failed (%s), trying the next address", c->idx, addr, strerror(-res));
		close(c->fd);
		c->fd = -1;
		c->addr_idx++;
		int err = conn_connect(w, c);
		if (err == 0)
			return;
		res = err;
	}
	char msg[160];
	snprintf(msg, sizeof(msg), "%s (%s)", strerror(-res), addr);
	conn_fail(w, c, "connect", NULL, "connect failed", msg);
}

static void conn_on_send(struct worker *w, struct conn *c, int res)
{
	if (c->tls && res > 0) {
		conn_tls_sent(w, c, (size_t)res);
		return;
	}
	if (!c->fetch)
		return; /* the exchange already ended (an early response or an error); c is closing */
	if (res <= 0) {
		if (conn_retry_stale(w, c))
			return;
		char msg[128];
		bool hs = c->tls && !c->tls_done;
		snprintf(msg, sizeof(msg), "%s: %s", hs ? "handshake failed" : "sending the request failed",
			 res ? strerror(-res) : "no progress");
		c->fetch->transient = res == -ECONNRESET || res == -EPIPE;
		conn_fail(w, c, hs ? "tls" : "protocol", NULL, "send failed", msg);
		return;
	}
	c->req_sent += (uint32_t)res;
	if (c->req_sent < c->req_len) {
		conn_send_rest(w, c);
		return;
	}
	if (c->fetch->state == F_SENDING)
		fetch_set_state(c->fetch, F_WAITING);
}

static const char *conn_parse_class(int err)
{
	return err == HTTP1_E_HEADER_TOO_LARGE ? "too_large" : "protocol";
}

/* Feed response bytes to the parser. Returns false when the exchange ended (c may be gone). */
struct conn_sink {
	struct worker *w;
	struct conn *c;
};

/* Decoded body bytes: counted against max_body_bytes, hashed, captured. Nonzero stops the decoder. */
static int conn_body(void *arg, const uint8_t *p, size_t n)
{
	const struct conn_sink *s = arg;
	struct conn *c = s->c;
	c->body_bytes += n;
	if (c->body_bytes > c->fetch->opts.max_body_bytes)
		return 1;
	if (c->fetch->internal)
		robotstxt_body(c->fetch, p, n);
	if (c->fetch->hash)
		tls_sha256_update(&c->sha, p, n);
	capture_body(s->w, c, p, n);
	return 0;
}

static void conn_too_large(struct worker *w, struct conn *c)
{
	char msg[96];
	snprintf(msg, sizeof(msg), "%sbody exceeds max_body_bytes %llu", c->decoding ? "decoded " : "",
		 (unsigned long long)c->fetch->opts.max_body_bytes);
	conn_fail(w, c, "too_large", NULL, "body too large", msg);
}

/* The header is in: refuse a declared body over the limit, and start decoding a known coding. */
static bool conn_headers(struct worker *w, struct conn *c)
{
	struct fetch *f = c->fetch;
	c->headers_done = true;
	fetch_set_state(f, F_BODY);
	if (c->parser.content_length > 0 && (uint64_t)c->parser.content_length > f->opts.max_body_bytes) {
		char msg[128];
		snprintf(msg, sizeof(msg), "Content-Length %lld exceeds max_body_bytes %llu",
			 (long long)c->parser.content_length, (unsigned long long)f->opts.max_body_bytes);
		conn_fail(w, c, "too_large", NULL, "body too large", msg);
		return false;
	}
	int kind = c->parser.content_encoding[0] ? decode_kind_of(c->parser.content_encoding) : DECODE_IDENTITY;
	if (!f->opts.decode || kind <= DECODE_IDENTITY || c->parser.framing == HTTP1_FRAMING_NONE)
		return true; /* no coding, one we do not know (passed on as it came), or no body */
	if (decode_init(&c->dec, (enum decode_kind)kind) != DECODE_OK) {
		conn_fail(w, c, "internal", NULL, "decoder", "out of memory starting the decoder");
		return false;
	}
	c->decoding = true;
	return true;
}

static bool conn_body_in(struct worker *w, struct conn *c, const uint8_t *p, size_t n)
{
	struct conn_sink s = { w, c };
	capture_payload(c, p, n);
	int rc = c->decoding ? decode_feed(&c->dec, p, n, w->decoded, sizeof(w->decoded), conn_body, &s)
			     : conn_body(&s, p, n) ? DECODE_E_SINK : DECODE_OK;
	if (rc == DECODE_OK)
		return true;
	if (rc == DECODE_E_SINK)
		conn_too_large(w, c);
	else
		conn_fail(w, c, rc == DECODE_E_NOMEM ? "internal" : "protocol", NULL, "bad body", c->dec.detail &&
			  rc == DECODE_E_CORRUPT ? c->dec.detail : decode_strerror(rc));
	return false;
}

/* The response is complete: finish decoding, then the fetch decides (result, redirect, retry). Returns
 * false when that failed the fetch (c then closes). */
static bool conn_response_done(struct worker *w, struct conn *c)
{
	capture_end(w, c);
	if (c->decoding) {
		int rc = decode_finish(&c->dec);
		if (rc != DECODE_OK) {
			char msg[128];
			snprintf(msg, sizeof(msg), "%s body: %s", c->parser.content_encoding, decode_strerror(rc));
			conn_fail(w, c, "protocol", NULL, "bad body", msg);
			return false;
		}
	}
	fetch_response(w, c->fetch, c);
	return true;
}

/* Feed response bytes to the parser. Returns false when the exchange ended (c may be gone). */
static bool conn_feed(struct worker *w, struct conn *c, const uint8_t *data, size_t len)
{
	size_t off = 0;
	for (;;) { /* until the parser wants more: DONE may come with no byte left to consume */
		struct http1_ev ev;
		ssize_t n = http1_parse(&c->parser, data + off, len - off, &ev);
		if (n < 0) {
			conn_fail(w, c, conn_parse_class((int)n), NULL, "bad response", http1_strerror((int)n));
			return false;
		}
		capture_response(w, c, data + off, (size_t)n);
		off += (size_t)n;
		if (ev.type == HTTP1_EV_HEADERS) {
			if (!conn_headers(w, c))
				return false;
		} else if (ev.type == HTTP1_EV_BODY) {
			if (!conn_body_in(w, c, ev.data, ev.len))
				return false;
		} else if (ev.type == HTTP1_EV_DONE) {
			/* Reuse needs a framed response, no byte after it, and our request fully sent. */
			bool reusable = c->parser.keep_alive && off == len && c->req_sent == c->req_len;
			if (c->tls) /* by now a TLS 1.3 server has sent its tickets too */
				conn_tls_save_session(w, c);
			if (conn_response_done(w, c))
				conn_release(w, c, reusable);
			return false;
		} else {
			return true; /* HTTP1_EV_NONE: everything consumed */
		}
	}
}

/* Response bytes (plaintext) for c. Returns false when the exchange ended (c may be idle or gone). */
static bool conn_plain(struct worker *w, struct conn *c, const uint8_t *data, size_t len)
{
	if (c->state == C_IDLE) {
		conn_close(w, c, "unexpected bytes on an idle connection");
		return false;
	}
	if (c->reused && !c->got_bytes && c->req_sent < c->req_len && conn_retry_stale(w, c))
		return false; /* bytes before our request even left: junk sent after the previous response */
	if (!c->got_bytes)
		c->t_first_byte_ns = w->now_ns;
	c->got_bytes = true;
	c->t_last_recv_ns = w->now_ns;
	return conn_feed(w, c, data, len);
}

/* ---- TLS: the ring moves ciphertext in and out of c->tls ---------------------------------------- */

static void conn_tls_fail(struct worker *w, struct conn *c, int rc)
{
	const char *reason = c->tls ? tls_conn_reason(c->tls) : "";
	if (!c->fetch) {
		conn_close(w, c, "TLS error on an idle connection");
		return;
	}
	conn_fail(w, c, "tls", NULL, "tls failed", reason[0] ? reason : tls_strerror(rc));
}

/* Send the next piece of queued ciphertext, one send at a time. */
static void conn_tls_flush(struct worker *w, struct conn *c)
{
	const uint8_t *p;
	size_t n;
	if (c->send_armed || c->state == C_CLOSING || !(n = tls_output(c->tls, &p)))
		return;
	ring_send(&w->ring, c->fd, p, (uint32_t)n, conn_ud(c, OP_CONN_SEND));
	c->send_armed = true;
	c->ops++;
}

static void conn_tls_save_session(struct worker *w, struct conn *c)
{
	if (c->session_saved || !w->tls_sessions)
		return;
	struct tls_session *s = tls_conn_session(c->tls);
	if (!s)
		return;
	char key[URL_HOST_MAX + 8];
	snprintf(key, sizeof(key), "%s:%u", c->host->name, c->host->port);
	lrumap_put(w->tls_sessions, key, s);
	c->session_saved = true;
}

static void conn_tls_handshake(struct worker *w, struct conn *c)
{
	int rc = tls_handshake(c->tls);
	conn_tls_flush(w, c);
	if (rc == TLS_WANT_IO)
		return;
	if (rc != TLS_OK) {
		conn_tls_fail(w, c, rc);
		return;
	}
	c->tls_done = true;
	c->tls_ns = w->now_ns - c->t_tls_ns;
	conn_hs_end(w, c);
	w->stats.tls_handshakes++;
	if (tls_conn_reused(c->tls))
		w->stats.tls_resumed++;
	conn_begin_request(w, c);
}

/* TCP is up: start the handshake (resuming a cached session for host:port when there is one). */
static void conn_tls_start(struct worker *w, struct conn *c)
{
	if (!w->tls_cfg) {
		conn_fail(w, c, "tls", NULL, "tls unavailable", w->tls_cfg_error);
		return;
	}
	int rc = tls_conn_new(w->tls_cfg, c->host->name, &c->tls);
	if (rc != TLS_OK) {
		conn_fail(w, c, "tls", NULL, "tls setup", tls_strerror(rc));
		return;
	}
	if (w->tls_sessions) {
		char key[URL_HOST_MAX + 8];
		snprintf(key, sizeof(key), "%s:%u", c->host->name, c->host->port);
		const struct tls_session *s = lrumap_get(w->tls_sessions, key);
		if (s)
			tls_conn_set_session(c->tls, s);
	}
	c->t_tls_ns = w->now_ns;
	fetch_set_state(c->fetch, F_TLS);
	conn_arm_recv(w, c);
	conn_arm_timer(w, c);
	conn_tls_handshake(w, c);
}

/* Encrypt as much of the request as TLS takes now; the rest goes after a send completes. */
static void conn_tls_send_request(struct worker *w, struct conn *c)
{
	while (c->req_sent < c->req_len) {
		ssize_t n = tls_write(c->tls, c->req + c->req_sent, c->req_len - c->req_sent);
		if (n == TLS_WANT_IO)
			break;
		if (n < 0) {
			conn_tls_fail(w, c, (int)n);
			return;
		}
		c->req_sent += (uint32_t)n;
	}
	conn_tls_flush(w, c);
}

static void conn_tls_sent(struct worker *w, struct conn *c, size_t n)
{
	tls_output_done(c->tls, n);
	if (c->state == C_CLOSING)
		return;
	if (!c->tls_done) {
		conn_tls_handshake(w, c);
		return;
	}
	if (c->fetch && c->req_sent < c->req_len) {
		conn_tls_send_request(w, c);
		return;
	}
	conn_tls_flush(w, c);
	if (c->fetch && c->fetch->state == F_SENDING && !c->send_armed)
		fetch_set_state(c->fetch, F_WAITING);
}

static void conn_on_eof(struct worker *w, struct conn *c);

/* Plaintext out of TLS, until it wants more ciphertext; false when c stopped (closed or failed). */
static bool conn_tls_read(struct worker *w, struct conn *c)
{
	for (;;) {
		ssize_t n = tls_read(c->tls, w->plain, sizeof(w->plain));
		if (n == TLS_WANT_IO)
			return true;
		if (n == TLS_CLOSED) { /* close_notify: the stream ends here, cleanly */
			conn_on_eof(w, c);
			return false;
		}
		if (n < 0) {
			conn_tls_fail(w, c, (int)n);
			return false;
		}
		conn_plain(w, c, w->plain, (size_t)n);
		if (c->state == C_CLOSING)
			return false;
	}
}

/* Ciphertext arrived: through the handshake, or out as plaintext. */
static void conn_tls_input(struct worker *w, struct conn *c, const uint8_t *data, size_t len)
{
	size_t off = 0;
	while (off < len && c->state != C_CLOSING) {
		size_t took = tls_input(c->tls, data + off, len - off);
		off += took;
		if (!c->tls_done) {
			conn_tls_handshake(w, c);
			if (c->state == C_CLOSING || !c->tls_done) {
				if (took == 0 && c->state != C_CLOSING)
					conn_tls_fail(w, c, TLS_E_PROTOCOL);
				continue;
			}
		}
		if (!conn_tls_read(w, c))
			return;
		if (took == 0) { /* its input is full and reading freed none: a broken stream */
			conn_tls_fail(w, c, TLS_E_PROTOCOL);
			return;
		}
	}
	if (c->state != C_CLOSING)
		conn_tls_flush(w, c); /* whatever reading produced (key updates, alerts) */
}

static void conn_on_eof(struct worker *w, struct conn *c)
{
	if (c->state == C_IDLE) {
		conn_close(w, c, "server closed the idle connection");
		return;
	}
	if (conn_retry_stale(w, c))
		return;
	if (c->tls) {
		int t = tls_conn_eof(c->tls);
		if (t == TLS_E_HANDSHAKE || (t != TLS_CLOSED && !c->tls_done)) {
			conn_fail(w, c, "tls", NULL, "eof in handshake", "the server closed the connection during the TLS handshake");
			return;
		}
		if (t == TLS_E_TRUNCATED && c->headers_done && c->parser.framing == HTTP1_FRAMING_EOF) {
			/* the body ends at the close, and without close_notify nothing says it is whole */
			conn_fail(w, c, "tls", NULL, "truncated", "connection closed without close_notify (truncated body)");
			return;
		}
	}
	int rc = http1_finish(&c->parser);
	if (rc == HTTP1_EV_DONE) {
		if (conn_response_done(w, c))
			conn_close(w, c, "body ended at EOF");
	} else if (rc == HTTP1_EV_NONE) {
		c->fetch->transient = true; /* an empty reply: worth another try */
		conn_fail(w, c, "protocol", NULL, "eof", "server closed the connection without a response");
	} else {
		char msg[128];
		snprintf(msg, sizeof(msg), "%s: server closed the connection after %llu body bytes",
			 http1_strerror(rc), (unsigned long long)c->parser.body_bytes);
		conn_fail(w, c, "protocol", NULL, "truncated", msg);
	}
}

static void conn_on_recv(struct worker *w, struct conn *c, const struct ring_cqe *cqe)
{
	c->recv_armed = ring_cqe_more(cqe); /* a multishot receive stays armed while F_MORE is set */
	uint16_t bid = 0;
	uint8_t *data = ring_cqe_has_buf(cqe) ? ring_buf_get(&w->ring, cqe, &bid) : NULL;
	if (c->state == C_CLOSING) {
		/* nothing to do with the bytes */
	} else if (cqe->res == -ECANCELED && c->recv_cancelling) {
		/* stopped while its client catches up (capture): armed again below once it may */
	} else if (cqe->res == -ENOBUFS) {
		w->ring.enobufs++;
		list_add_tail(&w->nobufs, &c->nobufs_link);
	} else if (cqe->res < 0) {
		if (c->state == C_IDLE) {
			conn_close(w, c, "error on the idle connection");
		} else if (!conn_retry_stale(w, c)) {
			char msg[160];
			bool hs = c->tls && !c->tls_done;
			snprintf(msg, sizeof(msg), "%s: %s (after %llu bytes)", hs ? "handshake failed" : "receive failed",
				 strerror(-cqe->res), (unsigned long long)c->wire_bytes);
			c->fetch->transient = cqe->res == -ECONNRESET; /* a reset: worth another try */
			conn_fail(w, c, hs ? "tls" : "protocol", NULL, "recv failed", msg);
		}
	} else if (cqe->res == 0) {
		conn_on_eof(w, c);
	} else if (c->tls) {
		c->wire_bytes += (uint64_t)cqe->res;
		conn_tls_input(w, c, data, (size_t)cqe->res);
	} else {
		c->wire_bytes += (uint64_t)cqe->res;
		conn_plain(w, c, data, (size_t)cqe->res);
	}
	if (data)
		ring_buf_put(&w->ring, bid);
	if (!c->recv_armed)
		c->recv_cancelling = false;
	if (c->state == C_BUSY)
		capture_check(w, c);
	if ((c->state == C_BUSY || c->state == C_IDLE) && !list_linked(&c->nobufs_link))
		conn_arm_recv(w, c);
}

void conn_retry_nobufs(struct worker *w)
{
	struct link *l;
	while ((l = list_pop(&w->nobufs))) {
		struct conn *c = list_entry(l, struct conn, nobufs_link);
		conn_arm_recv(w, c);
	}
}

void conn_on_cqe(struct worker *w, const struct ring_cqe *cqe)
{
	uint32_t idx = ring_ud_idx(cqe->user_data);
	struct conn *c = idx < w->conn_cap ? &w->conns[idx] : NULL;
	if (!c || c->gen != ring_ud_gen(cqe->user_data) || c->state == C_FREE) {
		w->stats.stale_cqes++;
		log_error("stale connection completion op=%u idx=%u dropped", ring_ud_op(cqe->user_data), idx);
		if (ring_cqe_has_buf(cqe)) {
			uint16_t bid;
			ring_buf_get(&w->ring, cqe, &bid);
			ring_buf_put(&w->ring, bid);
		}
		return;
	}
	uint8_t op = ring_ud_op(cqe->user_data);
	if (op == OP_CONN_CONNECT)
		c->connect_armed = false;
	else if (op == OP_CONN_SEND)
		c->send_armed = false;
	if (c->state != C_CLOSING) {
		if (op == OP_CONN_CONNECT)
			conn_on_connect(w, c, cqe->res);
		else if (op == OP_CONN_SEND)
			conn_on_send(w, c, cqe->res);
	}
	if (op == OP_CONN_RECV) {
		conn_on_recv(w, c, cqe);
		if (ring_cqe_more(cqe))
			return; /* still armed: the op has not ended */
	}
	conn_op_done(w, c);
}

void conn_on_timer(struct worker *w, uint32_t idx, uint32_t gen, int64_t deadline_ns)
{
	if (idx >= w->conn_cap)
		return;
	struct conn *c = &w->conns[idx];
	if (c->gen != gen || c->timer_at_ns != deadline_ns || c->state == C_FREE || c->state == C_CLOSING)
		return; /* superseded */
	c->timer_at_ns = 0;
	const char *phase;
	int64_t dl = conn_deadline(w, c, &phase);
	if (dl > w->now_ns) {
		conn_arm_timer(w, c);
		return;
	}
	if (c->state == C_IDLE) {
		conn_close(w, c, "keep-alive idle time over");
		return;
	}
	if (!strcmp(phase, "connect") && c->addr_idx + 1 < c->host->naddrs) {
		/* Give up on this address: the cancelled connect completes and moves to the next one. */
		ring_cancel(&w->ring, conn_ud(c, OP_CONN_CONNECT), conn_ud(c, OP_CONN_CANCEL));
		c->ops++;
		return;
	}
	const struct fetch_opts *fo = &c->fetch->opts;
	uint32_t ms = !strcmp(phase, "connect") || !strcmp(phase, "tls") ? fo->connect_timeout_ms
		      : !strcmp(phase, "header") ? fo->header_timeout_ms
		      : !strcmp(phase, "idle")   ? fo->idle_timeout_ms
						 : fo->timeout_ms;
	fetch_fail(w, c->fetch, "timeout", phase, "%s timeout after %u ms", phase, ms);
	conn_close(w, c, "timeout");
}

void conn_detach_cancel(struct worker *w, struct fetch *f)
{
	struct conn *c = f->conn;
	if (!c)
		return;
	c->fetch = NULL;
	f->conn = NULL;
	conn_close(w, c, "cancelled");
}

void conn_close_idle_all(struct worker *w)
{
	struct link *l;
	while ((l = list_pop(&w->idle_lru))) {
		list_init(l);
		struct conn *c = list_entry(l, struct conn, lru_link);
		list_add_tail(&w->idle_lru, &c->lru_link); /* conn_close unlinks it */
		conn_close(w, c, "stopping");
	}
}


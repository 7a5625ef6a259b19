/* control.c - the control socket: accept clients, read their frames (docs/protocol.md), admit URLs while
 * the client's window and byte budget allow, and stream results back. A client that stops reading stops
 * getting URLs admitted (its memory stays bounded); a client that goes away has its fetches cancelled. */
#include "daemon/fetchd.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/access.h"
#include "daemon/hash.h"
#include "daemon/opts.h"
#include "daemon/json.h"
#include "daemon/log.h"
#include "daemon/proto.h"
#include "daemon/protocol.h"
#include "daemon/queue.h"
#include "daemon/result.h"
#include "daemon/sdlisten.h"

#define CONTROL_IN_MIN_BYTES 65536
#define CONTROL_KEEP_BYTES (256 * 1024) /* buffer memory kept after a burst (capture) */
#define CONTROL_RESULTS_FRAME_BYTES 262144 /* close a RESULTS frame beyond this */
#define CONTROL_NO_FRAME ((size_t)-1)
/* Results wait up to this long, or until this many bytes are pending, so that one send (and one
 * wake-up of the client) carries many of them. Other frames go at once. */
#define CONTROL_FLUSH_DELAY_NS (2 * 1000000LL)
#define CONTROL_FLUSH_BYTES 65536
#define CONTROL_ACCEPT_RETRY_NS (100 * 1000000LL) /* accept again after running out of descriptors */

/* Take the spare descriptor back after it was spent on a shortage. A worker may grab the descriptor
 * that came free first: then try again on a timer, so the spare never stays lost. */
static void control_reserve(struct fetchd *d)
{
	if (d->reserve_fd >= 0)
		return;
	d->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (d->reserve_fd < 0 && !d->stopping)
		fetchd_timer(d, d->now_ns + CONTROL_ACCEPT_RETRY_NS, TK_ACCEPT, 0, 0);
}

static uint64_t client_ud(const struct client *c, uint8_t op)
{
	return ring_ud(op, c->gen, c->idx);
}

static void control_arm_accept(struct fetchd *d)
{
	if (d->accept_armed || d->stopping || d->listen_fd < 0)
		return;
	ring_accept(&d->ring, d->listen_fd, ring_ud(OP_ACCEPT, 0, 0));
	d->accept_armed = true;
}

/* The client table, every slot free. */
static int control_clients_init(struct fetchd *d, char *err, size_t errlen)
{
	d->client_cap = fetchd_client_cap(&d->conf); /* then max_jobs slots run jobs, and one the queue */
	d->clients = calloc(d->client_cap, sizeof(*d->clients));
	d->client_free = calloc(d->client_cap, sizeof(*d->client_free));
	if (!d->clients || !d->client_free) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (uint32_t i = 0; i < d->client_cap; i++) {
		d->clients[i].idx = i;
		d->clients[i].fd = -1;
	}
	for (uint32_t i = 0; i < d->conf.max_clients; i++)
		d->client_free[i] = d->conf.max_clients - 1 - i;
	d->nclient_free = d->conf.max_clients;
	return 0;
}

/* Bind [control] socket ourselves (mode 0660): the listening descriptor, or -1 with err set. */
static int control_bind(struct fetchd *d, char *err, size_t errlen)
{
	const char *path = d->conf.socket_path;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* A socket file that still answers belongs to a running fetchd: do not steal it. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(fd);
		snprintf(err, errlen, "another fetchd is already listening on %s", path);
		return -1;
	}
	close(fd);
	struct stat st;
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket: not removing it", path);
		return -1;
	}
	unlink(path); /* a stale socket left by a fetchd that did not stop cleanly */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(path, 0660) < 0 ||
	    listen(fd, 256) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The socket systemd handed over (socket activation): the descriptor, -1 when there is none, or -2
 * with err set when there is one fetchd cannot use. It is neither moved, nor chmod'ed, nor removed. */
static int control_activated(struct fetchd *d, char *err, size_t errlen)
{
	char why[256];
	unsigned nfds;
	int fd, rc = sdlisten_fd(&fd, &nfds, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, errlen, "socket activation: %s", why);
		return -2;
	}
	if (fd < 0)
		return -1;
	struct sockaddr_un sun = { 0 };
	socklen_t len = sizeof(sun) - 1; /* keeps a NUL after the path */
	if (getsockname(fd, (struct sockaddr *)&sun, &len) < 0 || len <= offsetof(struct sockaddr_un, sun_path))
		sun.sun_path[0] = 0;
	log_info("socket activation: listening on %s (file descriptor %d from the service manager)",
		 sun.sun_path[0] ? sun.sun_path : "an unnamed socket", fd);
	if (nfds > 1)
		log_warn("socket activation: LISTEN_FDS=%u: only the first socket is used", nfds);
	if (sun.sun_path[0]) /* what logs and the access rule (the socket file's group) refer to */
		snprintf(d->conf.socket_path, sizeof(d->conf.socket_path), "%s", sun.sun_path);
	d->listen_activated = true;
	return fd;
}

int control_listen(struct fetchd *d, char *err, size_t errlen)
{
	if (control_clients_init(d, err, errlen) < 0)
		return -1;
	int fd = control_activated(d, err, errlen);
	if (fd == -1)
		fd = control_bind(d, err, errlen);
	if (fd < 0)
		return -1;
	d->listen_fd = fd;
	struct stat st;
	uint32_t gid = stat(d->conf.socket_path, &st) == 0 && S_ISSOCK(st.st_mode) ? (uint32_t)st.st_gid : ACCESS_NO_GID;
	if (access_init(&d->access, &d->conf, (uint32_t)geteuid(), gid) < 0) {
		snprintf(err, errlen, "[control] allow_uids or allow_gids: not a list of ids");
		return -1;
	}
	d->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* a spare, for running out (accept) */
	control_arm_accept(d);
	return 0;
}

void client_mark_dirty(struct fetchd *d, struct client *c)
{
	if (!c->dirty && c->state == CL_OPEN) {
		c->dirty = true;
		list_add_tail(&d->dirty, &c->dirty_link);
	}
}

/* Close the open RESULTS frame: write its header now that its length is known. */
void client_frame_close(struct client *c)
{
	if (c->open_frame == CONTROL_NO_FRAME)
		return;
	size_t len = c->out.len - c->open_frame - FETCHD_FRAME_HDR_BYTES;
	fetchd_frame_hdr(c->out.p + c->open_frame, (uint32_t)len, FETCHD_FR_RESULTS);
	c->open_frame = CONTROL_NO_FRAME;
}

void client_frame(struct client *c, uint8_t type, const char *payload, size_t len)
{
	uint8_t hdr[FETCHD_FRAME_HDR_BYTES];
	client_frame_close(c);
	fetchd_frame_hdr(hdr, (uint32_t)len, type);
	if (buf_append(&c->out, hdr, sizeof(hdr)) < 0 || buf_append(&c->out, payload, len) < 0)
		log_error("client %u: out of memory queueing a frame", c->id);
	c->flush_now = true;
}

/* Append one result line (JSON and its newline) to c's open RESULTS frame: encoded from r, or as
 * encoded already by a worker (line, len). */
static void client_result(struct fetchd *d, struct client *c, const struct result *r, const uint8_t *line,
			  size_t len)
{
	c->results++;
	d->results_sent++;
	if (c->out.len == 0)
		c->out_since_ns = d->now_ns;
	if (c->open_frame == CONTROL_NO_FRAME) {
		uint8_t hdr[FETCHD_FRAME_HDR_BYTES] = { 0 };
		c->open_frame = c->out.len;
		if (buf_append(&c->out, hdr, sizeof(hdr)) < 0)
			c->open_frame = CONTROL_NO_FRAME;
	}
	if (c->open_frame == CONTROL_NO_FRAME ||
	    (r ? result_encode(&c->out, r) : buf_append(&c->out, line, len)) < 0) {
		log_error("client %u: out of memory queueing a result", c->id);
		return;
	}
	if (c->out.len - c->open_frame > CONTROL_RESULTS_FRAME_BYTES)
		client_frame_close(c);
	client_mark_dirty(d, c);
}

static void client_maybe_free(struct fetchd *d, struct client *c);
static void client_free(struct fetchd *d, struct client *c);

/* A fetch came back from its worker: it no longer counts against its client. */
static void control_fetch_done(struct fetchd *d, struct fetch *f)
{
	struct client *c = f->client;
	list_del(&f->client_link);
	c->admitted--;
	c->admitted_bytes -= f->url_len;
	fetch_free(f);
	client_mark_dirty(d, c);
	client_maybe_free(d, c);
}

static void control_reroute(struct fetchd *d, struct fetch *f);

/* Capture bytes from a worker (capture.c): a CAPTURE frame, counted until acknowledged to it. */
static void client_capture(struct fetchd *d, struct client *c, const uint8_t *p, uint32_t len)
{
	if (c->cancelling || c->state != CL_OPEN || !c->cap_unacked)
		return;
	client_frame(c, FETCHD_FR_CAPTURE, (const char *)p, len);
	c->cap_unacked[d->results_worker] += len;
	client_mark_dirty(d, c);
}

/* Once what c has queued is under half its buffer, tell the workers that its capture bytes left. */
static void client_capture_ack(struct fetchd *d, struct client *c)
{
	if (!c->cap_unacked || c->out.len + c->sending.len - c->sent > d->conf.client_buffer_bytes / 2)
		return;
	for (uint32_t i = 0; i < d->nworkers; i++) {
		if (!c->cap_unacked[i])
			continue;
		worker_capture_ack(&d->workers[i], c->idx, c->gen, c->cap_unacked[i]);
		c->cap_unacked[i] = 0;
	}
}

static void control_record(void *arg, struct fetch *f, const uint8_t *line, uint32_t len)
{
	struct fetchd *d = arg;
	struct client *c = f->client;
	if (len == WORKER_REROUTE && !c->cancelling && c->state == CL_OPEN) {
		control_reroute(d, f);
		return;
	}
	if (len != WORKER_REROUTE && (len & WORKER_CAPTURE)) {
		client_capture(d, c, line, len & ~WORKER_CAPTURE);
		return;
	}
	if (len == WORKER_REROUTE)
		len = 0; /* the client went away while f was between workers */
	if (c->queue)
		queue_result_line(d, f, line, len);
	else if (len && !c->cancelling && c->state == CL_OPEN)
		client_result(d, c, NULL, line, len);
	else
		c->cancelled++;
	control_fetch_done(d, f);
}

void control_results(struct fetchd *d)
{
	for (uint32_t i = 0; i < d->nworkers; i++) {
		worker_take_results(&d->workers[i], &d->results);
		d->results_worker = i;
		worker_records(&d->results, control_record, d);
		d->results.len = 0;
		buf_trim(&d->results, CONTROL_KEEP_BYTES); /* it goes back to the worker as its outbox */
	}
}

uint32_t control_worker_of(const struct fetchd *d, const char *host)
{
	return worker_owner(&d->workers[0], host);
}

/* f follows a redirect: hand it to the worker that owns its new host (it stays the client's). */
static void control_reroute(struct fetchd *d, struct fetch *f)
{
	struct url u;
	const char *reason;
	if (url_parse(fetch_url(f), fetch_url_len(f), 1, &u, &reason) < 0) /* the worker parsed it already */
		u.host[0] = 0;
	uint32_t wi = control_worker_of(d, u.host);
	worker_submit(&d->workers[wi], f);
	d->wake_mask |= 1ull << wi;
}

/* A result for a line that never became a fetch (bad URL). */
void client_reject_line(struct fetchd *d, struct client *c, const char *line, size_t len, const char *cls,
			const char *fmt, const char *arg, uint32_t seq)
{
	struct result r;
	result_init(&r);
	r.url = line;
	r.url_len = len;
	r.err_class = cls;
	r.attempts = 0;
	r.seq = c->capture ? (int64_t)seq : -1;
	snprintf(r.err_msg, sizeof(r.err_msg), fmt, arg);
	d->stats.fetches_failed++;
	d->stats.errors[result_class_index(cls)]++;
	if (c->queue)
		queue_result(d, seq, &r);
	else
		client_result(d, c, &r, NULL, 0);
}

/* A URLS line: the URL, then TAB-separated options (opts.h) over the batch's. */
void client_admit_url(struct fetchd *d, struct client *c, const char *line, size_t line_len, uint32_t seq)
{
	const char *tab = memchr(line, '\t', line_len);
	size_t len = tab ? (size_t)(tab - line) : line_len;
	c->urls++;
	if (d->stopping) { /* draining: a line sent now is answered, not fetched */
		client_reject_line(d, c, line, len, "cancelled", "%s", "fetchd is stopping: not fetched", seq);
		return;
	}
	if (c->cancel_rest) {
		client_reject_line(d, c, line, len, "cancelled", "%s", "the job was cancelled: not fetched", seq);
		return;
	}
	if (len > d->conf.max_url_bytes) {
		char lim[32];
		snprintf(lim, sizeof(lim), "%u", d->conf.max_url_bytes);
		client_reject_line(d, c, line, d->conf.max_url_bytes, "url", "URL longer than max_url_bytes (%s)", lim, seq);
		return;
	}
	struct url u;
	const char *reason = "invalid URL";
	if (url_parse(line, len, 1, &u, &reason) < 0) {
		client_reject_line(d, c, line, len, "url", "%s", reason, seq);
		return;
	}
	struct fetch_opts o = c->opts;
	char extra[OPTS_EXTRA_MAX], why[OPTS_ERR_MAX];
	if (o.extra_len)
		memcpy(extra, c->extra, o.extra_len);
	if (tab && opts_parse(tab + 1, line_len - len - 1, &d->opts_default, &o, extra, sizeof(extra), why,
			      sizeof(why)) < 0) {
		client_reject_line(d, c, line, len, "url", "bad option: %s", why, seq);
		return;
	}
	struct fetch *f = calloc(1, sizeof(*f) + len + 1 + o.extra_len);
	if (!f) {
		client_reject_line(d, c, line, len, "internal", "%s", "out of memory", seq);
		return;
	}
	memcpy(f->url, line, len);
	f->opts = o;
	memcpy(f->url + len + 1, extra, o.extra_len);
	f->url_len = (uint32_t)len;
	f->target_off = (uint32_t)u.target_off, f->target_len = (uint32_t)u.target_len;
	f->userinfo_off = (uint32_t)u.userinfo_off, f->userinfo_len = (uint32_t)u.userinfo_len;
	f->client = c;
	f->client_idx = c->idx;
	f->client_gen = c->gen;
	f->hash = c->hash;
	f->capture = c->capture;
	f->seq = seq;
	list_init(&f->wlink);
	list_add_tail(&c->fetches, &f->client_link);
	c->admitted++;
	c->admitted_bytes += len;
	uint32_t wi = control_worker_of(d, u.host); /* a name always goes to the same worker */
	worker_submit(&d->workers[wi], f);
	d->wake_mask |= 1ull << wi;
}

static bool client_can_admit(const struct fetchd *d, const struct client *c)
{
	return !d->stopping && c->state == CL_OPEN && c->admitted < d->window &&
	       c->admitted_bytes + c->out.len + c->sending.len < d->conf.client_buffer_bytes;
}


/* Admit lines of the current URLS frame. Returns false when paused (window full) or failed. While
 * fetchd drains, nothing pauses: each line gets its "cancelled" result at once (client_admit_url). */
static bool client_admit_lines(struct fetchd *d, struct client *c)
{
	while (c->in_off < c->urls_end) {
		if (!d->stopping && !c->cancel_rest && !client_can_admit(d, c))
			return false;
		const char *line;
		size_t len, used;
		if (proto_line(c->in.p + c->in_off, c->urls_end - c->in_off, &line, &len, &used) != PROTO_OK) {
			client_fatal(d, c, "URLS frame does not end with a newline");
			return false;
		}
		c->in_off += used;
		client_admit_url(d, c, line, len, (uint32_t)c->urls);
	}
	c->urls_end = 0;
	return true;
}

/* A session that asks instead of fetching: one INFO frame, then the daemon closes. */
static void client_verb(struct fetchd *d, struct client *c, const struct proto_hello *h)
{
	const char *verb = h->verb;
	if (jobs_verb(d, c, h))
		return;
	if (!info_verb_known(verb)) {
		char msg[128];
		snprintf(msg, sizeof(msg), "unknown verb '%s' (this fetchd knows: ping, stats, jobs, status, cancel, "
			 "results)", verb);
		client_fatal(d, c, msg);
		return;
	}
	struct buf b = { 0 };
	info_answer(d, verb, &b);
	client_frame(c, FETCHD_FR_INFO, (const char *)b.p, b.len);
	buf_free(&b);
	c->hello_done = c->end_seen = c->done_queued = true;
	client_mark_dirty(d, c);
}

static void client_hello(struct fetchd *d, struct client *c, const char *p, size_t len)
{
	struct proto_hello h;
	char msg[OPTS_ERR_MAX + 32];
	int rc = proto_hello((const uint8_t *)p, len, &h);
	if (rc != PROTO_OK) {
		if (rc == PROTO_E_OPTIONS)
			snprintf(msg, sizeof(msg), "HELLO \"options\" must be a string of at most %zu bytes",
				 sizeof(h.options) - 4);
		else if (rc == PROTO_E_CAPTURE)
			snprintf(msg, sizeof(msg), "HELLO \"capture\" must be \"raw\", \"body\" or \"raw,body\"");
		else if (rc == PROTO_E_VERB)
			snprintf(msg, sizeof(msg), "HELLO \"verb\" must be a string of at most %zu bytes",
				 sizeof(h.verb) - 4);
		else
			snprintf(msg, sizeof(msg), "unsupported protocol version %lld (this fetchd speaks %d)",
				 (long long)h.protocol, FETCHD_PROTO_VERSION);
		client_fatal(d, c, msg);
		return;
	}
	if (h.verb[0]) {
		client_verb(d, c, &h);
		return;
	}
	if (h.detach) {
		jobs_submit(d, c, &h);
		return;
	}
	client_batch(d, c, &h);
}

/* The batch's settings from its HELLO, then WELCOME. */
void client_batch(struct fetchd *d, struct client *c, const struct proto_hello *hp)
{
	const struct proto_hello h = *hp;
	char msg[OPTS_ERR_MAX + 32], why[OPTS_ERR_MAX], extra[OPTS_EXTRA_MAX];
	c->hash = h.hash; /* "hash": false: no body_sha256, less CPU */
	if (h.capture && !(c->cap_unacked = calloc(d->nworkers, sizeof(*c->cap_unacked)))) {
		client_fatal(d, c, "out of memory");
		return;
	}
	c->capture = h.capture;
	c->opts = d->opts_default;
	if (opts_parse(h.options, (size_t)(h.options_len > 0 ? h.options_len : 0), &d->opts_default, &c->opts,
		       extra, sizeof(extra), why, sizeof(why)) < 0) {
		snprintf(msg, sizeof(msg), "bad batch option: %s", why);
		client_fatal(d, c, msg);
		return;
	}
	if (c->opts.extra_len) {
		if (!(c->extra = malloc(c->opts.extra_len))) {
			client_fatal(d, c, "out of memory");
			return;
		}
		memcpy(c->extra, extra, c->opts.extra_len);
	}
	char w[192];
	int n = snprintf(w, sizeof(w), "{\"protocol\":%d,\"server\":\"fetchd/%s\",\"max_url_bytes\":%u%s%s%s}",
			 FETCHD_PROTO_VERSION, FETCHD_VERSION, d->conf.max_url_bytes, c->job_in ? ",\"job\":\"" : "",
			 c->job_in ? jobs_id(c->job_in) : "", c->job_in ? "\"" : "");
	client_frame(c, FETCHD_FR_WELCOME, w, (size_t)n);
	c->hello_done = true;
	client_mark_dirty(d, c);
}

/* Handle one complete frame at in_off. Returns false when the client failed. */
static bool client_frame_in(struct fetchd *d, struct client *c, uint8_t type, const char *p, uint32_t len)
{
	if (c->done_queued)
		return true; /* answered (a verb, or DONE): whatever follows is ignored */
	if (c->job_in && (type == FETCHD_FR_URLS || type == FETCHD_FR_END))
		return jobs_frame_in(d, c, type, p, len);
	if (!c->hello_done && type != FETCHD_FR_HELLO) {
		client_fatal(d, c, "the first frame must be HELLO");
		return false;
	}
	switch (type) {
	case FETCHD_FR_HELLO:
		if (c->hello_done) {
			client_fatal(d, c, "HELLO sent twice");
			return false;
		}
		client_hello(d, c, p, len);
		return c->hello_done; /* after a rejected HELLO, nothing more is read */
	case FETCHD_FR_URLS:
		if (c->end_seen) {
			client_fatal(d, c, "URLS after END");
			return false;
		}
		c->urls_end = c->in_off + FETCHD_FRAME_HDR_BYTES + len;
		return true;
	case FETCHD_FR_END:
		c->end_seen = true;
		return true;
	default: {
		char msg[64];
		snprintf(msg, sizeof(msg), "unknown frame type 0x%02x", type);
		client_fatal(d, c, msg);
		return false;
	}
	}
}

static void client_arm_recv(struct fetchd *d, struct client *c)
{
	if (c->recv_armed || c->state != CL_OPEN || c->end_seen)
		return;
	if (c->job) { /* a job reads its URLs file instead of a socket */
		jobs_feed(d, c);
		return;
	}
	if (c->queue)
		return; /* its URLs come from the queue's reader thread (queue_take) */
	/* Compact, then make room for at least the frame that is partly here. */
	buf_consume(&c->in, c->in_off);
	c->in_off = 0;
	size_t want = CONTROL_IN_MIN_BYTES;
	if (c->in.len >= FETCHD_FRAME_HDR_BYTES)
		want = FETCHD_FRAME_HDR_BYTES + (size_t)fetchd_frame_len(c->in.p);
	if (want < c->in.len + 4096)
		want = c->in.len + 4096;
	if (buf_reserve(&c->in, want - c->in.len) < 0) {
		client_fatal(d, c, "out of memory");
		return;
	}
	ring_recv(&d->ring, c->fd, c->in.p + c->in.len, (uint32_t)(c->in.cap - c->in.len), client_ud(c, OP_CLIENT_RECV));
	c->recv_armed = true;
	c->ops++;
}

/* Work through buffered input: frames, and URLs while the window allows. */
static void client_process(struct fetchd *d, struct client *c)
{
	while (c->state == CL_OPEN) {
		if (c->urls_end && !client_admit_lines(d, c))
			return; /* paused until results drain, or failed */
		struct proto_frame f;
		int rc = proto_frame(c->in.p + c->in_off, c->in.len - c->in_off, &f);
		if (rc == PROTO_NEED_MORE)
			break;
		if (rc < 0) {
			client_fatal(d, c, "frame larger than the protocol allows");
			return;
		}
		if (!client_frame_in(d, c, f.type, (const char *)f.payload, f.len))
			return;
		if (c->urls_end)
			c->in_off += FETCHD_FRAME_HDR_BYTES; /* lines are admitted from here */
		else
			c->in_off += f.size;
	}
	if (c->state == CL_OPEN && !c->recv_armed && !c->end_seen)
		client_arm_recv(d, c);
}

/* A closing client is freed once no ring op and no fetch refers to it any more. */
static void client_maybe_free(struct fetchd *d, struct client *c)
{
	if (c->state == CL_CLOSING && c->ops == 0 && c->admitted == 0)
		client_free(d, c);
}

static void client_free(struct fetchd *d, struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->sending);
	free(c->extra);
	c->extra = NULL;
	free(c->cap_unacked);
	c->cap_unacked = NULL;
	c->capture = 0;
	c->state = CL_FREE;
	c->gen = (c->gen + 1) & RING_GEN_MASK;
	if (c->queue)
		return; /* the queue's slot: freed only at the end */
	if (c->idx >= d->conf.max_clients) { /* a job's slot: never a socket's */
		jobs_client_freed(d, c);
		return;
	}
	d->client_free[d->nclient_free++] = c->idx;
	d->nclients--;
	control_reserve(d); /* spent on a shortage: a descriptor just came free */
	control_arm_accept(d); /* a slot is free again */
}

/* Ask every worker to drop c's fetches; they come back (as cancelled, or with results that are
 * dropped) and are freed then. */
static void client_cancel_fetches(struct fetchd *d, struct client *c)
{
	if (c->cancelling || c->admitted == 0)
		return;
	c->cancelling = true;
	for (uint32_t i = 0; i < d->nworkers; i++)
		worker_cancel_client(&d->workers[i], c->idx, c->gen, false);
}

void client_close(struct fetchd *d, struct client *c, const char *reason)
{
	if (c->state != CL_OPEN)
		return;
	jobs_client_closed(d, c);
	client_cancel_fetches(d, c);
	if (c->dirty) {
		list_del(&c->dirty_link);
		c->dirty = false;
	}
	c->state = CL_CLOSING;
	c->close_reason = reason;
	log_info("client %u closed: %s urls=%llu results=%llu cancelled=%u", c->id, reason,
		 (unsigned long long)c->urls, (unsigned long long)c->results, c->cancelled + c->admitted);
	if (c->ops == 0) {
		client_maybe_free(d, c);
		return;
	}
	static const uint8_t ops[] = { OP_CLIENT_RECV, OP_CLIENT_SEND, OP_CLIENT_RDHUP };
	const bool armed[] = { c->recv_armed, c->send_armed, c->rdhup_armed };
	for (size_t i = 0; i < sizeof(ops); i++) {
		if (armed[i]) {
			ring_cancel(&d->ring, client_ud(c, ops[i]), client_ud(c, OP_CLIENT_CANCEL));
			c->ops++;
		}
	}
}

/* A protocol error: cancel the batch, tell the client why, close once that is sent. */
void client_fatal(struct fetchd *d, struct client *c, const char *msg)
{
	log_warn("client %u (pid %d uid %u): %s", c->id, (int)c->pid, (unsigned)c->uid, msg);
	client_cancel_fetches(d, c);
	struct buf b = { 0 };
	buf_append(&b, "{\"error\":", 9);
	json_str(&b, msg, strlen(msg));
	buf_append(&b, "}", 1);
	client_frame(c, FETCHD_FR_ERROR, (const char *)b.p, b.len);
	buf_free(&b);
	c->end_seen = true;
	c->done_queued = true; /* close after the frame is out */
	c->urls_end = 0;
	client_mark_dirty(d, c);
}

/* Hold results back until enough are pending or the oldest has waited long enough. */
static bool client_hold(struct fetchd *d, struct client *c)
{
	if (c->flush_now || c->out.len >= CONTROL_FLUSH_BYTES || c->done_queued)
		return false;
	int64_t due = c->out_since_ns + CONTROL_FLUSH_DELAY_NS;
	if (d->now_ns >= due)
		return false;
	if (!c->flush_timer) {
		c->flush_timer = true;
		fetchd_timer(d, due, TK_CLIENT, c->gen, c->idx);
	}
	return true;
}

void control_accept_retry(struct fetchd *d)
{
	control_reserve(d);
	control_arm_accept(d);
}

void control_on_timer(struct fetchd *d, uint32_t idx, uint32_t gen)
{
	struct client *c = idx < d->client_cap ? &d->clients[idx] : NULL;
	if (!c || c->gen != gen || c->state != CL_OPEN)
		return;
	c->flush_timer = false;
	client_mark_dirty(d, c);
}

static void client_flush(struct fetchd *d, struct client *c)
{
	if (c->job) { /* a job's output goes to its results file */
		if (c->state == CL_OPEN)
			jobs_flush(d, c);
		return;
	}
	if (c->collect)
		jobs_collect(d, c);
	if (c->send_armed || c->state != CL_OPEN)
		return;
	if (c->sending.len == 0) {
		if (c->out.len == 0) {
			if (c->done_queued)
				client_close(d, c, "batch complete");
			return;
		}
		if (client_hold(d, c))
			return;
		c->flush_now = false;
		client_frame_close(c);
		struct buf t = c->sending;
		c->sending = c->out;
		c->out = t;
		c->out.len = 0;
		c->sent = 0;
	}
	ring_send(&d->ring, c->fd, c->sending.p + c->sent, (uint32_t)(c->sending.len - c->sent),
		  client_ud(c, OP_CLIENT_SEND));
	c->send_armed = true;
	c->ops++;
}

static void client_check_done(struct fetchd *d, struct client *c)
{
	if (!c->end_seen || c->done_queued || c->admitted || c->urls_end || c->collect)
		return; /* anything a client sends after END is ignored; a collector ends with its job's DONE */
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "{\"results\":%llu}", (unsigned long long)c->results);
	client_frame(c, FETCHD_FR_DONE, msg, (size_t)n);
	c->done_queued = true;
}

void control_service(struct fetchd *d)
{
	struct link *l;
	while ((l = list_pop(&d->dirty))) {
		struct client *c = list_entry(l, struct client, dirty_link);
		c->dirty = false;
		if (c->state != CL_OPEN)
			continue;
		if (!c->done_queued)
			client_process(d, c);
		if (c->state == CL_OPEN && !c->done_queued)
			client_check_done(d, c);
		if (d->drain_over && c->state == CL_OPEN && !c->done_queued && c->admitted == 0)
			client_fatal(d, c, "fetchd is stopping"); /* it had every result for what it sent */
		client_flush(d, c);
	}
	for (uint32_t i = 0; d->wake_mask; i++, d->wake_mask >>= 1)
		if (d->wake_mask & 1)
			worker_wake(&d->workers[i]);
}

/* Tell a connecting peer why it is turned away (one ERROR frame, best effort), log it, close. */
static void control_refuse(struct fetchd *d, int fd, const char *why, const struct ucred *cred)
{
	struct buf b = { 0 };
	uint8_t hdr[FETCHD_FRAME_HDR_BYTES] = { 0 };
	buf_append(&b, hdr, sizeof(hdr));
	buf_append(&b, "{\"error\":", 9);
	json_str(&b, why, strlen(why));
	buf_append(&b, "}", 1);
	if (b.len > FETCHD_FRAME_HDR_BYTES) {
		fetchd_frame_hdr(b.p, (uint32_t)(b.len - FETCHD_FRAME_HDR_BYTES), FETCHD_FR_ERROR);
		ssize_t sent = send(fd, b.p, b.len, MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)sent;
	}
	buf_free(&b);
	close(fd);
	log_warn("refused a client: %s (pid=%d uid=%u max_clients=%u)", why, (int)cred->pid, (unsigned)cred->uid,
		 d->conf.max_clients);
	control_reserve(d);
}

void client_slot_open(struct fetchd *d, struct client *c, int fd, pid_t pid, uid_t uid)
{
	uint32_t idx = c->idx, gen = c->gen;
	memset(c, 0, sizeof(*c));
	c->idx = idx, c->gen = gen, c->fd = fd;
	c->state = CL_OPEN;
	c->id = ++d->next_client_id;
	c->open_frame = CONTROL_NO_FRAME;
	list_init(&c->fetches);
	list_init(&c->dirty_link);
	c->pid = pid, c->uid = uid;
}

/* A peer that may connect: take a free slot, and start reading its frames. */
static void control_client_open(struct fetchd *d, int fd, const struct ucred *cred)
{
	struct client *c = &d->clients[d->client_free[--d->nclient_free]];
	client_slot_open(d, c, fd, cred->pid, cred->uid);
	d->nclients++;
	log_info("client %u connected pid=%d uid=%u", c->id, (int)c->pid, (unsigned)c->uid);
	ring_poll(&d->ring, fd, POLLRDHUP, client_ud(c, OP_CLIENT_RDHUP));
	c->rdhup_armed = true;
	c->ops++;
	client_arm_recv(d, c);
}

static void control_on_accept(struct fetchd *d, int res)
{
	d->accept_armed = false;
	control_reserve(d); /* the shortage may be over */
	if (res < 0) {
		if (res != -ECANCELED)
			log_warn("accept: %s", strerror(-res));
		if ((res == -EMFILE || res == -ENFILE) && d->reserve_fd >= 0) {
			/* Out of descriptors: give up the spare one, so the waiting client can at least be
			 * told why (below) instead of waiting forever in the backlog. */
			close(d->reserve_fd);
			d->reserve_fd = -1;
		} else if (res == -EMFILE || res == -ENFILE) {
			fetchd_timer(d, d->now_ns + CONTROL_ACCEPT_RETRY_NS, TK_ACCEPT, 0, 0); /* no busy loop */
			return;
		}
		control_arm_accept(d);
		return;
	}
	int fd = res;
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t clen = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0)
		cred.uid = (uid_t)-1, cred.gid = (gid_t)-1; /* unknown: only the lists could allow it, and do not */
	char denied[96];
	const char *refuse = d->stopping ? "fetchd is stopping"
			     : d->reserve_fd < 0 ? "fetchd is out of file descriptors"
			     : d->nclient_free == 0 ? "too many clients" : NULL;
	if (!refuse && access_check(&d->access, fd, &cred) < 0) {
		snprintf(denied, sizeof(denied), "permission denied: uid %u is not allowed (see [control] allow_uids)",
			 (unsigned)cred.uid);
		refuse = denied;
	}
	if (refuse)
		control_refuse(d, fd, refuse, &cred);
	else
		control_client_open(d, fd, &cred);
	control_arm_accept(d);
}

static void client_on_recv(struct fetchd *d, struct client *c, int res)
{
	c->recv_armed = false;
	if (c->state != CL_OPEN)
		return;
	if (res <= 0) {
		client_close(d, c, res == 0 ? "client went away" : strerror(-res));
		return;
	}
	ring_mark_written(c->in.p + c->in.len, (size_t)res);
	c->in.len += (size_t)res;
	log_debug("client %u: received %d bytes (buffered %zu)", c->id, res, c->in.len - c->in_off);
	client_mark_dirty(d, c);
}

static void client_on_send(struct fetchd *d, struct client *c, int res)
{
	c->send_armed = false;
	if (c->state != CL_OPEN)
		return;
	if (res <= 0) {
		client_close(d, c, res == 0 ? "client stopped reading" : strerror(-res));
		return;
	}
	c->sent += (size_t)res;
	if (c->sent == c->sending.len) {
		c->sending.len = 0;
		c->sent = 0;
		buf_trim(&c->sending, CONTROL_KEEP_BYTES);
	}
	client_capture_ack(d, c);
	client_mark_dirty(d, c);
}

void control_on_cqe(struct fetchd *d, const struct ring_cqe *cqe)
{
	uint8_t op = ring_ud_op(cqe->user_data);
	if (op == OP_ACCEPT) {
		control_on_accept(d, cqe->res);
		return;
	}
	uint32_t idx = ring_ud_idx(cqe->user_data);
	struct client *c = idx < d->client_cap ? &d->clients[idx] : NULL;
	if (!c || c->gen != ring_ud_gen(cqe->user_data) || c->state == CL_FREE) {
		d->stats.stale_cqes++;
		log_error("stale client completion op=%u idx=%u dropped", op, idx);
		return;
	}
	if (op == OP_CLIENT_RECV)
		client_on_recv(d, c, cqe->res);
	else if (op == OP_CLIENT_SEND)
		client_on_send(d, c, cqe->res);
	else if (op == OP_CLIENT_RDHUP) {
		c->rdhup_armed = false;
		if (cqe->res > 0)
			client_close(d, c, "client hung up");
	}
	c->ops--;
	client_maybe_free(d, c);
}

void control_stop(struct fetchd *d)
{
	if (d->listen_fd >= 0) {
		close(d->listen_fd); /* the armed accept completes with an error or is cancelled at exit */
		d->listen_fd = -1;
		if (!d->listen_activated) /* systemd's socket stays for the next start */
			unlink(d->conf.socket_path);
	}
	for (uint32_t i = 0; i < d->client_cap; i++) /* URLs they still send get "cancelled" results */
		if (d->clients[i].state == CL_OPEN)
			client_mark_dirty(d, &d->clients[i]);
}

void control_drain_over(struct fetchd *d)
{
	d->drain_over = true;
	for (uint32_t i = 0; i < d->client_cap; i++) {
		struct client *c = &d->clients[i];
		if (c->state != CL_OPEN || c->cancelling || c->admitted == 0)
			continue;
		for (uint32_t k = 0; k < d->nworkers; k++)
			worker_cancel_client(&d->workers[k], c->idx, c->gen, true);
	}
	for (uint32_t i = 0; i < d->client_cap; i++)
		if (d->clients[i].state == CL_OPEN)
			client_mark_dirty(d, &d->clients[i]);
}

void control_fini(struct fetchd *d)
{
	for (uint32_t i = 0; d->clients && i < d->client_cap; i++) {
		struct client *c = &d->clients[i];
		if (c->state == CL_FREE)
			continue;
		struct link *l;
		while ((l = list_pop(&c->fetches)))
			fetch_free(list_entry(l, struct fetch, client_link));
		if (c->fd >= 0)
			close(c->fd);
		buf_free(&c->in);
		buf_free(&c->out);
		buf_free(&c->sending);
		free(c->extra);
	}
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		if (!d->listen_activated)
			unlink(d->conf.socket_path);
	}
	free(d->clients);
	free(d->client_free);
	if (d->reserve_fd >= 0)
		close(d->reserve_fd);
}

/* worker.c - a worker thread: one ring, its timers, its hosts, connections and DNS channel. It takes
 * fetches and cancellations from its inbox (filled by the control thread), runs them, and puts each
 * result in its outbox. The open-connection budget (max_inflight) is shared by all workers through
 * one atomic; a worker beyond its fair share gives idle connections back when another one waits. */
#include "daemon/fetchd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <semaphore.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "daemon/hash.h"
#include "daemon/log.h"
#include "daemon/result.h"

#define WORKER_BATCH_DIV 16          /* wait for inflight/16 completions per loop turn ... */
#define WORKER_BATCH_MAX 32          /* ... at most this many ... */
#define WORKER_BATCH_WAIT_NS 500000  /* ... or 0.5 ms, whichever comes first */
#define WORKER_STOP_GRACE_NS (2LL * 1000000000)
#define WORKER_OUT_KEEP_BYTES (256 * 1024) /* outbox memory kept between turns */

/* An outbox record: the fetch, then the length of its JSON line (0: cancelled, no line), then it; or
 * WORKER_REROUTE and nothing; or WORKER_CAPTURE | length, then capture bytes (capture.c). */
struct worker_record {
	struct fetch *f;
	uint32_t len;
};

static void worker_free_session(void *s)
{
	tls_session_free(s);
}

int worker_init(struct worker *w, uint32_t id, const struct conf *c, struct shared *sh, uint32_t client_cap,
		struct tls_config *tls_cfg, const char *tls_cfg_error, char *err, size_t errlen)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->conf = *c;
	w->sh = sh;
	w->efd = -1;
	w->quota = c->max_inflight / sh->nworkers ? c->max_inflight / sh->nworkers : 1;
	w->now_ns = ring_now_ns();
	w->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)w->now_ns * 2654435761u) ^ ((uint64_t)id << 32 | id);
	if (!w->rng)
		w->rng = 1;
	list_init(&w->ready);
	list_init(&w->deferred);
	list_init(&w->tls_wait);
	list_init(&w->idle_lru);
	list_init(&w->nobufs);
	list_init(&w->in_fetches);
	pthread_mutex_init(&w->in_lock, NULL);
	pthread_mutex_init(&w->out_lock, NULL);
	w->client_cap = client_cap;
	w->tls_cfg = tls_cfg;
	w->tls_cfg_error = tls_cfg_error;
	if (c->tls_session_cache_size &&
	    !(w->tls_sessions = lrumap_new(c->tls_session_cache_size, worker_free_session))) {
		snprintf(err, errlen, "out of memory for the TLS session cache");
		return -1;
	}
	w->client_fetches = calloc(client_cap, sizeof(*w->client_fetches));
	w->captures = calloc(client_cap, sizeof(*w->captures));
	if (!w->client_fetches || !w->captures) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (uint32_t i = 0; i < client_cap; i++) {
		list_init(&w->client_fetches[i]);
		list_init(&w->captures[i].paused);
	}
	if (addrpolicy_parse(&w->policy, c->allow_addresses, c->deny_addresses, err, errlen) < 0)
		return -1;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0 || ring_timers_init(&w->timers, 1024) < 0 || sched_init(w) < 0) {
		snprintf(err, errlen, "worker %u: %s", id, w->efd < 0 ? strerror(errno) : "out of memory");
		return -1;
	}
	if (robotstxt_init(w, err, errlen) < 0)
		return -1;
	return dns_init(w, err, errlen);
}

/* Which worker owns a host name: the control thread hands a name's fetches to that one. */
uint32_t worker_owner(const struct worker *w, const char *host)
{
	/* The high half picks the worker: the low bits index the worker's own tables by the same hash. */
	return (hash_str(host) >> 16) % w->sh->nworkers;
}

void worker_timer(struct worker *w, int64_t deadline_ns, uint8_t kind, uint32_t gen, uint32_t idx)
{
	if (ring_timers_add(&w->timers, deadline_ns, ring_ud(kind, gen, idx)) < 0)
		log_error("worker %u: timer heap: out of memory", w->id);
}

void worker_wake(struct worker *w)
{
	uint64_t one = 1;
	ssize_t n = write(w->efd, &one, sizeof(one));
	(void)n; /* EAGAIN: the counter is saturated, a wake-up is pending anyway */
}

/* ---- budget ---------------------------------------------------------------------------------- */

static uint64_t worker_bit(const struct worker *w)
{
	return 1ull << w->id;
}

bool worker_budget_take(struct worker *w)
{
	struct shared *sh = w->sh;
	uint32_t cur = atomic_load(&sh->open);
	for (;;) {
		if (cur >= sh->max_open)
			return false;
		/* Beyond its fair share, a worker takes only what nobody else waits for. */
		if (w->nopen >= w->quota && (atomic_load(&sh->hungry) & ~worker_bit(w)))
			return false;
		if (atomic_compare_exchange_weak(&sh->open, &cur, cur + 1))
			return true;
	}
}

void worker_budget_give(struct worker *w)
{
	struct shared *sh = w->sh;
	atomic_fetch_sub(&sh->open, 1);
	uint64_t others = atomic_load(&sh->hungry) & ~worker_bit(w);
	for (uint32_t i = 0; others; i++, others >>= 1)
		if (others & 1)
			worker_wake(&sh->workers[i]);
}

void worker_hungry(struct worker *w, bool hungry)
{
	if (hungry)
		atomic_fetch_or(&w->sh->hungry, worker_bit(w));
	else if (atomic_load(&w->sh->hungry) & worker_bit(w))
		atomic_fetch_and(&w->sh->hungry, ~worker_bit(w));
}

/* ---- inbox (control thread writes, worker drains) ---------------------------------------------- */

void worker_submit(struct worker *w, struct fetch *f)
{
	pthread_mutex_lock(&w->in_lock);
	list_add_tail(&w->in_fetches, &f->queue_link);
	pthread_mutex_unlock(&w->in_lock);
}

void worker_cancel_client(struct worker *w, uint32_t idx, uint32_t gen, bool report)
{
	pthread_mutex_lock(&w->in_lock);
	if (w->in_ncancels == w->in_cancel_cap) {
		uint32_t cap = w->in_cancel_cap ? 2 * w->in_cancel_cap : 16;
		struct cancel_msg *n = realloc(w->in_cancels, cap * sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&w->in_lock);
			log_error("worker %u: out of memory queueing a cancellation", w->id);
			return;
		}
		w->in_cancels = n;
		w->in_cancel_cap = cap;
	}
	w->in_cancels[w->in_ncancels++] = (struct cancel_msg){ idx, gen, report };
	pthread_mutex_unlock(&w->in_lock);
	worker_wake(w);
}

void worker_stop(struct worker *w)
{
	pthread_mutex_lock(&w->in_lock);
	w->in_stop = true;
	pthread_mutex_unlock(&w->in_lock);
	worker_wake(w);
}

uint64_t worker_random(struct worker *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

/* What waited in the waitheap and is due now. */
static void worker_waits(struct worker *w)
{
	struct wait_node *n;
	while ((n = waitheap_pop_due(&w->waits, w->now_ns))) {
		if (n->kind == WAIT_FETCH)
			fetch_retry_due(w, (struct fetch *)((char *)n - offsetof(struct fetch, wait)));
		else if (n->kind == WAIT_HOST)
			sched_host_changed(w, (struct host *)((char *)n - offsetof(struct host, wait))); /* delay over */
	}
}

static void worker_admit(struct worker *w, struct fetch *f)
{
	struct url u;
	const char *reason;
	wait_node_init(&f->wait, WAIT_FETCH);
	list_init(&f->queue_link);
	list_add_tail(&w->client_fetches[f->client_idx], &f->wlink);
	if (url_parse(fetch_url(f), fetch_url_len(f), 1, &u, &reason) < 0) { /* the control thread parsed it already */
		fetch_fail(w, f, "internal", NULL, "URL no longer parses: %s", reason);
		return;
	}
	sched_admit(w, f, &u);
}

static void worker_cancel(struct worker *w, const struct cancel_msg *m)
{
	struct link *head = &w->client_fetches[m->idx];
	for (struct link *l = head->next, *next; l != head; l = next) {
		next = l->next;
		struct fetch *f = list_entry(l, struct fetch, wlink);
		if (f->client_gen != m->gen)
			continue;
		sched_cancel(w, f);
		if (m->report)
			fetch_cancelled(w, f);
		else
			worker_result(w, f, NULL);
	}
}

/* A reloaded configuration (fetchd_reload checked it; keys that need a restart are unchanged).
 * Fetches already admitted keep the options they were admitted with. */
static void worker_apply_conf(struct worker *w, struct conf *c)
{
	struct addrpolicy p;
	char err[256];
	if (addrpolicy_parse(&p, c->allow_addresses, c->deny_addresses, err, sizeof(err)) < 0) {
		log_error("worker %u: reload: [security]: %s; keeping the old address policy", w->id, err);
		snprintf(c->allow_addresses, sizeof(c->allow_addresses), "%s", w->conf.allow_addresses);
		snprintf(c->deny_addresses, sizeof(c->deny_addresses), "%s", w->conf.deny_addresses);
	} else {
		w->policy = p;
	}
	w->conf = *c;
	free(c);
	robotstxt_reconf(w);
}

void worker_reconf(struct worker *w, const struct conf *c)
{
	struct conf *copy = malloc(sizeof(*copy));
	if (!copy) {
		log_error("worker %u: reload: out of memory; it keeps the old configuration", w->id);
		return;
	}
	*copy = *c;
	pthread_mutex_lock(&w->in_lock);
	free(w->in_conf);
	w->in_conf = copy;
	pthread_mutex_unlock(&w->in_lock);
	worker_wake(w);
}

static void worker_drain_inbox(struct worker *w)
{
	struct link fetches;
	list_init(&fetches);
	pthread_mutex_lock(&w->in_lock);
	if (!list_empty(&w->in_fetches)) { /* splice the whole list */
		fetches.next = w->in_fetches.next;
		fetches.prev = w->in_fetches.prev;
		fetches.next->prev = &fetches;
		fetches.prev->next = &fetches;
		list_init(&w->in_fetches);
	}
	struct cancel_msg *cancels = w->in_cancels;
	uint32_t ncancels = w->in_ncancels;
	w->in_cancels = NULL;
	w->in_ncancels = w->in_cancel_cap = 0;
	bool stop = w->in_stop;
	struct conf *conf = w->in_conf;
	w->in_conf = NULL;
	struct capture_ack_msg *acks = w->in_acks;
	uint32_t nacks = w->in_nacks;
	w->in_acks = NULL;
	w->in_nacks = w->in_ack_cap = 0;
	pthread_mutex_unlock(&w->in_lock);
	if (conf)
		worker_apply_conf(w, conf);
	for (uint32_t i = 0; i < nacks; i++)
		capture_ack(w, acks[i].idx, acks[i].gen, acks[i].bytes);
	free(acks);
	struct link *l;
	while ((l = list_pop(&fetches)))
		worker_admit(w, list_entry(l, struct fetch, queue_link));
	for (uint32_t i = 0; i < ncancels; i++) /* after the fetches: they were sent before */
		worker_cancel(w, &cancels[i]);
	free(cancels);
	if (stop && !w->stopping) {
		w->stopping = true;
		conn_close_idle_all(w);
	}
}

/* ---- outbox (worker writes, control thread takes) ---------------------------------------------- */

void worker_result(struct worker *w, struct fetch *f, const struct result *r)
{
	if (list_linked(&f->wlink))
		list_del(&f->wlink);
	struct worker_record rec = { f, 0 };
	size_t at = w->out_local.len;
	if (buf_append(&w->out_local, &rec, sizeof(rec)) < 0 || (r && result_encode(&w->out_local, r) < 0)) {
		/* out of memory: hand the fetch back without its line rather than lose it */
		w->out_local.len = at;
		if (buf_append(&w->out_local, &rec, sizeof(rec)) < 0)
			log_error("worker %u: out of memory returning a fetch", w->id);
		return;
	}
	rec.len = (uint32_t)(w->out_local.len - at - sizeof(rec));
	memcpy(w->out_local.p + at, &rec, sizeof(rec));
}

/* Capture bytes for f's client: hdr (seq, kind), then p[0..n). Returns 0, or -1 (out of memory: the
 * bytes are lost, and the client learns it from a result whose exchange never ended). */
int worker_capture(struct worker *w, struct fetch *f, const uint8_t *hdr, const void *p, size_t n)
{
	struct worker_record rec = { f, WORKER_CAPTURE | (uint32_t)(FETCHD_CAPTURE_HDR_BYTES + n) };
	size_t at = w->out_local.len;
	if (buf_append(&w->out_local, &rec, sizeof(rec)) < 0 ||
	    buf_append(&w->out_local, hdr, FETCHD_CAPTURE_HDR_BYTES) < 0 || buf_append(&w->out_local, p, n) < 0) {
		w->out_local.len = at;
		log_error("worker %u: out of memory capturing %zu bytes", w->id, n);
		return -1;
	}
	return 0;
}

void worker_capture_ack(struct worker *w, uint32_t idx, uint32_t gen, uint64_t bytes)
{
	pthread_mutex_lock(&w->in_lock);
	if (w->in_nacks == w->in_ack_cap) {
		uint32_t cap = w->in_ack_cap ? 2 * w->in_ack_cap : 16;
		struct capture_ack_msg *p = realloc(w->in_acks, cap * sizeof(*p));
		if (!p) {
			pthread_mutex_unlock(&w->in_lock);
			log_error("worker %u: out of memory acknowledging capture bytes", w->id);
			return;
		}
		w->in_acks = p, w->in_ack_cap = cap;
	}
	w->in_acks[w->in_nacks++] = (struct capture_ack_msg){ idx, gen, bytes };
	pthread_mutex_unlock(&w->in_lock);
	worker_wake(w);
}

void worker_reroute(struct worker *w, struct fetch *f)
{
	if (list_linked(&f->wlink))
		list_del(&f->wlink);
	struct worker_record rec = { f, WORKER_REROUTE };
	if (buf_append(&w->out_local, &rec, sizeof(rec)) < 0)
		fetch_fail(w, f, "internal", NULL, "out of memory following a redirect");
}

#define WORKER_PUB_NS (100 * 1000000LL)

/* The copy of the counters the stats verb reads; out_lock held. */
static void worker_pub_copy(struct worker *w)
{
	w->pub.stats = w->stats;
	w->pub.inflight = w->inflight;
	w->pub.nopen = w->nopen;
	w->pub.nhosts = w->nhosts;
	w->pub_ns = w->now_ns;
}

/* ... made with every batch of results (worker_flush_outbox), else at most every 100 ms. */
static void worker_publish(struct worker *w)
{
	if (w->now_ns - w->pub_ns < WORKER_PUB_NS)
		return;
	pthread_mutex_lock(&w->out_lock);
	worker_pub_copy(w);
	pthread_mutex_unlock(&w->out_lock);
}

static void worker_flush_outbox(struct worker *w)
{
	if (w->out_local.len == 0)
		return;
	pthread_mutex_lock(&w->out_lock);
	worker_pub_copy(w);
	bool was_empty = w->out_shared.len == 0;
	int rc = buf_append(&w->out_shared, w->out_local.p, w->out_local.len);
	pthread_mutex_unlock(&w->out_lock);
	if (rc < 0) {
		log_error("worker %u: out of memory passing results on; retrying", w->id);
		w->wake_now = true;
		return;
	}
	w->out_local.len = 0;
	buf_trim(&w->out_local, WORKER_OUT_KEEP_BYTES); /* capture bursts grow it: not kept for good */
	if (was_empty) {
		uint64_t one = 1;
		ssize_t n = write(w->sh->control_efd, &one, sizeof(one));
		(void)n;
	}
}

void worker_take_results(struct worker *w, struct buf *into)
{
	pthread_mutex_lock(&w->out_lock);
	struct buf t = w->out_shared;
	w->out_shared = *into;
	*into = t;
	pthread_mutex_unlock(&w->out_lock);
}

/* Walk the records in b: fn(arg, fetch, line, len) for each. */
void worker_records(const struct buf *b, void (*fn)(void *, struct fetch *, const uint8_t *, uint32_t), void *arg)
{
	size_t off = 0;
	while (off + sizeof(struct worker_record) <= b->len) {
		struct worker_record rec;
		memcpy(&rec, b->p + off, sizeof(rec));
		off += sizeof(rec);
		if (rec.len == WORKER_REROUTE) {
			fn(arg, rec.f, NULL, WORKER_REROUTE);
			continue;
		}
		fn(arg, rec.f, b->p + off, rec.len);
		off += rec.len & ~WORKER_CAPTURE;
	}
}

/* ---- the loop -------------------------------------------------------------------------------- */

static void worker_arm_wake(struct worker *w)
{
	ring_read(&w->ring, w->efd, &w->efd_val, sizeof(w->efd_val), ring_ud(OP_WAKE, 0, 0));
}

static void worker_dispatch(struct worker *w, const struct ring_cqe *cqe)
{
	switch (ring_ud_op(cqe->user_data)) {
	case OP_CONN_CONNECT:
	case OP_CONN_SEND:
	case OP_CONN_RECV:
	case OP_CONN_CANCEL:
		conn_on_cqe(w, cqe);
		break;
	case OP_DNS_POLL:
	case OP_DNS_REMOVE:
		dns_on_cqe(w, cqe);
		break;
	case OP_CLOSE:
		if (cqe->res < 0)
			log_warn("worker %u: close: %s", w->id, strerror(-cqe->res));
		break;
	case OP_WAKE:
		worker_drain_inbox(w);
		worker_hungry(w, false); /* sched_run sets it again if still short of budget */
		worker_arm_wake(w);
		break;
	default:
		log_error("worker %u: completion with unknown op %u: dropped", w->id, ring_ud_op(cqe->user_data));
		w->stats.stale_cqes++;
	}
}

static void worker_timers(struct worker *w)
{
	struct ring_timer_entry e;
	while (ring_timers_pop_expired(&w->timers, w->now_ns, &e)) {
		if (ring_ud_op(e.key) == TK_CONN)
			conn_on_timer(w, ring_ud_idx(e.key), ring_ud_gen(e.key), e.deadline_ns);
		else if (ring_ud_op(e.key) == TK_DNS)
			dns_on_timer(w, e.deadline_ns);
	}
	worker_waits(w);
}

/* Wait for work: a batch of completions under load, at most until the next deadline. */
static int worker_wait(struct worker *w)
{
	int64_t next = ring_timers_next(&w->timers), wait_ns = -1;
	if (next != INT64_MAX) {
		wait_ns = next - ring_now_ns();
		if (wait_ns < 1)
			wait_ns = 1;
	}
	unsigned wait_nr = w->inflight / WORKER_BATCH_DIV;
	if (wait_nr > WORKER_BATCH_MAX)
		wait_nr = WORKER_BATCH_MAX;
	if (wait_nr > 1 && (wait_ns < 0 || wait_ns > WORKER_BATCH_WAIT_NS))
		wait_ns = WORKER_BATCH_WAIT_NS;
	if (w->wake_now)
		wait_ns = 0;
	w->wake_now = false;
	return ring_submit_wait(&w->ring, wait_nr ? wait_nr : 1, wait_ns);
}

/* The ring is made by the thread that uses it: a SINGLE_ISSUER ring belongs to its creator. */
static int worker_ring(struct worker *w)
{
	/* SQ sized for one op per connection per turn, capped; the FIFO absorbs bursts beyond it. */
	unsigned sq = 64;
	while (sq < w->conf.max_inflight + 64 && sq < 4096)
		sq <<= 1;
	/* Receive buffers: about one per connection of this worker's share, 64..RING_RECV_BUFS. The kernel
	 * takes them in ring order, so over time it touches every one: they are touched now instead, and
	 * the daemon's memory is flat from the start rather than creeping up to the same ceiling. */
	unsigned bufs = 64;
	while (bufs < w->quota && bufs < RING_RECV_BUFS)
		bufs <<= 1;
	return ring_init(&w->ring, sq, bufs, RING_RECV_BUF_BYTES);
}

void worker_take_pub(struct worker *w, struct worker_pub *into)
{
	pthread_mutex_lock(&w->out_lock);
	*into = w->pub;
	pthread_mutex_unlock(&w->out_lock);
}

static void *worker_main(void *arg)
{
	static _Thread_local struct ring_cqe cqes[FETCHD_REAP_BATCH];
	struct worker *w = arg;
	int64_t stop_deadline = INT64_MAX;
	w->init_rc = worker_ring(w);
	sem_post(&w->ready_sem);
	if (w->init_rc < 0)
		return NULL;
	worker_arm_wake(w);
	for (;;) {
		int rc = worker_wait(w);
		if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			log_error("worker %u: io_uring wait: %s", w->id, strerror(-rc));
			break;
		}
		w->turn++;
		w->now_ns = ring_now_ns();
		unsigned n;
		do {
			n = ring_reap(&w->ring, cqes, FETCHD_REAP_BATCH);
			for (unsigned i = 0; i < n; i++)
				worker_dispatch(w, &cqes[i]);
		} while (n == FETCHD_REAP_BATCH);
		worker_timers(w);
		conn_retry_nobufs(w);
		sched_trim_idle(w);
		sched_run(w);
		worker_flush_outbox(w);
		worker_publish(w);
		if (w->stopping) {
			if (stop_deadline == INT64_MAX) {
				stop_deadline = w->now_ns + WORKER_STOP_GRACE_NS;
				worker_timer(w, stop_deadline, TK_STOP, 0, 0);
			}
			if ((w->nconns == 0 && w->inflight == 0) || w->now_ns >= stop_deadline)
				break;
		}
	}
	worker_flush_outbox(w);
	return NULL;
}

/* Start the thread and wait until its ring is up. Returns 0 or -errno (ring_strerror explains). */
int worker_start(struct worker *w)
{
	sem_init(&w->ready_sem, 0, 0);
	int rc = pthread_create(&w->thread, NULL, worker_main, w);
	if (rc != 0)
		return -rc;
	w->started = true;
	while (sem_wait(&w->ready_sem) < 0 && errno == EINTR)
		;
	sem_destroy(&w->ready_sem);
	return w->init_rc;
}

void worker_join(struct worker *w)
{
	if (w->started)
		pthread_join(w->thread, NULL);
	w->started = false;
}

void worker_fini(struct worker *w)
{
	dns_fini(w); /* may still queue ring ops: before the ring goes */
	if (w->ring.br)
		ring_fini(&w->ring);
	sched_fini(w);
	ring_timers_fini(&w->timers);
	waitheap_fini(&w->waits);
	robotstxt_fini(w);
	if (w->efd >= 0)
		close(w->efd);
	/* fetches still here (a stop past its grace time) are freed by their owner, the control
	 * thread, from its list of each client's fetches */
	free(w->client_fetches);
	free(w->in_cancels);
	free(w->in_conf);
	free(w->in_acks);
	free(w->captures);
	buf_free(&w->capture_scratch);
	lrumap_free(w->tls_sessions);
	buf_free(&w->out_local);
	buf_free(&w->out_shared);
	pthread_mutex_destroy(&w->in_lock);
	pthread_mutex_destroy(&w->out_lock);
}

/* engine.c - fetchd's event loop: set up the ring, wait for completions or the next deadline, copy every
 * completion out, then dispatch each by its op; then run expired timers, start what the limits allow,
 * and flush clients. One thread, one ring. Also the orderly stop on SIGINT/SIGTERM. */
#include "daemon/fetchd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/protocol.h"

#define ENGINE_STOP_GRACE_NS (2LL * 1000000000) /* after SIGTERM: wait this long for ops to drain */
#define ENGINE_BATCH_DIV 16          /* wait for inflight/16 completions per loop turn ... */
#define ENGINE_BATCH_MAX 32          /* ... at most this many ... */
#define ENGINE_BATCH_WAIT_NS 500000  /* ... or 0.5 ms, whichever comes first */

static unsigned engine_pow2(unsigned v)
{
	unsigned p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

static int engine_signals(struct fetchd *d, char *err, size_t errlen)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
	    (d->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int fetchd_init(struct fetchd *d, const struct conf *c, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	d->conf = *c;
	d->listen_fd = d->signal_fd = -1;
	d->window = conf_client_window(c);
	d->now_ns = ring_now_ns();
	list_init(&d->ready);
	list_init(&d->idle_lru);
	list_init(&d->dirty);
	list_init(&d->nobufs);
	list_init(&d->deferred);
	/* SQ sized for one op per connection per turn, capped; the FIFO absorbs bursts beyond it. */
	unsigned sq = engine_pow2(c->max_inflight + c->max_clients + 64);
	if (sq > 4096)
		sq = 4096;
	int rc = ring_init(&d->ring, sq, RING_RECV_BUFS, RING_RECV_BUF_BYTES);
	if (rc < 0) {
		snprintf(err, errlen, "%s", ring_strerror(rc));
		return -1;
	}
	if (addrpolicy_parse(&d->policy, c->allow_addresses, c->deny_addresses, err, errlen) < 0)
		return -1;
	if (ring_timers_init(&d->timers, 1024) < 0 || sched_init(d) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (engine_signals(d, err, errlen) < 0 || dns_init(d, err, errlen) < 0 ||
	    control_listen(d, err, errlen) < 0)
		return -1;
	log_info("started version=%s ring=%s sq=%u max_inflight=%u per_host_connections=%u socket=%s tls=%s",
		 FETCHD_VERSION, ring_mode(&d->ring), sq, c->max_inflight, c->per_host_connections,
		 c->socket_path, tls_backend_name());
	return 0;
}

void fetchd_timer(struct fetchd *d, int64_t deadline_ns, uint8_t kind, uint32_t gen, uint32_t idx)
{
	if (ring_timers_add(&d->timers, deadline_ns, ring_ud(kind, gen, idx)) < 0)
		log_error("timer heap: out of memory"); /* the loop's periodic wake-up still bounds waits */
}

static void engine_on_signal(struct fetchd *d, const struct ring_cqe *cqe)
{
	d->signal_armed = false;
	if (cqe->res == (int)sizeof(struct signalfd_siginfo)) {
		ring_mark_written(d->siginfo, sizeof(struct signalfd_siginfo));
		const struct signalfd_siginfo *si = (const void *)d->siginfo;
		if (si->ssi_signo == SIGHUP) {
			log_warn("SIGHUP: reload is not supported yet; keeping the running configuration");
		} else if (!d->stopping) {
			log_info("signal %u: stopping", si->ssi_signo);
			d->stopping = true;
			d->stop_deadline_ns = d->now_ns + ENGINE_STOP_GRACE_NS;
			fetchd_timer(d, d->stop_deadline_ns, TK_STOP, 0, 0);
			control_stop(d);
			conn_close_idle_all(d);
		}
	}
	if (!d->stopping && !d->signal_armed) {
		ring_read(&d->ring, d->signal_fd, d->siginfo, sizeof(struct signalfd_siginfo),
			  ring_ud(OP_SIGNAL, 0, 0));
		d->signal_armed = true;
	}
}

static void engine_dispatch(struct fetchd *d, const struct ring_cqe *cqe)
{
	switch (ring_ud_op(cqe->user_data)) {
	case OP_ACCEPT:
	case OP_CLIENT_RECV:
	case OP_CLIENT_SEND:
	case OP_CLIENT_RDHUP:
	case OP_CLIENT_CANCEL:
		control_on_cqe(d, cqe);
		break;
	case OP_CONN_CONNECT:
	case OP_CONN_SEND:
	case OP_CONN_RECV:
	case OP_CONN_CANCEL:
		conn_on_cqe(d, cqe);
		break;
	case OP_DNS_POLL:
	case OP_DNS_REMOVE:
		dns_on_cqe(d, cqe);
		break;
	case OP_SIGNAL:
		engine_on_signal(d, cqe);
		break;
	case OP_CLOSE:
		if (cqe->res < 0)
			log_warn("close: %s", strerror(-cqe->res));
		break;
	default:
		log_error("completion with unknown op %u (user_data %#llx): dropped",
			  ring_ud_op(cqe->user_data), (unsigned long long)cqe->user_data);
		d->stats.stale_cqes++;
	}
}

static void engine_timers(struct fetchd *d)
{
	struct ring_timer_entry e;
	while (ring_timers_pop_expired(&d->timers, d->now_ns, &e)) {
		switch (ring_ud_op(e.key)) {
		case TK_CONN:
			conn_on_timer(d, ring_ud_idx(e.key), ring_ud_gen(e.key), e.deadline_ns);
			break;
		case TK_DNS:
			dns_on_timer(d, e.deadline_ns);
			break;
		case TK_CLIENT:
			control_on_timer(d, ring_ud_idx(e.key), ring_ud_gen(e.key));
			break;
		case TK_STOP:
			break; /* the loop condition looks at the deadline */
		default:
			log_error("timer with unknown kind %u", ring_ud_op(e.key));
		}
	}
}

static bool engine_done(const struct fetchd *d)
{
	if (!d->stopping)
		return false;
	if (d->nclients == 0 && d->nconns == 0)
		return true;
	return d->now_ns >= d->stop_deadline_ns;
}

int fetchd_run(struct fetchd *d)
{
	static struct ring_cqe cqes[FETCHD_REAP_BATCH];
	engine_on_signal(d, &(struct ring_cqe){ .res = -1 });
	while (!engine_done(d)) {
		int64_t next = ring_timers_next(&d->timers), wait_ns = -1;
		if (next != INT64_MAX) {
			wait_ns = next - ring_now_ns();
			if (wait_ns < 1)
				wait_ns = 1; /* expired: just collect what is ready, then run timers */
		}
		/* Under load, wake for a batch of completions (or after ENGINE_BATCH_WAIT_NS at most),
		 * not for each one: fewer wake-ups per fetch. */
		unsigned wait_nr = d->inflight / ENGINE_BATCH_DIV;
		if (wait_nr > ENGINE_BATCH_MAX)
			wait_nr = ENGINE_BATCH_MAX;
		if (wait_nr > 1 && (wait_ns < 0 || wait_ns > ENGINE_BATCH_WAIT_NS))
			wait_ns = ENGINE_BATCH_WAIT_NS;
		if (d->wake_now)
			wait_ns = 0; /* a deferred start waits for this turn: do not sleep */
		d->wake_now = false;
		int rc = ring_submit_wait(&d->ring, wait_nr ? wait_nr : 1, wait_ns);
		d->turn++;
		if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			log_error("io_uring wait: %s", strerror(-rc));
			return -1;
		}
		d->now_ns = ring_now_ns();
		unsigned n;
		do {
			n = ring_reap(&d->ring, cqes, FETCHD_REAP_BATCH);
			for (unsigned i = 0; i < n; i++)
				engine_dispatch(d, &cqes[i]);
		} while (n == FETCHD_REAP_BATCH);
		engine_timers(d);
		conn_retry_nobufs(d);
		/* Admitting URLs, starting fetches and finishing fetches feed each other (a start can fail
		 * at once and free window): go round until no client has anything left to do. */
		do {
			control_service(d);
			sched_run(d);
		} while (!list_empty(&d->dirty));
	}
	if (d->nclients || d->nconns)
		log_warn("stopped with work still draining: clients=%u conns=%u", d->nclients, d->nconns);
	const struct fetchd_stats *s = &d->stats;
	log_info("stopped ok=%llu failed=%llu conns_opened=%llu conns_reused=%llu stale_cqes=%llu "
		 "dns_queries=%llu dns_cache_hits=%llu dns_coalesced=%llu dns_hosts_file_hits=%llu",
		 (unsigned long long)s->fetches_ok, (unsigned long long)s->fetches_failed,
		 (unsigned long long)s->conns_opened, (unsigned long long)s->conns_reused,
		 (unsigned long long)s->stale_cqes, (unsigned long long)s->dns_queries,
		 (unsigned long long)s->dns_cache_hits, (unsigned long long)s->dns_coalesced,
		 (unsigned long long)s->dns_hosts_file_hits);
	return 0;
}

void fetchd_fini(struct fetchd *d)
{
	d->stopping = true;
	dns_fini(d); /* may still queue ring ops: before the ring goes */
	if (d->ring.br)
		ring_fini(&d->ring); /* cancels whatever is left; no buffer is referenced after this */
	control_fini(d);
	sched_fini(d);
	ring_timers_fini(&d->timers);
	if (d->signal_fd >= 0)
		close(d->signal_fd);
}

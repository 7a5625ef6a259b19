/* engine.c - the control thread: set up the workers, then run the control ring (the control socket,
 * clients, signals, results coming back from the workers): wait for completions or the next
 * deadline, copy every completion out, dispatch each by its op, run expired timers, admit and flush.
 * Also the orderly stop on SIGINT/SIGTERM. */
#include "daemon/fetchd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/protocol.h"
#include "daemon/queue.h"

#define ENGINE_STOP_GRACE_NS (3LL * 1000000000) /* after the drain: wait this long for results to go out */

static int engine_signals(struct fetchd *d, char *err, size_t errlen)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	/* Blocked before any worker starts, so the workers inherit it and only the signalfd sees them. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
	    (d->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

uint32_t fetchd_client_cap(const struct conf *c)
{
	return c->max_clients + c->max_jobs + queue_client_slots(c);
}

static uint32_t engine_nworkers(const struct conf *c)
{
	if (c->workers)
		return c->workers;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > FETCHD_MAX_WORKERS ? FETCHD_MAX_WORKERS : (uint32_t)n;
}

/* The TLS client config, shared by every worker. A configured CA file or path that cannot be used
 * stops the start; a missing system bundle only leaves https unavailable (http still works). */
static int engine_tls(struct fetchd *d, char *err, size_t errlen)
{
	const struct conf *c = &d->conf;
	struct tls_config_opts o = {
		.ca_file = c->tls_ca_file,
		.ca_path = c->tls_ca_path,
		.min_version = !strcmp(c->tls_min_version, "1.3") ? TLS_V13 : TLS_V12,
		.no_verify = !strcmp(c->tls_verify, "no"),
	};
	struct tls_ca_count ca = { 0, 0 };
	int rc = tls_config_new(&d->tls_cfg, &o, &ca, d->tls_cfg_error, sizeof(d->tls_cfg_error));
	if (rc == TLS_OK) {
		if (o.no_verify)
			log_warn("tls: verify = no: HTTPS server certificates are NOT checked");
		else
			log_info("tls: %s: %u CA certificates loaded, %u failed to parse",
				 c->tls_ca_file[0] ? c->tls_ca_file : TLS_DEFAULT_CA_FILE, ca.loaded, ca.failed);
		return 0;
	}
	d->tls_cfg = NULL;
	if (c->tls_ca_file[0] || c->tls_ca_path[0] || o.min_version == TLS_V13) {
		snprintf(err, errlen, "[tls]: %s", d->tls_cfg_error);
		return -1;
	}
	log_warn("tls: %s: https URLs will fail (install ca-certificates or set [tls] ca_file)",
		 d->tls_cfg_error);
	return 0;
}

/* The options every batch starts from, and the most any batch or URL may ask for. */
void fetchd_opts_default(const struct conf *c, struct fetch_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->method = OPTS_GET;
	o->follow = strcmp(c->follow_redirects, "yes") == 0;
	o->decode = strcmp(c->decode, "yes") == 0;
	o->max_redirects = c->max_redirects;
	o->retries = c->retry_times;
	o->timeout_ms = c->timeout_ms;
	o->connect_timeout_ms = c->connect_timeout_ms;
	o->header_timeout_ms = c->header_timeout_ms;
	o->idle_timeout_ms = c->idle_timeout_ms;
	o->max_body_bytes = c->max_body_bytes;
}

static int engine_workers(struct fetchd *d, char *err, size_t errlen)
{
	d->nworkers = engine_nworkers(&d->conf);
	d->workers = calloc(d->nworkers, sizeof(*d->workers));
	if (!d->workers) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->sh.workers = d->workers;
	d->sh.nworkers = d->nworkers;
	d->sh.max_open = d->conf.max_inflight;
	d->sh.control_efd = d->efd;
	for (uint32_t i = 0; i < d->nworkers; i++)
		d->workers[i].efd = -1; /* what worker_fini expects of one that never initialised */
	for (uint32_t i = 0; i < d->nworkers; i++)
		if (worker_init(&d->workers[i], i, &d->conf, &d->sh, fetchd_client_cap(&d->conf), d->tls_cfg,
				d->tls_cfg ? NULL : d->tls_cfg_error, err, errlen) < 0)
			return -1;
	for (uint32_t i = 0; i < d->nworkers; i++) {
		int rc = worker_start(&d->workers[i]);
		if (rc < 0) {
			snprintf(err, errlen, "worker %u: %s", i, ring_strerror(rc));
			return -1;
		}
	}
	return 0;
}

/* The file descriptors besides connections: this thread's (ring, eventfd, signalfd, socket, stdio),
 * each worker's (ring, eventfd, resolver sockets), and room for clients to connect. */
static uint64_t engine_fd_reserve(const struct conf *c, uint32_t nworkers)
{
	return 16 + (uint64_t)nworkers * 8 + (c->max_clients < 16 ? c->max_clients : 16);
}

/* max_inflight must fit the open-file limit (after main raised it to the hard limit): each
 * connection is a descriptor, and a closed one holds it until its last op ends. Clamp, and say so. */
static int engine_fit_fds(struct fetchd *d, uint32_t nworkers, char *err, size_t errlen)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	uint64_t reserve = engine_fd_reserve(&d->conf, nworkers);
	uint64_t budget = rl.rlim_cur > reserve ? (rl.rlim_cur - reserve) * 3 / 4 : 0;
	if (budget < 4) {
		snprintf(err, errlen, "open-file limit %llu leaves no room for connections (raise LimitNOFILE or ulimit -n)",
			 (unsigned long long)rl.rlim_cur);
		return -1;
	}
	if (d->conf.max_inflight > budget) {
		log_warn("open-file limit %llu: max_inflight clamped from %u to %llu (raise LimitNOFILE or ulimit -n)",
			 (unsigned long long)rl.rlim_cur, d->conf.max_inflight, (unsigned long long)budget);
		d->conf.max_inflight = (uint32_t)budget;
	}
	return 0;
}

int fetchd_init(struct fetchd *d, const struct conf *c, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	d->conf = *c;
	d->max_inflight_conf = c->max_inflight;
	service_init(d); /* first: fetchd_fini expects its descriptor set */
	if (engine_fit_fds(d, engine_nworkers(c), err, errlen) < 0)
		return -1;
	d->listen_fd = d->signal_fd = d->efd = d->reserve_fd = -1;
	d->window = conf_client_window(&d->conf);
	fetchd_opts_default(&d->conf, &d->opts_default);
	d->now_ns = ring_now_ns();
	list_init(&d->dirty);
	int rc = ring_init(&d->ring, 256, 16, 4096); /* control traffic only: few, small receives */
	if (rc < 0) {
		snprintf(err, errlen, "%s", ring_strerror(rc));
		return -1;
	}
	d->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->efd < 0 || ring_timers_init(&d->timers, 64) < 0) {
		snprintf(err, errlen, "%s", d->efd < 0 ? strerror(errno) : "out of memory");
		return -1;
	}
	/* The socket comes last: once it exists, clients may connect, and everything must be up. */
	if (jobs_init(d) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (engine_signals(d, err, errlen) < 0 || engine_tls(d, err, errlen) < 0 || engine_workers(d, err, errlen) < 0 ||
	    control_listen(d, err, errlen) < 0 || queue_init(d, err, errlen) < 0)
		return -1;
	log_info("started version=%s ring=%s workers=%u max_inflight=%u per_host_connections=%u socket=%s tls=%s",
		 FETCHD_VERSION, ring_mode(&d->ring), d->nworkers, d->conf.max_inflight, c->per_host_connections,
		 d->conf.socket_path, tls_backend_name());
	return 0;
}

void fetchd_timer(struct fetchd *d, int64_t deadline_ns, uint8_t kind, uint32_t gen, uint32_t idx)
{
	if (ring_timers_add(&d->timers, deadline_ns, ring_ud(kind, gen, idx)) < 0)
		log_error("timer heap: out of memory"); /* the loop's periodic wake-up still bounds waits */
}

static void engine_arm_signal(struct fetchd *d)
{
	ring_read(&d->ring, d->signal_fd, d->siginfo, sizeof(struct signalfd_siginfo), ring_ud(OP_SIGNAL, 0, 0));
	d->signal_armed = true;
}

static void engine_on_signal(struct fetchd *d, const struct ring_cqe *cqe)
{
	d->signal_armed = false;
	if (cqe->res == (int)sizeof(struct signalfd_siginfo)) {
		ring_mark_written(d->siginfo, sizeof(struct signalfd_siginfo));
		const struct signalfd_siginfo *si = (const void *)d->siginfo;
		if (si->ssi_signo == SIGHUP) {
			fetchd_reload(d);
		} else if (!d->stopping) {
			log_info("signal %u: stopping", si->ssi_signo);
			d->stopping = true;
			int64_t drain_end = d->now_ns + (int64_t)d->conf.drain_timeout_ms * 1000000;
			d->stop_deadline_ns = drain_end + ENGINE_STOP_GRACE_NS;
			fetchd_timer(d, drain_end, TK_DRAIN, 0, 0);
			fetchd_timer(d, d->stop_deadline_ns, TK_STOP, 0, 0);
			control_stop(d); /* no new clients or URLs; admitted fetches go on */
			queue_stop(d);
			service_stopping(d);
		}
	}
	if (!d->stopping)
		engine_arm_signal(d);
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
	case OP_WAKE:
		control_results(d);
		queue_take(d);
		ring_read(&d->ring, d->efd, &d->efd_val, sizeof(d->efd_val), ring_ud(OP_WAKE, 0, 0));
		break;
	case OP_SIGNAL:
		engine_on_signal(d, cqe);
		break;
	default:
		log_error("completion with unknown op %u (user_data %#llx): dropped",
			  ring_ud_op(cqe->user_data), (unsigned long long)cqe->user_data);
		d->stats.stale_cqes++;
	}
}

/* The drain time is over: cancel what is left (with results) and let the workers wind down. */
static void engine_drain_over(struct fetchd *d)
{
	log_info("drain time over: cancelling the fetches left");
	control_drain_over(d);
	for (uint32_t i = 0; i < d->nworkers; i++)
		worker_stop(&d->workers[i]);
}

static void engine_timers(struct fetchd *d)
{
	struct ring_timer_entry e;
	while (ring_timers_pop_expired(&d->timers, d->now_ns, &e)) {
		if (ring_ud_op(e.key) == TK_CLIENT)
			control_on_timer(d, ring_ud_idx(e.key), ring_ud_gen(e.key));
		else if (ring_ud_op(e.key) == TK_ACCEPT)
			control_accept_retry(d);
		else if (ring_ud_op(e.key) == TK_STATUS || ring_ud_op(e.key) == TK_WATCHDOG)
			service_on_timer(d, ring_ud_op(e.key));
		else if (ring_ud_op(e.key) == TK_DRAIN)
			engine_drain_over(d);
		else if (ring_ud_op(e.key) == TK_TICK)
			info_tick(d);
		/* TK_STOP: the loop condition looks at the deadline */
	}
}

static bool engine_done(const struct fetchd *d)
{
	return d->stopping && ((d->nclients == 0 && !queue_busy(d)) || d->now_ns >= d->stop_deadline_ns);
}

/* Every counter of fetchd_stats is a uint64_t: add them as an array. */
void fetchd_stats_add(struct fetchd_stats *sum, const struct fetchd_stats *s)
{
	_Static_assert(sizeof(*s) % sizeof(uint64_t) == 0, "fetchd_stats holds only uint64_t counters");
	uint64_t *a = (uint64_t *)sum;
	const uint64_t *b = (const uint64_t *)s;
	for (size_t i = 0; i < sizeof(*s) / sizeof(uint64_t); i++)
		a[i] += b[i];
}

static void engine_log_stats(struct fetchd *d)
{
	struct fetchd_stats s = d->stats;
	for (uint32_t i = 0; i < d->nworkers; i++)
		fetchd_stats_add(&s, &d->workers[i].stats); /* the workers have stopped */
	log_info("stopped ok=%llu failed=%llu conns_opened=%llu conns_reused=%llu stale_cqes=%llu "
		 "dns_queries=%llu dns_cache_hits=%llu dns_coalesced=%llu dns_hosts_file_hits=%llu "
		 "tls_handshakes=%llu tls_resumed=%llu retries=%llu redirects=%llu "
		 "robots_fetches=%llu robots_denied=%llu capture_pauses=%llu",
		 (unsigned long long)s.fetches_ok, (unsigned long long)s.fetches_failed,
		 (unsigned long long)s.conns_opened, (unsigned long long)s.conns_reused,
		 (unsigned long long)s.stale_cqes, (unsigned long long)s.dns_queries,
		 (unsigned long long)s.dns_cache_hits, (unsigned long long)s.dns_coalesced,
		 (unsigned long long)s.dns_hosts_file_hits, (unsigned long long)s.tls_handshakes,
		 (unsigned long long)s.tls_resumed, (unsigned long long)s.retries, (unsigned long long)s.redirects,
		 (unsigned long long)s.robots_fetches, (unsigned long long)s.robots_denied,
		 (unsigned long long)s.capture_pauses);
}

int fetchd_run(struct fetchd *d)
{
	static struct ring_cqe cqes[FETCHD_REAP_BATCH];
	engine_arm_signal(d);
	ring_read(&d->ring, d->efd, &d->efd_val, sizeof(d->efd_val), ring_ud(OP_WAKE, 0, 0));
	service_ready(d); /* the socket listens and every worker's ring is up (fetchd_init) */
	d->start_ns = d->now_ns;
	info_tick(d);
	while (!engine_done(d)) {
		int64_t next = ring_timers_next(&d->timers), wait_ns = -1;
		if (next != INT64_MAX) {
			wait_ns = next - ring_now_ns();
			if (wait_ns < 1)
				wait_ns = 1; /* expired: just collect what is ready, then run timers */
		}
		int rc = ring_submit_wait(&d->ring, 1, wait_ns);
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
		control_service(d);
	}
	if (d->nclients)
		log_warn("stopped with clients still draining: %u", d->nclients);
	return 0;
}

void fetchd_fini(struct fetchd *d)
{
	for (uint32_t i = 0; d->workers && i < d->nworkers; i++)
		worker_stop(&d->workers[i]);
	for (uint32_t i = 0; d->workers && i < d->nworkers; i++)
		worker_join(&d->workers[i]);
	if (d->workers)
		control_results(d); /* the last results: the fetches go back to their clients and are freed */
	queue_fini(d);      /* the queue's results go out (bounded) before its client is freed */
	if (d->workers)
		engine_log_stats(d);
	for (uint32_t i = 0; d->workers && i < d->nworkers; i++)
		worker_fini(&d->workers[i]);
	free(d->workers);
	d->workers = NULL;
	if (d->ring.br)
		ring_fini(&d->ring);
	control_fini(d);
	jobs_fini(d);
	tls_config_free(d->tls_cfg);
	buf_free(&d->results);
	ring_timers_fini(&d->timers);
	if (d->signal_fd >= 0)
		close(d->signal_fd);
	if (d->efd >= 0)
		close(d->efd);
	service_fini(d);
}

/* sched.c - the scheduler: hosts keyed by scheme+host+port (a hash table), each with a FIFO of waiting
 * fetches, its addresses and its connection count; a FIFO of hosts that can start a fetch now. A fetch
 * starts only while fewer than max_inflight run in all, and its host has an idle connection or fewer
 * than per_host_connections. Waiting costs no slot and no socket. Hosts go away when nothing refers to
 * them. */
#include "daemon/fetchd.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/addrpolicy.h"
#include "daemon/hash.h"
#include "daemon/log.h"

static uint32_t sched_hash(enum url_scheme scheme, const char *name, uint16_t port)
{
	return hash_str(name) ^ (uint32_t)scheme ^ ((uint32_t)port << 8);
}

int sched_init(struct worker *w)
{
	w->hcap = 1024;
	w->htab = calloc(w->hcap, sizeof(*w->htab));
	/* A worker may hold the whole budget; a closed connection keeps its slot until its last op
	 * ends: twice the budget in slots. The slab is calloc'd and never written here: the kernel
	 * hands out zero pages, and a slot costs memory only once conn_alloc first uses it. */
	w->conn_cap = 2 * w->conf.max_inflight;
	w->conns = calloc(w->conn_cap, sizeof(*w->conns));
	w->conn_free = calloc(w->conn_cap, sizeof(*w->conn_free));
	if (!w->htab || !w->conns || !w->conn_free)
		return -1;
	for (uint32_t i = 0; i < w->conn_cap; i++)
		w->conn_free[i] = w->conn_cap - 1 - i; /* pop from the end: low slots first */
	w->nconn_free = w->conn_cap;
	return 0;
}

static void sched_host_free(struct worker *w, struct host *h)
{
	struct host **pp = &w->htab[h->hash & (w->hcap - 1)];
	while (*pp != h)
		pp = &(*pp)->hash_next;
	*pp = h->hash_next;
	w->nhosts--;
	waitheap_del(&w->waits, &h->wait);
	free(h);
}

void sched_fini(struct worker *w)
{
	for (uint32_t i = 0; w->htab && i < w->hcap; i++) {
		struct host *h = w->htab[i];
		while (h) {
			struct host *next = h->hash_next;
			free(h);
			h = next;
		}
	}
	for (uint32_t i = 0; w->conns && i < w->conn_cap; i++)
		free(w->conns[i].req);
	free(w->htab);
	free(w->conns);
	free(w->conn_free);
}

static void sched_grow(struct worker *w)
{
	uint32_t cap = w->hcap * 2;
	struct host **t = calloc(cap, sizeof(*t));
	if (!t)
		return; /* longer chains, still correct */
	for (uint32_t i = 0; i < w->hcap; i++) {
		struct host *h = w->htab[i];
		while (h) {
			struct host *next = h->hash_next;
			h->hash_next = t[h->hash & (cap - 1)];
			t[h->hash & (cap - 1)] = h;
			h = next;
		}
	}
	free(w->htab);
	w->htab = t;
	w->hcap = cap;
}

/* An IP-literal host: its one address, as if a lookup had returned it. */
static void sched_literal_addr(const struct url *u, union sockaddr_any *a)
{
	memset(a, 0, sizeof(*a));
	if (u->host_kind == URL_HOST_IPV4) {
		a->in4.sin_family = AF_INET;
		a->in4.sin_port = htons(u->port);
		memcpy(&a->in4.sin_addr, u->ip, 4);
	} else {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_port = htons(u->port);
		memcpy(&a->in6.sin6_addr, u->ip, 16);
	}
}

struct host *sched_host_find(struct worker *w, const struct url *u)
{
	uint32_t hash = sched_hash(u->scheme, u->host, u->port);
	for (struct host *h = w->htab[hash & (w->hcap - 1)]; h; h = h->hash_next)
		if (h->hash == hash && h->port == u->port && h->scheme == u->scheme &&
		    strcmp(h->name, u->host) == 0)
			return h;
	return NULL;
}

static struct host *sched_host_get(struct worker *w, const struct url *u)
{
	uint32_t hash = sched_hash(u->scheme, u->host, u->port);
	struct host *h = sched_host_find(w, u);
	if (h)
		return h;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->hash = hash;
	h->scheme = u->scheme;
	h->port = u->port;
	memcpy(h->name, u->host, sizeof(h->name));
	url_host_header(u, h->host_header, sizeof(h->host_header));
	list_init(&h->queue);
	list_init(&h->idle);
	list_init(&h->ready_link);
	list_init(&h->dns_link);
	wait_node_init(&h->wait, WAIT_HOST);
	if (w->nhosts >= w->hcap)
		sched_grow(w);
	h->hash_next = w->htab[hash & (w->hcap - 1)];
	w->htab[hash & (w->hcap - 1)] = h;
	w->nhosts++;
	return h;
}

static void sched_host_fail(struct worker *w, struct host *h);

static bool sched_host_can_start(const struct worker *w, struct host *h)
{
	if (h->queued == 0 || h->dns != H_READY)
		return false;
	if (!list_empty(&h->idle)) /* reuse beats a new connection, even if it means the next turn */
		return conn_idle_usable(w, h) != NULL;
	return h->nopen < w->conf.per_host_connections;
}

/* h waits only for one of its idle connections to be a turn old: try again next turn. */
static bool sched_host_defer(struct worker *w, struct host *h)
{
	if (h->queued == 0 || h->dns != H_READY || list_empty(&h->idle))
		return false;
	if (list_linked(&h->ready_link))
		list_del(&h->ready_link);
	list_add_tail(&w->deferred, &h->ready_link);
	w->wake_now = true;
	return true;
}

/* Politeness: the time between two request starts to one host, [politeness] delay_ms (0.5x..1.5x with
 * random_delay) or 1 / requests_per_s, whichever is longer. */
static int64_t sched_spacing_ns(struct worker *w)
{
	const struct conf *cf = &w->conf;
	int64_t ns = (int64_t)cf->delay_ms * 1000000;
	if (ns && !strcmp(cf->random_delay, "yes"))
		ns = ns / 2 + (int64_t)(worker_random(w) % (uint64_t)(ns + 1));
	if (cf->requests_per_s && 1000000000 / (int64_t)cf->requests_per_s > ns)
		ns = 1000000000 / (int64_t)cf->requests_per_s;
	return ns;
}

/* h may not start a request before next_ok_ns: off the ready list, into the waitheap till then. */
static void sched_host_hold(struct worker *w, struct host *h)
{
	if (list_linked(&h->ready_link))
		list_del(&h->ready_link);
	if (wait_node_queued(&h->wait))
		return;
	if (waitheap_add(&w->waits, &h->wait, h->next_ok_ns) < 0) {
		h->next_ok_ns = 0; /* out of memory: politeness gives way rather than the host stalling */
		return;
	}
	worker_timer(w, h->next_ok_ns, TK_WAIT, 0, 0);
}

/* Free h if nothing refers to it any more (and no politeness delay must be remembered); else make sure
 * it sits in the ready FIFO if it can start. */
void sched_host_changed(struct worker *w, struct host *h)
{
	bool held = h->next_ok_ns > w->now_ns;
	if (h->queued == 0 && h->nconns == 0 && h->dns != H_RESOLVING && !held) {
		if (list_linked(&h->ready_link))
			list_del(&h->ready_link);
		sched_host_free(w, h);
		return;
	}
	if (held) {
		sched_host_hold(w, h);
		return;
	}
	if (list_linked(&h->ready_link))
		return;
	if (sched_host_can_start(w, h))
		list_add_tail(&w->ready, &h->ready_link);
	else
		sched_host_defer(w, h);
}

void sched_admit(struct worker *w, struct fetch *f, const struct url *u)
{
	struct host *h = sched_host_get(w, u);
	if (!h) {
		fetch_fail(w, f, "internal", NULL, "out of memory");
		return;
	}
	f->host = h;
	f->t_admit_ns = w->now_ns;
	if (f->internal) /* robots.txt after a redirect: first, the host's other fetches wait for it */
		list_add_head(&h->queue, &f->queue_link);
	else
		list_add_tail(&h->queue, &f->queue_link);
	h->queued++;
	if (h->dns == H_NEW) {
		h->dns = H_RESOLVING;
		h->t_resolve_ns = w->now_ns;
		if (u->host_kind != URL_HOST_NAME) {
			union sockaddr_any a;
			sched_literal_addr(u, &a);
			sched_dns_done(w, h, 0, &a, 1, INT64_MAX); /* the address policy applies to literals too */
		} else {
			dns_resolve(w, h); /* may complete at once and call sched_dns_done */
		}
		return;
	}
	if (h->dns == H_FAILED) {
		sched_host_fail(w, h);
		return;
	}
	sched_host_changed(w, h);
}

static void sched_unqueue(struct host *h, struct fetch *f)
{
	list_del(&f->queue_link);
	h->queued--;
}

/* How long f waited for h's lookup: from the later of its admission and the lookup's start. */
static int64_t sched_waited_ns(const struct worker *w, const struct host *h, const struct fetch *f)
{
	return w->now_ns - (f->t_admit_ns > h->t_resolve_ns ? f->t_admit_ns : h->t_resolve_ns);
}

/* Fail every fetch waiting on h with the host's failure; a host with no connection is then forgotten,
 * so a later URL for it asks again. */
static void sched_host_fail(struct worker *w, struct host *h)
{
	struct link *l;
	while ((l = list_pop(&h->queue))) {
		struct fetch *f = list_entry(l, struct fetch, queue_link);
		list_init(&f->queue_link);
		h->queued--;
		f->dns_ns = sched_waited_ns(w, h, f);
		f->host = NULL;
		fetch_fail(w, f, h->fail_class, NULL, "%s", h->fail_msg);
	}
	sched_host_changed(w, h);
}

/* The addresses of a lookup (or an IP literal) arrived, or the lookup failed (naddrs == 0, status
 * says why). Each address must pass the address policy; the host connects only to those that do. */
void sched_dns_done(struct worker *w, struct host *h, int status, const union sockaddr_any *addrs,
		    unsigned naddrs, int64_t expires_ns)
{
	h->dns_expires_ns = expires_ns;
	char why[ADDRPOLICY_WHY_MAX] = "";
	h->naddrs = 0;
	for (unsigned i = 0; i < naddrs && h->naddrs < FETCHD_MAX_ADDRS; i++) {
		char this_why[ADDRPOLICY_WHY_MAX];
		if (addrpolicy_allowed(&w->policy, &addrs[i].sa, this_why, sizeof(this_why)))
			h->addrs[h->naddrs++] = addrs[i];
		else if (!why[0])
			memcpy(why, this_why, sizeof(why));
	}
	if (h->naddrs > 0) {
		h->dns = H_READY;
		for (struct link *l = h->queue.next; l != &h->queue; l = l->next) {
			struct fetch *f = list_entry(l, struct fetch, queue_link);
			f->dns_ns = sched_waited_ns(w, h, f);
		}
		sched_host_changed(w, h);
		return;
	}
	h->dns = H_FAILED;
	if (naddrs > 0) {
		h->fail_class = "blocked";
		snprintf(h->fail_msg, sizeof(h->fail_msg), "%s: %s", h->name, why);
	} else {
		h->fail_class = "dns";
		snprintf(h->fail_msg, sizeof(h->fail_msg), "cannot resolve %s: %s", h->name, dns_strerror(status));
	}
	sched_host_fail(w, h);
}

void sched_requeue(struct worker *w, struct fetch *f)
{
	struct host *h = f->host;
	fetch_set_state(f, F_QUEUED);
	list_add_head(&h->queue, &f->queue_link);
	h->queued++;
	w->inflight--;
	sched_host_changed(w, h);
}

void sched_cancel(struct worker *w, struct fetch *f)
{
	struct host *h = f->host;
	if (wait_node_queued(&f->wait)) { /* backing off before a retry */
		waitheap_del(&w->waits, &f->wait);
		return;
	}
	if (f->state == F_QUEUED) {
		if (h) {
			sched_unqueue(h, f);
			sched_host_changed(w, h);
		}
		return;
	}
	conn_detach_cancel(w, f);
	w->inflight--;
}

/* Can host h get a connection now: an idle one of its own, or a new one within the shared budget?
 * At the budget, this worker's least recently used idle connection is shut down to make room (at
 * once: the origin sees it close now). A budget unit taken here is the new connection's. */
static bool sched_conn_slot(struct worker *w, struct host *h)
{
	if (conn_idle_usable(w, h))
		return true;
	if (w->nconns >= w->conn_cap)
		return false;
	if (worker_budget_take(w))
		return true;
	struct link *l = w->idle_lru.next;
	if (l != &w->idle_lru) {
		conn_close(w, list_entry(l, struct conn, lru_link), "evicted for a new connection");
		if (worker_budget_take(w))
			return true;
	}
	worker_hungry(w, true); /* another worker holds the budget: it gives back when it can */
	if (worker_budget_take(w)) {
		worker_hungry(w, false);
		return true;
	}
	return false;
}

/* Other workers wait for budget: give back idle connections beyond this worker's fair share. */
void sched_trim_idle(struct worker *w)
{
	uint64_t others = atomic_load(&w->sh->hungry) & ~(1ull << w->id);
	while (others && w->nopen > w->quota && !list_empty(&w->idle_lru))
		conn_close(w, list_entry(w->idle_lru.next, struct conn, lru_link), "given back to other workers");
}

void sched_run(struct worker *w)
{
	worker_hungry(w, false); /* set again below if a fetch still waits for budget */
	while (!list_empty(&w->deferred)) { /* their idle conns are a turn old now */
		struct link *l = list_pop(&w->deferred);
		list_add_tail(&w->ready, l);
	}
	while (w->inflight < w->conf.max_inflight && !w->stopping) {
		struct link *l = w->ready.next;
		if (l == &w->ready)
			return;
		struct host *h = list_entry(l, struct host, ready_link);
		if (!sched_host_can_start(w, h)) {
			list_del(l);
			if (!sched_host_defer(w, h))
				sched_host_changed(w, h);
			continue;
		}
		struct fetch *head = list_entry(h->queue.next, struct fetch, queue_link);
		int64_t crawl_delay_ns;
		char why[200];
		int verdict = robotstxt_check(w, h, head, &crawl_delay_ns, why, sizeof(why));
		if (verdict == ROBOTS_WAIT) {
			if (list_entry(h->queue.next, struct fetch, queue_link) == head)
				list_del(l); /* robots.txt is on its way: robotstxt_done wakes the host */
			continue;       /* else its fetch was just put first: start that */
		}
		if (verdict == ROBOTS_DENY) {
			sched_unqueue(h, head);
			w->stats.robots_denied++;
			fetch_fail(w, head, "robots", NULL, "%s", why);
			if (h->queued == 0) {
				list_del(l);
				sched_host_changed(w, h);
			}
			continue;
		}
		if (h->scheme == URL_HTTPS && w->handshakes >= w->conf.tls_max_handshakes && !conn_idle_usable(w, h)) {
			/* a new https connection waits for a handshake to end (conn_hs_end wakes it) */
			list_del(l);
			list_add_tail(&w->tls_wait, l);
			continue;
		}
		if (h->dns_expires_ns <= w->now_ns && !conn_idle_usable(w, h)) {
			/* A new connection, and the addresses' TTL ran out: look the name up again. */
			list_del(l);
			h->dns = H_RESOLVING;
			h->t_resolve_ns = w->now_ns;
			dns_resolve(w, h);
			continue;
		}
		if (!sched_conn_slot(w, h))
			return; /* resumes when a slot frees */
		list_del(l);
		struct fetch *f = list_entry(h->queue.next, struct fetch, queue_link);
		sched_unqueue(h, f);
		w->inflight++;
		f->t_start_ns = w->now_ns;
		int64_t spacing = sched_spacing_ns(w);
		if (crawl_delay_ns > spacing)
			spacing = crawl_delay_ns;
		h->spacing_ns = spacing; /* counted again from the moment the request goes out (conn.c) */
		if (spacing)
			h->next_ok_ns = w->now_ns + spacing;
		conn_start(w, f);
		sched_host_changed(w, h); /* back to the tail: hosts take turns */
	}
}

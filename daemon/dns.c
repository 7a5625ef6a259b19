/* dns.c - name resolution with c-ares, driven by the ring: c-ares tells which sockets it wants watched
 * (sock_state_cb); each gets a one-shot POLL_ADD, and a completion calls ares_process_fd. c-ares'
 * own retransmit timeouts run on the engine's timer heap. Nothing here ever blocks the ring thread.
 * One lookup per host at a time: every fetch for that host waits on the host, not on its own query. */
#include "daemon/fetchd.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/dnscache.h"
#include "daemon/hash.h"
#include "daemon/hostsfile.h"
#include "daemon/log.h"

#define DNS_MAX_SOCKS 64

struct dns_sock {
	int fd;
	uint32_t gen;
	uint32_t want;  /* POLLIN|POLLOUT c-ares asked for; 0: slot unused */
	uint32_t armed; /* mask of the poll in flight; 0: none */
	bool removing;
};

#define DNS_QUERY_BUCKETS 4096
#define DNS_MAX_QUERIES 128        /* lookups in flight per worker; more wait their turn */
#define DNS_SOCK_RCVBUF (1 << 20)  /* answers to a burst of queries must not overflow the socket */

struct dns {
	ares_channel channel;
	struct dns_sock socks[DNS_MAX_SOCKS];
	int64_t timer_at_ns;
	uint32_t pending;
	int family;                   /* AF_UNSPEC, AF_INET or AF_INET6 ([dns] family) */
	struct dnscache *cache;       /* NULL: cache_size = 0 */
	struct hostsfile *hosts;      /* NULL: no hosts file */
	struct dns_query *queries[DNS_QUERY_BUCKETS]; /* in flight or waiting, by name */
	struct link waiting;          /* queries not started yet (DNS_MAX_QUERIES in flight) */
};

/* One query in flight for a name, and the hosts waiting for its answer (every host with that name,
 * whatever its port or scheme): 1,000 URLs on a new name cause one query. */
struct dns_query {
	struct worker *w;
	struct dns_query *hash_next;
	struct link waiting_link; /* in dn->waiting until started */
	struct link waiters;     /* hosts, by dns_link */
	char name[URL_HOST_MAX];
};

static uint64_t dns_ud(const struct dns *dn, uint32_t i, uint8_t op)
{
	return ring_ud(op, dn->socks[i].gen, i);
}

static void dns_arm(struct worker *w, uint32_t i)
{
	struct dns_sock *s = &w->dns->socks[i];
	if (s->armed || !s->want)
		return;
	ring_poll(&w->ring, s->fd, s->want, dns_ud(w->dns, i, OP_DNS_POLL));
	s->armed = s->want;
}

static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct worker *w = data;
	struct dns *dn = w->dns;
	uint32_t want = (readable ? POLLIN : 0) | (writable ? POLLOUT : 0);
	int slot = -1, free_slot = -1;
	for (int i = 0; i < DNS_MAX_SOCKS; i++) {
		if (dn->socks[i].want && dn->socks[i].fd == fd)
			slot = i;
		else if (!dn->socks[i].want && !dn->socks[i].armed && free_slot < 0)
			free_slot = i;
	}
	if (slot < 0) {
		if (!want)
			return;
		if (free_slot < 0) {
			log_error("dns: more than %d resolver sockets; lookups on this one will time out", DNS_MAX_SOCKS);
			return;
		}
		slot = free_slot;
		dn->socks[slot].fd = fd;
	}
	struct dns_sock *s = &dn->socks[slot];
	s->want = want;
	if (s->armed && s->armed != want && !s->removing) {
		/* Interest changed (or the socket is closing): take the old poll back; re-armed on completion. */
		ring_poll_remove(&w->ring, dns_ud(dn, (uint32_t)slot, OP_DNS_POLL), dns_ud(dn, (uint32_t)slot, OP_DNS_REMOVE));
		s->removing = true;
	} else if (!s->armed && want) {
		dns_arm(w, (uint32_t)slot);
	}
}

static void dns_arm_timer(struct worker *w)
{
	struct dns *dn = w->dns;
	struct timeval tv;
	if (!dn->pending || !ares_timeout(dn->channel, NULL, &tv))
		return;
	int64_t dl = w->now_ns + (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
	if (dn->timer_at_ns && dn->timer_at_ns <= dl)
		return;
	dn->timer_at_ns = dl;
	worker_timer(w, dl, TK_DNS, 0, 0);
}

/* Read [dns] hosts_file (a missing file is an empty one, as for the resolver). */
static int dns_load_hosts(struct worker *w, char *err, size_t errlen)
{
	const char *path = w->conf.dns_hosts_file;
	if (!path[0])
		return 0;
	struct buf text = { 0 };
	FILE *f = fopen(path, "r");
	if (!f) {
		if (errno != ENOENT)
			log_warn("dns: cannot read hosts file %s: %s", path, strerror(errno));
		return 0;
	}
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && text.len <= HOSTSFILE_MAX_BYTES)
		if (buf_append(&text, chunk, n) < 0)
			break;
	fclose(f);
	int rc = hostsfile_parse(&w->dns->hosts, (const char *)text.p, text.len, err, errlen);
	buf_free(&text);
	if (rc < 0)
		return -1;
	struct hostsfile_stats st = hostsfile_stats(w->dns->hosts);
	if (w->id == 0) /* every worker reads it; one line says it */
		log_info("dns: hosts file %s: %u names, %u lines skipped", path, st.names, st.skipped);
	return 0;
}

/* The c-ares channel: sockets watched through the ring, our timeouts, our hosts file (c-ares does
 * DNS only), [dns] servers if set (else resolv.conf's). URL hosts are absolute: no search list. */
static int dns_channel(struct worker *w, int flags, int *nservers, char *err, size_t errlen)
{
	struct dns *dn = w->dns;
	struct ares_options o;
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = dns_sock_state;
	o.sock_state_cb_data = w;
	o.timeout = (int)w->conf.dns_timeout_ms;
	o.tries = (int)w->conf.dns_tries;
	o.lookups = (char *)"b";
	o.socket_receive_buffer_size = DNS_SOCK_RCVBUF;
	o.flags = flags;
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
		   ARES_OPT_SOCK_RCVBUF | ARES_OPT_FLAGS;
	int rc = ares_init_options(&dn->channel, &o, mask);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares channel: %s", ares_strerror(rc));
		return -1;
	}
	if (w->conf.dns_servers[0]) {
		char csv[sizeof(w->conf.dns_servers)];
		size_t n = 0;
		for (const char *p = w->conf.dns_servers; *p; p++)
			if (*p != ' ' && *p != '\t')
				csv[n++] = *p;
		csv[n] = 0;
		rc = ares_set_servers_ports_csv(dn->channel, csv);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "[dns] servers '%s': %s", w->conf.dns_servers, ares_strerror(rc));
			return -1;
		}
	}
	struct ares_addr_port_node *servers = NULL;
	*nservers = 0;
	if (ares_get_servers_ports(dn->channel, &servers) == ARES_SUCCESS)
		for (struct ares_addr_port_node *s = servers; s; s = s->next)
			(*nservers)++;
	ares_free_data(servers);
	return 0;
}

int dns_init(struct worker *w, char *err, size_t errlen)
{
	int rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares init: %s", ares_strerror(rc));
		return -1;
	}
	struct dns *dn = calloc(1, sizeof(*dn));
	if (!dn) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	list_init(&dn->waiting);
	w->dns = dn;
	int nservers = 0;
	if (dns_channel(w, ARES_FLAG_NOSEARCH, &nservers, err, errlen) < 0)
		return -1;
	if (nservers == 1) {
		/* With one server there is no other to try after a SERVFAIL or REFUSED: report those as
		 * they are (c-ares would say "could not contact the DNS server"). */
		ares_destroy(dn->channel);
		dn->channel = NULL;
		if (dns_channel(w, ARES_FLAG_NOSEARCH | ARES_FLAG_NOCHECKRESP, &nservers, err, errlen) < 0)
			return -1;
	}
	dn->family = !strcmp(w->conf.dns_family, "ipv4") ? AF_INET
		     : !strcmp(w->conf.dns_family, "ipv6") ? AF_INET6 : AF_UNSPEC;
	if (w->conf.dns_cache_size && !(dn->cache = dnscache_new(w->conf.dns_cache_size))) {
		snprintf(err, errlen, "out of memory for the DNS cache");
		return -1;
	}
	return dns_load_hosts(w, err, errlen);
}

void dns_fini(struct worker *w)
{
	struct dns *dn = w->dns;
	if (!dn)
		return;
	if (dn->channel)
		ares_destroy(dn->channel); /* pending lookups call back with ARES_EDESTRUCTION */
	struct link *l;
	while ((l = list_pop(&dn->waiting))) /* never started: no callback will free them */
		free(list_entry(l, struct dns_query, waiting_link));
	dnscache_free(dn->cache);
	hostsfile_free(dn->hosts);
	free(dn);
	w->dns = NULL;
	ares_library_cleanup();
}

const char *dns_strerror(int status)
{
	switch (status) {
	case ARES_ENOTFOUND:
		return "no such host (NXDOMAIN)";
	case ARES_ENODATA:
		return "no address records";
	case ARES_ESERVFAIL:
		return "server failure (SERVFAIL)";
	case ARES_EREFUSED:
		return "query refused";
	case ARES_ETIMEOUT:
		return "lookup timed out";
	case ARES_ECONNREFUSED:
		return "could not contact the DNS server";
	default:
		return ares_strerror(status);
	}
}



static struct dns_query **dns_query_slot(struct dns *dn, const char *name)
{
	struct dns_query **pp = &dn->queries[hash_str(name) % DNS_QUERY_BUCKETS];
	while (*pp && strcmp((*pp)->name, name) != 0)
		pp = &(*pp)->hash_next;
	return pp;
}

/* Hand addresses (port 0, from the cache, the hosts file or a lookup) to one waiting host. */
static void dns_deliver(struct worker *w, struct host *h, int status, const union sockaddr_any *addrs,
			unsigned n, int64_t expires_ns)
{
	union sockaddr_any a[FETCHD_MAX_ADDRS];
	if (n > FETCHD_MAX_ADDRS)
		n = FETCHD_MAX_ADDRS;
	for (unsigned i = 0; i < n; i++) {
		a[i] = addrs[i];
		if (a[i].sa.sa_family == AF_INET)
			a[i].in4.sin_port = htons(h->port);
		else
			a[i].in6.sin6_port = htons(h->port);
	}
	sched_dns_done(w, h, status, a, n, expires_ns);
}

/* The TTL to keep an answer: the smallest of its records', within [min_ttl_s, max_ttl_s]. */
static int64_t dns_answer_expiry(const struct worker *w, const struct ares_addrinfo *res)
{
	int ttl = INT32_MAX;
	for (const struct ares_addrinfo_node *nd = res ? res->nodes : NULL; nd; nd = nd->ai_next)
		if (nd->ai_ttl < ttl)
			ttl = nd->ai_ttl;
	return dnscache_expiry(w->now_ns, ttl == INT32_MAX ? 0 : ttl, w->conf.dns_min_ttl_s, w->conf.dns_max_ttl_s);
}

static unsigned dns_collect(const struct ares_addrinfo *res, union sockaddr_any *addrs)
{
	unsigned n = 0;
	for (const struct ares_addrinfo_node *nd = res ? res->nodes : NULL; nd && n < FETCHD_MAX_ADDRS;
	     nd = nd->ai_next) {
		if (nd->ai_family != AF_INET && nd->ai_family != AF_INET6)
			continue;
		memset(&addrs[n], 0, sizeof(addrs[n]));
		memcpy(&addrs[n], nd->ai_addr, nd->ai_addrlen <= sizeof(addrs[n]) ? nd->ai_addrlen : sizeof(addrs[n]));
		n++;
	}
	return n;
}

static void dns_query_start(struct worker *w, struct dns_query *q);

static void dns_query_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct dns_query *q = arg;
	struct worker *w = q->w;
	(void)timeouts;
	if (status == ARES_EDESTRUCTION) { /* shutting down: hosts are freed with everything else */
		if (res)
			ares_freeaddrinfo(res);
		free(q);
		return;
	}
	struct dns *dn = w->dns;
	*dns_query_slot(dn, q->name) = q->hash_next;
	dn->pending--;
	struct link *next = list_pop(&dn->waiting);
	if (next) {
		list_init(next);
		dns_query_start(w, list_entry(next, struct dns_query, waiting_link));
	}
	w->now_ns = ring_now_ns();
	union sockaddr_any addrs[FETCHD_MAX_ADDRS];
	unsigned n = status == ARES_SUCCESS ? dns_collect(res, addrs) : 0;
	if (status == ARES_SUCCESS && n == 0)
		status = ARES_ENODATA;
	int64_t expires_ns = dns_answer_expiry(w, res);
	if (res)
		ares_freeaddrinfo(res);
	if (dn->cache && n > 0)
		dnscache_put(dn->cache, q->name, 0, addrs, n, expires_ns);
	else if (dn->cache && (status == ARES_ENOTFOUND || status == ARES_ENODATA))
		dnscache_put(dn->cache, q->name, status, NULL, 0, w->now_ns + (int64_t)w->conf.dns_negative_ttl_s * 1000000000);
	log_debug("dns: %s -> %u addresses (%s)", q->name, n, status == ARES_SUCCESS ? "ok" : dns_strerror(status));
	struct link *l;
	while ((l = list_pop(&q->waiters))) {
		struct host *h = list_entry(l, struct host, dns_link);
		list_init(l);
		dns_deliver(w, h, status, addrs, n, expires_ns);
	}
	free(q);
}

static void dns_query_start(struct worker *w, struct dns_query *q)
{
	struct dns *dn = w->dns;
	dn->pending++;
	w->stats.dns_queries++;
	struct ares_addrinfo_hints hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = dn->family;
	hints.ai_socktype = SOCK_STREAM;
	ares_getaddrinfo(dn->channel, q->name, NULL, &hints, dns_query_done, q); /* may call back at once */
	dns_arm_timer(w);
}

/* The cache or the hosts file may answer at once; else h waits on the (perhaps already running)
 * query for its name. */
void dns_resolve(struct worker *w, struct host *h)
{
	struct dns *dn = w->dns;
	union sockaddr_any addrs[FETCHD_MAX_ADDRS];
	int n = dn->hosts ? hostsfile_lookup(dn->hosts, h->name, dn->family, addrs, FETCHD_MAX_ADDRS) : 0;
	if (n > 0) {
		w->stats.dns_hosts_file_hits++;
		dns_deliver(w, h, ARES_SUCCESS, addrs, (unsigned)n, INT64_MAX);
		return;
	}
	const struct dnscache_entry *e = dn->cache ? dnscache_get(dn->cache, h->name, w->now_ns) : NULL;
	if (e) {
		w->stats.dns_cache_hits++;
		dns_deliver(w, h, e->status ? e->status : ARES_SUCCESS, e->addrs, e->status ? 0 : e->naddrs,
			    e->expires_ns);
		return;
	}
	struct dns_query **pp = dns_query_slot(dn, h->name);
	if (*pp) {
		w->stats.dns_coalesced++;
		list_add_tail(&(*pp)->waiters, &h->dns_link);
		return;
	}
	struct dns_query *q = calloc(1, sizeof(*q));
	if (!q) {
		dns_deliver(w, h, ARES_ENOMEM, NULL, 0, 0);
		return;
	}
	q->w = w;
	snprintf(q->name, sizeof(q->name), "%s", h->name);
	list_init(&q->waiters);
	list_init(&q->waiting_link);
	list_add_tail(&q->waiters, &h->dns_link);
	*pp = q;
	if (dn->pending >= DNS_MAX_QUERIES) {
		list_add_tail(&dn->waiting, &q->waiting_link); /* started when one in flight ends */
		return;
	}
	dns_query_start(w, q);
}

void dns_on_cqe(struct worker *w, const struct ring_cqe *cqe)
{
	struct dns *dn = w->dns;
	uint32_t i = ring_ud_idx(cqe->user_data);
	if (!dn || i >= DNS_MAX_SOCKS || ring_ud_gen(cqe->user_data) != dn->socks[i].gen)
		return;
	struct dns_sock *s = &dn->socks[i];
	if (ring_ud_op(cqe->user_data) == OP_DNS_REMOVE)
		return; /* the removed poll's own completion does the bookkeeping */
	s->armed = 0;
	s->removing = false;
	if (cqe->res > 0 && s->want) {
		ares_socket_t rfd = (cqe->res & (POLLIN | POLLERR | POLLHUP)) ? s->fd : ARES_SOCKET_BAD;
		ares_socket_t wfd = (cqe->res & (POLLOUT | POLLERR | POLLHUP)) ? s->fd : ARES_SOCKET_BAD;
		ares_process_fd(dn->channel, rfd, wfd);
	}
	if (!s->want)
		s->gen = (s->gen + 1) & RING_GEN_MASK; /* slot free: a late completion cannot match */
	else
		dns_arm(w, i);
	dns_arm_timer(w);
}

void dns_on_timer(struct worker *w, int64_t deadline_ns)
{
	struct dns *dn = w->dns;
	if (!dn || deadline_ns != dn->timer_at_ns)
		return;
	dn->timer_at_ns = 0;
	ares_process_fd(dn->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_arm_timer(w);
}

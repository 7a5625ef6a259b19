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

#include "daemon/log.h"

#define DNS_MAX_SOCKS 64

struct dns_sock {
	int fd;
	uint32_t gen;
	uint32_t want;  /* POLLIN|POLLOUT c-ares asked for; 0: slot unused */
	uint32_t armed; /* mask of the poll in flight; 0: none */
	bool removing;
};

struct dns {
	ares_channel channel;
	struct dns_sock socks[DNS_MAX_SOCKS];
	int64_t timer_at_ns;
	uint32_t pending;
};

static uint64_t dns_ud(const struct dns *dn, uint32_t i, uint8_t op)
{
	return ring_ud(op, dn->socks[i].gen, i);
}

static void dns_arm(struct fetchd *d, uint32_t i)
{
	struct dns_sock *s = &d->dns->socks[i];
	if (s->armed || !s->want)
		return;
	ring_poll(&d->ring, s->fd, s->want, dns_ud(d->dns, i, OP_DNS_POLL));
	s->armed = s->want;
}

static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct fetchd *d = data;
	struct dns *dn = d->dns;
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
		ring_poll_remove(&d->ring, dns_ud(dn, (uint32_t)slot, OP_DNS_POLL), dns_ud(dn, (uint32_t)slot, OP_DNS_REMOVE));
		s->removing = true;
	} else if (!s->armed && want) {
		dns_arm(d, (uint32_t)slot);
	}
}

static void dns_arm_timer(struct fetchd *d)
{
	struct dns *dn = d->dns;
	struct timeval tv;
	if (!dn->pending || !ares_timeout(dn->channel, NULL, &tv))
		return;
	int64_t dl = d->now_ns + (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
	if (dn->timer_at_ns && dn->timer_at_ns <= dl)
		return;
	dn->timer_at_ns = dl;
	fetchd_timer(d, dl, TK_DNS, 0, 0);
}

int dns_init(struct fetchd *d, char *err, size_t errlen)
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
	d->dns = dn;
	struct ares_options o;
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = dns_sock_state;
	o.sock_state_cb_data = d;
	o.timeout = (int)d->conf.dns_timeout_ms;
	o.tries = (int)d->conf.dns_tries;
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
	rc = ares_init_options(&dn->channel, &o, mask);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares channel: %s", ares_strerror(rc));
		return -1;
	}
	if (d->conf.dns_servers[0]) {
		char csv[sizeof(d->conf.dns_servers)];
		size_t n = 0;
		for (const char *p = d->conf.dns_servers; *p; p++)
			if (*p != ' ' && *p != '\t')
				csv[n++] = *p;
		csv[n] = 0;
		rc = ares_set_servers_ports_csv(dn->channel, csv);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "[dns] servers '%s': %s", d->conf.dns_servers, ares_strerror(rc));
			return -1;
		}
	}
	return 0;
}

void dns_fini(struct fetchd *d)
{
	struct dns *dn = d->dns;
	if (!dn)
		return;
	if (dn->channel)
		ares_destroy(dn->channel); /* pending lookups call back with ARES_EDESTRUCTION */
	free(dn);
	d->dns = NULL;
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

struct dns_query {
	struct fetchd *d;
	struct host *h;
};

static void dns_query_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct dns_query *q = arg;
	struct fetchd *d = q->d;
	struct host *h = q->h;
	free(q);
	(void)timeouts;
	d->dns->pending--;
	if (status == ARES_EDESTRUCTION) {
		if (res)
			ares_freeaddrinfo(res);
		return; /* shutting down: hosts are freed with everything else */
	}
	d->now_ns = ring_now_ns();
	union sockaddr_any addrs[FETCHD_MAX_ADDRS];
	unsigned n = 0;
	for (struct ares_addrinfo_node *nd = res ? res->nodes : NULL; nd && n < FETCHD_MAX_ADDRS; nd = nd->ai_next) {
		if (nd->ai_family != AF_INET && nd->ai_family != AF_INET6)
			continue;
		memset(&addrs[n], 0, sizeof(addrs[n]));
		memcpy(&addrs[n], nd->ai_addr, nd->ai_addrlen <= sizeof(addrs[n]) ? nd->ai_addrlen : sizeof(addrs[n]));
		if (nd->ai_family == AF_INET)
			addrs[n].in4.sin_port = htons(h->port);
		else
			addrs[n].in6.sin6_port = htons(h->port);
		n++;
	}
	if (res)
		ares_freeaddrinfo(res);
	if (status == ARES_SUCCESS && n == 0)
		status = ARES_ENODATA;
	log_debug("dns: %s -> %u addresses (%s)", h->name, n, status == ARES_SUCCESS ? "ok" : dns_strerror(status));
	sched_dns_done(d, h, status, addrs, status == ARES_SUCCESS ? n : 0);
}

void dns_resolve(struct fetchd *d, struct host *h)
{
	struct dns_query *q = malloc(sizeof(*q));
	if (!q) {
		sched_dns_done(d, h, ARES_ENOMEM, NULL, 0);
		return;
	}
	q->d = d;
	q->h = h;
	struct ares_addrinfo_hints hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	d->dns->pending++;
	ares_getaddrinfo(d->dns->channel, h->name, NULL, &hints, dns_query_done, q);
	dns_arm_timer(d);
}

void dns_on_cqe(struct fetchd *d, const struct ring_cqe *cqe)
{
	struct dns *dn = d->dns;
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
		dns_arm(d, i);
	dns_arm_timer(d);
}

void dns_on_timer(struct fetchd *d, int64_t deadline_ns)
{
	struct dns *dn = d->dns;
	if (!dn || deadline_ns != dn->timer_at_ns)
		return;
	dn->timer_at_ns = 0;
	ares_process_fd(dn->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_arm_timer(d);
}

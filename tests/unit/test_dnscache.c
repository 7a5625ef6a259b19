/* test_dnscache.c - the resolution cache: hits and misses, case-insensitive names, expiry exactly at
 * the boundary, replacing an entry (more and fewer addresses, positive and negative), LRU eviction
 * order, negative entries, bad arguments, TTL clamping, and 100,000 names through a cache of 1,000. */
#include "daemon/dnscache.h"
#include "tests/unit/test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC 1000000000ll
#define NXDOMAIN_STATUS 4 /* ARES_ENOTFOUND's value; any nonzero code will do */

/* The address text (IPv6 when it has a colon) with the given port; exits on a typo in the test. */
static union sockaddr_any addr_of(const char *text, unsigned port)
{
	union sockaddr_any a;
	int ok;

	memset(&a, 0, sizeof a);
	if (strchr(text, ':')) {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons(port);
		ok = inet_pton(AF_INET6, text, &a.in6.sin6_addr);
	} else {
		a.in4.sin_family = AF_INET;
		a.in4.sin_port = htons(port);
		ok = inet_pton(AF_INET, text, &a.in4.sin_addr);
	}
	if (ok != 1) {
		fprintf(stderr, "test bug: bad address %s\n", text);
		exit(2);
	}
	return a;
}

/* Address i of the entry as text ("?" when missing). */
static const char *addr_text(const struct dnscache_entry *e, unsigned i, char *buf, size_t cap)
{
	if (!e || i >= e->naddrs)
		return "?";
	const union sockaddr_any *a = &e->addrs[i];
	const void *src = a->sa.sa_family == AF_INET ? (const void *)&a->in4.sin_addr
						      : (const void *)&a->in6.sin6_addr;
	return inet_ntop(a->sa.sa_family, src, buf, (socklen_t)cap) ? buf : "?";
}

static unsigned addr_port(const union sockaddr_any *a)
{
	return ntohs(a->sa.sa_family == AF_INET ? a->in4.sin_port : a->in6.sin6_port);
}

static struct dnscache *new_cache(uint32_t max)
{
	struct dnscache *c = dnscache_new(max);
	if (!c) {
		fprintf(stderr, "dnscache_new(%u) failed\n", max);
		exit(2);
	}
	return c;
}

static int put1(struct dnscache *c, const char *name, const char *addr, int64_t exp)
{
	union sockaddr_any a = addr_of(addr, 0);
	return dnscache_put(c, name, 0, &a, 1, exp);
}

static void test_hit_miss(void)
{
	struct dnscache *c = new_cache(16);
	union sockaddr_any a[2] = { addr_of("192.0.2.1", 80), addr_of("2001:db8::1", 443) };
	char buf[64];

	CHECK(dnscache_get(c, "example.com", 0) == NULL, "empty cache hit");
	CHECK(dnscache_put(c, "example.com", 0, a, 2, 10 * SEC) == 0, "put");
	const struct dnscache_entry *e = dnscache_get(c, "example.com", 1 * SEC);
	CHECK(e != NULL, "miss after put");
	CHECK(e && e->status == 0 && e->naddrs == 2, "status %d naddrs %u", e ? e->status : -1,
	      e ? e->naddrs : 0);
	CHECK(strcmp(addr_text(e, 0, buf, sizeof buf), "192.0.2.1") == 0, "addr 0 %s", buf);
	CHECK(strcmp(addr_text(e, 1, buf, sizeof buf), "2001:db8::1") == 0, "addr 1 %s", buf);
	CHECK(e && addr_port(&e->addrs[0]) == 0 && addr_port(&e->addrs[1]) == 0, "ports not cleared");
	CHECK(e && e->expires_ns == 10 * SEC, "expires %lld", e ? (long long)e->expires_ns : 0);
	CHECK(e && strcmp(e->name, "example.com") == 0, "name %s", e ? e->name : "");
	CHECK(dnscache_get(c, "example.org", 1 * SEC) == NULL, "hit on another name");
	CHECK(dnscache_get(c, "example.co", 1 * SEC) == NULL, "hit on a prefix");
	CHECK(dnscache_get(c, "example.com.", 1 * SEC) == NULL, "hit on a longer name");

	struct dnscache_stats st = dnscache_stats(c);
	CHECK(st.size == 1 && st.hits == 1 && st.misses == 4 && st.expired == 0 && st.evictions == 0,
	      "stats size %u hits %llu misses %llu", st.size, (unsigned long long)st.hits,
	      (unsigned long long)st.misses);
	dnscache_free(c);
}

static void test_case(void)
{
	struct dnscache *c = new_cache(16);
	char buf[64];

	CHECK(put1(c, "WWW.Example.COM", "192.0.2.7", 10 * SEC) == 0, "put");
	const struct dnscache_entry *e = dnscache_get(c, "www.example.com", 0);
	CHECK(e && strcmp(e->name, "www.example.com") == 0, "stored name %s", e ? e->name : "(miss)");
	CHECK(dnscache_get(c, "WWW.EXAMPLE.COM", 0) != NULL, "upper-case miss");
	CHECK(dnscache_get(c, "wWw.eXaMpLe.CoM", 0) != NULL, "mixed-case miss");
	/* Same name in another case replaces, it does not add. */
	CHECK(put1(c, "www.EXAMPLE.com", "192.0.2.8", 10 * SEC) == 0, "put again");
	CHECK(dnscache_stats(c).size == 1, "size %u", dnscache_stats(c).size);
	e = dnscache_get(c, "Www.Example.Com", 0);
	CHECK(strcmp(addr_text(e, 0, buf, sizeof buf), "192.0.2.8") == 0, "replaced addr %s", buf);
	/* Only ASCII letters fold. */
	CHECK(put1(c, "a-b_c.9", "192.0.2.9", 10 * SEC) == 0, "put digits");
	CHECK(dnscache_get(c, "A-B_C.9", 0) != NULL, "miss");
	CHECK(dnscache_get(c, "a-b_c.9", 0) != NULL, "miss");
	CHECK(dnscache_get(c, "a-b-c.9", 0) == NULL, "'_' folded to '-'");
	dnscache_free(c);
}

static void test_expiry(void)
{
	struct dnscache *c = new_cache(16);

	CHECK(put1(c, "a.test", "192.0.2.1", 100) == 0, "put");
	CHECK(dnscache_get(c, "a.test", 99) != NULL, "expired one ns early");
	CHECK(dnscache_get(c, "a.test", 100) == NULL, "fresh at expires_ns");
	struct dnscache_stats st = dnscache_stats(c);
	CHECK(st.size == 0 && st.expired == 1 && st.hits == 1 && st.misses == 1,
	      "size %u expired %llu", st.size, (unsigned long long)st.expired);
	/* Removed for good: going back in time does not bring it back. */
	CHECK(dnscache_get(c, "a.test", 0) == NULL, "expired entry still there");
	CHECK(dnscache_stats(c).expired == 1, "counted twice");
	/* Already expired on insertion. */
	CHECK(put1(c, "b.test", "192.0.2.2", -5) == 0, "put");
	CHECK(dnscache_get(c, "b.test", -5) == NULL, "entry expired on insertion served");
	CHECK(put1(c, "c.test", "192.0.2.3", INT64_MAX) == 0, "put");
	CHECK(dnscache_get(c, "c.test", INT64_MAX - 1) != NULL, "never-expiring entry expired");
	dnscache_free(c);
}

static void test_replace(void)
{
	struct dnscache *c = new_cache(4);
	union sockaddr_any many[10];
	char text[32], buf[64];

	for (unsigned i = 0; i < 10; i++) {
		snprintf(text, sizeof text, "198.51.100.%u", i + 1);
		many[i] = addr_of(text, 8080);
	}
	CHECK(put1(c, "r.test", "192.0.2.1", 10 * SEC) == 0, "put one");
	/* Growing past the entry's room, then more than DNSCACHE_MAX_ADDRS: the first 8 are kept. */
	CHECK(dnscache_put(c, "r.test", 0, many, 10, 20 * SEC) == 0, "put ten");
	const struct dnscache_entry *e = dnscache_get(c, "r.test", 0);
	CHECK(e && e->naddrs == DNSCACHE_MAX_ADDRS, "naddrs %u", e ? e->naddrs : 0);
	CHECK(e && e->expires_ns == 20 * SEC, "expiry not replaced");
	CHECK(strcmp(addr_text(e, 0, buf, sizeof buf), "198.51.100.1") == 0, "first %s", buf);
	CHECK(strcmp(addr_text(e, 7, buf, sizeof buf), "198.51.100.8") == 0, "last %s", buf);
	/* Shrinking, then negative, then positive again. */
	CHECK(dnscache_put(c, "r.test", 0, many + 5, 2, 30 * SEC) == 0, "put two");
	e = dnscache_get(c, "r.test", 0);
	CHECK(e && e->naddrs == 2, "naddrs %u", e ? e->naddrs : 0);
	CHECK(strcmp(addr_text(e, 1, buf, sizeof buf), "198.51.100.7") == 0, "second %s", buf);
	CHECK(dnscache_put(c, "r.test", NXDOMAIN_STATUS, NULL, 0, 40 * SEC) == 0, "put negative");
	e = dnscache_get(c, "r.test", 0);
	CHECK(e && e->status == NXDOMAIN_STATUS && e->naddrs == 0, "not negative");
	CHECK(put1(c, "r.test", "2001:db8::5", 50 * SEC) == 0, "put positive");
	e = dnscache_get(c, "r.test", 0);
	CHECK(e && e->status == 0 && e->naddrs == 1 && e->addrs[0].sa.sa_family == AF_INET6,
	      "not positive again");
	CHECK(dnscache_stats(c).size == 1 && dnscache_stats(c).evictions == 0, "replace added");
	dnscache_free(c);
}

static void test_lru(void)
{
	struct dnscache *c = new_cache(3);

	CHECK(put1(c, "a", "192.0.2.1", SEC) == 0, "put a");
	CHECK(put1(c, "b", "192.0.2.2", SEC) == 0, "put b");
	CHECK(put1(c, "c", "192.0.2.3", SEC) == 0, "put c");
	/* Order, most recent first: c b a. A hit on a makes it a c b. */
	CHECK(dnscache_get(c, "a", 0) != NULL, "a");
	CHECK(put1(c, "d", "192.0.2.4", SEC) == 0, "put d"); /* evicts b: d a c */
	CHECK(dnscache_get(c, "b", 0) == NULL, "b not evicted");
	CHECK(dnscache_get(c, "a", 0) && dnscache_get(c, "c", 0) && dnscache_get(c, "d", 0),
	      "wrong entry evicted"); /* now d c a */
	/* Replacing makes an entry most recent as well: a d c. */
	CHECK(put1(c, "a", "192.0.2.5", SEC) == 0, "replace a");
	CHECK(put1(c, "e", "192.0.2.6", SEC) == 0, "put e"); /* evicts c: e a d */
	CHECK(dnscache_get(c, "c", 0) == NULL, "c not evicted");
	CHECK(put1(c, "f", "192.0.2.7", SEC) == 0, "put f"); /* evicts d: f e a */
	CHECK(dnscache_get(c, "d", 0) == NULL, "d not evicted");
	CHECK(dnscache_get(c, "a", 0) && dnscache_get(c, "e", 0) && dnscache_get(c, "f", 0),
	      "wrong entry evicted");
	/* Order f e a. A miss does not touch it: the next new name still evicts a. */
	CHECK(dnscache_get(c, "zzz", 0) == NULL, "zzz");
	CHECK(put1(c, "g", "192.0.2.8", SEC) == 0, "put g"); /* evicts a: g f e */
	CHECK(dnscache_get(c, "a", 0) == NULL, "a not evicted");
	CHECK(dnscache_get(c, "e", 0) && dnscache_get(c, "f", 0) && dnscache_get(c, "g", 0),
	      "wrong entry evicted");
	struct dnscache_stats st = dnscache_stats(c);
	CHECK(st.size == 3 && st.evictions == 4, "size %u evictions %llu", st.size,
	      (unsigned long long)st.evictions);
	dnscache_free(c);

	/* max_entries 1: every new name replaces the last one. */
	c = new_cache(1);
	CHECK(put1(c, "x", "192.0.2.1", SEC) == 0 && put1(c, "y", "192.0.2.2", SEC) == 0, "put");
	CHECK(dnscache_get(c, "x", 0) == NULL && dnscache_get(c, "y", 0) != NULL, "max 1");
	CHECK(dnscache_stats(c).size == 1 && dnscache_stats(c).evictions == 1, "max 1 stats");
	dnscache_free(c);
}

static void test_negative(void)
{
	struct dnscache *c = new_cache(8);
	union sockaddr_any junk = addr_of("192.0.2.1", 0);

	/* A negative entry ignores whatever addresses come with it. */
	CHECK(dnscache_put(c, "nx.test", NXDOMAIN_STATUS, &junk, 1, 5 * SEC) == 0, "put");
	CHECK(dnscache_put(c, "fail.test", -3, NULL, 7, 5 * SEC) == 0, "put");
	const struct dnscache_entry *e = dnscache_get(c, "NX.test", 4 * SEC);
	CHECK(e && e->status == NXDOMAIN_STATUS && e->naddrs == 0, "negative entry %d %u",
	      e ? e->status : 0, e ? e->naddrs : 99);
	e = dnscache_get(c, "fail.test", 4 * SEC);
	CHECK(e && e->status == -3 && e->naddrs == 0, "negative status not kept");
	CHECK(dnscache_get(c, "nx.test", 5 * SEC) == NULL, "negative entry past expiry");
	/* A negative entry can grow into a positive one. */
	CHECK(put1(c, "fail.test", "192.0.2.2", 9 * SEC) == 0, "put positive");
	e = dnscache_get(c, "fail.test", 0);
	CHECK(e && e->status == 0 && e->naddrs == 1, "positive after negative");
	dnscache_free(c);
}

static void test_bad_args(void)
{
	struct dnscache *c = new_cache(8);
	union sockaddr_any a[2] = { addr_of("192.0.2.1", 0), addr_of("192.0.2.2", 0) };
	char name[300];

	CHECK(dnscache_new(0) == NULL, "max 0 accepted");
	CHECK(dnscache_new(DNSCACHE_MAX_ENTRIES + 1) == NULL, "max over the limit accepted");
	struct dnscache *big = dnscache_new(DNSCACHE_MAX_ENTRIES);
	CHECK(big != NULL, "max at the limit refused"); /* nothing preallocated for it */
	dnscache_free(big);
	dnscache_free(NULL);

	CHECK(dnscache_put(c, NULL, 0, a, 1, SEC) == -EINVAL, "NULL name");
	CHECK(dnscache_put(c, "", 0, a, 1, SEC) == -EINVAL, "empty name");
	CHECK(dnscache_put(c, "x.test", 0, a, 0, SEC) == -EINVAL, "positive without addresses");
	CHECK(dnscache_put(c, "x.test", 0, NULL, 1, SEC) == -EINVAL, "NULL addresses");
	a[1].sa.sa_family = AF_UNIX;
	CHECK(dnscache_put(c, "x.test", 0, a, 2, SEC) == -EINVAL, "AF_UNIX address");
	memset(name, 'a', sizeof name);
	name[DNSCACHE_NAME_MAX] = '\0';
	CHECK(put1(c, name, "192.0.2.1", SEC) == 0, "255-byte name refused");
	CHECK(dnscache_get(c, name, 0) != NULL, "255-byte name missed");
	name[DNSCACHE_NAME_MAX] = 'a';
	name[DNSCACHE_NAME_MAX + 1] = '\0';
	CHECK(put1(c, name, "192.0.2.1", SEC) == -EINVAL, "256-byte name accepted");
	CHECK(dnscache_get(c, name, 0) == NULL, "256-byte name hit");
	CHECK(dnscache_get(c, NULL, 0) == NULL && dnscache_get(c, "", 0) == NULL, "bad name hit");
	CHECK(dnscache_stats(c).size == 1, "size %u after bad puts", dnscache_stats(c).size);
	dnscache_free(c);
}

static void test_expiry_clamp(void)
{
	int64_t now = 1000 * SEC;

	CHECK(dnscache_expiry(now, 300, 0, 3600) == now + 300 * SEC, "plain ttl");
	CHECK(dnscache_expiry(now, 5, 30, 3600) == now + 30 * SEC, "min not applied");
	CHECK(dnscache_expiry(now, 30, 30, 3600) == now + 30 * SEC, "at min");
	CHECK(dnscache_expiry(now, 86400, 30, 3600) == now + 3600 * SEC, "max not applied");
	CHECK(dnscache_expiry(now, 3600, 30, 3600) == now + 3600 * SEC, "at max");
	CHECK(dnscache_expiry(now, 0, 0, 3600) == now, "ttl 0");
	CHECK(dnscache_expiry(now, -7, 0, 3600) == now, "negative ttl");
	CHECK(dnscache_expiry(now, -7, 10, 3600) == now + 10 * SEC, "negative ttl under min");
	CHECK(dnscache_expiry(now, 100, 60, 10) == now + 10 * SEC, "min > max: max wins");
	CHECK(dnscache_expiry(now, 2147483647, 0, UINT32_MAX) == now + 2147483647ll * SEC,
	      "largest int ttl");
	CHECK(dnscache_expiry(INT64_MAX - SEC, 2, 0, 10) == INT64_MAX, "no saturation");
	CHECK(dnscache_expiry(-5 * SEC, 1, 0, 10) == -4 * SEC, "negative clock");
}

/* 100,000 distinct names through a cache of 1,000: the size stays at 1,000, the newest 1,000 are all
 * there and every older one is gone. */
static void test_many(void)
{
	enum { MAX = 1000, N = 100000 };
	struct dnscache *c = new_cache(MAX);
	char name[64];
	int bad_put = 0, bad_size = 0, missing = 0, stale = 0, wrong = 0;

	for (unsigned i = 0; i < N; i++) {
		union sockaddr_any a = addr_of("10.0.0.0", 0);
		a.in4.sin_addr.s_addr = htonl(i);
		snprintf(name, sizeof name, "host-%u.Example.TEST", i);
		bad_put += dnscache_put(c, name, 0, &a, 1, INT64_MAX) != 0;
		bad_size += dnscache_stats(c).size != (i + 1 < MAX ? i + 1 : MAX);
	}
	for (unsigned i = 0; i < N; i++) {
		snprintf(name, sizeof name, "HOST-%u.example.test", i);
		const struct dnscache_entry *e = dnscache_get(c, name, 0);
		if (i < N - MAX) {
			stale += e != NULL;
		} else if (!e) {
			missing++;
		} else {
			wrong += ntohl(e->addrs[0].in4.sin_addr.s_addr) != i;
		}
	}
	struct dnscache_stats st = dnscache_stats(c);
	CHECK(bad_put == 0, "%d puts failed", bad_put);
	CHECK(bad_size == 0, "%d times the size was off", bad_size);
	CHECK(st.size == MAX, "size %u", st.size);
	CHECK(st.evictions == N - MAX, "evictions %llu", (unsigned long long)st.evictions);
	CHECK(stale == 0, "%d evicted names still there", stale);
	CHECK(missing == 0, "%d of the newest names missing", missing);
	CHECK(wrong == 0, "%d entries with another name's address", wrong);
	CHECK(st.hits == MAX && st.misses == N - MAX, "hits %llu misses %llu",
	      (unsigned long long)st.hits, (unsigned long long)st.misses);
	dnscache_free(c);
}

int main(void)
{
	test_hit_miss();
	test_case();
	test_expiry();
	test_replace();
	test_lru();
	test_negative();
	test_bad_args();
	test_expiry_clamp();
	test_many();
	return test_report();
}

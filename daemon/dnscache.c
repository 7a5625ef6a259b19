/* dnscache.c - the resolution cache: a chained hash table on the lowercased name, doubled as entries
 * arrive (up to max_entries buckets, so about one entry per bucket), and an intrusive LRU list (most
 * recently used at the head). Each entry is one allocation sized to its name and addresses. */
#include "daemon/hash.h"
#include "daemon/dnscache.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/list.h"

#define DNSCACHE_MIN_BUCKETS 16u

struct dnscache_node {
	struct dnscache_node *hnext; /* next in the bucket's chain */
	struct link lru;             /* in cache->lru */
	uint32_t hash;
	uint32_t cap;                /* room in e.addrs */
	struct dnscache_entry e;     /* last: e.addrs[cap], then the name */
};

struct dnscache {
	struct dnscache_node **buckets;
	uint32_t nbuckets;           /* a power of two, at most max_buckets */
	uint32_t max_buckets;
	uint32_t max_entries;
	struct link lru;             /* head->next is the most recently used */
	struct dnscache_stats st;
};

/* name lowercased into key (room for DNSCACHE_NAME_MAX + 1); its length, 0 when the name is bad. */
static size_t dnscache_key(const char *name, char *key)
{
	size_t len = name ? strnlen(name, DNSCACHE_NAME_MAX + 1) : 0;

	if (len == 0 || len > DNSCACHE_NAME_MAX)
		return 0;
	hash_lower(name, len, key);
	return len;
}


static uint32_t dnscache_pow2(uint32_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

struct dnscache *dnscache_new(uint32_t max_entries)
{
	if (max_entries < 1 || max_entries > DNSCACHE_MAX_ENTRIES)
		return NULL;
	struct dnscache *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->max_entries = max_entries;
	c->max_buckets = dnscache_pow2(max_entries);
	c->nbuckets = c->max_buckets < DNSCACHE_MIN_BUCKETS ? c->max_buckets : DNSCACHE_MIN_BUCKETS;
	c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
	if (!c->buckets) {
		free(c);
		return NULL;
	}
	list_init(&c->lru);
	return c;
}

void dnscache_free(struct dnscache *c)
{
	if (!c)
		return;
	struct link *l;
	while ((l = list_pop(&c->lru)) != NULL)
		free(list_entry(l, struct dnscache_node, lru));
	free(c->buckets);
	free(c);
}

/* The chain slot that holds key, or the empty slot at the end of its chain. */
static struct dnscache_node **dnscache_find(struct dnscache *c, const char *key, size_t len,
					    uint32_t hash)
{
	struct dnscache_node **slot = &c->buckets[hash & (c->nbuckets - 1)];

	for (; *slot; slot = &(*slot)->hnext) {
		const struct dnscache_node *n = *slot;
		if (n->hash == hash && memcmp(n->e.name, key, len + 1) == 0)
			break;
	}
	return slot;
}

/* Take the node in *slot out of the table and the list, and free it. */
static void dnscache_remove(struct dnscache *c, struct dnscache_node **slot)
{
	struct dnscache_node *n = *slot;

	*slot = n->hnext;
	list_del(&n->lru);
	c->st.size--;
	free(n);
}

static void dnscache_evict(struct dnscache *c)
{
	struct dnscache_node *lru = list_entry(c->lru.prev, struct dnscache_node, lru);
	struct dnscache_node **slot = &c->buckets[lru->hash & (c->nbuckets - 1)];

	while (*slot != lru)
		slot = &(*slot)->hnext;
	dnscache_remove(c, slot);
	c->st.evictions++;
}

/* Double the table once it holds more entries than buckets. Failing to is harmless: the chains only
 * get longer. */
static void dnscache_grow(struct dnscache *c)
{
	if (c->st.size <= c->nbuckets || c->nbuckets >= c->max_buckets)
		return;
	uint32_t nb = c->nbuckets * 2;
	struct dnscache_node **b = calloc(nb, sizeof *b);
	if (!b)
		return;
	for (uint32_t i = 0; i < c->nbuckets; i++) {
		struct dnscache_node *n = c->buckets[i], *next;
		for (; n; n = next) {
			next = n->hnext;
			n->hnext = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = nb;
}

const struct dnscache_entry *dnscache_get(struct dnscache *c, const char *name, int64_t now_ns)
{
	char key[DNSCACHE_NAME_MAX + 1];
	size_t len = dnscache_key(name, key);

	if (len == 0) {
		c->st.misses++;
		return NULL;
	}
	struct dnscache_node **slot = dnscache_find(c, key, len, hash_bytes(key, len));
	struct dnscache_node *n = *slot;
	if (!n) {
		c->st.misses++;
		return NULL;
	}
	if (now_ns >= n->e.expires_ns) {
		dnscache_remove(c, slot);
		c->st.expired++;
		c->st.misses++;
		return NULL;
	}
	list_del(&n->lru);
	list_add_head(&c->lru, &n->lru);
	c->st.hits++;
	return &n->e;
}

static bool dnscache_addrs_ok(const union sockaddr_any *addrs, unsigned n)
{
	if (n == 0 || !addrs)
		return false;
	for (unsigned i = 0; i < n; i++)
		if (addrs[i].sa.sa_family != AF_INET && addrs[i].sa.sa_family != AF_INET6)
			return false;
	return true;
}

static void dnscache_set(struct dnscache_node *n, int status, const union sockaddr_any *addrs,
			 unsigned naddrs, int64_t expires_ns)
{
	n->e.status = status;
	n->e.naddrs = naddrs;
	n->e.expires_ns = expires_ns;
	for (unsigned i = 0; i < naddrs; i++) {
		union sockaddr_any *a = &n->e.addrs[i];
		memset(a, 0, sizeof *a);
		if (addrs[i].sa.sa_family == AF_INET) {
			a->in4 = addrs[i].in4;
			a->in4.sin_port = 0;
		} else {
			a->in6 = addrs[i].in6;
			a->in6.sin6_port = 0;
		}
	}
}

/* A node for key with room for cap addresses, in no list yet. */
static struct dnscache_node *dnscache_node_new(const char *key, size_t len, uint32_t hash, unsigned cap)
{
	size_t addr_bytes = cap * sizeof(union sockaddr_any);
	struct dnscache_node *n = malloc(sizeof *n + addr_bytes + len + 1);

	if (!n)
		return NULL;
	char *name = (char *)n->e.addrs + addr_bytes;
	memcpy(name, key, len + 1);
	n->e.name = name;
	n->hash = hash;
	n->cap = cap;
	n->hnext = NULL;
	return n;
}

/* Replace the node in *slot; a bigger one is allocated when its addresses do not fit. */
static int dnscache_replace(struct dnscache *c, struct dnscache_node **slot, int status,
			    const union sockaddr_any *addrs, unsigned naddrs, int64_t expires_ns)
{
	struct dnscache_node *n = *slot;

	if (naddrs > n->cap) {
		struct dnscache_node *bigger =
			dnscache_node_new(n->e.name, strlen(n->e.name), n->hash, naddrs);
		if (!bigger)
			return -ENOMEM;
		bigger->hnext = n->hnext;
		*slot = bigger;
		list_del(&n->lru);
		list_add_head(&c->lru, &bigger->lru);
		free(n);
		n = bigger;
	}
	dnscache_set(n, status, addrs, naddrs, expires_ns);
	list_del(&n->lru);
	list_add_head(&c->lru, &n->lru);
	return 0;
}

int dnscache_put(struct dnscache *c, const char *name, int status, const union sockaddr_any *addrs,
		 unsigned naddrs, int64_t expires_ns)
{
	char key[DNSCACHE_NAME_MAX + 1];
	size_t len = dnscache_key(name, key);
	unsigned n = status ? 0 : (naddrs < DNSCACHE_MAX_ADDRS ? naddrs : DNSCACHE_MAX_ADDRS);

	if (len == 0 || (status == 0 && !dnscache_addrs_ok(addrs, n)))
		return -EINVAL;
	uint32_t hash = hash_bytes(key, len);
	struct dnscache_node **slot = dnscache_find(c, key, len, hash);
	if (*slot)
		return dnscache_replace(c, slot, status, addrs, n, expires_ns);

	struct dnscache_node *node = dnscache_node_new(key, len, hash, n);
	if (!node)
		return -ENOMEM;
	if (c->st.size >= c->max_entries)
		dnscache_evict(c); /* may unlink from slot's chain: link at the bucket head instead */
	struct dnscache_node **head = &c->buckets[hash & (c->nbuckets - 1)];
	node->hnext = *head;
	*head = node;
	list_add_head(&c->lru, &node->lru);
	c->st.size++;
	dnscache_set(node, status, addrs, n, expires_ns);
	dnscache_grow(c);
	return 0;
}

struct dnscache_stats dnscache_stats(const struct dnscache *c)
{
	return c->st;
}

int64_t dnscache_expiry(int64_t now_ns, int ttl_s, uint32_t min_ttl_s, uint32_t max_ttl_s)
{
	int64_t ttl = ttl_s < 0 ? 0 : ttl_s;

	if (ttl < (int64_t)min_ttl_s)
		ttl = min_ttl_s;
	if (ttl > (int64_t)max_ttl_s)
		ttl = max_ttl_s;
	int64_t add = ttl * 1000000000; /* at most 2^32 s: fits */
	if (now_ns > INT64_MAX - add)
		return INT64_MAX;
	return now_ns + add;
}

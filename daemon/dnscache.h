/* dnscache.h - a bounded cache of name resolutions, pure: host name (case-insensitive) -> either the
 * addresses it resolved to or the resolver's failure status, each with an absolute expiry on the
 * caller's monotonic clock. At most max_entries names; when full, the least recently used goes. Get
 * and put are O(1) on average (hash table + intrusive LRU list); a get never allocates. Memory grows
 * with the entries actually stored. No I/O, no clock (time is passed in), no logging. */
#ifndef FETCHD_DNSCACHE_H
#define FETCHD_DNSCACHE_H

#include <stdint.h>

#include "daemon/sockaddr.h"

#define DNSCACHE_MAX_ADDRS 8               /* addresses kept per name (the first ones given) */
#define DNSCACHE_NAME_MAX 255              /* longest name, in bytes */
#define DNSCACHE_MAX_ENTRIES 10000000u     /* largest max_entries dnscache_new takes */

struct dnscache;

/* What dnscache_get returns. status 0: a positive result, naddrs (1..DNSCACHE_MAX_ADDRS) addresses
 * in addrs, in the order given to dnscache_put, ports 0. status != 0: a negative result (the
 * resolver's code, e.g. ARES_ENOTFOUND), naddrs 0. Read-only for the caller. */
struct dnscache_entry {
	const char *name;          /* the key, lowercased, NUL-terminated */
	int64_t expires_ns;        /* fresh while now_ns < expires_ns */
	int status;
	unsigned naddrs;
	union sockaddr_any addrs[]; /* naddrs of them */
};

struct dnscache_stats {
	uint32_t size;             /* entries held now */
	uint64_t hits;             /* gets that found a fresh entry */
	uint64_t misses;           /* gets that did not (expired ones included) */
	uint64_t expired;          /* entries a get found expired and removed */
	uint64_t evictions;        /* entries removed to make room for another name */
};

/* A cache for at most max_entries names (1..DNSCACHE_MAX_ENTRIES); NULL when max_entries is out of
 * range or memory is short. */
struct dnscache *dnscache_new(uint32_t max_entries);
void dnscache_free(struct dnscache *c);

/* The fresh entry for name (any case), or NULL. A hit becomes the most recently used; an entry found
 * expired (now_ns >= expires_ns) is removed. A name that is NULL, empty or longer than
 * DNSCACHE_NAME_MAX misses. The entry stays valid until the next dnscache_put or dnscache_free on the
 * cache (gets remove only the entry of the name they look up). */
const struct dnscache_entry *dnscache_get(struct dnscache *c, const char *name, int64_t now_ns);

/* Insert or replace name's entry, which becomes the most recently used. status 0 stores addrs: naddrs
 * must be at least 1; past DNSCACHE_MAX_ADDRS only the first DNSCACHE_MAX_ADDRS are kept; each must be
 * AF_INET or AF_INET6 and is stored with port 0. status != 0 stores a negative entry (addrs and naddrs
 * ignored). A new name in a full cache evicts the least recently used entry. Returns 0; -EINVAL for a
 * bad name (NULL, empty, over DNSCACHE_NAME_MAX bytes), no addresses with status 0, or an address of
 * another family; -ENOMEM when memory is short. On an error the cache is unchanged. */
int dnscache_put(struct dnscache *c, const char *name, int status, const union sockaddr_any *addrs,
		 unsigned naddrs, int64_t expires_ns);

struct dnscache_stats dnscache_stats(const struct dnscache *c);

/* now_ns + ttl_s seconds, the TTL first raised to min_ttl_s then lowered to max_ttl_s (max wins when
 * min > max); a negative ttl_s counts as 0. Saturates at INT64_MAX instead of overflowing. */
int64_t dnscache_expiry(int64_t now_ns, int ttl_s, uint32_t min_ttl_s, uint32_t max_ttl_s);

#endif

/* urlset.h - fetchctl's set of URLs that already have a result (--resume): open addressing over one
 * string arena, grown by doubling. No other dependency. */
#ifndef FETCHCTL_URLSET_H
#define FETCHCTL_URLSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct urlset {
	uint64_t *slots;   /* 0: empty; else (arena offset + 1) << 24 | (hash & 0xffffff) */
	size_t cap, n;
	char *arena;
	size_t used, size;
};

/* Add s[0..len); returns 0, or -1 out of memory. Duplicates are kept once. */
int urlset_add(struct urlset *set, const char *s, size_t len);
bool urlset_has(const struct urlset *set, const char *s, size_t len);
void urlset_free(struct urlset *set);

#endif

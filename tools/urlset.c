/* urlset.c - a set of strings for fetchctl --resume (urlset.h). Each string sits in the arena as a
 * 4-byte length then its bytes; a slot holds its offset and 24 bits of its hash. */
#include "tools/urlset.h"

#include <stdlib.h>
#include <string.h>

static uint64_t urlset_hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

static bool urlset_eq(const struct urlset *set, uint64_t slot, const char *s, size_t len)
{
	uint32_t n;
	const char *p = set->arena + (slot >> 24) - 1;
	memcpy(&n, p, sizeof(n));
	return n == len && memcmp(p + sizeof(n), s, len) == 0;
}

/* The slot for s: its own, or the empty one where it would go. */
static size_t urlset_find(const struct urlset *set, const char *s, size_t len, uint64_t h)
{
	size_t i = h & (set->cap - 1);
	while (set->slots[i] && ((set->slots[i] & 0xffffff) != (h & 0xffffff) || !urlset_eq(set, set->slots[i], s, len)))
		i = (i + 1) & (set->cap - 1);
	return i;
}

static int urlset_grow(struct urlset *set)
{
	size_t cap = set->cap ? set->cap * 2 : 1024;
	uint64_t *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -1;
	struct urlset old = *set;
	set->slots = slots, set->cap = cap;
	for (size_t i = 0; i < old.cap; i++) {
		if (!old.slots[i])
			continue;
		uint32_t n;
		const char *p = set->arena + (old.slots[i] >> 24) - 1;
		memcpy(&n, p, sizeof(n));
		size_t j = urlset_find(set, p + sizeof(n), n, urlset_hash(p + sizeof(n), n));
		set->slots[j] = old.slots[i];
	}
	free(old.slots);
	return 0;
}

int urlset_add(struct urlset *set, const char *s, size_t len)
{
	if ((set->n + 1) * 2 > set->cap && urlset_grow(set) < 0)
		return -1;
	uint64_t h = urlset_hash(s, len);
	size_t i = urlset_find(set, s, len, h);
	if (set->slots[i])
		return 0;
	size_t need = sizeof(uint32_t) + len;
	if (set->used + need > set->size) {
		size_t size = set->size ? set->size * 2 : 65536;
		while (size < set->used + need)
			size *= 2;
		char *a = realloc(set->arena, size);
		if (!a)
			return -1;
		set->arena = a, set->size = size;
	}
	uint32_t n = (uint32_t)len;
	memcpy(set->arena + set->used, &n, sizeof(n));
	memcpy(set->arena + set->used + sizeof(n), s, len);
	set->slots[i] = (uint64_t)(set->used + 1) << 24 | (h & 0xffffff);
	set->used += need;
	set->n++;
	return 0;
}

bool urlset_has(const struct urlset *set, const char *s, size_t len)
{
	return set->cap && set->slots[urlset_find(set, s, len, urlset_hash(s, len))] != 0;
}

void urlset_free(struct urlset *set)
{
	free(set->slots);
	free(set->arena);
	memset(set, 0, sizeof(*set));
}

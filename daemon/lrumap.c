/* lrumap.c - string -> pointer map with LRU eviction: chained hash table plus an intrusive list. */
#include "daemon/lrumap.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/hash.h"
#include "daemon/list.h"

struct lrumap_entry {
	struct lrumap_entry *hash_next;
	struct link lru;          /* most recently used at the tail */
	uint32_t hash;
	void *value;
	char key[];
};

struct lrumap {
	struct lrumap_entry **buckets;
	uint32_t nbuckets, size, max;
	struct link lru;
	void (*free_value)(void *);
};


struct lrumap *lrumap_new(uint32_t max_entries, void (*free_value)(void *))
{
	if (max_entries == 0 || max_entries > 10000000)
		return NULL;
	struct lrumap *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->nbuckets = 64;
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	if (!m->buckets) {
		free(m);
		return NULL;
	}
	m->max = max_entries;
	m->free_value = free_value;
	list_init(&m->lru);
	return m;
}

static struct lrumap_entry **lrumap_slot(struct lrumap *m, const char *key, uint32_t hash)
{
	struct lrumap_entry **pp = &m->buckets[hash & (m->nbuckets - 1)];
	while (*pp && ((*pp)->hash != hash || strcmp((*pp)->key, key) != 0))
		pp = &(*pp)->hash_next;
	return pp;
}

static void lrumap_remove(struct lrumap *m, struct lrumap_entry **pp)
{
	struct lrumap_entry *e = *pp;
	*pp = e->hash_next;
	list_del(&e->lru);
	m->free_value(e->value);
	free(e);
	m->size--;
}

void lrumap_free(struct lrumap *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->nbuckets; i++)
		while (m->buckets[i])
			lrumap_remove(m, &m->buckets[i]);
	free(m->buckets);
	free(m);
}

void *lrumap_get(struct lrumap *m, const char *key)
{
	struct lrumap_entry *e = *lrumap_slot(m, key, hash_str(key));
	if (!e)
		return NULL;
	list_del(&e->lru);
	list_add_tail(&m->lru, &e->lru);
	return e->value;
}

int lrumap_evict_oldest(struct lrumap *m)
{
	if (m->size == 0)
		return -1;
	struct lrumap_entry *old = list_entry(m->lru.next, struct lrumap_entry, lru);
	lrumap_remove(m, lrumap_slot(m, old->key, old->hash));
	return 0;
}

static void lrumap_grow(struct lrumap *m)
{
	uint32_t n = m->nbuckets * 2;
	struct lrumap_entry **b = calloc(n, sizeof(*b));
	if (!b)
		return; /* longer chains, still correct */
	for (uint32_t i = 0; i < m->nbuckets; i++) {
		for (struct lrumap_entry *e = m->buckets[i], *next; e; e = next) {
			next = e->hash_next;
			e->hash_next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
}

int lrumap_put(struct lrumap *m, const char *key, void *value)
{
	size_t klen = strlen(key);
	uint32_t hash = hash_str(key);
	struct lrumap_entry **pp = lrumap_slot(m, key, hash);
	if (*pp)
		lrumap_remove(m, pp);
	struct lrumap_entry *e = klen < LRUMAP_KEY_MAX ? malloc(sizeof(*e) + klen + 1) : NULL;
	if (!e) {
		m->free_value(value);
		return -1;
	}
	if (m->size >= m->max)
		lrumap_evict_oldest(m);
	if (m->size >= m->nbuckets && m->nbuckets < (1u << 24))
		lrumap_grow(m);
	e->hash = hash;
	e->value = value;
	memcpy(e->key, key, klen + 1);
	pp = &m->buckets[hash & (m->nbuckets - 1)];
	e->hash_next = *pp;
	*pp = e;
	list_add_tail(&m->lru, &e->lru);
	m->size++;
	return 0;
}

uint32_t lrumap_size(const struct lrumap *m)
{
	return m->size;
}

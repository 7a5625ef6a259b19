/* lrumap.h - a bounded map from short strings to owned pointers, least recently used out first.
 * Pure (no I/O, no clock). Used for TLS sessions and robots.txt rules by host:port; the caller says how to free a value. */
#ifndef FETCHD_LRUMAP_H
#define FETCHD_LRUMAP_H

#include <stdint.h>

#define LRUMAP_KEY_MAX 300

struct lrumap;

/* max_entries 1..10,000,000; free_value is called for every value that leaves the map. */
struct lrumap *lrumap_new(uint32_t max_entries, void (*free_value)(void *));
void lrumap_free(struct lrumap *m);
/* The value under key, made most recently used; NULL when absent. */
void *lrumap_get(struct lrumap *m, const char *key);
/* Store value under key (replacing and freeing an old one); evicts the least recently used entry
 * when full. Returns 0, or -1 (key too long, out of memory: value is freed then). */
int lrumap_put(struct lrumap *m, const char *key, void *value);
uint32_t lrumap_size(const struct lrumap *m);
/* Drop the least recently used entry (freeing its value). Returns 0, or -1 when the map is empty. */
int lrumap_evict_oldest(struct lrumap *m);

#endif

/* test_lrumap.c - the LRU map: get/put/replace, eviction order, frees, key limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/lrumap.h"
#include "tests/unit/test.h"

static int freed;

static void count_free(void *p)
{
	freed++;
	free(p);
}

static void *val(int v)
{
	int *p = malloc(sizeof(int));
	*p = v;
	return p;
}

static int get(struct lrumap *m, const char *k)
{
	int *p = lrumap_get(m, k);
	return p ? *p : -1;
}

int main(void)
{
	CHECK(lrumap_new(0, count_free) == NULL, "0 entries refused");
	struct lrumap *m = lrumap_new(3, count_free);
	CHECK(m != NULL, "new");
	CHECK(lrumap_put(m, "a:443", val(1)) == 0 && lrumap_put(m, "b:443", val(2)) == 0, "put");
	CHECK(get(m, "a:443") == 1 && get(m, "b:443") == 2 && get(m, "c:443") == -1, "get");
	CHECK(lrumap_put(m, "a:443", val(11)) == 0 && freed == 1 && get(m, "a:443") == 11, "replace frees");
	CHECK(lrumap_put(m, "c:443", val(3)) == 0 && lrumap_size(m) == 3, "full");
	/* LRU order now: b (oldest), a, c; touching b makes a the oldest */
	CHECK(get(m, "b:443") == 2, "touch b");
	CHECK(lrumap_put(m, "d:443", val(4)) == 0 && freed == 2, "evicts one");
	CHECK(get(m, "a:443") == -1 && get(m, "b:443") == 2 && get(m, "c:443") == 3 && get(m, "d:443") == 4,
	      "the least recently used went");
	char big[LRUMAP_KEY_MAX + 10];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	CHECK(lrumap_put(m, big, val(9)) == -1 && freed == 3, "long key refused, value freed");
	/* the gets above touched b, c, d in that order: b is the oldest */
	CHECK(lrumap_evict_oldest(m) == 0 && freed == 4 && get(m, "b:443") == -1 && lrumap_size(m) == 2,
	      "evict_oldest takes the least recently used");
	lrumap_free(m);
	CHECK(freed == 6, "free releases the rest (%d)", freed);
	m = lrumap_new(2, count_free);
	CHECK(lrumap_evict_oldest(m) == -1, "evict on an empty map");
	lrumap_free(m);
	m = lrumap_new(1000, count_free);
	char k[32];
	for (int i = 0; i < 100000; i++) {
		snprintf(k, sizeof(k), "h%d:443", i);
		lrumap_put(m, k, val(i));
	}
	CHECK(lrumap_size(m) == 1000, "bounded: %u", lrumap_size(m));
	CHECK(get(m, "h99999:443") == 99999 && get(m, "h98999:443") == -1 && get(m, "h99000:443") == 99000,
	      "keeps the newest 1000");
	lrumap_free(m);
	return test_report();
}

/* waitheap.c - the intrusive min-heap of waiting things (waitheap.h). */
#include "daemon/waitheap.h"

#include <stdlib.h>

static void waitheap_set(struct waitheap *h, uint32_t i, struct wait_node *n)
{
	h->v[i] = n;
	n->pos = i;
}

static void waitheap_up(struct waitheap *h, uint32_t i)
{
	struct wait_node *n = h->v[i];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (h->v[parent]->due_ns <= n->due_ns)
			break;
		waitheap_set(h, i, h->v[parent]);
		i = parent;
	}
	waitheap_set(h, i, n);
}

static void waitheap_down(struct waitheap *h, uint32_t i)
{
	struct wait_node *n = h->v[i];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		int64_t best = n->due_ns;
		if (l < h->len && h->v[l]->due_ns < best)
			m = l, best = h->v[l]->due_ns;
		if (r < h->len && h->v[r]->due_ns < best)
			m = r;
		if (m == i)
			break;
		waitheap_set(h, i, h->v[m]);
		i = m;
	}
	waitheap_set(h, i, n);
}

int waitheap_add(struct waitheap *h, struct wait_node *n, int64_t due_ns)
{
	if (h->len == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2 : 64;
		struct wait_node **v = realloc(h->v, cap * sizeof(*v));
		if (!v)
			return -1;
		h->v = v, h->cap = cap;
	}
	n->due_ns = due_ns;
	h->v[h->len] = n;
	n->pos = h->len++;
	waitheap_up(h, n->pos);
	return 0;
}

void waitheap_del(struct waitheap *h, struct wait_node *n)
{
	uint32_t i = n->pos;
	if (i == WAITHEAP_NONE)
		return;
	n->pos = WAITHEAP_NONE;
	struct wait_node *last = h->v[--h->len];
	if (i == h->len)
		return;
	waitheap_set(h, i, last);
	waitheap_up(h, i);
	waitheap_down(h, last->pos);
}

struct wait_node *waitheap_pop_due(struct waitheap *h, int64_t now_ns)
{
	if (h->len == 0 || h->v[0]->due_ns > now_ns)
		return NULL;
	struct wait_node *n = h->v[0];
	waitheap_del(h, n);
	return n;
}

int64_t waitheap_next(const struct waitheap *h)
{
	return h->len ? h->v[0]->due_ns : INT64_MAX;
}

void waitheap_fini(struct waitheap *h)
{
	free(h->v);
	h->v = NULL;
	h->len = h->cap = 0;
}

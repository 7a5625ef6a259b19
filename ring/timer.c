/* timer.c - a binary min-heap of deadlines, ordered by deadline_ns. */
#include "ring/timer.h"

#include <errno.h>
#include <stdlib.h>

int ring_timers_init(struct ring_timers *t, uint32_t initial_cap)
{
	t->len = 0;
	t->cap = initial_cap ? initial_cap : 64;
	t->heap = malloc(sizeof(*t->heap) * t->cap);
	return t->heap ? 0 : -ENOMEM;
}

void ring_timers_fini(struct ring_timers *t)
{
	free(t->heap);
	t->heap = NULL;
	t->len = t->cap = 0;
}

static void ring_timers_swap(struct ring_timer_entry *a, struct ring_timer_entry *b)
{
	struct ring_timer_entry tmp = *a;
	*a = *b;
	*b = tmp;
}

int ring_timers_add(struct ring_timers *t, int64_t deadline_ns, uint64_t key)
{
	if (t->len == t->cap) {
		struct ring_timer_entry *n = realloc(t->heap, sizeof(*n) * t->cap * 2);
		if (!n)
			return -ENOMEM;
		t->heap = n;
		t->cap *= 2;
	}
	uint32_t i = t->len++;
	t->heap[i].deadline_ns = deadline_ns;
	t->heap[i].key = key;
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (t->heap[parent].deadline_ns <= t->heap[i].deadline_ns)
			break;
		ring_timers_swap(&t->heap[parent], &t->heap[i]);
		i = parent;
	}
	return 0;
}

int64_t ring_timers_next(const struct ring_timers *t)
{
	return t->len ? t->heap[0].deadline_ns : INT64_MAX;
}

static void ring_timers_sift_down(struct ring_timers *t, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < t->len && t->heap[l].deadline_ns < t->heap[m].deadline_ns)
			m = l;
		if (r < t->len && t->heap[r].deadline_ns < t->heap[m].deadline_ns)
			m = r;
		if (m == i)
			return;
		ring_timers_swap(&t->heap[i], &t->heap[m]);
		i = m;
	}
}

int ring_timers_pop_expired(struct ring_timers *t, int64_t now_ns, struct ring_timer_entry *e)
{
	if (t->len == 0 || t->heap[0].deadline_ns > now_ns)
		return 0;
	*e = t->heap[0];
	t->heap[0] = t->heap[--t->len];
	ring_timers_sift_down(t, 0);
	return 1;
}

/* test_waitheap.c - unit tests for daemon/waitheap.c: order, removal from any place, against a model
 * (an array sorted by brute force), with a seeded PRNG. */
#include "daemon/waitheap.h"
#include "tests/unit/test.h"

#include <stdlib.h>

#define N 2000

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return rng;
}

/* The earliest node still in the heap, by brute force. */
static struct wait_node *model_min(struct wait_node *nodes)
{
	struct wait_node *m = NULL;
	for (int i = 0; i < N; i++)
		if (wait_node_queued(&nodes[i]) && (!m || nodes[i].due_ns < m->due_ns))
			m = &nodes[i];
	return m;
}

int main(void)
{
	static struct wait_node nodes[N];
	struct waitheap h = { 0 };
	for (int i = 0; i < N; i++)
		wait_node_init(&nodes[i], (uint8_t)(i & 1));
	CHECK(waitheap_next(&h) == INT64_MAX && waitheap_pop_due(&h, INT64_MAX) == NULL, "empty");
	int bad = 0;
	for (int round = 0; round < 20000; round++) {
		struct wait_node *n = &nodes[next_rand() % N];
		uint64_t op = next_rand() % 4;
		if (op < 2 && !wait_node_queued(n))
			bad += waitheap_add(&h, n, (int64_t)(next_rand() % 1000)) != 0;
		else if (op == 2)
			waitheap_del(&h, n);
		else {
			struct wait_node *m = model_min(nodes);
			int64_t now = (int64_t)(next_rand() % 1000);
			struct wait_node *p = waitheap_pop_due(&h, now);
			if (m && m->due_ns <= now)
				bad += !p || p->due_ns != m->due_ns || wait_node_queued(p);
			else
				bad += p != NULL;
		}
		struct wait_node *m = model_min(nodes);
		bad += waitheap_next(&h) != (m ? m->due_ns : INT64_MAX);
	}
	CHECK(bad == 0, "%d disagreements with the model", bad);
	/* draining pops in order */
	int64_t last = -1;
	bool ordered = true;
	struct wait_node *p;
	while ((p = waitheap_pop_due(&h, INT64_MAX))) {
		ordered = ordered && p->due_ns >= last;
		last = p->due_ns;
	}
	CHECK(ordered && h.len == 0, "drained in order");
	waitheap_del(&h, &nodes[0]); /* not queued: nothing happens */
	CHECK(h.len == 0, "del of an unqueued node");
	waitheap_fini(&h);
	return test_report();
}

/* waitheap.h - things that wait for a time (a fetch backing off before its retry, a host waiting for its
 * politeness delay): an intrusive binary min-heap of nodes embedded in their owners, by due time. A node
 * knows its place, so it leaves the heap in O(log n) when its owner goes away early. Pure: the array
 * grows with realloc; nothing else. */
#ifndef FETCHD_WAITHEAP_H
#define FETCHD_WAITHEAP_H

#include <stdbool.h>
#include <stdint.h>

#define WAITHEAP_NONE UINT32_MAX

struct wait_node {
	int64_t due_ns;
	uint32_t pos;      /* index in the heap, WAITHEAP_NONE when not in it */
	uint8_t kind;      /* the owner's type, for the caller's dispatch */
};

struct waitheap {
	struct wait_node **v;
	uint32_t len, cap;
};

static inline void wait_node_init(struct wait_node *n, uint8_t kind)
{
	n->due_ns = 0;
	n->pos = WAITHEAP_NONE;
	n->kind = kind;
}

static inline bool wait_node_queued(const struct wait_node *n)
{
	return n->pos != WAITHEAP_NONE;
}

/* Insert n (not in a heap) due at due_ns. Returns 0 or -1 (out of memory). */
int waitheap_add(struct waitheap *h, struct wait_node *n, int64_t due_ns);
/* Remove n if it is in the heap. */
void waitheap_del(struct waitheap *h, struct wait_node *n);
/* The earliest node if it is due at now_ns (removed), else NULL. */
struct wait_node *waitheap_pop_due(struct waitheap *h, int64_t now_ns);
/* The earliest due time, or INT64_MAX. */
int64_t waitheap_next(const struct waitheap *h);
void waitheap_fini(struct waitheap *h);

#endif

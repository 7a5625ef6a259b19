/* timer.h - deadlines for one event loop: a binary min-heap of (deadline_ns, key). The loop waits until
 * the earliest deadline and pops what expired. Keys are the caller's (slot + generation + kind); a key
 * whose object moved on is the caller's to drop, so cancelling a timer is never needed. */
#ifndef FETCHD_RING_TIMER_H
#define FETCHD_RING_TIMER_H

#include <stdint.h>

struct ring_timer_entry {
	int64_t deadline_ns;
	uint64_t key;
};

struct ring_timers {
	struct ring_timer_entry *heap;
	uint32_t len, cap;
};

int ring_timers_init(struct ring_timers *t, uint32_t initial_cap); /* 0 or -ENOMEM */
void ring_timers_fini(struct ring_timers *t);
/* Add a deadline. Returns 0 or -ENOMEM. */
int ring_timers_add(struct ring_timers *t, int64_t deadline_ns, uint64_t key);
/* Earliest deadline, or INT64_MAX when empty. */
int64_t ring_timers_next(const struct ring_timers *t);
/* Pop the earliest entry if its deadline is <= now_ns: returns 1 and fills *e, else 0. */
int ring_timers_pop_expired(struct ring_timers *t, int64_t now_ns, struct ring_timer_entry *e);

#endif

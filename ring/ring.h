/* ring.h - the io_uring engine: setup with the best flags the kernel takes, operation helpers that never
 * fail (a local FIFO holds what does not fit in the submission queue), user_data packing of
 * op + generation + slot, a provided-buffer ring for receives, and reap-then-dispatch support.
 * It knows nothing about HTTP or fetches; errors are -errno, and it never logs. */
#ifndef FETCHD_RING_H
#define FETCHD_RING_H

#include <liburing.h>
#include <stdint.h>
#include <sys/socket.h>

/* user_data: op (8 bits) | generation (24 bits) | slot index (32 bits). The daemon defines the ops. */
#define RING_GEN_MASK 0xffffffu

static inline uint64_t ring_ud(uint8_t op, uint32_t gen, uint32_t idx)
{
	return ((uint64_t)op << 56) | ((uint64_t)(gen & RING_GEN_MASK) << 32) | idx;
}
static inline uint8_t ring_ud_op(uint64_t ud) { return (uint8_t)(ud >> 56); }
static inline uint32_t ring_ud_gen(uint64_t ud) { return (uint32_t)(ud >> 32) & RING_GEN_MASK; }
static inline uint32_t ring_ud_idx(uint64_t ud) { return (uint32_t)ud; }

/* A completion copied out of the CQ, so the CQ can be released before any handler runs. */
struct ring_cqe {
	uint64_t user_data;
	int32_t res;
	uint32_t flags;
};

/* An operation waiting for room in the submission queue. */
struct ring_op {
	uint8_t kind;
	int fd;
	uint32_t len;
	uint32_t flags;
	uint64_t user_data;
	uint64_t arg; /* buffer/sockaddr pointer, or target user_data for cancels */
};

struct ring {
	struct io_uring uring;
	unsigned setup_flags;      /* what ring_init got the kernel to accept */
	struct ring_op *fifo;      /* ops waiting for SQ room (a ring buffer) */
	uint32_t fifo_head, fifo_len, fifo_cap;
	/* Provided buffers for receives (buffer group RING_BGID). */
	struct io_uring_buf_ring *br;
	uint8_t *bufs;
	uint32_t buf_count, buf_size;
	uint64_t fifo_peak;        /* counters for stats */
	uint64_t enobufs;
};

/* Set up a ring with sq_entries submission slots and buf_count receive buffers of buf_size bytes
 * (buf_count a power of two). Tries SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN, then plain.
 * Returns 0 or -errno (-EPERM / -ENOSYS: io_uring unavailable; see ring_strerror). */
int ring_init(struct ring *r, unsigned sq_entries, unsigned buf_count, unsigned buf_size);
void ring_fini(struct ring *r);
/* A message for a ring_init failure that tells the user what to do. */
const char *ring_strerror(int err);
/* "single-issuer+defer-taskrun", "coop-taskrun" or "plain". */
const char *ring_mode(const struct ring *r);

/* Operations. Each queues one SQE (or a FIFO entry) and cannot fail. */
void ring_connect(struct ring *r, int fd, const struct sockaddr *sa, socklen_t len, uint64_t ud);
void ring_send(struct ring *r, int fd, const void *buf, uint32_t len, uint64_t ud);
void ring_recv(struct ring *r, int fd, void *buf, uint32_t len, uint64_t ud);
/* Multishot receive into provided buffers: one completion per arrival, each with IORING_CQE_F_MORE
 * while the receive stays armed; the last one (EOF, error, -ENOBUFS, cancel) lacks it. */
void ring_recv_multi(struct ring *r, int fd, uint64_t ud);
/* One receive into a provided buffer: a single completion, at most one buffer of bytes. */
void ring_recv_one(struct ring *r, int fd, uint64_t ud);
static inline int ring_cqe_more(const struct ring_cqe *c) { return (c->flags & IORING_CQE_F_MORE) != 0; }
void ring_read(struct ring *r, int fd, void *buf, uint32_t len, uint64_t ud);
void ring_accept(struct ring *r, int fd, uint64_t ud);
void ring_poll(struct ring *r, int fd, uint32_t poll_mask, uint64_t ud);
void ring_poll_remove(struct ring *r, uint64_t target_ud, uint64_t ud);
/* Cancel the op with that user_data: a hash lookup. (Cancelling by fd walks every pending request:
 * with thousands of receives armed it cost a quarter of the CPU; see docs/performance.md.) */
void ring_cancel(struct ring *r, uint64_t target_ud, uint64_t ud);
void ring_close(struct ring *r, int fd, uint64_t ud);     /* the fd number is free once submitted */

/* Tell memory checkers that the kernel wrote n bytes at p (valgrind cannot see io_uring's writes). */
void ring_mark_written(const void *p, size_t n);

/* A completion that carries a provided buffer: its data and id; give it back with ring_buf_put. */
static inline int ring_cqe_has_buf(const struct ring_cqe *c) { return (c->flags & IORING_CQE_F_BUFFER) != 0; }
uint8_t *ring_buf_get(struct ring *r, const struct ring_cqe *c, uint16_t *bid);
void ring_buf_put(struct ring *r, uint16_t bid);

/* Submit everything queued (FIFO first) and wait for wait_nr completions or until timeout_ns passes
 * (< 0: wait without a limit; 0: do not wait). Returns 0 or -errno (-ETIME, -EINTR are normal). */
int ring_submit_wait(struct ring *r, unsigned wait_nr, int64_t timeout_ns);
/* Copy up to max completions out and release them from the CQ. Returns the count. */
unsigned ring_reap(struct ring *r, struct ring_cqe *out, unsigned max);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t ring_now_ns(void);

#endif

/* ring.c - io_uring setup, operation helpers with a local FIFO for a full submission queue, provided
 * receive buffers, submit-and-wait with a deadline, and copying completions out before dispatch. */
#include "ring/ring.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sched.h>
#include <time.h>

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#define RING_HAVE_VALGRIND 1
#endif
#endif

#define RING_BGID 1

enum ring_kind {
	RK_CONNECT = 1,
	RK_SEND,
	RK_RECV,
	RK_RECV_MULTI,
	RK_RECV_ONE,
	RK_READ,
	RK_ACCEPT,
	RK_POLL,
	RK_POLL_REMOVE,
	RK_CANCEL,
	RK_CLOSE,
};

static void ring_fifo_flush(struct ring *r);

int64_t ring_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int ring_setup(struct ring *r, unsigned entries)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int err = -EINVAL;
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		p.flags = tries[i] | IORING_SETUP_CQSIZE;
		p.cq_entries = entries * 4;
		err = io_uring_queue_init_params(entries, &r->uring, &p);
		if (err == 0) {
			r->setup_flags = tries[i];
			return 0;
		}
		if (err == -EPERM || err == -ENOSYS || err == -ENOMEM)
			return err; /* no flag change helps with these */
	}
	return err;
}

static int ring_bufs_init(struct ring *r, unsigned count, unsigned size)
{
	if (count == 0 || (count & (count - 1)) != 0 || count > 32768)
		return -EINVAL;
	size_t ring_bytes = count * sizeof(struct io_uring_buf);
	void *mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	r->bufs = malloc((size_t)count * size);
	if (!r->bufs) {
		munmap(mem, ring_bytes);
		return -ENOMEM;
	}
	memset(r->bufs, 0, (size_t)count * size); /* resident now: the ring cycles through all of them */
	r->br = mem;
	r->buf_count = count;
	r->buf_size = size;
	struct io_uring_buf_reg reg;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)(uintptr_t)mem;
	reg.ring_entries = count;
	reg.bgid = RING_BGID;
	int err = io_uring_register_buf_ring(&r->uring, &reg, 0);
	if (err < 0)
		return err;
	io_uring_buf_ring_init(r->br);
	int mask = io_uring_buf_ring_mask(count);
	for (unsigned i = 0; i < count; i++)
		io_uring_buf_ring_add(r->br, r->bufs + (size_t)i * size, size, (unsigned short)i, mask, (int)i);
	io_uring_buf_ring_advance(r->br, (int)count);
	return 0;
}

int ring_init(struct ring *r, unsigned sq_entries, unsigned buf_count, unsigned buf_size)
{
	memset(r, 0, sizeof(*r));
	int err = ring_setup(r, sq_entries);
	if (err < 0)
		return err;
	r->fifo_cap = 1024;
	r->fifo = calloc(r->fifo_cap, sizeof(*r->fifo));
	if (!r->fifo) {
		io_uring_queue_exit(&r->uring);
		return -ENOMEM;
	}
	err = ring_bufs_init(r, buf_count, buf_size);
	if (err < 0) {
		ring_fini(r);
		return err;
	}
	return 0;
}

void ring_fini(struct ring *r)
{
	ring_fifo_flush(r);
	io_uring_submit(&r->uring); /* queued closes still happen */
	io_uring_queue_exit(&r->uring);
	if (r->br)
		munmap(r->br, r->buf_count * sizeof(struct io_uring_buf));
	free(r->bufs);
	free(r->fifo);
	memset(r, 0, sizeof(*r));
}

const char *ring_strerror(int err)
{
	switch (err) {
	case -ENOSYS:
		return "io_uring is not available: this kernel lacks it (ENOSYS); fetchd needs Linux 6.1 or "
		       "newer with CONFIG_IO_URING";
	case -EPERM:
		return "io_uring is not permitted (EPERM): check sysctl kernel.io_uring_disabled (must be 0, "
		       "or 1 with the caller in kernel.io_uring_group) and the container's seccomp profile "
		       "(Docker blocks io_uring_setup by default)";
	case -ENOMEM:
		return "io_uring setup ran out of locked memory (ENOMEM): raise RLIMIT_MEMLOCK (ulimit -l) or "
		       "lower [fetch] max_inflight";
	default:
		return strerror(-err);
	}
}

const char *ring_mode(const struct ring *r)
{
	if (r->setup_flags & IORING_SETUP_DEFER_TASKRUN)
		return "single-issuer+defer-taskrun";
	if (r->setup_flags & IORING_SETUP_COOP_TASKRUN)
		return "coop-taskrun";
	return "plain";
}

static void ring_prep(struct io_uring_sqe *sqe, const struct ring_op *op)
{
	void *ptr = (void *)(uintptr_t)op->arg;
	switch (op->kind) {
	case RK_CONNECT:
		io_uring_prep_connect(sqe, op->fd, ptr, op->len);
		break;
	case RK_SEND:
		io_uring_prep_send(sqe, op->fd, ptr, op->len, MSG_NOSIGNAL);
		break;
	case RK_RECV:
		io_uring_prep_recv(sqe, op->fd, ptr, op->len, 0);
		break;
	case RK_RECV_MULTI:
		io_uring_prep_recv_multishot(sqe, op->fd, NULL, 0, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = RING_BGID;
		break;
	case RK_RECV_ONE:
		io_uring_prep_recv(sqe, op->fd, NULL, 0, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = RING_BGID;
		break;
	case RK_READ:
		io_uring_prep_read(sqe, op->fd, ptr, op->len, (uint64_t)-1);
		break;
	case RK_ACCEPT:
		io_uring_prep_accept(sqe, op->fd, NULL, NULL, SOCK_CLOEXEC);
		break;
	case RK_POLL:
		io_uring_prep_poll_add(sqe, op->fd, op->flags);
		break;
	case RK_POLL_REMOVE:
		io_uring_prep_poll_remove(sqe, op->arg);
		break;
	case RK_CANCEL:
		io_uring_prep_cancel64(sqe, op->arg, 0);
		break;
	case RK_CLOSE:
		io_uring_prep_close(sqe, op->fd);
		break;
	default:
		assert(!"unknown ring op kind");
	}
	io_uring_sqe_set_data64(sqe, op->user_data);
}

static void ring_fifo_push(struct ring *r, const struct ring_op *op)
{
	if (r->fifo_len == r->fifo_cap) {
		uint32_t cap = r->fifo_cap * 2;
		struct ring_op *n = calloc(cap, sizeof(*n));
		assert(n); /* bounded by live objects; running out here is not recoverable */
		for (uint32_t i = 0; i < r->fifo_len; i++)
			n[i] = r->fifo[(r->fifo_head + i) % r->fifo_cap];
		free(r->fifo);
		r->fifo = n;
		r->fifo_head = 0;
		r->fifo_cap = cap;
	}
	r->fifo[(r->fifo_head + r->fifo_len) % r->fifo_cap] = *op;
	r->fifo_len++;
	if (r->fifo_len > r->fifo_peak)
		r->fifo_peak = r->fifo_len;
}

/* Move FIFO entries into the SQ while there is room. */
static void ring_fifo_flush(struct ring *r)
{
	while (r->fifo_len > 0) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);
		if (!sqe)
			return;
		ring_prep(sqe, &r->fifo[r->fifo_head]);
		r->fifo_head = (r->fifo_head + 1) % r->fifo_cap;
		r->fifo_len--;
	}
}

static void ring_push(struct ring *r, const struct ring_op *op)
{
	struct io_uring_sqe *sqe = NULL;
	if (r->fifo_len == 0) {
		sqe = io_uring_get_sqe(&r->uring);
		if (!sqe && io_uring_submit(&r->uring) >= 0)
			sqe = io_uring_get_sqe(&r->uring);
	}
	if (sqe)
		ring_prep(sqe, op);
	else
		ring_fifo_push(r, op); /* keeps order: nothing jumps ahead of what already waits */
}

void ring_connect(struct ring *r, int fd, const struct sockaddr *sa, socklen_t len, uint64_t ud)
{
	struct ring_op op = { .kind = RK_CONNECT, .fd = fd, .len = len, .user_data = ud,
			      .arg = (uint64_t)(uintptr_t)sa };
	ring_push(r, &op);
}

void ring_send(struct ring *r, int fd, const void *buf, uint32_t len, uint64_t ud)
{
	struct ring_op op = { .kind = RK_SEND, .fd = fd, .len = len, .user_data = ud,
			      .arg = (uint64_t)(uintptr_t)buf };
	ring_push(r, &op);
}

void ring_recv(struct ring *r, int fd, void *buf, uint32_t len, uint64_t ud)
{
	struct ring_op op = { .kind = RK_RECV, .fd = fd, .len = len, .user_data = ud,
			      .arg = (uint64_t)(uintptr_t)buf };
	ring_push(r, &op);
}

void ring_recv_multi(struct ring *r, int fd, uint64_t ud)
{
	struct ring_op op = { .kind = RK_RECV_MULTI, .fd = fd, .user_data = ud };
	ring_push(r, &op);
}

void ring_recv_one(struct ring *r, int fd, uint64_t ud)
{
	struct ring_op op = { .kind = RK_RECV_ONE, .fd = fd, .user_data = ud };
	ring_push(r, &op);
}

void ring_read(struct ring *r, int fd, void *buf, uint32_t len, uint64_t ud)
{
	struct ring_op op = { .kind = RK_READ, .fd = fd, .len = len, .user_data = ud,
			      .arg = (uint64_t)(uintptr_t)buf };
	ring_push(r, &op);
}

void ring_accept(struct ring *r, int fd, uint64_t ud)
{
	struct ring_op op = { .kind = RK_ACCEPT, .fd = fd, .user_data = ud };
	ring_push(r, &op);
}

void ring_poll(struct ring *r, int fd, uint32_t poll_mask, uint64_t ud)
{
	struct ring_op op = { .kind = RK_POLL, .fd = fd, .flags = poll_mask, .user_data = ud };
	ring_push(r, &op);
}

void ring_poll_remove(struct ring *r, uint64_t target_ud, uint64_t ud)
{
	struct ring_op op = { .kind = RK_POLL_REMOVE, .user_data = ud, .arg = target_ud };
	ring_push(r, &op);
}

void ring_mark_written(const void *p, size_t n)
{
#ifdef RING_HAVE_VALGRIND
	VALGRIND_MAKE_MEM_DEFINED(p, n);
#else
	(void)p, (void)n;
#endif
}

void ring_cancel(struct ring *r, uint64_t target_ud, uint64_t ud)
{
	struct ring_op op = { .kind = RK_CANCEL, .user_data = ud, .arg = target_ud };
	ring_push(r, &op);
}

void ring_close(struct ring *r, int fd, uint64_t ud)
{
	struct ring_op op = { .kind = RK_CLOSE, .fd = fd, .user_data = ud };
	ring_push(r, &op);
}

uint8_t *ring_buf_get(struct ring *r, const struct ring_cqe *c, uint16_t *bid)
{
	assert(ring_cqe_has_buf(c));
	*bid = (uint16_t)(c->flags >> IORING_CQE_BUFFER_SHIFT);
	assert(*bid < r->buf_count);
	uint8_t *p = r->bufs + (size_t)*bid * r->buf_size;
	if (c->res > 0)
		ring_mark_written(p, (size_t)c->res);
	return p;
}

void ring_buf_put(struct ring *r, uint16_t bid)
{
	io_uring_buf_ring_add(r->br, r->bufs + (size_t)bid * r->buf_size, r->buf_size, bid,
			      io_uring_buf_ring_mask(r->buf_count), 0);
	io_uring_buf_ring_advance(r->br, 1);
}

int ring_submit_wait(struct ring *r, unsigned wait_nr, int64_t timeout_ns)
{
	ring_fifo_flush(r);
#ifdef RING_HAVE_VALGRIND
	/* valgrind does not know io_uring_enter can block: it keeps its one-thread-at-a-time lock
	 * while a thread sleeps in it, and every other thread stops. Under valgrind, nap briefly and
	 * let the other threads run first (valgrind hands its lock over on sched_yield). */
	if (RUNNING_ON_VALGRIND) {
		if (timeout_ns < 0 || timeout_ns > 1000000)
			timeout_ns = 1000000;
		sched_yield();
	}
#endif
	struct io_uring_cqe *cqe = NULL;
	if (timeout_ns < 0) {
		int ret = io_uring_submit_and_wait_timeout(&r->uring, &cqe, wait_nr, NULL, NULL);
		return ret < 0 ? ret : 0;
	}
	struct __kernel_timespec ts = { .tv_sec = timeout_ns / 1000000000,
					.tv_nsec = timeout_ns % 1000000000 };
	int ret = io_uring_submit_and_wait_timeout(&r->uring, &cqe, timeout_ns ? wait_nr : 0, &ts, NULL);
	return ret < 0 ? ret : 0;
}

unsigned ring_reap(struct ring *r, struct ring_cqe *out, unsigned max)
{
	unsigned n = 0, head;
	struct io_uring_cqe *cqe;
	io_uring_for_each_cqe(&r->uring, head, cqe) {
		if (n == max)
			break;
		out[n].user_data = cqe->user_data;
		out[n].res = cqe->res;
		out[n].flags = cqe->flags;
		n++;
	}
	io_uring_cq_advance(&r->uring, n);
	if (r->fifo_len)
		ring_fifo_flush(r);
	return n;
}

/* queue.h - a shared crawl through Redis Streams ([queue] backend = redis; docs/scaling.md).
 *
 * Three parts. The reader thread (qredis.c) takes URL entries from the input stream with XREADGROUP (and
 * XAUTOCLAIM for the entries of consumers that went quiet), one per free slot, and hands them to the
 * control thread. The control thread (queue.c) admits each one as a URL of the queue's own client (a
 * socketless client slot, like a detached job's), so it is fetched with the same engine and limits as
 * socket batches; a slot number stands in for the line number. Each result goes to the writer thread
 * (qredis.c), which adds it to the results stream and acknowledges the entry in one atomic script,
 * which frees the slot. The slots bound everything: entries held, results waiting, memory.
 * Guarantee: exactly one result per entry in the results stream, added in the same atomic step that
 * acknowledges the entry (a fetch may be repeated after a failure; its result is not). Neither thread
 * ever blocks the control thread: they meet it through lists under one mutex, and wake it with its
 * eventfd. */
#ifndef FETCHD_QUEUE_H
#define FETCHD_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "conf/redisurl.h"
#include "daemon/buf.h"

#define QUEUE_ID_MAX 48          /* a stream entry id: "MS-SEQ", two u64 in decimal, and a NUL */
#define QUEUE_OPTS_MAX 8192      /* bytes of per-URL options one entry may carry */

enum queue_slot_state { QS_FREE = 0, QS_HELD };

struct queue_slot {
	uint8_t state;
	char id[QUEUE_ID_MAX];
};

/* Between the threads: an entry to fetch (reader -> control) or a result to publish (control -> writer). */
struct queue_msg {
	struct queue_msg *next;
	uint32_t slot;
	const char *reject;      /* entry: not fetchable (why), answered with a "url" result */
	uint32_t url_len;        /* entry: the URL, then a TAB and the options; result: the URL, then */
	uint32_t len;            /* the result JSON (len bytes in all) */
	char data[];
};

struct queue_counters {
	uint64_t read, claimed, published, acked, dead, dropped, reconnects;
	uint64_t superseded;     /* results not added: their entry was acknowledged already (a lost reply
	                            retried, or another consumer took it over and finished first) */
	int64_t lag, pending, entries_added; /* from XINFO; -1: not known yet */
	bool connected;
};

struct queue {
	struct conf conf;        /* the [queue] keys as started (all need a restart) */
	struct redisurl url;
	char url_safe[CONF_PATH_MAX]; /* without the password: logs and stats */
	char consumer[CONF_QNAME_MAX];
	int control_efd;         /* wakes the control thread: entries are waiting */
	uint32_t client_idx;     /* the queue's client slot */
	uint32_t max_url_bytes;
	pthread_mutex_t lock;    /* everything below */
	pthread_cond_t reader_cond, writer_cond;
	struct queue_slot *slots;
	uint32_t nslots, nheld;
	uint32_t *free_slots, nfree;
	struct queue_msg *in_head, *in_tail;   /* entries for the control thread */
	struct queue_msg *res_head, *res_tail; /* results for the writer */
	bool stop_reading;       /* SIGTERM: no more entries */
	bool stop;               /* no more results will come: the writer flushes and ends */
	struct queue_counters n;
	bool reader_up, writer_up; /* each thread's connection is up (n.connected: both) */
	pthread_t reader, writer;
	bool reader_started, writer_started;
	struct buf scratch;      /* control thread: a result encoded for the writer */
};

struct fetchd;
struct fetch;
struct result;

/* Control thread. */
int queue_init(struct fetchd *d, char *err, size_t errlen); /* nothing when backend = none */
void queue_take(struct fetchd *d);          /* admit the entries the reader left */
void queue_result_line(struct fetchd *d, struct fetch *f, const uint8_t *line, uint32_t len);
void queue_result(struct fetchd *d, uint32_t slot, const struct result *r); /* a line that never ran */
bool queue_busy(const struct fetchd *d);    /* fetches of the queue still out */
void queue_stop(struct fetchd *d);          /* SIGTERM: read no more entries */
void queue_fini(struct fetchd *d);          /* publish what is left (bounded), end the threads */
void queue_info(struct fetchd *d, struct buf *b); /* stats: ,"queue":{...} */
uint32_t queue_client_slots(const struct conf *c); /* client slots the queue needs: 0 or 1 */

/* qredis.c: the two threads. */
int qredis_start(struct queue *q, char *err, size_t errlen);
void qredis_join(struct queue *q);
/* Shared helpers (queue.c), under no lock: they take it. */
void queue_slot_release(struct queue *q, uint32_t slot, bool acked); /* its entry is done with */

#endif

/* qredis.c - the Redis side of the queue (queue.h): two threads, each with its own synchronous hiredis
 * connection, so that a blocking read never holds up a result and neither ever waits on the control
 * thread.
 *   reader: XREADGROUP new entries (at most one per free slot: the backpressure), XAUTOCLAIM the entries
 *           other consumers left idle for claim_idle_ms, send entries delivered max_deliveries times to
 *           the dead stream, keep its own held entries from looking idle (XCLAIM JUSTID), and read the
 *           group's lag and pending count (XINFO) for the stats verb.
 *   writer: adds each result to the results stream and acknowledges its entry in one atomic script
 *           (pipelined by the batch): never one without the other, and never a second result for an
 *           entry that is acknowledged already, so a retry after a lost reply is harmless.
 * A lost connection is retried with backoff (100 ms doubling to 5 s); the outage is logged once. */
#include "daemon/queue.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "daemon/log.h"

#define QREDIS_BACKOFF_MIN_MS 100
#define QREDIS_BACKOFF_MAX_MS 5000
#define QREDIS_INFO_MS 1000      /* XINFO for the stats this often */
#define QREDIS_BLOCK_MAX_MS 1000 /* longest XREADGROUP BLOCK: the reader's other duties wait that long */
#define QREDIS_PUBLISH_MAX 1000  /* results per pipeline */
#define QREDIS_IDS_PER_CMD 256   /* ids per XCLAIM JUSTID */
#define QREDIS_PENDING_SCAN 100  /* XPENDING entries looked at per claim pass */
#define QREDIS_GATHER_MS 5       /* the most the reader waits for more slots to come free */

/* A connection and its outage state. */
struct qconn {
	redisContext *c;
	const char *role;        /* "reader" or "writer" */
	uint32_t backoff_ms;
	int64_t down_since_ms;   /* 0: up (or never tried) */
	bool up_once;
	bool *up;                /* the queue's flag for this role */
	bool flush;              /* the writer: it still works (and backs off) after the stop */
	char sha[48];            /* the script's SHA-1 on this connection (SCRIPT LOAD at connect) */
};

/* An argument vector for redisCommandArgv / redisAppendCommandArgv. */
struct qargs {
	const char **argv;
	size_t *len;
	int n, cap;
};

/* An entry's outcome (a result, or a dead letter) goes in and the entry is acknowledged in one step, or
 * neither happens: a script runs atomically. It adds nothing when the entry is no longer pending
 * (acknowledged already: by this fetchd, whose reply was lost with a connection, or by another consumer
 * that took the entry over and finished first), so an entry never gets two. XADD comes before XACK, so
 * a refused XADD leaves the entry pending. KEYS: the input stream, the stream to add to; ARGV: group,
 * entry id, MAXLEN, then the fields. Returns 1 (added), 0 (not pending). */
static const char qredis_script[] =
	"if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1) == 0 then return 0 end "
	"redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4)) "
	"redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) "
	"return 1";

static int64_t qredis_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void qargs_reset(struct qargs *a)
{
	a->n = 0;
}

static void qargs_add(struct qargs *a, const char *s, size_t len)
{
	if (a->n == a->cap) {
		int cap = a->cap ? a->cap * 2 : 64;
		const char **argv = realloc(a->argv, (size_t)cap * sizeof(*argv));
		size_t *lens = argv ? realloc(a->len, (size_t)cap * sizeof(*lens)) : NULL;
		if (argv)
			a->argv = argv;
		if (!argv || !lens)
			abort(); /* a few KiB: out of memory here is not survivable anyway */
		a->len = lens;
		a->cap = cap;
	}
	a->argv[a->n] = s;
	a->len[a->n++] = len;
}

static void qargs_str(struct qargs *a, const char *s)
{
	qargs_add(a, s, strlen(s));
}

static void qargs_free(struct qargs *a)
{
	free(a->argv);
	free(a->len);
}

static redisReply *qredis_cmd(struct qconn *qc, const struct qargs *a)
{
	return redisCommandArgv(qc->c, a->n, a->argv, a->len);
}

static void qredis_set_up(struct queue *q, struct qconn *qc, bool up)
{
	pthread_mutex_lock(&q->lock);
	*qc->up = up;
	q->n.connected = q->reader_up && q->writer_up;
	pthread_mutex_unlock(&q->lock);
}

/* Wait on cond for up to ms (q->lock held). */
static void qredis_wait(struct queue *q, pthread_cond_t *cond, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(cond, &q->lock, &ts);
}

/* The connection failed: drop it; the next qredis_ensure reconnects after the backoff. */
static void qredis_lost(struct queue *q, struct qconn *qc, const char *why)
{
	if (qc->down_since_ms == 0) {
		log_warn("queue: lost Redis %s (%s): %s; reconnecting", q->url_safe, qc->role, why);
		qc->down_since_ms = qredis_now_ms();
	}
	if (qc->c)
		redisFree(qc->c);
	qc->c = NULL;
	qredis_set_up(q, qc, false);
}

static bool qredis_ok(const redisReply *r, char *why, size_t cap)
{
	if (r && r->type != REDIS_REPLY_ERROR)
		return true;
	snprintf(why, cap, "%s", r ? r->str : "no reply");
	return false;
}

static redisContext *qredis_open(struct queue *q, char *sha, size_t shacap, char *why, size_t cap)
{
	uint32_t ms = q->conf.queue_timeout_ms;
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	redisContext *c = redisConnectWithTimeout(q->url.host, q->url.port, tv);
	if (!c || c->err) {
		snprintf(why, cap, "%s", c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	redisEnableKeepAlive(c);
	redisReply *r = NULL;
	bool ok = true;
	if (q->url.password[0]) {
		r = q->url.user[0] ? redisCommand(c, "AUTH %s %s", q->url.user, q->url.password)
				   : redisCommand(c, "AUTH %s", q->url.password);
		ok = qredis_ok(r, why, cap);
		freeReplyObject(r);
	}
	if (ok && q->url.db) {
		r = redisCommand(c, "SELECT %u", (unsigned)q->url.db);
		ok = qredis_ok(r, why, cap);
		freeReplyObject(r);
	}
	if (ok) { /* the script cache is per server and gone after a restart: load it on every connect */
		r = redisCommand(c, "SCRIPT LOAD %s", qredis_script);
		ok = qredis_ok(r, why, cap) && r->type == REDIS_REPLY_STRING && r->len < sizeof(((struct qconn *)0)->sha);
		if (ok)
			snprintf(sha, shacap, "%s", r->str);
		freeReplyObject(r);
	}
	if (!ok) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/* Connected, or false after a failed attempt (and its backoff wait, cut short by *stop). */
static bool qredis_ensure(struct queue *q, struct qconn *qc, pthread_cond_t *cond, const bool *stop)
{
	if (qc->c)
		return true;
	if (qc->backoff_ms) {
		pthread_mutex_lock(&q->lock);
		if (!*stop || qc->flush)
			qredis_wait(q, cond, qc->backoff_ms);
		pthread_mutex_unlock(&q->lock);
	}
	char why[256];
	qc->c = qredis_open(q, qc->sha, sizeof(qc->sha), why, sizeof(why));
	if (!qc->c) {
		if (qc->down_since_ms == 0 || !qc->up_once)
			log_warn("queue: cannot reach Redis %s (%s): %s; retrying", q->url_safe, qc->role, why);
		if (qc->down_since_ms == 0)
			qc->down_since_ms = qredis_now_ms();
		qc->backoff_ms = qc->backoff_ms ? qc->backoff_ms * 2 : QREDIS_BACKOFF_MIN_MS;
		if (qc->backoff_ms > QREDIS_BACKOFF_MAX_MS)
			qc->backoff_ms = QREDIS_BACKOFF_MAX_MS;
		return false;
	}
	if (qc->down_since_ms) {
		log_info("queue: connected to Redis %s again (%s) after %lld ms", q->url_safe, qc->role,
			 (long long)(qredis_now_ms() - qc->down_since_ms));
		if (qc->up_once) {
			pthread_mutex_lock(&q->lock);
			q->n.reconnects++;
			pthread_mutex_unlock(&q->lock);
		}
	}
	qc->down_since_ms = 0;
	qc->backoff_ms = 0;
	qc->up_once = true;
	qredis_set_up(q, qc, true);
	return true;
}

/* The script's head: EVALSHA, the keys, group, id and MAXLEN (maxlen: the caller's buffer). */
static void qredis_script_args(struct queue *q, struct qconn *qc, struct qargs *a, const char *to_stream,
			       const char *id, char *maxlen, size_t cap)
{
	snprintf(maxlen, cap, "%llu", (unsigned long long)q->conf.queue_results_maxlen);
	qargs_reset(a);
	const char *args[] = { "EVALSHA", qc->sha, "2", q->conf.queue_stream, to_stream, q->conf.queue_group, id,
			       maxlen };
	for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++)
		qargs_str(a, args[i]);
}

/* ---- reader ---- */

struct qreader {
	struct queue *q;
	struct qconn qc;
	struct qargs a;
	bool waited;             /* waited for slots once: read what is free now */
	bool own_pending_done;   /* this consumer's entries from an earlier life were read (once) */
	char (*ids)[QUEUE_ID_MAX]; /* scratch: held ids for the heartbeat */
	struct queue_msg *head, *tail; /* entries of this read, handed over together */
	char why[256];
};

static const redisReply *qredis_field(const redisReply *fields, const char *name)
{
	for (size_t i = 0; fields && i + 1 < fields->elements; i += 2)
		if (fields->element[i]->type == REDIS_REPLY_STRING && !strcmp(fields->element[i]->str, name))
			return fields->element[i + 1];
	return NULL;
}

static int qredis_group_create(struct qreader *r)
{
	struct queue *q = r->q;
	qargs_reset(&r->a);
	qargs_str(&r->a, "XGROUP");
	qargs_str(&r->a, "CREATE");
	qargs_str(&r->a, q->conf.queue_stream);
	qargs_str(&r->a, q->conf.queue_group);
	qargs_str(&r->a, "0");
	qargs_str(&r->a, "MKSTREAM");
	redisReply *rep = qredis_cmd(&r->qc, &r->a);
	if (!rep) {
		qredis_lost(q, &r->qc, r->qc.c->errstr);
		return -1;
	}
	int rc = 0;
	if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "BUSYGROUP", 9) != 0) {
		log_error("queue: XGROUP CREATE %s %s: %s", q->conf.queue_stream, q->conf.queue_group, rep->str);
		rc = -1;
	}
	freeReplyObject(rep);
	return rc;
}

/* To the dead stream, acknowledged in the same step (qredis_script): the entry is given up on. Returns -1
 * when the connection failed. */
static int qredis_dead(struct qreader *r, const char *id, const char *url, long long deliveries, const char *consumer,
		       const char *error)
{
	struct queue *q = r->q;
	char n[24], maxlen[24];
	snprintf(n, sizeof(n), "%lld", deliveries);
	qredis_script_args(q, &r->qc, &r->a, q->conf.queue_dead, id, maxlen, sizeof(maxlen));
	const char *fields[] = { "entry", id, "url", url, "deliveries", n, "consumer", consumer, "error", error };
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		qargs_str(&r->a, fields[i]);
	redisReply *rep = qredis_cmd(&r->qc, &r->a);
	if (!rep) {
		qredis_lost(q, &r->qc, r->qc.c->errstr);
		return -1;
	}
	bool added = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
	if (rep->type == REDIS_REPLY_ERROR && !strncmp(rep->str, "NOSCRIPT", 8)) { /* SCRIPT FLUSH: reload */
		freeReplyObject(rep);
		qredis_lost(q, &r->qc, "the script cache was flushed");
		return -1;
	}
	if (rep->type == REDIS_REPLY_ERROR)
		log_error("queue: adding entry %s to %s refused: %s (it stays pending)", id, q->conf.queue_dead, rep->str);
	freeReplyObject(rep);
	if (!added)
		return 0;
	log_warn("queue: entry %s went to %s: %s", id, q->conf.queue_dead, error);
	pthread_mutex_lock(&q->lock);
	q->n.dead++;
	pthread_mutex_unlock(&q->lock);
	return 0;
}

/* An option field is "key=value" on the line: neither may break the line's TAB-separated format. */
static const char *qredis_opt_bad(const redisReply *k, const redisReply *v)
{
	if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || !k->len)
		return "an option field that is not a string";
	if (memchr(k->str, '=', k->len))
		return "an option field name with '='";
	for (size_t i = 0; i < k->len; i++)
		if ((unsigned char)k->str[i] < 0x20)
			return "a control character in an option field name";
	for (size_t i = 0; i < v->len; i++)
		if (v->str[i] == '\t' || v->str[i] == '\n' || v->str[i] == '\r')
			return "a TAB or line break in an option value";
	return NULL;
}

/* The line for the control thread: the URL (cut just past max_url_bytes: it is refused there as too
 * long), then TAB key=value for every other field. */
static struct queue_msg *qredis_msg(struct queue *q, const redisReply *url, const redisReply *fields)
{
	size_t ulen = url->len > (size_t)q->max_url_bytes + 1 ? (size_t)q->max_url_bytes + 1 : url->len;
	size_t olen = 0;
	const char *reject = NULL;
	for (size_t i = 0; i + 1 < fields->elements; i += 2) {
		const redisReply *k = fields->element[i], *v = fields->element[i + 1];
		if (k->type == REDIS_REPLY_STRING && !strcmp(k->str, "url"))
			continue;
		if (!reject)
			reject = qredis_opt_bad(k, v);
		olen += k->len + v->len + 2;
	}
	if (olen > QUEUE_OPTS_MAX && !reject)
		reject = "the entry's options are longer than 8192 bytes";
	struct queue_msg *m = calloc(1, sizeof(*m) + ulen + (reject ? 0 : olen));
	if (!m)
		return NULL;
	memcpy(m->data, url->str, ulen);
	m->url_len = (uint32_t)ulen;
	m->len = (uint32_t)ulen;
	m->reject = reject;
	for (size_t i = 0; !reject && i + 1 < fields->elements; i += 2) {
		const redisReply *k = fields->element[i], *v = fields->element[i + 1];
		if (!strcmp(k->str, "url"))
			continue;
		m->data[m->len++] = '\t';
		memcpy(m->data + m->len, k->str, k->len);
		m->len += (uint32_t)k->len;
		m->data[m->len++] = '=';
		memcpy(m->data + m->len, v->str, v->len);
		m->len += (uint32_t)v->len;
	}
	return m;
}

/* Is id one of the entries this fetchd holds already (a claim of its own)? */
static bool qredis_holds(struct queue *q, const char *id)
{
	bool found = false;
	pthread_mutex_lock(&q->lock);
	for (uint32_t i = 0; i < q->nslots && !found; i++)
		found = q->slots[i].state == QS_HELD && !strcmp(q->slots[i].id, id);
	pthread_mutex_unlock(&q->lock);
	return found;
}

/* One entry of a read or a claim: to the control thread with a slot, or (no url) to the dead stream.
 * Returns -1 when the connection failed. */
static int qredis_entry(struct qreader *r, const redisReply *e, bool claimed)
{
	struct queue *q = r->q;
	if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING ||
	    e->element[0]->len >= QUEUE_ID_MAX)
		return 0;
	const char *id = e->element[0]->str;
	const redisReply *fields = e->element[1];
	if (fields->type != REDIS_REPLY_ARRAY) { /* deleted from the stream while pending: nothing to fetch */
		freeReplyObject(redisCommand(r->qc.c, "XACK %s %s %s", q->conf.queue_stream, q->conf.queue_group, id));
		return r->qc.c->err ? (qredis_lost(q, &r->qc, r->qc.c->errstr), -1) : 0;
	}
	const redisReply *url = qredis_field(fields, "url");
	if (!url || url->type != REDIS_REPLY_STRING)
		return qredis_dead(r, id, "", 1, q->consumer, "the entry has no url field");
	if (claimed && qredis_holds(q, id))
		return 0;
	struct queue_msg *m = qredis_msg(q, url, fields);
	if (!m) {
		log_error("queue: out of memory for entry %s: it stays pending", id);
		return 0;
	}
	pthread_mutex_lock(&q->lock);
	if (!q->nfree) { /* cannot happen: reads ask for at most the free slots */
		pthread_mutex_unlock(&q->lock);
		free(m);
		return 0;
	}
	m->slot = q->free_slots[--q->nfree];
	q->slots[m->slot].state = QS_HELD;
	snprintf(q->slots[m->slot].id, QUEUE_ID_MAX, "%s", id);
	q->nheld++;
	if (claimed)
		q->n.claimed++;
	else
		q->n.read++;
	pthread_mutex_unlock(&q->lock);
	if (r->tail)
		r->tail->next = m;
	else
		r->head = m;
	r->tail = m;
	return 0;
}

/* Hand this read's entries to the control thread and wake it. */
static void qredis_hand_over(struct qreader *r)
{
	struct queue *q = r->q;
	if (!r->head)
		return;
	pthread_mutex_lock(&q->lock);
	if (q->in_tail)
		q->in_tail->next = r->head;
	else
		q->in_head = r->head;
	q->in_tail = r->tail;
	pthread_mutex_unlock(&q->lock);
	r->head = r->tail = NULL;
	uint64_t one = 1;
	ssize_t w = write(q->control_efd, &one, sizeof(one));
	(void)w; /* a full counter still wakes it */
}

/* Entries in an array of [id, fields]. */
static int qredis_entries(struct qreader *r, const redisReply *arr, bool claimed)
{
	for (size_t i = 0; arr && arr->type == REDIS_REPLY_ARRAY && i < arr->elements; i++)
		if (qredis_entry(r, arr->element[i], claimed) < 0)
			return -1;
	return 0;
}

static uint32_t qredis_free_slots(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	uint32_t n = q->nfree;
	pthread_mutex_unlock(&q->lock);
	return n;
}

/* XREADGROUP: new entries (">"), or this consumer's own from an earlier life ("0"). Returns 0, 1 (Redis
 * refused: the caller waits before asking again) or -1 (the connection failed). */
static int qredis_read(struct qreader *r, uint32_t count, const char *from, int64_t block_ms)
{
	struct queue *q = r->q;
	char n[16], blk[16];
	snprintf(n, sizeof(n), "%u", count);
	snprintf(blk, sizeof(blk), "%lld", (long long)block_ms);
	qargs_reset(&r->a);
	const char *args[] = { "XREADGROUP", "GROUP", q->conf.queue_group, q->consumer, "COUNT", n };
	for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++)
		qargs_str(&r->a, args[i]);
	if (block_ms >= 0) {
		qargs_str(&r->a, "BLOCK");
		qargs_str(&r->a, blk);
	}
	qargs_str(&r->a, "STREAMS");
	qargs_str(&r->a, q->conf.queue_stream);
	qargs_str(&r->a, from);
	redisReply *rep = qredis_cmd(&r->qc, &r->a);
	if (!rep) {
		qredis_lost(q, &r->qc, r->qc.c->errstr);
		return -1;
	}
	int rc = 0;
	if (rep->type == REDIS_REPLY_ERROR) {
		if (!strncmp(rep->str, "NOGROUP", 7)) /* the stream or group was deleted: make them again */
			rc = qredis_group_create(r);
		else
			log_error("queue: XREADGROUP %s: %s", q->conf.queue_stream, rep->str);
		if (rc == 0 && strncmp(rep->str, "NOGROUP", 7))
			rc = 1;
	} else if (rep->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i < rep->elements && rc == 0; i++) {
			const redisReply *s = rep->element[i];
			if (s->type == REDIS_REPLY_ARRAY && s->elements == 2)
				rc = qredis_entries(r, s->element[1], !strcmp(from, "0"));
		}
	}
	freeReplyObject(rep);
	qredis_hand_over(r);
	return rc;
}

/* Keep the entries this fetchd holds from looking idle to other consumers' XAUTOCLAIM. */
static int qredis_heartbeat(struct qreader *r)
{
	struct queue *q = r->q;
	uint32_t n = 0;
	pthread_mutex_lock(&q->lock);
	for (uint32_t i = 0; i < q->nslots; i++)
		if (q->slots[i].state == QS_HELD)
			memcpy(r->ids[n++], q->slots[i].id, QUEUE_ID_MAX);
	pthread_mutex_unlock(&q->lock);
	for (uint32_t at = 0; at < n; at += QREDIS_IDS_PER_CMD) {
		qargs_reset(&r->a);
		const char *args[] = { "XCLAIM", q->conf.queue_stream, q->conf.queue_group, q->consumer, "0" };
		for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++)
			qargs_str(&r->a, args[i]);
		for (uint32_t i = at; i < n && i < at + QREDIS_IDS_PER_CMD; i++)
			qargs_str(&r->a, r->ids[i]);
		qargs_str(&r->a, "JUSTID");
		redisReply *rep = qredis_cmd(&r->qc, &r->a);
		if (!rep) {
			qredis_lost(q, &r->qc, r->qc.c->errstr);
			return -1;
		}
		freeReplyObject(rep);
	}
	return 0;
}

/* Entries idle past claim_idle_ms that were delivered max_deliveries times: to the dead stream. */
static int qredis_dead_pass(struct qreader *r)
{
	struct queue *q = r->q;
	char idle[16], cnt[16];
	snprintf(idle, sizeof(idle), "%u", q->conf.queue_claim_idle_ms);
	snprintf(cnt, sizeof(cnt), "%d", QREDIS_PENDING_SCAN);
	redisReply *rep = redisCommand(r->qc.c, "XPENDING %s %s IDLE %s - + %s", q->conf.queue_stream,
				       q->conf.queue_group, idle, cnt);
	if (!rep) {
		qredis_lost(q, &r->qc, r->qc.c->errstr);
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements && rc == 0; i++) {
		const redisReply *p = rep->element[i];
		if (p->type != REDIS_REPLY_ARRAY || p->elements < 4 || p->element[3]->integer < q->conf.queue_max_deliveries)
			continue;
		const char *id = p->element[0]->str, *owner = p->element[1]->str;
		long long deliveries = p->element[3]->integer;
		redisReply *c = redisCommand(r->qc.c, "XCLAIM %s %s %s %s %s", q->conf.queue_stream, q->conf.queue_group,
					     q->consumer, idle, id);
		if (!c) {
			qredis_lost(q, &r->qc, r->qc.c->errstr);
			rc = -1;
			break;
		}
		/* Claimed only if still idle (no other consumer got there first). */
		if (c->type == REDIS_REPLY_ARRAY && c->elements == 1 && c->element[0]->type == REDIS_REPLY_ARRAY &&
		    c->element[0]->elements == 2) {
			const redisReply *url = qredis_field(c->element[0]->element[1], "url");
			char err[256];
			snprintf(err, sizeof(err), "delivered %lld times without a result (last held by %s)", deliveries,
				 owner);
			rc = qredis_dead(r, id, url && url->type == REDIS_REPLY_STRING ? url->str : "", deliveries, owner,
					 err);
		}
		freeReplyObject(c);
	}
	freeReplyObject(rep);
	return rc;
}

/* XAUTOCLAIM: entries other consumers left idle past claim_idle_ms, one per free slot. */
static int qredis_autoclaim(struct qreader *r, uint32_t count)
{
	struct queue *q = r->q;
	char idle[16], n[16];
	snprintf(idle, sizeof(idle), "%u", q->conf.queue_claim_idle_ms);
	snprintf(n, sizeof(n), "%u", count);
	redisReply *rep = redisCommand(r->qc.c, "XAUTOCLAIM %s %s %s %s 0-0 COUNT %s", q->conf.queue_stream,
				       q->conf.queue_group, q->consumer, idle, n);
	if (!rep) {
		qredis_lost(q, &r->qc, r->qc.c->errstr);
		return -1;
	}
	int rc = 0;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2)
		rc = qredis_entries(r, rep->element[1], true);
	else if (rep->type == REDIS_REPLY_ERROR)
		log_error("queue: XAUTOCLAIM %s: %s", q->conf.queue_stream, rep->str);
	freeReplyObject(rep);
	qredis_hand_over(r);
	return rc;
}

static long long qredis_map_int(const redisReply *m, const char *key)
{
	const redisReply *v = qredis_field(m, key);
	return v && v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
}

/* The group's lag and pending count, the stream's entries added: for the stats verb. */
static int qredis_info(struct qreader *r)
{
	struct queue *q = r->q;
	redisReply *g = redisCommand(r->qc.c, "XINFO GROUPS %s", q->conf.queue_stream);
	redisReply *s = g ? redisCommand(r->qc.c, "XINFO STREAM %s", q->conf.queue_stream) : NULL;
	if (!g || !s) {
		freeReplyObject(g);
		qredis_lost(q, &r->qc, r->qc.c->errstr);
		return -1;
	}
	long long lag = -1, pending = -1;
	for (size_t i = 0; g->type == REDIS_REPLY_ARRAY && i < g->elements; i++) {
		const redisReply *name = qredis_field(g->element[i], "name");
		if (name && name->type == REDIS_REPLY_STRING && !strcmp(name->str, q->conf.queue_group)) {
			lag = qredis_map_int(g->element[i], "lag");
			pending = qredis_map_int(g->element[i], "pending");
		}
	}
	pthread_mutex_lock(&q->lock);
	q->n.lag = lag;
	q->n.pending = pending;
	q->n.entries_added = s->type == REDIS_REPLY_ARRAY ? qredis_map_int(s, "entries-added") : -1;
	pthread_mutex_unlock(&q->lock);
	freeReplyObject(g);
	freeReplyObject(s);
	return 0;
}

/* One turn of the reader on a live connection. Returns -1 when the connection was lost. */
static int qredis_reader_turn(struct qreader *r, int64_t *next_info, int64_t *next_beat, int64_t *next_claim)
{
	struct queue *q = r->q;
	uint32_t claim_ms = q->conf.queue_claim_idle_ms;
	int64_t now = qredis_now_ms();
	if (now >= *next_info) {
		*next_info = now + QREDIS_INFO_MS;
		if (qredis_info(r) < 0)
			return -1;
	}
	if (now >= *next_beat) {
		*next_beat = now + claim_ms / 3;
		if (qredis_heartbeat(r) < 0)
			return -1;
	}
	uint32_t free_n = qredis_free_slots(q);
	if (!r->own_pending_done && free_n) { /* entries this consumer name held before a restart */
		r->own_pending_done = true;
		if (qredis_read(r, free_n, "0", -1) < 0)
			return -1; /* refused: a new consumer name has nothing of its own anyway */
		free_n = qredis_free_slots(q);
	}
	if (now >= *next_claim && free_n) {
		*next_claim = now + claim_ms / 2;
		if (qredis_dead_pass(r) < 0 || qredis_autoclaim(r, free_n) < 0)
			return -1;
		free_n = qredis_free_slots(q);
	}
	/* Read in batches: with entries held, wait (a little) for a quarter of the slots or a batch to
	 * come free rather than asking for a few entries at a time. */
	uint32_t want = q->nslots / 4 < q->conf.queue_batch ? q->nslots / 4 : q->conf.queue_batch;
	if (free_n < want && !r->waited) {
		pthread_mutex_lock(&q->lock);
		if (!q->stop_reading && q->nfree < want)
			qredis_wait(q, &q->reader_cond, free_n ? QREDIS_GATHER_MS : (claim_ms / 3 < 200 ? claim_ms / 3 : 200));
		pthread_mutex_unlock(&q->lock);
		r->waited = free_n > 0; /* one short wait, then read what is free */
		return 0;
	}
	r->waited = false;
	if (!free_n)
		return 0;
	int64_t block = claim_ms / 4 < QREDIS_BLOCK_MAX_MS ? claim_ms / 4 : QREDIS_BLOCK_MAX_MS;
	if (block >= q->conf.queue_timeout_ms)
		block = q->conf.queue_timeout_ms / 2;
	uint32_t count = free_n < q->conf.queue_batch ? free_n : q->conf.queue_batch;
	int rc = qredis_read(r, count, ">", block < 1 ? 1 : block);
	if (rc > 0) { /* refused (logged): no busy loop */
		pthread_mutex_lock(&q->lock);
		if (!q->stop_reading)
			qredis_wait(q, &q->reader_cond, QREDIS_BACKOFF_MAX_MS);
		pthread_mutex_unlock(&q->lock);
	}
	return rc < 0 ? -1 : 0;
}

static void *qredis_reader_main(void *arg)
{
	struct qreader *r = arg;
	struct queue *q = r->q;
	int64_t next_info = 0, next_beat = 0, next_claim = 0;
	bool group_ok = false;
	while (!__atomic_load_n(&q->stop_reading, __ATOMIC_ACQUIRE)) {
		if (!r->qc.c) {
			group_ok = false;
			if (!qredis_ensure(q, &r->qc, &q->reader_cond, &q->stop_reading))
				continue;
		}
		if (!group_ok) {
			if (qredis_group_create(r) < 0) {
				if (r->qc.c) /* a Redis error (not the connection): try again after a while */
					qredis_lost(q, &r->qc, "cannot create the consumer group");
				continue;
			}
			group_ok = true;
		}
		qredis_reader_turn(r, &next_info, &next_beat, &next_claim);
	}
	if (r->qc.c)
		redisFree(r->qc.c);
	qargs_free(&r->a);
	free(r->ids);
	free(r);
	return NULL;
}

/* ---- writer ---- */

struct qwriter {
	struct queue *q;
	struct qconn qc;
	struct qargs a;
	bool warned;             /* a refused XADD was logged: the next ones wait for a success */
};

/* Run the script for every result of the batch (pipelined); those done leave it and free their slots.
 * Returns -1 when the connection failed, else the number Redis refused (they stay in the batch). */
static int qredis_add(struct qwriter *w, struct queue_msg **batch)
{
	struct queue *q = w->q;
	char maxlen[24];
	int sent = 0, refused = 0;
	for (struct queue_msg *m = *batch; m; m = m->next, sent++) {
		qredis_script_args(q, &w->qc, &w->a, q->conf.queue_results, q->slots[m->slot].id, maxlen, sizeof(maxlen));
		qargs_str(&w->a, "entry");
		qargs_str(&w->a, q->slots[m->slot].id);
		qargs_str(&w->a, "url");
		qargs_add(&w->a, m->data, m->url_len);
		qargs_str(&w->a, "consumer");
		qargs_str(&w->a, q->consumer);
		qargs_str(&w->a, "result");
		qargs_add(&w->a, m->data + m->url_len, m->len - m->url_len);
		redisAppendCommandArgv(w->qc.c, w->a.n, w->a.argv, w->a.len);
	}
	uint64_t published = 0, superseded = 0;
	struct queue_msg **p = batch;
	while (*p && sent--) {
		struct queue_msg *m = *p;
		redisReply *rep = NULL;
		if (redisGetReply(w->qc.c, (void **)&rep) != REDIS_OK) {
			qredis_lost(q, &w->qc, w->qc.c->errstr);
			refused = -1;
			break;
		}
		if (rep->type == REDIS_REPLY_ERROR && !strncmp(rep->str, "NOSCRIPT", 8)) { /* SCRIPT FLUSH: reload */
			freeReplyObject(rep);
			qredis_lost(q, &w->qc, "the script cache was flushed");
			refused = -1;
			break;
		}
		if (rep->type == REDIS_REPLY_ERROR) {
			if (!w->warned)
				log_error("queue: adding a result to %s refused: %s (retrying)", q->conf.queue_results, rep->str);
			w->warned = true;
			refused++;
			p = &m->next;
		} else {
			w->warned = false;
			if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
				published++;
			else
				superseded++;
			*p = m->next;
			queue_slot_release(q, m->slot, true);
			free(m);
		}
		freeReplyObject(rep);
	}
	pthread_mutex_lock(&q->lock);
	q->n.published += published;
	q->n.superseded += superseded;
	pthread_mutex_unlock(&q->lock);
	return refused;
}

/* Publish a batch until it is all acknowledged, or (once fetchd stops) the deadline passes. */
static void qredis_publish(struct qwriter *w, struct queue_msg **batch)
{
	struct queue *q = w->q;
	int64_t deadline = 0;
	uint32_t backoff = 0;
	while (*batch) {
		if (__atomic_load_n(&q->stop, __ATOMIC_ACQUIRE)) {
			int64_t now = qredis_now_ms();
			if (!deadline)
				deadline = now + q->conf.queue_timeout_ms;
			else if (now >= deadline)
				return;
		}
		if (!qredis_ensure(q, &w->qc, &q->writer_cond, &q->stop))
			continue;
		int rc = qredis_add(w, batch);
		if (rc > 0) { /* refused by Redis (out of memory, a key of another type...): wait, retry */
			backoff = backoff ? (backoff * 2 > QREDIS_BACKOFF_MAX_MS ? QREDIS_BACKOFF_MAX_MS : backoff * 2)
					  : QREDIS_BACKOFF_MIN_MS;
			pthread_mutex_lock(&q->lock);
			qredis_wait(q, &q->writer_cond, backoff);
			pthread_mutex_unlock(&q->lock);
		} else if (rc == 0) {
			backoff = 0;
		}
	}
}

/* Take up to QREDIS_PUBLISH_MAX results off the list (q->lock held). */
static struct queue_msg *qredis_take_results(struct queue *q)
{
	struct queue_msg *head = q->res_head, *m = head;
	for (uint32_t n = 1; m && n < QREDIS_PUBLISH_MAX; n++)
		m = m->next;
	if (!m || !m->next) {
		q->res_head = q->res_tail = NULL;
	} else {
		q->res_head = m->next;
		m->next = NULL;
	}
	return head;
}

static void *qredis_writer_main(void *arg)
{
	struct qwriter *w = arg;
	struct queue *q = w->q;
	uint64_t lost = 0;
	for (;;) {
		pthread_mutex_lock(&q->lock);
		while (!q->res_head && !q->stop)
			pthread_cond_wait(&q->writer_cond, &q->lock);
		struct queue_msg *batch = q->res_head ? qredis_take_results(q) : NULL;
		pthread_mutex_unlock(&q->lock);
		if (!batch)
			break;
		qredis_publish(w, &batch);
		while (batch) { /* the deadline after the stop passed: these entries stay pending */
			struct queue_msg *m = batch;
			batch = m->next;
			queue_slot_release(q, m->slot, false);
			free(m);
			lost++;
		}
	}
	if (lost)
		log_warn("queue: %llu results not published before the stop: their entries stay pending and will be "
			 "fetched again", (unsigned long long)lost);
	if (w->qc.c)
		redisFree(w->qc.c);
	qargs_free(&w->a);
	free(w);
	return NULL;
}

int qredis_start(struct queue *q, char *err, size_t errlen)
{
	struct qreader *r = calloc(1, sizeof(*r));
	struct qwriter *w = calloc(1, sizeof(*w));
	if (r)
		r->ids = calloc(q->nslots, sizeof(*r->ids));
	if (!r || !w || !r->ids) {
		free(r ? r->ids : NULL);
		free(r);
		free(w);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->q = w->q = q;
	r->qc.role = "reader";
	r->qc.up = &q->reader_up;
	w->qc.role = "writer";
	w->qc.up = &q->writer_up;
	w->qc.flush = true;
	int rc = pthread_create(&q->writer, NULL, qredis_writer_main, w);
	if (rc) {
		free(r->ids);
		free(r);
		free(w);
		snprintf(err, errlen, "queue writer thread: %s", strerror(rc));
		return -1;
	}
	q->writer_started = true;
	rc = pthread_create(&q->reader, NULL, qredis_reader_main, r);
	if (rc) {
		free(r->ids);
		free(r);
		snprintf(err, errlen, "queue reader thread: %s", strerror(rc));
		return -1;
	}
	q->reader_started = true;
	return 0;
}

/* The reader first (no more entries), then the writer (it publishes what is left). */
void qredis_join(struct queue *q)
{
	if (q->reader_started)
		pthread_join(q->reader, NULL);
	if (q->writer_started)
		pthread_join(q->writer, NULL);
	q->reader_started = q->writer_started = false;
}

/* queue.c - the control thread's side of the Redis Streams queue (queue.h): the queue's client slot,
 * admitting the entries the reader thread leaves, handing results to the writer thread, the slots
 * that bound it all, and the "queue" object of the stats verb. The Redis side is qredis.c. */
#include "daemon/fetchd.h"
#include "daemon/queue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/json.h"
#include "daemon/log.h"
#include "daemon/result.h"

uint32_t queue_client_slots(const struct conf *c)
{
	return strcmp(c->queue_backend, "redis") == 0 ? 1 : 0;
}

/* The client the queue's URLs run as: no socket, never done. */
static void queue_open_client(struct fetchd *d, struct queue *q)
{
	struct client *c = &d->clients[q->client_idx];
	client_slot_open(d, c, -1, getpid(), geteuid());
	c->queue = true;
	c->hello_done = true;
	c->hash = true;
	c->opts = d->opts_default;
}

static int queue_alloc(struct queue *q, uint32_t nslots)
{
	q->slots = calloc(nslots, sizeof(*q->slots));
	q->free_slots = calloc(nslots, sizeof(*q->free_slots));
	if (!q->slots || !q->free_slots)
		return -1;
	q->nslots = nslots;
	for (uint32_t i = 0; i < nslots; i++)
		q->free_slots[i] = nslots - 1 - i;
	q->nfree = nslots;
	return 0;
}

int queue_init(struct fetchd *d, char *err, size_t errlen)
{
	if (!queue_client_slots(&d->conf))
		return 0;
	struct queue *q = calloc(1, sizeof(*q));
	if (!q) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->queue = q;
	q->conf = d->conf;
	const char *why = "";
	if (redisurl_parse(d->conf.queue_url, &q->url, &why) < 0) { /* conf checked it: cannot happen */
		snprintf(err, errlen, "[queue] url: %s", why);
		return -1;
	}
	redisurl_safe(&q->url, q->url_safe, sizeof(q->url_safe));
	if (d->conf.queue_consumer[0]) {
		snprintf(q->consumer, sizeof(q->consumer), "%s", d->conf.queue_consumer);
	} else {
		char host[64] = "fetchd";
		if (gethostname(host, sizeof(host)) < 0 || !host[0])
			snprintf(host, sizeof(host), "fetchd");
		host[sizeof(host) - 1] = 0;
		snprintf(q->consumer, sizeof(q->consumer), "%s-%d", host, (int)getpid());
	}
	q->control_efd = d->efd;
	q->max_url_bytes = d->conf.max_url_bytes;
	q->client_idx = d->conf.max_clients + d->conf.max_jobs;
	q->n.lag = q->n.pending = q->n.entries_added = -1;
	uint32_t nslots = d->conf.queue_max_pending ? d->conf.queue_max_pending : d->conf.max_inflight;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* qredis.c waits with monotonic deadlines */
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->reader_cond, &ca);
	pthread_cond_init(&q->writer_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (queue_alloc(q, nslots) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	queue_open_client(d, q);
	if (qredis_start(q, err, errlen) < 0)
		return -1;
	log_info("queue: redis %s stream=%s group=%s consumer=%s results_stream=%s max_pending=%u batch=%u",
		 q->url_safe, q->conf.queue_stream, q->conf.queue_group, q->consumer, q->conf.queue_results, nslots,
		 q->conf.queue_batch);
	return 0;
}

void queue_slot_release(struct queue *q, uint32_t slot, bool acked)
{
	pthread_mutex_lock(&q->lock);
	if (slot < q->nslots && q->slots[slot].state == QS_HELD) {
		q->slots[slot].state = QS_FREE;
		q->free_slots[q->nfree++] = slot;
		q->nheld--;
		if (acked)
			q->n.acked++;
		else
			q->n.dropped++;
		pthread_cond_signal(&q->reader_cond);
	}
	pthread_mutex_unlock(&q->lock);
}

/* The entries the reader left: each becomes a URL of the queue's client (its slot as the line
 * number). While fetchd stops they are let go unacknowledged: another consumer takes them over. */
void queue_take(struct fetchd *d)
{
	struct queue *q = d->queue;
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	struct queue_msg *m = q->in_head;
	q->in_head = q->in_tail = NULL;
	pthread_mutex_unlock(&q->lock);
	struct client *c = &d->clients[q->client_idx];
	while (m) {
		struct queue_msg *next = m->next;
		if (d->stopping || c->state != CL_OPEN)
			queue_slot_release(q, m->slot, false);
		else if (m->reject)
			client_reject_line(d, c, m->data, m->url_len, "url", "%s", m->reject, m->slot);
		else
			client_admit_url(d, c, m->data, m->len, m->slot);
		free(m);
		m = next;
	}
	for (uint32_t i = 0; d->wake_mask; i++, d->wake_mask >>= 1)
		if (d->wake_mask & 1)
			worker_wake(&d->workers[i]);
}

/* A result for the writer: the URL, then the JSON without its newline. */
static void queue_publish(struct fetchd *d, uint32_t slot, const char *url, size_t url_len, const uint8_t *json,
			  size_t len)
{
	struct queue *q = d->queue;
	struct client *c = &d->clients[q->client_idx];
	c->results++;
	d->results_sent++;
	if (len && json[len - 1] == '\n')
		len--;
	struct queue_msg *m = malloc(sizeof(*m) + url_len + len);
	if (!m) {
		log_error("queue: out of memory for a result: its entry stays pending");
		queue_slot_release(q, slot, false);
		return;
	}
	memset(m, 0, sizeof(*m));
	m->slot = slot;
	m->url_len = (uint32_t)url_len;
	m->len = (uint32_t)(url_len + len);
	memcpy(m->data, url, url_len);
	memcpy(m->data + url_len, json, len);
	pthread_mutex_lock(&q->lock);
	if (q->res_tail)
		q->res_tail->next = m;
	else
		q->res_head = m;
	q->res_tail = m;
	pthread_cond_signal(&q->writer_cond);
	pthread_mutex_unlock(&q->lock);
}

/* A worker's result for f (seq is its slot). A fetch cancelled by the stop is not a result: its entry
 * stays pending for another consumer. */
void queue_result_line(struct fetchd *d, struct fetch *f, const uint8_t *line, uint32_t len)
{
	if (!len || f->cancelled) {
		queue_slot_release(d->queue, f->seq, false);
		return;
	}
	queue_publish(d, f->seq, f->url, f->url_len, line, len);
}

void queue_result(struct fetchd *d, uint32_t slot, const struct result *r)
{
	struct queue *q = d->queue;
	if (r->err_class && !strcmp(r->err_class, "cancelled")) {
		queue_slot_release(q, slot, false);
		return;
	}
	q->scratch.len = 0;
	if (result_encode(&q->scratch, r) < 0) {
		log_error("queue: out of memory for a result: its entry stays pending");
		queue_slot_release(q, slot, false);
		return;
	}
	queue_publish(d, slot, r->url, r->url_len, q->scratch.p, q->scratch.len);
	buf_trim(&q->scratch, 65536);
}

bool queue_busy(const struct fetchd *d)
{
	return d->queue && d->clients[d->queue->client_idx].admitted > 0;
}

void queue_stop(struct fetchd *d)
{
	struct queue *q = d->queue;
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop_reading = true;
	pthread_cond_broadcast(&q->reader_cond);
	pthread_mutex_unlock(&q->lock);
}

static void queue_free_list(struct queue_msg *m)
{
	while (m) {
		struct queue_msg *next = m->next;
		free(m);
		m = next;
	}
}

/* After the workers' last results: the writer publishes what is left (or gives up after its deadline),
 * and both threads end. */
void queue_fini(struct fetchd *d)
{
	struct queue *q = d->queue;
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop_reading = q->stop = true;
	pthread_cond_broadcast(&q->reader_cond);
	pthread_cond_broadcast(&q->writer_cond);
	pthread_mutex_unlock(&q->lock);
	qredis_join(q);
	if (q->n.dropped + q->nheld)
		log_info("queue: %llu entries left pending (not done at the stop): another consumer takes them over "
			 "after claim_idle_ms", (unsigned long long)(q->n.dropped + q->nheld));
	log_info("queue: stopped read=%llu claimed=%llu published=%llu acked=%llu superseded=%llu dead=%llu "
		 "dropped=%llu reconnects=%llu", (unsigned long long)q->n.read, (unsigned long long)q->n.claimed,
		 (unsigned long long)q->n.published, (unsigned long long)q->n.acked,
		 (unsigned long long)q->n.superseded, (unsigned long long)q->n.dead,
		 (unsigned long long)q->n.dropped, (unsigned long long)q->n.reconnects);
	queue_free_list(q->in_head);
	queue_free_list(q->res_head);
	free(q->slots);
	free(q->free_slots);
	buf_free(&q->scratch);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->reader_cond);
	pthread_cond_destroy(&q->writer_cond);
	free(q);
	d->queue = NULL;
}

static void queue_json_i64(struct buf *b, const char *key, int64_t v)
{
	if (v < 0)
		buf_printf(b, ",\"%s\":null", key);
	else
		buf_printf(b, ",\"%s\":%lld", key, (long long)v);
}

void queue_info(struct fetchd *d, struct buf *b)
{
	struct queue *q = d->queue;
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	struct queue_counters n = q->n;
	uint32_t held = q->nheld;
	pthread_mutex_unlock(&q->lock);
	buf_append(b, ",\"queue\":{\"backend\":\"redis\",\"url\":", 34);
	json_str(b, q->url_safe, strlen(q->url_safe));
	buf_append(b, ",\"stream\":", 10);
	json_str(b, q->conf.queue_stream, strlen(q->conf.queue_stream));
	buf_append(b, ",\"results_stream\":", 18);
	json_str(b, q->conf.queue_results, strlen(q->conf.queue_results));
	buf_append(b, ",\"group\":", 9);
	json_str(b, q->conf.queue_group, strlen(q->conf.queue_group));
	buf_append(b, ",\"consumer\":", 12);
	json_str(b, q->consumer, strlen(q->consumer));
	buf_printf(b, ",\"connected\":%s,\"held\":%u,\"max_pending\":%u,\"read\":%llu,\"claimed\":%llu,"
		   "\"published\":%llu,\"acked\":%llu,\"superseded\":%llu,\"dead\":%llu,\"dropped\":%llu,"
		   "\"reconnects\":%llu",
		   n.connected ? "true" : "false", held, q->nslots, (unsigned long long)n.read,
		   (unsigned long long)n.claimed, (unsigned long long)n.published, (unsigned long long)n.acked,
		   (unsigned long long)n.superseded, (unsigned long long)n.dead, (unsigned long long)n.dropped, (unsigned long long)n.reconnects);
	queue_json_i64(b, "lag", n.lag);
	queue_json_i64(b, "pending", n.pending);
	queue_json_i64(b, "entries_added", n.entries_added);
	buf_append(b, "}", 1);
}

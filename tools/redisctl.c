/* redisctl.c - fetchctl enqueue and drain (redisctl.h): a URL list into a Redis stream, and a results or
 * dead stream out of one, so that a crawl shared by fetchd daemons needs no other tool. Synchronous
 * hiredis; commands are pipelined a thousand at a time. */
#include "tools/redisctl.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "conf/redisurl.h"

#define REDISCTL_PIPELINE 1000
#define REDISCTL_TIMEOUT_MS 10000
#define REDISCTL_BLOCK_MS 1000
#define REDISCTL_EXIT_REDIS 3

static volatile sig_atomic_t redisctl_stop;

static void redisctl_on_signal(int sig)
{
	(void)sig;
	redisctl_stop = 1;
}

static redisContext *redisctl_connect(const char *url)
{
	struct redisurl u;
	const char *why = "";
	if (redisurl_parse(url, &u, &why) < 0) {
		fprintf(stderr, "fetchctl: --redis %s\n", why);
		return NULL;
	}
	char safe[512];
	redisurl_safe(&u, safe, sizeof(safe));
	struct timeval tv = { REDISCTL_TIMEOUT_MS / 1000, 0 };
	redisContext *c = redisConnectWithTimeout(u.host, u.port, tv);
	if (!c || c->err) {
		fprintf(stderr, "fetchctl: cannot reach Redis at %s: %s\n", safe, c ? c->errstr : "out of memory");
		redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	redisReply *r = NULL;
	if (u.password[0])
		r = u.user[0] ? redisCommand(c, "AUTH %s %s", u.user, u.password) : redisCommand(c, "AUTH %s", u.password);
	if (!r || r->type != REDIS_REPLY_ERROR) {
		freeReplyObject(r);
		r = u.db ? redisCommand(c, "SELECT %u", (unsigned)u.db) : NULL;
	}
	if ((r && r->type == REDIS_REPLY_ERROR) || c->err) {
		fprintf(stderr, "fetchctl: Redis at %s: %s\n", safe, c->err ? c->errstr : r->str);
		freeReplyObject(r);
		redisFree(c);
		return NULL;
	}
	freeReplyObject(r);
	return c;
}

/* ---- enqueue ---- */

struct redisctl_entry {
	char *line;              /* URL, then TAB key=value items (malloc'd) */
	size_t len;
	uint64_t line_no;
};

struct redisctl_enq {
	redisContext *c;
	const char *stream;
	uint64_t queued, added, refused;
	char first[48], last[48];
	const char **argv;
	size_t *argl;
	size_t cap;
};

/* XADD stream * url URL key value...: false (with the line named) when an item is not key=value. */
static bool redisctl_append(struct redisctl_enq *e, const struct redisctl_entry *en)
{
	size_t n = 3;
	char *p = en->line, *end = en->line + en->len;
	for (char *s = p; s <= end; s++)
		n += s == end || *s == '\t' ? 2 : 0;
	if (n > e->cap) {
		e->cap = n * 2;
		e->argv = realloc(e->argv, e->cap * sizeof(*e->argv));
		e->argl = realloc(e->argl, e->cap * sizeof(*e->argl));
		if (!e->argv || !e->argl) {
			fprintf(stderr, "fetchctl: out of memory\n");
			exit(1);
		}
	}
	size_t k = 0;
	e->argv[k] = "XADD", e->argl[k++] = 4;
	e->argv[k] = e->stream, e->argl[k++] = strlen(e->stream);
	e->argv[k] = "*", e->argl[k++] = 1;
	char *tab = memchr(p, '\t', (size_t)(end - p));
	e->argv[k] = "url", e->argl[k++] = 3;
	e->argv[k] = p, e->argl[k++] = (size_t)((tab ? tab : end) - p);
	while (tab) {
		char *item = tab + 1;
		tab = memchr(item, '\t', (size_t)(end - item));
		char *iend = tab ? tab : end, *eq = memchr(item, '=', (size_t)(iend - item));
		if (iend == item)
			continue;
		if (!eq || eq == item) {
			fprintf(stderr, "fetchctl: line %llu: option '%.*s' is not key=value: not enqueued\n",
				(unsigned long long)en->line_no, (int)(iend - item > 60 ? 60 : iend - item), item);
			e->refused++;
			return false;
		}
		e->argv[k] = item, e->argl[k++] = (size_t)(eq - item);
		e->argv[k] = eq + 1, e->argl[k++] = (size_t)(iend - eq - 1);
	}
	redisAppendCommandArgv(e->c, (int)k, e->argv, e->argl);
	e->queued++;
	return true;
}

/* Read the replies of the queued XADDs. */
static int redisctl_replies(struct redisctl_enq *e)
{
	for (; e->queued; e->queued--) {
		redisReply *r = NULL;
		if (redisGetReply(e->c, (void **)&r) != REDIS_OK) {
			fprintf(stderr, "fetchctl: Redis: %s (after %llu entries)\n", e->c->errstr, (unsigned long long)e->added);
			return -1;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "fetchctl: XADD %s: %s (after %llu entries)\n", e->stream, r->str,
				(unsigned long long)e->added);
			freeReplyObject(r);
			return -1;
		}
		snprintf(e->added ? e->last : e->first, sizeof(e->first), "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
		if (!e->added)
			snprintf(e->last, sizeof(e->last), "%s", e->first);
		e->added++;
		freeReplyObject(r);
	}
	return 0;
}

/* Add the entry in cur (and empty it); -1 when Redis failed. */
static int redisctl_emit(struct redisctl_enq *e, struct redisctl_entry *cur)
{
	if (!cur->len)
		return 0;
	redisctl_append(e, cur);
	cur->len = 0;
	return e->queued >= REDISCTL_PIPELINE ? redisctl_replies(e) : 0;
}

/* Append p[0..n) (after a TAB when cur holds a URL already). */
static void redisctl_add(struct redisctl_entry *cur, size_t *cap, const char *p, size_t n)
{
	if (cur->len + n + 2 > *cap) {
		*cap = (cur->len + n + 2) * 2;
		if (!(cur->line = realloc(cur->line, *cap))) {
			fprintf(stderr, "fetchctl: out of memory\n");
			exit(1);
		}
	}
	if (cur->len)
		cur->line[cur->len++] = '\t';
	memcpy(cur->line + cur->len, p, n);
	cur->len += n;
}

int redisctl_enqueue(const char *url, const char *stream, FILE *in, bool json, bool quiet)
{
	struct redisctl_enq e = { .stream = stream };
	if (!(e.c = redisctl_connect(url)))
		return REDISCTL_EXIT_REDIS;
	char *buf = NULL;
	size_t cap = 0, cur_cap = 0;
	uint64_t line_no = 0;
	int rc = 0;
	struct redisctl_entry cur = { 0 };
	ssize_t r;
	while (!rc && (r = getline(&buf, &cap, in)) >= 0) {
		line_no++;
		char *p = buf;
		size_t n = (size_t)r;
		if (!fetchctl_clean_line(&p, &n))
			continue;
		if (fetchctl_option_line(buf, p, n)) { /* an option for the URL above it */
			if (!cur.len) {
				fprintf(stderr, "fetchctl: line %llu: option '%.*s' before any URL\n",
					(unsigned long long)line_no, (int)(n > 60 ? 60 : n), p);
				e.refused++;
			} else {
				redisctl_add(&cur, &cur_cap, p, n);
			}
			continue;
		}
		if (redisctl_emit(&e, &cur) < 0)
			rc = REDISCTL_EXIT_REDIS;
		redisctl_add(&cur, &cur_cap, p, n);
		cur.line_no = line_no;
	}
	if (!rc && (redisctl_emit(&e, &cur) < 0 || redisctl_replies(&e) < 0))
		rc = REDISCTL_EXIT_REDIS;
	free(buf);
	free(cur.line);
	free(e.argv);
	free(e.argl);
	redisFree(e.c);
	if (json)
		printf("{\"enqueued\":%llu,\"refused\":%llu,\"stream\":\"%s\",\"first_id\":\"%s\",\"last_id\":\"%s\"}\n",
		       (unsigned long long)e.added, (unsigned long long)e.refused, stream, e.first, e.last);
	else if (!quiet)
		fprintf(stderr, "fetchctl: enqueued %llu URLs to %s%s\n", (unsigned long long)e.added, stream,
			e.refused ? " (some lines refused)" : "");
	return rc ? rc : e.refused ? 1 : 0;
}

/* ---- drain ---- */

/* s[0..n) as a JSON string. */
static void redisctl_json_str(FILE *out, const char *s, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static const redisReply *redisctl_field(const redisReply *fields, const char *name)
{
	for (size_t i = 0; fields && fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2)
		if (!strcmp(fields->element[i]->str, name))
			return fields->element[i + 1];
	return NULL;
}

/* One entry as a line: the result's JSON, or (dead) the entry's fields as a JSON object. */
static void redisctl_print(const struct redisctl_drain *o, const redisReply *fields)
{
	if (!o->dead) {
		const redisReply *r = redisctl_field(fields, "result");
		if (r && r->type == REDIS_REPLY_STRING) {
			fwrite(r->str, 1, r->len, stdout);
			fputc('\n', stdout);
		}
		return;
	}
	fputc('{', stdout);
	for (size_t i = 0; fields && i + 1 < fields->elements; i += 2) {
		const redisReply *k = fields->element[i], *v = fields->element[i + 1];
		if (i)
			fputc(',', stdout);
		redisctl_json_str(stdout, k->str, k->len);
		fputc(':', stdout);
		if (!strcmp(k->str, "deliveries") && v->len && strspn(v->str, "0123456789") == v->len)
			fwrite(v->str, 1, v->len, stdout);
		else
			redisctl_json_str(stdout, v->str, v->len);
	}
	fputs("}\n", stdout);
}

/* XACK (and XDEL unless keep) the entries of a read. */
static int redisctl_ack(redisContext *c, const struct redisctl_drain *o, const redisReply *entries)
{
	size_t n = entries->elements;
	const char **argv = calloc(n + 3, sizeof(*argv));
	size_t *argl = calloc(n + 3, sizeof(*argl));
	if (!argv || !argl) {
		free(argv);
		free(argl);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		argv[i + 3] = entries->element[i]->element[0]->str, argl[i + 3] = entries->element[i]->element[0]->len;
	argv[0] = "XACK", argv[1] = o->stream, argv[2] = o->group;
	argl[0] = 4, argl[1] = strlen(o->stream), argl[2] = strlen(o->group);
	redisReply *r = redisCommandArgv(c, (int)(n + 3), argv, argl);
	bool ok = r && r->type != REDIS_REPLY_ERROR;
	freeReplyObject(r);
	if (ok && !o->keep) {
		argv[1] = "XDEL", argl[1] = 4;
		argv[2] = o->stream, argl[2] = strlen(o->stream);
		r = redisCommandArgv(c, (int)(n + 2), argv + 1, argl + 1);
		ok = r && r->type != REDIS_REPLY_ERROR;
		freeReplyObject(r);
	}
	free(argv);
	free(argl);
	return ok ? 0 : -1;
}

/* One XREADGROUP from id ("0": this consumer's unacknowledged entries, ">": new ones). Returns the
 * lines printed, or -1. */
static long long redisctl_read(redisContext *c, const struct redisctl_drain *o, const char *id, uint64_t want,
			       bool block)
{
	char count[24], blk[16];
	snprintf(count, sizeof(count), "%llu", (unsigned long long)want);
	snprintf(blk, sizeof(blk), "%d", REDISCTL_BLOCK_MS);
	const char *argv[] = { "XREADGROUP", "GROUP", o->group, o->consumer, "COUNT", count, "BLOCK", blk, "STREAMS",
			       o->stream, id };
	const char *noblk[] = { "XREADGROUP", "GROUP", o->group, o->consumer, "COUNT", count, "STREAMS", o->stream,
				id };
	redisReply *r = block ? redisCommandArgv(c, 11, argv, NULL) : redisCommandArgv(c, 9, noblk, NULL);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "fetchctl: XREADGROUP %s: %s\n", o->stream, r ? r->str : c->errstr);
		freeReplyObject(r);
		return -1;
	}
	long long printed = 0;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 2) {
		const redisReply *entries = r->element[0]->element[1];
		for (size_t i = 0; i < entries->elements; i++, printed++)
			redisctl_print(o, entries->element[i]->element[1]);
		if (fflush(stdout) != 0) {
			fprintf(stderr, "fetchctl: writing results: %s\n", strerror(errno));
			printed = -1;
		} else if (entries->elements && redisctl_ack(c, o, entries) < 0) {
			fprintf(stderr, "fetchctl: XACK %s: %s\n", o->stream, c->err ? c->errstr : "refused");
			printed = -1;
		}
	}
	freeReplyObject(r);
	return printed;
}

int redisctl_drain(const char *url, const struct redisctl_drain *o)
{
	redisContext *c = redisctl_connect(url);
	if (!c)
		return REDISCTL_EXIT_REDIS;
	redisReply *r = redisCommand(c, "XGROUP CREATE %s %s 0 MKSTREAM", o->stream, o->group);
	if (!r || (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9))) {
		fprintf(stderr, "fetchctl: XGROUP CREATE %s %s: %s\n", o->stream, o->group, r ? r->str : c->errstr);
		freeReplyObject(r);
		redisFree(c);
		return REDISCTL_EXIT_REDIS;
	}
	freeReplyObject(r);
	signal(SIGINT, redisctl_on_signal);
	signal(SIGTERM, redisctl_on_signal);
	uint64_t total = 0;
	bool pending = true; /* first what this consumer read and did not acknowledge (a drain that died) */
	int rc = 0;
	while (!redisctl_stop && (!o->count || total < o->count)) {
		uint64_t want = o->count ? o->count - total : REDISCTL_PIPELINE;
		if (want > REDISCTL_PIPELINE)
			want = REDISCTL_PIPELINE;
		long long n = redisctl_read(c, o, pending ? "0" : ">", want, !pending && o->follow);
		if (n < 0) {
			rc = REDISCTL_EXIT_REDIS;
			break;
		}
		total += (uint64_t)n;
		if (n == 0 && pending)
			pending = false;
		else if (n == 0 && !o->follow)
			break;
	}
	redisFree(c);
	if (!o->quiet)
		fprintf(stderr, "fetchctl: drained %llu %s from %s\n", (unsigned long long)total,
			o->dead ? "dead entries" : "results", o->stream);
	return rc;
}

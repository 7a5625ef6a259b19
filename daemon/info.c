/* info.c - the control verbs that ask about the daemon instead of fetching (HELLO "verb",
 * docs/protocol.md §21): "ping" (who answers, since when) and "stats" (load, rates, caches, errors by
 * class, memory). Built on the control thread from its own counters and the copies the workers publish
 * at most every 100 ms (worker_publish), so a stats call never waits for a worker. */
#include "daemon/fetchd.h"
#include "daemon/queue.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/json.h"
#include "daemon/protocol.h"

#define INFO_TICK_NS 1000000000LL
#define INFO_RATE_SECONDS 10

static const char *const info_verbs[] = { "ping", "stats" };

int info_verb_known(const char *verb)
{
	for (size_t i = 0; i < sizeof(info_verbs) / sizeof(info_verbs[0]); i++)
		if (!strcmp(verb, info_verbs[i]))
			return 1;
	return 0;
}

void info_tick(struct fetchd *d)
{
	d->rate_ring[d->rate_at++ % (INFO_RATE_SECONDS + 1)] = d->results_sent;
	if (!d->stopping)
		fetchd_timer(d, d->now_ns + INFO_TICK_NS, TK_TICK, 0, 0);
}

__attribute__((format(printf, 2, 3))) static void info_put(struct buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		buf_append(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void info_head(const struct fetchd *d, struct buf *b)
{
	info_put(b, "{\"server\":\"fetchd/%s\",\"tls_backend\":", FETCHD_VERSION);
	const char *tls = tls_backend_name();
	json_str(b, tls, strlen(tls));
	info_put(b, ",\"pid\":%d,\"uptime_s\":%.3f,\"workers\":%u", (int)getpid(),
		 (double)(d->now_ns - d->start_ns) / 1e9, d->nworkers);
}

static long info_rss_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * sysconf(_SC_PAGESIZE);
}

/* Results per second over the last (up to) 10 whole seconds. */
static double info_recent_rate(const struct fetchd *d)
{
	uint32_t n = d->rate_at;
	if (n < 2)
		return 0;
	uint32_t span = n - 1 < INFO_RATE_SECONDS ? n - 1 : INFO_RATE_SECONDS;
	uint64_t last = d->rate_ring[(n - 1) % (INFO_RATE_SECONDS + 1)];
	uint64_t first = d->rate_ring[(n - 1 - span) % (INFO_RATE_SECONDS + 1)];
	return (double)(last - first) / span;
}

static void info_stats(struct fetchd *d, struct buf *b)
{
	struct fetchd_stats s = d->stats;
	struct worker_pub pub[FETCHD_MAX_WORKERS];
	uint64_t inflight = 0, open = 0, hosts = 0, admitted = 0;
	for (uint32_t i = 0; i < d->nworkers; i++) {
		worker_take_pub(&d->workers[i], &pub[i]);
		fetchd_stats_add(&s, &pub[i].stats);
		inflight += pub[i].inflight, open += pub[i].nopen, hosts += pub[i].nhosts;
	}
	for (uint32_t i = 0; i < d->client_cap; i++)
		if (d->clients[i].state != CL_FREE)
			admitted += d->clients[i].admitted;
	double up = (double)(d->now_ns - d->start_ns) / 1e9;
	info_put(b, ",\"clients\":%u,\"admitted\":%llu,\"inflight\":%llu,\"max_inflight\":%u,\"conns_open\":%llu,"
		    "\"hosts\":%llu,\"results\":%llu,\"ok\":%llu,\"failed\":%llu", d->nclients,
		 (unsigned long long)admitted, (unsigned long long)inflight, d->conf.max_inflight,
		 (unsigned long long)open, (unsigned long long)hosts, (unsigned long long)d->results_sent,
		 (unsigned long long)s.fetches_ok, (unsigned long long)s.fetches_failed);
	info_put(b, ",\"rate_per_s\":{\"since_start\":%.1f,\"last_10s\":%.1f}",
		 up > 0 ? (double)d->results_sent / up : 0.0, info_recent_rate(d));
	info_put(b, ",\"per_worker\":[");
	for (uint32_t i = 0; i < d->nworkers; i++)
		info_put(b, "%s{\"inflight\":%u,\"conns_open\":%u,\"hosts\":%u,\"ok\":%llu,\"failed\":%llu}",
			 i ? "," : "", pub[i].inflight, pub[i].nopen, pub[i].nhosts,
			 (unsigned long long)pub[i].stats.fetches_ok, (unsigned long long)pub[i].stats.fetches_failed);
	uint64_t lookups = s.dns_cache_hits + s.dns_queries;
	info_put(b, "],\"dns\":{\"queries\":%llu,\"cache_hits\":%llu,\"hosts_file_hits\":%llu,\"coalesced\":%llu,"
		    "\"cache_hit_rate\":", (unsigned long long)s.dns_queries, (unsigned long long)s.dns_cache_hits,
		 (unsigned long long)s.dns_hosts_file_hits, (unsigned long long)s.dns_coalesced);
	if (lookups)
		info_put(b, "%.4f}", (double)s.dns_cache_hits / (double)lookups);
	else
		info_put(b, "null}");
	info_put(b, ",\"conns\":{\"opened\":%llu,\"reused\":%llu},\"tls\":{\"handshakes\":%llu,\"resumed\":%llu}",
		 (unsigned long long)s.conns_opened, (unsigned long long)s.conns_reused,
		 (unsigned long long)s.tls_handshakes, (unsigned long long)s.tls_resumed);
	info_put(b, ",\"retries\":%llu,\"redirects\":%llu,\"robots\":{\"fetches\":%llu,\"denied\":%llu},"
		    "\"capture_pauses\":%llu,\"errors\":{", (unsigned long long)s.retries,
		 (unsigned long long)s.redirects, (unsigned long long)s.robots_fetches,
		 (unsigned long long)s.robots_denied, (unsigned long long)s.capture_pauses);
	for (unsigned i = 0; i < RESULT_NCLASSES; i++)
		info_put(b, "%s\"%s\":%llu", i ? "," : "", result_classes[i], (unsigned long long)s.errors[i]);
	info_put(b, "},\"memory\":{\"rss_bytes\":%ld}", info_rss_bytes());
	queue_info(d, b);
}

void info_answer(struct fetchd *d, const char *verb, struct buf *out)
{
	out->len = 0;
	info_head(d, out);
	if (!strcmp(verb, "stats"))
		info_stats(d, out);
	buf_append(out, "}", 1);
}

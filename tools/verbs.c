/* verbs.c - fetchctl ping, stats and version: one HELLO with "verb", one INFO frame back (its JSON
 * object printed as is with --json, else as a few lines for people), then the daemon closes. */
#include "tools/verbs.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/protocol.h"
#include "tools/resultline.h"

#define VERB_EXIT_UNREACHABLE 3
#define VERB_EXIT_LOST 4

bool verb_known(const char *verb)
{
	return !strcmp(verb, "ping") || !strcmp(verb, "stats") || !strcmp(verb, "version") || !strcmp(verb, "jobs") ||
	       verb_wants_job(verb);
}

int verb_wants_job(const char *verb)
{
	return !strcmp(verb, "status") || !strcmp(verb, "cancel");
}

/* The INFO frame's payload for verb (malloc'd, NUL-terminated) into *out. Returns 0 or an exit code. */
static int verb_ask(const char *sock, const char *verb, const char *job, char **out, bool quiet_unreachable)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(sock) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "fetchctl: socket path too long: %s\n", sock);
		return VERB_EXIT_UNREACHABLE;
	}
	strcpy(sun.sun_path, sock);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (!quiet_unreachable)
			fprintf(stderr, "fetchctl: cannot reach fetchd at %s: %s (is fetchd running? see -s or "
					"$FETCHD_SOCKET)\n", sock, strerror(errno));
		if (fd >= 0)
			close(fd);
		return VERB_EXIT_UNREACHABLE;
	}
	char hello[192];
	int n = snprintf(hello, sizeof(hello), "{\"protocol\":%d,\"client\":\"fetchctl/%s\",\"verb\":\"%s\"%s%.24s%s}",
			 FETCHD_PROTO_VERSION, FETCHD_VERSION, verb, job ? ",\"job\":\"" : "", job ? job : "",
			 job ? "\"" : "");
	if (job && strspn(job, "0123456789abcdef") != strlen(job)) {
		fprintf(stderr, "fetchctl: '%s' is not a job id (12 hex digits)\n", job);
		close(fd);
		return VERB_EXIT_LOST;
	}
	uint8_t hdr[FETCHD_FRAME_HDR_BYTES];
	fetchd_frame_hdr(hdr, (uint32_t)n, FETCHD_FR_HELLO);
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	int rc = VERB_EXIT_LOST;
	if (!buf || send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL) != (ssize_t)sizeof(hdr) ||
	    send(fd, hello, (size_t)n, MSG_NOSIGNAL) != n)
		goto out;
	for (;;) { /* everything until the daemon closes: one frame */
		if (len == cap) {
			char *p = cap < FETCHD_FRAME_MAX_BYTES * 2 ? realloc(buf, cap *= 2) : NULL;
			if (!p)
				goto out;
			buf = p;
		}
		ssize_t r = recv(fd, buf + len, cap - len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	if (len < FETCHD_FRAME_HDR_BYTES || len - FETCHD_FRAME_HDR_BYTES < fetchd_frame_len((uint8_t *)buf)) {
		fprintf(stderr, "fetchctl: fetchd closed the connection without an answer\n");
		goto out;
	}
	uint32_t plen = fetchd_frame_len((uint8_t *)buf);
	uint8_t type = (uint8_t)buf[4];
	memmove(buf, buf + FETCHD_FRAME_HDR_BYTES, plen);
	buf[plen] = 0;
	if (type == FETCHD_FR_ERROR) {
		fprintf(stderr, "fetchctl: fetchd refused: %s\n", buf);
		goto out;
	}
	if (type != FETCHD_FR_INFO) {
		fprintf(stderr, "fetchctl: unexpected frame type 0x%02x from fetchd\n", type);
		goto out;
	}
	*out = buf;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

/* The value at path as text ("" when absent). */
static const char *verb_get(const char *json, const char *path)
{
	static char text[8][256];
	static unsigned next;
	char *t = text[next++ % 8];
	struct rl_val v;
	t[0] = 0;
	if (rl_get(json, strlen(json), path, &v))
		rl_text(&v, t, sizeof(text[0]));
	return t;
}

static void verb_print_head(const char *j)
{
	double up = strtod(verb_get(j, "uptime_s"), NULL);
	unsigned long s = (unsigned long)up;
	printf("%s (%s), pid %s, up %lu:%02lu:%02lu, %s workers\n", verb_get(j, "server"), verb_get(j, "tls_backend"),
	       verb_get(j, "pid"), s / 3600, s / 60 % 60, s % 60, verb_get(j, "workers"));
}

static void verb_print_stats(const char *j)
{
	printf("clients %s, URLs in the daemon %s, in flight %s of %s, connections %s, hosts %s\n",
	       verb_get(j, "clients"), verb_get(j, "admitted"), verb_get(j, "inflight"), verb_get(j, "max_inflight"),
	       verb_get(j, "conns_open"), verb_get(j, "hosts"));
	printf("results %s (%s ok, %s failed); %s/s over the last 10 s, %s/s since the start\n",
	       verb_get(j, "results"), verb_get(j, "ok"), verb_get(j, "failed"), verb_get(j, "rate_per_s.last_10s"),
	       verb_get(j, "rate_per_s.since_start"));
	struct rl_val v;
	if (rl_get(j, strlen(j), "per_worker", &v) && v.type == RL_ARRAY) {
		const char *p = v.p, *end = v.p + v.len;
		for (int i = 0; (p = memchr(p, '{', (size_t)(end - p))) != NULL; i++) {
			const char *q = memchr(p, '}', (size_t)(end - p));
			if (!q)
				break;
			char one[256];
			snprintf(one, sizeof(one), "%.*s", (int)(q - p + 1), p);
			printf("  worker %d: in flight %s, connections %s, hosts %s, %s ok, %s failed\n", i,
			       verb_get(one, "inflight"), verb_get(one, "conns_open"), verb_get(one, "hosts"),
			       verb_get(one, "ok"), verb_get(one, "failed"));
			p = q + 1;
		}
	}
	const char *rate = verb_get(j, "dns.cache_hit_rate");
	printf("dns: %s queries, %s cache hits (hit rate %s), %s from the hosts file, %s coalesced\n",
	       verb_get(j, "dns.queries"), verb_get(j, "dns.cache_hits"), strcmp(rate, "null") ? rate : "-",
	       verb_get(j, "dns.hosts_file_hits"), verb_get(j, "dns.coalesced"));
	printf("connections: %s opened, %s reused; tls: %s handshakes, %s resumed\n", verb_get(j, "conns.opened"),
	       verb_get(j, "conns.reused"), verb_get(j, "tls.handshakes"), verb_get(j, "tls.resumed"));
	printf("retries %s, redirects %s, robots.txt %s fetched / %s denied\n", verb_get(j, "retries"),
	       verb_get(j, "redirects"), verb_get(j, "robots.fetches"), verb_get(j, "robots.denied"));
	printf("errors:");
	static const char *const classes[] = { "url", "dns", "blocked", "tls", "connect", "timeout", "protocol",
					       "too_large", "redirects", "robots", "cancelled", "internal" };
	int shown = 0;
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		char path[32];
		snprintf(path, sizeof(path), "errors.%s", classes[i]);
		const char *n = verb_get(j, path);
		if (n[0] && strcmp(n, "0"))
			printf("%s %s %s", shown++ ? "," : "", classes[i], n);
	}
	printf("%s\nmemory: %.1f MiB resident\n", shown ? "" : " none",
	       strtod(verb_get(j, "memory.rss_bytes"), NULL) / 1048576.0);
	if (!verb_get(j, "queue.backend")[0])
		return;
	printf("queue: %s stream %s group %s consumer %s, %s\n", verb_get(j, "queue.url"), verb_get(j, "queue.stream"),
	       verb_get(j, "queue.group"), verb_get(j, "queue.consumer"),
	       !strcmp(verb_get(j, "queue.connected"), "true") ? "connected" : "NOT connected");
	printf("  held %s of %s, group lag %s, pending %s; read %s, claimed %s,", verb_get(j, "queue.held"),
	       verb_get(j, "queue.max_pending"), verb_get(j, "queue.lag"), verb_get(j, "queue.pending"),
	       verb_get(j, "queue.read"), verb_get(j, "queue.claimed"));
	printf(" published %s, acked %s, dead %s, reconnects %s\n", verb_get(j, "queue.published"),
	       verb_get(j, "queue.acked"), verb_get(j, "queue.dead"), verb_get(j, "queue.reconnects"));
}

/* One job as a line: "3f9a1c0b2e4d  running  812/5000 results  256 in the daemon  2026-11-22T09:13:25Z". */
static void verb_print_job(const char *one)
{
	printf("%s  %s  %s/%s results  %s in the daemon  %s%s\n", verb_get(one, "id"), verb_get(one, "state"),
	       verb_get(one, "results"), verb_get(one, "urls"), verb_get(one, "in_daemon"), verb_get(one, "created"),
	       !strcmp(verb_get(one, "collecting"), "true") ? "  (being collected)" : "");
}

static void verb_print_jobs(const char *j)
{
	struct rl_val v;
	int n = 0;
	if (rl_get(j, strlen(j), "jobs", &v) && v.type == RL_ARRAY) {
		const char *p = v.p, *end = v.p + v.len;
		while ((p = memchr(p, '{', (size_t)(end - p))) != NULL) {
			const char *q = memchr(p, '}', (size_t)(end - p));
			if (!q)
				break;
			char one[512];
			snprintf(one, sizeof(one), "%.*s", (int)(q - p + 1), p);
			verb_print_job(one);
			n++;
			p = q + 1;
		}
	}
	if (!n)
		printf("no jobs\n");
}

int verb_run(const char *sock, const char *verb, const char *job, bool json)
{
	char *answer = NULL;
	bool version = !strcmp(verb, "version");
	if (version && !json)
		printf("fetchctl %s\n", FETCHD_VERSION);
	int rc = verb_ask(sock, version ? "ping" : verb, job, &answer, false);
	if (rc != 0) {
		if (version && json)
			printf("{\"fetchctl\":\"%s\",\"fetchd\":null}\n", FETCHD_VERSION);
		return rc;
	}
	if (version && json)
		printf("{\"fetchctl\":\"%s\",\"fetchd\":%s}\n", FETCHD_VERSION, answer);
	else if (json)
		printf("%s\n", answer);
	else if (!strcmp(verb, "jobs"))
		verb_print_jobs(answer);
	else if (!strcmp(verb, "status"))
		verb_print_job(answer);
	else if (!strcmp(verb, "cancel") && !strcmp(verb_get(answer, "removed"), "true"))
		printf("job %s removed with its results\n", job);
	else if (!strcmp(verb, "cancel"))
		verb_print_job(answer);
	else
		verb_print_head(answer);
	if (!json && !strcmp(verb, "stats"))
		verb_print_stats(answer);
	free(answer);
	return fflush(stdout) == 0 ? 0 : 1;
}

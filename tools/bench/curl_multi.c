/* curl_multi.c - the benchmark's libcurl multi-interface peer.
 *
 *   curl_multi LIST CONC [CAFILE]
 *
 * Fetches every URL in LIST (one per line; blank lines and lines starting with '#' skipped) with at
 * most CONC transfers in flight. This is what a C programmer would write with libcurl: one multi
 * handle with CURLMOPT_MAX_TOTAL_CONNECTIONS = CURLMOPT_MAX_HOST_CONNECTIONS = CONC, libcurl's default
 * keep-alive connection pooling, a curl_multi_poll() loop, and a fixed pool of CONC easy handles that
 * are re-armed with the next URL as soon as their transfer finishes. Bodies are discarded. CAFILE is
 * the CA bundle that https servers are verified against (CURLOPT_CAINFO; default: libcurl's).
 *
 * Environment: BENCH_NO_SESSION_CACHE=1 turns libcurl's TLS session cache off
 * (CURLOPT_SSL_SESSIONID_CACHE 0), so that every new TLS connection makes a full handshake; by
 * default libcurl caches sessions and resumes them.
 *
 * stdout: "fail=N" (transfers that did not end with CURLE_OK and HTTP 200) and, as the LAST line,
 * "ok=N" (transfers that completed with HTTP 200). stderr: the first few transfer errors.
 * Exit status: 0 when every URL got a 200, 1 when some did not, 2 on usage or setup errors.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o build/bench/curl_multi tools/bench/curl_multi.c -lcurl
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct list {
	char **url;
	size_t n, cap;
};

static void die(const char *msg)
{
	fprintf(stderr, "curl_multi: %s\n", msg);
	exit(2);
}

static void list_load(struct list *l, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "curl_multi: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	char *line = NULL;
	size_t linecap = 0;
	ssize_t len;
	while ((len = getline(&line, &linecap, f)) >= 0) {
		char *s = line, *e = line + len;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (s == e || *s == '#')
			continue;
		if (l->n == l->cap) {
			l->cap = l->cap ? 2 * l->cap : 4096;
			l->url = realloc(l->url, l->cap * sizeof *l->url);
			if (!l->url)
				die("out of memory");
		}
		l->url[l->n] = strndup(s, (size_t)(e - s));
		if (!l->url[l->n])
			die("out of memory");
		l->n++;
	}
	free(line);
	fclose(f);
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

static CURL *easy_new(const char *cafile, int no_session_cache)
{
	CURL *e = curl_easy_init();
	if (!e)
		die("curl_easy_init failed");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 120000L);
	if (cafile)
		curl_easy_setopt(e, CURLOPT_CAINFO, cafile);
	if (no_session_cache)
		curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	return e;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: curl_multi LIST CONC [CAFILE]\n");
		return 2;
	}
	char *end;
	long conc = strtol(argv[2], &end, 10);
	if (*end || conc < 1 || conc > 1000000)
		die("CONC must be a positive integer");
	const char *cafile = argc == 4 ? argv[3] : NULL;
	const char *nsc = getenv("BENCH_NO_SESSION_CACHE");
	int no_session_cache = nsc && *nsc && strcmp(nsc, "0") != 0;

	struct list l = {0};
	list_load(&l, argv[1]);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		die("curl_global_init failed");
	CURLM *m = curl_multi_init();
	if (!m)
		die("curl_multi_init failed");
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, conc);
	curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, conc);

	size_t npool = (size_t)conc < l.n ? (size_t)conc : l.n;
	CURL **pool = calloc(npool ? npool : 1, sizeof *pool);
	CURL **idle = calloc(npool ? npool : 1, sizeof *idle);
	if (!pool || !idle)
		die("out of memory");
	size_t nidle = 0;
	for (size_t i = 0; i < npool; i++)
		idle[nidle++] = pool[i] = easy_new(cafile, no_session_cache);

	size_t next = 0, running_handles = 0;
	unsigned long ok = 0, fail = 0, errors_shown = 0;
	unsigned long by_code[CURL_LAST + 1] = {0}; /* failures by CURLcode; CURLE_OK = HTTP status not 200 */
	while (next < l.n || running_handles > 0) {
		/* Arm every free easy handle with the next URL. */
		while (nidle > 0 && next < l.n) {
			CURL *e = idle[--nidle];
			curl_easy_setopt(e, CURLOPT_URL, l.url[next]);
			curl_easy_setopt(e, CURLOPT_PRIVATE, l.url[next]);
			next++;
			CURLMcode mc = curl_multi_add_handle(m, e);
			if (mc != CURLM_OK) {
				fprintf(stderr, "curl_multi: add_handle: %s\n", curl_multi_strerror(mc));
				return 2;
			}
			running_handles++;
		}
		int still = 0;
		CURLMcode mc = curl_multi_perform(m, &still);
		if (mc != CURLM_OK) {
			fprintf(stderr, "curl_multi: perform: %s\n", curl_multi_strerror(mc));
			return 2;
		}
		CURLMsg *msg;
		int left;
		int finished = 0;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			CURL *e = msg->easy_handle;
			CURLcode rc = msg->data.result;
			long code = 0;
			curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
			if (rc == CURLE_OK && code == 200) {
				ok++;
			} else {
				fail++;
				by_code[rc < CURL_LAST ? rc : CURL_LAST]++;
				if (errors_shown++ < 5) {
					char *url = NULL;
					curl_easy_getinfo(e, CURLINFO_PRIVATE, &url);
					fprintf(stderr, "curl_multi: %s: %s (HTTP %ld)\n", url ? url : "?",
						curl_easy_strerror(rc), code);
				}
			}
			curl_multi_remove_handle(m, e);
			idle[nidle++] = e;
			running_handles--;
			finished = 1;
		}
		/* Refill at once when something finished; otherwise wait for activity. */
		if (!finished && running_handles > 0) {
			mc = curl_multi_poll(m, NULL, 0, 1000, NULL);
			if (mc != CURLM_OK) {
				fprintf(stderr, "curl_multi: poll: %s\n", curl_multi_strerror(mc));
				return 2;
			}
		}
	}

	for (size_t i = 0; i < npool; i++)
		curl_easy_cleanup(pool[i]);
	curl_multi_cleanup(m);
	curl_global_cleanup();
	for (size_t i = 0; i < l.n; i++)
		free(l.url[i]);
	free(l.url);
	free(pool);
	free(idle);

	if (fail) {
		fprintf(stderr, "curl_multi: %lu of %zu failed:", fail, l.n);
		const char *sep = " ";
		for (int c = 0; c <= CURL_LAST; c++) {
			if (!by_code[c])
				continue;
			fprintf(stderr, "%s%lu x %s", sep, by_code[c],
				c == CURLE_OK ? "HTTP status not 200" : curl_easy_strerror((CURLcode)c));
			sep = ", ";
		}
		fputc('\n', stderr);
	}
	printf("fail=%lu\nok=%lu\n", fail, ok);
	return fail ? 1 : 0;
}

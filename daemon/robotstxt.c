/* robotstxt.c - [politeness] obey_robots (worker side): each host's robots.txt is fetched once through
 * the same engine (an internal fetch at the head of the host's queue, with the host's connections and
 * limits), parsed (robots.c) for the product token of user_agent, and kept in a per-worker cache by
 * scheme://host:port, bounded in bytes, for robots_cache_s. The host's other fetches wait until it is
 * known; then each is checked before it is sent, and Crawl-delay raises the host's spacing.
 * RFC 9309: 2xx -> the rules; 4xx -> allow all; 5xx, a network error or a timeout -> disallow all
 * (kept for a shorter time); redirects followed (at most 5) while the new host belongs to this worker. */
#include "daemon/fetchd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/result.h"
#include "daemon/robots.h"

#define ROBOTSTXT_ERROR_TTL_S 300 /* an unreachable robots.txt is asked for again after this */
#define ROBOTSTXT_MAX_REDIRECTS 5

struct robots_cached {
	struct robots *rules;
	int64_t expires_ns;
	size_t bytes;
	size_t *total;           /* the worker's robots_bytes: kept exact as entries come and go */
	char why[160];           /* for disallow-all after an error: what happened */
};

static void robotstxt_free_entry(void *v)
{
	struct robots_cached *e = v;
	*e->total -= e->bytes;
	robots_free(e->rules);
	free(e);
}

/* The product token of user_agent: "fetchd/0.1.0 (+https://x)" -> "fetchd". */
static void robotstxt_token(const char *ua, char *out, size_t cap)
{
	size_t n = 0;
	while (ua[n] && ua[n] != '/' && ua[n] != ' ' && n + 1 < cap)
		n++;
	memcpy(out, ua, n);
	out[n] = 0;
}

/* Whether user_agent yields a product token robots.txt groups can be matched with. */
bool robotstxt_ua_ok(const char *user_agent)
{
	char token[sizeof(((struct worker *)0)->robots_token)];
	robotstxt_token(user_agent, token, sizeof(token));
	return robots_token_valid(token);
}

/* After a reload: the token follows the new user_agent (checked with robotstxt_ua_ok first). Rules
 * already cached were matched with the old one and stay until they expire. */
void robotstxt_reconf(struct worker *w)
{
	if (w->robots)
		robotstxt_token(w->conf.user_agent, w->robots_token, sizeof(w->robots_token));
}

int robotstxt_init(struct worker *w, char *err, size_t errlen)
{
	list_init(&w->robots_fetches);
	if (strcmp(w->conf.obey_robots, "yes") != 0)
		return 0;
	robotstxt_token(w->conf.user_agent, w->robots_token, sizeof(w->robots_token));
	if (!robots_token_valid(w->robots_token)) {
		snprintf(err, errlen, "[politeness] obey_robots: user_agent '%s' has no product token to match "
			 "robots.txt groups with", w->conf.user_agent);
		return -1;
	}
	w->robots = lrumap_new(1000000, robotstxt_free_entry);
	if (!w->robots) {
		snprintf(err, errlen, "out of memory for the robots.txt cache");
		return -1;
	}
	return 0;
}

void robotstxt_fini(struct worker *w)
{
	struct link *l;
	while ((l = list_pop(&w->robots_fetches)))
		fetch_free(list_entry(l, struct fetch, wlink));
	lrumap_free(w->robots);
	w->robots = NULL;
}

/* "scheme://host[:port]": what the rules are kept under. */
static void robotstxt_key(enum url_scheme scheme, const char *host_header, char *key, size_t cap)
{
	snprintf(key, cap, "%s://%s", scheme == URL_HTTPS ? "https" : "http", host_header);
}

static struct fetch *robotstxt_new_fetch(struct worker *w, struct host *h)
{
	char url[URL_HOST_MAX + 32];
	int n = snprintf(url, sizeof(url), "%s://%s/robots.txt", h->scheme == URL_HTTPS ? "https" : "http",
			 h->host_header);
	struct url u;
	const char *reason;
	if (n < 0 || (size_t)n >= sizeof(url) || url_parse(url, (size_t)n, 1, &u, &reason) < 0)
		return NULL;
	struct fetch *f = calloc(1, sizeof(*f) + (size_t)n + 1);
	if (!f)
		return NULL;
	memcpy(f->url, url, (size_t)n);
	f->url_len = (uint32_t)n;
	f->target_off = (uint32_t)u.target_off, f->target_len = (uint32_t)u.target_len;
	f->internal = true;
	f->opts.method = OPTS_GET;
	f->opts.follow = true;
	f->opts.decode = true;
	f->opts.max_redirects = ROBOTSTXT_MAX_REDIRECTS;
	f->opts.timeout_ms = w->conf.timeout_ms;
	f->opts.connect_timeout_ms = w->conf.connect_timeout_ms;
	f->opts.header_timeout_ms = w->conf.header_timeout_ms;
	f->opts.idle_timeout_ms = w->conf.idle_timeout_ms;
	f->opts.max_body_bytes = w->conf.max_body_bytes; /* bytes past ROBOTS_MAX_BYTES are dropped, not an error */
	wait_node_init(&f->wait, WAIT_FETCH);
	list_init(&f->queue_link);
	list_add_tail(&w->robots_fetches, &f->wlink);
	return f;
}

/* Start fetching h's robots.txt: an internal fetch at the head of its queue. */
static void robotstxt_start(struct worker *w, struct host *h)
{
	struct fetch *f = robotstxt_new_fetch(w, h);
	if (!f) {
		h->robots_failed = true; /* cannot even try: the host's fetches fail as "robots" */
		return;
	}
	f->host = h;
	f->t_admit_ns = w->now_ns;
	list_add_head(&h->queue, &f->queue_link);
	h->queued++;
	h->robots_fetching = true;
	w->stats.robots_fetches++;
}

void robotstxt_body(struct fetch *f, const uint8_t *p, size_t n)
{
	if (f->body.len >= ROBOTS_MAX_BYTES)
		return;
	if (n > ROBOTS_MAX_BYTES - f->body.len)
		n = ROBOTS_MAX_BYTES - f->body.len;
	buf_append(&f->body, p, n); /* out of memory: the rules are read from what fitted */
}

/* Keep the entry for key, making room within [politeness] robots_cache_bytes. */
static void robotstxt_store(struct worker *w, const char *key, struct robots *rules, int64_t ttl_s,
			    const char *why)
{
	struct robots_cached *e = calloc(1, sizeof(*e));
	if (!e) {
		robots_free(rules);
		return;
	}
	e->rules = rules;
	e->expires_ns = w->now_ns + ttl_s * 1000000000;
	e->bytes = sizeof(*e) + robots_memory_bytes(rules) + strlen(key);
	e->total = &w->robots_bytes;
	snprintf(e->why, sizeof(e->why), "%s", why);
	w->robots_bytes += e->bytes;
	lrumap_put(w->robots, key, e);
	while (w->robots_bytes > w->conf.robots_cache_bytes && lrumap_size(w->robots) > 1)
		lrumap_evict_oldest(w->robots);
}

/* The robots.txt fetch f ended with r: rules for its host, and the host's fetches go on. */
void robotstxt_done(struct worker *w, struct fetch *f, const struct result *r)
{
	char key[LRUMAP_KEY_MAX], why[160] = "";
	struct url u;
	const char *reason;
	struct robots *rules;
	int64_t ttl_s = w->conf.robots_cache_s;
	if (!r->err_class && r->status >= 200 && r->status < 300) {
		rules = robots_parse((const char *)f->body.p, f->body.len, w->robots_token);
	} else if (!r->err_class && r->status >= 400 && r->status < 500) {
		rules = robots_allow_all(); /* "unavailable": no rules */
	} else if (r->err_class && !strcmp(r->err_class, "redirects")) {
		rules = robots_allow_all(); /* RFC 9309 2.3.1.2: too many redirects is "unavailable" */
	} else {
		rules = robots_disallow_all(); /* "unreachable": assume nothing may be fetched */
		if (r->err_class)
			snprintf(why, sizeof(why), "robots.txt unreachable (%s: %.100s)", r->err_class, r->err_msg);
		else
			snprintf(why, sizeof(why), "robots.txt unreachable (status %d)", r->status);
		ttl_s = ROBOTSTXT_ERROR_TTL_S < ttl_s ? ROBOTSTXT_ERROR_TTL_S : ttl_s;
	}
	/* the host the rules are for: the robots.txt URL first asked for (redirects set cur, not url) */
	if (url_parse(f->url, f->url_len, 1, &u, &reason) < 0 || !rules) {
		robots_free(rules);
		return;
	}
	char hh[URL_HOST_MAX + 8];
	url_host_header(&u, hh, sizeof(hh));
	robotstxt_key(u.scheme, hh, key, sizeof(key));
	struct host *h = sched_host_find(w, &u);
	if (h)
		h->robots_fetching = false;
	log_debug("robots.txt for %s: %s", key, why[0] ? why : "rules kept");
	robotstxt_store(w, key, rules, ttl_s, why);
	if (h)
		sched_host_changed(w, h);
}

int robotstxt_check(struct worker *w, struct host *h, const struct fetch *f, int64_t *delay_ns, char *why,
		    size_t whylen)
{
	char key[LRUMAP_KEY_MAX];
	*delay_ns = 0;
	if (!w->robots || f->internal)
		return ROBOTS_GO;
	if (h->robots_failed) {
		snprintf(why, whylen, "robots.txt could not be fetched (out of memory)");
		return ROBOTS_DENY;
	}
	if (h->robots_fetching)
		return ROBOTS_WAIT;
	robotstxt_key(h->scheme, h->host_header, key, sizeof(key));
	struct robots_cached *e = lrumap_get(w->robots, key);
	if (!e || e->expires_ns <= w->now_ns) {
		robotstxt_start(w, h);
		return h->robots_failed ? ROBOTS_DENY : ROBOTS_WAIT;
	}
	int64_t cd = robots_crawl_delay_ms(e->rules);
	if (cd > 0)
		*delay_ns = cd * 1000000;
	if (robots_allowed(e->rules, f->target_len ? fetch_url(f) + f->target_off : "/", f->target_len ? f->target_len : 1))
		return ROBOTS_GO;
	snprintf(why, whylen, "%s", e->why[0] ? e->why : "disallowed by robots.txt");
	return ROBOTS_DENY;
}

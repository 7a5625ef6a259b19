/* conf.c - the fetchd configuration loader: one table describes every key (section, name, type, place
 * in struct conf, bounds, default); defaults, setting, formatting and file loading all walk it. The
 * file is read with inih through our own line reader, which counts lines, refuses lines inih would
 * silently split, disables inih's indented-continuation lines and checks section headers. */
#include "conf/conf.h"
#include "conf/cidr.h"
#include "conf/redisurl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/un.h>

#include <ini.h>

#define KIB (1ULL << 10)
#define MIB (1ULL << 20)
#define GIB (1ULL << 30)
#define TIB (1ULL << 40)

#define SUN_PATH_BYTES sizeof(((struct sockaddr_un *)0)->sun_path)
#define VALUE_ECHO_MAX 64 /* longest stretch of a bad value quoted back in a message */

enum conf_type {
	CONF_T_U32,   /* plain decimal */
	CONF_T_MS,    /* plain decimal milliseconds */
	CONF_T_SIZE,  /* decimal bytes with optional K/M/G/T[iB] suffix; stored in 4 or 8 bytes */
	CONF_T_STR,   /* bounded string; min/max are lengths */
	CONF_T_LEVEL, /* log level by name */
};

typedef int (*conf_check_fn)(const char *value, char *bad, size_t badlen);

struct conf_key {
	const char *section;
	const char *name;
	enum conf_type type;
	size_t off;
	size_t width;         /* sizeof the field */
	uint64_t min, max;    /* value bounds, or length bounds for strings */
	uint64_t def;         /* default for numbers and the log level */
	const char *def_str;  /* default for strings */
	conf_check_fn check;  /* extra syntax check for strings, or NULL */
	const char *expect;   /* what check wants, for the error message */
};

static int check_no_ctl(const char *value, char *bad, size_t badlen);
static int check_dns_servers(const char *value, char *bad, size_t badlen);
static int check_family(const char *value, char *bad, size_t badlen);
static int check_tls_version(const char *value, char *bad, size_t badlen);
static int check_yes_no(const char *value, char *bad, size_t badlen);
static int check_addresses(const char *value, char *bad, size_t badlen);
static int check_ids(const char *value, char *bad, size_t badlen);
static int check_backend(const char *value, char *bad, size_t badlen);
static int check_redis_url(const char *value, char *bad, size_t badlen);
static int check_qname(const char *value, char *bad, size_t badlen);

#define QNAME_EXPECT "printable characters, no spaces"

#define ADDRESSES_EXPECT \
	"comma-separated IPv4 or IPv6 addresses, each optionally /prefix, at most 64 entries"

#define IDS_EXPECT "comma-separated decimal ids 0..4294967294, at most 64 entries"

#define FIELD(f) offsetof(struct conf, f), sizeof(((struct conf *)0)->f)
#define NUM(sec, name, type, f, lo, hi, def) { sec, name, type, FIELD(f), lo, hi, def, NULL, NULL, NULL }
#define STR(sec, name, f, lo, hi, def, check, expect) \
	{ sec, name, CONF_T_STR, FIELD(f), lo, hi, 0, def, check, expect }

static const struct conf_key conf_keys[] = {
	{ "daemon", "log_level", CONF_T_LEVEL, FIELD(log_level), CONF_LOG_ERROR, CONF_LOG_DEBUG,
	  CONF_LOG_INFO, NULL, NULL, NULL },
	NUM("daemon", "workers", CONF_T_U32, workers, 0, 64, 0),
	NUM("daemon", "drain_timeout_ms", CONF_T_MS, drain_timeout_ms, 0, 3600000, 10000),

	STR("control", "socket", socket_path, 1, SUN_PATH_BYTES - 1, "/run/fetchd.sock", NULL, NULL),
	NUM("control", "max_clients", CONF_T_U32, max_clients, 1, 4096, 64),
	NUM("control", "client_window", CONF_T_U32, client_window, 0, 1000000, 0),
	NUM("control", "client_buffer_bytes", CONF_T_SIZE, client_buffer_bytes, 64 * KIB, GIB, 4 * MIB),
	NUM("control", "max_url_bytes", CONF_T_SIZE, max_url_bytes, 256, 65536, 8192),
	STR("control", "allow_uids", allow_uids, 0, CONF_IDS_MAX - 1, "", check_ids, IDS_EXPECT),
	STR("control", "allow_gids", allow_gids, 0, CONF_IDS_MAX - 1, "", check_ids, IDS_EXPECT),

	NUM("fetch", "max_inflight", CONF_T_U32, max_inflight, 1, 100000, 1024),
	NUM("fetch", "per_host_connections", CONF_T_U32, per_host_connections, 1, 10000, 8),
	NUM("fetch", "connect_timeout_ms", CONF_T_MS, connect_timeout_ms, 1, 3600000, 10000),
	NUM("fetch", "header_timeout_ms", CONF_T_MS, header_timeout_ms, 1, 3600000, 30000),
	NUM("fetch", "idle_timeout_ms", CONF_T_MS, idle_timeout_ms, 1, 3600000, 30000),
	NUM("fetch", "timeout_ms", CONF_T_MS, timeout_ms, 1, 86400000, 120000),
	NUM("fetch", "keepalive_idle_ms", CONF_T_MS, keepalive_idle_ms, 0, 3600000, 30000),
	NUM("fetch", "max_header_bytes", CONF_T_SIZE, max_header_bytes, KIB, 16 * MIB, 64 * KIB),
	NUM("fetch", "max_body_bytes", CONF_T_SIZE, max_body_bytes, 0, TIB, GIB),
	STR("fetch", "user_agent", user_agent, 1, CONF_UA_MAX - 1, "fetchd/" FETCHD_VERSION, check_no_ctl,
	    "no control characters"),
	NUM("fetch", "max_redirects", CONF_T_U32, max_redirects, 0, 100, 10),
	STR("fetch", "follow_redirects", follow_redirects, 2, 3, "yes", check_yes_no, "yes or no"),
	STR("fetch", "decode", decode, 2, 3, "yes", check_yes_no, "yes or no"),

	NUM("retry", "times", CONF_T_U32, retry_times, 0, 20, 2),
	NUM("retry", "base_ms", CONF_T_MS, retry_base_ms, 1, 3600000, 1000),
	NUM("retry", "max_ms", CONF_T_MS, retry_max_ms, 1, 86400000, 30000),

	NUM("politeness", "delay_ms", CONF_T_MS, delay_ms, 0, 3600000, 0),
	STR("politeness", "random_delay", random_delay, 2, 3, "no", check_yes_no, "yes or no"),
	NUM("politeness", "requests_per_s", CONF_T_U32, requests_per_s, 0, 100000, 0),
	STR("politeness", "obey_robots", obey_robots, 2, 3, "no", check_yes_no, "yes or no"),
	NUM("politeness", "robots_cache_s", CONF_T_U32, robots_cache_s, 1, 604800, 86400),
	NUM("politeness", "robots_cache_bytes", CONF_T_SIZE, robots_cache_bytes, 64 * KIB, GIB, 16 * MIB),

	STR("dns", "servers", dns_servers, 0, CONF_SERVERS_MAX - 1, "", check_dns_servers,
	    "comma-separated a.b.c.d[:port] or [ipv6][:port]"),
	NUM("dns", "timeout_ms", CONF_T_MS, dns_timeout_ms, 10, 60000, 5000),
	NUM("dns", "tries", CONF_T_U32, dns_tries, 1, 10, 3),
	NUM("dns", "cache_size", CONF_T_U32, dns_cache_size, 0, 10000000, 10000),
	NUM("dns", "min_ttl_s", CONF_T_U32, dns_min_ttl_s, 0, 86400, 30),
	NUM("dns", "max_ttl_s", CONF_T_U32, dns_max_ttl_s, 1, 604800, 3600),
	NUM("dns", "negative_ttl_s", CONF_T_U32, dns_negative_ttl_s, 0, 86400, 60),
	STR("dns", "family", dns_family, 3, 4, "any", check_family, "any, ipv4 or ipv6"),
	STR("dns", "hosts_file", dns_hosts_file, 0, CONF_PATH_MAX - 1, "/etc/hosts", check_no_ctl,
	    "a path without control characters"),

	STR("security", "allow_addresses", allow_addresses, 0, CONF_ADDRS_MAX - 1, "", check_addresses,
	    ADDRESSES_EXPECT),
	STR("security", "deny_addresses", deny_addresses, 0, CONF_ADDRS_MAX - 1, "", check_addresses,
	    ADDRESSES_EXPECT),

	STR("jobs", "dir", jobs_dir, 0, CONF_PATH_MAX - 1, "/var/lib/fetchd/jobs", check_no_ctl,
	    "a path without control characters"),
	NUM("jobs", "max_jobs", CONF_T_U32, max_jobs, 0, 1024, 16),
	NUM("jobs", "max_bytes", CONF_T_SIZE, job_max_bytes, 64 * KIB, 64 * GIB, 256 * MIB),

	STR("queue", "backend", queue_backend, 4, 5, "none", check_backend, "none or redis"),
	STR("queue", "url", queue_url, 8, CONF_PATH_MAX - 1, "redis://127.0.0.1:6379/0", check_redis_url,
	    "redis://[[user]:password@]host[:port][/db]"),
	STR("queue", "stream", queue_stream, 1, CONF_QNAME_MAX - 1, "fetchd:urls", check_qname, QNAME_EXPECT),
	STR("queue", "results_stream", queue_results, 1, CONF_QNAME_MAX - 1, "fetchd:results", check_qname,
	    QNAME_EXPECT),
	STR("queue", "dead_stream", queue_dead, 1, CONF_QNAME_MAX - 1, "fetchd:dead", check_qname, QNAME_EXPECT),
	STR("queue", "group", queue_group, 1, CONF_QNAME_MAX - 1, "fetchd", check_qname, QNAME_EXPECT),
	STR("queue", "consumer", queue_consumer, 0, CONF_QNAME_MAX - 1, "", check_qname, QNAME_EXPECT),
	NUM("queue", "batch", CONF_T_U32, queue_batch, 1, 10000, 100),
	NUM("queue", "max_pending", CONF_T_U32, queue_max_pending, 0, 1000000, 0),
	NUM("queue", "claim_idle_ms", CONF_T_MS, queue_claim_idle_ms, 100, 86400000, 60000),
	NUM("queue", "max_deliveries", CONF_T_U32, queue_max_deliveries, 1, 1000, 5),
	NUM("queue", "results_maxlen", CONF_T_SIZE, queue_results_maxlen, 1000, 1000000000, 1000000),
	NUM("queue", "timeout_ms", CONF_T_MS, queue_timeout_ms, 100, 600000, 5000),

	STR("tls", "ca_file", tls_ca_file, 0, CONF_PATH_MAX - 1, "", check_no_ctl, "a path"),
	STR("tls", "ca_path", tls_ca_path, 0, CONF_PATH_MAX - 1, "", check_no_ctl, "a path"),
	STR("tls", "min_version", tls_min_version, 3, 3, "1.2", check_tls_version, "1.2 or 1.3"),
	STR("tls", "verify", tls_verify, 2, 3, "yes", check_yes_no, "yes or no"),
	NUM("tls", "session_cache_size", CONF_T_U32, tls_session_cache_size, 0, 1000000, 10000),
	NUM("tls", "max_handshakes", CONF_T_U32, tls_max_handshakes, 1, 100000, 64),
};

#define CONF_NKEYS (sizeof conf_keys / sizeof conf_keys[0])

static const char *const conf_level_names[] = {
	[CONF_LOG_ERROR] = "error", [CONF_LOG_WARN] = "warn", [CONF_LOG_INFO] = "info",
	[CONF_LOG_DEBUG] = "debug",
};

static const struct {
	char letter;
	unsigned shift;
} conf_suffixes[] = { { 'k', 10 }, { 'm', 20 }, { 'g', 30 }, { 't', 40 } };

__attribute__((format(printf, 3, 4))) static int conf_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* ---- the table ---- */

static bool conf_section_known(const char *section)
{
	for (size_t i = 0; i < CONF_NKEYS; i++)
		if (strcmp(conf_keys[i].section, section) == 0)
			return true;
	return false;
}

static const struct conf_key *conf_find(const char *section, const char *name)
{
	for (size_t i = 0; i < CONF_NKEYS; i++)
		if (strcmp(conf_keys[i].section, section) == 0 && strcmp(conf_keys[i].name, name) == 0)
			return &conf_keys[i];
	return NULL;
}

const char *conf_key(size_t i, const char **section)
{
	if (i >= CONF_NKEYS)
		return NULL;
	if (section)
		*section = conf_keys[i].section;
	return conf_keys[i].name;
}

/* ---- storing and fetching one field ---- */

static void conf_store_uint(struct conf *c, const struct conf_key *k, uint64_t v)
{
	char *p = (char *)c + k->off;

	if (k->type == CONF_T_LEVEL) {
		enum conf_log_level l = (enum conf_log_level)v;
		memcpy(p, &l, sizeof l);
	} else if (k->width == sizeof(uint32_t)) {
		uint32_t v32 = (uint32_t)v;
		memcpy(p, &v32, sizeof v32);
	} else {
		memcpy(p, &v, sizeof v);
	}
}

static uint64_t conf_fetch_uint(const struct conf *c, const struct conf_key *k)
{
	const char *p = (const char *)c + k->off;

	if (k->type == CONF_T_LEVEL) {
		enum conf_log_level l;
		memcpy(&l, p, sizeof l);
		return (uint64_t)l;
	}
	if (k->width == sizeof(uint32_t)) {
		uint32_t v32;
		memcpy(&v32, p, sizeof v32);
		return v32;
	}
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

static void conf_store_str(struct conf *c, const struct conf_key *k, const char *s)
{
	char *p = (char *)c + k->off;

	memset(p, 0, k->width); /* whole buffer, so equal settings compare equal byte for byte */
	memcpy(p, s, strlen(s));
}

void conf_defaults(struct conf *c)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		if (conf_keys[i].type == CONF_T_STR)
			conf_store_str(c, &conf_keys[i], conf_keys[i].def_str);
		else
			conf_store_uint(c, &conf_keys[i], conf_keys[i].def);
	}
}

uint32_t conf_client_window(const struct conf *c)
{
	uint64_t twice = 2 * (uint64_t)c->max_inflight;

	if (c->client_window)
		return c->client_window;
	return twice < 4096 ? 4096 : twice > UINT32_MAX ? UINT32_MAX : (uint32_t)twice;
}

/* ---- parsing values ---- */

/* Leading decimal digits of s into *v; *end after them. Returns -1 when there are none, -2 when they
 * do not fit in 64 bits. */
static int conf_parse_digits(const char *s, uint64_t *v, const char **end)
{
	uint64_t n = 0;
	bool over = false;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (n > (UINT64_MAX - d) / 10)
			over = true;
		else
			n = n * 10 + d;
	}
	*v = n;
	*end = p;
	return p == s ? -1 : over ? -2 : 0;
}

/* A K/M/G/T suffix with optional "iB", any case: its shift, or -1 when s is not one. */
static int conf_suffix_shift(const char *s)
{
	for (size_t i = 0; i < sizeof conf_suffixes / sizeof conf_suffixes[0]; i++) {
		if (*s != conf_suffixes[i].letter && *s != conf_suffixes[i].letter - 'a' + 'A')
			continue;
		if (s[1] == '\0' || strcasecmp(s + 1, "ib") == 0)
			return (int)conf_suffixes[i].shift;
		return -1;
	}
	return -1;
}

/* Returns 0 with *v set, -1 for a malformed number, -2 for one too large for 64 bits. */
static int conf_parse_number(const struct conf_key *k, const char *value, uint64_t *v)
{
	const char *end;
	int r = conf_parse_digits(value, v, &end);
	int shift = 0;

	if (r == -1)
		return -1;
	if (*end != '\0') {
		if (k->type != CONF_T_SIZE || (shift = conf_suffix_shift(end)) < 0)
			return -1;
	}
	if (r == -2 || *v > (UINT64_MAX >> shift))
		return -2;
	*v <<= shift;
	return 0;
}

static int conf_set_number(struct conf *c, const struct conf_key *k, const char *value, char *err,
			   size_t errlen)
{
	uint64_t v;
	int r = conf_parse_number(k, value, &v);

	if (r == -1)
		return conf_err(err, errlen, "invalid value '%.*s' for %s in [%s] (expected %s)",
				VALUE_ECHO_MAX, value, k->name, k->section,
				k->type == CONF_T_SIZE ? "decimal bytes, optionally with a K, M, G or T suffix"
				: k->type == CONF_T_MS ? "decimal milliseconds"
							: "a decimal number");
	if (r == -2 || v < k->min || v > k->max)
		return conf_err(err, errlen, "value %.*s out of range [%" PRIu64 ", %" PRIu64 "] for %s in [%s]",
				VALUE_ECHO_MAX, value, k->min, k->max, k->name, k->section);
	conf_store_uint(c, k, v);
	return 0;
}

static int conf_set_level(struct conf *c, const struct conf_key *k, const char *value, char *err,
			  size_t errlen)
{
	for (size_t i = 0; i < sizeof conf_level_names / sizeof conf_level_names[0]; i++) {
		if (strcasecmp(value, conf_level_names[i]) == 0) {
			conf_store_uint(c, k, i);
			return 0;
		}
	}
	return conf_err(err, errlen, "invalid %s '%.*s' in [%s] (expected error, warn, info or debug)",
			k->name, VALUE_ECHO_MAX, value, k->section);
}

static int conf_set_str(struct conf *c, const struct conf_key *k, const char *value, char *err,
			size_t errlen)
{
	size_t len = strlen(value);
	char bad[VALUE_ECHO_MAX + 1];

	if (len < k->min)
		return conf_err(err, errlen, "empty value for %s in [%s]", k->name, k->section);
	if (len > k->max)
		return conf_err(err, errlen, "value for %s in [%s] too long (%zu bytes, at most %" PRIu64 ")",
				k->name, k->section, len, k->max);
	if (k->check && k->check(value, bad, sizeof bad) < 0)
		return conf_err(err, errlen, "invalid %s '%s' in [%s] (expected %s)", k->name, bad,
				k->section, k->expect);
	conf_store_str(c, k, value);
	return 0;
}

int conf_set(struct conf *c, const char *section, const char *key, const char *value, char *err,
	     size_t errlen)
{
	const struct conf_key *k;

	if (section[0] == '\0')
		return conf_err(err, errlen, "key '%s' outside any section", key);
	if (!conf_section_known(section))
		return conf_err(err, errlen, "unknown section [%s]", section);
	k = conf_find(section, key);
	if (!k)
		return conf_err(err, errlen, "unknown key '%s' in [%s]", key, section);
	switch (k->type) {
	case CONF_T_STR:
		return conf_set_str(c, k, value, err, errlen);
	case CONF_T_LEVEL:
		return conf_set_level(c, k, value, err, errlen);
	case CONF_T_U32:
	case CONF_T_MS:
	case CONF_T_SIZE:
		break;
	}
	return conf_set_number(c, k, value, err, errlen);
}

int conf_get(const struct conf *c, const char *section, const char *key, char *buf, size_t buflen)
{
	const struct conf_key *k = conf_find(section, key);
	int n;

	if (!k)
		return -1;
	if (k->type == CONF_T_STR)
		n = snprintf(buf, buflen, "%s", (const char *)c + k->off);
	else if (k->type == CONF_T_LEVEL && conf_fetch_uint(c, k) <= k->max)
		n = snprintf(buf, buflen, "%s", conf_level_names[conf_fetch_uint(c, k)]);
	else if (k->type == CONF_T_LEVEL)
		return -1;
	else
		n = snprintf(buf, buflen, "%" PRIu64, conf_fetch_uint(c, k));
	return n < 0 || (size_t)n >= buflen ? -1 : 0;
}

/* ---- reload ---- */

/* Keys a running fetchd cannot change: they size threads, rings and tables, set up the resolver or the
 * TLS configuration, or name the socket. */
static const char *const conf_restart_keys[] = {
	"daemon.workers", "control.socket", "control.max_clients", "fetch.max_inflight",
	"politeness.obey_robots", "dns.servers", "dns.timeout_ms", "dns.tries", "dns.cache_size",
	"dns.family", "dns.hosts_file", "jobs.dir", "jobs.max_jobs", "tls.ca_file", "tls.ca_path", "tls.min_version", "tls.verify",
	"tls.session_cache_size",
};

bool conf_key_needs_restart(const char *section, const char *key)
{
	if (!strcmp(section, "queue"))
		return true; /* the queue's threads and connections are set up once */
	size_t sl = strlen(section);
	for (size_t i = 0; i < sizeof conf_restart_keys / sizeof conf_restart_keys[0]; i++) {
		const char *r = conf_restart_keys[i];
		if (!strncmp(r, section, sl) && r[sl] == '.' && !strcmp(r + sl + 1, key))
			return true;
	}
	return false;
}

/* Append "section.key" to a comma-separated list in buf, or "..." once it is full. */
static void conf_list_add(char *buf, size_t buflen, const char *section, const char *key)
{
	size_t n = strlen(buf);
	if (n >= 3 && !strcmp(buf + n - 3, "..."))
		return;
	int w = snprintf(buf + n, buflen - n, "%s%s.%s", n ? ", " : "", section, key);
	if (w < 0 || (size_t)w >= buflen - n)
		snprintf(buf + n, buflen - n, "%s", buflen - n > 4 ? (n ? ",..." : "...") : "");
}

int conf_reload(const struct conf *running, const struct conf *loaded, struct conf *out, char *changed,
		size_t changed_len, char *pending, size_t pending_len)
{
	int nchanged = 0;
	*out = *loaded;
	changed[0] = pending[0] = '\0';
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		char was[CONF_ADDRS_MAX + 32], now[CONF_ADDRS_MAX + 32];
		if (conf_get(running, k->section, k->name, was, sizeof(was)) < 0 ||
		    conf_get(loaded, k->section, k->name, now, sizeof(now)) < 0 || !strcmp(was, now))
			continue;
		if (conf_key_needs_restart(k->section, k->name)) {
			memcpy((char *)out + k->off, (const char *)running + k->off, k->width);
			conf_list_add(pending, pending_len, k->section, k->name);
		} else {
			conf_list_add(changed, changed_len, k->section, k->name);
			nchanged++;
		}
	}
	return nchanged;
}

/* ---- string checks ---- */

static void conf_echo(char *bad, size_t badlen, const char *s, size_t n)
{
	if (n >= badlen)
		n = badlen - 1;
	memcpy(bad, s, n);
	bad[n] = '\0';
}

static int check_one_of(const char *value, const char *const *ok, char *bad, size_t badlen)
{
	for (; *ok; ok++)
		if (!strcmp(value, *ok))
			return 0;
	conf_echo(bad, badlen, value, strlen(value));
	return -1;
}

static int check_tls_version(const char *value, char *bad, size_t badlen)
{
	static const char *const ok[] = { "1.2", "1.3", NULL };
	return check_one_of(value, ok, bad, badlen);
}

static int check_yes_no(const char *value, char *bad, size_t badlen)
{
	static const char *const ok[] = { "yes", "no", NULL };
	return check_one_of(value, ok, bad, badlen);
}

static int check_backend(const char *value, char *bad, size_t badlen)
{
	static const char *const ok[] = { "none", "redis", NULL };
	return check_one_of(value, ok, bad, badlen);
}

/* The password stays out of the message: only why the URL does not parse. */
static int check_redis_url(const char *value, char *bad, size_t badlen)
{
	struct redisurl u;
	const char *why = "";
	if (redisurl_parse(value, &u, &why) == 0)
		return 0;
	snprintf(bad, badlen, "(%s)", why);
	return -1;
}

static int check_qname(const char *value, char *bad, size_t badlen)
{
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f) {
			conf_echo(bad, badlen, value, strlen(value));
			return -1;
		}
	}
	return 0;
}

static int check_family(const char *value, char *bad, size_t badlen)
{
	if (!strcmp(value, "any") || !strcmp(value, "ipv4") || !strcmp(value, "ipv6"))
		return 0;
	conf_echo(bad, badlen, value, strlen(value));
	return -1;
}

static int check_no_ctl(const char *value, char *bad, size_t badlen)
{
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			conf_echo(bad, badlen, value, strlen(value));
			return -1;
		}
	}
	return 0;
}

/* How many spaces and tabs s[0..n) starts with. */
static size_t conf_blanks(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

/* ":port" (1..65535) or nothing. */
static bool conf_port_ok(const char *s, size_t n)
{
	unsigned long port = 0;

	if (n == 0)
		return true;
	if (s[0] != ':' || n < 2 || n > 6)
		return false;
	for (size_t i = 1; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	return port >= 1 && port <= 65535;
}

static bool conf_addr_ok(int af, const char *s, size_t n)
{
	char host[INET6_ADDRSTRLEN];
	unsigned char bin[sizeof(struct in6_addr)];

	if (n == 0 || n >= sizeof host)
		return false;
	memcpy(host, s, n);
	host[n] = '\0';
	return inet_pton(af, host, bin) == 1;
}

/* One trimmed entry: a.b.c.d[:port] or [ipv6][:port]. */
static bool conf_server_ok(const char *s, size_t n)
{
	const char *close;
	const char *colon;

	if (n > 0 && s[0] == '[') {
		close = memchr(s, ']', n);
		if (!close)
			return false;
		return conf_addr_ok(AF_INET6, s + 1, (size_t)(close - s - 1)) &&
		       conf_port_ok(close + 1, n - (size_t)(close + 1 - s));
	}
	colon = memchr(s, ':', n);
	if (!colon)
		colon = s + n;
	return conf_addr_ok(AF_INET, s, (size_t)(colon - s)) && conf_port_ok(colon, n - (size_t)(colon - s));
}

typedef bool (*conf_entry_fn)(const char *s, size_t n, void *arg);

/* Call ok on each comma-separated entry of value, trimmed of blanks ("" has no entries). Returns 0, or
 * -1 with the first entry ok refuses copied into bad. */
static int conf_each_entry(const char *value, conf_entry_fn ok, void *arg, char *bad, size_t badlen)
{
	const char *p = value;

	if (*p == '\0')
		return 0;
	for (;;) {
		size_t n = strcspn(p, ",");
		const char *next = p + n;
		size_t blank = conf_blanks(p, n);
		p += blank;
		n -= blank;
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (!ok(p, n, arg)) {
			conf_echo(bad, badlen, p, n);
			return -1;
		}
		if (*next == '\0')
			return 0;
		p = next + 1;
	}
}

static bool conf_server_entry(const char *s, size_t n, void *arg)
{
	return conf_server_ok(s, n);
}

/* "" uses /etc/resolv.conf. */
static int check_dns_servers(const char *value, char *bad, size_t badlen)
{
	return conf_each_entry(value, conf_server_entry, NULL, bad, badlen);
}

/* The address policy's CIDR lists ("127.0.0.0/8, ::1/128"); the same parser the policy uses. */
static int check_addresses(const char *value, char *bad, size_t badlen)
{
	struct cidr list[CIDR_LIST_MAX];
	size_t n;
	const char *reason;

	return cidr_parse_list(value, list, CIDR_LIST_MAX, &n, bad, badlen, &reason);
}

struct conf_ids {
	uint32_t *ids;
	size_t max, n;
};

/* One trimmed id, 1..10 digits and at most 4294967294 ((uid_t)-1 is no id), added to the list. */
static bool conf_id_entry(const char *s, size_t n, void *arg)
{
	struct conf_ids *l = arg;
	const char *end;
	uint64_t v;

	if (l->n == l->max || n > 10 || conf_parse_digits(s, &v, &end) < 0 || end != s + n || v >= UINT32_MAX)
		return false;
	l->ids[l->n++] = (uint32_t)v;
	return true;
}

int conf_id_list(const char *s, uint32_t *ids, size_t max, size_t *n, char *bad, size_t badlen)
{
	struct conf_ids l = { ids, max, 0 };
	int rc = conf_each_entry(s, conf_id_entry, &l, bad, badlen);

	*n = l.n;
	return rc;
}

static int check_ids(const char *value, char *bad, size_t badlen)
{
	uint32_t ids[CONF_IDS_ENTRIES];
	size_t n;

	return conf_id_list(value, ids, CONF_IDS_ENTRIES, &n, bad, badlen);
}

/* ---- loading a file ---- */

struct conf_loader {
	struct conf conf;
	FILE *f;
	char *buf; /* getline's line */
	size_t cap;
	int lineno;
	int read_errno;
	int err_line; /* first error we found ourselves (0: none), and its message */
	char msg[CONF_ERR_MAX];
};

__attribute__((format(printf, 2, 3))) static void conf_fail(struct conf_loader *ld, const char *fmt, ...)
{
	va_list ap;

	if (ld->err_line)
		return; /* only the first error is reported */
	ld->err_line = ld->lineno;
	va_start(ap, fmt);
	vsnprintf(ld->msg, sizeof ld->msg, fmt, ap);
	va_end(ap);
}

/* A "[name]" header naming a section we do not know is an error on its own line, keys or not. */
static void conf_check_header(struct conf_loader *ld, char *line)
{
	char *close;

	if (line[0] != '[' || !(close = strchr(line, ']')))
		return; /* not a header, or a malformed one inih reports */
	*close = '\0';
	if (!conf_section_known(line + 1))
		conf_fail(ld, "unknown section [%s]", line + 1);
	*close = ']';
}

/* inih's reader: hand over one line at a time, counted like inih counts, without a byte order mark or
 * indentation (an indented line would otherwise continue the previous value), and never a line longer
 * than inih's buffer (it would split it into two lines). Refused lines go over as blank lines. */
static char *conf_read_line(char *str, int num, void *stream)
{
	struct conf_loader *ld = stream;
	ssize_t got = getline(&ld->buf, &ld->cap, ld->f);
	size_t n, skip;
	const char *line;

	if (got < 0) {
		if (ferror(ld->f))
			ld->read_errno = errno ? errno : EIO;
		return NULL;
	}
	ld->lineno++;
	n = (size_t)got;
	while (n && (ld->buf[n - 1] == '\n' || ld->buf[n - 1] == '\r'))
		n--;
	line = ld->buf;
	skip = ld->lineno == 1 && n >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0 ? 3 : 0; /* UTF-8 BOM */
	skip += conf_blanks(line + skip, n - skip);
	line += skip;
	n -= skip;
	str[0] = '\0';
	if (memchr(line, '\0', n))
		conf_fail(ld, "line contains a NUL byte");
	else if (n >= (size_t)num)
		conf_fail(ld, "line too long (%zu characters, at most %d)", n, num - 1);
	else {
		memcpy(str, line, n);
		str[n] = '\0';
		conf_check_header(ld, str);
	}
	return str;
}

static int conf_handle_key(void *user, const char *section, const char *name, const char *value)
{
	struct conf_loader *ld = user;
	char msg[CONF_ERR_MAX];

	if (conf_set(&ld->conf, section, name, value, msg, sizeof msg) == 0)
		return 1;
	conf_fail(ld, "%s", msg);
	return 0;
}

/* Parse the open file into ld->conf; 0, or -1 with the message in err. */
static int conf_parse_file(struct conf_loader *ld, const char *path, char *err, size_t errlen)
{
	int r = ini_parse_stream(conf_read_line, ld, conf_handle_key, ld);

	if (ld->read_errno)
		return conf_err(err, errlen, "%s: cannot read: %s", path, strerror(ld->read_errno));
	if (r > 0 && (ld->err_line == 0 || r < ld->err_line))
		return conf_err(err, errlen, "%s:%d: malformed line (expected key = value or [section])", path,
				r);
	if (ld->err_line)
		return conf_err(err, errlen, "%s:%d: %s", path, ld->err_line, ld->msg);
	if (r < 0)
		return conf_err(err, errlen, "%s: parser failed (%d)", path, r);
	return 0;
}

int conf_load_stream(struct conf *c, FILE *f, const char *name, char *err, size_t errlen)
{
	struct conf_loader ld = { .lineno = 0 };
	int rc;

	conf_defaults(c);
	ld.f = f;
	conf_defaults(&ld.conf);
	rc = conf_parse_file(&ld, name, err, errlen);
	if (rc == 0)
		*c = ld.conf; /* on any error c keeps the plain defaults */
	free(ld.buf);
	return rc;
}

int conf_load(struct conf *c, const char *path, char *err, size_t errlen)
{
	conf_defaults(c);
	FILE *f = fopen(path, "re");
	if (!f)
		return conf_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
	int rc = conf_load_stream(c, f, path, err, errlen);
	fclose(f);
	return rc;
}

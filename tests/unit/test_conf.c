/* test_conf.c - the configuration loader: documented defaults and bounds, every value type, the
 * example file (complete and equal to the defaults), and file errors reported as PATH:LINE: message. */
#include "conf/conf.h"
#include "tests/unit/test.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXAMPLE "conf/fetchd.conf"

/* The documentation in conf.h, written down independently of conf.c's table. */
static const struct expect {
	const char *section, *key, *def;
	bool numeric, size;
	uint64_t min, max;
} expects[] = {
	{ "daemon", "log_level", "info", false, false, 0, 0 },
	{ "daemon", "workers", "0", true, false, 0, 64 },
	{ "daemon", "drain_timeout_ms", "10000", true, false, 0, 3600000 },
	{ "control", "socket", "/run/fetchd.sock", false, false, 0, 0 },
	{ "control", "max_clients", "64", true, false, 1, 4096 },
	{ "control", "client_window", "0", true, false, 0, 1000000 },
	{ "control", "client_buffer_bytes", "4194304", true, true, 65536, 1073741824 },
	{ "control", "max_url_bytes", "8192", true, true, 256, 65536 },
	{ "control", "allow_uids", "", false, false, 0, 0 },
	{ "control", "allow_gids", "", false, false, 0, 0 },
	{ "fetch", "max_inflight", "1024", true, false, 1, 100000 },
	{ "fetch", "per_host_connections", "8", true, false, 1, 10000 },
	{ "fetch", "connect_timeout_ms", "10000", true, false, 1, 3600000 },
	{ "fetch", "header_timeout_ms", "30000", true, false, 1, 3600000 },
	{ "fetch", "idle_timeout_ms", "30000", true, false, 1, 3600000 },
	{ "fetch", "timeout_ms", "120000", true, false, 1, 86400000 },
	{ "fetch", "keepalive_idle_ms", "30000", true, false, 0, 3600000 },
	{ "fetch", "max_header_bytes", "65536", true, true, 1024, 16777216 },
	{ "fetch", "max_body_bytes", "1073741824", true, true, 0, 1099511627776ULL },
	{ "fetch", "user_agent", "fetchd/" FETCHD_VERSION, false, false, 0, 0 },
	{ "fetch", "max_redirects", "10", true, false, 0, 100 },
	{ "fetch", "follow_redirects", "yes", false, false, 0, 0 },
	{ "fetch", "decode", "yes", false, false, 0, 0 },
	{ "retry", "times", "2", true, false, 0, 20 },
	{ "retry", "base_ms", "1000", true, false, 1, 3600000 },
	{ "retry", "max_ms", "30000", true, false, 1, 86400000 },
	{ "politeness", "delay_ms", "0", true, false, 0, 3600000 },
	{ "politeness", "random_delay", "no", false, false, 0, 0 },
	{ "politeness", "requests_per_s", "0", true, false, 0, 100000 },
	{ "politeness", "obey_robots", "no", false, false, 0, 0 },
	{ "politeness", "robots_cache_s", "86400", true, false, 1, 604800 },
	{ "politeness", "robots_cache_bytes", "16777216", true, true, 65536, 1073741824 },
	{ "dns", "servers", "", false, false, 0, 0 },
	{ "dns", "timeout_ms", "5000", true, false, 10, 60000 },
	{ "dns", "tries", "3", true, false, 1, 10 },
	{ "dns", "cache_size", "10000", true, false, 0, 10000000 },
	{ "dns", "min_ttl_s", "30", true, false, 0, 86400 },
	{ "dns", "max_ttl_s", "3600", true, false, 1, 604800 },
	{ "dns", "negative_ttl_s", "60", true, false, 0, 86400 },
	{ "dns", "family", "any", false, false, 0, 0 },
	{ "dns", "hosts_file", "/etc/hosts", false, false, 0, 0 },
	{ "jobs", "dir", "/var/lib/fetchd/jobs", false, false, 0, 0 },
	{ "jobs", "max_jobs", "16", true, false, 0, 1024 },
	{ "jobs", "max_bytes", "268435456", true, true, 65536, 68719476736ULL },
	{ "tls", "ca_file", "", false, false, 0, 0 },
	{ "tls", "ca_path", "", false, false, 0, 0 },
	{ "tls", "min_version", "1.2", false, false, 0, 0 },
	{ "tls", "verify", "yes", false, false, 0, 0 },
	{ "tls", "session_cache_size", "10000", true, false, 0, 1000000 },
	{ "tls", "max_handshakes", "64", true, false, 1, 100000 },
	{ "queue", "backend", "none", false, false, 0, 0 },
	{ "queue", "url", "redis://127.0.0.1:6379/0", false, false, 0, 0 },
	{ "queue", "stream", "fetchd:urls", false, false, 0, 0 },
	{ "queue", "results_stream", "fetchd:results", false, false, 0, 0 },
	{ "queue", "dead_stream", "fetchd:dead", false, false, 0, 0 },
	{ "queue", "group", "fetchd", false, false, 0, 0 },
	{ "queue", "consumer", "", false, false, 0, 0 },
	{ "queue", "batch", "100", true, false, 1, 10000 },
	{ "queue", "max_pending", "0", true, false, 0, 1000000 },
	{ "queue", "claim_idle_ms", "60000", true, false, 100, 86400000 },
	{ "queue", "max_deliveries", "5", true, false, 1, 1000 },
	{ "queue", "results_maxlen", "1000000", true, true, 1000, 1000000000 },
	{ "queue", "timeout_ms", "5000", true, false, 100, 600000 },
	{ "security", "allow_addresses", "", false, false, 0, 0 },
	{ "security", "deny_addresses", "", false, false, 0, 0 },
};
#define NEXPECTS (sizeof expects / sizeof expects[0])

static char err[CONF_ERR_MAX];

static int set(struct conf *c, const char *section, const char *key, const char *value)
{
	err[0] = '\0';
	return conf_set(c, section, key, value, err, sizeof err);
}

static const char *get(const struct conf *c, const char *section, const char *key)
{
	static char buf[CONF_ADDRS_MAX];

	if (conf_get(c, section, key, buf, sizeof buf) < 0)
		return "<conf_get failed>";
	return buf;
}

static size_t nkeys(void)
{
	size_t n = 0;

	while (conf_key(n, NULL))
		n++;
	return n;
}

static void test_defaults(void)
{
	struct conf c;

	memset(&c, 0xa5, sizeof c);
	conf_defaults(&c);
	CHECK(c.log_level == CONF_LOG_INFO, "%d", c.log_level);
	CHECK(strcmp(c.socket_path, "/run/fetchd.sock") == 0, "%s", c.socket_path);
	CHECK(c.max_clients == 64, "%u", c.max_clients);
	CHECK(c.client_window == 0, "%u", c.client_window);
	CHECK(c.client_buffer_bytes == 4ULL << 20, "%" PRIu64, c.client_buffer_bytes);
	CHECK(c.max_url_bytes == 8192, "%u", c.max_url_bytes);
	CHECK(c.max_inflight == 1024, "%u", c.max_inflight);
	CHECK(c.per_host_connections == 8, "%u", c.per_host_connections);
	CHECK(c.connect_timeout_ms == 10000, "%u", c.connect_timeout_ms);
	CHECK(c.header_timeout_ms == 30000, "%u", c.header_timeout_ms);
	CHECK(c.idle_timeout_ms == 30000, "%u", c.idle_timeout_ms);
	CHECK(c.timeout_ms == 120000, "%u", c.timeout_ms);
	CHECK(c.keepalive_idle_ms == 30000, "%u", c.keepalive_idle_ms);
	CHECK(c.max_header_bytes == 64 << 10, "%" PRIu64, c.max_header_bytes);
	CHECK(c.max_body_bytes == 1ULL << 30, "%" PRIu64, c.max_body_bytes);
	CHECK(strcmp(c.user_agent, "fetchd/" FETCHD_VERSION) == 0, "%s", c.user_agent);
	CHECK(c.dns_servers[0] == '\0', "%s", c.dns_servers);
	CHECK(c.dns_timeout_ms == 5000, "%u", c.dns_timeout_ms);
	CHECK(c.dns_tries == 3, "%u", c.dns_tries);
	CHECK(c.allow_addresses[0] == '\0', "%s", c.allow_addresses);
	CHECK(c.deny_addresses[0] == '\0', "%s", c.deny_addresses);
	CHECK(conf_client_window(&c) == 4096, "%u", conf_client_window(&c));
	/* string tails are zeroed, so equal settings compare equal byte for byte */
	CHECK(c.socket_path[CONF_PATH_MAX - 1] == 0 && c.dns_servers[CONF_SERVERS_MAX - 1] == 0, "tails");
	CHECK(c.allow_addresses[CONF_ADDRS_MAX - 1] == 0 && c.deny_addresses[CONF_ADDRS_MAX - 1] == 0,
	      "address list tails");
}

/* conf.c's table holds exactly the documented keys, each with the documented default. */
static void test_table_matches_docs(void)
{
	struct conf c;
	const char *section;

	conf_defaults(&c);
	CHECK(nkeys() == NEXPECTS, "table has %zu keys, docs %zu", nkeys(), NEXPECTS);
	for (size_t i = 0; i < NEXPECTS; i++) {
		const struct expect *e = &expects[i];
		CHECK(strcmp(get(&c, e->section, e->key), e->def) == 0, "[%s] %s default %s, want %s",
		      e->section, e->key, get(&c, e->section, e->key), e->def);
	}
	for (size_t i = 0; conf_key(i, &section); i++) {
		bool found = false;
		for (size_t j = 0; j < NEXPECTS; j++)
			found |= strcmp(expects[j].section, section) == 0 &&
				 strcmp(expects[j].key, conf_key(i, NULL)) == 0;
		CHECK(found, "[%s] %s not documented in the test", section, conf_key(i, NULL));
	}
	CHECK(conf_key(nkeys(), &section) == NULL, "past the end");
	CHECK(conf_get(&c, "fetch", "nope", err, sizeof err) == -1, "unknown key in conf_get");
	CHECK(conf_get(&c, "control", "socket", err, 5) == -1, "short buffer in conf_get");
}

static void check_bound(const char *section, const char *key, uint64_t v, bool ok)
{
	struct conf c;
	char value[32];
	char before[CONF_ADDRS_MAX];

	conf_defaults(&c);
	snprintf(before, sizeof before, "%s", get(&c, section, key));
	snprintf(value, sizeof value, "%" PRIu64, v);
	int r = set(&c, section, key, value);
	if (ok) {
		CHECK(r == 0, "[%s] %s = %s refused: %s", section, key, value, err);
		CHECK(strcmp(get(&c, section, key), value) == 0, "[%s] %s = %s stored %s", section, key,
		      value, get(&c, section, key));
	} else {
		CHECK(r == -1 && strstr(err, "out of range"), "[%s] %s = %s accepted (%s)", section, key,
		      value, err);
		CHECK(strcmp(get(&c, section, key), before) == 0, "[%s] %s changed by a refused value",
		      section, key);
	}
}

static void test_bounds(void)
{
	for (size_t i = 0; i < NEXPECTS; i++) {
		const struct expect *e = &expects[i];
		if (!e->numeric)
			continue;
		check_bound(e->section, e->key, e->min, true);
		check_bound(e->section, e->key, e->max, true);
		if (e->min > 0)
			check_bound(e->section, e->key, e->min - 1, false);
		check_bound(e->section, e->key, e->max + 1, false);
	}
	struct conf c;
	conf_defaults(&c);
	CHECK(set(&c, "control", "max_clients", "4097") == -1 &&
		      strcmp(err, "value 4097 out of range [1, 4096] for max_clients in [control]") == 0,
	      "message: %s", err);
}

static void test_integers(void)
{
	static const char *const bad[] = { "12x", "", "-1", "+1", " 1", "1 ", "1 2", "0x10", "1.5", "1K",
					   "1e3", "１" };
	struct conf c;

	conf_defaults(&c);
	CHECK(set(&c, "fetch", "max_inflight", "77") == 0 && c.max_inflight == 77, "%s", err);
	CHECK(set(&c, "fetch", "max_inflight", "00042") == 0 && c.max_inflight == 42, "%s", err);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK(set(&c, "fetch", "max_inflight", bad[i]) == -1 && strstr(err, "invalid value"),
		      "'%s' accepted: %s", bad[i], err);
		CHECK(set(&c, "fetch", "connect_timeout_ms", bad[i]) == -1, "'%s' accepted as ms", bad[i]);
	}
	CHECK(c.max_inflight == 42, "refused values left %u", c.max_inflight);
	CHECK(set(&c, "fetch", "connect_timeout_ms", "5s") == -1 && strstr(err, "milliseconds"), "%s",
	      err);
	/* overflow of 32 and of 64 bits is out of range, not wrapped */
	CHECK(set(&c, "fetch", "max_inflight", "4294967297") == -1 && strstr(err, "out of range"), "%s",
	      err);
	CHECK(set(&c, "fetch", "max_inflight", "99999999999999999999") == -1 && strstr(err, "out of range"),
	      "%s", err);
	CHECK(set(&c, "fetch", "max_inflight", "18446744073709551617") == -1, "2^64+1 wrapped to 1");
	CHECK(c.max_inflight == 42, "overflow changed the value to %u", c.max_inflight);
	/* client window */
	CHECK(set(&c, "fetch", "max_inflight", "3000") == 0 && conf_client_window(&c) == 6000, "%u",
	      conf_client_window(&c));
	CHECK(set(&c, "control", "client_window", "10") == 0 && conf_client_window(&c) == 10, "%u",
	      conf_client_window(&c));
}

static void test_sizes(void)
{
	static const struct {
		const char *key, *value;
		uint64_t want; /* 0: refused */
	} cases[] = {
		{ "client_buffer_bytes", "4M", 4ULL << 20 },	  { "client_buffer_bytes", "4MiB", 4ULL << 20 },
		{ "client_buffer_bytes", "4mib", 4ULL << 20 },	  { "client_buffer_bytes", "4m", 4ULL << 20 },
		{ "client_buffer_bytes", "64K", 65536 },	  { "client_buffer_bytes", "64kIb", 65536 },
		{ "client_buffer_bytes", "1G", 1ULL << 30 },	  { "client_buffer_bytes", "1GiB", 1ULL << 30 },
		{ "client_buffer_bytes", "65536", 65536 },	  { "client_buffer_bytes", "63K", 0 },
		{ "client_buffer_bytes", "1025M", 0 },		  { "client_buffer_bytes", "4MB", 0 },
		{ "client_buffer_bytes", "4 M", 0 },		  { "client_buffer_bytes", "4Mi", 0 },
		{ "client_buffer_bytes", "M", 0 },		  { "client_buffer_bytes", "4MiBs", 0 },
		{ "client_buffer_bytes", "1.5M", 0 },		  { "client_buffer_bytes", "4KM", 0 },
		{ "client_buffer_bytes", "4P", 0 },		  { "client_buffer_bytes", "4B", 0 },
		{ "client_buffer_bytes", "-4M", 0 },		  { "client_buffer_bytes", "", 0 },
		{ "max_url_bytes", "64K", 65536 },		  { "max_url_bytes", "65537", 0 },
		{ "max_url_bytes", "1M", 0 },			  { "max_header_bytes", "1K", 1024 },
		{ "max_header_bytes", "1023", 0 },		  { "max_header_bytes", "16M", 16ULL << 20 },
		{ "max_header_bytes", "16385K", 0 },		  { "max_body_bytes", "1T", 1ULL << 40 },
		{ "max_body_bytes", "1tib", 1ULL << 40 },	  { "max_body_bytes", "1025G", 0 },
		{ "max_body_bytes", "16777216T", 0 },		  { "max_body_bytes", "17179869184G", 0 },
		{ "max_body_bytes", "99999999999999999999K", 0 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct conf c;
		char want[32];
		const char *section = strcmp(cases[i].key, "max_header_bytes") == 0 ||
					      strcmp(cases[i].key, "max_body_bytes") == 0
				      ? "fetch"
				      : "control";
		conf_defaults(&c);
		int r = set(&c, section, cases[i].key, cases[i].value);
		if (cases[i].want == 0) {
			CHECK(r == -1, "%s = '%s' accepted as %s", cases[i].key, cases[i].value,
			      get(&c, section, cases[i].key));
			continue;
		}
		snprintf(want, sizeof want, "%" PRIu64, cases[i].want);
		CHECK(r == 0 && strcmp(get(&c, section, cases[i].key), want) == 0, "%s = '%s' gave %s (%s)",
		      cases[i].key, cases[i].value, get(&c, section, cases[i].key), err);
	}
	struct conf c;
	conf_defaults(&c);
	CHECK(set(&c, "fetch", "max_body_bytes", "0") == 0 && c.max_body_bytes == 0, "%s", err);
	CHECK(set(&c, "control", "client_buffer_bytes", "2G") == -1 &&
		      strcmp(err, "value 2G out of range [65536, 1073741824] for client_buffer_bytes in [control]") ==
			      0,
	      "%s", err);
	CHECK(set(&c, "control", "client_buffer_bytes", "4x") == -1 && strstr(err, "suffix"), "%s", err);
}

static void test_strings(void)
{
	struct conf c;
	char s[600];

	conf_defaults(&c);
	memset(s, 'a', sizeof s);
	s[CONF_UA_MAX - 1] = '\0';
	CHECK(set(&c, "fetch", "user_agent", s) == 0 && strlen(c.user_agent) == CONF_UA_MAX - 1, "%s", err);
	s[CONF_UA_MAX - 1] = 'a';
	s[CONF_UA_MAX] = '\0';
	CHECK(set(&c, "fetch", "user_agent", s) == -1 && strstr(err, "too long"), "%s", err);
	CHECK(strlen(c.user_agent) == CONF_UA_MAX - 1, "a refused value changed user_agent");
	CHECK(set(&c, "fetch", "user_agent", "x/1.0 (+http://e.example/)") == 0 &&
		      strcmp(c.user_agent, "x/1.0 (+http://e.example/)") == 0,
	      "%s", err);
	CHECK(set(&c, "fetch", "user_agent", "") == -1 && strstr(err, "empty"), "%s", err);
	CHECK(set(&c, "fetch", "user_agent", "a\tb") == -1 && strstr(err, "control"), "%s", err);
	CHECK(set(&c, "fetch", "user_agent", "a\x7f") == -1, "DEL accepted");

	/* socket_path: bounded by sockaddr_un.sun_path (107 bytes), not by its 256-byte buffer */
	s[0] = '/';
	memset(s + 1, 'p', 106);
	s[107] = '\0';
	CHECK(set(&c, "control", "socket", s) == 0 && strcmp(c.socket_path, s) == 0, "%s", err);
	s[107] = 'p';
	s[108] = '\0';
	CHECK(set(&c, "control", "socket", s) == -1 && strstr(err, "too long"), "%s", err);
	CHECK(set(&c, "control", "socket", "") == -1, "empty socket path accepted");
	CHECK(set(&c, "control", "socket", "/tmp/f.sock") == 0 && strcmp(c.socket_path, "/tmp/f.sock") == 0,
	      "%s", err);
	/* a shorter value leaves no trace of the longer one after it */
	CHECK(c.socket_path[20] == '\0' && c.socket_path[106] == '\0', "tail not cleared");

	/* servers: 511 bytes of valid syntax fit, 512 do not */
	size_t n = 0;
	while (n + 9 <= CONF_SERVERS_MAX - 1) {
		memcpy(s + n, n ? ",1.2.3.4" : "1.2.3.4", n ? 8 : 7);
		n += n ? 8 : 7;
	}
	while (n < CONF_SERVERS_MAX - 1)
		s[n++] = ' ';
	s[n] = '\0';
	CHECK(set(&c, "dns", "servers", s) == 0, "511-byte servers: %s", err);
	s[n++] = ' ';
	s[n] = '\0';
	CHECK(set(&c, "dns", "servers", s) == -1 && strstr(err, "too long"), "512-byte servers: %s", err);
}

static void test_log_level(void)
{
	static const struct {
		const char *value;
		int want; /* -1: refused */
	} cases[] = {
		{ "error", CONF_LOG_ERROR }, { "warn", CONF_LOG_WARN },	 { "info", CONF_LOG_INFO },
		{ "debug", CONF_LOG_DEBUG }, { "DEBUG", CONF_LOG_DEBUG }, { "Warn", CONF_LOG_WARN },
		{ "verbose", -1 },	     { "", -1 },		 { "warning", -1 },
		{ "info ", -1 },	     { "2", -1 },		 { "err", -1 },
	};
	struct conf c;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		conf_defaults(&c);
		int r = set(&c, "daemon", "log_level", cases[i].value);
		if (cases[i].want < 0)
			CHECK(r == -1 && c.log_level == CONF_LOG_INFO && strstr(err, "expected error, warn"),
			      "'%s': %d %s", cases[i].value, r, err);
		else
			CHECK(r == 0 && (int)c.log_level == cases[i].want, "'%s' gave %d", cases[i].value,
			      c.log_level);
	}
	conf_defaults(&c);
	set(&c, "daemon", "log_level", "DeBuG");
	CHECK(strcmp(get(&c, "daemon", "log_level"), "debug") == 0, "canonical name %s",
	      get(&c, "daemon", "log_level"));
}

static void test_dns_servers(void)
{
	static const char *const good[] = {
		"",
		"127.0.0.1",
		"127.0.0.1:5353, [::1]:53",
		"[::1]",
		"1.1.1.1 ,8.8.8.8:53",
		"[2001:db8::1]:65535",
		"1.1.1.1:1,\t[::ffff:1.2.3.4]",
		"  9.9.9.9  ,  [fe80::1]  ",
	};
	static const char *const bad[] = {
		"1.2.3",	 "256.1.1.1",	  "1.2.3.4:",	  "1.2.3.4:0", "1.2.3.4:65536", "[::1",
		"::1",		 "1.1.1.1,,2.2.2.2", "1.1.1.1,",  ",1.1.1.1",  "dns.google",	"[1.2.3.4]",
		"1.2.3.4:53x",	 "[::1]x",	  "[::1]:",	  "[]",	       "1.2.3.4 5.6.7.8", "1.2.3.4:-53",
		"1.2.3.4:000053", "[::1]:99999",  "[gggg::1]",	  " ",
	};
	struct conf c;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		conf_defaults(&c);
		CHECK(set(&c, "dns", "servers", good[i]) == 0 && strcmp(c.dns_servers, good[i]) == 0,
		      "'%s' refused: %s", good[i], err);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		conf_defaults(&c);
		set(&c, "dns", "servers", "1.1.1.1");
		CHECK(set(&c, "dns", "servers", bad[i]) == -1 && strstr(err, "invalid servers") &&
			      strcmp(c.dns_servers, "1.1.1.1") == 0,
		      "'%s' accepted: %s", bad[i], err);
	}
	set(&c, "dns", "servers", "1.1.1.1, 300.1.1.1:53");
	CHECK(strstr(err, "'300.1.1.1:53'") != NULL, "message names the bad entry: %s", err);
}

static void test_names(void)
{
	struct conf c;

	conf_defaults(&c);
	CHECK(set(&c, "fetch", "bogus", "1") == -1 && strcmp(err, "unknown key 'bogus' in [fetch]") == 0,
	      "%s", err);
	CHECK(set(&c, "fecth", "max_inflight", "1") == -1 && strcmp(err, "unknown section [fecth]") == 0,
	      "%s", err);
	CHECK(set(&c, "", "max_inflight", "1") == -1 &&
		      strcmp(err, "key 'max_inflight' outside any section") == 0,
	      "%s", err);
	/* same key name in two sections are two keys */
	CHECK(set(&c, "dns", "timeout_ms", "10") == 0 && c.dns_timeout_ms == 10 && c.timeout_ms == 120000,
	      "%s", err);
	CHECK(set(&c, "fetch", "timeout_ms", "11") == 0 && c.timeout_ms == 11 && c.dns_timeout_ms == 10,
	      "%s", err);
	CHECK(set(&c, "dns", "max_inflight", "1") == -1 && strstr(err, "unknown key"), "%s", err);
	CHECK(conf_set(&c, "fetch", "bogus", "1", NULL, 0) == -1, "NULL err buffer");
	CHECK(conf_set(&c, "fetch", "bogus", "1", err, 8) == -1 && strlen(err) == 7, "truncated: %s", err);
}

/* ---- files ---- */

static char tmp_path[64];

/* Write len bytes of text to a fresh temporary file and load it; returns conf_load's result. */
static int load_bytes(struct conf *c, const char *text, size_t len)
{
	int fd;

	snprintf(tmp_path, sizeof tmp_path, "/tmp/test_conf.XXXXXX");
	fd = mkstemp(tmp_path);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
		perror("mkstemp/write");
		exit(2);
	}
	close(fd);
	err[0] = '\0';
	int r = conf_load(c, tmp_path, err, sizeof err);
	unlink(tmp_path);
	return r;
}

static int load_text(struct conf *c, const char *text)
{
	return load_bytes(c, text, strlen(text));
}

/* load_text expecting failure with err == "<tmp>:<line>: <msg>" */
static void check_file_error(const char *text, int line, const char *msg)
{
	struct conf c, d;
	char want[CONF_ERR_MAX];

	int r = load_text(&c, text);
	snprintf(want, sizeof want, "%s:%d: %s", tmp_path, line, msg);
	CHECK(r == -1 && strcmp(err, want) == 0, "got '%s', want '%s'", err, want);
	conf_defaults(&d);
	CHECK(memcmp(&c, &d, sizeof c) == 0, "a failed load left more than the defaults");
}

static void test_file_errors(void)
{
	check_file_error("[fetch]\nmax_inflight = 5\nbogus = 1\n", 3, "unknown key 'bogus' in [fetch]");
	check_file_error("[fecth]\nmax_inflight = 5\n", 1, "unknown section [fecth]");
	check_file_error("[fetch]\nmax_inflight = 5\n[nothing_here]\n", 3, "unknown section [nothing_here]");
	check_file_error("[ fetch ]\n", 1, "unknown section [ fetch ]");
	check_file_error("[fetch]\nmax_inflight\n", 2, "malformed line (expected key = value or [section])");
	check_file_error("[fetch\nmax_inflight = 1\n", 1, "malformed line (expected key = value or [section])");
	check_file_error("max_inflight = 5\n[fetch]\n", 1, "key 'max_inflight' outside any section");
	check_file_error("# one\n\n; three\n[fetch]\nmax_inflight = 5\n  per_host_connections = 2\n"
			 "connect_timeout_ms = 0\n",
			 7, "value 0 out of range [1, 3600000] for connect_timeout_ms in [fetch]");
	/* the first of several errors, whichever kind comes first */
	check_file_error("[fetch]\nmax_inflight = 5\nmax_inflight = x\nbogus\n[nope]\nzzz = 1\n", 3,
			 "invalid value 'x' for max_inflight in [fetch] (expected a decimal number)");
	check_file_error("[fetch]\nbogus\nmax_inflight = x\n[nope]\n", 2,
			 "malformed line (expected key = value or [section])");
	check_file_error("[nope]\n[fetch]\nbogus\n", 1, "unknown section [nope]");
	/* an indented line does not continue the previous value; it is a line of its own */
	check_file_error("[fetch]\nuser_agent = a\n    b\n", 3,
			 "malformed line (expected key = value or [section])");
	/* a '#' after a value is part of it */
	check_file_error("[fetch]\nmax_inflight = 5 # five\n", 2,
			 "invalid value '5 # five' for max_inflight in [fetch] (expected a decimal number)");
	check_file_error("[daemon]\nlog_level = loud\n", 2,
			 "invalid log_level 'loud' in [daemon] (expected error, warn, info or debug)");

	/* lines inih would split are refused, not cut */
	char text[600];
	int n = snprintf(text, sizeof text, "[dns]\nservers = 1.1.1.1");
	while (n < 250)
		n += snprintf(text + n, sizeof text - (size_t)n, ", 1.1.1.1");
	snprintf(text + n, sizeof text - (size_t)n, "\ntries = 2\n");
	struct conf c;
	CHECK(load_text(&c, text) == -1 && strstr(err, ":2: line too long"), "%s", err);
	static const char nul[] = "[fetch]\nmax_inflight = 5\0junk\n";
	CHECK(load_bytes(&c, nul, sizeof nul - 1) == -1 && strstr(err, ":2: line contains a NUL byte"), "%s",
	      err);
	check_file_error("\xef\xbb\xbf[nope]\n", 1, "unknown section [nope]");

	CHECK(conf_load(&c, "/nonexistent/fetchd.conf", err, sizeof err) == -1 &&
		      strcmp(err, "/nonexistent/fetchd.conf: cannot open: No such file or directory") == 0,
	      "%s", err);
	CHECK(conf_load(&c, "/tmp", err, sizeof err) == -1 && strstr(err, "/tmp: cannot read: ") == err,
	      "%s", err);
}

static void test_file_ok(void)
{
	struct conf c;

	CHECK(load_text(&c, "") == 0 && c.max_inflight == 1024, "empty file: %s", err);
	CHECK(load_text(&c, "\xef\xbb\xbf[fetch]\r\n"
			    "max_inflight = 5 ; five\r\n"
			    "  per_host_connections=3\r\n"
			    "max_inflight = 6\r\n"
			    "user_agent = me/1 (x=y)\r\n"
			    "[dns]\r\n"
			    "servers = 127.0.0.1:5353, [::1]:53\r\n"
			    "timeout_ms: 250\r\n"
			    "[control]\n"
			    "\tclient_buffer_bytes = 8MiB\n") == 0,
	      "%s", err);
	CHECK(c.max_inflight == 6, "last duplicate wins: %u", c.max_inflight);
	CHECK(c.per_host_connections == 3, "%u", c.per_host_connections);
	CHECK(strcmp(c.user_agent, "me/1 (x=y)") == 0, "%s", c.user_agent);
	CHECK(strcmp(c.dns_servers, "127.0.0.1:5353, [::1]:53") == 0, "%s", c.dns_servers);
	CHECK(c.dns_timeout_ms == 250 && c.timeout_ms == 120000, "%u %u", c.dns_timeout_ms, c.timeout_ms);
	CHECK(c.client_buffer_bytes == 8ULL << 20, "%" PRIu64, c.client_buffer_bytes);
	CHECK(c.dns_tries == 3 && c.log_level == CONF_LOG_INFO, "untouched keys keep defaults");
	CHECK(conf_load(&c, "/nonexistent", NULL, 0) == -1, "NULL err buffer");
}

/* Every good value of a string key sets and reads back; every bad one is refused as "invalid" and
 * leaves the value before it (keep) in place. */
static void check_values(const char *section, const char *key, const char *const *good, size_t ngood,
			 const char *const *bad, size_t nbad, const char *keep)
{
	struct conf c;

	for (size_t i = 0; i < ngood; i++) {
		conf_defaults(&c);
		CHECK(set(&c, section, key, good[i]) == 0 && strcmp(get(&c, section, key), good[i]) == 0,
		      "%s = '%s' refused: %s", key, good[i], err);
	}
	for (size_t i = 0; i < nbad; i++) {
		conf_defaults(&c);
		set(&c, section, key, keep);
		CHECK(set(&c, section, key, bad[i]) == -1 && strstr(err, "invalid") &&
			      strcmp(get(&c, section, key), keep) == 0,
		      "%s = '%s' accepted: %s", key, bad[i], err);
	}
}

/* [security] allow_addresses and deny_addresses: CIDR lists checked by conf/cidr.c's parser. */
static void test_addresses(void)
{
	static const char *const good[] = {
		"",
		"127.0.0.0/8, ::1/128",
		"10.0.0.1",
		"::1",
		"0.0.0.0/0,::/0",
		"  192.168.0.0/16 ,\t fd00::/8  ",
		"1.2.3.4/8",
		"::ffff:127.0.0.0/104",
	};
	static const char *const bad[] = {
		"10.0.0.0/33", "::1/129", "1.2.3", "fe80::1%eth0/64", "1.1.1.1,,2.2.2.2", "1.1.1.1,",
		",1.1.1.1",    " ",	  "10.0.0.0/",	"10.0.0.0/8/8",	   "localhost",	       "1.2.3.4/-1",
		"1.2.3.4/08",  "[::1]",	  "1.2.3.4:80", "256.0.0.0/8",
	};
	static const char *const keys[] = { "allow_addresses", "deny_addresses" };
	struct conf c;

	for (size_t k = 0; k < 2; k++)
		check_values("security", keys[k], good, sizeof good / sizeof good[0], bad, sizeof bad / sizeof bad[0],
			     "10.0.0.0/8");
	conf_defaults(&c);
	CHECK(set(&c, "security", "deny_addresses", "10.0.0.0/8, 10.0.0.0/33") == -1 &&
		      strcmp(err, "invalid deny_addresses '10.0.0.0/33' in [security] (expected comma-separated "
				  "IPv4 or IPv6 addresses, each optionally /prefix, at most 64 entries)") == 0,
	      "message names the bad entry: %s", err);
	CHECK(c.allow_addresses[0] == '\0' && c.deny_addresses[0] == '\0', "a refused list was stored");
	CHECK(set(&c, "security", "allow_addresses", "::1") == 0 && c.deny_addresses[0] == '\0' &&
		      strcmp(c.allow_addresses, "::1") == 0,
	      "the two keys are separate fields");

	/* 64 entries fit, 65 do not */
	char s[CONF_ADDRS_MAX + 8];
	size_t n = 0;
	for (int i = 0; i < 65; i++)
		n += (size_t)snprintf(s + n, sizeof s - n, "%s10.0.0.%d", i ? "," : "", i);
	CHECK(set(&c, "security", "allow_addresses", s) == -1 && strstr(err, "'10.0.0.64'"), "65 entries: %s",
	      err);
	s[strlen(s) - strlen(",10.0.0.64")] = '\0';
	CHECK(set(&c, "security", "allow_addresses", s) == 0, "64 entries: %s", err);

	/* 1023 bytes of valid syntax fit, 1024 do not */
	n = 0;
	for (int i = 0; i < 23; i++)
		n += (size_t)snprintf(s + n, sizeof s - n, "%sffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
				      i ? "," : "");
	while (n < CONF_ADDRS_MAX - 1)
		s[n++] = ' ';
	s[n] = '\0';
	CHECK(set(&c, "security", "deny_addresses", s) == 0 && strlen(c.deny_addresses) == CONF_ADDRS_MAX - 1,
	      "1023-byte list: %s", err);
	s[n++] = ' ';
	s[n] = '\0';
	CHECK(set(&c, "security", "deny_addresses", s) == -1 && strstr(err, "too long"), "1024-byte list: %s",
	      err);

	/* in a file: what the tests and the demo use loads; an error names file and line */
	CHECK(load_text(&c, "[security]\nallow_addresses = 127.0.0.0/8, ::1/128\n") == 0 &&
		      strcmp(c.allow_addresses, "127.0.0.0/8, ::1/128") == 0 && c.deny_addresses[0] == '\0',
	      "%s", err);
	check_file_error("[security]\nallow_addresses = 127.0.0.0/8\ndeny_addresses = ::1/129\n", 3,
			 "invalid deny_addresses '::1/129' in [security] (expected comma-separated IPv4 or IPv6 "
			 "addresses, each optionally /prefix, at most 64 entries)");
}

/* [control] allow_uids and allow_gids: lists of at most 64 decimal ids, 0..4294967294. */
static void test_ids(void)
{
	static const char *const good[] = { "", "0", "0,1000", " 65534 ,\t0 ", "4294967294", "0000000001" };
	static const char *const bad[] = { "-1", "4294967295", "99999999999", "1,,2", "1,", ",1", " ",
					   "root", "1 2", "0x10", "+5" };
	static const char *const keys[] = { "allow_uids", "allow_gids" };
	uint32_t ids[CONF_IDS_ENTRIES];
	size_t n;
	struct conf c;
	char bad_entry[64];

	for (size_t k = 0; k < 2; k++)
		check_values("control", keys[k], good, sizeof good / sizeof good[0], bad, sizeof bad / sizeof bad[0], "7");
	conf_defaults(&c);
	CHECK(set(&c, "control", "allow_uids", "0, 4294967295") == -1 &&
		      strcmp(err, "invalid allow_uids '4294967295' in [control] (expected comma-separated decimal "
				  "ids 0..4294967294, at most 64 entries)") == 0,
	      "message names the bad entry: %s", err);
	CHECK(conf_id_list(" 65534 ,\t0,4294967294", ids, CONF_IDS_ENTRIES, &n, bad_entry, sizeof bad_entry) == 0 &&
		      n == 3 && ids[0] == 65534 && ids[1] == 0 && ids[2] == 4294967294u,
	      "parsed %zu ids", n);
	CHECK(conf_id_list("", ids, CONF_IDS_ENTRIES, &n, bad_entry, sizeof bad_entry) == 0 && n == 0, "empty");

	/* 64 entries fit, 65 do not */
	char s[CONF_IDS_MAX];
	size_t len = 0;
	for (int i = 0; i < 65; i++)
		len += (size_t)snprintf(s + len, sizeof s - len, "%s%d", i ? "," : "", 1000 + i);
	CHECK(set(&c, "control", "allow_gids", s) == -1 && strstr(err, "'1064'"), "65 entries: %s", err);
	s[strlen(s) - strlen(",1064")] = '\0';
	CHECK(set(&c, "control", "allow_gids", s) == 0, "64 entries: %s", err);
	CHECK(load_text(&c, "[control]\nallow_uids = 0, 65534\nallow_gids =\n") == 0 &&
		      strcmp(c.allow_uids, "0, 65534") == 0 && c.allow_gids[0] == '\0',
	      "%s", err);
	check_file_error("[control]\nallow_gids = 100\nallow_uids = nobody\n", 3,
			 "invalid allow_uids 'nobody' in [control] (expected comma-separated decimal ids "
			 "0..4294967294, at most 64 entries)");
}

/* The example file loads to exactly the defaults. */
static void test_example_is_defaults(void)
{
	struct conf c, d;
	const char *section, *key;

	memset(&c, 0x5a, sizeof c);
	memset(&d, 0xa5, sizeof d);
	CHECK(conf_load(&c, EXAMPLE, err, sizeof err) == 0, "%s", err);
	conf_defaults(&d);
	CHECK(memcmp(&c, &d, sizeof c) == 0, "%s differs from the defaults", EXAMPLE);
	for (size_t i = 0; (key = conf_key(i, &section)); i++) {
		char want[CONF_ADDRS_MAX];
		snprintf(want, sizeof want, "%s", get(&d, section, key));
		CHECK(strcmp(get(&c, section, key), want) == 0, "[%s] %s = %s in %s, default %s", section,
		      key, get(&c, section, key), EXAMPLE, want);
	}
}

/* Every key is in the example file once, under a comment that gives its default, and nothing else is. */
static void test_example_documents_every_key(void)
{
	FILE *f = fopen(EXAMPLE, "r");
	char line[256], section[64] = "", comment[2048] = "";
	int count[128] = { 0 };
	size_t n = nkeys();

	CHECK(f != NULL, "cannot open %s", EXAMPLE);
	if (!f)
		return;
	CHECK(n <= 128, "too many keys for the test");
	while (fgets(line, sizeof line, f)) {
		char key[64];
		if (line[0] == '#') {
			if (strlen(comment) + strlen(line) < sizeof comment)
				strcat(comment, line);
			continue;
		}
		if (sscanf(line, "[%63[^]]]", section) == 1 || line[0] == '\n') {
			comment[0] = '\0';
			continue;
		}
		CHECK(sscanf(line, "%63[a-z_] =", key) == 1, "unexpected line: %s", line);
		size_t i;
		const char *s;
		for (i = 0; conf_key(i, &s) && !(strcmp(s, section) == 0 && strcmp(conf_key(i, NULL), key) == 0);)
			i++;
		CHECK(i < n, "[%s] %s in %s is not a known key", section, key, EXAMPLE);
		if (i < n)
			count[i]++;
		CHECK(strstr(comment, "Default: ") != NULL, "[%s] %s has no comment giving its default",
		      section, key);
		comment[0] = '\0';
	}
	fclose(f);
	for (size_t i = 0; i < n && i < 64; i++) {
		const char *s, *k = conf_key(i, &s);
		CHECK(count[i] == 1, "[%s] %s appears %d times in %s", s, k, count[i], EXAMPLE);
	}
}

/* conf_reload: live keys change, restart keys keep their running values, and the lists say which. */
static void test_reload(void)
{
	struct conf run, file, out;
	char changed[512], pending[512], why[256];
	conf_defaults(&run);
	conf_defaults(&file);
	int n = conf_reload(&run, &file, &out, changed, sizeof(changed), pending, sizeof(pending));
	CHECK(n == 0 && !changed[0] && !pending[0], "identical: n=%d '%s' '%s'", n, changed, pending);
	static const char *const set[][3] = {
		{ "fetch", "user_agent", "x/2" },      { "retry", "times", "5" },
		{ "daemon", "workers", "3" },           { "control", "socket", "/tmp/other.sock" },
		{ "dns", "servers", "127.0.0.1:5353" }, { "dns", "min_ttl_s", "1" },
		{ "tls", "verify", "no" },              { "control", "allow_uids", "1000" },
		{ "fetch", "max_inflight", "7" },       { "politeness", "obey_robots", "yes" },
	};
	for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
		CHECK(conf_set(&file, set[i][0], set[i][1], set[i][2], why, sizeof(why)) == 0, "%s", why);
	n = conf_reload(&run, &file, &out, changed, sizeof(changed), pending, sizeof(pending));
	CHECK(n == 4, "n=%d", n);
	CHECK(!strcmp(changed, "control.allow_uids, fetch.user_agent, retry.times, dns.min_ttl_s"), "%s", changed);
	CHECK(!strcmp(pending, "daemon.workers, control.socket, fetch.max_inflight, politeness.obey_robots, "
			       "dns.servers, tls.verify"), "%s", pending);
	CHECK(!strcmp(out.user_agent, "x/2") && out.retry_times == 5 && out.dns_min_ttl_s == 1 &&
		      !strcmp(out.allow_uids, "1000"), "live keys applied");
	CHECK(out.workers == run.workers && !strcmp(out.socket_path, run.socket_path) && !out.dns_servers[0] &&
		      !strcmp(out.tls_verify, "yes") && out.max_inflight == run.max_inflight &&
		      !strcmp(out.obey_robots, "no"), "restart keys kept");
	/* lists that do not fit end in "..." */
	char small[24];
	n = conf_reload(&run, &file, &out, small, sizeof(small), pending, sizeof(pending));
	CHECK(n == 4 && strlen(small) < sizeof(small) && strstr(small, "...") != NULL, "'%s'", small);
	CHECK(conf_key_needs_restart("tls", "ca_file") && !conf_key_needs_restart("tls", "max_handshakes") &&
		      !conf_key_needs_restart("dns", "negative_ttl_s") && conf_key_needs_restart("dns", "family"),
	      "classification");
}

/* [queue]: the URL is checked by redisurl_parse and a bad one is refused without echoing its password;
 * names are printable without spaces; every key needs a restart. */
static void test_queue(void)
{
	struct conf c;

	conf_defaults(&c);
	CHECK(set(&c, "queue", "backend", "redis") == 0 && strcmp(c.queue_backend, "redis") == 0, "%s", err);
	CHECK(set(&c, "queue", "backend", "kafka") == -1, "kafka accepted");
	CHECK(set(&c, "queue", "url", "redis://:pw@10.0.0.1:7000/3") == 0 &&
		      strcmp(c.queue_url, "redis://:pw@10.0.0.1:7000/3") == 0, "%s", err);
	CHECK(set(&c, "queue", "url", "redis://:hunter2@h:0/1") == -1 && strstr(err, "port") &&
		      !strstr(err, "hunter2"), "%s", err);
	CHECK(set(&c, "queue", "url", "http://h/") == -1 && strstr(err, "redis://"), "%s", err);
	CHECK(strcmp(c.queue_url, "redis://:pw@10.0.0.1:7000/3") == 0, "a refused value changed it: %s", c.queue_url);
	CHECK(set(&c, "queue", "stream", "crawl:{a}:urls") == 0, "%s", err);
	CHECK(set(&c, "queue", "stream", "has space") == -1 && set(&c, "queue", "group", "") == -1, "names");
	CHECK(set(&c, "queue", "consumer", "") == 0 && c.queue_consumer[0] == 0, "%s", err);
	CHECK(set(&c, "queue", "claim_idle_ms", "99") == -1 && set(&c, "queue", "claim_idle_ms", "100") == 0, "%s", err);
	CHECK(set(&c, "queue", "results_maxlen", "999") == -1 && set(&c, "queue", "results_maxlen", "2M") == 0 &&
		      c.queue_results_maxlen == 2097152, "%s", err);
	CHECK(conf_key_needs_restart("queue", "backend") && conf_key_needs_restart("queue", "batch") &&
		      conf_key_needs_restart("queue", "timeout_ms"), "queue keys need a restart");
}

int main(void)
{
	test_defaults();
	test_table_matches_docs();
	test_bounds();
	test_integers();
	test_sizes();
	test_strings();
	test_log_level();
	test_dns_servers();
	test_names();
	test_file_errors();
	test_file_ok();
	test_addresses();
	test_ids();
	test_example_is_defaults();
	test_example_documents_every_key();
	test_reload();
	test_queue();
	return test_report();
}

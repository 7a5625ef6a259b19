/* conf.h - fetchd configuration: the INI file (read with inih) becomes a struct conf with built-in
 * defaults and checked bounds. Pure apart from reading the one file; never logs, never exits. */
#ifndef FETCHD_CONF_H
#define FETCHD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONF_PATH_MAX 256
#define CONF_UA_MAX 256
#define CONF_SERVERS_MAX 512
#define CONF_ADDRS_MAX 1024
#define CONF_ERR_MAX 512
#define CONF_IDS_MAX 1024    /* allow_uids, allow_gids: bytes of text */
#define CONF_IDS_ENTRIES 64  /* ... and ids in each list */
#define CONF_QNAME_MAX 128   /* [queue] stream, group and consumer names */

#ifndef FETCHD_VERSION
#error "FETCHD_VERSION comes from the Makefile (-DFETCHD_VERSION=...)"
#endif

enum conf_log_level { CONF_LOG_ERROR = 0, CONF_LOG_WARN, CONF_LOG_INFO, CONF_LOG_DEBUG };

struct conf {
	/* [daemon] */
	enum conf_log_level log_level;  /* log_level = error|warn|info|debug; default info */
	uint32_t workers;                /* worker threads; default 0 = one per online CPU; 0..64 */
	uint32_t drain_timeout_ms;       /* on SIGTERM, how long admitted fetches may go on; default 10000;
	                                    0..3600000 */

	/* [control] */
	char socket_path[CONF_PATH_MAX]; /* socket; default /run/fetchd.sock */
	uint32_t max_clients;            /* default 64; 1..4096 */
	uint32_t client_window;          /* URLs admitted but unfinished per client; default 0 = auto:
	                                    max(4096, 2 * max_inflight); else 1..1000000 */
	uint64_t client_buffer_bytes;    /* per-client budget for queued URL bytes + unsent result bytes;
	                                    default 4 MiB; 64 KiB..1 GiB */
	uint32_t max_url_bytes;          /* longest URL accepted; default 8192; 256..65536 */
	/* Who may use the socket, checked with SO_PEERCRED on every connection: uid 0 and the daemon's
	 * own effective uid always may. Then, when both lists are empty (the default), a peer whose
	 * primary or supplementary group owns the socket file (its group when fetchd started); else a
	 * peer whose uid is in allow_uids, or whose primary or supplementary group is in allow_gids (the
	 * socket's group no longer counts). Lists: comma-separated decimal ids 0..4294967294, at most 64
	 * each; default "" */
	char allow_uids[CONF_IDS_MAX];   /* allow_uids */
	char allow_gids[CONF_IDS_MAX];   /* allow_gids */

	/* [fetch] */
	uint32_t max_inflight;           /* default 1024; 1..100000 */
	uint32_t per_host_connections;   /* default 8; 1..10000 */
	uint32_t connect_timeout_ms;     /* default 10000; 1..3600000 */
	uint32_t header_timeout_ms;      /* default 30000; 1..3600000 */
	uint32_t idle_timeout_ms;        /* default 30000; 1..3600000 */
	uint32_t timeout_ms;             /* total per fetch; default 120000; 1..86400000 */
	uint32_t keepalive_idle_ms;      /* idle pooled connection lifetime; default 30000; 0..3600000
	                                    (0 = never keep a connection after its response) */
	uint64_t max_header_bytes;       /* default 64 KiB; 1 KiB..16 MiB */
	uint64_t max_body_bytes;         /* default 1 GiB; 0..1 TiB */
	char user_agent[CONF_UA_MAX];    /* default "fetchd/<version>" */
	uint32_t max_redirects;          /* redirects followed per URL; default 10; 0..100 */
	char follow_redirects[4];        /* yes|no; default yes (a batch or URL may say follow=no) */
	char decode[4];                  /* decode = yes|no: ask for gzip/deflate and decode; default yes */

	/* [retry] */
	uint32_t retry_times;            /* times: retries after the first attempt; default 2; 0..20 */
	uint32_t retry_base_ms;          /* base_ms: first backoff (doubles per retry); default 1000;
	                                    1..3600000 */
	uint32_t retry_max_ms;           /* max_ms: longest backoff, and cap on Retry-After; default
	                                    30000; 1..86400000 */

	/* [politeness] */
	uint32_t delay_ms;               /* between request starts to one host; default 0; 0..3600000 */
	char random_delay[4];            /* yes: each delay is 0.5x..1.5x delay_ms (as Scrapy); default no */
	uint32_t requests_per_s;         /* per host; 0 = no limit; default 0; 0..100000 */
	char obey_robots[4];             /* yes|no: fetch, cache and obey robots.txt; default no */
	uint32_t robots_cache_s;         /* how long robots.txt rules are kept; default 86400; 1..604800 */
	uint64_t robots_cache_bytes;     /* memory for kept rules, per worker; default 16 MiB; 64 KiB..1 GiB */

	/* [dns] */
	char dns_servers[CONF_SERVERS_MAX]; /* servers = "127.0.0.1:5353, [::1]:53"; default "" = resolv.conf */
	uint32_t dns_timeout_ms;         /* default 5000; 10..60000 */
	uint32_t dns_tries;              /* default 3; 1..10 */
	uint32_t dns_cache_size;         /* cache_size: names kept; default 10000; 0..10000000 (0: no cache) */
	uint32_t dns_min_ttl_s;          /* min_ttl_s: shortest time an answer is kept; default 30; 0..86400 */
	uint32_t dns_max_ttl_s;          /* max_ttl_s: longest; default 3600; 1..604800 */
	uint32_t dns_negative_ttl_s;     /* negative_ttl_s: how long NXDOMAIN is kept; default 60; 0..86400 */
	char dns_family[8];              /* family = any|ipv4|ipv6; default any */
	char dns_hosts_file[CONF_PATH_MAX]; /* hosts_file: consulted before DNS; default /etc/hosts; "" none */

	/* [security] (see daemon/addrpolicy.h) */
	char allow_addresses[CONF_ADDRS_MAX]; /* CIDR list opened despite the built-in blocked ranges,
	                                         "127.0.0.0/8, ::1/128"; default "" */
	char deny_addresses[CONF_ADDRS_MAX];  /* CIDR list always refused; default "" */

	/* [tls] */
	char tls_ca_file[CONF_PATH_MAX]; /* ca_file: PEM bundle; default "" = the system bundle */
	char tls_ca_path[CONF_PATH_MAX]; /* ca_path: a hashed CA directory; default "" = none */
	char tls_min_version[4];         /* min_version = 1.2|1.3; default 1.2 */
	char tls_verify[4];              /* verify = yes|no; default yes */
	uint32_t tls_max_handshakes;     /* max_handshakes: TLS handshakes in progress per worker; more
	                                    wait to start their connection; default 64; 1..100000 */
	/* [jobs] (detached batches: fetchctl submit --detach) */
	char jobs_dir[CONF_PATH_MAX];    /* dir: where a job's URLs and results are spooled (0700); default
	                                    /var/lib/fetchd/jobs; "" turns detached jobs off */
	uint32_t max_jobs;               /* jobs kept at once (running or waiting to be collected); default
	                                    16; 0..1024 */
	uint64_t job_max_bytes;          /* max_bytes: the URLs one job may submit; default 256 MiB;
	                                    64 KiB..64 GiB */

	/* [queue] (a shared crawl through Redis Streams: daemon/queue.c; every key needs a restart) */
	char queue_backend[8];           /* backend = none|redis; default none */
	char queue_url[CONF_PATH_MAX];   /* url = redis://[[user]:password@]host[:port][/db] (conf/redisurl.h);
	                                    default redis://127.0.0.1:6379/0 */
	char queue_stream[CONF_QNAME_MAX];   /* stream: URL entries are read from it; default fetchd:urls */
	char queue_results[CONF_QNAME_MAX];  /* results_stream: each result is added to it; fetchd:results */
	char queue_dead[CONF_QNAME_MAX];     /* dead_stream: entries given up on; default fetchd:dead */
	char queue_group[CONF_QNAME_MAX];    /* group: the consumer group; default fetchd */
	char queue_consumer[CONF_QNAME_MAX]; /* consumer: this fetchd's name; default "" = HOSTNAME-PID */
	uint32_t queue_batch;            /* batch: entries asked for per read; default 100; 1..10000 */
	uint32_t queue_max_pending;      /* max_pending: entries read and not yet acknowledged; default 0 =
	                                    max_inflight; else 1..1000000 */
	uint32_t queue_claim_idle_ms;    /* claim_idle_ms: another consumer's entry idle this long is taken
	                                    over (XAUTOCLAIM); default 60000; 100..86400000 */
	uint32_t queue_max_deliveries;   /* max_deliveries: an entry delivered this often goes to the dead
	                                    stream instead; default 5; 1..1000 */
	uint64_t queue_results_maxlen;   /* results_maxlen: XADD MAXLEN ~ bound; default 1000000;
	                                    1000..1000000000 */
	uint32_t queue_timeout_ms;       /* timeout_ms: connecting to Redis and each reply; default 5000;
	                                    100..600000 */

	uint32_t tls_session_cache_size; /* session_cache_size: resumable sessions kept per worker;
	                                    default 10000; 0..1000000 (0: no resumption) */
};

/* Fill c with the built-in defaults (what fetchd runs on without a file). */
void conf_defaults(struct conf *c);

/* Set c to defaults, then apply the INI file at path. Returns 0 on success; -1 on any error, with a
 * message in err naming the file and line ("fetchd.conf:12: unknown key 'foo' in [fetch]"). Unknown
 * sections and keys, malformed lines, values that do not parse and values outside their bounds are all
 * errors. Sizes accept K/M/G suffixes (powers of 1024); durations are plain milliseconds. */
int conf_load(struct conf *c, const char *path, char *err, size_t errlen);

/* The same from an open stream; name stands for the file in messages. The stream stays open. */
int conf_load_stream(struct conf *c, FILE *f, const char *name, char *err, size_t errlen);

/* Apply one key, as the loader does (for tests and for overrides). Returns 0, or -1 with err set
 * (without file and line). */
int conf_set(struct conf *c, const char *section, const char *key, const char *value, char *err,
	     size_t errlen);

/* Parse an id list ("0, 1000,65534"; "" is none) into ids[0..*n), at most max entries, each
 * 0..4294967294. Returns 0, or -1 with the bad entry (or the first one too many) copied into bad. */
int conf_id_list(const char *s, uint32_t *ids, size_t max, size_t *n, char *bad, size_t badlen);

/* Derived values: the client window after "auto" is resolved. */
uint32_t conf_client_window(const struct conf *c);

/* Introspection over the key table (tests, docs, `fetchd -t`): the name of the i-th key with its
 * section in *section, or NULL past the end. */
const char *conf_key(size_t i, const char **section);

/* Format the value c holds for a key as the file would spell it (numbers in plain decimal, sizes in
 * bytes, the log level by name). Returns 0, or -1 for an unknown key or a buffer too small. */
int conf_get(const struct conf *c, const char *section, const char *key, char *buf, size_t buflen);

/* Reload (SIGHUP): out = loaded, except that keys a running daemon cannot change keep running's
 * values. The keys that change go to changed ("fetch.user_agent, retry.times"), those that need a
 * restart to pending; each list ends in "..." when it does not fit. Returns how many keys change. */
int conf_reload(const struct conf *running, const struct conf *loaded, struct conf *out, char *changed,
		size_t changed_len, char *pending, size_t pending_len);

/* Whether a key can only change with a restart (see conf_reload). */
bool conf_key_needs_restart(const char *section, const char *key);

#endif

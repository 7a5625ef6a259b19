/* fetchd.h - the daemon's object model, shared by its files: the engine (one ring, its timers), control
 * clients, hosts (per-host queue, address list, keep-alive pool), connections (where ring, HTTP and
 * later TLS meet) and fetches (one per admitted URL). Ownership:
 *   client  owns its fetches (list), its socket and buffers;
 *   host    holds waiting fetches (queue) and its connections (count, idle pool); lives while any of
 *           those exist or a lookup runs;
 *   conn    owns the socket and every ring op on it; freed only when no op is in flight;
 *   fetch   points at its client, host and (while running) conn. */
#ifndef FETCHD_FETCHD_H
#define FETCHD_FETCHD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf/conf.h"
#include "daemon/addrpolicy.h"
#include "daemon/buf.h"
#include "daemon/http1.h"
#include "daemon/list.h"
#include "daemon/sockaddr.h"
#include "daemon/url.h"
#include "ring/ring.h"
#include "ring/timer.h"
#include "tls/tls.h"

#define FETCHD_MAX_ADDRS 8
#define FETCHD_REAP_BATCH 256
#define RING_RECV_BUFS 1024        /* provided receive buffers: held only while a completion is handled */
#define RING_RECV_BUF_BYTES 16384

/* user_data ops (and timer key kinds). */
enum op {
	OP_NONE = 0,
	OP_ACCEPT,
	OP_SIGNAL,
	OP_CLIENT_RECV,
	OP_CLIENT_SEND,
	OP_CLIENT_RDHUP,
	OP_CLIENT_CANCEL,
	OP_CONN_CONNECT,
	OP_CONN_SEND,
	OP_CONN_RECV,
	OP_CONN_CANCEL,
	OP_DNS_POLL,
	OP_DNS_REMOVE,
	OP_CLOSE,       /* a connection's socket closed through the ring; nothing waits for it */
	TK_CONN,
	TK_DNS,
	TK_CLIENT,
	TK_STOP,
};


enum fetch_state { F_QUEUED = 0, F_CONNECTING, F_SENDING, F_WAITING, F_BODY, F_DONE };

struct fetch {
	struct link client_link; /* in client->fetches */
	struct link queue_link;  /* in host->queue while F_QUEUED */
	struct client *client;
	struct host *host;
	struct conn *conn;       /* while running */
	enum fetch_state state;
	uint32_t attempts;
	bool stale_retried;      /* already retried once after a reused connection died */
	int64_t t_admit_ns;      /* admitted from the client */
	int64_t t_start_ns;      /* left the host queue */
	int64_t dns_ns;          /* time spent waiting for this host's lookup */
	uint32_t target_off, target_len, userinfo_off, userinfo_len;
	uint32_t url_len;
	char url[];              /* as submitted, NUL-terminated */
};

enum host_dns { H_NEW = 0, H_RESOLVING, H_READY, H_FAILED };

struct host {
	struct host *hash_next;
	uint32_t hash;
	struct link ready_link;  /* in d->ready while it can start a fetch */
	struct link queue;       /* waiting fetches, FIFO */
	uint32_t queued;
	struct link idle;        /* idle keep-alive conns, most recent last */
	uint32_t nconns;         /* every conn slot referring to this host, closing ones included */
	uint32_t nopen;          /* of those, not yet shut down: what per_host_connections bounds */
	enum host_dns dns;
	const char *fail_class;  /* when H_FAILED: "dns" or "blocked" */
	char fail_msg[512];      /* ... and why */
	int64_t t_resolve_ns;    /* lookup start */
	int64_t dns_expires_ns;  /* the addresses' TTL runs out: new connections look the name up again */
	struct link dns_link;    /* in the lookup's list of waiting hosts while H_RESOLVING */
	uint8_t naddrs;
	union sockaddr_any addrs[FETCHD_MAX_ADDRS];
	enum url_scheme scheme;
	uint16_t port;
	char name[URL_HOST_MAX];
	char host_header[URL_HOST_MAX + 8];
};

enum conn_state { C_FREE = 0, C_CONNECTING, C_BUSY, C_IDLE, C_CLOSING };

struct conn {
	uint32_t idx, gen;
	int fd;
	enum conn_state state;
	uint8_t ops;             /* ring ops in flight on this conn */
	bool recv_armed, send_armed, connect_armed; /* which ops are in flight */
	bool reused;             /* the current request is not the first on this conn */
	bool got_bytes;          /* a byte of the current response arrived */
	bool headers_done;
	struct host *host;
	struct fetch *fetch;
	struct link pool_link;   /* in host->idle while C_IDLE */
	struct link lru_link;    /* in d->idle_lru while C_IDLE */
	struct link nobufs_link; /* in d->nobufs while waiting for a receive buffer */
	uint8_t addr_idx;
	union sockaddr_any addr;
	char ip[INET6_ADDRSTRLEN]; /* addr as text, for results */
	const char *close_reason;
	uint32_t requests;       /* served on this conn */
	int64_t timer_at_ns;     /* deadline armed in the timer heap (0: none) */
	uint64_t idle_turn;      /* loop turn in which it went idle */
	int64_t t_connect_ns, t_req_ns, t_first_byte_ns, t_last_recv_ns, t_idle_ns;
	int64_t connect_ns;
	char *req;
	uint32_t req_cap, req_len, req_sent;
	uint64_t wire_bytes;
	struct http1_parser parser;
	struct tls_sha256 sha;
};

enum client_state { CL_FREE = 0, CL_OPEN, CL_CLOSING };

struct client {
	uint32_t idx, gen;
	int fd;
	enum client_state state;
	uint8_t ops;
	bool recv_armed, send_armed, rdhup_armed;
	bool hello_done, end_seen, done_queued;
	bool hash;               /* hash bodies (HELLO "hash", default true) */
	bool flush_now;          /* out holds a frame other than RESULTS: send without waiting */
	bool flush_timer;        /* a TK_CLIENT timer is armed */
	int64_t out_since_ns;    /* when the oldest unsent result was queued */
	bool dirty;
	uint32_t id;             /* for logs */
	pid_t pid;
	uid_t uid;
	struct buf in;           /* bytes from the client; [in_off, in.len) unprocessed */
	size_t in_off;
	size_t urls_end;         /* end of the URLS frame being admitted (0: none) */
	struct buf out;          /* frames waiting to be sent */
	struct buf sending;      /* frames handed to the in-flight send (immutable until it completes) */
	size_t sent;             /* bytes of sending already sent */
	size_t open_frame;       /* offset of the open RESULTS frame header in out, SIZE_MAX: none */
	struct link fetches;
	uint32_t admitted;
	uint64_t admitted_bytes;
	uint64_t urls;           /* lines received */
	uint64_t results;        /* results produced */
	uint32_t cancelled;      /* fetches dropped because the client went away or failed */
	struct link dirty_link;
	const char *close_reason;
};

struct dns;

struct fetchd_stats {
	uint64_t fetches_ok, fetches_failed, stale_cqes, conns_opened, conns_reused, stale_retries;
	uint64_t dns_queries, dns_cache_hits, dns_hosts_file_hits, dns_coalesced;
};

struct fetchd {
	struct conf conf;
	struct addrpolicy policy;
	struct ring ring;
	struct ring_timers timers;
	int64_t now_ns;
	int listen_fd;
	bool accept_armed;
	int signal_fd;
	uint8_t siginfo[128];
	bool signal_armed;
	bool stopping;
	int64_t stop_deadline_ns;
	/* clients */
	struct client *clients;
	uint32_t client_cap, nclients, next_client_id;
	uint32_t *client_free;
	uint32_t nclient_free;
	/* connections */
	struct conn *conns;
	uint32_t conn_cap, nconns; /* slots: open ones plus closing ones waiting for their last op */
	uint32_t nopen;          /* connections not yet shut down: what max_inflight bounds */
	uint32_t *conn_free;
	uint32_t nconn_free;
	/* hosts */
	struct host **htab;
	uint32_t hcap, nhosts;
	/* scheduling */
	struct link ready;       /* hosts that can start a fetch now */
	struct link idle_lru;    /* idle conns, least recently used first */
	struct link dirty;       /* clients with output to send or input to admit */
	struct link nobufs;      /* conns whose receive waits for a buffer */
	uint32_t inflight;
	uint32_t window;         /* resolved client window */
	uint64_t turn;           /* loop turns so far */
	struct link deferred;    /* hosts whose only idle conns went idle this turn: retried next turn */
	bool wake_now;           /* something waits for the next turn: do not sleep in it */
	struct dns *dns;
	struct fetchd_stats stats;
};

/* engine.c */
int fetchd_init(struct fetchd *d, const struct conf *c, char *err, size_t errlen);
int fetchd_run(struct fetchd *d);
void fetchd_fini(struct fetchd *d);
void fetchd_timer(struct fetchd *d, int64_t deadline_ns, uint8_t kind, uint32_t gen, uint32_t idx);

/* control.c */
int control_listen(struct fetchd *d, char *err, size_t errlen);
void control_on_cqe(struct fetchd *d, const struct ring_cqe *cqe);
void control_service(struct fetchd *d);       /* admit and flush dirty clients */
struct result;
void control_result(struct fetchd *d, struct client *c, struct result *r); /* encode one result line */
void control_fetch_done(struct fetchd *d, struct fetch *f); /* unlink and free a finished fetch */
void control_stop(struct fetchd *d);
void control_on_timer(struct fetchd *d, uint32_t idx, uint32_t gen); /* a held flush is due */
void control_fini(struct fetchd *d);

/* sched.c */
int sched_init(struct fetchd *d);
void sched_fini(struct fetchd *d);
void sched_admit(struct fetchd *d, struct client *c, struct fetch *f, const struct url *u);
void sched_run(struct fetchd *d);
void sched_cancel(struct fetchd *d, struct fetch *f);   /* the client went away */
void sched_host_changed(struct fetchd *d, struct host *h);
void sched_dns_done(struct fetchd *d, struct host *h, int status, const union sockaddr_any *addrs,
		    unsigned naddrs, int64_t expires_ns);
void sched_requeue(struct fetchd *d, struct fetch *f);  /* back to the head of its host queue */

/* conn.c */
void conn_start(struct fetchd *d, struct fetch *f);      /* f just left its host queue */
void conn_on_cqe(struct fetchd *d, const struct ring_cqe *cqe);
void conn_on_timer(struct fetchd *d, uint32_t idx, uint32_t gen, int64_t deadline_ns);
void conn_detach_cancel(struct fetchd *d, struct fetch *f); /* client gone: drop f's conn */
void conn_close(struct fetchd *d, struct conn *c, const char *reason);
void conn_retry_nobufs(struct fetchd *d);
void conn_close_idle_all(struct fetchd *d);
void conn_release(struct fetchd *d, struct conn *c, bool reusable);
struct conn *conn_alloc(struct fetchd *d);
struct conn *conn_idle_usable(const struct fetchd *d, struct host *h);

/* fetch completion (result.c): encode the result line and hand it to the client. */
void fetch_fail(struct fetchd *d, struct fetch *f, const char *cls, const char *phase, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void fetch_succeed(struct fetchd *d, struct fetch *f, struct conn *c);
void fetch_set_state(struct fetch *f, enum fetch_state s);

/* dns.c */
int dns_init(struct fetchd *d, char *err, size_t errlen);
void dns_fini(struct fetchd *d);
void dns_resolve(struct fetchd *d, struct host *h);
void dns_on_cqe(struct fetchd *d, const struct ring_cqe *cqe);
void dns_on_timer(struct fetchd *d, int64_t deadline_ns);
const char *dns_strerror(int status);


#endif

/* fetchd.h - the daemon's object model, shared by its files. Threads: the control thread (its own
 * ring: the control socket, clients, signals) and N worker threads (each its own ring, hosts,
 * connections, DNS channel and cache). A host name belongs to one worker (hash of the name), so its
 * queue, pool and cache entries need no lock. Ownership:
 *   client  (control) owns its socket and buffers, and counts its fetches; a fetch belongs to the
 *           control thread until handed to a worker, and again once its result comes back;
 *   host    (worker) holds waiting fetches (queue) and its connections (count, idle pool); lives while
 *           any of those exist or a lookup runs;
 *   conn    (worker) owns the socket and every ring op on it; freed only when no op is in flight;
 *   fetch   points at its client (control's), host and (while running) conn (worker's).
 * Between threads: per-worker inboxes (fetches, cancellations) and outboxes (results), each under its
 * own mutex and woken by an eventfd; the open-connection budget (max_inflight) is one atomic. */
#ifndef FETCHD_FETCHD_H
#define FETCHD_FETCHD_H

#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf/conf.h"
#include "daemon/access.h"
#include "daemon/addrpolicy.h"
#include "daemon/buf.h"
#include "daemon/decode.h"
#include "daemon/http1.h"
#include "daemon/list.h"
#include "daemon/lrumap.h"
#include "daemon/opts.h"
#include "daemon/protocol.h"
#include "daemon/result.h"
#include "daemon/sdnotify.h"
#include "daemon/sockaddr.h"
#include "daemon/url.h"
#include "daemon/waitheap.h"
#include "ring/ring.h"
#include "ring/timer.h"
#include "tls/tls.h"

#define FETCHD_MAX_ADDRS 8
#define FETCHD_REAP_BATCH 256
#define RING_RECV_BUFS 1024        /* most provided receive buffers per worker (held only while a completion
                                      is handled); fewer for a smaller share of max_inflight */
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
	OP_WAKE,        /* the eventfd read of a thread's ring: another thread left it work */
	TK_CONN,
	TK_DNS,
	TK_CLIENT,
	TK_ACCEPT,
	TK_WAIT,        /* something in the worker's waitheap may be due */
	TK_STOP,
	TK_DRAIN,       /* control: the drain time after SIGTERM is over */
	TK_STATUS,      /* control: time to send systemd a STATUS= line (service.c) */
	TK_WATCHDOG,    /* control: time to ping systemd's watchdog (service.c) */
	TK_TICK,        /* control: a second passed (info.c: rates) */
};


enum fetch_state { F_QUEUED = 0, F_CONNECTING, F_TLS, F_SENDING, F_WAITING, F_BODY, F_DONE };

struct fetch {
	struct link client_link; /* control: in client->fetches */
	struct link queue_link;  /* worker: in host->queue while F_QUEUED; in a worker inbox before */
	struct link wlink;       /* worker: in its list of this client's fetches (for cancelling) */
	struct client *client;   /* control's: workers never touch the client */
	uint32_t client_idx, client_gen;
	bool hash;               /* hash the body (the client's HELLO "hash") */
	uint8_t capture;         /* FETCHD_CAPTURE_RAW/_BODY: stream its bytes to the client (capture.c) */
	uint32_t seq;            /* its line's number in the session (capture frames and result "seq") */
	struct host *host;
	struct conn *conn;       /* while running */
	enum fetch_state state;
	uint32_t attempts;       /* tries of the current URL (retries + 1) */
	bool stale_retried;      /* already retried once after a reused connection died */
	bool transient;          /* the failure being reported is a reset or an empty reply: retryable */
	struct wait_node wait;   /* worker: in its waitheap while backing off before a retry */
	bool internal;           /* fetchd's own (robots.txt): no client, its result stays in the worker */
	bool cancelled;          /* its result is "cancelled" (the stop): for the queue, no result at all */
	struct buf body;         /* internal: the body, up to ROBOTS_MAX_BYTES */
	int64_t t_admit_ns;      /* admitted from the client */
	int64_t t_start_ns;      /* left the host queue */
	int64_t dns_ns;          /* time spent waiting for this host's lookup */
	struct fetch_opts opts;  /* method, limits, ...: the daemon's, then the batch's, then the URL's */
	bool untrusted;          /* a redirect left the first host: its Authorization/Cookie stay behind */
	uint32_t nredirects;     /* hops followed so far */
	struct buf hops;         /* per hop: u16 status, u32 length, the URL that answered (result.h) */
	char *cur;               /* the URL being fetched after a redirect (malloc'd); NULL: url */
	uint32_t cur_len;
	int64_t prev_ns;         /* time spent in earlier hops and attempts */
	uint32_t target_off, target_len, userinfo_off, userinfo_len; /* spans of the current URL */
	uint32_t url_len;
	char url[];              /* as submitted, NUL-terminated; then opts.extra_len bytes of header
	                            lines (fetch_extra) */
};

static inline const char *fetch_url(const struct fetch *f)
{
	return f->cur ? f->cur : f->url;
}

static inline uint32_t fetch_url_len(const struct fetch *f)
{
	return f->cur ? f->cur_len : f->url_len;
}

static inline const char *fetch_extra(const struct fetch *f)
{
	return f->url + f->url_len + 1;
}

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
	int64_t next_ok_ns;      /* politeness: no request starts before this */
	int64_t spacing_ns;      /* the spacing drawn for the last request started */
	bool robots_fetching;    /* its robots.txt is being fetched: its fetches wait */
	bool robots_failed;      /* could not even start that fetch: its fetches fail as "robots" */
	struct wait_node wait;   /* in the worker's waitheap while next_ok_ns is ahead */
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
	struct tls_conn *tls;     /* https: the TLS state, for the connection's life */
	bool tls_done;           /* the handshake completed */
	bool hs_counted;         /* counts against the worker's handshakes in progress */
	bool session_saved;      /* its resumable session went to the cache */
	int64_t t_tls_ns, tls_ns;
	uint64_t body_bytes;     /* body bytes after decoding: what max_body_bytes and the hash see */
	bool decoding;           /* dec is live: the body has a Content-Encoding we decode */
	struct decoder dec;
	struct tls_sha256 sha;
	bool paused;             /* capture: not receiving until its client catches up (capture.c) */
	bool recv_cancelling;    /* ... its multishot receive is being cancelled for that */
	struct link pause_link;  /* ... in its client's worker account (struct capture_acct) */
	struct tls_sha1 payload_sha1; /* capture "raw": SHA-1 of the body without chunked coding */
	struct http1_parser parser; /* last: its Location buffer is touched only by redirects */
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
	uint8_t capture;         /* HELLO "capture": FETCHD_CAPTURE_RAW/_BODY */
	uint64_t *cap_unacked;   /* capture: bytes queued per worker and not yet acknowledged to it */
	struct fetch_opts opts;  /* the batch's options (HELLO "options") over the daemon's */
	char *extra;             /* their header lines (opts.extra_len bytes, malloc'd) */
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
	bool cancelling;         /* its fetches are being cancelled: results that still come are dropped */
	struct link dirty_link;
	const char *close_reason;
	/* detached jobs (jobs.c) */
	struct job *job;         /* this client runs the job (a slot after max_clients, no socket) */
	struct job *job_in;      /* this session is submitting the job's URLs (until END) */
	struct job *collect;     /* this session streams the job's results */
	uint64_t collect_off;
	bool collected;          /* ... and has queued all of a finished job's */
	bool cancel_rest;        /* the job was cancelled: lines not admitted yet get "cancelled" */
	bool job_dropped;        /* the job's submitter left before END: its files go with it */
	bool queue;              /* the Redis queue's client (queue.c): URLs from its reader, results to
	                            its writer; seq is the entry's slot */
};

struct dns;

struct fetchd_stats {
	uint64_t fetches_ok, fetches_failed, stale_cqes, conns_opened, conns_reused, stale_retries;
	uint64_t dns_queries, dns_cache_hits, dns_hosts_file_hits, dns_coalesced;
	uint64_t tls_handshakes, tls_resumed;
	uint64_t retries, redirects, robots_fetches, robots_denied;
	uint64_t capture_pauses;
	uint64_t errors[RESULT_NCLASSES]; /* failed results by class (result_classes) */
};

/* Add s into sum, counter by counter. */
void fetchd_stats_add(struct fetchd_stats *sum, const struct fetchd_stats *s);

/* What a worker shows the control thread (stats verb): a copy made at most every 100 ms. */
struct worker_pub {
	struct fetchd_stats stats;
	uint32_t inflight, nopen, nhosts;
};

/* capture.c: per worker and client slot, the capture bytes not yet acknowledged by the control thread. */
struct capture_acct {
	uint32_t gen;            /* the client of the slot it counts for */
	uint64_t unacked;
	struct link paused;      /* conns not receiving until the count drops (by pause_link) */
};

/* An acknowledgement: the control thread wrote bytes of the client in slot idx (gen) to its socket. */
struct capture_ack_msg {
	uint32_t idx, gen;
	uint64_t bytes;
};

#define FETCHD_MAX_WORKERS 64

/* What the workers share: the open-connection budget, and who is waiting for it. */
struct shared {
	_Atomic uint32_t open;     /* connections open across all workers, idle ones included */
	_Atomic uint64_t hungry;   /* bit i: worker i has a fetch waiting for budget */
	uint32_t max_open;         /* [fetch] max_inflight */
	struct worker *workers;
	uint32_t nworkers;
	int control_efd;           /* wakes the control thread: results are waiting */
};

/* A cancellation request: the client in slot idx, generation gen, went away. */
struct cancel_msg {
	uint32_t idx, gen;
	bool report;             /* each fetch ends with a "cancelled" result (drain); else silently */
};

struct worker {
	uint32_t id;
	struct conf conf;
	struct addrpolicy policy;
	struct shared *sh;
	uint32_t quota;          /* fair share of the budget: max_inflight / workers */
	pthread_t thread;
	bool started;
	sem_t ready_sem;         /* posted by the thread once its ring is up (or failed: init_rc) */
	int init_rc;
	struct ring ring;
	struct ring_timers timers;
	int64_t now_ns;
	uint64_t turn;           /* loop turns so far */
	bool stopping;           /* the control thread asked it to stop */
	bool wake_now;           /* something waits for the next turn: do not sleep in it */
	int efd;                 /* eventfd: the control thread (or a worker) left work */
	uint64_t efd_val;
	/* inbox: written by the control thread, drained by this worker */
	pthread_mutex_t in_lock;
	struct link in_fetches;  /* by queue_link */
	struct cancel_msg *in_cancels;
	uint32_t in_ncancels, in_cancel_cap;
	bool in_stop;
	struct conf *in_conf;    /* a reloaded configuration to apply (malloc'd), or NULL */
	struct capture_ack_msg *in_acks;
	uint32_t in_nacks, in_ack_cap;
	/* outbox: records { struct fetch *, uint32_t len, len bytes of JSON } for the control thread */
	pthread_mutex_t out_lock;
	struct worker_pub pub;   /* under out_lock (worker_publish) */
	int64_t pub_ns;
	struct buf out_shared;
	struct buf out_local;    /* this turn's records, moved to out_shared at the end of the turn */
	/* this worker's fetches by client slot, for cancelling */
	struct link *client_fetches;
	uint32_t client_cap;
	struct capture_acct *captures; /* by client slot (capture.c) */
	struct buf capture_scratch;
	/* connections */
	struct conn *conns;
	uint32_t conn_cap, nconns; /* slots: open ones plus closing ones waiting for their last op */
	uint32_t nopen;          /* of those, not shut down: each holds a unit of the shared budget */
	uint32_t *conn_free;
	uint32_t nconn_free;
	/* hosts */
	struct host **htab;
	uint32_t hcap, nhosts;
	/* scheduling */
	struct link ready;       /* hosts that can start a fetch now */
	struct link deferred;    /* hosts whose only idle conns went idle this turn: retried next turn */
	struct link tls_wait;    /* https hosts waiting for a handshake to end (max_handshakes) */
	uint32_t handshakes;     /* TLS handshakes in progress (connections counted from their start) */
	struct link idle_lru;    /* idle conns, least recently used first */
	struct link nobufs;      /* conns whose receive waits for a buffer */
	uint32_t inflight;       /* fetches running (holding a connection) */
	struct dns *dns;
	struct tls_config *tls_cfg; /* shared, read-only; NULL: TLS unavailable (tls_cfg_error says why) */
	const char *tls_cfg_error;
	struct lrumap *tls_sessions; /* host:port -> struct tls_session *; NULL: no resumption */
	uint8_t plain[RING_RECV_BUF_BYTES]; /* plaintext out of TLS, handled at once */
	uint8_t decoded[RING_RECV_BUF_BYTES]; /* decoded body bytes, handed on at once */
	struct waitheap waits;   /* fetches backing off (WAIT_FETCH), hosts waiting for politeness (WAIT_HOST) */
	struct lrumap *robots;   /* scheme://host:port -> robots.txt rules (robotstxt.c); NULL: not obeyed */
	size_t robots_bytes;     /* what those hold, within [politeness] robots_cache_bytes */
	char robots_token[64];   /* the product token robots.txt groups are matched with */
	struct link robots_fetches; /* internal fetches alive, by wlink (freed at the end if still there) */
	uint64_t rng;            /* xorshift state: backoff jitter, random politeness delays */
	struct fetchd_stats stats;
};

enum wait_kind { WAIT_FETCH = 1, WAIT_HOST };

/* The control thread. */
struct fetchd {
	struct conf conf;
	const char *conf_path;   /* -c FILE, re-read on SIGHUP; NULL: built-in defaults */
	bool socket_overridden;  /* -s or $FETCHD_SOCKET named the socket: the file's socket = is not used */
	uint32_t max_inflight_conf; /* max_inflight as configured, before the open-file limit clamped it */
	struct shared sh;
	struct tls_config *tls_cfg;
	char tls_cfg_error[256];
	struct worker *workers;
	uint32_t nworkers;
	struct ring ring;
	struct ring_timers timers;
	int64_t now_ns;
	int listen_fd;
	bool listen_activated;   /* listen_fd came from systemd (socket activation): never unlink it */
	struct access access;    /* who may connect ([control] allow_uids, allow_gids) */
	int reserve_fd;          /* /dev/null, kept to be closed when accept runs out of descriptors */
	bool accept_armed;
	int signal_fd;
	_Alignas(8) uint8_t siginfo[128]; /* read as a struct signalfd_siginfo: keep it aligned */
	bool signal_armed;
	int efd;                 /* = sh.control_efd: workers' results are waiting */
	uint64_t efd_val;
	bool stopping;           /* SIGTERM: draining (no new clients or URLs), then stopping */
	bool drain_over;         /* the drain time ran out: what is left was cancelled */
	int64_t stop_deadline_ns;
	struct buf results;      /* a worker's outbox, taken over for processing */
	uint32_t results_worker; /* ... the worker it came from */
	/* clients */
	struct client *clients;
	uint32_t client_cap, nclients, next_client_id;
	uint32_t *client_free;
	uint32_t nclient_free;
	struct link dirty;       /* clients with output to send or input to admit */
	uint32_t window;         /* resolved client window */
	struct fetch_opts opts_default; /* what a batch starts from: the daemon's settings */
	struct job *jobs;        /* [jobs] max_jobs of them (jobs.c) */
	struct queue *queue;     /* [queue] backend = redis (queue.c), or NULL */
	bool jobs_on;
	uint64_t wake_mask;      /* workers handed fetches this turn: wake them at its end */
	uint64_t results_sent;   /* results queued to clients since the start (STATUS=) */
	int64_t start_ns;
	uint64_t rate_ring[11];  /* results_sent at each of the last 11 seconds (TK_TICK) */
	uint32_t rate_at;
	struct fetchd_stats stats;
	/* systemd (service.c) */
	struct sdnotify notify;  /* $NOTIFY_SOCKET; off when unset */
	bool notify_failed;      /* a send failed already: later failures are logged at debug level */
	int64_t watchdog_ns;     /* ping period (half of $WATCHDOG_USEC); 0: no watchdog */
	char status[SDNOTIFY_MSG_MAX]; /* the last STATUS= sent */
};

/* engine.c: the control thread's loop */
int fetchd_init(struct fetchd *d, const struct conf *c, char *err, size_t errlen);
int fetchd_run(struct fetchd *d);
void fetchd_fini(struct fetchd *d);
void fetchd_timer(struct fetchd *d, int64_t deadline_ns, uint8_t kind, uint32_t gen, uint32_t idx);

/* service.c (control thread): systemd's notification protocol */
void service_init(struct fetchd *d);      /* read $NOTIFY_SOCKET and $WATCHDOG_USEC */
void service_ready(struct fetchd *d);     /* READY=1, then STATUS= each second and the watchdog */
void service_on_timer(struct fetchd *d, uint8_t kind); /* TK_STATUS or TK_WATCHDOG is due */
void service_stopping(struct fetchd *d);  /* STOPPING=1 */
void service_reloading(struct fetchd *d, bool done); /* RELOADING=1, then READY=1 */
void service_fini(struct fetchd *d);

/* worker.c: a worker thread and the messages to and from it */
int worker_init(struct worker *w, uint32_t id, const struct conf *c, struct shared *sh, uint32_t client_cap,
		struct tls_config *tls_cfg, const char *tls_cfg_error, char *err, size_t errlen);
int worker_start(struct worker *w);
void worker_join(struct worker *w);
void worker_fini(struct worker *w);
void worker_timer(struct worker *w, int64_t deadline_ns, uint8_t kind, uint32_t gen, uint32_t idx);
void worker_wake(struct worker *w);
/* control thread side */
void worker_submit(struct worker *w, struct fetch *f);       /* hand a fetch over (wake afterwards) */
void worker_cancel_client(struct worker *w, uint32_t idx, uint32_t gen, bool report);
void worker_stop(struct worker *w);
void worker_reconf(struct worker *w, const struct conf *c); /* reload: takes a copy of c */
void fetchd_reload(struct fetchd *d);
/* control.c, for jobs.c */
struct proto_hello;
void client_batch(struct fetchd *d, struct client *c, const struct proto_hello *h);
void client_fatal(struct fetchd *d, struct client *c, const char *msg);
void client_frame(struct client *c, uint8_t type, const char *payload, size_t len);
void client_frame_close(struct client *c);
void client_mark_dirty(struct fetchd *d, struct client *c);
void client_close(struct fetchd *d, struct client *c, const char *reason);
/* A free slot becomes an open client (fd -1: a job's or the queue's, no socket). */
void client_slot_open(struct fetchd *d, struct client *c, int fd, pid_t pid, uid_t uid);
/* control.c, for queue.c: a line of c becomes a fetch (or a result at once); seq is its number */
void client_admit_url(struct fetchd *d, struct client *c, const char *line, size_t line_len, uint32_t seq);
void client_reject_line(struct fetchd *d, struct client *c, const char *line, size_t len, const char *cls,
			const char *fmt, const char *arg, uint32_t seq);
/* Client slots: max_clients sessions, then max_jobs jobs, then the queue's (queue_client_slots). */
uint32_t fetchd_client_cap(const struct conf *c);
/* jobs.c: detached batches */
struct job;
int jobs_init(struct fetchd *d);
void jobs_fini(struct fetchd *d);
const char *jobs_id(const struct job *j);
void jobs_submit(struct fetchd *d, struct client *c, const struct proto_hello *h);
bool jobs_frame_in(struct fetchd *d, struct client *c, uint8_t type, const char *p, uint32_t len);
void jobs_abort(struct fetchd *d, struct client *c);
void jobs_feed(struct fetchd *d, struct client *c);
void jobs_flush(struct fetchd *d, struct client *c);
void jobs_collect(struct fetchd *d, struct client *c);
void jobs_client_closed(struct fetchd *d, struct client *c);
void jobs_client_freed(struct fetchd *d, struct client *c);
bool jobs_verb(struct fetchd *d, struct client *c, const struct proto_hello *h);
void info_answer(struct fetchd *d, const char *verb, struct buf *out); /* HELLO "verb": INFO's JSON */
int info_verb_known(const char *verb);
void info_tick(struct fetchd *d);         /* TK_TICK */
void worker_take_pub(struct worker *w, struct worker_pub *into);     /* SIGHUP: re-read the file, apply what can change live */
void fetchd_opts_default(const struct conf *c, struct fetch_opts *o); /* a batch's starting options */
void worker_take_results(struct worker *w, struct buf *into); /* into must be empty */
void worker_records(const struct buf *b, void (*fn)(void *, struct fetch *, const uint8_t *, uint32_t),
		    void *arg);
/* worker side */
struct result;
void worker_result(struct worker *w, struct fetch *f, const struct result *r); /* r NULL: cancelled */
void worker_reroute(struct worker *w, struct fetch *f); /* f follows a redirect: the control thread
							  hands it to the new host's worker */
#define WORKER_REROUTE UINT32_MAX  /* a record's length that means "reroute", not a result */
#define WORKER_CAPTURE 0x80000000u /* a record's length with this bit: capture bytes, not a result */
int worker_capture(struct worker *w, struct fetch *f, const uint8_t *hdr,
		   const void *p, size_t n);
void worker_capture_ack(struct worker *w, uint32_t idx, uint32_t gen, uint64_t bytes); /* control */
bool worker_budget_take(struct worker *w);   /* one unit of the open-connection budget */
void worker_budget_give(struct worker *w);
void worker_hungry(struct worker *w, bool hungry);
uint32_t worker_owner(const struct worker *w, const char *host); /* the worker a host name belongs to */

/* control.c */
int control_listen(struct fetchd *d, char *err, size_t errlen);
void control_on_cqe(struct fetchd *d, const struct ring_cqe *cqe);
void control_service(struct fetchd *d);       /* admit and flush dirty clients */
void control_results(struct fetchd *d);       /* take the workers' results */
void control_stop(struct fetchd *d);
void control_on_timer(struct fetchd *d, uint32_t idx, uint32_t gen); /* a held flush is due */
void control_accept_retry(struct fetchd *d);
void control_drain_over(struct fetchd *d); /* cancel what is left, each with a "cancelled" result */
void control_fini(struct fetchd *d);
uint32_t control_worker_of(const struct fetchd *d, const char *host); /* which worker owns a name */

/* sched.c (worker) */
int sched_init(struct worker *w);
void sched_fini(struct worker *w);
void sched_admit(struct worker *w, struct fetch *f, const struct url *u);
void sched_run(struct worker *w);
void sched_cancel(struct worker *w, struct fetch *f);   /* the client went away */
void sched_host_changed(struct worker *w, struct host *h);
void sched_dns_done(struct worker *w, struct host *h, int status, const union sockaddr_any *addrs,
		    unsigned naddrs, int64_t expires_ns);
void sched_requeue(struct worker *w, struct fetch *f);  /* back to the head of its host queue */
void sched_trim_idle(struct worker *w);  /* give budget back when other workers wait for it */
struct host *sched_host_find(struct worker *w, const struct url *u); /* NULL when not known */

/* robotstxt.c (worker): [politeness] obey_robots */
enum { ROBOTS_GO = 0, ROBOTS_WAIT, ROBOTS_DENY };
int robotstxt_init(struct worker *w, char *err, size_t errlen);
void robotstxt_fini(struct worker *w);
bool robotstxt_ua_ok(const char *user_agent); /* it has a product token to match groups with */
void robotstxt_reconf(struct worker *w);      /* the configuration changed (reload) */
/* May f be sent to h now? ROBOTS_WAIT: its robots.txt is being fetched (started here if need be);
 * ROBOTS_DENY with why. *delay_ns: the host's Crawl-delay, 0 if none. */
int robotstxt_check(struct worker *w, struct host *h, const struct fetch *f, int64_t *delay_ns, char *why,
		    size_t whylen);
void robotstxt_body(struct fetch *f, const uint8_t *p, size_t n); /* an internal fetch's body bytes */
void robotstxt_done(struct worker *w, struct fetch *f, const struct result *r);

/* conn.c (worker) */
void conn_start(struct worker *w, struct fetch *f);      /* f just left its host queue */
void conn_on_cqe(struct worker *w, const struct ring_cqe *cqe);
void conn_on_timer(struct worker *w, uint32_t idx, uint32_t gen, int64_t deadline_ns);
void conn_detach_cancel(struct worker *w, struct fetch *f); /* client gone: drop f's conn */
void conn_close(struct worker *w, struct conn *c, const char *reason);
void conn_retry_nobufs(struct worker *w);
void conn_close_idle_all(struct worker *w);
void conn_hs_end(struct worker *w, struct conn *c); /* a counted handshake ended (or its conn did) */
void conn_release(struct worker *w, struct conn *c, bool reusable);
struct conn *conn_alloc(struct worker *w);
struct conn *conn_idle_usable(const struct worker *w, struct host *h);
void conn_stop_recv(struct worker *w, struct conn *c);   /* capture: paused, stop receiving */
void conn_resume_recv(struct worker *w, struct conn *c); /* ... and receive again */

/* capture.c: a fetch's bytes for its client (HELLO "capture") */
void capture_exchange(struct worker *w, struct conn *c); /* a request was built: its exchange starts */
void capture_response(struct worker *w, struct conn *c, const uint8_t *p, size_t n); /* as received */
void capture_payload(struct conn *c, const uint8_t *p, size_t n); /* body before content decoding */
void capture_body(struct worker *w, struct conn *c, const uint8_t *p, size_t n); /* decoded body */
void capture_end(struct worker *w, struct conn *c);      /* the response is complete */
void capture_check(struct worker *w, struct conn *c);    /* pause c if its client is over the window */
void capture_forget(struct conn *c);                     /* c leaves its fetch: unpause quietly */
void capture_ack(struct worker *w, uint32_t idx, uint32_t gen, uint64_t bytes);

/* fetch.c (worker): the end of a fetch, as a result for the control thread */
void fetch_fail(struct worker *w, struct fetch *f, const char *cls, const char *phase, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void fetch_succeed(struct worker *w, struct fetch *f, struct conn *c);
/* f's response is complete on c: its result, or a redirect followed (f then leaves c and this worker). */
void fetch_response(struct worker *w, struct fetch *f, struct conn *c);
void fetch_set_state(struct fetch *f, enum fetch_state s);
void fetch_retry_due(struct worker *w, struct fetch *f); /* its backoff is over: queue it again */
uint64_t worker_random(struct worker *w);
void fetch_free(struct fetch *f);
void fetch_cancelled(struct worker *w, struct fetch *f); /* its result: class "cancelled" (drain) */  /* with what redirects added to it (either thread, once) */

/* dns.c (worker) */
int dns_init(struct worker *w, char *err, size_t errlen);
void dns_fini(struct worker *w);
void dns_resolve(struct worker *w, struct host *h);
void dns_on_cqe(struct worker *w, const struct ring_cqe *cqe);
void dns_on_timer(struct worker *w, int64_t deadline_ns);
const char *dns_strerror(int status);

#endif

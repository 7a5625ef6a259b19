/* fetchctl.c - the fetchd client. `fetchctl submit FILE|-` streams URLs (one per line; blank lines and
 * # comments skipped) to the daemon while results stream back, and writes each result line to stdout
 * unchanged, in completion order. Speaks only the control protocol of daemon/protocol.h. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/protocol.h"
#include "tools/resultline.h"
#include "tools/store.h"
#include "tools/urlset.h"
#include "tools/redisctl.h"
#include "tools/verbs.h"
#include "tools/view.h"

#define EXIT_OK 0
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define EXIT_LOST 4
#define EXIT_FAILURES 5

#define URLS_FRAME_BYTES 65536 /* payload of one URLS frame we send */
#define PROGRESS_EVERY_NS 200000000LL /* redraw the progress line at most this often */
#define MAX_CLASSES 32
#define MAX_STATUSES 64

struct bytes {
	uint8_t *p;
	size_t len, cap;
};

struct counts {
	uint64_t results, ok, failed;
	int status_code[MAX_STATUSES];
	uint64_t status_n[MAX_STATUSES];
	char class_name[MAX_CLASSES][24];
	uint64_t class_n[MAX_CLASSES];
};

struct session {
	int fd;
	FILE *in;
	bool in_eof, end_sent, welcomed, done;
	int send_failed;    /* errno of a send fetchd refused (its ERROR may still be readable) */
	uint64_t submitted;
	struct bytes out;   /* frames to send */
	size_t out_off;
	struct bytes frame; /* URLS payload being filled */
	struct bytes rx;    /* bytes from the daemon */
	struct counts n;
	struct view view;   /* how results are shown, and where */
	struct urlset done_urls; /* --resume: URLs that already have a result */
	uint64_t skipped;   /* input URLs skipped for that */
	uint64_t total;     /* URLs in the input, when known up front (a regular file); else 0 */
	uint64_t body_bytes;
	bool progress;
	int64_t progress_at_ns, t0_ns;
	struct store *store;  /* --warc, --output-dir: what is kept besides the result lines */
	bool paths;           /* --output-dir: result lines get "path" */
	struct bytes line;    /* a result line with its "path" */
	bool detach;          /* submit --detach: the daemon keeps the results for `results JOB` */
	char job[40];         /* ... the job's id, from WELCOME */
	uint64_t job_urls;    /* ... and the URLs it took, from DONE */
};

static bool progress_drawn; /* the progress line is on stderr now: clear it before other output */

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(progress_drawn ? "\r\033[Kfetchctl: " : "fetchctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(code);
}

static void bytes_add(struct bytes *b, const void *p, size_t n)
{
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len < n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			die(1, "out of memory");
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void frame_out(struct session *s, uint8_t type, const void *payload, size_t len)
{
	uint8_t hdr[FETCHD_FRAME_HDR_BYTES];
	fetchd_frame_hdr(hdr, (uint32_t)len, type);
	bytes_add(&s->out, hdr, sizeof(hdr));
	bytes_add(&s->out, payload, len);
}

static void flush_urls(struct session *s)
{
	if (s->frame.len == 0)
		return;
	frame_out(s, FETCHD_FR_URLS, s->frame.p, s->frame.len);
	s->frame.len = 0;
}

/* Trim ASCII whitespace; return false for lines that carry no URL. */
bool fetchctl_clean_line(char **line, size_t *len)
{
	char *p = *line;
	size_t n = *len;
	while (n && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	while (n && (*p == ' ' || *p == '\t'))
		p++, n--;
	*line = p, *len = n;
	return n > 0 && *p != '#';
}

/* An indented "key=value" line is an option for the URL above it (as in aria2's input files); any other
 * line is a URL, so plain lists (indented or not) read as before. */
bool fetchctl_option_line(const char *raw, const char *p, size_t n)
{
	if (p == raw)
		return false; /* not indented */
	size_t k = 0;
	while (k < n && ((p[k] >= 'a' && p[k] <= 'z') || p[k] == '_'))
		k++;
	return k > 0 && k < n && p[k] == '=';
}

/* Read input lines into URLS frames until the send buffer holds enough or the input ends. A URL waits
 * in pending until the lines after it show whether options follow. */
static char *input_line; /* getline's buffer */
static size_t line_cap;
static struct bytes pending;
static uint64_t line_no;

static void pending_flush(struct session *s)
{
	if (pending.len == 0)
		return;
	const char *tab = memchr(pending.p, '\t', pending.len);
	if (s->done_urls.n && urlset_has(&s->done_urls, (const char *)pending.p,
					 tab ? (size_t)(tab - (const char *)pending.p) : pending.len)) {
		pending.len = 0; /* --resume: it has its result already */
		s->skipped++;
		return;
	}
	if (pending.len > FETCHD_FRAME_MAX_BYTES - 1)
		pending.len = FETCHD_FRAME_MAX_BYTES - 1; /* the daemon reports it as too long */
	if (s->frame.len + pending.len + 1 > URLS_FRAME_BYTES)
		flush_urls(s);
	bytes_add(&s->frame, pending.p, pending.len);
	bytes_add(&s->frame, "\n", 1);
	pending.len = 0;
	s->submitted++;
}

static void fill_input(struct session *s)
{
	if (!s->in) { /* results JOB: nothing to send */
		s->in_eof = s->end_sent = true;
		return;
	}
	while (!s->in_eof && s->out.len - s->out_off < 4 * URLS_FRAME_BYTES) {
		ssize_t r = getline(&input_line, &line_cap, s->in);
		if (r < 0) {
			if (ferror(s->in))
				die(EXIT_USAGE, "reading the URL list: %s", strerror(errno));
			s->in_eof = true;
			break;
		}
		line_no++;
		char *p = input_line;
		size_t n = (size_t)r;
		if (!fetchctl_clean_line(&p, &n))
			continue;
		if (fetchctl_option_line(input_line, p, n)) {
			if (pending.len == 0)
				die(EXIT_USAGE, "line %llu: option '%.*s' before any URL", (unsigned long long)line_no,
				    (int)(n > 60 ? 60 : n), p);
			if (memchr(p, '\t', n))
				die(EXIT_USAGE, "line %llu: an option value cannot hold a tab", (unsigned long long)line_no);
			bytes_add(&pending, "\t", 1);
			bytes_add(&pending, p, n);
			continue;
		}
		pending_flush(s);
		bytes_add(&pending, p, n);
	}
	if (s->in_eof)
		pending_flush(s);
	flush_urls(s);
	if (s->in_eof && !s->end_sent) {
		frame_out(s, FETCHD_FR_END, "", 0);
		s->end_sent = true;
	}
}

/* s as the inside of a JSON string. */
static void json_escape(struct bytes *b, const char *str)
{
	for (; *str; str++) {
		unsigned char c = (unsigned char)*str;
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\', esc[1] = (char)c;
			bytes_add(b, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			bytes_add(b, esc, 6);
		} else {
			bytes_add(b, str, 1);
		}
	}
}

/* One batch option from the command line: "key=value", joined to the others by tabs. */
static void add_option(struct bytes *opts, const char *key, const char *value)
{
	if (strchr(value, '\t'))
		die(EXIT_USAGE, "option %s: a value cannot hold a tab", key);
	if (opts->len)
		bytes_add(opts, "\t", 1);
	bytes_add(opts, key, strlen(key));
	if (value[0] || !strchr(key, '='))
		bytes_add(opts, "=", 1);
	bytes_add(opts, value, strlen(value));
}

static void count_status(struct counts *n, int code)
{
	for (int i = 0; i < MAX_STATUSES; i++) {
		if (n->status_n[i] && n->status_code[i] == code) {
			n->status_n[i]++;
			return;
		}
		if (!n->status_n[i]) {
			n->status_code[i] = code;
			n->status_n[i] = 1;
			return;
		}
	}
}

static void count_class(struct counts *n, const char *cls, size_t len)
{
	if (len >= sizeof(n->class_name[0]))
		len = sizeof(n->class_name[0]) - 1;
	for (int i = 0; i < MAX_CLASSES; i++) {
		if (n->class_n[i] && strncmp(n->class_name[i], cls, len) == 0 && n->class_name[i][len] == 0) {
			n->class_n[i]++;
			return;
		}
		if (!n->class_n[i]) {
			memcpy(n->class_name[i], cls, len);
			n->class_name[i][len] = 0;
			n->class_n[i] = 1;
			return;
		}
	}
}

/* Tally one result line. The daemon writes keys in a fixed order and escapes quotes inside strings,
 * so "error": can only be the key itself, and the top-level "status" is the one right after the
 * "redirects" list (whose entries carry statuses of their own). */
static void tally(struct counts *n, const char *line, size_t len)
{
	n->results++;
	const char *st = memmem(line, len, "],\"status\":", 11);
	const char *er = memmem(line, len, "\"error\":", 8);
	if (st && st + 11 < line + len && st[11] >= '0' && st[11] <= '9')
		count_status(n, atoi(st + 11));
	if (er && (er + 12 > line + len || strncmp(er + 8, "null", 4) != 0)) {
		n->failed++;
		const char *c = memmem(er, len - (size_t)(er - line), "\"class\":\"", 9);
		const char *e = c ? memchr(c + 9, '"', len - (size_t)(c + 9 - line)) : NULL;
		if (c && e)
			count_class(n, c + 9, (size_t)(e - (c + 9)));
	} else {
		n->ok++;
	}
}

static void progress_clear(struct session *s);

/* --warc, --output-dir: the result line keeps its fetch's records and body; with --output-dir it
 * gets "path" (the body's file, or null). Returns the line to show. */
static const char *store_line(struct session *s, const char *line, size_t *n)
{
	const char *path;
	char err[512];
	int rc = store_result(s->store, line, *n, &path, err, sizeof(err));
	if (rc < 0)
		die(1, "%s", err);
	if (rc > 0)
		fprintf(stderr, "fetchctl: warning: %s: body not kept\n", err);
	if (!s->paths || *n < 2 || line[*n - 1] != '}')
		return line;
	s->line.len = 0;
	bytes_add(&s->line, line, *n - 1);
	if (path) {
		bytes_add(&s->line, ",\"path\":\"", 9);
		json_escape(&s->line, path);
		bytes_add(&s->line, "\"}", 2);
	} else {
		bytes_add(&s->line, ",\"path\":null}", 13);
	}
	*n = s->line.len;
	return (const char *)s->line.p;
}

static void on_results(struct session *s, const uint8_t *p, uint32_t len)
{
	const char *next = (const char *)p, *end = next + len;
	progress_clear(s); /* a human view may share the terminal with the progress line */
	while (next < end) {
		const char *nl = memchr(next, '\n', (size_t)(end - next));
		size_t n = nl ? (size_t)(nl - next) : (size_t)(end - next);
		const char *line = s->store ? store_line(s, next, &n) : next;
		next += (nl ? (size_t)(nl - next) : (size_t)(end - next)) + 1;
		struct rl_val v;
		tally(&s->n, line, n);
		if (rl_get(line, n, "body_bytes", &v) && v.type == RL_NUMBER)
			s->body_bytes += strtoull(v.p, NULL, 10);
		view_result(&s->view, line, n);
	}
	if (ferror(s->view.out))
		die(1, "writing results: %s", strerror(errno));
}

/* ---- progress: a live line on stderr (a terminal) -------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void progress_clear(struct session *s)
{
	(void)s;
	if (progress_drawn)
		fputs("\r\033[K", stderr);
	progress_drawn = false;
}

static void human_bytes(uint64_t b, char *out, size_t cap)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int u = 0;
	while (v >= 1024 && u < 4)
		v /= 1024, u++;
	snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

/* "1234/5000 done  812/s  in flight 256  errors: timeout 3, dns 1  12.3 MiB  ETA 0:05" */
static void progress_draw(struct session *s, bool force)
{
	int64_t t = now_ns();
	if (!s->progress || (!force && t - s->progress_at_ns < PROGRESS_EVERY_NS))
		return;
	s->progress_at_ns = t;
	double secs = (double)(t - s->t0_ns) / 1e9, rate = secs > 0 ? (double)s->n.results / secs : 0;
	char total[32] = "", errs[160] = "", bytes[32], eta[32] = "";
	if (s->total)
		snprintf(total, sizeof(total), "/%llu", (unsigned long long)(s->total - s->skipped));
	size_t at = 0;
	for (int i = 0; i < MAX_CLASSES && s->n.class_n[i] && i < 4 && at < sizeof(errs); i++)
		at += (size_t)snprintf(errs + at, sizeof(errs) - at, "%s%s %llu", i ? ", " : "  errors: ",
				       s->n.class_name[i], (unsigned long long)s->n.class_n[i]);
	human_bytes(s->body_bytes, bytes, sizeof(bytes));
	if (s->total && rate > 0 && s->total - s->skipped > s->n.results) {
		uint64_t left = (uint64_t)((double)(s->total - s->skipped - s->n.results) / rate);
		snprintf(eta, sizeof(eta), "  ETA %llu:%02llu", (unsigned long long)(left / 60),
			 (unsigned long long)(left % 60));
	}
	fprintf(stderr, "\r\033[K%llu%s done  %.0f/s  in flight %llu%s  %s%s", (unsigned long long)s->n.results,
		total, rate, (unsigned long long)(s->submitted - s->n.results), errs, bytes, eta);
	fflush(stderr);
	progress_drawn = true;
}

static void on_frame(struct session *s, uint8_t type, const uint8_t *p, uint32_t len)
{
	switch (type) {
	case FETCHD_FR_WELCOME: {
		struct rl_val v;
		s->welcomed = true;
		if (rl_get((const char *)p, len, "job", &v) && v.type == RL_STRING)
			rl_text(&v, s->job, sizeof(s->job));
		break;
	}
	case FETCHD_FR_RESULTS:
		on_results(s, p, len);
		break;
	case FETCHD_FR_DONE: {
		struct rl_val v;
		s->done = true;
		if (s->detach && rl_get((const char *)p, len, "urls", &v) && v.type == RL_NUMBER)
			s->job_urls = strtoull(v.p, NULL, 10);
		break;
	}
	case FETCHD_FR_CAPTURE: {
		char err[512];
		if (!s->store)
			die(EXIT_LOST, "fetchd sent a CAPTURE frame that was not asked for");
		if (store_frame(s->store, p, len, err, sizeof(err)) < 0)
			die(1, "%s", err);
		break;
	}
	case FETCHD_FR_ERROR:
		fflush(s->view.out);
		die(EXIT_LOST, "fetchd refused the batch: %.*s", (int)len, (const char *)p);
	default:
		die(EXIT_LOST, "unexpected frame type 0x%02x from fetchd", type);
	}
}

static void read_frames(struct session *s)
{
	size_t off = 0;
	while (s->rx.len - off >= FETCHD_FRAME_HDR_BYTES) {
		uint32_t len = fetchd_frame_len(s->rx.p + off);
		if (len > FETCHD_FRAME_MAX_BYTES)
			die(EXIT_LOST, "fetchd sent a frame of %u bytes: not the fetchd protocol", len);
		if (s->rx.len - off < FETCHD_FRAME_HDR_BYTES + (size_t)len)
			break;
		on_frame(s, s->rx.p[off + 4], s->rx.p + off + FETCHD_FRAME_HDR_BYTES, len);
		off += FETCHD_FRAME_HDR_BYTES + len;
	}
	/* Results stream: a reader sees them as they arrive, one write per batch received. */
	if (fflush(s->view.out) != 0)
		die(1, "writing results: %s", strerror(errno));
	memmove(s->rx.p, s->rx.p + off, s->rx.len - off);
	s->rx.len -= off;
}

static int connect_daemon(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun.sun_path))
		die(EXIT_USAGE, "socket path too long: %s", path);
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		die(EXIT_UNREACHABLE, "cannot reach fetchd at %s: %s (is fetchd running? see -s or $FETCHD_SOCKET)",
		    path, strerror(errno));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static void pump(struct session *s)
{
	while (!s->done) {
		fill_input(s);
		struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
		if (s->out.len > s->out_off)
			pfd.events |= POLLOUT;
		progress_draw(s, false);
		if (poll(&pfd, 1, s->progress ? (int)(PROGRESS_EVERY_NS / 1000000) : -1) < 0) {
			if (errno == EINTR)
				continue;
			die(1, "poll: %s", strerror(errno));
		}
		if (pfd.revents & POLLOUT) {
			ssize_t w = send(s->fd, s->out.p + s->out_off, s->out.len - s->out_off, MSG_NOSIGNAL);
			if (w < 0 && (errno == EPIPE || errno == ECONNRESET)) {
				/* fetchd closed its end, most likely after an ERROR frame: stop sending and
				 * read what it said. */
				s->send_failed = errno;
				s->out.len = s->out_off = 0;
				s->in_eof = s->end_sent = true;
				continue;
			}
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				die(EXIT_LOST, "sending to fetchd: %s", strerror(errno));
			if (w > 0)
				s->out_off += (size_t)w;
			/* Drop what was sent, so the buffer never holds more than a few frames of the batch. */
			memmove(s->out.p, s->out.p + s->out_off, s->out.len - s->out_off);
			s->out.len -= s->out_off;
			s->out_off = 0;
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			static uint8_t tmp[262144];
			ssize_t r = recv(s->fd, tmp, sizeof(tmp), 0);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				fflush(s->view.out);
				die(EXIT_LOST, "fetchd closed the connection after %llu of %llu results%s%s%s",
				    (unsigned long long)s->n.results, (unsigned long long)s->submitted,
				    s->send_failed ? " (sending: " : "", s->send_failed ? strerror(s->send_failed) : "",
				    s->send_failed ? ")" : "");
			}
			if (r > 0) {
				bytes_add(&s->rx, tmp, (size_t)r);
				read_frames(s);
			}
		}
	}
}

static void summary(const struct session *s, double secs)
{
	const struct counts *n = &s->n;
	fprintf(stderr, "fetchctl: %llu URLs in %.2f s (%.0f/s): %llu with an HTTP response, %llu failed\n",
		(unsigned long long)n->results, secs, secs > 0 ? (double)n->results / secs : 0.0,
		(unsigned long long)n->ok, (unsigned long long)n->failed);
	for (int i = 0; i < MAX_STATUSES && n->status_n[i]; i++)
		fprintf(stderr, "  status %d: %llu\n", n->status_code[i], (unsigned long long)n->status_n[i]);
	for (int i = 0; i < MAX_CLASSES && n->class_n[i]; i++)
		fprintf(stderr, "  error %s: %llu\n", n->class_name[i], (unsigned long long)n->class_n[i]);
}

static struct session *session;

static void session_free(void)
{
	store_close(session->store, NULL, 0); /* an exit on an error: drop what is in progress */
	free(session->line.p);
	free(session->out.p);
	free(session->frame.p);
	free(session->rx.p);
	free(input_line);
	free(pending.p);
	urlset_free(&session->done_urls);
	if (session->view.out && session->view.out != stdout)
		fclose(session->view.out);
	if (session->in && session->in != stdin)
		fclose(session->in);
	if (session->fd > 0)
		close(session->fd);
}

/* --resume FILE: the url of every complete result line in FILE. A last line cut short (the job died
 * while writing it) has no '\n' and does not count. */
static void load_resume(struct session *s, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return; /* nothing done yet */
		die(EXIT_USAGE, "cannot open %s: %s", path, strerror(errno));
	}
	char *line = NULL, url[FETCHD_FRAME_MAX_BYTES];
	size_t cap = 0;
	ssize_t r;
	while ((r = getline(&line, &cap, f)) > 0) {
		struct rl_val v;
		if (line[r - 1] != '\n' || !rl_get(line, (size_t)r - 1, "url", &v) || v.type != RL_STRING)
			continue;
		size_t n = rl_text(&v, url, sizeof(url));
		if (urlset_add(&s->done_urls, url, n) < 0)
			die(1, "out of memory reading %s", path);
	}
	free(line);
	fclose(f);
}

/* Results appended to path: first cut a last line that was left incomplete. */
static FILE *open_append(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		die(EXIT_USAGE, "cannot open %s: %s", path, strerror(errno));
	off_t end = lseek(fd, 0, SEEK_END), keep = end;
	char c;
	while (keep > 0 && pread(fd, &c, 1, keep - 1) == 1 && c != '\n')
		keep--;
	if (keep != end && ftruncate(fd, keep) < 0)
		die(1, "cannot cut the incomplete last line of %s: %s", path, strerror(errno));
	lseek(fd, 0, SEEK_END);
	FILE *f = fdopen(fd, "a");
	if (!f)
		die(1, "fdopen: %s", strerror(errno));
	return f;
}

/* The URLs in a regular input file (for the progress line's total and ETA), counted as fill_input
 * reads them; 0 for a pipe or a terminal. */
static uint64_t count_urls(FILE *in)
{
	struct stat st;
	if (fstat(fileno(in), &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	char *line = NULL;
	size_t cap = 0;
	uint64_t n = 0;
	ssize_t r;
	while ((r = getline(&line, &cap, in)) >= 0) {
		char *p = line;
		size_t len = (size_t)r;
		if (fetchctl_clean_line(&p, &len) && !fetchctl_option_line(line, p, len))
			n++;
	}
	free(line);
	rewind(in);
	return n;
}

/* "10M", "1G", "4096": bytes (K, M, G, T are powers of 1024). */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned shift = 0;
	if (end == s || errno || *s == '-')
		return -1;
	if (*end) {
		const char *units = "KMGT", *u = strchr(units, *end & ~0x20);
		if (!u || !*u || (end[1] && strcasecmp(end + 1, "iB") && strcasecmp(end + 1, "B")))
			return -1;
		shift = 10 * (unsigned)(u - units + 1);
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* The soft open-file limit up to the hard one: --warc and --output-dir hold files per fetch. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void usage(FILE *out)
{
	fprintf(out, "usage: fetchctl [-s SOCKET] [-q] [--no-hash] [BATCH OPTIONS] submit FILE|-\n"
		     "       fetchctl [-s SOCKET] [--json] ping|stats|version|jobs\n"
		     "       fetchctl [-s SOCKET] [--json] status|cancel JOB\n"
		     "       fetchctl [-s SOCKET] [RESULT OPTIONS] results JOB\n"
		     "       fetchctl --redis URL [--stream S] [--json] enqueue FILE|-\n"
		     "       fetchctl --redis URL [--stream S] [--dead] [--group G] [--consumer C] [--follow]\n"
		     "                [--count N] [--keep] drain\n"
		     "       fetchctl -V\n"
		     "  submit FILE  fetch every URL in FILE (one per line; '-' reads stdin); one JSON result per\n"
		     "               URL on stdout as each completes, a summary on stderr. An indented\n"
		     "               key=value line under a URL is an option for that URL alone.\n"
		     "  -s SOCKET    fetchd's control socket (default: $FETCHD_SOCKET, else %s)\n"
		     "  --detach     submit: hand the batch over as a job and return; prints the job id\n"
		     "  results JOB  stream a job's results (following it while it runs); the job is then removed\n"
		     "  jobs         your jobs; status JOB: one; cancel JOB: stop it (or remove a finished one)\n"
		     "  ping         is fetchd there: its version, pid and uptime\n"
		     "  stats        fetchd's load, rates, caches, errors by class and memory\n"
		     "  version      fetchctl's version and fetchd's\n"
		     "  --json       ping, stats, version: the daemon's JSON object instead of lines for people\n"
		     "shared crawls (Redis Streams, docs/scaling.md):\n"
		     "  enqueue FILE  each URL of FILE (with its options) becomes an entry of the input stream\n"
		     "  drain        print the results stream (JSON Lines), acknowledging and deleting each entry\n"
		     "  --redis URL  redis://[[user]:password@]host[:port][/db]\n"
		     "  --stream S   enqueue: default fetchd:urls; drain: default fetchd:results (fetchd:dead with --dead)\n"
		     "  --dead       drain the dead stream: entries given up on, with why\n"
		     "  --group G, --consumer C  drain's consumer group and name (default fetchctl, fetchctl)\n"
		     "  --follow     drain: wait for more until interrupted;  --count N: stop after N lines\n"
		     "  --keep       drain: acknowledge but do not delete\n"
		     "  -q           no summary\n"
		     "  --no-hash    do not hash bodies (body_sha256 is null): saves CPU on large bodies\n"
		     "batch options (every URL; a URL's own options win):\n"
		     "  -o, --option KEY=VALUE  any option of docs/protocol.md (repeatable)\n"
		     "  -X, --request METHOD    GET or HEAD      -I, --head  the same as -X HEAD\n"
		     "  -H, --header 'N: V'     extra request header (repeatable; 'N:' drops fetchd's own)\n"
		     "  -A, --user-agent UA     User-Agent       --no-follow  do not follow redirects\n"
		     "  --max-redirects N       --retries N      --no-decode  no gzip/deflate decoding\n"
		     "  -m, --timeout MS        total time per request (timeout_ms)\n"
		     "results:\n"
		     "  --format jsonl|tsv|human  JSON Lines (default), TSV (--fields), or a line per URL for\n"
		     "                          people (default when stdout is a terminal)\n"
		     "  --fields A,B,...        TSV columns: result keys, dotted for nested ones (error.class,\n"
		     "                          timings_ms.total); default url,status,error.class,body_bytes,\n"
		     "                          timings_ms.total,final_url\n"
		     "  --output FILE           results to FILE instead of stdout (appended with --resume FILE)\n"
		     "  --resume FILE           skip URLs that already have a result line in FILE\n"
		     "  --progress, --no-progress  the live line on stderr (default: on when stderr is a\n"
		     "                          terminal and -q is not given)\n"
		     "what is kept:\n"
		     "  --warc FILE             WARC 1.1 records of every request and response (FILE.gz:\n"
		     "                          gzip, a member per record); a failed URL gets a metadata record\n"
		     "  --warc-max-bytes SIZE   roll to FILE-00000.warc.gz, -00001, ... past SIZE (K, M, G)\n"
		     "  --output-dir DIR        each body in DIR/HOST/PATH (collision-safe; \"path\" in results)\n"
		     "exit: 0 every URL got an HTTP response, 5 some failed, 3 fetchd unreachable,\n"
		     "      4 fetchd refused the batch or went away, 2 usage\n",
		     FETCHD_DEFAULT_SOCKET);
}

/* Where results go and in which form: human lines on a terminal, JSON Lines elsewhere. */
static void setup_view(struct session *s, const char *format, const char *fields, const char *output,
		       const char *resume)
{
	static char obuf[1 << 20];
	char err[160];
	s->view.out = stdout;
	if (output)
		s->view.out = resume && !strcmp(output, resume) ? open_append(output) : fopen(output, "w");
	if (!s->view.out)
		die(EXIT_USAGE, "cannot write %s: %s", output, strerror(errno));
	setvbuf(s->view.out, obuf, _IOFBF, sizeof(obuf));
	int f = format ? view_format_of(format) : (!output && isatty(STDOUT_FILENO)) ? VIEW_HUMAN : VIEW_JSONL;
	if (f < 0)
		die(EXIT_USAGE, "--format must be jsonl, tsv or human, not '%s'", format);
	s->view.format = (enum view_format)f;
	if (fields && (s->view.format != VIEW_TSV || view_set_fields(&s->view, fields, err, sizeof(err)) < 0))
		die(EXIT_USAGE, "%s", s->view.format != VIEW_TSV ? "--fields needs --format tsv" : err);
	view_begin(&s->view);
}

/* enqueue FILE|- and drain: Redis, not fetchd. */
static int redis_verb(const char *verb, const char *redis, const char *stream, struct redisctl_drain *drain,
		      const char *file, int nargs, bool json, bool quiet)
{
	bool enqueue = !strcmp(verb, "enqueue");
	if (!redis || !*redis)
		die(EXIT_USAGE, "%s needs --redis redis://HOST[:PORT][/DB]", verb);
	if (nargs != (enqueue ? 2 : 1))
		die(EXIT_USAGE, enqueue ? "usage: fetchctl --redis URL enqueue FILE|-" : "usage: fetchctl --redis URL drain");
	if (!enqueue) {
		drain->stream = stream ? stream : drain->dead ? "fetchd:dead" : "fetchd:results";
		drain->quiet = quiet;
		return redisctl_drain(redis, drain);
	}
	FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	if (!in)
		die(EXIT_USAGE, "cannot open %s: %s", file, strerror(errno));
	int rc = redisctl_enqueue(redis, stream ? stream : "fetchd:urls", in, json, quiet);
	if (in != stdin)
		fclose(in);
	return rc;
}

int main(int argc, char **argv)
{
	const char *sock = getenv("FETCHD_SOCKET");
	bool quiet = false, hash = true;
	static struct bytes opts;
	enum { O_DETACH = 250, O_NO_HASH = 256, O_NO_FOLLOW, O_MAX_REDIRECTS, O_RETRIES, O_NO_DECODE, O_FORMAT, O_FIELDS, O_OUTPUT,
	       O_RESUME, O_PROGRESS, O_NO_PROGRESS, O_WARC, O_WARC_MAX, O_OUTPUT_DIR, O_JSON, O_REDIS, O_STREAM,
	       O_DEAD, O_GROUP, O_CONSUMER, O_FOLLOW, O_COUNT, O_KEEP };
	const char *redis = NULL, *stream = NULL;
	struct redisctl_drain drain = { .group = "fetchctl", .consumer = "fetchctl" };
	bool json = false, detach = false;
	const char *format = NULL, *fields = NULL, *output = NULL, *resume = NULL, *warc = NULL, *dir = NULL;
	uint64_t warc_max = 0;
	int progress = -1;
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },  { "quiet", no_argument, NULL, 'q' },
		{ "no-hash", no_argument, NULL, O_NO_HASH }, { "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },          { "option", required_argument, NULL, 'o' },
		{ "request", required_argument, NULL, 'X' }, { "head", no_argument, NULL, 'I' },
		{ "header", required_argument, NULL, 'H' },  { "user-agent", required_argument, NULL, 'A' },
		{ "no-follow", no_argument, NULL, O_NO_FOLLOW },
		{ "max-redirects", required_argument, NULL, O_MAX_REDIRECTS },
		{ "retries", required_argument, NULL, O_RETRIES }, { "no-decode", no_argument, NULL, O_NO_DECODE },
		{ "timeout", required_argument, NULL, 'm' }, { "format", required_argument, NULL, O_FORMAT },
		{ "fields", required_argument, NULL, O_FIELDS }, { "output", required_argument, NULL, O_OUTPUT },
		{ "resume", required_argument, NULL, O_RESUME }, { "progress", no_argument, NULL, O_PROGRESS },
		{ "no-progress", no_argument, NULL, O_NO_PROGRESS }, { "warc", required_argument, NULL, O_WARC },
		{ "warc-max-bytes", required_argument, NULL, O_WARC_MAX },
		{ "output-dir", required_argument, NULL, O_OUTPUT_DIR }, { "json", no_argument, NULL, O_JSON },
		{ "detach", no_argument, NULL, O_DETACH },
		{ "redis", required_argument, NULL, O_REDIS }, { "stream", required_argument, NULL, O_STREAM },
		{ "results-stream", required_argument, NULL, O_STREAM }, { "dead", no_argument, NULL, O_DEAD },
		{ "group", required_argument, NULL, O_GROUP }, { "consumer", required_argument, NULL, O_CONSUMER },
		{ "follow", no_argument, NULL, O_FOLLOW }, { "count", required_argument, NULL, O_COUNT },
		{ "keep", no_argument, NULL, O_KEEP },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "s:qVho:X:IH:A:m:", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': sock = optarg; break;
		case 'q': quiet = true; break;
		case O_NO_HASH: hash = false; break;
		case 'o':
			if (!strchr(optarg, '='))
				die(EXIT_USAGE, "-o needs KEY=VALUE, not '%s'", optarg);
			add_option(&opts, optarg, "");
			break;
		case 'X': add_option(&opts, "method", optarg); break;
		case 'I': add_option(&opts, "method", "HEAD"); break;
		case 'H': add_option(&opts, "header", optarg); break;
		case 'A': add_option(&opts, "user_agent", optarg); break;
		case 'm': add_option(&opts, "timeout_ms", optarg); break;
		case O_NO_FOLLOW: add_option(&opts, "follow", "no"); break;
		case O_MAX_REDIRECTS: add_option(&opts, "max_redirects", optarg); break;
		case O_RETRIES: add_option(&opts, "retries", optarg); break;
		case O_NO_DECODE: add_option(&opts, "decode", "no"); break;
		case O_FORMAT: format = optarg; break;
		case O_FIELDS: fields = optarg; break;
		case O_OUTPUT: output = optarg; break;
		case O_RESUME: resume = optarg; break;
		case O_PROGRESS: progress = 1; break;
		case O_NO_PROGRESS: progress = 0; break;
		case O_WARC: warc = optarg; break;
		case O_WARC_MAX:
			if (parse_size(optarg, &warc_max) < 0)
				die(EXIT_USAGE, "--warc-max-bytes needs a size (bytes, or with K, M or G), not '%s'", optarg);
			break;
		case O_OUTPUT_DIR: dir = optarg; break;
		case O_JSON: json = true; break;
		case O_DETACH: detach = true; break;
		case O_REDIS: redis = optarg; break;
		case O_STREAM: stream = optarg; break;
		case O_DEAD: drain.dead = true; break;
		case O_GROUP: drain.group = optarg; break;
		case O_CONSUMER: drain.consumer = optarg; break;
		case O_FOLLOW: drain.follow = true; break;
		case O_KEEP: drain.keep = true; break;
		case O_COUNT:
			if (parse_size(optarg, &drain.count) < 0 || !drain.count)
				die(EXIT_USAGE, "--count needs a number above 0, not '%s'", optarg);
			break;
		case 'V': printf("fetchctl %s\n", FETCHD_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (!sock || !*sock)
		sock = FETCHD_DEFAULT_SOCKET;
	const char *verb = argc > optind ? argv[optind] : "";
	if (verb_known(verb) && argc - optind == 1 + verb_wants_job(verb))
		return verb_run(sock, verb, argc - optind == 2 ? argv[optind + 1] : NULL, json);
	if (!strcmp(verb, "enqueue") || !strcmp(verb, "drain"))
		return redis_verb(verb, redis, stream, &drain, argc - optind == 2 ? argv[optind + 1] : NULL,
				  argc - optind, json, quiet);
	if (redis)
		die(EXIT_USAGE, "--redis goes with enqueue and drain");
	bool results = !strcmp(verb, "results");
	if (argc - optind != 2 || (strcmp(verb, "submit") && !results)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (detach && (results || warc || dir || resume))
		die(EXIT_USAGE, "--detach goes with submit, without --warc, --output-dir or --resume");
	signal(SIGPIPE, SIG_IGN);
	static struct session s;
	session = &s;
	atexit(session_free); /* every exit, die() included, leaves nothing behind for leak checkers */
	const char *file = argv[optind + 1];
	s.detach = detach;
	if (!results) {
		s.in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
		if (!s.in)
			die(EXIT_USAGE, "cannot open %s: %s", file, strerror(errno));
	} else if (warc || dir || resume) {
		die(EXIT_USAGE, "results JOB takes the result options only (no --warc, --output-dir or --resume)");
	}
	if (warc_max && !warc)
		die(EXIT_USAGE, "--warc-max-bytes needs --warc FILE");
	setup_view(&s, format, fields, output, resume);
	if (warc || dir) {
		char err[512];
		raise_nofile(); /* a spool file and a body file per fetch in flight, at worst */
		if (store_open(&s.store, warc, warc_max, dir, err, sizeof(err)) < 0)
			die(EXIT_USAGE, "%s", err);
		s.paths = dir != NULL;
	}
	if (resume)
		load_resume(&s, resume);
	s.progress = progress == 1 || (progress == -1 && !quiet && isatty(STDERR_FILENO));
	if (s.progress && s.in)
		s.total = count_urls(s.in);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	s.t0_ns = now_ns();
	s.fd = connect_daemon(sock);
	char head[128];
	int n = snprintf(head, sizeof(head), "{\"protocol\":%d,\"client\":\"fetchctl/%s\",\"hash\":%s",
			 FETCHD_PROTO_VERSION, FETCHD_VERSION, hash ? "true" : "false");
	struct bytes hello = { 0 };
	bytes_add(&hello, head, (size_t)n);
	if (opts.len) {
		bytes_add(&opts, "", 1); /* NUL for json_escape */
		bytes_add(&hello, ",\"options\":\"", 12);
		json_escape(&hello, (const char *)opts.p);
		bytes_add(&hello, "\"", 1);
	}
	if (s.store) {
		bytes_add(&hello, ",\"capture\":\"", 12);
		json_escape(&hello, store_capture(s.store));
		bytes_add(&hello, "\"", 1);
	}
	if (detach)
		bytes_add(&hello, ",\"detach\":true", strlen(",\"detach\":true"));
	if (results) {
		static const char verb_results[] = ",\"verb\":\"results\",\"job\":\"";
		bytes_add(&hello, verb_results, sizeof(verb_results) - 1);
		json_escape(&hello, file);
		bytes_add(&hello, "\"", 1);
	}
	bytes_add(&hello, "}", 1);
	frame_out(&s, FETCHD_FR_HELLO, hello.p, hello.len);
	free(hello.p);
	free(opts.p);
	pump(&s);
	if (fflush(s.view.out) != 0)
		die(1, "writing results: %s", strerror(errno));
	if (s.store) {
		char err[512];
		struct store *st = s.store;
		s.store = NULL;
		if (store_close(st, err, sizeof(err)) < 0)
			die(1, "%s", err);
	}
	if (detach) {
		if (json)
			printf("{\"job\":\"%s\",\"urls\":%llu}\n", s.job, (unsigned long long)s.job_urls);
		else
			printf("job %s: %llu URLs submitted; collect the results with: fetchctl results %s\n", s.job,
			       (unsigned long long)s.job_urls, s.job);
		return fflush(stdout) == 0 ? EXIT_OK : 1;
	}
	progress_draw(&s, true);
	if (s.progress)
		fputc('\n', stderr);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!quiet)
		summary(&s, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (!quiet && s.skipped)
		fprintf(stderr, "  skipped %llu URLs that already have a result in %s\n",
			(unsigned long long)s.skipped, resume);
	if (!results && s.n.results != s.submitted) {
		fprintf(stderr, "fetchctl: %llu URLs submitted but %llu results received\n",
			(unsigned long long)s.submitted, (unsigned long long)s.n.results);
		return EXIT_LOST;
	}
	return s.n.failed ? EXIT_FAILURES : EXIT_OK;
}

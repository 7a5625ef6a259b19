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
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/protocol.h"

#define EXIT_OK 0
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define EXIT_LOST 4
#define EXIT_FAILURES 5

#define URLS_FRAME_BYTES 65536 /* payload of one URLS frame we send */
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
};

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fetchctl: ", stderr);
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
static bool clean_line(char **line, size_t *len)
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
static bool option_line(const char *raw, const char *p, size_t n)
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
		if (!clean_line(&p, &n))
			continue;
		if (option_line(input_line, p, n)) {
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

static void on_results(struct session *s, const uint8_t *p, uint32_t len)
{
	if (fwrite(p, 1, len, stdout) != len)
		die(1, "writing results: %s", strerror(errno));
	const char *line = (const char *)p, *end = line + len;
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
		tally(&s->n, line, n);
		line += n + 1;
	}
}

static void on_frame(struct session *s, uint8_t type, const uint8_t *p, uint32_t len)
{
	switch (type) {
	case FETCHD_FR_WELCOME:
		s->welcomed = true;
		break;
	case FETCHD_FR_RESULTS:
		on_results(s, p, len);
		break;
	case FETCHD_FR_DONE:
		s->done = true;
		break;
	case FETCHD_FR_ERROR:
		fflush(stdout);
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
	if (fflush(stdout) != 0)
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
		if (poll(&pfd, 1, -1) < 0) {
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
				fflush(stdout);
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
	free(session->out.p);
	free(session->frame.p);
	free(session->rx.p);
	free(input_line);
	free(pending.p);
	if (session->in && session->in != stdin)
		fclose(session->in);
	if (session->fd > 0)
		close(session->fd);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: fetchctl [-s SOCKET] [-q] [--no-hash] [BATCH OPTIONS] submit FILE|-\n"
		     "       fetchctl -V\n"
		     "  submit FILE  fetch every URL in FILE (one per line; '-' reads stdin); one JSON result per\n"
		     "               URL on stdout as each completes, a summary on stderr. An indented\n"
		     "               key=value line under a URL is an option for that URL alone.\n"
		     "  -s SOCKET    fetchd's control socket (default: $FETCHD_SOCKET, else %s)\n"
		     "  -q           no summary\n"
		     "  --no-hash    do not hash bodies (body_sha256 is null): saves CPU on large bodies\n"
		     "batch options (every URL; a URL's own options win):\n"
		     "  -o, --option KEY=VALUE  any option of docs/protocol.md (repeatable)\n"
		     "  -X, --request METHOD    GET or HEAD      -I, --head  the same as -X HEAD\n"
		     "  -H, --header 'N: V'     extra request header (repeatable; 'N:' drops fetchd's own)\n"
		     "  -A, --user-agent UA     User-Agent       --no-follow  do not follow redirects\n"
		     "  --max-redirects N       --retries N      --no-decode  no gzip/deflate decoding\n"
		     "  -m, --timeout MS        total time per request (timeout_ms)\n"
		     "exit: 0 every URL got an HTTP response, 5 some failed, 3 fetchd unreachable,\n"
		     "      4 fetchd refused the batch or went away, 2 usage\n",
		     FETCHD_DEFAULT_SOCKET);
}

int main(int argc, char **argv)
{
	const char *sock = getenv("FETCHD_SOCKET");
	bool quiet = false, hash = true;
	static struct bytes opts;
	enum { O_NO_HASH = 256, O_NO_FOLLOW, O_MAX_REDIRECTS, O_RETRIES, O_NO_DECODE };
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },  { "quiet", no_argument, NULL, 'q' },
		{ "no-hash", no_argument, NULL, O_NO_HASH }, { "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },          { "option", required_argument, NULL, 'o' },
		{ "request", required_argument, NULL, 'X' }, { "head", no_argument, NULL, 'I' },
		{ "header", required_argument, NULL, 'H' },  { "user-agent", required_argument, NULL, 'A' },
		{ "no-follow", no_argument, NULL, O_NO_FOLLOW },
		{ "max-redirects", required_argument, NULL, O_MAX_REDIRECTS },
		{ "retries", required_argument, NULL, O_RETRIES }, { "no-decode", no_argument, NULL, O_NO_DECODE },
		{ "timeout", required_argument, NULL, 'm' }, { NULL, 0, NULL, 0 },
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
		case 'V': printf("fetchctl %s\n", FETCHD_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (argc - optind != 2 || strcmp(argv[optind], "submit") != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!sock || !*sock)
		sock = FETCHD_DEFAULT_SOCKET;
	signal(SIGPIPE, SIG_IGN);
	static struct session s;
	session = &s;
	atexit(session_free); /* every exit, die() included, leaves nothing behind for leak checkers */
	const char *file = argv[optind + 1];
	s.in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	if (!s.in)
		die(EXIT_USAGE, "cannot open %s: %s", file, strerror(errno));
	static char obuf[1 << 20];
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
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
	bytes_add(&hello, "}", 1);
	frame_out(&s, FETCHD_FR_HELLO, hello.p, hello.len);
	free(hello.p);
	free(opts.p);
	pump(&s);
	if (fflush(stdout) != 0)
		die(1, "writing results: %s", strerror(errno));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!quiet)
		summary(&s, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (s.n.results != s.submitted) {
		fprintf(stderr, "fetchctl: %llu URLs submitted but %llu results received\n",
			(unsigned long long)s.submitted, (unsigned long long)s.n.results);
		return EXIT_LOST;
	}
	return s.n.failed ? EXIT_FAILURES : EXIT_OK;
}

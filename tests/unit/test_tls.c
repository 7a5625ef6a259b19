/* test_tls.c - the TLS backend this build links (tls/mbedtls.c or tls/openssl.c; both pass this same
 * file) against real `openssl s_server` processes on 127.0.0.1, with certificates made at test time
 * by tests/tls/make-certs.sh. The test plays the ring: it moves ciphertext between a blocking socket
 * and the tls_conn (recv -> tls_input, tls_output -> send), like the daemon does with io_uring.
 * Checked: a GET over a verified connection, names and IP SANs, SNI, each certificate failure with its
 * reason, alerts, close_notify against truncation, session resumption (the server's page says
 * "Reused"), min_version, CA files, directories and garbage in them, and bounded buffers.
 * Run from the repository root. $OPENSSL names the openssl binary (default: openssl from PATH).
 * FETCHD_TLS_BENCH=N adds a measurement: N full and N resumed handshakes, CPU and heap per connection.
 * FETCHD_TLS_KEEP=1 keeps the temporary directory (certificates, server logs); FETCHD_TLS_VERBOSE=1
 * prints every fetch's outcome to stderr. */
#include "tls/tls.h"
#include "tests/unit/test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CERT_SCRIPT "tests/tls/make-certs.sh"
#define BIG_BYTES (1u << 20)
#define SOCK_ERR (-100)

static char dir[64];
static const char *openssl_bin = "openssl";
static bool is_openssl;
static unsigned short_feeds; /* tls_input took less than a whole receive after TLS_WANT_IO */

/* ---- the servers ---- */

struct server {
	const char *name, *args; /* args: s_server options, files relative to dir */
	pid_t pid;
	int port, in;            /* in: the server's stdin */
};

enum { S_OK, S_OK12, S_RSA, S_EXPIRED, S_NOTYET, S_WRONG, S_SELF, S_UNKNOWN, S_INCOMPLETE, S_CHAINED,
       S_ALERT, S_ALERT13, S_TRUNC, S_SNI, S_FILE, S_COUNT };

static struct server servers[S_COUNT] = {
	[S_OK] = { "ok", "-cert ok.crt -key ec.key -www -alpn http/1.1" },
	[S_OK12] = { "ok12", "-cert ok.crt -key ec.key -www -tls1_2" },
	[S_RSA] = { "rsa", "-cert rsa.crt -key rsa.key -www" },
	[S_EXPIRED] = { "expired", "-cert expired.crt -key ec.key -www" },
	[S_NOTYET] = { "notyet", "-cert notyet.crt -key ec.key -www" },
	[S_WRONG] = { "wrong", "-cert wrong.crt -key ec.key -www" },
	[S_SELF] = { "self", "-cert self.crt -key ec.key -www" },
	[S_UNKNOWN] = { "unknown", "-cert unknown.crt -key ec.key -www" },
	[S_INCOMPLETE] = { "incomplete", "-cert chained.crt -key ec.key -www" },
	[S_CHAINED] = { "chained", "-cert chained.crt -key ec.key -cert_chain int.crt -www" },
	[S_ALERT] = { "alert", "-cert ok.crt -key ec.key -www -tls1_2 -Verify 1" },
	[S_ALERT13] = { "alert13", "-cert ok.crt -key ec.key -www -Verify 1" },
	[S_TRUNC] = { "trunc", "-cert ok.crt -key ec.key" },
	[S_SNI] = { "sni", "-cert self.crt -key ec.key -servername localhost -cert2 ok.crt -key2 ec.key -www" },
	[S_FILE] = { "file", "-cert ok.crt -key ec.key -WWW" },
};

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void child_exec(struct server *s, int in)
{
	char accept[32], out[128], *argv[32], args[512];
	int n = 0;

	snprintf(accept, sizeof accept, "127.0.0.1:%d", s->port);
	snprintf(out, sizeof out, "%s.out", s->name);
	snprintf(args, sizeof args, "%s", s->args);
	argv[n++] = (char *)openssl_bin, argv[n++] = "s_server", argv[n++] = "-accept", argv[n++] = accept;
	for (char *t = strtok(args, " "); t && n < 31; t = strtok(NULL, " "))
		argv[n++] = t;
	argv[n] = NULL;
	int fd = chdir(dir) == 0 ? open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
	if (fd < 0 || dup2(in, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		_exit(126);
	execvp(openssl_bin, argv);
	_exit(127);
}

static bool server_spawn(struct server *s)
{
	int p[2];

	if ((s->port = free_port()) < 0 || pipe2(p, O_CLOEXEC) < 0)
		return false;
	if ((s->pid = fork()) == 0)
		child_exec(s, p[0]);
	close(p[0]);
	s->in = p[1];
	return s->pid > 0;
}

static void server_stop(struct server *s)
{
	if (s->in >= 0)
		close(s->in);
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
	}
	s->pid = -1, s->in = -1;
}

/* Wait until the server's output says ACCEPT (up to 5 s); false if it died or never did. */
static bool server_ready(struct server *s)
{
	char path[128], buf[4096];

	snprintf(path, sizeof path, "%s/%s.out", dir, s->name);
	for (int i = 0; i < 2500; i++) {
		int fd = open(path, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
		if (fd >= 0)
			close(fd);
		buf[n > 0 ? n : 0] = '\0';
		if (strstr(buf, "ACCEPT"))
			return true;
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = -1;
			return false;
		}
		usleep(2000);
	}
	return false;
}

static bool servers_start(void)
{
	for (int i = 0; i < S_COUNT; i++)
		servers[i].in = -1, servers[i].pid = -1;
	for (int i = 0; i < S_COUNT; i++)
		if (!server_spawn(&servers[i]))
			return false;
	for (int i = 0; i < S_COUNT; i++) {
		int tries = 0;
		while (!server_ready(&servers[i])) { /* the port was taken meanwhile: another one */
			server_stop(&servers[i]);
			if (++tries == 3 || !server_spawn(&servers[i])) {
				fprintf(stderr, "s_server %s did not start (see %s/%s.out)\n", servers[i].name, dir,
					servers[i].name);
				return false;
			}
		}
	}
	return true;
}

/* ---- the client side: the test plays the ring ---- */

static int tcp_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send all queued ciphertext: bytes sent, or SOCK_ERR. */
static int flush_out(int fd, struct tls_conn *c)
{
	const uint8_t *p;
	size_t n;
	int sent = 0;

	while ((n = tls_output(c, &p)) > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return SOCK_ERR;
		tls_output_done(c, (size_t)w);
		sent += (int)w;
	}
	return sent;
}

/* One receive of up to 16 KiB (a ring buffer's worth), all of it handed to tls_input, as the daemon
 * does after a call returned TLS_WANT_IO: bytes, 0 at EOF, SOCK_ERR. */
static int feed(int fd, struct tls_conn *c)
{
	static uint8_t buf[16384];
	ssize_t n = recv(fd, buf, sizeof buf, 0);

	if (n < 0 && errno == ECONNRESET)
		n = 0;
	if (n <= 0)
		return n == 0 ? 0 : SOCK_ERR;
	size_t took = tls_input(c, buf, (size_t)n);
	if (took != (size_t)n)
		short_feeds++;
	return (int)n;
}

static int handshake(int fd, struct tls_conn *c)
{
	for (;;) {
		int r = tls_handshake(c), sent = flush_out(fd, c);
		if (sent == SOCK_ERR)
			return SOCK_ERR;
		if (r != TLS_WANT_IO)
			return r;
		if (sent > 0)
			continue;
		int n = feed(fd, c);
		if (n == 0)
			return tls_conn_eof(c);
		if (n < 0)
			return SOCK_ERR;
	}
}

static int write_all(int fd, struct tls_conn *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (int spins = 0; len > 0 && spins < 1000; spins++) {
		ssize_t w = tls_write(c, p, len);
		if (flush_out(fd, c) == SOCK_ERR)
			return SOCK_ERR;
		if (w == TLS_WANT_IO)
			continue;
		if (w < 0)
			return (int)w;
		p += w, len -= (size_t)w;
	}
	return len ? SOCK_ERR : TLS_OK;
}

struct body {
	uint8_t *p;
	size_t len, cap;
};

/* Read until close_notify, EOF or an error, keeping what fits: the ending status. */
static int read_body(int fd, struct tls_conn *c, struct body *b)
{
	uint8_t buf[3000]; /* less than a record, so records are read in pieces */

	for (;;) {
		ssize_t r = tls_read(c, buf, sizeof buf);
		if (r > 0) {
			size_t n = (size_t)r < b->cap - b->len ? (size_t)r : b->cap - b->len;
			memcpy(b->p + b->len, buf, n);
			b->len += n;
			continue;
		}
		if (flush_out(fd, c) == SOCK_ERR)
			return SOCK_ERR;
		if (r != TLS_WANT_IO)
			return (int)r;
		int n = feed(fd, c);
		if (n == 0)
			return tls_conn_eof(c);
		if (n < 0)
			return SOCK_ERR;
	}
}

/* One fetch: connect, handshake, send request (if any), read to the end. */
struct fetch {
	const char *host, *request;
	const struct tls_session *offer;  /* offered before the handshake */
	bool take_session;                /* keep the connection's session in .session */
	int hs, end, eof;                 /* tls_handshake, read_body's end, then tls_conn_eof */
	bool reused, alpn;
	char version[16], cipher[64], reason[TLS_REASON_MAX];
	struct tls_session *session;
	struct body body;
};

static uint8_t page[65536];

static void fetch_info(struct fetch *f, struct tls_conn *c)
{
	snprintf(f->version, sizeof f->version, "%s", tls_conn_version(c) ? tls_conn_version(c) : "");
	snprintf(f->cipher, sizeof f->cipher, "%s", tls_conn_cipher(c) ? tls_conn_cipher(c) : "");
	f->alpn = tls_conn_alpn(c) != NULL;
	f->reused = tls_conn_reused(c);
}

static void fetch(struct tls_config *cfg, int port, struct fetch *f)
{
	struct tls_conn *c = NULL;
	int fd = tcp_connect(port);

	f->hs = f->end = f->eof = SOCK_ERR;
	if (!f->body.p)
		f->body = (struct body){ page, 0, sizeof page };
	if (fd < 0 || tls_conn_new(cfg, f->host, &c) != TLS_OK)
		goto out;
	if (f->offer)
		tls_conn_set_session(c, f->offer);
	if ((f->hs = handshake(fd, c)) == TLS_OK) {
		fetch_info(f, c);
		if (f->request) {
			f->end = write_all(fd, c, f->request, strlen(f->request));
			if (f->end == TLS_OK)
				f->end = read_body(fd, c, &f->body);
			f->eof = tls_conn_eof(c);
		}
		if (f->take_session)
			f->session = tls_conn_session(c);
	}
	snprintf(f->reason, sizeof f->reason, "%s", tls_conn_reason(c));
	if (getenv("FETCHD_TLS_VERBOSE"))
		fprintf(stderr, "%s port %d: handshake %d, end %d, eof %d, %s %s%s \"%s\"\n", f->host, port, f->hs,
			f->end, f->eof, f->version, f->cipher, f->reused ? " reused" : "", f->reason);
out:
	tls_conn_free(c);
	if (fd >= 0)
		close(fd);
}

static bool has(const struct body *b, const char *s)
{
	return memmem(b->p, b->len, s, strlen(s)) != NULL;
}

static struct tls_config *config(const char *ca_file, const char *ca_path, int min_version, bool no_verify,
				 struct tls_ca_count *n, int *rc, char *err, size_t errlen)
{
	struct tls_config_opts o = { ca_file, ca_path, min_version, no_verify };
	struct tls_config *cfg = NULL;

	*rc = tls_config_new(&cfg, &o, n, err, errlen);
	return cfg;
}

static char *path_in(const char *file)
{
	static char bufs[4][128];
	static int i;
	char *p = bufs[i++ % 4];

	snprintf(p, sizeof bufs[0], "%s/%s", dir, file);
	return p;
}

#define GET "GET / HTTP/1.0\r\n\r\n"

/* ---- tests without a server ---- */

static void test_hosts(struct tls_config *cfg)
{
	static const struct {
		const char *host;
		int rc;
	} cases[] = {
		{ "localhost", TLS_OK }, { "Example.COM.", TLS_OK }, { "127.0.0.1", TLS_OK }, { "::1", TLS_OK },
		{ "[::1]", TLS_OK }, { "[2001:db8::1]", TLS_OK }, { "", TLS_E_HOST }, { "a b", TLS_E_HOST },
		{ "[127.0.0.1]", TLS_E_HOST }, { "[::1", TLS_E_HOST }, { "ex/ample", TLS_E_HOST },
	};
	char longname[300];
	struct tls_conn *c;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = tls_conn_new(cfg, cases[i].host, &c);
		CHECK(rc == cases[i].rc, "host \"%s\": %d, want %d", cases[i].host, rc, cases[i].rc);
		tls_conn_free(c);
	}
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	CHECK(tls_conn_new(cfg, longname, &c) == TLS_E_HOST && c == NULL, "a 299-byte host is refused");
	longname[TLS_HOST_MAX] = '\0';
	CHECK(tls_conn_new(cfg, longname, &c) == TLS_OK, "a %d-byte host is fine", TLS_HOST_MAX);
	tls_conn_free(c);
}

/* Buffers stay bounded, calls out of order are refused, a garbage server fails the handshake. */
static void test_offline(struct tls_config *cfg)
{
	static uint8_t junk[3 * TLS_IN_BYTES];
	const uint8_t *p;
	uint8_t buf[64];
	struct tls_conn *c;

	CHECK(tls_conn_new(cfg, "localhost", &c) == TLS_OK, "conn");
	CHECK(tls_write(c, "x", 1) == TLS_E_STATE, "write before the handshake");
	CHECK(tls_read(c, buf, sizeof buf) == TLS_E_STATE, "read before the handshake");
	CHECK(tls_conn_session(c) == NULL, "no session before the handshake");
	CHECK(tls_handshake(c) == TLS_WANT_IO, "the handshake waits");
	size_t hello = tls_output(c, &p);
	CHECK(hello > 40 && hello <= TLS_OUT_BYTES && p[0] == 22, "a ClientHello to send (%zu bytes)", hello);
	CHECK(tls_conn_set_session(c, NULL) == TLS_E_STATE, "a session after the handshake began");
	tls_output_done(c, 10);
	CHECK(tls_output(c, &p) == hello - 10, "partial send");
	tls_output_done(c, hello);
	CHECK(tls_output(c, &p) == 0, "all sent");
	CHECK(tls_input_space(c) == TLS_IN_BYTES, "input empty: %zu", tls_input_space(c));
	memset(junk, 'H', sizeof junk); /* an HTTP server, say */
	size_t took = tls_input(c, junk, sizeof junk);
	CHECK(took == TLS_IN_BYTES, "input takes at most TLS_IN_BYTES (%zu)", took);
	CHECK(tls_input(c, junk, 1) == 0 && tls_input_space(c) == 0, "then nothing");
	int rc = tls_handshake(c);
	CHECK(rc == TLS_E_HANDSHAKE, "junk fails the handshake: %d %s", rc, tls_conn_reason(c));
	CHECK(!strncmp(tls_conn_reason(c), "handshake failed: ", 18), "reason: %s", tls_conn_reason(c));
	CHECK(tls_handshake(c) == rc && tls_read(c, buf, 1) == rc, "the error sticks");
	CHECK(tls_conn_eof(c) == rc, "eof after an error gives the error");
	tls_conn_free(c);
	CHECK(strcmp(tls_strerror(TLS_E_EXPIRED), "certificate expired") == 0, "strerror");
	CHECK(strcmp(tls_strerror(12345), "unknown TLS status") == 0, "strerror of nonsense");
}

/* A listener that reads the ClientHello and closes, or answers in plain HTTP. */
static void test_bad_servers(struct tls_config *cfg)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char buf[4096];

	CHECK(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 4) == 0 &&
		      getsockname(l, (struct sockaddr *)&a, &len) == 0, "listener");
	for (int http = 0; http < 2; http++) {
		struct tls_conn *c;
		int fd = tcp_connect(ntohs(a.sin_port)), s = accept(l, NULL, NULL);
		CHECK(fd >= 0 && s >= 0 && tls_conn_new(cfg, "localhost", &c) == TLS_OK, "connected");
		CHECK(tls_handshake(c) == TLS_WANT_IO && flush_out(fd, c) > 0, "hello sent");
		CHECK(recv(s, buf, sizeof buf, 0) > 0, "hello received");
		if (http) {
			const char *resp = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
			CHECK(send(s, resp, strlen(resp), MSG_NOSIGNAL) > 0, "plain HTTP answer");
		}
		close(s);
		int rc = handshake(fd, c);
		CHECK(rc == TLS_E_HANDSHAKE, "%s: %d %s", http ? "plain HTTP" : "closed", rc, tls_conn_reason(c));
		if (!http)
			CHECK(!strcmp(tls_conn_reason(c), "handshake failed: the server closed the connection"),
			      "reason: %s", tls_conn_reason(c));
		else
			CHECK(!strncmp(tls_conn_reason(c), "handshake failed: ", 18), "reason: %s",
			      tls_conn_reason(c));
		tls_conn_free(c);
		close(fd);
	}
	close(l);
}

/* ---- configuration ---- */

static void test_config(void)
{
	struct tls_ca_count n;
	char err[256];
	int rc;
	struct tls_config *cfg;

	cfg = config(path_in("ca.crt"), NULL, TLS_V13, false, &n, &rc, err, sizeof err);
	if (is_openssl) {
		CHECK(rc == TLS_OK && cfg, "openssl: min_version 1.3: %d %s", rc, err);
		CHECK(tls_backend_max_version() == TLS_V13, "openssl speaks 1.3");
	} else {
		CHECK(rc == TLS_E_CONFIG && !cfg, "mbedtls: min_version 1.3 is a config error: %d", rc);
		CHECK(strstr(err, "min_version 1.3 needs the openssl backend") != NULL, "err: %s", err);
		CHECK(tls_backend_max_version() == TLS_V12, "mbedtls speaks 1.2");
	}
	tls_config_free(cfg);
	cfg = config(path_in("ca.crt"), NULL, 11, false, &n, &rc, err, sizeof err);
	CHECK(rc == TLS_E_CONFIG && !cfg && strstr(err, "1.2 or 1.3"), "min_version 1.1: %d %s", rc, err);
	cfg = config(path_in("nonexistent.pem"), NULL, 0, false, &n, &rc, err, sizeof err);
	CHECK(rc == TLS_E_CONFIG && !cfg && strstr(err, "nonexistent.pem: No such file"), "missing: %s", err);
	cfg = config(path_in("ec.key"), NULL, 0, false, &n, &rc, err, sizeof err);
	CHECK(rc == TLS_E_CONFIG && !cfg && strstr(err, "no usable CA certificate"), "a key file: %s", err);
	cfg = config(path_in("garbage-bundle.pem"), NULL, 0, false, &n, &rc, err, sizeof err);
	CHECK(rc == TLS_OK && n.loaded == 2 && n.failed == 1, "garbage: %d loaded %u failed %u", rc, n.loaded,
	      n.failed);
	struct fetch f = { .host = "localhost", .request = GET };
	fetch(cfg, servers[S_OK].port, &f);
	CHECK(f.hs == TLS_OK && f.end == TLS_CLOSED, "the good CA after the garbage works: %d %s", f.hs,
	      f.reason);
	tls_config_free(cfg);
	cfg = config(NULL, path_in("hashed"), 0, false, &n, &rc, err, sizeof err);
	CHECK(rc == TLS_OK && n.loaded == 1 && n.failed == 0, "ca_path: %d %s", rc, err);
	f = (struct fetch){ .host = "localhost", .request = GET };
	fetch(cfg, servers[S_OK].port, &f);
	CHECK(f.hs == TLS_OK, "ca_path verifies: %d %s", f.hs, f.reason);
	tls_config_free(cfg);
	cfg = config(NULL, dir, 0, false, &n, &rc, err, sizeof err);
	CHECK(rc == TLS_E_CONFIG && n.loaded == 0, "a directory without hashed names: %s", err);
	if (access(TLS_DEFAULT_CA_FILE, R_OK) == 0) {
		cfg = config(NULL, NULL, 0, false, &n, &rc, err, sizeof err);
		CHECK(rc == TLS_OK && n.loaded > 50, "system bundle: %d, %u loaded", rc, n.loaded);
		printf("system bundle %s: %u loaded, %u failed to parse (%s)\n", TLS_DEFAULT_CA_FILE, n.loaded,
		       n.failed, tls_backend_name());
		tls_config_free(cfg);
	}
	struct stat st;
	if (stat("/etc/ssl/certs", &st) == 0) {
		cfg = config(NULL, "/etc/ssl/certs", 0, false, &n, &rc, err, sizeof err);
		CHECK(rc == TLS_OK && n.loaded > 50, "the system's hashed directory: %d, %u loaded %s", rc, n.loaded,
		      err);
		tls_config_free(cfg);
	}
}

/* ---- handshakes ---- */

static void test_ok(struct tls_config *cfg)
{
	struct fetch f = { .host = "localhost", .request = GET };

	fetch(cfg, servers[S_OK].port, &f);
	CHECK(f.hs == TLS_OK, "handshake: %d %s", f.hs, f.reason);
	CHECK(f.body.len > 15 && !memcmp(f.body.p, "HTTP/1.0 200 ok", 15), "the page (%zu bytes)", f.body.len);
	CHECK(f.end == TLS_CLOSED && f.eof == TLS_CLOSED, "close_notify: %d, eof %d", f.end, f.eof);
	CHECK(!strcmp(f.version, is_openssl ? "TLSv1.3" : "TLSv1.2"), "version %s", f.version);
	CHECK(!strncmp(f.cipher, "TLS_", 4) && strlen(f.cipher) > 12, "cipher %s", f.cipher);
	CHECK(f.alpn, "ALPN http/1.1");
	CHECK(!f.reused && f.reason[0] == '\0', "not reused, no reason: %s", f.reason);
	f = (struct fetch){ .host = "localhost", .request = GET };
	fetch(cfg, servers[S_OK12].port, &f);
	CHECK(f.hs == TLS_OK && f.end == TLS_CLOSED && !strcmp(f.version, "TLSv1.2"), "TLS 1.2: %d %s %s",
	      f.hs, f.version, f.reason);
	CHECK(!f.alpn, "no ALPN from a server without it");
	f = (struct fetch){ .host = "localhost", .request = GET };
	fetch(cfg, servers[S_RSA].port, &f);
	CHECK(f.hs == TLS_OK && f.end == TLS_CLOSED, "RSA 2048: %d %s", f.hs, f.reason);
	CHECK(is_openssl || strstr(f.cipher, "_RSA_"), "RSA cipher %s", f.cipher);
	f = (struct fetch){ .host = "localhost", .request = GET };
	fetch(cfg, servers[S_CHAINED].port, &f);
	CHECK(f.hs == TLS_OK && f.end == TLS_CLOSED, "through an intermediate: %d %s", f.hs, f.reason);
}

static void test_names(struct tls_config *cfg)
{
	static const struct {
		int server;
		const char *host;
		int rc;
		const char *reason;
	} cases[] = {
		{ S_OK, "LOCALHOST", TLS_OK, "" },
		{ S_OK, "127.0.0.1", TLS_OK, "" },
		{ S_OK, "::1", TLS_OK, "" },
		{ S_OK, "[::1]", TLS_OK, "" },
		{ S_OK, "127.0.0.2", TLS_E_WRONG_HOST, "certificate does not match host 127.0.0.2" },
		{ S_OK, "::2", TLS_E_WRONG_HOST, "certificate does not match host ::2" },
		{ S_OK, "other.localhost", TLS_E_WRONG_HOST, "certificate does not match host other.localhost" },
		{ S_WRONG, "localhost", TLS_E_WRONG_HOST, "certificate does not match host localhost" },
		/* the SNI server shows its self-signed certificate unless asked for localhost by SNI */
		{ S_SNI, "localhost", TLS_OK, "" },
		{ S_SNI, "127.0.0.1", TLS_E_UNTRUSTED, "certificate not trusted: self-signed" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct fetch f = { .host = cases[i].host, .request = GET };
		fetch(cfg, servers[cases[i].server].port, &f);
		CHECK(f.hs == cases[i].rc, "%s on %s: %d (%s), want %d", cases[i].host, servers[cases[i].server].name,
		      f.hs, f.reason, cases[i].rc);
		CHECK(!strcmp(f.reason, cases[i].reason), "%s: reason \"%s\", want \"%s\"", cases[i].host, f.reason,
		      cases[i].reason);
		if (cases[i].rc == TLS_OK)
			CHECK(f.end == TLS_CLOSED, "%s: GET %d", cases[i].host, f.end);
	}
}

static void test_bad_certs(struct tls_config *cfg)
{
	static const struct {
		int server, rc;
		const char *reason;
	} cases[] = {
		{ S_EXPIRED, TLS_E_EXPIRED, "certificate expired on 2020-02-01" },
		{ S_NOTYET, TLS_E_NOT_YET_VALID, "certificate is not valid until 2090-01-01" },
		{ S_SELF, TLS_E_UNTRUSTED, "certificate not trusted: self-signed" },
		{ S_UNKNOWN, TLS_E_UNTRUSTED,
		  "certificate not trusted: unknown issuer \"fetchd unknown CA\" (unknown root or incomplete chain)" },
		{ S_INCOMPLETE, TLS_E_UNTRUSTED, "certificate not trusted: unknown issuer \"fetchd test "
						 "intermediate\" (unknown root or incomplete chain)" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct fetch f = { .host = "localhost", .request = GET };
		fetch(cfg, servers[cases[i].server].port, &f);
		CHECK(f.hs == cases[i].rc, "%s: %d (%s), want %d", servers[cases[i].server].name, f.hs, f.reason,
		      cases[i].rc);
		CHECK(!strcmp(f.reason, cases[i].reason), "%s: reason \"%s\"", servers[cases[i].server].name,
		      f.reason);
	}
}

static void test_no_verify(void)
{
	struct tls_ca_count n;
	char err[256];
	int rc;
	struct tls_config *cfg = config("/nonexistent", NULL, 0, true, &n, &rc, err, sizeof err);
	struct fetch f = { .host = "localhost", .request = GET };

	CHECK(rc == TLS_OK && n.loaded == 0, "no_verify loads no CA: %d %s", rc, err);
	if (!cfg)
		return;
	fetch(cfg, servers[S_SELF].port, &f);
	CHECK(f.hs == TLS_OK && f.end == TLS_CLOSED, "no_verify takes a self-signed cert: %d %s", f.hs, f.reason);
	f = (struct fetch){ .host = "localhost", .request = GET };
	fetch(cfg, servers[S_EXPIRED].port, &f);
	CHECK(f.hs == TLS_OK, "and an expired one: %d %s", f.hs, f.reason);
	tls_config_free(cfg);
}

/* Servers that want a client certificate. With TLS 1.3 the client's handshake is over before the server
 * has checked, so the alert comes to tls_read. */
static void test_alert(struct tls_config *cfg)
{
	struct fetch f = { .host = "localhost", .request = GET };

	fetch(cfg, servers[S_ALERT].port, &f);
	CHECK(f.hs == TLS_E_ALERT, "TLS 1.2: %d %s", f.hs, f.reason);
	CHECK(!strcmp(f.reason, "handshake failed: the server sent alert handshake_failure (40)"), "reason %s",
	      f.reason);
	f = (struct fetch){ .host = "localhost", .request = GET };
	fetch(cfg, servers[S_ALERT13].port, &f);
	if (is_openssl) {
		CHECK(f.hs == TLS_OK && f.end == TLS_E_ALERT, "TLS 1.3: %d %d %s", f.hs, f.end, f.reason);
		CHECK(!strcmp(f.reason, "the server sent alert certificate_required (116)"), "reason %s", f.reason);
	} else {
		CHECK(f.hs == TLS_E_ALERT, "TLS 1.2 again: %d %s", f.hs, f.reason);
		CHECK(strstr(f.reason, "handshake_failure (40)") != NULL, "reason %s", f.reason);
	}
}

/* A CA file holding only the intermediate: it is a trust anchor, so the leaf alone verifies. */
static void test_partial_chain(void)
{
	struct tls_ca_count n;
	char err[256];
	int rc;
	struct tls_config *cfg = config(path_in("int.crt"), NULL, 0, false, &n, &rc, err, sizeof err);
	struct fetch f = { .host = "localhost", .request = GET };

	CHECK(rc == TLS_OK && n.loaded == 1, "intermediate only: %d %s", rc, err);
	if (!cfg)
		return;
	fetch(cfg, servers[S_INCOMPLETE].port, &f);
	CHECK(f.hs == TLS_OK && f.end == TLS_CLOSED, "anchored at the intermediate: %d %s", f.hs, f.reason);
	f = (struct fetch){ .host = "localhost", .request = GET };
	fetch(cfg, servers[S_OK].port, &f);
	CHECK(f.hs == TLS_E_UNTRUSTED, "but not the root's other leaves: %d %s", f.hs, f.reason);
	tls_config_free(cfg);
}

static void test_min_version(void)
{
	struct tls_ca_count n;
	char err[256];
	int rc;
	struct tls_config *cfg = config(path_in("ca.crt"), NULL, TLS_V13, false, &n, &rc, err, sizeof err);
	struct fetch f = { .host = "localhost", .request = GET };

	if (!is_openssl)
		return; /* a config error, checked in test_config */
	fetch(cfg, servers[S_OK].port, &f);
	CHECK(f.hs == TLS_OK && !strcmp(f.version, "TLSv1.3"), "1.3 against 1.3: %d %s", f.hs, f.reason);
	f = (struct fetch){ .host = "localhost", .request = GET };
	fetch(cfg, servers[S_OK12].port, &f);
	CHECK(f.hs == TLS_E_ALERT || f.hs == TLS_E_HANDSHAKE, "1.3 against a 1.2 server fails: %d", f.hs);
	CHECK(!strncmp(f.reason, "handshake failed: ", 18) && strstr(f.reason, "protocol_version"), "reason %s",
	      f.reason);
	tls_config_free(cfg);
}

/* close_notify ends the page above; here the server closes TCP without it. */
static void test_truncated(struct tls_config *cfg)
{
	struct server *s = &servers[S_TRUNC];
	int fd = tcp_connect(s->port), end = SOCK_ERR;
	struct tls_conn *c = NULL;
	struct body b = { page, 0, sizeof page };

	CHECK(fd >= 0 && tls_conn_new(cfg, "localhost", &c) == TLS_OK, "connect");
	if (fd >= 0 && c && handshake(fd, c) == TLS_OK) {
		CHECK(write(s->in, "hello\n", 6) == 6, "to the server's stdin");
		close(s->in); /* s_server closes the socket at EOF on stdin, without close_notify */
		s->in = -1;
		end = read_body(fd, c, &b);
	}
	CHECK(end == TLS_E_TRUNCATED, "truncated: %d %s", end, c ? tls_conn_reason(c) : "");
	CHECK(b.len == 6 && !memcmp(b.p, "hello\n", 6), "the data before the close (%zu bytes)", b.len);
	CHECK(c && !strcmp(tls_conn_reason(c), "connection closed without close_notify (truncated)"), "reason");
	CHECK(c && tls_conn_eof(c) == TLS_E_TRUNCATED, "eof again");
	tls_conn_free(c);
	if (fd >= 0)
		close(fd);
}

static void test_resume(struct tls_config *cfg, int server)
{
	struct fetch f = { .host = "localhost", .request = GET, .take_session = true };
	const char *name = servers[server].name;

	fetch(cfg, servers[server].port, &f);
	CHECK(f.hs == TLS_OK && !f.reused && has(&f.body, "\nNew, "), "%s: first: %d %s", name, f.hs, f.reason);
	CHECK(f.session != NULL, "%s: a session to keep", name);
	struct tls_session *s = f.session;
	for (int i = 0; i < 2 && s; i++) {
		f = (struct fetch){ .host = "localhost", .request = GET, .offer = s, .take_session = true };
		fetch(cfg, servers[server].port, &f);
		CHECK(f.hs == TLS_OK && f.end == TLS_CLOSED, "%s: resumed: %d %s", name, f.hs, f.reason);
		CHECK(f.reused, "%s: tls_conn_reused", name);
		CHECK(has(&f.body, "\nReused, "), "%s: the server says Reused", name);
		tls_session_free(f.session);
	}
	/* a session offered to another server is not resumed there: a full handshake */
	f = (struct fetch){ .host = "localhost", .request = GET, .offer = s };
	fetch(cfg, servers[S_CHAINED].port, &f);
	CHECK(f.hs == TLS_OK && !f.reused && has(&f.body, "\nNew, "), "%s: elsewhere: %d %s", name, f.hs,
	      f.reason);
	tls_session_free(s);
}

/* A 1 MiB body and a 30 KiB request through the bounded buffers. */
static void test_big(struct tls_config *cfg)
{
	static char req[40000];
	uint8_t want[TLS_SHA256_BYTES], got[TLS_SHA256_BYTES];
	struct tls_sha256 h;
	uint8_t *big = malloc(BIG_BYTES), *resp = malloc(BIG_BYTES + 4096);
	FILE *fp = fopen(path_in("big.bin"), "wb");

	for (size_t i = 0; big && i < BIG_BYTES; i++)
		big[i] = (uint8_t)(i * 7 + (i >> 9));
	CHECK(big && resp && fp && fwrite(big, 1, BIG_BYTES, fp) == BIG_BYTES, "big.bin");
	if (fp)
		fclose(fp);
	if (!big || !resp)
		goto out;
	tls_sha256_init(&h);
	tls_sha256_update(&h, big, BIG_BYTES);
	tls_sha256_final(&h, want);
	int n = snprintf(req, sizeof req, "GET /big.bin HTTP/1.0\r\n");
	for (int i = 0; i < 30; i++)
		n += snprintf(req + n, sizeof req - (size_t)n, "X-Pad-%d: %01000d\r\n", i, 0);
	snprintf(req + n, sizeof req - (size_t)n, "\r\n");
	struct fetch f = { .host = "localhost", .request = req, .body = { resp, 0, BIG_BYTES + 4096 } };
	fetch(cfg, servers[S_FILE].port, &f);
	CHECK(f.hs == TLS_OK && f.end == TLS_CLOSED, "big: %d %d %s", f.hs, f.end, f.reason);
	uint8_t *body = memmem(resp, f.body.len, "\r\n\r\n", 4);
	CHECK(body && f.body.len - (size_t)(body + 4 - resp) == BIG_BYTES, "1 MiB came (%zu)", f.body.len);
	if (body && f.body.len - (size_t)(body + 4 - resp) == BIG_BYTES) {
		tls_sha256_init(&h);
		tls_sha256_update(&h, body + 4, BIG_BYTES);
		tls_sha256_final(&h, got);
		CHECK(!memcmp(got, want, sizeof got), "and its sha256 matches");
	}
out:
	free(big);
	free(resp);
}

/* tls_close_notify queues our alert. */
static void test_close_notify(struct tls_config *cfg)
{
	struct tls_conn *c = NULL;
	const uint8_t *p;
	int fd = tcp_connect(servers[S_OK].port);

	CHECK(fd >= 0 && tls_conn_new(cfg, "localhost", &c) == TLS_OK && handshake(fd, c) == TLS_OK, "conn");
	CHECK(c && tls_close_notify(c) == TLS_OK && tls_output(c, &p) > 0 && p[0] == (is_openssl ? 23 : 21),
	      "close_notify queued (an alert record; TLS 1.3 disguises it as application data)");
	tls_conn_free(c);
	if (fd >= 0)
		close(fd);
}

/* ---- measurement (FETCHD_TLS_BENCH=N) ---- */

static double cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* n handshakes (no request), offering s if given: CPU ms per handshake of this process. */
static double bench_handshakes(struct tls_config *cfg, int port, int n, const struct tls_session *s, int *ok)
{
	double t0 = cpu_ms();

	*ok = 0;
	for (int i = 0; i < n; i++) {
		struct tls_conn *c = NULL;
		int fd = tcp_connect(port);
		if (fd >= 0 && tls_conn_new(cfg, "localhost", &c) == TLS_OK) {
			if (s)
				tls_conn_set_session(c, s);
			*ok += handshake(fd, c) == TLS_OK && (!s || tls_conn_reused(c));
		}
		tls_conn_free(c);
		if (fd >= 0)
			close(fd);
	}
	return (cpu_ms() - t0) / n;
}

static long rss_kib(void)
{
	char buf[4096];
	FILE *fp = fopen("/proc/self/status", "r");
	long kib = -1;

	while (fp && fgets(buf, sizeof buf, fp))
		if (sscanf(buf, "VmRSS: %ld", &kib) == 1)
			break;
	if (fp)
		fclose(fp);
	return kib;
}

/* Heap and RSS per established connection: n connections kept after their handshakes. */
static void bench_memory(struct tls_config *cfg, int port, int n, double *heap, double *rss)
{
	struct tls_conn **cs = calloc((size_t)n, sizeof *cs);
	size_t before = mallinfo2().uordblks;
	long rss0 = rss_kib();

	for (int i = 0; cs && i < n; i++) {
		int fd = tcp_connect(port);
		if (fd >= 0 && tls_conn_new(cfg, "localhost", &cs[i]) == TLS_OK)
			handshake(fd, cs[i]);
		if (fd >= 0)
			close(fd);
	}
	*heap = (double)(mallinfo2().uordblks - before) / n;
	*rss = (double)(rss_kib() - rss0) * 1024 / n;
	for (int i = 0; cs && i < n; i++)
		tls_conn_free(cs[i]);
	free(cs);
}

static void bench(struct tls_config *cfg, int n)
{
	int srv[] = { S_OK12, S_OK };

	for (size_t i = 0; i < sizeof srv / sizeof srv[0]; i++) {
		struct fetch f = { .host = "localhost", .request = GET, .take_session = true };
		int ok_full, ok_res;
		fetch(cfg, servers[srv[i]].port, &f);
		if (!f.session) {
			fprintf(stderr, "bench: no session from %s\n", servers[srv[i]].name);
			continue;
		}
		double full = bench_handshakes(cfg, servers[srv[i]].port, n, NULL, &ok_full);
		double res = bench_handshakes(cfg, servers[srv[i]].port, n, f.session, &ok_res);
		double heap, rss;
		bench_memory(cfg, servers[srv[i]].port, n, &heap, &rss);
		printf("bench %s %s: full handshake %.3f ms CPU (%d/%d ok), resumed %.3f ms CPU (%d/%d resumed); "
		       "per established connection: heap %.0f bytes, RSS %.0f bytes\n",
		       tls_backend_name(), f.version, full, ok_full, n, res, ok_res, n, heap, rss);
		tls_session_free(f.session);
	}
}

/* ---- setup ---- */

static bool make_certs(void)
{
	char cmd[512];
	const char *script = getenv("FETCHD_TLS_CERT_SCRIPT");

	snprintf(cmd, sizeof cmd, "sh '%s' '%s'", script ? script : CERT_SCRIPT, dir);
	return system(cmd) == 0;
}

int main(void)
{
	struct tls_ca_count n;
	char err[256];
	int rc;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	signal(SIGPIPE, SIG_IGN);
	if (getenv("OPENSSL"))
		openssl_bin = getenv("OPENSSL");
	is_openssl = !strncmp(tls_backend_name(), "openssl", 7);
	snprintf(dir, sizeof dir, "/tmp/fetchd-tls.XXXXXX");
	CHECK(mkdtemp(dir) != NULL, "temporary directory");
	CHECK(make_certs(), "%s made the certificates (needs the openssl CLI)", CERT_SCRIPT);
	bool up = servers_start();
	CHECK(up, "s_server processes started");
	struct tls_config *cfg = config(path_in("ca.crt"), NULL, 0, false, &n, &rc, err, sizeof err);
	CHECK(rc == TLS_OK && n.loaded == 1 && n.failed == 0, "config: %d %s", rc, err);
	if (cfg) {
		test_hosts(cfg);
		test_offline(cfg);
		test_bad_servers(cfg);
	}
	if (cfg && up) {
		test_config();
		test_ok(cfg);
		test_names(cfg);
		test_bad_certs(cfg);
		test_no_verify();
		test_alert(cfg);
		test_partial_chain();
		test_min_version();
		test_truncated(cfg);
		test_resume(cfg, S_OK);
		test_resume(cfg, S_OK12);
		test_big(cfg);
		test_close_notify(cfg);
		CHECK(short_feeds == 0, "tls_input took every 16 KiB receive whole (%u short)", short_feeds);
		if (getenv("FETCHD_TLS_BENCH"))
			bench(cfg, atoi(getenv("FETCHD_TLS_BENCH")) > 0 ? atoi(getenv("FETCHD_TLS_BENCH")) : 200);
	}
	tls_config_free(cfg);
	for (int i = 0; i < S_COUNT; i++)
		server_stop(&servers[i]);
	if (!getenv("FETCHD_TLS_KEEP")) {
		char cmd[128];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		CHECK(system(cmd) == 0, "cleanup");
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%s: %.2f s\n", tls_backend_name(),
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return test_report();
}

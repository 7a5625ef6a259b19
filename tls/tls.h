/* tls.h - the crypto/TLS backend interface. One backend, chosen at build time with `make TLS=...`
 * (mbedTLS 2.28 by default, OpenSSL 3 with TLS=openssl), provides body hashing and TLS client
 * connections over memory buffers: the caller moves ciphertext between its sockets and a tls_conn, and
 * tls/ never touches a socket.
 *
 * A connection, driven by the ring:
 *   tls_conn_new(cfg, host, &c); [tls_conn_set_session(c, cached)]
 *   loop: r = tls_handshake(c)          TLS_OK: done; TLS_WANT_IO: see below; < 0: failed
 *   tls_write(c, request), tls_read(c, ...) until the body is complete or TLS_CLOSED
 *   [cache tls_conn_session(c) under host:port]; tls_conn_free(c)
 * After every call, send what tls_output() gives (it may give ciphertext even with TLS_OK). TLS_WANT_IO
 * means: the call cannot progress until more ciphertext arrives (tls_input) or queued ciphertext is sent
 * (tls_output_done); call it again after either. When the peer closes TCP, feed everything received, read
 * until TLS_WANT_IO, then ask tls_conn_eof() whether the close was clean. */
#ifndef FETCHD_TLS_H
#define FETCHD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TLS_SHA256_BYTES 32

/* Opaque storage big enough for every backend's SHA-256 state. */
struct tls_sha256 {
	_Alignas(16) uint8_t opaque[256];
};

void tls_sha256_init(struct tls_sha256 *h);
void tls_sha256_update(struct tls_sha256 *h, const void *data, size_t len);
void tls_sha256_final(struct tls_sha256 *h, uint8_t out[TLS_SHA256_BYTES]);
/* SHA-1, for WARC payload digests only (never for security). */
#define TLS_SHA1_BYTES 20
struct tls_sha1 {
	_Alignas(16) uint8_t opaque[128];
};
void tls_sha1_init(struct tls_sha1 *h);
void tls_sha1_update(struct tls_sha1 *h, const void *data, size_t len);
void tls_sha1_final(struct tls_sha1 *h, uint8_t out[TLS_SHA1_BYTES]);

/* The backend's name and version, e.g. "mbedtls 2.28.3". */
const char *tls_backend_name(void);

/* Results. Functions return TLS_OK, a byte count (> 0), or one of these. Errors stick: once a
 * connection fails, every later call returns the same error. */
enum tls_status {
	TLS_OK = 0,
	TLS_WANT_IO = -1,          /* feed input or send output, then call again */
	TLS_CLOSED = -2,           /* the peer sent close_notify: a clean end of the stream */
	TLS_E_NOMEM = -3,
	TLS_E_CONFIG = -4,         /* bad option, unreadable CA file, no CA, a version the backend lacks */
	TLS_E_HOST = -5,           /* the host is empty or longer than TLS_HOST_MAX */
	TLS_E_STATE = -6,          /* called out of order (write before the handshake, session too late) */
	TLS_E_EXPIRED = -7,        /* a certificate in the chain has expired */
	TLS_E_NOT_YET_VALID = -8,  /* a certificate in the chain is not valid yet */
	TLS_E_WRONG_HOST = -9,     /* the certificate names neither the host name nor the IP */
	TLS_E_UNTRUSTED = -10,     /* self-signed, unknown root, or incomplete chain */
	TLS_E_BAD_CERT = -11,      /* any other certificate failure (signature, key usage, weak key) */
	TLS_E_HANDSHAKE = -12,     /* no common version or cipher, bad message, closed mid-handshake */
	TLS_E_ALERT = -13,         /* the peer sent a fatal alert (the reason names it) */
	TLS_E_PROTOCOL = -14,      /* a bad record after the handshake */
	TLS_E_TRUNCATED = -15,     /* TCP closed without close_notify (from tls_conn_eof only) */
};

/* A short fixed text for a status, e.g. "certificate expired". */
const char *tls_strerror(int status);

/* ---- client configuration: shared by every connection, read-only once made ---- */

#define TLS_DEFAULT_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
#define TLS_CA_FILE_MAX (8u << 20)    /* bytes per CA file */
#define TLS_CA_DIR_MAX_FILES 10000

enum tls_version { TLS_V12 = 12, TLS_V13 = 13 };

struct tls_config_opts {
	/* PEM bundle. NULL or "" with no ca_path either: TLS_DEFAULT_CA_FILE. */
	const char *ca_file;
	/* A directory of PEM files under subject-hash names (HHHHHHHH.N, as `openssl rehash` and
	 * update-ca-certificates make them); other names are ignored. NULL or "": none. */
	const char *ca_path;
	int min_version;    /* TLS_V12 (also for 0) or TLS_V13; the mbedTLS backend can only do TLS_V12 */
	bool no_verify;     /* [tls] verify = no: no chain, date or name checks; no CA is loaded */
};

/* CA certificates loaded, and PEM certificate blocks that failed to parse (skipped). */
struct tls_ca_count {
	unsigned loaded, failed;
};

struct tls_config;

/* The highest version the backend speaks: TLS_V12 (mbedTLS 2.28) or TLS_V13 (OpenSSL). */
int tls_backend_max_version(void);
/* Make the client config: the CA set, verification required, ALPN http/1.1, min_version. On failure
 * returns TLS_E_CONFIG or TLS_E_NOMEM with the reason in err, e.g. "min_version 1.3 needs the openssl
 * backend (mbedTLS 2.28 speaks TLS 1.2 only)" or "/x.pem: no CA certificate in it". ca may be NULL. */
int tls_config_new(struct tls_config **out, const struct tls_config_opts *o, struct tls_ca_count *ca,
		   char *err, size_t errlen);
/* Only after every connection made from it is freed. NULL is fine. */
void tls_config_free(struct tls_config *cfg);

/* ---- connections ---- */

#define TLS_HOST_MAX 255        /* bytes of host text, brackets excluded */
#define TLS_IN_BYTES 16384      /* ciphertext held between tls_input and its consumption */
#define TLS_OUT_BYTES 8192      /* ciphertext waiting to be sent */
#define TLS_REASON_MAX 192      /* bytes of tls_conn_reason, NUL included */

struct tls_conn;
struct tls_session;

/* host: the URL's host, a DNS name or an IP literal ("127.0.0.1", "::1" or "[::1]"). Names get SNI and
 * are checked against the certificate's DNS names; IP literals get no SNI and are checked against its
 * IP addresses. Returns TLS_OK, TLS_E_HOST or TLS_E_NOMEM. */
int tls_conn_new(struct tls_config *cfg, const char *host, struct tls_conn **out);
void tls_conn_free(struct tls_conn *c);

/* Ciphertext from the peer. Accepts up to tls_input_space() bytes and returns how many it took; after
 * a call returned TLS_WANT_IO for lack of input, that is the whole of TLS_IN_BYTES. */
size_t tls_input(struct tls_conn *c, const void *cipher, size_t len);
size_t tls_input_space(const struct tls_conn *c);
/* Ciphertext to send: its length (0: nothing) and *p. Send from *p, then report what went with
 * tls_output_done. The bytes at *p stay put until reported, whatever else is called meanwhile; the
 * length may be less than everything queued (call again after tls_output_done). */
size_t tls_output(struct tls_conn *c, const uint8_t **p);
void tls_output_done(struct tls_conn *c, size_t n);

/* Drive the handshake: TLS_OK once it is complete, TLS_WANT_IO, or an error (tls_conn_reason says
 * more). A certificate problem fails the handshake unless the config has no_verify. */
int tls_handshake(struct tls_conn *c);
/* Encrypt up to len bytes of plaintext into the output: returns the bytes taken (maybe fewer than len;
 * offer the rest later), TLS_WANT_IO when the output is full, or an error. Only after the handshake. */
ssize_t tls_write(struct tls_conn *c, const void *plain, size_t len);
/* Decrypt: bytes (> 0), TLS_WANT_IO, TLS_CLOSED (close_notify seen; again on every later call), or an
 * error. Call until TLS_WANT_IO after each tls_input: input is consumed only by reading. */
ssize_t tls_read(struct tls_conn *c, void *plain, size_t cap);
/* Queue our close_notify (optional, before closing a kept-alive connection): TLS_OK or TLS_WANT_IO. */
int tls_close_notify(struct tls_conn *c);
/* The peer closed TCP: TLS_CLOSED if its close_notify came first, else TLS_E_TRUNCATED (on a body
 * delimited by the close, the body is cut short), or TLS_E_HANDSHAKE if the handshake was unfinished. */
int tls_conn_eof(struct tls_conn *c);

/* Why the connection failed, for users: "certificate expired on 2020-02-01", "certificate does not
 * match host example.com", "certificate not trusted: self-signed", "handshake failed: the server sent
 * alert handshake_failure (40)"... Empty while nothing failed. */
const char *tls_conn_reason(const struct tls_conn *c);
/* After the handshake: "TLSv1.2" or "TLSv1.3"; the IANA cipher suite name ("TLS_AES_128_GCM_SHA256",
 * "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"); "http/1.1" or NULL when the server chose no ALPN; whether
 * the offered session was resumed. */
const char *tls_conn_version(const struct tls_conn *c);
const char *tls_conn_cipher(const struct tls_conn *c);
const char *tls_conn_alpn(const struct tls_conn *c);
bool tls_conn_reused(const struct tls_conn *c);

/* ---- session resumption: the caller keeps a cache keyed by host:port ---- */

/* A resumable copy of the connection's session, owned by the caller, or NULL (none yet, or the server
 * offers no resumption). With TLS 1.3 the tickets come after the handshake: ask once the response has
 * been read. Store it under host:port, replacing the old one. */
struct tls_session *tls_conn_session(struct tls_conn *c);
/* Offer a session from the cache, before the first tls_handshake; the session stays the caller's.
 * Returns TLS_OK, TLS_E_STATE (too late) or TLS_E_NOMEM. Use it only for the same host:port. */
int tls_conn_set_session(struct tls_conn *c, const struct tls_session *s);
void tls_session_free(struct tls_session *s);

#endif

/* openssl.c - the OpenSSL 3 backend of tls.h: SHA-256 through libcrypto (SHA-NI where the CPU has it),
 * and TLS 1.2/1.3 client connections over a BIO pair: OpenSSL reads and writes its end, tls_input writes
 * ours and tls_output hands out the other direction's bytes in place (BIO_nread0). */
#define OPENSSL_SUPPRESS_DEPRECATED /* the one-shot SHA256_* API is deprecated but fast and allocation-free */
#include "tls/common.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(struct tls_sha256), "tls_sha256 storage too small for SHA256_CTX");

void tls_sha256_init(struct tls_sha256 *h)
{
	SHA256_Init((SHA256_CTX *)h->opaque);
}

void tls_sha256_update(struct tls_sha256 *h, const void *data, size_t len)
{
	SHA256_Update((SHA256_CTX *)h->opaque, data, len);
}

void tls_sha256_final(struct tls_sha256 *h, uint8_t out[TLS_SHA256_BYTES])
{
	SHA256_Final(out, (SHA256_CTX *)h->opaque);
}

_Static_assert(sizeof(SHA_CTX) <= sizeof(struct tls_sha1), "tls_sha1 storage too small for SHA_CTX");

void tls_sha1_init(struct tls_sha1 *h)
{
	SHA1_Init((SHA_CTX *)h->opaque);
}

void tls_sha1_update(struct tls_sha1 *h, const void *data, size_t len)
{
	SHA1_Update((SHA_CTX *)h->opaque, data, len);
}

void tls_sha1_final(struct tls_sha1 *h, uint8_t out[TLS_SHA1_BYTES])
{
	SHA1_Final(out, (SHA_CTX *)h->opaque);
}

const char *tls_backend_name(void)
{
	return "openssl " OPENSSL_FULL_VERSION_STR;
}

int tls_backend_max_version(void)
{
	return TLS_V13;
}

/* Output kept free by tls_write for what the protocol itself sends (alerts, key updates), and the
 * most a record adds to its plaintext. */
#define OUT_RESERVE 256
#define RECORD_OVERHEAD 256

struct tls_config {
	SSL_CTX *ctx;
	bool verify;
};

struct tls_session {
	SSL_SESSION *s;
};

struct tls_conn {
	SSL *ssl;                       /* owns the inner half of the pair */
	BIO *net;                       /* our half: we write input to it, read output from it */
	struct tls_config *cfg;
	int err;                        /* sticky error, 0 while none */
	bool started, done, closed;
	struct tls_host host;
	struct tls_cert_fail fail;      /* the first certificate problem the verify callback saw */
	char reason[TLS_REASON_MAX];
};

/* ---- certificate checks ---- */

static void name_cn(X509_NAME *n, char *out, size_t cap)
{
	int i = n ? X509_NAME_get_index_by_NID(n, NID_commonName, -1) : -1;
	const ASN1_STRING *s = i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)) : NULL;

	out[0] = '\0';
	if (s)
		tls_copy_printable(out, cap, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
}

static void fail_date(struct tls_cert_fail *f, int status, const ASN1_TIME *t)
{
	struct tm tm;

	f->status = status;
	if (t && ASN1_TIME_to_tm(t, &tm) == 1)
		f->year = tm.tm_year + 1900, f->month = tm.tm_mon + 1, f->day = tm.tm_mday;
}

static void note_failure(struct tls_cert_fail *f, int err, X509 *cert)
{
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		fail_date(f, TLS_E_EXPIRED, cert ? X509_get0_notAfter(cert) : NULL);
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		fail_date(f, TLS_E_NOT_YET_VALID, cert ? X509_get0_notBefore(cert) : NULL);
		break;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		f->status = TLS_E_WRONG_HOST;
		break;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		f->status = TLS_E_UNTRUSTED, f->self_signed = true;
		break;
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		f->status = TLS_E_UNTRUSTED;
		name_cn(cert ? X509_get_issuer_name(cert) : NULL, f->issuer, sizeof f->issuer);
		break;
	default:
		f->status = TLS_E_BAD_CERT;
		snprintf(f->text, sizeof f->text, "%s", X509_verify_cert_error_string(err));
	}
}

/* Verification stops at the first problem; note it for the reason. */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;

	if (!ok && c && !c->fail.status)
		note_failure(&c->fail, X509_STORE_CTX_get_error(x), X509_STORE_CTX_get_current_cert(x));
	return ok;
}

/* ---- configuration ---- */

static int ca_add(void *ctx, const char *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	int ok = x && X509_STORE_add_cert(ctx, x) == 1;

	X509_free(x);
	BIO_free(b);
	ERR_clear_error();
	return ok ? 0 : -1;
}

static int config_setup(struct tls_config *cfg, int min_version)
{
	static const unsigned char alpn[] = "\x08http/1.1";
	SSL_CTX *ctx = cfg->ctx;

	if (!SSL_CTX_set_min_proto_version(ctx, min_version == TLS_V13 ? TLS1_3_VERSION : TLS1_2_VERSION) ||
	    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1) != 0)
		return TLS_E_NOMEM;
	SSL_CTX_set_verify(ctx, cfg->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, cfg->verify ? verify_cb : NULL);
	/* Any CA in the set is a trust anchor, root or not, as with mbedTLS (and curl). */
	X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	return TLS_OK;
}

int tls_config_new(struct tls_config **out, const struct tls_config_opts *o, struct tls_ca_count *ca,
		   char *err, size_t errlen)
{
	struct tls_ca_count n = { 0, 0 };
	struct tls_config *cfg;
	int rc;

	*out = NULL;
	if (ca)
		*ca = n;
	if ((rc = tls_opts_check(o, TLS_V13, err, errlen)) != TLS_OK)
		return rc;
	if (!(cfg = calloc(1, sizeof *cfg)) || !(cfg->ctx = SSL_CTX_new(TLS_client_method()))) {
		free(cfg);
		snprintf(err, errlen, "out of memory");
		return TLS_E_NOMEM;
	}
	cfg->verify = !o->no_verify;
	rc = cfg->verify ? tls_ca_load(o, ca_add, SSL_CTX_get_cert_store(cfg->ctx), &n, err, errlen) : TLS_OK;
	if (ca)
		*ca = n;
	if (rc == TLS_OK && (rc = config_setup(cfg, o->min_version)) != TLS_OK)
		snprintf(err, errlen, "OpenSSL configuration failed");
	if (rc != TLS_OK) {
		tls_config_free(cfg);
		return rc;
	}
	*out = cfg;
	return TLS_OK;
}

void tls_config_free(struct tls_config *cfg)
{
	if (!cfg)
		return;
	SSL_CTX_free(cfg->ctx);
	free(cfg);
}

/* ---- buffers ---- */

size_t tls_input_space(const struct tls_conn *c)
{
	return BIO_ctrl_get_write_guarantee(c->net);
}

size_t tls_input(struct tls_conn *c, const void *cipher, size_t len)
{
	size_t room = BIO_ctrl_get_write_guarantee(c->net);

	if (len > room)
		len = room;
	if (len == 0)
		return 0;
	int n = BIO_write(c->net, cipher, (int)len);
	return n > 0 ? (size_t)n : 0;
}

size_t tls_output(struct tls_conn *c, const uint8_t **p)
{
	char *buf = NULL;
	ossl_ssize_t n = BIO_nread0(c->net, &buf);

	*p = (const uint8_t *)buf;
	return n > 0 ? (size_t)n : 0;
}

void tls_output_done(struct tls_conn *c, size_t n)
{
	char *buf;

	while (n > 0) {
		ossl_ssize_t got = BIO_nread(c->net, &buf, n > INT_MAX ? INT_MAX : (int)n);
		if (got <= 0)
			break;
		n -= (size_t)got;
	}
}

/* ---- connections ---- */

static int conn_host(struct tls_conn *c)
{
	X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);

	if (c->host.kind != TLS_HOST_NAME)
		return X509_VERIFY_PARAM_set1_ip(param, c->host.ip, c->host.kind == TLS_HOST_IPV4 ? 4 : 16);
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	return SSL_set_tlsext_host_name(c->ssl, c->host.name) == 1 && SSL_set1_host(c->ssl, c->host.name) == 1;
}

int tls_conn_new(struct tls_config *cfg, const char *host, struct tls_conn **out)
{
	struct tls_conn *c = calloc(1, sizeof *c);
	BIO *inner = NULL;
	int rc;

	*out = NULL;
	if (!c)
		return TLS_E_NOMEM;
	if ((rc = tls_host_parse(&c->host, host)) != TLS_OK) {
		free(c);
		return rc;
	}
	c->cfg = cfg;
	if (!(c->ssl = SSL_new(cfg->ctx)) || !BIO_new_bio_pair(&inner, TLS_OUT_BYTES, &c->net, TLS_IN_BYTES)) {
		tls_conn_free(c);
		ERR_clear_error();
		return TLS_E_NOMEM;
	}
	SSL_set_bio(c->ssl, inner, inner);
	SSL_set_app_data(c->ssl, c);
	SSL_set_connect_state(c->ssl);
	if (!conn_host(c)) {
		tls_conn_free(c);
		ERR_clear_error();
		return TLS_E_NOMEM;
	}
	*out = c;
	return TLS_OK;
}

void tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl);
	BIO_free(c->net);
	free(c);
}

static int fail(struct tls_conn *c, int status)
{
	c->err = status;
	return status;
}

/* The error queue's alert, if the peer sent one, else its first error. */
static unsigned long pick_error(int *alert)
{
	unsigned long e, first = 0;

	*alert = -1;
	while ((e = ERR_get_error()) != 0) {
		int r = ERR_GET_REASON(e);
		if (!first)
			first = e;
		if (ERR_GET_LIB(e) == ERR_LIB_SSL && r >= SSL_AD_REASON_OFFSET && r < SSL_AD_REASON_OFFSET + 256 &&
		    *alert < 0)
			*alert = r - SSL_AD_REASON_OFFSET;
	}
	return first;
}

/* Map a failed SSL call's error queue to a status, with the reason. in_hs: during the handshake. */
static int classify(struct tls_conn *c, bool in_hs)
{
	int alert;
	unsigned long e = pick_error(&alert);
	const char *text = e ? ERR_reason_error_string(e) : NULL;

	if (alert >= 0) {
		tls_reason_alert(c->reason, sizeof c->reason, alert, in_hs);
		return TLS_E_ALERT;
	}
	if (in_hs && c->cfg->verify && c->fail.status && SSL_get_verify_result(c->ssl) != X509_V_OK) {
		tls_reason_cert(c->reason, sizeof c->reason, &c->fail, c->host.name);
		return c->fail.status;
	}
	if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE) {
		snprintf(c->reason, sizeof c->reason, "out of memory");
		return TLS_E_NOMEM;
	}
	tls_reason_text(c->reason, sizeof c->reason, in_hs ? "handshake failed" : "TLS protocol error",
			text ? text : "unknown error");
	return in_hs ? TLS_E_HANDSHAKE : TLS_E_PROTOCOL;
}

static int ssl_result(struct tls_conn *c, int r, bool in_hs)
{
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return TLS_WANT_IO;
	case SSL_ERROR_ZERO_RETURN:
		c->closed = true;
		return TLS_CLOSED;
	}
	return fail(c, classify(c, in_hs));
}

int tls_handshake(struct tls_conn *c)
{
	if (c->err)
		return c->err;
	if (c->done)
		return TLS_OK;
	c->started = true;
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r != 1)
		return ssl_result(c, r, true);
	c->done = true;
	return TLS_OK;
}

ssize_t tls_write(struct tls_conn *c, const void *plain, size_t len)
{
	if (c->err)
		return c->err;
	if (!c->done)
		return TLS_E_STATE;
	if (len == 0)
		return 0;
	/* Take only what fits as one record, so OpenSSL never holds a half-sent record of ours. */
	size_t room = BIO_ctrl_get_write_guarantee(SSL_get_wbio(c->ssl)), need = RECORD_OVERHEAD + OUT_RESERVE;
	if (room <= need)
		return TLS_WANT_IO;
	if (len > room - need)
		len = room - need;
	if (len > SSL3_RT_MAX_PLAIN_LENGTH)
		len = SSL3_RT_MAX_PLAIN_LENGTH;
	ERR_clear_error();
	int r = SSL_write(c->ssl, plain, (int)len);
	return r > 0 ? r : ssl_result(c, r, false);
}

ssize_t tls_read(struct tls_conn *c, void *plain, size_t cap)
{
	if (c->err)
		return c->err;
	if (!c->done)
		return TLS_E_STATE;
	if (c->closed)
		return TLS_CLOSED;
	if (cap == 0)
		return 0;
	ERR_clear_error();
	int r = SSL_read(c->ssl, plain, cap > INT_MAX ? INT_MAX : (int)cap);
	return r > 0 ? r : ssl_result(c, r, false);
}

int tls_close_notify(struct tls_conn *c)
{
	if (c->err)
		return c->err;
	if (!c->done)
		return TLS_E_STATE;
	ERR_clear_error();
	int r = SSL_shutdown(c->ssl);
	if (r >= 0)
		return TLS_OK;
	r = ssl_result(c, r, false);
	return r == TLS_CLOSED ? TLS_OK : r;
}

int tls_conn_eof(struct tls_conn *c)
{
	if (c->closed)
		return TLS_CLOSED;
	if (c->err)
		return c->err;
	if (!c->done) {
		tls_reason_text(c->reason, sizeof c->reason, "handshake failed",
				"the server closed the connection");
		return fail(c, TLS_E_HANDSHAKE);
	}
	snprintf(c->reason, sizeof c->reason, "connection closed without close_notify (truncated)");
	return TLS_E_TRUNCATED;
}

const char *tls_conn_reason(const struct tls_conn *c)
{
	return c->reason;
}

const char *tls_conn_version(const struct tls_conn *c)
{
	return c->done ? SSL_get_version(c->ssl) : NULL;
}

const char *tls_conn_cipher(const struct tls_conn *c)
{
	const SSL_CIPHER *ci = c->done ? SSL_get_current_cipher(c->ssl) : NULL;

	return ci ? SSL_CIPHER_standard_name(ci) : NULL;
}

const char *tls_conn_alpn(const struct tls_conn *c)
{
	const unsigned char *p = NULL;
	unsigned len = 0;

	if (c->done)
		SSL_get0_alpn_selected(c->ssl, &p, &len);
	return len == 8 && !memcmp(p, "http/1.1", 8) ? "http/1.1" : NULL;
}

bool tls_conn_reused(const struct tls_conn *c)
{
	return c->done && SSL_session_reused(c->ssl);
}

/* ---- sessions ---- */

/* Sessions are copied in and out: OpenSSL marks a session it shares with a connection that ends
 * without our close_notify as not resumable. */
struct tls_session *tls_conn_session(struct tls_conn *c)
{
	SSL_SESSION *ss = c->done && !c->err ? SSL_get0_session(c->ssl) : NULL;
	struct tls_session *s;

	if (!ss || !SSL_SESSION_is_resumable(ss) || !(s = malloc(sizeof *s)))
		return NULL;
	if (!(s->s = SSL_SESSION_dup(ss))) {
		free(s);
		return NULL;
	}
	return s;
}

int tls_conn_set_session(struct tls_conn *c, const struct tls_session *s)
{
	if (c->started)
		return TLS_E_STATE;
	SSL_SESSION *copy = SSL_SESSION_dup(s->s);
	int ok = copy && SSL_set_session(c->ssl, copy) == 1;
	SSL_SESSION_free(copy); /* the connection holds its own reference */
	return ok ? TLS_OK : TLS_E_NOMEM;
}

void tls_session_free(struct tls_session *s)
{
	if (!s)
		return;
	SSL_SESSION_free(s->s);
	free(s);
}

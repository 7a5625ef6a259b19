/* mbedtls.c - the mbedTLS 2.28 backend of tls.h: SHA-256 through mbedcrypto, and TLS 1.2 client
 * connections whose bio callbacks move ciphertext through two bounded buffers inside the connection
 * (WANT_READ when the input is empty, WANT_WRITE when the output is full). mbedTLS 2.28 checks no IP
 * addresses in certificates, so IP-literal hosts are matched against the iPAddress names here. */
#include "tls/common.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <mbedtls/asn1.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/sha1.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_internal.h> /* mbedtls_ssl_flush_output */
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>

_Static_assert(sizeof(mbedtls_sha256_context) <= sizeof(struct tls_sha256),
	       "tls_sha256 storage too small for mbedtls_sha256_context");

/* Output kept free by tls_write for what the protocol itself sends (alerts, close_notify). */
#define OUT_RESERVE 256

void tls_sha256_init(struct tls_sha256 *h)
{
	mbedtls_sha256_context *c = (mbedtls_sha256_context *)h->opaque;
	mbedtls_sha256_init(c);
	mbedtls_sha256_starts_ret(c, 0);
}

void tls_sha256_update(struct tls_sha256 *h, const void *data, size_t len)
{
	mbedtls_sha256_update_ret((mbedtls_sha256_context *)h->opaque, data, len);
}

void tls_sha256_final(struct tls_sha256 *h, uint8_t out[TLS_SHA256_BYTES])
{
	mbedtls_sha256_context *c = (mbedtls_sha256_context *)h->opaque;
	mbedtls_sha256_finish_ret(c, out);
	mbedtls_sha256_free(c);
}

_Static_assert(sizeof(mbedtls_sha1_context) <= sizeof(struct tls_sha1),
	       "tls_sha1 storage too small for mbedtls_sha1_context");

void tls_sha1_init(struct tls_sha1 *h)
{
	mbedtls_sha1_context *c = (mbedtls_sha1_context *)h->opaque;
	mbedtls_sha1_init(c);
	mbedtls_sha1_starts_ret(c);
}

void tls_sha1_update(struct tls_sha1 *h, const void *data, size_t len)
{
	mbedtls_sha1_update_ret((mbedtls_sha1_context *)h->opaque, data, len);
}

void tls_sha1_final(struct tls_sha1 *h, uint8_t out[TLS_SHA1_BYTES])
{
	mbedtls_sha1_context *c = (mbedtls_sha1_context *)h->opaque;
	mbedtls_sha1_finish_ret(c, out);
	mbedtls_sha1_free(c);
}

const char *tls_backend_name(void)
{
	return "mbedtls " MBEDTLS_VERSION_STRING;
}

int tls_backend_max_version(void)
{
	return TLS_V12;
}

struct tls_config {
	mbedtls_ssl_config conf;
	mbedtls_x509_crt ca;
	bool verify;
};

struct tls_session {
	mbedtls_ssl_session s;
};

struct tls_conn {
	mbedtls_ssl_context ssl;
	struct tls_config *cfg;
	int err;                        /* sticky error, 0 while none */
	bool started, done, closed, offered, reused;
	size_t in_off, in_len;          /* in[in_off, in_len): ciphertext not yet consumed */
	size_t out_off, out_len;        /* out[out_off, out_len): ciphertext not yet sent */
	struct tls_host host;
	struct tls_cert_fail fail;      /* the worst certificate problem the verify callback saw */
	uint8_t offered_master[48];
	char cipher[64];
	char reason[TLS_REASON_MAX];
	uint8_t in[TLS_IN_BYTES];
	uint8_t out[TLS_OUT_BYTES];
};

/* ---- configuration ---- */

static int rng(void *unused, unsigned char *out, size_t len)
{
	(void)unused;
	while (len) {
		ssize_t n = getrandom(out, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
		out += n, len -= (size_t)n;
	}
	return 0;
}

static int ca_add(void *ctx, const char *pem, size_t len)
{
	return mbedtls_x509_crt_parse(ctx, (const unsigned char *)pem, len + 1) == 0 ? 0 : -1;
}

static const char *alpn_list[] = { "http/1.1", NULL };
/* mbedTLS 2.28 offers secp521r1 first, and servers that follow the client's order then make each
 * handshake pay ~4 ms for it; this is the order mbedTLS 3 and browsers use. */
static const mbedtls_ecp_group_id curve_list[] = {
	MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_SECP384R1,
	MBEDTLS_ECP_DP_SECP521R1, MBEDTLS_ECP_DP_NONE,
};

static int config_setup(struct tls_config *cfg)
{
	mbedtls_ssl_config *conf = &cfg->conf;

	if (mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
					MBEDTLS_SSL_PRESET_DEFAULT) != 0)
		return TLS_E_NOMEM;
	mbedtls_ssl_conf_rng(conf, rng, NULL);
	mbedtls_ssl_conf_authmode(conf, cfg->verify ? MBEDTLS_SSL_VERIFY_REQUIRED : MBEDTLS_SSL_VERIFY_NONE);
	if (cfg->verify)
		mbedtls_ssl_conf_ca_chain(conf, &cfg->ca, NULL);
	mbedtls_ssl_conf_curves(conf, curve_list);
	mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_session_tickets(conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
	mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
	return mbedtls_ssl_conf_alpn_protocols(conf, alpn_list) == 0 ? TLS_OK : TLS_E_CONFIG;
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
	if ((rc = tls_opts_check(o, TLS_V12, err, errlen)) != TLS_OK)
		return rc;
	if (!(cfg = calloc(1, sizeof *cfg))) {
		snprintf(err, errlen, "out of memory");
		return TLS_E_NOMEM;
	}
	mbedtls_ssl_config_init(&cfg->conf);
	mbedtls_x509_crt_init(&cfg->ca);
	cfg->verify = !o->no_verify;
	rc = cfg->verify ? tls_ca_load(o, ca_add, &cfg->ca, &n, err, errlen) : TLS_OK;
	if (ca)
		*ca = n;
	if (rc == TLS_OK && (rc = config_setup(cfg)) != TLS_OK)
		snprintf(err, errlen, "mbedTLS configuration failed");
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
	mbedtls_ssl_config_free(&cfg->conf);
	mbedtls_x509_crt_free(&cfg->ca);
	free(cfg);
}

/* ---- certificate checks ---- */

/* Does the certificate's subjectAltName hold h's address as an iPAddress ([7]) entry? */
static bool ip_san_match(const mbedtls_x509_crt *crt, const struct tls_host *h)
{
	size_t iplen = h->kind == TLS_HOST_IPV4 ? 4 : 16, len;
	unsigned char *p = crt->v3_ext.p, *end = p + crt->v3_ext.len;
	const int seq = MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE;

	if (!p || mbedtls_asn1_get_tag(&p, end, &len, seq) != 0)
		return false;
	for (end = p + len; p < end;) {
		mbedtls_x509_buf oid;
		int critical;
		if (mbedtls_asn1_get_tag(&p, end, &len, seq) != 0)
			return false;
		unsigned char *ext_end = p + len;
		if (mbedtls_asn1_get_tag(&p, ext_end, &oid.len, MBEDTLS_ASN1_OID) != 0)
			return false;
		oid.p = p;
		p += oid.len;
		if (MBEDTLS_OID_CMP(MBEDTLS_OID_SUBJECT_ALT_NAME, &oid) != 0) {
			p = ext_end;
			continue;
		}
		mbedtls_asn1_get_bool(&p, ext_end, &critical); /* optional */
		if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING) != 0 ||
		    mbedtls_asn1_get_tag(&p, ext_end, &len, seq) != 0)
			return false;
		for (unsigned char *names_end = p + len; p < names_end; p += len) {
			unsigned char tag = *p++;
			if (mbedtls_asn1_get_len(&p, names_end, &len) != 0)
				return false;
			if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && len == iplen && !memcmp(p, h->ip, len))
				return true;
		}
		return false;
	}
	return false;
}

static void name_cn(const mbedtls_x509_name *n, char *out, size_t cap)
{
	out[0] = '\0';
	for (; n; n = n->next)
		if (n->oid.p && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) {
			tls_copy_printable(out, cap, n->val.p, n->val.len);
			return;
		}
}

/* The order OpenSSL reports them in: chain first, then names, then dates. */
static int fail_rank(int status)
{
	switch (status) {
	case TLS_E_UNTRUSTED: return 1;
	case TLS_E_BAD_CERT: return 2;
	case TLS_E_WRONG_HOST: return 3;
	case TLS_E_EXPIRED:
	case TLS_E_NOT_YET_VALID: return 4;
	}
	return 5;
}

static void fail_date(struct tls_cert_fail *f, int status, const mbedtls_x509_time *t)
{
	f->status = status, f->year = t->year, f->month = t->mon, f->day = t->day;
}

static void note_failure(struct tls_conn *c, const mbedtls_x509_crt *crt, int depth, uint32_t flags)
{
	const uint32_t named = MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE |
			       MBEDTLS_X509_BADCERT_CN_MISMATCH | MBEDTLS_X509_BADCERT_NOT_TRUSTED;
	struct tls_cert_fail f;

	memset(&f, 0, sizeof f);
	if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) {
		f.status = TLS_E_UNTRUSTED;
		f.self_signed = depth == 0 && crt->issuer_raw.len == crt->subject_raw.len &&
				!memcmp(crt->issuer_raw.p, crt->subject_raw.p, crt->subject_raw.len);
		name_cn(&crt->issuer, f.issuer, sizeof f.issuer);
	} else if (flags & ~named) {
		f.status = TLS_E_BAD_CERT;
		mbedtls_x509_crt_verify_info(f.text, sizeof f.text, "", flags & ~named);
		f.text[strcspn(f.text, "\n")] = '\0';
	} else if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) {
		f.status = TLS_E_WRONG_HOST;
	} else if (flags & MBEDTLS_X509_BADCERT_EXPIRED) {
		fail_date(&f, TLS_E_EXPIRED, &crt->valid_to);
	} else if (flags & MBEDTLS_X509_BADCERT_FUTURE) {
		fail_date(&f, TLS_E_NOT_YET_VALID, &crt->valid_from);
	} else {
		return;
	}
	if (!c->fail.status || fail_rank(f.status) < fail_rank(c->fail.status))
		c->fail = f;
}

/* Called for each certificate of the chain, root first: adds the IP check, notes what failed. */
static int verify_cb(void *p, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
	struct tls_conn *c = p;

	if (depth == 0 && c->host.kind != TLS_HOST_NAME && !ip_san_match(crt, &c->host))
		*flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
	note_failure(c, crt, depth, *flags);
	return 0;
}

/* ---- buffers ---- */

static int bio_recv(void *p, unsigned char *buf, size_t len)
{
	struct tls_conn *c = p;
	size_t n = c->in_len - c->in_off;

	if (n == 0)
		return MBEDTLS_ERR_SSL_WANT_READ;
	if (n > len)
		n = len;
	if (n > INT_MAX)
		n = INT_MAX;
	memcpy(buf, c->in + c->in_off, n);
	c->in_off += n;
	return (int)n;
}

/* Free bytes at the end of the output; pending bytes never move, an empty buffer starts over. */
static size_t out_room(struct tls_conn *c)
{
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	return TLS_OUT_BYTES - c->out_len;
}

static int bio_send(void *p, const unsigned char *buf, size_t len)
{
	struct tls_conn *c = p;
	size_t n = out_room(c);

	if (n == 0)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	if (n > len)
		n = len;
	memcpy(c->out + c->out_len, buf, n);
	c->out_len += n;
	return (int)n;
}

size_t tls_input_space(const struct tls_conn *c)
{
	return TLS_IN_BYTES - (c->in_len - c->in_off);
}

size_t tls_input(struct tls_conn *c, const void *cipher, size_t len)
{
	size_t held = c->in_len - c->in_off;

	if (len > TLS_IN_BYTES - held)
		len = TLS_IN_BYTES - held;
	if (c->in_len + len > TLS_IN_BYTES) {
		memmove(c->in, c->in + c->in_off, held);
		c->in_off = 0, c->in_len = held;
	}
	memcpy(c->in + c->in_len, cipher, len);
	c->in_len += len;
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
	return len;
}

size_t tls_output(struct tls_conn *c, const uint8_t **p)
{
	*p = c->out + c->out_off;
	return c->out_len - c->out_off;
}

void tls_output_done(struct tls_conn *c, size_t n)
{
	size_t pending = c->out_len - c->out_off;

	c->out_off += n < pending ? n : pending;
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
}

/* ---- connections ---- */

int tls_conn_new(struct tls_config *cfg, const char *host, struct tls_conn **out)
{
	struct tls_conn *c = calloc(1, sizeof *c);
	int rc;

	*out = NULL;
	if (!c)
		return TLS_E_NOMEM;
	if ((rc = tls_host_parse(&c->host, host)) != TLS_OK) {
		free(c);
		return rc;
	}
	c->cfg = cfg;
	mbedtls_ssl_init(&c->ssl);
	if (mbedtls_ssl_setup(&c->ssl, &cfg->conf) != 0 ||
	    (c->host.kind == TLS_HOST_NAME && mbedtls_ssl_set_hostname(&c->ssl, c->host.name) != 0)) {
		tls_conn_free(c);
		return TLS_E_NOMEM;
	}
	mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
	if (cfg->verify)
		mbedtls_ssl_set_verify(&c->ssl, verify_cb, c);
	*out = c;
	return TLS_OK;
}

void tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	mbedtls_ssl_free(&c->ssl);
	free(c);
}

static int fail(struct tls_conn *c, int status)
{
	c->err = status;
	return status;
}

static bool cert_failure(struct tls_conn *c, int r)
{
	uint32_t vr = mbedtls_ssl_get_verify_result(&c->ssl);

	if (!c->cfg->verify || vr == 0 || vr == UINT32_MAX)
		return false;
	if (r != MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && r != MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE)
		return false;
	if (!c->fail.status) { /* a key usage problem, found after the chain check */
		c->fail.status = TLS_E_BAD_CERT;
		mbedtls_x509_crt_verify_info(c->fail.text, sizeof c->fail.text, "", vr);
		c->fail.text[strcspn(c->fail.text, "\n")] = '\0';
	}
	return true;
}

/* Map an mbedTLS error to a status, with the reason. in_hs: during the handshake. */
static int classify(struct tls_conn *c, int r, bool in_hs)
{
	char text[96];

	if (r == MBEDTLS_ERR_SSL_ALLOC_FAILED || r == MBEDTLS_ERR_X509_ALLOC_FAILED) {
		snprintf(c->reason, sizeof c->reason, "out of memory");
		return TLS_E_NOMEM;
	}
	if (r == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) {
		tls_reason_alert(c->reason, sizeof c->reason, c->ssl.in_msg[1], in_hs);
		return TLS_E_ALERT;
	}
	if (in_hs && cert_failure(c, r)) {
		tls_reason_cert(c->reason, sizeof c->reason, &c->fail, c->host.name);
		return c->fail.status;
	}
	if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
		snprintf(text, sizeof text, "the server closed the connection");
	else
		mbedtls_strerror(r, text, sizeof text);
	tls_reason_text(c->reason, sizeof c->reason, in_hs ? "handshake failed" : "TLS protocol error", text);
	return in_hs ? TLS_E_HANDSHAKE : TLS_E_PROTOCOL;
}

static void handshake_done(struct tls_conn *c)
{
	const char *name = mbedtls_ssl_get_ciphersuite(&c->ssl);

	c->done = true;
	c->reused = c->offered && c->ssl.session &&
		    !memcmp(c->ssl.session->master, c->offered_master, sizeof c->offered_master);
	/* mbedTLS spells the IANA names with dashes */
	tls_copy_printable(c->cipher, sizeof c->cipher, name ? name : "", name ? strlen(name) : 0);
	for (char *p = c->cipher; *p; p++)
		if (*p == '-')
			*p = '_';
}

int tls_handshake(struct tls_conn *c)
{
	if (c->err)
		return c->err;
	if (c->done)
		return TLS_OK;
	c->started = true;
	int r = mbedtls_ssl_handshake(&c->ssl);
	if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
		return TLS_WANT_IO;
	if (r != 0)
		return fail(c, classify(c, r, true));
	handshake_done(c);
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
	/* Output the protocol left pending first: mbedtls_ssl_write would take it for ours. */
	int r = c->ssl.out_left ? mbedtls_ssl_flush_output(&c->ssl) : 0;
	if (r == MBEDTLS_ERR_SSL_WANT_WRITE)
		return TLS_WANT_IO;
	if (r != 0)
		return fail(c, classify(c, r, false));
	/* Take only what fits as one record, so mbedTLS never holds a half-sent record of ours. */
	int exp = mbedtls_ssl_get_record_expansion(&c->ssl), max = mbedtls_ssl_get_max_out_record_payload(&c->ssl);
	size_t room = out_room(c), need = (exp > 0 ? (size_t)exp : 256) + OUT_RESERVE;
	if (room <= need)
		return TLS_WANT_IO;
	if (len > room - need)
		len = room - need;
	if (max > 0 && len > (size_t)max)
		len = (size_t)max;
	r = mbedtls_ssl_write(&c->ssl, plain, len);
	if (r >= 0)
		return r;
	if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
		return TLS_WANT_IO;
	return fail(c, classify(c, r, false));
}

ssize_t tls_read(struct tls_conn *c, void *plain, size_t cap)
{
	if (c->err)
		return c->err;
	if (!c->done)
		return TLS_E_STATE;
	if (c->closed)
		return TLS_CLOSED;
	int r = mbedtls_ssl_read(&c->ssl, plain, cap > INT_MAX ? INT_MAX : cap);
	if (r > 0)
		return r;
	if (r == 0 || r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
		return TLS_WANT_IO;
	if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
		c->closed = true;
		return TLS_CLOSED;
	}
	return fail(c, classify(c, r, false));
}

int tls_close_notify(struct tls_conn *c)
{
	if (c->err)
		return c->err;
	if (!c->done)
		return TLS_E_STATE;
	int r = mbedtls_ssl_close_notify(&c->ssl);
	if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
		return TLS_WANT_IO;
	return r == 0 ? TLS_OK : fail(c, classify(c, r, false));
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
	return c->done ? mbedtls_ssl_get_version(&c->ssl) : NULL;
}

const char *tls_conn_cipher(const struct tls_conn *c)
{
	return c->done ? c->cipher : NULL;
}

const char *tls_conn_alpn(const struct tls_conn *c)
{
	return c->done && mbedtls_ssl_get_alpn_protocol(&c->ssl) ? "http/1.1" : NULL;
}

bool tls_conn_reused(const struct tls_conn *c)
{
	return c->reused;
}

/* ---- sessions ---- */

struct tls_session *tls_conn_session(struct tls_conn *c)
{
	struct tls_session *s;

	if (!c->done || c->err || !(s = calloc(1, sizeof *s)))
		return NULL;
	mbedtls_ssl_session_init(&s->s);
	if (mbedtls_ssl_get_session(&c->ssl, &s->s) != 0 || (s->s.id_len == 0 && s->s.ticket_len == 0)) {
		tls_session_free(s);
		return NULL;
	}
	return s;
}

int tls_conn_set_session(struct tls_conn *c, const struct tls_session *s)
{
	if (c->started)
		return TLS_E_STATE;
	int r = mbedtls_ssl_set_session(&c->ssl, &s->s);
	if (r != 0)
		return r == MBEDTLS_ERR_SSL_ALLOC_FAILED ? TLS_E_NOMEM : TLS_E_STATE;
	memcpy(c->offered_master, s->s.master, sizeof c->offered_master);
	c->offered = true;
	return TLS_OK;
}

void tls_session_free(struct tls_session *s)
{
	if (!s)
		return;
	mbedtls_ssl_session_free(&s->s);
	free(s);
}

/* common.h - what both TLS backends share, private to tls/: the host's kind, loading CA files and
 * directories into the backend's store, and the words of tls_strerror and tls_conn_reason. */
#ifndef FETCHD_TLS_COMMON_H
#define FETCHD_TLS_COMMON_H

#include "tls/tls.h"

enum tls_host_kind { TLS_HOST_NAME, TLS_HOST_IPV4, TLS_HOST_IPV6 };

struct tls_host {
	enum tls_host_kind kind;
	uint8_t ip[16];                 /* 4 or 16 bytes, network order */
	char name[TLS_HOST_MAX + 1];    /* lowercase, no brackets, no trailing dot */
};

/* TLS_OK or TLS_E_HOST (empty, too long, or bad characters in a name). */
int tls_host_parse(struct tls_host *h, const char *text);

/* Parse one PEM certificate block (NUL-terminated, len without the NUL) into the backend's CA set:
 * 0, or -1 when it is not a certificate the backend can use. */
typedef int (*tls_ca_add_fn)(void *ctx, const char *pem, size_t len);

/* Check min_version against what the backend speaks: TLS_OK or TLS_E_CONFIG with err. */
int tls_opts_check(const struct tls_config_opts *o, int backend_max, char *err, size_t errlen);
/* Load o's ca_file and ca_path (or TLS_DEFAULT_CA_FILE) through add, counting into n. TLS_OK,
 * TLS_E_CONFIG (unreadable, too big, nothing usable) or TLS_E_NOMEM, with err. */
int tls_ca_load(const struct tls_config_opts *o, tls_ca_add_fn add, void *ctx, struct tls_ca_count *n,
		char *err, size_t errlen);

/* What a certificate check found, for the reason. */
struct tls_cert_fail {
	int status;             /* TLS_E_EXPIRED .. TLS_E_BAD_CERT; 0: nothing found */
	bool self_signed;       /* TLS_E_UNTRUSTED: the server's certificate signed itself */
	int year, month, day;   /* TLS_E_EXPIRED: not after; TLS_E_NOT_YET_VALID: not before */
	char issuer[64];        /* TLS_E_UNTRUSTED: the common name of the unknown issuer */
	char text[96];          /* TLS_E_BAD_CERT: the backend's words */
};

void tls_reason_cert(char *out, size_t cap, const struct tls_cert_fail *f, const char *host);
/* alert: the description number the peer sent; in_handshake adds "handshake failed: ". */
void tls_reason_alert(char *out, size_t cap, int alert, bool in_handshake);
/* "<prefix>: <text>" */
void tls_reason_text(char *out, size_t cap, const char *prefix, const char *text);
/* The RFC name of an alert description ("handshake_failure"), or "unknown". */
const char *tls_alert_name(int alert);
/* Copy len bytes as printable ASCII (others become '?'), NUL-terminated, cut to cap. */
void tls_copy_printable(char *dst, size_t cap, const void *src, size_t len);

#endif

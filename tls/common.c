/* common.c - the backend-independent part of tls/: host kinds, CA bundle and directory loading (split
 * into PEM certificate blocks here, so both backends count bad certificates alike), and the texts of
 * statuses, alerts and reasons. */
#include "tls/common.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *tls_strerror(int status)
{
	switch (status) {
	case TLS_OK: return "ok";
	case TLS_WANT_IO: return "waiting for network I/O";
	case TLS_CLOSED: return "closed by the peer (close_notify)";
	case TLS_E_NOMEM: return "out of memory";
	case TLS_E_CONFIG: return "bad TLS configuration";
	case TLS_E_HOST: return "bad host name";
	case TLS_E_STATE: return "TLS call out of order";
	case TLS_E_EXPIRED: return "certificate expired";
	case TLS_E_NOT_YET_VALID: return "certificate not yet valid";
	case TLS_E_WRONG_HOST: return "certificate does not match the host";
	case TLS_E_UNTRUSTED: return "certificate not trusted (self-signed or unknown root)";
	case TLS_E_BAD_CERT: return "certificate rejected";
	case TLS_E_HANDSHAKE: return "handshake failed";
	case TLS_E_ALERT: return "the peer sent a fatal alert";
	case TLS_E_PROTOCOL: return "TLS protocol error";
	case TLS_E_TRUNCATED: return "connection closed without close_notify";
	}
	return "unknown TLS status";
}

const char *tls_alert_name(int alert)
{
	static const char *const names[] = {
		[0] = "close_notify", [10] = "unexpected_message", [20] = "bad_record_mac",
		[21] = "decryption_failed", [22] = "record_overflow", [30] = "decompression_failure",
		[40] = "handshake_failure", [41] = "no_certificate", [42] = "bad_certificate",
		[43] = "unsupported_certificate", [44] = "certificate_revoked", [45] = "certificate_expired",
		[46] = "certificate_unknown", [47] = "illegal_parameter", [48] = "unknown_ca",
		[49] = "access_denied", [50] = "decode_error", [51] = "decrypt_error",
		[60] = "export_restriction", [70] = "protocol_version", [71] = "insufficient_security",
		[80] = "internal_error", [86] = "inappropriate_fallback", [90] = "user_canceled",
		[100] = "no_renegotiation", [109] = "missing_extension", [110] = "unsupported_extension",
		[111] = "certificate_unobtainable", [112] = "unrecognized_name",
		[113] = "bad_certificate_status_response", [114] = "bad_certificate_hash_value",
		[115] = "unknown_psk_identity", [116] = "certificate_required",
		[120] = "no_application_protocol",
	};
	if (alert < 0 || (size_t)alert >= sizeof names / sizeof names[0] || !names[alert])
		return "unknown";
	return names[alert];
}

void tls_copy_printable(char *dst, size_t cap, const void *src, size_t len)
{
	const unsigned char *s = src;
	size_t i;

	if (cap == 0)
		return;
	for (i = 0; i < len && i + 1 < cap; i++)
		dst[i] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
	dst[i] = '\0';
}

static int host_name(struct tls_host *h, const char *text, size_t len)
{
	if (len && text[len - 1] == '.')
		len--;
	if (len == 0 || len > TLS_HOST_MAX)
		return TLS_E_HOST;
	for (size_t i = 0; i < len; i++) {
		char ch = text[i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
			   ch == '_'))
			return TLS_E_HOST;
		h->name[i] = ch;
	}
	h->name[len] = '\0';
	h->kind = TLS_HOST_NAME;
	return TLS_OK;
}

int tls_host_parse(struct tls_host *h, const char *text)
{
	size_t len = text ? strlen(text) : 0;
	char buf[INET6_ADDRSTRLEN + 1];

	memset(h, 0, sizeof *h);
	if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
		if (len - 2 >= sizeof buf)
			return TLS_E_HOST;
		memcpy(buf, text + 1, len - 2);
		buf[len - 2] = '\0';
		if (inet_pton(AF_INET6, buf, h->ip) != 1)
			return TLS_E_HOST;
		memcpy(h->name, buf, len - 1);
		h->kind = TLS_HOST_IPV6;
		return TLS_OK;
	}
	if (len > 0 && len < sizeof h->name && inet_pton(AF_INET, text, h->ip) == 1) {
		memcpy(h->name, text, len + 1);
		h->kind = TLS_HOST_IPV4;
		return TLS_OK;
	}
	if (len > 0 && len < sizeof h->name && inet_pton(AF_INET6, text, h->ip) == 1) {
		memcpy(h->name, text, len + 1);
		h->kind = TLS_HOST_IPV6;
		return TLS_OK;
	}
	return host_name(h, text, len);
}

int tls_opts_check(const struct tls_config_opts *o, int backend_max, char *err, size_t errlen)
{
	int v = o->min_version ? o->min_version : TLS_V12;

	if (v != TLS_V12 && v != TLS_V13) {
		snprintf(err, errlen, "min_version must be 1.2 or 1.3");
		return TLS_E_CONFIG;
	}
	if (v > backend_max) {
		snprintf(err, errlen, "min_version 1.3 needs the openssl backend (%s speaks TLS 1.2 only)",
			 tls_backend_name());
		return TLS_E_CONFIG;
	}
	return TLS_OK;
}

/* Hand every "BEGIN CERTIFICATE" block of buf (len bytes, buf[len] writable) to add. */
static void ca_split(char *buf, size_t len, tls_ca_add_fn add, void *ctx, struct tls_ca_count *n)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----", end[] = "-----END CERTIFICATE-----";
	char *p = buf, *lim = buf + len;

	while ((p = memmem(p, (size_t)(lim - p), begin, sizeof begin - 1))) {
		char *e = memmem(p, (size_t)(lim - p), end, sizeof end - 1);
		char *next = memmem(p + 1, (size_t)((e ? e : lim) - p - 1), begin, sizeof begin - 1);
		if (!e || next) { /* an unterminated block */
			n->failed++;
			if (!next)
				return;
			p = next;
			continue;
		}
		e += sizeof end - 1;
		char saved = *e;
		*e = '\0';
		if (add(ctx, p, (size_t)(e - p)) == 0)
			n->loaded++;
		else
			n->failed++;
		*e = saved;
		p = e;
	}
}

/* Read a whole file of at most TLS_CA_FILE_MAX bytes into a NUL-terminated heap buffer. */
static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = TLS_E_CONFIG;
	char *buf = NULL;

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > TLS_CA_FILE_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %u bytes", path, TLS_CA_FILE_MAX);
		goto out;
	}
	if (!(buf = malloc((size_t)st.st_size + 1))) {
		rc = TLS_E_NOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	*out = buf, *len = got, buf = NULL, rc = TLS_OK;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int load_file(const char *path, tls_ca_add_fn add, void *ctx, struct tls_ca_count *n, char *err,
		     size_t errlen)
{
	char *buf;
	size_t len;
	int rc = read_file(path, &buf, &len, err, errlen);

	if (rc == TLS_OK) {
		ca_split(buf, len, add, ctx, n);
		free(buf);
	}
	return rc;
}

/* Subject-hash names: eight hex digits, a dot, a decimal sequence number. */
static bool hashed_name(const char *s)
{
	int i;

	for (i = 0; i < 8; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	if (s[i++] != '.' || !s[i])
		return false;
	for (; s[i]; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int load_dir(const char *dir, tls_ca_add_fn add, void *ctx, struct tls_ca_count *n, char *err,
		    size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned files = 0;
	int rc = TLS_OK;
	char path[4096];

	if (!d) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return TLS_E_CONFIG;
	}
	while (rc == TLS_OK && (e = readdir(d))) {
		if (!hashed_name(e->d_name))
			continue;
		if (++files > TLS_CA_DIR_MAX_FILES ||
		    snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) {
			snprintf(err, errlen, "%s: more than %d CA files, or a path too long", dir,
				 TLS_CA_DIR_MAX_FILES);
			rc = TLS_E_CONFIG;
			break;
		}
		rc = load_file(path, add, ctx, n, err, errlen);
	}
	closedir(d);
	return rc;
}

int tls_ca_load(const struct tls_config_opts *o, tls_ca_add_fn add, void *ctx, struct tls_ca_count *n,
		char *err, size_t errlen)
{
	const char *file = o->ca_file && *o->ca_file ? o->ca_file : NULL;
	const char *dir = o->ca_path && *o->ca_path ? o->ca_path : NULL;
	int rc = TLS_OK;

	if (!file && !dir)
		file = TLS_DEFAULT_CA_FILE;
	if (file)
		rc = load_file(file, add, ctx, n, err, errlen);
	if (rc == TLS_OK && dir)
		rc = load_dir(dir, add, ctx, n, err, errlen);
	if (rc == TLS_OK && n->loaded == 0) {
		snprintf(err, errlen, "no usable CA certificate in %s%s%s (%u failed to parse)",
			 file ? file : "", file && dir ? " or " : "", dir ? dir : "", n->failed);
		rc = TLS_E_CONFIG;
	}
	return rc;
}

void tls_reason_cert(char *out, size_t cap, const struct tls_cert_fail *f, const char *host)
{
	switch (f->status) {
	case TLS_E_EXPIRED:
		snprintf(out, cap, "certificate expired on %04d-%02d-%02d", f->year, f->month, f->day);
		break;
	case TLS_E_NOT_YET_VALID:
		snprintf(out, cap, "certificate is not valid until %04d-%02d-%02d", f->year, f->month,
			 f->day);
		break;
	case TLS_E_WRONG_HOST:
		snprintf(out, cap, "certificate does not match host %s", host);
		break;
	case TLS_E_UNTRUSTED:
		if (f->self_signed)
			snprintf(out, cap, "certificate not trusted: self-signed");
		else
			snprintf(out, cap, "certificate not trusted: unknown issuer \"%s\" (unknown root or "
				 "incomplete chain)", f->issuer);
		break;
	default:
		snprintf(out, cap, "certificate rejected: %s", f->text[0] ? f->text : "verification failed");
		break;
	}
}

void tls_reason_alert(char *out, size_t cap, int alert, bool in_handshake)
{
	snprintf(out, cap, "%sthe server sent alert %s (%d)", in_handshake ? "handshake failed: " : "",
		 tls_alert_name(alert), alert);
}

void tls_reason_text(char *out, size_t cap, const char *prefix, const char *text)
{
	snprintf(out, cap, "%s: %s", prefix, text);
}

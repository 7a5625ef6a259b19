/* opts.c - parse TAB-separated "key=value" request options into struct fetch_opts (see opts.h). */
#include "daemon/opts.h"

#include "daemon/http1.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define OPTS_NAME_MAX 64

static const char *const opts_reserved[] = {
	"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer",
	"upgrade", "expect",
};

static bool opts_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int opts_header(const char *v, size_t vlen, struct fetch_opts *o, char *extra, size_t cap, char *err,
		       size_t errlen)
{
	const char *colon = memchr(v, ':', vlen);
	size_t nlen = colon ? (size_t)(colon - v) : 0;
	if (!colon || nlen == 0 || nlen > OPTS_NAME_MAX) {
		snprintf(err, errlen, "header needs \"Name: value\" with a name of 1..%d bytes", OPTS_NAME_MAX);
		return -1;
	}
	for (size_t i = 0; i < nlen; i++)
		if (!opts_tchar(v[i])) {
			snprintf(err, errlen, "header name '%.*s' is not an HTTP token", (int)nlen, v);
			return -1;
		}
	for (size_t i = 0; i < sizeof(opts_reserved) / sizeof(opts_reserved[0]); i++)
		if (strlen(opts_reserved[i]) == nlen && strncasecmp(v, opts_reserved[i], nlen) == 0) {
			snprintf(err, errlen, "header %.*s is fetchd's to send", (int)nlen, v);
			return -1;
		}
	const char *val = colon + 1, *end = v + vlen;
	while (val < end && (*val == ' ' || *val == '\t'))
		val++;
	while (end > val && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	for (const char *p = val; p < end; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f) {
			snprintf(err, errlen, "header %.*s: control character in the value", (int)nlen, v);
			return -1;
		}
	size_t at, n;
	if (http1_header_find(extra, o->extra_len, v, nlen, &at, &n)) { /* replace: drop the earlier line */
		memmove(extra + at, extra + at + n, o->extra_len - at - n);
		o->extra_len -= (uint32_t)n;
	}
	size_t need = nlen + 2 + (size_t)(end - val) + 2;
	if (o->extra_len + need > cap) {
		snprintf(err, errlen, "extra headers longer than %zu bytes", cap);
		return -1;
	}
	char *w = extra + o->extra_len;
	memcpy(w, v, nlen);
	w += nlen;
	*w++ = ':';
	if (end > val) {
		*w++ = ' ';
		memcpy(w, val, (size_t)(end - val));
		w += end - val;
	}
	memcpy(w, "\r\n", 2);
	w += 2;
	o->extra_len = (uint32_t)(w - extra);
	return 0;
}

static int opts_yes_no(const char *k, const char *v, size_t vlen, bool *out, char *err, size_t errlen)
{
	if (vlen == 3 && strncasecmp(v, "yes", 3) == 0)
		*out = true;
	else if (vlen == 2 && strncasecmp(v, "no", 2) == 0)
		*out = false;
	else {
		snprintf(err, errlen, "%s must be yes or no, not '%.*s'", k, (int)(vlen > 40 ? 40 : vlen), v);
		return -1;
	}
	return 0;
}

static int opts_number(const char *k, const char *v, size_t vlen, uint64_t lo, uint64_t hi, uint64_t *out,
		       char *err, size_t errlen)
{
	uint64_t n = 0;
	if (vlen == 0 || vlen > 19)
		goto bad;
	for (size_t i = 0; i < vlen; i++) {
		if (v[i] < '0' || v[i] > '9')
			goto bad;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	if (n < lo || n > hi) {
		snprintf(err, errlen, "%s=%" PRIu64 " is %s the daemon's %" PRIu64, k, n, n < lo ? "below" : "above",
			 n < lo ? lo : hi);
		return -1;
	}
	*out = n;
	return 0;
bad:
	snprintf(err, errlen, "%s needs a number, not '%.*s'", k, (int)(vlen > 40 ? 40 : vlen), v);
	return -1;
}

struct opts_num {
	const char *key;
	size_t off;       /* of a uint32_t, or of max_body_bytes */
	uint64_t lo;
};

#define OPTS_NUM(f, lo) { #f, offsetof(struct fetch_opts, f), lo }
static const struct opts_num opts_nums[] = {
	OPTS_NUM(max_redirects, 0),      OPTS_NUM(retries, 0),           OPTS_NUM(timeout_ms, 1),
	OPTS_NUM(connect_timeout_ms, 1), OPTS_NUM(header_timeout_ms, 1), OPTS_NUM(idle_timeout_ms, 1),
	OPTS_NUM(max_body_bytes, 0),
};

static int opts_item(const char *k, size_t klen, const char *v, size_t vlen, const struct fetch_opts *max,
		     struct fetch_opts *o, char *extra, size_t cap, char *err, size_t errlen)
{
	char key[32];
	if (klen >= sizeof(key)) {
		snprintf(err, errlen, "unknown option '%.*s'", 31, k);
		return -1;
	}
	memcpy(key, k, klen);
	key[klen] = 0;
	if (!strcmp(key, "header"))
		return opts_header(v, vlen, o, extra, cap, err, errlen);
	if (!strcmp(key, "user_agent")) {
		char line[OPTS_EXTRA_MAX + 16];
		int n = snprintf(line, sizeof(line), "User-Agent: %.*s", (int)(vlen > OPTS_EXTRA_MAX ? OPTS_EXTRA_MAX : vlen), v);
		return opts_header(line, (size_t)n, o, extra, cap, err, errlen);
	}
	if (!strcmp(key, "follow"))
		return opts_yes_no(key, v, vlen, &o->follow, err, errlen);
	if (!strcmp(key, "decode"))
		return opts_yes_no(key, v, vlen, &o->decode, err, errlen);
	if (!strcmp(key, "method")) {
		if (vlen == 3 && !strncmp(v, "GET", 3))
			o->method = OPTS_GET;
		else if (vlen == 4 && !strncmp(v, "HEAD", 4))
			o->method = OPTS_HEAD;
		else {
			snprintf(err, errlen, "method must be GET or HEAD, not '%.*s'", (int)(vlen > 40 ? 40 : vlen), v);
			return -1;
		}
		return 0;
	}
	for (size_t i = 0; i < sizeof(opts_nums) / sizeof(opts_nums[0]); i++) {
		const struct opts_num *d = &opts_nums[i];
		if (strcmp(key, d->key) != 0)
			continue;
		bool wide = d->off == offsetof(struct fetch_opts, max_body_bytes);
		uint64_t hi, n;
		if (wide)
			memcpy(&hi, (const char *)max + d->off, sizeof(hi));
		else {
			uint32_t h32;
			memcpy(&h32, (const char *)max + d->off, sizeof(h32));
			hi = h32;
		}
		if (opts_number(key, v, vlen, d->lo, hi, &n, err, errlen) < 0)
			return -1;
		if (wide)
			memcpy((char *)o + d->off, &n, sizeof(n));
		else {
			uint32_t n32 = (uint32_t)n;
			memcpy((char *)o + d->off, &n32, sizeof(n32));
		}
		return 0;
	}
	snprintf(err, errlen, "unknown option '%s'", key);
	return -1;
}

int opts_parse(const char *s, size_t len, const struct fetch_opts *max, struct fetch_opts *o, char *extra,
	       size_t cap, char *err, size_t errlen)
{
	size_t off = 0;
	while (off < len) {
		const char *tab = memchr(s + off, '\t', len - off);
		size_t n = tab ? (size_t)(tab - (s + off)) : len - off;
		const char *item = s + off;
		off += n + (tab ? 1 : 0);
		if (n == 0)
			continue;
		const char *eq = memchr(item, '=', n);
		if (!eq) {
			snprintf(err, errlen, "option '%.*s' needs key=value", (int)(n > 40 ? 40 : n), item);
			return -1;
		}
		size_t klen = (size_t)(eq - item);
		if (opts_item(item, klen, eq + 1, n - klen - 1, max, o, extra, cap, err, errlen) < 0)
			return -1;
	}
	return 0;
}

/* json.c - JSON string escaping with UTF-8 validation, and a minimal integer lookup. */
#include "daemon/json.h"
#include "daemon/hex.h"

#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not valid. */
static size_t json_utf8_len(const uint8_t *s, size_t avail)
{
	uint8_t c = s[0];
	size_t n;
	uint32_t min, cp;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		n = 2, min = 0x80, cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, min = 0x800, cp = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, min = 0x10000, cp = c & 0x07;
	} else {
		return 0;
	}
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int json_str(struct buf *b, const void *str, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *s = str;
	/* Worst case: every byte becomes a 6-byte escape (\u00XX) or U+FFFD (3 bytes). */
	if (buf_reserve(b, len * 6 + 2) < 0)
		return -1;
	uint8_t *o = b->p + b->len;
	*o++ = '"';
	for (size_t i = 0; i < len;) {
		uint8_t c = s[i];
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = c;
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			*o++ = '\\', *o++ = 'u', *o++ = '0', *o++ = '0';
			*o++ = (uint8_t)hex[c >> 4], *o++ = (uint8_t)hex[c & 15];
			i++;
		} else {
			size_t n = json_utf8_len(s + i, len - i);
			if (n == 0) {
				*o++ = 0xef, *o++ = 0xbf, *o++ = 0xbd;
				i++;
			} else {
				memcpy(o, s + i, n);
				o += n;
				i += n;
			}
		}
	}
	*o++ = '"';
	b->len = (size_t)(o - b->p);
	return 0;
}

/* Offset of the value after "key": (whitespace skipped), or len when the key is absent. */
static size_t json_find_value(const char *s, size_t len, const char *key)
{
	size_t klen = strlen(key);
	for (size_t i = 0; i + klen + 2 < len; i++) {
		if (s[i] != '"' || memcmp(s + i + 1, key, klen) != 0 || s[i + 1 + klen] != '"')
			continue;
		size_t j = i + klen + 2;
		while (j < len && (s[j] == ' ' || s[j] == '\t'))
			j++;
		if (j >= len || s[j] != ':')
			continue;
		j++;
		while (j < len && (s[j] == ' ' || s[j] == '\t'))
			j++;
		return j;
	}
	return len;
}

bool json_get_bool(const char *s, size_t len, const char *key, bool *out)
{
	size_t j = json_find_value(s, len, key);
	if (len - j >= 4 && memcmp(s + j, "true", 4) == 0)
		*out = true;
	else if (len - j >= 5 && memcmp(s + j, "false", 5) == 0)
		*out = false;
	else
		return false;
	return true;
}

bool json_get_int(const char *s, size_t len, const char *key, int64_t *out)
{
	size_t j = json_find_value(s, len, key);
	bool neg = j < len && s[j] == '-';
	if (neg)
		j++;
	if (j >= len || s[j] < '0' || s[j] > '9')
		return false;
	int64_t v = 0;
	while (j < len && s[j] >= '0' && s[j] <= '9' && v < (INT64_MAX - 9) / 10)
		v = v * 10 + (s[j++] - '0');
	if (j < len && (s[j] == '.' || s[j] == 'e' || s[j] == 'E'))
		return false; /* not an integer */
	*out = neg ? -v : v;
	return true;
}

static int json_hex4(const char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		int d = hex_value(p[i]);
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* One escape after '\' at s[*j] into o; false when malformed. \u escapes become UTF-8 (a lone
 * surrogate and \u0000 are refused). */
static bool json_unescape(const char *s, size_t len, size_t *j, char *o, size_t *n)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *e = strchr(from, s[*j]);
	if (e && s[*j]) {
		o[(*n)++] = to[e - from];
		(*j)++;
		return true;
	}
	if (s[*j] != 'u' || *j + 5 > len)
		return false;
	int cp = json_hex4(s + *j + 1);
	if (cp <= 0 || (cp >= 0xd800 && cp <= 0xdfff))
		return false; /* no NUL inside a C string; no lone surrogate */
	*j += 5;
	if (cp < 0x80) {
		o[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		o[(*n)++] = (char)(0xc0 | cp >> 6);
		o[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		o[(*n)++] = (char)(0xe0 | cp >> 12);
		o[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[(*n)++] = (char)(0x80 | (cp & 0x3f));
	}
	return true;
}

int json_get_str(const char *s, size_t len, const char *key, char *out, size_t cap)
{
	size_t j = json_find_value(s, len, key), n = 0;
	if (j >= len || s[j] != '"' || cap < 4)
		return -1;
	for (j++; j < len; ) {
		if (n + 4 > cap)
			return -1; /* room for the longest escape and the NUL */
		char c = s[j];
		if (c == '"') {
			out[n] = 0;
			return (int)n;
		}
		if ((unsigned char)c < 0x20)
			return -1;
		if (c == '\\') {
			j++;
			if (j >= len || !json_unescape(s, len, &j, out, &n))
				return -1;
			continue;
		}
		out[n++] = c;
		j++;
	}
	return -1;
}

bool json_has(const char *s, size_t len, const char *key)
{
	return json_find_value(s, len, key) < len;
}

/* resultline.c - find a field of a JSON result line (resultline.h). */
#include "tools/resultline.h"

#include <string.h>

#define RL_MAX_DEPTH 16

static size_t rl_ws(const char *s, size_t len, size_t i)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	return i;
}

/* The end of the string starting at s[i] == '"' (the index after its closing quote), or 0. */
static size_t rl_string_end(const char *s, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return 0;
}

/* The end of the value at s[i] (i at its first byte), or 0 when malformed. */
static size_t rl_value_end(const char *s, size_t len, size_t i, int depth)
{
	if (i >= len || depth > RL_MAX_DEPTH)
		return 0;
	if (s[i] == '"')
		return rl_string_end(s, len, i);
	if (s[i] != '{' && s[i] != '[') {
		while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n')
			i++;
		return i;
	}
	char close = s[i] == '{' ? '}' : ']';
	for (i = rl_ws(s, len, i + 1); i < len && s[i] != close;) {
		if (close == '}') { /* "key": */
			i = rl_string_end(s, len, i);
			if (!i || (i = rl_ws(s, len, i)) >= len || s[i] != ':')
				return 0;
			i = rl_ws(s, len, i + 1);
		}
		if (!(i = rl_value_end(s, len, i, depth + 1)))
			return 0;
		i = rl_ws(s, len, i);
		if (i < len && s[i] == ',')
			i = rl_ws(s, len, i + 1);
	}
	return i < len ? i + 1 : 0;
}

static bool rl_member(const char *s, size_t len, const char *key, size_t klen, struct rl_val *v)
{
	size_t i = rl_ws(s, len, 0);
	if (i >= len || s[i] != '{')
		return false;
	for (i = rl_ws(s, len, i + 1); i < len && s[i] == '"';) {
		size_t kend = rl_string_end(s, len, i);
		if (!kend)
			return false;
		bool match = kend - i - 2 == klen && memcmp(s + i + 1, key, klen) == 0;
		i = rl_ws(s, len, kend);
		if (i >= len || s[i] != ':')
			return false;
		i = rl_ws(s, len, i + 1);
		size_t end = rl_value_end(s, len, i, 0);
		if (!end)
			return false;
		if (match) {
			char c = s[i];
			v->type = c == '"' ? RL_STRING : c == '{' ? RL_OBJECT : c == '[' ? RL_ARRAY : c == 'n' ? RL_NULL
				: (c == 't' || c == 'f') ? RL_BOOL : RL_NUMBER;
			v->p = s + i + (c == '"');
			v->len = end - i - (c == '"' ? 2 : 0);
			return true;
		}
		i = rl_ws(s, len, end);
		if (i < len && s[i] == ',')
			i = rl_ws(s, len, i + 1);
	}
	return false;
}

bool rl_get(const char *line, size_t len, const char *path, struct rl_val *v)
{
	const char *obj = line;
	size_t olen = len;
	for (;;) {
		const char *dot = strchr(path, '.');
		size_t klen = dot ? (size_t)(dot - path) : strlen(path);
		if (!rl_member(obj, olen, path, klen, v))
			return false;
		if (!dot)
			return true;
		if (v->type != RL_OBJECT)
			return false;
		obj = v->p, olen = v->len, path = dot + 1;
	}
}

static int rl_hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* One \uXXXX escape at p (after the 'u') as UTF-8 into out; returns the bytes written (0: bad). */
static size_t rl_utf8(const char *p, size_t left, char *out)
{
	unsigned cp = 0;
	for (int k = 0; k < 4; k++) {
		int h = (size_t)k < left ? rl_hex(p[k]) : -1;
		if (h < 0)
			return 0;
		cp = cp * 16 + (unsigned)h;
	}
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	out[0] = (char)(0xe0 | cp >> 12), out[1] = (char)(0x80 | (cp >> 6 & 0x3f)), out[2] = (char)(0x80 | (cp & 0x3f));
	return 3;
}

size_t rl_text(const struct rl_val *v, char *out, size_t cap)
{
	size_t n = 0;
	if (cap == 0)
		return 0;
	for (size_t i = 0; i < v->len && n + 4 < cap; i++) {
		char c = v->p[i];
		if (v->type != RL_STRING || c != '\\' || i + 1 >= v->len) {
			out[n++] = c;
			continue;
		}
		c = v->p[++i];
		if (c == 'u') {
			size_t k = rl_utf8(v->p + i + 1, v->len - i - 1, out + n);
			n += k;
			i += k ? 4 : 0;
			continue;
		}
		out[n++] = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == 'b' ? '\b' : c == 'f' ? '\f' : c;
	}
	out[n] = 0;
	return n;
}

/* json.h - the JSON writing fetchd needs (strings escaped, invalid UTF-8 replaced) and a tiny reader for
 * the few values a control frame carries. Pure. */
#ifndef FETCHD_JSON_H
#define FETCHD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/buf.h"

/* Append s (len bytes) as a quoted JSON string. Control characters are escaped; bytes that are not
 * valid UTF-8 become U+FFFD. Returns 0 or -1 (out of memory). */
int json_str(struct buf *b, const void *s, size_t len);

/* Find "key": <integer> at the top level of a flat JSON object. Returns true and sets *out when found. */
bool json_get_int(const char *s, size_t len, const char *key, int64_t *out);
/* Find "key": true|false likewise. */
bool json_get_bool(const char *s, size_t len, const char *key, bool *out);
/* Find "key": "string" likewise and unescape it into out (NUL-terminated; at most cap - 4 bytes, the
 * room the longest escape needs). Returns its length, or -1 when absent, not a string, malformed or too
 * long. */
/* Is there a "key": at all? */
bool json_has(const char *s, size_t len, const char *key);
int json_get_str(const char *s, size_t len, const char *key, char *out, size_t cap);

#endif

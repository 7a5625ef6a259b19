/* resultline.h - reading fields out of one result line (a JSON object, docs/protocol.md §8) in
 * fetchctl: "status", "error.class", "timings_ms.total". A small JSON scanner for one object, no
 * allocation; enough for lines fetchd writes, and safe (false, never a crash) on anything else. */
#ifndef FETCHCTL_RESULTLINE_H
#define FETCHCTL_RESULTLINE_H

#include <stdbool.h>
#include <stddef.h>

enum rl_type { RL_NULL, RL_BOOL, RL_NUMBER, RL_STRING, RL_OBJECT, RL_ARRAY };

struct rl_val {
	enum rl_type type;
	const char *p;   /* the value's text: for strings, between the quotes (still escaped) */
	size_t len;
};

/* Find path ("status", "error.class": dots step into objects) in the object line[0..len). */
bool rl_get(const char *line, size_t len, const char *path, struct rl_val *v);

/* A string value unescaped into out (NUL-terminated; cut to cap - 1 bytes). Returns its length. For a
 * non-string value, its text as is ("null", "200"). */
size_t rl_text(const struct rl_val *v, char *out, size_t cap);

#endif

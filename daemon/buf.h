/* buf.h - a growable byte buffer with an explicit cap: the one container for bytes going out (results,
 * frames) and coming in (control input). Pure. */
#ifndef FETCHD_BUF_H
#define FETCHD_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *p;
	size_t len, cap;
};

/* Make room for n more bytes. Returns 0 or -1 (out of memory). */
int buf_reserve(struct buf *b, size_t n);
int buf_append(struct buf *b, const void *data, size_t n);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drop the first n bytes. */
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);
/* An empty buffer that grew past keep bytes (a burst) gives its memory back. */
void buf_trim(struct buf *b, size_t keep);

#endif

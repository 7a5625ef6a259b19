/* spool.h - a byte buffer for fetchctl that holds any amount of data in bounded memory: the first
 * mem_cap bytes stay in memory (allocated as they come, up to mem_cap), the rest goes to an unlinked
 * temporary file in $TMPDIR (else /tmp), opened at the first byte past the cap. Used to hold one HTTP
 * request or response as received until it is written into a WARC record (tools/warc.h).
 *
 *	struct spool s;
 *	spool_init(&s, 1 << 20);
 *	spool_append(&s, data, n);       ... as often as needed
 *	spool_read(&s, off, buf, len);   ... any range, any number of times
 *	spool_reset(&s);                 empty again (the temporary file is truncated, kept open)
 *	spool_free(&s);
 *
 * Functions return 0 (spool_read: a byte count) or -errno; they log nothing. A failed append adds
 * nothing: the spool holds what it held before. */
#ifndef FETCHCTL_SPOOL_H
#define FETCHCTL_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct spool {
	uint8_t *mem;     /* the first min(len, mem_cap) bytes */
	size_t mem_alloc; /* bytes allocated at mem, <= mem_cap */
	size_t mem_cap;
	uint64_t len;     /* bytes held; bytes past mem_cap are in fd at offset (i - mem_cap) */
	int fd;           /* the temporary file, or -1 before the first spill */
};

/* An empty spool keeping at most mem_cap bytes in memory (0: everything goes to the file). Allocates
 * nothing yet; always succeeds, returns 0. */
int spool_init(struct spool *s, size_t mem_cap);

/* Add len bytes at the end. 0, or -ENOMEM, or the temporary file's -errno (-ENOSPC, -EIO, ...). */
int spool_append(struct spool *s, const void *data, size_t len);

/* Bytes held. */
uint64_t spool_len(const struct spool *s);

/* Copy up to len bytes from offset off into buf. Returns the count copied (less than len only at the
 * end of the data; 0 when off >= spool_len), or -errno when the temporary file cannot be read. */
ssize_t spool_read(const struct spool *s, uint64_t off, void *buf, size_t len);

/* Empty the spool; it stays usable with the same cap. The memory stays allocated and the temporary
 * file open (truncated to 0 bytes, so it holds no disk space). */
void spool_reset(struct spool *s);

/* Release the memory and close the temporary file; the spool can be spool_init'ed again. */
void spool_free(struct spool *s);

#endif

/* spool.c - a byte buffer in bounded memory that spills to an unlinked temporary file (spool.h). */
#include "tools/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPOOL_MEM_MIN 4096u /* the first allocation, unless the cap is smaller */

int spool_init(struct spool *s, size_t mem_cap)
{
	*s = (struct spool){.mem_cap = mem_cap, .fd = -1};
	return 0;
}

uint64_t spool_len(const struct spool *s)
{
	return s->len;
}

/* An unlinked file in $TMPDIR or /tmp: O_TMPFILE, else (a filesystem without it) mkostemp + unlink. */
static int spool_tmpfile(void)
{
	const char *dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	char path[4096];
	if (snprintf(path, sizeof(path), "%s/fetchctl-spool.XXXXXX", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

static int spool_pwrite(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n, len -= (size_t)n, off += (uint64_t)n;
	}
	return 0;
}

/* Room in memory for the first `need` bytes (need <= mem_cap), growing by doubling. */
static int spool_reserve(struct spool *s, size_t need)
{
	if (need <= s->mem_alloc)
		return 0;
	size_t n = s->mem_alloc ? s->mem_alloc : SPOOL_MEM_MIN;
	while (n < need)
		n = n > s->mem_cap / 2 ? s->mem_cap : n * 2;
	if (n > s->mem_cap)
		n = s->mem_cap;
	uint8_t *p = realloc(s->mem, n);
	if (!p)
		return -ENOMEM;
	s->mem = p, s->mem_alloc = n;
	return 0;
}

int spool_append(struct spool *s, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t to_mem = 0;
	if (len == 0)
		return 0;
	if (UINT64_MAX - s->len < len)
		return -EOVERFLOW;
	if (s->len < s->mem_cap) {
		to_mem = s->mem_cap - (size_t)s->len < len ? s->mem_cap - (size_t)s->len : len;
		int r = spool_reserve(s, (size_t)s->len + to_mem);
		if (r < 0)
			return r;
	}
	if (to_mem < len) {
		if (s->fd < 0) {
			int fd = spool_tmpfile();
			if (fd < 0)
				return fd;
			s->fd = fd;
		}
		uint64_t file_off = s->len + to_mem - s->mem_cap;
		int r = spool_pwrite(s->fd, p + to_mem, len - to_mem, file_off);
		if (r < 0)
			return r; /* s->len is unchanged: the bytes written are past the end and unseen */
	}
	if (to_mem)
		memcpy(s->mem + s->len, p, to_mem);
	s->len += len;
	return 0;
}

ssize_t spool_read(const struct spool *s, uint64_t off, void *buf, size_t len)
{
	uint8_t *out = buf;
	size_t done = 0;
	if (off >= s->len)
		return 0;
	if (len > s->len - off)
		len = (size_t)(s->len - off);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	if (off < s->mem_cap) {
		done = s->mem_cap - off < len ? (size_t)(s->mem_cap - off) : len;
		memcpy(out, s->mem + off, done);
	}
	while (done < len) {
		ssize_t n = pread(s->fd, out + done, len - done, (off_t)(off + done - s->mem_cap));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the file is shorter than we wrote it: someone else truncated it */
		done += (size_t)n;
	}
	return (ssize_t)done;
}

void spool_reset(struct spool *s)
{
	s->len = 0;
	if (s->fd >= 0 && ftruncate(s->fd, 0) < 0) {
		close(s->fd);
		s->fd = -1;
	}
}

void spool_free(struct spool *s)
{
	free(s->mem);
	if (s->fd >= 0)
		close(s->fd);
	*s = (struct spool){.mem_cap = s->mem_cap, .fd = -1};
}

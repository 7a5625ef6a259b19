/* store.h - what fetchctl keeps of each fetch besides its result line: WARC records (--warc) and body
 * files (--output-dir), from the daemon's CAPTURE frames. Functions return 0 or -errno with a message
 * in err; they print nothing. */
#ifndef FETCHCTL_STORE_H
#define FETCHCTL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* Open the WARC file (series, see tools/warc.h) and/or the body directory; either may be NULL. */
int store_open(struct store **out, const char *warc_path, uint64_t warc_max_bytes, const char *dir,
	       char *err, size_t errlen);

/* What HELLO's "capture" asks for: "raw", "body", "raw,body", or NULL. */
const char *store_capture(const struct store *s);

/* One CAPTURE frame's payload. */
int store_frame(struct store *s, const uint8_t *p, uint32_t len, char *err, size_t errlen);

/* A result line (with "seq"): a failure gets a WARC metadata record; a success's body is moved to its
 * name, given in *path (valid until the next call; NULL when no body was kept). Returns 1 when only
 * this URL's body could not be kept (no name for it: too long, all numbers taken), with err set. */
int store_result(struct store *s, const char *line, size_t len, const char **path, char *err, size_t errlen);

/* Close the WARC file (fsync'ed) and the directory; drop what is in progress. NULL is a no-op. */
int store_close(struct store *s, char *err, size_t errlen);

#endif

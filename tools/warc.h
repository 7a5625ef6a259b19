/* warc.h - writing WARC 1.1 files in fetchctl: a warcinfo record at the start of every file, then
 * request, response and metadata records. Each record gets a random WARC-Record-ID and a
 * WARC-Block-Digest ("sha1:" + RFC 4648 base32, as wget and warcio write it) computed here; a response
 * carries the caller's payload SHA-1 as WARC-Payload-Digest.
 *
 * Files. A path ending in ".gz" is written gzip-compressed, one gzip member per record, so readers can
 * seek to any record. max_bytes == 0 writes the one file at path. max_bytes > 0 writes a series of
 * files numbered from 00000, the number before the path's suffix (".warc.gz", else ".warc", else
 * ".gz"; a path with none of them gets it at the end):
 *	out.warc.gz -> out-00000.warc.gz, out-00001.warc.gz, ...
 *	out.warc    -> out-00000.warc, ...          out -> out-00000, out-00001, ...
 * A record starts a new file when the current one already holds >= max_bytes (compressed bytes for
 * .gz) and at least one record besides its warcinfo, except a record that names concurrent_to: it
 * stays in the file of the capture it belongs to. So a file exceeds max_bytes by at most one capture
 * (a request and the records written concurrent to it). Files are created O_WRONLY | O_CREAT |
 * O_TRUNC | O_CLOEXEC, mode 0666 less the umask: an existing file is overwritten.
 *
 * Records. Every call writes one whole record and hands it to the kernel before it returns. A file
 * is fsync'ed when it is closed (by a roll or warc_close), so late write errors (EIO, ENOSPC on some
 * filesystems) are reported too. Header values (target_uri, ip, concurrent_to) must not hold CR, LF
 * or other control characters (-EINVAL); warc_date must look like "2026-11-22T08:10:26Z", with up to
 * six digits of fractions of a second allowed before the Z (-EINVAL).
 *
 * Errors. Calls return 0 or -errno (record_id is set only on success), and warc_error() then tells
 * what failed ("write out-00001.warc.gz: No space left on device"). When writing a record fails, the
 * file is cut back to where the record began, and the writer can go on (the caller decides whether
 * to); when even that fails, or a new file of the series cannot be started, the error is sticky:
 * every later call returns it. Nothing is logged here. */
#ifndef FETCHCTL_WARC_H
#define FETCHCTL_WARC_H

#include <stddef.h>
#include <stdint.h>

#include "tools/spool.h"

#define WARC_ID_SIZE 64   /* "<urn:uuid:xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx>" and its NUL */
#define WARC_DATE_SIZE 32 /* "2026-11-22T08:10:26.123456Z" and its NUL */

struct warc_writer;

/* Create the (first) file and write its warcinfo record, with "software: <software>". On failure,
 * *out is NULL, err gets the reason, and the return is -errno. */
int warc_open(struct warc_writer **out, const char *path, uint64_t max_bytes, const char *software,
	      char *err, size_t errlen);

/* A request record (Content-Type: application/http;msgtype=request): block holds the request as
 * sent. ip may be NULL or "" (no WARC-IP-Address). The new record's id goes to record_id. */
int warc_write_request(struct warc_writer *w, const char *target_uri, const char *warc_date,
		       const char *ip, const struct spool *block, char record_id[WARC_ID_SIZE]);

/* A response record (Content-Type: application/http;msgtype=response): block holds the response as
 * received (headers and body, chunked framing included). concurrent_to: the request record's id, or
 * NULL. payload_sha1: the SHA-1 of the body with any chunked transfer coding removed (content coding
 * kept), or NULL for no WARC-Payload-Digest. */
int warc_write_response(struct warc_writer *w, const char *target_uri, const char *warc_date,
			const char *ip, const char *concurrent_to, const struct spool *block,
			const uint8_t payload_sha1[20], char record_id[WARC_ID_SIZE]);

/* A metadata record (Content-Type: application/warc-fields): fields is its text, "name: value" lines
 * each ended by CRLF ("fetchd-error: timeout: no response header in 30 s\r\n"). concurrent_to: the
 * id of the record it is about, or NULL. */
int warc_write_metadata(struct warc_writer *w, const char *target_uri, const char *warc_date,
			const char *concurrent_to, const char *fields, char record_id[WARC_ID_SIZE]);

/* The file being written now (changes when the series rolls on). */
const char *warc_filename(const struct warc_writer *w);

/* Why the last failing call failed ("" if none has). */
const char *warc_error(const struct warc_writer *w);

/* Flush, fsync and close the file, and free w (NULL is a no-op). Returns 0, or -errno when closing
 * failed or an earlier error was sticky. */
int warc_close(struct warc_writer *w);

/* The current time as a WARC-Date with microseconds ("2026-11-22T08:10:26.123456Z"). 0 or -errno. */
int warc_date_now(char buf[WARC_DATE_SIZE]);

/* RFC 4648 base32 of in[0..len) (upper case, '=' padding) into out, which needs
 * ((len + 4) / 5) * 8 + 1 bytes. Returns the length written (the NUL not counted). */
size_t warc_base32(const void *in, size_t len, char *out);

#endif

/* opts.h - request options for a batch or one URL, pure: "key=value" items separated by TAB, as they
 * come in HELLO's "options" string and after a URL on a URLS line (docs/protocol.md, "Options").
 * Each item overrides what came before (the daemon's defaults, then the batch's, then the URL's);
 * numbers may lower the daemon's limits, never raise them. Extra request headers are kept as ready
 * "Name: value\r\n" lines in a caller's buffer; a later header of the same name replaces the earlier.
 * No I/O, no allocation, no logging. */
#ifndef FETCHD_OPTS_H
#define FETCHD_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OPTS_EXTRA_MAX 4096     /* bytes of extra header lines per batch or URL */
#define OPTS_ERR_MAX 160

enum opts_method { OPTS_GET = 0, OPTS_HEAD = 1 };

struct fetch_opts {
	uint8_t method;             /* enum opts_method */
	bool follow;                /* follow redirects */
	bool decode;                /* Accept-Encoding: gzip, deflate, and decode */
	uint32_t max_redirects;
	uint32_t retries;           /* after the first attempt */
	uint32_t timeout_ms, connect_timeout_ms, header_timeout_ms, idle_timeout_ms;
	uint64_t max_body_bytes;
	uint32_t extra_len;         /* bytes of header lines in the caller's extra buffer */
};

/* Apply the options in s[0..len) (TAB-separated "key=value" items; empty items are skipped) to *o.
 * Header lines go to extra[0..o->extra_len), at most cap bytes. max holds the daemon's limits: a
 * number above its counterpart in max is an error. Returns 0, or -1 with a message in err
 * ("timeout_ms=999999 is above the daemon's 120000"); *o and extra may then be partly changed. Keys:
 *   method=GET|HEAD  follow=yes|no  decode=yes|no  max_redirects=N  retries=N  timeout_ms=N
 *   connect_timeout_ms=N  header_timeout_ms=N  idle_timeout_ms=N  max_body_bytes=N
 *   user_agent=TEXT  (the same as header=User-Agent: TEXT)
 *   header=Name: value  (replaces an earlier header of that name; "Name:" with an empty value removes
 *                        the daemon's own header of that name: User-Agent, Accept, Accept-Encoding)
 * Header names are HTTP tokens of at most 64 bytes; values hold no control byte but TAB. Host,
 * Content-Length, Transfer-Encoding, Connection, Keep-Alive, TE, Trailer, Upgrade and Expect are the
 * daemon's to send and are refused. */
int opts_parse(const char *s, size_t len, const struct fetch_opts *max, struct fetch_opts *o, char *extra,
	       size_t cap, char *err, size_t errlen);

#endif

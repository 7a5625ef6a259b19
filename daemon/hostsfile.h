/* hostsfile.h - the /etc/hosts format, pure: a parser from text (the caller reads the file) and a
 * case-insensitive lookup of a name's addresses. Lines are "ADDRESS NAME [ALIAS...]", '#' starts a
 * comment anywhere, fields are separated by spaces and tabs, CRLF line endings are accepted. A line
 * that does not parse is skipped and counted, never fatal. No I/O, no logging. */
#ifndef FETCHD_HOSTSFILE_H
#define FETCHD_HOSTSFILE_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/sockaddr.h"

#define HOSTSFILE_MAX_BYTES (64u << 20)   /* largest input */
#define HOSTSFILE_MAX_LINES 100000u       /* most lines (a last line without '\n' counts) */
#define HOSTSFILE_MAX_ADDRS 8             /* addresses kept per name, the first in file order */
#define HOSTSFILE_MAX_NAMES_PER_LINE 64   /* a line with more names is malformed */
#define HOSTSFILE_NAME_MAX 255            /* longest name, in bytes */

struct hostsfile;

struct hostsfile_stats {
	uint32_t names;               /* distinct names (the entries) */
	uint32_t addresses;           /* name -> address pairs kept */
	uint32_t skipped;             /* lines skipped: malformed + scoped */
	uint32_t malformed;           /* lines skipped because they do not parse */
	uint32_t scoped;              /* lines skipped for an IPv6 zone ("fe80::1%eth0") */
	uint32_t first_malformed;     /* the first malformed line's number (from 1), 0 when none */
	uint32_t dropped;             /* addresses dropped because a name already had HOSTSFILE_MAX_ADDRS */
};

/* Parse len bytes of text (NUL bytes included; text may be NULL when len is 0) into *out. A line is
 * malformed when its address is neither IPv4 dotted-quad nor IPv6, it has no name, one of its names
 * is over HOSTSFILE_NAME_MAX bytes or holds a control byte, or it has over
 * HOSTSFILE_MAX_NAMES_PER_LINE names. Names are stored lowercased (ASCII); a name on several lines
 * keeps all its addresses in file order, duplicates dropped, up to HOSTSFILE_MAX_ADDRS. Returns 0;
 * on an error *out is NULL and err (when errlen > 0) says why: -EFBIG over HOSTSFILE_MAX_BYTES,
 * -E2BIG over HOSTSFILE_MAX_LINES, -ENOMEM. */
int hostsfile_parse(struct hostsfile **out, const char *text, size_t len, char *err, size_t errlen);

void hostsfile_free(struct hostsfile *h);

/* Write up to max of name's addresses (any case) to out, in file order, port 0: all of them for
 * AF_UNSPEC, only IPv4 ones for AF_INET, only IPv6 ones for AF_INET6. Returns how many were written,
 * 0 when none (or h is NULL, or name is NULL, empty or too long); -EINVAL for another family. */
int hostsfile_lookup(const struct hostsfile *h, const char *name, int family, union sockaddr_any *out,
		     unsigned max);

struct hostsfile_stats hostsfile_stats(const struct hostsfile *h);

#endif

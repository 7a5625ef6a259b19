/* urlref.h - resolving a redirect's Location value against the URL that was fetched: RFC 3986
 * section 5.2 with the adjustments browsers apply to http/https references (WHATWG URL Standard),
 * producing an absolute URL that url_parse accepts. Pure: no I/O, no allocation, no logging. */
#ifndef FETCHD_URLREF_H
#define FETCHD_URLREF_H

#include <stddef.h>

/* Resolve reference ref[0..ref_len) (a Location value: absolute, scheme-relative "//h/p", absolute-path
 * "/p", relative "p", "../p", query-only "?q", fragment-only "#f", or empty) against the absolute URL
 * base[0..base_len) (one that url_parse accepts). Writes the absolute URL, NUL-terminated, into out
 * (cap bytes). Returns its length, or -1 with *reason ("Location too long", "unsupported scheme in
 * Location", "invalid base URL", or url_parse's reason for the result, e.g. "empty host"); on -1,
 * out holds "" when cap > 0.
 *
 * Rules:
 * - ref: leading and trailing C0 controls and spaces are stripped; tab, CR and LF are removed
 *   anywhere; '\' is read as '/' in the path and before/after the authority.
 * - A scheme other than http/https is an error ("unsupported scheme in Location"). A scheme equal to
 *   the base's with no "//" ("http:g", "http:/g") is read as relative (RFC 3986 5.2.2's
 *   backward-compatible choice, and WHATWG's). Any number of slashes may introduce an authority
 *   ("///h", "https:h" with an http base: WHATWG).
 * - Dot segments are removed (RFC 3986 5.2.4) from the whole result path, the base's included;
 *   "%2e" (any case) counts as '.', so ".%2E" and "%2e%2e" are "..". The base's path and query go
 *   through the same rules as the reference's ('\' as '/', percent-encoding), as a browser would
 *   have parsed it. The scheme is written in lower case.
 * - Percent-encoded (%XX, uppercase), as WHATWG does: in the path, bytes <= 0x20, '"', '<', '>',
 *   '`', '{', '}', 0x7f and >= 0x80; in the query, bytes <= 0x20, '"', '<', '>', '\'', 0x7f and
 *   >= 0x80; in the fragment and userinfo, bytes <= 0x20, '"', '<', '>', '`' (and '{', '}' in
 *   userinfo; WHATWG encodes a few more there), 0x7f and >= 0x80. '%' is never encoded. Host and
 *   port are copied as written (url_parse then judges them: no IDNA, no percent-decoding, no IPv4
 *   rewriting here).
 * - Userinfo: a reference with an authority carries only its own; a relative reference keeps the
 *   base's authority whole, userinfo included (RFC 3986 5.2.2), so it is never carried to a
 *   different host.
 * - The fragment is the reference's; the base's is dropped (RFC 3986 5.2.2; RFC 9110 10.2.2 has a
 *   redirect without one inherit the original's, which a caller may re-append: none is sent).
 * - An empty path stays empty ("//g" -> "http://g", as RFC 3986 5.4.1; likewise "?x" against
 *   "http://a"); WHATWG writes "http://g/"; the request target is "/" either way.
 * Bounds: fails ("Location too long") exactly when the result and its NUL do not fit in cap; cap
 * above INT_MAX counts as INT_MAX. Any of out[0..cap) may be written (the path is assembled at the
 * end of out, then moved down). Time is linear in base_len + ref_len. */
int urlref_resolve(const char *base, size_t base_len, const char *ref, size_t ref_len, char *out,
		   size_t cap, const char **reason);

#endif

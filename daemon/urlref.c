/* urlref.c - resolves a Location value against the fetched URL (RFC 3986 5.2 with WHATWG's http/https
 * adjustments, see urlref.h): splits the reference into spans, writes scheme, authority, path (dot
 * segments removed right to left, straight into the output), query and fragment, percent-encoding as
 * it goes, then checks the result with url_parse. Pure: no I/O, no allocation, no logging. */
#include "daemon/urlref.h"

#include "daemon/url.h"

#include <assert.h>
#include <limits.h>
#include <string.h>

/* ---- small character helpers ---- */

static int fail(const char **reason, const char *why)
{
	*reason = why;
	return -1;
}

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_scheme_char(int c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

/* Tab, CR and LF: removed from the reference wherever they are (WHATWG). */
static int is_invisible(int c)
{
	return c == '\t' || c == '\r' || c == '\n';
}

static int is_slash(int c)
{
	return c == '/' || c == '\\';
}

/* The first index >= i of s[..end) that is not tab, CR or LF (end when none). */
static size_t next_visible(const char *s, size_t i, size_t end)
{
	while (i < end && is_invisible((unsigned char)s[i]))
		i++;
	return i;
}

/* The first index >= i of s[..end) holding a byte of set (end when none); NUL is in no set. */
static size_t find_any(const char *s, size_t i, size_t end, const char *set)
{
	while (i < end && (s[i] == '\0' || !strchr(set, s[i])))
		i++;
	return i;
}

/* ---- percent-encode sets (WHATWG) ---- */

enum enc_set { ENC_NONE, ENC_PATH, ENC_QUERY, ENC_FRAGMENT, ENC_USERINFO };

static int needs_pct(unsigned char c, enum enc_set set)
{
	if (c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>')
		return 1;
	switch (set) {
	case ENC_NONE:
		return 0;
	case ENC_PATH:
	case ENC_USERINFO:
		return c == '`' || c == '{' || c == '}';
	case ENC_QUERY:
		return c == '\'';
	case ENC_FRAGMENT:
		return c == '`';
	}
	return 1;
}

/* ---- output buffer ---- */

struct out {
	char *p;
	size_t len;
	size_t cap;   /* bytes usable, NUL included */
	int overflow; /* sticky: something did not fit */
};

static void put(struct out *o, char c)
{
	if (o->overflow || o->len + 1 >= o->cap) {
		o->overflow = 1;
		return;
	}
	o->p[o->len++] = c;
}

static void put_str(struct out *o, const char *s)
{
	while (*s)
		put(o, *s++);
}

/* Writes the visible bytes of s[off..end) to dst, percent-encoding those of set; returns how many
 * bytes that is. dst NULL: only counts. */
static size_t encode(char *dst, const char *s, size_t off, size_t end, enum enc_set set)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	for (size_t i = off; i < end; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_invisible(c))
			continue;
		if (set == ENC_NONE || !needs_pct(c, set)) {
			if (dst)
				dst[n] = (char)c;
			n++;
			continue;
		}
		if (dst) {
			dst[n] = '%';
			dst[n + 1] = hex[c >> 4];
			dst[n + 2] = hex[c & 15];
		}
		n += 3;
	}
	return n;
}

static void put_encoded(struct out *o, const char *s, size_t off, size_t end, enum enc_set set)
{
	size_t n = encode(NULL, s, off, end, set);
	if (o->overflow || n >= o->cap - o->len) {
		o->overflow = 1;
		return;
	}
	o->len += encode(o->p + o->len, s, off, end, set);
}

/* ---- path: dot segments removed right to left ----
 * A ".." cancels the nearest segment to its left that no later ".." cancelled, which is what RFC
 * 3986 5.2.4's left-to-right stack does. Walking right to left, each kept segment goes straight to
 * its place at the end of out, and the path is then moved down: only the result must fit. */

struct path_walk {
	struct out *o;
	size_t w;    /* the path written so far is out[w..o->cap - 1) */
	size_t skip; /* ".." segments still to cancel a segment */
};

/* 0: not a dot segment; 1: "." or "%2e"; 2: "..", ".%2e", "%2e." or "%2e%2e" (any case). */
static int dot_kind(const char *s, size_t off, size_t end)
{
	char v[8];
	size_t n = 0;
	for (size_t i = off; i < end; i++) {
		if (is_invisible((unsigned char)s[i]))
			continue;
		if (n == 6)
			return 0;
		v[n++] = (char)lower((unsigned char)s[i]);
	}
	if ((n == 1 && v[0] == '.') || (n == 3 && memcmp(v, "%2e", 3) == 0))
		return 1;
	if ((n == 2 && memcmp(v, "..", 2) == 0) || (n == 4 && memcmp(v, ".%2e", 4) == 0) ||
	    (n == 4 && memcmp(v, "%2e.", 4) == 0) || (n == 6 && memcmp(v, "%2e%2e", 6) == 0))
		return 2;
	return 0;
}

/* Prepends "/" and segment s[off..end) to the path written so far. */
static void keep_segment(struct path_walk *pw, const char *s, size_t off, size_t end)
{
	size_t n = 1 + encode(NULL, s, off, end, ENC_PATH);
	if (pw->o->overflow || pw->w - pw->o->len < n) {
		pw->o->overflow = 1;
		return;
	}
	pw->w -= n;
	pw->o->p[pw->w] = '/';
	encode(pw->o->p + pw->w + 1, s, off, end, ENC_PATH);
}

/* Segment positions. */
enum seg_pos {
	SEG_INNER,   /* a slash follows */
	SEG_LAST,    /* the path's last: a final "." or ".." leaves a trailing '/' */
	SEG_DROPPED, /* the base's last, which a relative path replaces: only a ".." acts */
};

/* One segment s[off..end), walking right to left. */
static void walk_segment(struct path_walk *pw, const char *s, size_t off, size_t end,
			 enum seg_pos pos)
{
	int dots = dot_kind(s, off, end);
	if (dots != 0 && pos == SEG_LAST)
		keep_segment(pw, s, off, off); /* the trailing '/' */
	if (dots == 2)
		pw->skip++;
	else if (dots == 0 && pos != SEG_DROPPED && pw->skip > 0)
		pw->skip--;
	else if (dots == 0 && pos != SEG_DROPPED)
		keep_segment(pw, s, off, end);
}

/* The segments of s[off..end), separated by '/' or '\' (off is just after a path's leading slash, or
 * at the start of a relative path), right to left; the last one is at last_pos. */
static void walk_segments(struct path_walk *pw, const char *s, size_t off, size_t end,
			  enum seg_pos last_pos)
{
	size_t seg_end = end;
	enum seg_pos pos = last_pos;
	for (size_t i = end; i > off; i--) {
		if (!is_slash((unsigned char)s[i - 1]))
			continue;
		walk_segment(pw, s, i, seg_end, pos);
		pos = SEG_INNER;
		seg_end = i - 1;
	}
	walk_segment(pw, s, off, seg_end, pos);
}

/* An absolute path s[off..end): empty, or starting (after any tab/CR/LF) with a slash. */
static void walk_abs_path(struct path_walk *pw, const char *s, size_t off, size_t end,
			  enum seg_pos last_pos)
{
	size_t i = next_visible(s, off, end);
	if (i < end)
		walk_segments(pw, s, i + 1, end, last_pos);
}

/* Moves the walked path down to the end of the output. */
static void finish_path(struct path_walk *pw)
{
	struct out *o = pw->o;
	if (o->overflow)
		return;
	size_t n = o->cap - 1 - pw->w;
	memmove(o->p + o->len, o->p + pw->w, n);
	o->len += n;
}

/* ---- the reference, split ---- */

enum path_kind { PATH_NONE, PATH_ABSOLUTE, PATH_RELATIVE };

struct span {
	size_t off, end;
};

struct ref_parts {
	enum url_scheme scheme; /* the result's */
	int has_authority;
	struct span authority;
	enum path_kind path_kind; /* PATH_ABSOLUTE when has_authority (maybe empty) */
	struct span path;
	int has_query, has_fragment;
	struct span query, fragment; /* without '?' and '#' */
};

/* Reads "scheme:" at ref[a..b): *scheme 0 when there is none, else URL_HTTP or URL_HTTPS and *after
 * just past the ':'. -1 for any other scheme. */
static int ref_scheme(const char *s, size_t a, size_t b, int *scheme, size_t *after,
		      const char **reason)
{
	char name[6];
	size_t n = 0, i = next_visible(s, a, b);
	*scheme = 0;
	if (i == b || !is_alpha((unsigned char)s[i]))
		return 0;
	while (i < b && is_scheme_char((unsigned char)s[i])) {
		if (n < sizeof name)
			name[n] = (char)lower((unsigned char)s[i]);
		n++;
		i = next_visible(s, i + 1, b);
	}
	if (i == b || s[i] != ':')
		return 0;
	*after = i + 1;
	if (n == 4 && memcmp(name, "http", 4) == 0)
		*scheme = URL_HTTP;
	else if (n == 5 && memcmp(name, "https", 5) == 0)
		*scheme = URL_HTTPS;
	else
		return fail(reason, "unsupported scheme in Location");
	return 0;
}

/* Slashes (any number, '/' or '\'), then the authority from pos to the next slash, '?' or '#';
 * returns where the path starts. */
static size_t split_authority(const char *s, size_t pos, size_t b, struct ref_parts *r)
{
	while (pos < b && (is_slash((unsigned char)s[pos]) || is_invisible((unsigned char)s[pos])))
		pos++;
	r->has_authority = 1;
	r->authority.off = pos;
	r->authority.end = find_any(s, pos, b, "/\\?#");
	r->path_kind = PATH_ABSOLUTE;
	return r->authority.end;
}

/* A reference without an authority of its own: picks the path kind at pos; returns pos. */
static size_t split_relative(const char *s, size_t pos, size_t b, struct ref_parts *r)
{
	size_t i = next_visible(s, pos, b);
	if (i == b || s[i] == '?' || s[i] == '#') {
		r->path_kind = PATH_NONE;
		return pos;
	}
	if (!is_slash((unsigned char)s[i])) {
		r->path_kind = PATH_RELATIVE;
		return pos;
	}
	size_t j = next_visible(s, i + 1, b);
	if (j < b && is_slash((unsigned char)s[j]))
		return split_authority(s, i, b, r);
	r->path_kind = PATH_ABSOLUTE;
	return pos;
}

/* Path, query and fragment spans from pos to b. */
static void split_rest(const char *s, size_t pos, size_t b, struct ref_parts *r)
{
	r->path.off = pos;
	r->path.end = find_any(s, pos, b, "?#");
	pos = r->path.end;
	if (pos < b && s[pos] == '?') {
		r->has_query = 1;
		r->query.off = pos + 1;
		r->query.end = find_any(s, pos + 1, b, "#");
		pos = r->query.end;
	}
	if (pos < b) {
		r->has_fragment = 1;
		r->fragment.off = pos + 1;
		r->fragment.end = b;
	}
}

static int split_ref(const char *s, size_t len, enum url_scheme base_scheme, struct ref_parts *r,
		     const char **reason)
{
	size_t a = 0, b = len, pos;
	while (a < b && (unsigned char)s[a] <= 0x20)
		a++;
	while (b > a && (unsigned char)s[b - 1] <= 0x20)
		b--;
	memset(r, 0, sizeof *r);
	r->scheme = base_scheme;
	int scheme;
	if (ref_scheme(s, a, b, &scheme, &pos, reason) != 0)
		return -1;
	if (scheme != 0 && scheme != (int)base_scheme) {
		r->scheme = (enum url_scheme)scheme;
		pos = split_authority(s, pos, b, r);
	} else {
		pos = split_relative(s, scheme ? pos : a, b, r);
	}
	split_rest(s, pos, b, r);
	return 0;
}

/* ---- the base ---- */

struct base_parts {
	struct span authority, path, query; /* query without '?' */
	int has_query;
};

static void split_base(const char *s, const struct url *u, struct base_parts *bp)
{
	const char *colon = memchr(s, ':', u->target_off); /* url_parse saw "scheme://" */
	size_t end = u->target_off + u->target_len;
	bp->authority.off = (size_t)(colon - s) + 3;
	bp->authority.end = u->target_off;
	bp->path.off = u->target_off;
	bp->path.end = find_any(s, u->target_off, end, "?");
	bp->has_query = bp->path.end < end;
	bp->query.off = bp->has_query ? bp->path.end + 1 : end;
	bp->query.end = end;
}

/* ---- assembling the result ---- */

/* The authority s[off..end): userinfo (before the last '@') encoded, host and port as written. */
static void put_authority(struct out *o, const char *s, size_t off, size_t end)
{
	size_t at = end;
	while (at > off && s[at - 1] != '@')
		at--;
	if (at > off) {
		put_encoded(o, s, off, at - 1, ENC_USERINFO);
		put(o, '@');
		off = at;
	}
	put_encoded(o, s, off, end, ENC_NONE);
}

/* The path, walked right to left (see struct path_walk). */
static void put_path(struct out *o, const char *ref, const struct ref_parts *r, const char *base,
		     const struct base_parts *bp)
{
	struct path_walk pw = {o, o->cap ? o->cap - 1 : 0, 0};
	if (o->overflow)
		return;
	switch (r->path_kind) {
	case PATH_NONE:
		walk_abs_path(&pw, base, bp->path.off, bp->path.end, SEG_LAST);
		break;
	case PATH_ABSOLUTE:
		walk_abs_path(&pw, ref, r->path.off, r->path.end, SEG_LAST);
		break;
	case PATH_RELATIVE: /* RFC 3986 5.2.3 merge: the base's path without its last segment */
		walk_segments(&pw, ref, r->path.off, r->path.end, SEG_LAST);
		walk_abs_path(&pw, base, bp->path.off, bp->path.end, SEG_DROPPED);
		break;
	}
	finish_path(&pw);
}

static void assemble(struct out *o, const char *ref, const struct ref_parts *r, const char *base,
		     const struct base_parts *bp)
{
	put_str(o, r->scheme == URL_HTTPS ? "https://" : "http://");
	if (r->has_authority)
		put_authority(o, ref, r->authority.off, r->authority.end);
	else
		put_encoded(o, base, bp->authority.off, bp->authority.end, ENC_NONE);
	put_path(o, ref, r, base, bp);
	if (r->has_query) {
		put(o, '?');
		put_encoded(o, ref, r->query.off, r->query.end, ENC_QUERY);
	} else if (r->path_kind == PATH_NONE && bp->has_query) {
		put(o, '?'); /* RFC 3986 5.2.2: no path and no query in ref: the base's query */
		put_encoded(o, base, bp->query.off, bp->query.end, ENC_QUERY);
	}
	if (r->has_fragment) {
		put(o, '#');
		put_encoded(o, ref, r->fragment.off, r->fragment.end, ENC_FRAGMENT);
	}
}

/* ---- public ---- */

static int resolve_fail(char *out, size_t cap, const char **reason, const char *why)
{
	if (cap > 0)
		out[0] = '\0';
	if (why)
		*reason = why;
	return -1;
}

int urlref_resolve(const char *base, size_t base_len, const char *ref, size_t ref_len, char *out,
		   size_t cap, const char **reason)
{
	assert(reason && (base || base_len == 0) && (ref || ref_len == 0) && (out || cap == 0));
	*reason = NULL;
	struct url u;
	if (url_parse(base, base_len, 1, &u, reason) != 0)
		return resolve_fail(out, cap, reason, "invalid base URL");
	struct base_parts bp;
	split_base(base, &u, &bp);
	struct ref_parts r;
	if (split_ref(ref, ref_len, u.scheme, &r, reason) != 0)
		return resolve_fail(out, cap, reason, NULL);
	struct out o = {out, 0, cap > INT_MAX ? (size_t)INT_MAX : cap, 0};
	assemble(&o, ref, &r, base, &bp);
	if (o.overflow)
		return resolve_fail(out, cap, reason, "Location too long");
	out[o.len] = '\0';
	if (url_parse(out, o.len, 1, &u, reason) != 0)
		return resolve_fail(out, cap, reason, NULL);
	return (int)o.len;
}

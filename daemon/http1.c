/* http1.c - HTTP/1.1 client side (RFC 9112): the request builder and the incremental response parser.
 * Status lines, header lines, chunk-size lines and trailers go through a byte-level state machine, so
 * any split of the input gives the same events; body bytes pass through in bulk and point into the
 * caller's buffer. Pure: no I/O, no allocation, no logging. */
#include "daemon/http1.h"
#include "daemon/hex.h"

#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define CHUNK_LINE_MAX 4096      /* bytes of one chunk-size line, extensions and CRLF included */
#define CHUNK_SIZE_MAX_SHIFT 56  /* a chunk size must stay below 2^60: refuse a digit beyond 2^56 */

/* Parser states. Those up to S_END_LF hold bytes that count toward header_bytes. */
enum {
	S_START = 0,   /* before a status line; empty lines (CRLF) are skipped */
	S_START_LF,    /* CR of an empty line before a status line seen */
	S_STATUS,      /* "HTTP/1.x SP 3DIGIT"; substate = position in the line */
	S_REASON,      /* reason phrase up to CR */
	S_STATUS_LF,   /* CR ending the status line seen */
	S_LINE,        /* start of a header or trailer line */
	S_NAME,        /* in a field name */
	S_VALUE,       /* in a field value */
	S_VALUE_LF,    /* CR ending a field line seen */
	S_END_LF,      /* CR of the empty line ending a header or trailer section seen */
	S_CHUNK_SIZE,  /* hex digits of a chunk size; substate = digits seen */
	S_CHUNK_EXT,   /* chunk extensions; substate = enum ext_step */
	S_CHUNK_LF,    /* CR ending a chunk-size line seen */
	S_CHUNK_DATA,  /* chunk data (bulk) */
	S_CHUNK_CR,    /* the CR after chunk data */
	S_CHUNK_END_LF,/* the LF after chunk data */
	S_BODY_LENGTH, /* Content-Length body (bulk), also a body of length 0 */
	S_BODY_EOF,    /* body until the connection closes (bulk) */
	S_AFTER_DONE,  /* DONE was reported */
};

/* Steps inside the chunk extensions: *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ). */
enum ext_step {
	X_BWS_SEMI,    /* whitespace after the size: only ';' may follow */
	X_NAME_START,  /* after ';' */
	X_NAME,
	X_AFTER_NAME,  /* whitespace after a name: ';' or '=' */
	X_VALUE_START, /* after '=' */
	X_TOKEN,
	X_QUOTED,
	X_QUOTED_PAIR, /* after a backslash in a quoted string */
	X_AFTER_QUOTED,
	X_AFTER_VALUE, /* whitespace after a value: only ';' may follow */
};

enum { H_NONE = 0, H_CONTENT_LENGTH, H_TRANSFER_ENCODING, H_CONNECTION, H_CONTENT_TYPE, H_LOCATION,
       H_RETRY_AFTER, H_CONTENT_ENCODING };

enum {
	F_STARTED = 1u << 0,    /* a status line byte was seen (kept across interim responses) */
	F_TRAILER = 1u << 1,    /* the field lines being read are trailers */
	F_CL = 1u << 2,         /* Content-Length seen */
	F_TE = 1u << 3,         /* Transfer-Encoding seen */
	F_TE_BAD = 1u << 4,     /* a coding other than chunked, or chunked twice */
	F_TE_CHUNKED = 1u << 5, /* chunked seen */
	F_TE_LAST = 1u << 6,    /* chunked is the last coding so far */
	F_CLOSE = 1u << 7,      /* Connection: close */
	F_KEEP_ALIVE = 1u << 8, /* Connection: keep-alive */
	F_LONG_VALUE = 1u << 9, /* the current field's value did not fit in value[] (Location only) */
};

/* step() results besides errors */
enum { STEP_CONT = 0, STEP_HEADERS, STEP_DONE };

static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static bool is_ows(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* tchar from RFC 9110 5.6.2 (a switch, not strchr: this runs for every header-name byte) */
static bool is_tchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c))
		return true;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
	case '-': case '.': case '^': case '_': case '`': case '|': case '~':
		return true;
	default:
		return false;
	}
}

/* field-vchar, SP or HTAB: what a field value or reason phrase may hold */
static bool is_field_char(uint8_t c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static uint8_t lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

static bool equal_nocase(const char *a, size_t a_len, const char *lit)
{
	size_t n = strlen(lit);

	if (a_len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((uint8_t)a[i]) != (uint8_t)lit[i])
			return false;
	return true;
}

/* Next element of a comma-separated list in s[*pos..n), OWS trimmed; empty elements are returned as
 * length 0. Returns false when the list is exhausted. */
static bool list_next(const char *s, size_t n, size_t *pos, const char **elem, size_t *elem_len)
{
	size_t i = *pos, end;

	if (i > n)
		return false;
	while (i < n && is_ows((uint8_t)s[i]))
		i++;
	end = i;
	while (end < n && s[end] != ',')
		end++;
	*elem = s + i;
	*pos = end + 1;
	while (end > i && is_ows((uint8_t)s[end - 1]))
		end--;
	*elem_len = end - i;
	return true;
}

static void reset_response(struct http1_parser *p)
{
	p->status = 0;
	p->version_minor = 0;
	p->framing = HTTP1_FRAMING_NONE;
	p->content_length = -1;
	p->keep_alive = false;
	p->content_type[0] = '\0';
	p->retry_after[0] = '\0';
	p->content_encoding[0] = '\0';
	p->location_len = -1;
	p->flags = F_STARTED;
}

void http1_parser_init(struct http1_parser *p, bool head_request, uint64_t max_header_bytes)
{
	memset(p, 0, offsetof(struct http1_parser, value)); /* value[] is valid up to value_len only */
	p->content_length = -1;
	p->head_request = head_request;
	p->max_header_bytes = max_header_bytes;
	p->state = S_START;
}

bool http1_started(const struct http1_parser *p)
{
	return p->state != S_START || (p->flags & F_STARTED);
}

/* ---- interpreted header values ---- */

static int parse_content_length(struct http1_parser *p)
{
	const char *s = p->value;
	size_t n = p->value_len, i = 0;

	for (;;) { /* 1*DIGIT *( OWS "," OWS 1*DIGIT ), all members equal */
		size_t start = i;
		int64_t v = 0;

		for (; i < n && is_digit((uint8_t)s[i]); i++) {
			int d = s[i] - '0';

			if (v > (INT64_MAX - d) / 10)
				return HTTP1_E_CONTENT_LENGTH;
			v = v * 10 + d;
		}
		if (i == start)
			return HTTP1_E_CONTENT_LENGTH;
		if ((p->flags & F_CL) && v != p->content_length)
			return HTTP1_E_CL_CONFLICT;
		p->content_length = v;
		p->flags |= F_CL;
		while (i < n && is_ows((uint8_t)s[i]))
			i++;
		if (i == n)
			return 0;
		if (s[i] != ',')
			return HTTP1_E_CONTENT_LENGTH;
		for (i++; i < n && is_ows((uint8_t)s[i]); i++)
			;
	}
}

static void parse_transfer_encoding(struct http1_parser *p)
{
	const char *e;
	size_t e_len, pos = 0;

	p->flags |= F_TE;
	while (list_next(p->value, p->value_len, &pos, &e, &e_len)) {
		if (e_len == 0)
			continue;
		if (equal_nocase(e, e_len, "chunked")) {
			if (p->flags & F_TE_CHUNKED)
				p->flags |= F_TE_BAD;
			p->flags |= F_TE_CHUNKED | F_TE_LAST;
		} else {
			p->flags |= F_TE_BAD;
			p->flags &= ~(uint32_t)F_TE_LAST;
		}
	}
}

static void parse_connection(struct http1_parser *p)
{
	const char *e;
	size_t e_len, pos = 0;

	while (list_next(p->value, p->value_len, &pos, &e, &e_len)) {
		if (equal_nocase(e, e_len, "close"))
			p->flags |= F_CLOSE;
		else if (equal_nocase(e, e_len, "keep-alive"))
			p->flags |= F_KEEP_ALIVE;
	}
}

/* The value, truncated to cap - 1 bytes (trailing OWS dropped), NUL-terminated, into out. */
static void copy_value(const struct http1_parser *p, char *out, size_t cap)
{
	size_t n = p->value_len;

	if (n > cap - 1)
		n = cap - 1;
	while (n > 0 && is_ows((uint8_t)p->value[n - 1]))
		n--;
	memcpy(out, p->value, n);
	out[n] = '\0';
}

/* Content-Encoding: several fields are one list ("br" then "gzip" is "br, gzip"), as RFC 9110 5.3. */
static void copy_coding(struct http1_parser *p)
{
	size_t have = strlen(p->content_encoding);
	if (have == 0) {
		copy_value(p, p->content_encoding, sizeof(p->content_encoding));
		return;
	}
	if (have + 3 >= sizeof(p->content_encoding))
		return; /* already full: the list is cut, and an unknown list is not decoded anyway */
	memcpy(p->content_encoding + have, ", ", 2);
	copy_value(p, p->content_encoding + have + 2, sizeof(p->content_encoding) - have - 2);
}

/* Location: the last one wins; a value that did not fit is remembered as too long (-2). */
static void copy_location(struct http1_parser *p)
{
	if (p->flags & F_LONG_VALUE) {
		p->location_len = -2;
		return;
	}
	memcpy(p->location, p->value, p->value_len);
	p->location[p->value_len] = '\0';
	p->location_len = (int)p->value_len;
}

/* A field line ended (its CRLF consumed): interpret it when it is one we keep. */
static int field_done(struct http1_parser *p)
{
	while (p->value_len > 0 && is_ows((uint8_t)p->value[p->value_len - 1]))
		p->value_len--;
	switch (p->header_id) {
	case H_CONTENT_LENGTH:
		return parse_content_length(p);
	case H_TRANSFER_ENCODING:
		parse_transfer_encoding(p);
		return 0;
	case H_CONNECTION:
		parse_connection(p);
		return 0;
	case H_CONTENT_TYPE:
		copy_value(p, p->content_type, sizeof(p->content_type));
		return 0;
	case H_LOCATION:
		copy_location(p);
		return 0;
	case H_RETRY_AFTER:
		copy_value(p, p->retry_after, sizeof(p->retry_after));
		return 0;
	case H_CONTENT_ENCODING:
		copy_coding(p);
		return 0;
	default:
		return 0;
	}
}

static int header_id_of(const struct http1_parser *p)
{
	static const struct {
		const char *name;
		int id;
	} known[] = {
		{ "content-length", H_CONTENT_LENGTH },
		{ "transfer-encoding", H_TRANSFER_ENCODING },
		{ "connection", H_CONNECTION },
		{ "content-type", H_CONTENT_TYPE },
		{ "location", H_LOCATION },
		{ "retry-after", H_RETRY_AFTER },
		{ "content-encoding", H_CONTENT_ENCODING },
	};

	if ((p->flags & F_TRAILER) || p->name_len >= sizeof(p->name))
		return H_NONE;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i].name) == p->name_len && memcmp(known[i].name, p->name, p->name_len) == 0)
			return known[i].id;
	return H_NONE;
}

/* One byte of an interpreted value, leading OWS already skipped. Once the buffer is full, whitespace is
 * dropped (it may be trailing OWS); anything else means the value is too long. */
static int value_push(struct http1_parser *p, uint8_t c)
{
	if (p->value_len < HTTP1_VALUE_MAX) {
		p->value[p->value_len++] = (char)c;
		return 0;
	}
	if (is_ows(c) || p->header_id == H_CONTENT_TYPE || p->header_id == H_RETRY_AFTER ||
	    p->header_id == H_CONTENT_ENCODING)
		return 0;
	if (p->header_id == H_LOCATION) { /* not an error unless the redirect is followed */
		p->flags |= F_LONG_VALUE;
		return 0;
	}
	return HTTP1_E_VALUE_TOO_LONG;
}

/* ---- framing (RFC 9112 6.3) ---- */

static int choose_framing(struct http1_parser *p)
{
	if (p->head_request || p->status == 204 || p->status == 304) {
		p->framing = HTTP1_FRAMING_NONE;
		p->remaining = 0;
		p->state = S_BODY_LENGTH;
	} else if (p->flags & F_TE) {
		if (p->flags & F_CL)
			return HTTP1_E_TE_CL;
		/* we decode chunked only; HTTP/1.0 with Transfer-Encoding is faulty framing (RFC 9112 6.1) */
		if ((p->flags & F_TE_BAD) || !(p->flags & F_TE_LAST) || p->version_minor == 0)
			return HTTP1_E_TE;
		p->framing = HTTP1_FRAMING_CHUNKED;
		p->remaining = 0;
		p->substate = 0;
		p->line_len = 0;
		p->state = S_CHUNK_SIZE;
	} else if (p->flags & F_CL) {
		p->framing = HTTP1_FRAMING_LENGTH;
		p->remaining = (uint64_t)p->content_length;
		p->state = S_BODY_LENGTH;
	} else {
		p->framing = HTTP1_FRAMING_EOF;
		p->state = S_BODY_EOF;
	}
	if (p->version_minor >= 1)
		p->keep_alive = !(p->flags & F_CLOSE);
	else
		p->keep_alive = (p->flags & F_KEEP_ALIVE) && !(p->flags & F_CLOSE);
	if (p->framing == HTTP1_FRAMING_EOF)
		p->keep_alive = false;
	return STEP_HEADERS;
}

/* The empty line ending a header or trailer section was consumed. */
static int section_done(struct http1_parser *p)
{
	if (p->flags & F_TRAILER) {
		p->state = S_AFTER_DONE;
		return STEP_DONE;
	}
	if (p->status < 200) {
		p->interim_count++;
		p->state = S_START;
		return STEP_CONT;
	}
	return choose_framing(p);
}

/* ---- status line ---- */

static int status_line_done(struct http1_parser *p)
{
	if (p->status == 101)
		return HTTP1_E_INTERIM; /* we never ask for an upgrade */
	if (p->status < 200 && p->interim_count >= HTTP1_MAX_INTERIM)
		return HTTP1_E_INTERIM;
	p->state = S_LINE;
	return STEP_CONT;
}

static int step_status(struct http1_parser *p, uint8_t c)
{
	static const char prefix[] = "HTTP/1.";
	int pos = p->substate++;

	if (pos < (int)sizeof(prefix) - 1)
		return c == (uint8_t)prefix[pos] ? STEP_CONT : HTTP1_E_STATUS_LINE;
	if (pos == 7) {
		if (!is_digit(c))
			return HTTP1_E_STATUS_LINE;
		p->version_minor = c - '0';
		return STEP_CONT;
	}
	if (pos == 8)
		return c == ' ' ? STEP_CONT : HTTP1_E_STATUS_LINE;
	if (pos <= 11) {
		if (!is_digit(c) || (pos == 9 && c == '0'))
			return HTTP1_E_STATUS_LINE;
		p->status = p->status * 10 + (c - '0');
		return STEP_CONT;
	}
	if (c == ' ')
		p->state = S_REASON;
	else if (c == '\r')
		p->state = S_STATUS_LF;
	else
		return HTTP1_E_STATUS_LINE;
	return STEP_CONT;
}

static int step_start(struct http1_parser *p, uint8_t c)
{
	if (p->state == S_START_LF) {
		if (c != '\n')
			return HTTP1_E_STATUS_LINE;
		p->state = S_START;
		return STEP_CONT;
	}
	if (c == '\r') {
		p->state = S_START_LF;
		return STEP_CONT;
	}
	reset_response(p);
	p->state = S_STATUS;
	p->substate = 0;
	return step_status(p, c);
}

static int step_reason(struct http1_parser *p, uint8_t c)
{
	if (p->state == S_STATUS_LF)
		return c == '\n' ? status_line_done(p) : HTTP1_E_STATUS_LINE;
	if (c == '\r')
		p->state = S_STATUS_LF;
	else if (!is_field_char(c))
		return HTTP1_E_STATUS_LINE;
	return STEP_CONT;
}

/* ---- header and trailer lines ---- */

static int step_line_start(struct http1_parser *p, uint8_t c)
{
	if (c == '\r') {
		p->state = S_END_LF;
		return STEP_CONT;
	}
	if (!is_tchar(c))
		return HTTP1_E_HEADER; /* includes SP/HTAB: obs-fold or whitespace before the first header */
	p->name_len = 0;
	p->state = S_NAME;
	p->name[p->name_len++] = (char)lower(c);
	return STEP_CONT;
}

static int step_name(struct http1_parser *p, uint8_t c)
{
	if (c == ':') {
		p->header_id = header_id_of(p);
		p->value_len = 0;
		p->flags &= ~F_LONG_VALUE;
		p->state = S_VALUE;
		return STEP_CONT;
	}
	if (!is_tchar(c))
		return HTTP1_E_HEADER;
	if (p->name_len < sizeof(p->name))
		p->name[p->name_len] = (char)lower(c);
	if (p->name_len < UINT32_MAX)
		p->name_len++;
	return STEP_CONT;
}

static int step_value(struct http1_parser *p, uint8_t c)
{
	if (c == '\r') {
		p->state = S_VALUE_LF;
		return STEP_CONT;
	}
	if (!is_field_char(c))
		return HTTP1_E_HEADER;
	if (p->header_id == H_NONE || (p->value_len == 0 && is_ows(c)))
		return STEP_CONT;
	return value_push(p, c);
}

static int step_line_end(struct http1_parser *p, uint8_t c)
{
	int r;

	if (c != '\n')
		return HTTP1_E_HEADER;
	if (p->state == S_END_LF)
		return section_done(p);
	r = field_done(p);
	if (r < 0)
		return r;
	p->state = S_LINE;
	return STEP_CONT;
}

/* ---- chunk-size lines ---- */

static int chunk_line_done(struct http1_parser *p)
{
	if (p->remaining == 0) {
		p->flags |= F_TRAILER;
		p->state = S_LINE;
	} else {
		p->state = S_CHUNK_DATA;
	}
	return STEP_CONT;
}

static int step_chunk_size(struct http1_parser *p, uint8_t c)
{
	int d = hex_value(c);

	if (d >= 0) {
		if (p->remaining >> CHUNK_SIZE_MAX_SHIFT)
			return HTTP1_E_CHUNK_OVERFLOW;
		p->remaining = p->remaining * 16 + (uint64_t)d;
		p->substate++;
		return STEP_CONT;
	}
	if (p->substate == 0)
		return HTTP1_E_CHUNK_SIZE;
	if (c == '\r') {
		p->state = S_CHUNK_LF;
	} else if (c == ';' || is_ows(c)) {
		p->state = S_CHUNK_EXT;
		p->substate = c == ';' ? X_NAME_START : X_BWS_SEMI;
	} else {
		return HTTP1_E_CHUNK_SIZE;
	}
	return STEP_CONT;
}

/* Steps where the extension may end (CR) or a new one start (';'). */
static int ext_after_item(struct http1_parser *p, uint8_t c, bool may_end)
{
	if (c == ';')
		p->substate = X_NAME_START;
	else if (c == '\r' && may_end)
		p->state = S_CHUNK_LF;
	else
		return HTTP1_E_CHUNK_SIZE;
	return STEP_CONT;
}

static int step_chunk_ext_value(struct http1_parser *p, uint8_t c)
{
	switch (p->substate) {
	case X_VALUE_START:
		if (c == '"')
			p->substate = X_QUOTED;
		else if (is_tchar(c))
			p->substate = X_TOKEN;
		else if (!is_ows(c))
			return HTTP1_E_CHUNK_SIZE;
		return STEP_CONT;
	case X_TOKEN:
		if (is_tchar(c))
			return STEP_CONT;
		if (is_ows(c)) {
			p->substate = X_AFTER_VALUE;
			return STEP_CONT;
		}
		return ext_after_item(p, c, true);
	case X_QUOTED:
		if (c == '"')
			p->substate = X_AFTER_QUOTED;
		else if (c == '\\')
			p->substate = X_QUOTED_PAIR;
		else if (!is_field_char(c))
			return HTTP1_E_CHUNK_SIZE;
		return STEP_CONT;
	case X_QUOTED_PAIR:
		if (!is_field_char(c))
			return HTTP1_E_CHUNK_SIZE;
		p->substate = X_QUOTED;
		return STEP_CONT;
	case X_AFTER_QUOTED:
		if (is_ows(c)) {
			p->substate = X_AFTER_VALUE;
			return STEP_CONT;
		}
		return ext_after_item(p, c, true);
	default: /* X_AFTER_VALUE */
		return is_ows(c) ? STEP_CONT : ext_after_item(p, c, false);
	}
}

static int step_chunk_ext(struct http1_parser *p, uint8_t c)
{
	switch (p->substate) {
	case X_BWS_SEMI:
		return is_ows(c) ? STEP_CONT : ext_after_item(p, c, false);
	case X_NAME_START:
		if (is_tchar(c))
			p->substate = X_NAME;
		else if (!is_ows(c))
			return HTTP1_E_CHUNK_SIZE;
		return STEP_CONT;
	case X_NAME:
		if (is_tchar(c))
			return STEP_CONT;
		if (c == '=') {
			p->substate = X_VALUE_START;
			return STEP_CONT;
		}
		if (is_ows(c)) {
			p->substate = X_AFTER_NAME;
			return STEP_CONT;
		}
		return ext_after_item(p, c, true);
	case X_AFTER_NAME:
		if (c == '=') {
			p->substate = X_VALUE_START;
			return STEP_CONT;
		}
		return is_ows(c) ? STEP_CONT : ext_after_item(p, c, false);
	default:
		return step_chunk_ext_value(p, c);
	}
}

static int step_chunk(struct http1_parser *p, uint8_t c)
{
	switch (p->state) {
	case S_CHUNK_SIZE:
	case S_CHUNK_EXT:
	case S_CHUNK_LF:
		if (++p->line_len > CHUNK_LINE_MAX)
			return HTTP1_E_CHUNK_SIZE;
		if (p->state == S_CHUNK_SIZE)
			return step_chunk_size(p, c);
		if (p->state == S_CHUNK_EXT)
			return step_chunk_ext(p, c);
		return c == '\n' ? chunk_line_done(p) : HTTP1_E_CHUNK_SIZE;
	case S_CHUNK_CR:
		if (c != '\r')
			return HTTP1_E_CHUNK_SIZE;
		p->state = S_CHUNK_END_LF;
		return STEP_CONT;
	default: /* S_CHUNK_END_LF */
		if (c != '\n')
			return HTTP1_E_CHUNK_SIZE;
		p->state = S_CHUNK_SIZE;
		p->substate = 0;
		p->remaining = 0;
		p->line_len = 0;
		return STEP_CONT;
	}
}

/* One byte outside a body run. Returns STEP_* or a negative enum http1_error. */
static int step(struct http1_parser *p, uint8_t c)
{
	if (p->state <= S_END_LF && ++p->header_bytes > p->max_header_bytes)
		return HTTP1_E_HEADER_TOO_LARGE;
	switch (p->state) {
	case S_START:
	case S_START_LF:
		return step_start(p, c);
	case S_STATUS:
		return step_status(p, c);
	case S_REASON:
	case S_STATUS_LF:
		return step_reason(p, c);
	case S_LINE:
		return step_line_start(p, c);
	case S_NAME:
		return step_name(p, c);
	case S_VALUE:
		return step_value(p, c);
	case S_VALUE_LF:
	case S_END_LF:
		return step_line_end(p, c);
	default:
		return step_chunk(p, c);
	}
}

/* A value the parser does not keep: consume its bytes in one run, up to the CR (or a byte step() must
 * judge), never past max_header_bytes (step() reports the byte that crosses it). */
static size_t skip_value(struct http1_parser *p, const uint8_t *buf, size_t len)
{
	uint64_t room = p->max_header_bytes - p->header_bytes;
	size_t n = 0;
	if (len > room)
		len = (size_t)room;
	while (n < len && buf[n] != '\r' && is_field_char(buf[n]))
		n++;
	p->header_bytes += n;
	return n;
}

/* Pass body bytes through: a run of at most len bytes. */
static size_t body_run(struct http1_parser *p, const uint8_t *buf, size_t len, struct http1_ev *ev)
{
	size_t n = len;

	if (p->state != S_BODY_EOF) {
		if (n > p->remaining)
			n = (size_t)p->remaining;
		p->remaining -= n;
		if (p->state == S_CHUNK_DATA && p->remaining == 0)
			p->state = S_CHUNK_CR;
	}
	p->body_bytes += n;
	ev->type = HTTP1_EV_BODY;
	ev->data = buf;
	ev->len = n;
	return n;
}

static bool in_body_run(const struct http1_parser *p)
{
	return p->state == S_BODY_LENGTH || p->state == S_BODY_EOF || p->state == S_CHUNK_DATA;
}

ssize_t http1_parse(struct http1_parser *p, const uint8_t *buf, size_t len, struct http1_ev *ev)
{
	size_t i = 0;

	assert(len <= SSIZE_MAX);
	ev->type = HTTP1_EV_NONE;
	ev->data = NULL;
	ev->len = 0;
	if (p->error)
		return p->error;
	if (p->state == S_AFTER_DONE)
		return HTTP1_E_AFTER_DONE;
	for (;;) {
		int r;

		if (p->state == S_BODY_LENGTH && p->remaining == 0) {
			p->state = S_AFTER_DONE;
			ev->type = HTTP1_EV_DONE;
			return (ssize_t)i;
		}
		if (i == len)
			return (ssize_t)i;
		if (in_body_run(p))
			return (ssize_t)(i + body_run(p, buf + i, len - i, ev));
		if (p->state == S_VALUE && p->header_id == H_NONE)
			i += skip_value(p, buf + i, len - i);
		if (i == len)
			return (ssize_t)i;
		r = step(p, buf[i++]);
		if (r < 0) {
			p->error = r;
			return r;
		}
		if (r != STEP_CONT) {
			ev->type = r == STEP_HEADERS ? HTTP1_EV_HEADERS : HTTP1_EV_DONE;
			return (ssize_t)i;
		}
	}
}

int http1_finish(struct http1_parser *p)
{
	if (p->error)
		return p->error;
	switch (p->state) {
	case S_AFTER_DONE:
		return HTTP1_EV_NONE;
	case S_BODY_EOF:
		p->state = S_AFTER_DONE;
		return HTTP1_EV_DONE;
	case S_BODY_LENGTH:
		if (p->remaining == 0) {
			p->state = S_AFTER_DONE;
			return HTTP1_EV_DONE;
		}
		break;
	case S_START:
		if (!(p->flags & F_STARTED))
			return HTTP1_EV_NONE;
		break;
	default:
		break;
	}
	p->error = HTTP1_E_TRUNCATED;
	return HTTP1_E_TRUNCATED;
}

const char *http1_strerror(int err)
{
	switch (err) {
	case HTTP1_E_STATUS_LINE:
		return "malformed status line";
	case HTTP1_E_HEADER:
		return "malformed header line";
	case HTTP1_E_CONTENT_LENGTH:
		return "invalid Content-Length";
	case HTTP1_E_CL_CONFLICT:
		return "conflicting Content-Length";
	case HTTP1_E_TE_CL:
		return "Transfer-Encoding together with Content-Length";
	case HTTP1_E_TE:
		return "unsupported Transfer-Encoding";
	case HTTP1_E_CHUNK_SIZE:
		return "malformed chunk size line or chunk end";
	case HTTP1_E_CHUNK_OVERFLOW:
		return "chunk size too large";
	case HTTP1_E_HEADER_TOO_LARGE:
		return "response header too large";
	case HTTP1_E_TRUNCATED:
		return "response truncated";
	case HTTP1_E_INTERIM:
		return "unexpected 101 or too many 1xx responses";
	case HTTP1_E_VALUE_TOO_LONG:
		return "header value too long";
	case HTTP1_E_AFTER_DONE:
		return "parser used after the response was complete";
	default:
		return "unknown HTTP/1 parser error";
	}
}

/* ---- request builder ---- */

struct out {
	char *buf;
	size_t cap, len;
	bool overflow;
};

static void out_put(struct out *o, const char *s, size_t n)
{
	if (o->overflow || n >= o->cap - o->len) { /* keep room for the NUL */
		o->overflow = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void out_str(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

/* Bytes that may appear in a request-line token or target, or a Host value: no CTL, no SP. */
static bool clean_word(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i];

		if (c <= 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* A field value: no CTL except HTAB (so no CR, LF or NUL). */
static bool clean_value(const char *s)
{
	for (; *s; s++)
		if (!is_field_char((uint8_t)*s))
			return false;
	return true;
}

bool http1_header_find(const char *lines, size_t len, const char *name, size_t name_len, size_t *at, size_t *n)
{
	size_t off = 0;
	while (off < len) {
		const char *eol = memmem(lines + off, len - off, "\r\n", 2);
		size_t line = eol ? (size_t)(eol - (lines + off)) + 2 : len - off;
		if (line > name_len && lines[off + name_len] == ':' && strncasecmp(lines + off, name, name_len) == 0) {
			*at = off, *n = line;
			return true;
		}
		off += line;
	}
	return false;
}

/* Do the extra lines name this header? */
static bool extra_has(const struct http1_request *rq, const char *name)
{
	size_t at, n;
	return http1_header_find(rq->extra, rq->extra_len, name, strlen(name), &at, &n);
}

/* Copy extra's lines that carry a value (and, with drop_credentials, not Authorization or Cookie). */
static bool out_extra(struct out *o, const char *extra, size_t len, bool drop_credentials)
{
	for (size_t off = 0; off < len;) {
		const char *eol = memchr(extra + off, '\n', len - off);
		if (!eol || eol == extra + off || eol[-1] != '\r')
			return false;
		size_t line = (size_t)(eol - (extra + off)) + 1;
		const char *l = extra + off, *colon = memchr(l, ':', line);
		off += line;
		if (!colon || colon == l)
			return false;
		for (const char *p = l; p < eol - 1; p++)
			if (*p == '\r' || *p == '\n' || *p == '\0')
				return false;
		size_t nlen = (size_t)(colon - l);
		if (colon + 3 > eol) /* "Name:\r\n": only suppresses the default */
			continue;
		if (drop_credentials && ((nlen == 13 && strncasecmp(l, "authorization", 13) == 0) ||
					 (nlen == 6 && strncasecmp(l, "cookie", 6) == 0)))
			continue;
		out_put(o, l, line);
	}
	return true;
}

static void out_default(struct out *o, const struct http1_request *rq, const char *name, const char *value)
{
	if (!value || extra_has(rq, name))
		return;
	out_str(o, name);
	out_str(o, ": ");
	out_str(o, value);
	out_str(o, "\r\n");
}

ssize_t http1_build_request(char *buf, size_t cap, const struct http1_request *rq)
{
	struct out o = { .buf = buf, .cap = cap };

	if (cap == 0 || !rq->method || !rq->method[0] || !clean_word(rq->method, strlen(rq->method)))
		return -1;
	if (!clean_word(rq->target, rq->target_len) || !clean_word(rq->host, rq->host_len))
		return -1;
	if ((rq->user_agent && !clean_value(rq->user_agent)) || (rq->auth_basic64 && !clean_value(rq->auth_basic64)) ||
	    (rq->accept_encoding && !clean_value(rq->accept_encoding)))
		return -1;
	out_str(&o, rq->method);
	out_str(&o, " ");
	if (rq->target_len == 0)
		out_str(&o, "/");
	else
		out_put(&o, rq->target, rq->target_len);
	out_str(&o, " HTTP/1.1\r\nHost: ");
	out_put(&o, rq->host, rq->host_len);
	out_str(&o, "\r\n");
	out_default(&o, rq, "User-Agent", rq->user_agent);
	out_default(&o, rq, "Accept", "*/*");
	out_default(&o, rq, "Accept-Encoding", rq->accept_encoding ? rq->accept_encoding : "identity");
	out_str(&o, "Connection: keep-alive\r\n");
	if (!out_extra(&o, rq->extra, rq->extra_len, rq->drop_credentials))
		return -1;
	if (rq->auth_basic64 && !extra_has(rq, "Authorization")) {
		out_str(&o, "Authorization: Basic ");
		out_str(&o, rq->auth_basic64);
		out_str(&o, "\r\n");
	}
	out_str(&o, "\r\n");
	if (o.overflow)
		return -1;
	buf[o.len] = '\0';
	return (ssize_t)o.len;
}

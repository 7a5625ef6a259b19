/* robots.c - robots.txt (RFC 9309) parsing and matching, pure: the body is scanned twice, once to
 * size the rules of the group(s) that apply to the product token (or to "*"), once to store them in
 * one allocation; robots_allowed decodes the target and tries the rules longest first. The rules
 * and every decision are in robots.h. No I/O, no logging, no globals. */
#include "daemon/robots.h"
#include "daemon/hex.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* One kept rule. Its pattern is a run of piece records in robots.patterns: a 2-byte little-endian
 * length, then that many decoded octets; consecutive pieces are separated by a '*'. */
struct robots_rule {
	uint32_t off;      /* of the first piece record in patterns */
	uint32_t len;      /* bytes of all its piece records */
	uint32_t priority; /* decoded octets + '*' runs + 1 when anchored: longest wins */
	bool allow;
	bool anchored;     /* ended with '$': the last piece must end the target */
};

struct robots {
	size_t alloc_bytes;
	int64_t crawl_delay_ms;
	uint32_t n_rules;
	bool disallow_all;
	uint8_t *patterns;           /* right after rules[] in the same allocation */
	struct robots_rule rules[];  /* sorted: priority descending, allow before disallow */
};

#define PIECE_HEADER_BYTES 2

/* robots.h promises memory below 2 * len + 16 * rules + 64 bytes. */
_Static_assert(sizeof(struct robots_rule) <= 16, "robots_rule grew");
_Static_assert(sizeof(struct robots) <= 64, "robots grew");
_Static_assert(ROBOTS_MAX_PATTERN_BYTES <= 0xffff, "piece lengths are 2 bytes");

/* ---- small character helpers ---- */

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_token_char(int c)
{
	c = lower(c);
	return (c >= 'a' && c <= 'z') || c == '-' || c == '_';
}

static bool is_blank(int c)
{
	return c == ' ' || c == '\t';
}

/* The octet at s[*i], decoding a valid "%XX"; advances *i past what it read. */
static uint8_t decode_at(const char *s, size_t n, size_t *i)
{
	size_t k = *i;
	if (s[k] == '%' && k + 2 < n && hex_value((unsigned char)s[k + 1]) >= 0 &&
	    hex_value((unsigned char)s[k + 2]) >= 0) {
		*i = k + 3;
		return (uint8_t)(hex_value((unsigned char)s[k + 1]) * 16 +
				 hex_value((unsigned char)s[k + 2]));
	}
	*i = k + 1;
	return (uint8_t)s[k];
}

struct span {
	const char *s;
	size_t n;
};

static struct span trim(const char *s, size_t n)
{
	while (n > 0 && is_blank((unsigned char)s[0])) {
		s++;
		n--;
	}
	while (n > 0 && is_blank((unsigned char)s[n - 1]))
		n--;
	return (struct span){s, n};
}

/* Case-insensitive comparison of a span with a lowercase literal. */
static bool equals_lower(struct span a, const char *lit)
{
	if (strlen(lit) != a.n)
		return false;
	for (size_t i = 0; i < a.n; i++)
		if (lower((unsigned char)a.s[i]) != lit[i])
			return false;
	return true;
}

bool robots_token_valid(const char *token)
{
	if (!token)
		return false;
	size_t n = strlen(token);
	if (n == 0 || n > ROBOTS_MAX_TOKEN_BYTES)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_token_char((unsigned char)token[i]))
			return false;
	return true;
}

/* ---- patterns ---- */

struct pattern_info {
	uint32_t priority;
	bool anchored;
};

static void put_header(uint8_t *out, size_t at, size_t piece_len)
{
	if (out) {
		out[at] = (uint8_t)(piece_len & 0xff);
		out[at + 1] = (uint8_t)(piece_len >> 8);
	}
}

/* Compiles a rule value into piece records, written to out unless it is NULL. Returns the bytes
 * they take, or 0 when the rule is dropped: empty, longer than ROBOTS_MAX_PATTERN_BYTES octets, or
 * not starting with '/' or '*' once decoded. */
static size_t compile_pattern(const char *v, size_t n, uint8_t *out, struct pattern_info *pi)
{
	pi->anchored = n > 0 && v[n - 1] == '$';
	if (pi->anchored)
		n--;
	size_t head = 0, pos = PIECE_HEADER_BYTES, piece = 0, octets = 0, stars = 0;
	for (size_t i = 0; i < n;) {
		if (v[i] == '*') {
			while (i < n && v[i] == '*')
				i++;
			put_header(out, head, piece);
			head = pos;
			pos += PIECE_HEADER_BYTES;
			piece = 0;
			stars++;
			continue;
		}
		uint8_t c = decode_at(v, n, &i);
		if ((octets == 0 && stars == 0 && c != '/') || octets == ROBOTS_MAX_PATTERN_BYTES)
			return 0;
		if (out)
			out[pos] = c;
		pos++;
		piece++;
		octets++;
	}
	if (octets == 0 && stars == 0)
		return 0;
	put_header(out, head, piece);
	pi->priority = (uint32_t)(octets + stars + (pi->anchored ? 1 : 0));
	return pos;
}

/* Reads the piece record at *p: returns its length, sets *data, and moves *p to the next one. */
static size_t read_piece(const uint8_t **p, const uint8_t **data)
{
	size_t n = (size_t)(*p)[0] | ((size_t)(*p)[1] << 8);
	*data = *p + PIECE_HEADER_BYTES;
	*p = *data + n;
	return n;
}

/* The last piece, after target offset pos. */
static bool last_piece_matches(const uint8_t *d, size_t n, bool anchored, const uint8_t *t,
			       size_t tlen, size_t pos, bool truncated)
{
	if (!anchored)
		return n == 0 || memmem(t + pos, tlen - pos, d, n) != NULL;
	if (truncated)
		return false;
	return n <= tlen - pos && memcmp(t + tlen - n, d, n) == 0;
}

/* Glob match of one rule against the decoded target t: the first piece is a prefix, each middle
 * piece is found leftmost after the previous one (leftmost is always safe for '*'-only globs), the
 * last is found anywhere after, or at the very end when anchored. */
static bool rule_matches(const struct robots *r, const struct robots_rule *rule, const uint8_t *t,
			 size_t tlen, bool truncated)
{
	const uint8_t *p = r->patterns + rule->off, *end = p + rule->len, *d;
	size_t n = read_piece(&p, &d);
	if (n > tlen || memcmp(d, t, n) != 0)
		return false;
	size_t pos = n;
	if (p == end)
		return !rule->anchored || (pos == tlen && !truncated);
	for (;;) {
		n = read_piece(&p, &d);
		if (p == end)
			return last_piece_matches(d, n, rule->anchored, t, tlen, pos, truncated);
		const uint8_t *f = n ? memmem(t + pos, tlen - pos, d, n) : t + pos;
		if (!f)
			return false;
		pos = (size_t)(f - t) + n;
	}
}

/* ---- crawl-delay ---- */

/* "N" or "N.F" or ".F" seconds in milliseconds (capped), or -1. */
static int64_t parse_delay_ms(struct span v)
{
	size_t i = 0;
	int64_t sec = 0, frac_ms = 0, scale = 100;
	bool digits = false;
	for (; i < v.n && is_digit((unsigned char)v.s[i]); i++, digits = true)
		if (sec < ROBOTS_MAX_CRAWL_DELAY_MS)
			sec = sec * 10 + (v.s[i] - '0');
	if (i < v.n && v.s[i] == '.')
		for (i++; i < v.n && is_digit((unsigned char)v.s[i]); i++, digits = true) {
			frac_ms += (v.s[i] - '0') * scale;
			scale /= 10;
		}
	if (!digits || i != v.n)
		return -1;
	int64_t ms = sec * 1000 + frac_ms;
	return ms > ROBOTS_MAX_CRAWL_DELAY_MS ? ROBOTS_MAX_CRAWL_DELAY_MS : ms;
}

/* ---- scanning the body ---- */

enum key { KEY_OTHER, KEY_AGENT, KEY_ALLOW, KEY_DISALLOW, KEY_DELAY };

static enum key classify_key(struct span k)
{
	static const struct {
		const char *name;
		enum key key;
	} keys[] = {
		{"user-agent", KEY_AGENT}, {"useragent", KEY_AGENT}, {"user agent", KEY_AGENT},
		{"allow", KEY_ALLOW},      {"disallow", KEY_DISALLOW}, {"dissallow", KEY_DISALLOW},
		{"dissalow", KEY_DISALLOW}, {"disalow", KEY_DISALLOW}, {"diasllow", KEY_DISALLOW},
		{"disallaw", KEY_DISALLOW}, {"crawl-delay", KEY_DELAY},
	};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (equals_lower(k, keys[i].name))
			return keys[i].key;
	return KEY_OTHER;
}

/* What one candidate set of groups (the token's, or "*"'s) holds so far. */
struct tally {
	bool seen;          /* a group for it exists (even without rules) */
	uint32_t rules;     /* rules kept, <= ROBOTS_MAX_RULES */
	size_t bytes;       /* pattern bytes they take */
	int64_t delay_ms;   /* largest valid crawl-delay, -1 when none */
};

struct scanner {
	const char *token;
	size_t token_len;          /* 0 when the token is invalid: only "*" groups apply */
	bool in_agents;            /* the last group line was a user-agent line */
	bool for_token, for_star;  /* the current group applies to the token / is a "*" group */
	struct tally token_set, star_set;
	struct robots *out;        /* second pass: where the wanted set's rules go */
	bool want_token;           /* second pass: the token's set (else "*"'s) is stored */
};

static bool agent_is_star(struct span v)
{
	return v.n >= 1 && v.s[0] == '*' && (v.n == 1 || is_blank((unsigned char)v.s[1]));
}

static bool agent_is_token(const struct scanner *sc, struct span v)
{
	size_t n = 0;
	while (n < v.n && is_token_char((unsigned char)v.s[n]))
		n++;
	if (sc->token_len == 0 || n != sc->token_len)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)v.s[i]) != lower((unsigned char)sc->token[i]))
			return false;
	return true;
}

static void on_agent(struct scanner *sc, struct span v)
{
	if (!sc->in_agents) {
		sc->in_agents = true;
		sc->for_token = sc->for_star = false;
	}
	if (agent_is_star(v)) {
		sc->for_star = true;
		sc->star_set.seen = true;
	} else if (agent_is_token(sc, v)) {
		sc->for_token = true;
		sc->token_set.seen = true;
	}
}

static void store_rule(struct robots *out, const struct tally *set, bool allow, struct span v)
{
	struct robots_rule *rule = &out->rules[set->rules];
	struct pattern_info pi;
	rule->off = (uint32_t)set->bytes;
	rule->len = (uint32_t)compile_pattern(v.s, v.n, out->patterns + set->bytes, &pi);
	rule->priority = pi.priority;
	rule->allow = allow;
	rule->anchored = pi.anchored;
}

static void add_rule(struct scanner *sc, struct tally *set, bool is_token_set, bool allow,
		     struct span v)
{
	struct pattern_info pi;
	if (set->rules >= ROBOTS_MAX_RULES)
		return;
	size_t need = compile_pattern(v.s, v.n, NULL, &pi);
	if (need == 0)
		return;
	if (sc->out && is_token_set == sc->want_token)
		store_rule(sc->out, set, allow, v);
	set->rules++;
	set->bytes += need;
}

static void on_rule(struct scanner *sc, bool allow, struct span v)
{
	sc->in_agents = false;
	if (sc->for_token)
		add_rule(sc, &sc->token_set, true, allow, v);
	if (sc->for_star)
		add_rule(sc, &sc->star_set, false, allow, v);
}

static void on_delay(struct scanner *sc, struct span v)
{
	sc->in_agents = false;
	int64_t ms = parse_delay_ms(v);
	if (sc->for_token && ms > sc->token_set.delay_ms)
		sc->token_set.delay_ms = ms;
	if (sc->for_star && ms > sc->star_set.delay_ms)
		sc->star_set.delay_ms = ms;
}

static void scan_line(struct scanner *sc, const char *line, size_t n)
{
	const char *hash = memchr(line, '#', n);
	if (hash)
		n = (size_t)(hash - line);
	const char *colon = memchr(line, ':', n);
	if (!colon)
		return;
	struct span key = trim(line, (size_t)(colon - line));
	struct span val = trim(colon + 1, n - (size_t)(colon - line) - 1);
	enum key k = classify_key(key);
	switch (k) {
	case KEY_AGENT:
		on_agent(sc, val);
		break;
	case KEY_ALLOW:
	case KEY_DISALLOW:
		on_rule(sc, k == KEY_ALLOW, val);
		break;
	case KEY_DELAY:
		on_delay(sc, val);
		break;
	case KEY_OTHER:
		break;
	}
}

/* The part of the body that is parsed: without a BOM, at most ROBOTS_MAX_BYTES, and without the
 * line the cut falls in when there is a cut. */
static struct span parsed_part(const char *txt, size_t len)
{
	if (len > ROBOTS_MAX_BYTES) {
		size_t n = ROBOTS_MAX_BYTES;
		if (txt[n] != '\n' && txt[n] != '\r')
			while (n > 0 && txt[n - 1] != '\n' && txt[n - 1] != '\r')
				n--;
		len = n;
	}
	if (len >= 3 && memcmp(txt, "\xEF\xBB\xBF", 3) == 0)
		return (struct span){txt + 3, len - 3};
	return (struct span){txt, len};
}

static void scan_body(struct scanner *sc, struct span body)
{
	size_t i = 0;
	while (i < body.n) {
		size_t start = i;
		while (i < body.n && body.s[i] != '\n' && body.s[i] != '\r')
			i++;
		scan_line(sc, body.s + start, i - start);
		i++; /* a CRLF leaves an empty line, which is skipped */
	}
}

static void scanner_init(struct scanner *sc, const char *token, struct robots *out, bool want_token)
{
	memset(sc, 0, sizeof(*sc));
	sc->token = token;
	sc->token_len = robots_token_valid(token) ? strlen(token) : 0;
	sc->token_set.delay_ms = sc->star_set.delay_ms = -1;
	sc->out = out;
	sc->want_token = want_token;
}

/* ---- building results ---- */

static struct robots *robots_alloc(uint32_t n_rules, size_t pattern_bytes)
{
	size_t bytes = sizeof(struct robots) + n_rules * sizeof(struct robots_rule) + pattern_bytes;
	struct robots *r = calloc(1, bytes);
	if (!r)
		return NULL;
	r->alloc_bytes = bytes;
	r->crawl_delay_ms = -1;
	r->n_rules = n_rules;
	r->patterns = (uint8_t *)(r->rules + n_rules);
	return r;
}

static int rule_order(const void *a, const void *b)
{
	const struct robots_rule *x = a, *y = b;
	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	return (int)y->allow - (int)x->allow;
}

struct robots *robots_parse(const char *txt, size_t len, const char *product_token)
{
	assert(product_token && (txt || len == 0));
	struct span body = parsed_part(txt, len);
	struct scanner sc;
	scanner_init(&sc, product_token, NULL, false);
	scan_body(&sc, body);
	bool want_token = sc.token_set.seen;
	const struct tally *set = want_token ? &sc.token_set : &sc.star_set;
	if (!set->seen)
		return robots_allow_all();
	struct robots *r = robots_alloc(set->rules, set->bytes);
	if (!r)
		return NULL;
	r->crawl_delay_ms = set->delay_ms;
	struct scanner sc2;
	scanner_init(&sc2, product_token, r, want_token);
	scan_body(&sc2, body);
	assert((want_token ? sc2.token_set.rules : sc2.star_set.rules) == r->n_rules);
	qsort(r->rules, r->n_rules, sizeof(r->rules[0]), rule_order);
	return r;
}

struct robots *robots_allow_all(void)
{
	return robots_alloc(0, 0);
}

struct robots *robots_disallow_all(void)
{
	struct robots *r = robots_alloc(0, 0);
	if (r)
		r->disallow_all = true;
	return r;
}

/* ---- queries ---- */

/* Decodes the target into t (ROBOTS_MAX_TARGET_BYTES), with "/" before it when it does not start
 * with '/'. Returns the octets written; *truncated says whether input was left over. */
static size_t decode_target(const char *target, size_t len, uint8_t *t, bool *truncated)
{
	size_t o = 0, i = 0;
	if (len == 0 || target[0] != '/')
		t[o++] = '/';
	while (i < len && o < ROBOTS_MAX_TARGET_BYTES)
		t[o++] = decode_at(target, len, &i);
	*truncated = i < len;
	return o;
}

bool robots_allowed(const struct robots *r, const char *target, size_t target_len)
{
	assert(r && (target || target_len == 0));
	uint8_t t[ROBOTS_MAX_TARGET_BYTES];
	bool truncated;
	size_t n = decode_target(target, target_len, t, &truncated);
	if (!truncated && n == strlen("/robots.txt") && memcmp(t, "/robots.txt", n) == 0)
		return true;
	if (r->disallow_all)
		return false;
	for (uint32_t i = 0; i < r->n_rules; i++)
		if (rule_matches(r, &r->rules[i], t, n, truncated))
			return r->rules[i].allow;
	return true;
}

int64_t robots_crawl_delay_ms(const struct robots *r)
{
	assert(r);
	return r->crawl_delay_ms;
}

size_t robots_memory_bytes(const struct robots *r)
{
	assert(r);
	return r->alloc_bytes;
}

size_t robots_rule_count(const struct robots *r)
{
	assert(r);
	return r->n_rules;
}

void robots_free(struct robots *r)
{
	free(r);
}

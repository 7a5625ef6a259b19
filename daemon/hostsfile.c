/* hostsfile.c - parses /etc/hosts text line by line into a table of names (a chained hash table over
 * one array of entries, names in one arena) whose entries point at the addresses of the lines they
 * appeared on (one pool, one address per line used). Everything is sized by the input, which is
 * bounded. */
#include "daemon/hash.h"
#include "daemon/hostsfile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOSTSFILE_ADDR_TEXT_MAX 64 /* longer address fields are malformed */
#define HOSTSFILE_MIN_BUCKETS 16u

struct hostsfile_addr {
	sa_family_t family;
	unsigned char bytes[16];   /* 4 used for AF_INET */
};

struct hostsfile_entry {
	uint32_t name_off;         /* in names */
	uint32_t hash;
	uint32_t next;             /* next entry in the chain, plus one; 0 ends it */
	uint32_t naddrs;
	uint32_t addr[HOSTSFILE_MAX_ADDRS]; /* indexes in addrs */
};

struct hostsfile {
	struct hostsfile_entry *ents;
	size_t nents, cap_ents;
	uint32_t *buckets;         /* first entry of each chain, plus one; 0 when empty */
	size_t nbuckets;           /* a power of two */
	struct hostsfile_addr *addrs;
	size_t naddrs, cap_addrs;
	char *names;               /* NUL-terminated names, back to back */
	size_t names_len, names_cap;
	struct hostsfile_stats st;
};

struct hostsfile_tok {
	const char *p;
	size_t n;
};

/* arr (capacity *cap elements of size elem) with room for need elements, doubled as needed; NULL
 * when memory is short (arr is then untouched). */
static void *hostsfile_reserve(void *arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return arr;
	size_t ncap = *cap ? *cap : 16;
	while (ncap < need)
		ncap *= 2;
	void *p = realloc(arr, ncap * elem);
	if (p)
		*cap = ncap;
	return p;
}

/* name lowercased into key (room for HOSTSFILE_NAME_MAX + 1); its length, 0 when it is too long. */
static size_t hostsfile_key(const char *name, size_t len, char *key)
{
	if (len > HOSTSFILE_NAME_MAX)
		return 0;
	hash_lower(name, len, key);
	return len;
}


static struct hostsfile_entry *hostsfile_find(const struct hostsfile *h, const char *key, size_t len,
					      uint32_t hash)
{
	uint32_t i = h->buckets[hash & (h->nbuckets - 1)];

	for (; i; i = h->ents[i - 1].next) {
		struct hostsfile_entry *e = &h->ents[i - 1];
		if (e->hash == hash && memcmp(h->names + e->name_off, key, len + 1) == 0)
			return e;
	}
	return NULL;
}

/* Rebuild the chains in twice as many buckets. */
static int hostsfile_rehash(struct hostsfile *h)
{
	size_t nb = h->nbuckets * 2;
	uint32_t *b = calloc(nb, sizeof *b);

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < h->nents; i++) {
		struct hostsfile_entry *e = &h->ents[i];
		e->next = b[e->hash & (nb - 1)];
		b[e->hash & (nb - 1)] = (uint32_t)(i + 1);
	}
	free(h->buckets);
	h->buckets = b;
	h->nbuckets = nb;
	return 0;
}

/* A new entry for key, with no address yet; NULL when memory is short. */
static struct hostsfile_entry *hostsfile_add_entry(struct hostsfile *h, const char *key, size_t len,
						   uint32_t hash)
{
	char *names = hostsfile_reserve(h->names, &h->names_cap, h->names_len + len + 1, 1);
	if (!names)
		return NULL;
	h->names = names;
	struct hostsfile_entry *ents = hostsfile_reserve(h->ents, &h->cap_ents, h->nents + 1,
							 sizeof *ents);
	if (!ents)
		return NULL;
	h->ents = ents;
	if (h->nents + 1 > h->nbuckets && hostsfile_rehash(h) < 0)
		return NULL;
	struct hostsfile_entry *e = &h->ents[h->nents++];
	memset(e, 0, sizeof *e);
	e->name_off = (uint32_t)h->names_len;
	e->hash = hash;
	memcpy(h->names + h->names_len, key, len + 1);
	h->names_len += len + 1;
	e->next = h->buckets[hash & (h->nbuckets - 1)];
	h->buckets[hash & (h->nbuckets - 1)] = (uint32_t)h->nents;
	h->st.names++;
	return e;
}

static bool hostsfile_same_addr(const struct hostsfile_addr *a, const struct hostsfile_addr *b)
{
	return a->family == b->family && memcmp(a->bytes, b->bytes, sizeof a->bytes) == 0;
}

/* Give name the address addrs[ai], unless it has it already or has no room left. */
static int hostsfile_add_name(struct hostsfile *h, const struct hostsfile_tok *name, uint32_t ai)
{
	char key[HOSTSFILE_NAME_MAX + 1];
	size_t len = hostsfile_key(name->p, name->n, key);
	uint32_t hash = hash_bytes(key, len);
	struct hostsfile_entry *e = hostsfile_find(h, key, len, hash);

	if (!e && !(e = hostsfile_add_entry(h, key, len, hash)))
		return -ENOMEM;
	for (uint32_t i = 0; i < e->naddrs; i++)
		if (hostsfile_same_addr(&h->addrs[e->addr[i]], &h->addrs[ai]))
			return 0;
	if (e->naddrs == HOSTSFILE_MAX_ADDRS) {
		h->st.dropped++;
		return 0;
	}
	e->addr[e->naddrs++] = ai;
	h->st.addresses++;
	return 0;
}

static bool hostsfile_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Split the line (its comment cut off) into up to max fields; returns how many there are, max + 1
 * when there are more. */
static size_t hostsfile_split(const char *p, size_t n, struct hostsfile_tok *toks, size_t max)
{
	const char *hash = memchr(p, '#', n);
	const char *end = hash ? hash : p + n;
	size_t count = 0;

	while (p < end) {
		while (p < end && hostsfile_space(*p))
			p++;
		if (p == end)
			break;
		if (count == max)
			return max + 1;
		toks[count].p = p;
		while (p < end && !hostsfile_space(*p))
			p++;
		toks[count].n = (size_t)(p - toks[count].p);
		count++;
	}
	return count;
}

enum hostsfile_addr_kind { HA_OK, HA_BAD, HA_SCOPED };

/* Parse the address field into a. */
static enum hostsfile_addr_kind hostsfile_addr(const struct hostsfile_tok *t, struct hostsfile_addr *a)
{
	char buf[HOSTSFILE_ADDR_TEXT_MAX];

	if (t->n >= sizeof buf || memchr(t->p, '\0', t->n))
		return HA_BAD;
	memcpy(buf, t->p, t->n);
	buf[t->n] = '\0';
	char *zone = strchr(buf, '%');
	if (zone)
		*zone = '\0';
	memset(a, 0, sizeof *a);
	a->family = strchr(buf, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(a->family, buf, a->bytes) != 1)
		return HA_BAD;
	if (zone)
		return a->family == AF_INET6 && zone[1] ? HA_SCOPED : HA_BAD;
	return HA_OK;
}

static bool hostsfile_name_ok(const struct hostsfile_tok *t)
{
	if (t->n > HOSTSFILE_NAME_MAX)
		return false;
	for (size_t i = 0; i < t->n; i++) {
		unsigned char ch = (unsigned char)t->p[i];
		if (ch < 0x21 || ch == 0x7f)
			return false;
	}
	return true;
}

static void hostsfile_malformed(struct hostsfile *h, uint32_t lineno)
{
	h->st.malformed++;
	h->st.skipped++;
	if (!h->st.first_malformed)
		h->st.first_malformed = lineno;
}

/* One line, without its '\n'. Returns 0 (used, blank or skipped) or -ENOMEM. */
static int hostsfile_line(struct hostsfile *h, const char *p, size_t n, uint32_t lineno)
{
	struct hostsfile_tok toks[HOSTSFILE_MAX_NAMES_PER_LINE + 1];
	size_t count = hostsfile_split(p, n, toks, HOSTSFILE_MAX_NAMES_PER_LINE + 1);
	struct hostsfile_addr a;

	if (count == 0)
		return 0;
	enum hostsfile_addr_kind kind = hostsfile_addr(&toks[0], &a);
	if (kind == HA_SCOPED) {
		h->st.scoped++;
		h->st.skipped++;
		return 0;
	}
	bool ok = kind == HA_OK && count >= 2 && count <= HOSTSFILE_MAX_NAMES_PER_LINE + 1;
	for (size_t i = 1; ok && i < count; i++)
		ok = hostsfile_name_ok(&toks[i]);
	if (!ok) {
		hostsfile_malformed(h, lineno);
		return 0;
	}
	struct hostsfile_addr *addrs = hostsfile_reserve(h->addrs, &h->cap_addrs, h->naddrs + 1,
							 sizeof *addrs);
	if (!addrs)
		return -ENOMEM;
	h->addrs = addrs;
	uint32_t ai = (uint32_t)h->naddrs;
	h->addrs[h->naddrs++] = a;
	for (size_t i = 1; i < count; i++)
		if (hostsfile_add_name(h, &toks[i], ai) < 0)
			return -ENOMEM;
	return 0;
}

static size_t hostsfile_count_lines(const char *text, size_t len)
{
	size_t lines = 0;
	const char *p = text, *end = text + len;
	const char *nl;

	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		lines++;
		p = nl + 1;
	}
	return lines + (p < end);
}

/* rc, with err saying "hosts file <what>: <n> <unit>, limit <limit>". */
static int hostsfile_fail(int rc, char *err, size_t errlen, const char *what, size_t n,
			  const char *unit, size_t limit)
{
	if (errlen)
		snprintf(err, errlen, "hosts file %s: %zu %s, limit %zu", what, n, unit, limit);
	return rc;
}

static struct hostsfile *hostsfile_new(void)
{
	struct hostsfile *h = calloc(1, sizeof *h);

	if (!h)
		return NULL;
	h->nbuckets = HOSTSFILE_MIN_BUCKETS;
	h->buckets = calloc(h->nbuckets, sizeof *h->buckets);
	if (!h->buckets) {
		free(h);
		return NULL;
	}
	return h;
}

/* Every line of text into h. Returns 0 or -ENOMEM. */
static int hostsfile_lines(struct hostsfile *h, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	uint32_t lineno = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl : end;
		if (hostsfile_line(h, p, (size_t)(stop - p), ++lineno) < 0)
			return -ENOMEM;
		p = nl ? nl + 1 : end;
	}
	return 0;
}

int hostsfile_parse(struct hostsfile **out, const char *text, size_t len, char *err, size_t errlen)
{
	*out = NULL;
	if (len > HOSTSFILE_MAX_BYTES)
		return hostsfile_fail(-EFBIG, err, errlen, "too large", len, "bytes",
				      HOSTSFILE_MAX_BYTES);
	size_t lines = len ? hostsfile_count_lines(text, len) : 0;
	if (lines > HOSTSFILE_MAX_LINES)
		return hostsfile_fail(-E2BIG, err, errlen, "too long", lines, "lines",
				      HOSTSFILE_MAX_LINES);
	struct hostsfile *h = hostsfile_new();
	if (!h || (len && hostsfile_lines(h, text, len) < 0)) {
		hostsfile_free(h);
		return hostsfile_fail(-ENOMEM, err, errlen, "out of memory", len, "bytes",
				      HOSTSFILE_MAX_BYTES);
	}
	*out = h;
	return 0;
}

void hostsfile_free(struct hostsfile *h)
{
	if (!h)
		return;
	free(h->ents);
	free(h->buckets);
	free(h->addrs);
	free(h->names);
	free(h);
}

static void hostsfile_sockaddr(const struct hostsfile_addr *a, union sockaddr_any *out)
{
	memset(out, 0, sizeof *out);
	if (a->family == AF_INET) {
		out->in4.sin_family = AF_INET;
		memcpy(&out->in4.sin_addr, a->bytes, 4);
	} else {
		out->in6.sin6_family = AF_INET6;
		memcpy(&out->in6.sin6_addr, a->bytes, 16);
	}
}

int hostsfile_lookup(const struct hostsfile *h, const char *name, int family, union sockaddr_any *out,
		     unsigned max)
{
	char key[HOSTSFILE_NAME_MAX + 1];

	if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
		return -EINVAL;
	size_t len = name ? strnlen(name, HOSTSFILE_NAME_MAX + 1) : 0;
	if (!h || len == 0 || !hostsfile_key(name, len, key))
		return 0;
	const struct hostsfile_entry *e = hostsfile_find(h, key, len, hash_bytes(key, len));
	unsigned n = 0;
	for (uint32_t i = 0; e && i < e->naddrs && n < max; i++) {
		const struct hostsfile_addr *a = &h->addrs[e->addr[i]];
		if (family == AF_UNSPEC || family == a->family)
			hostsfile_sockaddr(a, &out[n++]);
	}
	return (int)n;
}

struct hostsfile_stats hostsfile_stats(const struct hostsfile *h)
{
	struct hostsfile_stats none = { 0 };

	return h ? h->st : none;
}

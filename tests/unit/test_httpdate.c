/* test_httpdate.c - unit tests for daemon/httpdate.c: the RFC 9110 example forms, leap years, invalid
 * fields, trailing garbage, whitespace, epoch boundaries, two-digit years (fixed pivot and the 50-year
 * rule), ~10,000 seeded random dates per format checked against glibc timegm/strftime, mutations
 * under the sanitizers, and Retry-After values. */
#include "daemon/httpdate.h"
#include "tests/unit/test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RFC_T 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */

/* ---- fixed dates ---- */

struct date_case {
	const char *in;
	int64_t want; /* -1: rejected */
};

static const struct date_case date_cases[] = {
	/* RFC 9110 5.6.7's three forms */
	{"Sun, 06 Nov 1994 08:49:37 GMT", RFC_T},
	{"Sunday, 06-Nov-94 08:49:37 GMT", RFC_T},
	{"Sun Nov  6 08:49:37 1994", RFC_T},
	{"Sun Nov 06 08:49:37 1994", RFC_T},
	{"Wed Nov 16 08:49:37 1994", RFC_T + 10 * 86400},
	/* case, whitespace around */
	{"sun, 06 nov 1994 08:49:37 gmt", RFC_T},
	{"SUNDAY, 06-NOV-94 08:49:37 GMT", RFC_T},
	{" \tSun, 06 Nov 1994 08:49:37 GMT\t ", RFC_T},
	{"  Sun Nov  6 08:49:37 1994  ", RFC_T},
	{"\rSun, 06 Nov 1994 08:49:37 GMT", -1},
	{"Sun, 06 Nov 1994 08:49:37 GMT\n", -1},
	/* the day name is not checked against the date */
	{"Mon, 06 Nov 1994 08:49:37 GMT", RFC_T},
	/* leap years */
	{"Tue, 29 Feb 2000 00:00:00 GMT", 951782400},
	{"Thu, 29 Feb 2024 12:00:00 GMT", 1709208000},
	{"Thu, 01 Mar 2024 00:00:00 GMT", 1709251200},
	{"Wed, 28 Feb 2024 23:59:59 GMT", 1709164799},
	{"Thu, 29 Feb 2023 00:00:00 GMT", -1},
	{"Mon, 29 Feb 2100 00:00:00 GMT", -1},
	{"Sun, 28 Feb 2100 00:00:00 GMT", 4107456000},
	{"Tue, 29 Feb 2400 00:00:00 GMT", 13574563200},
	{"Thu, 30 Feb 2024 00:00:00 GMT", -1},
	{"Thursday, 29-Feb-24 12:00:00 GMT", 1709208000},
	{"Thu Feb 29 12:00:00 2024", 1709208000},
	{"Wed Feb 29 12:00:00 2023", -1},
	/* invalid days */
	{"Sun, 00 Nov 1994 08:49:37 GMT", -1},
	{"Sun, 31 Nov 1994 08:49:37 GMT", -1},
	{"Sun, 32 Jan 1994 08:49:37 GMT", -1},
	{"Sun, 31 Dec 1994 08:49:37 GMT", 788863777},
	{"Sun, 6 Nov 1994 08:49:37 GMT", -1},
	{"Sun, 006 Nov 1994 08:49:37 GMT", -1},
	{"Sun Nov 6 08:49:37 1994", -1},
	{"Sun Nov   6 08:49:37 1994", -1},
	{"Sun Nov  0 08:49:37 1994", -1},
	{"Sunday, 6-Nov-94 08:49:37 GMT", -1},
	/* invalid months */
	{"Sun, 06 Foo 1994 08:49:37 GMT", -1},
	{"Sun, 06 November 1994 08:49:37 GMT", -1},
	{"Sun, 06 11 1994 08:49:37 GMT", -1},
	{"Sun, 06 No 1994 08:49:37 GMT", -1},
	{"Sun Novx  6 08:49:37 1994", -1},
	/* invalid times */
	{"Sun, 06 Nov 1994 24:00:00 GMT", -1},
	{"Sun, 06 Nov 1994 23:60:00 GMT", -1},
	{"Sun, 06 Nov 1994 23:59:61 GMT", -1},
	{"Sun, 06 Nov 1994 23:59:60 GMT", 784166400}, /* leap second: the next day's 00:00:00 */
	{"Sun, 06 Nov 1994 8:49:37 GMT", -1},
	{"Sun, 06 Nov 1994 08:49 GMT", -1},
	{"Sun, 06 Nov 1994 08:49:37.5 GMT", -1},
	{"Sun, 06 Nov 1994 08-49-37 GMT", -1},
	{"Sun, 06 Nov 1994 0x:49:37 GMT", -1},
	{"Sun Nov  6 08:49:3 1994", -1},
	/* invalid years */
	{"Sun, 06 Nov 94 08:49:37 GMT", -1},
	{"Sun, 06 Nov 01994 08:49:37 GMT", -1},
	{"Sun, 06 Nov +994 08:49:37 GMT", -1},
	{"Sunday, 06-Nov-1994 08:49:37 GMT", -1},
	{"Sun Nov  6 08:49:37 94", -1},
	/* zone and names */
	{"Sun, 06 Nov 1994 08:49:37", -1},
	{"Sun, 06 Nov 1994 08:49:37 UTC", -1},
	{"Sun, 06 Nov 1994 08:49:37 +0000", -1},
	{"Sun, 06 Nov 1994 08:49:37 GM", -1},
	{"Sun Nov  6 08:49:37 1994 GMT", -1},
	{"Sunday, 06 Nov 1994 08:49:37 GMT", -1},
	{"Sun, 06-Nov-94 08:49:37 GMT", -1},
	{"Sunday Nov  6 08:49:37 1994", -1},
	{"Sund, 06 Nov 1994 08:49:37 GMT", -1},
	{"Xyz, 06 Nov 1994 08:49:37 GMT", -1},
	{"Sun,06 Nov 1994 08:49:37 GMT", -1},
	{"Sun,  06 Nov 1994 08:49:37 GMT", -1},
	{"Sun, 06  Nov 1994 08:49:37 GMT", -1},
	{"Sun, 06 Nov 1994  08:49:37 GMT", -1},
	{"Sun, 06 Nov 1994 08:49:37  GMT", -1},
	{"Sun, 06\tNov 1994 08:49:37 GMT", -1},
	/* trailing and leading garbage */
	{"Sun, 06 Nov 1994 08:49:37 GMTx", -1},
	{"Sun, 06 Nov 1994 08:49:37 GMT x", -1},
	{"Sun, 06 Nov 1994 08:49:37 GMT,", -1},
	{"Sun Nov  6 08:49:37 1994x", -1},
	{"Sun Nov  6 08:49:37 19945", -1},
	{"xSun, 06 Nov 1994 08:49:37 GMT", -1},
	{", 06 Nov 1994 08:49:37 GMT", -1},
	{"", -1},
	{" ", -1},
	{"Sun", -1},
	{"Sun,", -1},
	/* epoch boundaries and the range */
	{"Thu, 01 Jan 1970 00:00:00 GMT", 0},
	{"Thu, 01 Jan 1970 00:00:01 GMT", 1},
	{"Wed, 31 Dec 1969 23:59:59 GMT", -1},
	{"Mon, 01 Jan 0001 00:00:00 GMT", -1},
	{"Thursday, 01-Jan-70 00:00:00 GMT", 0},
	{"Thu Jan  1 00:00:00 1970", 0},
	{"Tue, 19 Jan 2038 03:14:07 GMT", 2147483647},
	{"Tue, 19 Jan 2038 03:14:08 GMT", 2147483648},
	{"Fri, 31 Dec 9999 23:59:59 GMT", 253402300799},
	{"Fri, 31 Dec 9999 23:59:60 GMT", 253402300800},
	/* two-digit years without a clock: 70-99 -> 19xx, 00-69 -> 20xx */
	{"Wednesday, 31-Dec-69 23:59:59 GMT", 3155759999},
	{"Saturday, 01-Jan-00 00:00:00 GMT", 946684800},
	{"Friday, 31-Dec-99 23:59:59 GMT", 946684799},
};

static void test_date_cases(void)
{
	for (size_t i = 0; i < sizeof date_cases / sizeof date_cases[0]; i++) {
		const struct date_case *c = &date_cases[i];
		int64_t t = httpdate_parse(c->in, strlen(c->in));
		CHECK(t == c->want, "<%s>: %lld, want %lld", c->in, (long long)t, (long long)c->want);
	}
}

static void test_raw(void)
{
	const char *s = "Sun, 06 Nov 1994 08:49:37 GMTxyz";
	CHECK(httpdate_parse(s, 29) == RFC_T, "len respected");
	CHECK(httpdate_parse(s, 28) == -1, "len cuts GMT");
	CHECK(httpdate_parse(NULL, 0) == -1, "NULL, 0");
	CHECK(httpdate_parse("Sun, 06 Nov 1994 08:49:37 GMT\0", 30) == -1, "NUL after");
	CHECK(httpdate_parse("Sun, 06 Nov\0 1994 08:49:37 GMT", 30) == -1, "NUL inside");
	CHECK(httpdate_parse_at(NULL, 0, 0) == -1, "NULL, 0 at");
}

/* ---- two-digit years with a clock: the 50-year rule ---- */

static int64_t ymd(int y, int m, int d)
{
	struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
	return (int64_t)timegm(&tm);
}

static void test_fifty_years(void)
{
	int64_t now = ymd(2026, 6, 1);
	const char *s76 = "Sunday, 01-Jan-76 00:00:00 GMT", *s77 = "Sunday, 01-Jan-77 00:00:00 GMT";
	CHECK(httpdate_parse_at(s76, strlen(s76), now) == ymd(2076, 1, 1), "76 at 2026: 2076");
	CHECK(httpdate_parse_at(s77, strlen(s77), now) == ymd(1977, 1, 1), "77 at 2026: 1977");
	CHECK(httpdate_parse(s76, strlen(s76)) == ymd(1976, 1, 1), "76 without clock: 1976");
	const char *s26 = "Friday, 01-Jan-26 00:00:00 GMT";
	CHECK(httpdate_parse_at(s26, strlen(s26), now) == ymd(2026, 1, 1), "26 at 2026");
	now = ymd(2099, 12, 31);
	CHECK(httpdate_parse_at(s26, strlen(s26), now) == ymd(2126, 1, 1), "26 at 2099: 2126");
	CHECK(httpdate_parse_at(s77, strlen(s77), now) == ymd(2077, 1, 1), "77 at 2099: 2077");
	/* a four-digit year ignores the clock */
	const char *imf = "Sun, 06 Nov 1994 08:49:37 GMT";
	CHECK(httpdate_parse_at(imf, strlen(imf), 0) == RFC_T, "IMF at 0");
	CHECK(httpdate_parse_at(imf, strlen(imf), INT64_MAX) == RFC_T, "IMF at INT64_MAX");
	CHECK(httpdate_parse_at(imf, strlen(imf), INT64_MIN) == RFC_T, "IMF at INT64_MIN");
	/* extreme clocks put two-digit years outside 0-9999 or before 1970: rejected, no overflow */
	CHECK(httpdate_parse_at(s26, strlen(s26), INT64_MAX) == -1, "RFC 850 at INT64_MAX");
	CHECK(httpdate_parse_at(s26, strlen(s26), INT64_MIN) == -1, "RFC 850 at INT64_MIN");
	CHECK(httpdate_parse_at(s26, strlen(s26), ymd(1900, 1, 1)) == -1, "RFC 850 at 1900: 1926");
}

/* ---- seeded random dates against timegm ---- */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int rand_in(int lo, int hi)
{
	return lo + (int)(rng() % (uint64_t)(hi - lo + 1));
}

/* A random valid time in year lo..hi; seconds 60 now and then. Returns timegm's value; tm is
 * normalised by timegm (weekday set) unless the second is 60, whose fields are kept for printing. */
static int64_t random_tm(int lo, int hi, struct tm *tm)
{
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	memset(tm, 0, sizeof *tm);
	tm->tm_year = rand_in(lo, hi) - 1900;
	tm->tm_mon = rand_in(0, 11);
	tm->tm_mday = rand_in(1, mdays[tm->tm_mon]);
	int y = tm->tm_year + 1900;
	if (tm->tm_mon == 1 && tm->tm_mday == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		tm->tm_mday = 28;
	tm->tm_hour = rand_in(0, 23);
	tm->tm_min = rand_in(0, 59);
	tm->tm_sec = rng() % 100 == 0 ? 60 : rand_in(0, 59);
	struct tm copy = *tm;
	int64_t t = (int64_t)timegm(&copy);
	tm->tm_wday = copy.tm_wday; /* the weekday of the day itself (a :60 does not change it) */
	return t;
}

/* Random letters in upper case: names match in any case. */
static void mangle_case(char *s)
{
	if (rng() % 4 != 0)
		return;
	for (; *s; s++)
		if (*s >= 'a' && *s <= 'z' && rng() % 2)
			*s = (char)(*s - 'a' + 'A');
}

static int fails_random;

static void check_random(const char *fmt, int lo, int hi, int64_t now, int use_now)
{
	struct tm tm;
	char buf[128];
	int64_t want = random_tm(lo, hi, &tm);
	size_t n = strftime(buf, sizeof buf, fmt, &tm);
	mangle_case(buf);
	int64_t got = use_now ? httpdate_parse_at(buf, n, now) : httpdate_parse(buf, n);
	if (got != want && fails_random++ < 10)
		fprintf(stderr, "random <%s> (now %lld): %lld, want %lld\n", buf, (long long)now,
			(long long)got, (long long)want);
}

static void test_random(void)
{
	const int per_format = 10000;
	for (int i = 0; i < per_format; i++) {
		check_random("%a, %d %b %Y %H:%M:%S GMT", 1970, 9999, 0, 0);
		check_random("%a %b %e %H:%M:%S %Y", 1970, 9999, 0, 0);
		check_random("%A, %d-%b-%y %H:%M:%S GMT", 1970, 2069, 0, 0);
		/* the 50-year rule: a clock in 1970-9000, a date within (now - 50, now + 50] */
		int64_t now = ymd(rand_in(1970, 9000), rand_in(1, 12), rand_in(1, 28));
		struct tm ntm;
		time_t nt = (time_t)now;
		gmtime_r(&nt, &ntm);
		int ny = ntm.tm_year + 1900;
		int lo = ny - 49 < 1970 ? 1970 : ny - 49;
		check_random("%A, %d-%b-%y %H:%M:%S GMT", lo, ny + 50, now, 1);
	}
	CHECK(fails_random == 0, "%d of %d random dates differ from timegm", fails_random,
	      4 * per_format);
}

/* ---- mutations: any byte anywhere must give -1 or a time, never a crash ---- */

/* Retry-After of a date agrees with httpdate_parse_at; of anything else it is -1 or a delay. */
static int retry_agrees(const char *s, size_t n, int64_t now)
{
	int64_t t = httpdate_parse_at(s, n, now), r = httpdate_retry_after_ms(s, n, now);
	if (r < -1 || r > HTTPDATE_RETRY_MAX_MS)
		return 0;
	if (t < 0)
		return 1;
	int64_t want = t <= now ? 0 : (t - now) * 1000;
	return r == (want > HTTPDATE_RETRY_MAX_MS ? HTTPDATE_RETRY_MAX_MS : want);
}

static void test_mutations(void)
{
	static const char *const seeds[] = {
		"Sun, 06 Nov 1994 08:49:37 GMT",
		"Sunday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 1994",
	};
	static const char subst[] = {'\0', ' ', '\t', ',', '-', ':', '0', '9', '6', 'x', 'G', 'S',
				     (char)0x80, (char)0xff};
	int bad = 0, runs = 0;
	for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
		size_t n = strlen(seeds[k]);
		for (size_t len = 0; len <= n; len++, runs++) {
			char *s = malloc(len ? len : 1); /* exactly len bytes */
			if (!s)
				abort();
			memcpy(s, seeds[k], len);
			bad += httpdate_parse(s, len) != (len == n ? RFC_T : -1);
			free(s);
		}
		for (size_t pos = 0; pos < n; pos++) {
			for (size_t j = 0; j < sizeof subst; j++, runs++) {
				char *s = malloc(n);
				if (!s)
					abort();
				memcpy(s, seeds[k], n);
				s[pos] = subst[j];
				bad += httpdate_parse(s, n) < -1;
				bad += !retry_agrees(s, n, RFC_T);
				free(s);
			}
		}
	}
	CHECK(bad == 0, "%d of %d prefixes/mutations misbehaved", bad, runs);
}

/* ---- Retry-After ---- */

struct retry_case {
	const char *in;
	int64_t now;
	int64_t want;
};

#define DAY_MS HTTPDATE_RETRY_MAX_MS

static const struct retry_case retry_cases[] = {
	{"120", 0, 120000},
	{"0", 0, 0},
	{" 5 ", 0, 5000},
	{"\t7\t", 0, 7000},
	{"007", 0, 7000},
	{"86399", 0, 86399000},
	{"86400", 0, DAY_MS},
	{"86401", 0, DAY_MS},
	{"4294967296", 0, DAY_MS},
	{"99999999999999999999999999999999999999", 0, DAY_MS},
	{"-1", 0, -1},
	{"+1", 0, -1},
	{"1.5", 0, -1},
	{"1e3", 0, -1},
	{"0x10", 0, -1},
	{"1 2", 0, -1},
	{"12abc", 0, -1},
	{"abc", 0, -1},
	{"", 0, -1},
	{"  ", 0, -1},
	{"\r\n5", 0, -1},
	{"Sun, 06 Nov 1994 08:49:37 GMT", RFC_T - 30, 30000},
	{"Sun, 06 Nov 1994 08:49:37 GMT", RFC_T - 1, 1000},
	{"Sun, 06 Nov 1994 08:49:37 GMT", RFC_T, 0},
	{"Sun, 06 Nov 1994 08:49:37 GMT", RFC_T + 1, 0},
	{"Sun, 06 Nov 1994 08:49:37 GMT", RFC_T + 1000000, 0},
	{"Sun, 06 Nov 1994 08:49:37 GMT", RFC_T - 86399, 86399000},
	{"Sun, 06 Nov 1994 08:49:37 GMT", RFC_T - 86400, DAY_MS},
	{"Sun, 06 Nov 1994 08:49:37 GMT", RFC_T - 86401, DAY_MS},
	{"Sun, 06 Nov 1994 08:49:37 GMT", 0, DAY_MS},
	{" Sun Nov  6 08:49:37 1994 ", RFC_T - 2, 2000},
	{"Sunday, 06-Nov-94 08:49:37 GMT", RFC_T - 3, 3000},
	{"Fri, 31 Dec 9999 23:59:59 GMT", INT64_MIN, DAY_MS},
	{"Fri, 31 Dec 9999 23:59:59 GMT", INT64_MAX, 0},
	{"Thu, 01 Jan 1970 00:00:00 GMT", 0, 0},
	{"Wed, 31 Dec 1969 23:59:59 GMT", 0, 0},         /* valid, in the past */
	{"Mon, 01 Jan 0001 00:00:00 GMT", RFC_T, 0},
	{"Wed, 28 Feb 1900 00:00:00 GMT", RFC_T, 0},
	{"Thu, 29 Feb 1900 00:00:00 GMT", RFC_T, -1},    /* 1900 is not a leap year */
	{"Sun, 06 Nov 1994 08:49:37 GMT x", RFC_T, -1},
	{"Sun, 06 Nov 1994 25:49:37 GMT", RFC_T, -1},
	{"Sunday, 06-Nov-94 08:49:37 GMT", INT64_MAX, -1}, /* no year near that clock */
};

static void test_retry_after(void)
{
	for (size_t i = 0; i < sizeof retry_cases / sizeof retry_cases[0]; i++) {
		const struct retry_case *c = &retry_cases[i];
		int64_t ms = httpdate_retry_after_ms(c->in, strlen(c->in), c->now);
		CHECK(ms == c->want, "<%s> at %lld: %lld, want %lld", c->in, (long long)c->now,
		      (long long)ms, (long long)c->want);
	}
	CHECK(httpdate_retry_after_ms(NULL, 0, 0) == -1, "NULL, 0");
	CHECK(httpdate_retry_after_ms("12", 1, 0) == 1000, "len respected");
	CHECK(httpdate_retry_after_ms("1\0", 2, 0) == -1, "NUL after digits");
	/* The RFC 850 year follows the clock: "94" read in 2040 is 1994, a past date; read in 2045
	 * it is 2094, 49 years ahead (only more than 50 years ahead means the past century). */
	const char *s = "Sunday, 06-Nov-94 08:49:37 GMT";
	CHECK(httpdate_retry_after_ms(s, strlen(s), ymd(2040, 1, 1)) == 0, "RFC 850 past in 2040");
	CHECK(httpdate_retry_after_ms(s, strlen(s), ymd(2045, 1, 1)) == DAY_MS,
	      "RFC 850 in 2045: 2094, future");
}

int main(void)
{
	test_date_cases();
	test_raw();
	test_fifty_years();
	test_random();
	test_mutations();
	test_retry_after();
	return test_report();
}

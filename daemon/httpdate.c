/* httpdate.c - parses the three HTTP-date formats with a small cursor, turns the civil date into days
 * since the epoch with Howard Hinnant's days_from_civil arithmetic (proleptic Gregorian, no timegm,
 * no locale), and derives Retry-After delays. Pure: no I/O, no allocation, no logging, no clock. */
#include "daemon/httpdate.h"

#include <assert.h>

#define DAY_S 86400
#define YEAR_MAX 9999

/* ---- cursor over the input ---- */

struct cur {
	const char *s;
	size_t i, n;
};

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int is_ows(int c)
{
	return c == ' ' || c == '\t';
}

/* Consumes the literal t (letters in any case). */
static int take(struct cur *c, const char *t)
{
	size_t k = 0;
	while (t[k] && c->i + k < c->n && lower((unsigned char)c->s[c->i + k]) == lower(t[k]))
		k++;
	if (t[k])
		return 0;
	c->i += k;
	return 1;
}

/* Consumes exactly count digits into *v. */
static int take_digits(struct cur *c, int count, int *v)
{
	*v = 0;
	for (int k = 0; k < count; k++, c->i++) {
		if (c->i >= c->n || !is_digit((unsigned char)c->s[c->i]))
			return 0;
		*v = *v * 10 + (c->s[c->i] - '0');
	}
	return 1;
}

static int letter_at(const struct cur *c)
{
	int l = c->i < c->n ? lower((unsigned char)c->s[c->i]) : 0;
	return l >= 'a' && l <= 'z';
}

/* Consumes one of names[0..count), matched whole (no letter follows); returns its index or -1. */
static int take_name(struct cur *c, const char *const *names, int count)
{
	for (int k = 0; k < count; k++) {
		struct cur t = *c;
		if (take(&t, names[k]) && !letter_at(&t)) {
			*c = t;
			return k;
		}
	}
	return -1;
}

static const char *const day_short[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const day_long[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
				       "Saturday", "Sunday"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* ---- calendar arithmetic ---- */

static int is_leap(int64_t y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int days_in_month(int64_t y, int m)
{
	static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* Days since 1970-01-01 of y-m-d (m 1-12), proleptic Gregorian. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The civil year holding day z (days since 1970-01-01). */
static int64_t year_of_days(int64_t z)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153; /* March = 0 */
	return yoe + era * 400 + (mp >= 10);
}

static int64_t year_of_time(int64_t t)
{
	int64_t days = t / DAY_S - (t % DAY_S < 0);
	return year_of_days(days);
}

/* RFC 9110 5.6.7: the year ending in yy within (now - 50, now + 50]. */
static int64_t century_for(int yy, int64_t now_year)
{
	int64_t low = now_year - 49;
	int64_t r = ((yy - low) % 100 + 100) % 100;
	return low + r;
}

/* ---- the three formats ---- */

struct fields {
	int64_t year;
	int two_digit_year; /* RFC 850: year holds 0-99 until century_for */
	int month, day, hour, min, sec;
};

/* "HH:MM:SS" */
static int take_time(struct cur *c, struct fields *f)
{
	return take_digits(c, 2, &f->hour) && take(c, ":") && take_digits(c, 2, &f->min) &&
	       take(c, ":") && take_digits(c, 2, &f->sec);
}

static int take_month(struct cur *c, struct fields *f)
{
	f->month = take_name(c, months, 12) + 1;
	return f->month > 0;
}

static int take_year4(struct cur *c, struct fields *f)
{
	int y;
	if (!take_digits(c, 4, &y))
		return 0;
	f->year = y;
	return 1;
}

/* IMF-fixdate after "Sun,": " 06 Nov 1994 08:49:37 GMT" */
static int take_imf(struct cur *c, struct fields *f)
{
	return take(c, " ") && take_digits(c, 2, &f->day) && take(c, " ") && take_month(c, f) &&
	       take(c, " ") && take_year4(c, f) && take(c, " ") && take_time(c, f) &&
	       take(c, " GMT");
}

/* RFC 850 after "Sunday,": " 06-Nov-94 08:49:37 GMT" */
static int take_rfc850(struct cur *c, struct fields *f)
{
	int yy;
	if (!(take(c, " ") && take_digits(c, 2, &f->day) && take(c, "-") && take_month(c, f) &&
	      take(c, "-") && take_digits(c, 2, &yy) && take(c, " ") && take_time(c, f) &&
	      take(c, " GMT")))
		return 0;
	f->year = yy;
	f->two_digit_year = 1;
	return 1;
}

/* asctime after "Sun": " Nov  6 08:49:37 1994" (day "06", "16" or " 6") */
static int take_asctime(struct cur *c, struct fields *f)
{
	if (!(take(c, " ") && take_month(c, f) && take(c, " ")))
		return 0;
	if (take(c, " ")) {
		if (!take_digits(c, 1, &f->day))
			return 0;
	} else if (!take_digits(c, 2, &f->day)) {
		return 0;
	}
	return take(c, " ") && take_time(c, f) && take(c, " ") && take_year4(c, f);
}

static int take_date(struct cur *c, struct fields *f)
{
	if (take_name(c, day_long, 7) >= 0)
		return take(c, ",") && take_rfc850(c, f);
	if (take_name(c, day_short, 7) < 0)
		return 0;
	if (take(c, ","))
		return take_imf(c, f);
	return take_asctime(c, f);
}

static int fields_valid(const struct fields *f)
{
	return f->year >= 0 && f->year <= YEAR_MAX && f->day >= 1 &&
	       f->day <= days_in_month(f->year, f->month) && f->hour <= 23 && f->min <= 59 &&
	       f->sec <= 60;
}

/* Parses s[0..len) into *t (any year 0-9999, so possibly negative); returns 0 or -1. */
static int parse_date(const char *s, size_t len, int64_t now_year, int64_t *t)
{
	struct cur c = {s, 0, len};
	struct fields f = {0};
	if (len == 0)
		return -1;
	while (c.i < c.n && is_ows((unsigned char)s[c.i]))
		c.i++;
	while (c.n > c.i && is_ows((unsigned char)s[c.n - 1]))
		c.n--;
	if (!take_date(&c, &f) || c.i != c.n)
		return -1;
	if (f.two_digit_year)
		f.year = century_for((int)f.year, now_year);
	if (!fields_valid(&f))
		return -1;
	*t = days_from_civil(f.year, f.month, f.day) * DAY_S + f.hour * 3600 + f.min * 60 + f.sec;
	return 0;
}

/* ---- public ---- */

int64_t httpdate_parse_at(const char *s, size_t len, int64_t now_s)
{
	assert(s || len == 0);
	int64_t t;
	if (parse_date(s, len, year_of_time(now_s), &t) != 0 || t < 0)
		return -1;
	return t;
}

int64_t httpdate_parse(const char *s, size_t len)
{
	assert(s || len == 0);
	int64_t t;
	if (parse_date(s, len, 2019, &t) != 0 || t < 0)
		return -1;
	return t;
}

/* delay-seconds: 1*DIGIT, saturating above a day. Returns seconds, or -1. */
static int64_t delay_seconds(const char *s, size_t len)
{
	int64_t v = 0;
	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
		if (v > DAY_S)
			v = DAY_S + 1;
	}
	return v;
}

int64_t httpdate_retry_after_ms(const char *value, size_t len, int64_t now_s)
{
	assert(value || len == 0);
	if (len == 0)
		return -1;
	size_t a = 0, b = len;
	while (a < b && is_ows((unsigned char)value[a]))
		a++;
	while (b > a && is_ows((unsigned char)value[b - 1]))
		b--;
	int64_t secs = delay_seconds(value + a, b - a), t;
	if (secs >= 0)
		return secs > DAY_S ? HTTPDATE_RETRY_MAX_MS : secs * 1000;
	if (parse_date(value + a, b - a, year_of_time(now_s), &t) != 0)
		return -1;
	if (t <= now_s)
		return 0;
	if (now_s < t - DAY_S)
		return HTTPDATE_RETRY_MAX_MS;
	return (t - now_s) * 1000;
}

/* httpdate.h - HTTP-date (RFC 9110 5.6.7) to seconds since the epoch, and Retry-After (RFC 9110
 * 10.2.3) to a delay in milliseconds. Pure: no I/O, no allocation, no logging, no locale, no clock
 * (the caller passes the current time). */
#ifndef FETCHD_HTTPDATE_H
#define FETCHD_HTTPDATE_H

#include <stddef.h>
#include <stdint.h>

#define HTTPDATE_RETRY_MAX_MS 86400000 /* one day: the largest delay httpdate_retry_after_ms gives */

/* An HTTP-date (RFC 9110 5.6.7: IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", obsolete RFC 850
 * "Sunday, 06-Nov-94 08:49:37 GMT", asctime "Sun Nov  6 08:49:37 1994") -> seconds since the epoch,
 * or -1. The grammar is followed exactly (single spaces, two-digit day, hour, minute and second,
 * four-digit years in IMF-fixdate and asctime), except: day names, month names and "GMT" match in
 * any case; spaces and tabs around the date are skipped. The day must exist in its month (February
 * 29 in leap years only); hour 00-23, minute 00-59, second 00-60 (60, a leap second, counts as the
 * next minute's 00, as timegm does). The day name must be one of the seven (three letters, or the
 * full name in RFC 850) but is not checked against the date. Dates before 1970 give -1.
 * Two-digit RFC 850 years: httpdate_parse, which has no clock, reads 70-99 as 1970-1999 and 00-69
 * as 2000-2069 (RFC 9110's 50-year rule as of 2019); httpdate_parse_at applies the rule at now_s
 * (the year within (now - 50, now + 50] with those two digits). */
int64_t httpdate_parse(const char *s, size_t len);
int64_t httpdate_parse_at(const char *s, size_t len, int64_t now_s);

/* A Retry-After value (delay-seconds or HTTP-date) -> the delay in milliseconds from now_s (seconds
 * since the epoch, any value); a date at or before now_s (or before 1970) gives 0; -1 when the value
 * is neither. Spaces and tabs around the value are skipped. delay-seconds is 1*DIGIT (no sign, no
 * fraction, any number of digits). Delays larger than a day, from either form, are clamped to
 * HTTPDATE_RETRY_MAX_MS (the caller caps further). */
int64_t httpdate_retry_after_ms(const char *value, size_t len, int64_t now_s);

#endif

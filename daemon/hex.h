/* hex.h - the value of one hexadecimal digit, for the parsers (percent-encoding, chunk sizes, JSON
 * escapes), and bytes as lowercase hex (digests). Header-only, pure. */
#ifndef FETCHD_HEX_H
#define FETCHD_HEX_H

#include <stddef.h>

/* 0..15, or -1 when c is not a hex digit. */
static inline int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* p[0..n) as 2n lowercase hex digits and a NUL in out. */
static inline void hex_encode(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = 0;
}

#endif

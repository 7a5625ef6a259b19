/* hash.h - the one string hash of the daemon's tables (FNV-1a, 64-bit, with a final avalanche so the
 * low bits, the bucket index, depend on every byte), and the lowercasing copy its name keys use. */
#ifndef FETCHD_HASH_H
#define FETCHD_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t hash_bytes(const void *p, size_t len)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ s[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (uint32_t)h;
}

static inline uint32_t hash_str(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return hash_bytes(s, n);
}

/* Copy name[0..len) into key lowercased (ASCII) and NUL-terminate it; key holds len + 1 bytes. */
static inline void hash_lower(const char *name, size_t len, char *key)
{
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];
		key[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
	}
	key[len] = '\0';
}

#endif

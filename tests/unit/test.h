/* test.h - the smallest test harness: CHECK counts, failures print where and why, and the binary ends
 * with "N passed, N failed" and exits 1 when anything failed. */
#ifndef FETCHD_TEST_H
#define FETCHD_TEST_H

#include <stdint.h>
#include <stdio.h>

static int test_passed, test_failed;

#define CHECK(cond, ...)                                                                  \
	do {                                                                              \
		if (cond) {                                                               \
			test_passed++;                                                    \
		} else {                                                                  \
			test_failed++;                                                    \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);   \
			fprintf(stderr, __VA_ARGS__);                                     \
			fputc('\n', stderr);                                              \
		}                                                                         \
	} while (0)

/* xorshift64*: reproducible pseudo-random numbers for table-driven and random tests. */
static inline uint64_t test_rng(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static inline int test_report(void)
{
	printf("%d passed, %d failed\n", test_passed, test_failed);
	return test_failed ? 1 : 0;
}

#endif

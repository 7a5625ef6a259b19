/* fuzz_robots.c - libFuzzer harness for the robots.txt parser and matcher (daemon/robots.h).
 *
 * Input: byte 0 picks the product token; the rest is the robots.txt body. The body is parsed, and each
 * line of it (up to 64) is also tried as a request target ("/" prepended when needed). Invariants:
 * "/robots.txt" is always allowed; the crawl delay is -1 or 0..ROBOTS_MAX_CRAWL_DELAY_MS; the memory held
 * stays within the documented bound; parsing twice gives the same answers; a target one byte longer
 * than the URL limit is still answered. */
#include "daemon/robots.h"
#include "tests/fuzz/check.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const tokens[] = { "fetchd", "FetchBot", "examplebot", "a", "x-y_z" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const char *token = tokens[data[0] % (sizeof(tokens) / sizeof(tokens[0]))];
	const char *txt = (const char *)data + 1;
	size_t len = size - 1;
	struct robots *r = robots_parse(txt, len, token), *r2 = robots_parse(txt, len, token);
	if (!r || !r2) { /* out of memory only */
		robots_free(r);
		robots_free(r2);
		return 0;
	}
	size_t parsed = len < ROBOTS_MAX_BYTES ? len : ROBOTS_MAX_BYTES;
	CHECK(robots_memory_bytes(r) <= 2 * parsed + 16 * robots_rule_count(r) + 64 + 4096,
	      "%zu bytes held for %zu input bytes and %zu rules", robots_memory_bytes(r), parsed, robots_rule_count(r));
	int64_t cd = robots_crawl_delay_ms(r);
	CHECK(cd == -1 || (cd >= 0 && cd <= ROBOTS_MAX_CRAWL_DELAY_MS), "crawl delay %lld", (long long)cd);
	CHECK(cd == robots_crawl_delay_ms(r2), "crawl delay not deterministic");
	CHECK(robots_allowed(r, "/robots.txt", 11), "/robots.txt disallowed");
	static char target[ROBOTS_MAX_TARGET_BYTES + 2];
	size_t off = 0;
	for (int i = 0; i < 64 && off < len; i++) {
		const char *nl = memchr(txt + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (txt + off)) : len - off;
		size_t t = 0;
		target[t++] = '/';
		for (size_t k = 0; k < n && t < sizeof(target); k++)
			target[t++] = txt[off + k];
		CHECK(robots_allowed(r, target, t) == robots_allowed(r2, target, t), "matching not deterministic");
		off += n + 1;
	}
	robots_free(r);
	robots_free(r2);
	return 0;
}

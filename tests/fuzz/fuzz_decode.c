/* fuzz_decode.c - libFuzzer harness for the Content-Encoding decoder (daemon/decode.h).
 *
 * Input: byte 0 picks the coding (gzip or deflate) and the output buffer size; bytes 1-2 a split point;
 * the rest is the body as it arrives. The body is decoded whole, and again in two pieces at the split
 * point, with a sink that stops after 1 MiB: both runs must agree on the result, the byte count and a
 * checksum of the output, a sink stop must come within out_cap bytes of the limit, and errors stay
 * sticky. Anything goes for the input: corrupt data must be an error, never a crash. */
#include "daemon/decode.h"
#include "tests/fuzz/check.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LIMIT (1u << 20)

struct sink {
	uint64_t n, sum;
};

static int sink_fn(void *arg, const uint8_t *p, size_t n)
{
	struct sink *s = arg;
	for (size_t i = 0; i < n; i++)
		s->sum = s->sum * 31 + p[i];
	s->n += n;
	return s->n > LIMIT;
}

static int run(int kind, const uint8_t *in, size_t len, size_t split, size_t out_cap, struct sink *s)
{
	static uint8_t out[16384];
	struct decoder d;
	memset(s, 0, sizeof(*s));
	if (decode_init(&d, (enum decode_kind)kind) != DECODE_OK)
		return 1;
	int rc = decode_feed(&d, in, split, out, out_cap, sink_fn, s);
	if (rc == DECODE_OK)
		rc = decode_feed(&d, in + split, len - split, out, out_cap, sink_fn, s);
	if (rc == DECODE_OK)
		rc = decode_finish(&d);
	else
		CHECK(decode_feed(&d, in, len, out, out_cap, sink_fn, s) == rc, "an error %d is not sticky", rc);
	if (rc == DECODE_E_SINK)
		CHECK(s->n > LIMIT && s->n <= LIMIT + out_cap, "sink stopped at %llu", (unsigned long long)s->n);
	decode_free(&d);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t caps[] = { 1, 7, 512, 16384 };
	if (size < 3)
		return 0;
	int kind = data[0] & 1 ? DECODE_GZIP : DECODE_DEFLATE;
	size_t out_cap = caps[(data[0] >> 1) & 3];
	const uint8_t *in = data + 3;
	size_t len = size - 3, split = ((size_t)data[1] << 8 | data[2]) % (len + 1);
	struct sink a, b;
	int ra = run(kind, in, len, 0, out_cap, &a);
	int rb = run(kind, in, len, split, out_cap, &b);
	if (ra == 1 || rb == 1)
		return 0; /* out of memory */
	CHECK(ra == rb, "whole gives %d, split at %zu gives %d", ra, split, rb);
	if (ra == DECODE_OK)
		CHECK(a.n == b.n && a.sum == b.sum, "output differs: %llu vs %llu bytes", (unsigned long long)a.n,
		      (unsigned long long)b.n);
	return 0;
}

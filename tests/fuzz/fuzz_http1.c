/* fuzz_http1.c - libFuzzer harness for the HTTP/1.1 response parser (daemon/http1.h).
 *
 * Input: 4 control bytes, then the bytes the server sends.
 *   byte 0: bit 0 = the request was HEAD; bits 1-2 pick max_header_bytes:
 *           0 = 65536 (the default), 1 = byte 1 + 1 (1..256), 2 = (byte 1 + 1) * 64 (64..16384), 3 = 4096
 *   byte 1: the max_header_bytes parameter above
 *   bytes 2-3: a split point (big-endian, taken modulo the stream length + 1)
 * The stream is parsed whole, split at the chosen point, split at a few points drawn from it, and byte
 * by byte when shorter than 512 bytes; every run must give the same outcome: statuses, framing,
 * keep_alive, content_length, content_type, body bytes, error or completion, and http1_finish's result.
 * Every call is checked against the parser's contract (see tests/fuzz/http1_run.h). */
#include "daemon/http1.h"
#include "tests/fuzz/http1_run.h"

#include <stddef.h>
#include <stdint.h>

#define BYTEWISE_MAX 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t fixed_max[4] = { 65536, 0, 0, 4096 };
	struct run_outcome *whole, *other;
	size_t cuts[8], ncuts, len;
	const uint8_t *raw;
	uint64_t max_hdr, seed;
	bool head;

	if (size < 4)
		return 0;
	head = data[0] & 1;
	switch ((data[0] >> 1) & 3) {
	case 1:
		max_hdr = (uint64_t)data[1] + 1;
		break;
	case 2:
		max_hdr = ((uint64_t)data[1] + 1) * 64;
		break;
	default:
		max_hdr = fixed_max[(data[0] >> 1) & 3];
		break;
	}
	raw = data + 4;
	len = size - 4;
	whole = malloc(sizeof(*whole));
	other = malloc(sizeof(*other));
	CHECK(whole && other, "out of memory");

	run_whole(raw, len, head, max_hdr, whole);

	cuts[0] = (((size_t)data[2] << 8) | data[3]) % (len + 1);
	run_split(raw, len, head, max_hdr, cuts, 1, other);
	run_compare(whole, other, "split at the chosen point");
	run_free(other);

	seed = run_hash(data, size);
	ncuts = run_random_cuts(&seed, len, cuts, sizeof(cuts) / sizeof(cuts[0]));
	run_split(raw, len, head, max_hdr, cuts, ncuts, other);
	run_compare(whole, other, "split at drawn points");
	run_free(other);

	if (len < BYTEWISE_MAX) {
		run_bytewise(raw, len, head, max_hdr, other);
		run_compare(whole, other, "byte by byte");
		run_free(other);
	}
	run_free(whole);
	free(whole);
	free(other);
	return 0;
}

/* fuzz_chunked.c - libFuzzer harness for the chunked decoder of the HTTP/1.1 parser (daemon/http1.h).
 *
 * The input follows a fixed "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n": it is the chunked
 * body (and whatever comes after it). The stream is parsed whole, at split points drawn from the input,
 * and byte by byte when short; all runs must agree (tests/fuzz/http1_run.h checks the parse contract
 * on every call). When the response completes, a plain reference decoder reads the same chunk framing:
 * the decoded length must equal the sum of the chunk sizes, the bytes must match, and the response must
 * end where the framing ends.
 * Second check: the input bytes are encoded as a valid chunked body (chunk sizes, hex case, leading zeros,
 * extensions and trailers drawn from the input) and the parser must decode exactly the input again. */
#include "daemon/http1.h"
#include "daemon/hex.h"
#include "tests/fuzz/http1_run.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PREFIX "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
#define PREFIX_LEN (sizeof(PREFIX) - 1)
#define MAX_HDR 65536
#define BYTEWISE_MAX 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A deliberately simple reading of chunked framing that a strict parser already accepted: hex size,
 * anything up to LF (extensions), data, CRLF; after the 0 chunk, trailer lines up to an empty line.
 * Returns 0 with the decoded bytes in body[0..*sum) and the offset after the framing in *end. */
static int ref_chunked(const uint8_t *raw, size_t len, size_t pos, uint8_t *body, uint64_t *sum, size_t *end)
{
	uint64_t total = 0;
	const uint8_t *nl;

	for (;;) {
		uint64_t chunk = 0;
		size_t digits = 0;

		while (pos < len && hex_value(raw[pos]) >= 0) {
			if (chunk >> 56)
				return -1;
			chunk = chunk * 16 + (uint64_t)hex_value(raw[pos++]);
			digits++;
		}
		if (digits == 0 || !(nl = memchr(raw + pos, '\n', len - pos)) || nl == raw + pos || nl[-1] != '\r')
			return -1;
		pos = (size_t)(nl - raw) + 1;
		if (chunk == 0)
			break;
		if (chunk > len - pos || len - pos - chunk < 2)
			return -1;
		memcpy(body + total, raw + pos, (size_t)chunk);
		total += chunk;
		pos += (size_t)chunk;
		if (raw[pos] != '\r' || raw[pos + 1] != '\n')
			return -1;
		pos += 2;
	}
	for (;;) {
		if (len - pos >= 2 && raw[pos] == '\r' && raw[pos + 1] == '\n') {
			pos += 2;
			break;
		}
		if (!(nl = memchr(raw + pos, '\n', len - pos)))
			return -1;
		pos = (size_t)(nl - raw) + 1;
	}
	*sum = total;
	*end = pos;
	return 0;
}

/* Parse raw whole, split and (short ones) byte by byte; all must agree. Returns the whole outcome. */
static void parse_all_ways(const uint8_t *raw, size_t len, uint64_t seed, struct run_outcome *whole,
			   struct run_outcome *other)
{
	size_t cuts[8], ncuts;

	run_whole(raw, len, false, MAX_HDR, whole);
	for (int round = 0; round < 2; round++) {
		ncuts = run_random_cuts(&seed, len, cuts, sizeof(cuts) / sizeof(cuts[0]));
		run_split(raw, len, false, MAX_HDR, cuts, ncuts, other);
		run_compare(whole, other, "split at drawn points");
		run_free(other);
	}
	if (len < BYTEWISE_MAX) {
		run_bytewise(raw, len, false, MAX_HDR, other);
		run_compare(whole, other, "byte by byte");
		run_free(other);
	}
}

static void check_input_as_body(const uint8_t *data, size_t size, uint64_t seed, struct run_outcome *whole,
				struct run_outcome *other)
{
	size_t len = PREFIX_LEN + size;
	uint8_t *raw = malloc(len ? len : 1), *ref = malloc(size ? size : 1);
	uint64_t sum;
	size_t end;

	CHECK(raw && ref, "out of memory");
	memcpy(raw, PREFIX, PREFIX_LEN);
	memcpy(raw + PREFIX_LEN, data, size);
	parse_all_ways(raw, len, seed, whole, other);
	CHECK(whole->r[0].headers, "the fixed header section did not parse (error %d)", whole->err);
	CHECK(whole->r[0].framing == HTTP1_FRAMING_CHUNKED && whole->r[0].keep_alive,
		  "framing %d keep_alive %d for the fixed header section", whole->r[0].framing,
		  whole->r[0].keep_alive);
	CHECK(whole->r[0].header_bytes_at_headers == PREFIX_LEN, "header_bytes %llu after the fixed header",
		  (unsigned long long)whole->r[0].header_bytes_at_headers);
	if (whole->r[0].done) {
		CHECK(ref_chunked(raw, len, PREFIX_LEN, ref, &sum, &end) == 0,
			  "the parser completed a chunked body the reference reader cannot read");
		CHECK(sum == whole->r[0].body_len, "decoded %llu bytes, chunk sizes add up to %llu",
			  (unsigned long long)whole->r[0].body_len, (unsigned long long)sum);
		CHECK(memcmp(ref, whole->body, (size_t)sum) == 0, "decoded bytes differ from the chunk data");
		CHECK(end == whole->r[0].end_at, "response ends at %zu, its framing at %zu", whole->r[0].end_at,
			  end);
		CHECK(whole->r[0].header_bytes_at_end <= PREFIX_LEN + (end - PREFIX_LEN - sum),
			  "header_bytes %llu counts more than the non-body bytes",
			  (unsigned long long)whole->r[0].header_bytes_at_end);
	}
	run_free(whole);
	free(raw);
	free(ref);
}

/* Append printf output to out (room checked by the caller's generous allocation). */
static size_t put(uint8_t *out, size_t at, const char *s, size_t n)
{
	memcpy(out + at, s, n);
	return at + n;
}

static void check_encoded_input(const uint8_t *data, size_t size, uint64_t seed, struct run_outcome *whole,
				struct run_outcome *other)
{
	static const char *const exts[] = { "", ";a", ";a=b", " ; x", ";q=\"x y\\\" ;z\"", ";a=b;c=d",
					    "\t;n\t=\tv" }; /* no BWS after a value (RFC 9112 7.1.1) */
	/* per chunk: at most 8 digits with zeros + extension + 2 CRLF; trailers at the end */
	size_t cap = PREFIX_LEN + size + (size + 1) * 64 + 128, at = 0, off = 0;
	uint8_t *raw = malloc(cap);
	char line[64];

	CHECK(raw != NULL, "out of memory");
	at = put(raw, at, PREFIX, PREFIX_LEN);
	while (off < size) {
		uint64_t r = run_rand(&seed);
		size_t chunk = (r & 3) == 0 ? 1 + (size_t)((r >> 8) % 4096) : 1 + (size_t)((r >> 8) % 32);
		const char *fmt = (r >> 40) & 1 ? "%0*zX" : "%0*zx";
		int n;

		if (chunk > size - off)
			chunk = size - off;
		n = snprintf(line, sizeof(line), fmt, (int)((r >> 41) % 9), chunk);
		at = put(raw, at, line, (size_t)n);
		at = put(raw, at, exts[(r >> 44) % 7], strlen(exts[(r >> 44) % 7]));
		at = put(raw, at, "\r\n", 2);
		at = put(raw, at, (const char *)data + off, chunk);
		at = put(raw, at, "\r\n", 2);
		off += chunk;
	}
	at = put(raw, at, "0", 1);
	if (seed & 1)
		at = put(raw, at, ";last", 5);
	at = put(raw, at, "\r\n", 2);
	if (seed & 2)
		at = put(raw, at, "X-Trailer: 1\r\nY:\r\n", 18);
	at = put(raw, at, "\r\n", 2);
	CHECK(at <= cap, "encoding overflow");

	parse_all_ways(raw, at, seed, whole, other);
	CHECK(whole->err == 0 && whole->n == 1 && whole->r[0].done, "a valid chunked body failed: error %d (%s)",
		  whole->err, http1_strerror(whole->err));
	CHECK(whole->r[0].body_len == size && memcmp(whole->body, data, size) == 0,
		  "a valid chunked body decoded to %llu bytes, want %zu", (unsigned long long)whole->r[0].body_len,
		  size);
	CHECK(whole->r[0].end_at == at && whole->finish == HTTP1_EV_NONE, "end at %zu of %zu, finish %d",
		  whole->r[0].end_at, at, whole->finish);
	run_free(whole);
	free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run_outcome *whole = malloc(sizeof(*whole)), *other = malloc(sizeof(*other));
	uint64_t seed = run_hash(data, size);

	CHECK(whole && other, "out of memory");
	check_input_as_body(data, size, seed, whole, other);
	check_encoded_input(data, size, seed, whole, other);
	free(whole);
	free(other);
	return 0;
}

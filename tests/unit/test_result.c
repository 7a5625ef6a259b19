/* test_result.c - the result encoder and the JSON helpers: exact bytes for a success and a failure line,
 * escaping of controls, quotes and invalid UTF-8, millisecond formatting, and the HELLO field lookups. */
#include <string.h>

#include "daemon/json.h"
#include "daemon/result.h"
#include "tests/unit/test.h"

static const char *encode(struct buf *b, const struct result *r)
{
	b->len = 0;
	CHECK(result_encode(b, r) == 0, "encode failed");
	CHECK(buf_append(b, "", 1) == 0, "nul");
	return (const char *)b->p;
}

static void test_success(struct buf *b)
{
	struct result r;
	result_init(&r);
	r.url = "http://a/x";
	r.url_len = strlen(r.url);
	r.status = 200;
	r.body_bytes = 1024;
	r.have_sha = true;
	for (int i = 0; i < 32; i++)
		r.sha[i] = (uint8_t)(i * 8);
	r.content_type = "text/html";
	r.ip = "127.0.0.1";
	r.tls_version = "TLSv1.3";
	r.tls_cipher = "TLS_AES_128_GCM_SHA256";
	r.tls_backend = "openssl 3";
	r.tls_verified = 0;
	r.dns_ns = 0;
	r.connect_ns = 214499;      /* 0.214499 ms -> 0.214 */
	r.ttfb_ns = 358500;         /* rounds half up to 0.359 */
	r.total_ns = 12345678901LL; /* 12345.679 */
	r.attempts = 1;
	r.final_url = "http://a/y";
	r.final_url_len = 10;
	struct buf hops = { 0 };
	CHECK(result_hop_add(&hops, 301, "http://a/x", 10) == 0, "hop");
	r.hops = &hops;
	r.content_encoding = "gzip";
	r.decoded = true;
	r.wire_bytes = 777;
	const char *want =
		"{\"url\":\"http://a/x\",\"final_url\":\"http://a/y\",\"redirects\":[{\"url\":\"http://a/x\",\"status\":301}],"
		"\"status\":200,\"error\":null,\"body_bytes\":1024,"
		"\"body_sha256\":\"0008101820283038404850586068707880889098a0a8b0b8c0c8d0d8e0e8f0f8\","
		"\"content_type\":\"text/html\",\"content_encoding\":\"gzip\",\"decoded\":true,\"wire_bytes\":777,"
		"\"ip\":\"127.0.0.1\",\"tls_version\":\"TLSv1.3\","
		"\"tls_cipher\":\"TLS_AES_128_GCM_SHA256\",\"tls_backend\":\"openssl 3\",\"tls_verified\":false,\"timings_ms\":{\"dns\":0.000,\"connect\":0.214,"
		"\"tls\":0.000,\"ttfb\":0.359,\"total\":12345.679},\"attempts\":1}\n";
	const char *got = encode(b, &r);
	CHECK(strcmp(got, want) == 0, "\n got %s\nwant %s", got, want);
	buf_free(&hops);
}

static void test_failure(struct buf *b)
{
	struct result r;
	result_init(&r);
	r.url = "http://h/\"q\"\\";
	r.url_len = strlen(r.url);
	r.err_class = "timeout";
	r.err_phase = "header";
	strcpy(r.err_msg, "header timeout after 300 ms");
	const char *want = "{\"url\":\"http://h/\\\"q\\\"\\\\\",\"final_url\":\"http://h/\\\"q\\\"\\\\\",\"redirects\":[],\"status\":null,"
			   "\"error\":{\"class\":\"timeout\",\"message\":\"header timeout after 300 ms\","
			   "\"phase\":\"header\"},\"body_bytes\":0,\"body_sha256\":null,\"content_type\":null,"
			   "\"content_encoding\":null,\"decoded\":false,\"wire_bytes\":0,\"ip\":null,\"tls_version\":null,\"tls_cipher\":null,\"tls_backend\":null,"
			   "\"tls_verified\":null,\"timings_ms\":{\"dns\":0.000,\"connect\":0.000,\"tls\":0.000,\"ttfb\":0.000,"
			   "\"total\":0.000},\"attempts\":0}\n";
	const char *got = encode(b, &r);
	CHECK(strcmp(got, want) == 0, "\n got %s\nwant %s", got, want);
}

static void test_json_str(struct buf *b)
{
	static const struct {
		const char *in;
		size_t len;
		const char *want;
	} cases[] = {
		{ "plain", 5, "\"plain\"" },
		{ "a\x01\x1f\x7f", 4, "\"a\\u0001\\u001f\\u007f\"" },
		{ "tab\tnl\n", 7, "\"tab\\u0009nl\\u000a\"" },
		{ "caf\xc3\xa9", 5, "\"caf\xc3\xa9\"" },                 /* valid UTF-8 kept */
		{ "\xff", 1, "\"\xef\xbf\xbd\"" },                       /* invalid byte -> U+FFFD */
		{ "\xc3", 1, "\"\xef\xbf\xbd\"" },                       /* truncated sequence */
		{ "\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"" },       /* overlong */
		{ "\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" }, /* surrogate */
		{ "\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"" },       /* 4-byte */
		{ "nul\0x", 5, "\"nul\\u0000x\"" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		b->len = 0;
		CHECK(json_str(b, cases[i].in, cases[i].len) == 0 && buf_append(b, "", 1) == 0, "append");
		CHECK(strcmp((const char *)b->p, cases[i].want) == 0, "case %zu: got %s", i, (const char *)b->p);
	}
}

static void test_json_get(void)
{
	const char *h = "{\"protocol\": 1, \"client\":\"x\",\"hash\":false,\"n\":-5,\"f\":1.5}";
	int64_t v = 0;
	bool bv = true;
	CHECK(json_get_int(h, strlen(h), "protocol", &v) && v == 1, "protocol %lld", (long long)v);
	CHECK(json_get_int(h, strlen(h), "n", &v) && v == -5, "n %lld", (long long)v);
	CHECK(!json_get_int(h, strlen(h), "f", &v), "1.5 is not an integer");
	CHECK(!json_get_int(h, strlen(h), "missing", &v), "missing key");
	CHECK(!json_get_int(h, strlen(h), "client", &v), "string is not an integer");
	CHECK(json_get_bool(h, strlen(h), "hash", &bv) && bv == false, "hash");
	CHECK(!json_get_bool(h, strlen(h), "protocol", &bv), "1 is not a bool");
	CHECK(!json_get_int(h, 12, "protocol", &v), "value beyond len is not read");
}

int main(void)
{
	struct buf b = { 0 };
	test_success(&b);
	test_failure(&b);
	test_json_str(&b);
	test_json_get();
	buf_free(&b);
	return test_report();
}

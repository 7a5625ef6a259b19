/* mbedtls.c - the mbedTLS backend of tls.h: SHA-256 through mbedcrypto. */
#include "tls/tls.h"

#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

_Static_assert(sizeof(mbedtls_sha256_context) <= sizeof(struct tls_sha256),
	       "tls_sha256 storage too small for mbedtls_sha256_context");

void tls_sha256_init(struct tls_sha256 *h)
{
	mbedtls_sha256_context *c = (mbedtls_sha256_context *)h->opaque;
	mbedtls_sha256_init(c);
	mbedtls_sha256_starts_ret(c, 0);
}

void tls_sha256_update(struct tls_sha256 *h, const void *data, size_t len)
{
	mbedtls_sha256_update_ret((mbedtls_sha256_context *)h->opaque, data, len);
}

void tls_sha256_final(struct tls_sha256 *h, uint8_t out[TLS_SHA256_BYTES])
{
	mbedtls_sha256_context *c = (mbedtls_sha256_context *)h->opaque;
	mbedtls_sha256_finish_ret(c, out);
	mbedtls_sha256_free(c);
}

const char *tls_backend_name(void)
{
	return "mbedtls " MBEDTLS_VERSION_STRING;
}

/* openssl.c - the OpenSSL 3 backend of tls.h: SHA-256 through libcrypto (SHA-NI where the CPU has it). */
#define OPENSSL_SUPPRESS_DEPRECATED /* the one-shot SHA256_* API is deprecated but fast and allocation-free */
#include "tls/tls.h"

#include <openssl/opensslv.h>
#include <openssl/sha.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(struct tls_sha256), "tls_sha256 storage too small for SHA256_CTX");

void tls_sha256_init(struct tls_sha256 *h)
{
	SHA256_Init((SHA256_CTX *)h->opaque);
}

void tls_sha256_update(struct tls_sha256 *h, const void *data, size_t len)
{
	SHA256_Update((SHA256_CTX *)h->opaque, data, len);
}

void tls_sha256_final(struct tls_sha256 *h, uint8_t out[TLS_SHA256_BYTES])
{
	SHA256_Final(out, (SHA256_CTX *)h->opaque);
}

const char *tls_backend_name(void)
{
	return "openssl " OPENSSL_FULL_VERSION_STR;
}

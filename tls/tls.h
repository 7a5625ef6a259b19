/* tls.h - the crypto/TLS backend interface. The backend (mbedTLS by default, chosen at build time with
 * `make TLS=...`) provides body hashing now; TLS sessions over memory buffers arrive with HTTPS. */
#ifndef FETCHD_TLS_H
#define FETCHD_TLS_H

#include <stddef.h>
#include <stdint.h>

#define TLS_SHA256_BYTES 32

/* Opaque storage big enough for every backend's SHA-256 state. */
struct tls_sha256 {
	_Alignas(16) uint8_t opaque[256];
};

void tls_sha256_init(struct tls_sha256 *h);
void tls_sha256_update(struct tls_sha256 *h, const void *data, size_t len);
void tls_sha256_final(struct tls_sha256 *h, uint8_t out[TLS_SHA256_BYTES]);
/* The backend's name and version, e.g. "mbedtls 2.28.3". */
const char *tls_backend_name(void);

#endif

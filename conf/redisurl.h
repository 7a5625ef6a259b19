/* redisurl.h - a Redis URL, redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], parsed into its parts. Pure:
 * no I/O, no allocation. Used by the [queue] url check (conf.c), the daemon's queue and fetchctl. */
#ifndef FETCHD_REDISURL_H
#define FETCHD_REDISURL_H

#include <stddef.h>
#include <stdint.h>

#define REDISURL_HOST_MAX 256
#define REDISURL_CRED_MAX 256

struct redisurl {
	char host[REDISURL_HOST_MAX];     /* without brackets */
	uint16_t port;                    /* default 6379 */
	uint32_t db;                      /* default 0 */
	char user[REDISURL_CRED_MAX];     /* "" when none */
	char password[REDISURL_CRED_MAX]; /* "" when none */
};

/* Parse s (NUL-terminated). 0, or -1 with a static reason in *why. */
int redisurl_parse(const char *s, struct redisurl *u, const char **why);

/* "redis://HOST:PORT/DB" with the password (and user) left out: for logs and stats. */
void redisurl_safe(const struct redisurl *u, char *out, size_t cap);

#endif

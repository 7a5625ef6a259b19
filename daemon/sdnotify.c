/* sdnotify.c - sd_notify(3) without libsystemd: one datagram per message to $NOTIFY_SOCKET, and the
 * watchdog period from $WATCHDOG_USEC/$WATCHDOG_PID (see sdnotify.h). */
#include "daemon/sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SDNOTIFY_WATCHDOG_USEC_MAX (1ULL << 52) /* 142 years: half of it in ns fits an int64_t */

/* Parse an unsigned decimal of at most 19 digits, the whole string; 0 or -EINVAL. */
static int sdnotify_parse_u64(const char *s, uint64_t *v)
{
	uint64_t n = 0;
	size_t i = 0;
	for (; s[i] >= '0' && s[i] <= '9' && i < 19; i++)
		n = n * 10 + (uint64_t)(s[i] - '0');
	if (i == 0 || s[i] != '\0')
		return -EINVAL;
	*v = n;
	return 0;
}

/* $NOTIFY_SOCKET into n->addr: "/path" or "@abstract". */
static int sdnotify_addr(struct sdnotify *n, const char *path)
{
	size_t len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len < 2 || len >= sizeof(n->addr.sun_path))
		return -EINVAL;
	memset(&n->addr, 0, sizeof(n->addr));
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, path, len);
	if (path[0] == '@')
		n->addr.sun_path[0] = '\0'; /* abstract: the length, not a NUL, ends the name */
	n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
	return 0;
}

int sdnotify_init(struct sdnotify *n)
{
	n->fd = -1;
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return 0;
	int rc = sdnotify_addr(n, path);
	if (rc < 0)
		return rc;
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	return n->fd < 0 ? -errno : 0;
}

bool sdnotify_enabled(const struct sdnotify *n)
{
	return n->fd >= 0;
}

int sdnotify_send(struct sdnotify *n, const char *msg)
{
	if (n->fd < 0)
		return 0;
	size_t len = strnlen(msg, SDNOTIFY_MSG_MAX);
	ssize_t sent = sendto(n->fd, msg, len, MSG_NOSIGNAL, (const struct sockaddr *)&n->addr, n->addrlen);
	if (sent < 0)
		return -errno;
	return (size_t)sent == len ? 0 : -EMSGSIZE;
}

int64_t sdnotify_watchdog_ns(void)
{
	const char *usec_s = getenv("WATCHDOG_USEC"), *pid_s = getenv("WATCHDOG_PID");
	uint64_t usec, pid;
	if (!usec_s || sdnotify_parse_u64(usec_s, &usec) < 0 || usec == 0 || usec > SDNOTIFY_WATCHDOG_USEC_MAX)
		return 0;
	if (pid_s && *pid_s && (sdnotify_parse_u64(pid_s, &pid) < 0 || pid != (uint64_t)getpid()))
		return 0;
	return (int64_t)(usec / 2) * 1000;
}

void sdnotify_fini(struct sdnotify *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}

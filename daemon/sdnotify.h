/* sdnotify.h - the systemd notification protocol without libsystemd: datagrams such as "READY=1",
 * "STATUS=...", "STOPPING=1" and "WATCHDOG=1" sent to $NOTIFY_SOCKET (a path, or "@name" for an
 * abstract socket). Everything is a no-op when $NOTIFY_SOCKET is unset. Never logs: errors are -errno. */
#ifndef FETCHD_SDNOTIFY_H
#define FETCHD_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#define SDNOTIFY_MSG_MAX 512 /* the longest message sent (bytes) */

struct sdnotify {
	int fd;                  /* -1: notifications are off */
	struct sockaddr_un addr;
	socklen_t addrlen;
};

/* Read $NOTIFY_SOCKET and open a datagram socket for it. 0 (on or off), or -EINVAL for a value that
 * is not an absolute path or "@name" of at most 107 bytes, or the socket's -errno; n is off then. */
int sdnotify_init(struct sdnotify *n);
bool sdnotify_enabled(const struct sdnotify *n);
/* Send msg (one or more "KEY=VALUE" lines). 0 when sent or off; -errno (-EAGAIN: the manager's
 * queue is full, the message is dropped). */
int sdnotify_send(struct sdnotify *n, const char *msg);
/* The watchdog ping period: half of $WATCHDOG_USEC, in ns, when it is set (1..2^52 us) and
 * $WATCHDOG_PID is unset or our pid; else 0. */
int64_t sdnotify_watchdog_ns(void);
void sdnotify_fini(struct sdnotify *n);

#endif

/* sdlisten.c - sd_listen_fds(3) for one socket, without libsystemd: read $LISTEN_PID/$LISTEN_FDS,
 * check that fd 3 is a listening AF_UNIX stream socket, and clear the variables (see sdlisten.h). */
#include "daemon/sdlisten.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SDLISTEN_FDS_MAX 4096 /* more than this in $LISTEN_FDS is not believable */

/* A decimal in 1..max, the whole string; 0 when it is not one. */
static unsigned long sdlisten_number(const char *s, unsigned long max)
{
	unsigned long n = 0;
	if (!s || !*s)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || n > max)
			return 0;
		n = n * 10 + (unsigned long)(*s - '0');
	}
	return n <= max ? n : 0;
}

static int sdlisten_sockopt(int fd, int opt, int *v)
{
	socklen_t len = sizeof(*v);
	return getsockopt(fd, SOL_SOCKET, opt, v, &len) < 0 ? -errno : 0;
}

/* fd is a listening AF_UNIX SOCK_STREAM socket: 0, or -errno with why. */
static int sdlisten_check(int fd, char *why, size_t whylen)
{
	int domain = 0, type = 0, listening = 0;
	int rc = sdlisten_sockopt(fd, SO_DOMAIN, &domain);
	if (rc < 0) {
		snprintf(why, whylen, "file descriptor %d is not a socket (%s)", fd, strerror(-rc));
		return -ENOTSOCK;
	}
	if (sdlisten_sockopt(fd, SO_TYPE, &type) < 0 || sdlisten_sockopt(fd, SO_ACCEPTCONN, &listening) < 0 ||
	    domain != AF_UNIX || type != SOCK_STREAM || !listening) {
		snprintf(why, whylen, "file descriptor %d is not a listening AF_UNIX stream socket "
			 "(domain %d, type %d, listening %d; use ListenStream=/path)", fd, domain, type, listening);
		return -EPROTOTYPE;
	}
	return 0;
}

int sdlisten_fd(int *fd, unsigned *nfds, char *why, size_t whylen)
{
	const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
	bool ours = pid_s && sdlisten_number(pid_s, 0x7fffffffUL) == (unsigned long)getpid();
	unsigned long n = sdlisten_number(fds_s, SDLISTEN_FDS_MAX);
	char fds_text[16];
	snprintf(fds_text, sizeof(fds_text), "%s", fds_s ? fds_s : "");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	*fd = -1;
	*nfds = 0;
	if (!ours)
		return 0;
	if (n == 0) {
		snprintf(why, whylen, "LISTEN_FDS='%s': expected a count of 1..%d", fds_text, SDLISTEN_FDS_MAX);
		return -EINVAL;
	}
	int rc = sdlisten_check(SDLISTEN_FDS_START, why, whylen);
	if (rc < 0)
		return rc;
	fcntl(SDLISTEN_FDS_START, F_SETFD, FD_CLOEXEC);
	*fd = SDLISTEN_FDS_START;
	*nfds = (unsigned)n;
	return 0;
}

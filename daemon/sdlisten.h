/* sdlisten.h - socket activation without libsystemd: the listening socket systemd (or
 * systemd-socket-activate) hands over as file descriptor 3 when $LISTEN_PID is our pid and $LISTEN_FDS
 * is at least 1. Never logs: errors are -errno with a reason. */
#ifndef FETCHD_SDLISTEN_H
#define FETCHD_SDLISTEN_H

#include <stddef.h>

#define SDLISTEN_FDS_START 3 /* SD_LISTEN_FDS_START */

/* Take the activated socket, and remove LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from the environment
 * whether or not they were meant for us. Returns 0 with *fd = -1 when fetchd was not activated; 0 with
 * *fd = 3 (made close-on-exec) and *nfds = $LISTEN_FDS when it was and fd 3 is a listening AF_UNIX
 * stream socket; -EINVAL (a bad $LISTEN_FDS), -ENOTSOCK or -EPROTOTYPE (fd 3 is not such a socket)
 * with why set. */
int sdlisten_fd(int *fd, unsigned *nfds, char *why, size_t whylen);

#endif

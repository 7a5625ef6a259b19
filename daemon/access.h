/* access.h - who may use the control socket ([control] allow_uids, allow_gids; the rule is in
 * conf/conf.h), decided from the peer's credentials (SO_PEERCRED, SO_PEERGROUPS). Never logs. */
#ifndef FETCHD_ACCESS_H
#define FETCHD_ACCESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"

#define ACCESS_NO_GID UINT32_MAX /* the socket has no file (abstract, unnamed): no group rule */

struct access {
	uint32_t uids[CONF_IDS_ENTRIES], gids[CONF_IDS_ENTRIES];
	size_t nuids, ngids;
	uint32_t self;           /* the daemon's effective uid */
	uint32_t sock_gid;       /* the socket file's group, or ACCESS_NO_GID */
};

/* From c's lists (already checked by the loader): 0, or -EINVAL if one does not parse after all. */
int access_init(struct access *a, const struct conf *c, uint32_t self, uint32_t sock_gid);
/* 0 when the peer on fd (credentials cred) may connect, -EACCES when not. */
int access_check(const struct access *a, int fd, const struct ucred *cred);

#endif

/* access.c - the control socket's access rule (conf/conf.h, [control] allow_uids/allow_gids): uid 0
 * and the daemon's own uid always; then the lists, or, when both are empty, the socket file's group.
 * Groups are the peer's primary gid and its supplementary groups (SO_PEERGROUPS). */
#include "daemon/access.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#define ACCESS_GROUPS_STACK 256      /* supplementary groups read without allocating */
#define ACCESS_GROUPS_MAX 65536      /* NGROUPS_MAX: the kernel never reports more */

int access_init(struct access *a, const struct conf *c, uint32_t self, uint32_t sock_gid)
{
	char bad[64];
	a->self = self;
	a->sock_gid = sock_gid;
	if (conf_id_list(c->allow_uids, a->uids, CONF_IDS_ENTRIES, &a->nuids, bad, sizeof(bad)) < 0 ||
	    conf_id_list(c->allow_gids, a->gids, CONF_IDS_ENTRIES, &a->ngids, bad, sizeof(bad)) < 0)
		return -EINVAL;
	return 0;
}

static bool access_in(const uint32_t *ids, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* Is any of the peer's supplementary groups in ids[0..n)? Unreadable groups count as none. */
static bool access_groups_in(int fd, const uint32_t *ids, size_t n)
{
	gid_t stack[ACCESS_GROUPS_STACK], *g = stack;
	socklen_t len = sizeof(stack);
	bool found = false;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0) {
		if (errno != ERANGE || len > ACCESS_GROUPS_MAX * sizeof(gid_t) || !(g = malloc(len)))
			return false;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0)
			len = 0; /* the peer's groups changed in between: count none */
	}
	for (size_t i = 0; i < len / sizeof(gid_t) && !found; i++)
		found = access_in(ids, n, (uint32_t)g[i]);
	if (g != stack)
		free(g);
	return found;
}

int access_check(const struct access *a, int fd, const struct ucred *cred)
{
	uint32_t uid = (uint32_t)cred->uid, gid = (uint32_t)cred->gid;
	if (uid == 0 || uid == a->self)
		return 0;
	if (a->nuids == 0 && a->ngids == 0) {
		if (a->sock_gid == ACCESS_NO_GID)
			return -EACCES;
		return gid == a->sock_gid || access_groups_in(fd, &a->sock_gid, 1) ? 0 : -EACCES;
	}
	if (access_in(a->uids, a->nuids, uid) || access_in(a->gids, a->ngids, gid) ||
	    (a->ngids && access_groups_in(fd, a->gids, a->ngids)))
		return 0;
	return -EACCES;
}

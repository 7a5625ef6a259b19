/* verbs.h - the fetchctl verbs that ask fetchd about itself instead of fetching: ping, stats,
 * version (docs/protocol.md §21). */
#ifndef FETCHCTL_VERBS_H
#define FETCHCTL_VERBS_H

#include <stdbool.h>

/* Run verb ("ping", "stats", "version") against the daemon at sock; print its answer on stdout, as
 * the daemon's JSON object with json, else for people. Returns the exit code: 0, 3 (unreachable),
 * 4 (refused or cut off). */
int verb_run(const char *sock, const char *verb, bool json);

/* Whether verb is one of those. */
bool verb_known(const char *verb);

#endif

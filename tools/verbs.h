/* verbs.h - the fetchctl verbs that ask fetchd instead of fetching: ping, stats, version
 * (docs/protocol.md §21), and jobs, status JOB, cancel JOB (§22). */
#ifndef FETCHCTL_VERBS_H
#define FETCHCTL_VERBS_H

#include <stdbool.h>

/* Run verb against the daemon at sock (job: the job it is about, or NULL); print its answer on
 * stdout, as the daemon's JSON object with json, else for people. Returns the exit code: 0,
 * 3 (unreachable), 4 (refused, no such job, or cut off). */
int verb_run(const char *sock, const char *verb, const char *job, bool json);

/* Whether verb is one of those, and whether it takes a job id. */
bool verb_known(const char *verb);
int verb_wants_job(const char *verb);

#endif

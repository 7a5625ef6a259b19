/* redisctl.h - fetchctl's Redis verbs: enqueue (a URL list into the stream fetchd daemons read with
 * [queue] backend = redis) and drain (the results stream, or the dead stream, to stdout). They speak to
 * Redis, not to fetchd; the streams' fields are those of docs/scaling.md. */
#ifndef FETCHCTL_REDISCTL_H
#define FETCHCTL_REDISCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct redisctl_drain {
	const char *stream;      /* default fetchd:results, or fetchd:dead with dead */
	bool dead;               /* print the dead stream's entries as JSON objects */
	const char *group, *consumer; /* default "fetchctl", "fetchctl" */
	bool follow;             /* wait for more (until SIGINT/SIGTERM or count) */
	uint64_t count;          /* stop after this many lines; 0: no limit */
	bool keep;               /* acknowledge, but do not delete */
	bool quiet;
};

/* Each URL line of in (the input format of submit: URL, TAB key=value items, indented key=value lines)
 * becomes an entry of stream. Returns the exit code: 0, 1 (some lines refused), 3 (Redis). */
int redisctl_enqueue(const char *url, const char *stream, FILE *in, bool json, bool quiet);

/* Print the entries of a results (or dead) stream through a consumer group, acknowledging each batch
 * after it is written (and deleting it unless keep). Returns 0 or 3. */
int redisctl_drain(const char *url, const struct redisctl_drain *o);

/* fetchctl.c's readers of the input format, shared with enqueue. */
bool fetchctl_clean_line(char **line, size_t *len);
bool fetchctl_option_line(const char *raw, const char *p, size_t n);

#endif

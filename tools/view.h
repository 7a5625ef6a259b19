/* view.h - how fetchctl shows results: JSON Lines as fetchd sends them, TSV of chosen fields, or one
 * human line per URL (the default on a terminal). */
#ifndef FETCHCTL_VIEW_H
#define FETCHCTL_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define VIEW_MAX_FIELDS 24

enum view_format { VIEW_JSONL, VIEW_TSV, VIEW_HUMAN };

struct view {
	enum view_format format;
	FILE *out;
	int nfields;
	char fields[VIEW_MAX_FIELDS][32];
};

/* "jsonl", "tsv" or "human" -> format; -1 otherwise. */
int view_format_of(const char *name);
/* Comma-separated field paths for TSV ("url,status,error.class"); -1 with a message in err. */
int view_set_fields(struct view *v, const char *csv, char *err, size_t errlen);
/* TSV: the header line. */
void view_begin(struct view *v);
/* One result line (without its '\n'). */
void view_result(struct view *v, const char *line, size_t len);

#endif

/* view.c - result lines as JSON Lines, TSV or human lines (view.h). */
#include "tools/view.h"

#include <stdlib.h>
#include <string.h>

#include "tools/resultline.h"

#define VIEW_DEFAULT_FIELDS "url,status,error.class,body_bytes,timings_ms.total,final_url"

int view_format_of(const char *name)
{
	return !strcmp(name, "jsonl") ? VIEW_JSONL : !strcmp(name, "tsv") ? VIEW_TSV
		: !strcmp(name, "human") ? VIEW_HUMAN : -1;
}

int view_set_fields(struct view *v, const char *csv, char *err, size_t errlen)
{
	v->nfields = 0;
	for (const char *p = csv; *p;) {
		size_t n = strcspn(p, ",");
		if (n == 0 || n >= sizeof(v->fields[0]) || v->nfields == VIEW_MAX_FIELDS) {
			snprintf(err, errlen, "--fields: '%s' is not a list of up to %d field names", csv, VIEW_MAX_FIELDS);
			return -1;
		}
		memcpy(v->fields[v->nfields], p, n);
		v->fields[v->nfields++][n] = 0;
		p += n + (p[n] == ',');
	}
	if (v->nfields == 0) {
		snprintf(err, errlen, "--fields: no field named");
		return -1;
	}
	return 0;
}

void view_begin(struct view *v)
{
	if (v->format != VIEW_TSV)
		return;
	if (v->nfields == 0) {
		char err[8];
		view_set_fields(v, VIEW_DEFAULT_FIELDS, err, sizeof(err));
	}
	for (int i = 0; i < v->nfields; i++)
		fprintf(v->out, "%s%s", i ? "\t" : "", v->fields[i]);
	fputc('\n', v->out);
}

/* A field's text for one TSV cell: null is empty, tabs and newlines become spaces. */
static void view_cell(const char *line, size_t len, const char *field, char *out, size_t cap)
{
	struct rl_val val;
	out[0] = 0;
	if (!rl_get(line, len, field, &val) || val.type == RL_NULL)
		return;
	rl_text(&val, out, cap);
	for (char *p = out; *p; p++)
		if (*p == '\t' || *p == '\n' || *p == '\r')
			*p = ' ';
}

static void view_tsv(struct view *v, const char *line, size_t len)
{
	static char cell[65536];
	for (int i = 0; i < v->nfields; i++) {
		view_cell(line, len, v->fields[i], cell, sizeof(cell));
		fprintf(v->out, "%s%s", i ? "\t" : "", cell);
	}
	fputc('\n', v->out);
}

/* "200  1.2 MiB   34.5 ms  URL", or "ERR timeout/header  URL  message". */
static void view_human(struct view *v, const char *line, size_t len)
{
	static char url[65536], msg[1024], cls[64], phase[32], status[16], bytes[32], ms[32];
	view_cell(line, len, "url", url, sizeof(url));
	view_cell(line, len, "status", status, sizeof(status));
	view_cell(line, len, "error.class", cls, sizeof(cls));
	if (cls[0]) {
		view_cell(line, len, "error.phase", phase, sizeof(phase));
		view_cell(line, len, "error.message", msg, sizeof(msg));
		fprintf(v->out, "ERR %-3s %s%s%s  %s  %s\n", status, cls, phase[0] ? "/" : "", phase, url, msg);
		return;
	}
	view_cell(line, len, "body_bytes", bytes, sizeof(bytes));
	view_cell(line, len, "timings_ms.total", ms, sizeof(ms));
	double b = atof(bytes);
	const char *unit = "B";
	if (b >= 1024 * 1024)
		b /= 1024 * 1024, unit = "MiB";
	else if (b >= 1024)
		b /= 1024, unit = "KiB";
	fprintf(v->out, unit[0] == 'B' ? "%-3s %7.0f %-3s %9.1f ms  %s\n" : "%-3s %7.1f %-3s %9.1f ms  %s\n", status, b,
		unit, atof(ms), url);
}

void view_result(struct view *v, const char *line, size_t len)
{
	if (v->format == VIEW_TSV)
		view_tsv(v, line, len);
	else if (v->format == VIEW_HUMAN)
		view_human(v, line, len);
	else {
		fwrite(line, 1, len, v->out);
		fputc('\n', v->out);
	}
}

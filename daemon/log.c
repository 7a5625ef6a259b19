/* log.c - leveled logging to stderr, one line per call. */
#include "daemon/log.h"

#include <stdarg.h>
#include <stdio.h>

static enum conf_log_level log_level = CONF_LOG_INFO;

void log_set_level(enum conf_log_level level)
{
	log_level = level;
}

enum conf_log_level log_get_level(void)
{
	return log_level;
}

void log_msg(enum conf_log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	if (level > log_level)
		return;
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "fetchd: %s: %s\n", names[level], line);
}

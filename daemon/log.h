/* log.h - fetchd's log: one line per event on stderr, "fetchd: LEVEL: message key=value ...".
 * Only daemon/ code logs; helpers return errors and let their caller decide. */
#ifndef FETCHD_LOG_H
#define FETCHD_LOG_H

#include "conf/conf.h"

void log_set_level(enum conf_log_level level);
enum conf_log_level log_get_level(void);
void log_msg(enum conf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(CONF_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(CONF_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(CONF_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                          \
	do {                                                    \
		if (log_get_level() >= CONF_LOG_DEBUG)          \
			log_msg(CONF_LOG_DEBUG, __VA_ARGS__);   \
	} while (0)

#endif

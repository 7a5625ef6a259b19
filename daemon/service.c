/* service.c - fetchd under systemd (Type=notify): READY=1 once the control socket listens and every
 * worker's ring is up, a short STATUS= summary at most once a second (only when it changed), WATCHDOG=1
 * at half of $WATCHDOG_USEC, and STOPPING=1 on SIGTERM/SIGINT. All from the control thread's loop, on
 * its timers; nothing happens when $NOTIFY_SOCKET is unset. */
#include "daemon/fetchd.h"

#include <stdio.h>
#include <string.h>

#include "daemon/log.h"

#define SERVICE_STATUS_NS 1000000000LL /* STATUS= at most this often */

static void service_send(struct fetchd *d, const char *msg)
{
	int rc = sdnotify_send(&d->notify, msg);
	if (rc == 0)
		return;
	if (!d->notify_failed)
		log_warn("systemd notification to $NOTIFY_SOCKET failed: %s (further failures at debug level)",
			 strerror(-rc));
	else
		log_debug("systemd notification failed: %s", strerror(-rc));
	d->notify_failed = true;
}

void service_init(struct fetchd *d)
{
	int rc = sdnotify_init(&d->notify);
	if (rc < 0)
		log_warn("NOTIFY_SOCKET: %s: not notifying systemd", strerror(-rc));
	d->watchdog_ns = sdnotify_enabled(&d->notify) ? sdnotify_watchdog_ns() : 0;
}

/* "STATUS=2 clients, 140 fetches in flight, 10234 done" into buf. */
static void service_status_text(const struct fetchd *d, char *buf, size_t len)
{
	uint64_t inflight = 0;
	for (uint32_t i = 0; i < d->client_cap; i++)
		if (d->clients[i].state != CL_FREE)
			inflight += d->clients[i].admitted;
	snprintf(buf, len, "STATUS=%s%u client%s, %llu fetch%s in flight, %llu done",
		 d->stopping ? "stopping: " : "", d->nclients, d->nclients == 1 ? "" : "s",
		 (unsigned long long)inflight, inflight == 1 ? "" : "es", (unsigned long long)d->results_sent);
}

static void service_status(struct fetchd *d)
{
	char now[SDNOTIFY_MSG_MAX];
	service_status_text(d, now, sizeof(now));
	if (strcmp(now, d->status) == 0)
		return;
	snprintf(d->status, sizeof(d->status), "%s", now);
	service_send(d, now);
}

void service_ready(struct fetchd *d)
{
	if (!sdnotify_enabled(&d->notify))
		return;
	service_send(d, "READY=1");
	service_status(d);
	fetchd_timer(d, d->now_ns + SERVICE_STATUS_NS, TK_STATUS, 0, 0);
	if (d->watchdog_ns) {
		service_send(d, "WATCHDOG=1");
		fetchd_timer(d, d->now_ns + d->watchdog_ns, TK_WATCHDOG, 0, 0);
	}
}

void service_on_timer(struct fetchd *d, uint8_t kind)
{
	if (kind == TK_STATUS) {
		service_status(d);
		fetchd_timer(d, d->now_ns + SERVICE_STATUS_NS, TK_STATUS, 0, 0);
	} else if (kind == TK_WATCHDOG) {
		service_send(d, "WATCHDOG=1");
		fetchd_timer(d, d->now_ns + d->watchdog_ns, TK_WATCHDOG, 0, 0);
	}
}

void service_stopping(struct fetchd *d)
{
	if (!sdnotify_enabled(&d->notify))
		return;
	service_send(d, "STOPPING=1");
	service_status(d);
}

void service_reloading(struct fetchd *d, bool done)
{
	service_send(d, done ? "READY=1" : "RELOADING=1");
}

void service_fini(struct fetchd *d)
{
	sdnotify_fini(&d->notify);
}

/* reload.c - SIGHUP: re-read the configuration file and apply what a running fetchd can change (limits,
 * timeouts, retries, politeness, the user agent, the log level, who may connect, the address policy).
 * Keys that size threads, rings and tables, set up the resolver or TLS, or name the socket keep their
 * running values and are reported as needing a restart. A file that does not load, or that a running
 * daemon could not use, changes nothing and says why. Fetches already admitted keep their options;
 * batches that start after the reload get the new ones. */
#include "daemon/fetchd.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"

/* What conf_load alone cannot tell: the values this daemon would refuse to run with. */
static int reload_check(const struct fetchd *d, const struct conf *c, struct access *acc, char *err,
			size_t errlen)
{
	struct addrpolicy p;
	if (addrpolicy_parse(&p, c->allow_addresses, c->deny_addresses, err, errlen) < 0)
		return -1;
	if (!strcmp(c->obey_robots, "yes") && !robotstxt_ua_ok(c->user_agent)) {
		snprintf(err, errlen, "[politeness] obey_robots: user_agent '%s' has no product token to match "
			 "robots.txt groups with", c->user_agent);
		return -1;
	}
	if (access_init(acc, c, d->access.self, d->access.sock_gid) < 0) {
		snprintf(err, errlen, "[control] allow_uids/allow_gids do not parse");
		return -1;
	}
	return 0;
}

static void reload_apply(struct fetchd *d, const struct conf *next, const struct access *acc)
{
	d->conf = *next;
	d->access = *acc;
	d->window = conf_client_window(&d->conf);
	fetchd_opts_default(&d->conf, &d->opts_default);
	log_set_level(d->conf.log_level);
	for (uint32_t i = 0; i < d->nworkers; i++)
		worker_reconf(&d->workers[i], &d->conf);
}

void fetchd_reload(struct fetchd *d)
{
	if (!d->conf_path) {
		log_warn("reload: fetchd runs on its built-in defaults (no -c FILE): nothing to re-read");
		return;
	}
	struct conf *loaded = malloc(sizeof(*loaded)), *next = malloc(sizeof(*next)), *running = malloc(sizeof(*running));
	char err[CONF_ERR_MAX], changed[512], pending[512];
	struct access acc;
	service_reloading(d, false);
	if (!loaded || !next || !running) {
		log_error("reload: out of memory; keeping the running configuration");
		goto out;
	}
	conf_defaults(loaded);
	if (conf_load(loaded, d->conf_path, err, sizeof(err)) < 0) {
		log_error("reload failed, keeping the running configuration: %s", err);
		goto out;
	}
	/* Compare with the file as it was, not with what the command line or the open-file limit made of it. */
	*running = d->conf;
	running->max_inflight = d->max_inflight_conf;
	if (d->socket_overridden)
		memcpy(loaded->socket_path, running->socket_path, sizeof(loaded->socket_path));
	int n = conf_reload(running, loaded, next, changed, sizeof(changed), pending, sizeof(pending));
	next->max_inflight = d->conf.max_inflight;
	if (reload_check(d, next, &acc, err, sizeof(err)) < 0) {
		log_error("reload failed, keeping the running configuration: %s: %s", d->conf_path, err);
		goto out;
	}
	reload_apply(d, next, &acc);
	log_info("reload file=%s changed=%d keys=\"%s\"", d->conf_path, n, changed);
	if (pending[0])
		log_warn("reload: %s changed in %s but need a restart; running on the old values", pending,
			 d->conf_path);
out:
	service_reloading(d, true);
	free(loaded);
	free(next);
	free(running);
}

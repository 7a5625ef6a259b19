/* main.c - fetchd's entry point: command line, configuration (file or built-in defaults), the open-file
 * limit, then the engine until SIGINT/SIGTERM. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "daemon/fetchd.h"
#include "daemon/log.h"
#include "daemon/protocol.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: fetchd [-c FILE] [-s SOCKET] [-t] [-V]\n"
		"  -c FILE    configuration file (INI; see conf/fetchd.conf). Without it: built-in defaults\n"
		"  -s SOCKET  control socket path (overrides [control] socket and $FETCHD_SOCKET)\n"
		"  -t         check the configuration and exit (0: valid, 1: not)\n"
		"  -V         print the version and exit\n");
}

/* Raise the soft open-file limit to the hard one; warn when it cannot cover the configured limits. */
static void main_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* fetchd -t: the file parsed; now what only a start would find out (the TLS settings). */
static int main_check(const struct conf *c, const char *conf_path)
{
	struct tls_config_opts o = {
		.ca_file = c->tls_ca_file,
		.ca_path = c->tls_ca_path,
		.min_version = !strcmp(c->tls_min_version, "1.3") ? TLS_V13 : TLS_V12,
		.no_verify = !strcmp(c->tls_verify, "no"),
	};
	struct tls_config *cfg = NULL;
	struct tls_ca_count ca = { 0, 0 };
	char err[256];
	int rc = tls_config_new(&cfg, &o, &ca, err, sizeof(err));
	tls_config_free(cfg);
	const char *name = conf_path ? conf_path : "(built-in defaults)";
	if (rc != TLS_OK && (c->tls_ca_file[0] || c->tls_ca_path[0] || o.min_version == TLS_V13)) {
		fprintf(stderr, "fetchd: %s: [tls]: %s\n", name, err);
		return 1;
	}
	if (rc != TLS_OK)
		fprintf(stderr, "fetchd: warning: %s: https URLs would fail\n", err);
	printf("fetchd: %s: configuration ok (%s)\n", name, tls_backend_name());
	return 0;
}

int main(int argc, char **argv)
{
	const char *conf_path = NULL, *sock = NULL;
	bool check_only = false;
	int opt;
	while ((opt = getopt(argc, argv, "c:s:tVh")) != -1) {
		switch (opt) {
		case 'c': conf_path = optarg; break;
		case 's': sock = optarg; break;
		case 't': check_only = true; break;
		case 'V': printf("fetchd %s (%s)\n", FETCHD_VERSION, tls_backend_name()); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	struct conf conf;
	char err[CONF_ERR_MAX];
	conf_defaults(&conf);
	if (conf_path && conf_load(&conf, conf_path, err, sizeof(err)) < 0) {
		fprintf(stderr, "fetchd: %s\n", err);
		return 1;
	}
	if (!sock || !*sock)
		sock = getenv("FETCHD_SOCKET");
	if (sock && !*sock)
		sock = NULL; /* an empty $FETCHD_SOCKET means unset, as fetchctl reads it */
	if (sock && conf_set(&conf, "control", "socket", sock, err, sizeof(err)) < 0) {
		fprintf(stderr, "fetchd: socket path: %s\n", err);
		return 1;
	}
	if (check_only)
		return main_check(&conf, conf_path);
	log_set_level(conf.log_level);
	main_raise_nofile();
	/* Buffers of 256 KiB and more (capture bursts, big result batches) come from mmap and go back to
	 * the kernel when freed. With glibc's default, the threshold rises after the first such free, and
	 * later ones fragment the threads' arenas: a 2-minute soak with captures held 30 MB more after
	 * its traffic than before it, with 0.4 MB more in use (tools/soak.py --heap). */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	static struct fetchd d;
	if (fetchd_init(&d, &conf, err, sizeof(err)) < 0) {
		log_error("%s", err);
		fetchd_fini(&d);
		return 1;
	}
	d.conf_path = conf_path;
	d.socket_overridden = sock != NULL;
	int rc = fetchd_run(&d);
	fetchd_fini(&d);
	return rc < 0 ? 1 : 0;
}

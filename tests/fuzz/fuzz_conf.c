/* fuzz_conf.c - libFuzzer harness for the configuration loader (conf/conf.h).
 *
 * The input is a configuration file, read with conf_load_stream from fmemopen(). On failure the message
 * names the file and the struct holds the plain defaults (conf.h). On success:
 *   - every value lies within the bounds conf.h and conf/fetchd.conf document (checked here against the
 *     struct fields, not against conf.c's own table), strings are NUL-terminated within their arrays;
 *   - every key round-trips: conf_get prints it and conf_set of that text changes nothing;
 *   - the whole configuration round-trips: a file of "key=value" lines printed with conf_get loads to
 *     the same struct. */
#include "conf/conf.h"
#include "tests/fuzz/check.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define NAME "fuzz.conf"
#define VALUE_MAX 2048 /* longer than any string field */
#define KIB (1ULL << 10)
#define MIB (1ULL << 20)
#define GIB (1ULL << 30)
#define TIB (1ULL << 40)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RANGE(field, lo, hi) in_range((uint64_t)c->field, lo, hi, #field)

static void in_range(uint64_t v, uint64_t lo, uint64_t hi, const char *name)
{
	CHECK(v >= lo && v <= hi, "%s = %llu outside [%llu, %llu]", name, (unsigned long long)v,
	      (unsigned long long)lo, (unsigned long long)hi);
}

/* Length of a string field; it must be NUL-terminated within its array. */
#define STRLEN(field) field_len(c->field, sizeof(c->field), #field)
#define YES_NO(field) \
	CHECK(STRLEN(field) && (!strcmp(c->field, "yes") || !strcmp(c->field, "no")), #field " '%s'", c->field)

static size_t field_len(const char *f, size_t cap, const char *name)
{
	const char *z = memchr(f, '\0', cap);

	CHECK(z != NULL, "%s not NUL-terminated", name);
	return (size_t)(z - f);
}

/* No control character; tab_ok: except tabs (lists may have blanks around their entries). */
static bool no_ctl(const char *s, bool tab_ok)
{
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 && !(tab_ok && *s == '\t')) || *s == 0x7f)
			return false;
	return true;
}

/* An id list: NUL-terminated within its array, at most 1023 bytes, only digits, commas and blanks,
 * at most 64 entries, each of 1..10 digits below 4294967295 (counted here, not with conf_id_list). */
static void check_ids(const char *s, size_t cap, const char *name)
{
	size_t n = field_len(s, cap, name), entries = 0, digits = 0;
	uint64_t v = 0;

	CHECK(n <= 1023, "%s of %zu bytes", name, n);
	for (size_t i = 0; i <= n; i++) {
		if (s[i] >= '0' && s[i] <= '9') {
			CHECK(++digits <= 10, "%s: an id of more than 10 digits", name);
			v = v * 10 + (uint64_t)(s[i] - '0');
			continue;
		}
		CHECK(s[i] == ',' || s[i] == ' ' || s[i] == '\t' || s[i] == '\0', "%s: '%c' in '%s'", name, s[i], s);
		if (digits && (s[i] == ',' || s[i] == '\0')) {
			CHECK(v < 4294967295ULL, "%s: id %llu", name, (unsigned long long)v);
			entries++;
			digits = 0;
			v = 0;
		}
	}
	CHECK(entries <= 64, "%s: %zu entries", name, entries);
	CHECK(n == 0 || entries >= 1, "%s: '%s' without an id", name, s);
}

static void check_bounds(const struct conf *c)
{
	size_t n;

	/* [daemon] */
	RANGE(log_level, CONF_LOG_ERROR, CONF_LOG_DEBUG);
	RANGE(workers, 0, 64);
	/* [control] */
	n = STRLEN(socket_path);
	CHECK(n >= 1 && n <= 107, "socket of %zu bytes", n);
	RANGE(max_clients, 1, 4096);
	RANGE(client_window, 0, 1000000);
	RANGE(client_buffer_bytes, 64 * KIB, GIB);
	RANGE(max_url_bytes, 256, 65536);
	check_ids(c->allow_uids, sizeof(c->allow_uids), "allow_uids");
	check_ids(c->allow_gids, sizeof(c->allow_gids), "allow_gids");
	/* [fetch] */
	RANGE(max_inflight, 1, 100000);
	RANGE(per_host_connections, 1, 10000);
	RANGE(connect_timeout_ms, 1, 3600000);
	RANGE(header_timeout_ms, 1, 3600000);
	RANGE(idle_timeout_ms, 1, 3600000);
	RANGE(timeout_ms, 1, 86400000);
	RANGE(keepalive_idle_ms, 0, 3600000);
	RANGE(max_header_bytes, KIB, 16 * MIB);
	RANGE(max_body_bytes, 0, TIB);
	RANGE(max_redirects, 0, 100);
	RANGE(drain_timeout_ms, 0, 3600000);
	RANGE(retry_times, 0, 20);
	RANGE(retry_base_ms, 1, 3600000);
	RANGE(retry_max_ms, 1, 86400000);
	RANGE(delay_ms, 0, 3600000);
	RANGE(requests_per_s, 0, 100000);
	YES_NO(follow_redirects);
	YES_NO(decode);
	YES_NO(random_delay);
	YES_NO(obey_robots);
	RANGE(robots_cache_s, 1, 604800);
	RANGE(robots_cache_bytes, 64 * 1024, 1024 * 1024 * 1024);
	n = STRLEN(user_agent);
	CHECK(n >= 1 && n <= 255 && no_ctl(c->user_agent, false), "user_agent '%s'", c->user_agent);
	/* [dns] */
	n = STRLEN(dns_servers);
	CHECK(n <= 511 && no_ctl(c->dns_servers, true), "servers '%s'", c->dns_servers);
	RANGE(dns_timeout_ms, 10, 60000);
	RANGE(dns_tries, 1, 10);
	RANGE(dns_cache_size, 0, 10000000);
	RANGE(dns_min_ttl_s, 0, 86400);
	RANGE(dns_max_ttl_s, 1, 604800);
	RANGE(dns_negative_ttl_s, 0, 86400);
	STRLEN(dns_family);
	CHECK(!strcmp(c->dns_family, "any") || !strcmp(c->dns_family, "ipv4") || !strcmp(c->dns_family, "ipv6"),
	      "family '%s'", c->dns_family);
	STRLEN(dns_hosts_file);
	CHECK(no_ctl(c->dns_hosts_file, false), "hosts_file with a control character");
	/* [security] */
	STRLEN(allow_addresses);
	CHECK(no_ctl(c->allow_addresses, true), "allow_addresses with a control character");
	STRLEN(deny_addresses);
	CHECK(no_ctl(c->deny_addresses, true), "deny_addresses with a control character");
	/* [tls] */
	STRLEN(tls_ca_file);
	CHECK(no_ctl(c->tls_ca_file, false), "ca_file with a control character");
	STRLEN(tls_ca_path);
	CHECK(no_ctl(c->tls_ca_path, false), "ca_path with a control character");
	STRLEN(tls_min_version);
	CHECK(!strcmp(c->tls_min_version, "1.2") || !strcmp(c->tls_min_version, "1.3"), "min_version '%s'",
	      c->tls_min_version);
	STRLEN(tls_verify);
	CHECK(!strcmp(c->tls_verify, "yes") || !strcmp(c->tls_verify, "no"), "verify '%s'", c->tls_verify);
	RANGE(tls_max_handshakes, 1, 100000);
	RANGE(tls_session_cache_size, 0, 1000000);
	/* derived */
	CHECK(conf_client_window(c) >= 1, "client window %u", conf_client_window(c));
}

/* Every key: conf_get, then conf_set of that text on a copy, must change nothing. Appends "key=value"
 * lines under their section headers to file (NUL-terminated, cap bytes). */
static void check_keys(const struct conf *c, char *file, size_t cap)
{
	struct conf *copy = malloc(sizeof(*copy));
	const char *section, *key, *last = "";
	char value[VALUE_MAX], err[CONF_ERR_MAX];
	size_t at = 0;

	CHECK(copy != NULL, "out of memory");
	file[0] = '\0';
	for (size_t i = 0; (key = conf_key(i, &section)) != NULL; i++) {
		int n;

		CHECK(conf_get(c, section, key, value, sizeof(value)) == 0, "conf_get [%s] %s failed", section, key);
		memcpy(copy, c, sizeof(*copy));
		CHECK(conf_set(copy, section, key, value, err, sizeof(err)) == 0,
		      "[%s] %s: the printed value '%s' does not set: %s", section, key, value, err);
		CHECK(memcmp(copy, c, sizeof(*copy)) == 0, "[%s] %s: setting the printed value '%s' changed the struct",
		      section, key, value);
		if (strcmp(section, last) != 0) {
			n = snprintf(file + at, cap - at, "[%s]\n", section);
			CHECK(n > 0 && (size_t)n < cap - at, "file buffer too small");
			at += (size_t)n;
			last = section;
		}
		n = snprintf(file + at, cap - at, "%s=%s\n", key, value);
		CHECK(n > 0 && (size_t)n < cap - at, "file buffer too small");
		at += (size_t)n;
	}
	CHECK(conf_get(c, "nosuch", "key", value, sizeof(value)) == -1, "conf_get of an unknown key");
	free(copy);
}

static int load(const uint8_t *data, size_t size, struct conf *c, char *err, size_t errlen)
{
	FILE *f = fmemopen((void *)data, size, "r");
	int rc;

	CHECK(f != NULL, "fmemopen failed");
	rc = conf_load_stream(c, f, NAME, err, errlen);
	fclose(f);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf *c = malloc(sizeof(*c)), *def = malloc(sizeof(*def)), *again = malloc(sizeof(*again));
	size_t cap = 64 * 1024;
	char *file = malloc(cap), err[CONF_ERR_MAX];
	int rc;

	CHECK(c && def && again && file, "out of memory");
	if (size == 0) /* fmemopen refuses an empty buffer */
		goto out;
	conf_defaults(def);
	memset(c, 0xa5, sizeof(*c));
	memset(err, 'x', sizeof(err));
	rc = load(data, size, c, err, sizeof(err));
	CHECK(rc == 0 || rc == -1, "conf_load_stream returned %d", rc);
	if (rc < 0) {
		CHECK(memchr(err, '\0', sizeof(err)) != NULL, "error message not terminated");
		CHECK(strncmp(err, NAME ":", strlen(NAME) + 1) == 0, "error message '%s' does not name the file", err);
		CHECK(memcmp(c, def, sizeof(*c)) == 0, "after an error the struct is not the defaults");
		goto out;
	}
	check_bounds(c);
	check_keys(c, file, cap);
	memset(again, 0x5a, sizeof(*again));
	rc = load((const uint8_t *)file, strlen(file), again, err, sizeof(err));
	CHECK(rc == 0, "the printed configuration does not load: %s\n%s", err, file);
	CHECK(memcmp(c, again, sizeof(*c)) == 0, "the printed configuration loads differently:\n%s", file);
out:
	free(c);
	free(def);
	free(again);
	free(file);
	return 0;
}

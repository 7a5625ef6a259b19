/* test_redisurl.c - conf/redisurl.c: the parts of good Redis URLs, the reason for bad ones, and the
 * password-free form used in logs. Table-driven. */
#include <string.h>

#include "conf/redisurl.h"
#include "tests/unit/test.h"

static const struct {
	const char *in, *host, *user, *password, *safe;
	unsigned port, db;
} good[] = {
	{ "redis://127.0.0.1", "127.0.0.1", "", "", "redis://127.0.0.1:6379/0", 6379, 0 },
	{ "redis://localhost:7000/", "localhost", "", "", "redis://localhost:7000/0", 7000, 0 },
	{ "redis://h:1/2147483647", "h", "", "", "redis://h:1/2147483647", 1, 2147483647u },
	{ "redis://:pw@h/3", "h", "", "pw", "redis://h:6379/3", 6379, 3 },
	{ "redis://pw@h", "h", "", "pw", "redis://h:6379/0", 6379, 0 },
	{ "redis://alice:s%40cret%3A@h:6380/1", "h", "alice", "s@cret:", "redis://h:6380/1", 6380, 1 },
	{ "redis://a:b@c@h", "h", "a", "b@c", "redis://h:6379/0", 6379, 0 },
	{ "redis://[::1]:6390/4", "::1", "", "", "redis://[::1]:6390/4", 6390, 4 },
	{ "redis://[fe80::1]", "fe80::1", "", "", "redis://[fe80::1]:6379/0", 6379, 0 },
	{ "redis://:@h", "h", "", "", "redis://h:6379/0", 6379, 0 },
};

static const struct {
	const char *in, *why;
} bad[] = {
	{ "http://h", "redis://" },
	{ "rediss://h", "redis://" },
	{ "redis://", "no host" },
	{ "redis://:pw@", "no host" },
	{ "redis://h:0", "port" },
	{ "redis://h:65536", "port" },
	{ "redis://h:", "port" },
	{ "redis://h:6x", "port" },
	{ "redis://h/x", "database" },
	{ "redis://h/2147483648", "database" },
	{ "redis://h/-1", "database" },
	{ "redis://h?db=1", "query" },
	{ "redis://h#x", "query" },
	{ "redis://:p%4@h", "escape" },
	{ "redis://:p%zz@h", "escape" },
	{ "redis://:a%0ab@h", "control" },
	{ "redis://:a\tb@h", "control" },
	{ "redis://h b", "host" },
	{ "redis://[::1", "]" },
	{ "redis://[::1]x", "after the IPv6" },
	{ "redis://h:1:2", "port" },
};

int main(void)
{
	struct redisurl u;
	const char *why;
	char safe[512];
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		why = "";
		int rc = redisurl_parse(good[i].in, &u, &why);
		CHECK(rc == 0, "%s: %s", good[i].in, why);
		if (rc)
			continue;
		CHECK(!strcmp(u.host, good[i].host) && u.port == good[i].port && u.db == good[i].db, "%s: %s %u %u",
		      good[i].in, u.host, u.port, u.db);
		CHECK(!strcmp(u.user, good[i].user) && !strcmp(u.password, good[i].password), "%s: '%s' '%s'", good[i].in,
		      u.user, u.password);
		redisurl_safe(&u, safe, sizeof(safe));
		CHECK(!strcmp(safe, good[i].safe), "%s: %s", good[i].in, safe);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		CHECK(redisurl_parse(bad[i].in, &u, &why) == -1 && why && strstr(why, bad[i].why), "%s: %s", bad[i].in,
		      why ? why : "(accepted)");
	}
	/* over-long parts are refused, never cut */
	char big[700];
	memset(big, 'a', sizeof(big));
	memcpy(big, "redis://", 8);
	big[sizeof(big) - 1] = 0;
	CHECK(redisurl_parse(big, &u, &why) == -1 && strstr(why, "too long"), "long host: %s", why);
	memcpy(big, "redis://:", 9);
	memcpy(big + 400, "@h", 3);
	CHECK(redisurl_parse(big, &u, &why) == -1 && strstr(why, "too long"), "long password: %s", why);
	return test_report();
}

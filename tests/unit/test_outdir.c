/* test_outdir.c - unit tests for tools/outdir.c: names from a table (hosts, ports, IPv6, paths,
 * queries, fragments, dot segments, bytes to encode, long components cut and hashed against hashes
 * computed apart, the 3000-byte bound, bad URLs); the name invariants on seeded random URLs made of
 * nasty bytes; and files in a mkdtemp directory, for each way of keeping bodies in progress: numbered
 * collisions, a restarted body, aborts and failed commits that leave nothing, names taken by
 * directories, files and symbolic links, nasty URLs that must stay under DIR, numbers running out,
 * many bodies at once, write errors (/dev/full, RLIMIT_FSIZE) and outdir_open errors. */
#include "tools/outdir.h"
#include "tests/unit/test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[256];

static char *rep(char c, size_t n)
{
	static char bufs[4][4096];
	static int next;
	char *b = bufs[next++ % 4];
	if (n >= sizeof(bufs[0]))
		abort();
	memset(b, c, n);
	b[n] = '\0';
	return b;
}

/* ---- names ---- */

struct name_case {
	const char *url;
	const char *want; /* NULL: fails with rc */
	int rc;
};

static const struct name_case name_cases[] = {
	/* plain, directories, leaves */
	{"http://example.com/a/b/c.txt", "example.com/a/b/c.txt", 0},
	{"http://example.com/a/b/", "example.com/a/b/index.html", 0},
	{"http://example.com/", "example.com/index.html", 0},
	{"http://example.com", "example.com/index.html", 0},
	{"http://example.com/index.html", "example.com/index.html", 0},
	/* queries and fragments */
	{"http://example.com/a?b=1", "example.com/a%3Fb=1", 0},
	{"http://example.com/a?b=1&c=/d e?f", "example.com/a%3Fb=1&c=%2Fd%20e%3Ff", 0},
	{"http://example.com/a?", "example.com/a%3F", 0},
	{"http://example.com/d/?x=1", "example.com/d/index.html%3Fx=1", 0},
	{"http://example.com?q", "example.com/index.html%3Fq", 0},
	{"http://example.com/a#frag", "example.com/a", 0},
	{"http://example.com/a?q#f?g/h", "example.com/a%3Fq", 0},
	{"http://example.com#f", "example.com/index.html", 0},
	{"http://example.com/a#", "example.com/a", 0},
	{"http://example.com/a/#/x/../..", "example.com/a/index.html", 0},
	/* ports */
	{"http://h:80/x", "h/x", 0},
	{"http://h:0080/x", "h/x", 0},
	{"http://h:/x", "h/x", 0},
	{"http://h:443/x", "h_443/x", 0},
	{"https://h:443/x", "h/x", 0},
	{"https://h:80/x", "h_80/x", 0},
	{"http://127.0.0.1:8080/", "127.0.0.1_8080/index.html", 0},
	{"https://h:65535", "h_65535/index.html", 0},
	{"http://h:1?q", "h_1/index.html%3Fq", 0},
	/* hosts: case, userinfo, IPv6, odd bytes */
	{"HTTP://Example.COM/A/B", "example.com/A/B", 0},
	{"hTtPs://WWW.X.org", "www.x.org/index.html", 0},
	{"http://user:pass@h/x", "h/x", 0},
	{"http://a@b@h:81/x", "h_81/x", 0},
	{"http://[::1]/x", "[--1]/x", 0},
	{"http://[::1]:8080/x", "[--1]_8080/x", 0},
	{"https://[FE80::A:B]:443/", "[fe80--a-b]/index.html", 0},
	{"http://[::ffff:1.2.3.4]/", "[--ffff-1.2.3.4]/index.html", 0},
	{"http://[a-b]/", "[a%2Db]/index.html", 0},
	{"http://[v1.x]/", "[v1.x]/index.html", 0},
	{"http://..:8080/x", "%2E%2E_8080/x", 0},
	{"http://./x", "%2E/x", 0},
	{"http://.h/x", "%2Eh/x", 0},
	{"http://h%41/x", "h%41/x", 0},
	{"http://a\\b/x", "a%5Cb/x", 0},
	{"http://my_host/x", "my_host/x", 0},
	/* dot segments, empty segments, leading dots */
	{"http://h/..", "h/%2E%2E", 0},
	{"http://h/.", "h/%2E", 0},
	{"http://h/../../etc/passwd", "h/%2E%2E/%2E%2E/etc/passwd", 0},
	{"http://h/a/./b", "h/a/%2E/b", 0},
	{"http://h/a/../b", "h/a/%2E%2E/b", 0},
	{"http://h/a/..?x", "h/a/%2E%2E%3Fx", 0},
	{"http://h/...", "h/%2E..", 0},
	{"http://h/.htaccess", "h/%2Ehtaccess", 0},
	{"http://h/.git/config", "h/%2Egit/config", 0},
	{"http://h/a.b./c.", "h/a.b./c.", 0},
	{"http://h/a//b", "h/a/%empty/b", 0},
	{"http://h//b", "h/%empty/b", 0},
	{"http://h//", "h/%empty/index.html", 0},
	{"http://h/a///", "h/a/%empty/%empty/index.html", 0},
	{"http://h/%2e%2e/x", "h/%2e%2e/x", 0},
	{"http://h/x?..", "h/x%3F..", 0},
	{"http://h/?.", "h/index.html%3F.", 0},
	/* bytes to encode, escapes kept or not */
	{"http://h/a b", "h/a%20b", 0},
	{"http://h/\"<>\\^`{|}[]", "h/%22%3C%3E%5C%5E%60%7B%7C%7D%5B%5D", 0},
	{"http://h/\x01\x1f\x7f\t\r\n", "h/%01%1F%7F%09%0D%0A", 0},
	{"http://h/caf\xc3\xa9/\xff", "h/caf%C3%A9/%FF", 0},
	{"http://h/A-Za-z0-9._~!$&'()*+,;=:@", "h/A-Za-z0-9._~!$&'()*+,;=:@", 0},
	{"http://h/%41%2f%2F%zz%4%", "h/%41%2f%2F%25zz%254%25", 0},
	{"http://h/a%", "h/a%25", 0},
	{"http://h/a?%", "h/a%3F%25", 0},
	{"http://h/a%2", "h/a%252", 0},
	{"http://h/%empty", "h/%25empty", 0},
	/* errors */
	{"ftp://h/x", NULL, -EINVAL},
	{"mailto:a@b", NULL, -EINVAL},
	{"file:///etc/passwd", NULL, -EINVAL},
	{"httpx://h/", NULL, -EINVAL},
	{"http:/h/x", NULL, -EINVAL},
	{"http:h", NULL, -EINVAL},
	{"http", NULL, -EINVAL},
	{"", NULL, -EINVAL},
	{"//h/x", NULL, -EINVAL},
	{"http://", NULL, -EINVAL},
	{"http:///x", NULL, -EINVAL},
	{"http://u@/x", NULL, -EINVAL},
	{"http://:80/x", NULL, -EINVAL},
	{"http://h:0/", NULL, -EINVAL},
	{"http://h:65536/", NULL, -EINVAL},
	{"http://h:99999999999999999999/", NULL, -EINVAL},
	{"http://h:8a/", NULL, -EINVAL},
	{"http://h:-1/", NULL, -EINVAL},
	{"http://[::1/x", NULL, -EINVAL},
	{"http://[]/x", NULL, -EINVAL},
	{"http://[::1]x/", NULL, -EINVAL},
	{"http://[::1]:x/", NULL, -EINVAL},
	{" http://h/", NULL, -EINVAL},
};

static void test_name_table(void)
{
	char out[OUTDIR_NAME_SIZE];
	for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		const struct name_case *c = &name_cases[i];
		memset(out, 'X', sizeof(out));
		int rc = outdir_name(c->url, strlen(c->url), out, sizeof(out));
		if (c->want)
			CHECK(rc == 0 && strcmp(out, c->want) == 0, "%s: rc %d, got \"%s\", want \"%s\"", c->url, rc,
			      rc == 0 ? out : "", c->want);
		else
			CHECK(rc == c->rc && out[0] == '\0', "%s: rc %d, want %d", c->url, rc, c->rc);
	}
	/* url_len, not NUL: a NUL byte is encoded, bytes past url_len are not read */
	static const char nul[] = "http://h/a\0b?c";
	CHECK(outdir_name(nul, sizeof(nul) - 1, out, sizeof(out)) == 0 && strcmp(out, "h/a%00b%3Fc") == 0,
	      "got %s", out);
	CHECK(outdir_name("http://h/abc", 10, out, sizeof(out)) == 0 && strcmp(out, "h/a") == 0, "got %s", out);
	CHECK(outdir_name("http://h/abc", 8, out, sizeof(out)) == 0 && strcmp(out, "h/index.html") == 0,
	      "got %s", out);
	CHECK(outdir_name("http://h/abc", 7, out, sizeof(out)) == -EINVAL, "empty host");
}

/* Components longer than 200 bytes: cut, "-", FNV-1a 64 of the whole encoded component (the hashes
 * here were computed with a separate implementation). */
static void test_name_long(void)
{
	char url[8192], want[8192], out[OUTDIR_NAME_SIZE];
	snprintf(url, sizeof(url), "http://h/%s", rep('a', 500));
	snprintf(want, sizeof(want), "h/%s-67481e160935e909", rep('a', 183));
	CHECK(outdir_name(url, strlen(url), out, sizeof(out)) == 0 && strcmp(out, want) == 0, "got %s", out);
	CHECK(outdir_name(url, strlen(url), out, sizeof(out)) == 0 && strcmp(out, want) == 0, "deterministic");

	snprintf(url, sizeof(url), "http://h/%s", rep('a', 200));
	snprintf(want, sizeof(want), "h/%s", rep('a', 200));
	CHECK(outdir_name(url, strlen(url), out, sizeof(out)) == 0 && strcmp(out, want) == 0, "200 kept");
	snprintf(url, sizeof(url), "http://h/%s/x", rep('a', 201));
	snprintf(want, sizeof(want), "h/%s-9a253eda0ce95884/x", rep('a', 183));
	CHECK(outdir_name(url, strlen(url), out, sizeof(out)) == 0 && strcmp(out, want) == 0, "got %s", out);

	/* a cut never keeps part of a %XX */
	snprintf(url, sizeof(url), "http://h/%s %s", rep('a', 182), rep('b', 400));
	snprintf(want, sizeof(want), "h/%s-2276453437387158", rep('a', 182));
	CHECK(outdir_name(url, strlen(url), out, sizeof(out)) == 0 && strcmp(out, want) == 0, "got %s", out);
	snprintf(url, sizeof(url), "http://h/%s %s", rep('a', 181), rep('b', 400));
	snprintf(want, sizeof(want), "h/%s-e6f801e4b214938d", rep('a', 181));
	CHECK(outdir_name(url, strlen(url), out, sizeof(out)) == 0 && strcmp(out, want) == 0, "got %s", out);

	/* the host component, port included; the leaf, query included */
	snprintf(url, sizeof(url), "http://%s:8080/x", rep('X', 250));
	snprintf(want, sizeof(want), "%s-f481a591e49adbf6/x", rep('x', 183));
	CHECK(outdir_name(url, strlen(url), out, sizeof(out)) == 0 && strcmp(out, want) == 0, "got %s", out);
	snprintf(url, sizeof(url), "http://h/d/leaf?q=%s", rep('v', 300));
	snprintf(want, sizeof(want), "h/d/leaf%%3Fq=%s-7bcc5a701008fa9b", rep('v', 174));
	CHECK(outdir_name(url, strlen(url), out, sizeof(out)) == 0 && strcmp(out, want) == 0, "got %s", out);
}

/* The whole name: 3000 bytes fit, 3001 do not; a small cap is -ENOBUFS. */
static void test_name_bounds(void)
{
	static char url[200000];
	char out[OUTDIR_NAME_SIZE];
	/* "h" + 14 x ("/" + 199) + ("/" + 198 + extra) */
	for (int extra = 0; extra <= 1; extra++) {
		size_t n = (size_t)snprintf(url, sizeof(url), "http://h");
		for (int i = 0; i < 14; i++)
			n += (size_t)snprintf(url + n, sizeof(url) - n, "/%s", rep('s', 199));
		n += (size_t)snprintf(url + n, sizeof(url) - n, "/%s", rep('t', 198 + (size_t)extra));
		int rc = outdir_name(url, n, out, sizeof(out));
		if (extra == 0)
			CHECK(rc == 0 && strlen(out) == OUTDIR_REL_MAX, "rc %d len %zu", rc, strlen(out));
		else
			CHECK(rc == -ENAMETOOLONG && out[0] == '\0', "rc %d", rc);
	}
	size_t n = (size_t)snprintf(url, sizeof(url), "http://h");
	for (int i = 0; i < 20; i++)
		n += (size_t)snprintf(url + n, sizeof(url) - n, "/%s", rep('s', 190));
	CHECK(outdir_name(url, n, out, sizeof(out)) == -ENAMETOOLONG, "20 x 190");
	/* 150 KB of bytes to encode: one component, cut (61 whole "%20"); 30000 components: too long */
	n = (size_t)snprintf(url, sizeof(url), "http://h/");
	memset(url + n, ' ', 150000);
	CHECK(outdir_name(url, n + 150000, out, sizeof(out)) == 0 && strlen(out) == 2 + 183 + 17 &&
		      strncmp(out + 2 + 180, "%20-", 4) == 0,
	      "150 KB: %s", out);
	n = (size_t)snprintf(url, sizeof(url), "http://h/");
	for (int i = 0; i < 30000; i++)
		memcpy(url + n + 2 * (size_t)i, " /", 2);
	CHECK(outdir_name(url, n + 60000, out, sizeof(out)) == -ENAMETOOLONG, "30000 components");

	char small[12];
	memset(small, 'X', sizeof(small));
	CHECK(outdir_name("http://h/abcdefghij", 19, small, sizeof(small)) == -ENOBUFS && small[0] == '\0',
	      "cap 12, 12 bytes");
	CHECK(outdir_name("http://h/abcdefghi", 18, small, sizeof(small)) == 0 && strcmp(small, "h/abcdefghi") == 0,
	      "cap 12, 11 bytes: %s", small);
	CHECK(outdir_name("http://h/", 9, small, 0) == -ENOBUFS, "cap 0");
}

/* Every name of seeded random URLs: printable ASCII; components of allowed bytes and whole %XX, at
 * most 200 bytes, never "", "." or "..", never starting with '.'; or -EINVAL/-ENAMETOOLONG. */
static void test_name_invariants(void)
{
	static const char alphabet[] = "./%?#[]:@\\ aAzZ09-_%2e%2E\x00\x01\x7f\x80\xff";
	uint64_t seed = 0x5eed;
	char url[512], out[OUTDIR_NAME_SIZE];
	int bad = 0, named = 0;
	for (int iter = 0; iter < 200000; iter++) {
		size_t n = (size_t)snprintf(url, sizeof(url), "%s", (iter & 1) ? "http://" : "HTTPS://");
		size_t len = n + test_rng(&seed) % 60;
		while (n < len)
			url[n++] = alphabet[test_rng(&seed) % (sizeof(alphabet) - 1)];
		int rc = outdir_name(url, n, out, sizeof(out));
		if (rc != 0) {
			if (rc != -EINVAL && rc != -ENAMETOOLONG)
				bad++;
			continue;
		}
		named++;
		for (const char *c = out, *e;; c = e + 1) {
			e = strchr(c, '/');
			if (!e)
				e = c + strlen(c);
			size_t cl = (size_t)(e - c);
			if (cl == 0 || cl > OUTDIR_COMPONENT_MAX || c[0] == '.')
				bad++;
			bool empty_mark = cl == 6 && memcmp(c, "%empty", 6) == 0;
			for (size_t i = 0; i < cl && !empty_mark; i++) {
				unsigned char ch = (unsigned char)c[i];
				if (ch <= 0x20 || ch >= 0x7f || strchr("\"<>\\^`{|}#?", ch))
					bad++;
				if (ch == '%' && !(i + 2 < cl && strchr("0123456789abcdefABCDEF", c[i + 1]) &&
						   strchr("0123456789abcdefABCDEF", c[i + 2])))
					bad++;
				if ((ch == '[' || ch == ']') && c != out)
					bad++;
			}
			if (!*e)
				break;
		}
	}
	CHECK(bad == 0, "%d violations", bad);
	CHECK(named > 50000, "only %d names", named);
}

/* ---- files ---- */

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* Files under dir whose name starts with ".fetchctl-" (temporary or probe files), recursively. */
static int count_temps(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (strncmp(e->d_name, ".fetchctl-", 10) == 0)
			n++;
		if (e->d_type == DT_DIR) {
			char sub[PATH_MAX];
			snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
			n += count_temps(sub);
		}
	}
	closedir(d);
	return n;
}

static bool file_is(const char *path, const char *want)
{
	char buf[4096];
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	return n == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)n) == 0;
}

/* Store body for url; path gets the result. */
static int put(struct outdir *o, const char *url, const char *body, char *path, size_t cap)
{
	struct outdir_file f = {0};
	int rc = outdir_begin(o, &f);
	if (rc == 0)
		rc = outdir_write(&f, body, strlen(body));
	if (rc < 0) {
		outdir_abort(o, &f);
		return rc;
	}
	return outdir_commit(o, &f, url, strlen(url), path, cap);
}

static const char *mode_name(enum outdir_tmp m)
{
	return m == OUTDIR_TMP_FLINK ? "flink" : m == OUTDIR_TMP_PROC ? "proc" : "named";
}

/* base/MODE: DIR = base/MODE/out/sub (made by outdir_open), base/MODE/outside for a symlink. */
static void test_files_mode(enum outdir_tmp mode)
{
	char base[512], dir[600], outside[600], path[4096], want[4096], err[256], lnk[700];
	struct outdir o;
	const char *m = mode_name(mode);
	snprintf(base, sizeof(base), "%s/%s", tmp_dir, m);
	snprintf(dir, sizeof(dir), "%s/out/sub", base);
	snprintf(outside, sizeof(outside), "%s/outside", base);
	CHECK(mkdir(base, 0700) == 0 && mkdir(outside, 0700) == 0, "%s: mkdir", m);
	int rc = outdir_open(&o, dir, err, sizeof(err));
	CHECK(rc == 0, "%s: outdir_open: %s", m, err);
	if (rc < 0)
		return;
	o.tmp = mode;
	CHECK(count_entries(dir) == 0, "%s: the probe left %d entries", m, count_entries(dir));

	/* two URLs, one name: x, then x.1 */
	CHECK(put(&o, "http://h/x", "one", path, sizeof(path)) == 0, "%s: put", m);
	snprintf(want, sizeof(want), "%s/h/x", dir);
	CHECK(strcmp(path, want) == 0 && file_is(path, "one"), "%s: got %s", m, path);
	CHECK(put(&o, "https://H:443/x#y", "two", path, sizeof(path)) == 0, "%s: put", m);
	snprintf(want, sizeof(want), "%s/h/x.1", dir);
	CHECK(strcmp(path, want) == 0 && file_is(path, "two"), "%s: got %s", m, path);
	snprintf(want, sizeof(want), "%s/h/x", dir);
	CHECK(file_is(want, "one"), "%s: x kept", m);

	/* begin, write, begin again: only the second body */
	struct outdir_file f = {0};
	CHECK(outdir_begin(&o, &f) == 0 && outdir_write(&f, "first body, the longer one", 26) == 0, "%s", m);
	CHECK(f.bytes == 26, "%s: bytes %llu", m, (unsigned long long)f.bytes);
	CHECK(outdir_begin(&o, &f) == 0 && f.bytes == 0, "%s: restart", m);
	CHECK(outdir_write(&f, "sec", 3) == 0 && outdir_write(&f, "ond", 3) == 0, "%s", m);
	CHECK(outdir_commit(&o, &f, "http://h/r", 10, path, sizeof(path)) == 0, "%s: commit", m);
	CHECK(file_is(path, "second") && !f.open, "%s: %s", m, path);
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == (0666 & ~022u), "%s: mode %o", m,
	      (unsigned)st.st_mode & 0777);

	/* abort, and commits that fail, leave nothing */
	int before = count_entries(dir);
	CHECK(outdir_begin(&o, &f) == 0 && outdir_write(&f, "x", 1) == 0, "%s", m);
	outdir_abort(&o, &f);
	CHECK(!f.open && count_entries(dir) == before, "%s: abort left %d", m, count_entries(dir) - before);
	outdir_abort(&o, &f); /* idle: no-op */
	CHECK(outdir_begin(&o, &f) == 0, "%s", m);
	CHECK(outdir_commit(&o, &f, "ftp://h/x", 9, path, sizeof(path)) == -EINVAL && !f.open && path[0] == '\0',
	      "%s: ftp", m);
	CHECK(outdir_begin(&o, &f) == 0, "%s", m);
	CHECK(outdir_commit(&o, &f, "http://h/y", 10, path, 20) == -ENAMETOOLONG && !f.open, "%s: cap 20", m);
	CHECK(outdir_commit(&o, &f, "http://h/y", 10, path, sizeof(path)) == -EBADF, "%s: idle commit", m);
	CHECK(count_entries(dir) == before && count_temps(base) == 0, "%s: failed commits left files", m);

	/* a leaf taken by a directory, a directory taken by a file, by a symlink */
	CHECK(put(&o, "http://h/d/e", "e", path, sizeof(path)) == 0, "%s", m);
	CHECK(put(&o, "http://h/d", "d", path, sizeof(path)) == 0, "%s", m);
	snprintf(want, sizeof(want), "%s/h/d.1", dir);
	CHECK(strcmp(path, want) == 0 && file_is(path, "d"), "%s: got %s", m, path);
	CHECK(put(&o, "http://h/d/e2", "e2", path, sizeof(path)) == 0, "%s", m);
	snprintf(want, sizeof(want), "%s/h/d/e2", dir);
	CHECK(strcmp(path, want) == 0, "%s: got %s", m, path);
	CHECK(put(&o, "http://h/x/y", "xy", path, sizeof(path)) == 0, "%s", m); /* x and x.1 are files */
	snprintf(want, sizeof(want), "%s/h/x.2/y", dir);
	CHECK(strcmp(path, want) == 0 && file_is(path, "xy"), "%s: got %s", m, path);
	snprintf(lnk, sizeof(lnk), "%s/evil", dir);
	CHECK(symlink(outside, lnk) == 0, "%s: symlink", m);
	CHECK(put(&o, "http://evil/x", "not outside", path, sizeof(path)) == 0, "%s", m);
	snprintf(want, sizeof(want), "%s/evil.1/x", dir);
	CHECK(strcmp(path, want) == 0 && count_entries(outside) == 0, "%s: got %s", m, path);
	snprintf(lnk, sizeof(lnk), "%s/h/lnk", dir);
	CHECK(symlink(outside, lnk) == 0, "%s: symlink", m);
	CHECK(put(&o, "http://h/lnk", "leaf", path, sizeof(path)) == 0, "%s", m);
	snprintf(want, sizeof(want), "%s/h/lnk.1", dir);
	CHECK(strcmp(path, want) == 0 && count_entries(outside) == 0, "%s: got %s", m, path);

	/* nasty URLs stay under DIR, as regular files */
	static const char *const nasty[] = {
		"http://h/../../x", "http://h/..", "http://h/.", "http://../x", "http://..", "http://./..",
		"http://h/..%2F..%2Fx", "http://h/%2e%2e/%2E%2E/x", "http://h/.%2e/x", "http://h/a/..",
		"http://h/./../x?../..", "http://h/x?/../../y", "http://h/\\..\\..\\x", "http://h//../x",
		"http://u@..:81/..", "http://[..]/..", "http://h/...", "http://h/.../..", "http://h/%00/..",
		"http://h/%2F..%2F..", "http://h/a%2F..%2F..%2F..%2Fb", "http://%2E%2E/x", "http://h/~/x",
		"http://h/\n../x", "http://h/ ../x", "http://h/..;/x", "http://h/%/..", "http://h/.%00.",
	};
	char real_dir[PATH_MAX], real[PATH_MAX];
	CHECK(realpath(dir, real_dir) != NULL, "%s: realpath", m);
	size_t rl = strlen(real_dir);
	for (size_t i = 0; i < sizeof(nasty) / sizeof(nasty[0]); i++) {
		rc = put(&o, nasty[i], "nasty", path, sizeof(path));
		CHECK(rc == 0, "%s: %s: rc %d", m, nasty[i], rc);
		if (rc != 0)
			continue;
		CHECK(realpath(path, real) && strncmp(real, real_dir, rl) == 0 && real[rl] == '/' &&
			      lstat(path, &st) == 0 && S_ISREG(st.st_mode) && file_is(path, "nasty"),
		      "%s: %s -> %s", m, nasty[i], path);
	}
	CHECK(count_entries(outside) == 0 && count_entries(base) == 2, "%s: files outside DIR", m);

	/* many bodies in progress at once, committed in another order */
	enum { MANY = 64 };
	static struct outdir_file many[MANY];
	memset(many, 0, sizeof(many));
	for (int round = 0; round < 3; round++) /* interleaved writes; round 1 restarts every body */
		for (int i = 0; i < MANY; i++) {
			char b[32];
			if (round < 2)
				CHECK(outdir_begin(&o, &many[i]) == 0, "%s: begin %d", m, i);
			snprintf(b, sizeof(b), "%d.%d;", i, round);
			CHECK(outdir_write(&many[i], b, strlen(b)) == 0, "%s: write %d", m, i);
		}
	for (int k = 0; k < MANY; k++) {
		int i = (k * 37) % MANY;
		char url[64], b[64];
		snprintf(url, sizeof(url), "http://many/%d", i);
		snprintf(b, sizeof(b), "%d.1;%d.2;", i, i);
		CHECK(outdir_commit(&o, &many[i], url, strlen(url), path, sizeof(path)) == 0 && file_is(path, b),
		      "%s: many %d", m, i);
	}

	/* write errors */
	CHECK(outdir_write(&f, "x", 1) == -EBADF, "%s: idle write", m);
	CHECK(outdir_begin(&o, &f) == 0, "%s", m);
	int fd0 = f.fd;
	f.fd = open("/dev/full", O_WRONLY);
	CHECK(outdir_write(&f, "x", 1) == -ENOSPC, "%s: /dev/full", m);
	close(f.fd);
	f.fd = -1;
	CHECK(outdir_write(&f, "x", 1) == -EBADF, "%s: closed fd", m);
	f.fd = fd0;
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = 1000;
	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
		char big[1500];
		memset(big, 'b', sizeof(big));
		CHECK(outdir_write(&f, big, sizeof(big)) == -EFBIG && f.bytes == 1000, "%s: EFBIG after %llu", m,
		      (unsigned long long)f.bytes);
		setrlimit(RLIMIT_FSIZE, &old);
	}
	outdir_abort(&o, &f);

	/* the numbers run out: -EEXIST, and nothing left behind */
	if (mode == OUTDIR_TMP_NAMED) {
		char full[PATH_MAX];
		snprintf(full, sizeof(full), "%s/full", dir);
		mkdir(full, 0777);
		int dfd = open(full, O_PATH | O_DIRECTORY);
		for (unsigned n = 0; n <= OUTDIR_NUMBER_MAX; n++) {
			char name[32];
			snprintf(name, sizeof(name), n ? "f.%u" : "f", n);
			close(openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL, 0666));
		}
		close(dfd);
		before = count_entries(full);
		rc = put(&o, "http://full/f", "no room", path, sizeof(path));
		CHECK(rc == -EEXIST && count_entries(full) == before && count_temps(base) == 0, "%s: rc %d", m, rc);
	}

	CHECK(count_temps(base) == 0, "%s: temporary files left", m);
	outdir_close(&o);
	outdir_close(&o); /* closed: no-op */
}

/* outdir_open: made with parents, a trailing '/', errors. */
static void test_open(void)
{
	char dir[600], path[4096], want[4096], err[256];
	struct outdir o, zero = {0};
	outdir_close(&zero); /* zeroed: no-op */

	snprintf(dir, sizeof(dir), "%s/open/a//b/", tmp_dir);
	CHECK(outdir_open(&o, dir, err, sizeof(err)) == 0, "%s", err);
	CHECK(put(&o, "http://h:8080/p/q", "q", path, sizeof(path)) == 0, "put");
	snprintf(want, sizeof(want), "%sh_8080/p/q", dir);
	CHECK(strcmp(path, want) == 0 && file_is(path, "q"), "got %s", path);
	outdir_close(&o);

	snprintf(dir, sizeof(dir), "%s/open/file", tmp_dir);
	close(open(dir, O_WRONLY | O_CREAT, 0666));
	err[0] = '\0';
	CHECK(outdir_open(&o, dir, err, sizeof(err)) == -ENOTDIR && strstr(err, dir) && o.dir == NULL, "%s", err);
	outdir_close(&o);
	snprintf(dir, sizeof(dir), "%s/open/file/sub", tmp_dir);
	CHECK(outdir_open(&o, dir, err, sizeof(err)) == -ENOTDIR && strstr(err, "mkdir"), "%s", err);
	CHECK(outdir_open(&o, "", err, sizeof(err)) == -EINVAL, "empty");
	if (geteuid() != 0) {
		snprintf(dir, sizeof(dir), "%s/open/ro", tmp_dir);
		mkdir(dir, 0555);
		CHECK(outdir_open(&o, dir, err, sizeof(err)) == -EACCES, "read-only: %s", err);
	}
}

static int count_fds(void)
{
	return count_entries("/proc/self/fd");
}

static void rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		for (struct dirent *e; d && (e = readdir(d));) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char sub[PATH_MAX];
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			rm_rf(sub);
		}
		if (d)
			closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

int main(void)
{
	test_name_table();
	test_name_long();
	test_name_bounds();
	test_name_invariants();

	const char *t = getenv("TMPDIR");
	snprintf(tmp_dir, sizeof(tmp_dir), "%s/test_outdir.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmp_dir)) {
		perror("mkdtemp");
		return 1;
	}
	umask(022);
	int fds = count_fds();
	struct outdir o;
	char err[256];
	int rc = outdir_open(&o, tmp_dir, err, sizeof(err));
	CHECK(rc == 0, "%s", err);
	enum outdir_tmp probed = rc == 0 ? o.tmp : OUTDIR_TMP_NAMED;
	outdir_close(&o);
	printf("bodies in progress here: %s\n", mode_name(probed));
	if (probed == OUTDIR_TMP_FLINK)
		test_files_mode(OUTDIR_TMP_FLINK);
	if (probed != OUTDIR_TMP_NAMED && access("/proc/self/fd", X_OK) == 0)
		test_files_mode(OUTDIR_TMP_PROC);
	test_files_mode(OUTDIR_TMP_NAMED);
	test_open();
	CHECK(count_fds() == fds, "%d fds before, %d after", fds, count_fds());
	rm_rf(tmp_dir);
	return test_report();
}

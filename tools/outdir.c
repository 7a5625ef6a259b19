/* outdir.c - fetchctl --output-dir (outdir.h): the name of a body's file from its URL (a small URL
 * splitter of its own, components encoded and bounded), bodies in progress as unnamed or hidden
 * files in DIR, and commits that create the name's directories and never overwrite anything. */
#include "tools/outdir.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OUTDIR_CUT_BYTES 183      /* what a cut component keeps before "-" + hash */
#define OUTDIR_TMP_TRIES 100      /* random names tried for a named temporary file */
#define FNV64_OFFSET 0xcbf29ce484222325ULL
#define FNV64_PRIME 0x100000001b3ULL

/* ---- the URL splitter ---- */

struct outdir_url {
	const char *host; /* as written, brackets of an IPv6 literal included */
	size_t host_len;
	unsigned port;    /* 0: the scheme's default */
	const char *path; /* "" or starting with '/' */
	size_t path_len;
	const char *query; /* after '?', when has_query */
	size_t query_len;
	bool has_query;
};

static bool outdir_prefix_ci(const char *p, size_t n, const char *lower)
{
	size_t k = strlen(lower);
	if (n < k)
		return false;
	for (size_t i = 0; i < k; i++) {
		char c = p[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != lower[i])
			return false;
	}
	return true;
}

/* scheme://[userinfo@]host[:port][/path][?query][#fragment], scheme http or https (any case). */
static int outdir_split(const char *url, size_t len, struct outdir_url *u)
{
	unsigned dflt;
	size_t i;
	if (outdir_prefix_ci(url, len, "http://"))
		dflt = 80, i = 7;
	else if (outdir_prefix_ci(url, len, "https://"))
		dflt = 443, i = 8;
	else
		return -EINVAL;
	size_t a = i; /* the authority is [a, e) */
	while (i < len && url[i] != '/' && url[i] != '?' && url[i] != '#')
		i++;
	size_t e = i;
	for (size_t k = a; k < e; k++)
		if (url[k] == '@')
			a = k + 1;
	size_t h = a, he; /* the host is [h, he) */
	if (h < e && url[h] == '[') {
		const char *rb = memchr(url + h, ']', e - h);
		if (!rb || rb == url + h + 1)
			return -EINVAL;
		he = (size_t)(rb - url) + 1;
		if (he < e && url[he] != ':')
			return -EINVAL;
	} else {
		const char *colon = memchr(url + h, ':', e - h);
		he = colon ? (size_t)(colon - url) : e;
	}
	if (he == h)
		return -EINVAL;
	unsigned port = 0;
	if (he < e) { /* ':' then digits; none: the default */
		if (he + 1 == e)
			port = dflt;
		for (size_t k = he + 1; k < e; k++) {
			if (url[k] < '0' || url[k] > '9')
				return -EINVAL;
			port = port * 10 + (unsigned)(url[k] - '0');
			if (port > 65535)
				return -EINVAL;
		}
		if (port == 0)
			return -EINVAL;
	}
	u->host = url + h, u->host_len = he - h;
	u->port = port == dflt ? 0 : port;
	u->path = url + e;
	while (i < len && url[i] != '?' && url[i] != '#')
		i++;
	u->path_len = (size_t)(url + i - u->path);
	u->has_query = i < len && url[i] == '?';
	u->query = url + i + u->has_query;
	if (u->has_query)
		while (++i < len && url[i] != '#')
			;
	u->query_len = u->has_query ? (size_t)(url + i - u->query) : 0;
	return 0;
}

/* ---- components ---- */

/* One component being encoded: the first bytes kept, the length and hash of all of them. */
struct outdir_comp {
	char buf[OUTDIR_COMPONENT_MAX + 1];
	size_t len;
	uint64_t hash;
};

/* The name being built: everything counted, bytes stored while they fit cap - 1. */
struct outdir_out {
	char *p;
	size_t cap, len;
};

static void comp_init(struct outdir_comp *c)
{
	c->len = 0;
	c->hash = FNV64_OFFSET;
}

static void comp_put(struct outdir_comp *c, char ch)
{
	c->hash = (c->hash ^ (uint8_t)ch) * FNV64_PRIME;
	if (c->len < sizeof(c->buf))
		c->buf[c->len] = ch;
	c->len++;
}

static void comp_str(struct outdir_comp *c, const char *s)
{
	while (*s)
		comp_put(c, *s++);
}

static void comp_escape(struct outdir_comp *c, uint8_t b)
{
	static const char hex[] = "0123456789ABCDEF";
	comp_put(c, '%');
	comp_put(c, hex[b >> 4]);
	comp_put(c, hex[b & 15]);
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* [A-Za-z0-9._~!$&'()*+,;=:@-]: kept as is ('%' is decided apart). */
static bool is_kept(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("._~!$&'()*+,;=:@-", c));
}

enum { ENC_PATH, ENC_QUERY, ENC_HOST };

/* Bytes of a segment, query or host, encoded (see outdir.h). */
static void comp_encode(struct outdir_comp *c, const char *p, size_t n, int kind)
{
	bool v6 = kind == ENC_HOST && n >= 2 && p[0] == '[';
	if (kind != ENC_QUERY && n == 2 && p[0] == '.' && p[1] == '.') {
		comp_str(c, "%2E%2E");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (kind == ENC_HOST && ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (v6 && (i == 0 || i == n - 1))
			comp_put(c, ch); /* the brackets */
		else if (v6 && ch == ':')
			comp_put(c, '-');
		else if (v6 && ch == '-')
			comp_escape(c, '-');
		else if (i == 0 && ch == '.' && kind != ENC_QUERY)
			comp_escape(c, '.');
		else if (ch == '%' ? i + 2 < n && is_hex(p[i + 1]) && is_hex(p[i + 2]) : is_kept(ch))
			comp_put(c, ch);
		else
			comp_escape(c, (uint8_t)ch);
	}
}

static void out_put(struct outdir_out *o, const char *s, size_t n)
{
	if (o->len < o->cap && n < o->cap - o->len)
		memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* The component into the name, cut and hashed when longer than OUTDIR_COMPONENT_MAX. */
static void comp_finish(struct outdir_comp *c, struct outdir_out *o)
{
	if (c->len <= OUTDIR_COMPONENT_MAX) {
		out_put(o, c->buf, c->len);
		return;
	}
	size_t cut = OUTDIR_CUT_BYTES; /* a '%' starts a whole %XX: never keep a part of one */
	if (c->buf[cut - 1] == '%')
		cut -= 1;
	else if (c->buf[cut - 2] == '%')
		cut -= 2;
	char tail[18];
	snprintf(tail, sizeof(tail), "-%016" PRIx64, c->hash);
	out_put(o, c->buf, cut);
	out_put(o, tail, 17);
}

int outdir_name(const char *url, size_t url_len, char *out, size_t cap)
{
	struct outdir_url u;
	struct outdir_comp c;
	struct outdir_out o = {out, cap, 0};
	if (cap > 0)
		out[0] = '\0';
	int rc = outdir_split(url, url_len, &u);
	if (rc < 0)
		return rc;
	comp_init(&c);
	comp_encode(&c, u.host, u.host_len, ENC_HOST);
	if (u.port) {
		char port[8];
		snprintf(port, sizeof(port), "_%u", u.port);
		comp_str(&c, port);
	}
	comp_finish(&c, &o);
	const char *p = u.path, *end = u.path + u.path_len;
	if (p < end && *p == '/')
		p++;
	for (;;) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		const char *se = slash ? slash : end;
		comp_init(&c);
		if (slash && se == p)
			comp_str(&c, "%empty");
		else if (!slash && se == p)
			comp_str(&c, "index.html");
		else
			comp_encode(&c, p, (size_t)(se - p), ENC_PATH);
		if (!slash && u.has_query) {
			comp_str(&c, "%3F");
			comp_encode(&c, u.query, u.query_len, ENC_QUERY);
		}
		out_put(&o, "/", 1);
		comp_finish(&c, &o);
		if (!slash)
			break;
		p = slash + 1;
	}
	if (o.len > OUTDIR_REL_MAX || o.len >= cap) {
		if (cap > 0)
			out[0] = '\0';
		return o.len > OUTDIR_REL_MAX ? -ENAMETOOLONG : -ENOBUFS;
	}
	out[o.len] = '\0';
	return 0;
}

/* ---- files ---- */

static uint64_t outdir_rand(struct outdir *o)
{
	uint64_t x = o->rng; /* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	o->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Give the body in progress the name `name` in the directory parent, never replacing anything:
 * -EEXIST when the name is taken. */
static int outdir_link(struct outdir *o, struct outdir_file *f, int parent, const char *name)
{
	if (!f->named && o->tmp == OUTDIR_TMP_FLINK)
		return linkat(f->fd, "", parent, name, AT_EMPTY_PATH) == 0 ? 0 : -errno;
	if (!f->named) {
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", f->fd);
		return linkat(AT_FDCWD, proc, parent, name, AT_SYMLINK_FOLLOW) == 0 ? 0 : -errno;
	}
	if (renameat2(o->dirfd, f->tmp_name, parent, name, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	if (linkat(o->dirfd, f->tmp_name, parent, name, 0) < 0) /* no RENAME_NOREPLACE here */
		return -errno;
	if (unlinkat(o->dirfd, f->tmp_name, 0) < 0) {
		int rc = -errno;
		unlinkat(parent, name, 0);
		return rc;
	}
	return 0;
}

/* A new body file in f (idle before, busy after) or -errno. */
static int outdir_create(struct outdir *o, struct outdir_file *f)
{
	f->named = o->tmp == OUTDIR_TMP_NAMED;
	if (!f->named) {
		f->fd = openat(o->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
		if (f->fd < 0)
			return -errno;
	} else {
		for (int i = 0;; i++) {
			snprintf(f->tmp_name, sizeof(f->tmp_name), ".fetchctl-tmp-%012" PRIx64,
				 outdir_rand(o) >> 16);
			f->fd = openat(o->dirfd, f->tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				       0666);
			if (f->fd >= 0)
				break;
			if (errno != EEXIST || i + 1 == OUTDIR_TMP_TRIES)
				return -errno;
		}
	}
	f->open = true;
	f->bytes = 0;
	return 0;
}

/* Which way of keeping bodies works in DIR: an O_TMPFILE file linked, both ways, under a probe name. */
static enum outdir_tmp outdir_probe(struct outdir *o)
{
	static const enum outdir_tmp ways[] = {OUTDIR_TMP_FLINK, OUTDIR_TMP_PROC};
	struct outdir_file f = {0};
	o->tmp = OUTDIR_TMP_FLINK;
	if (outdir_create(o, &f) < 0)
		return OUTDIR_TMP_NAMED;
	enum outdir_tmp found = OUTDIR_TMP_NAMED;
	for (size_t w = 0; w < sizeof(ways) / sizeof(ways[0]) && found == OUTDIR_TMP_NAMED; w++) {
		o->tmp = ways[w];
		for (int i = 0; i < 4; i++) {
			char name[40];
			snprintf(name, sizeof(name), ".fetchctl-probe-%012" PRIx64, outdir_rand(o) >> 16);
			int rc = outdir_link(o, &f, o->dirfd, name);
			if (rc == 0) {
				unlinkat(o->dirfd, name, 0);
				found = ways[w];
			}
			if (rc != -EEXIST)
				break;
		}
	}
	close(f.fd);
	return found;
}

/* mkdir path, fine when it exists as a directory. */
static int outdir_mkdir(const char *path)
{
	struct stat st;
	if (mkdir(path, 0777) == 0 || errno == EEXIST)
		return 0;
	int rc = -errno;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : rc;
}

int outdir_open(struct outdir *o, const char *dir, char *err, size_t errlen)
{
	memset(o, 0, sizeof(*o));
	o->dirfd = -1;
	if (!dir || !*dir) {
		snprintf(err, errlen, "output directory: empty path");
		return -EINVAL;
	}
	char *p = strdup(dir);
	if (!p) {
		snprintf(err, errlen, "output directory %s: %s", dir, strerror(ENOMEM));
		return -ENOMEM;
	}
	int rc = 0;
	for (char *s = p + 1; *s && rc == 0; s++) { /* mkdir -p */
		if (*s == '/' && s[-1] != '/') {
			*s = '\0';
			rc = outdir_mkdir(p);
			if (rc < 0)
				snprintf(err, errlen, "output directory %s: mkdir %s: %s", dir, p, strerror(-rc));
			*s = '/';
		}
	}
	if (rc == 0 && (rc = outdir_mkdir(p)) < 0)
		snprintf(err, errlen, "output directory %s: mkdir: %s", dir, strerror(-rc));
	if (rc == 0 && (o->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = -errno;
		snprintf(err, errlen, "output directory %s: %s", dir, strerror(-rc));
	}
	if (rc == 0 && faccessat(o->dirfd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
		rc = -errno;
		snprintf(err, errlen, "output directory %s: %s", dir, strerror(-rc));
	}
	if (rc < 0) {
		if (o->dirfd >= 0)
			close(o->dirfd);
		o->dirfd = -1;
		free(p);
		return rc;
	}
	o->dir = p; /* dir again: every '/' is back */
	if (getrandom(&o->rng, sizeof(o->rng), GRND_NONBLOCK) != sizeof(o->rng))
		o->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)o;
	o->rng |= 1;
	o->tmp = outdir_probe(o);
	return 0;
}

int outdir_begin(struct outdir *o, struct outdir_file *f)
{
	if (!f->open)
		return outdir_create(o, f);
	if (ftruncate(f->fd, 0) < 0)
		return -errno;
	f->bytes = 0;
	return 0;
}

int outdir_write(struct outdir_file *f, const void *p, size_t n)
{
	const char *b = p;
	if (!f->open)
		return -EBADF;
	while (n > 0) {
		ssize_t w = pwrite(f->fd, b, n, (off_t)f->bytes);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		b += w, n -= (size_t)w, f->bytes += (uint64_t)w;
	}
	return 0;
}

void outdir_abort(struct outdir *o, struct outdir_file *f)
{
	if (!f->open)
		return;
	if (f->named)
		unlinkat(o->dirfd, f->tmp_name, 0);
	if (f->fd >= 0)
		close(f->fd);
	f->open = false;
	f->fd = -1;
}

/* name (len bytes), then ".N" when n > 0, into buf (room for a component and ".9999"). */
static void outdir_numbered(char *buf, size_t cap, const char *name, size_t len, unsigned n)
{
	if (n == 0)
		snprintf(buf, cap, "%.*s", (int)len, name);
	else
		snprintf(buf, cap, "%.*s.%u", (int)len, name, n);
}

/* Append s to the path being reported; -ENAMETOOLONG when it does not fit. */
static int outdir_path_add(char *path, size_t cap, size_t *len, const char *s)
{
	size_t n = strlen(s);
	if (n >= cap - *len)
		return -ENAMETOOLONG;
	memcpy(path + *len, s, n + 1);
	*len += n;
	return 0;
}

/* The directory component name (len bytes) in parent, made if missing, or the first NAME.N that is or
 * can be a directory; its fd (O_PATH) in *fd, its name added to path. */
static int outdir_enter(int parent, const char *name, size_t len, int *fd, char *path, size_t cap,
			size_t *plen)
{
	char buf[OUTDIR_COMPONENT_MAX + 16];
	for (unsigned n = 0; n <= OUTDIR_NUMBER_MAX; n++) {
		outdir_numbered(buf, sizeof(buf), name, len, n);
		if (mkdirat(parent, buf, 0777) < 0 && errno != EEXIST)
			return -errno;
		*fd = openat(parent, buf, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (*fd >= 0) {
			int rc = outdir_path_add(path, cap, plen, buf);
			if (rc == 0)
				rc = outdir_path_add(path, cap, plen, "/");
			if (rc < 0)
				close(*fd);
			return rc;
		}
		if (errno != ENOTDIR && errno != ELOOP && errno != ENOENT) /* taken (or just removed) */
			return -errno;
	}
	return -EEXIST;
}

/* The body under leaf (len bytes) in parent, or the first free LEAF.N; the name added to path. */
static int outdir_place(struct outdir *o, struct outdir_file *f, int parent, const char *leaf, size_t len,
			char *path, size_t cap, size_t *plen)
{
	char buf[OUTDIR_COMPONENT_MAX + 16];
	if (f->named) {
		int fd = f->fd;
		f->fd = -1;
		if (close(fd) < 0 && errno != EINTR) /* a late write error */
			return -errno;
	}
	for (unsigned n = 0; n <= OUTDIR_NUMBER_MAX; n++) {
		size_t keep = *plen;
		outdir_numbered(buf, sizeof(buf), leaf, len, n);
		int rc = outdir_path_add(path, cap, plen, buf);
		if (rc == 0)
			rc = outdir_link(o, f, parent, buf);
		if (rc == -EEXIST) {
			*plen = keep;
			continue;
		}
		if (rc < 0)
			return rc;
		if (!f->named) {
			int fd = f->fd;
			f->fd = -1;
			if (close(fd) < 0 && errno != EINTR) {
				rc = -errno;
				unlinkat(parent, buf, 0);
				return rc;
			}
		}
		f->named = false; /* nothing left to remove */
		return 0;
	}
	return -EEXIST;
}

int outdir_commit(struct outdir *o, struct outdir_file *f, const char *url, size_t url_len, char *path_out,
		  size_t cap)
{
	char name[OUTDIR_NAME_SIZE];
	if (!f->open)
		return -EBADF;
	if (cap > 0)
		path_out[0] = '\0';
	int rc = outdir_name(url, url_len, name, sizeof(name));
	size_t plen = 0;
	if (rc == 0)
		rc = outdir_path_add(path_out, cap, &plen, o->dir);
	if (rc == 0 && plen > 0 && path_out[plen - 1] != '/')
		rc = outdir_path_add(path_out, cap, &plen, "/");
	int cur = o->dirfd;
	const char *c = name;
	for (const char *slash; rc == 0 && (slash = strchr(c, '/')); c = slash + 1) {
		int next = -1;
		rc = outdir_enter(cur, c, (size_t)(slash - c), &next, path_out, cap, &plen);
		if (rc == 0) {
			if (cur != o->dirfd)
				close(cur);
			cur = next;
		}
	}
	if (rc == 0)
		rc = outdir_place(o, f, cur, c, strlen(c), path_out, cap, &plen);
	if (cur != o->dirfd)
		close(cur);
	outdir_abort(o, f);
	if (rc < 0 && cap > 0)
		path_out[0] = '\0';
	return rc;
}

void outdir_close(struct outdir *o)
{
	if (!o->dir)
		return;
	close(o->dirfd);
	free(o->dir);
	o->dir = NULL;
	o->dirfd = -1;
}

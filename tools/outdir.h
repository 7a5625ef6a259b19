/* outdir.h - fetchctl --output-dir: each successful body is stored in a file under DIR, at a name made
 * from its URL (wget -x style, host directories), without ever overwriting a file.
 *
 * Names (outdir_name, pure). An http or https URL becomes the relative path HOST[_PORT]/SEG/.../LEAF:
 *   - HOST is the host as written in the URL, ASCII letters lowercased, userinfo dropped. An IPv6
 *     literal keeps its brackets, its ':' become '-' (and a '-' of its own would be "%2D"):
 *     [::1] -> "[--1]". A port other than the scheme's default (80 http, 443 https) is appended as
 *     "_PORT" in decimal: "127.0.0.1_8080". The scheme is not in the name: http and https of one host
 *     share a directory (a clash is numbered, see below).
 *   - The path is split at '/'. Each segment is kept as sent, except that every byte outside
 *     [A-Za-z0-9._~!$&'()*+,;=:@%-], and a '%' not followed by two hex digits, becomes %XX (uppercase
 *     hex). A leading '.' becomes "%2E" (so "." -> "%2E", ".." -> "%2E%2E", ".x" -> "%2Ex": no dot
 *     segments, no hidden files); an empty segment ("a//b", "//b") becomes "%empty", a name no URL
 *     segment can produce (its '%' starts no %XX).
 *   - LEAF is the last segment, or "index.html" when the path is empty or ends in '/'. A query,
 *     even an empty one, is appended to it as "%3F" + the query encoded as above ('/' -> "%2F"):
 *     "/a?b=1" -> "a%3Fb=1". The fragment is dropped.
 *   - Every component (the host one included) holds at most OUTDIR_COMPONENT_MAX bytes: a longer one
 *     is cut to its first 183 bytes (fewer when that would split a %XX) + "-" + 16 lowercase hex
 *     digits of the 64-bit FNV-1a hash of the whole encoded component. The relative path is at most
 *     OUTDIR_REL_MAX bytes.
 * The result is printable ASCII, holds no "." or ".." component, never starts with '/' and never
 * escapes DIR. Different URLs can still get the same name ("/" and "/index.html", "/a?b" and
 * "/a%3Fb", http and https); outdir_commit numbers them.
 *
 * Files. A body in progress is an unnamed file in DIR (O_TMPFILE) where the filesystem allows it,
 * linked under its name at commit: an interrupted fetchctl leaves nothing behind. Elsewhere it is a
 * hidden ".fetchctl-tmp-XXXXXXXXXXXX" in DIR, renamed at commit (renameat2 RENAME_NOREPLACE, or
 * link + unlink where the filesystem lacks it); a killed fetchctl leaves those behind.
 * outdir_commit creates the directories of the name (mode 0777 less the umask; files get 0666 less
 * the umask) and takes the first free name among NAME, NAME.1, ... NAME.9999, for each component:
 * a leaf is taken by anything that exists (a directory too), a directory component by anything that
 * is not a directory (a symbolic link too: links are never followed below DIR). So "http://h/a"
 * then "http://h/a/b" give h/a and h/a.1/b.
 * Files are not fsync'ed. Nothing here logs; functions return 0 or -errno.
 *
 *	struct outdir o;
 *	outdir_open(&o, "out", err, sizeof(err));
 *	struct outdir_file f = {0};          zeroed: idle
 *	outdir_begin(&o, &f);                 a body starts (again: back to 0 bytes)
 *	outdir_write(&f, p, n);               ... as often as needed
 *	outdir_commit(&o, &f, url, len, path, sizeof(path));   or outdir_abort(&o, &f)
 *	outdir_close(&o);
 *
 * State is one fd per body in progress and one for DIR. Not thread-safe. */
#ifndef FETCHCTL_OUTDIR_H
#define FETCHCTL_OUTDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OUTDIR_COMPONENT_MAX 200 /* bytes of one component of a name, before any ".N" */
#define OUTDIR_REL_MAX 3000      /* bytes of a whole name */
#define OUTDIR_NAME_SIZE (OUTDIR_REL_MAX + 1)
#define OUTDIR_NUMBER_MAX 9999   /* NAME.1 ... NAME.9999, then -EEXIST */

/* How bodies in progress are kept; outdir_open picks the first that works in DIR. */
enum outdir_tmp {
	OUTDIR_TMP_FLINK,  /* O_TMPFILE, linked with linkat(AT_EMPTY_PATH) (older kernels: root only) */
	OUTDIR_TMP_PROC,   /* O_TMPFILE, linked through /proc/self/fd/N */
	OUTDIR_TMP_NAMED,  /* a hidden named file in DIR, renamed */
};

struct outdir {
	int dirfd;          /* DIR, O_PATH */
	char *dir;          /* DIR as the caller gave it (NULL: not open) */
	enum outdir_tmp tmp;
	uint64_t rng;       /* for the names of OUTDIR_TMP_NAMED files */
};

struct outdir_file {
	bool open;          /* a body is in progress; false (zeroed) is idle */
	bool named;         /* the file is tmp_name in DIR (else O_TMPFILE) */
	int fd;
	uint64_t bytes;     /* written since the last outdir_begin */
	char tmp_name[32];
};

/* The relative name of url (url_len bytes, no NUL needed) into out (NUL-terminated). Returns 0,
 * -EINVAL (not http/https, no "//", an empty host, an unclosed '[', a port that is not 1-65535),
 * -ENAMETOOLONG (longer than OUTDIR_REL_MAX) or -ENOBUFS (longer than cap - 1; OUTDIR_NAME_SIZE is
 * always enough). out is "" on error. */
int outdir_name(const char *url, size_t url_len, char *out, size_t cap);

/* Create DIR if missing (like mkdir -p), open it, check it is writable. On failure err gets the
 * reason and o is left closed. */
int outdir_open(struct outdir *o, const char *dir, char *err, size_t errlen);

/* Start a body in f: a new file for an idle f, else the one in progress cut back to 0 bytes (a
 * retry or redirect hop starts the body again). On failure an idle f stays idle, a busy one busy. */
int outdir_begin(struct outdir *o, struct outdir_file *f);

/* Append n bytes (short writes and EINTR handled). -EBADF for an idle f. */
int outdir_write(struct outdir_file *f, const void *p, size_t n);

/* Store the body under the name of url (see above) and write the path into path_out: DIR as given
 * to outdir_open, '/' (unless DIR ends in one), then the name with any ".N" taken. f is idle
 * afterwards, also on error, and then no file of the body is left (directories made for it may be).
 * Returns 0, -EBADF (f idle), an outdir_name error, -ENAMETOOLONG (the path does not fit cap),
 * -EEXIST (all numbers taken) or what the filesystem said. */
int outdir_commit(struct outdir *o, struct outdir_file *f, const char *url, size_t url_len, char *path_out,
		  size_t cap);

/* The fetch failed: drop the body in progress; f is idle. No-op for an idle f. */
void outdir_abort(struct outdir *o, struct outdir_file *f);

/* Close DIR. Bodies still in progress must be aborted first. No-op on a zeroed or closed outdir. */
void outdir_close(struct outdir *o);

#endif

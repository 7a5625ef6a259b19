/* jobs.c - detached batches (fetchctl submit --detach; docs/protocol.md §22). A session whose HELLO
 * says "detach" hands its URLS and END frames to a job: they are appended, as frames, to the job's
 * URLs file, and the session ends with DONE {"job":ID,"urls":N} once END is in. The job runs as a
 * client of its own with no socket (a slot after the max_clients ones): it reads its frames back from
 * that file as the client window allows, and its output (WELCOME, RESULTS, DONE) is appended to its
 * results file instead of a socket. A "results" session streams that file, following it while the job
 * runs, and removes the job once it has sent everything of a finished job. Verbs "jobs", "status" and
 * "cancel" report and stop jobs. A job belongs to the uid that submitted it (root sees every job).
 * Disk is bounded by [jobs] max_jobs and max_bytes; files are written with plain write(2) on the
 * control thread (small, sequential appends). Jobs do not survive a restart: the files of an earlier
 * run are removed at start. */
#include "daemon/fetchd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/json.h"
#include "daemon/log.h"
#include "daemon/proto.h"
#include "daemon/protocol.h"

#define JOBS_DEFAULT_DIR "/var/lib/fetchd/jobs" /* conf.c's default: missing it is no surprise */
#define JOBS_COLLECT_CHUNK 262144 /* bytes of results read into a collector's output at a time */

enum job_state { JOB_FREE = 0, JOB_RECEIVING, JOB_RUNNING, JOB_DONE };

struct job {
	enum job_state state;
	char id[16];
	uint32_t slot;            /* its client: d->clients[max_clients + slot] */
	uid_t uid;
	time_t created;
	bool cancelled;
	int urls_fd, results_fd;
	uint64_t urls_bytes, urls_read, results_bytes;
	uint64_t urls;            /* lines received */
	struct client *collector; /* the session streaming its results, or NULL */
};

const char *jobs_id(const struct job *j)
{
	return j->id;
}

static struct client *jobs_client(struct fetchd *d, const struct job *j)
{
	return &d->clients[d->conf.max_clients + j->slot];
}

static void jobs_path(const struct fetchd *d, const struct job *j, const char *ext, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s.%s", d->conf.jobs_dir, j->id, ext);
}

/* mkdir -p, the last component 0700. */
static int jobs_mkdirs(const char *path)
{
	char p[CONF_PATH_MAX];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return mkdir(p, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* Make the directory (0700) and clear what an earlier run left. Jobs stay off when it cannot be used. */
int jobs_init(struct fetchd *d)
{
	d->jobs = calloc(d->conf.max_jobs ? d->conf.max_jobs : 1, sizeof(*d->jobs));
	if (!d->jobs)
		return -ENOMEM;
	d->jobs_on = false;
	if (!d->conf.jobs_dir[0] || !d->conf.max_jobs)
		return 0;
	DIR *dir;
	if (jobs_mkdirs(d->conf.jobs_dir) < 0 || !(dir = opendir(d->conf.jobs_dir))) {
		/* the built-in path is only a default: without it (not root, no systemd) just say so */
		if (strcmp(d->conf.jobs_dir, JOBS_DEFAULT_DIR) != 0)
			log_warn("detached jobs are off: [jobs] dir %s: %s", d->conf.jobs_dir, strerror(errno));
		else
			log_info("detached jobs are off: [jobs] dir %s: %s", d->conf.jobs_dir, strerror(errno));
		return 0;
	}
	struct dirent *e;
	int removed = 0;
	while ((e = readdir(dir))) {
		size_t n = strlen(e->d_name);
		if ((n > 5 && !strcmp(e->d_name + n - 5, ".urls")) || (n > 8 && !strcmp(e->d_name + n - 8, ".results")))
			removed += unlinkat(dirfd(dir), e->d_name, 0) == 0;
	}
	closedir(dir);
	if (removed)
		log_info("jobs: removed %d files of an earlier run from %s", removed, d->conf.jobs_dir);
	d->jobs_on = true;
	return 0;
}

static void jobs_delete(struct fetchd *d, struct job *j, const char *why)
{
	char path[CONF_PATH_MAX + 32];
	log_info("job %s removed: %s urls=%llu", j->id, why, (unsigned long long)j->urls);
	jobs_path(d, j, "urls", path, sizeof(path));
	unlink(path);
	jobs_path(d, j, "results", path, sizeof(path));
	unlink(path);
	if (j->urls_fd >= 0)
		close(j->urls_fd);
	if (j->results_fd >= 0)
		close(j->results_fd);
	j->urls_fd = j->results_fd = -1;
	j->state = JOB_FREE;
}

/* Append to a job file; false (logged) when the disk refused. */
static bool jobs_write(int fd, const void *p, size_t n, const char *what)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_error("jobs: writing %s: %s", what, w < 0 ? strerror(errno) : "short write");
			return false;
		}
		b += w, n -= (size_t)w;
	}
	return true;
}

static int jobs_open(const struct fetchd *d, const struct job *j, const char *ext)
{
	char path[CONF_PATH_MAX + 32];
	jobs_path(d, j, ext, path, sizeof(path));
	return open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_APPEND, 0600);
}

/* The client that runs j: a slot with no socket, the submitter's settings. */
static void jobs_start_client(struct fetchd *d, struct job *j, const struct client *sub,
			      const struct proto_hello *h)
{
	struct client *c = jobs_client(d, j);
	client_slot_open(d, c, -1, sub->pid, sub->uid);
	c->job = j;
	struct proto_hello plain = *h;
	plain.detach = false;
	client_batch(d, c, &plain); /* WELCOME goes to the results file, as a session would get it */
}

void jobs_submit(struct fetchd *d, struct client *c, const struct proto_hello *h)
{
	if (!d->jobs_on) {
		client_fatal(d, c, "detached jobs are off in this fetchd ([jobs] dir)");
		return;
	}
	if (h->capture) {
		client_fatal(d, c, "a detached job cannot capture (\"capture\" with \"detach\")");
		return;
	}
	struct job *j = NULL;
	for (uint32_t i = 0; i < d->conf.max_jobs && !j; i++)
		if (d->jobs[i].state == JOB_FREE)
			j = &d->jobs[i], j->slot = i;
	if (!j) {
		char msg[96];
		snprintf(msg, sizeof(msg), "too many jobs: %u are kept already ([jobs] max_jobs)", d->conf.max_jobs);
		client_fatal(d, c, msg);
		return;
	}
	uint8_t rnd[6];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		client_fatal(d, c, "no random bytes for a job id");
		return;
	}
	snprintf(j->id, sizeof(j->id), "%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	j->urls_fd = jobs_open(d, j, "urls");
	j->results_fd = j->urls_fd >= 0 ? jobs_open(d, j, "results") : -1;
	j->state = JOB_RECEIVING;
	j->uid = c->uid;
	j->created = time(NULL);
	j->cancelled = false;
	j->urls_bytes = j->urls_read = j->results_bytes = j->urls = 0;
	j->collector = NULL;
	if (j->results_fd < 0) {
		char msg[CONF_PATH_MAX + 64];
		snprintf(msg, sizeof(msg), "cannot create the job's files in %s: %s", d->conf.jobs_dir, strerror(errno));
		jobs_delete(d, j, "no files");
		client_fatal(d, c, msg);
		return;
	}
	c->job_in = j;
	client_batch(d, c, h); /* checks the options, WELCOME with the job id */
	if (c->done_queued) {    /* refused: a bad option */
		c->job_in = NULL;
		jobs_delete(d, j, "refused");
		return;
	}
	jobs_start_client(d, j, c, h);
	log_info("job %s created by client %u uid=%u", j->id, c->id, (unsigned)c->uid);
}

/* The submitter's URLS and END frames go to the job's URLs file. Returns false when c failed. */
bool jobs_frame_in(struct fetchd *d, struct client *c, uint8_t type, const char *p, uint32_t len)
{
	struct job *j = c->job_in;
	uint8_t hdr[FETCHD_FRAME_HDR_BYTES];
	if (type == FETCHD_FR_URLS && j->urls_bytes + FETCHD_FRAME_HDR_BYTES + len > d->conf.job_max_bytes) {
		char msg[96];
		snprintf(msg, sizeof(msg), "the job is larger than [jobs] max_bytes (%llu)",
			 (unsigned long long)d->conf.job_max_bytes);
		jobs_abort(d, c);
		client_fatal(d, c, msg);
		return false;
	}
	fetchd_frame_hdr(hdr, len, type);
	if (!jobs_write(j->urls_fd, hdr, sizeof(hdr), j->id) || !jobs_write(j->urls_fd, p, len, j->id)) {
		jobs_abort(d, c);
		client_fatal(d, c, "cannot write the job's URLs file");
		return false;
	}
	j->urls_bytes += sizeof(hdr) + len;
	for (uint32_t i = 0; i < len; i++)
		j->urls += p[i] == '\n';
	client_mark_dirty(d, jobs_client(d, j));
	if (type != FETCHD_FR_END)
		return true;
	j->state = JOB_RUNNING;
	c->job_in = NULL;
	char msg[96];
	int n = snprintf(msg, sizeof(msg), "{\"job\":\"%s\",\"urls\":%llu}", j->id, (unsigned long long)j->urls);
	client_frame(c, FETCHD_FR_DONE, msg, (size_t)n);
	c->end_seen = c->done_queued = true;
	client_mark_dirty(d, c);
	return true;
}

/* The submitter went away (or failed) before END: the job is dropped with everything it started. */
void jobs_abort(struct fetchd *d, struct client *c)
{
	struct job *j = c->job_in;
	if (!j)
		return;
	c->job_in = NULL;
	struct client *jc = jobs_client(d, j);
	j->state = JOB_DONE; /* client_close below frees the slot; jobs_client_freed deletes the files */
	j->cancelled = true;
	j->collector = NULL;
	jc->job_dropped = true;
	client_close(d, jc, "its submitter went away before END");
}

/* The job's client wants input: the next frames of its URLs file. */
void jobs_feed(struct fetchd *d, struct client *c)
{
	struct job *j = c->job;
	if (j->urls_read >= j->urls_bytes)
		return; /* the submitter will mark it dirty when more comes */
	buf_consume(&c->in, c->in_off);
	c->in_off = 0;
	size_t want = j->urls_bytes - j->urls_read;
	if (want > 262144)
		want = 262144;
	if (buf_reserve(&c->in, want) < 0) {
		client_fatal(d, c, "out of memory");
		return;
	}
	ssize_t r = pread(j->urls_fd, c->in.p + c->in.len, want, (off_t)j->urls_read);
	if (r <= 0) {
		log_error("job %s: reading its URLs: %s", j->id, r < 0 ? strerror(errno) : "end of file");
		client_fatal(d, c, "cannot read the job's URLs file");
		return;
	}
	c->in.len += (size_t)r;
	j->urls_read += (uint64_t)r;
	client_mark_dirty(d, c);
}

/* The job's client has output: append it to the results file (whole frames) and wake its collector. */
void jobs_flush(struct fetchd *d, struct client *c)
{
	struct job *j = c->job;
	client_frame_close(c);
	if (c->out.len) {
		if (!jobs_write(j->results_fd, c->out.p, c->out.len, j->id))
			log_error("job %s: results lost: the disk refused them", j->id);
		else
			j->results_bytes += c->out.len;
		c->out.len = 0;
		if (j->collector)
			client_mark_dirty(d, j->collector);
	}
	if (c->done_queued)
		client_close(d, c, j->cancelled ? "job cancelled" : "job complete");
}

/* The job's client slot came free: the job is done (or dropped); a dropped job loses its files. */
void jobs_client_freed(struct fetchd *d, struct client *c)
{
	struct job *j = c->job;
	c->job = NULL;
	if (!j)
		return;
	if (c->job_dropped) {
		jobs_delete(d, j, "dropped");
		return;
	}
	j->state = JOB_DONE;
	if (j->collector)
		client_mark_dirty(d, j->collector);
}

/* A results session: more of the file into its output while little is queued; done after the end of
 * a finished job's file. */
void jobs_collect(struct fetchd *d, struct client *c)
{
	struct job *j = c->collect;
	if (!j || c->done_queued || c->out.len + c->sending.len >= JOBS_COLLECT_CHUNK)
		return;
	uint64_t left = j->results_bytes - c->collect_off;
	size_t want = left < JOBS_COLLECT_CHUNK ? (size_t)left : JOBS_COLLECT_CHUNK;
	if (want) {
		if (buf_reserve(&c->out, want) < 0) {
			client_fatal(d, c, "out of memory");
			return;
		}
		ssize_t r = pread(j->results_fd, c->out.p + c->out.len, want, (off_t)c->collect_off);
		if (r <= 0) {
			client_fatal(d, c, "cannot read the job's results file");
			return;
		}
		c->out.len += (size_t)r;
		c->collect_off += (uint64_t)r;
		c->flush_now = true;
	}
	if (j->state == JOB_DONE && c->collect_off == j->results_bytes) {
		c->done_queued = true; /* the file ends with the job's DONE (or ERROR) frame */
		c->collected = true;
	}
}

/* A session closes: a submitter before END drops its job; a collector lets go (and removes a job it
 * collected completely). */
void jobs_client_closed(struct fetchd *d, struct client *c)
{
	if (c->job_in)
		jobs_abort(d, c);
	struct job *j = c->collect;
	if (!j)
		return;
	c->collect = NULL;
	if (j->collector == c)
		j->collector = NULL;
	if (c->collected && c->out.len == 0 && c->sending.len == 0 && j->state == JOB_DONE)
		jobs_delete(d, j, "collected");
}

static struct job *jobs_find(struct fetchd *d, const char *id)
{
	for (uint32_t i = 0; i < d->conf.max_jobs; i++)
		if (d->jobs[i].state != JOB_FREE && !strcmp(d->jobs[i].id, id))
			return &d->jobs[i];
	return NULL;
}

static const char *jobs_state_name(const struct job *j)
{
	if (j->state == JOB_RECEIVING)
		return "receiving";
	if (j->state == JOB_RUNNING)
		return j->cancelled ? "cancelling" : "running";
	return j->cancelled ? "cancelled" : "done";
}

static void jobs_json(struct fetchd *d, const struct job *j, struct buf *b)
{
	char tmp[384], when[32];
	struct tm tm;
	gmtime_r(&j->created, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	const struct client *c = jobs_client(d, j);
	bool live = j->state != JOB_DONE && c->job == j;
	int n = snprintf(tmp, sizeof(tmp),
			 "{\"id\":\"%s\",\"state\":\"%s\",\"uid\":%u,\"created\":\"%s\",\"urls\":%llu,\"results\":%llu,"
			 "\"in_daemon\":%u,\"spool_bytes\":%llu,\"collecting\":%s}",
			 j->id, jobs_state_name(j), (unsigned)j->uid, when, (unsigned long long)j->urls,
			 (unsigned long long)(live ? c->results : j->urls), live ? c->admitted : 0,
			 (unsigned long long)(j->urls_bytes + j->results_bytes), j->collector ? "true" : "false");
	buf_append(b, tmp, (size_t)n);
}

static bool jobs_mine(const struct client *c, const struct job *j)
{
	return c->uid == 0 || c->uid == j->uid;
}

static void jobs_answer(struct client *c, struct buf *b)
{
	client_frame(c, FETCHD_FR_INFO, (const char *)b->p, b->len);
	c->hello_done = c->end_seen = c->done_queued = true;
}

/* "jobs", "status", "cancel", "results": false when verb is none of them. */
bool jobs_verb(struct fetchd *d, struct client *c, const struct proto_hello *h)
{
	const char *verb = h->verb;
	if (strcmp(verb, "jobs") && strcmp(verb, "status") && strcmp(verb, "cancel") && strcmp(verb, "results"))
		return false;
	struct buf b = { 0 };
	if (!strcmp(verb, "jobs")) {
		buf_append(&b, "{\"jobs\":[", 9);
		int n = 0;
		for (uint32_t i = 0; i < d->conf.max_jobs; i++) {
			if (d->jobs[i].state == JOB_FREE || !jobs_mine(c, &d->jobs[i]))
				continue;
			if (n++)
				buf_append(&b, ",", 1);
			jobs_json(d, &d->jobs[i], &b);
		}
		buf_append(&b, "]}", 2);
		jobs_answer(c, &b);
		goto out;
	}
	struct job *j = h->job[0] ? jobs_find(d, h->job) : NULL;
	if (!j || !jobs_mine(c, j)) {
		char msg[96];
		snprintf(msg, sizeof(msg), "no job '%s'%s", h->job, h->job[0] ? "" : " (HELLO \"job\" names it)");
		client_fatal(d, c, msg);
		goto out;
	}
	if (!strcmp(verb, "results")) {
		if (j->collector) {
			client_fatal(d, c, "another session is collecting this job's results");
			goto out;
		}
		j->collector = c;
		c->collect = j;
		c->collect_off = 0;
		c->hello_done = c->end_seen = true;
		client_mark_dirty(d, c);
		goto out;
	}
	if (!strcmp(verb, "cancel") && j->state == JOB_DONE && !j->collector) {
		buf_append(&b, "{\"cancelled\":", 13);
		jobs_json(d, j, &b);
		buf_append(&b, ",\"removed\":true}", 16);
		jobs_delete(d, j, "cancelled after it ended");
		jobs_answer(c, &b);
		goto out;
	}
	if (!strcmp(verb, "cancel") && !j->cancelled && j->state == JOB_RUNNING) {
		struct client *jc = jobs_client(d, j);
		j->cancelled = true;
		jc->cancel_rest = true; /* URLs not admitted yet: "cancelled" results */
		for (uint32_t i = 0; i < d->nworkers; i++)
			worker_cancel_client(&d->workers[i], jc->idx, jc->gen, true);
		client_mark_dirty(d, jc);
		log_info("job %s cancelled by client %u", j->id, c->id);
	}
	jobs_json(d, j, &b);
	jobs_answer(c, &b);
out:
	buf_free(&b);
	return true;
}

void jobs_fini(struct fetchd *d)
{
	for (uint32_t i = 0; d->jobs && i < d->conf.max_jobs; i++)
		if (d->jobs[i].state != JOB_FREE)
			jobs_delete(d, &d->jobs[i], "fetchd stopped");
	free(d->jobs);
	d->jobs = NULL;
}

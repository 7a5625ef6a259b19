/* replay.c - run a libFuzzer harness without libFuzzer: link it with one tests/fuzz/fuzz_*.c (any C
 * compiler; the Makefile uses gcc with -fsanitize=address,undefined) and it calls
 * LLVMFuzzerTestOneInput on every file of the directories (or the files) given as arguments, in name
 * order, each in a child process so one crash does not hide the rest. Without arguments it replays
 * REPLAY_DEFAULT_DIR when that was defined at build time (the harness's committed corpus).
 *
 * An input passes when the child returns normally; an abort(), a signal, a sanitizer report or a
 * nonzero exit (LeakSanitizer's, for one) fails it. Each failure is named on stderr with the child's
 * output before it; the last line is "N passed, N failed" (tests/run-all.sh reads it), and the exit
 * status is 1 when anything failed. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int passed, failed;

/* Runs the harness on one file in this process. Returns 0, or -1 when the file cannot be read. */
static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, len = 0;

	if (!f)
		return -1;
	for (;;) {
		if (len == cap) {
			uint8_t *nb;

			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	/* an exactly sized copy, as libFuzzer gives: a read past the end is a heap overflow */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static void replay_one(const char *path)
{
	pid_t pid;
	int status;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "FAIL %s: fork: %s\n", path, strerror(errno));
		failed++;
		return;
	}
	if (pid == 0) {
		if (run_file(path) < 0) {
			fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
			exit(2);
		}
		exit(0); /* exit, not _exit: LeakSanitizer checks at exit */
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "FAIL %s: waitpid: %s\n", path, strerror(errno));
			failed++;
			return;
		}
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		passed++;
	} else {
		if (WIFSIGNALED(status))
			fprintf(stderr, "FAIL %s: killed by signal %d\n", path, WTERMSIG(status));
		else
			fprintf(stderr, "FAIL %s: exit %d\n", path, WEXITSTATUS(status));
		failed++;
	}
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (!d) {
		fprintf(stderr, "FAIL %s: %s\n", dir, strerror(errno));
		failed++;
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue; /* ".", "..", and hidden files */
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 256) * sizeof(*names));
			if (!nn)
				abort();
			names = nn;
		}
		size_t len = strlen(dir) + 1 + strlen(e->d_name) + 1;
		names[n] = malloc(len);
		if (!names[n])
			abort();
		snprintf(names[n], len, "%s/%s", dir, e->d_name);
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
			replay_one(names[i]);
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
#ifdef REPLAY_DEFAULT_DIR
	static char *defaults[] = { NULL, REPLAY_DEFAULT_DIR, NULL };
	if (argc < 2) {
		defaults[0] = argv[0];
		argv = defaults;
		argc = 2;
	}
#endif
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			replay_dir(argv[i]);
		else
			replay_one(argv[i]);
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

/* rusage.c - run a command and report its CPU time and peak RSS, for bench.py.
 *
 *   rusage OUTFILE CMD [ARG...]
 *
 * Forks, execs CMD with stdin/stdout/stderr inherited, waits for it with wait4() and writes
 * "utime_us stime_us maxrss_kib\n" to OUTFILE. Exits with CMD's exit status (128+N if it died of
 * signal N; 127 if it could not be started).
 *
 * Why not os.wait4() in bench.py directly: on Linux, ru_maxrss of a process that was exec'd from a
 * fork of the Python driver starts at the driver's own peak RSS (exec records the old address
 * space's high-water mark), so small clients such as fetchctl or curl would all show ~15 MB. Forked
 * from this small program instead, the command's ru_maxrss is its own.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o build/bench/rusage tools/bench/rusage.c
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: rusage OUTFILE CMD [ARG...]\n");
		return 127;
	}
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "rusage: fork: %s\n", strerror(errno));
		return 127;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "rusage: %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	/* Leave ^C to the command; bench.py stops a run by killing the whole process group. */
	signal(SIGINT, SIG_IGN);
	int status;
	struct rusage ru;
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "rusage: wait4: %s\n", strerror(errno));
			return 127;
		}
	}
	FILE *f = fopen(argv[1], "w");
	if (!f) {
		fprintf(stderr, "rusage: %s: %s\n", argv[1], strerror(errno));
		return 127;
	}
	fprintf(f, "%lld %lld %ld\n",
		(long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
		(long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec, ru.ru_maxrss);
	fclose(f);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

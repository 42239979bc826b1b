/*
 * proc.c - the processes shbench starts (daemons, reader children,
 * timed commands) and the promise that none outlives it.
 *
 * Like the e2e suite: a daemon is started in the foreground as our child,
 * the mount is waited for with a deadline while watching that the daemon
 * is alive, and on every way out - normal exit, a failure, SIGINT/SIGTERM
 * - each daemon is stopped and each mount detached. The signal path uses
 * only async-signal-safe calls (kill, umount2, waitpid, _exit) on tables
 * that are filled before the pids they name exist.
 */
#include "bench/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_DAEMONS 16

static struct bench_daemon *daemons[MAX_DAEMONS];
static volatile pid_t reader_child;
static char signal_rm_file[PATH_MAX], signal_rm_dir[PATH_MAX];

double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_pathf(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size) {
		fprintf(stderr, "shbench: path too long: %s\n", out);
		exit(1);
	}
}

int bench_paths_init(struct bench_paths *bp)
{
	char self[PATH_MAX], dir[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return -errno;
	self[n] = '\0';
	/* build/bench/shbench -> build/ */
	snprintf(dir, sizeof(dir), "%s", self);
	char *bench_dir = dirname(dir);
	char build[PATH_MAX];
	snprintf(build, sizeof(build), "%s", bench_dir);
	char *build_dir = dirname(build);
	if ((size_t)snprintf(bp->shadm, sizeof(bp->shadm), "%s/shadm", build_dir) >= sizeof(bp->shadm) ||
	    (size_t)snprintf(bp->scopeholdfs, sizeof(bp->scopeholdfs), "%s/scopeholdfs", build_dir) >=
		    sizeof(bp->scopeholdfs) ||
	    (size_t)snprintf(bp->barefs, sizeof(bp->barefs), "%s/barefs", bench_dir) >= sizeof(bp->barefs))
		return -ENAMETOOLONG;
	const char *need[] = { bp->shadm, bp->scopeholdfs, bp->barefs };
	for (size_t i = 0; i < 3; i++)
		if (access(need[i], X_OK) < 0) {
			fprintf(stderr, "shbench: %s is not built (run 'make')\n", need[i]);
			return -ENOENT;
		}
	snprintf(bp->tmp, sizeof(bp->tmp), "/tmp/shbench.XXXXXX");
	if (!mkdtemp(bp->tmp))
		return -errno;
	/* readers of other uids must reach the mountpoints inside */
	if (chmod(bp->tmp, 0755) < 0)
		return -errno;
	return 0;
}

static bool is_mounted(const char *mnt)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	char line[4096];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX];
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ...; our paths have no spaces */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strcmp(mp, mnt) == 0)
			found = true;
	}
	fclose(f);
	return found;
}

static void detach(const char *mnt)
{
	for (int i = 0; i < 4 && is_mounted(mnt); i++)
		if (umount2(mnt, MNT_DETACH) < 0)
			break;
}

void bench_track_child(pid_t pid)
{
	reader_child = pid;
}

/* Async-signal-safe: no stdio, no malloc. */
static void cleanup_now(void)
{
	if (reader_child > 0)
		kill(reader_child, SIGKILL);
	for (int i = 0; i < MAX_DAEMONS; i++)
		if (daemons[i] && daemons[i]->pid > 0)
			kill(daemons[i]->pid, SIGTERM);
	for (int t = 0; t < 50; t++) {
		bool alive = false;
		for (int i = 0; i < MAX_DAEMONS; i++)
			if (daemons[i] && daemons[i]->pid > 0) {
				if (waitpid(daemons[i]->pid, NULL, WNOHANG) == daemons[i]->pid)
					daemons[i]->pid = 0;
				else
					alive = true;
			}
		if (!alive)
			break;
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	for (int i = 0; i < MAX_DAEMONS; i++) {
		if (!daemons[i])
			continue;
		if (daemons[i]->pid > 0) {
			kill(daemons[i]->pid, SIGKILL);
			waitpid(daemons[i]->pid, NULL, 0);
			daemons[i]->pid = 0;
		}
		umount2(daemons[i]->mnt, MNT_DETACH);
		daemons[i] = NULL;
	}
}

void bench_cleanup(void)
{
	cleanup_now();
}

void bench_cleanup_remove(const char *file, const char *dir)
{
	snprintf(signal_rm_file, sizeof(signal_rm_file), "%s", file ? file : "");
	snprintf(signal_rm_dir, sizeof(signal_rm_dir), "%s", dir ? dir : "");
}

/* Interrupted: stop everything, then remove what the run created (rm -rf by fork+exec). */
static void on_signal(int sig)
{
	cleanup_now();
	if (signal_rm_file[0])
		unlink(signal_rm_file);
	if (signal_rm_dir[0]) {
		pid_t pid = fork();
		if (pid == 0) {
			char *argv[] = { "/bin/rm", "-rf", signal_rm_dir, NULL };
			execv(argv[0], argv);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
	_exit(128 + sig);
}

void bench_child_init(void)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
}

void bench_cleanup_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigfillset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	atexit(bench_cleanup);
}

static int daemon_slot(struct bench_daemon *d, bool add)
{
	for (int i = 0; i < MAX_DAEMONS; i++) {
		if (add && !daemons[i]) {
			daemons[i] = d;
			return 0;
		}
		if (!add && daemons[i] == d) {
			daemons[i] = NULL;
			return 0;
		}
	}
	return -ENOSPC;
}

int bench_daemon_start(struct bench_daemon *d, char *const argv[], const char *mnt,
		       const char *log)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->mnt, sizeof(d->mnt), "%s", mnt);
	snprintf(d->log, sizeof(d->log), "%s", log);
	if (mkdir(mnt, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (daemon_slot(d, true) < 0)
		return -ENOSPC;
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);   /* the slot names the pid before a signal can */
	pid_t pid = fork();
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		bench_child_init();
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	if (pid > 0)
		d->pid = pid;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		daemon_slot(d, false);
		return -errno;
	}
	double deadline = bench_now() + 10;
	while (bench_now() < deadline) {
		if (is_mounted(mnt))
			return 0;
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			d->pid = 0;
			daemon_slot(d, false);
			fprintf(stderr, "shbench: %s exited before mounting %s (log: %s)\n",
				argv[0], mnt, log);
			return -ECHILD;
		}
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "shbench: %s did not mount %s within 10 s (log: %s)\n", argv[0], mnt, log);
	bench_daemon_stop(d);
	return -ETIMEDOUT;
}

int bench_daemon_stop(struct bench_daemon *d)
{
	int rc = 0;
	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		double deadline = bench_now() + 10;
		int status = 0;
		for (;;) {
			pid_t w = waitpid(d->pid, &status, WNOHANG);
			if (w == d->pid)
				break;
			if (bench_now() > deadline) {
				kill(d->pid, SIGKILL);
				waitpid(d->pid, &status, 0);
				rc = -ETIMEDOUT;
				break;
			}
			struct timespec ts = { 0, 20 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			rc = -ECHILD;
		d->pid = 0;
	}
	detach(d->mnt);
	daemon_slot(d, false);
	return rc;
}

long bench_proc_hwm_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	long kib = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

int bench_run(char *const argv[], const char *in, char *out, size_t outsz, int *status)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (pid == 0) {
		dup2(p[1], 1);
		int nul = open("/dev/null", O_RDWR);
		int fin = in ? open(in, O_RDONLY) : nul;
		if (nul >= 0)
			dup2(nul, 2);
		if (fin >= 0)
			dup2(fin, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	size_t got = 0;
	char sink[4096];
	for (;;) {
		char *dst = out && got + 1 < outsz ? out + got : sink;
		size_t room = out && got + 1 < outsz ? outsz - 1 - got : sizeof(sink);
		ssize_t n = read(p[0], dst, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (dst != sink)
			got += (size_t)n;
	}
	close(p[0]);
	if (out && outsz)
		out[got] = '\0';
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (status)
		*status = st;
	return 0;
}

int bench_time_exec(char *const argv[], int uid, double *secs)
{
	double t0 = bench_now();
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
		}
		if (uid >= 0 && (setgroups(0, NULL) < 0 || setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid) < 0 ||
				 setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0))
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	*secs = bench_now() - t0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -EIO;
	return 0;
}

int bench_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			return -e;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fchmod(fd, mode) < 0 || close(fd) < 0)
		return -errno;
	return 0;
}

/*
 * measure.c - the timed part: reader threads doing open + read + close
 * of one small file, as a given uid, for a fixed time.
 *
 * Each measurement forks one child that drops to the reader's uid (no
 * groups, gid = uid), so the daemon sees exactly the credentials an agent
 * would have, and our own process keeps root to manage mounts. The
 * child's threads start together on a barrier and stop on a flag. Each
 * thread times every operation with CLOCK_MONOTONIC into its own
 * log-linear histogram (64 steps per power of two, under 1.6% error) in
 * memory shared with the parent: no allocation and no locking on the hot
 * path, and millions of operations cost a few KiB. An operation counts
 * only if it had the expected outcome (the exact bytes, or the exact
 * errno for a denial); anything else is counted as wrong and reported.
 */
#include "bench/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define SUB_BITS 6
#define SUB (1 << SUB_BITS)
#define NBUCKETS (SUB + 40 * SUB)

struct thread_slot {
	uint64_t ok, wrong;
	uint64_t hist[NBUCKETS];
} __attribute__((aligned(64)));

struct shared {
	atomic_int stop;
	atomic_llong remaining;      /* max_ops mode: operations left to start */
	bool counted;
	double elapsed;
	char path[PATH_MAX];
	int expect_errno;
	pthread_barrier_t start;
	struct thread_slot t[MAX_THREADS];
};

static int bucket_of(uint64_t ns)
{
	if (ns < SUB)
		return (int)ns;
	int e = 63 - __builtin_clzll(ns);
	int idx = SUB + (e - SUB_BITS) * SUB + (int)((ns >> (e - SUB_BITS)) & (SUB - 1));
	return idx < NBUCKETS ? idx : NBUCKETS - 1;
}

static double bucket_value(int idx)
{
	if (idx < SUB)
		return idx;
	int e = (idx - SUB) / SUB + SUB_BITS, sub = (idx - SUB) % SUB;
	double low = (double)((uint64_t)(SUB + sub) << (e - SUB_BITS));
	double width = (double)((uint64_t)1 << (e - SUB_BITS));
	return low + width / 2;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct reader_arg {
	struct shared *sh;
	int idx;
};

static void *reader(void *arg)
{
	struct reader_arg *ra = arg;
	struct shared *sh = ra->sh;
	struct thread_slot *slot = &sh->t[ra->idx];
	char buf[4096];
	pthread_barrier_wait(&sh->start);
	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
		if (sh->counted && atomic_fetch_sub(&sh->remaining, 1) <= 0)
			break;
		uint64_t t0 = now_ns();
		int fd = open(sh->path, O_RDONLY | O_CLOEXEC);
		int e = errno;
		bool good;
		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof(buf));
			close(fd);
			good = sh->expect_errno == 0 && n == (ssize_t)bench_value_len &&
			       memcmp(buf, bench_value, bench_value_len) == 0;
		} else {
			good = sh->expect_errno != 0 && e == sh->expect_errno;
		}
		uint64_t t1 = now_ns();
		if (good) {
			slot->ok++;
			slot->hist[bucket_of(t1 - t0)]++;
		} else {
			slot->wrong++;
		}
	}
	return NULL;
}

/* In a forked child: become uid (gid = uid, no groups) or exit 3. */
static void child_become(int uid)
{
	if (setgroups(0, NULL) < 0 || setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid) < 0 ||
	    setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0)
		_exit(3);
}

static void child_run(struct shared *sh, int uid, int threads, double secs)
{
	child_become(uid);
	pthread_t tid[MAX_THREADS];
	struct reader_arg ra[MAX_THREADS];
	for (int i = 0; i < threads; i++) {
		ra[i].sh = sh;
		ra[i].idx = i;
		if (pthread_create(&tid[i], NULL, reader, &ra[i]) != 0)
			_exit(4);
	}
	pthread_barrier_wait(&sh->start);
	double t0 = bench_now();
	if (!sh->counted) {
		struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		atomic_store(&sh->stop, 1);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	sh->elapsed = bench_now() - t0;
	_exit(0);
}

/* Wait for a reader child; 0 if it exited 0. */
static int wait_reader(pid_t pid, const char *path)
{
	int st, rc = 0;

	bench_track_child(pid);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			rc = -errno;
			break;
		}
	bench_track_child(0);
	if (rc == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
		fprintf(stderr, "shbench: reader child for %s failed (status %d)\n", path, st);
		rc = -ECHILD;
	}
	return rc;
}

int bench_measure(const char *path, int uid, int threads, double secs, uint64_t max_ops,
		  int expect_errno, struct bench_result *r)
{
	if (threads < 1 || threads > MAX_THREADS)
		return -EINVAL;
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return -errno;
	memset(sh, 0, sizeof(*sh));
	snprintf(sh->path, sizeof(sh->path), "%s", path);
	sh->expect_errno = expect_errno;
	sh->counted = max_ops > 0;
	atomic_store(&sh->remaining, (long long)max_ops);
	pthread_barrierattr_t ba;
	pthread_barrierattr_init(&ba);
	pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
	pthread_barrier_init(&sh->start, &ba, (unsigned)threads + 1);

	int rc = 0;
	pid_t pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out;
	}
	if (pid == 0)
		child_run(sh, uid, threads, secs);
	if ((rc = wait_reader(pid, path)))
		goto out;

	static uint64_t hist[NBUCKETS];
	memset(hist, 0, sizeof(hist));
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < threads; i++) {
		r->ops += sh->t[i].ok;
		r->wrong += sh->t[i].wrong;
		for (int b = 0; b < NBUCKETS; b++)
			hist[b] += sh->t[i].hist[b];
	}
	r->ops_per_s = sh->elapsed > 0 ? (double)r->ops / sh->elapsed : 0;
	double q[3] = { 0.50, 0.99, 0.999 }, *out[3] = { &r->p50, &r->p99, &r->p999 };
	for (int k = 0; k < 3; k++) {
		uint64_t want = (uint64_t)((double)r->ops * q[k]), seen = 0;
		if (want >= r->ops && r->ops > 0)
			want = r->ops - 1;
		for (int b = 0; b < NBUCKETS; b++) {
			seen += hist[b];
			if (seen > want) {
				*out[k] = bucket_value(b) / 1000.0;
				break;
			}
		}
	}
out:
	pthread_barrier_destroy(&sh->start);
	munmap(sh, sizeof(*sh));
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double bench_median(double *v, int n)
{
	if (n <= 0)
		return 0;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_result_median(const struct bench_result *v, int n, struct bench_result *out)
{
	double tmp[256];
	if (n > 256)
		n = 256;
	memset(out, 0, sizeof(*out));
#define MED(field)                                        \
	do {                                              \
		for (int i = 0; i < n; i++)               \
			tmp[i] = (double)v[i].field;      \
		out->field = bench_median(tmp, n);        \
	} while (0)
	MED(ops_per_s);
	MED(p50);
	MED(p99);
	MED(p999);
#undef MED
	for (int i = 0; i < n; i++) {
		out->ops += v[i].ops;
		out->wrong += v[i].wrong;
	}
}

int bench_fdatasync_median(const char *dir, int n, double *secs)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/fdatasync-probe", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	double *v = calloc((size_t)n, sizeof(*v));
	if (!v) {
		close(fd);
		return -ENOMEM;
	}
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		double t0 = bench_now();
		if (write(fd, bench_value, bench_value_len) != (ssize_t)bench_value_len ||
		    fdatasync(fd) < 0)
			rc = -errno;
		v[i] = bench_now() - t0;
	}
	close(fd);
	unlink(path);
	if (rc == 0)
		*secs = bench_median(v, n);
	free(v);
	return rc;
}

/*
 * The timeline: one reader as uid, opening path back to back for secs
 * seconds and recording when each outcome changed, so a run through a
 * database restart shows when opens started failing, how, and when they
 * were served again. Times are seconds from the reader's start.
 */
struct timeline_shared {
	double t0;                   /* the reader's start, bench_now() */
	struct bench_timeline tl;
};

int bench_timeline(const char *path, int uid, double secs, double *t0, struct bench_timeline *out)
{
	struct timeline_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
					  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int rc;

	if (sh == MAP_FAILED)
		return -errno;
	memset(sh, 0, sizeof(*sh));
	sh->t0 = bench_now();
	*t0 = sh->t0;
	pid_t pid = fork();
	if (pid < 0) {
		rc = -errno;
		munmap(sh, sizeof(*sh));
		return rc;
	}
	if (pid == 0) {
		struct bench_timeline *tl = &sh->tl;
		char buf[4096];
		double last_ok = 0;

		child_become(uid);
		tl->first_fail = tl->last_fail = -1;
		for (double now = 0; now < secs; now = bench_now() - sh->t0) {
			int fd = open(path, O_RDONLY | O_CLOEXEC), e = errno;
			if (fd >= 0) {
				ssize_t n = read(fd, buf, sizeof(buf));
				e = n < 0 ? errno : 0;
				close(fd);
				if (n >= 0 && (n != (ssize_t)bench_value_len ||
					       memcmp(buf, bench_value, bench_value_len) != 0)) {
					tl->wrong++;
					continue;
				}
			}
			now = bench_now() - sh->t0;
			if (e == 0) {
				tl->ok++;
				if (tl->first_fail >= 0 && tl->recovered == 0)
					tl->recovered = now;
				if (now - last_ok > tl->max_gap)
					tl->max_gap = now - last_ok;
				last_ok = now;
				continue;
			}
			if (tl->first_fail < 0)
				tl->first_fail = now;
			tl->last_fail = now;
			if (e == EIO)
				tl->eio++;
			else if (e == EACCES)
				tl->eacces++;
			else
				tl->other++;
			usleep(1000);        /* a failing loop without a pause would only spin */
		}
		if (secs - last_ok > tl->max_gap)  /* not served again before the end */
			tl->max_gap = secs - last_ok;
		_exit(0);
	}
	rc = wait_reader(pid, path);
	if (rc == 0)
		*out = sh->tl;
	munmap(sh, sizeof(*sh));
	return rc;
}

/*
 * caller.c - what the kernel tells us about the process behind a request.
 *
 * FUSE hands us the credentials and the *thread* id of the caller. The
 * policy needs the process: its pid, the path of the executable it runs
 * and, for agents bound to a digest, the sha256 of that executable. All of
 * it comes from /proc, which races with the process exiting and its pid
 * being reused, so the order is: map the thread to its thread group, pin
 * the process with a pidfd, check the thread is one of its tasks, read
 * the facts, then check that the pidfd has not signalled exit - while
 * the pinned process lives its pid names nobody else, so the facts are
 * its own. (An earlier version also compared the start time in
 * /proc/PID/stat before and after; with the pidfd that check can never
 * fail, and it cost a quarter of the daemon's time per open.) Anything
 * doubtful leaves known=false, which the policy denies. The cgroup
 * (/proc/PID/cgroup) is read inside the same pinned window. The hash is taken from /proc/PID/exe itself - the very inode the
 * process executes - so renaming, replacing or symlinking the path on
 * disk cannot fool it; digests are cached by file identity (device,
 * inode, size, mtime and ctime) because hashing a large binary on every
 * open would be slow.
 */
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

void fs_caller_from_request(struct fs_caller *c, const struct fuse_ctx *fc)
{
	memset(c, 0, sizeof(*c));
	c->pc.known = false;
	c->pc.uid = fc ? fc->uid : (uid_t)-1;
	c->pc.gid = fc ? fc->gid : (gid_t)-1;
	c->tid = fc ? fc->pid : 0;
	/* Until established, the audit trail sees the thread id we were sent. */
	c->pc.pid = c->tid;
	c->pc.exe = NULL;
	c->pc.cgroup = NULL;
}

void fs_caller_credentials(struct fs_caller *c)
{
	if (c->established)
		return;
	c->pc.known = c->tid > 0;
}

/* Read a small /proc file into buf (NUL-terminated). */
static int read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t got = 0;
	while (got + 1 < size) {
		ssize_t n = read(fd, buf + got, size - 1 - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			close(fd);
			return e;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	close(fd);
	return 0;
}

/* The thread group (process) a thread belongs to. */
static int thread_tgid(pid_t tid, pid_t *tgid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	int rc = read_small(path, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	const char *line = strstr(buf, "\nTgid:");
	if (!line)
		return -EIO;
	long v = strtol(line + 6, NULL, 10);
	if (v <= 0)
		return -EIO;
	*tgid = (pid_t)v;
	return 0;
}

/*
 * The cgroup v2 path of process pid: the "0::" line of /proc/PID/cgroup,
 * which the kernel writes relative to the cgroup namespace of the
 * *reader* - this daemon - so a caller that made a cgroup namespace of
 * its own (and sees "0::/" itself) cannot shorten its path here. The
 * line must be the file's last, and the path well-formed: a path outside
 * our namespace ("/../x") or a name with a newline in it names nothing.
 * 0, or -ENOENT when there is no such path (cgroup v1 only).
 */
static int caller_cgroup(pid_t pid, char *out, size_t size)
{
	char path[64], buf[PATH_MAX + 512];
	const char *line, *end;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	int rc = read_small(path, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	if (strncmp(buf, "0::", 3) == 0)
		line = buf;
	else if ((line = strstr(buf, "\n0::")) != NULL)
		line++;
	else
		return -ENOENT;
	line += 3;
	end = strchr(line, '\n');
	if (!end || end[1] != '\0')
		return -ENOENT;
	n = (size_t)(end - line);
	if (n >= size)
		return -ENOENT;
	memcpy(out, line, n);
	out[n] = '\0';
	return policy_cgroup_check(out, false) == 0 ? 0 : -ENOENT;
}

/* True while the process pinned by pidfd has not exited. */
static bool pidfd_alive(int pidfd)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	int n;
	do
		n = poll(&pfd, 1, 0);
	while (n < 0 && errno == EINTR);
	/* A pidfd becomes readable when the process exits. */
	return n == 0;
}

/* ---- digest cache ------------------------------------------------------ */

/*
 * Keyed by everything that changes when the file's content may have:
 * device, inode, size, mtime, and ctime too (which, unlike mtime, cannot
 * be set back by the file's owner).
 */
struct hash_entry {
	bool used;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim, ctim;
	uint8_t sha256[POLICY_SHA256_BYTES];
};

#define HASH_CACHE_SIZE 64
static struct hash_entry hash_cache[HASH_CACHE_SIZE];
static unsigned hash_next;
static pthread_mutex_t hash_lock = PTHREAD_MUTEX_INITIALIZER;

static bool same_file(const struct hash_entry *e, const struct stat *sb)
{
	return e->used && e->dev == sb->st_dev && e->ino == sb->st_ino &&
	       e->size == sb->st_size &&
	       e->mtim.tv_sec == sb->st_mtim.tv_sec && e->mtim.tv_nsec == sb->st_mtim.tv_nsec &&
	       e->ctim.tv_sec == sb->st_ctim.tv_sec && e->ctim.tv_nsec == sb->st_ctim.tv_nsec;
}

static bool cache_get(const struct stat *sb, uint8_t out[POLICY_SHA256_BYTES])
{
	bool hit = false;
	pthread_mutex_lock(&hash_lock);
	for (unsigned i = 0; i < HASH_CACHE_SIZE; i++) {
		if (same_file(&hash_cache[i], sb)) {
			memcpy(out, hash_cache[i].sha256, POLICY_SHA256_BYTES);
			hit = true;
			break;
		}
	}
	pthread_mutex_unlock(&hash_lock);
	return hit;
}

static void cache_put(const struct stat *sb, const uint8_t sha[POLICY_SHA256_BYTES])
{
	pthread_mutex_lock(&hash_lock);
	struct hash_entry *e = &hash_cache[hash_next++ % HASH_CACHE_SIZE];
	e->used = true;
	e->dev = sb->st_dev;
	e->ino = sb->st_ino;
	e->size = sb->st_size;
	e->mtim = sb->st_mtim;
	e->ctim = sb->st_ctim;
	memcpy(e->sha256, sha, POLICY_SHA256_BYTES);
	pthread_mutex_unlock(&hash_lock);
}

/* sha256 of the executable that process pid runs. */
static int exe_sha256(pid_t pid, uint8_t out[POLICY_SHA256_BYTES])
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat sb;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return -EIO;
	}
	if (cache_get(&sb, out)) {
		close(fd);
		return 0;
	}
	crypto_hash_sha256_state state;
	crypto_hash_sha256_init(&state);
	static const size_t chunk = 64 * 1024;
	unsigned char *buf = malloc(chunk);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	int rc = 0;
	for (;;) {
		ssize_t n = read(fd, buf, chunk);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		crypto_hash_sha256_update(&state, buf, (unsigned long long)n);
	}
	free(buf);
	if (rc == 0) {
		/* The file may have changed while we read it: only cache a stable one. */
		struct stat after;
		crypto_hash_sha256_final(&state, out);
		if (fstat(fd, &after) == 0 && after.st_size == sb.st_size &&
		    after.st_mtim.tv_sec == sb.st_mtim.tv_sec &&
		    after.st_mtim.tv_nsec == sb.st_mtim.tv_nsec &&
		    after.st_ctim.tv_sec == sb.st_ctim.tv_sec &&
		    after.st_ctim.tv_nsec == sb.st_ctim.tv_nsec)
			cache_put(&sb, out);
	}
	close(fd);
	return rc;
}

/* ---- thread to process ------------------------------------------------ */

/*
 * Thread id -> process id, as last confirmed: one atomic word per slot
 * (tid in the high half, tgid in the low), so readers take no lock. An
 * entry is only a guess; fs_caller_establish() checks it after pinning.
 */
#define TGID_CACHE_SIZE 1024
static _Atomic uint64_t tgid_cache[TGID_CACHE_SIZE];

static pid_t tgid_cache_get(pid_t tid)
{
	uint64_t v = atomic_load_explicit(&tgid_cache[(uint32_t)tid % TGID_CACHE_SIZE],
					  memory_order_relaxed);
	return (pid_t)(v >> 32) == tid ? (pid_t)(uint32_t)v : 0;
}

static void tgid_cache_put(pid_t tid, pid_t tgid)
{
	atomic_store_explicit(&tgid_cache[(uint32_t)tid % TGID_CACHE_SIZE],
			      (uint64_t)(uint32_t)tid << 32 | (uint32_t)tgid, memory_order_relaxed);
}

/* ---- establishing the caller ------------------------------------------ */

void fs_caller_establish(struct fs_caller *c, bool want_hash)
{
	if (c->established && (c->hashed || !want_hash))
		return;
	/* A second call (the hash is now wanted) re-establishes everything. */
	c->established = true;
	c->pc.known = false;
	c->pc.exe = NULL;
	c->pc.cgroup = NULL;
	c->pc.has_exe_sha256 = false;
	c->pc.pid = c->tid;
	if (c->tid <= 0)
		return;          /* pid 0: a request the kernel made on nobody's behalf */

	/*
	 * pidfd_open() accepts only a thread-group leader, so when it takes
	 * the thread id as it is, that id is the process. A thread of a
	 * multi-threaded caller (Go, Python, any thread pool) is mapped to
	 * its process: by the cache of earlier answers, else by asking
	 * /proc/TID/status - and either way confirmed below, after pinning,
	 * by the thread being one of the pinned process's tasks.
	 */
	pid_t tgid = c->tid;
	bool from_cache = false;
	int pidfd = (int)syscall(SYS_pidfd_open, tgid, 0);
	if (pidfd < 0) {
		pid_t t = tgid_cache_get(c->tid);
		if (t > 0 && (pidfd = (int)syscall(SYS_pidfd_open, t, 0)) >= 0) {
			tgid = t;
			from_cache = true;
		} else if (thread_tgid(c->tid, &tgid) < 0 ||
			   (pidfd = (int)syscall(SYS_pidfd_open, tgid, 0)) < 0) {
			return;
		}
	}
	char path[96];
	struct stat sb;
	/*
	 * The tgid was read before the pidfd pinned a process: if that pid was
	 * reused in between, the new process does not hold our thread. (When
	 * the thread id was the process id, the pidfd pinned whoever holds
	 * it, and the check could only confirm itself.)
	 */
	snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)tgid, (int)c->tid);
	if (tgid != c->tid && stat(path, &sb) < 0) {
		if (!from_cache)
			goto out;
		/* a stale answer (the thread id was reused): ask /proc */
		close(pidfd);
		if (thread_tgid(c->tid, &tgid) < 0 ||
		    (pidfd = (int)syscall(SYS_pidfd_open, tgid, 0)) < 0)
			return;
		snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)tgid, (int)c->tid);
		if (stat(path, &sb) < 0)
			goto out;
	}
	if (tgid != c->tid)
		tgid_cache_put(c->tid, tgid);

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)tgid);
	ssize_t n = readlink(path, c->exe, sizeof(c->exe) - 1);
	if (n <= 0)
		goto out;        /* kernel threads have no executable */
	c->exe[n] = '\0';
	/* no cgroup is not a doubt about the process: only a cgroup binding refuses it */
	bool has_cgroup = caller_cgroup(tgid, c->cgroup, sizeof(c->cgroup)) == 0;

	if (want_hash) {
		c->hashed = true;
		c->pc.has_exe_sha256 = exe_sha256(tgid, c->pc.exe_sha256) == 0;
		if (!c->pc.has_exe_sha256)
			goto out;
	}
	/*
	 * Still alive at the end: a pid is not handed to another process
	 * while its holder lives, so every /proc/TGID read above was of the
	 * process the pidfd pinned. Otherwise we know nothing.
	 */
	if (!pidfd_alive(pidfd))
		goto out;
	c->pc.pid = tgid;
	c->pc.exe = c->exe;
	c->pc.cgroup = has_cgroup ? c->cgroup : NULL;
	c->pc.known = true;
out:
	close(pidfd);
}

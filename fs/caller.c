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
 * (/proc/PID/cgroup) is read inside the same pinned window, and only
 * when asked for: an agent bound to a cgroup is concerned (four system
 * calls an open of any other agent does without). The hash is taken
 * from /proc/PID/exe itself - the very inode the
 * process executes - so renaming, replacing or symlinking the path on
 * disk cannot fool it; digests are cached by file identity (device,
 * inode, size, mtime and ctime) because hashing a large binary on every
 * open would be slow.
 *
 * The link alone does not say the process runs that program (issue 14):
 * in a user namespace of its own a process may point it anywhere
 * (prctl PR_SET_MM_MAP), and the bound program itself may carry a
 * preloaded library or a tracer. So for agents bound to an executable
 * the process is also verified (exe_verify): same user namespace as the
 * daemon, no tracer on any thread, its program text a mapping of that
 * executable, and no executable mapping of a file anyone but root owns
 * or may write. Hashing is bounded: only for callers whose uid and gid
 * can match (resolve.c asks policy_match_ids first), at most
 * max_exe_hash_bytes of file, at most HASH_MAX_BUSY at once, and never
 * under a lock another request needs.
 */
#include "fs/fs.h"

#include <dirent.h>
#include <stddef.h>
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
	/* not the two path buffers (8 KiB a request): read only once filled */
	memset(c, 0, offsetof(struct fs_caller, exe));
	c->exe[0] = c->cgroup[0] = '\0';
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

/* ---- settings -------------------------------------------------------- */

static uint64_t max_hash_bytes = STORE_DEFAULT_MAX_EXE_HASH;
/* the daemon's user namespace; callers must share it (st_ino 0: unknown) */
static dev_t userns_dev;
static ino_t userns_ino;

int fs_caller_init(uint64_t max_exe_hash_bytes)
{
	struct stat sb;

	if (max_exe_hash_bytes)
		max_hash_bytes = max_exe_hash_bytes;
	if (stat("/proc/self/ns/user", &sb) < 0)
		return -errno;
	userns_dev = sb.st_dev;
	userns_ino = sb.st_ino;
	return 0;
}

/* ---- digest cache ------------------------------------------------------ */

/*
 * Keyed by everything that changes when the file's content may have:
 * device, inode, size, mtime, and ctime too (which, unlike mtime, cannot
 * be set back by the file's owner).
 */
struct hash_entry {
	bool used;
	bool too_big;                /* larger than max_exe_hash_bytes: refused, said once */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim, ctim;
	uint8_t sha256[POLICY_SHA256_BYTES];
};

#define HASH_CACHE_SIZE 64
static struct hash_entry hash_cache[HASH_CACHE_SIZE];
static unsigned hash_next;
/* guards the cache and hash_busy; never held while a file is read */
static pthread_mutex_t hash_lock = PTHREAD_MUTEX_INITIALIZER;
/*
 * Hashes in progress. Beyond HASH_MAX_BUSY a caller is refused at once
 * rather than queued, so hashing can hold at most this many of libfuse's
 * worker threads (ten by default) and other requests always find one.
 */
#define HASH_MAX_BUSY 3
static unsigned hash_busy;

static bool same_file(const struct hash_entry *e, const struct stat *sb)
{
	return e->used && e->dev == sb->st_dev && e->ino == sb->st_ino &&
	       e->size == sb->st_size &&
	       e->mtim.tv_sec == sb->st_mtim.tv_sec && e->mtim.tv_nsec == sb->st_mtim.tv_nsec &&
	       e->ctim.tv_sec == sb->st_ctim.tv_sec && e->ctim.tv_nsec == sb->st_ctim.tv_nsec;
}

/*
 * 0 with the digest, -EFBIG for a file remembered as too large, -ENOENT
 * when not cached - and then, when hashing is allowed to start (a slot is
 * free), *slot is set and the caller must hash_done().
 */
static int cache_get(const struct stat *sb, uint8_t out[POLICY_SHA256_BYTES], bool *slot)
{
	int rc = -ENOENT;
	*slot = false;
	pthread_mutex_lock(&hash_lock);
	for (unsigned i = 0; i < HASH_CACHE_SIZE; i++) {
		if (same_file(&hash_cache[i], sb)) {
			memcpy(out, hash_cache[i].sha256, POLICY_SHA256_BYTES);
			rc = hash_cache[i].too_big ? -EFBIG : 0;
			break;
		}
	}
	if (rc == -ENOENT && hash_busy < HASH_MAX_BUSY) {
		hash_busy++;
		*slot = true;
	}
	pthread_mutex_unlock(&hash_lock);
	return rc;
}

static void hash_done(void)
{
	pthread_mutex_lock(&hash_lock);
	hash_busy--;
	pthread_mutex_unlock(&hash_lock);
}

static void cache_put(const struct stat *sb, const uint8_t sha[POLICY_SHA256_BYTES], bool too_big)
{
	pthread_mutex_lock(&hash_lock);
	struct hash_entry *e = &hash_cache[hash_next++ % HASH_CACHE_SIZE];
	e->used = true;
	e->too_big = too_big;
	e->dev = sb->st_dev;
	e->ino = sb->st_ino;
	e->size = sb->st_size;
	e->mtim = sb->st_mtim;
	e->ctim = sb->st_ctim;
	memcpy(e->sha256, sha, POLICY_SHA256_BYTES);
	pthread_mutex_unlock(&hash_lock);
}

/*
 * sha256 of the executable that process pid runs: 0, -EFBIG when it is
 * larger than max_exe_hash_bytes (*why says so), -EBUSY when every
 * hashing slot is taken, or another -errno.
 */
static int exe_sha256(pid_t pid, const char *exe, uint8_t out[POLICY_SHA256_BYTES],
		      const char **why)
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
	bool slot;
	int rc = cache_get(&sb, out, &slot);
	if (rc == 0 || rc == -EFBIG) {
		if (rc == -EFBIG)
			*why = "executable too large to hash";
		close(fd);
		return rc;
	}
	if ((uint64_t)sb.st_size > max_hash_bytes) {
		/* refused unread; said once per file, not once per open */
		if (slot)
			hash_done();
		cache_put(&sb, out, true);
		/* the caller chose the name: no control byte reaches the log */
		char name[256];
		size_t i;
		for (i = 0; exe[i] && i + 1 < sizeof(name); i++)
			name[i] = (unsigned char)exe[i] < 0x20 || exe[i] == 0x7f ? '?' : exe[i];
		name[i] = '\0';
		fs_log_error("executable %s (pid %d) is larger than [mount] max_exe_hash_bytes "
			     "(%llu): not hashed, refused as exe-unverified", name, (int)pid,
			     (unsigned long long)max_hash_bytes);
		*why = "executable too large to hash";
		close(fd);
		return -EFBIG;
	}
	if (!slot) {
		*why = "every hashing slot busy";
		close(fd);
		return -EBUSY;
	}
	crypto_hash_sha256_state state;
	crypto_hash_sha256_init(&state);
	static const size_t chunk = 64 * 1024;
	unsigned char *buf = malloc(chunk);
	if (!buf) {
		hash_done();
		close(fd);
		return -ENOMEM;
	}
	uint64_t total = 0;
	rc = 0;
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
		/* grown since fstat: no more than the bound is ever read */
		total += (uint64_t)n;
		if (total > max_hash_bytes) {
			rc = -EFBIG;
			*why = "executable too large to hash";
			break;
		}
		crypto_hash_sha256_update(&state, buf, (unsigned long long)n);
	}
	free(buf);
	hash_done();
	if (rc == 0) {
		/* The file may have changed while we read it: only cache a stable one. */
		struct stat after;
		crypto_hash_sha256_final(&state, out);
		if (fstat(fd, &after) == 0 && after.st_size == sb.st_size &&
		    after.st_mtim.tv_sec == sb.st_mtim.tv_sec &&
		    after.st_mtim.tv_nsec == sb.st_mtim.tv_nsec &&
		    after.st_ctim.tv_sec == sb.st_ctim.tv_sec &&
		    after.st_ctim.tv_nsec == sb.st_ctim.tv_nsec)
			cache_put(&sb, out, false);
	}
	close(fd);
	return rc;
}

/* ---- does the process run its executable? ------------------------------ */

/* TracerPid of a status text is 0; *threads gets its Threads count (may be NULL). */
static bool status_untraced(const char *buf, long *threads)
{
	const char *line = strstr(buf, "\nTracerPid:");
	if (threads) {
		const char *t = strstr(buf, "\nThreads:");
		*threads = t ? strtol(t + 9, NULL, 10) : 0;
	}
	return line && strtol(line + 11, NULL, 10) == 0;
}

/*
 * Every thread of tgid has TracerPid 0: a tracer of any one thread reads
 * the whole address space. A single-threaded process (the common case)
 * costs one read of its status.
 */
static bool untraced(pid_t tgid)
{
	char path[96], buf[4096];
	long threads;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tgid);
	if (read_small(path, buf, sizeof(buf)) < 0 || !status_untraced(buf, &threads))
		return false;
	if (threads == 1)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)tgid);
	DIR *d = opendir(path);
	if (!d)
		return false;
	bool ok = true;
	struct dirent *de;
	while (ok && (de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/status", (int)tgid, de->d_name);
		int rc = read_small(path, buf, sizeof(buf));
		if (rc == -ENOENT || rc == -ESRCH)
			continue;        /* that thread has ended: it holds nothing now */
		ok = rc == 0 && status_untraced(buf, NULL);
	}
	closedir(d);
	return ok;
}

/* Field 26 of /proc/PID/stat: where the kernel put the program text at exec. */
static unsigned long start_code(pid_t tgid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tgid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return 0;
	/* after "(comm) " comes field 3; comm may hold spaces and parentheses */
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 26; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoul(p + 1, NULL, 10) : 0;
}

/*
 * Walk the executable file mappings of tgid: each file must be owned by
 * root and writable by no group or other (an injected library, the
 * agent's own build of anything, a memfd are not), and the mapping that
 * holds the program text must be of the executable *exe. The files are
 * stat'ed through /proc/PID/map_files, which names the mapped inode
 * itself, not whatever the path on disk names now.
 */
static bool mappings_ok(pid_t tgid, const struct stat *exe, const char **why)
{
	unsigned long text = start_code(tgid);
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)tgid);
	FILE *f = fopen(path, "re");
	if (!f || !text) {
		if (f)
			fclose(f);
		*why = "process facts unreadable";
		return false;
	}
	bool ok = true, text_is_exe = false;
	char *line = NULL;
	size_t cap = 0;
	while (ok && getline(&line, &cap, f) > 0) {
		unsigned long lo, hi, ino;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s %*s %*s %lu", &lo, &hi, perms, &ino) != 4) {
			ok = false;
			*why = "process facts unreadable";
			break;
		}
		if (perms[2] != 'x' || ino == 0)
			continue;        /* data, or no file: [vdso], anonymous memory */
		struct stat sb;
		snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", (int)tgid, lo, hi);
		if (stat(path, &sb) < 0) {
			ok = false;
			*why = "process facts unreadable";
		} else if (sb.st_uid != 0 || (sb.st_mode & (S_IWGRP | S_IWOTH))) {
			ok = false;
			*why = "executable mapping of a file not root's or writable by others";
		} else if (lo <= text && text < hi) {
			text_is_exe = sb.st_dev == exe->st_dev && sb.st_ino == exe->st_ino;
		}
	}
	free(line);
	fclose(f);
	if (ok && !text_is_exe) {
		ok = false;
		*why = "program text is not its executable";
	}
	return ok;
}

/*
 * Is pid (pinned by the caller) running its executable as the kernel
 * started it? *why names the first check that failed.
 */
static bool exe_verify(pid_t tgid, const char **why)
{
	char path[64];
	struct stat sb, exe;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)tgid);
	if (userns_ino == 0 || stat(path, &sb) < 0 || sb.st_dev != userns_dev ||
	    sb.st_ino != userns_ino) {
		*why = "another user namespace";
		return false;
	}
	if (!untraced(tgid)) {
		*why = "traced";
		return false;
	}
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)tgid);
	if (stat(path, &exe) < 0) {
		*why = "process facts unreadable";
		return false;
	}
	return mappings_ok(tgid, &exe, why);
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

/* ---- pinned processes -------------------------------------------------- */

/*
 * Thread id -> its process, pinned: the pidfd an earlier establishment
 * opened is kept, so the next request of the same thread needs neither
 * pidfd_open (two for a thread that is not the leader) nor close. A pin
 * is only as good as its process: while the pidfd says the process
 * lives, its pid names nobody else, so facts read from /proc/TGID are
 * its own exactly as with a fresh pidfd; a thread other than the leader
 * is still confirmed one of its tasks at every use (its tid may have
 * been reused by another process since). A pin whose process has exited
 * is dropped and the caller established afresh. The exe, cgroup, checks
 * and hash are read anew every time (a process may exec another program
 * under the same pid): a pin saves the pinning, nothing else.
 *
 * A pin also keeps the thread's own /proc directory (/proc/TGID/task/TID,
 * opened O_PATH once the pidfd has confirmed the process). procfs ties
 * that descriptor to the task itself, not to its number: once the task
 * has gone, every name under it fails, even after its id is reused. So
 * for the common request - no hash, no verification, no cgroup wanted -
 * one readlinkat(taskfd, "exe") both reads the executable and proves the
 * thread, hence its process, is the one pinned: no stat of the task and
 * no poll of the pidfd (establish). A failure there drops the pin and
 * the caller is established afresh.
 *
 * Bounded: PIN_SLOTS slots indexed by tid, a new thread replaces the
 * slot's pin, so a caller spawning threads or processes churns the table
 * (its victims pay the uncached cost, as before) but holds at most
 * 2 * PIN_SLOTS descriptors and PIN_SLOTS small blocks. A pin in use by a request
 * is reference-counted: replacing it never closes a descriptor another
 * thread is polling.
 */
struct pin {
	pid_t tid, tgid;
	int pidfd;
	int taskfd;                  /* /proc/TGID/task/TID, O_PATH; -1 if it could not be opened */
	unsigned refs;               /* one for the table while in it, one per user */
};

#define PIN_SLOTS 64
static struct pin *pins[PIN_SLOTS];
static pthread_mutex_t pin_lock = PTHREAD_MUTEX_INITIALIZER;

static void pin_free(struct pin *p)
{
	close(p->pidfd);
	if (p->taskfd >= 0)
		close(p->taskfd);
	free(p);
}

/* pin_lock held */
static void pin_unref_locked(struct pin *p)
{
	if (--p->refs == 0)
		pin_free(p);
}

/* The pin of tid, with a reference for the caller, or NULL. */
static struct pin *pin_get(pid_t tid)
{
	struct pin *p;

	pthread_mutex_lock(&pin_lock);
	p = pins[(uint32_t)tid % PIN_SLOTS];
	if (p && p->tid == tid)
		p->refs++;
	else
		p = NULL;
	pthread_mutex_unlock(&pin_lock);
	return p;
}

/* Done with p; when stale, it also leaves the table (if still there). */
static void pin_put(struct pin *p, bool stale)
{
	pthread_mutex_lock(&pin_lock);
	struct pin **slot = &pins[(uint32_t)p->tid % PIN_SLOTS];
	unsigned drop = 1;
	if (stale && *slot == p) {
		*slot = NULL;
		drop++;          /* the table's reference too */
	}
	p->refs -= drop;
	if (p->refs == 0)
		pin_free(p);
	pthread_mutex_unlock(&pin_lock);
}

/*
 * Keep pidfd (of tgid, holding tid, just confirmed alive) for the next
 * request of tid; else close it. The task's directory is opened by
 * number, so it is kept only if the pinned process still lives after
 * the open: then neither tgid nor tid can have been handed to another
 * process in between, and the directory is the pinned thread's.
 */
static void pin_keep(pid_t tid, pid_t tgid, int pidfd)
{
	struct pin *p = malloc(sizeof(*p));
	char path[64];

	if (!p) {
		close(pidfd);
		return;
	}
	*p = (struct pin){ .tid = tid, .tgid = tgid, .pidfd = pidfd, .taskfd = -1, .refs = 1 };
	snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)tgid, (int)tid);
	p->taskfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (p->taskfd >= 0 && !pidfd_alive(pidfd)) {
		pin_free(p);
		return;
	}
	pthread_mutex_lock(&pin_lock);
	struct pin **slot = &pins[(uint32_t)tid % PIN_SLOTS];
	if (*slot)
		pin_unref_locked(*slot);
	*slot = p;
	pthread_mutex_unlock(&pin_lock);
}

void fs_caller_pins_free(void)
{
	pthread_mutex_lock(&pin_lock);
	for (int i = 0; i < PIN_SLOTS; i++) {
		if (pins[i])
			pin_unref_locked(pins[i]);
		pins[i] = NULL;
	}
	pthread_mutex_unlock(&pin_lock);
}

/* ---- establishing the caller ------------------------------------------ */

/*
 * Pin the process behind c->tid without the pin table: 0 with *tgid and
 * *pidfd (the caller's to close), or -1 (no such process, or it cannot
 * be confirmed to hold the thread).
 */
static int pin_fresh(const struct fs_caller *c, pid_t *tgid_out, int *pidfd_out)
{
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
			return -1;
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
		close(pidfd);
		if (!from_cache)
			return -1;
		/* a stale answer (the thread id was reused): ask /proc */
		if (thread_tgid(c->tid, &tgid) < 0 ||
		    (pidfd = (int)syscall(SYS_pidfd_open, tgid, 0)) < 0)
			return -1;
		snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)tgid, (int)c->tid);
		if (stat(path, &sb) < 0) {
			close(pidfd);
			return -1;
		}
	}
	if (tgid != c->tid)
		tgid_cache_put(c->tid, tgid);
	*tgid_out = tgid;
	*pidfd_out = pidfd;
	return 0;
}

/*
 * Read the facts of process tgid, pinned by pidfd: true when they are its
 * own (it was alive at the end), with c->pc filled in.
 */
static bool read_facts(struct fs_caller *c, pid_t tgid, int pidfd, bool want_hash,
		       bool want_verify, bool want_cgroup)
{
	char path[96];
	c->pc.exe_verified = false;
	c->pc.has_exe_sha256 = false;
	c->unverified = NULL;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)tgid);
	ssize_t n = readlink(path, c->exe, sizeof(c->exe) - 1);
	if (n <= 0)
		return false;    /* kernel threads have no executable */
	c->exe[n] = '\0';
	/* no cgroup is not a doubt about the process: only a cgroup binding refuses it */
	bool has_cgroup = want_cgroup && caller_cgroup(tgid, c->cgroup, sizeof(c->cgroup)) == 0;

	if (want_verify)
		c->pc.exe_verified = exe_verify(tgid, &c->unverified);
	/* an unverified process is refused whatever its digest: no hash for it */
	if (want_hash && (!want_verify || c->pc.exe_verified)) {
		int rc = exe_sha256(tgid, c->exe, c->pc.exe_sha256, &c->unverified);
		c->pc.has_exe_sha256 = rc == 0;
		/* not hashed for its size or for load: refused as unverified, not unknown */
		if (rc == -EFBIG || rc == -EBUSY)
			c->pc.exe_verified = false;
		else if (rc < 0)
			return false;
	}
	/*
	 * Still alive at the end: a pid is not handed to another process
	 * while its holder lives, so every /proc/TGID read above was of the
	 * process the pidfd pinned. Otherwise we know nothing.
	 */
	if (!pidfd_alive(pidfd))
		return false;
	c->pc.pid = tgid;
	c->pc.exe = c->exe;
	c->pc.cgroup = has_cgroup ? c->cgroup : NULL;
	c->pc.known = true;
	return true;
}

static void establish(struct fs_caller *c, bool want_hash, bool want_verify, bool want_cgroup)
{
	if (c->established && (c->hashed || !want_hash) && (c->verified || !want_verify) &&
	    (c->cgrouped || !want_cgroup))
		return;
	/* A second call (the hash, the check or the cgroup is now wanted) re-establishes everything. */
	want_hash |= c->hashed;
	want_verify |= c->verified;
	want_cgroup |= c->cgrouped;
	/* asked for, whatever comes of it: a failure here is not retried */
	c->hashed = want_hash;
	c->verified = want_verify;
	c->cgrouped = want_cgroup;
	c->established = true;
	c->pc.known = false;
	c->pc.exe = NULL;
	c->pc.cgroup = NULL;
	c->pc.exe_verified = false;
	c->pc.has_exe_sha256 = false;
	c->pc.pid = c->tid;
	c->unverified = NULL;
	if (c->tid <= 0)
		return;          /* pid 0: a request the kernel made on nobody's behalf */

	struct pin *p = pin_get(c->tid);
	if (p && !want_hash && !want_verify && !want_cgroup && p->taskfd >= 0) {
		/* the common request: one system call (see "pinned processes") */
		ssize_t n = readlinkat(p->taskfd, "exe", c->exe, sizeof(c->exe) - 1);
		pid_t tgid = p->tgid;
		pin_put(p, n <= 0);
		if (n > 0) {
			c->exe[n] = '\0';
			c->pc.pid = tgid;
			c->pc.exe = c->exe;
			c->pc.known = true;
			return;
		}
		p = NULL;        /* gone, or its thread has: established afresh below */
	}
	if (p) {
		char path[96];
		struct stat sb;
		bool ok;
		/* a thread other than the leader: still one of the pinned process's tasks? */
		snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)p->tgid, (int)c->tid);
		ok = (p->tgid == c->tid || stat(path, &sb) == 0) &&
		     read_facts(c, p->tgid, p->pidfd, want_hash, want_verify, want_cgroup);
		/* not: the pinned process has gone or no longer holds the thread */
		pin_put(p, !ok);
		if (ok)
			return;
		c->pc.known = false;
	}
	pid_t tgid;
	int pidfd;
	if (pin_fresh(c, &tgid, &pidfd) < 0)
		return;
	if (read_facts(c, tgid, pidfd, want_hash, want_verify, want_cgroup))
		pin_keep(c->tid, tgid, pidfd);
	else
		close(pidfd);
}

void fs_caller_establish(struct fs_caller *c, bool want_hash, bool want_cgroup)
{
	establish(c, want_hash, false, want_cgroup);
}

void fs_caller_establish_exe(struct fs_caller *c, bool want_hash, bool want_cgroup)
{
	establish(c, want_hash, true, want_cgroup);
}

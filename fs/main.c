/*
 * main.c - the scopeholdfs process: arguments, configuration, hardening,
 * the mount and its orderly end.
 *
 * Order matters and is unwound in reverse (the goto ladder at the end):
 * harden the process first (no core dumps, not ptrace-readable), read the
 * configuration, check the store opens (so mistakes are reported on the
 * terminal, before anything is mounted), clear a stale mount left by a
 * killed daemon, mount with options this program fixes, daemonize, and
 * only then open the store for good - a SQLite connection must not cross
 * fork(), and memory locks are not inherited by the child either. The
 * mount options are never taken from the command line: allow_other is
 * what lets agents of other uids in, and leaving out default_permissions
 * is what makes the daemon, not the kernel, decide and audit every
 * access.
 */
#include "fs/fs.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#define MOUNT_OPTIONS "ro,allow_other,nosuid,nodev,noexec,fsname=scopehold,subtype=scopeholdfs"

static void usage(FILE *out)
{
	fputs("usage: scopeholdfs [-c CONFIG] [-f] [-d] [MOUNTPOINT]\n"
	      "Mount the ScopeHold store read-only: MOUNTPOINT/AGENT/PROVIDER/NAME.\n"
	      "\n"
	      "  -c CONFIG    configuration file (default: $SCOPEHOLD_CONFIG, else\n"
	      "               " STORE_DEFAULT_CONFIG ")\n"
	      "  -f           stay in the foreground\n"
	      "  -d           log every request to stderr (never values); implies -f\n"
	      "  -h, --help   show this help\n"
	      "  --version    show the version\n"
	      "\n"
	      "MOUNTPOINT defaults to [mount] mountpoint of the configuration.\n", out);
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;
	char line[PATH_MAX + 256];
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, FS_PROGRAM ": %s\n", line);
	return 1;
}

/* No core dumps, no ptrace by other users: the process holds plaintext. */
static int harden(void)
{
	struct rlimit none = { 0, 0 };
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return fail("cannot disable core dumps: %s", strerror(errno));
	if (setrlimit(RLIMIT_CORE, &none) < 0)
		return fail("cannot disable core dumps: %s", strerror(errno));
	return 0;
}

/*
 * Best effort: keep pages out of swap. MCL_ONFAULT locks pages as they are
 * touched instead of populating every future mapping (thread stacks are
 * 8 MiB each); sodium_malloc() memory is locked on its own anyway.
 */
static void lock_memory(void)
{
	int flags = MCL_CURRENT | MCL_FUTURE;
#ifdef MCL_ONFAULT
	if (mlockall(flags | MCL_ONFAULT) == 0)
		return;
#endif
	if (mlockall(flags) < 0)
		fs_log_error("warning: cannot lock memory (%s); continuing", strerror(errno));
}

/* The daemon chdir()s to "/": relative paths are taken from where it started. */
static int make_absolute(char *path, size_t size)
{
	if (path[0] == '\0' || path[0] == '/')
		return 0;
	char cwd[PATH_MAX], out[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	if ((size_t)snprintf(out, sizeof(out), "%s/%s", cwd, path) >= sizeof(out) ||
	    strlen(out) >= size)
		return -ENAMETOOLONG;
	memcpy(path, out, strlen(out) + 1);
	return 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
	char *out = s;
	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/* Is a live scopeholdfs already mounted at mp? Mounting over it would hide it. */
static bool mounted_here(const char *mp)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	char *line = NULL;
	size_t cap = 0;
	bool found = false;
	while (!found && getline(&line, &cap, f) > 0) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER */
		char *save = NULL, *tok = strtok_r(line, " ", &save);
		for (int i = 0; tok && i < 4; i++)
			tok = strtok_r(NULL, " ", &save);
		if (!tok)
			continue;
		unescape_octal(tok);
		if (strcmp(tok, mp) != 0)
			continue;
		while ((tok = strtok_r(NULL, " ", &save)) && strcmp(tok, "-") != 0)
			;
		tok = tok ? strtok_r(NULL, " ", &save) : NULL;
		found = tok && strcmp(tok, "fuse.scopeholdfs") == 0;
	}
	free(line);
	fclose(f);
	return found;
}

/*
 * A daemon killed with -9 leaves its mount behind: every access fails with
 * ENOTCONN. Detach it so this daemon can mount in its place.
 */
static int check_mountpoint(const char *mp, char *resolved)
{
	struct stat sb;
	if (stat(mp, &sb) < 0) {
		if (errno == ENOTCONN) {
			if (umount2(mp, MNT_DETACH) < 0 || stat(mp, &sb) < 0)
				return fail("stale mount at %s (a killed daemon?); "
					    "clear it with: fusermount3 -uz %s", mp, mp);
			fs_log_error("replaced a stale mount at %s", mp);
		} else if (errno == ENOENT) {
			/*
			 * /run is empty after a boot: make the mountpoint, but only
			 * its last component, so a mistyped path fails loudly.
			 */
			if (mkdir(mp, 0755) < 0 || stat(mp, &sb) < 0)
				return fail("mountpoint '%s' does not exist and cannot be created: %s",
					    mp, strerror(errno));
			fs_log_error("created the mountpoint %s", mp);
		} else {
			return fail("mountpoint '%s': %s", mp, strerror(errno));
		}
	}
	if (!S_ISDIR(sb.st_mode))
		return fail("mountpoint '%s' is not a directory", mp);
	if (!realpath(mp, resolved))
		return fail("mountpoint '%s': %s", mp, strerror(errno));
	if (mounted_here(resolved))
		return fail("'%s' is already mounted (is another scopeholdfs running?)", mp);
	return 0;
}

/*
 * FUSE names the caller by its pid in the daemon's pid namespace, and
 * caller.c looks that number up in /proc. If /proc belongs to another
 * namespace, the number names an unrelated process - one a caller could
 * arrange by forking until it gets the pid it wants. Refuse to run so.
 */
static int check_pid_namespace(void)
{
	char buf[32];
	ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);
	if (n <= 0)
		return fail("cannot read /proc/self: %s (is /proc mounted?)", strerror(errno));
	buf[n] = '\0';
	if (strtol(buf, NULL, 10) != (long)getpid())
		return fail("/proc belongs to another pid namespace than this process, so callers "
			    "would be looked up as the wrong processes; run in the host pid namespace "
			    "or with a matching /proc (unshare --pid --fork --mount-proc)");
	return 0;
}

/* ---- housekeeping thread ------------------------------------------------------ */

/*
 * One helper thread, off every request's path: it writes coalesced
 * denials within about a second and, every INVAL_TICK_MS, drops cached
 * pages of closed secret files (queued by fs_invalidate_later).
 */
#define INVAL_QUEUE 256
#define INVAL_TICK_MS 200

struct flusher {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	struct store *st;
	struct fuse_session *se;
	uint64_t inval[INVAL_QUEUE]; /* nodes waiting for invalidation, under lock */
	int ninval;
	char import_error[512];      /* the journal import failure last logged */
	time_t import_logged;
};

static struct flusher *the_flusher;

void fs_invalidate_later(uint64_t ino)
{
	struct flusher *fl = the_flusher;
	if (!fl)
		return;
	/*
	 * No wake-up: a wake-up per close would cost a context switch on
	 * every open. The thread drains the queue on its next tick, and a
	 * node already queued is not queued twice.
	 */
	pthread_mutex_lock(&fl->lock);
	for (int i = 0; i < fl->ninval; i++) {
		if (fl->inval[i] == ino) {
			pthread_mutex_unlock(&fl->lock);
			return;
		}
	}
	if (fl->ninval < INVAL_QUEUE)
		fl->inval[fl->ninval++] = ino;
	/* queue full: the next open of those files drops their pages anyway */
	pthread_mutex_unlock(&fl->lock);
}

static void *flusher_run(void *arg)
{
	struct flusher *fl = arg;
	struct timespec next, tick;
	clock_gettime(CLOCK_REALTIME, &next);
	pthread_mutex_lock(&fl->lock);
	while (!fl->stop) {
		/* a tick every INVAL_TICK_MS for invalidations, every second for denials */
		clock_gettime(CLOCK_REALTIME, &tick);
		tick.tv_nsec += INVAL_TICK_MS * 1000000L;
		if (tick.tv_nsec >= 1000000000L) {
			tick.tv_sec++;
			tick.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&fl->wake, &fl->lock, &tick);
		if (fl->stop)
			break;
		uint64_t nodes[INVAL_QUEUE];
		int n = fl->ninval;
		memcpy(nodes, fl->inval, sizeof(nodes[0]) * (size_t)n);
		fl->ninval = 0;
		pthread_mutex_unlock(&fl->lock);
		/*
		 * -ENOENT: the kernel already forgot the node, nothing is cached.
		 * A node freed meanwhile is never dereferenced: the kernel only
		 * matches the number against the inodes it holds.
		 */
		for (int i = 0; i < n; i++)
			(void)fuse_lowlevel_notify_inval_inode(fl->se, nodes[i], 0, 0);
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		/*
		 * Served values' events into the hash-chained trail. They stay
		 * in the journal while this fails: log the failure when it
		 * changes, and once a minute while it lasts.
		 */
		int irc = store_journal_tick(fl->st);
		/*
		 * While the database is unreachable nothing else is tried: the
		 * tick's import above is the retry, events stay in the journal
		 * and denials in memory, and the outage is logged once.
		 */
		if (fs_outage_check(fl->st)) {
			pthread_mutex_lock(&fl->lock);
			continue;
		}
		if (irc < 0) {
			if (strcmp(store_error(), fl->import_error) != 0 ||
			    now.tv_sec - fl->import_logged >= 60) {
				fs_log_error("audit import failed: %s", store_error());
				snprintf(fl->import_error, sizeof(fl->import_error), "%s", store_error());
				fl->import_logged = now.tv_sec;
			}
		} else {
			fl->import_error[0] = '\0';
		}
		if (now.tv_sec >= next.tv_sec) {
			if (store_deny_flush(fl->st) < 0)
				fs_log_error("audit write failed: %s", store_error());
			fs_controls_tick(fl->st);   /* controls (issue 12): fs/controls.c */
			next = now;
			next.tv_sec += 1;
		}
		pthread_mutex_lock(&fl->lock);
	}
	pthread_mutex_unlock(&fl->lock);
	return NULL;
}

static int flusher_start(struct flusher *fl, struct store *st, struct fuse_session *se)
{
	sigset_t all, old;
	fl->stop = false;
	fl->st = st;
	fl->se = se;
	fl->ninval = 0;
	fl->import_error[0] = '\0';
	fl->import_logged = 0;
	pthread_mutex_init(&fl->lock, NULL);
	pthread_cond_init(&fl->wake, NULL);
	/* Signals belong to the main thread, where FUSE's handlers end the loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&fl->thread, NULL, flusher_run, fl);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		the_flusher = fl;
	return -rc;
}

static void flusher_stop(struct flusher *fl)
{
	pthread_mutex_lock(&fl->lock);
	fl->stop = true;
	the_flusher = NULL;
	pthread_cond_signal(&fl->wake);
	pthread_mutex_unlock(&fl->lock);
	pthread_join(fl->thread, NULL);
	fl->ninval = 0;
}

/* ---- main --------------------------------------------------------------------- */

/* Open the store and take its audit journal: this process serves it. */
static int serve_open(const struct store_config *cfg, struct store **out)
{
	uint64_t dropped = 0;
	int rc = store_open(cfg, FS_ACTOR, out);
	if (rc < 0)
		return rc;
	rc = store_serve(*out, &dropped);
	if (rc < 0) {
		/* nothing is served yet, so closing sets no other message */
		store_close(*out);
		*out = NULL;
		return rc;
	}
	if (dropped)
		fs_log_error("discarded %llu bytes of an audit-journal record cut short by a crash",
			     (unsigned long long)dropped);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static struct fs_ctx ctx;
	const char *config = NULL, *mp_arg = NULL;
	bool foreground = false;
	char mp[PATH_MAX];
	int c, status = 1;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:fdh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'd':
			ctx.debug = true;
			foreground = true;   /* a daemon's stderr is /dev/null */
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf(FS_PROGRAM " " FS_VERSION "\n");
			return 0;
		case ':':
			fail("option '%s' needs an argument (see --help)", argv[optind - 1]);
			return 2;
		default:
			if (optopt)
				fail("unknown option '-%c' (see --help)", optopt);
			else
				fail("unknown option '%s' (see --help)", argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc)
		mp_arg = argv[optind++];
	if (optind < argc) {
		fail("too many arguments (see --help)");
		return 2;
	}

	if (geteuid() != 0)
		return fail("must run as root (allow_other and per-caller checks need it)");
	if (check_pid_namespace())
		return 1;
	if (harden())
		return 1;
	openlog(FS_PROGRAM, LOG_PID, LOG_DAEMON);

	if (store_config_load(config, &ctx.cfg) < 0)
		return fail("%s", store_error());
	if (!mp_arg && ctx.cfg.mountpoint[0])
		mp_arg = ctx.cfg.mountpoint;
	if (!mp_arg)
		return fail("no mountpoint: give one or set [mount] mountpoint in %s",
			    ctx.cfg.path[0] ? ctx.cfg.path : "the configuration");
	/* the alert program runs as root: no other user may swap it on the way */
	if (ctx.cfg.alert_exec[0] && store_check_path(ctx.cfg.alert_exec, true) < 0)
		return fail("[alerts] exec: %s", store_error());
	if (fs_alert_check(&ctx.cfg) < 0)   /* controls (issue 12): fs/alert.c */
		return fail("[alerts] exec '%s' must be a regular executable owned by root and "
			    "writable by no one else: %s", ctx.cfg.alert_exec, strerror(-fs_alert_check(&ctx.cfg)));
	if (fs_caller_init(ctx.cfg.max_exe_hash_bytes) < 0)
		fs_log_error("cannot read this process's user namespace: callers of agents bound "
			     "to an executable will be refused as exe-unverified");
	if (make_absolute(ctx.cfg.store_path, sizeof(ctx.cfg.store_path)) < 0 ||
	    make_absolute(ctx.cfg.key_file, sizeof(ctx.cfg.key_file)) < 0)
		return fail("cannot resolve the store's path: %s", strerror(errno));

	/*
	 * Open once now so a bad key or store, or a store another daemon
	 * serves, is reported here, before mounting.
	 */
	if (serve_open(&ctx.cfg, &ctx.st) < 0)
		return fail("%s", store_error());
	if (!foreground) {
		store_close(ctx.st);   /* no SQLite connection across fork() */
		ctx.st = NULL;
	}

	if (check_mountpoint(mp_arg, mp))
		goto out_store;

	char *fargv[] = { FS_PROGRAM, "-o", MOUNT_OPTIONS, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	ctx.started = time(NULL);
	struct fuse_session *se = fuse_session_new(&args, &fs_operations, sizeof(fs_operations), &ctx);
	fuse_opt_free_args(&args);
	if (!se) {
		fail("cannot set up the filesystem");
		goto out_store;
	}
	ctx.se = se;
	if (fuse_session_mount(se, mp) != 0) {
		fail("cannot mount at %s", mp);
		goto out_destroy;
	}
	if (fuse_daemonize(foreground) != 0) {
		fail("cannot daemonize");
		goto out_unmount;
	}
	lock_memory();
	if (!ctx.st && serve_open(&ctx.cfg, &ctx.st) < 0) {
		fs_log_error("%s", store_error());
		goto out_unmount;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		fs_log_error("cannot install signal handlers");
		goto out_unmount;
	}
	struct flusher fl;
	int rc = fs_alert_start(&ctx.cfg, ctx.st);   /* controls (issue 12): fs/alert.c */
	if (rc < 0) {
		fs_log_error("cannot start alert delivery: %s", strerror(-rc));
		goto out_signals;
	}
	rc = flusher_start(&fl, ctx.st, se);
	if (rc < 0) {
		fs_log_error("cannot start the denial flusher: %s", strerror(-rc));
		goto out_signals;
	}

	/* Type=notify: READY=1 once a request through the mount is answered */
	rc = fs_notify_ready_when_serving(mp);
	if (rc < 0)
		fs_log_error("cannot start the readiness notification: %s", strerror(-rc));

	struct fuse_loop_config lc = { .clone_fd = 0, .max_idle_threads = 10 };
	rc = fuse_session_loop_mt(se, &lc);
	if (fs_notify("STOPPING=1") < 0)
		fs_log_error("cannot notify the service manager of the stop");
	/* A signal ends the loop with the signal number; only <0 is a failure. */
	if (rc < 0)
		fs_log_error("the request loop failed: %s", strerror(-rc));
	else
		status = 0;

	flusher_stop(&fl);
out_signals:
	fs_alert_stop(ctx.st);   /* controls (issue 12) */
	fuse_remove_signal_handlers(se);
out_unmount:
	fuse_session_unmount(se);
out_destroy:
	fuse_session_destroy(se);
	fs_value_release_all();   /* files still open at unmount get no release() */
	fs_listing_release_all(); /* nor do directories their releasedir() */
	fs_node_free_all();
	fs_caller_pins_free();
out_store:
	if (ctx.st && store_deny_flush(ctx.st) < 0)
		fs_log_error("audit write failed: %s", store_error());
	if (ctx.st) {
		/* what the run cost in commits and syncs: the benchmark reads this line */
		struct store_stats stats;
		store_stats_get(ctx.st, &stats);
		fprintf(stderr, FS_PROGRAM ": served %llu resolves in %llu commits and %llu audit syncs\n",
			(unsigned long long)stats.resolves, (unsigned long long)stats.commits,
			(unsigned long long)stats.syncs);
	}
	store_close(ctx.st);
	closelog();
	return status;
}

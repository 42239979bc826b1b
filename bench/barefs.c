/*
 * barefs.c - the bare-FUSE floor of the benchmark: the cheapest server
 * that answers the same requests scopeholdfs answers for one read.
 *
 * It serves one static file of about 100 bytes at /bench/prov/secret -
 * the same depth as MOUNT/AGENT/PROVIDER/NAME, so the kernel sends the
 * same number of LOOKUPs - with no checks at all, through the same
 * high-level libfuse API, the same multi-threaded loop, the same mount
 * options and the same kernel cache settings as scopeholdfs (no entry,
 * attribute or negative caching, since per-caller answers need that).
 * Files are opened with direct I/O like scopeholdfs by default; with
 * --kernel-cache they keep the page cache (keep_cache), the floor for
 * `[mount] cache = kernel`. Whatever scopeholdfs costs above this program
 * is the price of its decisions, decryption and audit.
 *
 * With --default-timeouts it is instead the floor any FUSE filesystem
 * gets out of the box: libfuse's default 1 s entry and attribute
 * timeouts, so the kernel answers most LOOKUPs and GETATTRs itself. That
 * is the floor a user compares with (issue 10); scopeholdfs may keep
 * names but never attributes, so it cannot reach it exactly.
 *
 * It also refuses, with EACCES, the LOOKUP of the name `refused` inside
 * /bench, so opening /bench/refused/secret fails at the lookup step the
 * way scopeholdfs refuses a caller bound to no agent at AGENT/PROVIDER.
 * That is the floor of a refusal at LOOKUP: an error reply is never
 * cached (in either mode), and the kernel serializes concurrent failing
 * lookups of one name in one directory, so what any FUSE server gets
 * for such a refusal - and how it scales with readers - is measured
 * here, with no decision behind the error.
 */
#define FUSE_USE_VERSION 35

#include <errno.h>
#include <fuse.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BAREFS_OPTIONS "ro,allow_other,nosuid,nodev,noexec,fsname=barefs,subtype=barefs"

/* The same 100 bytes shbench writes to tmpfs and stores as the secret. */
static const char barefs_value[] =
	"sk-bench-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	"0123456789-abcdefghijklmnopq\n";
#define BAREFS_VALUE_LEN (sizeof(barefs_value) - 1)

static bool barefs_kernel_cache;
static bool barefs_default_timeouts;
static time_t barefs_started;

static void *barefs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	/* libfuse's defaults are 1 s entry and attribute timeouts, no negative ones */
	cfg->entry_timeout = barefs_default_timeouts ? 1.0 : 0;
	cfg->attr_timeout = barefs_default_timeouts ? 1.0 : 0;
	cfg->negative_timeout = 0;
	cfg->use_ino = 0;
	cfg->readdir_ino = 0;
	cfg->hard_remove = 1;
	cfg->direct_io = 0;          /* chosen per file in open, as scopeholdfs does */
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	cfg->nullpath_ok = 0;
	return NULL;
}

static int barefs_getattr(const char *path, struct stat *sb, struct fuse_file_info *fi)
{
	(void)fi;
	memset(sb, 0, sizeof(*sb));
	sb->st_atime = sb->st_mtime = sb->st_ctime = barefs_started;
	if (strcmp(path, "/") == 0 || strcmp(path, "/bench") == 0 ||
	    strcmp(path, "/bench/prov") == 0) {
		sb->st_mode = S_IFDIR | 0555;
		sb->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, "/bench/prov/secret") == 0) {
		sb->st_mode = S_IFREG | 0444;
		sb->st_nlink = 1;
		sb->st_size = (off_t)BAREFS_VALUE_LEN;
		return 0;
	}
	/*
	 * The high-level API answers a LOOKUP with getattr of the path, so
	 * this error is the reply to the LOOKUP of `refused` (an error other
	 * than ENOENT, so libfuse sends no negative entry either). It is not
	 * listed by readdir: nothing else about the tree changes.
	 */
	if (strcmp(path, "/bench/refused") == 0)
		return -EACCES;
	return -ENOENT;
}

static int barefs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
			  struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	const char *child;
	if (strcmp(path, "/") == 0)
		child = "bench";
	else if (strcmp(path, "/bench") == 0)
		child = "prov";
	else if (strcmp(path, "/bench/prov") == 0)
		child = "secret";
	else
		return -ENOENT;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	filler(buf, child, NULL, 0, 0);
	return 0;
}

static int barefs_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, "/bench/prov/secret") != 0)
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	fi->direct_io = barefs_kernel_cache ? 0 : 1;
	fi->keep_cache = barefs_kernel_cache ? 1 : 0;
	return 0;
}

static int barefs_read(const char *path, char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	if (off < 0)
		return -EINVAL;
	if ((size_t)off >= BAREFS_VALUE_LEN)
		return 0;
	size_t n = BAREFS_VALUE_LEN - (size_t)off;
	if (n > size)
		n = size;
	memcpy(buf, barefs_value + off, n);
	return (int)n;
}

static int barefs_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	return 0;
}

static const struct fuse_operations barefs_ops = {
	.init = barefs_init,
	.getattr = barefs_getattr,
	.readdir = barefs_readdir,
	.open = barefs_open,
	.read = barefs_read,
	.release = barefs_release,
};

int main(int argc, char **argv)
{
	const char *mp = NULL;
	int status = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--kernel-cache") == 0) {
			barefs_kernel_cache = true;
		} else if (strcmp(argv[i], "--default-timeouts") == 0) {
			barefs_default_timeouts = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			puts("usage: barefs [--kernel-cache] [--default-timeouts] MOUNTPOINT\n"
			     "Serve one static file at MOUNTPOINT/bench/prov/secret, in the "
			     "foreground,\n"
			     "and refuse the lookup of MOUNTPOINT/bench/refused with EACCES.");
			return 0;
		} else if (argv[i][0] == '-' || mp) {
			fprintf(stderr, "barefs: unexpected argument '%s' (see --help)\n", argv[i]);
			return 2;
		} else {
			mp = argv[i];
		}
	}
	if (!mp) {
		fprintf(stderr, "barefs: no mountpoint (see --help)\n");
		return 2;
	}
	barefs_started = time(NULL);

	char *fargv[] = { "barefs", "-o", BAREFS_OPTIONS, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse *f = fuse_new(&args, &barefs_ops, sizeof(barefs_ops), NULL);
	fuse_opt_free_args(&args);
	if (!f) {
		fprintf(stderr, "barefs: cannot set up the filesystem\n");
		return 1;
	}
	if (fuse_mount(f, mp) != 0) {
		fprintf(stderr, "barefs: cannot mount at %s\n", mp);
		goto out_destroy;
	}
	struct fuse_session *se = fuse_get_session(f);
	if (fuse_set_signal_handlers(se) != 0) {
		fprintf(stderr, "barefs: cannot install signal handlers\n");
		goto out_unmount;
	}
	/* The same loop configuration as scopeholdfs. */
	struct fuse_loop_config lc = { .clone_fd = 0, .max_idle_threads = 10 };
	int rc = fuse_loop_mt(f, &lc);
	status = rc < 0 ? 1 : 0;
	fuse_remove_signal_handlers(se);
out_unmount:
	fuse_unmount(f);
out_destroy:
	fuse_destroy(f);
	return status;
}

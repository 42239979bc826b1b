/*
 * ops.c - the FUSE callbacks of scopeholdfs (high-level, path based).
 *
 * Each callback only translates: parse the path, take the caller from the
 * request, delegate to resolve.c, return its -errno. What is allowed, what
 * is audited and what a value is are decided elsewhere. Because every
 * answer depends on who asks, init() turns off every kernel cache that
 * would let one caller's answer be reused for another: entries,
 * attributes, negative lookups and directory listings expire at once, and
 * secret files are opened with direct I/O so the page cache never holds
 * plaintext (and shared mmap is refused) unless `[mount] cache = kernel`.
 * Every operation that would change something is EROFS for every caller;
 * the read-only mount already makes the kernel answer most of them.
 */
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/statvfs.h>

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->use_ino = 0;
	cfg->readdir_ino = 0;
	cfg->hard_remove = 1;
	cfg->direct_io = 0;      /* chosen per file in open */
	cfg->kernel_cache = 0;
	cfg->nullpath_ok = 0;
	struct fs_ctx *ctx = fuse_get_context()->private_data;
	/*
	 * cache = kernel: keep a secret's pages across opens while its size
	 * and mtime are unchanged (the mtime's nanoseconds carry the version,
	 * so a rotation always invalidates). Every open is still decided here.
	 */
	cfg->auto_cache = ctx && ctx->cfg.cache == STORE_CACHE_KERNEL;
	return ctx;
}

static int fs_getattr(const char *path, struct stat *sb, struct fuse_file_info *fi)
{
	(void)fi;
	struct fs_req rq;
	struct fs_path p;
	fs_req_begin(&rq, "getattr", path);
	int rc = fs_path_parse(path, &p);
	if (rc == 0)
		rc = fs_resolve_getattr(&rq, &p, sb);
	return fs_req_end(&rq, rc);
}

static int fs_readlink(const char *path, char *buf, size_t size)
{
	struct fs_req rq;
	struct fs_path p;
	fs_req_begin(&rq, "readlink", path);
	int rc = fs_path_parse(path, &p);
	if (rc == 0)
		rc = p.node == FS_NODE_SELF ? fs_resolve_self(&rq, buf, size) : -EINVAL;
	return fs_req_end(&rq, rc);
}

struct fill {
	void *buf;
	fuse_fill_dir_t filler;
};

static int fs_fill(void *arg, const char *name, mode_t type)
{
	struct fill *f = arg;
	struct stat sb;
	memset(&sb, 0, sizeof(sb));
	sb.st_mode = type;
	return f->filler(f->buf, name, &sb, 0, 0);
}

static int fs_opendir(const char *path, struct fuse_file_info *fi)
{
	struct fs_req rq;
	struct fs_path p;
	fi->cache_readdir = 0;
	fi->keep_cache = 0;
	fs_req_begin(&rq, "opendir", path);
	int rc = fs_path_parse(path, &p);
	if (rc == 0)
		rc = fs_resolve_access(&rq, &p, R_OK);
	return fs_req_end(&rq, rc);
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)flags;
	fi->cache_readdir = 0;
	struct fs_req rq;
	struct fs_path p;
	struct fill f = { .buf = buf, .filler = filler };
	fs_req_begin(&rq, "readdir", path);
	int rc = fs_path_parse(path, &p);
	if (rc == 0)
		rc = fs_resolve_readdir(&rq, &p, fs_fill, &f);
	return fs_req_end(&rq, rc);
}

static int fs_access(const char *path, int mask)
{
	struct fs_req rq;
	struct fs_path p;
	fs_req_begin(&rq, "access", path);
	int rc = fs_path_parse(path, &p);
	if (rc == 0)
		rc = fs_resolve_access(&rq, &p, mask);
	return fs_req_end(&rq, rc);
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct fs_req rq;
	struct fs_path p;
	fs_req_begin(&rq, "open", path);
	int rc = fs_path_parse(path, &p);
	if (rc == 0 && ((fi->flags & O_ACCMODE) != O_RDONLY ||
			(fi->flags & (O_TRUNC | O_APPEND | O_CREAT))))
		rc = -EROFS;
	if (rc == 0) {
		struct fs_value *v = NULL;
		rc = fs_resolve_open(&rq, &p, &v);
		if (rc == 0) {
			fi->fh = (uint64_t)(uintptr_t)v;
			bool kernel = rq.ctx->cfg.cache == STORE_CACHE_KERNEL;
			fi->direct_io = kernel ? 0 : 1;
			if (!kernel)
				fi->keep_cache = 0;   /* auto_cache decides in kernel mode */
			fi->nonseekable = 0;
		}
	}
	return fs_req_end(&rq, rc);
}

static int fs_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	(void)path;
	struct fs_value *v = (struct fs_value *)(uintptr_t)fi->fh;
	if (!v)
		return -EBADF;
	if (off < 0)
		return -EINVAL;
	/* no byte before its resolve event is durable */
	struct fs_ctx *ctx = fuse_get_context()->private_data;
	if (fs_value_sync(ctx->st, v) < 0)
		return -EIO;
	if ((uint64_t)off >= v->len)
		return 0;
	size_t n = v->len - (size_t)off;
	if (n > size)
		n = size;
	memcpy(buf, v->data + off, n);
	return (int)n;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	struct fs_ctx *ctx = fuse_get_context()->private_data;
	fs_value_release((struct fs_value *)(uintptr_t)fi->fh);
	fi->fh = 0;
	if (ctx->cfg.cache == STORE_CACHE_NONE && path)
		fs_invalidate_later(path);
	return 0;
}

static int fs_statfs(const char *path, struct statvfs *sv)
{
	(void)path;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = 4096;
	sv->f_frsize = 4096;
	sv->f_namemax = POLICY_NAME_MAX;
	sv->f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC;
	return 0;
}

/* ---- everything that would write: EROFS for every caller, root included ---- */

static int fs_rofs(const char *op, const char *path)
{
	struct fs_req rq;
	fs_req_begin(&rq, op, path);
	rq.why = "read-only";
	return fs_req_end(&rq, -EROFS);
}

static int fs_mknod(const char *path, mode_t mode, dev_t dev)
{
	(void)mode;
	(void)dev;
	return fs_rofs("mknod", path);
}

static int fs_mkdir(const char *path, mode_t mode)
{
	(void)mode;
	return fs_rofs("mkdir", path);
}

static int fs_unlink(const char *path) { return fs_rofs("unlink", path); }
static int fs_rmdir(const char *path) { return fs_rofs("rmdir", path); }

static int fs_symlink(const char *target, const char *path)
{
	(void)target;
	return fs_rofs("symlink", path);
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	(void)to;
	(void)flags;
	return fs_rofs("rename", from);
}

static int fs_link(const char *from, const char *to)
{
	(void)from;
	return fs_rofs("link", to);
}

static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode;
	(void)fi;
	return fs_rofs("chmod", path);
}

static int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	(void)uid;
	(void)gid;
	(void)fi;
	return fs_rofs("chown", path);
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	(void)size;
	(void)fi;
	return fs_rofs("truncate", path);
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)buf;
	(void)size;
	(void)off;
	(void)fi;
	return fs_rofs("write", path);
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode;
	(void)fi;
	return fs_rofs("create", path);
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	(void)tv;
	(void)fi;
	return fs_rofs("utimens", path);
}

static int fs_setxattr(const char *path, const char *name, const char *value, size_t size,
		       int flags)
{
	(void)name;
	(void)value;
	(void)size;
	(void)flags;
	return fs_rofs("setxattr", path);
}

static int fs_removexattr(const char *path, const char *name)
{
	(void)name;
	return fs_rofs("removexattr", path);
}

static int fs_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	(void)mode;
	(void)off;
	(void)len;
	(void)fi;
	return fs_rofs("fallocate", path);
}

const struct fuse_operations fs_operations = {
	.init = fs_init,
	.getattr = fs_getattr,
	.readlink = fs_readlink,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.access = fs_access,
	.open = fs_open,
	.read = fs_read,
	.release = fs_release,
	.statfs = fs_statfs,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.symlink = fs_symlink,
	.rename = fs_rename,
	.link = fs_link,
	.chmod = fs_chmod,
	.chown = fs_chown,
	.truncate = fs_truncate,
	.write = fs_write,
	.create = fs_create,
	.utimens = fs_utimens,
	.setxattr = fs_setxattr,
	.removexattr = fs_removexattr,
	.fallocate = fs_fallocate,
};

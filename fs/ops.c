/*
 * ops.c - the FUSE callbacks of scopeholdfs (low-level, node based).
 *
 * Each callback only translates: map the node id to its path (node.c),
 * take the caller from the request, delegate to resolve.c, and send
 * exactly one reply with its -errno or its answer. What is allowed, what
 * is audited and what a value is are decided elsewhere.
 *
 * What the kernel may cache, and why it is safe. Every answer depends on
 * who asks, so no attribute is ever cached (attribute timeout 0: every
 * stat, and the size a reader sees through fstat, comes from the daemon
 * for that caller) and no negative entry is (a grant or a newly attached
 * candidate is visible at the next open). Names are another matter: a
 * name says nothing about who may use it, and every open, stat, listing,
 * readlink and access(2) is still decided here, per caller. So the kernel
 * may keep the entries `self`, AGENT and AGENT/PROVIDER/NAME for
 * FS_ENTRY_TIMEOUT seconds, which saves a LOOKUP round trip per path
 * component on every open. Two entries are never kept:
 *   - AGENT/PROVIDER, the gate into an agent's secrets: each path walk
 *     below an agent asks for it again, for the caller walking, so a
 *     caller that does not match the agent is refused (EACCES, a `deny`
 *     event) at that step even when the agent itself just walked there,
 *     and cannot use the kernel's memory of the agent's walk to learn
 *     which secret names exist (an O_PATH open, say).
 *   - the target of `self`, which is read per caller at every walk (the
 *     kernel never caches symlink targets unless asked to).
 * Secret files are opened with direct I/O so the page cache never holds
 * plaintext (and shared mmap is refused) unless `[mount] cache = kernel`,
 * where pages are kept only while the version they came from is current.
 * Every operation that would change something is EROFS for every caller;
 * the read-only mount already makes the kernel answer most of them.
 * Operations left out (flush, xattrs) get ENOSYS once, and the kernel
 * stops sending them.
 */
#include "fs/fs.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

static struct fs_ctx *ops_ctx(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Start a request on node ino: its path, its caller, its log line. */
static int ops_begin(fuse_req_t req, fuse_ino_t ino, const char *op, struct fs_req *rq,
		     struct fs_path *p, char *text, uint64_t *number)
{
	uint64_t num = 0;
	struct fs_ctx *ctx = ops_ctx(req);
	int rc = fs_node_path(ino, p, &num);
	if (number)
		*number = num;
	text[0] = '\0';
	if (rc == 0 && ctx->debug)     /* formatted only for -d's log line */
		fs_path_format(p, text, FS_PATH_TEXT);
	fs_req_begin(rq, ctx, fuse_req_ctx(req), op, text);
	rq->fp = rc == 0 ? p : NULL;
	return rc;
}

static void ops_reply_err(fuse_req_t req, struct fs_req *rq, int rc)
{
	fuse_reply_err(req, -fs_req_end(rq, rc));
}

static void ops_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* symlink targets are per caller: never keep `self`'s */
	conn->want &= ~(unsigned)FUSE_CAP_CACHE_SYMLINKS;
	/* a listing is per caller: no entries or attributes from readdir */
	conn->want &= ~(unsigned)(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);
}

/* How long the kernel may remember the name of a node of this kind. */
static double entry_timeout(enum fs_node node)
{
	return node == FS_NODE_PROVIDER ? 0.0 : FS_ENTRY_TIMEOUT;
}

static void ops_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_req rq;
	struct fs_path pp, p;
	char text[FS_PATH_TEXT + POLICY_NAME_MAX + 2];
	int rc = ops_begin(req, parent, "lookup", &rq, &pp, text, NULL);
	if (rc == 0 && rq.ctx->debug) {
		size_t n = strlen(text);
		snprintf(text + n, sizeof(text) - n, "%s%s", n > 1 ? "/" : "", name);
	}
	if (rc == 0) {
		rc = fs_path_child(&pp, name, &p);
		if (rc == 0)
			rq.fp = &p;
	}
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	if (rc == 0)
		rc = fs_resolve_getattr(&rq, &p, &e.attr);
	uint64_t ino = 0, number = 0;
	if (rc == 0)
		rc = fs_node_ref(&p, &ino, &number);
	rc = fs_req_end(&rq, rc);
	if (rc < 0) {
		/* no negative entry: a name may appear at the next open */
		fuse_reply_err(req, -rc);
		return;
	}
	e.ino = ino;
	e.attr.st_ino = number;
	e.attr_timeout = 0.0;
	e.entry_timeout = entry_timeout(p.node);
	if (fuse_reply_entry(req, &e) != 0)
		fs_node_forget(ino, 1);   /* the kernel never got it */
}

static void ops_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_node_forget(ino, nlookup);
	fuse_reply_none(req);
}

static void ops_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		fs_node_forget(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void ops_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct fs_req rq;
	struct fs_path p;
	struct stat sb;
	char text[FS_PATH_TEXT];
	uint64_t number;
	int rc = ops_begin(req, ino, "getattr", &rq, &p, text, &number);
	if (rc == 0)
		rc = fs_resolve_getattr(&rq, &p, &sb);
	rc = fs_req_end(&rq, rc);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	sb.st_ino = number;
	fuse_reply_attr(req, &sb, 0.0);
}

static void ops_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_req rq;
	struct fs_path p;
	char text[FS_PATH_TEXT], target[POLICY_NAME_MAX + 1];
	int rc = ops_begin(req, ino, "readlink", &rq, &p, text, NULL);
	if (rc == 0)
		rc = p.node == FS_NODE_SELF ? fs_resolve_self(&rq, target, sizeof(target)) : -EINVAL;
	rc = fs_req_end(&rq, rc);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, target);
}

/* ---- directories: the listing is made for the caller at offset 0 ---------- */

struct listing {
	size_t n, cap;
	struct { char name[POLICY_NAME_MAX + 1]; mode_t type; } *v;
	struct listing *prev, *next;   /* the open listings, for fs_listing_release_all */
};

/*
 * Directories still open at unmount get no releasedir (as files get no
 * release): the open listings are linked so the daemon frees them at exit.
 */
static struct listing *listings;
static pthread_mutex_t listings_lock = PTHREAD_MUTEX_INITIALIZER;

static struct listing *listing_new(void)
{
	struct listing *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	pthread_mutex_lock(&listings_lock);
	l->next = listings;
	if (listings)
		listings->prev = l;
	listings = l;
	pthread_mutex_unlock(&listings_lock);
	return l;
}

static int listing_add(void *arg, const char *name, mode_t type)
{
	struct listing *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		void *v = realloc(l->v, cap * sizeof(*l->v));
		if (!v)
			return 1;
		l->v = v;
		l->cap = cap;
	}
	snprintf(l->v[l->n].name, sizeof(l->v[l->n].name), "%s", name);
	l->v[l->n].type = type;
	l->n++;
	return 0;
}

static void listing_free(struct listing *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&listings_lock);
	if (l->prev)
		l->prev->next = l->next;
	else
		listings = l->next;
	if (l->next)
		l->next->prev = l->prev;
	pthread_mutex_unlock(&listings_lock);
	free(l->v);
	free(l);
}

void fs_listing_release_all(void)
{
	while (listings)
		listing_free(listings);
}

static void ops_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_req rq;
	struct fs_path p;
	char text[FS_PATH_TEXT];
	int rc = ops_begin(req, ino, "opendir", &rq, &p, text, NULL);
	if (rc == 0)
		rc = fs_resolve_access(&rq, &p, R_OK);
	struct listing *l = NULL;
	if (rc == 0 && !(l = listing_new()))
		rc = -ENOMEM;
	rc = fs_req_end(&rq, rc);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)l;
	fi->cache_readdir = 0;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) != 0)
		listing_free(l);
}

static void ops_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	struct listing *l = (struct listing *)(uintptr_t)fi->fh;
	if (!l) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (off == 0) {
		/* (re)made for whoever reads from the start: rewinddir sees changes */
		struct fs_req rq;
		struct fs_path p;
		char text[FS_PATH_TEXT];
		l->n = 0;
		int rc = ops_begin(req, ino, "readdir", &rq, &p, text, NULL);
		if (rc == 0)
			rc = fs_resolve_readdir(&rq, &p, listing_add, l);
		if (rc < 0) {
			l->n = 0;
			ops_reply_err(req, &rq, rc);
			return;
		}
		fs_req_end(&rq, 0);
	}
	char *buf = calloc(1, size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	for (size_t i = (size_t)(off < 0 ? 0 : off); i < l->n; i++) {
		struct stat sb;
		memset(&sb, 0, sizeof(sb));
		sb.st_ino = 0xffffffff;   /* the kernel takes the number from LOOKUP */
		sb.st_mode = l->v[i].type;
		size_t need = fuse_add_direntry(req, buf + used, size - used, l->v[i].name, &sb,
						(off_t)(i + 1));
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void ops_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	listing_free((struct listing *)(uintptr_t)fi->fh);
	fi->fh = 0;
	fuse_reply_err(req, 0);
}

static void ops_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fs_req rq;
	struct fs_path p;
	char text[FS_PATH_TEXT];
	int rc = ops_begin(req, ino, "access", &rq, &p, text, NULL);
	if (rc == 0)
		rc = fs_resolve_access(&rq, &p, mask);
	ops_reply_err(req, &rq, rc);
}

/* ---- secret files ------------------------------------------------------------ */

static void ops_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_req rq;
	struct fs_path p;
	char text[FS_PATH_TEXT];
	int rc = ops_begin(req, ino, "open", &rq, &p, text, NULL);
	if (rc == 0 && ((fi->flags & O_ACCMODE) != O_RDONLY ||
			(fi->flags & (O_TRUNC | O_APPEND | O_CREAT))))
		rc = -EROFS;
	struct fs_value *v = NULL;
	if (rc == 0)
		rc = fs_resolve_open(&rq, &p, &v);
	rc = fs_req_end(&rq, rc);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)v;
	if (rq.ctx->cfg.cache == STORE_CACHE_KERNEL) {
		/*
		 * Keep the pages only while they came from this very version:
		 * a rotation (or a first open) drops them before any read.
		 */
		fi->direct_io = 0;
		fi->keep_cache = fs_node_cache_valid(ino, v->version, v->len);
	} else {
		fi->direct_io = 1;
		fi->keep_cache = 0;
	}
	fi->nonseekable = 0;
	if (fuse_reply_open(req, fi) != 0)
		fs_value_release(v);   /* the kernel never got the file: release() won't come */
}

static void ops_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)ino;
	struct fs_value *v = (struct fs_value *)(uintptr_t)fi->fh;
	if (!v) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* no byte before its resolve event is durable */
	if (fs_value_sync(ops_ctx(req)->st, v) < 0) {
		fuse_reply_err(req, EIO);
		return;
	}
	if ((uint64_t)off >= v->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	size_t n = v->len - (size_t)off;
	if (n > size)
		n = size;
	/* straight from the value's sodium_malloc memory: no copy to wipe */
	fuse_reply_buf(req, (const char *)v->data + off, n);
}

static void ops_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_ctx *ctx = ops_ctx(req);
	fs_value_release((struct fs_value *)(uintptr_t)fi->fh);
	fi->fh = 0;
	/* a MAP_PRIVATE mapping reads through the page cache even with direct I/O */
	if (ctx->cfg.cache == STORE_CACHE_NONE)
		fs_invalidate_later(ino);
	fuse_reply_err(req, 0);
}

static void ops_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct statvfs sv;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = POLICY_NAME_MAX;
	sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC;
	fuse_reply_statfs(req, &sv);
}

/* ---- everything that would write: EROFS for every caller, root included ---- */

static void ops_rofs(fuse_req_t req, fuse_ino_t ino, const char *op)
{
	struct fs_req rq;
	struct fs_path p;
	char text[FS_PATH_TEXT];
	(void)ops_begin(req, ino, op, &rq, &p, text, NULL);
	rq.why = "read-only";
	ops_reply_err(req, &rq, -EROFS);
}

static void ops_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			struct fuse_file_info *fi)
{
	(void)attr;
	(void)to_set;
	(void)fi;
	ops_rofs(req, ino, "setattr");
}

static void ops_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      dev_t rdev)
{
	(void)name;
	(void)mode;
	(void)rdev;
	ops_rofs(req, parent, "mknod");
}

static void ops_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)name;
	(void)mode;
	ops_rofs(req, parent, "mkdir");
}

static void ops_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)name;
	ops_rofs(req, parent, "unlink");
}

static void ops_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)name;
	ops_rofs(req, parent, "rmdir");
}

static void ops_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link;
	(void)name;
	ops_rofs(req, parent, "symlink");
}

static void ops_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		       fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	(void)name;
	(void)newparent;
	(void)newname;
	(void)flags;
	ops_rofs(req, parent, "rename");
}

static void ops_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)newparent;
	(void)newname;
	ops_rofs(req, ino, "link");
}

static void ops_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	(void)buf;
	(void)size;
	(void)off;
	(void)fi;
	ops_rofs(req, ino, "write");
}

static void ops_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		       struct fuse_file_info *fi)
{
	(void)name;
	(void)mode;
	(void)fi;
	ops_rofs(req, parent, "create");
}

static void ops_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			 size_t size, int flags)
{
	(void)name;
	(void)value;
	(void)size;
	(void)flags;
	ops_rofs(req, ino, "setxattr");
}

static void ops_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)name;
	ops_rofs(req, ino, "removexattr");
}

static void ops_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			  struct fuse_file_info *fi)
{
	(void)mode;
	(void)offset;
	(void)length;
	(void)fi;
	ops_rofs(req, ino, "fallocate");
}

const struct fuse_lowlevel_ops fs_operations = {
	.init = ops_init,
	.lookup = ops_lookup,
	.forget = ops_forget,
	.forget_multi = ops_forget_multi,
	.getattr = ops_getattr,
	.setattr = ops_setattr,
	.readlink = ops_readlink,
	.mknod = ops_mknod,
	.mkdir = ops_mkdir,
	.unlink = ops_unlink,
	.rmdir = ops_rmdir,
	.symlink = ops_symlink,
	.rename = ops_rename,
	.link = ops_link,
	.open = ops_open,
	.read = ops_read,
	.write = ops_write,
	.release = ops_release,
	.opendir = ops_opendir,
	.readdir = ops_readdir,
	.releasedir = ops_releasedir,
	.statfs = ops_statfs,
	.setxattr = ops_setxattr,
	.removexattr = ops_removexattr,
	.access = ops_access,
	.create = ops_create,
	.fallocate = ops_fallocate,
};

/*
 * trust.c - whether a path to a key file, store or configuration is safe
 * from other users, as OpenSSH's StrictModes and sudo check it.
 *
 * A file of mode 0600 is only as safe as the directories above it: whoever
 * can write one of them can rename the file away, put their own in its
 * place (a key they know, a configuration naming their store) or swap a
 * directory for a symlink. So every directory the path crosses - each
 * component of the canonical path, and the directory holding each symlink
 * followed on the way - must be owned by root or by the user running this,
 * and writable by no one else. A sticky directory (/tmp) is the one
 * exception: there others may add entries but may not rename or remove
 * ours, so it is accepted on the way when its owner is trusted. It is no
 * place for the key or the store itself (store_check_home()): SQLite, the
 * audit journal and its lock create files beside the store (STORE-wal,
 * STORE-shm, STORE-audit.lock), and whoever creates one of those first in
 * a sticky directory owns it - and may read or rewrite the WAL's pages.
 * A symlink on the way must belong to root or to us too, since in a
 * sticky directory its owner may replace it.
 *
 * The walk resolves the path itself, component by component, from "/" (a
 * relative path from the working directory), so it sees each symlink in
 * the place it is found. It stops quietly at the first component that does
 * not exist: `shadm init` creates the rest as 0700 directories of its own
 * (and checks again afterwards), and every other caller then fails to open
 * the file with its own message.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

/* As the kernel's own limit on symlinks followed in one lookup. */
#define TRUST_MAX_LINKS 40

static bool trust_uid_ok(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/*
 * The refusal of directory `dir` on the way to `path`, or 0. sticky_ok:
 * a sticky directory may be writable by others (not so for the one that
 * holds a file we create siblings of).
 */
static int trust_dir(const char *path, const char *dir, const struct stat *sb, bool sticky_ok)
{
	unsigned mode = (unsigned)(sb->st_mode & 07777);

	/* An owner may always chmod: owning is being able to write. */
	if (!trust_uid_ok(sb->st_uid))
		return store_fail(-EACCES, "refusing '%s': directory '%s' is writable by uid %u "
				  "(owner %u, mode %04o)", path, dir, (unsigned)sb->st_uid,
				  (unsigned)sb->st_uid, mode);
	if ((sb->st_mode & S_ISVTX) && sticky_ok)
		return 0;
	if (sb->st_mode & S_IWOTH)
		return store_fail(-EACCES, "refusing '%s': directory '%s' is writable by everyone "
				  "(owner %u, mode %04o)", path, dir, (unsigned)sb->st_uid, mode);
	if (sb->st_mode & S_IWGRP)
		return store_fail(-EACCES, "refusing '%s': directory '%s' is writable by group %u "
				  "(owner %u, mode %04o)", path, dir, (unsigned)sb->st_gid,
				  (unsigned)sb->st_uid, mode);
	return 0;
}

static int trust_walk(const char *path, bool follow_last, bool home)
{
	char todo[2 * PATH_MAX + 2], done[PATH_MAX], next[PATH_MAX], target[PATH_MAX];
	char *rest = todo;
	struct stat sb;
	int links = 0, rc;
	size_t dlen;

	if (!path || !*path)
		return 0;
	if (path[0] == '/') {
		if (snprintf(todo, sizeof todo, "%s", path) >= (int)sizeof todo)
			return store_fail(-ENAMETOOLONG, "path '%s' is too long", path);
	} else {
		if (!getcwd(done, sizeof done))
			return store_fail(-errno, "refusing '%s': cannot find the working directory: %s",
					  path, strerror(errno));
		if (snprintf(todo, sizeof todo, "%s/%s", done, path) >= (int)sizeof todo)
			return store_fail(-ENAMETOOLONG, "path '%s' is too long", path);
	}
	if (lstat("/", &sb) == 0 && (rc = trust_dir(path, "/", &sb, true)))
		return rc;
	done[0] = '\0';                 /* the resolved prefix; "" is "/" */
	for (;;) {
		const char *comp;
		size_t clen;
		bool last;
		ssize_t n;

		while (*rest == '/')
			rest++;
		if (!*rest)
			return 0;
		comp = rest;
		clen = strcspn(rest, "/");
		rest += clen;
		while (*rest == '/')
			rest++;
		last = *rest == '\0';
		if (clen == 1 && comp[0] == '.')
			continue;
		dlen = strlen(done);
		if (clen == 2 && comp[0] == '.' && comp[1] == '.') {
			/* done holds no symlink, so its parent is textual */
			char *slash = strrchr(done, '/');
			if (slash)
				*slash = '\0';
			continue;
		}
		if (dlen + 1 + clen >= sizeof next)
			return store_fail(-ENAMETOOLONG, "path '%s' is too long", path);
		memcpy(next, done, dlen);
		next[dlen] = '/';
		memcpy(next + dlen + 1, comp, clen);
		next[dlen + 1 + clen] = '\0';
		/*
		 * The directory that holds the file (symlinks before it
		 * resolved, the file itself never followed): closed to
		 * others even when sticky, whether the file exists yet or not.
		 */
		if (last && home) {
			const char *dir = dlen ? done : "/";
			if (lstat(dir, &sb) == 0 && (rc = trust_dir(path, dir, &sb, false)))
				return rc;
		}
		/*
		 * Missing: created by init below a checked directory, or a
		 * missing file the caller reports. Unreadable: the caller's
		 * own open fails the same way and says so.
		 */
		if (lstat(next, &sb) < 0)
			return 0;
		if (S_ISLNK(sb.st_mode)) {
			if (last && !follow_last)
				return 0;       /* the caller refuses a symlink itself */
			if (!trust_uid_ok(sb.st_uid))
				return store_fail(-EACCES, "refusing '%s': symlink '%s' belongs to uid %u",
						  path, next, (unsigned)sb.st_uid);
			if (++links > TRUST_MAX_LINKS)
				return store_fail(-ELOOP, "refusing '%s': %s", path, strerror(ELOOP));
			n = readlink(next, target, sizeof target - 1);
			if (n < 0)
				return 0;
			target[n] = '\0';
			/* the target, then what was left after the link */
			if (snprintf(next, sizeof next, "%s", rest) >= (int)sizeof next ||
			    snprintf(todo, sizeof todo, "%s/%s", target, next) >= (int)sizeof todo)
				return store_fail(-ENAMETOOLONG, "path '%s' is too long", path);
			rest = todo;
			if (target[0] == '/')
				done[0] = '\0';
			continue;
		}
		if (!S_ISDIR(sb.st_mode))
			return 0;       /* the file itself, or ENOTDIR for the caller */
		if ((rc = trust_dir(path, next, &sb, true)))
			return rc;
		memcpy(done, next, dlen + 1 + clen + 1);
	}
}

int store_check_path(const char *path, bool follow_last)
{
	return trust_walk(path, follow_last, false);
}

int store_check_home(const char *path)
{
	return trust_walk(path, false, true);
}

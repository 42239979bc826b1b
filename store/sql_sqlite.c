/*
 * sql_sqlite.c - the SQLite driver behind sql.h, and the only file of
 * store/ that calls sqlite3_*.
 *
 * Settings: WAL journal (readers never block the writer, so the mount
 * keeps serving while shadm edits), foreign keys on, a busy timeout
 * with BEGIN IMMEDIATE for writers (so concurrent shadm runs queue
 * instead of failing with "database is locked"), synchronous=NORMAL for
 * crash safety (a committed WAL frame survives kill -9 of the process);
 * durability against power loss is sql_sync, an fdatasync of the WAL
 * that the store shares between many commits.
 *
 * SQLite's result codes become negative errnos here and nowhere else
 * (sqlite_errno); its message stays readable through sql_error. The
 * engine-specific capabilities of sql.h are here too: the WAL-index
 * header as change stamp for the read cache, checkpointing, the cache
 * size for bulk loads, the -wal and -shm files.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/sql.h"

struct sqlite_db {
	struct sql_db api;
	sqlite3 *h;
	int busy_ms;                  /* restored after a checkpoint's shorter wait */
	int wal_fd;                   /* for sql_sync; -1 until first needed */
	volatile void *shm;           /* the WAL-index, mapped by SQLite (watch_start) */
	char wal[PATH_MAX + 8];
};

struct sqlite_stmt {
	struct sql_stmt api;
	sqlite3_stmt *s;
};

#define DB(db) ((struct sqlite_db *)(db))
#define ST(st) (((struct sqlite_stmt *)(st))->s)

/*
 * SQLite's codes map to errno: a full disk stays recognisable (the mount
 * turns every audit failure into EIO anyway), a corrupt file is EBADMSG.
 */
static int sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:     return -ENOSPC;
	case SQLITE_NOMEM:    return -ENOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:   return -EBADMSG;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:     return -EACCES;
	case SQLITE_CANTOPEN: return -ENOENT;
	default:              return -EIO;
	}
}

static int sqlite_exec(struct sql_db *db, const char *sql)
{
	int rc = sqlite3_exec(DB(db)->h, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sqlite_errno(rc);
}

/*
 * temp_store = MEMORY: a savepoint's statement journal (every change
 * inside a batch or a resolve batch) stays in memory instead of an
 * unlinked file under /var/tmp holding copies of store pages - half a
 * million writes for a 1e5-secret bulk load.
 *
 * secure_delete = ON: a freed cell or page (a destroyed version's
 * ciphertext, a removed secret) is zeroed, not left in the file for
 * later; Debian builds it in, this does not rely on the build.
 *
 * SQLite's own checkpoints (every 1000 WAL pages, by the committing
 * connection) keep the WAL bounded even under a steady stream of
 * resolves; a checkpointer on another thread or connection could be
 * starved by that stream and let the WAL grow without end. After a
 * checkpoint the file is cut back to 4 MiB (journal_size_limit).
 */
static const char sqlite_settings[] =
	"PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
	" PRAGMA journal_size_limit = 4194304; PRAGMA temp_store = MEMORY;"
	" PRAGMA secure_delete = ON;";

/* connect_ms and request_ms: a file has no link to lose */
static int sqlite_open(const char *target, bool create, int busy_ms, int connect_ms,
		       int request_ms, struct sql_db **out)
{
	struct sqlite_db *d = calloc(1, sizeof *d);
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
		    (create ? SQLITE_OPEN_CREATE : 0);
	mode_t old;
	int rc;

	(void)connect_ms;
	(void)request_ms;
	*out = NULL;
	if (!d)
		return -ENOMEM;
	d->api.drv = &sql_driver_sqlite;
	d->busy_ms = busy_ms;
	d->wal_fd = -1;
	snprintf(d->wal, sizeof d->wal, "%s-wal", target);
	*out = &d->api;
	old = umask(077);   /* the -wal and -shm files are as private as the store */
	rc = sqlite3_open_v2(target, &d->h, flags, NULL);
	umask(old);
	if (rc != SQLITE_OK)
		return sqlite_errno(rc);
	sqlite3_extended_result_codes(d->h, 1);
	rc = sqlite3_busy_timeout(d->h, busy_ms);
	if (rc != SQLITE_OK)
		return sqlite_errno(rc);
	if ((rc = sqlite_exec(&d->api, sqlite_settings)))
		return rc;
	return create ? sqlite_exec(&d->api, "PRAGMA journal_mode = WAL") : 0;
}

static void sqlite_close(struct sql_db *db)
{
	sqlite3_close(DB(db)->h);
	if (DB(db)->wal_fd >= 0)
		close(DB(db)->wal_fd);
	free(db);
}

static const char *sqlite_error(struct sql_db *db)
{
	return sqlite3_errmsg(DB(db)->h);
}

static int sqlite_prepare(struct sql_db *db, const char *sql, bool keep, struct sql_stmt **out)
{
	struct sqlite_stmt *s = malloc(sizeof *s);
	int rc;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->api.db = db;
	rc = sqlite3_prepare_v3(DB(db)->h, sql, -1, keep ? SQLITE_PREPARE_PERSISTENT : 0,
				&s->s, NULL);
	if (rc != SQLITE_OK) {
		free(s);
		return sqlite_errno(rc);
	}
	*out = &s->api;
	return 0;
}

static int sqlite_bind_int64(struct sql_stmt *s, int i, int64_t v)
{
	int rc = sqlite3_bind_int64(ST(s), i, v);

	return rc == SQLITE_OK ? 0 : sqlite_errno(rc);
}

static int sqlite_bind_text(struct sql_stmt *s, int i, const char *v)
{
	int rc = sqlite3_bind_text(ST(s), i, v, -1, SQLITE_STATIC);

	return rc == SQLITE_OK ? 0 : sqlite_errno(rc);
}

static int sqlite_bind_blob(struct sql_stmt *s, int i, const void *v, size_t len)
{
	int rc;

	if (len > INT_MAX)
		return -E2BIG;
	rc = sqlite3_bind_blob(ST(s), i, v, (int)len, SQLITE_STATIC);
	return rc == SQLITE_OK ? 0 : sqlite_errno(rc);
}

static int sqlite_bind_null(struct sql_stmt *s, int i)
{
	int rc = sqlite3_bind_null(ST(s), i);

	return rc == SQLITE_OK ? 0 : sqlite_errno(rc);
}

static int sqlite_step(struct sql_stmt *s)
{
	int rc = sqlite3_step(ST(s));

	if (rc == SQLITE_ROW)
		return SQL_ROW;
	if (rc == SQLITE_DONE)
		return SQL_DONE;
	return sqlite_errno(rc);
}

static int64_t sqlite_column_int64(struct sql_stmt *s, int i)
{
	return sqlite3_column_int64(ST(s), i);
}

static const char *sqlite_column_text(struct sql_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(ST(s), i);
}

static const void *sqlite_column_blob(struct sql_stmt *s, int i)
{
	return sqlite3_column_blob(ST(s), i);
}

static int sqlite_column_bytes(struct sql_stmt *s, int i)
{
	return sqlite3_column_bytes(ST(s), i);
}

static bool sqlite_column_is_null(struct sql_stmt *s, int i)
{
	return sqlite3_column_type(ST(s), i) == SQLITE_NULL;
}

static void sqlite_reset(struct sql_stmt *s)
{
	sqlite3_reset(ST(s));
}

static void sqlite_clear_bindings(struct sql_stmt *s)
{
	sqlite3_clear_bindings(ST(s));
}

static void sqlite_finalize(struct sql_stmt *s)
{
	sqlite3_finalize(ST(s));
	free(s);
}

static int64_t sqlite_changes(struct sql_db *db)
{
	return sqlite3_changes(DB(db)->h);
}

/* IMMEDIATE: take the write lock now, waiting busy_ms for it (see sql_begin). */
static int sqlite_begin(struct sql_db *db, bool write)
{
	return sqlite_exec(db, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

static int sqlite_commit(struct sql_db *db)
{
	return sqlite_exec(db, "COMMIT");
}

static bool sqlite_in_transaction(struct sql_db *db)
{
	return !sqlite3_get_autocommit(DB(db)->h);
}

static void sqlite_rollback(struct sql_db *db)
{
	if (sqlite_in_transaction(db))
		(void)sqlite_exec(db, "ROLLBACK");
}

static const char *const sqlite_meta_pragma[] = {
	[SQL_META_APPLICATION_ID] = "application_id",
	[SQL_META_SCHEMA_VERSION] = "user_version",
};

static int sqlite_meta_get(struct sql_db *db, enum sql_meta m, int64_t *v)
{
	char sql[64];
	sqlite3_stmt *s;
	int rc;

	*v = 0;
	snprintf(sql, sizeof sql, "PRAGMA %s", sqlite_meta_pragma[m]);
	rc = sqlite3_prepare_v2(DB(db)->h, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sqlite_errno(rc);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : sqlite_errno(rc);
}

static int sqlite_meta_set(struct sql_db *db, enum sql_meta m, int64_t v)
{
	char sql[96];

	snprintf(sql, sizeof sql, "PRAGMA %s = %lld", sqlite_meta_pragma[m], (long long)v);
	return sqlite_exec(db, sql);
}

/*
 * synchronous = NORMAL leaves commits in the WAL unsynced; one
 * fdatasync of the WAL makes every frame written so far durable.
 * Checkpoints stay synced by SQLite itself.
 */
static int sqlite_sync(struct sql_db *db)
{
	struct sqlite_db *d = DB(db);

	if (d->wal_fd < 0) {
		d->wal_fd = open(d->wal, O_RDONLY | O_CLOEXEC);
		if (d->wal_fd < 0)
			return -errno;
	}
	return fdatasync(d->wal_fd) < 0 ? -errno : 0;
}

/*
 * A bulk load dirties far more pages than the default 2 MiB cache
 * holds; spilling them to the WAL and reading them back made loading a
 * million secrets I/O-bound.
 */
static void sqlite_bulk(struct sql_db *db, bool on)
{
	(void)sqlite_exec(db, on ? "PRAGMA cache_size = -262144" : "PRAGMA cache_size = -2000");
}

/*
 * Copy the WAL into the database and cut it to zero bytes. A reader that
 * holds an old snapshot can stop it; the next checkpoint then finishes
 * the job.
 */
static void sqlite_checkpoint(struct sql_db *db, int wait_ms)
{
	struct sqlite_db *d = DB(db);

	(void)sqlite3_busy_timeout(d->h, wait_ms);
	(void)sqlite3_wal_checkpoint_v2(d->h, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	(void)sqlite3_busy_timeout(d->h, d->busy_ms);
}

/*
 * Every commit of every process rewrites the WAL-index header in the
 * shared memory SQLite keeps beside the store (STORE-shm, format in
 * SQLite's "WAL-index format" documentation): 48 bytes, written twice.
 * It is mapped through SQLite's own VFS (xShmMap on the main database
 * file), so this is the mapping SQLite itself uses; where the VFS has no
 * shared memory there is no stamp.
 */
static int sqlite_watch_start(struct sql_db *db)
{
	sqlite3_file *fp = NULL;
	void volatile *p = NULL;

	if (sqlite3_file_control(DB(db)->h, "main", SQLITE_FCNTL_FILE_POINTER, &fp) != SQLITE_OK ||
	    !fp || !fp->pMethods || fp->pMethods->iVersion < 2 || !fp->pMethods->xShmMap)
		return -ENOTSUP;
	/* region 0 is mapped by every WAL read; do not create or extend it */
	if (fp->pMethods->xShmMap(fp, 0, 32768, 0, &p) != SQLITE_OK || !p)
		return -ENOTSUP;
	DB(db)->shm = p;
	return 0;
}

static bool sqlite_watch_stamp(struct sql_db *db, uint8_t stamp[SQL_STAMP_BYTES])
{
	uint8_t b[SQL_STAMP_BYTES];
	const volatile uint8_t *h = DB(db)->shm;

	if (!h)
		return false;
	/* SQLite writes copy 2, a barrier, then copy 1: read in reverse */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (int i = 0; i < SQL_STAMP_BYTES; i++)
		stamp[i] = h[i];
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (int i = 0; i < SQL_STAMP_BYTES; i++)
		b[i] = h[SQL_STAMP_BYTES + i];
	/* isInit (byte 12) unset or copies that differ: a writer is mid-update */
	return memcmp(stamp, b, SQL_STAMP_BYTES) == 0 && stamp[12] != 0;
}

/*
 * The WAL-index header (the stamp) holds, in native byte order, iChange
 * at offset 8 - one more at every commit, by whichever connection -
 * mxFrame at 16 and the WAL's salts at 32. One commit more, the same
 * WAL generation and frames appended: nothing but that one commit.
 */
static uint32_t stamp_u32(const uint8_t *s, size_t off)
{
	uint32_t v;

	memcpy(&v, s + off, sizeof v);
	return v;
}

static bool sqlite_watch_next(const uint8_t before[SQL_STAMP_BYTES], const uint8_t after[SQL_STAMP_BYTES])
{
	return stamp_u32(after, 8) == stamp_u32(before, 8) + 1 &&
	       stamp_u32(after, 16) > stamp_u32(before, 16) && memcmp(after + 32, before + 32, 8) == 0;
}

static void sqlite_remove(const char *target)
{
	char p[PATH_MAX + 8];

	snprintf(p, sizeof p, "%s-wal", target);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", target);
	unlink(p);
}

const struct sql_driver sql_driver_sqlite = {
	.name = "sqlite",
	.open = sqlite_open,
	.close = sqlite_close,
	.error = sqlite_error,
	.exec = sqlite_exec,
	.prepare = sqlite_prepare,
	.bind_int64 = sqlite_bind_int64,
	.bind_text = sqlite_bind_text,
	.bind_blob = sqlite_bind_blob,
	.bind_null = sqlite_bind_null,
	.step = sqlite_step,
	.column_int64 = sqlite_column_int64,
	.column_text = sqlite_column_text,
	.column_blob = sqlite_column_blob,
	.column_bytes = sqlite_column_bytes,
	.column_is_null = sqlite_column_is_null,
	.reset = sqlite_reset,
	.clear_bindings = sqlite_clear_bindings,
	.finalize = sqlite_finalize,
	.changes = sqlite_changes,
	.begin = sqlite_begin,
	.commit = sqlite_commit,
	.rollback = sqlite_rollback,
	.in_transaction = sqlite_in_transaction,
	.meta_get = sqlite_meta_get,
	.meta_set = sqlite_meta_set,
	.sync = sqlite_sync,
	.bulk = sqlite_bulk,
	.checkpoint = sqlite_checkpoint,
	.watch_start = sqlite_watch_start,
	.watch_stamp = sqlite_watch_stamp,
	.watch_next = sqlite_watch_next,
	.remove = sqlite_remove,
};

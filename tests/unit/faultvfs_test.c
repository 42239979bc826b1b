/*
 * faultvfs_test.c - I/O errors injected at the storage boundary.
 *
 * A shim SQLite VFS sits between the store and the real "unix" VFS and
 * makes the N-th write, sync or truncate after it is armed fail with
 * SQLITE_IOERR, as SQLite's own test suite does. For every N until the
 * operation completes without meeting the fault, the test checks the
 * promises that matter when storage fails:
 *   - store_resolve either returns the value with exactly one new
 *     `resolve` event, or returns an error, no value and no new event
 *     (fail closed: no byte without its record);
 *   - store_secret_set either adds the version and its event, or neither;
 *   - the same handle works again once the fault is gone;
 *   - afterwards the database passes PRAGMA integrity_check and the audit
 *     chain verifies.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "t.h"

/* ---- the shim VFS ------------------------------------------------------ */

static sqlite3_vfs *fv_base;
static int fv_fail_at;        /* fail the N-th counted call after arming; 0 = off */
static int fv_calls;          /* counted calls since arming */
static int fv_fired;          /* faults delivered since arming */

struct fv_file {
	sqlite3_file base;
	sqlite3_file *real;       /* follows this struct in the same allocation */
};

static int fv_fault(void)
{
	if (!fv_fail_at)
		return 0;
	if (++fv_calls == fv_fail_at) {
		fv_fired++;
		return 1;
	}
	return 0;
}

#define REAL(f) (((struct fv_file *)(f))->real)

static int fv_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int fv_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{ return REAL(f)->pMethods->xRead(REAL(f), b, n, o); }
static int fv_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{ return fv_fault() ? SQLITE_IOERR_WRITE : REAL(f)->pMethods->xWrite(REAL(f), b, n, o); }
static int fv_truncate(sqlite3_file *f, sqlite3_int64 n)
{ return fv_fault() ? SQLITE_IOERR_TRUNCATE : REAL(f)->pMethods->xTruncate(REAL(f), n); }
static int fv_sync(sqlite3_file *f, int fl)
{ return fv_fault() ? SQLITE_IOERR_FSYNC : REAL(f)->pMethods->xSync(REAL(f), fl); }
static int fv_size(sqlite3_file *f, sqlite3_int64 *n) { return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int fv_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int fv_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int fv_check(sqlite3_file *f, int *r) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r); }
static int fv_fcntl(sqlite3_file *f, int op, void *a) { return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int fv_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int fv_dev(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int fv_shmmap(sqlite3_file *f, int i, int sz, int ext, void volatile **p)
{ return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, ext, p); }
static int fv_shmlock(sqlite3_file *f, int o, int n, int fl) { return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl); }
static void fv_shmbarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int fv_shmunmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int fv_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p) { return REAL(f)->pMethods->xFetch(REAL(f), o, n, p); }
static int fv_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p) { return REAL(f)->pMethods->xUnfetch(REAL(f), o, p); }

static const sqlite3_io_methods fv_methods = {
	3, fv_close, fv_read, fv_write, fv_truncate, fv_sync, fv_size, fv_lock, fv_unlock,
	fv_check, fv_fcntl, fv_sector, fv_dev, fv_shmmap, fv_shmlock, fv_shmbarrier,
	fv_shmunmap, fv_fetch, fv_unfetch,
};

static int fv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	struct fv_file *ff = (struct fv_file *)f;
	int rc;

	(void)vfs;
	ff->real = (sqlite3_file *)(ff + 1);
	rc = fv_base->xOpen(fv_base, name, ff->real, flags, out);
	/* a failed open leaves no methods: SQLite must not call ours then */
	ff->base.pMethods = ff->real->pMethods ? &fv_methods : NULL;
	return rc;
}

static int fv_delete(sqlite3_vfs *v, const char *n, int s) { (void)v; return fv_base->xDelete(fv_base, n, s); }
static int fv_access(sqlite3_vfs *v, const char *n, int fl, int *r) { (void)v; return fv_base->xAccess(fv_base, n, fl, r); }
static int fv_full(sqlite3_vfs *v, const char *n, int sz, char *o) { (void)v; return fv_base->xFullPathname(fv_base, n, sz, o); }
static int fv_random(sqlite3_vfs *v, int n, char *o) { (void)v; return fv_base->xRandomness(fv_base, n, o); }
static int fv_sleep(sqlite3_vfs *v, int us) { (void)v; return fv_base->xSleep(fv_base, us); }
static int fv_time(sqlite3_vfs *v, double *t) { (void)v; return fv_base->xCurrentTime(fv_base, t); }
static int fv_err(sqlite3_vfs *v, int n, char *o) { (void)v; return fv_base->xGetLastError(fv_base, n, o); }
static int fv_time64(sqlite3_vfs *v, sqlite3_int64 *t) { (void)v; return fv_base->xCurrentTimeInt64(fv_base, t); }

static sqlite3_vfs fv_vfs;

/* Make the shim the default VFS for every connection opened from now on. */
static int fv_register(void)
{
	fv_base = sqlite3_vfs_find(NULL);
	if (!fv_base)
		return -1;
	fv_vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct fv_file) + fv_base->szOsFile,
		.mxPathname = fv_base->mxPathname,
		.zName = "faultvfs",
		.xOpen = fv_open, .xDelete = fv_delete, .xAccess = fv_access,
		.xFullPathname = fv_full, .xRandomness = fv_random, .xSleep = fv_sleep,
		.xCurrentTime = fv_time, .xGetLastError = fv_err, .xCurrentTimeInt64 = fv_time64,
	};
	return sqlite3_vfs_register(&fv_vfs, 1) == SQLITE_OK ? 0 : -1;
}

static void fv_arm(int n) { fv_fail_at = n; fv_calls = 0; fv_fired = 0; }

/* ---- helpers ------------------------------------------------------------ */

static int count_rows(const char *db, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *s;
	int n = -1;

	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			n = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(h);
	return n;
}

static int integrity_ok(const char *db)
{
	sqlite3 *h;
	sqlite3_stmt *s;
	int ok = 0;

	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &s, NULL) == SQLITE_OK) {
		ok = sqlite3_step(s) == SQLITE_ROW &&
		     strcmp((const char *)sqlite3_column_text(s, 0), "ok") == 0;
		sqlite3_finalize(s);
	}
	sqlite3_close(h);
	return ok;
}

static const char VALUE[] = "fault-injection-value-5c1a";

/* ---- the test -------------------------------------------------------------- */

int main(void)
{
	char dir[] = "/tmp/faultvfs_test.XXXXXX", conf[256], db[256], cmd[300];
	struct policy_caller caller = { .known = true, .uid = 1000, .gid = 1000, .pid = 4242,
					.exe = "/usr/bin/cat" };
	struct store_config cfg;
	struct store *st = NULL;
	struct store_facts f;
	enum policy_reason why;
	int n, rc, resolves_ok = 0, sets_ok = 0, faults = 0, last_n = 0;
	FILE *fp;

	T_OK(fv_register() == 0, "faultvfs: the shim VFS is the default");
	if (!mkdtemp(dir)) {
		T_OK(0, "faultvfs: temporary directory");
		return t_done();
	}
	snprintf(conf, sizeof conf, "%s/c.ini", dir);
	snprintf(db, sizeof db, "%s/store.db", dir);
	fp = fopen(conf, "w");
	if (!fp)
		return 1;
	fprintf(fp, "[store]\npath = %s\nkey_file = %s/master.key\n", db, dir);
	fclose(fp);
	rc = store_config_load(conf, &cfg);
	if (!rc)
		rc = store_init(&cfg, "tester");
	if (!rc)
		rc = store_open(&cfg, "tester", &st);
	T_EQ_INT(rc, 0, "faultvfs: a store through the shim");
	if (rc) {
		printf("# %s\n", store_error());
		return t_done();
	}
	{
		struct store_agent_row a = { .name = "bot", .uid = 1000 };
		rc = store_provider_add(st, "p");
		rc |= store_secret_set(st, "p", "s", (const uint8_t *)VALUE, sizeof VALUE - 1, 0, NULL);
		rc |= store_agent_add(st, &a);
		rc |= store_project_add(st, "j");
		rc |= store_project_attach(st, "j", "p", NULL);
		rc |= store_assign(st, "bot", "j");
		rc |= store_grant(st, "bot", "p", "s", 0, 0);
		T_EQ_INT(rc, 0, "faultvfs: objects");
	}

	/* resolve: a fault at every write/sync/truncate position in turn */
	for (n = 1; n < 200; n++) {
		int before = count_rows(db, "SELECT count(*) FROM audit WHERE type = 'resolve'");
		uint8_t *val = NULL;
		size_t len = 0;

		rc = store_facts_load(st, "bot", "p", "s", &f);
		if (rc)
			break;
		fv_arm(n);
		rc = store_resolve(st, &f, &caller, &val, &len, &why);
		int fired = fv_fired;
		fv_arm(0);
		int after = count_rows(db, "SELECT count(*) FROM audit WHERE type = 'resolve'");
		if (rc == 0) {
			resolves_ok++;
			if (len != sizeof VALUE - 1 || memcmp(val, VALUE, len) != 0 || after != before + 1) {
				T_OK(0, "faultvfs: resolve with a fault at write %d: value and exactly one event", n);
				store_value_free(val, len);
				break;
			}
			store_value_free(val, len);
			if (!fired) {
				last_n = n;
				break;       /* the resolve no longer reaches the fault: all positions done */
			}
		} else {
			faults++;
			if (val != NULL || after != before) {
				T_OK(0, "faultvfs: resolve failing at write %d hands out nothing and adds no event (rc %d, events %d -> %d)",
				     n, rc, before, after);
				break;
			}
			if (rc != -EIO) {
				T_EQ_INT(rc, -EIO, "faultvfs: a failed resolve at write %d is EIO", n);
				break;
			}
		}
	}
	T_OK(last_n > 1, "faultvfs: resolve met a fault at each of its %d write/sync positions", last_n - 1);
	T_OK(faults > 0, "faultvfs: %d resolves failed closed (EIO, no value, no event)", faults);

	/* the handle recovers */
	{
		uint8_t *val = NULL;
		size_t len = 0;
		rc = store_facts_load(st, "bot", "p", "s", &f);
		if (!rc)
			rc = store_resolve(st, &f, &caller, &val, &len, &why);
		T_OK(rc == 0 && len == sizeof VALUE - 1 && memcmp(val, VALUE, len) == 0,
		     "faultvfs: the same handle resolves again once the fault is gone");
		store_value_free(val, len);
	}

	/* secret set: the version and its event, or neither */
	last_n = 0;
	faults = 0;
	for (n = 1; n < 200; n++) {
		int v_before = count_rows(db, "SELECT count(*) FROM versions");
		int e_before = count_rows(db, "SELECT count(*) FROM audit WHERE type IN ('create', 'rotate')");
		fv_arm(n);
		rc = store_secret_set(st, "p", "s", (const uint8_t *)"next", 4, 0, NULL);
		int fired = fv_fired;
		fv_arm(0);
		int v_after = count_rows(db, "SELECT count(*) FROM versions");
		int e_after = count_rows(db, "SELECT count(*) FROM audit WHERE type IN ('create', 'rotate')");
		if ((rc == 0 && (v_after != v_before + 1 || e_after != e_before + 1)) ||
		    (rc != 0 && (v_after != v_before || e_after != e_before))) {
			T_OK(0, "faultvfs: secret set with a fault at write %d: version and event together (rc %d)", n, rc);
			break;
		}
		if (rc == 0)
			sets_ok++;
		else
			faults++;
		if (rc == 0 && !fired) {
			last_n = n;
			break;
		}
	}
	T_OK(last_n > 1 && faults > 0,
	     "faultvfs: secret set is all or nothing at each of its %d write/sync positions (%d failed)",
	     last_n - 1, faults);

	store_close(st);
	T_OK(integrity_ok(db), "faultvfs: PRAGMA integrity_check is ok after every fault");
	rc = store_open(&cfg, "tester", &st);
	T_EQ_INT(rc, 0, "faultvfs: the store opens again");
	if (!rc) {
		struct store_audit_report rep;
		rc = store_audit_verify(st, &rep);
		T_OK(rc == 0 && rep.first_bad == 0, "faultvfs: the audit chain verifies (%lld events)",
		     (long long)rep.events);
		T_EQ_INT(count_rows(db, "SELECT count(*) FROM audit WHERE type = 'resolve'"), resolves_ok + 1,
			 "faultvfs: one resolve event per value handed out, none for the failures");
		store_close(st);
	}
	printf("# resolves served %d, secret sets %d\n", resolves_ok + 1, sets_ok);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return t_done();
}

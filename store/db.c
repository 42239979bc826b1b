/*
 * db.c - the database side of the store: creating and opening it, the
 * schema and its forward migrations, the statement cache and the
 * transaction helpers every other file of store/ uses, all through
 * sql.h (the engine's settings are its driver's: sql_sqlite.c).
 *
 * Writers take the write lock when they begin and wait up to 10 s for it
 * (so concurrent shadm runs queue instead of failing with "database is
 * locked"); a commit survives kill -9 of the process; with [audit]
 * durability = power each commit is also synced (sql_sync), one sync
 * shared by every transaction committed while it runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"

/*
 * Schema version STORE_SCHEMA_VERSION. Every later change is a new entry appended to
 * store_migrations[], run in order inside one transaction at open.
 */
static const char *const store_migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE keys ("
	"  id INTEGER PRIMARY KEY,"
	"  kind TEXT NOT NULL CHECK (kind IN ('audit', 'data')),"
	"  wrapped BLOB NOT NULL,"
	"  wrapped_next BLOB,"       /* under the next root key while `key rekey` runs */
	"  created INTEGER NOT NULL);"
	"CREATE TABLE workspaces ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE providers ("
	"  id INTEGER PRIMARY KEY,"
	"  ws_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  UNIQUE (ws_id, name));"
	"CREATE TABLE secrets ("
	"  id INTEGER PRIMARY KEY,"
	"  provider_id INTEGER NOT NULL REFERENCES providers(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  UNIQUE (provider_id, name));"
	"CREATE TABLE versions ("
	"  id INTEGER PRIMARY KEY,"
	"  secret_id INTEGER NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,"
	"  version INTEGER NOT NULL,"
	"  key_id INTEGER NOT NULL REFERENCES keys(id),"
	"  ct BLOB NOT NULL,"
	"  length INTEGER NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL DEFAULT 0,"
	"  UNIQUE (secret_id, version));"
	"CREATE TABLE projects ("
	"  id INTEGER PRIMARY KEY,"
	"  ws_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  UNIQUE (ws_id, name));"
	"CREATE TABLE attachments ("
	"  id INTEGER PRIMARY KEY,"
	"  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
	"  provider_id INTEGER NOT NULL REFERENCES providers(id) ON DELETE CASCADE,"
	"  secret_id INTEGER REFERENCES secrets(id) ON DELETE CASCADE);"
	"CREATE UNIQUE INDEX attachments_provider ON attachments(project_id, provider_id)"
	"  WHERE secret_id IS NULL;"
	"CREATE UNIQUE INDEX attachments_secret ON attachments(project_id, provider_id, secret_id)"
	"  WHERE secret_id IS NOT NULL;"
	"CREATE INDEX attachments_by_provider ON attachments(provider_id);"
	"CREATE TABLE agents ("
	"  id INTEGER PRIMARY KEY,"
	"  ws_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  human INTEGER NOT NULL DEFAULT 0,"
	"  enabled INTEGER NOT NULL DEFAULT 1,"
	"  uid INTEGER NOT NULL,"
	"  gid INTEGER,"
	"  exe TEXT,"
	"  exe_sha256 BLOB,"
	"  created INTEGER NOT NULL,"
	"  UNIQUE (ws_id, name));"
	"CREATE TABLE assignments ("
	"  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
	"  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
	"  PRIMARY KEY (agent_id, project_id)) WITHOUT ROWID;"
	"CREATE INDEX assignments_by_project ON assignments(project_id);"
	"CREATE TABLE grants ("
	"  id INTEGER PRIMARY KEY,"
	"  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
	"  secret_id INTEGER NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,"
	"  created INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL DEFAULT 0,"
	"  max_uses INTEGER NOT NULL DEFAULT 0,"
	"  uses INTEGER NOT NULL DEFAULT 0,"
	"  revoked INTEGER NOT NULL DEFAULT 0,"
	"  UNIQUE (agent_id, secret_id));"
	"CREATE INDEX grants_by_secret ON grants(secret_id);"
	/* The trail keeps names, not ids: it must outlive what it describes. */
	"CREATE TABLE audit ("
	"  seq INTEGER PRIMARY KEY,"
	"  time INTEGER NOT NULL,"
	"  type TEXT NOT NULL,"
	"  workspace TEXT NOT NULL,"
	"  actor TEXT NOT NULL,"
	"  agent TEXT NOT NULL,"
	"  secret TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  gid INTEGER NOT NULL,"
	"  pid INTEGER NOT NULL,"
	"  exe TEXT NOT NULL,"
	"  reason TEXT NOT NULL,"
	"  fingerprint BLOB,"
	"  count INTEGER NOT NULL,"
	"  hash BLOB NOT NULL);"
	"CREATE INDEX audit_by_agent ON audit(agent, seq);"
	"CREATE INDEX audit_by_secret ON audit(secret, seq);",
	/*
	 * 1 -> 2: how far each generation of the audit journal has been
	 * moved into `audit` (journal.c); a generation seen once is never
	 * imported from its start again.
	 */
	"CREATE TABLE journal ("
	"  gen BLOB PRIMARY KEY,"
	"  offset INTEGER NOT NULL) WITHOUT ROWID;",
	/*
	 * 2 -> 3: access requests (request.c): one row per (agent, secret),
	 * reopened as pending by the next refusal after a decision.
	 */
	"CREATE TABLE requests ("
	"  id INTEGER PRIMARY KEY,"
	"  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
	"  secret_id INTEGER NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,"
	"  state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),"
	"  first INTEGER NOT NULL,"
	"  last INTEGER NOT NULL,"
	"  count INTEGER NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  gid INTEGER NOT NULL,"
	"  pid INTEGER NOT NULL,"
	"  exe TEXT NOT NULL,"
	"  decided INTEGER NOT NULL DEFAULT 0,"
	"  actor TEXT NOT NULL DEFAULT '',"
	"  UNIQUE (agent_id, secret_id));"
	"CREATE INDEX requests_by_secret ON requests(secret_id);",
	/*
	 * 3 -> 4: task-scoped grants (task.c): live only while the process
	 * (pid, start time from /proc/PID/stat) lives; 0 = not task-scoped.
	 */
	"ALTER TABLE grants ADD COLUMN pid INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE grants ADD COLUMN pid_start INTEGER NOT NULL DEFAULT 0;",
	/* 4 -> 5: an agent's rate limit (rate.c): rate_max resolves per rate_window seconds; 0 = none */
	"ALTER TABLE agents ADD COLUMN rate_max INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE agents ADD COLUMN rate_window INTEGER NOT NULL DEFAULT 0;",
	/* 5 -> 6: canary secrets (honeytokens, alert.c) */
	"ALTER TABLE secrets ADD COLUMN canary INTEGER NOT NULL DEFAULT 0;",
	/*
	 * 6 -> 7: the executable digests each agent has resolved from
	 * (alert.c): the first resolve from a digest not in here is a
	 * new-exe alert.
	 */
	"CREATE TABLE agent_exes ("
	"  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
	"  sha256 BLOB NOT NULL,"
	"  first INTEGER NOT NULL,"
	"  PRIMARY KEY (agent_id, sha256)) WITHOUT ROWID;",
	/*
	 * 7 -> 8: an agent's cgroup binding (policy_cgroup_match; NULL = none)
	 * and the caller's cgroup in each event ('' = not established). An
	 * event with an empty cgroup chains exactly as before (audit.c).
	 */
	"ALTER TABLE agents ADD COLUMN cgroup TEXT;"
	"ALTER TABLE audit ADD COLUMN cgroup TEXT NOT NULL DEFAULT '';",
	/*
	 * 8 -> 9: a version's expiry policy and its destruction (secret.c).
	 * ttl: the --expires DURATION it was set with (0: a date or never),
	 * carried to the next rotation; destroyed: when `secret destroy`
	 * wiped its ciphertext (0: intact), the row itself stays.
	 */
	"ALTER TABLE versions ADD COLUMN ttl INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE versions ADD COLUMN destroyed INTEGER NOT NULL DEFAULT 0;",
	/*
	 * 9 -> 10: which host wrote each event ([store] host), where many
	 * hosts share the database; '' for a file store. An event without a
	 * host chains exactly as before (audit.c). Portable text: every
	 * engine runs this one.
	 */
	"ALTER TABLE audit ADD COLUMN host TEXT NOT NULL DEFAULT '';",
	/*
	 * 10 -> 11: PostgreSQL's change notification for the mounts' read
	 * caches (sql_pgsql.c); nothing for a file store, whose stamp is
	 * SQLite's own (sql_sqlite.c).
	 */
	"",
};
#define STORE_NMIGRATIONS (sizeof store_migrations / sizeof store_migrations[0])
_Static_assert(STORE_NMIGRATIONS == STORE_SCHEMA_VERSION, "one migration per schema version");

void store_lock(struct store *st)
{
	pthread_mutex_lock(&st->mu);
	store_clear_error();
}

void store_unlock(struct store *st)
{
	pthread_mutex_unlock(&st->mu);
}

struct sql_stmt *store_stmt(struct store *st, const char *sql)
{
	int i, rc;

	for (i = 0; i < STORE_STMT_CACHE && st->stmts[i].sql; i++) {
		if (st->stmts[i].sql == sql) {
			sql_reset(st->stmts[i].stmt);
			sql_clear_bindings(st->stmts[i].stmt);
			return st->stmts[i].stmt;
		}
	}
	if (i == STORE_STMT_CACHE)
		abort();        /* a programming error: raise STORE_STMT_CACHE */
	if ((rc = sql_prepare(st->db, sql, true, &st->stmts[i].stmt))) {
		store_fail_db(st, rc, "cannot prepare a query");
		return NULL;
	}
	st->stmts[i].sql = sql;
	return st->stmts[i].stmt;
}

int store_exec(struct store *st, const char *sql)
{
	int rc = sql_exec(st->db, sql);

	return rc == 0 ? 0 : store_fail_db(st, rc, "store");
}

int store_begin(struct store *st, bool write)
{
	int rc = sql_begin(st->db, write);

	return rc == 0 ? 0 : store_fail_db(st, rc, "cannot start a transaction");
}

/*
 * BEGIN IMMEDIATE, then move up to JOURNAL_WRITE_MAX of the audit
 * journal's pending events into the trail first: with no backlog, the
 * chain keeps the order things happened in; with one, the change does not
 * wait for all of it.
 */
int store_write_begin(struct store *st)
{
	int rc = store_begin(st, true);

	if (rc == 0 && (rc = store_journal_import_locked(st)))
		store_rollback(st);
	return rc;
}

int store_commit_ticket(struct store *st, uint64_t *ticket)
{
	int64_t from = st->fwd_from, to = 0;
	uint8_t hash[STORE_HASH_BYTES];
	int rc;

	/* inside the transaction, the events from `from` on are this one's own */
	if (from && store_audit_tail(st, &to, hash))
		from = 0;
	st->fwd_from = 0;
	rc = sql_commit(st->db);
	if (rc == 0) {
		*ticket = atomic_fetch_add(&st->wal_sync.ticket, 1) + 1;
		if (from) {
			/* durable first: with durability = power that is the fdatasync */
			if (store_sync_to(st, *ticket) == 0)
				store_audit_forward(st, from, to);
		}
		return 0;
	}
	rc = store_fail_db(st, rc, "cannot write the store");
	store_rollback(st);
	return rc;
}

static int store_wal_sync(struct store *st)
{
	int rc = sql_sync(st->db);

	if (rc)
		return store_fail(-EIO, "cannot sync the audit trail: %s", strerror(-rc));
	atomic_fetch_add(&st->syncs, 1);
	return 0;
}

void store_syncer_init(struct store_syncer *sy)
{
	atomic_init(&sy->ticket, 0);
	pthread_mutex_init(&sy->mu, NULL);
	pthread_cond_init(&sy->cv, NULL);
	sy->synced = 0;
	sy->syncing = false;
	sy->waiting = 0;
	sy->last_batch = 0;
}

void store_syncer_destroy(struct store_syncer *sy)
{
	pthread_cond_destroy(&sy->cv);
	pthread_mutex_destroy(&sy->mu);
}

/*
 * With gather, a would-be leader first waits (at most
 * STORE_SYNC_GATHER_US) until every append not yet synced has its owner
 * waiting too, and until there are as many as the last sync covered:
 * opens of concurrent readers reach their first read a few tens of
 * microseconds after their append, and readers released by the last sync
 * append again a round trip or two later, so one fdatasync then covers
 * them all. A lone reader's append is its own and is synced at once (the
 * last batch was one); when the load drops, one sync waits out the
 * deadline and the expected batch shrinks with it.
 */
#define STORE_SYNC_GATHER_US 200

int store_syncer_wait(struct store *st, struct store_syncer *sy, uint64_t ticket,
		      int (*sync)(struct store *st), bool gather)
{
	struct timespec deadline = { 0, 0 };
	uint64_t target;
	int rc = 0;

	pthread_mutex_lock(&sy->mu);
	sy->waiting++;
	pthread_cond_broadcast(&sy->cv);     /* a gathering leader counts this one */
	while (sy->synced < ticket) {
		if (sy->syncing) {
			pthread_cond_wait(&sy->cv, &sy->mu);
			continue;
		}
		/* every ticket issued before this read has its bytes written */
		target = atomic_load(&sy->ticket);
		if (gather && ((uint64_t)sy->waiting < target - sy->synced ||
			       target - sy->synced < sy->last_batch)) {
			struct timespec now;
			clock_gettime(CLOCK_REALTIME, &now);
			if (deadline.tv_sec == 0) {
				deadline = now;
				deadline.tv_nsec += STORE_SYNC_GATHER_US * 1000L;
				if (deadline.tv_nsec >= 1000000000L) {
					deadline.tv_sec++;
					deadline.tv_nsec -= 1000000000L;
				}
			}
			if (now.tv_sec < deadline.tv_sec ||
			    (now.tv_sec == deadline.tv_sec && now.tv_nsec < deadline.tv_nsec)) {
				pthread_cond_timedwait(&sy->cv, &sy->mu, &deadline);
				continue;
			}
		}
		sy->syncing = true;
		pthread_mutex_unlock(&sy->mu);
		rc = sync(st);
		pthread_mutex_lock(&sy->mu);
		sy->syncing = false;
		if (rc == 0 && target > sy->synced) {
			sy->last_batch = target - sy->synced;
			sy->synced = target;
		}
		pthread_cond_broadcast(&sy->cv);
		if (rc)
			break;
	}
	sy->waiting--;
	pthread_mutex_unlock(&sy->mu);
	return rc;
}

int store_sync_to(struct store *st, uint64_t ticket)
{
	if (st->cfg.durability != STORE_DURABLE_POWER)
		return 0;
	return store_syncer_wait(st, &st->wal_sync, ticket, store_wal_sync, false);
}

int store_commit(struct store *st)
{
	uint64_t ticket;
	int rc = store_commit_ticket(st, &ticket);

	return rc ? rc : store_sync_to(st, ticket);
}

void store_rollback(struct store *st)
{
	st->fwd_from = 0;      /* its events are gone: nothing to forward */
	sql_rollback(st->db);
}

/*
 * Lock the handle and open a write transaction (a savepoint inside a
 * batch); unlocked again on failure.
 */
int store_tx_start(struct store *st)
{
	int rc;

	store_lock(st);
	if (st->batch || st->gc_open)
		rc = store_exec(st, "SAVEPOINT change");
	else
		rc = store_write_begin(st);
	if (rc)
		store_unlock(st);
	return rc;
}

/* Finish a change: commit when rc is 0, else roll back; unlocks. */
int store_tx_end(struct store *st, int rc)
{
	if (st->batch || st->gc_open) {
		if (rc)
			(void)sql_exec(st->db, "ROLLBACK TO change");
		if (store_exec(st, "RELEASE change") && !rc)
			rc = -EIO;
	} else if (rc == 0) {
		rc = store_commit(st);
	} else {
		store_rollback(st);
	}
	store_unlock(st);
	return rc;
}

bool store_read_begin(struct store *st, int *rc)
{
	if (sql_in_transaction(st->db)) {
		*rc = 0;          /* inside an open transaction (a resolve batch): read in it */
		return false;
	}
	*rc = store_begin(st, false);
	return *rc == 0;
}

void store_read_end(struct store *st, bool began)
{
	if (began)
		store_rollback(st);   /* read-only: ending it is all that is needed */
}

int store_batch_begin(struct store *st)
{
	int rc;

	store_lock(st);
	if (st->batch) {
		store_unlock(st);
		return store_fail(-EBUSY, "a batch is already open");
	}
	rc = store_write_begin(st);
	if (rc == 0) {
		st->batch = 1;
		sql_bulk(st->db, true);
	}
	/* the lock stays held until store_batch_end: the batch is this thread's */
	if (rc)
		store_unlock(st);
	return rc;
}

int store_batch_end(struct store *st, int rc)
{
	if (!st->batch)
		return store_fail(-EINVAL, "no batch is open");
	st->batch = 0;
	if (rc == 0)
		rc = store_commit(st);
	else
		store_rollback(st);
	sql_bulk(st->db, false);
	store_unlock(st);
	return rc;
}

void store_stats_get(struct store *st, struct store_stats *out)
{
	out->resolves = atomic_load(&st->resolves);
	out->commits = atomic_load(&st->wal_sync.ticket);
	out->syncs = atomic_load(&st->syncs);
	pthread_mutex_lock(&st->cache.mu);
	out->cache_drops = st->cache.gen;
	pthread_mutex_unlock(&st->cache.mu);
}

int store_walk(struct store *st, const char *sql, int64_t a, int64_t b,
	       store_row_fn fn, void *ctx)
{
	struct sql_stmt *s;
	int rc;

	store_lock(st);
	s = store_stmt(st, sql);
	if (!s) {
		store_unlock(st);
		return -EIO;
	}
	sql_bind_int64(s, 1, a);
	sql_bind_int64(s, 2, b);
	while ((rc = sql_step(s)) == SQL_ROW) {
		if ((rc = fn(ctx, s)))
			goto out;
	}
	rc = rc == SQL_DONE ? 0 : store_fail_db(st, rc, "cannot read the store");
out:
	sql_reset(s);
	store_unlock(st);
	return rc;
}

/*
 * Run an INSERT ... RETURNING id (the portable way to learn a new row's
 * id) and read the id; no row is a failure.
 */
int store_insert_id(struct store *st, struct sql_stmt *s, const char *what, int64_t *id)
{
	int rc = sql_step(s);
	bool row = rc == SQL_ROW;

	if (row) {
		*id = sql_column_int64(s, 0);
		rc = sql_step(s);
	}
	sql_reset(s);
	return row && rc == SQL_DONE ? 0 : store_fail_db(st, rc, what);
}

int store_step_done(struct store *st, struct sql_stmt *s, const char *what)
{
	int rc = sql_step(s);

	sql_reset(s);
	if (rc == SQL_DONE || rc == SQL_ROW)
		return 0;
	return store_fail_db(st, rc, what);
}

int store_lookup_id(struct store *st, const char *sql, const char *name,
		    const char *kind, int64_t *id)
{
	struct sql_stmt *s = store_stmt(st, sql);
	int rc;

	if (!s)
		return -EIO;
	sql_bind_int64(s, 1, st->ws_id);
	sql_bind_text(s, 2, name);
	rc = sql_step(s);
	if (rc == SQL_ROW) {
		*id = sql_column_int64(s, 0);
		sql_reset(s);
		return 0;
	}
	sql_reset(s);
	if (rc == SQL_DONE)
		return store_fail(-ENOENT, "no %s '%s'", kind, name);
	return store_fail_db(st, rc, "cannot read the store");
}

/*
 * A key file or store must be a regular file (not a symlink), owned by
 * the user running us and closed to group and others: like doas with
 * its config, we refuse rather than use something another user could
 * read or swap.
 */
int store_check_file(const char *what, const char *path, bool must_exist)
{
	struct stat sb;
	int rc;

	if ((rc = store_check_home(path)))
		return rc;
	if (lstat(path, &sb) < 0) {
		if (errno == ENOENT && !must_exist)
			return -ENOENT;
		if (errno == ENOENT)
			return store_fail(-ENOENT, "%s '%s' does not exist (run 'shadm init')",
					  what, path);
		return store_fail(-errno, "cannot read %s '%s': %s", what, path, strerror(errno));
	}
	if (!S_ISREG(sb.st_mode))
		return store_fail(-EACCES, "%s '%s' is not a regular file", what, path);
	if (sb.st_uid != geteuid())
		return store_fail(-EACCES, "%s '%s' is owned by uid %u, not by uid %u (the user running this)",
				  what, path, (unsigned)sb.st_uid, (unsigned)geteuid());
	if (sb.st_mode & 077)
		return store_fail(-EACCES, "%s '%s' is accessible by group or others (mode %04o); run: chmod 600 %s",
				  what, path, (unsigned)(sb.st_mode & 07777), path);
	return 0;
}

/* mkdir -p for the directory holding `path`, new directories 0700. */
static int store_mkdirs_for(const char *path)
{
	char buf[PATH_MAX];
	char *p;

	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return store_fail(-ENAMETOOLONG, "path '%s' is too long", path);
	p = strrchr(buf, '/');
	if (!p || p == buf)
		return 0;
	*p = '\0';
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return store_fail(-errno, "cannot create directory '%s': %s", buf, strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return store_fail(-errno, "cannot create directory '%s': %s", buf, strerror(errno));
	return 0;
}

static int store_meta_get(struct store *st, enum sql_meta m, int64_t *out)
{
	int rc = sql_meta_get(st->db, m, out);

	return rc ? store_fail_db(st, rc, "store") : 0;
}

/* Bring an opened store to STORE_SCHEMA_VERSION; refuse foreign files. */
static int store_migrate(struct store *st)
{
	int64_t app, ver;
	int rc;

	rc = store_meta_get(st, SQL_META_APPLICATION_ID, &app);
	/* a store being made gets its application id in the same transaction as its schema */
	if (rc == -EBADMSG || (rc == 0 && app != STORE_APPLICATION_ID && !(st->creating && app == 0)))
		return store_fail(-EBADMSG, "store '%s' is corrupt or not a ScopeHold store",
				  st->cfg.store_path);
	if (rc)
		return rc;
	if ((rc = store_meta_get(st, SQL_META_SCHEMA_VERSION, &ver)))
		return rc;
	if (ver > (int64_t)STORE_NMIGRATIONS)
		return store_fail(-EPROTO, "store '%s' has schema %lld, newer than this program (%d)",
				  st->cfg.store_path, (long long)ver, STORE_SCHEMA_VERSION);
	if (ver == (int64_t)STORE_NMIGRATIONS)
		return 0;
	/* a database many hosts share changes schema only when an operator says so */
	if (ver > 0 && sql_shared(st->db) && !st->cfg.migrate)
		return store_fail(-EPROTO, "store '%s' has schema %lld, older than this program (%d);"
				  " run any shadm command to migrate it", st->cfg.store_path,
				  (long long)ver, STORE_SCHEMA_VERSION);
	if ((rc = store_begin(st, true)))
		return rc;
	if (app == 0 && (rc = sql_meta_set(st->db, SQL_META_APPLICATION_ID, STORE_APPLICATION_ID))) {
		rc = store_fail_db(st, rc, "store");
		goto fail;
	}
	for (; ver < (int64_t)STORE_NMIGRATIONS; ver++) {
		if ((rc = store_exec(st, sql_migration(st->db, ver, store_migrations[ver]))))
			goto fail;
	}
	if ((rc = sql_meta_set(st->db, SQL_META_SCHEMA_VERSION, ver))) {
		rc = store_fail_db(st, rc, "store");
		goto fail;
	}
	return store_commit(st);
fail:
	store_rollback(st);
	return rc;
}

static struct store *store_alloc(const struct store_config *cfg, const char *actor)
{
	struct store *st = calloc(1, sizeof *st);

	if (!st)
		return NULL;
	{
		/* recursive: a list callback may call back into the store */
		pthread_mutexattr_t a;
		pthread_mutexattr_init(&a);
		pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
		pthread_mutex_init(&st->mu, &a);
		pthread_mutexattr_destroy(&a);
	}
	pthread_cond_init(&st->gc_cv, NULL);
	store_syncer_init(&st->wal_sync);
	store_syncer_init(&st->jr.sync);
	pthread_mutex_init(&st->jr.mu, NULL);
	pthread_mutex_init(&st->cache.mu, NULL);
	pthread_mutex_init(&st->rate_mu, NULL);
	pthread_mutex_init(&st->exe_mu, NULL);
	pthread_rwlock_init(&st->dk_lock, NULL);
	st->jr.fd = -1;
	st->jr.lock_fd = -1;
	st->cfg = *cfg;
	snprintf(st->actor, sizeof st->actor, "%s", actor ? actor : "unknown");
	if (store_is_file(cfg)) {
		snprintf(st->jr.path, sizeof st->jr.path, "%s-audit", cfg->store_path);
	} else {
		/* this host's journal in its state_dir; messages name the database */
		snprintf(st->jr.path, sizeof st->jr.path, "%s/audit", cfg->state_dir);
		snprintf(st->cfg.store_path, sizeof st->cfg.store_path, "%s", cfg->conninfo);
	}
	st->root_key = sodium_malloc(STORE_KEY_BYTES);
	st->chain_key = sodium_malloc(STORE_KEY_BYTES);
	st->fp_key = sodium_malloc(STORE_KEY_BYTES);
	if (!st->root_key || !st->chain_key || !st->fp_key) {
		store_close(st);
		return NULL;
	}
	return st;
}

/* The engine behind sql.h: [store] backend, "sqlite" (STORE_SQL_DRIVER) by default. */
#define STORE_SQL_DRIVER "sqlite"

bool store_is_file(const struct store_config *cfg)
{
	return !cfg->backend[0] || strcmp(cfg->backend, STORE_SQL_DRIVER) == 0;
}

const char *store_where(const struct store_config *cfg)
{
	return store_is_file(cfg) ? cfg->store_path : cfg->conninfo;
}

/*
 * A database server is given [store] timeout to connect (each host it
 * tries) and, for the mount, to answer each request: past it the mount
 * cannot prove its view current and fails closed. shadm (the program
 * that migrates) waits admin_timeout for an answer instead: a bulk
 * import or a migration must not be cut by a slow statement.
 */
static int store_db_open(struct store *st, bool create)
{
	bool file = store_is_file(&st->cfg);
	int64_t answer = st->cfg.migrate ? st->cfg.admin_timeout_seconds : st->cfg.timeout_seconds;
	int rc = sql_open(file ? STORE_SQL_DRIVER : st->cfg.backend,
			  file ? st->cfg.store_path : st->cfg.conninfo, create, STORE_BUSY_TIMEOUT_MS,
			  (int)st->cfg.timeout_seconds * 1000, (int)answer * 1000, &st->db);

	/* "cannot reach the database (host=...): why" says it all in one line */
	if (rc == -ECONNREFUSED || rc == -ETIMEDOUT || rc == -ECONNRESET)
		return store_fail(rc, "%s", sql_error(st->db));
	return rc ? store_fail_db(st, rc, "cannot open the store") : 0;
}

int64_t store_unreachable(struct store *st, char *why, size_t cap)
{
	int64_t since;

	pthread_mutex_lock(&st->mu);
	since = st->db ? sql_down_since(st->db, why, cap) : 0;
	pthread_mutex_unlock(&st->mu);
	return since;
}

int store_workspace_use(struct store *st, const char *name)
{
	int64_t id;
	int rc;

	if (store_name_ok(name, POLICY_NAME_WORKSPACE))
		return -EINVAL;
	store_lock(st);
	rc = store_lookup_id(st, "SELECT id FROM workspaces WHERE ?1 = ?1 AND name = ?2",
			     name, "workspace", &id);
	if (rc == 0) {
		st->ws_id = id;
		snprintf(st->ws_name, sizeof st->ws_name, "%s", name);
	}
	store_unlock(st);
	return rc;
}

const char *store_workspace_current(const struct store *st)
{
	return st->ws_name;
}

int store_open(const struct store_config *cfg, const char *actor, struct store **out)
{
	struct store *st;
	int rc;

	*out = NULL;
	if (sodium_init() < 0)
		return store_fail(-EIO, "cannot initialise libsodium");
	if ((rc = store_check_file("key file", cfg->key_file, true)))
		return rc;
	if (!store_is_file(cfg)) {
		/*
		 * This host's own directory: made here (0700) on a host joining a
		 * database another host's `shadm init` made, checked before and
		 * after as init does.
		 */
		char probe[PATH_MAX + 8];
		snprintf(probe, sizeof probe, "%s/audit", cfg->state_dir);
		if ((rc = store_check_home(probe)) || (rc = store_mkdirs_for(probe)) ||
		    (rc = store_check_home(probe)))
			return rc;
	} else if ((rc = store_check_file("store", cfg->store_path, true))) {
		return rc;
	} else {
		/* the WAL beside the store must be writable, even to read */
		struct statvfs sv;
		if (statvfs(cfg->store_path, &sv) == 0 && (sv.f_flag & ST_RDONLY))
			return store_fail(-EROFS, "store '%s' is on a read-only filesystem",
					  cfg->store_path);
	}
	st = store_alloc(cfg, actor);
	if (!st)
		return store_fail(-ENOMEM, "out of memory");
	if ((rc = store_key_file_read(cfg->key_file, st->root_key)))
		goto fail;
	if ((rc = store_db_open(st, false)) || (rc = store_migrate(st))) {
		if (rc == -EBADMSG)     /* garbage in the file: say so, not SQLite's words */
			rc = store_fail(-EBADMSG, "store '%s' is corrupt or not a ScopeHold store",
					store_where(cfg));
		goto fail;
	}
	if ((rc = store_keys_load(st)))
		goto fail;
	if ((rc = store_workspace_use(st, cfg->workspace)))
		goto fail;
	*out = st;
	return 0;
fail:
	store_close(st);
	return rc;
}

void store_close(struct store *st)
{
	int i;

	if (!st)
		return;
	if (st->db) {
		pthread_mutex_lock(&st->mu);
		if (store_deny_flush_locked(st, true) < 0)
			fprintf(stderr, "scopehold: could not write coalesced denials: %s\n",
				store_error());
		pthread_mutex_unlock(&st->mu);
		if (store_controls_flush(st) < 0)
			fprintf(stderr, "scopehold: could not write the agents' executables: %s\n",
				store_error());
		/* a clean stop leaves the whole trail in the store */
		if (st->jr.fd >= 0 && store_journal_import(st) < 0)
			fprintf(stderr, "scopehold: could not import the audit journal: %s\n",
				store_error());
	}
	for (i = 0; i < STORE_STMT_CACHE && st->stmts[i].sql; i++)
		sql_finalize(st->stmts[i].stmt);
	sql_close(st->db);
	for (i = 0; i < st->ndkeys; i++)
		sodium_free(st->dkeys[i].key);
	sodium_free(st->root_key);
	sodium_free(st->chain_key);
	sodium_free(st->fp_key);
	store_cache_clear(st);
	store_journal_close(st);
	store_syncer_destroy(&st->wal_sync);
	store_syncer_destroy(&st->jr.sync);
	pthread_mutex_destroy(&st->jr.mu);
	pthread_mutex_destroy(&st->cache.mu);
	pthread_mutex_destroy(&st->rate_mu);
	pthread_mutex_destroy(&st->exe_mu);
	free(st->exes);
	pthread_rwlock_destroy(&st->dk_lock);
	pthread_cond_destroy(&st->gc_cv);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

/*
 * init: key first (O_EXCL), then the store; both refused when present.
 * Whatever this call created is removed again if a later step fails.
 */
int store_init(const struct store_config *cfg, const char *actor)
{
	struct store *st = NULL;
	bool made_key = false, made_store = false;
	const char *place;           /* the file made here: the store, or this host's journal */
	struct store_event ev;
	int64_t id;
	int rc;

	if (sodium_init() < 0)
		return store_fail(-EIO, "cannot initialise libsodium");
	if (access(cfg->key_file, F_OK) == 0 || errno != ENOENT)
		return store_fail(-EEXIST, "key file '%s' already exists; refusing to overwrite it",
				  cfg->key_file);
	if (store_is_file(cfg) && (access(cfg->store_path, F_OK) == 0 || errno != ENOENT))
		return store_fail(-EEXIST, "store '%s' already exists; refusing to overwrite it",
				  cfg->store_path);
	st = store_alloc(cfg, actor);
	if (!st)
		return store_fail(-ENOMEM, "out of memory");
	st->creating = true;
	/*
	 * Before and after creating the missing directories: one made by
	 * someone else in the meantime (mkdir takes an existing one as done)
	 * is caught by the second look.
	 */
	place = store_is_file(cfg) ? cfg->store_path : st->jr.path;
	if ((rc = store_check_home(cfg->key_file)) ||
	    (rc = store_check_home(place)) ||
	    (rc = store_mkdirs_for(cfg->key_file)) || (rc = store_mkdirs_for(place)) ||
	    (rc = store_check_home(cfg->key_file)) ||
	    (rc = store_check_home(place)))
		goto fail;
	if ((rc = store_key_file_create(cfg->key_file, st->root_key)))
		goto fail;
	made_key = true;
	if (store_is_file(cfg)) {
		/* create the file ourselves so it is 0600 from its first byte */
		int fd = open(cfg->store_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			rc = store_fail(-errno, "cannot create store '%s': %s", cfg->store_path,
					strerror(errno));
			goto fail;
		}
		close(fd);
		made_store = true;
	}
	if ((rc = store_db_open(st, true)))
		goto fail;
	/* a database (not a file made just now) may hold a store already */
	if ((rc = store_meta_get(st, SQL_META_APPLICATION_ID, &id)))
		goto fail;
	if (id != 0) {
		rc = store_fail(-EEXIST, "store '%s' already exists; refusing to overwrite it",
				store_where(cfg));
		goto fail;
	}
	if ((rc = store_migrate(st)))      /* the application id, the schema: one transaction */
		goto fail;
	if ((rc = store_begin(st, true)))
		goto fail;
	if ((rc = store_keys_load(st)))       /* creates the audit key and first data key */
		goto fail_tx;
	{
		struct sql_stmt *s = store_stmt(st, "INSERT INTO workspaces(name, created) VALUES (?1, ?2)"
						" RETURNING id");
		if (!s) { rc = -EIO; goto fail_tx; }
		sql_bind_text(s, 1, STORE_DEFAULT_WORKSPACE);
		sql_bind_int64(s, 2, store_now());
		if ((rc = store_insert_id(st, s, "cannot create the default workspace", &id)))
			goto fail_tx;
	}
	st->ws_id = id;
	snprintf(st->ws_name, sizeof st->ws_name, STORE_DEFAULT_WORKSPACE);
	store_event_init(st, &ev, "init");
	if ((rc = store_audit_append(st, &ev)))
		goto fail_tx;
	if ((rc = store_commit(st)))
		goto fail;
	store_close(st);
	return 0;
fail_tx:
	store_rollback(st);
fail:
	store_close(st);
	if (made_store) {
		unlink(cfg->store_path);
		sql_remove(STORE_SQL_DRIVER, cfg->store_path);
	}
	if (made_key)
		unlink(cfg->key_file);
	return rc;
}

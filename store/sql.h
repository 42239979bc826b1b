/*
 * sql.h - the store's one SQL interface (private to store/, prefix sql_).
 *
 * Every file of store/ talks to its database engine through this header
 * and nothing else, as Dovecot's lib-sql does with sql-api.h: a
 * connection (struct sql_db), prepared statements with typed binds by
 * 1-based index, results read column by column, transactions, and one
 * error string per connection. Each engine is one driver file filling a
 * struct sql_driver (sql_sqlite.c, the default, and sql_pgsql.c for
 * [store] backend = postgresql); sql.c dispatches through it, so the code
 * above is written once for every engine.
 *
 * Conventions, the store's own: every call that can fail returns 0 (or
 * SQL_ROW/SQL_DONE for sql_step) or a negative errno, converted from the
 * engine's codes once, in the driver; sql_error() then holds the engine's
 * words for the last failure on that connection. SQL text keeps to what
 * both SQLite and PostgreSQL read where that is cheap: `?`/`?N`
 * placeholders (a driver without them rewrites them to `$N`), RETURNING
 * for ids of inserted rows, SAVEPOINT/ROLLBACK TO/RELEASE.
 *
 * Threads: a connection and its statements are used by one thread at a
 * time (the store's handle lock guarantees it); only sql_sync and
 * sql_watch_stamp are called without that lock, as said below.
 */
#ifndef SCOPEHOLD_STORE_SQL_H
#define SCOPEHOLD_STORE_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sql_db;                  /* one connection to one store */
struct sql_stmt;                /* a prepared statement of one connection */
struct sql_driver;

/* What sql_step returns besides -errno. */
#define SQL_ROW  1              /* a row is ready to be read with sql_column_* */
#define SQL_DONE 2              /* the statement has run to its end */

/* Values the store keeps in the engine's own header (sql_meta_get/set). */
enum sql_meta {
	SQL_META_APPLICATION_ID,  /* which program's store this is; 0 in a new one */
	SQL_META_SCHEMA_VERSION,  /* migrations applied; 0 in a new one */
};

/* The bytes of a change stamp (sql_watch_stamp). */
#define SQL_STAMP_BYTES 48

/*
 * A driver: one per engine. Members marked "optional" may be NULL; every
 * other one must be provided. The sql_* functions below document what
 * each member means; the driver's member has the same contract.
 */
struct sql_driver {
	const char *name;
	/* required */
	int (*open)(const char *target, bool create, int busy_ms, int connect_ms, int request_ms,
		    struct sql_db **out);
	void (*close)(struct sql_db *db);
	const char *(*error)(struct sql_db *db);
	int (*exec)(struct sql_db *db, const char *sql);
	int (*prepare)(struct sql_db *db, const char *sql, bool keep, struct sql_stmt **out);
	int (*bind_int64)(struct sql_stmt *s, int i, int64_t v);
	int (*bind_text)(struct sql_stmt *s, int i, const char *v);
	int (*bind_blob)(struct sql_stmt *s, int i, const void *v, size_t len);
	int (*bind_null)(struct sql_stmt *s, int i);
	int (*step)(struct sql_stmt *s);
	int64_t (*column_int64)(struct sql_stmt *s, int i);
	const char *(*column_text)(struct sql_stmt *s, int i);
	const void *(*column_blob)(struct sql_stmt *s, int i);
	int (*column_bytes)(struct sql_stmt *s, int i);
	bool (*column_is_null)(struct sql_stmt *s, int i);
	void (*reset)(struct sql_stmt *s);
	void (*clear_bindings)(struct sql_stmt *s);
	void (*finalize)(struct sql_stmt *s);
	int64_t (*changes)(struct sql_db *db);
	int (*begin)(struct sql_db *db, bool write);
	int (*commit)(struct sql_db *db);
	void (*rollback)(struct sql_db *db);
	bool (*in_transaction)(struct sql_db *db);
	int (*meta_get)(struct sql_db *db, enum sql_meta m, int64_t *v);
	int (*meta_set)(struct sql_db *db, enum sql_meta m, int64_t v);
	int (*sync)(struct sql_db *db);
	/* optional: engine capabilities (see the sql_* functions) */
	int64_t (*down_since)(struct sql_db *db, char *why, size_t cap);
	void (*bulk)(struct sql_db *db, bool on);
	void (*checkpoint)(struct sql_db *db, int wait_ms);
	int (*watch_start)(struct sql_db *db);
	bool (*watch_stamp)(struct sql_db *db, uint8_t stamp[SQL_STAMP_BYTES]);
	bool (*watch_next)(const uint8_t before[SQL_STAMP_BYTES], const uint8_t after[SQL_STAMP_BYTES]);
	void (*remove)(const char *target);
	/* optional: is target well formed and free of secrets (sql_target_check) */
	int (*check)(const char *target, char *problem, size_t cap);
	/* optional: this engine's own text of migration `from` -> from+1 (NULL: the shared one) */
	const char *(*migration)(int64_t from);
	/* the database is shared by many hosts: only the admin tool migrates it */
	bool shared;
};

extern const struct sql_driver sql_driver_sqlite;
extern const struct sql_driver sql_driver_pgsql;

/*
 * For drivers and sql.c only: every driver's connection begins with a
 * struct sql_db and every statement with a struct sql_stmt (Dovecot's
 * `struct sqlite_db { struct sql_db api; ... }`); the rest of store/
 * never reads these.
 */
struct sql_db { const struct sql_driver *drv; };
struct sql_stmt { struct sql_db *db; };

/* ---- connections ---------------------------------------------------------- */

/*
 * Connect to the store at `target` (for SQLite a file that exists; with
 * create, an empty file is made a store: WAL journal; for PostgreSQL a
 * conninfo) with the driver named `driver` ("sqlite", "postgresql"). Writers wait up to busy_ms for the write
 * lock before failing. An engine reached over a network bounds the rest:
 * a connection is made within connect_ms (per server it tries), and
 * every request is answered within request_ms (beyond busy_ms for a
 * write begin), else it fails; a broken link is made again by the next
 * request outside a transaction (sql_down_since). The connection is set up for the store's
 * promises: foreign keys enforced, a committed transaction survives a
 * crash of the process, freed data overwritten (secure delete).
 * *out is set even on failure whenever a connection object exists, so
 * sql_error() can say why; sql_close() it either way.
 */
int sql_open(const char *driver, const char *target, bool create, int busy_ms,
	     int connect_ms, int request_ms, struct sql_db **out);
void sql_close(struct sql_db *db);                 /* finalize its statements first; NULL ok */
/* The engine's words for the last failure on db ("not an error" if none). */
const char *sql_error(struct sql_db *db);
/*
 * Since when (time()) the engine has been unreachable: its link broke,
 * no answer came within request_ms, or it could not be connected to
 * again (or was refused: a setting open refuses). 0 while it answers,
 * and always for an engine without a link (SQLite). why (may be NULL)
 * gets the one line that began the outage; it names the server, never a
 * password. Callers hold the connection's lock, as for every call.
 */
int64_t sql_down_since(struct sql_db *db, char *why, size_t cap);
/* Run one or more statements that return no rows. */
int sql_exec(struct sql_db *db, const char *sql);
/* Rows changed by the last INSERT, UPDATE or DELETE. */
int64_t sql_changes(struct sql_db *db);
/* The store's values in the engine's header (SQLite: PRAGMA application_id, user_version). */
int sql_meta_get(struct sql_db *db, enum sql_meta m, int64_t *v);
int sql_meta_set(struct sql_db *db, enum sql_meta m, int64_t v);   /* inside a write transaction */

/* ---- statements ----------------------------------------------------------- */

/*
 * Prepare one statement. keep: it will be reused for the connection's
 * lifetime (the store's statement cache), so the engine may plan it
 * once. *out is NULL on failure.
 */
int sql_prepare(struct sql_db *db, const char *sql, bool keep, struct sql_stmt **out);
/*
 * Binds by 1-based index. Text and blobs are not copied: they must stay
 * valid until the statement is reset. A NULL text binds SQL NULL.
 */
int sql_bind_int64(struct sql_stmt *s, int i, int64_t v);
int sql_bind_text(struct sql_stmt *s, int i, const char *v);
int sql_bind_blob(struct sql_stmt *s, int i, const void *v, size_t len);
int sql_bind_null(struct sql_stmt *s, int i);
/* Run to the next row: SQL_ROW, SQL_DONE, or -errno (sql_error says why). */
int sql_step(struct sql_stmt *s);
/*
 * Columns of the current row by 0-based index. Text and blobs stay
 * valid until the next step or reset; NULL reads as 0, NULL, NULL, 0.
 */
int64_t sql_column_int64(struct sql_stmt *s, int i);
const char *sql_column_text(struct sql_stmt *s, int i);
const void *sql_column_blob(struct sql_stmt *s, int i);
int sql_column_bytes(struct sql_stmt *s, int i);
bool sql_column_is_null(struct sql_stmt *s, int i);
/* Back to before its first step; the bindings stay. */
void sql_reset(struct sql_stmt *s);
/* Every parameter back to NULL. */
void sql_clear_bindings(struct sql_stmt *s);
void sql_finalize(struct sql_stmt *s);             /* NULL ok */

/* ---- transactions --------------------------------------------------------- */

/*
 * write: take the write lock now (SQLite's BEGIN IMMEDIATE), so that two
 * writers queue for busy_ms instead of failing on their first write; a
 * read transaction sees one snapshot throughout.
 */
int sql_begin(struct sql_db *db, bool write);
int sql_commit(struct sql_db *db);
void sql_rollback(struct sql_db *db);              /* no-op outside a transaction */
bool sql_in_transaction(struct sql_db *db);

/* ---- engine capabilities -------------------------------------------------- */

/*
 * Make every transaction committed so far on any connection of this
 * process durable against power loss ([audit] durability = power): the
 * store commits without waiting for the disk and batches this call over
 * many commits. Called without the connection's lock, by one thread at a
 * time. Required: an engine that syncs each commit itself returns 0.
 */
int sql_sync(struct sql_db *db);
/*
 * A bulk load is starting (on) or over (off): the engine may hold more
 * pages in memory meanwhile. Optional; a hint, it cannot fail.
 */
void sql_bulk(struct sql_db *db, bool on);
/*
 * Best effort, outside any transaction: rewrite the store so that data
 * freed by the last commits survives nowhere, not even in the engine's
 * log (SQLite: checkpoint the WAL into the file and truncate it),
 * waiting at most wait_ms for readers. Optional: a no-op where freed
 * data does not outlive the commit that freed it.
 */
void sql_checkpoint(struct sql_db *db, int wait_ms);
/*
 * Change detection for the mount's read cache (cache.c). watch_start
 * returns 0 if this connection can see other processes' commits without
 * asking the engine, -ENOTSUP if not (then the cache stays off).
 * watch_stamp then fills a stamp that differs after any commit of any
 * process and returns false while a commit is half-written, or while
 * the driver cannot vouch that it would see one (PostgreSQL: its
 * listener's lease has run out) - false means the cache is neither used
 * nor filled; it must be a plain memory read (and at most a read of the
 * clock), safe from any thread without the connection's lock. A stamp read before a query can only be older than the data the
 * query sees, never newer. Optional: both NULL means no cache.
 */
int sql_watch_start(struct sql_db *db);
bool sql_watch_stamp(struct sql_db *db, uint8_t stamp[SQL_STAMP_BYTES]);
/*
 * Is `after` the stamp `before` moved by exactly one commit? With
 * `before` read while this connection held the write lock and `after`
 * read once its own commit returned, true proves that commit was the
 * only one in between. False when unsure. Optional (false), for engines
 * whose stamp already ignores commits that change nothing cached.
 */
bool sql_watch_next(struct sql_db *db, const uint8_t before[SQL_STAMP_BYTES],
		    const uint8_t after[SQL_STAMP_BYTES]);
/*
 * Is `target` usable by the driver named `driver`: 0, or -EINVAL with
 * one line in problem that never repeats a secret the target holds
 * (a password in a conninfo is refused, not echoed). -ENOTSUP for an
 * unknown driver. No connection is made.
 */
int sql_target_check(const char *driver, const char *target, char *problem, size_t cap);
/* The driver's own text for migration from -> from+1, or `shared` when it has none. */
const char *sql_migration(struct sql_db *db, int64_t from, const char *shared);
/* The database is shared by many hosts (only the admin tool migrates it). */
bool sql_shared(struct sql_db *db);
/* Remove what the engine keeps beside a store that failed to be made (SQLite: -wal, -shm). */
void sql_remove(const char *driver, const char *target);

#endif

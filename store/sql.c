/*
 * sql.c - the engine-independent half of sql.h: finds a driver by name
 * and forwards each call through its table (Dovecot's sql-api.c). One
 * direct call and one indirect call per operation; statements are
 * prepared once and cached above (db.c), so nothing here allocates.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/sql.h"

static const struct sql_driver *const sql_drivers[] = {
	&sql_driver_sqlite,
	&sql_driver_pgsql,
};

static const struct sql_driver *sql_driver_find(const char *name)
{
	for (size_t i = 0; i < sizeof sql_drivers / sizeof sql_drivers[0]; i++)
		if (strcmp(sql_drivers[i]->name, name) == 0)
			return sql_drivers[i];
	return NULL;
}

int sql_open(const char *driver, const char *target, bool create, int busy_ms,
	     int connect_ms, int request_ms, struct sql_db **out)
{
	const struct sql_driver *d = sql_driver_find(driver);

	*out = NULL;
	if (!d)
		return -ENOTSUP;
	return d->open(target, create, busy_ms, connect_ms, request_ms, out);
}

void sql_close(struct sql_db *db)
{
	if (db)
		db->drv->close(db);
}

const char *sql_error(struct sql_db *db) { return db->drv->error(db); }
int sql_exec(struct sql_db *db, const char *sql) { return db->drv->exec(db, sql); }

int64_t sql_down_since(struct sql_db *db, char *why, size_t cap)
{
	if (why && cap)
		why[0] = '\0';
	return db->drv->down_since ? db->drv->down_since(db, why, cap) : 0;
}
int64_t sql_changes(struct sql_db *db) { return db->drv->changes(db); }
int sql_meta_get(struct sql_db *db, enum sql_meta m, int64_t *v) { return db->drv->meta_get(db, m, v); }
int sql_meta_set(struct sql_db *db, enum sql_meta m, int64_t v) { return db->drv->meta_set(db, m, v); }

int sql_prepare(struct sql_db *db, const char *sql, bool keep, struct sql_stmt **out)
{
	return db->drv->prepare(db, sql, keep, out);
}

int sql_bind_int64(struct sql_stmt *s, int i, int64_t v) { return s->db->drv->bind_int64(s, i, v); }
int sql_bind_text(struct sql_stmt *s, int i, const char *v) { return s->db->drv->bind_text(s, i, v); }
int sql_bind_null(struct sql_stmt *s, int i) { return s->db->drv->bind_null(s, i); }

int sql_bind_blob(struct sql_stmt *s, int i, const void *v, size_t len)
{
	return s->db->drv->bind_blob(s, i, v, len);
}

int sql_step(struct sql_stmt *s) { return s->db->drv->step(s); }
int64_t sql_column_int64(struct sql_stmt *s, int i) { return s->db->drv->column_int64(s, i); }
const char *sql_column_text(struct sql_stmt *s, int i) { return s->db->drv->column_text(s, i); }
const void *sql_column_blob(struct sql_stmt *s, int i) { return s->db->drv->column_blob(s, i); }
int sql_column_bytes(struct sql_stmt *s, int i) { return s->db->drv->column_bytes(s, i); }
bool sql_column_is_null(struct sql_stmt *s, int i) { return s->db->drv->column_is_null(s, i); }
void sql_reset(struct sql_stmt *s) { s->db->drv->reset(s); }
void sql_clear_bindings(struct sql_stmt *s) { s->db->drv->clear_bindings(s); }

void sql_finalize(struct sql_stmt *s)
{
	if (s)
		s->db->drv->finalize(s);
}

int sql_begin(struct sql_db *db, bool write) { return db->drv->begin(db, write); }
int sql_commit(struct sql_db *db) { return db->drv->commit(db); }
void sql_rollback(struct sql_db *db) { db->drv->rollback(db); }
bool sql_in_transaction(struct sql_db *db) { return db->drv->in_transaction(db); }
int sql_sync(struct sql_db *db) { return db->drv->sync(db); }

void sql_bulk(struct sql_db *db, bool on)
{
	if (db->drv->bulk)
		db->drv->bulk(db, on);
}

void sql_checkpoint(struct sql_db *db, int wait_ms)
{
	if (db->drv->checkpoint)
		db->drv->checkpoint(db, wait_ms);
}

int sql_watch_start(struct sql_db *db)
{
	return db->drv->watch_start ? db->drv->watch_start(db) : -ENOTSUP;
}

bool sql_watch_stamp(struct sql_db *db, uint8_t stamp[SQL_STAMP_BYTES])
{
	return db->drv->watch_stamp && db->drv->watch_stamp(db, stamp);
}

bool sql_watch_next(struct sql_db *db, const uint8_t before[SQL_STAMP_BYTES],
		    const uint8_t after[SQL_STAMP_BYTES])
{
	return db->drv->watch_next && db->drv->watch_next(before, after);
}

void sql_remove(const char *driver, const char *target)
{
	const struct sql_driver *d = sql_driver_find(driver);

	if (d && d->remove)
		d->remove(target);
}

int sql_target_check(const char *driver, const char *target, char *problem, size_t cap)
{
	const struct sql_driver *d = sql_driver_find(driver);

	if (!d) {
		snprintf(problem, cap, "unknown database driver '%s'", driver);
		return -ENOTSUP;
	}
	return d->check ? d->check(target, problem, cap) : 0;
}

const char *sql_migration(struct sql_db *db, int64_t from, const char *shared)
{
	const char *own = db->drv->migration ? db->drv->migration(from) : NULL;

	return own ? own : shared;
}

bool sql_shared(struct sql_db *db) { return db->drv->shared; }

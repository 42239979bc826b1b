/*
 * secret.c - secret versions and the keys that protect them: set (create
 * or rotate, with the expiry policy carried from version to version),
 * list, reveal, versions, rollback, destroy, rm, data-key rotation and
 * root-key replacement.
 *
 * A value is sealed into a heap buffer that holds only ciphertext, and
 * the plaintext it came from is never copied: the only plaintext this
 * file allocates is what reveal returns and what rollback re-seals, in
 * sodium_malloc memory. A destroyed version keeps its row (number,
 * length, dates) and loses its ciphertext for good.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

static int check_ref(const char *provider, const char *name)
{
	if (store_name_ok(provider, POLICY_NAME_PROVIDER) || store_name_ok(name, POLICY_NAME_SECRET))
		return -EINVAL;
	return 0;
}

/*
 * The expiry of a new version from exp and the secret's current version
 * (cur_expires, cur_ttl; cur_version 0 for a new secret): *expires and
 * the ttl to record with it.
 */
static int expiry_choose(const char *ref, const struct store_expiry *exp, int64_t now,
			 int64_t cur_version, int64_t cur_expires, int64_t cur_ttl,
			 int64_t *expires, int64_t *ttl)
{
	char when[32];

	*expires = 0;
	*ttl = 0;
	switch (exp ? exp->kind : STORE_EXPIRY_KEEP) {
	case STORE_EXPIRY_KEEP:
		if (cur_version == 0 || (cur_ttl == 0 && cur_expires == 0))
			return 0;
		if (cur_ttl > 0) {
			/* a duration starts again: the new value gets as long as the old one did */
			if (now > INT64_MAX - cur_ttl)
				return store_fail(-EINVAL, "expiry is out of range");
			*expires = now + cur_ttl;
			*ttl = cur_ttl;
			return 0;
		}
		/* a date stays that date; a passed one would make a new value born expired */
		if (cur_expires <= now) {
			policy_time_format(cur_expires, when, sizeof when);
			return store_fail(-EINVAL, "'%s' expired at %s and a rotation keeps that date: "
					  "give a new expiry", ref, when);
		}
		*expires = cur_expires;
		return 0;
	case STORE_EXPIRY_NEVER:
		return 0;
	case STORE_EXPIRY_AT:
		if (exp->value <= 0)
			return store_fail(-EINVAL, "expiry must be a positive time");
		*expires = exp->value;
		return 0;
	case STORE_EXPIRY_TTL:
		if (exp->value <= 0 || now > INT64_MAX - exp->value)
			return store_fail(-EINVAL, "expiry must be a positive duration");
		*expires = now + exp->value;
		*ttl = exp->value;
		return 0;
	}
	return store_fail(-EINVAL, "unknown expiry kind");
}

/*
 * Inside a transaction: add the next version of secret sid (created here
 * when sid is 0) holding value, with its expiry chosen from exp. The
 * caller appends the audit event.
 */
static int version_add(struct store *st, const char *provider, const char *name, int64_t prov,
		       int64_t sid, const uint8_t *value, size_t len, const struct store_expiry *exp,
		       int64_t *version_out, int64_t *expires_out)
{
	char ref[2 * POLICY_NAME_MAX + 2];
	int64_t version = 1, key_id, now = store_now(), cur_expires = 0, cur_ttl = 0;
	int64_t expires, ttl;
	uint8_t *ct = NULL;
	size_t ctlen;
	struct sql_stmt *s;
	int rc;

	snprintf(ref, sizeof ref, "%s/%s", provider, name);
	if (sid) {
		s = store_stmt(st, "SELECT version, expires, ttl FROM versions WHERE secret_id = ?1"
				   " ORDER BY version DESC LIMIT 1");
		if (!s)
			return -EIO;
		sql_bind_int64(s, 1, sid);
		rc = sql_step(s);
		if (rc == SQL_ROW) {
			version = sql_column_int64(s, 0) + 1;
			cur_expires = sql_column_int64(s, 1);
			cur_ttl = sql_column_int64(s, 2);
		}
		sql_reset(s);
		if (rc != SQL_ROW && rc != SQL_DONE)
			return store_fail_db(st, rc, "cannot read the store");
	}
	if ((rc = expiry_choose(ref, exp, now, version - 1, cur_expires, cur_ttl, &expires, &ttl)))
		return rc;
	if (!sid) {
		s = store_stmt(st, "INSERT INTO secrets(provider_id, name, created) VALUES (?1, ?2, ?3)"
				   " RETURNING id");
		if (!s)
			return -EIO;
		sql_bind_int64(s, 1, prov);
		sql_bind_text(s, 2, name);
		sql_bind_int64(s, 3, now);
		if ((rc = store_insert_id(st, s, "cannot write the store", &sid)))
			return rc;
	}
	if ((rc = store_data_key_current(st, &key_id)))
		return rc;
	if ((rc = store_value_seal(st, st->ws_name, provider, name, version, key_id, value, len,
				   &ct, &ctlen)))
		return rc;
	s = store_stmt(st, "INSERT INTO versions(secret_id, version, key_id, ct, length, created, expires, ttl)"
			   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
	if (!s) {
		free(ct);
		return -EIO;
	}
	sql_bind_int64(s, 1, sid);
	sql_bind_int64(s, 2, version);
	sql_bind_int64(s, 3, key_id);
	sql_bind_blob(s, 4, ct, (int)ctlen);
	sql_bind_int64(s, 5, (int64_t)len);
	sql_bind_int64(s, 6, now);
	sql_bind_int64(s, 7, expires);
	sql_bind_int64(s, 8, ttl);
	rc = store_step_done(st, s, "cannot write the store");
	free(ct);
	if (!rc) {
		*version_out = version;
		*expires_out = expires;
	}
	return rc;
}

int store_secret_set_with(struct store *st, const char *provider, const char *name,
			  const uint8_t *value, size_t len, const struct store_expiry *exp,
			  int64_t *version_out, int64_t *expires_out)
{
	char ref[2 * POLICY_NAME_MAX + 2];
	int64_t prov, sid = 0, version = 0, expires = 0;
	struct store_event ev;
	struct sql_stmt *s;
	int rc;

	if ((rc = check_ref(provider, name)))
		return rc;
	if (len > st->cfg.max_value)
		return store_fail(-EFBIG, "value is larger than the limit of %zu bytes", st->cfg.max_value);
	snprintf(ref, sizeof ref, "%s/%s", provider, name);
	if ((rc = store_tx_start(st)))
		return rc;
	if ((rc = store_provider_id(st, provider, &prov)))
		return store_tx_end(st, rc);
	s = store_stmt(st, "SELECT id FROM secrets WHERE provider_id = ?1 AND name = ?2");
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_int64(s, 1, prov);
	sql_bind_text(s, 2, name);
	rc = sql_step(s);
	if (rc == SQL_ROW)
		sid = sql_column_int64(s, 0);
	sql_reset(s);
	if (rc != SQL_ROW && rc != SQL_DONE)
		return store_tx_end(st, store_fail_db(st, rc, "cannot read the store"));
	rc = version_add(st, provider, name, prov, sid, value, len, exp, &version, &expires);
	if (!rc) {
		store_event_init(st, &ev, version == 1 ? "create" : "rotate");
		ev.secret = ref;
		ev.version = version;
		store_fingerprint(st, value, len, ev.fingerprint);
		ev.has_fingerprint = true;
		rc = store_audit_append(st, &ev);
	}
	if (!rc && version_out)
		*version_out = version;
	if (!rc && expires_out)
		*expires_out = expires;
	return store_tx_end(st, rc);
}

int store_secret_set(struct store *st, const char *provider, const char *name,
		     const uint8_t *value, size_t len, int64_t expires, int64_t *version_out)
{
	struct store_expiry exp = { STORE_EXPIRY_KEEP, 0 };

	/* past dates are the caller's business here (tests make expired versions) */
	if (expires < 0)
		return store_fail(-EINVAL, "expiry must not be negative");
	if (expires > 0) {
		exp.kind = STORE_EXPIRY_AT;
		exp.value = expires;
	}
	return store_secret_set_with(st, provider, name, value, len, &exp, version_out, NULL);
}

static int secret_row(void *arg, struct sql_stmt *s)
{
	struct walk *w = arg;
	struct store_secret_row row = {
		.provider = sql_column_text(s, 0),
		.name = sql_column_text(s, 1),
		.version = sql_column_int64(s, 2),
		.versions = sql_column_int64(s, 3),
		.length = (size_t)sql_column_int64(s, 4),
		.created = sql_column_int64(s, 5),
		.expires = sql_column_int64(s, 6),
		.canary = (int)sql_column_int64(s, 7) != 0,
	};
	return ((store_secret_fn)w->fn)(w->ctx, &row);
}

int store_secret_list(struct store *st, const char *provider, store_secret_fn fn, void *ctx)
{
	struct walk w = { (void *)fn, ctx };
	int64_t prov = 0;
	int rc;

	if (provider && store_name_ok(provider, POLICY_NAME_PROVIDER))
		return -EINVAL;
	store_lock(st);
	rc = provider ? store_provider_id(st, provider, &prov) : 0;
	if (!rc)
		rc = store_walk(st, "SELECT p.name, s.name, v.version, (SELECT count(*) FROM versions c"
				" WHERE c.secret_id = s.id), v.length, v.created, v.expires, s.canary"
				" FROM secrets s JOIN providers p ON p.id = s.provider_id"
				" JOIN versions v ON v.secret_id = s.id AND v.version ="
				"  (SELECT max(version) FROM versions m WHERE m.secret_id = s.id)"
				" WHERE p.ws_id = ?1 AND (?2 = 0 OR p.id = ?2) ORDER BY p.name, s.name",
				st->ws_id, prov, secret_row, &w);
	store_unlock(st);
	return rc;
}

/* The one message for a version whose ciphertext `secret destroy` wiped. */
static int destroyed_fail(const char *ref, int64_t version, int64_t when)
{
	char t[32];

	policy_time_format(when, t, sizeof t);
	return store_fail(-ENOENT, "version %lld of '%s' was destroyed at %s", (long long)version, ref, t);
}

int store_secret_reveal(struct store *st, const char *provider, const char *name,
			int64_t version, uint8_t **value, size_t *len)
{
	char ref[2 * POLICY_NAME_MAX + 2];
	int64_t prov, sid, v, key_id;
	struct store_event ev;
	struct sql_stmt *s;
	uint8_t *out = NULL;
	size_t outlen = 0;
	int rc;

	*value = NULL;
	*len = 0;
	if ((rc = check_ref(provider, name)))
		return rc;
	if (version < 0)
		return store_fail(-EINVAL, "version must be a positive number");
	snprintf(ref, sizeof ref, "%s/%s", provider, name);
	if ((rc = store_tx_start(st)))
		return rc;
	if ((rc = store_secret_id(st, provider, name, &prov, &sid)))
		return store_tx_end(st, rc);
	s = store_stmt(st, "SELECT version, key_id, ct, destroyed FROM versions WHERE secret_id = ?1"
			   " AND (?2 = 0 OR version = ?2) ORDER BY version DESC LIMIT 1");
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_int64(s, 1, sid);
	sql_bind_int64(s, 2, version);
	rc = sql_step(s);
	if (rc != SQL_ROW) {
		sql_reset(s);
		return store_tx_end(st, rc == SQL_DONE ?
			      store_fail(-ENOENT, "no version %lld of '%s'", (long long)version, ref) :
			      store_fail_db(st, rc, "cannot read the store"));
	}
	v = sql_column_int64(s, 0);
	key_id = sql_column_int64(s, 1);
	if (sql_column_int64(s, 3)) {
		rc = destroyed_fail(ref, v, sql_column_int64(s, 3));
		sql_reset(s);
		return store_tx_end(st, rc);
	}
	rc = store_value_open(st, st->ws_name, provider, name, v, key_id,
			      sql_column_blob(s, 2), (size_t)sql_column_bytes(s, 2),
			      &out, &outlen);
	sql_reset(s);
	if (rc)
		return store_tx_end(st, rc);
	store_event_init(st, &ev, "reveal");
	ev.secret = ref;
	ev.version = v;
	ev.uid = (int64_t)getuid();
	ev.gid = (int64_t)getgid();
	ev.pid = (int64_t)getpid();
	store_fingerprint(st, out, outlen, ev.fingerprint);
	ev.has_fingerprint = true;
	rc = store_audit_append(st, &ev);
	rc = store_tx_end(st, rc);
	if (rc) {
		rc = store_fail_audit(rc);
		/* no audit record, no value */
		store_value_free(out, outlen);
		return rc;
	}
	*value = out;
	*len = outlen;
	return 0;
}

int store_secret_rm(struct store *st, const char *provider, const char *name)
{
	char ref[2 * POLICY_NAME_MAX + 2];
	int64_t prov, sid;
	int rc;

	if ((rc = check_ref(provider, name)))
		return rc;
	snprintf(ref, sizeof ref, "%s/%s", provider, name);
	if ((rc = store_tx_start(st)))
		return rc;
	if ((rc = store_secret_id(st, provider, name, &prov, &sid)))
		return store_tx_end(st, rc);
	return store_tx_end(st, store_delete_noted(st, "DELETE FROM secrets WHERE id = ?1", sid,
						   "rm", NULL, ref));
}

/* ---- versions ---------------------------------------------------------- */

static int version_row(void *arg, struct sql_stmt *s)
{
	struct walk *w = arg;
	struct store_version_row row = {
		.version = sql_column_int64(s, 0),
		.length = (size_t)sql_column_int64(s, 1),
		.created = sql_column_int64(s, 2),
		.expires = sql_column_int64(s, 3),
		.ttl = sql_column_int64(s, 4),
		.destroyed = sql_column_int64(s, 5),
		.current = (int)sql_column_int64(s, 6) != 0,
	};
	return ((store_version_fn)w->fn)(w->ctx, &row);
}

int store_secret_versions(struct store *st, const char *provider, const char *name,
			  store_version_fn fn, void *ctx)
{
	struct walk w = { (void *)fn, ctx };
	int64_t prov, sid;
	int rc;

	if ((rc = check_ref(provider, name)))
		return rc;
	store_lock(st);
	rc = store_secret_id(st, provider, name, &prov, &sid);
	if (!rc)
		rc = store_walk(st, "SELECT version, length, created, expires, ttl, destroyed,"
				" version = (SELECT max(version) FROM versions m WHERE m.secret_id = ?1)"
				" FROM versions WHERE secret_id = ?1 AND ?2 = ?2 ORDER BY version",
				sid, 0, version_row, &w);
	store_unlock(st);
	return rc;
}

/*
 * Inside a transaction: the row of version `version` of secret sid, and
 * whether it is the current one. -ENOENT when there is no such version.
 */
static int version_find(struct store *st, const char *ref, int64_t sid, int64_t version,
			int64_t *row_id, int64_t *destroyed, bool *current)
{
	struct sql_stmt *s;
	int rc;

	s = store_stmt(st, "SELECT id, destroyed, version = (SELECT max(version) FROM versions m"
			   " WHERE m.secret_id = ?1) FROM versions WHERE secret_id = ?1 AND version = ?2");
	if (!s)
		return -EIO;
	sql_bind_int64(s, 1, sid);
	sql_bind_int64(s, 2, version);
	rc = sql_step(s);
	if (rc == SQL_ROW) {
		*row_id = sql_column_int64(s, 0);
		*destroyed = sql_column_int64(s, 1);
		*current = (int)sql_column_int64(s, 2) != 0;
	}
	sql_reset(s);
	if (rc == SQL_ROW)
		return 0;
	if (rc == SQL_DONE)
		return store_fail(-ENOENT, "no version %lld of '%s'", (long long)version, ref);
	return store_fail_db(st, rc, "cannot read the store");
}

/*
 * The start of a change to one old version (rollback, destroy): checks the
 * reference, opens the write transaction and finds the version, which must
 * not be destroyed. On success the transaction is open and the caller ends
 * it; on failure it is already ended.
 */
static int old_version_begin(struct store *st, const char *provider, const char *name,
			     int64_t version, char *ref, size_t ref_size, int64_t *prov,
			     int64_t *sid, int64_t *row_id, bool *current)
{
	int64_t destroyed = 0;
	int rc;

	if ((rc = check_ref(provider, name)))
		return rc;
	if (version <= 0)
		return store_fail(-EINVAL, "version must be a positive number");
	snprintf(ref, ref_size, "%s/%s", provider, name);
	if ((rc = store_tx_start(st)))
		return rc;
	if ((rc = store_secret_id(st, provider, name, prov, sid)) ||
	    (rc = version_find(st, ref, *sid, version, row_id, &destroyed, current)))
		return store_tx_end(st, rc);
	if (destroyed)
		return store_tx_end(st, destroyed_fail(ref, version, destroyed));
	return 0;
}

int store_secret_rollback(struct store *st, const char *provider, const char *name,
			  int64_t version, int64_t *version_out)
{
	char ref[2 * POLICY_NAME_MAX + 2], reason[64];
	int64_t prov, sid, row_id, newv = 0, expires;
	struct store_event ev;
	struct store_expiry keep = { STORE_EXPIRY_KEEP, 0 };
	struct sql_stmt *s;
	uint8_t *val = NULL;
	size_t len = 0;
	bool current;
	int rc;

	if ((rc = old_version_begin(st, provider, name, version, ref, sizeof ref, &prov, &sid,
				    &row_id, &current)))
		return rc;
	if (current)
		return store_tx_end(st, store_fail(-EINVAL, "version %lld is already the current version of '%s'",
						   (long long)version, ref));
	s = store_stmt(st, "SELECT key_id, ct FROM versions WHERE id = ?1");
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_int64(s, 1, row_id);
	rc = sql_step(s);
	if (rc != SQL_ROW) {
		sql_reset(s);
		return store_tx_end(st, store_fail_db(st, rc, "cannot read the store"));
	}
	/* the old value exists only in sodium_malloc memory, and only until it is sealed again */
	rc = store_value_open(st, st->ws_name, provider, name, version, sql_column_int64(s, 0),
			      sql_column_blob(s, 1), (size_t)sql_column_bytes(s, 1), &val, &len);
	sql_reset(s);
	if (rc)
		return store_tx_end(st, rc);
	rc = version_add(st, provider, name, prov, sid, val, len, &keep, &newv, &expires);
	if (!rc) {
		snprintf(reason, sizeof reason, "value of version %lld", (long long)version);
		store_event_init(st, &ev, "rollback");
		ev.secret = ref;
		ev.version = newv;
		ev.reason = reason;
		store_fingerprint(st, val, len, ev.fingerprint);
		ev.has_fingerprint = true;
		rc = store_audit_append(st, &ev);
	}
	store_value_free(val, len);
	if (!rc && version_out)
		*version_out = newv;
	return store_tx_end(st, rc);
}

int store_secret_destroy(struct store *st, const char *provider, const char *name,
			 int64_t version)
{
	char ref[2 * POLICY_NAME_MAX + 2];
	int64_t prov, sid, row_id, now;
	struct store_event ev;
	struct sql_stmt *s;
	bool current;
	int rc;

	if ((rc = old_version_begin(st, provider, name, version, ref, sizeof ref, &prov, &sid,
				    &row_id, &current)))
		return rc;
	if (current)
		return store_tx_end(st, store_fail(-EBUSY, "version %lld is the current version of '%s': "
						   "set a new value or roll back first", (long long)version, ref));
	now = store_now();
	/*
	 * Overwrite in place first, then shrink: the cell is rewritten with
	 * zeros before it is freed, and secure_delete zeroes what is freed.
	 * ct stays NOT NULL: an empty blob, which no sealed value can be.
	 */
	{
		/* zeros of the same length, bound (zeroblob() is SQLite's alone) */
		int64_t n = 0;
		uint8_t *zeros;
		s = store_stmt(st, "SELECT length(ct) FROM versions WHERE id = ?1");
		if (!s)
			return store_tx_end(st, -EIO);
		sql_bind_int64(s, 1, row_id);
		rc = sql_step(s);
		if (rc == SQL_ROW)
			n = sql_column_int64(s, 0);
		sql_reset(s);
		if (rc != SQL_ROW)
			return store_tx_end(st, store_fail_db(st, rc, "cannot read the store"));
		zeros = calloc(1, n > 0 ? (size_t)n : 1);
		if (!zeros)
			return store_tx_end(st, store_fail(-ENOMEM, "out of memory"));
		s = store_stmt(st, "UPDATE versions SET ct = ?2 WHERE id = ?1");
		if (!s) {
			free(zeros);
			return store_tx_end(st, -EIO);
		}
		sql_bind_int64(s, 1, row_id);
		sql_bind_blob(s, 2, zeros, (size_t)n);
		rc = store_step_done(st, s, "cannot write the store");
		free(zeros);
		if (rc)
			return store_tx_end(st, rc);
	}
	s = store_stmt(st, "UPDATE versions SET ct = ?3, destroyed = ?2 WHERE id = ?1");
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_int64(s, 1, row_id);
	sql_bind_int64(s, 2, now > 0 ? now : 1);
	sql_bind_blob(s, 3, "", 0);
	if ((rc = store_step_done(st, s, "cannot write the store")))
		return store_tx_end(st, rc);
	store_event_init(st, &ev, "destroy");
	ev.secret = ref;
	ev.version = version;
	rc = store_tx_end(st, store_audit_append(st, &ev));
	if (rc)
		return rc;
	/*
	 * The old page images may still sit in the engine's log (SQLite's
	 * WAL): fold it into the store and cut it to zero bytes. A reader
	 * that holds an old snapshot (the mount mid-read) can stop it; the
	 * next checkpoint then finishes the job. Best effort: the change is
	 * committed, so wait for readers one second, not the writers' ten.
	 */
	store_lock(st);
	if (!st->batch && !st->gc_open)
		sql_checkpoint(st->db, 1000);
	store_unlock(st);
	return 0;
}

/* ---- keys -------------------------------------------------------------- */

/* Re-encrypt every version of every workspace under data key `key_id`. */
static int rewrap_all(struct store *st, int64_t key_id, int64_t *count)
{
	struct sql_stmt *s = NULL, *u;
	uint8_t *val, *ct;
	size_t len, ctlen;
	int rc;

	*count = 0;
	rc = sql_prepare(st->db,
				"SELECT v.id, w.name, p.name, s.name, v.version, v.key_id, v.ct"
				" FROM versions v JOIN secrets s ON s.id = v.secret_id"
				" JOIN providers p ON p.id = s.provider_id JOIN workspaces w ON w.id = p.ws_id"
				" WHERE v.key_id != ?1 AND v.destroyed = 0", false, &s);
	if (rc)
		return store_fail_db(st, rc, "cannot read the store");
	sql_bind_int64(s, 1, key_id);
	while ((rc = sql_step(s)) == SQL_ROW) {
		const char *ws = sql_column_text(s, 1);
		const char *prov = sql_column_text(s, 2);
		const char *name = sql_column_text(s, 3);
		int64_t version = sql_column_int64(s, 4);

		rc = store_value_open(st, ws, prov, name, version, sql_column_int64(s, 5),
				      sql_column_blob(s, 6), (size_t)sql_column_bytes(s, 6),
				      &val, &len);
		if (rc)
			goto out;
		rc = store_value_seal(st, ws, prov, name, version, key_id, val, len, &ct, &ctlen);
		store_value_free(val, len);
		if (rc)
			goto out;
		u = store_stmt(st, "UPDATE versions SET key_id = ?2, ct = ?3 WHERE id = ?1");
		if (!u) {
			free(ct);
			rc = -EIO;
			goto out;
		}
		sql_bind_int64(u, 1, sql_column_int64(s, 0));
		sql_bind_int64(u, 2, key_id);
		sql_bind_blob(u, 3, ct, (int)ctlen);
		rc = store_step_done(st, u, "cannot write the store");
		free(ct);
		if (rc)
			goto out;
		(*count)++;
	}
	rc = rc == SQL_DONE ? 0 : store_fail_db(st, rc, "cannot read the store");
out:
	sql_finalize(s);
	return rc;
}

int store_key_rotate(struct store *st, bool rewrap, int64_t *key_id_out, int64_t *rewrapped_out)
{
	struct store_event ev;
	char reason[64];
	int64_t id, n = 0;
	int rc;

	if ((rc = store_tx_start(st)))
		return rc;
	rc = store_data_key_new(st, &id);
	if (!rc && rewrap)
		rc = rewrap_all(st, id, &n);
	if (!rc) {
		snprintf(reason, sizeof reason, "data key %lld%s", (long long)id,
			 rewrap ? ", re-encrypted" : "");
		store_event_init(st, &ev, "key-rotate");
		ev.reason = reason;
		ev.version = n;
		rc = store_audit_append(st, &ev);
	}
	rc = store_tx_end(st, rc);
	if (!rc) {
		if (key_id_out)
			*key_id_out = id;
		if (rewrapped_out)
			*rewrapped_out = n;
	}
	return rc;
}

int store_secret_canary(struct store *st, const char *provider, const char *name, bool on)
{
	char ref[2 * POLICY_NAME_MAX + 2];
	int64_t prov, sid;
	struct sql_stmt *s;
	int rc;

	if (store_name_ok(provider, POLICY_NAME_PROVIDER) || store_name_ok(name, POLICY_NAME_SECRET))
		return -EINVAL;
	snprintf(ref, sizeof ref, "%s/%s", provider, name);
	if ((rc = store_tx_start(st)))
		return rc;
	if ((rc = store_secret_id(st, provider, name, &prov, &sid)))
		return store_tx_end(st, rc);
	s = store_stmt(st, "UPDATE secrets SET canary = ?2 WHERE id = ?1");
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_int64(s, 1, sid);
	sql_bind_int64(s, 2, on ? 1 : 0);
	rc = store_step_done(st, s, "cannot write the store");
	if (!rc)
		rc = store_note(st, "canary", NULL, ref, on ? "on" : "off");
	return store_tx_end(st, rc);
}

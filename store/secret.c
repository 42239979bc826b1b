/*
 * secret.c - secret versions and the keys that protect them: set (create
 * or rotate), list, reveal, rm, data-key rotation and root-key
 * replacement.
 *
 * A value is sealed into a heap buffer that holds only ciphertext, and
 * the plaintext it came from is never copied: the only plaintext this
 * file allocates is what reveal returns, in sodium_malloc memory.
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

int store_secret_set(struct store *st, const char *provider, const char *name,
		     const uint8_t *value, size_t len, int64_t expires, int64_t *version_out)
{
	char ref[2 * POLICY_NAME_MAX + 2];
	int64_t prov, sid = 0, version = 1, key_id, now;
	struct store_event ev;
	uint8_t *ct = NULL;
	size_t ctlen;
	sqlite3_stmt *s;
	int rc;

	if ((rc = check_ref(provider, name)))
		return rc;
	if (len > st->cfg.max_value)
		return store_fail(-EFBIG, "value is larger than the limit of %zu bytes", st->cfg.max_value);
	if (expires < 0)
		return store_fail(-EINVAL, "expiry must not be negative");
	snprintf(ref, sizeof ref, "%s/%s", provider, name);
	if ((rc = store_tx_start(st)))
		return rc;
	now = store_now();
	if ((rc = store_provider_id(st, provider, &prov)))
		return store_tx_end(st, rc);
	s = store_stmt(st, "SELECT s.id, (SELECT max(version) FROM versions v WHERE v.secret_id = s.id)"
			   " FROM secrets s WHERE s.provider_id = ?1 AND s.name = ?2");
	if (!s)
		return store_tx_end(st, -EIO);
	sqlite3_bind_int64(s, 1, prov);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		sid = sqlite3_column_int64(s, 0);
		version = sqlite3_column_int64(s, 1) + 1;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_tx_end(st, store_fail_db(st, rc, "cannot read the store"));
	if (!sid) {
		s = store_stmt(st, "INSERT INTO secrets(provider_id, name, created) VALUES (?1, ?2, ?3)");
		if (!s)
			return store_tx_end(st, -EIO);
		sqlite3_bind_int64(s, 1, prov);
		sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, now);
		if ((rc = store_step_done(st, s, "cannot write the store")))
			return store_tx_end(st, rc);
		sid = sqlite3_last_insert_rowid(st->db);
	}
	if ((rc = store_data_key_current(st, &key_id)))
		return store_tx_end(st, rc);
	if ((rc = store_value_seal(st, st->ws_name, provider, name, version, key_id, value, len,
				   &ct, &ctlen)))
		return store_tx_end(st, rc);
	s = store_stmt(st, "INSERT INTO versions(secret_id, version, key_id, ct, length, created, expires)"
			   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
	if (!s) {
		free(ct);
		return store_tx_end(st, -EIO);
	}
	sqlite3_bind_int64(s, 1, sid);
	sqlite3_bind_int64(s, 2, version);
	sqlite3_bind_int64(s, 3, key_id);
	sqlite3_bind_blob(s, 4, ct, (int)ctlen, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, (int64_t)len);
	sqlite3_bind_int64(s, 6, now);
	sqlite3_bind_int64(s, 7, expires);
	rc = store_step_done(st, s, "cannot write the store");
	free(ct);
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
	return store_tx_end(st, rc);
}

static int secret_row(void *arg, sqlite3_stmt *s)
{
	struct walk *w = arg;
	struct store_secret_row row = {
		.provider = (const char *)sqlite3_column_text(s, 0),
		.name = (const char *)sqlite3_column_text(s, 1),
		.version = sqlite3_column_int64(s, 2),
		.versions = sqlite3_column_int64(s, 3),
		.length = (size_t)sqlite3_column_int64(s, 4),
		.created = sqlite3_column_int64(s, 5),
		.expires = sqlite3_column_int64(s, 6),
		.canary = sqlite3_column_int(s, 7) != 0,
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

int store_secret_reveal(struct store *st, const char *provider, const char *name,
			int64_t version, uint8_t **value, size_t *len)
{
	char ref[2 * POLICY_NAME_MAX + 2];
	int64_t prov, sid, v, key_id;
	struct store_event ev;
	sqlite3_stmt *s;
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
	s = store_stmt(st, "SELECT version, key_id, ct FROM versions WHERE secret_id = ?1"
			   " AND (?2 = 0 OR version = ?2) ORDER BY version DESC LIMIT 1");
	if (!s)
		return store_tx_end(st, -EIO);
	sqlite3_bind_int64(s, 1, sid);
	sqlite3_bind_int64(s, 2, version);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return store_tx_end(st, rc == SQLITE_DONE ?
			      store_fail(-ENOENT, "no version %lld of '%s'", (long long)version, ref) :
			      store_fail_db(st, rc, "cannot read the store"));
	}
	v = sqlite3_column_int64(s, 0);
	key_id = sqlite3_column_int64(s, 1);
	rc = store_value_open(st, st->ws_name, provider, name, v, key_id,
			      sqlite3_column_blob(s, 2), (size_t)sqlite3_column_bytes(s, 2),
			      &out, &outlen);
	sqlite3_reset(s);
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

/* ---- keys -------------------------------------------------------------- */

/* Re-encrypt every version of every workspace under data key `key_id`. */
static int rewrap_all(struct store *st, int64_t key_id, int64_t *count)
{
	sqlite3_stmt *s = NULL, *u;
	uint8_t *val, *ct;
	size_t len, ctlen;
	int rc;

	*count = 0;
	rc = sqlite3_prepare_v2(st->db,
				"SELECT v.id, w.name, p.name, s.name, v.version, v.key_id, v.ct"
				" FROM versions v JOIN secrets s ON s.id = v.secret_id"
				" JOIN providers p ON p.id = s.provider_id JOIN workspaces w ON w.id = p.ws_id"
				" WHERE v.key_id != ?1", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return store_fail_db(st, rc, "cannot read the store");
	sqlite3_bind_int64(s, 1, key_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *ws = (const char *)sqlite3_column_text(s, 1);
		const char *prov = (const char *)sqlite3_column_text(s, 2);
		const char *name = (const char *)sqlite3_column_text(s, 3);
		int64_t version = sqlite3_column_int64(s, 4);

		rc = store_value_open(st, ws, prov, name, version, sqlite3_column_int64(s, 5),
				      sqlite3_column_blob(s, 6), (size_t)sqlite3_column_bytes(s, 6),
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
		sqlite3_bind_int64(u, 1, sqlite3_column_int64(s, 0));
		sqlite3_bind_int64(u, 2, key_id);
		sqlite3_bind_blob(u, 3, ct, (int)ctlen, SQLITE_STATIC);
		rc = store_step_done(st, u, "cannot write the store");
		free(ct);
		if (rc)
			goto out;
		(*count)++;
	}
	rc = rc == SQLITE_DONE ? 0 : store_fail_db(st, rc, "cannot read the store");
out:
	sqlite3_finalize(s);
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
	sqlite3_stmt *s;
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
	sqlite3_bind_int64(s, 1, sid);
	sqlite3_bind_int(s, 2, on ? 1 : 0);
	rc = store_step_done(st, s, "cannot write the store");
	if (!rc)
		rc = store_note(st, "canary", NULL, ref, on ? "on" : "off");
	return store_tx_end(st, rc);
}

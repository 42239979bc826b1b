/*
 * resolve.c - what the mount asks the store: the facts for one decision,
 * the candidate secrets of an agent, and the all-or-nothing resolve of an
 * allowed open.
 *
 * store_resolve() is the fail-closed step: inside one write transaction
 * it re-reads the facts and decides again (so a revoke committed after
 * the caller's first look still wins), decrypts, counts the use and
 * appends the `resolve` event; the value is handed out only after that
 * transaction commits. With synchronous=NORMAL a committed WAL frame
 * survives kill -9 of the daemon; with durability=power it is fsynced.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

static int facts_step(struct store *st, sqlite3_stmt *s, bool *found)
{
	int rc = sqlite3_step(s);

	*found = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return 0;
	sqlite3_reset(s);
	return store_fail_db(st, rc, "cannot read the store");
}

int store_facts_load_locked(struct store *st, const char *agent, const char *provider,
			    const char *name, struct store_facts *f)
{
	struct policy_facts *p = &f->p;
	sqlite3_stmt *s;
	int64_t prov_id = 0;
	bool found;
	int rc;

	memset(f, 0, sizeof *f);
	snprintf(f->agent_name, sizeof f->agent_name, "%s", agent ? agent : "");
	snprintf(f->provider, sizeof f->provider, "%s", provider ? provider : "");
	snprintf(f->name, sizeof f->name, "%s", name ? name : "");

	if (policy_name_check(f->agent_name, POLICY_NAME_AGENT) == 0) {
		s = store_stmt(st, "SELECT id, enabled, uid, gid, exe, exe_sha256, rate_max, rate_window,"
				   " cgroup FROM agents WHERE ws_id = ?1 AND name = ?2");
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, st->ws_id);
		sqlite3_bind_text(s, 2, f->agent_name, -1, SQLITE_STATIC);
		if ((rc = facts_step(st, s, &found)))
			return rc;
		if (found) {
			p->agent.exists = true;
			f->agent_id = sqlite3_column_int64(s, 0);
			p->agent.enabled = sqlite3_column_int(s, 1) != 0;
			p->agent.uid = (uid_t)sqlite3_column_int64(s, 2);
			p->agent.has_gid = sqlite3_column_type(s, 3) != SQLITE_NULL;
			p->agent.gid = (gid_t)sqlite3_column_int64(s, 3);
			if (sqlite3_column_type(s, 4) != SQLITE_NULL) {
				snprintf(f->exe, sizeof f->exe, "%s", sqlite3_column_text(s, 4));
				p->agent.exe = f->exe;
			}
			if (sqlite3_column_bytes(s, 5) == POLICY_SHA256_BYTES) {
				p->agent.has_exe_sha256 = true;
				memcpy(p->agent.exe_sha256, sqlite3_column_blob(s, 5), POLICY_SHA256_BYTES);
			}
			p->agent.rate_max = sqlite3_column_int64(s, 6);
			p->agent.rate_window = sqlite3_column_int64(s, 7);
			if (sqlite3_column_type(s, 8) != SQLITE_NULL) {
				snprintf(f->cgroup, sizeof f->cgroup, "%s", sqlite3_column_text(s, 8));
				p->agent.cgroup = f->cgroup;
			}
		}
		sqlite3_reset(s);
	}
	if (policy_name_check(f->provider, POLICY_NAME_PROVIDER) ||
	    policy_name_check(f->name, POLICY_NAME_SECRET))
		return 0;

	s = store_stmt(st, "SELECT s.id, p.id, v.id, v.version, v.expires, s.canary FROM secrets s"
			   " JOIN providers p ON p.id = s.provider_id"
			   " JOIN versions v ON v.secret_id = s.id"
			   " WHERE p.ws_id = ?1 AND p.name = ?2 AND s.name = ?3"
			   " ORDER BY v.version DESC LIMIT 1");
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, st->ws_id);
	sqlite3_bind_text(s, 2, f->provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, f->name, -1, SQLITE_STATIC);
	if ((rc = facts_step(st, s, &found)))
		return rc;
	if (found) {
		p->secret.exists = true;
		f->secret_id = sqlite3_column_int64(s, 0);
		prov_id = sqlite3_column_int64(s, 1);
		f->version_id = sqlite3_column_int64(s, 2);
		p->secret.version = sqlite3_column_int64(s, 3);
		p->secret.expires = sqlite3_column_int64(s, 4);
		p->secret.canary = sqlite3_column_int(s, 5) != 0;
	}
	sqlite3_reset(s);
	if (!p->agent.exists || !p->secret.exists)
		return 0;

	s = store_stmt(st, "SELECT 1 FROM assignments a JOIN attachments t ON t.project_id = a.project_id"
			   " WHERE a.agent_id = ?1 AND t.provider_id = ?2"
			   " AND (t.secret_id IS NULL OR t.secret_id = ?3) LIMIT 1");
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, f->agent_id);
	sqlite3_bind_int64(s, 2, prov_id);
	sqlite3_bind_int64(s, 3, f->secret_id);
	if ((rc = facts_step(st, s, &found)))
		return rc;
	p->secret.candidate = found;
	sqlite3_reset(s);

	s = store_stmt(st, "SELECT id, revoked, expires, max_uses, uses, pid, pid_start FROM grants"
			   " WHERE agent_id = ?1 AND secret_id = ?2");
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, f->agent_id);
	sqlite3_bind_int64(s, 2, f->secret_id);
	if ((rc = facts_step(st, s, &found)))
		return rc;
	if (found) {
		p->grant.exists = true;
		f->grant_id = sqlite3_column_int64(s, 0);
		p->grant.revoked = sqlite3_column_int64(s, 1) != 0;
		p->grant.expires = sqlite3_column_int64(s, 2);
		p->grant.max_uses = sqlite3_column_int64(s, 3);
		p->grant.uses = sqlite3_column_int64(s, 4);
		p->grant.pid = (pid_t)sqlite3_column_int64(s, 5);
		f->grant_pid_start = (uint64_t)sqlite3_column_int64(s, 6);
		if (p->grant.pid)
			p->grant.task_ended = !store_task_alive(p->grant.pid, f->grant_pid_start);
	}
	sqlite3_reset(s);
	return 0;
}

int store_facts_load(struct store *st, const char *agent, const char *provider,
		     const char *name, struct store_facts *f)
{
	int rc;

	bool began;

	store_lock(st);
	began = store_read_begin(st, &rc);
	if (!rc) {
		rc = store_facts_load_locked(st, agent, provider, name, f);
		store_read_end(st, began);
	}
	store_unlock(st);
	return rc;
}

/* ---- candidates ------------------------------------------------------- */

#define CANDIDATE_SQL \
	"SELECT p.name, s.name, v.version, v.length, v.created, v.expires," \
	" g.id IS NOT NULL, coalesce(g.revoked, 0), coalesce(g.expires, 0)," \
	" coalesce(g.max_uses, 0), coalesce(g.uses, 0), coalesce(g.pid, 0), coalesce(g.pid_start, 0)" \
	" FROM agents a JOIN providers p ON p.ws_id = a.ws_id" \
	" JOIN secrets s ON s.provider_id = p.id" \
	" JOIN versions v ON v.secret_id = s.id AND v.version =" \
	"  (SELECT max(version) FROM versions m WHERE m.secret_id = s.id)" \
	" LEFT JOIN grants g ON g.agent_id = a.id AND g.secret_id = s.id" \
	" WHERE a.ws_id = ?1 AND a.name = ?2" \
	" AND EXISTS (SELECT 1 FROM assignments x JOIN attachments t ON t.project_id = x.project_id" \
	"  WHERE x.agent_id = a.id AND t.provider_id = p.id" \
	"  AND (t.secret_id IS NULL OR t.secret_id = s.id))"

/* A candidate row with what `granted` is decided from, for the cache. */
struct cand_cached {
	struct store_candidate_row row;
	struct policy_grant g;
	uint64_t pid_start;
	int64_t vexp;
	char provider[POLICY_NAME_MAX + 1];
	char name[POLICY_NAME_MAX + 1];
};

/* A task-scoped grant costs one read of /proc/PID/stat here; others nothing. */
static bool cand_granted(struct policy_grant *g, uint64_t pid_start, int64_t vexp, int64_t now)
{
	if (g->exists && g->pid)
		g->task_ended = !store_task_alive(g->pid, pid_start);
	return policy_grant_live(g, now) && (vexp == 0 || now < vexp);
}

static int candidate_walk(struct store *st, const char *sql, const char *agent,
			  const char *provider, const char *name,
			  store_candidate_fn fn, void *ctx, int *rows, struct cand_cached *last)
{
	struct store_candidate_row row;
	struct policy_grant g;
	sqlite3_stmt *s;
	int64_t now = store_now();
	int rc;

	*rows = 0;
	s = store_stmt(st, sql);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, st->ws_id);
	sqlite3_bind_text(s, 2, agent, -1, SQLITE_STATIC);
	if (provider)
		sqlite3_bind_text(s, 3, provider, -1, SQLITE_STATIC);
	if (name)
		sqlite3_bind_text(s, 4, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t vexp = sqlite3_column_int64(s, 5);

		row.provider = (const char *)sqlite3_column_text(s, 0);
		row.name = (const char *)sqlite3_column_text(s, 1);
		row.version = sqlite3_column_int64(s, 2);
		row.length = (size_t)sqlite3_column_int64(s, 3);
		row.created = sqlite3_column_int64(s, 4);
		g.exists = sqlite3_column_int(s, 6) != 0;
		g.revoked = sqlite3_column_int64(s, 7) != 0;
		g.expires = sqlite3_column_int64(s, 8);
		g.max_uses = sqlite3_column_int64(s, 9);
		g.uses = sqlite3_column_int64(s, 10);
		g.pid = (pid_t)sqlite3_column_int64(s, 11);
		g.task_ended = false;
		row.granted = cand_granted(&g, (uint64_t)sqlite3_column_int64(s, 12), vexp, now);
		(*rows)++;
		if (last) {
			last->row = row;
			last->g = g;
			last->pid_start = (uint64_t)sqlite3_column_int64(s, 12);
			last->vexp = vexp;
			snprintf(last->provider, sizeof last->provider, "%s", row.provider);
			snprintf(last->name, sizeof last->name, "%s", row.name);
		}
		if ((rc = fn(ctx, &row)))
			goto out;
	}
	rc = rc == SQLITE_DONE ? 0 : store_fail_db(st, rc, "cannot read the store");
out:
	sqlite3_reset(s);
	return rc;
}

int store_candidate_list(struct store *st, const char *agent, const char *provider,
			 store_candidate_fn fn, void *ctx)
{
	int rc, rows;

	store_lock(st);
	if (provider)
		rc = candidate_walk(st, CANDIDATE_SQL " AND p.name = ?3 ORDER BY p.name, s.name",
				    agent, provider, NULL, fn, ctx, &rows, NULL);
	else
		rc = candidate_walk(st, CANDIDATE_SQL " ORDER BY p.name, s.name",
				    agent, NULL, NULL, fn, ctx, &rows, NULL);
	store_unlock(st);
	return rc;
}

/*
 * A provider shows in an agent's directory when one of the agent's
 * projects attaches a single secret of it, or attaches it whole while it
 * holds a secret (every secret has a version).
 */
#define CANDIDATE_PROVIDER_SQL \
	"SELECT DISTINCT p.name, p.created FROM agents a" \
	" JOIN assignments x ON x.agent_id = a.id" \
	" JOIN attachments t ON t.project_id = x.project_id" \
	" JOIN providers p ON p.id = t.provider_id" \
	" WHERE a.ws_id = ?1 AND a.name = ?2" \
	" AND (t.secret_id IS NOT NULL OR EXISTS (SELECT 1 FROM secrets s WHERE s.provider_id = p.id))"

int store_candidate_providers(struct store *st, const char *agent,
			      store_provider_fn fn, void *ctx)
{
	struct store_provider_row row = { 0 };
	sqlite3_stmt *s;
	int rc;

	store_lock(st);
	s = store_stmt(st, CANDIDATE_PROVIDER_SQL " ORDER BY p.name");
	if (!s) {
		store_unlock(st);
		return -EIO;
	}
	sqlite3_bind_int64(s, 1, st->ws_id);
	sqlite3_bind_text(s, 2, agent, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row.name = (const char *)sqlite3_column_text(s, 0);
		row.created = sqlite3_column_int64(s, 1);
		if ((rc = fn(ctx, &row)))
			goto out;
	}
	rc = rc == SQLITE_DONE ? 0 : store_fail_db(st, rc, "cannot read the store");
out:
	sqlite3_reset(s);
	store_unlock(st);
	return rc;
}

/* "AGENT/PROVIDER[/NAME]": the cache key of a question about them. */
static void cache_key(char *buf, size_t size, const char *agent, const char *provider,
		      const char *name)
{
	/* by hand: this runs several times per open, snprintf showed in profiles */
	const char *part[3] = { agent, provider, name };
	size_t n = 0;

	for (int i = 0; i < 3 && part[i]; i++) {
		size_t l = strlen(part[i]);
		if (i)
			buf[n < size - 1 ? n++ : n] = '/';
		if (l > size - 1 - n)
			l = size - 1 - n;
		memcpy(buf + n, part[i], l);
		n += l;
	}
	buf[n] = '\0';
}

#define CACHE_KEY_MAX (3 * (POLICY_NAME_MAX + 1))

int store_candidate_provider(struct store *st, const char *agent, const char *provider)
{
	char key[CACHE_KEY_MAX];
	sqlite3_stmt *s;
	uint64_t gen;
	void *none;
	size_t n;
	int rc;

	cache_key(key, sizeof key, agent, provider, NULL);
	if (store_cache_lookup(st, STORE_CACHE_PROVIDER, key, &gen, &rc, &none, &n)) {
		free(none);
		goto answer;
	}
	store_lock(st);
	s = store_stmt(st, CANDIDATE_PROVIDER_SQL " AND p.name = ?3 LIMIT 1");
	if (!s) {
		store_unlock(st);
		return -EIO;
	}
	sqlite3_bind_int64(s, 1, st->ws_id);
	sqlite3_bind_text(s, 2, agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, provider, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		rc = 0;
	else if (rc == SQLITE_DONE)
		rc = -ENOENT;
	else
		rc = store_fail_db(st, rc, "cannot read the store");
	if (rc == 0 || rc == -ENOENT)
		store_cache_put(st, gen, STORE_CACHE_PROVIDER, key, rc, NULL, 0);
	store_unlock(st);
answer:
	if (rc == -ENOENT)
		rc = store_fail(-ENOENT, "provider '%s' holds no candidate of agent '%s'", provider, agent);
	return rc;
}

int store_candidate_get(struct store *st, const char *agent, const char *provider,
			const char *name, store_candidate_fn fn, void *ctx)
{
	char key[CACHE_KEY_MAX];
	struct cand_cached c, *hit;
	uint64_t gen;
	size_t n;
	int rc, rows;

	cache_key(key, sizeof key, agent, provider, name);
	if (store_cache_lookup(st, STORE_CACHE_CANDIDATE, key, &gen, &rc, (void **)&hit, &n)) {
		if (rc == 0 && hit && n == sizeof c) {
			hit->row.provider = hit->provider;
			hit->row.name = hit->name;
			hit->row.granted = cand_granted(&hit->g, hit->pid_start, hit->vexp, store_now());
			rc = fn(ctx, &hit->row);
		} else {
			rc = store_fail(-ENOENT, "'%s/%s' is not a candidate of agent '%s'", provider,
					name, agent);
		}
		free(hit);
		return rc;
	}
	store_lock(st);
	rc = candidate_walk(st, CANDIDATE_SQL " AND p.name = ?3 AND s.name = ?4",
			    agent, provider, name, fn, ctx, &rows, &c);
	if (!rc && rows == 1)
		store_cache_put(st, gen, STORE_CACHE_CANDIDATE, key, 0, &c, sizeof c);
	if (!rc && rows == 0) {
		store_cache_put(st, gen, STORE_CACHE_CANDIDATE, key, -ENOENT, NULL, 0);
		rc = store_fail(-ENOENT, "'%s/%s' is not a candidate of agent '%s'", provider, name, agent);
	}
	store_unlock(st);
	return rc;
}

/* ---- resolve ------------------------------------------------------------ */

static void caller_event(struct store *st, struct store_event *ev, const char *type,
			 const struct store_facts *f, const char *ref,
			 const struct policy_caller *c)
{
	store_event_init(st, ev, type);
	ev->agent = f->agent_name;
	ev->secret = ref;
	ev->version = f->p.secret.version;
	if (c && c->known) {
		ev->uid = (int64_t)c->uid;
		ev->gid = (int64_t)c->gid;
	}
	if (c && c->pid)
		ev->pid = (int64_t)c->pid;
	if (c && c->exe)
		ev->exe = c->exe;
	if (c && c->known && c->cgroup)
		ev->cgroup = c->cgroup;
}

/* Commit the open resolve batch for every member and wake them (mu held). */
static void gc_commit(struct store *st)
{
	struct gc_member *m;
	uint64_t ticket = 0;
	int rc = store_commit_ticket(st, &ticket);

	for (m = st->gc_members; m; m = m->next) {
		m->rc = rc;
		m->ticket = ticket;
		m->done = true;
	}
	st->gc_members = NULL;
	st->gc_count = 0;
	st->gc_open = false;
	pthread_cond_broadcast(&st->gc_cv);
}

/*
 * The last resolve in commits; one that leaves the batch open waits for
 * whoever commits it. Returns the batch's COMMIT result (mu held).
 */
static int gc_finish(struct store *st, struct gc_member *me)
{
	if (me) {
		me->next = st->gc_members;
		st->gc_members = me;
		st->gc_count++;
	}
	if (atomic_load(&st->gc_waiting) == 0 || st->gc_count >= GC_MAX) {
		if (st->gc_members)
			gc_commit(st);
		else if (st->gc_open) {
			/* only failed resolves were in it: nothing to keep */
			store_rollback(st);
			st->gc_open = false;
		}
	}
	if (!me)
		return 0;
	while (!me->done)
		pthread_cond_wait(&st->gc_cv, &st->mu);
	return me->rc;
}

/* The part of a resolve inside the batch transaction, in its own savepoint. */
static int resolve_locked(struct store *st, struct store_facts *f0,
			  const struct policy_caller *caller, uint8_t **value, size_t *len,
			  enum policy_reason *reason_out)
{
	char ref[2 * POLICY_NAME_MAX + 2];
	struct store_facts f;
	struct store_event ev;
	enum policy_reason why;
	sqlite3_stmt *s;
	int rc;

	if ((rc = store_facts_load_locked(st, f0->agent_name, f0->provider, f0->name, &f)))
		return rc;
	/* hand the facts back: the caller names the version in a denial */
	*f0 = f;
	if (f.p.agent.exe)
		f0->p.agent.exe = f0->exe;
	if (f.p.agent.cgroup)
		f0->p.agent.cgroup = f0->cgroup;
	why = policy_decide(&f.p, caller, store_now());
	if (why == POLICY_ALLOW && f.p.agent.rate_max && !store_rate_take(st, &f, &f0->rate_first_refusal))
		why = POLICY_RATE_LIMIT;
	if (why != POLICY_ALLOW) {
		*reason_out = why;
		return -EACCES;
	}
	snprintf(ref, sizeof ref, "%s/%s", f.provider, f.name);

	s = store_stmt(st, "SELECT key_id, ct FROM versions WHERE id = ?1");
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, f.version_id);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return store_fail_db(st, rc, "cannot read the store");
	}
	rc = store_value_open(st, st->ws_name, f.provider, f.name, f.p.secret.version,
			      sqlite3_column_int64(s, 0), sqlite3_column_blob(s, 1),
			      (size_t)sqlite3_column_bytes(s, 1), value, len);
	sqlite3_reset(s);
	if (rc == -EBADMSG) {
		/* tampered or corrupt ciphertext: record it, serve nothing */
		*reason_out = POLICY_INTEGRITY;
		caller_event(st, &ev, "deny", &f, ref, caller);
		ev.reason = policy_reason_name(POLICY_INTEGRITY);
		return store_audit_append(st, &ev) ? -EIO : -EBADMSG;
	}
	if (rc)
		return rc;

	/* uses are counted only where they limit: one page less per resolve */
	if (f.grant_id && f.p.grant.max_uses > 0) {
		s = store_stmt(st, "UPDATE grants SET uses = uses + 1 WHERE id = ?1");
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, f.grant_id);
		if ((rc = store_step_done(st, s, "cannot write the audit trail")))
			return rc;
	}
	caller_event(st, &ev, "resolve", &f, ref, caller);
	store_fingerprint(st, *value, *len, ev.fingerprint);
	ev.has_fingerprint = true;
	return store_audit_append(st, &ev);
}

/*
 * The resolve that counts a use or records an integrity failure: the
 * decision, the change and the event in one write transaction, shared
 * by concurrent resolves (group commit).
 */
static int resolve_tx(struct store *st, struct store_facts *f0,
		      const struct policy_caller *caller,
		      uint8_t **value, size_t *len, enum policy_reason *reason_out)
{
	struct gc_member me = { 0 };
	uint8_t *val = NULL;
	size_t vlen = 0;
	char msg[512];
	int rc, crc;

	*value = NULL;
	*len = 0;
	*reason_out = POLICY_ALLOW;
	atomic_fetch_add(&st->gc_waiting, 1);
	store_lock(st);
	atomic_fetch_sub(&st->gc_waiting, 1);
	if (!st->gc_open) {
		if ((rc = store_write_begin(st))) {
			store_unlock(st);
			goto failed;
		}
		st->gc_open = true;
	}
	if ((rc = store_exec(st, "SAVEPOINT resolve"))) {
		gc_finish(st, NULL);
		store_unlock(st);
		goto failed;
	}
	rc = resolve_locked(st, f0, caller, &val, &vlen, reason_out);
	if (rc && rc != -EBADMSG)
		sqlite3_exec(st->db, "ROLLBACK TO resolve", NULL, NULL, NULL);
	if (store_exec(st, "RELEASE resolve") && !rc)
		rc = -EIO;
	if (rc && rc != -EBADMSG) {
		/* nothing of this resolve stays; the batch goes on without it */
		gc_finish(st, NULL);
		store_unlock(st);
		goto failed;
	}
	if (rc == -EBADMSG)
		snprintf(msg, sizeof msg, "%s", store_error());
	/* this resolve (or its integrity denial) is in the batch: wait for the commit */
	crc = gc_finish(st, &me);
	store_unlock(st);
	if (crc) {
		rc = crc;
		goto failed;
	}
	/* outside the lock, so concurrent resolves share one fdatasync */
	if ((crc = store_sync_to(st, me.ticket))) {
		rc = crc;
		goto failed;
	}
	if (rc == -EBADMSG) {
		store_value_free(val, vlen);
		return store_fail(-EBADMSG, "%s", msg);
	}
	atomic_fetch_add(&st->resolves, 1);
	*value = val;
	*len = vlen;
	return 0;
failed:
	store_value_free(val, vlen);
	/* every failure to record is an I/O failure to the caller: fail closed */
	if (rc != -EACCES && rc != -EBADMSG && rc != -ENOMEM)
		rc = rc == -ENOSPC ? store_fail(-EIO, "cannot write the audit trail: database or disk is full")
				   : (rc == -EIO ? rc : -EIO);
	return rc;
}

/* What the fast path keeps per (agent, provider, name): facts and ciphertext. */
struct facts_cached {
	struct store_facts f;
	int64_t key_id;
	size_t ctlen;
	uint8_t ct[];
};

/* Point a copied facts struct at its own executable and cgroup strings. */
static void facts_fixup(struct store_facts *f)
{
	if (f->p.agent.exe)
		f->p.agent.exe = f->exe;
	if (f->p.agent.cgroup)
		f->p.agent.cgroup = f->cgroup;
}

/*
 * The facts of one open and the current version's ciphertext: from the
 * cache (without the handle's lock), else one read of the store that
 * fills it. *out is malloc'd.
 */
static int facts_get(struct store *st, const struct store_facts *f0, struct facts_cached **out)
{
	char key[CACHE_KEY_MAX];
	struct facts_cached *c;
	sqlite3_stmt *s;
	size_t ctlen = 0, n;
	uint64_t gen;
	bool began;
	int rc;

	*out = NULL;
	cache_key(key, sizeof key, f0->agent_name, f0->provider, f0->name);
	if (store_cache_lookup(st, STORE_CACHE_FACTS, key, &gen, &rc, (void **)&c, &n)) {
		if (c && n >= sizeof *c && n == sizeof *c + c->ctlen) {
			facts_fixup(&c->f);
			*out = c;
			return 0;
		}
		free(c);
	}
	store_lock(st);
	began = store_read_begin(st, &rc);
	if (rc) {
		store_unlock(st);
		return rc;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		rc = store_fail(-ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = store_facts_load_locked(st, f0->agent_name, f0->provider, f0->name, &c->f)))
		goto out;
	if (c->f.version_id) {
		struct facts_cached *bigger;
		s = store_stmt(st, "SELECT key_id, ct FROM versions WHERE id = ?1");
		if (!s) {
			rc = -EIO;
			goto out;
		}
		sqlite3_bind_int64(s, 1, c->f.version_id);
		rc = sqlite3_step(s);
		if (rc != SQLITE_ROW) {
			sqlite3_reset(s);
			rc = store_fail_db(st, rc, "cannot read the store");
			goto out;
		}
		ctlen = (size_t)sqlite3_column_bytes(s, 1);
		bigger = realloc(c, sizeof *c + ctlen);
		if (!bigger) {
			sqlite3_reset(s);
			rc = store_fail(-ENOMEM, "out of memory");
			goto out;
		}
		c = bigger;
		c->key_id = sqlite3_column_int64(s, 0);
		c->ctlen = ctlen;
		memcpy(c->ct, sqlite3_column_blob(s, 1), ctlen);
		sqlite3_reset(s);
		rc = 0;
	}
	facts_fixup(&c->f);
out:
	store_read_end(st, began);
	if (rc == 0) {
		store_cache_put(st, gen, STORE_CACHE_FACTS, key, 0, c, sizeof *c + c->ctlen);
		*out = c;
	} else {
		free(c);
	}
	store_unlock(st);
	return rc;
}

/*
 * The resolve of a mount that serves (store_serve): the facts from the
 * cache or one read, the decision, the decryption, and the event
 * appended to the audit journal - fail closed: no journal record, no
 * value. Grants with a use limit and ciphertexts that fail their check
 * go through the write transaction, where the count and the integrity
 * event commit with the decision.
 */
static int resolve_deferred(struct store *st, struct store_facts *f0,
			    const struct policy_caller *caller,
			    uint8_t **value, size_t *len, enum policy_reason *reason_out,
			    uint64_t *ticket_out)
{
	char ref[2 * POLICY_NAME_MAX + 2];
	struct facts_cached *c = NULL;
	struct store_event ev;
	enum policy_reason why;
	uint8_t *val = NULL;
	size_t vlen = 0;
	uint64_t ticket = 0;
	int rc;

	*value = NULL;
	*len = 0;
	*reason_out = POLICY_ALLOW;
	*ticket_out = 0;
	if (!store_journal_serving(st))
		return resolve_tx(st, f0, caller, value, len, reason_out);
	if ((rc = facts_get(st, f0, &c)))
		return rc == -ENOMEM ? rc : -EIO;
	/* the facts may be cached: whether a task lives is asked at every open */
	if (c->f.p.grant.pid)
		c->f.p.grant.task_ended = !store_task_alive(c->f.p.grant.pid, c->f.grant_pid_start);
	*f0 = c->f;
	facts_fixup(f0);
	why = policy_decide(&c->f.p, caller, store_now());
	if (why != POLICY_ALLOW) {
		free(c);
		*reason_out = why;
		return -EACCES;
	}
	if (c->f.grant_id && c->f.p.grant.max_uses > 0) {
		free(c);
		return resolve_tx(st, f0, caller, value, len, reason_out);
	}
	/* counted in memory (rate_mu only): the granted path stays one journal write */
	if (c->f.p.agent.rate_max && !store_rate_take(st, &c->f, &f0->rate_first_refusal)) {
		free(c);
		*reason_out = POLICY_RATE_LIMIT;
		return -EACCES;
	}
	rc = store_value_open_cached(st, st->ws_name, c->f.provider, c->f.name,
				     c->f.p.secret.version, c->key_id, c->ct, c->ctlen, &val, &vlen);
	if (rc == -EAGAIN) {
		/* its data key is not unwrapped yet: that takes the store */
		store_lock(st);
		rc = store_value_open(st, st->ws_name, c->f.provider, c->f.name,
				      c->f.p.secret.version, c->key_id, c->ct, c->ctlen, &val, &vlen);
		store_unlock(st);
	}
	if (rc == -EBADMSG) {
		free(c);
		return resolve_tx(st, f0, caller, value, len, reason_out);
	}
	if (rc) {
		free(c);
		return rc == -ENOMEM ? rc : -EIO;
	}
	snprintf(ref, sizeof ref, "%s/%s", c->f.provider, c->f.name);
	caller_event(st, &ev, "resolve", &c->f, ref, caller);
	ev.time = store_now();
	store_fingerprint(st, val, vlen, ev.fingerprint);
	ev.has_fingerprint = true;
	rc = store_journal_append(st, &ev, &ticket);
	free(c);
	if (rc) {
		store_value_free(val, vlen);
		return -EIO;
	}
	atomic_fetch_add(&st->resolves, 1);
	*value = val;
	*len = vlen;
	*ticket_out = ticket;
	return 0;
}

/*
 * The alerts an open raises, after its decision. An open of a canary
 * alerts whether served or refused; a served canary whose alert cannot
 * be recorded is not served (fail closed, like its resolve event).
 */
int store_resolve_deferred(struct store *st, struct store_facts *f0,
			   const struct policy_caller *caller,
			   uint8_t **value, size_t *len, enum policy_reason *reason_out,
			   uint64_t *ticket_out)
{
	char ref[2 * POLICY_NAME_MAX + 2];
	struct store_alert a;
	int rc = resolve_deferred(st, f0, caller, value, len, reason_out, ticket_out);

	if ((rc != 0 && rc != -EACCES) || !f0->p.secret.exists)
		return rc;
	snprintf(ref, sizeof ref, "%s/%s", f0->provider, f0->name);
	/* refusals of a caller's bindings alert in store_deny, which the mount calls next */
	if (f0->p.secret.canary &&
	    !(rc == -EACCES && *reason_out >= POLICY_CALLER_UNKNOWN &&
	      *reason_out <= POLICY_EXE_HASH_MISMATCH)) {
		store_alert_from_caller(&a, "canary", f0->agent_name, ref, f0->p.secret.version, caller,
					policy_reason_name(rc == 0 ? POLICY_ALLOW : *reason_out));
		if (store_alert_raise(st, &a) && rc == 0)
			goto unrecorded;
	}
	if (rc == 0 && store_exe_note(st, f0, caller))
		goto unrecorded;
	if (rc == -EACCES && *reason_out == POLICY_RATE_LIMIT && f0->rate_first_refusal) {
		store_alert_from_caller(&a, "rate-limit", f0->agent_name, ref, f0->p.secret.version,
					caller, policy_reason_name(POLICY_RATE_LIMIT));
		/* refused either way; an alert that cannot be recorded is an audit failure */
		if (store_alert_raise(st, &a))
			return -EIO;
	}
	return rc;
unrecorded:
	store_value_free(*value, *len);
	*value = NULL;
	*len = 0;
	return -EIO;
}

int store_resolve_sync(struct store *st, uint64_t ticket)
{
	return ticket ? store_journal_sync(st, ticket) : 0;
}

int store_resolve(struct store *st, struct store_facts *f,
		  const struct policy_caller *caller,
		  uint8_t **value, size_t *len, enum policy_reason *reason_out)
{
	uint64_t ticket;
	int rc = store_resolve_deferred(st, f, caller, value, len, reason_out, &ticket);

	if (rc == 0 && (rc = store_resolve_sync(st, ticket))) {
		store_value_free(*value, *len);
		*value = NULL;
		*len = 0;
	}
	return rc;
}

/*
 * alert.c - alerts: events that say "someone should look at this now".
 *
 * An alert is recorded like any event - an `alert` row in the hash
 * chain, reason "TYPE: DECISION", never a value - and then handed to the
 * hook the daemon installs (store_alert_hook), which queues it for
 * delivery to the operator's program and returns at once. Recording goes
 * through the audit journal on a serving handle (one append, no SQLite
 * write on the open path), else through its own transaction.
 *
 * This file also answers "is this secret a canary?" for the denial path,
 * where the facts of the secret were never loaded.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/store_int.h"

void store_alert_hook(struct store *st, store_alert_fn fn, void *ctx)
{
	store_lock(st);
	st->alert_fn = fn;
	st->alert_ctx = ctx;
	store_unlock(st);
}

void store_alert_from_caller(struct store_alert *a, const char *type, const char *agent,
			     const char *secret, int64_t version,
			     const struct policy_caller *c, const char *reason)
{
	memset(a, 0, sizeof *a);
	a->type = type;
	a->agent = agent ? agent : "";
	a->secret = secret ? secret : "";
	a->version = version;
	a->uid = a->gid = a->pid = -1;
	a->exe = "";
	a->reason = reason ? reason : "";
	if (!c)
		return;
	a->uid = (int64_t)c->uid;
	a->gid = (int64_t)c->gid;
	/* a process is named only once it was established */
	if (c->known && c->pid)
		a->pid = (int64_t)c->pid;
	if (c->known && c->exe)
		a->exe = c->exe;
	if (c->known && c->has_exe_sha256) {
		a->has_sha256 = true;
		memcpy(a->sha256, c->exe_sha256, sizeof a->sha256);
	}
}

int store_alert_raise(struct store *st, const struct store_alert *in)
{
	struct store_alert a = *in;
	struct store_event ev;
	char reason[128];
	uint64_t ticket;
	int rc;

	a.time = store_now();
	snprintf(reason, sizeof reason, "%s: %s", a.type, a.reason);
	store_event_init(st, &ev, "alert");
	ev.time = a.time;
	ev.agent = a.agent;
	ev.secret = a.secret;
	ev.version = a.version;
	ev.uid = a.uid;
	ev.gid = a.gid;
	ev.pid = a.pid;
	ev.exe = a.exe;
	ev.reason = reason;
	if (store_journal_serving(st)) {
		rc = store_journal_append(st, &ev, &ticket);
		if (rc == 0)
			rc = store_journal_sync(st, ticket);
	} else if ((rc = store_tx_start(st)) == 0) {
		rc = store_tx_end(st, store_audit_append(st, &ev));
	}
	if (rc) {
		store_fail(-EIO, "cannot record an alert: %s", store_error());
		return -EIO;
	}
	if (st->alert_fn)
		st->alert_fn(st->alert_ctx, &a);
	return 0;
}

bool store_canary_locked(struct store *st, const char *provider, const char *name)
{
	struct sql_stmt *s = store_stmt(st, "SELECT s.canary FROM secrets s JOIN providers p"
					 " ON p.id = s.provider_id WHERE p.ws_id = ?1 AND p.name = ?2"
					 " AND s.name = ?3");
	bool canary = false;

	if (!s)
		return false;
	sql_bind_int64(s, 1, st->ws_id);
	sql_bind_text(s, 2, provider);
	sql_bind_text(s, 3, name);
	if (sql_step(s) == SQL_ROW)
		canary = (int)sql_column_int64(s, 0) != 0;
	sql_reset(s);
	return canary;
}

/* ---- deny-burst ------------------------------------------------------------ */

#define BURST_WINDOW_SECONDS 60

/*
 * Refusals are counted per uid - the one fact the kernel vouches for on
 * every request, whether or not the process was established - in fixed
 * one-minute windows; the alert fires once per window, when the count
 * reaches [alerts] deny_burst.
 */
int store_burst_note(struct store *st, const char *agent, const char *secret, int64_t version,
		     const struct policy_caller *caller, uid_t uid, gid_t gid,
		     enum policy_reason reason)
{
	struct store_burst_slot *b = NULL, *oldest = NULL;
	int64_t now = store_now();
	struct store_alert a;
	struct policy_caller c;

	if (st->cfg.alert_deny_burst <= 0)
		return 0;
	for (int i = 0; i < STORE_BURST_SLOTS; i++) {
		struct store_burst_slot *s = &st->burst[i];
		if (s->used && s->uid == (int64_t)uid) {
			b = s;
			break;
		}
		if (!oldest || !s->used || (oldest->used && s->start < oldest->start))
			oldest = s;
	}
	if (!b) {
		b = oldest;
		memset(b, 0, sizeof *b);
		b->used = true;
		b->uid = (int64_t)uid;
		b->start = now;
	}
	if (now - b->start >= BURST_WINDOW_SECONDS) {
		b->start = now;
		b->count = 0;
		b->alerted = false;
	}
	if (++b->count < st->cfg.alert_deny_burst || b->alerted)
		return 0;
	b->alerted = true;
	if (caller) {
		c = *caller;
	} else {
		memset(&c, 0, sizeof c);
		c.uid = uid;
		c.gid = gid;
	}
	store_alert_from_caller(&a, "deny-burst", agent, secret, version, &c, policy_reason_name(reason));
	return store_alert_raise(st, &a);
}

/* ---- new-exe ----------------------------------------------------------------- */

static int exe_load_locked(struct store *st)
{
	struct sql_stmt *s;
	int rc;

	store_lock(st);
	s = store_stmt(st, "SELECT x.agent_id, x.sha256, x.first FROM agent_exes x"
			   " JOIN agents a ON a.id = x.agent_id WHERE a.ws_id = ?1");
	if (!s) {
		store_unlock(st);
		return -EIO;
	}
	sql_bind_int64(s, 1, st->ws_id);
	while ((rc = sql_step(s)) == SQL_ROW) {
		if (sql_column_bytes(s, 1) != POLICY_SHA256_BYTES)
			continue;
		if (st->nexes == st->cap_exes) {
			size_t cap = st->cap_exes ? 2 * st->cap_exes : 64;
			struct store_exe_seen *v = realloc(st->exes, cap * sizeof *v);
			if (!v) {
				sql_reset(s);
				store_unlock(st);
				return -ENOMEM;
			}
			st->exes = v;
			st->cap_exes = cap;
		}
		struct store_exe_seen *e = &st->exes[st->nexes++];
		e->agent_id = sql_column_int64(s, 0);
		memcpy(e->sha256, sql_column_blob(s, 1), POLICY_SHA256_BYTES);
		e->first = sql_column_int64(s, 2);
		e->pending = false;
	}
	sql_reset(s);
	rc = rc == SQL_DONE ? 0 : store_fail_db(st, rc, "cannot read the store");
	store_unlock(st);
	if (rc == 0)
		st->exes_loaded = true;
	return rc;
}

/*
 * Only where the digest is known anyway: the mount hashes a caller's
 * executable for agents bound to a sha256 (cached by file identity), so
 * for others there is nothing to compare and no alert.
 */
int store_exe_note(struct store *st, const struct store_facts *f, const struct policy_caller *caller)
{
	char ref[2 * POLICY_NAME_MAX + 2];
	struct store_alert a;
	bool seen = false;
	int rc = 0;

	if (!caller || !caller->known || !caller->has_exe_sha256 || f->agent_id <= 0)
		return 0;
	pthread_mutex_lock(&st->exe_mu);
	if (!st->exes_loaded && (rc = exe_load_locked(st))) {
		pthread_mutex_unlock(&st->exe_mu);
		return rc;
	}
	for (size_t i = 0; i < st->nexes && !seen; i++)
		seen = st->exes[i].agent_id == f->agent_id &&
		       !memcmp(st->exes[i].sha256, caller->exe_sha256, POLICY_SHA256_BYTES);
	if (!seen) {
		if (st->nexes == st->cap_exes) {
			size_t cap = st->cap_exes ? 2 * st->cap_exes : 64;
			struct store_exe_seen *v = realloc(st->exes, cap * sizeof *v);
			if (!v) {
				pthread_mutex_unlock(&st->exe_mu);
				return -ENOMEM;
			}
			st->exes = v;
			st->cap_exes = cap;
		}
		struct store_exe_seen *e = &st->exes[st->nexes++];
		e->agent_id = f->agent_id;
		memcpy(e->sha256, caller->exe_sha256, POLICY_SHA256_BYTES);
		e->first = store_now();
		e->pending = true;
	}
	pthread_mutex_unlock(&st->exe_mu);
	if (seen)
		return 0;
	snprintf(ref, sizeof ref, "%s/%s", f->provider, f->name);
	store_alert_from_caller(&a, "new-exe", f->agent_name, ref, f->p.secret.version, caller,
				policy_reason_name(POLICY_ALLOW));
	return store_alert_raise(st, &a);
}

int store_controls_flush(struct store *st)
{
	struct sql_stmt *s;
	int rc = 0;
	bool any = false;

	pthread_mutex_lock(&st->exe_mu);
	for (size_t i = 0; i < st->nexes; i++)
		any |= st->exes[i].pending;
	if (!any) {
		pthread_mutex_unlock(&st->exe_mu);
		return 0;
	}
	if ((rc = store_tx_start(st))) {
		pthread_mutex_unlock(&st->exe_mu);
		return rc;
	}
	for (size_t i = 0; i < st->nexes && !rc; i++) {
		struct store_exe_seen *e = &st->exes[i];
		if (!e->pending)
			continue;
		/* an agent removed meanwhile: nothing to remember */
		s = store_stmt(st, "INSERT INTO agent_exes (agent_id, sha256, first)"
				   " SELECT id, ?2, ?3 FROM agents WHERE id = ?1"
				   " ON CONFLICT DO NOTHING");
		if (!s) {
			rc = -EIO;
			break;
		}
		sql_bind_int64(s, 1, e->agent_id);
		sql_bind_blob(s, 2, e->sha256, POLICY_SHA256_BYTES);
		sql_bind_int64(s, 3, e->first);
		rc = store_step_done(st, s, "cannot write the store");
	}
	rc = store_tx_end(st, rc);
	if (rc == 0)
		for (size_t i = 0; i < st->nexes; i++)
			st->exes[i].pending = false;
	pthread_mutex_unlock(&st->exe_mu);
	return rc;
}

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
	sqlite3_stmt *s = store_stmt(st, "SELECT s.canary FROM secrets s JOIN providers p"
					 " ON p.id = s.provider_id WHERE p.ws_id = ?1 AND p.name = ?2"
					 " AND s.name = ?3");
	bool canary = false;

	if (!s)
		return false;
	sqlite3_bind_int64(s, 1, st->ws_id);
	sqlite3_bind_text(s, 2, provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		canary = sqlite3_column_int(s, 0) != 0;
	sqlite3_reset(s);
	return canary;
}

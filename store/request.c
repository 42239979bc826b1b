/*
 * request.c - access requests: just-in-time access for agents.
 *
 * When a process that matches an agent opens one of the agent's
 * candidates and is refused for want of a live grant (no grant, revoked,
 * expired, used up: policy_reason_requestable), the refusal doubles as a
 * request for access. The open stays refused; the operator answers with
 * `shadm approve` (which grants) or `shadm reject`.
 *
 * Requests ride on the denial path: store_deny() counts them in memory
 * (no SQLite - a looping caller
 * costs others nothing more than its denials already do), and
 * store_deny_flush(), which the mount runs about once a second, writes
 * them coalesced into one row per (agent, secret) with the first and
 * last time, the count and the last caller's facts. A request not seen
 * for [requests] keep expires: it is neither listed nor approvable.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/store_int.h"

void store_request_note(struct store *st, const char *agent, const char *secret,
			const struct policy_caller *caller, uid_t uid, gid_t gid)
{
	char provider[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1];
	struct store_req_slot *r = NULL, *free_slot = NULL;
	int64_t now = store_now();

	if (!agent || !*agent || !secret || policy_ref_parse(secret, false, provider, name))
		return;
	for (int i = 0; i < STORE_REQ_SLOTS; i++) {
		struct store_req_slot *s = &st->req[i];
		if (!s->used) {
			if (!free_slot)
				free_slot = s;
			continue;
		}
		if (!strcmp(s->agent, agent) && !strcmp(s->provider, provider) && !strcmp(s->name, name)) {
			r = s;
			break;
		}
	}
	if (!r) {
		if (!free_slot) {
			/* full: write what is counted; if that fails the oldest counts are lost */
			if (store_request_flush_locked(st))
				memset(st->req, 0, sizeof st->req);
			free_slot = &st->req[0];
		}
		r = free_slot;
		memset(r, 0, sizeof *r);
		r->used = true;
		snprintf(r->agent, sizeof r->agent, "%s", agent);
		snprintf(r->provider, sizeof r->provider, "%s", provider);
		snprintf(r->name, sizeof r->name, "%s", name);
		r->first = now;
		r->pid = -1;
	}
	r->last = now;
	r->count++;
	r->uid = (int64_t)uid;
	r->gid = (int64_t)gid;
	/* a repeat names no process: keep the last one that was established */
	if (caller && caller->known && caller->pid) {
		r->pid = (int64_t)caller->pid;
		snprintf(r->exe, sizeof r->exe, "%s", caller->exe ? caller->exe : "");
	}
}

/*
 * One run of refusals into the row of (agent, secret): a pending,
 * unexpired request grows; a decided or expired one starts over as
 * pending. An agent or secret removed meanwhile matches nothing.
 */
#define REQUEST_UPSERT_SQL \
	"INSERT INTO requests (agent_id, secret_id, state, first, last, count, uid, gid, pid, exe)" \
	" SELECT a.id, s.id, 'pending', ?3, ?4, ?5, ?6, ?7, ?8, ?9" \
	" FROM agents a, providers p JOIN secrets s ON s.provider_id = p.id" \
	" WHERE a.ws_id = ?1 AND a.name = ?2 AND p.ws_id = ?1 AND p.name = ?10 AND s.name = ?11" \
	" ON CONFLICT (agent_id, secret_id) DO UPDATE SET" \
	"  first = CASE WHEN state = 'pending' AND last > ?12 THEN first ELSE excluded.first END," \
	"  count = CASE WHEN state = 'pending' AND last > ?12 THEN count + excluded.count" \
	"   ELSE excluded.count END," \
	"  state = 'pending', last = excluded.last, uid = excluded.uid, gid = excluded.gid," \
	"  pid = CASE WHEN excluded.pid >= 0 THEN excluded.pid ELSE pid END," \
	"  exe = CASE WHEN excluded.pid >= 0 THEN excluded.exe ELSE exe END," \
	"  decided = 0, actor = ''"

int store_request_flush_locked(struct store *st)
{
	sqlite3_stmt *s;
	bool any = false;
	int rc;

	for (int i = 0; i < STORE_REQ_SLOTS; i++)
		any |= st->req[i].used;
	if (!any)
		return 0;
	if ((rc = store_tx_start(st)))
		return rc;
	for (int i = 0; i < STORE_REQ_SLOTS && !rc; i++) {
		struct store_req_slot *r = &st->req[i];
		if (!r->used)
			continue;
		if (!(s = store_stmt(st, REQUEST_UPSERT_SQL))) {
			rc = -EIO;
			break;
		}
		sqlite3_bind_int64(s, 1, st->ws_id);
		sqlite3_bind_text(s, 2, r->agent, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, r->first);
		sqlite3_bind_int64(s, 4, r->last);
		sqlite3_bind_int64(s, 5, r->count);
		sqlite3_bind_int64(s, 6, r->uid);
		sqlite3_bind_int64(s, 7, r->gid);
		sqlite3_bind_int64(s, 8, r->pid);
		sqlite3_bind_text(s, 9, r->exe, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 10, r->provider, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 11, r->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 12, r->last - st->cfg.request_keep_seconds);
		rc = store_step_done(st, s, "cannot write the store");
	}
	rc = store_tx_end(st, rc);
	if (rc == 0)
		memset(st->req, 0, sizeof st->req);
	return rc;
}

/* ---- listing and deciding ------------------------------------------------ */

struct req_walk {
	store_request_fn fn;
	void *ctx;
	int64_t horizon;           /* a pending request last seen at or before this has expired */
};

static int request_row(void *arg, sqlite3_stmt *s)
{
	struct req_walk *w = arg;
	const char *state = (const char *)sqlite3_column_text(s, 3);
	struct store_request_row row = {
		.agent = (const char *)sqlite3_column_text(s, 0),
		.provider = (const char *)sqlite3_column_text(s, 1),
		.name = (const char *)sqlite3_column_text(s, 2),
		.first = sqlite3_column_int64(s, 4),
		.last = sqlite3_column_int64(s, 5),
		.count = sqlite3_column_int64(s, 6),
		.uid = sqlite3_column_int64(s, 7),
		.gid = sqlite3_column_int64(s, 8),
		.pid = sqlite3_column_int64(s, 9),
		.exe = (const char *)sqlite3_column_text(s, 10),
		.decided = sqlite3_column_int64(s, 11),
		.actor = (const char *)sqlite3_column_text(s, 12),
	};

	row.state = state && !strcmp(state, "pending") && row.last <= w->horizon ? "expired" : state;
	return w->fn(w->ctx, &row);
}

int store_request_list(struct store *st, bool all, store_request_fn fn, void *ctx)
{
	struct req_walk w = { fn, ctx, store_now() - st->cfg.request_keep_seconds };
	int rc;

	store_lock(st);
	rc = store_walk(st, "SELECT a.name, p.name, s.name, r.state, r.first, r.last, r.count,"
			" r.uid, r.gid, r.pid, r.exe, r.decided, r.actor FROM requests r"
			" JOIN agents a ON a.id = r.agent_id JOIN secrets s ON s.id = r.secret_id"
			" JOIN providers p ON p.id = s.provider_id"
			" WHERE a.ws_id = ?1 AND (?2 = -1 OR (r.state = 'pending' AND r.last > ?2))"
			" ORDER BY r.first, a.name, p.name, s.name",
			st->ws_id, all ? -1 : w.horizon, request_row, &w);
	store_unlock(st);
	return rc;
}

int store_request_decide(struct store *st, const char *agent, const char *provider,
			 const char *name, bool approve, const struct store_grant_opts *opts)
{
	static const struct store_grant_opts none = { 0 };
	char ref[2 * POLICY_NAME_MAX + 2];
	int64_t aid, prov, sid, now = store_now();
	sqlite3_stmt *s;
	int rc;

	if (store_name_ok(agent, POLICY_NAME_AGENT) || store_name_ok(provider, POLICY_NAME_PROVIDER) ||
	    store_name_ok(name, POLICY_NAME_SECRET))
		return -EINVAL;
	if (!opts)
		opts = &none;
	if (opts->ttl < 0 || opts->uses < 0)
		return store_fail(-EINVAL, "ttl and uses must not be negative");
	snprintf(ref, sizeof ref, "%s/%s", provider, name);
	if ((rc = store_tx_start(st)))
		return rc;
	if ((rc = store_agent_id(st, agent, &aid)) || (rc = store_secret_id(st, provider, name, &prov, &sid)))
		return store_tx_end(st, rc);
	s = store_stmt(st, "UPDATE requests SET state = ?3, decided = ?4, actor = ?5"
			   " WHERE agent_id = ?1 AND secret_id = ?2 AND state = 'pending' AND last > ?6");
	if (!s)
		return store_tx_end(st, -EIO);
	sqlite3_bind_int64(s, 1, aid);
	sqlite3_bind_int64(s, 2, sid);
	sqlite3_bind_text(s, 3, approve ? "approved" : "rejected", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, now);
	sqlite3_bind_text(s, 5, st->actor, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, now - st->cfg.request_keep_seconds);
	rc = store_step_done(st, s, "cannot write the store");
	if (!rc && sqlite3_changes(st->db) == 0)
		rc = store_fail(-ENOENT, "agent '%s' has no pending request for '%s'", agent, ref);
	if (!rc && approve)
		rc = store_grant_locked(st, agent, provider, name, opts);
	if (!rc)
		rc = store_note(st, approve ? "approve" : "reject", agent, ref, NULL);
	return store_tx_end(st, rc);
}

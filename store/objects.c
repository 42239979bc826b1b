/*
 * objects.c - workspaces, providers, projects and their attachments,
 * agents, assignments and grants: the rows the policy decides over.
 *
 * Each change checks its input, then runs as one BEGIN IMMEDIATE
 * transaction that makes the change and appends its audit event, so the
 * trail holds exactly the changes that happened. Existence is checked
 * inside the transaction (we hold the write lock), which gives one exact
 * message per mistake instead of a raw constraint error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

int store_name_ok(const char *name, enum policy_name_kind kind)
{
	if (policy_name_check(name, kind) == 0)
		return 0;
	if (kind == POLICY_NAME_AGENT && name && !strcmp(name, "self"))
		return store_fail(-EINVAL, "invalid name 'self': it is reserved for the mount's self link");
	return store_fail(-EINVAL, "invalid name '%s': use 1-128 of A-Z a-z 0-9 . _ - , not starting with . or -",
			  name ? name : "");
}

/* A cgroup binding policy_cgroup_check refused. */
static int store_cgroup_invalid(const char *cgroup)
{
	return store_fail(-EINVAL, "invalid cgroup '%s': " POLICY_CGROUP_HINT, cgroup);
}

/* Append an event with the object fields most changes use. */
int store_note(struct store *st, const char *type, const char *agent,
	       const char *secret, const char *reason)
{
	struct store_event ev;

	store_event_init(st, &ev, type);
	ev.agent = agent ? agent : "";
	ev.secret = secret ? secret : "";
	ev.reason = reason ? reason : "";
	return store_audit_append(st, &ev);
}

/* Delete the row `id` with `sql` and record `type` for it (inside a change). */
int store_delete_noted(struct store *st, const char *sql, int64_t id, const char *type,
		       const char *agent, const char *object)
{
	struct sql_stmt *s = store_stmt(st, sql);
	int rc;

	if (!s)
		return -EIO;
	sql_bind_int64(s, 1, id);
	rc = store_step_done(st, s, "cannot write the store");
	return rc ? rc : store_note(st, type, agent, object, NULL);
}

int store_provider_id(struct store *st, const char *name, int64_t *id)
{
	return store_lookup_id(st, "SELECT id FROM providers WHERE ws_id = ?1 AND name = ?2",
			       name, "provider", id);
}

int store_agent_id(struct store *st, const char *name, int64_t *id)
{
	return store_lookup_id(st, "SELECT id FROM agents WHERE ws_id = ?1 AND name = ?2",
			       name, "agent", id);
}

int store_project_id(struct store *st, const char *name, int64_t *id)
{
	return store_lookup_id(st, "SELECT id FROM projects WHERE ws_id = ?1 AND name = ?2",
			       name, "project", id);
}

int store_secret_id(struct store *st, const char *provider, const char *name,
		    int64_t *provider_id, int64_t *secret_id)
{
	struct sql_stmt *s;
	int rc;

	if ((rc = store_provider_id(st, provider, provider_id)))
		return rc;
	s = store_stmt(st, "SELECT id FROM secrets WHERE provider_id = ?1 AND name = ?2");
	if (!s)
		return -EIO;
	sql_bind_int64(s, 1, *provider_id);
	sql_bind_text(s, 2, name);
	rc = sql_step(s);
	if (rc == SQL_ROW)
		*secret_id = sql_column_int64(s, 0);
	sql_reset(s);
	if (rc == SQL_ROW)
		return 0;
	if (rc == SQL_DONE)
		return store_fail(-ENOENT, "no secret '%s/%s'", provider, name);
	return store_fail_db(st, rc, "cannot read the store");
}

/* 1 if the query with (?1 = ws or parent id, ?2 = name) finds a row. */
static int exists(struct store *st, const char *sql, int64_t parent, const char *name)
{
	struct sql_stmt *s = store_stmt(st, sql);
	int rc;

	if (!s)
		return -EIO;
	sql_bind_int64(s, 1, parent);
	sql_bind_text(s, 2, name);
	rc = sql_step(s);
	sql_reset(s);
	if (rc == SQL_ROW)
		return 1;
	return rc == SQL_DONE ? 0 : store_fail_db(st, rc, "cannot read the store");
}

/* Insert (ws_id, name, created) into one of the simple named tables. */
static int add_named(struct store *st, const char *exists_sql, const char *insert_sql,
		     const char *kind, const char *name, const char *event)
{
	struct sql_stmt *s;
	int rc;

	if ((rc = store_tx_start(st)))
		return rc;
	rc = exists(st, exists_sql, st->ws_id, name);
	if (rc > 0)
		rc = store_fail(-EEXIST, "%s '%s' already exists", kind, name);
	if (rc)
		return store_tx_end(st, rc);
	s = store_stmt(st, insert_sql);
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_int64(s, 1, st->ws_id);
	sql_bind_text(s, 2, name);
	sql_bind_int64(s, 3, store_now());
	rc = store_step_done(st, s, "cannot write the store");
	if (!rc)
		rc = store_note(st, event, NULL, name, NULL);
	return store_tx_end(st, rc);
}

/* ---- workspaces -------------------------------------------------------- */

int store_workspace_add(struct store *st, const char *name)
{
	struct sql_stmt *s;
	struct store_event ev;
	int rc;

	if (store_name_ok(name, POLICY_NAME_WORKSPACE))
		return -EINVAL;
	if ((rc = store_tx_start(st)))
		return rc;
	rc = exists(st, "SELECT 1 FROM workspaces WHERE ?1 = ?1 AND name = ?2", 0, name);
	if (rc > 0)
		rc = store_fail(-EEXIST, "workspace '%s' already exists", name);
	if (rc)
		return store_tx_end(st, rc);
	s = store_stmt(st, "INSERT INTO workspaces(name, created) VALUES (?1, ?2)");
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_text(s, 1, name);
	sql_bind_int64(s, 2, store_now());
	rc = store_step_done(st, s, "cannot write the store");
	if (!rc) {
		store_event_init(st, &ev, "workspace-add");
		ev.workspace = name;
		rc = store_audit_append(st, &ev);
	}
	return store_tx_end(st, rc);
}

int store_workspace_rm(struct store *st, const char *name)
{
	static const char *const uses[] = {
		"SELECT 1 FROM providers WHERE ws_id = ?1 AND ?2 = ?2 LIMIT 1",
		"SELECT 1 FROM projects WHERE ws_id = ?1 AND ?2 = ?2 LIMIT 1",
		"SELECT 1 FROM agents WHERE ws_id = ?1 AND ?2 = ?2 LIMIT 1",
	};
	struct store_event ev;
	struct sql_stmt *s;
	int64_t id;
	size_t i;
	int rc;

	if (store_name_ok(name, POLICY_NAME_WORKSPACE))
		return -EINVAL;
	if (!strcmp(name, STORE_DEFAULT_WORKSPACE))
		return store_fail(-EPERM, "cannot remove the default workspace");
	if ((rc = store_tx_start(st)))
		return rc;
	rc = store_lookup_id(st, "SELECT id FROM workspaces WHERE ?1 = ?1 AND name = ?2",
			     name, "workspace", &id);
	if (!rc && id == st->ws_id)
		rc = store_fail(-EBUSY, "cannot remove workspace '%s' while it is in use", name);
	for (i = 0; !rc && i < sizeof uses / sizeof uses[0]; i++) {
		rc = exists(st, uses[i], id, "");
		if (rc > 0)
			rc = store_fail(-ENOTEMPTY, "workspace '%s' is not empty", name);
	}
	if (rc)
		return store_tx_end(st, rc);
	s = store_stmt(st, "DELETE FROM workspaces WHERE id = ?1");
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_int64(s, 1, id);
	rc = store_step_done(st, s, "cannot write the store");
	if (!rc) {
		store_event_init(st, &ev, "workspace-rm");
		ev.workspace = name;
		rc = store_audit_append(st, &ev);
	}
	return store_tx_end(st, rc);
}

static int workspace_row(void *arg, struct sql_stmt *s)
{
	struct walk *w = arg;
	struct store_workspace_row row = {
		.name = sql_column_text(s, 0),
		.created = sql_column_int64(s, 1),
	};
	return ((store_workspace_fn)w->fn)(w->ctx, &row);
}

int store_workspace_list(struct store *st, store_workspace_fn fn, void *ctx)
{
	struct walk w = { (void *)fn, ctx };

	return store_walk(st, "SELECT name, created FROM workspaces WHERE ?1 = ?1 AND ?2 = ?2"
			  " ORDER BY name", 0, 0, workspace_row, &w);
}

/* ---- providers --------------------------------------------------------- */

int store_provider_add(struct store *st, const char *name)
{
	if (store_name_ok(name, POLICY_NAME_PROVIDER))
		return -EINVAL;
	return add_named(st, "SELECT 1 FROM providers WHERE ws_id = ?1 AND name = ?2",
			 "INSERT INTO providers(ws_id, name, created) VALUES (?1, ?2, ?3)",
			 "provider", name, "provider-add");
}

int store_provider_rm(struct store *st, const char *name)
{
	struct sql_stmt *s;
	int64_t id, n = 0;
	int rc;

	if (store_name_ok(name, POLICY_NAME_PROVIDER))
		return -EINVAL;
	if ((rc = store_tx_start(st)))
		return rc;
	if ((rc = store_provider_id(st, name, &id)))
		return store_tx_end(st, rc);
	s = store_stmt(st, "SELECT count(*) FROM secrets WHERE provider_id = ?1");
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_int64(s, 1, id);
	if (sql_step(s) == SQL_ROW)
		n = sql_column_int64(s, 0);
	sql_reset(s);
	if (n > 0)
		return store_tx_end(st, store_fail(-ENOTEMPTY, "provider '%s' still holds %lld secret(s)",
					     name, (long long)n));
	return store_tx_end(st, store_delete_noted(st, "DELETE FROM providers WHERE id = ?1", id, "provider-rm",
						   NULL, name));
}

static int provider_row(void *arg, struct sql_stmt *s)
{
	struct walk *w = arg;
	struct store_provider_row row = {
		.name = sql_column_text(s, 0),
		.created = sql_column_int64(s, 1),
		.secrets = sql_column_int64(s, 2),
	};
	return ((store_provider_fn)w->fn)(w->ctx, &row);
}

int store_provider_list(struct store *st, store_provider_fn fn, void *ctx)
{
	struct walk w = { (void *)fn, ctx };

	return store_walk(st, "SELECT p.name, p.created,"
			  " (SELECT count(*) FROM secrets s WHERE s.provider_id = p.id)"
			  " FROM providers p WHERE p.ws_id = ?1 AND ?2 = ?2 ORDER BY p.name",
			  st->ws_id, 0, provider_row, &w);
}

/* ---- projects ---------------------------------------------------------- */

int store_project_add(struct store *st, const char *name)
{
	if (store_name_ok(name, POLICY_NAME_PROJECT))
		return -EINVAL;
	return add_named(st, "SELECT 1 FROM projects WHERE ws_id = ?1 AND name = ?2",
			 "INSERT INTO projects(ws_id, name, created) VALUES (?1, ?2, ?3)",
			 "project", name, "project-add");
}

int store_project_rm(struct store *st, const char *name)
{
	int64_t id;
	int rc;

	if (store_name_ok(name, POLICY_NAME_PROJECT))
		return -EINVAL;
	if ((rc = store_tx_start(st)))
		return rc;
	if ((rc = store_project_id(st, name, &id)))
		return store_tx_end(st, rc);
	return store_tx_end(st, store_delete_noted(st, "DELETE FROM projects WHERE id = ?1", id, "project-rm",
						   NULL, name));
}

static int project_row(void *arg, struct sql_stmt *s)
{
	struct walk *w = arg;
	struct store_project_row row = {
		.name = sql_column_text(s, 0),
		.created = sql_column_int64(s, 1),
		.agents = sql_column_int64(s, 2),
		.attachments = sql_column_int64(s, 3),
	};
	return ((store_project_fn)w->fn)(w->ctx, &row);
}

int store_project_list(struct store *st, store_project_fn fn, void *ctx)
{
	struct walk w = { (void *)fn, ctx };

	return store_walk(st, "SELECT p.name, p.created,"
			  " (SELECT count(*) FROM assignments a WHERE a.project_id = p.id),"
			  " (SELECT count(*) FROM attachments t WHERE t.project_id = p.id)"
			  " FROM projects p WHERE p.ws_id = ?1 AND ?2 = ?2 ORDER BY p.name",
			  st->ws_id, 0, project_row, &w);
}

static int attach_change(struct store *st, const char *project, const char *provider,
			 const char *name, bool attach)
{
	char ref[2 * POLICY_NAME_MAX + 2], reason[POLICY_NAME_MAX + 16];
	int64_t pid, prov, sid = 0;
	struct sql_stmt *s;
	bool whole = !name || !*name;
	int rc;

	if (store_name_ok(project, POLICY_NAME_PROJECT) ||
	    store_name_ok(provider, POLICY_NAME_PROVIDER) ||
	    (!whole && store_name_ok(name, POLICY_NAME_SECRET)))
		return -EINVAL;
	if (whole)
		snprintf(ref, sizeof ref, "%s", provider);
	else
		snprintf(ref, sizeof ref, "%s/%s", provider, name);
	snprintf(reason, sizeof reason, "project %s", project);
	if ((rc = store_tx_start(st)))
		return rc;
	if ((rc = store_project_id(st, project, &pid)))
		return store_tx_end(st, rc);
	rc = whole ? store_provider_id(st, provider, &prov) : store_secret_id(st, provider, name, &prov, &sid);
	if (rc)
		return store_tx_end(st, rc);
	s = store_stmt(st, "SELECT id FROM attachments WHERE project_id = ?1 AND provider_id = ?2"
			   " AND secret_id IS NOT DISTINCT FROM ?3");
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_int64(s, 1, pid);
	sql_bind_int64(s, 2, prov);
	if (whole)
		sql_bind_null(s, 3);
	else
		sql_bind_int64(s, 3, sid);
	rc = sql_step(s);
	sql_reset(s);
	if (rc != SQL_ROW && rc != SQL_DONE)
		return store_tx_end(st, store_fail_db(st, rc, "cannot read the store"));
	if (attach && rc == SQL_ROW)
		return store_tx_end(st, store_fail(-EEXIST, "'%s' is already attached to project '%s'", ref, project));
	if (!attach && rc == SQL_DONE)
		return store_tx_end(st, store_fail(-ENOENT, "'%s' is not attached to project '%s'", ref, project));
	s = store_stmt(st, attach ?
		       "INSERT INTO attachments(project_id, provider_id, secret_id) VALUES (?1, ?2, ?3)" :
		       "DELETE FROM attachments WHERE project_id = ?1 AND provider_id = ?2"
		       " AND secret_id IS NOT DISTINCT FROM ?3");
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_int64(s, 1, pid);
	sql_bind_int64(s, 2, prov);
	if (whole)
		sql_bind_null(s, 3);
	else
		sql_bind_int64(s, 3, sid);
	rc = store_step_done(st, s, "cannot write the store");
	if (!rc)
		rc = store_note(st, attach ? "attach" : "detach", NULL, ref, reason);
	return store_tx_end(st, rc);
}

int store_project_attach(struct store *st, const char *project, const char *provider,
			 const char *name)
{
	return attach_change(st, project, provider, name, true);
}

int store_project_detach(struct store *st, const char *project, const char *provider,
			 const char *name)
{
	return attach_change(st, project, provider, name, false);
}

static int attachment_row(void *arg, struct sql_stmt *s)
{
	struct walk *w = arg;
	struct store_attachment_row row = {
		.project = sql_column_text(s, 0),
		.provider = sql_column_text(s, 1),
		.name = sql_column_text(s, 2),
	};
	return ((store_attachment_fn)w->fn)(w->ctx, &row);
}

int store_attachment_list(struct store *st, const char *project,
			  store_attachment_fn fn, void *ctx)
{
	struct walk w = { (void *)fn, ctx };
	int64_t pid = 0;
	int rc;

	store_lock(st);
	rc = project ? store_project_id(st, project, &pid) : 0;
	if (!rc)
		rc = store_walk(st, "SELECT j.name, p.name, coalesce(s.name, '') FROM attachments t"
				" JOIN projects j ON j.id = t.project_id"
				" JOIN providers p ON p.id = t.provider_id"
				" LEFT JOIN secrets s ON s.id = t.secret_id"
				" WHERE j.ws_id = ?1 AND (?2 = 0 OR j.id = ?2)"
				" ORDER BY j.name, p.name, coalesce(s.name, '')",
				st->ws_id, pid, attachment_row, &w);
	store_unlock(st);
	return rc;
}

/* ---- agents ------------------------------------------------------------ */

int store_agent_add(struct store *st, const struct store_agent_row *a)
{
	struct sql_stmt *s;
	int rc;

	if (store_name_ok(a->name, POLICY_NAME_AGENT))
		return -EINVAL;
	if (a->exe && a->exe[0] != '/')
		return store_fail(-EINVAL, "executable '%s' is not an absolute path", a->exe);
	if (a->cgroup && policy_cgroup_check(a->cgroup, true))
		return store_cgroup_invalid(a->cgroup);
	if ((rc = store_tx_start(st)))
		return rc;
	rc = exists(st, "SELECT 1 FROM agents WHERE ws_id = ?1 AND name = ?2", st->ws_id, a->name);
	if (rc > 0)
		rc = store_fail(-EEXIST, "agent '%s' already exists", a->name);
	if (rc)
		return store_tx_end(st, rc);
	if (a->rate_max < 0 || (a->rate_max > 0 && a->rate_window <= 0))
		return store_tx_end(st, store_fail(-EINVAL, "a rate needs a count and a window"));
	s = store_stmt(st, "INSERT INTO agents(ws_id, name, human, enabled, uid, gid, exe, exe_sha256, created,"
			   " rate_max, rate_window, cgroup)"
			   " VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_int64(s, 1, st->ws_id);
	sql_bind_text(s, 2, a->name);
	sql_bind_int64(s, 3, a->human ? 1 : 0);
	sql_bind_int64(s, 4, (int64_t)a->uid);
	if (a->has_gid)
		sql_bind_int64(s, 5, (int64_t)a->gid);
	if (a->exe)
		sql_bind_text(s, 6, a->exe);
	if (a->has_exe_sha256)
		sql_bind_blob(s, 7, a->exe_sha256, POLICY_SHA256_BYTES);
	sql_bind_int64(s, 8, store_now());
	sql_bind_int64(s, 9, a->rate_max);
	sql_bind_int64(s, 10, a->rate_max ? a->rate_window : 0);
	if (a->cgroup)
		sql_bind_text(s, 11, a->cgroup);
	rc = store_step_done(st, s, "cannot write the store");
	if (!rc)
		rc = store_note(st, "agent-add", a->name, NULL, NULL);
	return store_tx_end(st, rc);
}

int store_agent_rm(struct store *st, const char *name)
{
	int64_t id;
	int rc;

	if (store_name_ok(name, POLICY_NAME_AGENT))
		return -EINVAL;
	if ((rc = store_tx_start(st)))
		return rc;
	if ((rc = store_agent_id(st, name, &id)))
		return store_tx_end(st, rc);
	return store_tx_end(st, store_delete_noted(st, "DELETE FROM agents WHERE id = ?1", id, "agent-rm",
						   name, NULL));
}

int store_agent_enable(struct store *st, const char *name, bool enabled)
{
	struct sql_stmt *s;
	int64_t id;
	int rc;

	if (store_name_ok(name, POLICY_NAME_AGENT))
		return -EINVAL;
	if ((rc = store_tx_start(st)))
		return rc;
	if ((rc = store_agent_id(st, name, &id)))
		return store_tx_end(st, rc);
	s = store_stmt(st, "UPDATE agents SET enabled = ?2 WHERE id = ?1");
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_int64(s, 1, id);
	sql_bind_int64(s, 2, enabled ? 1 : 0);
	rc = store_step_done(st, s, "cannot write the store");
	if (!rc)
		rc = store_note(st, enabled ? "agent-enable" : "agent-disable", name, NULL, NULL);
	return store_tx_end(st, rc);
}

int store_agent_rate(struct store *st, const char *name, int64_t max, int64_t window)
{
	char reason[64] = "off";
	struct sql_stmt *s;
	int64_t id;
	int rc;

	if (store_name_ok(name, POLICY_NAME_AGENT))
		return -EINVAL;
	if (max < 0 || (max > 0 && window <= 0))
		return store_fail(-EINVAL, "a rate needs a count and a window");
	if ((rc = store_tx_start(st)))
		return rc;
	if ((rc = store_agent_id(st, name, &id)))
		return store_tx_end(st, rc);
	s = store_stmt(st, "UPDATE agents SET rate_max = ?2, rate_window = ?3 WHERE id = ?1");
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_int64(s, 1, id);
	sql_bind_int64(s, 2, max);
	sql_bind_int64(s, 3, max ? window : 0);
	rc = store_step_done(st, s, "cannot write the store");
	if (max)
		snprintf(reason, sizeof reason, "%lld/%llds", (long long)max, (long long)window);
	if (!rc)
		rc = store_note(st, "agent-rate", name, NULL, reason);
	return store_tx_end(st, rc);
}

/* "name=value" appended to a growing reason; false when out of memory. */
static bool reason_add(char **buf, size_t *len, const char *name, const char *value)
{
	size_t need = strlen(name) + strlen(value) + 3;
	char *p = realloc(*buf, *len + need);

	if (!p)
		return false;
	*buf = p;
	*len += (size_t)snprintf(p + *len, need, "%s%s=%s", *len ? " " : "", name, value);
	return true;
}

int store_agent_set(struct store *st, const char *name, const struct store_agent_change *ch)
{
	char num[24], hex[2 * POLICY_SHA256_BYTES + 1], *reason = NULL;
	size_t rlen = 0;
	bool ok = true;
	struct sql_stmt *s;
	int64_t id;
	int rc;

	if (store_name_ok(name, POLICY_NAME_AGENT))
		return -EINVAL;
	if (ch->set_exe && ch->exe && ch->exe[0] != '/')
		return store_fail(-EINVAL, "executable '%s' is not an absolute path", ch->exe);
	if (ch->set_cgroup && ch->cgroup && policy_cgroup_check(ch->cgroup, true))
		return store_cgroup_invalid(ch->cgroup);
	if (!ch->set_uid && !ch->set_gid && !ch->set_exe && !ch->set_exe_sha256 && !ch->set_cgroup &&
	    !ch->set_human)
		return store_fail(-EINVAL, "nothing to change for agent '%s'", name);
	/* the event names what changed, in a fixed order, with the new values */
	if (ch->set_uid) {
		snprintf(num, sizeof num, "%lld", (long long)ch->uid);
		ok = ok && reason_add(&reason, &rlen, "uid", num);
	}
	if (ch->set_gid) {
		snprintf(num, sizeof num, "%lld", (long long)ch->gid);
		ok = ok && reason_add(&reason, &rlen, "gid", ch->has_gid ? num : "-");
	}
	if (ch->set_exe)
		ok = ok && reason_add(&reason, &rlen, "exe", ch->exe ? ch->exe : "-");
	if (ch->set_exe_sha256) {
		for (int i = 0; i < POLICY_SHA256_BYTES; i++)
			snprintf(hex + 2 * i, 3, "%02x", ch->exe_sha256[i]);
		ok = ok && reason_add(&reason, &rlen, "exe-sha256", ch->has_exe_sha256 ? hex : "-");
	}
	if (ch->set_cgroup)
		ok = ok && reason_add(&reason, &rlen, "cgroup", ch->cgroup ? ch->cgroup : "-");
	if (ch->set_human)
		ok = ok && reason_add(&reason, &rlen, "kind", ch->human ? "human" : "agent");
	if (!ok) {
		free(reason);
		return store_fail(-ENOMEM, "out of memory");
	}
	if ((rc = store_tx_start(st))) {
		free(reason);
		return rc;
	}
	if ((rc = store_agent_id(st, name, &id)))
		goto out;
	s = store_stmt(st, "UPDATE agents SET"
			   " uid = CASE WHEN ?2 THEN ?3 ELSE uid END,"
			   " gid = CASE WHEN ?4 THEN ?5 ELSE gid END,"
			   " exe = CASE WHEN ?6 THEN ?7 ELSE exe END,"
			   " exe_sha256 = CASE WHEN ?8 THEN ?9 ELSE exe_sha256 END,"
			   " cgroup = CASE WHEN ?10 THEN ?11 ELSE cgroup END,"
			   " human = CASE WHEN ?12 THEN ?13 ELSE human END"
			   " WHERE id = ?1");
	if (!s) {
		rc = -EIO;
		goto out;
	}
	/* an unbound value stays NULL: the binding is cleared */
	sql_bind_int64(s, 1, id);
	sql_bind_int64(s, 2, ch->set_uid);
	sql_bind_int64(s, 3, (int64_t)ch->uid);
	sql_bind_int64(s, 4, ch->set_gid);
	if (ch->has_gid)
		sql_bind_int64(s, 5, (int64_t)ch->gid);
	sql_bind_int64(s, 6, ch->set_exe);
	if (ch->exe)
		sql_bind_text(s, 7, ch->exe);
	sql_bind_int64(s, 8, ch->set_exe_sha256);
	if (ch->has_exe_sha256)
		sql_bind_blob(s, 9, ch->exe_sha256, POLICY_SHA256_BYTES);
	sql_bind_int64(s, 10, ch->set_cgroup);
	if (ch->cgroup)
		sql_bind_text(s, 11, ch->cgroup);
	sql_bind_int64(s, 12, ch->set_human);
	sql_bind_int64(s, 13, ch->human);
	rc = store_step_done(st, s, "cannot write the store");
	if (!rc)
		rc = store_note(st, "agent-set", name, NULL, reason);
out:
	free(reason);
	return store_tx_end(st, rc);
}

#define AGENT_COLUMNS "name, human, enabled, uid, gid, exe, exe_sha256, created, rate_max, rate_window," \
		      " cgroup"

static void agent_from_row(struct sql_stmt *s, struct store_agent_row *a)
{
	memset(a, 0, sizeof *a);
	a->name = sql_column_text(s, 0);
	a->human = (int)sql_column_int64(s, 1) != 0;
	a->enabled = (int)sql_column_int64(s, 2) != 0;
	a->uid = (uid_t)sql_column_int64(s, 3);
	a->has_gid = !sql_column_is_null(s, 4);
	a->gid = (gid_t)sql_column_int64(s, 4);
	a->exe = sql_column_text(s, 5);
	if (sql_column_bytes(s, 6) == POLICY_SHA256_BYTES) {
		a->has_exe_sha256 = true;
		memcpy(a->exe_sha256, sql_column_blob(s, 6), POLICY_SHA256_BYTES);
	}
	a->created = sql_column_int64(s, 7);
	a->rate_max = sql_column_int64(s, 8);
	a->rate_window = sql_column_int64(s, 9);
	a->cgroup = sql_column_text(s, 10);
}

static int agent_row(void *arg, struct sql_stmt *s)
{
	struct walk *w = arg;
	struct store_agent_row row;

	agent_from_row(s, &row);
	return ((store_agent_fn)w->fn)(w->ctx, &row);
}

int store_agent_list(struct store *st, store_agent_fn fn, void *ctx)
{
	struct walk w = { (void *)fn, ctx };

	return store_walk(st, "SELECT " AGENT_COLUMNS " FROM agents WHERE ws_id = ?1 AND ?2 = ?2"
			  " ORDER BY name", st->ws_id, 0, agent_row, &w);
}

int store_agent_list_enabled(struct store *st, store_agent_fn fn, void *ctx)
{
	struct walk w = { (void *)fn, ctx };

	return store_walk(st, "SELECT " AGENT_COLUMNS " FROM agents WHERE ws_id = ?1 AND enabled = 1"
			  " AND ?2 = ?2 ORDER BY name", st->ws_id, 0, agent_row, &w);
}

/*
 * An agent row as the cache keeps it: the strings inside, the exe path
 * then the cgroup in strs, sized to fit.
 */
struct agent_cached {
	struct store_agent_row row;
	char name[POLICY_NAME_MAX + 1];
	bool has_exe, has_cgroup;
	size_t cgroup_off;
	char strs[];
};

static void agent_cached_row(struct agent_cached *c)
{
	c->row.name = c->name;
	c->row.exe = c->has_exe ? c->strs : NULL;
	c->row.cgroup = c->has_cgroup ? c->strs + c->cgroup_off : NULL;
}

int store_agent_get(struct store *st, const char *name, store_agent_fn fn, void *ctx)
{
	struct agent_cached *c, *hit;
	struct sql_stmt *s;
	uint64_t gen;
	size_t n;
	int rc;

	if (store_name_ok(name, POLICY_NAME_AGENT))
		return -EINVAL;
	if (store_cache_lookup(st, STORE_CACHE_AGENT, name, &gen, &rc, (void **)&hit, &n)) {
		if (rc == 0 && hit && n > sizeof *hit) {
			agent_cached_row(hit);
			rc = fn(ctx, &hit->row);
		} else {
			rc = store_fail(rc ? rc : -EIO, "no agent '%s'", name);
		}
		free(hit);
		return rc;
	}
	store_lock(st);
	s = store_stmt(st, "SELECT " AGENT_COLUMNS " FROM agents WHERE ws_id = ?1 AND name = ?2");
	if (!s) {
		store_unlock(st);
		return -EIO;
	}
	sql_bind_int64(s, 1, st->ws_id);
	sql_bind_text(s, 2, name);
	rc = sql_step(s);
	if (rc == SQL_ROW) {
		struct store_agent_row row;
		agent_from_row(s, &row);
		size_t exelen = row.exe ? strlen(row.exe) : 0;
		size_t cglen = row.cgroup ? strlen(row.cgroup) : 0;
		c = calloc(1, sizeof *c + exelen + 1 + cglen + 1);
		if (!c) {
			sql_reset(s);
			store_unlock(st);
			return store_fail(-ENOMEM, "out of memory");
		}
		c->row = row;
		snprintf(c->name, sizeof c->name, "%s", row.name);
		c->has_exe = row.exe != NULL;
		memcpy(c->strs, row.exe ? row.exe : "", exelen + 1);
		c->has_cgroup = row.cgroup != NULL;
		c->cgroup_off = exelen + 1;
		memcpy(c->strs + c->cgroup_off, row.cgroup ? row.cgroup : "", cglen + 1);
		sql_reset(s);
		agent_cached_row(c);
		store_cache_put(st, gen, STORE_CACHE_AGENT, name, 0, c,
				sizeof *c + exelen + 1 + cglen + 1);
		rc = fn(ctx, &c->row);
		free(c);
	} else if (rc == SQL_DONE) {
		sql_reset(s);
		store_cache_put(st, gen, STORE_CACHE_AGENT, name, -ENOENT, NULL, 0);
		rc = store_fail(-ENOENT, "no agent '%s'", name);
	} else {
		sql_reset(s);
		rc = store_fail_db(st, rc, "cannot read the store");
	}
	store_unlock(st);
	return rc;
}

/* ---- assignments ------------------------------------------------------- */

static int assign_change(struct store *st, const char *agent, const char *project, bool add)
{
	char reason[POLICY_NAME_MAX + 16];
	int64_t aid, pid;
	struct sql_stmt *s;
	int rc;

	if (store_name_ok(agent, POLICY_NAME_AGENT) || store_name_ok(project, POLICY_NAME_PROJECT))
		return -EINVAL;
	if ((rc = store_tx_start(st)))
		return rc;
	if ((rc = store_agent_id(st, agent, &aid)) || (rc = store_project_id(st, project, &pid)))
		return store_tx_end(st, rc);
	s = store_stmt(st, "SELECT 1 FROM assignments WHERE agent_id = ?1 AND project_id = ?2");
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_int64(s, 1, aid);
	sql_bind_int64(s, 2, pid);
	rc = sql_step(s);
	sql_reset(s);
	if (rc != SQL_ROW && rc != SQL_DONE)
		return store_tx_end(st, store_fail_db(st, rc, "cannot read the store"));
	if (add && rc == SQL_ROW)
		return store_tx_end(st, store_fail(-EEXIST, "agent '%s' is already assigned to project '%s'",
					     agent, project));
	if (!add && rc == SQL_DONE)
		return store_tx_end(st, store_fail(-ENOENT, "agent '%s' is not assigned to project '%s'",
					     agent, project));
	s = store_stmt(st, add ? "INSERT INTO assignments(agent_id, project_id) VALUES (?1, ?2)"
			       : "DELETE FROM assignments WHERE agent_id = ?1 AND project_id = ?2");
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_int64(s, 1, aid);
	sql_bind_int64(s, 2, pid);
	rc = store_step_done(st, s, "cannot write the store");
	snprintf(reason, sizeof reason, "project %s", project);
	if (!rc)
		rc = store_note(st, add ? "assign" : "unassign", agent, NULL, reason);
	return store_tx_end(st, rc);
}

int store_assign(struct store *st, const char *agent, const char *project)
{
	return assign_change(st, agent, project, true);
}

int store_unassign(struct store *st, const char *agent, const char *project)
{
	return assign_change(st, agent, project, false);
}

struct assignment_walk {
	int (*fn)(void *ctx, const char *agent, const char *project);
	void *ctx;
};

static int assignment_row(void *arg, struct sql_stmt *s)
{
	struct assignment_walk *w = arg;

	return w->fn(w->ctx, sql_column_text(s, 0),
		     sql_column_text(s, 1));
}

int store_assignment_list(struct store *st, const char *agent,
			  int (*fn)(void *ctx, const char *agent, const char *project),
			  void *ctx)
{
	struct assignment_walk w = { fn, ctx };
	int64_t aid = 0;
	int rc;

	store_lock(st);
	rc = agent ? store_agent_id(st, agent, &aid) : 0;
	if (!rc)
		rc = store_walk(st, "SELECT a.name, p.name FROM assignments x"
				" JOIN agents a ON a.id = x.agent_id JOIN projects p ON p.id = x.project_id"
				" WHERE a.ws_id = ?1 AND (?2 = 0 OR a.id = ?2) ORDER BY a.name, p.name",
				st->ws_id, aid, assignment_row, &w);
	store_unlock(st);
	return rc;
}

/* ---- grants ------------------------------------------------------------ */

/* Grant inside an open change (store_tx_start); audited as `grant`. */
int store_grant_locked(struct store *st, const char *agent, const char *provider,
		       const char *name, const struct store_grant_opts *o)
{
	char ref[2 * POLICY_NAME_MAX + 2], reason[96];
	int64_t aid, prov, sid, now = store_now();
	struct sql_stmt *s;
	int rc;

	snprintf(ref, sizeof ref, "%s/%s", provider, name);
	if ((rc = store_agent_id(st, agent, &aid)) || (rc = store_secret_id(st, provider, name, &prov, &sid)))
		return rc;
	s = store_stmt(st, "INSERT INTO grants(agent_id, secret_id, created, expires, max_uses, uses, revoked,"
			   " pid, pid_start) VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, ?6, ?7)"
			   " ON CONFLICT(agent_id, secret_id) DO UPDATE SET created = excluded.created,"
			   " expires = excluded.expires, max_uses = excluded.max_uses, uses = 0, revoked = 0,"
			   " pid = excluded.pid, pid_start = excluded.pid_start");
	if (!s)
		return -EIO;
	sql_bind_int64(s, 1, aid);
	sql_bind_int64(s, 2, sid);
	sql_bind_int64(s, 3, now);
	sql_bind_int64(s, 4, o->ttl ? now + o->ttl : o->expires);
	sql_bind_int64(s, 5, o->uses);
	sql_bind_int64(s, 6, (int64_t)o->pid);
	sql_bind_int64(s, 7, (int64_t)o->pid_start);
	rc = store_step_done(st, s, "cannot write the store");
	if (o->ttl && o->uses)
		snprintf(reason, sizeof reason, "ttl %llds, %lld uses", (long long)o->ttl, (long long)o->uses);
	else if (o->ttl)
		snprintf(reason, sizeof reason, "ttl %llds", (long long)o->ttl);
	else if (o->uses)
		snprintf(reason, sizeof reason, "%lld uses", (long long)o->uses);
	else
		reason[0] = '\0';
	if (!o->ttl && o->expires) {
		char when[32];
		size_t n = strlen(reason);

		policy_time_format(o->expires, when, sizeof when);
		snprintf(reason + n, sizeof reason - n, "%suntil %s", n ? ", " : "", when);
	}
	if (o->pid) {
		size_t n = strlen(reason);
		snprintf(reason + n, sizeof reason - n, "%swhile pid %lld", n ? ", " : "",
			 (long long)o->pid);
	}
	if (!rc)
		rc = store_note(st, "grant", agent, ref, reason);
	return rc;
}

int store_grant_with(struct store *st, const char *agent, const char *provider,
		     const char *name, const struct store_grant_opts *o)
{
	int rc;

	if (store_name_ok(agent, POLICY_NAME_AGENT) || store_name_ok(provider, POLICY_NAME_PROVIDER) ||
	    store_name_ok(name, POLICY_NAME_SECRET))
		return -EINVAL;
	if (o->ttl < 0 || o->uses < 0 || o->pid < 0 || o->expires < 0)
		return store_fail(-EINVAL, "ttl, uses, pid and expiry must not be negative");
	if ((rc = store_tx_start(st)))
		return rc;
	return store_tx_end(st, store_grant_locked(st, agent, provider, name, o));
}

int store_grant(struct store *st, const char *agent, const char *provider,
		const char *name, int64_t ttl, int64_t uses)
{
	struct store_grant_opts o = { .ttl = ttl, .uses = uses };

	return store_grant_with(st, agent, provider, name, &o);
}

int store_revoke(struct store *st, const char *agent, const char *provider, const char *name)
{
	char ref[2 * POLICY_NAME_MAX + 2];
	int64_t aid, prov, sid;
	struct sql_stmt *s;
	int rc;

	if (store_name_ok(agent, POLICY_NAME_AGENT) || store_name_ok(provider, POLICY_NAME_PROVIDER) ||
	    store_name_ok(name, POLICY_NAME_SECRET))
		return -EINVAL;
	snprintf(ref, sizeof ref, "%s/%s", provider, name);
	if ((rc = store_tx_start(st)))
		return rc;
	if ((rc = store_agent_id(st, agent, &aid)) || (rc = store_secret_id(st, provider, name, &prov, &sid)))
		return store_tx_end(st, rc);
	s = store_stmt(st, "UPDATE grants SET revoked = ?3 WHERE agent_id = ?1 AND secret_id = ?2"
			   " AND revoked = 0");
	if (!s)
		return store_tx_end(st, -EIO);
	sql_bind_int64(s, 1, aid);
	sql_bind_int64(s, 2, sid);
	sql_bind_int64(s, 3, store_now());
	rc = store_step_done(st, s, "cannot write the store");
	if (!rc && sql_changes(st->db) == 0)
		rc = store_fail(-ENOENT, "agent '%s' has no live grant of '%s'", agent, ref);
	if (!rc)
		rc = store_note(st, "revoke", agent, ref, NULL);
	return store_tx_end(st, rc);
}

struct grant_walk {
	struct store *st;
	store_grant_fn fn;
	void *ctx;
	int64_t now;
};

static int grant_row(void *arg, struct sql_stmt *s)
{
	struct grant_walk *w = arg;
	struct store_facts f;
	int rc;
	struct store_grant_row row = {
		.agent = sql_column_text(s, 0),
		.provider = sql_column_text(s, 1),
		.name = sql_column_text(s, 2),
		.created = sql_column_int64(s, 3),
		.expires = sql_column_int64(s, 4),
		.max_uses = sql_column_int64(s, 5),
		.uses = sql_column_int64(s, 6),
		.revoked = sql_column_int64(s, 7),
		.pid = sql_column_int64(s, 8),
	};
	if (row.pid)
		row.task_ended = !store_task_alive((pid_t)row.pid, (uint64_t)sql_column_int64(s, 9));
	/* effective: the same facts and rules as an open by the agent (resolve.c, policy) */
	if ((rc = store_facts_load_locked(w->st, row.agent, row.provider, row.name, &f)))
		return rc;
	row.effective = policy_decide_agent(&f.p, w->now);
	return w->fn(w->ctx, &row);
}

int store_grant_list(struct store *st, const char *agent, store_grant_fn fn, void *ctx)
{
	struct grant_walk w = { st, fn, ctx, store_now() };
	int64_t aid = 0;
	bool began;
	int rc;

	store_lock(st);
	/* one snapshot: each row's effective state agrees with the row */
	began = store_read_begin(st, &rc);
	if (!rc)
		rc = agent ? store_agent_id(st, agent, &aid) : 0;
	if (!rc)
		rc = store_walk(st, "SELECT a.name, p.name, s.name, g.created, g.expires, g.max_uses,"
				" g.uses, g.revoked, g.pid, g.pid_start FROM grants g JOIN agents a ON a.id = g.agent_id"
				" JOIN secrets s ON s.id = g.secret_id JOIN providers p ON p.id = s.provider_id"
				" WHERE a.ws_id = ?1 AND (?2 = 0 OR a.id = ?2) ORDER BY a.name, p.name, s.name",
				st->ws_id, aid, grant_row, &w);
	store_read_end(st, began);
	store_unlock(st);
	return rc;
}

/* ---- what a removal drops ----------------------------------------------- */

/* count(*) of `sql` with ?1 = id, ?2 = now. */
static int count_of(struct store *st, const char *sql, int64_t id, int64_t now, int64_t *n)
{
	struct sql_stmt *s = store_stmt(st, sql);
	int rc;

	if (!s)
		return -EIO;
	sql_bind_int64(s, 1, id);
	sql_bind_int64(s, 2, now);
	rc = sql_step(s);
	*n = rc == SQL_ROW ? sql_column_int64(s, 0) : 0;
	sql_reset(s);
	return rc == SQL_ROW ? 0 : store_fail_db(st, rc, "cannot read the store");
}

/* A grant that still lets its agent read: what an operator would miss. */
#define LIVE_GRANT " g.revoked = 0 AND (g.expires = 0 OR g.expires > ?2)" \
		   " AND (g.max_uses = 0 OR g.uses < g.max_uses)"

int store_rm_drops(struct store *st, enum store_object kind, const char *name,
		   struct store_drops *out)
{
	char provider[POLICY_NAME_MAX + 1], sname[POLICY_NAME_MAX + 1];
	int64_t id = 0, prov, now = store_now();
	const char *grants = NULL, *assignments = NULL, *attachments = NULL;
	bool began;
	int rc = 0;

	memset(out, 0, sizeof *out);
	if (kind == STORE_OBJ_SECRET) {
		if (policy_ref_parse(name, false, provider, sname))
			return store_fail(-EINVAL, "invalid secret '%s': use PROVIDER/NAME", name);
	} else if (store_name_ok(name, kind == STORE_OBJ_AGENT ? POLICY_NAME_AGENT :
				 kind == STORE_OBJ_PROJECT ? POLICY_NAME_PROJECT : POLICY_NAME_PROVIDER)) {
		return -EINVAL;
	}
	store_lock(st);
	began = store_read_begin(st, &rc);
	if (rc) {
		store_unlock(st);
		return rc;
	}
	switch (kind) {
	case STORE_OBJ_SECRET:
		rc = store_secret_id(st, provider, sname, &prov, &id);
		grants = "SELECT count(*) FROM grants g WHERE g.secret_id = ?1 AND" LIVE_GRANT;
		attachments = "SELECT count(*) FROM attachments WHERE secret_id = ?1 AND ?2 = ?2";
		break;
	case STORE_OBJ_AGENT:
		rc = store_agent_id(st, name, &id);
		grants = "SELECT count(*) FROM grants g WHERE g.agent_id = ?1 AND" LIVE_GRANT;
		assignments = "SELECT count(*) FROM assignments WHERE agent_id = ?1 AND ?2 = ?2";
		break;
	case STORE_OBJ_PROJECT:
		rc = store_project_id(st, name, &id);
		assignments = "SELECT count(*) FROM assignments WHERE project_id = ?1 AND ?2 = ?2";
		attachments = "SELECT count(*) FROM attachments WHERE project_id = ?1 AND ?2 = ?2";
		break;
	case STORE_OBJ_PROVIDER:
		rc = store_provider_id(st, name, &id);
		grants = "SELECT count(*) FROM grants g JOIN secrets s ON s.id = g.secret_id"
			 " WHERE s.provider_id = ?1 AND" LIVE_GRANT;
		attachments = "SELECT count(*) FROM attachments WHERE provider_id = ?1 AND ?2 = ?2";
		break;
	}
	if (!rc && grants)
		rc = count_of(st, grants, id, now, &out->grants);
	if (!rc && assignments)
		rc = count_of(st, assignments, id, now, &out->assignments);
	if (!rc && attachments)
		rc = count_of(st, attachments, id, now, &out->attachments);
	store_read_end(st, began);
	store_unlock(st);
	return rc;
}

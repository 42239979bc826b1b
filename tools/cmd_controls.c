/*
 * cmd_controls.c - the shadm commands of ScopeHold's access controls
 * beyond plain grants: access requests (`requests`, `approve`,
 * `reject`).
 *
 * A request is left by the mount when a matched agent opens a candidate
 * it holds no live grant for; these commands only read and close them.
 * `approve` grants with the same limits `grant` takes, in the same
 * transaction that closes the request.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/cmd.h"

/* ---- requests ------------------------------------------------------------------------------ */

static int request_row(void *ctx, const struct store_request_row *r)
{
	struct cmd_ctx *c = ctx;
	char ref[2 * POLICY_NAME_MAX + 2], first[32], last[32], count[24], uid[24], pid[24];

	snprintf(ref, sizeof(ref), "%s/%s", r->provider, r->name);
	if (c->json) {
		cmd_json_print(json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:I,s:I,s:I,s:o,s:s?,s:o,s:s?}",
					 "agent", r->agent, "provider", r->provider, "name", r->name,
					 "state", r->state, "first", cmd_json_time(r->first),
					 "last", cmd_json_time(r->last), "count", (json_int_t)r->count,
					 "uid", (json_int_t)r->uid, "gid", (json_int_t)r->gid,
					 "pid", r->pid >= 0 ? json_integer((json_int_t)r->pid) : json_null(),
					 "exe", r->exe && r->exe[0] ? r->exe : NULL,
					 "decided", cmd_json_time(r->decided),
					 "actor", r->actor && r->actor[0] ? r->actor : NULL));
		return 0;
	}
	cmd_time(r->first, "-", first, sizeof(first));
	cmd_time(r->last, "-", last, sizeof(last));
	cmd_table_add(c->table, r->agent, ref, r->state, cmd_i64(r->count, count, sizeof(count)),
		      first, last, cmd_i64(r->uid, uid, sizeof(uid)),
		      r->pid >= 0 ? cmd_i64(r->pid, pid, sizeof(pid)) : NULL,
		      r->exe && r->exe[0] ? r->exe : NULL);
	return 0;
}

int cmd_requests(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { NULL };
	bool all = false;
	const struct cmd_opt opts[] = {
		{ "--all", NULL, &all },
		{ NULL, NULL, NULL },
	};
	const char *p[1];
	int rc;

	CMD_PARSE(c, "requests", argc, argv, opts, pos, 0, p);
	if ((rc = cmd_open(c)))
		return rc;
	if (!c->json)
		c->table = cmd_table_new(9, "AGENT", "SECRET", "STATE", "COUNT", "FIRST", "LAST",
					 "UID", "PID", "EXE");
	rc = store_request_list(c->st, all, request_row, c);
	return cmd_list_end(c, rc);
}

/* ---- approve / reject ----------------------------------------------------------------------- */

int cmd_decide(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "AGENT", "PROVIDER/NAME", NULL };
	bool approve = strcmp(argv[0], "approve") == 0;
	const char *ttl_s = NULL, *uses_s = NULL, *pid_s = NULL;
	const struct cmd_opt approve_opts[] = {
		{ "--ttl", &ttl_s, NULL },
		{ "--uses", &uses_s, NULL },
		{ "--while-pid", &pid_s, NULL },
		{ NULL, NULL, NULL },
	};
	char provider[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1];
	struct store_grant_opts g = { 0 };
	uint64_t uses = 0;
	const char *p[2];
	int rc;

	CMD_PARSE(c, argv[0], argc, argv, approve ? approve_opts : NULL, pos, 2, p);
	if (uses_s && (rc = cmd_number("--uses", uses_s, INT64_MAX, true, &uses)))
		return rc;
	if (cmd_check_name(p[0], POLICY_NAME_AGENT) || cmd_check_ref(p[1], false, provider, name))
		return CMD_EXIT_FAIL;
	if (ttl_s && cmd_check_duration(ttl_s, &g.ttl))
		return CMD_EXIT_FAIL;
	if (pid_s && (rc = cmd_task(pid_s, &g)))
		return rc;
	g.uses = (int64_t)uses;
	if ((rc = cmd_open(c)))
		return rc;
	rc = store_request_decide(c->st, p[0], provider, name, approve, &g);
	if (rc < 0)
		return cmd_store_fail(rc);
	return cmd_done(c, json_pack("{s:b,s:s,s:s,s:s,s:s}", "ok", 1, "action", argv[0],
				     "agent", p[0], "provider", provider, "name", name),
			"%s the request of %s for %s/%s", approve ? "approved" : "rejected",
			p[0], provider, name);
}

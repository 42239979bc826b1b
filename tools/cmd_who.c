/*
 * cmd_who.c - `shadm who-can PROVIDER/NAME`: which agents see a secret
 * through the mount and which could resolve it right now, with each
 * one's grant limit and uses left.
 *
 * Nothing is decided here. The store gathers, per agent, the very facts
 * an open of AGENT/PROVIDER/NAME is decided on and asks
 * policy_decide_agent() - the mount's rules for a caller that matches the
 * agent - so this answer cannot drift from what the mount does. What it
 * leaves out is said in the output: the caller's process facts (an open
 * from another uid or binary is refused whatever this says) and --rate,
 * which only the running mount counts.
 */
#include <string.h>

#include "tools/cmd.h"

struct who_list {
	struct cmd_ctx *c;
	int64_t now;
	int shown;
};

/* "unlimited", the number left, or "-" without a grant. */
static const char *who_uses_left(const struct policy_grant *g, char *buf, size_t len)
{
	if (!g->exists)
		return "-";
	if (!g->max_uses)
		return "unlimited";
	return cmd_i64(g->uses >= g->max_uses ? 0 : g->max_uses - g->uses, buf, len);
}

/* The grant's time limit: its --ttl end, its process, "never", or "-" without one. */
static const char *who_limit(const struct policy_grant *g, char *buf, size_t len)
{
	char t[32];

	if (!g->exists)
		return "-";
	cmd_time(g->expires, "never", t, sizeof(t));
	if (g->pid && g->expires)
		snprintf(buf, len, "%s or pid %lld", t, (long long)g->pid);
	else if (g->pid)
		snprintf(buf, len, "pid %lld", (long long)g->pid);
	else
		snprintf(buf, len, "%s", t);
	return buf;
}

static int who_row(void *ctx, const struct store_access_row *row)
{
	struct who_list *l = ctx;
	const struct policy_facts *f = row->facts;
	bool sees = policy_reason_visible(row->reason);
	bool now = row->reason == POLICY_ALLOW;
	char uid[24], limit[64], left[24];

	/* agents that neither see it nor hold a grant of it have nothing to say */
	if (!sees && !f->grant.exists)
		return 0;
	l->shown++;
	if (l->c->json) {
		json_t *grant = json_null();

		if (f->grant.exists)
			grant = json_pack("{s:o,s:I,s:I,s:o,s:b,s:o}",
					  "expires", cmd_json_time(f->grant.expires),
					  "max_uses", (json_int_t)f->grant.max_uses,
					  "uses", (json_int_t)f->grant.uses,
					  "uses_left", f->grant.max_uses ?
					  json_integer(f->grant.uses >= f->grant.max_uses ? 0 :
						       f->grant.max_uses - f->grant.uses) : json_null(),
					  "revoked", f->grant.revoked,
					  "while_pid", f->grant.pid ? json_integer(f->grant.pid) : json_null());
		cmd_json_print(json_pack("{s:s,s:s,s:I,s:b,s:b,s:b,s:s,s:s,s:o,s:b}",
					 "agent", row->agent, "kind", row->human ? "human" : "agent",
					 "uid", (json_int_t)f->agent.uid, "enabled", f->agent.enabled,
					 "sees", sees, "resolves", now,
					 "reason", policy_reason_name(row->reason),
					 "text", policy_reason_text(row->reason),
					 "grant", grant, "rate_limited", f->agent.rate_max > 0));
		return 0;
	}
	cmd_table_add(l->c->table, row->agent, cmd_i64((int64_t)f->agent.uid, uid, sizeof(uid)),
		      sees ? "yes" : "no", now ? "yes" : "no", who_limit(&f->grant, limit, sizeof(limit)),
		      who_uses_left(&f->grant, left, sizeof(left)), policy_reason_name(row->reason));
	return 0;
}

int cmd_who_can(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "PROVIDER/NAME", NULL };
	char provider[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1];
	struct who_list l = { c, 0, 0 };
	const char *p[1];
	int rc;

	CMD_PARSE(c, "who-can", argc, argv, NULL, pos, 1, p);
	if (cmd_check_ref(p[0], false, provider, name))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_open(c)))
		return rc;
	if (!c->json)
		c->table = cmd_table_new(7, "AGENT", "UID", "SEES", "RESOLVES", "GRANT-LIMIT",
					 "USES-LEFT", "REASON");
	rc = store_access_list(c->st, provider, name, who_row, &l);
	return cmd_list_end(c, rc);
}

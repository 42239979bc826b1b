/*
 * cmd_agent.c - the shadm commands about who may read what: agents and
 * their process bindings, assignment to projects, direct grants, and
 * `check`, the dry run of the mount's decision.
 *
 * `check` builds the same struct policy_caller the mount builds from a
 * FUSE request, but from flags, and asks the same policy_decide(); it
 * reads facts only, so it consumes no use and records no event.
 *
 * An executable is bound by its canonical path (realpath), because that
 * is what the mount reads from /proc/PID/exe: a binding to the symlink
 * /usr/bin/python3 would refuse the very process it names, which runs as
 * /usr/bin/python3.11. `check` resolves --exe (and the agent's own bound
 * path) the same way, so it cannot say allow where the mount refuses.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "tools/cmd.h"

#define AGENT_ID_MAX 4294967294ULL   /* (uid_t)-1 means "no change" to the kernel */

/* ---- agent add ------------------------------------------------------------------------- */

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* "100/1m" from a count and a window in seconds (the largest whole unit). */
const char *cmd_rate_format(int64_t max, int64_t window, char *buf, size_t len)
{
	static const struct { int64_t secs; char unit; } units[] = {
		{ 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' },
	};

	if (max <= 0) {
		snprintf(buf, len, "off");
		return buf;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (window % units[i].secs == 0) {
			snprintf(buf, len, "%lld/%lld%c", (long long)max, (long long)(window / units[i].secs),
				 units[i].unit);
			break;
		}
	}
	return buf;
}

/* --rate N/DURATION or off: 0, or 1 after printing. */
static int rate_arg(const char *s, int64_t *max, int64_t *window)
{
	if (strcmp(s, "off") == 0) {
		*max = *window = 0;
		return 0;
	}
	if (policy_rate_parse(s, max, window))
		return cmd_fail("invalid rate '%s': use N/DURATION with N from 1 to 1000000000 "
				"(for example 100/1m), or off", s);
	return 0;
}

/* --exe PATH -> the canonical path the mount will see: 0, or an exit status after printing. */
static int exe_arg(const char *exe, char out[PATH_MAX])
{
	struct stat sb;

	/* The mount compares /proc/PID/exe, which is always absolute and resolved. */
	if (exe[0] != '/')
		return cmd_fail("invalid executable '%s': use an absolute path", exe);
	if (strlen(exe) >= PATH_MAX)
		return cmd_fail("invalid executable '%s': path too long", exe);
	if (!realpath(exe, out))
		return cmd_fail("cannot resolve executable '%s': %s", exe, cmd_strerror(errno));
	if (stat(out, &sb) < 0 || !S_ISREG(sb.st_mode))
		return cmd_fail("invalid executable '%s': not a regular file", exe);
	return 0;
}

/* --exe-sha256 HEX: 0, or an exit status after printing. */
static int sha_arg(const char *s, uint8_t out[POLICY_SHA256_BYTES])
{
	if (strlen(s) != 2 * POLICY_SHA256_BYTES)
		return cmd_fail("invalid sha256 '%s': use 64 hex digits", s);
	for (int i = 0; i < POLICY_SHA256_BYTES; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return cmd_fail("invalid sha256 '%s': use 64 hex digits", s);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* --cgroup PATH (a binding, "/a/" for a subtree): 0, or an exit status after printing. */
static int cgroup_arg(const char *s)
{
	if (policy_cgroup_check(s, true))
		return cmd_fail("invalid cgroup '%s': " POLICY_CGROUP_HINT, s);
	return 0;
}

/*
 * The one warning an agent's final bindings deserve, if any. An
 * interpreter admits every script its uid runs (a cgroup narrows that to
 * one service or container); a path alone is weak, as any process of the
 * uid can bind-mount another binary over that path in a user and mount
 * namespace of its own.
 */
static void agent_warn(const struct store_agent_row *a)
{
	if (!a->exe)
		return;
	if (policy_exe_interpreter(a->exe) && !a->cgroup)
		fprintf(stderr, "shadm: warning: agent '%s' is bound to the interpreter %s, which admits "
			"every script uid %llu runs with it; bind a --cgroup or give the agent a uid of "
			"its own\n", a->name, cmd_esc(a->exe), (unsigned long long)a->uid);
	else if (!a->has_exe_sha256)
		fprintf(stderr, "shadm: warning: agent '%s' is bound to %s by path only; "
			"add --exe-sha256 so a different binary at that path is refused\n", a->name, cmd_esc(a->exe));
}

static int agent_add(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "NAME", NULL };
	const char *uid_s = NULL, *gid_s = NULL, *exe = NULL, *sha_s = NULL, *rate_s = NULL;
	const char *cgroup = NULL;
	bool human = false;
	const struct cmd_opt opts[] = {
		{ "--uid", &uid_s, NULL },
		{ "--gid", &gid_s, NULL },
		{ "--exe", &exe, NULL },
		{ "--exe-sha256", &sha_s, NULL },
		{ "--cgroup", &cgroup, NULL },
		{ "--human", NULL, &human },
		{ "--rate", &rate_s, NULL },
		{ NULL, NULL, NULL },
	};
	struct store_agent_row a;
	uint64_t uid = 0, gid = 0;
	char canon[PATH_MAX], resolved[PATH_MAX + 64] = "";
	const char *p[1];
	int rc;

	CMD_PARSE(c, "agent add", argc, argv, opts, pos, 1, p);
	if (!uid_s)
		return cmd_usage("agent add needs --uid");
	if ((rc = cmd_number("--uid", uid_s, AGENT_ID_MAX, false, &uid)))
		return rc;
	if (gid_s && (rc = cmd_number("--gid", gid_s, AGENT_ID_MAX, false, &gid)))
		return rc;
	if (cmd_check_name(p[0], POLICY_NAME_AGENT))
		return CMD_EXIT_FAIL;
	memset(&a, 0, sizeof(a));
	if (rate_s && rate_arg(rate_s, &a.rate_max, &a.rate_window))
		return CMD_EXIT_FAIL;
	if (exe) {
		if ((rc = exe_arg(exe, canon)))
			return rc;
		a.exe = canon;
		if (strcmp(exe, canon) != 0)
			snprintf(resolved, sizeof(resolved), "; executable %s resolved to %s", exe, canon);
	}
	if (sha_s) {
		if ((rc = sha_arg(sha_s, a.exe_sha256)))
			return rc;
		a.has_exe_sha256 = true;
	}
	if (cgroup && (rc = cgroup_arg(cgroup)))
		return rc;
	a.cgroup = cgroup;
	a.name = p[0];
	a.human = human;
	a.enabled = true;
	a.uid = (uid_t)uid;
	a.has_gid = gid_s != NULL;
	a.gid = (gid_t)gid;
	if ((rc = cmd_open(c)))
		return rc;
	rc = store_agent_add(c->st, &a);
	if (rc < 0)
		return cmd_store_fail(rc);
	agent_warn(&a);
	return cmd_done(c, json_pack("{s:b,s:s,s:s,s:I,s:s?,s:s?}", "ok", 1, "action", "agent-add",
				     "agent", p[0], "uid", (json_int_t)uid, "exe", a.exe,
				     "cgroup", a.cgroup),
			"added agent %s (uid %llu)%s", p[0], (unsigned long long)uid, resolved);
}

/* ---- agent list / show ------------------------------------------------------------------- */

static json_t *agent_json(const struct store_agent_row *row)
{
	char hex[2 * POLICY_SHA256_BYTES + 1], rate[48];

	if (row->has_exe_sha256)
		cmd_hex(row->exe_sha256, POLICY_SHA256_BYTES, hex);
	cmd_rate_format(row->rate_max, row->rate_window, rate, sizeof(rate));
	return json_pack("{s:s,s:s,s:b,s:I,s:o,s:s?,s:s?,s:s?,s:o,s:s?}",
			 "name", row->name, "kind", row->human ? "human" : "agent",
			 "enabled", row->enabled, "uid", (json_int_t)row->uid,
			 "gid", row->has_gid ? json_integer((json_int_t)row->gid) : json_null(),
			 "exe", row->exe && row->exe[0] ? row->exe : NULL,
			 "exe_sha256", row->has_exe_sha256 ? hex : NULL,
			 "cgroup", row->cgroup,
			 "created", cmd_json_time(row->created),
			 "rate", row->rate_max ? rate : NULL);
}

static int agent_row(void *ctx, const struct store_agent_row *row)
{
	struct cmd_ctx *c = ctx;
	char uid[24], gid[24], t[32], hex[2 * POLICY_SHA256_BYTES + 1] = "", rate[48];

	if (c->json) {
		cmd_json_print(agent_json(row));
		return 0;
	}
	if (row->has_exe_sha256) {
		cmd_hex(row->exe_sha256, POLICY_SHA256_BYTES, hex);
		hex[12] = '\0';     /* enough to tell binaries apart at a glance */
	}
	cmd_time(row->created, "-", t, sizeof(t));
	cmd_table_add(c->table, row->name, row->human ? "human" : "agent",
		      row->enabled ? "enabled" : "disabled",
		      cmd_i64((int64_t)row->uid, uid, sizeof(uid)),
		      row->has_gid ? cmd_i64((int64_t)row->gid, gid, sizeof(gid)) : NULL,
		      row->exe, hex, row->cgroup, t,
		      row->rate_max ? cmd_rate_format(row->rate_max, row->rate_window, rate, sizeof(rate)) : NULL);
	return 0;
}

static int agent_list(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { NULL };
	const char *p[1];
	int rc;

	CMD_PARSE(c, "agent list", argc, argv, NULL, pos, 0, p);
	if ((rc = cmd_open(c)))
		return rc;
	if (!c->json)
		c->table = cmd_table_new(10, "NAME", "KIND", "STATE", "UID", "GID", "EXE",
					 "SHA256", "CGROUP", "CREATED", "RATE");
	rc = store_agent_list(c->st, agent_row, c);
	return cmd_list_end(c, rc);
}

/* Grant state in one word, as `grants` and `agent show` print it. */
static const char *grant_state(const struct store_grant_row *g, int64_t now)
{
	if (g->revoked)
		return "revoked";
	if (g->expires && g->expires <= now)
		return "expired";
	if (g->max_uses && g->uses >= g->max_uses)
		return "used-up";
	if (g->pid && g->task_ended)
		return "task-ended";
	return "live";
}

static json_t *grant_json(const struct store_grant_row *g, int64_t now)
{
	return json_pack("{s:s,s:s,s:s,s:o,s:o,s:I,s:I,s:o,s:s,s:o}",
			 "agent", g->agent, "provider", g->provider, "name", g->name,
			 "created", cmd_json_time(g->created), "expires", cmd_json_time(g->expires),
			 "max_uses", (json_int_t)g->max_uses, "uses", (json_int_t)g->uses,
			 "revoked", cmd_json_time(g->revoked), "state", grant_state(g, now),
			 "while_pid", g->pid ? json_integer((json_int_t)g->pid) : json_null());
}

/* One table row of a grant; with_agent adds the AGENT column. */
static void grant_table_row(struct cmd_table *t, const struct store_grant_row *g,
			    bool with_agent, int64_t now)
{
	char ref[2 * POLICY_NAME_MAX + 2], cr[32], ex[64], uses[48];

	snprintf(ref, sizeof(ref), "%s/%s", g->provider, g->name);
	cmd_time(g->created, "-", cr, sizeof(cr));
	cmd_time(g->expires, "never", ex, sizeof(ex));
	if (g->max_uses)
		snprintf(uses, sizeof(uses), "%lld/%lld", (long long)g->uses, (long long)g->max_uses);
	else
		snprintf(uses, sizeof(uses), "%lld/unlimited", (long long)g->uses);
	if (g->pid) {
		/* a task grant's time limit is its process */
		size_t n = strlen(ex);
		snprintf(ex + n, sizeof(ex) - n, "%spid %lld", strcmp(ex, "never") ? " or " : "",
			 (long long)g->pid);
		if (!strncmp(ex, "never", 5))
			memmove(ex, ex + 5, strlen(ex + 5) + 1);
	}
	if (with_agent)
		cmd_table_add(t, g->agent, ref, cr, ex, uses, grant_state(g, now));
	else
		cmd_table_add(t, ref, cr, ex, uses, grant_state(g, now));
}

struct agent_show {
	struct cmd_ctx *c;
	json_t *agent, *projects, *grants;
	struct cmd_table *gt;
	int64_t now;
};

static int agent_show_get(void *ctx, const struct store_agent_row *row)
{
	struct agent_show *s = ctx;

	s->agent = agent_json(row);
	return 0;
}

static int agent_show_project(void *ctx, const char *agent, const char *project)
{
	struct agent_show *s = ctx;

	(void)agent;
	json_array_append_new(s->projects, json_string(project));
	return 0;
}

static int agent_show_grant(void *ctx, const struct store_grant_row *g)
{
	struct agent_show *s = ctx;

	json_array_append_new(s->grants, grant_json(g, s->now));
	if (s->gt)
		grant_table_row(s->gt, g, false, s->now);
	return 0;
}

static void show_field(const char *label, const char *value)
{
	printf("%-10s%s\n", label, value && value[0] ? cmd_esc(value) : "-");
}

static int agent_show(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "NAME", NULL };
	struct agent_show s;
	const char *p[1];
	json_t *v;
	size_t i;
	int rc;

	CMD_PARSE(c, "agent show", argc, argv, NULL, pos, 1, p);
	if (cmd_check_name(p[0], POLICY_NAME_AGENT))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_open(c)))
		return rc;
	memset(&s, 0, sizeof(s));
	s.c = c;
	s.now = (int64_t)time(NULL);
	s.projects = json_array();
	s.grants = json_array();
	if (!s.projects || !s.grants)
		cmd_oom();
	if (!c->json)
		s.gt = cmd_table_new(5, "SECRET", "CREATED", "EXPIRES", "USES", "STATE");
	rc = store_agent_get(c->st, p[0], agent_show_get, &s);
	if (rc >= 0)
		rc = store_assignment_list(c->st, p[0], agent_show_project, &s);
	if (rc >= 0)
		rc = store_grant_list(c->st, p[0], agent_show_grant, &s);
	if (rc >= 0 && !s.agent)
		cmd_oom();
	if (rc < 0) {
		json_decref(s.agent);
		json_decref(s.projects);
		json_decref(s.grants);
		cmd_table_free(s.gt);
		return cmd_store_fail(rc);
	}
	if (c->json) {
		json_object_set_new(s.agent, "projects", s.projects);
		json_object_set_new(s.agent, "grants", s.grants);
		cmd_json_print(s.agent);
		return CMD_EXIT_OK;
	}
	show_field("agent:", json_string_value(json_object_get(s.agent, "name")));
	show_field("kind:", json_string_value(json_object_get(s.agent, "kind")));
	show_field("state:", json_is_true(json_object_get(s.agent, "enabled")) ? "enabled" : "disabled");
	printf("%-10s%lld\n", "uid:", (long long)json_integer_value(json_object_get(s.agent, "uid")));
	v = json_object_get(s.agent, "gid");
	if (json_is_integer(v))
		printf("%-10s%lld\n", "gid:", (long long)json_integer_value(v));
	else
		show_field("gid:", NULL);
	show_field("exe:", json_string_value(json_object_get(s.agent, "exe")));
	show_field("sha256:", json_string_value(json_object_get(s.agent, "exe_sha256")));
	show_field("cgroup:", json_string_value(json_object_get(s.agent, "cgroup")));
	show_field("created:", json_string_value(json_object_get(s.agent, "created")));
	show_field("rate:", json_string_value(json_object_get(s.agent, "rate")));
	printf("%-10s", "projects:");
	if (json_array_size(s.projects) == 0)
		fputs("-", stdout);
	json_array_foreach(s.projects, i, v) {
		printf("%s%s", i ? ", " : "", cmd_esc(json_string_value(v)));
	}
	putchar('\n');
	if (json_array_size(s.grants) == 0) {
		show_field("grants:", NULL);
		cmd_table_free(s.gt);
	} else {
		puts("grants:");
		cmd_table_print(s.gt);
	}
	json_decref(s.agent);
	json_decref(s.projects);
	json_decref(s.grants);
	return CMD_EXIT_OK;
}

/* ---- agent rm / enable / disable ------------------------------------------------------------ */

static int agent_change(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "NAME", NULL };
	const char *sub = argv[0], *done;
	bool rm = strcmp(sub, "rm") == 0, yes = false;
	const struct cmd_opt rm_opts[] = { { "--yes", NULL, &yes }, { NULL, NULL, NULL } };
	char what[32];
	const char *p[1];
	int rc;

	snprintf(what, sizeof(what), "agent %s", sub);
	CMD_PARSE(c, what, argc, argv, rm ? rm_opts : NULL, pos, 1, p);
	if (cmd_check_name(p[0], POLICY_NAME_AGENT))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_open(c)))
		return rc;
	if (rm) {
		if ((rc = cmd_confirm_drops(c, "agent rm", STORE_OBJ_AGENT, p[0], yes)))
			return rc;
		rc = store_agent_rm(c->st, p[0]);
		done = "removed";
	} else {
		bool enable = strcmp(sub, "enable") == 0;

		rc = store_agent_enable(c->st, p[0], enable);
		done = enable ? "enabled" : "disabled";
	}
	if (rc < 0)
		return cmd_store_fail(rc);
	snprintf(what, sizeof(what), "agent-%s", sub);
	return cmd_done(c, json_pack("{s:b,s:s,s:s}", "ok", 1, "action", what, "agent", p[0]),
			"%s agent %s", done, p[0]);
}

/* ---- agent set ------------------------------------------------------------------------------ */

/* The agent as it stands after a change, for the warnings. */
struct agent_after {
	struct store_agent_row row;
	char name[POLICY_NAME_MAX + 1];
	char exe[PATH_MAX];
	char cgroup[POLICY_CGROUP_MAX];
	bool found;
};

static int agent_after_get(void *ctx, const struct store_agent_row *row)
{
	struct agent_after *a = ctx;

	a->row = *row;
	snprintf(a->name, sizeof(a->name), "%s", row->name);
	a->row.name = a->name;
	if (row->exe) {
		snprintf(a->exe, sizeof(a->exe), "%s", row->exe);
		a->row.exe = a->exe;
	}
	if (row->cgroup) {
		snprintf(a->cgroup, sizeof(a->cgroup), "%s", row->cgroup);
		a->row.cgroup = a->cgroup;
	}
	a->found = true;
	return 0;
}

/* Append ", LABEL VALUE" (the first without the comma) to a description of the change. */
static void said(char *buf, size_t len, const char *label, const char *value)
{
	size_t n = strlen(buf);

	if (n < len)
		snprintf(buf + n, len - n, "%s%s %s", n ? ", " : "", label, value);
}

/*
 * Change an agent's bindings (and/or its rate) in place: grants and
 * assignments stay, so an upgraded binary needs only its new hash. The
 * store records one `agent-set` event naming the changed fields; with
 * --rate as well, both changes commit together or not at all.
 */
static int agent_set(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "NAME", NULL };
	const char *rate_s = NULL, *uid_s = NULL, *gid_s = NULL, *exe = NULL, *sha_s = NULL;
	const char *cgroup = NULL;
	bool no_gid = false, no_exe = false, no_sha = false, no_cgroup = false;
	bool human = false, agent = false;
	const struct cmd_opt opts[] = {
		{ "--uid", &uid_s, NULL },
		{ "--gid", &gid_s, NULL },
		{ "--no-gid", NULL, &no_gid },
		{ "--exe", &exe, NULL },
		{ "--no-exe", NULL, &no_exe },
		{ "--exe-sha256", &sha_s, NULL },
		{ "--no-exe-sha256", NULL, &no_sha },
		{ "--cgroup", &cgroup, NULL },
		{ "--no-cgroup", NULL, &no_cgroup },
		{ "--human", NULL, &human },
		{ "--agent", NULL, &agent },
		{ "--rate", &rate_s, NULL },
		{ NULL, NULL, NULL },
	};
	struct store_agent_change ch;
	struct agent_after after;
	char rate[48], canon[PATH_MAX], text[2 * PATH_MAX + 256] = "", num[24];
	int64_t max = 0, window = 0;
	uint64_t uid = 0, gid = 0;
	const char *p[1];
	json_t *changed;
	int rc;

	CMD_PARSE(c, "agent set", argc, argv, opts, pos, 1, p);
	if ((gid_s && no_gid) || (exe && no_exe) || (sha_s && no_sha) || (cgroup && no_cgroup) ||
	    (human && agent))
		return cmd_usage("agent set: give a binding or its --no- option, not both "
				 "(and --human or --agent, not both)");
	memset(&ch, 0, sizeof(ch));
	ch.set_uid = uid_s != NULL;
	ch.set_gid = gid_s || no_gid;
	ch.set_exe = exe || no_exe;
	ch.set_exe_sha256 = sha_s || no_sha;
	ch.set_cgroup = cgroup || no_cgroup;
	ch.set_human = human || agent;
	bool bindings = ch.set_uid || ch.set_gid || ch.set_exe || ch.set_exe_sha256 || ch.set_cgroup ||
			ch.set_human;
	if (!bindings && !rate_s)
		return cmd_usage("agent set needs --uid, --gid, --no-gid, --exe, --no-exe, --exe-sha256, "
				 "--no-exe-sha256, --cgroup, --no-cgroup, --human, --agent or --rate");
	if (uid_s && (rc = cmd_number("--uid", uid_s, AGENT_ID_MAX, false, &uid)))
		return rc;
	if (gid_s && (rc = cmd_number("--gid", gid_s, AGENT_ID_MAX, false, &gid)))
		return rc;
	if (cmd_check_name(p[0], POLICY_NAME_AGENT) || (rate_s && rate_arg(rate_s, &max, &window)))
		return CMD_EXIT_FAIL;
	if (exe && (rc = exe_arg(exe, canon)))
		return rc;
	if (sha_s && (rc = sha_arg(sha_s, ch.exe_sha256)))
		return rc;
	if (cgroup && (rc = cgroup_arg(cgroup)))
		return rc;
	ch.uid = (uid_t)uid;
	ch.has_gid = gid_s != NULL;
	ch.gid = (gid_t)gid;
	ch.exe = exe ? canon : NULL;
	ch.has_exe_sha256 = sha_s != NULL;
	ch.cgroup = cgroup;
	ch.human = human;
	if ((rc = cmd_open(c)))
		return rc;
	if (!bindings) {
		if ((rc = store_agent_rate(c->st, p[0], max, window)) < 0)
			return cmd_store_fail(rc);
		cmd_rate_format(max, window, rate, sizeof(rate));
		return cmd_done(c, json_pack("{s:b,s:s,s:s,s:s}", "ok", 1, "action", "agent-rate",
					     "agent", p[0], "rate", rate),
				max ? "agent %s: rate limit %s" : "agent %s: no rate limit%s", p[0],
				max ? rate : "");
	}
	if ((rc = store_batch_begin(c->st)) < 0)
		return cmd_store_fail(rc);
	rc = store_agent_set(c->st, p[0], &ch);
	if (rc == 0 && rate_s)
		rc = store_agent_rate(c->st, p[0], max, window);
	if ((rc = store_batch_end(c->st, rc)) < 0)
		return cmd_store_fail(rc);

	changed = json_array();
	if (!changed)
		cmd_oom();
	if (ch.set_uid) {
		said(text, sizeof(text), "uid", cmd_i64((int64_t)uid, num, sizeof(num)));
		json_array_append_new(changed, json_string("uid"));
	}
	if (ch.set_gid) {
		said(text, sizeof(text), "gid", ch.has_gid ? cmd_i64((int64_t)gid, num, sizeof(num)) : "unbound");
		json_array_append_new(changed, json_string("gid"));
	}
	if (ch.set_exe) {
		said(text, sizeof(text), "exe", ch.exe ? ch.exe : "unbound");
		json_array_append_new(changed, json_string("exe"));
	}
	if (ch.set_exe_sha256) {
		said(text, sizeof(text), "exe-sha256", ch.has_exe_sha256 ? sha_s : "unbound");
		json_array_append_new(changed, json_string("exe_sha256"));
	}
	if (ch.set_cgroup) {
		said(text, sizeof(text), "cgroup", ch.cgroup ? ch.cgroup : "unbound");
		json_array_append_new(changed, json_string("cgroup"));
	}
	if (ch.set_human) {
		said(text, sizeof(text), "kind", human ? "human" : "agent");
		json_array_append_new(changed, json_string("kind"));
	}
	if (rate_s) {
		said(text, sizeof(text), "rate", cmd_rate_format(max, window, rate, sizeof(rate)));
		json_array_append_new(changed, json_string("rate"));
	}
	if (exe && strcmp(exe, canon) != 0)
		said(text, sizeof(text), "resolved from", exe);
	/* warn on what the agent is bound to now, not only on what changed */
	memset(&after, 0, sizeof(after));
	if (store_agent_get(c->st, p[0], agent_after_get, &after) == 0 && after.found)
		agent_warn(&after.row);
	return cmd_done(c, json_pack("{s:b,s:s,s:s,s:o}", "ok", 1, "action", "agent-set",
				     "agent", p[0], "changed", changed),
			"changed agent %s: %s", p[0], text);
}

int cmd_agent(struct cmd_ctx *c, int argc, char **argv)
{
	static const struct cmd_sub subs[] = {
		{ "add", agent_add }, { "list", agent_list }, { "show", agent_show },
		{ "rm", agent_change }, { "disable", agent_change }, { "enable", agent_change },
		{ "set", agent_set },
		{ NULL, NULL },
	};
	return cmd_dispatch(c, argc, argv, subs);
}

/* ---- assign / unassign ------------------------------------------------------------------------ */

int cmd_assign(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "AGENT", "PROJECT", NULL };
	bool assign = strcmp(argv[0], "assign") == 0;
	const char *p[2];
	int rc;

	CMD_PARSE(c, argv[0], argc, argv, NULL, pos, 2, p);
	if (cmd_check_name(p[0], POLICY_NAME_AGENT) || cmd_check_name(p[1], POLICY_NAME_PROJECT))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_open(c)))
		return rc;
	rc = assign ? store_assign(c->st, p[0], p[1]) : store_unassign(c->st, p[0], p[1]);
	if (rc < 0)
		return cmd_store_fail(rc);
	return cmd_done(c, json_pack("{s:b,s:s,s:s,s:s}", "ok", 1, "action", argv[0],
				     "agent", p[0], "project", p[1]),
			"%s %s %s %s", assign ? "assigned" : "unassigned", p[0],
			assign ? "to" : "from", p[1]);
}

/* ---- grant / revoke / grants ------------------------------------------------------------------ */

static int grant_add(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "AGENT", "PROVIDER/NAME", NULL };
	const char *ttl_s = NULL, *uses_s = NULL, *pid_s = NULL;
	const struct cmd_opt opts[] = {
		{ "--ttl", &ttl_s, NULL },
		{ "--uses", &uses_s, NULL },
		{ "--while-pid", &pid_s, NULL },
		{ NULL, NULL, NULL },
	};
	char provider[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1], limits[160] = "";
	struct store_grant_opts g = { 0 };
	const char *p[2];
	int64_t ttl = 0;
	uint64_t uses = 0;
	int rc;

	CMD_PARSE(c, "grant", argc, argv, opts, pos, 2, p);
	if (uses_s && (rc = cmd_number("--uses", uses_s, INT64_MAX, true, &uses)))
		return rc;
	if (cmd_check_name(p[0], POLICY_NAME_AGENT) || cmd_check_ref(p[1], false, provider, name))
		return CMD_EXIT_FAIL;
	if (ttl_s && cmd_check_duration(ttl_s, &ttl))
		return CMD_EXIT_FAIL;
	if (pid_s && (rc = cmd_task(pid_s, &g)))
		return rc;
	if ((rc = cmd_open(c)))
		return rc;
	g.ttl = ttl;
	g.uses = (int64_t)uses;
	rc = store_grant_with(c->st, p[0], provider, name, &g);
	if (rc < 0)
		return cmd_store_fail(rc);
	if (ttl_s && uses)
		snprintf(limits, sizeof(limits), " (ttl %s, %llu use%s)", ttl_s,
			 (unsigned long long)uses, uses == 1 ? "" : "s");
	else if (ttl_s)
		snprintf(limits, sizeof(limits), " (ttl %s)", ttl_s);
	else if (uses)
		snprintf(limits, sizeof(limits), " (%llu use%s)", (unsigned long long)uses,
			 uses == 1 ? "" : "s");
	if (g.pid) {
		size_t n = strlen(limits);
		if (n)
			limits[--n] = '\0';   /* drop the ')' */
		snprintf(limits + n, sizeof(limits) - n, "%swhile pid %s lives)", n ? ", " : " (",
			 pid_s);
	}
	return cmd_done(c, json_pack("{s:b,s:s,s:s,s:s,s:s,s:I,s:I,s:o}", "ok", 1, "action", "grant",
				     "agent", p[0], "provider", provider, "name", name,
				     "ttl", (json_int_t)ttl, "uses", (json_int_t)uses,
				     "while_pid", g.pid ? json_integer(g.pid) : json_null()),
			"granted %s/%s to %s%s", provider, name, p[0], limits);
}

static int grant_revoke(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "AGENT", "PROVIDER/NAME", NULL };
	char provider[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1];
	const char *p[2];
	int rc;

	CMD_PARSE(c, "revoke", argc, argv, NULL, pos, 2, p);
	if (cmd_check_name(p[0], POLICY_NAME_AGENT) || cmd_check_ref(p[1], false, provider, name))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_open(c)))
		return rc;
	rc = store_revoke(c->st, p[0], provider, name);
	if (rc < 0)
		return cmd_store_fail(rc);
	return cmd_done(c, json_pack("{s:b,s:s,s:s,s:s,s:s}", "ok", 1, "action", "revoke",
				     "agent", p[0], "provider", provider, "name", name),
			"revoked %s/%s from %s", provider, name, p[0]);
}

static int grants_row(void *ctx, const struct store_grant_row *g)
{
	struct cmd_ctx *c = ctx;
	int64_t now = (int64_t)time(NULL);

	if (c->json)
		cmd_json_print(grant_json(g, now));
	else
		grant_table_row(c->table, g, true, now);
	return 0;
}

static int ignore_agent(void *ctx, const struct store_agent_row *row)
{
	(void)ctx;
	(void)row;
	return 0;
}

static int grant_list(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "AGENT", NULL };
	const char *p[1];
	int rc;

	CMD_PARSE(c, "grants", argc, argv, NULL, pos, 0, p);
	if (p[0] && cmd_check_name(p[0], POLICY_NAME_AGENT))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_open(c)))
		return rc;
	/* An unknown agent is an error, not an empty list that hides a typo. */
	if (p[0] && (rc = store_agent_get(c->st, p[0], ignore_agent, NULL)) < 0)
		return cmd_store_fail(rc);
	if (!c->json)
		c->table = cmd_table_new(6, "AGENT", "SECRET", "CREATED", "EXPIRES", "USES", "STATE");
	rc = store_grant_list(c->st, p[0], grants_row, c);
	return cmd_list_end(c, rc);
}

int cmd_grant(struct cmd_ctx *c, int argc, char **argv)
{
	if (strcmp(argv[0], "revoke") == 0)
		return grant_revoke(c, argc, argv);
	if (strcmp(argv[0], "grants") == 0)
		return grant_list(c, argc, argv);
	return grant_add(c, argc, argv);
}

/* --while-pid PID: pin the grant to that process by pid and start time. 0, or 1/2 after printing. */
int cmd_task(const char *pid_s, struct store_grant_opts *g)
{
	uint64_t pid;
	int rc;

	if ((rc = cmd_number("--while-pid", pid_s, INT32_MAX, true, &pid)))
		return rc;
	rc = store_task_start((pid_t)pid, &g->pid_start);
	if (rc == -ESRCH)
		return cmd_fail("no running process with pid %s", pid_s);
	if (rc < 0)
		return cmd_fail("cannot read /proc/%s/stat: %s", pid_s, cmd_strerror(rc));
	g->pid = (pid_t)pid;
	return 0;
}

/* ---- check ------------------------------------------------------------------------------------ */

/* sha256 of the file at path, streamed. 0 or -errno; out is undefined on failure. */
static int hash_file_quiet(const char *path, uint8_t out[POLICY_SHA256_BYTES])
{
	crypto_hash_sha256_state h;
	unsigned char buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return -errno;
	crypto_hash_sha256_init(&h);
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = errno;

			close(fd);
			return -err;
		}
		if (r == 0)
			break;
		crypto_hash_sha256_update(&h, buf, (unsigned long long)r);
	}
	close(fd);
	crypto_hash_sha256_final(&h, out);
	return 0;
}

/* The same, for --exe: 0 or an exit status after printing. */
static int check_hash_file(const char *path, uint8_t out[POLICY_SHA256_BYTES])
{
	int rc = hash_file_quiet(path, out);

	if (rc < 0)
		return cmd_fail("cannot read '%s': %s", path, cmd_strerror(rc));
	return 0;
}

int cmd_check(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "AGENT", "PROVIDER/NAME", NULL };
	const char *uid_s = NULL, *gid_s = NULL, *exe_s = NULL, *cgroup_s = NULL;
	const struct cmd_opt opts[] = {
		{ "--uid", &uid_s, NULL },
		{ "--gid", &gid_s, NULL },
		{ "--exe", &exe_s, NULL },
		{ "--cgroup", &cgroup_s, NULL },
		{ NULL, NULL, NULL },
	};
	char provider[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1], exe[PATH_MAX];
	char cgroup[POLICY_CGROUP_MAX];
	struct store_facts f;
	struct policy_caller caller;
	enum policy_reason reason;
	uint64_t uid = 0, gid = 0;
	const char *p[2];
	int rc;

	CMD_PARSE(c, "check", argc, argv, opts, pos, 2, p);
	if (uid_s && (rc = cmd_number("--uid", uid_s, AGENT_ID_MAX, false, &uid)))
		return rc;
	if (gid_s && (rc = cmd_number("--gid", gid_s, AGENT_ID_MAX, false, &gid)))
		return rc;
	if (cmd_check_name(p[0], POLICY_NAME_AGENT) || cmd_check_ref(p[1], false, provider, name))
		return CMD_EXIT_FAIL;
	/* a process's own cgroup, as the mount reads it: never a subtree */
	if (cgroup_s && policy_cgroup_check(cgroup_s, false))
		return cmd_fail("invalid cgroup '%s': use the absolute cgroup v2 path of a process, "
				"as in /proc/PID/cgroup (no trailing /, no empty, . or .. components)",
				cgroup_s);
	memset(&caller, 0, sizeof(caller));
	caller.cgroup = cgroup_s;
	if (exe_s) {
		/* As the mount sees it: /proc/PID/exe is the resolved path. */
		if (!realpath(exe_s, exe))
			return cmd_fail("cannot resolve '%s': %s", exe_s, cmd_strerror(errno));
		if ((rc = check_hash_file(exe, caller.exe_sha256)))
			return rc;
		caller.exe = exe;
		caller.has_exe_sha256 = true;
	}
	if ((rc = cmd_open(c)))
		return rc;
	rc = store_facts_load(c->st, p[0], provider, name, &f);
	if (rc < 0)
		return cmd_store_fail(rc);

	caller.known = true;
	caller.pid = getpid();
	caller.uid = uid_s ? (uid_t)uid : f.p.agent.exists ? f.p.agent.uid : getuid();
	if (gid_s)
		caller.gid = (gid_t)gid;
	else if (f.p.agent.exists && f.p.agent.has_gid)
		caller.gid = f.p.agent.gid;
	else
		caller.gid = (gid_t)caller.uid;
	if (!exe_s && f.p.agent.exists) {
		/*
		 * No --exe: the caller runs the agent's own bound binary. When
		 * that file is here, hash it as the mount would, so a bound hash
		 * that no longer matches the installed binary shows up as a
		 * deny; when it is not (bound for another machine, or no path),
		 * take the bound hash as matching.
		 */
		caller.exe = f.p.agent.exe;
		caller.has_exe_sha256 = f.p.agent.has_exe_sha256;
		memcpy(caller.exe_sha256, f.p.agent.exe_sha256, POLICY_SHA256_BYTES);
		/*
		 * A process started from the bound path runs the file it resolves
		 * to, and the mount sees that: a binding made to a symlink (before
		 * agent add resolved paths) is refused there, and so here.
		 */
		if (f.p.agent.exe && realpath(f.p.agent.exe, exe))
			caller.exe = exe;
		if (f.p.agent.exe && f.p.agent.has_exe_sha256 &&
		    hash_file_quiet(caller.exe, caller.exe_sha256) != 0)
			memcpy(caller.exe_sha256, f.p.agent.exe_sha256, POLICY_SHA256_BYTES);
	}
	if (!cgroup_s && f.p.agent.exists && f.p.agent.cgroup) {
		/* No --cgroup: the caller runs in the bound cgroup (the root of a subtree). */
		size_t n = strlen(f.p.agent.cgroup);

		snprintf(cgroup, sizeof(cgroup), "%s", f.p.agent.cgroup);
		if (n > 1 && cgroup[n - 1] == '/')
			cgroup[n - 1] = '\0';
		caller.cgroup = cgroup;
	}
	reason = policy_decide(&f.p, &caller, (int64_t)time(NULL));
	if (c->json) {
		char rate[48];

		cmd_rate_format(f.p.agent.rate_max, f.p.agent.rate_window, rate, sizeof(rate));
		json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:s?,s:s?,s:b}",
					 "decision", reason == POLICY_ALLOW ? "allow" : "deny",
					 "reason", policy_reason_name(reason),
					 "text", policy_reason_text(reason),
					 "agent", p[0], "secret", p[1],
					 "uid", (json_int_t)caller.uid, "gid", (json_int_t)caller.gid,
					 "exe", caller.exe, "rate", f.p.agent.rate_max ? rate : NULL,
					 "canary", f.p.secret.canary);

		/* only when bound or given: the object is otherwise what it always was */
		if (o && caller.cgroup)
			json_object_set_new(o, "cgroup", json_string(caller.cgroup));
		cmd_json_print(o);
	} else {
		if (reason == POLICY_ALLOW)
			puts("allow");
		else
			printf("deny: %s (%s)\n", policy_reason_name(reason), policy_reason_text(reason));
		/* what only the mount acts on: said here so the dry run hides nothing */
		if (reason == POLICY_ALLOW && f.p.agent.rate_max) {
			char rate[48];
			printf("note: rate limit %s, counted by the mount\n",
			       cmd_rate_format(f.p.agent.rate_max, f.p.agent.rate_window, rate, sizeof(rate)));
		}
		if (f.p.secret.canary)
			puts("note: canary: every open through the mount raises an alert");
	}
	return reason == POLICY_ALLOW ? CMD_EXIT_OK : CMD_EXIT_FAIL;
}

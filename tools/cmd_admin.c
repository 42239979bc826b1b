/*
 * cmd_admin.c - the shadm commands that shape a store: `init`, and the
 * workspaces, providers and projects (with their attachments) that the
 * secrets and agents live in. Each command checks its arguments, opens the
 * store, makes one store call and prints one line (or a table).
 */
#include <string.h>

#include "tools/cmd.h"

/* ---- init ----------------------------------------------------------------------- */

int cmd_init(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { NULL };
	const char *p[1];
	int rc;

	CMD_PARSE(c, "init", argc, argv, NULL, pos, 0, p);
	rc = cmd_config(c);
	if (rc)
		return rc;
	rc = store_init(&c->cfg, cmd_actor());
	if (rc < 0)
		return cmd_store_fail(rc);
	return cmd_done(c, json_pack("{s:b,s:s,s:s}", "ok", 1, "store", c->cfg.store_path,
				     "key_file", c->cfg.key_file),
			"initialised store %s with key %s", c->cfg.store_path, c->cfg.key_file);
}

/* ---- workspace --------------------------------------------------------------------- */

static int ws_row(void *ctx, const struct store_workspace_row *row)
{
	struct cmd_ctx *c = ctx;
	char t[32];

	if (c->json) {
		cmd_json_print(json_pack("{s:s,s:o,s:b}", "name", row->name,
					 "created", cmd_json_time(row->created),
					 "current", strcmp(row->name, c->cfg.workspace) == 0));
		return 0;
	}
	cmd_time(row->created, "-", t, sizeof(t));
	cmd_table_add(c->table, row->name, t,
		      strcmp(row->name, c->cfg.workspace) == 0 ? "yes" : "no");
	return 0;
}

static int ws_list(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { NULL };
	const char *p[1];
	int rc;

	CMD_PARSE(c, "workspace list", argc, argv, NULL, pos, 0, p);
	if ((rc = cmd_open(c)))
		return rc;
	if (!c->json)
		c->table = cmd_table_new(3, "NAME", "CREATED", "CURRENT");
	rc = store_workspace_list(c->st, ws_row, c);
	return cmd_list_end(c, rc);
}

static int ws_add_rm(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "NAME", NULL };
	bool add = strcmp(argv[0], "add") == 0;
	const char *p[1];
	int rc;

	CMD_PARSE(c, add ? "workspace add" : "workspace rm", argc, argv, NULL, pos, 1, p);
	if (cmd_check_name(p[0], POLICY_NAME_WORKSPACE))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_open(c)))
		return rc;
	rc = add ? store_workspace_add(c->st, p[0]) : store_workspace_rm(c->st, p[0]);
	if (rc < 0)
		return cmd_store_fail(rc);
	return cmd_done(c, json_pack("{s:b,s:s,s:s}", "ok", 1, "action",
				     add ? "workspace-add" : "workspace-rm", "workspace", p[0]),
			"%s workspace %s", add ? "added" : "removed", p[0]);
}

int cmd_workspace(struct cmd_ctx *c, int argc, char **argv)
{
	static const struct cmd_sub subs[] = {
		{ "add", ws_add_rm }, { "rm", ws_add_rm }, { "list", ws_list }, { NULL, NULL },
	};
	return cmd_dispatch(c, argc, argv, subs);
}

/* ---- provider ------------------------------------------------------------------------ */

static int prov_row(void *ctx, const struct store_provider_row *row)
{
	struct cmd_ctx *c = ctx;
	char t[32], n[24];

	if (c->json) {
		cmd_json_print(json_pack("{s:s,s:I,s:o}", "name", row->name,
					 "secrets", (json_int_t)row->secrets,
					 "created", cmd_json_time(row->created)));
		return 0;
	}
	cmd_time(row->created, "-", t, sizeof(t));
	cmd_table_add(c->table, row->name, cmd_i64(row->secrets, n, sizeof(n)), t);
	return 0;
}

static int prov_list(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { NULL };
	const char *p[1];
	int rc;

	CMD_PARSE(c, "provider list", argc, argv, NULL, pos, 0, p);
	if ((rc = cmd_open(c)))
		return rc;
	if (!c->json)
		c->table = cmd_table_new(3, "NAME", "SECRETS", "CREATED");
	rc = store_provider_list(c->st, prov_row, c);
	return cmd_list_end(c, rc);
}

static int prov_add_rm(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "NAME", NULL };
	bool add = strcmp(argv[0], "add") == 0, yes = false;
	const struct cmd_opt rm_opts[] = { { "--yes", NULL, &yes }, { NULL, NULL, NULL } };
	const char *p[1];
	int rc;

	CMD_PARSE(c, add ? "provider add" : "provider rm", argc, argv, add ? NULL : rm_opts, pos, 1, p);
	if (cmd_check_name(p[0], POLICY_NAME_PROVIDER))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_open(c)))
		return rc;
	if (!add && (rc = cmd_confirm_drops(c, "provider rm", STORE_OBJ_PROVIDER, p[0], yes)))
		return rc;
	rc = add ? store_provider_add(c->st, p[0]) : store_provider_rm(c->st, p[0]);
	if (rc < 0)
		return cmd_store_fail(rc);
	return cmd_done(c, json_pack("{s:b,s:s,s:s}", "ok", 1, "action",
				     add ? "provider-add" : "provider-rm", "provider", p[0]),
			"%s provider %s", add ? "added" : "removed", p[0]);
}

int cmd_provider(struct cmd_ctx *c, int argc, char **argv)
{
	static const struct cmd_sub subs[] = {
		{ "add", prov_add_rm }, { "rm", prov_add_rm }, { "list", prov_list }, { NULL, NULL },
	};
	return cmd_dispatch(c, argc, argv, subs);
}

/* ---- project --------------------------------------------------------------------------- */

static int proj_row(void *ctx, const struct store_project_row *row)
{
	struct cmd_ctx *c = ctx;
	char t[32], a[24], b[24];

	if (c->json) {
		cmd_json_print(json_pack("{s:s,s:I,s:I,s:o}", "name", row->name,
					 "agents", (json_int_t)row->agents,
					 "attachments", (json_int_t)row->attachments,
					 "created", cmd_json_time(row->created)));
		return 0;
	}
	cmd_time(row->created, "-", t, sizeof(t));
	cmd_table_add(c->table, row->name, cmd_i64(row->agents, a, sizeof(a)),
		      cmd_i64(row->attachments, b, sizeof(b)), t);
	return 0;
}

static int proj_list(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { NULL };
	const char *p[1];
	int rc;

	CMD_PARSE(c, "project list", argc, argv, NULL, pos, 0, p);
	if ((rc = cmd_open(c)))
		return rc;
	if (!c->json)
		c->table = cmd_table_new(4, "NAME", "AGENTS", "ATTACHMENTS", "CREATED");
	rc = store_project_list(c->st, proj_row, c);
	return cmd_list_end(c, rc);
}

static int proj_add_rm(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "NAME", NULL };
	bool add = strcmp(argv[0], "add") == 0, yes = false;
	const struct cmd_opt rm_opts[] = { { "--yes", NULL, &yes }, { NULL, NULL, NULL } };
	const char *p[1];
	int rc;

	CMD_PARSE(c, add ? "project add" : "project rm", argc, argv, add ? NULL : rm_opts, pos, 1, p);
	if (cmd_check_name(p[0], POLICY_NAME_PROJECT))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_open(c)))
		return rc;
	if (!add && (rc = cmd_confirm_drops(c, "project rm", STORE_OBJ_PROJECT, p[0], yes)))
		return rc;
	rc = add ? store_project_add(c->st, p[0]) : store_project_rm(c->st, p[0]);
	if (rc < 0)
		return cmd_store_fail(rc);
	return cmd_done(c, json_pack("{s:b,s:s,s:s}", "ok", 1, "action",
				     add ? "project-add" : "project-rm", "project", p[0]),
			"%s project %s", add ? "added" : "removed", p[0]);
}

static int proj_attach(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "PROJECT", "PROVIDER[/NAME]", NULL };
	bool attach = strcmp(argv[0], "attach") == 0;
	char provider[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1];
	const char *p[2];
	int rc;

	CMD_PARSE(c, attach ? "project attach" : "project detach", argc, argv, NULL, pos, 2, p);
	if (cmd_check_name(p[0], POLICY_NAME_PROJECT) || cmd_check_ref(p[1], true, provider, name))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_open(c)))
		return rc;
	rc = attach ? store_project_attach(c->st, p[0], provider, name)
		    : store_project_detach(c->st, p[0], provider, name);
	if (rc < 0)
		return cmd_store_fail(rc);
	return cmd_done(c, json_pack("{s:b,s:s,s:s,s:s,s:s?}", "ok", 1,
				     "action", attach ? "attach" : "detach", "project", p[0],
				     "provider", provider, "name", name[0] ? name : NULL),
			"%s %s %s %s", attach ? "attached" : "detached", p[1],
			attach ? "to" : "from", p[0]);
}

/* What `project show` gathers before printing. */
struct proj_show {
	struct cmd_ctx *c;
	const char *name;
	bool found;
	int64_t created;
	json_t *attached, *agents;     /* arrays of strings */
};

static int proj_show_find(void *ctx, const struct store_project_row *row)
{
	struct proj_show *s = ctx;

	if (strcmp(row->name, s->name) == 0) {
		s->found = true;
		s->created = row->created;
	}
	return 0;
}

static int proj_show_attachment(void *ctx, const struct store_attachment_row *row)
{
	struct proj_show *s = ctx;
	char ref[2 * POLICY_NAME_MAX + 2];

	if (strcmp(row->project, s->name) != 0)
		return 0;
	if (row->name && row->name[0])
		snprintf(ref, sizeof(ref), "%s/%s", row->provider, row->name);
	else
		snprintf(ref, sizeof(ref), "%s", row->provider);
	json_array_append_new(s->attached, json_string(ref));
	return 0;
}

static int proj_show_agent(void *ctx, const char *agent, const char *project)
{
	struct proj_show *s = ctx;

	if (strcmp(project, s->name) == 0)
		json_array_append_new(s->agents, json_string(agent));
	return 0;
}

/* Print "label:    a, b, c" or "-" for an empty list. */
static void proj_show_line(const char *label, json_t *arr)
{
	size_t i;
	json_t *v;

	printf("%-12s", label);
	if (json_array_size(arr) == 0)
		fputs("-", stdout);
	json_array_foreach(arr, i, v) {
		printf("%s%s", i ? ", " : "", cmd_esc(json_string_value(v)));
	}
	putchar('\n');
}

static int proj_show(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "NAME", NULL };
	struct proj_show s;
	const char *p[1];
	char t[32];
	int rc;

	CMD_PARSE(c, "project show", argc, argv, NULL, pos, 1, p);
	if (cmd_check_name(p[0], POLICY_NAME_PROJECT))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_open(c)))
		return rc;
	memset(&s, 0, sizeof(s));
	s.c = c;
	s.name = p[0];
	rc = store_project_list(c->st, proj_show_find, &s);
	if (rc < 0)
		return cmd_store_fail(rc);
	if (!s.found)
		return cmd_fail("no project '%s'", p[0]);
	s.attached = json_array();
	s.agents = json_array();
	if (!s.attached || !s.agents)
		cmd_oom();
	rc = store_attachment_list(c->st, p[0], proj_show_attachment, &s);
	if (rc >= 0)
		rc = store_assignment_list(c->st, NULL, proj_show_agent, &s);
	if (rc < 0) {
		json_decref(s.attached);
		json_decref(s.agents);
		return cmd_store_fail(rc);
	}
	if (c->json) {
		cmd_json_print(json_pack("{s:s,s:o,s:o,s:o}", "name", p[0],
					 "created", cmd_json_time(s.created),
					 "attached", s.attached, "agents", s.agents));
		return CMD_EXIT_OK;
	}
	cmd_time(s.created, "-", t, sizeof(t));
	printf("%-12s%s\n", "project:", p[0]);
	printf("%-12s%s\n", "workspace:", store_workspace_current(c->st));
	printf("%-12s%s\n", "created:", t);
	proj_show_line("attached:", s.attached);
	proj_show_line("agents:", s.agents);
	json_decref(s.attached);
	json_decref(s.agents);
	return CMD_EXIT_OK;
}

int cmd_project(struct cmd_ctx *c, int argc, char **argv)
{
	static const struct cmd_sub subs[] = {
		{ "add", proj_add_rm }, { "rm", proj_add_rm }, { "list", proj_list },
		{ "show", proj_show }, { "attach", proj_attach }, { "detach", proj_attach },
		{ NULL, NULL },
	};
	return cmd_dispatch(c, argc, argv, subs);
}

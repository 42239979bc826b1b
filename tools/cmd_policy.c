/*
 * cmd_policy.c - policy as code: `shadm export` prints the workspace's
 * whole access model (providers, secret names with expiry and canary
 * mark, projects and their attachments, agents with their bindings,
 * assignments and grants - never a value) as one JSON document, and
 * `shadm apply FILE` makes the workspace match such a document.
 *
 * The file is read with jansson, never by hand: a syntax error is
 * jansson's, with its line. Everything the file says is then checked and
 * brought to the form export writes (dates, rates, digests, sorted
 * lists), so the file and the store are compared as two documents of
 * one shape; a check that fails names the line of the offending key,
 * found by walking its path through the text (jansson keeps no
 * positions).
 *
 * Apply works in one store batch (store_batch_begin): it reads the model
 * inside it, then makes each difference with the same store call the
 * matching shadm command makes, so the trail holds the same events as if
 * an operator had typed them - one per plan line. Any failure rolls the
 * whole batch back; --dry-run makes every change and rolls back too, so
 * it catches what the store would refuse. Apply never removes providers
 * or secrets (that would destroy values) and cannot create a secret (the
 * file holds no values) or change an expiry (that belongs to a version):
 * a secret the file names that the store lacks, or whose expiry differs,
 * fails the whole apply.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tools/cmd.h"

#define PC_VERSION 1                  /* the file's "version" */
#define PC_FILE_MAX (64 * 1024 * 1024) /* far above any real workspace */
#define PC_ID_MAX 4294967294ULL       /* as agent add: (uid_t)-1 means "no change" */

/* The file being applied: its name for messages and its text for lines. */
struct pc_file {
	const char *name;
	const char *text;
};

/* ---- export: the model as one document ------------------------------------------------ */

static json_t *pc_time(int64_t t)
{
	return cmd_json_time(t);
}

/*
 * One agent as the file holds it. A new binding field is one more key
 * here, one more row in pc_agent_fields and one more line in pc_agent_row
 * and in pc_agent_change.
 */
static json_t *pc_agent_json(const struct store_agent_row *a)
{
	char hex[2 * POLICY_SHA256_BYTES + 1], rate[48];

	if (a->has_exe_sha256)
		cmd_hex(a->exe_sha256, POLICY_SHA256_BYTES, hex);
	cmd_rate_format(a->rate_max, a->rate_window, rate, sizeof(rate));
	return json_pack("{s:o,s:b,s:o,s:o,s:o,s:{},s:b,s:[],s:o,s:I}",
			 "cgroup", a->cgroup && a->cgroup[0] ? json_string(a->cgroup) : json_null(),
			 "enabled", a->enabled,
			 "exe", a->exe && a->exe[0] ? json_string(a->exe) : json_null(),
			 "exe_sha256", a->has_exe_sha256 ? json_string(hex) : json_null(),
			 "gid", a->has_gid ? json_integer((json_int_t)a->gid) : json_null(),
			 "grants", "human", a->human, "projects",
			 "rate", a->rate_max ? json_string(rate) : json_null(),
			 "uid", (json_int_t)a->uid);
}

static json_t *pc_section(json_t *doc, const char *key)
{
	return json_object_get(doc, key);
}

static int pc_provider_row(void *ctx, const struct store_provider_row *r)
{
	return json_object_set_new(pc_section(ctx, "providers"), r->name,
				   json_pack("{s:{}}", "secrets")) ? -ENOMEM : 0;
}

static int pc_secret_row(void *ctx, const struct store_secret_row *r)
{
	json_t *p = json_object_get(pc_section(ctx, "providers"), r->provider);

	return json_object_set_new(json_object_get(p, "secrets"), r->name,
				   json_pack("{s:b,s:o}", "canary", r->canary,
					     "expires", pc_time(r->expires))) ? -ENOMEM : 0;
}

static int pc_project_row(void *ctx, const struct store_project_row *r)
{
	return json_object_set_new(pc_section(ctx, "projects"), r->name,
				   json_pack("{s:[]}", "attach")) ? -ENOMEM : 0;
}

static int pc_attachment_row(void *ctx, const struct store_attachment_row *r)
{
	char ref[2 * POLICY_NAME_MAX + 2];
	json_t *p = json_object_get(pc_section(ctx, "projects"), r->project);

	snprintf(ref, sizeof(ref), "%s%s%s", r->provider, r->name[0] ? "/" : "", r->name);
	return json_array_append_new(json_object_get(p, "attach"), json_string(ref)) ? -ENOMEM : 0;
}

static int pc_agent_row_fn(void *ctx, const struct store_agent_row *a)
{
	return json_object_set_new(pc_section(ctx, "agents"), a->name, pc_agent_json(a)) ? -ENOMEM : 0;
}

static int pc_assignment_row(void *ctx, const char *agent, const char *project)
{
	json_t *a = json_object_get(pc_section(ctx, "agents"), agent);

	return json_array_append_new(json_object_get(a, "projects"), json_string(project)) ? -ENOMEM : 0;
}

/*
 * A grant is policy while it stands: revoked ones are history, and a
 * task-scoped one (--while-pid) lives with one process, which no file
 * can name for later. Neither is exported; apply leaves task grants be
 * unless the file grants the same secret, which replaces them.
 */
static int pc_grant_row(void *ctx, const struct store_grant_row *g)
{
	char ref[2 * POLICY_NAME_MAX + 2];
	json_t *a = json_object_get(pc_section(ctx, "agents"), g->agent);

	if (g->revoked || g->pid)
		return 0;
	snprintf(ref, sizeof(ref), "%s/%s", g->provider, g->name);
	return json_object_set_new(json_object_get(a, "grants"), ref,
				   json_pack("{s:o,s:o}", "expires", pc_time(g->expires),
					     "uses", g->max_uses ? json_integer((json_int_t)g->max_uses)
								 : json_null())) ? -ENOMEM : 0;
}

/* The workspace's model into *out (a new reference). 0 or a store -errno. */
static int pc_model(struct store *st, json_t **out)
{
	json_t *doc = json_pack("{s:i,s:s,s:{},s:{},s:{}}", "version", PC_VERSION,
				"workspace", store_workspace_current(st),
				"providers", "projects", "agents");
	int rc;

	if (!doc)
		cmd_oom();
	rc = store_provider_list(st, pc_provider_row, doc);
	if (rc >= 0)
		rc = store_secret_list(st, NULL, pc_secret_row, doc);
	if (rc >= 0)
		rc = store_project_list(st, pc_project_row, doc);
	if (rc >= 0)
		rc = store_attachment_list(st, NULL, pc_attachment_row, doc);
	if (rc >= 0)
		rc = store_agent_list(st, pc_agent_row_fn, doc);
	if (rc >= 0)
		rc = store_assignment_list(st, NULL, pc_assignment_row, doc);
	if (rc >= 0)
		rc = store_grant_list(st, NULL, pc_grant_row, doc);
	if (rc == -ENOMEM)
		cmd_oom();
	if (rc < 0) {
		json_decref(doc);
		return rc;
	}
	*out = doc;
	return 0;
}

/* The document as the file form: sorted keys, indent 2 (--json: one line). */
static void pc_print_doc(json_t *doc, bool compact)
{
	char *s = json_dumps(doc, JSON_SORT_KEYS | (compact ? JSON_COMPACT : JSON_INDENT(2)));

	if (!s)
		cmd_oom();
	printf("%s\n", s);
	free(s);
}

int cmd_export(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { NULL };
	json_t *doc;
	int rc;

	CMD_PARSE(c, "export", argc, argv, NULL, pos, 0, NULL);
	if ((rc = cmd_open(c)))
		return rc;
	if ((rc = pc_model(c->st, &doc)) < 0)
		return cmd_store_fail(rc);
	pc_print_doc(doc, c->json);
	json_decref(doc);
	return CMD_EXIT_OK;
}

/* ---- reading the file ---------------------------------------------------------------- */

/*
 * The line of the key at path (NULL-terminated) in the text: each part is
 * looked for as a quoted key (followed by ':') after the previous one, or
 * else as a string (an element of a list). 0 when not found (a name
 * jansson read from escapes, say): the message then names the file only.
 */
static int pc_linev(const struct pc_file *f, const char *const *path)
{
	const char *pos = f->text, *found = NULL;
	int line = 1;

	for (; *path; path++) {
		size_t n = strlen(*path);
		const char *p = pos, *key = NULL, *str = NULL;

		while (!key && (p = strchr(p, '"'))) {
			const char *q = p + 1 + n;

			if (strncmp(p + 1, *path, n) == 0 && *q == '"') {
				for (q++; *q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'; q++)
					;
				if (*q == ':')
					key = p;
				else if (!str)
					str = p;
			}
			p++;
		}
		if (!key && !str)
			break;
		found = key ? key : str;
		pos = found + 1;
	}
	if (!found)
		return 0;
	for (const char *p = f->text; p < found; p++)
		line += *p == '\n';
	return line;
}

#define PC_PATH_MAX 8
static int pc_line(const struct pc_file *f, ...)
{
	const char *path[PC_PATH_MAX + 1];
	va_list ap;
	int n = 0;

	va_start(ap, f);
	while (n < PC_PATH_MAX && (path[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	path[n] = NULL;
	return pc_linev(f, path);
}

/* "FILE:LINE: message" (or "FILE: message" without a line); returns status. */
static int pc_fail(const struct pc_file *f, int status, int line, const char *fmt, ...)
	CMD_PRINTF(4, 5);
static int pc_fail(const struct pc_file *f, int status, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		fprintf(stderr, "shadm: %s:%d: %s\n", f->name, line, msg);
	else
		fprintf(stderr, "shadm: %s: %s\n", f->name, msg);
	return status;
}

/* Read FILE ("-": standard input) whole. 0, or 1 after printing. */
static int pc_read(const char *path, char **out)
{
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	size_t len = 0, cap = 0;
	char *buf = NULL;

	if (fd < 0)
		return cmd_fail("cannot open '%s': %s", path, cmd_strerror(errno));
	for (;;) {
		ssize_t r;

		if (cap - len < 65536) {
			char *nb;

			cap = cap ? cap * 2 : 65536;
			if (cap > PC_FILE_MAX + 65536) {
				free(buf);
				if (fd != STDIN_FILENO)
					close(fd);
				return cmd_fail("'%s' is larger than %d MiB", path, PC_FILE_MAX >> 20);
			}
			if (!(nb = realloc(buf, cap + 1)))
				cmd_oom();
			buf = nb;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = errno;

			free(buf);
			if (fd != STDIN_FILENO)
				close(fd);
			return cmd_fail("cannot read '%s': %s", path, cmd_strerror(err));
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	buf[len] = '\0';
	*out = buf;
	return 0;
}

/* ---- checking the file: every value into the form export writes ------------------------- */

/* Only these keys in obj (at path, NULL-terminated); else the first other one is reported. */
static int pc_keys(const struct pc_file *f, json_t *obj, const char *const *keys,
		   const char *what, const char *const *path)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v) {
		const char *full[PC_PATH_MAX + 1];
		size_t i, n = 0;

		for (i = 0; keys[i] && strcmp(keys[i], k); i++)
			;
		if (keys[i])
			continue;
		while (path[n] && n < PC_PATH_MAX - 1) {
			full[n] = path[n];
			n++;
		}
		full[n++] = k;
		full[n] = NULL;
		return pc_fail(f, CMD_EXIT_USAGE, pc_linev(f, full), "%s: unknown key '%s'", what, k);
	}
	return 0;
}

/* A date or null, into the canonical string (or null). 0, or 2 after printing. */
static int pc_date(const struct pc_file *f, json_t *v, const char *what, int line, json_t **out)
{
	int64_t when;
	const char *s;

	if (json_is_null(v) || !v) {
		*out = json_null();
		return 0;
	}
	s = json_string_value(v);
	if (!s || policy_duration_parse(s, &when) == 0 || policy_when_parse(s, 0, &when) != 0 ||
	    when <= 0)
		return pc_fail(f, CMD_EXIT_USAGE, line,
			       "%s: expires must be null or a date (2027-01-31 or 2027-01-31T12:00:00Z)",
			       what);
	*out = pc_time(when);
	return 0;
}

static int pc_name(const struct pc_file *f, const char *name, enum policy_name_kind kind,
		   const char *kindname, int line)
{
	if (policy_name_check(name, kind) == 0)
		return 0;
	return pc_fail(f, CMD_EXIT_USAGE, line, "invalid %s name '%s': use 1-128 of A-Z a-z 0-9 . _ - , "
		       "not starting with . or -%s", kindname, name,
		       kind == POLICY_NAME_AGENT && !strcmp(name, "self") ? " ('self' is reserved)" : "");
}

/* An object member that must be an object (missing: an empty one when optional). */
static int pc_object(const struct pc_file *f, json_t *parent, const char *key, bool required,
		     const char *what, int line, json_t **out)
{
	json_t *v = json_object_get(parent, key);

	if (!v && !required) {
		*out = NULL;
		return 0;
	}
	if (!v)
		return pc_fail(f, CMD_EXIT_USAGE, line, "%s: missing key '%s'", what, key);
	if (!json_is_object(v))
		return pc_fail(f, CMD_EXIT_USAGE, line, "%s: '%s' must be an object", what, key);
	*out = v;
	return 0;
}

/* A list of names or references: strings, each once, sorted. */
static int pc_list(const struct pc_file *f, json_t *v, const char *what, const char *key,
		   bool refs, const char *p1, const char *p2, json_t **out)
{
	char prov[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1];
	json_t *list = json_array(), *e;
	size_t i, j;

	if (!list)
		cmd_oom();
	*out = list;
	if (!v)
		return 0;
	if (!json_is_array(v))
		return pc_fail(f, CMD_EXIT_USAGE, pc_line(f, p1, p2, key, NULL),
			       "%s: '%s' must be a list", what, key);
	json_array_foreach(v, i, e) {
		const char *s = json_string_value(e);
		int line = s ? pc_line(f, p1, p2, key, s, NULL) : pc_line(f, p1, p2, key, NULL);

		if (!s)
			return pc_fail(f, CMD_EXIT_USAGE, line, "%s: '%s' must be a list of strings",
				       what, key);
		if (refs ? policy_ref_parse(s, true, prov, name) != 0
			 : policy_name_check(s, POLICY_NAME_PROJECT) != 0)
			return pc_fail(f, CMD_EXIT_USAGE, line, "%s: invalid %s '%s'", what,
				       refs ? "reference" : "project name", s);
		for (j = 0; j < json_array_size(list); j++) {
			if (!strcmp(json_string_value(json_array_get(list, j)), s))
				return pc_fail(f, CMD_EXIT_USAGE, line, "%s: '%s' is listed twice", what, s);
		}
		/* kept sorted as the store lists them: provider, then name */
		for (j = 0; j < json_array_size(list); j++) {
			if (strcmp(json_string_value(json_array_get(list, j)), s) > 0)
				break;
		}
		json_array_insert_new(list, j, json_string(s));
	}
	return 0;
}

static int pc_check_providers(const struct pc_file *f, json_t *in, json_t *out)
{
	static const char *const pkeys[] = { "secrets", NULL };
	static const char *const skeys[] = { "canary", "expires", NULL };
	const char *pname, *sname;
	json_t *p, *s;
	int rc;

	json_object_foreach(in, pname, p) {
		char what[POLICY_NAME_MAX + 32];
		json_t *secrets, *ps = json_pack("{s:{}}", "secrets");
		int line = pc_line(f, "providers", pname, NULL);

		json_object_set_new(out, pname, ps);
		snprintf(what, sizeof(what), "provider '%s'", pname);
		if ((rc = pc_name(f, pname, POLICY_NAME_PROVIDER, "provider", line)))
			return rc;
		if (!json_is_object(p))
			return pc_fail(f, CMD_EXIT_USAGE, line, "%s must be an object", what);
		if ((rc = pc_keys(f, p, pkeys, what, (const char *[]){ "providers", pname, NULL })) ||
		    (rc = pc_object(f, p, "secrets", false, what, line, &secrets)))
			return rc;
		json_object_foreach(secrets, sname, s) {
			char swhat[2 * POLICY_NAME_MAX + 32];
			json_t *canary, *expires;
			int sline = pc_line(f, "providers", pname, "secrets", sname, NULL);

			snprintf(swhat, sizeof(swhat), "secret '%s/%s'", pname, sname);
			if ((rc = pc_name(f, sname, POLICY_NAME_SECRET, "secret", sline)))
				return rc;
			if (!json_is_object(s))
				return pc_fail(f, CMD_EXIT_USAGE, sline, "%s must be an object", swhat);
			if ((rc = pc_keys(f, s, skeys, swhat, (const char *[]){ "providers", pname, "secrets", sname, NULL })))
				return rc;
			canary = json_object_get(s, "canary");
			if (canary && !json_is_boolean(canary))
				return pc_fail(f, CMD_EXIT_USAGE,
					       pc_line(f, "providers", pname, "secrets", sname, "canary", NULL),
					       "%s: canary must be true or false", swhat);
			if ((rc = pc_date(f, json_object_get(s, "expires"), swhat,
					  pc_line(f, "providers", pname, "secrets", sname, "expires", NULL),
					  &expires)))
				return rc;
			json_object_set_new(json_object_get(ps, "secrets"), sname,
					    json_pack("{s:b,s:o}", "canary", json_is_true(canary),
						      "expires", expires));
		}
	}
	return 0;
}

static int pc_check_projects(const struct pc_file *f, json_t *in, json_t *out)
{
	static const char *const keys[] = { "attach", NULL };
	const char *name;
	json_t *p;
	int rc;

	json_object_foreach(in, name, p) {
		char what[POLICY_NAME_MAX + 32];
		json_t *attach;
		int line = pc_line(f, "projects", name, NULL);

		snprintf(what, sizeof(what), "project '%s'", name);
		if ((rc = pc_name(f, name, POLICY_NAME_PROJECT, "project", line)))
			return rc;
		if (!json_is_object(p))
			return pc_fail(f, CMD_EXIT_USAGE, line, "%s must be an object", what);
		if ((rc = pc_keys(f, p, keys, what, (const char *[]){ "projects", name, NULL })))
			return rc;
		rc = pc_list(f, json_object_get(p, "attach"), what, "attach", true, "projects", name,
			     &attach);
		json_object_set_new(out, name, json_pack("{s:o}", "attach", attach));
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- agents: one checker per field --------------------------------------------------------- */

/* How apply changes a field of an existing agent. */
enum pc_how { PC_BIND, PC_ENABLED, PC_RATE, PC_OWN };

struct pc_field_ctx {
	const struct pc_file *f;
	const char *agent;           /* its name */
	char what[POLICY_NAME_MAX + 16];
	int line;                    /* of the field's key */
};

typedef int (*pc_check_fn)(struct pc_field_ctx *x, json_t *v, json_t **out);

static int pc_bad(struct pc_field_ctx *x, const char *key, const char *must)
{
	return pc_fail(x->f, CMD_EXIT_USAGE, x->line, "%s: %s must be %s", x->what, key, must);
}

static int pc_id(json_t *v, bool nullable, json_t **out)
{
	if (nullable && (!v || json_is_null(v))) {
		*out = json_null();
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (unsigned long long)json_integer_value(v) > PC_ID_MAX)
		return -1;
	*out = json_integer(json_integer_value(v));
	return 0;
}

static int pc_check_uid(struct pc_field_ctx *x, json_t *v, json_t **out)
{
	if (!v)
		return pc_fail(x->f, CMD_EXIT_USAGE, x->line, "%s: missing key 'uid'", x->what);
	return pc_id(v, false, out) ? pc_bad(x, "uid", "a number from 0 to 4294967294") : 0;
}

static int pc_check_gid(struct pc_field_ctx *x, json_t *v, json_t **out)
{
	return pc_id(v, true, out) ? pc_bad(x, "gid", "null or a number from 0 to 4294967294") : 0;
}

static int pc_check_bool(struct pc_field_ctx *x, json_t *v, bool dflt, const char *key, json_t **out)
{
	if (!v) {
		*out = json_boolean(dflt);
		return 0;
	}
	if (!json_is_boolean(v))
		return pc_bad(x, key, "true or false");
	*out = json_incref(v);
	return 0;
}

static int pc_check_enabled(struct pc_field_ctx *x, json_t *v, json_t **out)
{
	return pc_check_bool(x, v, true, "enabled", out);
}

static int pc_check_human(struct pc_field_ctx *x, json_t *v, json_t **out)
{
	return pc_check_bool(x, v, false, "human", out);
}

static int pc_check_exe(struct pc_field_ctx *x, json_t *v, json_t **out)
{
	const char *s = json_string_value(v);
	char canon[PATH_MAX];

	if (!v || json_is_null(v)) {
		*out = json_null();
		return 0;
	}
	/* the mount compares /proc/PID/exe, which is always absolute */
	if (!s || s[0] != '/' || strlen(s) >= PATH_MAX)
		return pc_bad(x, "exe", "null or an absolute path");
	/*
	 * Bound by its canonical path, as agent add binds it. A path that does
	 * not resolve here stays as written: it compares equal to the store's
	 * (an export made where the binary was), and setting it fails later.
	 */
	*out = json_string(realpath(s, canon) ? canon : s);
	return 0;
}

static int pc_check_cgroup(struct pc_field_ctx *x, json_t *v, json_t **out)
{
	const char *s = json_string_value(v);

	if (!v || json_is_null(v)) {
		*out = json_null();
		return 0;
	}
	if (!s || policy_cgroup_check(s, true))
		return pc_bad(x, "cgroup", "null or a cgroup v2 path (/a/b, or /a/ for the subtree)");
	*out = json_string(s);
	return 0;
}

static int pc_check_sha(struct pc_field_ctx *x, json_t *v, json_t **out)
{
	char hex[2 * POLICY_SHA256_BYTES + 1];
	const char *s = json_string_value(v);
	size_t i;

	if (!v || json_is_null(v)) {
		*out = json_null();
		return 0;
	}
	if (!s || strlen(s) != 2 * POLICY_SHA256_BYTES)
		return pc_bad(x, "exe_sha256", "null or 64 hex digits");
	for (i = 0; s[i]; i++) {
		char ch = s[i];

		if (ch >= 'A' && ch <= 'F')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return pc_bad(x, "exe_sha256", "null or 64 hex digits");
		hex[i] = ch;
	}
	hex[i] = '\0';
	*out = json_string(hex);
	return 0;
}

static int pc_check_rate(struct pc_field_ctx *x, json_t *v, json_t **out)
{
	int64_t max, window;
	char rate[48];
	const char *s = json_string_value(v);

	if (!v || json_is_null(v) || (s && !strcmp(s, "off"))) {
		*out = json_null();
		return 0;
	}
	if (!s || policy_rate_parse(s, &max, &window))
		return pc_bad(x, "rate", "null or N/DURATION (100/1m)");
	*out = json_string(cmd_rate_format(max, window, rate, sizeof(rate)));
	return 0;
}

static int pc_check_projects_of(struct pc_field_ctx *x, json_t *v, json_t **out)
{
	return pc_list(x->f, v, x->what, "projects", false, "agents", x->agent, out);
}

static int pc_check_grants(struct pc_field_ctx *x, json_t *v, json_t **out)
{
	static const char *const keys[] = { "expires", "uses", NULL };
	char prov[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1];
	json_t *grants = json_object(), *g;
	const char *ref;
	int rc;

	if (!grants)
		cmd_oom();
	*out = grants;
	if (!v)
		return 0;
	if (!json_is_object(v))
		return pc_bad(x, "grants", "an object");
	json_object_foreach(v, ref, g) {
		char what[3 * POLICY_NAME_MAX + 32];
		int line = pc_line(x->f, "agents", x->agent, "grants", ref, NULL);
		json_t *uses, *expires;

		snprintf(what, sizeof(what), "grant of '%s' to '%s'", ref, x->agent);
		if (policy_ref_parse(ref, false, prov, name) != 0)
			return pc_fail(x->f, CMD_EXIT_USAGE, line, "%s: invalid secret '%s': use PROVIDER/NAME",
				       x->what, ref);
		if (!json_is_object(g))
			return pc_fail(x->f, CMD_EXIT_USAGE, line, "%s must be an object", what);
		if ((rc = pc_keys(x->f, g, keys, what, (const char *[]){ "agents", x->agent, "grants", ref, NULL })))
			return rc;
		uses = json_object_get(g, "uses");
		if (uses && !json_is_null(uses) &&
		    (!json_is_integer(uses) || json_integer_value(uses) <= 0))
			return pc_fail(x->f, CMD_EXIT_USAGE,
				       pc_line(x->f, "agents", x->agent, "grants", ref, "uses", NULL),
				       "%s: uses must be null (unlimited) or a number greater than 0", what);
		if ((rc = pc_date(x->f, json_object_get(g, "expires"), what,
				  pc_line(x->f, "agents", x->agent, "grants", ref, "expires", NULL),
				  &expires)))
			return rc;
		json_object_set_new(grants, ref, json_pack("{s:o,s:o}", "expires", expires, "uses",
			uses && !json_is_null(uses) ? json_integer(json_integer_value(uses)) : json_null()));
	}
	return 0;
}

/* The keys of an agent: how each is checked and how apply changes it. */
static const struct pc_agent_field {
	const char *key;
	pc_check_fn check;
	enum pc_how how;
} pc_agent_fields[] = {
	{ "cgroup", pc_check_cgroup, PC_BIND },
	{ "enabled", pc_check_enabled, PC_ENABLED },
	{ "exe", pc_check_exe, PC_BIND },
	{ "exe_sha256", pc_check_sha, PC_BIND },
	{ "gid", pc_check_gid, PC_BIND },
	{ "grants", pc_check_grants, PC_OWN },
	{ "human", pc_check_human, PC_BIND },
	{ "projects", pc_check_projects_of, PC_OWN },
	{ "rate", pc_check_rate, PC_RATE },
	{ "uid", pc_check_uid, PC_BIND },
	{ NULL, NULL, PC_OWN },
};

static int pc_check_agents(const struct pc_file *f, json_t *in, json_t *out)
{
	const struct pc_agent_field *fd;
	const char *name, *k;
	json_t *a, *v;
	int rc;

	json_object_foreach(in, name, a) {
		struct pc_field_ctx x = { .f = f, .agent = name };
		json_t *agent = json_object();
		int line = pc_line(f, "agents", name, NULL);

		if (!agent)
			cmd_oom();
		json_object_set_new(out, name, agent);
		snprintf(x.what, sizeof(x.what), "agent '%s'", name);
		if ((rc = pc_name(f, name, POLICY_NAME_AGENT, "agent", line)))
			return rc;
		if (!json_is_object(a))
			return pc_fail(f, CMD_EXIT_USAGE, line, "%s must be an object", x.what);
		json_object_foreach(a, k, v) {
			for (fd = pc_agent_fields; fd->key && strcmp(fd->key, k); fd++)
				;
			if (!fd->key)
				return pc_fail(f, CMD_EXIT_USAGE, pc_line(f, "agents", name, k, NULL),
					       "%s: unknown key '%s'", x.what, k);
		}
		for (fd = pc_agent_fields; fd->key; fd++) {
			json_t *norm = NULL;

			v = json_object_get(a, fd->key);
			x.line = v ? pc_line(f, "agents", name, fd->key, NULL) : line;
			rc = fd->check(&x, v, &norm);
			if (norm)
				json_object_set_new(agent, fd->key, norm);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* The whole file into the form pc_model() builds. 0, or 2 after printing. */
static int pc_check(const struct pc_file *f, json_t *in, json_t **out)
{
	static const char *const keys[] = { "agents", "projects", "providers", "version", "workspace", NULL };
	json_t *doc, *ver, *ws, *sec[3];
	static const char *const secnames[] = { "providers", "projects", "agents" };
	int rc, i;

	if (!json_is_object(in))
		return pc_fail(f, CMD_EXIT_USAGE, 1, "the file must hold one JSON object");
	if ((rc = pc_keys(f, in, keys, "the file", (const char *[]){ NULL })))
		return rc;
	ver = json_object_get(in, "version");
	if (!json_is_integer(ver) || json_integer_value(ver) != PC_VERSION)
		return pc_fail(f, CMD_EXIT_USAGE, ver ? pc_line(f, "version", NULL) : 1,
			       "\"version\": %d must be in the file (this shadm reads version %d)",
			       PC_VERSION, PC_VERSION);
	ws = json_object_get(in, "workspace");
	if (!json_is_string(ws))
		return pc_fail(f, CMD_EXIT_USAGE, ws ? pc_line(f, "workspace", NULL) : 1,
			       "\"workspace\" must be in the file, naming the workspace it is for");
	/* a missing section would read as "remove everything": it must be there */
	for (i = 0; i < 3; i++) {
		if ((rc = pc_object(f, in, secnames[i], true, "the file",
				    pc_line(f, secnames[i], NULL) ? pc_line(f, secnames[i], NULL) : 1,
				    &sec[i])))
			return rc;
	}
	doc = json_pack("{s:i,s:O,s:{},s:{},s:{}}", "version", PC_VERSION, "workspace", ws,
			"providers", "projects", "agents");
	if (!doc)
		cmd_oom();
	rc = pc_check_providers(f, sec[0], json_object_get(doc, "providers"));
	if (!rc)
		rc = pc_check_projects(f, sec[1], json_object_get(doc, "projects"));
	if (!rc)
		rc = pc_check_agents(f, sec[2], json_object_get(doc, "agents"));
	if (rc) {
		json_decref(doc);
		return rc;
	}
	*out = doc;
	return 0;
}

/* ---- apply: each difference made by the store call its shadm command makes ------------------ */

struct pc_apply {
	struct cmd_ctx *c;
	const struct pc_file *f;
	json_t *cur, *want;          /* the store's model and the file's, one shape */
	json_t *plan;                /* what was done, in order: [{op, object, name, detail}] */
	int changes;
	int64_t now;
};

static int pc_strcmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of obj (NULL: none) in name order, NULL-terminated; free() it. */
static const char **pc_sorted(json_t *obj)
{
	size_t n = json_object_size(obj), i = 0;
	const char **keys = calloc(n + 1, sizeof(*keys));
	const char *k;
	json_t *v;

	if (!keys)
		cmd_oom();
	json_object_foreach(obj, k, v)
		keys[i++] = k;
	qsort(keys, n, sizeof(*keys), pc_strcmp);
	return keys;
}

static bool pc_has(json_t *list, const char *s)
{
	size_t i;
	json_t *e;

	json_array_foreach(list, i, e) {
		if (!strcmp(json_string_value(e), s))
			return true;
	}
	return false;
}

/* One plan line: '+' add, '~' change, '-' remove; '!' a note that changes nothing. */
static void pc_plan(struct pc_apply *ap, char op, const char *object, const char *name,
		    const char *fmt, ...) CMD_PRINTF(5, 6);
static void pc_plan(struct pc_apply *ap, char op, const char *object, const char *name,
		    const char *fmt, ...)
{
	char detail[PATH_MAX + 512] = "";
	va_list va;

	if (fmt) {
		va_start(va, fmt);
		vsnprintf(detail, sizeof(detail), fmt, va);
		va_end(va);
	}
	if (json_array_append_new(ap->plan, json_pack("{s:s#,s:s,s:s,s:s}", "op", &op, (size_t)1,
						       "object", object, "name", name, "detail", detail)))
		cmd_oom();
	if (op != '!')
		ap->changes++;
}

/* A store call's result: 0, or 1 after printing it with the line it came from. */
static int pc_did(struct pc_apply *ap, int rc, int line)
{
	if (rc >= 0)
		return 0;
	return pc_fail(ap->f, CMD_EXIT_FAIL, line, "%s", store_error()[0] ? store_error() : cmd_strerror(rc));
}

/* A value of the file for a plan line. */
static const char *pc_show(const char *key, json_t *v, char *buf, size_t len)
{
	if (!v || json_is_null(v))
		snprintf(buf, len, "%s", !strcmp(key, "rate") ? "off" :
			 !strcmp(key, "expires") ? "never" : !strcmp(key, "uses") ? "unlimited" : "-");
	else if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
	return buf;
}

static int64_t pc_when(json_t *v)
{
	int64_t t = 0;

	if (json_is_string(v) && policy_when_parse(json_string_value(v), 0, &t) != 0)
		t = 0;
	return t;
}

/* Split a reference the check already accepted (a bad one reaches the store as "", refused). */
static void pc_ref(const char *ref, bool provider_only, char *prov, char *name)
{
	if (policy_ref_parse(ref, provider_only, prov, name) != 0)
		prov[0] = name[0] = '\0';
}

static int pc_providers(struct pc_apply *ap)
{
	json_t *want = json_object_get(ap->want, "providers"), *cur = json_object_get(ap->cur, "providers");
	const char **names = pc_sorted(want), **cnames = pc_sorted(cur);
	int rc = 0;

	for (size_t i = 0; !rc && names[i]; i++) {
		const char *p = names[i];
		json_t *ws = json_object_get(json_object_get(want, p), "secrets");
		json_t *cs = json_object_get(json_object_get(cur, p), "secrets");
		const char **snames = pc_sorted(ws), **csnames;

		if (!json_object_get(cur, p)) {
			pc_plan(ap, '+', "provider", p, NULL);
			rc = pc_did(ap, store_provider_add(ap->c->st, p), pc_line(ap->f, "providers", p, NULL));
		}
		for (size_t j = 0; !rc && snames[j]; j++) {
			const char *n = snames[j];
			json_t *w = json_object_get(ws, n), *s = json_object_get(cs, n);
			int line = pc_line(ap->f, "providers", p, "secrets", n, NULL);
			char a[64], b[64], ref[2 * POLICY_NAME_MAX + 2];

			snprintf(ref, sizeof(ref), "%s/%s", p, n);
			if (!s) {
				rc = pc_fail(ap->f, CMD_EXIT_FAIL, line, "secret '%s' has no value: set it with "
					     "'shadm secret set %s' first", ref, ref);
				break;
			}
			if (!json_equal(json_object_get(w, "expires"), json_object_get(s, "expires"))) {
				rc = pc_fail(ap->f, CMD_EXIT_FAIL, line,
					     "secret '%s' expires %s in the file but %s in the store: apply cannot "
					     "change an expiry (store a new version with 'shadm secret set "
					     "--expires')", ref, pc_show("expires", json_object_get(w, "expires"), a, sizeof(a)),
					     pc_show("expires", json_object_get(s, "expires"), b, sizeof(b)));
				break;
			}
			if (!json_equal(json_object_get(w, "canary"), json_object_get(s, "canary"))) {
				bool on = json_is_true(json_object_get(w, "canary"));

				pc_plan(ap, '~', "secret", ref, "canary %s -> %s", on ? "off" : "on", on ? "on" : "off");
				rc = pc_did(ap, store_secret_canary(ap->c->st, p, n, on), line);
			}
		}
		csnames = pc_sorted(cs);
		for (size_t j = 0; !rc && csnames[j]; j++) {
			char ref[2 * POLICY_NAME_MAX + 2];

			if (json_object_get(ws, csnames[j]))
				continue;
			snprintf(ref, sizeof(ref), "%s/%s", p, csnames[j]);
			pc_plan(ap, '!', "secret", ref, "not in the file: kept (apply never removes secrets)");
		}
		free(snames);
		free(csnames);
	}
	for (size_t i = 0; !rc && cnames[i]; i++) {
		if (!json_object_get(want, cnames[i]))
			pc_plan(ap, '!', "provider", cnames[i],
				"not in the file: kept with its secrets (apply never removes providers)");
	}
	free(names);
	free(cnames);
	return rc;
}

static int pc_projects(struct pc_apply *ap)
{
	json_t *want = json_object_get(ap->want, "projects"), *cur = json_object_get(ap->cur, "projects");
	const char **names = pc_sorted(want);
	int rc = 0;

	for (size_t i = 0; !rc && names[i]; i++) {
		if (json_object_get(cur, names[i]))
			continue;
		pc_plan(ap, '+', "project", names[i], NULL);
		rc = pc_did(ap, store_project_add(ap->c->st, names[i]), pc_line(ap->f, "projects", names[i], NULL));
	}
	for (size_t i = 0; !rc && names[i]; i++) {
		const char *p = names[i];
		json_t *wl = json_object_get(json_object_get(want, p), "attach");
		json_t *cl = json_object_get(json_object_get(cur, p), "attach");
		char prov[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1], what[3 * POLICY_NAME_MAX];
		size_t j;
		json_t *e;

		json_array_foreach(wl, j, e) {
			const char *ref = json_string_value(e);

			if (pc_has(cl, ref))
				continue;
			snprintf(what, sizeof(what), "%s %s", p, ref);
			pc_plan(ap, '+', "attachment", what, NULL);
			pc_ref(ref, true, prov, name);
			rc = pc_did(ap, store_project_attach(ap->c->st, p, prov, name),
				    pc_line(ap->f, "projects", p, "attach", ref, NULL));
			if (rc)
				break;
		}
		json_array_foreach(cl, j, e) {
			const char *ref = json_string_value(e);

			if (rc || pc_has(wl, ref))
				continue;
			snprintf(what, sizeof(what), "%s %s", p, ref);
			pc_plan(ap, '-', "attachment", what, NULL);
			pc_ref(ref, true, prov, name);
			rc = pc_did(ap, store_project_detach(ap->c->st, p, prov, name),
				    pc_line(ap->f, "projects", p, NULL));
		}
	}
	free(names);
	return rc;
}

/* The binding of agent `name` as the file has it, for store_agent_add/set. */
static void pc_agent_row(const char *name, json_t *a, struct store_agent_row *row)
{
	const char *sha = json_string_value(json_object_get(a, "exe_sha256"));
	json_t *gid = json_object_get(a, "gid");
	const char *rate = json_string_value(json_object_get(a, "rate"));

	memset(row, 0, sizeof(*row));
	row->name = name;
	row->human = json_is_true(json_object_get(a, "human"));
	row->enabled = json_is_true(json_object_get(a, "enabled"));
	row->uid = (uid_t)json_integer_value(json_object_get(a, "uid"));
	row->has_gid = json_is_integer(gid);
	row->gid = (gid_t)json_integer_value(gid);
	row->exe = json_string_value(json_object_get(a, "exe"));
	row->cgroup = json_string_value(json_object_get(a, "cgroup"));
	if (sha) {
		row->has_exe_sha256 = true;
		for (int i = 0; i < POLICY_SHA256_BYTES; i++) {
			unsigned hi = (unsigned)(sha[2 * i] <= '9' ? sha[2 * i] - '0' : sha[2 * i] - 'a' + 10);
			unsigned lo = (unsigned)(sha[2 * i + 1] <= '9' ? sha[2 * i + 1] - '0' : sha[2 * i + 1] - 'a' + 10);

			row->exe_sha256[i] = (uint8_t)(hi << 4 | lo);
		}
	}
	if (rate && policy_rate_parse(rate, &row->rate_max, &row->rate_window) != 0)
		row->rate_max = row->rate_window = 0;   /* checked when read */
}

/* "key old -> new, ..." for the fields of agent w that differ from c and change `how`. */
static bool pc_agent_diff(json_t *w, json_t *c, enum pc_how how, char *buf, size_t len)
{
	const struct pc_agent_field *fd;
	size_t n = 0;

	buf[0] = '\0';
	for (fd = pc_agent_fields; fd->key; fd++) {
		char a[PATH_MAX], b[PATH_MAX];
		json_t *wv = json_object_get(w, fd->key), *cv = json_object_get(c, fd->key);

		if (fd->how != how || json_equal(wv, cv))
			continue;
		snprintf(buf + n, len - n, "%s%s %s -> %s", n ? ", " : "", fd->key,
			 pc_show(fd->key, cv, a, sizeof(a)), pc_show(fd->key, wv, b, sizeof(b)));
		n = strlen(buf);
	}
	return n > 0;
}

/* The fields of the binding that differ, as one store_agent_set change. */
static void pc_agent_change(json_t *w, json_t *c, const struct store_agent_row *row,
			    struct store_agent_change *ch)
{
#define PC_DIFF(key) (!json_equal(json_object_get(w, key), json_object_get(c, key)))
	memset(ch, 0, sizeof(*ch));
	if ((ch->set_uid = PC_DIFF("uid")))
		ch->uid = row->uid;
	if ((ch->set_gid = PC_DIFF("gid"))) {
		ch->has_gid = row->has_gid;
		ch->gid = row->gid;
	}
	if ((ch->set_exe = PC_DIFF("exe")))
		ch->exe = row->exe;
	if ((ch->set_exe_sha256 = PC_DIFF("exe_sha256"))) {
		ch->has_exe_sha256 = row->has_exe_sha256;
		memcpy(ch->exe_sha256, row->exe_sha256, POLICY_SHA256_BYTES);
	}
	if ((ch->set_cgroup = PC_DIFF("cgroup")))
		ch->cgroup = row->cgroup;
	if ((ch->set_human = PC_DIFF("human")))
		ch->human = row->human;
#undef PC_DIFF
}

/* An executable apply binds must be a regular file, as for agent add. 0, or 1 after printing. */
static int pc_exe_ok(struct pc_apply *ap, const char *agent, const char *exe)
{
	char canon[PATH_MAX];
	struct stat sb;

	if (!exe)
		return 0;
	if (!realpath(exe, canon))
		return pc_fail(ap->f, CMD_EXIT_FAIL, pc_line(ap->f, "agents", agent, "exe", NULL),
			       "agent '%s': cannot resolve executable '%s': %s", agent, exe,
			       cmd_strerror(errno));
	if (stat(canon, &sb) < 0 || !S_ISREG(sb.st_mode))
		return pc_fail(ap->f, CMD_EXIT_FAIL, pc_line(ap->f, "agents", agent, "exe", NULL),
			       "agent '%s': invalid executable '%s': not a regular file", agent, exe);
	return 0;
}

static int pc_agents(struct pc_apply *ap)
{
	json_t *want = json_object_get(ap->want, "agents"), *cur = json_object_get(ap->cur, "agents");
	const char **names = pc_sorted(want);
	char detail[PATH_MAX * 3];
	int rc = 0;

	for (size_t i = 0; !rc && names[i]; i++) {
		const char *name = names[i];
		json_t *w = json_object_get(want, name), *c = json_object_get(cur, name);
		int line = pc_line(ap->f, "agents", name, NULL);
		struct store_agent_row row;

		pc_agent_row(name, w, &row);
		if (!c) {
			/* the binding and rate it gets, leaving out what every agent has */
			json_t *dflt = json_pack("{s:b}", "human", 0);

			detail[0] = '\0';
			for (const struct pc_agent_field *fd = pc_agent_fields; fd->key; fd++) {
				json_t *wv = json_object_get(w, fd->key);
				size_t n = strlen(detail);
				char v[PATH_MAX];

				if (fd->how == PC_OWN || fd->how == PC_ENABLED || json_is_null(wv) ||
				    json_equal(wv, json_object_get(dflt, fd->key)))
					continue;
				snprintf(detail + n, sizeof(detail) - n, "%s%s %s", n ? ", " : "", fd->key,
					 pc_show(fd->key, wv, v, sizeof(v)));
			}
			json_decref(dflt);
			pc_plan(ap, '+', "agent", name, "%s", detail);
			rc = pc_exe_ok(ap, name, row.exe);
			if (!rc)
				rc = pc_did(ap, store_agent_add(ap->c->st, &row), line);
			if (!rc && !row.enabled) {
				pc_plan(ap, '~', "agent", name, "enabled true -> false");
				rc = pc_did(ap, store_agent_enable(ap->c->st, name, false), line);
			}
			continue;
		}
		if (pc_agent_diff(w, c, PC_BIND, detail, sizeof(detail))) {
			struct store_agent_change ch;

			pc_agent_change(w, c, &row, &ch);
			pc_plan(ap, '~', "agent", name, "%s", detail);
			rc = pc_exe_ok(ap, name, ch.set_exe ? row.exe : NULL);
			if (!rc)
				rc = pc_did(ap, store_agent_set(ap->c->st, name, &ch), line);
		}
		if (!rc && pc_agent_diff(w, c, PC_ENABLED, detail, sizeof(detail))) {
			pc_plan(ap, '~', "agent", name, "%s", detail);
			rc = pc_did(ap, store_agent_enable(ap->c->st, name, row.enabled), line);
		}
		if (!rc && pc_agent_diff(w, c, PC_RATE, detail, sizeof(detail))) {
			pc_plan(ap, '~', "agent", name, "%s", detail);
			rc = pc_did(ap, store_agent_rate(ap->c->st, name, row.rate_max, row.rate_window), line);
		}
	}
	free(names);
	return rc;
}

static int pc_assignments(struct pc_apply *ap)
{
	json_t *want = json_object_get(ap->want, "agents"), *cur = json_object_get(ap->cur, "agents");
	json_t *projects = json_object_get(ap->want, "projects");
	const char **names = pc_sorted(want);
	int rc = 0;

	for (size_t i = 0; !rc && names[i]; i++) {
		const char *a = names[i];
		json_t *wl = json_object_get(json_object_get(want, a), "projects");
		json_t *cl = json_object_get(json_object_get(cur, a), "projects");
		char what[2 * POLICY_NAME_MAX + 2];
		size_t j;
		json_t *e;

		json_array_foreach(wl, j, e) {
			const char *p = json_string_value(e);

			if (rc || pc_has(cl, p))
				continue;
			snprintf(what, sizeof(what), "%s %s", a, p);
			pc_plan(ap, '+', "assignment", what, NULL);
			rc = pc_did(ap, store_assign(ap->c->st, a, p), pc_line(ap->f, "agents", a, "projects", p, NULL));
		}
		json_array_foreach(cl, j, e) {
			const char *p = json_string_value(e);

			/* a project that goes takes its assignments with it */
			if (rc || pc_has(wl, p) || !json_object_get(projects, p))
				continue;
			snprintf(what, sizeof(what), "%s %s", a, p);
			pc_plan(ap, '-', "assignment", what, NULL);
			rc = pc_did(ap, store_unassign(ap->c->st, a, p), pc_line(ap->f, "agents", a, NULL));
		}
	}
	free(names);
	return rc;
}

/* "until DATE, N uses" for a grant's limits ("" when it has none). */
static void pc_limits(json_t *g, char *buf, size_t len)
{
	json_t *e = json_object_get(g, "expires"), *u = json_object_get(g, "uses");
	size_t n;

	buf[0] = '\0';
	if (json_is_string(e))
		snprintf(buf, len, "until %s", json_string_value(e));
	n = strlen(buf);
	if (json_is_integer(u))
		snprintf(buf + n, len - n, "%s%lld use%s", n ? ", " : "", (long long)json_integer_value(u),
			 json_integer_value(u) == 1 ? "" : "s");
}

static int pc_grants(struct pc_apply *ap)
{
	json_t *want = json_object_get(ap->want, "agents"), *cur = json_object_get(ap->cur, "agents");
	const char **names = pc_sorted(want);
	int rc = 0;

	for (size_t i = 0; !rc && names[i]; i++) {
		const char *a = names[i];
		json_t *wg = json_object_get(json_object_get(want, a), "grants");
		json_t *cg = json_object_get(json_object_get(cur, a), "grants");
		const char **refs = pc_sorted(wg), **crefs = pc_sorted(cg);
		char prov[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1], what[3 * POLICY_NAME_MAX];

		for (size_t j = 0; !rc && refs[j]; j++) {
			json_t *w = json_object_get(wg, refs[j]), *c = json_object_get(cg, refs[j]);
			int line = pc_line(ap->f, "agents", a, "grants", refs[j], NULL);
			struct store_grant_opts o = { 0 };
			char detail[256], x[64], y[64];

			if (c && json_equal(w, c))
				continue;
			o.expires = pc_when(json_object_get(w, "expires"));
			o.uses = json_integer_value(json_object_get(w, "uses"));
			snprintf(what, sizeof(what), "%s %s", a, refs[j]);
			if (o.expires && o.expires <= ap->now) {
				rc = pc_fail(ap->f, CMD_EXIT_FAIL, line, "grant of '%s' to '%s': expires %s, "
					     "which is past", refs[j], a, json_string_value(json_object_get(w, "expires")));
				break;
			}
			if (c) {
				detail[0] = '\0';
				for (const char *const *k = (const char *const[]){ "expires", "uses", NULL }; *k; k++) {
					size_t n = strlen(detail);

					if (json_equal(json_object_get(w, *k), json_object_get(c, *k)))
						continue;
					snprintf(detail + n, sizeof(detail) - n, "%s%s %s -> %s", n ? ", " : "", *k,
						 pc_show(*k, json_object_get(c, *k), x, sizeof(x)),
						 pc_show(*k, json_object_get(w, *k), y, sizeof(y)));
				}
				pc_plan(ap, '~', "grant", what, "%s", detail);
			} else {
				pc_limits(w, detail, sizeof(detail));
				pc_plan(ap, '+', "grant", what, "%s", detail);
			}
			pc_ref(refs[j], false, prov, name);
			rc = pc_did(ap, store_grant_with(ap->c->st, a, prov, name, &o), line);
		}
		for (size_t j = 0; !rc && crefs[j]; j++) {
			if (json_object_get(wg, crefs[j]))
				continue;
			snprintf(what, sizeof(what), "%s %s", a, crefs[j]);
			pc_plan(ap, '-', "grant", what, NULL);
			pc_ref(crefs[j], false, prov, name);
			rc = pc_did(ap, store_revoke(ap->c->st, a, prov, name), pc_line(ap->f, "agents", a, NULL));
		}
		free(refs);
		free(crefs);
	}
	free(names);
	return rc;
}

/* Last, what the file no longer names: agents, then projects (with what hangs off them). */
static int pc_removals(struct pc_apply *ap)
{
	static const char *const secs[] = { "agents", "projects" };
	int rc = 0;

	for (int s = 0; !rc && s < 2; s++) {
		json_t *want = json_object_get(ap->want, secs[s]);
		const char **names = pc_sorted(json_object_get(ap->cur, secs[s]));

		for (size_t i = 0; !rc && names[i]; i++) {
			if (json_object_get(want, names[i]))
				continue;
			pc_plan(ap, '-', s ? "project" : "agent", names[i], NULL);
			rc = pc_did(ap, s ? store_project_rm(ap->c->st, names[i])
					  : store_agent_rm(ap->c->st, names[i]), 0);
		}
		free(names);
	}
	return rc;
}

static void pc_print_plan(struct pc_apply *ap, bool dry_run)
{
	static const char *const ops[] = { "+add", "~change", "-remove", "!note" };
	size_t i;
	json_t *e;

	json_array_foreach(ap->plan, i, e) {
		const char *op = json_string_value(json_object_get(e, "op"));
		const char *detail = json_string_value(json_object_get(e, "detail"));

		if (ap->c->json) {
			const char *word = "note";

			for (size_t k = 0; k < 4; k++) {
				if (ops[k][0] == op[0])
					word = ops[k] + 1;
			}
			cmd_json_print(json_pack("{s:s,s:O,s:O,s:s?}", "op", word,
						 "object", json_object_get(e, "object"),
						 "name", json_object_get(e, "name"),
						 "detail", detail[0] ? detail : NULL));
			continue;
		}
		printf("%s %s %s%s%s\n", op, json_string_value(json_object_get(e, "object")),
		       json_string_value(json_object_get(e, "name")), detail[0] ? ": " : "", detail);
	}
	if (ap->c->json)
		cmd_json_print(json_pack("{s:b,s:i,s:b}", "ok", 1, "changes", ap->changes, "dry_run", dry_run));
	else if (ap->changes == 0)
		puts("no changes");
	else if (dry_run)
		printf("dry run: %d change%s, nothing applied\n", ap->changes, ap->changes == 1 ? "" : "s");
	else
		printf("applied %d change%s\n", ap->changes, ap->changes == 1 ? "" : "s");
}

int cmd_apply(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "FILE", NULL };
	bool dry_run = false;
	const struct cmd_opt opts[] = {
		{ "--dry-run", NULL, &dry_run },
		{ NULL, NULL, NULL },
	};
	struct pc_file f;
	struct pc_apply ap;
	json_error_t jerr;
	json_t *in;
	const char *p[1];
	char *text = NULL;
	int rc, brc;

	CMD_PARSE(c, "apply", argc, argv, opts, pos, 1, p);
	if ((rc = pc_read(p[0], &text)))
		return rc;
	f.name = strcmp(p[0], "-") ? p[0] : "stdin";
	f.text = text;
	memset(&ap, 0, sizeof(ap));
	ap.c = c;
	ap.f = &f;
	/* the whole file is read and checked before the store is opened */
	in = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!in) {
		rc = pc_fail(&f, CMD_EXIT_USAGE, jerr.line, "%s", jerr.text);
		goto out;
	}
	rc = pc_check(&f, in, &ap.want);
	json_decref(in);
	if (rc || (rc = cmd_open(c)))
		goto out;
	if (strcmp(json_string_value(json_object_get(ap.want, "workspace")), store_workspace_current(c->st))) {
		rc = pc_fail(&f, CMD_EXIT_FAIL, pc_line(&f, "workspace", NULL),
			     "the file is for workspace '%s', not '%s' (use -w, or edit \"workspace\")",
			     json_string_value(json_object_get(ap.want, "workspace")),
			     store_workspace_current(c->st));
		goto out;
	}
	if ((rc = store_batch_begin(c->st)) < 0) {
		rc = cmd_store_fail(rc);
		goto out;
	}
	/* read inside the batch: nothing changes between the comparison and the changes */
	ap.now = (int64_t)time(NULL);
	if (!(ap.plan = json_array()))
		cmd_oom();
	if ((rc = pc_model(c->st, &ap.cur)) < 0)
		rc = cmd_store_fail(rc);
	if (!rc)
		rc = pc_providers(&ap);
	if (!rc)
		rc = pc_projects(&ap);
	if (!rc)
		rc = pc_agents(&ap);
	if (!rc)
		rc = pc_assignments(&ap);
	if (!rc)
		rc = pc_grants(&ap);
	if (!rc)
		rc = pc_removals(&ap);
	/* nothing to change, a dry run or a failure: roll back, so not even a commit is made */
	brc = store_batch_end(c->st, rc || dry_run || ap.changes == 0 ? -ECANCELED : 0);
	if (!rc && brc < 0 && !dry_run && ap.changes)
		rc = cmd_store_fail(brc);
	if (!rc)
		pc_print_plan(&ap, dry_run);
out:
	json_decref(ap.cur);
	json_decref(ap.want);
	json_decref(ap.plan);
	free(text);
	return rc;
}

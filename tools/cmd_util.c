/*
 * cmd_util.c - the plumbing every shadm command shares: the argument
 * parser, the checks that turn a malformed name, duration or date into one
 * clear line, the messages and exit statuses, opening the store as the
 * operator, and the two output forms (aligned tables for people, one JSON
 * object per line for scripts).
 *
 * Arguments are checked here before any command opens the store, so bad
 * input never changes anything.
 */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tools/cmd.h"

/* ---- escaping ---------------------------------------------------------------- */

#define CMD_ESC_SLOTS 8

const char *cmd_esc(const char *s)
{
	static char *slot[CMD_ESC_SLOTS];
	static unsigned next;
	const unsigned char *p;
	size_t need;
	char *buf;

	if (!s)
		return NULL;
	/* The common case, plain ASCII text, needs no copy. */
	for (p = (const unsigned char *)s; *p >= 0x20 && *p < 0x7f && *p != '\\'; p++)
		;
	if (!*p)
		return s;
	need = policy_escape(s, NULL, 0) + 1;
	buf = malloc(need);
	if (!buf)
		cmd_oom();
	policy_escape(s, buf, need);
	free(slot[next]);
	slot[next] = buf;
	next = (next + 1) % CMD_ESC_SLOTS;
	return buf;
}

/*
 * printf into a new string, for messages and lines that are escaped as a
 * whole: a message is one line, whatever the strings it quotes hold.
 */
static char *cmd_vformat(const char *fmt, va_list ap)
{
	va_list ap2;
	char *s;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || !(s = malloc((size_t)n + 1)))
		cmd_oom();
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

/* ---- errors ----------------------------------------------------------------- */

static void cmd_vmsg(const char *fmt, va_list ap)
{
	char *msg = cmd_vformat(fmt, ap);

	fprintf(stderr, "shadm: %s\n", cmd_esc(msg));
	free(msg);
}

int cmd_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cmd_vmsg(fmt, ap);
	va_end(ap);
	return CMD_EXIT_FAIL;
}

int cmd_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cmd_vmsg(fmt, ap);
	va_end(ap);
	return CMD_EXIT_USAGE;
}

const char *cmd_strerror(int err)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s", strerror(err < 0 ? -err : err));
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

int cmd_store_fail(int rc)
{
	const char *msg = store_error();

	/* The store writes its own line; fall back only if it left none. */
	if (msg && msg[0])
		return cmd_fail("%s", msg);
	return cmd_fail("%s", cmd_strerror(rc));
}

void cmd_oom(void)
{
	fputs("shadm: out of memory\n", stderr);
	exit(CMD_EXIT_FAIL);
}

/* ---- argument parsing ---------------------------------------------------------- */

static int cmd_help_for(const char *what)
{
	char group[64];
	const struct cmd_entry *e;
	size_t n = strcspn(what, " ");

	/* "secret set" -> the usage of the whole "secret" group. */
	snprintf(group, sizeof(group), "%.*s", (int)n, what);
	e = cmd_find(group);
	if (e)
		cmd_print_usage(stdout, e);
	return CMD_HELP_SHOWN;
}

static const struct cmd_opt *cmd_opt_find(const struct cmd_opt *opts, const char *name, size_t len)
{
	for (; opts && opts->name; opts++) {
		if (strlen(opts->name) == len && strncmp(opts->name, name, len) == 0)
			return opts;
	}
	return NULL;
}

/*
 * Does this look like an option someone meant ("--expire"), rather than a
 * pasted value that happens to start with '-' ("-----BEGIN ...")? Only
 * the former is repeated in an error message.
 */
static bool cmd_option_like(const char *a, size_t len)
{
	size_t i = a[1] == '-' ? 2 : 1;

	if (len > 32 || i >= len || a[i] < 'a' || a[i] > 'z')
		return false;
	for (; i < len; i++) {
		if (!((a[i] >= 'a' && a[i] <= 'z') || (a[i] >= '0' && a[i] <= '9') || a[i] == '-'))
			return false;
	}
	return true;
}

int cmd_parse(struct cmd_ctx *c, const char *what, int argc, char **argv,
	      const struct cmd_opt *opts, const char *const *posnames,
	      int required, const char **pos)
{
	int npos = 0, maxpos = 0, i;
	bool options_done = false;

	while (posnames && posnames[maxpos])
		pos[maxpos++] = NULL;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!options_done && strcmp(a, "--") == 0) {
			options_done = true;
			continue;
		}
		/* "-" alone is an ordinary argument (a file name, say). */
		if (!options_done && a[0] == '-' && a[1] != '\0') {
			const char *eq = strchr(a, '=');
			size_t len = eq ? (size_t)(eq - a) : strlen(a);
			const struct cmd_opt *o;

			if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
				return cmd_help_for(what);
			if (strcmp(a, "--json") == 0) {
				c->json = true;
				continue;
			}
			o = a[1] == '-' ? cmd_opt_find(opts, a, len) : NULL;
			if (!o && !cmd_option_like(a, len))
				return cmd_usage("unknown option for '%s' (see 'shadm help %.*s')", what,
						 (int)strcspn(what, " "), what);
			if (!o)
				return cmd_usage("unknown option '%.*s' for '%s'", (int)len, a, what);
			if (o->flag) {
				if (eq)
					return cmd_usage("%s takes no value", o->name);
				*o->flag = true;
				continue;
			}
			if (eq) {
				*o->value = eq + 1;
			} else {
				if (i + 1 >= argc)
					return cmd_usage("%s needs a value", o->name);
				*o->value = argv[++i];
			}
			continue;
		}
		if (npos >= maxpos && c->value_args)
			return cmd_usage("%s reads the value from standard input or --from-file, "
					 "never from the command line", what);
		if (npos >= maxpos)
			return cmd_usage("unexpected argument '%s'", a);
		pos[npos++] = a;
	}
	if (npos < required)
		return cmd_usage("missing argument %s for '%s'", posnames[npos], what);
	return 0;
}

int cmd_dispatch(struct cmd_ctx *c, int argc, char **argv, const struct cmd_sub *subs)
{
	const struct cmd_sub *s;
	const char *group = argv[0];

	if (argc < 2) {
		return cmd_usage("missing subcommand for '%s' (see 'shadm help %s')", group, group);
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		cmd_help_for(group);
		return CMD_EXIT_OK;
	}
	/* Allow `shadm secret --json list`: a global flag before the subcommand. */
	if (strcmp(argv[1], "--json") == 0) {
		c->json = true;
		argv[1] = argv[0];
		return cmd_dispatch(c, argc - 1, argv + 1, subs);
	}
	for (s = subs; s->name; s++) {
		if (strcmp(s->name, argv[1]) == 0)
			return s->fn(c, argc - 1, argv + 1);
	}
	if (argv[1][0] == '-' && cmd_option_like(argv[1], strcspn(argv[1], "=")))
		return cmd_usage("unknown option '%s' for '%s'", argv[1], group);
	if (argv[1][0] == '-')
		return cmd_usage("unknown option for '%s' (see 'shadm help %s')", group, group);
	return cmd_usage("unknown subcommand '%s' for '%s' (see 'shadm help %s')",
			 argv[1], group, group);
}

int cmd_number(const char *opt, const char *s, uint64_t max, bool positive, uint64_t *out)
{
	uint64_t v = 0;
	const char *p;
	bool big = false;

	if (!s || !*s)
		return cmd_usage("%s needs a number", opt);
	for (p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return cmd_usage("%s needs a number", opt);
		if (v > (UINT64_MAX - 9) / 10)
			big = true;
		else
			v = v * 10 + (uint64_t)(*p - '0');
	}
	if (positive && v == 0 && !big)
		return cmd_usage("%s needs a number greater than 0", opt);
	if (big || v > max) {
		if (max < UINT32_MAX)
			return cmd_usage("%s needs a number from %d to %llu", opt, positive ? 1 : 0,
					 (unsigned long long)max);
		return cmd_usage("%s is too large", opt);
	}
	*out = v;
	return 0;
}

/* ---- argument checks --------------------------------------------------------- */

int cmd_check_name(const char *name, enum policy_name_kind kind)
{
	if (policy_name_check(name, kind) == 0)
		return 0;
	if (kind == POLICY_NAME_AGENT && strcmp(name, "self") == 0)
		return cmd_fail("invalid name 'self': reserved for the mount");
	return cmd_fail("invalid name '%s': use 1-128 of A-Z a-z 0-9 . _ - , not starting with . or -",
			name);
}

int cmd_check_ref(const char *ref, bool allow_provider_only, char *provider, char *name)
{
	const char *slash = strchr(ref, '/');
	char part[POLICY_NAME_MAX + 2];
	size_t plen;

	if (policy_ref_parse(ref, allow_provider_only, provider, name) == 0)
		return 0;
	/* Say which part is wrong rather than just "bad reference". */
	if (!slash) {
		if (!allow_provider_only)
			return cmd_fail("invalid secret '%s': use PROVIDER/NAME", ref);
		return cmd_check_name(ref, POLICY_NAME_PROVIDER);
	}
	plen = (size_t)(slash - ref);
	if (plen > POLICY_NAME_MAX)
		plen = POLICY_NAME_MAX + 1;
	memcpy(part, ref, plen);
	part[plen] = '\0';
	if (policy_name_check(part, POLICY_NAME_PROVIDER) != 0)
		return cmd_check_name(part, POLICY_NAME_PROVIDER);
	if (policy_name_check(slash + 1, POLICY_NAME_SECRET) != 0)
		return cmd_check_name(slash + 1, POLICY_NAME_SECRET);
	return cmd_fail("invalid secret '%s': use PROVIDER/NAME", ref);
}

int cmd_check_duration(const char *s, int64_t *seconds)
{
	if (policy_duration_parse(s, seconds) == 0)
		return 0;
	return cmd_fail("invalid duration '%s': use a number and s, m, h or d (30s, 15m, 2h, 7d)", s);
}

int cmd_check_when(const char *s, int64_t now, int64_t *when)
{
	if (policy_when_parse(s, now, when) == 0)
		return 0;
	return cmd_fail("invalid date '%s': use a duration (7d) or an ISO-8601 date "
			"(2027-01-31 or 2027-01-31T12:00:00Z)", s);
}

/* ---- the store ------------------------------------------------------------------ */

int cmd_config(struct cmd_ctx *c)
{
	int rc;

	if (c->cfg_loaded)
		return 0;
	rc = store_config_load(c->config_path, &c->cfg);
	if (rc < 0)
		return cmd_store_fail(rc);
	if (c->workspace)
		snprintf(c->cfg.workspace, sizeof(c->cfg.workspace), "%s", c->workspace);
	c->cfg.migrate = true;      /* the operator's tool brings a shared database's schema forward */
	c->cfg_loaded = true;
	return 0;
}

const char *cmd_actor(void)
{
	static char buf[64];
	const char *sudo = getenv("SUDO_USER");
	struct passwd *pw;

	/* Under sudo the person is SUDO_USER, not root. */
	if (sudo && sudo[0])
		return sudo;
	pw = getpwuid(getuid());
	if (pw && pw->pw_name && pw->pw_name[0])
		return pw->pw_name;
	snprintf(buf, sizeof(buf), "uid:%lu", (unsigned long)getuid());
	return buf;
}

int cmd_open(struct cmd_ctx *c)
{
	int rc;

	if (c->st)
		return 0;
	rc = cmd_config(c);
	if (rc)
		return rc;
	rc = store_open(&c->cfg, cmd_actor(), &c->st);
	if (rc < 0) {
		c->st = NULL;
		return cmd_store_fail(rc);
	}
	return 0;
}

void cmd_close(struct cmd_ctx *c)
{
	store_close(c->st);
	c->st = NULL;
}

/* ---- output ---------------------------------------------------------------------- */

struct cmd_table {
	int ncols;
	size_t nrows, cap;         /* rows including the header */
	char **cells;              /* nrows * ncols, row-major */
};

static char *cmd_strdup(const char *s)
{
	char *d = strdup(s ? s : "-");

	if (!d)
		cmd_oom();
	return d;
}

/* Room for one more row; its cells are then set with cmd_table_cell. */
static char **cmd_table_row(struct cmd_table *t)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **cells = realloc(t->cells, cap * (size_t)t->ncols * sizeof(*cells));

		if (!cells)
			cmd_oom();
		t->cells = cells;
		t->cap = cap;
	}
	return t->cells + t->nrows++ * (size_t)t->ncols;
}

/* An empty field reads as a hole in a table: show "-". */
static char *cmd_table_cell(const char *s)
{
	return cmd_strdup(s && *s ? cmd_esc(s) : "-");
}

static void cmd_table_vadd(struct cmd_table *t, va_list ap)
{
	char **row = cmd_table_row(t);

	for (int i = 0; i < t->ncols; i++)
		row[i] = cmd_table_cell(va_arg(ap, const char *));
}

struct cmd_table *cmd_table_new(int ncols, ...)
{
	struct cmd_table *t = calloc(1, sizeof(*t));
	va_list ap;

	if (!t)
		cmd_oom();
	t->ncols = ncols;
	va_start(ap, ncols);
	cmd_table_vadd(t, ap);
	va_end(ap);
	return t;
}

struct cmd_table *cmd_table_new_array(int ncols, const char *const *head)
{
	struct cmd_table *t = calloc(1, sizeof(*t));

	if (!t)
		cmd_oom();
	t->ncols = ncols;
	cmd_table_add_array(t, head);
	return t;
}

void cmd_table_add(struct cmd_table *t, ...)
{
	va_list ap;

	va_start(ap, t);
	cmd_table_vadd(t, ap);
	va_end(ap);
}

void cmd_table_add_array(struct cmd_table *t, const char *const *cells)
{
	char **row = cmd_table_row(t);

	for (int i = 0; i < t->ncols; i++)
		row[i] = cmd_table_cell(cells[i]);
}

void cmd_table_print(struct cmd_table *t)
{
	size_t *width = calloc((size_t)t->ncols, sizeof(*width));
	size_t r;
	int i;

	if (!width)
		cmd_oom();
	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			size_t n = strlen(t->cells[r * (size_t)t->ncols + (size_t)i]);
			if (n > width[i])
				width[i] = n;
		}
	}
	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			char *s = t->cells[r * (size_t)t->ncols + (size_t)i];
			/* No trailing blanks: the last column is not padded. */
			if (i == t->ncols - 1)
				printf("%s\n", s);
			else
				printf("%-*s  ", (int)width[i], s);
			free(s);
		}
	}
	free(width);
	free(t->cells);
	free(t);
}

void cmd_table_free(struct cmd_table *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

int cmd_list_end(struct cmd_ctx *c, int rc)
{
	struct cmd_table *t = c->table;

	c->table = NULL;
	if (rc < 0) {
		cmd_table_free(t);
		return cmd_store_fail(rc);
	}
	if (t)
		cmd_table_print(t);
	return CMD_EXIT_OK;
}

void cmd_json_print(json_t *obj)
{
	char *s;

	if (!obj)
		cmd_oom();
	s = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(obj);
	if (!s)
		cmd_oom();
	printf("%s\n", s);
	free(s);
}

int cmd_done(struct cmd_ctx *c, json_t *obj, const char *fmt, ...)
{
	va_list ap;
	char *line;

	if (c->json) {
		cmd_json_print(obj ? obj : json_pack("{s:b}", "ok", 1));
		return CMD_EXIT_OK;
	}
	json_decref(obj);
	va_start(ap, fmt);
	line = cmd_vformat(fmt, ap);
	va_end(ap);
	printf("%s\n", cmd_esc(line));
	free(line);
	return CMD_EXIT_OK;
}

void cmd_time(int64_t t, const char *zero, char *buf, size_t len)
{
	if (t == 0) {
		snprintf(buf, len, "%s", zero);
		return;
	}
	policy_time_format(t, buf, len);
}

json_t *cmd_json_time(int64_t t)
{
	char buf[32];

	if (t == 0)
		return json_null();
	policy_time_format(t, buf, sizeof(buf));
	return json_string(buf);
}

void cmd_hex(const uint8_t *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}

const char *cmd_i64(int64_t v, char *buf, size_t len)
{
	snprintf(buf, len, "%lld", (long long)v);
	return buf;
}

/* ---- confirming a removal ---------------------------------------------------------- */

/* "2 live grants" / "1 assignment" appended to buf, joined with ", " and " and ". */
static void cmd_drop_part(char *buf, size_t len, int64_t n, const char *one, const char *many,
			  int *parts, int total)
{
	size_t used = strlen(buf);

	if (n <= 0)
		return;
	(*parts)++;
	snprintf(buf + used, len - used, "%s%lld %s",
		 *parts == 1 ? "" : *parts == total ? " and " : ", ",
		 (long long)n, n == 1 ? one : many);
}

int cmd_confirm_drops(struct cmd_ctx *c, const char *what, enum store_object kind,
		      const char *name, bool yes)
{
	struct store_drops d;
	char drops[160] = "", answer[16];
	int rc, parts = 0, total;

	if ((rc = cmd_open(c)))
		return rc;
	if ((rc = store_rm_drops(c->st, kind, name, &d)) < 0)
		return cmd_store_fail(rc);
	/* attachments alone give nobody access: only live access needs a yes */
	if ((d.grants == 0 && d.assignments == 0) || yes)
		return 0;
	total = (d.grants > 0) + (d.assignments > 0) + (d.attachments > 0);
	cmd_drop_part(drops, sizeof drops, d.grants, "live grant", "live grants", &parts, total);
	cmd_drop_part(drops, sizeof drops, d.assignments, "assignment", "assignments", &parts, total);
	cmd_drop_part(drops, sizeof drops, d.attachments, "attachment", "attachments", &parts, total);
	/* Without a person to ask, a script must say --yes: live access never goes by accident. */
	if (!isatty(STDIN_FILENO))
		return cmd_fail("'%s %s' would drop %s: nothing removed (pass --yes to confirm)",
				what, name, drops);
	fprintf(stderr, "shadm: '%s %s' drops %s. Drop them? [y/N] ", what, name, drops);
	fflush(stderr);
	if (!fgets(answer, sizeof answer, stdin))
		answer[0] = '\0';
	answer[strcspn(answer, "\r\n")] = '\0';
	if (strcasecmp(answer, "y") == 0 || strcasecmp(answer, "yes") == 0)
		return 0;
	return cmd_fail("nothing removed");
}

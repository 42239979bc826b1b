/*
 * cmd_secret.c - `shadm secret`: set, list, reveal, versions, rollback,
 * destroy, canary and rm.
 *
 * This is the one place shadm touches plaintext. A value comes from
 * standard input or --from-file, never from argv or the environment; it is
 * read into sodium_malloc memory (reading one byte past the limit so an
 * oversized value is detected rather than silently cut), handed to the
 * store, and wiped with store_value_free(). From a pipe or file the bytes
 * are kept exactly: no newline is stripped. From a terminal the value is
 * one line typed twice without echo, and the Enter that ends it is not
 * part of it. An empty value is refused unless --allow-empty: an empty
 * pipe is far more often a mistake than a wish. `reveal` writes exactly
 * the value's bytes and nothing else, so `shadm secret reveal a/b > file`
 * round-trips.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "tools/cmd.h"

/* ---- reading a value -------------------------------------------------------------- */

/* The terminal state to restore if the operator interrupts with echo off. */
static struct termios secret_saved_tty;
static volatile sig_atomic_t secret_tty_changed;

static void secret_on_signal(int sig)
{
	if (secret_tty_changed)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &secret_saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Read all of fd into sodium_malloc memory, at most max+1 bytes. Returns
 * 0 with *buf and *len set, or an exit status after printing.
 */
static int secret_read(int fd, const char *what, size_t max, uint8_t **buf, size_t *len)
{
	size_t cap = max + 1, n = 0;
	uint8_t *b = sodium_malloc(cap ? cap : 1);

	if (!b)
		cmd_oom();
	while (n < cap) {
		ssize_t r = read(fd, b + n, cap - n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			store_value_free(b, cap);
			return cmd_fail("cannot read the value from %s: %s", what, cmd_strerror(errno));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		store_value_free(b, cap);
		return cmd_fail("value is larger than the limit of %zu bytes", max);
	}
	/* Keep the sodium_malloc length the caller will free with: cap. */
	*buf = b;
	*len = n;
	return 0;
}

/*
 * One line from the terminal, echo already off: at most max bytes, the
 * newline that ends it dropped. Same contract as secret_read().
 */
static int secret_read_line(size_t max, uint8_t **buf, size_t *len)
{
	size_t cap = max + 1, n = 0;
	uint8_t *b = sodium_malloc(cap ? cap : 1);

	if (!b)
		cmd_oom();
	for (;;) {
		ssize_t r = n < cap ? read(STDIN_FILENO, b + n, 1) : 0;

		if (r < 0) {
			if (errno == EINTR)
				continue;
			store_value_free(b, cap);
			return cmd_fail("cannot read the value from the terminal: %s", cmd_strerror(errno));
		}
		if (r == 0 || b[n] == '\n')
			break;
		n++;
	}
	/* the Enter is not echoed either: end the prompt's line ourselves */
	fputc('\n', stderr);
	if (n > max) {
		store_value_free(b, cap);
		return cmd_fail("value is larger than the limit of %zu bytes", max);
	}
	*buf = b;
	*len = n;
	return 0;
}

/*
 * The value from stdin; on a terminal, typed twice with echo off, and
 * refused when the two differ (a typo stored is a broken credential found
 * much later).
 */
static int secret_read_stdin(const char *ref, size_t max, uint8_t **buf, size_t *len)
{
	struct termios t;
	struct sigaction sa, old_int, old_term;
	uint8_t *again = NULL;
	size_t again_len = 0;
	int rc;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &secret_saved_tty) != 0)
		return secret_read(STDIN_FILENO, "standard input", max, buf, len);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = secret_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	t = secret_saved_tty;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	t.c_lflag |= ICANON;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) != 0) {
		rc = cmd_fail("cannot turn off echo on the terminal: %s", cmd_strerror(errno));
		goto out;
	}
	secret_tty_changed = 1;
	fprintf(stderr, "Value for %s: ", ref);
	fflush(stderr);
	if ((rc = secret_read_line(max, buf, len)))
		goto out;
	fputs("Again: ", stderr);
	fflush(stderr);
	if ((rc = secret_read_line(max, &again, &again_len))) {
		store_value_free(*buf, max + 1);
		goto out;
	}
	if (again_len != *len || (*len && sodium_memcmp(again, *buf, *len) != 0)) {
		store_value_free(*buf, max + 1);
		rc = cmd_fail("the two entries differ: nothing stored");
	}
	store_value_free(again, max + 1);
out:
	if (secret_tty_changed) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &secret_saved_tty);
		secret_tty_changed = 0;
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (rc) {
		*buf = NULL;
		*len = 0;
	}
	return rc;
}

static int secret_read_file(const char *path, size_t max, uint8_t **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char what[PATH_MAX + 3];
	int rc;

	if (fd < 0)
		return cmd_fail("cannot open '%s': %s", path, cmd_strerror(errno));
	snprintf(what, sizeof(what), "'%s'", path);
	rc = secret_read(fd, what, max, buf, len);
	close(fd);
	return rc;
}

/* ---- set ----------------------------------------------------------------------------- */

/*
 * --expires: "never", a duration (a TTL: later rotations restart it) or
 * a date (refused when it has passed). Into *exp; 0 or 1 after printing.
 */
static int secret_expiry(const char *s, struct store_expiry *exp)
{
	int64_t now = (int64_t)time(NULL), when;

	if (strcmp(s, "never") == 0) {
		exp->kind = STORE_EXPIRY_NEVER;
		return 0;
	}
	if (cmd_check_when(s, now, &when))
		return CMD_EXIT_FAIL;
	if (s[0] >= '0' && s[0] <= '9' && !strchr(s, '-')) {
		if (when <= now)
			return cmd_fail("--expires needs a duration greater than 0, not '%s'", s);
		exp->kind = STORE_EXPIRY_TTL;
		exp->value = when - now;
		return 0;
	}
	if (when <= now)
		return cmd_fail("--expires '%s' is in the past: nothing stored", s);
	exp->kind = STORE_EXPIRY_AT;
	exp->value = when;
	return 0;
}

static int secret_set(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "PROVIDER/NAME", NULL };
	const char *expires_s = NULL, *from_file = NULL;
	bool canary = false, allow_empty = false;
	const struct cmd_opt opts[] = {
		{ "--expires", &expires_s, NULL },
		{ "--from-file", &from_file, NULL },
		{ "--canary", NULL, &canary },
		{ "--allow-empty", NULL, &allow_empty },
		{ NULL, NULL, NULL },
	};
	char provider[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1], exp[32];
	struct store_expiry expiry = { STORE_EXPIRY_KEEP, 0 };
	const char *p[1];
	int64_t expires = 0, version = 0;
	uint8_t *value = NULL;
	size_t len = 0;
	int rc;

	/* A stray argument here is most likely the value itself: do not echo it. */
	c->value_args = true;
	CMD_PARSE(c, "secret set", argc, argv, opts, pos, 1, p);
	c->value_args = false;
	if (cmd_check_ref(p[0], false, provider, name))
		return CMD_EXIT_FAIL;
	if (expires_s && secret_expiry(expires_s, &expiry))
		return CMD_EXIT_FAIL;
	if (from_file && !from_file[0])
		return cmd_usage("--from-file needs a value");
	/* Open first: a wrong key or missing store should not cost a typed value. */
	if ((rc = cmd_open(c)))
		return rc;
	rc = from_file ? secret_read_file(from_file, c->cfg.max_value, &value, &len)
		       : secret_read_stdin(p[0], c->cfg.max_value, &value, &len);
	if (rc)
		return rc;
	if (canary && len == 0) {
		/* an empty honeytoken looks like nothing worth stealing */
		store_value_free(value, c->cfg.max_value + 1);
		return cmd_fail("a canary needs a value that looks real: the input is empty");
	}
	if (len == 0 && !allow_empty) {
		store_value_free(value, c->cfg.max_value + 1);
		return cmd_fail("the value is empty: nothing stored (--allow-empty stores an empty value)");
	}
	/* a canary is marked in the same transaction that stores it */
	if (canary && (rc = store_batch_begin(c->st)) < 0) {
		store_value_free(value, c->cfg.max_value + 1);
		return cmd_store_fail(rc);
	}
	rc = store_secret_set_with(c->st, provider, name, value, len, &expiry, &version, &expires);
	store_value_free(value, c->cfg.max_value + 1);
	if (canary) {
		if (rc == 0)
			rc = store_secret_canary(c->st, provider, name, true);
		int brc = store_batch_end(c->st, rc);
		if (rc == 0)
			rc = brc;
	}
	if (rc < 0)
		return cmd_store_fail(rc);
	cmd_time(expires, "never", exp, sizeof(exp));
	return cmd_done(c, json_pack("{s:b,s:s,s:s,s:I,s:s,s:I,s:o}", "ok", 1,
				     "provider", provider, "name", name,
				     "version", (json_int_t)version,
				     "action", version > 1 ? "rotate" : "create",
				     "length", (json_int_t)len, "expires", cmd_json_time(expires)),
			"%s/%s: version %lld (%s)", provider, name, (long long)version,
			version > 1 ? "rotated" : "created");
}

/* ---- list ------------------------------------------------------------------------------ */

static int secret_row(void *ctx, const struct store_secret_row *row)
{
	struct cmd_ctx *c = ctx;
	char v[24], vs[24], l[24], cr[32], ex[32];

	if (c->json) {
		cmd_json_print(json_pack("{s:s,s:s,s:I,s:I,s:I,s:o,s:o,s:b}",
					 "provider", row->provider, "name", row->name,
					 "version", (json_int_t)row->version,
					 "versions", (json_int_t)row->versions,
					 "length", (json_int_t)row->length,
					 "created", cmd_json_time(row->created),
					 "expires", cmd_json_time(row->expires),
					 "canary", row->canary));
		return 0;
	}
	cmd_time(row->created, "-", cr, sizeof(cr));
	cmd_time(row->expires, "never", ex, sizeof(ex));
	cmd_table_add(c->table, row->provider, row->name, cmd_i64(row->version, v, sizeof(v)),
		      cmd_i64(row->versions, vs, sizeof(vs)),
		      cmd_i64((int64_t)row->length, l, sizeof(l)), cr, ex, row->canary ? "canary" : NULL);
	return 0;
}

static int secret_list(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "PROVIDER", NULL };
	const char *p[1];
	int rc;

	CMD_PARSE(c, "secret list", argc, argv, NULL, pos, 0, p);
	if (p[0] && cmd_check_name(p[0], POLICY_NAME_PROVIDER))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_open(c)))
		return rc;
	if (!c->json)
		c->table = cmd_table_new(8, "PROVIDER", "NAME", "VERSION", "VERSIONS", "LENGTH",
					 "CREATED", "EXPIRES", "MARK");
	rc = store_secret_list(c->st, p[0], secret_row, c);
	return cmd_list_end(c, rc);
}

/* ---- reveal ------------------------------------------------------------------------------ */

static int secret_reveal(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "PROVIDER/NAME", NULL };
	const char *version_s = NULL;
	const struct cmd_opt opts[] = {
		{ "--version", &version_s, NULL },
		{ NULL, NULL, NULL },
	};
	char provider[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1];
	const char *p[1];
	uint64_t version = 0;
	uint8_t *value = NULL;
	size_t len = 0, w;
	int rc;

	CMD_PARSE(c, "secret reveal", argc, argv, opts, pos, 1, p);
	if (version_s && (rc = cmd_number("--version", version_s, INT64_MAX, true, &version)))
		return rc;
	if (cmd_check_ref(p[0], false, provider, name))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_open(c)))
		return rc;
	rc = store_secret_reveal(c->st, provider, name, (int64_t)version, &value, &len);
	if (rc < 0)
		return cmd_store_fail(rc);
	/* Exactly the bytes: no newline, no JSON wrapping (--json has no say here). */
	w = len ? fwrite(value, 1, len, stdout) : 0;
	rc = fflush(stdout);
	store_value_free(value, len);
	if (w != len || rc != 0)
		return cmd_fail("cannot write the value: %s", cmd_strerror(errno));
	return CMD_EXIT_OK;
}

/* ---- rm -------------------------------------------------------------------------------------- */

static int secret_rm(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "PROVIDER/NAME", NULL };
	char provider[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1];
	bool yes = false;
	const struct cmd_opt opts[] = { { "--yes", NULL, &yes }, { NULL, NULL, NULL } };
	const char *p[1];
	int rc;

	CMD_PARSE(c, "secret rm", argc, argv, opts, pos, 1, p);
	if (cmd_check_ref(p[0], false, provider, name))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_confirm_drops(c, "secret rm", STORE_OBJ_SECRET, p[0], yes)))
		return rc;
	rc = store_secret_rm(c->st, provider, name);
	if (rc < 0)
		return cmd_store_fail(rc);
	return cmd_done(c, json_pack("{s:b,s:s,s:s,s:s}", "ok", 1, "action", "rm",
				     "provider", provider, "name", name),
			"removed secret %s/%s", provider, name);
}

/* ---- versions, rollback, destroy ----------------------------------------------------------- */

/* A TTL for people: the largest unit that divides it (90d, 8h, 15m, 30s). */
static const char *secret_ttl(int64_t ttl, char *buf, size_t len)
{
	if (ttl <= 0)
		snprintf(buf, len, "-");
	else if (ttl % 86400 == 0)
		snprintf(buf, len, "%lldd", (long long)(ttl / 86400));
	else if (ttl % 3600 == 0)
		snprintf(buf, len, "%lldh", (long long)(ttl / 3600));
	else if (ttl % 60 == 0)
		snprintf(buf, len, "%lldm", (long long)(ttl / 60));
	else
		snprintf(buf, len, "%llds", (long long)ttl);
	return buf;
}

static int version_row(void *ctx, const struct store_version_row *row)
{
	struct cmd_ctx *c = ctx;
	char v[24], l[24], cr[32], ex[32], ttl[24], de[32], state[48];

	if (c->json) {
		cmd_json_print(json_pack("{s:I,s:I,s:o,s:o,s:o,s:o,s:b}",
					 "version", (json_int_t)row->version,
					 "length", (json_int_t)row->length,
					 "created", cmd_json_time(row->created),
					 "expires", cmd_json_time(row->expires),
					 "ttl", row->ttl ? json_integer(row->ttl) : json_null(),
					 "destroyed", cmd_json_time(row->destroyed),
					 "current", row->current));
		return 0;
	}
	cmd_time(row->created, "-", cr, sizeof(cr));
	cmd_time(row->expires, "never", ex, sizeof(ex));
	if (row->destroyed) {
		cmd_time(row->destroyed, "-", de, sizeof(de));
		snprintf(state, sizeof(state), "destroyed %s", de);
	} else {
		snprintf(state, sizeof(state), "%s", row->current ? "current" : "");
	}
	cmd_table_add(c->table, cmd_i64(row->version, v, sizeof(v)),
		      cmd_i64((int64_t)row->length, l, sizeof(l)), cr, ex,
		      secret_ttl(row->ttl, ttl, sizeof(ttl)), state);
	return 0;
}

static int secret_versions(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "PROVIDER/NAME", NULL };
	char provider[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1];
	const char *p[1];
	int rc;

	CMD_PARSE(c, "secret versions", argc, argv, NULL, pos, 1, p);
	if (cmd_check_ref(p[0], false, provider, name))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_open(c)))
		return rc;
	if (!c->json)
		c->table = cmd_table_new(6, "VERSION", "LENGTH", "CREATED", "EXPIRES", "TTL", "STATE");
	rc = store_secret_versions(c->st, provider, name, version_row, c);
	return cmd_list_end(c, rc);
}

/* rollback and destroy: PROVIDER/NAME VERSION */
static int secret_version_change(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "PROVIDER/NAME", "VERSION", NULL };
	bool rollback = strcmp(argv[0], "rollback") == 0;
	char provider[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1];
	const char *p[2];
	uint64_t version;
	int64_t newv = 0;
	int rc;

	CMD_PARSE(c, rollback ? "secret rollback" : "secret destroy", argc, argv, NULL, pos, 2, p);
	if ((rc = cmd_number("VERSION", p[1], INT64_MAX, true, &version)))
		return rc;
	if (cmd_check_ref(p[0], false, provider, name))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_open(c)))
		return rc;
	if (rollback)
		rc = store_secret_rollback(c->st, provider, name, (int64_t)version, &newv);
	else
		rc = store_secret_destroy(c->st, provider, name, (int64_t)version);
	if (rc < 0)
		return cmd_store_fail(rc);
	if (rollback)
		return cmd_done(c, json_pack("{s:b,s:s,s:s,s:s,s:I,s:I}", "ok", 1, "action", "rollback",
					     "provider", provider, "name", name,
					     "version", (json_int_t)newv, "from", (json_int_t)version),
				"%s/%s: version %lld (the value of version %llu)", provider, name,
				(long long)newv, (unsigned long long)version);
	return cmd_done(c, json_pack("{s:b,s:s,s:s,s:s,s:I}", "ok", 1, "action", "destroy",
				     "provider", provider, "name", name, "version", (json_int_t)version),
			"%s/%s: version %llu destroyed", provider, name, (unsigned long long)version);
}

/* ---- canary ------------------------------------------------------------------------------- */

static int secret_canary(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { "PROVIDER/NAME", "on|off", NULL };
	char provider[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1];
	const char *p[2];
	bool on;
	int rc;

	CMD_PARSE(c, "secret canary", argc, argv, NULL, pos, 2, p);
	if (strcmp(p[1], "on") && strcmp(p[1], "off"))
		return cmd_usage("secret canary takes on or off, not '%s'", p[1]);
	on = strcmp(p[1], "on") == 0;
	if (cmd_check_ref(p[0], false, provider, name))
		return CMD_EXIT_FAIL;
	if ((rc = cmd_open(c)))
		return rc;
	if ((rc = store_secret_canary(c->st, provider, name, on)) < 0)
		return cmd_store_fail(rc);
	return cmd_done(c, json_pack("{s:b,s:s,s:s,s:s,s:b}", "ok", 1, "action", "canary",
				     "provider", provider, "name", name, "canary", on),
			"%s/%s: canary %s", provider, name, p[1]);
}

int cmd_secret(struct cmd_ctx *c, int argc, char **argv)
{
	static const struct cmd_sub subs[] = {
		{ "set", secret_set }, { "list", secret_list }, { "reveal", secret_reveal },
		{ "rm", secret_rm }, { "canary", secret_canary }, { "versions", secret_versions },
		{ "rollback", secret_version_change }, { "destroy", secret_version_change },
		{ NULL, NULL },
	};
	return cmd_dispatch(c, argc, argv, subs);
}

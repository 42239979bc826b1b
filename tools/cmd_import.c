/*
 * cmd_import.c - `shadm import`: move the secrets of a dotenv file into
 * the store. Each assignment KEY=VALUE becomes a version of PROVIDER/KEY
 * (a new secret or a rotation), all in one transaction: the whole file is
 * parsed and checked before the store is opened, and a line that is not
 * an assignment, a key that is not a valid secret name, a key given
 * twice or a value that is already a scopehold:// reference refuses the
 * file with its line number, storing nothing. On success the file comes
 * back on standard output with each value replaced by its reference, in
 * the same order and with the same comments, ready for
 * `scopehold run --env-file`. The file is read with the dotenv reader
 * scopehold itself uses, into sodium_malloc memory; values never reach
 * argv, the audit trail or any message.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dotenv/dotenv.h"
#include "tools/cmd.h"

#define IMPORT_URI_PREFIX "scopehold://"

/* Read and check FILE completely; 0 with *out, or an exit status after printing. */
static int import_load(const char *file, struct dotenv **out)
{
	struct dotenv_error err;
	struct dotenv *d = NULL;
	size_t i, j;
	int fd, rc;

	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return cmd_fail("cannot open '%s': %s", file, cmd_strerror(errno));
	rc = dotenv_read(fd, &d, &err);
	close(fd);
	if (rc == -EINVAL || rc == -EFBIG)
		return err.line ? cmd_fail("%s:%zu: %s", file, err.line, err.msg)
				: cmd_fail("%s: %s", file, err.msg);
	if (rc < 0)
		return cmd_fail("cannot read '%s': %s", file, cmd_strerror(-rc));
	for (i = 0; i < d->count; i++) {
		const struct dotenv_line *l = &d->lines[i];

		if (l->kind != DOTENV_ASSIGN)
			continue;
		if (policy_name_check(l->key, POLICY_NAME_SECRET) != 0)
			rc = cmd_fail("%s:%zu: invalid name '%s': use 1-128 of A-Z a-z 0-9 . _ - , "
				      "not starting with . or -", file, l->line, l->key);
		else if (l->value_len >= strlen(IMPORT_URI_PREFIX) &&
			 memcmp(l->value, IMPORT_URI_PREFIX, strlen(IMPORT_URI_PREFIX)) == 0)
			rc = cmd_fail("%s:%zu: %s is already a scopehold reference", file, l->line,
				      l->key);
		for (j = 0; rc == 0 && j < i; j++) {
			if (d->lines[j].kind == DOTENV_ASSIGN && strcmp(d->lines[j].key, l->key) == 0)
				rc = cmd_fail("%s:%zu: %s is already set on line %zu", file, l->line,
					      l->key, d->lines[j].line);
		}
		if (rc) {
			dotenv_free(d);
			return rc;
		}
	}
	*out = d;
	return 0;
}

/* The replacement file: comments and blanks as written, references for values. */
static void import_print(const struct dotenv *d, const char *provider)
{
	size_t i;

	for (i = 0; i < d->count; i++) {
		const struct dotenv_line *l = &d->lines[i];

		if (l->kind != DOTENV_ASSIGN) {
			printf("%s\n", l->text);
			continue;
		}
		printf("%s%s=" IMPORT_URI_PREFIX "%s/%s%s%s\n", l->exported ? "export " : "",
		       l->key, provider, l->key, l->comment[0] ? " " : "", l->comment);
	}
}

int cmd_import(struct cmd_ctx *c, int argc, char **argv)
{
	const char *file = NULL, *provider = NULL, *expires_s = NULL;
	bool dry_run = false;
	const struct cmd_opt opts[] = {
		{ "--env-file", &file, NULL },
		{ "--provider", &provider, NULL },
		{ "--expires", &expires_s, NULL },
		{ "--dry-run", NULL, &dry_run },
		{ NULL, NULL, NULL },
	};
	static const char *const pos[] = { NULL };
	struct dotenv *d = NULL;
	json_t *done = NULL;
	int64_t expires = 0;
	size_t i;
	int rc, brc;

	CMD_PARSE(c, "import", argc, argv, opts, pos, 0, NULL);
	if (!file || !file[0])
		return cmd_usage("import needs --env-file FILE");
	if (!provider)
		return cmd_usage("import needs --provider PROVIDER");
	if (cmd_check_name(provider, POLICY_NAME_PROVIDER))
		return CMD_EXIT_FAIL;
	if (expires_s && cmd_check_when(expires_s, (int64_t)time(NULL), &expires))
		return CMD_EXIT_FAIL;
	/* The whole file is checked before the store is opened. */
	if ((rc = import_load(file, &d)) != 0)
		return rc;
	if ((rc = cmd_open(c))) {
		dotenv_free(d);
		return rc;
	}
	for (i = 0; i < d->count; i++) {
		const struct dotenv_line *l = &d->lines[i];
		if (l->kind == DOTENV_ASSIGN && l->value_len > c->cfg.max_value) {
			dotenv_free(d);
			return cmd_fail("%s:%zu: the value of %s is larger than the limit of %zu bytes",
					file, l->line, l->key, c->cfg.max_value);
		}
	}

	if (c->json && !(done = json_array()))
		cmd_oom();
	rc = store_batch_begin(c->st);
	if (rc < 0) {
		dotenv_free(d);
		return cmd_store_fail(rc);
	}
	for (i = 0; rc == 0 && i < d->count; i++) {
		const struct dotenv_line *l = &d->lines[i];
		int64_t version = 0;

		if (l->kind != DOTENV_ASSIGN)
			continue;
		rc = store_secret_set(c->st, provider, l->key, l->value, l->value_len, expires,
				      &version);
		if (rc < 0) {
			cmd_fail("%s:%zu: %s", file, l->line,
				 store_error()[0] ? store_error() : cmd_strerror(rc));
			break;
		}
		if (done)
			json_array_append_new(done, json_pack("{s:s,s:s,s:I,s:s,s:I,s:b}",
				"provider", provider, "name", l->key, "version", (json_int_t)version,
				"action", version > 1 ? "rotate" : "create",
				"length", (json_int_t)l->value_len, "dry_run", dry_run));
	}
	/* --dry-run: every check the store makes, then a rollback. */
	brc = store_batch_end(c->st, rc < 0 ? rc : dry_run ? -ECANCELED : 0);
	if (rc < 0) {
		json_decref(done);
		dotenv_free(d);
		return CMD_EXIT_FAIL;
	}
	if (brc < 0 && !dry_run) {
		json_decref(done);
		dotenv_free(d);
		return cmd_store_fail(brc);
	}
	if (done) {
		for (i = 0; i < json_array_size(done); i++)
			cmd_json_print(json_incref(json_array_get(done, i)));
		json_decref(done);
	} else {
		import_print(d, provider);
	}
	dotenv_free(d);
	return CMD_EXIT_OK;
}

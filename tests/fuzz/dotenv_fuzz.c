/*
 * dotenv_fuzz.c - fuzz target for dotenv_parse(), the reader of the .env
 * files that scopehold run and shadm import take from users.
 *
 * Whatever the bytes, a parse either fails with -EINVAL naming a line that
 * exists and a reason, or succeeds with lines whose every string lies
 * inside the arena the parser sized up front (the one allocation that
 * holds values), keys that are non-empty runs of key characters, values
 * whose length is their string length (a NUL byte never gets through) and
 * line numbers that only grow.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "dotenv/dotenv.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return sodium_init() < 0 ? -1 : 0;
}

static void inside(const struct dotenv *d, const void *p, size_t len, const char *what)
{
	const uint8_t *b = p;

	FUZZ_CHECK(b >= d->arena && b + len < d->arena + d->arena_len,
		   "%s lies outside the arena", what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dotenv_error err;
	struct dotenv *d = NULL;
	size_t lines = 1, i, last = 0;
	int rc;

	for (i = 0; i < size; i++)
		lines += data[i] == '\n';
	rc = dotenv_parse(data, size, &d, &err);
	if (rc != 0) {
		FUZZ_CHECK(rc == -EINVAL || rc == -EFBIG || rc == -ENOMEM, "rc %d", rc);
		FUZZ_CHECK(d == NULL, "a failed parse handed back a result");
		if (rc == -EINVAL) {
			FUZZ_CHECK(err.line >= 1 && err.line <= lines, "error line %zu of %zu", err.line, lines);
			FUZZ_CHECK(err.msg[0] != '\0', "error without a reason");
		}
		return 0;
	}
	FUZZ_CHECK(memchr(data, '\0', size) == NULL, "a NUL byte was accepted");
	FUZZ_CHECK(d->count <= lines, "%zu logical lines from %zu", d->count, lines);
	for (i = 0; i < d->count; i++) {
		const struct dotenv_line *l = &d->lines[i];

		FUZZ_CHECK(l->line > last && l->line <= lines, "line %zu after %zu", l->line, last);
		last = l->line;
		if (l->kind != DOTENV_ASSIGN) {
			inside(d, l->text, strlen(l->text), "text");
			FUZZ_CHECK(!strchr(l->text, '\n'), "a comment holds a newline");
			continue;
		}
		inside(d, l->key, strlen(l->key), "key");
		inside(d, l->value, l->value_len, "value");
		inside(d, l->comment, strlen(l->comment), "comment");
		FUZZ_CHECK(l->key[0] && strcspn(l->key, " \t=\"'\n") == strlen(l->key), "key '%s'", l->key);
		FUZZ_CHECK(strlen((const char *)l->value) == l->value_len, "value length");
		FUZZ_CHECK(l->comment[0] == '\0' || l->comment[0] == '#', "comment '%s'", l->comment);
	}
	dotenv_free(d);
	return 0;
}

/*
 * dotenv.h - the one reader of dotenv files in ScopeHold, shared by the
 * agent-side `scopehold run --env-file` and the operator's `shadm import`
 * so both accept exactly the same syntax.
 *
 * A file is a sequence of lines, each blank, a comment (`#` first) or an
 * assignment `[export] KEY=VALUE [# comment]`. VALUE is unquoted (up to a
 * `#` that follows a space or tab, trailing blanks trimmed), single-quoted
 * (every byte literal, may span lines) or double-quoted (\n \r \t \" \\ \$
 * and \` are escapes, any other backslash stays as written; may span
 * lines). There is no variable expansion: `$` is an ordinary byte. A NUL
 * byte anywhere refuses the file. KEY is any run of bytes other than
 * blanks, `=` and quotes; what a valid key is depends on the caller (an
 * environment variable name for `run`, a secret name for `import`).
 *
 * Plaintext: the file's bytes and every decoded value live in
 * sodium_malloc memory owned by the struct dotenv, wiped by dotenv_free().
 *
 * Error convention: 0 or -errno. A syntax error is -EINVAL with the line
 * and a lowercase message in *err (fit to print after "FILE:LINE: "); a
 * file over DOTENV_MAX_BYTES is -EFBIG; a read failure is its -errno with
 * err->line 0.
 */
#ifndef SCOPEHOLD_DOTENV_H
#define SCOPEHOLD_DOTENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define DOTENV_WUR __attribute__((warn_unused_result))
#else
#define DOTENV_WUR
#endif

#define DOTENV_MAX_BYTES (4 * 1024 * 1024)

enum dotenv_kind { DOTENV_BLANK, DOTENV_COMMENT, DOTENV_ASSIGN };

/* One logical line; strings are NUL-terminated and owned by the struct dotenv. */
struct dotenv_line {
	enum dotenv_kind kind;
	size_t line;               /* 1-based number of its first physical line */
	const char *text;          /* BLANK, COMMENT: the line as written, without its newline */
	bool exported;             /* ASSIGN: written with a leading `export` */
	const char *key;           /* ASSIGN */
	const uint8_t *value;      /* ASSIGN: the decoded value (NUL-terminated, not counted) */
	size_t value_len;
	const char *comment;       /* ASSIGN: a trailing `# ...` as written, or "" */
};

struct dotenv {
	struct dotenv_line *lines; /* in file order */
	size_t count;
	uint8_t *arena;            /* sodium_malloc: every string above */
	size_t arena_len;
};

struct dotenv_error {
	size_t line;               /* 0 when the error is not about one line */
	char msg[160];
};

/* Parse len bytes of text. On success *out is the caller's (dotenv_free). */
int dotenv_parse(const uint8_t *text, size_t len, struct dotenv **out,
		 struct dotenv_error *err) DOTENV_WUR;
/* Read fd to its end (into sodium_malloc memory) and parse it. */
int dotenv_read(int fd, struct dotenv **out, struct dotenv_error *err) DOTENV_WUR;
void dotenv_free(struct dotenv *d);   /* wipes everything; NULL is a no-op */

#endif

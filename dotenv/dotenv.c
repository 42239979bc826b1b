/*
 * dotenv.c - parse a dotenv file into lines: blanks and comments kept as
 * written (so `shadm import` can print the file back with references in
 * place of values), assignments split into key, decoded value and
 * trailing comment. The parser only knows syntax; which keys are allowed
 * is the caller's rule. Every byte it copies goes into one sodium_malloc
 * arena sized up front (a line never needs more than its own bytes plus
 * three terminators), so no value is ever in ordinary heap memory.
 */
#include "dotenv/dotenv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

struct dotenv_parser {
	const uint8_t *text;
	size_t len;
	size_t pos;                /* start of the current physical line */
	size_t line;               /* its number */
	struct dotenv *d;
	size_t used;               /* bytes of d->arena handed out */
	struct dotenv_error *err;
};

static int dotenv_fail(struct dotenv_parser *p, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int dotenv_fail(struct dotenv_parser *p, size_t line, const char *fmt, ...)
{
	va_list ap;

	p->err->line = line;
	va_start(ap, fmt);
	vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool dotenv_blank(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* End of the physical line starting at pos (the '\n' or len), and the end of its content (no '\r'). */
static size_t dotenv_eol(const struct dotenv_parser *p, size_t pos, size_t *content_end)
{
	const uint8_t *nl = memchr(p->text + pos, '\n', p->len - pos);
	size_t e = nl ? (size_t)(nl - p->text) : p->len;
	size_t c = e;

	if (c > pos && p->text[c - 1] == '\r')
		c--;
	*content_end = c;
	return e;
}

/* Copy n bytes into the arena as a NUL-terminated string. */
static char *dotenv_put(struct dotenv_parser *p, const uint8_t *s, size_t n)
{
	char *out = (char *)p->d->arena + p->used;

	if (n)
		memcpy(out, s, n);
	out[n] = '\0';
	p->used += n + 1;
	return out;
}

/* Move past the physical line ending at eol. */
static void dotenv_next_line(struct dotenv_parser *p, size_t eol)
{
	p->pos = eol < p->len ? eol + 1 : p->len;
	p->line++;
}

/*
 * After a closing quote at q (on the physical line p->pos..): only blanks
 * and an optional comment may follow. Stores the comment.
 */
static int dotenv_after_quote(struct dotenv_parser *p, size_t q, struct dotenv_line *l)
{
	size_t cend, eol = dotenv_eol(p, p->pos, &cend);

	while (q < cend && dotenv_blank(p->text[q]))
		q++;
	if (q < cend && p->text[q] != '#')
		return dotenv_fail(p, p->line, "unexpected text after the closing quote of %s", l->key);
	l->comment = dotenv_put(p, p->text + q, cend - q);
	dotenv_next_line(p, eol);
	return 0;
}

/* A single-quoted value starting after the quote at q: bytes up to the next quote, literally. */
static int dotenv_single(struct dotenv_parser *p, size_t q, struct dotenv_line *l)
{
	size_t first = p->line;
	const uint8_t *close = memchr(p->text + q, '\'', p->len - q);
	uint8_t *out = p->d->arena + p->used;
	size_t i, n;

	if (!close)
		return dotenv_fail(p, first, "unterminated single quote in the value of %s", l->key);
	n = (size_t)(close - p->text) - q;
	memcpy(out, p->text + q, n);
	out[n] = '\0';
	p->used += n + 1;
	l->value = out;
	l->value_len = n;
	/* the closing quote's physical line becomes the current one */
	for (i = q; i < q + n; i++) {
		if (p->text[i] == '\n') {
			p->line++;
			p->pos = i + 1;
		}
	}
	return dotenv_after_quote(p, q + n + 1, l);
}

/* A double-quoted value starting after the quote at q, with backslash escapes. */
static int dotenv_double(struct dotenv_parser *p, size_t q, struct dotenv_line *l)
{
	size_t first = p->line, n = 0, i = q;
	uint8_t *out = p->d->arena + p->used;

	for (;;) {
		uint8_t c;

		if (i >= p->len)
			return dotenv_fail(p, first, "unterminated double quote in the value of %s", l->key);
		c = p->text[i];
		if (c == '"')
			break;
		if (c == '\\' && i + 1 < p->len) {
			uint8_t e = p->text[i + 1];
			int dec = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' :
				  (e == '"' || e == '\\' || e == '$' || e == '`') ? e : -1;
			if (dec >= 0) {
				out[n++] = (uint8_t)dec;
				i += 2;
				continue;
			}
		}
		if (c == '\n') {
			p->line++;
			p->pos = i + 1;
		}
		out[n++] = c;
		i++;
	}
	out[n] = '\0';
	p->used += n + 1;
	l->value = out;
	l->value_len = n;
	return dotenv_after_quote(p, i + 1, l);
}

/* One logical line starting at p->pos. */
static int dotenv_line_parse(struct dotenv_parser *p, struct dotenv_line *l)
{
	size_t cend, eol = dotenv_eol(p, p->pos, &cend);
	size_t i = p->pos, k;
	const uint8_t *t = p->text;

	memset(l, 0, sizeof(*l));
	l->line = p->line;
	while (i < cend && dotenv_blank(t[i]))
		i++;
	if (i == cend || t[i] == '#') {
		l->kind = i == cend ? DOTENV_BLANK : DOTENV_COMMENT;
		l->text = dotenv_put(p, t + p->pos, cend - p->pos);
		dotenv_next_line(p, eol);
		return 0;
	}
	l->kind = DOTENV_ASSIGN;
	if (cend - i > 6 && memcmp(t + i, "export", 6) == 0 && dotenv_blank(t[i + 6])) {
		l->exported = true;
		i += 6;
		while (i < cend && dotenv_blank(t[i]))
			i++;
	}
	k = i;
	while (i < cend && !dotenv_blank(t[i]) && t[i] != '=' && t[i] != '\'' && t[i] != '"')
		i++;
	if (i == k)
		return dotenv_fail(p, p->line, "not an assignment");
	l->key = dotenv_put(p, t + k, i - k);
	while (i < cend && dotenv_blank(t[i]))
		i++;
	if (i == cend || t[i] != '=')
		return dotenv_fail(p, p->line, "not an assignment");
	i++;
	while (i < cend && dotenv_blank(t[i]))
		i++;
	if (i < cend && t[i] == '\'')
		return dotenv_single(p, i + 1, l);
	if (i < cend && t[i] == '"')
		return dotenv_double(p, i + 1, l);

	/* Unquoted: up to a '#' that follows a blank, trailing blanks trimmed. */
	size_t v = i, vend, c = i;
	while (c < cend && !(t[c] == '#' && (c == v || dotenv_blank(t[c - 1]))))
		c++;
	vend = c;
	while (vend > v && dotenv_blank(t[vend - 1]))
		vend--;
	l->value = (const uint8_t *)dotenv_put(p, t + v, vend - v);
	l->value_len = vend - v;
	l->comment = dotenv_put(p, t + c, cend - c);
	dotenv_next_line(p, eol);
	return 0;
}

int dotenv_parse(const uint8_t *text, size_t len, struct dotenv **out,
		 struct dotenv_error *err)
{
	struct dotenv_parser p = { .text = text, .len = len, .line = 1, .err = err };
	const uint8_t *nul;
	size_t lines = 1, i;
	int rc;

	err->line = 0;
	err->msg[0] = '\0';
	*out = NULL;
	if (len > DOTENV_MAX_BYTES) {
		snprintf(err->msg, sizeof(err->msg), "larger than %d bytes", DOTENV_MAX_BYTES);
		return -EFBIG;
	}
	for (i = 0; i < len; i++)
		lines += text[i] == '\n';
	if ((nul = memchr(text, '\0', len)) != NULL) {
		size_t at = 1;
		for (i = 0; i < (size_t)(nul - text); i++)
			at += text[i] == '\n';
		return dotenv_fail(&p, at, "a NUL byte (not a text file)");
	}

	p.d = calloc(1, sizeof(*p.d));
	if (!p.d)
		return -ENOMEM;
	p.d->lines = calloc(lines, sizeof(*p.d->lines));
	p.d->arena_len = len + 3 * lines + 1;
	p.d->arena = sodium_malloc(p.d->arena_len);
	if (!p.d->lines || !p.d->arena) {
		dotenv_free(p.d);
		return -ENOMEM;
	}
	while (p.pos < len) {
		rc = dotenv_line_parse(&p, &p.d->lines[p.d->count]);
		if (rc < 0) {
			dotenv_free(p.d);
			return rc;
		}
		p.d->count++;
	}
	*out = p.d;
	return 0;
}

int dotenv_read(int fd, struct dotenv **out, struct dotenv_error *err)
{
	size_t cap = 4096, n = 0;
	uint8_t *buf = sodium_malloc(cap);
	int rc;

	err->line = 0;
	err->msg[0] = '\0';
	*out = NULL;
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			uint8_t *bigger;

			if (cap > DOTENV_MAX_BYTES) {
				sodium_free(buf);
				snprintf(err->msg, sizeof(err->msg), "larger than %d bytes",
					 DOTENV_MAX_BYTES);
				return -EFBIG;
			}
			bigger = sodium_malloc(cap * 2);
			if (!bigger) {
				sodium_free(buf);
				return -ENOMEM;
			}
			memcpy(bigger, buf, n);
			sodium_free(buf);      /* sodium_free wipes before it frees */
			buf = bigger;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			sodium_free(buf);
			return rc;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	rc = dotenv_parse(buf, n, out, err);
	sodium_free(buf);
	return rc;
}

void dotenv_free(struct dotenv *d)
{
	if (!d)
		return;
	sodium_free(d->arena);          /* wipes; NULL is a no-op */
	free(d->lines);
	free(d);
}

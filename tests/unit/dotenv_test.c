/*
 * dotenv_test.c - table tests for the dotenv reader shared by
 * `scopehold run --env-file` and `shadm import`: what each kind of line
 * parses to (key, exact value bytes, export, trailing comment, line
 * number), and that every malformed file is refused with the right line
 * and message rather than guessed at.
 */
#include "dotenv/dotenv.h"
#include "tests/unit/t.h"

#include <errno.h>
#include <sodium.h>

/* TEXT with newlines and CRs shown as \n and \r, so each check stays one output line. */
static const char *esc(const char *text, size_t len)
{
	static char buf[8][160];
	static int next;
	char *b = buf[next++ % 8];
	size_t i, n = 0;

	for (i = 0; i < len && n + 3 < sizeof(buf[0]); i++) {
		char c = text[i];
		if (c == '\n' || c == '\r' || c == '\0') {
			b[n++] = '\\';
			b[n++] = c == '\n' ? 'n' : c == '\r' ? 'r' : '0';
		} else {
			b[n++] = c;
		}
	}
	b[n] = '\0';
	return b;
}
#define E(s) esc((s), strlen(s))

static void test_good(void)
{
	static const struct {
		const char *text;
		const char *key;
		const char *value;
		bool exported;
		const char *comment;
	} cases[] = {
		{ "A=1", "A", "1", false, "" },
		{ "A=1\n", "A", "1", false, "" },
		{ "A=1\r\n", "A", "1", false, "" },
		{ "  A = spaced value  ", "A", "spaced value", false, "" },
		{ "export A=x", "A", "x", true, "" },
		{ "export\tA=x", "A", "x", true, "" },
		{ "export=x", "export", "x", false, "" },
		{ "A=", "A", "", false, "" },
		{ "A=abc#def", "A", "abc#def", false, "" },
		{ "A=abc #def", "A", "abc", false, "#def" },
		{ "A=#x", "A", "", false, "#x" },
		{ "A='a b # c'", "A", "a b # c", false, "" },
		{ "A='x\\ny' # c", "A", "x\\ny", false, "# c" },
		{ "A='$HOME \"q\"'", "A", "$HOME \"q\"", false, "" },
		{ "A=\"x\\ny\"", "A", "x\ny", false, "" },
		{ "A=\"t\\tr\\r\\\"q\\\" \\\\ \\$ \\`\"", "A", "t\tr\r\"q\" \\ $ `", false, "" },
		{ "A=\"keep \\x and $HOME\"", "A", "keep \\x and $HOME", false, "" },
		{ "A=\"two\nlines\"", "A", "two\nlines", false, "" },
		{ "A='two\nlines'  # after", "A", "two\nlines", false, "# after" },
		{ "A=\"\"", "A", "", false, "" },
		{ "A=scopehold://gh/token", "A", "scopehold://gh/token", false, "" },
		{ "a.b-c_d=v", "a.b-c_d", "v", false, "" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dotenv_error err;
		struct dotenv *d = NULL;
		int rc = dotenv_parse((const uint8_t *)cases[i].text, strlen(cases[i].text), &d, &err);

		T_EQ_INT(rc, 0, "parse \"%s\"", E(cases[i].text));
		if (rc != 0)
			continue;
		T_EQ_INT(d->count, 1, "\"%s\" is one line", E(cases[i].text));
		T_EQ_INT(d->lines[0].kind, DOTENV_ASSIGN, "\"%s\" is an assignment", E(cases[i].text));
		T_EQ_STR(d->lines[0].key, cases[i].key, "\"%s\" key", E(cases[i].text));
		T_EQ_STR((const char *)d->lines[0].value, cases[i].value, "\"%s\" value", E(cases[i].text));
		T_EQ_INT(d->lines[0].value_len, strlen(cases[i].value), "\"%s\" value length", E(cases[i].text));
		T_EQ_INT(d->lines[0].exported, cases[i].exported, "\"%s\" export", E(cases[i].text));
		T_EQ_STR(d->lines[0].comment, cases[i].comment, "\"%s\" comment", E(cases[i].text));
		dotenv_free(d);
	}
}

static void test_lines(void)
{
	static const char text[] =
		"# head\n"
		"\n"
		"A=1\n"
		"B=\"multi\n"
		"line\"\n"
		"   # indented comment\r\n"
		"C='x'\n";
	struct dotenv_error err;
	struct dotenv *d = NULL;

	T_EQ_INT(dotenv_parse((const uint8_t *)text, strlen(text), &d, &err), 0, "a mixed file parses");
	if (!d)
		return;
	T_EQ_INT(d->count, 6, "six logical lines (a quoted value spans two)");
	T_EQ_INT(d->lines[0].kind, DOTENV_COMMENT, "line 1 is a comment");
	T_EQ_STR(d->lines[0].text, "# head", "a comment keeps its text");
	T_EQ_INT(d->lines[1].kind, DOTENV_BLANK, "line 2 is blank");
	T_EQ_INT(d->lines[2].line, 3, "A is on line 3");
	T_EQ_INT(d->lines[3].line, 4, "B starts on line 4");
	T_EQ_INT(d->lines[4].kind, DOTENV_COMMENT, "line 6 is a comment");
	T_EQ_STR(d->lines[4].text, "   # indented comment", "an indented comment keeps its text, without the CR");
	T_EQ_INT(d->lines[4].line, 6, "the comment after the two-line value is line 6");
	T_EQ_INT(d->lines[5].line, 7, "C is on line 7");
	dotenv_free(d);

	T_EQ_INT(dotenv_parse((const uint8_t *)"", 0, &d, &err), 0, "an empty file parses");
	T_EQ_INT(d ? d->count : 99, 0, "an empty file has no lines");
	dotenv_free(d);
	dotenv_free(NULL);
	T_OK(1, "dotenv_free(NULL) is a no-op");
}

static void test_bad(void)
{
	static const struct {
		const char *text;
		size_t len;            /* 0: strlen */
		size_t line;
		const char *msg;
	} cases[] = {
		{ "not an assignment", 0, 1, "not an assignment" },
		{ "A=1\nB C=2\n", 0, 2, "not an assignment" },
		{ "A=1\n\nexport\n", 0, 3, "not an assignment" },
		{ "=x", 0, 1, "not an assignment" },
		{ "A", 0, 1, "not an assignment" },
		{ "A:1", 0, 1, "not an assignment" },
		{ "A=\"open", 0, 1, "unterminated double quote in the value of A" },
		{ "X=1\nA='open\nmore", 0, 2, "unterminated single quote in the value of A" },
		{ "A=\"x\" y", 0, 1, "unexpected text after the closing quote of A" },
		{ "A='x'y", 0, 1, "unexpected text after the closing quote of A" },
		{ "A=1\nB=x\0y\n", 10, 2, "a NUL byte (not a text file)" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dotenv_error err;
		struct dotenv *d = (struct dotenv *)1;
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
		int rc = dotenv_parse((const uint8_t *)cases[i].text, len, &d, &err);

		T_EQ_INT(rc, -EINVAL, "refused: \"%s\"", esc(cases[i].text, len));
		T_OK(d == NULL, "refused \"%s\" hands back nothing", esc(cases[i].text, len));
		T_EQ_INT(err.line, cases[i].line, "refused \"%s\" names line %zu", esc(cases[i].text, len), cases[i].line);
		T_EQ_STR(err.msg, cases[i].msg, "refused \"%s\" says why", esc(cases[i].text, len));
	}
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_good();
	test_lines();
	test_bad();
	return t_done();
}

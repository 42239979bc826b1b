/*
 * parse_test.c - table tests for what policy/ accepts as a name, a
 * PROVIDER/NAME reference, a duration and a date, and for the UTC time
 * format. Expected unix times were checked with `date -ud DATE +%s`.
 */
#include "policy/policy.h"
#include "tests/unit/t.h"

#include <errno.h>

#define NOW ((int64_t)1800000000)

static void test_names(void)
{
	char n128[POLICY_NAME_MAX + 1], n129[POLICY_NAME_MAX + 2];
	static const struct {
		const char *name;
		enum policy_name_kind kind;
		int want;
	} cases[] = {
		{ "openai", POLICY_NAME_PROVIDER, 0 },
		{ "api-key_2.prod", POLICY_NAME_SECRET, 0 },
		{ "A", POLICY_NAME_WORKSPACE, 0 },
		{ "9lives", POLICY_NAME_PROJECT, 0 },
		{ "codex-release-agent", POLICY_NAME_AGENT, 0 },
		{ "_x", POLICY_NAME_SECRET, 0 },
		{ "x.", POLICY_NAME_SECRET, 0 },
		{ "x..y", POLICY_NAME_SECRET, 0 },
		{ "self", POLICY_NAME_PROJECT, 0 },
		{ "self", POLICY_NAME_SECRET, 0 },
		{ "self", POLICY_NAME_AGENT, -EINVAL },
		{ "Self", POLICY_NAME_AGENT, 0 },
		{ "selfish", POLICY_NAME_AGENT, 0 },
		{ "", POLICY_NAME_SECRET, -EINVAL },
		{ ".", POLICY_NAME_SECRET, -EINVAL },
		{ "..", POLICY_NAME_SECRET, -EINVAL },
		{ ".x", POLICY_NAME_SECRET, -EINVAL },
		{ "-x", POLICY_NAME_AGENT, -EINVAL },
		{ "a/b", POLICY_NAME_SECRET, -EINVAL },
		{ "a b", POLICY_NAME_SECRET, -EINVAL },
		{ "a\tb", POLICY_NAME_SECRET, -EINVAL },
		{ "a\\b", POLICY_NAME_SECRET, -EINVAL },
		{ "a:b", POLICY_NAME_SECRET, -EINVAL },
		{ "caf\xc3\xa9", POLICY_NAME_SECRET, -EINVAL },
		{ "\xff", POLICY_NAME_SECRET, -EINVAL },
		{ "x\n", POLICY_NAME_SECRET, -EINVAL },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		T_EQ_INT(policy_name_check(cases[i].name, cases[i].kind), cases[i].want,
			 "name check #%zu (kind %d)", i, (int)cases[i].kind);
	T_EQ_INT(policy_name_check(NULL, POLICY_NAME_SECRET), -EINVAL, "name check NULL");

	memset(n128, 'a', POLICY_NAME_MAX);
	n128[POLICY_NAME_MAX] = '\0';
	memset(n129, 'a', POLICY_NAME_MAX + 1);
	n129[POLICY_NAME_MAX + 1] = '\0';
	T_EQ_INT(policy_name_check(n128, POLICY_NAME_SECRET), 0, "name of 128 characters is accepted");
	T_EQ_INT(policy_name_check(n129, POLICY_NAME_SECRET), -EINVAL, "name of 129 characters is refused");
}

static void test_refs(void)
{
	static const struct {
		const char *ref;
		bool provider_only;
		int want;
		const char *provider, *name;
	} cases[] = {
		{ "openai/key", false, 0, "openai", "key" },
		{ "openai/key", true, 0, "openai", "key" },
		{ "gh.com/tok-1_x", false, 0, "gh.com", "tok-1_x" },
		{ "openai", true, 0, "openai", "" },
		{ "openai", false, -EINVAL, "", "" },
		{ "a/b/c", false, -EINVAL, "", "" },
		{ "a/b/c", true, -EINVAL, "", "" },
		{ "/x", false, -EINVAL, "", "" },
		{ "x/", false, -EINVAL, "", "" },
		{ "x/", true, -EINVAL, "", "" },
		{ "/", true, -EINVAL, "", "" },
		{ "", true, -EINVAL, "", "" },
		{ "../key", false, -EINVAL, "", "" },
		{ "openai/..", false, -EINVAL, "", "" },
		{ "openai/.env", false, -EINVAL, "", "" },
		{ "open ai/key", false, -EINVAL, "", "" },
	};
	char provider[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1];
	char long_ref[2 * POLICY_NAME_MAX + 4];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc;

		memset(provider, 'Z', sizeof provider);
		memset(name, 'Z', sizeof name);
		provider[sizeof provider - 1] = name[sizeof name - 1] = '\0';
		rc = policy_ref_parse(cases[i].ref, cases[i].provider_only, provider, name);
		T_EQ_INT(rc, cases[i].want, "ref \"%s\" (provider-only %d) result",
			 cases[i].ref, cases[i].provider_only);
		if (rc == 0) {
			T_EQ_STR(provider, cases[i].provider, "ref \"%s\" provider", cases[i].ref);
			T_EQ_STR(name, cases[i].name, "ref \"%s\" name", cases[i].ref);
		}
	}
	/* Both halves at their longest; one byte more in the provider is refused. */
	memset(long_ref, 'p', POLICY_NAME_MAX);
	long_ref[POLICY_NAME_MAX] = '/';
	memset(long_ref + POLICY_NAME_MAX + 1, 'n', POLICY_NAME_MAX);
	long_ref[2 * POLICY_NAME_MAX + 1] = '\0';
	T_EQ_INT(policy_ref_parse(long_ref, false, provider, name), 0, "ref of 128/128 characters");
	T_EQ_INT((int)strlen(provider) * 1000 + (int)strlen(name), 128 * 1000 + 128,
		 "ref of 128/128 characters splits into both halves");
	memset(long_ref, 'p', POLICY_NAME_MAX + 1);
	long_ref[POLICY_NAME_MAX + 1] = '/';
	long_ref[POLICY_NAME_MAX + 2] = 'n';
	long_ref[POLICY_NAME_MAX + 3] = '\0';
	T_EQ_INT(policy_ref_parse(long_ref, false, provider, name), -EINVAL, "ref with 129-character provider");
	T_EQ_INT(policy_ref_parse(NULL, true, provider, name), -EINVAL, "ref NULL");
}

static void test_durations(void)
{
	static const struct {
		const char *s;
		int64_t want;
	} good[] = {
		{ "30s", 30 }, { "15m", 900 }, { "2h", 7200 }, { "7d", 604800 },
		{ "1s", 1 }, { "007s", 7 }, { "36525d", (int64_t)36525 * 86400 },
	};
	static const char *const bad[] = {
		"", "0s", "00m", "-1s", "+1s", "1", "s", "1w", "1S", "1.5h", " 1s", "1s ",
		"1 s", "1sm", "1h30m", "99999999999999999999d", "36526d",
		"9223372036854775807s", "abc",
	};

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		int64_t v = -1;

		T_EQ_INT(policy_duration_parse(good[i].s, &v), 0, "duration \"%s\" is accepted", good[i].s);
		T_EQ_INT(v, good[i].want, "duration \"%s\" value", good[i].s);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t v = -1;

		T_EQ_INT(policy_duration_parse(bad[i], &v), -EINVAL, "duration \"%s\" is refused", bad[i]);
		T_EQ_INT(v, -1, "refused duration \"%s\" leaves the result alone", bad[i]);
	}
	T_EQ_INT(policy_duration_parse(NULL, NULL), -EINVAL, "duration NULL");
}

static void test_dates(void)
{
	static const struct {
		const char *s;
		int64_t want;
	} good[] = {
		{ "2027-01-31", 1801353600 },
		{ "2028-02-29", 1835395200 },
		{ "2027-01-31T12:00:00Z", 1801396800 },
		{ "2027-01-31T12:00:00", 1801396800 },
		{ "2027-12-31T23:59:59Z", 1830297599 },
		{ "2000-02-29", 951782400 },
		{ "2100-03-01", 4107542400 },
		{ "1970-01-01", 0 },
		{ "9999-12-31T23:59:59Z", 253402300799 },
		{ "7d", NOW + 604800 },
		{ "30s", NOW + 30 },
	};
	static const char *const bad[] = {
		"2027-02-29", "2100-02-29", "2027-04-31", "2027-13-01", "2027-00-10",
		"2027-01-00", "2027-01-32", "2027-01-31T25:00:00Z", "2027-01-31T24:00:00Z",
		"2027-01-31T12:60:00Z", "2027-01-31T12:00:60Z", "2027-01-31T12:00Z",
		"2027-01-31T12:00:00+01:00", "2027-01-31T12:00:00ZZ", "2027-01-31 12:00:00",
		"2027-01-31x", " 2027-01-31", "2027-1-31", "27-01-31", "1969-12-31",
		"20270131", "tomorrow", "", "0s", "-7d", "7",
	};

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		int64_t v = -1;

		T_EQ_INT(policy_when_parse(good[i].s, NOW, &v), 0, "date \"%s\" is accepted", good[i].s);
		T_EQ_INT(v, good[i].want, "date \"%s\" value", good[i].s);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t v = -1;

		T_EQ_INT(policy_when_parse(bad[i], NOW, &v), -EINVAL, "date \"%s\" is refused", bad[i]);
	}
	T_EQ_INT(policy_when_parse(NULL, NOW, NULL), -EINVAL, "date NULL");
}

static void test_time_format(void)
{
	static const char *const dates[] = {
		"1970-01-01T00:00:00Z", "2027-01-31T12:00:00Z", "2028-02-29T23:59:59Z",
		"2000-02-29T00:00:01Z", "9999-12-31T23:59:59Z",
	};
	char buf[64], want[64];

	policy_time_format(1801396800, buf, sizeof buf);
	T_EQ_STR(buf, "2027-01-31T12:00:00Z", "format 1801396800");
	policy_time_format(0, buf, sizeof buf);
	T_EQ_STR(buf, "1970-01-01T00:00:00Z", "format 0");
	policy_time_format(1801396800, buf, 21);
	T_EQ_STR(buf, "2027-01-31T12:00:00Z", "format into exactly 21 bytes");
	for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++) {
		int64_t t = -1;

		T_EQ_INT(policy_when_parse(dates[i], NOW, &t), 0, "round trip \"%s\" parses", dates[i]);
		policy_time_format(t, buf, sizeof buf);
		/* Compare against a copy: the macro's NULL check on the table
		 * pointer makes gcc -fsanitize warn about the message argument. */
		snprintf(want, sizeof want, "%s", dates[i]);
		T_EQ_STR(buf, want, "round trip \"%s\" formats back", dates[i]);
	}
}

/*
 * What a person sees of a foreign string: every control, DEL, C1 control,
 * bidirectional control and invalid UTF-8 byte as a visible escape, and
 * a backslash doubled, so the escaped text names exactly one original.
 */
static void test_escape(void)
{
	static const struct {
		const char *in, *want, *what;
	} cases[] = {
		{ "/usr/bin/cat", "/usr/bin/cat", "plain ASCII unchanged" },
		{ "", "", "empty string" },
		{ "a\nb", "a\\nb", "newline as \\n" },
		{ "a\tb\rc", "a\\tb\\rc", "tab and carriage return" },
		{ "\x1b[2K\r", "\\x1b[2K\\r", "ESC erase-line sequence" },
		{ "\x01\x1f\x7f", "\\x01\\x1f\\x7f", "other C0 controls and DEL" },
		{ "a\\nb", "a\\\\nb", "a literal backslash-n differs from a newline" },
		{ "\xc2\x9b" "31m", "\\xc2\\x9b31m", "C1 CSI (U+009B) in UTF-8" },
		{ "\xc2\x85", "\\xc2\\x85", "C1 NEL (U+0085)" },
		{ "\x9b", "\\x9b", "a lone C1 byte (invalid UTF-8)" },
		{ "caf\xc3\xa9", "caf\xc3\xa9", "valid two-byte UTF-8 unchanged" },
		{ "\xe2\x82\xac \xf0\x9f\x94\x91", "\xe2\x82\xac \xf0\x9f\x94\x91",
		  "valid three- and four-byte UTF-8 unchanged" },
		{ "\xc2\xa0", "\xc2\xa0", "U+00A0, the first code point after C1, unchanged" },
		{ "x\xff", "x\\xff", "byte 0xff" },
		{ "\xc3", "\\xc3", "a sequence cut short at the end" },
		{ "\xc3(", "\\xc3(", "a lead byte without its continuation" },
		{ "\xc0\xaf", "\\xc0\\xaf", "overlong '/'" },
		{ "\xed\xa0\x80", "\\xed\\xa0\\x80", "a UTF-16 surrogate" },
		{ "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80", "above U+10FFFF" },
		{ "a\xe2\x80\xae" "b", "a\\u202eb", "right-to-left override" },
		{ "\xe2\x81\xa6", "\\u2066", "left-to-right isolate" },
	};
	char buf[64];
	size_t i, n;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		n = policy_escape(cases[i].in, buf, sizeof buf);
		T_EQ_STR(buf, cases[i].want, "escape: %s", cases[i].what);
		T_EQ_INT(n, strlen(cases[i].want), "escape: %s: length", cases[i].what);
	}
	n = policy_escape("a\nbcdef", buf, 4);
	T_EQ_STR(buf, "a\\n", "escape: cut to the buffer, NUL-terminated");
	T_EQ_INT(n, 8, "escape: the result says how long the whole text is");
	T_EQ_INT(policy_escape("\xff\xff", NULL, 0), 8, "escape: size query with no buffer");
	n = policy_escape(NULL, buf, sizeof buf);
	T_OK(n == 0 && buf[0] == '\0', "escape: NULL shows as the empty string");
	T_OK(strlen("\x01\x02") * 4 + 1 == POLICY_ESCAPE_SIZE(2), "escape: size bound");
}

int main(void)
{
	test_names();
	test_refs();
	test_durations();
	test_dates();
	test_time_format();
	test_escape();
	return t_done();
}

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
		{ "2027-01-31T12:00Z", 1801396800 },
		{ "2027-01-31T12:00", 1801396800 },
		{ "2027-01-31T13:00:00+01:00", 1801396800 },
		{ "2027-01-31T07:30-04:30", 1801396800 },
		{ "2027-02-01T00:30+12:30", 1801396800 },
		{ "1970-01-01T01:00+01:00", 0 },
		{ "7d", NOW + 604800 },
		{ "30s", NOW + 30 },
	};
	static const char *const bad[] = {
		"2027-02-29", "2100-02-29", "2027-04-31", "2027-13-01", "2027-00-10",
		"2027-01-00", "2027-01-32", "2027-01-31T25:00:00Z", "2027-01-31T24:00:00Z",
		"2027-01-31T12:60:00Z", "2027-01-31T12:00:60Z", "2027-01-31T12Z",
		"2027-01-31T12:00:00+0100", "2027-01-31T12:00:00ZZ", "2027-01-31T12:00+1:00",
		"2027-01-31T12:00+24:00", "2027-01-31T12:00+01:60", "2027-01-31T12:00:00Z+01:00",
		"2027-01-31T12:00:00+01:00x", "1970-01-01T00:30+01:00", "2027-01-31T12:00:0Z",
		"2027-01-31T", "2027-01-31Z", "2027-01-31 12:00:00",
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

int main(void)
{
	test_names();
	test_refs();
	test_durations();
	test_dates();
	test_time_format();
	return t_done();
}

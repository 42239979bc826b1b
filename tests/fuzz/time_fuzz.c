/*
 * time_fuzz.c - fuzz target for policy_duration_parse(), policy_when_parse()
 * and policy_time_format().
 *
 * A mistyped --ttl or --expires must never become "forever" or a date in
 * the past, so the target compares the parsers with independent oracles:
 * a duration is digits then one of s/m/h/d, positive, at most 100 years;
 * an accepted ISO date must equal timegm() of its fields and format back
 * to the same text (with the time and 'Z' added). UBSan watches the
 * arithmetic (now + duration, days * 86400).
 *
 * Input: bytes 0..7 are `now` (little endian), byte 8 a buffer length for
 * policy_time_format, the rest the string.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "policy/policy.h"
#include "tests/fuzz/fuzz.h"

#define DUR_MAX ((int64_t)36525 * 86400)

/* -1 invalid, else seconds. */
static int64_t oracle_duration(const char *s)
{
	size_t n = strlen(s), i;
	int64_t v = 0, unit;

	if (n < 2)
		return -1;
	for (i = 0; i + 1 < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v <= DUR_MAX)
			v = v * 10 + (s[i] - '0');
	}
	switch (s[n - 1]) {
	case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	default: return -1;
	}
	if (v == 0 || v > DUR_MAX / unit)
		return -1;
	return v * unit;
}

static int64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return (int64_t)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t now, secs = 0, when = 0, od;
	size_t n, fmtlen;
	char *s, *buf;
	int rc;

	if (size < 9)
		return 0;
	now = le64(data);
	fmtlen = data[8] % 40;
	n = strnlen((const char *)data + 9, size - 9);
	s = malloc(n + 1);
	if (!s)
		abort();
	memcpy(s, data + 9, n);
	s[n] = '\0';

	/* durations */
	rc = policy_duration_parse(s, &secs);
	od = oracle_duration(s);
	FUZZ_CHECK((rc == 0) == (od >= 0), "duration '%s': rc %d, rule says %lld", s, rc, (long long)od);
	if (rc == 0)
		FUZZ_CHECK(secs == od && secs > 0, "duration '%s' = %lld, want %lld", s,
			   (long long)secs, (long long)od);
	else
		FUZZ_CHECK(rc == -EINVAL, "rc %d", rc);

	/* points in time */
	rc = policy_when_parse(s, now, &when);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL, "rc %d", rc);
	if (rc == 0 && s[0] >= '0' && s[0] <= '9' && !strchr(s, '-')) {
		FUZZ_CHECK(od >= 0 && when - now == od, "when '%s' from %lld = %lld", s,
			   (long long)now, (long long)when);
	} else if (rc == 0) {
		/* An ISO date: the same instant as timegm, and it formats back. */
		struct tm tm;
		char back[32], want[32];
		size_t len = strlen(s);

		memset(&tm, 0, sizeof tm);
		FUZZ_CHECK(len == 10 || len == 19 || len == 20, "accepted date '%s' of length %zu", s, len);
		FUZZ_CHECK(sscanf(s, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) == 3,
			   "accepted '%s' is not a date", s);
		if (len > 10)
			FUZZ_CHECK(sscanf(s + 11, "%2d:%2d:%2d", &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 3,
				   "accepted '%s' has no time", s);
		tm.tm_year -= 1900;
		tm.tm_mon -= 1;
		FUZZ_CHECK(timegm(&tm) == (time_t)when, "'%s' = %lld, timegm says %lld", s,
			   (long long)when, (long long)timegm(&tm));
		FUZZ_CHECK(when >= 0, "accepted a date before 1970: '%s'", s);
		policy_time_format(when, back, sizeof back);
		if (len == 10)
			snprintf(want, sizeof want, "%sT00:00:00Z", s);
		else if (len == 19)
			snprintf(want, sizeof want, "%sZ", s);
		else
			snprintf(want, sizeof want, "%s", s);
		FUZZ_CHECK(strcmp(back, want) == 0, "'%s' formats back as '%s'", s, back);
		/* and the formatted form parses to the same instant */
		FUZZ_CHECK(policy_when_parse(back, now, &secs) == 0 && secs == when,
			   "'%s' does not round-trip", back);
	}

	/* formatting any instant into any buffer size stays inside the buffer */
	buf = malloc(fmtlen ? fmtlen : 1);
	if (!buf)
		abort();
	policy_time_format(now, buf, fmtlen);
	if (fmtlen)
		FUZZ_CHECK(memchr(buf, '\0', fmtlen) != NULL, "time_format(%lld, %zu) not terminated",
			   (long long)now, fmtlen);
	if (fmtlen >= 21 && now >= 0 && now < (int64_t)253402300800) {
		int64_t again = 0;
		FUZZ_CHECK(strlen(buf) == 20 && policy_when_parse(buf, 0, &again) == 0 && again == now,
			   "time_format(%lld) = '%s' does not parse back", (long long)now, buf);
	}
	free(buf);
	free(s);
	return 0;
}

/*
 * parse.c - what counts as a well-formed name, PROVIDER/NAME reference,
 * duration or date. Names become path components of the mount and keys
 * of the store, so the rules are strict and checked in one place: a name
 * that passes here can never be "..", contain a '/', a space, a NUL or a
 * byte outside ASCII. Durations and dates are parsed exactly; anything
 * with extra characters, a sign, or a value out of range is refused rather
 * than guessed at, because a mistyped --ttl must not become "forever".
 */
#include "policy/policy.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/* Longest duration accepted: 100 years of 365.25 days. */
#define POLICY_DURATION_MAX ((int64_t)36525 * 86400)

static bool policy_name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int policy_name_check(const char *name, enum policy_name_kind kind)
{
	size_t n;

	if (!name || name[0] == '\0')
		return -EINVAL;
	/* A leading '.' rules out "." and ".."; a leading '-' would read as an option. */
	if (name[0] == '.' || name[0] == '-')
		return -EINVAL;
	for (n = 0; name[n]; n++) {
		if (n >= POLICY_NAME_MAX || !policy_name_char(name[n]))
			return -EINVAL;
	}
	/* "self" is reserved so the mount can offer MOUNT/self for the calling agent. */
	if (kind == POLICY_NAME_AGENT && strcmp(name, "self") == 0)
		return -EINVAL;
	return 0;
}

int policy_ref_parse(const char *ref, bool allow_provider_only,
		     char *provider, char *name)
{
	const char *slash;
	size_t plen;

	if (!provider || !name)
		return -EINVAL;
	provider[0] = '\0';
	name[0] = '\0';
	if (!ref)
		return -EINVAL;
	slash = strchr(ref, '/');
	if (!slash) {
		if (!allow_provider_only || policy_name_check(ref, POLICY_NAME_PROVIDER) != 0)
			return -EINVAL;
		memcpy(provider, ref, strlen(ref) + 1);
		return 0;
	}
	plen = (size_t)(slash - ref);
	if (plen == 0 || plen > POLICY_NAME_MAX)
		return -EINVAL;
	memcpy(provider, ref, plen);
	provider[plen] = '\0';
	/* The name check refuses a second '/', so "a/b/c" fails here. */
	if (policy_name_check(provider, POLICY_NAME_PROVIDER) != 0 ||
	    policy_name_check(slash + 1, POLICY_NAME_SECRET) != 0) {
		provider[0] = '\0';
		return -EINVAL;
	}
	memcpy(name, slash + 1, strlen(slash + 1) + 1);
	return 0;
}

int policy_duration_parse(const char *s, int64_t *seconds)
{
	int64_t v = 0, unit;
	size_t i;

	if (!s || !seconds)
		return -EINVAL;
	/* Only digits, then exactly one unit letter: no sign, space or fraction. */
	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (s[i] - '0');
		if (v > POLICY_DURATION_MAX)
			return -EINVAL;
	}
	if (i == 0 || s[i] == '\0' || s[i + 1] != '\0')
		return -EINVAL;
	switch (s[i]) {
	case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	default: return -EINVAL;
	}
	if (v == 0 || v > POLICY_DURATION_MAX / unit)
		return -EINVAL;
	*seconds = v * unit;
	return 0;
}

/* Read exactly n digits at s into *out; false if any is not a digit. */
static bool policy_digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool policy_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int policy_month_days(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && policy_leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (y >= 1). */
static int64_t policy_days_from_civil(int y, int m, int d)
{
	int64_t py = y - 1;
	int64_t days = py * 365 + py / 4 - py / 100 + py / 400; /* days before Jan 1 of y since 0001-01-01 */
	const int64_t epoch = 1969 * 365 + 1969 / 4 - 1969 / 100 + 1969 / 400;

	for (int i = 1; i < m; i++)
		days += policy_month_days(y, i);
	return days + (d - 1) - epoch;
}

static int policy_date_parse(const char *s, int64_t *when)
{
	size_t len = strlen(s), n;
	int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0;
	int64_t t;

	/*
	 * "YYYY-MM-DD", then optionally "THH:MM" or "THH:MM:SS", then
	 * optionally "Z" or "+HH:MM" / "-HH:MM". Without a zone the time is UTC.
	 */
	if (len < 10 || !policy_digits(s, 4, &y) || s[4] != '-' || !policy_digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !policy_digits(s + 8, 2, &d))
		return -EINVAL;
	n = 10;
	if (len > 10) {
		if (len < 16 || s[10] != 'T' || !policy_digits(s + 11, 2, &h) || s[13] != ':' ||
		    !policy_digits(s + 14, 2, &mi))
			return -EINVAL;
		n = 16;
		if (s[16] == ':') {
			if (!policy_digits(s + 17, 2, &sec))
				return -EINVAL;
			n = 19;
		}
		if (s[n] == 'Z') {
			n++;
		} else if (s[n] == '+' || s[n] == '-') {
			sign = s[n] == '+' ? 1 : -1;
			if (!policy_digits(s + n + 1, 2, &oh) || s[n + 3] != ':' ||
			    !policy_digits(s + n + 4, 2, &om))
				return -EINVAL;
			n += 6;
		}
	}
	if (n != len)
		return -EINVAL;
	/* Dates before the epoch are never a meaningful expiry. */
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > policy_month_days(y, mo))
		return -EINVAL;
	if (h > 23 || mi > 59 || sec > 59 || oh > 23 || om > 59)
		return -EINVAL;
	t = policy_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	/* local time = UTC + offset */
	t -= sign * (oh * 3600 + om * 60);
	if (t < 0)
		return -EINVAL;
	*when = t;
	return 0;
}

int policy_when_parse(const char *s, int64_t now, int64_t *when)
{
	int64_t d, t;

	if (!s || !when)
		return -EINVAL;
	if (s[0] >= '0' && s[0] <= '9' && strchr(s, '-') == NULL) {
		if (policy_duration_parse(s, &d) != 0)
			return -EINVAL;
		if (now > INT64_MAX - d)
			return -EINVAL;
		*when = now + d;
		return 0;
	}
	if (policy_date_parse(s, &t) != 0)
		return -EINVAL;
	*when = t;
	return 0;
}

void policy_time_format(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!buf || len == 0)
		return;
	if (!gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		buf[0] = '\0';
}

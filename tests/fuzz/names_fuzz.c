/*
 * names_fuzz.c - fuzz target for policy_name_check() and policy_ref_parse().
 *
 * Names become path components of the mount and keys of the store, so the
 * target compares both functions with an independent statement of the rule
 * (1..128 bytes of [A-Za-z0-9._-], not starting with '.' or '-', "self"
 * reserved for agents) in both directions: nothing invalid accepted,
 * nothing valid refused. An accepted PROVIDER/NAME must split into two
 * accepted names that rebuild the input. Output buffers are heap blocks of
 * exactly POLICY_NAME_MAX + 1 bytes, so any overrun is an ASan report.
 *
 * Input: byte 0 picks the name kind and allow_provider_only; the rest is
 * the string (cut at the first NUL, as a C caller would see it).
 */
#include <stdbool.h>
#include <string.h>

#include "policy/policy.h"
#include "tests/fuzz/fuzz.h"

static bool oracle_name(const char *s, size_t n, enum policy_name_kind kind)
{
	size_t i;

	if (n < 1 || n > 128 || s[0] == '.' || s[0] == '-')
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	if (kind == POLICY_NAME_AGENT && n == 4 && memcmp(s, "self", 4) == 0)
		return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum policy_name_kind kind;
	bool provider_only;
	char *s, *prov, *name;
	const char *slash;
	size_t n;
	int rc;
	bool want;

	if (size < 1)
		return 0;
	kind = (enum policy_name_kind)(data[0] % 5);
	provider_only = (data[0] & 0x80) != 0;
	n = strnlen((const char *)data + 1, size - 1);
	s = malloc(n + 1);
	prov = malloc(POLICY_NAME_MAX + 1);
	name = malloc(POLICY_NAME_MAX + 1);
	if (!s || !prov || !name)
		abort();
	memcpy(s, data + 1, n);
	s[n] = '\0';

	/* name check against the oracle, every kind */
	rc = policy_name_check(s, kind);
	FUZZ_CHECK(rc == 0 || rc == -22, "rc %d", rc);
	want = oracle_name(s, n, kind);
	FUZZ_CHECK((rc == 0) == want, "policy_name_check(\"%s\", %d) = %d, rule says %s",
		   s, (int)kind, rc, want ? "valid" : "invalid");
	if (rc == 0)
		FUZZ_CHECK(strcmp(s, ".") && strcmp(s, "..") && !strchr(s, '/'),
			   "accepted a path-like name");

	/* ref parse */
	memset(prov, 'X', POLICY_NAME_MAX + 1);
	memset(name, 'X', POLICY_NAME_MAX + 1);
	rc = policy_ref_parse(s, provider_only, prov, name);
	FUZZ_CHECK(rc == 0 || rc == -22, "rc %d", rc);
	FUZZ_CHECK(memchr(prov, '\0', POLICY_NAME_MAX + 1) && memchr(name, '\0', POLICY_NAME_MAX + 1),
		   "ref output not NUL-terminated");
	slash = strchr(s, '/');
	if (slash) {
		size_t pl = (size_t)(slash - s);
		want = oracle_name(s, pl, POLICY_NAME_PROVIDER) &&
		       oracle_name(slash + 1, strlen(slash + 1), POLICY_NAME_SECRET);
	} else {
		want = provider_only && oracle_name(s, n, POLICY_NAME_PROVIDER);
	}
	FUZZ_CHECK((rc == 0) == want, "policy_ref_parse(\"%s\", %d) = %d, rule says %s",
		   s, (int)provider_only, rc, want ? "valid" : "invalid");
	if (rc == 0) {
		char rebuilt[2 * POLICY_NAME_MAX + 2];

		FUZZ_CHECK(policy_name_check(prov, POLICY_NAME_PROVIDER) == 0,
			   "accepted ref has bad provider '%s'", prov);
		if (slash) {
			FUZZ_CHECK(policy_name_check(name, POLICY_NAME_SECRET) == 0,
				   "accepted ref has bad name '%s'", name);
			snprintf(rebuilt, sizeof rebuilt, "%s/%s", prov, name);
		} else {
			FUZZ_CHECK(name[0] == '\0', "provider-only ref left name '%s'", name);
			snprintf(rebuilt, sizeof rebuilt, "%s", prov);
		}
		FUZZ_CHECK(strcmp(rebuilt, s) == 0, "ref '%s' split as '%s'", s, rebuilt);
	} else {
		/* Not promised by the header, but what callers rely on when printing. */
		FUZZ_CHECK(prov[0] == '\0' && name[0] == '\0', "refused ref left output behind");
	}
	free(s);
	free(prov);
	free(name);
	return 0;
}

/*
 * policy.c - the allow/deny decision: may this process resolve this secret
 * now? It decides only from the facts handed to it (agent, secret, grant,
 * caller, time), so the FUSE daemon and `shadm check` share one answer and
 * the unit tests can walk every rule with a table. Deny is the default;
 * the rules run in the order of enum policy_reason and the first one that
 * fails is the reason. The caller's bindings are checked before anything
 * else about the agent, so a stranger learns nothing about whether the
 * agent is disabled or holds a grant.
 */
#include "policy/policy.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/*
 * Compare two hashes in time that does not depend on where they differ,
 * so a caller probing with crafted executables learns nothing from timing.
 * A plain loop keeps policy/ free of every library.
 */
static bool policy_hash_equal(const uint8_t *a, const uint8_t *b)
{
	volatile uint8_t diff = 0;

	for (size_t i = 0; i < POLICY_SHA256_BYTES; i++)
		diff |= (uint8_t)(a[i] ^ b[i]);
	return diff == 0;
}

static bool policy_str_equal(const char *a, const char *b)
{
	/* Exact bytes: no normalisation, so "/usr/bin/x" never matches "/usr//bin/x". */
	const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;

	while (*p && *p == *q) {
		p++;
		q++;
	}
	return *p == *q;
}

enum policy_reason policy_match(const struct policy_agent *agent,
				const struct policy_caller *caller)
{
	if (!caller || !caller->known)
		return POLICY_CALLER_UNKNOWN;
	if (!agent || !agent->exists)
		return POLICY_NO_AGENT;
	/* Root is not special: uid 0 matches only an agent bound to uid 0. */
	if (caller->uid != agent->uid)
		return POLICY_UID_MISMATCH;
	if (agent->has_gid && caller->gid != agent->gid)
		return POLICY_GID_MISMATCH;
	if (agent->cgroup &&
	    (!caller->cgroup || !policy_cgroup_match(agent->cgroup, caller->cgroup)))
		return POLICY_CGROUP_MISMATCH;
	if (agent->exe && (!caller->exe || !policy_str_equal(agent->exe, caller->exe)))
		return POLICY_EXE_MISMATCH;
	if (agent->has_exe_sha256 &&
	    (!caller->has_exe_sha256 ||
	     !policy_hash_equal(agent->exe_sha256, caller->exe_sha256)))
		return POLICY_EXE_HASH_MISMATCH;
	return POLICY_ALLOW;
}

int policy_cgroup_check(const char *path, bool as_binding)
{
	size_t len, comp = 0;

	if (!path || path[0] != '/')
		return -EINVAL;
	len = strlen(path);
	if (len >= (as_binding ? (size_t)POLICY_CGROUP_MAX : (size_t)PATH_MAX))
		return -EINVAL;
	if (len == 1)
		return 0;                /* the root */
	for (size_t i = 1; i <= len; i++) {
		unsigned char ch = (unsigned char)path[i];

		if (ch == '/' || ch == '\0') {
			size_t n = i - comp - 1;
			const char *c = path + comp + 1;

			/* a trailing '/' (subtree) is the one empty component allowed */
			if (n == 0 && !(ch == '\0' && as_binding))
				return -EINVAL;
			if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
				return -EINVAL;
			comp = i;
		} else if (ch < 0x20 || ch == 0x7f) {
			return -EINVAL;
		}
	}
	return 0;
}

bool policy_cgroup_match(const char *binding, const char *cgroup)
{
	size_t n;

	if (!binding || !cgroup)
		return false;
	n = strlen(binding);
	if (n <= 1 || binding[n - 1] != '/')
		return policy_str_equal(binding, cgroup);
	/* subtree "/a/": "/a" itself, or anything starting with "/a/" */
	if (strncmp(binding, cgroup, n - 1) != 0)
		return false;
	return cgroup[n - 1] == '\0' || cgroup[n - 1] == '/';
}

/*
 * File names of programs that run whatever script they are handed. A
 * name matches when it is one of these, optionally followed by a
 * version made of digits and dots ("python3.11", "ruby3.1", "php8.2").
 */
static const char *const policy_interpreters[] = {
	"python", "pypy", "node", "nodejs", "deno", "bun", "bash", "sh", "dash", "zsh",
	"ksh", "mksh", "fish", "busybox", "perl", "ruby", "java", "php", "lua", "luajit",
	"tclsh", "wish", "Rscript", "R", "pwsh", "gawk", "awk", "mawk", "osascript",
	"irb", "jshell", "guile", "racket", "sbcl", "erl", "elixir", "julia", NULL,
};

bool policy_exe_interpreter(const char *path)
{
	const char *base;

	if (!path)
		return false;
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	for (size_t i = 0; policy_interpreters[i]; i++) {
		size_t n = strlen(policy_interpreters[i]);
		const char *v = base + n;

		if (strncmp(base, policy_interpreters[i], n) != 0)
			continue;
		while ((*v >= '0' && *v <= '9') || *v == '.')
			v++;
		if (*v == '\0')
			return true;
	}
	return false;
}

bool policy_grant_live(const struct policy_grant *grant, int64_t now)
{
	if (!grant || !grant->exists || grant->revoked)
		return false;
	if (grant->expires != 0 && now >= grant->expires)
		return false;
	if (grant->max_uses != 0 && grant->uses >= grant->max_uses)
		return false;
	if (grant->pid != 0 && grant->task_ended)
		return false;
	return true;
}

enum policy_reason policy_decide(const struct policy_facts *facts,
				 const struct policy_caller *caller,
				 int64_t now)
{
	enum policy_reason r;

	if (!caller || !caller->known)
		return POLICY_CALLER_UNKNOWN;
	if (!facts)
		return POLICY_NO_AGENT;
	r = policy_match(&facts->agent, caller);
	if (r != POLICY_ALLOW)
		return r;
	if (!facts->agent.enabled)
		return POLICY_AGENT_DISABLED;
	if (!facts->secret.exists)
		return POLICY_NO_SECRET;
	if (!facts->secret.candidate)
		return POLICY_NOT_CANDIDATE;
	/* The grant rules mirror policy_grant_live() but name the rule that failed. */
	if (!facts->grant.exists)
		return POLICY_NO_GRANT;
	if (facts->grant.revoked)
		return POLICY_GRANT_REVOKED;
	if (facts->grant.expires != 0 && now >= facts->grant.expires)
		return POLICY_GRANT_EXPIRED;
	if (facts->grant.max_uses != 0 && facts->grant.uses >= facts->grant.max_uses)
		return POLICY_GRANT_USED_UP;
	if (facts->grant.pid != 0 && facts->grant.task_ended)
		return POLICY_TASK_ENDED;
	if (facts->secret.expires != 0 && now >= facts->secret.expires)
		return POLICY_VERSION_EXPIRED;
	return POLICY_ALLOW;
}

bool policy_reason_requestable(enum policy_reason reason)
{
	switch (reason) {
	case POLICY_NO_GRANT:
	case POLICY_GRANT_REVOKED:
	case POLICY_GRANT_EXPIRED:
	case POLICY_GRANT_USED_UP:
	case POLICY_TASK_ENDED:
		return true;
	default:
		return false;
	}
}

/*
 * Names are written into audit rows and matched by scripts: never rename
 * one, only add. Indexed by enum policy_reason.
 */
static const char *const policy_names[POLICY_REASON_COUNT] = {
	[POLICY_ALLOW] = "allow",
	[POLICY_CALLER_UNKNOWN] = "caller-unknown",
	[POLICY_NO_AGENT] = "no-agent",
	[POLICY_UID_MISMATCH] = "uid",
	[POLICY_GID_MISMATCH] = "gid",
	[POLICY_CGROUP_MISMATCH] = "cgroup",
	[POLICY_EXE_MISMATCH] = "exe",
	[POLICY_EXE_HASH_MISMATCH] = "exe-sha256",
	[POLICY_AGENT_DISABLED] = "disabled",
	[POLICY_NO_SECRET] = "no-secret",
	[POLICY_NOT_CANDIDATE] = "not-candidate",
	[POLICY_NO_GRANT] = "no-grant",
	[POLICY_GRANT_REVOKED] = "revoked",
	[POLICY_GRANT_EXPIRED] = "grant-expired",
	[POLICY_GRANT_USED_UP] = "used-up",
	[POLICY_TASK_ENDED] = "task-ended",
	[POLICY_VERSION_EXPIRED] = "version-expired",
	[POLICY_RATE_LIMIT] = "rate-limit",
	[POLICY_INTEGRITY] = "integrity",
	[POLICY_AMBIGUOUS_AGENT] = "ambiguous-agent",
	[POLICY_TOO_MANY_OPEN] = "too-many-open",
};

static const char *const policy_texts[POLICY_REASON_COUNT] = {
	[POLICY_ALLOW] = "every rule holds",
	[POLICY_CALLER_UNKNOWN] = "the caller's process could not be identified",
	[POLICY_NO_AGENT] = "no such agent in this workspace",
	[POLICY_UID_MISMATCH] = "caller uid does not match the agent's uid",
	[POLICY_GID_MISMATCH] = "caller gid does not match the agent's gid",
	[POLICY_CGROUP_MISMATCH] = "caller is not in the agent's cgroup",
	[POLICY_EXE_MISMATCH] = "caller executable is not the agent's executable",
	[POLICY_EXE_HASH_MISMATCH] = "caller executable's sha256 does not match the agent's",
	[POLICY_AGENT_DISABLED] = "the agent is disabled",
	[POLICY_NO_SECRET] = "no such secret, or it has no version",
	[POLICY_NOT_CANDIDATE] = "the secret is not attached to any project of the agent",
	[POLICY_NO_GRANT] = "no direct grant for this secret",
	[POLICY_GRANT_REVOKED] = "the grant was revoked",
	[POLICY_GRANT_EXPIRED] = "the grant's time limit has passed",
	[POLICY_GRANT_USED_UP] = "the grant's uses are spent",
	[POLICY_TASK_ENDED] = "the process the grant was tied to has ended",
	[POLICY_VERSION_EXPIRED] = "the secret's current version has expired",
	[POLICY_RATE_LIMIT] = "the agent's rate limit is spent for now",
	[POLICY_INTEGRITY] = "the ciphertext failed its integrity check",
	[POLICY_AMBIGUOUS_AGENT] = "the caller matches more than one agent",
	[POLICY_TOO_MANY_OPEN] = "the caller's uid holds as many open secrets as allowed",
};

const char *policy_reason_name(enum policy_reason reason)
{
	/* Cast: an out-of-range value from a corrupt row must not index past the table. */
	if ((unsigned)reason >= POLICY_REASON_COUNT)
		return "unknown";
	return policy_names[reason];
}

const char *policy_reason_text(enum policy_reason reason)
{
	if ((unsigned)reason >= POLICY_REASON_COUNT)
		return "unknown reason";
	return policy_texts[reason];
}

bool policy_rate_take(struct policy_rate *r, int64_t now_ms, bool *first_refusal)
{
	int64_t elapsed, weight, prev_part;

	if (first_refusal)
		*first_refusal = false;
	if (r->max <= 0 || r->window_ms <= 0)
		return true;
	elapsed = now_ms - r->start_ms;
	if (elapsed < 0 || elapsed >= 2 * r->window_ms) {
		/* idle for two windows (or the clock went back): start afresh */
		r->start_ms = now_ms;
		r->cur = r->prev = 0;
		r->refused = false;
		elapsed = 0;
	} else if (elapsed >= r->window_ms) {
		r->start_ms += r->window_ms;
		r->prev = r->cur;
		r->cur = 0;
		r->refused = false;
		elapsed -= r->window_ms;
	}
	/* the part of the previous window still inside the sliding one, rounded up */
	weight = r->window_ms - elapsed;
	prev_part = (r->prev * weight + r->window_ms - 1) / r->window_ms;
	if (prev_part + r->cur < r->max) {
		r->cur++;
		return true;
	}
	if (first_refusal)
		*first_refusal = !r->refused;
	r->refused = true;
	return false;
}

int policy_rate_parse(const char *s, int64_t *max, int64_t *window_seconds)
{
	int64_t n = 0;
	const char *p = s;

	if (!s || *s < '1' || *s > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (*p - '0');
		if (n > 1000000000)
			return -EINVAL;
	}
	if (*p != '/' || policy_duration_parse(p + 1, window_seconds))
		return -EINVAL;
	*max = n;
	return 0;
}

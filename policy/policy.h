/*
 * policy.h - the pure allow/deny decision of ScopeHold, and the rules for
 * what a well-formed name, duration or date is.
 *
 * Nothing here touches a file, a database or the kernel: every function
 * decides from the facts handed to it, so the same code answers for the
 * FUSE daemon on every open and for `shadm check` as a dry run, and is
 * tested with tables. Deny is the default: policy_decide() returns
 * POLICY_ALLOW only when every rule holds.
 *
 * Error convention (the whole code base): functions return 0 on success
 * or a negative errno value, and hand results back through out-parameters.
 */
#ifndef SCOPEHOLD_POLICY_H
#define SCOPEHOLD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define POLICY_NAME_MAX 128          /* longest workspace/provider/secret/agent/project name */
#define POLICY_SHA256_BYTES 32
#define POLICY_CGROUP_MAX 1024       /* longest cgroup binding, in bytes */

#if defined(__GNUC__)
#define POLICY_WUR __attribute__((warn_unused_result))
#else
#define POLICY_WUR
#endif

/*
 * Why a request was allowed or denied. The order of the checks in
 * policy_decide() is the order of this enum: the first rule that fails
 * is the reason reported. Caller-binding checks come before anything that
 * would tell a stranger about the agent's state.
 */
enum policy_reason {
	POLICY_ALLOW = 0,
	POLICY_CALLER_UNKNOWN,    /* caller facts could not be established (pid 0, process gone) */
	POLICY_NO_AGENT,          /* no such agent in this workspace */
	POLICY_UID_MISMATCH,      /* caller uid is not the agent's uid (root is not special) */
	POLICY_GID_MISMATCH,      /* agent bound to a gid and the caller's differs */
	POLICY_CGROUP_MISMATCH,   /* agent bound to a cgroup and the caller is not in it */
	POLICY_EXE_MISMATCH,      /* agent bound to an executable path and the caller runs another */
	POLICY_EXE_HASH_MISMATCH, /* agent bound to a sha256 and the caller's executable differs */
	POLICY_AGENT_DISABLED,    /* agent exists and matches but is disabled */
	POLICY_NO_SECRET,         /* no such secret (or it has no version) */
	POLICY_NOT_CANDIDATE,     /* secret is not attached to any project the agent is assigned to */
	POLICY_NO_GRANT,          /* candidate, but no direct grant */
	POLICY_GRANT_REVOKED,
	POLICY_GRANT_EXPIRED,     /* grant's --ttl has passed */
	POLICY_GRANT_USED_UP,     /* grant's --uses are spent */
	POLICY_TASK_ENDED,        /* grant --while-pid: that process has ended (or its pid was reused) */
	POLICY_VERSION_EXPIRED,   /* current version's --expires has passed */
	POLICY_RATE_LIMIT,        /* not decided here: the agent's --rate is spent (policy_rate_take) */
	POLICY_INTEGRITY,         /* not decided here: ciphertext failed authentication */
	POLICY_AMBIGUOUS_AGENT,   /* not decided here: the caller matches several agents (MOUNT/self) */
	POLICY_TOO_MANY_OPEN,     /* not decided here: the caller's uid holds max_open_per_uid values */
	POLICY_REASON_COUNT
};

/* What the store knows about the agent named in the request. */
struct policy_agent {
	bool exists;
	bool enabled;
	uid_t uid;                /* required binding */
	bool has_gid;
	gid_t gid;
	const char *exe;          /* NULL: not bound to an executable path */
	bool has_exe_sha256;
	uint8_t exe_sha256[POLICY_SHA256_BYTES];
	const char *cgroup;       /* NULL: not bound; "/a/b" exactly that cgroup, "/a/" the subtree */
	int64_t rate_max;         /* --rate: resolves per rate_window seconds; 0 = none */
	int64_t rate_window;
};

/* The secret named in the request, as seen from the agent. */
struct policy_secret {
	bool exists;              /* secret exists and has a current version */
	bool candidate;           /* attached (itself or its provider) to a project the agent is assigned to */
	int64_t version;          /* current version number */
	int64_t expires;          /* unix seconds; 0 = never */
	bool canary;              /* a honeytoken: decided like any secret, every open raises an alert */
};

/* The direct agent <-> secret grant, if any. */
struct policy_grant {
	bool exists;
	bool revoked;
	int64_t expires;          /* unix seconds; 0 = never */
	int64_t max_uses;         /* 0 = unlimited */
	int64_t uses;             /* resolves already counted against max_uses */
	pid_t pid;                /* task-scoped (--while-pid): the process it lives with; 0 = none */
	bool task_ended;          /* pid != 0 and that process (pid + start time) is gone */
};

struct policy_facts {
	struct policy_agent agent;
	struct policy_secret secret;
	struct policy_grant grant;
};

/*
 * The process asking. known=false means the facts could not be
 * established and the request is denied. exe/exe_sha256 need only be
 * filled when the agent is bound to them (the caller may skip hashing).
 */
struct policy_caller {
	bool known;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	const char *exe;          /* resolved path of the executable, or NULL */
	bool has_exe_sha256;
	uint8_t exe_sha256[POLICY_SHA256_BYTES];
	const char *cgroup;       /* cgroup v2 path (the "0::" line, as the daemon sees it), or NULL */
};

/* Does the caller satisfy every binding of the agent? (no grant checks) */
enum policy_reason policy_match(const struct policy_agent *agent,
				const struct policy_caller *caller) POLICY_WUR;

/* May this caller resolve this secret now? POLICY_ALLOW or the first failing rule. */
enum policy_reason policy_decide(const struct policy_facts *facts,
				 const struct policy_caller *caller,
				 int64_t now) POLICY_WUR;

/*
 * Is the grant live at `now`: exists, not revoked, not expired, not used
 * up, and (task-scoped) its process has not ended? (The mount shows a candidate as 0400 when this holds and the
 * version is unexpired, 0000 otherwise.)
 */
bool policy_grant_live(const struct policy_grant *grant, int64_t now);

/*
 * Does a refusal for `reason` mean "this agent matched and the secret is
 * its candidate, but it holds no live grant" - the refusals an operator
 * may answer with `shadm approve` (an access request)? Strangers, unknown
 * secrets and non-candidates never qualify.
 */
bool policy_reason_requestable(enum policy_reason reason);

/*
 * Is `path` a well-formed cgroup v2 path: absolute, components non-empty
 * and neither "." nor "..", no control characters, shorter than
 * POLICY_CGROUP_MAX (binding) or PATH_MAX (a process's path)? A binding
 * (as_binding) may end in '/' to name a subtree; a process's own path
 * never does, except the root "/". 0 or -EINVAL.
 */
int policy_cgroup_check(const char *path, bool as_binding) POLICY_WUR;
/* What to say after "invalid cgroup 'X': " when policy_cgroup_check refuses a binding. */
#define POLICY_CGROUP_HINT "use an absolute cgroup v2 path such as /system.slice/NAME.service," \
	" ending in / for the whole subtree, without empty, . or .. components"
/*
 * Does the process cgroup `cgroup` satisfy `binding`? "/a/b" matches
 * exactly "/a/b"; "/a/" matches "/a" and everything below it ("/a/b",
 * never "/ab"); "/" matches the root cgroup only. Byte comparison, no
 * normalisation: both sides must pass policy_cgroup_check.
 */
bool policy_cgroup_match(const char *binding, const char *cgroup);

/*
 * Is the executable at `path` an interpreter or a shell (python3.11,
 * node, bash, sh, perl, ruby, java, ...), judged by its file name? A
 * binding to one admits every script its uid runs with it.
 */
bool policy_exe_interpreter(const char *path);

/* Stable short name of a reason, as written in audit rows: "allow", "uid", ... */
const char *policy_reason_name(enum policy_reason reason);
/* One human-readable sentence for a reason ("caller uid does not match the agent"). */
const char *policy_reason_text(enum policy_reason reason);

/* ---- rate limits ---------------------------------------------------- */

/*
 * An agent's rate limit (`--rate N/DURATION`): at most max resolves in
 * any window of window_ms, counted as a sliding window over two fixed
 * ones - the previous window's count weighted by how much of it still
 * overlaps, plus the current one's. Exact while the previous window is
 * empty (a burst from idle gets exactly max), never more than max + the
 * rounding of one. The counters live with whoever counts (the mount, in
 * memory); this function only does the arithmetic.
 */
struct policy_rate {
	int64_t max;              /* resolves per window; 0 = no limit */
	int64_t window_ms;
	int64_t start_ms;         /* start of the current fixed window */
	int64_t cur, prev;        /* resolves counted in the current and previous window */
	bool refused;             /* a refusal was reported in the current window */
};

/*
 * Count one resolve at now_ms if the limit allows it: true (counted) or
 * false (refused, not counted). *first_refusal: set when this is the
 * first refusal since the current fixed window began (may be NULL).
 * Start from a zeroed struct with max and window_ms set.
 */
bool policy_rate_take(struct policy_rate *rate, int64_t now_ms, bool *first_refusal);

/* "100/1m": N (1..1000000000) per a duration (policy_duration_parse). 0 or -EINVAL. */
int policy_rate_parse(const char *s, int64_t *max, int64_t *window_seconds) POLICY_WUR;

/* ---- names, durations, dates ---------------------------------------- */

enum policy_name_kind {
	POLICY_NAME_WORKSPACE,
	POLICY_NAME_PROJECT,
	POLICY_NAME_PROVIDER,
	POLICY_NAME_SECRET,
	POLICY_NAME_AGENT,        /* additionally refuses the reserved name "self" */
};

/*
 * 0 if `name` is 1..128 characters of [A-Za-z0-9._-], not starting with
 * '.' or '-', (for agents) not "self"; -EINVAL otherwise.
 */
int policy_name_check(const char *name, enum policy_name_kind kind) POLICY_WUR;

/*
 * Split "PROVIDER/NAME" (allow_provider_only: also "PROVIDER", with name
 * set to ""). Both parts are checked with policy_name_check. provider and
 * name must hold POLICY_NAME_MAX + 1 bytes. 0 or -EINVAL.
 */
int policy_ref_parse(const char *ref, bool allow_provider_only,
		     char *provider, char *name) POLICY_WUR;

/* "30s", "15m", "2h", "7d" (a positive whole number and one unit) -> seconds. 0 or -EINVAL. */
int policy_duration_parse(const char *s, int64_t *seconds) POLICY_WUR;

/*
 * A point in time: a duration from `now` ("7d") or an ISO-8601 UTC date
 * ("2027-01-31", "2027-01-31T12:00:00Z", "2027-01-31T12:00:00"). 0 or -EINVAL.
 */
int policy_when_parse(const char *s, int64_t now, int64_t *when) POLICY_WUR;

/* Format unix seconds as "2027-01-31T12:00:00Z" into buf (>= 21 bytes). */
void policy_time_format(int64_t t, char *buf, size_t len);

/* ---- showing foreign strings (escape.c) ------------------------------------ */

/* Room policy_escape() may need for a string of n bytes: each byte grows to 4 at most. */
#define POLICY_ESCAPE_SIZE(n) (4 * (n) + 1)
/*
 * s as it is safe to show on a terminal, like snprintf into out (cap
 * bytes, always NUL-terminated when cap > 0): C0 controls and DEL as
 * \n \t \r or \xHH, C1 controls and bytes of invalid UTF-8 as \xHH,
 * bidirectional controls as \uHHHH, a backslash as \\; valid printable
 * UTF-8 unchanged. Returns the length of the whole escaped text (NULL
 * shows as ""), so a result >= cap means it was cut short.
 */
size_t policy_escape(const char *s, char *out, size_t cap);

#endif

/*
 * store.h - custody of ScopeHold: the configuration, the encrypted SQLite
 * store, its keys and its tamper-evident audit trail.
 *
 * One `struct store` is one open store: a SQLite connection in WAL mode,
 * the unwrapped keys in sodium_malloc memory, and the workspace in use.
 * All functions are safe to call from several threads on one handle (they
 * serialise on an internal lock); several processes may open one store at
 * once (shadm while scopeholdfs runs) and see each other's commits.
 *
 * Error convention: every function returns 0 on success or a negative
 * errno value, with results through out-parameters. After a failure,
 * store_error() holds one lowercase line that says what went wrong, fit
 * to print after "shadm: ". Errno values used:
 *   -ENOENT   unknown workspace/provider/secret/agent/project/grant, missing file
 *   -EEXIST   duplicate name, init over an existing key or store
 *   -EINVAL   malformed name, duration, value or config
 *   -EACCES   a key/store file group/other-accessible or not owned by us
 *   -EKEYREJECTED  this key does not open this store
 *   -EBADMSG  ciphertext or store failed an integrity check
 *   -EFBIG    value larger than the configured limit
 *   -ENOTEMPTY removing something still in use
 *   -EBUSY    destroying the current version of a secret
 *   -EIO      SQLite or I/O failure (including a full disk)
 *   -ENOMEM
 * Nothing is changed by a call that fails: every change is one transaction.
 *
 * Plaintext: values enter as (pointer, length) and leave in buffers from
 * sodium_malloc() that the caller frees with store_value_free(). They are
 * never written to the store, its WAL, audit rows or error messages.
 */
#ifndef SCOPEHOLD_STORE_H
#define SCOPEHOLD_STORE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy/policy.h"

#if defined(__GNUC__)
#define STORE_WUR __attribute__((warn_unused_result))
#else
#define STORE_WUR
#endif

#define STORE_DEFAULT_CONFIG "/etc/scopehold/scopehold.ini"
#define STORE_DEFAULT_WORKSPACE "default"
#define STORE_DEFAULT_MAX_VALUE (64 * 1024)
#define STORE_DEFAULT_MAX_OPEN_PER_UID 256
#define STORE_MAX_OPEN_PER_UID_LIMIT 65536   /* largest max_open_per_uid accepted */
/* [mount] max_exe_hash_bytes: a larger executable is refused, never hashed */
#define STORE_DEFAULT_MAX_EXE_HASH ((uint64_t)256 * 1024 * 1024)
#define STORE_KEY_BYTES 32
#define STORE_FINGERPRINT_BYTES 16

/* ---- configuration ---------------------------------------------------- */

enum store_cache_mode { STORE_CACHE_NONE = 0, STORE_CACHE_KERNEL = 1 };
enum store_durability {
	STORE_DURABLE_CRASH = 0,   /* event survives kill -9 (WAL, synchronous=NORMAL) */
	STORE_DURABLE_POWER = 1,   /* event survives power loss (fsync, group commit) */
};

struct store_config {
	char path[PATH_MAX];        /* the file this was read from ("" if none) */
	/* [store] */
	char store_path[PATH_MAX];  /* path = */
	char key_file[PATH_MAX];    /* key_file = */
	size_t max_value;           /* max_value_bytes = ; default 64 KiB */
	char backend[16];           /* backend = sqlite|postgresql; default sqlite */
	char conninfo[1024];        /* conninfo = libpq conninfo or URI, never a password */
	char state_dir[PATH_MAX];   /* state_dir = this host's files (postgresql); default /var/lib/scopehold */
	char host[256];             /* host = NAME; default the hostname */
	int64_t timeout_seconds;    /* timeout = DURATION: connect and answer bound (postgresql); default 2s */
	int64_t admin_timeout_seconds; /* admin_timeout = DURATION: shadm's answer bound; default 5m */
	bool migrate;               /* not from the file: this program may migrate the schema (shadm) */
	/* [mount] */
	char mountpoint[PATH_MAX];  /* mountpoint = */
	char workspace[POLICY_NAME_MAX + 1]; /* workspace = ; default "default" */
	enum store_cache_mode cache;         /* cache = none|kernel */
	size_t max_open_per_uid;             /* max_open_per_uid = N open values per uid; default 256 */
	uint64_t max_exe_hash_bytes;         /* max_exe_hash_bytes = ; default 256 MiB */
	/* [audit] */
	enum store_durability durability;    /* durability = crash|power */
	int64_t deny_coalesce_seconds;       /* coalesce_denials = DURATION; default 60s, 0 = off */
	int syslog_facility;                 /* syslog = FACILITY (a LOG_* value): forward every event; -1 = off */
	/* [requests] */
	int64_t request_keep_seconds;        /* keep = DURATION; default 24h */
	/* [alerts] */
	char alert_exec[PATH_MAX];           /* exec = PROGRAM (absolute); "" = no delivery */
	int64_t alert_timeout_seconds;       /* timeout = DURATION; default 5s */
	int64_t alert_deny_burst;            /* deny_burst = N refusals of one uid in a minute; default 20 */
};

/*
 * Fill cfg with defaults, then read the file: `path` if not NULL, else
 * $SCOPEHOLD_CONFIG, else STORE_DEFAULT_CONFIG. An unknown section or key,
 * or a bad value, is -EINVAL with a message naming the file and line.
 */
int store_config_load(const char *path, struct store_config *cfg) STORE_WUR;

/* What the store is, for messages: its file, or the database's conninfo. */
const char *store_where(const struct store_config *cfg);

/* The message of the last failure in this thread ("" if none). */
const char *store_error(void);

/*
 * trust.c: 0 when no directory on the way to path (each component of the
 * canonical path and the directory of each symlink followed; the last
 * component too when follow_last) is owned by anyone but root and the
 * effective uid or writable by anyone else, sticky directories of a
 * trusted owner excepted; else -EACCES (-ELOOP, -ENAMETOOLONG) with
 * "refusing 'PATH': directory 'DIR' is writable by ..." in store_error().
 * The key file, store, journal and configuration are checked with it
 * inside the store; the mount checks its alert program too.
 */
int store_check_path(const char *path, bool follow_last);
/*
 * As store_check_path(path, false), and the directory holding path must
 * be writable by no one else even when sticky: for the key file, store
 * and journal, beside which files are created (STORE-wal, -shm,
 * -audit.lock) that another user must not be able to create first.
 */
int store_check_home(const char *path);

/* ---- lifecycle --------------------------------------------------------- */

struct store;

/*
 * Create the root key file (O_EXCL, 0600, 32 random bytes) and the store
 * with the default workspace. Refuses (-EEXIST) to overwrite either; on
 * failure removes whatever it created. `actor` is recorded on the first
 * audit event, as for store_open().
 */
int store_init(const struct store_config *cfg, const char *actor) STORE_WUR;

/*
 * Open an existing store: checks that the key file and store are regular
 * files owned by the running user and not group/other-accessible (-EACCES),
 * that the key is 32 bytes and opens this store (-EKEYREJECTED), migrates
 * an older schema forward. Selects cfg->workspace (must exist, -ENOENT).
 * `actor` names who acts for audit rows made through this handle (shadm:
 * the operator's login name; scopeholdfs: "scopeholdfs").
 */
int store_open(const struct store_config *cfg, const char *actor,
	       struct store **out) STORE_WUR;
/*
 * 0 while the store's database answers; else since when (time()) it has
 * not: its server could not be reached within [store] timeout, or the
 * link broke, or it came back with a setting the store refuses. why
 * (may be NULL) gets the one line that began it, naming the server and
 * never a password. A file store is always 0. The next request retries
 * by itself, so this clears with no restart.
 */
int64_t store_unreachable(struct store *st, char *why, size_t cap);
void store_close(struct store *st);            /* NULL is a no-op */

/* Select another workspace for subsequent calls. */
int store_workspace_use(struct store *st, const char *name) STORE_WUR;
const char *store_workspace_current(const struct store *st);

void store_value_free(uint8_t *value, size_t len);  /* wipes and sodium_free()s; NULL ok */

/* ---- listing callbacks -------------------------------------------------
 * List functions call fn once per row in name order; a non-zero return
 * from fn stops the walk and is returned. Strings are valid during the
 * call only.
 */

struct store_workspace_row { const char *name; int64_t created; };
struct store_provider_row  { const char *name; int64_t created; int64_t secrets; };
struct store_project_row   { const char *name; int64_t created; int64_t agents; int64_t attachments; };
struct store_attachment_row {
	const char *project;
	const char *provider;
	const char *name;          /* "" when the whole provider is attached */
};
struct store_secret_row {
	const char *provider;
	const char *name;
	int64_t version;           /* current */
	int64_t versions;          /* how many versions exist */
	size_t length;             /* byte length of the current version */
	int64_t created;           /* of the current version */
	int64_t expires;           /* of the current version; 0 = never */
	bool canary;               /* marked as a honeytoken (store_secret_canary) */
};
struct store_agent_row {
	const char *name;
	bool human;
	bool enabled;
	uid_t uid;
	bool has_gid;
	gid_t gid;
	const char *exe;           /* NULL if unbound */
	bool has_exe_sha256;
	uint8_t exe_sha256[POLICY_SHA256_BYTES];
	const char *cgroup;        /* NULL if unbound; "/a/" binds the subtree (policy_cgroup_match) */
	int64_t created;
	int64_t rate_max;          /* --rate: resolves per rate_window seconds; 0 = none */
	int64_t rate_window;
};
struct store_grant_row {
	const char *agent;
	const char *provider;
	const char *name;
	int64_t created;
	int64_t expires;           /* 0 = never */
	int64_t max_uses;          /* 0 = unlimited */
	int64_t uses;              /* resolves counted against max_uses (not counted when unlimited) */
	int64_t revoked;           /* time of revocation; 0 = live */
	int64_t pid;               /* --while-pid: the process it lives with; 0 = none */
	bool task_ended;           /* pid != 0 and that process has ended */
	/*
	 * What an open by the agent would get now (policy_decide_agent over
	 * the mount's facts, caller process facts aside): POLICY_ALLOW when
	 * the grant is effective - live, a candidate, the agent enabled and
	 * the version unexpired - else the first rule that fails.
	 */
	enum policy_reason effective;
};
/* One candidate secret of an agent, as the mount lists it. */
struct store_candidate_row {
	const char *provider;
	const char *name;
	int64_t version;
	size_t length;
	int64_t created;           /* of the current version */
	bool granted;              /* a live grant exists and the version is unexpired */
};

typedef int (*store_workspace_fn)(void *ctx, const struct store_workspace_row *row);
typedef int (*store_provider_fn)(void *ctx, const struct store_provider_row *row);
typedef int (*store_project_fn)(void *ctx, const struct store_project_row *row);
typedef int (*store_attachment_fn)(void *ctx, const struct store_attachment_row *row);
typedef int (*store_secret_fn)(void *ctx, const struct store_secret_row *row);
typedef int (*store_agent_fn)(void *ctx, const struct store_agent_row *row);
typedef int (*store_grant_fn)(void *ctx, const struct store_grant_row *row);
typedef int (*store_candidate_fn)(void *ctx, const struct store_candidate_row *row);

/* ---- workspaces (global) ----------------------------------------------- */
int store_workspace_add(struct store *st, const char *name) STORE_WUR;
/* Refuses "default", the workspace in use, and non-empty workspaces (-ENOTEMPTY). */
int store_workspace_rm(struct store *st, const char *name) STORE_WUR;
int store_workspace_list(struct store *st, store_workspace_fn fn, void *ctx) STORE_WUR;

/* ---- everything below acts in the selected workspace -------------------- */

int store_provider_add(struct store *st, const char *name) STORE_WUR;
/* Refuses a provider that still holds secrets (-ENOTEMPTY). */
int store_provider_rm(struct store *st, const char *name) STORE_WUR;
int store_provider_list(struct store *st, store_provider_fn fn, void *ctx) STORE_WUR;

int store_project_add(struct store *st, const char *name) STORE_WUR;
int store_project_rm(struct store *st, const char *name) STORE_WUR;   /* drops its attachments and assignments */
int store_project_list(struct store *st, store_project_fn fn, void *ctx) STORE_WUR;
/* name NULL or "": attach/detach the whole provider. */
int store_project_attach(struct store *st, const char *project, const char *provider,
			 const char *name) STORE_WUR;
int store_project_detach(struct store *st, const char *project, const char *provider,
			 const char *name) STORE_WUR;
/* project NULL: all projects. */
int store_attachment_list(struct store *st, const char *project,
			  store_attachment_fn fn, void *ctx) STORE_WUR;

/*
 * When a new version stops being served. KEEP: a new secret never
 * expires; a rotation keeps the current version's policy - a duration
 * (TTL) starts again from now, a date stays that date (-EINVAL when the
 * date has passed: a rotation must not make a value born expired).
 * NEVER; AT: value = unix seconds; TTL: value = seconds from now, and
 * later KEEP rotations restart it.
 */
enum store_expiry_kind {
	STORE_EXPIRY_KEEP = 0,
	STORE_EXPIRY_NEVER,
	STORE_EXPIRY_AT,
	STORE_EXPIRY_TTL,
};
struct store_expiry {
	enum store_expiry_kind kind;
	int64_t value;
};
/*
 * Add a version to PROVIDER/NAME (creating the secret at version 1, a
 * rotation after). The provider must exist. exp NULL is KEEP. len may be
 * 0; len > cfg max_value is -EFBIG. Audited as `create` or `rotate`.
 * *expires_out (may be NULL): the new version's expiry, 0 = never.
 */
int store_secret_set_with(struct store *st, const char *provider, const char *name,
			  const uint8_t *value, size_t len, const struct store_expiry *exp,
			  int64_t *version_out, int64_t *expires_out) STORE_WUR;
/* The same with expires: unix seconds (AT, a past time allowed), 0 = KEEP. */
int store_secret_set(struct store *st, const char *provider, const char *name,
		     const uint8_t *value, size_t len, int64_t expires,
		     int64_t *version_out) STORE_WUR;
/* provider NULL: every provider. */
int store_secret_list(struct store *st, const char *provider,
		      store_secret_fn fn, void *ctx) STORE_WUR;
/*
 * Decrypt version `version` (0 = current) into *value (sodium_malloc,
 * free with store_value_free). Audited as `reveal` before the value is
 * returned; if the audit cannot be written, nothing is returned.
 */
int store_secret_reveal(struct store *st, const char *provider, const char *name,
			int64_t version, uint8_t **value, size_t *len) STORE_WUR;
int store_secret_rm(struct store *st, const char *provider, const char *name) STORE_WUR;

/* One version of a secret (store_secret_versions), oldest first. */
struct store_version_row {
	int64_t version;
	size_t length;
	int64_t created;
	int64_t expires;           /* 0 = never */
	int64_t ttl;               /* the duration it was set with; 0 = a date or never */
	int64_t destroyed;         /* when its ciphertext was wiped; 0 = intact */
	bool current;              /* the version the mount serves */
};
typedef int (*store_version_fn)(void *ctx, const struct store_version_row *row);
int store_secret_versions(struct store *st, const char *provider, const char *name,
			  store_version_fn fn, void *ctx) STORE_WUR;
/*
 * Make a new current version holding the value of `version` (decrypted
 * into sodium_malloc memory only, sealed again, wiped), with the expiry
 * policy kept as for a rotation. Refuses the current version (-EINVAL)
 * and a destroyed one (-ENOENT). Audited as `rollback` (version: the new
 * one, reason "value of version N", the value's fingerprint).
 */
int store_secret_rollback(struct store *st, const char *provider, const char *name,
			  int64_t version, int64_t *version_out) STORE_WUR;
/*
 * Wipe the ciphertext of an old version for good: overwritten with
 * zeros, then emptied (secure_delete zeroes freed space), the WAL
 * checkpointed and truncated when no reader holds it; its row (number,
 * length, dates) stays. Refuses the current version (-EBUSY); reading a
 * destroyed version is -ENOENT "version N of 'P/N' was destroyed at T".
 * Audited as `destroy`.
 */
int store_secret_destroy(struct store *st, const char *provider, const char *name,
			 int64_t version) STORE_WUR;

/*
 * What removing an object would take with it (for a confirmation):
 * grants still live (not revoked, expired or used up), assignments of
 * agents to projects, attachments of secrets to projects. For a secret
 * (name "PROVIDER/NAME"), agent, project or provider; -ENOENT if unknown.
 */
struct store_drops {
	int64_t grants;
	int64_t assignments;
	int64_t attachments;
};
enum store_object { STORE_OBJ_SECRET, STORE_OBJ_AGENT, STORE_OBJ_PROJECT, STORE_OBJ_PROVIDER };
int store_rm_drops(struct store *st, enum store_object kind, const char *name,
		   struct store_drops *out) STORE_WUR;
/*
 * Mark PROVIDER/NAME as a canary (a honeytoken) or clear the mark. A
 * canary is attached, granted and served like any other secret and looks
 * the same through the mount, but every open of it through the mount,
 * served or refused, raises an `alert` (store_alert_raise). Audited as
 * `canary` with reason on/off.
 */
int store_secret_canary(struct store *st, const char *provider, const char *name,
			bool on) STORE_WUR;

/* row.name, row.uid required; created is ignored. */
int store_agent_add(struct store *st, const struct store_agent_row *agent) STORE_WUR;
int store_agent_rm(struct store *st, const char *name) STORE_WUR;
int store_agent_enable(struct store *st, const char *name, bool enabled) STORE_WUR;
/*
 * Limit the agent to max resolves per window seconds through the mount
 * (max 0: no limit). The mount counts in memory, per daemon run; a
 * refusal is EACCES with reason rate-limit. Audited as `agent-rate`.
 */
int store_agent_rate(struct store *st, const char *name, int64_t max, int64_t window) STORE_WUR;
/*
 * Change the bindings of an existing agent in place (`shadm agent set`):
 * each set_* flag says the field is changed - to the value given, or
 * cleared when the value is NULL / its has_* flag false. Grants,
 * assignments and the rate limit stay. The mount obeys the change from
 * its next request. Audited as one `agent-set` event whose reason lists
 * the changed fields with their new values ("uid=1001 exe=- cgroup=/a/").
 */
struct store_agent_change {
	bool set_uid;
	uid_t uid;
	bool set_gid, has_gid;
	gid_t gid;
	bool set_exe;
	const char *exe;           /* absolute, or NULL to unbind */
	bool set_exe_sha256, has_exe_sha256;
	uint8_t exe_sha256[POLICY_SHA256_BYTES];
	bool set_cgroup;
	const char *cgroup;        /* policy_cgroup_check as a binding, or NULL to unbind */
	bool set_human, human;
};
int store_agent_set(struct store *st, const char *name,
		    const struct store_agent_change *change) STORE_WUR;
int store_agent_list(struct store *st, store_agent_fn fn, void *ctx) STORE_WUR;
/* Calls fn once for the named agent; -ENOENT if unknown. */
int store_agent_get(struct store *st, const char *name, store_agent_fn fn, void *ctx) STORE_WUR;

int store_assign(struct store *st, const char *agent, const char *project) STORE_WUR;
int store_unassign(struct store *st, const char *agent, const char *project) STORE_WUR;
/* agent NULL: assignments of every agent; calls fn(ctx, agent, project). */
int store_assignment_list(struct store *st, const char *agent,
			  int (*fn)(void *ctx, const char *agent, const char *project),
			  void *ctx) STORE_WUR;

/*
 * Grant AGENT the secret PROVIDER/NAME. ttl: seconds from now, 0 = none;
 * uses: 0 = unlimited. Granting again replaces the previous grant (fresh
 * ttl and use count). The secret need not be a candidate yet.
 */
int store_grant(struct store *st, const char *agent, const char *provider,
		const char *name, int64_t ttl, int64_t uses) STORE_WUR;
/* The limits of a grant (store_grant_with); zero fields mean "none". */
struct store_grant_opts {
	int64_t ttl;               /* seconds from now */
	int64_t uses;              /* resolves allowed */
	pid_t pid;                 /* live only while this process lives; 0 = always */
	uint64_t pid_start;        /* its start time (store_task_start), pinning the pid */
	int64_t expires;           /* with ttl 0: an absolute end in unix seconds (shadm apply) */
};
int store_grant_with(struct store *st, const char *agent, const char *provider,
		     const char *name, const struct store_grant_opts *opts) STORE_WUR;
/*
 * Task-scoped grants. store_task_start: the start time of process PID
 * (field 22 of /proc/PID/stat, clock ticks since boot): with the pid it
 * names one process for good, so a reused pid never matches. -ESRCH when
 * there is no such live process (a zombie has ended). store_task_alive:
 * is that process still running? One read of /proc/PID/stat.
 */
int store_task_start(pid_t pid, uint64_t *start) STORE_WUR;
bool store_task_alive(pid_t pid, uint64_t start);
/*
 * Delete every task-scoped grant whose process has ended, each audited as
 * `sweep` with reason task-ended. The mount runs it every few seconds.
 * *swept (may be NULL): how many.
 */
int store_task_sweep(struct store *st, int64_t *swept) STORE_WUR;
/* -ENOENT if there is no live grant. */
int store_revoke(struct store *st, const char *agent, const char *provider,
		 const char *name) STORE_WUR;
/* agent NULL: every agent. Includes revoked and expired grants. */
int store_grant_list(struct store *st, const char *agent, store_grant_fn fn, void *ctx) STORE_WUR;

/*
 * Who can read PROVIDER/NAME: fn once per agent of the workspace, in name
 * order, with the facts an open by that agent would be decided on and
 * policy_decide_agent()'s answer - the mount's own facts and rules, with
 * the caller's process facts aside (and the in-memory --rate, which only
 * the mount counts). policy_reason_visible(reason): the agent sees it in
 * its directory; POLICY_ALLOW: it can resolve it now. One snapshot.
 * -ENOENT when there is no such secret.
 */
struct store_access_row {
	const char *agent;
	bool human;
	const struct policy_facts *facts;
	enum policy_reason reason;
};
typedef int (*store_access_fn)(void *ctx, const struct store_access_row *row);
int store_access_list(struct store *st, const char *provider, const char *name,
		      store_access_fn fn, void *ctx) STORE_WUR;

/* ---- access requests ---------------------------------------------------------
 * A matched agent refused a candidate for want of a live grant
 * (policy_reason_requestable) leaves a pending request for (agent,
 * secret). The mount counts them in memory with the denials and writes
 * them with store_deny_flush(); a request not seen for [requests] keep
 * expires.
 */
struct store_request_row {
	const char *agent;
	const char *provider;
	const char *name;
	const char *state;         /* pending approved rejected expired */
	int64_t first, last;       /* first and last refusal of this run */
	int64_t count;             /* refusals counted */
	int64_t uid, gid, pid;     /* the last caller's (pid -1 when not established) */
	const char *exe;           /* "" when not established */
	int64_t decided;           /* time of approve/reject, 0 if pending */
	const char *actor;         /* who decided, "" if pending */
};
typedef int (*store_request_fn)(void *ctx, const struct store_request_row *row);
/* all: decided and expired requests too; else pending ones. Oldest first. */
int store_request_list(struct store *st, bool all, store_request_fn fn, void *ctx) STORE_WUR;
/*
 * Close the pending request of AGENT for PROVIDER/NAME: approve grants
 * it with opts (as store_grant_with) in the same transaction; audited as
 * `approve` or `reject`. -ENOENT when no unexpired request is pending.
 */
int store_request_decide(struct store *st, const char *agent, const char *provider,
			 const char *name, bool approve,
			 const struct store_grant_opts *opts) STORE_WUR;

/* ---- what the mount and `shadm check` ask ------------------------------ */

/*
 * The facts policy_decide() needs for AGENT and PROVIDER/NAME, read in one
 * transaction. A missing agent or secret is not an error: it shows as
 * exists=false. Strings inside (agent.exe, agent.cgroup) point into `f` itself.
 */
struct store_facts {
	struct policy_facts p;
	char agent_name[POLICY_NAME_MAX + 1];
	char provider[POLICY_NAME_MAX + 1];
	char name[POLICY_NAME_MAX + 1];
	char exe[PATH_MAX];
	char cgroup[POLICY_CGROUP_MAX];
	int64_t agent_id, secret_id, grant_id, version_id;  /* 0 when absent */
	uint64_t grant_pid_start;  /* with p.grant.pid: the process's start time */
	bool rate_first_refusal;   /* store_resolve: refused for rate-limit, the first in its window */
};
int store_facts_load(struct store *st, const char *agent, const char *provider,
		     const char *name, struct store_facts *f) STORE_WUR;

/* Enabled agents of the workspace (the mount's top level). */
int store_agent_list_enabled(struct store *st, store_agent_fn fn, void *ctx) STORE_WUR;
/* Candidate secrets of AGENT, provider NULL for all, in (provider, name) order. */
int store_candidate_list(struct store *st, const char *agent, const char *provider,
			 store_candidate_fn fn, void *ctx) STORE_WUR;
/*
 * Providers holding at least one candidate of AGENT, in name order
 * (row.secrets is not filled). Cost grows with the agent's attachments,
 * not with the number of secrets.
 */
int store_candidate_providers(struct store *st, const char *agent,
			      store_provider_fn fn, void *ctx) STORE_WUR;
/* 0 if PROVIDER holds a candidate of AGENT, else -ENOENT. */
int store_candidate_provider(struct store *st, const char *agent,
			     const char *provider) STORE_WUR;
/* One candidate; -ENOENT if PROVIDER/NAME is not a candidate of AGENT. */
int store_candidate_get(struct store *st, const char *agent, const char *provider,
			const char *name, store_candidate_fn fn, void *ctx) STORE_WUR;

/*
 * The mount starts serving this store through this handle: it takes the
 * audit journal (STORE-audit; -EBUSY when another scopeholdfs holds it),
 * moves what a previous run left in it into the trail, starts a new
 * journal generation and turns on the read cache. *dropped: bytes of a
 * record cut short by a crash, discarded. Until store_close(), resolves
 * record their events in the journal (see store_resolve).
 */
int store_serve(struct store *st, uint64_t *dropped) STORE_WUR;
bool store_journal_serving(struct store *st);
/*
 * Move the journal's pending events into the hash-chained trail now
 * (every write to the store does this first, so order is kept), and
 * start a new journal generation once the file is large and imported.
 * The mount calls it a few times a second; `shadm audit` before reading.
 */
int store_journal_import(struct store *st) STORE_WUR;
int store_journal_tick(struct store *st) STORE_WUR;

/*
 * An open: f names the agent and PROVIDER/NAME (agent_name, provider,
 * name; the rest is filled in). It loads the facts into f, decides with
 * policy_decide(), and when allowed decrypts the current version and
 * records a `resolve` event with the caller's facts and the value's
 * fingerprint before returning it. On a serving handle (store_serve) the
 * event is appended to the audit journal (fsynced with durability =
 * power) and facts come from the read cache; a grant with a use limit is
 * counted and recorded in one write transaction - all or nothing. A refusal is -EACCES with *reason_out saying why (the
 * caller records the denial: store_deny); a ciphertext that fails
 * authentication records a `deny` event with reason "integrity" and
 * returns -EBADMSG. If the event cannot be recorded, returns -EIO and no
 * value. On success *value is sodium_malloc memory the caller frees with
 * store_value_free(). Concurrent resolves on one handle share commits.
 * The access controls act here too: a task-scoped grant reads
 * /proc/PID/stat, an agent's --rate is counted in memory (refusal:
 * POLICY_RATE_LIMIT), and an open of a canary, a first resolve from a new
 * executable digest or the first refusal of a rate window raises an
 * alert (store_alert_raise; a served value whose alert cannot be recorded
 * is not served).
 */
int store_resolve(struct store *st, struct store_facts *f,
		  const struct policy_caller *caller,
		  uint8_t **value, size_t *len,
		  enum policy_reason *reason_out) STORE_WUR;
/*
 * store_resolve without waiting for durability = power's fdatasync: the
 * event is written (it survives kill -9) and *ticket names it; no byte of
 * *value may leave the process before store_resolve_sync(ticket)
 * returned 0. The mount syncs when the value is first read, so the sync
 * overlaps the kernel's round trip from open to read and concurrent
 * opens share it. ticket 0 needs no sync.
 */
int store_resolve_deferred(struct store *st, struct store_facts *f,
			   const struct policy_caller *caller,
			   uint8_t **value, size_t *len, enum policy_reason *reason_out,
			   uint64_t *ticket) STORE_WUR;
int store_resolve_sync(struct store *st, uint64_t ticket) STORE_WUR;

/*
 * A refused open: record a `deny` event. Identical denials (same agent,
 * secret, version, uid, gid, pid, exe and reason: everything the row
 * shows) within deny_coalesce_seconds are counted in memory and written
 * as one event with a count, so a hostile loop cannot flood the trail.
 * Past 8 distinct processes of one uid in a window, its further
 * processes share one row per target and reason with pid -1 and exe "*",
 * so a uid spawning a process per attempt cannot flood it either.
 * agent/provider/name may be NULL or "".
 */
int store_deny(struct store *st, const char *agent, const char *provider,
	       const char *name, int64_t version,
	       const struct policy_caller *caller, enum policy_reason reason) STORE_WUR;
/*
 * Write out every pending coalesced denial now. store_deny() also flushes
 * on its own once the oldest pending one is older than the window, and
 * store_close() flushes; the daemon calls this about once a second so a
 * count is never held back long.
 */
int store_deny_flush(struct store *st) STORE_WUR;

/* ---- audit ----------------------------------------------------------------- */

struct store_event {
	int64_t seq;
	int64_t time;              /* unix seconds, UTC */
	const char *type;          /* create rotate rm reveal resolve deny grant revoke ... */
	const char *workspace;
	const char *actor;         /* operator login or "scopeholdfs" */
	const char *agent;         /* "" if none */
	const char *secret;        /* "PROVIDER/NAME" or other object name, "" if none */
	int64_t version;           /* 0 if none */
	int64_t uid, gid, pid;     /* -1 if unknown */
	const char *exe;           /* "" if unknown */
	const char *cgroup;        /* the caller's cgroup v2 path; "" if unknown */
	const char *host;          /* [store] host of the writer on a shared database; "" otherwise */
	const char *reason;        /* "" if none */
	bool has_fingerprint;
	uint8_t fingerprint[STORE_FINGERPRINT_BYTES]; /* keyed hash of the value delivered */
	int64_t count;             /* >1 for coalesced denials */
};
typedef int (*store_event_fn)(void *ctx, const struct store_event *ev);

struct store_audit_filter {
	const char *agent;         /* NULL: any */
	const char *secret;        /* "PROVIDER/NAME" or NULL */
	const char *type;          /* NULL: any */
	int64_t since;             /* unix seconds; 0: any */
	int64_t until;             /* unix seconds, events before it; 0: any */
	int64_t after;             /* events with seq > after; 0: any */
	int64_t limit;             /* newest N, 0: no limit */
	const char *host;          /* events of this host only ([store] host); NULL: any */
	bool all_workspaces;       /* false: the selected workspace only */
};
/*
 * Is `type` an event type the store writes? (`shadm audit --event`
 * refuses others.) Every type given to store_event_init/store_note must
 * be in the table in audit.c; tests/cli.sh checks the sources for it.
 */
bool store_audit_type_known(const char *type);
/* The known types, NULL-terminated, for help texts. */
const char *const *store_audit_types(void);

/* Matching events, oldest first (the newest `limit` of them). */
int store_audit_query(struct store *st, const struct store_audit_filter *filter,
		      store_event_fn fn, void *ctx) STORE_WUR;

struct store_audit_report {
	int64_t events;            /* events checked */
	int64_t first_bad;         /* seq of the first bad event, 0 if intact */
	char problem[256];         /* what is wrong with it ("altered", "missing", "out of order") */
	uint8_t head[32];          /* chain head hash after the last event */
};
/*
 * Walk the whole chain. Returns 0 with first_bad = 0 when intact, 0 with
 * first_bad set when it is not (the report says where), <0 on error.
 */
int store_audit_verify(struct store *st, struct store_audit_report *rep) STORE_WUR;

/* Record an operator change made outside the helpers above (rare). */
int store_audit_record(struct store *st, const char *type, const char *agent,
		       const char *secret, int64_t version, const char *reason) STORE_WUR;

/* ---- alerts ------------------------------------------------------------------
 * An alert is an `alert` event in the trail (reason "TYPE: DECISION") and,
 * when the daemon installed a hook, a call of that hook to deliver it.
 * Types: canary (an open of a canary), new-exe (an agent's first resolve
 * from an executable digest it never resolved from), rate-limit (the
 * first refusal of a rate window), deny-burst (many refusals of one
 * caller within a minute).
 */
struct store_alert {
	const char *type;
	int64_t time;
	const char *agent;         /* "" if none */
	const char *secret;        /* "PROVIDER/NAME" or "" */
	int64_t version;           /* 0 if none */
	int64_t uid, gid, pid;     /* -1 if unknown */
	const char *exe;           /* "" if unknown */
	bool has_sha256;
	uint8_t sha256[POLICY_SHA256_BYTES];
	const char *reason;        /* the decision it came with: "allow" or a refusal's reason */
};
/* Called after the event is recorded; must not block (queue and return). */
typedef void (*store_alert_fn)(void *ctx, const struct store_alert *alert);
void store_alert_hook(struct store *st, store_alert_fn fn, void *ctx);
/*
 * Record one alert (time, workspace filled in here) - in the journal on
 * a serving handle, else in its own transaction - then hand it to the
 * hook. -EIO when it could not be recorded.
 */
int store_alert_raise(struct store *st, const struct store_alert *alert) STORE_WUR;
/*
 * Write what the controls keep in memory for later (the executables each
 * agent resolved from, for new-exe alerts). The mount calls it about once
 * a second; store_close() too.
 */
int store_controls_flush(struct store *st) STORE_WUR;

/* ---- bulk loading and statistics -------------------------------------------- */

/*
 * Group every change made through this handle until store_batch_end()
 * into one transaction (each change becomes a savepoint, so a failed one
 * still changes nothing). For bulk loads: a million secrets in one
 * commit instead of a million. rc != 0 rolls the whole batch back.
 */
int store_batch_begin(struct store *st) STORE_WUR;
int store_batch_end(struct store *st, int rc) STORE_WUR;

struct store_stats {
	uint64_t resolves;         /* values handed out by store_resolve */
	uint64_t commits;          /* write transactions committed */
	uint64_t syncs;            /* fdatasync calls of the group commit (durability = power) */
	uint64_t cache_drops;      /* times the mount's read cache was emptied (a commit, a clear) */
};
void store_stats_get(struct store *st, struct store_stats *out);

/* ---- keys ------------------------------------------------------------------ */

/*
 * Start a new data key for new versions; rewrap: re-encrypt every version
 * under it too. Audited as `key-rotate`. *key_id_out: the new key's id.
 */
int store_key_rotate(struct store *st, bool rewrap, int64_t *key_id_out,
		     int64_t *rewrapped_out) STORE_WUR;
/*
 * Replace the root key: use the key at new_key_file (created, O_EXCL
 * 0600, when it does not exist), re-wrap every key in one transaction,
 * then rename new_key_file over cfg->key_file. Audited as `key-rekey`.
 */
int store_key_rekey(struct store *st, const char *new_key_file) STORE_WUR;

#endif

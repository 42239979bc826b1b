/*
 * fs.h - scopeholdfs, the FUSE mount that shows each agent its granted
 * secrets as read-only files MOUNT/AGENT/PROVIDER/NAME.
 *
 * The module is split by job: main.c sets up and tears down the process
 * and the mount, ops.c holds the low-level FUSE callbacks (they map the
 * node id to a path, take the caller from the request and delegate),
 * node.c is the table of node ids the kernel holds, caller.c establishes
 * what the kernel tells us about the calling process, resolve.c
 * orchestrates every answer from the store's facts and the policy's
 * decision, and notify.c tells a service manager when the mount serves.
 * Only main.c and ops.c see FUSE types beyond this header.
 *
 * Error convention: 0 or -errno, results through out-parameters; the
 * -errno values are exactly what the FUSE callbacks hand to the kernel.
 */
#ifndef SCOPEHOLD_FS_H
#define SCOPEHOLD_FS_H

#define FUSE_USE_VERSION 35

#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "policy/policy.h"
#include "store/store.h"

#define FS_PROGRAM "scopeholdfs"
#define FS_VERSION "0.1.0"
#define FS_ACTOR "scopeholdfs"
#define FS_SELF "self"

/* The daemon's state, reached from every callback through the FUSE context. */
struct fs_ctx {
	struct store *st;            /* one handle; the store serialises internally */
	struct store_config cfg;
	bool debug;                  /* -d: one line per request on stderr */
	time_t started;              /* times of the synthetic top directory */
	struct fuse_session *se;     /* for page-cache invalidation from the housekeeper */
};

/*
 * How long the kernel may keep a name (not its attributes) before asking
 * again: see the comment on entry timeouts in ops.c and scopeholdfs(1).
 */
#define FS_ENTRY_TIMEOUT 1.0

/*
 * Ask the housekeeping thread to drop the kernel's cached pages of a
 * secret file that was just closed (a MAP_PRIVATE mapping reads through
 * the page cache even with direct I/O). Notifications are never sent
 * from inside a request: the kernel may hold locks that request needs.
 */
void fs_invalidate_later(uint64_t ino);

/* ---- caller.c: who is asking ---------------------------------------- */

/*
 * The process behind one request. Filled in two steps because most
 * requests never need more than the uid: fs_caller_from_request() takes
 * uid/gid/thread id from the FUSE context (cheap), fs_caller_establish()
 * maps the thread to its process and reads its executable, and guards
 * against the process exiting or its pid being reused meanwhile.
 */
struct fs_caller {
	struct policy_caller pc;     /* pc.exe, pc.cgroup point into exe, cgroup below */
	pid_t tid;                   /* as the kernel sent it: a thread id */
	bool established;
	bool hashed;                 /* pc.exe_sha256 was asked for */
	bool verified;               /* pc.exe_verified was asked for */
	bool cgrouped;               /* pc.cgroup was asked for */
	const char *unverified;      /* why pc.exe_verified is false, for -d */
	/* last: fs_caller_from_request clears only what comes before them */
	char exe[PATH_MAX];
	char cgroup[PATH_MAX];
};

/*
 * Once, before serving: the largest executable hashed ([mount]
 * max_exe_hash_bytes; 0 keeps the default) and the daemon's own user
 * namespace, which callers of exe-bound agents must share. -errno when
 * that namespace cannot be read (every such caller is then refused).
 */
int fs_caller_init(uint64_t max_exe_hash_bytes);

/* At exit: close the pidfds kept for the next request of each thread. */
void fs_caller_pins_free(void);

void fs_caller_from_request(struct fs_caller *c, const struct fuse_ctx *fc);
/*
 * Establish pid (the thread group id), exe path, when want_cgroup the
 * cgroup v2 path (NULL when not asked for, or when the process has none
 * this daemon can name) and, when want_hash, the sha256 of the
 * executable the process runs. On any doubt pc.known stays false, which
 * the policy denies as caller-unknown. Calling it again only adds what
 * was not asked for yet. The cgroup costs four system calls, so it is
 * asked for only where an agent bound to a cgroup is concerned: the
 * audit records it there, and leaves it out elsewhere.
 */
void fs_caller_establish(struct fs_caller *c, bool want_hash, bool want_cgroup);
/*
 * The same, plus pc.exe_verified: what an agent bound to an executable
 * needs (the process runs that program; see exe_verify in caller.c). Only
 * for callers whose uid and gid can match the agent (policy_match_ids):
 * it reads several /proc files and may hash.
 */
void fs_caller_establish_exe(struct fs_caller *c, bool want_hash, bool want_cgroup);
/*
 * Only the credentials the kernel sent (uid, gid), marked known without
 * establishing the process: enough to match an agent bound to no
 * executable when listing or stat-ing, never used for an open.
 */
void fs_caller_credentials(struct fs_caller *c);

/* ---- resolve.c: every answer of the mount --------------------------- */

enum fs_node {
	FS_NODE_ROOT,                /* "/" */
	FS_NODE_SELF,                /* "/self" */
	FS_NODE_AGENT,               /* "/AGENT" */
	FS_NODE_PROVIDER,            /* "/AGENT/PROVIDER" */
	FS_NODE_SECRET,              /* "/AGENT/PROVIDER/NAME" */
};

struct fs_path {
	enum fs_node node;
	char agent[POLICY_NAME_MAX + 1];
	char provider[POLICY_NAME_MAX + 1];
	char name[POLICY_NAME_MAX + 1];
};

/* Split a mount-relative path; -ENOENT for anything that cannot exist. */
int fs_path_parse(const char *path, struct fs_path *p);
/* The path of entry `name` in directory `parent`; -ENOENT if it cannot exist. */
int fs_path_child(const struct fs_path *parent, const char *name, struct fs_path *child);
/* "/AGENT/PROVIDER/NAME" for logs. */
void fs_path_format(const struct fs_path *p, char *buf, size_t size);
#define FS_PATH_TEXT (3 * (POLICY_NAME_MAX + 1) + 8)

/* ---- node.c: the node ids the kernel holds ------------------------------ */

/*
 * The node id of path p for a LOOKUP reply, counting one lookup; *number
 * is its inode number. -ENOMEM when no node can be made.
 */
int fs_node_ref(const struct fs_path *p, uint64_t *ino, uint64_t *number);
/* The path (and inode number) of a node id the kernel sent. */
int fs_node_path(uint64_t ino, struct fs_path *p, uint64_t *number);
/* The kernel forgot nlookup lookups of ino; the node goes at zero. */
void fs_node_forget(uint64_t ino, uint64_t nlookup);
/*
 * cache = kernel: true when the page cache of ino was filled from this
 * very version and length, so the kernel may keep it; records them.
 */
bool fs_node_cache_valid(uint64_t ino, int64_t version, size_t len);
size_t fs_node_count(void);
void fs_node_free_all(void);

/* One request in flight: what -d logs when it ends. */
struct fs_req {
	struct fs_ctx *ctx;
	struct fs_caller caller;
	const char *op;
	const char *path;            /* for -d, "" when not logging */
	const struct fs_path *fp;    /* the path itself, for error logs */
	const char *why;             /* decision detail for -d ("allow", "uid", ...) */
};

void fs_req_begin(struct fs_req *rq, struct fs_ctx *ctx, const struct fuse_ctx *fc,
		  const char *op, const char *path);
/* Log the request under -d and return rc unchanged. */
int fs_req_end(struct fs_req *rq, int rc);

/* A decrypted value tied to one open file; lives in sodium_malloc memory. */
struct fs_value {
	uint8_t *data;
	size_t len;
	uint64_t ticket;              /* the resolve event; read syncs it first (durability = power) */
	int64_t version;              /* of the secret the value belongs to */
	uid_t uid;                    /* of the opener: counted against max_open_per_uid */
	_Atomic bool synced;
	struct fs_value *prev, *next; /* every live value, so shutdown wipes them */
};

typedef int (*fs_fill_fn)(void *arg, const char *name, mode_t type);

int fs_resolve_getattr(struct fs_req *rq, const struct fs_path *p, struct stat *sb);
int fs_resolve_readdir(struct fs_req *rq, const struct fs_path *p, fs_fill_fn fn, void *arg);
/* Target of /self: the one enabled agent the caller matches. */
int fs_resolve_self(struct fs_req *rq, char *buf, size_t size);
/* access(2)/chdir and opendir: mask of R_OK/W_OK/X_OK (F_OK = 0). */
int fs_resolve_access(struct fs_req *rq, const struct fs_path *p, int mask);
/*
 * Decide, audit and decrypt one read-only open of a secret. A uid that
 * already holds [mount] max_open_per_uid values gets -EMFILE (a `deny`
 * with reason too-many-open) before anything is decided or decrypted.
 */
int fs_resolve_open(struct fs_req *rq, const struct fs_path *p, struct fs_value **out);
void fs_value_release(struct fs_value *v);
/* Make the value's resolve event durable (durability = power); 0 or -EIO. */
int fs_value_sync(struct store *st, struct fs_value *v);
/* Wipe every value still held (files left open at unmount). */
void fs_value_release_all(void);
/* Free the directory listings still open at exit (no releasedir comes for them). */
void fs_listing_release_all(void);

/* Report a failure to stderr and syslog: "scopeholdfs: <msg>". */
void fs_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Is the store's database unreachable: logs the start and end of an outage once each. */
bool fs_outage_check(struct store *st);

/* ---- notify.c: the service manager ---------------------------------- */

/*
 * Send STATE ("READY=1", "STOPPING=1", "STATUS=...") to the service
 * manager named by $NOTIFY_SOCKET, as systemd's sd_notify(3) protocol
 * describes. 0 when sent or when $NOTIFY_SOCKET is unset (not run by a
 * service manager); -errno otherwise.
 */
int fs_notify(const char *state) __attribute__((warn_unused_result));

/*
 * When $NOTIFY_SOCKET is set: start a detached thread that waits until
 * MOUNTPOINT is answered by this daemon (a stat and a statfs through the
 * mount, which block until the request loop runs) and then sends READY=1.
 * Call after the mount and before the request loop. 0, or -errno when the
 * thread cannot start.
 */
int fs_notify_ready_when_serving(const char *mountpoint) __attribute__((warn_unused_result));

/* ---- controls.c: housekeeping of the access controls ------------------ */

/*
 * From the flusher thread, about once a second: writes the executable
 * digests agents resolved from (new-exe alerts) and, every 2 s, sweeps
 * task grants whose process ended.
 */
void fs_controls_tick(struct store *st);

/* ---- alert.c: delivery of alerts to [alerts] exec ------------------------ */

/* Is the configured program safe to run as root? 0 (or none set) or -errno. */
int fs_alert_check(const struct store_config *cfg);
/* Start the delivery thread and hook it into the store (nothing without exec). */
int fs_alert_start(const struct store_config *cfg, struct store *st);
/* Unhook, stop after the alert being delivered, log what was not delivered. */
void fs_alert_stop(struct store *st);

/* ---- ops.c ------------------------------------------------------------ */

extern const struct fuse_lowlevel_ops fs_operations;

#endif

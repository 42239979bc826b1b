/*
 * store_int.h - private declarations shared by the files of store/.
 *
 * Nothing outside store/ includes this. Invariants every file keeps:
 *   - st->mu is held by every public entry point for its whole run, so one
 *     handle may be shared by threads; helpers here assume it is held.
 *   - every change is made inside one BEGIN IMMEDIATE transaction that
 *     also appends its audit event, so a change and its record commit or
 *     vanish together.
 *   - unwrapped keys live in sodium_malloc memory owned by the handle.
 */
#ifndef SCOPEHOLD_STORE_INT_H
#define SCOPEHOLD_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>

#include "store/sql.h"
#include "store/store.h"

#define STORE_SCHEMA_VERSION 11
#define STORE_APPLICATION_ID 0x53484c44  /* "SHLD" */
#define STORE_STMT_CACHE 96
#define STORE_DATA_KEY_CACHE 64
#define STORE_DENY_SLOTS 256
/*
 * Distinct processes of one uid named in deny rows per coalescing
 * window; beyond it they share one row per target and reason with pid -1
 * and exe STORE_DENY_MANY_EXE (never an absolute path, so never a real
 * executable).
 */
#define STORE_DENY_NAMED_PER_UID 8
#define STORE_DENY_MANY_EXE "*"
#define STORE_HASH_BYTES 32
#define STORE_BUSY_TIMEOUT_MS 10000   /* writers queue this long for the write lock */

struct store_stmt_slot { const char *sql; struct sql_stmt *stmt; };

struct store_data_key { int64_t id; uint8_t *key; /* sodium_malloc, 32 bytes */ };

/* One coalesced denial: identical requests counted in memory, written later. The key is every field but the last two. */
struct store_deny_slot {
	bool used;
	char agent[POLICY_NAME_MAX + 1];
	char secret[2 * POLICY_NAME_MAX + 2];
	int64_t version;
	int64_t uid, gid, pid;
	char exe[PATH_MAX];
	char cgroup[PATH_MAX];
	enum policy_reason reason;
	int64_t window_start;     /* when the last row for this key was written */
	int64_t pending;          /* denials counted since then, not yet written */
};

/* One access request counted in memory until the next flush (request.c). */
#define STORE_REQ_SLOTS 64
struct store_req_slot {
	bool used;
	char agent[POLICY_NAME_MAX + 1];
	char provider[POLICY_NAME_MAX + 1];
	char name[POLICY_NAME_MAX + 1];
	int64_t first, last, count;
	int64_t uid, gid, pid;
	char exe[PATH_MAX];
};

/* An executable digest an agent resolved from (alert.c). */
struct store_exe_seen {
	int64_t agent_id;
	uint8_t sha256[POLICY_SHA256_BYTES];
	int64_t first;
	bool pending;                 /* not yet in agent_exes */
};

/* Refusals of one uid in the current minute (alert.c). */
#define STORE_BURST_SLOTS 64
struct store_burst_slot {
	bool used;
	int64_t uid;
	int64_t start, count;
	bool alerted;
};

/* One agent's rate counter (rate.c), in the mount's memory only. */
#define STORE_RATE_SLOTS 256
struct store_rate_slot {
	int64_t agent_id;             /* 0: free */
	struct policy_rate r;
};

/*
 * Group sync: appends take increasing tickets; one caller at a time
 * fdatasyncs for every ticket issued before it started, the others wait.
 */
struct store_syncer {
	_Atomic uint64_t ticket;      /* tickets issued */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t synced;              /* under mu */
	bool syncing;                 /* under mu */
	int waiting;                  /* threads in store_syncer_wait, under mu */
	uint64_t last_batch;          /* tickets the last sync covered, under mu */
};

/*
 * The audit journal (journal.c): while scopeholdfs serves, a resolve
 * appends its event to this file - one write, no SQLite transaction -
 * before the value is handed out; the events are moved into the hash
 * chain of table `audit` later, in order, by whoever next writes the
 * store. Only the serving daemon appends (it holds an flock on the file).
 */
struct store_journal {
	pthread_mutex_t mu;           /* serialises appends and rotation */
	int fd;                       /* -1 when this handle does not serve */
	uint8_t gen[16];              /* this file's generation (its header) */
	uint64_t end;                 /* next append offset */
	/*
	 * A failed write or sync, or a record failing its check: refuse the
	 * rest. Atomic because the syncer reads and sets it without mu: a
	 * rotation holds mu while it waits for the sync in flight to end.
	 */
	_Atomic bool broken;
	_Atomic bool serving;         /* store_serve() succeeded and the handle is not closed */
	int lock_fd;                  /* flock on STORE-audit.lock, -1 when not serving */
	struct store_syncer sync;     /* durability = power */
	bool more;                    /* the last write's import left events behind; under store.mu */
	char path[PATH_MAX + 8];
};

/*
 * The mount's read cache (cache.c): answers of the store's read
 * functions keyed by their arguments, valid while the engine's change
 * stamp (sql_watch_stamp) - moved by every commit of any process - is
 * unchanged.
 */
#define STORE_CACHE_SLOTS 4096
struct store_cache_entry;
struct store_cache {
	pthread_mutex_t mu;           /* everything below; taken after store.mu, never before */
	bool on;                      /* store_serve() turns it on */
	uint8_t stamp[SQL_STAMP_BYTES]; /* change stamp the entries were read under */
	bool stamp_ok;                /* stamp is a consistent one */
	uint64_t gen;                 /* bumped at every clear; answers carry the one they were read under */
	struct store_cache_entry *slot[STORE_CACHE_SLOTS];
};

struct store {
	pthread_mutex_t mu;
	struct sql_db *db;             /* the engine behind sql.h */
	struct store_config cfg;
	char actor[128];
	bool creating;                /* inside store_init: keys may be created */
	int64_t ws_id;
	char ws_name[POLICY_NAME_MAX + 1];
	uint8_t *root_key;            /* sodium_malloc, STORE_KEY_BYTES */
	uint8_t *chain_key;           /* derived from the audit key: chains events */
	uint8_t *fp_key;              /* derived from the audit key: value fingerprints */
	struct store_data_key dkeys[STORE_DATA_KEY_CACHE];
	int ndkeys;                   /* dkeys change under mu and dk_lock (write) */
	pthread_rwlock_t dk_lock;     /* read by resolves that do not take mu */
	struct store_stmt_slot stmts[STORE_STMT_CACHE];
	struct store_deny_slot deny[STORE_DENY_SLOTS];
	int64_t deny_oldest_pending;  /* window_start of the oldest slot with pending > 0, 0 if none */
	struct store_req_slot req[STORE_REQ_SLOTS]; /* access requests not yet written (under mu) */
	store_alert_fn alert_fn;      /* the daemon's delivery of alerts (alert.c), or NULL */
	void *alert_ctx;
	/*
	 * new-exe alerts (alert.c): the (agent, digest) pairs seen, loaded
	 * from agent_exes at the first need, new ones written by
	 * store_controls_flush. exe_mu may be held while taking mu, never
	 * the other way round.
	 */
	pthread_mutex_t exe_mu;
	struct store_exe_seen *exes;
	size_t nexes, cap_exes;
	bool exes_loaded;
	/* deny-burst alerts (alert.c), under mu */
	struct store_burst_slot burst[STORE_BURST_SLOTS];
	pthread_mutex_t rate_mu;      /* the rate counters; never held while taking another lock */
	struct store_rate_slot rate[STORE_RATE_SLOTS];

	/*
	 * Group commit (durability = power): transactions commit without
	 * fsync under `mu`, each takes a ticket of wal_sync, and whoever
	 * finds no sync running fdatasyncs the WAL for every ticket issued so
	 * far while the others wait - so concurrent commits share syncs.
	 * Checkpoints stay synced by SQLite itself (synchronous=NORMAL).
	 */
	struct store_syncer wal_sync;
	_Atomic uint64_t syncs;       /* fdatasync calls made (for benchmarks) */
	struct store_journal jr;      /* the mount's audit journal (journal.c) */
	struct store_cache cache;     /* the mount's read cache (cache.c) */
	_Atomic uint64_t resolves;
	int batch;                    /* > 0 inside store_batch_begin/end: changes are savepoints */
	int64_t fwd_from;             /* [audit] syslog: first seq appended in the open transaction, 0 if none */

	/*
	 * Group commit of resolves (under mu). A resolve that finds others
	 * queued behind it leaves its write transaction open and waits on
	 * gc_cv; the last one in (no resolver waiting, or GC_MAX members)
	 * commits for all. A lone reader commits at once, as before. While a
	 * batch is open, other calls on the handle run inside it: reads see
	 * it, changes become savepoints committed with it.
	 */
	bool gc_open;                 /* a resolve batch transaction is open */
	struct gc_member *gc_members; /* resolves in it, waiting for its commit */
	int gc_count;
	_Atomic int gc_waiting;       /* resolvers blocked on mu */
	pthread_cond_t gc_cv;
};

/* A resolve waiting for its batch to commit (lives on its stack). */
struct gc_member {
	struct gc_member *next;
	bool done;
	int rc;                       /* of the batch's COMMIT */
	uint64_t ticket;              /* for store_sync_to */
};
#define GC_MAX 64

/* ---- error.c ---- */
int store_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A failed sql_* call (rc its -errno): "WHAT: the engine's words". */
int store_fail_db(struct store *st, int rc, const char *what);
void store_clear_error(void);
int store_fail_audit(int err);   /* reword a commit failure as the audit trail's */
int64_t store_now(void);

/* ---- db.c ---- */
struct sql_stmt *store_stmt(struct store *st, const char *sql);  /* cached, reset, bindings cleared */
int store_begin(struct store *st, bool write);
int store_write_begin(struct store *st);        /* BEGIN IMMEDIATE + journal import */
int store_commit(struct store *st);              /* COMMIT, then group-sync if durability = power */
int store_commit_ticket(struct store *st, uint64_t *ticket); /* COMMIT only; sync later with store_sync_to */
int store_sync_to(struct store *st, uint64_t ticket);
void store_syncer_init(struct store_syncer *sy);
void store_syncer_destroy(struct store_syncer *sy);
/* Return once ticket is synced, calling sync(st) when no one else is. */
/* The journal size past which the daemon rotates it (16 MiB; tests lower it). */
extern uint64_t store_journal_rotate_bytes;
int store_syncer_wait(struct store *st, struct store_syncer *sy, uint64_t ticket,
		      int (*sync)(struct store *st), bool gather);
void store_rollback(struct store *st);
int store_exec(struct store *st, const char *sql);
int store_tx_start(struct store *st);          /* lock + BEGIN IMMEDIATE (or a savepoint) */
/* A read section: BEGIN, or nothing when a transaction is already open. */
bool store_read_begin(struct store *st, int *rc);
void store_read_end(struct store *st, bool began);
int store_tx_end(struct store *st, int rc);    /* COMMIT if rc == 0 else ROLLBACK; unlock */
/*
 * The shape of every listing: run the cached statement `sql` with ?1 = a
 * and ?2 = b under the lock and hand each row to fn, which converts it
 * and calls the caller's callback. A non-zero return stops the walk.
 */
typedef int (*store_row_fn)(void *ctx, struct sql_stmt *row);
int store_walk(struct store *st, const char *sql, int64_t a, int64_t b,
	       store_row_fn fn, void *ctx);
/* A caller's callback (one of the store_*_fn types) and its context. */
struct walk { void *fn; void *ctx; };
/* Run an INSERT ... RETURNING id: *id is the new row's; 0 or -errno. */
int store_insert_id(struct store *st, struct sql_stmt *s, const char *what, int64_t *id);
/* Run a prepared statement that returns no rows; 0 or -errno. */
int store_step_done(struct store *st, struct sql_stmt *s, const char *what);
/*
 * A key file, store or journal: path safe from other users (store_check_path),
 * and the file, when it exists, a regular file of ours, mode 0600 or less.
 * -ENOENT quietly when it is missing and !must_exist.
 */
/* The store is a file (SQLite) rather than a database server's (postgresql). */
bool store_is_file(const struct store_config *cfg);
int store_check_file(const char *what, const char *path, bool must_exist);
int store_lookup_id(struct store *st, const char *sql, const char *name,
		    const char *kind, int64_t *id);
void store_lock(struct store *st);
void store_unlock(struct store *st);

/* ---- keys.c ---- */
int store_key_file_read(const char *path, uint8_t *key);
int store_key_file_create(const char *path, uint8_t *key);
int store_key_wrap(const uint8_t *root, int64_t id, const char *kind,
		   const uint8_t *key, uint8_t *out, size_t *outlen);
int store_key_unwrap(const uint8_t *root, int64_t id, const char *kind,
		     const uint8_t *in, size_t inlen, uint8_t *key);
int store_keys_load(struct store *st);
int store_data_key_get(struct store *st, int64_t id, const uint8_t **key);
int store_data_key_current(struct store *st, int64_t *id);
int store_data_key_new(struct store *st, int64_t *id);
int store_value_seal(struct store *st, const char *ws, const char *provider,
		     const char *name, int64_t version, int64_t key_id,
		     const uint8_t *value, size_t len, uint8_t **ct, size_t *ctlen);
int store_value_open(struct store *st, const char *ws, const char *provider,
		     const char *name, int64_t version, int64_t key_id,
		     const uint8_t *ct, size_t ctlen, uint8_t **value, size_t *len);
/* The same without mu, with an already unwrapped data key; -EAGAIN if it is not. */
int store_value_open_cached(struct store *st, const char *ws, const char *provider,
			    const char *name, int64_t version, int64_t key_id,
			    const uint8_t *ct, size_t ctlen, uint8_t **value, size_t *len);
void store_fingerprint(struct store *st, const uint8_t *value, size_t len,
		       uint8_t out[STORE_FINGERPRINT_BYTES]);
#define STORE_SEAL_OVERHEAD (crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + \
			     crypto_aead_xchacha20poly1305_ietf_ABYTES)

/* ---- audit.c ---- */
/* Append one event inside the caller's transaction (seq, hash filled here). */
int store_audit_append(struct store *st, struct store_event *ev);
/* The newest event's seq and hash (0 and zeros when the trail is empty). */
int store_audit_tail(struct store *st, int64_t *seq, uint8_t hash[STORE_HASH_BYTES]);
/* Append ev after (*seq, hash), which then name ev: for runs of appends. */
int store_audit_append_after(struct store *st, struct store_event *ev, int64_t *seq,
			     uint8_t hash[STORE_HASH_BYTES]);
/* Fill the operator-side fields of an event made by this handle. */
void store_event_init(struct store *st, struct store_event *ev, const char *type);
void store_chain_hash(const uint8_t *key, const uint8_t prev[STORE_HASH_BYTES],
		      const struct store_event *ev, uint8_t out[STORE_HASH_BYTES]);
int store_deny_flush_locked(struct store *st, bool all);
/*
 * [audit] syslog: send events from..to (committed, durable) to syslog,
 * one line each (mu held, no transaction open). Best effort: the trail
 * is the record; syslog(3) reports nothing back.
 */
void store_audit_forward(struct store *st, int64_t from, int64_t to);
/*
 * One event as the line forwarded: key=value fields, escaped, never a
 * value; the caller-chosen exe and cgroup last. STORE_AUDIT_LINE_MAX holds
 * any line whole: an exe and a cgroup of PATH_MAX bytes each escape to
 * four times that, and an agent-set reason carries both again.
 */
#define STORE_AUDIT_LINE_MAX (16 * PATH_MAX)
void store_audit_line(const struct store_event *ev, char *buf, size_t len);

/* ---- journal.c ---- */
/* Move journal events into `audit` (write transaction open, mu held). */
int store_journal_import_locked(struct store *st);
/* Append one event for a served value; *ticket for store_journal_sync. */
int store_journal_append(struct store *st, const struct store_event *ev, uint64_t *ticket);
int store_journal_sync(struct store *st, uint64_t ticket);
void store_journal_close(struct store *st);

/* ---- cache.c ---- */
enum store_cache_kind { STORE_CACHE_AGENT = 1, STORE_CACHE_PROVIDER, STORE_CACHE_CANDIDATE,
			STORE_CACHE_FACTS };
/*
 * Lookup checks the change stamp first (dropping every entry if any
 * commit happened since they were read) and returns a malloc'd copy of
 * a hit; *gen is the generation to pass to put after a miss, 0 when
 * nothing may be cached. put stores only if the generation is still
 * current and no transaction is open on the handle (store.mu held).
 */
bool store_cache_lookup(struct store *st, enum store_cache_kind kind, const char *key,
			uint64_t *gen, int *rc, void **copy, size_t *len);
void store_cache_put(struct store *st, uint64_t gen, enum store_cache_kind kind, const char *key,
		     int rc, const void *data, size_t len);
void store_cache_clear(struct store *st);
/*
 * Around a transaction of the store's own that writes nothing the cache
 * holds (the journal import): own_begin, with the write lock held, reads
 * the stamp (false: nothing to keep); own_commit, after the commit,
 * keeps the entries if that commit was the only one since.
 */
bool store_cache_own_begin(struct store *st, uint8_t before[SQL_STAMP_BYTES]);
void store_cache_own_commit(struct store *st, const uint8_t before[SQL_STAMP_BYTES]);
int store_cache_start(struct store *st);

/* ---- objects.c ---- */
int store_note(struct store *st, const char *type, const char *agent,
	       const char *secret, const char *reason);
int store_delete_noted(struct store *st, const char *sql, int64_t id, const char *type,
		       const char *agent, const char *object);
int store_provider_id(struct store *st, const char *name, int64_t *id);
int store_agent_id(struct store *st, const char *name, int64_t *id);
int store_project_id(struct store *st, const char *name, int64_t *id);
int store_secret_id(struct store *st, const char *provider, const char *name,
		    int64_t *provider_id, int64_t *secret_id);
int store_name_ok(const char *name, enum policy_name_kind kind);

int store_grant_locked(struct store *st, const char *agent, const char *provider,
		       const char *name, const struct store_grant_opts *o);

/* ---- request.c ---- */
/* Count a requestable refusal in memory (mu held); caller may be NULL (a repeat). */
void store_request_note(struct store *st, const char *agent, const char *secret,
			const struct policy_caller *caller, uid_t uid, gid_t gid);
/* Write the counted requests (mu held, no transaction open); kept on failure. */
int store_request_flush_locked(struct store *st);

/* ---- alert.c ---- */
/* An alert from a caller's facts (caller may be NULL). */
void store_alert_from_caller(struct store_alert *a, const char *type, const char *agent,
			     const char *secret, int64_t version,
			     const struct policy_caller *caller, const char *reason);
/* Is PROVIDER/NAME a canary? (mu held; false on any doubt) */
bool store_canary_locked(struct store *st, const char *provider, const char *name);
/* Count a refusal of uid for deny-burst; raises the alert at the threshold (mu held). */
int store_burst_note(struct store *st, const char *agent, const char *secret, int64_t version,
		     const struct policy_caller *caller, uid_t uid, gid_t gid, enum policy_reason reason);
/* After a served resolve: alert if the caller's digest is new for the agent. */
int store_exe_note(struct store *st, const struct store_facts *f, const struct policy_caller *caller);

/* ---- rate.c ---- */
/*
 * Count one resolve of the agent in f against its --rate: true if it
 * may go on (counted), false when refused; *first_refusal as in
 * policy_rate_take. Takes only rate_mu.
 */
bool store_rate_take(struct store *st, const struct store_facts *f, bool *first_refusal);

/* ---- resolve.c ---- */
int store_facts_load_locked(struct store *st, const char *agent, const char *provider,
			    const char *name, struct store_facts *f);

#endif

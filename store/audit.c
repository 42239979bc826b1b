/*
 * audit.c - the tamper-evident audit trail.
 *
 * Every event is a row of table `audit` carrying names (not ids, so the
 * trail outlives what it describes) and hash = BLAKE2b keyed with the
 * chain key over (previous row's hash || this row's fields). Altering,
 * removing or reordering a row breaks the chain at that row, which
 * store_audit_verify() reports; the chain key derives from the audit key,
 * itself wrapped by the root key, so someone with write access to the
 * store file but not the key cannot forge a consistent chain. Cutting off
 * the newest rows is invisible from inside the store: operators anchor
 * the head elsewhere (`shadm audit head`, `audit verify --head`).
 *
 * Values never enter an event; a keyed fingerprint of the delivered value
 * may, so an operator can tell which version was read.
 *
 * Denials are coalesced in memory: the first of a run of identical
 * denials (same agent, secret, version, uid, gid, pid, exe and reason:
 * everything the row shows) is written at once, the repeats are counted
 * and written as one event with a count, so a hostile loop cannot flood
 * the trail; a uid spawning a new process per attempt is bounded too (see
 * store_deny).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "store/store_int.h"

void store_event_init(struct store *st, struct store_event *ev, const char *type)
{
	memset(ev, 0, sizeof *ev);
	ev->type = type;
	ev->workspace = st->ws_name;
	ev->actor = st->actor;
	ev->agent = "";
	ev->secret = "";
	ev->uid = ev->gid = ev->pid = -1;
	ev->exe = "";
	ev->cgroup = "";
	/* which host: only where many share the database (a file store has one) */
	ev->host = sql_shared(st->db) ? st->cfg.host : "";
	ev->reason = "";
	ev->count = 1;
}

/*
 * The chained bytes of an event, laid out in a buffer and hashed in one
 * call (the same digest as hashing them piece by piece, but `audit
 * verify` walks millions of events). Field order and encoding define the
 * chain: never change them.
 */
struct chain_buf {
	uint8_t *p;
	size_t len, cap;
};

static void chain_put(struct chain_buf *b, const void *data, size_t n)
{
	if (b->len + n <= b->cap)
		memcpy(b->p + b->len, data, n);
	b->len += n;              /* past cap: the caller sees it and streams instead */
}

static void chain_int(struct chain_buf *b, int64_t v)
{
	uint64_t u = (uint64_t)v;
	uint8_t x[8] = {
		(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24),
		(uint8_t)(u >> 32), (uint8_t)(u >> 40), (uint8_t)(u >> 48), (uint8_t)(u >> 56),
	};

	chain_put(b, x, 8);
}

static void chain_str(struct chain_buf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	chain_int(b, (int64_t)n);
	if (n)
		chain_put(b, s, n);
}

static void chain_fields(struct chain_buf *b, const uint8_t prev[STORE_HASH_BYTES],
			 const struct store_event *ev)
{
	uint8_t flag = ev->has_fingerprint ? 1 : 0;

	chain_put(b, prev, STORE_HASH_BYTES);
	chain_int(b, ev->seq);
	chain_int(b, ev->time);
	chain_str(b, ev->type);
	chain_str(b, ev->workspace);
	chain_str(b, ev->actor);
	chain_str(b, ev->agent);
	chain_str(b, ev->secret);
	chain_int(b, ev->version);
	chain_int(b, ev->uid);
	chain_int(b, ev->gid);
	chain_int(b, ev->pid);
	chain_str(b, ev->exe);
	chain_str(b, ev->reason);
	chain_put(b, &flag, 1);
	if (flag)
		chain_put(b, ev->fingerprint, STORE_FINGERPRINT_BYTES);
	chain_int(b, ev->count);
	/*
	 * Added with schema 8, after every older field and only when set, so
	 * an event without a cgroup - every event written before - chains
	 * exactly as it always did. The length prefix keeps it unambiguous.
	 */
	if ((ev->cgroup && ev->cgroup[0]) || (ev->host && ev->host[0]))
		chain_str(b, ev->cgroup ? ev->cgroup : "");
	/*
	 * Schema 10, the same way: the host after the cgroup (then written
	 * even when empty), only when set.
	 */
	if (ev->host && ev->host[0])
		chain_str(b, ev->host);
}

void store_chain_hash(const uint8_t *key, const uint8_t prev[STORE_HASH_BYTES],
		      const struct store_event *ev, uint8_t out[STORE_HASH_BYTES])
{
	uint8_t stack[2048];
	struct chain_buf b = { stack, 0, sizeof stack };

	chain_fields(&b, prev, ev);
	if (b.len > b.cap) {
		/* a very long event (a deep executable path): measure, then allocate */
		b.p = malloc(b.len);
		b.cap = b.p ? b.len : 0;
		b.len = 0;
		if (b.p)
			chain_fields(&b, prev, ev);
	}
	crypto_generichash(out, STORE_HASH_BYTES, b.p, b.len, key, STORE_KEY_BYTES);
	if (b.p != stack)
		free(b.p);
}

static int audit_insert(struct store *st, const struct store_event *ev,
			const uint8_t hash[STORE_HASH_BYTES])
{
	struct sql_stmt *s;
	int rc;

	s = store_stmt(st, "INSERT INTO audit(seq, time, type, workspace, actor, agent, secret,"
			   " version, uid, gid, pid, exe, reason, fingerprint, count, hash, cgroup, host)"
			   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
			   " ?17, ?18)");
	if (!s)
		return -EIO;
	sql_bind_int64(s, 1, ev->seq);
	sql_bind_int64(s, 2, ev->time);
	sql_bind_text(s, 3, ev->type);
	sql_bind_text(s, 4, ev->workspace);
	sql_bind_text(s, 5, ev->actor);
	sql_bind_text(s, 6, ev->agent);
	sql_bind_text(s, 7, ev->secret);
	sql_bind_int64(s, 8, ev->version);
	sql_bind_int64(s, 9, ev->uid);
	sql_bind_int64(s, 10, ev->gid);
	sql_bind_int64(s, 11, ev->pid);
	sql_bind_text(s, 12, ev->exe);
	sql_bind_text(s, 13, ev->reason);
	if (ev->has_fingerprint)
		sql_bind_blob(s, 14, ev->fingerprint, STORE_FINGERPRINT_BYTES);
	else
		sql_bind_null(s, 14);
	sql_bind_int64(s, 15, ev->count);
	sql_bind_blob(s, 16, hash, STORE_HASH_BYTES);
	sql_bind_text(s, 17, ev->cgroup ? ev->cgroup : "");
	sql_bind_text(s, 18, ev->host ? ev->host : "");
	rc = sql_step(s);
	sql_reset(s);
	if (rc != SQL_DONE)
		return store_fail_db(st, rc, "cannot write the audit trail");
	/* forwarded once the transaction commits (store_commit_ticket) */
	if (st->cfg.syslog_facility >= 0 && !st->fwd_from)
		st->fwd_from = ev->seq;
	return 0;
}

int store_audit_tail(struct store *st, int64_t *seq, uint8_t hash[STORE_HASH_BYTES])
{
	struct sql_stmt *s = store_stmt(st, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
	int rc;

	if (!s)
		return -EIO;
	memset(hash, 0, STORE_HASH_BYTES);
	*seq = 0;
	rc = sql_step(s);
	if (rc == SQL_ROW) {
		*seq = sql_column_int64(s, 0);
		if (sql_column_bytes(s, 1) == STORE_HASH_BYTES)
			memcpy(hash, sql_column_blob(s, 1), STORE_HASH_BYTES);
	}
	sql_reset(s);
	return rc == SQL_ROW || rc == SQL_DONE ? 0
						     : store_fail_db(st, rc, "cannot write the audit trail");
}

int store_audit_append_after(struct store *st, struct store_event *ev, int64_t *seq,
			     uint8_t hash[STORE_HASH_BYTES])
{
	uint8_t next[STORE_HASH_BYTES];
	int rc;

	ev->seq = *seq + 1;
	if (!ev->time)
		ev->time = store_now();
	store_chain_hash(st->chain_key, hash, ev, next);
	if ((rc = audit_insert(st, ev, next)))
		return rc;
	*seq = ev->seq;
	memcpy(hash, next, STORE_HASH_BYTES);
	return 0;
}

int store_audit_append(struct store *st, struct store_event *ev)
{
	uint8_t hash[STORE_HASH_BYTES];
	int64_t seq;
	int rc = store_audit_tail(st, &seq, hash);

	return rc ? rc : store_audit_append_after(st, ev, &seq, hash);
}

/* One event in its own transaction (denials, operator notes). */
static int audit_write_one(struct store *st, struct store_event *ev)
{
	int rc = store_tx_start(st);

	if (rc)
		return rc;
	rc = store_tx_end(st, store_audit_append(st, ev));
	return rc ? store_fail_audit(rc) : 0;
}

int store_audit_record(struct store *st, const char *type, const char *agent,
		       const char *secret, int64_t version, const char *reason)
{
	struct store_event ev;
	int rc;

	store_lock(st);
	store_event_init(st, &ev, type);
	ev.agent = agent ? agent : "";
	ev.secret = secret ? secret : "";
	ev.version = version;
	ev.reason = reason ? reason : "";
	rc = audit_write_one(st, &ev);
	store_unlock(st);
	return rc;
}

/* ---- coalesced denials ------------------------------------------------ */

static void deny_event(struct store *st, struct store_event *ev, const struct store_deny_slot *d,
		       int64_t count)
{
	store_event_init(st, ev, "deny");
	ev->agent = d->agent;
	ev->secret = d->secret;
	ev->version = d->version;
	ev->uid = d->uid;
	ev->gid = d->gid;
	ev->pid = d->pid;
	ev->exe = d->exe;
	ev->cgroup = d->cgroup;
	ev->reason = policy_reason_name(d->reason);
	ev->count = count;
}

int store_deny_flush_locked(struct store *st, bool all)
{
	struct store_event ev;
	int i, rc, first = 0;
	int64_t now = store_now();

	for (i = 0; i < STORE_DENY_SLOTS; i++) {
		struct store_deny_slot *d = &st->deny[i];
		if (!d->used)
			continue;
		if (d->pending > 0) {
			deny_event(st, &ev, d, d->pending);
			rc = audit_write_one(st, &ev);
			if (rc && !first)
				first = rc;
			if (!rc) {
				d->pending = 0;
				d->window_start = now;
			}
		}
		if (all && d->pending == 0)
			d->used = false;
	}
	st->deny_oldest_pending = 0;
	/* the access requests counted with the denials go out with them */
	rc = store_request_flush_locked(st);
	if (rc && !first)
		first = rc;
	return first;
}

int store_deny_flush(struct store *st)
{
	int rc;

	store_lock(st);
	rc = store_deny_flush_locked(st, false);
	store_unlock(st);
	return rc;
}

/* Does slot s hold exactly the facts of key k (everything its row shows)? */
static bool deny_same(const struct store_deny_slot *s, const struct store_deny_slot *k)
{
	return s->used && s->reason == k->reason && s->uid == k->uid && s->gid == k->gid &&
	       s->pid == k->pid && s->version == k->version && !strcmp(s->exe, k->exe) &&
	       !strcmp(s->cgroup, k->cgroup) && !strcmp(s->agent, k->agent) && !strcmp(s->secret, k->secret);
}

static struct store_deny_slot *deny_find(struct store *st, const struct store_deny_slot *k)
{
	for (int i = 0; i < STORE_DENY_SLOTS; i++)
		if (deny_same(&st->deny[i], k))
			return &st->deny[i];
	return NULL;
}

/* Processes of uid named in rows of the current window (the "*" row aside). */
static int deny_named(struct store *st, int64_t uid, int64_t now, int64_t window)
{
	int n = 0;

	for (int i = 0; i < STORE_DENY_SLOTS; i++) {
		const struct store_deny_slot *s = &st->deny[i];
		n += s->used && s->uid == uid && now - s->window_start < window &&
		     strcmp(s->exe, STORE_DENY_MANY_EXE) != 0;
	}
	return n;
}

/* A slot for a new key: an unused one, else one whose window is over with nothing held. */
static struct store_deny_slot *deny_free_slot(struct store *st, int64_t now, int64_t window)
{
	struct store_deny_slot *stale = NULL;

	for (int i = 0; i < STORE_DENY_SLOTS; i++) {
		struct store_deny_slot *s = &st->deny[i];
		if (!s->used)
			return s;
		if (!stale && s->pending == 0 && now - s->window_start >= window)
			stale = s;
	}
	return stale;
}

int store_deny(struct store *st, const char *agent, const char *provider,
	       const char *name, int64_t version,
	       const struct policy_caller *caller, enum policy_reason reason)
{
	/* every field is set below: no 5 KiB memset of the path buffers per denial */
	struct store_deny_slot key, *d = NULL, *free_slot = NULL;
	struct store_event ev;
	int64_t now = store_now(), window;
	int rc;

	key.used = true;
	key.window_start = 0;
	key.pending = 0;
	snprintf(key.agent, sizeof key.agent, "%s", agent ? agent : "");
	if (provider && *provider)
		snprintf(key.secret, sizeof key.secret, "%s/%s", provider, name ? name : "");
	else
		key.secret[0] = '\0';
	key.version = version;
	/*
	 * uid and gid come from the kernel's credentials and are kept even
	 * when the process could not be established; pid and exe only when
	 * it was, so an event never names a process it could not verify.
	 */
	key.uid = caller ? (int64_t)caller->uid : -1;
	key.gid = caller ? (int64_t)caller->gid : -1;
	key.pid = caller && caller->known && caller->pid ? (int64_t)caller->pid : -1;
	snprintf(key.exe, sizeof key.exe, "%s",
		 caller && caller->known && caller->exe ? caller->exe : "");
	snprintf(key.cgroup, sizeof key.cgroup, "%s",
		 caller && caller->known && caller->cgroup ? caller->cgroup : "");
	key.reason = reason;

	store_lock(st);
	if (policy_reason_requestable(reason))
		store_request_note(st, key.agent, key.secret, caller, (uid_t)key.uid, (gid_t)key.gid);
	if ((rc = store_burst_note(st, key.agent, key.secret, version, caller, (uid_t)key.uid,
				   (gid_t)key.gid, reason))) {
		store_unlock(st);
		return rc;
	}
	window = st->cfg.deny_coalesce_seconds;
	if (window > 0) {
		/*
		 * The key is everything the row shows, so a repeat is counted
		 * under its own process, never under whoever came first. A
		 * uid that spawns process after process would make a row per
		 * pid: past STORE_DENY_NAMED_PER_UID named processes in a
		 * window its new ones share one row per target and reason,
		 * pid -1 and exe "*".
		 */
		d = deny_find(st, &key);
		if ((!d || now - d->window_start >= window) &&
		    deny_named(st, key.uid, now, window) >= STORE_DENY_NAMED_PER_UID) {
			key.pid = -1;
			snprintf(key.exe, sizeof key.exe, STORE_DENY_MANY_EXE);
			key.cgroup[0] = '\0';
			d = deny_find(st, &key);
		}
		if (d && now - d->window_start < window) {
			/* a repeat inside the window: only counted */
			d->pending++;
			if (!st->deny_oldest_pending)
				st->deny_oldest_pending = d->window_start;
			rc = 0;
			if (now - st->deny_oldest_pending >= window)
				rc = store_deny_flush_locked(st, false);
			store_unlock(st);
			return rc;
		}
	}
	/*
	 * A stranger refused on the way to a canary (its lookup fails before
	 * any open reaches store_resolve) alerts too; the matched agent's own
	 * opens alert in store_resolve. Only a denial that makes a row
	 * alerts: repeats inside the coalescing window are only counted, as
	 * for the denial itself.
	 */
	if (reason >= POLICY_CALLER_UNKNOWN && reason <= POLICY_EXE_HASH_MISMATCH && name && *name &&
	    provider && *provider && store_canary_locked(st, provider, name)) {
		struct store_alert a;
		store_alert_from_caller(&a, "canary", key.agent, key.secret, version, caller,
					policy_reason_name(reason));
		if ((rc = store_alert_raise(st, &a))) {
			store_unlock(st);
			return rc;
		}
	}
	if (d) {
		/* window over: one event for the repeats and this one */
		key.window_start = now;
		key.pending = 0;
		deny_event(st, &ev, &key, d->pending + 1);
		*d = key;
	} else {
		if (window > 0 && !(free_slot = deny_free_slot(st, now, window))) {
			/* table full: write everything out and start over */
			if ((rc = store_deny_flush_locked(st, true))) {
				store_unlock(st);
				return rc;
			}
			free_slot = &st->deny[0];
		}
		key.window_start = now;
		if (free_slot)
			*free_slot = key;
		deny_event(st, &ev, &key, 1);
	}
	rc = audit_write_one(st, &ev);
	store_unlock(st);
	return rc;
}

/* ---- reading the trail ----------------------------------------------- */

/* Every type an event is written with (keep in step with the writers). */
static const char *const audit_types[] = {
	"init", "workspace-add", "workspace-rm", "provider-add", "provider-rm",
	"project-add", "project-rm", "attach", "detach",
	"create", "rotate", "rm", "reveal", "canary",
	"agent-add", "agent-rm", "agent-enable", "agent-disable", "agent-rate",
	"assign", "unassign", "grant", "revoke", "sweep", "approve", "reject",
	"resolve", "deny", "alert", "key-rotate", "key-rekey", "rollback", "destroy", "agent-set",
	NULL,
};

bool store_audit_type_known(const char *type)
{
	for (size_t i = 0; type && audit_types[i]; i++) {
		if (strcmp(audit_types[i], type) == 0)
			return true;
	}
	return false;
}

const char *const *store_audit_types(void)
{
	return audit_types;
}

static void event_from_row(struct sql_stmt *s, struct store_event *ev)
{
	memset(ev, 0, sizeof *ev);
	ev->seq = sql_column_int64(s, 0);
	ev->time = sql_column_int64(s, 1);
	ev->type = sql_column_text(s, 2);
	ev->workspace = sql_column_text(s, 3);
	ev->actor = sql_column_text(s, 4);
	ev->agent = sql_column_text(s, 5);
	ev->secret = sql_column_text(s, 6);
	ev->version = sql_column_int64(s, 7);
	ev->uid = sql_column_int64(s, 8);
	ev->gid = sql_column_int64(s, 9);
	ev->pid = sql_column_int64(s, 10);
	ev->exe = sql_column_text(s, 11);
	ev->reason = sql_column_text(s, 12);
	if (sql_column_bytes(s, 13) == STORE_FINGERPRINT_BYTES) {
		ev->has_fingerprint = true;
		memcpy(ev->fingerprint, sql_column_blob(s, 13), STORE_FINGERPRINT_BYTES);
	}
	ev->count = sql_column_int64(s, 14);
	ev->cgroup = sql_column_text(s, 16);
	if (!ev->cgroup) ev->cgroup = "";
	ev->host = sql_column_text(s, 17);
	if (!ev->host) ev->host = "";
	if (!ev->type) ev->type = "";
	if (!ev->workspace) ev->workspace = "";
	if (!ev->actor) ev->actor = "";
	if (!ev->agent) ev->agent = "";
	if (!ev->secret) ev->secret = "";
	if (!ev->exe) ev->exe = "";
	if (!ev->reason) ev->reason = "";
}

#define AUDIT_COLUMNS "seq, time, type, workspace, actor, agent, secret, version, uid, gid," \
		      " pid, exe, reason, fingerprint, count, hash, cgroup, host"

int store_audit_query(struct store *st, const struct store_audit_filter *f,
		      store_event_fn fn, void *ctx)
{
	char sql[768];
	struct sql_stmt *s = NULL;
	struct store_event ev;
	int rc, n, i = 1;

	n = snprintf(sql, sizeof sql,
		     "SELECT * FROM (SELECT " AUDIT_COLUMNS " FROM audit WHERE 1 = 1%s%s%s%s%s%s%s%s"
		     " ORDER BY seq DESC%s) AS recent ORDER BY seq",
		     f->all_workspaces ? "" : " AND workspace = ?",
		     f->agent ? " AND agent = ?" : "",
		     f->secret ? " AND secret = ?" : "",
		     f->type ? " AND type = ?" : "",
		     f->since ? " AND time >= ?" : "",
		     f->until ? " AND time < ?" : "",
		     f->after ? " AND seq > ?" : "",
		     f->host ? " AND host = ?" : "",
		     f->limit > 0 ? " LIMIT ?" : "");
	if (n >= (int)sizeof sql)
		return store_fail(-EINVAL, "audit query too long");
	store_lock(st);
	rc = sql_prepare(st->db, sql, false, &s);
	if (rc) {
		rc = store_fail_db(st, rc, "cannot read the audit trail");
		goto out;
	}
	if (!f->all_workspaces)
		sql_bind_text(s, i++, st->ws_name);
	if (f->agent)
		sql_bind_text(s, i++, f->agent);
	if (f->secret)
		sql_bind_text(s, i++, f->secret);
	if (f->type)
		sql_bind_text(s, i++, f->type);
	if (f->since)
		sql_bind_int64(s, i++, f->since);
	if (f->until)
		sql_bind_int64(s, i++, f->until);
	if (f->after)
		sql_bind_int64(s, i++, f->after);
	if (f->host)
		sql_bind_text(s, i++, f->host);
	if (f->limit > 0)
		sql_bind_int64(s, i++, f->limit);
	while ((rc = sql_step(s)) == SQL_ROW) {
		event_from_row(s, &ev);
		if ((rc = fn(ctx, &ev)))
			goto out;
	}
	rc = rc == SQL_DONE ? 0 : store_fail_db(st, rc, "cannot read the audit trail");
out:
	sql_finalize(s);
	store_unlock(st);
	return rc;
}

/*
 * `audit verify` in two stages on two threads. Row n is intact when its
 * stored hash is the chain hash of its fields over the *stored* hash of
 * row n-1; by induction from row 1 that is the same as recomputing the
 * whole chain, and each row can then be checked on its own. So this
 * thread reads rows and lays out their chained bytes in batches while a
 * worker hashes the previous batch; the first bad row is the lowest
 * sequence number either stage found, exactly as a single pass would
 * report.
 */
#define VERIFY_ARENA (1u << 20)
#define VERIFY_ITEMS 8192

struct verify_item {
	int64_t seq;
	size_t off, len;
	uint8_t stored[STORE_HASH_BYTES];
	bool stored_ok;              /* the stored hash has the right size */
};

struct verify_batch {
	uint8_t *arena;
	size_t used;
	struct verify_item *items;
	int n;
};

struct verifier {
	const uint8_t *key;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct verify_batch *todo;   /* handed to the worker, NULL when it is idle */
	bool stop;
	int64_t first_bad;           /* lowest seq whose hash did not match, 0 if none */
};

static void verify_hash_batch(struct verifier *v, struct verify_batch *b)
{
	uint8_t want[STORE_HASH_BYTES];

	for (int i = 0; i < b->n; i++) {
		struct verify_item *it = &b->items[i];
		crypto_generichash(want, STORE_HASH_BYTES, b->arena + it->off, it->len, v->key,
				   STORE_KEY_BYTES);
		if (!it->stored_ok || crypto_verify_32(want, it->stored) != 0) {
			pthread_mutex_lock(&v->mu);
			if (!v->first_bad || it->seq < v->first_bad)
				v->first_bad = it->seq;
			pthread_mutex_unlock(&v->mu);
			break;          /* rows after it cannot lower the answer */
		}
	}
}

static void *verify_worker(void *arg)
{
	struct verifier *v = arg;

	pthread_mutex_lock(&v->mu);
	for (;;) {
		while (!v->todo && !v->stop)
			pthread_cond_wait(&v->cv, &v->mu);
		if (!v->todo)
			break;
		struct verify_batch *b = v->todo;
		pthread_mutex_unlock(&v->mu);
		verify_hash_batch(v, b);
		pthread_mutex_lock(&v->mu);
		v->todo = NULL;
		pthread_cond_broadcast(&v->cv);
	}
	pthread_mutex_unlock(&v->mu);
	return NULL;
}

/* Hand b to the worker once it has finished the batch before (or hash it here). */
static void verify_submit(struct verifier *v, struct verify_batch *b, bool threaded)
{
	if (!threaded) {
		verify_hash_batch(v, b);
		return;
	}
	pthread_mutex_lock(&v->mu);
	while (v->todo)
		pthread_cond_wait(&v->cv, &v->mu);
	v->todo = b;
	pthread_cond_broadcast(&v->cv);
	pthread_mutex_unlock(&v->mu);
}

static void verify_drain(struct verifier *v, bool threaded)
{
	if (!threaded)
		return;
	pthread_mutex_lock(&v->mu);
	while (v->todo)
		pthread_cond_wait(&v->cv, &v->mu);
	pthread_mutex_unlock(&v->mu);
}

/* Lay out row s's chained bytes over prev; false when the batch is full. */
static bool verify_add(struct verify_batch *b, struct sql_stmt *s, const uint8_t *prev,
		       struct store_event *ev)
{
	struct chain_buf cb = { b->arena + b->used, 0, VERIFY_ARENA - b->used };
	struct verify_item *it;

	if (b->n == VERIFY_ITEMS)
		return false;
	chain_fields(&cb, prev, ev);
	if (cb.len > cb.cap)
		return false;
	it = &b->items[b->n++];
	it->seq = ev->seq;
	it->off = b->used;
	it->len = cb.len;
	it->stored_ok = sql_column_bytes(s, 15) == STORE_HASH_BYTES;
	if (it->stored_ok)
		memcpy(it->stored, sql_column_blob(s, 15), STORE_HASH_BYTES);
	b->used += cb.len;
	return true;
}

int store_audit_verify(struct store *st, struct store_audit_report *rep)
{
	uint8_t prev[STORE_HASH_BYTES] = { 0 };
	struct verify_batch batch[2] = { { 0 } };
	struct verifier v = { .key = st->chain_key };
	struct sql_stmt *s = NULL;
	struct store_event ev;
	int64_t expect = 1, gap = 0, last = 0;
	char gap_problem[sizeof rep->problem] = "";
	pthread_t worker;
	bool threaded = false;
	int cur = 0, rc;

	memset(rep, 0, sizeof *rep);
	for (int i = 0; i < 2; i++) {
		batch[i].arena = malloc(VERIFY_ARENA);
		batch[i].items = malloc(VERIFY_ITEMS * sizeof *batch[i].items);
		if (!batch[i].arena || !batch[i].items) {
			rc = store_fail(-ENOMEM, "out of memory");
			goto free_out;
		}
	}
	pthread_mutex_init(&v.mu, NULL);
	pthread_cond_init(&v.cv, NULL);
	/* without a second thread the same checks run here, one batch at a time */
	threaded = pthread_create(&worker, NULL, verify_worker, &v) == 0;

	store_lock(st);
	/* one read transaction: a consistent snapshot while writers go on */
	bool began = store_read_begin(st, &rc);
	if (rc)
		goto out;
	rc = sql_prepare(st->db, "SELECT " AUDIT_COLUMNS " FROM audit ORDER BY seq", false, &s);
	if (rc) {
		rc = store_fail_db(st, rc, "cannot read the audit trail");
		goto out;
	}
	while ((rc = sql_step(s)) == SQL_ROW) {
		event_from_row(s, &ev);
		if (ev.seq != expect) {
			gap = expect;
			snprintf(gap_problem, sizeof gap_problem,
				 ev.seq > expect ? "removed (the next event present is %lld)"
						 : "out of order (found %lld)", (long long)ev.seq);
			break;
		}
		if (!verify_add(&batch[cur], s, prev, &ev)) {
			verify_submit(&v, &batch[cur], threaded);
			cur ^= 1;
			/* submit returned once the worker finished the other batch */
			batch[cur].used = 0;
			batch[cur].n = 0;
			if (!verify_add(&batch[cur], s, prev, &ev)) {
				rc = store_fail(-EIO, "audit event %lld is too large to verify",
						(long long)ev.seq);
				goto out;
			}
		}
		/* the next row chains over this row's stored hash */
		if (sql_column_bytes(s, 15) == STORE_HASH_BYTES)
			memcpy(prev, sql_column_blob(s, 15), STORE_HASH_BYTES);
		else
			memset(prev, 0, sizeof prev);
		last = ev.seq;
		expect++;
	}
	if (rc == SQL_ROW || rc == SQL_DONE) {
		rc = 0;
		if (batch[cur].n)
			verify_submit(&v, &batch[cur], threaded);
		verify_drain(&v, threaded);
		if (v.first_bad && (!gap || v.first_bad < gap)) {
			rep->first_bad = v.first_bad;
			snprintf(rep->problem, sizeof rep->problem, "altered or reordered");
		} else if (gap) {
			rep->first_bad = gap;
			snprintf(rep->problem, sizeof rep->problem, "%s", gap_problem);
		}
		/* intact events: those before the first bad one */
		rep->events = rep->first_bad ? rep->first_bad - 1 : last;
		if (!rep->first_bad)
			memcpy(rep->head, prev, STORE_HASH_BYTES);
	} else {
		rc = store_fail_db(st, rc, "cannot read the audit trail");
	}
out:
	sql_finalize(s);
	store_read_end(st, began);
	store_unlock(st);
	if (threaded) {
		verify_drain(&v, true);
		pthread_mutex_lock(&v.mu);
		v.stop = true;
		pthread_cond_broadcast(&v.cv);
		pthread_mutex_unlock(&v.mu);
		pthread_join(worker, NULL);
	}
	pthread_cond_destroy(&v.cv);
	pthread_mutex_destroy(&v.mu);
free_out:
	for (int i = 0; i < 2; i++) {
		free(batch[i].arena);
		free(batch[i].items);
	}
	return rc;
}

/* ---- forwarding to syslog ------------------------------------------------- */

struct line_buf {
	char *p;
	size_t len, n;
};

static void line_put(struct line_buf *b, const char *s, size_t k)
{
	if (b->n + k >= b->len)
		k = b->n + 1 < b->len ? b->len - b->n - 1 : 0;
	memcpy(b->p + b->n, s, k);
	b->n += k;
	b->p[b->n] = '\0';
}

/*
 * One field, key=value. A value of plain characters goes bare; any other
 * is quoted with \" \\ and \xHH for control and non-ASCII bytes, so a
 * crafted executable path can neither end the line nor fake a field.
 */
static void line_field(struct line_buf *b, const char *key, const char *v)
{
	bool bare = *v != '\0';
	char x[8];

	for (const char *q = v; *q && bare; q++) {
		unsigned char c = (unsigned char)*q;
		bare = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		       strchr("._/:@+,-", c);
	}
	if (b->n)
		line_put(b, " ", 1);
	line_put(b, key, strlen(key));
	line_put(b, "=", 1);
	if (bare) {
		line_put(b, v, strlen(v));
		return;
	}
	line_put(b, "\"", 1);
	for (const unsigned char *q = (const unsigned char *)v; *q; q++) {
		if (*q == '"' || *q == '\\') {
			x[0] = '\\';
			x[1] = (char)*q;
			line_put(b, x, 2);
		} else if (*q < 0x20 || *q >= 0x7f) {
			snprintf(x, sizeof x, "\\x%02x", *q);
			line_put(b, x, 4);
		} else {
			line_put(b, (const char *)q, 1);
		}
	}
	line_put(b, "\"", 1);
}

static void line_int(struct line_buf *b, const char *key, int64_t v)
{
	char num[24];

	snprintf(num, sizeof num, "%lld", (long long)v);
	line_field(b, key, num);
}

void store_audit_line(const struct store_event *ev, char *buf, size_t len)
{
	struct line_buf b = { buf, len, 0 };
	char t[32], fp[2 * STORE_FINGERPRINT_BYTES + 1];

	if (!len)
		return;
	buf[0] = '\0';
	line_int(&b, "seq", ev->seq);
	policy_time_format(ev->time, t, sizeof t);
	line_field(&b, "time", t);
	line_field(&b, "type", ev->type);
	line_field(&b, "workspace", ev->workspace);
	line_field(&b, "actor", ev->actor);
	/* only what is known: an empty name or a -1 id is left out */
	if (ev->agent[0])
		line_field(&b, "agent", ev->agent);
	if (ev->secret[0])
		line_field(&b, "secret", ev->secret);
	if (ev->version)
		line_int(&b, "version", ev->version);
	if (ev->uid >= 0)
		line_int(&b, "uid", ev->uid);
	if (ev->gid >= 0)
		line_int(&b, "gid", ev->gid);
	if (ev->pid >= 0)
		line_int(&b, "pid", ev->pid);
	if (ev->reason[0])
		line_field(&b, "reason", ev->reason);
	if (ev->has_fingerprint) {
		for (int i = 0; i < STORE_FINGERPRINT_BYTES; i++)
			snprintf(fp + 2 * i, 3, "%02x", ev->fingerprint[i]);
		line_field(&b, "fingerprint", fp);
	}
	if (ev->count != 1)
		line_int(&b, "count", ev->count);
	/*
	 * Last: the caller chose these, up to PATH_MAX bytes that escape to
	 * four times as many. A receiver that cuts long messages (RFC 3164
	 * relays, rsyslog's 8 KiB) then loses the end of the path, never
	 * the reason or the count of a refusal.
	 */
	if (ev->exe[0])
		line_field(&b, "exe", ev->exe);
	if (ev->cgroup && ev->cgroup[0])
		line_field(&b, "cgroup", ev->cgroup);
}

void store_audit_forward(struct store *st, int64_t from, int64_t to)
{
	struct sql_stmt *s;
	struct store_event ev;
	char *line;

	if (st->cfg.syslog_facility < 0 || from <= 0 || to < from)
		return;
	/* off the (possibly small) thread stack; large enough for the worst line */
	if (!(line = malloc(STORE_AUDIT_LINE_MAX)))
		return;
	s = store_stmt(st, "SELECT " AUDIT_COLUMNS " FROM audit WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq");
	if (!s) {
		free(line);
		return;
	}
	sql_bind_int64(s, 1, from);
	sql_bind_int64(s, 2, to);
	while (sql_step(s) == SQL_ROW) {
		event_from_row(s, &ev);
		store_audit_line(&ev, line, STORE_AUDIT_LINE_MAX);
		syslog(st->cfg.syslog_facility | LOG_INFO, "scopehold-audit %s", line);
	}
	sql_reset(s);
	free(line);
}

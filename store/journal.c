/*
 * journal.c - the audit journal: how a served value is recorded without
 * a SQLite write transaction on the open path.
 *
 * While scopeholdfs serves, each resolve appends its event to
 * STORE-audit with one pwrite() (and, with durability = power, a group
 * fdatasync) before the value is handed out - a written event survives
 * kill -9 of the daemon exactly as a committed WAL frame did. Whoever
 * next writes the store (the daemon's housekeeping tick, any shadm
 * command, `shadm audit`) moves the pending events into table `audit`,
 * where they are hash-chained like every other event, and records in
 * table `journal` how far it got, in the same transaction.
 *
 * File: a 24-byte header ("SHJRNL01" and a random 16-byte generation),
 * then records: u32 length (little-endian), the encoded event, and a
 * 32-byte BLAKE2b MAC keyed with the chain key over the generation, the
 * record's offset and its bytes. Without the key nobody can forge,
 * alter or move a record; a replaced file of an earlier generation is
 * read from where its import stopped, so events are never imported
 * twice. A record that fails its MAC stops every import with an error
 * (fail closed) until the operator moves the file aside. A record cut
 * short (power loss) is dropped when the daemon next starts.
 *
 * Only the serving daemon appends; it holds an flock on STORE-audit.lock
 * for its whole life (the journal itself is replaced at rotation, so it
 * cannot carry the lock). Once everything is imported *and committed*
 * and the file has grown past JOURNAL_ROTATE_BYTES, the daemon starts a
 * new generation in a transaction of its own (written beside it, synced,
 * renamed over it, directory synced), so a failed commit or a crash can
 * never drop events that only the old file held. A failed fdatasync or a
 * record that fails its check leaves the journal broken: the daemon
 * serves nothing more until it is restarted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

#define JOURNAL_MAGIC "SHJRNL01"
#define JOURNAL_HDR 24
#define JOURNAL_MAC 32
#define JOURNAL_REC_MAX (64 * 1024)
#define JOURNAL_ROTATE_BYTES (16u << 20)
/* The size past which the journal rotates: JOURNAL_ROTATE_BYTES, smaller in tests. */
uint64_t store_journal_rotate_bytes = JOURNAL_ROTATE_BYTES;
#define JOURNAL_READ_CHUNK (1u << 20)

/* ---- encoding ------------------------------------------------------------ */

struct jbuf {
	uint8_t *p;
	size_t len, cap;
	bool bad;
};

static void jput(struct jbuf *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->bad = true;
		return;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void jput_int(struct jbuf *b, int64_t v)
{
	uint8_t x[8];

	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)((uint64_t)v >> (8 * i));
	jput(b, x, 8);
}

static void jput_str(struct jbuf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	jput_int(b, (int64_t)n);
	jput(b, s, n);
}

static void encode_event(struct jbuf *b, const struct store_event *ev)
{
	uint8_t flag = ev->has_fingerprint ? 1 : 0;

	jput_int(b, ev->time);
	jput_str(b, ev->type);
	jput_str(b, ev->workspace);
	jput_str(b, ev->actor);
	jput_str(b, ev->agent);
	jput_str(b, ev->secret);
	jput_int(b, ev->version);
	jput_int(b, ev->uid);
	jput_int(b, ev->gid);
	jput_int(b, ev->pid);
	jput_str(b, ev->exe);
	jput_str(b, ev->reason);
	jput(b, &flag, 1);
	if (flag)
		jput(b, ev->fingerprint, STORE_FINGERPRINT_BYTES);
	jput_int(b, ev->count);
	/* optional and last, as in the chain: records without them read as before */
	if ((ev->cgroup && ev->cgroup[0]) || (ev->host && ev->host[0]))
		jput_str(b, ev->cgroup ? ev->cgroup : "");
	if (ev->host && ev->host[0])
		jput_str(b, ev->host);
}

/* Decoding copies strings into one scratch buffer the event points into. */
struct jdec {
	const uint8_t *p;
	size_t len, pos;
	char *strs;
	size_t slen, spos;
	bool bad;
};

static int64_t jget_int(struct jdec *d)
{
	uint64_t v = 0;

	if (d->pos + 8 > d->len) {
		d->bad = true;
		return 0;
	}
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)d->p[d->pos + (size_t)i] << (8 * i);
	d->pos += 8;
	return (int64_t)v;
}

static const char *jget_str(struct jdec *d)
{
	int64_t n = jget_int(d);
	char *s;

	if (d->bad || n < 0 || (uint64_t)n > d->len - d->pos || d->spos + (size_t)n + 1 > d->slen ||
	    memchr(d->p + d->pos, '\0', (size_t)n)) {
		d->bad = true;
		return "";
	}
	s = d->strs + d->spos;
	memcpy(s, d->p + d->pos, (size_t)n);
	s[n] = '\0';
	d->spos += (size_t)n + 1;
	d->pos += (size_t)n;
	return s;
}

static int decode_event(const uint8_t *p, size_t len, char *strs, size_t slen,
			struct store_event *ev)
{
	struct jdec d = { p, len, 0, strs, slen, 0, false };
	uint8_t flag = 0;

	memset(ev, 0, sizeof *ev);
	ev->time = jget_int(&d);
	ev->type = jget_str(&d);
	ev->workspace = jget_str(&d);
	ev->actor = jget_str(&d);
	ev->agent = jget_str(&d);
	ev->secret = jget_str(&d);
	ev->version = jget_int(&d);
	ev->uid = jget_int(&d);
	ev->gid = jget_int(&d);
	ev->pid = jget_int(&d);
	ev->exe = jget_str(&d);
	ev->reason = jget_str(&d);
	if (d.pos < d.len)
		flag = d.p[d.pos++];
	else
		d.bad = true;
	if (flag == 1) {
		ev->has_fingerprint = true;
		if (d.pos + STORE_FINGERPRINT_BYTES > d.len)
			d.bad = true;
		else
			memcpy(ev->fingerprint, d.p + d.pos, STORE_FINGERPRINT_BYTES);
		d.pos += STORE_FINGERPRINT_BYTES;
	} else if (flag != 0) {
		d.bad = true;
	}
	ev->count = jget_int(&d);
	ev->cgroup = "";
	ev->host = "";
	if (!d.bad && d.pos < d.len) {
		ev->cgroup = jget_str(&d);
		if (!d.bad && d.pos < d.len) {
			ev->host = jget_str(&d);
			if (!ev->host[0])
				d.bad = true;    /* an empty one is never written: not ours */
		} else if (!ev->cgroup[0]) {
			d.bad = true;    /* empty only when a host follows */
		}
	}
	return d.bad || d.pos != d.len || !*ev->type ? -EBADMSG : 0;
}

static void record_mac(struct store *st, const uint8_t gen[16], uint64_t off,
		       const uint8_t *rec, size_t n, uint8_t out[JOURNAL_MAC])
{
	static const char domain[] = "scopehold audit journal v1";
	crypto_generichash_state h;
	uint8_t o[8];

	for (int i = 0; i < 8; i++)
		o[i] = (uint8_t)(off >> (8 * i));
	crypto_generichash_init(&h, st->chain_key, STORE_KEY_BYTES, JOURNAL_MAC);
	crypto_generichash_update(&h, (const uint8_t *)domain, sizeof domain);
	crypto_generichash_update(&h, gen, 16);
	crypto_generichash_update(&h, o, 8);
	crypto_generichash_update(&h, rec, n);
	crypto_generichash_final(&h, out, JOURNAL_MAC);
}

/* ---- import --------------------------------------------------------------- */

static int journal_fail(struct store *st, const char *what)
{
	return store_fail(-EIO, "cannot read the audit journal '%s': %s: %s", st->jr.path,
			  what, strerror(errno));
}

/* The one refusal of a broken journal (append and sync). */
static int journal_unusable(void)
{
	return store_fail(-EIO, "cannot write the audit trail: the audit journal is unusable"
			  " after a failed write; restart scopeholdfs");
}

static int state_get(struct store *st, const uint8_t gen[16], int64_t *off, bool *found)
{
	struct sql_stmt *s = store_stmt(st, "SELECT \"offset\" FROM journal WHERE gen = ?1");
	int rc;

	if (!s)
		return -EIO;
	sql_bind_blob(s, 1, gen, 16);
	rc = sql_step(s);
	*found = rc == SQL_ROW;
	*off = *found ? sql_column_int64(s, 0) : JOURNAL_HDR;
	sql_reset(s);
	if (rc != SQL_ROW && rc != SQL_DONE)
		return store_fail_db(st, rc, "cannot read the store");
	return 0;
}

static int state_set(struct store *st, const uint8_t gen[16], int64_t off)
{
	struct sql_stmt *s = store_stmt(st, "INSERT INTO journal(gen, \"offset\") VALUES (?1, ?2)"
				     " ON CONFLICT(gen) DO UPDATE SET \"offset\" = excluded.\"offset\"");

	if (!s)
		return -EIO;
	sql_bind_blob(s, 1, gen, 16);
	sql_bind_int64(s, 2, off);
	return store_step_done(st, s, "cannot write the audit trail");
}

/*
 * Import whole records from *off on, at most max (0: all); *off ends after
 * the last one imported, *more says whether whole records remain.
 */
static int import_records(struct store *st, int fd, const uint8_t gen[16], uint64_t *off,
			  size_t max, bool *more)
{
	size_t done = 0;

	uint8_t *buf = malloc(JOURNAL_READ_CHUNK);
	char *strs = malloc(JOURNAL_REC_MAX);
	uint8_t mac[JOURNAL_MAC], tail[STORE_HASH_BYTES];
	struct store_event ev;
	int64_t seq = -1;
	int rc = 0;

	*more = false;
	if (!buf || !strs) {
		rc = store_fail(-ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t got = pread(fd, buf, JOURNAL_READ_CHUNK, (off_t)*off);
		size_t pos = 0;

		if (got < 0) {
			rc = journal_fail(st, "read");
			goto out;
		}
		while ((size_t)got - pos >= 4) {
			uint32_t n = (uint32_t)buf[pos] | (uint32_t)buf[pos + 1] << 8 |
				     (uint32_t)buf[pos + 2] << 16 | (uint32_t)buf[pos + 3] << 24;
			size_t whole = 4 + (size_t)n + JOURNAL_MAC;

			if (n == 0) {
				/* zeros to the end: space a power loss left unwritten */
				size_t z = pos;
				while (z < (size_t)got && buf[z] == 0)
					z++;
				if (z == (size_t)got)
					break;
				goto bad;
			}
			if (n > JOURNAL_REC_MAX)
				goto bad;
			if ((size_t)got - pos < whole)
				break;          /* cut short, or still being written */
			if (max && done == max) {
				*more = true;
				goto out;
			}
			record_mac(st, gen, *off, buf + pos, 4 + n, mac);
			if (sodium_memcmp(mac, buf + pos + 4 + n, JOURNAL_MAC) != 0 ||
			    decode_event(buf + pos + 4, n, strs, JOURNAL_REC_MAX, &ev))
				goto bad;
			/* the tail is read once per import, not once per event */
			if (seq < 0 && (rc = store_audit_tail(st, &seq, tail)))
				goto out;
			if ((rc = store_audit_append_after(st, &ev, &seq, tail)))
				goto out;
			done++;
			pos += whole;
			*off += whole;
		}
		/* a chunk ending inside a record is re-read from its start */
		if (pos == 0 || (size_t)got < JOURNAL_READ_CHUNK)
			break;
	}
	goto out;
bad:
	rc = store_fail(-EBADMSG, "audit journal '%s': the record at offset %llu fails its check"
			" (altered, or torn by a power loss); move the file aside to keep it and"
			" to let the store be written again", st->jr.path, (unsigned long long)*off);
out:
	free(buf);
	free(strs);
	return rc;
}

/* The journal at st->jr.path: its generation, or -ENOENT when absent or empty. */
static int journal_header(struct store *st, int fd, uint8_t gen[16])
{
	uint8_t hdr[JOURNAL_HDR];
	ssize_t got = pread(fd, hdr, sizeof hdr, 0);

	if (got < 0)
		return journal_fail(st, "read");
	if (got < JOURNAL_HDR)
		return -ENOENT;       /* created, header not yet on disk: nothing in it */
	if (memcmp(hdr, JOURNAL_MAGIC, 8) != 0)
		return store_fail(-EBADMSG, "audit journal '%s' is not a ScopeHold audit journal",
				  st->jr.path);
	memcpy(gen, hdr + 8, 16);
	return 0;
}

static int journal_import(struct store *st, size_t max, bool *more)
{
	uint8_t gen[16];
	int64_t start;
	uint64_t off;
	bool found;
	int fd, rc;

	*more = false;
	if (st->jr.fd >= 0) {
		fd = st->jr.fd;        /* the serving daemon reads the file it appends to */
	} else {
		rc = store_check_file("audit journal", st->jr.path, false);
		if (rc == -ENOENT)
			return 0;
		if (rc)
			return rc;
		fd = open(st->jr.path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return errno == ENOENT ? 0 : journal_fail(st, "open");
	}
	rc = journal_header(st, fd, gen);
	if (rc == -ENOENT) {
		rc = 0;
		goto out;
	}
	if (rc || (rc = state_get(st, gen, &start, &found)))
		goto out;
	off = (uint64_t)start;
	rc = import_records(st, fd, gen, &off, max, more);
	if (rc == 0 && (!found || off != (uint64_t)start))
		rc = state_set(st, gen, (int64_t)off);
out:
	if (fd != st->jr.fd)
		close(fd);
	return rc;
}

/*
 * Before a write: chain at most this many pending events ahead of it.
 * Readers can append faster than a PostgreSQL store chains (45k events/s
 * at 8 readers against ~17-27k chained on the bench machine), and a write
 * that first chained the whole backlog made an operator's revoke wait for
 * it: 10-19 s after 4 s of 8 readers, 42-134 ms with this bound. Events
 * left behind are chained after the write (by the daemon's next tick, or
 * the next write); each carries the time it happened.
 */
#define JOURNAL_WRITE_MAX 1024

int store_journal_import_locked(struct store *st)
{
	return journal_import(st, JOURNAL_WRITE_MAX, &st->jr.more);
}

/*
 * Under store.mu, with no transaction open: the whole journal, one
 * bounded import per committed transaction.
 */
static int journal_import_all_locked(struct store *st)
{
	bool more;
	int rc;

	do {
		if ((rc = store_write_begin(st)))
			return rc;
		more = st->jr.more;
		if ((rc = store_commit(st)))
			return rc;
	} while (more);
	return 0;
}

int store_journal_import(struct store *st)
{
	int rc = 0;

	store_lock(st);
	/* inside a batch there is nothing to do: the batch's start imported */
	if (!st->batch && !st->gc_open)
		rc = journal_import_all_locked(st);
	store_unlock(st);
	return rc ? store_fail_audit(rc) : 0;
}

/* ---- the serving daemon's side ------------------------------------------- */

/* A new generation, written beside the journal, synced and renamed over it. */
static int journal_new(struct store *st, int *fd_out, uint8_t gen[16])
{
	char tmp[PATH_MAX + 16];
	uint8_t hdr[JOURNAL_HDR];
	int fd;

	snprintf(tmp, sizeof tmp, "%s.new", st->jr.path);
	(void)unlink(tmp);        /* left by a crash between create and rename */
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return store_fail(-EIO, "cannot create the audit journal '%s': %s", tmp,
				  strerror(errno));
	randombytes_buf(gen, 16);
	memcpy(hdr, JOURNAL_MAGIC, 8);
	memcpy(hdr + 8, gen, 16);
	if (pwrite(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr || fdatasync(fd) < 0 ||
	    rename(tmp, st->jr.path) < 0) {
		int e = errno;
		close(fd);
		(void)unlink(tmp);
		return store_fail(-EIO, "cannot create the audit journal '%s': %s", st->jr.path,
				  strerror(e));
	}
	/* the new name must survive a power loss before anything is appended to it */
	char dir[PATH_MAX + 8];
	snprintf(dir, sizeof dir, "%s", st->jr.path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof dir, ".");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		int e = errno;
		if (dfd >= 0)
			close(dfd);
		close(fd);
		return store_fail(-EIO, "cannot sync the directory of the audit journal '%s': %s",
				  st->jr.path, strerror(e));
	}
	close(dfd);
	*fd_out = fd;
	return 0;
}

/* Switch appends to a fresh generation (jr.mu held, import done in this tx). */
static int journal_rotate(struct store *st)
{
	uint8_t gen[16];
	int fd, rc;

	if ((rc = journal_new(st, &fd, gen)))
		return rc;
	if ((rc = state_set(st, gen, JOURNAL_HDR))) {
		/* the new file stands; the state row is written by its first import */
		rc = 0;
	}
	/* every ticket of the old file must be synced before it is closed */
	pthread_mutex_lock(&st->jr.sync.mu);
	while (st->jr.sync.syncing)
		pthread_cond_wait(&st->jr.sync.cv, &st->jr.sync.mu);
	if (st->jr.fd >= 0 && st->jr.sync.synced < atomic_load(&st->jr.sync.ticket)) {
		if (st->cfg.durability == STORE_DURABLE_POWER && fdatasync(st->jr.fd) < 0) {
			/* its waiters must fail, not be told the old records are safe */
			st->jr.broken = true;
			pthread_cond_broadcast(&st->jr.sync.cv);
			pthread_mutex_unlock(&st->jr.sync.mu);
			close(fd);
			return store_fail(-EIO, "cannot sync the audit trail: %s", strerror(errno));
		}
		st->jr.sync.synced = atomic_load(&st->jr.sync.ticket);
		pthread_cond_broadcast(&st->jr.sync.cv);
	}
	if (st->jr.fd >= 0)
		close(st->jr.fd);
	st->jr.fd = fd;
	memcpy(st->jr.gen, gen, 16);
	st->jr.end = JOURNAL_HDR;
	pthread_mutex_unlock(&st->jr.sync.mu);
	return rc;
}

int store_serve(struct store *st, uint64_t *dropped)
{
	char lock[PATH_MAX + 16];
	struct stat sb;
	uint64_t before = 0;
	int64_t done = JOURNAL_HDR;
	bool found = false;
	uint8_t gen[16];
	int fd, lfd, rc;

	*dropped = 0;
	rc = store_check_file("audit journal", st->jr.path, false);
	if (rc && rc != -ENOENT)
		return rc;
	/* a second daemon stops here, whatever happens to the journal's name */
	snprintf(lock, sizeof lock, "%s.lock", st->jr.path);
	lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lfd < 0)
		return store_fail(-EIO, "cannot open the audit journal lock '%s': %s", lock,
				  strerror(errno));
	if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		close(lfd);
		return store_fail(-EBUSY, "store '%s' is already served by another scopeholdfs"
				  " (audit journal '%s' is locked)", st->cfg.store_path, st->jr.path);
	}
	store_lock(st);
	fd = open(st->jr.path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno != ENOENT) {
		rc = journal_fail(st, "open");
		goto fail;
	}
	st->jr.fd = fd;
	/* what a previous run left goes into the trail, committed, first: all of it */
	if ((rc = journal_import_all_locked(st)))
		goto fail;
	if (fd >= 0 && fstat(fd, &sb) == 0)
		before = (uint64_t)sb.st_size;
	/* whatever the import did not take is a record cut short */
	if (fd >= 0 && journal_header(st, fd, gen) == 0 &&
	    state_get(st, gen, &done, &found) == 0 && before > (uint64_t)done)
		*dropped = before - (uint64_t)done;
	pthread_mutex_lock(&st->jr.mu);
	rc = store_begin(st, true);
	if (rc == 0) {
		rc = journal_rotate(st);
		if (rc == 0)
			rc = store_commit(st);
		else
			store_rollback(st);
	}
	pthread_mutex_unlock(&st->jr.mu);
	if (rc)
		goto fail;
	if ((rc = store_cache_start(st)))
		goto fail;
	st->jr.lock_fd = lfd;
	atomic_store(&st->jr.serving, true);
	store_unlock(st);
	return 0;
fail:
	if (st->jr.fd >= 0)
		close(st->jr.fd);
	st->jr.fd = -1;
	store_unlock(st);
	close(lfd);
	return rc;
}

/*
 * Rotate once everything is imported and committed and the file is large
 * (mu held, no transaction open): a transaction of its own, so the old
 * file is replaced only after the trail holds all of its events.
 */
static int journal_maybe_rotate(struct store *st)
{
	uint8_t gen[16];
	int64_t done;
	bool found;
	int rc = 0;

	if (st->jr.fd < 0)
		return 0;
	pthread_mutex_lock(&st->jr.mu);
	if (st->jr.end >= store_journal_rotate_bytes && !st->jr.broken &&
	    journal_header(st, st->jr.fd, gen) == 0 && state_get(st, gen, &done, &found) == 0 &&
	    found && (uint64_t)done == st->jr.end && (rc = store_begin(st, true)) == 0) {
		rc = journal_rotate(st);
		if (rc == 0)
			rc = store_commit(st);
		else
			store_rollback(st);
	}
	pthread_mutex_unlock(&st->jr.mu);
	return rc;
}

/*
 * The daemon's tick: import in transactions of at most JOURNAL_TICK_MAX
 * events, so a change or a cache miss waiting for the handle waits for
 * one short transaction, not for a whole backlog.
 */
#define JOURNAL_TICK_MAX 1024

int store_journal_tick(struct store *st)
{
	bool more = true;
	int rc = 0;

	while (more && rc == 0) {
		store_lock(st);
		if (st->batch || st->gc_open) {
			store_unlock(st);      /* a transaction is open: the next tick imports */
			break;
		}
		if ((rc = store_begin(st, true))) {
			store_unlock(st);
			break;
		}
		/* the import writes only the trail and the journal's position: the read cache stays */
		uint8_t before[SQL_STAMP_BYTES];
		bool keep = store_cache_own_begin(st, before);
		rc = journal_import(st, JOURNAL_TICK_MAX, &more);
		if (rc == 0)
			rc = store_commit(st);
		else
			store_rollback(st);
		if (rc == 0 && keep)
			store_cache_own_commit(st, before);
		if (rc == 0 && !more)
			rc = journal_maybe_rotate(st);
		if (rc == -EBADMSG) {
			/*
			 * Events after a record that fails its check can never be
			 * chained: serve nothing more (fail closed) until the file
			 * is moved aside and the daemon restarted.
			 */
			pthread_mutex_lock(&st->jr.mu);
			st->jr.broken = true;
			pthread_mutex_unlock(&st->jr.mu);
		}
		store_unlock(st);
	}
	return rc ? (rc == -EBADMSG ? rc : store_fail_audit(rc)) : 0;
}

int store_journal_append(struct store *st, const struct store_event *ev, uint64_t *ticket)
{
	uint8_t stack[8192];
	struct jbuf b = { stack, 4, sizeof stack - JOURNAL_MAC, false };
	uint32_t n;
	ssize_t w;
	int rc = 0;

	encode_event(&b, ev);
	if (b.bad)
		return store_fail(-EIO, "cannot write the audit trail: the event is too large");
	n = (uint32_t)(b.len - 4);
	for (int i = 0; i < 4; i++)
		stack[i] = (uint8_t)(n >> (8 * i));
	pthread_mutex_lock(&st->jr.mu);
	if (st->jr.fd < 0 || st->jr.broken) {
		pthread_mutex_unlock(&st->jr.mu);
		return journal_unusable();
	}
	record_mac(st, st->jr.gen, st->jr.end, stack, b.len, stack + b.len);
	b.len += JOURNAL_MAC;
	w = pwrite(st->jr.fd, stack, b.len, (off_t)st->jr.end);
	if (w != (ssize_t)b.len) {
		int e = w < 0 ? errno : ENOSPC;
		/* no half record may stay: the next one would be read through it */
		if (w > 0 && ftruncate(st->jr.fd, (off_t)st->jr.end) < 0)
			st->jr.broken = true;
		rc = store_fail(-EIO, "cannot write the audit trail: %s",
				e == ENOSPC ? "database or disk is full" : strerror(e));
	} else {
		st->jr.end += b.len;
		*ticket = atomic_fetch_add(&st->jr.sync.ticket, 1) + 1;
	}
	pthread_mutex_unlock(&st->jr.mu);
	return rc;
}

/*
 * The syncer's sync: never takes jr.mu. A rotation holds jr.mu while it
 * waits for the sync in flight to end (journal_rotate), so taking it here
 * deadlocked every reader of a durability = power mount. The fd cannot
 * change meanwhile: rotation replaces it only while no sync is in flight.
 */
static int journal_fdatasync(struct store *st)
{
	if (atomic_load(&st->jr.broken))
		return journal_unusable();
	if (fdatasync(st->jr.fd) < 0) {
		int e = errno;
		/*
		 * After a writeback error a second fdatasync may well return 0
		 * with the records still lost: never try again on this file.
		 */
		atomic_store(&st->jr.broken, true);
		return store_fail(-EIO, "cannot sync the audit trail: %s", strerror(e));
	}
	atomic_fetch_add(&st->syncs, 1);
	return 0;
}

int store_journal_sync(struct store *st, uint64_t ticket)
{
	if (st->cfg.durability != STORE_DURABLE_POWER)
		return 0;
	return store_syncer_wait(st, &st->jr.sync, ticket, journal_fdatasync, true);
}

bool store_journal_serving(struct store *st)
{
	return atomic_load(&st->jr.serving);
}

void store_journal_close(struct store *st)
{
	atomic_store(&st->jr.serving, false);
	if (st->jr.fd >= 0)
		close(st->jr.fd);
	st->jr.fd = -1;
	if (st->jr.lock_fd >= 0)
		close(st->jr.lock_fd);
	st->jr.lock_fd = -1;
}

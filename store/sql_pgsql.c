/*
 * sql_pgsql.c - the PostgreSQL driver behind sql.h (libpq). It and
 * sql_pgsql_watch.c (the change listener) are the only files of store/
 * that call PQ*.
 *
 * One connection per store handle, named by a libpq conninfo or URI
 * ([store] conninfo). Statements the store keeps are prepared once per
 * connection on the server with the store's `?`/`?N` placeholders
 * rewritten to `$N`; others run as parameterised queries. Parameters are sent as text,
 * blobs in binary (bytea); results come back as text, bytea decoded from
 * its hex form here. SQLSTATEs become negative errnos here and nowhere
 * else (pgsql_errno).
 *
 * Outages: every request goes through pgsql_request, libpq's
 * asynchronous API with a poll() on the socket, and must be answered
 * within request_ms ([store] timeout, 2 s, for the mount; admin_timeout
 * for shadm) without a byte from the server, or the link is dropped
 * (PQfinish; the server ends the orphaned statement itself through
 * client_connection_check_interval). A connection is made within
 * connect_ms per host (libpq's connect_timeout, at least 2 s). A link
 * found broken (no SQLSTATE, the connection bad, no answer in time) is
 * made again, with the stored conninfo, by the next request outside a
 * transaction - so a multi-host conninfo with
 * target_session_attrs=read-write finds a promoted standby - at most
 * every PGSQL_RETRY_MS while the server stays away; kept statements are
 * prepared again lazily (a per-connection generation). Each new
 * connection is checked as open checks it (SQL_ASCII, synchronous_commit)
 * and must show the application id and schema version this handle saw.
 * A transaction whose link broke fails every request with -EIO until
 * the store rolls it back: nothing after the break runs outside it.
 * While no connection answers, down_since says since when and why
 * (one line naming host, port and dbname, never anything else of the
 * conninfo), for the mount to fail closed and log the outage once.
 *
 * Serialisation: SQLite's BEGIN IMMEDIATE lets one writer in at a time
 * and the store's read-modify-write code relies on that (uses counters,
 * the audit chain's tail). A write transaction here is READ COMMITTED
 * plus a transaction-scoped advisory lock taken first, so writers of
 * every host queue on that lock (for at most busy_ms, in turns of half
 * the request deadline, so waiting for the lock never looks like a hung
 * server) and each one sees every earlier commit. A read transaction is REPEATABLE
 * READ: one snapshot throughout, as sql.h promises.
 *
 * Bytes: the store's text is byte strings (an executable's path may be
 * any bytes but NUL), chained as they are; a UTF8 database refuses
 * some of them, and one refused audit event would stop the trail. So
 * the database must be SQL_ASCII (no validation, no conversion), and
 * open refuses any other.
 *
 * Durability: a commit returns once the server has it on disk with
 * synchronous_commit on (or local, remote_*); a server with it off could
 * lose audit events it acknowledged, so open refuses it. sql_sync has
 * nothing left to do. Across a failover the same holds only if the
 * promoted standby was a synchronous one (synchronous_standby_names):
 * an asynchronous one may lack the primary's last commits.
 *
 * The schema's version and the application id live in a small table,
 * scopehold_meta(key, value), instead of SQLite's header. The schema is
 * this file's own text of each migration (pgsql_migrations), kept in
 * step with db.c's.
 *
 * Freshness (watch_start/watch_stamp, sql_pgsql_watch.c): other hosts'
 * commits cannot be seen in memory, so schema 11 numbers and notifies
 * every change to a table the mount's read cache answers from, a mount
 * listens and holds a lease (PGSQL_LEASE_MS, 2 s) in scopehold_hosts,
 * and uses its cache only while that lease lasts; the commit of a write
 * that made a change (pgsql_commit) returns only once every host with a
 * live lease has acknowledged it, or at most the lease plus a second
 * later. So a revoke made on any host is obeyed at the next open on every
 * host once shadm has returned, and a host whose listener is down reads
 * the database at every open (and fails closed when that is down too).
 *
 * Not implemented on purpose: bulk, checkpoint, remove. PostgreSQL has
 * no file beside the store to clean, and freed tuples are the server's
 * to vacuum (a
 * destroyed version's old ciphertext stays in dead tuples and WAL until
 * then; docs/security.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libpq-fe.h>

#include "store/sql.h"
#include "store/sql_pgsql_watch.h"

/* The advisory lock key every writer of a ScopeHold database takes ("ScopeHld"). */
#define PGSQL_WRITE_LOCK "6866391294498884708"
#define PGSQL_BYTEA_OID 17

/* After a failed connection attempt, the next one waits this long (an outage costs no storm). */
#define PGSQL_RETRY_MS 500

struct pgsql_db {
	struct sql_db api;
	PGconn *c;                    /* NULL while the link is down */
	char *conninfo;               /* kept to reconnect (never a password: pgsql_check) */
	char server[256];             /* host=... port=... dbname=..., for messages */
	int busy_ms, connect_ms, request_ms;
	unsigned gen;                 /* connections made so far (kept statements of an older one: again) */
	bool tx;                      /* a transaction is open (or was, when the link broke) */
	int64_t retry_at;             /* monotonic ms: no connection attempt before */
	int64_t down_since;           /* time(): the link was found broken; 0 while it is up */
	char down_why[512];           /* the error that began the outage */
	bool meta_known[2];           /* the store's values seen on this handle, checked on reconnect */
	int64_t meta[2];
	unsigned next;                /* names the next kept statement */
	int64_t changes;
	char err[512];
	struct pgsql_watch *watch;    /* the change listener of a mount (watch_start) */
	bool writing;                 /* in a write transaction: its commit may be a change */
};

struct pgsql_stmt {
	struct sql_stmt api;
	char *sql;                    /* rewritten to $N; for PQexecParams */
	char name[24];                /* "" = not prepared on the server */
	unsigned gen;                 /* the connection it was prepared on (pgsql_db.gen) */
	int n;                        /* parameters */
	const char **vals;
	int *lens, *fmts;
	char (*num)[24];              /* text of integer parameters */
	PGresult *res;
	int row, rows, cols;
	unsigned char **blob;         /* decoded bytea of the current row, per column */
	size_t *blen;
};

#define DB(db) ((struct pgsql_db *)(db))
#define ST(st) ((struct pgsql_stmt *)(st))

static void pgsql_set_error(struct pgsql_db *d, const char *msg)
{
	size_t n;

	snprintf(d->err, sizeof d->err, "%s", msg && *msg ? msg : "unknown PostgreSQL error");
	/* libpq's messages end in a newline and may carry DETAIL lines: keep the first */
	n = strcspn(d->err, "\n");
	d->err[n] = '\0';
	if (strncmp(d->err, "ERROR:  ", 8) == 0)
		memmove(d->err, d->err + 8, strlen(d->err + 8) + 1);
}

/* The error line from parts of our own (cut to fit, as every error line is). */
static void pgsql_errorf(struct pgsql_db *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->err, sizeof d->err, fmt, ap);
	va_end(ap);
}

/*
 * SQLSTATE classes to errno, as sqlite_errno does for SQLite's codes: a
 * constraint violation (23xxx) is -EIO as SQLite's constraint error is
 * (the store checks for duplicates itself and says so before inserting),
 * a full disk stays recognisable, a refused login or privilege is
 * -EACCES, a lock not had within busy_ms is -EBUSY.
 */
static int pgsql_errno(const PGresult *r)
{
	const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	if (!s)
		return -EIO;          /* no SQLSTATE: the connection itself failed */
	if (strcmp(s, "53100") == 0)
		return -ENOSPC;
	if (strcmp(s, "53200") == 0)
		return -ENOMEM;
	if (strncmp(s, "28", 2) == 0 || strcmp(s, "42501") == 0)
		return -EACCES;
	if (strcmp(s, "55P03") == 0)
		return -EBUSY;
	if (strncmp(s, "XX", 2) == 0)
		return -EBADMSG;
	return -EIO;
}

/* The server's notices (a skipped CREATE ... IF NOT EXISTS) are not the user's business. */
static void pgsql_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static int pgsql_exec(struct sql_db *db, const char *sql);
static void pgsql_rollback(struct sql_db *db);

/* The result of a command: 0, or -errno with the server's words kept. */
static int pgsql_result(struct pgsql_db *d, PGresult *r)
{
	ExecStatusType t = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	if (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK)
		return 0;
	pgsql_set_error(d, r ? PQresultErrorMessage(r) : d->c ? PQerrorMessage(d->c) : NULL);
	return pgsql_errno(r);
}

/* ---- the link: connect, reconnect, a deadline on every request ------------ */

static int64_t pgsql_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * The link is gone (a request failed with no SQLSTATE, the connection
 * went bad, no answer came in time, or no connection could be made):
 * drop it, keep one line naming the server and libpq's reason, and note
 * when the outage began. A transaction it carried stays "open" (d->tx)
 * until the store rolls it back, so nothing after the break runs outside
 * it. Returns rc.
 */
static int pgsql_lost(struct pgsql_db *d, int rc, const char *why, int retry_ms)
{
	char reason[384];

	snprintf(reason, sizeof reason, "%s", why && *why ? why : "the connection was lost");
	reason[strcspn(reason, "\n")] = '\0';
	pgsql_errorf(d, "cannot reach the database (%s): %s", d->server, reason);
	if (!d->down_since) {
		d->down_since = (int64_t)time(NULL);
		snprintf(d->down_why, sizeof d->down_why, "%s", d->err);
	}
	PQfinish(d->c);
	d->c = NULL;
	d->retry_at = pgsql_now_ms() + retry_ms;
	return rc;
}

/* One-row, one-column query; its text copied into out. */
static int pgsql_query1(struct pgsql_db *d, const char *sql, const char *param,
			char *out, size_t cap);

static const char *const pgsql_meta_key[] = {
	[SQL_META_APPLICATION_ID] = "application_id",
	[SQL_META_SCHEMA_VERSION] = "schema_version",
};

/*
 * The session the store relies on, and the server-side settings open
 * refuses, checked on every connection (a standby promoted after a
 * failover is another server, with settings of its own). On a
 * reconnect, the store's application id and schema version must also be
 * those this handle saw: a conninfo whose next host is another store, or
 * a schema migrated during the outage, is refused rather than served.
 */
static int pgsql_setup(struct pgsql_db *d)
{
	char sql[160], v[64];
	int rc;

	PQsetNoticeProcessor(d->c, pgsql_notice, NULL);
	if (PQsetnonblocking(d->c, 1) != 0) {
		pgsql_set_error(d, PQerrorMessage(d->c));
		return -EIO;
	}
	snprintf(sql, sizeof sql, "SET lock_timeout = %d; SET client_min_messages = warning;"
		 " SET client_encoding = 'SQL_ASCII'", d->busy_ms);
	if ((rc = pgsql_exec(&d->api, sql)))
		return rc;
	/*
	 * A request given up on closes the link; this makes the server stop
	 * the statement too (PostgreSQL >= 14; older servers lack it: ignored).
	 */
	snprintf(sql, sizeof sql, "SET client_connection_check_interval = %d", d->request_ms);
	if ((rc = pgsql_exec(&d->api, sql)) && !d->c)
		return rc;
	if ((rc = pgsql_query1(d, "SHOW server_encoding", NULL, v, sizeof v)))
		return rc;
	if (strcmp(v, "SQL_ASCII") != 0) {
		pgsql_set_error(d, "the database's encoding is not SQL_ASCII: the store keeps paths"
				" byte for byte (create it with ENCODING 'SQL_ASCII' TEMPLATE template0)");
		return -EPROTO;
	}
	if ((rc = pgsql_query1(d, "SHOW synchronous_commit", NULL, v, sizeof v)))
		return rc;
	if (strcmp(v, "off") == 0) {
		pgsql_set_error(d, "the server has synchronous_commit = off: acknowledged audit events "
				"could be lost; set it to on");
		return -EPROTO;
	}
	for (int m = 0; m < 2; m++) {
		char q[96];
		if (!d->meta_known[m])
			continue;
		snprintf(q, sizeof q, "SELECT value FROM scopehold_meta WHERE key = '%s'",
			 pgsql_meta_key[m]);
		if ((rc = pgsql_query1(d, q, NULL, v, sizeof v)))
			return rc;
		if (strtoll(v, NULL, 10) != d->meta[m]) {
			snprintf(sql, sizeof sql, "the database has %s %s, not %" PRId64
				 " as when this program opened it", pgsql_meta_key[m], v[0] ? v : "(none)",
				 d->meta[m]);
			pgsql_set_error(d, sql);
			return -EPROTO;
		}
	}
	return 0;
}

/*
 * Connect (again) with the stored conninfo: every host of a multi-host
 * conninfo in turn, each within connect_ms (libpq's connect_timeout,
 * whole seconds, at least 2; a conninfo's own connect_timeout wins), so
 * target_session_attrs=read-write finds a promoted standby. Attempts
 * are spaced PGSQL_RETRY_MS apart: inside that, the last failure is
 * returned at once. Kept statements are prepared again lazily (gen).
 */
static int pgsql_connect(struct pgsql_db *d)
{
	int whole = (d->connect_ms + 999) / 1000;
	char secs[16];
	const char *keys[] = { "connect_timeout", "dbname", NULL };
	const char *vals[] = { secs, d->conninfo, NULL };
	int rc;

	if (pgsql_now_ms() < d->retry_at) {
		snprintf(d->err, sizeof d->err, "%s", d->down_why[0] ? d->down_why :
			 "cannot reach the database");
		return -ECONNREFUSED;
	}
	PQfinish(d->c);
	snprintf(secs, sizeof secs, "%d", whole < 2 ? 2 : whole);
	d->c = PQconnectdbParams(keys, vals, 1);
	if (!d->c)
		return pgsql_lost(d, -ENOMEM, "out of memory", PGSQL_RETRY_MS);
	if (PQstatus(d->c) != CONNECTION_OK)
		return pgsql_lost(d, -ECONNREFUSED, PQerrorMessage(d->c), PGSQL_RETRY_MS);
	d->gen++;
	if ((rc = pgsql_setup(d))) {
		/*
		 * A server that answers but is refused (a setting, another
		 * store, a schema migrated meanwhile) serves nothing either; its
		 * reason, in its own words, begins a new outage when it differs
		 * from the last one, so the mount logs why it stays closed.
		 */
		char why[sizeof d->err];
		int64_t t = (int64_t)time(NULL);
		if (!d->c)
			return rc;            /* the link broke during the setup: said already */
		snprintf(why, sizeof why, "%s", d->err);
		PQfinish(d->c);
		d->c = NULL;
		d->retry_at = pgsql_now_ms() + PGSQL_RETRY_MS;
		if (strcmp(why, d->down_why) != 0) {
			d->down_since = t > d->down_since ? t : d->down_since + 1;
			snprintf(d->down_why, sizeof d->down_why, "%s", why);
		}
		snprintf(d->err, sizeof d->err, "%s", why);
		return rc;
	}
	d->down_since = 0;
	d->down_why[0] = '\0';
	return 0;
}

/*
 * A live link for the next request: the current one, else (no
 * transaction open) a new one. A transaction whose link broke fails
 * every request with -EIO until the store rolls it back.
 */
static int pgsql_link(struct pgsql_db *d)
{
	if (d->c && PQstatus(d->c) == CONNECTION_OK)
		return 0;
	if (d->tx) {
		if (d->c)
			pgsql_lost(d, 0, PQerrorMessage(d->c), 0);
		pgsql_errorf(d, "%s (the transaction was lost with the connection)",
			     d->down_why[0] ? d->down_why : "cannot reach the database");
		return -EIO;
	}
	return pgsql_connect(d);
}

/* How a request is sent (pgsql_request). */
enum pgsql_send { PGSQL_SEND_QUERY, PGSQL_SEND_PARAMS, PGSQL_SEND_PREPARED, PGSQL_SEND_PREPARE };

struct pgsql_req {
	enum pgsql_send how;
	const char *sql;              /* QUERY, PARAMS, PREPARE */
	const char *name;             /* PREPARED, PREPARE */
	int n;
	const char *const *vals;
	const int *lens, *fmts;
};

/*
 * Send one request and wait for its whole answer with a deadline:
 * request_ms without a byte from the server ends it (the
 * deadline moves on while the answer streams in, so a long result is
 * not cut). Several statements in one text answer as PQexec does: the
 * first error, else the last result. 0 with *out set, or -errno with
 * the error kept: -ETIMEDOUT (no answer), -ECONNRESET (the link broke
 * outside a transaction), -EIO (it broke inside one), -ECONNREFUSED (no
 * connection could be made), or the server's error as pgsql_errno says.
 */
static int pgsql_request(struct pgsql_db *d, const struct pgsql_req *q, PGresult **out)
{
	PGresult *keep = NULL, *r;
	int64_t deadline;
	int sent, flushing = 1, rc;

	*out = NULL;
	if ((rc = pgsql_link(d)))
		return rc;
	switch (q->how) {
	case PGSQL_SEND_QUERY:
		sent = PQsendQuery(d->c, q->sql);
		break;
	case PGSQL_SEND_PARAMS:
		sent = PQsendQueryParams(d->c, q->sql, q->n, NULL, q->vals, q->lens, q->fmts, 0);
		break;
	case PGSQL_SEND_PREPARED:
		sent = PQsendQueryPrepared(d->c, q->name, q->n, q->vals, q->lens, q->fmts, 0);
		break;
	default:
		sent = PQsendPrepare(d->c, q->name, q->sql, 0, NULL);
		break;
	}
	if (!sent)
		goto broken;
	deadline = pgsql_now_ms() + d->request_ms;
	for (;;) {
		struct pollfd p;
		int64_t now, left;
		int n;

		if (flushing && (flushing = PQflush(d->c)) < 0)
			goto broken;
		if (!flushing && !PQisBusy(d->c)) {
			if (!(r = PQgetResult(d->c)))
				break;
			if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
				PQclear(r);
			} else {
				PQclear(keep);
				keep = r;
			}
			continue;
		}
		now = pgsql_now_ms();
		if ((left = deadline - now) <= 0) {
			char why[64];
			PQclear(keep);
			snprintf(why, sizeof why, "no answer within %d ms", d->request_ms);
			rc = d->tx ? -EIO : -ETIMEDOUT;
			/* the next request fails at once, not after another wait */
			return pgsql_lost(d, rc, why, PGSQL_RETRY_MS);
		}
		p.fd = PQsocket(d->c);
		p.events = POLLIN | (flushing ? POLLOUT : 0);
		p.revents = 0;
		if (p.fd < 0)
			goto broken;
		n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n < 0 && errno != EINTR)
			goto broken;
		if (n > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP))) {
			if (!PQconsumeInput(d->c))
				goto broken;
			if (now + d->request_ms > deadline)
				deadline = now + d->request_ms;   /* the answer is streaming in */
		}
	}
	/*
	 * An error without a SQLSTATE is libpq's own (the link); a server
	 * that ends the session (shutdown, 57P01) leaves it bad too.
	 */
	if (PQstatus(d->c) != CONNECTION_OK ||
	    (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR &&
	     !PQresultErrorField(keep, PG_DIAG_SQLSTATE))) {
		char why[384];
		snprintf(why, sizeof why, "%s", keep ? PQresultErrorMessage(keep) : PQerrorMessage(d->c));
		PQclear(keep);
		return pgsql_lost(d, d->tx ? -EIO : -ECONNRESET, why, 0);
	}
	if ((rc = pgsql_result(d, keep))) {
		PQclear(keep);
		return rc;
	}
	*out = keep;
	return 0;
broken:
	PQclear(keep);
	return pgsql_lost(d, d->tx ? -EIO : -ECONNRESET, PQerrorMessage(d->c), 0);
}

static int pgsql_exec(struct sql_db *db, const char *sql)
{
	struct pgsql_req q = { .how = PGSQL_SEND_QUERY, .sql = sql };
	PGresult *r;
	int rc = pgsql_request(DB(db), &q, &r);

	PQclear(r);
	return rc;
}

static int pgsql_query1(struct pgsql_db *d, const char *sql, const char *param,
			char *out, size_t cap)
{
	struct pgsql_req q = { .how = PGSQL_SEND_PARAMS, .sql = sql, .n = param ? 1 : 0,
			       .vals = &param };
	PGresult *r;
	int rc = pgsql_request(d, &q, &r);

	out[0] = '\0';
	if (rc == 0 && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return rc;
}

/* "host=... port=... dbname=..." from the conninfo: names the server, never anything else. */
static void pgsql_server_name(struct pgsql_db *d, const char *target)
{
	static const char *const shown[] = { "host", "hostaddr", "port", "dbname" };
	PQconninfoOption *o = PQconninfoParse(target, NULL);
	size_t len = 0;

	d->server[0] = '\0';
	for (size_t i = 0; o && i < sizeof shown / sizeof shown[0]; i++) {
		for (PQconninfoOption *p = o; p->keyword; p++) {
			if (strcmp(p->keyword, shown[i]) != 0 || !p->val || !*p->val)
				continue;
			int n = snprintf(d->server + len, sizeof d->server - len, "%s%s=%s",
					 len ? " " : "", p->keyword, p->val);
			if (n > 0 && (size_t)n < sizeof d->server - len)
				len += (size_t)n;
		}
	}
	PQconninfoFree(o);
	if (!len)
		snprintf(d->server, sizeof d->server, "libpq's default server");
}

static int pgsql_open(const char *target, bool create, int busy_ms, int connect_ms,
		      int request_ms, struct sql_db **out)
{
	struct pgsql_db *d = calloc(1, sizeof *d);
	char v[160];
	int rc;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	d->api.drv = &sql_driver_pgsql;
	*out = &d->api;
	d->busy_ms = busy_ms;
	d->connect_ms = connect_ms > 0 ? connect_ms : 2000;
	d->request_ms = request_ms > 0 ? request_ms : 2000;
	if (!(d->conninfo = strdup(target)))
		return -ENOMEM;
	pgsql_server_name(d, target);
	if ((rc = pgsql_connect(d)) || !create)
		return rc;
	/*
	 * A new store goes into a database its owner made for it (createdb):
	 * one holding tables of something else is refused before anything is
	 * written, rather than mixed with ours or failed half-way on a name
	 * both use. One that holds a store already is the caller's to name.
	 */
	if ((rc = pgsql_query1(d, "SELECT count(*) || ' ' || min(quote_ident(c.relname)) FROM pg_class c"
			       " WHERE c.relnamespace = current_schema()::regnamespace"
			       " AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')"
			       " AND c.relname <> 'scopehold_meta'"
			       " AND to_regclass('scopehold_meta') IS NULL", NULL, v, sizeof v)))
		return rc;
	long n = strtol(v, NULL, 10);
	if (n > 0) {
		const char *first = strchr(v, ' ');
		pgsql_errorf(d, "the database is not empty (%ld relation%s, among them %s): create the"
			     " store in a database of its own", n, n == 1 ? "" : "s",
			     first ? first + 1 : "?");
		return -EEXIST;
	}
	return 0;
}

static void pgsql_close(struct sql_db *db)
{
	pgsql_watch_stop(DB(db)->watch);
	PQfinish(DB(db)->c);
	free(DB(db)->conninfo);
	free(db);
}

static const char *pgsql_error(struct sql_db *db)
{
	return DB(db)->err[0] ? DB(db)->err : "not an error";
}

/* Since when (time()) the link has been down, 0 while up; the reason that began it in why. */
static int64_t pgsql_down_since(struct sql_db *db, char *why, size_t cap)
{
	struct pgsql_db *d = DB(db);

	if (why && cap)
		snprintf(why, cap, "%s", d->down_since ? d->down_why : "");
	return d->down_since;
}

/*
 * `?` and `?N` to `$N` outside quoted strings and identifiers; a bare
 * `?` takes the number after the largest seen so far, as in SQLite.
 */
static char *pgsql_rewrite(const char *sql, int *nparams)
{
	size_t len = strlen(sql);
	char *out = malloc(len * 4 + 1), *o = out;
	int max = 0;
	char q = 0;

	if (!out)
		return NULL;
	for (const char *p = sql; *p; p++) {
		if (q) {
			if (*p == q)
				q = 0;
			*o++ = *p;
		} else if (*p == '\'' || *p == '"') {
			q = *p;
			*o++ = *p;
		} else if (*p == '?') {
			int n = 0;
			while (p[1] >= '0' && p[1] <= '9')
				n = n * 10 + (*++p - '0');
			if (n == 0)
				n = max + 1;
			if (n > max)
				max = n;
			o += sprintf(o, "$%d", n);
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	*nparams = max;
	return out;
}

static void pgsql_blobs_free(struct pgsql_stmt *s)
{
	for (int i = 0; s->blob && i < s->cols; i++) {
		free(s->blob[i]);
		s->blob[i] = NULL;
	}
}

static void pgsql_finalize(struct sql_stmt *st)
{
	struct pgsql_stmt *s = ST(st);

	pgsql_blobs_free(s);
	PQclear(s->res);
	free(s->blob);
	free(s->blen);
	free(s->sql);
	free(s->vals);
	free(s->lens);
	free(s->fmts);
	free(s->num);
	free(s);
}

static int pgsql_prepare(struct sql_db *db, const char *sql, bool keep, struct sql_stmt **out)
{
	struct pgsql_db *d = DB(db);
	struct pgsql_stmt *s = calloc(1, sizeof *s);
	int n = 0, rc;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->api.db = db;
	s->sql = pgsql_rewrite(sql, &n);
	s->n = n;
	s->vals = calloc((size_t)n + 1, sizeof *s->vals);
	s->lens = calloc((size_t)n + 1, sizeof *s->lens);
	s->fmts = calloc((size_t)n + 1, sizeof *s->fmts);
	s->num = calloc((size_t)n + 1, sizeof *s->num);
	if (!s->sql || !s->vals || !s->lens || !s->fmts || !s->num) {
		pgsql_finalize(&s->api);
		return -ENOMEM;
	}
	if (keep) {
		struct pgsql_req q = { .how = PGSQL_SEND_PREPARE, .sql = s->sql, .name = s->name };
		PGresult *r;
		snprintf(s->name, sizeof s->name, "sh%u", ++d->next);
		rc = pgsql_request(d, &q, &r);
		PQclear(r);
		if (rc) {
			pgsql_finalize(&s->api);
			return rc;
		}
		s->gen = d->gen;
	}
	*out = &s->api;
	return 0;
}

static int pgsql_bind_check(struct pgsql_stmt *s, int i)
{
	if (i < 1 || i > s->n) {
		pgsql_set_error(DB(s->api.db), "parameter index out of range");
		return -ERANGE;
	}
	return 0;
}

static int pgsql_bind_int64(struct sql_stmt *st, int i, int64_t v)
{
	struct pgsql_stmt *s = ST(st);
	int rc = pgsql_bind_check(s, i);

	if (rc)
		return rc;
	snprintf(s->num[i - 1], sizeof s->num[i - 1], "%" PRId64, v);
	s->vals[i - 1] = s->num[i - 1];
	s->fmts[i - 1] = 0;
	return 0;
}

static int pgsql_bind_text(struct sql_stmt *st, int i, const char *v)
{
	struct pgsql_stmt *s = ST(st);
	int rc = pgsql_bind_check(s, i);

	if (rc)
		return rc;
	s->vals[i - 1] = v;
	s->fmts[i - 1] = 0;
	return 0;
}

static int pgsql_bind_blob(struct sql_stmt *st, int i, const void *v, size_t len)
{
	struct pgsql_stmt *s = ST(st);
	int rc = pgsql_bind_check(s, i);

	if (rc)
		return rc;
	if (len > INT32_MAX)
		return -E2BIG;
	/* a zero-length blob is not NULL: any valid pointer */
	s->vals[i - 1] = v ? v : (len == 0 ? "" : NULL);
	s->lens[i - 1] = (int)len;
	s->fmts[i - 1] = 1;
	return 0;
}

static int pgsql_bind_null(struct sql_stmt *st, int i)
{
	struct pgsql_stmt *s = ST(st);
	int rc = pgsql_bind_check(s, i);

	if (rc)
		return rc;
	s->vals[i - 1] = NULL;
	return 0;
}

static int pgsql_step(struct sql_stmt *st)
{
	struct pgsql_stmt *s = ST(st);
	struct pgsql_db *d = DB(st->db);
	int rc;

	if (s->res) {
		pgsql_blobs_free(s);
		return ++s->row < s->rows ? SQL_ROW : SQL_DONE;
	}
	if (s->name[0]) {
		struct pgsql_req q = { .how = PGSQL_SEND_PREPARED, .name = s->name, .n = s->n,
				       .vals = s->vals, .lens = s->lens, .fmts = s->fmts };
		/* a reconnect, if one is due, before asking which connection this is */
		if ((rc = pgsql_link(d)))
			return rc;
		if (s->gen != d->gen) {
			/* prepared on a connection since lost: again on this one, first */
			struct pgsql_req p = { .how = PGSQL_SEND_PREPARE, .sql = s->sql, .name = s->name };
			PGresult *r;
			rc = pgsql_request(d, &p, &r);
			PQclear(r);
			if (rc)
				return rc;
			s->gen = d->gen;
		}
		rc = pgsql_request(d, &q, &s->res);
	} else {
		struct pgsql_req q = { .how = PGSQL_SEND_PARAMS, .sql = s->sql, .n = s->n,
				       .vals = s->vals, .lens = s->lens, .fmts = s->fmts };
		rc = pgsql_request(d, &q, &s->res);
	}
	if (rc)
		return rc;
	d->changes = strtoll(PQcmdTuples(s->res), NULL, 10);
	s->row = 0;
	s->rows = PQntuples(s->res);
	if (PQnfields(s->res) > s->cols) {
		free(s->blob);
		free(s->blen);
		s->cols = PQnfields(s->res);
		s->blob = calloc((size_t)s->cols, sizeof *s->blob);
		s->blen = calloc((size_t)s->cols, sizeof *s->blen);
		if (!s->blob || !s->blen) {
			s->cols = 0;
			return -ENOMEM;
		}
	}
	return s->rows > 0 ? SQL_ROW : SQL_DONE;
}

static bool pgsql_have(struct pgsql_stmt *s, int i)
{
	return s->res && s->row < s->rows && i >= 0 && i < PQnfields(s->res) &&
	       !PQgetisnull(s->res, s->row, i);
}

static int64_t pgsql_column_int64(struct sql_stmt *st, int i)
{
	struct pgsql_stmt *s = ST(st);
	const char *v;

	if (!pgsql_have(s, i))
		return 0;
	v = PQgetvalue(s->res, s->row, i);
	if (v[0] == 't' || v[0] == 'f')        /* a boolean expression */
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

static const char *pgsql_column_text(struct sql_stmt *st, int i)
{
	struct pgsql_stmt *s = ST(st);

	return pgsql_have(s, i) ? PQgetvalue(s->res, s->row, i) : NULL;
}

static int pgsql_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A bytea column's bytes (hex output, PostgreSQL's default since 9.0), decoded once per row. */
static int pgsql_blob_load(struct pgsql_stmt *s, int i)
{
	const char *v;
	size_t n;

	if (!pgsql_have(s, i))
		return -1;
	if (PQftype(s->res, i) != PGSQL_BYTEA_OID)
		return 0;
	if (s->blob[i])
		return 1;
	v = PQgetvalue(s->res, s->row, i);
	if (v[0] != '\\' || v[1] != 'x')
		return -1;
	n = strlen(v + 2) / 2;
	s->blob[i] = malloc(n + 1);
	if (!s->blob[i])
		return -1;
	for (size_t k = 0; k < n; k++) {
		int hi = pgsql_hex(v[2 + 2 * k]), lo = pgsql_hex(v[3 + 2 * k]);
		if (hi < 0 || lo < 0) {
			free(s->blob[i]);
			s->blob[i] = NULL;
			return -1;
		}
		s->blob[i][k] = (unsigned char)(hi << 4 | lo);
	}
	s->blen[i] = n;
	return 1;
}

static const void *pgsql_column_blob(struct sql_stmt *st, int i)
{
	struct pgsql_stmt *s = ST(st);
	int k = pgsql_blob_load(s, i);

	if (k < 0)
		return NULL;
	if (k == 0)
		return PQgetvalue(s->res, s->row, i);
	return s->blen[i] ? s->blob[i] : NULL;   /* as SQLite: an empty blob reads as NULL */
}

static int pgsql_column_bytes(struct sql_stmt *st, int i)
{
	struct pgsql_stmt *s = ST(st);
	int k = pgsql_blob_load(s, i);

	if (k < 0)
		return 0;
	if (k == 0)
		return PQgetlength(s->res, s->row, i);
	return (int)s->blen[i];
}

static bool pgsql_column_is_null(struct sql_stmt *st, int i)
{
	return !pgsql_have(ST(st), i);
}

static void pgsql_reset(struct sql_stmt *st)
{
	struct pgsql_stmt *s = ST(st);

	pgsql_blobs_free(s);
	PQclear(s->res);
	s->res = NULL;
	s->row = s->rows = 0;
}

static void pgsql_clear_bindings(struct sql_stmt *st)
{
	struct pgsql_stmt *s = ST(st);

	for (int i = 0; i < s->n; i++) {
		s->vals[i] = NULL;
		s->lens[i] = 0;
		s->fmts[i] = 0;
	}
}

static int64_t pgsql_changes(struct sql_db *db)
{
	return DB(db)->changes;
}

/*
 * A write transaction waits for the write lock up to busy_ms, in turns:
 * each turn is one request in a savepoint, with lock_timeout set to half
 * the request deadline, so the server answers every turn within the
 * deadline even while a writer of another host holds the lock (a hung
 * server is noticed within request_ms, not busy_ms). A turn that times
 * out on the lock is rolled back to its savepoint and the next one
 * queues again. The BEGIN is the one request sent again when the link
 * turns out to have broken while idle (the server restarted): nothing had
 * started, so a restart between two opens costs no open an error.
 */
static int pgsql_begin(struct sql_db *db, bool write)
{
	struct pgsql_db *d = DB(db);
	struct pgsql_req q = {
		.how = PGSQL_SEND_QUERY,
		.sql = write ? "BEGIN ISOLATION LEVEL READ COMMITTED"
			     : "BEGIN ISOLATION LEVEL REPEATABLE READ",
	};
	int64_t until = pgsql_now_ms() + d->busy_ms;
	PGresult *r;
	bool was_up = d->c != NULL;
	int rc = pgsql_request(d, &q, &r);

	if (rc == -ECONNRESET && was_up)
		rc = pgsql_request(d, &q, &r);
	PQclear(r);
	if (rc)
		return rc;
	d->tx = true;
	d->writing = write;
	while (write) {
		char turn[256];
		int64_t left = until - pgsql_now_ms();
		int wait = d->request_ms / 2;
		if (left < wait)
			wait = left < 1 ? 1 : (int)left;
		snprintf(turn, sizeof turn, "SAVEPOINT sh_lock; SET LOCAL lock_timeout = %d;"
			 " SELECT pg_advisory_xact_lock(" PGSQL_WRITE_LOCK ");"
			 " SET LOCAL lock_timeout = %d; RELEASE sh_lock", wait, d->busy_ms);
		q.sql = turn;
		if ((rc = pgsql_request(d, &q, &r)) == 0) {
			PQclear(r);
			break;
		}
		if (rc != -EBUSY || left <= wait || pgsql_exec(db, "ROLLBACK TO sh_lock")) {
			pgsql_rollback(db);
			return rc;
		}
	}
	return 0;
}

/*
 * In a write transaction, just before COMMIT: the change number its
 * statements took (the schema's trigger sets it; 0: none of the tables
 * mounts cache was touched).
 */
static int pgsql_change_taken(struct pgsql_db *d, int64_t *change)
{
	char v[32];
	int rc = pgsql_query1(d, "SELECT current_setting('scopehold.change', true)", NULL, v, sizeof v);

	*change = rc == 0 && v[0] ? strtoll(v, NULL, 10) : 0;
	return rc;
}

/*
 * After change committed: a mount's own connection drops its cache and
 * goes on; any other waits until every host holding a live lease has
 * acknowledged the change or lost its lease (PGSQL_LEASE_MS), polling
 * fast first since a listener answers within a millisecond or two.
 * -ETIMEDOUT if a host still holds a lease without acknowledging after
 * the bound plus slack; the change is committed either way.
 */
static int pgsql_acked(struct pgsql_db *d, int64_t change)
{
	int64_t deadline = pgsql_now_ms() + PGSQL_LEASE_MS + PGSQL_LEASE_SLACK_MS;
	char n[24], v[32];
	int rc;

	if (d->watch) {
		pgsql_watch_own_change(d->watch);
		return 0;
	}
	snprintf(n, sizeof n, "%" PRId64, change);
	for (int i = 0;; i++) {
		long left;

		if ((rc = pgsql_query1(d, "SELECT count(*) FROM scopehold_hosts"
				       " WHERE acked < $1 AND lease_until > clock_timestamp()",
				       n, v, sizeof v))) {
			char why[sizeof d->err];

			snprintf(why, sizeof why, "%s", d->err);
			pgsql_errorf(d, "the change is committed, but whether every host has seen it is"
				     " unknown: %s", why);
			return rc;
		}
		if ((left = strtol(v, NULL, 10)) == 0)
			return 0;
		if (pgsql_now_ms() >= deadline) {
			pgsql_errorf(d, "the change is committed, but %ld host%s holding a lease did not"
				     " acknowledge it within %d ms", left, left == 1 ? "" : "s",
				     PGSQL_LEASE_MS + PGSQL_LEASE_SLACK_MS);
			return -ETIMEDOUT;
		}
		nanosleep(&(struct timespec){ .tv_nsec = i < 20 ? 200000 : 1000000 }, NULL);
	}
}

/*
 * A COMMIT of a transaction that had failed is a ROLLBACK: that is a
 * failure too. A link lost during the COMMIT leaves its outcome unknown
 * (-EIO): whatever must happen exactly once keeps its own progress in
 * the transaction (the journal's offset), so a retry finds out. A write
 * that changed what mounts cache returns once every mount has seen it
 * (pgsql_acked, sql_pgsql_watch.c).
 */
static int pgsql_commit(struct sql_db *db)
{
	struct pgsql_db *d = DB(db);
	struct pgsql_req q = { .how = PGSQL_SEND_QUERY, .sql = "COMMIT" };
	int64_t change = 0;
	PGresult *r;
	int rc;

	if (d->writing && (rc = pgsql_change_taken(d, &change))) {
		pgsql_rollback(db);
		return rc;
	}
	d->writing = false;
	rc = pgsql_request(d, &q, &r);
	d->tx = false;
	if (rc == 0 && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
		pgsql_set_error(d, "the transaction was rolled back");
		rc = -EIO;
	}
	PQclear(r);
	if (rc == 0 && change > 0)
		rc = pgsql_acked(d, change);
	return rc;
}

static bool pgsql_in_transaction(struct sql_db *db)
{
	return DB(db)->tx;
}

/* Without a link the server has rolled it back already; only the flag is left to clear. */
static void pgsql_rollback(struct sql_db *db)
{
	struct pgsql_db *d = DB(db);

	d->writing = false;

	if (d->tx && d->c && PQstatus(d->c) == CONNECTION_OK)
		(void)pgsql_exec(db, "ROLLBACK");
	d->tx = false;
}

/* 0 for a database without the table yet: an empty database is a new store. */
static int pgsql_meta_get(struct sql_db *db, enum sql_meta m, int64_t *v)
{
	struct pgsql_db *d = DB(db);
	char out[32];
	int rc;

	*v = 0;
	if ((rc = pgsql_query1(d, "SELECT to_regclass('scopehold_meta') IS NOT NULL", NULL,
			       out, sizeof out)))
		return rc;
	if (strcmp(out, "t") != 0)
		return 0;
	rc = pgsql_query1(d, "SELECT value FROM scopehold_meta WHERE key = $1",
			  pgsql_meta_key[m], out, sizeof out);
	if (rc == 0) {
		*v = strtoll(out, NULL, 10);
		d->meta[m] = *v;
		d->meta_known[m] = true;
	}
	return rc;
}

static int pgsql_meta_set(struct sql_db *db, enum sql_meta m, int64_t v)
{
	struct pgsql_db *d = DB(db);
	char val[24];
	const char *p[2] = { pgsql_meta_key[m], val };
	struct pgsql_req q = { .how = PGSQL_SEND_PARAMS, .n = 2, .vals = p,
			       .sql = "INSERT INTO scopehold_meta(key, value) VALUES ($1, $2)"
				      " ON CONFLICT (key) DO UPDATE SET value = excluded.value" };
	PGresult *r;
	int rc;

	if ((rc = pgsql_exec(db, "CREATE TABLE IF NOT EXISTS scopehold_meta ("
				 " key TEXT PRIMARY KEY, value BIGINT NOT NULL)")))
		return rc;
	snprintf(val, sizeof val, "%" PRId64, v);
	rc = pgsql_request(d, &q, &r);
	PQclear(r);
	if (rc == 0) {
		d->meta[m] = v;
		d->meta_known[m] = true;
	}
	return rc;
}

/* Each commit was durable when it returned (synchronous_commit, checked at open). */
static int pgsql_sync(struct sql_db *db)
{
	(void)db;
	return 0;
}

/*
 * A conninfo must parse, and must not carry a password: passwords come
 * from ~/.pgpass or PGPASSFILE, or none is needed (peer, certificates).
 * The problem line never repeats the value.
 */
static int pgsql_check(const char *target, char *problem, size_t cap)
{
	static const char nopw[] = "conninfo must not contain a password"
				   " (use ~/.pgpass or PGPASSFILE, peer or certificate authentication)";
	PQconninfoOption *o;
	char *err = NULL;
	bool pw = false;

	if (strcasestr(target, "password")) {
		snprintf(problem, cap, "%s", nopw);
		return -EINVAL;
	}
	if (strncmp(target, "postgres://", 11) == 0 || strncmp(target, "postgresql://", 13) == 0) {
		const char *auth = strstr(target, "://") + 3;
		size_t end = strcspn(auth, "/?");
		const char *at = memchr(auth, '@', end);
		if (at && memchr(auth, ':', (size_t)(at - auth))) {
			snprintf(problem, cap, "%s", nopw);
			return -EINVAL;
		}
	}
	o = PQconninfoParse(target, &err);
	if (!o) {
		snprintf(problem, cap, "invalid conninfo: %s", err ? err : "out of memory");
		problem[strcspn(problem, "\n")] = '\0';
		PQfreemem(err);
		return -EINVAL;
	}
	for (PQconninfoOption *p = o; p->keyword; p++)
		if (strcmp(p->keyword, "password") == 0 && p->val && *p->val)
			pw = true;
	PQconninfoFree(o);
	if (pw) {
		snprintf(problem, cap, "%s", nopw);
		return -EINVAL;
	}
	return 0;
}

/*
 * db.c's migrations in PostgreSQL's words: BIGINT for SQLite's 64-bit
 * INTEGER, identity columns for INTEGER PRIMARY KEY (audit.seq is
 * assigned by the store), BYTEA for BLOB, no WITHOUT ROWID, and the
 * reserved word offset quoted. Keep one entry per entry of db.c.
 */
/* A table the mounts' read cache answers from: any change to it is notified. */
#define PGSQL_CHANGED(t) "CREATE TRIGGER scopehold_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE" \
	" ON " t " FOR EACH STATEMENT EXECUTE FUNCTION scopehold_changed();"

static const char *const pgsql_migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE keys ("
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  kind TEXT NOT NULL CHECK (kind IN ('audit', 'data')),"
	"  wrapped BYTEA NOT NULL,"
	"  wrapped_next BYTEA,"       /* under the next root key while `key rekey` runs */
	"  created BIGINT NOT NULL);"
	"CREATE TABLE workspaces ("
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  created BIGINT NOT NULL);"
	"CREATE TABLE providers ("
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  ws_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  created BIGINT NOT NULL,"
	"  UNIQUE (ws_id, name));"
	"CREATE TABLE secrets ("
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  provider_id BIGINT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  created BIGINT NOT NULL,"
	"  UNIQUE (provider_id, name));"
	"CREATE TABLE versions ("
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  secret_id BIGINT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,"
	"  version BIGINT NOT NULL,"
	"  key_id BIGINT NOT NULL REFERENCES keys(id),"
	"  ct BYTEA NOT NULL,"
	"  length BIGINT NOT NULL,"
	"  created BIGINT NOT NULL,"
	"  expires BIGINT NOT NULL DEFAULT 0,"
	"  UNIQUE (secret_id, version));"
	"CREATE TABLE projects ("
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  ws_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  created BIGINT NOT NULL,"
	"  UNIQUE (ws_id, name));"
	"CREATE TABLE attachments ("
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
	"  provider_id BIGINT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,"
	"  secret_id BIGINT REFERENCES secrets(id) ON DELETE CASCADE);"
	"CREATE UNIQUE INDEX attachments_provider ON attachments(project_id, provider_id)"
	"  WHERE secret_id IS NULL;"
	"CREATE UNIQUE INDEX attachments_secret ON attachments(project_id, provider_id, secret_id)"
	"  WHERE secret_id IS NOT NULL;"
	"CREATE INDEX attachments_by_provider ON attachments(provider_id);"
	"CREATE TABLE agents ("
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  ws_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  human BIGINT NOT NULL DEFAULT 0,"
	"  enabled BIGINT NOT NULL DEFAULT 1,"
	"  uid BIGINT NOT NULL,"
	"  gid BIGINT,"
	"  exe TEXT,"
	"  exe_sha256 BYTEA,"
	"  created BIGINT NOT NULL,"
	"  UNIQUE (ws_id, name));"
	"CREATE TABLE assignments ("
	"  agent_id BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
	"  project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
	"  PRIMARY KEY (agent_id, project_id));"
	"CREATE INDEX assignments_by_project ON assignments(project_id);"
	"CREATE TABLE grants ("
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  agent_id BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
	"  secret_id BIGINT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,"
	"  created BIGINT NOT NULL,"
	"  expires BIGINT NOT NULL DEFAULT 0,"
	"  max_uses BIGINT NOT NULL DEFAULT 0,"
	"  uses BIGINT NOT NULL DEFAULT 0,"
	"  revoked BIGINT NOT NULL DEFAULT 0,"
	"  UNIQUE (agent_id, secret_id));"
	"CREATE INDEX grants_by_secret ON grants(secret_id);"
	/* The trail keeps names, not ids: it must outlive what it describes. */
	"CREATE TABLE audit ("
	"  seq BIGINT PRIMARY KEY,"
	"  time BIGINT NOT NULL,"
	"  type TEXT NOT NULL,"
	"  workspace TEXT NOT NULL,"
	"  actor TEXT NOT NULL,"
	"  agent TEXT NOT NULL,"
	"  secret TEXT NOT NULL,"
	"  version BIGINT NOT NULL,"
	"  uid BIGINT NOT NULL,"
	"  gid BIGINT NOT NULL,"
	"  pid BIGINT NOT NULL,"
	"  exe TEXT NOT NULL,"
	"  reason TEXT NOT NULL,"
	"  fingerprint BYTEA,"
	"  count BIGINT NOT NULL,"
	"  hash BYTEA NOT NULL);"
	"CREATE INDEX audit_by_agent ON audit(agent, seq);"
	"CREATE INDEX audit_by_secret ON audit(secret, seq);",
	/*
	 * 1 -> 2: how far each generation of the audit journal has been
	 * moved into `audit` (journal.c); a generation seen once is never
	 * imported from its start again.
	 */
	"CREATE TABLE journal ("
	"  gen BYTEA PRIMARY KEY,"
	"  \"offset\" BIGINT NOT NULL);",
	/*
	 * 2 -> 3: access requests (request.c): one row per (agent, secret),
	 * reopened as pending by the next refusal after a decision.
	 */
	"CREATE TABLE requests ("
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  agent_id BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
	"  secret_id BIGINT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,"
	"  state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),"
	"  first BIGINT NOT NULL,"
	"  last BIGINT NOT NULL,"
	"  count BIGINT NOT NULL,"
	"  uid BIGINT NOT NULL,"
	"  gid BIGINT NOT NULL,"
	"  pid BIGINT NOT NULL,"
	"  exe TEXT NOT NULL,"
	"  decided BIGINT NOT NULL DEFAULT 0,"
	"  actor TEXT NOT NULL DEFAULT '',"
	"  UNIQUE (agent_id, secret_id));"
	"CREATE INDEX requests_by_secret ON requests(secret_id);",
	/*
	 * 3 -> 4: task-scoped grants (task.c): live only while the process
	 * (pid, start time from /proc/PID/stat) lives; 0 = not task-scoped.
	 */
	"ALTER TABLE grants ADD COLUMN pid BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE grants ADD COLUMN pid_start BIGINT NOT NULL DEFAULT 0;",
	/* 4 -> 5: an agent's rate limit (rate.c): rate_max resolves per rate_window seconds; 0 = none */
	"ALTER TABLE agents ADD COLUMN rate_max BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE agents ADD COLUMN rate_window BIGINT NOT NULL DEFAULT 0;",
	/* 5 -> 6: canary secrets (honeytokens, alert.c) */
	"ALTER TABLE secrets ADD COLUMN canary BIGINT NOT NULL DEFAULT 0;",
	/*
	 * 6 -> 7: the executable digests each agent has resolved from
	 * (alert.c): the first resolve from a digest not in here is a
	 * new-exe alert.
	 */
	"CREATE TABLE agent_exes ("
	"  agent_id BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
	"  sha256 BYTEA NOT NULL,"
	"  first BIGINT NOT NULL,"
	"  PRIMARY KEY (agent_id, sha256));",
	/*
	 * 7 -> 8: an agent's cgroup binding (policy_cgroup_match; NULL = none)
	 * and the caller's cgroup in each event ('' = not established). An
	 * event with an empty cgroup chains exactly as before (audit.c).
	 */
	"ALTER TABLE agents ADD COLUMN cgroup TEXT;"
	"ALTER TABLE audit ADD COLUMN cgroup TEXT NOT NULL DEFAULT '';",
	/*
	 * 8 -> 9: a version's expiry policy and its destruction (secret.c).
	 * ttl: the --expires DURATION it was set with (0: a date or never),
	 * carried to the next rotation; destroyed: when `secret destroy`
	 * wiped its ciphertext (0: intact), the row itself stays.
	 */
	"ALTER TABLE versions ADD COLUMN ttl BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE versions ADD COLUMN destroyed BIGINT NOT NULL DEFAULT 0;",
	/* 9 -> 10: db.c's portable text */
	NULL,
	/*
	 * 10 -> 11: change notification for the mounts' read caches
	 * (sql_pgsql_watch.c). Each statement that changes a table the cache
	 * answers from takes a change number in commit order (under the
	 * writer lock, which ScopeHold's writers already hold), notes it in
	 * the transaction for shadm and notifies the listeners. Statement
	 * triggers: a bulk import pays once per statement, not per row.
	 * grants: not when only `uses` moves - a counted grant is decided
	 * by the database at every open anyway (resolve.c), and a mount's
	 * stale count is only ever lower than the database's.
	 * scopehold_hosts: one row per listening mount (its lease).
	 */
	"CREATE SEQUENCE scopehold_change AS BIGINT NO CYCLE;"
	"CREATE TABLE scopehold_hosts ("
	"  id TEXT PRIMARY KEY,"
	"  host TEXT NOT NULL,"
	"  acked BIGINT NOT NULL,"
	"  lease_until TIMESTAMPTZ NOT NULL);"
	"CREATE FUNCTION scopehold_changed() RETURNS trigger LANGUAGE plpgsql AS $f$"
	" DECLARE n BIGINT;"
	" BEGIN"
	"  PERFORM pg_advisory_xact_lock(" PGSQL_WRITE_LOCK ");"
	"  n := nextval('scopehold_change');"
	"  PERFORM set_config('scopehold.change', n::text, true);"
	"  PERFORM pg_notify('scopehold_change', n::text);"
	"  RETURN NULL;"
	" END $f$;"
	PGSQL_CHANGED("workspaces") PGSQL_CHANGED("keys") PGSQL_CHANGED("providers")
	PGSQL_CHANGED("secrets") PGSQL_CHANGED("versions") PGSQL_CHANGED("projects")
	PGSQL_CHANGED("attachments") PGSQL_CHANGED("agents") PGSQL_CHANGED("assignments")
	"CREATE TRIGGER scopehold_changed AFTER INSERT OR DELETE OR TRUNCATE"
	"  OR UPDATE OF agent_id, secret_id, created, expires, max_uses, revoked, pid, pid_start"
	"  ON grants FOR EACH STATEMENT EXECUTE FUNCTION scopehold_changed();",
};

static int pgsql_watch_start_db(struct sql_db *db)
{
	struct pgsql_db *d = DB(db);

	return d->watch ? 0 : pgsql_watch_start(d->conninfo, &d->watch, d->err, sizeof d->err);
}

static bool pgsql_watch_stamp_db(struct sql_db *db, uint8_t stamp[SQL_STAMP_BYTES])
{
	return pgsql_watch_stamp(DB(db)->watch, stamp);
}

static const char *pgsql_migration(int64_t from)
{
	if (from < 0 || (size_t)from >= sizeof pgsql_migrations / sizeof pgsql_migrations[0])
		return NULL;
	return pgsql_migrations[from];
}

const struct sql_driver sql_driver_pgsql = {
	.name = "postgresql",
	.open = pgsql_open,
	.close = pgsql_close,
	.error = pgsql_error,
	.exec = pgsql_exec,
	.prepare = pgsql_prepare,
	.bind_int64 = pgsql_bind_int64,
	.bind_text = pgsql_bind_text,
	.bind_blob = pgsql_bind_blob,
	.bind_null = pgsql_bind_null,
	.step = pgsql_step,
	.column_int64 = pgsql_column_int64,
	.column_text = pgsql_column_text,
	.column_blob = pgsql_column_blob,
	.column_bytes = pgsql_column_bytes,
	.column_is_null = pgsql_column_is_null,
	.reset = pgsql_reset,
	.clear_bindings = pgsql_clear_bindings,
	.finalize = pgsql_finalize,
	.changes = pgsql_changes,
	.begin = pgsql_begin,
	.commit = pgsql_commit,
	.rollback = pgsql_rollback,
	.in_transaction = pgsql_in_transaction,
	.meta_get = pgsql_meta_get,
	.meta_set = pgsql_meta_set,
	.sync = pgsql_sync,
	.watch_start = pgsql_watch_start_db,
	.watch_stamp = pgsql_watch_stamp_db,
	.check = pgsql_check,
	.down_since = pgsql_down_since,
	.migration = pgsql_migration,
	.shared = true,
};

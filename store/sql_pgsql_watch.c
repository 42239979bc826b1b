/*
 * sql_pgsql_watch.c - how a mount on PostgreSQL learns that the store
 * changed (sql_watch_start/sql_watch_stamp for cache.c), and how shadm
 * learns that every mount has learnt it. With sql_pgsql.c, the only file
 * of store/ that calls PQ*.
 *
 * SQLite's change stamp is a memory read of a file every process maps;
 * PostgreSQL's other hosts commit out of sight. So (schema 11, see
 * sql_pgsql.c's migrations): a statement trigger on every table the
 * mount's read cache answers from takes the next value N of the sequence
 * scopehold_change, notes it in the transaction (scopehold.change) and
 * sends NOTIFY scopehold_change 'N'. Every ScopeHold writer holds the
 * transaction-scoped writer lock from before taking N until after its
 * commit has queued the notification (the trigger takes it too, for a
 * writer that is not ScopeHold), so N grows in commit order, and
 * PostgreSQL delivers notifications in commit order: a listener that has
 * received N has received every change up to N.
 *
 * The mount (pgsql_watch_start): a thread with a connection of its own
 * LISTENs, and every change it receives moves the stamp, so every open
 * that starts afterwards misses the cache. It keeps a row in
 * scopehold_hosts(id, host, acked, lease_until): after each batch of
 * changes, and every PGSQL_LEASE_MS / 4 otherwise, a heartbeat writes
 * acked = the largest N it has applied and lease_until = the server's
 * clock + PGSQL_LEASE_MS, and NOTIFYs a channel only this listener
 * hears. That echo comes back behind every notification committed
 * before the heartbeat (the same commit order), so when it arrives the
 * listener has applied everything up to then, and only then is the
 * mount's own lease renewed: the time read before the heartbeat was
 * sent, plus PGSQL_LEASE_MS, minus PGSQL_LEASE_MARGIN_MS. watch_stamp
 * refuses (cache off: every open reads the database, and fails closed if
 * that is down) once the lease has run out - a listener that lost its
 * connection, a process stopped by SIGSTOP, a server that stopped
 * answering - and a lost connection drops it at once. The clock is
 * CLOCK_BOOTTIME, which also runs while the machine is suspended.
 *
 * shadm (pgsql_watch_committed): after committing change N it polls
 * until no row has acked < N with lease_until still in the future by the
 * server's clock, so once it returns every host has either moved its
 * stamp past N or lost its lease, and a host that lost it renews it only
 * after receiving everything committed before. Bounded: no lease lasts
 * longer than PGSQL_LEASE_MS after its last heartbeat.
 *
 * At (re)connection the listener may have missed notifications: it moves
 * the stamp, then registers under the writer lock (shared), so that no
 * ScopeHold writer is between its change number and its commit, and
 * acknowledges the sequence's value from there: every change up to it
 * committed before the registration, hence before the stamp moved or in
 * a notification that precedes the echo.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store/sql_pgsql_watch.h"

/* sql_pgsql.c's writer lock ("ScopeHld"); the migration's trigger takes it too */
#define WATCH_WRITE_LOCK "6866391294498884708"
#define WATCH_CHANNEL "scopehold_change"
/* heartbeats whose echo may be outstanding at once */
#define WATCH_RING 16
#define WATCH_CONNECT_MS 5000

struct pgsql_watch {
	char *conninfo;
	pthread_t thread;
	int stop[2];                   /* a pipe: written once to stop the thread */
	atomic_bool stopping;
	atomic_uint_fast64_t stamp;    /* moves with every change applied */
	atomic_int_fast64_t lease;     /* CLOCK_BOOTTIME ns the cache may be used until; 0: not */
	char id[33];                   /* this mount's row in scopehold_hosts */
	char host[80];
	char echo[48];                 /* the channel only this listener hears */
	/* the thread's own */
	PGconn *c;
	int64_t seen;                  /* largest change applied */
	int64_t acked;                 /* largest change written as acknowledged */
	bool registered;               /* this connection's first heartbeat was sent */
	bool inflight;                 /* a heartbeat's results are still to come */
	int64_t sent_at;
	uint64_t hb;                   /* heartbeats sent */
	uint64_t echoed;               /* the last heartbeat whose echo came back */
	int64_t t0[WATCH_RING];        /* when heartbeat k was sent, at [k % WATCH_RING] */
	int64_t next_hb;
};

static int64_t watch_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define MS(x) ((int64_t)(x) * 1000000)

static void watch_err(char *err, size_t cap, const char *what, const char *msg)
{
	snprintf(err, cap, "%s%s%s", what, msg && *msg ? ": " : "", msg ? msg : "");
	err[strcspn(err, "\n")] = '\0';
}

bool pgsql_watch_stamp(struct pgsql_watch *w, uint8_t stamp[SQL_STAMP_BYTES])
{
	uint64_t s;
	int64_t until;

	if (!w)
		return false;
	s = atomic_load(&w->stamp);
	until = atomic_load(&w->lease);
	if (until == 0 || watch_now() >= until)
		return false;
	memset(stamp, 0, SQL_STAMP_BYTES);
	memcpy(stamp, &s, sizeof s);
	return true;
}

/* The cache may have missed changes: off until the next echo, and emptied. */
static void watch_lapse(struct pgsql_watch *w)
{
	atomic_store(&w->lease, 0);
	atomic_fetch_add(&w->stamp, 1);
}

static void watch_drop(struct pgsql_watch *w)
{
	watch_lapse(w);
	PQfinish(w->c);
	w->c = NULL;
	w->inflight = false;
	w->registered = false;
}

/*
 * Wait until the socket is readable, the stop pipe is written or ms pass:
 * 1 readable, 0 not, -1 stop.
 */
static int watch_poll(struct pgsql_watch *w, int fd, short events, int64_t ms)
{
	struct pollfd p[2] = { { .fd = w->stop[0], .events = POLLIN }, { .fd = fd, .events = events } };
	int n;

	if (ms < 0)
		ms = 0;
	n = poll(p, fd >= 0 ? 2 : 1, ms > 60000 ? 60000 : (int)ms);
	if (atomic_load(&w->stopping))
		return -1;
	if (n < 0)
		return 0;      /* EINTR: the caller loops */
	return fd >= 0 && (p[1].revents & (events | POLLERR | POLLHUP)) ? 1 : 0;
}

/* Results of the command in flight, without blocking: 0 all read, 1 more to come, -1 failed. */
static int watch_results(struct pgsql_watch *w)
{
	while (!PQisBusy(w->c)) {
		PGresult *r = PQgetResult(w->c);
		ExecStatusType t;
		int col;

		if (!r)
			return 0;
		t = PQresultStatus(r);
		if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK) {
			PQclear(r);
			while ((r = PQgetResult(w->c)))   /* the rest are skipped anyway */
				PQclear(r);
			return -1;
		}
		/* the registration's acknowledgement, from the sequence */
		col = PQfnumber(r, "acked");
		if (col >= 0 && PQntuples(r) == 1) {
			int64_t v = strtoll(PQgetvalue(r, 0, col), NULL, 10);
			if (v > w->seen)
				w->seen = v;
			if (v > w->acked)
				w->acked = v;
		}
		PQclear(r);
	}
	return 1;
}

/* Apply every notification received: changes move the stamp; an echo renews the lease. */
static void watch_notifies(struct pgsql_watch *w)
{
	PGnotify *n;

	while ((n = PQnotifies(w->c))) {
		if (strcmp(n->relname, WATCH_CHANNEL) == 0) {
			int64_t v = strtoll(n->extra, NULL, 10);
			if (v > w->seen)
				w->seen = v;
			atomic_fetch_add(&w->stamp, 1);
		} else if (strcmp(n->relname, w->echo) == 0) {
			uint64_t k = strtoull(n->extra, NULL, 10);
			/* everything committed before heartbeat k has been applied above */
			if (k > w->echoed && k <= w->hb && w->hb - k < WATCH_RING) {
				w->echoed = k;
				atomic_store(&w->lease, w->t0[k % WATCH_RING] + MS(PGSQL_LEASE_MS) -
							MS(PGSQL_LEASE_MARGIN_MS));
			}
		}
		PQfreemem(n);
	}
}

/* Send one command and read all its results within ms (set-up and withdrawal). */
static int watch_run(struct pgsql_watch *w, const char *sql, int64_t ms)
{
	int64_t deadline = watch_now() + MS(ms);
	int rc;

	if (!PQsendQuery(w->c, sql))
		return -1;
	while ((rc = watch_results(w)) == 1) {
		int64_t left = (deadline - watch_now()) / 1000000;
		if (left <= 0 || watch_poll(w, PQsocket(w->c), POLLIN, left) < 0 ||
		    !PQconsumeInput(w->c))
			return -1;
	}
	return rc;
}

static int watch_connect(struct pgsql_watch *w)
{
	int64_t deadline = watch_now() + MS(WATCH_CONNECT_MS);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	char sql[256];

	w->c = PQconnectStart(w->conninfo);
	if (!w->c)
		return -1;
	while (PQstatus(w->c) != CONNECTION_BAD && st != PGRES_POLLING_OK) {
		int64_t left = (deadline - watch_now()) / 1000000;
		if (st == PGRES_POLLING_FAILED || left <= 0 ||
		    watch_poll(w, PQsocket(w->c), st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
			       left) < 0)
			break;
		st = PQconnectPoll(w->c);
	}
	if (PQstatus(w->c) != CONNECTION_OK)
		goto fail;
	/*
	 * LISTEN is refused on a hot standby: there the cache stays off. The
	 * heartbeat commits durably (synchronous_commit as the server has
	 * it): a lease the server forgot in a crash would be one shadm
	 * stops waiting for while the mount still serves from its cache.
	 */
	snprintf(sql, sizeof sql, "SET client_min_messages = warning; SET lock_timeout = %d;"
		 " LISTEN " WATCH_CHANNEL "; LISTEN \"%s\"", PGSQL_LEASE_MS / 2, w->echo);
	if (watch_run(w, sql, PGSQL_LEASE_MS))
		goto fail;
	/* what was committed before LISTEN took effect was never heard: empty the cache */
	watch_lapse(w);
	w->registered = false;
	w->inflight = false;
	w->echoed = w->hb;
	w->next_hb = watch_now();
	return 0;
fail:
	PQfinish(w->c);
	w->c = NULL;
	return -1;
}

/*
 * The heartbeat: this host's row, acknowledging the changes applied and
 * leasing PGSQL_LEASE_MS from the server's clock, and the echo. The
 * first of a connection registers (see the top of the file).
 */
static int watch_heartbeat(struct pgsql_watch *w)
{
	char sql[1024];
	uint64_t k = w->hb + 1;
	int64_t t0 = watch_now();

	if (!w->registered)
		snprintf(sql, sizeof sql,
			 "BEGIN; SELECT pg_advisory_xact_lock_shared(" WATCH_WRITE_LOCK ");"
			 " DELETE FROM scopehold_hosts WHERE lease_until < clock_timestamp() - interval '1 hour';"
			 " INSERT INTO scopehold_hosts(id, host, acked, lease_until) SELECT '%s', '%s',"
			 " greatest(%" PRId64 ", CASE WHEN is_called THEN last_value ELSE 0 END),"
			 " clock_timestamp() + interval '%d milliseconds' FROM scopehold_change"
			 " ON CONFLICT (id) DO UPDATE SET acked = excluded.acked,"
			 " lease_until = excluded.lease_until RETURNING acked;"
			 " SELECT pg_notify('%s', '%" PRIu64 "'); COMMIT",
			 w->id, w->host, w->seen, PGSQL_LEASE_MS, w->echo, k);
	else
		snprintf(sql, sizeof sql,
			 "INSERT INTO scopehold_hosts(id, host, acked, lease_until) VALUES ('%s', '%s',"
			 " %" PRId64 ", clock_timestamp() + interval '%d milliseconds')"
			 " ON CONFLICT (id) DO UPDATE SET acked = excluded.acked,"
			 " lease_until = excluded.lease_until;"
			 " SELECT pg_notify('%s', '%" PRIu64 "')",
			 w->id, w->host, w->seen, PGSQL_LEASE_MS, w->echo, k);
	if (!PQsendQuery(w->c, sql))
		return -1;
	w->hb = k;
	w->t0[k % WATCH_RING] = t0;
	w->sent_at = t0;
	w->inflight = true;
	w->registered = true;
	if (w->acked < w->seen)
		w->acked = w->seen;
	w->next_hb = t0 + MS(PGSQL_LEASE_MS / 4);
	return 0;
}

/* One turn of the listener: 0, or -1 when the connection is to be dropped. */
static int watch_turn(struct pgsql_watch *w)
{
	int64_t now = watch_now(), wait;
	int rc;

	watch_notifies(w);          /* any that came in with the set-up's results */
	if (!w->inflight && (w->seen > w->acked || !w->registered || now >= w->next_hb) &&
	    watch_heartbeat(w))
		return -1;
	/* a server that stopped answering: the lease runs out meanwhile */
	if (w->inflight && now - w->sent_at > MS(2 * PGSQL_LEASE_MS))
		return -1;
	wait = w->inflight ? MS(PGSQL_LEASE_MS / 4) : w->next_hb - now;
	rc = watch_poll(w, PQsocket(w->c), POLLIN, wait / 1000000 + 1);
	if (rc <= 0)
		return 0;
	if (!PQconsumeInput(w->c))
		return -1;
	if (w->inflight) {
		rc = watch_results(w);
		if (rc < 0)
			return -1;
		w->inflight = rc == 1;
	}
	watch_notifies(w);
	return PQstatus(w->c) == CONNECTION_OK ? 0 : -1;
}

static void *watch_main(void *arg)
{
	struct pgsql_watch *w = arg;
	int64_t backoff = 50;
	sigset_t all;

	/* signals are the process's business, handled by its other threads */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	while (!atomic_load(&w->stopping)) {
		if (!w->c) {
			if (watch_connect(w) == 0) {
				backoff = 50;
			} else {
				(void)watch_poll(w, -1, 0, backoff);
				backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
			}
			continue;
		}
		if (watch_turn(w))
			watch_drop(w);
	}
	/* withdraw: shadm stops waiting for this host at once instead of at its lease's end */
	if (w->c) {
		char sql[128];
		int64_t deadline = watch_now() + MS(500);
		atomic_store(&w->lease, 0);
		atomic_store(&w->stopping, false);   /* watch_poll reports the pipe otherwise */
		close(w->stop[0]);
		w->stop[0] = -1;
		while (w->inflight && watch_now() < deadline) {
			int rc = watch_results(w);
			if (rc <= 0)
				break;
			if (watch_poll(w, PQsocket(w->c), POLLIN, (deadline - watch_now()) / 1000000 + 1) < 0 ||
			    !PQconsumeInput(w->c))
				break;
		}
		snprintf(sql, sizeof sql, "DELETE FROM scopehold_hosts WHERE id = '%s'", w->id);
		(void)watch_run(w, sql, 500);
		PQfinish(w->c);
		w->c = NULL;
	}
	return NULL;
}

int pgsql_watch_start(const char *conninfo, struct pgsql_watch **out, char *err, size_t cap)
{
	struct pgsql_watch *w = calloc(1, sizeof *w);
	uint8_t rnd[16];
	char host[64] = "";

	*out = NULL;
	if (!w || !(w->conninfo = strdup(conninfo))) {
		free(w);
		watch_err(err, cap, "out of memory", NULL);
		return -ENOMEM;
	}
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		free(w->conninfo);
		free(w);
		watch_err(err, cap, "cannot draw a host id", strerror(errno));
		return -EIO;
	}
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(w->id + 2 * i, 3, "%02x", rnd[i]);
	snprintf(w->echo, sizeof w->echo, "scopehold_echo_%s", w->id);
	/* for people reading the table: the name and the pid, quotes left out */
	(void)gethostname(host, sizeof host - 1);
	for (char *p = host; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_'))
			*p = '_';
	snprintf(w->host, sizeof w->host, "%s pid %ld", host, (long)getpid());
	if (pipe2(w->stop, O_CLOEXEC) < 0) {
		free(w->conninfo);
		free(w);
		watch_err(err, cap, "cannot make a pipe", strerror(errno));
		return -errno;
	}
	if (pthread_create(&w->thread, NULL, watch_main, w)) {
		close(w->stop[0]);
		close(w->stop[1]);
		free(w->conninfo);
		free(w);
		watch_err(err, cap, "cannot start the change listener", NULL);
		return -EAGAIN;
	}
	*out = w;
	return 0;
}

void pgsql_watch_stop(struct pgsql_watch *w)
{
	if (!w)
		return;
	atomic_store(&w->stopping, true);
	(void)!write(w->stop[1], "x", 1);
	pthread_join(w->thread, NULL);
	if (w->stop[0] >= 0)
		close(w->stop[0]);
	close(w->stop[1]);
	free(w->conninfo);
	free(w);
}

/* ---- the writer's side ------------------------------------------------------------ */

void pgsql_watch_own_change(struct pgsql_watch *w)
{
	atomic_fetch_add(&w->stamp, 1);
}

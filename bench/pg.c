/*
 * pg.c - many hosts, one PostgreSQL store (issue 9): the part of shbench
 * that runs when `--pg CONNINFO` names an empty database (bench/run.sh
 * starts a throwaway cluster with tests/pg.sh and passes it).
 *
 * Two "hosts" on this machine: two scopeholdfs daemons with their own
 * state_dir, host name and mountpoint, serving one store in PostgreSQL.
 * Measured side by side with the SQLite default daemon and the bare FUSE
 * floor of the main matrix, in the same run and interleaved:
 *   - granted reads at 1, 2 and 8 readers on host a, on host b, and on
 *     both at once;
 *   - revoke to refusal across hosts: `shadm revoke` on host a's
 *     configuration, then one open on host b, which must be refused (the
 *     time is shadm's, since the refusal is checked as soon as it returns);
 *     the same on the SQLite store for comparison;
 *   - events shipped: both hosts read at 8 readers each, and the trail's
 *     newest seq shows how fast their journals reach the shared table;
 *   - a database restart (`pg_ctl restart -m fast`) under one reader on
 *     host a: when opens failed, how (EIO), and when they were served again.
 */
#include "bench/bench.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const int pg_threads[BENCH_PG_NT] = { 1, 2, 8 };

static void pg_say(const char *what, int rc)
{
	fprintf(stderr, "shbench: PostgreSQL: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
}

/*
 * bench_measure on two paths at once: b in a forked child, a here. Both
 * run for secs; the child's result comes back through shared memory.
 */
static int measure_both(const char *a, const char *b, int uid, int threads, double secs,
			struct bench_result *ra, struct bench_result *rb)
{
	struct { int rc; struct bench_result r; } *sh;
	int rc, st;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		rc = -errno;
		munmap(sh, sizeof(*sh));
		return rc;
	}
	if (pid == 0) {
		bench_child_init();
		sh->rc = bench_measure(b, uid, threads, secs, 0, 0, &sh->r);
		_exit(0);
	}
	bench_track_child(pid);
	rc = bench_measure(a, uid, threads, secs, 0, 0, ra);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	bench_track_child(0);
	if (rc == 0)
		rc = sh->rc;
	*rb = sh->r;
	munmap(sh, sizeof(*sh));
	return rc;
}

/* shadm -c config ARGS..., quietly; 0 if it exited 0. */
static int shadm(const struct bench_paths *bp, const char *config, const char *a1, const char *a2,
		 const char *a3)
{
	char *argv[] = { (char *)bp->shadm, "-c", (char *)config, (char *)a1, (char *)a2, (char *)a3,
			 NULL };
	int status, rc = bench_run(argv, NULL, NULL, 0, &status);

	if (rc)
		return rc;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPROTO;
}

/*
 * n rounds of: revoke on `config`, one open of `path` that must be
 * refused; grant again, one open that must succeed. ms[i] is the
 * revoke's wall time; *stale counts opens with the wrong outcome.
 */
static int revoke_rounds(const struct bench_paths *bp, const char *config, const char *path, int n,
			 double *ms, uint64_t *stale)
{
	struct bench_result r;
	int rc;

	for (int i = 0; i < n; i++) {
		double t0 = bench_now();
		if ((rc = shadm(bp, config, "revoke", "bench", "prov/secret")))
			return rc;
		ms[i] = (bench_now() - t0) * 1e3;
		if ((rc = bench_measure(path, BENCH_UID_AGENT, 1, 0, 1, EACCES, &r)))
			return rc;
		*stale += r.wrong;
		if ((rc = shadm(bp, config, "grant", "bench", "prov/secret")) ||
		    (rc = bench_measure(path, BENCH_UID_AGENT, 1, 0, 1, 0, &r)))
			return rc;
		*stale += r.wrong;
	}
	return 0;
}

/*
 * Restart the server `delay` seconds from now, in a child, while the
 * caller runs its timeline; times[0..1] = the restart's start and end
 * (bench_now), written by the child.
 */
static pid_t restart_later(const char *bin, const char *data, double delay, double *times)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	bench_child_init();
	char pg_ctl[PATH_MAX], log[PATH_MAX];
	bench_pathf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", bin);
	/* the server's log beside its data directory (tests/pg.sh): not our pipe, which it would hold open */
	bench_pathf(log, sizeof(log), "%s/../server.log", data);
	char *argv[] = { "/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups",
			 "--", pg_ctl, "-D", (char *)data, "-l", log, "-m", "fast", "-w", "restart", NULL };
	usleep((useconds_t)(delay * 1e6));
	times[0] = bench_now();
	int status = 1;
	bench_run(argv, NULL, NULL, 0, &status);
	times[1] = bench_now();
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

int bench_pg_run(const struct bench_paths *bp, const struct bench_pg_opts *po,
		 const char *sqlite_config, const char *sqlite_path, const char *floor_path, int repeat,
		 double secs, struct bench_pg_result *out)
{
	struct bench_daemon d[2];
	char mnt[2][PATH_MAX], log[PATH_MAX], dir[PATH_MAX], path[2][PATH_MAX];
	static struct bench_store bs;
	static struct bench_result all[6][BENCH_PG_NT][BENCH_PG_REPEAT];
	int nd = 0, rc;

	memset(out, 0, sizeof(*out));
	if (repeat > BENCH_PG_REPEAT)
		repeat = BENCH_PG_REPEAT;
	bench_pathf(dir, sizeof(dir), "%s/pg", bp->tmp);
	for (int i = 0; i < 2; i++) {
		bench_pathf(mnt[i], sizeof(mnt[i]), "%s/mnt-pg-%c", bp->tmp, 'a' + i);
		bench_pathf(path[i], sizeof(path[i]), "%s/bench/prov/secret", mnt[i]);
	}
	if ((rc = bench_store_build_pg(&bs, dir, po->conninfo, mnt[0], mnt[1]))) {
		pg_say("cannot build the store", rc);
		return rc;
	}
	const char *conf[2] = { bs.config, bs.config_b };
	for (int i = 0; i < 2; i++) {
		char *argv[] = { (char *)bp->scopeholdfs, "-f", "-c", (char *)conf[i], mnt[i], NULL };
		bench_pathf(log, sizeof(log), "%s/pg-%c.log", bp->tmp, 'a' + i);
		if (mkdir(mnt[i], 0755) < 0 && errno != EEXIST) {
			rc = -errno;
			goto out;
		}
		if ((rc = bench_daemon_start(&d[i], argv, mnt[i], log))) {
			pg_say("cannot mount a host", rc);
			goto out;
		}
		nd++;
	}

	/* reads: host a, host b, both at once, the SQLite default, the floor */
	for (int i = 0; i < 2; i++) {
		struct bench_result w;
		if ((rc = bench_measure(path[i], BENCH_UID_AGENT, 8, 0.3, 0, 0, &w)))
			goto out;
	}
	for (int k = 0; k < repeat; k++)
		for (int t = 0; t < BENCH_PG_NT; t++) {
			int n = pg_threads[t];
			if ((rc = bench_measure(path[0], BENCH_UID_AGENT, n, secs, 0, 0, &all[0][t][k])) ||
			    (rc = bench_measure(path[1], BENCH_UID_AGENT, n, secs, 0, 0, &all[1][t][k])) ||
			    (rc = measure_both(path[0], path[1], BENCH_UID_AGENT, n, secs, &all[2][t][k],
					       &all[3][t][k])) ||
			    (rc = bench_measure(sqlite_path, BENCH_UID_AGENT, n, secs, 0, 0, &all[4][t][k])) ||
			    (rc = bench_measure(floor_path, BENCH_UID_AGENT, n, secs, 0, 0, &all[5][t][k])))
				goto out;
		}
	struct bench_result *med[6] = { out->a, out->b, out->both_a, out->both_b, out->sqlite, out->floor };
	for (int c = 0; c < 6; c++)
		for (int t = 0; t < BENCH_PG_NT; t++)
			bench_result_median(all[c][t], repeat, &med[c][t]);

	/* revoke to refusal: on host a's configuration, checked on host b */
	out->nrevoke = repeat > 1 ? 10 : 3;
	if ((rc = revoke_rounds(bp, bs.config, path[1], out->nrevoke, out->revoke_pg, &out->stale)) ||
	    (rc = revoke_rounds(bp, sqlite_config, sqlite_path, out->nrevoke, out->revoke_sqlite,
				&out->stale))) {
		pg_say("revoke rounds failed", rc);
		goto out;
	}

	/* events shipped: both hosts at 8 readers, the trail's newest seq before and after */
	int64_t seq0, seq1, seq;
	struct bench_result ra, rb;
	double ship_secs = 2 * secs;
	if ((rc = bench_store_newest(bs.config, &seq0)) ||
	    (rc = measure_both(path[0], path[1], BENCH_UID_AGENT, 8, ship_secs, &ra, &rb)))
		goto out;
	double t_end = bench_now();
	if ((rc = bench_store_newest(bs.config, &seq1)))
		goto out;
	out->events = (int64_t)(ra.ops + rb.ops);
	out->produced_per_s = (double)out->events / ship_secs;
	out->shipped_per_s = (double)(seq1 - seq0) / ship_secs;
	out->ship_secs = ship_secs;
	out->drain_s = -1;
	for (seq = seq1; bench_now() - t_end < 30; usleep(20000)) {
		if ((rc = bench_store_newest(bs.config, &seq)))
			goto out;
		if (seq - seq0 >= out->events) {
			out->drain_s = bench_now() - t_end;
			break;
		}
	}

	/* a database restart under one reader on host a */
	if (po->data && po->bin) {
		double *times = mmap(NULL, 2 * sizeof(double), PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		double t0;
		int st;
		if (times == MAP_FAILED) {
			rc = -errno;
			goto out;
		}
		times[0] = times[1] = 0;
		pid_t pid = restart_later(po->bin, po->data, 1.0, times);
		if (pid < 0) {
			rc = -errno;
			munmap(times, 2 * sizeof(double));
			goto out;
		}
		bench_track_child(pid);
		rc = bench_timeline(path[0], BENCH_UID_AGENT, 8.0, &t0, &out->restart);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		bench_track_child(0);
		out->restart_ran = WIFEXITED(st) && WEXITSTATUS(st) == 0 && times[1] > 0;
		out->restart_at = times[0] - t0;
		out->restart_took = times[1] - times[0];
		munmap(times, 2 * sizeof(double));
		if (rc)
			goto out;
	}
	out->done = true;
out:
	for (int i = nd - 1; i >= 0; i--)
		if (bench_daemon_stop(&d[i]))
			fprintf(stderr, "shbench: PostgreSQL host %c did not stop cleanly (log in %s)\n",
				'a' + i, bp->tmp);
	return rc;
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

void bench_pg_report(FILE *rep, const struct bench_pg_result *r)
{
	double rp[BENCH_PG_REVOKES], rs[BENCH_PG_REVOKES];

	fprintf(rep, "## Many hosts: one PostgreSQL store, two daemons (issue 9)\n\n");
	if (!r->done) {
		fprintf(rep, "Not measured: the PostgreSQL part failed (see the run's messages).\n\n");
		return;
	}
	fprintf(rep, "Two scopeholdfs daemons (hosts `bench-a` and `bench-b`: own state_dir and mountpoint) "
		"serving one store in a local PostgreSQL %s, beside the SQLite default daemon and the bare "
		"FUSE floor (default timeouts, direct_io) of the matrix above, measured interleaved. "
		"Granted open+read+close, ops/s (p50 / p99 µs):\n\n", "cluster");
	fprintf(rep, "| readers | host a | host b | a + b at once (each) | SQLite default | floor | "
		"host a / SQLite | a+b / SQLite |\n|---|---|---|---|---|---|---|---|\n");
	for (int t = 0; t < BENCH_PG_NT; t++)
		fprintf(rep, "| %d | %.0f (%.0f / %.0f) | %.0f (%.0f / %.0f) | %.0f + %.0f | %.0f (%.0f / %.0f) | "
			"%.0f | %.2f× | %.2f× |\n", pg_threads[t],
			r->a[t].ops_per_s, r->a[t].p50, r->a[t].p99, r->b[t].ops_per_s, r->b[t].p50,
			r->b[t].p99, r->both_a[t].ops_per_s, r->both_b[t].ops_per_s, r->sqlite[t].ops_per_s,
			r->sqlite[t].p50, r->sqlite[t].p99, r->floor[t].ops_per_s,
			ratio(r->a[t].ops_per_s, r->sqlite[t].ops_per_s),
			ratio(r->both_a[t].ops_per_s + r->both_b[t].ops_per_s, r->sqlite[t].ops_per_s));
	fprintf(rep, "\nTarget (issue 9): host a ≥ 0.8× the SQLite default with strict freshness.\n\n");

	memcpy(rp, r->revoke_pg, sizeof(rp));
	memcpy(rs, r->revoke_sqlite, sizeof(rs));
	/* bench_median sorts: the last is then the largest */
	double mp = bench_median(rp, r->nrevoke), ms = bench_median(rs, r->nrevoke);
	fprintf(rep, "Revoke to refusal: `shadm revoke` then one open, %d rounds; the open comes right after "
		"shadm returns, so the time is shadm's. PostgreSQL (revoke on host a, open on host b): "
		"median %.1f ms, max %.1f ms; SQLite (same host): median %.1f ms, max %.1f ms. Opens with "
		"the wrong outcome (a value after the revoke, or a refusal after the grant): %llu.\n\n",
		r->nrevoke, mp, rp[r->nrevoke - 1], ms, rs[r->nrevoke - 1], (unsigned long long)r->stale);

	fprintf(rep, "Events shipped: both hosts at 8 readers produced %lld resolve events (%.0f/s); the "
		"shared trail grew by %.0f events/s meanwhile, and ", (long long)r->events,
		r->produced_per_s, r->shipped_per_s);
	if (r->drain_s >= 0) {
		double left = (double)r->events - r->shipped_per_s * r->ship_secs;
		fprintf(rep, "held every one %.2f s after the reads stopped", r->drain_s);
		if (r->drain_s > 0 && left > 0)
			fprintf(rep, " (the %.0f left then went in at %.0f events/s; a daemon imports its "
				"journal every 0.2 s, in transactions of at most 1024 events)", left,
				left / r->drain_s);
		fprintf(rep, ".\n\n");
	}
	else
		fprintf(rep, "did not hold them all 30 s after the reads stopped.\n\n");

	const struct bench_timeline *tl = &r->restart;
	if (!r->restart_ran) {
		fprintf(rep, "Database restart: not measured (no data directory given, or pg_ctl failed).\n\n");
		return;
	}
	fprintf(rep, "Database restart (`pg_ctl restart -m fast`, %.2f s, started %.2f s into an 8 s "
		"reader loop on host a): %llu opens served, %llu values wrong; ",
		r->restart_took, r->restart_at, (unsigned long long)tl->ok, (unsigned long long)tl->wrong);
	if (tl->first_fail < 0)
		fprintf(rep, "no open failed.\n\n");
	else
		fprintf(rep, "opens failed from %+.2f s to %+.2f s of the restart's start (%llu EIO, %llu "
			"EACCES, %llu other), %s; the longest time without a served open was %.2f s.\n\n",
			tl->first_fail - r->restart_at, tl->last_fail - r->restart_at,
			(unsigned long long)tl->eio, (unsigned long long)tl->eacces,
			(unsigned long long)tl->other,
			tl->recovered > 0 ? "then the same daemon served again" :
					    "and the daemon did not serve again before the loop ended",
			tl->max_gap);
}

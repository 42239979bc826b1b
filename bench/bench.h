/*
 * bench.h - shbench, the benchmark of ScopeHold (issue 4), split by job:
 * shbench.c runs the plan and writes the report, proc.c starts and stops
 * the daemons and always cleans up after them, load.c builds stores
 * through the store API, measure.c runs the timed readers and the
 * per-invocation timings. Private to bench/; error convention as
 * everywhere: 0 or -errno, results through out-parameters.
 */
#ifndef SCOPEHOLD_BENCH_H
#define SCOPEHOLD_BENCH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* The uids the readers run as; they need not exist in /etc/passwd. */
#define BENCH_UID_AGENT 23501        /* bound to the agent "bench" */
#define BENCH_UID_STRANGER 23502     /* bound to nothing */
#define BENCH_UID_EXE 23503          /* bound to "bench-exe" with shbench's path and sha256 */
#define BENCH_UID_RATE 23504         /* bound to "bench-rate", limited to 1e9 resolves a second */
#define BENCH_UID_SCALE_BASE 300000  /* the scale stores' other agents */

/* The one secret everything reads: ~100 bytes, the same in every target. */
extern const char bench_value[];
extern const size_t bench_value_len;

/* ---- proc.c: processes, mounts, cleanup --------------------------------- */

struct bench_paths {
	char tmp[PATH_MAX];          /* the run's temporary directory */
	char shadm[PATH_MAX];
	char scopeholdfs[PATH_MAX];
	char barefs[PATH_MAX];
};

/* A mounted FUSE daemon the harness started. */
struct bench_daemon {
	pid_t pid;
	char mnt[PATH_MAX];
	char log[PATH_MAX];
};

int bench_paths_init(struct bench_paths *bp);
/* Kill every child still running, unmount every mount, on exit and on signals. */
void bench_cleanup_install(void);
void bench_cleanup(void);
/* In a forked child of shbench: a signal kills it, without running the parent's cleanup. */
void bench_child_init(void);
/* What an interrupted run removes after unmounting (NULL: nothing). */
void bench_cleanup_remove(const char *file, const char *dir);
/* Remember a reader child so a signal can kill it too; pid 0 forgets. */
void bench_track_child(pid_t pid);

/* argv[0] is the program; waits until mnt is mounted (10 s deadline). */
int bench_daemon_start(struct bench_daemon *d, char *const argv[], const char *mnt,
		       const char *log);
/* SIGTERM, wait (10 s, then SIGKILL), make sure mnt is gone. */
int bench_daemon_stop(struct bench_daemon *d);
/* VmHWM of a live process in KiB, or -1. */
long bench_proc_hwm_kib(pid_t pid);

/*
 * Run argv with stdin from `in` (NULL: /dev/null), stdout into out
 * (NUL-terminated; NULL discards it), stderr to /dev/null.
 */
int bench_run(char *const argv[], const char *in, char *out, size_t outsz, int *status);
/* Wall time of one fork+exec+wait of argv as uid (uid < 0: as we are); output discarded. */
int bench_time_exec(char *const argv[], int uid, double *secs);

/* snprintf for paths: a path that does not fit ends the program (it cannot happen
 * under /tmp, and a truncated path would measure the wrong file). */
void bench_pathf(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
double bench_now(void);      /* CLOCK_MONOTONIC seconds */
int bench_write_file(const char *path, const void *data, size_t len, mode_t mode);

/* ---- load.c: stores --------------------------------------------------------- */

struct bench_store {
	char dir[PATH_MAX];
	char config[PATH_MAX];       /* default settings */
	char config_kernel[PATH_MAX];
	char config_power[PATH_MAX];
	char config_b[PATH_MAX];     /* a PostgreSQL store's second host */
	char db[PATH_MAX];
	int64_t secrets, agents, grants, events_added;
	double load_secs;            /* store_init to the last commit */
	double audit_secs;           /* padding the trail */
};

/*
 * Create a store in dir with the bench fixture (agent "bench" = BENCH_UID_AGENT,
 * provider "prov" with "secret" granted and "nogrant" a candidate only)
 * and, around it, `secrets` more secrets, secrets/10 agents and `secrets`
 * grants. Then pad the audit trail with records until it holds
 * about `audit_events` events (0: leave it).
 */
int bench_store_build(struct bench_store *bs, const char *dir, const char *mnt,
		      int64_t secrets, int64_t audit_events);
/*
 * Give the cache=kernel and durability=power configurations their own
 * copies of the built store: one scopeholdfs serves one store.
 */
int bench_store_split(const struct bench_store *bs);
/*
 * The same fixture in the empty PostgreSQL database `conninfo`, as two
 * hosts: config (host bench-a, mounting mnt_a) and config_b (bench-b,
 * mnt_b), each with its own state_dir under dir, one key file.
 */
int bench_store_build_pg(struct bench_store *bs, const char *dir, const char *conninfo,
			 const char *mnt_a, const char *mnt_b);
/* The newest seq of the trail of the store config names. */
int bench_store_newest(const char *config, int64_t *seq);
/* Deny rows after seq `after`: how many and the sum of their counts; *max_seq the newest seq. */
int bench_store_denials(const struct bench_store *bs, int64_t after, int64_t *rows,
			int64_t *sum, int64_t *max_seq);

/* ---- measure.c: timed readers ----------------------------------------------- */

struct bench_result {
	double ops_per_s;
	double p50, p99, p999;       /* microseconds */
	uint64_t ops;                /* operations with the expected outcome */
	uint64_t wrong;              /* operations with another outcome */
};

/*
 * open+read+close of path in a loop from `threads` threads of one child
 * running as uid, for secs seconds (or, when max_ops > 0, until max_ops
 * operations are done). expect_errno 0: each read must return the bench
 * value; else each open must fail with that errno.
 */
int bench_measure(const char *path, int uid, int threads, double secs, uint64_t max_ops,
		  int expect_errno, struct bench_result *r);
/* What one reader saw through a disruption (bench_timeline); seconds from its start. */
struct bench_timeline {
	uint64_t ok, wrong;          /* served the exact value / served other bytes (never) */
	uint64_t eio, eacces, other; /* failed opens or reads, by errno */
	double first_fail, last_fail; /* -1: none */
	double recovered;            /* the first success after the first failure; 0: none */
	double max_gap;              /* the longest time without a success */
};
/* One reader as uid opening path back to back for secs s; *t0 = its start (bench_now). */
int bench_timeline(const char *path, int uid, double secs, double *t0, struct bench_timeline *out);
/* Median over n results of each field. */
void bench_result_median(const struct bench_result *v, int n, struct bench_result *out);
/* Median of n seconds of (write 100 bytes, fdatasync) appends to a file in dir. */
int bench_fdatasync_median(const char *dir, int n, double *secs);
double bench_median(double *v, int n);

/* ---- pg.c: many hosts, one PostgreSQL store ---------------------------------- */

#define BENCH_PG_NT 3                /* 1, 2 and 8 readers */
#define BENCH_PG_REPEAT 16
#define BENCH_PG_REVOKES 10

struct bench_pg_opts {
	const char *conninfo;        /* an empty database (created SQL_ASCII) */
	const char *data, *bin;      /* its cluster's data directory and pg_ctl's directory, for the restart */
};

struct bench_pg_result {
	bool done;
	struct bench_result a[BENCH_PG_NT], b[BENCH_PG_NT];         /* each host alone */
	struct bench_result both_a[BENCH_PG_NT], both_b[BENCH_PG_NT]; /* both at once */
	struct bench_result sqlite[BENCH_PG_NT], floor[BENCH_PG_NT];  /* interleaved baselines */
	int nrevoke;
	double revoke_pg[BENCH_PG_REVOKES], revoke_sqlite[BENCH_PG_REVOKES];  /* ms */
	uint64_t stale;              /* opens with the wrong outcome right after a change */
	int64_t events;
	double produced_per_s, shipped_per_s, drain_s, ship_secs;
	bool restart_ran;
	double restart_at, restart_took;
	struct bench_timeline restart;
};

/*
 * Build a store in po->conninfo, mount it as two hosts, and measure them
 * against the SQLite default daemon (sqlite_config, sqlite_path: its
 * granted file) and the floor (floor_path), all mounted by the caller.
 */
int bench_pg_run(const struct bench_paths *bp, const struct bench_pg_opts *po,
		 const char *sqlite_config, const char *sqlite_path, const char *floor_path, int repeat,
		 double secs, struct bench_pg_result *out);
void bench_pg_report(FILE *rep, const struct bench_pg_result *r);

#endif

/*
 * shbench.c - the ScopeHold benchmark (issue 4): in one run on one
 * machine, how much an open + read + close of a secret through
 * scopeholdfs costs next to the same read from tmpfs and from a bare FUSE
 * server that does no checks, and how that holds up as the store grows.
 *
 * Absolute times drift on shared machines, so every figure is printed as
 * a ratio to the floor measured in the same run, each measurement is
 * repeated and the medians are reported, and the cases are interleaved
 * repetition by repetition (all mounts stay up) so a slow minute of the
 * machine hurts every case alike. Targets are printed as met/missed next
 * to the figures; a miss is a finding, not a failure: the exit status
 * only says whether the benchmark itself ran.
 */
#include "bench/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define NTHREADS 3
static const int thread_counts[NTHREADS] = { 1, 2, 8 };
#define MAX_SCALES 8
#define MAX_REPEAT 64

struct opts {
	bool quick, keep;
	int repeat;
	double duration;
	int64_t scales[MAX_SCALES];
	int nscales;
	int64_t audit_events;
	int64_t flood;
	const char *out;
	struct bench_pg_opts pg;     /* --pg: the many-hosts section */
};

/*
 * A wrong uid is refused at the LOOKUP of AGENT/PROVIDER, and the kernel
 * serializes concurrent failing lookups of one name in one directory
 * (d_alloc_parallel waits for the lookup in progress), so such denials
 * cannot scale with readers on any FUSE server. Granted reads are no
 * floor for that; C_BARE_REFUSED is: bare FUSE (default timeouts,
 * direct_io) answering the LOOKUP of /bench/refused with EACCES, the same
 * refusal with no decision behind it.
 */
enum bcase {
	C_TMPFS, C_BARE, C_BARE_CACHE, C_DEF, C_DEF_CACHE, C_SH, C_SH_EXE, C_SH_RATE, C_SH_KERNEL,
	C_SH_POWER,
	C_BARE_REFUSED, C_DENY_UID, C_DENY_GRANT, NCASES
};

static const char *const case_label[NCASES] = {
	"tmpfs", "bare FUSE direct_io", "bare FUSE page cache", "default FUSE direct_io",
	"default FUSE page cache", "scopeholdfs default", "scopeholdfs exe+sha256 agent",
	"scopeholdfs agent with --rate",
	"scopeholdfs cache=kernel",
	"scopeholdfs durability=power", "bare FUSE, lookup refused", "denied: wrong uid",
	"denied: no grant",
};
/*
 * The floors each case is compared with: bare FUSE with scopeholdfs's own
 * zero timeouts ("same options") and bare FUSE with libfuse's default
 * 1 s timeouts ("default"), each in the same cache mode.
 */
static const enum bcase case_bare[NCASES] = {
	C_BARE, C_BARE, C_BARE_CACHE, C_BARE, C_BARE_CACHE, C_BARE, C_BARE, C_BARE, C_BARE_CACHE,
	C_BARE, C_BARE, C_BARE, C_BARE,
};
static const enum bcase case_def[NCASES] = {
	C_DEF, C_DEF, C_DEF_CACHE, C_DEF, C_DEF_CACHE, C_DEF, C_DEF, C_DEF, C_DEF_CACHE, C_DEF, C_DEF,
	C_DEF, C_DEF,
};

static struct bench_paths bp;
static char shm_path[PATH_MAX];
static struct opts o;

static void remove_shm(void)
{
	if (shm_path[0])
		unlink(shm_path);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("shbench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void usage(FILE *f)
{
	fputs("usage: shbench [--quick] [--repeat N] [--duration SECS] [--scale LIST]\n"
	      "               [--audit-events N] [--flood N] [--out FILE] [--keep]\n"
	      "Benchmark scopeholdfs against tmpfs and a bare FUSE server (root, /dev/fuse).\n"
	      "\n"
	      "  --quick            seconds, not minutes: 1 repeat of 0.3 s, scale 1e3,\n"
	      "                     a 1e5-event trail, a 1e4-open denial flood\n"
	      "  --repeat N         runs of each measurement, medians reported (default 5)\n"
	      "  --duration SECS    length of one run (default 2)\n"
	      "  --scale LIST       store sizes in secrets (default 1e3,1e5,1e6)\n"
	      "  --audit-events N   audit trail of the largest store (default 1e7)\n"
	      "  --flood N          denied opens of the denial flood (default 1e6)\n"
	      "  --out FILE         also write the markdown report to FILE\n"
	      "  --keep             keep the temporary directory\n"
	      "  --pg CONNINFO      also measure two daemons sharing a store in this empty\n"
	      "                     PostgreSQL database (created SQL_ASCII)\n"
	      "  --pg-data DIR      its cluster's data directory, and\n"
	      "  --pg-bin DIR       the directory of its pg_ctl: restart it under a reader\n", f);
}

static int parse_count(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0 || v > 1e12 || (*end && *end != ','))
		return -EINVAL;
	*out = (int64_t)(v + 0.5);
	return (int)(end - s);
}

static int parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "quick", no_argument, NULL, 'q' },     { "repeat", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' }, { "scale", required_argument, NULL, 's' },
		{ "audit-events", required_argument, NULL, 'a' },
		{ "flood", required_argument, NULL, 'F' }, { "out", required_argument, NULL, 'o' },
		{ "keep", no_argument, NULL, 'k' },      { "help", no_argument, NULL, 'h' },
		{ "pg", required_argument, NULL, 'P' },  { "pg-data", required_argument, NULL, 'D' },
		{ "pg-bin", required_argument, NULL, 'B' },
		{ NULL, 0, NULL, 0 },
	};
	int repeat = -1, c;
	double duration = -1;
	int64_t audit = -1, flood = -1, v;
	const char *scale = NULL;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'q': o.quick = true; break;
		case 'k': o.keep = true; break;
		case 'o': o.out = optarg; break;
		case 'P': o.pg.conninfo = optarg; break;
		case 'D': o.pg.data = optarg; break;
		case 'B': o.pg.bin = optarg; break;
		case 's': scale = optarg; break;
		case 'r':
			repeat = atoi(optarg);
			if (repeat < 1 || repeat > MAX_REPEAT) {
				say("--repeat must be 1..%d", MAX_REPEAT);
				return 2;
			}
			break;
		case 'd':
			duration = atof(optarg);
			if (!(duration > 0 && duration < 3600)) {
				say("--duration must be a positive number of seconds");
				return 2;
			}
			break;
		case 'a':
			if (parse_count(optarg, &audit) < 0 || optarg[strcspn(optarg, ",")]) {
				say("--audit-events: not a count: %s", optarg);
				return 2;
			}
			break;
		case 'F':
			if (parse_count(optarg, &flood) < 0 || optarg[strcspn(optarg, ",")] || flood < 1) {
				say("--flood: not a count: %s", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		say("unexpected argument '%s' (see --help)", argv[optind]);
		return 2;
	}
	if ((o.pg.data || o.pg.bin) && !(o.pg.conninfo && o.pg.data && o.pg.bin)) {
		say("--pg-data and --pg-bin go together, with --pg");
		return 2;
	}
	o.repeat = repeat > 0 ? repeat : o.quick ? 1 : 5;
	o.duration = duration > 0 ? duration : o.quick ? 0.3 : 2.0;
	o.audit_events = audit >= 0 ? audit : o.quick ? 100000 : 10000000;
	o.flood = flood > 0 ? flood : o.quick ? 10000 : 1000000;
	if (!scale)
		scale = o.quick ? "1e3" : "1e3,1e5,1e6";
	for (const char *s = scale; *s;) {
		int n = parse_count(s, &v);
		if (n < 0 || v < 1 || o.nscales == MAX_SCALES) {
			say("--scale: expected a list like 1e3,1e5,1e6: %s", scale);
			return 2;
		}
		o.scales[o.nscales++] = v;
		s += n;
		if (*s == ',')
			s++;
	}
	return 0;
}

/* ---- report helpers ---------------------------------------------------------- */

static FILE *rep;                  /* the markdown report, built in memory */

static double ratio(double a, double b)
{
	return b > 0 ? a / b : __builtin_nan("");
}

static const char *met(bool ok)
{
	return ok ? "met" : "**missed**";
}

static const char *find_prog(const char *name, char *out, size_t size)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		if ((size_t)snprintf(out, size, "%.*s/%s", (int)n, path, name) < size &&
		    access(out, X_OK) == 0)
			return out;
		path += n;
		if (*path == ':')
			path++;
	}
	return NULL;
}

/* ---- the read matrix ---------------------------------------------------------- */

struct run {
	char path[NCASES][PATH_MAX];
	int uid[NCASES];
	int expect[NCASES];
	struct bench_result all[NCASES][NTHREADS][MAX_REPEAT];
	struct bench_result med[NCASES][NTHREADS];
};

static int measure_matrix(struct run *r)
{
	/* warm up every target: threads spawned, pages and statements cached */
	for (int c = 0; c < NCASES; c++) {
		struct bench_result w;
		int rc = bench_measure(r->path[c], r->uid[c], 8, o.quick ? 0.05 : 0.3, 0, r->expect[c], &w);
		if (rc)
			return rc;
		if (w.wrong) {
			say("%s: %llu operations had the wrong outcome in the warm-up (%s)", case_label[c],
			    (unsigned long long)w.wrong, r->path[c]);
			return -EPROTO;
		}
	}
	for (int rep_i = 0; rep_i < o.repeat; rep_i++) {
		say("measuring reads, run %d of %d", rep_i + 1, o.repeat);
		/*
		 * Reader count outermost: every case then follows a case with as
		 * many readers. With the case outermost, a 1-reader run came right
		 * after an 8-reader run on the same daemon and read 0.70x of the
		 * same agent and path measured at another place in the order
		 * (0.91x in this order; issue 10).
		 */
		for (int t = 0; t < NTHREADS; t++)
			for (int c = 0; c < NCASES; c++) {
				int rc = bench_measure(r->path[c], r->uid[c], thread_counts[t], o.duration, 0,
						       r->expect[c], &r->all[c][t][rep_i]);
				if (rc)
					return rc;
			}
	}
	for (int c = 0; c < NCASES; c++)
		for (int t = 0; t < NTHREADS; t++)
			bench_result_median(r->all[c][t], o.repeat, &r->med[c][t]);
	return 0;
}

/* ---- fsync counting ------------------------------------------------------------ */

/*
 * Count fdatasync/fsync calls of a process for the length of one
 * measurement with `perf stat` on the syscall tracepoints: exact counts,
 * and no ptrace stop per call as strace would add.
 */
static int count_syncs(pid_t daemon, const char *tmp, const char *path, int uid, double secs,
		       uint64_t *syncs, struct bench_result *res)
{
	char perf[PATH_MAX], out[PATH_MAX], pidarg[32];
	if (!find_prog("perf", perf, sizeof(perf)))
		return -ENOENT;
	bench_pathf(out, sizeof(out), "%s/perf-syncs.csv", tmp);
	snprintf(pidarg, sizeof(pidarg), "%d", (int)daemon);
	char *argv[] = { perf, "stat", "-x", ",", "-o", out, "-e",
			 "syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync", "-p", pidarg, NULL };
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
		}
		execv(perf, argv);
		_exit(127);
	}
	struct timespec settle = { 0, 500 * 1000 * 1000 };
	nanosleep(&settle, NULL);
	int rc = bench_measure(path, uid, 8, secs, 0, 0, res);
	kill(pid, SIGINT);
	int st;
	waitpid(pid, &st, 0);
	if (rc)
		return rc;
	FILE *f = fopen(out, "re");
	if (!f)
		return -ENOENT;
	char line[512];
	uint64_t total = 0;
	int seen = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long n;
		if (strstr(line, "syscalls:sys_enter_f") && sscanf(line, "%llu,", &n) == 1) {
			total += n;
			seen++;
		}
	}
	fclose(f);
	if (seen == 0)
		return -ENODATA;
	*syncs = total;
	return 0;
}

/* ---- per-invocation timings ------------------------------------------------------ */

static int time_median(char *const argv[], int uid, int n, double *ms)
{
	double v[64];
	double s;
	if (n > 64)
		n = 64;
	if (bench_time_exec(argv, uid, &s))   /* warm-up (and gpg-agent start) */
		return -EIO;
	for (int i = 0; i < n; i++) {
		if (bench_time_exec(argv, uid, &v[i]))
			return -EIO;
	}
	*ms = bench_median(v, n) * 1000;
	return 0;
}

struct tool_times {
	double cat_tmpfs, cat_bare, cat_sh;
	double pass, age;
	const char *pass_why, *age_why;      /* why there is no figure */
};

static void time_pass(const char *tmp, int n, struct tool_times *tt)
{
	char pass[PATH_MAX], gpg[PATH_MAX], gpgconf[PATH_MAX], home[PATH_MAX], pstore[PATH_MAX];
	if (!find_prog("pass", pass, sizeof(pass)) || !find_prog("gpg", gpg, sizeof(gpg))) {
		tt->pass_why = "not installed";
		return;
	}
	bench_pathf(home, sizeof(home), "%s/gnupg", tmp);
	bench_pathf(pstore, sizeof(pstore), "%s/password-store", tmp);
	mkdir(home, 0700);
	setenv("GNUPGHOME", home, 1);
	setenv("PASSWORD_STORE_DIR", pstore, 1);
	int st;
	char *gen[] = { gpg, "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
			"--quick-gen-key", "shbench@localhost", "default", "default", "never", NULL };
	char *init[] = { pass, "init", "shbench@localhost", NULL };
	char *insert[] = { pass, "insert", "-m", "bench/secret", NULL };
	char *show[] = { pass, "show", "bench/secret", NULL };
	tt->pass_why = "setup failed";
	if (bench_run(gen, NULL, NULL, 0, &st) || st ||
	    bench_run(init, NULL, NULL, 0, &st) || st ||
	    bench_run(insert, shm_path, NULL, 0, &st) || st)
		goto out;
	if (time_median(show, -1, n, &tt->pass) == 0)
		tt->pass_why = NULL;
out:
	if (find_prog("gpgconf", gpgconf, sizeof(gpgconf))) {
		char *kill_agent[] = { gpgconf, "--kill", "all", NULL };
		bench_run(kill_agent, NULL, NULL, 0, &st);
	}
	unsetenv("GNUPGHOME");
	unsetenv("PASSWORD_STORE_DIR");
}

static void time_age(const char *tmp, int n, struct tool_times *tt)
{
	char age[PATH_MAX], keygen[PATH_MAX], key[PATH_MAX], enc[PATH_MAX], pub[256];
	if (!find_prog("age", age, sizeof(age)) || !find_prog("age-keygen", keygen, sizeof(keygen))) {
		tt->age_why = "not installed";
		return;
	}
	bench_pathf(key, sizeof(key), "%s/age-identity.txt", tmp);
	bench_pathf(enc, sizeof(enc), "%s/value.age", tmp);
	int st;
	char *gen[] = { keygen, "-o", key, NULL };
	char *getpub[] = { keygen, "-y", key, NULL };
	tt->age_why = "setup failed";
	if (bench_run(gen, NULL, NULL, 0, &st) || st ||
	    bench_run(getpub, NULL, pub, sizeof(pub), &st) || st)
		return;
	pub[strcspn(pub, "\n")] = '\0';
	char *encrypt[] = { age, "-r", pub, "-o", enc, shm_path, NULL };
	char *decrypt[] = { age, "-d", "-i", key, enc, NULL };
	if (bench_run(encrypt, NULL, NULL, 0, &st) || st)
		return;
	if (time_median(decrypt, -1, n, &tt->age) == 0)
		tt->age_why = NULL;
}

/* ---- scale ------------------------------------------------------------------------- */

struct scale_row {
	struct bench_store bs;
	struct bench_result r[2];     /* 1 and 2 readers, medians */
	long hwm_kib;
	double query_ms;
	double verify_s;
	int64_t events;
	bool ok;
};

static int run_scale(int64_t n, bool largest, struct scale_row *row)
{
	char dir[PATH_MAX], mnt[PATH_MAX], log[PATH_MAX], path[PATH_MAX];
	bench_pathf(dir, sizeof(dir), "%s/scale-%lld", bp.tmp, (long long)n);
	bench_pathf(mnt, sizeof(mnt), "%s/mnt-scale-%lld", bp.tmp, (long long)n);
	bench_pathf(log, sizeof(log), "%s/scopeholdfs-scale-%lld.log", bp.tmp, (long long)n);
	bench_pathf(path, sizeof(path), "%s/bench/prov/secret", mnt);
	say("scale %lld: loading %lld secrets%s", (long long)n, (long long)n,
	    largest && o.audit_events ? " and padding the audit trail" : "");
	int rc = bench_store_build(&row->bs, dir, mnt, n, largest ? o.audit_events : 0);
	if (rc)
		return rc;
	say("scale %lld: loaded in %.1f s (+%.1f s trail), measuring", (long long)n,
	    row->bs.load_secs, row->bs.audit_secs);
	struct bench_daemon d;
	char *argv[] = { bp.scopeholdfs, "-f", "-c", row->bs.config, mnt, NULL };
	if ((rc = bench_daemon_start(&d, argv, mnt, log)))
		return rc;
	struct bench_result w, all[2][MAX_REPEAT];
	rc = bench_measure(path, BENCH_UID_AGENT, 2, o.quick ? 0.05 : 0.3, 0, 0, &w);
	for (int i = 0; rc == 0 && i < o.repeat; i++)
		for (int t = 0; rc == 0 && t < 2; t++)
			rc = bench_measure(path, BENCH_UID_AGENT, t + 1, o.duration, 0, 0, &all[t][i]);
	row->hwm_kib = bench_proc_hwm_kib(d.pid);
	int src = bench_daemon_stop(&d);
	if (rc)
		return rc;
	if (src)
		say("scale %lld: the daemon did not stop cleanly", (long long)n);
	for (int t = 0; t < 2; t++)
		bench_result_median(all[t], o.repeat, &row->r[t]);

	char *query[] = { bp.shadm, "-c", row->bs.config, "audit", "--agent", "bench", "--limit", "100",
			  NULL };
	if ((rc = time_median(query, -1, 5, &row->query_ms))) {
		say("scale %lld: shadm audit failed", (long long)n);
		return rc;
	}
	char *verify[] = { bp.shadm, "-c", row->bs.config, "audit", "verify", NULL };
	char out[512];
	double v[3];
	int runs = largest && o.audit_events >= 1000000 ? 1 : 3, st;
	for (int i = 0; i < runs; i++) {
		double t0 = bench_now();
		if ((rc = bench_run(verify, NULL, out, sizeof(out), &st)) || st) {
			say("scale %lld: shadm audit verify failed", (long long)n);
			return rc ? rc : -EIO;
		}
		v[i] = bench_now() - t0;
	}
	row->verify_s = bench_median(v, runs);
	long long events = 0;
	if (sscanf(out, "audit chain intact: %lld events", &events) != 1) {
		say("scale %lld: unexpected output of shadm audit verify: %s", (long long)n, out);
		return -EPROTO;
	}
	row->events = events;
	row->ok = true;
	return 0;
}

/* ---- the report ------------------------------------------------------------------------ */

struct extra {
	double fsync_s;              /* median of one (write, fdatasync) */
	int fsync_n;
	int sync_rc;                 /* count_syncs result */
	uint64_t syncs;
	struct bench_result sync_run;
	int64_t flood_ops;
	double flood_s;
	struct bench_result flood_res;
	int64_t flood_rows, flood_sum;
	long main_hwm_kib;
	struct tool_times tt;
	int n_invocations;
};

static void report_reads(const struct run *r)
{
	fprintf(rep, "## Reads: open + read + close of a %zu-byte file\n\n", bench_value_len);
	fprintf(rep, "Medians of %d runs of %.2g s each; the cases are interleaved run by run (in each run: every case at 1 reader, then at 2, then at 8). "
		"\"× bare\" divides by bare FUSE with scopeholdfs's own zero entry/attribute timeouts, "
		"\"× default\" by bare FUSE with libfuse's default 1 s timeouts, each in the same cache "
		"mode (direct_io, or page cache for the page-cache rows); \"× tmpfs\" by tmpfs at the "
		"same number of readers. Latencies in microseconds. \"bare FUSE, lookup refused\" opens "
		"/bench/refused/secret on the bare server with default timeouts, which answers the "
		"LOOKUP of `refused` with EACCES: the floor of a refusal at LOOKUP, which the kernel "
		"serializes for one name in one directory; the wrong-uid denial (refused at the LOOKUP "
		"of AGENT/PROVIDER) is divided by it at the same number of readers "
		"(\"× refused-lookup floor\").\n\n", o.repeat, o.duration);
	fprintf(rep, "| case | readers | ops/s | p50 µs | p99 µs | p99.9 µs | × bare ops/s | "
		"× default ops/s | × default p99 | × tmpfs ops/s | target |\n");
	fprintf(rep, "|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (int c = 0; c < NCASES; c++)
		for (int t = 0; t < NTHREADS; t++) {
			const struct bench_result *m = &r->med[c][t], *b = &r->med[case_bare[c]][t],
						  *df = &r->med[case_def[c]][t],
						  *tf = &r->med[C_TMPFS][t], *g = &r->med[C_SH][t];
			char target[160] = "";
			double x = ratio(m->ops_per_s, b->ops_per_s), xd = ratio(m->ops_per_s, df->ops_per_s);
			double pd = ratio(m->p99, df->p99);
			if ((c == C_SH || c == C_SH_KERNEL) && t < 2)
				snprintf(target, sizeof(target), "≥ 0.7× default: %s%s", met(xd >= 0.7),
					 c == C_SH ? (pd <= 1.5 ? "; p99 ≤ 1.5× default: met" :
						      "; p99 ≤ 1.5× default: **missed**") : "");
			else if (c == C_DENY_UID || c == C_DENY_GRANT)
				snprintf(target, sizeof(target), "≥ granted (%.2f×): %s",
					 ratio(m->ops_per_s, g->ops_per_s), met(m->ops_per_s >= g->ops_per_s));
			/* informational: the same refusal on bare FUSE, at the same readers */
			if (c == C_DENY_UID)
				snprintf(target + strlen(target), sizeof(target) - strlen(target),
					 "; × refused-lookup floor %.2f",
					 ratio(m->ops_per_s, r->med[C_BARE_REFUSED][t].ops_per_s));
			fprintf(rep, "| %s | %d | %.0f | %.1f | %.1f | %.1f | %.2f | %.2f | %.2f | %.2f | %s |\n",
				case_label[c], thread_counts[t], m->ops_per_s, m->p50, m->p99, m->p999, x, xd, pd,
				ratio(m->ops_per_s, tf->ops_per_s), target[0] ? target : "-");
		}
	uint64_t wrong = 0;
	for (int c = 0; c < NCASES; c++)
		for (int t = 0; t < NTHREADS; t++)
			wrong += r->med[c][t].wrong;
	fprintf(rep, "\nOperations with an unexpected outcome (wrong bytes or errno), all runs: %llu.\n\n",
		(unsigned long long)wrong);
}

static void report_power(const struct run *r, const struct extra *e)
{
	const struct bench_result *p1 = &r->med[C_SH_POWER][0];
	double floor_us = r->med[C_BARE][0].p50 + e->fsync_s * 1e6;
	fprintf(rep, "## Power-loss durable audit (durability = power)\n\n");
	fprintf(rep, "| figure | value | target |\n|---|---|---|\n");
	fprintf(rep, "| one write + fdatasync of %zu bytes in the store's directory, median of %d | "
		"%.1f µs | - |\n", bench_value_len, e->fsync_n, e->fsync_s * 1e6);
	fprintf(rep, "| single-reader p50 of a granted read | %.1f µs (%.2f× bare FUSE p50 + one "
		"fdatasync = %.1f µs) | ≤ 1.6×: %s |\n", p1->p50, ratio(p1->p50, floor_us), floor_us,
		met(p1->p50 <= 1.6 * floor_us));
	if (e->sync_rc == 0) {
		double per = ratio((double)e->sync_run.ops, (double)e->syncs);
		fprintf(rep, "| 8 readers, one %.2g s run: resolves / fsyncs | %llu / %llu = %.2f | "
			"≥ 6: %s |\n", o.duration, (unsigned long long)e->sync_run.ops,
			(unsigned long long)e->syncs, per, met(per >= 6));
		fprintf(rep, "\nMethod: resolves are the successful opens of that extra run (each one is "
			"one `resolve` event); fsyncs are the daemon's `fdatasync` + `fsync` system calls "
			"over the same run, counted with `perf stat -e syscalls:sys_enter_fdatasync,"
			"syscalls:sys_enter_fsync -p PID` (exact counts, no per-call stop). The daemon does "
			"not print its store_stats counters, so they are not used.\n\n");
	} else {
		fprintf(rep, "| 8 readers: resolves / fsyncs | not measured (%s) | ≥ 6: unknown |\n\n",
			e->sync_rc == -ENOENT ? "perf is not installed" : strerror(-e->sync_rc));
	}
}

static void report_flood(const struct extra *e)
{
	fprintf(rep, "## Denial flood\n\n");
	fprintf(rep, "%lld opens of /bench/prov/secret by a uid bound to no agent (2 threads), on the "
		"default daemon; rows counted after the daemon stopped (so pending coalesced counts "
		"are written).\n\n", (long long)e->flood_ops);
	fprintf(rep, "| denied opens | seconds | opens/s | audit rows added | sum of their counts | "
		"target |\n|---|---|---|---|---|---|\n");
	fprintf(rep, "| %lld | %.1f | %.0f | %lld | %lld | bounded, not %lld: %s |\n\n",
		(long long)e->flood_res.ops, e->flood_s, ratio((double)e->flood_res.ops, e->flood_s),
		(long long)e->flood_rows, (long long)e->flood_sum, (long long)e->flood_ops,
		met(e->flood_rows <= 1000 && e->flood_rows * 100 < e->flood_ops));
}

static void report_tools(const struct extra *e)
{
	const struct tool_times *t = &e->tt;
	fprintf(rep, "## One invocation, as a user would run it\n\n");
	fprintf(rep, "Wall time of fork + exec + wait of one command that prints the %zu-byte secret "
		"(output to /dev/null), median of %d after one warm-up. `cat` runs as the agent's uid; "
		"`pass` and `age` as root with a temporary GNUPGHOME/PASSWORD_STORE_DIR and identity "
		"(GPG key without passphrase, gpg-agent already running).\n\n",
		bench_value_len, e->n_invocations);
	fprintf(rep, "| command | median ms | × scopeholdfs cat |\n|---|---|---|\n");
	fprintf(rep, "| cat from tmpfs | %.3f | %.2f |\n", t->cat_tmpfs, ratio(t->cat_tmpfs, t->cat_sh));
	fprintf(rep, "| cat from bare FUSE | %.3f | %.2f |\n", t->cat_bare, ratio(t->cat_bare, t->cat_sh));
	fprintf(rep, "| cat from scopeholdfs | %.3f | 1.00 |\n", t->cat_sh);
	if (t->pass_why)
		fprintf(rep, "| pass show | %s | - |\n", t->pass_why);
	else
		fprintf(rep, "| pass show | %.3f | %.2f |\n", t->pass, ratio(t->pass, t->cat_sh));
	if (t->age_why)
		fprintf(rep, "| age -d | %s | - |\n", t->age_why);
	else
		fprintf(rep, "| age -d | %.3f | %.2f |\n", t->age, ratio(t->age, t->cat_sh));
	fputc('\n', rep);
}

static void report_scale(const struct scale_row *rows, int n, const struct run *r)
{
	fprintf(rep, "## Scale\n\n");
	fprintf(rep, "Granted reads on scopeholdfs (default settings) with stores of growing size: "
		"N secrets in N/1000 providers, N/10 agents, N grants (plus the three bench agents and their grants); the largest store's trail padded "
		"to %lld events. \"× first\" divides by the smallest store. Load: one batch through "
		"the store API (secrets, agents, grants); trail: padding events through "
		"store_audit_record in batches of 1e6. RSS: the daemon's VmHWM after the runs.\n\n",
		(long long)o.audit_events);
	fprintf(rep, "| secrets | agents | grants | audit events | load s | trail s | 1 reader ops/s | "
		"× first | × main | 2 readers ops/s | × first | × main | p99 µs (1) | daemon VmHWM MiB | "
		"audit --agent --limit 100 ms | audit verify s | verify events/s |\n");
	fprintf(rep, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < n; i++) {
		const struct scale_row *s = &rows[i];
		if (!s->ok) {
			fprintf(rep, "| %lld | failed | | | | | | | | | | | | | | | |\n", (long long)s->bs.secrets);
			continue;
		}
		fprintf(rep, "| %lld | %lld | %lld | %lld | %.1f | %.1f | %.0f | %.2f | %.2f | %.0f | %.2f | "
			"%.2f | %.1f | %.1f | %.1f | %.2f | %.0f |\n",
			(long long)s->bs.secrets, (long long)s->bs.agents + 3, (long long)s->bs.grants + 3,
			(long long)s->events, s->bs.load_secs, s->bs.audit_secs, s->r[0].ops_per_s,
			ratio(s->r[0].ops_per_s, rows[0].r[0].ops_per_s),
			ratio(s->r[0].ops_per_s, r->med[C_SH][0].ops_per_s), s->r[1].ops_per_s,
			ratio(s->r[1].ops_per_s, rows[0].r[1].ops_per_s),
			ratio(s->r[1].ops_per_s, r->med[C_SH][1].ops_per_s), s->r[0].p99,
			(double)s->hwm_kib / 1024, s->query_ms, s->verify_s,
			ratio((double)s->events, s->verify_s));
	}
	fputc('\n', rep);
}

static void report_targets(const struct run *r, const struct extra *e, const struct scale_row *rows,
			   int n)
{
	fprintf(rep, "## Targets (issues 4 and 10)\n\n| target | figure | result |\n|---|---|---|\n");
	for (int t = 0; t < 2; t++) {
		double x = ratio(r->med[C_SH][t].ops_per_s, r->med[C_DEF][t].ops_per_s);
		double p = ratio(r->med[C_SH][t].p99, r->med[C_DEF][t].p99);
		double k = ratio(r->med[C_SH_KERNEL][t].ops_per_s, r->med[C_DEF_CACHE][t].ops_per_s);
		double xs = ratio(r->med[C_SH][t].ops_per_s, r->med[C_BARE][t].ops_per_s);
		fprintf(rep, "| granted, default, %d reader%s: ≥ 0.7× default FUSE (1 s timeouts) | %.2f× | %s |\n",
			thread_counts[t], t ? "s" : "", x, met(x >= 0.7));
		fprintf(rep, "| granted, default, %d reader%s: p99 ≤ 1.5× default FUSE p99 | %.2f× | %s |\n",
			thread_counts[t], t ? "s" : "", p, met(p <= 1.5));
		fprintf(rep, "| cache=kernel, %d reader%s: ≥ 0.7× default FUSE page cache | %.2f× | %s |\n",
			thread_counts[t], t ? "s" : "", k, met(k >= 0.7));
		fprintf(rep, "| granted, default, %d reader%s: ≥ 0.7× same-options bare FUSE (issue 4) | %.2f× | %s |\n",
			thread_counts[t], t ? "s" : "", xs, met(xs >= 0.7));
		double rl = ratio(r->med[C_SH_RATE][t].ops_per_s, r->med[C_SH][t].ops_per_s);
		fprintf(rep, "| granted with a --rate limit counted, %d reader%s: ≥ 0.9× without (issue 12) | %.2f× | %s |\n",
			thread_counts[t], t ? "s" : "", rl, met(rl >= 0.9));
	}
	for (int c = C_DENY_UID; c <= C_DENY_GRANT; c++) {
		bool all = true;
		double worst = __builtin_inf();
		for (int t = 0; t < NTHREADS; t++) {
			double x = ratio(r->med[c][t].ops_per_s, r->med[C_SH][t].ops_per_s);
			if (x < worst)
				worst = x;
			all &= x >= 1;
		}
		fprintf(rep, "| %s at least as fast as granted (1, 2, 8 readers) | worst %.2f× | %s |\n",
			case_label[c], worst, met(all));
	}
	/* no target: how far the wrong-uid denial is from what any FUSE server gets */
	fprintf(rep, "| %s vs bare FUSE refusing the same lookup (1, 2, 8 readers) |",
		case_label[C_DENY_UID]);
	for (int t = 0; t < NTHREADS; t++)
		fprintf(rep, "%s %.2f×", t ? " /" : "",
			ratio(r->med[C_DENY_UID][t].ops_per_s, r->med[C_BARE_REFUSED][t].ops_per_s));
	fprintf(rep, " | - |\n");
	fprintf(rep, "| denial flood of %lld opens: bounded audit rows | %lld rows | %s |\n",
		(long long)e->flood_ops, (long long)e->flood_rows,
		met(e->flood_rows <= 1000 && e->flood_rows * 100 < e->flood_ops));
	if (e->sync_rc == 0) {
		double per = ratio((double)e->sync_run.ops, (double)e->syncs);
		fprintf(rep, "| durability=power, 8 readers: ≥ 6 resolves per fsync | %.2f | %s |\n", per,
			met(per >= 6));
	} else {
		fprintf(rep, "| durability=power, 8 readers: ≥ 6 resolves per fsync | not measured | unknown |\n");
	}
	double pr = ratio(r->med[C_SH_POWER][0].p50, r->med[C_BARE][0].p50 + e->fsync_s * 1e6);
	fprintf(rep, "| durability=power, 1 reader: p50 ≤ 1.6× (bare FUSE p50 + one fdatasync) | %.2f× | %s |\n",
		pr, met(pr <= 1.6));
	const struct scale_row *top = n ? &rows[n - 1] : NULL;
	if (!top || !top->ok || n < 2) {
		fprintf(rep, "| scale targets (1e6 secrets, 1e7 events) | not run | n/a |\n");
	} else {
		bool full = top->bs.secrets >= 1000000 && top->events >= 10000000;
		const char *na = full ? NULL : "n/a (store smaller than 1e6 secrets / 1e7 events)";
		double x1 = ratio(top->r[0].ops_per_s, rows[0].r[0].ops_per_s);
		double x2 = ratio(top->r[1].ops_per_s, rows[0].r[1].ops_per_s);
		double mib = (double)top->hwm_kib / 1024, eps = ratio((double)top->events, top->verify_s);
		double m1 = ratio(top->r[0].ops_per_s, r->med[C_SH][0].ops_per_s);
		double m2 = ratio(top->r[1].ops_per_s, r->med[C_SH][1].ops_per_s);
		fprintf(rep, "| scale %lld: throughput ≥ 0.9× the %lld figure (1 / 2 readers) | %.2f× / %.2f× | %s |\n",
			(long long)top->bs.secrets, (long long)rows[0].bs.secrets, x1, x2,
			na ? na : met(x1 >= 0.9 && x2 >= 0.9));
		fprintf(rep, "| scale %lld: throughput ≥ 0.9× the small main store's (1 / 2 readers) | %.2f× / %.2f× | %s |\n",
			(long long)top->bs.secrets, m1, m2, na ? na : met(m1 >= 0.9 && m2 >= 0.9));
		fprintf(rep, "| scale %lld: daemon RSS ≤ 64 MiB | %.1f MiB | %s |\n",
			(long long)top->bs.secrets, mib, na ? na : met(mib <= 64));
		fprintf(rep, "| scale %lld: `shadm audit --agent X --limit 100` ≤ 100 ms | %.1f ms | %s |\n",
			(long long)top->bs.secrets, top->query_ms, na ? na : met(top->query_ms <= 100));
		fprintf(rep, "| scale %lld: `shadm audit verify` ≥ 1e6 events/s | %.0f events/s | %s |\n",
			(long long)top->bs.secrets, eps, na ? na : met(eps >= 1e6));
		fprintf(rep, "| scale %lld: bulk load of the secrets ≤ 60 s | %.1f s | %s |\n",
			(long long)top->bs.secrets, top->bs.load_secs, na ? na : met(top->bs.load_secs <= 60));
	}
	fputc('\n', rep);
}

/* ---- main ---------------------------------------------------------------------------------- */

static const char *shm_path_for(void)
{
	snprintf(shm_path, sizeof(shm_path), "/dev/shm/shbench.%d.secret", (int)getpid());
	return shm_path;
}

static int write_shm_value(void)
{
	atexit(remove_shm);
	return bench_write_file(shm_path, bench_value, bench_value_len, 0444);
}

int main(int argc, char **argv)
{
	int rc = parse_args(argc, argv);
	if (rc)
		return rc;
	if (geteuid() != 0) {
		say("must run as root (it mounts, and reads as other uids)");
		return 1;
	}
	if (access("/dev/fuse", R_OK | W_OK) < 0) {
		say("/dev/fuse is missing: no FUSE here");
		return 1;
	}
	if ((rc = bench_paths_init(&bp))) {
		say("cannot set up: %s", strerror(-rc));
		return 1;
	}
	bench_cleanup_install();
	say("working in %s", bp.tmp);
	bench_cleanup_remove(shm_path_for(), o.keep ? NULL : bp.tmp);
	if ((rc = write_shm_value())) {
		say("cannot write %s: %s", shm_path, strerror(-rc));
		return 1;
	}

	static struct run r;
	static struct extra e;
	static struct scale_row rows[MAX_SCALES];
	static struct bench_store main_store;
#define NDAEMONS 7
	struct bench_daemon d[NDAEMONS];
	char mnt[NDAEMONS][PATH_MAX], log[PATH_MAX];
	static const char *const mnt_name[NDAEMONS] = { "bare", "bare-cache", "default", "kernel", "power",
							"bare-def", "bare-def-cache" };
	int status = 1, ndaemons = 0;
	char *buf = NULL;
	size_t buflen = 0;
	double t_start = bench_now();

	for (int i = 0; i < NDAEMONS; i++)
		bench_pathf(mnt[i], sizeof(mnt[i]), "%s/mnt-%s", bp.tmp, mnt_name[i]);
	char store_dir[PATH_MAX];
	bench_pathf(store_dir, sizeof(store_dir), "%s/main", bp.tmp);
	say("building the main store in %s", store_dir);
	if (bench_store_build(&main_store, store_dir, mnt[2], 0, 0))
		goto out;
	if ((rc = bench_store_split(&main_store))) {
		say("cannot copy the main store: %s", strerror(-rc));
		goto out;
	}

	/* every mount stays up for the whole matrix, so runs can be interleaved */
	char *argv_d[NDAEMONS][8] = {
		{ bp.barefs, mnt[0], NULL },
		{ bp.barefs, "--kernel-cache", mnt[1], NULL },
		{ bp.scopeholdfs, "-f", "-c", main_store.config, mnt[2], NULL },
		{ bp.scopeholdfs, "-f", "-c", main_store.config_kernel, mnt[3], NULL },
		{ bp.scopeholdfs, "-f", "-c", main_store.config_power, mnt[4], NULL },
		{ bp.barefs, "--default-timeouts", mnt[5], NULL },
		{ bp.barefs, "--default-timeouts", "--kernel-cache", mnt[6], NULL },
	};
	for (int i = 0; i < NDAEMONS; i++) {
		bench_pathf(log, sizeof(log), "%s/%s.log", bp.tmp, mnt_name[i]);
		if ((rc = bench_daemon_start(&d[i], argv_d[i], mnt[i], log))) {
			say("cannot mount %s: %s", mnt[i], strerror(-rc));
			goto out;
		}
		ndaemons++;
	}
	snprintf(r.path[C_TMPFS], PATH_MAX, "%s", shm_path);
	bench_pathf(r.path[C_BARE], PATH_MAX, "%s/bench/prov/secret", mnt[0]);
	bench_pathf(r.path[C_BARE_CACHE], PATH_MAX, "%s/bench/prov/secret", mnt[1]);
	bench_pathf(r.path[C_DEF], PATH_MAX, "%s/bench/prov/secret", mnt[5]);
	bench_pathf(r.path[C_DEF_CACHE], PATH_MAX, "%s/bench/prov/secret", mnt[6]);
	bench_pathf(r.path[C_SH], PATH_MAX, "%s/bench/prov/secret", mnt[2]);
	bench_pathf(r.path[C_SH_EXE], PATH_MAX, "%s/bench-exe/prov/secret", mnt[2]);
	bench_pathf(r.path[C_SH_RATE], PATH_MAX, "%s/bench-rate/prov/secret", mnt[2]);
	bench_pathf(r.path[C_SH_KERNEL], PATH_MAX, "%s/bench/prov/secret", mnt[3]);
	bench_pathf(r.path[C_SH_POWER], PATH_MAX, "%s/bench/prov/secret", mnt[4]);
	bench_pathf(r.path[C_BARE_REFUSED], PATH_MAX, "%s/bench/refused/secret", mnt[5]);
	bench_pathf(r.path[C_DENY_UID], PATH_MAX, "%s/bench/prov/secret", mnt[2]);
	bench_pathf(r.path[C_DENY_GRANT], PATH_MAX, "%s/bench/prov/nogrant", mnt[2]);
	for (int c = 0; c < NCASES; c++)
		r.uid[c] = BENCH_UID_AGENT;
	r.uid[C_SH_EXE] = BENCH_UID_EXE;
	r.uid[C_SH_RATE] = BENCH_UID_RATE;
	r.uid[C_DENY_UID] = BENCH_UID_STRANGER;
	r.uid[C_BARE_REFUSED] = BENCH_UID_STRANGER;
	r.expect[C_DENY_UID] = EACCES;
	r.expect[C_BARE_REFUSED] = EACCES;
	r.expect[C_DENY_GRANT] = EACCES;
	if ((rc = measure_matrix(&r))) {
		say("measurement failed: %s", strerror(-rc));
		goto out;
	}
	static struct bench_pg_result pg;
	if (o.pg.conninfo) {
		say("many hosts: two daemons on one PostgreSQL store");
		if (bench_pg_run(&bp, &o.pg, main_store.config, r.path[C_SH], r.path[C_DEF], o.repeat,
				 o.duration, &pg))
			goto out;
	}

	say("durability=power: fdatasync probe and fsync count");
	e.fsync_n = o.quick ? 50 : 200;
	if ((rc = bench_fdatasync_median(main_store.dir, e.fsync_n, &e.fsync_s))) {
		say("fdatasync probe failed: %s", strerror(-rc));
		goto out;
	}
	e.sync_rc = count_syncs(d[4].pid, bp.tmp, r.path[C_SH_POWER], BENCH_UID_AGENT, o.duration,
				&e.syncs, &e.sync_run);

	say("timing single invocations");
	e.n_invocations = 20;
	char *cat_tmpfs[] = { "/bin/cat", shm_path, NULL };
	char *cat_bare[] = { "/bin/cat", r.path[C_BARE], NULL };
	char *cat_sh[] = { "/bin/cat", r.path[C_SH], NULL };
	if (time_median(cat_tmpfs, BENCH_UID_AGENT, e.n_invocations, &e.tt.cat_tmpfs) ||
	    time_median(cat_bare, BENCH_UID_AGENT, e.n_invocations, &e.tt.cat_bare) ||
	    time_median(cat_sh, BENCH_UID_AGENT, e.n_invocations, &e.tt.cat_sh)) {
		say("cat as the agent's uid failed");
		goto out;
	}
	e.main_hwm_kib = bench_proc_hwm_kib(d[2].pid);

	say("denial flood: %lld opens", (long long)o.flood);
	int64_t rows0, sum0, seq0;
	if (bench_store_denials(&main_store, INT64_MAX, &rows0, &sum0, &seq0))
		goto out;
	e.flood_ops = o.flood;
	double t0 = bench_now();
	rc = bench_measure(r.path[C_DENY_UID], BENCH_UID_STRANGER, 2, 0, (uint64_t)o.flood, EACCES,
			   &e.flood_res);
	e.flood_s = bench_now() - t0;
	if (rc) {
		say("denial flood failed: %s", strerror(-rc));
		goto out;
	}
	for (int i = NDAEMONS - 1; i >= 0; i--)
		if (bench_daemon_stop(&d[i]))
			say("%s did not stop cleanly (log in %s)", mnt[i], bp.tmp);
	ndaemons = 0;
	if (bench_store_denials(&main_store, seq0, &e.flood_rows, &e.flood_sum, &seq0))
		goto out;

	say("pass and age");
	time_pass(bp.tmp, e.n_invocations, &e.tt);
	time_age(bp.tmp, e.n_invocations, &e.tt);

	int nrows = 0;
	for (int i = 0; i < o.nscales; i++) {
		rc = run_scale(o.scales[i], i == o.nscales - 1, &rows[i]);
		nrows++;
		if (rc) {
			say("scale %lld failed: %s", (long long)o.scales[i], strerror(-rc));
			goto out;
		}
		if (!o.keep) {
			char *rm[] = { "/bin/rm", "-rf", rows[i].bs.dir, NULL };
			bench_run(rm, NULL, NULL, 0, NULL);
		}
	}

	char scale_list[MAX_SCALES * 24] = "";
	for (int i = 0; i < o.nscales; i++)
		snprintf(scale_list + strlen(scale_list), sizeof(scale_list) - strlen(scale_list), "%s%lld",
			 i ? "," : "", (long long)o.scales[i]);
	rep = open_memstream(&buf, &buflen);
	if (!rep)
		goto out;
	fprintf(rep, "# ScopeHold benchmark results\n\n");
	fprintf(rep, "shbench%s: %d run%s of %.2g s per measurement, scale %s, trail %lld events, "
		"flood %lld opens; whole run %.0f s.\n\n", o.quick ? " --quick" : "", o.repeat,
		o.repeat > 1 ? "s" : "", o.duration, scale_list, (long long)o.audit_events, (long long)o.flood,
		bench_now() - t_start);
	report_targets(&r, &e, rows, nrows);
	report_reads(&r);
	report_power(&r, &e);
	report_flood(&e);
	fprintf(rep, "Main store daemon (default settings) VmHWM after the runs: %.1f MiB.\n\n",
		(double)e.main_hwm_kib / 1024);
	report_tools(&e);
	report_scale(rows, nrows, &r);
	if (o.pg.conninfo)
		bench_pg_report(rep, &pg);
	fclose(rep);
	rep = NULL;
	fwrite(buf, 1, buflen, stdout);
	if (o.out) {
		if ((rc = bench_write_file(o.out, buf, buflen, 0644))) {
			say("cannot write %s: %s", o.out, strerror(-rc));
			goto out;
		}
	}
	status = 0;
out:
	for (int i = ndaemons - 1; i >= 0; i--)
		bench_daemon_stop(&d[i]);
	bench_cleanup();
	free(buf);
	if (o.keep) {
		say("kept %s", bp.tmp);
	} else {
		char *rm[] = { "/bin/rm", "-rf", bp.tmp, NULL };
		bench_run(rm, NULL, NULL, 0, NULL);
	}
	return status;
}

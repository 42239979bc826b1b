/*
 * load.c - the stores shbench measures, built through the public store
 * API (the same calls shadm makes) inside store_batch_begin/end, so a
 * million secrets are one commit instead of a million fsyncs.
 *
 * Every store holds the bench fixture - agent "bench" bound to
 * BENCH_UID_AGENT, provider "prov" attached to project "bench", the
 * secret prov/secret granted and prov/nogrant a candidate without grant -
 * and around it, for the scale runs, N secrets in N/1000 providers (one
 * project each), N/10 agents each assigned to one project and granted 10
 * of its secrets (N grants). The trail is then padded with resolve-like
 * events through store_audit_record (hash-chained like any other event;
 * every 100th names the agent "bench", so `audit --agent bench` has
 * history to search) until it holds the requested number of events.
 */
#include "bench/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "store/store.h"

const char bench_value[] =
	"sk-bench-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	"0123456789-abcdefghijklmnopq\n";
const size_t bench_value_len = sizeof(bench_value) - 1;

#define SECRETS_PER_PROVIDER 1000
#define GRANTS_PER_AGENT 10

static int write_config(const char *path, const char *dir, const char *db, const char *mnt,
			const char *cache, const char *durability)
{
	char text[4 * PATH_MAX];
	int n = snprintf(text, sizeof(text),
			 "[store]\npath = %s/%s\nkey_file = %s/master.key\n"
			 "[mount]\nmountpoint = %s\ncache = %s\n"
			 "[audit]\ndurability = %s\n",
			 dir, db, dir, mnt, cache, durability);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -ENAMETOOLONG;
	return bench_write_file(path, text, (size_t)n, 0600);
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "shbench: %s: %s\n", what, store_error());
	return rc;
}

/* The sha256 of the executable the readers run (they are forks of shbench). */
static int self_exe(char *path, size_t size, uint8_t sha[crypto_hash_sha256_BYTES])
{
	ssize_t n = readlink("/proc/self/exe", path, size - 1);
	if (n <= 0)
		return -errno;
	path[n] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	crypto_hash_sha256_state h;
	crypto_hash_sha256_init(&h);
	unsigned char buf[65536];
	ssize_t got;
	while ((got = read(fd, buf, sizeof(buf))) > 0)
		crypto_hash_sha256_update(&h, buf, (unsigned long long)got);
	int rc = got < 0 ? -errno : 0;
	close(fd);
	crypto_hash_sha256_final(&h, sha);
	return rc;
}

static int load_fixture(struct store *st)
{
	struct store_agent_row a = { .name = "bench", .uid = BENCH_UID_AGENT, .enabled = true };
	/* the same reads through an agent bound to the reader's executable and its digest */
	static char exe[PATH_MAX];
	struct store_agent_row x = { .name = "bench-exe", .uid = BENCH_UID_EXE, .enabled = true,
				     .exe = exe, .has_exe_sha256 = true };
	/* and through an agent with a rate limit it never reaches: the cost of counting */
	struct store_agent_row rl = { .name = "bench-rate", .uid = BENCH_UID_RATE, .enabled = true,
				      .rate_max = 1000000000, .rate_window = 1 };
	int64_t v;
	int rc;
	if ((rc = self_exe(exe, sizeof(exe), x.exe_sha256)) < 0) {
		fprintf(stderr, "shbench: cannot hash /proc/self/exe: %s\n", strerror(-rc));
		return rc;
	}
	if ((rc = store_provider_add(st, "prov")) ||
	    (rc = store_secret_set(st, "prov", "secret", (const uint8_t *)bench_value,
				   bench_value_len, 0, &v)) ||
	    (rc = store_secret_set(st, "prov", "nogrant", (const uint8_t *)bench_value,
				   bench_value_len, 0, &v)) ||
	    (rc = store_agent_add(st, &a)) ||
	    (rc = store_project_add(st, "bench")) ||
	    (rc = store_project_attach(st, "bench", "prov", NULL)) ||
	    (rc = store_assign(st, "bench", "bench")) ||
	    (rc = store_grant(st, "bench", "prov", "secret", 0, 0)) ||
	    (rc = store_agent_add(st, &x)) ||
	    (rc = store_assign(st, "bench-exe", "bench")) ||
	    (rc = store_grant(st, "bench-exe", "prov", "secret", 0, 0)) ||
	    (rc = store_agent_add(st, &rl)) ||
	    (rc = store_assign(st, "bench-rate", "bench")) ||
	    (rc = store_grant(st, "bench-rate", "prov", "secret", 0, 0)))
		return fail("cannot load the fixture", rc);
	return 0;
}

static int load_scale(struct store *st, int64_t n, int64_t *agents_out, int64_t *grants_out)
{
	int64_t per = n < SECRETS_PER_PROVIDER ? n : SECRETS_PER_PROVIDER;
	int64_t providers = n / per, agents = n / GRANTS_PER_AGENT;
	char prov[32], proj[32], name[32], agent[32];
	int64_t v, grants = 0;
	int rc;

	if (agents < 1)
		agents = 1;
	for (int64_t p = 0; p < providers; p++) {
		snprintf(prov, sizeof(prov), "p%05lld", (long long)p);
		snprintf(proj, sizeof(proj), "proj%05lld", (long long)p);
		if ((rc = store_provider_add(st, prov)) || (rc = store_project_add(st, proj)) ||
		    (rc = store_project_attach(st, proj, prov, NULL)))
			return fail("cannot load providers", rc);
		for (int64_t s = 0; s < per; s++) {
			snprintf(name, sizeof(name), "s%05lld", (long long)s);
			if ((rc = store_secret_set(st, prov, name, (const uint8_t *)bench_value,
						   bench_value_len, 0, &v)))
				return fail("cannot load secrets", rc);
		}
	}
	for (int64_t i = 0; i < agents; i++) {
		struct store_agent_row a = { .name = agent, .enabled = true,
					     .uid = (uid_t)(BENCH_UID_SCALE_BASE + i) };
		int64_t p = i % providers;
		snprintf(agent, sizeof(agent), "a%07lld", (long long)i);
		snprintf(prov, sizeof(prov), "p%05lld", (long long)p);
		snprintf(proj, sizeof(proj), "proj%05lld", (long long)p);
		if ((rc = store_agent_add(st, &a)) || (rc = store_assign(st, agent, proj)))
			return fail("cannot load agents", rc);
		for (int64_t k = 0; k < GRANTS_PER_AGENT && k < per; k++) {
			snprintf(name, sizeof(name), "s%05lld",
				 (long long)(((i / providers) * GRANTS_PER_AGENT + k) % per));
			if ((rc = store_grant(st, agent, prov, name, 0, 0)))
				return fail("cannot load grants", rc);
			grants++;
		}
	}
	*agents_out = agents;
	*grants_out = grants;
	return 0;
}

static int newest_seq(void *ctx, const struct store_event *ev)
{
	*(int64_t *)ctx = ev->seq;
	return 0;
}

static int pad_audit(struct store *st, int64_t target, int64_t agents, int64_t providers,
		     int64_t *added)
{
	struct store_audit_filter f = { .limit = 1, .all_workspaces = true };
	int64_t have = 0;
	char agent[32], secret[64];
	int rc = store_audit_query(st, &f, newest_seq, &have);
	if (rc)
		return fail("cannot read the trail", rc);
	*added = 0;
	/* In batches of a million: one huge transaction would hold the whole WAL. */
	while (have + *added < target) {
		if ((rc = store_batch_begin(st)))
			return fail("cannot start a batch", rc);
		for (int64_t i = 0; i < 1000000 && have + *added < target; i++, (*added)++) {
			int64_t k = have + *added;
			if (k % 100 == 0 || agents == 0)
				snprintf(agent, sizeof(agent), "bench");
			else
				snprintf(agent, sizeof(agent), "a%07lld", (long long)(k % agents));
			if (providers > 0)
				snprintf(secret, sizeof(secret), "p%05lld/s%05lld",
					 (long long)(k % providers), (long long)(k % SECRETS_PER_PROVIDER));
			else
				snprintf(secret, sizeof(secret), "prov/secret");
			if ((rc = store_audit_record(st, "resolve", agent, secret, 1, "")))
				break;
		}
		if ((rc = store_batch_end(st, rc)))
			return fail("cannot pad the trail", rc);
	}
	return 0;
}

/* store_init with bs->config, then the fixture, `secrets` more and the padded trail. */
static int load_store(struct bench_store *bs, int64_t secrets, int64_t audit_events)
{
	struct store_config cfg;
	struct store *st = NULL;
	int rc;

	double t0 = bench_now();
	if ((rc = store_config_load(bs->config, &cfg)))
		return fail("cannot read the config", rc);
	if ((rc = store_init(&cfg, "shbench")))
		return fail("cannot create the store", rc);
	if ((rc = store_open(&cfg, "shbench", &st)))
		return fail("cannot open the store", rc);
	if ((rc = store_batch_begin(st))) {
		store_close(st);
		return fail("cannot start a batch", rc);
	}
	rc = load_fixture(st);
	if (rc == 0 && secrets > 0)
		rc = load_scale(st, secrets, &bs->agents, &bs->grants);
	int erc = store_batch_end(st, rc);
	if (rc == 0 && erc)
		rc = fail("cannot commit the load", erc);
	bs->load_secs = bench_now() - t0;
	bs->secrets = secrets;
	if (rc == 0 && audit_events > 0) {
		int64_t per = secrets < SECRETS_PER_PROVIDER ? secrets : SECRETS_PER_PROVIDER;
		t0 = bench_now();
		rc = pad_audit(st, audit_events, bs->agents, per > 0 ? secrets / per : 0,
			       &bs->events_added);
		bs->audit_secs = bench_now() - t0;
	}
	store_close(st);
	return rc;
}

int bench_store_build(struct bench_store *bs, const char *dir, const char *mnt,
		      int64_t secrets, int64_t audit_events)
{
	int rc;

	memset(bs, 0, sizeof(*bs));
	snprintf(bs->dir, sizeof(bs->dir), "%s", dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((size_t)snprintf(bs->config, sizeof(bs->config), "%s/default.ini", dir) >= sizeof(bs->config) ||
	    (size_t)snprintf(bs->config_kernel, sizeof(bs->config_kernel), "%s/kernel.ini", dir) >=
		    sizeof(bs->config_kernel) ||
	    (size_t)snprintf(bs->config_power, sizeof(bs->config_power), "%s/power.ini", dir) >=
		    sizeof(bs->config_power) ||
	    (size_t)snprintf(bs->db, sizeof(bs->db), "%s/store.db", dir) >= sizeof(bs->db))
		return -ENAMETOOLONG;
	/* one daemon serves a store: the other settings get copies (bench_store_split) */
	if ((rc = write_config(bs->config, dir, "store.db", mnt, "none", "crash")) ||
	    (rc = write_config(bs->config_kernel, dir, "store-kernel.db", mnt, "kernel", "crash")) ||
	    (rc = write_config(bs->config_power, dir, "store-power.db", mnt, "none", "power")))
		return rc;

	return load_store(bs, secrets, audit_events);
}

/* Copy a closed store file (its WAL was checkpointed away at close). */
static int copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		int e = errno;
		close(in);
		return -e;
	}
	char buf[1 << 16];
	ssize_t n;
	int rc = 0;
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t)n) != n) {
			rc = -EIO;
			break;
		}
	}
	if (n < 0)
		rc = -errno;
	close(in);
	if (close(out) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

int bench_store_split(const struct bench_store *bs)
{
	char to[PATH_MAX + 32];
	static const char *const names[] = { "store-kernel.db", "store-power.db" };
	for (int i = 0; i < 2; i++) {
		snprintf(to, sizeof(to), "%s/%s", bs->dir, names[i]);
		int rc = copy_file(bs->db, to);
		if (rc)
			return rc;
	}
	return 0;
}

struct deny_scan {
	int64_t after, rows, sum, max_seq;
};

static int deny_row(void *ctx, const struct store_event *ev)
{
	struct deny_scan *d = ctx;
	if (ev->seq > d->max_seq)
		d->max_seq = ev->seq;
	if (ev->seq > d->after) {
		d->rows++;
		d->sum += ev->count > 0 ? ev->count : 1;
	}
	return 0;
}

int bench_store_denials(const struct bench_store *bs, int64_t after, int64_t *rows,
			int64_t *sum, int64_t *max_seq)
{
	struct store_config cfg;
	struct store *st = NULL;
	struct deny_scan d = { .after = after };
	struct store_audit_filter f = { .type = "deny", .all_workspaces = true };
	int rc;
	if ((rc = store_config_load(bs->config, &cfg)) || (rc = store_open(&cfg, "shbench", &st)))
		return fail("cannot open the store", rc);
	rc = store_audit_query(st, &f, deny_row, &d);
	if (rc == 0) {
		/* the newest event of any type bounds what a later scan counts */
		struct store_audit_filter all = { .limit = 1, .all_workspaces = true };
		int64_t newest = 0;
		rc = store_audit_query(st, &all, newest_seq, &newest);
		if (newest > d.max_seq)
			d.max_seq = newest;
	}
	store_close(st);
	if (rc)
		return fail("cannot read the trail", rc);
	*rows = d.rows;
	*sum = d.sum;
	*max_seq = d.max_seq;
	return 0;
}

/* Two "hosts" of one PostgreSQL store: their own state_dir, host name and mountpoint. */
static int write_config_pg(const char *path, const char *dir, const char *conninfo,
			   const char *host, const char *mnt)
{
	char text[4 * PATH_MAX];
	int n = snprintf(text, sizeof(text),
			 "[store]\nbackend = postgresql\nconninfo = %s\nstate_dir = %s/state-%s\n"
			 "host = %s\nkey_file = %s/master.key\n[mount]\nmountpoint = %s\n",
			 conninfo, dir, host, host, dir, mnt);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -ENAMETOOLONG;
	return bench_write_file(path, text, (size_t)n, 0600);
}

int bench_store_build_pg(struct bench_store *bs, const char *dir, const char *conninfo,
			 const char *mnt_a, const char *mnt_b)
{
	int rc;

	memset(bs, 0, sizeof(*bs));
	snprintf(bs->dir, sizeof(bs->dir), "%s", dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((size_t)snprintf(bs->config, sizeof(bs->config), "%s/host-a.ini", dir) >= sizeof(bs->config) ||
	    (size_t)snprintf(bs->config_b, sizeof(bs->config_b), "%s/host-b.ini", dir) >=
		    sizeof(bs->config_b))
		return -ENAMETOOLONG;
	if ((rc = write_config_pg(bs->config, dir, conninfo, "bench-a", mnt_a)) ||
	    (rc = write_config_pg(bs->config_b, dir, conninfo, "bench-b", mnt_b)))
		return rc;
	return load_store(bs, 0, 0);
}

int bench_store_newest(const char *config, int64_t *seq)
{
	struct store_config cfg;
	struct store *st = NULL;
	struct store_audit_filter all = { .limit = 1, .all_workspaces = true };
	int rc;

	*seq = 0;
	if ((rc = store_config_load(config, &cfg)) || (rc = store_open(&cfg, "shbench", &st)))
		return fail("cannot open the store", rc);
	if ((rc = store_audit_query(st, &all, newest_seq, seq)))
		rc = fail("cannot read the trail", rc);
	store_close(st);
	return rc;
}

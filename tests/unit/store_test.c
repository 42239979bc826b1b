/*
 * store_test.c - tests of the store module on real temporary files: the
 * config file, init and the refusals of open, secret versions, that no
 * plaintext reaches a file, that ciphertexts are bound to their row, the
 * audit chain, the facts and resolve the mount relies on, coalesced
 * denials, key rotation and replacement, workspaces, expiry and
 * cascades, concurrent resolves with durability = power, and fail-closed
 * behaviour when audit writes fail: refused by an injected trigger, and
 * when the disk under the store is full (a tiny tmpfs).
 *
 * Every test makes its own directory under /tmp, so tests share nothing.
 * Tampering goes through a second SQLite connection on the store file,
 * the way an attacker with write access to the file but not the key
 * would do it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <limits.h>
#include <sodium.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/sql.h"
#include "store/store.h"
#include "tests/unit/t.h"

/*
 * SCOPEHOLD_TEST_PG=CONNINFO (tests/store-pg.sh): every store is a fresh
 * database of that PostgreSQL cluster ([store] backend = postgresql), the
 * attacker's direct access goes through the PostgreSQL driver, and the
 * tests that are about the SQLite file itself say "skip".
 */
static const char *T_PG;

/* ---- helpers ------------------------------------------------------------ */

/* printf into a buffer that stays valid until the next call. */
static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
	static char buf[2][2048];
	static int which;
	va_list ap;

	which ^= 1;
	va_start(ap, f);
	vsnprintf(buf[which], sizeof buf[which], f, ap);
	va_end(ap);
	return buf[which];
}

static int write_bytes(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

static int write_text(const char *path, const char *text)
{
	return write_bytes(path, text, strlen(text), 0600);
}

/* Whole file into malloc memory; NULL if unreadable. */
static uint8_t *read_all(const char *path, size_t *len)
{
	struct stat sb;
	uint8_t *buf;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*len = 0;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		close(fd);
		return NULL;
	}
	n = read(fd, buf, (size_t)sb.st_size);
	close(fd);
	if (n != sb.st_size) {
		free(buf);
		return NULL;
	}
	*len = (size_t)n;
	return buf;
}

static bool file_is(const char *path, const uint8_t *want, size_t wlen)
{
	size_t len;
	uint8_t *b = read_all(path, &len);
	bool same = b && len == wlen && memcmp(b, want, wlen) == 0;

	free(b);
	return same;
}

static bool bytes_eq(const uint8_t *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (blen == 0 || (a && memcmp(a, b, blen) == 0));
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_tree(const char *dir)
{
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* One test's world: a directory, a config, a key, a store, an open handle. */
struct env {
	char dir[200];
	char data[240];          /* where key and store live (dir, or a mount inside it) */
	char conf[260];
	char key[260];
	char db[260];
	struct store_config cfg;
	struct store *st;
};

static int env_mkdir(struct env *e)
{
	memset(e, 0, sizeof *e);
	snprintf(e->dir, sizeof e->dir, "/tmp/store_test.XXXXXX");
	if (!mkdtemp(e->dir)) {
		e->dir[0] = '\0';
		return -errno;
	}
	snprintf(e->data, sizeof e->data, "%s", e->dir);
	return 0;
}

/* Write the config (key and store in e->data, then `extra`) and load it. */
static int env_config(struct env *e, const char *extra)
{
	char text[2048];
	int rc;

	snprintf(e->conf, sizeof e->conf, "%s/scopehold.ini", e->dir);
	snprintf(e->key, sizeof e->key, "%s/master.key", e->data);
	snprintf(e->db, sizeof e->db, "%s/store.db", e->data);
	snprintf(text, sizeof text, "[store]\npath = %s\nkey_file = %s\n%s", e->db, e->key,
		 extra ? extra : "");
	if (T_PG) {
		static int n;
		char name[64], sql[160];
		struct sql_db *db = NULL;
		snprintf(name, sizeof name, "st_%d_%d", (int)getpid(), ++n);
		snprintf(sql, sizeof sql, "CREATE DATABASE %s ENCODING 'SQL_ASCII' TEMPLATE template0"
			 " LC_COLLATE 'C' LC_CTYPE 'C'", name);
		rc = sql_open("postgresql", T_PG, false, 5000, 2000, 2000, &db);
		if (rc == 0)
			rc = sql_exec(db, sql);
		if (rc)
			printf("# cannot create database %s: %s\n", name, db ? sql_error(db) : "");
		sql_close(db);
		if (rc)
			return rc;
		snprintf(e->db, sizeof e->db, "%s dbname=%s", T_PG, name);
		snprintf(text, sizeof text, "[store]\nbackend = postgresql\nconninfo = %s\n"
			 "state_dir = %s/state\nkey_file = %s\n%s", e->db, e->data, e->key,
			 extra ? extra : "");
	}
	if ((rc = write_text(e->conf, text)))
		return rc;
	return store_config_load(e->conf, &e->cfg);
}

static int env_init_open(struct env *e)
{
	int rc = store_init(&e->cfg, "tester");

	if (rc)
		return rc;
	return store_open(&e->cfg, "tester", &e->st);
}

static int env_setup(struct env *e, const char *extra)
{
	int rc;

	if ((rc = env_mkdir(e)) || (rc = env_config(e, extra)) || (rc = env_init_open(e))) {
		fprintf(stderr, "setup failed: %d %s\n", rc, store_error());
		return rc;
	}
	return 0;
}

static void env_teardown(struct env *e)
{
	store_close(e->st);
	e->st = NULL;
	rm_tree(e->dir);
}

/* ---- collecting audit events --------------------------------------------- */

#define MAXEV 128
struct ev {
	int64_t seq, time, version, uid, gid, pid, count;
	char type[32], workspace[130], actor[130], agent[130], secret[260], exe[260], reason[260];
	char cgroup[260];
	bool has_fp;
	uint8_t fp[STORE_FINGERPRINT_BYTES];
};
struct evs {
	int n;                   /* rows seen (may exceed MAXEV) */
	int64_t count_sum;       /* sum of count fields */
	bool ordered;            /* seq strictly increasing */
	int64_t last_seq;
	struct ev ev[MAXEV];
};

static int ev_collect(void *ctx, const struct store_event *e)
{
	struct evs *c = ctx;

	if (c->n > 0 && e->seq <= c->last_seq)
		c->ordered = false;
	c->last_seq = e->seq;
	c->count_sum += e->count;
	if (c->n < MAXEV) {
		struct ev *d = &c->ev[c->n];
		d->seq = e->seq;
		d->time = e->time;
		d->version = e->version;
		d->uid = e->uid;
		d->gid = e->gid;
		d->pid = e->pid;
		d->count = e->count;
		snprintf(d->type, sizeof d->type, "%s", e->type);
		snprintf(d->workspace, sizeof d->workspace, "%s", e->workspace);
		snprintf(d->actor, sizeof d->actor, "%s", e->actor);
		snprintf(d->agent, sizeof d->agent, "%s", e->agent);
		snprintf(d->secret, sizeof d->secret, "%s", e->secret);
		snprintf(d->exe, sizeof d->exe, "%s", e->exe);
		snprintf(d->cgroup, sizeof d->cgroup, "%s", e->cgroup);
		snprintf(d->reason, sizeof d->reason, "%s", e->reason);
		d->has_fp = e->has_fingerprint;
		memcpy(d->fp, e->fingerprint, sizeof d->fp);
	}
	c->n++;
	return 0;
}

/* Query into a fresh heap struct evs (caller frees). */
static struct evs *query(struct store *st, const char *agent, const char *secret,
			 const char *type, int64_t limit, int *rc_out)
{
	struct store_audit_filter f = { .agent = agent, .secret = secret, .type = type, .limit = limit };
	struct evs *c = calloc(1, sizeof *c);
	int rc;

	if (!c)
		abort();
	c->ordered = true;
	rc = store_audit_query(st, &f, ev_collect, c);
	if (rc_out)
		*rc_out = rc;
	return c;
}

/* The newest event of a type (any agent/secret), copied; false if none. */
static bool newest(struct store *st, const char *type, struct ev *out)
{
	int rc;
	struct evs *c = query(st, NULL, NULL, type, 1, &rc);
	bool ok = rc == 0 && c->n == 1;

	if (ok)
		*out = c->ev[0];
	free(c);
	return ok;
}

static int64_t count_events(struct store *st)
{
	int rc;
	struct evs *c = query(st, NULL, NULL, NULL, 0, &rc);
	int64_t n = rc == 0 ? c->n : -1;

	free(c);
	return n;
}

/* ---- secret list ---------------------------------------------------------- */

struct secret_find {
	const char *provider, *name;
	bool found;
	struct store_secret_row row;
	int rows;
};

static int secret_find_cb(void *ctx, const struct store_secret_row *r)
{
	struct secret_find *s = ctx;

	s->rows++;
	if (!strcmp(r->provider, s->provider) && !strcmp(r->name, s->name)) {
		s->found = true;
		s->row = *r;
		s->row.provider = s->provider;
		s->row.name = s->name;
	}
	return 0;
}

static struct secret_find find_secret(struct store *st, const char *provider, const char *name)
{
	struct secret_find s = { .provider = provider, .name = name };

	if (store_secret_list(st, NULL, secret_find_cb, &s))
		s.rows = -1;
	return s;
}

/* Reveal and compare; returns the rc, sets *same. */
static int reveal_cmp(struct store *st, const char *p, const char *n, int64_t v,
		      const void *want, size_t wlen, bool *same)
{
	uint8_t *val = (uint8_t *)1;
	size_t len = 99;
	int rc = store_secret_reveal(st, p, n, v, &val, &len);

	*same = rc == 0 && bytes_eq(val, len, want, wlen);
	if (rc != 0 && val != NULL) {
		*same = false;
		printf("# reveal failed but returned a value pointer\n");
		return rc ? rc : -1;
	}
	if (rc == 0)
		store_value_free(val, len);
	return rc;
}

/* ---- direct SQLite access (the attacker's view) ---------------------------- */

static sqlite3 *raw_open(const char *db)
{
	sqlite3 *h = NULL;

	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		sqlite3_close(h);
		return NULL;
	}
	sqlite3_busy_timeout(h, 5000);
	return h;
}

/* The same through the PostgreSQL driver: 0 or non-zero, as sqlite3_exec. */
static int raw_pg_exec(const char *db, const char *sql)
{
	struct sql_db *h = NULL;
	int rc = sql_open("postgresql", db, false, 5000, 2000, 2000, &h);

	if (rc == 0)
		rc = sql_exec(h, sql);
	if (rc)
		printf("# raw sql failed: %s\n", h ? sql_error(h) : "");
	sql_close(h);
	return rc ? SQLITE_ERROR : SQLITE_OK;
}

static int64_t raw_pg_int(const char *db, const char *sql)
{
	struct sql_db *h = NULL;
	struct sql_stmt *s = NULL;
	int64_t v = -1;

	if (sql_open("postgresql", db, false, 5000, 2000, 2000, &h) == 0 &&
	    sql_prepare(h, sql, false, &s) == 0 && sql_step(s) == SQL_ROW)
		v = sql_column_int64(s, 0);
	sql_finalize(s);
	sql_close(h);
	return v;
}

static int raw_exec(const char *db, const char *sql)
{
	sqlite3 *h;
	int rc;

	if (T_PG)
		return raw_pg_exec(db, sql);
	h = raw_open(db);
	if (!h)
		return SQLITE_CANTOPEN;
	rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		printf("# raw sql failed: %s\n", sqlite3_errmsg(h));
	sqlite3_close(h);
	return rc;
}

static int64_t raw_int(const char *db, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *s = NULL;
	int64_t v = -1;

	if (T_PG)
		return raw_pg_int(db, sql);
	h = raw_open(db);
	if (!h)
		return -1;
	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

/* versions.id of WS/PROVIDER/NAME version V, or -1. */
static int64_t version_rowid(const char *db, const char *ws, const char *prov,
			     const char *name, int64_t ver)
{
	return raw_int(db, fmt("SELECT v.id FROM versions v JOIN secrets s ON s.id = v.secret_id"
			       " JOIN providers p ON p.id = s.provider_id"
			       " JOIN workspaces w ON w.id = p.ws_id"
			       " WHERE w.name = '%s' AND p.name = '%s' AND s.name = '%s'"
			       " AND v.version = %lld", ws, prov, name, (long long)ver));
}

static int ct_copy(const char *db, int64_t from_id, int64_t to_id)
{
	return raw_exec(db, fmt("UPDATE versions SET ct = (SELECT ct FROM versions WHERE id = %lld)"
				" WHERE id = %lld", (long long)from_id, (long long)to_id));
}

/* Flip one bit of byte `off` of a version's ciphertext. */
static int ct_flip(const char *db, int64_t id, int off)
{
	sqlite3 *h;
	sqlite3_stmt *s = NULL;
	uint8_t buf[4096];
	int n = -1, rc = SQLITE_ERROR;

	if (T_PG)   /* bytes are 0-based in set_byte too */
		return raw_pg_exec(db, fmt("UPDATE versions SET ct = set_byte(ct, %d, get_byte(ct, %d) # 1)"
					   " WHERE id = %lld", off, off, (long long)id));
	h = raw_open(db);
	if (!h)
		return SQLITE_CANTOPEN;
	if (sqlite3_prepare_v2(h, "SELECT ct FROM versions WHERE id = ?1", -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(s, 1, id);
		if (sqlite3_step(s) == SQLITE_ROW) {
			n = sqlite3_column_bytes(s, 0);
			if (n > 0 && n <= (int)sizeof buf)
				memcpy(buf, sqlite3_column_blob(s, 0), (size_t)n);
		}
	}
	sqlite3_finalize(s);
	s = NULL;
	if (n > off && n <= (int)sizeof buf) {
		buf[off] ^= 0x01;
		if (sqlite3_prepare_v2(h, "UPDATE versions SET ct = ?2 WHERE id = ?1", -1, &s, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(s, 1, id);
			sqlite3_bind_blob(s, 2, buf, n, SQLITE_STATIC);
			rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		}
		sqlite3_finalize(s);
	}
	sqlite3_close(h);
	return rc;
}

static const char *NAME_RULE =
	"use 1-128 of A-Z a-z 0-9 . _ - , not starting with . or -";

/* ---- 1. config ------------------------------------------------------------- */

static void config_bad(const char *dir, const char *text, int line, const char *problem,
		       const char *what)
{
	struct store_config cfg;
	char path[300];
	int rc;

	snprintf(path, sizeof path, "%s/bad.ini", dir);
	if (write_text(path, text)) {
		T_OK(0, "config: write %s", what);
		return;
	}
	rc = store_config_load(path, &cfg);
	T_EQ_INT(rc, -EINVAL, "config: %s is -EINVAL", what);
	T_EQ_STR(store_error(), fmt("%s:%d: %s", path, line, problem), "config: %s message", what);
}

static void test_config(void)
{
	struct store_config cfg;
	struct env e;
	char path[300], path2[300];
	int rc;

	if (env_mkdir(&e)) {
		T_OK(0, "config: mkdtemp");
		return;
	}
	/* defaults from an empty file */
	snprintf(path, sizeof path, "%s/empty.ini", e.dir);
	write_text(path, "; nothing here\n");
	rc = store_config_load(path, &cfg);
	T_EQ_INT(rc, 0, "config: empty file loads");
	T_EQ_STR(cfg.path, path, "config: cfg.path is the file read");
	T_EQ_STR(cfg.store_path, "/var/lib/scopehold/store.db", "config: default store path");
	T_EQ_STR(cfg.key_file, "/etc/scopehold/master.key", "config: default key file");
	T_EQ_STR(cfg.mountpoint, "/run/scopehold", "config: default mountpoint");
	T_EQ_STR(cfg.workspace, STORE_DEFAULT_WORKSPACE, "config: default workspace");
	T_EQ_INT(cfg.max_value, STORE_DEFAULT_MAX_VALUE, "config: default max_value 64 KiB");
	T_EQ_INT(cfg.cache, STORE_CACHE_NONE, "config: default cache none");
	T_EQ_INT(cfg.max_open_per_uid, 256, "config: default max_open_per_uid 256");
	T_EQ_INT(cfg.durability, STORE_DURABLE_CRASH, "config: default durability crash");
	T_EQ_INT(cfg.deny_coalesce_seconds, 60, "config: default coalesce 60s");

	/* every key */
	snprintf(path, sizeof path, "%s/full.ini", e.dir);
	write_text(path,
		   "# full config\n"
		   "[store]\n"
		   "path = /srv/sh/store.db\n"
		   "key_file = /srv/sh/root.key\n"
		   "max_value_bytes = 1000\n"
		   "\n"
		   "[mount]\n"
		   "mountpoint = /mnt/secrets\n"
		   "workspace = staging\n"
		   "cache = kernel\n"
		   "max_open_per_uid = 1000\n"
		   "[audit]\n"
		   "durability = power\n"
		   "coalesce_denials = 5m\n");
	rc = store_config_load(path, &cfg);
	T_EQ_INT(rc, 0, "config: full file loads");
	T_EQ_STR(cfg.store_path, "/srv/sh/store.db", "config: [store] path");
	T_EQ_STR(cfg.key_file, "/srv/sh/root.key", "config: [store] key_file");
	T_EQ_INT(cfg.max_value, 1000, "config: [store] max_value_bytes");
	T_EQ_STR(cfg.mountpoint, "/mnt/secrets", "config: [mount] mountpoint");
	T_EQ_STR(cfg.workspace, "staging", "config: [mount] workspace");
	T_EQ_INT(cfg.cache, STORE_CACHE_KERNEL, "config: [mount] cache = kernel");
	T_EQ_INT(cfg.max_open_per_uid, 1000, "config: [mount] max_open_per_uid = 1000");
	T_EQ_INT(cfg.durability, STORE_DURABLE_POWER, "config: [audit] durability = power");
	T_EQ_INT(cfg.deny_coalesce_seconds, 300, "config: [audit] coalesce_denials = 5m");

	snprintf(path, sizeof path, "%s/other.ini", e.dir);
	write_text(path, "[mount]\ncache = none\n[audit]\ndurability = crash\ncoalesce_denials = 0\n");
	rc = store_config_load(path, &cfg);
	T_EQ_INT(rc, 0, "config: cache none / durability crash / coalesce 0 load");
	T_EQ_INT(cfg.cache, STORE_CACHE_NONE, "config: cache = none");
	T_EQ_INT(cfg.durability, STORE_DURABLE_CRASH, "config: durability = crash");
	T_EQ_INT(cfg.deny_coalesce_seconds, 0, "config: coalesce_denials = 0 turns it off");

	/* refusals, each naming file and line */
	config_bad(e.dir, "[store]\npath = /x\nkeyfile = /y\n", 3,
		   "unknown key 'keyfile' in [store]", "unknown key");
	config_bad(e.dir, "[mount]\nmount_point = /x\n", 2,
		   "unknown key 'mount_point' in [mount]", "unknown key in [mount]");
	config_bad(e.dir, "[store]\npath = /x\n\n[storage]\npath = /y\n", 5,
		   "unknown section [storage]", "unknown section");
	config_bad(e.dir, "[store]\nmax_value_bytes = 0\n", 2,
		   "invalid value for 'max_value_bytes': '0'", "max_value_bytes 0");
	config_bad(e.dir, "[store]\nmax_value_bytes = 12abc\n", 2,
		   "invalid value for 'max_value_bytes': '12abc'", "max_value_bytes 12abc");
	config_bad(e.dir, "[store]\nmax_value_bytes = -5\n", 2,
		   "invalid value for 'max_value_bytes': '-5'", "max_value_bytes -5");
	config_bad(e.dir, "[store]\npath =\n", 2,
		   "invalid value for 'path': ''", "empty path");
	config_bad(e.dir, "[mount]\ncache = maybe\n", 2,
		   "invalid value for 'cache': 'maybe'", "cache maybe");
	config_bad(e.dir, "[mount]\nmax_open_per_uid = 0\n", 2,
		   "invalid value for 'max_open_per_uid': '0'", "max_open_per_uid 0");
	config_bad(e.dir, "[mount]\nmax_open_per_uid = -1\n", 2,
		   "invalid value for 'max_open_per_uid': '-1'", "max_open_per_uid -1");
	config_bad(e.dir, "[mount]\nmax_open_per_uid = 10k\n", 2,
		   "invalid value for 'max_open_per_uid': '10k'", "max_open_per_uid 10k");
	config_bad(e.dir, "[mount]\nmax_open_per_uid = 65537\n", 2,
		   "invalid value for 'max_open_per_uid': '65537'", "max_open_per_uid above 65536");
	config_bad(e.dir, "[mount]\nworkspace = .hidden\n", 2,
		   "invalid value for 'workspace': '.hidden'", "workspace .hidden");
	config_bad(e.dir, "[audit]\n\ndurability = sometimes\n", 3,
		   "invalid value for 'durability': 'sometimes'", "durability sometimes");
	config_bad(e.dir, "[audit]\ncoalesce_denials = forever\n", 2,
		   "invalid value for 'coalesce_denials': 'forever'", "coalesce_denials forever");

	/* missing file */
	snprintf(path, sizeof path, "%s/absent.ini", e.dir);
	rc = store_config_load(path, &cfg);
	T_EQ_INT(rc, -ENOENT, "config: missing file is -ENOENT");
	T_EQ_STR(store_error(), fmt("cannot read config '%s': No such file or directory", path),
		 "config: missing file message");

	/* $SCOPEHOLD_CONFIG when no path is given */
	snprintf(path2, sizeof path2, "%s/env.ini", e.dir);
	write_text(path2, "[store]\npath = /from/env/store.db\n");
	setenv("SCOPEHOLD_CONFIG", path2, 1);
	rc = store_config_load(NULL, &cfg);
	T_EQ_INT(rc, 0, "config: NULL path reads $SCOPEHOLD_CONFIG");
	T_EQ_STR(cfg.path, path2, "config: cfg.path is $SCOPEHOLD_CONFIG");
	T_EQ_STR(cfg.store_path, "/from/env/store.db", "config: value from $SCOPEHOLD_CONFIG file");
	snprintf(path, sizeof path, "%s/full.ini", e.dir);
	rc = store_config_load(path, &cfg);
	T_OK(rc == 0 && !strcmp(cfg.store_path, "/srv/sh/store.db"),
	     "config: an explicit path wins over $SCOPEHOLD_CONFIG");
	setenv("SCOPEHOLD_CONFIG", fmt("%s/nope.ini", e.dir), 1);
	rc = store_config_load(NULL, &cfg);
	T_EQ_INT(rc, -ENOENT, "config: missing $SCOPEHOLD_CONFIG file is -ENOENT");
	T_EQ_STR(store_error(), fmt("cannot read config '%s/nope.ini': No such file or directory", e.dir),
		 "config: missing $SCOPEHOLD_CONFIG message names it");
	unsetenv("SCOPEHOLD_CONFIG");
	rc = store_config_load(NULL, &cfg);
	if (access(STORE_DEFAULT_CONFIG, F_OK) != 0) {
		T_EQ_INT(rc, -ENOENT, "config: without env, the default path is read");
		T_EQ_STR(store_error(), "cannot read config '" STORE_DEFAULT_CONFIG "': No such file or directory",
			 "config: default path message");
	} else {
		T_EQ_STR(cfg.path, STORE_DEFAULT_CONFIG, "config: without env, the default path is read");
	}
	rm_tree(e.dir);
}

/* ---- 2. init ---------------------------------------------------------------- */

static void test_init(void)
{
	if (T_PG) {
		printf("skip - init: the store file, its -wal and -shm and their modes (SQLite file only)\n");
		return;
	}
	struct env e;
	struct stat sb;
	uint8_t *key, *db;
	size_t klen, dlen;
	char wal[300];
	int rc;

	if (env_setup(&e, NULL)) {
		T_OK(0, "init: setup");
		env_teardown(&e);
		return;
	}
	T_OK(lstat(e.key, &sb) == 0 && S_ISREG(sb.st_mode), "init: key file is a regular file");
	T_EQ_INT(sb.st_mode & 07777, 0600, "init: key file mode 0600");
	T_EQ_INT(sb.st_size, STORE_KEY_BYTES, "init: key file is 32 bytes");
	T_OK(lstat(e.db, &sb) == 0 && S_ISREG(sb.st_mode), "init: store is a regular file");
	T_EQ_INT(sb.st_mode & 07777, 0600, "init: store mode 0600");
	snprintf(wal, sizeof wal, "%s-wal", e.db);
	T_OK(lstat(wal, &sb) == 0 && (sb.st_mode & 07777) == 0600, "init: open store's -wal is 0600");
	snprintf(wal, sizeof wal, "%s-shm", e.db);
	T_OK(lstat(wal, &sb) == 0 && (sb.st_mode & 07777) == 0600, "init: open store's -shm is 0600");
	T_EQ_STR(store_workspace_current(e.st), "default", "init: default workspace selected");
	{
		struct evs *c = query(e.st, NULL, NULL, NULL, 0, &rc);
		T_OK(rc == 0 && c->n == 1 && !strcmp(c->ev[0].type, "init") && c->ev[0].seq == 1 &&
		     !strcmp(c->ev[0].actor, "tester"),
		     "init: the trail starts with one 'init' event by the actor");
		free(c);
	}
	store_close(e.st);
	e.st = NULL;

	key = read_all(e.key, &klen);
	db = read_all(e.db, &dlen);
	rc = store_init(&e.cfg, "tester");
	T_EQ_INT(rc, -EEXIST, "init: second init is -EEXIST");
	T_EQ_STR(store_error(), fmt("key file '%s' already exists; refusing to overwrite it", e.key),
		 "init: second init message");
	T_OK(key && file_is(e.key, key, klen), "init: second init leaves the key unchanged");
	T_OK(db && file_is(e.db, db, dlen), "init: second init leaves the store unchanged");

	/* key gone, store there: refuses on the store and creates no key */
	unlink(e.key);
	rc = store_init(&e.cfg, "tester");
	T_EQ_INT(rc, -EEXIST, "init: init over an existing store is -EEXIST");
	T_EQ_STR(store_error(), fmt("store '%s' already exists; refusing to overwrite it", e.db),
		 "init: existing store message");
	T_OK(access(e.key, F_OK) != 0 && errno == ENOENT, "init: refused init created no key file");
	T_OK(db && file_is(e.db, db, dlen), "init: refused init leaves the store unchanged");
	if (key)
		write_bytes(e.key, key, klen, 0600);
	rc = store_open(&e.cfg, "tester", &e.st);
	T_EQ_INT(rc, 0, "init: the store still opens after refused inits");
	free(key);
	free(db);
	env_teardown(&e);
}

/* ---- 3. open refusals ------------------------------------------------------- */

static void expect_open(struct env *e, const struct store_config *cfg, int want_rc,
			const char *want_msg, const char *what)
{
	struct store *st = (struct store *)1;
	int rc = store_open(cfg, "tester", &st);

	T_EQ_INT(rc, want_rc, "open: %s: return code", what);
	if (want_msg)
		T_EQ_STR(store_error(), want_msg, "open: %s: message", what);
	if (rc == 0)
		store_close(st);
	else
		T_OK(st == NULL, "open: %s: no handle", what);
	(void)e;
}

static void test_open_refusals(void)
{
	if (T_PG) {
		printf("skip - open refusals: the store file's mode, owner, type and filesystem (SQLite file only)\n");
		return;
	}
	struct env e;
	uint8_t *key, *db, other[STORE_KEY_BYTES];
	size_t klen, dlen;
	char real[300];
	int rc;

	if (env_setup(&e, NULL)) {
		T_OK(0, "open: setup");
		env_teardown(&e);
		return;
	}
	store_close(e.st);
	e.st = NULL;
	key = read_all(e.key, &klen);
	db = read_all(e.db, &dlen);
	if (!key || !db || klen != STORE_KEY_BYTES) {
		T_OK(0, "open: read key and store");
		goto out;
	}
	expect_open(&e, &e.cfg, 0, NULL, "the untouched store");

	chmod(e.key, 0640);
	expect_open(&e, &e.cfg, -EACCES,
		    fmt("key file '%s' is accessible by group or others (mode 0640); run: chmod 600 %s",
			e.key, e.key), "key mode 0640");
	chmod(e.key, 0604);
	expect_open(&e, &e.cfg, -EACCES,
		    fmt("key file '%s' is accessible by group or others (mode 0604); run: chmod 600 %s",
			e.key, e.key), "key mode 0604");
	chmod(e.key, 0600);

	chmod(e.db, 0604);
	expect_open(&e, &e.cfg, -EACCES,
		    fmt("store '%s' is accessible by group or others (mode 0604); run: chmod 600 %s",
			e.db, e.db), "store mode 0604");
	chmod(e.db, 0640);
	expect_open(&e, &e.cfg, -EACCES,
		    fmt("store '%s' is accessible by group or others (mode 0640); run: chmod 600 %s",
			e.db, e.db), "store mode 0640");
	chmod(e.db, 0600);

	/* wrong size: header says the key must be 32 bytes (-EKEYREJECTED or -EINVAL) */
	write_bytes(e.key, key, 31, 0600);
	{
		struct store *st = NULL;
		rc = store_open(&e.cfg, "tester", &st);
		T_OK(rc == -EKEYREJECTED || rc == -EINVAL, "open: 31-byte key refused (rc %d)", rc);
		T_EQ_STR(store_error(), fmt("key file '%s' is not a 32-byte key", e.key),
			 "open: 31-byte key message");
		store_close(st);
	}
	{
		uint8_t big[33];
		struct store *st = NULL;
		memcpy(big, key, 32);
		big[32] = 'x';
		write_bytes(e.key, big, 33, 0600);
		rc = store_open(&e.cfg, "tester", &st);
		T_OK(rc == -EKEYREJECTED || rc == -EINVAL, "open: 33-byte key refused (rc %d)", rc);
		T_EQ_STR(store_error(), fmt("key file '%s' is not a 32-byte key", e.key),
			 "open: 33-byte key message");
		store_close(st);
	}

	randombytes_buf(other, sizeof other);
	write_bytes(e.key, other, sizeof other, 0600);
	expect_open(&e, &e.cfg, -EKEYREJECTED, "this key does not open this store", "another random key");
	write_bytes(e.key, key, klen, 0600);
	expect_open(&e, &e.cfg, 0, NULL, "the right key again");

	/* symlink to the right key */
	snprintf(real, sizeof real, "%s/real.key", e.dir);
	rename(e.key, real);
	if (symlink(real, e.key) == 0) {
		expect_open(&e, &e.cfg, -EACCES, fmt("key file '%s' is not a regular file", e.key),
			    "key file is a symlink");
		unlink(e.key);
	} else {
		T_OK(0, "open: make symlink");
	}
	rename(real, e.key);

	/* a directory where the store should be */
	{
		struct store_config c2 = e.cfg;
		snprintf(c2.store_path, sizeof c2.store_path, "%s/adir", e.dir);
		mkdir(c2.store_path, 0700);
		expect_open(&e, &c2, -EACCES, fmt("store '%s/adir' is not a regular file", e.dir),
			    "store is a directory");
	}

	/* owner */
	if (chown(e.key, 1000, 0) == 0) {
		expect_open(&e, &e.cfg, -EACCES,
			    fmt("key file '%s' is owned by uid 1000, not by uid %u (the user running this)",
				e.key, (unsigned)geteuid()), "key owned by uid 1000");
		if (chown(e.key, geteuid(), getegid()) != 0)
			T_OK(0, "open: chown key back");
	} else {
		T_OK(0, "open: chown key to uid 1000 (%s)", strerror(errno));
	}
	if (chown(e.db, 1000, 0) == 0) {
		expect_open(&e, &e.cfg, -EACCES,
			    fmt("store '%s' is owned by uid 1000, not by uid %u (the user running this)",
				e.db, (unsigned)geteuid()), "store owned by uid 1000");
		if (chown(e.db, geteuid(), getegid()) != 0)
			T_OK(0, "open: chown store back");
	}

	/* missing files */
	rename(e.key, real);
	expect_open(&e, &e.cfg, -ENOENT, fmt("key file '%s' does not exist (run 'shadm init')", e.key),
		    "missing key file");
	rename(real, e.key);
	snprintf(real, sizeof real, "%s/moved.db", e.dir);
	rename(e.db, real);
	expect_open(&e, &e.cfg, -ENOENT, fmt("store '%s' does not exist (run 'shadm init')", e.db),
		    "missing store");
	rename(real, e.db);

	/* garbage store */
	{
		uint8_t junk[8192];
		randombytes_buf(junk, sizeof junk);
		write_bytes(e.db, junk, sizeof junk, 0600);
		expect_open(&e, &e.cfg, -EBADMSG,
			    fmt("store '%s' is corrupt or not a ScopeHold store", e.db), "store of random bytes");
		write_bytes(e.db, "hello, not a database\n", 22, 0600);
		expect_open(&e, &e.cfg, -EBADMSG,
			    fmt("store '%s' is corrupt or not a ScopeHold store", e.db), "store of text");
	}
	/* a valid SQLite file that is not ours */
	unlink(e.db);
	{
		sqlite3 *h = NULL;
		if (sqlite3_open(e.db, &h) == SQLITE_OK)
			sqlite3_exec(h, "CREATE TABLE t(x); INSERT INTO t VALUES (1);", NULL, NULL, NULL);
		sqlite3_close(h);
		chmod(e.db, 0600);
		expect_open(&e, &e.cfg, -EBADMSG,
			    fmt("store '%s' is corrupt or not a ScopeHold store", e.db), "foreign SQLite file");
	}
	write_bytes(e.db, db, dlen, 0600);
	expect_open(&e, &e.cfg, 0, NULL, "the restored store");

	/* a workspace that does not exist */
	{
		struct store_config c2 = e.cfg;
		snprintf(c2.workspace, sizeof c2.workspace, "nope");
		expect_open(&e, &c2, -ENOENT, "no workspace 'nope'", "unknown workspace");
	}
out:
	free(key);
	free(db);
	env_teardown(&e);
}

/* ---- 4. secrets -------------------------------------------------------------- */

static int agent_add(struct store *st, const char *name, uid_t uid)
{
	struct store_agent_row a = { .name = name, .uid = uid };

	return store_agent_add(st, &a);
}

static void test_secrets(void)
{
	static const uint8_t v1[] = { 'a', 'l', 'p', 'h', 'a', 0, 'b', 'e', 't', 'a', 0 };
	uint8_t v3[256], big[301];
	struct secret_find sf;
	struct env e;
	struct evs *c;
	bool same;
	int64_t ver = 0, before;
	int i, rc;

	if (env_setup(&e, "max_value_bytes = 300\n")) {
		T_OK(0, "secrets: setup");
		env_teardown(&e);
		return;
	}
	for (i = 0; i < 256; i++)
		v3[i] = (uint8_t)i;
	memset(big, 'B', sizeof big);
	T_EQ_INT(store_provider_add(e.st, "prov"), 0, "secrets: provider add");

	rc = store_secret_set(e.st, "prov", "tok", v1, sizeof v1, 0, &ver);
	T_OK(rc == 0 && ver == 1, "secrets: set creates version 1");
	rc = reveal_cmp(e.st, "prov", "tok", 0, v1, sizeof v1, &same);
	T_OK(rc == 0 && same, "secrets: reveal returns the exact bytes with NULs");
	rc = store_secret_set(e.st, "prov", "tok", (const uint8_t *)"", 0, 0, &ver);
	T_OK(rc == 0 && ver == 2, "secrets: a 0-length value is version 2");
	rc = reveal_cmp(e.st, "prov", "tok", 0, "", 0, &same);
	T_OK(rc == 0 && same, "secrets: reveal of a 0-length value");
	rc = store_secret_set(e.st, "prov", "tok", v3, sizeof v3, 0, &ver);
	T_OK(rc == 0 && ver == 3, "secrets: 256 binary bytes are version 3");
	rc = reveal_cmp(e.st, "prov", "tok", 0, v3, sizeof v3, &same);
	T_OK(rc == 0 && same, "secrets: reveal current gives version 3 bytes");
	rc = reveal_cmp(e.st, "prov", "tok", 1, v1, sizeof v1, &same);
	T_OK(rc == 0 && same, "secrets: reveal of version 1 after rotation");
	rc = reveal_cmp(e.st, "prov", "tok", 2, "", 0, &same);
	T_OK(rc == 0 && same, "secrets: reveal of version 2 (empty)");
	rc = reveal_cmp(e.st, "prov", "tok", 4, "", 0, &same);
	T_EQ_INT(rc, -ENOENT, "secrets: reveal of version 4 is -ENOENT");
	T_EQ_STR(store_error(), "no version 4 of 'prov/tok'", "secrets: no version message");
	rc = reveal_cmp(e.st, "prov", "nope", 0, "", 0, &same);
	T_EQ_INT(rc, -ENOENT, "secrets: reveal of an unknown secret is -ENOENT");
	T_EQ_STR(store_error(), "no secret 'prov/nope'", "secrets: unknown secret message");

	sf = find_secret(e.st, "prov", "tok");
	T_OK(sf.found && sf.row.version == 3 && sf.row.versions == 3 && sf.row.length == 256 &&
	     sf.row.expires == 0, "secrets: list shows version 3 of 3, 256 bytes");

	/* the size limit: refused, nothing stored, nothing audited */
	before = count_events(e.st);
	rc = store_secret_set(e.st, "prov", "tok", big, 301, 0, &ver);
	T_EQ_INT(rc, -EFBIG, "secrets: 301 bytes over a 300 limit is -EFBIG");
	T_EQ_STR(store_error(), "value is larger than the limit of 300 bytes", "secrets: too large message");
	sf = find_secret(e.st, "prov", "tok");
	T_OK(sf.found && sf.row.version == 3 && sf.row.versions == 3, "secrets: refused rotation stored nothing");
	rc = store_secret_set(e.st, "prov", "huge", big, 301, 0, &ver);
	T_EQ_INT(rc, -EFBIG, "secrets: a new secret over the limit is -EFBIG");
	sf = find_secret(e.st, "prov", "huge");
	T_OK(!sf.found && sf.rows == 1, "secrets: refused create made no secret");
	T_EQ_INT(count_events(e.st), before, "secrets: refused sets wrote no audit event");
	rc = store_secret_set(e.st, "prov", "tok", big, 300, 0, &ver);
	T_OK(rc == 0 && ver == 4, "secrets: exactly the limit is accepted");

	rc = store_secret_set(e.st, "nope", "x", v1, sizeof v1, 0, &ver);
	T_EQ_INT(rc, -ENOENT, "secrets: set under an unknown provider is -ENOENT");
	T_EQ_STR(store_error(), "no provider 'nope'", "secrets: unknown provider message");
	rc = store_secret_set(e.st, "prov", "bad/name", v1, sizeof v1, 0, &ver);
	T_EQ_INT(rc, -EINVAL, "secrets: invalid secret name is -EINVAL");
	T_EQ_STR(store_error(), fmt("invalid name 'bad/name': %s", NAME_RULE), "secrets: invalid name message");

	/* rm */
	rc = store_provider_rm(e.st, "prov");
	T_EQ_INT(rc, -ENOTEMPTY, "secrets: provider rm with a secret is -ENOTEMPTY");
	T_EQ_STR(store_error(), "provider 'prov' still holds 1 secret(s)", "secrets: provider rm message");
	T_EQ_INT(store_secret_rm(e.st, "prov", "tok"), 0, "secrets: rm");
	rc = reveal_cmp(e.st, "prov", "tok", 0, "", 0, &same);
	T_EQ_INT(rc, -ENOENT, "secrets: reveal after rm is -ENOENT");
	T_EQ_STR(store_error(), "no secret 'prov/tok'", "secrets: reveal after rm message");
	rc = store_secret_rm(e.st, "prov", "tok");
	T_EQ_INT(rc, -ENOENT, "secrets: second rm is -ENOENT");
	T_EQ_STR(store_error(), "no secret 'prov/tok'", "secrets: second rm message");
	T_EQ_INT(store_provider_rm(e.st, "prov"), 0, "secrets: empty provider rm");

	/* the audit trail of prov/tok, in order */
	{
		static const char *const want_type[] = {
			"create", "reveal", "rotate", "reveal", "rotate", "reveal", "reveal", "reveal",
			"rotate", "rm",
		};
		static const int64_t want_ver[] = { 1, 1, 2, 2, 3, 3, 1, 2, 4, 0 };
		int n = (int)(sizeof want_type / sizeof want_type[0]);
		bool types_ok = true, vers_ok = true, fp_ok = true, who_ok = true;

		c = query(e.st, NULL, "prov/tok", NULL, 0, &rc);
		T_OK(rc == 0 && c->n == n, "secrets: %d events for prov/tok (got %d)", n, c->n);
		T_OK(c->ordered, "secrets: events come oldest first");
		for (i = 0; i < n && i < c->n; i++) {
			if (strcmp(c->ev[i].type, want_type[i])) {
				types_ok = false;
				printf("# event %d: type %s, want %s\n", i, c->ev[i].type, want_type[i]);
			}
			if (c->ev[i].version != want_ver[i])
				vers_ok = false;
			if (c->ev[i].has_fp != (strcmp(want_type[i], "rm") != 0))
				fp_ok = false;
			if (strcmp(c->ev[i].actor, "tester") || strcmp(c->ev[i].workspace, "default"))
				who_ok = false;
		}
		T_OK(types_ok, "secrets: event types create/reveal/rotate/rm in order");
		T_OK(vers_ok, "secrets: event versions right");
		T_OK(fp_ok, "secrets: value events carry a fingerprint, rm does not");
		T_OK(who_ok, "secrets: events name actor 'tester' and workspace 'default'");
		T_OK(n <= c->n && c->ev[1].uid == (int64_t)getuid() && c->ev[1].pid == (int64_t)getpid(),
		     "secrets: reveal event records the revealing uid and pid");
		T_OK(n <= c->n && memcmp(c->ev[0].fp, c->ev[1].fp, STORE_FINGERPRINT_BYTES) == 0 &&
		     memcmp(c->ev[0].fp, c->ev[2].fp, STORE_FINGERPRINT_BYTES) != 0,
		     "secrets: fingerprints match per value and differ between values");
		T_OK(n <= c->n && memcmp(c->ev[2].fp, c->ev[7].fp, STORE_FINGERPRINT_BYTES) == 0,
		     "secrets: fingerprint of the empty value is stable");
		free(c);

		c = query(e.st, NULL, "prov/tok", "rotate", 0, &rc);
		T_OK(rc == 0 && c->n == 3 && c->ev[0].version == 2 && c->ev[2].version == 4,
		     "secrets: type filter gives the 3 rotations");
		free(c);
		c = query(e.st, NULL, "prov/tok", NULL, 3, &rc);
		T_OK(rc == 0 && c->n == 3 && c->ordered && !strcmp(c->ev[0].type, "reveal") &&
		     !strcmp(c->ev[1].type, "rotate") && !strcmp(c->ev[2].type, "rm"),
		     "secrets: limit 3 gives the newest 3, oldest first");
		free(c);
		c = query(e.st, NULL, NULL, "create", 0, &rc);
		T_OK(rc == 0 && c->n == 1 && !strcmp(c->ev[0].secret, "prov/tok"),
		     "secrets: refused creates left no 'create' event");
		free(c);
	}

	/* agent filter */
	T_EQ_INT(agent_add(e.st, "a1", 1001), 0, "secrets: agent a1 add");
	T_EQ_INT(agent_add(e.st, "a2", 1002), 0, "secrets: agent a2 add");
	T_EQ_INT(store_audit_record(e.st, "note", "a1", NULL, 0, "checked"), 0, "secrets: audit record");
	c = query(e.st, "a1", NULL, NULL, 0, &rc);
	T_OK(rc == 0 && c->n == 2 && !strcmp(c->ev[0].type, "agent-add") && !strcmp(c->ev[1].type, "note") &&
	     !strcmp(c->ev[1].reason, "checked"), "secrets: agent filter gives a1's two events");
	free(c);
	c = query(e.st, "a2", NULL, "note", 0, &rc);
	T_OK(rc == 0 && c->n == 0, "secrets: agent and type filters combine");
	free(c);
	env_teardown(&e);
}

/* ---- 5. no plaintext on disk ---------------------------------------------- */

static const char *const canaries[] = {
	"CANARY-one-7f3a9c2e-plaintext-value",
	"CANARY-two-b81d44f0-rotated-value",
	"CANARY-three-after-rewrap-0c9e11",
	"CANARY-four-after-rekey-5aa1d3",
	"CANARY-five-other-workspace-e2",
};
#define NCANARY (int)(sizeof canaries / sizeof canaries[0])

/* Check every regular file in dir for every canary; one line per file. */
static int scan_dir(const char *dir, const char *phase)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int files = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[600];
		struct stat sb;
		uint8_t *buf;
		size_t len;
		int i, hit = -1;

		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (lstat(path, &sb) < 0 || !S_ISREG(sb.st_mode))
			continue;
		buf = read_all(path, &len);
		for (i = 0; buf && i < NCANARY; i++)
			if (memmem(buf, len, canaries[i], strlen(canaries[i])))
				hit = i;
		T_OK(buf && hit < 0, "plaintext: %s: no value in %s (%zu bytes)", phase, de->d_name, len);
		free(buf);
		files++;
	}
	closedir(d);
	return files;
}

static int audit_has_canary(void *ctx, const struct store_event *ev)
{
	const char *fields[] = { ev->type, ev->workspace, ev->actor, ev->agent, ev->secret, ev->exe,
				 ev->reason };
	size_t i;
	int j;

	for (i = 0; i < sizeof fields / sizeof fields[0]; i++)
		for (j = 0; j < NCANARY; j++)
			if (fields[i] && strstr(fields[i], canaries[j]))
				(*(int *)ctx)++;
	return 0;
}

static void test_plaintext(void)
{
	if (T_PG) {
		printf("skip - plaintext: no value in the store file, its WAL or shm (tests/e2e-pg.sh scans pg_dump) (SQLite file only)\n");
		return;
	}
	struct store_audit_filter all = { .all_workspaces = true };
	char wal[300], newkey[300];
	struct env e;
	int64_t kid, n;
	bool same;
	int i, rc, hits = 0, files;

	if (env_setup(&e, NULL)) {
		T_OK(0, "plaintext: setup");
		env_teardown(&e);
		return;
	}
	rc = store_provider_add(e.st, "p");
	rc |= store_secret_set(e.st, "p", "one", (const uint8_t *)canaries[0], strlen(canaries[0]), 0, NULL);
	rc |= store_secret_set(e.st, "p", "two", (const uint8_t *)canaries[0], strlen(canaries[0]), 0, NULL);
	rc |= store_secret_set(e.st, "p", "two", (const uint8_t *)canaries[1], strlen(canaries[1]), 0, NULL);
	rc |= store_key_rotate(e.st, true, &kid, &n);
	rc |= store_secret_set(e.st, "p", "three", (const uint8_t *)canaries[2], strlen(canaries[2]), 0, NULL);
	snprintf(newkey, sizeof newkey, "%s/new.key", e.dir);
	rc |= store_key_rekey(e.st, newkey);
	rc |= store_secret_set(e.st, "p", "four", (const uint8_t *)canaries[3], strlen(canaries[3]), 0, NULL);
	rc |= store_workspace_add(e.st, "w2");
	rc |= store_workspace_use(e.st, "w2");
	rc |= store_provider_add(e.st, "p");
	rc |= store_secret_set(e.st, "p", "five", (const uint8_t *)canaries[4], strlen(canaries[4]), 0, NULL);
	rc |= store_key_rotate(e.st, true, &kid, &n);
	T_EQ_INT(rc, 0, "plaintext: values set, rotated, rewrapped, rekeyed");
	rc = reveal_cmp(e.st, "p", "five", 0, canaries[4], strlen(canaries[4]), &same);
	T_OK(rc == 0 && same, "plaintext: w2 value reveals after rewrap");
	rc = store_workspace_use(e.st, "default");
	for (i = 0; i < 4; i++) {
		static const char *const names[] = { "one", "two", "three", "four" };
		rc = reveal_cmp(e.st, "p", names[i], 0, canaries[i], strlen(canaries[i]), &same);
		T_OK(rc == 0 && same, "plaintext: p/%s reveals after rewrap and rekey", names[i]);
	}
	rc = reveal_cmp(e.st, "p", "two", 1, canaries[0], strlen(canaries[0]), &same);
	T_OK(rc == 0 && same, "plaintext: p/two version 1 reveals after rewrap and rekey");

	rc = store_audit_query(e.st, &all, audit_has_canary, &hits);
	T_OK(rc == 0 && hits == 0, "plaintext: no audit field holds a value");

	snprintf(wal, sizeof wal, "%s-wal", e.db);
	T_OK(access(wal, F_OK) == 0, "plaintext: the -wal file exists while open");
	files = scan_dir(e.dir, "open");
	T_OK(files >= 4, "plaintext: scanned %d files while open (store, wal, shm, key, config)", files);
	store_close(e.st);
	e.st = NULL;
	files = scan_dir(e.dir, "closed");
	T_OK(files >= 2, "plaintext: scanned %d files after close", files);
	env_teardown(&e);
}

/* ---- 6. associated data ---------------------------------------------------- */

static void test_binding(void)
{
	struct env e;
	bool same;
	int rc;
	const char *A = "ALPHA-value-0123456789", *B = "BETA--value-9876543210";
	const char *A2 = "ALPHA-value-version-2!", *G = "GAMMA-value-abcdefghij";
	const char *W = "ALPHA-in-w2-0000000000";
	uint8_t *val = (uint8_t *)1;
	size_t len = 5;

	if (env_setup(&e, NULL)) {
		T_OK(0, "binding: setup");
		env_teardown(&e);
		return;
	}
	rc = store_provider_add(e.st, "p");
	rc |= store_secret_set(e.st, "p", "alpha", (const uint8_t *)A, strlen(A), 0, NULL);
	rc |= store_secret_set(e.st, "p", "beta", (const uint8_t *)B, strlen(B), 0, NULL);
	rc |= store_secret_set(e.st, "p", "gamma", (const uint8_t *)G, strlen(G), 0, NULL);
	rc |= store_secret_set(e.st, "p", "alpha", (const uint8_t *)A2, strlen(A2), 0, NULL);
	rc |= store_workspace_add(e.st, "w2");
	rc |= store_workspace_use(e.st, "w2");
	rc |= store_provider_add(e.st, "p");
	rc |= store_secret_set(e.st, "p", "alpha", (const uint8_t *)W, strlen(W), 0, NULL);
	rc |= store_workspace_use(e.st, "default");
	T_EQ_INT(rc, 0, "binding: secrets set");

	/* alpha v1's ciphertext into beta v1's row */
	rc = ct_copy(e.db, version_rowid(e.db, "default", "p", "alpha", 1),
		     version_rowid(e.db, "default", "p", "beta", 1));
	T_EQ_INT(rc, SQLITE_OK, "binding: copied alpha's ct into beta's row");
	rc = store_secret_reveal(e.st, "p", "beta", 0, &val, &len);
	T_EQ_INT(rc, -EBADMSG, "binding: beta with alpha's ciphertext is -EBADMSG");
	T_OK(val == NULL && len == 0, "binding: no value returned");
	T_EQ_STR(store_error(), "'p/beta' version 1 failed its integrity check", "binding: integrity message");
	rc = reveal_cmp(e.st, "p", "alpha", 1, A, strlen(A), &same);
	T_OK(rc == 0 && same, "binding: alpha v1 still reveals");

	/* version binding: v1's ciphertext in v2's row */
	rc = ct_copy(e.db, version_rowid(e.db, "default", "p", "alpha", 1),
		     version_rowid(e.db, "default", "p", "alpha", 2));
	T_EQ_INT(rc, SQLITE_OK, "binding: copied alpha v1's ct into alpha v2's row");
	rc = reveal_cmp(e.st, "p", "alpha", 0, A, strlen(A), &same);
	T_EQ_INT(rc, -EBADMSG, "binding: alpha v2 with v1's ciphertext is -EBADMSG");
	T_EQ_STR(store_error(), "'p/alpha' version 2 failed its integrity check", "binding: version message");

	/* workspace binding: default's alpha v1 into w2's alpha v1 */
	rc = ct_copy(e.db, version_rowid(e.db, "default", "p", "alpha", 1),
		     version_rowid(e.db, "w2", "p", "alpha", 1));
	T_EQ_INT(rc, SQLITE_OK, "binding: copied default's ct into w2's row");
	rc = store_workspace_use(e.st, "w2");
	rc = reveal_cmp(e.st, "p", "alpha", 0, A, strlen(A), &same);
	T_EQ_INT(rc, -EBADMSG, "binding: same names in another workspace is -EBADMSG");
	rc = store_workspace_use(e.st, "default");

	/* one flipped bit, in the ciphertext and in the nonce */
	rc = ct_flip(e.db, version_rowid(e.db, "default", "p", "gamma", 1), 30);
	T_EQ_INT(rc, SQLITE_OK, "binding: flipped a bit of gamma's ciphertext");
	rc = reveal_cmp(e.st, "p", "gamma", 0, G, strlen(G), &same);
	T_EQ_INT(rc, -EBADMSG, "binding: flipped ciphertext bit is -EBADMSG");
	rc = ct_flip(e.db, version_rowid(e.db, "default", "p", "gamma", 1), 30);
	rc = reveal_cmp(e.st, "p", "gamma", 0, G, strlen(G), &same);
	T_OK(rc == 0 && same, "binding: flipped back, gamma reveals again");
	rc = ct_flip(e.db, version_rowid(e.db, "default", "p", "gamma", 1), 0);
	rc = reveal_cmp(e.st, "p", "gamma", 0, G, strlen(G), &same);
	T_EQ_INT(rc, -EBADMSG, "binding: flipped nonce bit is -EBADMSG");
	rc = raw_exec(e.db, fmt("UPDATE versions SET ct = X'00' WHERE id = %lld",
				(long long)version_rowid(e.db, "default", "p", "gamma", 1)));
	rc = reveal_cmp(e.st, "p", "gamma", 0, G, strlen(G), &same);
	T_EQ_INT(rc, -EBADMSG, "binding: truncated ciphertext is -EBADMSG");

	rc = reveal_cmp(e.st, "p", "alpha", 1, A, strlen(A), &same);
	T_OK(rc == 0 && same, "binding: untouched alpha v1 still reveals");
	{
		struct evs *c = query(e.st, NULL, "p/beta", "reveal", 0, &rc);
		T_OK(rc == 0 && c->n == 0, "binding: a failed reveal wrote no reveal event");
		free(c);
	}
	env_teardown(&e);
}

/* ---- 7. audit chain ---------------------------------------------------------- */

/* A store with events 1..6: init provider-add create rotate agent-add note. */
static int chain_setup(struct env *e)
{
	int rc = env_setup(e, NULL);

	if (rc)
		return rc;
	rc = store_provider_add(e->st, "p");
	rc |= store_secret_set(e->st, "p", "s", (const uint8_t *)"v1", 2, 0, NULL);
	rc |= store_secret_set(e->st, "p", "s", (const uint8_t *)"v2", 2, 0, NULL);
	rc |= agent_add(e->st, "bot", 1000);
	rc |= store_audit_record(e->st, "note", NULL, NULL, 0, "six");
	return rc;
}

static void test_audit_chain(void)
{
	struct store_audit_report r;
	uint8_t head[32];
	struct env e;
	int rc;

	if (chain_setup(&e)) {
		T_OK(0, "chain: setup");
		env_teardown(&e);
		return;
	}
	rc = store_audit_verify(e.st, &r);
	T_OK(rc == 0 && r.first_bad == 0 && r.events == 6 && r.problem[0] == '\0',
	     "chain: intact, 6 events (got %lld, first_bad %lld)", (long long)r.events, (long long)r.first_bad);
	memcpy(head, r.head, sizeof head);
	rc = store_audit_verify(e.st, &r);
	T_OK(rc == 0 && memcmp(head, r.head, 32) == 0, "chain: head is stable without new events");
	T_EQ_INT(store_audit_record(e.st, "note", NULL, NULL, 0, "seven"), 0, "chain: record event 7");
	rc = store_audit_verify(e.st, &r);
	T_OK(rc == 0 && r.first_bad == 0 && r.events == 7 && memcmp(head, r.head, 32) != 0,
	     "chain: head changes with event 7");
	memcpy(head, r.head, sizeof head);
	T_EQ_INT(store_provider_add(e.st, "q"), 0, "chain: event 8 via a change");
	rc = store_audit_verify(e.st, &r);
	T_OK(rc == 0 && r.first_bad == 0 && r.events == 8 && memcmp(head, r.head, 32) != 0,
	     "chain: head changes with event 8");

	/* altered row */
	rc = raw_exec(e.db, "UPDATE audit SET reason = 'x' WHERE seq = 3");
	T_EQ_INT(rc, SQLITE_OK, "chain: altered row 3");
	rc = store_audit_verify(e.st, &r);
	T_EQ_INT(rc, 0, "chain: verify of an altered chain returns 0");
	T_EQ_INT(r.first_bad, 3, "chain: altered row 3 is first_bad");
	T_EQ_STR(r.problem, "altered or reordered", "chain: altered problem");
	T_EQ_INT(r.events, 2, "chain: 2 good events before it");
	rc = raw_exec(e.db, "UPDATE audit SET reason = '' WHERE seq = 3");
	rc = store_audit_verify(e.st, &r);
	T_OK(rc == 0 && r.first_bad == 0 && r.events == 8, "chain: restoring the field makes it intact");
	rc = raw_exec(e.db, "UPDATE audit SET time = time + 1 WHERE seq = 8");
	rc = store_audit_verify(e.st, &r);
	T_OK(rc == 0 && r.first_bad == 8, "chain: altered time of the last row is first_bad 8");
	rc = raw_exec(e.db, "UPDATE audit SET time = time - 1 WHERE seq = 8");
	rc = raw_exec(e.db, "UPDATE audit SET fingerprint = NULL WHERE seq = 4");
	rc = store_audit_verify(e.st, &r);
	T_OK(rc == 0 && r.first_bad == 4 && !strcmp(r.problem, "altered or reordered"),
	     "chain: dropped fingerprint of row 4 is first_bad 4");
	env_teardown(&e);

	/* deleted middle row */
	if (chain_setup(&e) == 0) {
		rc = raw_exec(e.db, "DELETE FROM audit WHERE seq = 4");
		T_EQ_INT(rc, SQLITE_OK, "chain: deleted row 4");
		rc = store_audit_verify(e.st, &r);
		T_EQ_INT(rc, 0, "chain: verify of a cut chain returns 0");
		T_EQ_INT(r.first_bad, 4, "chain: removed row 4 is first_bad");
		T_OK(strncmp(r.problem, "removed", 7) == 0, "chain: problem starts with 'removed' (%s)", r.problem);
		T_EQ_INT(r.events, 3, "chain: 3 good events before the gap");
	} else {
		T_OK(0, "chain: setup 2");
	}
	env_teardown(&e);

	/* swapped rows 3 and 4 */
	if (chain_setup(&e) == 0) {
		rc = raw_exec(e.db, "UPDATE audit SET seq = -3 WHERE seq = 3;"
				    "UPDATE audit SET seq = 3 WHERE seq = 4;"
				    "UPDATE audit SET seq = 4 WHERE seq = -3;");
		T_EQ_INT(rc, SQLITE_OK, "chain: swapped rows 3 and 4");
		rc = store_audit_verify(e.st, &r);
		T_OK(rc == 0 && r.first_bad == 3, "chain: swapped rows: first_bad 3 (got %lld)",
		     (long long)r.first_bad);
		T_EQ_STR(r.problem, "altered or reordered", "chain: swapped problem");
		/* a new event is still appended after the damage */
		T_EQ_INT(store_audit_record(e.st, "note", NULL, NULL, 0, "after"), 0,
			 "chain: recording still works after tampering");
		rc = store_audit_verify(e.st, &r);
		T_OK(rc == 0 && r.first_bad == 3, "chain: damage stays reported");
	} else {
		T_OK(0, "chain: setup 3");
	}
	env_teardown(&e);
}

/* ---- 8. facts and resolve ------------------------------------------------------ */

struct cands {
	int n;
	struct { char provider[130], name[130]; int64_t version; size_t length; bool granted; } r[16];
};

static int cand_cb(void *ctx, const struct store_candidate_row *row)
{
	struct cands *c = ctx;

	if (c->n < 16) {
		snprintf(c->r[c->n].provider, sizeof c->r[c->n].provider, "%s", row->provider);
		snprintf(c->r[c->n].name, sizeof c->r[c->n].name, "%s", row->name);
		c->r[c->n].version = row->version;
		c->r[c->n].length = row->length;
		c->r[c->n].granted = row->granted;
	}
	c->n++;
	return 0;
}

/* granted flag of one candidate: 1, 0, or -1 if store_candidate_get failed. */
static int cand_granted(struct store *st, const char *agent, const char *p, const char *n)
{
	struct cands c = { 0 };
	int rc = store_candidate_get(st, agent, p, n, cand_cb, &c);

	if (rc || c.n != 1)
		return -1;
	return c.r[0].granted ? 1 : 0;
}

static int do_resolve(struct store *st, const char *agent, const char *p, const char *n,
		      const struct policy_caller *caller, uint8_t **val, size_t *len,
		      enum policy_reason *why)
{
	struct store_facts f;
	int rc = store_facts_load(st, agent, p, n, &f);

	if (rc)
		return rc;
	return store_resolve(st, &f, caller, val, len, why);
}

static void test_resolve(void)
{
	const struct policy_caller caller = {
		.known = true, .uid = 1000, .gid = 1000, .pid = 4242, .exe = "/usr/bin/agent",
	};
	const char *V1 = "sk-resolve-value-ONE", *V2 = "sk-resolve-value-TWO-rotated";
	struct store_facts f;
	struct env e;
	struct ev create_ev, ev;
	enum policy_reason why;
	uint8_t *val;
	size_t len;
	int rc;

	if (env_setup(&e, NULL)) {
		T_OK(0, "resolve: setup");
		env_teardown(&e);
		return;
	}
	rc = store_provider_add(e.st, "openai");
	rc |= store_provider_add(e.st, "other");
	rc |= store_secret_set(e.st, "openai", "key", (const uint8_t *)V1, strlen(V1), 0, NULL);
	rc |= store_secret_set(e.st, "openai", "tamper", (const uint8_t *)"tamper-me", 9, 0, NULL);
	rc |= store_secret_set(e.st, "other", "cand", (const uint8_t *)"c", 1, 0, NULL);
	rc |= store_secret_set(e.st, "other", "notcand", (const uint8_t *)"n", 1, 0, NULL);
	rc |= agent_add(e.st, "bot", 1000);
	rc |= store_project_add(e.st, "proj");
	rc |= store_project_attach(e.st, "proj", "openai", NULL);
	rc |= store_project_attach(e.st, "proj", "other", "cand");
	rc |= store_assign(e.st, "bot", "proj");
	rc |= store_grant(e.st, "bot", "openai", "key", 0, 0);
	rc |= store_grant(e.st, "bot", "openai", "tamper", 0, 0);
	T_EQ_INT(rc, 0, "resolve: provider/secret/agent/project/attach/assign/grant built");

	rc = store_facts_load(e.st, "bot", "openai", "key", &f);
	T_EQ_INT(rc, 0, "resolve: facts load");
	T_OK(f.p.agent.exists && f.p.agent.enabled && f.p.agent.uid == 1000 && !f.p.agent.has_gid &&
	     f.p.agent.exe == NULL && !f.p.agent.has_exe_sha256, "resolve: agent facts");
	T_OK(f.p.secret.exists && f.p.secret.candidate && f.p.secret.version == 1 && f.p.secret.expires == 0,
	     "resolve: secret facts (exists, candidate, version 1)");
	T_OK(f.p.grant.exists && !f.p.grant.revoked && f.p.grant.expires == 0 && f.p.grant.max_uses == 0 &&
	     f.p.grant.uses == 0, "resolve: grant facts");
	T_OK(f.agent_id > 0 && f.secret_id > 0 && f.grant_id > 0 && f.version_id > 0 &&
	     !strcmp(f.agent_name, "bot") && !strcmp(f.provider, "openai") && !strcmp(f.name, "key"),
	     "resolve: ids and names filled");
	T_EQ_INT(policy_decide(&f.p, &caller, (int64_t)time(NULL)), POLICY_ALLOW,
		 "resolve: policy allows uid 1000");

	rc = store_facts_load(e.st, "bot", "other", "notcand", &f);
	T_OK(rc == 0 && f.p.secret.exists && !f.p.secret.candidate && !f.p.grant.exists,
	     "resolve: facts of a non-candidate");
	rc = store_facts_load(e.st, "bot", "other", "cand", &f);
	T_OK(rc == 0 && f.p.secret.candidate && !f.p.grant.exists && f.grant_id == 0,
	     "resolve: facts of a candidate without grant");
	rc = store_facts_load(e.st, "ghost", "openai", "nokey", &f);
	T_OK(rc == 0 && !f.p.agent.exists && !f.p.secret.exists && f.agent_id == 0,
	     "resolve: unknown agent and secret are facts, not errors");

	/* the allowed resolve and its event */
	val = (uint8_t *)1;
	rc = do_resolve(e.st, "bot", "openai", "key", &caller, &val, &len, &why);
	T_EQ_INT(rc, 0, "resolve: allowed");
	T_OK(rc == 0 && bytes_eq(val, len, V1, strlen(V1)), "resolve: exact value");
	T_EQ_INT(why, POLICY_ALLOW, "resolve: reason allow");
	if (rc == 0)
		store_value_free(val, len);
	if (newest(e.st, "resolve", &ev)) {
		T_OK(!strcmp(ev.agent, "bot") && !strcmp(ev.secret, "openai/key") && ev.version == 1,
		     "resolve: event names agent, secret, version");
		T_OK(ev.uid == 1000 && ev.gid == 1000 && ev.pid == 4242 && !strcmp(ev.exe, "/usr/bin/agent"),
		     "resolve: event has caller uid/gid/pid/exe");
		T_OK(ev.has_fp, "resolve: event has a fingerprint");
		{
			struct evs *c = query(e.st, NULL, "openai/key", "create", 0, &rc);
			bool have = rc == 0 && c->n == 1;
			if (have)
				create_ev = c->ev[0];
			free(c);
			T_OK(have && create_ev.has_fp &&
			     memcmp(create_ev.fp, ev.fp, STORE_FINGERPRINT_BYTES) == 0,
			     "resolve: fingerprint equals the create event's");
		}
	} else {
		T_OK(0, "resolve: a resolve event was written");
	}

	/* another uid: re-decided inside resolve */
	{
		struct policy_caller other = caller;
		other.uid = 1001;
		val = (uint8_t *)1;
		rc = do_resolve(e.st, "bot", "openai", "key", &other, &val, &len, &why);
		T_OK(rc == -EACCES && why == POLICY_UID_MISMATCH && val == NULL,
		     "resolve: uid 1001 is -EACCES uid mismatch, no value");
	}

	/* --uses 2 */
	T_EQ_INT(store_grant(e.st, "bot", "openai", "key", 0, 2), 0, "resolve: re-grant with 2 uses");
	T_EQ_INT(cand_granted(e.st, "bot", "openai", "key"), 1, "resolve: granted (0400) with uses left");
	rc = do_resolve(e.st, "bot", "openai", "key", &caller, &val, &len, &why);
	if (rc == 0)
		store_value_free(val, len);
	T_EQ_INT(rc, 0, "resolve: use 1 of 2");
	rc = do_resolve(e.st, "bot", "openai", "key", &caller, &val, &len, &why);
	if (rc == 0)
		store_value_free(val, len);
	T_EQ_INT(rc, 0, "resolve: use 2 of 2");
	val = (uint8_t *)1;
	rc = do_resolve(e.st, "bot", "openai", "key", &caller, &val, &len, &why);
	T_EQ_INT(rc, -EACCES, "resolve: third use is -EACCES");
	T_EQ_INT(why, POLICY_GRANT_USED_UP, "resolve: reason used-up");
	T_OK(val == NULL && len == 0, "resolve: used-up returns no value");
	rc = store_facts_load(e.st, "bot", "openai", "key", &f);
	T_OK(rc == 0 && f.p.grant.uses == 2 && f.p.grant.max_uses == 2, "resolve: facts show 2 of 2 uses");
	T_EQ_INT(cand_granted(e.st, "bot", "openai", "key"), 0, "resolve: used-up grant shows not granted (0000)");

	/* revoke between facts and resolve */
	T_EQ_INT(store_grant(e.st, "bot", "openai", "key", 0, 0), 0, "resolve: re-grant unlimited");
	rc = store_facts_load(e.st, "bot", "openai", "key", &f);
	T_EQ_INT(policy_decide(&f.p, &caller, (int64_t)time(NULL)), POLICY_ALLOW, "resolve: allowed before revoke");
	T_EQ_INT(store_revoke(e.st, "bot", "openai", "key"), 0, "resolve: revoke");
	val = (uint8_t *)1;
	rc = store_resolve(e.st, &f, &caller, &val, &len, &why);
	T_EQ_INT(rc, -EACCES, "resolve: stale facts after revoke: -EACCES");
	T_EQ_INT(why, POLICY_GRANT_REVOKED, "resolve: reason revoked");
	T_OK(val == NULL, "resolve: revoked returns no value");
	T_EQ_INT(cand_granted(e.st, "bot", "openai", "key"), 0, "resolve: revoked grant shows not granted");
	rc = store_revoke(e.st, "bot", "openai", "key");
	T_EQ_INT(rc, -ENOENT, "resolve: second revoke is -ENOENT");
	T_EQ_STR(store_error(), "agent 'bot' has no live grant of 'openai/key'", "resolve: second revoke message");

	/* rotation between facts and resolve: the new value */
	T_EQ_INT(store_grant(e.st, "bot", "openai", "key", 0, 0), 0, "resolve: grant again");
	rc = store_facts_load(e.st, "bot", "openai", "key", &f);
	T_OK(rc == 0 && f.p.secret.version == 1, "resolve: facts at version 1");
	T_EQ_INT(store_secret_set(e.st, "openai", "key", (const uint8_t *)V2, strlen(V2), 0, NULL), 0,
		 "resolve: rotate to version 2");
	rc = store_resolve(e.st, &f, &caller, &val, &len, &why);
	T_EQ_INT(rc, 0, "resolve: stale facts after rotation still resolve");
	T_OK(rc == 0 && bytes_eq(val, len, V2, strlen(V2)), "resolve: rotation gives the NEW value");
	if (rc == 0)
		store_value_free(val, len);
	T_OK(newest(e.st, "resolve", &ev) && ev.version == 2, "resolve: event records version 2");

	/* tampered ciphertext */
	rc = ct_flip(e.db, version_rowid(e.db, "default", "openai", "tamper", 1), 28);
	T_EQ_INT(rc, SQLITE_OK, "resolve: tampered openai/tamper");
	val = (uint8_t *)1;
	rc = do_resolve(e.st, "bot", "openai", "tamper", &caller, &val, &len, &why);
	T_EQ_INT(rc, -EBADMSG, "resolve: tampered ct is -EBADMSG");
	T_EQ_INT(why, POLICY_INTEGRITY, "resolve: reason integrity");
	T_OK(val == NULL && len == 0, "resolve: tampered returns no value");
	T_OK(newest(e.st, "deny", &ev) && !strcmp(ev.reason, "integrity") && !strcmp(ev.secret, "openai/tamper") &&
	     !strcmp(ev.agent, "bot") && ev.uid == 1000 && ev.pid == 4242,
	     "resolve: deny event with reason integrity and the caller");
	{
		struct evs *c = query(e.st, NULL, "openai/tamper", "resolve", 0, &rc);
		T_OK(rc == 0 && c->n == 0, "resolve: no resolve event for the tampered secret");
		free(c);
	}

	/* candidates */
	{
		struct cands c = { 0 };
		rc = store_candidate_list(e.st, "bot", NULL, cand_cb, &c);
		T_OK(rc == 0 && c.n == 3, "resolve: bot has 3 candidates (got %d)", c.n);
		T_OK(c.n == 3 && !strcmp(c.r[0].provider, "openai") && !strcmp(c.r[0].name, "key") &&
		     !strcmp(c.r[1].name, "tamper") && !strcmp(c.r[2].provider, "other") &&
		     !strcmp(c.r[2].name, "cand"), "resolve: candidates in (provider, name) order");
		T_OK(c.n == 3 && c.r[0].granted && c.r[1].granted && !c.r[2].granted,
		     "resolve: granted flags key=1 tamper=1 cand=0");
		T_OK(c.n == 3 && c.r[0].version == 2 && c.r[0].length == strlen(V2),
		     "resolve: candidate shows current version and length");
		memset(&c, 0, sizeof c);
		rc = store_candidate_list(e.st, "bot", "other", cand_cb, &c);
		T_OK(rc == 0 && c.n == 1 && !strcmp(c.r[0].name, "cand"), "resolve: candidate list by provider");
	}
	T_EQ_INT(cand_granted(e.st, "bot", "other", "cand"), 0, "resolve: candidate without grant is 0000");
	{
		struct cands c = { 0 };
		rc = store_candidate_get(e.st, "bot", "other", "notcand", cand_cb, &c);
		T_EQ_INT(rc, -ENOENT, "resolve: non-candidate get is -ENOENT");
		T_EQ_STR(store_error(), "'other/notcand' is not a candidate of agent 'bot'",
			 "resolve: non-candidate message");
	}
	val = (uint8_t *)1;
	rc = do_resolve(e.st, "bot", "other", "cand", &caller, &val, &len, &why);
	T_OK(rc == -EACCES && why == POLICY_NO_GRANT && val == NULL, "resolve: candidate without grant is no-grant");
	T_EQ_INT(store_grant(e.st, "bot", "other", "notcand", 0, 0), 0,
		 "resolve: a grant needs no candidate");
	rc = do_resolve(e.st, "bot", "other", "notcand", &caller, &val, &len, &why);
	T_OK(rc == -EACCES && why == POLICY_NOT_CANDIDATE, "resolve: granted non-candidate is not-candidate");
	T_EQ_INT(store_agent_enable(e.st, "bot", false), 0, "resolve: disable bot");
	rc = do_resolve(e.st, "bot", "openai", "key", &caller, &val, &len, &why);
	T_OK(rc == -EACCES && why == POLICY_AGENT_DISABLED, "resolve: disabled agent is denied");
	env_teardown(&e);
}

/* ---- 9. deny coalescing --------------------------------------------------------- */

static void test_deny(void)
{
	struct policy_caller caller = { .known = true, .uid = 1000, .gid = 1000, .pid = 77, .exe = "/bin/x" };
	struct env e;
	struct evs *c;
	int i, rc, fails = 0;
	int64_t sum1001 = 0, sum1002 = 0, other = 0;

	if (env_setup(&e, NULL)) {
		T_OK(0, "deny: setup");
		env_teardown(&e);
		return;
	}
	T_EQ_INT(e.cfg.deny_coalesce_seconds, 60, "deny: window 60 s");
	for (i = 0; i < 1000; i++)
		if (store_deny(e.st, "bot", "p", "s", 1, &caller, POLICY_NO_GRANT))
			fails++;
	T_EQ_INT(fails, 0, "deny: 1000 denials accepted");
	T_EQ_INT(store_deny_flush(e.st), 0, "deny: flush");
	c = query(e.st, "bot", NULL, "deny", 0, &rc);
	T_OK(rc == 0 && c->n >= 1 && c->n <= 3, "deny: 1000 denials are at most 3 rows (got %d)", c->n);
	T_EQ_INT(c->count_sum, 1000, "deny: the counts add up to 1000");
	T_OK(c->n >= 1 && !strcmp(c->ev[0].reason, "no-grant") && !strcmp(c->ev[0].secret, "p/s") &&
	     c->ev[0].uid == 1000 && c->ev[0].gid == 1000 && c->ev[0].pid == 77 && !strcmp(c->ev[0].exe, "/bin/x"),
	     "deny: row has reason, secret and caller");
	free(c);
	T_EQ_INT(store_deny_flush(e.st), 0, "deny: second flush");
	c = query(e.st, "bot", NULL, "deny", 0, &rc);
	T_EQ_INT(c->count_sum, 1000, "deny: a second flush writes nothing more");
	free(c);

	/* separate uids are separate rows */
	for (i = 0; i < 12; i++) {
		struct policy_caller k = caller;
		k.uid = (i % 2) ? 1001 : 1002;
		k.gid = k.uid;
		if (store_deny(e.st, "bot2", "p", "s", 1, &k, POLICY_UID_MISMATCH))
			fails++;
	}
	T_EQ_INT(store_deny_flush(e.st), 0, "deny: flush uids");
	c = query(e.st, "bot2", NULL, "deny", 0, &rc);
	for (i = 0; i < c->n && i < MAXEV; i++) {
		if (c->ev[i].uid == 1001)
			sum1001 += c->ev[i].count;
		else if (c->ev[i].uid == 1002)
			sum1002 += c->ev[i].count;
		else
			other++;
	}
	T_OK(rc == 0 && sum1001 == 6 && sum1002 == 6 && other == 0 && c->n >= 2 && c->n <= 4,
	     "deny: uids 1001 and 1002 counted separately (6 and 6 in %d rows)", c->n);
	free(c);

	/* different reasons are separate too */
	for (i = 0; i < 4; i++)
		rc = store_deny(e.st, "bot3", "p", "s", 1, &caller,
				(i % 2) ? POLICY_NO_GRANT : POLICY_GRANT_REVOKED);
	rc = store_deny_flush(e.st);
	c = query(e.st, "bot3", NULL, "deny", 0, &rc);
	{
		int64_t ng = 0, rv = 0;
		for (i = 0; i < c->n && i < MAXEV; i++) {
			if (!strcmp(c->ev[i].reason, "no-grant"))
				ng += c->ev[i].count;
			if (!strcmp(c->ev[i].reason, "revoked"))
				rv += c->ev[i].count;
		}
		T_OK(ng == 2 && rv == 2, "deny: reasons counted separately");
	}
	free(c);

	/* the key is everything the row shows: each program's attempts under its own name */
	{
		struct policy_caller cat = { .known = true, .uid = 1500, .gid = 1500, .pid = 100,
					     .exe = "/usr/bin/cat" };
		struct policy_caller ls = cat, cat2 = cat;
		int64_t sum_cat = 0, sum_ls = 0, sum_cat2 = 0, wrong = 0;

		ls.pid = 200;
		ls.exe = "/usr/bin/ls";
		cat2.pid = 300;            /* the same program, another process */
		for (i = 0; i < 3; i++)
			fails += store_deny(e.st, "who", "p", "s", 1, &cat, POLICY_UID_MISMATCH) != 0;
		for (i = 0; i < 5; i++)
			fails += store_deny(e.st, "who", "p", "s", 1, &ls, POLICY_UID_MISMATCH) != 0;
		for (i = 0; i < 2; i++)
			fails += store_deny(e.st, "who", "p", "s", 1, &cat, POLICY_UID_MISMATCH) != 0;
		fails += store_deny(e.st, "who", "p", "s", 1, &cat2, POLICY_UID_MISMATCH) != 0;
		T_EQ_INT(store_deny_flush(e.st), 0, "deny key: flush");
		c = query(e.st, "who", NULL, "deny", 0, &rc);
		for (i = 0; i < c->n && i < MAXEV; i++) {
			if (c->ev[i].pid == 100 && !strcmp(c->ev[i].exe, "/usr/bin/cat"))
				sum_cat += c->ev[i].count;
			else if (c->ev[i].pid == 200 && !strcmp(c->ev[i].exe, "/usr/bin/ls"))
				sum_ls += c->ev[i].count;
			else if (c->ev[i].pid == 300 && !strcmp(c->ev[i].exe, "/usr/bin/cat"))
				sum_cat2 += c->ev[i].count;
			else
				wrong++;
		}
		T_OK(rc == 0 && sum_ls == 5 && wrong == 0,
		     "deny key: ls's 5 denials are all recorded as ls's pid and exe, never cat's (%lld, %lld other)",
		     (long long)sum_ls, (long long)wrong);
		T_OK(sum_cat == 5 && sum_cat2 == 1,
		     "deny key: cat's 5 and another cat process's 1 are counted apart (%lld, %lld)",
		     (long long)sum_cat, (long long)sum_cat2);
		T_OK(c->n == 5, "deny key: 3 first rows and 2 held counts make 5 rows (got %d)", c->n);
		free(c);

		/* the same pid after an exec is another program */
		struct policy_caller exec = cat;
		exec.exe = "/usr/bin/head";
		fails += store_deny(e.st, "who", "p", "s", 1, &exec, POLICY_UID_MISMATCH) != 0;
		c = query(e.st, "who", NULL, "deny", 0, &rc);
		T_OK(rc == 0 && c->n == 6 && c->ev[5].pid == 100 && !strcmp(c->ev[5].exe, "/usr/bin/head"),
		     "deny key: pid 100 running another executable gets its own row");
		free(c);
	}

	/* a uid spawning a process per attempt: rows stay bounded, counts stay exact */
	{
		struct policy_caller k = { .known = true, .uid = 3000, .gid = 3000, .exe = "/usr/bin/cat" };
		struct policy_caller k2 = { .known = true, .uid = 3001, .gid = 3001, .pid = 9,
					       .exe = "/usr/bin/ls" };
		int named = 0, many = 0, others = 0;
		int64_t sum = 0, many_sum = 0;

		for (i = 0; i < 1000; i++) {
			k.pid = 10000 + i;
			fails += store_deny(e.st, "spawn", "p", "s", 1, &k, POLICY_UID_MISMATCH) != 0;
			if (i == 500)
				fails += store_deny(e.st, "spawn", "p", "s", 1, &k2,
						    POLICY_UID_MISMATCH) != 0;
		}
		T_EQ_INT(store_deny_flush(e.st), 0, "deny spawn: flush");
		c = query(e.st, "spawn", NULL, "deny", 0, &rc);
		for (i = 0; i < c->n && i < MAXEV; i++) {
			if (c->ev[i].uid == 3001) {
				others += c->ev[i].pid == 9 && !strcmp(c->ev[i].exe, "/usr/bin/ls");
				continue;
			}
			sum += c->ev[i].count;
			if (c->ev[i].pid == -1 && !strcmp(c->ev[i].exe, "*")) {
				many++;
				many_sum += c->ev[i].count;
			} else if (c->ev[i].pid >= 10000 && !strcmp(c->ev[i].exe, "/usr/bin/cat")) {
				named++;
			}
		}
		T_OK(rc == 0 && c->n <= 12, "deny spawn: 1000 processes of one uid make at most 12 rows (got %d)", c->n);
		T_EQ_INT(sum, 1000, "deny spawn: the counts add up to the 1000 attempts");
		T_OK(named == 8 && many >= 1 && many_sum == 992,
		     "deny spawn: 8 processes named, the other 992 attempts in pid -1 exe \"*\" rows (%d, %d, %lld)",
		     named, many, (long long)many_sum);
		T_EQ_INT(others, 1, "deny spawn: another uid's process in the middle is still named");
		free(c);
	}

	/* an unestablished process: uid/gid (the kernel's) are kept, pid and exe are not */
	{
		struct policy_caller unknown = { .known = false, .uid = 2345, .gid = 2346, .pid = 7,
						 .exe = "/usr/bin/sleep" };
		rc = store_deny(e.st, "bot5", "p", "s", 1, &unknown, POLICY_CALLER_UNKNOWN);
		T_EQ_INT(rc, 0, "deny: caller-unknown is recorded");
		c = query(e.st, "bot5", NULL, "deny", 0, &rc);
		T_OK(rc == 0 && c->n == 1 && c->ev[0].uid == 2345 && c->ev[0].gid == 2346,
		     "deny: caller-unknown keeps the kernel's uid and gid");
		T_OK(rc == 0 && c->n == 1 && c->ev[0].pid == -1 && c->ev[0].exe[0] == '\0',
		     "deny: caller-unknown names no pid and no executable");
		free(c);
	}

	/* close flushes what is pending */
	for (i = 0; i < 10; i++)
		rc = store_deny(e.st, "bot4", NULL, NULL, 0, &caller, POLICY_NO_AGENT);
	store_close(e.st);
	e.st = NULL;
	rc = store_open(&e.cfg, "tester", &e.st);
	T_EQ_INT(rc, 0, "deny: reopen");
	if (rc == 0) {
		c = query(e.st, "bot4", NULL, "deny", 0, &rc);
		T_EQ_INT(c->count_sum, 10, "deny: store_close wrote the pending count");
		T_OK(c->n >= 1 && !strcmp(c->ev[0].secret, "") && !strcmp(c->ev[0].reason, "no-agent"),
		     "deny: NULL provider/name is an empty secret");
		free(c);
	}
	env_teardown(&e);

	/* coalescing off */
	if (env_setup(&e, "[audit]\ncoalesce_denials = 0\n") == 0) {
		T_EQ_INT(e.cfg.deny_coalesce_seconds, 0, "deny: coalescing off");
		for (i = 0; i < 50; i++)
			if (store_deny(e.st, "bot", "p", "s", 1, &caller, POLICY_NO_GRANT))
				fails++;
		c = query(e.st, "bot", NULL, "deny", 0, &rc);
		T_OK(rc == 0 && c->n == 50 && c->count_sum == 50,
		     "deny: without coalescing every denial is a row (%d rows)", c->n);
		free(c);
	} else {
		T_OK(0, "deny: setup 2");
	}
	env_teardown(&e);
}

/* ---- 10. keys ---------------------------------------------------------------------- */

static void test_keys(void)
{
	const struct policy_caller caller = { .known = true, .uid = 1000, .gid = 1000, .pid = 9 };
	const char *K1 = "key-value-one", *K2 = "key-value-two", *K3 = "key-value-after-rekey";
	char newkey[300], oldkey[300];
	struct store *daemon = NULL, *st2 = NULL;
	struct store_config cfg2;
	enum policy_reason why;
	uint8_t *old, *val;
	size_t olen, len;
	int64_t kid0, kid1, kid2, n;
	struct env e;
	bool same;
	int rc;

	if (env_setup(&e, NULL)) {
		T_OK(0, "keys: setup");
		env_teardown(&e);
		return;
	}
	rc = store_provider_add(e.st, "p");
	rc |= store_secret_set(e.st, "p", "one", (const uint8_t *)K1, strlen(K1), 0, NULL);
	rc |= agent_add(e.st, "bot", 1000);
	rc |= store_project_add(e.st, "proj");
	rc |= store_project_attach(e.st, "proj", "p", NULL);
	rc |= store_assign(e.st, "bot", "proj");
	T_EQ_INT(rc, 0, "keys: setup objects");
	kid0 = raw_int(e.db, "SELECT key_id FROM versions");

	rc = store_key_rotate(e.st, false, &kid1, &n);
	T_OK(rc == 0 && kid1 > kid0 && n == 0, "keys: rotate gives a new key id, nothing rewrapped");
	rc = store_secret_set(e.st, "p", "two", (const uint8_t *)K2, strlen(K2), 0, NULL);
	T_EQ_INT(raw_int(e.db, fmt("SELECT v.key_id FROM versions v JOIN secrets s ON s.id = v.secret_id"
				   " WHERE s.name = 'two'")), kid1, "keys: new versions use the new key");
	T_EQ_INT(raw_int(e.db, fmt("SELECT v.key_id FROM versions v JOIN secrets s ON s.id = v.secret_id"
				   " WHERE s.name = 'one'")), kid0, "keys: old versions keep the old key");
	rc = reveal_cmp(e.st, "p", "one", 0, K1, strlen(K1), &same);
	T_OK(rc == 0 && same, "keys: old version still reveals");
	{
		struct ev ev;
		T_OK(newest(e.st, "key-rotate", &ev) && !strcmp(ev.reason, fmt("data key %lld", (long long)kid1)),
		     "keys: key-rotate event names the new key");
	}
	rc = store_secret_set(e.st, "p", "one", (const uint8_t *)K2, strlen(K2), 0, NULL);

	rc = store_key_rotate(e.st, true, &kid2, &n);
	T_OK(rc == 0 && kid2 > kid1, "keys: rotate --rewrap gives a newer key");
	T_EQ_INT(n, 3, "keys: --rewrap re-encrypted all 3 versions");
	T_EQ_INT(raw_int(e.db, fmt("SELECT count(*) FROM versions WHERE key_id != %lld", (long long)kid2)), 0,
		 "keys: every version now uses the newest key");
	rc = reveal_cmp(e.st, "p", "one", 1, K1, strlen(K1), &same);
	T_OK(rc == 0 && same, "keys: v1 reveals after rewrap");
	rc = reveal_cmp(e.st, "p", "two", 0, K2, strlen(K2), &same);
	T_OK(rc == 0 && same, "keys: p/two reveals after rewrap");
	rc = store_key_rotate(e.st, true, &kid1, &n);
	T_OK(rc == 0 && n == 3, "keys: a second rewrap counts 3 again");

	/* the daemon: opened before rekey, keeps running */
	rc = store_open(&e.cfg, "scopeholdfs", &daemon);
	T_EQ_INT(rc, 0, "keys: daemon handle opened");

	old = read_all(e.key, &olen);
	snprintf(newkey, sizeof newkey, "%s/next.key", e.dir);
	rc = store_key_rekey(e.st, newkey);
	T_EQ_INT(rc, 0, "keys: rekey to a new file");
	T_OK(access(newkey, F_OK) != 0, "keys: the new file was renamed over the key file");
	T_OK(old && olen == 32 && !file_is(e.key, old, olen), "keys: key file content changed");
	{
		struct stat sb;
		T_OK(lstat(e.key, &sb) == 0 && (sb.st_mode & 07777) == 0600 && sb.st_size == 32,
		     "keys: new key file is 0600 and 32 bytes");
	}
	rc = reveal_cmp(e.st, "p", "one", 1, K1, strlen(K1), &same);
	T_OK(rc == 0 && same, "keys: same handle reveals after rekey");
	rc = store_open(&e.cfg, "tester", &st2);
	T_EQ_INT(rc, 0, "keys: store opens with the new key file");
	if (rc == 0) {
		rc = reveal_cmp(st2, "p", "two", 0, K2, strlen(K2), &same);
		T_OK(rc == 0 && same, "keys: fresh handle reveals with the new key");
		store_close(st2);
		st2 = NULL;
	}
	snprintf(oldkey, sizeof oldkey, "%s/old.key", e.dir);
	if (old)
		write_bytes(oldkey, old, olen, 0600);
	cfg2 = e.cfg;
	snprintf(cfg2.key_file, sizeof cfg2.key_file, "%s", oldkey);
	rc = store_open(&cfg2, "tester", &st2);
	T_EQ_INT(rc, -EKEYREJECTED, "keys: the old key no longer opens the store");
	T_EQ_STR(store_error(), "this key does not open this store", "keys: old key message");
	store_close(st2);
	st2 = NULL;
	rc = store_key_rekey(e.st, e.key);
	T_EQ_INT(rc, -EINVAL, "keys: rekey onto the key file itself is -EINVAL");

	/* after rekey: rotate, set, grant; the old daemon handle must resolve it */
	rc = store_key_rotate(e.st, false, &kid2, &n);
	rc |= store_secret_set(e.st, "p", "three", (const uint8_t *)K3, strlen(K3), 0, NULL);
	rc |= store_grant(e.st, "bot", "p", "three", 0, 0);
	T_EQ_INT(rc, 0, "keys: rotate and set after rekey");
	if (daemon) {
		val = (uint8_t *)1;
		rc = do_resolve(daemon, "bot", "p", "three", &caller, &val, &len, &why);
		T_EQ_INT(rc, 0, "keys: daemon opened before rekey resolves a secret set after rotate");
		T_OK(rc == 0 && bytes_eq(val, len, K3, strlen(K3)), "keys: daemon gets the exact value");
		if (rc == 0)
			store_value_free(val, len);
		rc = store_grant(e.st, "bot", "p", "one", 0, 0);
		rc = do_resolve(daemon, "bot", "p", "one", &caller, &val, &len, &why);
		T_OK(rc == 0 && bytes_eq(val, len, K2, strlen(K2)), "keys: daemon still resolves older secrets");
		if (rc == 0)
			store_value_free(val, len);
		{
			struct store_audit_report r;
			rc = store_audit_verify(daemon, &r);
			T_OK(rc == 0 && r.first_bad == 0, "keys: chain intact through rotations and rekey");
		}
	}
	store_close(daemon);
	free(old);
	env_teardown(&e);
}

/* ---- 11. workspaces ------------------------------------------------------------------- */

struct names { int n; char s[8][130]; };

static int ws_cb(void *ctx, const struct store_workspace_row *r)
{
	struct names *c = ctx;

	if (c->n < 8)
		snprintf(c->s[c->n], sizeof c->s[c->n], "%s", r->name);
	c->n++;
	return 0;
}

static int prov_cb(void *ctx, const struct store_provider_row *r)
{
	struct names *c = ctx;

	if (c->n < 8)
		snprintf(c->s[c->n], sizeof c->s[c->n], "%s", r->name);
	c->n++;
	return 0;
}

static void test_workspaces(void)
{
	struct names ws = { 0 }, pr;
	struct env e;
	bool same;
	char longname[140];
	int rc;

	if (env_setup(&e, NULL)) {
		T_OK(0, "ws: setup");
		env_teardown(&e);
		return;
	}
	T_EQ_INT(store_workspace_add(e.st, "staging"), 0, "ws: add staging");
	T_EQ_INT(store_workspace_add(e.st, "empty"), 0, "ws: add empty");
	rc = store_workspace_add(e.st, "staging");
	T_EQ_INT(rc, -EEXIST, "ws: duplicate add is -EEXIST");
	T_EQ_STR(store_error(), "workspace 'staging' already exists", "ws: duplicate message");
	rc = store_workspace_list(e.st, ws_cb, &ws);
	T_OK(rc == 0 && ws.n == 3 && !strcmp(ws.s[0], "default") && !strcmp(ws.s[1], "empty") &&
	     !strcmp(ws.s[2], "staging"), "ws: list default, empty, staging in order");

	rc = store_provider_add(e.st, "p");
	rc |= store_secret_set(e.st, "p", "s", (const uint8_t *)"in-default", 10, 0, NULL);
	T_EQ_INT(store_workspace_use(e.st, "staging"), 0, "ws: use staging");
	T_EQ_STR(store_workspace_current(e.st), "staging", "ws: current is staging");
	memset(&pr, 0, sizeof pr);
	rc = store_provider_list(e.st, prov_cb, &pr);
	T_OK(rc == 0 && pr.n == 0, "ws: staging has no providers");
	rc = reveal_cmp(e.st, "p", "s", 0, "", 0, &same);
	T_EQ_INT(rc, -ENOENT, "ws: default's secret is invisible in staging");
	T_EQ_STR(store_error(), "no provider 'p'", "ws: invisible provider message");
	rc = store_provider_add(e.st, "p");
	rc |= store_secret_set(e.st, "p", "s", (const uint8_t *)"in-staging", 10, 0, NULL);
	T_EQ_INT(rc, 0, "ws: same names in staging");
	rc = reveal_cmp(e.st, "p", "s", 0, "in-staging", 10, &same);
	T_OK(rc == 0 && same, "ws: staging reveals its own value");
	{
		struct evs *c = query(e.st, NULL, "p/s", NULL, 0, &rc);
		T_OK(rc == 0 && c->n == 2 && !strcmp(c->ev[0].workspace, "staging"),
		     "ws: audit query sees the selected workspace only");
		free(c);
	}
	rc = store_workspace_rm(e.st, "staging");
	T_OK(rc < 0, "ws: rm of the workspace in use refused");
	T_EQ_STR(store_error(), "cannot remove workspace 'staging' while it is in use", "ws: in-use message");
	T_EQ_INT(store_workspace_use(e.st, "default"), 0, "ws: back to default");
	rc = reveal_cmp(e.st, "p", "s", 0, "in-default", 10, &same);
	T_OK(rc == 0 && same, "ws: default keeps its own value");

	rc = store_workspace_rm(e.st, "staging");
	T_EQ_INT(rc, -ENOTEMPTY, "ws: rm of a non-empty workspace is -ENOTEMPTY");
	T_EQ_STR(store_error(), "workspace 'staging' is not empty", "ws: not empty message");
	rc = store_workspace_rm(e.st, "default");
	T_OK(rc < 0, "ws: rm default refused");
	T_EQ_STR(store_error(), "cannot remove the default workspace", "ws: rm default message");
	T_EQ_INT(store_workspace_rm(e.st, "empty"), 0, "ws: rm an empty workspace");
	memset(&ws, 0, sizeof ws);
	rc = store_workspace_list(e.st, ws_cb, &ws);
	T_OK(rc == 0 && ws.n == 2, "ws: list after rm has 2");
	rc = store_workspace_rm(e.st, "empty");
	T_EQ_INT(rc, -ENOENT, "ws: rm of an unknown workspace is -ENOENT");
	T_EQ_STR(store_error(), "no workspace 'empty'", "ws: unknown workspace message");
	rc = store_workspace_use(e.st, "nope");
	T_EQ_INT(rc, -ENOENT, "ws: use of an unknown workspace is -ENOENT");
	T_EQ_STR(store_error(), "no workspace 'nope'", "ws: use unknown message");
	T_EQ_STR(store_workspace_current(e.st), "default", "ws: failed use keeps the current workspace");

	rc = store_workspace_add(e.st, ".hidden");
	T_EQ_INT(rc, -EINVAL, "ws: '.hidden' is -EINVAL");
	T_EQ_STR(store_error(), fmt("invalid name '.hidden': %s", NAME_RULE), "ws: '.hidden' message");
	rc = store_workspace_add(e.st, "-dash");
	T_EQ_INT(rc, -EINVAL, "ws: '-dash' is -EINVAL");
	T_EQ_STR(store_error(), fmt("invalid name '-dash': %s", NAME_RULE), "ws: '-dash' message");
	rc = store_workspace_add(e.st, "a b");
	T_EQ_INT(rc, -EINVAL, "ws: 'a b' is -EINVAL");
	T_EQ_STR(store_error(), fmt("invalid name 'a b': %s", NAME_RULE), "ws: 'a b' message");
	rc = store_workspace_add(e.st, "");
	T_EQ_INT(rc, -EINVAL, "ws: empty name is -EINVAL");
	T_EQ_STR(store_error(), fmt("invalid name '': %s", NAME_RULE), "ws: empty name message");
	memset(longname, 'x', 129);
	longname[129] = '\0';
	rc = store_workspace_add(e.st, longname);
	T_EQ_INT(rc, -EINVAL, "ws: 129 characters is -EINVAL");
	longname[128] = '\0';
	T_EQ_INT(store_workspace_add(e.st, longname), 0, "ws: 128 characters is fine");
	rc = store_workspace_use(e.st, "a/b");
	T_EQ_INT(rc, -EINVAL, "ws: use 'a/b' is -EINVAL");
	T_EQ_STR(store_error(), fmt("invalid name 'a/b': %s", NAME_RULE), "ws: use 'a/b' message");
	rc = agent_add(e.st, "self", 1000);
	T_EQ_INT(rc, -EINVAL, "ws: agent name 'self' is -EINVAL");
	env_teardown(&e);
}

/* ---- 12. full disk ------------------------------------------------------------------------ */

static void test_full_disk(void)
{
	if (T_PG) {
		printf("skip - full disk: the SQLite file and journal on a full tmpfs (SQLite file only)\n");
		return;
	}
	const struct policy_caller caller = { .known = true, .uid = 1000, .gid = 1000, .pid = 5 };
	const char *V = "value-on-a-full-disk";
	char mnt[240], filler[300];
	enum policy_reason why;
	struct store_facts f;
	uint8_t *val, chunk[65536];
	size_t len;
	struct env e;
	int fd, rc, i;
	bool mounted = false;

	if (env_mkdir(&e)) {
		T_OK(0, "full: mkdtemp");
		return;
	}
	snprintf(mnt, sizeof mnt, "%s/fs", e.dir);
	mkdir(mnt, 0700);
	if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=2m,mode=0700") != 0) {
		printf("skip - full disk: cannot mount a tmpfs (%s)\n", strerror(errno));
		rm_tree(e.dir);
		return;
	}
	mounted = true;
	snprintf(e.data, sizeof e.data, "%s", mnt);
	if (env_config(&e, NULL) || env_init_open(&e)) {
		T_OK(0, "full: store on tmpfs (%s)", store_error());
		goto out;
	}
	rc = store_provider_add(e.st, "p");
	rc |= store_secret_set(e.st, "p", "s", (const uint8_t *)V, strlen(V), 0, NULL);
	rc |= agent_add(e.st, "bot", 1000);
	rc |= store_project_add(e.st, "proj");
	rc |= store_project_attach(e.st, "proj", "p", NULL);
	rc |= store_assign(e.st, "bot", "proj");
	rc |= store_grant(e.st, "bot", "p", "s", 0, 0);
	T_EQ_INT(rc, 0, "full: store on a 2 MiB tmpfs");
	rc = do_resolve(e.st, "bot", "p", "s", &caller, &val, &len, &why);
	T_EQ_INT(rc, 0, "full: resolve works with space left");
	if (rc == 0)
		store_value_free(val, len);

	snprintf(filler, sizeof filler, "%s/filler", mnt);
	memset(chunk, 'F', sizeof chunk);
	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	rc = 0;
	for (i = 0; fd >= 0 && i < 1000; i++) {
		if (write(fd, chunk, sizeof chunk) < 0) {
			rc = errno;
			break;
		}
	}
	/* then the last partial page */
	for (i = 0; fd >= 0 && rc == ENOSPC && i < 100000; i++)
		if (write(fd, chunk, 1) < 0)
			break;
	if (fd >= 0)
		close(fd);
	T_EQ_INT(rc, ENOSPC, "full: the tmpfs is full");

	rc = store_facts_load(e.st, "bot", "p", "s", &f);
	T_EQ_INT(rc, 0, "full: facts still load (reads need no space)");
	val = (uint8_t *)1;
	len = 7;
	rc = store_resolve(e.st, &f, &caller, &val, &len, &why);
	T_EQ_INT(rc, -EIO, "full: resolve is -EIO");
	T_OK(val == NULL && len == 0, "full: resolve returned no value");
	T_EQ_STR(store_error(), "cannot write the audit trail: database or disk is full", "full: resolve message");
	val = (uint8_t *)1;
	rc = store_secret_reveal(e.st, "p", "s", 0, &val, &len);
	T_OK(rc < 0, "full: reveal fails (rc %d)", rc);
	T_OK(val == NULL, "full: reveal returned no value");
	T_EQ_STR(store_error(), "cannot write the audit trail: database or disk is full",
		 "full: reveal message names the audit trail");
	rc = store_deny(e.st, "bot", "p", "s", 1, &caller, POLICY_NO_GRANT);
	T_OK(rc < 0, "full: deny reports that it could not record (rc %d)", rc);
	rc = store_secret_set(e.st, "p", "s", (const uint8_t *)"x", 1, 0, NULL);
	T_OK(rc < 0, "full: a rotation on a full disk fails (rc %d)", rc);
	{
		struct evs *c = query(e.st, NULL, NULL, "resolve", 0, &rc);
		T_OK(rc == 0 && c->n == 1, "full: no resolve event beyond the first");
		free(c);
	}

	unlink(filler);
	rc = store_resolve(e.st, &f, &caller, &val, &len, &why);
	T_EQ_INT(rc, 0, "full: resolve works again after space is freed");
	T_OK(rc == 0 && bytes_eq(val, len, V, strlen(V)), "full: and returns the value");
	if (rc == 0)
		store_value_free(val, len);
	rc = store_secret_reveal(e.st, "p", "s", 0, &val, &len);
	T_OK(rc == 0 && bytes_eq(val, len, V, strlen(V)), "full: reveal works again");
	if (rc == 0)
		store_value_free(val, len);
	{
		struct store_audit_report r;
		rc = store_audit_verify(e.st, &r);
		T_OK(rc == 0 && r.first_bad == 0, "full: chain intact after the full disk");
		struct evs *c = query(e.st, NULL, NULL, "resolve", 0, &rc);
		T_OK(rc == 0 && c->n == 2, "full: exactly the served resolves are recorded");
		free(c);
	}
out:
	store_close(e.st);
	e.st = NULL;
	if (mounted && umount2(mnt, MNT_DETACH) != 0)
		T_OK(0, "full: umount %s (%s)", mnt, strerror(errno));
	rm_tree(e.dir);
}

/* ---- 13. expiry, cascades, concurrency (beyond the list) --------------------------------- */

/* ---- versions: expiry policy, rollback, destroy, what an rm drops ----------- */

struct vrows { int n; struct store_version_row r[8]; };
static int vrow_cb(void *ctx, const struct store_version_row *row)
{
	struct vrows *v = ctx;

	if (v->n < 8)
		v->r[v->n] = *row;
	v->n++;
	return 0;
}

static void test_versions(void)
{
	struct store_expiry ttl = { STORE_EXPIRY_TTL, 3600 }, at = { STORE_EXPIRY_AT, 0 };
	struct store_expiry never = { STORE_EXPIRY_NEVER, 0 };
	struct store_drops d;
	struct vrows v = { 0 };
	int64_t now = (int64_t)time(NULL), ver = 0, exp = -1;
	uint8_t *val = NULL;
	size_t len = 0;
	struct env e;
	int rc;

	if (env_setup(&e, NULL)) {
		T_OK(0, "versions: setup");
		env_teardown(&e);
		return;
	}
	rc = store_provider_add(e.st, "p");
	rc |= store_secret_set_with(e.st, "p", "s", (const uint8_t *)"one", 3, &ttl, &ver, &exp);
	T_OK(rc == 0 && ver == 1 && exp >= now + 3600 && exp <= now + 3602, "versions: TTL 3600 sets now + 3600");
	rc = store_secret_set_with(e.st, "p", "s", (const uint8_t *)"two", 3, NULL, &ver, &exp);
	T_OK(rc == 0 && ver == 2 && exp >= now + 3600 && exp <= now + 3602, "versions: KEEP restarts the TTL");
	at.value = now + 86400;
	rc = store_secret_set_with(e.st, "p", "s", (const uint8_t *)"three", 5, &at, &ver, &exp);
	rc |= store_secret_set_with(e.st, "p", "s", (const uint8_t *)"four", 4, NULL, &ver, &exp);
	T_OK(rc == 0 && ver == 4 && exp == now + 86400, "versions: KEEP keeps a date");
	raw_exec(e.db, fmt("UPDATE versions SET expires = %lld WHERE version = 4", (long long)(now - 5)));
	rc = store_secret_set_with(e.st, "p", "s", (const uint8_t *)"five", 4, NULL, &ver, &exp);
	T_EQ_INT(rc, -EINVAL, "versions: KEEP refuses a date that has passed");
	rc = store_secret_set_with(e.st, "p", "s", (const uint8_t *)"five", 4, &never, &ver, &exp);
	T_OK(rc == 0 && ver == 5 && exp == 0, "versions: NEVER after a passed date");

	rc = store_secret_versions(e.st, "p", "s", vrow_cb, &v);
	T_OK(rc == 0 && v.n == 5 && v.r[0].ttl == 3600 && v.r[1].ttl == 3600 && v.r[2].ttl == 0 &&
	     v.r[4].current && !v.r[3].current && v.r[2].length == 5, "versions: five rows, TTLs, the current one");

	rc = store_secret_rollback(e.st, "p", "s", 2, &ver);
	T_OK(rc == 0 && ver == 6, "rollback: version 6");
	rc = store_secret_reveal(e.st, "p", "s", 0, &val, &len);
	T_OK(rc == 0 && len == 3 && memcmp(val, "two", 3) == 0, "rollback: the current value is version 2's");
	store_value_free(val, len);
	T_EQ_INT(store_secret_rollback(e.st, "p", "s", 6, &ver), -EINVAL, "rollback: the current version is refused");
	T_EQ_INT(store_secret_rollback(e.st, "p", "s", 9, &ver), -ENOENT, "rollback: a missing version is -ENOENT");

	T_EQ_INT(store_secret_destroy(e.st, "p", "s", 6), -EBUSY, "destroy: the current version is -EBUSY");
	T_EQ_INT(store_secret_destroy(e.st, "p", "s", 3), 0, "destroy: version 3");
	rc = store_secret_reveal(e.st, "p", "s", 3, &val, &len);
	T_OK(rc == -ENOENT && val == NULL && strstr(store_error(), "was destroyed at"),
	     "destroy: reading it is -ENOENT, 'was destroyed at'");
	T_EQ_INT(store_secret_rollback(e.st, "p", "s", 3, &ver), -ENOENT, "destroy: no rollback to it");
	T_EQ_INT(store_secret_destroy(e.st, "p", "s", 3), -ENOENT, "destroy: twice is -ENOENT");
	T_EQ_INT(raw_int(e.db, "SELECT count(*) FROM versions WHERE version = 3 AND length(ct) = 0"
			   " AND length = 5 AND destroyed > 0"), 1, "destroy: the row stays, the ciphertext is empty");
	T_EQ_INT(store_key_rotate(e.st, true, NULL, NULL), 0, "destroy: key rotate --rewrap skips it");
	rc = store_secret_reveal(e.st, "p", "s", 1, &val, &len);
	T_OK(rc == 0 && len == 3 && memcmp(val, "one", 3) == 0, "destroy: other versions still open");
	store_value_free(val, len);

	rc = agent_add(e.st, "bot", 1000);
	rc |= store_project_add(e.st, "proj");
	rc |= store_project_attach(e.st, "proj", "p", "s");
	rc |= store_assign(e.st, "bot", "proj");
	rc |= store_grant(e.st, "bot", "p", "s", 0, 0);
	T_EQ_INT(rc, 0, "drops: setup");
	rc = store_rm_drops(e.st, STORE_OBJ_SECRET, "p/s", &d);
	T_OK(rc == 0 && d.grants == 1 && d.assignments == 0 && d.attachments == 1, "drops: secret 1 grant, 1 attachment");
	rc = store_rm_drops(e.st, STORE_OBJ_AGENT, "bot", &d);
	T_OK(rc == 0 && d.grants == 1 && d.assignments == 1, "drops: agent 1 grant, 1 assignment");
	rc = store_rm_drops(e.st, STORE_OBJ_PROJECT, "proj", &d);
	T_OK(rc == 0 && d.grants == 0 && d.assignments == 1 && d.attachments == 1, "drops: project");
	T_EQ_INT(store_revoke(e.st, "bot", "p", "s"), 0, "drops: revoke");
	rc = store_rm_drops(e.st, STORE_OBJ_AGENT, "bot", &d);
	T_OK(rc == 0 && d.grants == 0, "drops: a revoked grant is not live");
	T_EQ_INT(store_rm_drops(e.st, STORE_OBJ_AGENT, "nobody", &d), -ENOENT, "drops: unknown agent");
	T_EQ_INT(raw_int(e.db, "SELECT count(*) FROM audit WHERE type IN ('rollback', 'destroy')"), 2,
		 "versions: one rollback and one destroy event");
	env_teardown(&e);
}

static void test_expiry_and_cascades(void)
{
	const struct policy_caller caller = { .known = true, .uid = 1000, .gid = 1000, .pid = 3 };
	struct store_facts f;
	enum policy_reason why;
	uint8_t *val;
	size_t len;
	struct env e;
	int64_t now = (int64_t)time(NULL);
	int rc;

	if (env_setup(&e, NULL)) {
		T_OK(0, "expiry: setup");
		env_teardown(&e);
		return;
	}
	rc = store_provider_add(e.st, "p");
	rc |= store_secret_set(e.st, "p", "old", (const uint8_t *)"o", 1, now - 10, NULL);
	rc |= store_secret_set(e.st, "p", "tmp", (const uint8_t *)"t", 1, 0, NULL);
	rc |= agent_add(e.st, "bot", 1000);
	rc |= store_project_add(e.st, "proj");
	rc |= store_project_attach(e.st, "proj", "p", NULL);
	rc |= store_assign(e.st, "bot", "proj");
	rc |= store_grant(e.st, "bot", "p", "old", 0, 0);
	rc |= store_grant(e.st, "bot", "p", "tmp", 3600, 0);
	T_EQ_INT(rc, 0, "expiry: setup objects");
	rc = store_secret_set(e.st, "p", "neg", (const uint8_t *)"n", 1, -1, NULL);
	T_EQ_INT(rc, -EINVAL, "expiry: negative expiry is -EINVAL");

	T_EQ_INT(cand_granted(e.st, "bot", "p", "old"), 0, "expiry: expired version shows 0000 despite a grant");
	rc = do_resolve(e.st, "bot", "p", "old", &caller, &val, &len, &why);
	T_OK(rc == -EACCES && why == POLICY_VERSION_EXPIRED, "expiry: expired version is denied");
	rc = store_facts_load(e.st, "bot", "p", "tmp", &f);
	T_OK(rc == 0 && f.p.grant.expires >= now + 3600 && f.p.grant.expires <= now + 3602,
	     "expiry: grant ttl 3600 gives expires = now + 3600");
	T_EQ_INT(cand_granted(e.st, "bot", "p", "tmp"), 1, "expiry: grant with ttl left shows 0400");
	raw_exec(e.db, fmt("UPDATE grants SET expires = %lld", (long long)(now - 1)));
	T_EQ_INT(cand_granted(e.st, "bot", "p", "tmp"), 0, "expiry: grant past its ttl shows 0000");
	rc = store_resolve(e.st, &f, &caller, &val, &len, &why);
	T_OK(rc == -EACCES && why == POLICY_GRANT_EXPIRED, "expiry: expired grant is denied inside resolve");

	/* removing and re-creating must not revive old grants */
	T_EQ_INT(store_grant(e.st, "bot", "p", "tmp", 0, 0), 0, "cascade: grant p/tmp");
	T_EQ_INT(store_secret_rm(e.st, "p", "tmp"), 0, "cascade: rm p/tmp");
	T_EQ_INT(store_secret_set(e.st, "p", "tmp", (const uint8_t *)"t2", 2, 0, NULL), 0, "cascade: re-create p/tmp");
	rc = store_facts_load(e.st, "bot", "p", "tmp", &f);
	T_OK(rc == 0 && !f.p.grant.exists && f.p.secret.version == 1, "cascade: re-created secret has no old grant");
	T_EQ_INT(store_grant(e.st, "bot", "p", "tmp", 0, 0), 0, "cascade: grant p/tmp again");
	T_EQ_INT(store_agent_rm(e.st, "bot"), 0, "cascade: rm agent bot");
	T_EQ_INT(agent_add(e.st, "bot", 1000), 0, "cascade: re-add agent bot");
	rc = store_facts_load(e.st, "bot", "p", "tmp", &f);
	T_OK(rc == 0 && f.p.agent.exists && !f.p.grant.exists && !f.p.secret.candidate,
	     "cascade: re-added agent has no old grant or assignment");
	rc = store_assign(e.st, "bot", "proj");
	rc |= store_grant(e.st, "bot", "p", "tmp", 0, 0);
	T_EQ_INT(cand_granted(e.st, "bot", "p", "tmp"), 1, "cascade: assigned and granted again");
	T_EQ_INT(store_project_rm(e.st, "proj"), 0, "cascade: rm project");
	{
		struct cands c = { 0 };
		rc = store_candidate_list(e.st, "bot", NULL, cand_cb, &c);
		T_OK(rc == 0 && c.n == 0, "cascade: project rm drops its attachments and assignments");
	}
	rc = do_resolve(e.st, "bot", "p", "tmp", &caller, &val, &len, &why);
	T_OK(rc == -EACCES && why == POLICY_NOT_CANDIDATE, "cascade: grant alone no longer resolves");

	/* audit query: since and all_workspaces */
	{
		struct store_audit_filter fl = { .since = now + 100000 };
		struct evs c = { .ordered = true };
		rc = store_audit_query(e.st, &fl, ev_collect, &c);
		T_OK(rc == 0 && c.n == 0, "audit: since in the future matches nothing");
		T_EQ_INT(store_workspace_add(e.st, "w2"), 0, "audit: add w2");
		T_EQ_INT(store_workspace_use(e.st, "w2"), 0, "audit: use w2");
		T_EQ_INT(store_provider_add(e.st, "inw2"), 0, "audit: an event in w2");
		memset(&c, 0, sizeof c);
		fl.since = 0;
		fl.type = "provider-add";
		rc = store_audit_query(e.st, &fl, ev_collect, &c);
		T_OK(rc == 0 && c.n == 1 && !strcmp(c.ev[0].secret, "inw2"), "audit: w2 sees its own provider-add only");
		memset(&c, 0, sizeof c);
		fl.all_workspaces = true;
		rc = store_audit_query(e.st, &fl, ev_collect, &c);
		T_OK(rc == 0 && c.n == 2, "audit: all_workspaces sees both provider-adds");
	}
	env_teardown(&e);
}

static void test_deny_window(void)
{
	struct policy_caller caller = { .known = true, .uid = 1000, .gid = 1000, .pid = 8 };
	struct env e;
	struct evs *c;
	int i, rc, fails = 0;

	if (env_setup(&e, "[audit]\ncoalesce_denials = 1s\n")) {
		T_OK(0, "deny window: setup");
		env_teardown(&e);
		return;
	}
	for (i = 0; i < 5; i++)
		if (store_deny(e.st, "bot", "p", "s", 1, &caller, POLICY_NO_GRANT))
			fails++;
	usleep(2100 * 1000);
	if (store_deny(e.st, "bot", "p", "s", 1, &caller, POLICY_NO_GRANT))
		fails++;
	T_EQ_INT(fails, 0, "deny window: denials accepted");
	c = query(e.st, "bot", NULL, "deny", 0, &rc);
	T_OK(rc == 0 && c->count_sum == 6 && c->n == 2,
	     "deny window: a denial after the window writes the held count without a flush (%d rows, sum %lld)",
	     c->n, (long long)c->count_sum);
	free(c);

	/* more distinct denials than the table holds */
	for (i = 0; i < 300 * 3; i++) {
		char name[32];
		snprintf(name, sizeof name, "s%d", i % 300);
		if (store_deny(e.st, "many", "p", name, 1, &caller, POLICY_NO_GRANT))
			fails++;
	}
	T_EQ_INT(store_deny_flush(e.st), 0, "deny table: flush");
	c = query(e.st, "many", NULL, "deny", 0, &rc);
	T_OK(rc == 0 && c->count_sum == 900 && fails == 0,
	     "deny table: 900 denials of 300 distinct secrets all counted (sum %lld in %d rows)",
	     (long long)c->count_sum, c->n);
	free(c);
	env_teardown(&e);
}

static void test_key_cache_and_given_key(void)
{
	uint8_t given[STORE_KEY_BYTES];
	char path[300], name[16], val[32];
	struct env e;
	bool same, all = true;
	int64_t kid, n;
	int i, rc = 0;

	if (env_setup(&e, NULL)) {
		T_OK(0, "key cache: setup");
		env_teardown(&e);
		return;
	}
	rc = store_provider_add(e.st, "p");
	for (i = 0; i < 70 && rc == 0; i++) {
		snprintf(name, sizeof name, "s%d", i);
		snprintf(val, sizeof val, "value-%d", i);
		rc = store_key_rotate(e.st, false, &kid, &n);
		if (!rc)
			rc = store_secret_set(e.st, "p", name, (const uint8_t *)val, strlen(val), 0, NULL);
	}
	T_EQ_INT(rc, 0, "key cache: 70 data keys, one secret each");
	for (i = 0; i < 70; i++) {
		snprintf(name, sizeof name, "s%d", i);
		snprintf(val, sizeof val, "value-%d", i);
		rc = reveal_cmp(e.st, "p", name, 0, val, strlen(val), &same);
		if (rc || !same)
			all = false;
	}
	T_OK(all, "key cache: all 70 reveal past the key cache size");
	rc = store_key_rotate(e.st, true, &kid, &n);
	T_OK(rc == 0 && n == 70, "key cache: rewrap of 70 versions under 70 keys");
	T_EQ_INT(raw_int(e.db, "SELECT count(DISTINCT key_id) FROM versions"), 1, "key cache: one key after rewrap");

	/* rekey onto a key file the operator provides */
	snprintf(path, sizeof path, "%s/given.key", e.dir);
	randombytes_buf(given, sizeof given);
	write_bytes(path, given, sizeof given, 0644);
	rc = store_key_rekey(e.st, path);
	T_EQ_INT(rc, -EACCES, "given key: a 0644 new key file is refused");
	T_EQ_STR(store_error(), fmt("key file '%s' is accessible by group or others (mode 0644); run: chmod 600 %s",
				    path, path), "given key: refusal message");
	chmod(path, 0600);
	rc = store_key_rekey(e.st, path);
	T_EQ_INT(rc, 0, "given key: rekey onto an existing 0600 key file");
	T_OK(file_is(e.key, given, sizeof given), "given key: the key file now holds the given key");
	store_close(e.st);
	e.st = NULL;
	rc = store_open(&e.cfg, "tester", &e.st);
	T_EQ_INT(rc, 0, "given key: the store opens with it");
	if (rc == 0) {
		rc = reveal_cmp(e.st, "p", "s69", 0, "value-69", 8, &same);
		T_OK(rc == 0 && same, "given key: values reveal");
	}
	env_teardown(&e);
}

struct worker {
	struct store *st;
	int ok, bad;
};

static void *resolve_worker(void *arg)
{
	const struct policy_caller caller = { .known = true, .uid = 1000, .gid = 1000, .pid = 11 };
	struct worker *w = arg;
	enum policy_reason why;
	uint8_t *val;
	size_t len;
	int i, rc;

	for (i = 0; i < 25; i++) {
		rc = do_resolve(w->st, "bot", "p", "s", &caller, &val, &len, &why);
		if (rc == 0 && bytes_eq(val, len, "threaded", 8))
			w->ok++;
		else
			w->bad++;
		if (rc == 0)
			store_value_free(val, len);
	}
	return NULL;
}

static void test_threads_power(void)
{
	struct worker w[4];
	pthread_t th[4];
	struct store *other = NULL;
	struct store_facts f;
	struct env e;
	int i, rc, ok = 0, bad = 0;

	if (env_setup(&e, "[audit]\ndurability = power\n")) {
		T_OK(0, "threads: setup");
		env_teardown(&e);
		return;
	}
	rc = store_provider_add(e.st, "p");
	rc |= store_secret_set(e.st, "p", "s", (const uint8_t *)"threaded", 8, 0, NULL);
	rc |= agent_add(e.st, "bot", 1000);
	rc |= store_project_add(e.st, "proj");
	rc |= store_project_attach(e.st, "proj", "p", "s");
	rc |= store_assign(e.st, "bot", "proj");
	rc |= store_grant(e.st, "bot", "p", "s", 0, 1000);   /* uses are counted only when limited */
	T_EQ_INT(rc, 0, "threads: setup objects with durability = power");
	rc = store_open(&e.cfg, "shadm", &other);
	T_EQ_INT(rc, 0, "threads: a second handle");
	for (i = 0; i < 4; i++) {
		w[i] = (struct worker){ .st = e.st };
		pthread_create(&th[i], NULL, resolve_worker, &w[i]);
	}
	for (i = 0; other && i < 20; i++)
		if (store_audit_record(other, "note", NULL, NULL, 0, "concurrent"))
			bad++;
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ok += w[i].ok;
		bad += w[i].bad;
	}
	T_OK(ok == 100 && bad == 0, "threads: 100 concurrent resolves and 20 notes succeed (%d ok, %d bad)", ok, bad);
	rc = store_facts_load(e.st, "bot", "p", "s", &f);
	T_OK(rc == 0 && f.p.grant.uses == 100, "threads: 100 uses counted (%lld)", (long long)f.p.grant.uses);
	{
		struct evs *c = query(e.st, NULL, NULL, "resolve", 0, &rc);
		T_OK(rc == 0 && c->n == 100 && c->ordered, "threads: 100 resolve events");
		free(c);
		struct store_audit_report r;
		rc = store_audit_verify(other ? other : e.st, &r);
		T_OK(rc == 0 && r.first_bad == 0 && r.events == count_events(e.st),
		     "threads: chain intact, every event verified");
	}
	store_close(other);
	env_teardown(&e);
}

/*
 * A journal rotation while syncs of durability = power are in flight. The
 * rotation holds the journal's lock while it waits for the sync in flight;
 * the sync took the same lock to read the broken flag, so the first
 * rotation under load hung every reader of the mount for good (found by
 * `make bench`). The watchdog turns a hang into a failure.
 */
extern uint64_t store_journal_rotate_bytes;
static _Atomic int rotate_workers_left;

static void rotate_watchdog(int sig)
{
	static const char msg[] = "not ok - journal rotate: resolves and rotations under power durability "
				  "finished within 120 s (deadlocked)\n";
	(void)sig;
	if (write(STDOUT_FILENO, msg, sizeof msg - 1) < 0)
		_exit(2);
	_exit(1);
}

static void *rotate_worker(void *arg)
{
	const struct policy_caller caller = { .known = true, .uid = 1000, .gid = 1000, .pid = 12 };
	struct worker *w = arg;
	enum policy_reason why;
	uint8_t *val;
	size_t len;

	for (int i = 0; i < 300; i++) {
		int rc = do_resolve(w->st, "bot", "p", "s", &caller, &val, &len, &why);
		if (rc == 0 && bytes_eq(val, len, "rotating", 8))
			w->ok++;
		else
			w->bad++;
		if (rc == 0)
			store_value_free(val, len);
	}
	atomic_fetch_sub(&rotate_workers_left, 1);
	return NULL;
}

static void test_journal_rotate_power(void)
{
	struct worker w[4];
	pthread_t th[4];
	uint64_t dropped;
	struct env e;
	int i, rc, ok = 0, bad = 0, ticks = 0, tick_fail = 0;

	if (env_setup(&e, "[audit]\ndurability = power\n")) {
		T_OK(0, "journal rotate: setup");
		env_teardown(&e);
		return;
	}
	rc = store_provider_add(e.st, "p");
	rc |= store_secret_set(e.st, "p", "s", (const uint8_t *)"rotating", 8, 0, NULL);
	rc |= agent_add(e.st, "bot", 1000);
	rc |= store_project_add(e.st, "proj");
	rc |= store_project_attach(e.st, "proj", "p", "s");
	rc |= store_assign(e.st, "bot", "proj");
	rc |= store_grant(e.st, "bot", "p", "s", 0, 0);
	rc |= store_serve(e.st, &dropped);
	T_EQ_INT(rc, 0, "journal rotate: a serving store with durability = power");
	/* rotate every few records instead of every 16 MiB */
	store_journal_rotate_bytes = 2048;
	signal(SIGALRM, rotate_watchdog);
	alarm(120);
	atomic_store(&rotate_workers_left, 4);
	for (i = 0; i < 4; i++) {
		w[i] = (struct worker){ .st = e.st };
		pthread_create(&th[i], NULL, rotate_worker, &w[i]);
	}
	/*
	 * the daemon's flusher: import and rotate while the readers sync. It
	 * pauses between ticks as the daemon's does (there for 200 ms): a loop
	 * that retook the store's lock at once starved the readers' cache
	 * misses of it, which under ASan on a busy machine ran past the watchdog
	 */
	while (atomic_load(&rotate_workers_left) > 0) {
		tick_fail += store_journal_tick(e.st) != 0;
		ticks++;
		usleep(1000);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ok += w[i].ok;
		bad += w[i].bad;
	}
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	tick_fail += store_journal_tick(e.st) != 0;
	store_journal_rotate_bytes = 16u << 20;
	T_OK(ok == 1200 && bad == 0, "journal rotate: 1200 resolves under power durability while the journal "
	     "rotates (%d ok, %d bad)", ok, bad);
	T_EQ_INT(tick_fail, 0, "journal rotate: every import and rotation succeeded (%d ticks)", ticks);
	T_OK(raw_int(e.db, "SELECT COUNT(*) FROM journal") > 1,
	     "journal rotate: the journal rotated (%lld generations)",
	     (long long)raw_int(e.db, "SELECT COUNT(*) FROM journal"));
	{
		struct evs *c = query(e.st, NULL, NULL, "resolve", 0, &rc);
		T_OK(rc == 0 && c->n == 1200 && c->ordered, "journal rotate: 1200 resolve events, in order");
		free(c);
		struct store_audit_report r;
		rc = store_audit_verify(e.st, &r);
		T_OK(rc == 0 && r.first_bad == 0, "journal rotate: the chain verifies");
	}
	env_teardown(&e);
}

/* ---- 14. audit writes refused: fail closed, change nothing ------------------------------ */

struct grant_seen { int n; int64_t uses, revoked, max_uses; };

static int grant_cb(void *ctx, const struct store_grant_row *r)
{
	struct grant_seen *g = ctx;

	g->n++;
	g->uses = r->uses;
	g->revoked = r->revoked;
	g->max_uses = r->max_uses;
	return 0;
}

static void test_audit_fault(void)
{
	const struct policy_caller caller = { .known = true, .uid = 1000, .gid = 1000, .pid = 6 };
	const char *V = "fault-value";
	const char *AUDIT_MSG = "cannot write the audit trail: injected";
	struct grant_seen g0 = { 0 }, g1 = { 0 };
	struct store_facts f;
	struct secret_find sf;
	enum policy_reason why;
	char newkey[300];
	uint8_t *key0 = NULL, *val;
	size_t klen, len;
	int64_t ev0, keys0, kid, n;
	struct env e;
	bool same;
	int rc;

	if (env_setup(&e, NULL)) {
		T_OK(0, "fault: setup");
		env_teardown(&e);
		return;
	}
	rc = store_provider_add(e.st, "p");
	rc |= store_secret_set(e.st, "p", "s", (const uint8_t *)V, strlen(V), 0, NULL);
	rc |= store_secret_set(e.st, "p", "t", (const uint8_t *)"tt", 2, 0, NULL);
	rc |= agent_add(e.st, "bot", 1000);
	rc |= store_project_add(e.st, "proj");
	rc |= store_project_attach(e.st, "proj", "p", NULL);
	rc |= store_assign(e.st, "bot", "proj");
	rc |= store_grant(e.st, "bot", "p", "s", 0, 5);
	T_EQ_INT(rc, 0, "fault: setup objects");
	rc = store_facts_load(e.st, "bot", "p", "s", &f);
	rc |= store_grant_list(e.st, "bot", grant_cb, &g0);
	ev0 = count_events(e.st);
	keys0 = raw_int(e.db, "SELECT count(*) FROM keys");
	key0 = read_all(e.key, &klen);

	rc = raw_exec(e.db, T_PG ?
		      "CREATE FUNCTION no_audit() RETURNS trigger LANGUAGE plpgsql AS"
		      " $$ BEGIN RAISE EXCEPTION 'injected'; END $$;"
		      " CREATE TRIGGER no_audit BEFORE INSERT ON audit"
		      " FOR EACH ROW EXECUTE FUNCTION no_audit();" :
		      "CREATE TRIGGER no_audit BEFORE INSERT ON audit"
		      " BEGIN SELECT RAISE(ABORT, 'injected'); END;");
	T_EQ_INT(rc, SQLITE_OK, "fault: audit inserts now fail");

	val = (uint8_t *)1;
	len = 3;
	rc = store_resolve(e.st, &f, &caller, &val, &len, &why);
	T_EQ_INT(rc, -EIO, "fault: resolve is -EIO");
	T_OK(val == NULL && len == 0, "fault: resolve returned no value");
	T_EQ_STR(store_error(), AUDIT_MSG, "fault: resolve message");
	memset(&g1, 0, sizeof g1);
	rc = store_grant_list(e.st, "bot", grant_cb, &g1);
	T_OK(rc == 0 && g1.uses == g0.uses, "fault: failed resolve counted no use (%lld)", (long long)g1.uses);

	val = (uint8_t *)1;
	rc = store_secret_reveal(e.st, "p", "s", 0, &val, &len);
	T_OK(rc < 0 && val == NULL, "fault: reveal fails with no value (rc %d)", rc);
	T_EQ_STR(store_error(), AUDIT_MSG, "fault: reveal message");

	rc = store_secret_set(e.st, "p", "s", (const uint8_t *)"new", 3, 0, NULL);
	T_OK(rc < 0, "fault: rotate fails");
	rc = store_secret_set(e.st, "p", "u", (const uint8_t *)"new", 3, 0, NULL);
	T_OK(rc < 0, "fault: create fails");
	sf = find_secret(e.st, "p", "s");
	T_OK(sf.found && sf.row.version == 1 && sf.row.versions == 1 && sf.rows == 2,
	     "fault: failed sets stored no version and no secret");
	rc = store_grant(e.st, "bot", "p", "t", 0, 0);
	T_OK(rc < 0, "fault: grant fails");
	rc = store_revoke(e.st, "bot", "p", "s");
	T_OK(rc < 0, "fault: revoke fails");
	memset(&g1, 0, sizeof g1);
	rc = store_grant_list(e.st, "bot", grant_cb, &g1);
	T_OK(rc == 0 && g1.n == 1 && g1.revoked == 0 && g1.max_uses == 5, "fault: grants unchanged");
	rc = agent_add(e.st, "bot2", 1002);
	T_OK(rc < 0, "fault: agent add fails");
	rc = store_agent_get(e.st, "bot2", NULL, NULL);
	T_EQ_INT(rc, -ENOENT, "fault: no agent was added");
	rc = store_secret_rm(e.st, "p", "t");
	T_OK(rc < 0 && find_secret(e.st, "p", "t").found, "fault: rm fails and the secret stays");
	rc = store_key_rotate(e.st, true, &kid, &n);
	T_OK(rc < 0, "fault: key rotate fails");
	T_EQ_INT(raw_int(e.db, "SELECT count(*) FROM keys"), keys0, "fault: no key was added");
	snprintf(newkey, sizeof newkey, "%s/next.key", e.dir);
	rc = store_key_rekey(e.st, newkey);
	T_OK(rc < 0, "fault: rekey fails");
	T_OK(key0 && file_is(e.key, key0, klen), "fault: key file unchanged after failed rekey");
	T_OK(access(newkey, F_OK) != 0, "fault: the key file rekey created was removed");
	rc = store_deny(e.st, "bot", "p", "s", 1, &caller, POLICY_NO_GRANT);
	T_OK(rc < 0, "fault: deny reports that it could not record");

	/* tampered ciphertext while the trail refuses: still nothing served */
	ct_flip(e.db, version_rowid(e.db, "default", "p", "s", 1), 40);
	val = (uint8_t *)1;
	rc = store_resolve(e.st, &f, &caller, &val, &len, &why);
	T_OK(rc < 0 && val == NULL, "fault: tampered resolve with no trail fails with no value (rc %d)", rc);
	ct_flip(e.db, version_rowid(e.db, "default", "p", "s", 1), 40);

	T_EQ_INT(count_events(e.st), ev0, "fault: no event was written");

	rc = raw_exec(e.db, T_PG ? "DROP TRIGGER no_audit ON audit" : "DROP TRIGGER no_audit");
	T_EQ_INT(rc, SQLITE_OK, "fault: audit inserts work again");
	rc = store_resolve(e.st, &f, &caller, &val, &len, &why);
	T_OK(rc == 0 && bytes_eq(val, len, V, strlen(V)), "fault: same handle resolves again");
	if (rc == 0)
		store_value_free(val, len);
	rc = reveal_cmp(e.st, "p", "s", 0, V, strlen(V), &same);
	T_OK(rc == 0 && same, "fault: same handle reveals again");
	store_close(e.st);
	e.st = NULL;
	rc = store_open(&e.cfg, "tester", &e.st);
	T_EQ_INT(rc, 0, "fault: the store opens with the old key after the failed rekey");
	if (rc == 0) {
		struct store_audit_report r;
		rc = store_audit_verify(e.st, &r);
		T_OK(rc == 0 && r.first_bad == 0 && r.events == ev0 + 2, "fault: chain intact");
	}
	free(key0);
	env_teardown(&e);
}

/* ---- the serving mount: audit journal and read cache ------------------------ */

static off_t file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static int64_t raw_resolves(const char *db)
{
	return raw_int(db, "SELECT count(*) FROM audit WHERE type = 'resolve'");
}

/* A resolve on a serving handle: the value as a string ("" on failure). */
static int serve_read(struct store *st, const char *n, const struct policy_caller *c,
		      char *out, size_t size, enum policy_reason *why)
{
	uint8_t *val = NULL;
	size_t len = 0;
	int rc = do_resolve(st, "bot", "p", n, c, &val, &len, why);

	snprintf(out, size, "%.*s", rc == 0 ? (int)len : 0, rc == 0 ? (const char *)val : "");
	if (rc == 0)
		store_value_free(val, len);
	return rc;
}

/*
 * A backlog in the journal does not hold a change back: a write chains at
 * most 1024 pending events before its own (JOURNAL_WRITE_MAX), the rest
 * after it. Before, a revoke first chained the whole backlog an agent's
 * reads had left: 10-19 s on PostgreSQL after 4 s of 8 readers.
 */
static void test_journal_backlog(void)
{
	const struct policy_caller caller = {
		.known = true, .uid = 1000, .gid = 1000, .pid = 4242, .exe = "/usr/bin/agent",
	};
	struct store_audit_report rep;
	struct store *st2 = NULL;
	enum policy_reason why;
	uint64_t dropped;
	struct env e;
	char got[64];
	int rc = 0, served = 0;

	if (env_setup(&e, NULL)) {
		T_OK(0, "journal backlog: setup");
		env_teardown(&e);
		return;
	}
	rc |= store_provider_add(e.st, "p");
	rc |= store_secret_set(e.st, "p", "s", (const uint8_t *)"backlog", 7, 0, NULL);
	rc |= agent_add(e.st, "bot", 1000);
	rc |= store_project_add(e.st, "proj");
	rc |= store_project_attach(e.st, "proj", "p", NULL);
	rc |= store_assign(e.st, "bot", "proj");
	rc |= store_grant(e.st, "bot", "p", "s", 0, 0);
	rc |= store_serve(e.st, &dropped);
	if (rc || store_open(&e.cfg, "operator", &st2)) {
		T_OK(0, "journal backlog: store, serving handle and operator handle (%s)", store_error());
		goto out;
	}
	int64_t before = raw_resolves(e.db);
	for (int i = 0; i < 10000; i++)
		served += serve_read(e.st, "s", &caller, got, sizeof got, &why) == 0;
	T_EQ_INT(served, 10000, "journal backlog: 10000 values served, their events only in the journal");
	T_EQ_INT(raw_resolves(e.db), before, "journal backlog: none of them chained yet");

	T_EQ_INT(store_revoke(st2, "bot", "p", "s"), 0, "journal backlog: a revoke by another handle");
	T_EQ_INT(raw_resolves(e.db), before + 1024,
		 "journal backlog: the revoke chained 1024 pending events before its own, not all 10000");
	T_OK(serve_read(e.st, "s", &caller, got, sizeof got, &why) == -EACCES && why == POLICY_GRANT_REVOKED,
	     "journal backlog: the next resolve is refused");
	T_EQ_INT(store_journal_import(st2), 0, "journal backlog: a full import (as shadm audit does)");
	T_EQ_INT(raw_resolves(e.db), before + 10000, "journal backlog: then every served value is in the trail");
	T_EQ_INT(raw_int(e.db, "SELECT count(*) FROM audit WHERE type = 'resolve' AND"
			 " seq > (SELECT max(seq) FROM audit WHERE type = 'revoke') AND"
			 " time > (SELECT max(time) FROM audit WHERE type = 'revoke')"), 0,
		 "journal backlog: those chained after the revoke carry times no later than it");
	T_EQ_INT(store_audit_verify(st2, &rep), 0, "journal backlog: verify runs");
	T_OK(rep.first_bad == 0, "journal backlog: the chain verifies");

	/* a daemon that died with a backlog: the next one chains all of it, dropping nothing */
	rc = store_grant(st2, "bot", "p", "s", 0, 0);
	store_close(st2);
	st2 = NULL;
	store_close(e.st);
	e.st = NULL;
	before = raw_resolves(e.db);
	pid_t pid = fork();
	if (pid == 0) {
		struct store *c = NULL;
		int ok = store_open(&e.cfg, "child", &c) == 0 && store_serve(c, &dropped) == 0;
		for (int i = 0; ok && i < 3000; i++)
			ok = serve_read(c, "s", &caller, got, sizeof got, &why) == 0;
		_exit(ok ? 0 : 1);      /* no store_close: as if killed */
	}
	int status = -1;
	waitpid(pid, &status, 0);
	T_OK(rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	     "journal backlog: a daemon served 3000 values and died");
	dropped = 99;
	rc = store_open(&e.cfg, "tester", &e.st);
	if (rc == 0)
		rc = store_serve(e.st, &dropped);
	T_OK(rc == 0 && dropped == 0, "journal backlog: the next daemon starts, nothing dropped (%s)",
	     rc ? store_error() : "");
	T_EQ_INT(raw_resolves(e.db), before + 3000, "journal backlog: all 3000 events are in the trail");
out:
	store_close(st2);
	env_teardown(&e);
}

static void test_journal(void)
{
	const struct policy_caller caller = {
		.known = true, .uid = 1000, .gid = 1000, .pid = 4242, .exe = "/usr/bin/agent",
	};
	const char *V1 = "journal-value-one", *V2 = "journal-value-two";
	char jpath[300], saved[320], got[64], want[1024];
	struct store_audit_report rep;
	struct store *st2 = NULL;
	enum policy_reason why;
	uint64_t dropped = 99;
	struct env e;
	struct ev ev;
	int rc;

	if (env_setup(&e, NULL)) {
		T_OK(0, "journal: setup");
		env_teardown(&e);
		return;
	}
	if (T_PG)
		snprintf(jpath, sizeof jpath, "%s/state/audit", e.data);
	else
		snprintf(jpath, sizeof jpath, "%s-audit", e.db);
	snprintf(saved, sizeof saved, "%s.saved", jpath);
	rc = store_provider_add(e.st, "p");
	rc |= store_secret_set(e.st, "p", "s", (const uint8_t *)V1, strlen(V1), 0, NULL);
	rc |= store_secret_set(e.st, "p", "t", (const uint8_t *)"limited", 7, 0, NULL);
	rc |= agent_add(e.st, "bot", 1000);
	rc |= store_project_add(e.st, "proj");
	rc |= store_project_attach(e.st, "proj", "p", NULL);
	rc |= store_assign(e.st, "bot", "proj");
	rc |= store_grant(e.st, "bot", "p", "s", 0, 0);
	rc |= store_grant(e.st, "bot", "p", "t", 0, 5);
	T_EQ_INT(rc, 0, "journal: store built");

	T_OK(!store_journal_serving(e.st), "journal: a handle does not serve until asked");
	rc = store_serve(e.st, &dropped);
	T_OK(rc == 0 && dropped == 0, "journal: store_serve takes the journal (rc %d: %s)", rc, store_error());
	{
		struct stat sb;
		T_OK(lstat(jpath, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 07777) == 0600 &&
		     sb.st_size == 24, "journal: STORE-audit is a 0600 file holding only its header");
	}
	if (store_open(&e.cfg, "operator", &st2)) {
		T_OK(0, "journal: second handle (%s)", store_error());
		goto out;
	}
	rc = store_serve(st2, &dropped);
	snprintf(want, sizeof want, "store '%s' is already served by another scopeholdfs"
		 " (audit journal '%s' is locked)", e.db, jpath);
	T_EQ_INT(rc, -EBUSY, "journal: a second daemon on the store is refused");
	T_EQ_STR(store_error(), want, "journal: the refusal names the store and its journal");
	T_OK(!store_journal_serving(st2), "journal: the refused handle does not serve");
	{
		/* the lock is not the journal's: removing or replacing the journal does not free it */
		char moved[320];
		snprintf(moved, sizeof moved, "%s.moved", jpath);
		T_OK(rename(jpath, moved) == 0, "journal: move the journal away under the daemon");
		T_EQ_INT(store_serve(st2, &dropped), -EBUSY,
			 "journal: a second daemon is still refused with no journal at the path");
		T_OK(rename(moved, jpath) == 0, "journal: put it back");
	}

	/* a served value's event is in the journal before it is in the table */
	int64_t before = raw_resolves(e.db);
	rc = serve_read(e.st, "s", &caller, got, sizeof got, &why);
	T_OK(rc == 0 && !strcmp(got, V1), "journal: the serving handle resolves the value");
	T_EQ_INT(raw_resolves(e.db), before, "journal: no SQLite row was written on the open path");
	T_OK(file_size(jpath) > 24, "journal: the event went to the journal");
	T_EQ_INT(store_journal_import(st2), 0, "journal: another handle imports the journal");
	T_EQ_INT(raw_resolves(e.db), before + 1, "journal: the imported event is a row of the trail");
	T_OK(newest(st2, "resolve", &ev) && !strcmp(ev.agent, "bot") && !strcmp(ev.secret, "p/s") &&
	     ev.uid == 1000 && ev.gid == 1000 && ev.pid == 4242 && !strcmp(ev.exe, "/usr/bin/agent") &&
	     ev.has_fp && !strcmp(ev.actor, "tester") && ev.version == 1,
	     "journal: the imported event keeps the caller's facts and the fingerprint");
	T_EQ_INT(store_journal_import(st2), 0, "journal: importing again is a no-op");
	T_EQ_INT(raw_resolves(e.db), before + 1, "journal: nothing is imported twice");

	/* every change imports first: the chain keeps the order of events */
	rc = serve_read(e.st, "s", &caller, got, sizeof got, &why);
	T_EQ_INT(store_provider_add(st2, "later"), 0, "journal: a change by another handle");
	T_OK(raw_int(e.db, "SELECT max(seq) FROM audit WHERE type = 'resolve'") <
	     raw_int(e.db, "SELECT max(seq) FROM audit WHERE secret = 'later'"),
	     "journal: the earlier resolve is chained before the later change");

	/* the cache sees every commit of every process */
	T_EQ_INT(store_revoke(st2, "bot", "p", "s"), 0, "journal: revoke by another handle");
	rc = serve_read(e.st, "s", &caller, got, sizeof got, &why);
	T_OK(rc == -EACCES && why == POLICY_GRANT_REVOKED,
	     "journal: the next resolve after the revoke is refused (rc %d, %s)", rc, policy_reason_name(why));
	T_EQ_INT(store_grant(st2, "bot", "p", "s", 0, 0), 0, "journal: grant again");
	T_EQ_INT(store_secret_set(st2, "p", "s", (const uint8_t *)V2, strlen(V2), 0, NULL), 0,
		 "journal: rotate by another handle");
	rc = serve_read(e.st, "s", &caller, got, sizeof got, &why);
	T_OK(rc == 0 && !strcmp(got, V2), "journal: the next resolve serves the rotated value");

	/* the daemon's own import keeps the read cache; a commit of anyone else still drops it */
	if (T_PG) {
		printf("skip - journal: the daemon's own import keeps the read cache (SQLite's stamp only;"
		       " PostgreSQL's ignores the trail)\n");
	} else {
		struct store_stats s0, s1, s2;
		rc = serve_read(e.st, "s", &caller, got, sizeof got, &why);
		store_stats_get(e.st, &s0);
		T_EQ_INT(store_journal_tick(e.st), 0, "journal: the daemon imports its events");
		rc |= serve_read(e.st, "s", &caller, got, sizeof got, &why);
		store_stats_get(e.st, &s1);
		T_OK(rc == 0 && s1.cache_drops == s0.cache_drops,
		     "journal: its own import kept the read cache (drops %llu -> %llu)",
		     (unsigned long long)s0.cache_drops, (unsigned long long)s1.cache_drops);
		T_EQ_INT(store_revoke(st2, "bot", "p", "s"), 0, "journal: revoke by another handle after the import");
		rc = serve_read(e.st, "s", &caller, got, sizeof got, &why);
		store_stats_get(e.st, &s2);
		T_OK(rc == -EACCES && why == POLICY_GRANT_REVOKED && s2.cache_drops > s1.cache_drops,
		     "journal: the next resolve sees the revoke (rc %d, %s)", rc, policy_reason_name(why));
		T_EQ_INT(store_grant(st2, "bot", "p", "s", 0, 0), 0, "journal: grant again after the import check");
	}

	/* a use-limited grant is counted in the store */
	rc = serve_read(e.st, "t", &caller, got, sizeof got, &why);
	T_OK(rc == 0 && !strcmp(got, "limited"), "journal: a use-limited grant resolves");
	T_EQ_INT(raw_int(e.db, "SELECT uses FROM grants WHERE max_uses = 5"), 1,
		 "journal: its use is counted");

	T_EQ_INT(store_audit_verify(st2, &rep), 0, "journal: verify runs");
	T_OK(rep.first_bad == 0, "journal: the chain with imported events is intact");

	/* a replaced file of an earlier generation is not imported again */
	T_EQ_INT(store_journal_import(st2), 0, "journal: import before the copy");
	{
		size_t n;
		uint8_t *b = read_all(jpath, &n);
		T_OK(b && write_bytes(saved, b, n, 0600) == 0, "journal: keep a copy of the journal");
		free(b);
	}
	rc = serve_read(e.st, "s", &caller, got, sizeof got, &why);
	store_close(e.st);          /* a clean stop imports the rest */
	e.st = NULL;
	int64_t all = raw_resolves(e.db);
	T_OK(rename(saved, jpath) == 0, "journal: put the old copy back");
	T_EQ_INT(store_journal_import(st2), 0, "journal: import of the old copy");
	T_EQ_INT(raw_resolves(e.db), all, "journal: the old copy's events are not imported twice");

	/* an altered record stops every write until the file is moved aside */
	if (store_open(&e.cfg, "tester", &e.st) || store_serve(e.st, &dropped)) {
		T_OK(0, "journal: serve again (%s)", store_error());
		goto out;
	}
	off_t rec = file_size(jpath);
	rc = serve_read(e.st, "s", &caller, got, sizeof got, &why);
	T_OK(rc == 0 && file_size(jpath) > rec, "journal: one more event in the new generation");
	{
		int fd = open(jpath, O_RDWR);
		uint8_t b;
		bool flipped = fd >= 0 && pread(fd, &b, 1, rec + 12) == 1 && (b ^= 0x20, 1) &&
			       pwrite(fd, &b, 1, rec + 12) == 1;
		if (fd >= 0)
			close(fd);
		T_OK(flipped, "journal: alter one byte of the pending record");
	}
	rc = store_journal_import(st2);
	snprintf(want, sizeof want, "audit journal '%s': the record at offset %lld fails its check"
		 " (altered, or torn by a power loss); move the file aside to keep it and to let the"
		 " store be written again", jpath, (long long)rec);
	T_EQ_INT(rc, -EBADMSG, "journal: the altered record is refused");
	T_EQ_STR(store_error(), want, "journal: the error names the file and the offset");
	T_OK(store_provider_add(st2, "blocked") != 0, "journal: no change is written past it");
	T_EQ_INT(raw_int(e.db, "SELECT count(*) FROM providers WHERE name = 'blocked'"), 0,
		 "journal: the refused change left nothing");
	T_EQ_INT(store_journal_tick(e.st), -EBADMSG, "journal: the daemon's import stops at it too");
	rc = serve_read(e.st, "s", &caller, got, sizeof got, &why);
	T_OK(rc == -EIO && got[0] == '\0',
	     "journal: and the daemon serves nothing more (fail closed, rc %d)", rc);
out:
	store_close(st2);
	env_teardown(&e);
}

/*
 * sql_watch_next on real WAL-index headers: true only for exactly one
 * commit between the two stamps, whoever made it (the store relies on
 * holding the write lock to know it was its own).
 */
static void test_watch_next(void)
{
	char dir[] = "/tmp/scopehold-watch.XXXXXX", path[64];
	struct sql_db *a = NULL, *b = NULL;
	uint8_t s0[SQL_STAMP_BYTES], s1[SQL_STAMP_BYTES], s2[SQL_STAMP_BYTES];

	if (T_PG) {
		printf("skip - watch next: SQLite's WAL-index header (SQLite file only)\n");
		return;
	}
	if (!mkdtemp(dir)) {
		T_OK(0, "watch next: temporary directory");
		return;
	}
	snprintf(path, sizeof path, "%s/w.db", dir);
	bool ok = sql_open("sqlite", path, true, 1000, 0, 0, &a) == 0 &&
		  sql_exec(a, "CREATE TABLE t(x INTEGER)") == 0 &&
		  sql_open("sqlite", path, false, 1000, 0, 0, &b) == 0 && sql_watch_start(a) == 0 &&
		  sql_watch_stamp(a, s0) &&
		  sql_exec(b, "INSERT INTO t VALUES (1)") == 0 && sql_watch_stamp(a, s1) &&
		  sql_exec(b, "INSERT INTO t VALUES (2); INSERT INTO t VALUES (3)") == 0 &&
		  sql_watch_stamp(a, s2);
	T_OK(ok, "watch next: two connections, stamps around three commits");
	if (ok) {
		T_OK(sql_watch_next(a, s0, s1), "watch next: one commit between the stamps is seen as one");
		T_OK(!sql_watch_next(a, s0, s2), "watch next: three commits are not one");
		T_OK(!sql_watch_next(a, s1, s1), "watch next: no commit is not one");
		T_OK(!sql_watch_next(a, s1, s0), "watch next: a stamp going back is not one commit");
		/* a checkpoint that restarts the WAL itself changes no data and counts no commit */
		T_OK(sql_exec(b, "PRAGMA wal_checkpoint(TRUNCATE)") == 0 && sql_watch_stamp(a, s1) &&
		     sql_exec(b, "INSERT INTO t VALUES (4)") == 0 && sql_watch_stamp(a, s2) &&
		     sql_watch_next(a, s1, s2),
		     "watch next: one commit after a checkpoint that restarted the WAL is one");
		/* a commit that restarts the WAL on its way (new salts) is not vouched for */
		T_OK(sql_exec(b, "PRAGMA wal_checkpoint(PASSIVE)") == 0 && sql_watch_stamp(a, s1) &&
		     sql_exec(b, "INSERT INTO t VALUES (5)") == 0 && sql_watch_stamp(a, s2) &&
		     memcmp(s1 + 32, s2 + 32, 8) != 0 && !sql_watch_next(a, s1, s2),
		     "watch next: a commit that restarted the WAL (new salts) is not taken for one");
	}
	sql_close(a);
	sql_close(b);
	snprintf(path, sizeof path, "rm -rf %s", dir);
	if (system(path) != 0)
		fprintf(stderr, "watch next: could not remove %s\n", dir);
}

/* What store_agent_get returns, copied out of the callback. */
struct agent_seen { bool found; uid_t uid; bool has_gid, has_sha, human; char exe[64], cgroup[64]; };

static int agent_seen_cb(void *ctx, const struct store_agent_row *r)
{
	struct agent_seen *a = ctx;

	a->found = true;
	a->uid = r->uid;
	a->has_gid = r->has_gid;
	a->has_sha = r->has_exe_sha256;
	a->human = r->human;
	snprintf(a->exe, sizeof a->exe, "%s", r->exe ? r->exe : "(none)");
	snprintf(a->cgroup, sizeof a->cgroup, "%s", r->cgroup ? r->cgroup : "(none)");
	return 0;
}

/*
 * Cgroup bindings and store_agent_set: a cgroup-bound agent is served
 * only inside it, through the journal; the caller's cgroup lands in the
 * events and the chain (old events verify unchanged); agent_set changes
 * exactly what it is told, keeps grants and counts, and is audited once.
 */
static void test_ident(void)
{
	struct policy_caller in = {
		.known = true, .uid = 1000, .gid = 1000, .pid = 4242, .exe = "/usr/bin/agent",
		.cgroup = "/system.slice/bot.service",
	};
	struct policy_caller out = in;
	struct store_agent_row a = { .name = "bot", .uid = 1000, .cgroup = "/system.slice/bot.service" };
	struct store_agent_change ch;
	struct store_audit_report rep;
	struct agent_seen seen;
	struct grant_seen g = { 0 };
	enum policy_reason why;
	uint64_t dropped;
	struct ev ev;
	struct env e;
	char got[64];
	int rc;

	out.cgroup = "/user.slice";
	if (env_setup(&e, NULL)) {
		T_OK(0, "ident: setup");
		env_teardown(&e);
		return;
	}
	a.cgroup = "/a/../b";
	T_EQ_INT(store_agent_add(e.st, &a), -EINVAL, "ident: a cgroup with .. is refused");
	T_EQ_STR(store_error(), "invalid cgroup '/a/../b': " POLICY_CGROUP_HINT, "ident: and says why");
	a.cgroup = "/system.slice/bot.service";
	rc = store_provider_add(e.st, "p");
	rc |= store_secret_set(e.st, "p", "s", (const uint8_t *)"v", 1, 0, NULL);
	rc |= store_agent_add(e.st, &a);
	rc |= store_project_add(e.st, "proj");
	rc |= store_project_attach(e.st, "proj", "p", NULL);
	rc |= store_assign(e.st, "bot", "proj");
	rc |= store_grant(e.st, "bot", "p", "s", 0, 10);
	T_EQ_INT(rc, 0, "ident: store built");
	memset(&seen, 0, sizeof seen);
	rc = store_agent_get(e.st, "bot", agent_seen_cb, &seen);
	T_EQ_STR(seen.cgroup, "/system.slice/bot.service", "ident: the cgroup binding is stored");
	rc = store_serve(e.st, &dropped);
	T_EQ_INT(rc, 0, "ident: serve");
	T_EQ_INT(serve_read(e.st, "s", &in, got, sizeof got, &why), 0, "ident: served inside the cgroup");
	T_EQ_INT(serve_read(e.st, "s", &out, got, sizeof got, &why), -EACCES, "ident: refused outside it");
	T_EQ_STR(policy_reason_name(why), "cgroup", "ident: reason cgroup");
	T_EQ_INT(store_deny(e.st, "bot", "p", "s", 1, &out, why), 0, "ident: the refusal is recorded");
	T_EQ_INT(store_journal_import(e.st), 0, "ident: journal imported");
	T_OK(newest(e.st, "resolve", &ev) && !strcmp(ev.cgroup, "/system.slice/bot.service"),
	     "ident: the resolve event (through the journal) names the caller's cgroup");
	T_OK(newest(e.st, "deny", &ev) && !strcmp(ev.cgroup, "/user.slice") && !strcmp(ev.reason, "cgroup"),
	     "ident: the deny event names the caller's cgroup");
	/* events without a cgroup chain as they always did: forge one row's cgroup */
	T_EQ_INT(raw_exec(e.db, "UPDATE audit SET cgroup = '' WHERE type = 'resolve'"), 0,
		 "ident: clear the cgroup of the resolve event");
	rc = store_audit_verify(e.st, &rep);
	T_OK(rc == 0 && rep.first_bad != 0, "ident: the chain covers the cgroup (altered event named)");
	T_EQ_INT(raw_exec(e.db, "UPDATE audit SET cgroup = '/system.slice/bot.service' WHERE type = 'resolve'"),
		 0, "ident: restore it");
	rc = store_audit_verify(e.st, &rep);
	T_OK(rc == 0 && rep.first_bad == 0, "ident: chain intact again");

	memset(&ch, 0, sizeof ch);
	T_EQ_INT(store_agent_set(e.st, "bot", &ch), -EINVAL, "ident: agent_set with nothing to change");
	ch.set_cgroup = true;
	ch.cgroup = "bad";
	T_EQ_INT(store_agent_set(e.st, "bot", &ch), -EINVAL, "ident: agent_set with a bad cgroup");
	ch.cgroup = "/user.slice/";
	T_EQ_INT(store_agent_set(e.st, "nobody", &ch), -ENOENT, "ident: agent_set of an unknown agent");
	ch.set_uid = true;
	ch.uid = 1001;
	ch.set_exe_sha256 = true;
	ch.has_exe_sha256 = true;
	memset(ch.exe_sha256, 0xab, sizeof ch.exe_sha256);
	T_EQ_INT(store_agent_set(e.st, "bot", &ch), 0, "ident: agent_set uid, sha256, cgroup");
	memset(&seen, 0, sizeof seen);
	rc = store_agent_get(e.st, "bot", agent_seen_cb, &seen);
	T_OK(rc == 0 && seen.uid == 1001 && seen.has_sha && !strcmp(seen.cgroup, "/user.slice/") &&
	     !strcmp(seen.exe, "(none)") && !seen.has_gid && !seen.human,
	     "ident: exactly those fields changed");
	T_OK(newest(e.st, "agent-set", &ev) && !strcmp(ev.agent, "bot") &&
	     !strcmp(ev.reason, "uid=1001 exe-sha256=abababababababababababababababababababababababababababababababab"
		     " cgroup=/user.slice/"), "ident: one agent-set event names the changes (%s)", ev.reason);
	rc = store_grant_list(e.st, "bot", grant_cb, &g);
	T_OK(rc == 0 && g.n == 1 && g.max_uses == 10 && g.uses == 1, "ident: the grant and its count stay");
	memset(&ch, 0, sizeof ch);
	ch.set_cgroup = ch.set_exe_sha256 = ch.set_human = ch.human = true;
	T_EQ_INT(store_agent_set(e.st, "bot", &ch), 0, "ident: agent_set unbinds");
	memset(&seen, 0, sizeof seen);
	rc = store_agent_get(e.st, "bot", agent_seen_cb, &seen);
	T_OK(rc == 0 && seen.uid == 1001 && !seen.has_sha && !strcmp(seen.cgroup, "(none)") && seen.human,
	     "ident: the cgroup and sha256 are unbound, the uid kept");
	T_OK(newest(e.st, "agent-set", &ev) && !strcmp(ev.reason, "exe-sha256=- cgroup=- kind=human"),
	     "ident: the unbinding is audited (%s)", ev.reason);
	in.uid = in.gid = 1001;
	in.cgroup = NULL;
	T_EQ_INT(serve_read(e.st, "s", &in, got, sizeof got, &why), 0,
		 "ident: the next resolve obeys the new bindings");

	env_teardown(&e);

	/*
	 * A store of schema 7 (no cgroup columns, so no event with one)
	 * migrates to 8, its chain verifies unchanged, and goes on with
	 * events that carry a cgroup.
	 */
	if (env_setup(&e, NULL)) {
		T_OK(0, "ident: setup of the schema 7 store");
		env_teardown(&e);
		return;
	}
	rc = store_provider_add(e.st, "p");
	rc |= agent_add(e.st, "bot", 1000);
	store_close(e.st);
	e.st = NULL;
	T_EQ_INT(rc, 0, "ident: events of an older store");
	T_EQ_INT(raw_exec(e.db, fmt("ALTER TABLE agents DROP COLUMN cgroup; ALTER TABLE audit DROP COLUMN cgroup;"
			  "ALTER TABLE versions DROP COLUMN ttl; ALTER TABLE versions DROP COLUMN destroyed;"
			  "ALTER TABLE audit DROP COLUMN host; %s",
			  T_PG ? "DROP FUNCTION scopehold_changed() CASCADE; DROP TABLE scopehold_hosts;"
				 " DROP SEQUENCE scopehold_change;"
				 " UPDATE scopehold_meta SET value = 7 WHERE key = 'schema_version'" :
			  "PRAGMA user_version = 7")), 0, "ident: the store taken back to schema 7");
	if (T_PG) {
		/* a shared database: only the operator's tool migrates it */
		rc = store_open(&e.cfg, "tester", &e.st);
		T_EQ_INT(rc, -EPROTO, "ident: the daemon refuses a shared database at schema 7");
		T_EQ_STR(store_error(), fmt("store '%s' has schema 7, older than this program (11);"
					    " run any shadm command to migrate it", e.db),
			 "ident: the refusal says who migrates it");
		e.cfg.migrate = true;
	}
	rc = store_open(&e.cfg, "tester", &e.st);
	T_EQ_INT(rc, 0, "ident: a schema 7 store opens (migrated: %s)", rc ? store_error() : "ok");
	T_EQ_INT(raw_int(e.db, T_PG ? "SELECT value FROM scopehold_meta WHERE key = 'schema_version'" :
			 "PRAGMA user_version"), 11, "ident: it is at the current schema, 11");
	if (T_PG)   /* its events had a host, dropped with the column above: put it back */
		T_EQ_INT(raw_exec(e.db, fmt("UPDATE audit SET host = '%s'", e.cfg.host)), 0,
			 "ident: the events' host restored");
	rc = e.st ? store_audit_verify(e.st, &rep) : -1;
	T_OK(rc == 0 && rep.first_bad == 0 && rep.events >= 3, "ident: its chain verifies unchanged");
	out.uid = 2000;
	rc = e.st ? store_deny(e.st, "bot", "p", "s", 0, &out, POLICY_UID_MISMATCH) : -1;
	rc |= e.st ? store_audit_verify(e.st, &rep) : -1;
	T_OK(rc == 0 && rep.first_bad == 0, "ident: and goes on with an event that carries a cgroup");
	env_teardown(&e);
}

/* A daemon killed after serving: its events are imported on the next start. */
static void test_journal_crash(void)
{
	const struct policy_caller caller = { .known = true, .uid = 1000, .gid = 1000, .pid = 7 };
	char jpath[300], got[64];
	enum policy_reason why;
	uint64_t dropped = 0;
	struct env e;
	pid_t pid;
	int rc, status = -1;

	if (env_setup(&e, NULL)) {
		T_OK(0, "journal crash: setup");
		env_teardown(&e);
		return;
	}
	if (T_PG)
		snprintf(jpath, sizeof jpath, "%s/state/audit", e.data);
	else
		snprintf(jpath, sizeof jpath, "%s-audit", e.db);
	rc = store_provider_add(e.st, "p");
	rc |= store_secret_set(e.st, "p", "s", (const uint8_t *)"v", 1, 0, NULL);
	rc |= agent_add(e.st, "bot", 1000);
	rc |= store_project_add(e.st, "proj");
	rc |= store_project_attach(e.st, "proj", "p", NULL);
	rc |= store_assign(e.st, "bot", "proj");
	rc |= store_grant(e.st, "bot", "p", "s", 0, 0);
	T_EQ_INT(rc, 0, "journal crash: store built");
	store_close(e.st);
	e.st = NULL;
	int64_t before = raw_resolves(e.db);

	pid = fork();
	if (pid == 0) {
		struct store *c = NULL;
		int ok = store_open(&e.cfg, "child", &c) == 0 && store_serve(c, &dropped) == 0;
		for (int i = 0; ok && i < 3; i++)
			ok = serve_read(c, "s", &caller, got, sizeof got, &why) == 0;
		_exit(ok ? 0 : 1);      /* no store_close: as if killed */
	}
	waitpid(pid, &status, 0);
	T_OK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "journal crash: a child served three values and died");
	T_EQ_INT(raw_resolves(e.db), before, "journal crash: their events are only in the journal");
	{
		/* a record cut short, then what a power loss leaves: zeros */
		static const uint8_t zeros[100];
		int fd = open(jpath, O_WRONLY | O_APPEND);
		bool cut = fd >= 0 && write(fd, "\x40\x00\x00\x00torn", 8) == 8;
		if (fd >= 0)
			close(fd);
		T_OK(cut, "journal crash: a record cut short after them");
		off_t at = file_size(jpath);
		struct store *peek = NULL;
		T_OK(store_open(&e.cfg, "peek", &peek) == 0 && store_journal_import(peek) == 0,
		     "journal crash: another handle imports up to the cut record without an error");
		store_close(peek);
		T_OK(truncate(jpath, at - 8) == 0, "journal crash: take the cut record off again");
		fd = open(jpath, O_WRONLY | O_APPEND);
		cut = fd >= 0 && write(fd, zeros, sizeof zeros) == (ssize_t)sizeof zeros;
		if (fd >= 0)
			close(fd);
		T_OK(cut, "journal crash: zeros after the events, as a power loss leaves them");
	}
	rc = store_open(&e.cfg, "tester", &e.st);
	if (rc == 0)
		rc = store_serve(e.st, &dropped);
	T_EQ_INT(rc, 0, "journal crash: the next daemon starts (%s)", rc ? store_error() : "");
	T_EQ_INT((int64_t)dropped, 100, "journal crash: the zeros are reported as 100 bytes dropped, not as tampering");
	T_EQ_INT(raw_resolves(e.db), before + 3, "journal crash: the three events are in the trail");
	T_EQ_INT(file_size(jpath), 24, "journal crash: the daemon appends to a fresh generation");
	env_teardown(&e);
}

/* verify across many batches: the first bad event is the one a single pass finds */
static void test_audit_verify_long(void)
{
	struct store_audit_report r, r0;
	struct env e;
	int rc = 0;

	if (env_setup(&e, NULL)) {
		T_OK(0, "long chain: setup");
		env_teardown(&e);
		return;
	}
	if (store_batch_begin(e.st) == 0) {
		for (int i = 0; i < 30000 && rc == 0; i++)
			rc = store_audit_record(e.st, "note", i % 3 ? "bot" : NULL, "p/s", i, "padding");
		rc = store_batch_end(e.st, rc);
	} else {
		rc = -1;
	}
	T_EQ_INT(rc, 0, "long chain: 30000 events recorded");
	rc = store_audit_verify(e.st, &r0);
	T_OK(rc == 0 && r0.first_bad == 0 && r0.events == 30001, "long chain: intact, 30001 events (got %lld)",
	     (long long)r0.events);
	T_OK(raw_exec(e.db, "UPDATE audit SET reason = 'x' WHERE seq IN (15000, 25000)") == SQLITE_OK,
	     "long chain: alter events 15000 and 25000");
	rc = store_audit_verify(e.st, &r);
	T_OK(rc == 0 && r.first_bad == 15000 && r.events == 14999 && !strcmp(r.problem, "altered or reordered"),
	     "long chain: the first altered event is reported (got %lld, %s)", (long long)r.first_bad, r.problem);
	T_OK(raw_exec(e.db, "DELETE FROM audit WHERE seq = 20000") == SQLITE_OK, "long chain: remove event 20000");
	rc = store_audit_verify(e.st, &r);
	T_OK(rc == 0 && r.first_bad == 15000, "long chain: an earlier alteration wins over a later gap");
	T_OK(raw_exec(e.db, "DELETE FROM audit WHERE seq = 9000") == SQLITE_OK, "long chain: remove event 9000");
	rc = store_audit_verify(e.st, &r);
	T_OK(rc == 0 && r.first_bad == 9000 && r.events == 8999 &&
	     !strcmp(r.problem, "removed (the next event present is 9001)"),
	     "long chain: an earlier gap wins over a later alteration (got %lld, %s)", (long long)r.first_bad,
	     r.problem);
	env_teardown(&e);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (sodium_init() < 0) {
		printf("not ok - sodium_init\n");
		return 1;
	}
	umask(022);
	T_PG = getenv("SCOPEHOLD_TEST_PG");
	if (T_PG && !*T_PG)
		T_PG = NULL;
	test_config();
	test_init();
	test_open_refusals();
	test_secrets();
	test_plaintext();
	test_binding();
	test_audit_chain();
	test_resolve();
	test_deny();
	test_keys();
	test_workspaces();
	test_expiry_and_cascades();
	test_versions();
	test_deny_window();
	test_key_cache_and_given_key();
	test_watch_next();
	test_threads_power();
	test_journal_rotate_power();
	test_audit_fault();
	test_full_disk();
	test_journal();
	test_journal_backlog();
	test_ident();
	test_journal_crash();
	test_audit_verify_long();
	return t_done();
}

/*
 * audit_fuzz.c - fuzz target for the audit verifier, store_audit_verify().
 *
 * Once per process a small real store is built in /dev/shm with a varied
 * trail (create, rotate, grant, resolve with a fingerprint, coalesced deny,
 * reveal, key rotation). Each input is then read as a program of tampering
 * steps applied to the audit rows through a second SQLite connection, the
 * way someone with write access to the file but not the key would: set a
 * column to an integer, text or blob, flip one bit of a column, delete a
 * row, swap two rows' seq, move a row to another seq, copy a column between
 * rows, append a copy of a row. Then the trail is verified through the
 * store handle, and the rows are put back from a pristine copy.
 *
 * The oracle decodes the rows as the verifier reads them (integers with
 * sqlite3_column_int64, text up to its first NUL, a fingerprint only when it
 * is 16 bytes, the hash only when 32): changes that alter no decoded field
 * (an integer stored as equal text, bytes after a NUL) are invisible to
 * `shadm audit` as well and need not be flagged. Otherwise:
 *   - if the decoded rows are the original ones or a prefix of them (the
 *     newest rows cut off, which no in-store check can see), verify reports
 *     intact, with events = rows left and head = the hash of the last one;
 *   - else it reports first_bad = the position of the first decoded
 *     difference, with events = first_bad - 1 and a problem text.
 * store_audit_query over the tampered rows must not crash either.
 * (The cgroup and host columns, empty in this trail, are copied with a row but not
 * tampered with: tests/unit/store_test.c (cgroup) and tests/e2e-pg.sh (host)
 * check that the chain covers them.)
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store.h"
#include "tests/fuzz/fuzz.h"

#define MAX_STEPS 12

static const char *const col_names[16] = {
	"seq", "time", "type", "workspace", "actor", "agent", "secret", "version",
	"uid", "gid", "pid", "exe", "reason", "fingerprint", "count", "hash",
};

struct row { uint8_t *bytes; size_t len; };
struct rows { struct row *r; size_t n; };

static struct store *st;
static sqlite3 *db;
static struct rows orig;
static uint8_t orig_head[32];
static char scratch[64];

static void cleanup(void)
{
	char cmd[128];

	sqlite3_close(db);
	store_close(st);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
	if (system(cmd) != 0)
		fprintf(stderr, "audit_fuzz: cannot remove %s\n", scratch);
}

static void die(const char *what) __attribute__((noreturn));
static void die(const char *what)
{
	fprintf(stderr, "audit_fuzz setup: %s: %s / %s\n", what, store_error(),
		db ? sqlite3_errmsg(db) : "");
	abort();
}

/* ---- decoding, as the verifier sees a row -------------------------------- */

struct sbuf { uint8_t *p; size_t len, cap; };

static void put(struct sbuf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = (b->len + n) * 2 + 64;
		uint8_t *np = realloc(b->p, cap);
		if (!np)
			abort();
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_i64(struct sbuf *b, int64_t v) { put(b, &v, sizeof v); }

static void put_str(struct sbuf *b, const unsigned char *s)
{
	size_t n = s ? strlen((const char *)s) : 0;

	put_i64(b, (int64_t)n);
	put(b, s ? s : (const unsigned char *)"", n);
}

static void read_rows(struct rows *out)
{
	sqlite3_stmt *s;
	int i, rc;

	memset(out, 0, sizeof *out);
	if (sqlite3_prepare_v2(db, "SELECT seq, time, type, workspace, actor, agent, secret, version,"
			       " uid, gid, pid, exe, reason, fingerprint, count, hash"
			       " FROM audit ORDER BY seq", -1, &s, NULL) != SQLITE_OK)
		die("prepare read");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct sbuf b = { 0 };

		for (i = 0; i < 16; i++) {
			switch (i) {
			case 2: case 3: case 4: case 5: case 6: case 11: case 12:
				put_str(&b, sqlite3_column_text(s, i));
				break;
			case 13: {
				uint8_t flag = sqlite3_column_bytes(s, i) == 16;
				put(&b, &flag, 1);
				if (flag)
					put(&b, sqlite3_column_blob(s, i), 16);
				break;
			}
			case 15: {
				uint8_t flag = sqlite3_column_bytes(s, i) == 32;
				put(&b, &flag, 1);
				if (flag)
					put(&b, sqlite3_column_blob(s, i), 32);
				break;
			}
			default:
				put_i64(&b, sqlite3_column_int64(s, i));
			}
		}
		out->r = realloc(out->r, (out->n + 1) * sizeof *out->r);
		if (!out->r)
			abort();
		out->r[out->n].bytes = b.p;
		out->r[out->n].len = b.len;
		out->n++;
	}
	if (rc != SQLITE_DONE)
		die("read rows");
	sqlite3_finalize(s);
}

static void free_rows(struct rows *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->r[i].bytes);
	free(r->r);
	memset(r, 0, sizeof *r);
}

static int row_eq(const struct row *a, const struct row *b)
{
	return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

/* The stored hash of a decoded row (its last 32 bytes; flag byte before them). */
static const uint8_t *row_hash(const struct row *r)
{
	return r->bytes[r->len - 33] == 1 ? r->bytes + r->len - 32 : NULL;
}

/* ---- setup --------------------------------------------------------------- */

static void exec(const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "audit_fuzz: %s: %s\n", sql, err ? err : "?");
		abort();
	}
}

static void build_store(void)
{
	char dir[64], path[128];
	struct store_config cfg;
	struct store_agent_row agent;
	struct store_facts f;
	struct policy_caller caller;
	enum policy_reason why;
	uint8_t *val = NULL;
	size_t len = 0;
	int64_t v, kid, n;
	FILE *fp;
	int i;

	snprintf(dir, sizeof dir, "/dev/shm/scopehold-fuzz-audit.%d", (int)getpid());
	snprintf(scratch, sizeof scratch, "%s", dir);
	snprintf(path, sizeof path, "rm -rf '%s'", dir);
	if (system(path) != 0 || mkdir(dir, 0700) != 0)
		die("mkdir");
	atexit(cleanup);
	snprintf(path, sizeof path, "%s/scopehold.ini", dir);
	fp = fopen(path, "w");
	if (!fp)
		die("config");
	fprintf(fp, "[store]\npath = %s/store.db\nkey_file = %s/master.key\n"
		"[mount]\nmountpoint = %s/mnt\n", dir, dir, dir);
	fclose(fp);
	if (store_config_load(path, &cfg) != 0 || store_init(&cfg, "fuzz") != 0 ||
	    store_open(&cfg, "fuzz", &st) != 0)
		die("store");
	memset(&agent, 0, sizeof agent);
	agent.name = "bot";
	agent.uid = 1000;
	memset(&caller, 0, sizeof caller);
	caller.known = true;
	caller.uid = 1000;
	caller.gid = 1000;
	caller.pid = 4242;
	caller.exe = "/usr/bin/agent";
	if (store_provider_add(st, "openai") || store_provider_add(st, "github") ||
	    store_secret_set(st, "openai", "key", (const uint8_t *)"sk-one", 6, 0, &v) ||
	    store_secret_set(st, "openai", "key", (const uint8_t *)"sk-two", 6, 0, &v) ||
	    store_secret_set(st, "github", "token", (const uint8_t *)"gh", 2, 4102444800, &v) ||
	    store_agent_add(st, &agent) || store_project_add(st, "proj") ||
	    store_project_attach(st, "proj", "openai", NULL) || store_assign(st, "bot", "proj") ||
	    store_grant(st, "bot", "openai", "key", 3600, 5))
		die("objects");
	if (store_facts_load(st, "bot", "openai", "key", &f) ||
	    store_resolve(st, &f, &caller, &val, &len, &why))
		die("resolve");
	store_value_free(val, len);
	for (i = 0; i < 3; i++)
		if (store_deny(st, "bot", "github", "token", 1, &caller, POLICY_NOT_CANDIDATE))
			die("deny");
	if (store_deny_flush(st) ||
	    store_secret_reveal(st, "openai", "key", 1, &val, &len))
		die("reveal");
	store_value_free(val, len);
	if (store_key_rotate(st, false, &kid, &n) ||
	    store_audit_record(st, "note", "", "", 0, "fuzz setup"))
		die("rotate");

	snprintf(path, sizeof path, "%s/store.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		die("open db");
	sqlite3_busy_timeout(db, 5000);
	exec("PRAGMA synchronous = OFF");
	exec("CREATE TEMP TABLE pristine AS SELECT * FROM audit");
	read_rows(&orig);
	if (orig.n < 10)
		die("too few events");
	memcpy(orig_head, row_hash(&orig.r[orig.n - 1]), 32);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct store_audit_report rep;

	(void)argc;
	(void)argv;
	build_store();
	if (store_audit_verify(st, &rep) || rep.first_bad || rep.events != (int64_t)orig.n ||
	    memcmp(rep.head, orig_head, 32))
		die("the untouched trail does not verify");
	return 0;
}

/* ---- tampering ------------------------------------------------------------- */

struct in { const uint8_t *p; size_t n; };

static int take(struct in *in)
{
	if (!in->n)
		return -1;
	in->n--;
	return *in->p++;
}

static int64_t row_count(void)
{
	sqlite3_stmt *s;
	int64_t n = 0;

	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM audit", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

/* The seq of the k-th row in seq order (k taken modulo the row count). */
static int64_t pick_seq(int k)
{
	sqlite3_stmt *s;
	int64_t n = row_count(), seq = 0;

	if (n == 0 || k < 0)
		return 0;
	if (sqlite3_prepare_v2(db, "SELECT seq FROM audit ORDER BY seq LIMIT 1 OFFSET ?",
			       -1, &s, NULL) != SQLITE_OK)
		die("prepare pick");
	sqlite3_bind_int64(s, 1, k % n);
	if (sqlite3_step(s) == SQLITE_ROW)
		seq = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return seq;
}

/* Run one statement with up to two int64 parameters and one value parameter. */
static void run(const char *sql, int64_t a, int64_t b, sqlite3_value *val)
{
	sqlite3_stmt *s;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		die(sql);
	sqlite3_bind_int64(s, 1, a);
	sqlite3_bind_int64(s, 2, b);
	if (val)
		sqlite3_bind_value(s, 3, val);
	sqlite3_step(s);    /* constraint failures (duplicate seq, NOT NULL) are fine */
	sqlite3_finalize(s);
}

static void set_col(int col, int64_t seq, int type, const uint8_t *p, size_t n, int64_t iv)
{
	char sql[128];
	sqlite3_stmt *s;

	snprintf(sql, sizeof sql, "UPDATE audit SET %s = ?2 WHERE seq = ?1", col_names[col]);
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		die(sql);
	sqlite3_bind_int64(s, 1, seq);
	if (type == 0)
		sqlite3_bind_int64(s, 2, iv);
	else if (type == 1)
		sqlite3_bind_text(s, 2, (const char *)p, (int)n, SQLITE_TRANSIENT);
	else
		sqlite3_bind_blob(s, 2, p, (int)n, SQLITE_TRANSIENT);
	sqlite3_step(s);
	sqlite3_finalize(s);
}

static void flip_bit(int col, int64_t seq, int bit)
{
	char sql[128];
	sqlite3_stmt *s;
	uint8_t buf[512];
	int type, n;

	snprintf(sql, sizeof sql, "SELECT %s FROM audit WHERE seq = ?", col_names[col]);
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		die(sql);
	sqlite3_bind_int64(s, 1, seq);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		return;
	}
	type = sqlite3_column_type(s, 0);
	if (type == SQLITE_INTEGER) {
		int64_t v = (int64_t)((uint64_t)sqlite3_column_int64(s, 0) ^ ((uint64_t)1 << (bit % 64)));
		sqlite3_finalize(s);
		set_col(col, seq, 0, NULL, 0, v);
		return;
	}
	n = sqlite3_column_bytes(s, 0);
	if (n <= 0 || n > (int)sizeof buf) {
		sqlite3_finalize(s);
		return;
	}
	memcpy(buf, sqlite3_column_blob(s, 0), (size_t)n);
	sqlite3_finalize(s);
	buf[(bit / 8) % n] ^= (uint8_t)(1u << (bit % 8));
	set_col(col, seq, type == SQLITE_TEXT ? 1 : 2, buf, (size_t)n, 0);
}

static void tamper(struct in *in)
{
	int steps = 0, op;

	while (steps++ < MAX_STEPS && (op = take(in)) >= 0) {
		int a = take(in), b = take(in), c = take(in);
		int64_t sa, sb;

		if (a < 0 || b < 0 || c < 0)
			return;
		sa = pick_seq(a);
		sb = pick_seq(b);
		if (!sa)
			return;
		switch (op % 9) {
		case 0: {       /* column b%16 of row a := small integer c - 128, or 8 bytes */
			int64_t v = c - 128;
			if (in->n >= 8 && (c & 1)) {
				memcpy(&v, in->p, 8);
				in->p += 8;
				in->n -= 8;
			}
			set_col(b % 16, sa, 0, NULL, 0, v);
			break;
		}
		case 1:         /* column b%16 of row a := text of the next c%40 bytes */
		case 2: {       /* ... or a blob */
			size_t n = (size_t)(c % 40);
			if (n > in->n)
				n = in->n;
			set_col(b % 16, sa, op % 9, in->p, n, 0);
			in->p += n;
			in->n -= n;
			break;
		}
		case 3:         /* flip bit c (of the first 32 bytes) of column b%16 of row a */
			flip_bit(b % 16, sa, c);
			break;
		case 4:
			run("DELETE FROM audit WHERE seq = ?1", sa, 0, NULL);
			break;
		case 5:         /* swap seq of rows a and b */
			if (sa == sb)
				break;
			run("UPDATE audit SET seq = -999999 WHERE seq = ?1", sa, 0, NULL);
			run("UPDATE audit SET seq = ?1 WHERE seq = ?2", sa, sb, NULL);
			run("UPDATE audit SET seq = ?2 WHERE seq = -999999", 0, sb, NULL);
			break;
		case 6:         /* move row a to seq + (c - 128) */
			run("UPDATE audit SET seq = ?2 WHERE seq = ?1", sa, (int64_t)((uint64_t)sa + (uint64_t)(c - 128)), NULL);
			break;
		case 7: {       /* copy column c%16 of row a into row b */
			char sql[160];
			const char *col = col_names[c % 16];
			snprintf(sql, sizeof sql,
				 "UPDATE audit SET %s = (SELECT %s FROM audit WHERE seq = ?1) WHERE seq = ?2",
				 col, col);
			run(sql, sa, sb, NULL);
			break;
		}
		case 8:         /* append a copy of row a at the end (c odd: keep its seq + 1000) */
			run("INSERT INTO audit SELECT (SELECT max(seq) FROM audit) + 1 + (?2 & 1) * 1000,"
			    " time, type, workspace, actor, agent, secret, version, uid, gid, pid, exe,"
			    " reason, fingerprint, count, hash, cgroup, host FROM audit WHERE seq = ?1", sa, c, NULL);
			break;
		}
	}
}

static int count_event(void *ctx, const struct store_event *ev)
{
	FUZZ_CHECK(ev->type && ev->workspace && ev->actor && ev->agent && ev->secret && ev->exe &&
		   ev->reason, "a NULL string in an event");
	(*(int64_t *)ctx)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct store_audit_report rep;
	struct store_audit_filter filt;
	struct rows cur;
	size_t p;
	int64_t seen = 0;
	int rc, prefix;

	exec("BEGIN IMMEDIATE");
	tamper(&in);
	exec("COMMIT");

	read_rows(&cur);
	for (p = 0; p < cur.n && p < orig.n && row_eq(&cur.r[p], &orig.r[p]); p++)
		;
	prefix = p == cur.n;     /* all rows left are the original first ones */

	rc = store_audit_verify(st, &rep);
	FUZZ_CHECK(rc == 0, "verify failed: %d %s", rc, store_error());
	FUZZ_CHECK(memchr(rep.problem, '\0', sizeof rep.problem) != NULL, "problem not terminated");
	if (prefix) {
		uint8_t zero[32] = { 0 };
		const uint8_t *h = cur.n ? row_hash(&cur.r[cur.n - 1]) : zero;

		FUZZ_CHECK(rep.first_bad == 0, "untampered prefix of %zu rows reported bad at %lld (%s)",
			   cur.n, (long long)rep.first_bad, rep.problem);
		FUZZ_CHECK(rep.events == (int64_t)cur.n, "events %lld, rows %zu",
			   (long long)rep.events, cur.n);
		FUZZ_CHECK(h && memcmp(rep.head, h, 32) == 0, "head is not the last row's hash");
	} else {
		FUZZ_CHECK(rep.first_bad == (int64_t)p + 1,
			   "first difference at event %zu, verify says first_bad %lld (%s)",
			   p + 1, (long long)rep.first_bad, rep.problem);
		FUZZ_CHECK(rep.events == (int64_t)p, "events %lld before the bad one at %zu",
			   (long long)rep.events, p + 1);
		FUZZ_CHECK(rep.problem[0], "bad trail without a problem text");
	}

	memset(&filt, 0, sizeof filt);
	filt.all_workspaces = true;
	rc = store_audit_query(st, &filt, count_event, &seen);
	FUZZ_CHECK(rc == 0 && seen == (int64_t)cur.n, "query: rc %d, %lld events of %zu", rc,
		   (long long)seen, cur.n);

	free_rows(&cur);
	exec("BEGIN IMMEDIATE; DELETE FROM audit; INSERT INTO audit SELECT * FROM temp.pristine; COMMIT");
	return 0;
}

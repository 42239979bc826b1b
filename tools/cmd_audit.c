/*
 * cmd_audit.c - `shadm audit` (query, verify, head) and `shadm key`
 * (rotate, rekey): the commands an operator uses to look back at what
 * happened and to keep the keys fresh.
 *
 * `audit head` prints the chain's head hash so it can be kept somewhere
 * the store's owner cannot rewrite; `audit verify --head HEX` then also
 * catches a trail cut short or rebuilt from scratch, which a chain that
 * only checks itself cannot.
 */
#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "tools/cmd.h"

#define AUDIT_HEAD_BYTES 32

/* ---- audit (query) ------------------------------------------------------------------- */

struct audit_list {
	struct cmd_ctx *c;
	bool all_workspaces;
	bool hosts;                /* a HOST column: the store is a database many hosts share */
	bool follow;               /* print each row at once (--follow), not into c->table */
};

/*
 * The columns of `audit`: --all-workspaces adds WORKSPACE, a database
 * many hosts share adds HOST. Fills col[] with the indices of the ones
 * shown, in order, and returns how many there are.
 */
enum { AC_SEQ, AC_TIME, AC_HOST, AC_TYPE, AC_WORKSPACE, AC_ACTOR, AC_AGENT, AC_SECRET,
       AC_VER, AC_CALLER, AC_REASON, AC_N };

static int audit_columns(const struct audit_list *l, int col[AC_N])
{
	int n = 0;

	for (int i = 0; i < AC_N; i++)
		if ((i != AC_HOST || l->hosts) && (i != AC_WORKSPACE || l->all_workspaces))
			col[n++] = i;
	return n;
}

/* The table of `audit`; --follow prints its header alone. */
static struct cmd_table *audit_table_new(const struct audit_list *l)
{
	static const char *const name[AC_N] = {
		"SEQ", "TIME", "HOST", "TYPE", "WORKSPACE", "ACTOR", "AGENT", "SECRET", "VER",
		"CALLER", "REASON",
	};
	const char *head[AC_N];
	int col[AC_N], n = audit_columns(l, col);

	for (int i = 0; i < n; i++)
		head[i] = name[col[i]];
	return cmd_table_new_array(n, head);
}

static int audit_row(void *ctx, const struct store_event *ev)
{
	struct audit_list *l = ctx;
	struct cmd_ctx *c = l->c;
	char seq[24], t[32], ver[24], caller[2 * PATH_MAX + 96], reason[2 * PATH_MAX + 96];
	char fp[2 * STORE_FINGERPRINT_BYTES + 1];

	if (c->json) {
		if (ev->has_fingerprint)
			cmd_hex(ev->fingerprint, STORE_FINGERPRINT_BYTES, fp);
		policy_time_format(ev->time, t, sizeof(t));
		cmd_json_print(json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:s,s:s,s:s,s:s?,s:I,s:s}",
					 "seq", (json_int_t)ev->seq, "time", t,
					 "type", ev->type ? ev->type : "",
					 "workspace", ev->workspace ? ev->workspace : "",
					 "actor", ev->actor ? ev->actor : "",
					 "agent", ev->agent ? ev->agent : "",
					 "secret", ev->secret ? ev->secret : "",
					 "version", (json_int_t)ev->version,
					 "uid", (json_int_t)ev->uid, "gid", (json_int_t)ev->gid,
					 "pid", (json_int_t)ev->pid,
					 "exe", ev->exe ? ev->exe : "",
					 "cgroup", ev->cgroup ? ev->cgroup : "",
					 "reason", ev->reason ? ev->reason : "",
					 "fingerprint", ev->has_fingerprint ? fp : NULL,
					 "count", (json_int_t)ev->count,
					 "host", ev->host ? ev->host : ""));
		return 0;
	}
	policy_time_format(ev->time, t, sizeof(t));
	if (ev->uid < 0 && ev->gid < 0 && ev->pid < 0 && (!ev->exe || !ev->exe[0])) {
		snprintf(caller, sizeof(caller), "-");
	} else {
		size_t n = 0;

		/* Only the facts that are known; the mount fills them all. */
		caller[0] = '\0';
		if (ev->uid >= 0)
			n += (size_t)snprintf(caller + n, sizeof(caller) - n, " uid=%lld", (long long)ev->uid);
		if (ev->gid >= 0 && n < sizeof(caller))
			n += (size_t)snprintf(caller + n, sizeof(caller) - n, " gid=%lld", (long long)ev->gid);
		if (ev->pid >= 0 && n < sizeof(caller))
			n += (size_t)snprintf(caller + n, sizeof(caller) - n, " pid=%lld", (long long)ev->pid);
		if (ev->exe && ev->exe[0] && n < sizeof(caller))
			n += (size_t)snprintf(caller + n, sizeof(caller) - n, " exe=%s", ev->exe);
		if (ev->cgroup && ev->cgroup[0] && n < sizeof(caller))
			snprintf(caller + n, sizeof(caller) - n, " cgroup=%s", ev->cgroup);
		memmove(caller, caller + 1, strlen(caller));
	}
	/* A coalesced denial stands for `count` refused opens. */
	if (ev->count > 1)
		snprintf(reason, sizeof(reason), "%s x%lld",
			 ev->reason && ev->reason[0] ? ev->reason : "-", (long long)ev->count);
	else
		snprintf(reason, sizeof(reason), "%s", ev->reason ? ev->reason : "");

	const char *all[AC_N] = {
		[AC_SEQ] = cmd_i64(ev->seq, seq, sizeof(seq)), [AC_TIME] = t,
		[AC_HOST] = ev->host, [AC_TYPE] = ev->type, [AC_WORKSPACE] = ev->workspace,
		[AC_ACTOR] = ev->actor, [AC_AGENT] = ev->agent, [AC_SECRET] = ev->secret,
		[AC_VER] = ev->version ? cmd_i64(ev->version, ver, sizeof(ver)) : NULL,
		[AC_CALLER] = caller, [AC_REASON] = reason,
	};
	const char *cell[AC_N];
	int col[AC_N], n = audit_columns(l, col);

	for (int i = 0; i < n; i++)
		cell[i] = all[col[i]];
	if (l->follow) {
		/* as it happens: one line, the table's columns in order, two spaces apart */
		for (int i = 0; i < n; i++)
			printf("%s%s", i ? "  " : "", cell[i] && cell[i][0] ? cmd_esc(cell[i]) : "-");
		putchar('\n');
		return 0;
	}
	cmd_table_add_array(c->table, cell);
	return 0;
}

/*
 * Open the store and move the events the mount has recorded in its audit
 * journal but not yet chained into the trail, so what is shown or
 * verified includes every value handed out so far.
 */
static int audit_open(struct cmd_ctx *c)
{
	int rc = cmd_open(c);

	if (rc)
		return rc;
	rc = store_journal_import(c->st);
	return rc ? cmd_store_fail(rc) : 0;
}

/*
 * --since/--until WHEN: a duration back from now ("2h") or a date
 * (policy_when_parse: "2026-12-01", "2026-12-01T10:00Z", "+01:00"
 * offsets). 0, or 2 after printing: a time that does not parse is a
 * usage error.
 */
static int audit_when(const char *opt, const char *s, int64_t now, int64_t *out)
{
	int64_t d;

	if (policy_duration_parse(s, &d) == 0) {
		*out = now - d;
		return 0;
	}
	/* durations never hold a '-': anything else must be a date */
	if (strchr(s, '-') && policy_when_parse(s, now, out) == 0)
		return 0;
	return cmd_usage("invalid time for %s '%s': use a duration back from now (30m, 2h, 7d) or a "
			 "date (2026-12-01, 2026-12-01T10:00Z, 2026-12-01T10:00+01:00)", opt, s);
}

/* --event TYPE: one the store writes, else a usage error naming them. */
static int audit_event_arg(const char *type)
{
	const char *const *t = store_audit_types();
	char list[1024];
	size_t n = 0;

	if (store_audit_type_known(type))
		return 0;
	list[0] = '\0';
	for (; *t && n < sizeof(list); t++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", n ? " " : "", *t);
	return cmd_usage("unknown event type '%s': use one of %s", type, list);
}

/* ---- audit --follow ------------------------------------------------------------------ */

static volatile sig_atomic_t audit_stop;

static void audit_on_signal(int sig)
{
	(void)sig;
	audit_stop = 1;
}

struct audit_follow {
	struct audit_list l;
	int64_t last;              /* the newest seq printed or skipped */
};

/*
 * The reader of our output went away (EPIPE, POLLERR): that ends a
 * follow normally. Whatever is still buffered goes to /dev/null, so the
 * final flush in main() does not report it as a failed write.
 */
static int audit_reader_gone(void)
{
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
	clearerr(stdout);
	return CMD_EXIT_OK;
}

/* One event as it arrives: print it and push it out at once. */
static int audit_follow_row(void *ctx, const struct store_event *ev)
{
	struct audit_follow *f = ctx;
	int rc;

	f->last = ev->seq;
	rc = audit_row(&f->l, ev);
	if (fflush(stdout) != 0 || ferror(stdout))
		return 1;          /* the reader went away: stop quietly */
	return rc;
}

static int audit_seq_of(void *ctx, const struct store_event *ev)
{
	*(int64_t *)ctx = ev->seq;
	return 0;
}

/* The newest seq of the whole trail (every workspace). */
static int audit_tail_seq(struct cmd_ctx *c, int64_t *seq)
{
	struct store_audit_filter all = { .all_workspaces = true, .limit = 1 };

	*seq = 0;
	return store_audit_query(c->st, &all, audit_seq_of, seq);
}

/*
 * Poll the trail for events after the last one seen (a WAL reader sees
 * each commit), print them as they come. Between polls wait on stdout
 * itself: a pipe whose reader has gone reports POLLERR, so `| head -n 2`
 * ends this at once rather than at the next event. SIGINT, SIGTERM and
 * a closed pipe end it with status 0.
 */
#define AUDIT_FOLLOW_POLL_MS 250

static int audit_follow(struct cmd_ctx *c, struct store_audit_filter *filter, bool backlog,
			const struct audit_list *l)
{
	struct audit_follow f = { { c, l->all_workspaces, l->hosts, true }, 0 };
	struct sigaction sa;
	struct pollfd pfd = { .fd = STDOUT_FILENO, .events = 0 };
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = audit_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* a closed pipe shows as EPIPE on the write, not as a kill */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	if (!c->json) {
		/* the header once, as a table would have it */
		cmd_table_print(audit_table_new(l));
		fflush(stdout);
	}
	if (!backlog) {
		if ((rc = audit_tail_seq(c, &f.last)) < 0)
			return cmd_store_fail(rc);
		filter->after = f.last;
	}
	while (!audit_stop) {
		rc = store_audit_query(c->st, filter, audit_follow_row, &f);
		if (rc == 1)
			return audit_reader_gone();
		if (rc < 0)
			return cmd_store_fail(rc);
		/* only new events from here on, whatever --limit took first */
		if (f.last > filter->after)
			filter->after = f.last;
		filter->limit = 0;
		filter->since = 0;
		if (poll(&pfd, 1, AUDIT_FOLLOW_POLL_MS) > 0 && (pfd.revents & (POLLERR | POLLHUP)))
			return audit_reader_gone();
	}
	return CMD_EXIT_OK;
}

static int audit_query(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { NULL };
	const char *agent = NULL, *secret = NULL, *event = NULL, *since_s = NULL, *limit_s = NULL;
	const char *until_s = NULL, *after_s = NULL, *host = NULL;
	bool all = false, follow = false;
	const struct cmd_opt opts[] = {
		{ "--agent", &agent, NULL },
		{ "--secret", &secret, NULL },
		{ "--event", &event, NULL },
		{ "--since", &since_s, NULL },
		{ "--until", &until_s, NULL },
		{ "--after", &after_s, NULL },
		{ "--limit", &limit_s, NULL },
		{ "--host", &host, NULL },
		{ "--all-workspaces", NULL, &all },
		{ "--follow", NULL, &follow },
		{ NULL, NULL, NULL },
	};
	char provider[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1];
	struct store_audit_filter filter;
	struct audit_list l;
	const char *p[1];
	uint64_t limit = 0, after = 0;
	int64_t now = (int64_t)time(NULL);
	int rc;

	memset(&filter, 0, sizeof(filter));
	CMD_PARSE(c, "audit", argc, argv, opts, pos, 0, p);
	if (limit_s && (rc = cmd_number("--limit", limit_s, INT64_MAX, true, &limit)))
		return rc;
	if (after_s && (rc = cmd_number("--after", after_s, INT64_MAX, false, &after)))
		return rc;
	if (event && (rc = audit_event_arg(event)))
		return rc;
	if (since_s && (rc = audit_when("--since", since_s, now, &filter.since)))
		return rc;
	if (until_s && (rc = audit_when("--until", until_s, now, &filter.until)))
		return rc;
	if (follow && until_s)
		return cmd_usage("--follow cannot be used with --until");
	if (agent && cmd_check_name(agent, POLICY_NAME_AGENT))
		return CMD_EXIT_FAIL;
	if (secret && cmd_check_ref(secret, false, provider, name))
		return CMD_EXIT_FAIL;
	/* the names [store] host accepts */
	if (host && cmd_check_name(host, POLICY_NAME_WORKSPACE))
		return CMD_EXIT_FAIL;
	filter.agent = agent;
	filter.secret = secret;
	filter.type = event;
	filter.host = host;
	/* 1970-01-01 itself is time 0, which the store reads as "no bound" */
	if (since_s && filter.since <= 0)
		filter.since = 1;
	if (until_s && filter.until <= 0)
		filter.until = 1;
	filter.after = (int64_t)after;
	filter.limit = (int64_t)limit;
	filter.all_workspaces = all;
	if ((rc = audit_open(c)))
		return rc;
	l.c = c;
	l.all_workspaces = all;
	l.hosts = strcmp(c->cfg.backend, "postgresql") == 0;
	l.follow = false;
	if (follow)
		return audit_follow(c, &filter, since_s || after_s || limit_s, &l);
	if (!c->json)
		c->table = audit_table_new(&l);
	rc = store_audit_query(c->st, &filter, audit_row, &l);
	return cmd_list_end(c, rc);
}

/* ---- audit verify / head ------------------------------------------------------------------- */

static int audit_verify(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { NULL };
	const char *head_s = NULL;
	const struct cmd_opt opts[] = {
		{ "--head", &head_s, NULL },
		{ NULL, NULL, NULL },
	};
	struct store_audit_report rep;
	char head[2 * AUDIT_HEAD_BYTES + 1];
	const char *p[1];
	bool head_ok = true;
	size_t i;
	int rc;

	CMD_PARSE(c, "audit verify", argc, argv, opts, pos, 0, p);
	if (head_s) {
		for (i = 0; head_s[i]; i++) {
			if (!isxdigit((unsigned char)head_s[i]))
				break;
		}
		if (head_s[i] || i != 2 * AUDIT_HEAD_BYTES)
			return cmd_fail("invalid head '%s': use the 64 hex digits from 'shadm audit head'",
					head_s);
	}
	if ((rc = audit_open(c)))
		return rc;
	memset(&rep, 0, sizeof(rep));
	rc = store_audit_verify(c->st, &rep);
	if (rc < 0)
		return cmd_store_fail(rc);
	cmd_hex(rep.head, AUDIT_HEAD_BYTES, head);
	if (head_s)
		head_ok = strcasecmp(head_s, head) == 0;
	if (c->json)
		cmd_json_print(json_pack("{s:b,s:I,s:I,s:s,s:s,s:o*}",
					 "intact", rep.first_bad == 0,
					 "events", (json_int_t)rep.events,
					 "first_bad", (json_int_t)rep.first_bad,
					 "problem", rep.problem, "head", head,
					 "head_matches", head_s ? json_boolean(head_ok) : NULL));
	if (rep.first_bad)
		return cmd_fail("audit chain broken at event %lld: %s", (long long)rep.first_bad,
				rep.problem[0] ? rep.problem : "altered");
	if (!head_ok)
		return cmd_fail("audit chain head does not match: the trail was truncated or rewritten");
	if (!c->json)
		printf("audit chain intact: %lld events\n", (long long)rep.events);
	return CMD_EXIT_OK;
}

static int audit_head(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { NULL };
	struct store_audit_report rep;
	char head[2 * AUDIT_HEAD_BYTES + 1];
	const char *p[1];
	int rc;

	CMD_PARSE(c, "audit head", argc, argv, NULL, pos, 0, p);
	if ((rc = audit_open(c)))
		return rc;
	memset(&rep, 0, sizeof(rep));
	rc = store_audit_verify(c->st, &rep);
	if (rc < 0)
		return cmd_store_fail(rc);
	/* A head of a broken chain vouches for nothing: refuse to print one. */
	if (rep.first_bad)
		return cmd_fail("audit chain broken at event %lld: %s", (long long)rep.first_bad,
				rep.problem[0] ? rep.problem : "altered");
	cmd_hex(rep.head, AUDIT_HEAD_BYTES, head);
	if (c->json)
		cmd_json_print(json_pack("{s:s,s:I}", "head", head, "events", (json_int_t)rep.events));
	else
		printf("%s\n", head);
	return CMD_EXIT_OK;
}

int cmd_audit(struct cmd_ctx *c, int argc, char **argv)
{
	int i = 1;

	/* `audit [--json] verify|head ...`; anything else is a query. */
	while (i < argc && strcmp(argv[i], "--json") == 0) {
		c->json = true;
		i++;
	}
	if (i < argc && strcmp(argv[i], "verify") == 0)
		return audit_verify(c, argc - i, argv + i);
	if (i < argc && strcmp(argv[i], "head") == 0)
		return audit_head(c, argc - i, argv + i);
	return audit_query(c, argc, argv);
}

/* ---- key ------------------------------------------------------------------------------------ */

static int key_rotate(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { NULL };
	bool rewrap = false;
	const struct cmd_opt opts[] = {
		{ "--rewrap", NULL, &rewrap },
		{ NULL, NULL, NULL },
	};
	const char *p[1];
	int64_t key_id = 0, rewrapped = 0;
	int rc;

	CMD_PARSE(c, "key rotate", argc, argv, opts, pos, 0, p);
	if ((rc = cmd_open(c)))
		return rc;
	rc = store_key_rotate(c->st, rewrap, &key_id, &rewrapped);
	if (rc < 0)
		return cmd_store_fail(rc);
	return cmd_done(c, json_pack("{s:b,s:s,s:I,s:I}", "ok", 1, "action", "key-rotate",
				     "key_id", (json_int_t)key_id, "rewrapped", (json_int_t)rewrapped),
			"new data key %lld; re-encrypted %lld versions", (long long)key_id,
			(long long)rewrapped);
}

static int key_rekey(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { NULL };
	const char *new_key = NULL;
	const struct cmd_opt opts[] = {
		{ "--new-key-file", &new_key, NULL },
		{ NULL, NULL, NULL },
	};
	const char *p[1];
	int rc;

	CMD_PARSE(c, "key rekey", argc, argv, opts, pos, 0, p);
	if (!new_key)
		return cmd_usage("key rekey needs --new-key-file");
	if (!new_key[0])
		return cmd_usage("--new-key-file needs a value");
	if ((rc = cmd_open(c)))
		return rc;
	rc = store_key_rekey(c->st, new_key);
	if (rc < 0)
		return cmd_store_fail(rc);
	return cmd_done(c, json_pack("{s:b,s:s,s:s}", "ok", 1, "action", "key-rekey",
				     "key_file", c->cfg.key_file),
			"root key replaced; the new key is now %s", c->cfg.key_file);
}

int cmd_key(struct cmd_ctx *c, int argc, char **argv)
{
	static const struct cmd_sub subs[] = {
		{ "rotate", key_rotate }, { "rekey", key_rekey }, { NULL, NULL },
	};
	return cmd_dispatch(c, argc, argv, subs);
}

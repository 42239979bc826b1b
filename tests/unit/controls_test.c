/*
 * controls_test.c - store tests of the access controls on real temporary
 * files: access requests (counted with the denials, written by the
 * flush, coalesced per agent and secret, listed, approved and rejected,
 * expired), task-scoped grants (pinned by pid and start time, refused
 * once the process ends - also from the serving handle's cache - and
 * swept), rate limits counted in memory, canary secrets and the alerts
 * they raise, the new-exe, rate-limit and deny-burst alerts, and the
 * audit events they leave.
 *
 * Every test makes its own directory under /tmp, so tests share nothing.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "store/store.h"
#include "tests/unit/t.h"

/* ---- one test's world ------------------------------------------------------- */

struct env {
	char dir[128];
	char conf[192];
	struct store_config cfg;
	struct store *st;
};

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A store with provider p, secrets p/a and p/b attached to project pr, agent bot (uid 1000). */
static int env_setup(struct env *e, const char *extra)
{
	char text[1024];
	FILE *f;
	int rc;

	memset(e, 0, sizeof *e);
	snprintf(e->dir, sizeof e->dir, "/tmp/controls_test.XXXXXX");
	if (!mkdtemp(e->dir))
		return -errno;
	snprintf(e->conf, sizeof e->conf, "%s/scopehold.ini", e->dir);
	snprintf(text, sizeof text, "[store]\npath = %s/store.db\nkey_file = %s/master.key\n%s",
		 e->dir, e->dir, extra ? extra : "");
	if (!(f = fopen(e->conf, "w")))
		return -errno;
	fputs(text, f);
	fclose(f);
	if ((rc = store_config_load(e->conf, &e->cfg)) || (rc = store_init(&e->cfg, "tester")) ||
	    (rc = store_open(&e->cfg, "tester", &e->st)))
		return rc;
	struct store_agent_row a = { .name = "bot", .uid = 1000, .enabled = true };
	if ((rc = store_provider_add(e->st, "p")) ||
	    (rc = store_secret_set(e->st, "p", "a", (const uint8_t *)"value-a", 7, 0, NULL)) ||
	    (rc = store_secret_set(e->st, "p", "b", (const uint8_t *)"value-b", 7, 0, NULL)) ||
	    (rc = store_secret_set(e->st, "p", "c", (const uint8_t *)"value-c", 7, 0, NULL)) ||
	    (rc = store_project_add(e->st, "pr")) ||
	    (rc = store_project_attach(e->st, "pr", "p", "a")) ||
	    (rc = store_project_attach(e->st, "pr", "p", "b")) ||
	    (rc = store_agent_add(e->st, &a)) || (rc = store_assign(e->st, "bot", "pr")))
		return rc;
	return 0;
}

static void env_teardown(struct env *e)
{
	store_close(e->st);
	e->st = NULL;
	if (e->dir[0])
		nftw(e->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const struct policy_caller bot_caller = {
	.known = true, .uid = 1000, .gid = 1000, .pid = 4242, .exe = "/usr/bin/agent",
};

/* Open p/NAME as the mount does: resolve, and record a refusal with store_deny. */
static int mount_open(struct store *st, const char *name, const struct policy_caller *c,
		      enum policy_reason *why)
{
	struct store_facts f;
	uint8_t *val = NULL;
	size_t len = 0;
	int rc;

	memset(&f, 0, sizeof f);
	snprintf(f.agent_name, sizeof f.agent_name, "bot");
	snprintf(f.provider, sizeof f.provider, "p");
	snprintf(f.name, sizeof f.name, "%s", name);
	rc = store_resolve(st, &f, c, &val, &len, why);
	if (rc == 0)
		store_value_free(val, len);
	if (rc == -EACCES && store_deny(st, "bot", "p", name, f.p.secret.version, c, *why))
		return -EIO;
	return rc;
}

/* ---- requests ------------------------------------------------------------------ */

struct reqs {
	int n;
	char what[8][300];         /* "AGENT P/N STATE COUNT UID PID EXE" */
};

static int req_cb(void *ctx, const struct store_request_row *r)
{
	struct reqs *q = ctx;

	if (q->n < 8)
		snprintf(q->what[q->n], sizeof q->what[0], "%s %s/%s %s %lld %lld %lld %s", r->agent,
			 r->provider, r->name, r->state, (long long)r->count, (long long)r->uid,
			 (long long)r->pid, r->exe);
	q->n++;
	return 0;
}

static struct reqs list(struct store *st, bool all)
{
	struct reqs q = { 0 };

	if (store_request_list(st, all, req_cb, &q))
		q.n = -1;
	return q;
}

static int ev_count_cb(void *ctx, const struct store_event *ev)
{
	(void)ev;
	++*(int *)ctx;
	return 0;
}

static int events(struct store *st, const char *type)
{
	struct store_audit_filter f = { .type = type };
	int n = 0;

	return store_audit_query(st, &f, ev_count_cb, &n) ? -1 : n;
}

static void test_requests(void)
{
	struct policy_caller stranger = bot_caller;
	enum policy_reason why;
	struct store_grant_opts g = { .uses = 1 };
	struct env e;
	struct reqs q;

	if (env_setup(&e, NULL)) {
		T_OK(0, "requests: setup (%s)", store_error());
		env_teardown(&e);
		return;
	}
	T_EQ_INT(mount_open(e.st, "a", &bot_caller, &why), -EACCES, "requests: open without a grant is refused");
	T_EQ_STR(policy_reason_name(why), "no-grant", "requests: the reason is no-grant");
	q = list(e.st, false);
	T_EQ_INT(q.n, 0, "requests: nothing is written before the flush");
	T_EQ_INT(store_deny_flush(e.st), 0, "requests: flush");
	q = list(e.st, false);
	T_EQ_INT(q.n, 1, "requests: one pending request after the flush");
	T_EQ_STR(q.what[0], "bot p/a pending 1 1000 4242 /usr/bin/agent",
		 "requests: agent, secret, state, count and the caller's facts");

	/* repeats coalesce: counted in memory by store_deny */
	for (int i = 0; i < 5; i++)
		T_OK(store_deny(e.st, "bot", "p", "a", 1, &bot_caller, POLICY_NO_GRANT) == 0,
		     "requests: repeat %d is counted", i);
	T_EQ_INT(mount_open(e.st, "a", &bot_caller, &why), -EACCES, "requests: another refusal");
	T_EQ_INT(store_deny_flush(e.st), 0, "requests: flush again");
	q = list(e.st, false);
	T_EQ_INT(q.n, 1, "requests: still one request for (agent, secret)");
	T_EQ_STR(q.what[0], "bot p/a pending 7 1000 4242 /usr/bin/agent",
		 "requests: the count grew by the repeats");

	/* strangers, non-candidates and unknown secrets never create requests */
	stranger.uid = 1001;
	T_EQ_INT(mount_open(e.st, "a", &stranger, &why), -EACCES, "requests: a stranger is refused");
	T_EQ_INT(mount_open(e.st, "c", &bot_caller, &why), -EACCES, "requests: a non-candidate is refused");
	T_EQ_STR(policy_reason_name(why), "not-candidate", "requests: reason not-candidate");
	T_EQ_INT(mount_open(e.st, "zz", &bot_caller, &why), -EACCES, "requests: an unknown secret is refused");
	T_EQ_INT(store_deny_flush(e.st), 0, "requests: flush after the strangers");
	q = list(e.st, true);
	T_EQ_INT(q.n, 1, "requests: no request from a stranger, a non-candidate or an unknown secret");

	/* reject, approve */
	T_EQ_INT(store_request_decide(e.st, "bot", "p", "b", true, &g), -ENOENT,
		 "requests: approve without a request is ENOENT");
	T_EQ_STR(store_error(), "agent 'bot' has no pending request for 'p/b'",
		 "requests: ... with one clear line");
	T_EQ_INT(store_request_decide(e.st, "bot", "p", "a", false, NULL), 0, "requests: reject");
	T_EQ_INT(list(e.st, false).n, 0, "requests: a rejected request is not pending");
	q = list(e.st, true);
	T_EQ_STR(q.what[0], "bot p/a rejected 7 1000 4242 /usr/bin/agent", "requests: --all shows it rejected");
	T_EQ_INT(store_request_decide(e.st, "bot", "p", "a", true, &g), -ENOENT,
		 "requests: approve after reject is ENOENT");
	T_EQ_INT(mount_open(e.st, "a", &bot_caller, &why), -EACCES, "requests: refused again");
	T_EQ_INT(store_deny_flush(e.st), 0, "requests: flush");
	q = list(e.st, false);
	T_EQ_STR(q.what[0], "bot p/a pending 1 1000 4242 /usr/bin/agent",
		 "requests: a refusal after a decision opens a new request");
	T_EQ_INT(store_request_decide(e.st, "bot", "p", "a", true, &g), 0, "requests: approve with one use");
	T_EQ_INT(mount_open(e.st, "a", &bot_caller, &why), 0, "requests: the next open succeeds");
	T_EQ_INT(mount_open(e.st, "a", &bot_caller, &why), -EACCES, "requests: the approved use is spent");
	T_EQ_INT(events(e.st, "approve"), 1, "requests: one approve event");
	T_EQ_INT(events(e.st, "reject"), 1, "requests: one reject event");
	env_teardown(&e);

	/* expiry: keep = 1s */
	if (env_setup(&e, "[requests]\nkeep = 1s\n")) {
		T_OK(0, "requests: setup with keep = 1s (%s)", store_error());
		env_teardown(&e);
		return;
	}
	T_EQ_INT(mount_open(e.st, "b", &bot_caller, &why), -EACCES, "requests: refused (keep 1s)");
	T_EQ_INT(store_deny_flush(e.st), 0, "requests: flush (keep 1s)");
	T_EQ_INT(list(e.st, false).n, 1, "requests: pending at first");
	sleep(2);
	T_EQ_INT(list(e.st, false).n, 0, "requests: expired after keep");
	q = list(e.st, true);
	T_EQ_STR(q.what[0], "bot p/b expired 1 1000 4242 /usr/bin/agent", "requests: --all shows it expired");
	T_EQ_INT(store_request_decide(e.st, "bot", "p", "b", true, NULL), -ENOENT,
		 "requests: an expired request cannot be approved");
	env_teardown(&e);
}

/* ---- task-scoped grants ---------------------------------------------------------- */

struct grant_state {
	int n;
	int64_t pid;
	bool ended;
};

static int grant_cb(void *ctx, const struct store_grant_row *r)
{
	struct grant_state *g = ctx;

	g->n++;
	g->pid = r->pid;
	g->ended = r->task_ended;
	return 0;
}

static pid_t child_sleeping(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		pause();
		_exit(0);
	}
	return pid;
}

static void child_end(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_task_grants(bool serving)
{
	const char *how = serving ? "task (serving)" : "task";
	struct store_grant_opts g = { 0 };
	struct grant_state gs = { 0 };
	enum policy_reason why;
	struct store_facts f;
	uint64_t start, dropped;
	int64_t swept = -1;
	struct env e;
	pid_t child;

	if (env_setup(&e, NULL) || (serving && store_serve(e.st, &dropped))) {
		T_OK(0, "%s: setup (%s)", how, store_error());
		env_teardown(&e);
		return;
	}
	T_EQ_INT(store_task_start(getpid(), &start), 0, "%s: this process has a start time", how);
	T_OK(store_task_alive(getpid(), start), "%s: this process is alive", how);
	T_OK(!store_task_alive(getpid(), start + 1), "%s: the same pid with another start time is not", how);
	T_EQ_INT(store_task_start(0, &start), -ESRCH, "%s: pid 0 is no process", how);
	T_EQ_INT(store_task_start(2147483600, &start), -ESRCH, "%s: an unused pid is no process", how);

	child = child_sleeping();
	T_EQ_INT(store_task_start(child, &g.pid_start), 0, "%s: the child's start time", how);
	g.pid = child;
	T_EQ_INT(store_grant_with(e.st, "bot", "p", "a", &g), 0, "%s: grant --while-pid child", how);
	T_EQ_INT(mount_open(e.st, "a", &bot_caller, &why), 0, "%s: open while the child lives", how);
	T_EQ_INT(mount_open(e.st, "a", &bot_caller, &why), 0, "%s: again (from the cache when serving)", how);
	child_end(child);
	T_EQ_INT(mount_open(e.st, "a", &bot_caller, &why), -EACCES, "%s: refused once the child ended", how);
	T_EQ_STR(policy_reason_name(why), "task-ended", "%s: reason task-ended", how);
	T_EQ_INT(store_facts_load(e.st, "bot", "p", "a", &f), 0, "%s: facts", how);
	T_OK(f.p.grant.pid == child && f.p.grant.task_ended, "%s: facts say the task ended", how);
	T_EQ_INT(store_grant_list(e.st, "bot", grant_cb, &gs), 0, "%s: grant list", how);
	T_OK(gs.n == 1 && gs.pid == child && gs.ended, "%s: the grant list shows the task ended", how);

	/* a reused pid: the right pid with another start time never revives a grant */
	g.pid = getpid();
	T_EQ_INT(store_task_start(getpid(), &g.pid_start), 0, "%s: own start time", how);
	g.pid_start += 1;
	T_EQ_INT(store_grant_with(e.st, "bot", "p", "b", &g), 0, "%s: grant pinned to a wrong start time", how);
	T_EQ_INT(mount_open(e.st, "b", &bot_caller, &why), -EACCES, "%s: a reused pid does not count", how);
	T_EQ_STR(policy_reason_name(why), "task-ended", "%s: ... reason task-ended", how);

	T_EQ_INT(store_task_sweep(e.st, &swept), 0, "%s: sweep", how);
	T_EQ_INT(swept, 2, "%s: both ended task grants are swept", how);
	T_EQ_INT(events(e.st, "sweep"), 2, "%s: two sweep events", how);
	gs.n = 0;
	T_EQ_INT(store_grant_list(e.st, "bot", grant_cb, &gs), 0, "%s: grant list after the sweep", how);
	T_EQ_INT(gs.n, 0, "%s: no grant is left", how);
	T_EQ_INT(mount_open(e.st, "a", &bot_caller, &why), -EACCES, "%s: refused after the sweep", how);
	T_EQ_STR(policy_reason_name(why), "no-grant", "%s: ... now for no-grant", how);
	T_EQ_INT(store_task_sweep(e.st, &swept), 0, "%s: a second sweep", how);
	T_EQ_INT(swept, 0, "%s: finds nothing", how);
	g.pid = -1;
	T_EQ_INT(store_grant_with(e.st, "bot", "p", "a", &g), -EINVAL, "%s: a negative pid is refused", how);
	env_teardown(&e);
}

/* ---- rate limits ----------------------------------------------------------------- */

/* mount_open, keeping the facts (for rate_first_refusal) */
static int open_facts(struct store *st, const char *name, struct store_facts *f, enum policy_reason *why)
{
	uint8_t *val = NULL;
	size_t len = 0;
	int rc;

	memset(f, 0, sizeof *f);
	snprintf(f->agent_name, sizeof f->agent_name, "bot");
	snprintf(f->provider, sizeof f->provider, "p");
	snprintf(f->name, sizeof f->name, "%s", name);
	rc = store_resolve(st, f, &bot_caller, &val, &len, why);
	if (rc == 0)
		store_value_free(val, len);
	return rc;
}

static void test_rate(bool serving)
{
	const char *how = serving ? "rate (serving)" : "rate";
	struct store_grant_opts uses = { .uses = 100 };
	struct store_facts f;
	enum policy_reason why;
	uint64_t dropped;
	struct env e;

	if (env_setup(&e, NULL) || (serving && store_serve(e.st, &dropped)) ||
	    store_grant(e.st, "bot", "p", "a", 0, 0) || store_grant_with(e.st, "bot", "p", "b", &uses)) {
		T_OK(0, "%s: setup (%s)", how, store_error());
		env_teardown(&e);
		return;
	}
	T_EQ_INT(store_agent_rate(e.st, "bot", 3, 60), 0, "%s: set 3/1m", how);
	T_EQ_INT(open_facts(e.st, "a", &f, &why), 0, "%s: first open", how);
	T_EQ_INT(open_facts(e.st, "b", &f, &why), 0, "%s: second open (a grant with uses counts too)", how);
	T_EQ_INT(open_facts(e.st, "a", &f, &why), 0, "%s: third open", how);
	T_EQ_INT(open_facts(e.st, "a", &f, &why), -EACCES, "%s: the fourth in the minute is refused", how);
	T_OK(why == POLICY_RATE_LIMIT && f.rate_first_refusal,
	     "%s: reason rate-limit, the window's first refusal (%s)", how, policy_reason_name(why));
	T_EQ_INT(open_facts(e.st, "b", &f, &why), -EACCES, "%s: the fifth is refused", how);
	T_OK(why == POLICY_RATE_LIMIT && !f.rate_first_refusal, "%s: ... not the first refusal", how);
	T_EQ_INT(store_agent_rate(e.st, "bot", 0, 0), 0, "%s: rate off", how);
	T_EQ_INT(open_facts(e.st, "a", &f, &why), 0, "%s: the next open works", how);
	T_EQ_INT(store_agent_rate(e.st, "bot", 2, 60), 0, "%s: set 2/1m", how);
	T_EQ_INT(open_facts(e.st, "a", &f, &why), 0, "%s: a new limit counts afresh (1)", how);
	T_EQ_INT(open_facts(e.st, "a", &f, &why), 0, "%s: a new limit counts afresh (2)", how);
	T_EQ_INT(open_facts(e.st, "a", &f, &why), -EACCES, "%s: ... then refuses", how);
	T_EQ_INT(store_agent_rate(e.st, "bot", 5, 0), -EINVAL, "%s: a rate without a window is refused", how);
	T_EQ_INT(store_agent_rate(e.st, "bot", -1, 60), -EINVAL, "%s: a negative rate is refused", how);
	T_EQ_INT(store_agent_rate(e.st, "ghost", 5, 60), -ENOENT, "%s: an unknown agent", how);
	T_EQ_INT(events(e.st, "agent-rate"), 3, "%s: each change is one agent-rate event", how);
	env_teardown(&e);
}

/* ---- canaries and alerts -------------------------------------------------------- */

struct hooked {
	int n;
	char last[512];
};

static void hook_cb(void *ctx, const struct store_alert *a)
{
	struct hooked *h = ctx;

	h->n++;
	snprintf(h->last, sizeof h->last, "%s %s %s v%lld uid=%lld pid=%lld exe=%s %s", a->type, a->agent,
		 a->secret, (long long)a->version, (long long)a->uid, (long long)a->pid, a->exe, a->reason);
}

struct reasons {
	char all[1024];
};

static int reason_cb(void *ctx, const struct store_event *ev)
{
	struct reasons *r = ctx;
	size_t n = strlen(r->all);

	snprintf(r->all + n, sizeof r->all - n, "%s%s", n ? "," : "", ev->reason);
	return 0;
}

static const char *alert_reasons(struct store *st, struct reasons *r)
{
	struct store_audit_filter f = { .type = "alert" };

	r->all[0] = '\0';
	if (store_journal_serving(st) && store_journal_import(st))
		return "import failed";
	return store_audit_query(st, &f, reason_cb, r) ? "query failed" : r->all;
}

struct canary_list {
	int canaries;
};

static int canary_cb(void *ctx, const struct store_secret_row *r)
{
	((struct canary_list *)ctx)->canaries += r->canary;
	return 0;
}

static void test_canary(bool serving)
{
	const char *how = serving ? "canary (serving)" : "canary";
	struct policy_caller stranger = bot_caller;
	struct canary_list cl = { 0 };
	struct hooked h = { 0 };
	struct reasons r;
	enum policy_reason why;
	uint64_t dropped;
	struct env e;

	if (env_setup(&e, NULL) || (serving && store_serve(e.st, &dropped)) ||
	    store_grant(e.st, "bot", "p", "a", 0, 0)) {
		T_OK(0, "%s: setup (%s)", how, store_error());
		env_teardown(&e);
		return;
	}
	store_alert_hook(e.st, hook_cb, &h);
	T_EQ_INT(store_secret_canary(e.st, "p", "a", true), 0, "%s: mark p/a", how);
	T_EQ_INT(store_secret_canary(e.st, "p", "b", true), 0, "%s: mark p/b", how);
	T_EQ_INT(store_secret_canary(e.st, "p", "zz", true), -ENOENT, "%s: an unknown secret", how);
	T_EQ_INT(store_secret_list(e.st, NULL, canary_cb, &cl), 0, "%s: list", how);
	T_EQ_INT(cl.canaries, 2, "%s: the list shows both marks", how);
	T_EQ_INT(mount_open(e.st, "a", &bot_caller, &why), 0, "%s: a granted canary is served", how);
	T_EQ_INT(h.n, 1, "%s: ... and alerts through the hook", how);
	T_EQ_STR(h.last, "canary bot p/a v1 uid=1000 pid=4242 exe=/usr/bin/agent allow",
		 "%s: the hook gets type, agent, secret, version, caller and decision", how);
	T_EQ_INT(mount_open(e.st, "b", &bot_caller, &why), -EACCES, "%s: an ungranted canary is refused", how);
	T_EQ_STR(h.last, "canary bot p/b v1 uid=1000 pid=4242 exe=/usr/bin/agent no-grant",
		 "%s: ... and alerts with the refusal's reason", how);
	stranger.uid = 1001;
	T_EQ_INT(mount_open(e.st, "a", &stranger, &why), -EACCES, "%s: a stranger is refused", how);
	T_EQ_STR(h.last, "canary bot p/a v1 uid=1001 pid=4242 exe=/usr/bin/agent uid",
		 "%s: ... and alerts once, from the denial", how);
	T_EQ_INT(h.n, 3, "%s: three alerts so far", how);
	T_EQ_INT(store_deny(e.st, "bot", "p", "a", 1, &stranger, POLICY_UID_MISMATCH), 0,
		 "%s: a stranger's repeat is only counted", how);
	T_EQ_INT(h.n, 3, "%s: ... without an alert", how);
	T_EQ_STR(alert_reasons(e.st, &r), "canary: allow,canary: no-grant,canary: uid",
		 "%s: the trail holds the three alerts", how);
	T_EQ_INT(store_secret_canary(e.st, "p", "a", false), 0, "%s: unmark p/a", how);
	T_EQ_INT(mount_open(e.st, "a", &bot_caller, &why), 0, "%s: served after unmarking", how);
	T_EQ_INT(h.n, 3, "%s: ... without an alert", how);
	T_EQ_INT(events(e.st, "canary"), 3, "%s: each mark change is a canary event", how);
	env_teardown(&e);
}

static void test_alerts(void)
{
	struct policy_caller hashed = bot_caller, other_exe, stranger = bot_caller;
	struct store_facts f;
	struct hooked h = { 0 };
	struct reasons r;
	enum policy_reason why;
	struct env e;

	if (env_setup(&e, "[alerts]\ndeny_burst = 5\n") || store_grant(e.st, "bot", "p", "a", 0, 0)) {
		T_OK(0, "alerts: setup (%s)", store_error());
		env_teardown(&e);
		return;
	}
	store_alert_hook(e.st, hook_cb, &h);

	/* new-exe: only where the digest is known */
	T_EQ_INT(mount_open(e.st, "a", &bot_caller, &why), 0, "new-exe: a resolve without a digest");
	T_EQ_INT(h.n, 0, "new-exe: ... raises nothing");
	hashed.has_exe_sha256 = true;
	memset(hashed.exe_sha256, 0xab, sizeof hashed.exe_sha256);
	other_exe = hashed;
	other_exe.exe_sha256[31] = 0xac;
	T_EQ_INT(mount_open(e.st, "a", &hashed, &why), 0, "new-exe: the first resolve from a digest");
	T_EQ_INT(h.n, 1, "new-exe: ... alerts");
	T_EQ_STR(h.last, "new-exe bot p/a v1 uid=1000 pid=4242 exe=/usr/bin/agent allow", "new-exe: the alert");
	T_EQ_INT(mount_open(e.st, "a", &hashed, &why), 0, "new-exe: the same digest again");
	T_EQ_INT(h.n, 1, "new-exe: ... does not alert");
	T_EQ_INT(mount_open(e.st, "a", &other_exe, &why), 0, "new-exe: another digest");
	T_EQ_INT(h.n, 2, "new-exe: ... alerts");
	T_EQ_INT(store_controls_flush(e.st), 0, "new-exe: the digests are written");
	store_close(e.st);
	T_EQ_INT(store_open(&e.cfg, "tester", &e.st), 0, "new-exe: reopen the store");
	store_alert_hook(e.st, hook_cb, &h);
	T_EQ_INT(mount_open(e.st, "a", &other_exe, &why), 0, "new-exe: a known digest after a reopen");
	T_EQ_INT(h.n, 2, "new-exe: ... does not alert (remembered in the store)");

	/* rate-limit: the first refusal of a window */
	T_EQ_INT(store_agent_rate(e.st, "bot", 1, 60), 0, "rate alert: set 1/1m");
	T_EQ_INT(open_facts(e.st, "a", &f, &why), 0, "rate alert: the one open");
	T_EQ_INT(open_facts(e.st, "a", &f, &why), -EACCES, "rate alert: the second is refused");
	T_EQ_STR(h.last, "rate-limit bot p/a v1 uid=1000 pid=4242 exe=/usr/bin/agent rate-limit",
		 "rate alert: ... and alerts");
	T_EQ_INT(open_facts(e.st, "a", &f, &why), -EACCES, "rate alert: the third is refused");
	T_EQ_INT(h.n, 3, "rate alert: ... without another alert");
	T_EQ_INT(store_agent_rate(e.st, "bot", 0, 0), 0, "rate alert: rate off");

	/* deny-burst: 5 refusals of one uid within a minute */
	stranger.uid = 1005;
	for (int i = 0; i < 4; i++)
		T_EQ_INT(store_deny(e.st, "bot", "p", i % 2 ? "a" : "b", 1, &stranger, POLICY_UID_MISMATCH), 0,
			 "deny-burst: refusal %d", i + 1);
	T_EQ_INT(h.n, 3, "deny-burst: 4 refusals raise nothing");
	T_EQ_INT(store_deny(e.st, "bot", "p", "b", 1, &stranger, POLICY_UID_MISMATCH), 0,
		 "deny-burst: the 5th, a counted repeat");
	T_EQ_INT(h.n, 4, "deny-burst: ... raises the alert");
	T_EQ_STR(h.last, "deny-burst bot p/b v1 uid=1005 pid=4242 exe=/usr/bin/agent uid",
		 "deny-burst: the alert names the uid, the process of the 5th and the reason");
	int fails = 0;
	for (int i = 0; i < 10; i++)
		fails += store_deny(e.st, "bot", "p", "a", 1, &stranger, POLICY_UID_MISMATCH) != 0;
	T_OK(fails == 0 && h.n == 4, "deny-burst: one alert per minute");
	T_EQ_INT(store_deny(e.st, "bot", "p", "a", 1, &bot_caller, POLICY_NO_GRANT), 0,
		 "deny-burst: another uid's refusal");
	T_EQ_INT(h.n, 4, "deny-burst: ... is counted on its own");
	T_EQ_STR(alert_reasons(e.st, &r), "new-exe: allow,new-exe: allow,rate-limit: rate-limit,deny-burst: uid",
		 "alerts: all four are in the trail");
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
	test_requests();
	test_task_grants(false);
	test_task_grants(true);
	test_rate(false);
	test_rate(true);
	test_canary(false);
	test_canary(true);
	test_alerts();
	return t_done();
}

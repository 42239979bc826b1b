/*
 * resolve.c - every answer the mount gives, decided per calling process.
 *
 * The FUSE callbacks in ops.c hand each request here with its parsed path
 * and its caller; this file asks the store for facts (store_agent_get,
 * store_candidate_*, store_facts_load), lets the policy decide
 * (policy_match, policy_decide) and, for an allowed open, has the store
 * decrypt and durably audit the value (store_resolve). No SQL, crypto or
 * policy rule lives here: only the order of the steps and the errno each
 * outcome becomes. That order is fixed on purpose: bindings of the agent
 * are checked before anything reveals what is inside its directory, and a
 * value is only handed out after store_resolve() recorded its event.
 *
 * Errno choices (documented in scopeholdfs(1)): a caller that does not
 * match an agent gets EACCES for anything inside the agent's directory
 * (recorded as a denial); a
 * disabled or unknown agent, a provider without candidates and a secret
 * that is not a candidate are ENOENT; a candidate without a live grant is
 * mode 0000 and EACCES on open; a uid already holding max_open_per_uid
 * values gets EMFILE on open; a store or audit failure is EIO. `self` for
 * a caller matching no agent or several is ENOENT, recorded as a denial.
 */
#include "fs/fs.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* ---- logging ------------------------------------------------------------- */

void fs_log_error(const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	/* One write per line so concurrent threads do not interleave. */
	char line[1024];
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n >= 0)
		fprintf(stderr, FS_PROGRAM ": %s\n", line);
	vsyslog(LOG_ERR, fmt, ap2);
	va_end(ap2);
	va_end(ap);
}

void fs_req_begin(struct fs_req *rq, struct fs_ctx *ctx, const struct fuse_ctx *fc,
		  const char *op, const char *path)
{
	rq->ctx = ctx;
	fs_caller_from_request(&rq->caller, fc);
	rq->op = op;
	rq->path = path ? path : "";
	rq->fp = NULL;
	rq->why = NULL;
}

int fs_req_end(struct fs_req *rq, int rc)
{
	if (!rq->ctx || !rq->ctx->debug)
		return rc;
	const struct policy_caller *pc = &rq->caller.pc;
	const char *res = rc >= 0 ? "ok" : strerrorname_np(-rc);
	fprintf(stderr, FS_PROGRAM ": %s %s uid=%u gid=%u pid=%d -> %s%s%s%s\n",
		rq->op, rq->path, (unsigned)pc->uid, (unsigned)pc->gid, (int)pc->pid,
		res ? res : "error", rq->why ? " (" : "", rq->why ? rq->why : "",
		rq->why ? ")" : "");
	return rc;
}

/*
 * An unreachable database (store_unreachable) fails every request with
 * EIO, and is logged once when the outage is first seen and once when
 * it is over, by whichever thread sees the change first (a failed
 * request or the housekeeping tick, which also retries the database
 * while it is gone): never once per open. Returns whether it is down.
 */
bool fs_outage_check(struct store *st)
{
	static _Atomic int64_t logged;        /* the outage whose start was logged; 0: none */
	char why[512];
	int64_t since = store_unreachable(st, why, sizeof(why));
	int64_t was = atomic_load(&logged);

	if (since != was && atomic_compare_exchange_strong(&logged, &was, since)) {
		int64_t secs = (int64_t)time(NULL) - was;
		if (since)
			fs_log_error("database unreachable, every open fails (EIO) until it answers: %s",
				     why);
		else
			fs_log_error("database reachable again after %llds: serving",
				     (long long)(secs > 0 ? secs : 0));
	}
	return since != 0;
}

/* A store failure that is not an answer: log it, the caller sees EIO. */
static int store_failed(struct fs_req *rq, const char *what)
{
	char text[FS_PATH_TEXT];
	const char *path = rq->path;

	if (fs_outage_check(rq->ctx->st)) {
		rq->why = "database unreachable";
		return -EIO;
	}
	if (!*path && rq->fp) {
		fs_path_format(rq->fp, text, sizeof(text));
		path = text;
	}
	fs_log_error("%s %s: %s: %s", rq->op, path, what, store_error());
	rq->why = "store error";
	return -EIO;
}

/* ---- paths ----------------------------------------------------------------- */

static int take_component(const char **s, char *out, enum policy_name_kind kind)
{
	const char *start = *s, *end = strchr(start, '/');
	size_t len = end ? (size_t)(end - start) : strlen(start);
	if (len == 0 || len > POLICY_NAME_MAX)
		return -ENOENT;
	memcpy(out, start, len);
	out[len] = '\0';
	if (policy_name_check(out, kind) < 0)
		return -ENOENT;
	*s = end ? end + 1 : start + len;
	return end ? 1 : 0;     /* 1: more components follow */
}

int fs_path_parse(const char *path, struct fs_path *p)
{
	memset(p, 0, sizeof(*p));
	if (!path || path[0] != '/')
		return -ENOENT;
	const char *s = path + 1;
	if (*s == '\0') {
		p->node = FS_NODE_ROOT;
		return 0;
	}
	if (strcmp(s, FS_SELF) == 0) {
		p->node = FS_NODE_SELF;
		return 0;
	}
	int more = take_component(&s, p->agent, POLICY_NAME_AGENT);
	if (more < 0)
		return more;
	p->node = FS_NODE_AGENT;
	if (!more)
		return 0;
	more = take_component(&s, p->provider, POLICY_NAME_PROVIDER);
	if (more < 0)
		return more;
	p->node = FS_NODE_PROVIDER;
	if (!more)
		return 0;
	more = take_component(&s, p->name, POLICY_NAME_SECRET);
	if (more < 0)
		return more;
	p->node = FS_NODE_SECRET;
	return more ? -ENOENT : 0;   /* nothing lives below a secret */
}

int fs_path_child(const struct fs_path *parent, const char *name, struct fs_path *child)
{
	char path[FS_PATH_TEXT + POLICY_NAME_MAX + 2];
	if (strlen(name) > POLICY_NAME_MAX || strchr(name, '/'))
		return -ENOENT;
	switch (parent->node) {
	case FS_NODE_ROOT:
		snprintf(path, sizeof(path), "/%s", name);
		break;
	case FS_NODE_AGENT:
		snprintf(path, sizeof(path), "/%s/%s", parent->agent, name);
		break;
	case FS_NODE_PROVIDER:
		snprintf(path, sizeof(path), "/%s/%s/%s", parent->agent, parent->provider, name);
		break;
	default:
		return -ENOTDIR;
	}
	return fs_path_parse(path, child);
}

void fs_path_format(const struct fs_path *p, char *buf, size_t size)
{
	switch (p->node) {
	case FS_NODE_ROOT:
		snprintf(buf, size, "/");
		break;
	case FS_NODE_SELF:
		snprintf(buf, size, "/" FS_SELF);
		break;
	case FS_NODE_AGENT:
		snprintf(buf, size, "/%s", p->agent);
		break;
	case FS_NODE_PROVIDER:
		snprintf(buf, size, "/%s/%s", p->agent, p->provider);
		break;
	case FS_NODE_SECRET:
		snprintf(buf, size, "/%s/%s/%s", p->agent, p->provider, p->name);
		break;
	}
}

/* ---- agents ------------------------------------------------------------------ */

struct fs_agent {
	char name[POLICY_NAME_MAX + 1];
	struct policy_agent pa;      /* pa.exe, pa.cgroup point into exe, cgroup */
	int64_t created;
	char exe[PATH_MAX];
	char cgroup[POLICY_CGROUP_MAX];
};

static void agent_copy(struct fs_agent *a, const struct store_agent_row *row)
{
	/* everything but the (large) string buffers, which are only read when set */
	memset(a, 0, offsetof(struct fs_agent, exe));
	a->exe[0] = '\0';
	a->cgroup[0] = '\0';
	snprintf(a->name, sizeof(a->name), "%s", row->name);
	a->pa.exists = true;
	a->pa.enabled = row->enabled;
	a->pa.uid = row->uid;
	a->pa.has_gid = row->has_gid;
	a->pa.gid = row->gid;
	if (row->exe) {
		snprintf(a->exe, sizeof(a->exe), "%s", row->exe);
		a->pa.exe = a->exe;
	}
	a->pa.has_exe_sha256 = row->has_exe_sha256;
	memcpy(a->pa.exe_sha256, row->exe_sha256, sizeof(a->pa.exe_sha256));
	if (row->cgroup) {
		snprintf(a->cgroup, sizeof(a->cgroup), "%s", row->cgroup);
		a->pa.cgroup = a->cgroup;
	}
	a->created = row->created;
}

static int agent_one(void *arg, const struct store_agent_row *row)
{
	agent_copy(arg, row);
	return 0;
}

/* An enabled agent, or -ENOENT. */
static int agent_load(struct fs_req *rq, const char *name, struct fs_agent *a)
{
	int rc = store_agent_get(rq->ctx->st, name, agent_one, a);
	if (rc == -ENOENT) {
		rq->why = "no-agent";
		return -ENOENT;
	}
	if (rc < 0)
		return store_failed(rq, "cannot read agent");
	if (!a->pa.enabled) {
		rq->why = "disabled";
		return -ENOENT;
	}
	return 0;
}

struct agent_list {
	size_t n, cap;
	struct fs_agent *v;
};

static int agent_push(void *arg, const struct store_agent_row *row)
{
	struct agent_list *l = arg;
	if (!row->enabled)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct fs_agent *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	agent_copy(&l->v[l->n], row);
	l->n++;
	return 0;
}

static int agents_enabled(struct fs_req *rq, struct agent_list *l)
{
	memset(l, 0, sizeof(*l));
	int rc = store_agent_list_enabled(rq->ctx->st, agent_push, l);
	if (rc < 0) {
		free(l->v);
		l->v = NULL;
		return rc == -ENOMEM ? rc : store_failed(rq, "cannot list agents");
	}
	return 0;
}

static bool agent_exe_bound(const struct fs_agent *a)
{
	return a->pa.exe || a->pa.has_exe_sha256;
}

/*
 * How many enabled agents the caller matches; *one names the last match.
 * The process is established (and verified, and hashed) only when an
 * agent bound to an executable has the caller's uid and gid: a stranger
 * listing the top or reading self costs no /proc read and no hash.
 */
static size_t agents_matching(struct fs_req *rq, struct agent_list *l, bool *match,
			      const struct fs_agent **one)
{
	size_t n = 0;
	bool exe = false, hash = false, cgroup = false;
	fs_caller_credentials(&rq->caller);
	for (size_t i = 0; i < l->n; i++) {
		if (policy_match_ids(&l->v[i].pa, &rq->caller.pc) != POLICY_ALLOW)
			continue;
		if (agent_exe_bound(&l->v[i])) {
			exe = true;
			hash |= l->v[i].pa.has_exe_sha256;
		}
		cgroup |= l->v[i].pa.cgroup != NULL;
	}
	if (exe)
		fs_caller_establish_exe(&rq->caller, hash, cgroup);
	else if (cgroup)
		fs_caller_establish(&rq->caller, false, true);
	*one = NULL;
	for (size_t i = 0; i < l->n; i++) {
		match[i] = policy_match(&l->v[i].pa, &rq->caller.pc) == POLICY_ALLOW;
		if (match[i]) {
			n++;
			*one = &l->v[i];
		}
	}
	return n;
}

/* ---- denials ---------------------------------------------------------------- */

/*
 * The one place a refusal is recorded: the store coalesces repeats. The
 * process is established first, even for a repeat: the store counts a
 * repeat under the very process that made it (pid and exe are part of
 * the key), so a second program's attempts are never written under the
 * name of the first. The cgroup is read (and recorded) when the agent
 * refused is bound to one, as for its opens.
 */
static int deny(struct fs_req *rq, const struct fs_path *p, int64_t version,
		enum policy_reason reason, int err, bool cgroup)
{
	/* -d names the check that failed; the trail keeps the stable reason */
	rq->why = reason == POLICY_EXE_UNVERIFIED && rq->caller.unverified ?
		  rq->caller.unverified : policy_reason_name(reason);
	fs_caller_establish(&rq->caller, false, cgroup);
	int rc = store_deny(rq->ctx->st, p->agent, p->provider, p->name, version,
			    &rq->caller.pc, reason);
	if (rc < 0 && !fs_outage_check(rq->ctx->st))
		fs_log_error("audit write failed: %s", store_error());
	return err;
}

/* The errno an open refused for `reason` returns. */
static int reason_errno(enum policy_reason reason)
{
	switch (reason) {
	case POLICY_NO_AGENT:
	case POLICY_AGENT_DISABLED:
	case POLICY_NO_SECRET:
	case POLICY_NOT_CANDIDATE:
		return -ENOENT;
	default:
		return -EACCES;
	}
}

/*
 * May the caller look inside the agent's directory? Loads the agent
 * (enabled, else ENOENT) and checks the caller against its bindings.
 * A refused stranger is recorded as a denial; the store coalesces
 * repeats, so a probing loop cannot flood the trail.
 */
static int agent_enter(struct fs_req *rq, const struct fs_path *p, struct fs_agent *a)
{
	int rc = agent_load(rq, p->agent, a);
	if (rc < 0)
		return rc;
	/*
	 * Looking inside a directory needs only what the kernel vouches for
	 * (uid, gid) unless the agent is bound to an executable or a cgroup;
	 * the process itself is established for opens, which every read goes
	 * through. Uid and gid first: a caller that cannot match is refused
	 * on them, before any /proc read or hash.
	 */
	fs_caller_credentials(&rq->caller);
	enum policy_reason r = policy_match_ids(&a->pa, &rq->caller.pc);
	if (r == POLICY_ALLOW) {
		if (agent_exe_bound(a))
			fs_caller_establish_exe(&rq->caller, a->pa.has_exe_sha256, a->pa.cgroup != NULL);
		else if (a->pa.cgroup)
			fs_caller_establish(&rq->caller, false, true);
		r = policy_match(&a->pa, &rq->caller.pc);
	}
	if (r == POLICY_ALLOW)
		return 0;
	/* Named down to the secret only when the stranger got that far. */
	struct fs_path named = *p;
	if (p->node != FS_NODE_SECRET)
		named.provider[0] = '\0';
	return deny(rq, &named, 0, r, -EACCES, a->pa.cgroup != NULL);
}

/* ---- attributes ---------------------------------------------------------- */

static void stat_fill(struct stat *sb, mode_t mode, uid_t uid, gid_t gid, int64_t t,
		      nlink_t nlink, off_t size)
{
	memset(sb, 0, sizeof(*sb));
	sb->st_mode = mode;
	sb->st_uid = uid;
	sb->st_gid = gid;
	sb->st_nlink = nlink;
	sb->st_size = size;
	sb->st_blksize = 4096;
	sb->st_blocks = (size + 511) / 512;
	sb->st_atim.tv_sec = sb->st_mtim.tv_sec = sb->st_ctim.tv_sec = (time_t)t;
}

static gid_t agent_gid(const struct fs_agent *a)
{
	return a->pa.has_gid ? a->pa.gid : (gid_t)a->pa.uid;
}

struct cand_scan {
	size_t count;
	bool granted;
	size_t length;
	int64_t created;
	int64_t version;
	fs_fill_fn fill;             /* readdir: NULL when only counting */
	void *fill_arg;
};

static int cand_row(void *arg, const struct store_candidate_row *row)
{
	struct cand_scan *cs = arg;
	cs->count++;
	cs->granted = row->granted;
	cs->length = row->length;
	cs->created = row->created;
	cs->version = row->version;
	if (!cs->fill)
		return 0;
	return cs->fill(cs->fill_arg, row->name, S_IFREG) ? 1 : 0;
}

struct prov_fill {
	fs_fill_fn fill;
	void *fill_arg;
};

static int prov_row(void *arg, const struct store_provider_row *row)
{
	struct prov_fill *pf = arg;
	return pf->fill(pf->fill_arg, row->name, S_IFDIR) ? 1 : 0;
}

/* Scan candidates of an agent (all providers when provider is NULL). */
static int cand_scan(struct fs_req *rq, const char *agent, const char *provider,
		     struct cand_scan *cs)
{
	int rc = store_candidate_list(rq->ctx->st, agent, provider, cand_row, cs);
	if (rc < 0)
		return store_failed(rq, "cannot list secrets");
	return 0;   /* 1: the filler is full, which ops.c's listing never reports */
}

static int root_getattr(struct fs_req *rq, struct stat *sb)
{
	struct agent_list l;
	int rc = agents_enabled(rq, &l);
	if (rc < 0)
		return rc;
	/* Every enabled agent's directory exists (for anyone to stat). */
	stat_fill(sb, S_IFDIR | 0555, 0, 0, rq->ctx->started, 2 + l.n, 0);
	free(l.v);
	return 0;
}

int fs_resolve_self(struct fs_req *rq, char *buf, size_t size)
{
	struct agent_list l;
	int rc = agents_enabled(rq, &l);
	if (rc < 0)
		return rc;
	bool *match = calloc(l.n ? l.n : 1, sizeof(*match));
	if (!match) {
		free(l.v);
		return -ENOMEM;
	}
	const struct fs_agent *one;
	size_t n = agents_matching(rq, &l, match, &one);
	if (n == 1) {
		snprintf(buf, size, "%s", one->name);
		rq->why = "allow";
		rc = 0;
	} else {
		/*
		 * None or several: no single answer, so no link. Not a silent
		 * miss: a caller walking MOUNT/self that no agent (or more than
		 * one) matches is recorded, coalesced like any refusal.
		 */
		struct fs_path self = { .node = FS_NODE_SELF };
		snprintf(self.agent, sizeof(self.agent), "%s", FS_SELF);
		rc = deny(rq, &self, 0, n ? POLICY_AMBIGUOUS_AGENT : POLICY_NO_AGENT, -ENOENT, false);
	}
	free(match);
	free(l.v);
	return rc;
}

int fs_resolve_getattr(struct fs_req *rq, const struct fs_path *p, struct stat *sb)
{
	struct fs_agent a;
	struct cand_scan cs = { 0 };
	char target[POLICY_NAME_MAX + 1];
	int rc;

	switch (p->node) {
	case FS_NODE_ROOT:
		return root_getattr(rq, sb);
	case FS_NODE_SELF:
		rc = fs_resolve_self(rq, target, sizeof(target));
		if (rc < 0)
			return rc;
		stat_fill(sb, S_IFLNK | 0777, 0, 0, rq->ctx->started, 1, (off_t)strlen(target));
		return 0;
	case FS_NODE_AGENT:
		/* Exists for anyone, so `ls -ld` and bind mounts work; 0500 guards it. */
		rc = agent_load(rq, p->agent, &a);
		if (rc < 0)
			return rc;
		stat_fill(sb, S_IFDIR | 0500, a.pa.uid, agent_gid(&a), a.created, 2, 0);
		return 0;
	case FS_NODE_PROVIDER:
		rc = agent_enter(rq, p, &a);
		if (rc < 0)
			return rc;
		/* one indexed probe, however many secrets the provider holds */
		rc = store_candidate_provider(rq->ctx->st, p->agent, p->provider);
		if (rc == -ENOENT) {
			rq->why = "no candidates";
			return -ENOENT;
		}
		if (rc < 0)
			return store_failed(rq, "cannot read secrets");
		stat_fill(sb, S_IFDIR | 0500, a.pa.uid, agent_gid(&a), a.created, 2, 0);
		return 0;
	case FS_NODE_SECRET:
		rc = agent_enter(rq, p, &a);
		if (rc < 0)
			return rc;
		rc = store_candidate_get(rq->ctx->st, p->agent, p->provider, p->name, cand_row, &cs);
		if (rc == -ENOENT) {
			rq->why = "not-candidate";
			return -ENOENT;
		}
		if (rc < 0)
			return store_failed(rq, "cannot read secret");
		stat_fill(sb, S_IFREG | (cs.granted ? 0400 : 0000), a.pa.uid, agent_gid(&a),
			  cs.created, 1, (off_t)cs.length);
		/* the version in the nanoseconds: two versions never share an mtime */
		sb->st_mtim.tv_nsec = sb->st_ctim.tv_nsec = (long)(cs.version % 1000000000);
		rq->why = cs.granted ? "granted" : "not granted";
		return 0;
	}
	return -ENOENT;
}

int fs_resolve_readdir(struct fs_req *rq, const struct fs_path *p, fs_fill_fn fn, void *arg)
{
	struct fs_agent a;
	int rc;

	switch (p->node) {
	case FS_NODE_ROOT: {
		struct agent_list l;
		rc = agents_enabled(rq, &l);
		if (rc < 0)
			return rc;
		bool *match = calloc(l.n ? l.n : 1, sizeof(*match));
		if (!match) {
			free(l.v);
			return -ENOMEM;
		}
		const struct fs_agent *one;
		size_t n = agents_matching(rq, &l, match, &one);
		fn(arg, ".", S_IFDIR);
		fn(arg, "..", S_IFDIR);
		if (n == 1)
			fn(arg, FS_SELF, S_IFLNK);
		/* Only the agents this caller matches; others exist but are not shown. */
		for (size_t i = 0; i < l.n; i++)
			if (match[i])
				fn(arg, l.v[i].name, S_IFDIR);
		free(match);
		free(l.v);
		return 0;
	}
	case FS_NODE_AGENT: {
		rc = agent_enter(rq, p, &a);
		if (rc < 0)
			return rc;
		struct prov_fill pf = { .fill = fn, .fill_arg = arg };
		fn(arg, ".", S_IFDIR);
		fn(arg, "..", S_IFDIR);
		rc = store_candidate_providers(rq->ctx->st, p->agent, prov_row, &pf);
		if (rc < 0)
			return store_failed(rq, "cannot list providers");
		return 0;
	}
	case FS_NODE_PROVIDER: {
		rc = agent_enter(rq, p, &a);
		if (rc < 0)
			return rc;
		struct cand_scan cs = { .fill = fn, .fill_arg = arg };
		fn(arg, ".", S_IFDIR);
		fn(arg, "..", S_IFDIR);
		rc = cand_scan(rq, p->agent, p->provider, &cs);
		if (rc < 0)
			return rc;
		if (p->node == FS_NODE_PROVIDER && cs.count == 0) {
			rq->why = "no candidates";
			return -ENOENT;
		}
		return 0;
	}
	case FS_NODE_SELF:
	case FS_NODE_SECRET:
		return -ENOTDIR;
	}
	return -ENOENT;
}

int fs_resolve_access(struct fs_req *rq, const struct fs_path *p, int mask)
{
	struct stat sb;
	int rc = fs_resolve_getattr(rq, p, &sb);
	if (rc < 0)
		return rc;
	if (mask & W_OK) {
		rq->why = "read-only";
		return -EROFS;
	}
	switch (p->node) {
	case FS_NODE_ROOT:
	case FS_NODE_SELF:
		return 0;
	case FS_NODE_AGENT:
		if (mask & (R_OK | X_OK)) {
			struct fs_agent a;
			return agent_enter(rq, p, &a);
		}
		return 0;
	case FS_NODE_PROVIDER:
		return 0;    /* getattr already checked the caller */
	case FS_NODE_SECRET:
		/* Consistent with the mode: 0400 when granted, 0000 otherwise. */
		if ((mask & X_OK) || ((mask & R_OK) && !(sb.st_mode & S_IRUSR))) {
			rq->why = (mask & X_OK) ? "not executable" : "not granted";
			return -EACCES;
		}
		return 0;
	}
	return -ENOENT;
}

/* ---- values ------------------------------------------------------------- */

static struct fs_value values = { .prev = &values, .next = &values };
static pthread_mutex_t values_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Open values per uid (under values_lock). Every value costs locked
 * memory in the daemon, so one uid holding thousands open must not starve
 * every other agent: beyond [mount] max_open_per_uid its opens are
 * refused. Few uids hold values at once (only root makes new uids), so a
 * short array searched in order is enough.
 */
struct uid_open {
	uid_t uid;
	size_t n;
};
static struct uid_open *uid_opens;
static size_t uid_opens_n, uid_opens_cap;

/* Count one more value for uid: 0, -EMFILE at the cap, -ENOMEM. */
static int uid_open_take(uid_t uid, size_t max)
{
	int rc = 0;
	size_t i;

	pthread_mutex_lock(&values_lock);
	for (i = 0; i < uid_opens_n && uid_opens[i].uid != uid; i++)
		;
	if (i == uid_opens_n) {
		if (uid_opens_n == uid_opens_cap) {
			size_t cap = uid_opens_cap ? 2 * uid_opens_cap : 16;
			struct uid_open *v = realloc(uid_opens, cap * sizeof(*v));
			if (!v) {
				rc = -ENOMEM;
				goto out;
			}
			uid_opens = v;
			uid_opens_cap = cap;
		}
		uid_opens[uid_opens_n++] = (struct uid_open){ .uid = uid, .n = 0 };
	}
	if (uid_opens[i].n >= max)
		rc = -EMFILE;
	else
		uid_opens[i].n++;
out:
	pthread_mutex_unlock(&values_lock);
	return rc;
}

/* One value of uid is gone (values_lock held). */
static void uid_open_put_locked(uid_t uid)
{
	for (size_t i = 0; i < uid_opens_n; i++) {
		if (uid_opens[i].uid != uid)
			continue;
		if (--uid_opens[i].n == 0)
			uid_opens[i] = uid_opens[--uid_opens_n];
		return;
	}
}

static void uid_open_put(uid_t uid)
{
	pthread_mutex_lock(&values_lock);
	uid_open_put_locked(uid);
	pthread_mutex_unlock(&values_lock);
}

static void value_link(struct fs_value *v)
{
	pthread_mutex_lock(&values_lock);
	v->next = values.next;
	v->prev = &values;
	values.next->prev = v;
	values.next = v;
	pthread_mutex_unlock(&values_lock);
}

int fs_value_sync(struct store *st, struct fs_value *v)
{
	if (atomic_load(&v->synced))
		return 0;
	if (store_resolve_sync(st, v->ticket) < 0) {
		fs_log_error("audit write failed: %s", store_error());
		return -EIO;
	}
	atomic_store(&v->synced, true);
	return 0;
}

void fs_value_release(struct fs_value *v)
{
	if (!v)
		return;
	pthread_mutex_lock(&values_lock);
	v->prev->next = v->next;
	v->next->prev = v->prev;
	uid_open_put_locked(v->uid);
	pthread_mutex_unlock(&values_lock);
	store_value_free(v->data, v->len);
	free(v);
}

void fs_value_release_all(void)
{
	for (;;) {
		pthread_mutex_lock(&values_lock);
		struct fs_value *v = values.next == &values ? NULL : values.next;
		pthread_mutex_unlock(&values_lock);
		if (!v)
			return;
		fs_value_release(v);
	}
}

int fs_resolve_open(struct fs_req *rq, const struct fs_path *p, struct fs_value **out)
{
	if (p->node != FS_NODE_SECRET)
		return p->node == FS_NODE_SELF ? -ENOENT : -EISDIR;

	/* Large (it holds an exe path): keep it off small thread stacks. */
	struct store_facts *f = calloc(1, sizeof(*f));
	struct fs_value *v = calloc(1, sizeof(*v));
	if (!f || !v) {
		free(f);
		free(v);
		return -ENOMEM;
	}
	/*
	 * The cap comes first: a refused open decrypts nothing and records
	 * no resolve, and a stranger's uid holds no values to hit it.
	 */
	int rc = uid_open_take(rq->caller.pc.uid, rq->ctx->cfg.max_open_per_uid);
	if (rc < 0) {
		free(f);
		free(v);
		if (rc == -EMFILE)
			return deny(rq, p, 0, POLICY_TOO_MANY_OPEN, -EMFILE, false);
		return rc;
	}
	v->uid = rq->caller.pc.uid;
	/*
	 * One trip to the store decides, decrypts and records. The process
	 * is verified, and its executable hashed, only for agents bound to
	 * an executable, and its cgroup read only for agents bound to a
	 * cgroup: when the store answers that the caller is unverified, its
	 * digest is missing or its cgroup does not match - which the policy
	 * says only to a caller of the agent's uid and gid - establish that
	 * and ask again. A refusal there records nothing, so asking twice
	 * leaves one trace, and a binding added while mounted is honoured
	 * at the next open (the facts follow every commit).
	 */
	enum policy_reason why = POLICY_ALLOW;
	fs_caller_establish(&rq->caller, false, false);
	for (;;) {
		snprintf(f->agent_name, sizeof(f->agent_name), "%s", p->agent);
		snprintf(f->provider, sizeof(f->provider), "%s", p->provider);
		snprintf(f->name, sizeof(f->name), "%s", p->name);
		rc = store_resolve_deferred(rq->ctx->st, f, &rq->caller.pc, &v->data, &v->len, &why,
					    &v->ticket);
		bool cgroup = f->p.agent.cgroup != NULL;
		if (rc == -EACCES && why == POLICY_CGROUP_MISMATCH && !rq->caller.cgrouped) {
			/* an agent bound to both: verify the process in the same pass */
			if (f->p.agent.exe || f->p.agent.has_exe_sha256)
				fs_caller_establish_exe(&rq->caller, f->p.agent.has_exe_sha256, true);
			else
				fs_caller_establish(&rq->caller, false, true);
			continue;
		}
		if (rc == -EACCES &&
		    (why == POLICY_EXE_UNVERIFIED || why == POLICY_EXE_HASH_MISMATCH) &&
		    (!rq->caller.verified || (f->p.agent.has_exe_sha256 && !rq->caller.hashed))) {
			fs_caller_establish_exe(&rq->caller, f->p.agent.has_exe_sha256, cgroup);
			continue;
		}
		break;
	}
	/*
	 * With the page cache, bytes can reach the caller without a read
	 * request: the event must be durable before the open succeeds.
	 * Otherwise fs_value_sync() runs at the first read.
	 */
	if (rc == 0 && rq->ctx->cfg.cache == STORE_CACHE_KERNEL && fs_value_sync(rq->ctx->st, v) < 0) {
		store_value_free(v->data, v->len);
		rc = -EIO;
	}
	if (rc == 0) {
		v->version = f->p.secret.version;
		value_link(v);
		*out = v;
		rq->why = "allow";
		free(f);
		return 0;
	}
	uid_open_put(v->uid);
	free(v);
	if (rc == -EACCES) {
		rc = deny(rq, p, f->p.secret.version, why, reason_errno(why), f->p.agent.cgroup != NULL);
	} else if (rc == -EBADMSG) {
		/* The store recorded the integrity denial itself. */
		fs_log_error("integrity check failed for %s/%s of agent %s: %s",
			     p->provider, p->name, p->agent, store_error());
		rq->why = "integrity";
		rc = -EIO;
	} else if (fs_outage_check(rq->ctx->st)) {
		rq->why = "database unreachable";
		rc = -EIO;
	} else {
		/* Fail closed: without its resolve event no byte is served. */
		fs_log_error("audit write failed: %s", store_error());
		rq->why = "audit failed";
		rc = -EIO;
	}
	free(f);
	return rc;
}

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
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tools/cmd.h"

#define AUDIT_HEAD_BYTES 32

/* ---- audit (query) ------------------------------------------------------------------- */

struct audit_list {
	struct cmd_ctx *c;
	bool all_workspaces;
};

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
		cmd_json_print(json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:s,s:s,s:s,s:s?,s:I}",
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
					 "count", (json_int_t)ev->count));
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
	if (l->all_workspaces)
		cmd_table_add(c->table, cmd_i64(ev->seq, seq, sizeof(seq)), t, ev->type,
			      ev->workspace, ev->actor, ev->agent, ev->secret,
			      ev->version ? cmd_i64(ev->version, ver, sizeof(ver)) : NULL,
			      caller, reason);
	else
		cmd_table_add(c->table, cmd_i64(ev->seq, seq, sizeof(seq)), t, ev->type,
			      ev->actor, ev->agent, ev->secret,
			      ev->version ? cmd_i64(ev->version, ver, sizeof(ver)) : NULL,
			      caller, reason);
	return 0;
}

/* Event types are short lower-case words with dashes (key-rotate). */
static bool audit_type_ok(const char *s)
{
	if (!*s || strlen(s) > 32)
		return false;
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || *s == '-'))
			return false;
	}
	return true;
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

static int audit_query(struct cmd_ctx *c, int argc, char **argv)
{
	static const char *const pos[] = { NULL };
	const char *agent = NULL, *secret = NULL, *event = NULL, *since_s = NULL, *limit_s = NULL;
	bool all = false;
	const struct cmd_opt opts[] = {
		{ "--agent", &agent, NULL },
		{ "--secret", &secret, NULL },
		{ "--event", &event, NULL },
		{ "--since", &since_s, NULL },
		{ "--limit", &limit_s, NULL },
		{ "--all-workspaces", NULL, &all },
		{ NULL, NULL, NULL },
	};
	char provider[POLICY_NAME_MAX + 1], name[POLICY_NAME_MAX + 1];
	struct store_audit_filter filter;
	struct audit_list l;
	const char *p[1];
	uint64_t limit = 0;
	int64_t since = 0;
	int rc;

	CMD_PARSE(c, "audit", argc, argv, opts, pos, 0, p);
	if (limit_s && (rc = cmd_number("--limit", limit_s, INT64_MAX, true, &limit)))
		return rc;
	if (agent && cmd_check_name(agent, POLICY_NAME_AGENT))
		return CMD_EXIT_FAIL;
	if (secret && cmd_check_ref(secret, false, provider, name))
		return CMD_EXIT_FAIL;
	if (event && !audit_type_ok(event))
		return cmd_fail("invalid event type '%s': use a name like create, rotate, reveal, "
				"resolve, deny, grant or revoke", event);
	if (since_s && cmd_check_duration(since_s, &since))
		return CMD_EXIT_FAIL;
	memset(&filter, 0, sizeof(filter));
	filter.agent = agent;
	filter.secret = secret;
	filter.type = event;
	filter.since = since_s ? (int64_t)time(NULL) - since : 0;
	filter.limit = (int64_t)limit;
	filter.all_workspaces = all;
	if ((rc = audit_open(c)))
		return rc;
	l.c = c;
	l.all_workspaces = all;
	if (!c->json) {
		if (all)
			c->table = cmd_table_new(10, "SEQ", "TIME", "TYPE", "WORKSPACE", "ACTOR", "AGENT",
						 "SECRET", "VER", "CALLER", "REASON");
		else
			c->table = cmd_table_new(9, "SEQ", "TIME", "TYPE", "ACTOR", "AGENT", "SECRET",
						 "VER", "CALLER", "REASON");
	}
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

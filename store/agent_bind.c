/*
 * agent_bind.c - changing the process binding of an agent that exists:
 * its kind (human or not), uid, gid, executable path and digest.
 *
 * Removing the agent and adding it again would do the same in a cruder
 * way: its assignments and grants would go with it (and their use
 * counts), and the trail would say agent-rm and agent-add where one
 * binding changed. `shadm apply` changes an agent's uid with this, in
 * the batch that applies the rest of the file, so it runs as a change
 * like the others: one savepoint, one `agent-bind` event naming the new
 * binding.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/store_int.h"

/* The new binding as one line for the event's reason: "uid 1000 gid - exe /x sha256 ab12..". */
static void bind_reason(const struct store_agent_row *a, char *buf, size_t len)
{
	char gid[24] = "-", sha[16] = "-";
	static const char digits[] = "0123456789abcdef";

	if (a->has_gid)
		snprintf(gid, sizeof gid, "%lld", (long long)a->gid);
	if (a->has_exe_sha256) {
		/* the first six bytes tell binaries apart; the row holds all of it */
		for (int i = 0; i < 6; i++) {
			sha[2 * i] = digits[a->exe_sha256[i] >> 4];
			sha[2 * i + 1] = digits[a->exe_sha256[i] & 15];
		}
		sha[12] = '\0';
	}
	snprintf(buf, len, "%suid %lld gid %s exe %s sha256 %s", a->human ? "human " : "",
		 (long long)a->uid, gid, a->exe && a->exe[0] ? a->exe : "-", sha);
}

int store_agent_bind(struct store *st, const struct store_agent_row *a)
{
	char reason[PATH_MAX + 96];
	sqlite3_stmt *s;
	int64_t id;
	int rc;

	if (store_name_ok(a->name, POLICY_NAME_AGENT))
		return -EINVAL;
	if (a->exe && a->exe[0] != '/')
		return store_fail(-EINVAL, "executable '%s' is not an absolute path", a->exe);
	if ((rc = store_tx_start(st)))
		return rc;
	if ((rc = store_agent_id(st, a->name, &id)))
		return store_tx_end(st, rc);
	s = store_stmt(st, "UPDATE agents SET human = ?2, uid = ?3, gid = ?4, exe = ?5, exe_sha256 = ?6"
			   " WHERE id = ?1");
	if (!s)
		return store_tx_end(st, -EIO);
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, a->human ? 1 : 0);
	sqlite3_bind_int64(s, 3, (int64_t)a->uid);
	if (a->has_gid)
		sqlite3_bind_int64(s, 4, (int64_t)a->gid);
	if (a->exe && a->exe[0])
		sqlite3_bind_text(s, 5, a->exe, -1, SQLITE_STATIC);
	if (a->has_exe_sha256)
		sqlite3_bind_blob(s, 6, a->exe_sha256, POLICY_SHA256_BYTES, SQLITE_STATIC);
	rc = store_step_done(st, s, "cannot write the store");
	bind_reason(a, reason, sizeof reason);
	if (!rc)
		rc = store_note(st, "agent-bind", a->name, NULL, reason);
	return store_tx_end(st, rc);
}

/*
 * task.c - task-scoped grants: a grant that lives only as long as one
 * process (`shadm grant ... --while-pid PID`).
 *
 * A pid alone is a weak name: once the process ends, the kernel hands
 * the number to the next process that asks. So the grant pins the pid
 * together with the process's start time (field 22 of /proc/PID/stat,
 * clock ticks since boot), read by shadm when granting; a later process
 * with the same pid has another start time and does not revive the
 * grant. Both live in the grants table, so a restarted daemon decides
 * the same way. The check is one read of /proc/PID/stat, made only for
 * grants that carry a pid. Pids are those of shadm's and the daemon's
 * pid namespace (scopeholdfs refuses to run with a foreign /proc).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_int.h"

/*
 * Parse /proc/PID/stat: "PID (COMM) STATE f4 ... f22 ...". COMM may hold
 * spaces and parentheses, so fields are counted after the last ')'.
 * -ESRCH when the process is gone or a zombie (it has ended).
 */
int store_task_start(pid_t pid, uint64_t *start)
{
	char path[48], buf[1024], *p, *end;
	ssize_t n;
	int fd, field;

	if (pid <= 0)
		return -ESRCH;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -EIO;
	p += 2;                       /* field 3: state */
	if (*p == 'Z' || *p == 'X' || *p == 'x')
		return -ESRCH;
	for (field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
		p++;
	}
	errno = 0;
	*start = strtoull(p, &end, 10);
	if (errno || end == p)
		return -EIO;
	return 0;
}

bool store_task_alive(pid_t pid, uint64_t start)
{
	uint64_t now_start;

	return store_task_start(pid, &now_start) == 0 && now_start == start;
}

int store_task_sweep(struct store *st, int64_t *swept)
{
	char ref[2 * POLICY_NAME_MAX + 2];
	struct sql_stmt *s;
	int64_t ended[64], epid[64], estart[64];
	char agent[64][POLICY_NAME_MAX + 1], secret[64][sizeof ref];
	int n = 0, rc;

	if (swept)
		*swept = 0;
	/* find them with a read; most runs end here */
	store_lock(st);
	s = store_stmt(st, "SELECT g.id, g.pid, g.pid_start, a.name, p.name, s.name FROM grants g"
			   " JOIN agents a ON a.id = g.agent_id JOIN secrets s ON s.id = g.secret_id"
			   " JOIN providers p ON p.id = s.provider_id WHERE g.pid != 0 AND a.ws_id = ?1");
	if (!s) {
		store_unlock(st);
		return -EIO;
	}
	sql_bind_int64(s, 1, st->ws_id);
	while (n < 64 && (rc = sql_step(s)) == SQL_ROW) {
		if (store_task_alive((pid_t)sql_column_int64(s, 1), (uint64_t)sql_column_int64(s, 2)))
			continue;
		ended[n] = sql_column_int64(s, 0);
		epid[n] = sql_column_int64(s, 1);
		estart[n] = sql_column_int64(s, 2);
		snprintf(agent[n], sizeof agent[n], "%s", sql_column_text(s, 3));
		snprintf(secret[n], sizeof secret[n], "%s/%s", sql_column_text(s, 4),
			 sql_column_text(s, 5));
		n++;
	}
	sql_reset(s);
	store_unlock(st);
	if (n == 0)
		return 0;
	if ((rc = store_tx_start(st)))
		return rc;
	for (int i = 0; i < n && !rc; i++) {
		/* the pid check again under the write lock: a re-grant may have replaced it */
		s = store_stmt(st, "DELETE FROM grants WHERE id = ?1 AND pid = ?2 AND pid_start = ?3");
		if (!s) {
			rc = -EIO;
			break;
		}
		sql_bind_int64(s, 1, ended[i]);
		sql_bind_int64(s, 2, epid[i]);
		sql_bind_int64(s, 3, estart[i]);
		if ((rc = store_step_done(st, s, "cannot write the store")))
			break;
		if (sql_changes(st->db) == 0)
			continue;
		rc = store_note(st, "sweep", agent[i], secret[i], policy_reason_name(POLICY_TASK_ENDED));
		if (!rc && swept)
			(*swept)++;
	}
	return store_tx_end(st, rc);
}

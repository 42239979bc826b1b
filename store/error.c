/*
 * error.c - the store's one error path: every failure sets a thread-local
 * message and returns a negative errno, so callers write
 * `return store_fail(-ENOENT, "no agent '%s'", name);` and a program prints
 * store_error() once at its boundary. The engine's result codes are
 * converted to errno once, in its driver (sql_sqlite.c); store_fail_db
 * adds the engine's words to a failed sql_* call.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/store_int.h"

static _Thread_local char store_errbuf[512];

const char *store_error(void)
{
	return store_errbuf;
}

void store_clear_error(void)
{
	store_errbuf[0] = '\0';
}

int store_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(store_errbuf, sizeof store_errbuf, fmt, ap);
	va_end(ap);
	return err;
}

/*
 * rc is the -errno of a failed sql_* call; a statement that stopped
 * short (SQL_DONE where a row was due) is -EIO.
 */
int store_fail_db(struct store *st, int rc, const char *what)
{
	int err = rc < 0 ? rc : -EIO;
	const char *msg = st && st->db ? sql_error(st->db) : strerror(-err);

	return store_fail(err, "%s: %s", what, msg);
}

/*
 * A transaction that only records an event (reveal, deny) failed to
 * commit: say it was the audit trail, keeping the engine's reason.
 */
int store_fail_audit(int err)
{
	static const char prefix[] = "cannot write the store: ";
	char reason[sizeof store_errbuf];

	if (strncmp(store_errbuf, prefix, sizeof prefix - 1) != 0)
		return err;
	snprintf(reason, sizeof reason, "%s", store_errbuf + sizeof prefix - 1);
	return store_fail(err, "cannot write the audit trail: %s", reason);
}

int64_t store_now(void)
{
	return (int64_t)time(NULL);
}

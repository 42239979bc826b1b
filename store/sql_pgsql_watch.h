/*
 * sql_pgsql_watch.h - the PostgreSQL driver's change listener and lease
 * (sql_pgsql_watch.c), private to the driver: only sql_pgsql.c includes
 * this. Connections are libpq's `struct pg_conn` (PGconn), named without
 * libpq's header so that the seam stays in the driver's two files.
 */
#ifndef SCOPEHOLD_STORE_SQL_PGSQL_WATCH_H
#define SCOPEHOLD_STORE_SQL_PGSQL_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/sql.h"

struct pg_conn;
struct pgsql_watch;            /* one listener thread and its lease */

/*
 * The lease: a mount serves from its cache only while its listener has,
 * within the last PGSQL_LEASE_MS, proven that it has seen every change
 * committed before; shadm waits for each host that holds a live lease
 * in the database to acknowledge its change, at most this long (plus
 * PGSQL_LEASE_SLACK_MS) - the bound of issue 9's outage.
 */
#define PGSQL_LEASE_MS 2000
/* the mount gives its lease up this much earlier than the database does (clock rates, scheduling) */
#define PGSQL_LEASE_MARGIN_MS 200
#define PGSQL_LEASE_SLACK_MS 1000

/*
 * Start listening for the store's changes with a connection of its own
 * to `conninfo`, in a thread of its own; 0 or -errno (one line in err).
 * The lease starts expired: the first stamps are refused until the
 * listener has registered.
 */
int pgsql_watch_start(const char *conninfo, struct pgsql_watch **out, char *err, size_t cap);
/* Stop the thread, withdraw the host from the database, free; NULL ok. */
void pgsql_watch_stop(struct pgsql_watch *w);
/* sql_watch_stamp: false while the lease is expired (do not use the cache); any thread. */
bool pgsql_watch_stamp(struct pgsql_watch *w, uint8_t stamp[SQL_STAMP_BYTES]);

/*
 * A mount's own change (use counts, task grants) committed on its store
 * connection: its cache must not outlive it, and it does not wait for
 * the other hosts. Any other writer (shadm) waits for their
 * acknowledgements instead (sql_pgsql.c, pgsql_acked).
 */
void pgsql_watch_own_change(struct pgsql_watch *w);

#endif

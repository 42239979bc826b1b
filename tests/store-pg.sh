#!/bin/bash
# store-pg.sh - the store's unit tests (tests/unit/store_test.c) again with
# every store a database of a throwaway PostgreSQL cluster (tests/pg.sh):
# SCOPEHOLD_TEST_PG names it. The tests about the SQLite file itself report
# "skip" with the reason.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/pg.sh"
trap pg_stop EXIT
if ! pg_available; then
	skip "store unit tests on PostgreSQL: no PostgreSQL server installed (make deps)"
	exit 0
fi
if [ ! -x "$ROOT/$B/tests/store_test" ]; then
	not_ok "store-pg: $B/tests/store_test is built"; exit 1
fi
pg_start || { not_ok "store-pg: start a PostgreSQL cluster"; exit 1; }
SCOPEHOLD_TEST_PG="host=$PG_DIR port=$PG_PORT dbname=scopehold" "$ROOT/$B/tests/store_test"

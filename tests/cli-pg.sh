#!/bin/bash
# cli-pg.sh - tests/cli.sh again with [store] backend = postgresql: the same
# shadm checks against a throwaway PostgreSQL cluster (tests/pg.sh), each
# environment in a database of its own. Checks that are about the SQLite
# file itself (its mode, owner, WAL, a foreign or corrupt file) report
# "skip" with the reason instead.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/pg.sh"
trap pg_stop EXIT
if ! pg_available; then
	skip "cli suite on PostgreSQL: no PostgreSQL server installed (make deps)"
	exit 0
fi
if ! pg_start; then
	not_ok "cli-pg: start a PostgreSQL cluster"
	exit 1
fi
export PG_BIN PG_DIR PG_PORT PG_CONNINFO
SCOPEHOLD_TEST_BACKEND=postgresql bash "$ROOT/tests/cli.sh"

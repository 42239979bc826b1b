#!/bin/bash
# seam.sh - the store's engine stays behind one seam (issue 9): only the
# SQLite driver store/sql_sqlite.c includes sqlite3.h or calls sqlite3_*;
# every other file of store/ goes through store/sql.h (likewise libpq: only
# the PostgreSQL driver's two files, sql_pgsql.c and sql_pgsql_watch.c), and no other
# module (policy, fs, tools, agent, dotenv) reaches the engine at all.
# Also: the built store library holds the driver, and its undefined
# sqlite3_* symbols come from that one object.
. "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1

# FILE... that mention the pattern, space-separated
users() { local pat=$1; shift; grep -l -- "$pat" "$@" 2>/dev/null | sort | tr '\n' ' '; }

expect_eq "only store/sql_sqlite.c calls sqlite3_* in store/" \
	"$(users 'sqlite3_' store/*.c store/*.h)" "store/sql_sqlite.c "
expect_eq "only store/sql_sqlite.c includes sqlite3.h in store/" \
	"$(users '#include <sqlite3.h>' store/*.c store/*.h)" "store/sql_sqlite.c "
expect_eq "no SQLITE_* constant outside the driver" \
	"$(users 'SQLITE_' store/*.c store/*.h)" "store/sql_sqlite.c "
expect_eq "policy, fs, tools, agent and dotenv never reach SQLite" \
	"$(users 'sqlite3' policy/*.[ch] fs/*.[ch] tools/*.[ch] agent/*.[ch] dotenv/*.[ch])" ""
expect_eq "store_int.h includes sql.h, not the engine's header" \
	"$(grep -c '#include "store/sql.h"' store/store_int.h)" "1"
expect_eq "the driver registers under the name the store opens" \
	"$(grep -c '\.name = "sqlite"' store/sql_sqlite.c) $(grep -c 'STORE_SQL_DRIVER "sqlite"' store/db.c)" "1 1"

expect_eq "only the PostgreSQL driver (store/sql_pgsql.c, sql_pgsql_watch.c) calls libpq (PQ*) or includes libpq-fe.h" \
	"$(grep -lE '\bPQ[a-z]+\(|libpq-fe\.h' store/*.c store/*.h policy/*.[ch] fs/*.[ch] tools/*.[ch] agent/*.[ch] dotenv/*.[ch] 2>/dev/null | sort | tr '\n' ' ')" \
	"store/sql_pgsql.c store/sql_pgsql_watch.c "
expect_eq "the PostgreSQL driver registers under the backend name" \
	"$(grep -c '\.name = "postgresql"' store/sql_pgsql.c)" "1"

# in the built library, the objects needing sqlite3_* symbols
if command -v nm >/dev/null && [ -f "$B/libstore.a" ]; then
	objs=$(nm -A "$B/libstore.a" 2>/dev/null | awk '$2 == "U" && $3 ~ /^sqlite3_/ { split($1, a, ":"); print a[2] }' | sort -u | tr '\n' ' ')
	expect_eq "in $B/libstore.a only sql_sqlite.o uses sqlite3_* symbols" "$objs" "sql_sqlite.o "
	objs=$(nm -A "$B/libstore.a" 2>/dev/null | awk '$2 == "U" && $3 ~ /^PQ/ { split($1, a, ":"); print a[2] }' | sort -u | tr '\n' ' ')
	expect_eq "in $B/libstore.a only sql_pgsql.o and sql_pgsql_watch.o use PQ* symbols" "$objs" "sql_pgsql.o sql_pgsql_watch.o "
else
	skip "nm or $B/libstore.a missing: symbol check"
fi
t_finish

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

# bad [store] settings: one line naming the file and line, exit 1, no password echoed
t_tmpdir
trap 'pg_stop; rm -rf "$T_TMP"' EXIT
badconf() { printf '[store]\nkey_file = %s/k\n%s\n' "$T_TMP" "$1" >"$T_TMP/bad.ini"; }
badconf "backend = mysql"
expect_run "an unknown backend is refused" 1 \
	"shadm: $T_TMP/bad.ini:3: invalid value for 'backend': 'mysql'" "$SHADM" -c "$T_TMP/bad.ini" provider list
badconf "conninfo = host=/tmp dbname=x password=hunter2secret"
expect_run "a conninfo with a password is refused without echoing it" 1 \
	"shadm: $T_TMP/bad.ini:3: conninfo must not contain a password (use ~/.pgpass or PGPASSFILE, peer or certificate authentication)" \
	"$SHADM" -c "$T_TMP/bad.ini" provider list
badconf "conninfo = postgresql://bob:hunter2secret@db.example/sh"
expect_run "a URI with a password is refused without echoing it" 1 \
	"shadm: $T_TMP/bad.ini:3: conninfo must not contain a password (use ~/.pgpass or PGPASSFILE, peer or certificate authentication)" \
	"$SHADM" -c "$T_TMP/bad.ini" provider list
badconf "conninfo = host=/tmp nosuchoption=1"
expect_run "a malformed conninfo is refused with libpq's reason" 1 \
	"shadm: $T_TMP/bad.ini:3: invalid conninfo: invalid connection option \"nosuchoption\"" \
	"$SHADM" -c "$T_TMP/bad.ini" provider list
badconf "backend = postgresql"
expect_run "backend = postgresql without conninfo is refused" 1 \
	"shadm: $T_TMP/bad.ini: [store] backend = postgresql needs conninfo" "$SHADM" -c "$T_TMP/bad.ini" provider list
pg_psql postgres -c "CREATE DATABASE utf8db OWNER \"$(id -un)\" ENCODING 'UTF8' TEMPLATE template0" >/dev/null
printf '[store]\nbackend = postgresql\nconninfo = host=%s port=%s dbname=utf8db\nstate_dir = %s/st\nkey_file = %s/k8\n' \
	"$PG_DIR" "$PG_PORT" "$T_TMP" "$T_TMP" >"$T_TMP/utf8.ini"
expect_run "a database that is not SQL_ASCII is refused" 1 \
	"shadm: cannot open the store: the database's encoding is not SQL_ASCII: the store keeps paths byte for byte (create it with ENCODING 'SQL_ASCII' TEMPLATE template0)" \
	"$SHADM" -c "$T_TMP/utf8.ini" init
check "the refused init left no key file" test ! -e "$T_TMP/k8"
# a database whose commits are acknowledged before they are durable cannot carry the audit
pg_psql postgres -c "CREATE DATABASE asyncdb OWNER \"$(id -un)\" ENCODING 'SQL_ASCII' TEMPLATE template0" >/dev/null
pg_psql postgres -c "ALTER DATABASE asyncdb SET synchronous_commit = off" >/dev/null
printf '[store]\nbackend = postgresql\nconninfo = host=%s port=%s dbname=asyncdb\nstate_dir = %s/st\nkey_file = %s/k9\n' \
	"$PG_DIR" "$PG_PORT" "$T_TMP" "$T_TMP" >"$T_TMP/async.ini"
expect_run "a database with synchronous_commit = off is refused" 1 \
	"shadm: cannot open the store: the server has synchronous_commit = off: acknowledged audit events could be lost; set it to on" \
	"$SHADM" -c "$T_TMP/async.ini" init
check "the refused init left no key file" test ! -e "$T_TMP/k9"
# a database that holds something else: refused before anything is written
pg_psql postgres -c "CREATE DATABASE otherapp OWNER \"$(id -un)\" $PG_DBOPTS" >/dev/null
psql -X -q "host=$PG_DIR port=$PG_PORT dbname=otherapp" -c "CREATE TABLE audit (id int)" </dev/null
printf '[store]\nbackend = postgresql\nconninfo = host=%s port=%s dbname=otherapp\nstate_dir = %s/st\nkey_file = %s/k10\n' \
	"$PG_DIR" "$PG_PORT" "$T_TMP" "$T_TMP" >"$T_TMP/other.ini"
expect_run "init into a database that holds another application's tables is refused" 1 \
	"shadm: cannot open the store: the database is not empty (1 relation, among them audit): create the store in a database of its own" \
	"$SHADM" -c "$T_TMP/other.ini" init
check "the refused init left no key file" test ! -e "$T_TMP/k10"
expect_eq "the refused init wrote nothing into that database" \
	"$(psql -X -At "host=$PG_DIR port=$PG_PORT dbname=otherapp" -c "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'" </dev/null)" audit
# a store of another program's id, a newer schema, another store's key: one line, nothing changed
mkstore() { # NAME: a new store in its own database; its config in $T_TMP/NAME.ini
	pg_psql postgres -c "CREATE DATABASE $1 OWNER \"$(id -un)\" $PG_DBOPTS" >/dev/null
	printf '[store]\nbackend = postgresql\nconninfo = host=%s port=%s dbname=%s\nstate_dir = %s/st\nkey_file = %s/key-%s\n' \
		"$PG_DIR" "$PG_PORT" "$1" "$T_TMP" "$T_TMP" "$1" >"$T_TMP/$1.ini"
	"$SHADM" -c "$T_TMP/$1.ini" init >/dev/null
}
mkstore sa; mkstore sb
dbq_in() { psql -X -q -At -v ON_ERROR_STOP=1 "host=$PG_DIR port=$PG_PORT dbname=$1" -c "$2" </dev/null; }
ver=$(dbq_in sa "SELECT value FROM scopehold_meta WHERE key = 'schema_version'")
dbq_in sa "UPDATE scopehold_meta SET value = value + 1 WHERE key = 'schema_version'"
expect_run "a store of a newer schema is refused with one line" 1 \
	"shadm: store 'host=$PG_DIR port=$PG_PORT dbname=sa' has schema $((ver + 1)), newer than this program ($ver)" \
	"$SHADM" -c "$T_TMP/sa.ini" provider add gh
expect_eq "... and left as it was" "$(dbq_in sa "SELECT value FROM scopehold_meta WHERE key = 'schema_version'")/$(dbq_in sa "SELECT count(*) FROM providers")" "$((ver + 1))/0"
dbq_in sa "UPDATE scopehold_meta SET value = $ver WHERE key = 'schema_version'"
dbq_in sa "UPDATE scopehold_meta SET value = 12345 WHERE key = 'application_id'"
expect_run "a database of another program's store is refused, naming the database" 1 \
	"shadm: store 'host=$PG_DIR port=$PG_PORT dbname=sa' is corrupt or not a ScopeHold store" \
	"$SHADM" -c "$T_TMP/sa.ini" provider list
sed "s|key-sb|key-sa|" "$T_TMP/sb.ini" >"$T_TMP/sb-with-sa-key.ini"
expect_run "another store's key file is refused" 1 "shadm: this key does not open this store" \
	"$SHADM" -c "$T_TMP/sb-with-sa-key.ini" provider add gh
expect_eq "... and nothing was added" "$(dbq_in sb "SELECT count(*) FROM providers")" 0
sed "s|key-sb|key-new|" "$T_TMP/sb.ini" >"$T_TMP/sb-again.ini"
expect_run "init over an existing store is refused, even with a new key path" 1 \
	"shadm: store 'host=$PG_DIR port=$PG_PORT dbname=sb' already exists; refusing to overwrite it" \
	"$SHADM" -c "$T_TMP/sb-again.ini" init
check "that refused init left no key file" test ! -e "$T_TMP/key-new"
badconf "state_dir = relative/dir"
expect_run "a relative state_dir is refused" 1 \
	"shadm: $T_TMP/bad.ini:3: invalid value for 'state_dir': 'relative/dir'" "$SHADM" -c "$T_TMP/bad.ini" provider list
SCOPEHOLD_TEST_BACKEND=postgresql bash "$ROOT/tests/cli.sh"

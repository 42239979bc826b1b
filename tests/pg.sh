# pg.sh - a throwaway PostgreSQL cluster for a test suite (sourced, bash).
#
#   . tests/pg.sh; pg_start || exit
#
# initdb into a fresh directory owned by the postgres user, the server
# listening only on a unix socket inside that directory (no TCP, so no
# port is shared with anything: the "port" only names the socket file),
# a role for the user running the suite (peer authentication, as a
# deployment without passwords would have) and a database `scopehold`.
# PG_CONNINFO then names it. The cluster is ALWAYS stopped and removed at
# exit (pg_stop, chained into the EXIT trap the suite sets after sourcing:
# call pg_stop from it). PG_FSYNC=on and PG_SHARED_BUFFERS=128MB give a
# server as deployed (the tests run with fsync off). A system cluster on
# 5432, if the Debian package started one, is neither used nor touched.
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
PG_DIR=${PG_DIR:-}
PG_PORT=${PG_PORT:-}
PG_CONNINFO=${PG_CONNINFO:-}
# what a store's database needs: byte strings kept as they are (sql_pgsql.c)
PG_DBOPTS="ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"

# pg_available: the server binaries and the postgres user exist.
pg_available() { [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] && id postgres >/dev/null 2>&1; }

pg_as() { setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"; }

# pg_psql [DB] SQL...: run psql as the superuser over the cluster's socket.
pg_psql() {
	local db=$1; shift
	pg_as "$PG_BIN/../bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" \
		-d "$db" -At "$@" </dev/null
}

pg_start() {
	local role
	pg_available || { echo "# no PostgreSQL server ($PG_BIN)"; return 1; }
	PG_DIR=$(mktemp -d /tmp/scopehold-pg.XXXXXX) || return 1
	chown postgres:postgres "$PG_DIR"
	chmod 0755 "$PG_DIR"       # the socket lives here; the data directory is 0700 below
	PG_PORT=$((24900 + $$ % 100))
	if ! pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth-local=peer \
		--auth-host=reject -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1; then
		echo "# initdb failed:"; sed 's/^/#   /' "$PG_DIR/initdb.log"; return 1
	fi
	if ! pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
		-o "-k $PG_DIR -c listen_addresses='' -p $PG_PORT -c fsync=${PG_FSYNC:-off} -c shared_buffers=${PG_SHARED_BUFFERS:-16MB} -c max_connections=40" \
		start >/dev/null 2>&1; then
		echo "# pg_ctl start failed:"; sed 's/^/#   /' "$PG_DIR/server.log"; return 1
	fi
	role=$(id -un)
	pg_psql postgres -c "CREATE ROLE \"$role\" LOGIN CREATEDB" \
		-c "CREATE DATABASE scopehold OWNER \"$role\" $PG_DBOPTS" || return 1
	PG_CONNINFO="host=$PG_DIR port=$PG_PORT dbname=scopehold"
	export PG_CONNINFO
}

# pg_newdb NAME: another empty database owned by the suite's user; its conninfo on stdout.
pg_newdb() {
	pg_psql postgres -c "CREATE DATABASE \"$1\" OWNER \"$(id -un)\" $PG_DBOPTS" >/dev/null &&
		echo "host=$PG_DIR port=$PG_PORT dbname=$1"
}

pg_stop() {
	[ -n "$PG_DIR" ] || return 0
	if [ -d "$PG_DIR/data" ]; then
		pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1
	fi
	rm -rf "$PG_DIR"
	PG_DIR=
}

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
# call pg_stop from it). A system cluster on 5432, if the Debian package
# started one, is neither used nor touched. For outages and failover:
# pg_server_stop/pg_server_start DIR PORT, and streaming standbys
# (pg_standby_start, pg_standby_promote, pg_psql_at). PG_FSYNC=on and
# PG_SHARED_BUFFERS=128MB give a server as deployed (the tests run with
# fsync off; make bench sets them).
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
	pg_server_start "$PG_DIR" "$PG_PORT" || return 1
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

# pg_server_start DIR PORT: start (again) the server of DIR/data on its socket in DIR.
pg_server_start() {
	if ! pg_as "$PG_BIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 \
		-o "-k $1 -c listen_addresses='' -p $2 -c fsync=${PG_FSYNC:-off} -c shared_buffers=${PG_SHARED_BUFFERS:-16MB} -c max_connections=40" \
		start >/dev/null 2>&1; then
		echo "# pg_ctl start failed:"; sed 's/^/#   /' "$1/server.log" | tail -n 20; return 1
	fi
}

# pg_server_stop DIR: stop it as a crash would (-m immediate: no shutdown checkpoint).
pg_server_stop() { pg_as "$PG_BIN/pg_ctl" -D "$1/data" -m immediate -w stop >/dev/null 2>&1; }

# ---- streaming standbys, for failover ---------------------------------------------
# pg_standby_start FROM_DIR FROM_PORT sync|async: a pg_basebackup -R of the
# server in FROM_DIR, in a new directory with its own socket and port,
# streaming from it; sets PG_SB_DIR and PG_SB_PORT (pg_stop removes it).
# sync makes it the server's synchronous standby (synchronous_standby_names
# = '*' on FROM, waited for): a commit FROM acknowledged is on the standby
# too and survives a failover. The standby is not made to wait for anyone
# once promoted. async leaves FROM as it is: its last commits may be lost.
PG_SB_DIR= PG_SB_PORT= PG_MORE="" PG_NSB=0
pg_standby_start() {
	PG_SB_DIR=$(mktemp -d /tmp/scopehold-pgsb.XXXXXX) || return 1
	PG_MORE="$PG_MORE $PG_SB_DIR"
	chown postgres:postgres "$PG_SB_DIR"
	chmod 0755 "$PG_SB_DIR"
	PG_NSB=$((PG_NSB + 1))
	PG_SB_PORT=$((PG_PORT + 100 * PG_NSB))
	if ! pg_as "$PG_BIN/pg_basebackup" -h "$1" -p "$2" -U postgres -D "$PG_SB_DIR/data" \
		-R -X stream -c fast >"$PG_SB_DIR/basebackup.log" 2>&1; then
		echo "# pg_basebackup failed:"; sed 's/^/#   /' "$PG_SB_DIR/basebackup.log"; return 1
	fi
	# the copy carries FROM's ALTER SYSTEM settings: a standby waits for no one
	pg_as sh -c "echo \"synchronous_standby_names = ''\" >>'$PG_SB_DIR/data/postgresql.auto.conf'"
	pg_server_start "$PG_SB_DIR" "$PG_SB_PORT" || return 1
	local want=async
	if [ "$3" = sync ]; then
		want=sync
		pg_psql_at "$1" "$2" postgres -c "ALTER SYSTEM SET synchronous_standby_names = '*'" \
			-c "SELECT pg_reload_conf()" >/dev/null || return 1
	fi
	for _ in $(seq 1 100); do
		[ "$(pg_psql_at "$1" "$2" postgres -c "SELECT count(*) FROM pg_stat_replication
			WHERE sync_state = '$want' AND state = 'streaming'")" = 1 ] && return 0
		sleep 0.1
	done
	echo "# the standby is not streaming ($want)"; return 1
}

# pg_standby_promote DIR: that standby becomes a primary (waits until it is).
pg_standby_promote() { pg_as "$PG_BIN/pg_ctl" -D "$1/data" -w -t 60 promote >/dev/null 2>&1; }

# pg_psql_at DIR PORT DB SQL...: as pg_psql, on the server of DIR.
pg_psql_at() {
	local dir=$1 port=$2 db=$3; shift 3
	pg_as "$PG_BIN/../bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" \
		-d "$db" -At "$@" </dev/null
}

pg_stop() {
	local d
	for d in $PG_MORE $PG_DIR; do
		[ -d "$d/data" ] && pg_server_stop "$d"
		rm -rf "$d"
	done
	PG_DIR= PG_MORE=""
}

# ---- what every PostgreSQL suite shares -----------------------------------------
# pg_suite NAME, after sourcing lib.sh, mount.sh and this file: the mount
# harness, the cluster, and the EXIT trap that always stops both; with no
# server installed, one skip line and exit 0.
pg_suite() {
	m_start "$1" "it mounts, and runs readers as other uids with setpriv"
	trap 'm_cleanup; pg_stop' EXIT
	if ! pg_available; then
		skip "$1: no PostgreSQL server installed (make deps)"; exit 0
	fi
	pg_start || { not_ok "$1: start a PostgreSQL cluster"; exit 1; }
}

# pg_conf FILE CONNINFO HOST STATE_DIR [MOUNTPOINT]: one host's config of a
# store in PostgreSQL, its root key in $T_TMP/keys/master.key.
pg_conf() {
	{
		printf '[store]\nbackend = postgresql\nconninfo = %s\nstate_dir = %s\nhost = %s\nkey_file = %s\n' \
			"$2" "$4" "$3" "$T_TMP/keys/master.key"
		[ -z "${5:-}" ] || printf '[mount]\nmountpoint = %s\n' "$5"
	} >"$1"
}

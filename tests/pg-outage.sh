#!/bin/bash
# pg-outage.sh - the mount and shadm when PostgreSQL goes away and comes
# back (issue 9, "Outages"), on a throwaway cluster (tests/pg.sh) and a
# real mount with real uids. Checked as a user would notice it:
#   - the server stopped (-m immediate): a granted open fails with EIO
#     within [store] timeout (+ slack), no byte of the value is served, the
#     daemon logs ONE "unreachable" line for many failed opens, and shadm
#     exits 1 with one line naming the server (never a password);
#   - the server back: the same daemon (same pid) serves again by itself,
#     logs one "reachable again" line, and the events journaled meanwhile
#     (reads whose import could not commit) and the denials counted in
#     memory reach the audit table exactly once; audit verify passes;
#   - kill -9 of the daemon during an outage: its journaled events are
#     imported exactly once by the next daemon;
#   - failover: a synchronous streaming standby (pg_basebackup) promoted
#     after the primary dies; a daemon and shadm on a multi-host conninfo
#     (target_session_attrs=read-write) resume on it without a restart, a
#     revoke made there is obeyed at the next open, nothing is lost or
#     doubled.
# The import is held back deterministically by revoking INSERT on `audit`
# from the store's role (reads still work, so resolve events pile up in the
# journal), then granting it back once the server returns. Timings are
# printed as "# ..." lines and only asserted against a generous bound (the
# machine is shared).
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
. "$ROOT/tests/pg.sh"
pg_suite pg-outage

UA=24911 UB=24912
CONF=$T_TMP/a.ini MNT=$T_TMP/mnt LOG=$T_TMP/fs.log VALS=$T_TMP/vals
MNTS="$MNT"
ROLE=$(id -un)
SERVER="host=$PG_DIR port=$PG_PORT dbname=scopehold"
mkdir -m 0700 "$VALS" "$T_TMP/keys"
mkdir -m 0755 "$MNT"
: >"$LOG"
conf() { pg_conf "$1" "$2" host-a "$T_TMP/state" "$MNT"; }   # conf FILE CONNINFO
conf "$CONF" "$PG_CONNINFO"
printf 'outageSECRET-4b1\n' >"$VALS/token"

setup sa init
setup sa provider add github
setup sa secret set github/token --from-file "$VALS/token"
setup sa secret set github/other --from-file "$VALS/token"
setup sa project add proj
setup sa project attach proj github
setup sa agent add agent-a --uid "$UA"
setup sa agent add agent-b --uid "$UB"
setup sa assign agent-a proj
setup sa assign agent-b proj
setup sa grant agent-a github/token
setup sa grant agent-a github/other
setup_check "pg-outage setup: shadm commands failed"
ok "pg-outage setup: a store in PostgreSQL, agent-a granted, agent-b not"

F=$MNT/agent-a/github/token
FB=$MNT/agent-b/github/token
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
# the journal's import held back (reads go on) / let through again
hold_import() { pg_psql scopehold -c "REVOKE INSERT ON audit FROM \"$ROLE\""; }
free_import() { pg_psql scopehold -c "GRANT INSERT ON audit TO \"$ROLE\""; }
READS=0
# read_ok WHAT: a granted read through the mount gives the exact bytes (counted)
read_ok() {
	as_uid "$UA" cat "$F" >"$T_TMP/got" 2>/dev/null
	same_bytes "$1" "$T_TMP/got" "$VALS/token"
	cmp -s "$T_TMP/got" "$VALS/token" && READS=$((READS + 1))
}
# wait_resolves N: until agent-a's resolve events in the table are N (10 s at most); prints the count
wait_resolves() {
	local n
	for _ in $(seq 1 50); do
		n=$(aq count type=resolve agent=agent-a)
		[ "$n" = "$1" ] && break
		sleep 0.2
	done
	echo "$n"
}

# [store] timeout and admin_timeout: bad values are refused with the line
for v in "timeout = 0s" "timeout = 2m" "timeout = 2" "admin_timeout = 2d"; do
	{ cat "$CONF"; printf '[store]\n%s\n' "$v"; } >"$T_TMP/bad.ini"
	expect_run "[store] $v is refused" 1 \
		"shadm: $T_TMP/bad.ini:10: invalid value for '${v%% *}': '${v##* }'" "$SHADM" -c "$T_TMP/bad.ini" secret list
done
{ cat "$CONF"; printf '[store]\ntimeout = 5s\nadmin_timeout = 1h\n'; } >"$T_TMP/good.ini"
expect_run "[store] timeout = 5s, admin_timeout = 1h are taken" 0 - "$SHADM" -c "$T_TMP/good.ini" secret list

# a writer of another host holding the write lock for 3 s (longer than a
# turn of half the timeout, here 1 s): shadm queues behind it, turn after
# turn, and succeeds
psql -X -q "$PG_CONNINFO" -c "SELECT pg_advisory_lock(6866391294498884708)" -c "SELECT pg_sleep(3)" \
	</dev/null >/dev/null 2>&1 &
HOLDER=$!; HELPERS="$HELPERS $HOLDER"
sleep 0.5
t0=$(now)
{ cat "$CONF"; printf '[store]\nadmin_timeout = 2s\n'; } >"$T_TMP/short.ini"
expect_run "a writer queues for a write lock held 3 s (turns of 1 s), then succeeds" 0 - \
	"$SHADM" -c "$T_TMP/short.ini" provider add queued
echo "# shadm waited $(secs "$t0" "$(now)")s for the write lock"
wait "$HOLDER"
expect_eq "the queued write is in the store" "$(sa provider list 2>&1 | grep -c '^queued ')" 1

start_fs "$CONF" "$LOG" "$MNT"; PID=$FS_PID
expect_mount "scopeholdfs mounts from PostgreSQL" "$MNT" "$LOG"
read_ok "before the outage: a granted read gives the exact bytes"
expect_eq "before the outage: agent-b is refused (EACCES)" "$(probe "$UB" open "$FB")" "EACCES"
# three refusals: one row at once, two counted in memory (coalesced)
probe "$UB" open "$FB" >/dev/null; probe "$UB" open "$FB" >/dev/null

# ---- the server goes away ------------------------------------------------------
hold_import
read_ok "import held back: a granted read still gives the exact bytes (journaled)"
read_ok "import held back: a second read (journaled)"
t0=$(now)
pg_server_stop "$PG_DIR"
got=""
while lt "$(secs "$t0" "$(now)")" 10; do
	got=$(probe "$UA" open "$F")
	[ "$got" = EIO ] && break
	READS=$((READS + ${got:+$([ "${got%% *}" = ok ] && echo 1 || echo 0)}))
done
t1=$(now)
expect_eq "server stopped: a granted open fails with EIO" "$got" "EIO"
STOP_FAIL=$(secs "$t0" "$t1")
echo "# stop -> first failed open: ${STOP_FAIL}s ([store] timeout = 2s)"
check "server stopped: the first open fails within 10 s (${STOP_FAIL}s)" lt "$STOP_FAIL" 10
as_uid "$UA" cat "$F" >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?
expect_eq "server stopped: cat says Input/output error, exit 1, no byte of the value" \
	"$rc $(len "$T_TMP/out") $(cat "$T_TMP/err")" "1 0 cat: $F: Input/output error"
expect_eq "server stopped: 30 more granted opens, every one EIO" "$(probe "$UA" flood "$F" 30)" "EIO:30"
expect_eq "server stopped: an ungranted open is EIO too (nothing is decided without the database)" \
	"$(probe "$UB" open "$FB")" "EIO"
expect_eq "server stopped: the daemon logged exactly one 'unreachable' line for all those opens" \
	"$(grep -c 'unreachable' "$LOG")" 1
check "server stopped: that line names the server" grep -qF "database unreachable, every open fails (EIO) until it answers: cannot reach the database ($SERVER): " "$LOG"
expect_run "server stopped: shadm exits 1 with one line naming the server" 1 \
	"shadm: cannot reach the database ($SERVER): connection to server on socket \"$PG_DIR/.s.PGSQL.$PG_PORT\" failed: No such file or directory" \
	sa secret list
expect_run "server stopped: shadm audit too (any command)" 1 \
	"shadm: cannot reach the database ($SERVER): connection to server on socket \"$PG_DIR/.s.PGSQL.$PG_PORT\" failed: No such file or directory" \
	sa audit
# a password in the conninfo is refused before any connection, never echoed
conf "$T_TMP/pw.ini" "$PG_CONNINFO password=hunter2outage"
expect_run "a conninfo with a password is refused without echoing it" 1 \
	"shadm: $T_TMP/pw.ini:3: conninfo must not contain a password (use ~/.pgpass or PGPASSFILE, peer or certificate authentication)" \
	"$SHADM" -c "$T_TMP/pw.ini" secret list
check "no password in the daemon's log" eval '! grep -q hunter2 "$LOG"'
check "the daemon still runs (same pid)" kill -0 "$PID"

# ---- the server comes back -------------------------------------------------------
t2=$(now)
pg_server_start "$PG_DIR" "$PG_PORT" || { not_ok "restart the server"; exit 1; }
free_import
got=""
while lt "$(secs "$t2" "$(now)")" 20; do
	got=$(probe "$UA" open "$F")
	[ "${got%% *}" = ok ] && break
	sleep 0.05
done
t3=$(now)
expect_eq "server back: the same daemon serves again without a restart" "${got%% *}" "ok"
[ "${got%% *}" = ok ] && READS=$((READS + 1))
START_OK=$(secs "$t2" "$t3")
echo "# start (pg_ctl start -w + GRANT) -> first served open: ${START_OK}s"
check "server back: served within 20 s (${START_OK}s)" lt "$START_OK" 20
expect_eq "server back: it is the same daemon (pid $PID)" "$(kill -0 "$PID" 2>&1 && echo alive)" alive
read_ok "server back: a granted read gives the exact bytes"
for _ in $(seq 1 50); do grep -q 'database reachable again' "$LOG" && break; sleep 0.1; done
expect_eq "server back: one 'reachable again' line (the housekeeping tick's)" \
	"$(grep -c 'database reachable again' "$LOG")" 1
expect_eq "server back: still one 'unreachable' line" "$(grep -c 'unreachable' "$LOG")" 1
expect_eq "every served read is in the trail exactly once, the journaled ones included ($READS)" \
	"$(wait_resolves "$READS")" "$READS"
for _ in $(seq 1 25); do [ "$(aq sum type=deny agent=agent-b)" = 3 ] && break; sleep 0.2; done
expect_eq "the three refusals before the outage are counted exactly once (sum of counts)" \
	"$(aq sum type=deny agent=agent-b)" 3
expect_verify "server back: audit verify passes"

# ---- a hung server: every request has a deadline -----------------------------------
# SIGSTOP the server's processes (ours, by pid): connections stay open and
# nothing answers, as with a black-holed host. The open must not hang. The
# mount may still answer from its cache while its lease lasts (2 s: it
# proved its view current that recently, scopeholdfs(1)); then EIO.
PM=$(head -n 1 "$PG_DIR/data/postmaster.pid")
PGPIDS="$PM $(pgrep -P "$PM" | tr '\n' ' ')"
t0=$(now)
kill -STOP $PGPIDS
got="" served=0
while lt "$(secs "$t0" "$(now)")" 10; do
	got=$(probe "$UA" open "$F")
	[ "${got%% *}" = ok ] || break
	served=$((served + 1)); READS=$((READS + 1))
	sleep 0.05
done
t1=$(now)
HUNG_FAIL=$(secs "$t0" "$t1")
# an open that starts once the lease has surely run out is never served
while lt "$(secs "$t0" "$(now)")" 3; do sleep 0.1; done
late=$(probe "$UA" open "$F")
t2=$(now)
expect_run "server hung: shadm exits 1 with one line naming the server (its connect is bounded)" 1 \
	"shadm: cannot reach the database ($SERVER): connection to server on socket \"$PG_DIR/.s.PGSQL.$PG_PORT\" failed: timeout expired" \
	sa secret list
echo "# hung server: shadm gave up after $(secs "$t2" "$(now)")s"
kill -CONT $PGPIDS
expect_eq "server hung: a granted open fails with EIO instead of hanging, once the lease is out" "$got" "EIO"
echo "# hung server (SIGSTOP) -> $served opens served from the cache under the lease, then EIO after ${HUNG_FAIL}s ([store] timeout = 2s, lease 2s)"
check "server hung: it failed within 10 s (${HUNG_FAIL}s)" lt "$HUNG_FAIL" 10
expect_eq "server hung: an open started 3 s after the stop (the lease is out) fails with EIO" "$late" "EIO"
got=""
t2=$(now)
while lt "$(secs "$t2" "$(now)")" 20; do
	got=$(probe "$UA" open "$F")
	[ "${got%% *}" = ok ] && break
	sleep 0.05
done
expect_eq "server hung then continued: the same daemon serves again" "${got%% *}" "ok"
[ "${got%% *}" = ok ] && READS=$((READS + 1))
echo "# server continued -> first served open: $(secs "$t2" "$(now)")s"
expect_eq "every served read is still in the trail exactly once ($READS)" \
	"$(wait_resolves "$READS")" "$READS"

# ---- kill -9 of the daemon during an outage ---------------------------------------
hold_import
read_ok "kill -9 case: a read journaled before the outage"
read_ok "kill -9 case: another"
pg_server_stop "$PG_DIR"
expect_eq "kill -9 case: the outage fails opens with EIO" "$(probe "$UA" open "$F")" "EIO"
kill9_fs "$PID"
fusermount3 -u -z "$MNT" 2>/dev/null
pg_server_start "$PG_DIR" "$PG_PORT" || { not_ok "restart the server"; exit 1; }
free_import
start_fs "$CONF" "$LOG" "$MNT"; PID=$FS_PID
expect_mount "kill -9 case: a new daemon mounts once the server is back" "$MNT" "$LOG"
expect_eq "kill -9 case: the events journaled before the kill are in the trail exactly once ($READS)" \
	"$(wait_resolves "$READS")" "$READS"
expect_verify "kill -9 case: audit verify passes"
stop_fs "$PID"
expect_eq "kill -9 case: the daemon stops cleanly" "$STOP_RC" 0

# ---- failover to a promoted standby -------------------------------------------------
pg_standby_start "$PG_DIR" "$PG_PORT" sync ||
	{ not_ok "failover: a synchronous standby (pg_basebackup -R)"; exit 1; }
PG_DIR2=$PG_SB_DIR PG_PORT2=$PG_SB_PORT
ok "failover: a synchronous streaming standby of the primary runs"
MULTI="host=$PG_DIR,$PG_DIR2 port=$PG_PORT,$PG_PORT2 dbname=scopehold target_session_attrs=read-write"
CONF=$T_TMP/multi.ini
conf "$CONF" "$MULTI"
start_fs "$CONF" "$LOG" "$MNT"; PID=$FS_PID
expect_mount "failover: the daemon mounts with the multi-host conninfo" "$MNT" "$LOG"
read_ok "failover: a granted read on the primary"
hold_import
read_ok "failover: a read journaled before the failover"
read_ok "failover: another"
t4=$(now)
pg_server_stop "$PG_DIR"
expect_eq "failover: primary gone, standby not promoted yet: EIO" "$(probe "$UA" open "$F")" "EIO"
pg_standby_promote "$PG_DIR2" || { not_ok "failover: pg_ctl promote"; exit 1; }
t5=$(now)
got=""
while lt "$(secs "$t5" "$(now)")" 20; do
	got=$(probe "$UA" open "$F")
	[ "${got%% *}" = ok ] && break
	sleep 0.05
done
t6=$(now)
expect_eq "failover: the same daemon serves from the promoted standby" "${got%% *}" "ok"
[ "${got%% *}" = ok ] && READS=$((READS + 1))
echo "# failover: primary stop -> promoted $(secs "$t4" "$t5")s; promoted -> first served open $(secs "$t5" "$t6")s"
pg_psql_at "$PG_DIR2" "$PG_PORT2" scopehold -c "GRANT INSERT ON audit TO \"$ROLE\""
expect_eq "failover: it is the same daemon (pid $PID)" "$(kill -0 "$PID" 2>&1 && echo alive)" alive
expect_eq "failover: shadm reaches the new primary" "$(sa agent list 2>&1 | grep -c agent-a)" 1
setup sa revoke agent-a github/token
setup_check "failover: revoke on the new primary failed"
expect_eq "failover: the revoke made there is obeyed at the next open" "$(probe "$UA" open "$F")" "EACCES"
expect_eq "failover: no event lost or doubled ($READS reads)" "$(wait_resolves "$READS")" "$READS"
expect_verify "failover: audit verify passes on the new primary"
expect_eq "one 'unreachable' line per outage (4), one 'reachable again' per outage a daemon lived through (3)" \
	"$(grep -c 'unreachable' "$LOG") $(grep -c 'database reachable again' "$LOG")" "4 3"

# ---- a server that answers but is refused on reconnect ------------------------------
# the schema moved on while the link was down: the daemon's queries are for
# the schema it opened, so it stays closed (one line saying why) until the
# database is the one it opened again
ver=$(psql -X -At "$MULTI" -c "SELECT value FROM scopehold_meta WHERE key = 'schema_version'" </dev/null)
psql -X -q "$MULTI" -c "UPDATE scopehold_meta SET value = value + 1 WHERE key = 'schema_version'" </dev/null
pg_psql_at "$PG_DIR2" "$PG_PORT2" postgres -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = 'scopehold'" >/dev/null
F=$MNT/agent-a/github/other
for _ in $(seq 1 50); do got=$(probe "$UA" open "$F"); [ "$got" = EIO ] && break; sleep 0.1; done
expect_eq "schema moved on during an outage: the reconnected daemon serves nothing (EIO)" "$got" "EIO"
expect_eq "schema moved on: one line says why" \
	"$(grep -c "unreachable, every open fails (EIO) until it answers: the database has schema_version $((ver + 1)), not $ver as when this program opened it" "$LOG")" 1
psql -X -q "$MULTI" -c "UPDATE scopehold_meta SET value = $ver WHERE key = 'schema_version'" </dev/null
for _ in $(seq 1 100); do got=$(probe "$UA" open "$F"); [ "${got%% *}" = ok ] && break; sleep 0.1; done
expect_eq "schema put back: the same daemon serves again" "${got%% *} $(kill -0 "$PID" 2>&1 && echo alive)" "ok alive"
[ "${got%% *}" = ok ] && READS=$((READS + 1))
stop_fs "$PID"
expect_eq "failover: the daemon stops cleanly" "$STOP_RC" 0

# ---- failover to an asynchronous standby: what the new primary lacks ---------------
# An asynchronous standby may lack the primary's last commits, imports of
# the journal among them. The journal's progress is kept in the database in
# the same transaction as the events, so the new primary lacks both, and
# the daemon imports those events again from its journal: once.
pg_standby_start "$PG_DIR2" "$PG_PORT2" async ||
	{ not_ok "async failover: an asynchronous standby (pg_basebackup -R)"; exit 1; }
PG_DIR3=$PG_SB_DIR PG_PORT3=$PG_SB_PORT
CONF=$T_TMP/multi2.ini
conf "$CONF" "host=$PG_DIR2,$PG_DIR3 port=$PG_PORT2,$PG_PORT3 dbname=scopehold target_session_attrs=read-write"
start_fs "$CONF" "$LOG" "$MNT"; PID=$FS_PID
expect_mount "async failover: the daemon mounts on the new pair" "$MNT" "$LOG"
read_ok "async failover: a granted read"
expect_eq "async failover: imported ($READS)" "$(wait_resolves "$READS")" "$READS"
for _ in $(seq 1 100); do
	[ "$(pg_psql_at "$PG_DIR2" "$PG_PORT2" postgres -c "SELECT replay_lsn = pg_current_wal_lsn() FROM pg_stat_replication")" = t ] && break
	sleep 0.1
done
# the standby falls behind: the primary's walsender stops sending
WS=$(pg_psql_at "$PG_DIR2" "$PG_PORT2" postgres -c "SELECT pid FROM pg_stat_replication")
kill -STOP $WS
read_ok "async failover: a read the standby will not get"
read_ok "async failover: another"
read_ok "async failover: a third"
expect_eq "async failover: imported on the primary, which acknowledged it ($READS)" \
	"$(wait_resolves "$READS")" "$READS"
ON_STANDBY=$(pg_psql_at "$PG_DIR3" "$PG_PORT3" scopehold -c "SELECT count(*) FROM audit WHERE type = 'resolve' AND agent = 'agent-a'")
# the primary's host dies: every process of that server killed at once, the walsender too
PM2=$(head -n 1 "$PG_DIR2/data/postmaster.pid")
kill -KILL $PM2 $(pgrep -P "$PM2")
pg_standby_promote "$PG_DIR3" || { not_ok "async failover: pg_ctl promote"; exit 1; }
echo "# async failover: the promoted standby had $ON_STANDBY of the $READS resolve events"
check "async failover: the promoted standby lacks the last imports (the case under test)" \
	test "$ON_STANDBY" -lt "$READS"
got=""
for _ in $(seq 1 200); do got=$(probe "$UA" open "$F"); [ "${got%% *}" = ok ] && break; sleep 0.1; done
expect_eq "async failover: the same daemon serves from the promoted standby" "${got%% *}" ok
[ "${got%% *}" = ok ] && READS=$((READS + 1))
expect_eq "async failover: what the new primary lacked is imported again from the journal, exactly once ($READS)" \
	"$(wait_resolves "$READS")" "$READS"
expect_verify "async failover: audit verify passes on the new primary"
stop_fs "$PID"
expect_eq "async failover: the daemon stops cleanly" "$STOP_RC" 0
# the killed server recovers and is stopped at exit like the others (no shared memory left behind)
pg_server_start "$PG_DIR2" "$PG_PORT2" >/dev/null

grep 'reachable' "$LOG" | sed 's/^/# log: /'
t_finish

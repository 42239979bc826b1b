#!/bin/bash
# freshness-pg.sh - issue 9's promise on PostgreSQL, with the mount's read
# cache on: a change made by shadm on any host is obeyed by the very next
# open on every host once shadm has returned. Two "hosts" (two daemons,
# own state_dir and mountpoint) share one database (tests/pg.sh); shadm
# runs with host a's config; every check reads right after the command
# returns - no sleep, no retry - first on host b, then on host a, as an
# agent would notice: revoke, grant, disable, a new name, a rotation to
# another length (exact bytes), a grant's expiry, a use count spent on the
# other host, agent removal, unassign and detach; 200 revoke/grant pairs
# with a reader looping on host b meanwhile. Host b stopped (SIGSTOP)
# holds a revoke no longer than its lease and refuses at its first open
# after SIGCONT; host b's listener stalled (its server process stopped):
# shadm waits for its lease, which the mount gives up first, so host b
# never serves the revoked value from its cache; listeners cut off by the
# server reconnect and changes are still obeyed. And the cache is really
# used: 100 granted opens send no query for the secret to the server
# (counted in the server's statement log).
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
. "$ROOT/tests/pg.sh"
pg_suite freshness-pg
# every statement of the mounts' sessions in the server's log (counted below)
pg_psql postgres -c "ALTER DATABASE scopehold SET log_statement = 'all'" || exit 1
SLOG=$PG_DIR/server.log

UA=24911 UB=24912
CONF=$T_TMP/a.ini CONF2=$T_TMP/b.ini MNT=$T_TMP/mnt-a MNT2=$T_TMP/mnt-b
LOG=$T_TMP/fs-a.log LOG2=$T_TMP/fs-b.log VALS=$T_TMP/vals
MNTS="$MNT $MNT2"
mkdir -m 0700 "$VALS" "$T_TMP/keys"
mkdir -m 0755 "$MNT" "$MNT2"
: >"$LOG"; : >"$LOG2"
pg_conf "$CONF" "$PG_CONNINFO" host-a "$T_TMP/state-a" "$MNT"
pg_conf "$CONF2" "$PG_CONNINFO" host-b "$T_TMP/state-b" "$MNT2"
printf 'tok-fpSECRET-0001'  >"$VALS/token"
printf 'short-fpSECRET'     >"$VALS/rot1"
printf 'a-much-longer-second-version-fpSECRET-%s\n' "$(printf 'x%.0s' $(seq 200))" >"$VALS/rot2"
printf 'new-fpSECRET-c'     >"$VALS/new"
printf 'once-fpSECRET-d'    >"$VALS/once"

setup sa init
setup sa provider add github
setup sa provider add aws
for s in token rot once late; do
	f=$s; [ "$s" = rot ] && f=rot1; [ "$s" = late ] && f=new
	setup sa secret set "github/$s" --from-file "$VALS/$f"
done
setup sa secret set aws/new --from-file "$VALS/new"
setup sa project add pa
for s in token rot once late; do setup sa project attach pa "github/$s"; done
setup sa agent add agent-a --uid "$UA"
setup sa agent add agent-b --uid "$UB"
setup sa assign agent-a pa
setup sa assign agent-b pa
for s in token rot; do setup sa grant agent-a "github/$s"; done
setup sa grant agent-b github/token
setup_check "freshness-pg setup: shadm commands failed"
expect_eq "the database is at schema 11 with the change trigger on the cached tables" \
	"$(psql -X -At "$PG_CONNINFO" -c "SELECT (SELECT value FROM scopehold_meta WHERE key = 'schema_version') || ' ' || count(*) FROM pg_trigger WHERE tgname = 'scopehold_changed'" </dev/null)" "11 10"

start_fs "$CONF" "$LOG" "$MNT"; PID_A=$FS_PID
expect_mount "host a: mounts" "$MNT" "$LOG"
start_fs "$CONF2" "$LOG2" "$MNT2"; PID_B=$FS_PID
expect_mount "host b: mounts on the same database" "$MNT2" "$LOG2"
# both listeners registered (their first lease) before the first change
for _ in $(seq 100); do
	[ "$(psql -X -At "$PG_CONNINFO" -c "SELECT count(*) FROM scopehold_hosts WHERE lease_until > clock_timestamp()" </dev/null)" = 2 ] && break
	sleep 0.05
done
expect_eq "both hosts hold a lease in scopehold_hosts" \
	"$(psql -X -At "$PG_CONNINFO" -c "SELECT count(*) FROM scopehold_hosts WHERE lease_until > clock_timestamp()" </dev/null)" 2

A=agent-a/github
# both OP PATH WANT WHAT: the very next open on host b, then on host a
both() {
	expect_eq "host b: $4" "$(probe "$UA" "$1" "$MNT2/$2")" "$3"
	expect_eq "host a: $4" "$(probe "$UA" "$1" "$MNT/$2")" "$3"
}
warm() { probe "$UA" open "$MNT2/$1" >/dev/null; probe "$UA" open "$MNT/$1" >/dev/null; }

both open "$A/token" "ok $(len "$VALS/token")" "a granted read"

# ---- the cache is used: 100 opens, no query for the secret reaches the server ---------------
warm "$A/token"
mark=$(wc -l <"$SLOG")
expect_eq "host b: 100 granted opens in a row" "$(probe "$UA" flood "$MNT2/$A/token" 100)" "ok:100"
queries=$(tail -n +"$((mark + 1))" "$SLOG" | grep -c 'FROM versions')
expect_eq "host b: those 100 opens were answered from its cache (statements reading versions: $queries)" \
	"$([ "$queries" -lt 5 ] && echo cached || echo "$queries queries")" cached

# ---- the very next open obeys each change ------------------------------------------------------
warm "$A/token"
setup sa revoke agent-a github/token
both open "$A/token" EACCES "revoke: the very next open is EACCES"
setup sa grant agent-a github/token
both open "$A/token" "ok $(len "$VALS/token")" "grant again: the very next open reads"

warm "$A/token"
setup sa agent disable agent-a
both open "$A/token" ENOENT "disable: the very next open is ENOENT"
setup sa agent enable agent-a
both open "$A/token" "ok $(len "$VALS/token")" "enable: the very next open reads"

both open "$A/late" EACCES "late: an ungranted candidate is EACCES"
setup sa grant agent-a github/late
both open "$A/late" "ok $(len "$VALS/new")" "late grant: the very next open of the new name reads"

# rotation to another length, read by cat and by a reader trusting fstat's size
for v in rot2 rot1; do
	warm "$A/rot"
	setup sa secret set github/rot --from-file "$VALS/$v"
	for m in "$MNT2" "$MNT"; do
		h=b; [ "$m" = "$MNT" ] && h=a
		as_uid "$UA" cat "$m/$A/rot" >"$T_TMP/rot.cat" 2>&1
		same_bytes "host $h: rotated to $(len "$VALS/$v") bytes: cat reads it exactly, at once" "$T_TMP/rot.cat" "$VALS/$v"
		as_uid "$UA" "$PY" "$T_TMP/probe.py" fstatcat "$m/$A/rot" >"$T_TMP/rot.fst" 2>&1
		same_bytes "host $h: rotated to $(len "$VALS/$v") bytes: os.read(fd, fstat size) reads it exactly" "$T_TMP/rot.fst" "$VALS/$v"
	done
done

# expiry: decided at each hit of the cache, by the time
setup sa grant agent-a github/once --ttl 2s
both open "$A/once" "ok $(len "$VALS/once")" "ttl 2s: an open at once reads (and fills the cache)"
sleep 2.2
both open "$A/once" EACCES "ttl 2s: the first open after it is EACCES"

# a use count spent on one host is obeyed on the other
setup sa grant agent-a github/once --uses 2
expect_eq "uses 2: host b's first open reads" "$(probe "$UA" open "$MNT2/$A/once")" "ok $(len "$VALS/once")"
expect_eq "uses 2: host a's open reads (the last use)" "$(probe "$UA" open "$MNT/$A/once")" "ok $(len "$VALS/once")"
both open "$A/once" EACCES "uses 2: spent on the other host, the very next open is EACCES"

# what removes the name itself
B=agent-b/github
expect_eq "host b: agent-b reads its token" "$(probe "$UB" open "$MNT2/$B/token")" "ok $(len "$VALS/token")"
setup sa unassign agent-b pa
expect_eq "host b: unassign: the very next open is ENOENT" "$(probe "$UB" open "$MNT2/$B/token")" "ENOENT"
expect_eq "host a: unassign: the very next open is ENOENT" "$(probe "$UB" open "$MNT/$B/token")" "ENOENT"
setup sa assign agent-b pa
expect_eq "host b: assign again: reads" "$(probe "$UB" open "$MNT2/$B/token")" "ok $(len "$VALS/token")"
setup sa project detach pa github/token
both open "$A/token" ENOENT "detach: the very next open is ENOENT"
setup sa project attach pa github/token
both open "$A/token" "ok $(len "$VALS/token")" "attach again: the very next open reads"
expect_eq "host b: agent-b reads before its removal" "$(probe "$UB" open "$MNT2/$B/token")" "ok $(len "$VALS/token")"
setup sa agent rm agent-b --yes
expect_eq "host b: agent rm: the very next open is ENOENT" "$(probe "$UB" open "$MNT2/$B/token")" "ENOENT"
expect_eq "host a: agent rm: the very next open is ENOENT" "$(probe "$UB" open "$MNT/$B/token")" "ENOENT"
setup_check "freshness-pg: a change failed"

# ---- 200 revoke/grant pairs, a reader looping on host b meanwhile --------------------------
as_uid "$UA" "$PY" "$T_TMP/probe.py" loop "$MNT2/$A/token" 600 >"$T_TMP/loop.out" 2>&1 &
LOOP=$!
bad=""
for i in $(seq 200); do
	sa revoke agent-a github/token >/dev/null 2>&1 || bad="$bad revoke#$i:failed"
	r=$(probe "$UA" open "$MNT2/$A/token"); [ "$r" = EACCES ] || bad="$bad revoke#$i:$r"
	sa grant agent-a github/token >/dev/null 2>&1 || bad="$bad grant#$i:failed"
	r=$(probe "$UA" open "$MNT2/$A/token"); [ "$r" = "ok $(len "$VALS/token")" ] || bad="$bad grant#$i:$r"
done
kill "$LOOP" 2>/dev/null; wait "$LOOP" 2>/dev/null
expect_eq "200 revoke/grant pairs: host b's very next open obeyed each, with a reader looping there" "${bad:- none}" " none"

# ---- a host stopped: shadm waits at most for its lease; after SIGCONT it refuses --------------
warm "$A/token"
# stopped outside a write transaction: one holding the writer lock would hold every writer
# for lock_timeout, lease or not (see the report of this suite's branch)
for _ in $(seq 100); do
	kill -STOP "$PID_B"
	[ "$(psql -X -At "$PG_CONNINFO" -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted" </dev/null)" = 0 ] && break
	kill -CONT "$PID_B"; sleep 0.02
done
t0=$(date +%s%N)
sa revoke agent-a github/token >/dev/null 2>"$T_TMP/stop.err"; rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# revoke with host b stopped returned in $ms ms (lease 2000 ms)"
expect_eq "host b stopped: shadm revoke succeeds" "$rc $(head -c 200 "$T_TMP/stop.err")" "0 "
expect_eq "host b stopped: shadm revoke returns within the lease bound (< 5 s; took $ms ms)" \
	"$([ "$ms" -lt 5000 ] && echo yes || echo no)" yes
expect_eq "host b stopped: shadm revoke waited for host b's lease to run out (>= 1 s; took $ms ms)" \
	"$([ "$ms" -ge 1000 ] && echo yes || echo no)" yes
expect_eq "host a: the revoke is obeyed while host b is stopped" "$(probe "$UA" open "$MNT/$A/token")" EACCES
kill -CONT "$PID_B"
expect_eq "host b: after SIGCONT its very next open is EACCES" "$(probe "$UA" open "$MNT2/$A/token")" EACCES
setup sa grant agent-a github/token
both open "$A/token" "ok $(len "$VALS/token")" "after SIGCONT: a grant is obeyed at the very next open"

# ---- host b's listener stalled (its server process stopped): host b's cache must not be trusted
# past its lease, and shadm waits for that lease: without either, host b would read the revoked
# secret from its cache
bpid=$(psql -X -At "$PG_CONNINFO" -c "SELECT a.pid FROM pg_stat_activity a JOIN scopehold_hosts h ON a.query LIKE '%scopehold_echo_' || h.id || '%' WHERE h.host LIKE '% pid $PID_B'" </dev/null)
expect_eq "host b's listener has a server process" "$([ -n "$bpid" ] && echo found)" found
warm "$A/token"
# stopped between two of its heartbeats (idle), never while it holds a lock a writer needs
for _ in $(seq 50); do
	kill -STOP "$bpid"
	[ "$(psql -X -At "$PG_CONNINFO" -c "SELECT state FROM pg_stat_activity WHERE pid = $bpid" </dev/null)" = idle ] && break
	kill -CONT "$bpid"; sleep 0.02
done
t0=$(date +%s%N)
sa revoke agent-a github/token >/dev/null 2>"$T_TMP/stall.err"; rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# revoke with host b's listener stalled returned in $ms ms"
both open "$A/token" EACCES "listener stalled: the revoke is obeyed at the very next open"
kill -CONT "$bpid"
expect_eq "listener stalled: shadm revoke succeeded, after waiting for host b's lease (>= 1 s; took $ms ms)" \
	"$rc $(head -c 200 "$T_TMP/stall.err")$([ "$ms" -ge 1000 ] && [ "$ms" -lt 5000 ] && echo waited)" "0 waited"
setup sa grant agent-a github/token
both open "$A/token" "ok $(len "$VALS/token")" "listener resumed: a grant is obeyed at the very next open"

# ---- the listeners cut off by the server: they reconnect, and changes are still obeyed --------
warm "$A/token"
psql -X -At "$PG_CONNINFO" -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE '%scopehold_echo_%' AND pid <> pg_backend_pid()" </dev/null >/dev/null
setup sa revoke agent-a github/token
both open "$A/token" EACCES "listeners cut off: the revoke is obeyed at the very next open"
for _ in $(seq 100); do
	[ "$(psql -X -At "$PG_CONNINFO" -c "SELECT count(*) FROM scopehold_hosts WHERE lease_until > clock_timestamp()" </dev/null)" = 2 ] && break
	sleep 0.05
done
setup sa grant agent-a github/token
both open "$A/token" "ok $(len "$VALS/token")" "listeners back: a grant is obeyed at the very next open"
warm "$A/token"
mark=$(wc -l <"$SLOG")
probe "$UA" flood "$MNT2/$A/token" 100 >/dev/null
expect_eq "host b: after its listener reconnected, the cache serves again" \
	"$(tail -n +"$((mark + 1))" "$SLOG" | grep -c 'FROM versions' | awk '{ print ($1 < 5) ? "cached" : $1 " queries" }')" cached
setup_check "freshness-pg: a change failed"

stop_fs "$PID_A"; stop_fs "$PID_B"
expect_eq "both daemons stop cleanly" "$STOP_RC" 0
expect_eq "a daemon that stops withdraws its row" \
	"$(psql -X -At "$PG_CONNINFO" -c "SELECT count(*) FROM scopehold_hosts" </dev/null)" 0
expect_verify "audit verify: the chain is intact"
t_finish

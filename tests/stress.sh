#!/bin/bash
# stress.sh - the long crash campaign (make stress; not in CI), figures for
# docs/security.md:
#  1. STRESS_ROUNDS (default 50) kill -9 rounds: readers from two uids and
#     concurrent shadm secret set / grant / revoke, the daemon SIGKILLed at a
#     random moment and restarted on the same mountpoint; after every round the
#     store's integrity_check, audit verify, every shadm change that exited 0
#     in the trail, every read covered by a resolve event, no value received
#     that shadm never stored, no stale value.
#  2. key rotate, rotate --rewrap and rekey under load: every read succeeds.
#  3. kill -9 of the daemon at random points while keys rotate and rekey,
#     and kill -9 of shadm itself during rotate --rewrap and rekey: everything
#     reveals and reads exactly afterwards.
# One ok/not ok line per round or check, then a summary line.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
. "$ROOT/tests/fixtures/faults/lib.sh"
f_preconditions stress
ROUNDS=${STRESS_ROUNDS:-50}
KEY_ROUNDS=${STRESS_KEY_ROUNDS:-10}
T0=$SECONDS

f_store "$T_TMP/s"
start_fs "$CONF" "$LOG"
require_mount "scopeholdfs mounts the store" "$MNT" "$LOG"

# ==== 1. kill -9 under load ===============================================================
for r in $(seq "$ROUNDS"); do f_kill_round "$r" "$ROUNDS"; done
T1=$SECONDS

# ---- helpers for the key parts ------------------------------------------------------------
# all_exact WHAT: every secret reveals exactly its current value, and every agent
# reads its secrets exactly through the mount; appends to PROBLEMS
all_exact() {
	for s in s1 s2 s3 s4; do
		got=$(sa secret reveal "p/$s" 2>&1)
		[ "$got" = "$(cat "$W/cur.$s")" ] || PROBLEMS="$PROBLEMS; reveal p/$s: '$got', want '$(cat "$W/cur.$s")'"
	done
	read_current "$UA" a "$FA1" s1
	read_current "$UA" a "$FA3" s3
	read_current "$UB" b "$FB2" s2
	read_current "$UC" c "$FC4" s4
	TOTAL_READS=$((TOTAL_READS + 4))
}
# keyops STOP LOG: key rotate, rotate --rewrap, rekey in turn until STOP exists;
# one "OP rc" line per command in LOG
keyops() {
	n=0
	while [ ! -e "$1" ]; do
		n=$((n + 1))
		sa key rotate >/dev/null 2>>"$W/shadm.err"; echo "rotate $?" >>"$2"
		sa key rotate --rewrap >/dev/null 2>>"$W/shadm.err"; echo "rewrap $?" >>"$2"
		sa key rekey --new-key-file "$W/new-$3-$n.key" >/dev/null 2>>"$W/shadm.err"; echo "rekey $?" >>"$2"
	done
}
# c_reader STOP TAG: agent-c reads p/s4
c_reader() { as_uid "$UC" "$PY" "$T_TMP/reader.py" "$1" "$FC4" >"$W/rc.$2" 2>&1 & RCP=$!; }
# round_line WHAT: ok/not ok from PROBLEMS
round_line() {
	if [ -z "$PROBLEMS" ]; then ok "$1"
	else not_ok "$1"; ROUND_FAILS=$((ROUND_FAILS + 1)); echo "${PROBLEMS#; }" | tr ';' '\n' | sed 's/^ */#   /'; fi
}

# ==== 2. key rotation and rekey under load: every read succeeds ===============================
PROBLEMS=""
: >"$W/shadm.err"; : >"$W/keyops.log"
stop=$SD/keys; STOPS="$STOPS $stop"
readers_start "$stop" keys
c_reader "$stop" keys
rotator "$stop" s1 s2 &
RW=$!
for i in $(seq "$KEY_ROUNDS"); do
	sa key rotate >/dev/null 2>>"$W/shadm.err"; echo "rotate $?" >>"$W/keyops.log"
	sa key rotate --rewrap >/dev/null 2>>"$W/shadm.err"; echo "rewrap $?" >>"$W/keyops.log"
	sa key rekey --new-key-file "$W/load-$i.key" >/dev/null 2>>"$W/shadm.err"; echo "rekey $?" >>"$W/keyops.log"
done
sleep 0.3
: >"$stop"
wait "$RA" "$RB" "$RCP" "$RW" 2>/dev/null
bad=$(grep -vc ' 0$' "$W/keyops.log")
[ "$bad" -eq 0 ] || PROBLEMS="$PROBLEMS; $bad key commands failed: $(sort -u "$W/shadm.err" | head -3 | tr '\n' ' ')"
served=0 failed=0
for f in a b c; do
	reader_check "$W/r$f.keys" "$f"
	served=$((served + R_SERVED)); failed=$((failed + R_FAILED))
	[ "$R_FAILED" -eq 0 ] || PROBLEMS="$PROBLEMS; agent-$f: $R_FAILED reads failed during key changes: $R_ERRS"
done
TOTAL_READS=$((TOTAL_READS + served))
all_exact
f_audit_checks
round_line "key changes under load: $KEY_ROUNDS x (rotate, rotate --rewrap, rekey) while 3 readers did $served reads and p/s1, p/s2 rotated: all exit 0, no read failed, all exact after"

# ==== 3a. kill -9 of the daemon while keys rotate and rekey ====================================
for r in $(seq "$KEY_ROUNDS"); do
	PROBLEMS=""
	: >"$W/shadm.err"; : >"$W/keyops.log"
	stop=$SD/kd.$r; STOPS="$STOPS $stop"
	readers_start "$stop" "kd$r"
	c_reader "$stop" "kd$r"
	keyops "$stop" "$W/keyops.log" "kd$r" &
	RK=$!
	t_kill=$(rand_ms 50 1500)
	sleep "$t_kill"
	kill9_fs "$FS_PID"
	start_fs "$CONF" "$LOG"
	wait_mount "$MNT" "$FS_PID" || PROBLEMS="$PROBLEMS; the restarted daemon did not mount: $(tail -n 3 "$LOG" | tr '\n' ' ')"
	sleep "$(rand_ms 100 400)"
	: >"$stop"
	wait "$RA" "$RB" "$RCP" "$RK" 2>/dev/null
	for f in a b c; do reader_check "$W/r$f.kd$r" "$f"; TOTAL_READS=$((TOTAL_READS + R_SERVED)); done
	bad=$(grep -vc ' 0$' "$W/keyops.log")
	[ "$bad" -eq 0 ] || PROBLEMS="$PROBLEMS; $bad key commands failed: $(sort -u "$W/shadm.err" | head -3 | tr '\n' ' ')"
	all_exact
	f_audit_checks
	round_line "kill -9 of the daemon during key changes, round $r/$KEY_ROUNDS (killed at ${t_kill}s, $(wc -l <"$W/keyops.log") key commands): restart, every secret reveals and reads exactly, store and audit ok"
done

# ==== 3b. kill -9 of shadm itself during rotate --rewrap and rekey =============================
# Enough versions that a rewrap takes a while, then kills spread over its run time.
for i in $(seq 300); do
	n=$(( $(cat "$W/ver.s3") + 1 )); v="s3-v$n-$(rhex)"
	printf %s "$v" | sa secret set p/s3 >/dev/null 2>>"$W/shadm.err" && {
		echo "$v" >>"$W/known"; echo "$v" >"$W/cur.s3"; echo "$n" >"$W/ver.s3"; echo "set s3 ok" >>"$W/ops.log"; }
done
ms() { date +%s%3N; }
t=$(ms); sa key rotate --rewrap >/dev/null; REWRAP_MS=$(( $(ms) - t ))
t=$(ms); sa key rekey --new-key-file "$W/time.key" >/dev/null; REKEY_MS=$(( $(ms) - t ))
echo "# a rewrap takes ${REWRAP_MS} ms, a rekey ${REKEY_MS} ms here"
for kop in rewrap rekey; do
	for r in $(seq "$KEY_ROUNDS"); do
		PROBLEMS=""
		: >"$W/shadm.err"
		stop=$SD/ks.$kop.$r; STOPS="$STOPS $stop"
		readers_start "$stop" "ks$kop$r"
		if [ "$kop" = rewrap ]; then
			"$SHADM" -c "$CONF" key rotate --rewrap >/dev/null 2>&1 &
			top=$REWRAP_MS
		else
			"$SHADM" -c "$CONF" key rekey --new-key-file "$W/ks-$r.key" >/dev/null 2>&1 &
			top=$REKEY_MS
		fi
		SP=$!
		t_kill=$(rand_ms 0 $((top + top / 5 + 1)))
		sleep "$t_kill"
		kill -KILL "$SP" 2>/dev/null; wait "$SP" 2>/dev/null; src=$?
		sleep 0.2
		: >"$stop"
		wait "$RA" "$RB" 2>/dev/null
		for f in a b; do
			reader_check "$W/r$f.ks$kop$r" "$f"; TOTAL_READS=$((TOTAL_READS + R_SERVED))
			[ "$R_FAILED" -eq 0 ] || PROBLEMS="$PROBLEMS; agent-$f: $R_FAILED reads failed: $R_ERRS"
		done
		all_exact
		kill -0 "$FS_PID" 2>/dev/null || PROBLEMS="$PROBLEMS; the daemon died"
		# and a fresh daemon (which reads the key file anew) serves too
		stop_fs "$FS_PID"
		start_fs "$CONF" "$LOG"
		if wait_mount "$MNT" "$FS_PID"; then all_exact
		else PROBLEMS="$PROBLEMS; a new daemon does not mount: $(tail -n 3 "$LOG" | tr '\n' ' ')"; fi
		f_audit_checks
		case $src in 137) how="killed at ${t_kill}s" ;; *) how="finished (exit $src) before the kill at ${t_kill}s" ;; esac
		round_line "kill -9 of shadm key $([ "$kop" = rewrap ] && echo 'rotate --rewrap' || echo rekey), round $r/$KEY_ROUNDS ($how): every secret reveals and reads exactly, from the running and a new daemon; store and audit ok"
	done
done

stop_fs "$FS_PID"
expect_eq "the last daemon exits 0 on SIGTERM" "$STOP_RC" 0
EVENTS_ALL=$(q 'SELECT count(*) FROM audit')
WAL=$(stat -c %s "$STORE-wal" 2>/dev/null || echo 0)
echo "# summary: rounds $ROUNDS kill -9 + $((1 + 3 * KEY_ROUNDS)) key, reads $TOTAL_READS, events $EVENTS_ALL, failures $ROUND_FAILS, wall $((SECONDS - T0)) s (kill rounds $((T1 - T0)) s); store $(stat -c %s "$STORE") bytes, WAL $WAL bytes"
t_finish

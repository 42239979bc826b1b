#!/bin/bash
# faults.sh - crashes, faults and tampering, the fast part of the campaign
# (make check; tests/stress.sh is the long one): a few kill -9 rounds under
# load, the audit store on a tmpfs that fills up or turns read-only while
# several readers run, a stopped daemon recovered with the connection's abort
# file and fusermount3 -uz, lazy unmount alone, ciphertext tampering through
# the live mount, and audit rows edited, deleted, reordered and truncated
# with SQLite behind shadm's back. Every check prints one ok/not ok line.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
. "$ROOT/tests/fixtures/faults/lib.sh"
f_preconditions faults
ROUNDS=${FAULT_ROUNDS:-3}

# expect_probe WHAT UID OP PATH WANT: probe.py's one-line answer
expect_probe() { expect_eq "$1" "$(probe "$2" "$3" "$4")" "$5"; }
# wait_probe UID PATH WANT SECS: poll probe.py open until it prints WANT; GOT is the last answer
wait_probe() {
	deadline=$((SECONDS + $4))
	while :; do
		GOT=$(probe "$1" open "$2")
		[ "$GOT" = "$3" ] && return 0
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}
# expect_current WHAT UID FILE NAME: the agent reads exactly W/cur.NAME
vlen() { printf %s "$(cat "$W/cur.$1")" | wc -c; }
expect_current() { expect_eq "$1" "$(as_uid "$2" cat "$3" 2>&1)" "$(cat "$W/cur.$4")"; }
restart_fs() { start_fs "$CONF" "$LOG"; expect_mount "$1" "$MNT" "$LOG"; }   # restart_fs WHAT
audit_ok() { # audit_ok WHAT: integrity_check is ok and the chain verifies
	ic=$(q 'PRAGMA integrity_check' 2>&1); vout=$(sa audit verify 2>&1); vrc=$?
	expect_eq "$1" "$ic $vrc $(echo "$vout" | sed 's/[0-9][0-9]*/N/')" "ok 0 audit chain intact: N events"
}

# ==== 1. kill -9 under load ==========================================================
f_store "$T_TMP/k"
start_fs "$CONF" "$LOG"
require_mount "scopeholdfs mounts the store" "$MNT" "$LOG"
for r in $(seq "$ROUNDS"); do f_kill_round "$r" "$ROUNDS"; done

# ==== 2. tampering with ciphertexts under the running daemon ============================
# q/x has two versions; q/y, q/z and q/w values have the same length as q/x's,
# so only the associated data can tell a moved ciphertext from the real one.
serr=""
sa provider add q >/dev/null 2>>"$W/shadm.err" || serr="$serr provider"
for s in x y z w; do
	for v in 1 2; do
		[ "$v" = 2 ] && [ "$s" != x ] && [ "$s" != w ] && continue
		printf '%s' "$s-v$v-$(rhex)" >"$W/val"
		cp "$W/val" "$W/cur.q$s"
		sa secret set "q/$s" --from-file "$W/val" >/dev/null 2>>"$W/shadm.err" || serr="$serr q/$s"
	done
	sa grant agent-c "q/$s" >/dev/null 2>>"$W/shadm.err" || serr="$serr grant q/$s"
done
sa project attach pr q >/dev/null 2>>"$W/shadm.err" || serr="$serr attach"
expect_eq "tamper setup: q/x, q/y, q/z, q/w stored and granted to agent-c" "$serr" ""
QX=$MNT/agent-c/q/x QY=$MNT/agent-c/q/y QZ=$MNT/agent-c/q/z QW=$MNT/agent-c/q/w
expect_current "tamper: agent-c reads q/x before" "$UC" "$QX" qx
deny_before=$(q "SELECT count(*) FROM audit WHERE type = 'deny' AND reason = 'integrity'")
"$PY" "$FFIX/tamper.py" "$STORE" flip-ct q/x 2
expect_probe "flipped byte: opening q/x fails with EIO" "$UC" open "$QX" EIO
as_uid "$UC" cat "$QX" >"$W/got" 2>/dev/null
expect_eq "flipped byte: cat of q/x gets zero bytes" "$(len "$W/got")" "0"
n=0
for _ in $(seq 30); do
	n=$(q "SELECT count(*) FROM audit WHERE type = 'deny' AND reason = 'integrity' AND agent = 'agent-c' AND secret = 'q/x' AND version = 2")
	[ "$n" -ge 1 ] && break; sleep 0.1
done
expect_eq "flipped byte: a deny event with reason integrity names agent-c, q/x, version 2" "$([ "$n" -ge 1 ] && echo yes)" "yes"
expect_current "flipped byte: q/y of the same agent still reads exactly" "$UC" "$QY" qy
expect_current "flipped byte: another agent's secret still reads exactly" "$UA" "$FA1" s1
expect_run "flipped byte: shadm secret reveal q/x fails naming the version" 1 \
	"shadm: 'q/x' version 2 failed its integrity check" sa secret reveal q/x
check "flipped byte: the daemon is still running" kill -0 "$FS_PID"

"$PY" "$FFIX/tamper.py" "$STORE" copy-ct q/y 1 q/z 1
expect_probe "moved ciphertext: q/y's ciphertext in q/z's row: EIO" "$UC" open "$QZ" EIO
expect_run "moved ciphertext: shadm secret reveal q/z fails" 1 \
	"shadm: 'q/z' version 1 failed its integrity check" sa secret reveal q/z
"$PY" "$FFIX/tamper.py" "$STORE" copy-ct q/w 1 q/w 2
expect_probe "moved ciphertext: q/w version 1's ciphertext as version 2: EIO" "$UC" open "$QW" EIO
expect_current "moved ciphertext: the source q/y still reads exactly" "$UC" "$QY" qy
deny_after=$(q "SELECT count(*) FROM audit WHERE type = 'deny' AND reason = 'integrity'")
for _ in $(seq 30); do
	[ "$((deny_after - deny_before))" -ge 3 ] && break; sleep 0.1
	deny_after=$(q "SELECT count(*) FROM audit WHERE type = 'deny' AND reason = 'integrity'")
done
expect_ge "tampering: each of the three refused reads has its integrity deny event" "$((deny_after - deny_before))" 3
audit_ok "tampering: store integrity_check ok and the audit chain verifies"

# ==== 3. a stopped daemon: abort the connection, lazy unmount, restart ==================
expect_current "stopped daemon: a read works before" "$UA" "$FA1" s1
dev=$(mountpoint -d "$MNT" 2>/dev/null); minor=${dev#*:}
kill -STOP "$FS_PID"
as_uid "$UA" timeout -s KILL 2 cat "$FA1" >"$W/got" 2>/dev/null; rc=$?
expect_eq "stopped daemon: a reader blocks (killed by timeout after 2 s, exit 137) and gets no byte" \
	"$rc $(len "$W/got")" "137 0"
if ! mountpoint -q /sys/fs/fuse/connections; then
	mount -t fusectl fusectl /sys/fs/fuse/connections && FUSECTL_MOUNTED=y
fi
if [ -n "$minor" ] && [ -w "/sys/fs/fuse/connections/$minor/abort" ]; then
	ok "stopped daemon: the connection's abort file is /sys/fs/fuse/connections/$minor/abort (mountpoint -d)"
	echo 1 >"/sys/fs/fuse/connections/$minor/abort"
	expect_probe "stopped daemon: after abort, an open fails with ENOTCONN at once" "$UA" open "$FA1" ENOTCONN
else
	not_ok "stopped daemon: the connection's abort file exists (device $dev)"
fi
expect_run "stopped daemon: fusermount3 -uz of the aborted mount exits 0" 0 "" fusermount3 -uz "$MNT"
check "stopped daemon: the mountpoint is no longer mounted" eval '! mounted "$MNT"'
kill9_fs "$FS_PID"
restart_fs "stopped daemon: after kill -9 a new daemon mounts"
expect_current "stopped daemon: the new daemon serves the exact value" "$UA" "$FA1" s1

# without the abort file: lazy unmount alone, then kill -9 of the stopped daemon
kill -STOP "$FS_PID"
as_uid "$UA" timeout -s KILL 1 cat "$FA1" >/dev/null 2>&1
expect_run "stopped daemon, no abort: fusermount3 -uz exits 0" 0 "" fusermount3 -uz "$MNT"
check "stopped daemon, no abort: the mountpoint is detached at once" eval '! mounted "$MNT"'
kill9_fs "$FS_PID"
restart_fs "stopped daemon, no abort: after kill -9 a new daemon mounts"
expect_current "stopped daemon, no abort: the new daemon serves the exact value" "$UB" "$FB2" s2

# a running daemon whose mount is lazily unmounted ends by itself
fusermount3 -uz "$MNT"
for _ in $(seq 50); do kill -0 "$FS_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$FS_PID" 2>/dev/null; then
	not_ok "fusermount3 -uz of a running daemon's mount: the daemon exits within 5 s"; kill9_fs "$FS_PID"
else
	wait "$FS_PID"; rc=$?; forget "$FS_PID"
	expect_eq "fusermount3 -uz of a running daemon's mount: the daemon exits 0 within 5 s" "$rc" 0
fi
restart_fs "fusermount3 -uz: a new daemon mounts"
expect_current "fusermount3 -uz: the new daemon serves the exact value" "$UA" "$FA3" s3
audit_ok "stopped daemon: store integrity_check ok and the audit chain verifies"
stop_fs "$FS_PID"
expect_eq "stopped daemon: the last daemon exits 0 on SIGTERM" "$STOP_RC" 0

# ==== 4. audit tampering with the sqlite3 shell ==========================================
# Each case works on a fresh copy of the (now quiet) store, with the same key.
TC=$T_TMP/tamper.ini
sed "s#^path = .*#path = $T_TMP/tamper.db#" "$CONF" >"$TC"
fresh() { rm -f "$T_TMP/tamper.db"*; sqlite3 "$STORE" ".backup '$T_TMP/tamper.db'"; chmod 0600 "$T_TMP/tamper.db"; }
tv() { "$SHADM" -c "$TC" audit verify "$@"; }
fresh
expect_run "audit copy: the untouched copy verifies" 0 "" tv
N=$(echo "$OUT" | sed -n 's/^audit chain intact: \([0-9]*\) events$/\1/p')
HEAD=$("$SHADM" -c "$TC" audit head 2>&1)
expect_run "audit copy: verify --head with the recorded head passes" 0 "" tv --head "$HEAD"
fresh; "$PY" "$FFIX/tamper.py" "$T_TMP/tamper.db" audit-edit 3
expect_run "audit edit: verify names event 3, exit 1" 1 \
	"shadm: audit chain broken at event 3: altered or reordered" tv
fresh; "$PY" "$FFIX/tamper.py" "$T_TMP/tamper.db" audit-edit "$N"
expect_run "audit edit of the newest event: verify names event $N, exit 1" 1 \
	"shadm: audit chain broken at event $N: altered or reordered" tv
fresh; "$PY" "$FFIX/tamper.py" "$T_TMP/tamper.db" audit-delete 7
expect_run "audit delete: verify names event 7 as removed, exit 1" 1 \
	"shadm: audit chain broken at event 7: removed (the next event present is 8)" tv
fresh; "$PY" "$FFIX/tamper.py" "$T_TMP/tamper.db" audit-swap 10 11
expect_run "audit reorder (swap the seq of 10 and 11): verify names event 10, exit 1" 1 \
	"shadm: audit chain broken at event 10: altered or reordered" tv
fresh; "$PY" "$FFIX/tamper.py" "$T_TMP/tamper.db" audit-delete-range 20 29
expect_run "audit truncated in the middle (20..29 deleted): verify names event 20, exit 1" 1 \
	"shadm: audit chain broken at event 20: removed (the next event present is 30)" tv
fresh; "$PY" "$FFIX/tamper.py" "$T_TMP/tamper.db" audit-delete-tail 5
expect_run "audit tail truncated: verify alone cannot tell (exit 0, $((N - 5)) events)" 0 "" tv
expect_eq "audit tail truncated: verify reports the shorter chain" "$OUT" "audit chain intact: $((N - 5)) events"
expect_run "audit tail truncated: verify --head with the head recorded before fails, exit 1" 1 \
	"shadm: audit chain head does not match: the trail was truncated or rewritten" tv --head "$HEAD"
expect_run "audit tampered: shadm audit head refuses to print a head for a broken chain" 1 - \
	eval '"$PY" "$FFIX/tamper.py" "$T_TMP/tamper.db" audit-edit 2 && "$SHADM" -c "$TC" audit head'

# ==== 5. the audit store fills up or turns read-only while readers run ===================
# The filler leaves 1 MiB free before the readers start; their audit rows use it
# up (the WAL grows) and from then on every open must fail closed.
D=$T_TMP/nospc
mkdir -p -m 0755 "$D" && mkdir -m 0700 "$D/st"
if ! mount -t tmpfs -o size=32m,mode=0700 tmpfs "$D/st"; then
	not_ok "full disk: mount a 32 MiB tmpfs for the store"; exit 1
fi
TMPFSES="$TMPFSES $D/st"
f_store "$D"
start_fs "$CONF" "$LOG"
require_mount "full disk: scopeholdfs mounts the tmpfs store" "$MNT" "$LOG"
avail=$(df --output=avail -B1 "$D/st" | tail -n 1 | tr -d ' ')
fallocate -l $((avail - 1048576)) "$D/st/filler"
stop=$SD/full; STOPS="$STOPS $stop"
readers_start "$stop" full
as_uid "$UC" "$PY" "$T_TMP/reader.py" "$stop" "$FC4" >"$W/rc.full" 2>&1 &
RC=$!
deadline=$((SECONDS + 15))
while [ "$(df --output=avail -B1 "$D/st" | tail -n 1 | tr -d ' ')" -gt 0 ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
expect_eq "full disk: three readers' audit rows fill the last MiB" "$(df --output=avail -B1 "$D/st" | tail -n 1 | tr -d ' ')" "0"
if wait_probe "$UA" "$FA1" EIO 10; then ok "full disk: with three readers running, opens fail with EIO"
else not_ok "full disk: with three readers running, opens fail with EIO"; echo "#   got: $GOT"; fi
# The disk does not stay full to the byte: SQLite cuts its WAL back after a
# checkpoint, and a journal record may then fit again. Whatever an open
# gets is either nothing (EIO) or the exact value, which then must have its
# resolve event (f_audit_checks below counts it as served).
as_uid "$UB" cat "$FB2" >"$W/got" 2>/dev/null
if [ "$(len "$W/got")" = 0 ]; then
	ok "full disk: cat by another agent gets zero bytes (or the exact, audited value)"
elif [ "$(cat "$W/got")" = "$(cat "$W/cur.s2")" ]; then
	echo $(( $(cat "$W/served.b") + 1 )) >"$W/served.b"
	ok "full disk: cat by another agent gets zero bytes (or the exact, audited value)"
else
	not_ok "full disk: cat by another agent gets zero bytes (or the exact, audited value)"
	echo "#   got $(len "$W/got") bytes that are not the value"
fi
full_eio=0 full_other=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
	r=$(probe "$UC" open "$FC4")
	case "$r" in
	EIO) full_eio=$((full_eio + 1)) ;;
	"ok $(vlen s4)") echo $(( $(cat "$W/served.c") + 1 )) >"$W/served.c" ;;
	*) full_other="$full_other $r" ;;
	esac
done
if [ "$full_eio" -gt 0 ] && [ -z "$full_other" ]; then
	ok "full disk: opens keep failing with EIO, except ones whose record fits ($full_eio of 10 EIO)"
else
	not_ok "full disk: opens keep failing with EIO, except ones whose record fits"
	echo "#   $full_eio of 10 EIO, other outcomes:$full_other"
fi
check "full disk: the daemon keeps running" kill -0 "$FS_PID"
sleep 0.5
: >"$stop"; wait "$RA" "$RB" "$RC" 2>/dev/null
rm -f "$D/st/filler"
if wait_probe "$UA" "$FA1" "ok $(vlen s1)" 5; then
	ok "full disk: once space returns the same daemon serves again"
else not_ok "full disk: once space returns the same daemon serves again"; echo "#   got: $GOT"; fi
PROBLEMS=""
reader_check "$W/ra.full" a; ea=$R_ERRS
reader_check "$W/rb.full" b; eb=$R_ERRS
reader_check "$W/rc.full" c; ec=$R_ERRS
case "$ea$eb$ec" in *EIO:*) ok "full disk: the concurrent readers saw EIO while full" ;;
*) not_ok "full disk: the concurrent readers saw EIO while full"; echo "#   errors: $ea / $eb / $ec" ;; esac
bad=$(echo "$ea $eb $ec" | tr ' ' '\n' | grep -v '^EIO:' | grep -v '^$' | tr '\n' ' ')
expect_eq "full disk: readers saw no error but EIO" "$bad" ""
expect_current "full disk: agent-a reads its exact value after" "$UA" "$FA1" s1
expect_current "full disk: agent-b reads its exact value after" "$UB" "$FB2" s2
expect_current "full disk: agent-c reads its exact value after" "$UC" "$FC4" s4
f_audit_checks
expect_eq "full disk: every value received was stored and has its resolve event" "${PROBLEMS#; }" ""
audit_ok "full disk: store integrity_check ok and the audit chain verifies after"
check "full disk: the daemon logs that the audit trail cannot be written" \
	grep -q "cannot write the audit trail" "$LOG"

# read-only: Linux refuses remount,ro (EBUSY) while a process holds a file of the
# filesystem open for writing - the running daemon holds the store and its WAL -
# so the filesystem can only turn read-only under a stopped daemon.
mout=$(mount -o remount,ro "$D/st" 2>&1); mrc=$?
if [ "$mrc" -eq 0 ]; then
	if wait_probe "$UA" "$FA1" EIO 5; then ok "read-only under the running daemon: opens fail with EIO"
	else not_ok "read-only under the running daemon: opens fail with EIO"; echo "#   got: $GOT"; fi
	mount -o remount,rw "$D/st"
else
	case "$mout" in
	*busy*) ok "read-only: remount,ro is refused (busy) while the daemon holds the store open" ;;
	*) not_ok "read-only: remount,ro is refused (busy) while the daemon holds the store open"; echo "#   $mout" ;;
	esac
	check "read-only: the refused remount left the daemon serving" wait_probe "$UB" "$FB2" "ok $(vlen s2)" 5
	stop_fs "$FS_PID"
	expect_run "read-only: remount,ro with the daemon stopped" 0 "" mount -o remount,ro "$D/st"
	start_fs "$CONF" "$W/ro.out"
	if wait_mount "$MNT" "$FS_PID"; then
		expect_probe "read-only: a daemon started on it refuses opens with EIO" "$UA" open "$FA1" EIO
		as_uid "$UB" cat "$FB2" >"$W/got" 2>/dev/null
		expect_eq "read-only: cat gets zero bytes" "$(len "$W/got")" "0"
		stop_fs "$FS_PID"
	else
		wait "$FS_PID" 2>/dev/null; forget "$FS_PID"
		check "read-only: a daemon started on it mounts nothing" eval '! mounted "$MNT"'
		expect_eq "read-only: and says the store is on a read-only filesystem" "$(cat "$W/ro.out")" \
			"scopeholdfs: store '$D/st/store.db' is on a read-only filesystem"
		expect_run "read-only: shadm says so too and exits 1" 1 \
			"shadm: store '$D/st/store.db' is on a read-only filesystem" "$SHADM" -c "$CONF" secret list
	fi
	expect_run "read-only: remount,rw" 0 "" mount -o remount,rw "$D/st"
	start_fs "$CONF" "$LOG"
	if wait_mount "$MNT" "$FS_PID"; then ok "read-only: after remount,rw a daemon mounts"
	else not_ok "read-only: after remount,rw a daemon mounts"; show_log "$LOG"; fi
fi
expect_current "read-only: agent-b reads its exact value after remount,rw" "$UB" "$FB2" s2
audit_ok "read-only: store integrity_check ok and the audit chain verifies after"
stop_fs "$FS_PID"
expect_eq "full disk: the daemon exits 0 on SIGTERM" "$STOP_RC" 0

t_finish

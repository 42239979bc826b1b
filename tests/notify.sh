#!/bin/bash
# notify.sh - scopeholdfs under a service manager: it creates a missing
# mountpoint (/run is empty after a boot), and with $NOTIFY_SOCKET set it
# sends READY=1 (Type=notify) only once the mount answers, then STOPPING=1
# on SIGTERM. A python listener plays systemd's notification socket and, the
# moment READY=1 arrives, reads a granted secret through the mount.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
m_start notify "it mounts" python3

ST=$T_TMP/store MNT=$T_TMP/run/scopehold CONF=$T_TMP/scopehold.ini LOG=$T_TMP/fs.log
LISTEN=$ROOT/tests/fixtures/notify/listen.py
MNTS=$MNT
mkdir -m 0700 "$ST"
mkdir -m 0755 "$T_TMP/run"
: >"$LOG"
write_conf "$CONF" "$ST" "$MNT"
printf 'notify-value-7e1' >"$T_TMP/value"
setup sa init
setup sa provider add svc
setup sa secret set svc/token --from-file "$T_TMP/value"
setup sa project add p
setup sa project attach p svc
setup sa agent add root-svc --uid 0
setup sa assign root-svc p
setup sa grant root-svc svc/token
setup_check "notify setup: shadm commands failed"

# listen NAME SECONDS OUT: start the listener, wait until it is bound
listen() {
	"$PY" "$LISTEN" "$1" "$MNT" "$MNT/self/svc/token" "$2" >"$3" 2>&1 &
	L_PID=$!
	HELPERS="$HELPERS $L_PID"
	for _ in $(seq 100); do grep -q '^listening' "$3" && return 0; sleep 0.05; done
	not_ok "notify: the listener did not start"; cat "$3"; exit 1
}
# wait_line FILE REGEX: up to 10 s for a line in FILE
wait_line() {
	for _ in $(seq 200); do grep -qE "$2" "$1" && return 0; sleep 0.05; done
	return 1
}

# ---- 1. path socket, missing mountpoint -----------------------------------------
check "the mountpoint does not exist before the start" test ! -e "$MNT"
listen "$T_TMP/notify.sock" 30 "$T_TMP/l1.out"
NOTIFY_SOCKET=$T_TMP/notify.sock start_fs "$CONF" "$LOG"
if wait_line "$T_TMP/l1.out" '^read'; then
	ok "READY=1 arrives on \$NOTIFY_SOCKET"
else
	not_ok "READY=1 arrives on \$NOTIFY_SOCKET"; show_log "$LOG"; exit 1
fi
expect_eq "the first datagram is exactly READY=1, sent by the daemon" \
	"$(sed -n 2p "$T_TMP/l1.out")" "msg READY=1 pid $FS_PID"
expect_eq "when READY=1 arrives the mountpoint is a scopeholdfs mount" \
	"$(sed -n 3p "$T_TMP/l1.out")" "fstype fuse.scopeholdfs"
expect_eq "when READY=1 arrives the mount serves the granted secret" \
	"$(sed -n 4p "$T_TMP/l1.out")" "read b'notify-value-7e1'"
check "the missing mountpoint was created as a directory" test -d "$MNT"
expect_eq "the log says the mountpoint was created" \
	"$(grep -c "created the mountpoint $MNT" "$LOG")" "1"
stop_fs "$FS_PID"
expect_eq "SIGTERM: the daemon exits 0" "$STOP_RC" "0"
wait_line "$T_TMP/l1.out" '^msg STOPPING=1'
expect_eq "SIGTERM: STOPPING=1 follows, from the daemon" \
	"$(sed -n 5p "$T_TMP/l1.out")" "msg STOPPING=1 pid $FS_PID"
wait "$L_PID" 2>/dev/null
expect_eq "nothing but READY=1 and STOPPING=1 was sent" "$(grep -c '^msg' "$T_TMP/l1.out")" "2"
check "SIGTERM: the mountpoint is unmounted" eval '! mounted "$MNT"'

# ---- 2. abstract socket, existing mountpoint --------------------------------------
ABS="@scopehold-notify-test-$$"
listen "$ABS" 30 "$T_TMP/l2.out"
NOTIFY_SOCKET=$ABS start_fs "$CONF" "$LOG"
if wait_line "$T_TMP/l2.out" '^read'; then
	expect_eq "abstract socket: READY=1 arrives and the secret reads at that moment" \
		"$(sed -n '2p;4p' "$T_TMP/l2.out" | tr '\n' ' ')" "msg READY=1 pid $FS_PID read b'notify-value-7e1' "
else
	not_ok "abstract socket: READY=1 arrives"; show_log "$LOG"
fi
expect_eq "an existing mountpoint is used as it is (no second 'created')" \
	"$(grep -c "created the mountpoint" "$LOG")" "1"
stop_fs "$FS_PID"
kill "$L_PID" 2>/dev/null; wait "$L_PID" 2>/dev/null

# ---- 3. no service manager, and a mountpoint that cannot be made ------------------
expect_fail_msg "a mountpoint whose parent is missing is refused, not made with its parents" \
	"mountpoint '$T_TMP/no/such/dir' does not exist and cannot be created: No such file or directory" \
	"$SCOPEHOLDFS" -c "$CONF" -f "$T_TMP/no/such/dir"
check "nothing was created along the refused path" test ! -e "$T_TMP/no"
t_finish

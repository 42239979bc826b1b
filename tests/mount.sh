# mount.sh - the harness shared by everything that drives a real scopeholdfs
# mount: tests/e2e.sh, hostile.sh, faults.sh, stress.sh (through
# tests/fixtures/faults/lib.sh) and tests/demo.sh. Sourced after tests/lib.sh;
# plain POSIX sh, because demo.sh runs under sh. It is libfuse's own test
# discipline in one place: skip with a reason without FUSE or root, wait for a
# mount with a deadline while watching the daemon, and on exit always stop our
# daemons (never a reused pid), unmount, and remove the temporary directory
# only when nothing is mounted below it. Then the helpers those suites assert
# with: readers as other uids, the probe, the audit query, exact bytes.
#
# What m_cleanup undoes, kept by the suites (space-separated lists; every
# path is below T_TMP, which has no spaces):
#   DAEMONS  our daemons' pids (start_fs adds, stop_fs and kill9_fs remove)
#   MNTS     FUSE mountpoints          TMPFSES  tmpfs, unmounted after MNTS
#   STOPS    files whose existence ends a reader, writer or holder loop
#   HELPERS  background pids to SIGKILL before anything else
#   FUSECTL_MOUNTED  set when the suite mounted /sys/fs/fuse/connections
# AS_UID_SECS is as_uid's time limit (default 60 s).
AQ="$ROOT/tests/fixtures/e2e/aq.py"
DAEMONS="" MNTS="" TMPFSES="" STOPS="" HELPERS="" FUSECTL_MOUNTED="" M_SUITE=""

# ---- preconditions and the temporary directory --------------------------------
# m_start SUITE WHY TOOL...: skip (exit 0) without /dev/fuse or root (WHY says
# what root is for); fail (exit 1) without a TOOL or the built binaries. Then
# T_TMP (the working directory from now on) with the shared python probes,
# and the cleanup on exit. Sets PY (the system python, reachable by every uid;
# root's own may live in /root) and PYREAL.
m_start() {
	if [ ! -c /dev/fuse ]; then
		skip "$1: /dev/fuse is missing (no FUSE in this kernel or container; try --device /dev/fuse)"
		exit 0
	fi
	if [ "$(id -u)" -ne 0 ]; then
		skip "$1: needs root ($2)"
		exit 0
	fi
	m_suite=$1; shift 2
	for tool in setpriv fusermount3 mountpoint timeout "$@"; do
		if ! command -v "$tool" >/dev/null; then
			not_ok "$m_suite: $tool is missing (run 'make deps')"; exit 1
		fi
	done
	for bin in "$SHADM" "$SCOPEHOLDFS"; do
		if [ ! -x "$bin" ]; then not_ok "$m_suite: $bin is not built (run 'make')"; exit 1; fi
	done
	PY=/usr/bin/python3
	[ -x "$PY" ] || PY=$(command -v python3)
	PYREAL=$(readlink -f "$PY")
	t_tmpdir
	m_trap "$m_suite"
	cd "$T_TMP" || exit 1
	# probes run as other uids: they read their copies, next to the module they import
	install -m 0644 "$ROOT/tests/fixtures/fsio.py" "$ROOT/tests/fixtures/e2e/probe.py" "$T_TMP/"
}

# m_trap NAME: run m_cleanup on every exit (NAME prefixes its one message)
m_trap() {
	M_SUITE=$1
	trap m_cleanup EXIT
	trap 'exit 1' INT TERM HUP
}

# ---- our daemons, and the cleanup that never leaks one ------------------------
mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }
# ours PID: the pid is still one of our scopeholdfs daemons (never signal a reused
# pid); a rebuild while we ran shows as "PATH (deleted)"
ours() {
	exe=$(readlink "/proc/$1/exe" 2>/dev/null)
	[ "${exe% (deleted)}" = "$(readlink -f "$SCOPEHOLDFS")" ]
}
forget() { DAEMONS=$(echo " $DAEMONS " | sed "s/ $1 / /"); }
m_cleanup() {
	for s in $STOPS; do : >"$s" 2>/dev/null; done
	for p in $HELPERS; do kill -KILL "$p" 2>/dev/null; done
	live=""
	for p in $DAEMONS; do ours "$p" && live="$live $p"; done
	DAEMONS=$live
	# a SIGSTOPped daemon handles SIGTERM only once continued
	for p in $DAEMONS; do kill -TERM "$p" 2>/dev/null; kill -CONT "$p" 2>/dev/null; done
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		alive=""
		for p in $DAEMONS; do kill -0 "$p" 2>/dev/null && alive=y; done
		[ -z "$alive" ] && break
		sleep 0.2
	done
	for p in $DAEMONS; do kill -KILL "$p" 2>/dev/null; done
	for m in $MNTS; do
		while mounted "$m"; do fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" || break; done
	done
	wait 2>/dev/null   # readers that were blocked on the mount are released by now
	for m in $TMPFSES; do
		while mounted "$m"; do umount -l "$m" || break; done
	done
	[ -n "$FUSECTL_MOUNTED" ] && umount /sys/fs/fuse/connections 2>/dev/null
	cd /
	if awk -v t="$T_TMP/" 'index($2, t) == 1 { f = 1 } END { exit f }' /proc/mounts; then
		rm -rf "$T_TMP"
	else
		echo "# $M_SUITE: something is still mounted under $T_TMP; left it in place"
	fi
}

# m_now: seconds since the epoch (sh has no $SECONDS)
m_now() { date +%s; }
# start_fs CONF LOG [MOUNTPOINT]: the daemon in the foreground, in the background,
# output appended to LOG; without MOUNTPOINT it mounts the one in CONF. Sets FS_PID.
start_fs() {
	"$SCOPEHOLDFS" -c "$1" -f ${3:+"$3"} >>"$2" 2>&1 &
	FS_PID=$!
	DAEMONS="$DAEMONS $FS_PID"
}
# wait_mount MOUNTPOINT PID: 0 once mounted; 1 if the daemon died or 10 s passed
wait_mount() {
	m_deadline=$(($(m_now) + 10))
	while [ "$(m_now)" -lt "$m_deadline" ]; do
		if mountpoint -q "$1" 2>/dev/null && mounted "$1"; then return 0; fi
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
show_log() { sed 's/^/#   fs: /' "$1" | tail -n 15; }
# expect_mount WHAT MOUNTPOINT LOG: ok once FS_PID mounted it; else not ok, the log, exit 1
expect_mount() {
	if wait_mount "$2" "$FS_PID"; then ok "$1"
	else not_ok "$1"; show_log "$3"; exit 1; fi
}
# require_mount WHAT MOUNTPOINT LOG: the same, silent when it mounts
require_mount() {
	wait_mount "$2" "$FS_PID" && return 0
	not_ok "$1"; show_log "$3"; exit 1
}
# stop_fs PID: SIGTERM, wait up to 10 s; sets STOP_RC (exit status, or "hung")
stop_fs() {
	kill -TERM "$1" 2>/dev/null
	m_deadline=$(($(m_now) + 10))
	while kill -0 "$1" 2>/dev/null && [ "$(m_now)" -lt "$m_deadline" ]; do sleep 0.05; done
	if kill -0 "$1" 2>/dev/null; then
		STOP_RC=hung; kill -KILL "$1" 2>/dev/null; wait "$1" 2>/dev/null
	else
		wait "$1" 2>/dev/null; STOP_RC=$?
	fi
	forget "$1"
}
# kill9_fs PID: SIGKILL and reap, quietly (no "Killed" job notice)
kill9_fs() { { kill -KILL "$1"; wait "$1"; } 2>/dev/null; forget "$1"; }

# ---- the store --------------------------------------------------------------------
# write_conf FILE STOREDIR MOUNTPOINT: a config with the store and key in STOREDIR
write_conf() {
	cat >"$1" <<EOF
[store]
path = $2/store.db
key_file = $2/master.key
[mount]
mountpoint = $3
EOF
}
sa() { "$SHADM" -c "$CONF" "$@"; }
# setup CMD...: a setup step; a failure is collected in SETUP_ERR (stderr in
# T_TMP/setup.err) and reported once by setup_check
SETUP_ERR=""
setup() { "$@" >/dev/null 2>>"$T_TMP/setup.err" || SETUP_ERR="$SETUP_ERR; $*"; }
# setup_check WHAT: not ok (with the failed steps and their stderr) and exit 1
# when a setup step failed
setup_check() {
	[ -z "$SETUP_ERR" ] && return 0
	not_ok "$1:${SETUP_ERR#;}"
	sed 's/^/#   /' "$T_TMP/setup.err" | head -20
	exit 1
}

# ---- callers and assertions ---------------------------------------------------------
# as_uid UID CMD...: CMD as that uid and gid, no groups; a hung FUSE request
# cannot hang the suite (FUSE waits are killable)
as_uid() { u=$1; shift; timeout -s KILL "${AS_UID_SECS:-60}" setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }
# probe UID OP PATH [ARG]: one call by that uid (tests/fixtures/e2e/probe.py);
# prints the result or the errno name
probe() { u=$1; shift; as_uid "$u" "$PY" "$T_TMP/probe.py" "$@" 2>&1; }
# aq OP FILTER...: query the audit trail (see tests/fixtures/e2e/aq.py)
aq() { sa --json audit 2>/dev/null | "$PY" "$AQ" "$@"; }
len() { wc -c <"$1" | tr -d ' '; }
# same_bytes WHAT GOT_FILE WANT_FILE
same_bytes() {
	if cmp -s "$2" "$3"; then ok "$1"
	else not_ok "$1"; printf '#   got %s bytes: %s\n' "$(len "$2")" "$(head -c 80 "$2" | od -An -c | head -2 | tr -s ' ')"; fi
}
# expect_ge WHAT GOT MIN
expect_ge() {
	if [ -n "$2" ] && [ "$2" -ge "$3" ] 2>/dev/null; then ok "$1"
	else not_ok "$1"; printf '#   got %s, want >= %s\n' "$2" "$3"; fi
}
# expect_fail_msg WHAT MSG CMD...: CMD exits non-zero, its stderr contains MSG and
# it printed nothing (stdout stays in T_TMP/out)
expect_fail_msg() {
	what=$1 msg=$2; shift 2
	"$@" >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?
	if [ "$rc" -ne 0 ] && grep -qF -- "$msg" "$T_TMP/err" && [ ! -s "$T_TMP/out" ]; then ok "$what"
	else not_ok "$what"; printf '#   exit %s, %s bytes out, stderr: %s\n' "$rc" "$(len "$T_TMP/out")" "$(head -c 300 "$T_TMP/err")"; fi
}
# expect_verify WHAT: shadm audit verify exits 0 saying the chain is intact
# (the event count is appended to WHAT)
expect_verify() {
	vout=$(sa audit verify 2>&1); vrc=$?
	if [ "$vrc" -eq 0 ] && echo "$vout" | grep -qE '^audit chain intact: [0-9]+ events$'; then
		ok "$1 ($vout)"
	else not_ok "$1"; echo "#   exit $vrc: $vout"; fi
}

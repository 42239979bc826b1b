#!/bin/bash
# exebind.sh - what an executable binding (--exe, --exe-sha256) must mean,
# against a real scopeholdfs mount and real attackers (issue 14):
#  1. a process of the agent's own uid that does not run the bound program
#     as the kernel started it is refused with reason exe-unverified: one
#     that rewrote its /proc/PID/exe in a user namespace (PR_SET_MM_MAP),
#     one in any other user namespace, the bound binary with an injected
#     library (LD_PRELOAD) or under ptrace, and - as real root, where only
#     the mapping check can tell - a process whose link was changed with
#     PR_SET_MM_EXE_FILE; the bound binary run plainly still reads;
#  2. hashing is no denial of service: a uid that cannot match is never
#     hashed for, however large its executable; the agent's own uid gets an
#     oversized executable refused at once (max_exe_hash_bytes); other
#     agents' reads keep completing while attackers loop, and the daemon
#     stops on SIGTERM in the middle of it.
# The attack programs are tests/attack/*.c (built by make into
# $B/tests/attack); the harness is tests/mount.sh.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
AS_UID_SECS=30
m_start exebind "it mounts, and runs attackers as other uids" unshare strace truncate

UX=24101 UP=24102 UA=24103 UH=24104 UY=24105 UZ=24110   # need not exist
ST=$T_TMP/store VALS=$T_TMP/vals MNT=$T_TMP/mnt CONF=$T_TMP/scopehold.ini LOG=$T_TMP/fs.log
ATT=$T_TMP/attack
MNTS="$MNT" STOPS=$T_TMP/stop
mkdir -m 0700 "$ST" "$VALS"
mkdir -m 0755 "$MNT" "$ATT" "$T_TMP/huge" "$T_TMP/ww"
for f in exeswap libexeswap.so libsteal.so traceme; do
	if [ ! -f "$ROOT/$B/tests/attack/$f" ]; then not_ok "exebind: $B/tests/attack/$f is not built (run 'make')"; exit 1; fi
	install -m 0755 "$ROOT/$B/tests/attack/$f" "$ATT/$f"
done
# the attacker's own library, as the agent's uid would have written it
install -d -m 0755 -o "$UX" -g "$UX" "$T_TMP/own"
install -m 0755 -o "$UX" -g "$UX" "$ROOT/$B/tests/attack/libsteal.so" "$T_TMP/own/libsteal.so"
# a root-owned library anyone may write
install -m 0777 "$ROOT/$B/tests/attack/libsteal.so" "$T_TMP/ww/libsteal.so"
chmod 0777 "$T_TMP/ww/libsteal.so"
: >"$LOG"

# ---- the store ---------------------------------------------------------------------
write_conf "$CONF" "$ST" "$MNT"
# 1 MiB: /usr/bin/cat (tens of KiB) is hashed, python3 (MiBs) is refused unhashed
printf 'max_exe_hash_bytes = 1048576\n' >>"$CONF"
printf 'ghp_exebindTOKEN-41c7\n' >"$VALS/token"
CAT_SHA=$(sha256sum /usr/bin/cat | cut -d' ' -f1)
PY_SHA=$(sha256sum "$PYREAL" | cut -d' ' -f1)
setup sa init
setup sa provider add github
setup sa secret set github/token --from-file "$VALS/token"
setup sa project add p
setup sa project attach p github
setup sa agent add bound --uid "$UX" --exe /usr/bin/cat --exe-sha256 "$CAT_SHA"
setup sa agent add pathonly --uid "$UP" --exe /usr/bin/cat
setup sa agent add plain --uid "$UA"
setup sa agent add shaonly --uid "$UY" --exe-sha256 "$CAT_SHA"
setup sa agent add bigpy --uid "$UH" --exe "$PYREAL" --exe-sha256 "$PY_SHA"
setup sa agent add rootcat --uid 0 --exe /usr/bin/cat --exe-sha256 "$CAT_SHA"
for a in bound pathonly plain shaonly bigpy rootcat; do setup sa assign "$a" p; setup sa grant "$a" github/token; done
setup_check "exebind setup: shadm commands failed"
ok "exebind setup: agents bound to cat (path+sha256, path, sha256), python3, root, and a plain one"

start_fs "$CONF" "$LOG" "$MNT"
expect_mount "scopeholdfs mounts $MNT within 10 s" "$MNT" "$LOG"
MAIN_PID=$FS_PID
F=$MNT/bound/github/token FP=$MNT/pathonly/github/token FR=$MNT/rootcat/github/token
TOKEN=$(cat "$VALS/token")
# denied EVENT...: the deny events of agent AGENT with reason exe-unverified
unverified() { aq count type=deny agent="$1" reason=exe-unverified "${@:2}"; }

# ---- 1. the bound program, run as the kernel started it, reads --------------------------
expect_eq "bound: /usr/bin/cat of uid $UX reads bound's secret" "$(as_uid "$UX" /usr/bin/cat "$F" 2>&1)" "$TOKEN"
expect_eq "bound: the path-only agent's cat reads" "$(as_uid "$UP" /usr/bin/cat "$FP" 2>&1)" "$TOKEN"
expect_eq "bound: root's /usr/bin/cat reads the uid-0 agent's secret" "$(/usr/bin/cat "$FR" 2>&1)" "$TOKEN"
expect_eq "bound: a second read still reads (the digest is cached)" \
	"$(as_uid "$UX" /usr/bin/cat "$F" 2>&1)" "$TOKEN"

# ---- 2. /proc/PID/exe rewritten in a user namespace (PR_SET_MM_MAP) ----------------------
# The attacker unmaps its own program and points its exe link at /usr/bin/cat:
# path and sha256 both match. It is in a user namespace the daemon is not in.
expect_eq "exe rewrite: uid $UX in its own user namespace, exe link set to /usr/bin/cat, is EACCES" \
	"$(as_uid "$UX" unshare -Ur "$ATT/exeswap" /usr/bin/cat "$F" 2>&1)" "open:EACCES"
expect_eq "exe rewrite: the same against the path-only agent is EACCES" \
	"$(as_uid "$UP" unshare -Ur "$ATT/exeswap" /usr/bin/cat "$FP" 2>&1)" "open:EACCES"
expect_eq "exe rewrite: the same against the sha256-only agent is EACCES" \
	"$(as_uid "$UY" unshare -Ur "$ATT/exeswap" /usr/bin/cat "$MNT/shaonly/github/token" 2>&1)" "open:EACCES"
expect_fail_msg "user namespace: even the real /usr/bin/cat in a user namespace is refused for an exe-bound agent" \
	"Permission denied" as_uid "$UX" unshare -Ur /usr/bin/cat "$F"
expect_eq "user namespace: an agent bound to no executable still reads from one (uid is the boundary)" \
	"$(as_uid "$UA" unshare -Ur /usr/bin/cat "$MNT/plain/github/token" 2>&1)" "$TOKEN"
# Real root needs no namespace: PR_SET_MM_EXE_FILE. Only the mapping check sees it.
expect_eq "exe rewrite as root (PR_SET_MM_EXE_FILE, no namespace): the uid-0 agent's secret is EACCES" \
	"$("$ATT/exeswap" /usr/bin/cat "$FR" 2>&1)" "open:EACCES"
expect_eq "exe rewrite as root, bound binary also mapped executable (not as its program): EACCES" \
	"$("$ATT/exeswap" --map /usr/bin/cat "$FR" 2>&1)" "open:EACCES"

# ---- 3. a library injected into the bound binary (LD_PRELOAD) ---------------------------
steal() { as_uid "$1" env STEAL_PATH="$2" LD_PRELOAD="$3" /usr/bin/cat /dev/null 2>&1; }
expect_eq "LD_PRELOAD: a library owned by uid $UX, in the bound cat, is EACCES" \
	"$(steal "$UX" "$F" "$T_TMP/own/libsteal.so")" "EACCES"
expect_eq "LD_PRELOAD: a root-owned library that anyone may write (0777) is EACCES" \
	"$(steal "$UX" "$F" "$T_TMP/ww/libsteal.so")" "EACCES"
expect_eq "LD_PRELOAD: the path-only agent's cat with the uid's own library is EACCES" \
	"$(steal "$UP" "$FP" "$T_TMP/own/libsteal.so")" "EACCES"
expect_eq "LD_PRELOAD: a root-owned read-only library is admitted (root installed it: documented limit)" \
	"$(steal "$UX" "$F" "$ATT/libsteal.so")" "$TOKEN"

# ---- 4. the bound binary under ptrace ---------------------------------------------------
expect_fail_msg "ptrace: cat started under PTRACE_TRACEME by uid $UX is refused" \
	"Permission denied" as_uid "$UX" "$ATT/traceme" /usr/bin/cat "$F"
expect_fail_msg "ptrace: cat run under strace by uid $UX is refused" \
	"Permission denied" as_uid "$UX" strace -o /dev/null /usr/bin/cat "$F"
# attach to a running cat before it opens: it reads stdin (a fifo) first
mkfifo "$T_TMP/fifo"; chmod 0666 "$T_TMP/fifo"
as_uid "$UX" sh -c 'exec /usr/bin/cat - "$1" <"$2"' sh "$F" "$T_TMP/fifo" >"$T_TMP/att.out" 2>&1 &
CATP=$!
exec 9>"$T_TMP/fifo"
for _ in $(seq 100); do
	CPID=$(pgrep -u "$UX" -x cat | head -1)
	[ -n "$CPID" ] && break; sleep 0.05
done
as_uid "$UX" strace -o /dev/null -p "$CPID" 9>&- 2>/dev/null &
STP=$!
HELPERS="$HELPERS $CATP $STP"
for _ in $(seq 100); do
	[ "$(awk '/^TracerPid:/ {print $2}' "/proc/$CPID/status" 2>/dev/null)" != 0 ] && break; sleep 0.05
done
exec 9>&-
wait "$CATP"
expect_eq "ptrace: strace -p attached to a running cat before its open: the open is refused" \
	"$(cat "$T_TMP/att.out")" "/usr/bin/cat: $F: Permission denied"
wait "$STP" 2>/dev/null

sleep 1.2   # let coalesced denials reach the trail
expect_ge "audit: the rewritten exe is denied exe-unverified, naming /usr/bin/cat" \
	"$(unverified bound uid=$UX exe=/usr/bin/cat)" 1
expect_ge "audit: the path-only agent's refusals are exe-unverified too" "$(unverified pathonly uid=$UP)" 1
expect_ge "audit: root's rewritten exe is denied exe-unverified" "$(unverified rootcat uid=0)" 1
expect_eq "audit: no resolve of bound's secret by anything but the plain cat runs and the root-owned library" \
	"$(aq count type=resolve agent=bound)" "3"

# ---- 5. hashing: never for a stranger, bounded for the agent's own uid ---------------
# A sparse 1 TiB copy of cat: reading it all would take the daemon minutes.
cp /usr/bin/cat "$T_TMP/huge/cat"; truncate -s 1T "$T_TMP/huge/cat"; chmod 0755 "$T_TMP/huge/cat"
cp /usr/bin/ls "$T_TMP/huge/ls"; truncate -s 1T "$T_TMP/huge/ls"; chmod 0755 "$T_TMP/huge/ls"
expect_fail_msg "huge exe: the sha256-only agent's own uid running a 1 TiB executable is refused at once" \
	"Permission denied" as_uid "$UY" "$T_TMP/huge/cat" "$MNT/shaonly/github/token"
expect_fail_msg "max_exe_hash_bytes: python3 (larger than 1 MiB) bound by sha256 is refused unhashed" \
	"EACCES" as_uid "$UH" "$PY" "$T_TMP/probe.py" cat "$MNT/bigpy/github/token"
check "max_exe_hash_bytes: the daemon says why, once per executable" \
	grep -qF "is larger than [mount] max_exe_hash_bytes (1048576)" "$LOG"
sleep 1.2
expect_ge "audit: the oversized executables are denied exe-unverified" \
	"$(( $(unverified shaonly uid=$UY) + $(unverified bigpy uid=$UH) ))" 2
expect_fail_msg "config: max_exe_hash_bytes must be a positive number of bytes" \
	"invalid value for 'max_exe_hash_bytes': '1G'" \
	sh -c 'printf "[mount]\nmax_exe_hash_bytes = 1G\n" >"$1"; "$2" -c "$1" agent list' sh "$T_TMP/bad.ini" "$SHADM"

# Strangers (uid $UZ matches no agent) loop the huge ls over a sha256-bound
# agent's directory, the top listing and self, six at a time, while plain
# reads its secret 40 times and bound's cat 10 times.
rm -f "$T_TMP/stop"
LOOPS=""
for i in 1 2 3 4 5 6; do
	(while [ ! -e "$T_TMP/stop" ]; do
		timeout -s KILL 5 setpriv --reuid="$UZ" --regid="$UZ" --clear-groups \
			"$T_TMP/huge/ls" -l "$MNT/" "$MNT/self/" "$MNT/bound/github" >/dev/null 2>&1
		sleep 0.02
	done) &
	LOOPS="$LOOPS $!"
done
HELPERS="$HELPERS $LOOPS"
served=0
for _ in $(seq 40); do
	[ "$(as_uid "$UA" /usr/bin/cat "$MNT/plain/github/token" 2>&1)" = "$TOKEN" ] && served=$((served + 1))
done
for _ in $(seq 10); do
	[ "$(as_uid "$UX" /usr/bin/cat "$F" 2>&1)" = "$TOKEN" ] && served=$((served + 1))
done
expect_eq "hash DoS: with strangers looping a 1 TiB executable, all 50 granted reads complete" "$served" "50"
check "hash DoS: the strangers' requests never made the daemon hash (no size refusal logged for them)" \
	eval '! grep -q "huge/ls" "$LOG"'
stop_fs "$MAIN_PID"
expect_eq "hash DoS: the daemon stops on SIGTERM while the strangers loop (exit 0)" "$STOP_RC" "0"
[ "$STOP_RC" = 0 ] || show_log "$LOG"
: >"$T_TMP/stop"
wait $LOOPS
expect_verify "after every attack shadm audit verify passes"

t_finish

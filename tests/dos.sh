#!/bin/bash
# dos.sh - denial of service and a truthful trail under hostile load (issues
# 13 and 14), on a real scopeholdfs mount with real uids:
#   - a granted agent hoarding thousands of open values: refused with EMFILE
#     and a too-many-open denial past [mount] max_open_per_uid, every other
#     agent keeps reading, the daemon's memory map does not grow per open,
#     and the daemon still stops on SIGTERM while the files are held;
#   - coalesced denials name each process truly: a denial by `ls` is never
#     written as `cat`'s pid and exe, and a uid spawning a process per
#     attempt still makes a bounded number of rows;
#   - a caller that matches no agent, or several, walking MOUNT/self is
#     recorded (no-agent / ambiguous-agent) instead of missing silently.
# The harness is tests/mount.sh (skip without FUSE or root, mount with a
# deadline, always unmount and kill our daemons on exit); the hoarder is
# tests/fixtures/dos/holder.py.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
m_start dos "it mounts and runs callers as other uids"

UX=24201 UV=24202 UN=24203 UT=24204 US=24205 UP=24206   # need not exist
ST=$T_TMP/store VALS=$T_TMP/vals MNT=$T_TMP/mnt CONF=$T_TMP/scopehold.ini LOG=$T_TMP/fs.log
# on exit: holders still waiting for their stop file are released before the unmount
MNTS=$MNT STOPS=""
mkdir -m 0700 "$ST" "$VALS"
mkdir -m 0755 "$MNT"
mkdir -m 1777 "$T_TMP/x"
install -m 0644 "$ROOT/tests/fixtures/dos/holder.py" "$T_TMP/"
: >"$LOG"
N=2000          # opens by the hoarder: thousands, far past the default cap
CAP=256         # the documented default of [mount] max_open_per_uid

# ---- the store ------------------------------------------------------------------
write_conf "$CONF" "$ST" "$MNT"
printf 'ghp_dosHOARD-7c21\n'   >"$VALS/hoard"
printf 'sk-dosVICTIM-19ab'     >"$VALS/victim"
setup sa init
setup sa provider add github
setup sa secret set github/hoard --from-file "$VALS/hoard"
setup sa secret set github/victim --from-file "$VALS/victim"
setup sa project add px
setup sa project attach px github/hoard
setup sa project add pv
setup sa project attach pv github/victim
setup sa agent add hoarder --uid "$UX"
setup sa agent add victim --uid "$UV"
setup sa agent add twin-1 --uid "$UT"
setup sa agent add twin-2 --uid "$UT"
setup sa assign hoarder px
setup sa assign victim pv
setup sa grant hoarder github/hoard
setup sa grant victim github/victim
setup_check "dos setup: shadm commands failed"
ok "dos setup: a hoarder, a victim, twins sharing a uid"

# a bad cap is refused before anything is mounted
printf '[mount]\nmax_open_per_uid = 0\n' >"$T_TMP/bad.ini"
expect_fail_msg "max_open_per_uid = 0: scopeholdfs refuses the config, naming file and line" \
	"$T_TMP/bad.ini:2: invalid value for 'max_open_per_uid': '0'" \
	timeout 10 "$SCOPEHOLDFS" -c "$T_TMP/bad.ini" -f "$MNT"

start_fs "$CONF" "$LOG" "$MNT"
expect_mount "scopeholdfs mounts $MNT within 10 s" "$MNT" "$LOG"
FX=$MNT/hoarder/github/hoard
FV=$MNT/victim/github/victim

# wait_file FILE: its content once it is there (30 s at most)
wait_file() {
	d=$(($(m_now) + 30))
	while [ ! -s "$1" ] && [ "$(m_now)" -lt "$d" ]; do sleep 0.05; done
	cat "$1" 2>/dev/null
}
# settle MIN CMD...: run CMD until it prints a number >= MIN (10 s at most) and
# print that; the daemon writes held denial counts about once a second, so a
# count is waited for, never assumed after a sleep
settle() {
	want=$1; shift
	d=$(($(m_now) + 10))
	while :; do
		got=$("$@")
		[ "$got" -ge "$want" ] 2>/dev/null && break
		[ "$(m_now)" -ge "$d" ] && break
		sleep 0.2
	done
	echo "$got"
}
# pids FILTER...: how many distinct pids the matching events name
pids() { aq show "$@" | "$PY" -c 'import json, sys; print(len({json.loads(l)["pid"] for l in sys.stdin}))'; }
# maps: the daemon's memory map in lines, less the two (stack, guard page) of
# each of its threads: libfuse starts workers as requests pile up, and their
# stacks are not what these checks are about (values' memory is)
maps() {
	local lines threads
	lines=$(wc -l <"/proc/$FS_PID/maps" | tr -d ' ')
	threads=$(awk '/^Threads:/ { print $2 }' "/proc/$FS_PID/status")
	echo $((lines - 2 * threads))
}
# hold NAME UID PATH N: a holder in the background (pid in HELD); its report
# lands in T_TMP/x/NAME, and it closes everything once T_TMP/NAME.go exists
hold() {
	STOPS="$STOPS $T_TMP/$1.go"
	as_uid "$2" "$PY" "$T_TMP/holder.py" "$3" "$4" "$T_TMP/x/$1" "$T_TMP/$1.go" >/dev/null 2>"$T_TMP/$1.err" &
	HELD=$!
}
# release NAME PID: let that holder close its files, and wait for it
release() { : >"$T_TMP/$1.go"; wait "$2" 2>/dev/null; }

# ---- 1. a hoarder of open values ----------------------------------------------------
# warm up: both agents read once, so the baseline map has what any open maps
expect_eq "the hoarder reads its secret" "$(probe "$UX" open "$FX")" "ok $(len "$VALS/hoard")"
expect_eq "the victim reads its secret" "$(probe "$UV" open "$FV")" "ok $(len "$VALS/victim")"
maps_before=$(maps)
seq_before=$(aq maxseq)
hold hoard "$UX" "$FX" "$N"
HOARD_PID=$HELD
rep=$(wait_file "$T_TMP/x/hoard")
HPID=${rep%% *}
expect_eq "hoard: of $N opens held at once, $CAP succeed and the rest are EMFILE" \
	"${rep#* }" "EMFILE:$((N - CAP)) ok:$CAP first:$(len "$VALS/hoard")"
maps_held=$(maps)
grow=$((maps_held - maps_before))
# (one guarded mapping per value was 3 lines each: hundreds here)
if [ "$grow" -lt 64 ]; then
	ok "hoard: $CAP values held open grow the daemon's memory map by fewer than 64 lines ($maps_before -> $maps_held)"
else
	not_ok "hoard: $CAP values held open grow the daemon's memory map by fewer than 64 lines"
	echo "#   $maps_before -> $maps_held lines"
fi
expect_eq "hoard: another agent's reads all complete meanwhile" "$(probe "$UV" flood "$FV" 200)" "ok:200"
expect_eq "hoard: another agent reads the right bytes meanwhile" "$(probe "$UV" open "$FV")" \
	"ok $(len "$VALS/victim")"
hold victim "$UV" "$FV" 100
vrep=$(wait_file "$T_TMP/x/victim")
expect_eq "hoard: another agent may hold 100 values of its own meanwhile" "${vrep#* }" \
	"ok:100 first:$(len "$VALS/victim")"
release victim "$HELD"
expect_eq "hoard: the hoarder's next open is EMFILE too" "$(probe "$UX" open "$FX")" "EMFILE"
q_deny="type=deny agent=hoarder secret=github/hoard reason=too-many-open uid=$UX seq>$seq_before"
expect_eq "hoard: deny events (reason too-many-open) count the $((N - CAP + 1)) refused opens" \
	"$(settle $((N - CAP + 1)) aq sum $q_deny)" "$((N - CAP + 1))"
rows=$(aq count $q_deny)
if [ "$rows" -ge 1 ] && [ "$rows" -le 20 ]; then ok "hoard: ... in at most 20 rows ($rows)"
else not_ok "hoard: ... in at most 20 rows"; echo "#   got $rows rows"; fi
expect_eq "hoard: the hoarding process's rows name its pid and executable" \
	"$(aq count $q_deny pid=$HPID exe="$PYREAL")" "$(aq count $q_deny pid=$HPID)"
expect_ge "hoard: ... at least one of them" "$(aq count $q_deny pid=$HPID exe="$PYREAL")" 1
expect_eq "hoard: no resolve event for a refused open" \
	"$(aq count type=resolve agent=hoarder uid=$UX seq\>$seq_before)" "$CAP"
release hoard "$HOARD_PID"
expect_eq "hoard: once the hoarder closes, its next open works" "$(probe "$UX" open "$FX")" \
	"ok $(len "$VALS/hoard")"

# ---- 2. coalesced denials name each process truly ------------------------------------
# A stranger (no agent) reads the hoarder's secret with cat, then lists it with ls,
# each twice; `exec` keeps the pid the shell printed, so every row can be tied to
# the program that made it. Twice in one process: the second is a counted repeat.
F=$MNT/hoarder/github
seq_before=$(aq maxseq)
as_uid "$US" sh -c 'echo $$ >"$1"; exec cat "$2/hoard" "$2/hoard"' sh "$T_TMP/x/cat.pid" "$F" 2>/dev/null
as_uid "$US" sh -c 'echo $$ >"$1"; exec ls "$2" "$2"' sh "$T_TMP/x/ls.pid" "$F" >/dev/null 2>&1
CAT_PID=$(cat "$T_TMP/x/cat.pid") LS_PID=$(cat "$T_TMP/x/ls.pid")
q_s="type=deny agent=hoarder reason=uid uid=$US seq>$seq_before"
settle 4 aq sum $q_s "exe=/usr/bin/cat|/usr/bin/ls" >/dev/null
cat_rows=$(aq count $q_s exe=/usr/bin/cat) ls_rows=$(aq count $q_s exe=/usr/bin/ls)
expect_ge "names: cat's denial is recorded under cat" "$cat_rows" 1
expect_ge "names: ls's denial is recorded under ls" "$ls_rows" 1
expect_eq "names: every cat row has cat's pid ($CAT_PID)" "$(aq count $q_s exe=/usr/bin/cat pid=$CAT_PID)" "$cat_rows"
expect_eq "names: every ls row has ls's pid ($LS_PID), never cat's" "$(aq count $q_s exe=/usr/bin/ls pid=$LS_PID)" "$ls_rows"
expect_eq "names: no row of this stranger names another process" \
	"$(aq count $q_s)" "$((cat_rows + ls_rows))"

# The daemon keeps the pidfd of each thread's process between requests (caller.c):
# what it records must still be the process and program that asked.
# A process that is refused, then execs another program under the same pid: the
# second refusal names the new program.
UE=24207 UR=24208   # strangers of their own, so every process is named (not "*")
seq_before=$(aq maxseq)
as_uid "$UE" "$PY" -c 'import os, sys
try: open(sys.argv[1]).read()
except OSError: pass
print(os.getpid(), flush=True)
os.execv("/usr/bin/cat", ["cat", sys.argv[1]])' "$F/hoard" >"$T_TMP/x/exec.pid" 2>/dev/null
EPID=$(cat "$T_TMP/x/exec.pid")
q_e="type=deny agent=hoarder reason=uid uid=$UE seq>$seq_before"
settle 2 aq sum $q_e >/dev/null
expect_eq "names: refused, then exec'd under the same pid: one row as python, one as cat" \
	"$(aq count $q_e pid="$EPID" exe="$PYREAL") $(aq count $q_e pid="$EPID" exe=/usr/bin/cat) $(aq count $q_e)" \
	"1 1 2"
# A thread of a process is refused and ends, the process lives on; a new process
# gets the thread's id as its pid (set through ns_last_pid; other processes forking
# meanwhile may take it first, so a few tries) and is refused: it is named itself,
# never as the living process that once had a thread of that id.
seq_before=$(aq maxseq)
as_uid "$UR" "$PY" -c 'import os, sys, threading, time
tid = []
def reader():
    tid.append(threading.get_native_id())
    try: open(sys.argv[1]).read()
    except OSError: pass
t = threading.Thread(target=reader); t.start(); t.join()
print(os.getpid(), tid[0], flush=True)
while not os.path.exists(sys.argv[2]): time.sleep(0.05)' "$F/hoard" "$T_TMP/x/thread.stop" \
	>"$T_TMP/x/thread.pid" 2>/dev/null &
THR=$!
for _ in $(seq 200); do [ -s "$T_TMP/x/thread.pid" ] && break; sleep 0.05; done
read -r TGID TTID <"$T_TMP/x/thread.pid"
reused=0
for _ in $(seq 50); do
	[ -n "$TTID" ] || break
	echo $((TTID - 1)) 2>/dev/null >/proc/sys/kernel/ns_last_pid || break
	setpriv --reuid="$UR" --regid="$UR" --clear-groups \
		sh -c '[ "$$" = "$1" ] || exit 3; exec cat "$2"' sh "$TTID" "$F/hoard" 2>/dev/null
	[ $? -ne 3 ] && { reused=1; break; }
done
touch "$T_TMP/x/thread.stop"
wait "$THR"
q_r="type=deny agent=hoarder reason=uid uid=$UR seq>$seq_before"
if [ "$reused" = 1 ]; then
	settle 2 aq sum $q_r >/dev/null
	expect_eq "names: the thread's refusal names its process ($TGID), as python" \
		"$(aq count $q_r pid="$TGID" exe="$PYREAL") $(aq count $q_r pid="$TGID")" "1 1"
	expect_eq "names: the process that reused the thread id $TTID is named itself, as cat" \
		"$(aq count $q_r pid="$TTID" exe=/usr/bin/cat) $(aq count $q_r)" "1 2"
else
	skip "names: could not give a new process the ended thread's id (ns_last_pid)"
fi

# A uid spawning a new process per attempt: rows stay bounded, nothing is lost.
# (another stranger uid: the first one's processes are still named in this window)
seq_before=$(aq maxseq)
as_uid "$UP" sh -c 'for i in $(seq 40); do cat "$1" 2>/dev/null; done; exit 0' sh "$F/hoard"
q_p="type=deny agent=hoarder reason=uid uid=$UP seq>$seq_before"
expect_ge "spawn: the deny events count all 40 processes' attempts" "$(settle 40 aq sum $q_p)" 40
rows=$(aq count $q_p)
if [ "$rows" -le 12 ]; then ok "spawn: 40 processes of one uid make at most 12 rows ($rows)"
else not_ok "spawn: 40 processes of one uid make at most 12 rows"; echo "#   got $rows rows"; fi
expect_eq "spawn: 8 processes are named by pid, as cat" "$(pids $q_p exe=/usr/bin/cat)" "8"
expect_ge "spawn: the others' attempts are counted in pid -1 exe \"*\" rows" \
	"$(aq sum $q_p exe='*' pid=-1)" 30

# ---- 3. silent misses of MOUNT/self --------------------------------------------------
seq_before=$(aq maxseq)
expect_eq "self: a uid matching no agent gets ENOENT for MOUNT/self/..." \
	"$(probe "$UN" open "$MNT/self/github/hoard")" "ENOENT"
pidout=$(as_uid "$UN" "$PY" "$T_TMP/probe.py" pidopen "$MNT/self/github/hoard" 2>&1)
NPID=${pidout%% *}
q_n="type=deny agent=self reason=no-agent uid=$UN seq>$seq_before"
expect_ge "self: ... recorded as a deny with reason no-agent" "$(settle 2 aq sum $q_n)" 2
expect_ge "self: ... naming the process (pid $NPID, its exe)" "$(aq count $q_n pid=$NPID exe="$PYREAL")" 1
expect_eq "self: twins sharing a uid get ENOENT for MOUNT/self/..." \
	"$(probe "$UT" open "$MNT/self/github/hoard")" "ENOENT"
expect_ge "self: ... recorded as a deny with reason ambiguous-agent" \
	"$(settle 1 aq sum type=deny agent=self reason=ambiguous-agent uid=$UT seq\>$seq_before)" 1
seq_before=$(aq maxseq)
q_n="type=deny agent=self reason=no-agent uid=$UN seq>$seq_before"
expect_eq "self: 500 walks by a stranger are all ENOENT" "$(probe "$UN" flood "$MNT/self/github/hoard" 500)" "ENOENT:500"
expect_ge "self: ... counted in full" "$(settle 500 aq sum $q_n)" 500
rows=$(aq count $q_n)
if [ "$rows" -le 20 ]; then ok "self: ... in at most 20 rows ($rows)"
else not_ok "self: ... in at most 20 rows"; echo "#   got $rows rows"; fi
expect_eq "self: the agent's own walk still works" "$(probe "$UV" open "$MNT/self/github/victim")" \
	"ok $(len "$VALS/victim")"
expect_verify "the audit chain verifies after the attacks"

# ---- 4. SIGTERM while thousands of opens are held --------------------------------------
hold hoard2 "$UX" "$FX" "$N"
rep=$(wait_file "$T_TMP/x/hoard2")
expect_eq "stop: a hoarder holds $CAP values again" "${rep#* }" "EMFILE:$((N - CAP)) ok:$CAP first:$(len "$VALS/hoard")"
maps_held2=$(maps)
if [ "$((maps_held2 - maps_held))" -lt 16 ]; then
	ok "stop: the second hoard maps no more than the first did ($maps_held -> $maps_held2 lines)"
else not_ok "stop: the second hoard maps no more than the first did"; echo "#   $maps_held -> $maps_held2 lines"; fi
# and a directory held open: no releasedir comes for it after the unmount
as_uid "$UX" "$PY" -c 'import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)' "$(dirname "$FX")" "$T_TMP/x/dirheld" "$T_TMP/dirheld.go" >/dev/null 2>&1 &
DIRHELD=$!
STOPS="$STOPS $T_TMP/dirheld.go"
wait_file "$T_TMP/x/dirheld" >/dev/null
stop_fs "$FS_PID"
expect_eq "stop: SIGTERM stops the daemon (exit 0) while the values and a directory are held" "$STOP_RC" "0"
[ "$STOP_RC" = 0 ] || show_log "$LOG"
release dirheld "$DIRHELD"
if mounted "$MNT"; then not_ok "stop: the mount is gone"; else ok "stop: the mount is gone"; fi
release hoard2 "$HELD"
t_finish

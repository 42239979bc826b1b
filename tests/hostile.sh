#!/bin/bash
# hostile.sh - hostile callers against a real scopeholdfs mount (issue 5):
# user namespaces that map a uid to root, callers in other pid namespaces,
# tricks against an executable binding, an fd passed to another uid, mmap,
# the page cache and the daemon's own memory after a close, and path tricks.
# Every check states what an attacker would try and what the mount must do.
# The harness is tests/mount.sh, as for tests/e2e.sh (skip without FUSE or
# root, mount with a deadline, always unmount and kill our daemons on exit);
# the probes live in tests/fixtures/hostile/hp.py.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
FIX="$ROOT/tests/fixtures/hostile"
AS_UID_SECS=30
m_start hostile "it mounts, enters namespaces and runs callers as other uids" unshare nsenter fincore

UA=23601 UB=23602 UC=23603 UE=23604 UO=23605 UD=23606 US=23607 UP=23608   # need not exist
ST=$T_TMP/store VALS=$T_TMP/vals MNT=$T_TMP/mnt MNT2=$T_TMP/mnt2
CONF=$T_TMP/scopehold.ini LOG=$T_TMP/fs.log
# on exit: holders waiting for T_TMP/go are released, then both mounts unmounted
MNTS="$MNT $MNT2" STOPS=$T_TMP/go
mkdir -m 0700 "$ST" "$VALS"
mkdir -m 0755 "$MNT" "$MNT2" "$T_TMP/bin" "$T_TMP/x"
install -m 0644 "$FIX/hp.py" "$T_TMP/hp.py"
: >"$LOG"

# hp UID OP ARG...: one hostile probe (tests/fixtures/hostile/hp.py) by that uid
hp() { u=$1; shift; as_uid "$u" "$PY" "$T_TMP/hp.py" "$@" 2>&1; }

# ---- the store -------------------------------------------------------------------
write_conf "$CONF" "$ST" "$MNT"
printf 'ghp_hostileTOKEN-5e1d\n' >"$VALS/token"
printf 'sk-hostileSECRET-b-77'   >"$VALS/okey"
# A long value with a distinct head and tail: a freed buffer loses its first
# 16 bytes to malloc's free-list pointers, so the memory scan looks for both.
CANARY_HEAD="hostileCANARY-head-6b1f"
CANARY_TAIL="7Qx9-hostileCANARY-tail-e03a"
printf '%s%s%s' "$CANARY_HEAD" "$(printf 'kZ3p%.0s' $(seq 40))" "$CANARY_TAIL" >"$VALS/canary"
cp "$PYREAL" "$T_TMP/bin/ownpy"; chmod 0755 "$T_TMP/bin/ownpy"
PY_SHA=$(sha256sum "$PYREAL" | cut -d' ' -f1)
OWN_SHA=$(sha256sum "$T_TMP/bin/ownpy" | cut -d' ' -f1)
SLEEP_SHA=$(sha256sum /usr/bin/sleep | cut -d' ' -f1)

setup sa init
setup sa provider add github
setup sa provider add openai
setup sa secret set github/token --from-file "$VALS/token"
setup sa secret set github/canary --from-file "$VALS/canary"
setup sa secret set openai/key --from-file "$VALS/okey"
setup sa project add proj-a
setup sa project attach proj-a github
setup sa project add proj-b
setup sa project attach proj-b openai/key
setup sa agent add agent-a --uid "$UA"
setup sa agent add agent-b --uid "$UB"
setup sa agent add root-agent --uid 0
setup sa agent add agent-py --uid "$UE" --exe "$PYREAL" --exe-sha256 "$PY_SHA"
setup sa agent add agent-own --uid "$UO" --exe "$T_TMP/bin/ownpy" --exe-sha256 "$OWN_SHA"
setup sa agent add agent-path --uid "$UP" --exe "$PYREAL"
setup sa agent add twin-1 --uid "$UD"
setup sa agent add twin-2 --uid "$UD"
setup sa agent add sleeper --uid "$US" --exe /usr/bin/sleep --exe-sha256 "$SLEEP_SHA"
for a in agent-a root-agent agent-py agent-own agent-path twin-1 twin-2 sleeper; do setup sa assign "$a" proj-a; done
setup sa assign agent-b proj-b
for a in agent-a root-agent agent-py agent-own agent-path twin-1 sleeper; do setup sa grant "$a" github/token; done
setup sa grant agent-a github/canary
setup sa grant agent-b openai/key
setup_check "hostile setup: shadm commands failed"
ok "hostile setup: store with 9 agents (uid, uid 0, exe+sha256, exe path only, twins, sleep-bound)"

start_fs "$CONF" "$LOG" "$MNT"
expect_mount "scopeholdfs mounts $MNT within 10 s" "$MNT" "$LOG"
MAIN_PID=$FS_PID
F=$MNT/agent-a/github/token
FR=$MNT/root-agent/github/token
TLEN=$(len "$VALS/token")

# ---- 1. user namespaces: a uid that maps itself to root is still that uid ------------------
# unshare -Ur: uid 0 inside a new user namespace, the real (kernel) uid outside.
userns() { u=$1; shift; as_uid "$u" unshare -Ur "$@"; }
expect_eq "userns: the caller really is root inside its namespace (id -u is 0)" \
	"$(userns "$UA" id -u 2>&1)" "0"
userns "$UA" cat "$F" >"$T_TMP/got.userns" 2>"$T_TMP/err"
same_bytes "userns: uid $UA mapped to root still reads agent-a's secret (it is $UA underneath)" \
	"$T_TMP/got.userns" "$VALS/token"
expect_fail_msg "userns: uid $UA mapped to root cannot read the uid-0 agent's secret" \
	"Permission denied" userns "$UA" cat "$FR"
expect_fail_msg "userns: uid $UC mapped to root cannot read the uid-0 agent's secret" \
	"Permission denied" userns "$UC" cat "$FR"
expect_fail_msg "userns: uid $UC mapped to root cannot read agent-a's secret" \
	"Permission denied" userns "$UC" cat "$F"
expect_eq "userns: mapped-root $UC does not see root-agent at the top level" \
	"$(userns "$UC" ls "$MNT" 2>&1 | tr '\n' ' ')" ""
sleep 1.2   # let coalesced denials reach the trail
expect_ge "userns: the refusals are audited with the real uid $UC (reason uid), never uid 0" \
	"$(aq count type=deny agent=root-agent reason=uid uid=$UC)" 1
expect_eq "userns: no event ever shows a namespaced caller as uid 0 for root-agent" \
	"$(aq count type=resolve agent=root-agent)" "0"
expect_ge "userns: the mapped read is a resolve event under uid $UA" \
	"$(aq count type=resolve agent=agent-a secret=github/token uid=$UA exe=/usr/bin/cat)" 1

# ---- 2. pid namespaces --------------------------------------------------------------------------
# A caller in its own pid namespace: FUSE reports its pid in the daemon's (the
# host's) namespace; the resolve event must name that real process.
rm -f "$T_TMP/go"
unshare -pf --mount-proc setpriv --reuid="$UA" --regid="$UA" --clear-groups \
	"$PY" "$T_TMP/hp.py" hold "$F" "$T_TMP/go" >"$T_TMP/hold.out" 2>&1 &
HOLDER=$!
HELPERS="$HELPERS $HOLDER"
for _ in $(seq 100); do [ -s "$T_TMP/hold.out" ] && break; sleep 0.05; done
read -r NSPID HLEN <"$T_TMP/hold.out"
expect_eq "pidns: the namespaced reader reads the secret while its pid inside is $NSPID" "$HLEN" "$TLEN"
sleep 1.2
GPID=$(aq field:pid type=resolve agent=agent-a secret=github/token uid=$UA exe="$PYREAL")
nsline=$(awk '/^NSpid:/ {$1 = ""; print substr($0, 2)}' "/proc/$GPID/status" 2>/dev/null | tr '\t' ' ')
expect_eq "pidns: the resolve event's pid $GPID is the reader's host pid (NSpid: $GPID $NSPID)" \
	"$nsline" "$GPID $NSPID"
held=""
for fd in /proc/"$GPID"/fd/*; do [ "$(readlink "$fd")" = "$F" ] && held=y; done
expect_eq "pidns: that host pid is the very process holding the secret open (/proc/$GPID/fd)" \
	"${held:-n} $(stat -c %u "/proc/$GPID" 2>/dev/null)" "y $UA"
if [ "$GPID" != "$NSPID" ]; then ok "pidns: the event does not name the namespace-local pid $NSPID"
else not_ok "pidns: the event does not name the namespace-local pid $NSPID"; fi
: >"$T_TMP/go"
wait "$HOLDER" 2>/dev/null
out=$(unshare -pf --mount-proc setpriv --reuid="$UB" --regid="$UB" --clear-groups cat "$F" 2>&1 >/dev/null)
expect_eq "pidns: a namespaced other uid is still refused" "$out" "cat: $F: Permission denied"

# The daemon itself in a private pid namespace that still sees the host /proc
# (unshare -pf without --mount-proc): FUSE would name callers by pids of the
# daemon's namespace while /proc answers for the host's, so a caller could
# fork its way to the pid number of an unrelated process running a bound
# executable. The daemon refuses to start that way, and mounts nothing.
unshare -pf "$SCOPEHOLDFS" -c "$CONF" -f "$MNT2" >"$T_TMP/pidns.out" 2>&1
prc=$?
expect_eq "pidns daemon: started in a pid namespace whose /proc is the host's, it exits 1" "$prc" "1"
expect_eq "pidns daemon: and says why" "$(cat "$T_TMP/pidns.out")" \
	"scopeholdfs: /proc belongs to another pid namespace than this process, so callers would be looked up as the wrong processes; run in the host pid namespace or with a matching /proc (unshare --pid --fork --mount-proc)"
if mounted "$MNT2"; then not_ok "pidns daemon: nothing is mounted at $MNT2"; fusermount3 -uz "$MNT2"
else ok "pidns daemon: nothing is mounted at $MNT2"; fi

# ---- 3. executable binding ---------------------------------------------------------------------------
FP=$MNT/agent-py/github/token
expect_eq "exe: the bound $PYREAL (right sha256) reads" \
	"$(as_uid "$UE" "$PYREAL" "$T_TMP/hp.py" cachestat "$FP" 2>&1 | cut -d' ' -f1)" "$TLEN"
cp "$PYREAL" "$T_TMP/x/python3"; chmod 0755 "$T_TMP/x/python3"
expect_eq "exe: a renamed byte-identical copy ($T_TMP/x/python3, same sha256) is EACCES (path binding)" \
	"$(as_uid "$UE" "$T_TMP/x/python3" "$T_TMP/hp.py" cachestat "$FP" 2>&1)" "EACCES"
ln -s "$PYREAL" "$T_TMP/x/py-link"
expect_eq "exe: a symlink to the bound binary reads (the kernel reports the real exe)" \
	"$(as_uid "$UE" "$T_TMP/x/py-link" "$T_TMP/hp.py" cachestat "$FP" 2>&1 | cut -d' ' -f1)" "$TLEN"
ln -s "$T_TMP/x/python3" "$T_TMP/x/fake-link"
expect_eq "exe: a symlink named like the bound path's target but pointing at the copy is EACCES" \
	"$(as_uid "$UE" "$T_TMP/x/fake-link" "$T_TMP/hp.py" cachestat "$FP" 2>&1)" "EACCES"
cp "$PYREAL" "$T_TMP/x/python3-other"; printf '\0' >>"$T_TMP/x/python3-other"; chmod 0755 "$T_TMP/x/python3-other"
# Other bytes at the bound path in a private mount namespace, and a swap of
# the binary between two opens: each open is judged on the exe it runs now.
unshare --mount sh -c '
	run() { setpriv --reuid="$1" --regid="$1" --clear-groups "$2" "$3/hp.py" cachestat "$4" 2>&1 | cut -d" " -f1; }
	echo "before:$(run "$1" "$2" "$3" "$4")"
	mount --bind "$3/x/python3-other" "$2" || exit 99
	echo "swapped:$(run "$1" "$2" "$3" "$4")"
	umount "$2" || exit 99
	echo "restored:$(run "$1" "$2" "$3" "$4")"' sh "$UE" "$PYREAL" "$T_TMP" "$FP" >"$T_TMP/swap.out" 2>&1
expect_eq "exe: swap in a private mount namespace: bound binary reads, other bytes at $PYREAL are EACCES, restored reads" \
	"$(tr '\n' ' ' <"$T_TMP/swap.out")" "before:$TLEN swapped:EACCES restored:$TLEN "
# No root needed: the agent's own uid makes a user + mount namespace and binds
# any binary over the bound path. The sha256 tells; and since issue 14 a
# caller in another user namespace is refused for any executable binding
# (exe-unverified), so the path-only binding holds too (tests/exebind.sh).
fake_at_path() {
	as_uid "$1" unshare -Urm sh -c 'mount --bind "$1" "$2" || exit 99; exec "$2" "$3/hp.py" cachestat "$4"' \
		sh "$T_TMP/x/python3-other" "$PYREAL" "$T_TMP" "$2" 2>&1 | cut -d' ' -f1
}
expect_eq "exe: unprivileged userns+bind mount of other bytes at the bound path: the sha256-bound agent is EACCES" \
	"$(fake_at_path "$UE" "$FP")" "EACCES"
expect_eq "exe: the same trick against a path-only binding is EACCES (another user namespace: exe-unverified)" \
	"$(fake_at_path "$UP" "$MNT/agent-path/github/token")" "EACCES"
check "exe: the bind mount stayed inside its namespace" eval '[ "$(sha256sum "$PYREAL" | cut -d" " -f1)" = "$PY_SHA" ]'
# In-place change of a binary we own, same size, mtime put back: the digest
# cache must not serve the old hash (ctime changes and cannot be set back).
FO=$MNT/agent-own/github/token
expect_eq "exe: the bound copy $T_TMP/bin/ownpy reads" \
	"$(as_uid "$UO" "$T_TMP/bin/ownpy" "$T_TMP/hp.py" cachestat "$FO" 2>&1 | cut -d' ' -f1)" "$TLEN"
touch -r "$T_TMP/bin/ownpy" "$T_TMP/mtime.ref"
size=$(len "$T_TMP/bin/ownpy")
printf 'Z' | dd of="$T_TMP/bin/ownpy" bs=1 seek=$((size - 1)) conv=notrunc 2>/dev/null
touch -r "$T_TMP/mtime.ref" "$T_TMP/bin/ownpy"
expect_eq "exe: same size and mtime, last byte changed in place: the next open is EACCES (re-hashed)" \
	"$(as_uid "$UO" "$T_TMP/bin/ownpy" "$T_TMP/hp.py" cachestat "$FO" 2>&1)" "EACCES"
sleep 1.2
expect_ge "exe: the renamed copy is denied with reason exe" \
	"$(aq count type=deny agent=agent-py reason=exe uid=$UE exe="$T_TMP/x/python3")" 1
expect_ge "exe: the swapped binary is denied with reason exe-sha256 under the bound path" \
	"$(aq count type=deny agent=agent-py reason=exe-sha256 uid=$UE exe="$PYREAL")" 1
expect_ge "exe: the bind mount in a user namespace is denied exe-unverified for the path-only agent" \
	"$(aq count type=deny agent=agent-path reason=exe-unverified uid=$UP exe="$PYREAL")" 1
expect_ge "exe: the changed own binary is denied with reason exe-sha256" \
	"$(aq count type=deny agent=agent-own reason=exe-sha256 uid=$UO)" 1

# ---- 4. an open fd passed to another uid over a Unix socket ----------------------------------------------
before=$(aq count type=resolve agent=agent-a secret=github/token)
fdout=$("$PY" "$T_TMP/hp.py" fdpass "$F" "$UA" "$UB" 2>&1)
expect_eq "fd passing: uid $UB reads agent-a's value through an fd passed by uid $UA (SCM_RIGHTS)" \
	"$fdout" "sender:ok receiver:ok $TLEN $(sha256sum <"$VALS/token" | cut -d' ' -f1)"
sleep 1.2
expect_eq "fd passing: exactly one resolve event (the sender's open), none for the receiver's reads" \
	"$(( $(aq count type=resolve agent=agent-a secret=github/token) - before )) $(aq count type=resolve agent=agent-a uid=$UB)" "1 0"

# ---- 5. mmap, page cache, the daemon's memory ------------------------------------------------------------
FC=$MNT/agent-a/github/canary
CLEN=$(len "$VALS/canary")
expect_eq "mmap: MAP_SHARED of a secret fails with ENODEV (direct I/O); MAP_PRIVATE is served" \
	"$(hp "$UA" mmap "$FC")" "shared:ENODEV private:ok"
expect_eq "page cache: after reading the whole secret, cachestat on the same fd counts 0 cached pages" \
	"$(hp "$UA" cachestat "$FC")" "$CLEN cached=0"
as_uid "$UA" cat "$FC" >/dev/null 2>&1
expect_eq "page cache: fincore after cat reports 0 resident pages" \
	"$(as_uid "$UA" fincore -nb -o RES,PAGES "$FC" 2>&1 | tr -s ' ' | sed 's/^ //')" "0 0"
expect_eq "page cache: a MAP_PRIVATE mapping leaves no page cached after it is closed" \
	"$(hp "$UA" private-residue "$FC")" "cached=0"
# The daemon's memory through /proc/PID/mem (root with CAP_SYS_PTRACE reads a
# non-dumpable process). Needles: the whole value, its head, its tail.
scan() { "$PY" "$T_TMP/hp.py" memscan "$MAIN_PID" "$(cat "$VALS/canary")" "$CANARY_HEAD" "$CANARY_TAIL" 2>&1; }
case "$B" in
*asan*)
	# ASan keeps freed memory in quarantine on purpose and reserves terabytes
	# of shadow memory: the scan means nothing there.
	skip "daemon memory: canary scan skipped in the sanitizer build ($B)"
	skip "daemon memory: canary scan after close skipped in the sanitizer build ($B)" ;;
*)
rm -f "$T_TMP/go"
as_uid "$UA" "$PY" "$T_TMP/hp.py" hold "$FC" "$T_TMP/go" >"$T_TMP/hold2.out" 2>&1 &
HOLDER=$!
HELPERS="$HELPERS $HOLDER"
for _ in $(seq 100); do [ -s "$T_TMP/hold2.out" ] && break; sleep 0.05; done
held_scan=$(scan)
case "$held_scan" in
"0:0 "* | *EPERM* | *EACCES* | "")
	not_ok "daemon memory: the probe finds the canary while the file is held open"; echo "#   $held_scan" ;;
*) ok "daemon memory: the probe finds the canary while the file is held open (${held_scan%% regions*})" ;;
esac
: >"$T_TMP/go"
wait "$HOLDER" 2>/dev/null
for _ in 1 2 3; do as_uid "$UA" cat "$FC" >/dev/null; hp "$UA" cachestat "$FC" >/dev/null; done
sleep 1
after_scan=$(scan)
expect_eq "daemon memory: 1 s after the last close no copy of the canary (whole, head or tail) is left" \
	"${after_scan%% regions*}" "0:0 1:0 2:0"
case "$after_scan" in *regions=*) ;; *) echo "#   $after_scan" ;; esac
;;
esac

# ---- 6. path tricks ----------------------------------------------------------------------------------------
hp "$UA" paths "$MNT" >"$T_TMP/paths.out"
pth() { sed -n "s/^$1://p" "$T_TMP/paths.out"; }
expect_eq "paths: agent-a/../agent-b/openai/key by agent-a's uid is EACCES" "$(pth dotdot-other-agent)" "EACCES"
expect_eq "paths: agent-a/github/../../agent-b/openai/key is EACCES" "$(pth dotdot-deep)" "EACCES"
expect_eq "paths: self/../agent-b/openai/key is EACCES" "$(pth dotdot-self-root)" "EACCES"
expect_eq "paths: a 255-byte name at the top is ENOENT" "$(pth name-255)" "ENOENT"
expect_eq "paths: a 256-byte name is ENOENT (FUSE passes up to 1024 bytes; the parser refuses)" "$(pth name-256)" "ENOENT"
# FUSE_NAME_MAX is 1024 before Linux 6.14 and PATH_MAX - 1 since: either answer is a refusal.
case "$(pth name-1025)" in
ENOENT | ENAMETOOLONG) ok "paths: a 1025-byte name is ENOENT or ENAMETOOLONG (by kernel)" ;;
*) not_ok "paths: a 1025-byte name is ENOENT or ENAMETOOLONG (by kernel)"; echo "#   got: $(pth name-1025)" ;;
esac
expect_eq "paths: a 255-byte secret name is ENOENT" "$(pth secret-255)" "ENOENT"
expect_eq "paths: a 4000-byte path of many components is ENOENT" "$(pth path-4000)" "ENOENT"
expect_eq "paths: a 4096-byte path is ENAMETOOLONG" "$(pth path-4096)" "ENAMETOOLONG"
expect_eq "paths: a 5000-byte path is ENAMETOOLONG" "$(pth path-5000)" "ENAMETOOLONG"
for c in newline newline-secret byte-ff byte-ff-agent space space-inside tab percent dot-name; do
	expect_eq "paths: a name with odd bytes ($c) is ENOENT" "$(pth "$c")" "ENOENT"
done
expect_eq "paths: self/self (self inside an agent is no link) is ENOENT" "$(pth self-self)" "ENOENT"
expect_eq "paths: self repeated 40 times is ENOENT, no loop" "$(pth self-self-deep)" "ENOENT"
expect_eq "paths: nothing lives below a secret (ENOTDIR)" "$(pth secret-below-secret)" "ENOTDIR"
expect_eq "paths: O_NOFOLLOW|O_PATH on self opens the link itself" "$(pth self-nofollow)" "ok"
expect_eq "paths: readlink of a secret is EINVAL" "$(pth readlink-secret)" "EINVAL"
expect_eq "paths: readlink self names the caller's one agent" \
	"$(as_uid "$UA" readlink -v "$MNT/self" 2>&1)" "agent-a"
expect_eq "paths: self resolves through to the value" "$(as_uid "$UA" cat "$MNT/self/github/token" 2>&1)" \
	"$(cat "$VALS/token")"
expect_fail_msg "self: a uid matching two agents (twin-1, twin-2) has no self (ENOENT)" \
	"No such file or directory" as_uid "$UD" readlink -v "$MNT/self"
expect_eq "self: the twins' uid lists both agents and no self" \
	"$(as_uid "$UD" ls "$MNT" 2>&1 | tr '\n' ' ')" "twin-1 twin-2 "
expect_eq "self: the twins' uid still reads through an explicit agent path" \
	"$(as_uid "$UD" cat "$MNT/twin-1/github/token" 2>&1)" "$(cat "$VALS/token")"
expect_fail_msg "self: a uid matching no agent has no self (ENOENT)" \
	"No such file or directory" as_uid "$UC" readlink -v "$MNT/self"
expect_fail_msg "self: self/github/token for a uid matching no agent is ENOENT" \
	"No such file or directory" as_uid "$UC" cat "$MNT/self/github/token"
check "after every trick the daemon is still running" kill -0 "$MAIN_PID"
as_uid "$UA" cat "$F" >"$T_TMP/got.end" 2>&1
same_bytes "after every trick the granted read still returns the exact bytes" "$T_TMP/got.end" "$VALS/token"
expect_verify "after every trick shadm audit verify passes"

t_finish

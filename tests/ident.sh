#!/bin/bash
# ident.sh - binding identities that hold for real agents: an executable is
# bound by the path the kernel reports (a symlink is resolved at `agent add`),
# an interpreter binding warns, an agent can be bound to a cgroup v2 path
# (exact, or a subtree with a trailing /), and `agent set` changes bindings
# in place. Every decision is asserted twice - on a real mount, read by real
# uids from real cgroups, and by `shadm check` with the same facts - so the
# dry run cannot drift from the mount. Uids 24701-24799.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
m_start ident "it mounts, moves readers between cgroups and runs them as other uids" unshare readlink

UP=24701 UL=24702 UX=24703 UT=24704 UR=24705 UM=24706 UN=24707 UH=24708
ST=$T_TMP/store MNT=$T_TMP/mnt CONF=$T_TMP/scopehold.ini LOG=$T_TMP/fs.log
MNTS=$MNT
mkdir -m 0700 "$ST"
mkdir -m 0755 "$MNT" "$T_TMP/bin"
: >"$LOG"
CAT_SHA=$(sha256sum /usr/bin/cat | cut -d' ' -f1)
LS_SHA=$(sha256sum /usr/bin/ls | cut -d' ' -f1)
ln -s /usr/bin/cat "$T_TMP/bin/kitty"

# The cgroup v2 hierarchy (hybrid hosts mount it at /sys/fs/cgroup/unified).
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CG=/scopehold-ident-$$
CGDIRS=""
ident_cleanup() {
	m_cleanup
	# the readers moved into our cgroups have exited: the cgroups are empty
	for d in $CGDIRS; do rmdir "$d" 2>/dev/null; done
}
trap ident_cleanup EXIT
if [ -n "$CGROOT" ] && mkdir "$CGROOT$CG" 2>/dev/null; then
	CGDIRS="$CGROOT$CG/sub $CGROOT$CG"
	mkdir "$CGROOT$CG/sub" "$CGROOT${CG}x"
	CGDIRS="$CGDIRS $CGROOT${CG}x"
else
	CGROOT=""
fi

# ---- the store ----------------------------------------------------------------
write_conf "$CONF" "$ST" "$MNT"
setup sa init
setup sa provider add gh
printf 'ident-tok' >"$T_TMP/tok"
setup sa secret set gh/tok --from-file "$T_TMP/tok"
setup sa project add p
setup sa project attach p gh
setup_check "ident setup: shadm commands failed"

# ---- 1. canonical executables ----------------------------------------------------
expect_run "agent add --exe through a symlink warns that it is an interpreter, one line" 0 \
	"shadm: warning: agent 'py' is bound to the interpreter $PYREAL, which admits every script uid $UP runs with it; bind a --cgroup or give the agent a uid of its own" \
	sa agent add py --uid "$UP" --exe "$PY"
if [ "$PY" != "$PYREAL" ]; then
	expect_eq "agent add says the symlink was resolved" "$OUT" \
		"added agent py (uid $UP); executable $PY resolved to $PYREAL"
else
	skip "ident: $PY is not a symlink here"
fi
expect_eq "agent show: the canonical path is stored" \
	"$(sa agent show py | awk '$1 == "exe:" { print $2 }')" "$PYREAL"
expect_run "agent add --exe through a symlink to a binary stores the binary" 0 \
	"shadm: warning: agent 'link' is bound to /usr/bin/cat by path only; add --exe-sha256 so a different binary at that path is refused" \
	sa agent add link --uid "$UL" --exe "$T_TMP/bin/kitty"
expect_eq "agent add: --json names the canonical exe" \
	"$(sa --json agent show link | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["exe"])')" "/usr/bin/cat"
before=$(sa agent list 2>&1)
expect_run "agent add --exe of a missing file is refused" 1 \
	"shadm: cannot resolve executable '$T_TMP/nope': no such file or directory" \
	sa agent add ghost --uid "$UX" --exe "$T_TMP/nope"
expect_run "agent add --exe of a directory is refused" 1 \
	"shadm: invalid executable '$T_TMP/bin': not a regular file" \
	sa agent add ghost --uid "$UX" --exe "$T_TMP/bin"
expect_run "agent add --exe relative is refused" 1 \
	"shadm: invalid executable 'bin/kitty': use an absolute path" \
	sa agent add ghost --uid "$UX" --exe bin/kitty
HINT="use an absolute cgroup v2 path such as /system.slice/NAME.service, ending in / for the whole subtree, without empty, . or .. components"
for bad in relative /a/../b // /a//b /a/. ""; do
	expect_run "agent add --cgroup '$bad' is refused" 1 "shadm: invalid cgroup '$bad': $HINT" \
		sa agent add ghost --uid "$UX" --cgroup "$bad"
done
expect_eq "refused agent adds changed nothing" "$(sa agent list 2>&1)" "$before"
expect_run "agent add of an interpreter bound to a cgroup does not warn" 0 "" \
	sa agent add py-svc --uid "$UX" --exe "$PYREAL" --exe-sha256 "$(sha256sum "$PYREAL" | cut -d' ' -f1)" \
	--cgroup /system.slice/codex-agent.service
expect_eq "agent show: the cgroup" \
	"$(sa agent show py-svc | awk '$1 == "cgroup:" { print $2 }')" "/system.slice/codex-agent.service"
expect_eq "agent list: a CGROUP column" \
	"$(sa agent list | awk 'NR == 1 { print $8 } $1 == "py-svc" { print $8 }' | tr '\n' ' ')" \
	"CGROUP /system.slice/codex-agent.service "
for a in py link py-svc; do setup sa assign "$a" p; setup sa grant "$a" gh/tok; done
setup_check "ident setup: grants failed"

# ---- 2. agent set: errors change nothing ---------------------------------------------
before=$(sa --json agent show link 2>&1)
expect_run "agent set without a change is a usage error" 2 \
	"shadm: agent set needs --uid, --gid, --no-gid, --exe, --no-exe, --exe-sha256, --no-exe-sha256, --cgroup, --no-cgroup, --human, --agent or --rate" \
	sa agent set link
expect_run "agent set --gid with --no-gid is a usage error" 2 \
	"shadm: agent set: give a binding or its --no- option, not both (and --human or --agent, not both)" \
	sa agent set link --gid 5 --no-gid
expect_run "agent set --human with --agent is a usage error" 2 - sa agent set link --human --agent
expect_run "agent set of an unknown agent fails" 1 "shadm: no agent 'nobody'" sa agent set nobody --uid 5
expect_run "agent set with a bad cgroup fails" 1 "shadm: invalid cgroup '/x/..': $HINT" \
	sa agent set link --cgroup /x/..
expect_run "agent set with a bad sha256 fails" 1 "shadm: invalid sha256 'xyz': use 64 hex digits" \
	sa agent set link --exe-sha256 xyz
expect_run "agent set with a bad rate fails and the binding is not changed either" 1 - \
	sa agent set link --uid 5 --rate 0/1m
expect_eq "refused agent sets changed nothing" "$(sa --json agent show link 2>&1)" "$before"

# ---- 3. the mount --------------------------------------------------------------------
start_fs "$CONF" "$LOG" "$MNT"
expect_mount "scopeholdfs mounts $MNT within 10 s" "$MNT" "$LOG"

# check_is WHAT AGENT WANT ARGS...: `shadm check` prints WANT ("allow" or the reason)
check_is() {
	what=$1 agent=$2 want=$3; shift 3
	got=$(sa --json check "$agent" gh/tok "$@" 2>&1 | "$PY" -c \
		'import json,sys; d=json.load(sys.stdin); print(d["reason"])' 2>&1)
	expect_eq "$what" "$got" "$want"
}

# a symlinked interpreter: the mount and check agree that python3 is the agent
expect_eq "mount: $PY (a symlink) run by the py agent's uid reads" \
	"$(probe "$UP" open "$MNT/py/gh/tok")" "ok 9"
check_is "check --exe $PY (the symlink) says allow, as the mount" py allow --uid "$UP" --exe "$PY"
check_is "check without --exe says allow, as the mount" py allow
expect_eq "mount: the symlink to cat, run by the link agent's uid, reads" \
	"$(as_uid "$UL" "$T_TMP/bin/kitty" "$MNT/link/gh/tok" 2>&1)" "ident-tok"
check_is "check --exe through the symlink to cat says allow, as the mount" link allow --exe "$T_TMP/bin/kitty"
expect_eq "mount: another binary of the link agent's uid is refused" \
	"$(probe "$UL" open "$MNT/link/gh/tok")" "EACCES"
check_is "check --exe of that binary says exe, as the mount" link exe --exe "$PY"

# ---- 4. cgroups ----------------------------------------------------------------------
# in_cg CGROUP UID ARGS...: the probe as UID, run from inside CGROUP
in_cg() {
	cg=$1 u=$2; shift 2
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CGROOT$cg" \
		timeout -s KILL 60 setpriv --reuid="$u" --regid="$u" --clear-groups "$PY" "$T_TMP/probe.py" "$@" 2>&1
}
if [ -z "$CGROOT" ]; then
	skip "ident: no writable cgroup v2 hierarchy: cgroup bindings on the mount not tested"
else
	setup sa agent add cg-exact --uid "$UX" --cgroup "$CG"
	setup sa agent add cg-tree --uid "$UT" --cgroup "$CG/"
	setup sa agent add cg-root --uid "$UR" --cgroup /
	for a in cg-exact cg-tree cg-root; do setup sa assign "$a" p; setup sa grant "$a" gh/tok; done
	setup_check "ident setup: cgroup agents failed"
	# each row: agent uid cgroup-of-the-reader mount-result check-reason
	while read -r agent u cg want reason; do
		[ "$want" = ok ] && want="ok 9"
		expect_eq "mount: $agent read from $cg: $want" "$(in_cg "$cg" "$u" open "$MNT/$agent/gh/tok")" "$want"
		check_is "check: $agent --cgroup $cg: $reason, as the mount" "$agent" "$reason" --cgroup "$cg"
	done <<-EOF
	cg-exact $UX $CG ok allow
	cg-exact $UX $CG/sub EACCES cgroup
	cg-exact $UX ${CG}x EACCES cgroup
	cg-exact $UX / EACCES cgroup
	cg-tree $UT $CG ok allow
	cg-tree $UT $CG/sub ok allow
	cg-tree $UT ${CG}x EACCES cgroup
	cg-tree $UT / EACCES cgroup
	cg-root $UR / ok allow
	cg-root $UR $CG/sub EACCES cgroup
	EOF
	check_is "check without --cgroup takes the bound subtree's root: allow" cg-tree allow
	expect_run "check --cgroup with a trailing / is refused (a process is in one cgroup)" 1 \
		"shadm: invalid cgroup '$CG/': use the absolute cgroup v2 path of a process, as in /proc/PID/cgroup (no trailing /, no empty, . or .. components)" \
		sa check cg-tree gh/tok --cgroup "$CG/"
	# A reader in a cgroup namespace of its own sees itself at "/"; the daemon
	# reads /proc/PID/cgroup from its own namespace and sees the real path.
	nsview() {
		sh -c 'echo $$ >"$0/cgroup.procs" && exec unshare -C "$@"' "$CGROOT$CG/sub" \
			timeout -s KILL 60 setpriv --reuid="$1" --regid="$1" --clear-groups "$PY" -c \
			'import sys; sys.path.insert(0, sys.argv[2]); from fsio import errname, read_all
print(open("/proc/self/cgroup").read().splitlines()[-1], end=" ")
try: print("ok", len(read_all(sys.argv[1])))
except OSError as e: print(errname(e))' "$2" "$T_TMP" 2>&1
	}
	expect_eq "cgroup namespace: the reader sees itself at / and cg-root refuses it" \
		"$(nsview "$UR" "$MNT/cg-root/gh/tok")" "0::/ EACCES"
	expect_eq "cgroup namespace: cg-tree still admits the reader by its real path" \
		"$(nsview "$UT" "$MNT/cg-tree/gh/tok")" "0::/ ok 9"
	expect_eq "audit: the resolve event names the reader's cgroup" \
		"$(aq field:cgroup type=resolve agent=cg-tree | tail -1)" "$CG"
	expect_eq "audit: a refusal names the reader's cgroup and the reason" \
		"$(aq field:cgroup type=deny agent=cg-exact reason=cgroup)" "$CG/sub"
	expect_eq "audit: the text listing shows cgroup= in the caller" \
		"$(sa audit --agent cg-exact --event deny | awk 'NR == 2' | grep -o "cgroup=$CG/sub *cgroup")" \
		"cgroup=$CG/sub  cgroup"
fi

# ---- 5. agent set on a running mount -------------------------------------------------------
setup sa agent add mover --uid "$UM" --gid "$UM"
setup sa assign mover p
setup sa grant mover gh/tok --uses 100
setup_check "ident setup: mover failed"
expect_eq "mover: its uid reads" "$(probe "$UM" open "$MNT/mover/gh/tok")" "ok 9"
expect_run "agent set --uid --gid: one line, exit 0, no warning" 0 "" \
	sa agent set mover --uid "$UN" --gid "$UN"
expect_eq "agent set says what changed" "$OUT" "changed agent mover: uid $UN, gid $UN"
expect_eq "mount: the very next open by the old uid is refused" \
	"$(probe "$UM" open "$MNT/mover/gh/tok")" "EACCES"
expect_eq "mount: the very next open by the new uid is served" \
	"$(probe "$UN" open "$MNT/mover/gh/tok")" "ok 9"
expect_eq "agent set kept the grant and its use count" \
	"$(sa --json grants mover | jq -r 'select(.provider == "gh" and .name == "tok") | "\(.uses)/\(.max_uses) \(.state)"')" "2/100 live"
expect_eq "agent set kept the assignment" \
	"$(sa agent show mover | awk '$1 == "projects:" { print $2 }')" "p"
expect_eq "audit: one agent-set event with the changed fields" \
	"$(aq count type=agent-set agent=mover) $(aq field:reason type=agent-set agent=mover)" \
	"1 uid=$UN gid=$UN"
# the binary was upgraded: its hash changes, the grant stays
setup sa agent set mover --exe /usr/bin/cat --exe-sha256 "$LS_SHA"
setup_check "ident setup: agent set --exe failed"
expect_eq "mount: after binding to a hash cat does not have, cat is refused" \
	"$(as_uid "$UN" cat "$MNT/mover/gh/tok" 2>&1 | sed 's/.*: //')" "Permission denied"
check_is "check agrees: exe-sha256" mover exe-sha256
expect_run "agent set --exe-sha256 (the upgrade): no warning" 0 "" sa agent set mover --exe-sha256 "$CAT_SHA"
expect_eq "mount: the very next cat is served" "$(as_uid "$UN" cat "$MNT/mover/gh/tok" 2>&1)" "ident-tok"
check_is "check agrees: allow" mover allow
expect_run "agent set --no-exe-sha256 warns that the path alone is weak" 0 \
	"shadm: warning: agent 'mover' is bound to /usr/bin/cat by path only; add --exe-sha256 so a different binary at that path is refused" \
	sa agent set mover --no-exe-sha256
expect_run "agent set --exe python3 (a symlink): the interpreter warning" 0 \
	"shadm: warning: agent 'mover' is bound to the interpreter $PYREAL, which admits every script uid $UN runs with it; bind a --cgroup or give the agent a uid of its own" \
	sa agent set mover --exe "$PY"
expect_eq "agent set resolves the symlink and says so" "$OUT" \
	"changed agent mover: exe $PYREAL$([ "$PY" != "$PYREAL" ] && echo ", resolved from $PY")"
expect_eq "mount: python3 of the new uid reads" "$(probe "$UN" open "$MNT/mover/gh/tok")" "ok 9"
expect_run "agent set --no-exe --no-gid --human: no warning" 0 "" sa agent set mover --no-exe --no-gid --human
expect_eq "agent show: exe and gid unbound, kind human" \
	"$(sa agent show mover | awk '$1 == "exe:" || $1 == "gid:" || $1 == "kind:" { printf "%s%s ", $1, $2 }')" \
	"kind:human gid:- exe:- "
expect_eq "mount: any binary of the uid reads again" \
	"$(as_uid "$UN" cat "$MNT/mover/gh/tok" 2>&1)" "ident-tok"
expect_run "agent set --rate with a binding: both, in one command" 0 "" \
	sa agent set mover --agent --rate 50/1m
expect_eq "agent set with --rate says both" "$OUT" "changed agent mover: kind agent, rate 50/1m"
expect_eq "agent show: the rate" "$(sa agent show mover | awk '$1 == "rate:" { print $2 }')" "50/1m"
expect_eq "agent set --json: the changed fields" \
	"$(sa --json agent set mover --no-exe-sha256 --no-cgroup | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["action"], " ".join(d["changed"]))')" \
	"agent-set exe_sha256 cgroup"
expect_eq "audit: an agent-set event for each change" "$(aq count type=agent-set agent=mover)" "8"
if [ -n "$CGROOT" ]; then
	# the mount reads a caller's cgroup only for agents bound to one: the
	# audit of any other agent leaves the cgroup out
	S0=$(aq maxseq)
	expect_eq "mount: a reader in a cgroup reads mover, bound to none" \
		"$(in_cg "$CG/sub" "$UN" open "$MNT/mover/gh/tok")" "ok 9"
	expect_eq "audit: that resolve records no cgroup (mover is bound to none)" \
		"$(aq count type=resolve agent=mover "seq>$S0") [$(aq field:cgroup type=resolve agent=mover "seq>$S0")]" \
		"1 []"
	setup sa agent set mover --cgroup "$CG/"
	setup_check "ident setup: agent set --cgroup failed"
	S0=$(aq maxseq)
	expect_eq "mount: after agent set --cgroup, a reader outside is refused" \
		"$(in_cg / "$UN" open "$MNT/mover/gh/tok")" "EACCES"
	expect_eq "mount: a reader inside the cgroup is served" \
		"$(in_cg "$CG/sub" "$UN" open "$MNT/mover/gh/tok")" "ok 9"
	expect_eq "audit: once bound, the refusal and the resolve name the reader's cgroup" \
		"$(aq field:cgroup type=deny agent=mover reason=cgroup "seq>$S0") $(aq field:cgroup type=resolve agent=mover "seq>$S0")" \
		"/ $CG/sub"
	# and the other way: the very first open after the binding is dropped
	# is served from outside, and no longer records a cgroup
	setup sa agent set mover --no-cgroup
	S0=$(aq maxseq)
	expect_eq "mount: after agent set --no-cgroup, a reader outside is served again" \
		"$(in_cg / "$UN" open "$MNT/mover/gh/tok")" "ok 9"
	expect_eq "audit: that resolve records no cgroup" \
		"$(aq count type=resolve agent=mover "seq>$S0") [$(aq field:cgroup type=resolve agent=mover "seq>$S0")]" \
		"1 []"
fi
expect_verify "audit verify: the chain with cgroups and agent-set events is intact"
t_finish

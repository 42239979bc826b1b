#!/bin/bash
# e2e.sh - end-to-end tests of scopeholdfs: a real FUSE mount in a temporary
# directory, read by real, different uids (setpriv), while shadm edits the
# store under the running daemon. Asserts exact bytes and exact errno names
# (through tests/fixtures/e2e/probe.py), then the audit trail the reads left.
# The harness (skip without FUSE or root, mount with a deadline, always
# unmount and kill a leaked daemon on exit) is tests/mount.sh.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
m_start e2e "it mounts, and runs readers as other uids with setpriv" unshare

UA=23401 UB=23402 UC=23403 UE=23404 UT=23405   # need not exist in /etc/passwd
ST=$T_TMP/store VALS=$T_TMP/vals MNT=$T_TMP/mnt CONF=$T_TMP/scopehold.ini
TINY=$T_TMP/tiny MNT2=$T_TMP/mnt2 CONF2=$T_TMP/tiny.ini LOG=$T_TMP/fs.log
# unmounted on exit: the container's bind mount (if it leaked), both mounts, the tiny tmpfs
MNTS="$T_TMP/ctr/run/secrets $MNT $MNT2" TMPFSES=$TINY
mkdir -m 0700 "$ST" "$VALS"
mkdir -m 0755 "$MNT" "$MNT2" "$T_TMP/bin"
install -d -m 0700 -o "$UA" -g "$UA" "$T_TMP/home-a"
: >"$LOG"

sa2() { "$SHADM" -c "$CONF2" "$@"; }

# ---- the store ----------------------------------------------------------------
write_conf "$CONF" "$ST" "$MNT"
# Each value carries a marker (e2eTOKEN / e2eSECRET) so the leak scans can grep.
printf 'ghp_e2eTOKEN\000bin\nary\377-7f3a9c\n' >"$VALS/token"
printf 'admin-e2eSECRET-51c2'      >"$VALS/admin"
printf 'rev-e2eSECRET-9d01'        >"$VALS/rev"
printf 'rot1-e2eSECRET-aa'         >"$VALS/rot1"
printf 'rot2-e2eSECRET-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n' >"$VALS/rot2"
printf 'ttl-e2eSECRET-c3'          >"$VALS/ttl"
printf 'uses-e2eSECRET-d4'         >"$VALS/uses"
printf 'flood-e2eSECRET-e5'        >"$VALS/flood"
printf 'aws1-e2eSECRET-f6'         >"$VALS/a1"
printf 'aws2-e2eSECRET-07'         >"$VALS/a2"
printf 'sk-openai-e2eSECRET-18\n'  >"$VALS/okey"
printf 'tiny-e2eSECRET-29'         >"$VALS/tiny"
CAT_SHA=$(sha256sum /usr/bin/cat | cut -d' ' -f1)

setup sa init
for p in github aws openai; do setup sa provider add "$p"; done
setup sa secret set github/token --from-file "$VALS/token"
for s in admin rev ttl uses flood; do setup sa secret set "github/$s" --from-file "$VALS/$s"; done
setup sa secret set github/rot --from-file "$VALS/rot1"
setup sa secret set aws/a1 --from-file "$VALS/a1"
setup sa secret set aws/a2 --from-file "$VALS/a2"
setup sa secret set openai/key --from-file "$VALS/okey"
setup sa project add proj-a
setup sa project attach proj-a github           # the whole provider
setup sa project attach proj-a aws/a1           # one secret; aws/a2 is no candidate
setup sa project add proj-b
setup sa project attach proj-b openai/key
setup sa agent add agent-a --uid "$UA"
setup sa agent add agent-b --uid "$UB"
setup sa agent add agent-exe --uid "$UE" --exe /usr/bin/cat --exe-sha256 "$CAT_SHA"
setup sa agent add root-agent --uid 0
for a in agent-a agent-exe root-agent; do setup sa assign "$a" proj-a; done
setup sa assign agent-b proj-b
for s in github/token github/rev github/rot aws/a1; do setup sa grant agent-a "$s"; done
setup sa grant agent-b openai/key
setup sa grant agent-exe github/token
setup sa grant root-agent github/token
setup_check "e2e setup: shadm commands failed"
ok "e2e setup: store with 4 agents, 3 providers, 2 projects and grants"

# ---- mount ----------------------------------------------------------------------
start_fs "$CONF" "$LOG" "$MNT"
expect_mount "scopeholdfs mounts $MNT within 10 s" "$MNT" "$LOG"
mline=$(awk -v m="$MNT" '$2 == m' /proc/mounts | tail -n 1)
missing=""
for o in ro nosuid nodev noexec allow_other; do
	case ",$(echo "$mline" | awk '{print $4}')," in *",$o,"*) ;; *) missing="$missing $o";; esac
done
expect_eq "mount is fsname scopehold with ro,nosuid,nodev,noexec,allow_other" \
	"$(echo "$mline" | awk '{print $1}') missing:$missing" "scopehold missing:"

F=$MNT/agent-a/github/token
TLEN=$(len "$VALS/token")

# ---- 1. the granted read --------------------------------------------------------
as_uid "$UA" cat "$F" >"$T_TMP/got.cat" 2>"$T_TMP/err"
same_bytes "granted read: cat returns the exact bytes (NUL, newline, 0xff)" "$T_TMP/got.cat" "$VALS/token"
as_uid "$UA" "$PY" "$T_TMP/probe.py" cat "$F" >"$T_TMP/got.py" 2>&1
same_bytes "granted read: python open(p, 'rb').read() returns the exact bytes" "$T_TMP/got.py" "$VALS/token"
as_uid "$UA" head -c 3 "$F" >"$T_TMP/got.head" 2>&1
head -c 3 "$VALS/token" >"$T_TMP/want.head"
same_bytes "granted read: head -c 3 returns the first 3 bytes" "$T_TMP/got.head" "$T_TMP/want.head"
as_uid "$UA" cp "$F" "$T_TMP/home-a/copy" 2>"$T_TMP/err"
same_bytes "granted read: cp to a file gives the exact bytes" "$T_TMP/home-a/copy" "$VALS/token"
expect_eq "granted read: stat says mode 400, the agent's uid, the value's size, regular file" \
	"$(as_uid "$UA" stat -c '%a %u %s %F' "$F" 2>&1)" "400 $UA $TLEN regular file"
expect_eq "granted read: ls -l shows -r-------- with the agent's uid and the size" \
	"$(as_uid "$UA" ls -ln "$MNT/agent-a/github" 2>&1 | awk '$NF == "token" {print $1, $3, $5}')" \
	"-r-------- $UA $TLEN"
expect_eq "the mount root is a directory, mode 555" "$(stat -c '%a %F' "$MNT")" "555 directory"
expect_eq "an agent directory is mode 500, owned by the agent's uid" \
	"$(as_uid "$UA" stat -c '%a %u %F' "$MNT/agent-a" 2>&1)" "500 $UA directory"
expect_eq "a provider directory is mode 500" \
	"$(as_uid "$UA" stat -c '%a %F' "$MNT/agent-a/github" 2>&1)" "500 directory"
expect_eq "the agent lists the providers holding its candidates" \
	"$(probe "$UA" list "$MNT/agent-a")" "aws github"
expect_eq "the agent lists every candidate of a whole attached provider" \
	"$(probe "$UA" list "$MNT/agent-a/github")" "admin flood rev rot token ttl uses"
expect_eq "the agent lists only the single attached secret of a provider" \
	"$(probe "$UA" list "$MNT/agent-a/aws")" "a1"
expect_eq "the top-level listing shows a caller only its own agent, and self" \
	"$(probe "$UA" list "$MNT")" "agent-a self"

# ---- 2. another uid ---------------------------------------------------------------
expect_eq "another uid: open of the secret is EACCES" "$(probe "$UB" open "$F")" "EACCES"
expect_eq "another uid: stat of the secret is EACCES" "$(probe "$UB" stat "$F")" "EACCES"
expect_eq "another uid: listing the agent directory is EACCES" "$(probe "$UB" list "$MNT/agent-a")" "EACCES"
expect_eq "another uid: listing a provider directory of the agent is EACCES" \
	"$(probe "$UB" list "$MNT/agent-a/github")" "EACCES"
expect_fail_msg "another uid: cat says Permission denied" "Permission denied" as_uid "$UB" cat "$F"
expect_eq "another uid may stat the agent directory itself (500, agent's uid)" \
	"$(as_uid "$UB" stat -c '%a %u' "$MNT/agent-a" 2>&1)" "500 $UA"
expect_eq "another agent's uid lists only its own agent at the top" \
	"$(probe "$UB" list "$MNT")" "agent-b self"
top_c=$(probe "$UC" list "$MNT")
case "$top_c" in
"" | self) ok "an unmatched uid sees no agent at the top level" ;;
*) not_ok "an unmatched uid sees no agent at the top level"; echo "#   got: $top_c" ;;
esac
expect_eq "an unmatched uid: open of the secret is EACCES" "$(probe "$UC" open "$F")" "EACCES"
expect_eq "root is not special: root cannot open agent-a's secret (EACCES)" \
	"$("$PY" "$T_TMP/probe.py" open "$F" 2>&1)" "EACCES"
expect_eq "root matching a uid-0 agent reads that agent's secret" \
	"$("$PY" "$T_TMP/probe.py" open "$MNT/root-agent/github/token" 2>&1)" "ok $TLEN"

# ---- 3. candidates without grant, non-candidates --------------------------------------
A=$MNT/agent-a/github/admin
expect_eq "candidate without grant: stat -c %a is 0" "$(as_uid "$UA" stat -c '%a' "$A" 2>&1)" "0"
expect_eq "candidate without grant: ls -l shows ---------- with its size" \
	"$(as_uid "$UA" ls -ln "$MNT/agent-a/github" 2>&1 | awk '$NF == "admin" {print $1, $3, $5}')" \
	"---------- $UA $(len "$VALS/admin")"
expect_eq "candidate without grant: open is EACCES" "$(probe "$UA" open "$A")" "EACCES"
expect_fail_msg "candidate without grant: cat says Permission denied" "Permission denied" \
	as_uid "$UA" cat "$A"
expect_eq "non-candidate in a listed provider: open is ENOENT" \
	"$(probe "$UA" open "$MNT/agent-a/aws/a2")" "ENOENT"
expect_eq "non-candidate in a listed provider: stat is ENOENT" \
	"$(probe "$UA" stat "$MNT/agent-a/aws/a2")" "ENOENT"
expect_eq "a provider without candidates does not exist (ENOENT)" \
	"$(probe "$UA" stat "$MNT/agent-a/openai")" "ENOENT"
expect_eq "another agent's secret does not exist under this agent (ENOENT)" \
	"$(probe "$UA" open "$MNT/agent-a/openai/key")" "ENOENT"
expect_eq "an unknown agent does not exist (ENOENT)" "$(probe "$UA" stat "$MNT/no-such-agent")" "ENOENT"

# ---- 7. self ------------------------------------------------------------------------------
expect_eq "self: readlink as agent-a's uid is agent-a" "$(probe "$UA" readlink "$MNT/self")" "agent-a"
expect_eq "self: it is a symbolic link" "$(as_uid "$UA" stat -c '%F' "$MNT/self" 2>&1)" "symbolic link"
as_uid "$UA" cat "$MNT/self/github/token" >"$T_TMP/got.self" 2>&1
same_bytes "self: cat MNT/self/github/token as agent-a reads its token" "$T_TMP/got.self" "$VALS/token"
expect_eq "self: readlink as agent-b's uid is agent-b" "$(probe "$UB" readlink "$MNT/self")" "agent-b"
as_uid "$UB" cat "$MNT/self/openai/key" >"$T_TMP/got.selfb" 2>&1
same_bytes "self: agent-b reads its own secret through self" "$T_TMP/got.selfb" "$VALS/okey"
expect_eq "self: readlink as an unmatched uid is ENOENT" "$(probe "$UC" readlink "$MNT/self")" "ENOENT"
expect_eq "self: stat as an unmatched uid is ENOENT" "$(probe "$UC" stat "$MNT/self")" "ENOENT"
expect_eq "self: readlink as root (bound to root-agent) is root-agent" \
	"$("$PY" "$T_TMP/probe.py" readlink "$MNT/self" 2>&1)" "root-agent"

# ---- 6. every write is EROFS, root included -------------------------------------------------
WRITE_OPS="open-wronly open-rdwr open-trunc open-append create truncate unlink mkdir rmdir rename chmod chown link symlink mknod setxattr removexattr utime utime-times"
probe "$UA" writes "$F" "$MNT/agent-a/github" >"$T_TMP/writes.a"
"$PY" "$T_TMP/probe.py" writes "$MNT/root-agent/github/token" "$MNT/root-agent/github" >"$T_TMP/writes.root" 2>&1
for op in $WRITE_OPS; do
	expect_eq "EROFS as the agent: $op" "$(grep "^$op:" "$T_TMP/writes.a")" "$op:EROFS"
	expect_eq "EROFS as root: $op" "$(grep "^$op:" "$T_TMP/writes.root")" "$op:EROFS"
done
RO="Read-only file system"
expect_fail_msg "touch of a secret: Read-only file system" "$RO" as_uid "$UA" touch "$F"
expect_fail_msg "echo > secret: Read-only file system" "$RO" as_uid "$UA" sh -c 'echo x >"$1"' sh "$F"
expect_fail_msg "mkdir in a provider dir: Read-only file system" "$RO" as_uid "$UA" mkdir "$MNT/agent-a/github/d"
expect_fail_msg "rm -f of a secret: Read-only file system" "$RO" as_uid "$UA" rm -f "$F"
expect_fail_msg "mv of a secret: Read-only file system" "$RO" as_uid "$UA" mv "$F" "$MNT/agent-a/github/moved"
expect_fail_msg "chmod of a secret: Read-only file system" "$RO" as_uid "$UA" chmod 644 "$F"
expect_fail_msg "chown of a secret: Read-only file system" "$RO" as_uid "$UA" chown "$UA" "$F"
expect_fail_msg "ln of a secret: Read-only file system" "$RO" as_uid "$UA" ln "$F" "$MNT/agent-a/github/hard"
expect_fail_msg "ln -s in a provider dir: Read-only file system" "$RO" as_uid "$UA" ln -s x "$MNT/agent-a/github/sym"
expect_fail_msg "truncate of a secret: Read-only file system" "$RO" as_uid "$UA" truncate -s 0 "$F"
expect_fail_msg "root: touch at the mount root: Read-only file system" "$RO" touch "$MNT/new"
expect_fail_msg "root: mkdir at the mount root: Read-only file system" "$RO" mkdir "$MNT/newdir"
expect_fail_msg "root: chmod of the mount root: Read-only file system" "$RO" chmod 0777 "$MNT"
expect_fail_msg "root: rm of self: Read-only file system" "$RO" rm -f "$MNT/self"
expect_fail_msg "root: rm -rf of an agent dir: Read-only file system" "$RO" rm -rf "$MNT/root-agent/github"
as_uid "$UA" cat "$F" >"$T_TMP/got.after" 2>&1
same_bytes "after every write attempt the secret still reads the same" "$T_TMP/got.after" "$VALS/token"

# ---- 5. executable binding -------------------------------------------------------------------
FE=$MNT/agent-exe/github/token
as_uid "$UE" /usr/bin/cat "$FE" >"$T_TMP/got.exe" 2>&1
same_bytes "exe binding: the bound /usr/bin/cat (right sha256) reads the secret" "$T_TMP/got.exe" "$VALS/token"
cp /usr/bin/cat "$T_TMP/bin/cat"
printf '\0' >>"$T_TMP/bin/cat"
chmod 0755 "$T_TMP/bin/cat"
expect_fail_msg "exe binding: a copy of cat (one byte appended) elsewhere, same uid: Permission denied" \
	"Permission denied" as_uid "$UE" "$T_TMP/bin/cat" "$FE"
expect_eq "exe binding: the copy got no byte" "$(len "$T_TMP/out")" "0"
expect_eq "exe binding: python at the bound uid is EACCES" "$(probe "$UE" open "$FE")" "EACCES"
# Same path, other bytes: the copy bind-mounted over /usr/bin/cat in a private namespace.
expect_fail_msg "exe binding: a different binary at /usr/bin/cat itself: Permission denied" \
	"Permission denied" unshare --mount sh -c \
	'mount --bind "$1" /usr/bin/cat || exit 99; exec setpriv --reuid="$2" --regid="$2" --clear-groups /usr/bin/cat "$3"' \
	sh "$T_TMP/bin/cat" "$UE" "$FE"
expect_eq "exe binding: the fake /usr/bin/cat got no byte" "$(len "$T_TMP/out")" "0"

# ---- 8. container view: MNT/agent-a bind-mounted read-only in a private namespace ------------------
CT=$T_TMP/ctr/run/secrets
mkdir -p "$CT"
chmod -R 0755 "$T_TMP/ctr"
in_ctr() {
	unshare --mount sh -c 'mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" || exit 99
		shift 2; exec "$@"' sh "$MNT/agent-a" "$CT" "$@"
}
in_ctr setpriv --reuid="$UA" --regid="$UA" --clear-groups cat "$CT/github/token" >"$T_TMP/got.ctr" 2>&1
same_bytes "container: the agent reads /run/secrets/github/token (bind mount) exactly" "$T_TMP/got.ctr" "$VALS/token"
ctr_probe() { u=$1; shift; in_ctr setpriv --reuid="$u" --regid="$u" --clear-groups "$PY" "$T_TMP/probe.py" "$@" 2>&1; }
expect_eq "container: the agent lists its providers" "$(ctr_probe "$UA" list "$CT")" "aws github"
expect_eq "container: another uid cannot open the secret (EACCES)" "$(ctr_probe "$UB" open "$CT/github/token")" "EACCES"
expect_eq "container: another uid cannot list the bind mount (EACCES)" "$(ctr_probe "$UB" list "$CT")" "EACCES"
expect_eq "container: the ungranted candidate is EACCES there too" "$(ctr_probe "$UA" open "$CT/github/admin")" "EACCES"
expect_eq "container: .. of the bind mount is the host directory, not the mount root" \
	"$(ctr_probe "$UA" list "$CT/..")" "secrets"
expect_eq "container: other agents are not reachable through .." \
	"$(ctr_probe "$UA" stat "$CT/../agent-b")" "ENOENT"
expect_fail_msg "container: writes are refused (Read-only file system)" "$RO" \
	in_ctr setpriv --reuid="$UA" --regid="$UA" --clear-groups touch "$CT/github/token"
check "container: the bind mount stayed inside its namespace" eval '! mounted "$CT"'

# ---- 4. changes take effect on the next open, daemon still running ------------------------------
expect_eq "revoke: the granted secret opens before" "$(probe "$UA" open "$MNT/agent-a/github/rev")" "ok $(len "$VALS/rev")"
setup sa revoke agent-a github/rev
expect_eq "revoke: the next open is EACCES" "$(probe "$UA" open "$MNT/agent-a/github/rev")" "EACCES"

as_uid "$UA" cat "$MNT/agent-a/github/rot" >"$T_TMP/got.rot1" 2>&1
same_bytes "rotate: the first version reads before" "$T_TMP/got.rot1" "$VALS/rot1"
setup sa secret set github/rot --from-file "$VALS/rot2"
as_uid "$UA" cat "$MNT/agent-a/github/rot" >"$T_TMP/got.rot2" 2>&1
same_bytes "rotate: the next read returns the new (longer) value exactly" "$T_TMP/got.rot2" "$VALS/rot2"
want_size=$(len "$VALS/rot2") size=""
for _ in $(seq 30); do
	size=$(as_uid "$UA" stat -c %s "$MNT/agent-a/github/rot" 2>&1)
	[ "$size" = "$want_size" ] && break
	sleep 0.1
done
expect_eq "rotate: stat shows the new size (within 3 s)" "$size" "$want_size"

setup sa agent disable agent-a
expect_eq "disable: the agent directory is gone (ENOENT)" "$(probe "$UA" stat "$MNT/agent-a")" "ENOENT"
expect_eq "disable: the secret is gone (ENOENT)" "$(probe "$UA" open "$F")" "ENOENT"
expect_eq "disable: self is gone for the agent's uid (ENOENT)" "$(probe "$UA" readlink "$MNT/self")" "ENOENT"
setup sa agent enable agent-a
expect_eq "enable: the secret opens again" "$(probe "$UA" open "$F")" "ok $TLEN"
expect_eq "enable: self is back" "$(probe "$UA" readlink "$MNT/self")" "agent-a"

expect_eq "grant: an ungranted candidate is EACCES before" "$(probe "$UA" open "$MNT/agent-a/github/ttl")" "EACCES"
setup sa grant agent-a github/ttl --ttl 2s
expect_eq "grant --ttl 2s: the next open works" "$(probe "$UA" open "$MNT/agent-a/github/ttl")" "ok $(len "$VALS/ttl")"
sleep 3
expect_eq "grant --ttl 2s: after 3 s the open is EACCES" "$(probe "$UA" open "$MNT/agent-a/github/ttl")" "EACCES"

setup sa grant agent-a github/uses --uses 2
U=$MNT/agent-a/github/uses
expect_eq "grant --uses 2: first open works" "$(probe "$UA" open "$U")" "ok $(len "$VALS/uses")"
expect_eq "grant --uses 2: second open works" "$(probe "$UA" open "$U")" "ok $(len "$VALS/uses")"
expect_eq "grant --uses 2: third open is EACCES" "$(probe "$UA" open "$U")" "EACCES"
if [ -n "$SETUP_ERR" ]; then not_ok "shadm changes while mounted:${SETUP_ERR#;}"; SETUP_ERR=""; fi

# ---- 14. denial flood ---------------------------------------------------------------------------------
# Denials are counted per request the kernel sends. The first refused open after
# agent-a cached a dentry is asked twice (revalidate, then a fresh lookup), so the
# wrong uid opens once before the baseline; after that each open is one lookup.
probe "$UB" open "$F" >/dev/null
sleep 2   # let pending denials from above flush, so the row delta is the flood's
rows_before=$(aq count)
seq_before=$(aq maxseq)
expect_eq "flood: 2000 opens by a wrong uid are all EACCES" "$(probe "$UB" flood "$F" 2000)" "EACCES:2000"
expect_eq "flood: 2000 opens of an ungranted candidate are all EACCES" \
	"$(probe "$UA" flood "$MNT/agent-a/github/flood" 2000)" "EACCES:2000"
sleep 3
rows_after=$(aq count)
delta=$((rows_after - rows_before))
if [ "$delta" -lt 50 ]; then ok "flood: 4000 refused opens add fewer than 50 audit rows ($delta)"
else not_ok "flood: 4000 refused opens add fewer than 50 audit rows"; echo "#   got $delta rows"; fi
expect_eq "flood: the deny events' counts add up to the 2000 attempts" \
	"$(aq sum type=deny agent=agent-a secret=github/flood reason=no-grant uid=$UA seq\>$seq_before)" "2000"
expect_eq "flood: the wrong uid's deny events (reason uid) count its 2000 attempts" \
	"$(aq sum type=deny agent=agent-a reason=uid uid=$UB seq\>$seq_before)" "2000"

# ---- 9. the audit trail ----------------------------------------------------------------------------------
pidout=$(probe "$UA" pidopen "$F")
RPID=${pidout%% *}
expect_eq "audit: a reader's open (pid $RPID) succeeds" "${pidout#* }" "ok $TLEN"
sleep 2
sa --json audit >"$T_TMP/audit.json" 2>"$T_TMP/err"; arc=$?
expect_eq "audit: shadm --json audit exits 0 and prints only JSON objects" \
	"$arc $("$PY" "$AQ" bad <"$T_TMP/audit.json" | head -c 200)" "0 "
q() { "$PY" "$AQ" "$@" <"$T_TMP/audit.json"; }
expect_eq "audit: that open has exactly one resolve event with its uid, gid, pid, exe and version" \
	"$(q count type=resolve agent=agent-a secret=github/token version=1 uid=$UA gid=$UA pid=$RPID exe=$PYREAL actor=scopeholdfs)" "1"
# reads from threads that are not the process: attributed to the process
read -r TPID TTIDS TOKS <<<"$(probe "$UA" threadopen "$F" 5)"
expect_eq "threads: 5 reads, each from a new thread, succeed" "$TOKS" "5"
sa --json audit >"$T_TMP/audit-t.json" 2>/dev/null
expect_eq "threads: all 5 resolve events name the process (pid $TPID), not a thread" \
	"$("$PY" "$AQ" count type=resolve agent=agent-a pid=$TPID exe=$PYREAL <"$T_TMP/audit-t.json")" "5"
tid_rows=0
for t in ${TTIDS//,/ }; do
	[ "$t" = "$TPID" ] && continue
	tid_rows=$((tid_rows + $("$PY" "$AQ" count type=resolve pid="$t" <"$T_TMP/audit-t.json")))
done
expect_eq "threads: no resolve event names a thread id" "$tid_rows" "0"
expect_ge "audit: cat's reads are resolve events with exe /usr/bin/cat" \
	"$(q count type=resolve agent=agent-a secret=github/token uid=$UA exe=/usr/bin/cat)" 3
expect_eq "audit: every resolve event carries a fingerprint" \
	"$(q count type=resolve fingerprint?)" "$(q count type=resolve)"
fp1=$(q field:fingerprint type=resolve secret=github/rot version=1)
fp2=$(q field:fingerprint type=resolve secret=github/rot version=2)
if [ -n "$fp1" ] && [ -n "$fp2" ] && [ "$fp1" != "$fp2" ]; then
	ok "audit: the rotated secret's resolves name version 1 then 2, with different fingerprints"
else not_ok "audit: the rotated secret's resolves name version 1 then 2, with different fingerprints"; echo "#   $fp1 / $fp2"; fi
expect_ge "audit: deny no-grant for the ungranted candidate, with the caller's uid and gid" \
	"$(q count type=deny agent=agent-a secret=github/admin reason=no-grant uid=$UA gid=$UA pid\>0)" 1
expect_ge "audit: deny revoked after revoke" "$(q count type=deny agent=agent-a secret=github/rev reason=revoked uid=$UA)" 1
expect_ge "audit: deny grant-expired after the ttl" "$(q count type=deny agent=agent-a secret=github/ttl reason=grant-expired uid=$UA)" 1
expect_ge "audit: deny used-up after the uses" "$(q count type=deny agent=agent-a secret=github/uses reason=used-up uid=$UA)" 1
expect_eq "audit: the uses grant resolved exactly twice" \
	"$(q count type=resolve agent=agent-a secret=github/uses)" "2"
expect_ge "audit: the copied cat is denied with reason exe or exe-sha256" \
	"$(q count type=deny agent=agent-exe reason='exe|exe-sha256' uid=$UE)" 1
expect_ge "audit: the fake /usr/bin/cat is denied with reason exe-sha256" \
	"$(q count type=deny agent=agent-exe reason=exe-sha256 uid=$UE exe=/usr/bin/cat)" 1
expect_ge "audit: the bound cat's read is a resolve event" \
	"$(q count type=resolve agent=agent-exe secret=github/token uid=$UE exe=/usr/bin/cat)" 1
sa audit >"$T_TMP/audit.txt" 2>&1
check "audit: shadm audit (table) lists resolve and deny events" \
	eval 'grep -q resolve "$T_TMP/audit.txt" && grep -q deny "$T_TMP/audit.txt"'
check "audit: no value or fragment of one appears in shadm audit output" \
	eval '! grep -aqE "e2eSECRET|e2eTOKEN" "$T_TMP/audit.txt" "$T_TMP/audit.json"'

# ---- 10. plaintext never lands under the store directory ---------------------------------------------------
leak_scan() { # prints the files under $1 that hold any value or marker
	"$PY" - "$1" "$VALS" <<'EOF'
import os, sys
root, vals = sys.argv[1], sys.argv[2]
needles = [open(os.path.join(vals, v), "rb").read() for v in os.listdir(vals)]
needles = [n.rstrip(b"\n") for n in needles] + [b"e2eSECRET", b"e2eTOKEN"]
for d, _, files in os.walk(root):
    for f in files:
        p = os.path.join(d, f)
        data = open(p, "rb").read()
        for n in needles:
            if n in data:
                print(p, n[:12])
                break
EOF
}
expect_eq "no value appears in any file under the store directory (daemon running)" "$(leak_scan "$ST")" ""
check "grep -a -r finds no value marker under the store directory" \
	eval '! grep -a -r -q -E "e2eSECRET|e2eTOKEN" "$ST"'
check "no value appears in the daemon's log" eval '! grep -a -q -E "e2eSECRET|e2eTOKEN" "$LOG"'

# ---- 11. kill -9 during reads, restart on the stale mountpoint -----------------------------------------------
probe "$UA" loop "$F" 3 >"$T_TMP/loop.out" &
LOOP=$!
sleep 1
kill9_fs "$FS_PID"
wait "$LOOP"
read -r LPID SERVED FAILED <"$T_TMP/loop.out"
expect_ge "kill -9: the read loop was served before the kill" "$SERVED" 1
start_fs "$CONF" "$LOG"    # mountpoint from the config this time
if wait_mount "$MNT" "$FS_PID"; then
	ok "restart: the daemon takes over the stale mountpoint (from the config) and mounts"
elif grep -qF "fusermount3 -uz $MNT" "$LOG"; then
	ok "restart: the stale mount is reported with the exact command"
	fusermount3 -uz "$MNT"
	start_fs "$CONF" "$LOG"
	expect_mount "restart after fusermount3 -uz mounts" "$MNT" "$LOG"
else
	not_ok "restart: the daemon takes over the stale mountpoint and mounts"; show_log "$LOG"; exit 1
fi
as_uid "$UA" cat "$F" >"$T_TMP/got.restart" 2>&1
same_bytes "restart: the granted read works again" "$T_TMP/got.restart" "$VALS/token"
expect_ge "kill -9: every read served ($SERVED) has its resolve event" \
	"$(aq count type=resolve secret=github/token pid=$LPID uid=$UA)" "$SERVED"
expect_verify "kill -9: shadm audit verify passes"

# ---- 13. SIGTERM ----------------------------------------------------------------------------------------------
stop_fs "$FS_PID"
expect_eq "SIGTERM: the daemon exits 0" "$STOP_RC" "0"
check "SIGTERM: the mountpoint is unmounted" eval '! mounted "$MNT"'
expect_eq "after unmount: no value appears under the store directory" "$(leak_scan "$ST")" ""

# ---- 12. a full audit disk fails closed ------------------------------------------------------------------------
mkdir -m 0700 "$TINY"
if ! mount -t tmpfs -o size=2m,mode=0700 tmpfs "$TINY"; then
	not_ok "full disk: mount a 2 MiB tmpfs for the store"; exit 1
fi
write_conf "$CONF2" "$TINY" "$MNT2"
setup sa2 init
setup sa2 provider add p
setup sa2 secret set p/tiny --from-file "$VALS/tiny"
setup sa2 project add pr
setup sa2 project attach pr p
setup sa2 agent add tiny-agent --uid "$UT"
setup sa2 assign tiny-agent pr
setup sa2 grant tiny-agent p/tiny
setup_check "full disk: store on the tmpfs"
start_fs "$CONF2" "$T_TMP/fs2.log" "$MNT2"
require_mount "full disk: scopeholdfs mounts the tiny store" "$MNT2" "$T_TMP/fs2.log"
FT=$MNT2/tiny-agent/p/tiny
expect_eq "full disk: a read works while there is space" "$(probe "$UT" open "$FT")" "ok $(len "$VALS/tiny")"
dd if=/dev/zero of="$TINY/filler" bs=4k 2>/dev/null
expect_eq "full disk: the tmpfs is full" "$(df --output=avail -B1 "$TINY" | tail -n 1 | tr -d ' ')" "0"
# Served events go to the audit journal first: its last page may still
# take a few records, and each open that gets a value has written one.
# Once no record fits, every open fails closed.
FULL_SERVED=0
for _ in $(seq 1 200); do
	FULL_RES=$(probe "$UT" open "$FT")
	[ "$FULL_RES" = "ok $(len "$VALS/tiny")" ] || break
	FULL_SERVED=$((FULL_SERVED + 1))
done
expect_eq "full disk: open fails with EIO once no audit record fits" "$FULL_RES" "EIO"
# SQLite may free blocks (a WAL cut back after a checkpoint) and let one more
# record fit: cat gets nothing, or the exact value, counted as served.
as_uid "$UT" cat "$FT" >"$T_TMP/got.full" 2>/dev/null
if [ "$(len "$T_TMP/got.full")" = 0 ]; then
	ok "full disk: cat gets zero bytes (or the exact, audited value)"
elif cmp -s "$T_TMP/got.full" "$VALS/tiny"; then
	FULL_SERVED=$((FULL_SERVED + 1))
	ok "full disk: cat gets zero bytes (or the exact, audited value)"
else
	not_ok "full disk: cat gets zero bytes (or the exact, audited value)"
fi
check "full disk: the daemon is still running" kill -0 "$FS_PID"
check "full disk: the daemon logs that the audit trail cannot be written" \
	grep -q "cannot write the audit trail" "$T_TMP/fs2.log"
rm -f "$TINY/filler"
as_uid "$UT" cat "$FT" >"$T_TMP/got.freed" 2>&1
same_bytes "full disk: after freeing space the same daemon serves the exact value" "$T_TMP/got.freed" "$VALS/tiny"
expect_eq "full disk: resolve events exist exactly for the $((FULL_SERVED + 2)) reads that were served" \
	"$(sa2 --json audit 2>/dev/null | "$PY" "$AQ" count type=resolve secret=p/tiny)" "$((FULL_SERVED + 2))"
stop_fs "$FS_PID"
expect_eq "full disk: SIGTERM still exits 0" "$STOP_RC" "0"

t_finish

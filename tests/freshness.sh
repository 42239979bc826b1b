#!/bin/bash
# freshness.sh - what the kernel's name cache must never change (issue 10).
# scopeholdfs lets the kernel keep names (not attributes, not negative
# entries, not `self`'s target, never AGENT/PROVIDER) for a second, to spare
# a LOOKUP per path component. Every check here runs right after the change
# it depends on - no sleep, no retry - with the agent's own walk still in the
# kernel's cache, on a real mount with real uids: the next open obeys every
# store change, `self` answers per caller, a stranger learns nothing from the
# agent's cached walk, stat shows the store as it is now, and a rotated value
# of another length reads exactly however it is read, with and without
# `[mount] cache = kernel`.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
m_start freshness "it mounts, and runs readers as other uids with setpriv" dd

UA=23501 UB=23502 UC=23503
ST=$T_TMP/store VALS=$T_TMP/vals MNT=$T_TMP/mnt CONF=$T_TMP/scopehold.ini LOG=$T_TMP/fs.log
MNTS="$MNT"
mkdir -m 0700 "$ST" "$VALS"
mkdir -m 0755 "$MNT"
: >"$LOG"

printf 'tok-frSECRET-0001'            >"$VALS/token"
printf 'key-frSECRET-b'               >"$VALS/key"
printf 'short-frSECRET'               >"$VALS/rot1"
printf 'a-much-longer-second-version-frSECRET-%s\n' "$(printf 'x%.0s' $(seq 200))" >"$VALS/rot2"
printf 'v3-frSECRET'                  >"$VALS/rot3"
printf 'new-frSECRET-c'               >"$VALS/new"
printf 'once-frSECRET-d'              >"$VALS/once"

write_conf "$CONF" "$ST" "$MNT"
setup sa init
for p in github openai aws; do setup sa provider add "$p"; done
setup sa secret set github/token --from-file "$VALS/token"
setup sa secret set github/rot --from-file "$VALS/rot1"
setup sa secret set github/once --from-file "$VALS/once"
setup sa secret set github/late --from-file "$VALS/new"
setup sa secret set openai/key --from-file "$VALS/key"
setup sa secret set aws/new --from-file "$VALS/new"
setup sa project add pa
setup sa project attach pa github/token
setup sa project attach pa github/rot
setup sa project attach pa github/once
setup sa project attach pa github/late
setup sa project add pb
setup sa project attach pb openai/key
setup sa agent add agent-a --uid "$UA"
setup sa agent add agent-b --uid "$UB"
setup sa assign agent-a pa
setup sa assign agent-b pb
for s in github/token github/rot aws/new; do setup sa grant agent-a "$s"; done
setup sa grant agent-b openai/key
setup_check "freshness setup: shadm commands failed"

A=$MNT/agent-a/github
start_fs "$CONF" "$LOG" "$MNT"
expect_mount "freshness: scopeholdfs mounts $MNT" "$MNT" "$LOG"

# ---- a stranger after the agent walked there --------------------------------------------
expect_eq "warm: agent-a reads its token" "$(probe "$UA" open "$A/token")" "ok $(len "$VALS/token")"
denies0=$(aq count type=deny uid="$UC")
expect_eq "stranger right after the agent's read: stat of the secret is EACCES" \
	"$(probe "$UC" stat "$A/token")" "EACCES"
probe "$UA" open "$A/token" >/dev/null
expect_eq "stranger right after the agent's read: an O_PATH open of the secret is EACCES" \
	"$(probe "$UC" opath "$A/token")" "EACCES"
probe "$UA" open "$A/token" >/dev/null
expect_eq "stranger right after the agent's read: listing the provider is EACCES" \
	"$(probe "$UC" list "$A")" "EACCES"
probe "$UA" open "$A/token" >/dev/null
expect_eq "stranger right after the agent's read: open is EACCES" "$(probe "$UC" open "$A/token")" "EACCES"
probe "$UA" open "$A/token" >/dev/null
expect_eq "stranger right after the agent's read: stat --cached=always (AT_STATX_DONT_SYNC) is refused" \
	"$(as_uid "$UC" stat --cached=always -c '%a %s' "$A/token" 2>&1 | sed 's/.*: //')" "Permission denied"
probe "$UA" open "$A/token" >/dev/null
expect_eq "stranger right after the agent's read: ls -l of the secret shows nothing" \
	"$(as_uid "$UC" ls -ln "$A/token" 2>/dev/null)" ""
# the daemon writes coalesced denials within about a second
for _ in $(seq 50); do
	[ "$(aq count type=deny uid="$UC")" -gt "$denies0" ] && break
	sleep 0.1
done
expect_ge "stranger: its probes are recorded as deny events" "$(aq count type=deny uid="$UC")" $((denies0 + 1))
expect_eq "stranger: the agent still reads right after being probed" \
	"$(probe "$UA" open "$A/token")" "ok $(len "$VALS/token")"

# ---- self answers per caller, alternating as fast as the shell can --------------------------
bad=0
for _ in $(seq 10); do
	as_uid "$UA" cat "$MNT/self/github/token" >"$T_TMP/self.a" 2>/dev/null
	as_uid "$UB" cat "$MNT/self/openai/key" >"$T_TMP/self.b" 2>/dev/null
	ra=$(probe "$UB" open "$MNT/self/github/token")
	rb=$(probe "$UA" open "$MNT/self/openai/key")
	cmp -s "$T_TMP/self.a" "$VALS/token" && cmp -s "$T_TMP/self.b" "$VALS/key" &&
		[ "$ra" = ENOENT ] && [ "$rb" = ENOENT ] || bad=$((bad + 1))
done
expect_eq "self: 10 alternations of agent-a and agent-b each read only their own secret" "$bad" 0
# both at once, each in a loop, checking every value it gets (against copies it may read)
mkdir -m 0755 "$T_TMP/pub"
install -m 0644 "$VALS/token" "$VALS/key" "$T_TMP/pub/"
as_uid "$UA" sh -c 'n=0; while [ $n -lt 200 ]; do cat "$1/self/github/token" | cmp -s - "$2" || echo BAD; n=$((n+1)); done' \
	sh "$MNT" "$T_TMP/pub/token" >"$T_TMP/loop.a" 2>&1 &
la=$!
as_uid "$UB" sh -c 'n=0; while [ $n -lt 200 ]; do cat "$1/self/openai/key" | cmp -s - "$2" || echo BAD; n=$((n+1)); done' \
	sh "$MNT" "$T_TMP/pub/key" >"$T_TMP/loop.b" 2>&1 &
lb=$!
wait "$la" "$lb"
expect_eq "self: 200 concurrent reads each by agent-a and agent-b all return their own value" \
	"$(cat "$T_TMP/loop.a" "$T_TMP/loop.b" | grep -c BAD)" "0"

# ---- the next open obeys every change, with the walk cached -----------------------------------
probe "$UA" open "$A/token" >/dev/null
setup sa revoke agent-a github/token
expect_eq "revoke: the very next open is EACCES" "$(probe "$UA" open "$A/token")" "EACCES"
expect_eq "revoke: ls -l shows 0000 at once" "$(as_uid "$UA" stat -c %a "$A/token" 2>&1)" "0"
setup sa grant agent-a github/token
expect_eq "grant again: the very next open reads" "$(probe "$UA" open "$A/token")" "ok $(len "$VALS/token")"
expect_eq "grant again: ls -l shows 0400 at once" "$(as_uid "$UA" stat -c %a "$A/token" 2>&1)" "400"

setup sa agent disable agent-a
expect_eq "disable: the very next open is ENOENT" "$(probe "$UA" open "$A/token")" "ENOENT"
expect_eq "disable: self is gone at once" "$(probe "$UA" readlink "$MNT/self")" "ENOENT"
setup sa agent enable agent-a
expect_eq "enable: the very next open reads" "$(probe "$UA" open "$A/token")" "ok $(len "$VALS/token")"

setup sa grant agent-a github/once --uses 1
expect_eq "uses 1: the first open reads" "$(probe "$UA" open "$A/once")" "ok $(len "$VALS/once")"
expect_eq "uses 1: the very next open is EACCES" "$(probe "$UA" open "$A/once")" "EACCES"

setup sa grant agent-a github/once --ttl 2s
expect_eq "ttl 2s: an open at once reads" "$(probe "$UA" open "$A/once")" "ok $(len "$VALS/once")"
sleep 2.2
expect_eq "ttl 2s: the first open after it is EACCES" "$(probe "$UA" open "$A/once")" "EACCES"

expect_eq "late grant: an ungranted candidate is EACCES" "$(probe "$UA" open "$A/late")" "EACCES"
setup sa grant agent-a github/late
expect_eq "late grant: the very next open reads" "$(probe "$UA" open "$A/late")" "ok $(len "$VALS/new")"

expect_eq "new candidate: aws/new is not one yet (ENOENT)" "$(probe "$UA" open "$MNT/agent-a/aws/new")" "ENOENT"
expect_eq "new candidate: its provider is not listed yet" "$(probe "$UA" list "$MNT/agent-a")" "github"
setup sa project attach pa aws/new
expect_eq "new candidate: the very next open reads" "$(probe "$UA" open "$MNT/agent-a/aws/new")" "ok $(len "$VALS/new")"
expect_eq "new candidate: its provider is listed at once" "$(probe "$UA" list "$MNT/agent-a")" "aws github"
setup sa project detach pa aws/new
expect_eq "detach: the very next open is ENOENT" "$(probe "$UA" open "$MNT/agent-a/aws/new")" "ENOENT"

# rotation to another length: read by cat, by a reader trusting fstat's size, by dd bs=1
rot_checks() {   # MODE VALUEFILE
	as_uid "$UA" cat "$A/rot" >"$T_TMP/rot.cat" 2>&1
	same_bytes "$1: rotated to $(len "$2") bytes: cat reads it exactly, at once" "$T_TMP/rot.cat" "$2"
	as_uid "$UA" "$PY" "$T_TMP/probe.py" fstatcat "$A/rot" >"$T_TMP/rot.fst" 2>&1
	same_bytes "$1: rotated to $(len "$2") bytes: os.read(fd, fstat size) reads it exactly" "$T_TMP/rot.fst" "$2"
	as_uid "$UA" dd if="$A/rot" bs=1 status=none >"$T_TMP/rot.dd" 2>&1
	same_bytes "$1: rotated to $(len "$2") bytes: dd bs=1 reads it exactly" "$T_TMP/rot.dd" "$2"
	expect_eq "$1: rotated to $(len "$2") bytes: stat shows the size at once" \
		"$(as_uid "$UA" stat -c %s "$A/rot" 2>&1)" "$(len "$2")"
}
as_uid "$UA" cat "$A/rot" >/dev/null
setup sa secret set github/rot --from-file "$VALS/rot2"
rot_checks "direct I/O" "$VALS/rot2"
setup sa secret set github/rot --from-file "$VALS/rot3"
rot_checks "direct I/O" "$VALS/rot3"

stop_fs "$FS_PID"
expect_eq "freshness: the direct-I/O daemon stops cleanly" "$STOP_RC" "0"

# ---- the same with the page cache ------------------------------------------------------------
sed -i '/^\[mount\]$/a cache = kernel' "$CONF"
start_fs "$CONF" "$LOG" "$MNT"
expect_mount "freshness: scopeholdfs mounts with cache = kernel" "$MNT" "$LOG"
as_uid "$UA" cat "$A/rot" >"$T_TMP/rot.k" 2>&1
same_bytes "cache = kernel: the current version reads" "$T_TMP/rot.k" "$VALS/rot3"
as_uid "$UA" cat "$A/rot" >/dev/null
setup sa secret set github/rot --from-file "$VALS/rot2"
rot_checks "cache = kernel" "$VALS/rot2"
setup sa secret set github/rot --from-file "$VALS/rot1"
rot_checks "cache = kernel" "$VALS/rot1"
sa audit >/dev/null 2>&1
expect_eq "cache = kernel: the last resolve recorded the version that was read (5)" \
	"$(sa --json audit --event resolve --secret github/rot --limit 1 | "$PY" -c 'import json,sys; print(json.loads(sys.stdin.readline())["version"])')" "5"
setup sa revoke agent-a github/rot
expect_eq "cache = kernel: revoke: the very next open is EACCES" "$(probe "$UA" open "$A/rot")" "EACCES"
stop_fs "$FS_PID"
expect_eq "freshness: the page-cache daemon stops cleanly" "$STOP_RC" "0"
t_finish

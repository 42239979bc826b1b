#!/bin/bash
# display.sh - what shadm and scopehold print for a person never carries a
# caller's control bytes raw (issue 14 §3). A real process whose executable
# path holds a newline, "ESC[2K CR" (erase the line, go to its start) and a
# backslash reads through a real mount as a uid that may not, so the mount
# records the deny with that path; then `shadm audit`, `requests`, `agent
# list` and `agent show`, and the error lines of both programs, must show it
# escaped (\n, \x1b, \\) on one line, while --json keeps the exact bytes.
# The harness is tests/mount.sh (skip without FUSE or root, mount with a
# deadline, always unmount and kill our daemon on exit).
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
m_start display "it mounts and runs readers as other uids with setpriv"

UA=24310 UX=24311 UP=24312   # need not exist in /etc/passwd
ST=$T_TMP/store MNT=$T_TMP/mnt CONF=$T_TMP/scopehold.ini LOG=$T_TMP/fs.log
SH="$ROOT/$B/scopehold"
MNTS=$MNT
mkdir -m 0700 "$ST"
mkdir -m 0755 "$MNT" "$T_TMP/bin"
: >"$LOG"

# The hostile executable: a copy of cat whose file name would erase the
# audit row it appears in and print "FORGED" at the start of the line.
EXE="$T_TMP/bin/ca"$'\n''t'$'\x1b''[2K'$'\r''FORGED\x'
SHOWN="$T_TMP/bin/ca\\nt\\x1b[2K\\rFORGED\\\\x"     # the same path, escaped
cp /bin/cat "$EXE" && chmod 0755 "$EXE"

# raw FILE: the characters in FILE a terminal would act on, other than the
# line ends (C0, DEL, C1), or "invalid UTF-8"; empty when there are none
raw() {
	"$PY" -c '
import sys, unicodedata
b = open(sys.argv[1], "rb").read()
try:
    s = b.decode("utf-8")
except UnicodeDecodeError:
    print("invalid UTF-8"); sys.exit(0)
bad = sorted({"%02x" % ord(c) for c in s if c != "\n" and unicodedata.category(c) == "Cc"})
print(" ".join(bad))' "$1"
}
# lines FILE: how many lines FILE has
lines() { wc -l <"$1" | tr -d ' '; }

write_conf "$CONF" "$ST" "$MNT"
printf 'display-TOKEN-1' >"$T_TMP/v1"
setup sa init
setup sa provider add gh
setup sa secret set gh/token --from-file "$T_TMP/v1"
setup sa secret set gh/other --from-file "$T_TMP/v1"
setup sa project add p
setup sa project attach p gh
setup sa agent add agent-a --uid "$UA"
setup sa assign agent-a p
setup sa grant agent-a gh/token
setup_check "display setup: shadm commands failed"

start_fs "$CONF" "$LOG" "$MNT"
expect_mount "scopeholdfs mounts $MNT within 10 s" "$MNT" "$LOG"

# ---- the denied reads --------------------------------------------------------------
expect_fail_msg "the hostile cat, as a uid no agent has, is refused" "Permission denied" \
	as_uid "$UX" "$EXE" "$MNT/agent-a/gh/token"
expect_fail_msg "the hostile cat, as the agent, on a candidate it holds no grant for, is refused" \
	"Permission denied" as_uid "$UA" "$EXE" "$MNT/agent-a/gh/other"

# ---- shadm audit ----------------------------------------------------------------------
sa --json audit >"$T_TMP/audit.json" 2>"$T_TMP/err"
expect_eq "audit --json: the deny of the other uid carries the exact executable path" \
	"$("$PY" -c '
import json, sys
want = sys.argv[2]
n = 0
for l in open(sys.argv[1], encoding="utf-8"):
    e = json.loads(l)
    if e["type"] == "deny" and e["uid"] == int(sys.argv[3]) and e["exe"] == want:
        n += 1
print(n)' "$T_TMP/audit.json" "$EXE" "$UX")" 1
expect_eq "audit --json: no raw control byte (JSON escapes them)" "$(raw "$T_TMP/audit.json")" ""
NEV=$(lines "$T_TMP/audit.json")
sa audit >"$T_TMP/audit.txt" 2>"$T_TMP/err"
expect_eq "audit: the table holds no raw control byte" "$(raw "$T_TMP/audit.txt")" ""
expect_eq "audit: one line per event plus the header (the newline split no row)" \
	"$(lines "$T_TMP/audit.txt")" "$((NEV + 1))"
expect_eq "audit: the deny row of the other uid shows the path escaped" \
	"$(grep -F "uid=$UX " "$T_TMP/audit.txt" | grep -cF "exe=$SHOWN")" 1
expect_eq "audit: no line starts with the forged text" "$(grep -c '^FORGED' "$T_TMP/audit.txt")" 0
sa audit --all-workspaces >"$T_TMP/audit-all.txt" 2>&1
expect_eq "audit --all-workspaces: no raw control byte either" "$(raw "$T_TMP/audit-all.txt")" ""
# --follow prints each event as it comes, not through the table: escaped the same
timeout -s INT 2 "$SHADM" -c "$CONF" audit --follow --after 0 >"$T_TMP/follow.txt" 2>&1
expect_eq "audit --follow: no raw control byte either" "$(raw "$T_TMP/follow.txt")" ""
expect_eq "audit --follow: the deny row of the other uid shows the path escaped" \
	"$(grep -F "uid=$UX " "$T_TMP/follow.txt" | grep -cF "exe=$SHOWN")" 1

# ---- requests, agent list and show ------------------------------------------------------
# the daemon writes the requests it counted at its next tick (every second): wait up to 5 s
for _ in $(seq 50); do
	sa requests 2>/dev/null | grep -qF agent-a && break
	sleep 0.1
done
sa requests >"$T_TMP/req.txt" 2>&1
expect_eq "requests: no raw control byte" "$(raw "$T_TMP/req.txt")" ""
expect_eq "requests: the agent's request shows the executable escaped" \
	"$(grep -F "agent-a" "$T_TMP/req.txt" | grep -cF "$SHOWN")" 1
expect_eq "requests --json: the exact path" \
	"$(sa --json requests | "$PY" -c '
import json, sys
print(sum(1 for l in sys.stdin if json.loads(l).get("exe") == sys.argv[1]))' "$EXE")" 1

sa agent add agent-p --uid "$UP" --exe "$EXE" >"$T_TMP/add.out" 2>"$T_TMP/add.err"
expect_eq "agent add: the path-only warning shows the path escaped, on one line" \
	"$(cat "$T_TMP/add.err")" \
	"shadm: warning: agent 'agent-p' is bound to $SHOWN by path only; add --exe-sha256 so a different binary at that path is refused"
sa agent list >"$T_TMP/list.txt" 2>&1
expect_eq "agent list: no raw control byte" "$(raw "$T_TMP/list.txt")" ""
expect_eq "agent list: the executable escaped" "$(grep -F "agent-p" "$T_TMP/list.txt" | grep -cF "$SHOWN")" 1
sa agent show agent-p >"$T_TMP/show.txt" 2>&1
expect_eq "agent show: no raw control byte" "$(raw "$T_TMP/show.txt")" ""
expect_eq "agent show: the exe line escaped" "$(grep '^exe:' "$T_TMP/show.txt")" "exe:      $SHOWN"
expect_eq "agent show --json: the exact path" \
	"$(sa --json agent show agent-p | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["exe"] == sys.argv[1])' "$EXE")" True

# ---- error lines -----------------------------------------------------------------------
expect_run "shadm: an error quoting a name with controls shows them escaped on one line" 1 \
	"shadm: invalid name 'x\\ny\\x1b[2K\\r': use 1-128 of A-Z a-z 0-9 . _ - , not starting with . or -" \
	sa agent show $'x\ny\x1b[2K\r'
expect_run "shadm: a usage error quoting an argument escapes it" 2 \
	"shadm: unexpected argument 'a\\x1b[31mb'" \
	sa provider list $'a\x1b[31mb'
expect_run "scopehold: an error quoting the mount path escapes it" 1 \
	"scopehold: no agent matches this process ($T_TMP/no\\x1bwhere/self does not exist)" \
	"$SH" --mount "$T_TMP/no"$'\x1b'"where" ls

t_finish

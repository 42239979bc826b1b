#!/bin/bash
# agent.sh - end-to-end tests of `scopehold`, the agent-side CLI, on a real
# scopeholdfs mount read by real, different uids (setpriv): run (-e, env
# files, fail closed, NUL values), inject (exact bytes, 0600, nothing left
# behind on failure), ls (text and JSON), refused input, executable binding
# to scopehold itself, and the audit trail its reads leave. The harness is
# tests/mount.sh, as for e2e.sh.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
m_start agent "it mounts, and runs scopehold as other uids with setpriv"

UA=23501 UB=23502 UC=23503 UX=23504   # need not exist in /etc/passwd
ST=$T_TMP/store VALS=$T_TMP/vals MNT=$T_TMP/mnt CONF=$T_TMP/scopehold.ini LOG=$T_TMP/fs.log
HA=$T_TMP/home-a                      # agent-a's files, as the agent would keep them
MNTS=$MNT
mkdir -m 0700 "$ST" "$VALS"
mkdir -m 0755 "$MNT" "$T_TMP/bin"
install -d -m 0700 -o "$UA" -g "$UA" "$HA"
: >"$LOG"
if [ ! -x "$ROOT/$B/scopehold" ]; then not_ok "agent: $ROOT/$B/scopehold is not built (run 'make')"; exit 1; fi
# a copy every uid can execute; the audit names it as the reader's executable
SH=$T_TMP/bin/scopehold
install -m 0755 "$ROOT/$B/scopehold" "$SH"
SH_SHA=$(sha256sum "$SH" | cut -d' ' -f1)

# as_a CMD...: CMD as agent-a's uid, from its home; sh_a ARGS...: scopehold as agent-a
as_a() { (cd "$HA" && as_uid "$UA" "$@"); }
sh_a() { as_a "$SH" --mount "$MNT" "$@"; }
# afile NAME: a file in agent-a's home with stdin as content, owned by agent-a
afile() { cat >"$HA/$1"; chown "$UA:$UA" "$HA/$1"; }

# ---- the store --------------------------------------------------------------------
write_conf "$CONF" "$ST" "$MNT"
# Each value carries a marker (agTOKEN) for the leak scans.
printf 'ghp_agTOKEN $HOME "q" 1'   >"$VALS/token"
printf 'aws-agTOKEN-2'             >"$VALS/aws"
printf 'admin-agTOKEN-3'           >"$VALS/admin"
printf 'bin\000agTOKEN-4'          >"$VALS/nul"
printf 'line1\nagTOKEN-5\n'        >"$VALS/multi"
printf 'once-agTOKEN-6'            >"$VALS/once"
printf 'audited-agTOKEN-7'         >"$VALS/audited"
printf 'b-agTOKEN-8'               >"$VALS/b"

setup sa init
for p in gh aws; do setup sa provider add "$p"; done
for s in token admin nul multi once audited; do setup sa secret set "gh/$s" --from-file "$VALS/$s"; done
setup sa secret set aws/key --from-file "$VALS/aws"
setup sa secret set aws/b --from-file "$VALS/b"
setup sa project add pa
setup sa project attach pa gh
setup sa project attach pa aws/key
setup sa project add pb
setup sa project attach pb aws/b
setup sa agent add agent-a --uid "$UA"
setup sa agent add agent-b --uid "$UB"
setup sa agent add agent-x --uid "$UX" --exe "$SH" --exe-sha256 "$SH_SHA"
setup sa assign agent-a pa
setup sa assign agent-b pb
setup sa assign agent-x pa
for s in gh/token gh/nul gh/multi gh/audited aws/key; do setup sa grant agent-a "$s"; done
setup sa grant agent-a gh/once --uses 1
setup sa grant agent-b aws/b
setup sa grant agent-x gh/token
setup_check "agent setup: shadm commands failed"
start_fs "$CONF" "$LOG" "$MNT"
expect_mount "agent: scopeholdfs mounts $MNT within 10 s" "$MNT" "$LOG"

# ---- run: -e -----------------------------------------------------------------------
# PR VAR...: prints the variables' values byte for byte, each followed by '|'
PR=$T_TMP/bin/pr
cat >"$PR" <<'EOF'
#!/bin/sh
for v in "$@"; do eval "printf %s \"\$$v\""; printf '|'; done
EOF
chmod 0755 "$PR"
want_pr() { for f in "$@"; do cat "$f"; printf '|'; done; }

as_a "$SH" --mount "$MNT" run -e TOKEN=gh/token -- sh -c 'printf %s "$TOKEN"' >"$T_TMP/got.e" 2>"$T_TMP/err"
same_bytes "run -e VAR=PROVIDER/NAME: COMMAND sees the exact value" "$T_TMP/got.e" "$VALS/token"
as_a "$SH" --mount "$MNT" run -e TOKEN=scopehold://gh/token -e ML=gh/multi -- "$PR" TOKEN ML >"$T_TMP/got.uri" 2>&1
want_pr "$VALS/token" "$VALS/multi" >"$T_TMP/want.uri"
same_bytes "run -e with the URI form, and a value with newlines, kept exactly" "$T_TMP/got.uri" "$T_TMP/want.uri"
expect_eq "run: the environment is otherwise passed on, and a set variable replaced" \
	"$(KEEP_ME=kept TOKEN=old as_a "$SH" --mount "$MNT" run -e TOKEN=aws/key -- sh -c 'echo "$KEEP_ME $TOKEN"' 2>&1)" \
	"kept $(cat "$VALS/aws")"
expect_eq "run: \$SCOPEHOLD_MOUNT names the mount when --mount is absent" \
	"$(SCOPEHOLD_MOUNT=$MNT as_a "$SH" run -e K=aws/key -- sh -c 'printf %s "$K"' 2>&1)" "$(cat "$VALS/aws")"
expect_eq "run: --mount before the command works too" \
	"$(as_a "$SH" --mount "$MNT" run -e K=aws/key sh -c 'printf %s "$K"' 2>&1)" "$(cat "$VALS/aws")"
as_a "$SH" --mount "$MNT" run -e K=aws/key -- sh -c 'exit 7' >/dev/null 2>&1
expect_eq "run: COMMAND's exit status is scopehold's" "$?" "7"
# (a PATH the agent can search: an unreadable entry would make it EACCES, 126)
expect_run "run: a COMMAND that does not exist exits 127" 127 \
	"scopehold: no-such-command-here: No such file or directory" \
	as_a env PATH=/usr/bin:/bin "$SH" --mount "$MNT" run -e K=aws/key -- no-such-command-here
expect_run "run: a COMMAND that cannot be executed exits 126" 126 \
	"scopehold: $VALS/token: Permission denied" sh_a run -e K=aws/key -- "$VALS/token"

# ---- run: env files ------------------------------------------------------------------
afile app.env <<'EOF'
# the app's settings
export TOKEN=scopehold://gh/token
AWS="scopehold://aws/key"   # a quoted reference is a reference
LITERAL='plain $HOME # kept'
DQ="tab\there"
EMPTY=
   # indented comment
PLAIN=scopehold-is-not-a-reference
EOF
as_a "$SH" --mount "$MNT" run --env-file app.env -- "$PR" TOKEN AWS LITERAL DQ EMPTY PLAIN >"$T_TMP/got.envf" 2>&1
{ want_pr "$VALS/token" "$VALS/aws"; printf 'plain $HOME # kept|tab\there||scopehold-is-not-a-reference|'; } >"$T_TMP/want.envf"
same_bytes "run --env-file: references resolved, literals (quotes, export, comments) passed through" \
	"$T_TMP/got.envf" "$T_TMP/want.envf"
afile over.env <<'EOF'
A=from-first-file
B=scopehold://gh/token
EOF
afile over2.env <<'EOF'
A=from-second-file
EOF
expect_eq "run: a later env file wins over an earlier one, and -e over both" \
	"$(as_a "$SH" --mount "$MNT" run --env-file over.env --env-file over2.env -e B=aws/key -- sh -c 'echo "$A $B"' 2>&1)" \
	"from-second-file $(cat "$VALS/aws")"

# ---- run: fail closed ---------------------------------------------------------------------
RAN="touch $HA/ran"    # the agent can write there: a run that should not happen would show
expect_run "run: an ungranted candidate: exit 1, the reference and the reason" 1 \
	"scopehold: gh/admin: Permission denied" sh_a run -e OK=gh/token -e ADMIN=gh/admin -- $RAN
check "run: ... and COMMAND did not run" test ! -e "$HA/ran"
expect_run "run: every failing reference gets its own line" 1 \
	"$(printf 'scopehold: gh/admin: Permission denied\nscopehold: aws/nothere: No such file or directory')" \
	sh_a run -e A=gh/admin -e T=gh/token -e N=aws/nothere -- $RAN
check "run: ... and COMMAND did not run" test ! -e "$HA/ran"
afile denied.env <<'EOF'
OK=scopehold://gh/token
NO=scopehold://aws/b
EOF
expect_run "run: another agent's secret in an env file: refused" 1 \
	"scopehold: aws/b: No such file or directory" sh_a run --env-file denied.env -- $RAN
expect_run "run: a uid that matches no agent is told so" 1 \
	"scopehold: gh/token: no agent matches this process ($MNT/self does not exist)" \
	as_uid "$UC" "$SH" --mount "$MNT" run -e T=gh/token -- $RAN
expect_run "run: a value holding a NUL byte is refused" 1 \
	"scopehold: gh/nul: the value holds a NUL byte, which an environment variable cannot carry" \
	sh_a run -e N=gh/nul -- $RAN
check "run: none of the refused runs ran COMMAND" test ! -e "$HA/ran"

# ---- run: a use-limited grant is read once per run, and ls spends none --------------------
sh_a ls >/dev/null 2>&1
sh_a ls --json >/dev/null 2>&1
expect_eq "run: one reference used by two variables is read once (the --uses 1 grant suffices)" \
	"$(as_a "$SH" --mount "$MNT" run -e A=gh/once -e B=scopehold://gh/once -- sh -c 'echo "$A $B"' 2>&1)" \
	"$(cat "$VALS/once") $(cat "$VALS/once")"
expect_run "run: the used-up grant then fails closed" 1 "scopehold: gh/once: Permission denied" \
	sh_a run -e A=gh/once -- $RAN

# ---- refused input: nothing touches the mount ----------------------------------------------
# settle: the agent's event count once pending (coalesced) denials reached the trail
settle() {
	local a b=$(aq count uid=$UA) i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		sleep 1; a=$b; b=$(aq count uid=$UA)
		[ "$a" = "$b" ] && break
	done
	echo "$b"
}
events_before=$(settle)
expect_run "run: a '..' reference is refused" 1 \
	"scopehold: invalid reference 'gh/../token': '.' and '..' are not allowed; use PROVIDER/NAME" \
	sh_a run -e T=gh/../token -- $RAN
expect_run "run: an absolute path is refused" 1 \
	"scopehold: invalid reference '/etc/passwd': an absolute path; use PROVIDER/NAME" \
	sh_a run -e T=/etc/passwd -- $RAN
expect_run "run: an absolute path in the URI form is refused" 1 \
	"scopehold: invalid reference 'scopehold:///gh/token': an absolute path; use PROVIDER/NAME" \
	sh_a run -e T=scopehold:///gh/token -- $RAN
expect_run "run: an empty component is refused" 1 \
	"scopehold: invalid reference 'gh//token': an empty component; use PROVIDER/NAME" \
	sh_a run -e T=gh//token -- $RAN
expect_run "run: three components are refused" 1 \
	"scopehold: invalid reference 'agent-a/gh/token': it needs exactly two components, PROVIDER/NAME" \
	sh_a run -e T=agent-a/gh/token -- $RAN
expect_run "run: one component is refused" 1 \
	"scopehold: invalid reference 'token': it needs exactly two components, PROVIDER/NAME" \
	sh_a run -e T=token -- $RAN
expect_run "run: a name with a bad character is refused" 1 \
	"scopehold: invalid reference 'gh/to ken': names are A-Z a-z 0-9 . _ - , not starting with . or -" \
	sh_a run -e 'T=gh/to ken' -- $RAN
expect_run "run: an invalid variable name is refused" 1 \
	"scopehold: invalid variable name '1X': use A-Z a-z 0-9 _, not starting with a digit" \
	sh_a run -e 1X=gh/token -- $RAN
afile badref.env <<'EOF'
OK=1
T=scopehold://gh/../../etc/shadow
EOF
expect_run "run: a bad reference in an env file names the file and line" 1 \
	"scopehold: badref.env:2: invalid reference 'scopehold://gh/../../etc/shadow': '.' and '..' are not allowed; use PROVIDER/NAME" \
	sh_a run --env-file badref.env -- $RAN
afile notassign.env <<'EOF'
# fine
this is not an assignment
EOF
expect_run "run: a line that is not an assignment names the file and line" 1 \
	"scopehold: notassign.env:2: not an assignment" sh_a run --env-file notassign.env -- $RAN
install -m 0600 /dev/null "$HA/root-only.env"
expect_run "run: an unreadable env file is refused" 1 \
	"scopehold: cannot open 'root-only.env': Permission denied" sh_a run --env-file root-only.env -- $RAN
expect_run "run: a missing env file is refused" 1 \
	"scopehold: cannot open 'missing.env': No such file or directory" sh_a run --env-file missing.env -- $RAN
expect_run "run: an unknown option is a usage error" 2 \
	"scopehold: unknown option '--frob' (see 'scopehold run --help')" sh_a run --frob -- $RAN
expect_run "run: -e without = is a usage error" 2 \
	"scopehold: -e needs VAR=PROVIDER/NAME, got 'gh/token'" sh_a run -e gh/token -- $RAN
expect_run "run: no COMMAND is a usage error" 2 \
	"scopehold: missing COMMAND (see 'scopehold run --help')" sh_a run -e T=gh/token --
expect_run "an unknown command is a usage error" 2 \
	"scopehold: unknown command 'frob' (see 'scopehold --help')" sh_a frob
expect_run "no command is a usage error" 2 "scopehold: missing command (see 'scopehold --help')" "$SH"
check "refused input: COMMAND never ran" test ! -e "$HA/ran"
expect_eq "refused input: not one open reached the mount (no new audit event for the agent's uid)" \
	"$(settle)" "$events_before"

# ---- inject ------------------------------------------------------------------------------------
afile tpl <<'EOF'
token: {{ scopehold://gh/token }}
tight:{{scopehold://aws/key}}x
other: {{ .Values.keep }} and {{ not ours }}
again: {{	scopehold://gh/token	}}
EOF
{ printf 'token: '; cat "$VALS/token"; printf '\ntight:'; cat "$VALS/aws"
  printf 'x\nother: {{ .Values.keep }} and {{ not ours }}\nagain: '; cat "$VALS/token"; printf '\n'; } >"$T_TMP/want.tpl"
as_a "$SH" --mount "$MNT" inject -i tpl >"$T_TMP/got.tpl" 2>"$T_TMP/err"
same_bytes "inject -i TEMPLATE: exact output on stdout, other {{ }} untouched" "$T_TMP/got.tpl" "$T_TMP/want.tpl"
as_a "$SH" --mount "$MNT" inject <"$HA/tpl" >"$T_TMP/got.stdin" 2>&1
same_bytes "inject: the template from standard input" "$T_TMP/got.stdin" "$T_TMP/want.tpl"
expect_run "inject -o OUT: exit 0, nothing on stdout or stderr" 0 "" sh_a inject -i tpl -o out.conf
expect_eq "inject -o OUT: nothing on stdout" "$OUT" ""
same_bytes "inject -o OUT: the file holds the exact output" "$HA/out.conf" "$T_TMP/want.tpl"
expect_eq "inject -o OUT: mode 0600, owned by the agent" "$(stat -c '%a %u' "$HA/out.conf")" "600 $UA"
printf '{{ scopehold://gh/nul }}' | afile bintpl
as_a "$SH" --mount "$MNT" inject -i bintpl >"$T_TMP/got.bin" 2>&1
same_bytes "inject: a binary value (NUL byte) is written exactly" "$T_TMP/got.bin" "$VALS/nul"
printf 'changed\n' | afile out.keep
expect_run "inject: an existing OUT is refused without --force" 1 \
	"scopehold: 'out.keep' exists; use --force to replace it" sh_a inject -i tpl -o out.keep
expect_eq "inject: the refused OUT is unchanged" "$(cat "$HA/out.keep")" "changed"
chmod 0644 "$HA/out.keep"
expect_run "inject --force replaces OUT" 0 "" sh_a inject -i tpl -o out.keep --force
same_bytes "inject --force: the new content" "$HA/out.keep" "$T_TMP/want.tpl"
expect_eq "inject --force: the replaced OUT is mode 0600" "$(stat -c %a "$HA/out.keep")" "600"
afile failtpl <<'EOF'
ok: {{ scopehold://gh/token }}
no: {{ scopehold://gh/admin }}
EOF
expect_run "inject: an unreadable reference fails closed" 1 "scopehold: gh/admin: Permission denied" \
	sh_a inject -i failtpl -o out.fail
check "inject: after a failure there is no OUT" test ! -e "$HA/out.fail"
expect_eq "inject: after a failure stdout got nothing" "$OUT" ""
printf 'a\nb {{ scopehold://gh/token\n}}\n' | afile opentpl
expect_run "inject: an unterminated {{ is refused with its line" 1 \
	"scopehold: opentpl:2: unterminated '{{' (close it with '}}' on the same line)" \
	sh_a inject -i opentpl -o out.open
printf 'x {{ scopehold://gh/../x }}\n' | afile dottpl
expect_run "inject: a '..' reference in a template is refused" 1 \
	"scopehold: dottpl:1: invalid reference 'scopehold://gh/../x': '.' and '..' are not allowed; use PROVIDER/NAME" \
	sh_a inject -i dottpl -o out.dot
printf 'x {{ scopehold:gh/token }}\n' | afile typotpl
expect_run "inject: a mistyped reference is an error, not left in place" 1 \
	"scopehold: typotpl:1: invalid reference 'scopehold:gh/token': use scopehold://PROVIDER/NAME" \
	sh_a inject -i typotpl
expect_run "inject: a missing template is refused" 1 \
	"scopehold: cannot open 'nope.tpl': No such file or directory" sh_a inject -i nope.tpl
expect_run "inject: an unknown option is a usage error" 2 \
	"scopehold: unknown option '-x' (see 'scopehold inject --help')" sh_a inject -x
expect_eq "inject: no temporary file is left in the directory" \
	"$(cd "$HA" && ls -A | grep -c '^\.')" "0"
check "inject: no OUT exists for any refused template" test ! -e "$HA/out.open" -a ! -e "$HA/out.dot"

# ---- ls -------------------------------------------------------------------------------------------
sa --json secret list >"$T_TMP/secrets.json" 2>/dev/null
# want_ls: "SECRET ACCESS LENGTH CREATED" rows for agent-a's candidates, from the store
want_ls() {
	"$PY" -c '
import json, sys
granted = {"gh/token", "gh/nul", "gh/multi", "gh/audited", "aws/key"}
rows = []
for l in open(sys.argv[1]):
    e = json.loads(l)
    ref = e["provider"] + "/" + e["name"]
    if e["provider"] == "gh" or ref == "aws/key":
        rows.append("%s %s %d %s" % (ref, "granted" if ref in granted else "candidate", e["length"], e["created"]))
print("\n".join(sorted(rows)))' "$T_TMP/secrets.json"
}
expect_run "ls: exit 0, nothing on stderr" 0 "" sh_a ls
expect_eq "ls: first line names the agent and the self link" "$(printf '%s\n' "$OUT" | head -n 1)" "agent: agent-a ($MNT/self)"
expect_eq "ls: the header" "$(printf '%s\n' "$OUT" | sed -n 2p | tr -s ' ')" "SECRET ACCESS LENGTH CREATED"
expect_eq "ls: each candidate, granted or not, its length and creation time (the once grant is used up)" \
	"$(printf '%s\n' "$OUT" | tail -n +3 | tr -s ' ')" "$(want_ls | sed 's|^gh/once granted|gh/once candidate|')"
expect_run "ls --json: exit 0" 0 "" sh_a ls --json
echo "$OUT" >"$T_TMP/ls.json"
expect_eq "ls --json: one object with the agent, the mount and every candidate" \
	"$("$PY" -c '
import json, sys
o = json.load(open(sys.argv[1]))
rows = ["%s %s %d %s" % (s["secret"], "granted" if s["granted"] else "candidate", s["length"], s["created"]) for s in o["secrets"]]
uris = all(s["uri"] == "scopehold://" + s["provider"] + "/" + s["name"] == "scopehold://" + s["secret"] for s in o["secrets"])
print(o["agent"], o["mount"], uris); print("\n".join(rows))' "$T_TMP/ls.json" 2>&1)" \
	"$(printf 'agent-a %s True\n' "$MNT"; want_ls | sed 's|^gh/once granted|gh/once candidate|')"
expect_eq "ls: another agent sees only its own candidates" \
	"$(as_uid "$UB" "$SH" --mount "$MNT" ls 2>&1 | tail -n +3 | awk '{print $1, $2}')" "aws/b granted"
expect_run "ls: a uid that matches no agent is told so" 1 \
	"scopehold: no agent matches this process ($MNT/self does not exist)" as_uid "$UC" "$SH" --mount "$MNT" ls
expect_run "ls: a mount that does not exist" 1 \
	"scopehold: no agent matches this process ($T_TMP/nomount/self does not exist)" sh_a --mount "$T_TMP/nomount" ls
expect_run "ls: an unexpected argument is a usage error" 2 \
	"scopehold: unexpected argument 'x' (see 'scopehold ls --help')" sh_a ls x

# ---- executable binding: bind the agent to scopehold --------------------------------------------
expect_eq "exe binding: an agent bound to the scopehold binary reads through scopehold run" \
	"$(as_uid "$UX" "$SH" --mount "$MNT" run -e T=gh/token -- sh -c 'printf %s "$T"' 2>&1)" "$(cat "$VALS/token")"
expect_eq "exe binding: the same uid reading the file with another program is refused" \
	"$(probe "$UX" open "$MNT/agent-x/gh/token")" "EACCES"

# ---- the audit trail -------------------------------------------------------------------------------
as_a "$SH" --mount "$MNT" run -e A=gh/audited -- true
printf '{{ scopehold://gh/audited }}' | as_a "$SH" --mount "$MNT" inject >/dev/null
sleep 1
sa --json audit >"$T_TMP/audit.json" 2>/dev/null
q() { "$PY" "$AQ" "$@" <"$T_TMP/audit.json"; }
expect_eq "audit: the run and the inject each left one resolve event, naming scopehold as the reader" \
	"$(q count type=resolve agent=agent-a secret=gh/audited uid=$UA exe=$SH)" "2"
expect_ge "audit: every run -e of gh/token is a resolve event with the caller's uid" \
	"$(q count type=resolve agent=agent-a secret=gh/token uid=$UA exe=$SH)" 5
expect_ge "audit: the fail-closed run left a deny event for the ungranted candidate" \
	"$(q count type=deny agent=agent-a secret=gh/admin reason=no-grant uid=$UA)" 1
expect_eq "audit: the use-limited secret resolved exactly once" \
	"$(q count type=resolve agent=agent-a secret=gh/once)" "1"
sa audit >"$T_TMP/audit.txt" 2>&1
check "audit: no value appears in shadm audit output" \
	eval '! grep -aq agTOKEN "$T_TMP/audit.txt" "$T_TMP/audit.json"'
check "no value appears under the store directory" eval '! grep -a -r -q agTOKEN "$ST"'
check "no value appears in the daemon's log" eval '! grep -a -q agTOKEN "$LOG"'

# ---- help --------------------------------------------------------------------------------------------
expect_run "--help exits 0" 0 "" "$SH" --help
missing=""
for w in run inject ls --mount --env-file --force --json /proc/PID/environ; do
	printf '%s\n' "$OUT" | grep -qF -- "$w" || missing="$missing $w"
done
expect_eq "--help describes every command and option" "$missing" ""
expect_run "--version exits 0" 0 "" "$SH" --version
expect_eq "--version prints the version" "$OUT" "scopehold 0.1.0"
for c in run inject ls; do
	expect_run "$c --help exits 0 with its usage" 0 "" "$SH" "$c" --help
	expect_eq "$c --help starts with its usage line" "${OUT%% \[*}" "usage: scopehold $c"
done

stop_fs "$FS_PID"
expect_eq "SIGTERM: the daemon exits 0" "$STOP_RC" "0"
t_finish

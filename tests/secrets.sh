#!/bin/bash
# secrets.sh - everyday safety of `shadm secret` and of removals, on the real
# binary: a value typed on a real pseudo-terminal (tests/fixtures/ptyrun.py:
# twice, no echo, no trailing newline, a mismatch refused), empty values and
# past dates refused, the expiry policy a rotation keeps, versions, rollback
# and destroy (the ciphertext's bytes gone from the store's files, the
# trail intact), --yes before a removal drops live grants or assignments
# (and the question asked on a terminal), and, on a real mount read by
# another uid, that a rollback is what the next open serves.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
t_tmpdir
m_trap secrets
cd "$T_TMP" || exit 1
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
PTY="$ROOT/tests/fixtures/ptyrun.py"
UA=24501   # the mount's reader; need not exist in /etc/passwd

for tool in sqlite3 "$PY"; do
	command -v "$tool" >/dev/null || { not_ok "secrets: $tool is missing (run 'make deps')"; exit 1; }
done
[ -x "$SHADM" ] || { not_ok "secrets: $SHADM is not built (run 'make')"; exit 1; }

ST=$T_TMP/store MNT=$T_TMP/mnt CONF=$T_TMP/scopehold.ini LOG=$T_TMP/fs.log
mkdir -m 0700 "$ST"
mkdir -m 0755 "$MNT"
write_conf "$CONF" "$ST" "$MNT"
export SCOPEHOLD_CONFIG=$CONF
STORE=$ST/store.db
unset SUDO_USER

# typing FILE PROMPT LINE [PROMPT LINE...]: the input file for ptyrun.py
typing() { f=$1; shift; : >"$f"; while [ $# -gt 0 ]; do printf '%s\t%s\n' "$1" "$2" >>"$f"; shift 2; done; }
# on_tty INPUT CMD...: run CMD on a pseudo-terminal; what it showed in $TTY_OUT, status in $TTY_RC
on_tty() {
	in=$1; shift
	"$PY" "$PTY" "$in" "$@" >tty.out; TTY_RC=$?
	TTY_OUT=$(tr -d '\r' <tty.out)
}
expect_re() {
	if [[ $2 =~ $3 ]]; then ok "$1"
	else not_ok "$1"; printf '#   got:  %s\n#   want: /%s/\n' "$2" "$3"; fi
}
# ev TYPE: how many events of TYPE the trail holds
ev() { sa --json audit --event "$1" 2>/dev/null | grep -c .; }
# has_bytes HEX FILE...: how many of the files hold those bytes
has_bytes() {
	"$PY" -c 'import sys; b = bytes.fromhex(sys.argv[1]); print(sum(open(f, "rb").read().count(b) > 0 for f in sys.argv[2:]))' "$@"
}
vline() { sa secret versions "$1" 2>/dev/null | awk -v v="$2" '$1 == v'; }

setup sa init
setup sa provider add p
setup_check "secrets setup: shadm init failed"

# ---- 1. a value typed on a terminal ----------------------------------------------------
typing in.ok "Value for" "sk-typed-VALUE-1" "Again: " "sk-typed-VALUE-1"
on_tty in.ok "$SHADM" secret set p/typed
expect_eq "terminal: the value typed twice is stored (exit 0)" "$TTY_RC" 0
expect_eq "terminal: it prompts twice and prints the result" "$TTY_OUT" \
	"$(printf 'Value for p/typed: \nAgain: \np/typed: version 1 (created)')"
check "terminal: the typed value is never echoed" test "$(printf '%s' "$TTY_OUT" | grep -c sk-typed)" -eq 0
sa secret reveal p/typed >typed.out 2>/dev/null
printf 'sk-typed-VALUE-1' >typed.want
check "terminal: the stored value is exactly what was typed, without the newline" cmp -s typed.out typed.want

typing in.bad "Value for" "first-try" "Again: " "first-tyr"
on_tty in.bad "$SHADM" secret set p/typo
expect_eq "terminal: two entries that differ are refused (exit 1)" "$TTY_RC" 1
expect_eq "terminal: ...with one clear line" "$(printf '%s\n' "$TTY_OUT" | tail -n 1)" \
	"shadm: the two entries differ: nothing stored"
expect_run "terminal: ...and nothing was stored" 1 "shadm: no secret 'p/typo'" sa secret reveal p/typo

typing in.rot "Value for" "sk-typed-VALUE-2" "Again: " "sk-typed-VALUE-2"
on_tty in.rot "$SHADM" secret set p/typed
expect_eq "terminal: a rotation typed twice" "$(printf '%s\n' "$TTY_OUT" | tail -n 1)" "p/typed: version 2 (rotated)"
expect_eq "terminal: the rotated value, no newline" "$(sa secret reveal p/typed 2>/dev/null | od -An -c | tr -s ' ')" \
	"$(printf 'sk-typed-VALUE-2' | od -An -c | tr -s ' ')"

typing in.empty "Value for" "" "Again: " ""
on_tty in.empty "$SHADM" secret set p/blank
expect_eq "terminal: an empty entry is refused" "$TTY_RC/$(printf '%s\n' "$TTY_OUT" | tail -n 1)" \
	"1/shadm: the value is empty: nothing stored (--allow-empty stores an empty value)"
on_tty in.empty "$SHADM" secret set p/blank --allow-empty
expect_eq "terminal: an empty entry with --allow-empty is stored" "$TTY_RC/$(sa secret reveal p/blank 2>/dev/null | wc -c)" "0/0"

# ---- 2. standard input that is not a terminal -------------------------------------------
expect_run "pipe: an empty value is refused (exit 1)" 1 \
	"shadm: the value is empty: nothing stored (--allow-empty stores an empty value)" \
	sa secret set p/empty </dev/null
expect_run "pipe: ...and nothing was stored" 1 "shadm: no secret 'p/empty'" sa secret versions p/empty
expect_run "pipe: --allow-empty stores it" 0 "" sa secret set p/empty --allow-empty </dev/null
printf 'line\n' >nl.in
expect_run "pipe: the bytes are kept, trailing newline too" 0 "" sa secret set p/nl <nl.in
sa secret reveal p/nl >nl.out 2>/dev/null
check "pipe: reveal gives the newline back" cmp -s nl.in nl.out

# ---- 3. expiry --------------------------------------------------------------------------
N0=$(ev create)
expect_run "--expires a past date is refused" 1 "shadm: --expires '2020-01-31' is in the past: nothing stored" \
	sh -c 'printf x | "$1" secret set p/old --expires 2020-01-31' _ "$SHADM"
expect_run "--expires a past datetime is refused" 1 \
	"shadm: --expires '2021-06-01T12:00:00Z' is in the past: nothing stored" \
	sh -c 'printf x | "$1" secret set p/old --expires 2021-06-01T12:00:00Z' _ "$SHADM"
expect_eq "refused past dates stored nothing and recorded nothing" "$(sa secret list 2>/dev/null | grep -c ' old ')/$(ev create)" "0/$N0"

printf 'ttl-1' | setup sa secret set p/ttl --expires 7d
printf 'ttl-2' | setup sa secret set p/ttl
setup_check "secrets: setting p/ttl failed"
expect_eq "a rotation keeps a duration (TTL 7d)" "$(vline p/ttl 2 | awk '{print $5}')" "7d"
expect_re "...restarted from the rotation: 7 days ahead" "$(vline p/ttl 2 | awk '{print $4}')" \
	"^$(date -u -d '+7 days' +%Y-%m-%d)"
printf 'ttl-3' | setup sa secret set p/ttl --expires never
printf 'ttl-4' | setup sa secret set p/ttl
expect_eq "--expires never ends the policy, and a rotation keeps never" \
	"$(vline p/ttl 3 | awk '{print $4 $5}')/$(vline p/ttl 4 | awk '{print $4 $5}')" "never-/never-"
printf 'd-1' | setup sa secret set p/dated --expires 2099-01-31
printf 'd-2' | setup sa secret set p/dated
expect_eq "a rotation keeps a date" "$(vline p/dated 2 | awk '{print $4 $5}')" "2099-01-31T00:00:00Z-"
expect_run "--json secret set shows the expiry a rotation kept" 0 "" \
	sh -c 'printf d-3 | "$1" --json secret set p/dated' _ "$SHADM"
expect_eq "...2099-01-31" "$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["expires"])')" \
	"2099-01-31T00:00:00Z"
# a date that has passed since (made directly in the store: the CLI refuses to set one)
sqlite3 "$STORE" "UPDATE versions SET expires = 1000000000 WHERE secret_id =
	(SELECT id FROM secrets WHERE name = 'dated') AND version = 3"
expect_run "a rotation refuses to keep a date that has passed" 1 \
	"shadm: 'p/dated' expired at 2001-09-09T01:46:40Z and a rotation keeps that date: give a new expiry" \
	sh -c 'printf d-4 | "$1" secret set p/dated' _ "$SHADM"
expect_run "...a new --expires is taken" 0 "" sh -c 'printf d-4 | "$1" secret set p/dated --expires 30d' _ "$SHADM"
expect_eq "...as version 4" "$OUT" "p/dated: version 4 (rotated)"

# ---- 4. versions, rollback, destroy -------------------------------------------------------
for v in roll-ONE roll-TWO roll-THREE; do printf '%s' "$v" | setup sa secret set p/r; done
setup_check "secrets: setting p/r failed"
expect_run "versions lists every version" 0 "" sa secret versions p/r
expect_eq "versions: header and three rows, the last current" \
	"$(printf '%s\n' "$OUT" | awk '{print $1, $2, $NF}' | tr '\n' ' ')" \
	"VERSION LENGTH STATE 1 8 - 2 8 - 3 10 current "
expect_eq "versions --json: one object per version, one current" \
	"$(sa --json secret versions p/r 2>/dev/null | "$PY" -c 'import json,sys; r=[json.loads(l) for l in sys.stdin]; print(len(r), [e["version"] for e in r if e["current"]])')" \
	"3 [3]"
expect_run "versions of an unknown secret" 1 "shadm: no secret 'p/nope'" sa secret versions p/nope

expect_run "rollback makes a new current version with the old value" 0 "" sa secret rollback p/r 1
expect_eq "rollback prints the new version" "$OUT" "p/r: version 4 (the value of version 1)"
expect_eq "reveal gives the value of version 1" "$(sa secret reveal p/r 2>/dev/null)" "roll-ONE"
fp() { sa --json audit --secret p/r --event "$1" 2>/dev/null | "$PY" -c 'import json,sys
for l in sys.stdin:
    e = json.loads(l)
    if e["version"] == int(sys.argv[1]): print(e["reason"], e["fingerprint"])' "$2"; }
expect_eq "rollback is audited with the value's fingerprint" "$(fp rollback 4)" \
	"value of version 1 $(fp create 1 | awk '{print $NF}')"
expect_run "rollback to the current version is refused" 1 "shadm: version 4 is already the current version of 'p/r'" \
	sa secret rollback p/r 4
expect_run "rollback to a missing version" 1 "shadm: no version 9 of 'p/r'" sa secret rollback p/r 9
expect_run "rollback VERSION must be a number" 2 "shadm: VERSION needs a number" sa secret rollback p/r two
expect_run "rollback needs VERSION" 2 "shadm: missing argument VERSION for 'secret rollback'" sa secret rollback p/r

CT=$(sqlite3 "$STORE" "SELECT hex(ct) FROM versions WHERE version = 2 AND secret_id = (SELECT id FROM secrets WHERE name = 'r')")
expect_eq "the ciphertext of version 2 is in the store before destroy" "$(has_bytes "$CT" "$STORE"*)" 1
N0=$(ev destroy)
expect_run "destroy an old version" 0 "" sa secret destroy p/r 2
expect_eq "destroy prints what it did" "$OUT" "p/r: version 2 destroyed"
expect_eq "destroy: the ciphertext's bytes are in no store file (db, WAL)" "$(has_bytes "$CT" "$STORE"*)" 0
expect_eq "destroy: the row keeps its metadata, its ciphertext is empty" \
	"$(sqlite3 "$STORE" "SELECT length, length(ct), destroyed > 0 FROM versions WHERE version = 2 AND secret_id = (SELECT id FROM secrets WHERE name = 'r')")" \
	"8|0|1"
expect_re "versions shows it destroyed" "$(vline p/r 2)" "^2 +8 .* destroyed [0-9T:-]+Z$"
expect_run_re() {
	what=$1 want_rc=$2 re=$3; shift 3
	OUT=$("$@" 2>"$T_TMP/stderr"); rc=$?; ERR=$(cat "$T_TMP/stderr")
	if [ "$rc" -eq "$want_rc" ] && [[ $ERR =~ $re ]]; then ok "$what"
	else not_ok "$what"; printf '#   exit %s, stderr: %s\n' "$rc" "$ERR"; fi
}
expect_run_re "reveal of a destroyed version fails clearly" 1 \
	"^shadm: version 2 of 'p/r' was destroyed at [0-9]{4}-[0-9-]+T[0-9:]+Z$" sa secret reveal p/r --version 2
expect_run_re "rollback to a destroyed version fails clearly" 1 \
	"^shadm: version 2 of 'p/r' was destroyed at " sa secret rollback p/r 2
expect_run "destroy of the current version is refused" 1 \
	"shadm: version 4 is the current version of 'p/r': set a new value or roll back first" sa secret destroy p/r 4
expect_eq "...the current value is untouched" "$(sa secret reveal p/r 2>/dev/null)" "roll-ONE"
expect_run "destroy of a missing version" 1 "shadm: no version 7 of 'p/r'" sa secret destroy p/r 7
expect_eq "destroy is audited once (refusals record nothing)" "$(ev destroy)" "$((N0 + 1))"
expect_eq "the other old versions still reveal" "$(sa secret reveal p/r --version 1 2>/dev/null)/$(sa secret reveal p/r --version 3 2>/dev/null)" \
	"roll-ONE/roll-THREE"
expect_run "key rotate --rewrap skips the destroyed version" 0 - sa key rotate --rewrap
expect_eq "...and every intact version still reveals" "$(sa secret reveal p/r --version 3 2>/dev/null)" "roll-THREE"
expect_run "the audit chain is intact after rollback and destroy" 0 - sa audit verify

# a store made before versions had a TTL and a destroyed mark (schema 7) is migrated at open
mkdir -m 0700 old
write_conf old.ini "$T_TMP/old" "$MNT"
setup "$SHADM" -c old.ini init
setup "$SHADM" -c old.ini provider add p
printf 'old-value' | setup "$SHADM" -c old.ini secret set p/o
sqlite3 old/store.db "ALTER TABLE versions DROP COLUMN ttl; ALTER TABLE versions DROP COLUMN destroyed;
	ALTER TABLE agents DROP COLUMN cgroup; ALTER TABLE audit DROP COLUMN cgroup;
	ALTER TABLE audit DROP COLUMN host; PRAGMA user_version = 7"
expect_eq "migration: the store was at schema 7" "$(sqlite3 old/store.db 'PRAGMA user_version')" 7
expect_run "migration: a schema-7 store opens and lists versions" 0 "" "$SHADM" -c old.ini secret versions p/o
expect_eq "migration: ...to the current schema (11), the old version intact" \
	"$(sqlite3 old/store.db 'PRAGMA user_version')/$("$SHADM" -c old.ini secret reveal p/o 2>/dev/null)" "11/old-value"

# ---- 5. removals that drop live access ------------------------------------------------------
printf 'g' | setup sa secret set p/g
printf 'h' | setup sa secret set p/h
setup sa project add proj
setup sa project attach proj p/g
setup sa project attach proj p/h
setup sa agent add bot --uid "$UA"
setup sa agent add other --uid 24502
setup sa assign bot proj
setup sa grant bot p/g
setup sa grant bot p/h
setup sa grant other p/h
setup_check "secrets: the removal fixtures failed"
N0=$(sa --json audit 2>/dev/null | grep -c .)
expect_run "secret rm of a granted secret needs --yes off a terminal" 1 \
	"shadm: 'secret rm p/h' would drop 2 live grants and 1 attachment: nothing removed (pass --yes to confirm)" \
	sa secret rm p/h </dev/null
expect_run "agent rm of an agent with grants and an assignment needs --yes" 1 \
	"shadm: 'agent rm bot' would drop 2 live grants and 1 assignment: nothing removed (pass --yes to confirm)" \
	sa agent rm bot </dev/null
expect_run "project rm of a project with an assignment needs --yes" 1 \
	"shadm: 'project rm proj' would drop 1 assignment and 2 attachments: nothing removed (pass --yes to confirm)" \
	sa project rm proj </dev/null
expect_eq "the refusals changed nothing and recorded nothing" \
	"$(sa grants 2>/dev/null | grep -c ' p/')/$(sa --json audit 2>/dev/null | grep -c .)" "3/$N0"
setup sa revoke other p/h
expect_run "a revoked grant is not live: agent rm needs no --yes" 0 "" sa agent rm other </dev/null
expect_eq "...and says so" "$OUT" "removed agent other"

typing in.no "Drop them? [y/N] " "n"
on_tty in.no "$SHADM" secret rm p/h
expect_eq "terminal: it asks, naming what goes" "$(printf '%s\n' "$TTY_OUT" | head -n 1)" \
	"shadm: 'secret rm p/h' drops 1 live grant and 1 attachment. Drop them? [y/N] n"
expect_eq "terminal: answering n removes nothing (exit 1)" "$TTY_RC/$(printf '%s\n' "$TTY_OUT" | tail -n 1)" \
	"1/shadm: nothing removed"
check "terminal: ...p/h is still there" sh -c '"$1" secret versions p/h >/dev/null' _ "$SHADM"
typing in.yes "Drop them? [y/N] " "y"
on_tty in.yes "$SHADM" secret rm p/h
expect_eq "terminal: answering y removes it" "$TTY_RC/$(printf '%s\n' "$TTY_OUT" | tail -n 1)" "0/removed secret p/h"

# ---- 6. through the mount: a rollback is what the next open serves ---------------------------
if [ ! -c /dev/fuse ] || [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null; then
	skip "secrets: rollback through the mount needs root, /dev/fuse and setpriv"
else
	install -m 0644 "$ROOT/tests/fixtures/fsio.py" "$ROOT/tests/fixtures/e2e/probe.py" "$T_TMP/"
	printf 'mnt-ONE' | setup sa secret set p/g
	printf 'mnt-TWO' | setup sa secret set p/g
	setup_check "secrets: the mount fixtures failed"
	start_fs "$CONF" "$LOG" "$MNT"
	expect_mount "scopeholdfs mounts $MNT within 10 s" "$MNT" "$LOG"
	expect_eq "mount: the agent reads the current value" "$(probe "$UA" cat "$MNT/bot/p/g")" "mnt-TWO"
	setup sa secret rollback p/g 2
	setup sa secret destroy p/g 3
	expect_eq "mount: after a rollback the next open serves the old value" "$(probe "$UA" cat "$MNT/bot/p/g")" "mnt-ONE"
	expect_eq "mount: another uid is still refused" "$(probe 24503 cat "$MNT/bot/p/g")" "EACCES"
	setup sa agent rm bot --yes
	expect_eq "mount: after agent rm --yes the agent's directory is gone" "$(probe "$UA" cat "$MNT/bot/p/g")" "ENOENT"
	stop_fs "$FS_PID"
fi
t_finish

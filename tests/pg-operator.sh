#!/bin/bash
# pg-operator.sh - what the operator of the PostgreSQL database behind a
# store can and cannot do (docs/security.md, "The database operator"),
# each performed as that operator would: with psql on a real server
# (tests/pg.sh starts a throwaway cluster), against a real mount read by
# real uids.
#   - sees no value: not in any table (pg_dump), not in the server's log;
#   - cannot move a ciphertext to another secret or version: the AEAD's
#     associated data names the row, so the read is refused (EIO) with an
#     `integrity` deny event and no bytes of either value;
#   - cannot swap in a wrapped key of another store;
#   - can edit, delete or reorder audit rows: `audit verify` names the
#     first such event; can cut the tail: `audit verify --head` catches it;
#   - can change the policy (a grant row written directly): the mount obeys
#     the database, and the read it allows is still a chained resolve event.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
. "$ROOT/tests/pg.sh"
pg_suite pg-operator
# the server logs every statement with its parameters: what an operator
# reading the log would see of every shadm command and every open
pg_psql postgres -c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()" >/dev/null

UA=24911 UB=24912
CONF=$T_TMP/a.ini MNT=$T_TMP/mnt LOG=$T_TMP/fs.log VALS=$T_TMP/vals
MNTS=$MNT
mkdir -m 0700 "$VALS" "$T_TMP/keys"
mkdir -m 0755 "$MNT"
: >"$LOG"
pg_conf "$CONF" "$PG_CONNINFO" op-host "$T_TMP/state" "$MNT"
# two values of the same length: only the associated data tells them apart
printf 'op-SECRET-aaaa-1' >"$VALS/x1"
printf 'op-SECRET-aaaa-2' >"$VALS/x2"
printf 'op-SECRET-bbbb-1' >"$VALS/y1"
printf 'op-SECRET-cccc-1' >"$VALS/z1"
dbq() { psql -X -q -At -v ON_ERROR_STOP=1 "$PG_CONNINFO" -c "$1" </dev/null; }

setup sa init
setup sa provider add github
setup sa secret set github/x --from-file "$VALS/x1"
setup sa secret set github/x --from-file "$VALS/x2"
setup sa secret set github/y --from-file "$VALS/y1"
setup sa secret set github/z --from-file "$VALS/z1"
setup sa agent add agent-a --uid "$UA"
setup sa agent add agent-b --uid "$UB"
setup sa project add proj
setup sa project attach proj github
setup sa assign agent-a proj
setup sa assign agent-b proj
setup sa grant agent-a github/x
setup sa grant agent-a github/y
setup_check "pg-operator setup: shadm commands failed"
ok "pg-operator setup: a store in PostgreSQL, github/x (2 versions), y and z"

start_fs "$CONF" "$LOG" "$MNT"; PID=$FS_PID
require_mount "scopeholdfs mounts from PostgreSQL" "$MNT" "$LOG"
FX=$MNT/agent-a/github/x FY=$MNT/agent-a/github/y
as_uid "$UA" cat "$FX" >"$T_TMP/got" 2>/dev/null; same_bytes "agent-a reads github/x (version 2)" "$T_TMP/got" "$VALS/x2"
as_uid "$UA" cat "$FY" >"$T_TMP/got" 2>/dev/null; same_bytes "agent-a reads github/y" "$T_TMP/got" "$VALS/y1"

# ---- sees no value ---------------------------------------------------------------------
dump=$(pg_as "$PG_BIN/pg_dump" -h "$PG_DIR" -p "$PG_PORT" scopehold 2>/dev/null)
check "pg_dump ran" test -n "$dump"
check "no value in any table (pg_dump's output)" eval '! printf "%s" "$dump" | grep -q "op-SECRET"'
check "the server logged the statements (log_statement = all)" grep -q "INSERT INTO versions" "$PG_DIR/server.log"
check "no value in the server's log of every statement" eval '! grep -q "op-SECRET" "$PG_DIR/server.log"'

# ---- cannot move ciphertexts -------------------------------------------------------------
vid() { dbq "SELECT v.id FROM versions v JOIN secrets s ON s.id = v.secret_id WHERE s.name = '$1' AND v.version = $2"; }
X1=$(vid x 1) X2=$(vid x 2) Y1=$(vid y 1) Z1=$(vid z 1)
denials() { dbq "SELECT count(*) FROM audit WHERE type = 'deny' AND reason = 'integrity'"; }
sa audit >/dev/null 2>&1   # import the journal: deny counts below are deltas of the trail
d0=$(denials)
# github/z's ciphertext (never granted) moved into github/y's current version
ysaved=$(dbq "SELECT encode(ct, 'hex') FROM versions WHERE id = $Y1")
dbq "UPDATE versions SET ct = (SELECT ct FROM versions WHERE id = $Z1) WHERE id = $Y1"
out=$(as_uid "$UA" cat "$FY" 2>"$T_TMP/err"); rc=$?
expect_eq "another secret's ciphertext in y's row: the read fails with EIO and no bytes" \
	"$rc|$out|$(cat "$T_TMP/err")" "1||cat: $FY: Input/output error"
# github/x's old version 1 put back over its current version 2 (a rollback)
saved=$(dbq "SELECT encode(ct, 'hex') FROM versions WHERE id = $X2")
dbq "UPDATE versions SET ct = (SELECT ct FROM versions WHERE id = $X1) WHERE id = $X2"
out=$(as_uid "$UA" cat "$FX" 2>"$T_TMP/err"); rc=$?
expect_eq "an older version's ciphertext in x's current row: EIO, not the old value" \
	"$rc|$out|$(cat "$T_TMP/err")" "1||cat: $FX: Input/output error"
sa audit >/dev/null 2>&1
expect_eq "both refusals are 'integrity' deny events in the trail" "$(( $(denials) - d0 ))" 2
dbq "UPDATE versions SET ct = decode('$saved', 'hex') WHERE id = $X2"
dbq "UPDATE versions SET ct = decode('$ysaved', 'hex') WHERE id = $Y1"
as_uid "$UA" cat "$FX" >"$T_TMP/got" 2>/dev/null; same_bytes "x's own ciphertext put back reads again" "$T_TMP/got" "$VALS/x2"
as_uid "$UA" cat "$FY" >"$T_TMP/got" 2>/dev/null; same_bytes "y's own ciphertext put back reads again" "$T_TMP/got" "$VALS/y1"

# ---- cannot swap in another store's key ----------------------------------------------------
OCONN=$(pg_newdb other)
printf '[store]\nbackend = postgresql\nconninfo = %s\nstate_dir = %s\nhost = op-host\nkey_file = %s\n' \
	"$OCONN" "$T_TMP/ostate" "$T_TMP/keys/other.key" >"$T_TMP/other.ini"
"$SHADM" -c "$T_TMP/other.ini" init >/dev/null 2>&1
"$SHADM" -c "$T_TMP/other.ini" provider add github >/dev/null 2>&1
printf 'op-SECRET-oooo-1' | "$SHADM" -c "$T_TMP/other.ini" secret set github/x --from-file /dev/stdin >/dev/null 2>&1
okey=$(psql -X -At "$OCONN" -c "SELECT encode(wrapped, 'hex') FROM keys WHERE kind = 'data' ORDER BY id LIMIT 1" </dev/null)
oct=$(psql -X -At "$OCONN" -c "SELECT encode(ct, 'hex') FROM versions ORDER BY id DESC LIMIT 1" </dev/null)
check "another store's data key and ciphertext exist" test -n "$okey" -a -n "$oct"
kid=$(dbq "SELECT key_id FROM versions WHERE id = $X2")
kold=$(dbq "SELECT encode(wrapped, 'hex') FROM keys WHERE id = $kid")
dbq "UPDATE keys SET wrapped = decode('$okey', 'hex') WHERE id = $kid"
dbq "UPDATE versions SET ct = decode('$oct', 'hex') WHERE id = $X2"
out=$(as_uid "$UA" cat "$FX" 2>"$T_TMP/err"); rc=$?
expect_eq "another store's wrapped key and ciphertext: EIO, neither value" \
	"$rc|$out|$(cat "$T_TMP/err")" "1||cat: $FX: Input/output error"
dbq "UPDATE keys SET wrapped = decode('$kold', 'hex') WHERE id = $kid"
dbq "UPDATE versions SET ct = decode('$saved', 'hex') WHERE id = $X2"
as_uid "$UA" cat "$FX" >"$T_TMP/got" 2>/dev/null; same_bytes "with the store's own key back, x reads again" "$T_TMP/got" "$VALS/x2"

# ---- can change the policy; the read it allows is still in the trail ----------------------
FZ=$MNT/agent-b/github/z
expect_fail_msg "agent-b has no grant on github/z" "Permission denied" as_uid "$UB" cat "$FZ"
dbq "INSERT INTO grants (agent_id, secret_id, created)
     SELECT a.id, s.id, 0 FROM agents a, secrets s WHERE a.name = 'agent-b' AND s.name = 'z'"
as_uid "$UB" cat "$FZ" >"$T_TMP/got" 2>/dev/null
same_bytes "a grant row the operator wrote directly is obeyed (a documented limit)" "$T_TMP/got" "$VALS/z1"

# ---- can break the database: everything fails closed -----------------------------------------
dbq "ALTER TABLE versions RENAME TO versions_gone"
out=$(as_uid "$UA" cat "$FY" 2>"$T_TMP/err"); rc=$?
expect_eq "a table gone: a granted open fails with EIO and no bytes" \
	"$rc|$out|$(cat "$T_TMP/err")" "1||cat: $FY: Input/output error"
expect_run "a table gone: shadm exits 1 with one line" 1 \
	'shadm: cannot prepare a query: relation "versions" does not exist' sa secret reveal github/y
dbq "ALTER TABLE versions_gone RENAME TO versions"
as_uid "$UA" cat "$FY" >"$T_TMP/got" 2>/dev/null; same_bytes "the table back: the same daemon serves again" "$T_TMP/got" "$VALS/y1"

stop_fs "$PID"
expect_eq "the daemon stops cleanly" "$STOP_RC" 0
expect_eq "that read is a resolve event of agent-b's uid in the trail" \
	"$(aq count type=resolve agent=agent-b secret=github/z uid="$UB")" 1
expect_eq "no grant event names it: the change was made outside shadm" \
	"$(aq count type=grant agent=agent-b)" 0
expect_verify "audit verify: the chain is intact (the operator's edit is not in it)"

# ---- can edit, delete, reorder or cut audit rows; verify catches each --------------------
N=$(dbq "SELECT max(seq) FROM audit")
H=$(sa audit head 2>/dev/null)
expect_re_line() { if printf '%s\n' "$2" | grep -qE -- "$3"; then ok "$1"; else not_ok "$1"; printf '#   got: %s\n' "$2"; fi; }
row() { dbq "SELECT actor FROM audit WHERE seq = $1"; }
a4=$(row 4)
dbq "UPDATE audit SET actor = 'mallory' WHERE seq = 4"
expect_run "an edited event is named" 1 "shadm: audit chain broken at event 4: altered or reordered" sa audit verify
dbq "UPDATE audit SET actor = '$a4' WHERE seq = 4"
dbq "UPDATE audit SET seq = -5 WHERE seq = 5"
dbq "UPDATE audit SET seq = 5 WHERE seq = 6"
dbq "UPDATE audit SET seq = 6 WHERE seq = -5"
expect_run "two events swapped: the first out of place is named" 1 \
	"shadm: audit chain broken at event 5: altered or reordered" sa audit verify
dbq "UPDATE audit SET seq = -5 WHERE seq = 5"
dbq "UPDATE audit SET seq = 5 WHERE seq = 6"
dbq "UPDATE audit SET seq = 6 WHERE seq = -5"
expect_verify "audit verify: intact again once put back"
dbq "CREATE TABLE saved AS SELECT * FROM audit WHERE seq = 7"
dbq "DELETE FROM audit WHERE seq = 7"
expect_run "a deleted event is named" 1 \
	"shadm: audit chain broken at event 7: removed (the next event present is 8)" sa audit verify
dbq "INSERT INTO audit SELECT * FROM saved"
dbq "DELETE FROM audit WHERE seq >= $((N - 1))"
expect_run "the tail cut: the chain that is left verifies" 0 - sa audit verify
expect_run_re() { # WHAT RC RE CMD...
	local what=$1 want=$2 re=$3; shift 3
	OUT=$("$@" 2>&1); rc=$?
	if [ "$rc" = "$want" ] && printf '%s\n' "$OUT" | grep -qE -- "$re"; then ok "$what"
	else not_ok "$what"; printf '#   exit %s: %s\n' "$rc" "$OUT"; fi
}
expect_run_re "the tail cut: verify --head with the head kept elsewhere catches it" 1 '^shadm: ' \
	sa audit verify --head "$H"
t_finish

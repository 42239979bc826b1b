#!/bin/bash
# valgrind.sh - shadm under valgrind memcheck: a tour of the commands an
# operator runs (init, providers, secrets, agents, grants, check, audit,
# key rotation and rekey) and of their error paths, each run as its own
# process under
#   valgrind --error-exitcode=99 --leak-check=full
#            --errors-for-leak-kinds=definite,indirect
# with tests/valgrind.supp. One line per command: ok when it exits with the
# status it should and valgrind reports no error and no definite or
# indirect leak. On failure the valgrind log is shown.
# Uses $B/shadm (default build/shadm), and $B/scopehold for the error paths
# that need no mount; takes about a minute.
. "$(dirname "$0")/lib.sh"
t_tmpdir
trap 'rm -rf "$T_TMP"' EXIT
unset SUDO_USER

case "$B" in *asan*)
	skip "valgrind: not run on the sanitizer build ($B); AddressSanitizer checks it instead"
	exit 0 ;;
esac
if ! command -v valgrind >/dev/null 2>&1; then
	skip "valgrind: not installed (Debian package valgrind)"
	exit 0
fi
if [ ! -x "$SHADM" ]; then
	not_ok "valgrind: shadm binary $SHADM is built"
	exit 1
fi

E=$T_TMP/e
mkdir -p "$E"
printf '[store]\npath = %s/store.db\nkey_file = %s/master.key\n[mount]\nmountpoint = %s/mnt\n' \
	"$E" "$E" "$E" >"$E/scopehold.ini"
export SCOPEHOLD_CONFIG=$E/scopehold.ini
printf 'sk-test-value' >"$E/value"
printf 'sk-second-value' >"$E/value2"
: >"$E/empty"

VG=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --suppressions="$ROOT/tests/valgrind.supp" --num-callers=30)

# vg WHAT WANT_RC STDIN_FILE ARGS...: run shadm ARGS (or $VG_BIN ARGS) under valgrind.
vg() {
	local what=$1 want=$2 in=$3; shift 3
	"${VG[@]}" --log-file="$T_TMP/vg.log" "${VG_BIN:-$SHADM}" "$@" <"$in" >"$T_TMP/out" 2>"$T_TMP/err"
	local rc=$?
	if [ "$rc" -eq 99 ] || [ -s "$T_TMP/vg.log" ]; then
		not_ok "valgrind: $what"
		printf '#   exit %s; valgrind says:\n' "$rc"
		sed 's/^/#   /' "$T_TMP/vg.log" | head -60
	elif [ "$rc" -ne "$want" ]; then
		not_ok "valgrind: $what"
		printf '#   exit %s, want %s; stderr: %s\n' "$rc" "$want" "$(cat "$T_TMP/err")"
	else
		ok "valgrind: $what"
	fi
}
N=/dev/null

vg "init"                          0 $N init
vg "init again is refused"         1 $N init
vg "provider add"                  0 $N provider add openai
vg "provider add github"           0 $N provider add github
vg "provider list"                 0 $N provider list
vg "secret set (stdin)"            0 "$E/value" secret set openai/key
vg "secret set --from-file --expires" 0 $N secret set openai/key --from-file "$E/value2" --expires 30d
vg "secret set empty value"        1 "$E/empty" secret set github/token --expires 2099-01-01
vg "secret set --allow-empty"      0 "$E/empty" secret set github/token --expires 2099-01-01 --allow-empty
vg "secret set a past date"        1 "$E/value" secret set github/old --expires 2020-01-01
vg "secret list --json"            0 $N --json secret list
vg "secret reveal"                 0 $N secret reveal openai/key
vg "secret reveal --version 1"     0 $N secret reveal openai/key --version 1
vg "secret rollback"               0 $N secret rollback openai/key 1
vg "secret destroy"                0 $N secret destroy openai/key 2
vg "secret versions --json"        0 $N --json secret versions openai/key
vg "secret reveal of a destroyed version" 1 $N secret reveal openai/key --version 2
vg "secret destroy of the current version" 1 $N secret destroy openai/key 3
vg "project add"                   0 $N project add proj
vg "project attach"                0 $N project attach proj openai
vg "agent add"                     0 $N agent add bot --uid 1000 --gid 1000 --exe /usr/bin/true
vg "agent list"                    0 $N agent list
vg "agent show --json"             0 $N --json agent show bot
vg "assign"                        0 $N assign bot proj
vg "grant --ttl --uses"            0 $N grant bot openai/key --ttl 2h --uses 5
vg "grants"                        0 $N grants
vg "check (allow)"                 0 $N check bot openai/key
vg "check --uid (deny)"            1 $N check bot openai/key --uid 1001
vg "revoke"                        0 $N revoke bot openai/key
vg "audit"                         0 $N audit
vg "audit --json --limit"          0 $N --json audit --limit 3 --event create
vg "audit verify"                  0 $N audit verify
vg "audit head"                    0 $N audit head
vg "agent rm without --yes (an assignment)" 1 $N agent rm bot
vg "key rotate --rewrap"           0 $N key rotate --rewrap
vg "key rekey"                     0 $N key rekey --new-key-file "$E/new.key"
vg "secret reveal after rekey"     0 $N secret reveal openai/key
vg "workspace add"                 0 $N workspace add team
vg "workspace list"                0 $N workspace list
printf '# from the app\nexport A=one # c\nB="two\\nlines"\n' >"$E/app.env"
printf 'A=1\nnot an assignment\n' >"$E/bad.env"
printf 'A=scopehold://github/token\nB=literal\n' >"$E/refs.env"
printf 'x {{ scopehold://github/token }} y\n' >"$E/tpl"
vg "import"                        0 $N import --env-file "$E/app.env" --provider github
vg "import --dry-run --json"       0 $N --json import --env-file "$E/app.env" --provider github --dry-run
vg "import of a bad file"          1 $N import --env-file "$E/bad.env" --provider github
vg "import to an unknown provider" 1 $N import --env-file "$E/app.env" --provider nope
vg "export"                        0 $N export
cp "$T_TMP/out" "$E/policy.json"
vg "apply of an unmodified export" 0 $N apply "$E/policy.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
d["projects"]["vg-new"]={"attach":["nope/missing"]}; print(json.dumps(d))' "$E/policy.json" >"$E/policy-bad.json"
vg "apply failing half-way"        1 $N apply "$E/policy-bad.json"
sed 's/"version": 1/"version": "x"/' "$E/policy.json" >"$E/policy-bad.json"
vg "apply of a bad file"           2 $N apply "$E/policy-bad.json"
vg "apply - (stdin) --dry-run"     0 "$E/policy.json" --json apply --dry-run -
SH_BIN=$ROOT/$B/scopehold
VG_BIN=$SH_BIN vg "scopehold run: a refused reference" 1 $N run -e T=github/../x -- true
VG_BIN=$SH_BIN vg "scopehold run: a bad env file"      1 $N run --env-file "$E/bad.env" -- true
VG_BIN=$SH_BIN vg "scopehold run: no mount"            1 $N --mount "$E/none" run --env-file "$E/refs.env" -e C=github/key -- true
VG_BIN=$SH_BIN vg "scopehold inject: no mount"         1 "$E/tpl" --mount "$E/none" inject
VG_BIN=$SH_BIN vg "scopehold ls: no mount"             1 $N --mount "$E/none" ls --json
VG_BIN=$SH_BIN vg "scopehold: unknown option"          2 $N run --frob
VG_BIN=$SH_BIN vg "scopehold --help"                   0 $N --help
# error paths: each must fail cleanly, with nothing leaked on the way out
vg "unknown agent"                 1 $N grant nobody openai/key
vg "unknown secret"                1 $N secret reveal openai/missing
vg "bad name"                      1 $N provider add ../etc
vg "bad ref"                       1 $N secret reveal no-slash
vg "bad duration"                  1 $N grant bot openai/key --ttl 5x
vg "bad --uses"                    2 $N grant bot openai/key --uses -3
vg "unknown command"               2 $N frobnicate
vg "unknown option"                2 $N secret list --bogus
vg "missing argument"              2 $N grant bot
vg "reserved agent name self"      1 $N agent add self --uid 1
vg "help"                          0 $N --help
vg "missing config"                1 $N -c "$E/nonexistent.ini" secret list
head -c 32 /dev/urandom >"$E/wrong.key"; chmod 600 "$E/wrong.key"
printf '[store]\npath = %s/store.db\nkey_file = %s/wrong.key\n' "$E" "$E" >"$E/wrongkey.ini"
vg "wrong key"                     1 $N -c "$E/wrongkey.ini" secret list
vg "provider rm with secrets"      1 $N provider rm openai
if command -v sqlite3 >/dev/null 2>&1; then
	sqlite3 "$E/store.db" "UPDATE audit SET agent = 'someone' WHERE seq = 3" </dev/null
	vg "audit verify after tampering"  1 $N audit verify
else
	skip "valgrind: audit verify after tampering (no sqlite3)"
fi
t_finish

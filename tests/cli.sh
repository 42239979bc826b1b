#!/bin/bash
# cli.sh - tests of the shadm command line, run against the real binary.
#
# Every test gets a fresh config, key and store in its own directory under
# $T_TMP and exports SCOPEHOLD_CONFIG to point at it, so nothing outside the
# temporary directory is read or written. The checks are what an operator
# would notice: exit codes, the exact error line on stderr, the exact bytes
# a reveal prints, and that a refused command changed nothing.
. "$(dirname "$0")/lib.sh"
# Under SANITIZE=1 LeakSanitizer's exit scan stops the world through ptrace,
# about 45 ms per process on this kind of VM: this suite took 107 s with it
# and 82 s without, and runs again in tests/cli-pg.sh. shadm's leaks stay
# checked by valgrind (tests/valgrind.sh: the commands and their error
# paths) and by LeakSanitizer in every other suite, all of which run shadm;
# AddressSanitizer and UBSan stay on here.
case $B in *asan*) export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" ;; esac
t_tmpdir
T_BG=
cleanup() {
	[ -n "$T_BG" ] && kill "$T_BG" 2>/dev/null
	chmod -R u+rwX "$T_TMP" 2>/dev/null
	rm -rf "$T_TMP"
}
trap cleanup EXIT

# The actor recorded for operator actions is $SUDO_USER, else the login name.
unset SUDO_USER
ACTOR=$(id -un)

if [ ! -x "$SHADM" ]; then
	not_ok "shadm binary $SHADM is built"
	t_finish; exit
fi

shadm() { "$SHADM" "$@"; }
# setv P/N VALUE [ARGS]: set a secret from stdin, quietly.
setv() { local ref=$1 val=$2; shift 2; printf '%s' "$val" | "$SHADM" secret set "$ref" "$@"; }
# with_input FILE CMD...: run CMD with stdin from FILE (for expect_run).
with_input() { local f=$1; shift; "$@" <"$f"; }
# in_str STRING CMD...: run CMD with STRING (no newline) on stdin.
in_str() { local s=$1; shift; printf '%s' "$s" | "$@"; }
no() { ! "$@"; }
# setup CMD...: a step a test depends on; reported only when it fails.
setup() {
	if ! "$@" >/dev/null 2>"$T_TMP/setup.err"; then
		not_ok "setup: $*"; sed 's/^/#   /' "$T_TMP/setup.err"
	fi
}
# expect_run_re WHAT RC REGEX CMD...: like expect_run, stderr matched by an ERE.
expect_run_re() {
	local what=$1 want_rc=$2 re=$3; shift 3
	OUT=$("$@" 2>"$T_TMP/stderr"); local rc=$?
	ERR=$(cat "$T_TMP/stderr")
	if [ "$rc" -ne "$want_rc" ]; then
		not_ok "$what"; printf '#   exit %s, want %s; stderr: %s\n' "$rc" "$want_rc" "$ERR"; return
	fi
	if ! [[ $ERR =~ $re ]] || [ "$(printf '%s\n' "$ERR" | wc -l)" -ne 1 ]; then
		not_ok "$what"; printf '#   stderr: %s\n#   want:   /%s/ (one line)\n' "$ERR" "$re"; return
	fi
	ok "$what"
}
# expect_out_re WHAT TEXT REGEX: TEXT matches the ERE.
expect_re() {
	if [[ $2 =~ $3 ]]; then ok "$1"
	else not_ok "$1"; printf '#   got:  %s\n#   want: /%s/\n' "$2" "$3"; fi
}
# jcount EXPR: number of JSON lines on stdin for which the Python
# expression EXPR (over the object e) is true; -1 if a line does not parse.
jcount() {
	python3 -c '
import json, sys
f = eval("lambda e: " + sys.argv[1])
n = 0
try:
    for l in sys.stdin:
        if l.strip() and f(json.loads(l)):
            n += 1
except Exception as x:
    print(-1); sys.exit(0)
print(n)' "$1"
}
# line_of WORD TEXT: the lines of TEXT that mention WORD as a word.
line_of() { printf '%s\n' "$2" | grep -E "(^|[^A-Za-z0-9._-])$1([^A-Za-z0-9._-]|$)"; }
sum() { sha256sum "$@" 2>/dev/null | cut -d' ' -f1 | tr '\n' ' '; }
mode() { stat -c %a "$1" 2>/dev/null; }
size() { stat -c %s "$1" 2>/dev/null; }
# SCOPEHOLD_TEST_BACKEND=postgresql (tests/cli-pg.sh): every environment is
# a fresh database of the cluster tests/pg.sh started; dbq runs SQL on the
# store whichever it is, file_store says whether there is a store file.
BACKEND=${SCOPEHOLD_TEST_BACKEND:-sqlite}
[ "$BACKEND" = postgresql ] && . "$ROOT/tests/pg.sh"
file_store() { [ "$BACKEND" = sqlite ]; }
dbq() {
	if file_store; then sqlite3 "$STORE" "$@"
	else psql -X -q -At -v ON_ERROR_STOP=1 "$CONNINFO" -c "$1" </dev/null; fi
}
nevents() { dbq 'SELECT count(*) FROM audit' 2>/dev/null; }

# new_env: a fresh directory with a config naming a store and key in it.
new_env() {
	E=$(mktemp -d "$T_TMP/env.XXXXXX")
	STORE=$E/store.db KEY=$E/master.key CONF=$E/scopehold.ini
	if file_store; then
		printf '[store]\npath = %s\nkey_file = %s\n' "$STORE" "$KEY" >"$CONF"
		STORE_WHERE=$STORE
	else
		CONNINFO=$(pg_newdb "sh_$(basename "$E" | tr -c 'A-Za-z0-9\n' _)")
		printf '[store]\nbackend = postgresql\nconninfo = %s\nstate_dir = %s/state\nkey_file = %s\n' \
			"$CONNINFO" "$E" "$KEY" >"$CONF"
		STORE_WHERE=$CONNINFO
	fi
	export SCOPEHOLD_CONFIG=$CONF
}
# init_env: new_env plus `shadm init`.
init_env() { new_env; setup shadm init; }

# ---------------------------------------------------------------------------
test_usage() {
	init_env
	expect_run "--help exits 0" 0 - shadm --help
	local missing="" w
	for w in init workspace project provider secret agent assign unassign grant revoke \
		grants who-can check audit key import attach detach reveal rotate rekey verify disable enable; do
		printf '%s\n' "$OUT" | grep -qw -- "$w" || missing="$missing $w"
	done
	expect_eq "--help mentions every command" "$missing" ""
	expect_run "unknown command exits 2" 2 "shadm: unknown command 'frob' (see 'shadm --help')" shadm frob
	expect_run_re "unknown option exits 2" 2 '^shadm: ' shadm --frob provider list
	expect_run_re "unknown command option exits 2" 2 '^shadm: ' shadm provider list --frob
	expect_run_re "no command exits 2" 2 '^shadm: ' shadm
	expect_run_re "unknown subcommand exits 2" 2 '^shadm: ' shadm provider frob x
	expect_run_re "missing subcommand exits 2" 2 '^shadm: ' shadm provider
	expect_run "missing NAME exits 2" 2 "shadm: missing argument NAME for 'provider add'" shadm provider add
	expect_run "agent add without --uid exits 2" 2 "shadm: agent add needs --uid" shadm agent add bot
	expect_run_re "secret set without ref exits 2" 2 '^shadm: ' shadm secret set </dev/null
	expect_run_re "grant without secret exits 2" 2 '^shadm: ' shadm grant bot
	expect_run_re "check without secret exits 2" 2 '^shadm: ' shadm check bot
	expect_run_re "assign without project exits 2" 2 '^shadm: ' shadm assign bot
	expect_run_re "project attach without provider exits 2" 2 '^shadm: ' shadm project attach web
	expect_run_re "key rekey without --new-key-file exits 2" 2 '^shadm: ' shadm key rekey
	expect_run_re "option missing its value exits 2" 2 '^shadm: ' shadm grant bot openai/key --ttl
	expect_run_re "-c missing its value exits 2" 2 '^shadm: ' shadm -c
	expect_run_re "extra argument exits 2" 2 '^shadm: ' shadm provider add a b
	expect_eq "usage errors changed nothing" "$(shadm provider list 2>&1 | grep -cw -e a -e b -e bot)" "0"
}

# ---------------------------------------------------------------------------
test_init() {
	new_env
	expect_run "init exits 0" 0 "" shadm init
	expect_eq "init: key file mode 0600" "$(mode "$KEY")" 600
	expect_eq "init: key file is 32 bytes" "$(size "$KEY")" 32
	if file_store; then expect_eq "init: store mode 0600" "$(mode "$STORE")" 600
	else skip "init: store mode 0600 (a database, not a file: $BACKEND)"; fi
	check "init: store exists and works" shadm provider list
	local before; before=$(sum "$KEY" "$STORE")
	expect_run "second init refuses the existing key" 1 \
		"shadm: key file '$KEY' already exists; refusing to overwrite it" shadm init
	expect_eq "second init left key and store unchanged" "$(sum "$KEY" "$STORE")" "$before"
	mv "$KEY" "$E/saved.key"
	expect_run "init refuses the existing store" 1 \
		"shadm: store '$STORE_WHERE' already exists; refusing to overwrite it" shadm init
	check "refused init left no key file behind" test ! -e "$KEY"
	mv "$E/saved.key" "$KEY"
	expect_eq "refused init left key and store unchanged" "$(sum "$KEY" "$STORE")" "$before"
	# -c wins over $SCOPEHOLD_CONFIG
	expect_run "-c selects the config" 0 "" env SCOPEHOLD_CONFIG=/nonexistent/x.ini "$SHADM" -c "$CONF" provider list
	if [ ! -e /etc/scopehold/scopehold.ini ]; then
		expect_run "default config path when neither -c nor SCOPEHOLD_CONFIG" 1 \
			"shadm: cannot read config '/etc/scopehold/scopehold.ini': No such file or directory" \
			env -u SCOPEHOLD_CONFIG "$SHADM" provider list
	fi
}

# ---------------------------------------------------------------------------
test_secrets() {
	init_env
	local in=$T_TMP/in.$$; mkdir -p "$in"
	expect_run "provider add" 0 "" shadm provider add openai
	expect_run "provider list" 0 "" shadm provider list
	check "provider list shows openai" grep -qw openai <<<"$OUT"

	printf 'a\0b\nc\0\n' >"$in/v1"
	expect_run "secret set from stdin" 0 "" with_input "$in/v1" shadm secret set openai/key
	expect_eq "secret set prints version 1 (created)" "$OUT" "openai/key: version 1 (created)"
	shadm secret reveal openai/key >"$in/r1" 2>/dev/null
	check "reveal returns the exact bytes (NUL, trailing newline)" cmp -s "$in/v1" "$in/r1"

	printf 'from-file-value\n' >"$in/ff"
	expect_run "secret set --from-file" 0 "" shadm secret set openai/ff --from-file "$in/ff" </dev/null
	expect_eq "--from-file prints version 1 (created)" "$OUT" "openai/ff: version 1 (created)"
	shadm secret reveal openai/ff >"$in/rff" 2>/dev/null
	check "reveal of --from-file value is exact" cmp -s "$in/ff" "$in/rff"
	expect_run_re "--from-file of a missing file fails" 1 '^shadm: .*' \
		shadm secret set openai/ff2 --from-file "$in/nonexistent"

	printf 'second' >"$in/v2"
	expect_run "rotate" 0 "" with_input "$in/v2" shadm secret set openai/key
	expect_eq "rotation prints version 2 (rotated)" "$OUT" "openai/key: version 2 (rotated)"
	shadm secret reveal openai/key >"$in/r2" 2>/dev/null
	check "reveal gives the newest version" cmp -s "$in/v2" "$in/r2"
	shadm secret reveal openai/key --version 1 >"$in/r1b" 2>/dev/null
	check "reveal --version 1 gives the old version" cmp -s "$in/v1" "$in/r1b"
	expect_run "reveal of a missing version" 1 "shadm: no version 3 of 'openai/key'" \
		shadm secret reveal openai/key --version 3
	expect_run "reveal of an unknown secret" 1 "shadm: no secret 'openai/nope'" shadm secret reveal openai/nope

	expect_run "secret set of an empty value is refused" 1 \
		"shadm: the value is empty: nothing stored (--allow-empty stores an empty value)" \
		shadm secret set openai/empty </dev/null
	check "the refused empty value stored nothing" no grep -qw empty <<<"$(shadm secret list 2>&1)"
	expect_run "secret set --allow-empty of an empty value" 0 "" shadm secret set openai/empty --allow-empty </dev/null
	expect_eq "empty value reveals as empty" "$(shadm secret reveal openai/empty 2>/dev/null | wc -c)" 0

	head -c 65536 /dev/urandom >"$in/max"
	expect_run "a 65536-byte value is accepted" 0 "" with_input "$in/max" shadm secret set openai/max
	shadm secret reveal openai/max >"$in/rmax" 2>/dev/null
	check "the 65536-byte value reveals exactly" cmp -s "$in/max" "$in/rmax"

	expect_run "secret set --expires 7d" 0 "" setv openai/exp7 "x" --expires 7d
	expect_eq "--expires 7d prints version 1 (created)" "$OUT" "openai/exp7: version 1 (created)"
	expect_run "secret set --expires DATE" 0 "" setv openai/expd "x" --expires 2099-01-31
	expect_run "secret set --expires DATETIME" 0 "" setv openai/expt "x" --expires 2099-02-28T12:00:00Z

	expect_run "secret list" 0 "" shadm secret list
	local list=$OUT
	local kl; kl=$(line_of key "$list")
	check "secret list shows openai/key" test -n "$kl"
	check "secret list shows the current version 2 of openai/key" grep -qw 2 <<<"$kl"
	check "secret list shows the length 6 of openai/key" grep -qw 6 <<<"$kl"
	check "secret list shows the length 65536 of openai/max" grep -qw 65536 <<<"$(line_of max "$list")"
	check "secret list shows the expiry 7 days ahead" grep -q "$(date -u -d '+7 days' +%Y-%m-%d)" <<<"$(line_of exp7 "$list")"
	check "secret list shows the expiry date" grep -q 2099-01-31 <<<"$(line_of expd "$list")"
	check "secret list shows the expiry datetime" grep -q 2099-02-28 <<<"$(line_of expt "$list")"
	check "secret list never shows a value" no grep -qa -e second -e from-file-value <<<"$list"
	expect_run "secret list --json" 0 "" shadm --json secret list
	expect_eq "secret list --json: one object per secret" "$(jcount True <<<"$OUT")" 7
	check "secret list --json never shows a value" no grep -qa -e second -e from-file-value <<<"$OUT"

	expect_run "bad --expires date refused" 1 \
		"shadm: invalid date '2027-13-01': use a duration (7d) or an ISO-8601 date (2027-01-31 or 2027-01-31T12:00:00Z)" \
		setv openai/bad "x" --expires 2027-13-01
	expect_run "bad --expires word refused" 1 \
		"shadm: invalid date 'tomorrow': use a duration (7d) or an ISO-8601 date (2027-01-31 or 2027-01-31T12:00:00Z)" \
		setv openai/bad "x" --expires tomorrow
	head -c 65537 /dev/urandom >"$in/big"
	expect_run "a 65537-byte value is refused" 1 "shadm: value is larger than the limit of 65536 bytes" \
		with_input "$in/big" shadm secret set openai/big
	expect_run "a 65537-byte --from-file is refused" 1 "shadm: value is larger than the limit of 65536 bytes" \
		shadm secret set openai/big --from-file "$in/big"
	expect_run "a too-large rotation is refused" 1 "shadm: value is larger than the limit of 65536 bytes" \
		with_input "$in/big" shadm secret set openai/key
	expect_eq "refused sets stored nothing (secret list unchanged)" "$(shadm secret list 2>&1)" "$list"
	shadm secret reveal openai/key >"$in/r2b" 2>/dev/null
	check "refused rotation kept the current value" cmp -s "$in/v2" "$in/r2b"
	expect_run "value on the command line is refused" 2 - shadm secret set openai/argv not-from-stdin </dev/null
	check "value on the command line stored nothing" no grep -qw argv <<<"$(shadm secret list 2>&1)"
	expect_run "secret set under an unknown provider" 1 "shadm: no provider 'nope'" setv nope/x "x"

	setup shadm provider add github
	setup setv github/gh "ghvalue"
	expect_run "secret list PROVIDER" 0 "" shadm secret list github
	check "secret list PROVIDER shows its secrets" grep -qw gh <<<"$OUT"
	check "secret list PROVIDER hides other providers" no grep -qw key <<<"$OUT"
	expect_run "secret list of an unknown provider" 1 "shadm: no provider 'nope'" shadm secret list nope

	expect_run "provider rm refuses a provider with secrets" 1 "shadm: provider 'github' still holds 1 secret(s)" \
		shadm provider rm github
	expect_run "secret rm" 0 "" shadm secret rm openai/ff
	expect_run "removed secret is gone" 1 "shadm: no secret 'openai/ff'" shadm secret reveal openai/ff
	check "secret list no longer shows it" no grep -qw ff <<<"$(shadm secret list 2>&1)"
	expect_run "secret rm of an unknown secret" 1 "shadm: no secret 'openai/ff'" shadm secret rm openai/ff
	setup shadm secret rm github/gh
	expect_run "provider rm" 0 "" shadm provider rm github
	check "provider list no longer shows it" no grep -qw github <<<"$(shadm provider list 2>&1)"
	expect_run "provider rm of an unknown provider" 1 "shadm: no provider 'github'" shadm provider rm github
}

# ---------------------------------------------------------------------------
test_names() {
	init_env
	setup shadm provider add openai
	setup shadm project add web
	setup shadm agent add bot --uid 1000
	local long128 long129 n before
	long128=$(printf 'a%.0s' {1..128}); long129=${long128}a
	before=$(shadm provider list 2>&1)
	for n in 'a b' 'a/b' '..' '.hidden' "$long129" ''; do
		expect_run "provider add refuses '${n:0:20}'" 1 \
			"shadm: invalid name '$n': use 1-128 of A-Z a-z 0-9 . _ - , not starting with . or -" \
			shadm provider add "$n"
	done
	expect_run "provider add -- refuses '-dash'" 1 \
		"shadm: invalid name '-dash': use 1-128 of A-Z a-z 0-9 . _ - , not starting with . or -" \
		shadm provider add -- -dash
	expect_eq "refused names changed nothing" "$(shadm provider list 2>&1)" "$before"
	expect_run "a 128-character name is accepted" 0 "" shadm provider add "$long128"
	expect_run "a name of . _ - after the first character is accepted" 0 "" shadm provider add 'A9._-z'
	local slist; slist=$(shadm secret list 2>&1)
	for n in 'a b' '..' '.x'; do
		expect_run "project add refuses '$n'" 1 \
			"shadm: invalid name '$n': use 1-128 of A-Z a-z 0-9 . _ - , not starting with . or -" \
			shadm project add "$n"
		expect_run "agent add refuses '$n'" 1 \
			"shadm: invalid name '$n': use 1-128 of A-Z a-z 0-9 . _ - , not starting with . or -" \
			shadm agent add "$n" --uid 1000
		expect_run "workspace add refuses '$n'" 1 \
			"shadm: invalid name '$n': use 1-128 of A-Z a-z 0-9 . _ - , not starting with . or -" \
			shadm workspace add "$n"
		expect_run "secret set refuses secret name '$n'" 1 \
			"shadm: invalid name '$n': use 1-128 of A-Z a-z 0-9 . _ - , not starting with . or -" \
			setv "openai/$n" "x"
	done
	expect_run_re "secret set refuses a name with a slash" 1 "^shadm: invalid name '" setv openai/x/y "x"
	expect_run_re "secret set refuses a ref without a name" 1 "^shadm: invalid name ''" setv openai/ "x"
	expect_run "secret set refuses a leading dash" 1 \
		"shadm: invalid name '-x': use 1-128 of A-Z a-z 0-9 . _ - , not starting with . or -" \
		setv openai/-x "x"
	expect_eq "refused secret names stored nothing" "$(shadm secret list 2>&1)" "$slist"
	expect_run_re "agent named self is refused" 1 "^shadm: .*'self'" shadm agent add self --uid 1000
	check "agent self was not added" no grep -qw self <<<"$(shadm agent list 2>&1)"
	expect_run "project named self is fine" 0 "" shadm project add self

	expect_run "duplicate provider" 1 "shadm: provider 'openai' already exists" shadm provider add openai
	expect_run "duplicate project" 1 "shadm: project 'web' already exists" shadm project add web
	expect_run "duplicate agent" 1 "shadm: agent 'bot' already exists" shadm agent add bot --uid 1001
	expect_run "duplicate workspace" 1 "shadm: workspace 'default' already exists" shadm workspace add default
	expect_run "duplicate agent kept the old binding" 0 "" shadm agent show bot
	check "agent show still says uid 1000" grep -qw 1000 <<<"$OUT"

	setup setv openai/key "v"
	expect_run "unknown agent (show)" 1 "shadm: no agent 'ghost'" shadm agent show ghost
	expect_run "unknown agent (grant)" 1 "shadm: no agent 'ghost'" shadm grant ghost openai/key
	expect_run "unknown agent (assign)" 1 "shadm: no agent 'ghost'" shadm assign ghost web
	expect_run "unknown project (show)" 1 "shadm: no project 'nope'" shadm project show nope
	expect_run "unknown project (assign)" 1 "shadm: no project 'nope'" shadm assign bot nope
	expect_run "unknown project (rm)" 1 "shadm: no project 'nope'" shadm project rm nope
	expect_run "unknown secret (grant)" 1 "shadm: no secret 'openai/nope'" shadm grant bot openai/nope
	expect_run "unknown secret (rm)" 1 "shadm: no secret 'openai/nope'" shadm secret rm openai/nope
	expect_run "unknown provider (rm)" 1 "shadm: no provider 'nope'" shadm provider rm nope
	expect_run "unknown workspace (-w)" 1 "shadm: no workspace 'nope'" shadm -w nope provider list
	expect_run "malformed --ttl" 1 \
		"shadm: invalid duration '1w': use a number and s, m, h or d (30s, 15m, 2h, 7d)" \
		shadm grant bot openai/key --ttl 1w
	expect_run "malformed --ttl without unit" 1 \
		"shadm: invalid duration '10': use a number and s, m, h or d (30s, 15m, 2h, 7d)" \
		shadm grant bot openai/key --ttl 10
	check "refused grants made no grant" no grep -q key <<<"$(shadm grants 2>&1)"
}

# ---------------------------------------------------------------------------
test_projects() {
	init_env
	setup shadm provider add openai
	setup shadm provider add github
	setup setv github/gh "g"
	setup setv github/other "o"
	expect_run "project add" 0 "" shadm project add web
	expect_run "project list" 0 "" shadm project list
	check "project list shows web" grep -qw web <<<"$OUT"
	expect_run "attach a whole provider" 0 "" shadm project attach web openai
	expect_run "attach a single secret" 0 "" shadm project attach web github/gh
	expect_run "attach the provider twice" 1 "shadm: 'openai' is already attached to project 'web'" \
		shadm project attach web openai
	expect_run "attach the secret twice" 1 "shadm: 'github/gh' is already attached to project 'web'" \
		shadm project attach web github/gh
	expect_run "attach to an unknown project" 1 "shadm: no project 'nope'" shadm project attach nope openai
	expect_run "attach an unknown provider" 1 "shadm: no provider 'nope'" shadm project attach web nope
	expect_run "attach an unknown secret" 1 "shadm: no secret 'github/zz'" shadm project attach web github/zz
	expect_run "project show" 0 "" shadm project show web
	check "project show lists the attached provider" grep -qw openai <<<"$OUT"
	check "project show lists the attached secret" grep -q 'github/gh' <<<"$OUT"
	check "project show does not list an unattached secret" no grep -q 'other' <<<"$OUT"
	expect_run "detach the secret" 0 "" shadm project detach web github/gh
	check "project show no longer lists it" no grep -q 'github/gh' <<<"$(shadm project show web 2>&1)"
	expect_run "detach it again" 1 "shadm: 'github/gh' is not attached to project 'web'" \
		shadm project detach web github/gh
	expect_run "detach a provider never attached" 1 "shadm: 'github' is not attached to project 'web'" \
		shadm project detach web github
	expect_run "project rm" 0 "" shadm project rm web
	check "project list no longer shows web" no grep -qw web <<<"$(shadm project list 2>&1)"
	expect_run "project show after rm" 1 "shadm: no project 'web'" shadm project show web
}

# ---------------------------------------------------------------------------
test_agents() {
	init_env
	local cat_sum; cat_sum=$(sha256sum /usr/bin/cat | cut -d' ' -f1)
	expect_run "agent add with every binding" 0 "" \
		shadm agent add bot --uid 1000 --gid 1001 --exe /usr/bin/cat --exe-sha256 "$cat_sum"
	expect_run "agent add --human" 0 "" shadm agent add alice --uid 1002 --human
	expect_run "agent list" 0 "" shadm agent list
	check "agent list shows bot" grep -qw bot <<<"$OUT"
	check "agent list shows alice" grep -qw alice <<<"$OUT"
	check "agent list marks alice human" grep -qw human <<<"$(line_of alice "$OUT")"
	expect_run "agent show" 0 "" shadm agent show bot
	check "agent show has the uid" grep -qw 1000 <<<"$OUT"
	check "agent show has the gid" grep -qw 1001 <<<"$OUT"
	check "agent show has the exe" grep -q /usr/bin/cat <<<"$OUT"
	check "agent show has the exe sha256" grep -q "$cat_sum" <<<"$OUT"
	expect_run "agent disable" 0 "" shadm agent disable bot
	check "agent show says disabled" grep -qw disabled <<<"$(shadm agent show bot 2>&1)"
	expect_run "agent enable" 0 "" shadm agent enable bot
	check "agent show no longer says disabled" no grep -qw disabled <<<"$(shadm agent show bot 2>&1)"
	expect_run "disable an unknown agent" 1 "shadm: no agent 'ghost'" shadm agent disable ghost
	expect_run "enable an unknown agent" 1 "shadm: no agent 'ghost'" shadm agent enable ghost
	local before; before=$(shadm agent list 2>&1)
	expect_run_re "malformed --exe-sha256 refused" 1 '^shadm: ' shadm agent add bad --uid 1000 --exe-sha256 xyz
	expect_run_re "short --exe-sha256 refused" 1 '^shadm: ' shadm agent add bad --uid 1000 --exe-sha256 "${cat_sum:1}"
	expect_run "non-numeric --uid is a usage error" 2 "shadm: --uid needs a number" shadm agent add bad --uid abc
	expect_run "non-numeric --gid is a usage error" 2 "shadm: --gid needs a number" shadm agent add bad --uid 1000 --gid 1x
	expect_eq "refused agent adds changed nothing" "$(shadm agent list 2>&1)" "$before"
	expect_run "agent rm" 0 "" shadm agent rm alice
	expect_run "removed agent is gone" 1 "shadm: no agent 'alice'" shadm agent show alice
	expect_run "agent rm again" 1 "shadm: no agent 'alice'" shadm agent rm alice
}

# ---------------------------------------------------------------------------
# expect_check WHAT REASON ARGS...: `shadm check ARGS` denies with REASON.
expect_check() {
	local what=$1 reason=$2; shift 2
	OUT=$("$SHADM" check "$@" 2>"$T_TMP/stderr"); local rc=$?
	if [ "$reason" = allow ]; then
		if [ "$rc" -eq 0 ] && [ "$OUT" = allow ]; then ok "$what"
		else not_ok "$what"; printf '#   exit %s stdout %s stderr %s\n' "$rc" "$OUT" "$(cat "$T_TMP/stderr")"; fi
		return
	fi
	if [ "$rc" -eq 1 ] && [[ $OUT =~ ^deny:\ $reason\ \(.+\)$ ]]; then ok "$what"
	else not_ok "$what"; printf '#   exit %s stdout %s stderr %s; want deny: %s (...)\n' \
		"$rc" "$OUT" "$(cat "$T_TMP/stderr")" "$reason"; fi
}

test_check() {
	init_env
	local ls_sum cat_sum
	ls_sum=$(sha256sum /usr/bin/ls | cut -d' ' -f1); cat_sum=$(sha256sum /usr/bin/cat | cut -d' ' -f1)
	setup shadm provider add openai
	setup setv openai/key "k"
	setup shadm project add web
	setup shadm project attach web openai
	expect_run "agent add bound by path only warns that the path alone is weak" 0 \
		"shadm: warning: agent 'bot' is bound to /usr/bin/cat by path only; add --exe-sha256 so a different binary at that path is refused" \
		shadm agent add bot --uid 1000 --gid 1000 --exe /usr/bin/cat
	expect_run "assign" 0 "" shadm assign bot web
	expect_run "assign twice" 1 "shadm: agent 'bot' is already assigned to project 'web'" shadm assign bot web
	expect_check "check: no-grant" no-grant bot openai/key
	expect_run "grant" 0 "" shadm grant bot openai/key
	expect_run "grants AGENT" 0 "" shadm grants bot
	check "grants lists the grant" grep -q 'openai/key' <<<"$OUT"
	expect_run "grants" 0 "" shadm grants
	check "grants (all) lists the grant" grep -q 'openai/key' <<<"$OUT"
	expect_check "check: allow (agent's own bindings)" allow bot openai/key
	expect_check "check: allow with the bound facts given" allow bot openai/key --uid 1000 --gid 1000 --exe /usr/bin/cat
	expect_check "check: no-agent" no-agent ghost openai/key
	expect_check "check: no-secret" no-secret bot openai/nope
	expect_check "check: uid 0 is not special" uid bot openai/key --uid 0
	expect_check "check: uid" uid bot openai/key --uid 1001
	expect_check "check: gid" gid bot openai/key --gid 0
	expect_check "check: exe" exe bot openai/key --exe /usr/bin/ls

	setup shadm agent add hashed --uid 1000 --exe /usr/bin/cat --exe-sha256 "$ls_sum"
	setup shadm agent add hashok --uid 1000 --exe /usr/bin/cat --exe-sha256 "$cat_sum"
	setup shadm assign hashed web; setup shadm assign hashok web
	setup shadm grant hashed openai/key; setup shadm grant hashok openai/key
	# --exe makes check hash the file, as the mount hashes /proc/PID/exe.
	expect_check "check: exe-sha256" exe-sha256 hashed openai/key --exe /usr/bin/cat
	expect_check "check: allow with a matching exe-sha256" allow hashok openai/key --exe /usr/bin/cat

	expect_run "agent disable" 0 "" shadm agent disable bot
	expect_check "check: disabled" disabled bot openai/key
	expect_check "check: caller mismatch is reported before disabled" uid bot openai/key --uid 0
	setup shadm agent enable bot
	expect_check "check: allow after enable" allow bot openai/key

	expect_run "project detach" 0 "" shadm project detach web openai
	expect_check "check: not-candidate (detached)" not-candidate bot openai/key
	setup shadm project attach web openai/key
	expect_check "check: allow (single secret attached)" allow bot openai/key
	expect_run "unassign" 0 "" shadm unassign bot web
	expect_check "check: not-candidate (unassigned)" not-candidate bot openai/key
	expect_run "unassign again" 1 "shadm: agent 'bot' is not assigned to project 'web'" shadm unassign bot web
	setup shadm assign bot web
	expect_check "check: allow after reassign" allow bot openai/key

	expect_run "revoke" 0 "" shadm revoke bot openai/key
	expect_check "check: revoked" revoked bot openai/key
	expect_run "revoke again" 1 "shadm: agent 'bot' has no live grant of 'openai/key'" shadm revoke bot openai/key
	setup setv openai/ungranted "u"
	expect_run "revoke never granted" 1 "shadm: agent 'bot' has no live grant of 'openai/ungranted'" \
		shadm revoke bot openai/ungranted
	expect_run "revoke of an unknown secret" 1 "shadm: no secret 'openai/nope'" shadm revoke bot openai/nope
	expect_run "re-grant with --uses" 0 "" shadm grant bot openai/key --uses 1
	expect_check "check: allow with --uses 1" allow bot openai/key
	expect_check "check does not consume a use" allow bot openai/key
	expect_run "--uses not a number is a usage error" 2 "shadm: --uses needs a number" shadm grant bot openai/key --uses many

	setup shadm grant bot openai/key --ttl 1s
	setup setv openai/short "s" --expires 1s
	setup shadm project attach web openai
	setup shadm grant bot openai/short
	sleep 2
	expect_check "check: grant-expired" grant-expired bot openai/key
	expect_check "check: version-expired" version-expired bot openai/short
	expect_run "grant --ttl 1h" 0 "" shadm grant bot openai/key --ttl 1h
	expect_check "check: allow after a fresh grant" allow bot openai/key
	setup setv openai/short "s2" --expires 1h   # not the carried 1s: a slow run (ASan, PostgreSQL) outlives it
	expect_check "check: allow after rotating the expired version" allow bot openai/short
}

# ---------------------------------------------------------------------------
test_audit() {
	init_env
	local V1="audit-v1-$RANDOM$RANDOM" V2="audit-v2-$RANDOM$RANDOM" V3="audit-v3-$RANDOM$RANDOM"
	setup shadm provider add openai
	setup setv openai/key "$V1"
	setup setv openai/key "$V2"
	setup shadm secret reveal openai/key
	setup shadm agent add bot --uid 1000
	setup shadm project add web
	setup shadm project attach web openai
	setup shadm assign bot web
	setup shadm grant bot openai/key
	setup shadm revoke bot openai/key
	setup setv openai/tmp "$V3"
	setup shadm secret rm openai/tmp
	setup env SUDO_USER=alice "$SHADM" secret reveal openai/key

	expect_run "audit --json" 0 "" shadm --json audit
	local J=$OUT all
	all=$(jcount True <<<"$J")
	expect_eq "audit --json: every line parses" \
		"$(printf '%s\n' "$J" | python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' 2>&1 && echo parsed)" parsed
	check "audit --json: at least 12 events" test "$all" -ge 12
	expect_eq "audit --json: every line has every key" "$(jcount 'all(k in e for k in "seq time type workspace actor agent secret version uid gid pid exe reason fingerprint count".split())' <<<"$J")" "$all"
	local t
	for t in create rotate reveal grant revoke assign rm attach agent-add; do
		check "audit has a $t event by $ACTOR" test "$(jcount "e['type']=='$t' and e['actor']=='$ACTOR'" <<<"$J")" -ge 1
	done
	expect_eq "create event names secret and version 1" "$(jcount "e['type']=='create' and e['secret']=='openai/key' and e['version']==1" <<<"$J")" 1
	expect_eq "rotate event names version 2" "$(jcount "e['type']=='rotate' and e['secret']=='openai/key' and e['version']==2" <<<"$J")" 1
	expect_eq "grant event names agent and secret" "$(jcount "e['type']=='grant' and e['agent']=='bot' and e['secret']=='openai/key'" <<<"$J")" 1
	expect_eq "rm event names the secret" "$(jcount "e['type']=='rm' and e['secret']=='openai/tmp'" <<<"$J")" 1
	expect_eq "SUDO_USER=alice is the actor" "$(jcount "e['type']=='reveal' and e['actor']=='alice'" <<<"$J")" 1
	expect_eq "events are in seq order" "$(printf '%s\n' "$J" | python3 -c '
import json,sys; s=[json.loads(l)["seq"] for l in sys.stdin if l.strip()]; print(s==sorted(s) and len(set(s))==len(s))')" True

	expect_run "audit --agent" 0 "" shadm --json audit --agent bot
	check "audit --agent: some events" test "$(jcount True <<<"$OUT")" -ge 3
	expect_eq "audit --agent: only that agent" "$(jcount "e['agent']!='bot'" <<<"$OUT")" 0
	expect_run "audit --secret" 0 "" shadm --json audit --secret openai/key
	expect_eq "audit --secret: only that secret" "$(jcount "e['secret']!='openai/key'" <<<"$OUT")" 0
	expect_eq "audit --secret: create, rotate, 2 reveals, grant, revoke" \
		"$(jcount "e['type'] in ('create','rotate','reveal','grant','revoke')" <<<"$OUT")" 6
	expect_run "audit --event" 0 "" shadm --json audit --event reveal
	expect_eq "audit --event reveal: the 2 reveals only" "$(jcount "e['type']=='reveal'" <<<"$OUT"),$(jcount True <<<"$OUT")" "2,2"
	expect_run "audit --agent --event" 0 "" shadm --json audit --agent bot --event grant
	expect_eq "audit --agent bot --event grant: 1 event" "$(jcount True <<<"$OUT")" 1
	expect_run "audit --limit 3" 0 "" shadm --json audit --limit 3
	expect_eq "audit --limit 3: the newest 3" \
		"$(printf '%s\n' "$OUT" | python3 -c 'import json,sys; print([json.loads(l)["seq"] for l in sys.stdin if l.strip()])')" \
		"$(printf '%s\n' "$J" | python3 -c 'import json,sys; print([json.loads(l)["seq"] for l in sys.stdin if l.strip()][-3:])')"
	expect_run "audit --since 1h" 0 "" shadm --json audit --since 1h
	expect_eq "audit --since 1h: every event" "$(jcount True <<<"$OUT")" "$all"
	expect_run "audit --since malformed is a usage error" 2 \
		"shadm: invalid time for --since '1w': use a duration back from now (30m, 2h, 7d) or a date (2026-12-01, 2026-12-01T10:00Z, 2026-12-01T10:00+01:00)" shadm audit --since 1w
	expect_run "audit (table)" 0 "" shadm audit
	local H=$OUT
	check "audit table shows reveal" grep -qw reveal <<<"$H"
	check "audit table shows alice" grep -qw alice <<<"$H"
	local v leaked=""
	for v in "$V1" "$V2" "$V3"; do
		grep -qaF -- "$v" <<<"$H$J" && leaked="$leaked $v"
	done
	expect_eq "values never appear in audit output" "$leaked" ""
	expect_eq "reading the audit wrote no events" "$(shadm --json audit 2>/dev/null | jcount True)" "$all"
}

# ---------------------------------------------------------------------------
# populate_chain: a store with a few events of several kinds.
populate_chain() {
	init_env
	setup shadm provider add openai
	setup setv openai/a "1"
	setup setv openai/b "2"
	setup setv openai/a "3"
	setup shadm agent add bot --uid 1000
	setup shadm grant bot openai/a
	setup shadm secret reveal openai/a
	setup shadm revoke bot openai/a
}

test_verify() {
	populate_chain
	local n; n=$(nevents)
	check "chain has at least 6 events" test "${n:-0}" -ge 6
	expect_run "audit verify: intact" 0 "" shadm audit verify
	expect_eq "audit verify prints the count" "$OUT" "audit chain intact: $n events"
	setup dbq "UPDATE audit SET reason='x' WHERE seq=3"
	expect_run_re "audit verify: altered event 3" 1 '^shadm: audit chain broken at event 3: .+$' shadm audit verify

	populate_chain
	setup dbq "UPDATE audit SET actor='mallory' WHERE seq=2"
	expect_run_re "audit verify: altered actor of event 2" 1 '^shadm: audit chain broken at event 2: .+$' shadm audit verify

	populate_chain
	setup dbq "DELETE FROM audit WHERE seq=3"
	expect_run "audit verify: deleted event 3 is named as removed" 1 "shadm: audit chain broken at event 3: removed (the next event present is 4)" shadm audit verify

	populate_chain
	setup dbq "UPDATE audit SET hash=(SELECT hash FROM audit WHERE seq=2) WHERE seq=3"
	expect_run_re "audit verify: replaced hash of event 3" 1 '^shadm: audit chain broken at event 3: .+$' shadm audit verify

	populate_chain
	expect_run "audit head" 0 "" shadm audit head
	local h1=$OUT h2
	expect_re "audit head is 64 hex digits" "$h1" '^[0-9a-f]{64}$'
	expect_run "audit verify --head (matches)" 0 "" shadm audit verify --head "$h1"
	setup setv openai/c "4"
	h2=$(shadm audit head 2>/dev/null)
	check "audit head moves when an event is appended" test -n "$h2" -a "$h2" != "$h1"
	expect_run "audit verify --head after appending (matches)" 0 "" shadm audit verify --head "$h2"
	setup dbq "DELETE FROM audit WHERE seq=(SELECT max(seq) FROM audit)"
	expect_run_re "audit verify --head: removed last event is a mismatch" 1 '^shadm: ' shadm audit verify --head "$h2"
	expect_run_re "audit verify --head of a wrong head" 1 '^shadm: ' shadm audit verify --head "$(printf '0%.0s' {1..64})"
}

# ---------------------------------------------------------------------------
# reveal_is P/N VALUE [ARGS]: reveal prints exactly VALUE.
reveal_is() {
	local ref=$1 want=$2; shift 2
	[ "$("$SHADM" secret reveal "$ref" "$@" 2>/dev/null)" = "$want" ]
}

test_keys() {
	init_env
	setup shadm provider add openai
	setup setv openai/a "a-one"
	expect_run "key rotate" 0 "" shadm key rotate
	expect_re "key rotate prints the new key" "$OUT" '^new data key [0-9]+; re-encrypted 0 versions$'
	local k1=${OUT#new data key }; k1=${k1%%;*}
	setup setv openai/a "a-two"
	setup setv openai/b "b-one"
	check "after key rotate: old version reveals" reveal_is openai/a a-one --version 1
	check "after key rotate: new version reveals" reveal_is openai/a a-two
	check "after key rotate: new secret reveals" reveal_is openai/b b-one
	expect_run "key rotate --rewrap" 0 "" shadm key rotate --rewrap
	expect_eq "key rotate --rewrap re-encrypts all 3 versions" "$OUT" "new data key $((k1 + 1)); re-encrypted 3 versions"
	check "after rewrap: version 1 reveals" reveal_is openai/a a-one --version 1
	check "after rewrap: version 2 reveals" reveal_is openai/a a-two
	check "after rewrap: b reveals" reveal_is openai/b b-one
	expect_eq "key rotations are audited" "$(shadm --json audit --event key-rotate 2>/dev/null | jcount True)" 2

	cp -p "$KEY" "$E/old.key"
	local old; old=$(sum "$KEY")
	expect_run "key rekey" 0 "" shadm key rekey --new-key-file "$E/new.key"
	expect_eq "key rekey message" "$OUT" "root key replaced; the new key is now $KEY"
	expect_eq "new key file mode 0600" "$(mode "$KEY")" 600
	expect_eq "new key file is 32 bytes" "$(size "$KEY")" 32
	check "key file now holds a different key" test "$(sum "$KEY")" != "$old"
	check "after rekey: version 1 reveals" reveal_is openai/a a-one --version 1
	check "after rekey: version 2 reveals" reveal_is openai/a a-two
	check "after rekey: b reveals" reveal_is openai/b b-one
	expect_run "after rekey: audit chain intact" 0 "" shadm audit verify
	expect_eq "key rekey is audited" "$(shadm --json audit --event key-rekey 2>/dev/null | jcount True)" 1
	sed "s|^key_file = .*|key_file = $E/old.key|" "$CONF" >"$E/old.ini"
	expect_run "the old key no longer opens the store" 1 "shadm: this key does not open this store" \
		shadm -c "$E/old.ini" secret reveal openai/a
	setup setv openai/a "a-three"
	check "after rekey: new versions work" reveal_is openai/a a-three
}

# ---------------------------------------------------------------------------
test_bad_env() {
	init_env
	setup shadm provider add openai
	setup setv openai/a "a"
	local before; before=$(sum "$STORE" "$KEY")

	chmod 644 "$KEY"
	expect_run "key file mode 0644 refused" 1 \
		"shadm: key file '$KEY' is accessible by group or others (mode 0644); run: chmod 600 $KEY" shadm provider list
	chmod 640 "$KEY"
	expect_run "key file mode 0640 refused" 1 \
		"shadm: key file '$KEY' is accessible by group or others (mode 0640); run: chmod 600 $KEY" shadm provider list
	chmod 600 "$KEY"
	chmod 644 "$STORE"
	expect_run "store mode 0644 refused" 1 \
		"shadm: store '$STORE' is accessible by group or others (mode 0644); run: chmod 600 $STORE" shadm provider list
	chmod 600 "$STORE"
	chown 12345 "$KEY"
	expect_run "key file owned by another uid refused" 1 \
		"shadm: key file '$KEY' is owned by uid 12345, not by uid 0 (the user running this)" shadm provider list
	chown 0 "$KEY"
	chown 12345 "$STORE"
	expect_run "store owned by another uid refused" 1 \
		"shadm: store '$STORE' is owned by uid 12345, not by uid 0 (the user running this)" shadm provider list
	chown 0 "$STORE"

	mv "$KEY" "$E/real.key"
	expect_run "missing key file" 1 "shadm: key file '$KEY' does not exist (run 'shadm init')" shadm provider list
	ln -s "$E/real.key" "$KEY"
	expect_run "key file as a symlink refused" 1 "shadm: key file '$KEY' is not a regular file" shadm provider list
	rm -f "$KEY"; mkdir "$KEY"
	expect_run "key file as a directory refused" 1 "shadm: key file '$KEY' is not a regular file" shadm provider list
	rmdir "$KEY"
	head -c 31 "$E/real.key" >"$KEY"; chmod 600 "$KEY"
	expect_run "31-byte key file refused" 1 "shadm: key file '$KEY' is not a 32-byte key" shadm provider list
	cat "$E/real.key" "$E/real.key" >"$KEY"
	expect_run "64-byte key file refused" 1 "shadm: key file '$KEY' is not a 32-byte key" shadm provider list
	head -c 32 /dev/urandom >"$KEY"
	expect_run "wrong key refused" 1 "shadm: this key does not open this store" shadm provider list
	expect_run "wrong key refused for reveal" 1 "shadm: this key does not open this store" shadm secret reveal openai/a
	mv "$E/real.key" "$KEY"
	expect_eq "refusals left store and key unchanged" "$(sum "$STORE" "$KEY")" "$before"
	check "store works again with its own key" reveal_is openai/a a

	mkdir "$E/aside"; mv "$STORE"* "$E/aside/"
	expect_run "missing store" 1 "shadm: store '$STORE' does not exist (run 'shadm init')" shadm provider list
	check "a missing store is not created by a command" test ! -e "$STORE"
	head -c 8192 /dev/urandom >"$STORE"; chmod 600 "$STORE"
	expect_run "corrupt store (garbage)" 1 "shadm: store '$STORE' is corrupt or not a ScopeHold store" shadm provider list
	rm -f "$STORE"*
	sqlite3 "$STORE" 'CREATE TABLE t(x)'; chmod 600 "$STORE"
	expect_run "an SQLite file that is not a store" 1 "shadm: store '$STORE' is corrupt or not a ScopeHold store" shadm provider list
	rm -f "$STORE"*
	mv "$E/aside/"* "$E/"

	local c=$E/bad.ini
	printf '[store]\npath = %s\nfoo = bar\nkey_file = %s\n' "$STORE" "$KEY" >"$c"
	expect_run "unknown config key" 1 "shadm: $c:3: unknown key 'foo' in [store]" shadm -c "$c" provider list
	printf '[store]\npath = %s\nkey_file = %s\n[bogus]\nx = 1\n' "$STORE" "$KEY" >"$c"
	expect_run_re "unknown config section" 1 "^shadm: $c:[45]: unknown section \\[bogus\\]\$" shadm -c "$c" provider list
	printf '[store]\npath = %s\nkey_file = %s\nmax_value_bytes = abc\n' "$STORE" "$KEY" >"$c"
	expect_run "bad config value" 1 "shadm: $c:4: invalid value for 'max_value_bytes': 'abc'" shadm -c "$c" provider list
	printf '[store]\npath = %s\nkey_file = %s\nmax_value_bytes = 10\n' "$STORE" "$KEY" >"$c"
	expect_run "max_value_bytes: a value at the limit is accepted" 0 "" in_str 0123456789 shadm -c "$c" secret set openai/small
	expect_run "max_value_bytes is the limit" 1 "shadm: value is larger than the limit of 10 bytes" \
		in_str 01234567890 shadm -c "$c" secret set openai/small2
	expect_run "missing config (-c)" 1 "shadm: cannot read config '$E/none.ini': No such file or directory" \
		shadm -c "$E/none.ini" provider list
	expect_run "missing config (SCOPEHOLD_CONFIG)" 1 "shadm: cannot read config '$E/none.ini': No such file or directory" \
		env SCOPEHOLD_CONFIG="$E/none.ini" "$SHADM" provider list
	expect_run "missing config (init)" 1 "shadm: cannot read config '$E/none.ini': No such file or directory" \
		shadm -c "$E/none.ini" init
}

# ---------------------------------------------------------------------------
test_plaintext() {
	init_env
	local in=$T_TMP/pin; mkdir -p "$in"
	local vals=() i
	for i in 1 2 3 4 5 6; do vals+=("canary-$RANDOM$RANDOM-value-$i"); done
	touch "$T_TMP/marker"
	# Hold a connection open so the WAL and shm files survive for the scan.
	python3 -c '
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1]); c.execute("SELECT count(*) FROM sqlite_master").fetchall()
time.sleep(120)' "$STORE" &
	T_BG=$!
	sleep 0.5
	setup shadm provider add openai
	setup shadm provider add github
	setup setv openai/one "${vals[0]}"
	setup setv openai/one "${vals[1]}"
	printf '%s\n' "${vals[2]}" >"$in/f"
	setup shadm secret set github/two --from-file "$in/f"
	setup setv github/three "${vals[3]}" --expires 7d
	setup shadm agent add bot --uid 1000
	setup shadm project add web
	setup shadm project attach web openai
	setup shadm assign bot web
	setup shadm grant bot openai/one
	setup shadm check bot openai/one
	setup shadm secret reveal openai/one --version 1
	setup shadm secret reveal github/two
	setup shadm key rotate
	setup setv openai/four "${vals[4]}"
	setup shadm key rotate --rewrap
	setup shadm key rekey --new-key-file "$E/new.key"
	setup setv openai/five "${vals[5]}"
	setup shadm secret rm openai/five
	check "the store's WAL exists during the scan (WAL mode)" test -s "$STORE-wal"
	local f v found=""
	for f in "$E"/*; do
		[ -f "$f" ] || continue
		for v in "${vals[@]}"; do
			grep -qaF -- "$v" "$f" && found="$found ${f##*/}:$v"
		done
	done
	expect_eq "no value in store, WAL, shm or key file (live)" "$found" ""
	kill "$T_BG" 2>/dev/null; wait "$T_BG" 2>/dev/null; T_BG=
	found=""
	for f in "$E"/*; do
		[ -f "$f" ] || continue
		for v in "${vals[@]}"; do
			grep -qaF -- "$v" "$f" && found="$found ${f##*/}:$v"
		done
	done
	expect_eq "no value in any file of the store directory (closed)" "$found" ""
	found=""
	for v in "${vals[@]}"; do
		# Other test runs' directories (and their mounts) are not ours to scan.
		f=$(find /tmp /var/tmp -xdev \( -path '/tmp/scopehold-test.*' -o -path '/tmp/bash_jobs*' \) -prune \
			-o -type f -newer "$T_TMP/marker" -size -20M -print0 2>/dev/null |
			xargs -0 -r grep -laF -- "$v" 2>/dev/null)
		[ -n "$f" ] && found="$found $f"
	done
	expect_eq "no value in any new temporary file" "$found" ""
	# A value may only come from stdin or --from-file: argv is visible in ps.
	expect_run_re "a value in argv is a usage error" 2 '^shadm: ' shadm secret set openai/argv "${vals[0]}"
	check "and nothing was stored" no grep -qw argv <<<"$(shadm secret list 2>&1)"
	check "a refused argv value is not echoed on stderr" no grep -qaF -- "${vals[0]}" <<<"$ERR"
}

# ---------------------------------------------------------------------------
test_concurrency() {
	init_env
	local i
	setup shadm provider add p
	for i in 1 2 3 4 5 6 7 8; do setup shadm agent add "a$i" --uid $((1000 + i)); done
	# candidates, so a grant has no warning to print
	setup shadm project add pr
	setup shadm project attach pr p
	for i in 1 2 3 4 5 6 7 8; do setup shadm assign "a$i" pr; done
	local pids=()
	for i in 1 2 3 4 5 6 7 8; do
		(
			for j in 1 2 3 4 5 6; do
				printf 'v%s-%s' "$i" "$j" | "$SHADM" secret set "p/s$i" >/dev/null || echo "set $i.$j failed"
				"$SHADM" grant "a$i" "p/s$i" >/dev/null || echo "grant $i.$j failed"
			done
		) >"$T_TMP/conc.$i" 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}"
	local errs; errs=$(cat "$T_TMP"/conc.*)
	expect_eq "8 parallel secret set/grant loops all succeed" "$errs" ""
	check "no 'database is locked'" no grep -q 'locked' <<<"$errs"
	expect_eq "every set was recorded (8 creates, 40 rotations)" \
		"$(shadm --json audit 2>/dev/null | jcount "e['type'] in ('create','rotate')")" 48
	expect_eq "every grant was recorded" "$(shadm --json audit --event grant 2>/dev/null | jcount True)" 48
	check "each secret ends at version 6" test "$(shadm secret list 2>/dev/null | grep -cw 6)" -eq 8
	check "parallel values reveal" reveal_is p/s3 v3-6
	expect_run "audit chain intact after parallel writers" 0 "" shadm audit verify
	expect_eq "audit verify counts every event" "$OUT" "audit chain intact: $(nevents) events"
}

# ---------------------------------------------------------------------------
test_workspaces() {
	init_env
	expect_run "workspace list" 0 "" shadm workspace list
	check "workspace list shows default" grep -qw default <<<"$OUT"
	expect_run "workspace add" 0 "" shadm workspace add team
	check "workspace list shows team" grep -qw team <<<"$(shadm workspace list 2>&1)"
	setup shadm provider add openai
	setup setv openai/key "default-value"
	expect_run "-w: provider add" 0 "" shadm -w team provider add openai
	expect_run "-w: secret set" 0 "" in_str team-value shadm -w team secret set openai/key
	expect_eq "-w: version 1 in the other workspace" "$OUT" "openai/key: version 1 (created)"
	setup shadm -w team agent add tbot --uid 1000
	setup shadm -w team provider add only-team
	check "default workspace keeps its value" reveal_is openai/key default-value
	expect_eq "-w team reveals its own value" "$(shadm -w team secret reveal openai/key 2>&1)" team-value
	check "team provider not visible in default" no grep -q only-team <<<"$(shadm provider list 2>&1)"
	check "-w team lists its provider" grep -q only-team <<<"$(shadm -w team provider list 2>&1)"
	expect_run "team agent not visible in default" 1 "shadm: no agent 'tbot'" shadm agent show tbot
	expect_run "-w team agent show" 0 "" shadm -w team agent show tbot
	{ cat "$CONF"; printf '[mount]\nworkspace = team\n'; } >"$E/team.ini"
	expect_eq "config workspace = team selects it" "$(shadm -c "$E/team.ini" secret reveal openai/key 2>&1)" team-value
	expect_eq "-w overrides the config workspace" "$(shadm -c "$E/team.ini" -w default secret reveal openai/key 2>&1)" default-value
	expect_run "workspace rm of a non-empty workspace" 1 "shadm: workspace 'team' is not empty" shadm workspace rm team
	expect_run "workspace rm default" 1 "shadm: cannot remove the default workspace" shadm workspace rm default
	expect_run "workspace rm unknown" 1 "shadm: no workspace 'nope'" shadm workspace rm nope
	setup shadm workspace add empty
	expect_run "workspace rm of an empty workspace" 0 "" shadm workspace rm empty
	check "workspace list no longer shows it" no grep -qw empty <<<"$(shadm workspace list 2>&1)"
	expect_eq "team still exists after refused rm" "$(shadm -w team secret reveal openai/key 2>&1)" team-value
}

# ---------------------------------------------------------------------------
# shadm import: a dotenv file into the store, all or nothing, and the file back
# with references. Every value carries the marker cliIMPORT for the leak scans.
test_import() {
	init_env
	setup shadm provider add gh
	setup setv gh/KEEP "old-cliIMPORT0"
	local f=$E/app.env secrets_before events_before want
	cat >"$f" <<'EOF'
# migrated from the app's .env
export TOKEN=ghp_cliIMPORT1   # the deploy token

SINGLE='single cliIMPORT2 # not a comment'
DOUBLE="line1\ncliIMPORT3 \"q\""
KEEP=new-cliIMPORT4
EOF
	want=$(printf '%s\n' "# migrated from the app's .env" \
		"export TOKEN=scopehold://gh/TOKEN # the deploy token" "" \
		"SINGLE=scopehold://gh/SINGLE" "DOUBLE=scopehold://gh/DOUBLE" "KEEP=scopehold://gh/KEEP")
	expect_run "import: exits 0 with nothing on stderr" 0 "" shadm import --env-file "$f" --provider gh
	expect_eq "import: prints the file back with references, same comments and order" "$OUT" "$want"
	check "import: TOKEN is stored exactly" reveal_is gh/TOKEN ghp_cliIMPORT1
	check "import: a single-quoted value is stored literally" reveal_is gh/SINGLE 'single cliIMPORT2 # not a comment'
	check "import: a double-quoted value has its escapes decoded" reveal_is gh/DOUBLE "$(printf 'line1\ncliIMPORT3 "q"')"
	check "import: an existing secret gets the new value" reveal_is gh/KEEP new-cliIMPORT4
	check "import: the existing secret's old version is kept" reveal_is gh/KEEP old-cliIMPORT0 --version 1
	expect_eq "import: new secrets are version 1, the existing one version 2" \
		"$(shadm --json secret list gh 2>/dev/null | jcount '(e["name"], e["version"]) in [("TOKEN", 1), ("SINGLE", 1), ("DOUBLE", 1), ("KEEP", 2)]')" 4
	expect_eq "import: audited as three creates and one rotate" \
		"$(shadm --json audit --event create 2>/dev/null | jcount 'e["secret"] in ("gh/TOKEN", "gh/SINGLE", "gh/DOUBLE")') $(shadm --json audit --event rotate 2>/dev/null | jcount 'e["secret"] == "gh/KEEP"')" "3 1"
	printf '%s\n' "$OUT" >"$E/app.refs.env"

	secrets_before=$(shadm secret list 2>&1); events_before=$(nevents)
	printf 'GOOD=cliIMPORT5\nthis line is not one\nLATER=cliIMPORT6\n' >"$E/bad.env"
	expect_run "import: a line that is not an assignment refuses the file, naming the line" 1 \
		"shadm: $E/bad.env:2: not an assignment" shadm import --env-file "$E/bad.env" --provider gh
	expect_eq "import: the refused file stored nothing (secret list unchanged)" "$(shadm secret list 2>&1)" "$secrets_before"
	expect_eq "import: the refused file recorded no event" "$(nevents)" "$events_before"
	printf 'GOOD=cliIMPORT5\nbad@key=cliIMPORT6\n' >"$E/badkey.env"
	expect_run "import: an invalid key refuses the file, naming the line" 1 \
		"shadm: $E/badkey.env:2: invalid name 'bad@key': use 1-128 of A-Z a-z 0-9 . _ - , not starting with . or -" \
		shadm import --env-file "$E/badkey.env" --provider gh
	printf 'A=1\nB="cliIMPORT7 never closed\n' >"$E/open.env"
	expect_run "import: an unterminated quote is refused without echoing the value" 1 \
		"shadm: $E/open.env:2: unterminated double quote in the value of B" \
		shadm import --env-file "$E/open.env" --provider gh
	printf 'A=cliIMPORT5\nA=cliIMPORT6\n' >"$E/dup.env"
	expect_run "import: a key given twice is refused" 1 \
		"shadm: $E/dup.env:2: A is already set on line 1" shadm import --env-file "$E/dup.env" --provider gh
	expect_run "import: re-importing the printed references is refused" 1 \
		"shadm: $E/app.refs.env:2: TOKEN is already a scopehold reference" \
		shadm import --env-file "$E/app.refs.env" --provider gh
	printf 'GOOD=cliIMPORT5\n' >"$E/good.env"
	expect_run "import: an unknown provider is refused" 1 "shadm: $E/good.env:1: no provider 'nope'" \
		shadm import --env-file "$E/good.env" --provider nope
	expect_run "import: a missing file is refused" 1 \
		"shadm: cannot open '$E/missing.env': no such file or directory" \
		shadm import --env-file "$E/missing.env" --provider gh
	expect_run "import: without --env-file is a usage error" 2 "shadm: import needs --env-file FILE" \
		shadm import --provider gh
	expect_run "import: without --provider is a usage error" 2 "shadm: import needs --provider PROVIDER" \
		shadm import --env-file "$E/good.env"
	expect_run "import: an invalid provider name is refused" 1 \
		"shadm: invalid name 'a/b': use 1-128 of A-Z a-z 0-9 . _ - , not starting with . or -" \
		shadm import --env-file "$E/good.env" --provider a/b
	expect_run "import: a bad --expires is refused" 1 \
		"shadm: invalid date 'soon': use a duration (7d) or an ISO-8601 date (2027-01-31 or 2027-01-31T12:00:00Z)" \
		shadm import --env-file "$E/good.env" --provider gh --expires soon
	expect_eq "import: none of the refused imports stored anything" "$(shadm secret list 2>&1)" "$secrets_before"
	expect_eq "import: none of the refused imports recorded an event" "$(nevents)" "$events_before"

	expect_run "import --dry-run: exits 0" 0 "" shadm import --env-file "$f" --provider gh --dry-run
	expect_eq "import --dry-run: prints the same replacement file" "$OUT" "$want"
	expect_eq "import --dry-run: stores nothing" "$(shadm secret list 2>&1)" "$secrets_before"
	expect_eq "import --dry-run: records no event" "$(nevents)" "$events_before"
	expect_run "import --dry-run to an unknown provider is refused too" 1 \
		"shadm: $E/good.env:1: no provider 'nope'" \
		shadm import --env-file "$E/good.env" --provider nope --dry-run

	expect_run "import --json --expires 7d: exits 0" 0 "" \
		shadm --json import --env-file "$E/good.env" --provider gh --expires 7d
	expect_eq "import --json: one object per stored secret" \
		"$(printf '%s\n' "$OUT" | jcount 'e["name"] == "GOOD" and e["version"] == 1 and e["action"] == "create" and e["length"] == 10')" 1
	expect_eq "import --expires: the version carries the expiry" \
		"$(shadm --json secret list gh 2>/dev/null | jcount 'e["name"] == "GOOD" and e["expires"] is not None')" 1

	shadm audit >"$E/audit.txt" 2>&1
	shadm --json audit >"$E/audit.json" 2>&1
	check "import: no value appears in shadm audit output (table or JSON)" \
		no grep -aq cliIMPORT "$E/audit.txt" "$E/audit.json"
	check "import: no value appears in the store, its WAL or the key file" \
		no grep -aqs cliIMPORT "$STORE" "$STORE-wal" "$KEY"
}

# ---------------------------------------------------------------------------
# issue 13 section 2: who can read what, effective grants, expiring, audit times
test_who() {
	init_env
	setup shadm provider add gh
	setv gh/a whoVALUEa
	setv gh/b whoVALUEb --expires 1d
	setv gh/old whoVALUEold --expires 2027-01-01T00:00Z
	setup shadm project add p
	setup shadm project attach p gh/a
	setup shadm project attach p gh/old
	setup shadm agent add bot --uid 24401
	setup shadm agent add ops --uid 24402 --human
	setup shadm agent add off --uid 24403
	setup shadm agent add nog --uid 24404
	for a in bot ops off nog; do setup shadm assign "$a" p; done
	setup shadm agent disable off
	setup shadm grant bot gh/a --uses 3
	setup shadm grant off gh/a
	expect_run "grant of a non-candidate warns" 0 \
		"shadm: warning: 'gh/b' is not a candidate of agent 'bot': no project of the agent attaches it, so the grant has no effect until one does" \
		shadm grant bot gh/b --ttl 2h
	expect_eq "... and still grants it" "$OUT" "granted gh/b to bot (ttl 2h)"
	expect_run "grant of a candidate does not warn" 0 "" shadm grant ops gh/a --ttl 1h

	# who-can: the table, one row per agent that sees it or holds a grant of it
	expect_run "who-can exits 0" 0 "" shadm who-can gh/a
	expect_eq "who-can: header" "$(sed -n 1p <<<"$OUT" | tr -s ' ')" "AGENT UID SEES RESOLVES GRANT-LIMIT USES-LEFT REASON"
	expect_eq "who-can: bot sees and resolves, 3 uses left" "$(line_of bot "$OUT" | tr -s ' ')" "bot 24401 yes yes never 3 allow"
	expect_eq "who-can: nog sees it without a grant" "$(line_of nog "$OUT" | tr -s ' ')" "nog 24404 yes no - - no-grant"
	expect_eq "who-can: the disabled agent holds a grant it cannot use" "$(line_of off "$OUT" | tr -s ' ')" "off 24403 no no never unlimited disabled"
	expect_re "who-can: ops resolves until its ttl" "$(line_of ops "$OUT" | tr -s ' ')" '^ops 24402 yes yes 20[0-9-]+T[0-9:]+Z unlimited allow$'
	expect_eq "who-can: four rows" "$(tail -n +2 <<<"$OUT" | wc -l)" 4
	expect_run "who-can --json" 0 "" shadm --json who-can gh/a
	expect_eq "who-can --json: bot's row" \
		"$(jcount 'e["agent"]=="bot" and e["sees"] and e["resolves"] and e["reason"]=="allow" and e["grant"]["uses_left"]==3 and e["grant"]["max_uses"]==3 and e["kind"]=="agent"' <<<"$OUT")" 1
	expect_eq "who-can --json: nog has no grant" "$(jcount 'e["agent"]=="nog" and e["grant"] is None and not e["resolves"] and e["reason"]=="no-grant"' <<<"$OUT")" 1
	expect_eq "who-can --json: ops is human" "$(jcount 'e["agent"]=="ops" and e["kind"]=="human"' <<<"$OUT")" 1
	expect_run "who-can of a secret nobody sees: only the header" 0 "" shadm who-can gh/b
	expect_eq "who-can gh/b: bot holds a grant but does not see it" "$(tail -n +2 <<<"$OUT" | tr -s ' ')" "bot 24401 no no $(shadm --json grants bot | python3 -c 'import json,sys
for l in sys.stdin:
    e=json.loads(l)
    if e["name"]=="b": print(e["expires"])') unlimited not-candidate"
	# what who-can says is what check (the mount's dry run) says
	local a
	for a in bot ops off nog; do
		local w c
		w=$(shadm --json who-can gh/a | python3 -c "import json,sys
r=[json.loads(l) for l in sys.stdin if json.loads(l)['agent']=='$a']
print(r[0]['reason'] if r else 'not listed')")
		c=$(shadm --json check "$a" gh/a | python3 -c 'import json,sys; print(json.load(sys.stdin)["reason"])')
		expect_eq "who-can agrees with check for $a" "$w" "$c"
	done
	# the answer moves with the facts
	setup shadm grant bot gh/a --uses 1
	setup dbq "UPDATE grants SET uses = 1 WHERE max_uses = 1"
	expect_eq "who-can: a spent grant is used-up, 0 left" "$(shadm who-can gh/a | line_of bot - 2>/dev/null || shadm who-can gh/a | grep '^bot' | tr -s ' ')" "bot 24401 yes no never 0 used-up"
	setup shadm revoke bot gh/a
	expect_eq "who-can: a revoked grant says revoked" "$(shadm who-can gh/a | grep '^bot' | tr -s ' ' | cut -d' ' -f3,4,7)" "yes no revoked"
	setup shadm grant bot gh/old
	expect_eq "who-can: a version past its expiry" "$(shadm who-can gh/old | grep '^bot' | tr -s ' ' | cut -d' ' -f3,4,7)" "yes yes allow"
	expect_run "who-can of an unknown secret fails" 1 "shadm: no secret 'gh/nope'" shadm who-can gh/nope
	expect_run "who-can of an unknown provider fails" 1 "shadm: no provider 'zz'" shadm who-can zz/a
	expect_run "who-can of a malformed secret fails" 1 "shadm: invalid secret 'gh': use PROVIDER/NAME" shadm who-can gh
	expect_run "who-can without a secret is a usage error" 2 "shadm: missing argument PROVIDER/NAME for 'who-can'" shadm who-can

	# grants and agent show: effective, not only live
	expect_run "grants" 0 "" shadm grants
	expect_eq "grants: EFFECTIVE column" "$(sed -n 1p <<<"$OUT" | tr -s ' ')" "AGENT SECRET CREATED EXPIRES USES STATE EFFECTIVE"
	expect_eq "grants: a live grant of a non-candidate is not effective" \
		"$(grep '^bot  *gh/b ' <<<"$OUT" | awk '{print $(NF-2), $(NF-1), $NF}')" "live no: not-candidate"
	expect_eq "grants: a live grant of a disabled agent is not effective" \
		"$(grep '^off ' <<<"$OUT" | awk '{print $(NF-2), $(NF-1), $NF}')" "live no: disabled"
	expect_eq "grants: a live grant that works is effective" "$(grep '^ops ' <<<"$OUT" | awk '{print $(NF-1), $NF}')" "live yes"
	expect_eq "grants --json: effective and its reason" \
		"$(shadm --json grants | jcount '(e["agent"],e["name"],e["effective"],e["effective_reason"]) in [("bot","b",False,"not-candidate"),("off","a",False,"disabled"),("ops","a",True,"allow"),("bot","old",True,"allow"),("bot","a",False,"revoked")]')" 5
	expect_eq "agent show: grants with EFFECTIVE" "$(shadm agent show off | grep -A1 '^grants:' | tail -1 | tr -s ' ')" "SECRET CREATED EXPIRES USES STATE EFFECTIVE"
	expect_eq "agent show off: not effective" "$(shadm agent show off | grep '^gh/a' | awk '{print $(NF-2), $(NF-1), $NF}')" "live no: disabled"
	expect_eq "agent show --json: effective" "$(shadm --json agent show off | python3 -c 'import json,sys; g=json.load(sys.stdin)["grants"][0]; print(g["effective"], g["effective_reason"])')" "False disabled"
	expect_run "grants --secret" 0 "" shadm --json grants --secret gh/a
	expect_eq "grants --secret gh/a: only its grants" "$(jcount 'e["name"]=="a"' <<<"$OUT"),$(jcount True <<<"$OUT")" "3,3"
	expect_run "grants AGENT --secret" 0 "" shadm --json grants bot --secret gh/b
	expect_eq "grants bot --secret gh/b: one" "$(jcount True <<<"$OUT")" 1
	expect_run "grants --secret of an unknown secret fails" 1 "shadm: no secret 'gh/nope'" shadm grants --secret gh/nope
	expect_run "grants --expiring 3h" 0 "" shadm --json grants --expiring 3h
	expect_eq "grants --expiring 3h: the 2h and 1h grants" "$(jcount 'e["agent"]+"/"+e["name"] in ("bot/b","ops/a")' <<<"$OUT"),$(jcount True <<<"$OUT")" "2,2"
	expect_run "grants --expiring 90m" 0 "" shadm --json grants --expiring 90m
	expect_eq "grants --expiring 90m: the 1h grant" "$(jcount 'e["agent"]=="ops"' <<<"$OUT"),$(jcount True <<<"$OUT")" "1,1"
	expect_run "grants --expiring 1w fails" 1 "shadm: invalid duration '1w': use a number and s, m, h or d (30s, 15m, 2h, 7d)" shadm grants --expiring 1w

	# secret list --expiring: versions expiring within the duration, or expired
	setup dbq "UPDATE versions SET expires = $(( $(date +%s) - 60 )) WHERE secret_id = (SELECT id FROM secrets WHERE name = 'old')"
	expect_run "secret list --expiring 2d" 0 "" shadm --json secret list --expiring 2d
	expect_eq "secret list --expiring 2d: b (1d) and old (expired)" "$(jcount 'e["name"] in ("b","old")' <<<"$OUT"),$(jcount True <<<"$OUT")" "2,2"
	expect_run "secret list gh --expiring 1h" 0 "" shadm secret list gh --expiring 1h
	expect_eq "secret list --expiring 1h: only the expired one" "$(tail -n +2 <<<"$OUT" | awk '{print $2}')" "old"
	expect_eq "who-can: the expired version stops bot" "$(shadm who-can gh/old | grep '^bot' | tr -s ' ' | cut -d' ' -f3,4,7)" "yes no version-expired"
	expect_run "secret list --expiring bad" 1 "shadm: invalid duration 'soon': use a number and s, m, h or d (30s, 15m, 2h, 7d)" shadm secret list --expiring soon

	# audit: dates and times, --until, --after, known event types
	setup dbq "UPDATE audit SET time = 1796083200 WHERE seq = 2"   # 2026-12-01T00:00:00Z
	setup dbq "UPDATE audit SET time = 1796119200 WHERE seq = 3"   # 2026-12-01T10:00:00Z
	setup dbq "UPDATE audit SET time = 1700000000 WHERE seq = 1"
	# (the chain breaks, which these queries do not mind)
	expect_run "audit --since DATE --until DATE" 0 "" shadm --json audit --since 2026-12-01 --until 2026-12-01T10:00Z
	expect_eq "audit: midnight counts, the --until instant does not" "$(jcount 'e["seq"]==2' <<<"$OUT"),$(jcount 'e["seq"] in (1,3)' <<<"$OUT")" "1,0"
	expect_run "audit --since with an offset" 0 "" shadm --json audit --since 2026-12-01T11:00+01:00 --until 2026-12-01T10:00:01Z
	expect_eq "audit: 11:00+01:00 is 10:00Z" "$(jcount 'e["seq"]' <<<"$OUT"),$(jcount 'e["seq"]==3' <<<"$OUT")" "1,1"
	expect_run "audit --until 1970-01-01" 0 "" shadm --json audit --until 1970-01-01
	expect_eq "audit --until 1970-01-01: nothing" "$OUT" ""
	expect_run "audit --after 5 --limit 2" 0 "" shadm --json audit --after 5 --event grant --limit 2
	expect_eq "audit --after: only later events" "$(jcount 'e["seq"]<=5' <<<"$OUT"),$(jcount 'e["type"]=="grant"' <<<"$OUT")" "0,2"
	expect_run "audit --after 0 is everything" 0 "" shadm --json audit --after 0
	expect_eq "audit --after 0: the whole trail" "$(jcount True <<<"$OUT")" "$(nevents)"
	local d
	for d in 2026-12-1 2026-12-01T10Z 2026-12-01T10:00+1 12/01/2026 2026-12-01T25:00Z -1d 1w; do
		expect_run "audit --since '$d' is a usage error" 2 \
			"shadm: invalid time for --since '$d': use a duration back from now (30m, 2h, 7d) or a date (2026-12-01, 2026-12-01T10:00Z, 2026-12-01T10:00+01:00)" \
			shadm audit --since="$d"
	done
	expect_run_re "audit --until garbage is a usage error" 2 "^shadm: invalid time for --until 'x'" shadm audit --until x
	expect_run "audit --after x is a usage error" 2 "shadm: --after needs a number" shadm audit --after x
	expect_run_re "audit --event unknown is a usage error" 2 "^shadm: unknown event type 'grants': use one of init .* resolve deny .*key-rekey rollback destroy agent-set$" \
		shadm audit --event grants
	expect_run "audit --follow --until is a usage error" 2 "shadm: --follow cannot be used with --until" shadm audit --follow --until 1h
	# every type the sources write is one --event accepts (catches a new type left out)
	local types bad=""
	types=$(grep -ohE '(store_event_init\([^,]*, *[^,]*, *|store_note\(st, *|store_delete_noted\([^"]*"[^"]*", *[a-z]*, *)"[a-z-]+"' "$ROOT"/store/*.c | grep -oE '"[a-z-]+"$' | tr -d '"' | sort -u)
	types="$types $(grep -ohE '"(agent-(enable|disable)|approve|reject|attach|detach|assign|unassign|create|rotate|provider-add|project-add|provider-rm|project-rm|agent-rm)"' "$ROOT"/store/*.c | tr -d '"' | sort -u)"
	for t in $types; do shadm audit --event "$t" >/dev/null 2>&1 || bad="$bad $t"; done
	expect_eq "audit --event accepts every type the store writes" "$bad" ""
	check "audit: found the types in the sources" test "$(echo $types | wc -w)" -ge 20
}

# ---------------------------------------------------------------------------
# audit --follow: new events as they happen, a closed pipe and SIGINT end it cleanly
test_follow() {
	init_env
	setup shadm provider add gh
	setv gh/a followVALUE
	setup shadm agent add bot --uid 24405
	local F=$E/follow.out
	# the reader goes away after two lines: shadm must exit at once, 0, silently
	( shadm --json audit --follow --event grant | head -n 2 >"$F"; echo "${PIPESTATUS[0]}" >"$E/follow.rc" ) 2>"$E/follow.err" &
	local bg=$!
	# the follower has started once it holds the store open; wait for its first poll
	local i
	for i in $(seq 50); do pgrep -f -- "audit --follow --event grant" >/dev/null && break; sleep 0.1; done
	sleep 0.5
	setup shadm grant bot gh/a
	setup shadm revoke bot gh/a
	setup shadm grant bot gh/a --uses 2
	setup shadm grant bot gh/a --uses 3
	for i in $(seq 100); do [ -s "$E/follow.rc" ] && break; sleep 0.1; done
	expect_eq "follow | head -n 2: shadm exited 0 once the reader went" "$(cat "$E/follow.rc" 2>/dev/null)" "0"
	wait "$bg" 2>/dev/null
	expect_eq "follow: nothing on stderr" "$(cat "$E/follow.err")" ""
	expect_eq "follow --json --event grant: the two first grants after it started, in order" \
		"$(python3 -c 'import json,sys; print([(e["type"], e["reason"]) for e in map(json.loads, open(sys.argv[1]))])' "$F")" \
		"[('grant', ''), ('grant', '2 uses')]"
	expect_eq "follow: no backlog (nothing from before it started)" "$(jcount 'e["type"]!="grant"' <"$F")" 0
	# with --after it starts from there; SIGINT ends it with 0
	"$SHADM" audit --follow --after 1 >"$E/f2.out" 2>"$E/f2.err" &
	bg=$!
	for i in $(seq 50); do grep -q 'agent-add' "$E/f2.out" 2>/dev/null && break; sleep 0.1; done
	kill -INT "$bg"
	wait "$bg"
	expect_eq "follow: SIGINT exits 0" "$?" "0"
	# a database many hosts share adds the host that wrote each event
	local head="SEQ TIME TYPE ACTOR" rest="-"
	[ "$BACKEND" = postgresql ] && head="SEQ TIME HOST TYPE ACTOR" rest=$(hostname)
	expect_eq "follow (table): a header, then the backlog after seq 1, one line each" \
		"$(head -n 1 "$E/f2.out" | tr -s ' '),$(awk 'NR>1 {print $1}' "$E/f2.out" | head -n 1)" "$head AGENT SECRET VER CALLER REASON,2"
	[ "$BACKEND" = postgresql ] &&
		expect_eq "follow (table): the HOST column names the host shadm ran on ([store] host's default)" \
			"$(awk 'NR==2 {print $3}' "$E/f2.out")" "$rest"
	expect_eq "follow: every event after seq 1" "$(($(wc -l <"$E/f2.out") - 1))" "$(($(nevents) - 1))"
}

test_usage
test_init
test_secrets
test_names
test_projects
test_agents
test_check
test_audit
test_verify
test_keys
if file_store; then
	test_bad_env
	test_plaintext
else
	skip "bad environment: store file modes, owner, missing, corrupt or foreign file (SQLite file only)"
	skip "plaintext: no value in the store file, its WAL or temporary files (SQLite files; tests/e2e-pg.sh scans pg_dump instead)"
fi
test_concurrency
test_workspaces
test_import
test_who
test_follow
t_finish

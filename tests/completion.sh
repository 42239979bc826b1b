#!/bin/bash
# completion.sh - the bash completions (completion/*.bash) in a real bash:
# each file is sourced, COMP_WORDS/COMP_CWORD are set the way bash splits a
# command line, the completion function is called and COMPREPLY compared
# exactly. Names come from a temporary store (through the built shadm and
# its -c option), and for scopehold from a real mount when FUSE and root are
# there. Also: nothing at all, and nothing on stderr, without a store.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
t_tmpdir
m_trap completion
cd "$T_TMP" || exit 1

if ! command -v bash >/dev/null; then not_ok "completion: bash is missing"; exit 1; fi
for f in shadm scopehold; do
	if ! bash -n "$ROOT/completion/$f.bash"; then not_ok "completion/$f.bash parses"; exit 1; fi
done
. "$ROOT/completion/shadm.bash"
. "$ROOT/completion/scopehold.bash"
expect_eq "sourcing registers both completions" \
	"$(complete -p shadm scopehold | tr '\n' ' ')" "complete -F _shadm shadm complete -F _scopehold scopehold "

# comp FUNC WORD...: complete the last WORD ("" for a fresh one) of the line;
# prints COMPREPLY sorted, space-separated; stderr to $T_TMP/comp.err
comp() {
	local f=$1
	shift
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	"$f" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}" 2>>"$T_TMP/comp.err"
	printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//'
}
S=$SHADM

# ---- a store with known names ----------------------------------------------------
mkdir -m 0700 st st2
write_conf c.ini "$T_TMP/st" "$T_TMP/mnt"
write_conf c2.ini "$T_TMP/st2" "$T_TMP/mnt2"
CONF=$T_TMP/c.ini
printf v >val
setup sa init
for p in github openai; do setup sa provider add "$p"; done
for s in github/token github/deploy openai/key; do setup sa secret set "$s" --from-file val; done
for p in release nightly; do setup sa project add "$p"; done
setup sa agent add bot --uid 0
setup sa agent add builder --uid 4242
setup sa workspace add staging
setup sa project attach release github
setup sa assign bot release
setup sa grant bot github/token
setup "$S" -c c2.ini init
setup "$S" -c c2.ini agent add other-store-agent --uid 7
setup_check "completion setup: shadm commands failed"
export SCOPEHOLD_CONFIG=$T_TMP/c.ini

# ---- shadm: commands, subcommands, options ---------------------------------------------
expect_eq "shadm: every command" "$(comp _shadm "$S" '')" \
	"agent apply assign audit check export grant grants help import init key project provider revoke secret unassign who-can workspace"
expect_eq "shadm: commands by prefix" "$(comp _shadm "$S" gr)" "grant grants"
expect_eq "shadm: global options" "$(comp _shadm "$S" --)" "--config --help --json --version --workspace"
expect_eq "shadm: the command after global options" "$(comp _shadm "$S" --json -c c.ini pro)" "project provider"
expect_eq "shadm secret: subcommands" "$(comp _shadm "$S" secret '')" "destroy list reveal rm rollback set versions"
expect_eq "shadm secret set: options" "$(comp _shadm "$S" secret set github/x --)" "--allow-empty --expires --from-file --help"
expect_eq "shadm secret rm: --yes" "$(comp _shadm "$S" secret rm github/token --)" "--help --yes"
expect_eq "shadm agent rm: --yes" "$(comp _shadm "$S" agent rm bot --)" "--help --yes"
expect_eq "shadm secret rollback: the secret, then nothing for VERSION" \
	"$(comp _shadm "$S" secret rollback openai/key '')" ""
expect_eq "shadm secret versions: PROVIDER/NAME" "$(comp _shadm "$S" secret versions o)" "openai/key"
expect_eq "shadm agent: subcommands" "$(comp _shadm "$S" agent '')" "add disable enable list rm set show"
expect_eq "shadm agent add: options" "$(comp _shadm "$S" agent add bot2 --)" \
	"--cgroup --exe --exe-sha256 --gid --help --human --rate --uid"
expect_eq "shadm agent set: options" "$(comp _shadm "$S" agent set bot --)" \
	"--agent --cgroup --exe --exe-sha256 --gid --help --human --no-cgroup --no-exe --no-exe-sha256 --no-gid --rate --uid"
expect_eq "shadm agent set: agents from the store" "$(comp _shadm "$S" agent set b)" "bot builder"
expect_eq "shadm check: options" "$(comp _shadm "$S" check bot x/y --)" \
	"--cgroup --exe --gid --help --uid"
expect_eq "shadm import: options (the import command)" "$(comp _shadm "$S" import --)" \
	"--dry-run --env-file --expires --help --provider"
expect_eq "shadm apply: options" "$(comp _shadm "$S" apply --)" "--dry-run --help"
expect_eq "shadm export: options" "$(comp _shadm "$S" export --)" "--help"
expect_eq "shadm key: subcommands" "$(comp _shadm "$S" key '')" "rekey rotate"
expect_eq "shadm key rotate: --rewrap" "$(comp _shadm "$S" key rotate --)" "--help --rewrap"
expect_eq "shadm audit: subcommands" "$(comp _shadm "$S" audit '')" "head verify"
expect_eq "shadm audit: options" "$(comp _shadm "$S" audit --)" \
	"--after --agent --all-workspaces --event --follow --help --host --limit --secret --since --until"
expect_eq "shadm audit --event: event types" "$(comp _shadm "$S" audit --event re)" "reject resolve reveal revoke"
expect_eq "shadm grants: options" "$(comp _shadm "$S" grants --)" "--expiring --help --secret"
expect_eq "shadm grants --secret: secrets" "$(comp _shadm "$S" grants --secret op)" "openai/key"
expect_eq "shadm who-can: secrets" "$(comp _shadm "$S" who-can git)" "github/deploy github/token"
expect_eq "shadm secret list: --expiring" "$(comp _shadm "$S" secret list --)" "--expiring --help"
expect_eq "shadm help: command names" "$(comp _shadm "$S" help se)" "secret"

# ---- shadm: names from the store ---------------------------------------------------------
expect_eq "shadm agent show: agents from the store" "$(comp _shadm "$S" agent show '')" "bot builder"
expect_eq "shadm agent rm: agents by prefix" "$(comp _shadm "$S" agent rm bu)" "builder"
expect_eq "shadm provider rm: providers" "$(comp _shadm "$S" provider rm '')" "github openai"
expect_eq "shadm secret list: providers" "$(comp _shadm "$S" secret list '')" "github openai"
expect_eq "shadm secret reveal: PROVIDER/NAME" "$(comp _shadm "$S" secret reveal '')" \
	"github/deploy github/token openai/key"
expect_eq "shadm secret set: PROVIDER/ or an existing secret" "$(comp _shadm "$S" secret set gi)" \
	"github/ github/deploy github/token"
expect_eq "shadm project show: projects" "$(comp _shadm "$S" project show '')" "nightly release"
expect_eq "shadm project attach: the project, then a provider or secret" \
	"$(comp _shadm "$S" project attach release o)" "openai openai/key"
expect_eq "shadm grant: the agent first" "$(comp _shadm "$S" grant b)" "bot builder"
expect_eq "shadm grant: then the secret" "$(comp _shadm "$S" grant bot github/)" "github/deploy github/token"
expect_eq "shadm grant: an option does not shift the positionals" \
	"$(comp _shadm "$S" grant --ttl 8h bot op)" "openai/key"
expect_eq "shadm check: agent, secret" "$(comp _shadm "$S" check builder openai/)" "openai/key"
expect_eq "shadm assign: agent, then project" "$(comp _shadm "$S" assign bot '')" "nightly release"
expect_eq "shadm audit --agent: agents" "$(comp _shadm "$S" audit --agent '')" "bot builder"
expect_eq "shadm audit --secret: secrets" "$(comp _shadm "$S" audit --limit 5 --secret o)" "openai/key"
expect_eq "shadm import --provider: providers" "$(comp _shadm "$S" import --dry-run --provider '')" "github openai"
expect_eq "shadm -w: workspaces" "$(comp _shadm "$S" -w '')" "default staging"
expect_eq "shadm -c OTHER: names come from the store on the command line" \
	"$(comp _shadm "$S" -c "$T_TMP/c2.ini" agent show '')" "other-store-agent"
expect_eq "shadm -w: an empty workspace has no agents" "$(comp _shadm "$S" -w staging agent show '')" ""
expect_eq "shadm: a positional past the last has nothing" "$(comp _shadm "$S" grant bot github/token '')" ""
printf 'x' >file-to-complete
expect_eq "shadm secret set --from-file: files" "$(comp _shadm "$S" secret set github/x --from-file file-to-c)" \
	"file-to-complete"
expect_eq "shadm -c: files" "$(comp _shadm "$S" -c c2)" "c2.ini"

# ---- shadm without a store: nothing, silently -------------------------------------------
: >"$T_TMP/comp.err"
SCOPEHOLD_CONFIG=$T_TMP/no-such.ini
expect_eq "no store: no agent names" "$(comp _shadm "$S" agent show '')" ""
expect_eq "no store: no secret names" "$(comp _shadm "$S" grant bot '')" ""
expect_eq "no store: commands still complete" "$(comp _shadm "$S" ini)" "init"
expect_eq "no store: nothing on stderr" "$(cat "$T_TMP/comp.err")" ""
expect_eq "no shadm on PATH: nothing, silently" "$(comp _shadm no-such-shadm agent show '' ; cat "$T_TMP/comp.err")" ""
SCOPEHOLD_CONFIG=$T_TMP/c.ini

# ---- scopehold: subcommands and options ---------------------------------------------------
expect_eq "scopehold: subcommands" "$(comp _scopehold scopehold '')" "inject ls run"
expect_eq "scopehold: --help --version" "$(comp _scopehold scopehold --)" "--help --version"
expect_eq "scopehold run: options" "$(comp _scopehold scopehold run -)" "-- --env-file --help --mount -e"
expect_eq "scopehold inject: options" "$(comp _scopehold scopehold inject --mount /m -)" \
	"--force --help --mount -i -o"
expect_eq "scopehold ls: options" "$(comp _scopehold scopehold ls --)" "--help --json --mount"
mkdir -p dirs/mnt-a dirs/mfile; : >dirs/mfile.txt
expect_eq "scopehold --mount: directories only" "$(comp _scopehold scopehold ls --mount dirs/m)" "dirs/mfile dirs/mnt-a"
expect_eq "scopehold inject -i: files" "$(comp _scopehold scopehold inject -i dirs/mfile.)" "dirs/mfile.txt"
expect_eq "scopehold run -- : the command to run" \
	"$(comp _scopehold scopehold run -e A=b/c -- ech | tr " " "\n" | grep -x echo | sort -u)" "echo"

# -e VAR=PROVIDER/NAME against a tree shaped like MOUNT/self
mkdir -p tree/self/github tree/self/aws
: >tree/self/github/token; : >tree/self/github/deploy; : >tree/self/aws/key
expect_eq "scopehold run -e VAR= (bash splits at '='): every secret under MOUNT/self" \
	"$(comp _scopehold scopehold run --mount "$T_TMP/tree" -e TOKEN =)" "aws/key github/deploy github/token"
expect_eq "scopehold run -e VAR=gi (split): secrets by prefix" \
	"$(comp _scopehold scopehold run --mount "$T_TMP/tree" -e TOKEN = gi)" "github/deploy github/token"
expect_eq "scopehold run -e VAR=gi (one word): the VAR= prefix is kept" \
	"$(comp _scopehold scopehold run --mount "$T_TMP/tree" -e TOKEN=github/t)" "TOKEN=github/token"
expect_eq "scopehold run -e: no mount, no names" \
	"$(comp _scopehold scopehold run --mount "$T_TMP/none" -e T = '')" ""

# -e against a real mount: root matches the agent 'bot' (uid 0), so MOUNT/self is bot
if [ -c /dev/fuse ] && [ "$(id -u)" -eq 0 ]; then
	mkdir -m 0755 mnt
	MNTS=$T_TMP/mnt
	start_fs "$CONF" fs.log
	if wait_mount "$T_TMP/mnt" "$FS_PID"; then
		expect_eq "scopehold run -e against a real mount: the candidates the caller's agent sees" \
			"$(comp _scopehold scopehold run --mount "$T_TMP/mnt" -e T = '')" "github/deploy github/token"
	else
		not_ok "completion: the mount for scopehold names"; show_log fs.log
	fi
	stop_fs "$FS_PID"
else
	skip "scopehold -e against a real mount: needs root and /dev/fuse"
fi

# ---- with bash-completion loaded, as in an interactive shell -------------------------------
BC=/usr/share/bash-completion/bash_completion
if [ -f "$BC" ]; then
	got=$(bash --norc -c '. "$1"; . "$2"; . "$3"
		COMP_WORDS=(scopehold run -- ech); COMP_CWORD=3; COMP_LINE="scopehold run -- ech"; COMP_POINT=${#COMP_LINE}
		_scopehold scopehold ech -- 2>/dev/null; printf "%s\n" "${COMPREPLY[@]}" | grep -x echo | sort -u
		COMP_WORDS=(shadm agent show ""); COMP_CWORD=3; COMP_LINE="shadm agent show "; COMP_POINT=${#COMP_LINE}
		_shadm "$4" "" show; printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' \
		_ "$BC" "$ROOT/completion/shadm.bash" "$ROOT/completion/scopehold.bash" "$S" 2>&1)
	expect_eq "with bash-completion loaded: run -- completes the command, shadm names still come" \
		"$(echo $got)" "echo bot builder"
else
	not_ok "completion: $BC is missing (run 'make deps')"
fi
t_finish

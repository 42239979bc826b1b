#!/bin/bash
# docs-examples.sh - every shadm command line the README and the manuals show
# as an example runs as written, against a temporary store.
#
# tests/fixtures/docex.py finds them: the lines of ```sh blocks in README.md
# and of .nf/.fi blocks in the EXAMPLES section of each man page that run
# shadm (the others - scopeholdfs, cat, systemctl - act on the machine and
# are not run). The examples of one document run in order, in one shell
# each (bash, pipefail), in a directory holding what they name: a config
# exported as SCOPEHOLD_CONFIG pointing at a temporary store (the documents
# export their own path; this test does not run that line), the files
# key.txt, ./id_ed25519 and .env, $GITHUB_TOKEN, $NEW_TOKEN and $NEW_KEY, and the
# agent's binary /usr/bin/codex, which exists only on a machine that has
# it, replaced by a temporary file. `shadm init` starts a fresh store (a
# document may show init twice, for two setups). A document whose examples
# continue a setup shown elsewhere gets that setup first (PRELUDE below).
# Each example must exit 0, and the examples found are counted, so a
# change to the convention that finds none fails too. Last, the container
# one-liners (README, scopeholdfs(1)) run against a real mount, as root,
# with only their placeholders filled in: the agent, its uid (24510), the
# program, and the paths /run/scopehold and /run/secrets moved under the
# test's directory.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
t_tmpdir
m_trap docs-examples
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
[ -x "$SHADM" ] || { not_ok "docs-examples: $SHADM is not built (run 'make')"; exit 1; }
command -v jq >/dev/null || { not_ok "docs-examples: jq is missing (run 'make deps')"; exit 1; }
unset SUDO_USER

# shadm on PATH is the built one
mkdir -p "$T_TMP/bin"
ln -s "$SHADM" "$T_TMP/bin/shadm"
cp /bin/true "$T_TMP/bin/codex"
export PATH="$T_TMP/bin:$PATH"
export GITHUB_TOKEN=ghp_example_token_from_the_environment NEW_TOKEN=ghp_example_rotated_token \
	NEW_KEY=sk-example-new-key

# fresh_store DIR: a new store directory and config under DIR, exported
n_store=0
fresh_store() {
	n_store=$((n_store + 1))
	S=$1/store$n_store
	mkdir -m 0700 "$S"
	printf '[store]\npath = %s/store.db\nkey_file = %s/master.key\n[mount]\nmountpoint = %s/mnt\n' \
		"$S" "$S" "$S" >"$1/scopehold$n_store.ini"
	export SCOPEHOLD_CONFIG=$1/scopehold$n_store.ini
}

# the setup a document's examples continue, as shadm command lines
prelude() {
	case $1 in
	docs/scopeholdfs.1) echo "shadm init; shadm provider add github;" \
		"printf tok | shadm secret set github/token; shadm project add release" ;;
	docs/scopehold.1) echo "shadm init; shadm provider add app" ;;
	esac
}

total=0
for doc in README.md docs/shadm.1 docs/scopeholdfs.1 docs/scopehold.1 docs/scopehold.ini.5; do
	W=$T_TMP/$(basename "$doc")
	mkdir -m 0700 "$W"
	printf 'sk-example-openai-key' >"$W/key.txt"
	printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\nexample\n-----END OPENSSH PRIVATE KEY-----\n' >"$W/id_ed25519"
	printf 'DATABASE_URL=postgres://app:example@db/app\nAPI_KEY=example-api-key\n' >"$W/.env"
	fresh_store "$W"
	p=$(prelude "$doc")
	if [ -n "$p" ] && ! (cd "$W" && bash -c "$p") >"$T_TMP/out" 2>&1; then
		not_ok "$doc: the setup its examples continue"; sed 's/^/#   /' "$T_TMP/out"; continue
	fi
	n=0
	while IFS=$'\t' read -r -d '' where cmd; do
		n=$((n + 1))
		# the machine's own paths that an example names for the reader's setup
		cmd=${cmd//\/usr\/bin\/codex/$T_TMP\/bin\/codex}
		case $cmd in "shadm init"*) fresh_store "$W" ;; esac
		# on a fresh .env for each import: the README shreds it afterwards
		[ -f "$W/.env" ] || printf 'DATABASE_URL=postgres://app:example@db/app\n' >"$W/.env"
		(cd "$W" && bash -o pipefail -c "$cmd" </dev/null) >"$T_TMP/out" 2>&1
		rc=$?
		if [ "$rc" -eq 0 ]; then
			ok "$where runs: ${cmd%%$'\n'*}"
		else
			not_ok "$where runs: ${cmd%%$'\n'*}"
			printf '#   exit %s: %s\n' "$rc" "$(head -c 400 "$T_TMP/out")"
		fi
	done < <(cd "$ROOT" && "$PY" "$ROOT/tests/fixtures/docex.py" "$doc")
	total=$((total + n))
	case $doc in
	README.md | docs/shadm.1 | docs/scopeholdfs.1 | docs/scopehold.1)
		if [ "$n" -gt 0 ]; then ok "$doc: $n shadm examples found"
		else not_ok "$doc: no shadm examples found (docex.py's convention changed?)"; fi ;;
	esac
done
if [ "$total" -ge 30 ]; then ok "docs-examples: $total examples in all"
else not_ok "docs-examples: only $total examples found, want >= 30"; fi

# ---- the container one-liners, on a real mount ----------------------------------------
if [ ! -c /dev/fuse ] || [ "$(id -u)" -ne 0 ] || ! command -v unshare setpriv >/dev/null; then
	skip "docs-examples: the container one-liners need root, /dev/fuse, unshare and setpriv"
	t_finish; exit
fi
UA=24510
W=$T_TMP/container
mkdir -m 0755 "$W" "$W/mnt"
MNT=$W/mnt MNTS=$MNT CONF=$W/scopehold.ini
mkdir -m 0700 "$W/st"
write_conf "$CONF" "$W/st" "$MNT"
setup sa init
setup sa provider add openai
printf 'sk-container-VALUE' | setup sa secret set openai/key
setup sa project add release
setup sa project attach release openai
setup sa agent add release-bot --uid "$UA"
setup sa assign release-bot release
setup sa grant release-bot openai/key
setup_check "docs-examples: the container store"
start_fs "$CONF" "$W/fs.log" "$MNT"
require_mount "docs-examples: scopeholdfs mounts $MNT" "$MNT" "$W/fs.log"
n=0
while IFS=$'\t' read -r -d '' where cmd; do
	n=$((n + 1))
	dest=$W/run$n/secrets     # does not exist yet: the one-liner must make it
	cmd=${cmd//\/run\/scopehold/$MNT}
	cmd=${cmd//\/run\/secrets/$dest}
	cmd=${cmd//\/AGENT/\/release-bot}
	cmd=${cmd//--reuid=1001 --regid=1001/--reuid=$UA --regid=$UA}
	cmd=${cmd//--reuid=1500 --regid=1500/--reuid=$UA --regid=$UA}
	cmd=${cmd//agent-binary/cat $dest\/openai\/key}
	got=$(timeout -s KILL 60 bash -c "$cmd" 2>&1 </dev/null); rc=$?
	expect_eq "$where: the container one-liner runs and its agent reads its key" "$rc:$got" "0:sk-container-VALUE"
done < <(cd "$ROOT" && "$PY" "$ROOT/tests/fixtures/docex.py" --container README.md docs/scopeholdfs.1)
expect_eq "docs-examples: both container one-liners were found" "$n" 2
stop_fs "$FS_PID"
t_finish

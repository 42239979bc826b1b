#!/bin/bash
# install.sh - `make install` and what it installs, without touching the
# host: a DESTDIR install (PREFIX=/usr) checked file by file with modes,
# the default configuration made once and never overwritten, uninstall;
# then a PREFIX install into a temporary tree, whose unit (with its paths
# substituted) must pass `systemd-analyze verify` with the installed man
# pages, score no worse than 3.5 in `systemd-analyze security`, and use no
# directive that would hide the mount in a private mount namespace. The
# LoadCredential= example is verified beside it, and its agent binding
# checked with `shadm check`.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"   # setup, setup_check
t_tmpdir
trap 'rm -rf "$T_TMP"' EXIT
for tool in make systemd-analyze; do
	if ! command -v $tool >/dev/null; then not_ok "install: $tool is missing (run 'make deps')"; exit 1; fi
done
SAN=$([ "$B" = build-asan ] && echo 1)
mk() { make -s --no-print-directory -C "$ROOT" SANITIZE=$SAN "$@" >"$T_TMP/make.log" 2>&1 ||
	{ sed 's/^/#   /' "$T_TMP/make.log" | tail -20; return 1; }; }
# listing DIR: every file and link below DIR with its mode, sorted
listing() { (cd "$1" && find . ! -type d -printf '%m %p\n' | sed 's| \./| /|' | LC_ALL=C sort); }

# ---- 1. DESTDIR, PREFIX=/usr --------------------------------------------------------------
D=$T_TMP/dest
check "make install DESTDIR=... PREFIX=/usr" mk install DESTDIR="$D" PREFIX=/usr
UNITDIR=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
want="600 /etc/scopehold/scopehold.ini
644 /etc/scopehold/scopehold.ini.example
644 $UNITDIR/scopeholdfs.service
755 /usr/bin/scopehold
755 /usr/bin/scopeholdfs
755 /usr/bin/shadm
644 /usr/share/bash-completion/completions/scopehold
644 /usr/share/bash-completion/completions/shadm
644 /usr/share/man/man1/scopehold.1
644 /usr/share/man/man1/scopeholdfs.1
644 /usr/share/man/man1/shadm.1
644 /usr/share/man/man5/scopehold-policy.5
644 /usr/share/man/man5/scopehold.ini.5"
expect_eq "PREFIX=/usr: every file where a distribution wants it, with its mode" \
	"$(listing "$D")" "$(echo "$want" | LC_ALL=C sort)"
check "the default configuration is the example as shipped (/etc paths)" \
	cmp -s "$D/etc/scopehold/scopehold.ini" "$ROOT/scopehold.ini.example"
expect_eq "the unit runs the installed program with the installed configuration" \
	"$(grep '^ExecStart=' "$D$UNITDIR/scopeholdfs.service")" \
	"ExecStart=/usr/bin/scopeholdfs -f -c /etc/scopehold/scopehold.ini"
echo "; changed by the operator" >>"$D/etc/scopehold/scopehold.ini"
cp -p "$D/etc/scopehold/scopehold.ini" "$T_TMP/mine"
check "make install again" mk install DESTDIR="$D" PREFIX=/usr
check "a second install keeps the changed configuration" cmp -s "$D/etc/scopehold/scopehold.ini" "$T_TMP/mine"
expect_eq "and says so" "$(grep -c 'KEEP.*scopehold.ini (exists)' "$T_TMP/make.log")" "1"
check "make uninstall" mk uninstall DESTDIR="$D" PREFIX=/usr
expect_eq "uninstall leaves only the configuration" "$(listing "$D")" "600 /etc/scopehold/scopehold.ini"

D2=$T_TMP/dest2
mkdir -p "$D2/etc" && mkdir -m 0700 "$D2/etc/scopehold"
check "make install where 'shadm init' already made /etc/scopehold (0700)" mk install DESTDIR="$D2" PREFIX=/usr
expect_eq "install leaves that directory's mode alone" "$(stat -c %a "$D2/etc/scopehold")" "700"

# ---- 2. PREFIX=TREE: paths follow PREFIX ---------------------------------------------------
P=$T_TMP/prefix
check "make install PREFIX=$P" mk install PREFIX="$P"
check "SYSCONFDIR follows PREFIX: PREFIX/etc/scopehold/scopehold.ini" test -f "$P/etc/scopehold/scopehold.ini"
check "UNITDIR follows PREFIX: PREFIX/lib/systemd/system" test -f "$P/lib/systemd/system/scopeholdfs.service"
expect_eq "the configuration's key file follows SYSCONFDIR" \
	"$(grep '^key_file' "$P/etc/scopehold/scopehold.ini")" "key_file = $P/etc/scopehold/master.key"
expect_run "shadm reads the installed configuration (and finds no key yet)" 1 \
	"shadm: key file '$P/etc/scopehold/master.key' does not exist (run 'shadm init')" \
	"$SHADM" -c "$P/etc/scopehold/scopehold.ini" provider list
UNIT=$P/lib/systemd/system/scopeholdfs.service
expect_eq "no @VARIABLE@ is left in the unit" "$(grep -c '@[A-Z]*@' "$UNIT")" "0"
# verify: the ExecStart= program exists, and Documentation= pages are found
# through MANPATH, so the installed man pages are checked to be there too
MANPATH=$P/share/man: systemd-analyze verify "$UNIT" >"$T_TMP/verify" 2>&1
expect_eq "systemd-analyze verify of the installed unit passes" "$?:$(cat "$T_TMP/verify")" "0:"
expect_eq "the unit is Type=notify (READY=1 once the mount serves)" "$(grep -c '^Type=notify$' "$UNIT")" "1"
systemd-analyze security --offline=yes "$UNIT" >"$T_TMP/sec" 2>&1
score=$(sed -n 's/.*Overall exposure level for scopeholdfs.service: \([0-9.]*\).*/\1/p' "$T_TMP/sec")
echo "# systemd-analyze security --offline=yes: exposure $score"
check "systemd-analyze security: exposure $score is at most 3.5 (was 4.3 before hardening)" \
	awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 <= 3.5) }'
# systemd sets up a private mount namespace for any of these (its
# exec_needs_mount_namespace()); a FUSE mount made in one is invisible outside
ns=$(grep -E '^(ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|PrivateIPC|IPCNamespacePath|ProtectKernelTunables|ProtectKernelModules|ProtectKernelLogs|ProtectControlGroups|ProtectProc|ProcSubset|ReadOnlyPaths|ReadWritePaths|InaccessiblePaths|ExecPaths|NoExecPaths|TemporaryFileSystem|BindPaths|BindReadOnlyPaths|RootDirectory|RootImage|MountImages|ExtensionImages|ExtensionDirectories|LogNamespace|MountFlags)=' "$UNIT")
expect_eq "no directive that gives the daemon a private mount namespace" "$ns" ""
expect_eq "PrivateNetwork=yes comes with PrivateMounts=no (else it implies a mount namespace)" \
	"$(grep -cE '^(PrivateNetwork=yes|PrivateMounts=no)$' "$UNIT")" "2"
expect_eq "/dev/fuse is the one device allowed beyond the closed policy" \
	"$(grep -E '^Device(Policy|Allow)=' "$UNIT" | tr '\n' ' ')" "DevicePolicy=closed DeviceAllow=/dev/fuse rw "

# ---- 3. the LoadCredential= example --------------------------------------------------------
EX=$ROOT/docs/examples/release-bot.service
MANPATH=$P/share/man: systemd-analyze verify "$UNIT" "$EX" >"$T_TMP/verify" 2>&1
expect_eq "systemd-analyze verify of the example beside the installed unit passes" "$?:$(cat "$T_TMP/verify")" "0:"
expect_eq "the example is ordered after, and requires, scopeholdfs.service" \
	"$(grep -E '^(Requires|After)=' "$EX" | tr '\n' ' ')" "Requires=scopeholdfs.service After=scopeholdfs.service "
# the agent binding the example's comment gives, run as written against a store
mkdir -m 0700 "$T_TMP/st"
printf '[store]\npath = %s/st/store.db\nkey_file = %s/st/master.key\n' "$T_TMP" "$T_TMP" >"$T_TMP/c.ini"
export SCOPEHOLD_CONFIG=$T_TMP/c.ini
setup "$SHADM" init
setup "$SHADM" provider add github
printf 'ghp_example' >"$T_TMP/value"
setup "$SHADM" secret set github/token --from-file "$T_TMP/value"
setup_check "install: the store for the example"
sed -n 's/^#   \(shadm .*\)$/\1/p' "$EX" | grep -v '^shadm check' >"$T_TMP/binding.sh"
check "the example's binding commands run" \
	sh -e -c "PATH=$(dirname "$SHADM"):\$PATH; . $T_TMP/binding.sh >/dev/null 2>&1"
expect_eq "the credential path in the example names that agent and secret" \
	"$(sed -n 's/^LoadCredential=github-token:\(.*\)$/\1/p' "$EX")" "/run/scopehold/systemd-credentials/github/token"
expect_run "a fork of PID 1 (uid 0, gid 0, /usr/lib/systemd/systemd) is allowed" 0 - \
	"$SHADM" check systemd-credentials github/token --uid 0 --gid 0 --exe /usr/lib/systemd/systemd
expect_eq "the decision is allow" "$OUT" "allow"
expect_run "another root program is not" 1 - \
	"$SHADM" check systemd-credentials github/token --uid 0 --gid 0 --exe /usr/bin/cat
t_finish

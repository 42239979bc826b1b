#!/bin/bash
# deb-install.sh - install build/scopehold_*.deb on THIS machine with apt-get,
# as an operator would, check what it put where, run the default
# configuration for real, purge, and check that everything went; then the
# same with an operator's configuration already in place, which must
# survive install and purge untouched. It changes the host (packages,
# /etc/scopehold, /var/lib/scopehold, /run/scopehold), so it is not part of
# `make check`: .ci/run runs it on CI's throwaway machine. It refuses to
# run (skip) where the package is installed or any of those paths exists,
# and on exit it removes exactly what it made.
. "$(dirname "$0")/lib.sh"
DEB=$(ls "$ROOT/$B"/scopehold_*.deb 2>/dev/null | head -n 1)
ETC=/etc/scopehold STATE=/var/lib/scopehold MNT=/run/scopehold
if [ "$(id -u)" -ne 0 ]; then skip "deb-install: needs root (apt-get install)"; exit 0; fi
if [ -z "$DEB" ]; then not_ok "deb-install: no package in $B (run 'make deb')"; exit 1; fi
if dpkg-query -W -f='${Status}' scopehold 2>/dev/null | grep -q installed; then
	skip "deb-install: scopehold is already installed here; not touching it"; exit 0
fi
for p in "$ETC" "$STATE" "$MNT"; do
	if [ -e "$p" ]; then skip "deb-install: $p exists; this host is not fresh"; exit 0; fi
done
t_tmpdir
FS_PID=""
cleanup() {
	[ -n "$FS_PID" ] && kill -TERM "$FS_PID" 2>/dev/null && sleep 1
	mountpoint -q "$MNT" 2>/dev/null && { fusermount3 -uz "$MNT" || umount -l "$MNT"; }
	dpkg-query -W scopehold >/dev/null 2>&1 && dpkg --purge scopehold >/dev/null 2>&1
	rm -rf "$ETC" "$STATE"
	rmdir "$MNT" 2>/dev/null
	rm -rf "$T_TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
export DEBIAN_FRONTEND=noninteractive
apt_() { apt-get -y -q "$@" </dev/null >"$T_TMP/apt.log" 2>&1 || { sed 's/^/#   /' "$T_TMP/apt.log" | tail -20; return 1; }; }
# the package's files (not directories), from the .deb itself
dpkg-deb --contents "$DEB" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort >"$T_TMP/files"
present() { n=0; while read -r f; do [ -e "$f" ] && n=$((n + 1)); done <"$T_TMP/files"; echo "$n"; }
NFILES=$(wc -l <"$T_TMP/files")

# ---- 1. a fresh install -------------------------------------------------------------
check "apt-get install ./$(basename "$DEB") succeeds" apt_ install "$DEB"
expect_eq "dpkg knows it as installed" "$(dpkg-query -W -f='${Status}' scopehold)" "install ok installed"
expect_eq "all $NFILES files of the package are in place" "$(present)" "$NFILES"
expect_eq "postinst made the default configuration, mode 0600 root:root" \
	"$(stat -c '%a %U:%G' $ETC/scopehold.ini)" "600 root:root"
check "the default configuration is the shipped example" cmp -s $ETC/scopehold.ini $ETC/scopehold.ini.example
expect_eq "the example is a conffile" "$(dpkg-query -W -f='${Conffiles}' scopehold | awk '{print $1}' | tr -d '\n')" \
	"$ETC/scopehold.ini.example"
check "systemd-analyze verify of the installed unit passes" \
	systemd-analyze verify /lib/systemd/system/scopeholdfs.service
expect_eq "man finds every page" "$(man -w shadm scopeholdfs scopehold scopehold.ini scopehold-policy | tr '\n' ' ')" \
	"/usr/share/man/man1/shadm.1.gz /usr/share/man/man1/scopeholdfs.1.gz /usr/share/man/man1/scopehold.1.gz /usr/share/man/man5/scopehold.ini.5.gz /usr/share/man/man5/scopehold-policy.5.gz "
expect_eq "bash-completion loads the installed shadm completion on demand" \
	"$(bash --norc -c '. /usr/share/bash-completion/bash_completion; __load_completion shadm; complete -p shadm')" \
	"complete -F _shadm shadm"

# the default configuration works as it is: init, then the daemon with no argument
if [ -c /dev/fuse ]; then
	check "shadm init with the default configuration" sh -c 'shadm init >/dev/null'
	expect_eq "the store and key land in /var/lib/scopehold and /etc/scopehold" \
		"$(stat -c '%a %n' $STATE/store.db $ETC/master.key | tr '\n' ' ')" \
		"600 $STATE/store.db 600 $ETC/master.key "
	scopeholdfs -f >"$T_TMP/fs.log" 2>&1 &
	FS_PID=$!
	for _ in $(seq 100); do mountpoint -q "$MNT" 2>/dev/null && break; sleep 0.1; done
	expect_eq "scopeholdfs with no argument creates and mounts $MNT" \
		"$(awk -v m="$MNT" '$2 == m { print $3 }' /proc/mounts)" "fuse.scopeholdfs"
	kill -TERM "$FS_PID"; wait "$FS_PID"; rc=$?; FS_PID=""
	expect_eq "SIGTERM: the daemon unmounts and exits 0" "$rc $(mountpoint -q $MNT && echo mounted)" "0 "
else
	skip "deb-install: the default configuration under a real mount needs /dev/fuse"
fi

# ---- 2. purge ---------------------------------------------------------------------------
check "apt-get purge scopehold succeeds" apt_ purge scopehold
expect_eq "dpkg no longer knows it" "$(dpkg-query -W -f='${Status}' scopehold 2>/dev/null)" ""
expect_eq "none of the package's files is left" "$(present)" "0"
check "purge removed the unchanged default configuration" test ! -e $ETC/scopehold.ini
if [ -c /dev/fuse ]; then
	expect_eq "purge keeps the operator's key and store (secrets are not the package's)" \
		"$(ls -A $ETC | tr '\n' ' ')$(ls -A $STATE | grep -c '^store.db$')" "master.key 1"
	rm -rf "$ETC" "$STATE"; rmdir "$MNT"
else
	check "purge removed /etc/scopehold" test ! -e $ETC
fi

# ---- 3. an operator's configuration is there first -----------------------------------------
mkdir -m 0755 $ETC
printf '[mount]\nmountpoint = /srv/operator-choice\n' >$ETC/scopehold.ini
chmod 0640 $ETC/scopehold.ini
cp -p $ETC/scopehold.ini "$T_TMP/mine"
check "apt-get install over an existing configuration succeeds without a prompt" apt_ install "$DEB"
check "the existing configuration is not overwritten (bytes)" cmp -s $ETC/scopehold.ini "$T_TMP/mine"
expect_eq "the existing configuration keeps its mode" "$(stat -c %a $ETC/scopehold.ini)" "640"
check "apt-get purge succeeds" apt_ purge scopehold
check "purge keeps the operator's configuration" cmp -s $ETC/scopehold.ini "$T_TMP/mine"
expect_eq "purge says it kept it" "$(grep -c "kept $ETC/scopehold.ini" "$T_TMP/apt.log")" "1"
expect_eq "only that file is left" "$(ls -A $ETC)" "scopehold.ini"
t_finish

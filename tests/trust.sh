#!/bin/bash
# trust.sh - shadm and scopeholdfs refuse a key file, store or configuration
# that another user could move, replace or rewrite (issue 14 §4), as
# OpenSSH's StrictModes does: every directory on the way (each component of
# the canonical path and the directory of each symlink followed) must belong
# to root or the running user and be writable by no one else, sticky
# directories of a trusted owner excepted; the configuration itself must
# belong to root or the running user and not be group/other writable.
#
# Real directories owned by other uids (24300-24399, which need not exist),
# the real binaries, exact error lines, and a check that a refusal created
# nothing. Needs root (to chown); skips otherwise.
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" -ne 0 ]; then
	skip "trust: needs root (to give directories to other uids)"
	exit 0
fi
for bin in "$SHADM" "$SCOPEHOLDFS"; do
	if [ ! -x "$bin" ]; then not_ok "trust: $bin is built"; exit 1; fi
done
t_tmpdir
cleanup() { rm -rf "$T_TMP"; }
trap cleanup EXIT
unset SCOPEHOLD_CONFIG SUDO_USER
cd "$T_TMP" || exit 1

UO=24301 UG=24302 UL=24303 US=24304 UC=24305 UR=24306   # other users; need not exist
T=$T_TMP
shadm() { "$SHADM" "$@"; }
# conf FILE DIR: a config whose store and key are DIR/store.db and DIR/root.key
conf() { printf '[store]\npath = %s/store.db\nkey_file = %s/root.key\n' "$2" "$2" >"$1"; }
# nothing_in DIR: the directory holds no entry
nothing_in() { [ -z "$(ls -A "$1")" ]; }
as_uid() { u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }

# ---- the key reached through a symlink into a world-writable directory ---------
mkdir -m 0777 "$T/ww"
chown "$UO:$UO" "$T/ww"
ln -s "$T/ww" "$T/link"
conf "$T/link.ini" "$T/link"
expect_run "init refuses a key below a symlink to a world-writable dir of another uid" 1 \
	"shadm: refusing '$T/link/root.key': directory '$T/ww' is writable by uid $UO (owner $UO, mode 0777)" \
	shadm -c "$T/link.ini" init
check "the refused init created nothing in that directory" nothing_in "$T/ww"
chown 0:0 "$T/ww"
expect_run "init refuses a world-writable non-sticky dir even when root owns it" 1 \
	"shadm: refusing '$T/link/root.key': directory '$T/ww' is writable by everyone (owner 0, mode 0777)" \
	shadm -c "$T/link.ini" init
check "... and created nothing there" nothing_in "$T/ww"
# a missing directory below it would be created by init: still refused
printf '[store]\npath = %s/link/sub/store.db\nkey_file = %s/link/sub/root.key\n' "$T" "$T" >"$T/sub.ini"
expect_run "init refuses to create directories below a world-writable dir" 1 \
	"shadm: refusing '$T/link/sub/root.key': directory '$T/ww' is writable by everyone (owner 0, mode 0777)" \
	shadm -c "$T/sub.ini" init
check "... and made no directory there" nothing_in "$T/ww"

# ---- a directory owned by another user; an ancestor; a group-writable one -------
mkdir -m 0755 "$T/other"
chown "$UO:$UO" "$T/other"
conf "$T/other.ini" "$T/other"
expect_run "init refuses a dir owned by another uid, even mode 0755" 1 \
	"shadm: refusing '$T/other/root.key': directory '$T/other' is writable by uid $UO (owner $UO, mode 0755)" \
	shadm -c "$T/other.ini" init
mkdir -m 0777 "$T/anc"; mkdir -m 0700 "$T/anc/mine"
conf "$T/anc.ini" "$T/anc/mine"
expect_run "init refuses a world-writable ancestor, not only the parent" 1 \
	"shadm: refusing '$T/anc/mine/root.key': directory '$T/anc' is writable by everyone (owner 0, mode 0777)" \
	shadm -c "$T/anc.ini" init
check "... and created nothing" nothing_in "$T/anc/mine"
mkdir -m 0775 "$T/grp"
chgrp "$UG" "$T/grp"
conf "$T/grp.ini" "$T/grp"
expect_run "init refuses a group-writable dir" 1 \
	"shadm: refusing '$T/grp/root.key': directory '$T/grp' is writable by group $UG (owner 0, mode 0775)" \
	shadm -c "$T/grp.ini" init
check "... and created nothing" nothing_in "$T/grp"

# ---- sticky directories -------------------------------------------------------------
mkdir -m 1777 "$T/sticky"
printf '[store]\npath = %s/sticky/mine/store.db\nkey_file = %s/sticky/mine/root.key\n' "$T" "$T" >"$T/sticky.ini"
expect_run "init accepts a root-owned sticky world-writable dir (like /tmp) on the way" 0 - \
	shadm -c "$T/sticky.ini" init
expect_run "... and the store opens" 0 "" shadm -c "$T/sticky.ini" provider add p
expect_eq "... the directory init made is 0700" "$(stat -c %a "$T/sticky/mine")" 700
mkdir -m 1777 "$T/usticky"
chown "$US" "$T/usticky"
conf "$T/usticky.ini" "$T/usticky"
expect_run "init refuses a sticky dir owned by another uid (its owner may rename our files)" 1 \
	"shadm: refusing '$T/usticky/root.key': directory '$T/usticky' is writable by uid $US (owner $US, mode 1777)" \
	shadm -c "$T/usticky.ini" init
# another user's symlink in a sticky dir: its owner can replace it
mkdir -m 0700 "$T/good"
ln -s "$T/good" "$T/sticky/theirs"
chown -h "$UL" "$T/sticky/theirs"
conf "$T/theirs.ini" "$T/sticky/theirs"
expect_run "init refuses a path through another uid's symlink in a sticky dir" 1 \
	"shadm: refusing '$T/sticky/theirs/root.key': symlink '$T/sticky/theirs' belongs to uid $UL" \
	shadm -c "$T/theirs.ini" init
check "... and created nothing behind it" nothing_in "$T/good"
ln -s "$T/good" "$T/sticky/ours"
conf "$T/ours.ini" "$T/sticky/ours"
expect_run "init accepts our own symlink in a sticky dir to a private dir" 0 - shadm -c "$T/ours.ini" init
check "... and the key is in the private dir" test -f "$T/good/root.key"

# The store directly in a sticky dir: another uid creates STORE-wal (and
# STORE-audit.lock) first, owns it, and SQLite would keep every page of the
# store in that file (review, uid 24811). The holding directory must be closed.
UW=24811
mkdir -m 1777 "$T/stk"
printf '[store]\npath = %s/stk/store.db\nkey_file = %s/good/stk.key\n' "$T" "$T" >"$T/stk.ini"
as_uid "$UW" sh -c 'umask 0; : >"$1/store.db-wal"; : >"$1/store.db-audit.lock"' sh "$T/stk"
expect_run "init refuses a store directly in a root-owned sticky dir (another uid made its -wal first)" 1 \
	"shadm: refusing '$T/stk/store.db': directory '$T/stk' is writable by everyone (owner 0, mode 1777)" \
	shadm -c "$T/stk.ini" init
check "... and created no store nor key" test ! -e "$T/stk/store.db" -a ! -e "$T/good/stk.key"
printf '[store]\npath = %s/good/stk.db\nkey_file = %s/stk/root.key\n' "$T" "$T" >"$T/stkk.ini"
expect_run "init refuses a key directly in a root-owned sticky dir" 1 \
	"shadm: refusing '$T/stk/root.key': directory '$T/stk' is writable by everyone (owner 0, mode 1777)" \
	shadm -c "$T/stkk.ini" init
mkdir -m 0700 "$T/stk2"
conf "$T/stk2.ini" "$T/stk2"
shadm -c "$T/stk2.ini" init >/dev/null 2>&1
chmod 1777 "$T/stk2"
expect_run "an existing store whose directory became sticky and world-writable is refused" 1 \
	"shadm: refusing '$T/stk2/root.key': directory '$T/stk2' is writable by everyone (owner 0, mode 1777)" \
	shadm -c "$T/stk2.ini" provider list
expect_run "scopeholdfs refuses it before mounting" 1 \
	"scopeholdfs: refusing '$T/stk2/root.key': directory '$T/stk2' is writable by everyone (owner 0, mode 1777)" \
	timeout 10 "$SCOPEHOLDFS" -c "$T/stk2.ini" -f "$T/good"

# ---- an existing store whose directory later becomes another user's ----------------
mkdir -m 0700 "$T/later"
conf "$T/later.ini" "$T/later"
setup() { "$@" >/dev/null 2>"$T/setup.err" || { not_ok "setup: $*"; sed 's/^/#   /' "$T/setup.err"; }; }
setup shadm -c "$T/later.ini" init
chown "$UO" "$T/later"
expect_run "opening refuses a key whose directory now belongs to another uid" 1 \
	"shadm: refusing '$T/later/root.key': directory '$T/later' is writable by uid $UO (owner $UO, mode 0700)" \
	shadm -c "$T/later.ini" provider list
printf '[store]\npath = %s/later/store.db\nkey_file = %s/good/root.key\n' "$T" "$T" >"$T/split.ini"
expect_run "opening refuses a store whose directory belongs to another uid (key elsewhere is fine)" 1 \
	"shadm: refusing '$T/later/store.db': directory '$T/later' is writable by uid $UO (owner $UO, mode 0700)" \
	shadm -c "$T/split.ini" provider list
mkdir -m 0755 "$T/mnt"
printf '[mount]\nmountpoint = %s/mnt\n' "$T" >>"$T/later.ini"
expect_run "scopeholdfs refuses the same key before mounting" 1 \
	"scopeholdfs: refusing '$T/later/root.key': directory '$T/later' is writable by uid $UO (owner $UO, mode 0700)" \
	timeout 20 "$SCOPEHOLDFS" -c "$T/later.ini" -f
check "... and mounted nothing" eval '! mountpoint -q "$T/mnt"'
chown 0 "$T/later"
expect_run "once the directory is root's again the store opens" 0 - shadm -c "$T/later.ini" provider list
expect_run "key rekey refuses a new key file in a group-writable dir" 1 \
	"shadm: refusing '$T/grp/new.key': directory '$T/grp' is writable by group $UG (owner 0, mode 0775)" \
	shadm -c "$T/later.ini" key rekey --new-key-file "$T/grp/new.key"
check "... and wrote no key there" nothing_in "$T/grp"
# the file checks that were there before stay
chmod 0644 "$T/later/root.key"
expect_run "a key file of mode 0644 is still refused" 1 \
	"shadm: key file '$T/later/root.key' is accessible by group or others (mode 0644); run: chmod 600 $T/later/root.key" \
	shadm -c "$T/later.ini" provider list
chmod 0600 "$T/later/root.key"
chown "$UO" "$T/later/store.db"
expect_run "a store owned by another uid is still refused" 1 \
	"shadm: store '$T/later/store.db' is owned by uid $UO, not by uid 0 (the user running this)" \
	shadm -c "$T/later.ini" provider list
chown 0 "$T/later/store.db"
ln -s "$T/later/root.key" "$T/good/link.key"
printf '[store]\npath = %s/later/store.db\nkey_file = %s/good/link.key\n' "$T" "$T" >"$T/lk.ini"
expect_run "a key file that is itself a symlink is still refused" 1 \
	"shadm: key file '$T/good/link.key' is not a regular file" shadm -c "$T/lk.ini" provider list

# ---- the configuration file ----------------------------------------------------------
mkdir -m 0700 "$T/c"
conf "$T/c/ok.ini" "$T/later"
chmod 0666 "$T/c/ok.ini"
expect_run "a config of mode 0666 is refused" 1 \
	"shadm: refusing config '$T/c/ok.ini': writable by group or others (mode 0666); run: chmod go-w $T/c/ok.ini" \
	shadm -c "$T/c/ok.ini" provider list
chmod 0620 "$T/c/ok.ini"
expect_run "a group-writable config (0620) is refused" 1 \
	"shadm: refusing config '$T/c/ok.ini': writable by group or others (mode 0620); run: chmod go-w $T/c/ok.ini" \
	shadm -c "$T/c/ok.ini" provider list
chmod 0644 "$T/c/ok.ini"
chown "$UC" "$T/c/ok.ini"
expect_run "a config owned by another uid is refused, even mode 0644" 1 \
	"shadm: refusing config '$T/c/ok.ini': owned by uid $UC, not by root or uid 0 (the user running this)" \
	shadm -c "$T/c/ok.ini" provider list
expect_run "SCOPEHOLD_CONFIG is checked the same way" 1 \
	"shadm: refusing config '$T/c/ok.ini': owned by uid $UC, not by root or uid 0 (the user running this)" \
	env SCOPEHOLD_CONFIG="$T/c/ok.ini" "$SHADM" provider list
expect_run "scopeholdfs refuses that config too" 1 \
	"scopeholdfs: refusing config '$T/c/ok.ini': owned by uid $UC, not by root or uid 0 (the user running this)" \
	timeout 20 "$SCOPEHOLDFS" -c "$T/c/ok.ini" -f "$T/mnt"
chown 0 "$T/c/ok.ini"
expect_run "a root-owned config of mode 0644 is accepted" 0 - shadm -c "$T/c/ok.ini" provider list
chmod 0600 "$T/c/ok.ini"
conf "$T/ww/in-ww.ini" "$T/later"
chmod 0600 "$T/ww/in-ww.ini"
expect_run "a config in a world-writable dir is refused" 1 \
	"shadm: refusing '$T/ww/in-ww.ini': directory '$T/ww' is writable by everyone (owner 0, mode 0777)" \
	shadm -c "$T/ww/in-ww.ini" provider list
ln -s "$T/ww/in-ww.ini" "$T/c/via-link.ini"
expect_run "a config reached by a symlink into a world-writable dir is refused" 1 \
	"shadm: refusing '$T/c/via-link.ini': directory '$T/ww' is writable by everyone (owner 0, mode 0777)" \
	shadm -c "$T/c/via-link.ini" provider list
ln -s "$T/c/ok.ini" "$T/c/good-link.ini"
expect_run "a config reached by our symlink to a private dir is accepted" 0 - \
	shadm -c "$T/c/good-link.ini" provider list
expect_run "a relative config path is checked from the working directory" 1 \
	"shadm: refusing 'in-ww.ini': directory '$T/ww' is writable by everyone (owner 0, mode 0777)" \
	sh -c 'cd "$1" && exec "$2" -c in-ww.ini provider list' sh "$T/ww" "$SHADM"

# ---- the alert program, which the mount runs as root ----------------------------------
printf '#!/bin/sh\ncat >/dev/null\n' >"$T/ww/hook.sh"
chmod 0755 "$T/ww/hook.sh"
{ cat "$T/c/ok.ini"; printf '[mount]\nmountpoint = %s/mnt\n[alerts]\nexec = %s/ww/hook.sh\n' "$T" "$T"; } >"$T/c/alert.ini"
chmod 0600 "$T/c/alert.ini"
expect_run "scopeholdfs refuses an alert program in a world-writable dir before mounting" 1 \
	"scopeholdfs: [alerts] exec: refusing '$T/ww/hook.sh': directory '$T/ww' is writable by everyone (owner 0, mode 0777)" \
	timeout 20 "$SCOPEHOLDFS" -c "$T/c/alert.ini" -f
check "... and mounted nothing" eval '! mountpoint -q "$T/mnt"'

# ---- the running user, not only root ---------------------------------------------------
install -d -m 0700 -o "$UR" -g "$UR" "$T/user"
conf "$T/user/u.ini" "$T/user"
chown "$UR:$UR" "$T/user/u.ini"
expect_run "a non-root user's own config, key and store in its own dir are accepted" 0 - \
	as_uid "$UR" "$SHADM" -c "$T/user/u.ini" init
expect_eq "... the key belongs to that user" "$(stat -c %u "$T/user/root.key")" "$UR"
chown "$UR" "$T/c/ok.ini"
expect_run "root refuses a config the non-root user owns" 1 \
	"shadm: refusing config '$T/c/ok.ini': owned by uid $UR, not by root or uid 0 (the user running this)" \
	shadm -c "$T/c/ok.ini" provider list
chown 0 "$T/c/ok.ini"

t_finish

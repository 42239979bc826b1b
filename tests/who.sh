#!/bin/bash
# who.sh - "who can read what" against a real scopeholdfs mount read by real
# uids (setpriv): for every agent and secret, what `shadm who-can` says (sees,
# resolves now) is what the mount does (listed in the agent's directory, an
# open that reads the value); `shadm grants` says effective exactly when the
# open works. Then [audit] syslog for real: the daemon and shadm run in a
# private mount namespace whose /dev/log is a socket held by a small python
# receiver, so glibc's own syslog(3) path is what delivers the lines asserted.
# The harness (skip without FUSE or root, mount with a deadline, always
# unmount) is tests/mount.sh.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
m_start who "it mounts, and runs readers as other uids with setpriv" unshare sqlite3

UA=24411 UB=24412 UD=24413   # need not exist in /etc/passwd
no() { ! "$@"; }
# expect_re WHAT TEXT REGEX: TEXT matches the ERE
expect_re() {
	if [[ $2 =~ $3 ]]; then ok "$1"
	else not_ok "$1"; printf '#   got:  %s\n#   want: /%s/\n' "$2" "$3"; fi
}
ST=$T_TMP/store MNT=$T_TMP/mnt CONF=$T_TMP/scopehold.ini LOG=$T_TMP/fs.log
MNTS=$MNT
mkdir -m 0700 "$ST"
mkdir -m 0755 "$MNT"
: >"$LOG"
write_conf "$CONF" "$ST" "$MNT"

setup sa init
setup sa provider add gh
for s in ok nogrant used old hidden; do printf 'val-%s-whoSECRET' "$s" | setup sa secret set "gh/$s"; done
setup sa project add pr
for s in ok nogrant used old; do setup sa project attach pr "gh/$s"; done
setup sa agent add ag --uid "$UA"
setup sa agent add bg --uid "$UB"
setup sa agent add dis --uid "$UD"
for a in ag bg dis; do setup sa assign "$a" pr; done
setup sa grant ag gh/ok
setup sa grant ag gh/used --uses 1
setup sa grant ag gh/old
setup sa grant ag gh/hidden
setup sa grant bg gh/ok --uses 5
setup sa grant dis gh/ok
setup sa agent disable dis
# the current version of gh/old expired a minute ago
setup sqlite3 "$ST/store.db" "UPDATE versions SET expires = strftime('%s','now') - 60 WHERE secret_id = (SELECT id FROM secrets WHERE name = 'old')"
setup_check "who setup: shadm commands failed"
ok "who setup: three agents, five secrets, grants in every state"

start_fs "$CONF" "$LOG" "$MNT"
expect_mount "scopeholdfs mounts $MNT within 10 s" "$MNT" "$LOG"

expect_eq "the mount spends gh/used's one use" "$(probe "$UA" open "$MNT/ag/gh/used")" "ok $(printf 'val-used-whoSECRET' | wc -c)"

# who NAME AGENT FIELD: one field of AGENT's row in `who-can --json gh/NAME` ("" if not listed)
who() {
	sa --json who-can "gh/$1" | "$PY" -c 'import json,sys
for l in sys.stdin:
    e=json.loads(l)
    if e["agent"]==sys.argv[1]: print(e[sys.argv[2]] if sys.argv[2]!="left" else (e["grant"] or {}).get("uses_left"))' "$2" "$3"
}
uid_of() { case $1 in ag) echo "$UA";; bg) echo "$UB";; dis) echo "$UD";; esac; }

# every pair: who-can's answer against the mount's
for a in ag bg dis; do
	u=$(uid_of "$a")
	for s in ok nogrant used old hidden; do
		got=$(probe "$u" open "$MNT/$a/gh/$s")
		case $got in ok*) mount_res=True;; *) mount_res=False;; esac
		listed=$(probe "$u" list "$MNT/$a/gh" | tr ' ' '\n' | grep -cx "$s")
		[ "$listed" = 1 ] && mount_sees=True || mount_sees=False
		w_res=$(who "$s" "$a" resolves); w_sees=$(who "$s" "$a" sees)
		[ -z "$w_res" ] && w_res=False && w_sees=False
		expect_eq "$a gh/$s: who-can resolves=$w_res sees=$w_sees, the mount ($got) agrees" \
			"$w_res $w_sees" "$mount_res $mount_sees"
	done
done
expect_eq "who-can: the use the mount spent shows (0 left, used-up)" \
	"$(who used ag left) $(who used ag reason)" "0 used-up"
expect_eq "who-can: bg's grant of 5 uses has 4 left after its open above" "$(who ok bg left)" "4"
expect_eq "who-can: expired version" "$(who old ag reason)" "version-expired"
expect_eq "who-can: the disabled agent holds a grant it cannot use" \
	"$(who ok dis sees) $(who ok dis resolves) $(who ok dis reason)" "False False disabled"
expect_eq "who-can: the non-candidate grant is listed, not seen" "$(who hidden ag sees) $(who hidden ag reason)" "False not-candidate"
# effective in `grants` is exactly "the agent's open works now"
bad=""
while read -r a s eff; do
	got=$(probe "$(uid_of "$a")" open "$MNT/$a/gh/$s")
	case $got in ok*) r=True;; *) r=False;; esac
	[ "$r" = "$eff" ] || bad="$bad $a/$s:$eff:$got"
done < <(sa --json grants | "$PY" -c 'import json,sys
for l in sys.stdin:
    e=json.loads(l); print(e["agent"], e["name"], e["effective"])')
expect_eq "grants: effective exactly when the mount serves the open (6 grants)" "$bad" ""
# a revoke moves both at once
setup sa revoke bg gh/ok
expect_eq "after revoke: who-can and the mount both say no" \
	"$(who ok bg resolves) $(probe "$UB" open "$MNT/bg/gh/ok")" "False EACCES"
stop_fs "$FS_PID"

# ---- [audit] syslog ----------------------------------------------------------------
SL=$T_TMP/syslog
mkdir -m 0755 "$SL"
cat >"$SL/recv.py" <<'EOF'
# one datagram per line; a newline inside one would show as a literal \n
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
open(sys.argv[2] + ".ready", "w").close()
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        d = s.recv(65536)
        f.write(d.rstrip(b"\n").replace(b"\n", b"\\n") + b"\n")
EOF
"$PY" "$SL/recv.py" "$SL/sock" "$SL/log" &
RECV=$!
HELPERS="$HELPERS $RECV"
for _ in $(seq 100); do [ -e "$SL/log.ready" ] && break; sleep 0.1; done
[ -e "$SL/log.ready" ] || { not_ok "syslog: the receiver is listening"; exit 1; }
printf '[audit]\nsyslog = local4\n' >>"$CONF"
# a reader whose executable path holds a space, a quote and a newline, below
# 16 directories of non-ASCII names: about 4000 bytes that escape to 16000
# (the line once stopped at 16 KiB, before the reason, fingerprint and count)
LONGD=$T_TMP
for _ in $(seq 16); do LONGD=$LONGD/$(printf '\xc3\xa9%.0s' $(seq 125)); done
mkdir -p -m 0755 "$LONGD"
WEIRD="$LONGD/py th\"on
x"
cp "$PYREAL" "$WEIRD"
chmod 0755 "$WEIRD"
# ag bound to the cgroup its readers run in: the mount reads (and the trail
# records) a caller's cgroup only for agents bound to one, and the lines
# below check that the cgroup survives a long executable path
MYCG=$(sed -n 's/^0:://p' /proc/self/cgroup)
setup sa agent set ag --cgroup "${MYCG:-/}"
setup_check "syslog setup: agent set --cgroup failed"
FIRST=$(($(sqlite3 "$ST/store.db" 'SELECT max(seq) FROM audit') + 1))
cat >"$SL/inns.sh" <<'EOF'
# in a private mount namespace: /dev is a tmpfs with the nodes the programs
# need, and /dev/log is the receiver's socket; then the daemon serves, a uid
# reads, shadm changes something, the daemon stops
set -e
old=$(mktemp -d "$T_TMP/olddev.XXXXXX")
mount --bind /dev "$old"
mount -t tmpfs -o mode=0755,size=64k tmpfs /dev
for n in null zero urandom random fuse; do
	[ -e "$old/$n" ] || continue
	touch "/dev/$n"; mount --bind "$old/$n" "/dev/$n"
done
ln -s /proc/self/fd /dev/fd
touch /dev/log
mount --bind "$SL/sock" /dev/log
umount -l "$old"; rmdir "$old"
"$SCOPEHOLDFS" -c "$CONF" -f >>"$LOG" 2>&1 &
fs=$!
trap 'kill -TERM $fs 2>/dev/null; wait $fs 2>/dev/null; fusermount3 -uz "$MNT" 2>/dev/null || true' EXIT
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
setpriv --reuid="$UA" --regid="$UA" --clear-groups "$WEIRD" "$T_TMP/probe.py" open "$MNT/ag/gh/ok" 2>/dev/null
setpriv --reuid="$UB" --regid="$UB" --clear-groups "$PY" "$T_TMP/probe.py" open "$MNT/ag/gh/ok" 2>/dev/null
"$SHADM" -c "$CONF" grant bg gh/ok --uses 2 >/dev/null
# the daemon moves the resolve into the trail within a second; stopping it does at once
EOF
export T_TMP SL SCOPEHOLDFS SHADM CONF LOG MNT UA UB WEIRD PY
OUTNS=$(timeout -s KILL 60 unshare -m --propagation private bash "$SL/inns.sh" 2>&1)
expect_eq "syslog: the namespace run (daemon, a read, a refusal, a grant)" "$OUTNS" \
	"ok $(printf 'val-ok-whoSECRET' | wc -c)
EACCES"
LAST=$(sqlite3 "$ST/store.db" 'SELECT max(seq) FROM audit')
for _ in $(seq 30); do
	[ "$(grep -c 'scopehold-audit seq=' "$SL/log")" -ge $((LAST - FIRST + 1)) ] && break; sleep 0.1
done
expect_eq "syslog: every event since the start arrived exactly once, in order" \
	"$(grep -o 'scopehold-audit seq=[0-9]*' "$SL/log" | cut -d= -f2 | tr '\n' ' ')" \
	"$(seq "$FIRST" "$LAST" | tr '\n' ' ')"
expect_eq "syslog: facility local4, priority info (<166>), one datagram per event" \
	"$(grep 'scopehold-audit' "$SL/log" | grep -vc '^<166>')" "0"
R=$(grep 'type=resolve' "$SL/log")
# whoever moves it from the journal into the trail forwards it: the daemon's tick or shadm's next change
expect_re "syslog: the resolve, with the caller and a fingerprint" "$R" \
	"^<166>.* (scopeholdfs\\[[0-9]+\\]|shadm): scopehold-audit seq=[0-9]+ time=20[0-9-]+T[0-9:]+Z type=resolve workspace=default actor=scopeholdfs agent=ag secret=gh/ok version=1 uid=$UA gid=$UA pid=[0-9]+ fingerprint=[0-9a-f]{32} exe=\".*\" cgroup=[^ ]+\$"
expect_eq "syslog: the executable path is quoted and escaped (no raw newline or quote)" \
	"$(printf '%s\n' "$R" | grep -o 'exe="[^ ]* th\\"on\\x0ax"' | wc -l)" "1"
expect_eq "syslog: the 4000-byte path arrives whole (16 escaped directories), then the cgroup" \
	"$(printf '%s\n' "$R" | grep -o '\(/\(\\xc3\\xa9\)\{125\}\)\{16\}/py th\\"on\\x0ax" cgroup=' | wc -l)" "1"
expect_re "syslog: the stranger's refusal names the caller and the reason" "$(grep 'type=deny' "$SL/log" | head -n 1)" \
	"scopeholdfs\\[[0-9]+\\]: scopehold-audit seq=[0-9]+ time=[^ ]+ type=deny workspace=default actor=scopeholdfs agent=ag uid=$UB gid=$UB pid=[0-9]+ reason=uid exe=[^ ]+ cgroup=[^ ]+\$"
expect_re "syslog: shadm's grant, with the operator" "$(grep 'type=grant' "$SL/log")" \
	"shadm: scopehold-audit seq=[0-9]+ time=[^ ]+ type=grant workspace=default actor=$(id -un) agent=bg secret=gh/ok reason=\"2 uses\"\$"
check "syslog: no value in any line" no grep -q 'whoSECRET' "$SL/log"
printf '[store]\npath = %s\n[audit]\nsyslog = kern\n' "$ST/store.db" >"$T_TMP/bad.ini"
expect_fail_msg "syslog: an unknown facility is refused with the file and line" \
	"shadm: $T_TMP/bad.ini:4: invalid value for 'syslog': 'kern'" "$SHADM" -c "$T_TMP/bad.ini" provider list
{ kill "$RECV"; wait "$RECV"; } 2>/dev/null
expect_verify "the trail is intact after all of it"
t_finish

#!/bin/sh
# demo.sh - `make demo`: ScopeHold in one minute. Builds a throw-away store,
# mounts scopeholdfs, and shows an agent reading the secret it was granted,
# being refused the one it was not, and the audit trail both left behind.
# Everything lives in a temporary directory that is removed at the end; the
# mount harness (wait with a deadline, stop, never leak a daemon or a mount)
# is the test suites' own, tests/mount.sh.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
DEMO_UID=23450

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root (it mounts a filesystem and reads as another uid)" >&2; exit 1
fi
if [ ! -c /dev/fuse ]; then
	echo "demo: /dev/fuse is missing; this machine or container has no FUSE" >&2; exit 1
fi
for bin in "$SHADM" "$SCOPEHOLDFS"; do
	[ -x "$bin" ] || { echo "demo: $bin is not built; run 'make'" >&2; exit 1; }
done

T_TMP=$(mktemp -d /tmp/scopehold-demo.XXXXXX)
chmod 0755 "$T_TMP"
DIR=$T_TMP MNT=$T_TMP/mnt
MNTS=$MNT
m_trap demo
mkdir -m 0700 "$DIR/store"
mkdir "$MNT"

write_conf "$DIR/scopehold.ini" "$DIR/store" "$MNT"
export SCOPEHOLD_CONFIG="$DIR/scopehold.ini"
PATH="$ROOT/$B:$PATH"

# run CMD...: show it as a shell prompt line, then run it; stop the demo if it fails
run() {
	echo "\$ $*"
	"$@" || { echo "demo: '$*' failed" >&2; exit 1; }
}
# show_as UID CMD RELPATH: show and run CMD on $MNT/RELPATH as that uid (a
# refusal is part of the story)
show_as() {
	echo "\$ setpriv --reuid=$1 --regid=$1 --clear-groups $2 \$MNT/$3"
	setpriv --reuid="$1" --regid="$1" --clear-groups $2 "$MNT/$3"
}

echo "# A store, a demo agent bound to uid $DEMO_UID, one granted and one ungranted secret"
echo "# (config: $SCOPEHOLD_CONFIG)"
run shadm init
run shadm provider add github
echo "\$ printf 'ghp_demo_token_0123456789' | shadm secret set github/token"
printf 'ghp_demo_token_0123456789' | shadm secret set github/token || exit 1
echo "\$ printf 'ghp_demo_admin_9876543210' | shadm secret set github/admin-token"
printf 'ghp_demo_admin_9876543210' | shadm secret set github/admin-token || exit 1
run shadm project add demo
run shadm project attach demo github
run shadm agent add demo-agent --uid $DEMO_UID
run shadm assign demo-agent demo
run shadm grant demo-agent github/token
echo

echo "# Mount it"
echo "\$ MNT=$MNT"
echo "\$ scopeholdfs -f \$MNT &"
start_fs "$SCOPEHOLD_CONFIG" "$DIR/fs.log" "$MNT"
if ! wait_mount "$MNT" "$FS_PID"; then
	echo "demo: scopeholdfs did not mount $MNT" >&2; cat "$DIR/fs.log" >&2; exit 1
fi
echo

echo "# What the agent (uid $DEMO_UID) sees"
show_as $DEMO_UID "ls -l" demo-agent/github
echo "# It reads its token:"
show_as $DEMO_UID cat demo-agent/github/token
echo
echo "# It is refused the secret it was not granted:"
show_as $DEMO_UID cat demo-agent/github/admin-token 2>&1
echo "# Another uid cannot read the agent's files at all:"
show_as $((DEMO_UID + 1)) cat demo-agent/github/token 2>&1
echo

sleep 1.5   # refused opens are counted for a moment, then written as one event
echo "# The audit trail: who read what, who was refused and why (never the value)"
run shadm audit
run shadm audit verify
echo

echo "# Unmount"
echo "\$ kill -TERM $FS_PID"
stop_fs "$FS_PID"
if [ "$STOP_RC" != 0 ] || mounted "$MNT"; then
	echo "demo: scopeholdfs did not unmount cleanly (exit $STOP_RC)" >&2; exit 1
fi
echo "# Done: the demo store in $DIR is removed."

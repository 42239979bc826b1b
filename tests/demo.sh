#!/bin/sh
# demo.sh - `make demo`: ScopeHold in one minute. Builds a throw-away store,
# mounts scopeholdfs, and shows an agent reading the secret it was granted,
# being refused the one it was not, and the audit trail both left behind.
# Everything lives in a temporary directory that is removed at the end.
B=${B:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHADM="$ROOT/$B/shadm"
SCOPEHOLDFS="$ROOT/$B/scopeholdfs"
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

DIR=$(mktemp -d /tmp/scopehold-demo.XXXXXX)
chmod 0755 "$DIR"
MNT=$DIR/mnt
mkdir -m 0700 "$DIR/store"
mkdir "$MNT"
FS_PID=""
cleanup() {
	if [ -n "$FS_PID" ] && kill -0 "$FS_PID" 2>/dev/null; then
		kill -TERM "$FS_PID"
		i=0
		while kill -0 "$FS_PID" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$FS_PID" 2>/dev/null
	fi
	if grep -q " $MNT " /proc/mounts; then fusermount3 -uz "$MNT"; fi
	grep -q " $MNT " /proc/mounts || rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

cat >"$DIR/scopehold.ini" <<EOF
[store]
path = $DIR/store/store.db
key_file = $DIR/store/master.key
[mount]
mountpoint = $MNT
EOF
export SCOPEHOLD_CONFIG="$DIR/scopehold.ini"
PATH="$ROOT/$B:$PATH"

# run CMD...: show it as a shell prompt line, then run it; stop the demo if it fails
run() {
	echo "\$ $*"
	"$@" || { echo "demo: '$*' failed" >&2; exit 1; }
}
# as UID: run CMD on $MNT/RELPATH as that uid (a refusal is part of the story)
as_uid() {
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
scopeholdfs -f "$MNT" &
FS_PID=$!
i=0
until mountpoint -q "$MNT" 2>/dev/null; do
	if ! kill -0 "$FS_PID" 2>/dev/null || [ $i -ge 100 ]; then
		echo "demo: scopeholdfs did not mount $MNT" >&2; exit 1
	fi
	sleep 0.1; i=$((i + 1))
done
echo

echo "# What the agent (uid $DEMO_UID) sees"
as_uid $DEMO_UID "ls -l" demo-agent/github
echo "# It reads its token:"
as_uid $DEMO_UID cat demo-agent/github/token
echo
echo "# It is refused the secret it was not granted:"
as_uid $DEMO_UID cat demo-agent/github/admin-token 2>&1
echo "# Another uid cannot read the agent's files at all:"
as_uid $((DEMO_UID + 1)) cat demo-agent/github/token 2>&1
echo

sleep 1.5   # refused opens are counted for a moment, then written as one event
echo "# The audit trail: who read what, who was refused and why (never the value)"
run shadm audit
run shadm audit verify
echo

echo "# Unmount"
echo "\$ kill -TERM $FS_PID"
kill -TERM "$FS_PID"
wait "$FS_PID"
rc=$?
FS_PID=""
if [ $rc -ne 0 ] || grep -q " $MNT " /proc/mounts; then
	echo "demo: scopeholdfs did not unmount cleanly (exit $rc)" >&2; exit 1
fi
echo "# Done: the demo store in $DIR is removed."

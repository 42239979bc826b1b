#!/bin/bash
# run.sh - `make bench`: run shbench and publish its report with the facts
# of the machine it ran on, as docs/performance.md.
# Builds nothing (make does). BENCH_QUICK=1 runs `shbench --quick` and
# writes $B/bench/performance-quick.md instead, so a smoke run never
# replaces published results. SHBENCH_ARGS adds options (see shbench --help).
# The hand-written analysis after the "<!-- analysis -->" line of the
# existing docs/performance.md is kept across runs.
set -u
B=${B:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
SHBENCH="$ROOT/$B/bench/shbench"
if [ ! -x "$SHBENCH" ]; then
	echo "bench/run.sh: $SHBENCH is not built (run 'make')" >&2
	exit 1
fi
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
	echo "bench/run.sh: needs root and /dev/fuse (it mounts, and reads as other uids)" >&2
	exit 1
fi

args=()
out=docs/performance.md
cmd="make bench"
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	args+=(--quick)
	out=$B/bench/performance-quick.md
	cmd="make bench BENCH_QUICK=1"
fi
# shellcheck disable=SC2206
[ -n "${SHBENCH_ARGS:-}" ] && args+=(${SHBENCH_ARGS}) && cmd="$cmd SHBENCH_ARGS='${SHBENCH_ARGS}'"

# what was measured: the tree as built now (the lead may commit meanwhile)
commit=unknown
if git rev-parse --git-dir >/dev/null 2>&1; then
	commit=$(git rev-parse --short HEAD)
	git diff --quiet HEAD -- store fs policy || commit="$commit plus uncommitted changes in store/ fs/ policy/"
fi
tmp=$(mktemp /tmp/shbench-report.XXXXXX)
# many hosts (issue 9): a throwaway PostgreSQL cluster, durable as deployed
# (fsync on), for two daemons sharing one store; BENCH_PG=0 leaves it out
pgver=none
. "$ROOT/tests/pg.sh"
trap 'rm -f "$tmp" "$tmp.new"; pg_stop' EXIT
if [ "${BENCH_PG:-1}" = 1 ] && pg_available; then
	if PG_FSYNC=on PG_SHARED_BUFFERS=128MB pg_start >&2; then
		args+=(--pg "$PG_CONNINFO" --pg-data "$PG_DIR/data" --pg-bin "$PG_BIN")
		pgver=$("$PG_BIN/postgres" --version | awk '{ print $3 }')
	else
		echo "bench/run.sh: no PostgreSQL cluster: the many-hosts section is left out" >&2
	fi
fi
"$SHBENCH" "${args[@]}" --out "$tmp" >/dev/null || exit 1

ver() { pkg-config --modversion "$1" 2>/dev/null || echo unknown; }
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
{
	echo "# ScopeHold performance"
	echo
	echo "Produced by \`$cmd\` (bench/run.sh → build/bench/shbench; see \`shbench --help\`)"
	echo "on $(date -u +%Y-%m-%d) at commit $commit."
	echo "Ratios are what count: every figure is divided by a floor measured in the same run."
	echo
	echo "## Machine"
	echo
	echo "| fact | value |"
	echo "|---|---|"
	echo "| cores (nproc) | $(nproc) |"
	echo "| CPU | ${cpu:-unknown} |"
	echo "| memory | $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) |"
	echo "| kernel | $(uname -r) |"
	echo "| filesystem of /tmp (the store) | $(df -T /tmp | awk 'NR == 2 { print $2 }') |"
	echo "| libfuse | $(ver fuse3) |"
	echo "| SQLite | $(ver sqlite3) (sqlite3 CLI: $(sqlite3 --version 2>/dev/null | cut -d' ' -f1)) |"
	echo "| libsodium | $(ver libsodium) |"
	echo "| PostgreSQL (many hosts; fsync on, unix socket) | $pgver |"
	echo "| pass / age | $(dpkg-query -W -f='${Version}' pass 2>/dev/null || echo 'not installed') / $(dpkg-query -W -f='${Version}' age 2>/dev/null || echo 'not installed') |"
	echo
	sed '1{/^# /d}' "$tmp"
	if [ -f "$out" ] && grep -q '^<!-- analysis -->' "$out"; then
		sed -n '/^<!-- analysis -->/,$p' "$out"
	fi
} >"$tmp.new"
mkdir -p "$(dirname "$out")"
mv "$tmp.new" "$out"
cat "$out"
echo "bench/run.sh: wrote $out" >&2

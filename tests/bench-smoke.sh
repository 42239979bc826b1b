#!/bin/bash
# bench-smoke.sh - the benchmark harness still runs: `shbench --quick` with
# tiny durations (well under 30 s), checking that it exits 0, prints every
# table row with numbers where ratios belong, reads the right bytes and
# errnos, and leaves no mount or daemon behind. No timing thresholds: a
# slow machine is not a failure here (make bench reports targets).
. "$(dirname "$0")/lib.sh"
SHBENCH="$ROOT/$B/bench/shbench"

if [ ! -c /dev/fuse ]; then
	skip "bench smoke: /dev/fuse is missing (no FUSE here)"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	skip "bench smoke: needs root (it mounts, and reads as other uids)"
	exit 0
fi
if [ ! -x "$SHBENCH" ] || [ ! -x "$ROOT/$B/bench/barefs" ]; then
	not_ok "bench smoke: $SHBENCH or barefs is not built (run 'make')"
	exit 1
fi

t_tmpdir
trap 'rm -rf "$T_TMP"' EXIT
OUTF=$T_TMP/report.md
timeout -s INT 120 "$SHBENCH" --quick --duration 0.1 --flood 2000 --audit-events 20000 \
	--out "$OUTF" >"$T_TMP/stdout" 2>"$T_TMP/stderr"
rc=$?
if [ "$rc" -eq 0 ]; then ok "bench smoke: shbench --quick exited 0"
else not_ok "bench smoke: shbench --quick exited 0"; echo "#   exit $rc"; sed 's/^/#   /' "$T_TMP/stderr" | tail -n 10; fi
check "bench smoke: --out wrote the same report as stdout" cmp -s "$OUTF" "$T_TMP/stdout"

R=$T_TMP/stdout
NUM='^-?[0-9]+(\.[0-9]+)?$'
# row CASE READERS: the cells of that row of the reads table, one per line
row() { awk -F' *\\| *' -v c="$1" -v n="$2" '$2 == c && $3 == n { for (i = 2; i < NF; i++) print $i; exit }' "$R"; }

missing="" bad=""
for c in "tmpfs" "bare FUSE direct_io" "bare FUSE page cache" "default FUSE direct_io" \
	"default FUSE page cache" "scopeholdfs default" "scopeholdfs exe+sha256 agent" "scopeholdfs agent with --rate" \
	"scopeholdfs cache=kernel" "scopeholdfs durability=power" "bare FUSE, lookup refused" \
	"denied: wrong uid" "denied: no grant"; do
	for n in 1 2 8; do
		cells=$(row "$c" "$n")
		if [ -z "$cells" ]; then missing="$missing [$c/$n]"; continue; fi
		# ops/s, p50, p99, p99.9, x bare ops/s, x default ops/s, x default p99, x tmpfs ops/s
		vals=$(echo "$cells" | sed -n '3,10p')
		[ "$(echo "$vals" | grep -cE "$NUM")" -eq 8 ] || bad="$bad [$c/$n: $(echo $vals)]"
	done
done
expect_eq "bench smoke: every read row is present (13 cases x 1, 2, 8 readers)" "${missing:-none}" "none"
expect_eq "bench smoke: figures and ratios of the read rows are numbers" "${bad:-none}" "none"
expect_eq "bench smoke: every read had the expected bytes or errno" \
	"$(grep -c '^Operations with an unexpected outcome .*: 0\.$' "$R")" "1"

targets=$(grep -cE '^\| .* \| (met|\*\*missed\*\*|n/a.*|unknown) \|$' "$R")
if [ "$targets" -ge 16 ]; then ok "bench smoke: the targets table says met/missed for each target"
else not_ok "bench smoke: the targets table says met/missed for each target"; echo "#   $targets rows"; fi

# name|pattern of one row each table must hold
while IFS='|' read -r name want; do
	if grep -qE "$want" "$R"; then ok "bench smoke: row present: $name"
	else not_ok "bench smoke: row present: $name"; fi
done <<'EOF'
fdatasync probe|^\| one write \+ fdatasync of 100 bytes .* \| [0-9.]+ µs \|
power single-reader p50|^\| single-reader p50 of a granted read \| [0-9.]+ µs \([0-9.]+× bare FUSE p50 \+ one fdatasync = [0-9.]+ µs\) \|
power resolves per fsync|^\| 8 readers, one .*: resolves / fsyncs \| ([0-9]+ / [0-9]+ = [0-9.]+|not measured .*) \|
cat from scopeholdfs|^\| cat from scopeholdfs \| [0-9.]+ \| 1\.00 \|
pass show|^\| pass show \| ([0-9.]+ \| [0-9.]+|not installed \| -) \|
age -d|^\| age -d \| ([0-9.]+ \| [0-9.]+|not installed \| -) \|
wrong uid over the refused-lookup floor|^\| denied: wrong uid \| 8 \| .* \| ≥ granted \([0-9.]+×\): (met|\*\*missed\*\*); × refused-lookup floor [0-9.]+ \|$
wrong uid vs bare FUSE refusal|^\| denied: wrong uid vs bare FUSE refusing the same lookup \(1, 2, 8 readers\) \| [0-9.]+× / [0-9.]+× / [0-9.]+× \| - \|$
scale 1e3 with ratios|^\| 1000 \| 103 \| 1003 \| [0-9]+ \| [0-9.]+ \| [0-9.]+ \| [0-9]+ \| 1\.00 \| [0-9.]+ \| [0-9]+ \| 1\.00 \| [0-9.]+ \|
EOF

# The flood leaves at least one (coalesced) row whose counts cover the opens.
flood=$(awk -F' *\\| *' '$2 == "2000" { print $5, $6; exit }' "$R")
set -- $flood
if [ -n "${1:-}" ] && [ "$1" -ge 1 ] 2>/dev/null && [ "${2:-0}" -ge 2000 ] 2>/dev/null; then
	ok "bench smoke: the denial flood is in the trail (rows $1, counts $2)"
else
	not_ok "bench smoke: the denial flood is in the trail"; echo "#   got: $flood"
fi

# (only this run's directory: a `make bench` may be running alongside)
dir=$(sed -n 's/^shbench: working in //p' "$T_TMP/stderr" | head -n 1)
left=$(awk -v d="${dir:-/nonexistent}/" 'index($2, d) == 1 { print $2 }' /proc/mounts)
[ -n "$dir" ] && [ -e "$dir" ] && left="$left $dir (not removed)"
expect_eq "bench smoke: no mount left behind" "${left:-none}" "none"
t_finish

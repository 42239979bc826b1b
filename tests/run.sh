#!/bin/sh
# run.sh - run every test suite and print one summary line "N passed, N failed".
# Suites print "ok - ...", "not ok - ..." or "skip - ..." lines; a suite that
# exits non-zero without printing a failure counts as one failure. Each
# suite's output is printed whole when it ends, headed by its name and time.
#
# The PostgreSQL suites run in a second lane beside the others (CHECK_LANES=1
# runs everything in one): each starts its own throwaway cluster, which
# shares nothing with the other suites (own port, own data directory, own
# mountpoints). The suites are mostly CPU-bound, so on two cores the gain is
# modest: 8m38s against 10m12s for one lane on the VM it was measured on. A
# suite's output and the tally are written under one lock, so the lanes
# never interleave lines.
B=${B:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export B ROOT
log=$(mktemp /tmp/scopehold-check.XXXXXX)
run_suite() {
	tmp=$(mktemp)
	start=$(date +%s)
	"$@" >"$tmp" 2>&1
	rc=$?
	{
		flock 9
		echo "== ${*##*/} ($(($(date +%s) - start)) s)"
		cat "$tmp"; cat "$tmp" >>"$log"
		if [ "$rc" -ne 0 ] && ! grep -q '^not ok' "$tmp"; then
			echo "not ok - suite $1 exited $rc without reporting a failure" | tee -a "$log"
		fi
	} 9>>"$log.lock"
	rm -f "$tmp"
}
# lane SUITE...: run the named suites of tests/, one after the other
lane() {
	for s in "$@"; do
		[ -f "$ROOT/tests/$s.sh" ] && run_suite bash "$ROOT/tests/$s.sh"
	done
}
for t in "$ROOT/$B"/tests/*_test; do
	[ -x "$t" ] && run_suite "$t"
done
PG_SUITES="cli-pg store-pg e2e-pg pg-outage freshness-pg pg-operator"
SUITES="cli trust manpages install deb e2e freshness agent controls who notify completion hostile exebind dos ident secrets docs-examples policy-code faults fuzz-regress valgrind bench-smoke display seam"
if [ "${CHECK_LANES:-2}" = 1 ]; then
	lane $SUITES $PG_SUITES
else
	# shellcheck disable=SC2086
	lane $PG_SUITES &
	pg_lane=$!
	# a background job ignores ^C: stop the lane's running suite (its own
	# EXIT trap stops its cluster) and the lane with the run
	trap 'pkill -TERM -P "$pg_lane"; kill "$pg_lane" 2>/dev/null; exit 130' INT TERM
	# shellcheck disable=SC2086
	lane $SUITES
	wait "$pg_lane"
fi
passed=$(grep -c '^ok - ' "$log")
failed=$(grep -c '^not ok - ' "$log")
skipped=$(grep -c '^skip - ' "$log")
rm -f "$log" "$log.lock"
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]

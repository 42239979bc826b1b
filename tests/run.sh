#!/bin/sh
# run.sh - run every test suite and print one summary line "N passed, N failed".
# Suites print "ok - ...", "not ok - ..." or "skip - ..." lines; a suite that
# exits non-zero without printing a failure counts as one failure.
B=${B:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export B ROOT
log=$(mktemp /tmp/scopehold-check.XXXXXX)
crashed=0
run_suite() {
	echo "== ${*##*/}"
	tmp=$(mktemp)
	"$@" >"$tmp" 2>&1
	rc=$?
	cat "$tmp"; cat "$tmp" >>"$log"
	if [ "$rc" -ne 0 ] && ! grep -q '^not ok' "$tmp"; then
		echo "not ok - suite $1 exited $rc without reporting a failure" | tee -a "$log"
	fi
	rm -f "$tmp"
}
for t in "$ROOT/$B"/tests/*_test; do
	[ -x "$t" ] && run_suite "$t"
done
for s in cli cli-pg store-pg e2e-pg pg-outage freshness-pg pg-operator trust manpages install deb e2e freshness agent controls who notify completion hostile exebind dos ident secrets docs-examples policy-code faults fuzz-regress valgrind bench-smoke display seam; do
	[ -f "$ROOT/tests/$s.sh" ] && run_suite bash "$ROOT/tests/$s.sh"
done
passed=$(grep -c '^ok - ' "$log")
failed=$(grep -c '^not ok - ' "$log")
skipped=$(grep -c '^skip - ' "$log")
rm -f "$log"
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]

#!/bin/bash
# run.sh - `make fuzz`: build every libFuzzer target into build-fuzz/ and run
# each for FUZZ_SECONDS (default 60) on its seed corpus.
#
#   FUZZ_SECONDS=N      time per target
#   FUZZ_ONLY="a b"     only these targets (config names time cli audit dotenv)
#   FUZZ_JOBS=N         targets run side by side (default 1)
#
# New inputs go to build-fuzz/corpus/TARGET (kept between runs, read again
# next time) so the repository's tests/fuzz/corpus/ is not flooded; copy an
# input worth keeping there by hand. A crash, leak, sanitizer report or
# broken invariant stops that target and leaves the input in
# build-fuzz/crashes/TARGET/; the script then exits 1 and names the file.
# Turn it into a regression test by copying it to tests/fuzz/regress/TARGET/.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/fuzz/build.sh"
OUT=$ROOT/build-fuzz
SECONDS_EACH=${FUZZ_SECONDS:-60}
fuzz_need_clang || exit 1
# libFuzzer's runtime comes from libclang-rt-14-dev, not from clang itself.
probe=$(mktemp -d /tmp/scopehold-fuzz-probe.XXXXXX)
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);
int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' >"$probe/p.c"
if ! clang -fsanitize=fuzzer,address,undefined -o "$probe/p" "$probe/p.c" 2>/dev/null; then
	rm -rf "$probe"
	echo "the libFuzzer runtime is missing: install the Debian package 'libclang-rt-14-dev'"
	exit 1
fi
rm -rf "$probe"

echo "building fuzz targets into build-fuzz/"
fuzz_build fuzzer "$OUT" || { echo "fuzz build failed"; exit 1; }

targets=${FUZZ_ONLY:-$FUZZ_TARGETS}
failed=0
run_one() {
	local t=$1 log="$OUT/logs/$1.log" crashdir="$OUT/crashes/$1/"
	mkdir -p "$OUT/corpus/$t" "$crashdir" "$OUT/logs"
	# The CLI target's messages are noise: -close_fd_mask=2 silences the
	# program's stderr while libFuzzer and the sanitizers still report.
	local extra=""
	[ "$t" = cli ] && extra="-close_fd_mask=2"
	"$OUT/${t}_fuzz" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -timeout=10 \
		-artifact_prefix="$crashdir" $extra \
		"$OUT/corpus/$t" "$ROOT/tests/fuzz/corpus/$t" >"$log" 2>&1
	local rc=$?
	local last execs cov
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	cov=$(printf '%s\n' "$last" | sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\).*/cov \1, features \2, corpus \3/p')
	if [ $rc -ne 0 ]; then
		echo "FAIL $t (exit $rc): $(grep -m1 -E 'ERROR:|SUMMARY:|invariant broken' "$log")"
		grep -E "Test unit written to" "$log" | sed 's/^.*Test unit written to/  crash file:/'
		echo "  log: $log"
		echo "  reproduce: $OUT/${t}_fuzz CRASH_FILE"
		return 1
	fi
	echo "ok   $t: ${execs:-?} exec/s, $cov (${SECONDS_EACH}s)"
	return 0
}

jobs_max=${FUZZ_JOBS:-1}
pids=()
for t in $targets; do
	if [ "$jobs_max" -le 1 ]; then
		run_one "$t" || failed=1
	else
		run_one "$t" &
		pids+=($!)
		if [ ${#pids[@]} -ge "$jobs_max" ]; then wait "${pids[0]}" || failed=1; pids=("${pids[@]:1}"); fi
	fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
if [ $failed -ne 0 ]; then
	echo "fuzzing found a problem: see the crash files above"
	exit 1
fi
echo "all fuzz targets ran clean"

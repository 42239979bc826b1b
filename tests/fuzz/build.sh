#!/bin/bash
# build.sh - build the ScopeHold fuzz targets (sourced by tests/fuzz/run.sh and
# tests/fuzz-regress.sh; also runnable: tests/fuzz/build.sh fuzzer|standalone OUTDIR).
#
#   fuzzer      clang -fsanitize=fuzzer,address,undefined: libFuzzer binaries
#   standalone  tests/fuzz/standalone.c as main, -fsanitize=address,undefined:
#               replays files, for `make check`
#
# The project's sources are compiled straight from the tree into OUTDIR/obj
# (tools/*.c with -Dmain=shadm_main for the CLI target) and only recompiled
# when the source or a header is newer, so a second run is fast.
# Sets FUZZ_TARGETS (names) and, after fuzz_build, binaries OUTDIR/NAME_fuzz.

FUZZ_TARGETS="config names time cli audit dotenv"

# Sources each target links besides its own tests/fuzz/NAME_fuzz.c.
fuzz_srcs() {
	case $1 in
	names|time) echo policy/*.c ;;
	config|audit) echo store/*.c policy/*.c ;;
	cli) echo tools/*.c store/*.c policy/*.c dotenv/*.c ;;
	dotenv) echo dotenv/*.c ;;
	esac
}

fuzz_need_clang() {
	if ! command -v clang >/dev/null 2>&1; then
		echo "clang is missing: install the Debian packages 'clang libclang-rt-14-dev'"
		return 1
	fi
	return 0
}

# fuzz_compile SRC OBJ EXTRA...: compile when OBJ is missing or older than SRC or a header.
fuzz_compile() {
	local src=$1 obj=$2; shift 2
	if [ -f "$obj" ] && [ "$obj" -nt "$src" ] && [ "$obj" -nt "$FUZZ_NEWEST_H" ]; then
		return 0
	fi
	mkdir -p "$(dirname "$obj")"
	$FUZZ_CC $FUZZ_CFLAGS "$@" -c -o "$obj" "$src"
}

# fuzz_build MODE OUTDIR: build every target; prints errors, returns non-zero on failure.
fuzz_build() {
	local mode=$1 out=$2 san t src obj objs fail=0 jobs=()
	cd "$ROOT" || return 1
	FUZZ_CC=${FUZZ_CC:-clang}
	case $mode in
	fuzzer) san="-fsanitize=fuzzer-no-link,address,undefined"; FUZZ_LINK="-fsanitize=fuzzer,address,undefined" ;;
	standalone) san="-fsanitize=address,undefined"; FUZZ_LINK="-fsanitize=address,undefined" ;;
	*) echo "fuzz_build: mode fuzzer|standalone"; return 2 ;;
	esac
	FUZZ_CFLAGS="-std=c11 -D_GNU_SOURCE -I. -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all \
		$san $(pkg-config --cflags libsodium sqlite3 inih jansson libpq)"
	FUZZ_LIBS="$(pkg-config --libs libsodium sqlite3 inih jansson libpq) -lpthread"
	# the newest header decides whether objects are stale
	FUZZ_NEWEST_H=$(ls -t store/*.h policy/*.h tools/*.h dotenv/*.h tests/fuzz/*.h | head -1)
	mkdir -p "$out/obj"

	# every distinct source once (two at a time: the machine has 2 cores)
	local all="tests/fuzz/standalone.c"
	for t in $FUZZ_TARGETS; do all="$all tests/fuzz/${t}_fuzz.c $(fuzz_srcs "$t")"; done
	all=$(printf '%s\n' $all | sort -u)
	for src in $all; do
		[ "$mode" = fuzzer ] && [ "$src" = tests/fuzz/standalone.c ] && continue
		obj="$out/obj/${src%.c}.o"
		case $src in tools/*) extra="-Dmain=shadm_main" ;; *) extra="" ;; esac
		fuzz_compile "$src" "$obj" $extra &
		jobs+=($!)
		if [ ${#jobs[@]} -ge 2 ]; then wait "${jobs[0]}" || fail=1; jobs=("${jobs[@]:1}"); fi
	done
	for j in "${jobs[@]}"; do wait "$j" || fail=1; done
	[ $fail -eq 0 ] || return 1

	for t in $FUZZ_TARGETS; do
		objs="$out/obj/tests/fuzz/${t}_fuzz.o"
		for src in $(fuzz_srcs "$t"); do objs="$objs $out/obj/${src%.c}.o"; done
		[ "$mode" = standalone ] && objs="$objs $out/obj/tests/fuzz/standalone.o"
		local newer=0 o
		for o in $objs; do [ "$o" -nt "$out/${t}_fuzz" ] && newer=1; done
		[ -x "$out/${t}_fuzz" ] && [ $newer -eq 0 ] && continue
		$FUZZ_CC $FUZZ_LINK -o "$out/${t}_fuzz" $objs $FUZZ_LIBS || return 1
	done
	return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
	fuzz_need_clang || exit 1
	fuzz_build "${1:-fuzzer}" "${2:-$ROOT/build-fuzz}"
fi

#!/bin/bash
# fuzz-regress.sh - replay every fuzz seed (tests/fuzz/corpus/TARGET/) and every
# input that once found a bug (tests/fuzz/regress/TARGET/) through the fuzz
# targets, built without libFuzzer but with AddressSanitizer and UBSan
# (tests/fuzz/standalone.c is their main). One line per file:
# "ok - fuzz regress TARGET FILE". Run by `make check`; skipped without clang.
ROOT=${ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/fuzz/build.sh"
OUT=$ROOT/build-fuzz/standalone

if ! command -v clang >/dev/null 2>&1; then
	skip "fuzz regress: clang is missing (install the Debian packages clang libclang-rt-14-dev)"
	exit 0
fi
if ! blog=$(fuzz_build standalone "$OUT" 2>&1); then
	not_ok "fuzz regress: build the targets"
	printf '%s\n' "$blog" | sed 's/^/#   /' | tail -20
	exit 1
fi

t_tmpdir
for t in $FUZZ_TARGETS; do
	for f in "$ROOT/tests/fuzz/corpus/$t"/* "$ROOT/tests/fuzz/regress/$t"/*; do
		[ -f "$f" ] || continue
		name=${f#"$ROOT/tests/fuzz/"}
		# absolute path: some targets change directory before reading
		if "$OUT/${t}_fuzz" "$f" >/dev/null 2>"$T_TMP/err"; then
			ok "fuzz regress $t $name"
		else
			not_ok "fuzz regress $t $name"
			grep -E 'ERROR|SUMMARY|runtime error|invariant broken' "$T_TMP/err" | head -5 | sed 's/^/#   /'
		fi
	done
done
rm -rf "$T_TMP"
t_finish

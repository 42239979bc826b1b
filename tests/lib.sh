# lib.sh - shared helpers for the shell test suites (sourced, POSIX sh + bash).
# Each check prints "ok - WHAT" or "not ok - WHAT"; tests/run.sh counts them.
B=${B:-build}
ROOT=${ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
SHADM="$ROOT/$B/shadm"
SCOPEHOLDFS="$ROOT/$B/scopeholdfs"
T_FAILED=0

ok()     { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; T_FAILED=$((T_FAILED + 1)); }
skip()   { echo "skip - $*"; }

# check WHAT CMD...: passes when CMD exits 0
check() { what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }

# expect_eq WHAT GOT WANT
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"
	else not_ok "$1"; printf '#   got:  %s\n#   want: %s\n' "$2" "$3"; fi
}

# expect_run WHAT WANT_STATUS WANT_STDERR CMD...: runs CMD, checks exit status and
# the exact stderr (WANT_STDERR "-" skips the stderr comparison). Leaves stdout in $OUT.
expect_run() {
	what=$1 want_rc=$2 want_err=$3; shift 3
	OUT=$("$@" 2>"$T_TMP/stderr"); rc=$?
	ERR=$(cat "$T_TMP/stderr")
	if [ "$rc" -ne "$want_rc" ]; then
		not_ok "$what"; printf '#   exit %s, want %s; stderr: %s\n' "$rc" "$want_rc" "$ERR"; return
	fi
	if [ "$want_err" != "-" ] && [ "$ERR" != "$want_err" ]; then
		not_ok "$what"; printf '#   stderr: %s\n#   want:   %s\n' "$ERR" "$want_err"; return
	fi
	ok "$what"
}

t_tmpdir() { T_TMP=$(mktemp -d /tmp/scopehold-test.XXXXXX); chmod 0755 "$T_TMP"; }
t_finish() { [ "$T_FAILED" -eq 0 ]; }

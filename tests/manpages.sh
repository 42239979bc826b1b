#!/bin/bash
# manpages.sh - every manual page in docs/ renders without a single warning,
# through groff with all warnings on (-ww) and through man(1) the way
# lintian checks pages; its .TH names the page and section its file name
# says; and scopehold.ini(5) documents every key store/config.c accepts,
# with the default config_defaults() sets.
. "$(dirname "$0")/lib.sh"
t_tmpdir
trap 'rm -rf "$T_TMP"' EXIT
for tool in groff man; do
	if ! command -v $tool >/dev/null; then not_ok "manpages: $tool is missing (run 'make deps')"; exit 1; fi
done
n=0
for page in "$ROOT"/docs/*.[1-9]; do
	name=$(basename "$page")
	n=$((n + 1))
	groff -man -ww -z "$page" >"$T_TMP/out" 2>&1
	expect_eq "$name: groff -man -ww renders it without warnings" "$?:$(cat "$T_TMP/out")" "0:"
	LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" \
		>/dev/null 2>"$T_TMP/out"
	expect_eq "$name: man --warnings renders it without warnings" "$?:$(cat "$T_TMP/out")" "0:"
	th=$(awk '$1 == ".TH" { print tolower($2) "." $3; exit }' "$page")
	expect_eq "$name: .TH names this page and section" "$th" "$name"
done
expect_ge() { if [ "$2" -ge "$3" ]; then ok "$1"; else not_ok "$1"; echo "#   got $2, want >= $3"; fi; }
expect_ge "manpages: the pages were found" "$n" 3

# every key of store/config.c, with its default, is in scopehold.ini(5)
P5=$ROOT/docs/scopehold.ini.5
keys=$(grep -o 'strcmp(key, "[a-z_]*")' "$ROOT/store/config.c" | sed 's/.*"\(.*\)".*/\1/' | sort)
expect_eq "config.c accepts the keys this test knows" "$(echo $keys)" \
	"admin_timeout backend cache coalesce_denials conninfo deny_burst durability exec host keep key_file max_exe_hash_bytes max_open_per_uid max_value_bytes mountpoint path state_dir syslog timeout timeout workspace"
for k in $keys; do
	check "scopehold.ini(5) documents '$k'" grep -q "^\.B[IR]* $k\b" "$P5"
done
sections=$(grep -o 'strcmp(section, "[a-z]*")' "$ROOT/store/config.c" | sed 's/.*"\(.*\)".*/\1/' | sort | tr '\n' ' ')
expect_eq "scopehold.ini(5) has a section per config section" \
	"$(grep -o '^\.SH "\[[a-z]*\]"' "$P5" | sed 's/.*\[\(.*\)\].*/\1/' | sort | tr '\n' ' ')" "$sections"
# the defaults, as config_defaults() writes them and as the page states them
defaults=$(sed -n '/^static void config_defaults/,/^}/p' "$ROOT/store/config.c")
for d in /var/lib/scopehold/store.db /etc/scopehold/master.key /run/scopehold; do
	case $defaults in *"\"$d\""*) ;; *) not_ok "config_defaults() still sets $d"; continue;; esac
	check "scopehold.ini(5) gives the default $d" grep -q "^\.IR $d \.$" "$P5"
done
expect_eq "config_defaults(): 64 KiB, crash, none, 60 s" \
	"$(echo "$defaults" | grep -c -e 'STORE_DEFAULT_MAX_VALUE;' -e 'STORE_DURABLE_CRASH;' -e 'STORE_CACHE_NONE;' -e 'deny_coalesce_seconds = 60;')" "4"
expect_eq "STORE_DEFAULT_MAX_VALUE is 64 KiB" "$(grep -c 'define STORE_DEFAULT_MAX_VALUE (64 \* 1024)' "$ROOT/store/store.h")" "1"
expect_eq "config_defaults(): max_open_per_uid 256" \
	"$(echo "$defaults" | grep -c 'STORE_DEFAULT_MAX_OPEN_PER_UID;') $(grep -c 'define STORE_DEFAULT_MAX_OPEN_PER_UID 256$' "$ROOT/store/store.h")" "1 1"
for d in "65536" "crash" "none" "60s" "default" "256"; do
	check "scopehold.ini(5) gives the default $d" grep -q "^\.BR\? $d \?\.\?$" "$P5"
done
# the EXAMPLES block (every key at its default) is a configuration shadm accepts
sed -n '/^\.SH EXAMPLES/,/^\.SH/p' "$P5" | sed -n '/^\.nf/,/^\.fi/p' | sed '1d;$d' >"$T_TMP/example.ini"
sed -i "s|/var/lib/scopehold/|$T_TMP/|; s|/etc/scopehold/|$T_TMP/|" "$T_TMP/example.ini"
expect_run "the page's example configuration parses (shadm init with it)" 0 - \
	"$SHADM" -c "$T_TMP/example.ini" init
t_finish

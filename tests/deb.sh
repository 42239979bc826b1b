#!/bin/bash
# deb.sh - `make deb` builds $B/scopehold_VERSION_ARCH.deb offline; its
# control data (name, version, architecture, Depends on the real library
# packages, the conffile, maintainer scripts) and its contents (paths,
# modes, gzipped manual pages, copyright and changelog) are checked with
# dpkg-deb, and lintian must report no error. Installing it changes the
# host, so that is tests/deb-install.sh, run by .ci/run.
. "$(dirname "$0")/lib.sh"
t_tmpdir
trap 'rm -rf "$T_TMP"' EXIT
for tool in make dpkg-deb dpkg-shlibdeps lintian; do
	if ! command -v $tool >/dev/null; then not_ok "deb: $tool is missing (run 'make deps')"; exit 1; fi
done
SAN=$([ "$B" = build-asan ] && echo 1)
VERSION=$(sed -n 's/^#define FS_VERSION "\(.*\)"/\1/p' "$ROOT/fs/fs.h")
ARCH=$(dpkg --print-architecture)
DEB=$ROOT/$B/scopehold_${VERSION}_${ARCH}.deb
rm -f "$DEB"
if make -s --no-print-directory -C "$ROOT" SANITIZE=$SAN deb >"$T_TMP/make.log" 2>&1 && [ -f "$DEB" ]; then
	ok "make deb builds $B/$(basename "$DEB")"
else
	not_ok "make deb builds $B/$(basename "$DEB")"; sed 's/^/#   /' "$T_TMP/make.log" | tail -20; exit 1
fi
expect_eq "make deb prints nothing but its result" "$(cat "$T_TMP/make.log")" "  DEB     $B/$(basename "$DEB")"

field() { dpkg-deb --field "$DEB" "$1"; }
expect_eq "Package, Version, Architecture" "$(field Package) $(field Version) $(field Architecture)" \
	"scopehold $VERSION $ARCH"
deps=$(field Depends | tr ',' '\n' | sed 's/^ *//; s/ (.*//' | LC_ALL=C sort | tr '\n' ' ')
# the packages that ship the libraries the built programs name as NEEDED
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
shipped=$(for so in $(readelf -d "$ROOT/$B/shadm" "$ROOT/$B/scopeholdfs" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u); do
	dpkg -S "*/$MA/$so" 2>/dev/null | cut -d: -f1 | head -n 1
done | LC_ALL=C sort -u | tr '\n' ' ')
expect_eq "Depends is exactly the packages owning the NEEDED libraries, plus fuse3" "$deps" \
	"$(echo fuse3 $shipped | tr ' ' '\n' | LC_ALL=C sort | tr '\n' ' ')"
if [ "$B" != build-asan ]; then
	expect_eq "Depends: the runtime library packages of Debian 12" "$deps" \
		"fuse3 libc6 libfuse3-3 libinih1 libjansson4 libpq5 libsodium23 libsqlite3-0 "
fi
check "Depends carries versions from dpkg-shlibdeps (libc6 (>= ...))" sh -c "dpkg-deb --field '$DEB' Depends | grep -q 'libc6 (>= '"
expect_eq "Installed-Size is the unpacked size in KiB" \
	"$(field Installed-Size)" \
	"$(mkdir "$T_TMP/x" && dpkg-deb -x "$DEB" "$T_TMP/x" && du -sk "$T_TMP/x" | cut -f1)"
dpkg-deb --ctrl-tarfile "$DEB" | tar -t | sed 's|^\./||' | grep -v '^$' | LC_ALL=C sort >"$T_TMP/ctrl"
expect_eq "control members" "$(tr '\n' ' ' <"$T_TMP/ctrl")" "conffiles control md5sums postinst postrm prerm "
expect_eq "conffiles: the example configuration" "$(dpkg-deb -I "$DEB" conffiles)" "/etc/scopehold/scopehold.ini.example"
expect_eq "postrm knows the md5sum of the default it may remove" \
	"$(dpkg-deb -I "$DEB" postrm | grep -c "$(md5sum <"$ROOT/scopehold.ini.example" | cut -d' ' -f1)")" "1"

dpkg-deb --contents "$DEB" | awk '{ sub(/^\./, "", $6); print $1, $2, $6 }' | LC_ALL=C sort -k3 >"$T_TMP/contents"
want=$(LC_ALL=C sort -k3 <<EOF2
drwxr-xr-x root/root /
drwxr-xr-x root/root /etc/
drwxr-xr-x root/root /etc/scopehold/
-rw-r--r-- root/root /etc/scopehold/scopehold.ini.example
drwxr-xr-x root/root /lib/
drwxr-xr-x root/root /lib/systemd/
drwxr-xr-x root/root /lib/systemd/system/
-rw-r--r-- root/root /lib/systemd/system/scopeholdfs.service
drwxr-xr-x root/root /usr/
drwxr-xr-x root/root /usr/bin/
-rwxr-xr-x root/root /usr/bin/scopehold
-rwxr-xr-x root/root /usr/bin/scopeholdfs
-rwxr-xr-x root/root /usr/bin/shadm
drwxr-xr-x root/root /usr/share/
drwxr-xr-x root/root /usr/share/bash-completion/
drwxr-xr-x root/root /usr/share/bash-completion/completions/
-rw-r--r-- root/root /usr/share/bash-completion/completions/scopehold
-rw-r--r-- root/root /usr/share/bash-completion/completions/shadm
drwxr-xr-x root/root /usr/share/doc/
drwxr-xr-x root/root /usr/share/doc/scopehold/
-rw-r--r-- root/root /usr/share/doc/scopehold/changelog.gz
-rw-r--r-- root/root /usr/share/doc/scopehold/copyright
drwxr-xr-x root/root /usr/share/man/
drwxr-xr-x root/root /usr/share/man/man1/
-rw-r--r-- root/root /usr/share/man/man1/scopehold.1.gz
-rw-r--r-- root/root /usr/share/man/man1/scopeholdfs.1.gz
-rw-r--r-- root/root /usr/share/man/man1/shadm.1.gz
drwxr-xr-x root/root /usr/share/man/man5/
-rw-r--r-- root/root /usr/share/man/man5/scopehold-policy.5.gz
-rw-r--r-- root/root /usr/share/man/man5/scopehold.ini.5.gz
EOF2
)
expect_eq "contents: every path, owner and mode" "$(cat "$T_TMP/contents")" "$want"
X=$T_TMP/x
expect_eq "the packaged unit runs /usr/bin/scopeholdfs with /etc/scopehold/scopehold.ini" \
	"$(grep '^ExecStart=' "$X/lib/systemd/system/scopeholdfs.service")" \
	"ExecStart=/usr/bin/scopeholdfs -f -c /etc/scopehold/scopehold.ini"
check "the manual pages are gzip data that man reads" \
	sh -c "for p in '$X'/usr/share/man/man*/*.gz; do gzip -t \"\$p\" && man -l \"\$p\" >/dev/null 2>&1 || exit 1; done"
check "the packaged programs are stripped" sh -c "! file '$X'/usr/bin/* | grep -q 'not stripped'"
expect_eq "the packaged shadm runs" "$("$X/usr/bin/shadm" --version)" "shadm $VERSION"

lintian --allow-root -I "$DEB" >"$T_TMP/lintian" 2>&1
sed 's/^/# lintian: /' "$T_TMP/lintian"
expect_eq "lintian reports no error" "$(grep -c '^E:' "$T_TMP/lintian")" "0"
t_finish

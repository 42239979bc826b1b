#!/bin/sh
# build.sh - turn the staged `make install` tree in $B/deb/debian/scopehold
# (made by `make deb`) into $B/scopehold_VERSION_ARCH.deb with dpkg-deb:
# stripped programs, gzipped manual pages and changelog, the copyright
# file, Depends from dpkg-shlibdeps (the library packages the programs
# really link, at the versions their symbols need) plus fuse3, the example
# configuration as a conffile (postinst makes scopehold.ini from it) and
# md5sums. No network, no root needed (--root-owner-group).
set -eu
B=${B:-build}
VERSION=${VERSION:?VERSION is not set}
HERE=$(cd "$(dirname "$0")" && pwd)
DEB=$B/deb
ROOTDIR=$DEB/debian/scopehold
ARCH=$(dpkg --print-architecture)
OUT=$B/scopehold_${VERSION}_${ARCH}.deb
DOC=$ROOTDIR/usr/share/doc/scopehold

[ -x "$ROOTDIR/usr/bin/shadm" ] || { echo "build.sh: run 'make deb', not this script" >&2; exit 1; }
head -n 1 "$HERE/changelog" | grep -q "^scopehold ($VERSION) " ||
	{ echo "build.sh: packaging/deb/changelog does not start with version $VERSION" >&2; exit 1; }

# the configuration itself is made by postinst, only where none exists
rm -f "$ROOTDIR/etc/scopehold/scopehold.ini"
for f in "$ROOTDIR"/usr/bin/*; do
	strip --remove-section=.comment --remove-section=.note --strip-unneeded "$f"
done
find "$ROOTDIR/usr/share/man" -type f -name '*.[0-9]' -exec gzip -9n {} +
install -d "$DOC"
install -m 0644 "$HERE/copyright" "$DOC/copyright"
gzip -9nc "$HERE/changelog" >"$DOC/changelog.gz"
chmod 0644 "$DOC/changelog.gz"

install -d -m 0755 "$ROOTDIR/DEBIAN"
# dpkg-shlibdeps wants to run at the top of a source tree with debian/control
printf 'Source: scopehold\n\nPackage: scopehold\nArchitecture: any\n' >"$DEB/debian/control"
depends=$(cd "$DEB" && dpkg-shlibdeps -O $(for f in debian/scopehold/usr/bin/*; do echo "-e$f"; done) |
	sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "build.sh: dpkg-shlibdeps found no libraries" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$ROOTDIR" | cut -f1)
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@SIZE@|$size|" \
	-e "s|@DEPENDS@|$depends, fuse3|" "$HERE/control.in" >"$ROOTDIR/DEBIAN/control"
install -m 0644 "$HERE/conffiles" "$ROOTDIR/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$HERE/$s" "$ROOTDIR/DEBIAN/$s"; done
default_md5=$(md5sum <"$ROOTDIR/etc/scopehold/scopehold.ini.example" | cut -d' ' -f1)
sed -i "s|@DEFAULT_MD5@|$default_md5|" "$ROOTDIR/DEBIAN/postrm"
(cd "$ROOTDIR" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -print |
	sed 's|^\./||' | LC_ALL=C sort | xargs md5sum) >"$ROOTDIR/DEBIAN/md5sums"
chmod 0644 "$ROOTDIR/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$ROOTDIR" "$OUT" >/dev/null
echo "  DEB     $OUT"

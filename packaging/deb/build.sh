#!/usr/bin/env bash
# Builds the Debian package of the tsdb extension, named and laid out like Debian's own PHP extension packages:
#   DISTDIR/php8.2-tsdb_VERSION-REVISION_ARCH.deb
#
# usage: packaging/deb/build.sh SO [DISTDIR]
#   SO       the extension (target/release/libtsdb.so, or the dist/tsdb-*.so of ./build.sh package); the copy in
#            the package is stripped here as dh_strip does (debug information stays in target/)
#   DISTDIR  where the .deb is written (default: dist/ of this checkout); created if missing
# Prints the .deb's path as the only line on stdout; progress and errors go to stderr. Needs no root.
#
# What the package holds:
#   EXTDIR/tsdb.so                              EXTDIR = `php-config8.2 --extension-dir` (/usr/lib/php/20220829)
#   /etc/php/8.2/mods-available/tsdb.ini        conffile: `; priority=20`, extension=tsdb.so and every tsdb.*
#                                               setting with its default, commented out (read from the .so itself)
#   /usr/share/doc/php8.2-tsdb/                 copyright, changelog.Debian.gz, configuration.md.gz
#   /usr/share/lintian/overrides/php8.2-tsdb    the two tags that do not apply (lintian-overrides here)
#   postinst/prerm/postrm                       enable for every SAPI (cli, fpm, ...) on configure, disable on
#                                               remove, forget on purge: php-common's php_invoke, as Debian's own
#                                               php8.2-* packages (an admin's `phpdismod tsdb` is respected)
#   triggers                                    PHP-FPM (and Apache's mod_php) restart when the package changes
#
# Environment (all optional):
#   PHP_CONFIG         php-config of the PHP the .so was built for (default: php-config8.2, else php-config)
#   DEB_REVISION       Debian revision (default 1)
#   DEB_MAINTAINER     "Name <email>" (default: $DEBFULLNAME <$DEBEMAIL>, else the last commit's author)
#   SOURCE_DATE_EPOCH  time of the files and of the changelog entry (default: the last commit's time), so the same
#                      .so gives the same .deb
# Tools: dpkg-deb and dpkg-shlibdeps (dpkg-dev), strip (binutils), gzip; cargo only for the list of linked crates in
# the copyright file.
set -euo pipefail

die() { echo "packaging/deb/build.sh: $*" >&2; exit 1; }

(($# >= 1 && $# <= 2)) || die "usage: packaging/deb/build.sh SO [DISTDIR]"
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SO=$(realpath -e "$1") || die "no such file: $1"
DISTDIR=${2:-$ROOT/dist}
mkdir -p "$DISTDIR"
DISTDIR=$(realpath "$DISTDIR")

for tool in dpkg-deb dpkg-shlibdeps strip gzip; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install dpkg-dev binutils gzip)"
done

if [[ -z "${PHP_CONFIG:-}" ]]; then
  PHP_CONFIG=$(command -v php-config8.2 || command -v php-config) || die "php-config not found (apt-get install php8.2-dev)"
fi
PHP_BIN=$("$PHP_CONFIG" --php-binary)
PHP_VER=$("$PHP_CONFIG" --version | cut -d. -f1,2)
PHPAPI=$("$PHP_CONFIG" --phpapi)
EXTDIR=$("$PHP_CONFIG" --extension-dir)
PKG=php$PHP_VER-tsdb

# Loading it proves the .so matches this PHP (version, NTS/ZTS); -n: the system's own ini (which may already
# enable a tsdb) stays out of it.
UPSTREAM=$("$PHP_BIN" -n -d "extension=$SO" -r 'echo tsdb_version();' 2>&1) ||
  die "$SO does not load in $PHP_BIN: $UPSTREAM"
[[ $UPSTREAM =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "tsdb_version() gave '$UPSTREAM', not a version"
# A semver pre-release (0.2.0-rc.1) sorts before its release in Debian only as 0.2.0~rc.1.
VERSION=${UPSTREAM/-/\~}-${DEB_REVISION:-1}
ARCH=$(dpkg --print-architecture)

if [[ -z "${DEB_MAINTAINER:-}" ]]; then
  if [[ -n "${DEBEMAIL:-}" ]]; then
    DEB_MAINTAINER="${DEBFULLNAME:-logstore_tsdb maintainers} <$DEBEMAIL>"
  else
    DEB_MAINTAINER=$(git -C "$ROOT" log -1 --format='%an <%ae>' 2>/dev/null) || true
    [[ -n "$DEB_MAINTAINER" ]] || DEB_MAINTAINER="logstore_tsdb maintainers <root@localhost>"
  fi
fi
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
  SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null) || SOURCE_DATE_EPOCH=$(date +%s)
fi
export SOURCE_DATE_EPOCH
COMMIT=$(git -C "$ROOT" describe --always --dirty 2>/dev/null) || COMMIT=unknown

WORK=$(mktemp -d /tmp/tsdb-deb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# dpkg-shlibdeps wants the staging tree where debhelper puts it: debian/PACKAGE under a source tree.
STAGE=$WORK/debian/$PKG
DOC=$STAGE/usr/share/doc/$PKG
INIDIR=/etc/php/$PHP_VER/mods-available
umask 022
mkdir -p "$STAGE/DEBIAN" "$STAGE$EXTDIR" "$STAGE$INIDIR" "$DOC"

# --- the extension: stripped as dh_strip does for a shared library
strip --remove-section=.comment --remove-section=.note --strip-unneeded -o "$STAGE$EXTDIR/tsdb.so" "$SO"
chmod 0644 "$STAGE$EXTDIR/tsdb.so"

# --- mods-available/tsdb.ini: the defaults come from the extension's own ini entries, in the order of
# docs/configuration.md's table, so the file can never list a setting the .so does not have.
{
  cat <<EOF
; tsdb: Moodle's event log to a time series database ($PKG).
; The package enables it for every PHP $PHP_VER SAPI (CLI, PHP-FPM, ...): \`phpdismod -v $PHP_VER tsdb\` disables it
; and an upgrade keeps it disabled.
; priority=20
extension=tsdb.so

; Every tsdb.* setting with its default. Uncomment one to change it for every PHP process (CLI and PHP-FPM); a
; PHP-FPM pool can override it with php_value[tsdb.KEY]. Reference: /usr/share/doc/$PKG/configuration.md.gz
; Your changes are kept across upgrades. A password or token here? Let only root and the web server read the file:
; chown root:www-data tsdb.ini && chmod 640 tsdb.ini
EOF
  # shellcheck disable=SC2016 # PHP code: its $ are PHP's
  "$PHP_BIN" -n -d "extension=$SO" -r '
    $ini = ini_get_all("tsdb", false);
    $doc = @file_get_contents($argv[1]);
    preg_match_all("/^\| `([a-z_0-9]+)` \|/m", (string) $doc, $m);
    $keys = array_values(array_filter($m[1], fn($k) => isset($ini["tsdb.$k"])));
    $rest = array_diff(array_map(fn($k) => substr($k, 5), array_keys($ini)), $keys);
    sort($rest);
    foreach (array_merge($keys, $rest) as $k) {
        $v = (string) $ini["tsdb.$k"];
        if (strpbrk($v, "\"\\\$\n") !== false) { fwrite(STDERR, "tsdb.$k: default not writable in an ini file\n"); exit(1); }
        echo ";tsdb.$k = ", preg_match("/^[0-9]+$/", $v) ? $v : "\"$v\"", "\n";
    }' "$ROOT/docs/configuration.md"
} >"$STAGE$INIDIR/tsdb.ini"

# --- documentation
gzip -9n -c "$ROOT/docs/configuration.md" >"$DOC/configuration.md.gz"
printf '%s (%s) bookworm; urgency=medium\n\n  * tsdb %s for PHP %s (API %s), built from %s.\n\n -- %s  %s\n' \
  "$PKG" "$VERSION" "$UPSTREAM" "$PHP_VER" "$PHPAPI" "$COMMIT" "$DEB_MAINTAINER" \
  "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")" | gzip -9n >"$DOC/changelog.Debian.gz"

# The .so links the Rust crates below statically: their licenses travel with it.
crates=""
if command -v cargo >/dev/null; then
  crates=$(cd "$ROOT" && cargo tree --offline --locked -e normal,no-proc-macro --prefix none --format '{p}: {l}' 2>/dev/null |
    grep -v '^tsdb v' | sed -e 's/ (\*)$//' -e 's/ v\([0-9]\)/ \1/' | sort -u) || crates=""
fi
YEAR=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y)
{
  cat <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: tsdb (logstore_tsdb)
Comment: The tsdb PHP extension of logstore_tsdb, built from commit $COMMIT.
EOF
  if [[ -n "$crates" ]]; then
    echo " ."
    echo " tsdb.so statically links these Rust crates (name version: license, as each crate declares it):"
    while IFS= read -r line; do echo " $line"; done <<<"$crates"
  else
    echo " ."
    echo " tsdb.so statically links the Rust crates listed in the source's Cargo.lock, under their own licenses."
  fi
  cat <<EOF

Files: *
Copyright: $YEAR the logstore_tsdb authors
License: GPL-3+

License: GPL-3+
 This program is free software: you can redistribute it and/or modify it under the terms of the GNU General
 Public License as published by the Free Software Foundation, either version 3 of the License, or (at your
 option) any later version.
 .
 This program is distributed in the hope that it will be useful, but WITHOUT ANY WARRANTY; without even the
 implied warranty of MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE. See the GNU General Public License for
 more details.
 .
 On Debian systems, the complete text of the GNU General Public License version 3 can be found in
 /usr/share/common-licenses/GPL-3.
EOF
} >"$DOC/copyright"

mkdir -p "$STAGE/usr/share/lintian/overrides"
cp "$HERE/lintian-overrides" "$STAGE/usr/share/lintian/overrides/$PKG"

# --- maintainer scripts, from templates in this directory (@PHP_VER@ substituted)
for s in postinst prerm postrm; do
  sed -e "s/@PHP_VER@/$PHP_VER/g" "$HERE/$s" >"$STAGE/DEBIAN/$s"
  chmod 0755 "$STAGE/DEBIAN/$s"
done
for sapi in apache2 apache2filter fpm; do
  echo "activate-noawait /etc/php/$PHP_VER/$sapi/conf.d"
done >"$STAGE/DEBIAN/triggers"
echo "$INIDIR/tsdb.ini" >"$STAGE/DEBIAN/conffiles"

# --- control
SHLIBS=$(cd "$WORK" && printf 'Source: tsdb\n\nPackage: %s\nArchitecture: any\n' "$PKG" >debian/control &&
  dpkg-shlibdeps -O -e"$STAGE$EXTDIR/tsdb.so" 2>"$WORK/shlibdeps.err" | sed -n 's/^shlibs:Depends=//p') ||
  die "dpkg-shlibdeps failed: $(cat "$WORK/shlibdeps.err")"
rm -f "$WORK/debian/control"
# Installed-Size as dpkg-gencontrol counts it: KiB per file rounded up, one per directory or link.
SIZE=$(cd "$STAGE" && find . -path ./DEBIAN -prune -o \( -type f -printf '%s\n' \) -o -printf '1024\n' |
  awk '{ s += int(($1 + 1023) / 1024) } END { print s }')
cat >"$STAGE/DEBIAN/control" <<EOF
Package: $PKG
Version: $VERSION
Architecture: $ARCH
Maintainer: $DEB_MAINTAINER
Installed-Size: $SIZE
Depends: php-common (>= 2:69~), php$PHP_VER-common, phpapi-$PHPAPI${SHLIBS:+, $SHLIBS}
Provides: php-tsdb
Section: php
Priority: optional
Description: Moodle event log to a time series database - PHP extension
 The tsdb extension takes Moodle log events from the logstore_tsdb plugin and
 writes them in batches, from a background thread of each PHP process, to
 InfluxDB (1.x, 2.x, 3.x), PostgreSQL/TimescaleDB or a local file. A request
 never waits for the database: outages are retried and spooled to disk.
 .
 This package holds the extension for PHP $PHP_VER and enables it for every
 SAPI (CLI, PHP-FPM, ...). The Moodle plugin is installed in Moodle.
EOF

(cd "$STAGE" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
  xargs -0 md5sum) >"$STAGE/DEBIAN/md5sums"

find "$STAGE" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
DEB=$DISTDIR/${PKG}_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >&2
echo "$DEB"

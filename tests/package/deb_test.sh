#!/usr/bin/env bash
# The Debian package of the extension, installed into this machine's own PHP and taken out again.
#
# usage (as root): tests/package/deb_test.sh SO [EVENTS]
#   SO      the extension to package (target/release/libtsdb.so or dist/tsdb-*.so)
#   EVENTS  how many events go through the file sink (default 1000)
#
# Builds php8.2-tsdb_*.deb from SO with packaging/deb/build.sh into a temp dir, then:
#   dpkg -i      php -m (CLI) and php-fpm8.2 -m (FPM) list tsdb, tsdb_version() is the built version, the conf.d
#                links point at mods-available/tsdb.ini, EVENTS events logged to the file sink are read back
#   an admin edits the ini, dpkg -r
#                tsdb gone from both SAPIs (no startup warning either), no conf.d link, tsdb.so gone, the ini kept
#                with the edit (a conffile)
#   dpkg -i      over the removed package: enabled again, the edited ini kept
#   dpkg -P      no path of `dpkg -L` (taken while installed) left that was not there before, no conf.d link, no
#                phpenmod state: every tsdb path under /etc/php, /var/lib/php/modules, the extension dir and
#                /usr/share is as before, and every conf.d of /etc/php lists what it listed before
# The package is installed system-wide only for those seconds (other PHP processes of the machine would load it):
# an EXIT trap purges it whatever happens. A php8.2-tsdb installed before the test is purged first; a tsdb installed
# by hand (not from the package) makes the test refuse to run, since the package would overwrite it.
# Exit status: 0 when every check passed; otherwise 1 with the reason on stderr.
# shellcheck disable=SC2016 # the single-quoted $ are PHP code's
set -euo pipefail
cd "$(dirname "$0")/../.."

die() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

(($# >= 1 && $# <= 2)) || die "usage: tests/package/deb_test.sh SO [EVENTS]"
SO=$(realpath -e "$1") || die "no such file: $1"
EVENTS=${2:-1000}
[[ $EVENTS =~ ^[1-9][0-9]*$ ]] || die "EVENTS must be a positive number, not '$EVENTS'"
((EUID == 0)) || die "must run as root (dpkg -i into the system's PHP)"
for tool in dpkg dpkg-deb dpkg-query; do command -v "$tool" >/dev/null || die "$tool not found"; done

# The system's configuration is what is under test: no scan dir or php.ini from the caller
# (./build.sh test may point PHP_INI_SCAN_DIR at a conf.d without tsdb).
unset PHP_INI_SCAN_DIR PHPRC
PHP_CONFIG=$(command -v php-config8.2 || command -v php-config) || die "php-config not found (php8.2-dev)"
PHP_VER=$("$PHP_CONFIG" --version | cut -d. -f1,2)
PHP=$("$PHP_CONFIG" --php-binary)
FPM=$(command -v "php-fpm$PHP_VER") || die "php-fpm$PHP_VER not found (php$PHP_VER-fpm)"
EXTDIR=$("$PHP_CONFIG" --extension-dir)
PKG=php$PHP_VER-tsdb
INI=/etc/php/$PHP_VER/mods-available/tsdb.ini

status() { dpkg-query -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null | tr -d ' ' || true; }
installed_any() { local s; s=$(status); [[ -n "$s" && "$s" != un && "$s" != pn ]]; }

TMP=$(mktemp -d /tmp/tsdb-deb-test.XXXXXX)
OWN_POLICY=""
cleanup() {
  local rc=$?
  # Nothing may stop the purge: no further signal, and no failed write (stdout/stderr gone) under set -e.
  trap '' HUP INT PIPE TERM
  set +e
  if installed_any; then
    echo "cleanup: purging $PKG (status $(status))" >&2
    dpkg -P "$PKG" >"$TMP/cleanup.log" 2>&1 </dev/null || { cat "$TMP/cleanup.log" >&2; rc=1; }
    installed_any && { echo "FAIL: cleanup could not purge $PKG: remove it by hand (dpkg -P $PKG)" >&2; rc=1; }
  fi
  [[ -n "$OWN_POLICY" ]] && rm -f /usr/sbin/policy-rc.d
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
# A signal (^C, kill, a closed stdout: `| head`) ends the script through the EXIT trap too.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# Run a dpkg command; its output only when it fails.
dpkg_run() {
  dpkg "$@" >"$TMP/dpkg.log" 2>&1 </dev/null || { cat "$TMP/dpkg.log" >&2; die "dpkg $* failed"; }
}

# Whether `WHAT -m` (php or php-fpm8.2, the system's configuration) lists tsdb; any warning printed while starting
# (a conf.d link to a missing tsdb.so, a module loaded twice) is a failure of its own.
loaded() {
  local what=$1 out
  out=$("$what" -m 2>&1) || die "$what -m failed: $out"
  if grep -qiE 'warning|error|unable to load|already loaded' <<<"$out"; then
    die "$what -m warns at startup: $(grep -iE 'warning|error|unable|already' <<<"$out" | head -3)"
  fi
  grep -qx tsdb <<<"$out"
}

# Every tsdb path the package or its scripts could touch, and every conf.d link of every SAPI.
snapshot() {
  {
    find /etc/php /var/lib/php/modules "$EXTDIR" /usr/share/doc /usr/share/lintian/overrides -name '*tsdb*' \
      -printf '%p -> %l\n' 2>/dev/null || true
    find /etc/php -path '*/conf.d/*' -printf '%p -> %l\n' 2>/dev/null || true
  } | LC_ALL=C sort
}

# --- start from a machine without the package
if installed_any; then
  echo "$PKG is already installed (status $(status)): purging it first"
  dpkg_run -P "$PKG"
fi
! loaded "$PHP" || die "the system's PHP already loads a tsdb not from $PKG ($("$PHP" --ini | grep -i tsdb || true)): remove it first (docs/install.md, Uninstalling)"
! loaded "$FPM" || die "the system's PHP-FPM already loads a tsdb not from $PKG: remove it first"
for f in "$EXTDIR/tsdb.so" "$INI"; do
  [[ ! -e "$f" ]] || die "$f exists and is not from $PKG (installed by hand?): the package would replace it; remove it first"
done
BEFORE=$(snapshot)

# A trigger makes php$PHP_VER-fpm restart the system's FPM service. This test must not start or restart the machine's
# services: without a policy-rc.d, one that denies is in place for the test's duration.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\n# tests/package/deb_test.sh, removed when it ends\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  OWN_POLICY=1
fi

# --- the package
BUILT=$("$PHP" -n -d "extension=$SO" -r 'echo tsdb_version();' 2>&1) || die "$SO does not load in $PHP: $BUILT"
DEB=$(packaging/deb/build.sh "$SO" "$TMP/dist" 2>"$TMP/build.log") || { cat "$TMP/build.log" >&2; die "packaging/deb/build.sh failed"; }
[[ -f "$DEB" ]] || die "packaging/deb/build.sh printed '$DEB', not a file"
[[ $(basename "$DEB") == "${PKG}_${BUILT/-/\~}-"*"_$(dpkg --print-architecture).deb" ]] || die "unexpected name $(basename "$DEB")"
DEPENDS=$(dpkg-deb -f "$DEB" Depends)
for dep in "phpapi-$("$PHP_CONFIG" --phpapi)" php-common; do
  grep -qE "(^|, )$dep( |,|$)" <<<"$DEPENDS" || die "Depends lacks $dep: $DEPENDS"
done
[[ $(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles) == "$INI" ]] || die "$INI is not the package's conffile"
CONTENTS=$(dpkg-deb --fsys-tarfile "$DEB" | tar -t | sed -e 's|^\./|/|' -e 's|/$||' -e '/^$/d')
for f in "$EXTDIR/tsdb.so" "$INI" "/usr/share/doc/$PKG/copyright" "/usr/share/doc/$PKG/changelog.Debian.gz"; do
  grep -qxF "$f" <<<"$CONTENTS" || die "the package lacks $f"
done
ok "built $(basename "$DEB") (tsdb $BUILT; Depends: $DEPENDS)"
# Which of the package's paths exist before it is installed (shared directories such as /usr/lib/php).
declare -A EXISTED=()
while IFS= read -r p; do
  [[ -e "$p" || -L "$p" ]] && EXISTED[$p]=1
done <<<"$CONTENTS"

# --- installed (the window starts: keep it short)
WINDOW_START=$(date +%s%N)
dpkg_run -i "$DEB"
[[ $(status) == ii ]] || die "status after dpkg -i: $(status)"
LISTED=$(dpkg -L "$PKG")
for sapi in cli fpm; do
  link=/etc/php/$PHP_VER/$sapi/conf.d/20-tsdb.ini
  [[ $(readlink "$link" 2>/dev/null) == "$INI" ]] || die "$link is not a link to $INI"
done
loaded "$PHP" || die "php -m does not list tsdb after dpkg -i"
loaded "$FPM" || die "php-fpm$PHP_VER -m does not list tsdb after dpkg -i"
v=$("$PHP" -r 'echo tsdb_version();' 2>&1) || die "tsdb_version() failed: $v"
[[ "$v" == "$BUILT" ]] || die "tsdb_version() is '$v', the built .so is '$BUILT'"
ok "dpkg -i: php -m and php-fpm$PHP_VER -m list tsdb, tsdb_version() = $v, conf.d links 20-tsdb.ini -> $INI"

# N events through the packaged extension to the file sink, read back by a PHP without it.
EV=$TMP/events.jsonl
res=$("$PHP" -d tsdb.backend=file -d tsdb.format=json -d "tsdb.path=$EV" -r '
  $n = (int) $argv[1];
  for ($i = 1; $i <= $n; $i++) {
      tsdb_log_event(["eventname" => "\\core\\event\\deb_test", "timecreated" => time(), "objectid" => $i,
          "component" => "core", "crud" => "r"]) or exit(2);
  }
  $left = tsdb_flush(10000);
  $s = tsdb_stats();
  echo "pending=$left written=$s[written] failed=$s[failed] dropped=$s[dropped] backend=$s[backend]";' "$EVENTS" 2>&1) ||
  die "logging $EVENTS events failed: $res"
[[ "$res" == "pending=0 written=$EVENTS failed=0 dropped=0 backend=file" ]] || die "after logging $EVENTS events: $res"
back=$("$PHP" -n -r '
  $ids = [];
  foreach (file($argv[1], FILE_IGNORE_NEW_LINES) as $line) {
      $e = json_decode($line, true, 512, JSON_THROW_ON_ERROR);
      if ($e["eventname"] !== "\\core\\event\\deb_test") { exit(3); }
      $ids[$e["objectid"]] = true;
  }
  echo count(file($argv[1])), " lines, ", count($ids), " distinct ids, ", min(array_keys($ids)), "..", max(array_keys($ids));' "$EV" 2>&1) ||
  die "reading $EV back failed: $back"
[[ "$back" == "$EVENTS lines, $EVENTS distinct ids, 1..$EVENTS" ]] || die "read back from $EV: $back (logged $EVENTS)"
ok "CLI with the packaged extension: $EVENTS events logged ($res), read back: $back"

# --- removed: an admin's edit of the ini survives
EDIT="; edited by tests/package/deb_test.sh"
echo "$EDIT" >>"$INI"
dpkg_run -r "$PKG"
[[ $(status) == rc ]] || die "status after dpkg -r: $(status) (expected rc: removed, config files kept)"
! loaded "$PHP" || die "php -m still lists tsdb after dpkg -r"
! loaded "$FPM" || die "php-fpm$PHP_VER -m still lists tsdb after dpkg -r"
links=$(find /etc/php -type l -lname "$INI")
[[ -z "$links" ]] || die "conf.d links left after dpkg -r: $links"
[[ ! -e "$EXTDIR/tsdb.so" ]] || die "$EXTDIR/tsdb.so left after dpkg -r"
grep -qxF "$EDIT" "$INI" 2>/dev/null || die "$INI (a conffile) was not kept with the admin's edit by dpkg -r"
dpkg-query -W -f='${Conffiles}\n' "$PKG" | grep -qF "$INI" || die "dpkg no longer lists $INI as a conffile of $PKG after dpkg -r"
ok "dpkg -r: tsdb gone from php -m and php-fpm$PHP_VER -m (no startup warning), no conf.d link, tsdb.so gone, $INI kept with the edit"

# --- installed again over the removed package: enabled again, the edit kept
dpkg_run -i "$DEB"
loaded "$PHP" || die "php -m does not list tsdb after dpkg -i over the removed package"
loaded "$FPM" || die "php-fpm$PHP_VER -m does not list tsdb after dpkg -i over the removed package"
grep -qxF "$EDIT" "$INI" || die "dpkg -i after dpkg -r replaced the admin's edited $INI"
ok "dpkg -i again: enabled for CLI and FPM again, the edited $INI kept"

# --- purged: nothing left
dpkg_run -P "$PKG"
WINDOW_MS=$((($(date +%s%N) - WINDOW_START) / 1000000))
installed_any && die "status after dpkg -P: $(status)"
left=()
while IFS= read -r p; do
  [[ "$p" == /. || -n "${EXISTED[$p]:-}" ]] && continue
  if [[ -e "$p" || -L "$p" ]]; then left+=("$p"); fi
done <<<"$LISTED"
((${#left[@]} == 0)) || die "left after dpkg -P: ${left[*]}"
[[ ! -e "$INI" ]] || die "$INI left after dpkg -P"
! loaded "$PHP" || die "php -m still lists tsdb after dpkg -P"
! loaded "$FPM" || die "php-fpm$PHP_VER -m still lists tsdb after dpkg -P"
AFTER=$(snapshot)
[[ "$AFTER" == "$BEFORE" ]] || die "after dpkg -P the machine differs from before: $(diff <(echo "$BEFORE") <(echo "$AFTER") | grep '^[<>]' | head -10)"
ok "dpkg -P: of the $(wc -l <<<"$LISTED") paths dpkg -L listed, only the ${#EXISTED[@]} directories that existed before remain; no conf.d link, no phpenmod state, every tsdb path and conf.d as before"
echo "the package was installed system-wide for $((WINDOW_MS / 1000)).$(printf %03d $((WINDOW_MS % 1000))) s in all"

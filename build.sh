#!/usr/bin/env bash
# Every task of the project: ./build.sh deps|build|test|demo|bench|bench-scale|package|fuzz
# Works as root on a fresh Debian 12 machine; installs what is missing from Debian's packages.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
SO="$ROOT/target/release/libtsdb.so"
PHP=${PHP:-php}

# The PHP extensions a Moodle site needs (intl, zip, gd, soap...), nginx and Chromium for the real-site tests,
# dpkg-dev for the Debian package.
DEB_PACKAGES=(php8.2-dev php8.2-cli php8.2-fpm php8.2-pgsql php8.2-curl php8.2-mbstring php8.2-xml php8.2-intl
  php8.2-zip php8.2-gd php8.2-soap libphp8.2-embed clang libclang-dev libfcgi-bin phpunit postgresql
  postgresql-server-dev-15 influxdb victoria-metrics apache2-utils nginx-light zip unzip curl python3 procps openssl
  valgrind dpkg-dev chromium chromium-driver python3-selenium)
# TimescaleDB and the Moodle trees are not Debian packages: they come from the workplace's shared folder, beside the
# checkout (../shared) or, for a clone elsewhere (CI clones into a temp dir), /work/shared. MOODLE_TREES overrides
# where the Moodle trees are.
SHARED=${TSDB_SHARED:-}
for d in "$ROOT/../shared" /work/shared; do
  [[ -z "$SHARED" && -d "$d" ]] && SHARED=$(cd "$d" && pwd)
done
export TSDB_SHARED=${SHARED:=$ROOT/../shared}

log() { printf '\n== %s\n' "$*"; }

deps() {
  local missing=()
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing from Debian: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Package scripts must not start system services: the tests start their own servers.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
  if [[ -x "$SHARED/timescaledb/install.sh" ]]; then
    "$SHARED/timescaledb/install.sh"
  else
    echo "NO TIMESCALEDB: $SHARED/timescaledb/install.sh is missing; the TimescaleDB tests will fail under" \
      "TSDB_TEST_REQUIRE_SERVERS=1" >&2
  fi
}

build() {
  log "building the extension (release)"
  cargo build --release --quiet
  echo "built $SO"
}

# Starts the named servers in RUN (a temp dir) and exports their TSDB_TEST_* variables.
RUN=""
start_servers() {
  RUN=$(mktemp -d /tmp/tsdb-run.XXXXXX)
  chmod 755 "$RUN"
  trap stop_servers EXIT
  for s in "$@"; do
    if [[ -f "tests/servers/$s.sh" ]]; then
      # shellcheck source=/dev/null
      source "tests/servers/$s.sh"
      "start_$s" "$RUN"
    else
      echo "tests/servers/$s.sh missing: $s not started" >&2
    fi
  done
}

stop_servers() {
  [[ -n "$RUN" ]] || return 0
  local pids=()
  [[ -f "$RUN/pids" ]] && mapfile -t pids <"$RUN/pids"
  ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null || true
  # Give servers time for a clean shutdown before forcing them.
  for _ in $(seq 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.2
  done
  ((${#pids[@]})) && kill -9 "${pids[@]}" 2>/dev/null || true
  rm -rf "$RUN"
  RUN=""
}

# Everything here loads the .so just built (`-d extension=`). A tsdb enabled system-wide (docs/install.md)
# would be loaded first and the build under test ignored: run PHP with the system's conf.d minus tsdb.
php_without_system_tsdb() {
  "$PHP" -r 'exit(extension_loaded("tsdb") ? 0 : 1);' 2>/dev/null || return 0
  local from dir f
  from=${PHP_INI_SCAN_DIR:-$("$PHP" -r 'echo PHP_CONFIG_FILE_SCAN_DIR;')}
  dir=$(mktemp -d /tmp/tsdb-php-conf.XXXXXX)
  for f in "$from"/*.ini; do
    grep -qE '^[[:space:]]*extension[[:space:]]*=.*tsdb' "$f" || ln -s "$f" "$dir/"
  done
  export PHP_INI_SCAN_DIR=$dir
  if "$PHP" -r 'exit(extension_loaded("tsdb") ? 0 : 1);' 2>/dev/null; then
    echo "tsdb is loaded by $("$PHP" -r 'echo php_ini_loaded_file();') itself: remove it there to test this build" >&2
    exit 1
  fi
  echo "tsdb is enabled system-wide; PHP runs here with $dir (the system's conf.d without it)"
}

PASSED=0
FAILED=0
FAILED_NAMES=()
TIMES=()
suite() {
  local name=$1 start=$SECONDS
  shift
  log "$name"
  if "$@"; then
    PASSED=$((PASSED + 1))
  else
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$name")
  fi
  TIMES+=("$(printf '%5d s  %s' $((SECONDS - start)) "$name")")
}

phpunit() {
  "$PHP" -d "extension=$SO" /usr/bin/phpunit --colors=never "$@"
}

# The plugin's tests in real Moodle sites of every version in ../shared/moodle (tests/servers/moodle.sh), one suite
# per version (the browser journey is one of their tests); then the Debian package.
moodle_suites() {
  local site release
  export TSDB_SO=$SO
  # shellcheck source=tests/servers/moodle.sh
  source tests/servers/moodle.sh
  log "installing the Moodle sites ($(moodle_versions | tr '\n' ' '))"
  local start=$SECONDS
  if ! start_moodle "$RUN"; then
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("Moodle sites (install)")
    return
  fi
  TIMES+=("$(printf '%5d s  %s' $((SECONDS - start)) "installing the Moodle sites")")
  for site in $TSDB_TEST_MOODLE_SITES; do
    release=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["release"])' "$site/site.json")
    suite "Moodle $release: the plugin in a real site (tests/moodle)" env TSDB_TEST_MOODLE_SITES="$site" tests/moodle/run.sh
  done
}

# A database server that crashes restarts with every connection cut: each test after it fails for that. Said plainly
# in the summary (PostgreSQL's own lines), and a failure even when no test noticed.
no_server_crash() {
  local crashes
  crashes=$(grep -rhsE "terminated by signal (4|6|7|8|11)\b|terminated by exception" --include=server.log "$RUN" | head -n 5)
  [[ -z $crashes ]] && return 0
  echo "a PostgreSQL server of the tests crashed (its log):"
  echo "$crashes"
  return 1
}

test_all() {
  deps
  php_without_system_tsdb
  export TSDB_TEST_REQUIRE_SERVERS=1
  start_servers postgres influxdb victoriametrics
  suite "cargo fmt --check" cargo fmt --check
  suite "cargo clippy" cargo clippy --quiet --all-targets -- -D warnings
  suite "cargo clippy (core only)" cargo clippy --quiet --no-default-features --all-targets -- -D warnings
  suite "rust unit and integration tests (real servers)" cargo test --no-default-features -- --test-threads=2
  build
  suite "extension tests (php/tests)" phpunit php/tests
  suite "PHP-FPM pool tests (tests/fpm)" phpunit tests/fpm
  suite "security tests (tests/security)" phpunit tests/security
  for d in tests/integration/*/; do
    [[ -d "$d" ]] && suite "integration: $d" phpunit "$d"
  done
  moodle_suites
  suite "Debian package (tests/package)" tests/package/deb_test.sh "$SO"
  suite "no PostgreSQL server crashed" no_server_crash
  log "summary"
  printf '%s\n' "${TIMES[@]}"
  echo "in all: $SECONDS s"
  ((FAILED)) && printf 'failed: %s\n' "${FAILED_NAMES[@]}"
  echo "suites: $PASSED passed, $FAILED failed"
  ((FAILED == 0))
}

demo() {
  deps
  php_without_system_tsdb
  build
  start_servers postgres influxdb
  "$PHP" -d "extension=$SO" php/demo/workload.php "$@"
}

bench() {
  deps
  php_without_system_tsdb
  build
  start_servers postgres influxdb
  local out="$ROOT/docs/BENCHMARKS.md" tmp
  tmp=$(mktemp)
  {
    "$PHP" -d "extension=$SO" php/bench/run.php
    echo
    "$PHP" -d "extension=$SO" php/bench/fpm.php
    echo
    echo "## Sinks against the servers' own ceilings"
    echo
    echo "InfluxDB 1.6.7, end to end through the extension vs the identical payload posted by curl in the same batches"
    echo "(tests/integration/influx/bench.php; JSON as printed), with the default configuration (\`gzip = auto\`: no"
    echo "compression for this server on loopback):"
    echo
    echo '```'
    "$PHP" -d "extension=$SO" tests/integration/influx/bench.php 100000 auto
    echo '```'
    echo
    echo "The same with gzip forced on (\`gzip = 1\`, as for a server on another machine; curl posts the same gzip level):"
    echo
    echo '```'
    "$PHP" -d "extension=$SO" tests/integration/influx/bench.php 100000 1
    echo '```'
    echo
    echo "PostgreSQL 15, the sink's binary COPY + ledger vs \`psql \\copy\` of the same rows into the same table, and the"
    echo "table size next to a logstore_standard_log-shaped table (tests/postgres_bench.rs):"
    echo
    echo '```'
    TSDB_BENCH_ROWS=${TSDB_BENCH_ROWS:-300000} cargo test --quiet --release --no-default-features --test postgres_bench -- \
      --ignored --nocapture 2>&1 | grep -v -E '^(running|test |$)' || true
    echo '```'
    echo
    echo "(Those sizes are of tests/postgres_bench.rs's own synthetic rows; the next section puts every store on one set of events.)"
    echo
    # Its own influxd (WAL snapshot and full compaction after seconds, tsi1); PostgreSQL from start_servers.
    "$PHP" -d "extension=$SO" php/bench/storage.php "${TSDB_BENCH_STORAGE_EVENTS:-300000}"
  } >"$tmp"
  mv "$tmp" "$out"
  cat "$out"
}

# The scale benchmark of issue 13 (php/bench/scale/README.md): ./build.sh bench-scale [EVENTS] [DAYS] [options]
# (default 200000 events over 30 days; php/bench/scale/run.sh --help) loads the same events into a real Moodle site's
# logstore_standard_log, TimescaleDB and InfluxDB 1.6.7 (its own servers, stopped at exit) and writes docs/SCALE.md.
bench_scale() {
  deps
  php_without_system_tsdb
  build
  TSDB_SO="$SO" PHP="$PHP" php/bench/scale/run.sh "$@"
}

package() {
  build
  local ver
  ver=$("$PHP" -d "extension=$SO" -r 'echo tsdb_version();')
  local api
  api=$("$PHP" -r 'echo PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION, PHP_ZTS ? "-zts" : "-nts";')
  mkdir -p dist
  # Debug info stays in target/ for crash reports; the shipped .so is stripped.
  strip --strip-debug -o "dist/tsdb-$ver-php$api.so" "$SO"
  packaging/deb/build.sh "dist/tsdb-$ver-php$api.so" dist
  rm -f "dist/logstore_tsdb-$ver.zip"
  # Moodle's plugin installer expects the plugin's folder (tsdb) at the top of the zip.
  local stage
  stage=$(mktemp -d)
  cp -r moodle-plugin "$stage/tsdb"
  (cd "$stage" && zip -qr "$ROOT/dist/logstore_tsdb-$ver.zip" tsdb -x '*.orig')
  rm -rf "$stage"
  ls -l dist
}

# Budgeted fuzzing of every target (fuzz/run.sh; cargo-fuzz with RUSTC_BOOTSTRAP on the stable toolchain).
fuzz() {
  deps
  fuzz/run.sh "${1:-60}"
}

case "${1:-}" in
  deps) deps ;;
  build) deps && build ;;
  test) test_all ;;
  demo) shift; demo "$@" ;;
  bench) bench ;;
  bench-scale) shift; bench_scale "$@" ;;
  package) package ;;
  fuzz) shift; fuzz "$@" ;;
  *) echo "usage: $0 deps|build|test|demo|bench|bench-scale|package|fuzz [seconds]" >&2; exit 2 ;;
esac

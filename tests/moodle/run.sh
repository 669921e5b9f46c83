#!/usr/bin/env bash
# Runs the logstore_tsdb harness suite with the real tsdb extension.
#
#   tests/moodle/run.sh [PATH_TO_libtsdb.so]      (default /work/main/target/release/libtsdb.so,
#                                                  or target/release/libtsdb.so of this checkout)
#
# PostgreSQL: uses TSDB_TEST_PG_HOST/PORT/USER/DB/PASSWORD when set; otherwise, when initdb is available, starts a
# throwaway cluster on 127.0.0.1 for the run (Moodle's $DB of the harness, privacy and retention tests) and stops it.
# Extra arguments after the .so path are passed to phpunit (e.g. --filter store_test).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

so="${1:-}"
[[ $# -gt 0 ]] && shift
if [[ -z "$so" ]]; then
    so=/work/main/target/release/libtsdb.so
    [[ -f "$so" ]] || so="$repo/target/release/libtsdb.so"
fi

phpunit_bin="$(command -v phpunit || true)"
if [[ -z "$phpunit_bin" ]]; then
    echo "run.sh: phpunit not found (Debian: apt-get install phpunit)" >&2
    exit 2
fi

if [[ ! -f "$so" ]]; then
    echo "run.sh: the tsdb extension was not found at $so (build it with: cargo build --release)" >&2
    exit 2
fi
so="$(cd "$(dirname "$so")" && pwd)/$(basename "$so")"
php_args=(-d "extension=$so")
export TSDB_SO="$so"
if ! php "${php_args[@]}" -r 'exit(function_exists("tsdb_log_event") ? 0 : 1);' ; then
    echo "run.sh: PHP could not load $so as the tsdb extension" >&2
    exit 2
fi
echo "run.sh: extension $(php "${php_args[@]}" -r 'echo tsdb_version();') from $so"

pgdir=""
influxrun=""
bindir=""
runuser_bin="$(command -v runuser || echo /usr/sbin/runuser)"
cleanup() {
    if [[ -n "$influxrun" ]]; then
        [[ -f "$influxrun/pids" ]] && kill $(cat "$influxrun/pids") 2>/dev/null || true
        sleep 0.5
        rm -rf "$influxrun"
    fi
    if [[ -n "$pgdir" ]]; then
        "$runuser_bin" -u postgres -- "$bindir/pg_ctl" -D "$pgdir/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$pgdir"
    fi
}
trap cleanup EXIT

if [[ -z "${TSDB_TEST_PG_HOST:-}" ]]; then
    initdb_bin="$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | head -1 || true)"
    if [[ -n "$initdb_bin" ]] && [[ -x "$runuser_bin" ]] && id postgres >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
        bindir="$(dirname "$(readlink -f "$initdb_bin")")"
        pgdir="$(mktemp -d /tmp/logstore-tsdb-pg.XXXXXX)"
        chown postgres "$pgdir"
        port=$(( 20000 + RANDOM % 20000 ))
        "$runuser_bin" -u postgres -- "$bindir/initdb" -D "$pgdir/data" -A trust -U postgres >/dev/null
        "$runuser_bin" -u postgres -- "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
            -o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
        export TSDB_TEST_PG_HOST=127.0.0.1 TSDB_TEST_PG_PORT=$port TSDB_TEST_PG_USER=postgres TSDB_TEST_PG_DB=postgres
        export TSDB_TEST_PG_PASSWORD=""
        echo "run.sh: started a throwaway PostgreSQL on 127.0.0.1:$port"
    else
        echo "run.sh: no PostgreSQL (set TSDB_TEST_PG_HOST...): the tests that need one will be SKIPPED" >&2
    fi
fi

# InfluxDB 1.x: TSDB_TEST_INFLUX_URL when set; otherwise the project's own helper starts one (Debian's influxd).
if [[ -z "${TSDB_TEST_INFLUX_URL:-}" ]] && command -v influxd >/dev/null && [[ -f "$repo/tests/servers/influxdb.sh" ]]; then
    influxrun="$(mktemp -d /tmp/logstore-tsdb-influx.XXXXXX)"
    # shellcheck source=/dev/null
    source "$repo/tests/servers/influxdb.sh"
    if ! start_influxdb "$influxrun"; then
        echo "run.sh: could not start InfluxDB: the InfluxDB tests will be SKIPPED" >&2
        unset TSDB_TEST_INFLUX_URL
    fi
fi

cd "$here"
php "${php_args[@]}" "$phpunit_bin" -c "$here/phpunit.xml" "$@"

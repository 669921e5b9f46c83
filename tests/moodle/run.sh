#!/usr/bin/env bash
# The plugin's tests, inside real Moodle sites (tests/servers/moodle.sh): every site of TSDB_TEST_MOODLE_SITES (both
# versions, 5.1.3 and 4.5.0, in ./build.sh test), one PHPUnit run per site.
#
#   tests/moodle/run.sh [PHPUNIT ARGS...]        e.g. --filter store_test
#
# The plugin of this checkout is copied into each site first (and the site upgraded when its version changed), so
# a run always tests the working tree. Without TSDB_TEST_MOODLE_SITES this script starts what it needs itself
# (PostgreSQL with TimescaleDB, InfluxDB 1.x and both sites, in a temp dir, stopped at exit): about two minutes
# more. `tests/moodle/dev-env.sh` starts them once for many runs.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export TSDB_SO=${TSDB_SO:-$repo/target/release/libtsdb.so}
[[ -f "$TSDB_SO" ]] || { echo "run.sh: no extension at $TSDB_SO (cargo build --release)" >&2; exit 2; }

if [[ -z "${TSDB_TEST_MOODLE_SITES:-}" ]]; then
    run=$(mktemp -d /tmp/tsdb-moodle-run.XXXXXX)
    chmod 755 "$run"
    # shellcheck source=tests/moodle/servers.sh
    source "$here/servers.sh"
    trap 'tsdb_moodle_stop_servers "$run"' EXIT
    tsdb_moodle_start_servers "$run"
fi

phpunit_bin=$(command -v phpunit) || { echo "run.sh: phpunit not found (apt-get install phpunit)" >&2; exit 2; }
rc=0
ran=0
for site in $TSDB_TEST_MOODLE_SITES; do
    mapfile -t phpargs < <(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["phpargs"]))' "$site/site.json")
    plugindir=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plugindir"])' "$site/site.json")
    coderoot=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["coderoot"])' "$site/site.json")
    release=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["release"])' "$site/site.json")
    # The working tree's plugin; an upgrade when its version.php moved on.
    changed=0 langchanged=0
    cmp -s "$repo/moodle-plugin/version.php" "$plugindir/version.php" || changed=1
    cmp -s "$repo/moodle-plugin/lang/en/logstore_tsdb.php" "$plugindir/lang/en/logstore_tsdb.php" || langchanged=1
    rm -rf "$plugindir" && cp -r "$repo/moodle-plugin" "$plugindir"
    if ((changed)); then
        (cd "$coderoot" && php "${phpargs[@]}" admin/cli/upgrade.php --non-interactive >"$site/upgrade.log" 2>&1) ||
            { echo "run.sh: admin/cli/upgrade.php failed on Moodle $release:" >&2; tail -n 30 "$site/upgrade.log" >&2; exit 1; }
    elif ((langchanged)); then
        # Moodle caches the language strings until an upgrade or a purge: without one, the site keeps the old file's.
        (cd "$coderoot" && php "${phpargs[@]}" admin/cli/purge_caches.php --lang) ||
            { echo "run.sh: admin/cli/purge_caches.php --lang failed on Moodle $release" >&2; exit 1; }
    fi
    echo "== Moodle $release ($site)"
    ran=$((ran + 1))
    if ! MOODLE_SITE=$site php "${phpargs[@]}" "$phpunit_bin" -c "$here/phpunit.xml" "$@"; then
        echo "FAILED on Moodle $release"
        rc=1
    fi
done
if ((ran == 0)); then
    echo "run.sh: NO MOODLE SITE to test in (TSDB_TEST_MOODLE_SITES is empty)" >&2
    exit 1
fi
exit $rc

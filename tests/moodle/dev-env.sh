#!/usr/bin/env bash
# Starts the servers of the real-Moodle tests once, for many runs of tests/moodle/run.sh while developing:
#
#   tests/moodle/dev-env.sh start [DIR]   (default /tmp/tsdb-dev; about two minutes) then: source DIR/env.sh
#   tests/moodle/dev-env.sh stop [DIR]
#
# ./build.sh test does not use this: it starts and stops its own servers.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${2:-/tmp/tsdb-dev}
# shellcheck source=tests/moodle/servers.sh
source "$here/servers.sh"
case "${1:-}" in
    start)
        [[ -e "$dir" ]] && { echo "$dir exists: stop it first ($0 stop $dir)" >&2; exit 1; }
        mkdir -p "$dir" && chmod 755 "$dir"
        export TSDB_SO=${TSDB_SO:-$(cd "$here/../.." && pwd)/target/release/libtsdb.so}
        tsdb_moodle_start_servers "$dir"
        echo "started; now: source $dir/env.sh"
        ;;
    stop) tsdb_moodle_stop_servers "$dir" ;;
    *) echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac

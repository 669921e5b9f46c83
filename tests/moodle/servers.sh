# shellcheck shell=bash
# Servers of the real-Moodle tests, for tests/moodle/run.sh and dev-env.sh: PostgreSQL (with TimescaleDB when
# installed), InfluxDB 1.x and the Moodle sites of every tree (tests/servers/*.sh), all under one directory.
_tsdb_moodle_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/servers/postgres.sh
source "$_tsdb_moodle_repo/tests/servers/postgres.sh"
# shellcheck source=tests/servers/influxdb.sh
source "$_tsdb_moodle_repo/tests/servers/influxdb.sh"
# shellcheck source=tests/servers/moodle.sh
source "$_tsdb_moodle_repo/tests/servers/moodle.sh"

# tsdb_moodle_start_servers DIR: starts them; their variables are exported and written to DIR/env.sh.
tsdb_moodle_start_servers() {
    local run=$1
    start_postgres "$run" && start_influxdb "$run" && start_moodle "$run" || return 1
    { env | grep -E '^(TSDB_TEST_|TSDB_SO=)' | sed -e "s/'/'\\\\''/g" -e "s/=\(.*\)/='\1'/" -e 's/^/export /'; } >"$run/env.sh"
}

# tsdb_moodle_stop_servers DIR: stops every server started in DIR and removes it.
tsdb_moodle_stop_servers() {
    local run=$1 pids=() i alive pid
    [[ -f "$run/pids" ]] && mapfile -t pids <"$run/pids"
    ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null || true
    for i in $(seq 50); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.2
    done
    ((${#pids[@]})) && kill -9 "${pids[@]}" 2>/dev/null || true
    rm -rf "$run"
}

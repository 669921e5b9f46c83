# shellcheck shell=bash
# Source this file, then `start_victoriametrics RUNDIR`: starts Debian's `victoria-metrics` on a free
# loopback port with its data in RUNDIR/victoriametrics, waits for /health, appends the pid to
# RUNDIR/pids and exports TSDB_TEST_VM_URL. Log: RUNDIR/victoriametrics/vm.log.

start_victoriametrics() {
    local rundir=${1:?usage: start_victoriametrics RUNDIR} dir port pid i
    mkdir -p "$rundir" || return 1
    rundir=$(cd "$rundir" && pwd) || return 1
    dir="$rundir/victoriametrics"
    mkdir -p "$dir/data"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()') || return 1
    victoria-metrics -httpListenAddr="127.0.0.1:$port" -storageDataPath="$dir/data" -retentionPeriod=100y \
        -search.disableCache >"$dir/vm.log" 2>&1 &
    pid=$!
    echo "$pid" >>"$rundir/pids"
    for i in $(seq 1 300); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ]; then
            export TSDB_TEST_VM_URL="http://127.0.0.1:$port"
            echo "victoriametrics: $TSDB_TEST_VM_URL" >&2
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "victoria-metrics did not become ready; log tail:" >&2
    tail -n 30 "$dir/vm.log" >&2
    return 1
}

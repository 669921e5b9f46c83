# shellcheck shell=bash
# Source this file, then `start_influxdb RUNDIR`: starts two InfluxDB 1.x servers (Debian's `influxd`)
# on free loopback ports, with all their data under RUNDIR:
#   - one without auth:           TSDB_TEST_INFLUX_URL
#   - one with auth-enabled=true: TSDB_TEST_INFLUX_AUTH_URL, with an admin user
#                                 TSDB_TEST_INFLUX_USER / TSDB_TEST_INFLUX_PASSWORD
# Each pid is appended to RUNDIR/pids (stop them with `kill $(cat RUNDIR/pids)`); logs go to
# RUNDIR/influxdb-*/influxd.log. Returns non-zero (and prints the log tail) if a server does not come up.

_tsdb_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# _tsdb_influxd_one DIR AUTH(true|false) -> prints the base URL on success
_tsdb_influxd_one() {
    local dir=$1 auth=$2 http rpc pid i
    mkdir -p "$dir/meta" "$dir/data" "$dir/wal"
    http=$(_tsdb_free_port) || return 1
    rpc=$(_tsdb_free_port) || return 1
    cat >"$dir/influxdb.conf" <<CONF
reporting-enabled = false
bind-address = "127.0.0.1:$rpc"

[meta]
  dir = "$dir/meta"
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  index-version = "inmem"
  query-log-enabled = false
  wal-fsync-delay = "0s"
  max-values-per-tag = 0

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:$http"
  auth-enabled = $auth
  log-enabled = false
  pprof-enabled = false
  max-body-size = 25000000

[continuous_queries]
  enabled = false
CONF
    influxd run -config "$dir/influxdb.conf" >"$dir/influxd.log" 2>&1 &
    pid=$!
    echo "$pid" >>"$RUNDIR_INFLUX/pids"
    for i in $(seq 1 300); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http/ping")" = 204 ]; then
            echo "http://127.0.0.1:$http"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "influxd in $dir did not become ready; log tail:" >&2
    tail -n 30 "$dir/influxd.log" >&2
    return 1
}

start_influxdb() {
    local rundir=${1:?usage: start_influxdb RUNDIR} url auth_url user password code
    mkdir -p "$rundir" || return 1
    RUNDIR_INFLUX=$(cd "$rundir" && pwd) || return 1
    url=$(_tsdb_influxd_one "$RUNDIR_INFLUX/influxdb-noauth" false) || return 1
    auth_url=$(_tsdb_influxd_one "$RUNDIR_INFLUX/influxdb-auth" true) || return 1
    user=tsdb_admin
    password="pw-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
    # With auth on and no user yet, InfluxDB accepts exactly this: creating the first admin.
    code=$(curl -s -o "$RUNDIR_INFLUX/influxdb-auth/create-user.json" -w '%{http_code}' -XPOST "$auth_url/query" \
        --data-urlencode "q=CREATE USER $user WITH PASSWORD '$password' WITH ALL PRIVILEGES")
    if [ "$code" != 200 ]; then
        echo "could not create the admin user on $auth_url (HTTP $code)" >&2
        return 1
    fi
    export TSDB_TEST_INFLUX_URL=$url
    export TSDB_TEST_INFLUX_AUTH_URL=$auth_url
    export TSDB_TEST_INFLUX_USER=$user
    export TSDB_TEST_INFLUX_PASSWORD=$password
    echo "influxdb: $TSDB_TEST_INFLUX_URL (no auth), $TSDB_TEST_INFLUX_AUTH_URL (auth, user $user)" >&2
}

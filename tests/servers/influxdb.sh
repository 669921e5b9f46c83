# shellcheck shell=bash
# Source this file, then `start_influxdb RUNDIR`: starts two InfluxDB 1.x servers (Debian's `influxd`)
# on free loopback ports, with all their data under RUNDIR:
#   - one without auth:           TSDB_TEST_INFLUX_URL
#   - one with auth-enabled=true: TSDB_TEST_INFLUX_AUTH_URL, with an admin user
#                                 TSDB_TEST_INFLUX_USER / TSDB_TEST_INFLUX_PASSWORD
#   - one serving https with a certificate of a test CA made here (needs `openssl`):
#                                 TSDB_TEST_INFLUX_HTTPS_URL, TSDB_TEST_INFLUX_CA_FILE (the CA, PEM)
# Each pid is appended to RUNDIR/pids (stop them with `kill $(cat RUNDIR/pids)`); logs go to
# RUNDIR/influxdb-*/influxd.log. Returns non-zero (and prints the log tail) if a server does not come up.

_tsdb_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# _tsdb_test_certs DIR: a test CA and a server certificate for 127.0.0.1/localhost signed by it.
_tsdb_test_certs() {
    local dir=$1
    mkdir -p "$dir"
    (
        cd "$dir" || exit 1
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem \
            -days 3650 -subj "/CN=tsdb test CA" &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key \
                -out server.csr -subj "/CN=127.0.0.1" &&
            printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=CA:FALSE' \
                'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >server.ext &&
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
                -days 3650 -extfile server.ext
    ) >"$dir/openssl.log" 2>&1
}

# _tsdb_influxd_one DIR AUTH(true|false) [CERTDIR] -> prints the base URL on success (https with CERTDIR)
_tsdb_influxd_one() {
    local dir=$1 auth=$2 certs=${3:-} http rpc pid i scheme=http https=false curl_tls=()
    mkdir -p "$dir/meta" "$dir/data" "$dir/wal"
    if [ -n "$certs" ]; then
        scheme=https
        https=true
        curl_tls=(--cacert "$certs/ca.pem")
    fi
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
  https-enabled = $https
  https-certificate = "$certs/server.pem"
  https-private-key = "$certs/server.key"

[continuous_queries]
  enabled = false
CONF
    influxd run -config "$dir/influxdb.conf" >"$dir/influxd.log" 2>&1 &
    pid=$!
    echo "$pid" >>"$RUNDIR_INFLUX/pids"
    for i in $(seq 1 300); do
        if [ "$(curl -s "${curl_tls[@]}" -o /dev/null -w '%{http_code}' "$scheme://127.0.0.1:$http/ping")" = 204 ]; then
            echo "$scheme://127.0.0.1:$http"
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
    if command -v openssl >/dev/null && _tsdb_test_certs "$RUNDIR_INFLUX/tls"; then
        export TSDB_TEST_INFLUX_HTTPS_URL
        TSDB_TEST_INFLUX_HTTPS_URL=$(_tsdb_influxd_one "$RUNDIR_INFLUX/influxdb-https" false "$RUNDIR_INFLUX/tls") || return 1
        export TSDB_TEST_INFLUX_CA_FILE="$RUNDIR_INFLUX/tls/ca.pem"
    else
        echo "openssl missing or failing (see $RUNDIR_INFLUX/tls/openssl.log): no https InfluxDB" >&2
    fi
    export TSDB_TEST_INFLUX_URL=$url
    export TSDB_TEST_INFLUX_AUTH_URL=$auth_url
    export TSDB_TEST_INFLUX_USER=$user
    export TSDB_TEST_INFLUX_PASSWORD=$password
    echo "influxdb: $TSDB_TEST_INFLUX_URL (no auth), $TSDB_TEST_INFLUX_AUTH_URL (auth, user $user)," \
        "${TSDB_TEST_INFLUX_HTTPS_URL:-no} (https)" >&2
}

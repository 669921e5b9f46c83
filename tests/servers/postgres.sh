# shellcheck shell=bash
# Source this file, then `start_postgres RUNDIR`: starts throwaway PostgreSQL 15 servers (Debian's
# binaries) on free 127.0.0.1 ports, with all their data under RUNDIR, and exports:
#   TSDB_TEST_PG_HOST, TSDB_TEST_PG_PORT   127.0.0.1 and the port (TCP, scram-sha-256 password auth,
#                                          ssl = off)
#   TSDB_TEST_PG_USER, TSDB_TEST_PG_PASSWORD  a role that owns TSDB_TEST_PG_DB (no superuser)
#   TSDB_TEST_PG_DB                        the test database
#   TSDB_TEST_PG_SUPERUSER_DSN             key=value DSN of the `postgres` superuser over the Unix
#                                          socket in RUNDIR/pg/sock (peer-free: trust on the socket only)
#   TSDB_TEST_PG_SOCKET                    that socket directory
#   TSDB_TEST_TIMESCALE_DSN                postgresql:// URL of a second database on the same server
#                                          (tsdb_test_ts, owned by the same role) with CREATE EXTENSION
#                                          timescaledb done: set only when TimescaleDB is installed for this
#                                          PostgreSQL (./build.sh deps builds it from ../shared/timescaledb).
#                                          The server preloads it and runs its background job scheduler, so
#                                          policies run as on a production site.
# and, when `openssl` works, a second server with ssl = on (data under RUNDIR/pg-tls), its
# certificate (SAN IP:127.0.0.1 only, no DNS name) signed by a test CA made here:
#   TSDB_TEST_PG_TLS_HOST, TSDB_TEST_PG_TLS_PORT, TSDB_TEST_PG_TLS_USER, TSDB_TEST_PG_TLS_PASSWORD,
#   TSDB_TEST_PG_TLS_DB, TSDB_TEST_PG_TLS_SOCKET, TSDB_TEST_PG_TLS_SUPERUSER_DSN   as above
#   TSDB_TEST_PG_TLS_CA_FILE               the CA that signed the server certificate (PEM)
#   TSDB_TEST_PG_TLS_WRONG_CA_FILE         another CA, that signed nothing the server shows (PEM)
# The TLS server accepts both TLS and plain connections (pg_hba `host`).
# TSDB_PG_EXTRA_CONF, when set, is appended to each server's postgresql.conf (e.g. "shared_buffers = 2GB").
# The servers run as the `postgres` OS user (initdb refuses root); their pids are appended to
# RUNDIR/pids. The server logs are RUNDIR/pg*/server.log. Returns non-zero (and prints the log tail)
# on failure.

_tsdb_pg_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

_tsdb_pg_bin() {
    local v
    for v in 15 16 17 14; do
        if [ -x "/usr/lib/postgresql/$v/bin/postgres" ]; then
            echo "/usr/lib/postgresql/$v/bin"
            return 0
        fi
    done
    echo "start_postgres: no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql-15)" >&2
    return 1
}

# _tsdb_pg_test_certs DIR: DIR/ca.pem (a test CA), DIR/server.pem + server.key (for IP 127.0.0.1
# only, signed by that CA) and DIR/wrong-ca.pem (an unrelated CA).
_tsdb_pg_test_certs() {
    local dir=$1
    mkdir -p "$dir" || return 1
    (
        cd "$dir" || exit 1
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem \
            -days 3650 -subj "/CN=tsdb test PostgreSQL CA" &&
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout wrong-ca.key \
                -out wrong-ca.pem -days 3650 -subj "/CN=tsdb test unrelated CA" &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key \
                -out server.csr -subj "/CN=127.0.0.1" &&
            printf '%s\n' 'subjectAltName=IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
                'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >server.ext &&
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
                -days 3650 -extfile server.ext
    ) >"$dir/openssl.log" 2>&1
}

# _tsdb_pg_one DIR [CERTDIR]: one server with its data under DIR, ssl = on with CERTDIR's
# server.pem/server.key. Sets _TSDB_PG_PORT and _TSDB_PG_PASSWORD; appends the pid to $_TSDB_PG_PIDS.
_tsdb_pg_one() {
    local dir=$1 certs=${2:-} bin port pid i user=tsdb_test db=tsdb_test password
    bin=$(_tsdb_pg_bin) || return 1
    rm -rf "$dir"
    mkdir -p "$dir/data" "$dir/sock" || return 1
    if [ -n "$certs" ]; then
        # PostgreSQL refuses a key readable by others than its owner.
        mkdir -p "$dir/tls" && cp "$certs/server.pem" "$certs/server.key" "$dir/tls/" || return 1
    fi
    chown -R postgres:postgres "$dir" || return 1
    chmod 700 "$dir/data"
    if [ -n "$certs" ]; then
        chmod 600 "$dir/tls/server.key"
    fi
    if ! runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1; then
        echo "initdb failed; log tail:" >&2
        tail -n 30 "$dir/initdb.log" >&2
        return 1
    fi
    port=$(_tsdb_pg_free_port) || return 1
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/sock'
max_connections = 200
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
log_line_prefix = '%m [%p] %u@%d '
CONF
    if _tsdb_pg_has_timescaledb "$bin"; then
        # TimescaleDB's scheduler runs the policy jobs (compression, retention, aggregate refresh) in background
        # workers: one per database with the extension, plus one per running job.
        cat >>"$dir/data/postgresql.conf" <<CONF
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
max_worker_processes = 64
timescaledb.max_background_workers = 48
CONF
    fi
    if [ -n "${TSDB_PG_EXTRA_CONF:-}" ]; then
        # Settings a caller adds (benchmarks: shared_buffers...); later lines of postgresql.conf win.
        printf '%s\n' "$TSDB_PG_EXTRA_CONF" >>"$dir/data/postgresql.conf"
    fi
    if [ -n "$certs" ]; then
        cat >>"$dir/data/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = '$dir/tls/server.pem'
ssl_key_file = '$dir/tls/server.key'
CONF
    fi
    runuser -u postgres -- "$bin/postgres" -D "$dir/data" >"$dir/server.log" 2>&1 &
    pid=$!
    echo "$pid" >>"$_TSDB_PG_PIDS"
    for i in $(seq 1 300); do
        if "$bin/pg_isready" -q -h "$dir/sock" -p "$port" -U postgres; then
            break
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "postgres exited during start; log tail:" >&2
            tail -n 30 "$dir/server.log" >&2
            return 1
        fi
        sleep 0.1
    done
    if ! "$bin/pg_isready" -q -h "$dir/sock" -p "$port" -U postgres; then
        echo "postgres did not become ready on port $port; log tail:" >&2
        tail -n 30 "$dir/server.log" >&2
        return 1
    fi
    password="pw-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
    # The password goes in on stdin (a script), never on a command line other processes can read.
    # It is hex, so it needs no escaping inside the SQL literal.
    if ! runuser -u postgres -- "$bin/psql" -X -q -v ON_ERROR_STOP=1 \
        -h "$dir/sock" -p "$port" -U postgres -d postgres >"$dir/setup.log" 2>&1 <<SQL; then
CREATE ROLE $user LOGIN PASSWORD '$password';
CREATE DATABASE $db OWNER $user;
SQL
        echo "could not create role/database; log:" >&2
        cat "$dir/setup.log" >&2
        return 1
    fi
    _TSDB_PG_PORT=$port
    _TSDB_PG_PASSWORD=$password
}

# _tsdb_pg_has_timescaledb BINDIR: TimescaleDB is installed for that PostgreSQL.
_tsdb_pg_has_timescaledb() {
    local share
    share=$("$1/pg_config" --sharedir 2>/dev/null || /usr/lib/postgresql/15/bin/pg_config --sharedir 2>/dev/null) || return 1
    ls "$share"/extension/timescaledb--*.sql >/dev/null 2>&1
}

start_postgres() {
    local rundir=${1:?usage: start_postgres RUNDIR} user=tsdb_test db=tsdb_test
    mkdir -p "$rundir" || return 1
    rundir=$(cd "$rundir" && pwd) || return 1
    # The postgres user must be able to reach the directory.
    chmod 755 "$rundir"
    _TSDB_PG_PIDS="$rundir/pids"
    _tsdb_pg_one "$rundir/pg" || return 1
    export TSDB_TEST_PG_HOST=127.0.0.1
    export TSDB_TEST_PG_PORT=$_TSDB_PG_PORT
    export TSDB_TEST_PG_USER=$user
    export TSDB_TEST_PG_PASSWORD=$_TSDB_PG_PASSWORD
    export TSDB_TEST_PG_DB=$db
    export TSDB_TEST_PG_SOCKET=$rundir/pg/sock
    export TSDB_TEST_PG_SUPERUSER_DSN="host=$rundir/pg/sock port=$_TSDB_PG_PORT user=postgres dbname=$db"
    echo "postgres: 127.0.0.1:$_TSDB_PG_PORT db $db user $user (superuser over $rundir/pg/sock)" >&2
    unset TSDB_TEST_TIMESCALE_DSN
    if _tsdb_pg_has_timescaledb "$(_tsdb_pg_bin)"; then
        if ! "$(_tsdb_pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$rundir/pg/sock" -p "$_TSDB_PG_PORT" -U postgres \
            -d postgres >"$rundir/pg/timescaledb.log" 2>&1 <<SQL; then
CREATE DATABASE ${db}_ts OWNER $user;
\\c ${db}_ts
CREATE EXTENSION timescaledb;
SQL
            echo "could not create the TimescaleDB database; log:" >&2
            cat "$rundir/pg/timescaledb.log" >&2
            return 1
        fi
        export TSDB_TEST_TIMESCALE_DSN="postgresql://$user:$_TSDB_PG_PASSWORD@127.0.0.1:$_TSDB_PG_PORT/${db}_ts"
        echo "timescaledb: $("$(_tsdb_pg_bin)/psql" -X -At -h "$rundir/pg/sock" -p "$_TSDB_PG_PORT" -U postgres \
            -d "${db}_ts" -c "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'") in database ${db}_ts" >&2
    else
        echo "TimescaleDB is not installed for this PostgreSQL (../shared/timescaledb/install.sh): no TSDB_TEST_TIMESCALE_DSN" >&2
    fi
    if command -v openssl >/dev/null && _tsdb_pg_test_certs "$rundir/pg-certs"; then
        _tsdb_pg_one "$rundir/pg-tls" "$rundir/pg-certs" || return 1
        export TSDB_TEST_PG_TLS_HOST=127.0.0.1
        export TSDB_TEST_PG_TLS_PORT=$_TSDB_PG_PORT
        export TSDB_TEST_PG_TLS_USER=$user
        export TSDB_TEST_PG_TLS_PASSWORD=$_TSDB_PG_PASSWORD
        export TSDB_TEST_PG_TLS_DB=$db
        export TSDB_TEST_PG_TLS_SOCKET=$rundir/pg-tls/sock
        export TSDB_TEST_PG_TLS_SUPERUSER_DSN="host=$rundir/pg-tls/sock port=$_TSDB_PG_PORT user=postgres dbname=$db"
        export TSDB_TEST_PG_TLS_CA_FILE=$rundir/pg-certs/ca.pem
        export TSDB_TEST_PG_TLS_WRONG_CA_FILE=$rundir/pg-certs/wrong-ca.pem
        echo "postgres (ssl = on): 127.0.0.1:$_TSDB_PG_PORT db $db user $user, CA $TSDB_TEST_PG_TLS_CA_FILE" >&2
    else
        echo "openssl missing or failing (see $rundir/pg-certs/openssl.log): no TLS PostgreSQL" >&2
    fi
}

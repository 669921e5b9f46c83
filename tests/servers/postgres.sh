# shellcheck shell=bash
# Source this file, then `start_postgres RUNDIR`: starts a throwaway PostgreSQL 15 (Debian's binaries)
# on a free 127.0.0.1 port with all its data under RUNDIR/pg, and exports:
#   TSDB_TEST_PG_HOST, TSDB_TEST_PG_PORT   127.0.0.1 and the port (TCP, scram-sha-256 password auth)
#   TSDB_TEST_PG_USER, TSDB_TEST_PG_PASSWORD  a role that owns TSDB_TEST_PG_DB (no superuser)
#   TSDB_TEST_PG_DB                        the test database
#   TSDB_TEST_PG_SUPERUSER_DSN             key=value DSN of the `postgres` superuser over the Unix
#                                          socket in RUNDIR/pg/sock (peer-free: trust on the socket only)
#   TSDB_TEST_PG_SOCKET                    that socket directory
# The server runs as the `postgres` OS user (initdb refuses root); its pid is appended to RUNDIR/pids.
# The server log is RUNDIR/pg/server.log. Returns non-zero (and prints the log tail) on failure.

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

start_postgres() {
    local rundir=${1:?usage: start_postgres RUNDIR} bin dir port pid i user password db
    bin=$(_tsdb_pg_bin) || return 1
    mkdir -p "$rundir" || return 1
    rundir=$(cd "$rundir" && pwd) || return 1
    dir="$rundir/pg"
    rm -rf "$dir"
    mkdir -p "$dir/data" "$dir/sock" || return 1
    # The postgres user must be able to reach the directory.
    chmod 755 "$rundir"
    chown -R postgres:postgres "$dir" || return 1
    chmod 700 "$dir/data"
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
    runuser -u postgres -- "$bin/postgres" -D "$dir/data" >"$dir/server.log" 2>&1 &
    pid=$!
    echo "$pid" >>"$rundir/pids"
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
    user=tsdb_test
    db=tsdb_test
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
    export TSDB_TEST_PG_HOST=127.0.0.1
    export TSDB_TEST_PG_PORT=$port
    export TSDB_TEST_PG_USER=$user
    export TSDB_TEST_PG_PASSWORD=$password
    export TSDB_TEST_PG_DB=$db
    export TSDB_TEST_PG_SOCKET=$dir/sock
    export TSDB_TEST_PG_SUPERUSER_DSN="host=$dir/sock port=$port user=postgres dbname=$db"
    echo "postgres: 127.0.0.1:$port db $db user $user (superuser over $dir/sock)" >&2
}

# shellcheck shell=bash
# Source this file, then `start_moodle RUNDIR [VERSION...]`: installs throwaway Moodle sites from the real Moodle
# code trees (moodle-VERSION.tar.gz in $MOODLE_TREES, default ../shared/moodle beside the repository) with the
# plugin of this checkout (moodle-plugin/) in the store folder, and serves each over HTTP (nginx + a PHP-FPM pool
# with the tsdb extension) on loopback. VERSION defaults to every tree found (5.1.3 and 4.5.0 here).
#
# Needs: start_postgres has run (TSDB_TEST_PG_* and TSDB_TEST_PG_SOCKET: each site gets its own database on that
# server, owned by the test role), TSDB_SO (the extension every PHP of the site loads).
#
# Exports TSDB_TEST_MOODLE_SITES: the site directories, space separated. Each holds
#   moodle/        the code root (config.php; 5.1: web root public/, 4.5: the code root itself)
#   data/          $CFG->dataroot
#   site.json      what tests need: version, release, coderoot, webroot, plugindir, dataroot, wwwroot, dbname,
#                  admin user and password, the PHP settings every PHP process of the site must get (phpargs)
#   install.log    Moodle's own output of the install
#   nginx/, fpm/   the web server's configuration and logs
# Pids go to RUNDIR/pids. Returns non-zero with Moodle's own error when a tree does not install.
#
# Every PHP process of a site (install, CLI scripts, FPM workers, the tests) runs with the same settings: Moodle's
# environment check wants max_input_vars >= 5000, and the site loads the extension under test.

_TSDB_MOODLE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

_tsdb_moodle_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# moodle_trees_dir: where moodle-VERSION.tar.gz are: $MOODLE_TREES, else the shared folder's moodle/ ($TSDB_SHARED,
# ../shared beside the checkout, or /work/shared for a clone elsewhere).
moodle_trees_dir() {
    local d
    if [[ -n "${MOODLE_TREES:-}" ]]; then
        echo "$MOODLE_TREES"
        return
    fi
    for d in "${TSDB_SHARED:-}" "$_TSDB_MOODLE_REPO/../shared" /work/shared; do
        [[ -n "$d" && -d "$d/moodle" ]] && { (cd "$d/moodle" && pwd); return; }
    done
    echo "$_TSDB_MOODLE_REPO/../shared/moodle"
}

# moodle_versions: the versions whose trees are there, newest first.
moodle_versions() {
    local dir f v
    dir=$(moodle_trees_dir)
    for f in "$dir"/moodle-*.tar.gz; do
        [[ -f "$f" ]] || continue
        v=${f##*/moodle-}
        echo "${v%.tar.gz}"
    done | sort -rV
}

# _tsdb_moodle_php_args: the -d settings of every PHP process of a site, one per line.
_tsdb_moodle_php_args() {
    printf '%s\n' -d "extension=${TSDB_SO:?TSDB_SO must name the extension}" -d max_input_vars=5000 -d memory_limit=1G
}

# _tsdb_moodle_install DIR VERSION PORT: unpacks, copies the plugin, installs the site and configures it.
_tsdb_moodle_install() {
    local dir=$1 version=$2 port=$3 tarball coderoot webroot plugindir db phpargs=() sql
    tarball="$(moodle_trees_dir)/moodle-$version.tar.gz"
    mapfile -t phpargs < <(_tsdb_moodle_php_args)
    mkdir -p "$dir/data" || return 1
    tar -xzf "$tarball" -C "$dir" || { echo "moodle $version: cannot unpack $tarball" >&2; return 1; }
    coderoot=$dir/moodle
    webroot=$coderoot
    [[ -d "$coderoot/public" ]] && webroot=$coderoot/public
    plugindir=$webroot/admin/tool/log/store/tsdb
    cp -r "$_TSDB_MOODLE_REPO/moodle-plugin" "$plugindir" || return 1
    db="moodle_${version//./_}"
    sql="CREATE DATABASE $db OWNER ${TSDB_TEST_PG_USER:?start_postgres first};"
    if ! psql -X -q -v ON_ERROR_STOP=1 -h "${TSDB_TEST_PG_SOCKET:?start_postgres first}" -p "$TSDB_TEST_PG_PORT" \
        -U postgres -d postgres -c "$sql" >"$dir/createdb.log" 2>&1; then
        echo "moodle $version: could not create database $db:" >&2
        cat "$dir/createdb.log" >&2
        return 1
    fi
    if ! (cd "$coderoot" && php "${phpargs[@]}" admin/cli/install.php --lang=en --wwwroot="http://127.0.0.1:$port" \
        --dataroot="$dir/data" --dbtype=pgsql --dbhost=127.0.0.1 --dbport="$TSDB_TEST_PG_PORT" --dbname="$db" \
        --dbuser="$TSDB_TEST_PG_USER" --dbpass="$TSDB_TEST_PG_PASSWORD" --prefix=mdl_ --fullname="logstore_tsdb test $version" \
        --shortname="tsdb$version" --adminuser=admin --adminpass='Admin123!' --adminemail=admin@example.com \
        --agree-license --non-interactive) >"$dir/install.log" 2>&1; then
        echo "moodle $version: install.php failed; Moodle said:" >&2
        tail -n 25 "$dir/install.log" >&2
        return 1
    fi
    # No mail server; every notice shown (a test fails on any PHP notice at DEBUG_DEVELOPER).
    sed -i "s|^require_once(__DIR__ . '/lib/setup.php');|\$CFG->noemailever = true;\n\$CFG->debug = (E_ALL);\n\$CFG->debugdisplay = 1;\n&|" \
        "$coderoot/config.php"
    grep -q 'noemailever' "$coderoot/config.php" || { echo "moodle $version: config.php not as expected" >&2; return 1; }
    (cd "$coderoot" && php "${phpargs[@]}" admin/cli/cfg.php --name=noreplyaddress --set=noreply@example.com &&
        php "${phpargs[@]}" admin/cli/cfg.php --component=tool_log --name=enabled_stores \
            --set=logstore_standard,logstore_tsdb) >>"$dir/install.log" 2>&1 ||
        { echo "moodle $version: configuring the site failed:" >&2; tail -n 20 "$dir/install.log" >&2; return 1; }
    python3 - "$dir" "$version" "$coderoot" "$webroot" "$plugindir" "$port" "$db" "${phpargs[@]}" <<'PY'
import json, re, sys
d, version, coderoot, webroot, plugindir, port, db, *phpargs = sys.argv[1:]
release = re.search(r"\$release\s*=\s*'([^']*)'", open(f"{webroot}/version.php").read()).group(1)
json.dump({"version": version, "release": release, "dir": d, "coderoot": coderoot, "webroot": webroot,
           "plugindir": plugindir, "dataroot": f"{d}/data", "wwwroot": f"http://127.0.0.1:{port}", "port": int(port),
           "dbname": db, "adminuser": "admin", "adminpass": "Admin123!", "phpargs": phpargs},
          open(f"{d}/site.json", "w"), indent=2)
PY
}

# _tsdb_moodle_serve DIR: nginx on the site's port in front of a PHP-FPM pool with the extension.
_tsdb_moodle_serve() {
    local dir=$1 port webroot fpmport fpm phpargs=() i is51=0
    port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$dir/site.json")
    webroot=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["webroot"])' "$dir/site.json")
    [[ "$webroot" == */public ]] && is51=1
    fpmport=$(_tsdb_moodle_free_port)
    mapfile -t phpargs < <(_tsdb_moodle_php_args)
    mkdir -p "$dir/fpm" "$dir/nginx/tmp"
    # Workers run as root, like the CLI of the tests, so both may write the dataroot's files.
    cat >"$dir/fpm/fpm.conf" <<CONF
[global]
pid = $dir/fpm/fpm.pid
error_log = $dir/fpm/fpm.log
daemonize = no
process_control_timeout = 20s

[moodle]
user = root
listen = 127.0.0.1:$fpmport
pm = static
pm.max_children = 4
pm.max_requests = 500
catch_workers_output = yes
php_admin_value[max_input_vars] = 5000
php_admin_value[memory_limit] = 512M
CONF
    fpm=$(command -v php-fpm8.2 || command -v php-fpm) || { echo "php-fpm is not installed" >&2; return 1; }
    "$fpm" -R "${phpargs[@]}" -y "$dir/fpm/fpm.conf" -F >"$dir/fpm/fpm.out" 2>&1 &
    echo "$!" >>"$_TSDB_MOODLE_PIDS"
    local router=""
    # 5.1: paths that are not files go to Moodle's router (r.php), as its nginx rule says.
    ((is51)) && router="location / { try_files \$uri \$uri/ /r.php\$is_args\$args; }"
    cat >"$dir/nginx/nginx.conf" <<CONF
daemon off;
worker_processes 2;
user root;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    access_log $dir/nginx/access.log;
    client_body_temp_path $dir/nginx/tmp/body;
    fastcgi_temp_path $dir/nginx/tmp/fastcgi;
    proxy_temp_path $dir/nginx/tmp/proxy;
    uwsgi_temp_path $dir/nginx/tmp/uwsgi;
    scgi_temp_path $dir/nginx/tmp/scgi;
    client_max_body_size 64m;
    server {
        listen 127.0.0.1:$port;
        root $webroot;
        index index.php index.html;
        # What Moodle's core_publicpaths check wants unreachable.
        location ~ (/\\.|/vendor/|/node_modules/|composer\\.(json|lock)|/db/install\\.xml|/tests/fixtures/|behat) { return 404; }
        location ~ [^/]\\.php(/|\$) {
            fastcgi_split_path_info ^(.+?\\.php)(/.*)\$;
            if (!-f \$document_root\$fastcgi_script_name) { return 404; }
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_param PATH_INFO \$fastcgi_path_info;
            fastcgi_read_timeout 300s;
            fastcgi_pass 127.0.0.1:$fpmport;
        }
        $router
    }
}
CONF
    /usr/sbin/nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" >"$dir/nginx/nginx.out" 2>&1 &
    echo "$!" >>"$_TSDB_MOODLE_PIDS"
    for i in $(seq 1 100); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port/login/index.php" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    echo "moodle site $dir does not answer on http://127.0.0.1:$port/login/index.php:" >&2
    tail -n 20 "$dir/nginx/error.log" "$dir/fpm/fpm.log" "$dir/fpm/fpm.out" >&2
    return 1
}

start_moodle() {
    local rundir=${1:?usage: start_moodle RUNDIR [VERSION...]} versions=() v dir sites=() pids=() rc=0
    shift
    if (($#)); then versions=("$@"); else mapfile -t versions < <(moodle_versions); fi
    if ((${#versions[@]} == 0)); then
        echo "NO MOODLE TREES: no moodle-*.tar.gz in $(moodle_trees_dir) (set MOODLE_TREES=DIR): the real-Moodle" \
            "tests cannot run" >&2
        return 1
    fi
    mkdir -p "$rundir" || return 1
    rundir=$(cd "$rundir" && pwd)
    _TSDB_MOODLE_PIDS="$rundir/pids"
    # The installs are independent; in parallel they take the time of one on two cores.
    for v in "${versions[@]}"; do
        dir="$rundir/moodle-$v"
        if [[ ! -f "$(moodle_trees_dir)/moodle-$v.tar.gz" ]]; then
            echo "NO MOODLE TREE for $v in $(moodle_trees_dir)" >&2
            return 1
        fi
        sites+=("$dir")
        _tsdb_moodle_install "$dir" "$v" "$(_tsdb_moodle_free_port)" &
        pids+=("$!")
    done
    for v in "${pids[@]}"; do wait "$v" || rc=1; done
    ((rc == 0)) || return 1
    for dir in "${sites[@]}"; do
        _tsdb_moodle_serve "$dir" || return 1
        echo "moodle: $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["release"], "at", s["wwwroot"], "in", s["coderoot"])' "$dir/site.json")" >&2
    done
    export TSDB_TEST_MOODLE_SITES="${sites[*]}"
}

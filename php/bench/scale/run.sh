#!/usr/bin/env bash
# The scale benchmark of issue 13 (./build.sh bench-scale [EVENTS] [DAYS]): a year (or three) of a large Moodle site's
# log, the same events in the site's logstore_standard_log, in the sink's TimescaleDB hypertable and in InfluxDB 1.6.7,
# and Moodle's own report queries, the analytics, the storage and the importer measured side by side in one run.
#
#   php/bench/scale/run.sh [options] [EVENTS] [DAYS]      (default 200000 events over 30 days ending yesterday, UTC)
#
# Options:
#   --merge FILE.json   also show how each figure grows between that run (e.g. 365 days) and this one (e.g. 1095 days)
#   --name NAME         results go to docs/scale/NAME.json (default: EVENTS-DAYS, e.g. 10000000-365); --json FILE elsewhere
#   --md FILE           the report (default docs/SCALE.md)
#   --users N --courses N   the generated site (default 5000 users, 100 courses)
#   --skip PHASE,...    leave phases out (analytics, influx, import, fresh): for development only, said in the report
#                       (SCALE_SHAPES=id-prefix,... in the environment: only those report shapes, development only)
#   --keep DIR          start the servers in DIR and leave them running (development); --reuse DIR runs in them again
#                       (the load is not repeated when DIR/results/load.json exists); --servers-only: start, then exit
#
# Needs: root on Debian 12 with ./build.sh deps done, TSDB_SO (default target/release/libtsdb.so; copied into the run
# directory so that a rebuild during the run changes nothing). Starts its own PostgreSQL (TimescaleDB preloaded,
# shared_buffers raised: SCALE_PG_CONF), InfluxDB and one Moodle 5.1.3 site in a temp dir and stops them all at exit.
# Fails (exit 1) only on wrong answers, lost or duplicated events, failed TimescaleDB jobs or a phase that crashed; it
# never judges a time. Phases: php/bench/scale/*.php (plain PHP on the servers) and site/*.php (inside the site).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
cd "$ROOT"
PHP=${PHP:-php}
# shellcheck source=tests/moodle/servers.sh
source tests/moodle/servers.sh

log() { printf '\n== [%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
skipped() { [[ ",$SKIP," == *",$1,"* ]]; }

parse_args() {
  EVENTS=200000 DAYS=30 MERGE="" NAME="" JSON="" MD="$ROOT/docs/SCALE.md" USERS=5000 COURSES=100 SKIP="" KEEP=""
  REUSE="" SERVERSONLY=0
  local positional=()
  while (($#)); do
    case "$1" in
      --merge) MERGE=$(realpath "$2"); shift 2 ;;
      --name) NAME=$2; shift 2 ;;
      --json) JSON=$(realpath -m "$2"); shift 2 ;;
      --md) MD=$(realpath -m "$2"); shift 2 ;;
      --users) USERS=$2; shift 2 ;;
      --courses) COURSES=$2; shift 2 ;;
      --skip) SKIP=$2; shift 2 ;;
      --keep) KEEP=$(realpath -m "$2"); shift 2 ;;
      --reuse) REUSE=$(realpath "$2"); shift 2 ;;
      --servers-only) SERVERSONLY=1; shift ;;
      -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
      -*) echo "unknown option $1" >&2; exit 2 ;;
      *) positional+=("$1"); shift ;;
    esac
  done
  ((${#positional[@]} > 0)) && EVENTS=${positional[0]}
  ((${#positional[@]} > 1)) && DAYS=${positional[1]}
  [[ "$EVENTS" =~ ^[0-9]+$ && "$DAYS" =~ ^[0-9]+$ && "$EVENTS" -gt 0 && "$DAYS" -gt 0 ]] ||
    { echo "EVENTS and DAYS must be positive integers" >&2; exit 2; }
  NAME=${NAME:-$EVENTS-$DAYS}
  JSON=${JSON:-$ROOT/docs/scale/$NAME.json}
  # One server holds both stores: memory for both, as a site would give its database server.
  export SCALE_PG_CONF=${SCALE_PG_CONF:-"shared_buffers = 2GB
effective_cache_size = 8GB
work_mem = 64MB
maintenance_work_mem = 512MB
max_wal_size = 8GB
checkpoint_timeout = 30min"}
}

# ---- servers --------------------------------------------------------------------------------------------------------
RUN=""
stop_all() {
  [[ -n "$RUN" && -d "$RUN" ]] || return 0
  # Without errexit: its last `kill -9` of servers already gone fails, which would end it before it removes RUN.
  (set +e; tsdb_moodle_stop_servers "$RUN")
  sleep 1
  if pgrep -f -- "$RUN/" >/dev/null; then
    echo "WARNING: processes of $RUN are still running: $(pgrep -f -- "$RUN/" | tr '\n' ' ')" >&2
  else
    rm -rf "$RUN"
  fi
}

start_all() {
  RUN=$1
  mkdir -p "$RUN" && chmod 755 "$RUN"
  cp "${TSDB_SO:-$ROOT/target/release/libtsdb.so}" "$RUN/libtsdb.so"
  export TSDB_SO="$RUN/libtsdb.so"
  # InfluxDB: the disk-based tsi1 index (counted in its size) and a full compaction of a shard 2 s after its last
  # write, as php/bench/storage.php does; the environment overrides tests/servers/influxdb.sh's config file.
  export INFLUXDB_DATA_INDEX_VERSION=tsi1 INFLUXDB_DATA_CACHE_SNAPSHOT_WRITE_COLD_DURATION=1s \
    INFLUXDB_DATA_COMPACT_FULL_WRITE_COLD_DURATION=2s
  export TSDB_PG_EXTRA_CONF="$SCALE_PG_CONF"
  log "starting PostgreSQL (TimescaleDB), InfluxDB and Moodle 5.1.3 in $RUN"
  start_postgres "$RUN"
  [[ -n "${TSDB_TEST_TIMESCALE_DSN:-}" ]] || { echo "no TimescaleDB on this PostgreSQL: ./build.sh deps" >&2; exit 1; }
  start_influxdb "$RUN"
  start_moodle "$RUN" 5.1.3
  # Everything the phases need, for --reuse.
  local v
  for v in TSDB_SO TSDB_TEST_PG_HOST TSDB_TEST_PG_PORT TSDB_TEST_PG_USER TSDB_TEST_PG_PASSWORD TSDB_TEST_PG_DB \
    TSDB_TEST_PG_SOCKET TSDB_TEST_PG_SUPERUSER_DSN TSDB_TEST_TIMESCALE_DSN TSDB_TEST_INFLUX_URL TSDB_TEST_MOODLE_SITES; do
    printf 'export %s=%q\n' "$v" "${!v}"
  done >"$RUN/env.sh"
  chmod 600 "$RUN/env.sh"
}

# ---- phases ---------------------------------------------------------------------------------------------------------
FAILED=0
phase() {
  local name=$1 t0=$SECONDS rc=0
  shift
  log "$name"
  "$@" || rc=$?
  if ((rc == 0)); then
    echo "   $name: done in $((SECONDS - t0)) s" >&2
  else
    echo "   $name: FAILED (exit $rc) after $((SECONDS - t0)) s" >&2
    FAILED=1
  fi
}

sitephp() { "$PHP" "${SITEPHP[@]}" "$@"; }

# The two loaders generate the same stream in parallel: one COPYs into logstore_standard_log and hands the events to
# the extension (TimescaleDB), the other hands them to the extension configured for InfluxDB. Then every store is read
# back.
load_all() {
  local a b rc=0
  sitephp "$HERE/site/load.php" standard+postgres "$OUT/load-postgres.json" &
  a=$!
  sitephp "$HERE/site/load.php" influxdb1 "$OUT/load-influxdb.json" &
  b=$!
  wait "$a" || rc=1
  wait "$b" || rc=1
  "$PHP" "$HERE/readback.php" "$OUT" || rc=1
  return $rc
}

influx_reports() {
  local rc=0
  sitephp "$HERE/site/configure.php" influxdb1 || return 1
  sitephp "$HERE/site/reports.php" influxdb1 "$OUT/influx.json" || rc=1
  sitephp "$HERE/site/configure.php" postgres || rc=1
  return $rc
}

main() {
  parse_args "$@"
  if [[ -n "$REUSE" ]]; then
    RUN=$REUSE
    # shellcheck source=/dev/null
    source "$RUN/env.sh"
  elif [[ -n "$KEEP" ]]; then
    [[ -e "$KEEP" ]] && { echo "$KEEP exists" >&2; exit 1; }
    trap 'echo "servers left running in $RUN: stop them with: source tests/moodle/servers.sh && tsdb_moodle_stop_servers $RUN" >&2' EXIT
    start_all "$KEEP"
  else
    trap stop_all EXIT
    start_all "$(mktemp -d /tmp/tsdb-scale.XXXXXX)"
  fi
  ((SERVERSONLY)) && return 0

  local site=${TSDB_TEST_MOODLE_SITES%% *}
  mapfile -t SITEPHP < <(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["phpargs"]))' \
    "$site/site.json")
  export SCALE_SITE=$site SCALE_RUN=$RUN SCALE_EVENTS=$EVENTS SCALE_DAYS=$DAYS SCALE_USERS=$USERS SCALE_COURSES=$COURSES
  export SCALE_SKIP=$SKIP
  OUT="$RUN/results"
  mkdir -p "$OUT"

  phase "machine and versions" sitephp "$HERE/site/machine.php" "$OUT/machine.json"
  phase "configure the site (logstore_tsdb: postgres backend on TimescaleDB)" sitephp "$HERE/site/configure.php" postgres
  [[ -f "$OUT/load.json" ]] || phase "load $EVENTS events over $DAYS days into the three stores" load_all
  phase "TimescaleDB's scheduler applies the policies" "$PHP" "$HERE/policies.php" "$OUT/policies.json"
  phase "report queries through sql_reader (warm and fresh requests)" sitephp "$HERE/site/reports.php" postgres \
    "$OUT/reports.json"
  phase "storage per event" "$PHP" "$HERE/storage.php" "$OUT/storage.json"
  skipped analytics || phase "analytics" "$PHP" "$HERE/analytics.php" "$OUT/analytics.json"
  skipped influx || phase "the report shapes through the InfluxDB 1.6.7 reader" influx_reports
  skipped import || phase "import of logstore_standard_log (cli/import_standard_log.php)" "$PHP" "$HERE/import.php" \
    "$OUT/import.json"

  mkdir -p "$(dirname "$JSON")"
  phase "results to $JSON and $MD" "$PHP" "$HERE/report.php" "$OUT" "$JSON" "$MD" ${MERGE:+"$MERGE"}
  if ((FAILED)); then
    log "FAILED: see the Failures section of $MD"
    return 1
  fi
  log "done: $MD"
}

# The whole script is read before it runs (main on the last line): editing it during a run changes nothing.
main "$@"; exit $?

<?php
// The storage part of ./build.sh bench: bytes on disk per event for the same Moodle-shaped events stored by the
// extension in InfluxDB 1.6 and in PostgreSQL, next to a logstore_standard_log-shaped table holding the same rows,
// and TimescaleDB compressed when this machine has it. Every store is read back (count = N) before it is measured.
// Prints a Markdown section; exits 1 when a store lost or duplicated events (it never judges sizes).
//   php -d extension=target/release/libtsdb.so php/bench/storage.php [EVENTS]   (TSDB_TEST_PG_* for PostgreSQL)

require_once __DIR__ . '/../demo/moodle_day.php';
require_once __DIR__ . '/../../tests/fpm/fpm_pool.php';
require_once __DIR__ . '/reference.php';

$n = (int)($argv[1] ?? (getenv('TSDB_BENCH_STORAGE_EVENTS') ?: 300000));
// Yesterday (UTC): every event is in the past, in one PostgreSQL partition and one InfluxDB shard.
$daystart = intdiv(time(), 86400) * 86400 - 86400;
$dir = sys_get_temp_dir() . '/tsdb-storagebench-' . getmypid();
mkdir($dir, 0777);
$lost = [];

/** Logs the same $n events (the generator is seeded) through the configured sink; returns the events written. */
function storage_write(array $config, int $n, int $daystart): int {
    tsdb_configure($config + ['batch_size' => 5000, 'flush_interval_ms' => 200, 'memory_limit_bytes' => 1 << 30]);
    $before = tsdb_stats()['written'];
    foreach (tsdb_demo_events($n, $daystart) as $e) {
        tsdb_log_event($e);
    }
    while (tsdb_flush(30000) > 0) {
    }
    $s = tsdb_stats();
    if ($s['failed'] || $s['rejected'] || $s['dropped']) {
        fwrite(STDERR, 'storage bench: ' . json_encode($s) . "\n");
    }
    return $s['written'] - $before;
}

/**
 * [path => [apparent bytes, allocated bytes]] of the regular files under $path whose name matches $re (recursive).
 * Allocated (st_blocks) is what the disk holds: InfluxDB preallocates its series file sparsely (4 MiB per partition).
 */
function storage_files(string $path, string $re = '/./'): array {
    $files = [];
    if (is_dir($path)) {
        foreach (new RecursiveIteratorIterator(new RecursiveDirectoryIterator($path, FilesystemIterator::SKIP_DOTS)) as $f) {
            if ($f->isFile() && preg_match($re, $f->getFilename())) {
                $st = stat($f->getPathname());
                $files[$f->getPathname()] = [$st['size'], $st['blocks'] * 512];
            }
        }
    }
    ksort($files);
    return $files;
}

/** Allocated bytes of storage_files() (apparent bytes with $apparent). */
function storage_bytes(string $path, string $re = '/./', bool $apparent = false): int {
    return array_sum(array_column(storage_files($path, $re), $apparent ? 0 : 1));
}

/**
 * InfluxDB 1.6 keeps recent writes in its WAL and in-memory cache. This bench server (its own, not the test suite's)
 * snapshots the cache to TSM files after 1 s without writes and fully compacts a shard after 2 s (InfluxDB's
 * INFLUXDB_DATA_* environment overrides of the config file), with the disk-based tsi1 index so the index is counted.
 * Returns the on-disk breakdown once the WAL is empty and the TSM files have stopped changing.
 */
function storage_influx(string $dir, int $n, int $daystart, array &$lost): array {
    putenv('INFLUXDB_DATA_INDEX_VERSION=tsi1');
    putenv('INFLUXDB_DATA_CACHE_SNAPSHOT_WRITE_COLD_DURATION=1s');
    putenv('INFLUXDB_DATA_COMPACT_FULL_WRITE_COLD_DURATION=2s');
    $influx = new tsdb_test_influxd($dir, 'storage_bench');
    $written = storage_write(['backend' => 'influxdb1', 'url' => $influx->url, 'database' => 'storage_bench'], $n, $daystart);
    $data = "$dir/influxd/data/storage_bench";
    $wal = "$dir/influxd/wal/storage_bench";
    $t0 = microtime(true);
    $last = null;
    $stable = 0;
    // Settled: no WAL bytes, no compaction temp file, and the same TSM files and sizes for 5 polls in a row.
    while ($stable < 5) {
        if (microtime(true) - $t0 > 180) {
            throw new RuntimeException('InfluxDB did not flush its WAL and settle its TSM files within 180 s');
        }
        sleep(1);
        $files = storage_files($data);
        $settled = storage_bytes($wal, '/./', true) === 0 && storage_bytes($data, '/\.tmp$/') === 0 && $files === $last;
        $stable = $settled ? $stable + 1 : 0;
        $last = $files;
    }
    // Two fields every event has: an integer and a string column.
    $r = $influx->query('SELECT count(userid), count(ip) FROM moodle_events');
    [, $users, $ips] = $r['results'][0]['series'][0]['values'][0] ?? [0, -1, -1];
    $stored = $users === $ips ? (int)$users : -1;
    $r = $influx->query('SHOW SERIES EXACT CARDINALITY');
    $series = (int)($r['results'][0]['series'][0]['values'][0][0] ?? 0);
    $ping = implode("\n", get_headers("$influx->url/ping") ?: []);
    $out = ['version' => preg_match('/X-Influxdb-Version: (\S+)/i', $ping, $m) ? $m[1] : '1.x', 'written' => $written, 'stored' => $stored, 'series' => $series, 'settle_s' => microtime(true) - $t0,
        'tsm' => storage_bytes($data, '/\.tsm$/'), 'tsm_files' => count(glob("$data/*/*/*.tsm")),
        'index' => array_sum(array_map('storage_bytes', glob("$data/*/*/index"))), 'all' => storage_bytes($data),
        'series_file' => storage_bytes("$data/_series"), 'series_file_apparent' => storage_bytes("$data/_series", '/./', true),
        'wal' => storage_bytes($wal, '/./', true)];
    $influx->stop();
    if ($written !== $n || $stored !== $n) {
        $lost[] = "InfluxDB: $written written, $stored read back of $n";
    }
    return $out;
}

/** key=value DSN → the sink's settings (host may be a Unix socket directory). */
function storage_pg_config(string $dsn, string $schema): array {
    preg_match_all('/(\w+)=(\S*)/', $dsn, $m, PREG_SET_ORDER);
    $kv = array_column($m, 2, 1);
    return ['backend' => 'postgres', 'host' => $kv['host'], 'port' => $kv['port'] ?? '5432', 'user' => $kv['user'],
        'password' => $kv['password'] ?? '', 'dbname' => $kv['dbname'], 'schema' => $schema];
}

function storage_scalar($db, string $sql) {
    $r = pg_query($db, $sql);
    return $r && pg_num_rows($r) > 0 ? pg_fetch_result($r, 0, 0) : null;
}

/**
 * The sink's table (its daily partitions: heap, TOAST and indexes, as tests/postgres_bench.rs counts them) and a
 * logstore_standard_log-shaped table (reference.php) filled with the same rows.
 */
function storage_postgres(string $dsn, int $n, int $daystart, array &$lost): array {
    $db = pg_connect($dsn);
    pg_query($db, 'DROP SCHEMA IF EXISTS storage_bench CASCADE');
    $written = storage_write(storage_pg_config($dsn, 'storage_bench'), $n, $daystart);
    $stored = (int)storage_scalar($db, 'SELECT count(*) FROM storage_bench.logstore_tsdb_log');
    $sink = (int)storage_scalar($db, "SELECT sum(pg_total_relation_size(inhrelid))::bigint FROM pg_inherits
        WHERE inhparent = 'storage_bench.logstore_tsdb_log'::regclass");
    pg_query($db, 'SET search_path TO storage_bench');
    tsdb_bench_standard_table($db);
    $cols = 'eventname, component, action, target, objecttable, objectid, crud, edulevel, contextid, contextlevel,
        contextinstanceid, userid, courseid, relateduserid, anonymous, other, timecreated, origin, ip, realuserid';
    pg_query($db, "INSERT INTO bench_standard_log ($cols) SELECT $cols FROM logstore_tsdb_log ORDER BY \"time\"");
    $stdrows = (int)storage_scalar($db, 'SELECT count(*) FROM bench_standard_log');
    $std = (int)storage_scalar($db, "SELECT pg_total_relation_size('bench_standard_log')");
    $version = storage_scalar($db, "SELECT split_part(current_setting('server_version'), ' ', 1)");
    pg_query($db, 'DROP SCHEMA storage_bench CASCADE');
    if ($written !== $n || $stored !== $n || $stdrows !== $n) {
        $lost[] = "PostgreSQL: $written written, $stored read back, $stdrows copied of $n";
    }
    return ['stored' => $stored, 'sink' => $sink, 'std_rows' => $stdrows, 'std' => $std, 'version' => $version];
}

/**
 * TimescaleDB: the sink makes a hypertable with compression when the database has the extension
 * (src/sink/postgres/schema.rs). Tried in a fresh database of the test server (TSDB_TEST_TIMESCALE_DSN, a database
 * with the extension, wins when set). Returns [bytes, rows read back] or the reason it was skipped.
 */
function storage_timescale(int $n, int $daystart, array &$lost): array|string {
    $url = getenv('TSDB_TEST_TIMESCALE_DSN') ?: '';
    $super = getenv('TSDB_TEST_PG_SUPERUSER_DSN') ?: '';
    if ($url !== '') {
        $u = parse_url($url);
        $parts = ['host' => $u['host'] ?? '', 'port' => $u['port'] ?? 5432, 'user' => urldecode($u['user'] ?? ''),
            'password' => urldecode($u['pass'] ?? ''), 'dbname' => ltrim($u['path'] ?? '', '/')];
        $parts = array_filter($parts, fn($v) => (string)$v !== ''); // an empty value would swallow the next key
        $dsn = implode(' ', array_map(fn($k, $v) => "$k=$v", array_keys($parts), $parts));
        $cleanup = fn() => null;
        if (!storage_scalar(pg_connect($dsn), "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")) {
            return 'the database of TSDB_TEST_TIMESCALE_DSN has no timescaledb extension';
        }
    } else if ($super !== '') {
        $admin = pg_connect($super);
        $version = storage_scalar($admin, "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'");
        if (!$version) {
            return 'TimescaleDB not available on this machine (no timescaledb in pg_available_extensions of PostgreSQL ' .
                storage_scalar($admin, "SELECT split_part(current_setting('server_version'), ' ', 1)") . ')';
        }
        pg_query($admin, 'DROP DATABASE IF EXISTS storage_bench_timescale');
        pg_query($admin, 'CREATE DATABASE storage_bench_timescale');
        $dsn = preg_replace('/dbname=\S+/', 'dbname=storage_bench_timescale', $super);
        $cleanup = function () use ($admin) {
            pg_query($admin, 'DROP DATABASE IF EXISTS storage_bench_timescale');
        };
        if (!@pg_query(pg_connect($dsn, PGSQL_CONNECT_FORCE_NEW), 'CREATE EXTENSION IF NOT EXISTS timescaledb')) {
            $cleanup();
            return 'TimescaleDB not available on this machine (CREATE EXTENSION timescaledb failed: ' .
                trim(pg_last_error()) . ')';
        }
    } else {
        return 'no PostgreSQL server in this run (TSDB_TEST_PG_*)';
    }
    $db = pg_connect($dsn, PGSQL_CONNECT_FORCE_NEW);
    pg_query($db, 'DROP SCHEMA IF EXISTS storage_bench CASCADE');
    $written = storage_write(storage_pg_config($dsn, 'storage_bench'), $n, $daystart);
    // The sink's compression policy waits 7 days; compress every chunk now, as the policy would.
    $chunks = @storage_scalar($db, "SELECT count(compress_chunk(c, true)) FROM show_chunks('storage_bench.logstore_tsdb_log') c");
    $result = $chunks === null ? 'the hypertable could not be compressed: ' . trim(pg_last_error($db))
        : [(int)storage_scalar($db, "SELECT hypertable_size('storage_bench.logstore_tsdb_log')"),
            (int)storage_scalar($db, 'SELECT count(*) FROM storage_bench.logstore_tsdb_log')];
    if (is_array($result) && ($written !== $n || $result[1] !== $n)) {
        $lost[] = "TimescaleDB: $written written, {$result[1]} read back of $n";
    }
    pg_query($db, 'DROP SCHEMA storage_bench CASCADE');
    pg_close($db);
    $cleanup();
    return $result;
}

$influx = storage_influx($dir, $n, $daystart, $lost);
$pgdsn = tsdb_bench_pg_dsn();
$pg = $pgdsn !== '' ? storage_postgres($pgdsn, $n, $daystart, $lost) : null;
$ts = storage_timescale($n, $daystart, $lost);
exec('rm -rf ' . escapeshellarg($dir));

$row = function (string $what, int $rows, int $bytes) use ($n, $pg): string {
    return sprintf("| %s | %d | %d | %.0f | %.0f | %s |\n", $what, $rows, $bytes, $bytes / $n, $bytes / $n * 1e6 / (1 << 20),
        $pg ? sprintf('%.2f', $bytes / $pg['std']) : '–');
};
$md = "## Storage per event\n\n$n events of a simulated Moodle day (php/demo/moodle_day.php: 16 event types, 3000 users, " .
    "40 courses), logged through the extension into each store and counted back before the size was taken " .
    "(php/bench/storage.php).\n\n" .
    "| store | events read back | bytes on disk | bytes per event | MiB per million events | × standard-shaped |\n" .
    "|---|---:|---:|---:|---:|---:|\n" .
    $row("InfluxDB {$influx['version']}, tsi1 index: the database's directory (shard TSM files, fields.idx, tsi1 index, " .
        "series file), allocated blocks; WAL flushed ({$influx['wal']} bytes left) and not counted", $influx['stored'], $influx['all']);
if ($pg) {
    $md .= $row("PostgreSQL {$pg['version']}, the sink's logstore_tsdb_log (daily partitions: heap, TOAST, indexes)", $pg['stored'], $pg['sink']) .
        $row('PostgreSQL, logstore_standard_log-shaped table (id, 20 columns, its 3 indexes), the same rows', $pg['std_rows'], $pg['std']);
}
if (is_array($ts)) {
    $md .= $row('TimescaleDB, the sink\'s hypertable with every chunk compressed (hypertable_size)', $ts[1], $ts[0]);
}
$md .= "\n";
if (!$pg) {
    $md .= "PostgreSQL: SKIPPED: no PostgreSQL server (TSDB_TEST_PG_*) in this run.\n\n";
}
if (!is_array($ts)) {
    $md .= "TimescaleDB compressed size: SKIPPED: $ts.\n\n";
}
$md .= sprintf("InfluxDB detail: %d series (`SHOW SERIES EXACT CARDINALITY`; the sink's default tags), %d TSM file(s) %d bytes, " .
    "shard tsi1 index %d bytes, series file %d bytes allocated (%d preallocated), fields.idx and the rest %d bytes. " .
    "The WAL was empty and the files unchanged for 5 s from %.0f s after the last write " .
    "(a dedicated influxd with `cache-snapshot-write-cold-duration = \"1s\"` and `compact-full-write-cold-duration = \"2s\"`).\n",
    $influx['series'], $influx['tsm_files'], $influx['tsm'], $influx['index'], $influx['series_file'], $influx['series_file_apparent'],
    $influx['all'] - $influx['tsm'] - $influx['index'] - $influx['series_file'], $influx['settle_s'] - 5);
if ($lost) {
    $md .= "\nEVENTS MISSING: " . implode('; ', $lost) . "\n";
}
echo $md;
exit($lost ? 1 : 0);

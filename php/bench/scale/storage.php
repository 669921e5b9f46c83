<?php
// Storage per event, all in, after the policies ran:
//  - logstore_standard_log with its indexes and TOAST (pg_total_relation_size), split into heap and indexes;
//  - every object of the sink's database, enumerated from the catalog (nothing named here): each hypertable
//    (hypertable_detailed_size: its chunks, compressed or not, their indexes and TOAST), each continuous aggregate
//    (its materialisation hypertable), every other table or materialised view outside TimescaleDB's own schemas
//    (the ledger, the schema record, helper tables), and, as a cross-check, the whole database (pg_database_size);
//  - InfluxDB 1.6.7's directory of the database once its WAL is empty and its TSM files have stopped changing (full
//    compaction 2 s after the last write: run.sh's INFLUXDB_DATA_* overrides, as php/bench/storage.php does), allocated
//    blocks (the series file is preallocated sparsely).
//   php storage.php OUT.json

require_once(__DIR__ . '/lib/common.php');

$out = $argv[1];
$load = scale_read(dirname($out) . '/load.json');
$n = (int) $load['counts']['generated'];
$failures = [];

$std = scale_pg(scale_site()['dbname']);
$standard = scale_rows($std, "SELECT pg_total_relation_size('mdl_logstore_standard_log') AS total,
    pg_relation_size('mdl_logstore_standard_log') AS heap, pg_indexes_size('mdl_logstore_standard_log') AS indexes,
    pg_total_relation_size('mdl_logstore_standard_log') - pg_relation_size('mdl_logstore_standard_log')
        - pg_indexes_size('mdl_logstore_standard_log') AS toast_and_maps,
    (SELECT count(*) FROM pg_index WHERE indrelid = 'mdl_logstore_standard_log'::regclass) AS index_count")[0];

$ts = scale_pg(scale_ts_dbname());
$objects = [];
// Hypertables, including continuous aggregates' materialisations; not the internal compressed hypertables, whose
// chunks hypertable_detailed_size() of their hypertable already counts.
foreach (scale_rows($ts, "SELECT h.id, format('%I.%I', h.schema_name, h.table_name) AS name,
        (SELECT format('%I.%I', a.user_view_schema, a.user_view_name) FROM _timescaledb_catalog.continuous_agg a
            WHERE a.mat_hypertable_id = h.id) AS cagg,
        (SELECT count(*) FROM _timescaledb_catalog.chunk c WHERE c.hypertable_id = h.id) AS chunks,
        (SELECT count(*) FROM _timescaledb_catalog.chunk c WHERE c.hypertable_id = h.id
            AND c.compressed_chunk_id IS NOT NULL) AS compressed
    FROM _timescaledb_catalog.hypertable h WHERE h.compression_state <> 2 ORDER BY h.id") as $h) {
    $d = scale_rows($ts, 'SELECT * FROM hypertable_detailed_size($1::regclass)', [$h['name']])[0] ?? [];
    $objects[] = ['object' => $h['cagg'] ? "continuous aggregate {$h['cagg']} (materialised in {$h['name']})"
        : "hypertable {$h['name']}", 'kind' => $h['cagg'] ? 'aggregate' : 'hypertable',
        'bytes' => (int) ($d['total_bytes'] ?? 0), 'table_bytes' => (int) ($d['table_bytes'] ?? 0),
        'index_bytes' => (int) ($d['index_bytes'] ?? 0), 'toast_bytes' => (int) ($d['toast_bytes'] ?? 0),
        'chunks' => (int) $h['chunks'], 'compressed_chunks' => (int) $h['compressed']];
}
// Every other table / materialised view outside TimescaleDB's own schemas and not part of a hypertable.
foreach (scale_rows($ts, "SELECT format('%I.%I', n.nspname, c.relname) AS name, c.relkind,
        pg_total_relation_size(c.oid) AS bytes
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND n.nspname NOT LIKE '\\_timescaledb\\_%' AND n.nspname NOT LIKE 'timescaledb\\_%' AND n.nspname <> 'toolkit_experimental'
      AND NOT EXISTS (SELECT 1 FROM _timescaledb_catalog.hypertable h WHERE h.schema_name = n.nspname AND h.table_name = c.relname)
    ORDER BY 1") as $r) {
    $objects[] = ['object' => ($r['relkind'] === 'm' ? 'materialised view ' : 'table ') . $r['name'], 'kind' => 'helper',
        'bytes' => (int) $r['bytes']];
}
$views = array_column(scale_rows($ts, "SELECT format('%I.%I', schemaname, viewname) AS v FROM pg_views
    WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND schemaname NOT LIKE '\\_timescaledb%'
      AND schemaname NOT LIKE 'timescaledb\\_%' ORDER BY 1"), 'v');
$tsdbtotal = array_sum(array_column($objects, 'bytes'));
$dbsize = (int) scale_value($ts, 'SELECT pg_database_size(current_database())');
$compression = scale_rows($ts, "SELECT format('%I.%I', hypertable_schema, hypertable_name) AS hypertable,
    (s).* FROM (SELECT hypertable_schema, hypertable_name,
        hypertable_compression_stats(format('%I.%I', hypertable_schema, hypertable_name)::regclass) AS s
        FROM timescaledb_information.hypertables WHERE compression_enabled) x");

// InfluxDB: settled means no WAL bytes, no compaction temp file, and the same files and sizes for 5 polls in a row.
/** [path => [apparent, allocated]] of the files under $dir. */
function scale_files(string $dir): array {
    $files = [];
    if (is_dir($dir)) {
        foreach (new RecursiveIteratorIterator(new RecursiveDirectoryIterator($dir, FilesystemIterator::SKIP_DOTS)) as $f) {
            if ($f->isFile()) {
                clearstatcache(true, $f->getPathname());
                $st = @stat($f->getPathname());
                if ($st) {
                    $files[$f->getPathname()] = [$st['size'], $st['blocks'] * 512];
                }
            }
        }
    }
    ksort($files);
    return $files;
}
$influxdir = scale_env('SCALE_RUN') . '/influxdb-noauth';
$t0 = microtime(true);
$last = null;
$stable = 0;
while ($stable < 5 && microtime(true) - $t0 < 1800) {
    sleep(1);
    $files = scale_files("$influxdir/data/moodle");
    $wal = array_sum(array_column(scale_files("$influxdir/wal/moodle"), 0));
    $tmp = count(array_filter(array_keys($files), fn($f) => substr($f, -4) === '.tmp'));
    $stable = ($wal === 0 && $tmp === 0 && $files === $last) ? $stable + 1 : 0;
    $last = $files;
}
if ($stable < 5) {
    $failures[] = 'InfluxDB did not settle (WAL empty, TSM files unchanged) within 30 minutes';
}
$sum = fn(string $re) => array_sum(array_map(fn($v) => $v[1], array_filter($last, fn($k) => preg_match($re, $k),
    ARRAY_FILTER_USE_KEY)));
$influx = ['bytes' => $sum('/./'), 'tsm' => $sum('/\.tsm$/'), 'tsi_index' => $sum('#/index/#'),
    'series_file' => $sum('#/_series/#'), 'tsm_files' => count(array_filter(array_keys($last), fn($k) => substr($k, -4) === '.tsm')),
    'wal_bytes' => array_sum(array_column(scale_files("$influxdir/wal/moodle"), 0)), 'settled_after_s' => round(microtime(true) - $t0, 1)];
$series = scale_influxql('SHOW SERIES EXACT CARDINALITY ON moodle');
$influx['series'] = (int) ($series['results'][0]['series'][0]['values'][0][0] ?? 0);
$shards = scale_influxql('SHOW SHARDS');
foreach ($shards['results'][0]['series'] ?? [] as $s) {
    if ($s['name'] === 'moodle') {
        $influx['shards'] = count($s['values']);
    }
}

$perevent = fn(int $b) => $n ? round($b / $n, 1) : null;
$result = ['events' => $n, 'standard' => array_map('intval', $standard) + ['per_event' => $perevent((int) $standard['total'])],
    'tsdb' => ['objects' => array_map(fn($o) => $o + ['per_event' => $perevent($o['bytes'])], $objects), 'views' => $views,
        'total' => $tsdbtotal, 'per_event' => $perevent($tsdbtotal), 'database_size' => $dbsize,
        'compression_stats' => $compression],
    'influxdb' => $influx + ['per_event' => $perevent($influx['bytes'])], 'failures' => $failures];
scale_say(sprintf('bytes per event: standard %.1f, tsdb all in %.1f, InfluxDB %.1f', $result['standard']['per_event'],
    $result['tsdb']['per_event'], $result['influxdb']['per_event']));
scale_write($out, $result);
exit($failures ? 1 : 0);

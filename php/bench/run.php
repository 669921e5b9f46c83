<?php
// ./build.sh bench: request-path cost of tsdb_log_event() next to its references, measured in the same run,
// printed as Markdown (./build.sh bench puts it at the top of docs/BENCHMARKS.md).
// Usage: php -d extension=libtsdb.so php/bench/run.php

require __DIR__ . '/../demo/moodle_day.php';

$n = (int)(getenv('TSDB_BENCH_N') ?: 200000);
$rounds = 5;

// A 20-key Moodle-shaped event.
$event = iterator_to_array(tsdb_demo_events(1, 1700000000), false)[0];
$event['other'] = ['discussionid' => 12, 'forumid' => 3, 'forumtype' => 'general'];

/** A pure-PHP line-protocol formatter: what a PHP-only store would do on the request path. */
function tsdb_bench_php_line(array $e): string {
    $esc = fn($s) => str_replace([',', '=', ' '], ['\\,', '\\=', '\\ '], (string)$s);
    $str = fn($s) => '"' . str_replace(['\\', '"'], ['\\\\', '\\"'], (string)$s) . '"';
    $line = 'moodle_events';
    foreach (['action', 'component', 'contextlevel', 'courseid', 'crud', 'edulevel', 'eventname', 'origin', 'target'] as $t) {
        if ($e[$t] !== null && $e[$t] !== '') {
            $line .= ',' . $t . '=' . $esc($e[$t]);
        }
    }
    $fields = [];
    foreach (['anonymous', 'contextid', 'contextinstanceid', 'objectid', 'realuserid', 'relateduserid', 'userid'] as $f) {
        if ($e[$f] !== null) {
            $fields[] = $f . '=' . (int)$e[$f] . 'i';
        }
    }
    $fields[] = 'ip=' . $str($e['ip']);
    $fields[] = 'objecttable=' . $str($e['objecttable']);
    $fields[] = 'other=' . $str(json_encode($e['other']));
    return $line . ' ' . implode(',', $fields) . ' ' . ($e['timecreated'] * 1000000000) . "\n";
}

/** Median of `$rounds` runs of `$n` calls, in ns per call. */
function tsdb_bench(callable $f, int $n, int $rounds): float {
    $times = [];
    for ($r = 0; $r < $rounds; $r++) {
        $t = hrtime(true);
        $f($n);
        $times[] = (hrtime(true) - $t) / $n;
    }
    sort($times);
    return $times[intdiv($rounds, 2)];
}

$dir = sys_get_temp_dir() . '/tsdb-bench-' . getmypid();
@mkdir($dir);
$results = [];
$results['empty PHP function call'] = tsdb_bench(function ($n) use ($event) { $f = function ($e) { return true; }; for ($i = 0; $i < $n; $i++) { $f($event); } }, $n, $rounds);
$results['json_encode() of the event'] = tsdb_bench(function ($n) use ($event) { for ($i = 0; $i < $n; $i++) { json_encode($event); } }, $n, $rounds);
$results['pure-PHP line-protocol formatter'] = tsdb_bench(function ($n) use ($event) { for ($i = 0; $i < $n; $i++) { tsdb_bench_php_line($event); } }, $n, $rounds);

tsdb_configure(['backend' => 'file', 'path' => "$dir/up.lp", 'memory_limit_bytes' => 1 << 30]);
$results['tsdb_log_event(), async, sink up (file)'] = tsdb_bench(function ($n) use ($event) { for ($i = 0; $i < $n; $i++) { tsdb_log_event($event); } }, $n, $rounds);
tsdb_flush(60000);
$upstats = tsdb_stats();

foreach ([1, 0] as $fsync) {
    tsdb_configure(['backend' => 'file', 'path' => "$dir/durable.lp", 'memory_limit_bytes' => 1 << 30, 'mode' => 'durable',
        'spool_dir' => "$dir/spool", 'spool_fsync' => $fsync]);
    $results["tsdb_log_event(), durable, journal appended per 5000 events, fsync $fsync"] =
        tsdb_bench(function ($n) use ($event) { for ($i = 0; $i < $n; $i++) { tsdb_log_event($event); } }, $n, $rounds);
    tsdb_flush(60000);
}

// The sink down: a PostgreSQL port nobody listens on. The caller's cost must not change.
tsdb_configure(['backend' => 'postgres', 'host' => '127.0.0.1', 'port' => 1, 'memory_limit_bytes' => 1 << 30, 'mode' => 'async',
    'retry_base_ms' => 1000, 'retry_max_ms' => 1000, 'connect_timeout_ms' => 100]);
$results['tsdb_log_event(), async, sink down'] = tsdb_bench(function ($n) use ($event) { for ($i = 0; $i < $n; $i++) { tsdb_log_event($event); } }, $n, $rounds);

require_once __DIR__ . '/reference.php';
$pgdsn = tsdb_bench_pg_dsn();
$pg = $pgdsn !== '' ? pg_connect($pgdsn) : null;
if ($pg) {
    tsdb_bench_standard_table($pg);
    $insert = function ($n) use ($pg, $event) {
        for ($i = 0; $i < $n; $i++) {
            $row = $event;
            $row['other'] = json_encode($row['other']);
            pg_insert($pg, 'bench_standard_log', $row);
        }
    };
    $results['synchronous single-row INSERT (pgsql, what a naive PHP store does)'] = tsdb_bench($insert, intdiv($n, 20), 3);
}

require_once __DIR__ . '/instructions.php';
$itsdb = tsdb_bench_per_call('tsdb');
$ijson = tsdb_bench_per_call('json');

$base = $results['json_encode() of the event'];
$md = "# Benchmarks\n\nWritten by `./build.sh bench`. Every number in one table comes from the same run on the\n" .
    "same machine; the ratio column is relative to `json_encode()` of the same event, measured in that run.\n\n" .
    sprintf("- machine: %s, %d cores; %s\n- PHP %s %s; extension %s; %s\n- method: median of %d rounds of %d calls (single-row INSERT: 3 rounds of %d), hrtime(); the event is a 20-key Moodle-shaped array with a 3-key `other`.\n\n",
        trim((string)shell_exec("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")), (int)shell_exec('nproc'),
        trim((string)shell_exec('uname -sr')), PHP_VERSION, PHP_ZTS ? 'ZTS' : 'NTS', tsdb_version(), gmdate('Y-m-d H:i') . ' UTC',
        $rounds, $n, intdiv($n, 20)) .
    "## Request-path cost per event\n\n| what | ns per event | × json_encode |\n|---|---:|---:|\n";
foreach ($results as $name => $ns) {
    $md .= sprintf("| %s | %.0f | %.2f |\n", $name, $ns, $ns / $base);
}
if ($itsdb !== null && $ijson !== null) {
    $md .= sprintf("\nInstructions on the request thread, counted by callgrind (repeatable whatever the machine's load; php/bench/instructions.php):\n" .
        "`tsdb_log_event()` %.0f, `json_encode()` %.0f per call: %.2f × json_encode.\n", $itsdb, $ijson, $itsdb / $ijson);
}
$md .= sprintf("\nAfter the sink-up run the file sink had written %d of %d accepted events (0 pending after tsdb_flush).\n",
    $upstats['written'], $upstats['accepted']);
if (!$pg) {
    $md .= "\nThe single-row INSERT reference was skipped: no PostgreSQL server (TSDB_TEST_PG_HOST) in this run.\n";
}
echo $md;
exec('rm -rf ' . escapeshellarg($dir));

<?php
// Loads the generated site (php/demo/moodle_day.php tsdb_demo_site_events(), streamed day by day) into one or two
// stores, as a CLI script of the site:
//   load.php standard+postgres OUT.json   logstore_standard_log by COPY (ids in time order, `other` as json_encode()
//                                         text, as logstore_standard writes it) and the sink's TimescaleDB table
//                                         through the extension (tsdb_log_events(), the plugin's settings)
//   load.php influxdb1 OUT.json           InfluxDB 1.6.7 through the extension (the plugin's settings, backend influxdb1)
// Both processes generate the same stream (same seed); each records how many events it generated and a digest of
// them, so the driver can check that every store got the same events. Run by run.sh, which checks the counts.

require(__DIR__ . '/bootstrap.php');
require_once(__DIR__ . '/../../../demo/moodle_day.php');

[$target, $outfile] = [$argv[1] ?? '', $argv[2] ?? ''];
if (!in_array($target, ['standard+postgres', 'influxdb1'], true) || $outfile === '') {
    fwrite(STDERR, "usage: load.php standard+postgres|influxdb1 OUT.json\n");
    exit(2);
}
$p = scale_params();
[$start, $end] = scale_window();
const SCALE_BATCH = 10000;
const SCALE_COLUMNS = ['eventname', 'component', 'action', 'target', 'objecttable', 'objectid', 'crud', 'edulevel',
    'contextid', 'contextlevel', 'contextinstanceid', 'userid', 'courseid', 'relateduserid', 'anonymous', 'other',
    'timecreated', 'origin', 'ip', 'realuserid'];

/** One row of COPY text format: logstore_standard_log's columns as the standard store writes them. */
function scale_copy_line(array $e): string {
    $out = [];
    foreach (SCALE_COLUMNS as $c) {
        $v = $c === 'other' ? json_encode($e['other']) : $e[$c];
        $out[] = $v === null ? '\N' : strtr((string) $v, ["\\" => "\\\\", "\t" => "\\t", "\n" => "\\n", "\r" => "\\r"]);
    }
    return implode("\t", $out) . "\n";
}

/** The extension's configuration: the plugin's, with a queue large enough for a bulk load. */
function scale_extension_config(string $backend): array {
    $cfg = scale_plugin_config();
    if ($backend === 'influxdb1') {
        $cfg->backend = 'influxdb1';
        $cfg->url = scale_env('TSDB_TEST_INFLUX_URL');
        $cfg->database = 'moodle';
    }
    $config = \logstore_tsdb\local\settings_definition::extension_config($cfg);
    $config['memory_limit_bytes'] = 1 << 30;
    $config['spool_dir'] = '';
    return $config;
}

/** Hands a batch to the extension; waits while the flush thread is far behind (never drops an event). */
function scale_log_batch(array $batch): void {
    $accepted = tsdb_log_events($batch);
    if ($accepted !== count($batch)) {
        throw new RuntimeException("the extension accepted $accepted of " . count($batch) . ' events: ' .
            json_encode(tsdb_stats()));
    }
    while (tsdb_stats()['pending'] > 20 * SCALE_BATCH) {
        tsdb_flush(200);
    }
}

// Empty stores: the site's install logged a few events into logstore_standard_log; a previous partial load may have
// left rows (--reuse).
if ($target === 'standard+postgres') {
    $std = scale_moodle_pg();
    scale_rows($std, 'TRUNCATE mdl_logstore_standard_log RESTART IDENTITY');
    $ts = scale_pg(scale_ts_dbname());
    $cfg = scale_plugin_config();
    foreach (scale_rows($ts, "SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND left(c.relname, length($2)) = $2",
            [$cfg->schema, $cfg->table]) as $r) {
        scale_rows($ts, "DROP TABLE IF EXISTS {$r['t']} CASCADE");
    }
} else {
    scale_influxql('DROP DATABASE moodle');
    scale_influxql('CREATE DATABASE moodle');
}

tsdb_configure(scale_extension_config($target === 'influxdb1' ? 'influxdb1' : 'postgres'));
$t0 = microtime(true);
$generated = 0;
$digest = 0;
$batch = [];
$lines = [];
$copyseconds = 0.0;
$copy = function() use (&$lines, &$std, &$copyseconds) {
    $t = microtime(true);
    if (!pg_copy_from($std, 'mdl_logstore_standard_log (' . implode(', ', SCALE_COLUMNS) . ')', $lines)) {
        throw new RuntimeException('COPY into logstore_standard_log failed: ' . pg_last_error($std));
    }
    $copyseconds += microtime(true) - $t;
    $lines = [];
};
foreach (tsdb_demo_site_events($p['events'], $start, $p['days'], $p['users'], $p['courses']) as $e) {
    $generated++;
    $digest = ($digest * 31 + $e['timecreated'] * 7 + $e['userid'] * 3 + $e['courseid'] + crc32($e['eventname'])) % 1000000007;
    $batch[] = $e;
    if ($target === 'standard+postgres') {
        $lines[] = scale_copy_line($e);
    }
    if (count($batch) === SCALE_BATCH) {
        if ($lines) {
            $copy();
        }
        scale_log_batch($batch);
        $batch = [];
        if ($generated % 500000 === 0) {
            scale_say(sprintf('%s: %s events generated (%s/s)', $target, number_format($generated),
                number_format($generated / (microtime(true) - $t0))));
        }
    }
}
if ($lines) {
    $copy();
}
if ($batch) {
    scale_log_batch($batch);
}
$generatedseconds = microtime(true) - $t0;
while (tsdb_flush(60000) > 0) {
    scale_say("$target: waiting for the extension to write");
}
$stats = tsdb_stats();
$seconds = microtime(true) - $t0;
$failures = [];
foreach (['failed', 'rejected', 'dropped', 'spooled'] as $k) {
    if ((int) $stats[$k] !== 0) {
        $failures[] = "$target: the extension counted $k = {$stats[$k]} (last error: {$stats['last_error']})";
    }
}
if ((int) $stats['written'] !== $generated) {
    $failures[] = "$target: $generated events generated, the extension wrote {$stats['written']}";
}
scale_write($outfile, ['target' => $target, 'window' => [$start, $end], 'generated' => $generated, 'digest' => $digest,
    'seconds' => round($seconds, 1), 'generate_and_hand_over_seconds' => round($generatedseconds, 1),
    'standard_copy_seconds' => round($copyseconds, 1), 'events_per_s' => (int) ($generated / $seconds),
    'extension' => ['version' => tsdb_version(), 'written' => $stats['written'], 'batches' => $stats['batches']],
    'tsdb_table' => scale_plugin_config()->schema . '.' . scale_plugin_config()->table,
    'failures' => $failures]);
scale_say(sprintf('%s: %s events in %.0f s (%s/s)', $target, number_format($generated), $seconds,
    number_format($generated / $seconds)));
exit($failures ? 1 : 0);

<?php
// After the load: every store holds exactly the generated events, once. Reads back the count of each store, and for
// the two PostgreSQL stores an order-independent checksum of every event column (so the sink's table holds the very
// events of logstore_standard_log, not only as many). Writes RESULTS/load.json; exits 1 on any difference.
//   php readback.php RESULTS_DIR

require_once(__DIR__ . '/lib/common.php');

$dir = $argv[1];
$pgload = scale_read("$dir/load-postgres.json");
$influxload = scale_read("$dir/load-influxdb.json");
$failures = array_merge($pgload['failures'] ?? ['the PostgreSQL loader wrote no result'],
    $influxload['failures'] ?? ['the InfluxDB loader wrote no result']);
$generated = (int) ($pgload['generated'] ?? -1);
if ($influxload && ($influxload['generated'] !== $generated || $influxload['digest'] !== $pgload['digest'])) {
    $failures[] = "the two loaders generated different streams ({$pgload['generated']} / {$influxload['generated']} events)";
}

$std = scale_pg(scale_site()['dbname']);
$ts = scale_pg(scale_ts_dbname());
$t = microtime(true);
$a = scale_rows($std, scale_checksum_sql('mdl_logstore_standard_log'))[0];
$table = $pgload['tsdb_table'] ?? 'public.logstore_tsdb_log';
$b = scale_rows($ts, scale_checksum_sql($table))[0];
$checksumseconds = microtime(true) - $t;
$influx = scale_influxql('SELECT count("anonymous") FROM moodle_events');
$influxcount = (int) ($influx['results'][0]['series'][0]['values'][0][1] ?? 0);
$counts = ['generated' => $generated, 'logstore_standard_log' => (int) $a['n'], 'tsdb' => (int) $b['n'],
    'influxdb' => $influxcount];
foreach ($counts as $store => $n) {
    if ($n !== $generated) {
        $failures[] = "$store holds $n events of the $generated generated";
    }
}
if ($a['checksum'] !== $b['checksum']) {
    $failures[] = 'the checksum of the event columns differs between logstore_standard_log and the sink\'s table';
}
scale_say('read back: ' . json_encode($counts) . ($a['checksum'] === $b['checksum'] ? ', event columns identical' : ''));
scale_write("$dir/load.json", ['window' => $pgload['window'] ?? null, 'tsdb_table' => $table, 'counts' => $counts,
    'checksum_equal' => $a['checksum'] === $b['checksum'], 'standard_checksum' => $a['checksum'], 'checksum_seconds' => round($checksumseconds, 1),
    'loaders' => ['postgres' => $pgload, 'influxdb' => $influxload], 'failures' => $failures]);
exit($failures ? 1 : 0);

<?php
// Points the site's logstore_tsdb at the run's servers, as an admin does on the settings page:
//   configure.php postgres [TABLE]   backend postgres on TSDB_TEST_TIMESCALE_DSN (table default logstore_tsdb_log)
//   configure.php influxdb1          backend influxdb1 on TSDB_TEST_INFLUX_URL, database moodle
// Pseudonymisation is off: the generated users are not users of the site (the reader would find no pseudonyms).
// Both stores stay enabled (tool_log enabled_stores), so that get_log_manager()->get_readers() has both.

require(__DIR__ . '/bootstrap.php');

$mode = $argv[1] ?? 'postgres';
$settings = ['configsource' => 'plugin', 'mode' => 'async', 'pseudonymise' => 0];
if ($mode === 'postgres') {
    $u = parse_url(scale_env('TSDB_TEST_TIMESCALE_DSN'));
    $settings += ['backend' => 'postgres', 'host' => $u['host'], 'port' => $u['port'], 'user' => urldecode($u['user']),
        'password' => urldecode($u['pass']), 'dbname' => ltrim($u['path'], '/'), 'schema' => 'public',
        'table' => $argv[2] ?? 'logstore_tsdb_log', 'sslmode' => 'disable'];
} else if ($mode === 'influxdb1') {
    $settings += ['backend' => 'influxdb1', 'url' => scale_env('TSDB_TEST_INFLUX_URL'), 'database' => 'moodle',
        'measurement' => 'moodle_events'];
} else {
    fwrite(STDERR, "usage: configure.php postgres [TABLE] | influxdb1\n");
    exit(2);
}
foreach ($settings as $name => $value) {
    set_config($name, $value, 'logstore_tsdb');
}
set_config('enabled_stores', 'logstore_standard,logstore_tsdb', 'tool_log');
$readers = get_log_manager()->get_readers('\core\log\sql_reader');
foreach (['logstore_standard', 'logstore_tsdb'] as $store) {
    if (!isset($readers[$store])) {
        fwrite(STDERR, "$store is not a reader of the site\n");
        exit(1);
    }
}
scale_say('logstore_tsdb: backend ' . $settings['backend'] . ($mode === 'postgres' ? ', table ' . $settings['table'] : ''));

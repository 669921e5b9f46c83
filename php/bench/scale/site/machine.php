<?php
// The machine and every version the numbers depend on, recorded with the results.
//   machine.php OUT.json

require(__DIR__ . '/bootstrap.php');

$meminfo = (string) @file_get_contents('/proc/meminfo');
$cpuinfo = (string) @file_get_contents('/proc/cpuinfo');
preg_match('/^MemTotal:\s+(\d+)/m', $meminfo, $mem);
preg_match('/^model name\s*:\s*(.+)$/m', $cpuinfo, $cpu);
$root = dirname(__DIR__, 4);
$git = trim((string) shell_exec('git -C ' . escapeshellarg($root) . ' rev-parse --short HEAD 2>/dev/null'));
$dirty = trim((string) shell_exec('git -C ' . escapeshellarg($root) . ' status --porcelain -- src moodle-plugin 2>/dev/null'));
$ts = scale_pg(scale_ts_dbname());
$settings = [];
foreach (['server_version', 'shared_buffers', 'effective_cache_size', 'work_mem', 'maintenance_work_mem', 'jit', 'fsync',
        'synchronous_commit', 'max_worker_processes', 'timescaledb.max_background_workers', 'max_parallel_workers_per_gather'] as $s) {
    $settings[$s] = scale_value($ts, 'SELECT current_setting($1)', [$s]);
}
$ping = @get_headers(scale_env('TSDB_TEST_INFLUX_URL') . '/ping') ?: [];
$influx = preg_match('/X-Influxdb-Version: (\S+)/i', implode("\n", $ping), $m) ? $m[1] : null;
$plugin = new stdClass();
require(scale_site()['plugindir'] . '/version.php');
scale_write($argv[1], [
    'date' => gmdate('Y-m-d H:i') . ' UTC', 'nproc' => (int) trim((string) shell_exec('nproc')),
    'cpu' => $cpu[1] ?? null, 'ram_gib' => isset($mem[1]) ? round($mem[1] / 1048576, 1) : null,
    'loadavg_at_start' => trim((string) @file_get_contents('/proc/loadavg')),
    'os' => trim((string) @file_get_contents('/etc/debian_version')), 'php' => PHP_VERSION,
    'postgresql' => $settings['server_version'],
    'timescaledb' => scale_value($ts, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"),
    'influxdb' => $influx, 'moodle' => $CFG->release, 'plugin' => $plugin->version ?? null,
    'extension' => tsdb_version(), 'extension_sha256' => hash_file('sha256', scale_env('TSDB_SO')),
    'commit' => $git . ($dirty !== '' ? ' + uncommitted changes in src/ or moodle-plugin/' : ''),
    'pg_settings' => $settings,
]);
scale_say("{$CFG->release}, PostgreSQL {$settings['server_version']}, shared_buffers {$settings['shared_buffers']}");

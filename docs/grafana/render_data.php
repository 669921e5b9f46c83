<?php
// The data side of docs/grafana/render.py (run by it, not by hand), inside a real Moodle site (tests/servers/moodle.sh):
// fills the throwaway databases with the simulated Moodle days of php/demo/moodle_day.php through the tsdb extension,
// as ./build.sh demo does, reporting the writers' counters into the site's own tables through the plugin's
// metrics::record(), and runs every panel query of the dashboards with the test suite's own expansion of Grafana's
// macros and variables (tests/moodle/tests/grafana_test.php), printing the results as JSON.
//
// MOODLE_SITE=DIR php PHPARGS render_data.php install
// MOODLE_SITE=DIR php PHPARGS render_data.php fill postgres|influxdb FIRSTDAY DAYS EVENTS_PER_DAY SECONDS
// MOODLE_SITE=DIR php PHPARGS render_data.php query FROM TO HEALTH_FROM HEALTH_TO > results.json
//
// DIR: the site (its site.json; PHPARGS: its phpargs, the extension among them). Environment: TSDB_TEST_PG_* (the
// server that holds the log table) and, for the InfluxDB boards, TSDB_TEST_INFLUX_URL, as tests/servers/*.sh export
// them.

$repo = dirname(__DIR__, 2);
$mode = $argv[1] ?? '';
require_once('PHPUnit/Autoload.php'); // The test bootstrap loads the test case classes (Debian's phpunit package).
require_once($repo . '/tests/moodle/bootstrap.php');
require_once($repo . '/tests/moodle/tests/analytics_fixture.php');
require_once($repo . '/php/demo/moodle_day.php');

/** The log table: the dashboards' default. */
const RENDER_TABLE = 'logstore_tsdb_log';
/** The InfluxDB database. */
const RENDER_INFLUX_DB = 'moodle';

/**
 * The extension's settings for a backend, as the plugin gives them (log_dataset's, with the demo's batching).
 *
 * @param string $backend
 * @return stdClass plugin config
 */
function render_config(string $backend): stdClass {
    $settings = $backend === 'postgres' ? log_dataset::pg_settings(RENDER_TABLE)
        : ['pseudonymise' => 0] + log_dataset::influx_settings(RENDER_INFLUX_DB);
    return log_dataset::plugin_config($settings + ['batch_size' => 5000, 'flush_interval_ms' => 200]);
}

/**
 * Writes DAYS simulated days through the extension, spread over SECONDS of wall time, and reports this process's
 * counters to Moodle's tables (logstore_tsdb_workers / _metrics) every second, as the plugin does after each request.
 *
 * @param string $backend
 * @param int $firstday unix time of the first day (UTC midnight)
 * @param int $days
 * @param int $perday events on a weekday (Saturday and Sunday: a third)
 * @param int $seconds
 */
function render_fill(string $backend, int $firstday, int $days, int $perday, int $seconds): void {
    tsdb_configure(\logstore_tsdb\local\settings_definition::extension_config(render_config($backend)));
    $host = gethostname() . " ($backend)";
    $t0 = microtime(true);
    $lastreport = 0;
    $total = 0;
    for ($d = 0; $d < $days; $d++) {
        $day = $firstday + $d * 86400;
        $n = in_array(gmdate('N', $day), ['6', '7'], true) ? intdiv($perday, 3) : $perday;
        foreach (tsdb_demo_events($n, $day, 3000, 40, 42 + $d) as $i => $event) {
            while (!tsdb_log_event($event)) {
                tsdb_flush(10000);
            }
            if ($i % 500 === 0) {
                // Paced: day $d of $days ends at ($d + 1) / $days of the time given.
                $due = $t0 + $seconds * ($d + $i / $n) / $days;
                if ($due > microtime(true)) {
                    usleep((int) (($due - microtime(true)) * 1e6));
                }
                if (time() !== $lastreport) {
                    $lastreport = time();
                    \logstore_tsdb\local\metrics::record($host, getmypid(), tsdb_stats(), $lastreport);
                }
            }
        }
        $total += $n;
    }
    $pending = tsdb_flush(120000);
    $stats = tsdb_stats();
    \logstore_tsdb\local\metrics::record($host, getmypid(), $stats, time());
    fprintf(STDERR, "render_data: %s: %d events of %d days, written %d, failed %d, pending %d\n", $backend, $total, $days,
        $stats['written'], $stats['failed'], $pending);
    if ($pending !== 0 || (int) $stats['written'] !== $total) {
        fprintf(STDERR, "render_data: not every event was written: %s\n", $stats['last_error']);
        exit(1);
    }
}

switch ($mode) {
    case 'install':
        // The site's counters tables hold only what the fill processes report; the InfluxDB database and its rollup
        // retention policy as docs/grafana/README.md asks.
        $DB->delete_records('logstore_tsdb_workers');
        $DB->delete_records('logstore_tsdb_metrics');
        if (getenv('TSDB_TEST_INFLUX_URL')) {
            $client = new \logstore_tsdb\local\influx_client(render_config('influxdb'));
            $client->query('CREATE DATABASE ' . RENDER_INFLUX_DB, true);
            $client->query(analytics_fixture::influxql_statements(RENDER_INFLUX_DB)['rollup_retention'], true);
        }
        break;
    case 'fill':
        render_fill($argv[2], (int) $argv[3], (int) $argv[4], (int) $argv[5], (int) $argv[6]);
        break;
    case 'query':
        require_once($repo . '/tests/moodle/tests/grafana_test.php');
        require_once(__DIR__ . '/render_probe.php');
        echo json_encode(render_probe::all_panels((int) $argv[2], (int) $argv[3], (int) $argv[4], (int) $argv[5]),
            JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
        break;
    default:
        fwrite(STDERR, "usage: see the top of " . __FILE__ . "\n");
        exit(2);
}

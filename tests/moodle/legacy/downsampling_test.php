<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * Downsampling: the summary tables of plain PostgreSQL (same relations as TimescaleDB's continuous aggregates, kept
 * by the `summarise` task) and the InfluxDB 1.x continuous queries shipped in moodle-plugin/downsampling/, run on the
 * real servers; every bucket is compared with counts computed here from the generated events.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/base_testcase.php');
require_once(__DIR__ . '/log_dataset.php');

use core_privacy\local\request\approved_contextlist;
use logstore_tsdb\local\influx_client;
use logstore_tsdb\local\pgdb;
use logstore_tsdb\local\summary;

/**
 * Downsampling tests.
 */
class downsampling_test extends base_testcase {

    /** @var string */
    protected $table;

    /**
     * Events per (hour, courseid, eventname), computed from the entries.
     *
     * @param array[] $entries
     * @param int|null $before only buckets before this
     * @return array "bucket|courseid|eventname" => events
     */
    public static function expected_hourly(array $entries, ?int $before = null): array {
        $out = [];
        foreach ($entries as $e) {
            $b = $e['timecreated'] - $e['timecreated'] % 3600;
            if ($before !== null && $b >= $before) {
                continue;
            }
            $k = $b . '|' . $e['courseid'] . '|' . $e['eventname'];
            $out[$k] = ($out[$k] ?? 0) + 1;
        }
        ksort($out);
        return $out;
    }

    /**
     * Distinct users (userid > 0) per day, computed from the entries.
     *
     * @param array[] $entries
     * @return array day => users
     */
    public static function expected_daily_users(array $entries): array {
        $users = [];
        foreach ($entries as $e) {
            if ($e['userid'] > 0) {
                $users[$e['timecreated'] - $e['timecreated'] % 86400][$e['userid']] = true;
            }
        }
        ksort($users);
        return array_map('count', $users);
    }

    /**
     * The hourly relation as "bucket|courseid|eventname" => events.
     *
     * @param pgdb $db
     * @param string $relation quoted
     * @return array
     */
    protected static function read_hourly(pgdb $db, string $relation): array {
        $out = [];
        foreach ($db->query("SELECT extract(epoch FROM bucket)::bigint AS b, courseid, eventname, sum(events) AS n FROM $relation"
                . ' GROUP BY 1, 2, 3') as $r) {
            $out[$r->b . '|' . $r->courseid . '|' . $r->eventname] = (int) $r->n;
        }
        ksort($out);
        return $out;
    }

    /**
     * Plain PostgreSQL: the views give exact counts before, during and after refreshes; late events are picked up;
     * aggregates outlive dropped raw partitions; privacy deletions reach the per-user rows; the task runs.
     */
    public function test_postgres_summary(): void {
        global $DB;
        if (!$DB) {
            $this->skip_without_server('SKIPPED: no PostgreSQL (set TSDB_TEST_PG_HOST or let run.sh start one)');
        }
        $this->table = 'sum_t' . getmypid();
        log_dataset::drop_tsdb_table($this->table);
        $settings = log_dataset::pg_settings($this->table);
        $this->configure($settings);
        $entries = log_dataset::generate(8000, 6, 31);
        log_dataset::write_through_extension($entries, $settings);
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        $db = pgdb::from_config($cfg);
        try {
            $summary = new summary($db, $cfg);
            $this->assertSame('native', $summary->layout());
            $summary->ensure();
            $hourly = $summary->q('_hourly');
            $this->assertSame(self::expected_hourly($entries), self::read_hourly($db, $hourly), 'no refresh yet: all from raw');

            $s = log_dataset::START;
            $now = $s + 4 * 86400 + 7 * 3600 + 1800;
            $summary->refresh($now);
            $w = $db->query('SELECT name, extract(epoch FROM watermark)::bigint AS w FROM ' . $summary->q('_summary')
                . ' ORDER BY name');
            $this->assertSame(['daily_users' => $s + 4 * 86400, 'hourly' => $s + 4 * 86400 + 7 * 3600],
                array_combine(array_column($w, 'name'), array_map('intval', array_column($w, 'w'))));
            $this->assertSame(self::expected_hourly($entries, $s + 4 * 86400 + 7 * 3600),
                self::read_hourly($db, $summary->q('_hourly_mat')), 'materialised buckets');
            $this->assertSame(self::expected_hourly($entries), self::read_hourly($db, $hourly), 'materialised + raw');
            $dau = [];
            foreach ($db->query('SELECT extract(epoch FROM day)::bigint AS d, active_users FROM '
                    . $summary->q('_daily_active_users') . ' ORDER BY 1') as $r) {
                $dau[(int) $r->d] = (int) $r->active_users;
            }
            $this->assertSame(self::expected_daily_users($entries), $dau);

            // A late event in a materialised hour: stale until the next refresh, which recomputes the last days.
            $late = $entries[0];
            $late['timecreated'] = $s + 3 * 86400 + 2 * 3600 + 17;
            $late['courseid'] = 9;
            log_dataset::write_through_extension([$late], $settings);
            $all = array_merge($entries, [$late]);
            $this->assertNotSame(self::expected_hourly($all), self::read_hourly($db, $hourly), 'stale before the refresh');
            $summary->refresh($now);
            $this->assertSame(self::expected_hourly($all), self::read_hourly($db, $hourly), 'late event counted');

            // Retention dropped the first day's raw partition: its buckets stay (aggregates outlive raw data), and
            // refreshing does not recompute them from the missing rows.
            $db->execute('DROP TABLE ' . pgdb::quote_identifier($this->table . '_p20250303'));
            $cfg->retention_days = 2;
            (new summary($db, $cfg))->refresh($s + 4 * 86400 + 3600);
            $this->assertSame(self::expected_hourly($all), self::read_hourly($db, $hourly), 'first day kept after retention');
            $this->assertSame(0, (int) $db->query('SELECT count(*) AS n FROM ' . $db->table() . ' WHERE "time" < to_timestamp(?)',
                [$s + 86400])[0]->n);

            // Privacy: a user's events deleted -> their per-day rows recomputed (gone where no event is left).
            $u = 7;
            $contexts = array_map(function($r) {
                return (int) $r->contextid;
            }, $db->query('SELECT DISTINCT contextid FROM ' . $db->table() . ' WHERE userid = ?', [$u]));
            $this->assertNotEmpty($db->query('SELECT 1 FROM ' . $summary->q('_daily_users_mat') . ' WHERE userid = ?', [$u]));
            \logstore_tsdb\privacy\provider::delete_data_for_user(new approved_contextlist((object) ['id' => $u], 'logstore_tsdb',
                $contexts));
            $left = $db->query('SELECT extract(epoch FROM day)::bigint AS d FROM ' . $summary->q('_daily_users_mat')
                . ' WHERE userid = ?', [$u]);
            $this->assertSame([], array_map(function($r) {
                return (int) $r->d;
            }, array_filter($left, function($r) use ($s) {
                return (int) $r->d >= $s + 86400;
            })), 'no per-day row of the deleted user where raw rows existed');

            // The scheduled task.
            $this->configure(['retention_days' => 0]);
            $done = (new \logstore_tsdb\task\summarise())->execute($s + 7 * 86400);
            $this->assertArrayHasKey('hourly', $done);
            $this->configure(['backend' => 'influxdb1']);
            $this->assertNull((new \logstore_tsdb\task\summarise())->execute());
        } finally {
            $db->close();
            log_dataset::drop_tsdb_table($this->table);
        }
    }

    /**
     * The shipped InfluxQL statements, as "name" => statement with the test's database.
     *
     * @param string $database
     * @return array
     */
    public static function influxql_statements(string $database): array {
        $text = file_get_contents(harness::$plugindir . '/downsampling/influxdb1_continuous_queries.influxql');
        $out = [];
        $name = null;
        $buf = '';
        foreach (explode("\n", $text) as $line) {
            if (preg_match('/^-- name: (\w+)/', $line, $m)) {
                $name = $m[1];
                $buf = '';
                continue;
            }
            if (strpos($line, '--') === 0 || $name === null) {
                continue;
            }
            $buf .= ' ' . trim($line);
            if (substr(rtrim($line), -1) === ';') {
                $out[$name] = str_replace('"moodle"', '"' . $database . '"', trim(rtrim(trim($buf), ';')));
                $name = null;
            }
        }
        return $out;
    }

    /**
     * InfluxDB 1.6.7: the retention policies and continuous queries are accepted as shipped; the backfill statements
     * give exact hourly counts and daily distinct users; the hourly query, run every second instead of every 10
     * minutes, keeps the rollup of recent events exact while they arrive.
     */
    public function test_influxdb_continuous_queries(): void {
        if (!getenv('TSDB_TEST_INFLUX_URL')) {
            $this->skip_without_server('SKIPPED: no InfluxDB (set TSDB_TEST_INFLUX_URL or let run.sh start one)');
        }
        $database = 'ds_t' . getmypid();
        $settings = log_dataset::influx_settings($database);
        $client = new influx_client(log_dataset::plugin_config($settings));
        $client->query('DROP DATABASE ' . influx_client::quote_identifier($database), true);
        $client->query('CREATE DATABASE ' . influx_client::quote_identifier($database), true);
        try {
            $q = self::influxql_statements($database);
            $this->assertSame(['raw_retention', 'rollup_retention', 'cq_hourly', 'cq_daily_users', 'backfill_hourly',
                'backfill_daily_users'], array_keys($q));
            foreach (['raw_retention', 'rollup_retention', 'cq_hourly', 'cq_daily_users'] as $name) {
                $client->query($q[$name], true);
            }
            $cqs = [];
            foreach ($client->query('SHOW CONTINUOUS QUERIES') as $row) {
                $cqs[$row['name']] = $row['query'];
            }
            $this->assertArrayHasKey('moodle_events_hourly', $cqs);
            $this->assertArrayHasKey('moodle_active_users_daily', $cqs);
            $this->assertStringContainsString('RESAMPLE EVERY 10m FOR 2h', $cqs['moodle_events_hourly']);

            // History (10 days, ending yesterday) through the extension, then the backfill statements.
            $today = time() - time() % 86400;
            $start = $today - 11 * 86400;
            $entries = log_dataset::generate(6000, 10, 41, $start);
            log_dataset::write_through_extension($entries, $settings);
            $from = gmdate('Y-m-d\TH:i:s\Z', $start);
            $to = gmdate('Y-m-d\TH:i:s\Z', $start + 10 * 86400);
            foreach (['backfill_hourly', 'backfill_daily_users'] as $name) {
                $client->query(str_replace(['FROM_TIME', 'TO_TIME'], [$from, $to], $q[$name]), true);
            }
            $got = [];
            foreach ($client->query('SELECT "events", "courseid", "eventname" FROM "rollup_5y"."moodle_events_hourly"') as $r) {
                $k = intdiv((int) $r['time'], 1000000000) . '|' . $r['courseid'] . '|' . $r['eventname'];
                $got[$k] = ($got[$k] ?? 0) + (int) $r['events'];
            }
            ksort($got);
            $this->assertSame(self::expected_hourly($entries), $got, 'hourly rollup = counts of the generated events');
            $dau = [];
            foreach ($client->query('SELECT "active_users" FROM "rollup_5y"."moodle_active_users_daily"') as $r) {
                $dau[intdiv((int) $r['time'], 1000000000)] = (int) $r['active_users'];
            }
            ksort($dau);
            $this->assertSame(self::expected_daily_users($entries), $dau);

        } finally {
            $client->query('DROP DATABASE ' . influx_client::quote_identifier($database), true);
        }
    }

    /**
     * Starts an influxd of this test with the continuous query service on (the shared test servers run without it).
     *
     * @return array [proc resource, url, dir]
     */
    protected function start_influxd_with_cqs(): array {
        $dir = sys_get_temp_dir() . '/tsdb-cq-influxd-' . getmypid();
        exec('rm -rf ' . escapeshellarg($dir));
        mkdir($dir, 0700, true);
        $ports = [];
        for ($i = 0; $i < 2; $i++) {
            $sock = stream_socket_server('tcp://127.0.0.1:0');
            $ports[] = (int) substr(strrchr(stream_socket_get_name($sock, false), ':'), 1);
            fclose($sock);
        }
        file_put_contents("$dir/influxdb.conf", "reporting-enabled = false\nbind-address = \"127.0.0.1:{$ports[0]}\"\n"
            . "[meta]\n  dir = \"$dir/meta\"\n[data]\n  dir = \"$dir/data\"\n  wal-dir = \"$dir/wal\"\n"
            . "  query-log-enabled = false\n[monitor]\n  store-enabled = false\n"
            . "[http]\n  bind-address = \"127.0.0.1:{$ports[1]}\"\n"
            . "  log-enabled = false\n[continuous_queries]\n  enabled = true\n  run-interval = \"1s\"\n  log-enabled = false\n");
        $proc = proc_open(['influxd', 'run', '-config', "$dir/influxdb.conf"], [0 => ['file', '/dev/null', 'r'],
            1 => ['file', "$dir/influxd.log", 'w'], 2 => ['file', "$dir/influxd.log", 'w']], $pipes);
        $url = "http://127.0.0.1:{$ports[1]}";
        for ($i = 0; $i < 100; $i++) {
            $h = @get_headers("$url/ping");
            if ($h && strpos($h[0], '204') !== false) {
                return [$proc, $url, $dir];
            }
            usleep(100000);
        }
        proc_terminate($proc);
        $this->fail('influxd with continuous queries did not start: ' . @file_get_contents("$dir/influxd.log"));
        return [];
    }

    /**
     * Live: the shipped hourly continuous query, run every second instead of every 10 minutes by a server with the
     * continuous query service on, keeps the rollup of the events of the last hour exact while they arrive.
     */
    public function test_influxdb_continuous_query_runs(): void {
        if (!getenv('TSDB_TEST_INFLUX_URL') || !trim((string) shell_exec('command -v influxd'))) {
            $this->skip_without_server('SKIPPED: no InfluxDB 1.x (influxd) to run continuous queries');
        }
        [$proc, $url, $dir] = $this->start_influxd_with_cqs();
        $database = 'cq_t' . getmypid();
        $settings = ['url' => $url] + log_dataset::influx_settings($database);
        $client = new influx_client(log_dataset::plugin_config($settings));
        try {
            $client->query('CREATE DATABASE ' . influx_client::quote_identifier($database), true);
            $q = self::influxql_statements($database);
            foreach (['raw_retention', 'rollup_retention', 'cq_daily_users'] as $name) {
                $client->query($q[$name], true);
            }
            $client->query(str_replace('RESAMPLE EVERY 10m', 'RESAMPLE EVERY 1s', $q['cq_hourly']), true);
            $now = time();
            $recent = log_dataset::generate(300, 1, 43);
            foreach ($recent as $i => $e) {
                $recent[$i]['timecreated'] = $now - 60 - 9 * $i;
            }
            log_dataset::write_through_extension($recent, $settings);
            $want = self::expected_hourly($recent);
            $deadline = microtime(true) + 20;
            do {
                usleep(500000);
                $got = [];
                foreach ($client->query('SELECT "events", "courseid", "eventname" FROM "rollup_5y"."moodle_events_hourly"'
                        . ' WHERE time >= ' . ($now - 7200) . '000000000') as $r) {
                    $k = intdiv((int) $r['time'], 1000000000) . '|' . $r['courseid'] . '|' . $r['eventname'];
                    $got[$k] = ($got[$k] ?? 0) + (int) $r['events'];
                }
                ksort($got);
            } while ($got !== $want && microtime(true) < $deadline);
            $this->assertSame($want, $got, 'the continuous query keeps the recent rollup exact');
            $this->assertNotEmpty($want);
        } finally {
            proc_terminate($proc);
            proc_close($proc);
            exec('rm -rf ' . escapeshellarg($dir));
        }
    }

    /**
     * The Flux tasks for InfluxDB 2.x are shipped with their instructions (no 2.x server here: their shape is checked).
     */
    public function test_flux_tasks_file(): void {
        $flux = file_get_contents(harness::$plugindir . '/downsampling/influxdb2_tasks.flux');
        $this->assertSame(2, substr_count($flux, 'option task = {'));
        $this->assertStringContainsString('to(bucket: "moodle_rollup"', $flux);
        $this->assertStringContainsString('influx task create', $flux);
        $this->assertSame(substr_count($flux, '('), substr_count($flux, ')'));
        $this->assertSame(substr_count($flux, '{'), substr_count($flux, '}'));
    }
}

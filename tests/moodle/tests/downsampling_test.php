<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * Downsampling in a real site, every bucket compared with the counts computed from the site's logstore_standard_log
 * (real events plus log_dataset rows, brought into each backend by the plugin's importer or written live by the store):
 * TimescaleDB's continuous aggregates kept by its refresh policy run by its own scheduler; the summary tables of plain
 * PostgreSQL (the same relations, kept by the `summarise` task); the InfluxDB 1.x continuous queries shipped in
 * moodle-plugin/downsampling/, as backfill and live on a server with the continuous query service on.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/analytics_fixture.php');

use core_privacy\local\request\approved_contextlist;
use logstore_tsdb\local\import\db_source;
use logstore_tsdb\local\import\importer;
use logstore_tsdb\local\influx_client;
use logstore_tsdb\local\pgdb;
use logstore_tsdb\local\summary;

/**
 * Collects what a task prints with mtrace() (as $CFG->mtrace_wrapper).
 *
 * @param string $string
 * @param string $eol
 */
function downsampling_test_mtrace(string $string, string $eol): void {
    downsampling_test::$printed .= $string . $eol;
}

/**
 * Downsampling tests.
 */
class downsampling_test extends base_testcase {
    use analytics_targets;

    /** @var string What tasks printed with mtrace(). */
    public static $printed = '';

    /**
     * The site's logstore_standard_log imported into the configured target, in this process; its rows, typed.
     *
     * @return array[]
     */
    protected function import(): array {
        $r = (new importer(\logstore_tsdb\log\store::read_plugin_config(), new db_source(), ['to' => null, 'chunk' => 5000]))
            ->run();
        $entries = analytics_fixture::entries(analytics_fixture::standard_rows());
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame(count($entries), $r['counts']['imported']);
        return $entries;
    }

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
     * Events per (day, userid > 0), computed from the entries.
     *
     * @param array[] $entries
     * @param int|null $before only days before this
     * @return array "day|userid" => events
     */
    public static function expected_daily_users(array $entries, ?int $before = null): array {
        $out = [];
        foreach ($entries as $e) {
            $d = $e['timecreated'] - $e['timecreated'] % 86400;
            if ($e['userid'] > 0 && ($before === null || $d < $before)) {
                $out[$d . '|' . $e['userid']] = ($out[$d . '|' . $e['userid']] ?? 0) + 1;
            }
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
    public static function expected_active_users(array $entries): array {
        $out = [];
        foreach (array_keys(self::expected_daily_users($entries)) as $k) {
            $d = (int) explode('|', $k)[0];
            $out[$d] = ($out[$d] ?? 0) + 1;
        }
        return $out;
    }

    /**
     * An hourly relation as "bucket|courseid|eventname" => events.
     *
     * @param pgdb $db
     * @param string $relation quoted
     * @param string $bucket its time column
     * @return array
     */
    protected static function read_hourly(pgdb $db, string $relation, string $bucket = 'bucket'): array {
        $out = [];
        foreach ($db->query("SELECT extract(epoch FROM $bucket)::bigint AS b, courseid, eventname, sum(events) AS n"
                . " FROM $relation GROUP BY 1, 2, 3") as $r) {
            $out[$r->b . '|' . $r->courseid . '|' . $r->eventname] = (int) $r->n;
        }
        ksort($out);
        return $out;
    }

    /**
     * A per-day-and-user relation as "day|userid" => events.
     *
     * @param pgdb $db
     * @param string $relation quoted
     * @return array
     */
    protected static function read_daily_users(pgdb $db, string $relation): array {
        $out = [];
        foreach ($db->query("SELECT extract(epoch FROM day)::bigint AS d, userid, sum(events) AS n FROM $relation"
                . ' GROUP BY 1, 2') as $r) {
            $out[$r->d . '|' . $r->userid] = (int) $r->n;
        }
        ksort($out);
        return $out;
    }

    /**
     * TimescaleDB: two days of events up to an hour ago (and the real events of now) imported; the refresh policy of
     * each continuous aggregate, run by TimescaleDB's own scheduler and nothing else, materialises every bucket up
     * to its end offset (one hour before now) with exactly the counts of logstore_standard_log, and the real-time
     * aggregates (materialised buckets plus the newest raw rows) give every count.
     */
    public function test_timescaledb_continuous_aggregates(): void {
        $name = $this->target('timescaledb');
        analytics_fixture::fire_real_events($this->gen());
        $hour = time() - time() % 3600;
        log_dataset::insert_standard(log_dataset::generate(6000, 2, 33, $hour - 49 * 3600));
        $entries = $this->import();
        $ran = analytics_fixture::run_policies($name, ['policy_refresh_continuous_aggregate']);
        $this->assertCount(2, $ran, 'one refresh policy per aggregate');

        $db = analytics_fixture::pg(analytics_fixture::settings('timescaledb', $name));
        try {
            $now = time();
            foreach (['_hourly' => 3600, '_daily_users' => 86400] as $suffix => $bucket) {
                $view = summary::derived($name, $suffix);
                $agg = $db->query('SELECT materialization_hypertable_schema AS s, materialization_hypertable_name AS t'
                    . ' FROM timescaledb_information.continuous_aggregates WHERE view_schema = ? AND view_name = ?',
                    ['public', $view]);
                $this->assertCount(1, $agg, "$view is a continuous aggregate");
                $mat = pgdb::quote_identifier($agg[0]->s) . '.' . pgdb::quote_identifier($agg[0]->t);
                $w = (int) $db->query('SELECT extract(epoch FROM _timescaledb_functions.to_timestamp('
                    . '_timescaledb_functions.cagg_watermark(mat_hypertable_id)))::bigint AS w'
                    . ' FROM _timescaledb_catalog.continuous_agg WHERE user_view_schema = ? AND user_view_name = ?',
                    ['public', $view])[0]->w;
                // The newest bucket the policy materialises ends at or before now - 1 hour: the watermark is the end
                // of the newest bucket with events in it.
                $end = $now - 3600 - ($now - 3600) % $bucket;
                $last = max(array_filter(array_column($entries, 'timecreated'), function($t) use ($end) {
                    return $t < $end;
                }));
                $this->assertSame($last - $last % $bucket + $bucket, $w, "$view: materialised by the policy up to now - 1 h");
                if ($suffix === '_hourly') {
                    $want = self::expected_hourly($entries, $w);
                    $this->assertGreaterThan(40 * 5, count($want));
                    $this->assertSame($want, self::read_hourly($db, $mat), "$view: the materialised buckets");
                    $this->assertSame(self::expected_hourly($entries), self::read_hourly($db, pgdb::quote_identifier($view)),
                        "$view: every bucket (real-time)");
                } else {
                    $want = self::expected_daily_users($entries, $w);
                    $this->assertNotEmpty($want);
                    $this->assertSame($want, self::read_daily_users($db, $mat), "$view: the materialised days");
                    $this->assertSame(self::expected_daily_users($entries), self::read_daily_users($db,
                        pgdb::quote_identifier($view)), "$view: every day (real-time)");
                }
            }
            $dau = [];
            foreach ($db->query('SELECT extract(epoch FROM day)::bigint AS d, active_users FROM '
                    . pgdb::quote_identifier(summary::derived($name, '_daily_active_users'))) as $r) {
                $dau[(int) $r->d] = (int) $r->active_users;
            }
            ksort($dau);
            $this->assertSame(self::expected_active_users($entries), $dau, 'daily active users');
        } finally {
            $db->close();
        }
    }

    /**
     * Plain PostgreSQL: the views give exact counts before, during and after refreshes; late events are picked up
     * (written live: at the next refresh; imported: at once, the importer recomputes the period); aggregates outlive
     * dropped raw partitions; privacy deletions reach the per-user rows; the task runs.
     */
    public function test_postgres_summary(): void {
        $name = $this->target('postgres');
        analytics_fixture::fire_real_events($this->gen());
        $s = log_dataset::START;
        log_dataset::insert_standard(log_dataset::generate(8000, 6, 31));
        $entries = $this->import();
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        $db = pgdb::from_config($cfg);
        try {
            $summary = new summary($db, $cfg);
            $this->assertSame('native', $summary->layout());
            $summary->ensure();
            $hourly = $summary->q('_hourly');
            $this->assertSame(self::expected_hourly($entries), self::read_hourly($db, $hourly), 'no refresh yet: all from raw');

            $now = $s + 4 * 86400 + 7 * 3600 + 1800;
            $summary->refresh($now);
            $w = $db->query('SELECT name, extract(epoch FROM watermark)::bigint AS w FROM ' . $summary->q('_summary')
                . ' ORDER BY name');
            $this->assertSame(['daily_users' => $s + 4 * 86400, 'hourly' => $s + 4 * 86400 + 7 * 3600],
                array_combine(array_column($w, 'name'), array_map('intval', array_column($w, 'w'))));
            $this->assertSame(self::expected_hourly($entries, $s + 4 * 86400 + 7 * 3600),
                self::read_hourly($db, $summary->q('_hourly_mat')), 'materialised buckets');
            $this->assertSame(self::expected_hourly($entries), self::read_hourly($db, $hourly), 'materialised + raw');
            $this->assertSame(self::expected_daily_users($entries), self::read_daily_users($db, $summary->q('_daily_users')));
            $dau = [];
            foreach ($db->query('SELECT extract(epoch FROM day)::bigint AS d, active_users FROM '
                    . $summary->q('_daily_active_users') . ' ORDER BY 1') as $r) {
                $dau[(int) $r->d] = (int) $r->active_users;
            }
            $this->assertSame(self::expected_active_users($entries), $dau);

            // A late event written live (a spool replayed after an outage) in a materialised hour: stale until the
            // next refresh, which recomputes the last days.
            $late = $entries[count($entries) - 1];
            $late['timecreated'] = $s + 3 * 86400 + 2 * 3600 + 17;
            $late['courseid'] = 9;
            log_dataset::write_through_extension([$late], analytics_fixture::settings('postgres', $name));
            $all = array_merge($entries, [$late]);
            $this->assertNotSame(self::expected_hourly($all), self::read_hourly($db, $hourly), 'stale before the refresh');
            $summary->refresh($now);
            $this->assertSame(self::expected_hourly($all), self::read_hourly($db, $hourly), 'late event counted');

            // Rows imported later into a materialised day older than the refresh's look-back: counted at once.
            global $DB;
            $DB->delete_records('logstore_standard_log');
            $old = log_dataset::generate(300, 1, 35, $s);
            log_dataset::insert_standard($old);
            $more = $this->import();
            $all = array_merge($all, $more);
            $this->assertSame(self::expected_hourly($all), self::read_hourly($db, $hourly), 'an import recomputes its period');
            $this->assertSame(self::expected_daily_users($all), self::read_daily_users($db, $summary->q('_daily_users')));

            // Retention dropped the first day's raw partition: its buckets stay (aggregates outlive raw data), and
            // refreshing does not recompute them from the missing rows.
            $db->execute('DROP TABLE ' . pgdb::quote_identifier($name . '_p' . gmdate('Ymd', $s)));
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
            \logstore_tsdb\privacy\provider::delete_data_for_user(new approved_contextlist((object) ['id' => $u],
                'logstore_tsdb', $contexts));
            $left = $db->query('SELECT extract(epoch FROM day)::bigint AS d FROM ' . $summary->q('_daily_users_mat')
                . ' WHERE userid = ?', [$u]);
            $this->assertSame([], array_map(function($r) {
                return (int) $r->d;
            }, array_filter($left, function($r) use ($s) {
                return (int) $r->d >= $s + 86400;
            })), 'no per-day row of the deleted user where raw rows existed');

            // The scheduled task.
            $this->configure(['retention_days' => 0]);
            global $CFG;
            $CFG->mtrace_wrapper = 'downsampling_test_mtrace';
            try {
                $done = (new \logstore_tsdb\task\summarise())->execute($s + 7 * 86400);
                $this->assertArrayHasKey('hourly', $done);
                $this->assertStringContainsString('buckets recomputed for', self::$printed);
                $this->configure(['backend' => 'influxdb1']);
                $this->assertNull((new \logstore_tsdb\task\summarise())->execute());
            } finally {
                unset($CFG->mtrace_wrapper);
            }
        } finally {
            $db->close();
        }
    }

    /**
     * InfluxDB 1.6.7: the retention policies and continuous queries are accepted as shipped; after an import of ten
     * days of logstore_standard_log, the backfill statements give exact hourly counts and daily distinct users.
     */
    public function test_influxdb_continuous_queries(): void {
        $name = $this->target('influxdb1');
        $client = analytics_fixture::influx(analytics_fixture::settings('influxdb1', $name));
        $q = analytics_fixture::influxql_statements($name);
        $this->assertSame(['raw_retention', 'rollup_retention', 'cq_hourly', 'cq_daily_users', 'backfill_hourly',
            'backfill_daily_users'], array_keys($q));
        foreach (['raw_retention', 'rollup_retention', 'cq_hourly', 'cq_daily_users'] as $statement) {
            $client->query($q[$statement], true);
        }
        $cqs = [];
        foreach ($client->query('SHOW CONTINUOUS QUERIES') as $row) {
            $cqs[$row['name']] = $row['query'];
        }
        $this->assertArrayHasKey('moodle_events_hourly', $cqs);
        $this->assertArrayHasKey('moodle_active_users_daily', $cqs);
        $this->assertStringContainsString('RESAMPLE EVERY 10m FOR 2h', $cqs['moodle_events_hourly']);

        // History (10 days, ending yesterday; inside the raw retention policy of 400 days), imported.
        $today = time() - time() % 86400;
        $start = $today - 11 * 86400;
        log_dataset::insert_standard(log_dataset::generate(6000, 10, 41, $start));
        $entries = $this->import();
        foreach (['backfill_hourly', 'backfill_daily_users'] as $statement) {
            $client->query(str_replace(['FROM_TIME', 'TO_TIME'], [analytics_fixture::influx_time($start),
                analytics_fixture::influx_time($start + 10 * 86400)], $q[$statement]), true);
        }
        $got = [];
        foreach ($client->query('SELECT "events", "courseid", "eventname" FROM "rollup_5y"."moodle_events_hourly"') as $r) {
            $k = intdiv((int) $r['time'], 1000000000) . '|' . $r['courseid'] . '|' . $r['eventname'];
            $got[$k] = ($got[$k] ?? 0) + (int) $r['events'];
        }
        ksort($got);
        $this->assertSame(self::expected_hourly($entries), $got, 'hourly rollup = counts of logstore_standard_log');
        $dau = [];
        foreach ($client->query('SELECT "active_users" FROM "rollup_5y"."moodle_active_users_daily"') as $r) {
            $dau[intdiv((int) $r['time'], 1000000000)] = (int) $r['active_users'];
        }
        ksort($dau);
        $this->assertSame(self::expected_active_users($entries), $dau);
    }

    /**
     * Starts an influxd of this test with the continuous query service on (the shared test servers run without it).
     *
     * @return array [proc resource, url, dir]
     */
    protected function start_influxd_with_cqs(): array {
        $dir = $this->dir . '/influxd';
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
        proc_close($proc);
        $this->fail('influxd with continuous queries did not start: ' . @file_get_contents("$dir/influxd.log"));
        return [];
    }

    /**
     * Live: real events of the site, written by the store to a server with the continuous query service on, and the
     * shipped hourly continuous query run every second instead of every 10 minutes: the rollup of the last hour keeps
     * exactly the counts of logstore_standard_log for the same events.
     */
    public function test_influxdb_continuous_query_runs(): void {
        $this->server_env('TSDB_TEST_INFLUX_URL');
        [$proc, $url, $dir] = $this->start_influxd_with_cqs();
        $database = 'cq_t' . getmypid();
        $settings = ['url' => $url] + log_dataset::influx_settings($database);
        $client = analytics_fixture::influx($settings);
        try {
            $client->query('CREATE DATABASE ' . influx_client::quote_identifier($database), true);
            $q = analytics_fixture::influxql_statements($database);
            foreach (['raw_retention', 'rollup_retention', 'cq_daily_users'] as $statement) {
                $client->query($q[$statement], true);
            }
            $client->query(str_replace('RESAMPLE EVERY 10m', 'RESAMPLE EVERY 1s', $q['cq_hourly']), true);
            [$course, $students] = analytics_fixture::fire_real_events($this->gen());
            $this->forget_events_so_far();
            $this->configure($settings);
            $coursectx = context_course::instance($course->id);
            foreach ($students as $u) {
                $this->set_user($u);
                for ($i = 0; $i < 100; $i++) {
                    \core\event\course_viewed::create(['context' => $coursectx])->trigger();
                }
            }
            $this->set_user(null);
            $this->new_request();
            $this->assertSame(0, tsdb_flush(30000), 'the store wrote every event');
            $want = self::expected_hourly(analytics_fixture::entries(analytics_fixture::standard_rows()));
            $this->assertSame(300, array_sum($want));
            $deadline = microtime(true) + 30;
            do {
                usleep(500000);
                $got = [];
                foreach ($client->query('SELECT "events", "courseid", "eventname" FROM "rollup_5y"."moodle_events_hourly"'
                        . ' WHERE time >= ' . (time() - 7200) . '000000000') as $r) {
                    $k = intdiv((int) $r['time'], 1000000000) . '|' . $r['courseid'] . '|' . $r['eventname'];
                    $got[$k] = ($got[$k] ?? 0) + (int) $r['events'];
                }
                ksort($got);
            } while ($got !== $want && microtime(true) < $deadline);
            $this->assertSame($want, $got, 'the continuous query keeps the recent rollup exact');
        } finally {
            proc_terminate($proc);
            proc_close($proc);
        }
    }

    /**
     * The Flux tasks for InfluxDB 2.x are shipped with their instructions (no 2.x server here: their shape is checked).
     */
    public function test_flux_tasks_file(): void {
        $flux = file_get_contents(tsdb_test_site::$info->plugindir . '/downsampling/influxdb2_tasks.flux');
        $this->assertSame(2, substr_count($flux, 'option task = {'));
        $this->assertStringContainsString('to(bucket: "moodle_rollup"', $flux);
        $this->assertStringContainsString('influx task create', $flux);
        $this->assertSame(substr_count($flux, '('), substr_count($flux, ')'));
        $this->assertSame(substr_count($flux, '{'), substr_count($flux, '}'));
    }
}

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

    /** @var array[] The aggregates (summary::AGGREGATES): suffix => [bucket column, bucket seconds, keys, values]. */
    const SPECS = [
        '_daily' => ['day', 86400, ['courseid', 'userid'], ['events', 'anonymous_events', 'teaching', 'participating']],
        '_daily_courses' => ['day', 86400, ['courseid'], ['active_users', 'events', 'anonymous_events', 'teaching',
            'participating', 'logins', 'failed_logins']],
        '_daily_users' => ['day', 86400, ['userid'], ['events', 'anonymous_events']],
        '_daily_active_users' => ['day', 86400, [], ['active_users', 'events']],
        '_hourly' => ['bucket', 3600, ['courseid'], ['events', 'other', 'teaching', 'participating', 'logins',
            'failed_logins']],
        '_activity' => ['day', 86400, ['courseid', 'contextlevel', 'contextinstanceid', 'component', 'eventname'], ['events']],
        '_daily_events' => ['day', 86400, ['eventname', 'origin'], ['events']],
        '_hourly_site' => ['bucket', 3600, [], ['events', 'other', 'teaching', 'participating', 'logins', 'failed_logins',
            'active_users']],
        '_weekly_courses' => ['week', 604800, ['courseid'], ['active_users', 'events']],
    ];

    /**
     * The site's logstore_standard_log, typed (what the test wrote there).
     *
     * @return array[]
     */
    protected static function standard_entries(): array {
        return analytics_fixture::entries(analytics_fixture::standard_rows());
    }

    /**
     * Events per (hour, courseid, eventname), computed from the entries (InfluxDB's hourly rollup).
     *
     * @param array[] $entries
     * @return array "bucket|courseid|eventname" => events
     */
    public static function expected_hourly(array $entries): array {
        $out = [];
        foreach ($entries as $e) {
            $k = ($e['timecreated'] - $e['timecreated'] % 3600) . '|' . $e['courseid'] . '|' . $e['eventname'];
            $out[$k] = ($out[$k] ?? 0) + 1;
        }
        ksort($out);
        return $out;
    }

    /**
     * Distinct users (userid > 0) per day, computed from the entries (days with such users).
     *
     * @param array[] $entries
     * @return array day => users
     */
    public static function expected_active_users(array $entries): array {
        $out = [];
        foreach ($entries as $e) {
            if ($e['userid'] > 0) {
                $out[$e['timecreated'] - $e['timecreated'] % 86400][$e['userid']] = true;
            }
        }
        ksort($out);
        return array_map('count', $out);
    }

    /**
     * The rows of an aggregate computed from the entries, as read() gives them.
     *
     * @param string $suffix
     * @param array[] $entries
     * @param int|null $before only buckets that end by this
     * @return string[] "bucket|keys..." => "values,..."
     */
    public static function expected(string $suffix, array $entries, ?int $before = null): array {
        [, $size, $keys, $values] = self::SPECS[$suffix];
        $sums = [];
        $users = [];
        foreach ($entries as $e) {
            // Buckets from Monday 1970-01-05: weeks start on Mondays (TimescaleDB, date_trunc('week')).
            $b = $e['timecreated'] - ($e['timecreated'] - 345600) % $size;
            if ($before !== null && $b + $size > $before) {
                continue;
            }
            $k = implode('|', array_merge([$b], array_map(function($c) use ($e) {
                return (string) $e[$c];
            }, $keys)));
            $v = ['events' => 1, 'anonymous_events' => (int) ($e['anonymous'] != 0), 'teaching' => (int) ($e['edulevel'] === 1),
                'participating' => (int) ($e['edulevel'] === 2), 'other' => (int) ($e['edulevel'] === 0), 'active_users' => 0,
                'logins' => (int) ($e['eventname'] === '\\core\\event\\user_loggedin'),
                'failed_logins' => (int) ($e['eventname'] === '\\core\\event\\user_login_failed')];
            foreach ($values as $c) {
                $sums[$k][$c] = ($sums[$k][$c] ?? 0) + $v[$c];
            }
            if ($e['userid'] > 0) {
                $users[$k][$e['userid']] = true;
            }
        }
        ksort($sums);
        $out = [];
        foreach ($sums as $k => $v) {
            if (isset($v['active_users'])) {
                $v['active_users'] = count($users[$k] ?? []);
            }
            $out[$k] = implode(',', $v);
        }
        return $out;
    }

    /**
     * The rows of an aggregate (its view, or a table of its materialised rows).
     *
     * @param pgdb $db
     * @param string $suffix
     * @param string $relation quoted
     * @return string[] "bucket|keys..." => "values,..."
     */
    protected function read(pgdb $db, string $suffix, string $relation): array {
        [$col, , $keys, $values] = self::SPECS[$suffix];
        $out = [];
        foreach ($db->query("SELECT extract(epoch FROM $col)::bigint AS b" . implode('', array_map(function($c) {
                return ", $c";
            }, array_merge($keys, $values))) . " FROM $relation") as $r) {
            $k = implode('|', array_merge([$r->b], array_map(function($c) use ($r) {
                return (string) $r->$c;
            }, $keys)));
            $this->assertArrayNotHasKey($k, $out, "$relation: one row per bucket and key");
            $out[$k] = implode(',', array_map(function($c) use ($r) {
                return (string) (int) $r->$c;
            }, $values));
        }
        ksort($out);
        return $out;
    }

    /**
     * TimescaleDB: the materialised part of each continuous aggregate (its materialisation hypertable, below the
     * watermark) and the aggregate itself (real-time) hold exactly the figures of the entries.
     *
     * @param pgdb $db
     * @param string $name
     * @param array[] $entries
     * @return int[] suffix => watermark
     */
    protected function assert_continuous_aggregates(pgdb $db, string $name, array $entries): array {
        $watermarks = [];
        foreach (array_keys(self::SPECS) as $suffix) {
            $view = summary::derived($name, $suffix);
            $agg = $db->query('SELECT materialization_hypertable_schema AS s, materialization_hypertable_name AS t,'
                . ' extract(epoch FROM _timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark('
                . 'c.mat_hypertable_id)))::bigint AS w FROM timescaledb_information.continuous_aggregates a'
                . ' JOIN _timescaledb_catalog.continuous_agg c ON c.user_view_schema = a.view_schema'
                . ' AND c.user_view_name = a.view_name WHERE view_schema = ? AND view_name = ?', ['public', $view]);
            $this->assertCount(1, $agg, "$view is a continuous aggregate");
            $mat = pgdb::quote_identifier($agg[0]->s) . '.' . pgdb::quote_identifier($agg[0]->t);
            $watermarks[$suffix] = $w = (int) $agg[0]->w;
            if (self::SPECS[$suffix][1] <= 86400) {
                // Weeks are materialised once they ended, an hour before the policy ran.
                $this->assertNotEmpty(self::expected($suffix, $entries, $w), "$view: materialised");
            }
            $this->assertSame(self::expected($suffix, $entries, $w), $this->read($db, $suffix, $mat), "$view: materialised");
            $this->assertSame(self::expected($suffix, $entries), $this->read($db, $suffix, pgdb::quote_identifier($view)),
                "$view: every bucket (real-time)");
        }
        return $watermarks;
    }

    /**
     * TimescaleDB, the eight continuous aggregates kept by their refresh policies, run by TimescaleDB's own scheduler
     * and nothing else: two days of events up to an hour ago (and real events of now) are materialised up to the
     * policies' end offset with exactly the counts of logstore_standard_log; then events days and weeks old arrive
     * (as a spool replayed after a long outage, or an import of old logs, writes them): below the watermarks they are
     * not counted until the policies run again, and then they are, in every aggregate.
     */
    public function test_timescaledb_continuous_aggregates(): void {
        global $DB;
        $name = $this->target('timescaledb');
        analytics_fixture::fire_real_events($this->gen());
        $hour = time() - time() % 3600;
        log_dataset::insert_standard(log_dataset::generate(6000, 2, 33, $hour - 49 * 3600));
        $entries = self::standard_entries();
        analytics_fixture::write('timescaledb', $name, $entries);
        $ran = analytics_fixture::run_policies($name, ['policy_refresh_continuous_aggregate']);
        $this->assertCount(count(summary::AGGREGATES), $ran, 'one refresh policy per aggregate: ' . json_encode($ran));
        $db = analytics_fixture::pg(analytics_fixture::settings('timescaledb', $name));
        try {
            $watermarks = $this->assert_continuous_aggregates($db, $name, $entries);

            $DB->delete_records('logstore_standard_log');
            $today = time() - time() % 86400;
            log_dataset::insert_standard(log_dataset::generate(900, 30, 34, $today - 33 * 86400));
            $late = self::standard_entries();
            $this->assertLessThan(min($watermarks), max(array_column($late, 'timecreated')), 'all below the watermarks');
            analytics_fixture::write('timescaledb', $name, $late);
            $all = array_merge($entries, $late);
            $this->assertSame(self::expected('_hourly', $entries), $this->read($db, '_hourly',
                pgdb::quote_identifier(summary::derived($name, '_hourly'))), 'not counted before the policy runs');
            analytics_fixture::run_policies($name, ['policy_refresh_continuous_aggregate']);
            $watermarks = $this->assert_continuous_aggregates($db, $name, $all);
            $this->assertNotEmpty(self::expected('_weekly_courses', $all, $watermarks['_weekly_courses']),
                'the weeks of the late events materialised');
        } finally {
            $db->close();
        }
    }

    /**
     * TimescaleDB: an import of logs weeks old with the plugin's CLI, after the aggregates were materialised, is
     * counted in every aggregate once TimescaleDB's scheduler ran the refresh policies (no manual refresh).
     */
    public function test_timescaledb_import_of_old_logs(): void {
        global $DB;
        $name = $this->target('timescaledb');
        $today = time() - time() % 86400;
        log_dataset::insert_standard(log_dataset::generate(3000, 3, 35, $today - 3 * 86400));
        analytics_fixture::import('timescaledb', $name);
        $entries = self::standard_entries();
        analytics_fixture::run_policies($name, ['policy_refresh_continuous_aggregate']);
        $DB->delete_records('logstore_standard_log');
        log_dataset::insert_standard(log_dataset::generate(1200, 40, 36, $today - 45 * 86400));
        $old = self::standard_entries();
        analytics_fixture::import('timescaledb', $name);
        $this->assertSame(count($entries) + count($old), analytics_fixture::count('timescaledb', $name));
        analytics_fixture::run_policies($name, ['policy_refresh_continuous_aggregate']);
        $db = analytics_fixture::pg(analytics_fixture::settings('timescaledb', $name));
        try {
            $this->assert_continuous_aggregates($db, $name, array_merge($entries, $old));
        } finally {
            $db->close();
        }
    }

    /**
     * TimescaleDB with retention: a privacy deletion removes the user's rows from the per-user aggregates also on the
     * days whose events retention already dropped (refreshing those days would empty them, so they are not); the other
     * users' rows of those days stay.
     */
    public function test_timescaledb_privacy_after_retention(): void {
        $name = $this->target('timescaledb');
        $today = time() - time() % 86400;
        $entries = log_dataset::generate(3000, 20, 38, $today - 20 * 86400);
        analytics_fixture::write('timescaledb', $name, $entries);
        analytics_fixture::run_policies($name, ['policy_refresh_continuous_aggregate']);
        // Keep 10 days from now on: the sink adds its retention policy when it connects with that setting.
        log_dataset::write_through_extension([array_merge($entries[0], ['timecreated' => time() - 60])],
            analytics_fixture::settings('timescaledb', $name) + ['retention_days' => 10]);
        analytics_fixture::run_policies($name, ['policy_retention']);
        $db = analytics_fixture::pg(analytics_fixture::settings('timescaledb', $name));
        try {
            $kept = (int) $db->query('SELECT extract(epoch FROM min(range_start))::bigint AS t FROM timescaledb_information.chunks'
                . ' WHERE hypertable_name = ?', [$name])[0]->t;
            $this->assertGreaterThan($today - 19 * 86400, $kept, 'retention dropped the oldest chunks');
            $u = 7;
            $count = function(string $suffix, string $where, array $params) use ($db, $name): int {
                return (int) $db->query('SELECT count(*) AS n FROM ' . pgdb::quote_identifier(summary::derived($name, $suffix))
                    . " WHERE $where", $params)[0]->n;
            };
            foreach (['_daily', '_daily_users'] as $suffix) {
                $this->assertGreaterThan(0, $count($suffix, 'userid = ? AND day < to_timestamp(?)', [$u, $kept]),
                    "$suffix: user $u's rows of days whose events are gone");
            }
            $contexts = array_map(function($r) {
                return (int) $r->contextid;
            }, $db->query('SELECT DISTINCT contextid FROM ' . pgdb::quote_identifier($name) . ' WHERE userid = ?', [$u]));
            \logstore_tsdb\privacy\provider::delete_data_for_user(new approved_contextlist((object) ['id' => $u],
                'logstore_tsdb', $contexts));
            $others = array_filter($entries, function($e) use ($kept, $u) {
                return $e['timecreated'] < $kept && $e['userid'] !== $u;
            });
            foreach (['_daily' => ['courseid', 'userid'], '_daily_users' => ['userid']] as $suffix => $keys) {
                $this->assertSame(0, $count($suffix, 'userid = ?', [$u]), "$suffix: no row of user $u left");
                $this->assertSame(count(array_unique(array_map(function($e) use ($keys) {
                    return ($e['timecreated'] - $e['timecreated'] % 86400) . '|' . implode('|', array_map(function($k) use ($e) {
                        return $e[$k];
                    }, $keys));
                }, $others))), $count($suffix, 'day < to_timestamp(?)', [$kept]), "$suffix: the other users' rows of the"
                    . ' dropped days');
            }
        } finally {
            $db->close();
        }
    }

    /**
     * Plain PostgreSQL: the six summaries of the `summarise` task.
     *
     * @param pgdb $db
     * @param summary $summary
     * @param array $want suffix => entries (or one list for all)
     * @param string $what
     * @param int|null $watermark also the materialised rows: those before it
     */
    protected function assert_summaries(pgdb $db, summary $summary, array $want, string $what, ?int $watermark = null): void {
        foreach (array_keys(self::SPECS) as $suffix) {
            $entries = $want[$suffix] ?? $want;
            $this->assertSame(self::expected($suffix, $entries), $this->read($db, $suffix, $summary->q($suffix)),
                "$what: $suffix");
            if ($watermark !== null) {
                $this->assertSame(self::expected($suffix, $entries, $watermark), $this->read($db, $suffix,
                    $summary->q($suffix . '_mat')), "$what: {$suffix}_mat");
            }
        }
    }

    /**
     * Plain PostgreSQL: the six summaries give exact figures before and after refreshes; late events written into
     * a day older than the look-back are counted at the next refresh (the partition's counters changed); an import
     * (summary::invalidate(), as the importer calls it) at once; a privacy deletion removes the user's rows at once and
     * the counts follow at the next refresh; the summaries outlive partitions dropped by retention; the task runs.
     */
    public function test_postgres_summary(): void {
        $name = $this->target('postgres');
        analytics_fixture::fire_real_events($this->gen());
        $s = log_dataset::START;
        log_dataset::insert_standard(log_dataset::generate(8000, 6, 31));
        $entries = self::standard_entries();
        analytics_fixture::write('postgres', $name, $entries);
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        $db = pgdb::from_config($cfg);
        try {
            $summary = new summary($db, $cfg);
            $this->assertSame('native', $summary->layout());
            $summary->ensure();
            $this->assertNull($summary->watermark());
            analytics_fixture::wait_for_counted($name, count($entries));
            $this->assert_summaries($db, $summary, $entries, 'nothing materialised: all from the events');

            $now = $s + 4 * 86400 + 7 * 3600 + 1800;
            $done = $summary->refresh($now);
            $this->assertSame(['from' => $s - 86400, 'to' => $s + 4 * 86400, 'days' => 5], $done,
                'from the first day (and the look-back before it) to today');
            $this->assertSame($s + 4 * 86400, $summary->watermark());
            $this->assert_summaries($db, $summary, $entries, 'materialised + events', $s + 4 * 86400);
            // Summaries of the previous plugin (without `_daily_courses`): the next refresh adds it, its materialised
            // days from `_daily_mat`, and makes nothing else again (that would lose the days retention dropped).
            $db->execute('DROP VIEW ' . $summary->q('_daily_courses'));
            $db->execute('DROP TABLE ' . $summary->q('_daily_courses_mat'));
            $this->assertTrue($summary->exists());
            $summary->refresh($now);
            $this->assert_summaries($db, $summary, $entries, '_daily_courses added', $s + 4 * 86400);
            $this->assertNotEmpty($db->query('SELECT 1 FROM ' . $summary->q('_daily_courses_mat')));
            // `_daily_courses` of the plugin before it had logins: made again, its logins from `_hourly_mat`.
            $db->execute('DROP VIEW ' . $summary->q('_daily_courses'));
            $db->execute('ALTER TABLE ' . $summary->q('_daily_courses_mat') . ' DROP COLUMN logins, DROP COLUMN failed_logins');
            $summary->refresh($now);
            $this->assert_summaries($db, $summary, $entries, '_daily_courses with logins', $s + 4 * 86400);
            $this->assertNotEmpty($db->query('SELECT 1 FROM ' . $summary->q('_daily_courses_mat') . ' WHERE logins > 0'));
            // Summaries of the plugin before `_daily_events`, `_hourly_site` and `_weekly_courses`: the next refresh
            // adds them, their materialised days from the events.
            foreach (summary::ADDED as $suffix => $column) {
                $db->execute('DROP VIEW ' . $summary->q($suffix));
                $db->execute('DROP TABLE ' . $summary->q($suffix . '_mat'));
            }
            $summary->refresh($now);
            $this->assert_summaries($db, $summary, $entries, 'aggregates added', $s + 4 * 86400);
            foreach (summary::ADDED as $suffix => $column) {
                $this->assertSame(self::expected($suffix, $entries, $s + 4 * 86400),
                    $this->read($db, $suffix, $summary->q($suffix . '_mat')), "every day materialised in $suffix");
            }
            // `_hourly_site` before it had `active_users` (its view reading the columns it had): the column is added
            // and every hour made again from the events.
            $db->execute('DROP VIEW ' . $summary->q('_hourly_site'));
            $db->execute('ALTER TABLE ' . $summary->q('_hourly_site_mat') . ' DROP COLUMN active_users');
            $db->execute('CREATE VIEW ' . $summary->q('_hourly_site') . ' AS SELECT * FROM ' . $summary->q('_hourly_site_mat'));
            $summary->refresh($now);
            $this->assert_summaries($db, $summary, $entries, '_hourly_site with active_users', $s + 4 * 86400);

            // Late events written live into day 2, older than the look-back (a spool replayed after an outage): stale
            // until PostgreSQL counted them in the day's partition, then the next refresh materialises that day again.
            $late = array_slice($entries, -3);
            foreach ($late as $i => $e) {
                $late[$i]['timecreated'] = $s + 86400 + 2 * 3600 + 17 * $i;
                $late[$i]['courseid'] = 9;
            }
            analytics_fixture::write('postgres', $name, $late);
            $all = array_merge($entries, $late);
            $this->assertSame(self::expected('_hourly', $entries), $this->read($db, '_hourly', $summary->q('_hourly')),
                'stale before the refresh');
            analytics_fixture::wait_for_counted($name, count($all));
            $done = $summary->refresh($now);
            $this->assertSame(2, $done['days'], 'the changed day and the look-back: ' . json_encode($done));
            $this->assert_summaries($db, $summary, $all, 'late events counted', $s + 4 * 86400);

            // Rows imported into the first day: the importer has summary::invalidate() materialise it again at once.
            $old = log_dataset::generate(300, 1, 35, $s);
            analytics_fixture::write('postgres', $name, $old);
            $summary->invalidate($s, $s + 86400);
            $all = array_merge($all, $old);
            $this->assert_summaries($db, $summary, $all, 'an import is counted at once', $s + 4 * 86400);

            // Privacy: user 7's events deleted -> their rows in the per-user summaries gone at once; the counts follow
            // at the next refresh, once PostgreSQL counted the deletions.
            $u = 7;
            $contexts = array_map(function($r) {
                return (int) $r->contextid;
            }, $db->query('SELECT DISTINCT contextid FROM ' . $db->table() . ' WHERE userid = ?', [$u]));
            $mine = count(array_filter($all, function($e) use ($u) {
                return $e['userid'] === $u;
            }));
            $this->assertGreaterThan(50, $mine);
            \logstore_tsdb\privacy\provider::delete_data_for_user(new approved_contextlist((object) ['id' => $u],
                'logstore_tsdb', $contexts));
            foreach (['_daily_mat', '_daily_users_mat', '_daily', '_daily_users'] as $rel) {
                $this->assertSame(0, (int) $db->query('SELECT count(*) AS n FROM ' . $summary->q($rel)
                    . ' WHERE userid = ?', [$u])[0]->n, "no row of user $u in $rel");
            }
            $all = array_values(array_filter($all, function($e) use ($u) {
                return $e['userid'] !== $u;
            }));
            analytics_fixture::wait_for_counted($name, $mine, 'n_tup_del');
            $summary->refresh($now);
            $this->assert_summaries($db, $summary, $all, 'after the deletion', $s + 4 * 86400);

            // Retention dropped the first day's partition: its rows stay (summaries outlive the events), and a refresh
            // does not materialise it again from the missing events.
            $db->execute('DROP TABLE ' . pgdb::quote_identifier($name . '_p' . gmdate('Ymd', $s)));
            $cfg->retention_days = 2;
            $done = (new summary($db, $cfg))->refresh($s + 4 * 86400 + 3600);
            $this->assertSame($s + 3 * 86400, $done['from'], 'nothing before the retention horizon');
            // The week of that day is not materialised yet: its view reads the events left.
            $want = array_fill_keys(array_keys(self::SPECS), $all);
            $want['_weekly_courses'] = array_values(array_filter($all, function($e) use ($s) {
                return $e['timecreated'] >= $s + 86400;
            }));
            $this->assert_summaries($db, $summary, $want, 'the first day kept after retention');
            $this->assertSame(0, (int) $db->query('SELECT count(*) AS n FROM ' . $db->table()
                . ' WHERE "time" < to_timestamp(?)', [$s + 86400])[0]->n);

            // The scheduled task.
            $this->configure(['retention_days' => 0]);
            global $CFG;
            $CFG->mtrace_wrapper = 'downsampling_test_mtrace';
            try {
                $done = (new \logstore_tsdb\task\summarise())->execute($s + 7 * 86400);
                $this->assertSame(['from' => $s + 3 * 86400, 'to' => $s + 7 * 86400, 'days' => 4], $done);
                $this->assertStringContainsString('4 days materialised between', self::$printed);
                // The week that lost a day is not materialised from what is left (TimescaleDB's refresh does not
                // reach below retention either): no row; the real events of now are read from the events.
                $want['_weekly_courses'] = array_values(array_filter($all, function($e) use ($s) {
                    return $e['timecreated'] >= $s + 7 * 86400;
                }));
                $this->assert_summaries($db, $summary, $want, 'after the task', $s + 7 * 86400);
                $this->configure(['backend' => 'influxdb1']);
                $this->assertNull((new \logstore_tsdb\task\summarise())->execute());
            } finally {
                unset($CFG->mtrace_wrapper);
            }

            // A whole week of events, the next one: materialised by the first refresh after its end, with its last day.
            $next = log_dataset::generate(700, 7, 39, $s + 7 * 86400);
            analytics_fixture::write('postgres', $name, $next);
            $cfg->retention_days = 0;
            $done = $summary->refresh($s + 15 * 86400);
            $this->assertSame([$s + 6 * 86400, $s + 15 * 86400], [$done['from'], $done['to']]);
            $this->assertGreaterThanOrEqual(9, $done['days'], 'the look-back day and the days after it');
            $weekly = array_merge($want['_weekly_courses'], $next);
            $want = array_fill_keys(array_keys(self::SPECS), array_merge($all, $next));
            $want['_weekly_courses'] = $weekly;
            $this->assert_summaries($db, $summary, $want, 'a week materialised', $s + 15 * 86400);
            $this->assertNotEmpty(self::expected('_weekly_courses', $next, $s + 14 * 86400));
        } finally {
            $db->close();
        }
    }

    /**
     * Plain PostgreSQL: the summaries of the plugin's previous version (`_hourly` by event name, `_daily_users`, a
     * watermark per summary) are replaced by the six at the first refresh; with retention their materialised rows are
     * kept as `<table>_hourly_v1` and `<table>_daily_users_v1` (they may hold days whose events are gone).
     */
    public function test_postgres_summary_replaces_version_1(): void {
        global $DB;
        foreach ([0, 30] as $retention) {
            $DB->delete_records('logstore_standard_log');
            $name = $this->target('postgres');
            log_dataset::insert_standard(log_dataset::generate(500, 3, 37));
            $entries = self::standard_entries();
            analytics_fixture::write('postgres', $name, $entries);
            $cfg = \logstore_tsdb\log\store::read_plugin_config();
            $db = pgdb::from_config($cfg);
            try {
                $q = function(string $suffix) use ($name) {
                    return 'public.' . pgdb::quote_identifier($name . $suffix);
                };
                foreach (["CREATE TABLE {$q('_summary')} (name varchar(20) PRIMARY KEY, watermark timestamptz,"
                        . ' refreshed_at timestamptz)',
                        "INSERT INTO {$q('_summary')} (name, watermark) VALUES ('hourly', '2025-03-04'),"
                        . " ('daily_users', '2025-03-04')",
                        "CREATE TABLE {$q('_hourly_mat')} (bucket timestamptz NOT NULL, courseid bigint,"
                        . ' eventname varchar(255), events bigint NOT NULL)',
                        "INSERT INTO {$q('_hourly_mat')} VALUES ('2025-03-03 10:00+00', 2, '\\core\\event\\course_viewed', 4)",
                        "CREATE TABLE {$q('_daily_users_mat')} (day timestamptz NOT NULL, userid bigint, events bigint NOT NULL)",
                        "INSERT INTO {$q('_daily_users_mat')} VALUES ('2025-03-03', 5, 4)",
                        "CREATE VIEW {$q('_hourly')} AS SELECT bucket, courseid, eventname, events FROM {$q('_hourly_mat')}",
                        "CREATE VIEW {$q('_daily_users')} AS SELECT day, userid, events FROM {$q('_daily_users_mat')}",
                        "CREATE VIEW {$q('_daily_active_users')} AS SELECT day, count(*) AS active_users"
                        . " FROM {$q('_daily_users')} GROUP BY day"] as $sql) {
                    $db->execute($sql);
                }
                $cfg->retention_days = $retention;
                $summary = new summary($db, $cfg);
                $this->assertFalse($summary->exists());
                $summary->refresh(log_dataset::START + 2 * 86400);
                $this->assertTrue($summary->exists());
                $this->assert_summaries($db, $summary, $entries, "retention $retention: the six summaries");
                $kept = $db->query('SELECT to_regclass(?) AS h, to_regclass(?) AS d', [$q('_hourly_v1'), $q('_daily_users_v1')]);
                if ($retention) {
                    $this->assertSame([[(string) (log_dataset::START + 10 * 3600), '2', '\\core\\event\\course_viewed', '4']],
                        array_map(function($r) {
                            return array_values((array) $r);
                        }, $db->query('SELECT extract(epoch FROM bucket)::bigint AS b, courseid, eventname, events FROM '
                        . $q('_hourly_v1'))));
                    $this->assertSame('4', $db->query("SELECT events FROM {$q('_daily_users_v1')}")[0]->events);
                } else {
                    $this->assertSame([null, null], [$kept[0]->h, $kept[0]->d], 'dropped without retention');
                }
            } finally {
                $db->close();
            }
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
        analytics_fixture::import('influxdb1', $name);
        $entries = self::standard_entries();
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

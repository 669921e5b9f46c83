<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The reader and the documented queries on TimescaleDB (TSDB_TEST_TIMESCALE_DSN: a database with the timescaledb
 * extension; the test PostgreSQL preloads it), inside a real site. The extension makes the table a hypertable with
 * continuous aggregates `<table>_hourly` / `<table>_daily_users` / `<table>_daily_active_users`, refreshed here by
 * TimescaleDB's own background scheduler running the refresh policies the extension added (as on a production site;
 * not `CALL refresh_continuous_aggregate`). Every answer must be the one the site's real logstore_standard gives for
 * the same events, and every documented PostgreSQL query the one the plain-PostgreSQL layout gives.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/reader_comparison.php');
require_once(__DIR__ . '/analytics_fixture.php');

use logstore_tsdb\local\pgdb;
use logstore_tsdb\local\summary;

/**
 * TimescaleDB tests.
 */
class timescaledb_test extends base_testcase {
    use reader_comparison;

    /** @var int Events. */
    const N = 3000;

    /** @var array|null plugin settings of the hypertable */
    protected static $settings = null;

    /** @var array|null plugin settings of the plain PostgreSQL table holding the same events */
    protected static $plain = null;

    /** @var array[] the events */
    protected static $entries = [];

    /** @var int midnight UTC of the first day of the events (two days before today: inside the refresh window) */
    protected static $start = 0;

    /**
     * Plugin settings from TSDB_TEST_TIMESCALE_DSN.
     *
     * @param string $dsn postgresql://user:password@host:port/db
     * @param string $table
     * @return array
     */
    protected static function settings(string $dsn, string $table): array {
        $u = parse_url($dsn);
        return ['backend' => 'postgres', 'host' => $u['host'] ?? '127.0.0.1', 'port' => $u['port'] ?? 5432,
            'user' => urldecode($u['user'] ?? 'postgres'), 'password' => urldecode($u['pass'] ?? ''),
            'dbname' => ltrim($u['path'] ?? '/postgres', '/'), 'schema' => 'public', 'table' => $table,
            'retry_max_elapsed_ms' => 10000, 'mode' => 'async'];
    }

    /**
     * The events, in the last two days (the continuous aggregates' refresh policies cover the last three), through
     * the extension into a hypertable and into a plain PostgreSQL table; the plain table's summaries refreshed as its
     * task does; the hypertable's refresh policies run by TimescaleDB's scheduler.
     */
    public static function setUpBeforeClass(): void {
        $dsn = getenv('TSDB_TEST_TIMESCALE_DSN');
        if (!$dsn || !getenv('TSDB_TEST_PG_HOST') || !function_exists('tsdb_log_event')) {
            return;
        }
        self::$start = intdiv(time(), 86400) * 86400 - 2 * 86400;
        self::$entries = log_dataset::generate(self::N, 2, 17, self::$start);
        self::$settings = self::settings($dsn, 'ts_t' . getmypid());
        self::$plain = log_dataset::pg_settings('tsplain_t' . getmypid());
        self::drop_tables();
        log_dataset::write_through_extension(self::$entries, self::$settings);
        log_dataset::write_through_extension(self::$entries, self::$plain);
        $db = pgdb::from_config(log_dataset::plugin_config(self::$plain));
        try {
            (new summary($db, log_dataset::plugin_config(self::$plain)))->refresh();
        } finally {
            $db->close();
        }
        self::run_refresh_policies();
    }

    /**
     * Lets TimescaleDB's background scheduler run the refresh policy of each continuous aggregate of the hypertable
     * now, and waits until each has succeeded once more (analytics_fixture::run_policies).
     */
    protected static function run_refresh_policies(): void {
        $ran = analytics_fixture::run_policies(self::$settings['table'], ['policy_refresh_continuous_aggregate']);
        self::assertCount(count(summary::AGGREGATES), $ran, 'one refresh policy per continuous aggregate: '
            . json_encode($ran));
    }

    /**
     * Drops both tables and their companions.
     */
    protected static function drop_tables(): void {
        $db = pgdb::from_config(log_dataset::plugin_config(self::$settings));
        try {
            $t = self::$settings['table'];
            base_testcase::stop_jobs($db, 'public', $t);
            $db->execute('DROP TABLE IF EXISTS ' . pgdb::quote_identifier($t) . ', ' . pgdb::quote_identifier($t . '_ledger')
                . ', ' . pgdb::quote_identifier($t . '_schema') . ' CASCADE');
        } finally {
            $db->close();
        }
        log_dataset::drop_tsdb_table(self::$plain['table']);
    }

    /**
     * Drops the tables.
     */
    public static function tearDownAfterClass(): void {
        if (self::$settings !== null) {
            self::drop_tables();
        }
    }

    /**
     * Needs TimescaleDB; the same events in the site's logstore_standard_log.
     */
    protected function setUp(): void {
        parent::setUp();
        $this->server_env('TSDB_TEST_TIMESCALE_DSN');
        $this->server_env('TSDB_TEST_PG_HOST');
        $this->assertNotNull(self::$settings, 'the events were written');
        log_dataset::create_standard_table();
        log_dataset::insert_standard(self::$entries);
    }

    /**
     * The extension made a hypertable with continuous aggregates, and the refresh policies ran without error.
     */
    public function test_layout(): void {
        $db = pgdb::from_config(log_dataset::plugin_config(self::$settings));
        try {
            $this->assertNotNull($db->timescaledb_version());
            $this->assertSame('timescaledb', (new summary($db, log_dataset::plugin_config(self::$settings)))->layout());
            $this->assertSame(self::$settings['table'], $db->query('SELECT hypertable_name FROM timescaledb_information.hypertables'
                . ' WHERE hypertable_name = ?', [self::$settings['table']])[0]->hypertable_name);
            $views = array_column($db->query('SELECT view_name FROM timescaledb_information.continuous_aggregates'
                . ' WHERE view_name LIKE ? ORDER BY view_name', [self::$settings['table'] . '\\_%']), 'view_name');
            $this->assertSame(array_map(function($suffix) {
                return self::$settings['table'] . $suffix;
            }, ['_activity', '_daily', '_daily_active_users', '_daily_courses', '_daily_events', '_daily_users', '_hourly',
                '_hourly_site', '_weekly_courses']), $views);
            $this->assertSame(self::N, (int) $db->query('SELECT count(*) AS n FROM ' . $db->table())[0]->n);
        } finally {
            $db->close();
        }
    }

    /**
     * Moodle's reports through the reader on the hypertable equal the real standard store's.
     */
    public function test_reports(): void {
        $this->configure(self::$settings);
        $store = get_log_manager()->get_readers()['logstore_tsdb'];
        $ref = log_dataset::standard_reader();
        $day = self::$start + 86400;
        foreach (['course' => ['courseid' => 3], 'course + user' => ['courseid' => 4, 'userid' => 9],
                'date' => ['date' => $day], 'origin other' => ['origin' => '---'], 'site' => ['viewanonymous' => 1],
                'activity + user' => ['courseid' => 4, 'modid' => 401, 'userid' => 12]] as $name => $f) {
            foreach ([0, 1] as $page) {
                $this->assert_report_log_page($ref, $store, $f, $page, 30, "timescaledb $name");
            }
        }
        $this->assert_loglive_matches($ref, $store, [0, 3], [0, 1], 10, 50);
        $this->assertCount(self::N, report_log_queries::download($store, ['viewanonymous' => 1], 'timecreated ASC'));
        $this->assertSame($ref->get_events_select_exists('userid = :u AND courseid = :c', ['u' => 7, 'c' => 5]),
            $store->get_events_select_exists('userid = :u AND courseid = :c', ['u' => 7, 'c' => 5]));
        $this->assertNull((new \logstore_tsdb\task\summarise())->execute(), 'TimescaleDB refreshes its own aggregates');
    }

    /**
     * Counts of a course, a user, or both (the reports' and the privacy provider's) come from the daily aggregate
     * while TimescaleDB says it is exact, and from the events while an event below its watermark is not materialised
     * yet; every answer equals the count of the events themselves. The aggregate is brought up to date by
     * TimescaleDB's scheduler alone.
     */
    public function test_counts_from_the_daily_aggregate_are_exact(): void {
        $db = pgdb::from_config(log_dataset::plugin_config(self::$settings));
        // Off: counted from the events.
        $this->configure(self::$settings + ['countfromaggregate' => 0]);
        $store = get_log_manager()->get_readers()['logstore_tsdb'];
        $this->assertSame((int) $db->query_native('SELECT count(*) AS n FROM ' . $db->table() . ' WHERE courseid = 3')[0]->n,
            $store->get_events_select_count('courseid = :c', ['c' => 3]));
        $this->assertStringNotContainsString('_daily', $store->get_reader()->lastsql, 'counted from the events');
        // On by default.
        $this->assertSame(1, \logstore_tsdb\local\settings_definition::all()['countfromaggregate']['default']);
        $this->configure(self::$settings + ['countfromaggregate' => 1]);
        $store = get_log_manager()->get_readers()['logstore_tsdb'];
        $reader = $store->get_reader();
        $fragments = [
            ['courseid = :c AND anonymous = 0', ['c' => 3]],
            ['courseid = :c', ['c' => 4]],
            ['userid = :u', ['u' => 9]],
            ['courseid = :c AND userid = :u AND anonymous = 0', ['c' => 4, 'u' => 9]],
            ['userid = ? AND courseid = ?', [12, 5]],
            ['courseid = :c AND anonymous = 1', ['c' => 3]],
            ['courseid = :c AND timecreated >= :a AND timecreated < :b', ['c' => 3, 'a' => self::$start + 86400,
                'b' => self::$start + 2 * 86400]],
        ];
        $check = function(bool $fromaggregate, string $when) use (&$store, &$reader, $db, $fragments) {
            foreach ($fragments as [$where, $params]) {
                [$sql, $values] = \logstore_tsdb\local\reader\pg_reader::where($db, $where, $params);
                $want = (int) $db->query_native('SELECT count(*) AS n FROM ' . $db->table() . $sql, $values)[0]->n;
                $this->assertSame($want, $store->get_events_select_count($where, $params), "$when: $where");
                $this->assertSame($fromaggregate, strpos($reader->lastsql, '_daily') !== false,
                    "$when: $where counted " . ($fromaggregate ? 'from the aggregate' : 'from the events'));
            }
        };
        try {
            $check(true, 'materialised');
            // A user alone from the per-user aggregate (ordered by user), a user in a course from the daily one, a
            // course alone from its row a day.
            foreach (['_daily_users' => ['userid = :u', ['u' => 9]], '_daily' => ['userid = ? AND courseid = ?', [12, 5]],
                    '_daily_courses' => ['courseid = :c AND anonymous = 0', ['c' => 3]]] as $suffix => [$where, $params]) {
                $store->get_events_select_count($where, $params);
                $this->assertStringContainsString(pgdb::quote_identifier(summary::derived(self::$settings['table'], $suffix)),
                    $reader->lastsql, $where);
                // TimescaleDB made the view's watermark a constant when it planned the statement (else the real-time
                // view is planned over every chunk: several times slower at 10 M events).
                $plan = $this->explain($reader);
                $this->assertStringContainsString('Append', $plan, $where);
                $this->assertStringNotContainsString('cagg_watermark', $plan, $where);
            }
            // A late event two days back (a spool replayed after an outage): below the watermark, logged by
            // TimescaleDB as an invalidation until the refresh policy has run.
            $late = self::$entries[0];
            $late['courseid'] = 3;
            $late['userid'] = 9;
            $late['anonymous'] = 0;
            $late['timecreated'] = self::$start + 3600;
            log_dataset::write_through_extension([$late], self::$settings);
            $check(false, 'a late event not yet materialised');
            // The plain layout gets it too (the next test compares both layouts).
            log_dataset::write_through_extension([$late], self::$plain);
            $plain = pgdb::from_config(log_dataset::plugin_config(self::$plain));
            try {
                (new summary($plain, log_dataset::plugin_config(self::$plain)))->refresh();
            } finally {
                $plain->close();
            }
            self::run_refresh_policies();
            $check(true, 'refreshed by the scheduler');
            // The same through PDO (a site without PHP's pgsql): its placeholders are positional.
            pgdb::$forcepdo = true;
            $this->new_request();
            $store = get_log_manager()->get_readers()['logstore_tsdb'];
            $reader = $store->get_reader();
            $check(true, 'through PDO');
        } finally {
            pgdb::$forcepdo = false;
            $db->close();
        }
    }

    /**
     * Rows with every timestamp cut to the second: the events' `time` inside their second is the moment the extension
     * captured them, which differs between the two writes of the same events.
     *
     * @param \stdClass[] $rows
     * @return array[]
     */
    protected static function to_the_second(array $rows): array {
        return array_map(function($row) {
            return array_map(function($v) {
                return is_string($v) ? preg_replace('/^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.\d+(\+00)$/', '$1$2', $v) : $v;
            }, (array) $row);
        }, $rows);
    }

    /**
     * Every documented PostgreSQL query gives on the hypertable (and its continuous aggregates, as the scheduler
     * refreshed them) what it gives on the plain layout (and its summary tables).
     */
    public function test_documented_queries_match_plain_layout(): void {
        $tsdb = pgdb::from_config(log_dataset::plugin_config(self::$settings));
        $plain = pgdb::from_config(log_dataset::plugin_config(self::$plain));
        try {
            $n = 0;
            foreach (log_dataset::doc_queries() as $name => $sql) {
                if (strpos($name, 'pg.') !== 0) {
                    continue;
                }
                $vars = ['{from}' => gmdate('Y-m-d H:i:s+00', self::$start),
                    '{to}' => gmdate('Y-m-d H:i:s+00', self::$start + 2 * 86400), '{user}' => '9'];
                $a = $plain->query_native(rtrim(strtr($sql, $vars + ['{table}' => self::$plain['table']]), "; \n"));
                $b = $tsdb->query_native(rtrim(strtr($sql, $vars + ['{table}' => self::$settings['table']]), "; \n"));
                $this->assertNotEmpty($a, "$name gives rows");
                $this->assertEquals(self::to_the_second($a), self::to_the_second($b), $name);
                $n++;
            }
            $this->assertGreaterThanOrEqual(10, $n);
        } finally {
            $tsdb->close();
            $plain->close();
        }
    }
}

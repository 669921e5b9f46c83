<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * The reader, the documented queries and the summaries on TimescaleDB (TSDB_TEST_TIMESCALE_DSN=postgresql://user:pw@
 * host:port/db, a database with CREATE EXTENSION timescaledb done). The extension makes the table a hypertable with
 * continuous aggregates `<table>_hourly` / `<table>_daily_users` / `<table>_daily_active_users`; every answer must be the
 * one the plain-PostgreSQL layout gives for the same events (which the other tests check against the events).
 * Without the variable the tests say SKIPPED: TimescaleDB is not installable on the build machine.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/base_testcase.php');
require_once(__DIR__ . '/analytics_fixture.php');
require_once(__DIR__ . '/analytics_test.php');
require_once(__DIR__ . '/standard_reader.php');

use logstore_tsdb\local\pgdb;
use logstore_tsdb\local\summary;

/**
 * TimescaleDB tests.
 */
class timescaledb_test extends base_testcase {

    /** @var array|null plugin settings of the TimescaleDB table */
    protected static $settings = null;

    /**
     * Plugin settings from TSDB_TEST_TIMESCALE_DSN, or null.
     *
     * @param string $table
     * @return array|null
     */
    protected static function settings(string $table): ?array {
        $dsn = getenv('TSDB_TEST_TIMESCALE_DSN');
        if (!$dsn) {
            return null;
        }
        $u = parse_url($dsn);
        return ['backend' => 'postgres', 'host' => $u['host'] ?? '127.0.0.1', 'port' => $u['port'] ?? 5432,
            'user' => urldecode($u['user'] ?? 'postgres'), 'password' => urldecode($u['pass'] ?? ''),
            'dbname' => ltrim($u['path'] ?? '/postgres', '/'), 'schema' => 'public', 'table' => $table,
            'retry_max_elapsed_ms' => 10000, 'mode' => 'async'];
    }

    /**
     * Drops the hypertable and its companions (the continuous aggregates depend on it).
     */
    public static function tearDownAfterClass(): void {
        if (self::$settings !== null) {
            $db = pgdb::from_config(log_dataset::plugin_config(self::$settings));
            $t = self::$settings['table'];
            $db->execute('DROP TABLE IF EXISTS ' . pgdb::quote_identifier($t) . ', ' . pgdb::quote_identifier($t . '_ledger')
                . ', ' . pgdb::quote_identifier($t . '_schema') . ' CASCADE');
            $db->close();
        }
    }

    /**
     * The analytics events written to a hypertable once, aggregates refreshed.
     */
    protected function setUp(): void {
        parent::setUp();
        if (!getenv('TSDB_TEST_TIMESCALE_DSN')) {
            $this->markTestSkipped('SKIPPED: TimescaleDB not reachable (set TSDB_TEST_TIMESCALE_DSN)');
        }
        if (!analytics_fixture::setup()) {
            $this->markTestSkipped('SKIPPED: needs PostgreSQL and InfluxDB for the reference data');
        }
        if (self::$settings === null) {
            $settings = self::settings('ts_t' . getmypid());
            $db = pgdb::from_config(log_dataset::plugin_config($settings));
            try {
                if ($db->timescaledb_version() === null) {
                    $this->markTestSkipped('SKIPPED: TSDB_TEST_TIMESCALE_DSN has no timescaledb extension');
                }
                log_dataset::write_through_extension(analytics_fixture::$entries, $settings);
                $summary = new summary($db, log_dataset::plugin_config($settings));
                $this->assertSame('timescaledb', $summary->layout());
                foreach (['_hourly', '_daily_users'] as $suffix) {
                    if ($db->query('SELECT to_regclass(?) AS t', [$summary->q($suffix)])[0]->t !== null) {
                        $db->execute('CALL refresh_continuous_aggregate(?::regclass, NULL, NULL)', [$summary->q($suffix)]);
                    }
                }
            } finally {
                $db->close();
            }
            self::$settings = $settings;
        }
    }

    /**
     * Every documented PostgreSQL query gives on the hypertable (and its continuous aggregates) what it gives on the
     * plain layout.
     */
    public function test_documented_queries_match_plain_layout(): void {
        $tsdb = pgdb::from_config(log_dataset::plugin_config(self::$settings));
        $plain = analytics_fixture::pg();
        try {
            $n = 0;
            foreach (analytics_test::doc_queries() as $name => $sql) {
                if (strpos($name, 'pg.') !== 0) {
                    continue;
                }
                $vars = ['{from}' => gmdate('Y-m-d H:i:s+00', log_dataset::START),
                    '{to}' => gmdate('Y-m-d H:i:s+00', log_dataset::START + analytics_fixture::DAYS * 86400), '{user}' => '9'];
                $a = $plain->query_native(rtrim(strtr($sql, $vars + ['{table}' => analytics_fixture::$table]), "; \n"));
                $b = $tsdb->query_native(rtrim(strtr($sql, $vars + ['{table}' => self::$settings['table']]), "; \n"));
                $this->assertEquals($a, $b, $name);
                $n++;
            }
            $this->assertGreaterThanOrEqual(10, $n);
        } finally {
            $tsdb->close();
            $plain->close();
        }
    }

    /**
     * Moodle's reports through the reader on the hypertable equal the standard store's.
     */
    public function test_reports(): void {
        log_dataset::create_standard_table();
        log_dataset::insert_standard(analytics_fixture::$entries);
        $this->configure(self::$settings);
        $store = new \logstore_tsdb\log\store(get_log_manager());
        $ref = new \logstore_standardref\reader();
        foreach ([['courseid' => 3], ['courseid' => 4, 'userid' => 9], ['date' => log_dataset::START + 86400],
                ['origin' => '---']] as $f) {
            $want = harness_report_log::page($ref, $f, 1, 30);
            $got = harness_report_log::page($store, $f, 1, 30);
            $this->assertSame($want['total'], $got['total']);
            foreach ($want['events'] as $i => $e) {
                $this->assertSame(log_dataset::normalise_event($e), log_dataset::normalise_event($got['events'][$i]));
            }
        }
        $this->assertNull((new \logstore_tsdb\task\summarise())->execute(), 'TimescaleDB refreshes its own aggregates');
    }
}

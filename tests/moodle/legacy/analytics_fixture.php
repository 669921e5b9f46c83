<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * Three weeks of Moodle events in the real test databases, once per PHPUnit process, for the analytics queries of
 * docs/analytics.md and the Grafana panels of docs/grafana/: a PostgreSQL table (with the plain-PostgreSQL summary
 * partly materialised), an InfluxDB 1.x database (user ids pseudonymised, rollups backfilled with the shipped
 * statements), and the store's own counters in Moodle's database.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/log_dataset.php');
require_once(__DIR__ . '/downsampling_test.php');

use logstore_tsdb\local\influx_client;
use logstore_tsdb\local\pgdb;
use logstore_tsdb\local\pseudonym;

/**
 * The shared data.
 */
class analytics_fixture {

    /** @var int Events. */
    const N = 15000;

    /** @var int Days (three weeks from Monday START). */
    const DAYS = 21;

    /** @var array[]|null */
    public static $entries = null;

    /** @var string|null PostgreSQL table */
    public static $table = null;

    /** @var string|null InfluxDB database */
    public static $database = null;

    /** @var array Pseudonym rows (the base test case empties the table before each test). */
    public static $pseudonyms = [];

    /** @var int The summary's "now" of the last refresh (hourly watermark). */
    public static $refreshedat = 0;

    /** @var array[] rows written to logstore_tsdb_metrics */
    public static $metrics = [];

    /**
     * Creates everything once (returns false when the servers are missing).
     *
     * @return bool
     */
    public static function setup(): bool {
        global $DB, $PAGE;
        if (!$DB || !getenv('TSDB_TEST_INFLUX_URL') || !function_exists('tsdb_log_event')) {
            return false;
        }
        if (self::$entries !== null) {
            self::restore_moodle_tables();
            return true;
        }
        self::$entries = log_dataset::generate(self::N, self::DAYS, 51);
        $pid = getmypid();

        // PostgreSQL: events through the extension, the summary materialised up to day 14 (the rest is read raw).
        self::$table = 'an_t' . $pid;
        log_dataset::drop_tsdb_table(self::$table);
        $pg = log_dataset::pg_settings(self::$table);
        log_dataset::write_through_extension(self::$entries, $pg);
        $cfg = log_dataset::plugin_config($pg);
        $db = pgdb::from_config($cfg);
        self::$refreshedat = log_dataset::START + 14 * 86400 + 5 * 3600;
        (new \logstore_tsdb\local\summary($db, $cfg))->refresh(self::$refreshedat);
        $db->close();

        // InfluxDB: events through the store (pseudonyms), then the rollups backfilled with the shipped statements.
        harness::reset();
        $DB->execute('DELETE FROM {logstore_tsdb_pseudonym}');
        pseudonym::reset_cache();
        self::$database = 'an_t' . $pid;
        foreach (log_dataset::influx_settings(self::$database) as $k => $v) {
            set_config($k, $v, 'logstore_tsdb');
        }
        $client = new influx_client(\logstore_tsdb\log\store::read_plugin_config());
        $client->query('DROP DATABASE ' . influx_client::quote_identifier(self::$database), true);
        $client->query('CREATE DATABASE ' . influx_client::quote_identifier(self::$database), true);
        $q = downsampling_test::influxql_statements(self::$database);
        $client->query($q['rollup_retention'], true);
        \logstore_tsdb\local\extension::reset_for_tests();
        $store = new \logstore_tsdb\log\store(get_log_manager());
        foreach (self::$entries as $e) {
            $PAGE->harnessorigin = $e['origin'];
            $PAGE->harnessip = $e['ip'];
            if ($e['realuserid']) {
                harness::login_as((int) $e['realuserid'], (int) $e['userid']);
            } else {
                harness::login((int) $e['userid']);
            }
            $store->write(\core\event\base::restore(array_diff_key($e, ['origin' => 1, 'ip' => 1, 'realuserid' => 1]), []));
        }
        if (tsdb_flush(60000) !== 0) {
            throw new RuntimeException('InfluxDB write failed: ' . tsdb_stats()['last_error']);
        }
        foreach (['backfill_hourly', 'backfill_daily_users'] as $name) {
            $client->query(str_replace(['FROM_TIME', 'TO_TIME'], [self::influx_time(log_dataset::START),
                self::influx_time(log_dataset::START + self::DAYS * 86400)], $q[$name]), true);
        }
        self::$pseudonyms = $DB->get_records('logstore_tsdb_pseudonym');

        // The store's own counters (status page history): 3 hours of minutes, two workers.
        $DB->execute('DELETE FROM {logstore_tsdb_metrics}');
        $DB->execute('DELETE FROM {logstore_tsdb_workers}');
        mt_srand(61);
        $t0 = log_dataset::START + 10 * 86400;
        for ($m = 0; $m < 180; $m++) {
            $row = ['timeminute' => $t0 + 60 * $m, 'accepted' => mt_rand(100, 900), 'failed' => $m % 37 === 0 ? mt_rand(1, 50) : 0,
                'dropped' => $m === 77 ? 12 : 0, 'retried' => mt_rand(0, 3), 'batches' => mt_rand(1, 5)];
            $row['written'] = $row['accepted'] - $row['failed'] - $row['dropped'];
            $DB->insert_record('logstore_tsdb_metrics', (object) $row);
            self::$metrics[] = $row;
        }
        foreach ([['web1', 101], ['web2', 202]] as [$host, $pidw]) {
            $DB->insert_record('logstore_tsdb_workers', (object) ['hostname' => $host, 'pid' => $pidw, 'accepted' => 1000,
                'written' => 990, 'failed' => 10, 'dropped' => 0, 'retried' => 2, 'batches' => 9, 'pending' => 3,
                'queuedbytes' => 2048, 'lasterror' => $host === 'web2' ? 'postgres: connection refused' : '',
                'lastsuccessat' => $t0 + 10000, 'backend' => 'postgres', 'extversion' => '0.1.0', 'timereported' => $t0 + 10790]);
        }
        self::$metricsworkers = $DB->get_records('logstore_tsdb_workers');
        register_shutdown_function([self::class, 'teardown']);
        return true;
    }

    /** @var array worker rows */
    public static $metricsworkers = [];

    /**
     * Puts back the rows of Moodle's tables that base_testcase::setUp() empties.
     */
    public static function restore_moodle_tables(): void {
        global $DB;
        $DB->execute('DELETE FROM {logstore_tsdb_pseudonym}');
        foreach (self::$pseudonyms as $row) {
            $DB->insert_record('logstore_tsdb_pseudonym', $row, false);
        }
        $DB->execute('DELETE FROM {logstore_tsdb_metrics}');
        foreach (self::$metrics as $row) {
            $DB->insert_record('logstore_tsdb_metrics', (object) $row);
        }
        $DB->execute('DELETE FROM {logstore_tsdb_workers}');
        foreach (self::$metricsworkers as $row) {
            $DB->insert_record('logstore_tsdb_workers', $row, false);
        }
        pseudonym::reset_cache();
    }

    /**
     * Drops the table and the database at the end of the process.
     */
    public static function teardown(): void {
        if (self::$table) {
            log_dataset::drop_tsdb_table(self::$table);
        }
        if (self::$database) {
            $client = new influx_client(log_dataset::plugin_config(log_dataset::influx_settings(self::$database)));
            $client->query('DROP DATABASE ' . influx_client::quote_identifier(self::$database), true);
        }
    }

    /**
     * RFC 3339 UTC.
     *
     * @param int $t
     * @return string
     */
    public static function influx_time(int $t): string {
        return gmdate('Y-m-d\TH:i:s\Z', $t);
    }

    /**
     * An InfluxDB client on the fixture database.
     *
     * @return influx_client
     */
    public static function influx(): influx_client {
        return new influx_client(log_dataset::plugin_config(log_dataset::influx_settings(self::$database)));
    }

    /**
     * A PostgreSQL connection to the test database.
     *
     * @return pgdb
     */
    public static function pg(): pgdb {
        return pgdb::from_config(log_dataset::plugin_config(log_dataset::pg_settings(self::$table)));
    }

    /**
     * Entries inside [from, to).
     *
     * @param int $from
     * @param int $to
     * @return array[]
     */
    public static function between(int $from, int $to): array {
        return array_values(array_filter(self::$entries, function($e) use ($from, $to) {
            return $e['timecreated'] >= $from && $e['timecreated'] < $to;
        }));
    }
}

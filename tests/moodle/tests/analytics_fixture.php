<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The time series databases the import, analytics, dashboard and downsampling tests write to — plain PostgreSQL,
 * TimescaleDB (TSDB_TEST_TIMESCALE_DSN) and InfluxDB 1.x — and what they read back, normalised so that a row of the
 * site's logstore_standard_log and the same event in any of them compare equal.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/log_dataset.php');

use logstore_tsdb\local\influx_client;
use logstore_tsdb\local\pgdb;
use PHPUnit\Framework\Assert;

/**
 * Targets and read-back.
 */
class analytics_fixture {

    /** @var string[] The backends the import writes to: plain PostgreSQL, TimescaleDB, InfluxDB 1.x. */
    const BACKENDS = ['postgres', 'timescaledb', 'influxdb1'];

    /** @var string[] The server variable each backend needs. */
    const SERVERS = ['postgres' => 'TSDB_TEST_PG_HOST', 'timescaledb' => 'TSDB_TEST_TIMESCALE_DSN',
        'influxdb1' => 'TSDB_TEST_INFLUX_URL'];

    /**
     * Plugin settings writing to a backend: a table (PostgreSQL, TimescaleDB) or a database (InfluxDB) of that name.
     *
     * @param string $backend one of BACKENDS
     * @param string $name
     * @return array
     */
    public static function settings(string $backend, string $name): array {
        switch ($backend) {
            case 'postgres':
                return log_dataset::pg_settings($name);
            case 'timescaledb':
                $dsn = parse_url((string) getenv('TSDB_TEST_TIMESCALE_DSN'));
                return ['host' => $dsn['host'], 'port' => $dsn['port'] ?? 5432, 'user' => urldecode($dsn['user']),
                    'password' => urldecode($dsn['pass'] ?? ''), 'dbname' => ltrim($dsn['path'], '/')]
                    + log_dataset::pg_settings($name);
            case 'influxdb1':
                return log_dataset::influx_settings($name);
        }
        throw new coding_exception("unknown backend $backend");
    }

    /**
     * A PostgreSQL connection to a target's database.
     *
     * @param array $settings settings()
     * @return pgdb
     */
    public static function pg(array $settings): pgdb {
        return pgdb::from_config(log_dataset::plugin_config($settings));
    }

    /**
     * An InfluxDB client of a target's database.
     *
     * @param array $settings settings()
     * @return influx_client
     */
    public static function influx(array $settings): influx_client {
        return new influx_client(log_dataset::plugin_config($settings));
    }

    /**
     * Removes a target: the table with its companions (ledger, schema record, summaries, continuous aggregates), or
     * the InfluxDB database; then an empty InfluxDB database is created (the sink does not create databases).
     *
     * @param string $backend
     * @param string $name
     * @param bool $create InfluxDB: create it empty again
     */
    public static function reset(string $backend, string $name, bool $create = true): void {
        $settings = self::settings($backend, $name);
        if ($backend === 'influxdb1') {
            $client = self::influx($settings);
            $q = influx_client::quote_identifier($name);
            $client->query("DROP DATABASE $q", true);
            if ($create) {
                $client->query("CREATE DATABASE $q", true);
            }
            return;
        }
        $db = self::pg($settings);
        try {
            // The main table first: CASCADE takes its continuous aggregates and summary views with it.
            foreach (['', '_ledger', '_schema', '_hourly_mat', '_daily_users_mat', '_summary', '_hourly', '_daily_users',
                    '_daily_active_users'] as $suffix) {
                $rel = \logstore_tsdb\local\summary::derived($name, $suffix);
                $kind = $db->query("SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    . " WHERE n.nspname = 'public' AND c.relname = ?", [$rel]);
                if ($kind) {
                    $what = $kind[0]->relkind === 'v' ? 'VIEW' : ($kind[0]->relkind === 'm' ? 'MATERIALIZED VIEW' : 'TABLE');
                    $db->execute("DROP $what IF EXISTS public." . pgdb::quote_identifier($rel) . ' CASCADE');
                }
            }
        } finally {
            $db->close();
        }
    }

    /**
     * Number of events in a target (0 while it does not exist).
     *
     * @param string $backend
     * @param string $name
     * @return int
     */
    public static function count(string $backend, string $name): int {
        $settings = self::settings($backend, $name);
        if ($backend === 'influxdb1') {
            $rows = self::influx($settings)->query('SELECT count("anonymous") AS n FROM "moodle_events"');
            return $rows ? (int) $rows[0]['n'] : 0;
        }
        $db = self::pg($settings);
        try {
            if (!$db->table_exists()) {
                return 0;
            }
            return (int) $db->query('SELECT count(*) AS n FROM ' . $db->table())[0]->n;
        } finally {
            $db->close();
        }
    }

    /**
     * Every event of a target, normalised (normalise()): the PostgreSQL columns, or InfluxDB's tags and fields with
     * timecreated from the point's time and the user ids behind their pseudonyms.
     *
     * @param string $backend
     * @param string $name
     * @return array[]
     */
    public static function target_rows(string $backend, string $name): array {
        $settings = self::settings($backend, $name);
        if ($backend !== 'influxdb1') {
            $db = self::pg($settings);
            try {
                if (!$db->table_exists()) {
                    return [];
                }
                return array_map([self::class, 'normalise'], $db->query_native('SELECT '
                    . implode(', ', log_dataset::COLUMNS) . ', other::text AS other FROM ' . $db->table()));
            } finally {
                $db->close();
            }
        }
        $points = self::influx($settings)->query('SELECT * FROM "moodle_events"');
        $pseudo = [];
        foreach ($points as $p) {
            foreach (['userid', 'relateduserid', 'realuserid'] as $f) {
                if (isset($p[$f]) && (int) $p[$f] >= \logstore_tsdb\local\pseudonym::MIN) {
                    $pseudo[] = (int) $p[$f];
                }
            }
        }
        $users = $pseudo ? \logstore_tsdb\local\pseudonym::users($pseudo) : [];
        $rows = [];
        foreach ($points as $p) {
            $p['timecreated'] = intdiv((int) $p['time'], 1000000000);
            foreach (['userid', 'relateduserid', 'realuserid'] as $f) {
                if (isset($p[$f]) && (int) $p[$f] >= \logstore_tsdb\local\pseudonym::MIN) {
                    $p[$f] = $users[(int) $p[$f]] ?? 'unknown pseudonym ' . $p[$f];
                }
            }
            $rows[] = self::normalise((object) $p);
        }
        return $rows;
    }

    /**
     * The rows of the site's logstore_standard_log, normalised.
     *
     * @param string $select SQL condition, '' for all
     * @param array $params
     * @return array[]
     */
    public static function standard_rows(string $select = '', array $params = []): array {
        global $DB;
        get_log_manager()->dispose();
        $out = [];
        $rs = $DB->get_recordset_select('logstore_standard_log', $select, $params, 'id');
        foreach ($rs as $r) {
            $out[] = self::normalise($r);
        }
        $rs->close();
        return $out;
    }

    /**
     * A row with the 20 columns as strings (null stays null) and `other` decoded (JSON, or serialize() as the standard
     * store writes it with its jsonformat setting off) and key-sorted.
     *
     * @param \stdClass $r
     * @return array
     */
    public static function normalise(\stdClass $r): array {
        $out = [];
        foreach (log_dataset::COLUMNS as $c) {
            $v = $r->$c ?? null;
            if ($c === 'other') {
                $v = $v === null ? null : log_dataset::canonical(\logstore_tsdb\log\store::decode_other((string) $v));
                $v = $v === false ? null : $v;
            } else if ($v !== null) {
                $v = (string) $v;
            }
            $out[$c] = $v;
        }
        return $out;
    }

    /**
     * Asserts that two lists of normalised rows hold the same rows the same number of times, whatever their order;
     * the message names a few rows that differ.
     *
     * @param array[] $want
     * @param array[] $got
     * @param string $msg
     */
    public static function assert_same_rows(array $want, array $got, string $msg): void {
        $key = function(array $row): string {
            return json_encode($row, JSON_UNESCAPED_UNICODE | JSON_PARTIAL_OUTPUT_ON_ERROR);
        };
        $w = array_map($key, $want);
        $g = array_map($key, $got);
        sort($w);
        sort($g);
        if ($w === $g) {
            Assert::assertSame(count($want), count($got), $msg);
            return;
        }
        $missing = array_slice(array_values(array_diff($w, $g)), 0, 3);
        $extra = array_slice(array_values(array_diff($g, $w)), 0, 3);
        $dups = array_slice(array_keys(array_filter(array_count_values($g), function($n) {
            return $n > 1;
        })), 0, 3);
        Assert::fail("$msg: " . count($want) . ' rows expected, ' . count($got) . " found\nmissing: " . implode("\n", $missing)
            . "\nunexpected: " . implode("\n", $extra) . "\nmore than once: " . implode("\n", $dups));
    }
}

<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * Shared set-up of the tests that run inside a real Moodle site: a clean plugin configuration with the file sink
 * (JSON lines) in a directory of the test's own, both stores enabled (logstore_standard is the reference), and
 * read-back helpers.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

use logstore_tsdb\local\extension;
use PHPUnit\Framework\TestCase;

/**
 * Moodle's data generator whose names (tc_N, username N...) do not repeat those of earlier runs in the same site:
 * the site outlives a PHPUnit process, Moodle's test framework would have reset it.
 */
class tsdb_test_generator extends testing_data_generator {
    /**
     * Counters start where no earlier process of this site can have been.
     */
    public function __construct() {
        $this->reset();
    }

    /**
     * Counters start where no earlier process of this site can have been.
     */
    public function reset() {
        parent::reset();
        $base = (int) (microtime(true) * 10) % 100000000 * 100;
        foreach (['usercounter', 'categorycount', 'cohortcount', 'coursecount', 'scalecount', 'groupcount',
                'groupingcount', 'rolecount', 'tagcount'] as $counter) {
            $this->$counter = $base;
        }
    }
}

/**
 * Base test case.
 */
abstract class base_testcase extends TestCase {
    /** @var string[] The 20 columns of logstore_standard_log (without id). */
    const COLUMNS = ['eventname', 'component', 'action', 'target', 'objecttable', 'objectid', 'crud', 'edulevel', 'contextid',
        'contextlevel', 'contextinstanceid', 'userid', 'courseid', 'relateduserid', 'anonymous', 'other', 'timecreated',
        'origin', 'ip', 'realuserid'];
    /** @var string[] Integer columns. */
    const INTS = ['objectid', 'edulevel', 'contextid', 'contextlevel', 'contextinstanceid', 'userid', 'courseid',
        'relateduserid', 'anonymous', 'timecreated', 'realuserid'];

    /** @var string A directory of this test's own (sink file, spool), removed after the test. */
    protected $dir;

    /** @var string The JSON lines sink of this test. */
    protected $sink;

    /**
     * Plugin settings back to their defaults, then the file backend writing JSON lines into this test's directory, its
     * own spool (a batch spooled by one test is never replayed into another's sink), both stores enabled, no user,
     * an empty logstore_standard_log, and a new request.
     */
    protected function setUp(): void {
        global $DB;
        $this->dir = tsdb_test_site::$info->dir . '/tests/' . preg_replace('/\W+/', '_', static::class . '-'
            . $this->getName()) . '-' . getmypid();
        self::remove_tree($this->dir);
        mkdir($this->dir, 0700, true);
        $this->sink = $this->dir . '/sink.jsonl';
        self::reset_plugin_config();
        set_config('enabled_stores', 'logstore_standard,logstore_tsdb', 'tool_log');
        set_config('buffersize', 50, 'logstore_standard');
        set_config('logguests', 1, 'logstore_standard');
        $DB->delete_records('logstore_standard_log');
        extension::reset_for_tests();
        $this->set_user(null);
        $this->configure(['backend' => 'file', 'format' => 'json', 'path' => $this->sink, 'mode' => 'async',
            'flush_interval_ms' => 50, 'spool_dir' => $this->dir . '/spool']);
    }

    /**
     * Lets this test's events finish, then removes its directory.
     */
    protected function tearDown(): void {
        get_log_manager()->dispose();
        if (function_exists('tsdb_flush')) {
            tsdb_flush(5000);
        }
        $this->set_user(null);
        self::remove_tree($this->dir);
    }

    /**
     * Every logstore_tsdb setting back to its default (the stored plugin version stays).
     */
    public static function reset_plugin_config(): void {
        foreach ((array) get_config('logstore_tsdb') as $name => $value) {
            if ($name !== 'version') {
                unset_config($name, 'logstore_tsdb');
            }
        }
    }

    /**
     * Sets plugin settings (what the admin saves), then starts a new request so that the stores read them.
     *
     * @param array $settings name => value
     */
    protected function configure(array $settings): void {
        foreach ($settings as $k => $v) {
            set_config($k, $v, 'logstore_tsdb');
        }
        $this->new_request();
    }

    /**
     * Ends the request (the log manager disposes its stores, the standard store writes its buffer) and starts a new
     * one: the next event creates the stores again from the current settings.
     */
    protected function new_request(): void {
        get_log_manager()->dispose();
        get_log_manager(true);
    }

    /**
     * The user of this "request" (null: not logged in), as \core\session\manager sets it for a web request.
     *
     * @param \stdClass|int|null $user
     */
    protected function set_user($user): void {
        global $DB;
        if (is_int($user)) {
            $user = $DB->get_record('user', ['id' => $user], '*', MUST_EXIST);
        }
        \core\session\manager::set_user($user ?? (object) ['id' => 0, 'mnethostid' => 1]);
    }

    /**
     * Moodle's data generator (users, courses, activities), as its tests and Behat use it.
     *
     * @return testing_data_generator
     */
    protected function gen(): testing_data_generator {
        static $gen = null;
        return $gen ?? ($gen = new tsdb_test_generator());
    }

    /**
     * Forgets every event so far: whatever the fixtures logged (user_created, course_created...) is written, then the
     * sink file and logstore_standard_log are emptied. What the test reads back afterwards is its own.
     */
    protected function forget_events_so_far(): void {
        global $DB;
        $this->new_request();
        $this->assertSame(0, tsdb_flush(10000), 'events still pending after tsdb_flush()');
        if (is_file($this->sink)) {
            file_put_contents($this->sink, '');
        }
        $DB->delete_records('logstore_standard_log');
    }

    /**
     * Flushes the extension and returns the rows of the sink file.
     *
     * @return array[]
     */
    protected function read_back(): array {
        get_log_manager()->dispose();
        return $this->file_rows($this->sink);
    }

    /**
     * Flushes the extension and returns the rows of a JSON lines file.
     *
     * @param string $file
     * @return array[]
     */
    protected function file_rows(string $file): array {
        $this->assertSame(0, tsdb_flush(10000), 'events still pending after tsdb_flush()');
        clearstatcache();
        if (!is_file($file)) {
            return [];
        }
        $rows = [];
        foreach (file($file, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) as $line) {
            $row = json_decode($line, true);
            $this->assertIsArray($row, "sink line is not JSON: $line");
            $rows[] = $row;
        }
        return $rows;
    }

    /**
     * The rows logstore_standard wrote (its buffer written first), in id order, as arrays.
     *
     * @param string $select SQL fragment, '' for all
     * @param array $params
     * @return array[]
     */
    protected function standard_rows(string $select = '', array $params = []): array {
        global $DB;
        get_log_manager()->dispose();
        return array_values(array_map(function($r) {
            return (array) $r;
        }, $DB->get_records_select('logstore_standard_log', $select, $params, 'id ASC')));
    }

    /**
     * Asserts that a sink row holds exactly what logstore_standard stored for the same event (every column, with
     * the types of the sink's JSON).
     *
     * @param array $standard a logstore_standard_log row
     * @param array $actual sink row
     * @param string $msg
     */
    protected function assert_row_matches_standard(array $standard, array $actual, string $msg = ''): void {
        $keys = array_keys($actual);
        sort($keys);
        $want = array_merge(self::COLUMNS, ['time_ns', 'event_id']);
        sort($want);
        $this->assertSame($want, $keys, "$msg: the JSON row must have exactly the event keys plus time_ns and event_id");
        foreach (self::COLUMNS as $col) {
            $value = $standard[$col];
            if ($col === 'other') {
                $this->assertSame(self::canonical(json_decode((string) $value, true)),
                    self::canonical(json_decode((string) $actual['other'], true)), "$msg: other");
                continue;
            }
            if (in_array($col, self::INTS, true) && $value !== null) {
                $value = (int) $value;
            }
            $this->assertSame($value, $actual[$col], "$msg: column $col");
        }
        $this->assertIsInt($actual['time_ns'], "$msg: time_ns");
        $this->assertIsString($actual['event_id'], "$msg: event_id");
        $this->assertNotSame('', $actual['event_id'], "$msg: event_id");
    }

    /**
     * Sorts associative arrays by key, recursively (PostgreSQL's jsonb does not keep key order; lists keep theirs).
     *
     * @param mixed $v
     * @return mixed
     */
    protected static function canonical($v) {
        if (!is_array($v)) {
            return $v;
        }
        $v = array_map([self::class, 'canonical'], $v);
        if (array_keys($v) !== range(0, count($v) - 1)) {
            ksort($v);
        }
        return $v;
    }

    /**
     * Asserts that a page or a script's output carries no PHP error and no Moodle debugging message.
     *
     * @param string $output
     * @param string $what what was shown, for the message
     */
    protected function assert_no_php_notice(string $output, string $what): void {
        $this->assertSame([], tsdb_test_site::php_notices($output), "$what shows PHP notices or debugging messages");
    }

    /**
     * The value of a server's TSDB_TEST_* variable; a test without it is skipped, or fails when the run requires the
     * servers (TSDB_TEST_REQUIRE_SERVERS=1, as ./build.sh test sets it).
     *
     * @param string $variable e.g. TSDB_TEST_INFLUX_URL
     * @return string
     */
    protected function server_env(string $variable): string {
        $value = (string) getenv($variable);
        if ($value === '') {
            if (getenv('TSDB_TEST_REQUIRE_SERVERS')) {
                $this->fail("servers required (TSDB_TEST_REQUIRE_SERVERS=1): $variable is not set");
            }
            $this->markTestSkipped("SKIPPED: $variable is not set");
        }
        return $value;
    }

    /**
     * A connection to the TimescaleDB database of the test servers (TSDB_TEST_TIMESCALE_DSN).
     *
     * @return \PDO
     */
    protected static function timescale(): \PDO {
        $dsn = parse_url(getenv('TSDB_TEST_TIMESCALE_DSN'));
        return new \PDO(sprintf('pgsql:host=%s;port=%s;dbname=%s', $dsn['host'], $dsn['port'], ltrim($dsn['path'], '/')),
            urldecode($dsn['user']), urldecode($dsn['pass'] ?? ''), [\PDO::ATTR_ERRMODE => \PDO::ERRMODE_EXCEPTION]);
    }

    /**
     * Before a test drops an events table: deletes the TimescaleDB policy jobs of the hypertables in $schema whose names
     * start with $prefix (and of their aggregates) and waits until their workers have ended. A job running while its
     * hypertable is dropped can crash TimescaleDB 2.28.3's worker, and PostgreSQL then restarts the whole server, every
     * site's database with it (tests/common/stop_jobs.sql says more). Nothing to do without TimescaleDB.
     *
     * @param \PDO|\logstore_tsdb\local\pgdb $db a connection to the database of the table
     * @param string $schema
     * @param string $prefix of the tables' names ('' for all of the schema)
     */
    public static function stop_jobs($db, string $schema, string $prefix = ''): void {
        $rows = function(string $sql, array $params) use ($db): array {
            if ($db instanceof \PDO) {
                $st = $db->prepare($sql);
                $st->execute($params);
                return $st->fetchAll(\PDO::FETCH_OBJ);
            }
            return $db->query($sql, $params);
        };
        if ($rows("SELECT to_regclass('_timescaledb_catalog.bgw_job') AS t", [])[0]->t === null) {
            return;
        }
        // Both drivers take ? here; the file's comments go (PDO would read the quotes in them).
        $sql = str_replace(['$1', '$2'], '?',
            preg_replace('/^--.*$/m', '', file_get_contents(__DIR__ . '/../../common/stop_jobs.sql')));
        $deadline = microtime(true) + 60;
        foreach ($rows($sql, [$schema, $prefix]) as $job) {
            while ($rows('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()'
                    . ' AND application_name = ?',
                    [$job->application_name])[0]->n > 0) {
                if (microtime(true) > $deadline) {
                    throw new \coding_exception("the worker of {$job->application_name} still runs after 60 s");
                }
                usleep(20000);
            }
        }
    }

    /**
     * Runs a DROP as an administrator does: again when TimescaleDB's scheduler is in its way. A refresh policy
     * running on one of the table's continuous aggregates (their first run follows their creation) locks the
     * aggregate and then the table, DROP ... CASCADE the other way round: PostgreSQL ends one of them with
     * "deadlock detected" (or the catalog's "tuple concurrently deleted"), and a failed DROP changed nothing.
     *
     * @param \PDO $pdo
     * @param string $sql the DROP statement
     */
    public static function drop_retrying(\PDO $pdo, string $sql): void {
        for ($try = 1;; $try++) {
            try {
                $pdo->exec($sql);
                return;
            } catch (\PDOException $e) {
                $busy = $e->getCode() === '40P01' || strpos($e->getMessage(), 'tuple concurrently') !== false;
                if (!$busy || $try === 20) {
                    throw $e;
                }
                usleep(250000);
            }
        }
    }

    /**
     * Removes a directory tree.
     *
     * @param string $dir
     */
    public static function remove_tree(string $dir): void {
        if (!is_dir($dir) || is_link($dir)) {
            @unlink($dir);
            return;
        }
        foreach (scandir($dir) as $f) {
            if ($f !== '.' && $f !== '..') {
                self::remove_tree("$dir/$f");
            }
        }
        @rmdir($dir);
    }
}

<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The time series databases the import, analytics, dashboard and downsampling tests write to — plain PostgreSQL,
 * TimescaleDB (TSDB_TEST_TIMESCALE_DSN) and InfluxDB 1.x — and what they read back, normalised so that a row of the
 * site's logstore_standard_log and the same event in any of them compare equal; real events for the site's
 * logstore_standard_log; imports by the plugin's CLI; TimescaleDB's policy jobs run by its own scheduler; and the
 * analytics data set: three weeks of events in the site's logstore_standard_log (real events and log_dataset rows),
 * imported once per PHPUnit process into each backend, then more events days and weeks old imported after the
 * aggregates were materialised, for the queries of docs/analytics.md and the panels of docs/grafana/.
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
 * Targets of a test case: made empty and configured as the store's backend by target(), removed after the test.
 */
trait analytics_targets {

    /** @var array[] [backend, name] of the targets of this test */
    protected $targets = [];

    /**
     * An empty target of this test (a table or an InfluxDB database named after the test class and this process),
     * and the plugin configured to write to it.
     *
     * @param string $backend one of analytics_fixture::BACKENDS
     * @param array $settings more plugin settings
     * @return string its table or database name
     */
    protected function target(string $backend, array $settings = []): string {
        $this->server_env(analytics_fixture::SERVERS[$backend]);
        $name = substr(static::class, 0, 2) . '_t' . getmypid() . '_' . count($this->targets);
        $this->targets[] = [$backend, $name];
        analytics_fixture::reset($backend, $name);
        $this->configure(analytics_fixture::settings($backend, $name) + $settings);
        return $name;
    }

    /**
     * Removes the targets of this test.
     */
    protected function tearDown(): void {
        foreach ($this->targets as [$backend, $name]) {
            analytics_fixture::reset($backend, $name, false);
        }
        parent::tearDown();
    }
}

/**
 * Test cases on the analytics data set: it is made (once per process) before each test, whose time range is its range.
 */
trait analytics_data_set {

    /** @var int Start of the time range. */
    protected $from;

    /** @var int End of the time range. */
    protected $to;

    /**
     * The data set in every backend (every server required).
     */
    protected function setUp(): void {
        parent::setUp();
        foreach (analytics_fixture::SERVERS as $variable) {
            $this->server_env($variable);
        }
        analytics_fixture::setup($this->gen());
        $this->from = analytics_fixture::$from;
        $this->to = analytics_fixture::$to;
    }
}

/**
 * Targets, read-back, real events, TimescaleDB's scheduler and the analytics data set.
 */
class analytics_fixture {

    /** @var int Events of log_dataset in the analytics data set (besides the real events). */
    const N = 15000;

    /** @var int Events of log_dataset imported after the aggregates were materialised, over the same days. */
    const LATE = 1500;

    /**
     * Companions of a table: the sink's, TimescaleDB's aggregates, the plain-PostgreSQL summaries (and those of their
     * first version).
     *
     * @return string[] suffixes
     */
    public static function companions(): array {
        $aggregates = array_keys(\logstore_tsdb\local\summary::AGGREGATES);
        return array_merge(['_ledger', '_schema', '_summary'], $aggregates, array_map(function($suffix) {
            return $suffix . '_mat';
        }, $aggregates), ['_hourly_v1', '_daily_users_v1']);
    }

    /** @var int Days of the analytics data set, ending at the start of today (UTC). */
    const DAYS = 21;

    /** @var array[]|null The analytics data set: the rows of logstore_standard_log, typed (entries()). */
    public static $entries = null;

    /** @var string|null The table / InfluxDB database of the analytics data set in each backend. */
    public static $name = null;

    /** @var string|null A copy of the data set's logstore_standard_log in the site's database (its indexes too). */
    public static $standard = null;

    /** @var int First second of the analytics data set (midnight UTC). */
    public static $from = 0;

    /** @var int End of its time range: the end of the hour in which it was made. */
    public static $to = 0;

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
            base_testcase::stop_jobs($db, 'public', $name);
            // The main table first: CASCADE takes its continuous aggregates and summary views with it.
            foreach (array_merge([''], self::companions()) as $suffix) {
                $rel = \logstore_tsdb\local\summary::derived($name, $suffix);
                $kind = $db->query("SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    . " WHERE n.nspname = 'public' AND c.relname = ?", [$rel]);
                if (!$kind) {
                    continue;
                }
                $what = $kind[0]->relkind === 'v' ? 'VIEW' : ($kind[0]->relkind === 'm' ? 'MATERIALIZED VIEW' : 'TABLE');
                // A policy job of TimescaleDB working on the table meanwhile can make the drop a deadlock's victim.
                for ($try = 1;; $try++) {
                    try {
                        $db->execute("DROP $what IF EXISTS public." . pgdb::quote_identifier($rel) . ' CASCADE');
                        break;
                    } catch (\moodle_exception $e) {
                        if ($try === 5) {
                            throw $e;
                        }
                        sleep(1);
                    }
                }
            }
        } finally {
            $db->close();
        }
    }

    /**
     * Imports the site's logstore_standard_log into a target with the plugin's CLI (import_standard_log.php, in a
     * process of its own, with the plugin configured for the target meanwhile): the first run everything, a later run
     * what was added since.
     *
     * @param string $backend
     * @param string $name
     * @param array $settings more plugin settings
     * @return string what the CLI printed
     */
    public static function import(string $backend, string $name, array $settings = []): string {
        get_log_manager()->dispose();
        $saved = (array) get_config('logstore_tsdb');
        foreach (self::settings($backend, $name) + $settings as $k => $v) {
            set_config($k, $v, 'logstore_tsdb');
        }
        try {
            [$rc, $out, $err] = tsdb_test_site::run_cli(tsdb_test_site::plugin_cli('import_standard_log.php'), ['--all']);
        } finally {
            foreach (array_keys(self::settings($backend, $name) + $settings) as $k) {
                if (array_key_exists($k, $saved)) {
                    set_config($k, $saved[$k], 'logstore_tsdb');
                } else {
                    unset_config($k, 'logstore_tsdb');
                }
            }
        }
        Assert::assertSame(0, $rc, "import into $backend: $out $err");
        return $out;
    }

    /**
     * Runs SQL on the site's own Moodle database, in a connection of its own (as Grafana or a DBA would).
     *
     * @param string $sql
     * @return stdClass[]
     */
    public static function moodle_sql(string $sql): array {
        global $CFG;
        $db = self::pg(['backend' => 'postgres', 'host' => $CFG->dbhost, 'port' => $CFG->dboptions['dbport'] ?? 5432,
            'user' => $CFG->dbuser, 'password' => $CFG->dbpass, 'dbname' => $CFG->dbname, 'table' => 'x']);
        try {
            return $db->query_native($sql);
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

    /**
     * Real events into the site's logstore_standard_log: a course with a page, a forum and three students made by
     * Moodle's generator (whose own events are logged too), then each student logs in and views the course (nested
     * and unicode `other`), the page, the forum and their profile; a failed login; an admin "logged in as" a student.
     * Only the standard store is enabled meanwhile, as on a site before the TSDB store.
     *
     * @param testing_data_generator $gen
     * @return array [course, students]
     */
    public static function fire_real_events(testing_data_generator $gen): array {
        $stores = get_config('tool_log', 'enabled_stores');
        set_config('enabled_stores', 'logstore_standard', 'tool_log');
        get_log_manager()->dispose();
        get_log_manager(true);
        try {
            $course = $gen->create_course(['fullname' => 'Ünïcödé "course" \\ 🎓']);
            $page = $gen->create_module('page', ['course' => $course->id]);
            $forum = $gen->create_module('forum', ['course' => $course->id]);
            $students = [];
            for ($i = 0; $i < 3; $i++) {
                $students[] = $u = $gen->create_user();
                $gen->enrol_user($u->id, $course->id, 'student');
            }
            $coursectx = context_course::instance($course->id);
            foreach ($students as $u) {
                \core\session\manager::set_user($u);
                \core\event\user_loggedin::create(['userid' => $u->id, 'objectid' => $u->id,
                    'other' => ['username' => $u->username]])->trigger();
                \core\event\course_viewed::create(['context' => $coursectx, 'other' => ['coursesectionnumber' => 1,
                    'nested' => ['a' => [1, 2.5, true, null, 'x"y\\z'], 'é' => 'ünïcödé 🎓']]])->trigger();
                \mod_page\event\course_module_viewed::create(['objectid' => $page->id,
                    'context' => context_module::instance($page->cmid)])->trigger();
                \mod_forum\event\course_module_viewed::create(['objectid' => $forum->id,
                    'context' => context_module::instance($forum->cmid)])->trigger();
                \core\event\user_profile_viewed::create(['objectid' => $u->id, 'relateduserid' => $u->id,
                    'context' => context_user::instance($u->id), 'other' => ['courseid' => $course->id,
                    'courseshortname' => $course->shortname, 'coursefullname' => $course->fullname]])->trigger();
            }
            \core\session\manager::set_user((object) ['id' => 0, 'mnethostid' => 1]);
            \core\event\user_login_failed::create(['other' => ['username' => "nobody's", 'reason' => 1]])->trigger();
            \core\session\manager::set_user(get_admin());
            \core\session\manager::loginas($students[0]->id, context_system::instance());
            \core\event\course_viewed::create(['context' => $coursectx])->trigger();
        } finally {
            \core\session\manager::init_empty_session();
            \core\session\manager::set_user((object) ['id' => 0, 'mnethostid' => 1]);
            get_log_manager()->dispose();
            set_config('enabled_stores', $stores, 'tool_log');
            get_log_manager(true);
        }
        return [$course, $students];
    }

    /**
     * Normalised rows with the integer columns as integers (for computing figures).
     *
     * @param array[] $rows normalise()d
     * @return array[]
     */
    public static function entries(array $rows): array {
        $ints = array_flip(base_testcase::INTS);
        return array_map(function($r) use ($ints) {
            foreach ($r as $c => $v) {
                if (isset($ints[$c]) && $v !== null) {
                    $r[$c] = (int) $v;
                }
            }
            return $r;
        }, $rows);
    }

    /**
     * Lets TimescaleDB's own background scheduler run the policy jobs of a table and of its continuous aggregates
     * (compression, retention, refresh): each job is told to start now (alter_job), then job_stats must show a new
     * successful run; a failed run fails with TimescaleDB's own error (job_errors). No run_job(), no manual refresh.
     * The refresh jobs run one after the other, before the other jobs (started beside its refresh, an aggregate's
     * compression can fail with TimescaleDB's "aborting recompression due to concurrent updates", retried at its next
     * run on a site: tests/postgres.rs, run_jobs_by_scheduler_n).
     *
     * @param string $name the table (TimescaleDB target)
     * @param string[] $procs which jobs, by proc_name (policy_compression, policy_retention,
     *        policy_refresh_continuous_aggregate)
     * @return string[] job id => "proc_name on relation" of the jobs that ran, in the order they were started
     */
    public static function run_policies(string $name, array $procs): array {
        $db = self::pg(self::settings('timescaledb', $name));
        try {
            // The jobs view names a continuous aggregate's jobs by the aggregate's own name.
            $relations = [$name];
            foreach (\logstore_tsdb\local\summary::AGGREGATES as $suffix => $spec) {
                $relations[] = \logstore_tsdb\local\summary::derived($name, $suffix);
            }
            $jobs = [];
            foreach ($db->query('SELECT job_id, proc_name, hypertable_name FROM timescaledb_information.jobs'
                    . " WHERE hypertable_schema = 'public' AND hypertable_name = ANY(?::text[])",
                    ['{' . implode(',', $relations) . '}']) as $j) {
                if (in_array($j->proc_name, $procs, true)) {
                    $jobs[(int) $j->job_id] = [$j->proc_name, $j->hypertable_name];
                }
            }
            Assert::assertSame(count($procs), count(array_unique(array_column($jobs, 0))), "policy jobs of $name: "
                . json_encode($jobs));
            // Refresh jobs first, in the order of the aggregates.
            uksort($jobs, function($a, $b) use ($jobs, $relations) {
                $rank = function($id) use ($jobs, $relations) {
                    return [$jobs[$id][0] === 'policy_refresh_continuous_aggregate' ? 0 : 1,
                        array_search($jobs[$id][1], $relations, true)];
                };
                return $rank($a) <=> $rank($b);
            });
            $deadline = microtime(true) + 300;
            $refresh = array_filter($jobs, function($j) {
                return $j[0] === 'policy_refresh_continuous_aggregate';
            });
            foreach (array_keys($refresh) as $id) {
                self::run_jobs($db, [$id => $jobs[$id]], $deadline);
            }
            self::run_jobs($db, array_diff_key($jobs, $refresh), $deadline);
            return array_map(function($j) {
                return implode(' on ', $j);
            }, $jobs);
        } finally {
            $db->close();
        }
    }

    /**
     * Has the scheduler run jobs now and waits until each has a new finished run, which must be a success.
     *
     * @param pgdb $db
     * @param array[] $jobs id => [proc_name, relation]
     * @param float $deadline
     */
    protected static function run_jobs(pgdb $db, array $jobs, float $deadline): void {
        // Finished runs and the status of the last one: total_runs counts a run from its start, and while it runs
        // its last_finish is -infinity, so last_run_status is null.
        $runs = function(int $id) use ($db): array {
            $r = $db->query('SELECT COALESCE(total_runs, 0) AS runs, last_run_status AS status'
                . ' FROM timescaledb_information.job_stats WHERE job_id = ?', [$id]);
            if (!$r) {
                return [0, '', false];
            }
            $status = (string) $r[0]->status;
            $running = $status === '' && (int) $r[0]->runs > 0;
            return [(int) $r[0]->runs - ($running ? 1 : 0), $status, $running];
        };
        $before = [];
        foreach (array_keys($jobs) as $id) {
            // A run the scheduler started earlier (when the policy was made, during the writes) ends first.
            while (($now = $runs($id))[2] && microtime(true) < $deadline) {
                usleep(200000);
            }
            $before[$id] = $now[0];
            $db->query('SELECT alter_job(?, next_start => now())', [$id]);
        }
        foreach ($jobs as $id => [$proc, $relation]) {
            while ((($now = $runs($id))[0] <= $before[$id] || $now[1] === '') && microtime(true) < $deadline) {
                usleep(200000);
            }
            Assert::assertGreaterThan($before[$id], $now[0], "the scheduler ran job $id ($proc on $relation) in time");
            if ($now[1] !== 'Success') {
                $errors = $db->query('SELECT sqlerrcode, err_message FROM timescaledb_information.job_errors'
                    . ' WHERE job_id = ? ORDER BY finish_time DESC LIMIT 1', [$id]);
                Assert::fail("job $id ($proc on $relation) ended with {$now[1]}: " . json_encode($errors));
            }
        }
    }

    /**
     * The shipped InfluxQL statements (moodle-plugin/downsampling/influxdb1_continuous_queries.influxql), as
     * "name" => statement, with a database instead of "moodle".
     *
     * @param string $database
     * @return array
     */
    public static function influxql_statements(string $database): array {
        $text = file_get_contents(tsdb_test_site::$info->plugindir . '/downsampling/influxdb1_continuous_queries.influxql');
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
     * RFC 3339 UTC.
     *
     * @param int $t
     * @return string
     */
    public static function influx_time(int $t): string {
        return gmdate('Y-m-d\TH:i:s\Z', $t);
    }

    /**
     * The analytics data set, made once per PHPUnit process (the caller has checked that the servers exist):
     *
     * - the site's logstore_standard_log: real events, then N rows of log_dataset over DAYS days ending at the start of
     *   today, written through the extension into plain PostgreSQL, TimescaleDB and InfluxDB (user ids pseudonymised),
     *   as the importer or a spool replay writes them;
     * - TimescaleDB's policies run by its scheduler (the aggregates materialised up to an hour ago, older chunks
     *   compressed), plain PostgreSQL's summaries materialised up to day 14 (later days are read from the events);
     * - then LATE more rows over the same days (weeks and days old) written the same way: TimescaleDB's aggregates are
     *   brought up to date by its scheduler alone (no manual refresh), plain PostgreSQL's by the summaries' refresh (the
     *   `summarise` task) once PostgreSQL counted the new rows in the partitions; InfluxDB's rollups backfilled with
     *   the shipped statements;
     * - the rows of logstore_standard_log (typed) kept in $entries, the reference of every figure, and copied with its
     *   indexes into $standard in the site's database (each test empties logstore_standard_log).
     *
     * @param testing_data_generator $gen
     */
    public static function setup(testing_data_generator $gen): void {
        global $DB, $CFG;
        if (self::$entries !== null) {
            return;
        }
        $today = time() - time() % 86400;
        self::$from = $today - self::DAYS * 86400;
        get_log_manager()->dispose();
        $DB->delete_records('logstore_standard_log');
        self::fire_real_events($gen);
        log_dataset::insert_standard(log_dataset::generate(self::N, self::DAYS, 51, self::$from));
        $first = self::entries(self::standard_rows());
        self::$name = 'an_t' . getmypid();
        register_shutdown_function([self::class, 'teardown']);
        foreach (self::BACKENDS as $backend) {
            self::reset($backend, self::$name);
            self::write($backend, self::$name, $first);
        }
        self::run_policies(self::$name, ['policy_compression', 'policy_refresh_continuous_aggregate']);
        $refresh = function() {
            $cfg = log_dataset::plugin_config(self::settings('postgres', self::$name));
            $db = pgdb::from_config($cfg);
            (new \logstore_tsdb\local\summary($db, $cfg))->refresh(self::$from + 14 * 86400 + 5 * 3600);
            $db->close();
        };
        $refresh();

        log_dataset::insert_standard(log_dataset::generate(self::LATE, self::DAYS, 52, self::$from));
        $entries = self::entries(self::standard_rows());
        $late = array_slice($entries, count($first));
        foreach (self::BACKENDS as $backend) {
            self::write($backend, self::$name, $late);
            Assert::assertSame(count($entries), self::count($backend, self::$name), "every event in $backend");
        }
        self::run_policies(self::$name, ['policy_compression', 'policy_refresh_continuous_aggregate']);
        self::wait_for_counted(self::$name, count($entries));
        $refresh();
        self::$to = time() - time() % 3600 + 3600;
        \logstore_tsdb\local\extension::reset_for_tests();

        $client = self::influx(self::settings('influxdb1', self::$name));
        $q = self::influxql_statements(self::$name);
        $client->query($q['rollup_retention'], true);
        foreach (['backfill_hourly', 'backfill_daily_users'] as $name) {
            $client->query(str_replace(['FROM_TIME', 'TO_TIME'], [self::influx_time(self::$from), self::influx_time(self::$to)],
                $q[$name]), true);
        }
        self::$standard = $CFG->prefix . 'an_std_' . getmypid();
        self::moodle_sql('DROP TABLE IF EXISTS ' . self::$standard);
        self::moodle_sql('CREATE TABLE ' . self::$standard . " (LIKE {$CFG->prefix}logstore_standard_log INCLUDING ALL)");
        self::moodle_sql('INSERT INTO ' . self::$standard . " SELECT * FROM {$CFG->prefix}logstore_standard_log");
        self::moodle_sql('ANALYZE ' . self::$standard);
        self::$entries = $entries;
    }

    /**
     * Writes entries into a target through the extension, as the importer or a spool replay does (InfluxDB: user ids
     * pseudonymised as the store does).
     *
     * @param string $backend
     * @param string $name
     * @param array[] $entries
     */
    public static function write(string $backend, string $name, array $entries): void {
        log_dataset::write_through_extension($backend === 'influxdb1' ? log_dataset::pseudonymise($entries) : $entries,
            self::settings($backend, $name));
    }

    /**
     * Waits until PostgreSQL's cumulative statistics count at least this many rows inserted (or deleted) in a
     * plain-PostgreSQL target's partitions (what the summaries' refresh reads; a backend reports its counts within
     * seconds).
     *
     * @param string $name
     * @param int $rows
     * @param string $counter n_tup_ins or n_tup_del
     */
    public static function wait_for_counted(string $name, int $rows, string $counter = 'n_tup_ins'): void {
        $db = self::pg(self::settings('postgres', $name));
        try {
            $deadline = microtime(true) + 90;
            while (true) {
                $n = (int) $db->query("SELECT COALESCE(sum(s.$counter), 0) AS n FROM pg_inherits i JOIN pg_stat_all_tables s"
                    . ' ON s.relid = i.inhrelid WHERE i.inhparent = to_regclass(?)', [$db->table()])[0]->n;
                if ($n >= $rows || microtime(true) > $deadline) {
                    break;
                }
                usleep(300000);
            }
            Assert::assertGreaterThanOrEqual($rows, $n, "PostgreSQL's $counter of $name");
        } finally {
            $db->close();
        }
    }

    /**
     * Removes the data set's tables and database at the end of the process.
     */
    public static function teardown(): void {
        if (self::$name) {
            foreach (self::BACKENDS as $backend) {
                self::reset($backend, self::$name, false);
            }
        }
        if (self::$standard) {
            self::moodle_sql('DROP TABLE IF EXISTS ' . self::$standard);
        }
    }

    /**
     * Entries of the data set inside [from, to).
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

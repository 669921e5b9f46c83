<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * cli/import_standard_log.php and its importer in a real site: the site's own logstore_standard_log — written by the
 * real logstore_standard from real events (some with its jsonformat setting off, so `other` is serialize()d), plus
 * rows inserted with $DB for volume — imported through tsdb_import() into plain PostgreSQL, TimescaleDB (compressed
 * days included) and InfluxDB 1.6.7. Every row arrives once with every column, through SIGKILLs at random points,
 * crashes between a write and its position, reruns, --restart, windows, filters, exports (CSV, JSON lines, JSON
 * array), the recordset path of MySQL sites and dry runs; TimescaleDB's aggregates come up to date by its own policies.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/analytics_fixture.php');

use logstore_tsdb\local\import\db_source;
use logstore_tsdb\local\import\file_source;
use logstore_tsdb\local\import\importer;
use logstore_tsdb\local\import\progress;

/**
 * Import tests.
 */
class import_test extends base_testcase {
    use analytics_targets;

    /** @var int Rows inserted with $DB besides the real events. */
    const BULK = 12000;

    /** @var \stdClass a course of the real events */
    protected $course;

    /** @var \stdClass[] the students of the real events */
    protected $students = [];

    /**
     * The source: real events through the real standard store (the TSDB store off, as before a site enables it), with
     * JSON and serialize()d `other`, then BULK rows of log_dataset.
     */
    protected function setUp(): void {
        parent::setUp();
        $jsonformat = get_config('logstore_standard', 'jsonformat');
        analytics_fixture::fire_real_events($this->gen());
        set_config('jsonformat', 0, 'logstore_standard');
        try {
            [$this->course, $this->students] = analytics_fixture::fire_real_events($this->gen());
        } finally {
            set_config('jsonformat', $jsonformat, 'logstore_standard');
            $this->new_request();
        }
        log_dataset::insert_standard(log_dataset::generate(self::BULK, 6, 23));
    }

    /**
     * An importer of the database source with the current plugin config, in this process.
     *
     * @param array $options
     * @param \logstore_tsdb\local\import\source|null $source
     * @return importer
     */
    protected function importer(array $options = [], $source = null): importer {
        return new importer(\logstore_tsdb\log\store::read_plugin_config(), $source ?? new db_source(),
            $options + ['to' => null]);
    }

    /**
     * Asserts a target holds exactly the source rows (of a time window), each once, every column.
     *
     * @param string $backend
     * @param string $name
     * @param string $msg
     * @param int|null $from
     * @param int|null $to
     */
    protected function assert_target_is_source(string $backend, string $name, string $msg, ?int $from = null,
            ?int $to = null): void {
        [$select, $params] = self::window($from, $to);
        analytics_fixture::assert_same_rows(analytics_fixture::standard_rows($select, $params),
            self::rows_of($backend, $name), $msg);
    }

    /**
     * A timecreated window as SQL on logstore_standard_log.
     *
     * @param int|null $from
     * @param int|null $to
     * @return array [select, params]
     */
    protected static function window(?int $from, ?int $to): array {
        $w = [];
        $p = [];
        if ($from !== null) {
            $w[] = 'timecreated >= :from';
            $p['from'] = $from;
        }
        if ($to !== null) {
            $w[] = 'timecreated < :to';
            $p['to'] = $to;
        }
        return [implode(' AND ', $w), $p];
    }

    /**
     * The backends.
     *
     * @return array[]
     */
    public static function backends(): array {
        return array_combine(analytics_fixture::BACKENDS, array_map(function($b) {
            return [$b];
        }, analytics_fixture::BACKENDS));
    }

    /**
     * A read of a target, again when PostgreSQL chose it as the victim of a deadlock with TimescaleDB's compression
     * policy (its scheduler merges the imported day chunks under exclusive locks while the test counts or reads).
     *
     * @param callable $read
     * @return mixed what $read returns
     */
    protected static function retried(callable $read) {
        for ($attempt = 1;; $attempt++) {
            try {
                return $read();
            } catch (\moodle_exception $e) {
                if ($attempt >= 5 || strpos($e->getMessage() . $e->debuginfo, 'deadlock detected') === false) {
                    throw $e;
                }
                usleep(200000);
            }
        }
    }

    /**
     * The events in a target (analytics_fixture::count(), retried()).
     *
     * @param string $backend
     * @param string $name
     * @return int
     */
    protected static function count_of(string $backend, string $name): int {
        return self::retried(function() use ($backend, $name) {
            return analytics_fixture::count($backend, $name);
        });
    }

    /**
     * The rows of a target (analytics_fixture::target_rows(), retried()).
     *
     * @param string $backend
     * @param string $name
     * @return array[]
     */
    protected static function rows_of(string $backend, string $name): array {
        return self::retried(function() use ($backend, $name) {
            return analytics_fixture::target_rows($backend, $name);
        });
    }

    /**
     * Starts the site's CLI in the background.
     *
     * @param string[] $args
     * @param string $log file for its output
     * @return resource the process
     */
    protected function start_cli(array $args, string $log) {
        return proc_open(array_merge([PHP_BINARY], tsdb_test_site::php_args(),
            [tsdb_test_site::plugin_cli('import_standard_log.php')], $args),
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', $log, 'a'], 2 => ['file', $log, 'a']], $pipes,
            tsdb_test_site::$info->coderoot);
    }

    /**
     * Runs the CLI and kills it with SIGKILL at a random point: after a random delay, or once the target holds at
     * least $atleast events (whichever the draw picked); returns the events in the target after the kill.
     *
     * @param string $backend
     * @param string $name
     * @param array $args
     * @param int $atleast
     * @param float $delay seconds (used when $atleast is 0)
     * @param string $log
     * @return int
     */
    protected function kill_cli_at(string $backend, string $name, array $args, int $atleast, float $delay, string $log): int {
        $proc = $this->start_cli($args, $log);
        $deadline = microtime(true) + 120;
        $start = microtime(true);
        while (proc_get_status($proc)['running'] && microtime(true) < $deadline) {
            usleep(5000);
            if ($atleast > 0 ? self::count_of($backend, $name) >= $atleast : microtime(true) - $start >= $delay) {
                break;
            }
        }
        $running = proc_get_status($proc)['running'];
        proc_terminate($proc, 9);
        proc_close($proc);
        $this->assertTrue($running, 'the import was still running when killed: ' . file_get_contents($log));
        return self::count_of($backend, $name);
    }

    /**
     * The CLI of the site, killed with SIGKILL three times in a row at random points (right after its start, and
     * while it writes), then run to the end: every row once, with every column; a rerun and a rerun after --restart
     * store nothing twice.
     *
     * @dataProvider backends
     * @param string $backend
     */
    public function test_cli_killed_at_random_points_and_resumed(string $backend): void {
        global $DB;
        $name = $this->target($backend);
        $n = $DB->count_records('logstore_standard_log');
        $this->assertGreaterThan(self::BULK + 50, $n, 'real events and bulk rows in logstore_standard_log');
        $cli = tsdb_test_site::plugin_cli('import_standard_log.php');

        [$rc, $out] = tsdb_test_site::run_cli($cli, ['--help']);
        $this->assertSame(0, $rc);
        $this->assertStringContainsString('--dry-run', $out);
        [$rc, $out, $err] = tsdb_test_site::run_cli($cli, ['--bogus']);
        $this->assertSame(1, $rc);
        $this->assertStringContainsString('Unknown option(s): --bogus', $out . $err);
        [$rc, $out, $err] = tsdb_test_site::run_cli($cli, ['--dry-run', '--all']);
        $this->assertSame(0, $rc, $out . $err);
        $this->assertStringContainsString("Dry run: would import $n events", $out);
        $this->assert_no_php_notice($out . $err, 'the dry run');
        $this->assertSame(0, self::count_of($backend, $name), 'a dry run writes nothing');

        $seed = random_int(1, 1000000);
        mt_srand($seed);
        $log = $this->dir . '/killed.log';
        // Small chunks: the whole table takes the CLI well over half a second (at --chunk=400 it took less than the
        // first kill's delay on a quiet machine), and a kill at a fraction of the rows finds it writing.
        $args = ['--all', '--chunk=50'];
        $counts = [];
        // A kill at a random moment of the first 0.5 s (the bootstrap, the count, the first chunks), then two while it
        // writes, at random fractions of the rows.
        $counts[] = $this->kill_cli_at($backend, $name, $args, 0, mt_rand(0, 500) / 1000, $log);
        foreach ([mt_rand(15, 45), mt_rand(55, 85)] as $percent) {
            $counts[] = $this->kill_cli_at($backend, $name, $args, max(1, intdiv($n * $percent, 100)), 0, $log);
        }
        $this->assertLessThan($n, end($counts), "killed before the end (seed $seed)");
        $this->assertGreaterThan(0, end($counts), "rows were written before the kills (seed $seed)");

        [$rc, $out] = tsdb_test_site::run_cli($cli, ['--status']);
        $this->assertSame(0, $rc, $out);
        $this->assertStringContainsString('Runs: ', $out);

        [$rc, $out, $err] = tsdb_test_site::run_cli($cli, $args);
        $this->assertSame(0, $rc, $out . $err);
        $this->assert_no_php_notice($out . $err, 'the resumed import');
        $this->assertMatchesRegularExpression('/OK    source: /', $out);
        if ($backend !== 'influxdb1') {
            $this->assertMatchesRegularExpression('/OK    target: /', $out);
        }
        $why = "seed $seed, events in the target after each kill: " . implode(', ', $counts);
        $this->assertSame($n, self::count_of($backend, $name), "N in, N out ($why)");
        $this->assert_target_is_source($backend, $name, "killed three times, then resumed ($why)");

        [$rc, $out] = tsdb_test_site::run_cli($cli, ['--all']);
        $this->assertSame(0, $rc, $out);
        $this->assertStringContainsString('Imported 0 events', $out);
        // From the start again: every row is sent again, none is stored twice.
        [$rc, $out] = tsdb_test_site::run_cli($cli, ['--restart']);
        $this->assertSame(0, $rc, $out);
        [$rc, $out] = tsdb_test_site::run_cli($cli, ['--all']);
        $this->assertSame(0, $rc, $out);
        $this->assertStringContainsString("Imported $n events", $out);
        $this->assertSame($n, self::count_of($backend, $name), 'after --restart and a full rerun');

        if ($backend === 'influxdb1') {
            $max = analytics_fixture::influx(analytics_fixture::settings($backend, $name))
                ->query('SELECT max("userid") FROM "moodle_events"');
            $this->assertGreaterThanOrEqual(\logstore_tsdb\local\pseudonym::MIN, (int) $max[0]['max'],
                'user ids pseudonymised as the live store does');
        } else {
            $db = analytics_fixture::pg(analytics_fixture::settings($backend, $name));
            $identity = $db->query('SELECT min(producer) AS lo, max(producer) AS hi, min(seq) AS first, max(seq) AS last FROM '
                . $db->table())[0];
            $db->close();
            $this->assertSame($identity->lo, $identity->hi, 'one producer: the source');
            $this->assertLessThan(0, (int) $identity->lo, 'an import producer has the top bit set (negative as bigint)');
            $this->assertSame((int) $DB->get_field_sql('SELECT MIN(id) FROM {logstore_standard_log}'), (int) $identity->first);
            $this->assertSame((int) $DB->get_field_sql('SELECT MAX(id) FROM {logstore_standard_log}'), (int) $identity->last);
        }

        // Moodle's log reader API on the imported events gives the standard store's counts.
        $this->new_request();
        $tsdb = get_log_manager()->get_readers()['logstore_tsdb'];
        foreach ([['courseid = :courseid', ['courseid' => $this->course->id]],
                ['userid = :userid', ['userid' => $this->students[1]->id]]] as [$where, $params]) {
            $want = log_dataset::standard_reader()->get_events_select_count($where, $params);
            $this->assertGreaterThan(0, $want);
            $this->assertSame($want, $tsdb->get_events_select_count($where, $params), "$backend reader: $where");
        }
    }

    /**
     * The whole table in this process, twice: every row once, every column equal (serialize()d `other` arrives as
     * JSON), the checks pass, the position is the largest id.
     */
    public function test_import_database_exactly_once(): void {
        global $DB;
        $name = $this->target('postgres');
        $n = $DB->count_records('logstore_standard_log');
        $serialized = $DB->count_records_select('logstore_standard_log', $DB->sql_like('other', ':a'), ['a' => 'a:%']);
        $this->assertGreaterThan(10, $serialized, 'the standard store wrote serialize()d other with jsonformat off');
        $this->assertStringContainsString('(COPY)', (new db_source())->name(), 'Moodle on PostgreSQL: read with COPY');
        $out = [];
        $report = $this->importer(['chunk' => 2500, 'out' => function($l) use (&$out) {
            $out[] = $l;
        }])->run();
        $this->assertTrue($report['ok'], json_encode($report['checks']));
        $this->assertSame($n, $report['counts']['imported']);
        $this->assertSame($n, $report['counts']['read']);
        $this->assertSame($serialized, $report['counts']['unserialized'], 'converted by the extension');
        $this->assertSame(0, $report['counts']['converted'], 'none left for PHP');
        $this->assertArrayHasKey('target', $report['checks']);
        $this->assert_target_is_source('postgres', $name, 'first run');

        $report = $this->importer(['chunk' => 2500])->run();
        $this->assertSame(0, $report['counts']['imported']);
        $this->assertSame(0, $report['counts']['read']);
        $this->assert_target_is_source('postgres', $name, 'second run');

        $importer = $this->importer();
        $maxid = (int) $DB->get_field_sql('SELECT MAX(id) FROM {logstore_standard_log}');
        $this->assertSame([$maxid, 0], $importer->get_state()['positions'][$importer->position_key()]);
    }

    /**
     * MySQL and MariaDB sites read through a recordset (one PHP array per row): the same events as with COPY.
     */
    public function test_recordset_path_of_other_databases(): void {
        global $DB;
        $name = $this->target('timescaledb');
        $source = new db_source('logstore_standard_log', false);
        $this->assertStringContainsString('(recordset)', $source->name());
        $r = $this->importer(['chunk' => 3000], $source)->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame($DB->count_records('logstore_standard_log'), $r['counts']['imported']);
        $this->assert_target_is_source('timescaledb', $name, 'read through a recordset');
        // With COPY from the start again (the same rows' identity): nothing twice.
        $importer = $this->importer(['chunk' => 3000]);
        $importer->forget_state();
        $this->assertSame($DB->count_records('logstore_standard_log'), $importer->run()['counts']['imported']);
        $this->assert_target_is_source('timescaledb', $name, 'then with COPY');
    }

    /**
     * `other` that only PHP's unserialize() reads (an object of another class than stdClass, a reference) is handed
     * back by the extension, converted by the importer and imported like the rest.
     */
    public function test_other_only_php_converts(): void {
        global $DB;
        $name = $this->target('postgres');
        $row = log_dataset::generate(2, 1, 5)[0];
        $ids = [];
        foreach (['O:3:"Foo":2:{s:1:"a";i:1;s:1:"b";s:2:"é";}', 'a:2:{i:0;s:1:"x";i:1;R:2;}'] as $other) {
            $record = [];
            foreach (log_dataset::COLUMNS as $c) {
                $record[$c] = $c === 'other' ? $other : $row[$c];
            }
            $ids[] = $DB->insert_record('logstore_standard_log', $record);
        }
        $r = $this->importer(['chunk' => 5000])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame(2, $r['counts']['converted']);
        $this->assert_target_is_source('postgres', $name, 'exotic serialize() text');
        $db = analytics_fixture::pg(analytics_fixture::settings('postgres', $name));
        $got = $db->query_native('SELECT seq, other::text AS other FROM ' . $db->table() . ' WHERE seq >= ' . (int) $ids[0]
            . ' ORDER BY seq');
        $db->close();
        $this->assertSame(['{"a": 1, "b": "é", "__PHP_Incomplete_Class_Name": "Foo"}', '["x", "x"]'],
            array_column($got, 'other'), 'as PHP decodes them');
        $this->assertSame('"a:1:{i:0;i:1;"', importer::other_json('a:1:{i:0;i:1;'), 'broken serialize() text is kept');
    }

    /**
     * Windows: --from/--to select rows; a later, wider window imports the rest and nothing twice, also when the ids
     * of the two windows interleave (a run of ids is never settled past a row left outside the window); --to defaults
     * to livesince; dry runs count and write nothing.
     */
    public function test_windows_and_dry_run(): void {
        global $DB;
        $name = $this->target('postgres');
        $day = 86400;
        $s = log_dataset::START;
        // Rows whose ids alternate between two days far apart: a window of one day holds every other id.
        $a = log_dataset::generate(600, 1, 31, $s + 10 * $day);
        $b = log_dataset::generate(600, 1, 32, $s + 12 * $day);
        $mixed = [];
        foreach ($a as $i => $e) {
            $mixed[] = $e;
            $mixed[] = $b[$i];
        }
        log_dataset::insert_standard($mixed);

        $want = count(analytics_fixture::standard_rows(...self::window($s + $day, $s + 3 * $day)));
        $this->assertGreaterThan(1000, $want);
        $dry = $this->importer(['from' => $s + $day, 'to' => $s + 3 * $day, 'dryrun' => true])->run();
        $this->assertSame($want, $dry['counts']['imported'], 'dry run counts what it would import');
        $this->assertSame(0, self::count_of('postgres', $name), 'dry run writes nothing');

        $r = $this->importer(['from' => $s + $day, 'to' => $s + 3 * $day, 'chunk' => 1000])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame($want, $r['counts']['imported']);
        $this->assert_target_is_source('postgres', $name, 'window', $s + $day, $s + 3 * $day);

        // One day of the interleaved rows, then the other.
        $r = $this->importer(['from' => $s + 10 * $day, 'to' => $s + 11 * $day, 'chunk' => 250])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame(600, $r['counts']['imported']);
        $r = $this->importer(['from' => $s + 12 * $day, 'to' => $s + 13 * $day, 'chunk' => 250])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame(600, $r['counts']['imported'], 'the rows between the first window\'s rows were not settled');

        // A wider window: the rows of the earlier windows are sent again and stored once.
        $r = $this->importer(['from' => $s, 'to' => $s + 4 * $day, 'chunk' => 1000])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $wider = count(analytics_fixture::standard_rows(...self::window($s, $s + 4 * $day)));
        $this->assertSame($wider, $r['counts']['imported']);
        analytics_fixture::assert_same_rows(array_merge(
            analytics_fixture::standard_rows(...self::window($s, $s + 4 * $day)),
            analytics_fixture::standard_rows(...self::window($s + 10 * $day, $s + 13 * $day))),
            self::rows_of('postgres', $name), 'wider window');

        // Default --to: the first live event of the store (livesince); the real events of today are after it.
        set_config('livesince', $s + 5 * $day, 'logstore_tsdb');
        $importer = new importer(\logstore_tsdb\log\store::read_plugin_config(), new db_source(), ['chunk' => 4000]);
        $this->assertStringContainsString('2025-03-08 00:00:00 UTC)', $importer->window_text());
        $r = $importer->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        analytics_fixture::assert_same_rows(array_merge(
            analytics_fixture::standard_rows(...self::window(null, $s + 5 * $day)),
            analytics_fixture::standard_rows(...self::window($s + 10 * $day, $s + 13 * $day))),
            self::rows_of('postgres', $name), 'default window');
    }

    /**
     * The store's filters apply (patterns, minimum edulevel, anonymous, IP), or not with --no-filters.
     */
    public function test_filters(): void {
        $settings = ['excludeevents' => "\\core\\event\\user_login*\nmod_page", 'minedulevel' => 1, 'skipanonymous' => 1,
            'logip' => 0];
        $first = $this->target('postgres', $settings);
        $source = analytics_fixture::standard_rows();
        $kept = array_values(array_filter($source, function($e) {
            return $e['edulevel'] >= 1 && !$e['anonymous'] && $e['component'] !== 'mod_page'
                && strpos($e['eventname'], '\\core\\event\\user_login') !== 0;
        }));
        $this->assertGreaterThan(1000, count($kept));
        $r = $this->importer(['chunk' => 5000])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame(count($kept), $r['counts']['imported']);
        $this->assertSame(count($source) - count($kept), $r['counts']['filtered']);
        analytics_fixture::assert_same_rows(self::without_ip($kept), self::rows_of('postgres', $first),
            'filtered, logip off: no addresses');

        // --no-filters: every row, but the privacy settings still apply.
        $name = $this->target('postgres', $settings);
        $r = $this->importer(['chunk' => 5000, 'filters' => false])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame(count($source), $r['counts']['imported']);
        analytics_fixture::assert_same_rows(self::without_ip($source), self::rows_of('postgres', $name),
            '--no-filters');
    }

    /**
     * Rows as the store writes them with *Record IP addresses* off.
     *
     * @param array[] $rows
     * @return array[]
     */
    protected static function without_ip(array $rows): array {
        return array_map(function($e) {
            $e['ip'] = '';
            return $e;
        }, $rows);
    }

    /**
     * A crash at the worst moment, twice: a chunk written (and the next one being written in the background), then an
     * exception before its position is saved; the next run sends those chunks again and stores nothing twice.
     *
     * @dataProvider backends
     * @param string $backend
     */
    public function test_crash_between_write_and_position(string $backend): void {
        global $DB;
        $name = $this->target($backend);
        $n = $DB->count_records('logstore_standard_log');
        $this->run_crashing($this->importer(['chunk' => 1500]), 3);
        $this->assertGreaterThanOrEqual(4500, self::count_of($backend, $name), 'three chunks are in the target');
        $importer = $this->importer(['chunk' => 1500]);
        $ids = $DB->get_fieldset_sql('SELECT id FROM {logstore_standard_log} ORDER BY id');
        $this->assertSame((int) $ids[2999], $importer->get_state()['positions'][$importer->position_key()][0],
            'two chunks recorded');
        $this->run_crashing($this->importer(['chunk' => 1500]), 2);
        $r = $this->importer(['chunk' => 1500])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame($n, self::count_of($backend, $name));
        $this->assert_target_is_source($backend, $name, 'after two crashes');
    }

    /**
     * Runs an importer that crashes at the worst moment: its k-th chunk is written, then an exception comes before
     * its position is saved.
     *
     * @param importer $importer
     * @param int $k
     */
    protected function run_crashing(importer $importer, int $k): void {
        $chunks = 0;
        $importer->afterwrite = function() use (&$chunks, $k) {
            if (++$chunks === $k) {
                throw new RuntimeException("simulated crash after chunk $k");
            }
        };
        try {
            $importer->run();
            $this->fail('no crash');
        } catch (RuntimeException $e) {
            $this->assertSame("simulated crash after chunk $k", $e->getMessage());
        }
    }

    /**
     * Imports from exports of the site's table: CSV (psql style), JSON lines (row_to_json), JSON array; each
     * interrupted once and resumed by its ids. An export of this very table, named as its source (--source=this-site),
     * and the table itself are stored once.
     */
    public function test_import_from_exports(): void {
        global $DB;
        $rows = [];
        $rs = $DB->get_recordset_sql('SELECT * FROM {logstore_standard_log} ORDER BY id');
        foreach ($rs as $r) {
            $rows[] = (array) $r;
        }
        $rs->close();
        $n = count($rows);
        // CSV as psql's \copy ... CSV HEADER writes it: NULL is an empty unquoted field.
        $csv = $this->dir . '/export.csv';
        $fh = fopen($csv, 'w');
        fwrite($fh, implode(',', array_keys($rows[0])) . "\n");
        foreach ($rows as $r) {
            fwrite($fh, implode(',', array_map(function($v) {
                return $v === null ? '' : '"' . str_replace('"', '""', (string) $v) . '"';
            }, $r)) . "\n");
        }
        fclose($fh);
        $lines = [];
        $rs = $DB->get_recordset_sql('SELECT id, row_to_json(l)::text AS j FROM {logstore_standard_log} l ORDER BY id');
        foreach ($rs as $r) {
            $lines[] = $r->j;
        }
        $rs->close();
        $jsonl = $this->dir . '/export.jsonl';
        file_put_contents($jsonl, implode("\n", $lines) . "\n");
        $json = $this->dir . '/export.json';
        file_put_contents($json, '[' . implode(",\n", array_slice($lines, 0, 3000)) . ']');

        foreach ([[$csv, $n], [$jsonl, $n], [$json, 3000]] as [$file, $count]) {
            $name = $this->target('postgres');
            $source = new file_source($file);
            $this->assertTrue($source->has_ids());
            $this->run_crashing($this->importer(['chunk' => 2000], $source), 2);
            $r = $this->importer(['chunk' => 2000], new file_source($file))->run();
            $this->assertTrue($r['ok'], basename($file) . ' ' . json_encode($r['checks']));
            $lastid = (int) $rows[$count - 1]['id'];
            analytics_fixture::assert_same_rows(analytics_fixture::standard_rows('id <= :last', ['last' => $lastid]),
                self::rows_of('postgres', $name), basename($file) . ': every row once, every column');
        }

        // The JSON array (the first 3000 rows) as this site's table, then the table: each row once.
        $name = $this->target('postgres');
        $r = $this->importer(['chunk' => 2000, 'identity' => (new db_source())->identity()], new file_source($json))->run();
        $this->assertSame(3000, $r['counts']['imported']);
        $r = $this->importer(['chunk' => 2000])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assert_target_is_source('postgres', $name, 'an export of this table, then the table');
    }

    /**
     * TimescaleDB: an import into days whose chunks are already compressed (by the compression policy), killed and
     * resumed; the continuous aggregates come up to date by TimescaleDB's own refresh policies (the scheduler runs
     * them; no manual refresh), also for old days imported after the aggregates were materialised.
     */
    public function test_timescaledb_compressed_days_and_aggregates(): void {
        global $DB;
        $name = $this->target('timescaledb');
        $s = log_dataset::START;
        $cli = tsdb_test_site::plugin_cli('import_standard_log.php');
        // The first three days, then every chunk is compressed by the policy.
        [$rc, $out, $err] = tsdb_test_site::run_cli($cli, ['--to=' . ($s + 3 * 86400), '--chunk=2000']);
        $this->assertSame(0, $rc, $out . $err);
        analytics_fixture::run_policies($name, ['policy_compression']);
        $db = analytics_fixture::pg(analytics_fixture::settings('timescaledb', $name));
        $compressed = function() use ($db, $name) {
            return (int) $db->query("SELECT count(*) AS n FROM timescaledb_information.chunks WHERE hypertable_name = ?"
                . ' AND is_compressed', [$name])[0]->n;
        };
        $this->assertGreaterThan(0, $compressed(), 'the imported days are compressed');

        // Everything, killed once while it writes (the first three days are sent again: into compressed chunks).
        $n = $DB->count_records('logstore_standard_log');
        $this->kill_cli_at('timescaledb', $name, ['--all', '--chunk=100'], intdiv($n * 2, 3), 0, $this->dir . '/k.log');
        [$rc, $out, $err] = tsdb_test_site::run_cli($cli, ['--all', '--chunk=500']);
        $this->assertSame(0, $rc, $out . $err);
        $this->assertMatchesRegularExpression('/OK    target: /', $out);
        $this->assert_target_is_source('timescaledb', $name, 'into compressed days, killed and resumed');
        analytics_fixture::run_policies($name, ['policy_compression', 'policy_refresh_continuous_aggregate']);
        $this->assert_daily_aggregate($db, $name, 'after the refresh policies');

        // Older logs found later (new ids, old days): into the compressed chunks; the aggregates lag until the
        // policies run.
        $before = $compressed();
        log_dataset::insert_standard(log_dataset::generate(900, 3, 77, $s));
        [$rc, $out, $err] = tsdb_test_site::run_cli($cli, ['--all']);
        $this->assertSame(0, $rc, $out . $err);
        $this->assertStringContainsString('Imported 900 events', $out);
        $this->assert_target_is_source('timescaledb', $name, 'old days added later');
        $this->assertSame($before, $compressed(), 'written into the compressed chunks (none decompressed)');
        $total = (int) $db->query('SELECT sum(events) AS n FROM public.' . \logstore_tsdb\local\pgdb::quote_identifier(
            \logstore_tsdb\local\summary::derived($name, '_daily')))[0]->n;
        $this->assertSame($DB->count_records('logstore_standard_log') - 900, $total,
            'the aggregate does not have them yet (materialised before they came)');
        $ran = analytics_fixture::run_policies($name, ['policy_refresh_continuous_aggregate']);
        $this->assertNotEmpty($ran);
        $this->assert_daily_aggregate($db, $name, 'old days imported after the aggregates were materialised');
        $db->close();
    }

    /**
     * The `_daily` aggregate (day, course, user => events) equals the same counts from logstore_standard_log.
     *
     * @param \logstore_tsdb\local\pgdb $db
     * @param string $name
     * @param string $msg
     */
    protected function assert_daily_aggregate(\logstore_tsdb\local\pgdb $db, string $name, string $msg): void {
        global $DB;
        $want = [];
        foreach ($DB->get_recordset_sql('SELECT timecreated - timecreated % 86400 AS day, courseid, userid, COUNT(1) AS n
                FROM {logstore_standard_log} GROUP BY timecreated - timecreated % 86400, courseid, userid') as $r) {
            $want["{$r->day}/{$r->courseid}/{$r->userid}"] = (int) $r->n;
        }
        $got = [];
        foreach ($db->query_native('SELECT extract(epoch FROM day)::bigint AS day, courseid, userid, events FROM public.'
                . \logstore_tsdb\local\pgdb::quote_identifier(\logstore_tsdb\local\summary::derived($name, '_daily'))) as $r) {
            $got["{$r->day}/{$r->courseid}/{$r->userid}"] = (int) $r->events;
        }
        ksort($want);
        ksort($got);
        $this->assertSame($want, $got, $msg);
    }

    /**
     * The state of the plugin's previous importer (done id ranges × windows, a chunk in flight): its done rows are
     * left out (they carry another identity), the rest is imported once.
     */
    public function test_previous_importers_state(): void {
        global $DB;
        $name = $this->target('postgres');
        $ids = $DB->get_fieldset_sql('SELECT id FROM {logstore_standard_log} ORDER BY id');
        $cut = (int) $ids[5000];
        $key = importer::state_key((new db_source())->descriptor(), \logstore_tsdb\log\store::read_plugin_config());
        set_config($key, json_encode(['done' => [[(int) $ids[0], $cut, null, null, 0]], 'runs' => 2,
            'totals' => ['imported' => 5001], 'inflight' => ['first' => $cut + 1, 'last' => $cut + 10]]), 'logstore_tsdb');
        $out = [];
        $r = $this->importer(['out' => function($l) use (&$out) {
            $out[] = $l;
        }])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame(count($ids) - 5001, $r['counts']['imported']);
        $this->assertStringContainsString("previous version was stopped while it wrote the rows with keys "
            . ($cut + 1) . '-' . ($cut + 10), implode("\n", $out));
        analytics_fixture::assert_same_rows(analytics_fixture::standard_rows('id > :cut', ['cut' => $cut]),
            self::rows_of('postgres', $name), 'only the rows the previous importer had not done');
    }

    /**
     * Bad input is named, never a crash: unknown or malformed options, a missing file, no extension, rows that are not
     * events (counted and named by id, the rest imported once), rows the extension cannot take as a chunk (a value of
     * the wrong type) and ids out of order (the import stops, says why and where it resumes; exit code 1, no PHP
     * notice).
     */
    public function test_bad_input_is_named(): void {
        global $DB;
        $cli = tsdb_test_site::plugin_cli('import_standard_log.php');
        $name = $this->target('postgres');
        file_put_contents($this->dir . '/x.xml', '<log/>');
        foreach ([[['--from=yesterday'], '--from: expected YYYY-MM-DD'], [['--chunk=0'], '--chunk: between 1 and 200000'],
                [['--file=' . $this->dir . '/missing.jsonl'], 'missing.jsonl does not exist or cannot be read'],
                [['--file=' . $this->dir . '/x.xml', '--format=xml'], 'The import file cannot be read']] as [$args, $want]) {
            [$rc, $out, $err] = tsdb_test_site::run_cli($cli, $args);
            $this->assertSame(1, $rc, implode(' ', $args) . ": $out$err");
            $this->assertStringContainsString($want, $out . $err);
            $this->assert_no_php_notice($out . $err, implode(' ', $args));
        }
        // A PHP without the extension (an extension too old to have tsdb_import() is named as such, with its version).
        [$rc, $out, $err] = tsdb_test_site::run_cli($cli, ['--all'], [], false);
        $this->assertSame(1, $rc, $out . $err);
        $this->assertStringContainsString('Import failed: The tsdb PHP extension is not loaded in this PHP (CLI)', $out . $err);

        // 60 rows of the site as JSON lines; two are not events (a context id that is not a number, no event name).
        $rows = [];
        foreach ($DB->get_records_sql('SELECT * FROM {logstore_standard_log} ORDER BY id', [], 0, 60) as $r) {
            $rows[] = (array) $r;
        }
        $fixed = $rows;
        $rows[10]['contextid'] = 'abc';
        $rows[20]['eventname'] = '';
        $write = function(string $file, array $rows) {
            file_put_contents($file, implode("\n", array_map('json_encode', $rows)) . "\n");
        };
        $file = $this->dir . '/bad-rows.jsonl';
        $write($file, $rows);
        [$rc, $out, $err] = tsdb_test_site::run_cli($cli, ['--file=' . $file, '--all']);
        $this->assertSame(0, $rc, $out . $err);
        $this->assertStringContainsString("row {$rows[10]['id']}: not an event: contextid is not an integer", $out);
        $this->assertStringContainsString("row {$rows[20]['id']}: not an event: no eventname", $out);
        $this->assertStringContainsString('Imported 58 events', $out);
        $this->assertStringContainsString('not events: 2;', $out);
        $this->assert_no_php_notice($out . $err, 'rows that are not events');
        analytics_fixture::assert_same_rows(analytics_fixture::standard_rows('id <= :last AND id <> :a AND id <> :b',
            ['last' => $rows[59]['id'], 'a' => $rows[10]['id'], 'b' => $rows[20]['id']]),
            self::rows_of('postgres', $name), 'the events of the file once, the two bad rows not');

        // A value the extension cannot take (an array as courseid) in the second chunk: the first is imported, the
        // run stops naming the column, and resumes there once the file is fixed.
        $name = $this->target('postgres');
        $bad = $fixed;
        $bad[45]['courseid'] = [1];
        $file = $this->dir . '/bad-type.jsonl';
        $write($file, $bad);
        [$rc, $out, $err] = tsdb_test_site::run_cli($cli, ['--file=' . $file, '--all', '--chunk=30']);
        $this->assertSame(1, $rc, $out . $err);
        $this->assertStringContainsString('Import failed: The import stopped: ', $out . $err);
        $this->assertStringContainsString('courseid: must be a string, an integer or null, array given', $out . $err);
        $this->assertStringContainsString("The rows up to id {$rows[29]['id']} are imported", $out . $err);
        $this->assert_no_php_notice($out . $err, 'a value of the wrong type');
        $this->assertSame(30, self::count_of('postgres', $name), 'the first chunk');
        $write($file, $fixed);
        [$rc, $out, $err] = tsdb_test_site::run_cli($cli, ['--file=' . $file, '--all', '--chunk=30']);
        $this->assertSame(0, $rc, $out . $err);
        $this->assertStringContainsString('Imported 30 events', $out);
        analytics_fixture::assert_same_rows(analytics_fixture::standard_rows('id <= :last', ['last' => $rows[59]['id']]),
            self::rows_of('postgres', $name), 'resumed after the fix: every row once');

        // Ids out of order: refused with the ids, nothing written.
        $name = $this->target('postgres');
        $swapped = $fixed;
        [$swapped[4], $swapped[5]] = [$swapped[5], $swapped[4]];
        $file = $this->dir . '/swapped.jsonl';
        $write($file, $swapped);
        [$rc, $out, $err] = tsdb_test_site::run_cli($cli, ['--file=' . $file, '--all']);
        $this->assertSame(1, $rc, $out . $err);
        $this->assertStringContainsString("ids must increase along the file (id {$rows[4]['id']} after {$rows[5]['id']})",
            $out . $err);
        $this->assert_no_php_notice($out . $err, 'ids out of order');
        $this->assertSame(0, self::count_of('postgres', $name));
    }

    /**
     * Progress: the line, and an ETA from the rows still to read over the rate of the last minute (a slow start does
     * not skew it); the real import prints 100 %; the measured speed is printed, not asserted.
     */
    public function test_progress_and_eta(): void {
        global $DB;
        $this->assertSame('[###############...............]  50.0%  500 / 1,000 rows  100 rows/s  ETA 0:00:05',
            progress::line(500, 1000, 100.0, 5.0, 5.0));
        $this->assertSame('1,234 bytes  617 rows/s  0:00:02', progress::line(1234, null, 617.0, null, 2.0, 'bytes'));
        // 10 s at 100 rows/s (the start), then 1000 rows/s: after 70 s the ETA is the rows left at 1000 rows/s.
        $stream = fopen('php://memory', 'w+');
        $p = new progress($stream, false, 0, 1000.0);
        $total = 300000;
        $done = 0;
        for ($t = 1; $t <= 70; $t++) {
            $done += $t <= 10 ? 100 : 1000;
            $p->update($done, $total, $done, 'rows', false, 1000.0 + $t);
        }
        $this->assertSame($done, 61000);
        $this->assertStringEndsWith('1,000 rows/s  ETA 0:03:59', $p->lastline, 'ETA = 239,000 rows / 1,000 rows/s');

        $this->target('postgres');
        $n = $DB->count_records('logstore_standard_log');
        $stream = fopen('php://memory', 'w+');
        $r = $this->importer(['chunk' => 5000, 'progress' => new progress($stream, false, 0)])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        rewind($stream);
        $this->assertStringContainsString('100.0%  ' . number_format($n) . ' / ' . number_format($n) . ' rows',
            stream_get_contents($stream));
        fwrite(STDERR, sprintf("\n[import_test] %d rows of logstore_standard_log into PostgreSQL in %.2f s: %d rows/s; "
            . "seconds by phase: %s\n", $n, $r['seconds'], $n / $r['seconds'], json_encode($r['timings'])));
    }
}

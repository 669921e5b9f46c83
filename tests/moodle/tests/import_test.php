<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * cli/import_standard_log.php and its importer in a real site: the site's own logstore_standard_log — written by the
 * real logstore_standard from real events (some with its jsonformat setting off, so `other` is serialize()d), plus
 * rows inserted with $DB for volume — imported into plain PostgreSQL, TimescaleDB and InfluxDB 1.6.7. Every row
 * arrives once with every column, through interruptions (the CLI killed with SIGKILL, an exception between the write
 * and the bookkeeping, rows lost in flight), reruns, windows, filters, exports (CSV, JSON lines, JSON array) and dry
 * runs.
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
            analytics_fixture::target_rows($backend, $name), $msg);
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
     * The PostgreSQL backends.
     *
     * @return array[]
     */
    public static function pg_backends(): array {
        return ['postgres' => ['postgres'], 'timescaledb' => ['timescaledb']];
    }

    /**
     * The CLI of the site, killed with SIGKILL while it writes, then run again to the end: every row once, with
     * every column; a third run imports nothing.
     *
     * @dataProvider backends
     * @param string $backend
     */
    public function test_cli_killed_and_resumed(string $backend): void {
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
        $this->assertSame(0, analytics_fixture::count($backend, $name), 'a dry run writes nothing');

        // Killed while it writes: once a few chunks are in the target.
        $log = $this->dir . '/killed.log';
        $proc = proc_open(array_merge([PHP_BINARY], tsdb_test_site::php_args(), [$cli, '--all', '--chunk=300']),
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', $log, 'w'], 2 => ['file', $log, 'a']], $pipes,
            tsdb_test_site::$info->coderoot);
        $partial = 0;
        $deadline = microtime(true) + 120;
        while ($partial < 900 && proc_get_status($proc)['running'] && microtime(true) < $deadline) {
            usleep(5000);
            $partial = analytics_fixture::count($backend, $name);
        }
        $this->assertTrue(proc_get_status($proc)['running'], 'the import was still running: ' . file_get_contents($log));
        proc_terminate($proc, 9);
        proc_close($proc);
        $partial = analytics_fixture::count($backend, $name);
        $this->assertGreaterThan(0, $partial, 'some rows were written before the kill');
        $this->assertLessThan($n, $partial, 'killed before the end');

        [$rc, $out] = tsdb_test_site::run_cli($cli, ['--status']);
        $this->assertSame(0, $rc, $out);
        $this->assertStringContainsString('Runs: 1', $out);

        [$rc, $out, $err] = tsdb_test_site::run_cli($cli, ['--all', '--chunk=300']);
        $this->assertSame(0, $rc, $out . $err);
        $this->assert_no_php_notice($out . $err, 'the resumed import');
        $this->assertMatchesRegularExpression('/OK    source: /', $out);
        if ($backend !== 'influxdb1') {
            $this->assertMatchesRegularExpression('/OK    target: /', $out);
        }
        $this->assertSame($n, analytics_fixture::count($backend, $name), "N in, N out ($partial before the kill)");
        $this->assert_target_is_source($backend, $name, 'killed, then resumed');

        [$rc, $out] = tsdb_test_site::run_cli($cli, ['--all']);
        $this->assertSame(0, $rc, $out);
        $this->assertStringContainsString('Imported 0 events', $out);
        $this->assertSame($n, analytics_fixture::count($backend, $name), 'a third run adds nothing');

        if ($backend === 'influxdb1') {
            $max = analytics_fixture::influx(analytics_fixture::settings($backend, $name))
                ->query('SELECT max("userid") FROM "moodle_events"');
            $this->assertGreaterThanOrEqual(\logstore_tsdb\local\pseudonym::MIN, (int) $max[0]['max'],
                'user ids pseudonymised as the live store does');
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
     * JSON), the checks pass, the state records one done range.
     */
    public function test_import_database_exactly_once(): void {
        global $DB;
        $name = $this->target('postgres');
        $n = $DB->count_records('logstore_standard_log');
        $out = [];
        $report = $this->importer(['chunk' => 2500, 'out' => function($l) use (&$out) {
            $out[] = $l;
        }])->run();
        $this->assertTrue($report['ok'], json_encode($report['checks']));
        $this->assertSame($n, $report['counts']['imported']);
        $this->assertSame($n, $report['counts']['read']);
        $this->assertArrayHasKey('target', $report['checks']);
        $this->assert_target_is_source('postgres', $name, 'first run');
        $serialized = $DB->count_records_select('logstore_standard_log', $DB->sql_like('other', ':a'), ['a' => 'a:%']);
        $this->assertGreaterThan(10, $serialized, 'the standard store wrote serialize()d other with jsonformat off');

        $report = $this->importer(['chunk' => 2500])->run();
        $this->assertSame(0, $report['counts']['imported']);
        $this->assertSame(0, $report['counts']['read']);
        $this->assert_target_is_source('postgres', $name, 'second run');

        $state = importer::load_state(importer::state_key((new db_source())->descriptor(),
            \logstore_tsdb\log\store::read_plugin_config()));
        $maxid = (int) $DB->get_field_sql('SELECT MAX(id) FROM {logstore_standard_log}');
        $this->assertSame([[1, $maxid, null, null]], array_map(function($r) {
            return array_slice($r, 0, 4);
        }, $state['done']));
        $this->assertSame($n, $state['totals']['imported']);
        $this->assertNull($state['inflight']);
    }

    /**
     * Windows: --from/--to select rows; overlapping windows later never duplicate; --to defaults to livesince.
     */
    public function test_windows_and_dry_run(): void {
        $name = $this->target('postgres');
        $day = 86400;
        $s = log_dataset::START;
        $want = count(analytics_fixture::standard_rows(...self::window($s + $day, $s + 3 * $day)));
        $this->assertGreaterThan(1000, $want);
        $dry = $this->importer(['from' => $s + $day, 'to' => $s + 3 * $day, 'dryrun' => true])->run();
        $this->assertSame($want, $dry['counts']['imported'], 'dry run counts what it would import');
        $this->assertSame(0, analytics_fixture::count('postgres', $name), 'dry run writes nothing');

        $r = $this->importer(['from' => $s + $day, 'to' => $s + 3 * $day, 'chunk' => 1000])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame($want, $r['counts']['imported']);
        $this->assert_target_is_source('postgres', $name, 'window', $s + $day, $s + 3 * $day);

        // A wider window: only the rows outside the first one are written.
        $r = $this->importer(['from' => $s, 'to' => $s + 4 * $day, 'chunk' => 1000])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $wider = count(analytics_fixture::standard_rows(...self::window($s, $s + 4 * $day)));
        $this->assertSame($wider - $want, $r['counts']['imported']);
        $this->assertSame($want, $r['counts']['skipped']);
        $this->assert_target_is_source('postgres', $name, 'wider window', $s, $s + 4 * $day);

        // Default --to: the first live event of the store (livesince); the real events of today are after it.
        set_config('livesince', $s + 5 * $day, 'logstore_tsdb');
        $importer = new importer(\logstore_tsdb\log\store::read_plugin_config(), new db_source(), ['chunk' => 4000]);
        $this->assertStringContainsString('2025-03-08 00:00:00 UTC)', $importer->window_text());
        $r = $importer->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assert_target_is_source('postgres', $name, 'default window', null, $s + 5 * $day);
    }

    /**
     * The store's filters apply (patterns, minimum edulevel, anonymous, IP), or not with --no-filters.
     */
    public function test_filters(): void {
        $first = $this->target('postgres', ['excludeevents' => "\\core\\event\\user_login*\nmod_page", 'minedulevel' => 1,
            'skipanonymous' => 1, 'logip' => 0]);
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
        analytics_fixture::assert_same_rows(self::without_ip($kept), analytics_fixture::target_rows('postgres', $first),
            'filtered, logip off: no addresses');

        // --no-filters: every row, but the privacy settings still apply.
        $name = $this->target('postgres', ['excludeevents' => "\\core\\event\\user_login*\nmod_page", 'minedulevel' => 1,
            'skipanonymous' => 1, 'logip' => 0]);
        $r = $this->importer(['chunk' => 5000, 'filters' => false])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame(count($source), $r['counts']['imported']);
        analytics_fixture::assert_same_rows(self::without_ip($source), analytics_fixture::target_rows('postgres', $name),
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
     * An exception after a chunk was written and before the state says so (a crash at the worst moment), then rows of a
     * chunk that never reached the table (a crash in the middle of a flush): the next run imports exactly what is
     * missing.
     *
     * @dataProvider pg_backends
     * @param string $backend
     */
    public function test_interrupted_chunks_are_finished_exactly_once(string $backend): void {
        global $DB;
        $name = $this->target($backend);
        $n = $DB->count_records('logstore_standard_log');
        $importer = $this->importer(['chunk' => 1500]);
        $this->run_crashing($importer, 3);
        $this->assertSame(4500, analytics_fixture::count($backend, $name), 'three chunks are in the table');
        $this->assertNotNull($importer->get_state()['inflight'], 'the third chunk is still in flight');

        // Second crash: chunk 5 written, then 400 of its rows "lost" (deleted as if their batch never committed).
        $settings = analytics_fixture::settings($backend, $name);
        $this->run_crashing($this->importer(['chunk' => 1500]), 2, function() use ($settings) {
            $db = analytics_fixture::pg($settings);
            $db->execute('DELETE FROM ' . $db->table() . ' WHERE id IN (SELECT id FROM ' . $db->table()
                . ' ORDER BY id DESC LIMIT 400)');
            $db->close();
        });
        $r = $this->importer(['chunk' => 1500])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame(400, $r['recovered']['imported'], 'the lost rows of the interrupted chunk are imported');
        $this->assertSame(1100, $r['recovered']['present'], 'the others are not imported again');
        $this->assertSame($n, analytics_fixture::count($backend, $name));
        $this->assert_target_is_source($backend, $name, 'after two crashes');
        $state = importer::load_state(importer::state_key((new db_source())->descriptor(),
            \logstore_tsdb\log\store::read_plugin_config()));
        $this->assertSame($n, $state['totals']['imported']);
    }

    /**
     * InfluxDB (points carry no event id): a chunk written, then a crash before the state says so; the next run finds
     * every event of that chunk among the points by content and imports none of them again.
     */
    public function test_interrupted_chunk_found_by_content_in_influxdb(): void {
        global $DB;
        $name = $this->target('influxdb1');
        $n = $DB->count_records('logstore_standard_log');
        $this->run_crashing($this->importer(['chunk' => 2000]), 2);
        $this->assertSame(4000, analytics_fixture::count('influxdb1', $name), 'two chunks are in InfluxDB');
        $r = $this->importer(['chunk' => 2000])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame(2000, $r['recovered']['present'], 'the interrupted chunk was found by content');
        $this->assertSame(0, $r['recovered']['imported']);
        $this->assertSame($n - 4000, $r['counts']['imported']);
        $this->assert_target_is_source('influxdb1', $name, 'after the crash');
    }

    /**
     * Runs an importer that crashes at the worst moment: its k-th chunk is written, then an exception comes before the
     * state records it (after $lose, which can make rows of that chunk disappear as if their batch never committed).
     *
     * @param importer $importer
     * @param int $k
     * @param callable|null $lose
     */
    protected function run_crashing(importer $importer, int $k, ?callable $lose = null): void {
        $chunks = 0;
        $importer->afterwrite = function() use (&$chunks, $k, $lose) {
            if (++$chunks === $k) {
                if ($lose) {
                    $lose();
                }
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
     * interrupted once and resumed by its ids.
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
                analytics_fixture::target_rows('postgres', $name), basename($file) . ': every row once, every column');
        }
    }

    /**
     * Progress line, rate and ETA; the measured speed of the import (printed, not asserted: no timing thresholds).
     */
    public function test_progress_and_speed(): void {
        global $DB;
        $this->target('postgres');
        $n = $DB->count_records('logstore_standard_log');
        $this->assertSame('[###############...............]  50.0%  500 / 1,000 rows  100 rows/s  ETA 0:00:05',
            progress::line(500, 1000, 500, 5.0));
        $this->assertSame('1,234 bytes  617 rows/s  0:00:02', progress::line(1234, null, 1234, 2.0, 'bytes'));
        $stream = fopen('php://memory', 'w+');
        $progress = new progress($stream, false, 0);
        $r = $this->importer(['chunk' => 5000, 'progress' => $progress])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        rewind($stream);
        $this->assertStringContainsString('100.0%  ' . number_format($n) . ' / ' . number_format($n) . ' rows',
            stream_get_contents($stream));
        fwrite(STDERR, sprintf("\n[import_test] %d rows of logstore_standard_log into PostgreSQL in %.2f s: %d rows/s; "
            . "seconds by phase: %s\n", $n, $r['seconds'], $n / $r['seconds'], json_encode($r['timings'])));
    }
}

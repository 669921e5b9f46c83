<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * cli/import_standard_log.php and its importer against real PostgreSQL (logstore_standard_log and the extension's table
 * in the same database) and InfluxDB 1.x: every row arrives once, with every column, through interruptions (an
 * exception between the write and the bookkeeping, rows lost in flight, a SIGKILL of the CLI), reruns, windows,
 * filters, exports (CSV, JSON lines, JSON array) and dry runs.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/base_testcase.php');
require_once(__DIR__ . '/log_dataset.php');
require_once(__DIR__ . '/standard_reader.php');

use logstore_tsdb\local\import\db_source;
use logstore_tsdb\local\import\file_source;
use logstore_tsdb\local\import\importer;
use logstore_tsdb\local\import\progress;
use logstore_tsdb\local\influx_client;
use logstore_tsdb\local\pgdb;

/**
 * Import tests.
 */
class import_test extends base_testcase {

    /** @var int Rows in logstore_standard_log. */
    const N = 12000;

    /** @var array[] */
    protected static $entries = [];

    /** @var string The extension's table of the current test. */
    protected $table;

    /** @var string[] Files to delete. */
    protected $files = [];

    /**
     * The source table, once.
     */
    public static function setUpBeforeClass(): void {
        global $DB;
        if (!$DB) {
            return;
        }
        self::$entries = log_dataset::generate(self::N, 6, 23);
        // Rows as the standard store wrote them over the years: some with serialize()d `other` (jsonformat off).
        log_dataset::create_standard_table();
        log_dataset::insert_standard(self::$entries);
        $DB->execute("UPDATE {logstore_standard_log} SET other = ? WHERE id % 97 = 0 AND other <> 'null'",
            ['a:2:{s:8:"username";s:5:"bob\'s";s:6:"reason";i:3;}']);
    }

    /**
     * A fresh target table per test; PostgreSQL and the extension are required.
     */
    protected function setUp(): void {
        global $DB;
        parent::setUp();
        if (!$DB || !function_exists('tsdb_log_event')) {
            $this->skip_without_server('SKIPPED: no PostgreSQL (set TSDB_TEST_PG_HOST or let run.sh start one)');
        }
        $this->table = 'import_t' . getmypid() . '_' . mt_rand(1000, 9999);
        $this->configure(log_dataset::pg_settings($this->table));
    }

    /**
     * Drops the test table, deletes files.
     */
    protected function tearDown(): void {
        global $DB;
        if ($DB && $this->table) {
            log_dataset::drop_tsdb_table($this->table);
        }
        foreach ($this->files as $f) {
            @unlink($f);
        }
        pgdb::$forcepdo = false;
        parent::tearDown();
    }

    /**
     * An importer of the database source with the current plugin config.
     *
     * @param array $options
     * @param \logstore_tsdb\local\import\source|null $source
     * @return importer
     */
    protected function importer(array $options = [], $source = null): importer {
        return new importer(\logstore_tsdb\log\store::read_plugin_config(), $source ?? new db_source(), $options + ['to' => null]);
    }

    /**
     * The rows of the target table, as "timecreated => normalised row" (every generated event has its own second).
     *
     * @param string|null $where
     * @return array
     */
    protected function target_rows(?string $where = null): array {
        global $DB;
        if (!$DB->get_field_sql('SELECT to_regclass(?)', ['"' . $this->table . '"'])) {
            return [];
        }
        $rows = $DB->get_records_sql('SELECT timecreated AS k, ' . implode(', ', log_dataset::COLUMNS) . ' FROM "'
            . $this->table . '"' . ($where ? " WHERE $where" : '') . ' ORDER BY timecreated');
        return array_map([$this, 'normalise_row'], $rows);
    }

    /**
     * The source rows as they should arrive.
     *
     * @param int|null $from
     * @param int|null $to
     * @return array
     */
    protected function source_rows(?int $from = null, ?int $to = null): array {
        global $DB;
        $w = [];
        $p = [];
        if ($from !== null) {
            $w[] = 'timecreated >= ?';
            $p[] = $from;
        }
        if ($to !== null) {
            $w[] = 'timecreated < ?';
            $p[] = $to;
        }
        $rows = $DB->get_records_sql('SELECT timecreated AS k, ' . implode(', ', log_dataset::COLUMNS)
            . ' FROM {logstore_standard_log}' . ($w ? ' WHERE ' . implode(' AND ', $w) : '') . ' ORDER BY timecreated', $p);
        return array_map([$this, 'normalise_row'], $rows);
    }

    /**
     * A row with values as strings and `other` decoded (JSON or serialize()) and key-sorted.
     *
     * @param stdClass $r
     * @return array
     */
    public function normalise_row($r): array {
        $out = [];
        foreach (log_dataset::COLUMNS as $c) {
            $v = $r->$c;
            if ($c === 'other') {
                $v = log_dataset::canonical(\logstore_tsdb\log\store::decode_other($v));
            } else if ($v !== null) {
                $v = (string) $v;
            }
            $out[$c] = $v;
        }
        return $out;
    }

    /**
     * Asserts the target holds exactly the source rows of a window, each once.
     *
     * @param int|null $from
     * @param int|null $to
     * @param string $msg
     */
    protected function assert_target_is_source(?int $from, ?int $to, string $msg): void {
        global $DB;
        $dups = $DB->get_field_sql('SELECT count(*) FROM (SELECT timecreated FROM "' . $this->table
            . '" GROUP BY timecreated HAVING count(*) > 1) d');
        $this->assertSame(0, (int) $dups, "$msg: no event twice");
        $want = $this->source_rows($from, $to);
        $got = $this->target_rows();
        $this->assertSame(count($want), count($got), "$msg: number of rows");
        $this->assertSame($want, $got, "$msg: every column of every row");
    }

    /**
     * The whole table, twice: every row once, every column equal (serialized `other` converted to JSON), checks pass.
     */
    public function test_import_database_exactly_once(): void {
        $out = [];
        $report = $this->importer(['chunk' => 2500, 'out' => function($l) use (&$out) {
            $out[] = $l;
        }])->run();
        $this->assertTrue($report['ok'], json_encode($report['checks']));
        $this->assertSame(self::N, $report['counts']['imported']);
        $this->assertSame(self::N, $report['counts']['read']);
        $this->assertArrayHasKey('target', $report['checks']);
        $this->assert_target_is_source(null, null, 'first run');
        $this->assertNotEmpty($this->target_rows("other::text LIKE '%bob''s%'"), 'serialize()d other arrives as JSON');

        // Again: nothing is read twice, nothing written.
        $report = $this->importer(['chunk' => 2500])->run();
        $this->assertSame(0, $report['counts']['imported']);
        $this->assertSame(0, $report['counts']['read']);
        $this->assert_target_is_source(null, null, 'second run');

        // Forgetting the position but not the rectangles is impossible from the CLI; --restart forgets both.
        $state = importer::load_state(importer::state_key((new db_source())->descriptor(),
            \logstore_tsdb\log\store::read_plugin_config()));
        $this->assertSame([[1, self::N, null, null, 0]], array_map(function($r) {
            return array_slice($r, 0, 5);
        }, $state['done']));
        $this->assertSame(self::N, $state['totals']['imported']);
        $this->assertNull($state['inflight']);
    }

    /**
     * Windows: --from/--to select rows; overlapping windows later never duplicate; --to defaults to livesince.
     */
    public function test_windows_and_dry_run(): void {
        $day = 86400;
        $s = log_dataset::START;
        $dry = $this->importer(['from' => $s + $day, 'to' => $s + 3 * $day, 'dryrun' => true])->run();
        $want = count($this->source_rows($s + $day, $s + 3 * $day));
        $this->assertSame($want, $dry['counts']['imported'], 'dry run counts what it would import');
        $this->assertSame([], $this->target_rows(), 'dry run writes nothing');

        $r = $this->importer(['from' => $s + $day, 'to' => $s + 3 * $day, 'chunk' => 1000])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame($want, $r['counts']['imported']);
        $this->assert_target_is_source($s + $day, $s + 3 * $day, 'window');

        // A wider window: only the rows outside the first one are written.
        $r = $this->importer(['from' => $s, 'to' => $s + 4 * $day, 'chunk' => 1000])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame(count($this->source_rows($s, $s + 4 * $day)) - $want, $r['counts']['imported']);
        $this->assertSame($want, $r['counts']['skipped']);
        $this->assert_target_is_source($s, $s + 4 * $day, 'wider window');

        // Default --to: the first live event of the store (livesince).
        set_config('livesince', $s + 5 * $day, 'logstore_tsdb');
        $importer = new importer(\logstore_tsdb\log\store::read_plugin_config(), new db_source(), ['chunk' => 4000]);
        $this->assertStringContainsString('2025-03-08 00:00:00 UTC)', $importer->window_text());
        $r = $importer->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assert_target_is_source(null, $s + 5 * $day, 'default window');
    }

    /**
     * The store's filters apply (patterns, minimum edulevel, anonymous, IP), or not with --no-filters.
     */
    public function test_filters(): void {
        $this->configure(['excludeevents' => "\\core\\event\\user_login*\nmod_page", 'minedulevel' => 1,
            'skipanonymous' => 1, 'logip' => 0]);
        $r = $this->importer(['chunk' => 5000])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $kept = array_filter(self::$entries, function($e) {
            return $e['edulevel'] >= 1 && !$e['anonymous'] && $e['component'] !== 'mod_page'
                && strpos($e['eventname'], '\\core\\event\\user_login') !== 0;
        });
        $this->assertSame(count($kept), $r['counts']['imported']);
        $this->assertSame(self::N - count($kept), $r['counts']['filtered']);
        $rows = $this->target_rows();
        $this->assertCount(count($kept), $rows);
        $this->assertSame([''], array_values(array_unique(array_column($rows, 'ip'))), 'logip off: no addresses');

        // --no-filters: every row, but the privacy settings still apply.
        log_dataset::drop_tsdb_table($this->table);
        $this->table .= '_all';
        $this->configure(['table' => $this->table]);
        $r = $this->importer(['chunk' => 5000, 'filters' => false])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame(self::N, $r['counts']['imported']);
        $this->assertSame([''], array_values(array_unique(array_column($this->target_rows(), 'ip'))));
    }

    /**
     * An exception after a chunk was written and before the state says so (a crash at the worst moment), then rows of a
     * chunk that never reached the table (a crash in the middle of a flush): the next run imports exactly what is
     * missing.
     */
    public function test_interrupted_chunks_are_finished_exactly_once(): void {
        global $DB;
        $importer = $this->importer(['chunk' => 1500]);
        $chunks = 0;
        $importer->afterwrite = function() use (&$chunks) {
            if (++$chunks === 3) {
                throw new RuntimeException('simulated crash after the write');
            }
        };
        try {
            $importer->run();
            $this->fail('no crash');
        } catch (RuntimeException $e) {
            $this->assertSame('simulated crash after the write', $e->getMessage());
        }
        $this->assertSame(4500, count($this->target_rows()), 'three chunks are in the table');
        $state = $importer->get_state();
        $this->assertNotNull($state['inflight'], 'the third chunk is still in flight');

        // Second crash: chunk 5 written, then 400 of its rows "lost" (deleted as if their batch never committed).
        $importer = $this->importer(['chunk' => 1500]);
        $chunks = 0;
        $table = $this->table;
        $importer->afterwrite = function() use (&$chunks, $table, $DB) {
            if (++$chunks === 2) {
                $DB->execute("DELETE FROM \"$table\" WHERE id IN (SELECT id FROM \"$table\" ORDER BY id DESC LIMIT 400)");
                throw new RuntimeException('simulated crash in the middle of a flush');
            }
        };
        try {
            $importer->run();
            $this->fail('no crash');
        } catch (RuntimeException $e) {
            $this->assertSame('simulated crash in the middle of a flush', $e->getMessage());
        }
        $r = $this->importer(['chunk' => 1500])->run();
        $this->assertTrue($r['ok'], json_encode($r['checks']));
        $this->assertSame(400, $r['recovered']['imported'], 'the lost rows of the interrupted chunk are imported');
        $this->assertSame(1100, $r['recovered']['present'], 'the others are not imported again');
        $this->assert_target_is_source(null, null, 'after two crashes');
        $state = importer::load_state(importer::state_key((new db_source())->descriptor(),
            \logstore_tsdb\log\store::read_plugin_config()));
        $this->assertSame(self::N, $state['totals']['imported']);
    }

    /**
     * The CLI in a Moodle tree, killed with SIGKILL while it writes, then run again to the end: every row once.
     */
    public function test_cli_killed_and_resumed(): void {
        $cli = $this->cli_tree();
        $cfgfile = tempnam(sys_get_temp_dir(), 'tsdb-cfg-');
        $this->files[] = $cfgfile;
        harness::$configfile = $cfgfile;
        harness::save_config();
        harness::$configfile = null;
        $env = ['HARNESS_CONFIG_FILE' => $cfgfile, 'HARNESS_NO_INSTALL' => '1'];

        [$rc, $out] = $this->run_cli($cli, ['--help'], $env);
        $this->assertSame(0, $rc);
        $this->assertStringContainsString('--dry-run', $out);
        [$rc, $out, $err] = $this->run_cli($cli, ['--bogus'], $env);
        $this->assertSame(1, $rc);
        $this->assertStringContainsString('Unknown option(s): --bogus', $err);

        [$rc, $out] = $this->run_cli($cli, ['--dry-run', '--all'], $env);
        $this->assertSame(0, $rc, $out);
        $this->assertStringContainsString('Dry run: would import ' . self::N . ' events', $out);

        // Kill it while it writes: once a few chunks are in the table.
        global $DB;
        $proc = $this->start_cli($cli, ['--all', '--chunk=500'], $env, $pipes);
        $deadline = microtime(true) + 60;
        $partial = 0;
        while (microtime(true) < $deadline && $partial < 1700) {
            usleep(2000);
            $partial = (int) $DB->get_field_sql("SELECT count(*) FROM pg_class WHERE relname = ?", [$this->table])
                ? (int) $DB->get_field_sql('SELECT count(*) FROM "' . $this->table . '"') : 0;
        }
        proc_terminate($proc, 9);
        proc_close($proc);
        $partial = count($this->target_rows());
        $this->assertGreaterThan(0, $partial);
        $this->assertLessThan(self::N, $partial, 'killed before the end');

        [$rc, $out] = $this->run_cli($cli, ['--status'], $env);
        $this->assertStringContainsString('Runs: 1', $out);

        [$rc, $out] = $this->run_cli($cli, ['--all', '--chunk=500'], $env);
        $this->assertSame(0, $rc, $out);
        $this->assertMatchesRegularExpression('/OK    source: /', $out);
        $this->assertMatchesRegularExpression('/OK    target: /', $out);
        $this->assert_target_is_source(null, null, 'killed, then resumed');
        [$rc, $out] = $this->run_cli($cli, ['--all'], $env);
        $this->assertStringContainsString('Imported 0 events', $out);
        $this->assert_target_is_source(null, null, 'third run');
    }

    /**
     * Imports from exports: CSV (psql style), JSON lines (row_to_json), JSON array; resumable by id.
     */
    public function test_import_from_exports(): void {
        global $DB;
        $pdo = $DB->pdo();
        $rows = $pdo->query('SELECT * FROM mdl_logstore_standard_log ORDER BY id')->fetchAll(PDO::FETCH_ASSOC);
        // CSV as psql's \copy ... CSV HEADER writes it: NULL is an empty unquoted field.
        $csv = tempnam(sys_get_temp_dir(), 'tsdb-export-') . '.csv';
        $fh = fopen($csv, 'w');
        fwrite($fh, implode(',', array_keys($rows[0])) . "\n");
        foreach ($rows as $r) {
            fwrite($fh, implode(',', array_map(function($v) {
                return $v === null ? '' : '"' . str_replace('"', '""', (string) $v) . '"';
            }, $r)) . "\n");
        }
        fclose($fh);
        $jsonl = tempnam(sys_get_temp_dir(), 'tsdb-export-') . '.jsonl';
        $lines = $pdo->query('SELECT row_to_json(l)::text FROM mdl_logstore_standard_log l ORDER BY id')
            ->fetchAll(PDO::FETCH_COLUMN);
        file_put_contents($jsonl, implode("\n", $lines) . "\n");
        $json = tempnam(sys_get_temp_dir(), 'tsdb-export-') . '.json';
        file_put_contents($json, '[' . implode(",\n", array_slice($lines, 0, 3000)) . ']');
        $this->files = array_merge($this->files, [$csv, $jsonl, $json]);

        foreach ([[$csv, self::N], [$jsonl, self::N], [$json, 3000]] as [$file, $n]) {
            log_dataset::drop_tsdb_table($this->table);
            $this->table = 'import_f' . getmypid() . '_' . mt_rand(1000, 9999);
            $this->configure(['table' => $this->table]);
            $source = new file_source($file);
            $this->assertTrue($source->has_ids());
            $importer = $this->importer(['chunk' => 2000], $source);
            $chunks = 0;
            $importer->afterwrite = function() use (&$chunks) {
                if (++$chunks === 2) {
                    throw new RuntimeException('crash');
                }
            };
            try {
                $importer->run();
            } catch (RuntimeException $e) {
                $this->assertSame('crash', $e->getMessage());
            }
            $r = $this->importer(['chunk' => 2000], new file_source($file))->run();
            $this->assertTrue($r['ok'], basename($file) . ' ' . json_encode($r['checks']));
            $want = array_slice($this->source_rows(), 0, $n);
            if ($n < self::N) {
                $ids = array_column(array_slice($rows, 0, $n), 'timecreated');
                $want = array_values(array_filter($this->source_rows(), function($row) use ($ids) {
                    return in_array((int) $row['timecreated'], array_map('intval', $ids), true);
                }));
            }
            $got = array_values($this->target_rows());
            $this->assertSame(count($want), count($got), basename($file));
            $this->assertSame(array_values($want), $got, basename($file) . ': every column');
        }
    }

    /**
     * Into InfluxDB 1.x: user ids pseudonymised like live events, the reader gives logstore_standard's events back,
     * an interrupted chunk is finished by content, a rerun adds nothing.
     */
    public function test_import_into_influxdb(): void {
        if (!getenv('TSDB_TEST_INFLUX_URL')) {
            $this->skip_without_server('SKIPPED: no InfluxDB (set TSDB_TEST_INFLUX_URL)');
        }
        $database = 'import_t' . getmypid();
        $this->configure(log_dataset::influx_settings($database));
        $client = new influx_client(\logstore_tsdb\log\store::read_plugin_config());
        $client->query('DROP DATABASE ' . influx_client::quote_identifier($database), true);
        $client->query('CREATE DATABASE ' . influx_client::quote_identifier($database), true);
        try {
            $importer = $this->importer(['chunk' => 2000]);
            $chunks = 0;
            $importer->afterwrite = function() use (&$chunks) {
                if (++$chunks === 2) {
                    throw new RuntimeException('crash');
                }
            };
            try {
                $importer->run();
            } catch (RuntimeException $e) {
                $this->assertSame('crash', $e->getMessage());
            }
            $r = $this->importer(['chunk' => 2000])->run();
            $this->assertTrue($r['ok'], json_encode($r['checks']));
            $this->assertSame(2000, $r['recovered']['present'], 'the interrupted chunk was found by content');
            $this->assertSame(0, $r['recovered']['imported']);
            $r = $this->importer(['chunk' => 2000])->run();
            $this->assertSame(0, $r['counts']['imported']);

            $store = new \logstore_tsdb\log\store(get_log_manager());
            $ref = new \logstore_standardref\reader();
            $this->assertSame(self::N, $store->get_events_select_count('', []));
            foreach ([[], ['courseid' => 4], ['userid' => 9]] as $f) {
                $want = harness_report_log::page($ref, $f + ['viewanonymous' => 1], 0, 200);
                $got = harness_report_log::page($store, $f + ['viewanonymous' => 1], 0, 200);
                $this->assertSame($want['total'], $got['total']);
                foreach ($want['events'] as $i => $e) {
                    $this->assertSame(log_dataset::normalise_event($e), log_dataset::normalise_event($got['events'][$i]));
                }
            }
            $max = $client->query('SELECT max("userid") FROM "moodle_events"');
            $this->assertGreaterThanOrEqual(\logstore_tsdb\local\pseudonym::MIN, (int) $max[0]['max'], 'pseudonymised');
        } finally {
            $client->query('DROP DATABASE ' . influx_client::quote_identifier($database), true);
        }
    }

    /**
     * Progress line, rate and ETA; measured speed of the import (printed for docs/install.md).
     */
    public function test_progress_and_speed(): void {
        $this->assertSame('[###############...............]  50.0%  500 / 1,000 rows  100 rows/s  ETA 0:00:05',
            progress::line(500, 1000, 500, 5.0));
        $this->assertSame('1,234 bytes  617 rows/s  0:00:02', progress::line(1234, null, 1234, 2.0, 'bytes'));
        $stream = fopen('php://memory', 'w+');
        $progress = new progress($stream, false, 0);
        $r = $this->importer(['chunk' => 5000, 'progress' => $progress])->run();
        $this->assertTrue($r['ok']);
        rewind($stream);
        $printed = stream_get_contents($stream);
        $this->assertStringContainsString('100.0%  ' . number_format(self::N) . ' / ' . number_format(self::N) . ' rows', $printed);
        $rate = self::N / $r['seconds'];
        fwrite(STDERR, sprintf("\n[import_test] imported %d rows from logstore_standard_log into PostgreSQL in %.2f s: %d rows/s\n",
            self::N, $r['seconds'], $rate));
        // The rate is reported, not asserted: it depends on the machine's load (no timing thresholds).
    }

    /**
     * A copy of the plugin in a Moodle-shaped tree (admin/tool/log/store/tsdb) with a config.php that loads the harness.
     *
     * @return string path of the CLI script
     */
    protected function cli_tree(): string {
        $root = harness::$rundir . '/moodle';
        $dir = "$root/admin/tool/log/store/tsdb";
        if (!is_dir($dir)) {
            mkdir($dir, 0700, true);
            exec('cp -r ' . escapeshellarg(harness::$plugindir) . '/. ' . escapeshellarg($dir));
            file_put_contents("$root/config.php", "<?php\nrequire('" . addslashes(realpath(__DIR__ . '/../bootstrap.php'))
                . "');\n");
        }
        return "$dir/cli/import_standard_log.php";
    }

    /**
     * Starts the CLI.
     *
     * @param string $cli
     * @param array $args
     * @param array $env
     * @param array|null $pipes
     * @return resource
     */
    protected function start_cli(string $cli, array $args, array $env, &$pipes) {
        global $CFG;
        $env += ['HARNESS_DATAROOT' => $CFG->dataroot];
        $cmd = array_merge([PHP_BINARY, '-d', 'display_errors=stderr'], getenv('TSDB_SO') ? ['-d', 'extension=' . getenv('TSDB_SO')]
            : [], [$cli], $args);
        return proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null,
            array_merge(getenv(), $env));
    }

    /**
     * Runs the CLI to the end.
     *
     * @param string $cli
     * @param array $args
     * @param array $env
     * @return array [exit code, stdout, stderr]
     */
    protected function run_cli(string $cli, array $args, array $env): array {
        $proc = $this->start_cli($cli, $args, $env, $pipes);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        fclose($pipes[1]);
        fclose($pipes[2]);
        return [proc_close($proc), $out, $err];
    }
}

<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * Shared set-up: a fresh request, the file sink in JSON format in a private file, and read-back helpers.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

use logstore_tsdb\local\extension;
use PHPUnit\Framework\TestCase;

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

    /**
     * @var string A request of the site (code run after config.php) that reads the events back through Moodle's log
     * report reader: how many are in course 3, and the `i` of user 5's events in order, as JSON.
     */
    const READER_STEP = <<<'PHP'
$store = get_log_manager()->get_readers()['logstore_tsdb'];
$r = ['count' => $store->get_events_select_count('courseid = :c', ['c' => 3])];
$r['user5'] = array_values(array_map(function($e) {
    return $e->other['i'];
}, $store->get_events_select('userid = ?', [5], 'timecreated ASC, id ASC', 0, 0)));
echo json_encode($r);
PHP;

    /** @var string The JSON lines sink of this test. */
    protected $sink;

    /**
     * A new "request" with the file backend writing JSON lines to a private file, in a dataroot of its own.
     *
     * The spool directory defaults to $CFG->dataroot/logstore_tsdb/spool, and a spooled batch does not record which
     * sink it was meant for: whatever configuration has that spool_dir replays it into its own sink. A dataroot per
     * test gives every test its own spool, so a batch an earlier test spooled (an outage it caused, events it left
     * pending when the next test switched the configuration) can never be replayed into this test's sink or table.
     */
    protected function setUp(): void {
        global $DB, $CFG;
        harness::new_dataroot();
        harness::reset();
        context::reset_all();
        extension::reset_for_tests();
        \logstore_tsdb\local\pseudonym::reset_cache();
        \core_privacy\local\request\writer::reset();
        if ($DB) {
            foreach (['context', 'logstore_tsdb_workers', 'logstore_tsdb_metrics', 'logstore_tsdb_pseudonym'] as $t) {
                $DB->execute("DELETE FROM {" . $t . "}");
            }
        }
        $this->sink = $CFG->dataroot . '/sink.jsonl';
        $this->configure(['backend' => 'file', 'format' => 'json', 'path' => $this->sink, 'mode' => 'async',
            'flush_interval_ms' => 50]);
    }

    /**
     * Skips a test whose server is missing, or fails it when the run requires the servers (./build.sh test sets
     * TSDB_TEST_REQUIRE_SERVERS=1 after starting them).
     *
     * @param string $message starts with "SKIPPED: "
     */
    protected function skip_without_server(string $message): void {
        if (getenv('TSDB_TEST_REQUIRE_SERVERS')) {
            $this->fail(str_replace('SKIPPED: ', 'servers required (TSDB_TEST_REQUIRE_SERVERS=1): ', $message));
        }
        $this->markTestSkipped($message);
    }

    /**
     * Removes the test's dataroot (with its sink file); the next test (or class fixture) gets a new one.
     *
     * Events this test left unwritten belong to its configuration (its sink, its spool): they cannot reach the next
     * test, whose spool directory differs. The flush only lets them finish before the files go.
     */
    protected function tearDown(): void {
        global $CFG;
        if (function_exists('tsdb_flush')) {
            tsdb_flush(5000);
        }
        harness::remove_tree($CFG->dataroot);
        harness::new_dataroot();
    }

    /**
     * Sets plugin settings (what the admin saves).
     *
     * @param array $settings
     */
    protected function configure(array $settings): void {
        foreach ($settings as $k => $v) {
            set_config($k, $v, 'logstore_tsdb');
        }
    }

    /**
     * Starts a new request: the log manager and the per-request state are created again.
     */
    protected function new_request(): void {
        get_log_manager()->dispose();
        \tool_log\log\manager::reset_for_tests();
    }

    /**
     * Flushes the extension and returns the rows of the sink file.
     *
     * @return array[]
     */
    protected function read_back(): array {
        $this->assertSame(0, tsdb_flush(10000), 'events still pending after tsdb_flush()');
        clearstatcache();
        if (!is_file($this->sink)) {
            return [];
        }
        $rows = [];
        foreach (file($this->sink, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) as $line) {
            $row = json_decode($line, true);
            $this->assertIsArray($row, "sink line is not JSON: $line");
            $rows[] = $row;
        }
        return $rows;
    }

    /**
     * Asserts that a sink row holds exactly the captured entry (every column, exact types).
     *
     * @param array $expected entry as the standard store builds it, with `other` as an array/null
     * @param array $actual sink row
     * @param string $msg
     */
    protected function assert_row(array $expected, array $actual, string $msg = ''): void {
        $keys = array_keys($actual);
        sort($keys);
        $want = array_merge(self::COLUMNS, ['time_ns', 'event_id']);
        sort($want);
        $this->assertSame($want, $keys, "$msg: the JSON row must have exactly the event keys plus time_ns and event_id");
        foreach (self::COLUMNS as $col) {
            if ($col === 'other') {
                if ($expected['other'] === null) {
                    $this->assertTrue($actual['other'] === null || $actual['other'] === 'null',
                        "$msg: other should be null, got " . var_export($actual['other'], true));
                } else {
                    $this->assertIsString($actual['other'], "$msg: other is stored as JSON text");
                    $this->assertSame($expected['other'], json_decode($actual['other'], true), "$msg: other");
                }
                continue;
            }
            $value = $expected[$col];
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
     * Asserts that rows read from a PostgreSQL log table hold, column for column, the rows the reference store (built
     * like logstore_standard) captured for the same events, in the same order.
     *
     * @param array[] $refrows \logstore_reference\log\store::$rows (other as JSON text)
     * @param \stdClass[] $rows SELECT of self::COLUMNS, time and event_id
     * @param string $msg
     */
    protected function assert_pg_rows_match_reference(array $refrows, array $rows, string $msg): void {
        $this->assertCount(count($refrows), $rows, "$msg: number of rows");
        foreach (array_values($refrows) as $i => $ref) {
            $row = (array) $rows[$i];
            foreach (self::COLUMNS as $col) {
                $got = $row[$col];
                if ($col === 'other') {
                    // jsonb keeps the values and types, not the key order.
                    $want = self::canonical(json_decode($ref['other'], true));
                    $this->assertSame($want, $got === null ? null : self::canonical(json_decode($got, true)),
                        "$msg: row $i other");
                    continue;
                }
                $want = $ref[$col];
                if (in_array($col, self::INTS, true)) {
                    $want = $want === null ? null : (int) $want;
                    $got = $got === null ? null : (int) $got;
                }
                $this->assertSame($want, $got, "$msg: row $i column $col");
            }
            $this->assertNotEmpty($row['event_id'], "$msg: row $i event_id");
            $this->assertNotEmpty($row['time'], "$msg: row $i time");
        }
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
     * Runs a PHP file in a new PHP process with the same tsdb extension as this one (TSDB_SO, set by run.sh).
     *
     * @param string $file
     * @param array $env extra environment
     * @param array $ini php.ini directives of that process (name => value, given with -d as php.ini would set them)
     * @return array [exit code, stdout, stderr]
     */
    protected function run_php_file(string $file, array $env = [], array $ini = []): array {
        global $CFG;
        $env += ['HARNESS_DATAROOT' => $CFG->dataroot];
        $cmd = [PHP_BINARY, '-d', 'display_errors=stderr'];
        if (getenv('TSDB_SO')) {
            $cmd[] = '-d';
            $cmd[] = 'extension=' . getenv('TSDB_SO');
        }
        foreach ($ini as $name => $value) {
            $cmd[] = '-d';
            $cmd[] = $name . '=' . $value;
        }
        $cmd[] = $file;
        $proc = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null, array_merge(getenv(), $env));
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        fclose($pipes[1]);
        fclose($pipes[2]);
        return [proc_close($proc), $out, $err];
    }

    /**
     * Lays out a fake site root: config.php (the harness, then the plugin settings of PAGE_CONFIG, the request
     * parameters of PAGE_GET and the user PAGE_USER) and status.php at the plugin's path.
     *
     * @param bool $public Moodle 5.1 layout (public/admin/...)
     * @param string $setup more PHP code for config.php (without <?php), run after the login
     * @return string the directory of status.php
     */
    protected function site_tree(bool $public, string $setup = ''): string {
        $root = harness::$rundir . '/site' . ($public ? '51' : '44');
        $dir = $root . ($public ? '/public' : '') . '/admin/tool/log/store/tsdb';
        @mkdir($dir, 0777, true);
        copy(harness::$plugindir . '/status.php', "$dir/status.php");
        $bootstrap = addslashes(realpath(__DIR__ . '/../bootstrap.php'));
        $config = "<?php\nrequire('$bootstrap');\n"
            . "foreach (json_decode(getenv('PAGE_CONFIG'), true) as \$k => \$v) { set_config(\$k, \$v, 'logstore_tsdb'); }\n"
            . "\$_GET = json_decode(getenv('PAGE_GET') ?: '[]', true);\nharness::login((int) getenv('PAGE_USER'));\n"
            . $setup;
        file_put_contents("$root/config.php", $config);
        if ($public) {
            // Moodle 5.1's public/config.php: the configuration loader that web scripts under public/ require.
            file_put_contents("$root/public/config.php", "<?php\n\$configfile = __DIR__ . '/../config.php';\n"
                . "if (!file_exists(\$configfile)) {\n    header(\"Location: install.php\");\n    die;\n}\n\n"
                . "require_once(\$configfile);\n");
        }
        return $dir;
    }

    /**
     * Starts fixtures/influx_capture.php (an InfluxDB write endpoint that records every request) on 127.0.0.1.
     *
     * @return array [process, port, capture file]; stop it with stop_influx_capture()
     */
    protected function start_influx_capture(): array {
        $capture = tempnam(sys_get_temp_dir(), 'influx-capture-');
        $port = 30000 + getmypid() % 20000;
        $env = getenv();
        $env['CAPTURE_FILE'] = $capture;
        $proc = proc_open([PHP_BINARY, '-S', "127.0.0.1:$port", __DIR__ . '/../fixtures/influx_capture.php'],
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes, null, $env);
        for ($i = 0; $i < 50 && !@fsockopen('127.0.0.1', $port); $i++) {
            usleep(100000);
        }
        return [$proc, $port, $capture];
    }

    /**
     * The write requests the capture server received: [method, uri, encoding, body (gunzipped)] each.
     *
     * @param string $capture the capture file
     * @return array[]
     */
    protected function captured_writes(string $capture): array {
        $requests = array_map(function($l) {
            return json_decode($l, true);
        }, file($capture, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES));
        return array_values(array_filter($requests, function($r) {
            return strpos($r['uri'], '/write') === 0 || strpos($r['uri'], '/api/v2/write') === 0;
        }));
    }

    /**
     * Stops the capture server and removes its file.
     *
     * @param array $capture start_influx_capture()
     */
    protected function stop_influx_capture(array $capture): void {
        proc_terminate($capture[0]);
        proc_close($capture[0]);
        @unlink($capture[2]);
    }

    /**
     * Writes a PHP script to a temp file and runs it in a new PHP process without the tsdb extension.
     *
     * @param string $code PHP code (without <?php) run after the harness bootstrap
     * @return array [exit code, stdout, stderr]
     */
    protected function run_php_without_extension(string $code): array {
        $script = tempnam(sys_get_temp_dir(), 'tsdb-noext-') . '.php';
        file_put_contents($script, "<?php\nrequire('" . addslashes(realpath(__DIR__ . '/../bootstrap.php')) . "');\n" . $code);
        $env = array_merge(getenv(), ['HARNESS_DATAROOT' => $GLOBALS['CFG']->dataroot]);
        $proc = proc_open([PHP_BINARY, '-d', 'display_errors=stderr', $script], [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null, $env);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        fclose($pipes[1]);
        fclose($pipes[2]);
        $rc = proc_close($proc);
        unlink($script);
        return [$rc, $out, $err];
    }
}

<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * An outage in the default (async) write mode loses nothing: the events go to the spool under dataroot, and once the
 * backend answers again the plugin's replay task delivers them to the real PostgreSQL table, every column intact.
 *
 * The outage is real: the plugin's port is a TCP relay to PostgreSQL (fixtures/tcp_proxy.php) that is not running
 * yet (connection refused), then started; the plugin's configuration never changes.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/base_testcase.php');
require_once(__DIR__ . '/log_dataset.php');
require_once(__DIR__ . '/reference_store.php');

use logstore_tsdb\local\pgdb;
use logstore_tsdb\local\settings_definition;

/**
 * Spool tests.
 */
class spool_test extends base_testcase {

    /** @var int Events logged during the outage. */
    const N = 47;

    /** @var resource|null The relay process. */
    protected $proxy = null;

    /** @var string|null The extension's table of this test. */
    protected $table = null;

    /**
     * Stops the relay, drops the table.
     */
    protected function tearDown(): void {
        $this->stop_proxy();
        parent::tearDown();
        if ($this->table) {
            log_dataset::drop_tsdb_table($this->table);
        }
    }

    /**
     * A TCP port nothing listens on (the kernel's choice, released at once).
     *
     * @return int
     */
    protected static function free_port(): int {
        $s = stream_socket_server('tcp://127.0.0.1:0');
        $name = stream_socket_get_name($s, false);
        fclose($s);
        return (int) substr($name, strrpos($name, ':') + 1);
    }

    /**
     * Starts the relay from 127.0.0.1:$port to the test PostgreSQL: the backend is back.
     *
     * @param int $port
     */
    protected function start_proxy(int $port): void {
        $this->proxy = proc_open([PHP_BINARY, __DIR__ . '/../fixtures/tcp_proxy.php', (string) $port,
            getenv('TSDB_TEST_PG_HOST'), getenv('TSDB_TEST_PG_PORT') ?: '5432'],
            [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes);
        $this->assertSame("ready\n", fgets($pipes[1]), 'the relay listens');
    }

    /**
     * Stops the relay.
     */
    protected function stop_proxy(): void {
        if ($this->proxy) {
            proc_terminate($this->proxy);
            proc_close($this->proxy);
            $this->proxy = null;
        }
    }

    /**
     * Rows of the table, read directly from PostgreSQL (not through the relay), in the order of other.i.
     *
     * @return \stdClass[]
     */
    protected function table_rows(): array {
        global $DB;
        if (!$DB->get_field_sql('SELECT to_regclass(?)', ['"' . $this->table . '"'])) {
            return [];
        }
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        $cfg->port = getenv('TSDB_TEST_PG_PORT') ?: 5432;
        $db = pgdb::from_config($cfg);
        $rows = $db->query('SELECT ' . implode(', ', self::COLUMNS) . ', time, event_id FROM public.'
            . pgdb::quote_identifier($this->table) . " ORDER BY (other->>'i')::int");
        $db->close();
        return $rows;
    }

    /**
     * The replay task's report of its last run.
     *
     * @return array|null the decoded result of tsdb_replay_spool(), null when the task could not replay
     */
    protected function run_replay_task(): ?array {
        harness::$debugging = [];
        (new \logstore_tsdb\task\replay_spool())->execute();
        $log = implode("\n", array_column(harness::$debugging, 0));
        if (!preg_match('/mtrace: logstore_tsdb: spool replay: (\{.*\})/', $log, $m)) {
            $this->assertStringContainsString('mtrace: logstore_tsdb: spool replay skipped: ', $log);
            return null;
        }
        return json_decode($m[1], true);
    }

    /**
     * Async mode (the default), spool_dir left at its default: N events logged while PostgreSQL is unreachable are
     * spooled under dataroot (none failed, none lost); the replay task run during the outage keeps them; once
     * PostgreSQL is back it delivers them, and the table holds exactly the N events the standard store would hold.
     */
    public function test_async_outage_is_spooled_and_replayed(): void {
        global $DB, $CFG, $PAGE;
        if (!$DB) {
            $this->skip_without_server('SKIPPED: no PostgreSQL (set TSDB_TEST_PG_HOST or let run.sh start one)');
        }
        $port = self::free_port();
        $this->table = 'spool_t' . getmypid() . '_' . bin2hex(random_bytes(4));
        // Give up after the first attempt (no retry delays): the spool takes the batch at once.
        $this->configure(array_merge(log_dataset::pg_settings($this->table), ['port' => $port, 'batch_size' => 10,
            'retry_max_elapsed_ms' => 0]));
        set_config('enabled_stores', 'logstore_tsdb,logstore_reference', 'tool_log');
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        $this->assertSame('async', $cfg->mode);
        $spooldir = $CFG->dataroot . '/logstore_tsdb/spool';
        $this->assertSame($spooldir, settings_definition::extension_config($cfg)['spool_dir'], 'the default spool');

        $before = tsdb_stats();
        $PAGE->harnessip = '192.0.2.44';
        for ($i = 0; $i < self::N; $i++) {
            harness::login(5 + $i % 4);
            $courseid = 3 + $i % 2;
            \core\event\course_viewed::create(['context' => context_course::instance($courseid), 'courseid' => $courseid,
                'other' => ['i' => $i, 'text' => "outage ü $i", 'nested' => ['odd' => $i % 2 === 1]]])->trigger();
        }
        $this->assertTrue(get_log_manager()->get_readers()['logstore_tsdb']->is_logging());
        $this->assertCount(self::N, \logstore_reference\log\store::$rows, 'the reference store saw every event');

        // The outage: every event is accounted for as spooled, none failed or pending, and they are on disk.
        $this->assertSame(0, tsdb_flush(30000), 'nothing left pending');
        $stats = tsdb_stats();
        $this->assertSame('async', $stats['mode']);
        $this->assertSame(self::N, $stats['spooled'] - $before['spooled'], 'spooled: ' . $stats['last_error']);
        $this->assertSame(0, $stats['failed'] - $before['failed']);
        $this->assertSame(0, $stats['written'] - $before['written']);
        $this->assertGreaterThan(0, $stats['spool_segments']);
        $info = \logstore_tsdb\local\status::spool_info($cfg);
        $this->assertGreaterThan(0, $info['files'], 'the status page shows the spool');
        $this->assertSame([], $this->table_rows());

        // The replay task during the outage: nothing delivered, nothing lost.
        $during = $this->run_replay_task();
        if ($during !== null) {
            $this->assertSame(0, $during['written']);
            $this->assertStringContainsString('postgres', $during['error'], 'the task reports why it could not replay');
        }
        $this->assertSame($stats['spool_segments'], tsdb_stats()['spool_segments'], 'the segments stay');
        $this->assertSame([], $this->table_rows());

        // The backend is back (same configuration): the task delivers everything, the spool empties.
        $this->start_proxy($port);
        $replayed = 0;
        for ($run = 0; $run < 5 && ($run === 0 || tsdb_stats()['spool_segments'] > 0); $run++) {
            $result = $this->run_replay_task();
            $this->assertNotNull($result, 'the task can replay once PostgreSQL answers');
            $this->assertSame('', $result['error']);
            $replayed += $result['written'];
            // The flush thread may have replayed a segment itself (it claims one at a time, as the task does).
            tsdb_flush(30000);
        }
        $after = tsdb_stats();
        $this->assertSame(0, $after['spool_segments'], 'the spool is empty');
        $this->assertSame(self::N, $replayed + ($after['replayed'] - $before['replayed']),
            'every spooled event delivered once, by the task or the flush thread');
        $this->assertSame(0, $after['failed'] - $before['failed']);

        // N in, N read back, every column as the standard store captures it.
        $this->assert_pg_rows_match_reference(\logstore_reference\log\store::$rows, $this->table_rows(), 'replayed');
    }
}

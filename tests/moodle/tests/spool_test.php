<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * An outage in the default (async) write mode loses nothing: real events of the site go to the spool, and once
 * PostgreSQL answers again the replay task (admin/cli/scheduled_task.php) delivers them to the real table: N in, N
 * read back, every column what logstore_standard stored for the same events.
 *
 * The outage is real: the plugin's port is a TCP relay to PostgreSQL (fixtures/tcp_proxy.php) that is not running yet
 * (connection refused), then started; the plugin's configuration never changes.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/../lib/ops.php');

/**
 * Spool tests.
 */
class spool_test extends base_testcase {
    use tsdb_test_ops;

    /** @var int Events logged during the outage. */
    const N = 47;

    /** @var resource|null The relay process. */
    protected $proxy = null;

    /**
     * Stops the relay, drops the table.
     */
    protected function tearDown(): void {
        $this->stop_proxy();
        parent::tearDown();
        $this->drop_pg_tables();
    }

    /**
     * Starts the relay from 127.0.0.1:$port to the test PostgreSQL: the backend is back.
     *
     * @param int $port
     */
    protected function start_proxy(int $port): void {
        $this->proxy = proc_open([PHP_BINARY, '-n', dirname(__DIR__) . '/fixtures/tcp_proxy.php', (string) $port,
            getenv('TSDB_TEST_PG_HOST'), getenv('TSDB_TEST_PG_PORT')],
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
     * The result the replay task printed.
     *
     * @param string $out run_task()
     * @return array tsdb_replay_spool()'s result
     */
    protected function replay_result(string $out): array {
        $this->assertMatchesRegularExpression('/logstore_tsdb: spool replay: (\{.*\})/', $out);
        preg_match('/logstore_tsdb: spool replay: (\{.*\})/', $out, $m);
        return json_decode($m[1], true);
    }

    /**
     * Async mode (the default): N events logged while PostgreSQL is unreachable are spooled (none failed, none lost);
     * the replay task run during the outage keeps them; once PostgreSQL is back it delivers them (with this process's
     * flush thread, which may take a segment itself), and the table holds exactly the N events logstore_standard
     * holds, column for column.
     */
    public function test_async_outage_is_spooled_and_replayed(): void {
        $course = $this->gen()->create_course();
        $course2 = $this->gen()->create_course();
        $users = [];
        for ($i = 0; $i < 4; $i++) {
            $users[] = $this->gen()->create_user();
        }
        $this->forget_events_so_far();
        $port = tsdb_test_site_pool::free_port();
        $settings = $this->pg_settings('spool');
        $table = $settings['table'];
        $this->configure(array_merge($settings, ['port' => $port, 'batch_size' => 10, 'retry_max_elapsed_ms' => 0]));
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        $this->assertSame('async', $cfg->mode);

        $before = tsdb_stats();
        for ($i = 0; $i < self::N; $i++) {
            $this->set_user($users[$i % 4]);
            $ctx = context_course::instance($i % 2 ? $course2->id : $course->id);
            \core\event\course_viewed::create(['context' => $ctx, 'other' => ['i' => $i, 'text' => "outage ü $i",
                'nested' => ['odd' => $i % 2 === 1]]])->trigger();
        }
        $this->assertTrue(get_log_manager()->get_readers()['logstore_tsdb']->is_logging());
        $standard = $this->standard_rows();
        $this->assertCount(self::N, $standard, 'logstore_standard stored every event');

        // The outage: every event is accounted for as spooled, none failed or pending, and they are on disk.
        $this->assertSame(0, tsdb_flush(30000), 'nothing left pending');
        $stats = tsdb_stats();
        $this->assertSame(self::N, $stats['spooled'] - $before['spooled'], 'spooled: ' . $stats['last_error']);
        $this->assertSame(0, $stats['failed'] - $before['failed']);
        $this->assertSame(0, $stats['written'] - $before['written']);
        $this->assertGreaterThan(0, $stats['spool_segments']);
        $info = \logstore_tsdb\local\status::spool_info($cfg);
        $this->assertGreaterThan(0, $info['files'], 'the status page shows the spool');
        $this->assertSame([], $this->pg_log_rows($table));

        // The replay task during the outage: nothing delivered, nothing lost, the reason given.
        $during = $this->replay_result($this->run_task('replay_spool'));
        $this->assertSame(0, $during['written']);
        $this->assertNotSame('', $during['error'], 'the task reports why it could not replay');
        $this->assertSame($stats['spool_segments'], tsdb_stats()['spool_segments'], 'the segments stay');
        $this->assertSame([], $this->pg_log_rows($table));

        // The backend is back (same configuration): the task delivers everything, the spool empties.
        $this->start_proxy($port);
        $replayed = 0;
        for ($run = 0; $run < 5 && ($run === 0 || tsdb_stats()['spool_segments'] > 0); $run++) {
            $result = $this->replay_result($this->run_task('replay_spool'));
            $this->assertSame('', $result['error']);
            $replayed += $result['written'];
            tsdb_flush(30000);
        }
        $after = tsdb_stats();
        $this->assertSame(0, $after['spool_segments'], 'the spool is empty');
        // The task's own process pushes the configuration, so its flush thread may deliver a segment too, as may this
        // process's: what counts is the table (every event once, below).
        $this->assertLessThanOrEqual(self::N, $replayed + ($after['replayed'] - $before['replayed']));
        $this->assertSame(0, $after['failed'] - $before['failed']);
        // In the order of the events: the task and the flush thread may each have taken a segment.
        $rows = $this->pg_log_rows($table);
        $byi = function(array $a, array $b): int {
            return json_decode($a['other'], true)['i'] <=> json_decode($b['other'], true)['i'];
        };
        usort($rows, $byi);
        usort($standard, $byi);
        $this->assert_pg_rows_match_standard($standard, $rows, 'replayed');
    }
}

<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * Operations inside the real site: the counters every PHP process reports at the end of a request (the status page's
 * site totals and chart), the health check and its notifications through Moodle's messaging, the status check, Test
 * connection, the spool's size on the status page.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/../lib/ops.php');

use logstore_tsdb\local\connection_tester;
use logstore_tsdb\local\health;
use logstore_tsdb\local\metrics;
use logstore_tsdb\local\settings_definition;

/**
 * Operations tests.
 */
class ops_test extends base_testcase {
    use tsdb_test_ops;

    /** @var \stdClass a course */
    protected $course;

    /** @var \stdClass a student */
    protected $student;

    /** @var int the last notification before the test */
    protected $lastnotification;

    /**
     * A course and a student; no reported counters or chart minutes yet; the notifications so far are remembered.
     */
    protected function setUp(): void {
        global $DB;
        parent::setUp();
        $this->course = $this->gen()->create_course();
        $this->student = $this->gen()->create_user();
        $this->forget_events_so_far();
        \cache::make('logstore_tsdb', 'workerreport')->purge();
        $DB->delete_records('logstore_tsdb_workers');
        $DB->delete_records('logstore_tsdb_metrics');
        $this->lastnotification = (int) $DB->get_field_select('notifications', 'MAX(id)', "component = 'logstore_tsdb'");
    }

    /**
     * Forgets the report times this test set (some in the future).
     */
    protected function tearDown(): void {
        parent::tearDown();
        \cache::make('logstore_tsdb', 'workerreport')->purge();
    }

    /**
     * The health notifications sent since the test started, in order.
     *
     * @return \stdClass[]
     */
    protected function notifications(): array {
        global $DB;
        return array_values($DB->get_records_select('notifications', "component = 'logstore_tsdb' AND eventtype = 'healthalert'"
            . ' AND id > ?', [$this->lastnotification], 'id ASC'));
    }

    /**
     * A course view by the student.
     */
    protected function view_course(): void {
        $this->set_user($this->student);
        \core\event\course_viewed::create(['context' => context_course::instance($this->course->id)])->trigger();
    }

    /**
     * At the end of a request the process reports its real tsdb_stats() (logstore_tsdb_workers), at most once a
     * minute; the growth since the last report goes to the minute's row of the chart.
     */
    public function test_dispose_reports_worker_counters(): void {
        global $DB;
        for ($i = 0; $i < 7; $i++) {
            $this->view_course();
        }
        $this->assertSame(0, tsdb_flush(10000));
        $stats = tsdb_stats();
        get_log_manager()->dispose();
        $row = $DB->get_record('logstore_tsdb_workers', ['hostname' => gethostname(), 'pid' => $stats['pid']]);
        $this->assertNotFalse($row, 'the process reported');
        $this->assertSame((int) $stats['written'], (int) $row->written);
        $this->assertSame((int) $stats['accepted'], (int) $row->accepted);
        $this->assertSame('file', $row->backend);
        $this->assertSame(tsdb_version(), $row->extversion);
        $this->assertSame((int) $stats['written'], array_sum(metrics::series(5)['written']), 'first report: all so far');

        // Within the minute: no new report.
        $this->new_request();
        $this->view_course();
        $this->assertSame(0, tsdb_flush(10000));
        $this->new_request();
        $this->assertSame((int) $stats['written'], (int) $DB->get_field('logstore_tsdb_workers', 'written', ['id' => $row->id]));

        // A minute later: the growth is added to that minute.
        $later = time() + 61;
        $this->assertTrue(metrics::report_if_due($later));
        $after = tsdb_stats();
        $this->assertSame((int) $stats['written'] + 1, (int) $after['written']);
        $series = metrics::series(5, $later);
        $this->assertSame(1, end($series['written']));
        $totals = metrics::site_totals(900, $later);
        $this->assertSame(1, $totals['workers']);
        $this->assertSame((int) $after['written'], $totals['written']);
    }

    /**
     * A new process that got the same pid (smaller counters) counts from zero, never negative.
     */
    public function test_restarted_process_counts_from_zero(): void {
        $now = time() - time() % 60 - 120;
        metrics::record('web1', 42, ['accepted' => 100, 'written' => 90, 'failed' => 10], $now);
        metrics::record('web1', 42, ['accepted' => 5, 'written' => 4, 'failed' => 0], $now + 60);
        $series = metrics::series(3, $now + 60);
        $this->assertSame([0, 90, 4], $series['written']);
        $this->assertSame([0, 10, 0], $series['failed']);
    }

    /**
     * Events waiting in memory are counted for running processes that reported in the last two minutes only: a CLI
     * script that reported 610 pending events at its end and exited (its shutdown wrote them) counts for nothing, and
     * neither does an old report; a running process of this machine and a recent report of another web server count.
     */
    public function test_waiting_events_of_running_processes_only(): void {
        $now = time();
        $host = (string) gethostname();
        $ended = 4194304 + 4242; // Above Linux's largest pid: no such process.
        metrics::record($host, $ended, ['accepted' => 700, 'written' => 90, 'pending' => 610, 'queued_bytes' => 133268], $now);
        metrics::record($host, getmypid(), ['accepted' => 10, 'written' => 3, 'pending' => 7, 'queued_bytes' => 700], $now);
        metrics::record('web-elsewhere', 17, ['accepted' => 5, 'written' => 3, 'pending' => 2, 'queued_bytes' => 200], $now);
        metrics::record('web-elsewhere', 18, ['accepted' => 5, 'written' => 0, 'pending' => 5, 'queued_bytes' => 500],
            $now - 3 * metrics::INTERVAL);
        $totals = metrics::site_totals(900, $now);
        $this->assertSame(4, $totals['workers']);
        $this->assertSame(2, $totals['liveworkers']);
        $this->assertSame(9, $totals['pending']);
        $this->assertSame(900, $totals['queuedbytes']);
        $this->assertSame(96, $totals['written'], 'the counters of every report');
    }

    /**
     * Repeated failures notify every administrator once when the threshold is reached (Moodle's messaging: a
     * notification each), System status warns; healthy again, one more notification, then nothing.
     */
    public function test_health_check_notifies_after_repeated_failures(): void {
        $this->configure(['healththreshold' => 3]);
        // This process's counters so far are its baseline: what it reports later is its growth.
        metrics::report_if_due();
        $GLOBALS['DB']->delete_records('logstore_tsdb_metrics');
        $now = time();
        $states = [];
        for ($i = 0; $i < 4; $i++) {
            $t = $now + $i * 300;
            metrics::record('web1', 100 + $i, ['accepted' => 10, 'written' => 0, 'failed' => 10], $t);
            $states[] = health::check($t);
        }
        $this->assertSame(['failing', 'failing', 'notified', 'failing'], $states);
        $sent = $this->notifications();
        $this->assertSame(array_keys(get_admins()), array_map('intval', array_column($sent, 'useridto')),
            'one notification per admin');
        $this->assertSame(get_string('health_subject', 'logstore_tsdb'), $sent[0]->subject);
        $this->assertStringContainsString('20 events failed', $sent[0]->fullmessage, 'two 5-minute periods of 10 failures');
        $this->assertSame(\core\check\result::WARNING, (new \logstore_tsdb\check\extension_check())->get_result()->get_status());

        $this->assertSame('recovered', health::check($now + 3 * 300 + 1200));
        $sent = $this->notifications();
        $this->assertCount(2 * count(get_admins()), $sent);
        $this->assertSame(get_string('health_recovered_subject', 'logstore_tsdb'), end($sent)->subject);
        $this->assertSame('ok', health::check($now + 3 * 300 + 1500));
        $this->assertCount(2 * count(get_admins()), $this->notifications());
        $this->assertSame(\core\check\result::OK, (new \logstore_tsdb\check\extension_check())->get_result()->get_status());
    }

    /**
     * An outage with the spool fails no event, yet the check reports batches waiting in the spool for a whole check
     * period, naming the backend's error; once the replay task delivered them it is healthy again.
     */
    public function test_health_check_reports_a_waiting_spool(): void {
        $missing = $this->dir . '/missing-dir/events.jsonl';
        $this->configure(['path' => $missing, 'retry_max_elapsed_ms' => 0, 'healththreshold' => 1]);
        $before = tsdb_stats();
        $this->view_course();
        $this->assertSame(0, tsdb_flush(10000));
        $stats = tsdb_stats();
        $this->assertSame(1, $stats['spooled'] - $before['spooled'], $stats['last_error']);
        $this->assertSame(0, $stats['failed'] - $before['failed']);
        metrics::report_if_due();
        $GLOBALS['DB']->delete_records('logstore_tsdb_metrics');
        $now = time();
        $this->assertSame('ok', health::check($now), 'just spooled: the flush threads and the task have not tried yet');
        $this->assertSame('notified', health::check($now + health::WINDOW + 60));
        $sent = $this->notifications();
        $this->assertStringContainsString('1 spooled batches are waiting', $sent[0]->fullmessage);
        $this->assertStringContainsString('missing-dir', $sent[0]->fullmessage, 'the backend\'s error');

        // The notification was logged too (notification_sent): let it reach the spool before the directory exists.
        $this->assertSame(0, tsdb_flush(10000));
        mkdir(dirname($missing));
        (new \logstore_tsdb\task\replay_spool())->execute();
        $this->assertSame(0, tsdb_stats()['spool_segments']);
        $this->assertSame('recovered', health::check($now + health::WINDOW + 120),
            (string) get_config('logstore_tsdb', 'healthlastproblem'));
        // The course view, once (the notifications sent meanwhile are logged too: notification_sent).
        $rows = array_values(array_filter($this->file_rows($missing), function($row) {
            return $row['eventname'] === '\\core\\event\\course_viewed';
        }));
        $this->assertSame([(int) $this->course->id], array_column($rows, 'courseid'), 'the spooled event, once');
    }

    /**
     * A refused configuration is a failing check too (System status: error); a disabled store is never checked.
     */
    public function test_health_check_config_and_disabled(): void {
        $this->configure(['batch_size' => 0, 'healththreshold' => 1]);
        $this->assertSame('notified', health::check());
        $this->assertStringContainsString('batch_size', $this->notifications()[0]->fullmessage);
        $this->assertSame(\core\check\result::ERROR, (new \logstore_tsdb\check\extension_check())->get_result()->get_status());
        set_config('enabled_stores', 'logstore_standard', 'tool_log');
        $this->assertSame('disabled', health::check());
        $this->assertSame(\core\check\result::NA, (new \logstore_tsdb\check\extension_check())->get_result()->get_status());
    }

    /**
     * Test connection on the file backend writes a marker and finds it; an unwritable path fails with the reason.
     */
    public function test_connection_tester(): void {
        $result = connection_tester::run(\logstore_tsdb\log\store::read_plugin_config());
        $this->assertTrue($result['ok'], $result['message']);
        $this->assertTrue($result['readback']);
        $rows = $this->read_back();
        $this->assertCount(1, $rows);
        $this->assertSame(['marker' => $result['marker']], json_decode($rows[0]['other'], true));

        $this->configure(['path' => '/nonexistent-dir-' . getmypid() . '/x.jsonl', 'retry_base_ms' => 20,
            'retry_max_ms' => 50, 'retry_max_elapsed_ms' => 200, 'spool_dir' => '']);
        $result = connection_tester::run(\logstore_tsdb\log\store::read_plugin_config(), 3000);
        $this->assertFalse($result['ok']);
        $this->assertStringContainsString('nonexistent-dir', $result['message']);
    }

    /**
     * The spool's size and age as the status page shows them; the spool is under dataroot by default and an empty
     * spool_dir turns it off.
     */
    public function test_spool_info(): void {
        global $CFG;
        unset_config('spool_dir', 'logstore_tsdb');
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        $this->assertSame('async', $cfg->mode);
        $this->assertSame($CFG->dataroot . '/logstore_tsdb/spool', settings_definition::extension_config($cfg)['spool_dir']);
        $dir = $this->dir . '/spool-info';
        $this->configure(['spool_dir' => $dir]);
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        $this->assertNull(\logstore_tsdb\local\status::spool_info($cfg), 'no spool directory yet');
        mkdir($dir, 0700, true);
        file_put_contents("$dir/a", str_repeat('x', 100));
        file_put_contents("$dir/b", str_repeat('x', 50));
        touch("$dir/a", 1700000000);
        $this->assertSame(['files' => 2, 'bytes' => 150, 'oldest' => 1700000000], \logstore_tsdb\local\status::spool_info($cfg));

        $this->configure(['spool_dir' => '']);
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        $this->assertSame('', settings_definition::extension_config($cfg)['spool_dir'], 'empty: no spool is sent');
        $this->assertNull(\logstore_tsdb\local\status::spool_info($cfg));
    }
}

<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * Operations: worker counters and chart data, health check notifications, tasks, status check, connection test,
 * the site without the extension.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/base_testcase.php');

use logstore_tsdb\local\connection_tester;
use logstore_tsdb\local\extension;
use logstore_tsdb\local\health;
use logstore_tsdb\local\metrics;
use logstore_tsdb\local\settings_definition;

/**
 * Operations tests.
 */
class ops_test extends base_testcase {

    /**
     * Skips without Moodle's database.
     */
    protected function require_db(): void {
        global $DB;
        if (!$DB) {
            $this->markTestSkipped('SKIPPED: no PostgreSQL for Moodle\'s tables (set TSDB_TEST_PG_HOST or let run.sh start one)');
        }
    }

    /**
     * At the end of a request the process reports its real tsdb_stats(); at most once a minute; deltas per minute.
     */
    public function test_dispose_reports_worker_counters(): void {
        global $DB;
        $this->require_db();
        harness::login(5);
        for ($i = 0; $i < 7; $i++) {
            \core\event\course_viewed::create(['context' => context_course::instance(3), 'courseid' => 3])->trigger();
        }
        $this->assertSame(0, tsdb_flush(10000));
        $stats = tsdb_stats();
        get_log_manager()->dispose();
        $row = $DB->get_record('logstore_tsdb_workers', ['hostname' => gethostname(), 'pid' => $stats['pid']]);
        $this->assertNotFalse($row, 'the process reported');
        $this->assertSame((int) $stats['written'], (int) $row->written);
        $this->assertSame((int) $stats['accepted'], (int) $row->accepted);
        $this->assertSame('file', $row->backend);
        $series = metrics::series(5);
        $this->assertSame((int) $stats['written'], array_sum($series['written']), 'first report: everything so far');

        // Within the minute: no new report.
        \core\event\course_viewed::create(['context' => context_course::instance(3), 'courseid' => 3])->trigger();
        tsdb_flush(10000);
        $this->new_request();
        $this->assertSame((int) $stats['written'], (int) $DB->get_field('logstore_tsdb_workers', 'written', ['id' => $row->id]));

        // A minute later: the growth is added to that minute.
        $later = time() + 61;
        $this->assertTrue(metrics::report_if_due($later));
        $after = tsdb_stats();
        $series = metrics::series(5, $later);
        $this->assertSame((int) $after['written'] - (int) $stats['written'], end($series['written']));
        $totals = metrics::site_totals(900, $later);
        $this->assertSame(1, $totals['workers']);
        $this->assertSame((int) $after['written'], $totals['written']);
    }

    /**
     * A new process that got the same pid (smaller counters) counts from zero, never negative.
     */
    public function test_restarted_process_counts_from_zero(): void {
        $this->require_db();
        $now = 1800000000;
        metrics::record('web1', 42, ['accepted' => 100, 'written' => 90, 'failed' => 10], $now);
        metrics::record('web1', 42, ['accepted' => 5, 'written' => 4, 'failed' => 0], $now + 60);
        $series = metrics::series(3, $now + 60);
        $this->assertSame([0, 90, 4], $series['written']);
        $this->assertSame([0, 10, 0], $series['failed']);
    }

    /**
     * Repeated failures notify the admins once at the threshold, and once on recovery.
     */
    public function test_health_check_notifies_after_repeated_failures(): void {
        $this->require_db();
        $this->configure(['healththreshold' => 3]);
        $now = time();
        $states = [];
        for ($i = 0; $i < 4; $i++) {
            $t = $now + $i * 300;
            // Workers report failures in each period.
            metrics::record('web1', 100 + $i, ['accepted' => 10, 'written' => 0, 'failed' => 10], $t);
            $states[] = health::check($t);
        }
        $this->assertSame(['failing', 'failing', 'notified', 'failing'], $states);
        $this->assertCount(1, harness::$messages, 'one notification per admin');
        $msg = harness::$messages[0];
        $this->assertSame('logstore_tsdb', $msg->component);
        $this->assertSame('healthalert', $msg->name);
        $this->assertSame(2, $msg->userto->id);
        $this->assertStringContainsString('20 events failed', $msg->fullmessage, 'two 5-minute periods of 10 failures');
        $this->assertSame(1, $msg->notification);

        // The status check reports it.
        $result = (new \logstore_tsdb\check\extension_check())->get_result();
        $this->assertSame(\core\check\result::WARNING, $result->get_status());

        // Healthy again (no failures in the window): recovered, one more message.
        $this->assertSame('recovered', health::check($now + 3 * 300 + 1200));
        $this->assertCount(2, harness::$messages);
        $this->assertSame('ok', health::check($now + 3 * 300 + 1500));
        $this->assertCount(2, harness::$messages);
        $this->assertSame(\core\check\result::OK, (new \logstore_tsdb\check\extension_check())->get_result()->get_status());
    }

    /**
     * An outage with the spool (the default) fails no event, yet the check reports batches waiting in the spool for
     * a whole check period, naming the backend's error; once they are replayed it is healthy again.
     */
    public function test_health_check_reports_a_waiting_spool(): void {
        $this->require_db();
        $missing = $GLOBALS['CFG']->dataroot . '/missing-dir/events.jsonl';
        $this->configure(['path' => $missing, 'retry_max_elapsed_ms' => 0, 'healththreshold' => 1]);
        harness::login(5);
        \core\event\course_viewed::create(['context' => context_course::instance(3), 'courseid' => 3])->trigger();
        $this->assertSame(0, tsdb_flush(10000));
        $stats = tsdb_stats();
        $this->assertSame(1, $stats['spooled'], $stats['last_error']);
        $this->assertSame(0, $stats['failed']);
        $now = time();
        $this->assertSame('ok', health::check($now), 'just spooled: the flush threads and the task have not tried yet');
        $this->assertSame('notified', health::check($now + health::WINDOW + 60));
        $this->assertStringContainsString('1 spooled batches are waiting', harness::$messages[0]->fullmessage);
        $this->assertStringContainsString('missing-dir', harness::$messages[0]->fullmessage, 'the backend\'s error');

        // The backend is back: the replay task delivers the event, the check recovers.
        mkdir(dirname($missing));
        (new \logstore_tsdb\task\replay_spool())->execute();
        $this->assertSame(0, tsdb_stats()['spool_segments']);
        $this->assertSame('recovered', health::check($now + health::WINDOW + 120));
        $this->assertSame([3], array_column(array_map(function($l) {
            return json_decode($l, true);
        }, file($missing, FILE_IGNORE_NEW_LINES)), 'courseid'));
    }

    /**
     * A refused configuration is a failing check too; a disabled store is never checked.
     */
    public function test_health_check_config_and_disabled(): void {
        $this->require_db();
        $this->configure(['batch_size' => 0, 'healththreshold' => 1]);
        $this->assertSame('notified', health::check());
        $this->assertStringContainsString('batch_size', harness::$messages[0]->fullmessage);
        $this->assertSame(\core\check\result::ERROR, (new \logstore_tsdb\check\extension_check())->get_result()->get_status());
        set_config('enabled_stores', 'logstore_standard', 'tool_log');
        $this->assertSame('disabled', health::check());
        $this->assertSame(\core\check\result::NA, (new \logstore_tsdb\check\extension_check())->get_result()->get_status());
    }

    /**
     * The scheduled tasks are declared and run.
     */
    public function test_tasks(): void {
        $this->require_db();
        $tasks = [];
        include(harness::$plugindir . '/db/tasks.php');
        $classes = array_column($tasks, 'classname');
        $this->assertSame(['\logstore_tsdb\task\replay_spool', '\logstore_tsdb\task\health_check', '\logstore_tsdb\task\summarise',
            '\logstore_tsdb\task\retention'],
            $classes);
        foreach ($tasks as $t) {
            $task = new $t['classname']();
            $this->assertInstanceOf(\core\task\scheduled_task::class, $task);
            $this->assertNotSame('', $task->get_name());
            foreach (['minute', 'hour', 'day', 'month', 'dayofweek', 'blocking'] as $k) {
                $this->assertArrayHasKey($k, $t);
            }
        }
        (new \logstore_tsdb\task\replay_spool())->execute();
        $log = implode("\n", array_column(harness::$debugging, 0));
        if (function_exists('tsdb_replay_spool')) {
            // The default async configuration has a spool (this test's, empty): the task replays it, not "skipped".
            $this->assertMatchesRegularExpression('/mtrace: logstore_tsdb: spool replay: (\{.*\})/', $log);
            preg_match('/mtrace: logstore_tsdb: spool replay: (\{.*\})/', $log, $m);
            $replay = json_decode($m[1], true);
            $this->assertSame(['segments' => 0, 'written' => 0, 'error' => '', 'remaining_segments' => 0],
                array_intersect_key($replay, array_flip(['segments', 'written', 'error', 'remaining_segments'])));
        } else {
            $this->assertStringContainsString('tsdb_replay_spool() is missing', $log);
        }
        (new \logstore_tsdb\task\health_check())->execute();
        $this->assertStringContainsString('logstore_tsdb: health ok', implode("\n", array_column(harness::$debugging, 0)));
        $this->assertSame(0, (new \logstore_tsdb\task\retention())->execute(), 'not applicable to the file backend');
    }

    /**
     * Retention on a plain PostgreSQL table deletes only rows older than retention_days.
     */
    public function test_retention_task_on_postgres(): void {
        $this->require_db();
        $this->configure(['backend' => 'postgres', 'host' => getenv('TSDB_TEST_PG_HOST'),
            'port' => getenv('TSDB_TEST_PG_PORT') ?: 5432, 'user' => getenv('TSDB_TEST_PG_USER') ?: 'postgres',
            'dbname' => getenv('TSDB_TEST_PG_DB') ?: 'postgres', 'password' => getenv('TSDB_TEST_PG_PASSWORD') ?: '',
            'table' => 'retention_test_log', 'retention_days' => 30]);
        $db = \logstore_tsdb\local\pgdb::from_config(\logstore_tsdb\log\store::read_plugin_config());
        $db->execute('DROP TABLE IF EXISTS public.retention_test_log');
        $db->execute(sprintf(privacy_test_sql(), 'public.retention_test_log'));
        $now = 1800000000;
        foreach ([40, 31, 29, 1] as $daysago) {
            $t = $now - $daysago * 86400;
            $db->execute("INSERT INTO public.retention_test_log (eventname, component, action, target, crud, edulevel, contextid,
                contextlevel, contextinstanceid, userid, anonymous, timecreated, time, event_id)
                VALUES ('\\core\\event\\x', 'core', 'x', 'y', 'r', 0, 1, 10, 0, 2, 0, ?, to_timestamp(?), gen_random_uuid())",
                [$t, $t]);
        }
        $deleted = (new \logstore_tsdb\task\retention())->execute($now);
        $this->assertSame(2, $deleted);
        $left = array_map(function($r) use ($now) {
            return intdiv($now - (int) $r->timecreated, 86400);
        }, $db->query('SELECT timecreated FROM public.retention_test_log ORDER BY timecreated'));
        $this->assertSame([29, 1], $left);
        $db->execute('DROP TABLE public.retention_test_log');
    }

    /**
     * Retention on the extension's native layout (daily partitions table_pYYYYMMDD): whole expired days are dropped.
     */
    public function test_retention_task_drops_daily_partitions(): void {
        $this->require_db();
        $this->configure(['backend' => 'postgres', 'host' => getenv('TSDB_TEST_PG_HOST'),
            'port' => getenv('TSDB_TEST_PG_PORT') ?: 5432, 'user' => getenv('TSDB_TEST_PG_USER') ?: 'postgres',
            'dbname' => getenv('TSDB_TEST_PG_DB') ?: 'postgres', 'password' => getenv('TSDB_TEST_PG_PASSWORD') ?: '',
            'table' => 'retpart_log', 'retention_days' => 2]);
        $db = \logstore_tsdb\local\pgdb::from_config(\logstore_tsdb\log\store::read_plugin_config());
        $db->execute('DROP TABLE IF EXISTS public.retpart_log CASCADE');
        $db->execute('CREATE TABLE public.retpart_log (id BIGSERIAL, timecreated BIGINT NOT NULL, time TIMESTAMPTZ NOT NULL)'
            . ' PARTITION BY RANGE (time)');
        $now = gmmktime(12, 0, 0, 6, 10, 2026);
        foreach ([6, 7, 8, 9, 10] as $day) {
            $from = gmdate('Y-m-d', gmmktime(0, 0, 0, 6, $day, 2026));
            $to = gmdate('Y-m-d', gmmktime(0, 0, 0, 6, $day + 1, 2026));
            $db->execute(sprintf("CREATE TABLE public.retpart_log_p202606%02d PARTITION OF public.retpart_log FOR VALUES FROM ('%s') TO ('%s')",
                $day, $from, $to));
            $t = gmmktime(6, 0, 0, 6, $day, 2026);
            $db->execute('INSERT INTO public.retpart_log (timecreated, time) VALUES (?, to_timestamp(?))', [$t, $t]);
        }
        // Cutoff: 2026-06-08 12:00. Days 6 and 7 ended before it; day 8 has not.
        $this->assertSame(2, (new \logstore_tsdb\task\retention())->execute($now));
        $left = array_column($db->query("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            . " WHERE i.inhparent = 'public.retpart_log'::regclass ORDER BY 1"), 'relname');
        $this->assertSame(['retpart_log_p20260608', 'retpart_log_p20260609', 'retpart_log_p20260610'], $left);
        $this->assertSame(3, (int) $db->query('SELECT count(*) AS n FROM public.retpart_log')[0]->n);
        $db->execute('DROP TABLE public.retpart_log CASCADE');
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
        $this->assertSame(connection_tester::EVENTNAME, $rows[0]['eventname']);
        $this->assertSame(['marker' => $result['marker']], json_decode($rows[0]['other'], true));

        $this->configure(['path' => '/nonexistent-dir-' . getmypid() . '/x.jsonl', 'retry_base_ms' => 20, 'retry_max_ms' => 50,
            'retry_max_elapsed_ms' => 200]);
        extension::reset_for_tests();
        $result = connection_tester::run(\logstore_tsdb\log\store::read_plugin_config(), 3000);
        $this->assertFalse($result['ok']);
        $this->assertNotSame('', $result['message']);
    }

    /**
     * Status page data: spool size and age; the spool is under dataroot by default, in async mode too, and an empty
     * spool_dir turns it off.
     */
    public function test_spool_info(): void {
        global $CFG;
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        $this->assertSame('async', $cfg->mode);
        $dir = $CFG->dataroot . '/logstore_tsdb/spool';
        $this->assertSame($dir, settings_definition::extension_config($cfg)['spool_dir']);
        $this->assertNull(\logstore_tsdb\local\status::spool_info($cfg), 'no spool directory yet');
        mkdir($dir, 0700, true);
        file_put_contents("$dir/a", str_repeat('x', 100));
        file_put_contents("$dir/b", str_repeat('x', 50));
        touch("$dir/a", 1700000000);
        $info = \logstore_tsdb\local\status::spool_info($cfg);
        $this->assertSame(['files' => 2, 'bytes' => 150, 'oldest' => 1700000000], $info);

        $this->configure(['spool_dir' => '']);
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        $this->assertSame('', settings_definition::extension_config($cfg)['spool_dir'], 'empty: no spool is sent');
        $this->assertNull(\logstore_tsdb\local\status::spool_info($cfg));
    }

    /**
     * A PHP without the extension: no fatal error anywhere, is_logging() false, the settings page and the status
     * check say the extension is missing, the tasks run.
     */
    public function test_site_without_the_extension(): void {
        [$rc, $out, $err] = $this->run_php_without_extension(<<<'PHP'
$r = ['loaded' => extension_loaded('tsdb') || function_exists('tsdb_log_event')];
set_config('backend', 'file', 'logstore_tsdb');
harness::login(5);
\core\event\course_viewed::create(['context' => context_course::instance(3), 'courseid' => 3])->trigger();
$readers = get_log_manager()->get_readers();
$r['is_logging'] = $readers['logstore_tsdb']->is_logging();
$r['name'] = $readers['logstore_tsdb']->get_name();
get_log_manager()->dispose();
$ADMIN = new admin_root(true);
$hassiteconfig = true;
$settings = new admin_settingpage('logsettingtsdb', 'x');
include(harness::$plugindir . '/settings.php');
$r['settings_warning'] = isset($settings->settings->extensionmissing) ? $settings->settings->extensionmissing->description : null;
$r['settings_count'] = count((array) $settings->settings);
$r['check'] = (new \logstore_tsdb\check\extension_check())->get_result()->get_status();
$r['check_summary'] = (new \logstore_tsdb\check\extension_check())->get_result()->get_summary();
(new \logstore_tsdb\task\replay_spool())->execute();
if ($DB) {
    $r['health'] = \logstore_tsdb\local\health::check();
}
$r['test'] = \logstore_tsdb\local\connection_tester::run(\logstore_tsdb\log\store::read_plugin_config());
$r['durable'] = \logstore_tsdb\local\extension::supports_mode('durable');
$hooks = [];
$callbacks = [];
include(harness::$plugindir . '/db/hooks.php');
harness::login(2);
$PAGE->pagetype = 'admin-index';
$hook = new \core\hook\output\before_standard_top_of_body_html_generation();
call_user_func($callbacks[0]['callback'], $hook);
$r['notifications_page'] = $hook->get_output();
$PAGE->pagetype = 'course-view';
$hook = new \core\hook\output\before_standard_top_of_body_html_generation();
call_user_func($callbacks[0]['callback'], $hook);
$r['other_page'] = $hook->get_output();
echo json_encode($r);
PHP
        );
        $this->assertSame(0, $rc, "no fatal error; stderr: $err");
        $this->assertSame('', trim($err), 'no warning or notice');
        $r = json_decode($out, true);
        $this->assertIsArray($r, "output: $out");
        if ($r['loaded']) {
            $this->markTestSkipped('SKIPPED: the tsdb extension is loaded by php.ini here, cannot test a PHP without it');
        }
        $this->assertFalse($r['is_logging']);
        $this->assertSame('Time series database log store', $r['name']);
        $this->assertStringContainsString('tsdb PHP extension is not loaded', $r['settings_warning']);
        $this->assertStringContainsString('extension=tsdb', $r['settings_warning']);
        $this->assertGreaterThan(50, $r['settings_count'], 'the settings can still be filled in');
        $this->assertSame('error', $r['check']);
        $this->assertStringContainsString('not loaded', $r['check_summary']);
        if (array_key_exists('health', $r)) {
            $this->assertSame('failing', $r['health']);
        }
        $this->assertFalse($r['test']['ok']);
        $this->assertFalse($r['durable']);
        $this->assertStringContainsString('tsdb PHP extension is not loaded', $r['notifications_page'],
            'Site administration > Notifications says it');
        $this->assertSame('', $r['other_page'], 'only on the notifications page');
    }

    /**
     * With the extension loaded, the notifications page says nothing.
     */
    public function test_no_notice_with_the_extension(): void {
        global $PAGE;
        $callbacks = [];
        include(harness::$plugindir . '/db/hooks.php');
        $this->assertSame(\core\hook\output\before_standard_top_of_body_html_generation::class, $callbacks[0]['hook']);
        harness::login(2);
        $PAGE->pagetype = 'admin-index';
        $hook = new \core\hook\output\before_standard_top_of_body_html_generation();
        call_user_func($callbacks[0]['callback'], $hook);
        $this->assertSame('', $hook->get_output());
    }
}

/**
 * The table SQL of privacy_test (shared).
 *
 * @return string
 */
function privacy_test_sql(): string {
    require_once(__DIR__ . '/privacy_test.php');
    return privacy_test::PG_TABLE_SQL;
}

<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The plugin's four scheduled tasks, run as an administrator runs them: admin/cli/scheduled_task.php --execute, in a
 * PHP process of the site of its own, each with its effect checked in the real backend or the site's database.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/../lib/ops.php');

use logstore_tsdb\local\extension;

/**
 * Scheduled task tests.
 */
class tasks_test extends base_testcase {
    use tsdb_test_ops;

    /** @var \stdClass a course of this test */
    protected $course;

    /** @var \stdClass another course */
    protected $course2;

    /** @var \stdClass[] students of both courses */
    protected $students = [];

    /**
     * Two courses with three students; the events of making them are forgotten.
     */
    protected function setUp(): void {
        parent::setUp();
        $this->course = $this->gen()->create_course();
        $this->course2 = $this->gen()->create_course();
        for ($i = 0; $i < 3; $i++) {
            $this->students[$i] = $this->gen()->create_user();
            $this->gen()->enrol_user($this->students[$i]->id, $this->course->id, 'student');
            $this->gen()->enrol_user($this->students[$i]->id, $this->course2->id, 'student');
        }
        $this->forget_events_so_far();
    }

    /**
     * Drops this test's tables.
     */
    protected function tearDown(): void {
        parent::tearDown();
        $this->drop_pg_tables();
    }

    /**
     * The four tasks are registered in the site (task_scheduled) with a name, and scheduled_task.php lists them.
     */
    public function test_tasks_are_registered(): void {
        global $DB;
        $expected = ['\logstore_tsdb\task\health_check', '\logstore_tsdb\task\replay_spool', '\logstore_tsdb\task\retention',
            '\logstore_tsdb\task\summarise'];
        $rows = $DB->get_records('task_scheduled', ['component' => 'logstore_tsdb'], 'classname ASC');
        $this->assertSame($expected, array_values(array_column($rows, 'classname')));
        foreach ($rows as $row) {
            $this->assertSame('0', (string) $row->disabled, "$row->classname is enabled");
        }
        [$rc, $out, $err] = tsdb_test_site::run_cli('admin/cli/scheduled_task.php', ['--list']);
        $this->assertSame(0, $rc, $err);
        foreach ($expected as $class) {
            $this->assertStringContainsString($class, $out);
            $name = (new $class())->get_name();
            $this->assertStringNotContainsString('[[', $name, "$class has a name in the language file");
        }
    }

    /**
     * replay_spool: N events logged by a request of the site while PostgreSQL is unreachable wait in the spool (none
     * failed); once the database answers, the task delivers them to the real table: N in, N read back, every column
     * what logstore_standard stored for the same events, the spool empty.
     */
    public function test_replay_spool_delivers_spooled_events(): void {
        $n = 17;
        $settings = $this->pg_settings('replay');
        $goodport = $settings['port'];
        // Nothing listens on this port: connection refused. No retry delay: the batch goes to the spool at once. The
        // spool is not this test process's own (its file sink has another): only the request and the task use it.
        $spool = $this->dir . '/pgspool';
        $this->configure(array_merge($settings, ['port' => tsdb_test_site_pool::free_port(), 'retry_max_elapsed_ms' => 0,
            'batch_size' => 5, 'spool_dir' => $spool]));
        [$rc, $out, $err] = tsdb_test_site::run_code($this->logging_code($n));
        $this->assertSame(0, $rc, "$out\n$err");
        $this->assert_no_php_notice($out . $err, 'the logging request');
        $r = json_decode($out, true);
        $this->assertIsArray($r, $out);
        $this->assertSame(0, $r['pending']);
        $this->assertSame(['spooled' => $n, 'written' => 0, 'failed' => 0], $r['counts'], $r['last_error']);
        $this->assertStringContainsString('onnection refused', $r['last_error']);
        $this->assertGreaterThan(0, count(glob("$spool/*")), 'segments in the spool');
        $this->assertSame([], $this->pg_log_rows($settings['table']), 'nothing reached PostgreSQL');
        $standard = $this->standard_rows();
        $this->assertCount($n, $standard, 'logstore_standard stored every event');

        // During the outage the task keeps everything and says why.
        $out = $this->run_task('replay_spool');
        $this->assertMatchesRegularExpression('/logstore_tsdb: spool replay: (\{.*\})/', $out);
        preg_match('/logstore_tsdb: spool replay: (\{.*\})/', $out, $m);
        $during = json_decode($m[1], true);
        $this->assertSame(0, $during['written']);
        $this->assertNotSame('', $during['error']);
        $this->assertSame([], $this->pg_log_rows($settings['table']));

        // PostgreSQL answers (the admin fixed the port): the task delivers every spooled event once.
        set_config('port', $goodport, 'logstore_tsdb');
        $out = $this->run_task('replay_spool');
        preg_match('/logstore_tsdb: spool replay: (\{.*\})/', $out, $m);
        $result = json_decode($m[1] ?? 'null', true);
        $this->assertIsArray($result, $out);
        $this->assertSame('', $result['error']);
        // The task's process pushes the configuration first, so its flush thread may deliver segments itself: the
        // table shows what the run delivered (below).
        $this->assertLessThanOrEqual($n, $result['written']);
        $this->assertSame(0, $result['remaining_segments']);
        $this->assertSame([], glob("$spool/*.seg") ?: [], 'the spool is empty');
        $this->assert_pg_rows_match_standard($standard, $this->pg_log_rows($settings['table']), 'replayed');

        // Nothing is left to replay twice.
        $out = $this->run_task('replay_spool');
        preg_match('/logstore_tsdb: spool replay: (\{.*\})/', $out, $m);
        $this->assertSame(0, json_decode($m[1], true)['written']);
        $this->assertCount($n, $this->pg_log_rows($settings['table']));
    }

    /**
     * PHP code of a request of the site that logs $n course views by the students (as CLI_SCRIPT: origin cli), then
     * waits for the extension and prints its counters as JSON.
     *
     * @param int $n
     * @return string
     */
    protected function logging_code(int $n): string {
        $users = var_export(array_map('intval', array_column($this->students, 'id')), true);
        $courses = var_export([(int) $this->course->id, (int) $this->course2->id], true);
        return <<<PHP
\$users = $users;
\$courses = $courses;
for (\$i = 0; \$i < $n; \$i++) {
    \\core\\session\\manager::set_user(\\core_user::get_user(\$users[\$i % 3]));
    \$ctx = \\context_course::instance(\$courses[\$i % 2]);
    \\core\\event\\course_viewed::create(['context' => \$ctx, 'other' => ['i' => \$i, 'text' => "spooled ü \$i"]])->trigger();
}
get_log_manager()->dispose();
\$pending = tsdb_flush(30000);
\$s = tsdb_stats();
echo json_encode(['pending' => \$pending, 'counts' => ['spooled' => \$s['spooled'], 'written' => \$s['written'],
    'failed' => \$s['failed']], 'last_error' => \$s['last_error']]);
PHP;
    }

    /**
     * Hands the extension of this process an event as the store does, with another time of creation (older events:
     * what an import or a spool replay delivers late).
     *
     * @param \stdClass $user
     * @param \stdClass $course
     * @param int $timecreated
     * @param array $other
     */
    protected function log_at(\stdClass $user, \stdClass $course, int $timecreated, array $other): void {
        $this->set_user($user);
        $event = \core\event\course_viewed::create(['context' => context_course::instance($course->id), 'other' => $other]);
        $entry = $event->get_data();
        $entry['timecreated'] = $timecreated;
        $entry += ['origin' => 'cli', 'ip' => '', 'realuserid' => null];
        $this->assertTrue(extension::log_event($entry));
    }

    /**
     * retention: with retention_days 30 the task removes the events older than 30 days from the extension's table
     * (whole daily partitions) and nothing else; on a plain (not partitioned) table it deletes the same rows.
     */
    public function test_retention_deletes_what_is_older_than_the_lifetime(): void {
        $settings = $this->pg_settings('retention');
        $table = $settings['table'];
        $this->configure($settings + ['retention_days' => 0]);
        $this->assertTrue(extension::ensure_configured(\logstore_tsdb\log\store::read_plugin_config()));
        $failed = tsdb_stats()['failed'];
        $now = time();
        $ages = [40, 31, 29, 1, 0];
        foreach ($ages as $age) {
            foreach ($this->students as $i => $student) {
                $this->log_at($student, $this->course, $now - $age * 86400 - 60, ['age' => $age, 'i' => $i]);
            }
        }
        $this->assertSame(0, tsdb_flush(30000));
        $this->assertSame($failed, tsdb_stats()['failed'], tsdb_stats()['last_error']);
        $agesin = function(string $t): array {
            return array_map('intval', array_column(self::pg_query("SELECT (other->>'age')::int AS age FROM public.\"$t\""
                . " ORDER BY 1, (other->>'i')::int"), 'age'));
        };
        $all = [];
        foreach ($ages as $age) {
            $all = array_merge($all, array_fill(0, 3, $age));
        }
        sort($all);
        $this->assertSame($all, $agesin($table), 'every event in the table before the task');
        $partitions = self::pg_query("SELECT count(*) AS n FROM pg_inherits WHERE inhparent = ?::regclass",
            ['public."' . $table . '"'])[0]['n'];
        $this->assertGreaterThanOrEqual(4, (int) $partitions, 'the extension made daily partitions');

        // A plain copy of the same rows, for the DELETE path.
        $plain = $table . '_plain';
        $this->pgtables[] = $plain;
        self::pg()->exec("CREATE TABLE public.\"$plain\" AS SELECT * FROM public.\"$table\"");

        set_config('retention_days', 30, 'logstore_tsdb');
        $out = $this->run_task('retention');
        $this->assertStringContainsString('logstore_tsdb: deleted 6 events older than 30 days.', $out);
        $kept = array_values(array_filter($all, function($a) {
            return $a < 30;
        }));
        $this->assertSame($kept, $agesin($table), 'the events of 29, 1 and 0 days ago stay, the older ones are gone');

        set_config('table', $plain, 'logstore_tsdb');
        $out = $this->run_task('retention');
        $this->assertStringContainsString('logstore_tsdb: deleted 6 events older than 30 days.', $out);
        $this->assertSame($kept, $agesin($plain));

        // Run again: nothing more to delete.
        $out = $this->run_task('retention');
        $this->assertStringContainsString('logstore_tsdb: deleted 0 events older than 30 days.', $out);
        $this->assertSame($kept, $agesin($plain));
    }

    /**
     * summarise: on plain PostgreSQL the task materialises whole UTC days of the five summaries before the start of
     * today (exact counts per hour and course, per day and user), records the watermark, and the summary views count
     * every event, today's from the raw table.
     */
    public function test_summarise_materialises_the_summaries(): void {
        $settings = $this->pg_settings('summary');
        $table = $settings['table'];
        $this->configure($settings);
        $this->assertTrue(extension::ensure_configured(\logstore_tsdb\log\store::read_plugin_config()));
        $written = tsdb_stats()['written'];
        $now = time();
        $today = $now - $now % 86400;
        $times = [];
        foreach ([2 * 86400 + 600, 26 * 3600, 5 * 3600, 0] as $k => $ago) {
            foreach ($this->students as $i => $student) {
                foreach ([$this->course, $this->course2] as $j => $course) {
                    if (($i + $j + $k) % 3 === 0) {
                        continue;
                    }
                    $t = $now - $ago - $i * 60;
                    $this->log_at($student, $course, $t, ['k' => $k]);
                    $times[] = [$t, (int) $course->id, (int) $student->id];
                }
            }
        }
        $this->assertSame(0, tsdb_flush(30000));
        $this->assertSame(count($times), tsdb_stats()['written'] - $written, tsdb_stats()['last_error']);

        $out = $this->run_task('summarise');
        $this->assertMatchesRegularExpression('/logstore_tsdb: summaries: [1-9]\d* days materialised between/', $out);
        $watermark = (int) self::pg_query("SELECT extract(epoch FROM max(day) + interval '1 day')::bigint AS w"
            . " FROM public.\"{$table}_summary\"")[0]['w'];
        $this->assertSame($today, $watermark, 'every day before today materialised');

        $hourly = [];
        $daily = [];
        foreach ($times as [$t, $courseid, $userid]) {
            if ($t < $watermark) {
                $key = ($t - $t % 3600) . '/' . $courseid;
                $hourly[$key] = ($hourly[$key] ?? 0) + 1;
                $key = ($t - $t % 86400) . '/' . $userid;
                $daily[$key] = ($daily[$key] ?? 0) + 1;
            }
        }
        ksort($hourly);
        ksort($daily);
        $this->assertNotEmpty($hourly);
        $got = [];
        foreach (self::pg_query("SELECT extract(epoch FROM bucket)::bigint AS b, courseid, events"
                . " FROM public.\"{$table}_hourly_mat\"") as $r) {
            $got[$r['b'] . '/' . $r['courseid']] = (int) $r['events'];
        }
        ksort($got);
        $this->assertSame($hourly, $got, 'hourly buckets of the materialised days, exact');
        $got = [];
        foreach (self::pg_query("SELECT extract(epoch FROM day)::bigint AS d, userid, events"
                . " FROM public.\"{$table}_daily_users_mat\"") as $r) {
            $got[$r['d'] . '/' . $r['userid']] = (int) $r['events'];
        }
        ksort($got);
        $this->assertSame($daily, $got, 'daily users of the materialised days, exact');
        foreach (['_hourly', '_daily_users', '_daily', '_activity', '_daily_events', '_hourly_site', '_weekly_courses'] as $view) {
            $this->assertSame(count($times), (int) self::pg_query("SELECT sum(events) AS n FROM public.\"{$table}{$view}\"")
                [0]['n'], "the $view view counts every event (today's from the raw table)");
        }

        // Run again: the look-back day (and any day whose partition's counters moved since) materialised again, the same
        // counts.
        $out = $this->run_task('summarise');
        $this->assertMatchesRegularExpression('/logstore_tsdb: summaries: [1-9]\d* days materialised between/', $out);
        $this->assertSame(count($times), (int) self::pg_query("SELECT sum(events) AS n FROM public.\"{$table}_hourly\"")
            [0]['n']);
    }

    /**
     * health_check: with a configuration the extension refuses, the task notifies the site administrators (one
     * notification each, naming the problem); once fixed, the next run says it recovered (one more), then nothing.
     */
    public function test_health_check_notifies_the_administrators(): void {
        global $DB;
        $DB->delete_records('logstore_tsdb_metrics');
        $DB->delete_records('logstore_tsdb_workers');
        $admins = array_keys(get_admins());
        $select = "component = 'logstore_tsdb' AND eventtype = 'healthalert'";
        $before = (int) $DB->get_field_select('notifications', 'MAX(id)', $select);
        $notifications = function() use ($DB, $select, $before): array {
            return array_values($DB->get_records_select('notifications', "$select AND id > ?", [$before], 'id ASC'));
        };
        set_config('healththreshold', 1, 'logstore_tsdb');

        $out = $this->run_task('health_check');
        $this->assertStringContainsString('logstore_tsdb: health ok', $out);
        $this->assertSame([], $notifications());

        set_config('batch_size', 0, 'logstore_tsdb');
        $out = $this->run_task('health_check');
        $this->assertStringContainsString('logstore_tsdb: health notified', $out);
        $sent = $notifications();
        $this->assertSame($admins, array_map('intval', array_column($sent, 'useridto')), 'one notification per admin');
        $this->assertSame(get_string('health_subject', 'logstore_tsdb'), $sent[0]->subject);
        $this->assertStringContainsString('batch_size', $sent[0]->fullmessage, 'names the problem');
        $this->assertStringContainsString('/admin/tool/log/store/tsdb/status.php', $sent[0]->contexturl);
        $this->assertSame('1', (string) get_config('logstore_tsdb', 'healthnotified'));

        // Still failing: no second notification.
        $out = $this->run_task('health_check');
        $this->assertStringContainsString('logstore_tsdb: health failing', $out);
        $this->assertCount(count($admins), $notifications());

        unset_config('batch_size', 'logstore_tsdb');
        $out = $this->run_task('health_check');
        $this->assertStringContainsString('logstore_tsdb: health recovered', $out);
        $sent = $notifications();
        $this->assertCount(2 * count($admins), $sent);
        $this->assertSame(get_string('health_recovered_subject', 'logstore_tsdb'), end($sent)->subject);
        $out = $this->run_task('health_check');
        $this->assertStringContainsString('logstore_tsdb: health ok', $out);
        $this->assertCount(2 * count($admins), $notifications());
    }
}

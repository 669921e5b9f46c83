<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The store through the extension's network sinks, with real events of the site: PostgreSQL (read back with SQL, every
 * column what logstore_standard stored) and the InfluxDB line protocol (recorded by a loopback listener: the user ids
 * that leave Moodle are pseudonyms).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/../lib/ops.php');
require_once(__DIR__ . '/influx_capture.php');

/**
 * Sink tests.
 */
class sink_test extends base_testcase {
    use tsdb_test_ops;
    use influx_capture;

    /** @var \stdClass a course */
    protected $course;

    /** @var \stdClass a page in it */
    protected $page;

    /** @var \stdClass a student */
    protected $student;

    /** @var \stdClass another user */
    protected $other;

    /**
     * A course with a page, a student and another user; the events of making them are forgotten.
     */
    protected function setUp(): void {
        parent::setUp();
        $this->course = $this->gen()->create_course();
        $this->page = $this->gen()->create_module('page', ['course' => $this->course->id]);
        $this->student = $this->gen()->create_user();
        $this->other = $this->gen()->create_user();
        $this->gen()->enrol_user($this->student->id, $this->course->id, 'student');
        $this->forget_events_so_far();
    }

    /**
     * Stops the listeners, drops the tables.
     */
    protected function tearDown(): void {
        \core\session\manager::init_empty_session();
        $this->stop_captures();
        parent::tearDown();
        $this->drop_pg_tables();
    }

    /**
     * The administrator logged in as the student ("Log in as": realuserid), as Moodle's session manager does it.
     */
    protected function login_as_student(): void {
        $this->set_user(get_admin());
        \core\session\manager::loginas($this->student->id, context_system::instance());
    }

    /**
     * Events through the postgres sink: every column read back with SQL equals what logstore_standard stored for the
     * same events; the privacy provider finds and deletes them in the extension's own table; Test connection writes
     * and reads back its marker there.
     */
    public function test_postgres_sink_read_back(): void {
        $settings = $this->pg_settings('sink');
        $table = $settings['table'];
        $this->configure($settings);
        $before = tsdb_stats();
        $this->login_as_student();
        $pagectx = context_module::instance($this->page->cmid);
        \mod_page\event\course_module_viewed::create(['objectid' => $this->page->id, 'context' => $pagectx,
            'other' => ['deep' => ['x' => [1, 2, ['y' => 'ü']]]]])->trigger();
        \core\event\user_profile_viewed::create(['objectid' => $this->other->id, 'relateduserid' => $this->other->id,
            'context' => context_user::instance($this->other->id)])->trigger();
        \core\event\course_viewed::create(['context' => context_course::instance($this->course->id)])->trigger();
        \core\session\manager::init_empty_session();
        $standard = $this->standard_rows();
        $this->assertSame(0, tsdb_flush(15000));
        $stats = tsdb_stats();
        $this->assertSame(0, $stats['failed'] - $before['failed'], 'postgres sink failed: ' . $stats['last_error']);
        $this->assertSame(['\\core\\event\\user_loggedinas', '\\mod_page\\event\\course_module_viewed',
            '\\core\\event\\user_profile_viewed', '\\core\\event\\course_viewed'], array_column($standard, 'eventname'));
        $rows = $this->pg_log_rows($table);
        $this->assert_pg_rows_match_standard($standard, $rows, 'postgres sink');
        $this->assertSame((int) get_admin()->id, (int) $rows[1]['realuserid']);
        $this->assertSame((int) $this->student->id, (int) $rows[1]['userid']);

        // The privacy provider on the extension's own table.
        $this->new_request();
        $cl = new \core_privacy\local\request\contextlist();
        \logstore_tsdb\privacy\provider::add_contexts_for_userid($cl, $this->other->id);
        $this->assertSame([context_user::instance($this->other->id)->id], array_map('intval', $cl->get_contextids()));
        \logstore_tsdb\privacy\provider::delete_data_for_all_users_in_context($pagectx);
        $this->assertSame(['\\core\\event\\user_loggedinas', '\\core\\event\\user_profile_viewed',
            '\\core\\event\\course_viewed'], array_column($this->pg_log_rows($table), 'eventname'),
            'the page view is gone, the others stay');

        // Test connection: written and read back with SQL.
        $result = \logstore_tsdb\local\connection_tester::run(\logstore_tsdb\log\store::read_plugin_config());
        $this->assertTrue($result['ok'], $result['message']);
        $this->assertTrue($result['readback'], $result['message']);
        $this->assertCount(1, $this->pg_log_rows($table, "other->>'marker' = " . self::pg()->quote($result['marker'])));
    }

    /**
     * InfluxDB 1.x line protocol with pseudonymisation: the user ids that leave Moodle are the pseudonyms.
     */
    public function test_influx_lines_carry_pseudonyms(): void {
        $cap = $this->start_capture('influxdb1');
        $this->configure(['backend' => 'influxdb1', 'url' => $cap['url'], 'database' => 'moodle', 'gzip' => 0,
            'pseudonymise' => 1, 'retry_max_elapsed_ms' => 2000]);
        $before = tsdb_stats();
        $this->login_as_student();
        \core\event\user_profile_viewed::create(['objectid' => $this->other->id, 'relateduserid' => $this->other->id,
            'context' => context_user::instance($this->other->id)])->trigger();
        \core\session\manager::init_empty_session();
        $this->assertSame(0, tsdb_flush(15000));
        $stats = tsdb_stats();
        $this->assertSame(0, $stats['failed'] - $before['failed'], 'influx sink failed: ' . $stats['last_error']);
        $lines = [];
        foreach ($this->captured($cap, '/write') as $write) {
            $this->assertSame('moodle', $write['params']['db']);
            $lines = array_merge($lines, explode("\n", trim($write['body'])));
        }
        $this->assertCount(2, $lines, 'user_loggedinas and the profile view');
        $lines = array_values(array_filter($lines, function($l) {
            return strpos($l, 'eventname=\\core\\event\\user_profile_viewed') !== false;
        }));
        $this->assertCount(1, $lines, 'the event, once');
        $line = $lines[0];
        $ids = [(int) get_admin()->id, (int) $this->student->id, (int) $this->other->id];
        $p = \logstore_tsdb\local\pseudonym::existing($ids);
        $this->assertCount(3, $p, 'pseudonyms made for the author, the related and the real user');
        $this->assertMatchesRegularExpression('/[ ,]userid=' . $p[$this->student->id] . 'i/', $line);
        $this->assertMatchesRegularExpression('/[ ,]relateduserid=' . $p[$this->other->id] . 'i/', $line);
        $this->assertMatchesRegularExpression('/[ ,]realuserid=' . $p[get_admin()->id] . 'i/', $line);
        foreach ($ids as $id) {
            $this->assertDoesNotMatchRegularExpression('/userid=' . $id . 'i/', $line, 'no real user id leaves Moodle');
        }
        $this->assertStringContainsString('contextid=' . context_user::instance($this->other->id)->id, $line,
            'contextid is a tag');
    }
}

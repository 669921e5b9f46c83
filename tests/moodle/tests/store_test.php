<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The store in a real Moodle site, with the real extension and the file sink (JSON lines): events fired through
 * Moodle's event API reach both logstore_standard and the TSDB store, and every column the sink holds is what the
 * standard store stored for the same event.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

use logstore_tsdb\local\extension;

/**
 * Store tests.
 */
class store_test extends base_testcase {

    /** @var \stdClass a course of this test */
    protected $course;

    /** @var \stdClass a student of that course */
    protected $student;

    /** @var \stdClass a page activity in that course */
    protected $page;

    /** @var \stdClass a forum in that course */
    protected $forum;

    /**
     * A course with a student, a page and a forum; the events of making them are forgotten.
     */
    protected function setUp(): void {
        parent::setUp();
        $this->course = $this->gen()->create_course();
        $this->student = $this->gen()->create_user(['username' => 'student' . uniqid()]);
        $this->gen()->enrol_user($this->student->id, $this->course->id, 'student');
        $this->page = $this->gen()->create_module('page', ['course' => $this->course->id]);
        $this->forum = $this->gen()->create_module('forum', ['course' => $this->course->id]);
        $this->forget_events_so_far();
    }

    /**
     * Fires core and module events as the student, with nested, unicode and large `other` data.
     *
     * @return int how many events were fired
     */
    protected function fire_varied_events(): int {
        $this->set_user($this->student);
        $coursectx = context_course::instance($this->course->id);
        $pagectx = context_module::instance($this->page->cmid);
        $forumctx = context_module::instance($this->forum->cmid);
        $big = str_repeat('0123456789abcdef', 16 * 1024);
        $events = [
            \core\event\course_viewed::create(['context' => $coursectx, 'other' => ['coursesectionnumber' => 3,
                'nested' => ['a' => [1, 2.5, true, null, 'x"y\\z'], 'é' => 'ünïcödé 🎓', 'deeper' => ['x' => ['y' => ['z' => 1]]]]]]),
            \mod_page\event\course_module_viewed::create(['objectid' => $this->page->id, 'context' => $pagectx]),
            \mod_forum\event\course_module_viewed::create(['objectid' => $this->forum->id, 'context' => $forumctx]),
            \core\event\user_profile_viewed::create(['objectid' => $this->student->id, 'relateduserid' => $this->student->id,
                'context' => context_user::instance($this->student->id), 'other' => ['courseid' => $this->course->id,
                'courseshortname' => $this->course->shortname, 'coursefullname' => $this->course->fullname]]),
            \core\event\course_module_updated::create_from_cm(get_coursemodule_from_id('page', $this->page->cmid)),
            \mod_page\event\course_module_viewed::create(['objectid' => $this->page->id, 'context' => $pagectx,
                'other' => ['big' => $big, 'list' => range(1, 500)]]),
        ];
        foreach ($events as $e) {
            $e->trigger();
        }
        return count($events);
    }

    /**
     * The sink holds, column for column, what logstore_standard stored for the same events, in the same order.
     */
    public function test_every_column_matches_the_standard_store(): void {
        $n = $this->fire_varied_events();
        $this->assertTrue(get_log_manager()->get_readers()['logstore_tsdb']->is_logging());
        $standard = $this->standard_rows();
        $rows = $this->read_back();
        $this->assertCount($n, $standard, 'logstore_standard stored every event');
        $this->assertCount($n, $rows, 'the TSDB store got every event once');
        foreach ($standard as $i => $ref) {
            $this->assert_row_matches_standard($ref, $rows[$i], "event $i ({$ref['eventname']})");
        }
        $this->assertCount($n, array_unique(array_column($rows, 'event_id')), 'every event has its own event_id');
        $this->assertSame('\\core\\event\\course_viewed', $rows[0]['eventname']);
        $this->assertSame('cli', $rows[0]['origin'], 'a CLI script is origin cli');
        $this->assertSame((int) $this->student->id, $rows[0]['userid']);
        $this->assertSame((int) $this->course->id, $rows[0]['courseid']);
        $this->assertSame('ünïcödé 🎓', json_decode($rows[0]['other'], true)['nested']['é']);
        $this->assertSame(256 * 1024, strlen(json_decode($rows[5]['other'], true)['big']), 'a 256 KiB other arrives whole');
        $this->assertNull($rows[0]['realuserid']);
    }

    /**
     * Without buffering in PHP: in sync mode the event is in the sink as soon as trigger() returns.
     */
    public function test_no_buffering_in_php(): void {
        $this->configure(['mode' => 'sync']);
        $this->set_user($this->student);
        \core\event\course_viewed::create(['context' => context_course::instance($this->course->id)])->trigger();
        clearstatcache();
        $lines = is_file($this->sink) ? file($this->sink, FILE_SKIP_EMPTY_LINES) : [];
        $this->assertCount(1, $lines, 'sync mode: written before trigger() returned, nothing held back by PHP');
        $this->assertCount(1, $this->read_back());
    }

    /**
     * "Log in as" (Moodle's session manager): realuserid is the admin, userid the student, as in logstore_standard.
     */
    public function test_login_as_records_realuserid(): void {
        $this->set_user(get_admin());
        \core\session\manager::loginas($this->student->id, context_system::instance());
        try {
            \core\event\course_viewed::create(['context' => context_course::instance($this->course->id)])->trigger();
        } finally {
            \core\session\manager::init_empty_session();
        }
        $this->set_user($this->student);
        \core\event\course_viewed::create(['context' => context_course::instance($this->course->id)])->trigger();
        $rows = $this->read_back();
        $standard = $this->standard_rows();
        $this->assertSame(['\\core\\event\\user_loggedinas', '\\core\\event\\course_viewed', '\\core\\event\\course_viewed'],
            array_column($rows, 'eventname'));
        $this->assertSame((int) $this->student->id, $rows[1]['userid']);
        $this->assertSame((int) get_admin()->id, $rows[1]['realuserid']);
        $this->assertNull($rows[2]['realuserid']);
        foreach ($standard as $i => $ref) {
            $this->assert_row_matches_standard($ref, $rows[$i], "event $i");
        }
    }

    /**
     * logguests off: guests and visitors are skipped, as the standard store skips them with the same setting; on:
     * both stores log them.
     */
    public function test_guest_filtering(): void {
        $ctx = context_course::instance($this->course->id);
        $fire = function() use ($ctx) {
            foreach ([null, guest_user(), $this->student] as $user) {
                $this->set_user($user);
                \core\event\course_viewed::create(['context' => $ctx])->trigger();
            }
        };
        $this->configure(['logguests' => 0]);
        set_config('logguests', 0, 'logstore_standard');
        $this->new_request();
        $fire();
        // Moodle logs guests in CLI whatever logguests says (the standard store's rule, which the plugin follows).
        $standard = array_map('intval', array_column($this->standard_rows(), 'userid'));
        $this->assertSame($standard, array_column($this->read_back(), 'userid'), 'the same users as the standard store');

        $this->forget_events_so_far();
        $this->configure(['logguests' => 1]);
        set_config('logguests', 1, 'logstore_standard');
        $this->new_request();
        $fire();
        $this->assertSame([0, (int) guest_user()->id, (int) $this->student->id], array_column($this->read_back(), 'userid'));
        $this->assertSame([0, (int) guest_user()->id, (int) $this->student->id],
            array_map('intval', array_column($this->standard_rows(), 'userid')));
    }

    /**
     * Include and exclude lists by event name or component, with wildcards; exclude wins.
     */
    public function test_include_exclude_filters(): void {
        $this->configure(['includeevents' => "mod_forum\n\\core\\event\\course_viewed, *_updated",
            'excludeevents' => '\\core\\event\\user_profile_viewed']);
        $this->fire_varied_events();
        $names = array_column($this->read_back(), 'eventname');
        $this->assertSame(['\\core\\event\\course_viewed', '\\mod_forum\\event\\course_module_viewed',
            '\\core\\event\\course_module_updated'], $names);
        $this->assertCount(6, $this->standard_rows(), 'the standard store is not filtered');
    }

    /**
     * Exclude only: everything but the excluded component.
     */
    public function test_exclude_component(): void {
        $this->configure(['excludeevents' => 'core']);
        $this->fire_varied_events();
        $this->assertSame(['\\mod_page\\event\\course_module_viewed', '\\mod_forum\\event\\course_module_viewed',
            '\\mod_page\\event\\course_module_viewed'], array_column($this->read_back(), 'eventname'));
    }

    /**
     * Minimum edulevel: the events below it are not logged.
     */
    public function test_edulevel_filter(): void {
        $this->configure(['minedulevel' => 1]);
        $this->fire_varied_events();
        $rows = $this->read_back();
        $standard = $this->standard_rows();
        $want = array_values(array_filter(array_map('intval', array_column($standard, 'edulevel')), function($l) {
            return $l >= 1;
        }));
        $this->assertSame($want, array_column($rows, 'edulevel'));
        $this->assertContains(0, array_map('intval', array_column($standard, 'edulevel')), 'the fixture has level 0');
        $this->assertNotContains(0, array_column($rows, 'edulevel'));
    }

    /**
     * Anonymous events are kept and flagged by default, as the standard store keeps them; dropped when
     * skipanonymous is on.
     */
    public function test_anonymous_events(): void {
        $this->set_user($this->student);
        $ctx = context_module::instance($this->forum->cmid);
        $fire = function() use ($ctx) {
            \mod_forum\event\course_module_viewed::create(['objectid' => $this->forum->id, 'context' => $ctx,
                'anonymous' => 1])->trigger();
            \mod_forum\event\course_module_viewed::create(['objectid' => $this->forum->id, 'context' => $ctx])->trigger();
        };
        $fire();
        $rows = $this->read_back();
        $this->assertSame([1, 0], array_column($rows, 'anonymous'));
        $this->assertSame(['1', '0'], array_map('strval', array_column($this->standard_rows(), 'anonymous')));
        $this->assertSame([(int) $this->student->id, (int) $this->student->id], array_column($rows, 'userid'));

        $this->forget_events_so_far();
        $this->configure(['skipanonymous' => 1]);
        $this->set_user($this->student);
        $fire();
        $this->assertSame([0], array_column($this->read_back(), 'anonymous'));
    }

    /**
     * logip off stores an empty IP; on, the IP Moodle gives the standard store.
     */
    public function test_logip(): void {
        $this->fire_varied_events();
        $this->assertSame(array_column($this->standard_rows(), 'ip'), array_column($this->read_back(), 'ip'));
        $this->forget_events_so_far();
        $this->configure(['logip' => 0]);
        $this->set_user($this->student);
        \core\event\course_viewed::create(['context' => context_course::instance($this->course->id)])->trigger();
        $this->assertSame([''], array_column($this->read_back(), 'ip'));
    }

    /**
     * The configuration is pushed once per request and again only when it changed; the change takes effect.
     */
    public function test_config_pushed_only_when_changed(): void {
        $this->set_user($this->student);
        $ctx = context_course::instance($this->course->id);
        extension::reset_for_tests();
        $this->new_request();
        \core\event\course_viewed::create(['context' => $ctx])->trigger();
        $this->assertSame(1, extension::$configurecalls);
        // More stores in the same request with the same settings: no new push.
        new \logstore_tsdb\log\store(get_log_manager());
        new \logstore_tsdb\log\store(get_log_manager());
        $this->assertSame(1, extension::$configurecalls);

        // A changed setting: pushed, and the events go to the new file.
        $other = $this->dir . '/sink2.jsonl';
        $this->configure(['path' => $other]);
        \core\event\course_viewed::create(['context' => $ctx, 'other' => ['second' => 1]])->trigger();
        $this->assertSame(2, extension::$configurecalls);
        new \logstore_tsdb\log\store(get_log_manager());
        $this->assertSame(2, extension::$configurecalls);
        $moved = $this->file_rows($other);
        $this->assertSame([['second' => 1]], array_map(function($r) {
            return json_decode($r['other'], true);
        }, $moved));
        $this->assertCount(1, $this->read_back());
    }

    /**
     * A configuration the extension refuses (bypassing the settings form, as admin/cli/cfg.php can): no exception and
     * no output on the request path (a debugging message there would stop every redirect of the site), the store says
     * it is not logging, the error names the key, nothing is written.
     */
    public function test_refused_configuration(): void {
        [$rc, $out, $err] = tsdb_test_site::run_cli('admin/cli/cfg.php', ['--component=logstore_tsdb', '--name=batch_size',
            '--set=0']);
        $this->assertSame(0, $rc, $out . $err);
        $this->forget_events_so_far();
        $this->set_user($this->student);
        $this->expectOutputString('');
        \core\event\course_viewed::create(['context' => context_course::instance($this->course->id)])->trigger();
        $store = get_log_manager()->get_readers()['logstore_tsdb'];
        $this->assertFalse($store->is_logging());
        $this->assertStringContainsString('batch_size', (string) extension::config_error());
        clearstatcache();
        $this->assertFalse(is_file($this->sink) && filesize($this->sink) > 0, 'nothing written with a refused config');
        $this->assertCount(1, $this->standard_rows(), 'the standard store still logs');
    }

    /**
     * get_name(), get_description() come from the lang strings; Moodle lists the store among its readers.
     */
    public function test_reader_strings(): void {
        $readers = get_log_manager()->get_readers('\core\log\sql_reader');
        $this->assertArrayHasKey('logstore_tsdb', $readers);
        $store = $readers['logstore_tsdb'];
        $this->assertSame(get_string('pluginname', 'logstore_tsdb'), $store->get_name());
        $this->assertSame(get_string('pluginname_desc', 'logstore_tsdb'), $store->get_description());
        $this->assertTrue($store->is_logging());
    }

    /**
     * Many events in one request all arrive once, in order, with nothing dropped.
     */
    public function test_many_events_arrive_in_order(): void {
        $this->set_user($this->student);
        $ctx = context_course::instance($this->course->id);
        $before = tsdb_stats();
        for ($i = 1; $i <= 2000; $i++) {
            \core\event\course_viewed::create(['context' => $ctx, 'other' => ['i' => $i]])->trigger();
        }
        $rows = $this->read_back();
        $this->assertCount(2000, $rows);
        $this->assertSame(range(1, 2000), array_map(function($r) {
            return json_decode($r['other'], true)['i'];
        }, $rows));
        $this->assertCount(2000, $this->standard_rows());
        $stats = tsdb_stats();
        $this->assertSame(2000, $stats['written'] - $before['written']);
        $this->assertSame($before['dropped'], $stats['dropped']);
    }
}

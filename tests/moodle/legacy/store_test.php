<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * The store with the real extension and the file sink (JSON lines): every test reads back what was written.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/base_testcase.php');
require_once(__DIR__ . '/reference_store.php');

use logstore_tsdb\local\extension;

/**
 * Store tests.
 */
class store_test extends base_testcase {

    /**
     * Triggers a set of varied events as user 5 from the web.
     *
     * @return \core\event\base[]
     */
    protected function trigger_varied_events(): array {
        global $PAGE;
        harness::login(5);
        $PAGE->harnessorigin = 'web';
        $PAGE->harnessip = '2001:db8::42';
        $course = context_course::instance(7);
        $module = context_module::instance(31);
        $events = [
            \core\event\course_viewed::create(['context' => $course, 'courseid' => 7, 'timecreated' => 1700000000,
                'other' => ['coursesectionnumber' => 3, 'nested' => ['a' => [1, 2.5, true, null, 'x"y\\z'], 'é' => 'ünïcödé 🎓']]]),
            \core\event\user_loggedin::create(['objectid' => 5, 'context' => context_system::instance(),
                'other' => ['username' => 'student5']]),
            \mod_quiz\event\attempt_submitted::create(['objectid' => 991, 'context' => $module, 'courseid' => 7,
                'relateduserid' => 9, 'other' => ['quizid' => 12, 'submitterid' => null]]),
            \core\event\course_module_updated::create(['objectid' => 31, 'context' => $module, 'courseid' => 7,
                'other' => null]),
            \mod_forum\event\discussion_viewed::create(['objectid' => 4, 'context' => $module, 'courseid' => 7,
                'other' => []]),
        ];
        foreach ($events as $e) {
            $e->trigger();
        }
        return $events;
    }

    /**
     * The sink holds, column for column, what the standard store's buffered_writer captures for the same events.
     */
    public function test_capture_matches_the_standard_store(): void {
        set_config('enabled_stores', 'logstore_tsdb,logstore_reference', 'tool_log');
        $events = $this->trigger_varied_events();
        $manager = get_log_manager();
        $this->assertTrue($manager->get_readers()['logstore_tsdb']->is_logging());
        $reference = \logstore_reference\log\store::$rows;
        $this->assertCount(count($events), $reference, 'the reference store saw every event');

        $rows = $this->read_back();
        $this->assertCount(count($events), $rows);
        $ids = [];
        foreach ($reference as $i => $ref) {
            // The standard store stores other as JSON text; compare the decoded values.
            $ref['other'] = json_decode($ref['other'], true);
            $this->assert_row($ref, $rows[$i], "event $i ({$ref['eventname']})");
            $ids[] = $rows[$i]['event_id'];
        }
        $this->assertCount(count($events), array_unique($ids), 'every event has its own event_id');
        $this->assertSame('\\core\\event\\course_viewed', $rows[0]['eventname']);
        $this->assertSame('2001:db8::42', $rows[0]['ip']);
        $this->assertSame('web', $rows[0]['origin']);
        $this->assertSame(1700000000, $rows[0]['timecreated']);
        $this->assertSame(9, $rows[2]['relateduserid']);
        $this->assertNull($rows[0]['realuserid']);
    }

    /**
     * Without buffering in PHP: in sync mode the event is in the sink as soon as write() returns.
     */
    public function test_no_buffering_in_php(): void {
        $this->configure(['mode' => 'sync']);
        harness::login(5);
        \core\event\course_viewed::create(['context' => context_course::instance(3), 'courseid' => 3])->trigger();
        clearstatcache();
        $lines = is_file($this->sink) ? file($this->sink, FILE_SKIP_EMPTY_LINES) : [];
        $this->assertCount(1, $lines, 'sync mode: written before write() returned, nothing held back by PHP');
        $this->assertCount(1, $this->read_back());
    }

    /**
     * "Log in as": realuserid is the real user, userid the impersonated one.
     */
    public function test_login_as_records_realuserid(): void {
        harness::login_as(2, 5);
        \core\event\course_viewed::create(['context' => context_course::instance(3), 'courseid' => 3])->trigger();
        harness::login(5);
        \core\event\course_viewed::create(['context' => context_course::instance(3), 'courseid' => 3])->trigger();
        $rows = $this->read_back();
        $this->assertCount(2, $rows);
        $this->assertSame(5, $rows[0]['userid']);
        $this->assertSame(2, $rows[0]['realuserid']);
        $this->assertSame(5, $rows[1]['userid']);
        $this->assertNull($rows[1]['realuserid']);
    }

    /**
     * logguests off: guests and visitors are skipped, as in the standard store; on: they are logged.
     */
    public function test_guest_filtering(): void {
        $this->configure(['logguests' => 0]);
        foreach ([0, 1, 5] as $userid) {
            harness::login($userid);
            \core\event\course_viewed::create(['context' => context_course::instance(3), 'courseid' => 3])->trigger();
        }
        $rows = $this->read_back();
        $this->assertSame([5], array_column($rows, 'userid'), 'only the logged-in, non-guest user is logged');

        $this->new_request();
        $this->configure(['logguests' => 1]);
        foreach ([0, 1] as $userid) {
            harness::login($userid);
            \core\event\course_viewed::create(['context' => context_course::instance(3), 'courseid' => 3])->trigger();
        }
        $rows = $this->read_back();
        $this->assertSame([5, 0, 1], array_column($rows, 'userid'));
    }

    /**
     * Include and exclude lists by event name or component, with wildcards; exclude wins.
     */
    public function test_include_exclude_filters(): void {
        $this->configure(['includeevents' => "mod_forum\n\\core\\event\\course_viewed, *_submitted",
            'excludeevents' => '\\mod_forum\\event\\post_created']);
        harness::login(5);
        $ctx = context_course::instance(3);
        \core\event\course_viewed::create(['context' => $ctx, 'courseid' => 3])->trigger();
        \core\event\user_loggedin::create(['objectid' => 5])->trigger();
        \mod_forum\event\discussion_viewed::create(['objectid' => 1, 'context' => $ctx, 'courseid' => 3])->trigger();
        \mod_forum\event\post_created::create(['objectid' => 2, 'context' => $ctx, 'courseid' => 3])->trigger();
        \mod_quiz\event\attempt_submitted::create(['objectid' => 3, 'context' => $ctx, 'courseid' => 3])->trigger();
        \core\event\course_module_updated::create(['objectid' => 4, 'context' => $ctx, 'courseid' => 3])->trigger();
        $names = array_column($this->read_back(), 'eventname');
        $this->assertSame(['\\core\\event\\course_viewed', '\\mod_forum\\event\\discussion_viewed',
            '\\mod_quiz\\event\\attempt_submitted'], $names);
    }

    /**
     * Exclude only: everything but the excluded component.
     */
    public function test_exclude_component(): void {
        $this->configure(['excludeevents' => 'core']);
        harness::login(5);
        $ctx = context_course::instance(3);
        \core\event\course_viewed::create(['context' => $ctx, 'courseid' => 3])->trigger();
        \mod_forum\event\discussion_viewed::create(['objectid' => 1, 'context' => $ctx, 'courseid' => 3])->trigger();
        $this->assertSame(['\\mod_forum\\event\\discussion_viewed'], array_column($this->read_back(), 'eventname'));
    }

    /**
     * Minimum edulevel.
     */
    public function test_edulevel_filter(): void {
        $trigger = function() {
            harness::login(5);
            $ctx = context_course::instance(3);
            \core\event\user_loggedin::create(['objectid' => 5])->trigger();                                 // Other (0).
            \core\event\course_module_updated::create(['objectid' => 4, 'context' => $ctx, 'courseid' => 3])->trigger(); // 1.
            \core\event\course_viewed::create(['context' => $ctx, 'courseid' => 3])->trigger();               // 2.
        };
        $this->configure(['minedulevel' => 1]);
        $trigger();
        $this->assertSame([1, 2], array_column($this->read_back(), 'edulevel'));

        $this->new_request();
        $this->configure(['minedulevel' => 2]);
        $trigger();
        $this->assertSame([1, 2, 2], array_column($this->read_back(), 'edulevel'));
    }

    /**
     * Anonymous events are kept and flagged by default, dropped when skipanonymous is on.
     */
    public function test_anonymous_events(): void {
        harness::login(5);
        $ctx = context_module::instance(8);
        \mod_forum\event\post_created::create(['objectid' => 2, 'context' => $ctx, 'courseid' => 3, 'anonymous' => 1])->trigger();
        \mod_forum\event\post_created::create(['objectid' => 3, 'context' => $ctx, 'courseid' => 3])->trigger();
        $rows = $this->read_back();
        $this->assertSame([1, 0], array_column($rows, 'anonymous'));
        $this->assertSame([5, 5], array_column($rows, 'userid'), 'kept as the standard store keeps it, flagged');

        $this->new_request();
        $this->configure(['skipanonymous' => 1]);
        \mod_forum\event\post_created::create(['objectid' => 4, 'context' => $ctx, 'courseid' => 3, 'anonymous' => 1])->trigger();
        \mod_forum\event\post_created::create(['objectid' => 5, 'context' => $ctx, 'courseid' => 3])->trigger();
        $this->assertSame([2, 3, 5], array_column($this->read_back(), 'objectid'));
    }

    /**
     * logip off stores an empty IP.
     */
    public function test_logip_off(): void {
        global $PAGE;
        $this->configure(['logip' => 0]);
        harness::login(5);
        $PAGE->harnessip = '192.0.2.7';
        \core\event\course_viewed::create(['context' => context_course::instance(3), 'courseid' => 3])->trigger();
        $this->assertSame([''], array_column($this->read_back(), 'ip'));
    }

    /**
     * The configuration is pushed once per request and again only when it changed; the change takes effect.
     */
    public function test_config_pushed_only_when_changed(): void {
        global $PAGE;
        harness::login(5);
        $manager = get_log_manager();
        \core\event\course_viewed::create(['context' => context_course::instance(3), 'courseid' => 3])->trigger();
        $this->assertSame(1, extension::$configurecalls);
        // More stores in the same request with the same settings: no new push.
        new \logstore_tsdb\log\store($manager);
        new \logstore_tsdb\log\store($manager);
        $this->assertSame(1, extension::$configurecalls);

        // A changed setting: pushed, and the events go to the new file.
        $other = $this->sink . '.2';
        $this->configure(['path' => $other]);
        $this->new_request();
        \core\event\course_viewed::create(['context' => context_course::instance(4), 'courseid' => 4])->trigger();
        $this->assertSame(2, extension::$configurecalls);
        new \logstore_tsdb\log\store(get_log_manager());
        $this->assertSame(2, extension::$configurecalls);
        $moved = $this->other_file_rows($other);
        @unlink($other);
        $this->assertSame([4], array_column($moved, 'courseid'));
        $this->assertSame([3], array_column($this->read_back(), 'courseid'));
    }

    /**
     * Flushes the extension and returns the rows of a JSON lines file other than this test's sink.
     *
     * @param string $file
     * @return array[]
     */
    protected function other_file_rows(string $file): array {
        $this->assertSame(0, tsdb_flush(10000));
        clearstatcache();
        $this->assertFileExists($file);
        return array_map(function($l) {
            return json_decode($l, true);
        }, file($file, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES));
    }

    /**
     * With configsource = phpini the plugin hands none of its settings to the extension: tsdb_configure([]) gives every
     * key its tsdb.* value, so a process that wrote with this page's settings writes where php.ini says once the source
     * is switched, and read_plugin_config() reports that same sink (the readers, privacy and tasks use it).
     */
    public function test_phpini_config_source_is_not_overridden(): void {
        $inisink = $this->sink . '.ini';
        harness::login(5);
        \core\event\course_viewed::create(['context' => context_course::instance(3), 'courseid' => 3])->trigger();
        $this->assertSame(1, extension::$configurecalls, 'the page settings were pushed');

        // php.ini of this process (PHP_INI_ALL: the pool's php_value does the same); the page settings stay as they were.
        $ini = ['tsdb.backend' => 'file', 'tsdb.format' => 'json', 'tsdb.path' => $inisink];
        foreach ($ini as $name => $value) {
            ini_set($name, $value);
        }
        try {
            $this->configure(['configsource' => 'phpini']);
            $this->new_request();
            \core\event\course_viewed::create(['context' => context_course::instance(4), 'courseid' => 4])->trigger();
            $this->assertTrue(get_log_manager()->get_readers()['logstore_tsdb']->is_logging());
            $this->assertSame(2, extension::$configurecalls, 'one call, with no key of the page');
            new \logstore_tsdb\log\store(get_log_manager());
            $this->assertSame(2, extension::$configurecalls, 'once per request');

            $cfg = \logstore_tsdb\log\store::read_plugin_config();
            $this->assertSame(['file', 'json', $inisink], [$cfg->backend, $cfg->format, $cfg->path]);
            $this->assertSame($this->sink, get_config('logstore_tsdb', 'path'), 'the page setting is kept, not used');
            $written = $this->other_file_rows($inisink);
            $this->assertSame([4], array_column($written, 'courseid'));
            $this->assertSame([3], array_column($this->read_back(), 'courseid'));
        } finally {
            foreach (array_keys($ini) as $name) {
                ini_restore($name);
            }
            @unlink($inisink);
        }
    }

    /**
     * A configuration the extension refuses: no exception, not logging, the error names the key.
     */
    public function test_refused_configuration(): void {
        // Bypass the settings form (which would refuse it) as a CLI cfg.php would.
        $this->configure(['batch_size' => 0]);
        harness::login(5);
        \core\event\course_viewed::create(['context' => context_course::instance(3), 'courseid' => 3])->trigger();
        $store = get_log_manager()->get_readers()['logstore_tsdb'];
        $this->assertFalse($store->is_logging());
        $this->assertStringContainsString('batch_size', (string) extension::config_error());
        clearstatcache();
        $this->assertFalse(is_file($this->sink) && filesize($this->sink) > 0, 'nothing written with a refused config');
    }

    /**
     * An object inside `other` (a plugin bug) does not lose the event: it is stored JSON-encoded.
     */
    public function test_object_in_other_is_encoded(): void {
        harness::login(5);
        $other = ['obj' => (object) ['a' => 1], 'n' => 2];
        \core\event\course_viewed::create(['context' => context_course::instance(3), 'courseid' => 3, 'other' => $other])
            ->trigger();
        $rows = $this->read_back();
        $this->assertCount(1, $rows);
        $this->assertSame(['obj' => ['a' => 1], 'n' => 2], json_decode($rows[0]['other'], true));
    }

    /**
     * get_name(), get_description() come from the lang strings.
     */
    public function test_reader_strings(): void {
        $store = new \logstore_tsdb\log\store(get_log_manager());
        $this->assertSame('Time series database log store', $store->get_name());
        $this->assertStringContainsString('InfluxDB', $store->get_description());
        $this->assertTrue($store->is_logging());
    }

    /**
     * Many events in one request all arrive, in order.
     */
    public function test_many_events_arrive_in_order(): void {
        harness::login(5);
        $ctx = context_course::instance(3);
        for ($i = 1; $i <= 2000; $i++) {
            \core\event\course_viewed::create(['context' => $ctx, 'courseid' => 3, 'other' => ['i' => $i]])->trigger();
        }
        $rows = $this->read_back();
        $this->assertCount(2000, $rows);
        $this->assertSame(range(1, 2000), array_map(function($r) {
            return json_decode($r['other'], true)['i'];
        }, $rows));
        $stats = tsdb_stats();
        $this->assertGreaterThanOrEqual(2000, $stats['written']);
        $this->assertSame(0, $stats['dropped']);
    }
}

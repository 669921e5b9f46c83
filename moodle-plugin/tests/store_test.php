<?php
// This file is part of Moodle - http://moodle.org/
//
// Moodle is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// Moodle is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <http://www.gnu.org/licenses/>.

namespace logstore_tsdb;

/**
 * Tests of the store inside a Moodle site, with the tsdb extension and its file backend (JSON lines).
 *
 * Run: vendor/bin/phpunit --testsuite logstore_tsdb_testsuite (the PHP running PHPUnit must load tsdb.so; otherwise
 * skipped).
 *
 * @package    logstore_tsdb
 * @category   test
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \logstore_tsdb\log\store
 */
final class store_test extends \advanced_testcase {

    /** @var string JSON lines file of this test. */
    protected $sink;

    /**
     * Enables the store with the file backend in a request directory.
     */
    protected function setUp(): void {
        parent::setUp();
        $this->resetAfterTest();
        // The log manager observes events with internal => false: inside the test's rollback transaction (PostgreSQL,
        // MSSQL) no event would reach the store until a commit that never comes. Messages wait for it too.
        $this->preventResetByRollback();
        if (!extension_loaded('tsdb')) {
            $this->markTestSkipped('The tsdb PHP extension is not loaded in this PHP.');
        }
        $this->sink = make_request_directory() . '/events.jsonl';
        set_config('enabled_stores', 'logstore_tsdb', 'tool_log');
        set_config('backend', 'file', 'logstore_tsdb');
        set_config('format', 'json', 'logstore_tsdb');
        set_config('path', $this->sink, 'logstore_tsdb');
        set_config('mode', 'async', 'logstore_tsdb');
        // A spool of this test's own: a spooled batch is replayed into whatever sink has its spool_dir, so a spool
        // shared by the tests could deliver one test's events into another's file.
        set_config('spool_dir', make_request_directory() . '/spool', 'logstore_tsdb');
        \logstore_tsdb\local\extension::reset_for_tests();
        get_log_manager(true);
    }

    /**
     * Flushes and reads the sink.
     *
     * @return array[]
     */
    protected function read_back(): array {
        $this->assertSame(0, tsdb_flush(10000));
        clearstatcache();
        if (!is_file($this->sink)) {
            return [];
        }
        $rows = [];
        foreach (file($this->sink, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) as $line) {
            $rows[] = json_decode($line, true);
        }
        return $rows;
    }

    /**
     * Rows of our events only (the test site may trigger others, e.g. on login).
     *
     * @param string $eventname
     * @return array[]
     */
    protected function rows_of(string $eventname): array {
        return array_values(array_filter($this->read_back(), function($r) use ($eventname) {
            return $r['eventname'] === $eventname;
        }));
    }

    /**
     * A course_viewed event arrives with every column the standard store captures.
     */
    public function test_event_is_written_with_every_column(): void {
        $course = $this->getDataGenerator()->create_course();
        $user = $this->getDataGenerator()->create_user();
        $this->setUser($user);
        $context = \context_course::instance($course->id);
        $event = \core\event\course_viewed::create(['context' => $context]);
        $data = $event->get_data();
        $event->trigger();
        $rows = $this->rows_of('\core\event\course_viewed');
        $this->assertCount(1, $rows);
        $row = $rows[0];
        foreach (['eventname', 'component', 'action', 'target', 'objecttable', 'crud'] as $col) {
            $this->assertSame($data[$col] === null ? null : (string) $data[$col], $row[$col], $col);
        }
        foreach (['objectid', 'edulevel', 'contextid', 'contextlevel', 'contextinstanceid', 'userid', 'courseid',
                'relateduserid', 'anonymous', 'timecreated'] as $col) {
            $this->assertSame($data[$col] === null ? null : (int) $data[$col], $row[$col], $col);
        }
        $this->assertSame($data['other'], $row['other'] === null ? null : json_decode($row['other'], true));
        $this->assertSame('cli', $row['origin']);
        $this->assertEmpty($row['ip'], 'no client address in CLI');
        $this->assertNull($row['realuserid']);
        $this->assertSame((int) $user->id, $row['userid']);
        $this->assertSame((int) $course->id, $row['courseid']);
        $this->assertTrue(get_log_manager()->get_readers()['logstore_tsdb']->is_logging());
    }

    /**
     * Log in as: realuserid is the administrator.
     */
    public function test_login_as_records_realuserid(): void {
        global $USER;
        $course = $this->getDataGenerator()->create_course();
        $user = $this->getDataGenerator()->create_user();
        $this->setAdminUser();
        $adminid = (int) $USER->id;
        \core\session\manager::loginas($user->id, \context_system::instance());
        \core\event\course_viewed::create(['context' => \context_course::instance($course->id)])->trigger();
        $rows = $this->rows_of('\core\event\course_viewed');
        $this->assertCount(1, $rows);
        $this->assertSame((int) $user->id, $rows[0]['userid']);
        $this->assertSame($adminid, $rows[0]['realuserid']);
    }

    /**
     * Guests are skipped when logguests is off, logged when it is on.
     */
    public function test_guests(): void {
        $course = $this->getDataGenerator()->create_course();
        $context = \context_course::instance($course->id);
        set_config('logguests', 0, 'logstore_tsdb');
        get_log_manager(true);
        $this->setGuestUser();
        \core\event\course_viewed::create(['context' => $context])->trigger();
        $this->setUser(null);
        \core\event\course_viewed::create(['context' => $context])->trigger();
        $user = $this->getDataGenerator()->create_user();
        $this->setUser($user);
        \core\event\course_viewed::create(['context' => $context])->trigger(); // A real user: kept.
        $rows = $this->rows_of('\core\event\course_viewed');
        $this->assertCount(1, $rows);
        $this->assertSame((int) $user->id, $rows[0]['userid']);

        set_config('logguests', 1, 'logstore_tsdb');
        get_log_manager(true);
        $this->setGuestUser();
        \core\event\course_viewed::create(['context' => $context])->trigger();
        $this->setUser(null);
        \core\event\course_viewed::create(['context' => $context])->trigger();
        $rows = $this->rows_of('\core\event\course_viewed');
        $this->assertCount(3, $rows);
        $this->assertEqualsCanonicalizing([(int) $user->id, (int) guest_user()->id, 0], array_column($rows, 'userid'));
    }

    /**
     * Include / exclude patterns and the minimum edulevel.
     */
    public function test_filters(): void {
        $course = $this->getDataGenerator()->create_course();
        $user = $this->getDataGenerator()->create_user();
        $this->setUser($user);
        $context = \context_course::instance($course->id);
        set_config('excludeevents', '*_viewed', 'logstore_tsdb');
        get_log_manager(true);
        \core\event\course_viewed::create(['context' => $context])->trigger();
        $this->assertCount(0, $this->rows_of('\core\event\course_viewed'));

        set_config('excludeevents', '', 'logstore_tsdb');
        set_config('minedulevel', 2, 'logstore_tsdb');
        get_log_manager(true);
        \core\event\course_viewed::create(['context' => $context])->trigger(); // Participating: kept.
        \core\event\user_loggedin::create(['userid' => $user->id, 'objectid' => $user->id,
            'other' => ['username' => $user->username]])->trigger(); // Edulevel other: skipped.
        $this->assertCount(1, $this->rows_of('\core\event\course_viewed'));
        $this->assertCount(0, $this->rows_of('\core\event\user_loggedin'));
    }

    /**
     * The configuration is pushed once, and again only after a change.
     */
    public function test_config_pushed_only_when_changed(): void {
        $manager = get_log_manager();
        \logstore_tsdb\local\extension::reset_for_tests();
        $this->assertTrue((new \logstore_tsdb\log\store($manager))->is_logging());
        $this->assertTrue((new \logstore_tsdb\log\store($manager))->is_logging());
        $this->assertSame(1, \logstore_tsdb\local\extension::$configurecalls);
        set_config('batch_size', 1234, 'logstore_tsdb');
        $this->assertTrue((new \logstore_tsdb\log\store($manager))->is_logging());
        $this->assertSame(2, \logstore_tsdb\local\extension::$configurecalls);
        $this->assertNull(\logstore_tsdb\local\extension::config_error());
    }

    /**
     * The spool is handed to the extension in async mode too, by default under the data directory; an empty
     * spool_dir turns it off.
     */
    public function test_spool_in_async_mode(): void {
        global $CFG;
        unset_config('spool_dir', 'logstore_tsdb');
        $cfg = \logstore_tsdb\log\store::read_plugin_config();
        $this->assertSame('async', $cfg->mode);
        $config = \logstore_tsdb\local\settings_definition::extension_config($cfg);
        $this->assertSame($CFG->dataroot . '/logstore_tsdb/spool', $config['spool_dir']);
        tsdb_configure($config);
        $this->assertSame('async', tsdb_stats()['mode']);
        set_config('spool_dir', '', 'logstore_tsdb');
        $config = \logstore_tsdb\local\settings_definition::extension_config(\logstore_tsdb\log\store::read_plugin_config());
        $this->assertSame('', $config['spool_dir']);
    }

    /**
     * Configuration source = php.ini: the extension writes where the tsdb.* values say, and read_plugin_config() (used
     * by the readers, privacy, the tasks and the status page) reports that same sink, not this page's settings.
     */
    public function test_phpini_config_source(): void {
        $inisink = make_request_directory() . '/ini-events.jsonl';
        $ini = ['tsdb.backend' => 'file', 'tsdb.format' => 'json', 'tsdb.path' => $inisink];
        foreach ($ini as $name => $value) {
            ini_set($name, $value);
        }
        try {
            set_config('configsource', 'phpini', 'logstore_tsdb');
            \logstore_tsdb\local\extension::reset_for_tests();
            get_log_manager(true);
            $cfg = \logstore_tsdb\log\store::read_plugin_config();
            $this->assertSame(['file', 'json', $inisink], [$cfg->backend, $cfg->format, $cfg->path]);
            $course = $this->getDataGenerator()->create_course();
            \core\event\course_viewed::create(['context' => \context_course::instance($course->id)])->trigger();
            $this->assertSame(0, tsdb_flush(10000));
            $this->assertCount(0, $this->rows_of('\core\event\course_viewed'), 'nothing in the page\'s sink');
            $rows = array_map(function($line) {
                return json_decode($line, true);
            }, file($inisink, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES));
            $viewed = array_values(array_filter($rows, function($r) {
                return $r['eventname'] === '\core\event\course_viewed';
            }));
            $this->assertCount(1, $viewed);
            $this->assertEquals($course->id, $viewed[0]['courseid']);
        } finally {
            foreach (array_keys($ini) as $name) {
                ini_restore($name);
            }
        }
    }

    /**
     * The parameters that carry the configuration (password, token) are #[\SensitiveParameter], as tsdb_configure()'s
     * array is: a stack trace with arguments shows them redacted.
     */
    public function test_secret_parameters_are_sensitive(): void {
        $params = [
            [\logstore_tsdb\local\extension::class, 'ensure_configured', 'pluginconfig'],
            [\logstore_tsdb\local\extension::class, 'push', 'config'],
            [\logstore_tsdb\local\extension::class, 'supports_mode', 'pluginconfig'],
            [\logstore_tsdb\local\settings_definition::class, 'extension_config', 'pluginconfig'],
            [\logstore_tsdb\local\pgdb::class, 'from_config', 'cfg'],
            [\logstore_tsdb\local\pgdb::class, '__construct', 'params'],
            [\logstore_tsdb\local\influx_client::class, '__construct', 'cfg'],
            [\logstore_tsdb\local\influx_client::class, 'request', 'params'],
            [\logstore_tsdb\local\connection_tester::class, 'run', 'cfg'],
            [\logstore_tsdb\admin\setting_secret::class, 'write_setting', 'data'],
        ];
        foreach ($params as [$class, $method, $name]) {
            $found = false;
            foreach ((new \ReflectionMethod($class, $method))->getParameters() as $param) {
                if ($param->getName() === $name) {
                    $found = true;
                    $this->assertCount(1, $param->getAttributes(\SensitiveParameter::class), "$class::$method \$$name");
                }
            }
            $this->assertTrue($found, "$class::$method has a parameter \$$name");
        }
    }

    /**
     * The health check notifies the administrators after repeated failures.
     */
    public function test_health_check_notifies(): void {
        $this->setAdminUser();
        set_config('healththreshold', 2, 'logstore_tsdb');
        // The check reports each failing round with mtrace(), as a scheduled task does.
        $this->expectOutputRegex('/failing check 1: .*failing check 2: /s');
        $sink = $this->redirectMessages();
        $now = time();
        \logstore_tsdb\local\metrics::record('web1', 11, ['accepted' => 5, 'written' => 0, 'failed' => 5], $now);
        $this->assertSame('failing', \logstore_tsdb\local\health::check($now));
        \logstore_tsdb\local\metrics::record('web1', 12, ['accepted' => 5, 'written' => 0, 'failed' => 5], $now + 300);
        $this->assertSame('notified', \logstore_tsdb\local\health::check($now + 300));
        $messages = $sink->get_messages();
        $this->assertCount(count(get_admins()), $messages);
        $this->assertSame('logstore_tsdb', $messages[0]->component);
        $this->assertSame('healthalert', $messages[0]->eventtype);
        $this->assertEquals(get_admin()->id, $messages[0]->useridto);
        // Notified once: a third failing round sends nothing more.
        $sink->clear();
        $this->assertSame('failing', \logstore_tsdb\local\health::check($now + 360));
        $this->assertCount(0, $sink->get_messages());
    }
}

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
 * The store as a log reader inside a Moodle site on PostgreSQL: real events are logged by both the standard store and
 * this store (postgres backend, a table of its own in the site's database), then read back through both readers with
 * the fragments report_log and report_loglive use; the answers must be the same events.
 *
 * Run: vendor/bin/phpunit --testsuite logstore_tsdb_testsuite (needs the tsdb extension in the PHP running PHPUnit and a
 * PostgreSQL site database; otherwise skipped).
 *
 * @package    logstore_tsdb
 * @category   test
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \logstore_tsdb\log\store
 * @covers     \logstore_tsdb\local\reader\pg_reader
 */
final class reader_test extends \advanced_testcase {

    /** @var string The extension's table of this test (outside Moodle's reset: dropped in tearDown). */
    protected $table;

    /**
     * Both stores enabled; this one writes to a table of its own in the site's database.
     */
    protected function setUp(): void {
        global $CFG;
        parent::setUp();
        $this->resetAfterTest();
        // The log manager observes events with internal => false: inside the test's rollback transaction (always there
        // on PostgreSQL) neither store would get an event until a commit that never comes.
        $this->preventResetByRollback();
        if (!extension_loaded('tsdb')) {
            $this->markTestSkipped('The tsdb PHP extension is not loaded in this PHP.');
        }
        if ($CFG->dbtype !== 'pgsql') {
            $this->markTestSkipped('The site database is not PostgreSQL.');
        }
        $this->table = 'logstore_tsdb_phpunit_' . getmypid();
        set_config('enabled_stores', 'logstore_standard,logstore_tsdb', 'tool_log');
        set_config('buffersize', 0, 'logstore_standard');
        $settings = ['backend' => 'postgres', 'host' => $CFG->dbhost ?: '127.0.0.1',
            'port' => (int) ($CFG->dboptions['dbport'] ?? 0) ?: 5432, 'dbname' => $CFG->dbname, 'user' => $CFG->dbuser,
            'password' => $CFG->dbpass, 'schema' => 'public', 'table' => $this->table, 'mode' => 'async',
            'spool_dir' => make_request_directory() . '/spool'];
        foreach ($settings as $k => $v) {
            set_config($k, $v, 'logstore_tsdb');
        }
        \logstore_tsdb\local\extension::reset_for_tests();
        get_log_manager(true);
    }

    /**
     * Drops the extension's table.
     */
    protected function tearDown(): void {
        if ($this->table && extension_loaded('tsdb')) {
            tsdb_flush(10000);
            $db = \logstore_tsdb\local\pgdb::from_config(\logstore_tsdb\log\store::read_plugin_config());
            foreach (['', '_ledger', '_schema'] as $suffix) {
                $db->execute('DROP TABLE IF EXISTS ' . \logstore_tsdb\local\pgdb::quote_identifier($this->table . $suffix)
                    . ' CASCADE');
            }
            $db->close();
        }
        parent::tearDown();
    }

    /**
     * An event's data and extras, comparable between the stores.
     *
     * @param \core\event\base $event
     * @return string
     */
    protected static function key(\core\event\base $event): string {
        $data = $event->get_data();
        ksort($data);
        array_walk_recursive($data, function(&$v) {
            $v = $v === null ? null : (string) $v;
        });
        $extra = $event->get_logextra();
        return json_encode([get_class($event), $data, $extra['origin'], $extra['ip'], $extra['realuserid']]);
    }

    /**
     * Course views of several users in two courses: the live logs and the logs report give the same events from both
     * stores, with the same counts.
     */
    public function test_same_answers_as_the_standard_store(): void {
        $gen = $this->getDataGenerator();
        $c1 = $gen->create_course();
        $c2 = $gen->create_course();
        $since = time() - 1;
        $users = [];
        for ($i = 0; $i < 4; $i++) {
            $users[] = $gen->create_user();
        }
        foreach ($users as $i => $u) {
            $this->setUser($u);
            foreach ([$c1, $c2, $c1] as $course) {
                \core\event\course_viewed::create(['context' => \context_course::instance($course->id)])->trigger();
            }
        }
        $readers = get_log_manager()->get_readers('\core\log\sql_reader');
        $this->assertArrayHasKey('logstore_tsdb', $readers);
        $this->assertArrayHasKey('logstore_standard', $readers);
        $readers['logstore_standard']->flush();
        $this->assertSame(0, tsdb_flush(15000), 'the extension wrote every event');

        $cases = [
            ['courseid = :courseid AND timecreated > :date AND anonymous = :anon',
                ['courseid' => $c1->id, 'date' => $since, 'anon' => 0]],
            ['courseid = :courseid AND userid = :userid AND anonymous = 0', ['courseid' => $c2->id, 'userid' => $users[1]->id]],
            ['courseid IN (?, ?) AND crud = ? AND edulevel = ?', [$c1->id, $c2->id, 'r', 2]],
        ];
        foreach ($cases as [$where, $params]) {
            $want = $readers['logstore_standard']->get_events_select($where, $params, 'timecreated DESC', 0, 0);
            $got = $readers['logstore_tsdb']->get_events_select($where, $params, 'timecreated DESC', 0, 0);
            $this->assertNotEmpty($want, $where);
            $w = array_map([self::class, 'key'], array_values($want));
            $g = array_map([self::class, 'key'], array_values($got));
            sort($w);
            sort($g);
            $this->assertSame($w, $g, $where);
            $this->assertSame($readers['logstore_standard']->get_events_select_count($where, $params),
                $readers['logstore_tsdb']->get_events_select_count($where, $params), $where);
            $this->assertCount(count($want),
                iterator_to_array($readers['logstore_tsdb']->get_events_select_iterator($where, $params, 'timecreated DESC', 0,
                    0), false));
        }
    }
}

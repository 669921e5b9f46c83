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

namespace logstore_tsdb\privacy;

use core_privacy\local\metadata\collection;
use core_privacy\local\request\approved_contextlist;
use core_privacy\local\request\approved_userlist;
use core_privacy\local\request\userlist;
use core_privacy\local\request\writer;

/**
 * Privacy provider tests inside a Moodle site (file backend, JSON lines).
 *
 * @package    logstore_tsdb
 * @category   test
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \logstore_tsdb\privacy\provider
 */
final class provider_test extends \core_privacy\tests\provider_testcase {

    /**
     * The metadata.
     */
    public function test_get_metadata(): void {
        $items = provider::get_metadata(new collection('logstore_tsdb'))->get_collection();
        $this->assertCount(2, $items);
        $this->assertInstanceOf(\core_privacy\local\metadata\types\external_location::class, $items[0]);
        $this->assertArrayHasKey('userid', $items[0]->get_privacy_fields());
        $this->assertArrayHasKey('ip', $items[0]->get_privacy_fields());
        $this->assertInstanceOf(\core_privacy\local\metadata\types\database_table::class, $items[1]);
    }

    /**
     * Find, export and delete on the file backend.
     */
    public function test_find_export_delete(): void {
        $this->resetAfterTest();
        if (!extension_loaded('tsdb')) {
            $this->markTestSkipped('The tsdb PHP extension is not loaded in this PHP.');
        }
        $sink = make_request_directory() . '/events.jsonl';
        set_config('enabled_stores', 'logstore_tsdb', 'tool_log');
        set_config('backend', 'file', 'logstore_tsdb');
        set_config('format', 'json', 'logstore_tsdb');
        set_config('path', $sink, 'logstore_tsdb');
        \logstore_tsdb\local\extension::reset_for_tests();
        get_log_manager(true);

        $course1 = $this->getDataGenerator()->create_course();
        $course2 = $this->getDataGenerator()->create_course();
        $u1 = $this->getDataGenerator()->create_user();
        $u2 = $this->getDataGenerator()->create_user();
        $c1 = \context_course::instance($course1->id);
        $c2 = \context_course::instance($course2->id);
        $this->setUser($u1);
        \core\event\course_viewed::create(['context' => $c1])->trigger();
        \core\event\course_viewed::create(['context' => $c2])->trigger();
        $this->setUser($u2);
        \core\event\course_viewed::create(['context' => $c1])->trigger();
        $this->assertSame(0, tsdb_flush(10000));

        $contextlist = new \core_privacy\local\request\contextlist();
        provider::add_contexts_for_userid($contextlist, $u1->id);
        $ids = $contextlist->get_contextids();
        sort($ids);
        $expected = [$c1->id, $c2->id];
        sort($expected);
        $this->assertEquals($expected, $ids);

        $userlist = new userlist($c1, 'logstore_tsdb');
        provider::add_userids_for_context($userlist);
        $this->assertEqualsCanonicalizing([$u1->id, $u2->id], $userlist->get_userids());

        provider::export_user_data(new approved_contextlist($u1, 'logstore_tsdb', [$c1->id]));
        $data = writer::with_context($c1)->get_data([get_string('privacy:path:logs', 'logstore_tsdb'),
            get_string('pluginname', 'logstore_tsdb')]);
        $this->assertCount(1, $data->logs);
        $this->assertSame('\core\event\course_viewed', $data->logs[0]['eventname']);

        provider::delete_data_for_user(new approved_contextlist($u1, 'logstore_tsdb', [$c1->id]));
        $contextlist = new \core_privacy\local\request\contextlist();
        provider::add_contexts_for_userid($contextlist, $u1->id);
        $this->assertEquals([$c2->id], array_values($contextlist->get_contextids()));

        provider::delete_data_for_userlist(new approved_userlist($c1, 'logstore_tsdb', [$u2->id]));
        $userlist = new userlist($c1, 'logstore_tsdb');
        provider::add_userids_for_context($userlist);
        $this->assertSame([], $userlist->get_userids());

        provider::delete_data_for_all_users_in_context($c2);
        $contextlist = new \core_privacy\local\request\contextlist();
        provider::add_contexts_for_userid($contextlist, $u1->id);
        $this->assertCount(0, $contextlist);
    }
}

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
use core_privacy\local\request\contextlist;
use core_privacy\local\request\transform;
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
        $this->assertSame('tsdb', $items[0]->get_name());
        foreach (['eventname', 'component', 'userid', 'relateduserid', 'realuserid', 'contextid', 'ip', 'other'] as $field) {
            $this->assertArrayHasKey($field, $items[0]->get_privacy_fields());
        }
        $this->assertInstanceOf(\core_privacy\local\metadata\types\database_table::class, $items[1]);
        $this->assertSame(\logstore_tsdb\local\pseudonym::TABLE, $items[1]->get_name());
        // Every string the privacy registry shows exists.
        $strings = get_string_manager();
        foreach ($items as $item) {
            $this->assertTrue($strings->string_exists($item->get_summary(), 'logstore_tsdb'), $item->get_summary());
            foreach ($item->get_privacy_fields() as $field => $identifier) {
                $this->assertTrue($strings->string_exists($identifier, 'logstore_tsdb'), "$field: $identifier");
            }
        }
    }

    /**
     * Sends this store's events to a JSON lines file of this test (file backend), the store alone.
     *
     * Call it after creating the users and courses, so that the file holds only the events the test triggers.
     */
    protected function enable_store(): void {
        set_config('enabled_stores', 'logstore_tsdb', 'tool_log');
        set_config('backend', 'file', 'logstore_tsdb');
        set_config('format', 'json', 'logstore_tsdb');
        set_config('path', make_request_directory() . '/events.jsonl', 'logstore_tsdb');
        set_config('mode', 'async', 'logstore_tsdb');
        // A spool of this test's own: a spooled batch is replayed into whatever sink has its spool_dir.
        set_config('spool_dir', make_request_directory() . '/spool', 'logstore_tsdb');
        \logstore_tsdb\local\extension::reset_for_tests();
        get_log_manager(true);
    }

    /**
     * Sorted context ids where the provider finds the user.
     *
     * @param \stdClass $user
     * @return int[]
     */
    protected function contextids_of(\stdClass $user): array {
        $contextlist = new contextlist();
        provider::add_contexts_for_userid($contextlist, $user->id);
        $ids = array_map('intval', $contextlist->get_contextids());
        sort($ids);
        return $ids;
    }

    /**
     * Sorted user ids the provider finds in a context.
     *
     * @param \context $context
     * @return int[]
     */
    protected function userids_in(\context $context): array {
        $userlist = new userlist($context, 'logstore_tsdb');
        provider::add_userids_for_context($userlist);
        $ids = array_map('intval', $userlist->get_userids());
        sort($ids);
        return $ids;
    }

    /**
     * Sorted ids.
     *
     * @param mixed ...$ids
     * @return int[]
     */
    protected static function ids(...$ids): array {
        $ids = array_map('intval', $ids);
        sort($ids);
        return $ids;
    }

    /**
     * Users as author (userid), related user (relateduserid) and real user of a "log in as" (realuserid): each is found
     * in the right contexts, exported, and deleted by the rules of the standard store.
     */
    public function test_find_export_delete(): void {
        if (!extension_loaded('tsdb')) {
            $this->markTestSkipped('The tsdb PHP extension is not loaded in this PHP.');
        }
        $this->resetAfterTest();
        // The log manager observes events with internal => false: inside the test's rollback transaction (PostgreSQL,
        // MSSQL) no event would reach the store until a commit that never comes.
        $this->preventResetByRollback();
        $admin = get_admin();
        $gen = $this->getDataGenerator();
        $course1 = $gen->create_course();
        $course2 = $gen->create_course();
        $u1 = $gen->create_user();
        $u2 = $gen->create_user();
        $u3 = $gen->create_user();
        $u4 = $gen->create_user();
        $sys = \context_system::instance();
        $c1 = \context_course::instance($course1->id);
        $c2 = \context_course::instance($course2->id);
        $this->enable_store();

        // U1 is the author in both courses.
        $this->setUser($u1);
        \core\event\course_viewed::create(['context' => $c1])->trigger();
        \core\event\course_viewed::create(['context' => $c2])->trigger();
        // U2 is the author in course 1, U3 the related user of that event.
        $this->setUser($u2);
        \core\event\course_viewed::create(['context' => $c1, 'relateduserid' => $u3->id])->trigger();
        // The administrator, logged in as U4, acts in course 2 (user_loggedinas is logged in the system context).
        $this->setAdminUser();
        \core\session\manager::loginas($u4->id, $sys);
        \core\event\course_viewed::create(['context' => $c2])->trigger();
        \core\session\manager::init_empty_session();
        $this->assertSame(0, tsdb_flush(10000));

        $this->assertSame(self::ids($c1->id, $c2->id), $this->contextids_of($u1));
        $this->assertSame(self::ids($c1->id), $this->contextids_of($u2));
        $this->assertSame(self::ids($c1->id), $this->contextids_of($u3));
        $this->assertSame(self::ids($sys->id, $c2->id), $this->contextids_of($u4));
        $this->assertSame(self::ids($sys->id, $c2->id), $this->contextids_of($admin));
        $this->assertSame(self::ids($u1->id, $u2->id, $u3->id), $this->userids_in($c1));
        $this->assertSame(self::ids($u1->id, $u4->id, $admin->id), $this->userids_in($c2));

        // Export: only the approved contexts, only the user's own events.
        $path = [get_string('privacy:path:logs', 'tool_log'), get_string('pluginname', 'logstore_tsdb')];
        provider::export_user_data(new approved_contextlist($u1, 'logstore_tsdb', [$c1->id]));
        $data = writer::with_context($c1)->get_data($path);
        $this->assertCount(1, $data->logs);
        $this->assertSame(\core\event\course_viewed::get_name(), $data->logs[0]['name']);
        $this->assertEquals(transform::yesno(true), $data->logs[0]['author_of_the_action_was_you']);
        $this->assertEmpty(writer::with_context($c2)->get_data($path), 'course 2 was not approved');

        writer::reset();
        provider::export_user_data(new approved_contextlist($u3, 'logstore_tsdb', [$c1->id, $c2->id]));
        $data = writer::with_context($c1)->get_data($path);
        $this->assertCount(1, $data->logs);
        $this->assertEquals(transform::yesno(false), $data->logs[0]['author_of_the_action_was_you']);
        $this->assertEquals(transform::yesno(true), $data->logs[0]['related_user_was_you']);
        $this->assertEmpty(writer::with_context($c2)->get_data($path));

        writer::reset();
        provider::export_user_data(new approved_contextlist($admin, 'logstore_tsdb', [$c2->id]));
        $data = writer::with_context($c2)->get_data($path);
        $this->assertCount(1, $data->logs);
        $this->assertEquals(transform::yesno(false), $data->logs[0]['author_of_the_action_was_you']);
        $this->assertEquals(transform::yesno(true), $data->logs[0]['masquerading_user_was_you']);

        // Delete one user's events in one context: the author's rows there, nobody else's.
        provider::delete_data_for_user(new approved_contextlist($u1, 'logstore_tsdb', [$c1->id]));
        $this->assertSame(self::ids($c2->id), $this->contextids_of($u1));
        $this->assertSame(self::ids($u2->id, $u3->id), $this->userids_in($c1));

        // Delete a list of users in one context: U2's event goes, and with it U3's part in it.
        provider::delete_data_for_userlist(new approved_userlist($c1, 'logstore_tsdb', [$u2->id]));
        $this->assertSame([], $this->userids_in($c1));
        $this->assertSame([], $this->contextids_of($u3));
        $this->assertSame(self::ids($u1->id, $u4->id, $admin->id), $this->userids_in($c2));

        // Delete a whole context: course 2 is empty, the system context keeps the "log in as" event.
        provider::delete_data_for_all_users_in_context($c2);
        $this->assertSame([], $this->userids_in($c2));
        $this->assertSame([], $this->contextids_of($u1));
        $this->assertSame(self::ids($sys->id), $this->contextids_of($u4));
        $this->assertSame(self::ids($sys->id), $this->contextids_of($admin));
    }
}

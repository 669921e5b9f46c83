<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * InfluxDB 1.x end to end: events through the store and the extension's InfluxDB sink into a real influxd, then
 * read back with InfluxQL (connection test), and the privacy provider's find / export / delete on those points.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/base_testcase.php');

use core_privacy\local\request\approved_contextlist;
use core_privacy\local\request\contextlist;
use core_privacy\local\request\userlist;
use core_privacy\local\request\writer;
use logstore_tsdb\local\influx_client;
use logstore_tsdb\local\pseudonym;
use logstore_tsdb\privacy\provider;

/**
 * InfluxDB tests.
 */
class influx_test extends base_testcase {

    /** @var string database of this test */
    protected $database;

    /**
     * Needs InfluxDB (TSDB_TEST_INFLUX_URL) and Moodle's tables; creates a database for the test.
     */
    protected function setUp(): void {
        global $DB;
        parent::setUp();
        if (!getenv('TSDB_TEST_INFLUX_URL')) {
            $this->markTestSkipped('SKIPPED: no InfluxDB (set TSDB_TEST_INFLUX_URL or let run.sh start one)');
        }
        if (!$DB) {
            $this->markTestSkipped('SKIPPED: no PostgreSQL for Moodle\'s tables');
        }
        // A name no earlier run can have left behind (a shared server keeps databases across runs); dropped at the end.
        $this->database = 'moodle_t' . getmypid() . '_' . bin2hex(random_bytes(4));
        $this->configure(['backend' => 'influxdb1', 'url' => getenv('TSDB_TEST_INFLUX_URL'), 'database' => $this->database,
            'pseudonymise' => 1, 'retry_max_elapsed_ms' => 3000]);
        $client = new influx_client(\logstore_tsdb\log\store::read_plugin_config());
        $client->query('CREATE DATABASE ' . influx_client::quote_identifier($this->database), true);
    }

    /**
     * Drops the test database.
     */
    protected function tearDown(): void {
        parent::tearDown();
        if ($this->database) {
            $client = new influx_client(\logstore_tsdb\log\store::read_plugin_config());
            $client->query('DROP DATABASE ' . influx_client::quote_identifier($this->database), true);
        }
    }

    /**
     * Points in the test database.
     *
     * @return array[]
     */
    protected function points(): array {
        $client = new influx_client(\logstore_tsdb\log\store::read_plugin_config());
        return $client->query('SELECT * FROM "moodle_events"');
    }

    /**
     * The whole path: write, find, export, delete.
     */
    public function test_influx_end_to_end(): void {
        $before = tsdb_stats();
        $ctxa = context_course::instance(3);
        $ctxb = context_module::instance(9);
        harness::login(5);
        \core\event\course_viewed::create(['context' => $ctxa, 'courseid' => 3, 'other' => ['k' => 'five-a']])->trigger();
        \core\event\user_profile_viewed::create(['context' => $ctxb, 'courseid' => 3, 'objectid' => 7, 'relateduserid' => 7,
            'other' => ['k' => 'five-b']])->trigger();
        harness::login(6);
        \core\event\course_viewed::create(['context' => $ctxa, 'courseid' => 3, 'other' => ['k' => 'six-a']])->trigger();
        $this->assertSame(0, tsdb_flush(15000));
        $stats = tsdb_stats();
        $this->assertSame((int) $before['failed'], (int) $stats['failed'], 'influx sink: ' . $stats['last_error']);

        $points = $this->points();
        $this->assertCount(3, $points);
        $p = pseudonym::existing([5, 6, 7]);
        $this->assertCount(3, $p);
        $this->assertEqualsCanonicalizing([$p[5], $p[5], $p[6]], array_column($points, 'userid'),
            'InfluxDB holds pseudonyms, not user ids');

        // Find.
        $cl = new contextlist();
        provider::add_contexts_for_userid($cl, 5);
        $ids = $cl->get_contextids();
        sort($ids);
        $this->assertSame([$ctxa->id, $ctxb->id], $ids);
        $cl = new contextlist();
        provider::add_contexts_for_userid($cl, 7);
        $this->assertSame([$ctxb->id], $cl->get_contextids(), 'as related user');
        $ul = new userlist($ctxa, 'logstore_tsdb');
        provider::add_userids_for_context($ul);
        $ids = $ul->get_userids();
        sort($ids);
        $this->assertSame([5, 6], $ids, 'pseudonyms translated back to user ids');

        // Export: real user ids, other decoded.
        provider::export_user_data(new approved_contextlist((object) ['id' => 5], 'logstore_tsdb', [$ctxb->id]));
        $data = writer::harness()->get_data_in($ctxb, ['Logs', 'Time series database log store']);
        $this->assertCount(1, $data->logs);
        $this->assertSame(['k' => 'five-b'], $data->logs[0]['other']);
        $this->assertSame(5, $data->logs[0]['authorid']);
        $this->assertSame(7, $data->logs[0]['relateduserid']);

        // Delete a context: its points are gone (contextid is a tag).
        provider::delete_data_for_all_users_in_context($ctxb);
        $this->assertEqualsCanonicalizing(['five-a', 'six-a'], array_map(function($pt) {
            return json_decode($pt['other'], true)['k'];
        }, $this->points()));

        // Delete a user: the pseudonym is forgotten, the points stay, unlinkable.
        provider::delete_data_for_user(new approved_contextlist((object) ['id' => 5], 'logstore_tsdb', [$ctxa->id]));
        $this->assertSame([], pseudonym::existing([5]));
        $cl = new contextlist();
        provider::add_contexts_for_userid($cl, 5);
        $this->assertSame([], $cl->get_contextids());
        $this->assertCount(2, $this->points());

        // Connection test reads its marker back with InfluxQL.
        $result = \logstore_tsdb\local\connection_tester::run(\logstore_tsdb\log\store::read_plugin_config());
        $this->assertTrue($result['ok'], $result['message']);
        $this->assertTrue($result['readback'], $result['message']);
    }
}

<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * InfluxDB 1.x (a real influxd 1.6.7) inside a real Moodle site: events fired through Moodle's event API reach
 * InfluxDB through the extension, and everything the plugin itself asks InfluxDB (the reader, privacy, Test
 * connection) works although Moodle's lib/setup.php set arg_separator.output to "&amp;" (issue 15: every request
 * was `GET /query?db=...&amp;q=...` and InfluxDB answered 400 missing required parameter "q").
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/log_dataset.php');

use core_privacy\local\request\approved_contextlist;
use core_privacy\local\request\contextlist;
use core_privacy\local\request\userlist;
use logstore_tsdb\local\influx_client;
use logstore_tsdb\local\pseudonym;
use logstore_tsdb\privacy\provider;

/**
 * InfluxDB tests.
 */
class influx_test extends base_testcase {

    /** @var string database of this test */
    protected $database = '';

    /**
     * A database of the test's own on the InfluxDB without authentication; the store writes there.
     */
    protected function setUp(): void {
        global $DB;
        parent::setUp();
        $url = $this->server_env('TSDB_TEST_INFLUX_URL');
        // A name no earlier run can have left behind (the server outlives the test); dropped at the end.
        $this->database = 'moodle_t' . getmypid() . '_' . bin2hex(random_bytes(4));
        $DB->delete_records('logstore_tsdb_pseudonym');
        pseudonym::reset_cache();
        $this->configure(['backend' => 'influxdb1', 'url' => $url, 'database' => $this->database, 'pseudonymise' => 1,
            'retry_max_elapsed_ms' => 3000]);
        $this->client()->query('CREATE DATABASE ' . influx_client::quote_identifier($this->database), true);
    }

    /**
     * Drops the test database.
     */
    protected function tearDown(): void {
        parent::tearDown();
        if ($this->database !== '') {
            $this->client()->query('DROP DATABASE ' . influx_client::quote_identifier($this->database), true);
        }
    }

    /**
     * A client with the site's current configuration.
     *
     * @return influx_client
     */
    protected function client(): influx_client {
        return new influx_client(\logstore_tsdb\log\store::read_plugin_config());
    }

    /**
     * Forgets the events so far (the fixtures' user_created, course_created...) in the standard store and in InfluxDB.
     */
    protected function forget_influx_events_so_far(): void {
        $this->forget_events_so_far();
        $this->client()->query('DROP MEASUREMENT "moodle_events"', true);
    }

    /**
     * Points in the test database.
     *
     * @return array[]
     */
    protected function points(): array {
        return $this->client()->query('SELECT * FROM "moodle_events"');
    }

    /**
     * Moodle's separator is in force here, as on every page and CLI script of the site, and the one place that
     * encodes the plugin's parameters does not use it.
     */
    public function test_requests_ignore_moodles_arg_separator(): void {
        $this->assertSame('&amp;', ini_get('arg_separator.output'), 'lib/setup.php of the site sets it');
        $this->assertSame('db=a%20b&q=SELECT%20%2A%20FROM%20%22m%22&epoch=ns',
            influx_client::encode_params(['db' => 'a b', 'q' => 'SELECT * FROM "m"', 'epoch' => 'ns']));
        $names = array_column($this->client()->query('SHOW DATABASES'), 'name');
        $this->assertContains($this->database, $names);
        // The request of the issue (SHOW TAG KEYS, then a count) on an empty database: no events, no error.
        $store = get_log_manager()->get_readers()['logstore_tsdb'];
        $this->assertSame(0, $store->get_events_select_count('courseid = :c', ['c' => SITEID]));
        $this->assertFalse($store->get_events_select_exists('', []));
    }

    /**
     * Real events of two students into InfluxDB, pseudonymised; read back through the store's reader exactly as the
     * standard store reads them; privacy finds and deletes them through InfluxQL (contextid is a tag); Test
     * connection writes its marker and reads it back.
     */
    public function test_influx_end_to_end(): void {
        $course = $this->gen()->create_course();
        $page = $this->gen()->create_module('page', ['course' => $course->id]);
        $a = $this->gen()->create_and_enrol($course, 'student');
        $b = $this->gen()->create_and_enrol($course, 'student');
        $this->forget_influx_events_so_far();
        $ctxa = context_course::instance($course->id);
        $ctxb = context_module::instance($page->cmid);
        $before = tsdb_stats();
        $this->set_user($a);
        \core\event\course_viewed::create(['context' => $ctxa, 'other' => ['coursesectionnumber' => 1]])->trigger();
        \core\event\user_profile_viewed::create(['objectid' => $b->id, 'relateduserid' => $b->id, 'context' => $ctxb,
            'other' => ['courseid' => $course->id, 'courseshortname' => 'x', 'coursefullname' => 'y']])->trigger();
        $this->set_user($b);
        \core\event\course_viewed::create(['context' => $ctxa, 'other' => ['coursesectionnumber' => 2]])->trigger();
        $this->set_user(null);
        $this->new_request();
        $this->assertSame(0, tsdb_flush(15000));
        $stats = tsdb_stats();
        $this->assertSame((int) $before['failed'], (int) $stats['failed'], 'influx sink: ' . $stats['last_error']);

        $points = $this->points();
        $this->assertCount(3, $points);
        $p = pseudonym::existing([$a->id, $b->id]);
        $this->assertCount(2, $p);
        $this->assertEqualsCanonicalizing([$p[$a->id], $p[$a->id], $p[$b->id]], array_map('intval', array_column($points, 'userid')),
            'InfluxDB holds pseudonyms, not user ids');

        // The reader answers as the standard store does for the same events.
        $standard = log_dataset::standard_reader();
        $store = get_log_manager()->get_readers()['logstore_tsdb'];
        foreach ([['', []], ['courseid = :c AND anonymous = 0', ['c' => $course->id]], ['userid = :u', ['u' => $a->id]],
                ['relateduserid = :u', ['u' => $b->id]], ['userid = :u AND crud = :crud', ['u' => $b->id, 'crud' => 'r']]]
                as [$where, $params]) {
            $this->assertSame($standard->get_events_select_count($where, $params), $store->get_events_select_count($where, $params),
                "count $where");
            $this->assertSame($standard->get_events_select_exists($where, $params),
                $store->get_events_select_exists($where, $params), "exists $where");
            $this->assertSame(self::normalised($standard->get_events_select($where, $params, 'timecreated DESC', 0, 2)),
                self::normalised($store->get_events_select($where, $params, 'timecreated DESC', 0, 2)), "first page $where");
            $this->assertSame(self::normalised($standard->get_events_select_iterator($where, $params, 'timecreated ASC', 0, 0)),
                self::normalised($store->get_events_select_iterator($where, $params, 'timecreated ASC', 0, 0)), "iterator $where");
        }
        $this->assertSame(3, $store->get_events_select_count('', []));

        // Privacy: find.
        $cl = new contextlist();
        provider::add_contexts_for_userid($cl, $a->id);
        $ids = $cl->get_contextids();
        sort($ids);
        $this->assertSame([(int) $ctxa->id, (int) $ctxb->id], array_map('intval', $ids));
        $cl = new contextlist();
        provider::add_contexts_for_userid($cl, $b->id);
        $ids = array_map('intval', $cl->get_contextids());
        sort($ids);
        $this->assertSame([(int) $ctxa->id, (int) $ctxb->id], $ids, 'as the user and as the related user');
        $ul = new userlist($ctxa, 'logstore_tsdb');
        provider::add_userids_for_context($ul);
        $ids = array_map('intval', $ul->get_userids());
        sort($ids);
        $this->assertSame([(int) $a->id, (int) $b->id], $ids, 'pseudonyms translated back to user ids');

        // Delete a context: its point is gone (DELETE ... WHERE "contextid" = ...), the others stay.
        provider::delete_data_for_all_users_in_context($ctxb);
        $this->assertEqualsCanonicalizing([1, 2], array_map(function($pt) {
            return json_decode($pt['other'], true)['coursesectionnumber'];
        }, $this->points()));

        // Delete a user: their point is deleted (series and time), then their pseudonym, which nothing refers to any more.
        provider::delete_data_for_user(new approved_contextlist($a, 'logstore_tsdb', [$ctxa->id]));
        $this->assertSame([], pseudonym::existing([$a->id]));
        $cl = new contextlist();
        provider::add_contexts_for_userid($cl, $a->id);
        $this->assertSame([], $cl->get_contextids());
        $this->assertCount(1, $this->points());
        $this->assertSame(0, $store->get_events_select_count('userid = :u', ['u' => $a->id]));
        $shown = array_map(function($e) {
            return (int) $e->userid;
        }, array_values($store->get_events_select('', [], 'timecreated ASC', 0, 0)));
        $this->assertSame([(int) $b->id], $shown, "the other user's event stays");

        // Test connection reads its marker back with InfluxQL.
        $result = \logstore_tsdb\local\connection_tester::run(\logstore_tsdb\log\store::read_plugin_config());
        $this->assertTrue($result['ok'], $result['message']);
        $this->assertTrue($result['readback'], $result['message']);
    }

    /**
     * Course views of one user in a course, as the site logs them, then flushed.
     *
     * @param \stdClass $user
     * @param \stdClass $course
     * @param int[] $sections the coursesectionnumber of each view
     */
    protected function view_course(\stdClass $user, \stdClass $course, array $sections): void {
        $this->set_user($user);
        foreach ($sections as $n) {
            \core\event\course_viewed::create(['context' => context_course::instance($course->id),
                'other' => ['coursesectionnumber' => $n]])->trigger();
        }
        $this->set_user(null);
        $this->assertSame(0, tsdb_flush(30000));
    }

    /**
     * The sections of the course views in the test database, sorted.
     *
     * @return int[]
     */
    protected function sections(): array {
        $out = array_map(function($pt) {
            return (int) json_decode($pt['other'], true)['coursesectionnumber'];
        }, $this->points());
        sort($out);
        return $out;
    }

    /**
     * The database dropped under the site (issue 16). With "Create a missing database" unticked (the default) the
     * events logged meanwhile wait in the spool, the last error names the setting, and once an admin creates the
     * database the replay writes them, once each. Ticked, the extension creates the database again at the next batch
     * (no event waits) and says so in its counters.
     */
    public function test_a_dropped_database(): void {
        $course = $this->gen()->create_course();
        $user = $this->gen()->create_and_enrol($course, 'student');
        $this->forget_influx_events_so_far();
        $this->configure(['retry_max_elapsed_ms' => 0]);
        $this->assertSame('0', (string) \logstore_tsdb\log\store::read_plugin_config()->create_database, 'the default');
        $quoted = influx_client::quote_identifier($this->database);
        $this->view_course($user, $course, [1, 2, 3]);
        $this->assertSame([1, 2, 3], $this->sections());

        // Dropped; two views: spooled, not written, not lost.
        $this->client()->query("DROP DATABASE $quoted", true);
        $before = tsdb_stats();
        $this->view_course($user, $course, [4, 5]);
        $stats = tsdb_stats();
        $this->assertSame(0, $stats['written'] - $before['written']);
        $this->assertSame(2, $stats['spooled'] - $before['spooled'], $stats['last_error']);
        $this->assertSame(0, $stats['failed'] - $before['failed']);
        $this->assertStringContainsString('database: database "' . $this->database . '" does not exist', $stats['last_error']);
        $this->assertStringContainsString('create_database = 1', $stats['last_error']);
        $this->assertSame($before['schema_recreated'], $stats['schema_recreated'], 'not created: the admin did not choose so');
        $names = array_column($this->client()->query('SHOW DATABASES'), 'name');
        $this->assertNotContains($this->database, $names, 'the extension created nothing');

        // The admin creates it again: the spool is replayed into it, every event once.
        $this->client()->query("CREATE DATABASE $quoted", true);
        for ($i = 0; $i < 5 && tsdb_stats()['spool_segments'] > 0; $i++) {
            $result = tsdb_replay_spool(30000);
            $this->assertSame('', $result['error']);
        }
        $this->assertSame(0, tsdb_stats()['spool_segments']);
        $this->assertSame([4, 5], $this->sections(), 'the two views logged while it was missing, once each');

        // Ticked: dropped again, the next batch creates it and is written at once.
        $this->configure(['create_database' => 1, 'retry_max_elapsed_ms' => 0]);
        $this->client()->query("DROP DATABASE $quoted", true);
        $before = tsdb_stats();
        $this->view_course($user, $course, [6, 7]);
        $stats = tsdb_stats();
        $this->assertSame(2, $stats['written'] - $before['written'], $stats['last_error']);
        $this->assertSame(0, $stats['spooled'] - $before['spooled']);
        $this->assertSame(1, $stats['schema_recreated'] - $before['schema_recreated']);
        $this->assertStringContainsString('database: database "' . $this->database . '" was missing (dropped?) and was created '
            . 'again', $stats['schema_recreated_message']);
        $this->assertSame([6, 7], $this->sections());
        $this->assertSame(7, count($this->standard_rows()), 'the standard store logged all seven');
        // The status page's row and the health check say so, naming the database.
        $recreated = \logstore_tsdb\local\status::schema_recreated();
        $this->assertNotNull($recreated, 'the status page reports the database made again');
        $this->assertStringContainsString('"' . $this->database . '"', $recreated['message']);
        $this->assertStringContainsString($this->database, (string) \logstore_tsdb\local\health::problem(time()));
        // Not said of another database whose name it starts with (the report names "moodle_x", the store writes to
        // "moodle"): the site's check stays quiet.
        $this->configure(['database' => substr($this->database, 0, -3)]);
        $this->assertNull(\logstore_tsdb\local\status::schema_recreated());
    }

    /**
     * The admin changes the tag set while the site writes (contextid from tag to field, the default of the extension):
     * the events before and after are read as one log (the same events as the standard store), and privacy finds the
     * contexts and users of both halves and deletes a context's and a user's events from both (DELETE needs
     * `"contextid"::tag` once contextid is also a field).
     */
    public function test_privacy_across_a_changed_tag_set(): void {
        $course = $this->gen()->create_course();
        $pages = [$this->gen()->create_module('page', ['course' => $course->id]),
            $this->gen()->create_module('page', ['course' => $course->id])];
        $a = $this->gen()->create_and_enrol($course, 'student');
        $b = $this->gen()->create_and_enrol($course, 'student');
        $this->forget_influx_events_so_far();
        $ctx = [context_course::instance($course->id), context_module::instance($pages[0]->cmid),
            context_module::instance($pages[1]->cmid)];
        $fire = function() use ($a, $b, $ctx, $course) {
            foreach ([$a, $b] as $user) {
                $this->set_user($user);
                \core\event\course_viewed::create(['context' => $ctx[0]])->trigger();
                foreach ([1, 2] as $i) {
                    \core\event\user_profile_viewed::create(['objectid' => $b->id, 'relateduserid' => $b->id,
                        'context' => $ctx[$i], 'other' => ['courseid' => $course->id, 'courseshortname' => 'x',
                        'coursefullname' => 'y']])->trigger();
                }
            }
            $this->set_user(null);
            $this->new_request();
            $this->assertSame(0, tsdb_flush(15000));
        };
        $fire();
        $this->configure(['tags' => 'eventname,component,action,target,crud,edulevel,contextlevel,origin,courseid']);
        $fire();
        $this->assertCount(12, $this->points());
        $store = get_log_manager()->get_readers()['logstore_tsdb'];
        $this->assertSame('both', $store->get_reader()->kinds()['contextid']);
        $standard = log_dataset::standard_reader();
        foreach ([['contextid = :c', ['c' => $ctx[1]->id]], ['userid = :u', ['u' => $a->id]], ['', []]] as [$where, $params]) {
            $this->assertSame(self::normalised($standard->get_events_select($where, $params, 'timecreated ASC', 0, 0)),
                self::normalised($store->get_events_select($where, $params, 'timecreated ASC', 0, 0)), $where);
        }
        $cl = new contextlist();
        provider::add_contexts_for_userid($cl, $a->id);
        $ids = array_map('intval', $cl->get_contextids());
        sort($ids);
        $this->assertSame(array_map('intval', array_column($ctx, 'id')), $ids);
        $ul = new userlist($ctx[2], 'logstore_tsdb');
        provider::add_userids_for_context($ul);
        $ids = array_map('intval', $ul->get_userids());
        sort($ids);
        $this->assertSame([(int) $a->id, (int) $b->id], $ids);

        // A context: its 4 points, 2 written with each tag set, are gone; a user's: theirs in both halves.
        provider::delete_data_for_all_users_in_context($ctx[1]);
        $this->assertCount(8, $this->points());
        $this->assertSame(0, $store->get_events_select_count('contextid = :c', ['c' => $ctx[1]->id]));
        provider::delete_data_for_user(new approved_contextlist($a, 'logstore_tsdb', [$ctx[0]->id, $ctx[2]->id]));
        $this->assertCount(4, $this->points());
        $this->assertSame(0, $store->get_events_select_count('userid = :u', ['u' => $a->id]));
        $this->assertSame(4, $store->get_events_select_count('userid = :u', ['u' => $b->id]));
    }

    /**
     * The server with authentication: the plugin authenticates as the extension does (HTTP Basic, never u/p in the
     * URL), reads back what was written, and a wrong password is named as such without being shown.
     */
    public function test_authenticated_server(): void {
        $url = $this->server_env('TSDB_TEST_INFLUX_AUTH_URL');
        $user = $this->server_env('TSDB_TEST_INFLUX_USER');
        $password = $this->server_env('TSDB_TEST_INFLUX_PASSWORD');
        $db = $this->database . '_auth';
        $this->configure(['url' => $url, 'database' => $db, 'username' => $user, 'password' => $password]);
        $this->client()->query('CREATE DATABASE ' . influx_client::quote_identifier($db), true);
        try {
            $course = $this->gen()->create_course();
            $this->forget_influx_events_so_far();
            for ($i = 0; $i < 5; $i++) {
                \core\event\course_viewed::create(['context' => context_course::instance($course->id)])->trigger();
            }
            $this->new_request();
            $this->assertSame(0, tsdb_flush(15000));
            $store = get_log_manager()->get_readers()['logstore_tsdb'];
            $this->assertSame(5, $store->get_events_select_count('courseid = :c', ['c' => $course->id]));
            $standard = log_dataset::standard_reader();
            $this->assertSame(self::normalised($standard->get_events_select('', [], 'timecreated DESC', 0, 3)),
                self::normalised($store->get_events_select('', [], 'timecreated DESC', 0, 3)));
            $this->assertSame(self::normalised($standard->get_events_select_iterator('', [], 'timecreated ASC', 0, 0)),
                self::normalised($store->get_events_select_iterator('', [], 'timecreated ASC', 0, 0)));
            $this->assertTrue($store->get_events_select_exists('courseid = :c', ['c' => $course->id]));
            $this->assertFalse($store->get_events_select_exists('courseid = :c', ['c' => $course->id + 1000]));

            $this->configure(['password' => 'wrong-' . $password]);
            $store = get_log_manager()->get_readers()['logstore_tsdb'];
            try {
                $store->get_events_select_count('', []);
                $this->fail('a wrong password was accepted');
            } catch (moodle_exception $e) {
                $this->assertSame('influxerror', $e->errorcode);
                $this->assertStringContainsString("InfluxDB at $url answered 401 Unauthorized: authorization failed", $e->getMessage());
                $this->assertStringContainsString('(logstore_tsdb | username), Password (logstore_tsdb | password)', $e->getMessage());
                $this->assertStringNotContainsString($password, $e->getMessage() . $e->debuginfo);
            }
        } finally {
            $this->configure(['password' => $password]);
            $this->client()->query('DROP DATABASE ' . influx_client::quote_identifier($db), true);
        }
    }

    /**
     * Events, normalised for comparison, in order.
     *
     * @param iterable $events
     * @return array[]
     */
    protected static function normalised(iterable $events): array {
        $out = [];
        foreach ($events as $e) {
            $out[] = log_dataset::normalise_event($e);
        }
        return $out;
    }
}

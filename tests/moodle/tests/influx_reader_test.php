<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The store as \core\log\sql_reader on InfluxDB 1.x (a real influxd 1.6.7) inside a real site: the dataset's events,
 * their user ids pseudonymised as the store does it (pseudonym::get()), written through the extension, are read back
 * with InfluxQL; every query the translation accepts must give exactly the events the site's real logstore_standard
 * reader gives for the same events in logstore_standard_log, and every other query must be refused.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/reader_comparison.php');

use logstore_tsdb\local\influx_client;
use logstore_tsdb\local\pseudonym;
use logstore_tsdb\local\reader\unsupported_query;

/**
 * Reader tests (InfluxDB).
 */
class influx_reader_test extends base_testcase {
    use reader_comparison;

    /** @var int Events. */
    const N = 3000;

    /** @var string|null */
    protected static $database = null;

    /** @var array[] */
    protected static $entries = [];

    /** @var array[] Rows of the pseudonym table after the writes (setUp() of the base class empties it). */
    protected static $pseudonyms = [];

    /**
     * Writes the dataset through the extension, pseudonymised as the store pseudonymises (the store's own write path is
     * store_test's and influx_test's), and keeps the pseudonyms it made.
     */
    public static function setUpBeforeClass(): void {
        global $DB;
        if (!getenv('TSDB_TEST_INFLUX_URL') || !function_exists('tsdb_log_event')) {
            return;
        }
        $DB->delete_records('logstore_tsdb_pseudonym');
        pseudonym::reset_cache();
        self::$database = 'reader_t' . getmypid();
        $client = new influx_client(log_dataset::plugin_config(log_dataset::influx_settings(self::$database)));
        $client->query('DROP DATABASE ' . influx_client::quote_identifier(self::$database), true);
        $client->query('CREATE DATABASE ' . influx_client::quote_identifier(self::$database), true);
        self::$entries = log_dataset::generate(self::N, 5, 11);
        log_dataset::write_through_extension(log_dataset::pseudonymise(self::$entries),
            log_dataset::influx_settings(self::$database));
        self::$pseudonyms = $DB->get_records('logstore_tsdb_pseudonym');
    }

    /**
     * Drops the database.
     */
    public static function tearDownAfterClass(): void {
        if (self::$database) {
            $client = new influx_client(log_dataset::plugin_config(log_dataset::influx_settings(self::$database)));
            $client->query('DROP DATABASE ' . influx_client::quote_identifier(self::$database), true);
        }
    }

    /**
     * Needs InfluxDB; the dataset's pseudonyms as they were after the writes (a test forgets one), and the same events
     * in the site's logstore_standard_log (the base class empties it).
     */
    protected function setUp(): void {
        global $DB;
        parent::setUp();
        $this->server_env('TSDB_TEST_INFLUX_URL');
        $this->assertNotNull(self::$database, 'the dataset was written');
        $DB->delete_records('logstore_tsdb_pseudonym');
        foreach (self::$pseudonyms as $row) {
            $DB->import_record('logstore_tsdb_pseudonym', $row);
        }
        pseudonym::reset_cache();
        log_dataset::create_standard_table();
        log_dataset::insert_standard(self::$entries);
    }

    /**
     * The store on this run's InfluxDB database.
     *
     * @return \logstore_tsdb\log\store
     */
    protected function store(): \logstore_tsdb\log\store {
        $this->configure(log_dataset::influx_settings(self::$database));
        return get_log_manager()->get_readers()['logstore_tsdb'];
    }

    /**
     * The points carry pseudonyms, not user ids (what the reader has to map back).
     */
    public function test_points_are_pseudonymised(): void {
        $client = new influx_client(log_dataset::plugin_config(log_dataset::influx_settings(self::$database)));
        $rows = $client->query('SELECT max("userid") FROM "moodle_events"');
        $this->assertGreaterThanOrEqual(pseudonym::MIN, (int) $rows[0]['max']);
    }

    /**
     * Live logs, the query the issue requires: recent events of a course, newest first, paged, and the count.
     */
    public function test_loglive(): void {
        $store = $this->store();
        $ref = log_dataset::standard_reader();
        $this->assert_loglive_matches($ref, $store, [0, 3, 8], [0, 2, 4], 9, 50);
    }

    /**
     * report_log: every filter InfluxQL can answer gives logstore_standard's events; "other origins" is refused.
     */
    public function test_report_log(): void {
        $store = $this->store();
        $ref = log_dataset::standard_reader();
        $s = log_dataset::START;
        $filters = [
            'site' => [], 'course' => ['courseid' => 3], 'course + user' => ['courseid' => 3, 'userid' => 7],
            'activity' => ['courseid' => 3, 'modid' => 302],
            'activity + user' => ['courseid' => 4, 'modid' => 401, 'userid' => 12],
            'create' => ['action' => 'c'], 'all changes' => ['courseid' => 5, 'action' => 'cud'],
            'teaching' => ['edulevel' => 1], 'participating' => ['courseid' => 6, 'edulevel' => 2],
            'origin ws' => ['origin' => 'ws'], 'date' => ['date' => $s + 86400],
            'group' => ['courseid' => 6, 'groupmembers' => [3, 5, 8, 13, 21]], 'empty group' => ['groupmembers' => []],
            'site errors' => ['siteerrors' => 1], 'guest' => ['userid' => 1],
            'everything' => ['courseid' => 7, 'userid' => 9, 'action' => 'r', 'edulevel' => 2, 'origin' => 'web',
                'date' => $s + 3 * 86400],
        ];
        foreach ($filters as $name => $f) {
            foreach ([0, 2] as $page) {
                $this->assert_report_log_page($ref, $store, $f, $page, 25, $name);
            }
        }
        $this->assert_same_events(report_log_queries::download($ref, ['courseid' => 2]),
            report_log_queries::download($store, ['courseid' => 2]), 'download');
        $this->assertCount(self::N, report_log_queries::download($store, ['viewanonymous' => 1], 'timecreated ASC'));
        try {
            report_log_queries::page($store, ['origin' => '---']);
            $this->fail('origin NOT IN answered');
        } catch (unsupported_query $e) {
            $this->assertStringContainsString('origin <> / NOT IN on a tag', $e->getMessage());
        }
    }

    /**
     * Fragments: what is translated gives the reference answer; what is not is refused with a message naming it.
     */
    public function test_translation_and_refusals(): void {
        $store = $this->store();
        $ref = log_dataset::standard_reader();
        $t = log_dataset::START + 2 * 86400;
        $ok = [
            ['courseid IS NOT NULL AND contextlevel = 70 AND objectid > :o', ['o' => 45000]],
            ['(courseid = :a OR userid = :u) AND timecreated >= :t', ['a' => 2, 'u' => 9, 't' => $t]],
            ['courseid NOT IN (2, 3, 4) AND anonymous <> 1', []],
            ['relateduserid = ? AND realuserid = ?', [5, 2]],
            ['relateduserid <> ? AND edulevel = 1', [5]],
            ['objecttable = :ot AND ip <> :ip', ['ot' => 'forum_posts', 'ip' => '10.0.0.1']],
            ['objectid BETWEEN 100 AND 40000 AND timecreated BETWEEN :a AND :b', ['a' => $t, 'b' => $t + 86399]],
            ['timecreated > :a AND timecreated < :b', ['a' => $t + 3600, 'b' => $t]],
            ['1 = 0 OR eventname = :e', ['e' => '\\core\\event\\user_loggedin']],
            ['userid IN (3, 4, 5) AND crud = ?', ['r']],
            ['contextinstanceid = 0', []],
            ['timecreated = :t', ['t' => self::$entries[5]['timecreated']]],
            ['courseid = :c', ['c' => '4']],
        ];
        foreach ($ok as [$where, $params]) {
            $this->assertSame($ref->get_events_select_count($where, $params), $store->get_events_select_count($where, $params),
                "count $where");
            $this->assertSame($ref->get_events_select_exists($where, $params), $store->get_events_select_exists($where, $params),
                "exists $where");
            $this->assert_same_events($ref->get_events_select($where, $params, 'timecreated DESC', 3, 30),
                $store->get_events_select($where, $params, 'timecreated DESC', 3, 30), $where);
        }
        $refused = [
            ['NOT courseid = 3', [], 'NOT'],
            ['eventname LIKE :e', ['e' => '%viewed'], 'operator "LIKE"'],
            ['origin <> :o', ['o' => 'web'], 'origin <> / NOT IN'],
            ["origin = ''", [], "origin = ''"],
            ['id > 5', [], 'id (InfluxDB points have no id)'],
            ['timecreated > :a OR courseid = 3', ['a' => $t], 'timecreated inside OR'],
            ['userid > 5', [], 'userid > (user ids may be pseudonymised'],
            ['courseid > 5', [], 'courseid > (a tag compares as text)'],
            ['relateduserid IS NULL', [], 'relateduserid IS NULL (only integer tags'],
            ['lower(eventname) = :e', ['e' => 'x'], 'expression "lower("'],
            ['courseid = userid', [], 'comparison of two columns'],
            ['eventname > :e', ['e' => 'x'], 'strings are compared with = and <> only'],
            ['objectid + 1 = 5', [], 'expression "objectid+"'],
            ['courseid IN (SELECT id FROM mdl_course)', [], '"SELECT"'],
        ];
        foreach ($refused as [$where, $params, $reason]) {
            try {
                $store->get_events_select_count($where, $params);
                $this->fail("$where answered");
            } catch (unsupported_query $e) {
                $this->assertStringContainsString($reason, $e->getMessage(), $where);
                $this->assertStringContainsString('refuses it rather than show wrong events', $e->getMessage());
            }
        }
        foreach (['userid ASC', 'id DESC, timecreated DESC', 'timecreated DESC, courseid ASC'] as $sort) {
            try {
                $store->get_events_select('', [], $sort, 0, 1);
                $this->fail("sort $sort accepted");
            } catch (unsupported_query $e) {
                $this->assertStringContainsString('sort', $e->getMessage());
            }
        }
        // Values are quoted, never interpolated: a hostile value is just a value that matches nothing.
        $this->assertSame(0, $store->get_events_select_count('eventname = :e',
            ['e' => "x' OR eventname =~ /.*/ OR eventname = '"]));
        $this->assertSame(0, $store->get_events_select_count('ip = :ip', ['ip' => "\\' OR 1=1 --"]));
        $this->assertSame(self::N, $store->get_events_select_count('', []));
    }

    /**
     * A forgotten user's events stay, anonymised: their pseudonym is shown as user 0, and the user id finds nothing.
     */
    public function test_forgotten_user(): void {
        $store = $this->store();
        $ref = log_dataset::standard_reader();
        $mine = $ref->get_events_select_count('userid = :u', ['u' => 7]);
        $this->assertGreaterThan(0, $mine);
        $this->assertSame($mine, $store->get_events_select_count('userid = :u', ['u' => 7]));
        $zeros = $store->get_events_select_count('userid = 0', []);
        pseudonym::forget([7]);
        $this->assertSame(0, $store->get_events_select_count('userid = :u', ['u' => 7]));
        $shown = array_filter(report_log_queries::download($store, ['viewanonymous' => 1]), function($e) {
            return (string) $e->userid === '0';
        });
        $this->assertCount($zeros + $mine, $shown, 'the forgotten user\'s events are shown as user 0');
    }

    /**
     * The tag set changed while the site was writing (an admin changed `tags`, or a site moved to another default):
     * half of the events have `contextid` and `edulevel` as tags and `objecttable` as a field, the other half the
     * other way round. Every report_log filter and fragment the translation accepts still gives exactly the standard
     * store's events (a condition on such a column tests the tag or the field), the rows carry the values of both
     * halves, and what cannot be exact on a tag is still refused.
     */
    public function test_changed_tag_set_reads_both_halves(): void {
        $db = self::$database . '_tags';
        $settings = log_dataset::influx_settings($db);
        $client = new influx_client(log_dataset::plugin_config($settings));
        $client->query('CREATE DATABASE ' . influx_client::quote_identifier($db), true);
        try {
            $points = log_dataset::pseudonymise(self::$entries);
            $half = intdiv(count($points), 2);
            log_dataset::write_through_extension(array_slice($points, 0, $half), $settings);
            log_dataset::write_through_extension(array_slice($points, $half), $settings
                + ['tags' => 'eventname,component,action,target,crud,contextlevel,origin,courseid,objecttable']);
            $this->configure($settings);
            $store = get_log_manager()->get_readers()['logstore_tsdb'];
            $kinds = $store->get_reader()->kinds();
            $this->assertSame(['both', 'both', 'both', 'tag', 'field'], [$kinds['contextid'], $kinds['edulevel'],
                $kinds['objecttable'], $kinds['courseid'], $kinds['userid']]);
            $ref = log_dataset::standard_reader();
            $this->assertSame(self::N, $store->get_events_select_count('', []));
            $this->assert_same_events(report_log_queries::download($ref, ['viewanonymous' => 1]),
                report_log_queries::download($store, ['viewanonymous' => 1]), 'every event');
            foreach ([['courseid' => 3], ['courseid' => 3, 'modid' => 302], ['edulevel' => 1],
                    ['courseid' => 6, 'edulevel' => 2], ['courseid' => 5, 'action' => 'cud'], ['origin' => 'ws']] as $f) {
                $this->assert_report_log_page($ref, $store, $f, 0, 25, json_encode($f));
                $this->assert_report_log_page($ref, $store, $f, 2, 25, json_encode($f));
            }
            $ok = [
                ['contextid = :c', ['c' => 1003]],
                ['contextid IN (1003, 100302, 5007) AND anonymous = 0', []],
                ['contextid <> :c AND courseid = 4', ['c' => 1004]],
                ['edulevel = 1 OR objecttable = :ot', ['ot' => 'forum_posts']],
                ['edulevel <> 2 AND objecttable = :ot', ['ot' => 'grade_grades']],
                ['objecttable = :ot AND timecreated >= :t', ['ot' => 'forum_posts', 't' => log_dataset::START + 86400]],
            ];
            foreach ($ok as [$where, $params]) {
                $want = $ref->get_events_select_count($where, $params);
                $this->assertGreaterThan(0, $want, $where);
                $this->assertSame($want, $store->get_events_select_count($where, $params), "count $where");
                $this->assert_same_events($ref->get_events_select($where, $params, 'timecreated DESC', 3, 40),
                    $store->get_events_select($where, $params, 'timecreated DESC', 3, 40), $where);
            }
            foreach ([['objecttable <> :ot', ['ot' => 'user'], 'objecttable <> / NOT IN on a tag'],
                    ['edulevel > 1', [], 'edulevel > (a tag compares as text)'],
                    ['contextid IS NULL', [], 'contextid IS NULL']] as [$where, $params, $reason]) {
                try {
                    $store->get_events_select_count($where, $params);
                    $this->fail("$where answered");
                } catch (unsupported_query $e) {
                    $this->assertStringContainsString($reason, $e->getMessage(), $where);
                }
            }
        } finally {
            $client->query('DROP DATABASE ' . influx_client::quote_identifier($db), true);
        }
    }
}

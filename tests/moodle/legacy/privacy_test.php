<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * Privacy provider: metadata, and find / export / delete for real on the file sink (JSON lines) and on a
 * PostgreSQL table shaped as the extension's sink creates it (both the pgsql and the PDO driver).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/base_testcase.php');

use core_privacy\local\metadata\collection;
use core_privacy\local\request\approved_contextlist;
use core_privacy\local\request\approved_userlist;
use core_privacy\local\request\contextlist;
use core_privacy\local\request\userlist;
use core_privacy\local\request\writer;
use logstore_tsdb\local\pgdb;
use logstore_tsdb\privacy\provider;

/**
 * Privacy tests.
 */
class privacy_test extends base_testcase {

    /** @var context */
    protected $ctxa;
    /** @var context */
    protected $ctxb;

    /**
     * The PostgreSQL log table, as the extension's postgres sink creates it (see the API doc).
     */
    const PG_TABLE_SQL = 'CREATE TABLE %s (id BIGSERIAL PRIMARY KEY, eventname VARCHAR(255) NOT NULL, component VARCHAR(100) NOT NULL,
        action VARCHAR(100) NOT NULL, target VARCHAR(100) NOT NULL, objecttable VARCHAR(50), objectid BIGINT, crud CHAR(1) NOT NULL,
        edulevel SMALLINT NOT NULL, contextid BIGINT NOT NULL, contextlevel BIGINT NOT NULL, contextinstanceid BIGINT NOT NULL,
        userid BIGINT NOT NULL, courseid BIGINT, relateduserid BIGINT, anonymous SMALLINT NOT NULL DEFAULT 0, other JSONB,
        timecreated BIGINT NOT NULL, origin VARCHAR(10), ip VARCHAR(45), realuserid BIGINT, time TIMESTAMPTZ NOT NULL,
        event_id UUID NOT NULL)';

    /**
     * The metadata declares the external location with every personal field, and the pseudonym table.
     */
    public function test_metadata(): void {
        $items = provider::get_metadata(new collection('logstore_tsdb'))->get_collection();
        $this->assertCount(2, $items);
        $this->assertInstanceOf(\core_privacy\local\metadata\types\external_location::class, $items[0]);
        $this->assertSame('tsdb', $items[0]->get_name());
        foreach (['userid', 'relateduserid', 'realuserid', 'ip', 'other', 'timecreated', 'eventname', 'origin'] as $field) {
            $this->assertArrayHasKey($field, $items[0]->get_privacy_fields(), "$field declared");
        }
        $this->assertSame('privacy:metadata:tsdb', $items[0]->get_summary());
        $this->assertInstanceOf(\core_privacy\local\metadata\types\database_table::class, $items[1]);
        $this->assertSame('logstore_tsdb_pseudonym', $items[1]->get_name());
        $this->assertInstanceOf(\tool_log\local\privacy\logstore_provider::class, new provider());
        $this->assertInstanceOf(\tool_log\local\privacy\logstore_userlist_provider::class, new provider());
    }

    /**
     * Logs the scenario through the real store and extension; returns the rows read back from the JSON sink.
     *
     * @return array[]
     */
    protected function log_scenario(): array {
        global $PAGE;
        $this->ctxa = context_course::instance(3);
        $this->ctxb = context_module::instance(44);
        $PAGE->harnessip = '198.51.100.9';
        harness::login(5);
        \core\event\course_viewed::create(['context' => $this->ctxa, 'courseid' => 3, 'other' => ['k' => 'five-a']])->trigger();
        \core\event\user_profile_viewed::create(['context' => $this->ctxb, 'courseid' => 3, 'relateduserid' => 7,
            'objectid' => 7, 'other' => ['k' => 'five-b']])->trigger();
        harness::login(6);
        \core\event\course_viewed::create(['context' => $this->ctxa, 'courseid' => 3, 'other' => ['k' => 'six-a']])->trigger();
        harness::login_as(2, 8);
        \mod_forum\event\discussion_viewed::create(['context' => $this->ctxb, 'courseid' => 3, 'objectid' => 1,
            'other' => ['k' => 'eight-as-two']])->trigger();
        harness::login(9);
        \mod_forum\event\post_created::create(['context' => $this->ctxb, 'courseid' => 3, 'objectid' => 2, 'anonymous' => 1,
            'other' => ['k' => 'nine-anon']])->trigger();
        $rows = $this->read_back();
        $this->assertCount(5, $rows);
        return $rows;
    }

    /**
     * Points the plugin at a PostgreSQL table filled with the given rows.
     *
     * @param array[] $rows sink rows
     * @return pgdb
     */
    protected function use_postgres(array $rows): pgdb {
        global $DB;
        if (!$DB) {
            $this->markTestSkipped('SKIPPED: no PostgreSQL (set TSDB_TEST_PG_HOST or let run.sh start one)');
        }
        $this->configure(['backend' => 'postgres', 'host' => getenv('TSDB_TEST_PG_HOST'),
            'port' => getenv('TSDB_TEST_PG_PORT') ?: 5432, 'user' => getenv('TSDB_TEST_PG_USER') ?: 'postgres',
            'dbname' => getenv('TSDB_TEST_PG_DB') ?: 'postgres', 'password' => getenv('TSDB_TEST_PG_PASSWORD') ?: '',
            'schema' => 'public', 'table' => 'privacy_test_log']);
        $db = pgdb::from_config(\logstore_tsdb\log\store::read_plugin_config());
        $db->execute('DROP TABLE IF EXISTS public.privacy_test_log');
        $db->execute(sprintf(self::PG_TABLE_SQL, 'public.privacy_test_log'));
        foreach ($rows as $r) {
            $cols = array_merge(self::COLUMNS, ['time', 'event_id']);
            $values = [];
            foreach (self::COLUMNS as $c) {
                $values[] = $r[$c];
            }
            $values[] = gmdate('Y-m-d H:i:s', intdiv($r['time_ns'], 1000000000)) . '+00';
            $values[] = preg_match('/^[0-9a-f-]{36}$/', $r['event_id']) ? $r['event_id'] : $this->uuid();
            $db->execute('INSERT INTO public.privacy_test_log (' . implode(',', $cols) . ') VALUES ('
                . implode(',', array_fill(0, count($cols), '?')) . ')', $values);
        }
        return $db;
    }

    /**
     * A random UUID.
     *
     * @return string
     */
    protected function uuid(): string {
        $h = bin2hex(random_bytes(16));
        return substr($h, 0, 8) . '-' . substr($h, 8, 4) . '-' . substr($h, 12, 4) . '-' . substr($h, 16, 4) . '-' . substr($h, 20);
    }

    /**
     * What is left in the backend: [userid, contextid, other.k] per row.
     *
     * @param pgdb|null $pg
     * @return array
     */
    protected function remaining(?pgdb $pg): array {
        $out = [];
        if ($pg) {
            foreach ($pg->query("SELECT userid, contextid, other->>'k' AS k FROM public.privacy_test_log ORDER BY id") as $r) {
                $out[] = $r->k;
            }
        } else {
            foreach (file($this->sink, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) as $line) {
                $out[] = json_decode(json_decode($line, true)['other'], true)['k'];
            }
        }
        return $out;
    }

    /**
     * The whole privacy cycle on one backend.
     *
     * @param pgdb|null $pg
     */
    protected function run_privacy_cycle(?pgdb $pg): void {
        global $DB;
        if (!$DB) {
            $this->markTestSkipped('SKIPPED: no PostgreSQL for Moodle\'s context table (contextlist::add_from_sql)');
        }
        $a = $this->ctxa->id;
        $b = $this->ctxb->id;

        // Contexts per user: as author, related user and real user.
        foreach ([5 => [$a, $b], 6 => [$a], 7 => [$b], 2 => [$b], 8 => [$b], 9 => [$b], 42 => []] as $userid => $expected) {
            $cl = new contextlist();
            provider::add_contexts_for_userid($cl, $userid);
            $ids = $cl->get_contextids();
            sort($ids);
            $this->assertSame($expected, $ids, "contexts of user $userid");
        }

        // Users per context.
        $ul = new userlist($this->ctxb, 'logstore_tsdb');
        provider::add_userids_for_context($ul);
        $ids = $ul->get_userids();
        sort($ids);
        $this->assertSame([2, 5, 7, 8, 9], $ids);

        // Export for user 5.
        provider::export_user_data(new approved_contextlist((object) ['id' => 5], 'logstore_tsdb', [$a, $b]));
        $path = ['Logs', 'Time series database log store'];
        $ea = writer::harness()->get_data_in($this->ctxa, $path);
        $eb = writer::harness()->get_data_in($this->ctxb, $path);
        $this->assertCount(1, $ea->logs);
        $this->assertSame('\\core\\event\\course_viewed', $ea->logs[0]['eventname']);
        $this->assertSame(['k' => 'five-a'], $ea->logs[0]['other']);
        $this->assertSame('Yes', $ea->logs[0]['author_of_the_action_was_you']);
        $this->assertSame('198.51.100.9', $ea->logs[0]['ip']);
        $this->assertCount(1, $eb->logs);
        $this->assertSame(7, $eb->logs[0]['relateduserid']);
        $this->assertSame('No', $eb->logs[0]['related_user_was_you']);

        // Export for user 2, who acted as user 8.
        writer::reset();
        provider::export_user_data(new approved_contextlist((object) ['id' => 2], 'logstore_tsdb', [$b]));
        $e2 = writer::harness()->get_data_in($this->ctxb, $path);
        $this->assertCount(1, $e2->logs);
        $this->assertSame(['k' => 'eight-as-two'], $e2->logs[0]['other']);
        $this->assertSame('Yes', $e2->logs[0]['masquerading_user_was_you']);
        $this->assertSame('No', $e2->logs[0]['author_of_the_action_was_you']);

        // Export for user 7 (related user only): sees the event, not as author.
        writer::reset();
        provider::export_user_data(new approved_contextlist((object) ['id' => 7], 'logstore_tsdb', [$b]));
        $e7 = writer::harness()->get_data_in($this->ctxb, $path);
        $this->assertSame('Yes', $e7->logs[0]['related_user_was_you']);

        // The anonymous event: exported to its author, flagged.
        writer::reset();
        provider::export_user_data(new approved_contextlist((object) ['id' => 9], 'logstore_tsdb', [$b]));
        $e9 = writer::harness()->get_data_in($this->ctxb, $path);
        $this->assertSame('Yes', $e9->logs[0]['action_was_done_anonymously']);

        // Deletions (and what remains, read from the backend).
        provider::delete_data_for_user(new approved_contextlist((object) ['id' => 5], 'logstore_tsdb', [$b]));
        $this->assertSame(['five-a', 'six-a', 'eight-as-two', 'nine-anon'], $this->remaining($pg));
        provider::delete_data_for_userlist(new approved_userlist($this->ctxa, 'logstore_tsdb', [6, 99]));
        $this->assertSame(['five-a', 'eight-as-two', 'nine-anon'], $this->remaining($pg));
        provider::delete_data_for_all_users_in_context($this->ctxb);
        $this->assertSame(['five-a'], $this->remaining($pg));
        $cl = new contextlist();
        provider::add_contexts_for_userid($cl, 2);
        $this->assertSame([], $cl->get_contextids(), 'nothing left for user 2');
    }

    /**
     * File backend (JSON lines).
     */
    public function test_privacy_on_the_file_sink(): void {
        $this->log_scenario();
        $this->run_privacy_cycle(null);
    }

    /**
     * PostgreSQL through PHP's pgsql extension.
     */
    public function test_privacy_on_postgres_with_pgsql(): void {
        if (!function_exists('pg_connect')) {
            $this->markTestSkipped('SKIPPED: the pgsql PHP extension is not loaded');
        }
        pgdb::$forcepdo = false;
        $rows = $this->log_scenario();
        $pg = $this->use_postgres($rows);
        $this->run_privacy_cycle($pg);
    }

    /**
     * PostgreSQL through PDO.
     */
    public function test_privacy_on_postgres_with_pdo(): void {
        if (!class_exists('PDO') || !in_array('pgsql', PDO::getAvailableDrivers(), true)) {
            $this->markTestSkipped('SKIPPED: pdo_pgsql is not loaded');
        }
        pgdb::$forcepdo = true;
        try {
            $rows = $this->log_scenario();
            $pg = $this->use_postgres($rows);
            $this->run_privacy_cycle($pg);
        } finally {
            pgdb::$forcepdo = false;
        }
    }

    /**
     * InfluxDB with pseudonymisation: deleting a user forgets their pseudonym (points become anonymous).
     */
    public function test_influx_deletion_forgets_the_pseudonym(): void {
        global $DB;
        if (!$DB) {
            $this->markTestSkipped('SKIPPED: no PostgreSQL for Moodle\'s tables');
        }
        $this->configure(['backend' => 'influxdb1', 'pseudonymise' => 1]);
        $p5 = \logstore_tsdb\local\pseudonym::get(5);
        $p6 = \logstore_tsdb\local\pseudonym::get(6);
        $this->assertGreaterThanOrEqual(\logstore_tsdb\local\pseudonym::MIN, $p5);
        $this->assertNotSame($p5, $p6);
        \logstore_tsdb\local\pseudonym::reset_cache();
        $this->assertSame($p5, \logstore_tsdb\local\pseudonym::get(5), 'stable across requests');
        provider::delete_data_for_user(new approved_contextlist((object) ['id' => 5], 'logstore_tsdb',
            [context_course::instance(3)->id]));
        $this->assertSame([6 => $p6], \logstore_tsdb\local\pseudonym::existing([5, 6]));
        $this->assertSame([], \logstore_tsdb\local\pseudonym::users([$p5]), 'the old pseudonym leads to nobody');
        $cl = new contextlist();
        provider::add_contexts_for_userid($cl, 5);
        $this->assertSame([], $cl->get_contextids(), 'a forgotten user has nothing to find (no query is made)');
    }
}

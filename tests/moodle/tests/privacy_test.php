<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * Privacy requests in a real site, through core_privacy\manager as tool_dataprivacy runs them (tool_log delegates to
 * every log store): real events of several users in several contexts reach both logstore_standard and the TSDB store;
 * finding a user's contexts and a context's users, exporting (the real writer's zip, read back), and the three kinds
 * of deletion leave the TSDB holding exactly what the standard store holds after the same request, on every backend
 * the provider reads: the JSON lines file, PostgreSQL (pgsql and PDO), TimescaleDB with every chunk compressed, and
 * InfluxDB 1.6.7 with and without pseudonymisation. The export of the TSDB store is, context by context, the same JSON
 * as the standard store's.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/../lib/ops.php');
require_once(__DIR__ . '/privacy_fixture.php');

use core_privacy\local\metadata\collection;
use core_privacy\local\request\approved_contextlist;
use core_privacy\local\request\approved_userlist;
use core_privacy\local\request\contextlist;
use core_privacy\local\request\contextlist_collection;
use core_privacy\local\request\userlist;
use core_privacy\local\request\userlist_collection;
use logstore_tsdb\local\influx_client;
use logstore_tsdb\local\pseudonym;
use logstore_tsdb\privacy\provider;

/**
 * Privacy tests.
 */
class privacy_test extends base_testcase {
    use tsdb_test_ops;
    use tsdb_privacy_fixture;

    /**
     * Users and courses of the scenario.
     */
    protected function setUp(): void {
        parent::setUp();
        $this->create_privacy_fixture();
    }

    /**
     * Drops what the backend of the test created.
     */
    protected function tearDown(): void {
        parent::tearDown();
        $this->drop_privacy_backend();
        $this->drop_pg_tables();
    }

    /**
     * The metadata declares the external location with every column the store sends, and the pseudonym table; every
     * string the privacy registry shows exists; the provider is a log store provider of tool_log with user lists.
     */
    public function test_metadata(): void {
        $items = provider::get_metadata(new collection('logstore_tsdb'))->get_collection();
        $this->assertCount(2, $items);
        $this->assertInstanceOf(\core_privacy\local\metadata\types\external_location::class, $items[0]);
        $this->assertSame('tsdb', $items[0]->get_name());
        $this->assertSame('privacy:metadata:tsdb', $items[0]->get_summary());
        $fields = array_keys($items[0]->get_privacy_fields());
        sort($fields);
        $want = self::COLUMNS;
        sort($want);
        $this->assertSame($want, $fields, 'every column of logstore_standard_log the store sends out');
        $this->assertInstanceOf(\core_privacy\local\metadata\types\database_table::class, $items[1]);
        $this->assertSame(pseudonym::TABLE, $items[1]->get_name());
        $this->assertSame(['userid', 'pseudoid', 'timecreated'], array_keys($items[1]->get_privacy_fields()));
        $strings = get_string_manager();
        foreach ($items as $item) {
            $this->assertTrue($strings->string_exists($item->get_summary(), 'logstore_tsdb'), $item->get_summary());
            foreach ($item->get_privacy_fields() as $field => $identifier) {
                $this->assertTrue($strings->string_exists($identifier, 'logstore_tsdb'), "$field: $identifier");
            }
        }
        // What the site's privacy registry lists for the plugin: the same, through the manager.
        $all = (new \core_privacy\manager())->get_metadata_for_components();
        $this->assertSame('tsdb', $all['logstore_tsdb']->get_collection()[0]->get_name());
        $this->assertTrue((new \core_privacy\manager())->component_is_compliant('logstore_tsdb'));
        $this->assertInstanceOf(\tool_log\local\privacy\logstore_provider::class, new provider());
        $this->assertInstanceOf(\tool_log\local\privacy\logstore_userlist_provider::class, new provider());
    }

    /**
     * The file backend (JSON lines).
     */
    public function test_privacy_on_the_file_backend(): void {
        $this->use_backend('file');
        $this->run_privacy_cycle();
    }

    /**
     * PostgreSQL (daily partitions) through PHP's pgsql extension, with the summary tables materialised.
     */
    public function test_privacy_on_postgres_with_pgsql(): void {
        $this->use_backend('postgres');
        $this->run_privacy_cycle();
    }

    /**
     * PostgreSQL through PDO.
     */
    public function test_privacy_on_postgres_with_pdo(): void {
        \logstore_tsdb\local\pgdb::$forcepdo = true;
        try {
            $this->use_backend('postgres');
            $this->run_privacy_cycle();
        } finally {
            \logstore_tsdb\local\pgdb::$forcepdo = false;
        }
    }

    /**
     * TimescaleDB: a hypertable whose every chunk is compressed when the requests run, with the database's cap on rows
     * decompressed per statement at 1 (a day of a busy site exceeds the default 100 000), and the continuous aggregate
     * of daily users materialised.
     */
    public function test_privacy_on_timescaledb_compressed(): void {
        $this->use_backend('timescaledb');
        $this->run_privacy_cycle();
    }

    /**
     * TimescaleDB refuses to refresh a continuous aggregate while another session refreshes an overlapping window (its
     * refresh policy job, every 30 minutes): a deletion at that moment waits for it instead of failing after its rows
     * are gone with the per-user aggregate left stale. The other refresh is registered, as TimescaleDB registers its
     * own, by a superuser session for a few seconds.
     */
    public function test_timescaledb_deletion_waits_for_a_concurrent_refresh(): void {
        $superuser = $this->server_env('TSDB_TEST_PG_SUPERUSER_DSN');
        $this->use_backend('timescaledb');
        $this->fire_scenario(1);
        $this->prepare_backend_for_requests();
        $matid = (int) $this->ts_query('SELECT mat_hypertable_id AS id FROM _timescaledb_catalog.continuous_agg'
            . ' WHERE user_view_name = ?', [$this->target . '_daily_users'])[0]['id'];
        $ranges = '_timescaledb_catalog.continuous_aggs_jobs_refresh_ranges';
        $dsn = preg_replace('/\bdbname=\S+/', 'dbname=' . trim($this->ts_dbname(), '"'), $superuser);
        $proc = proc_open(['psql', $dsn, '-v', 'ON_ERROR_STOP=1', '-c', "INSERT INTO $ranges VALUES ($matid,"
            . ' -9223372036854775808, 9223372036854775807, pg_backend_pid(), 0, now())', '-c', 'SELECT pg_sleep(6)',
            '-c', "DELETE FROM $ranges WHERE pid = pg_backend_pid()"], [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        try {
            for ($i = 0; $i < 100 && !$this->ts_query("SELECT 1 FROM $ranges WHERE materialization_id = ?", [$matid]); $i++) {
                usleep(50000);
            }
            try {
                $this->ts_query("CALL refresh_continuous_aggregate('public.\"{$this->target}_daily_users\"', NULL, NULL)");
                $this->fail('a refresh while another one is registered');
            } catch (\PDOException $e) {
                $this->assertStringContainsString('due to a concurrent refresh', $e->getMessage());
            }
            $this->manager_delete_user($this->users['s1'], [$this->contexts['course1'], $this->contexts['page']]);
            $this->assert_no_failures('s1 deleted during a concurrent refresh');
            $this->assert_stores_agree(6, 's1 deleted during a concurrent refresh');
            $this->assert_summary_follows(1);
        } finally {
            $out = stream_get_contents($pipes[1]) . stream_get_contents($pipes[2]);
            $this->assertSame(0, proc_close($proc), "psql: $out");
        }
    }

    /**
     * InfluxDB 1.6.7 with pseudonymised user ids (the default).
     */
    public function test_privacy_on_influxdb1_pseudonymised(): void {
        $this->use_backend('influxdb1');
        $this->run_privacy_cycle();
    }

    /**
     * InfluxDB 1.6.7 with user ids as they are (pseudonymisation off, userid a field as by default), and contextid a
     * field too (an admin's tag set without it): contexts are found with DISTINCT and deleted point by point.
     */
    public function test_privacy_on_influxdb1_not_pseudonymised(): void {
        $this->use_backend('influxdb1', ['pseudonymise' => 0,
            'tags' => 'eventname,component,action,target,crud,edulevel,contextlevel,origin,courseid']);
        $this->run_privacy_cycle();
        $tags = array_column($this->influx()->query('SHOW TAG KEYS FROM "moodle_events"'), 'tagKey');
        $this->assertContains('courseid', $tags);
        $this->assertNotContains('contextid', $tags);
    }

    /**
     * The whole cycle on the configured backend: events, find, export side by side with the standard store, then the
     * three deletions, each compared with what the standard store keeps after the same request.
     */
    protected function run_privacy_cycle(): void {
        $n = $this->fire_scenario(3);
        $this->assertSame(24, $n);
        $standard = $this->standard_keys();
        $this->assertCount($n, $standard, 'logstore_standard got every event');
        $this->assertSame($standard, $this->backend_keys(), 'the TSDB holds the same events as the standard store');
        $this->prepare_backend_for_requests();
        $ctx = $this->contexts;

        // Find: a user's contexts (as author, related user and real user), through tool_log as the manager asks it,
        // and the TSDB store's own answer (the same: both stores hold the same events).
        $expected = [
            's1' => [$ctx['course1'], $ctx['page'], $ctx['s2user']],
            's2' => [$ctx['course1'], $ctx['forum'], $ctx['s2user']],
            's3' => [$ctx['system'], $ctx['course2']],
            'admin' => [$ctx['system'], $ctx['course2']],
            'nobody' => [],
        ];
        foreach ($expected as $who => $contexts) {
            $ids = array_map(function($c) {
                return (int) $c->id;
            }, $contexts);
            sort($ids);
            $this->assertSame($ids, $this->tsdb_contextids($this->users[$who]), "the TSDB store finds $who's contexts");
        }
        $this->assertSame(self::ids($expected['s1']), $this->manager_contextids($this->users['s1']),
            "the manager's tool_log contextlist of s1");
        // A context's users.
        foreach (['course1' => ['s1', 's2'], 'course2' => ['s3', 'admin'], 'system' => ['s3', 'admin'], 's2user' => ['s1', 's2'],
                'forum' => ['s2'], 'page' => ['s1']] as $context => $who) {
            $want = array_map(function($w) {
                return (int) $this->users[$w]->id;
            }, $who);
            sort($want);
            $this->assertSame($want, $this->tsdb_userids($ctx[$context]), "users in $context");
        }
        $want = [(int) $this->users['s3']->id, (int) get_admin()->id];
        sort($want);
        $this->assertSame($want, $this->manager_userids($ctx['course2']), "the manager's tool_log userlist of course 2");

        // Export: the real writer's zip, the standard store's files and the TSDB store's side by side.
        foreach (['s1', 's2', 's3', 'admin'] as $who) {
            $this->assert_exports_match($who);
        }

        // Delete one user in some approved contexts (not all of theirs): their events there, and only those.
        $this->manager_delete_user($this->users['s1'], [$ctx['course1'], $ctx['page']]);
        $this->assert_no_failures('s1 deleted');
        $this->assert_stores_agree(18, 's1 deleted in course 1 and the page');
        $this->assertSame(self::ids([$ctx['s2user']]), $this->tsdb_contextids($this->users['s1']));
        $this->assert_summary_follows(3);

        // Delete every user of a context.
        $this->manager_delete_context($ctx['forum']);
        $this->assert_no_failures('forum deleted');
        $this->assert_stores_agree(15, 'the forum context deleted');
        $this->assertSame([], $this->tsdb_userids($ctx['forum']));

        // Delete a list of users in a context: the events s3 is the author of in course 2 (some done by the admin
        // logged in as s3, some anonymous) go; the admin's "logged in as" events in the system context stay.
        $this->manager_delete_userlist($ctx['course2'], [$this->users['s3']]);
        $this->assert_no_failures('s3 deleted in course 2');
        $this->assert_stores_agree(9, 's3 deleted in course 2');
        $this->assertSame([], $this->tsdb_userids($ctx['course2']));
        $this->assertSame(self::ids([$ctx['system']]), $this->tsdb_contextids($this->users['s3']));
        $this->assertSame(self::ids([$ctx['system']]), $this->tsdb_contextids(get_admin()));

        // The rest of s1's events (their views of s2's profile): nothing of s1 is left. With pseudonyms, s1's goes
        // with them, and their old pseudonym leads to nobody; the others' stay.
        $pseudonyms = pseudonym::existing(array_column($this->users, 'id'));
        $this->manager_delete_user($this->users['s1'], [$ctx['s2user']]);
        $this->assert_no_failures('the rest of s1 deleted');
        $this->assert_stores_agree(6, 'the rest of s1 deleted');
        $this->assertSame([], $this->tsdb_contextids($this->users['s1']));
        if ($this->backend === 'influxdb1' && get_config('logstore_tsdb', 'pseudonymise')) {
            $s1 = (int) $this->users['s1']->id;
            $this->assertCount(4, array_unique($pseudonyms), 's1, s2, s3 and the admin each have their own pseudonym');
            foreach ($pseudonyms as $p) {
                $this->assertGreaterThanOrEqual(pseudonym::MIN, $p);
            }
            $left = $pseudonyms;
            unset($left[$s1]);
            $this->assertSame($left, pseudonym::existing(array_column($this->users, 'id')));
            $this->assertSame([], pseudonym::users([$pseudonyms[$s1]]));
        }
        $this->assert_no_failures('the whole cycle');
    }

    /**
     * The data privacy tool end to end, on PostgreSQL: an export request and a deletion request, approved by the admin,
     * run by cron's CLI (admin/cli/adhoc_task.php, another PHP process). The export file tool_dataprivacy stores holds
     * the TSDB store's logs as the standard store's; the deletion leaves both stores without the user's events.
     */
    public function test_data_privacy_tool_requests(): void {
        global $DB;
        $this->use_backend('postgres');
        $this->fire_scenario(1);
        $task = '\\tool_dataprivacy\\task\\process_data_request_task';
        $DB->delete_records('task_adhoc', ['classname' => $task]);
        $requests = [];
        // The admin approves each request here: the site's automatic approval (or filtering) would have done it already.
        $approval = [];
        foreach (['automaticdataexportapproval', 'automaticdatadeletionapproval', 'allowfiltering'] as $name) {
            $approval[$name] = get_config('tool_dataprivacy', $name);
            set_config($name, 0, 'tool_dataprivacy');
        }
        try {
            $types = ['s1' => \tool_dataprivacy\api::DATAREQUEST_TYPE_EXPORT,
                's2' => \tool_dataprivacy\api::DATAREQUEST_TYPE_DELETE];
            foreach ($types as $who => $type) {
                $this->set_user(get_admin());
                $request = \tool_dataprivacy\api::create_data_request($this->users[$who]->id, $type, 'logstore_tsdb test',
                    \tool_dataprivacy\data_request::DATAREQUEST_CREATION_MANUAL, false);
                $requests[] = $request->get('id');
                \tool_dataprivacy\api::approve_data_request($request->get('id'));
                $this->set_user(null);
                $this->new_request();
                [$rc, $out, $err] = tsdb_test_site::run_cli('admin/cli/adhoc_task.php', ['--execute', '--classname=' . $task]);
                $this->assertSame(0, $rc, $out . $err);
                $this->assertStringContainsString('The processing of the user data request has been completed', $out . $err);
                $this->assertStringNotContainsString('Exception', $out . $err);
                $this->assertStringNotContainsString('Debugging', $out . $err);
            }
            $this->assertSame(\tool_dataprivacy\api::DATAREQUEST_STATUS_DOWNLOAD_READY,
                (int) $DB->get_field('tool_dataprivacy_request', 'status', ['id' => $requests[0]]));
            $files = get_file_storage()->get_area_files(context_user::instance($this->users['s1']->id)->id, 'tool_dataprivacy',
                'export', $requests[0], 'id', false);
            $this->assertCount(1, $files);
            $zip = $this->dir . '/export.zip';
            reset($files)->copy_content_to($zip);
            $this->assert_exports_match('s1', $this->zip_logs($zip));

            $this->assertSame(\tool_dataprivacy\api::DATAREQUEST_STATUS_DELETED,
                (int) $DB->get_field('tool_dataprivacy_request', 'status', ['id' => $requests[1]]));
            $s2 = (int) $this->users['s2']->id;
            $this->assertSame(0, $DB->count_records('logstore_standard_log', ['userid' => $s2]));
            $this->assertSame([], self::pg_query('SELECT id FROM public."' . $this->target . '" WHERE userid = ?', [$s2]),
                "s2's events are gone from the TSDB");
            // Everything else (and what the requests themselves logged) is in both stores alike.
            $this->assertSame($this->standard_keys(), $this->backend_keys());
            $this->assertGreaterThanOrEqual(6, count($this->standard_keys()), 'the 6 events of the other users stay');
        } finally {
            $DB->delete_records('task_adhoc', ['classname' => $task]);
            foreach ($requests as $id) {
                $DB->delete_records('tool_dataprivacy_request', ['id' => $id]);
            }
            foreach ($approval as $name => $value) {
                set_config($name, $value === false ? null : $value, 'tool_dataprivacy');
            }
        }
    }

    /**
     * A backend that cannot be reached during a deletion request fails the request loudly: tool_log's provider throws,
     * the manager reports it to its observer, and with tool_dataprivacy's own observer (as its request task sets it)
     * every privacy officer gets a notification naming the backend, where it is and the settings to check — never the
     * password. The standard store, asked first, still deletes its part.
     */
    public function test_unreachable_backend_fails_the_request(): void {
        global $DB;
        $secret = 'pw-' . bin2hex(random_bytes(12));
        $this->fire_scenario(1);
        $cases = [
            'postgres' => [['backend' => 'postgres', 'host' => '127.0.0.1', 'port' => 1, 'password' => $secret],
                ['postgres', '127.0.0.1:1', 'logstore_tsdb | host, port, dbname, user, password']],
            'influxdb1' => [['backend' => 'influxdb1', 'url' => 'http://127.0.0.1:1', 'username' => 'reader',
                'password' => $secret, 'connect_timeout_ms' => 500],
                ['influxdb1', 'http://127.0.0.1:1', 'logstore_tsdb | url, database, retention_policy, username, password']],
        ];
        foreach ($cases as $backend => [$settings, $named]) {
            $this->configure($settings);
            $this->observer = new tsdb_test_privacy_observer();
            $this->manager_delete_user($this->users['s1'], [$this->contexts['course1']]);
            $this->assertCount(1, $this->failures, "$backend: one failure reported");
            $failure = $this->failures[0];
            $this->assertSame(['tool_log', 'delete_data_for_user'], [$failure['component'], $failure['method']]);
            $e = $failure['exception'];
            $this->assertInstanceOf(\moodle_exception::class, $e);
            $this->assertSame('privacybackendfailed', $e->errorcode, $e->getMessage());
            foreach ($named as $text) {
                $this->assertStringContainsString($text, $e->getMessage(), "$backend: the message names $text");
            }
            $this->assertStringContainsString('delete_data_for_user', $e->getMessage());
            foreach ([$e->getMessage(), $e->getTraceAsString(), $this->printed] as $shown) {
                $this->assertStringNotContainsString($secret, $shown, "$backend: the password is never shown");
            }
            $this->assertStringContainsString($e->getMessage(), $this->printed, "$backend: the manager's debugging()");
            $this->assertSame(0, $DB->count_records('logstore_standard_log', ['userid' => $this->users['s1']->id,
                'contextid' => $this->contexts['course1']->id]), "$backend: the standard store deleted its part");

            // What tool_dataprivacy's observer does with it: a notification to every privacy officer (the admin).
            $before = $DB->count_records('notifications', ['component' => 'tool_dataprivacy', 'eventtype' => 'notifyexceptions']);
            $manager = new tsdb_test_privacy_manager();
            $manager->set_observer(new \tool_dataprivacy\manager_observer());
            $collection = new contextlist_collection($this->users['s2']->id);
            $collection->add_contextlist(new approved_contextlist($this->users['s2'], 'tool_log', [$this->contexts['forum']->id]));
            ob_start();
            try {
                $manager->delete_data_for_user($collection);
            } finally {
                $printed = ob_get_clean();
            }
            $this->assertStringNotContainsString($secret, $printed);
            $sent = $DB->get_records_select('notifications', "component = 'tool_dataprivacy' AND eventtype = 'notifyexceptions'",
                null, 'id DESC', '*', 0, 1);
            $this->assertSame($before + 1, $DB->count_records('notifications', ['component' => 'tool_dataprivacy',
                'eventtype' => 'notifyexceptions']), "$backend: the privacy officer is notified");
            $message = reset($sent);
            $this->assertSame((int) get_admin()->id, (int) $message->useridto);
            $this->assertStringContainsString($named[1], $message->fullmessage);
            $this->assertStringContainsString('logstore_tsdb', $message->fullmessage);
            $this->assertStringNotContainsString($secret, $message->fullmessage . $message->fullmessagehtml);
        }
    }

    /**
     * The line protocol format of the file backend cannot be searched or rewritten: a request on a site whose file
     * holds events fails, naming the file, rather than answering "no data".
     */
    public function test_file_line_protocol_is_refused_loudly(): void {
        $this->configure(['format' => 'line', 'path' => $this->dir . '/events.lp']);
        $this->fire_scenario(1);
        $this->assertGreaterThan(0, filesize($this->dir . '/events.lp'));
        $this->manager_delete_user($this->users['s1'], [$this->contexts['course1']]);
        $this->assertCount(1, $this->failures);
        $e = $this->failures[0]['exception'];
        $this->assertSame('privacybackendfailed', $e->errorcode);
        $this->assertStringContainsString($this->dir . '/events.lp', $e->getMessage());
        $this->assertStringContainsString('line protocol', $e->getMessage());
        $this->assertSame('tool_log', $this->failures[0]['component']);
    }
}

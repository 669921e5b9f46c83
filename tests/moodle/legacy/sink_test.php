<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * The store through the extension's network sinks: PostgreSQL (read back with SQL, every column) and the InfluxDB
 * line protocol (captured by a local HTTP endpoint: pseudonymised user ids).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/base_testcase.php');
require_once(__DIR__ . '/log_dataset.php');

use logstore_tsdb\local\pgdb;

/**
 * Sink tests.
 */
class sink_test extends base_testcase {

    /**
     * Skips, loudly, when the loaded build of the extension does not have this sink yet.
     *
     * @param array $stats tsdb_stats()
     */
    protected function skip_if_sink_missing(array $stats): void {
        if (strpos((string) $stats['last_error'], 'is not built into this extension yet') !== false) {
            $this->markTestSkipped('SKIPPED: ' . $stats['last_error']);
        }
    }

    /**
     * Events through the postgres sink: every column read back with SQL equals what the standard store captures;
     * then the privacy provider and the connection test work on the extension's own table.
     */
    public function test_postgres_sink_read_back(): void {
        global $DB, $PAGE;
        if (!$DB) {
            $this->markTestSkipped('SKIPPED: no PostgreSQL (set TSDB_TEST_PG_HOST or let run.sh start one)');
        }
        // A name no earlier run can have left behind (a shared server keeps tables across runs).
        $table = 'sink_test_' . getmypid() . '_' . bin2hex(random_bytes(4));
        $this->configure(['backend' => 'postgres', 'host' => getenv('TSDB_TEST_PG_HOST'),
            'port' => getenv('TSDB_TEST_PG_PORT') ?: 5432, 'user' => getenv('TSDB_TEST_PG_USER') ?: 'postgres',
            'dbname' => getenv('TSDB_TEST_PG_DB') ?: 'postgres', 'password' => getenv('TSDB_TEST_PG_PASSWORD') ?: '',
            'schema' => 'public', 'table' => $table, 'retry_max_elapsed_ms' => 2000]);
        set_config('enabled_stores', 'logstore_tsdb,logstore_reference', 'tool_log');
        require_once(__DIR__ . '/reference_store.php');
        $before = tsdb_stats();
        harness::login_as(2, 5);
        $PAGE->harnessorigin = 'ws';
        $PAGE->harnessip = '203.0.113.5';
        $ctx = context_module::instance(12);
        \mod_quiz\event\attempt_submitted::create(['objectid' => 77, 'context' => $ctx, 'courseid' => 4, 'relateduserid' => 6,
            'other' => ['quizid' => 3, 'deep' => ['x' => [1, 2, ['y' => 'ü']]]]])->trigger();
        \core\event\course_viewed::create(['context' => context_course::instance(4), 'courseid' => 4, 'other' => null])
            ->trigger();
        $this->assertSame(0, tsdb_flush(15000));
        $stats = tsdb_stats();
        $this->skip_if_sink_missing($stats);
        $this->assertSame((int) $before['failed'], (int) $stats['failed'], 'postgres sink failed: ' . $stats['last_error']);

        $db = pgdb::from_config(\logstore_tsdb\log\store::read_plugin_config());
        $rows = $db->query('SELECT ' . implode(', ', self::COLUMNS) . ", time, event_id FROM public.$table ORDER BY id");
        $this->assertCount(2, \logstore_reference\log\store::$rows, 'the reference store saw both events');
        $this->assert_pg_rows_match_reference(\logstore_reference\log\store::$rows, $rows, 'postgres sink');
        $this->assertSame(2, (int) $rows[0]->realuserid);

        // The privacy provider on the extension's own table.
        $cl = new \core_privacy\local\request\contextlist();
        \logstore_tsdb\privacy\provider::add_contexts_for_userid($cl, 6);
        $this->assertSame([$ctx->id], $cl->get_contextids());
        \logstore_tsdb\privacy\provider::delete_data_for_all_users_in_context($ctx);
        $this->assertSame(1, (int) $db->query("SELECT count(*) AS n FROM public.$table")[0]->n);

        // Test connection: written and read back with SQL.
        $result = \logstore_tsdb\local\connection_tester::run(\logstore_tsdb\log\store::read_plugin_config());
        $this->assertTrue($result['ok'], $result['message']);
        $this->assertTrue($result['readback'], $result['message']);
        $db->close();
        log_dataset::drop_tsdb_table($table);
    }

    /**
     * InfluxDB 1.x line protocol with pseudonymisation: the user ids that leave Moodle are the pseudonyms.
     */
    public function test_influx_lines_carry_pseudonyms(): void {
        global $DB;
        if (!$DB) {
            $this->markTestSkipped('SKIPPED: no PostgreSQL for Moodle\'s pseudonym table');
        }
        $capture = $this->start_influx_capture();
        $port = $capture[1];
        try {
            $this->configure(['backend' => 'influxdb1', 'url' => "http://127.0.0.1:$port", 'database' => 'moodle',
                'gzip' => 0, 'pseudonymise' => 1, 'retry_max_elapsed_ms' => 2000]);
            $before = tsdb_stats();
            harness::login_as(2, 5);
            \core\event\user_profile_viewed::create(['objectid' => 6, 'relateduserid' => 6,
                'context' => context_user::instance(6)])->trigger();
            $this->assertSame(0, tsdb_flush(15000));
            $stats = tsdb_stats();
            $this->skip_if_sink_missing($stats);
            $this->assertSame((int) $before['failed'], (int) $stats['failed'], 'influx sink failed: ' . $stats['last_error']);
            $writes = $this->captured_writes($capture[2]);
            $this->assertCount(1, $writes);
            $this->assertStringContainsString('db=moodle', $writes[0]['uri']);
            $line = trim($writes[0]['body']);
            $p = \logstore_tsdb\local\pseudonym::existing([2, 5, 6]);
            $this->assertCount(3, $p, 'pseudonyms created for the author, the related and the real user');
            $this->assertMatchesRegularExpression('/[ ,]userid=' . $p[5] . 'i/', $line);
            $this->assertMatchesRegularExpression('/[ ,]relateduserid=' . $p[6] . 'i/', $line);
            $this->assertMatchesRegularExpression('/[ ,]realuserid=' . $p[2] . 'i/', $line);
            $this->assertDoesNotMatchRegularExpression('/userid=[256]i/', $line, 'no real user id leaves Moodle');
            $this->assertStringContainsString('contextid=' . context_user::instance(6)->id, $line, 'contextid is a tag');
        } finally {
            $this->stop_influx_capture($capture);
        }
    }
}

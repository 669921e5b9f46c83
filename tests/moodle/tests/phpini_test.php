<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * Configuration source = php.ini: the extension is configured by tsdb.* directives (given to the site's PHP as
 * php.ini gives them: -d for the CLI, the master's -d for a PHP-FPM pool), the plugin's own settings point somewhere
 * else (a file sink, a table that does not exist, a port nothing listens on, no retention). Every part of the plugin
 * must use the table the extension writes to: logging, the report reader, the status page and its Test connection
 * served by PHP-FPM, privacy deletion, and the retention and summary tasks run by cron.
 *
 * Each step is a PHP process of the site of its own, like the requests and cron runs of a site.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/../lib/ops.php');
require_once(__DIR__ . '/status_page_test.php');

/**
 * php.ini configuration source tests.
 */
class phpini_test extends base_testcase {
    use tsdb_test_ops;

    /** @var int Events logged. */
    const N = 31;

    /** @var tsdb_test_site_pool|null */
    protected $pool = null;

    /**
     * Stops the pool, drops the table.
     */
    protected function tearDown(): void {
        if ($this->pool) {
            $this->pool->stop();
        }
        parent::tearDown();
        $this->drop_pg_tables();
    }

    /**
     * Logging, report reader, status page and Test connection, privacy deletion, retention and summary tasks: all
     * on the php.ini table; N in, N read back, every deletion seen in the table.
     */
    public function test_every_part_uses_the_phpini_configuration(): void {
        $settings = $this->pg_settings('phpini');
        $table = $settings['table'];
        $token = 'ini-token-' . bin2hex(random_bytes(12));
        $ini = ['tsdb.token' => $token, 'tsdb.flush_interval_ms' => '50', 'tsdb.retention_days' => '0',
            'tsdb.spool_dir' => $this->dir . '/ini-spool'];
        foreach (['backend', 'host', 'port', 'user', 'dbname', 'password', 'schema', 'table'] as $key) {
            $ini["tsdb.$key"] = (string) $settings[$key];
        }
        // The page's settings: every backend key points elsewhere.
        $this->configure(['configsource' => 'phpini', 'host' => '127.0.0.1', 'port' => 1, 'table' => 'decoy_table',
            'retention_days' => 0]);
        $courses = [$this->gen()->create_course(), $this->gen()->create_course()];
        $users = [$this->gen()->create_user(), $this->gen()->create_user()];
        $this->forget_events_so_far();
        $ctx = [context_course::instance($courses[0]->id)->id, context_course::instance($courses[1]->id)->id];
        $uid = [(int) $users[0]->id, (int) $users[1]->id];
        $ids = 'list($u0, $u1, $c0, $c1) = [' . implode(', ', [$uid[0], $uid[1], $courses[0]->id, $courses[1]->id]) . "];\n";

        // 1. A request that logs N events (two users, two courses) and three events 40 days old; half-way the settings
        // page's probe of durable mode runs, which must leave the php.ini configuration in place.
        $r = $this->run_json($ids . '$cfg = \logstore_tsdb\log\store::read_plugin_config();
$r = ["cfg" => [$cfg->backend, $cfg->table, (int) $cfg->port]];
for ($i = 1; $i <= ' . self::N . '; $i++) {
    \core\session\manager::set_user(\core_user::get_user($i % 2 ? $u0 : $u1));
    $ctx = \context_course::instance($i % 3 ? $c0 : $c1);
    \core\event\course_viewed::create(["context" => $ctx, "other" => ["i" => $i]])->trigger();
    if ($i === 15) {
        $r["durable"] = \logstore_tsdb\local\extension::supports_mode("durable");
    }
}
$r["logging"] = get_log_manager()->get_readers()["logstore_tsdb"]->is_logging();
\core\session\manager::set_user(\core_user::get_user($u1));
for ($k = 0; $k < 3; $k++) {
    $entry = \core\event\course_viewed::create(["context" => \context_course::instance($c0), "other" => ["old" => $k]])
        ->get_data();
    $entry = array_merge($entry, ["timecreated" => time() - 40 * 86400, "origin" => "cli", "ip" => "", "realuserid" => null]);
    \logstore_tsdb\local\extension::log_event($entry);
}
get_log_manager()->dispose();
$r["pending"] = tsdb_flush(10000);
$stats = tsdb_stats();
$r["stats"] = [$stats["backend"], $stats["written"], $stats["failed"]];
echo json_encode($r);', $ini);
        $this->assertSame(['postgres', $table, (int) $settings['port']], $r['cfg'],
            'read_plugin_config() is the php.ini configuration');
        $this->assertTrue($r['logging']);
        $this->assertTrue($r['durable'], 'durable mode is offered in php.ini mode');
        $this->assertSame(0, $r['pending']);
        $this->assertSame(['postgres', self::N + 3, 0], $r['stats']);
        $standard = $this->standard_rows();
        $this->assertCount(self::N, $standard);
        $this->assert_pg_rows_match_standard($standard, $this->pg_log_rows($table, "other->>'i' IS NOT NULL"), 'the php.ini table');
        $this->assertCount(3, $this->pg_log_rows($table, "other->>'old' IS NOT NULL"));
        $this->assertSame([], $this->read_back(), 'nothing went to the page\'s file sink');

        // 2. Moodle's log report: the sql_reader answers from the same table.
        $r = $this->run_json($ids . '$store = get_log_manager()->get_readers()["logstore_tsdb"];
echo json_encode(["count" => $store->get_events_select_count("courseid = ? AND timecreated > ?", [$c0, time() - 86400]),
    "u0" => array_values(array_map(function($e) {
        return $e->other["i"];
    }, $store->get_events_select("userid = ?", [$u0], "timecreated ASC, id ASC", 0, 0)))]);', $ini);
        $inc0 = array_filter(range(1, self::N), function($i) {
            return $i % 3 !== 0;
        });
        $this->assertSame(count($inc0), $r['count']);
        $this->assertSame(range(1, self::N, 2), $r['u0']);

        // 3. The status page served by PHP-FPM with the same php.ini: Test connection writes and reads back its
        // marker in the same table; the backend the extension writes to is shown, no secret.
        $this->pool = new tsdb_test_site_pool($this->dir . '/pool', true, [], $ini);
        $admin = (new tsdb_test_pool_http($this->pool))->login_admin();
        $html = $admin->get(status_page_test::status_path());
        $html = $admin->post(status_page_test::status_path(), ['action' => 'test', 'sesskey' => tsdb_test_http::sesskey($html)]);
        $this->assert_no_php_notice($html, 'status page');
        $this->assertMatchesRegularExpression('~alert-success.{0,400}Connection works~s', $html);
        $this->assertSame(get_string('backend_postgres', 'logstore_tsdb'), status_page_test::status_row($html, 'Backend'));
        $this->assertStringNotContainsString($token, $html);
        if ($settings['password'] !== '') {
            $this->assertStringNotContainsString($settings['password'], $html);
        }
        $this->assertMatchesRegularExpression('~\((tsdb-test-[0-9a-f]{16})\)~', $html);
        preg_match('~\((tsdb-test-[0-9a-f]{16})\)~', $html, $m);
        $this->assertCount(1, $this->pg_log_rows($table, "other->>'marker' = " . self::pg()->quote($m[1])), 'the marker');
        $this->pool->stop();
        $this->assertSame([], $this->pool->php_errors());

        // 4. Privacy: user 0's contexts, then user 0's events in course 0 and every event of course 1 deleted.
        $r = $this->run_json($ids . 'use core_privacy\local\request\approved_contextlist;
use logstore_tsdb\privacy\provider;
$cl = new \core_privacy\local\request\contextlist();
provider::add_contexts_for_userid($cl, $u0);
$r = ["contexts" => array_map("intval", $cl->get_contextids())];
sort($r["contexts"]);
provider::delete_data_for_user(new approved_contextlist(\core_user::get_user($u0), "logstore_tsdb",
    [\context_course::instance($c0)->id]));
provider::delete_data_for_all_users_in_context(\context_course::instance($c1));
echo json_encode($r);', $ini);
        $this->assertSame($ctx, $r['contexts'], 'user 0\'s two course contexts, from the php.ini table');
        $left = array_map('intval', array_column(self::pg_query("SELECT (other->>'i')::int AS i FROM public.\"$table\""
            . " WHERE other->>'i' IS NOT NULL ORDER BY 1"), 'i'));
        $this->assertSame(array_values(array_filter(range(1, self::N), function($i) {
            return $i % 2 === 0 && $i % 3 !== 0;
        })), $left, 'the deletions happened in the php.ini table');
        $this->assertCount(3, $this->pg_log_rows($table, "other->>'old' IS NOT NULL"), 'user 1\'s old events in course 0 stay');

        // 5. Cron with tsdb.retention_days = 30: the old events go; the summary counts the rows of the php.ini table.
        $ini['tsdb.retention_days'] = '30';
        $out = $this->run_task('retention', true, $ini);
        $this->assertStringContainsString('logstore_tsdb: deleted 3 events older than 30 days.', $out);
        $this->assertSame([], $this->pg_log_rows($table, "other->>'old' IS NOT NULL"));
        $out = $this->run_task('summarise', true, $ini);
        $this->assertMatchesRegularExpression('/logstore_tsdb: summaries: \d+ days materialised between/', $out);
        $rows = count($this->pg_log_rows($table));
        $this->assertSame($rows, (int) self::pg_query("SELECT sum(events) AS n FROM public.\"{$table}_hourly\"")[0]['n'],
            'the summary counts the rows of the php.ini table');
        $this->assertFalse(self::pg_exists('decoy_table'));
    }
}

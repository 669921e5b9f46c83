<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * A PHP-FPM pool that fixes tsdb.* values with php_admin_value, serving the site's real pages, with Configuration
 * source = this page: the extension keeps the pool's values (tsdb_configure() cannot change them), so every part of
 * the plugin in that pool must use them too.
 *
 * The page's settings point elsewhere (the file sink of this test, another table, another retention); the pool fixes
 * the backend, the connection and the table. A student's real requests log their events into the pool's table (N in,
 * exactly what logstore_standard holds for the same requests), another request reads them back through the store's
 * reader, and the status page served by the pool shows the extension's warning.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/../lib/ops.php');
require_once(__DIR__ . '/status_page_test.php');

/**
 * php_admin_value tests.
 */
class fpm_admin_value_test extends base_testcase {
    use tsdb_test_ops;

    /** @var int Course views by the student. */
    const N = 12;

    /** @var tsdb_test_site_pool|null */
    protected $pool = null;

    /**
     * Stops the pool, removes the step pages, drops the table.
     */
    protected function tearDown(): void {
        if ($this->pool) {
            $this->pool->stop();
        }
        $this->remove_steps();
        parent::tearDown();
        $this->drop_pg_tables();
    }

    /**
     * Logging, the report reader and the status page under a pool that fixes the backend, its connection and table.
     */
    public function test_values_fixed_by_the_pool_are_used_by_every_part(): void {
        $course = $this->gen()->create_course();
        $student = $this->user_with_password();
        $this->gen()->enrol_user($student->id, $course->id, 'student');
        $this->forget_events_so_far();
        $pooltsdb = $this->pg_settings('fpm');
        $table = $pooltsdb['table'];
        unset($pooltsdb['schema'], $pooltsdb['retry_max_elapsed_ms']);
        $pooltsdb += ['flush_interval_ms' => 50, 'spool_dir' => $this->dir . '/pool-spool'];
        if ($pooltsdb['password'] === '') {
            unset($pooltsdb['password']);
        }
        // The page's settings: the backend keys point elsewhere; retention_days is the page's (the master's -d value
        // is a php.ini default, which the page overrides).
        $this->configure(['table' => 'decoy_table', 'retention_days' => 30]);
        $this->pool = new tsdb_test_site_pool($this->dir . '/pool', true, $pooltsdb, ['tsdb.retention_days' => 7]);

        $http = (new tsdb_test_pool_http($this->pool))->login($student->username, $student->clearpassword);
        for ($i = 0; $i < self::N; $i++) {
            $html = $http->get('/course/view.php?id=' . $course->id);
            $this->assertSame(200, $http->status);
        }
        $this->assert_no_php_notice($html, 'course page');
        $views = "eventname = '\\core\\event\\course_viewed' AND userid = " . (int) $student->id;
        for ($i = 0; $i < 300 && count($this->pg_log_rows($table, $views)) < self::N; $i++) {
            usleep(100000);
        }
        $this->assertCount(self::N, $this->pg_log_rows($table, $views), 'N course views in the pool\'s table');

        // Another request reads them back through the store's reader, and tells what this PHP runs with.
        $step = $this->site_step('$cfg = \logstore_tsdb\log\store::read_plugin_config();
$store = get_log_manager()->get_readers()["logstore_tsdb"];
$stats = tsdb_stats();
echo json_encode(["cfg" => [$cfg->backend, $cfg->table, (int) $cfg->retention_days],
    "fixed" => array_keys($cfg->pagevalues ?? []), "backend" => $stats["backend"], "warning" => $stats["warning"],
    "count" => $store->get_events_select_count("courseid = :c AND eventname = :e",
        ["c" => ' . (int) $course->id . ', "e" => "\\\\core\\\\event\\\\course_viewed"]),
    "users" => array_values(array_unique(array_map(function($e) {
        return (int) $e->userid;
    }, $store->get_events_select("courseid = ?", [' . (int) $course->id . '], "timecreated ASC, id ASC", 0, 0))))]);');
        $out = $http->get($step);
        $r = json_decode($out, true);
        $this->assertIsArray($r, "step request: $out");
        $this->assertSame(['postgres', $table, 30], $r['cfg'], 'the pool\'s backend and table, the page\'s retention');
        $fixed = array_keys($pooltsdb);
        sort($fixed);
        sort($r['fixed']);
        $this->assertSame($fixed, $r['fixed'], 'exactly the keys of php_admin_value');
        $this->assertSame('postgres', $r['backend']);
        $this->assertStringContainsString('backend: fixed by the server (php_admin_value[tsdb.backend]); the value given '
            . 'to tsdb_configure() is not used', $r['warning']);
        $this->assertStringContainsString('table: fixed by the server (php_admin_value[tsdb.table])', $r['warning']);
        $this->assertStringNotContainsString('host: fixed', $r['warning'], 'the page asked for the same host');
        $this->assertSame(self::N, $r['count'], 'the reader counts N in the pool\'s table');
        $this->assertSame([(int) $student->id], $r['users']);

        // The status page served by the pool shows the extension's warning, and the backend it writes to.
        $admin = (new tsdb_test_pool_http($this->pool))->login_admin();
        $html = $admin->get(status_page_test::status_path());
        $this->assert_no_php_notice($html, 'status page');
        $this->assertMatchesRegularExpression('~alert-warning.{0,400}' . preg_quote('The tsdb extension warns: backend: '
            . 'fixed by the server (php_admin_value[tsdb.backend]); the value given to tsdb_configure() is not used', '~')
            . '~s', $html);
        $this->assertSame(get_string('backend_postgres', 'logstore_tsdb'), status_page_test::status_row($html, 'Backend'));

        // Every event of these requests, once, in the pool's table; none in the page's sink.
        $this->pool->stop();
        $this->assertSame([], $this->pool->php_errors(), 'the pool logged no PHP error');
        $standard = self::sorted_rows($this->standard_rows());
        $this->assertGreaterThan(self::N, count($standard), 'the logins and the views');
        $this->assert_pg_rows_match_standard($standard, self::sorted_rows($this->pg_log_rows($table)), 'the pool\'s table');
        $this->assertSame([], $this->read_back(), 'nothing went to the page\'s file sink');
    }
}

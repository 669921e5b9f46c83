<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The same site driven by a PHP without the tsdb extension (the plugin installed and enabled, the extension missing
 * from a CLI, from cron, from a PHP-FPM pool): nothing breaks, events still reach logstore_standard, every page renders
 * without a PHP notice, and the places an administrator looks say why nothing reaches the TSDB.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/../lib/ops.php');
require_once(__DIR__ . '/status_page_test.php');

/**
 * Tests of a site whose PHP lacks the extension.
 */
class no_extension_test extends base_testcase {
    use tsdb_test_ops;

    /** @var \stdClass a course */
    protected $course;

    /** @var \stdClass a student of it, with a password */
    protected $student;

    /** @var tsdb_test_site_pool|null */
    protected $pool = null;

    /**
     * A course and a student; the plugin's defaults applied as an install applies them (so that admin/index.php
     * shows the notifications page rather than New settings).
     */
    protected function setUp(): void {
        global $CFG;
        parent::setUp();
        require_once($CFG->libdir . '/adminlib.php');
        $this->course = $this->gen()->create_course();
        $this->student = $this->user_with_password();
        $this->gen()->enrol_user($this->student->id, $this->course->id, 'student');
        $this->set_user(get_admin());
        $root = admin_get_root(true, true);
        admin_apply_default_settings($root->locate('logsettingtsdb'), false);
        admin_apply_default_settings($root->locate('logstore_tsdb_tuning'), false);
        $this->set_user(null);
        $this->configure(['healththreshold' => 1]);
        $this->forget_events_so_far();
        $this->mark_fpm_log();
    }

    /**
     * Stops the pool.
     */
    protected function tearDown(): void {
        if ($this->pool) {
            $this->pool->stop();
        }
        parent::tearDown();
    }

    /**
     * The extension's missing-extension message, as the plugin words it.
     *
     * @return string
     */
    protected static function missing(): string {
        return 'The tsdb PHP extension is not loaded in this PHP';
    }

    /**
     * A CLI script of the site without the extension: no error or notice; the event reaches logstore_standard and
     * not the TSDB; the store says it is not logging; the settings page (the site's admin tree), the status check,
     * the health check and Test connection say why; durable mode is not offered.
     */
    public function test_cli_script_without_the_extension(): void {
        $code = '$r = ["loaded" => extension_loaded("tsdb") || function_exists("tsdb_log_event")];
\core\session\manager::set_user(\core_user::get_user(' . (int) $this->student->id . '));
\core\event\course_viewed::create(["context" => \context_course::instance(' . (int) $this->course->id . ')])->trigger();
$store = get_log_manager()->get_readers()["logstore_tsdb"];
$r["is_logging"] = $store->is_logging();
$r["name"] = $store->get_name();
get_log_manager()->dispose();
\core\session\manager::set_user(get_admin());
require_once($CFG->libdir . "/adminlib.php");
$r["settings"] = [];
$root = admin_get_root(true, true);
foreach (array_merge((array) $root->locate("logsettingtsdb")->settings,
        (array) $root->locate("logstore_tsdb_tuning")->settings) as $s) {
    $r["settings"][$s->name] = $s instanceof admin_setting_heading ? (string) $s->description : get_class($s);
}
$result = (new \logstore_tsdb\check\extension_check())->get_result();
$r["check"] = [$result->get_status(), $result->get_summary()];
$r["health"] = \logstore_tsdb\local\health::check();
$r["test"] = \logstore_tsdb\local\connection_tester::run(\logstore_tsdb\log\store::read_plugin_config());
$r["durable"] = \logstore_tsdb\local\extension::supports_mode("durable");
echo json_encode($r);';
        [$rc, $out, $err] = tsdb_test_site::run_code($code, [], [], false);
        $this->assertSame(0, $rc, "no fatal error: $out\n$err");
        $this->assert_no_php_notice($out . $err, 'the CLI script');
        $this->assertSame('', trim($err));
        $r = json_decode(substr($out, strpos($out, '{"loaded"')), true);
        $this->assertIsArray($r, $out);
        $this->assertFalse($r['loaded'], 'this PHP has no tsdb extension');
        $this->assertFalse($r['is_logging']);
        $this->assertSame(get_string('pluginname', 'logstore_tsdb'), $r['name']);
        // The health check's notification to the administrators is logged too (notification_sent).
        $standard = $this->standard_rows('eventname <> ?', ['\\core\\event\\notification_sent']);
        $this->assertSame(['\core\event\course_viewed'], array_column($standard, 'eventname'), 'logstore_standard logs on');
        $this->assertSame((int) $this->student->id, (int) $standard[0]['userid']);
        $this->assertSame([], $this->read_back(), 'nothing reached the TSDB');
        $this->assertStringContainsString(self::missing(), $r['settings']['extensionmissing']);
        $this->assertStringContainsString('extension=tsdb', $r['settings']['extensionmissing'], 'and how to fix it');
        foreach (\logstore_tsdb\local\settings_definition::all() as $name => $def) {
            $this->assertArrayHasKey($name, $r['settings'], "$name can still be filled in");
        }
        $this->assertSame([\core\check\result::ERROR, get_string('extensionmissing', 'logstore_tsdb', PHP_VERSION
            . (PHP_ZTS ? ' ZTS' : ' NTS'))], $r['check']);
        $this->assertSame('notified', $r['health'], 'threshold 1: the administrators are told');
        $this->assertStringContainsString(get_string('health_problem_extension', 'logstore_tsdb'),
            (string) get_config('logstore_tsdb', 'healthlastproblem'));
        $this->assertFalse($r['test']['ok']);
        $this->assertStringContainsString(self::missing(), $r['test']['message']);
        $this->assertFalse($r['durable']);
    }

    /**
     * Cron without the extension: the four tasks complete and say why they did nothing; the health check notifies.
     */
    public function test_tasks_without_the_extension(): void {
        global $DB;
        $before = (int) $DB->get_field_select('notifications', 'MAX(id)', "component = 'logstore_tsdb'");
        $out = $this->run_task('replay_spool', false);
        $this->assertStringContainsString('tsdb_replay_spool() is missing', $out);
        $out = $this->run_task('health_check', false);
        $this->assertStringContainsString('logstore_tsdb: failing check 1: ' . get_string('health_problem_extension',
            'logstore_tsdb'), $out);
        $this->assertStringContainsString('logstore_tsdb: health notified', $out);
        $sent = $DB->get_records_select('notifications', "component = 'logstore_tsdb' AND id > ?", [$before]);
        $this->assertCount(count(get_admins()), $sent);
        $this->assertStringContainsString(get_string('health_problem_extension', 'logstore_tsdb'),
            reset($sent)->fullmessage);
        $out = $this->run_task('summarise', false);
        $this->assertStringContainsString('logstore_tsdb: summary tables are for the postgres backend (backend file).', $out);
        $out = $this->run_task('retention', false);
        $this->assertStringContainsString('logstore_tsdb: retention not applicable (backend file', $out);
    }

    /**
     * Web requests served by a PHP-FPM pool without the extension: a student's login and course view reach
     * logstore_standard (origin web, the client's IP) and nothing else; the administrator's status page, settings
     * page, System status and notifications page render without a PHP notice and say that the extension is missing.
     */
    public function test_web_pages_without_the_extension(): void {
        $this->pool = new tsdb_test_site_pool($this->dir . '/pool', false);
        $http = (new tsdb_test_pool_http($this->pool))->login($this->student->username, $this->student->clearpassword);
        $html = $http->get('/course/view.php?id=' . $this->course->id);
        $this->assertSame(200, $http->status);
        $this->assert_no_php_notice($html, 'course page');
        $this->assertStringContainsString(s($this->course->fullname), $html);
        $standard = $this->standard_rows('userid = ?', [$this->student->id]);
        $this->assertSame(['\core\event\user_loggedin', '\core\event\course_viewed'], array_column($standard, 'eventname'));
        $this->assertSame(['web', 'web'], array_column($standard, 'origin'));
        $this->assertSame(['127.0.0.1', '127.0.0.1'], array_column($standard, 'ip'));
        $this->assertSame([], $this->read_back(), 'nothing reached the TSDB');

        $admin = (new tsdb_test_pool_http($this->pool))->login_admin();
        $status = $admin->get(status_page_test::status_path());
        $this->assertSame(200, $admin->status);
        $this->assert_no_php_notice($status, 'status page');
        $this->assertMatchesRegularExpression('~alert-danger.{0,300}' . preg_quote(self::missing(), '~') . '~s', $status);
        $this->assertStringContainsString('Reporting processes', $status, 'the rest of the page is there');

        $settings = $admin->get('/admin/settings.php?section=logsettingtsdb');
        $this->assert_no_php_notice($settings, 'settings page');
        $this->assertMatchesRegularExpression('~alert-danger[^>]*>[^<]*' . preg_quote(self::missing(), '~') . '~', $settings);
        $this->assertArrayHasKey('s_logstore_tsdb_backend', self::form_fields($settings, 'adminsettings'));

        $check = status_page_test::system_status_check($admin);
        $this->assertSame('Error', $check['status']);
        $this->assertStringContainsString(self::missing(), $check['html']);
        $this->assert_no_php_notice($check['page'], 'System status');

        $index = $admin->get('/admin/index.php');
        $this->assertMatchesRegularExpression('~/admin/index\.php(\?cache=1)?$~', $admin->url,
            'the notifications page, not New settings');
        $this->assert_no_php_notice($index, 'notifications page');
        $this->assertMatchesRegularExpression('~alert-danger.{0,300}' . preg_quote(self::missing(), '~') . '~s', $index,
            'Site administration > Notifications says it');
        $course = $admin->get('/course/view.php?id=' . $this->course->id);
        $this->assertStringNotContainsString(self::missing(), $course, 'only on the notifications page');
        $this->assertSame([], $this->pool->php_errors(), 'the pool logged no PHP error');
    }

    /**
     * With the extension (the site's own pool) the notifications page says nothing about it.
     */
    public function test_no_notice_with_the_extension(): void {
        $admin = (new tsdb_test_http())->login_admin();
        $index = $admin->get('/admin/index.php');
        $this->assertMatchesRegularExpression('~/admin/index\.php(\?cache=1)?$~', $admin->url);
        $this->assert_no_php_notice($index, 'notifications page');
        $this->assertStringContainsString(get_string('notifications'), $index);
        $this->assertStringNotContainsString(self::missing(), $index);
        $this->assert_fpm_log_clean();
    }
}

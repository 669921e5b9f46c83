<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * Moodle's own report pages over HTTP, as the logged-in administrator, on the TSDB reader: Site administration >
 * Reports > Logs (report/log/index.php with logreader=logstore_tsdb) and Live logs (report/loglive/index.php) show
 * the same rows as with logreader=logstore_standard, with the PostgreSQL and with the InfluxDB backend, and no PHP
 * notice at DEBUG_DEVELOPER (the sites run with $CFG->debug = E_ALL and debugdisplay). A failing InfluxDB is reported
 * on the page with the server's error and the setting to check, without the password.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/log_dataset.php');

use logstore_tsdb\local\influx_client;

/**
 * Report pages.
 */
class report_pages_test extends base_testcase {

    /** @var \stdClass the course of this test */
    protected $course;

    /** @var string InfluxDB database of this test ('' when none) */
    protected $database = '';

    /** @var string PostgreSQL table of this test ('' when none) */
    protected $table = '';

    /**
     * A course with a page, a forum and three students; the events of making them are forgotten.
     */
    protected function setUp(): void {
        parent::setUp();
        $this->course = $this->gen()->create_course();
        $this->gen()->create_module('page', ['course' => $this->course->id]);
        $this->gen()->create_module('forum', ['course' => $this->course->id]);
        foreach ([1, 2, 3] as $i) {
            $this->gen()->create_and_enrol($this->course, 'student');
        }
        $this->forget_events_so_far();
    }

    /**
     * Drops what the test created on the servers; the site back to the file backend.
     */
    protected function tearDown(): void {
        parent::tearDown();
        self::reset_plugin_config();
        if ($this->database !== '') {
            $client = new influx_client(log_dataset::plugin_config(log_dataset::influx_settings($this->database)));
            $client->query('DROP DATABASE ' . influx_client::quote_identifier($this->database), true);
        }
        if ($this->table !== '') {
            log_dataset::drop_tsdb_table($this->table);
        }
    }

    /**
     * The students view the course and its activities, some twice; written by both stores.
     *
     * @return int events fired
     */
    protected function fire_student_events(): int {
        global $DB;
        $n = 0;
        $students = get_enrolled_users(context_course::instance($this->course->id));
        $cms = get_fast_modinfo($this->course)->get_cms();
        foreach ($students as $student) {
            $this->set_user($student);
            \core\event\course_viewed::create(['context' => context_course::instance($this->course->id)])->trigger();
            $n++;
            foreach ($cms as $cm) {
                $class = '\\mod_' . $cm->modname . '\\event\\course_module_viewed';
                $instance = $DB->get_record($cm->modname, ['id' => $cm->instance]);
                for ($i = 0; $i < 2; $i++) {
                    $class::create(['objectid' => $instance->id, 'context' => context_module::instance($cm->id)])->trigger();
                    $n++;
                }
            }
        }
        $this->set_user(null);
        $this->new_request();
        $this->assertSame(0, tsdb_flush(15000));
        return $n;
    }

    /**
     * The rows of a report table, each as its cells' text; the administrator's own "report viewed" events (logged by
     * the page loads themselves, visible or not yet depending on timing) left out.
     *
     * @param string $html
     * @param string $tableid id prefix of the rows (report_log, report_loglive)
     * @return string[][]
     */
    protected static function rows(string $html, string $tableid): array {
        $doc = new DOMDocument();
        @$doc->loadHTML('<?xml encoding="utf-8"?>' . $html);
        $xpath = new DOMXPath($doc);
        $rows = [];
        foreach ($xpath->query("//tr[starts-with(@id, '{$tableid}_r')]") as $tr) {
            $cells = [];
            foreach ($xpath->query('./td', $tr) as $td) {
                $cells[] = trim(preg_replace('/\s+/u', ' ', $td->textContent));
            }
            if (trim(implode('', $cells)) === '' || preg_match('/report viewed/i', implode(' ', $cells))) {
                continue; // A padding row of the table, or the administrator's own page views.
            }
            $rows[] = $cells;
        }
        return $rows;
    }

    /**
     * Logs and Live logs of the course, through each reader, as the administrator: the same rows.
     *
     * @param int $n events the students fired
     * @param string $backend for messages
     */
    protected function assert_pages_match(int $n, string $backend): void {
        $http = (new tsdb_test_http())->login_admin();
        $id = $this->course->id;
        $pages = [];
        foreach (['logstore_standard', 'logstore_tsdb'] as $reader) {
            $html = $http->get("/report/log/index.php?id=$id&chooselog=1&logreader=$reader&perpage=100");
            $this->assertSame(200, $http->status, "$backend $reader: report_log HTTP status");
            $this->assert_no_php_notice($html, "$backend: report/log with $reader");
            $pages['log'][$reader] = self::rows($html, 'report_log');
            $html = $http->get("/report/loglive/index.php?id=$id&logreader=$reader");
            $this->assertSame(200, $http->status, "$backend $reader: report_loglive HTTP status");
            $this->assert_no_php_notice($html, "$backend: report/loglive with $reader");
            $pages['loglive'][$reader] = self::rows($html, 'report_loglive');
        }
        foreach ($pages as $report => $byreader) {
            $this->assertCount($n, $byreader['logstore_standard'], "$backend: $report rows with the standard reader");
            $this->assertSame($byreader['logstore_standard'], $byreader['logstore_tsdb'], "$backend: $report rows");
        }
    }

    /**
     * The PostgreSQL backend.
     */
    public function test_reports_on_postgres(): void {
        $this->server_env('TSDB_TEST_PG_HOST');
        $this->table = 'reports_t' . getmypid() . '_' . bin2hex(random_bytes(3));
        $this->configure(log_dataset::pg_settings($this->table));
        $this->assert_pages_match($this->fire_student_events(), 'postgres');
    }

    /**
     * The InfluxDB 1.x backend (user ids pseudonymised in InfluxDB, shown as the users on the page).
     */
    public function test_reports_on_influxdb(): void {
        $this->server_env('TSDB_TEST_INFLUX_URL');
        $this->database = 'reports_t' . getmypid() . '_' . bin2hex(random_bytes(3));
        $settings = log_dataset::influx_settings($this->database);
        $client = new influx_client(log_dataset::plugin_config($settings));
        $client->query('CREATE DATABASE ' . influx_client::quote_identifier($this->database), true);
        $this->configure($settings);
        $this->assert_pages_match($this->fire_student_events(), 'influxdb1');
    }

    /**
     * InfluxDB refusing the password: the Logs page says so, naming the server's error and the settings, without the
     * password.
     */
    public function test_failing_influxdb_on_the_report_page(): void {
        $url = $this->server_env('TSDB_TEST_INFLUX_AUTH_URL');
        $this->configure(['backend' => 'influxdb1', 'url' => $url, 'database' => 'moodle',
            'username' => $this->server_env('TSDB_TEST_INFLUX_USER'), 'password' => 'wrong-pw-secret']);
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->get("/report/log/index.php?id={$this->course->id}&chooselog=1&logreader=logstore_tsdb");
        $text = html_entity_decode(strip_tags($html), ENT_QUOTES, 'UTF-8');
        $this->assertStringContainsString("InfluxDB at $url answered 401 Unauthorized: authorization failed — check User name (1.x)"
            . ' (logstore_tsdb | username), Password (logstore_tsdb | password)', $text);
        $this->assertStringNotContainsString('wrong-pw-secret', $html);
    }
}

<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The plugin's scheduled tasks with the InfluxDB backend, run as cron runs them: admin/cli/scheduled_task.php
 * --execute=... in a new CLI process of the site (Moodle's setup, its arg_separator.output and error handlers).
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

use logstore_tsdb\local\influx_client;

/**
 * Tasks on InfluxDB.
 */
class influx_tasks_test extends base_testcase {

    /** @var string database of this test */
    protected $database = '';

    /**
     * The health counters start clean, and so do the per-minute counters the check adds up (other tests' failures).
     */
    protected function setUp(): void {
        global $DB;
        parent::setUp();
        $DB->delete_records('logstore_tsdb_metrics');
        foreach (['healthfailcount', 'healthnotified', 'healthlastproblem'] as $name) {
            unset_config($name, 'logstore_tsdb');
        }
    }

    /**
     * Drops the test database; the site back to the file backend.
     */
    protected function tearDown(): void {
        parent::tearDown();
        if ($this->database !== '') {
            (new influx_client(\logstore_tsdb\log\store::read_plugin_config()))->query('DROP DATABASE '
                . influx_client::quote_identifier($this->database), true);
        }
        self::reset_plugin_config();
    }

    /**
     * A setting as the task's process stored it (this process's config cache does not know).
     *
     * @param string $name
     * @return string|false
     */
    protected function stored(string $name) {
        global $DB;
        return $DB->get_field('config_plugins', 'value', ['plugin' => 'logstore_tsdb', 'name' => $name]);
    }

    /**
     * Runs one of the plugin's scheduled tasks through Moodle's CLI.
     *
     * @param string $task class name without namespace
     * @return string what it printed
     */
    protected function run_task(string $task): string {
        [$rc, $out, $err] = tsdb_test_site::run_cli('admin/cli/scheduled_task.php',
            ['--execute=\\logstore_tsdb\\task\\' . $task]);
        $this->assertSame(0, $rc, "$task: $out $err");
        $this->assert_no_php_notice($out . $err, $task);
        return $out . $err;
    }

    /**
     * A working InfluxDB: the health check is ok, retention says InfluxDB's retention policy does it.
     */
    public function test_tasks_on_a_working_influxdb(): void {
        $this->database = 'tasks_t' . getmypid() . '_' . bin2hex(random_bytes(3));
        $this->configure(['backend' => 'influxdb1', 'url' => $this->server_env('TSDB_TEST_INFLUX_URL'),
            'database' => $this->database]);
        (new influx_client(\logstore_tsdb\log\store::read_plugin_config()))->query('CREATE DATABASE '
            . influx_client::quote_identifier($this->database), true);
        $out = $this->run_task('health_check');
        $this->assertStringNotContainsString('failing check', $out);
        $this->assertSame('0', $this->stored('healthfailcount'));
        $out = $this->run_task('retention');
        $this->assertStringContainsString('logstore_tsdb: InfluxDB removes old points itself, by the retention policy', $out);
    }

    /**
     * InfluxDB refusing the password: the health check names the server's error and the settings, not the password;
     * a missing database is named as such.
     */
    public function test_health_check_names_the_influxdb_error(): void {
        $url = $this->server_env('TSDB_TEST_INFLUX_AUTH_URL');
        $this->configure(['backend' => 'influxdb1', 'url' => $url, 'database' => 'moodle',
            'username' => $this->server_env('TSDB_TEST_INFLUX_USER'), 'password' => 'wrong-pw-secret']);
        $out = $this->run_task('health_check');
        $this->assertStringContainsString("logstore_tsdb: failing check 1: the plugin cannot read from InfluxDB: InfluxDB at $url"
            . ' answered 401 Unauthorized: authorization failed — check User name (1.x) (logstore_tsdb | username),'
            . ' Password (logstore_tsdb | password)', $out);
        $this->assertStringNotContainsString('wrong-pw-secret', $out);
        $this->assertSame('1', $this->stored('healthfailcount'));

        $noauth = $this->server_env('TSDB_TEST_INFLUX_URL');
        $this->configure(['url' => $noauth, 'database' => 'no_such_db_' . getmypid(), 'username' => '', 'password' => '']);
        $out = $this->run_task('health_check');
        $this->assertStringContainsString("failing check 2: the plugin cannot read from InfluxDB: InfluxDB at $noauth refused the"
            . ' query: database not found: no_such_db_' . getmypid() . ' — check Database (1.x, 3.x) (logstore_tsdb | database)',
            $out);
    }

    /**
     * A privacy request while InfluxDB refuses the password: the privacy task's log (admin/cli/adhoc_task.php, as cron
     * runs it) shows the server's error and the settings to check, not the password.
     */
    public function test_privacy_task_log_names_the_influxdb_error(): void {
        global $DB;
        $url = $this->server_env('TSDB_TEST_INFLUX_AUTH_URL');
        $user = $this->gen()->create_user();
        $this->configure(['backend' => 'influxdb1', 'url' => $url, 'database' => 'moodle',
            'username' => $this->server_env('TSDB_TEST_INFLUX_USER'), 'password' => 'wrong-pw-secret']);
        $task = '\\tool_dataprivacy\\task\\process_data_request_task';
        $DB->delete_records('task_adhoc', ['classname' => $task]);
        $this->set_user(get_admin());
        $request = \tool_dataprivacy\api::create_data_request($user->id, \tool_dataprivacy\api::DATAREQUEST_TYPE_DELETE,
            'test', \tool_dataprivacy\data_request::DATAREQUEST_CREATION_MANUAL, false);
        \tool_dataprivacy\api::approve_data_request($request->get('id'));
        $this->set_user(null);
        try {
            [, $out, $err] = tsdb_test_site::run_cli('admin/cli/adhoc_task.php', ['--execute', '--classname=' . $task]);
            $this->assertStringContainsString("InfluxDB at $url answered 401 Unauthorized: authorization failed — check User name"
                . ' (1.x) (logstore_tsdb | username), Password (logstore_tsdb | password)', $out . $err);
            $this->assertStringNotContainsString('wrong-pw-secret', $out . $err);
        } finally {
            $DB->delete_records('task_adhoc', ['classname' => $task]);
            $DB->delete_records('tool_dataprivacy_request', ['id' => $request->get('id')]);
        }
    }
}

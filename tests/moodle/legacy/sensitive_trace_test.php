<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * Stack traces never carry the password or the token: every plugin function that receives the configuration (or a
 * secret) marks that parameter #[\SensitiveParameter], as the extension marks tsdb_configure()'s array. Checked with
 * zend.exception_ignore_args = 0 (traces with arguments, PHP's development setting) on exceptions raised while the
 * plugin configures the extension or connects with a bad setting value.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/base_testcase.php');

use core_privacy\local\request\approved_contextlist;

/**
 * Secrets in stack traces.
 */
class sensitive_trace_test extends base_testcase {

    /** @var string|false zend.exception_ignore_args before the test */
    protected $ignoreargs;

    /** @var string The password of the test (static: the test case object itself is an argument of PHPUnit's frames). */
    protected static $password;

    /** @var string The token of the test. */
    protected static $token;

    /**
     * Traces with arguments; secrets of this test.
     */
    protected function setUp(): void {
        parent::setUp();
        $this->ignoreargs = ini_get('zend.exception_ignore_args');
        ini_set('zend.exception_ignore_args', '0');
        self::$password = 'pw-' . bin2hex(random_bytes(12));
        self::$token = 'tok-' . bin2hex(random_bytes(12));
    }

    /**
     * Restores zend.exception_ignore_args.
     */
    protected function tearDown(): void {
        ini_set('zend.exception_ignore_args', (string) $this->ignoreargs);
        harness::$debugtraces = null;
        parent::tearDown();
    }

    /**
     * Where a value holds a secret of this test. Walks arrays and objects (every property, private ones too) but not
     * into \SensitiveParameterValue, whose content a trace printer never shows.
     *
     * @param mixed $value
     * @param string $path where $value is
     * @param array $seen object ids already walked
     * @return string|null the path of the secret, null when there is none
     */
    protected static function secret_at($value, string $path, array &$seen = []): ?string {
        if ($value instanceof \SensitiveParameterValue) {
            return null;
        }
        if (is_string($value)) {
            return strpos($value, self::$password) !== false || strpos($value, self::$token) !== false ? $path : null;
        }
        if (is_object($value)) {
            if (isset($seen[spl_object_id($value)])) {
                return null;
            }
            $seen[spl_object_id($value)] = true;
            $path .= '(' . get_class($value) . ')';
            $value = (array) $value;
        }
        if (is_array($value)) {
            foreach ($value as $k => $v) {
                $found = self::secret_at((string) $k, "$path key", $seen) ?? self::secret_at($v, "{$path}[$k]", $seen);
                if ($found !== null) {
                    return $found;
                }
            }
        }
        return null;
    }

    /**
     * Asserts that no argument of any frame of the exception (and its previous ones) holds a secret, and that the
     * frames of the functions named did receive arguments, the configuration among them as \SensitiveParameterValue.
     *
     * @param \Throwable $e
     * @param string[] $functions class::function (or function) of frames that must be in the trace, redacted
     */
    protected function assert_trace_clean(\Throwable $e, array $functions): void {
        $redacted = [];
        for ($t = $e; $t !== null; $t = $t->getPrevious()) {
            foreach ($t->getTrace() as $i => $frame) {
                $name = isset($frame['class']) ? $frame['class'] . '::' . $frame['function'] : $frame['function'];
                $this->assertArrayHasKey('args', $frame, "frame $i ($name) has its arguments: zend.exception_ignore_args = 0");
                $this->assertNull(self::secret_at($frame['args'], 'args'), "frame $i ($name) shows a secret");
                foreach ($frame['args'] as $arg) {
                    if ($arg instanceof \SensitiveParameterValue) {
                        $redacted[$name] = true;
                    }
                }
            }
        }
        foreach ($functions as $name) {
            $this->assertArrayHasKey($name, $redacted, "$name is in the trace, its secret parameter redacted");
        }
    }

    /**
     * A bad setting value: the extension refuses the configuration (ValueError, caught by the plugin, which calls
     * debugging()); the stack there shows neither the password nor the token.
     */
    public function test_refused_configuration(): void {
        $this->configure(['batch_size' => 0, 'password' => self::$password, 'token' => self::$token]);
        harness::$debugtraces = [];
        $store = new \logstore_tsdb\log\store(get_log_manager());
        $this->assertFalse($store->is_logging());
        $this->assertStringContainsString('batch_size', (string) \logstore_tsdb\local\extension::config_error());
        $this->assertCount(1, harness::$debugtraces);
        $this->assert_trace_clean(harness::$debugtraces[0], ['logstore_tsdb\\local\\extension::push',
            'logstore_tsdb\\local\\extension::ensure_configured']);

        // The settings page's probe of durable mode with the same settings.
        \logstore_tsdb\local\extension::reset_for_tests();
        harness::$debugtraces = [];
        \logstore_tsdb\local\extension::supports_mode('durable', \logstore_tsdb\log\store::read_plugin_config());
        $this->assertNotEmpty(harness::$debugtraces);
        $this->assert_trace_clean(end(harness::$debugtraces), ['logstore_tsdb\\local\\extension::push',
            'logstore_tsdb\\local\\extension::ensure_configured', 'logstore_tsdb\\local\\extension::supports_mode']);
    }

    /**
     * A bad port (nothing listens on 1): the exceptions that leave the retention task, the log report and the privacy
     * export show no password in their traces.
     */
    public function test_postgres_connection_failures(): void {
        global $DB;
        if (!$DB) {
            $this->skip_without_server('SKIPPED: no PostgreSQL (set TSDB_TEST_PG_HOST or let run.sh start one)');
        }
        $this->configure(['backend' => 'postgres', 'host' => '127.0.0.1', 'port' => 1, 'password' => self::$password,
            'token' => self::$token, 'retention_days' => 30]);
        $calls = [
            'retention' => function() {
                (new \logstore_tsdb\task\retention())->execute();
            },
            'report' => function() {
                (new \logstore_tsdb\log\store(get_log_manager()))->get_events_select_count('courseid = ?', [3]);
            },
            'privacy' => function() {
                \logstore_tsdb\privacy\provider::export_user_data(new approved_contextlist((object) ['id' => 5],
                    'logstore_tsdb', [context_course::instance(3)->id]));
            },
        ];
        foreach ($calls as $what => $call) {
            try {
                $call();
                $this->fail("$what: no exception with nothing listening on port 1");
            } catch (\moodle_exception $e) {
                $this->assertSame('pgconnectfailed', $e->errorcode, $what);
                $this->assertStringNotContainsString(self::$password, $e->getMessage() . $e->debuginfo . $e->a, $what);
                $this->assert_trace_clean($e, ['logstore_tsdb\\local\\pgdb::__construct',
                    'logstore_tsdb\\local\\pgdb::from_config']);
            }
        }
    }

    /**
     * InfluxDB 1.x with a user: the password travels in the query parameters of each request; a failed request's
     * exception (the log report's count) does not show it.
     */
    public function test_influxdb_request_failure(): void {
        $this->configure(['backend' => 'influxdb1', 'url' => 'http://127.0.0.1:1', 'username' => 'reader',
            'password' => self::$password, 'connect_timeout_ms' => 500]);
        try {
            (new \logstore_tsdb\log\store(get_log_manager()))->get_events_select_count('courseid = ?', [3]);
            $this->fail('no exception with nothing listening on port 1');
        } catch (\moodle_exception $e) {
            $this->assertSame('influxerror', $e->errorcode);
            $this->assert_trace_clean($e, ['logstore_tsdb\\local\\influx_client::request']);
        }
    }
}

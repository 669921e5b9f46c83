<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * Stack traces never carry the password or the token: every plugin function that receives the configuration (or a
 * secret) marks that parameter #[\SensitiveParameter], as the extension marks tsdb_configure()'s array. Checked in the
 * real site with zend.exception_ignore_args = 0 (traces with arguments, PHP's development setting) where Moodle
 * itself hands traces on: the stack of a debugging() call (a site without debug display sends it to the PHP error
 * log through trigger_error(), caught here by an error handler), exceptions out of the retention task, the log report
 * and a privacy request — the last as the privacy manager's observer receives it, whose trace tool_dataprivacy mails
 * to the privacy officers.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/privacy_fixture.php');

use core_privacy\local\request\approved_contextlist;
use core_privacy\local\request\contextlist_collection;

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
     * Asserts that no argument of any frame of the exception (and its previous ones) holds a secret, that its printed
     * trace does not either, and that the frames of the functions named did receive arguments, the configuration among
     * them as \SensitiveParameterValue.
     *
     * @param \Throwable $e
     * @param string[] $functions class::function (or function) of frames that must be in the trace, redacted
     */
    protected function assert_trace_clean(\Throwable $e, array $functions): void {
        $redacted = [];
        for ($t = $e; $t !== null; $t = $t->getPrevious()) {
            $this->assertNull(self::secret_at($t->getTraceAsString(), 'trace'), 'the printed trace shows a secret');
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
     * Runs code with Moodle's debugging() going where a production site without debug display sends it: through
     * trigger_error() (to the PHP error log), caught here with the stack of that moment.
     *
     * @param callable $code
     * @return array [\Exception per debugging() call (its trace is the stack), what was printed]
     */
    protected static function debugging_stacks(callable $code): array {
        global $CFG;
        $stacks = [];
        $display = $CFG->debugdisplay;
        $CFG->debugdisplay = 0;
        set_error_handler(function($errno, $errstr) use (&$stacks) {
            $stacks[] = new \Exception($errstr);
            return true;
        }, E_USER_NOTICE);
        ob_start();
        try {
            $code();
        } finally {
            $printed = ob_get_clean();
            restore_error_handler();
            $CFG->debugdisplay = $display;
        }
        return [$stacks, $printed];
    }

    /**
     * A bad setting value: the extension refuses the configuration with a ValueError, whose trace shows the array
     * handed to tsdb_configure() redacted; the plugin catches it, keeps its message (shown on the status page) without
     * a secret, and any debugging() on the way (the store, the settings page's probe of durable mode) has a clean stack.
     */
    public function test_refused_configuration(): void {
        $this->configure(['batch_size' => 0, 'password' => self::$password, 'token' => self::$token]);
        try {
            tsdb_configure(\logstore_tsdb\local\settings_definition::extension_config(
                \logstore_tsdb\log\store::read_plugin_config()));
            $this->fail('tsdb_configure() accepted batch_size 0');
        } catch (\ValueError $e) {
            $this->assertStringContainsString('batch_size', $e->getMessage());
            $this->assertNull(self::secret_at($e->getMessage(), 'message'));
            $this->assert_trace_clean($e, ['tsdb_configure']);
        }

        \logstore_tsdb\local\extension::reset_for_tests();
        [$stacks, $printed] = self::debugging_stacks(function() {
            $store = new \logstore_tsdb\log\store(get_log_manager());
            $this->assertFalse($store->is_logging());
            \logstore_tsdb\local\extension::supports_mode('durable', \logstore_tsdb\log\store::read_plugin_config());
        });
        $error = (string) \logstore_tsdb\local\extension::config_error();
        $this->assertStringContainsString('batch_size', $error);
        $this->assertNull(self::secret_at([$error, $printed], 'shown'));
        foreach ($stacks as $stack) {
            $this->assert_trace_clean($stack, ['logstore_tsdb\\local\\extension::push',
                'logstore_tsdb\\local\\extension::ensure_configured']);
        }
    }

    /**
     * A bad port (nothing listens on 1): the exceptions that leave the retention task and the log report show no
     * password in their traces; a privacy request's failure, as the privacy manager's observer receives it, neither.
     */
    public function test_postgres_connection_failures(): void {
        $this->server_env('TSDB_TEST_PG_HOST');
        $this->configure(['backend' => 'postgres', 'host' => '127.0.0.1', 'port' => 1, 'password' => self::$password,
            'token' => self::$token, 'retention_days' => 30]);
        $calls = [
            'retention' => function() {
                (new \logstore_tsdb\task\retention())->execute();
            },
            'report' => function() {
                (new \logstore_tsdb\log\store(get_log_manager()))->get_events_select_count('courseid = ?', [SITEID]);
            },
        ];
        foreach ($calls as $what => $call) {
            try {
                $call();
                $this->fail("$what: no exception with nothing listening on port 1");
            } catch (\moodle_exception $e) {
                $this->assertSame('pgconnectfailed', $e->errorcode, $what);
                $this->assertNull(self::secret_at([$e->getMessage(), $e->debuginfo, $e->a], 'exception'), $what);
                $this->assert_trace_clean($e, ['logstore_tsdb\\local\\pgdb::__construct',
                    'logstore_tsdb\\local\\pgdb::from_config']);
            }
        }

        // A privacy export, through the manager as tool_dataprivacy runs it.
        $observer = new tsdb_test_privacy_observer();
        $manager = new tsdb_test_privacy_manager();
        $manager->set_observer($observer);
        $admin = get_admin();
        $collection = new contextlist_collection($admin->id);
        $collection->add_contextlist(new approved_contextlist($admin, 'tool_log', [context_system::instance()->id]));
        [$stacks, $printed] = self::debugging_stacks(function() use ($manager, $collection) {
            $manager->export_user_data($collection);
        });
        $this->assertCount(1, $observer->failures, $printed);
        $e = $observer->failures[0]['exception'];
        $this->assertSame('privacybackendfailed', $e->errorcode);
        $this->assertStringContainsString('127.0.0.1:1', $e->getMessage());
        $this->assertNull(self::secret_at([$e->getMessage(), $e->debuginfo, $e->a, $printed], 'exception'));
        $this->assert_trace_clean($e, []);
        $this->assertNotEmpty($stacks, "the manager's debugging() of the failure");
        foreach ($stacks as $stack) {
            $this->assert_trace_clean($stack, []);
        }
    }

    /**
     * InfluxDB 1.x with a user: the password travels in each request (HTTP Basic); a failed request's exception (the
     * log report's count) does not show it.
     */
    public function test_influxdb_request_failure(): void {
        $this->configure(['backend' => 'influxdb1', 'url' => 'http://127.0.0.1:1', 'username' => 'reader',
            'password' => self::$password, 'connect_timeout_ms' => 500]);
        try {
            (new \logstore_tsdb\log\store(get_log_manager()))->get_events_select_count('courseid = ?', [SITEID]);
            $this->fail('no exception with nothing listening on port 1');
        } catch (\moodle_exception $e) {
            $this->assertSame('influxerror', $e->errorcode);
            $this->assertNull(self::secret_at([$e->getMessage(), $e->debuginfo, $e->a], 'exception'));
            $this->assert_trace_clean($e, ['logstore_tsdb\\local\\influx_client::request']);
        }
    }
}

<?php
// Secrets (`token`, `password`) set in php.ini never reach anything a PHP process makes observable:
// tsdb_stats() (last_error included), phpinfo(), exception messages and traces, stdout/stderr, the
// URL sent to the server; even when the server echoes the credentials back in its error reply.

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/helpers.php';

final class SecretsTest extends TestCase {
    const TOKEN = 'TOKsecret-7f3a9c2e-do-not-print';
    const PASSWORD = 'PWsecret-51b0d4aa-do-not-print';

    /** What the child prints: stats after a failing write, phpinfo(), refused configurations. */
    private const PROBE = <<<'PHP'
for ($i = 0; $i < 3; $i++) {
    tsdb_log_event(['eventname' => '\core\event\course_viewed', 'timecreated' => 1700000000 + $i, 'userid' => $i]);
}
tsdb_flush(5000);
for ($i = 0; $i < 50 && tsdb_stats()['last_error'] === ''; $i++) {
    usleep(100000);
}
echo "STATS ", json_encode(tsdb_stats()), "\n";
phpinfo(INFO_MODULES);
foreach ([
    ['batch_size' => 'x', 'password' => getenv('P') . "\n", 'token' => getenv('T') . "\0"],
    ['token' => [getenv('T')]],
    ['passwort' => getenv('P')],
    ['backend' => 'influxdb2', 'org' => '', 'token' => getenv('T')],
] as $bad) {
    try {
        tsdb_configure($bad);
        echo "ACCEPTED\n";
    } catch (Throwable $e) {
        echo get_class($e), ': ', $e->getMessage(), "\n", $e->getTraceAsString(), "\n";
    }
}
var_dump(error_get_last());
PHP;

    private function assert_nothing_shows(string $out, array $secrets): void {
        foreach ($secrets as $s) {
            $this->assertStringNotContainsString($s, $out, 'a secret is observable');
            // Not in an escaped or encoded form either.
            $this->assertStringNotContainsString(base64_encode($s), $out);
            $this->assertStringNotContainsString(substr($s, 0, 12), $out, 'a prefix of a secret is observable');
        }
    }

    private function stats(string $out): array {
        $this->assertMatchesRegularExpression('/^STATS (.*)$/m', $out);
        preg_match('/^STATS (.*)$/m', $out, $m);
        return json_decode($m[1], true);
    }

    /** Credentials over plain http:// to another machine are allowed but reported, never with the secret. */
    public function test_clear_text_credentials_off_the_machine_are_reported_in_stats(): void {
        [$rc, $out, $err] = tsdb_sec_run(<<<'PHP'
foreach (['http://192.0.2.7:8086', 'https://192.0.2.7:8086', 'http://127.0.0.1:8086'] as $url) {
    tsdb_configure(['backend' => 'influxdb2', 'org' => 'o', 'token' => getenv('T'), 'url' => $url]);
    echo "WARNING $url ", json_encode(tsdb_stats()['warning']), "\n";
}
PHP, [], 60, ['T' => self::TOKEN]);
        $this->assertSame(0, $rc, $out . $err);
        $this->assertStringContainsString('WARNING http://192.0.2.7:8086 "url: the InfluxDB credentials cross the network in clear text (http:\/\/ to 192.0.2.7); use https:\/\/"', $out);
        $this->assertStringContainsString('WARNING https://192.0.2.7:8086 ""', $out);
        $this->assertStringContainsString('WARNING http://127.0.0.1:8086 ""', $out);
        $this->assert_nothing_shows($out . $err, [self::TOKEN]);
    }

    /** With zend.exception_ignore_args = Off (php.ini-development), a trace keeps every argument:
     *  tsdb_configure()'s is #[\SensitiveParameter], so the array with the secrets never shows. */
    public function test_stack_traces_do_not_carry_the_configuration_array(): void {
        [$rc, $out, $err] = tsdb_sec_run(<<<'PHP'
$attrs = (new ReflectionFunction('tsdb_configure'))->getParameters()[0]->getAttributes();
echo "ATTR ", implode(',', array_map(fn($a) => $a->getName(), $attrs)), "\n";
try {
    tsdb_configure(['backend' => 'influxdb2', 'org' => 'o', 'token' => getenv('T'), 'password' => getenv('P'), 'bogus' => 1]);
    echo "ACCEPTED\n";
} catch (ValueError $e) {
    echo "MESSAGE ", $e->getMessage(), "\n";
    $frame = $e->getTrace()[0];
    echo "FRAME ", $frame['function'], ' ', get_class($frame['args'][0]), "\n";
    var_dump($e->getTrace());
    echo $e, "\n";
}
PHP, ['zend.exception_ignore_args' => '0'], 60, ['T' => self::TOKEN, 'P' => self::PASSWORD]);
        $this->assertSame(0, $rc, $out . $err);
        $this->assertStringContainsString("ATTR SensitiveParameter\n", $out);
        $this->assertStringContainsString('MESSAGE bogus: unknown configuration key', $out);
        $this->assertStringContainsString("FRAME tsdb_configure SensitiveParameterValue\n", $out);
        $this->assert_nothing_shows($out . $err, [self::TOKEN, self::PASSWORD]);
    }

    public function test_influxdb2_token_not_observable_even_when_the_server_echoes_it(): void {
        [$url, $stop, $log] = tsdb_sec_echo_server(401);
        try {
            [$rc, $out, $err] = tsdb_sec_run(self::PROBE, [
                'tsdb.backend' => 'influxdb2', 'tsdb.url' => $url, 'tsdb.org' => 'o', 'tsdb.token' => self::TOKEN,
                'tsdb.password' => self::PASSWORD, 'tsdb.flush_interval_ms' => 50, 'tsdb.retry_base_ms' => 10,
                'tsdb.retry_max_ms' => 100, 'tsdb.retry_max_elapsed_ms' => 300, 'tsdb.shutdown_timeout_ms' => 500,
            ], 60, ['T' => self::TOKEN, 'P' => self::PASSWORD]);
            $server = $log();
        } finally {
            $stop();
        }
        $this->assertSame(0, $rc, $out . $err);
        // The server did receive the token (so it could echo it), in the header only.
        $this->assertMatchesRegularExpression('/^authorization: Token ' . preg_quote(self::TOKEN, '/') . '$/mi', $server);
        $this->assertDoesNotMatchRegularExpression('/^(GET|POST) .*' . preg_quote(self::TOKEN, '/') . '/m', $server,
            'the token is in a URL');
        $stats = $this->stats($out);
        $this->assertStringContainsString('token: InfluxDB refused the token', $stats['last_error']);
        $this->assertStringContainsString('********', $stats['last_error'], 'the echoed token was scrubbed');
        $this->assertStringContainsString('tsdb.token', $out);
        $this->assertMatchesRegularExpression('/tsdb\.token => \*{8}/', $out, 'phpinfo() masks the token');
        $this->assertMatchesRegularExpression('/tsdb\.password => \*{8}/', $out, 'phpinfo() masks the password');
        $this->assertStringContainsString('ValueError: batch_size: must be', $out);
        $this->assertStringContainsString('TypeError: token: must be a scalar', $out);
        $this->assert_nothing_shows($out . $err, [self::TOKEN, self::PASSWORD]);
    }

    public function test_influxdb1_basic_credentials_not_observable_even_when_the_server_echoes_them(): void {
        [$url, $stop, $log] = tsdb_sec_echo_server(401);
        try {
            [$rc, $out, $err] = tsdb_sec_run(self::PROBE, [
                'tsdb.backend' => 'influxdb1', 'tsdb.url' => $url, 'tsdb.username' => 'moodle',
                'tsdb.password' => self::PASSWORD, 'tsdb.token' => self::TOKEN, 'tsdb.flush_interval_ms' => 50,
                'tsdb.retry_base_ms' => 10, 'tsdb.retry_max_ms' => 100, 'tsdb.retry_max_elapsed_ms' => 300,
                'tsdb.shutdown_timeout_ms' => 500,
            ], 60, ['T' => self::TOKEN, 'P' => self::PASSWORD]);
            $server = $log();
        } finally {
            $stop();
        }
        $this->assertSame(0, $rc, $out . $err);
        $basic = base64_encode('moodle:' . self::PASSWORD);
        $this->assertMatchesRegularExpression('/^authorization: Basic ' . preg_quote($basic, '/') . '$/mi', $server,
            'sent as HTTP Basic');
        $this->assertStringNotContainsString('p=', strtok($server, "\n"), 'never u/p in the URL');
        $stats = $this->stats($out);
        $this->assertStringContainsString('username/password: InfluxDB refused', $stats['last_error']);
        $this->assertStringContainsString('********', $stats['last_error']);
        $this->assert_nothing_shows($out . $err, [self::TOKEN, self::PASSWORD, $basic]);
    }

    public function test_postgres_password_not_observable_when_refused(): void {
        $host = getenv('TSDB_TEST_PG_HOST');
        if (!$host) {
            $this->markTestSkipped('SKIPPED: no PostgreSQL (source tests/servers/postgres.sh && start_postgres DIR)');
        }
        [$rc, $out, $err] = tsdb_sec_run(self::PROBE, [
            'tsdb.backend' => 'postgres', 'tsdb.host' => $host, 'tsdb.port' => getenv('TSDB_TEST_PG_PORT'),
            'tsdb.user' => getenv('TSDB_TEST_PG_USER'), 'tsdb.dbname' => getenv('TSDB_TEST_PG_DB'),
            'tsdb.password' => self::PASSWORD, 'tsdb.flush_interval_ms' => 50, 'tsdb.retry_base_ms' => 10,
            'tsdb.retry_max_ms' => 100, 'tsdb.retry_max_elapsed_ms' => 300, 'tsdb.shutdown_timeout_ms' => 500,
        ], 60, ['T' => self::TOKEN, 'P' => self::PASSWORD]);
        $this->assertSame(0, $rc, $out . $err);
        $stats = $this->stats($out);
        $this->assertStringContainsString('user/password:', $stats['last_error']);
        $this->assert_nothing_shows($out . $err, [self::PASSWORD]);
    }

    public function test_a_refused_tsdb_configure_never_repeats_a_secret(): void {
        [$rc, $out, $err] = tsdb_sec_run(<<<'PHP'
foreach (['password', 'token'] as $k) {
    foreach ([getenv('P') . "\n", getenv('P') . "\0", "\xff" . getenv('P'), [getenv('P')], 1.5] as $v) {
        try {
            tsdb_configure([$k => $v, 'batch_size' => 0]);
        } catch (Throwable $e) {
            echo $e->getMessage(), "\n";
        }
    }
}
PHP, [], 30, ['P' => self::PASSWORD]);
        $this->assertSame(0, $rc, $err);
        $this->assertStringContainsString('password: must not contain NUL or line breaks', $out);
        $this->assertStringContainsString('token: must be valid UTF-8', $out);
        $this->assert_nothing_shows($out . $err, [self::PASSWORD]);
    }

    /**
     * The trust boundary: PHP code running in the same process can read php.ini values, secrets
     * included (ini_get(), ini_get_all()), as it can read Moodle's own config.php. Pinned here so that
     * docs/SECURITY.md stays true.
     */
    public function test_php_code_in_the_process_can_read_ini_secrets(): void {
        [$rc, $out] = tsdb_sec_run('echo ini_get("tsdb.password") === getenv("P") ? "READABLE" : "HIDDEN";',
            ['tsdb.password' => self::PASSWORD], 30, ['P' => self::PASSWORD]);
        $this->assertSame(0, $rc);
        $this->assertSame('READABLE', $out);
    }
}

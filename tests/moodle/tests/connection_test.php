<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * Test connection (connection_tester) in the real site: its marker is the real event \logstore_tsdb\event\connection_tested
 * (a name and a description in the Logs report, the user who clicked, the request's origin), written once through the
 * extension and read back on every backend (file, PostgreSQL, TimescaleDB, InfluxDB 1.6.7), also while the store is not
 * enabled; the site's Logs report over HTTP names the test and shows no "Unknown event"; a wrong password, nothing
 * answering, a TLS failure and a database without TimescaleDB each get their own plain verdict, without the secret.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/../lib/ops.php');

use logstore_tsdb\event\connection_tested;
use logstore_tsdb\local\connection_tester;
use logstore_tsdb\local\influx_client;

/**
 * Test connection tests.
 */
class connection_test extends base_testcase {
    use tsdb_test_ops;

    /** @var string[] TimescaleDB tables of this test */
    protected $tstables = [];

    /** @var string InfluxDB database of this test */
    protected $influxdb = '';

    /**
     * Notes where the site's PHP-FPM log ends.
     */
    protected function setUp(): void {
        parent::setUp();
        $this->mark_fpm_log();
    }

    /**
     * Drops the tables and the InfluxDB database of the test.
     */
    protected function tearDown(): void {
        parent::tearDown();
        $this->drop_pg_tables();
        foreach ($this->tstables as $table) {
            $pdo = self::timescale();
            self::stop_jobs($pdo, 'public', $table);
            self::drop_retrying($pdo, 'DROP TABLE IF EXISTS public."' . $table . '" CASCADE');
        }
        if ($this->influxdb !== '') {
            self::influx('DROP DATABASE "' . $this->influxdb . '"', true);
        }
    }

    /**
     * The plugin's settings for a table of this test's own in the TimescaleDB database.
     *
     * @return array
     */
    protected function timescale_settings(): array {
        $dsn = parse_url($this->server_env('TSDB_TEST_TIMESCALE_DSN'));
        $table = 'conn_ts_' . getmypid() . '_' . bin2hex(random_bytes(3));
        $this->tstables[] = $table;
        return ['backend' => 'postgres', 'host' => $dsn['host'], 'port' => $dsn['port'], 'user' => urldecode($dsn['user']),
            'password' => urldecode($dsn['pass'] ?? ''), 'dbname' => ltrim($dsn['path'], '/'), 'table' => $table,
            'retry_max_elapsed_ms' => 5000];
    }

    /**
     * A statement on the InfluxDB 1.6.7 without authentication (not through the plugin).
     *
     * @param string $q InfluxQL
     * @param bool $post
     * @return array the first result's series
     */
    protected static function influx(string $q, bool $post = false): array {
        $url = getenv('TSDB_TEST_INFLUX_URL') . '/query?' . http_build_query(['q' => $q, 'epoch' => 'ns']);
        $ch = curl_init($url);
        curl_setopt_array($ch, [CURLOPT_RETURNTRANSFER => true, CURLOPT_POST => $post, CURLOPT_TIMEOUT => 30]);
        $body = json_decode((string) curl_exec($ch), true);
        curl_close($ch);
        return $body['results'][0]['series'] ?? [];
    }

    /**
     * What the backend of each case holds with the marker, read without the plugin: [userid, eventname, origin] rows.
     *
     * @param string $backend file, postgres, timescaledb or influxdb1
     * @param array $settings what configure() was given
     * @param string $marker
     * @return array[]
     */
    protected function stored_markers(string $backend, array $settings, string $marker): array {
        $rows = [];
        if ($backend === 'file') {
            $rows = $this->read_back();
        } else if ($backend === 'postgres') {
            $rows = $this->pg_log_rows($settings['table']);
        } else if ($backend === 'timescaledb') {
            $rows = self::timescale()->query('SELECT userid, eventname, origin, other FROM public."' . $settings['table'] . '"')
                ->fetchAll(\PDO::FETCH_ASSOC);
        } else {
            foreach (self::influx('SELECT * FROM "' . $this->influxdb . '"."autogen"."moodle_events"') as $series) {
                foreach ($series['values'] as $values) {
                    $rows[] = array_combine($series['columns'], $values);
                }
            }
        }
        $found = [];
        foreach ($rows as $row) {
            if ((json_decode((string) $row['other'], true)['marker'] ?? null) === $marker) {
                $found[] = [(int) $row['userid'], $row['eventname'], $row['origin']];
            }
        }
        return $found;
    }

    /**
     * The event: its name and description for the Logs report, its link, the marker required; a stored row of it is
     * restored as this event (the old rows of the marker, userid 0 and origin cli, too), not as an unknown event.
     */
    public function test_the_event(): void {
        $admin = get_admin();
        $this->set_user($admin);
        $event = connection_tested::create(['context' => \context_system::instance(), 'other' => ['marker' => 'tsdb-test-1']]);
        $this->assertSame('Log store connection tested', $event::get_name());
        $this->assertSame("The user with id '{$admin->id}' tested the connection of the time series database log store"
            . " (marker 'tsdb-test-1').", $event->get_description());
        $this->assertStringEndsWith('/admin/tool/log/store/tsdb/status.php', $event->get_url()->out(false));
        $event->trigger();
        get_log_manager()->dispose();
        $rows = $this->standard_rows();
        $this->assertCount(1, $rows);
        $this->assertSame(connection_tester::EVENTNAME, $rows[0]['eventname']);
        $this->assertSame(['logstore_tsdb', 'tested', 'connection', 'r', 0, (int) $admin->id],
            [$rows[0]['component'], $rows[0]['action'], $rows[0]['target'], $rows[0]['crud'], (int) $rows[0]['edulevel'],
            (int) $rows[0]['userid']]);

        $store = new \logstore_tsdb\log\store(get_log_manager());
        $old = (object) ['eventname' => connection_tester::EVENTNAME, 'component' => 'logstore_tsdb', 'action' => 'tested',
            'target' => 'connection', 'objecttable' => null, 'objectid' => null, 'crud' => 'r', 'edulevel' => 0,
            'contextid' => \context_system::instance()->id, 'contextlevel' => CONTEXT_SYSTEM, 'contextinstanceid' => 0,
            'userid' => 0, 'courseid' => 0, 'relateduserid' => null, 'anonymous' => 0,
            'other' => '{"marker":"tsdb-test-0"}', 'timecreated' => time(), 'origin' => 'cli', 'ip' => '', 'realuserid' => null];
        $restored = $store->get_log_event($old);
        $this->assertInstanceOf(connection_tested::class, $restored);
        $this->assertSame('Log store connection tested', $restored::get_name());

        $this->expectException(\coding_exception::class);
        connection_tested::create(['context' => \context_system::instance()]);
    }

    /**
     * The backends of the round trip.
     *
     * @return array
     */
    public static function backends(): array {
        return ['file' => ['file'], 'PostgreSQL' => ['postgres'], 'TimescaleDB' => ['timescaledb'],
            'InfluxDB 1.6.7' => ['influxdb1']];
    }

    /**
     * The event is written once through the store and the extension and read back: in the backend (read here without the
     * plugin) with the administrator's id and this process's origin, and in the standard store, once each. Plain
     * PostgreSQL works and says that TimescaleDB is not in its database; TimescaleDB is a plain success.
     *
     * @dataProvider backends
     * @param string $backend
     */
    public function test_round_trip(string $backend): void {
        global $DB;
        $settings = [];
        if ($backend === 'postgres') {
            $settings = $this->pg_settings('conn');
        } else if ($backend === 'timescaledb') {
            $settings = $this->timescale_settings();
        } else if ($backend === 'influxdb1') {
            $this->influxdb = 'conn_' . getmypid() . '_' . bin2hex(random_bytes(3));
            self::influx('CREATE DATABASE "' . $this->influxdb . '"', true);
            $settings = ['backend' => 'influxdb1', 'url' => $this->server_env('TSDB_TEST_INFLUX_URL'),
                'database' => $this->influxdb, 'pseudonymise' => 0, 'retry_max_elapsed_ms' => 5000];
        }
        if ($settings) {
            $this->configure($settings);
        }
        $admin = get_admin();
        $this->set_user($admin);
        $result = connection_tester::run(\logstore_tsdb\log\store::read_plugin_config(), 30000);
        $this->assertTrue($result['ok'], $result['message']);
        $this->assertTrue($result['readback'], $result['message']);
        $this->assertMatchesRegularExpression('~^Connection works: a marker event was written and read back \('
            . $result['marker'] . '\)\.~', $result['message']);
        if ($backend === 'postgres') {
            $this->assertSame(['warning', 'notimescale'], [$result['level'], $result['kind']]);
            $this->assertStringContainsString('TimescaleDB is not enabled in the database ' . getenv('TSDB_TEST_PG_DB')
                . ': the events are in a plain PostgreSQL table partitioned by day', $result['message']);
            $this->assertStringContainsString('CREATE EXTENSION timescaledb', $result['message']);
        } else {
            $this->assertSame(['success', 'ok'], [$result['level'], $result['kind']], $result['message']);
        }
        get_log_manager()->dispose();
        $this->assertSame([[(int) $admin->id, connection_tester::EVENTNAME, 'cli']],
            $this->stored_markers($backend, $settings, $result['marker']), 'once in the backend');
        $standard = $DB->get_records('logstore_standard_log', ['eventname' => connection_tester::EVENTNAME]);
        $this->assertCount(1, $standard, 'once in the standard store');
        $this->assertSame(['marker' => $result['marker']], json_decode(reset($standard)->other, true));
    }

    /**
     * Before the store is enabled in Manage log stores (the log manager does not hand it the event), Test connection
     * still proves the round trip: the event's row goes to the extension directly, once, as the store would write it.
     */
    public function test_round_trip_before_the_store_is_enabled(): void {
        set_config('enabled_stores', 'logstore_standard', 'tool_log');
        $this->new_request();
        $admin = get_admin();
        $this->set_user($admin);
        $result = connection_tester::run(\logstore_tsdb\log\store::read_plugin_config());
        $this->assertTrue($result['readback'], $result['message']);
        $this->assertSame('success', $result['level']);
        $this->assertSame([[(int) $admin->id, connection_tester::EVENTNAME, 'cli']],
            $this->stored_markers('file', [], $result['marker']));
        get_log_manager()->dispose();
        $this->assertCount(1, $this->standard_rows());
    }

    /**
     * Asserts a failed test's verdict: its kind, its first words, no secret, no trace.
     *
     * @param array $result connection_tester::run()
     * @param string $kind
     * @param string $start the verdict's beginning
     * @param string $secret
     */
    protected function assert_verdict(array $result, string $kind, string $start, string $secret): void {
        $this->assertFalse($result['ok'], $result['message']);
        $this->assertSame(['error', $kind], [$result['level'], $result['kind']], $result['message']);
        $this->assertStringStartsWith($start, $result['message']);
        $this->assertStringContainsString(' Details: ', $result['message'], 'what the server said follows');
        $this->assertStringNotContainsString($secret, $result['message']);
        $this->assertDoesNotMatchRegularExpression('~Stack trace|#0 |\.php:\d+~', $result['message']);
    }

    /**
     * PostgreSQL: a wrong password, nothing answering (no event is even written: the verdict comes at once), a server
     * without TLS asked for TLS, and a certificate no CA file vouches for: each its own verdict, never the password.
     */
    public function test_postgres_verdicts(): void {
        $settings = $this->pg_settings('conn_fail');
        $secret = 'wrong-' . bin2hex(random_bytes(6));
        $host = getenv('TSDB_TEST_PG_HOST') . ':' . getenv('TSDB_TEST_PG_PORT');

        $this->configure(array_merge($settings, ['password' => $secret]));
        $this->assert_verdict(connection_tester::run(\logstore_tsdb\log\store::read_plugin_config(), 5000), 'auth',
            "The time series database at $host refused the login: the user name, password or API token is wrong", $secret);

        $port = tsdb_test_site_pool::free_port();
        $this->configure(array_merge($settings, ['port' => $port]));
        $accepted = tsdb_stats()['accepted'];
        $this->assert_verdict(connection_tester::run(\logstore_tsdb\log\store::read_plugin_config(), 5000), 'unreachable',
            'Nothing answers at ' . getenv('TSDB_TEST_PG_HOST') . ":$port: the database server is stopped", $settings['password']);
        $this->assertSame($accepted, tsdb_stats()['accepted'], 'no event written');

        $this->configure(array_merge($settings, ['sslmode' => 'require']));
        $this->assert_verdict(connection_tester::run(\logstore_tsdb\log\store::read_plugin_config(), 5000), 'tls',
            "The secure (TLS) connection to $host failed", $settings['password']);

        $tls = $this->server_env('TSDB_TEST_PG_TLS_PORT');
        $this->configure(array_merge($settings, ['port' => $tls, 'sslmode' => 'verify-full',
            'ca_file' => $this->server_env('TSDB_TEST_PG_TLS_WRONG_CA_FILE')]));
        $result = connection_tester::run(\logstore_tsdb\log\store::read_plugin_config(), 5000);
        $this->assert_verdict($result, 'tls', 'The secure (TLS) connection to ' . getenv('TSDB_TEST_PG_HOST') . ":$tls failed",
            $settings['password']);
        $this->assertMatchesRegularExpression('~certificate~i', $result['message']);
    }

    /**
     * InfluxDB 1.6.7: a wrong password on the server with authentication, nothing answering, and https:// to a server
     * whose certificate is not trusted.
     */
    public function test_influx_verdicts(): void {
        $secret = 'wrong-' . bin2hex(random_bytes(6));
        $url = $this->server_env('TSDB_TEST_INFLUX_AUTH_URL');
        $this->configure(['backend' => 'influxdb1', 'url' => $url, 'database' => 'moodle', 'username' => getenv('TSDB_TEST_INFLUX_USER'),
            'password' => $secret, 'retry_max_elapsed_ms' => 2000]);
        $this->assert_verdict(connection_tester::run(\logstore_tsdb\log\store::read_plugin_config(), 5000), 'auth',
            "The time series database at $url refused the login", $secret);

        $port = tsdb_test_site_pool::free_port();
        $this->configure(['url' => "http://127.0.0.1:$port", 'password' => '-']);
        $this->assert_verdict(connection_tester::run(\logstore_tsdb\log\store::read_plugin_config(), 5000), 'unreachable',
            "Nothing answers at http://127.0.0.1:$port", $secret);

        $https = $this->server_env('TSDB_TEST_INFLUX_HTTPS_URL');
        $this->configure(['url' => $https, 'username' => '']);
        $this->assert_verdict(connection_tester::run(\logstore_tsdb\log\store::read_plugin_config(), 5000), 'tls',
            "The secure (TLS) connection to $https failed", $secret);
    }

    /**
     * Over HTTP, as the administrator clicks it: Test connection on the status page (TimescaleDB), then the site's Logs
     * report on this store lists "Log store connection tested" by the administrator, from the web, and no unknown event;
     * the standard store's Logs the same.
     */
    public function test_logs_report_names_the_test(): void {
        global $DB;
        $settings = $this->timescale_settings();
        $this->configure($settings);
        $status = substr(tsdb_test_site::$info->plugindir, strlen(tsdb_test_site::$info->webroot)) . '/status.php';
        $http = (new tsdb_test_http())->login_admin();
        $html = $http->get($status);
        $html = $http->post($status, ['action' => 'test', 'sesskey' => tsdb_test_http::sesskey($html)]);
        $this->assert_no_php_notice($html, 'status page after Test connection');
        $this->assertMatchesRegularExpression('~alert-success.{0,400}Connection works~s', $html);
        preg_match('~\((tsdb-test-[0-9a-f]{16})\)~', $html, $m);
        $this->assertSame([[(int) get_admin()->id, connection_tester::EVENTNAME, 'web']],
            $this->stored_markers('timescaledb', $settings, $m[1]), 'the administrator, from the web');
        $admin = fullname(get_admin());
        foreach (['logstore_tsdb', 'logstore_standard'] as $reader) {
            $page = $http->get('/report/log/index.php?chooselog=1&showusers=0&showcourses=0&id=' . SITEID
                . '&logreader=' . $reader . '&edulevel=-1');
            $this->assert_no_php_notice($page, "the site's Logs ($reader)");
            $this->assertStringNotContainsString('Unknown event', $page, $reader);
            $this->assertMatchesRegularExpression('~<tr[^>]*>(?:(?!</tr>).)*' . preg_quote($admin, '~')
                . '(?:(?!</tr>).)*Log store connection tested(?:(?!</tr>).)*web(?:(?!</tr>).)*</tr>~s', $page, $reader);
        }
        $this->assertSame(1, $DB->count_records('logstore_standard_log', ['eventname' => connection_tester::EVENTNAME,
            'origin' => 'web']));
        $this->assert_fpm_log_clean();
    }
}

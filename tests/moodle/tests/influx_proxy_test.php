<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * The plugin and the extension reach InfluxDB the same way: through Moodle's web proxy (Site administration > Server >
 * HTTP: proxyhost, proxyport, proxytype, proxyuser, proxypassword) unless the InfluxDB host is in proxybypass, and
 * never through the process environment's proxy variables. A recording listener (fixtures/influx_capture.php) stands
 * for the proxy: requests in absolute form with their Proxy-Authorization, from the plugin's curl and from the
 * extension's HTTP client alike.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/influx_capture.php');

use logstore_tsdb\local\influx_client;

/**
 * Web proxy.
 */
class influx_proxy_test extends base_testcase {
    use influx_capture;

    /** @var string[] Moodle's proxy settings, as they were */
    protected $savedproxy = [];

    /**
     * Remembers Moodle's proxy settings.
     */
    protected function setUp(): void {
        global $CFG;
        parent::setUp();
        foreach (['proxyhost', 'proxyport', 'proxytype', 'proxyuser', 'proxypassword', 'proxybypass'] as $name) {
            $this->savedproxy[$name] = $CFG->$name ?? null;
        }
    }

    /**
     * Moodle's proxy settings back; listeners stopped; no proxy variable left in the environment.
     */
    protected function tearDown(): void {
        foreach ($this->savedproxy as $name => $value) {
            set_config($name, $value);
        }
        putenv('http_proxy');
        putenv('HTTPS_PROXY');
        putenv('ALL_PROXY');
        parent::tearDown();
        $this->stop_captures();
    }

    /**
     * Sets Moodle's web proxy (what the admin saves on Site administration > Server > HTTP).
     *
     * @param array $settings name => value
     */
    protected function set_moodle_proxy(array $settings): void {
        foreach ($settings as $name => $value) {
            set_config($name, $value);
        }
    }

    /**
     * How Moodle's settings become the proxy URL: HTTP or SOCKS5, credentials encoded, IPv6 bracketed, bypass.
     */
    public function test_moodle_proxy_url(): void {
        $this->set_moodle_proxy(['proxyhost' => '', 'proxyport' => 0, 'proxytype' => 'HTTP', 'proxyuser' => '',
            'proxypassword' => '', 'proxybypass' => 'localhost, 127.0.0.1']);
        $this->assertSame('', influx_client::moodle_proxy('https://influx.example.org:8086'), 'no proxy host: directly');
        $this->set_moodle_proxy(['proxyhost' => 'proxy.example.org', 'proxyport' => 3128]);
        $this->assertSame('http://proxy.example.org:3128', influx_client::moodle_proxy('https://influx.example.org:8086'));
        $this->assertSame('', influx_client::moodle_proxy('http://127.0.0.1:8086'), 'in proxybypass');
        $this->assertSame('', influx_client::moodle_proxy('http://localhost:8086'), 'in proxybypass');
        // Moodle's own matching (is_proxybypass()): a domain pattern must follow its comma without a space.
        $this->set_moodle_proxy(['proxybypass' => 'localhost,127.0.0.1,*.example.org, 10.1.0.0/16']);
        $this->assertSame('', influx_client::moodle_proxy('https://influx.example.org:8086'), 'a domain of proxybypass');
        $this->assertSame('', influx_client::moodle_proxy('http://10.1.2.3:8086'), 'a subnet of proxybypass');
        $this->assertSame('http://proxy.example.org:3128', influx_client::moodle_proxy('http://10.2.2.3:8086'));
        $this->set_moodle_proxy(['proxytype' => 'SOCKS5', 'proxyhost' => '2001:db8::1', 'proxyport' => 1080,
            'proxyuser' => 'me@site', 'proxypassword' => 'p:w/d']);
        $this->assertSame('socks5://me%40site:p%3Aw%2Fd@[2001:db8::1]:1080', influx_client::moodle_proxy('http://10.2.2.3:8086'));
        // The extension gets the same value under its `proxy` key.
        $this->configure(['backend' => 'influxdb1', 'url' => 'http://10.2.2.3:8086']);
        $config = \logstore_tsdb\local\settings_definition::extension_config(\logstore_tsdb\log\store::read_plugin_config());
        $this->assertSame('socks5://me%40site:p%3Aw%2Fd@[2001:db8::1]:1080', $config['proxy']);
    }

    /**
     * With a web proxy, the plugin's queries and the extension's writes both go through it, with its credentials;
     * a proxy refusing them is named in the error.
     */
    public function test_plugin_and_extension_use_the_web_proxy(): void {
        $proxy = $this->start_capture('influxdb1');
        $this->set_moodle_proxy(['proxyhost' => '127.0.0.1', 'proxyport' => $proxy['port'], 'proxytype' => 'HTTP',
            'proxyuser' => 'pu', 'proxypassword' => 'p@ss-secret', 'proxybypass' => 'localhost']);
        // The InfluxDB host does not resolve: only the proxy can reach it.
        $this->configure(['backend' => 'influxdb1', 'url' => 'http://influxdb.invalid:8086', 'database' => 'moodle',
            'username' => 'reader', 'password' => 'pw', 'retry_max_elapsed_ms' => 2000, 'spool_dir' => '']);
        $store = get_log_manager()->get_readers()['logstore_tsdb'];
        $this->assertSame(0, $store->get_events_select_count('courseid = :c', ['c' => 2]));
        \core\event\course_viewed::create(['context' => context_course::instance(SITEID)])->trigger();
        $this->new_request();
        $this->assertSame(0, tsdb_flush(10000));
        $all = $this->captured($proxy, '');
        $paths = array_column($all, 'path');
        $this->assertSame(['/query', '/query', '/write'], $paths, 'the plugin\'s 2 queries (SHOW TAG KEYS and FIELD KEYS in one, '
            . 'the count) and the extension\'s write: '
            . tsdb_stats()['last_error']);
        foreach ($all as $r) {
            $this->assertStringStartsWith('http://influxdb.invalid:8086/', $r['uri'], 'absolute form: a request to a proxy');
            $this->assertSame('Basic ' . base64_encode('pu:p@ss-secret'), $r['proxyauthorization']);
            $this->assertSame('Basic ' . base64_encode('reader:pw'), $r['authorization']);
        }

        // The proxy refuses the credentials: the message says to check the web proxy, without its password.
        $this->stop_captures();
        $proxy = $this->start_capture('influxdb1', ['CAPTURE_STATUS' => 407, 'CAPTURE_REASON' => 'Proxy Authentication Required',
            'CAPTURE_BODY' => 'access denied for p@ss-secret']);
        $this->set_moodle_proxy(['proxyport' => $proxy['port']]);
        $this->new_request();
        try {
            get_log_manager()->get_readers()['logstore_tsdb']->get_events_select_count('', []);
            $this->fail('the refusal of the proxy was not reported');
        } catch (moodle_exception $e) {
            $this->assertStringContainsString('answered 407 Proxy Authentication Required', $e->getMessage());
            $this->assertStringContainsString('check the web proxy (Site administration > Server > HTTP', $e->getMessage());
            $this->assertStringNotContainsString('p@ss-secret', $e->getMessage());
        }
    }

    /**
     * An InfluxDB host in proxybypass is reached directly by both, and the environment's proxy variables are ignored
     * by both (PHP-FPM clears its environment, cron inherits the shell's: following them would split the two).
     */
    public function test_bypass_and_environment_are_the_same_for_both(): void {
        $proxy = $this->start_capture('influxdb1');
        $server = $this->start_capture('influxdb1');
        putenv('http_proxy=' . $proxy['url']);
        putenv('HTTPS_PROXY=' . $proxy['url']);
        putenv('ALL_PROXY=' . $proxy['url']);
        foreach (['bypassed' => ['proxyhost' => '127.0.0.1', 'proxyport' => $proxy['port'], 'proxybypass' => 'localhost, 127.0.0.1'],
                'no web proxy, proxy variables set' => ['proxyhost' => '', 'proxyport' => 0]] as $name => $settings) {
            $this->set_moodle_proxy($settings);
            $this->configure(['backend' => 'influxdb1', 'url' => $server['url'], 'database' => 'moodle',
                'retry_max_elapsed_ms' => 2000]);
            $before = count($this->captured($server, ''));
            get_log_manager()->get_readers()['logstore_tsdb']->get_events_select_count('courseid = :c', ['c' => 2]);
            \core\event\course_viewed::create(['context' => context_course::instance(SITEID)])->trigger();
            $this->new_request();
            $this->assertSame(0, tsdb_flush(10000), $name);
            $got = array_slice($this->captured($server, ''), $before);
            $this->assertSame(['/query', '/query', '/write'], array_column($got, 'path'), $name);
            foreach ($got as $r) {
                $this->assertStringStartsWith('/', $r['uri'], "$name: origin form, straight to the server");
            }
            $this->assertSame([], $this->captured($proxy, ''), "$name: nothing went through the proxy");
        }
    }
}

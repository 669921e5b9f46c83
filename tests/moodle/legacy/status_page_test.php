<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).

/**
 * The admin status page (status.php) runs as an entry point in both directory layouts (Moodle 4.4/4.5 and 5.1's
 * public/), for site administrators only, shows the extension, counters, chart and the connection test.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/base_testcase.php');

/**
 * Status page tests.
 */
class status_page_test extends base_testcase {

    /**
     * Lays out a fake site root with config.php (the harness) and the page at its plugin path; runs it.
     *
     * @param bool $public Moodle 5.1 layout (public/admin/...)
     * @param array $get request parameters
     * @param int $userid logged-in user
     * @param array|null $cfg the plugin's settings (default: the file sink of this test)
     * @return array [exit code, html, stderr]
     */
    protected function run_page(bool $public, array $get, int $userid, ?array $cfg = null): array {
        $dir = $this->site_tree($public);
        $cfg = $cfg ?? ['backend' => 'file', 'format' => 'json', 'path' => $this->sink];
        return $this->run_php_file("$dir/status.php", ['PAGE_CONFIG' => json_encode($cfg), 'PAGE_GET' => json_encode($get),
            'PAGE_USER' => (string) $userid]);
    }

    /**
     * Moodle 5.1 layout, admin: extension, counters, chart, test button.
     */
    public function test_page_for_admin_moodle51_layout(): void {
        [$rc, $html, $err] = $this->run_page(true, [], 2);
        $this->assertSame(0, $rc, $err);
        $this->assertSame('', trim($err));
        $this->assertStringContainsString('<h2>Time series database log store status</h2>', $html);
        $this->assertStringContainsString(tsdb_version(), $html);
        $this->assertStringContainsString('<td>written</td>', $html);
        $this->assertStringContainsString('class="chart"', $html);
        $this->assertStringContainsString('action=test', $html);
        $this->assertStringContainsString('sesskey=harnesssesskey', $html);
        preg_match('/data-chart="([^"]*)"/', $html, $m);
        $chart = json_decode(html_entity_decode($m[1]), true);
        $this->assertCount(60, $chart['labels']);
        $this->assertSame(['Written', 'Failed', 'Dropped'], array_column($chart['series'], 'label'));
    }

    /**
     * Moodle 4.4 layout: "Test connection" writes and reads back the marker.
     */
    public function test_test_connection_moodle44_layout(): void {
        [$rc, $html, $err] = $this->run_page(false, ['action' => 'test', 'sesskey' => 'harnesssesskey'], 2);
        $this->assertSame(0, $rc, $err);
        $this->assertStringContainsString('alert-success', $html);
        $this->assertStringContainsString('Connection works', $html);
        $rows = $this->read_back();
        $this->assertSame([\logstore_tsdb\local\connection_tester::EVENTNAME], array_column($rows, 'eventname'));
    }

    /**
     * The extension's warning (a token over http:// to a host off this machine) is shown on the page, escaped, and
     * by the status check; the token itself never. With https:// there is no warning and the check is OK.
     */
    public function test_extension_warning_is_shown_escaped(): void {
        $token = 'status-token-' . bin2hex(random_bytes(8));
        $cfg = ['backend' => 'influxdb2', 'url' => 'http://in<fl>ux&co.example.invalid:8086', 'org' => 'org',
            'token' => $token];
        $warning = 'url: the InfluxDB credentials cross the network in clear text (http:// to in<fl>ux&co.example.invalid); '
            . 'use https://';
        [$rc, $html, $err] = $this->run_page(true, [], 2, $cfg);
        $this->assertSame(0, $rc, $err);
        $this->assertStringContainsString('alert-warning', $html);
        $this->assertStringContainsString('The tsdb extension warns: ' . htmlspecialchars($warning), $html);
        $this->assertStringNotContainsString('in<fl>ux', $html, 'escaped everywhere');
        $this->assertStringNotContainsString($token, $html);

        $this->configure($cfg);
        $this->new_request();
        $result = (new \logstore_tsdb\check\extension_check())->get_result();
        $this->assertSame($warning, tsdb_stats()['warning']);
        $this->assertSame(\core\check\result::WARNING, $result->get_status());
        $this->assertSame(htmlspecialchars('The time series database log store works, but the tsdb extension warns: '
            . $warning), $result->get_summary());

        $cfg['url'] = 'https://influx.example.invalid:8086';
        [$rc, $html, $err] = $this->run_page(true, [], 2, $cfg);
        $this->assertSame(0, $rc, $err);
        $this->assertStringNotContainsString('alert-warning', $html);
        $this->assertStringContainsString('<td>warning</td><td></td>', $html);
        $this->configure($cfg);
        $this->new_request();
        $this->assertSame(\core\check\result::OK, (new \logstore_tsdb\check\extension_check())->get_result()->get_status());
        $this->assertSame('', tsdb_stats()['warning']);
    }

    /**
     * Without the session key the test is refused; a non-admin gets nothing.
     */
    public function test_access_control(): void {
        [$rc, $html, $err] = $this->run_page(false, ['action' => 'test', 'sesskey' => 'wrong'], 2);
        $this->assertNotSame(0, $rc);
        $this->assertStringContainsString('invalidsesskey', $err);
        [$rc, $html, $err] = $this->run_page(true, [], 5);
        $this->assertNotSame(0, $rc, 'a non-admin cannot open the page');
        $this->assertStringNotContainsString('<h2>', $html);
        $this->assertStringContainsString('accessdenied', $err);
        $this->assertSame([], $this->read_back(), 'nothing was written');
    }
}

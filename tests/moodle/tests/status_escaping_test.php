<?php
// This file is part of the logstore_tsdb tests (GPL v3 or later).

/**
 * An error text carrying attacker-controlled bytes (a server echoing an event line, a path) is shown escaped on the
 * status page served by the site's PHP-FPM pool, and a secret of the configuration never appears on it.
 *
 * @package    logstore_tsdb
 * @copyright  2025 The logstore_tsdb authors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/../lib/ops.php');
require_once(__DIR__ . '/status_page_test.php');

/**
 * Status page escaping tests.
 */
class status_escaping_test extends base_testcase {
    use tsdb_test_ops;

    /**
     * Test connection with the file backend in a directory that does not exist: its error names the path, which here
     * holds markup; the page shows it as text.
     */
    public function test_error_texts_are_escaped(): void {
        $this->mark_fpm_log();
        $token = 'TOKsecret-status-page-' . bin2hex(random_bytes(6));
        $evil = '/nonexistent/<script>alert(1)</script><img src=x onerror=alert(2)>/e.jsonl';
        $this->configure(['backend' => 'file', 'format' => 'json', 'path' => $evil, 'token' => $token,
            'retry_max_elapsed_ms' => 0]);
        $http = (new tsdb_test_http())->login_admin();
        $path = status_page_test::status_path();
        $html = $http->get($path);
        $html = $http->post($path, ['action' => 'test', 'sesskey' => tsdb_test_http::sesskey($html)]);
        $this->assertSame(200, $http->status);
        $this->assert_no_php_notice($html, 'status page after Test connection');
        $this->assertMatchesRegularExpression('~alert-danger.{0,2000}&lt;script&gt;alert\(1\)&lt;/script&gt;~s', $html,
            'the failed test shows the error naming the path, escaped');
        $this->assertStringNotContainsString('<script>alert', $html);
        $this->assertStringNotContainsString('<img src=x', $html);
        $this->assertStringNotContainsString($token, $html);
        $this->assert_fpm_log_clean();
    }
}

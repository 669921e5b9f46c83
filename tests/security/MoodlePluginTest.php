<?php
// The Moodle plugin's side: an error text that carries attacker-controlled bytes (a server echoing an
// event line, a path) is escaped on the admin status page; secrets are never printed back by the
// settings (tests/moodle/tests/settings_test.php::test_secrets_are_not_printed_back covers the form).
// Runs the real status.php on the test harness of tests/moodle (its config.php stand-in).

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/helpers.php';

final class MoodlePluginTest extends TestCase {
    public function test_status_page_escapes_error_texts(): void {
        if (!getenv('TSDB_TEST_PG_HOST')) {
            $this->markTestSkipped('SKIPPED: the harness needs PostgreSQL for $DB (source tests/servers/postgres.sh)');
        }
        $root = tsdb_sec_tempdir();
        $dir = "$root/admin/tool/log/store/tsdb";
        mkdir($dir, 0777, true);
        copy(dirname(__DIR__, 2) . '/moodle-plugin/status.php', "$dir/status.php");
        $bootstrap = addslashes(realpath(dirname(__DIR__) . '/moodle/bootstrap.php'));
        // The file backend in a directory that does not exist: its error names the path, which here
        // holds markup (a stand-in for any server text echoing event bytes).
        $evil = '/nonexistent/<script>alert(1)</script><img src=x onerror=alert(2)>/e.jsonl';
        file_put_contents("$root/config.php", "<?php\nrequire('$bootstrap');\n"
            . "set_config('backend', 'file', 'logstore_tsdb');\n"
            . "set_config('format', 'json', 'logstore_tsdb');\n"
            . "set_config('path', getenv('EVIL'), 'logstore_tsdb');\n"
            . "set_config('token', 'TOKsecret-status-page', 'logstore_tsdb');\n"
            . "\$_GET = ['action' => 'test', 'sesskey' => 'harnesssesskey'];\nharness::login(2);\n");
        $p = proc_open([PHP_BINARY, '-d', 'display_errors=stderr', '-d', 'extension=' . tsdb_sec_so(), "$dir/status.php"],
            [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, $root, array_merge(getenv(), ['EVIL' => $evil]));
        $html = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        fclose($pipes[1]);
        fclose($pipes[2]);
        $rc = proc_close($p);
        $this->assertSame(0, $rc, $err . $html);
        $this->assertStringContainsString('&lt;script&gt;alert(1)&lt;/script&gt;', $html, 'the error text is shown, escaped');
        $this->assertStringNotContainsString('<script>alert', $html);
        $this->assertStringNotContainsString('<img src=x', $html);
        $this->assertStringNotContainsString('TOKsecret-status-page', $html . $err);
    }
}

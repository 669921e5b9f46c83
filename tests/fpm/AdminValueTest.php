<?php
// A value the server fixes with php_admin_value[tsdb.*] in the FPM pool cannot be changed by the
// application: tsdb_configure() keeps the pool's value and says so in tsdb_stats()['warning'] (PHP's
// own rule for such entries: ini_set() cannot change them either). Values the pool sets with
// php_value, or does not set, stay the application's to choose.

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/fpm_pool.php';

final class AdminValueTest extends TestCase {
    use tsdb_test_tempdir;

    public function test_tsdb_configure_does_not_override_a_php_admin_value(): void {
        $fixed = "{$this->dir}/fixed-by-the-server.jsonl";
        $chosen = "{$this->dir}/chosen-by-the-app.jsonl";
        // The pool runs as nobody when the tests run as root: it must be able to create the files.
        chmod($this->dir, 0777);
        $pool = new tsdb_test_fpm_pool($this->dir, ['backend' => 'file', 'format' => 'json', 'path' => $fixed], 1000, 1);
        try {
            $stats = json_decode($pool->get('configure_page.php', 'user=41&path=' . urlencode($chosen)), true);
            $same = json_decode($pool->get('configure_page.php', 'user=42&path=' . urlencode($fixed)), true);
            $ini = $pool->get('ini_set_page.php', '');
        } finally {
            $pool->stop_gracefully();
        }
        $this->assertIsArray($stats, (string)@file_get_contents("{$this->dir}/fpm.out"));
        $this->assertSame(1, $stats['written']);
        $this->assertSame('path: fixed by the server (php_admin_value[tsdb.path]); the value given to tsdb_configure() is not used',
            $stats['warning']);
        // Asking for the fixed value itself is no conflict.
        $this->assertSame('', $same['warning']);
        $this->assertFileDoesNotExist($chosen);
        $rows = tsdb_test_read_jsonl($fixed);
        $this->assertSame([41, 42], array_map(fn($r) => $r['userid'], $rows));
        // PHP's own rule for the same entry.
        $this->assertSame('false', $ini);
    }
}

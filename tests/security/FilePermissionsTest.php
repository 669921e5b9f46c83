<?php
// Files the extension creates hold personal data (user ids, IP addresses, what people did): they are
// private to the PHP user whatever the process umask is. Spool modes with the default umask are also
// checked in php/tests/SpoolTest.php and tests/security_spool.rs.

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/helpers.php';

final class FilePermissionsTest extends TestCase {
    public function test_file_sink_creates_its_file_0600_even_with_umask_0(): void {
        $dir = tsdb_sec_tempdir();
        [$rc, $out, $err] = tsdb_sec_run(<<<'PHP'
umask(0);
tsdb_log_event(['eventname' => 'x', 'timecreated' => 1700000000, 'ip' => '198.51.100.7']);
tsdb_flush(5000);
clearstatcache();
printf('%o', fileperms(getenv('F')) & 0777);
PHP, ['tsdb.backend' => 'file', 'tsdb.path' => "$dir/events.lp"], 30, ['F' => "$dir/events.lp"]);
        $this->assertSame(0, $rc, $out . $err);
        $this->assertSame('600', $out);
    }

    public function test_spool_and_journal_are_0700_and_0600_even_with_umask_0(): void {
        $dir = tsdb_sec_tempdir();
        [$rc, $out, $err] = tsdb_sec_run(<<<'PHP'
umask(0);
$d = getenv('D');
// The backend is down (its directory is missing): batches go to the spool; durable mode journals first.
tsdb_configure(['backend' => 'file', 'path' => "$d/missing/events.lp", 'spool_dir' => "$d/a/spool",
    'mode' => 'durable', 'retry_max_elapsed_ms' => 0, 'flush_interval_ms' => 20, 'spool_fsync' => 0]);
for ($i = 0; $i < 50; $i++) {
    tsdb_log_event(['eventname' => 'x', 'timecreated' => 1700000000, 'userid' => $i]);
}
for ($i = 0; $i < 100 && tsdb_stats()['spooled'] < 50; $i++) {
    tsdb_flush(100);
    usleep(50000);
}
clearstatcache();
$modes = [];
$it = new RecursiveIteratorIterator(new RecursiveDirectoryIterator("$d/a", FilesystemIterator::SKIP_DOTS),
    RecursiveIteratorIterator::SELF_FIRST);
foreach ($it as $f) {
    $modes[substr($f->getPathname(), strlen($d))] = sprintf('%o', fileperms($f->getPathname()) & 0777);
}
$modes['/a'] = sprintf('%o', fileperms("$d/a") & 0777);
echo json_encode(['modes' => $modes, 'spooled' => tsdb_stats()['spooled']]);
PHP, [], 60, ['D' => $dir]);
        $this->assertSame(0, $rc, $out . $err);
        $r = json_decode($out, true);
        $this->assertSame(50, $r['spooled']);
        $files = 0;
        foreach ($r['modes'] as $path => $mode) {
            $isdir = is_dir($dir . $path);
            $this->assertSame($isdir ? '700' : '600', $mode, "$path");
            $files += $isdir ? 0 : 1;
        }
        $this->assertGreaterThan(0, $files, 'no spool file was checked: ' . $out);
    }

    /**
     * A documented limit (docs/SECURITY.md, Files): a `tsdb.path` from php.ini (or an FPM pool's
     * php_admin_value) is only the default; tsdb_configure() overrides it.
     */
    public function test_tsdb_configure_overrides_the_ini_path(): void {
        $dir = tsdb_sec_tempdir();
        [$rc, $out, $err] = tsdb_sec_run(<<<'PHP'
tsdb_configure(['backend' => 'file', 'path' => getenv('D') . '/chosen-by-the-app.lp']);
tsdb_log_event(['eventname' => 'x', 'timecreated' => 1700000000]);
tsdb_flush(5000);
echo file_exists(getenv('D') . '/chosen-by-the-app.lp') ? 'APP' : '', file_exists(getenv('D') . '/ini.lp') ? 'INI' : '';
PHP, ['tsdb.backend' => 'file', 'tsdb.path' => "$dir/ini.lp"], 30, ['D' => $dir]);
        $this->assertSame(0, $rc, $out . $err);
        $this->assertSame('APP', $out);
    }
}

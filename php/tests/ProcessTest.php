<?php
// Process-level behaviour of the extension, each case in a fresh `php` process: ini defaults, exit
// without tsdb_flush(), pcntl_fork(), phpinfo().

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/helpers.php';

final class ProcessTest extends TestCase {
    use tsdb_test_tempdir;

    private function event_code(): string {
        return 'function ev($i) { return ["eventname" => "\\\\core\\\\event\\\\course_viewed", "userid" => $i, ' .
            '"courseid" => 2, "anonymous" => 0, "timecreated" => 1700000000 + $i, "other" => ["pid" => getmypid()]]; }';
    }

    public function test_ini_settings_are_the_defaults_and_cli_exit_flushes(): void {
        $path = $this->dir . '/ini.jsonl';
        // A long flush interval: only the exit (MSHUTDOWN) can deliver these events.
        [$rc, $out] = tsdb_test_run_php($this->event_code() .
            'for ($i = 0; $i < 5000; $i++) { tsdb_log_event(ev($i)); } $s = tsdb_stats(); echo $s["backend"], " ", $s["written"];',
            ['tsdb.backend' => 'file', 'tsdb.path' => $path, 'tsdb.format' => 'json', 'tsdb.flush_interval_ms' => '600000',
             'tsdb.batch_size' => '100000']);
        $this->assertSame(0, $rc, $out);
        $this->assertSame('file 0', $out);
        $rows = tsdb_test_read_jsonl($path);
        $this->assertCount(5000, $rows);
        $this->assertSame(range(0, 4999), array_column($rows, 'userid'));
    }

    public function test_invalid_ini_value_is_named(): void {
        [$rc, $out] = tsdb_test_run_php($this->event_code() .
            'try { tsdb_log_event(ev(1)); } catch (ValueError $e) { echo $e->getMessage(); }',
            ['tsdb.batch_size' => '0', 'tsdb.backend' => 'file', 'tsdb.path' => $this->dir . '/x']);
        $this->assertSame(0, $rc, $out);
        $this->assertStringContainsString('php.ini: tsdb.batch_size: must be an integer between 1 and 100000', $out);
        $this->assertFileDoesNotExist($this->dir . '/x');
    }

    public function test_forked_child_gets_its_own_thread_and_never_resends_the_parent_buffer(): void {
        $path = $this->dir . '/fork.jsonl';
        $code = $this->event_code() . '
            tsdb_configure(["backend" => "file", "path" => "' . $path . '", "format" => "json", "flush_interval_ms" => 600000]);
            for ($i = 0; $i < 100; $i++) { tsdb_log_event(ev($i)); }       // queued in the parent, not yet written
            $pid = pcntl_fork();
            if ($pid === 0) {
                for ($i = 1000; $i < 1050; $i++) { tsdb_log_event(ev($i)); }
                $left = tsdb_flush(5000);
                $s = tsdb_stats();
                echo "child accepted=", $s["accepted"], " written=", $s["written"], " left=", $left, "\n";
                exit(0);
            }
            pcntl_waitpid($pid, $status);
            for ($i = 100; $i < 110; $i++) { tsdb_log_event(ev($i)); }
            $left = tsdb_flush(5000);
            $s = tsdb_stats();
            echo "parent accepted=", $s["accepted"], " written=", $s["written"], " left=", $left, "\n";';
        [$rc, $out] = tsdb_test_run_php($code);
        $this->assertSame(0, $rc, $out);
        $this->assertStringContainsString("child accepted=50 written=50 left=0", $out);
        $this->assertStringContainsString("parent accepted=110 written=110 left=0", $out);
        $rows = tsdb_test_read_jsonl($path);
        $this->assertCount(160, $rows);
        $users = array_column($rows, 'userid');
        sort($users);
        $this->assertSame(array_merge(range(0, 109), range(1000, 1049)), $users);
        $this->assertCount(160, array_unique(array_column($rows, 'event_id')));
        // Two producers (parent and child), each with its own sequence.
        $producers = array_unique(array_map(fn($id) => substr($id, 0, 18), array_column($rows, 'event_id')));
        $this->assertCount(2, $producers);
    }

    public function test_durable_mode_survives_sigkill(): void {
        $path = $this->dir . '/durable.jsonl';
        $spool = $this->dir . '/spool';
        $config = ['backend' => 'file', 'path' => $path, 'format' => 'json', 'mode' => 'durable', 'spool_dir' => $spool,
            'flush_interval_ms' => 600000, 'batch_size' => 100];
        // Half of the events reach the backend, then the process is killed: no MSHUTDOWN, no flush.
        [$rc, $out] = tsdb_test_run_php($this->event_code() . '
            tsdb_configure(' . var_export($config, true) . ');
            for ($i = 0; $i < 500; $i++) { tsdb_log_event(ev($i)); }
            tsdb_flush(5000);
            for ($i = 500; $i < 1000; $i++) { tsdb_log_event(ev($i)); }
            echo "logged\n";
            shell_exec("kill -KILL " . getmypid()); sleep(10);');
        $this->assertContains($rc, [9, 137], "killed by SIGKILL: $out");
        $this->assertStringContainsString('logged', $out);
        $before = count(tsdb_test_read_jsonl($path));
        $this->assertGreaterThanOrEqual(500, $before, 'the flushed half reached the backend before the kill');
        // The dead process's journal is an unlocked segment: a replay delivers what it holds.
        [$rc, $out] = tsdb_test_replay_in_another_process($config, 10000);
        $this->assertSame(0, $rc, $out);
        $rep = json_decode($out, true);
        $this->assertSame('', $rep['error'], $out);
        $this->assertSame(0, $rep['remaining_segments'], $out);
        $rows = tsdb_test_read_jsonl($path);
        // Every event arrived; the file sink is not idempotent, so events both flushed and journaled
        // may arrive twice there (InfluxDB and PostgreSQL store them once: same point, same ledger range).
        $byid = [];
        foreach ($rows as $r) {
            $byid[$r['event_id']] = $r['userid'];
        }
        $users = array_values($byid);
        sort($users);
        $this->assertSame(range(0, 999), $users);
        $this->assertLessThanOrEqual(1000 + $before, count($rows));
    }

    public function test_durable_graceful_exit_leaves_no_journal(): void {
        $path = $this->dir . '/d2.jsonl';
        $spool = $this->dir . '/spool2';
        [$rc, $out] = tsdb_test_run_php($this->event_code() . '
            tsdb_configure(["backend" => "file", "path" => "' . $path . '", "format" => "json", "mode" => "durable",
              "spool_dir" => "' . $spool . '", "flush_interval_ms" => 50]);
            for ($i = 0; $i < 300; $i++) { tsdb_log_event(ev($i)); }');
        $this->assertSame(0, $rc, $out);
        $this->assertCount(300, tsdb_test_read_jsonl($path));
        $this->assertSame([], glob($spool . '/*.seg'));
    }

    public function test_durable_requires_a_spool_dir(): void {
        [$rc, $out] = tsdb_test_run_php('try { tsdb_configure(["mode" => "durable"]); } catch (ValueError $e) { echo $e->getMessage(); }');
        $this->assertSame(0, $rc, $out);
        $this->assertStringContainsString('spool_dir: required for mode durable', $out);
    }

    public function test_phpinfo_shows_settings_and_masks_secrets(): void {
        [$rc, $out] = tsdb_test_run_php('phpinfo(INFO_MODULES);',
            ['tsdb.backend' => 'postgres', 'tsdb.password' => 'pg-secret-123', 'tsdb.token' => 'tok-secret-456']);
        $this->assertSame(0, $rc, $out);
        $this->assertMatchesRegularExpression('/tsdb\.backend => postgres/', $out);
        $this->assertMatchesRegularExpression('/tsdb\.password => \*{8}/', $out);
        $this->assertStringNotContainsString('pg-secret-123', $out);
        $this->assertStringNotContainsString('tok-secret-456', $out);
        $this->assertMatchesRegularExpression('/tsdb\.batch_size => 5000/', $out);
    }

    public function test_secrets_stay_out_of_stats_and_errors(): void {
        // A file sink cannot fail with a password, so use a backend whose errors may echo connection strings.
        [$rc, $out] = tsdb_test_run_php($this->event_code() . '
            tsdb_configure(["backend" => "postgres", "host" => "127.0.0.1", "port" => 1, "password" => "pw-77-secret",
              "retry_max_elapsed_ms" => 0, "connect_timeout_ms" => 200]);
            tsdb_log_event(ev(1));
            tsdb_flush(3000);
            echo json_encode(tsdb_stats());');
        $this->assertSame(0, $rc, $out);
        $stats = json_decode($out, true);
        $this->assertIsArray($stats, $out);
        $this->assertSame(1, $stats['failed']);
        $this->assertNotSame('', $stats['last_error']);
        $this->assertStringNotContainsString('pw-77-secret', $out);
    }
}

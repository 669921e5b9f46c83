<?php
// The disk spool through the extension, with the file sink as the backend: a file whose directory is
// missing is a backend that is down; creating the directory brings it back. Every test counts exactly.

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/helpers.php';

final class SpoolTest extends TestCase {
    use tsdb_test_tempdir;

    private function configure_down(array $extra = []): array {
        $config = array_merge([
            'backend' => 'file', 'format' => 'json', 'path' => $this->dir . '/backend/events.jsonl',
            'spool_dir' => $this->dir . '/spool', 'flush_interval_ms' => 50, 'retry_max_elapsed_ms' => 0,
            'breaker_open_ms' => 200, 'batch_size' => 100,
        ], $extra);
        tsdb_configure($config);
        return $config;
    }

    /** Waits until `$until` is true of tsdb_stats(), flushing meanwhile; fails after 30 s. */
    private function wait_stats(callable $until): array {
        for ($i = 0; $i < 300; $i++) {
            tsdb_flush(100);
            $s = tsdb_stats();
            if ($until($s)) {
                return $s;
            }
            usleep(100000);
        }
        $this->fail('timed out: ' . json_encode(tsdb_stats()));
    }

    public function test_outage_spools_then_replays_every_event_once(): void {
        $this->configure_down();
        $s0 = tsdb_stats();
        for ($i = 0; $i < 1000; $i++) {
            $this->assertTrue(tsdb_log_event(tsdb_test_event($i)));
        }
        $s = $this->wait_stats(fn($s) => $s['spooled'] - $s0['spooled'] === 1000);
        $this->assertSame(0, $s['pending']);
        $this->assertSame('open', $s['breaker']);
        $this->assertGreaterThanOrEqual(10, $s['spool_segments']);
        $this->assertGreaterThan(0, $s['spool_bytes']);
        $this->assertFileDoesNotExist($this->dir . '/backend/events.jsonl');
        foreach (glob($this->dir . '/spool/*.seg') as $f) {
            $this->assertSame(0600, fileperms($f) & 0777);
        }
        $this->assertSame(0700, fileperms($this->dir . '/spool') & 0777);

        mkdir($this->dir . '/backend');
        $s = $this->wait_stats(fn($s) => $s['replayed'] - $s0['replayed'] === 1000 && $s['spool_segments'] === 0);
        $this->assertSame('closed', $s['breaker']);
        $rows = tsdb_test_read_jsonl($this->dir . '/backend/events.jsonl');
        $this->assertCount(1000, $rows);
        $this->assertCount(1000, array_unique(array_column($rows, 'event_id')));
        $this->assertSame(range(1000, 1999), array_column($rows, 'userid'), 'replayed in order');
    }

    public function test_replay_from_another_process_and_quarantine(): void {
        $config = $this->configure_down(['breaker_open_ms' => 3600000]);
        for ($i = 0; $i < 300; $i++) {
            tsdb_log_event(tsdb_test_event($i));
        }
        $this->wait_stats(fn($s) => $s['pending'] === 0 && $s['spool_segments'] === 3);
        $segs = glob($this->dir . '/spool/*.seg');
        sort($segs);
        // Corrupt the middle segment: one flipped byte at its end.
        $raw = file_get_contents($segs[1]);
        $raw[strlen($raw) - 1] = chr(ord($raw[strlen($raw) - 1]) ^ 1);
        file_put_contents($segs[1], $raw);
        mkdir($this->dir . '/backend');
        // A Moodle task or CLI script in another process replays (this process's breaker stays open).
        [$rc, $out] = tsdb_test_replay_in_another_process($config, 10000);
        $this->assertSame(0, $rc, $out);
        $rep = json_decode($out, true);
        $this->assertSame(['segments' => 2, 'written' => 200, 'rejected' => 0, 'quarantined' => 1, 'busy' => 0,
            'timed_out' => false, 'error' => '', 'remaining_segments' => 0, 'remaining_bytes' => 0,
            'quarantined_total' => 1], $rep);
        $rows = tsdb_test_read_jsonl($this->dir . '/backend/events.jsonl');
        $this->assertSame(array_merge(range(1000, 1099), range(1200, 1299)), array_column($rows, 'userid'));
        $reason = file_get_contents($this->dir . '/spool/quarantine/' . basename($segs[1]) . '.reason');
        $this->assertStringContainsString('checksum mismatch', $reason);
        $this->assertSame(1, tsdb_stats()['quarantined']);
    }

    /**
     * A flush thread configured for another file (an idle PHP-FPM worker that has not seen the admin's new settings
     * yet) replays only its own target's segments: the events spooled for file B never land in file A that way. The
     * replay task (tsdb_replay_spool(), reading the site's configuration as it runs) delivers every target's to the
     * configured one: B's events reach B while B is configured, and A's once the admin moved the site to A.
     */
    public function test_a_flush_thread_leaves_another_targets_segments_to_the_replay_task(): void {
        $b = $this->configure_down(['path' => $this->dir . '/b/events.jsonl', 'breaker_open_ms' => 3600000]);
        $replayed = tsdb_stats()['replayed'];
        for ($i = 0; $i < 200; $i++) {
            tsdb_log_event(tsdb_test_event($i));
        }
        $this->wait_stats(fn($s) => $s['pending'] === 0 && $s['spool_segments'] === 2);
        // Now configured for A, which is up: its flush thread replays its spool every second.
        mkdir($this->dir . '/a');
        $this->configure_down(['path' => $this->dir . '/a/events.jsonl']);
        for ($i = 500; $i < 600; $i++) {
            tsdb_log_event(tsdb_test_event($i));
        }
        $this->wait_stats(fn($s) => $s['pending'] === 0 && file_exists($this->dir . '/a/events.jsonl'));
        for ($i = 0; $i < 15; $i++) {
            tsdb_flush(100);
            usleep(200000);
        }
        $s = tsdb_stats();
        $this->assertSame([0, 2, 0], [$s['spool_segments'], $s['spool_other_segments'], $s['replayed'] - $replayed],
            json_encode($s));
        $this->assertSame(range(1500, 1599), array_column(tsdb_test_read_jsonl($this->dir . '/a/events.jsonl'), 'userid'),
            "only A's events in A");
        // The replay task configured for B, which is up now, replays B's segments into B.
        mkdir($this->dir . '/b');
        [$rc, $out] = tsdb_test_replay_in_another_process($b, 10000);
        $this->assertSame(0, $rc, $out);
        $rep = json_decode($out, true);
        $this->assertSame([2, 200, '', 0], [$rep['segments'], $rep['written'], $rep['error'], $rep['remaining_segments']],
            $out);
        $this->assertSame(range(1000, 1199), array_column(tsdb_test_read_jsonl($this->dir . '/b/events.jsonl'), 'userid'));
        $this->assertSame(0, tsdb_stats()['spool_other_segments']);
        // B down again, 100 more spooled for it; then the admin moves the site to A: the task delivers them to A.
        unlink($this->dir . '/b/events.jsonl');
        rmdir($this->dir . '/b');
        $this->configure_down(['path' => $this->dir . '/b/events.jsonl', 'breaker_open_ms' => 3600000]);
        $s0 = tsdb_stats();
        for ($i = 700; $i < 800; $i++) {
            tsdb_log_event(tsdb_test_event($i));
        }
        $this->wait_stats(fn($s) => $s['pending'] === 0 && $s['spooled'] - $s0['spooled'] === 100);
        [$rc, $out] = tsdb_test_replay_in_another_process(['path' => $this->dir . '/a/events.jsonl'] + $b, 10000);
        $this->assertSame(0, $rc, $out);
        $rep = json_decode($out, true);
        $this->assertSame([1, 100, ''], [$rep['segments'], $rep['written'], $rep['error']], $out);
        $this->assertSame(array_merge(range(1500, 1599), range(1700, 1799)),
            array_column(tsdb_test_read_jsonl($this->dir . '/a/events.jsonl'), 'userid'), "B's last events in A");
    }

    public function test_spool_cap_drops_oldest_and_counts(): void {
        $this->configure_down(['spool_limit_bytes' => 1048576, 'batch_size' => 1000, 'breaker_open_ms' => 3600000]);
        $s0 = tsdb_stats();
        $big = str_repeat('x', 2000);
        for ($i = 0; $i < 3000; $i++) {
            tsdb_log_event(tsdb_test_event($i, ['other' => ['pad' => $big]]));
        }
        $s = $this->wait_stats(fn($s) => $s['pending'] === 0);
        $spooled = $s['spooled'] - $s0['spooled'];
        $dropped = $s['spool_dropped'] - $s0['spool_dropped'];
        $this->assertSame(3000, $spooled);
        $this->assertGreaterThan(0, $dropped);
        $this->assertLessThanOrEqual(1048576, $s['spool_bytes']);
        $size = 0;
        foreach (glob($this->dir . '/spool/*.seg') as $f) {
            $size += filesize($f);
        }
        $this->assertSame($s['spool_bytes'], $size);
        // What is left is exactly what was spooled minus what was dropped.
        mkdir($this->dir . '/backend');
        $rep = tsdb_replay_spool(10000);
        $this->assertSame('', $rep['error']);
        $rows = tsdb_test_read_jsonl($this->dir . '/backend/events.jsonl');
        $this->assertCount(3000 - $dropped, $rows);
        $this->assertSame(range(1000 + $dropped, 3999), array_column($rows, 'userid'), 'the oldest were dropped');
    }

    public function test_replay_without_spool_dir_is_a_clear_error(): void {
        tsdb_configure(['backend' => 'file', 'path' => $this->dir . '/x', 'spool_dir' => '']);
        $this->expectException(\ValueError::class);
        $this->expectExceptionMessage('spool_dir: not set');
        tsdb_replay_spool(100);
    }
}

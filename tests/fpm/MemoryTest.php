<?php
// Memory under a long outage: PHP-FPM workers keep logging while the backend refuses every connection.
// memory_limit_bytes caps the event bytes a worker holds (queued + in flight); its RSS may grow by that
// cap plus the flush thread's working copies (a batch being cut and framed for the spool) and allocator
// slack, bounded here by 2 x cap + 8 MiB, and must not keep growing. TSDB_OUTAGE_SECONDS sets the outage with a spool (default 600: ten minutes);
// the run without a spool reaches its steady state (drops) in seconds and lasts at most 120 s.

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/fpm_pool.php';

final class MemoryTest extends TestCase {
    use tsdb_test_tempdir;

    private function rss_kib(int $pid): int {
        $status = @file_get_contents("/proc/$pid/status");
        return $status && preg_match('/^VmRSS:\s+(\d+) kB/m', $status, $m) ? (int)$m[1] : 0;
    }

    /** @return array{0: int, 1: int, 2: array} baseline KiB, peak KiB, worker stats */
    private function run_outage(array $extra, int $seconds): array {
        $cap = 8 << 20;
        $pool = new tsdb_test_fpm_pool($this->dir, array_merge([
            'backend' => 'postgres', 'host' => '127.0.0.1', 'port' => 1, 'connect_timeout_ms' => 200,
            'memory_limit_bytes' => $cap, 'flush_interval_ms' => 200, 'retry_base_ms' => 100, 'retry_max_ms' => 1000,
            'retry_max_elapsed_ms' => 86400000, 'breaker_open_ms' => 1000,
        ], $extra), 1000000, 2);
        // Warm up: both workers have started their flush thread and PHP's own allocations.
        for ($req = 1; $req <= 40; $req++) {
            $pool->request($req, 20);
        }
        $pids = $pool->worker_pids();
        $baseline = max(array_map([$this, 'rss_kib'], $pids));
        $peak = $baseline;
        $start = microtime(true);
        for ($req = 41; microtime(true) - $start < $seconds; $req++) {
            $pool->request($req, 100);
            if ($req % 20 === 0) {
                $peak = max($peak, ...array_map([$this, 'rss_kib'], $pids));
            }
        }
        $this->assertSame($pids, $pool->worker_pids(), 'no worker died');
        $pool->stop_gracefully();
        return [$baseline, $peak, $req];
    }

    private function seconds(): int {
        return (int)(getenv('TSDB_OUTAGE_SECONDS') ?: 600);
    }

    public function test_rss_stays_under_the_memory_cap_without_spool(): void {
        [$baseline, $peak, $requests] = $this->run_outage([], min(120, $this->seconds()));
        fwrite(STDERR, sprintf("\n[memory, no spool] %d requests x 100 events; worker RSS %d KiB -> peak %d KiB (cap 8192 KiB)\n",
            $requests, $baseline, $peak));
        $this->assertLessThanOrEqual($baseline + 2 * 8192 + 8192, $peak);
    }

    public function test_rss_stays_under_the_memory_cap_with_spool(): void {
        [$baseline, $peak, $requests] = $this->run_outage(['spool_dir' => "{$this->dir}/spool",
            'spool_limit_bytes' => 64 << 20], $this->seconds());
        $spooled = 0;
        foreach (glob("{$this->dir}/spool/*.seg") as $f) {
            $spooled += filesize($f);
        }
        fwrite(STDERR, sprintf("\n[memory, spool] %d requests x 100 events; worker RSS %d KiB -> peak %d KiB (cap 8192 KiB); spool %d KiB (cap 65536 KiB)\n",
            $requests, $baseline, $peak, intdiv($spooled, 1024)));
        $this->assertLessThanOrEqual($baseline + 2 * 8192 + 8192, $peak);
        $this->assertGreaterThan(0, $spooled);
        $this->assertLessThanOrEqual(64 << 20, $spooled);
    }
}

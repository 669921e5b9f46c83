<?php
// A real PHP-FPM pool on 127.0.0.1 driven with cgi-fcgi: each worker delivers its own events, and
// recycling (pm.max_requests), SIGQUIT and reload (USR2) lose none. Counts are exact, read back from
// the file sink.

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/fpm_pool.php';

final class FpmTest extends TestCase {
    use tsdb_test_tempdir;

    private function pool(int $maxrequests, int $flushms): tsdb_test_fpm_pool {
        return new tsdb_test_fpm_pool($this->dir, ['backend' => 'file', 'path' => "{$this->dir}/events.jsonl",
            'format' => 'json', 'flush_interval_ms' => $flushms, 'batch_size' => 100000], $maxrequests);
    }

    /** Asserts every (request, i) pair arrived exactly once and each worker's events carry its pid. */
    private function assert_exact(array $requests, int $n, array $pidsbyreq): array {
        $rows = tsdb_test_read_jsonl("{$this->dir}/events.jsonl");
        $this->assertCount(count($requests) * $n, $rows, (string)@file_get_contents("{$this->dir}/fpm.out"));
        $seen = [];
        $producers = [];
        foreach ($rows as $r) {
            $o = json_decode($r['other'], true);
            $key = $o['req'] . ':' . $o['i'];
            $this->assertArrayNotHasKey($key, $seen, "duplicate $key");
            $seen[$key] = true;
            $this->assertSame($pidsbyreq[$o['req']], $o['pid'], "request {$o['req']} logged by another pid");
            $producers[$o['pid']][substr($r['event_id'], 0, 18)] = true;
        }
        foreach ($requests as $req) {
            for ($i = 0; $i < $n; $i++) {
                $this->assertArrayHasKey("$req:$i", $seen);
            }
        }
        foreach ($producers as $pid => $ids) {
            $this->assertCount(1, $ids, "worker $pid used one producer id");
        }
        return $producers;
    }

    public function test_recycling_and_sigquit_lose_nothing(): void {
        // Events are only delivered at worker exit: a 10-minute flush interval and huge batches.
        $pool = $this->pool(10, 600000);
        $pids = [];
        $requests = range(1, 120);
        foreach ($requests as $req) {
            $pids[$req] = $pool->request($req, 20);
        }
        $pool->stop_gracefully();
        $producers = $this->assert_exact($requests, 20, $pids);
        // 120 requests, 4 workers, recycled every 10 requests: at least 12 worker processes.
        $this->assertGreaterThanOrEqual(12, count(array_unique($pids)));
        $this->assertSame(count(array_unique($pids)), count($producers));
    }

    public function test_reload_loses_nothing(): void {
        $pool = $this->pool(1000, 600000);
        $pids = [];
        foreach (range(1, 60) as $req) {
            $pids[$req] = $pool->request($req, 20);
        }
        posix_kill($pool->master_pid(), SIGUSR2);
        $old = array_unique($pids);
        usleep(500000);
        $pool->wait_ready();
        foreach (range(61, 120) as $req) {
            $pids[$req] = $pool->request($req, 20);
        }
        $this->assertNotEmpty(array_diff(array_unique(array_slice($pids, 60, null, true)), $old), 'reload started new workers');
        $pool->stop_gracefully();
        $this->assert_exact(range(1, 120), 20, $pids);
    }

    public function test_each_worker_delivers_its_own_events_while_running(): void {
        // A short flush interval: the flush thread of each worker delivers without any exit.
        $pool = $this->pool(1000, 100);
        $pids = [];
        foreach (range(1, 40) as $req) {
            $pids[$req] = $pool->request($req, 20);
        }
        $rows = [];
        for ($i = 0; $i < 100 && count($rows) < 800; $i++) {
            usleep(100000);
            $rows = tsdb_test_read_jsonl("{$this->dir}/events.jsonl");
        }
        $this->assertCount(800, $rows, 'all events delivered by the running workers');
        $pool->stop_gracefully();
        $this->assert_exact(range(1, 40), 20, $pids);
    }
}

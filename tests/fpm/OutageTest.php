<?php
// Nothing lost: a real PHP-FPM pool logging into a real InfluxDB 1.6.7 through outages, a backend that
// never answers, and SIGKILLed workers. Counts are exact: InfluxDB keeps one point per event (a resent
// event rewrites its own point), and every (request, i) pair is checked.

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/fpm_pool.php';

final class OutageTest extends TestCase {
    use tsdb_test_tempdir;

    private function tsdb(tsdb_test_influxd $influx, array $extra = []): array {
        return array_merge(['backend' => 'influxdb1', 'url' => $influx->url, 'database' => $influx->db,
            'spool_dir' => "{$this->dir}/spool", 'flush_interval_ms' => 200, 'retry_max_elapsed_ms' => 1000,
            'retry_base_ms' => 50, 'retry_max_ms' => 200, 'breaker_open_ms' => 1000, 'timeout_ms' => 1000,
            'connect_timeout_ms' => 500], $extra);
    }

    /** Replays what the workers left in the spool from a CLI process, as the Moodle task would. */
    private function replay_rest(array $tsdb): array {
        [$rc, $out] = tsdb_test_replay_in_another_process($tsdb, 60000);
        $this->assertSame(0, $rc, $out);
        $rep = json_decode($out, true);
        $this->assertIsArray($rep, $out);
        $this->assertSame('', $rep['error']);
        $this->assertSame(0, $rep['remaining_segments']);
        return $rep;
    }

    private function assert_every_pair_once(tsdb_test_influxd $influx, array $requests, int $n): void {
        $pairs = $influx->request_pairs();
        $this->assertCount(count($requests) * $n, $pairs, 'points in InfluxDB');
        $want = [];
        foreach ($requests as $req) {
            for ($i = 0; $i < $n; $i++) {
                $want[] = "$req:$i";
            }
        }
        sort($pairs);
        sort($want);
        $this->assertSame($want, $pairs);
    }

    public function test_backend_down_for_30_seconds_under_load(): void {
        $influx = new tsdb_test_influxd($this->dir);
        $tsdb = $this->tsdb($influx);
        $pool = new tsdb_test_fpm_pool($this->dir, $tsdb);
        $ok = [];
        $start = microtime(true);
        $stopped = $restarted = false;
        $slowest = 0.0;
        for ($req = 1; microtime(true) - $start < 45; $req++) {
            $t = microtime(true) - $start;
            if (!$stopped && $t >= 5) {
                $influx->stop();
                $stopped = true;
            }
            if ($stopped && !$restarted && $t >= 35) {
                $influx->start();
                $restarted = true;
            }
            $t0 = microtime(true);
            if ($pool->request($req) > 0) {
                $ok[] = $req;
            }
            $slowest = max($slowest, microtime(true) - $t0);
            usleep(10000);
        }
        $this->assertTrue($stopped && $restarted);
        fwrite(STDERR, sprintf("\n[outage 30 s] %d requests, slowest %.1f ms (reported, not asserted)\n", count($ok), $slowest * 1000));
        $this->assertGreaterThan(500, count($ok));
        $pool->stop_gracefully();
        $this->replay_rest($tsdb);
        $this->assert_every_pair_once($influx, $ok, 20);
    }

    public function test_a_backend_that_never_answers_spools_then_replays(): void {
        $influx = new tsdb_test_influxd($this->dir);
        // A listener that accepts connections and never answers.
        $black = stream_socket_server('tcp://127.0.0.1:0');
        $name = stream_socket_get_name($black, false);
        $hung = $this->tsdb($influx, ['url' => "http://$name", 'timeout_ms' => 300]);
        $pool = new tsdb_test_fpm_pool($this->dir, $hung);
        $ok = [];
        $held = [];
        for ($req = 1; $req <= 200; $req++) {
            if ($pool->request($req) > 0) {
                $ok[] = $req;
            }
            while ($c = @stream_socket_accept($black, 0)) {
                $held[] = $c; // keep them open, say nothing
            }
        }
        $pool->stop_gracefully();
        $this->assertCount(200, $ok);
        $this->assertSame([], $influx->request_pairs(), 'nothing reached the real server yet');
        $this->assertNotEmpty(glob("{$this->dir}/spool/*.seg"), 'events were spooled');
        // The admin points the store at the working server; the task replays the spool.
        $this->replay_rest($this->tsdb($influx));
        $this->assert_every_pair_once($influx, $ok, 20);
    }

    public function test_sigkill_of_workers_in_durable_mode_loses_nothing(): void {
        $influx = new tsdb_test_influxd($this->dir);
        $tsdb = $this->tsdb($influx, ['mode' => 'durable', 'flush_interval_ms' => 1000]);
        $pool = new tsdb_test_fpm_pool($this->dir, $tsdb);
        $ok = [];
        $kills = 0;
        for ($req = 1; $req <= 400; $req++) {
            if ($pool->request($req) > 0) {
                $ok[] = $req;
            }
            if ($req % 50 === 0) {
                // Kill every worker: no MSHUTDOWN, whatever is only in memory is gone.
                foreach ($pool->worker_pids() as $pid) {
                    posix_kill($pid, SIGKILL);
                    $kills++;
                }
                usleep(300000);
            }
        }
        $this->assertGreaterThanOrEqual(16, $kills);
        $this->assertGreaterThan(300, count($ok));
        foreach ($pool->worker_pids() as $pid) {
            posix_kill($pid, SIGKILL);
        }
        posix_kill($pool->master_pid(), SIGKILL);
        usleep(300000);
        $this->replay_rest($tsdb);
        $this->assert_every_pair_once($influx, $ok, 20);
    }
}

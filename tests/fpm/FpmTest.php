<?php
// A real PHP-FPM pool on 127.0.0.1 driven with cgi-fcgi: each worker delivers its own events, and
// recycling (pm.max_requests), SIGQUIT and reload (USR2) lose none. Counts are exact, read back from
// the file sink.

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/../../php/tests/helpers.php';

final class FpmTest extends TestCase {
    use tsdb_test_tempdir {
        tearDown as remove_tempdir;
    }

    private int $port;
    /** @var resource|null */
    private $proc = null;

    protected function tearDown(): void {
        if ($this->proc) {
            $st = proc_get_status($this->proc);
            if ($st['running']) {
                posix_kill($st['pid'], SIGKILL);
            }
            proc_close($this->proc);
        }
        $this->remove_tempdir();
    }

    private function free_port(): int {
        $s = stream_socket_server('tcp://127.0.0.1:0');
        $name = stream_socket_get_name($s, false);
        fclose($s);
        return (int)substr($name, strrpos($name, ':') + 1);
    }

    private function start_fpm(int $maxrequests, int $flushms): void {
        $this->port = $this->free_port();
        $so = getenv('TSDB_SO') ?: dirname(__DIR__, 2) . '/target/release/libtsdb.so';
        $conf = "[global]\npid = {$this->dir}/fpm.pid\nerror_log = {$this->dir}/fpm.log\ndaemonize = no\n" .
            "process_control_timeout = 20s\n\n[www]\nlisten = 127.0.0.1:{$this->port}\npm = static\npm.max_children = 4\n" .
            "pm.max_requests = $maxrequests\ncatch_workers_output = yes\n" .
            "php_admin_value[tsdb.backend] = file\nphp_admin_value[tsdb.path] = {$this->dir}/events.jsonl\n" .
            "php_admin_value[tsdb.format] = json\nphp_admin_value[tsdb.flush_interval_ms] = $flushms\n" .
            "php_admin_value[tsdb.batch_size] = 100000\n";
        if (posix_getuid() === 0) {
            $conf .= "user = nobody\ngroup = nogroup\n";
        }
        file_put_contents("{$this->dir}/fpm.conf", $conf);
        $bin = trim((string)shell_exec('command -v php-fpm8.2 || command -v php-fpm'));
        $this->assertNotSame('', $bin, 'php-fpm not installed');
        $this->proc = proc_open([$bin, '-n', '-d', "extension=$so", '-y', "{$this->dir}/fpm.conf", '-F'],
            [1 => ['file', "{$this->dir}/fpm.out", 'a'], 2 => ['file', "{$this->dir}/fpm.out", 'a']], $pipes);
        $this->wait_ready();
    }

    private function wait_ready(): void {
        for ($i = 0; $i < 100; $i++) {
            $c = @stream_socket_client("tcp://127.0.0.1:{$this->port}", $errno, $errstr, 0.2);
            if ($c) {
                fclose($c);
                return;
            }
            usleep(100000);
        }
        $this->fail("php-fpm did not start:\n" . @file_get_contents("{$this->dir}/fpm.out"));
    }

    private function request(int $req, int $n): int {
        $env = ['SCRIPT_FILENAME' => __DIR__ . '/page.php', 'REQUEST_METHOD' => 'GET',
            'QUERY_STRING' => "req=$req&n=$n", 'PATH' => getenv('PATH')];
        $p = proc_open(['cgi-fcgi', '-bind', '-connect', "127.0.0.1:{$this->port}"], [1 => ['pipe', 'w']], $pipes, null, $env);
        $out = stream_get_contents($pipes[1]);
        fclose($pipes[1]);
        proc_close($p);
        $this->assertMatchesRegularExpression('/\r?\n\r?\n(\d+)$/', $out, "request $req: $out");
        preg_match('/(\d+)$/', $out, $m);
        return (int)$m[1];
    }

    private function stop_gracefully(): void {
        $pid = proc_get_status($this->proc)['pid'];
        posix_kill($pid, SIGQUIT);
        for ($i = 0; $i < 300 && proc_get_status($this->proc)['running']; $i++) {
            usleep(100000);
        }
        $this->assertFalse(proc_get_status($this->proc)['running'], 'php-fpm did not stop on SIGQUIT');
    }

    /** Asserts every (request, i) pair arrived exactly once and each worker's events carry its pid. */
    private function assert_exact(array $requests, int $n, array $pidsbyreq): array {
        $rows = tsdb_test_read_jsonl("{$this->dir}/events.jsonl");
        $this->assertCount(count($requests) * $n, $rows, file_get_contents("{$this->dir}/fpm.out"));
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
        $this->start_fpm(10, 600000);
        $pids = [];
        $requests = range(1, 120);
        foreach ($requests as $req) {
            $pids[$req] = $this->request($req, 20);
        }
        $this->stop_gracefully();
        $producers = $this->assert_exact($requests, 20, $pids);
        // 120 requests, 4 workers, recycled every 10 requests: at least 12 worker processes.
        $this->assertGreaterThanOrEqual(12, count(array_unique($pids)));
        $this->assertSame(count(array_unique($pids)), count($producers));
    }

    public function test_reload_loses_nothing(): void {
        $this->start_fpm(1000, 600000);
        $pids = [];
        foreach (range(1, 60) as $req) {
            $pids[$req] = $this->request($req, 20);
        }
        $master = proc_get_status($this->proc)['pid'];
        posix_kill($master, SIGUSR2);
        // After the reload the old workers are gone: wait until a request is served by a new pid.
        $old = array_unique($pids);
        usleep(500000);
        $this->wait_ready();
        foreach (range(61, 120) as $req) {
            $pids[$req] = $this->request($req, 20);
        }
        $this->assertNotEmpty(array_diff(array_unique(array_slice($pids, 60, null, true)), $old), 'reload started new workers');
        $this->stop_gracefully();
        $this->assert_exact(range(1, 120), 20, $pids);
    }

    public function test_each_worker_delivers_its_own_events_while_running(): void {
        // A short flush interval: the flush thread of each worker delivers without any exit.
        $this->start_fpm(1000, 100);
        $pids = [];
        foreach (range(1, 40) as $req) {
            $pids[$req] = $this->request($req, 20);
        }
        $rows = [];
        for ($i = 0; $i < 100 && count($rows) < 800; $i++) {
            usleep(100000);
            $rows = tsdb_test_read_jsonl("{$this->dir}/events.jsonl");
        }
        $this->assertCount(800, $rows, 'all events delivered by the running workers');
        $this->stop_gracefully();
        $this->assert_exact(range(1, 40), 20, $pids);
    }
}

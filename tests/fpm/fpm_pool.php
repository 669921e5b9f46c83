<?php
// Test fixtures on loopback: a PHP-FPM pool driven with cgi-fcgi, and a private InfluxDB 1.x server the
// test can stop and restart.

require_once __DIR__ . '/../../php/tests/helpers.php';

function tsdb_test_free_port(): int {
    $s = stream_socket_server('tcp://127.0.0.1:0');
    $name = stream_socket_get_name($s, false);
    fclose($s);
    return (int)substr($name, strrpos($name, ':') + 1);
}

/**
 * A PHP-FPM master with one static pool of 4 workers, the extension loaded, `tsdb.*` set per pool.
 */
final class tsdb_test_fpm_pool {
    public int $port;
    /** @var resource */
    private $proc;

    /**
     * @param array $tsdb tsdb.* values for the pool
     * @param string[] $php more `-d` settings for the master (e.g. 'extension=pgsql')
     */
    public function __construct(private string $dir, array $tsdb, int $maxrequests = 1000, int $workers = 4,
            array $php = []) {
        $this->port = tsdb_test_free_port();
        $so = getenv('TSDB_SO') ?: dirname(__DIR__, 2) . '/target/release/libtsdb.so';
        $conf = "[global]\npid = $dir/fpm.pid\nerror_log = $dir/fpm.log\ndaemonize = no\n" .
            "process_control_timeout = 20s\n\n[www]\nlisten = 127.0.0.1:{$this->port}\npm = static\n" .
            "pm.max_children = $workers\npm.max_requests = $maxrequests\ncatch_workers_output = yes\n";
        foreach ($tsdb as $k => $v) {
            $conf .= "php_admin_value[tsdb.$k] = $v\n";
        }
        if (posix_getuid() === 0) {
            $conf .= "user = nobody\ngroup = nogroup\n";
        }
        file_put_contents("$dir/fpm.conf", $conf);
        $bin = trim((string)shell_exec('command -v php-fpm8.2 || command -v php-fpm'));
        if ($bin === '') {
            throw new RuntimeException('php-fpm is not installed');
        }
        $args = [$bin, '-n', '-d', "extension=$so"];
        foreach ($php as $d) {
            array_push($args, '-d', $d);
        }
        $this->proc = proc_open(array_merge($args, ['-y', "$dir/fpm.conf", '-F']),
            [1 => ['file', "$dir/fpm.out", 'a'], 2 => ['file', "$dir/fpm.out", 'a']], $pipes);
        $this->wait_ready();
    }

    public function wait_ready(): void {
        for ($i = 0; $i < 100; $i++) {
            $c = @stream_socket_client("tcp://127.0.0.1:{$this->port}", $errno, $errstr, 0.2);
            if ($c) {
                fclose($c);
                return;
            }
            usleep(100000);
        }
        throw new RuntimeException("php-fpm did not start:\n" . @file_get_contents("{$this->dir}/fpm.out"));
    }

    /** Serves tests/fpm/page.php: logs `$n` events for request `$req`; returns the worker pid (0 on failure). */
    public function request(int $req, int $n = 20): int {
        return preg_match('/^(\d+)$/', $this->get('page.php', "req=$req&n=$n"), $m) ? (int)$m[1] : 0;
    }

    /** The body of `$script?$query` as served by the pool ('' on failure); a relative `$script` is in tests/fpm/. */
    public function get(string $script, string $query): string {
        $path = str_starts_with($script, '/') ? $script : __DIR__ . "/$script";
        $env = ['SCRIPT_FILENAME' => $path, 'REQUEST_METHOD' => 'GET', 'QUERY_STRING' => $query,
            'PATH' => getenv('PATH')];
        $p = proc_open(['cgi-fcgi', '-bind', '-connect', "127.0.0.1:{$this->port}"], [1 => ['pipe', 'w']], $pipes, null, $env);
        $out = stream_get_contents($pipes[1]);
        fclose($pipes[1]);
        proc_close($p);
        $parts = preg_split('/\r?\n\r?\n/', $out, 2);
        return $parts[1] ?? '';
    }

    public function master_pid(): int {
        return proc_get_status($this->proc)['pid'];
    }

    /** @return int[] the pids of the current workers */
    public function worker_pids(): array {
        $out = trim((string)shell_exec('pgrep -P ' . $this->master_pid()));
        return $out === '' ? [] : array_map('intval', explode("\n", $out));
    }

    public function running(): bool {
        return proc_get_status($this->proc)['running'];
    }

    /** SIGQUIT: workers finish their request and run MSHUTDOWN (flush). */
    public function stop_gracefully(): void {
        posix_kill($this->master_pid(), SIGQUIT);
        for ($i = 0; $i < 300 && $this->running(); $i++) {
            usleep(100000);
        }
        if ($this->running()) {
            throw new RuntimeException('php-fpm did not stop on SIGQUIT');
        }
    }

    public function __destruct() {
        if ($this->running()) {
            foreach ($this->worker_pids() as $pid) {
                posix_kill($pid, SIGKILL);
            }
            posix_kill($this->master_pid(), SIGKILL);
        }
        proc_close($this->proc);
    }
}

/**
 * A private InfluxDB 1.x (Debian's influxd) on a free loopback port, data in the test's directory.
 */
final class tsdb_test_influxd {
    public string $url;
    private string $conf;
    private ?int $pid = null;

    public function __construct(private string $dir, public string $db = 'moodle') {
        $repo = dirname(__DIR__, 2);
        $out = shell_exec('bash -c ' . escapeshellarg("source $repo/tests/servers/influxdb.sh && RUNDIR_INFLUX=$dir && " .
            "_tsdb_influxd_one $dir/influxd false"));
        $this->url = trim((string)$out);
        if (!preg_match('~^http://127\.0\.0\.1:\d+$~', $this->url)) {
            throw new RuntimeException("influxd did not start: $out");
        }
        $this->conf = "$dir/influxd/influxdb.conf";
        $this->pid = (int)trim(file_get_contents("$dir/pids"));
        $this->query("CREATE DATABASE {$this->db}", true);
    }

    public function stop(): void {
        if ($this->pid) {
            posix_kill($this->pid, SIGKILL);
            for ($i = 0; $i < 100 && posix_kill($this->pid, 0); $i++) {
                usleep(50000);
            }
            $this->pid = null;
        }
    }

    public function start(): void {
        $this->pid = (int)trim((string)shell_exec("influxd run -config {$this->conf} >> {$this->dir}/influxd/influxd.log 2>&1 & echo \$!"));
        for ($i = 0; $i < 300; $i++) {
            $code = @get_headers($this->url . '/ping');
            if ($code && strpos($code[0], '204') !== false) {
                return;
            }
            usleep(100000);
        }
        throw new RuntimeException('influxd did not restart');
    }

    public function query(string $q, bool $post = false): array {
        $ctx = stream_context_create(['http' => ['method' => $post ? 'POST' : 'GET', 'ignore_errors' => true]]);
        $r = file_get_contents($this->url . '/query?db=' . $this->db . '&q=' . urlencode($q), false, $ctx);
        return json_decode((string)$r, true) ?? [];
    }

    /** Every (req, i) pair stored, from the `other` field of page.php's events. */
    public function request_pairs(string $measurement = 'moodle_events'): array {
        $r = $this->query("SELECT other FROM $measurement");
        $pairs = [];
        foreach ($r['results'][0]['series'][0]['values'] ?? [] as [$time, $other]) {
            $o = json_decode($other, true);
            $pairs[] = $o['req'] . ':' . $o['i'];
        }
        return $pairs;
    }

    public function __destruct() {
        $this->stop();
    }
}

<?php
// The PHP-FPM part of ./build.sh bench: nginx on loopback in front of a PHP-FPM pool serving php/bench/page.php,
// driven by ab from a second process, also with the backend down (worker RSS over TSDB_BENCH_OUTAGE_SECONDS, 30 by
// default). Prints a Markdown section.
//   php php/bench/fpm.php   (needs the extension built; TSDB_TEST_PG_* for the INSERT reference)

require_once __DIR__ . '/../../tests/fpm/fpm_pool.php';

$dir = sys_get_temp_dir() . '/tsdb-fpmbench-' . getmypid();
mkdir($dir, 0777);
chmod($dir, 0777);
$requests = (int)(getenv('TSDB_BENCH_REQUESTS') ?: 4000);
require_once __DIR__ . '/reference.php';
$pgdsn = tsdb_bench_pg_dsn();

function bench_rss_kib(array $pids): array {
    return array_map(function ($pid) {
        $s = @file_get_contents("/proc/$pid/status");
        return $s && preg_match('/^VmRSS:\s+(\d+) kB/m', $s, $m) ? (int)$m[1] : 0;
    }, $pids);
}

/**
 * Runs one configuration. The load is `ab -n $requests`, repeated until $seconds have passed (0: once), RSS sampled
 * after each round. Returns rps (all rounds), p50/p99 ms (last round), failed, served, and per worker pid its RSS in
 * KiB after the warm-up (idle), after the load (loaded) and the largest sample (peak); spool: bytes of spool segments
 * on disk at the end of the load; same_workers: no worker died or was replaced.
 */
function bench_run(string $dir, array $tsdb, int $workers, string $mode, int $n, int $requests, string $pgdsn, int $seconds = 0): array {
    $sub = "$dir/run-" . bin2hex(random_bytes(3));
    mkdir($sub, 0777);
    chmod($sub, 0777);
    $pool = new tsdb_test_fpm_pool($sub, $tsdb, 1000000, $workers, ['extension=pgsql']);
    $port = tsdb_test_free_port();
    $page = realpath(__DIR__ . '/page.php');
    $conf = "daemon off;\nworker_processes 1;\npid $sub/nginx.pid;\nerror_log $sub/nginx.err;\n" .
        "events { worker_connections 1024; }\nhttp {\n access_log off;\n client_body_temp_path $sub;\n fastcgi_temp_path $sub;\n" .
        " server {\n  listen 127.0.0.1:$port;\n  location / {\n   include /etc/nginx/fastcgi_params;\n" .
        "   fastcgi_param SCRIPT_FILENAME $page;\n   fastcgi_param TSDB_BENCH_PG \"$pgdsn\";\n" .
        "   fastcgi_pass 127.0.0.1:{$pool->port};\n  }\n }\n}\n";
    file_put_contents("$sub/nginx.conf", $conf);
    $nginx = proc_open(['nginx', '-p', $sub, '-c', "$sub/nginx.conf"], [1 => ['file', "$sub/nginx.out", 'a'], 2 => ['file', "$sub/nginx.out", 'a']], $p);
    for ($i = 0; $i < 50 && !@fsockopen('127.0.0.1', $port); $i++) {
        usleep(100000);
    }
    $url = "http://127.0.0.1:$port/?mode=$mode&n=$n";
    shell_exec('ab -q -n ' . max(100, intdiv($requests, 10)) . ' -c ' . (2 * $workers) . ' ' . escapeshellarg($url) . ' 2>&1'); // warm-up
    $pids = $pool->worker_pids();
    $idle = array_combine($pids, bench_rss_kib($pids));
    $peak = $idle;
    $served = $failed = 0;
    $secs = 0.0;
    $start = microtime(true);
    do {
        $out = (string)shell_exec('ab -q -n ' . $requests . ' -c ' . (2 * $workers) . ' ' . escapeshellarg($url) . ' 2>&1');
        foreach (array_combine($pids, bench_rss_kib($pids)) as $pid => $kib) {
            $peak[$pid] = max($peak[$pid], $kib);
        }
        preg_match('/Complete requests:\s+(\d+)/', $out, $done);
        preg_match('/Time taken for tests:\s+([\d.]+)/', $out, $taken);
        preg_match('/Failed requests:\s+(\d+)/', $out, $bad);
        preg_match('/Non-2xx responses:\s+(\d+)/', $out, $non2xx);
        $served += (int)($done[1] ?? 0);
        $secs += (float)($taken[1] ?? 0);
        $failed += isset($bad[1]) ? (int)$bad[1] + (int)($non2xx[1] ?? 0) : $requests;
    } while (isset($done[1]) && microtime(true) - $start < $seconds);
    $loaded = array_combine($pids, bench_rss_kib($pids));
    $spool = 0;
    foreach (glob(($tsdb['spool_dir'] ?? "$sub/none") . '/*.seg') as $f) {
        $spool += filesize($f);
    }
    preg_match('/^\s+50%\s+(\d+)/m', $out, $p50);
    preg_match('/^\s+99%\s+(\d+)/m', $out, $p99);
    $same = $pool->worker_pids() === $pids;
    proc_terminate($nginx, SIGQUIT);
    proc_close($nginx);
    $pool->stop_gracefully();
    if (!isset($done[1])) {
        fwrite(STDERR, "ab failed for $url:\n$out\n" . @file_get_contents("$sub/nginx.out") . @file_get_contents("$sub/fpm.out"));
    }
    return ['rps' => $secs > 0 ? $served / $secs : 0, 'p50' => (int)($p50[1] ?? 0), 'p99' => (int)($p99[1] ?? 0), 'failed' => $failed,
        'served' => $served, 'idle' => $idle, 'loaded' => $loaded, 'peak' => $peak, 'spool' => $spool, 'same_workers' => $same];
}

$sink = ['backend' => 'file', 'path' => "$dir/events.lp", 'memory_limit_bytes' => 64 << 20];
$durable = $sink + ['mode' => 'durable', 'spool_dir' => "$dir/spool"];
if ($pgdsn !== '') {
    tsdb_bench_standard_table(pg_connect($pgdsn));
}

$md = "## PHP-FPM pool, 20 events per request\n\nnginx on 127.0.0.1 → PHP-FPM (pm static, 4 workers) serving php/bench/page.php; " .
    "`ab -n $requests -c 8` from a second process. The file sink is the backend so the numbers are the request path's, not a server's.\n\n" .
    "| store | requests/s | p50 ms | p99 ms | failed | worker RSS idle → loaded (KiB) |\n|---|---:|---:|---:|---:|---|\n";
$rows = ['off (no store)' => [$sink, 'off'], 'tsdb async' => [$sink, 'tsdb'], 'tsdb durable (journal fsync per request)' => [$durable, 'tsdb']];
if ($pgdsn !== '') {
    $rows['single-row INSERT per event (pgsql, indexes of logstore_standard_log)'] = [$sink, 'insert'];
}
$base = null;
foreach ($rows as $name => [$tsdb, $mode]) {
    $r = bench_run($dir, $tsdb, 4, $mode, 20, $requests, $pgdsn);
    $base ??= $r['rps'];
    $md .= sprintf("| %s | %.0f (%.2f × off) | %d | %d | %d | %d → %d |\n", $name, $r['rps'], $base > 0 ? $r['rps'] / $base : 0,
        $r['p50'], $r['p99'], $r['failed'], max($r['idle']), max($r['loaded']));
}
if ($pgdsn === '') {
    $md .= "\nThe INSERT reference was skipped: no PostgreSQL (TSDB_TEST_PG_*) in this run.\n";
}
// The same pool and load with the backend down (InfluxDB refusing connections: a port nobody listens on), held for a
// bounded time: the queue fills to memory_limit_bytes and then drops (no spool) or spills to disk (spool).
$outage = (int)(getenv('TSDB_BENCH_OUTAGE_SECONDS') ?: 30);
$down = ['backend' => 'influxdb1', 'url' => 'http://127.0.0.1:' . tsdb_test_free_port(), 'memory_limit_bytes' => 64 << 20];
$md .= "\n### Worker memory with the backend down\n\nThe same pool and page (async, 20 events per request), the backend an " .
    "InfluxDB URL nobody listens on (connection refused; default retry settings), `ab -n $requests -c 8` repeated for " .
    "$outage s. RSS of the largest worker after the warm-up (before) and at the end (after); growth is the largest " .
    "per-worker increase, at the end and at the highest sample (after each ab round).\n\n" .
    "| store | memory_limit_bytes | spool | requests served (requests/s) | failed | worker RSS before → after (KiB) | growth after / peak (KiB) |\n" .
    "|---|---:|---|---:|---:|---|---|\n";
$spoolcap = 256 << 20;
foreach (['tsdb async, backend down, no spool' => $down,
        'tsdb async, backend down, spool' => $down + ['spool_dir' => "$dir/outage-spool", 'spool_limit_bytes' => $spoolcap]] as $name => $tsdb) {
    $r = bench_run($dir, $tsdb, 4, 'tsdb', 20, $requests, $pgdsn, $outage);
    $growth = fn(array $to) => max(array_map(fn($pid) => $to[$pid] - $r['idle'][$pid], array_keys($r['idle'])));
    $md .= sprintf("| %s%s | %d | %s | %d (%.0f) | %d | %d → %d | %+d / %+d |\n", $name, $r['same_workers'] ? '' : ' (a worker was replaced)',
        $tsdb['memory_limit_bytes'], isset($tsdb['spool_dir']) ? sprintf('%d KiB on disk at the end (cap %d KiB)', $r['spool'] >> 10, $spoolcap >> 10) : 'none',
        $r['served'], $r['rps'], $r['failed'], max($r['idle']), max($r['loaded']), $growth($r['loaded']), $growth($r['peak']));
}
$md .= "\n## How cost grows\n\nEvents per request (4 workers, async). On a 2-core machine the flush threads, nginx and ab share the cores " .
    "with the workers, so the last column is the whole system's event rate, not the request path's alone.\n\n" .
    "| events per request | requests/s off | requests/s tsdb | events/s through tsdb |\n|---:|---:|---:|---:|\n";
foreach ([1, 10, 100, 1000] as $n) {
    $req = $n >= 1000 ? intdiv($requests, 4) : $requests;
    $off = bench_run($dir, $sink, 4, 'off', $n, $req, $pgdsn)['rps'];
    $on = bench_run($dir, $sink, 4, 'tsdb', $n, $req, $pgdsn)['rps'];
    $md .= sprintf("| %d | %.0f | %.0f | %.0f |\n", $n, $off, $on, $on * $n);
}
$md .= "\nWorkers (20 events per request, async; ab concurrency = 2 × workers):\n\n| workers | requests/s | p50 ms | p99 ms |\n|---:|---:|---:|---:|\n";
foreach ([1, 2, 4, 8] as $w) {
    $r = bench_run($dir, $sink, $w, 'tsdb', 20, $requests, $pgdsn);
    $md .= sprintf("| %d | %.0f | %d | %d |\n", $w, $r['rps'], $r['p50'], $r['p99']);
}
exec('rm -rf ' . escapeshellarg($dir));
echo $md;

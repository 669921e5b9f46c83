<?php
// The PHP-FPM part of ./build.sh bench: nginx on loopback in front of a PHP-FPM pool serving php/bench/page.php,
// driven by ab from a second process. Prints a Markdown section.
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

/** Runs one configuration; returns [rps, p50 ms, p99 ms, failed, idle RSS KiB, loaded RSS KiB]. */
function bench_run(string $dir, array $tsdb, int $workers, string $mode, int $n, int $requests, string $pgdsn): array {
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
    $idle = max(bench_rss_kib($pool->worker_pids()));
    $out = (string)shell_exec('ab -q -n ' . $requests . ' -c ' . (2 * $workers) . ' ' . escapeshellarg($url) . ' 2>&1');
    $loaded = max(bench_rss_kib($pool->worker_pids()));
    preg_match('/Requests per second:\s+([\d.]+)/', $out, $rps);
    preg_match('/^\s+50%\s+(\d+)/m', $out, $p50);
    preg_match('/^\s+99%\s+(\d+)/m', $out, $p99);
    preg_match('/Failed requests:\s+(\d+)/', $out, $failed);
    preg_match('/Non-2xx responses:\s+(\d+)/', $out, $non2xx);
    proc_terminate($nginx, SIGQUIT);
    proc_close($nginx);
    $pool->stop_gracefully();
    if (!isset($rps[1])) {
        fwrite(STDERR, "ab failed for $url:\n$out\n" . @file_get_contents("$sub/nginx.out") . @file_get_contents("$sub/fpm.out"));
    }
    return [(float)($rps[1] ?? 0), (int)($p50[1] ?? 0), (int)($p99[1] ?? 0), (int)($failed[1] ?? -1) + (int)($non2xx[1] ?? 0), $idle, $loaded];
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
    [$rps, $p50, $p99, $failed, $idle, $loaded] = bench_run($dir, $tsdb, 4, $mode, 20, $requests, $pgdsn);
    $base ??= $rps;
    $md .= sprintf("| %s | %.0f (%.2f × off) | %d | %d | %d | %d → %d |\n", $name, $rps, $base > 0 ? $rps / $base : 0, $p50, $p99, $failed, $idle, $loaded);
}
if ($pgdsn === '') {
    $md .= "\nThe INSERT reference was skipped: no PostgreSQL (TSDB_TEST_PG_*) in this run.\n";
}
$md .= "\n## How cost grows\n\nEvents per request (4 workers, async). On a 2-core machine the flush threads, nginx and ab share the cores " .
    "with the workers, so the last column is the whole system's event rate, not the request path's alone.\n\n" .
    "| events per request | requests/s off | requests/s tsdb | events/s through tsdb |\n|---:|---:|---:|---:|\n";
foreach ([1, 10, 100, 1000] as $n) {
    $req = $n >= 1000 ? intdiv($requests, 4) : $requests;
    [$off] = bench_run($dir, $sink, 4, 'off', $n, $req, $pgdsn);
    [$on] = bench_run($dir, $sink, 4, 'tsdb', $n, $req, $pgdsn);
    $md .= sprintf("| %d | %.0f | %.0f | %.0f |\n", $n, $off, $on, $on * $n);
}
$md .= "\nWorkers (20 events per request, async; ab concurrency = 2 × workers):\n\n| workers | requests/s | p50 ms | p99 ms |\n|---:|---:|---:|---:|\n";
foreach ([1, 2, 4, 8] as $w) {
    [$rps, $p50, $p99] = bench_run($dir, $sink, $w, 'tsdb', 20, $requests, $pgdsn);
    $md .= sprintf("| %d | %.0f | %d | %d |\n", $w, $rps, $p50, $p99);
}
exec('rm -rf ' . escapeshellarg($dir));
echo $md;

<?php
// Instructions per call on the request thread, counted by valgrind's callgrind: repeatable on a shared,
// noisy machine where wall-clock numbers are not. Run by php/bench/run.php; also usable alone:
//   php -d extension=libtsdb.so php/bench/instructions.php
// With argv[1] = tsdb|json and argv[2] = N it is the measured child: N calls on one Moodle-shaped event.

require_once __DIR__ . '/../demo/moodle_day.php';

function tsdb_bench_event(): array {
    $event = iterator_to_array(tsdb_demo_events(1, 1700000000), false)[0];
    $event['other'] = ['discussionid' => 12, 'forumid' => 3, 'forumtype' => 'general'];
    return $event;
}

if (isset($argv[2])) {
    $event = tsdb_bench_event();
    // The sink is down and the retry wait long: the flush thread sleeps, the request thread is measured alone.
    tsdb_configure(['backend' => 'postgres', 'host' => '127.0.0.1', 'port' => 1, 'memory_limit_bytes' => 1 << 30,
        'retry_base_ms' => 600000, 'retry_max_ms' => 600000]);
    $n = (int)$argv[2];
    if ($argv[1] === 'tsdb') {
        for ($i = 0; $i < $n; $i++) {
            tsdb_log_event($event);
        }
    } else {
        for ($i = 0; $i < $n; $i++) {
            json_encode($event);
        }
    }
    exit(0);
}

/** Instructions of the main thread for `$what` × `$n`, or null without valgrind. */
function tsdb_bench_instructions(string $what, int $n): ?int {
    if (trim((string)shell_exec('command -v valgrind')) === '') {
        return null;
    }
    $dir = sys_get_temp_dir() . '/tsdb-cg-' . getmypid();
    @mkdir($dir);
    $ext = getenv('TSDB_SO') ?: dirname(__DIR__, 2) . '/target/release/libtsdb.so';
    shell_exec(sprintf('valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=%s/cg.%%p %s -d extension=%s %s %s %d 2>/dev/null',
        escapeshellarg($dir), escapeshellarg(PHP_BINARY), escapeshellarg($ext), escapeshellarg(__FILE__), $what, $n));
    $total = null;
    foreach (glob("$dir/cg.*-01") as $f) {
        if (preg_match('/^summary:\s+(\d+)/m', file_get_contents($f), $m)) {
            $total = (int)$m[1];
        }
    }
    exec('rm -rf ' . escapeshellarg($dir));
    return $total;
}

/** Per-call instructions: the difference between N and 0 calls, divided by N. */
function tsdb_bench_per_call(string $what, int $n = 20000): ?float {
    $base = tsdb_bench_instructions($what, 0);
    $full = tsdb_bench_instructions($what, $n);
    return ($base === null || $full === null) ? null : ($full - $base) / $n;
}

if (realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    printf("tsdb_log_event: %.0f instructions per call\njson_encode: %.0f instructions per call\n",
        tsdb_bench_per_call('tsdb'), tsdb_bench_per_call('json'));
}

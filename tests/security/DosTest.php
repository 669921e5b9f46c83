<?php
// Denial of service through the extension: huge events are cut to their caps, a flood is bounded by
// memory_limit_bytes (drops are counted, the call never waits), a backend that never answers never
// slows a request down and delays a process exit by at most shutdown_timeout_ms.

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/helpers.php';

final class DosTest extends TestCase {
    /** Child prologue: a TCP port that accepts connections and never answers (a hung backend). */
    private const BLACKHOLE = <<<'PHP'
$hole = stream_socket_server('tcp://127.0.0.1:0', $en, $es, STREAM_SERVER_BIND | STREAM_SERVER_LISTEN,
    stream_context_create(['socket' => ['backlog' => 128]]));
$url = 'http://' . stream_socket_get_name($hole, false);
function rss(): int {
    preg_match('/VmRSS:\s+(\d+) kB/', file_get_contents('/proc/self/status'), $m);
    return (int) $m[1] * 1024;
}
PHP;

    public function test_huge_values_are_cut_to_their_caps(): void {
        $dir = tsdb_sec_tempdir();
        [$rc, $out, $err] = tsdb_sec_run(<<<'PHP'
$big = str_repeat("\u{00e9}\"\\,= \n", 2 << 20); // 16 MiB
$t = [];
foreach ([
    ['eventname' => $big, 'component' => $big, 'ip' => $big, 'origin' => $big],
    ['eventname' => 'x', 'other' => ['a' => $big, 'b' => [$big]]],
    ['eventname' => 'x', 'other' => json_encode(['a' => $big])],
    ['eventname' => 'x', 'other' => array_fill(0, 200000, 'value')],
] as $e) {
    $s = microtime(true);
    $ok = tsdb_log_event($e + ['timecreated' => 1700000000]);
    $t[] = [$ok, microtime(true) - $s];
}
tsdb_flush(10000);
echo json_encode(['t' => $t, 'stats' => tsdb_stats()]);
PHP, ['tsdb.backend' => 'file', 'tsdb.format' => 'json', 'tsdb.path' => "$dir/e.jsonl",
            'tsdb.max_string_bytes' => 1024, 'tsdb.max_other_bytes' => 4096], 120);
        $this->assertSame(0, $rc, $out . $err);
        $r = json_decode($out, true);
        foreach ($r['t'] as [$ok, $secs]) {
            $this->assertTrue($ok);
            // Reported, not asserted: no timing thresholds in tests (shared, noisy machines).
            fwrite(STDERR, sprintf("[dos] one huge event captured in %.3f s\n", $secs));
        }
        $this->assertSame(4, $r['stats']['truncated']);
        $rows = array_map(fn($l) => json_decode($l, true), file("$dir/e.jsonl"));
        $this->assertCount(4, $rows);
        foreach (['eventname', 'component', 'ip', 'origin'] as $k) {
            $this->assertLessThanOrEqual(1024, strlen($rows[0][$k]), $k);
            $this->assertStringEndsWith('…[truncated by tsdb]', $rows[0][$k]);
        }
        foreach ([1, 2, 3] as $i) {
            $this->assertLessThanOrEqual(4096, strlen($rows[$i]['other']), "event $i: other over max_other_bytes");
            $o = json_decode($rows[$i]['other'], true);
            $this->assertIsInt($o['tsdb_truncated'], "event $i: the cut other is still JSON");
        }
    }

    /**
     * Finding: `other` given as a JSON string whose strings hold invalid UTF-8 (serde's validation does
     * not look inside strings) is cut to a head of (max_other_bytes - 64) / 2 bytes, and every invalid
     * byte of that head becomes a 3-byte U+FFFD: the stored `other` is ~1.4 × max_other_bytes.
     */
    public function test_other_never_exceeds_max_other_bytes_even_with_invalid_utf8(): void {
        $dir = tsdb_sec_tempdir();
        [$rc, $out, $err] = tsdb_sec_run(<<<'PHP'
var_export(tsdb_log_event(['eventname' => 'x', 'timecreated' => 1700000000,
    'other' => '"' . str_repeat("\xff", 5000) . '"']));
tsdb_flush(5000);
PHP, ['tsdb.backend' => 'file', 'tsdb.format' => 'json', 'tsdb.path' => "$dir/e.jsonl",
            'tsdb.max_other_bytes' => 1024]);
        $this->assertSame(0, $rc, $out . $err);
        $this->assertSame('true', $out);
        $row = json_decode(file_get_contents("$dir/e.jsonl"), true);
        $this->assertLessThanOrEqual(1024, strlen($row['other']), 'the stored other is longer than max_other_bytes');
    }

    public function test_deep_or_recursive_other_is_refused_without_harm(): void {
        [$rc, $out, $err] = tsdb_sec_run(<<<'PHP'
$deep = 'leaf';
for ($i = 0; $i < 100000; $i++) {
    $deep = [$deep];
}
$self = ['a' => 1];
$self['me'] = &$self;
foreach ([$deep, $self] as $other) {
    try {
        tsdb_log_event(['eventname' => 'x', 'timecreated' => 1700000000, 'other' => $other]);
        echo "ACCEPTED\n";
    } catch (ValueError $e) {
        echo substr($e->getMessage(), -28), "\n";
    }
}
echo tsdb_log_event(['eventname' => 'still works', 'timecreated' => 1700000000]) ? "OK" : "DROPPED";
PHP, ['tsdb.backend' => 'file', 'tsdb.path' => '/dev/null'], 60);
        $this->assertSame(0, $rc, $out . $err);
        $this->assertSame("nested deeper than 32 levels\nnested deeper than 32 levels\nOK", $out);
    }

    public function test_a_flood_is_bounded_by_memory_limit_and_never_waits(): void {
        [$rc, $out, $err, $secs] = tsdb_sec_run(self::BLACKHOLE . <<<'PHP'
tsdb_configure(['backend' => 'influxdb1', 'url' => $url, 'memory_limit_bytes' => 1048576, 'batch_size' => 1000,
    'flush_interval_ms' => 10, 'timeout_ms' => 600000, 'retry_max_elapsed_ms' => 600000, 'shutdown_timeout_ms' => 300]);
$rss0 = rss();
$false = 0;
$max = 0.0;
$other = ['subject' => str_repeat('x', 1000)];
for ($i = 0; $i < 50000; $i++) {
    $s = hrtime(true);
    if (!tsdb_log_event(['eventname' => '\mod_forum\event\post_created', 'timecreated' => 1700000000, 'userid' => $i,
            'other' => $other])) {
        $false++;
    }
    $max = max($max, (hrtime(true) - $s) / 1e9);
}
$st = tsdb_stats();
echo json_encode(['false' => $false, 'max' => $max, 'rss' => rss() - $rss0, 'stats' => $st]);
PHP, [], 120);
        $this->assertSame(0, $rc, $out . $err);
        $r = json_decode($out, true);
        $st = $r['stats'];
        $this->assertGreaterThan(40000, $r['false'], 'the cap did not hold');
        $this->assertSame($r['false'], $st['dropped'], 'every refused event is counted');
        $this->assertSame(50000, $st['accepted'] + $st['dropped']);
        $this->assertLessThanOrEqual(1048576, $st['queued_bytes']);
        $this->assertLessThan(32 << 20, $r['rss'], 'memory grew beyond the cap');
        fwrite(STDERR, sprintf("[dos] slowest call during the flood: %.1f ms (reported, not asserted)\n", $r['max'] * 1e3));
        $this->assertLessThan(120, $secs, 'the exit waited for the hung backend');
    }

    public function test_a_hung_backend_never_slows_a_request_and_the_exit_is_bounded(): void {
        [$rc, $out, $err, $secs] = tsdb_sec_run(self::BLACKHOLE . <<<'PHP'
tsdb_configure(['backend' => 'influxdb2', 'url' => $url, 'org' => 'o', 'token' => 't', 'batch_size' => 100,
    'flush_interval_ms' => 10, 'timeout_ms' => 600000, 'shutdown_timeout_ms' => 1000]);
$lat = [];
for ($i = 0; $i < 20000; $i++) {
    $s = hrtime(true);
    tsdb_log_event(['eventname' => '\core\event\course_viewed', 'timecreated' => 1700000000, 'userid' => $i]);
    $lat[] = hrtime(true) - $s;
}
sort($lat);
echo json_encode(['p50' => $lat[10000] / 1e3, 'p99' => $lat[19800] / 1e3, 'max' => end($lat) / 1e3,
    'pending' => tsdb_stats()['pending']]);
PHP, [], 120);
        $this->assertSame(0, $rc, $out . $err);
        $r = json_decode($out, true);
        $this->assertSame(20000, $r['pending'], 'nothing was written, nothing was lost: all pending');
        fwrite(STDERR, sprintf("[dos] hung backend: p50 %.1f µs, p99 %.1f µs, max %.1f µs per call (reported, not asserted)\n",
            $r['p50'], $r['p99'], $r['max']));
        // Exit: MSHUTDOWN waits shutdown_timeout_ms (1 s) for the hung backend, then leaves. Not a speed
        // threshold: without the bound the exit would wait for the 600 s request timeout.
        $this->assertLessThan(60, $secs, 'the exit was not bounded by shutdown_timeout_ms');
    }

    public function test_sync_mode_waits_at_most_sync_timeout_ms(): void {
        [$rc, $out, $err] = tsdb_sec_run(self::BLACKHOLE . <<<'PHP'
tsdb_configure(['backend' => 'influxdb2', 'url' => $url, 'org' => 'o', 'token' => 't', 'mode' => 'sync',
    'sync_timeout_ms' => 300, 'timeout_ms' => 600000, 'shutdown_timeout_ms' => 100]);
$s = microtime(true);
tsdb_log_event(['eventname' => 'x', 'timecreated' => 1700000000]);
echo round(microtime(true) - $s, 3);
PHP, [], 60);
        $this->assertSame(0, $rc, $out . $err);
        $this->assertGreaterThanOrEqual(0.25, (float) $out, 'sync mode waits for the write (by design)');
        // Not a speed threshold: without the bound the call would wait for the 600 s request timeout.
        $this->assertLessThan(60, (float) $out, 'sync mode waited longer than sync_timeout_ms');
    }
}

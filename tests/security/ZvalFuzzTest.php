<?php
// A randomized test of the event decoder from PHP values (src/php.rs reads zvals directly, so it cannot
// run under cargo-fuzz): random arrays of event keys and junk keys holding every zval type (strings of
// random bytes, ints at the edges, floats incl. NAN/INF, bools, null, nested and packed/hash arrays,
// references, objects, closures, resources) go to tsdb_log_event() and tsdb_log_events(). Allowed
// outcomes: true, or a ValueError/TypeError naming a key; never a crash, never another exception; and
// every accepted event is written, once.
//
// TSDB_ZVAL_FUZZ_SEED and TSDB_ZVAL_FUZZ_ITERATIONS (default 20000) choose the run; a failure prints
// the seed to reproduce it.

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/helpers.php';

final class ZvalFuzzTest extends TestCase {
    private const CHILD = <<<'PHP'
mt_srand((int) getenv('SEED'));
$keys = ['eventname', 'component', 'action', 'target', 'objecttable', 'objectid', 'crud', 'edulevel', 'contextid',
    'contextlevel', 'contextinstanceid', 'userid', 'courseid', 'relateduserid', 'anonymous', 'other', 'timecreated',
    'origin', 'ip', 'realuserid'];
$fh = fopen('php://memory', 'r');
function bytes(): string {
    $n = [0, 1, 2, 5, 30, 300, 70000][mt_rand(0, 6)];
    $s = '';
    for ($i = 0; $i < min($n, 64); $i++) {
        $s .= chr([mt_rand(0, 255), mt_rand(0x20, 0x7e), ord('\\'), ord('"'), 10, 0, 0xff, 0xc3][mt_rand(0, 7)]);
    }
    return $n > 64 ? str_repeat($s === '' ? 'x' : $s, intdiv($n, max(1, strlen($s)))) : $s;
}
function value(int $depth) {
    global $fh;
    switch (mt_rand(0, 15)) {
        case 0: return null;
        case 1: return (bool) mt_rand(0, 1);
        case 2: return [0, 1, -1, PHP_INT_MAX, PHP_INT_MIN, 1700000000, 32767, 32768][mt_rand(0, 7)];
        case 3: return [0.0, -0.0, 1.5, 1e300, 9.0e15, 1e16, NAN, INF, -INF, 1700000000.0][mt_rand(0, 9)];
        case 4: case 5: case 6: return bytes();
        case 7: return (string) mt_rand(-5, 5) . ['', ' ', "\n", 'x', '.0'][mt_rand(0, 4)];
        case 8: return json_encode(['a' => bytes()], JSON_INVALID_UTF8_SUBSTITUTE) ?: '{}';
        case 9: case 10:
            if ($depth > 40) { return 1; }
            $a = [];
            for ($i = 0, $n = mt_rand(0, 4); $i < $n; $i++) {
                if (mt_rand(0, 1)) { $a[] = value($depth + 1); } else { $a[bytes()] = value($depth + 1); }
            }
            if (mt_rand(0, 3) === 0 && $a) { unset($a[array_key_first($a)]); } // holes
            return $a;
        case 11: $x = value($depth + 1); $arr = [&$x]; return $arr; // a reference inside
        case 12: return mt_rand(0, 1) ? new stdClass() : function () {};
        case 13: return $fh;
        case 14: return '{"n":1e999999,"s":"\u0000\ud800"}';
        default: return 'plain';
    }
}
function event(): array {
    global $keys;
    $e = [];
    if (mt_rand(0, 9)) { $e['eventname'] = mt_rand(0, 5) ? '\core\event\x' : value(0); }
    if (mt_rand(0, 9)) { $e['timecreated'] = mt_rand(0, 5) ? 1700000000 : value(0); }
    for ($i = 0, $n = mt_rand(0, 8); $i < $n; $i++) {
        $k = mt_rand(0, 15) ? $keys[mt_rand(0, count($keys) - 1)] : (mt_rand(0, 1) ? bytes() : mt_rand(-3, 3));
        $e[$k] = value(0);
    }
    return $e;
}
$refused = 0;
$n = (int) getenv('N');
$before = tsdb_stats()['accepted'];
for ($i = 0; $i < $n; $i++) {
    $single = mt_rand(0, 9) > 0;
    $batch = [];
    if (!$single) {
        for ($j = 0, $m = mt_rand(0, 5); $j < $m; $j++) { $batch[] = mt_rand(0, 9) ? event() : value(0); }
    }
    try {
        $r = $single ? tsdb_log_event(event()) : tsdb_log_events($batch);
        $delta = tsdb_stats()['accepted'] - $before;
        // A single event is taken whole or not at all; a batch call reports what it took.
        if ($single ? $delta !== ($r ? 1 : 0) : $delta !== $r) { echo "COUNT MISMATCH at $i\n"; exit(4); }
    } catch (ValueError | TypeError $e) {
        $refused++;
        $delta = tsdb_stats()['accepted'] - $before;
        if ($single ? $delta !== 0 : $delta > count($batch)) { echo "PARTIAL EVENT at $i\n"; exit(5); }
        if ($e->getMessage() === '') { echo "EMPTY MESSAGE\n"; exit(3); }
    }
    $before += $delta;
}
$accepted = $before;
tsdb_flush(30000);
$s = tsdb_stats();
echo json_encode(['accepted' => $accepted, 'refused' => $refused, 'stats' => $s]);
PHP;

    public function test_random_php_values_are_accepted_or_refused_never_crash(): void {
        $seed = (int) (getenv('TSDB_ZVAL_FUZZ_SEED') ?: 20261128);
        $n = (int) (getenv('TSDB_ZVAL_FUZZ_ITERATIONS') ?: 20000);
        $dir = tsdb_sec_tempdir();
        [$rc, $out, $err] = tsdb_sec_run(self::CHILD, ['tsdb.backend' => 'file', 'tsdb.format' => 'json',
            'tsdb.path' => "$dir/e.jsonl", 'tsdb.max_string_bytes' => 4096, 'tsdb.max_other_bytes' => 8192,
            'memory_limit_bytes' => 268435456], 600, ['SEED' => (string) $seed, 'N' => (string) $n]);
        $this->assertSame(0, $rc, "seed $seed: exit $rc\n$out\n$err");
        $this->assertSame('', $err, "seed $seed");
        $r = json_decode($out, true);
        $this->assertIsArray($r, "seed $seed: $out");
        $this->assertGreaterThan($n / 10, $r['accepted'], 'too few valid events to mean anything');
        $this->assertGreaterThan($n / 10, $r['refused'], 'too few invalid events to mean anything');
        $this->assertSame($r['accepted'], $r['stats']['accepted'], "seed $seed: " . json_encode($r));
        $this->assertSame($r['accepted'], $r['stats']['written'], "seed $seed: not every accepted event was written");
        $lines = file("$dir/e.jsonl");
        $this->assertCount($r['accepted'], $lines);
        foreach ($lines as $line) {
            $this->assertIsArray(json_decode($line, true), 'a JSON line does not parse');
        }
    }
}
